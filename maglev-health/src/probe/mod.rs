//! Probers: HTTP, HTTPS, TCP, TCP+TLS and ICMP, each with a timeout and an optional source
//! address.
//!
//! The interface is [`ProbeSpec`] (what to probe, how; `Clone + PartialEq` so the checker can
//! tell a changed health check from an unchanged one) and [`probe`], which runs one probe
//! against one address and always returns a [`ProbeResult`] within the spec's timeout (plus a
//! few milliseconds).
//!
//! # Result codes
//!
//! | kind | pass | failures |
//! |---|---|---|
//! | TCP | `L4OK` | `L4CON` (refused, unreachable, bind failed), `L4TOUT` |
//! | TCP + TLS | `L6OK` | `L4CON`, `L4TOUT`, `L6RSP` (handshake or certificate failed), `L6TOUT` |
//! | HTTP | `L7OK` | `L4CON`, `L4TOUT`, `L7STS` (status outside the range), `L7RSP` (malformed response, closed early, body mismatch), `L7TOUT` |
//! | HTTPS | `L7OK` | as HTTP, plus `L6RSP`, `L6TOUT` |
//! | ICMP | `ICMPOK` | `ICMPTOUT`, `ICMPERR` (unreachable, socket error, no ICMP socket) |
//!
//! One deadline covers the whole probe: the code of a timeout names the phase that was running
//! when it expired (connect, TLS handshake, or waiting for the response).
//!
//! # Decisions
//!
//! - Every probe opens a fresh connection and closes it afterwards; HTTP sends
//!   `Connection: close`.
//! - A plain TCP check (no TLS) passes once our side of the handshake completes (SYN-ACK
//!   received), then closes with a reset before sending the final ACK, as HAProxy does: the
//!   server never accepts the connection and no TIME_WAIT is left, which costs both ends far
//!   less kernel work. TLS and HTTP probes complete the handshake normally.
//! - [`ProbeRunner`] can run plain TCP checks half-open instead ([`TcpCheckMode`]): a
//!   [`SynEngine`] sends a hand-built SYN from a raw socket, a SYN-ACK acknowledging it passes,
//!   a reset refuses, and the kernel resets the SYN-ACK itself since no socket owns the
//!   connection. Same codes and meaning as the connect check, about half its kernel work; it
//!   needs CAP_NET_RAW, and `Auto` falls back to the connect check without it. One difference:
//!   ICMP errors (unreachable) report as `L4TOUT` instead of `L4CON`, see [`SynEngine`].
//! - The default HTTP `Host` header is the backend address (IPv6 in brackets), with `:port`
//!   appended only when the port is not the scheme's default (80 for HTTP, 443 for HTTPS), as
//!   RFC 9110 §7.2 asks.
//! - The TLS name to verify and send as SNI is [`TlsParams::server_name`], else (HTTPS) the
//!   configured `Host` without its port, else the backend IP address. An IP address is verified
//!   against the certificate's IP SANs and sends no SNI.
//! - "System roots" are the Mozilla roots compiled in through `webpki-roots`, so probes behave
//!   the same on every host and never read the filesystem. [`TlsParams::with_roots`] replaces
//!   them with explicit trust anchors (a private CA).
//! - The crypto provider is `ring`, passed explicitly to every rustls config; nothing depends
//!   on a process-wide default provider.

mod http;
mod icmp;
mod net;
mod syn;
mod tls;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::netns::SocketFactory;
use crate::result::{ProbeResult, ResultCode};

pub use icmp::{IcmpMode, IcmpUnavailable, IpFamily, icmp_mode};
pub use syn::{MAX_SOURCES, RESERVED_PORTS, ROUTE_TTL, SynEngine};
pub use tls::TlsParams;

/// How much of an HTTP body the response regexp sees at most.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The `User-Agent` header sent by HTTP and HTTPS probes.
pub const USER_AGENT: &str = concat!("maglev-health/", env!("CARGO_PKG_VERSION"));

/// Grace added to the spec's timeout by the outer guard of [`probe`]. Each phase already stops
/// at the deadline; the guard only bounds what the phases cannot (a misbehaving future).
const GUARD_MARGIN: Duration = Duration::from_millis(50);

/// What to probe and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The kind of probe and its parameters.
    pub kind: ProbeKind,
    /// How long a probe may take, all phases together, before it counts as a timeout.
    pub timeout: Duration,
    /// Source address bound before connecting to an IPv4 backend (`probe-ipv4-src`).
    pub source_v4: Option<Ipv4Addr>,
    /// Source address bound before connecting to an IPv6 backend (`probe-ipv6-src`).
    pub source_v6: Option<Ipv6Addr>,
}

impl ProbeSpec {
    /// A spec of the given kind and timeout, with no source addresses.
    pub fn new(kind: ProbeKind, timeout: Duration) -> Self {
        Self {
            kind,
            timeout,
            source_v4: None,
            source_v6: None,
        }
    }

    /// How long a probe may take before it counts as a timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The source address to bind for a probe of `target`: the one of the target's family.
    pub fn source_for(&self, target: IpAddr) -> Option<IpAddr> {
        match target {
            IpAddr::V4(_) => self.source_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.source_v6.map(IpAddr::V6),
        }
    }

    /// Checks what [`probe`] would otherwise report at run time: a zero port or timeout, an
    /// HTTP path that is not absolute, a `Host` value or server name that cannot be sent, an
    /// empty status range.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.timeout.is_zero() {
            return Err(SpecError::ZeroTimeout);
        }
        match &self.kind {
            ProbeKind::Icmp => Ok(()),
            // `TlsParams` are checked when they are made.
            ProbeKind::Tcp { port, .. } => {
                if *port == 0 {
                    return Err(SpecError::ZeroPort);
                }
                Ok(())
            }
            ProbeKind::Http(params) => params.validate(),
        }
    }
}

/// The kind of a probe and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeKind {
    /// TCP connect to `port`; with `tls`, a TLS handshake after the connect (`params.ssl`).
    Tcp {
        /// Destination port.
        port: u16,
        /// TLS handshake parameters, when the check does one.
        tls: Option<TlsParams>,
    },
    /// An HTTP GET (HTTPS when its `tls` is set).
    Http(HttpParams),
    /// ICMP or ICMPv6 echo.
    Icmp,
}

impl ProbeKind {
    /// The code a timeout gets when no phase reported one (the outer guard).
    fn guard_code(&self) -> ResultCode {
        match self {
            Self::Tcp { tls: None, .. } => ResultCode::L4Tout,
            Self::Tcp { tls: Some(_), .. } => ResultCode::L6Tout,
            Self::Http(_) => ResultCode::L7Tout,
            Self::Icmp => ResultCode::IcmpTout,
        }
    }

    /// The code of a probe that could not open its socket.
    fn socket_error_code(&self) -> ResultCode {
        match self {
            Self::Tcp { .. } | Self::Http(_) => ResultCode::L4Con,
            Self::Icmp => ResultCode::IcmpErr,
        }
    }
}

/// Parameters of an HTTP or HTTPS probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpParams {
    /// Destination port.
    pub port: u16,
    /// TLS parameters; `Some` makes this an HTTPS probe.
    pub tls: Option<TlsParams>,
    /// Absolute request path, with an optional query (`params.path`, default `/`).
    pub path: String,
    /// `Host` header value (`params.host`); `None` uses the backend address.
    pub host: Option<String>,
    /// Accepted status codes, both ends included (`params.response-code`, default 200-399).
    pub status: (u16, u16),
    /// Pattern the first [`BODY_LIMIT`] bytes of the body must match
    /// (`params.response-regexp`).
    pub regexp: Option<BodyRegex>,
}

impl HttpParams {
    /// HTTP on `port` with the defaults: path `/`, the backend address as `Host`, status
    /// 200-399, no body pattern, no TLS.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            tls: None,
            path: "/".to_owned(),
            host: None,
            status: (200, 399),
            regexp: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        if self.port == 0 {
            return Err(SpecError::ZeroPort);
        }
        if !self.path.starts_with('/') || self.path.parse::<hyper::Uri>().is_err() {
            return Err(SpecError::InvalidPath(self.path.clone()));
        }
        if let Some(host) = &self.host
            && (host.is_empty() || hyper::header::HeaderValue::from_str(host).is_err())
        {
            return Err(SpecError::InvalidHost(host.clone()));
        }
        let (lo, hi) = self.status;
        if lo > hi || !(100..=999).contains(&lo) || !(100..=999).contains(&hi) {
            return Err(SpecError::InvalidStatusRange { lo, hi });
        }
        Ok(())
    }
}

/// A compiled response-body pattern. Two patterns are equal when their source text is.
#[derive(Clone)]
pub struct BodyRegex {
    pattern: String,
    regex: regex::bytes::Regex,
}

impl BodyRegex {
    /// Compiles `pattern` (Rust `regex` syntax, matched against raw body bytes).
    pub fn new(pattern: &str) -> Result<Self, SpecError> {
        let regex = regex::bytes::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| SpecError::InvalidRegexp {
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            pattern: pattern.to_owned(),
            regex,
        })
    }

    /// The pattern's source text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `body` matches.
    pub fn is_match(&self, body: &[u8]) -> bool {
        self.regex.is_match(body)
    }
}

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for BodyRegex {}

impl fmt::Debug for BodyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BodyRegex(/{}/)", self.pattern)
    }
}

/// A probe spec that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The timeout is zero.
    #[error("timeout must be greater than zero")]
    ZeroTimeout,
    /// The port is zero.
    #[error("port must be 1-65535")]
    ZeroPort,
    /// The HTTP path is not an absolute path.
    #[error("path {0:?} is not an absolute request path")]
    InvalidPath(String),
    /// The HTTP `Host` value cannot be sent as a header.
    #[error("host {0:?} is not a valid Host header value")]
    InvalidHost(String),
    /// The status range is empty or outside 100-999.
    #[error("response-code range {lo}-{hi} is not a range of status codes")]
    InvalidStatusRange {
        /// Lower end.
        lo: u16,
        /// Upper end.
        hi: u16,
    },
    /// The response regexp does not compile.
    #[error("response-regexp {pattern:?}: {reason}")]
    InvalidRegexp {
        /// The pattern as given.
        pattern: String,
        /// Why it does not compile.
        reason: String,
    },
    /// The TLS server name is neither a DNS name nor an IP address.
    #[error("server-name {0:?} is neither a dns name nor an ip address")]
    InvalidServerName(String),
    /// The trust anchors given to [`TlsParams::with_roots`] are unusable.
    #[error("tls roots: {0}")]
    InvalidRoots(String),
}

/// A phase's verdict: the code and its human detail.
type Outcome = (ResultCode, String);

/// Runs one probe of `target` as `spec` says.
///
/// Never panics and returns within `spec.timeout` plus a few milliseconds. An IPv4-mapped IPv6
/// target is probed as IPv4. Must run inside a tokio runtime with I/O and time enabled; the
/// probe spawns nothing, so dropping the future closes its socket at once.
pub async fn probe(spec: &ProbeSpec, target: IpAddr) -> ProbeResult {
    static HOST: SocketFactory = SocketFactory::host();
    run(&HOST, spec, target, PlainTcp::Connect).await
}

/// Any probe but a plain TCP check, under the outer guard.
async fn guarded(
    sockets: &SocketFactory,
    spec: &ProbeSpec,
    target: IpAddr,
    source: Option<IpAddr>,
    deadline: Instant,
) -> Outcome {
    let run = async {
        match &spec.kind {
            ProbeKind::Tcp { port, tls } => {
                let tls = tls.as_ref();
                net::tcp_probe(sockets, target, *port, source, tls, deadline, spec.timeout).await
            }
            ProbeKind::Http(params) => {
                http::http_probe(sockets, params, target, source, deadline, spec.timeout).await
            }
            ProbeKind::Icmp => {
                icmp::icmp_probe(sockets, target, source, deadline, spec.timeout).await
            }
        }
    };
    match tokio::time::timeout_at(deadline_after(deadline, GUARD_MARGIN), run).await {
        Ok(outcome) => outcome,
        Err(_) => (spec.kind.guard_code(), timeout_detail(spec.timeout)),
    }
}

/// How a plain TCP check runs.
#[derive(Clone, Copy)]
enum PlainTcp<'a> {
    /// Connect, then reset.
    Connect,
    /// Half-open, through the engine; with `fallback`, families the engine cannot probe
    /// (IPv6 on a host without it) connect instead.
    HalfOpen {
        engine: &'a SynEngine,
        fallback: bool,
    },
    /// Half-open was asked for but is unavailable: fail with this reason.
    Unavailable(&'a str),
}

async fn run(
    sockets: &SocketFactory,
    spec: &ProbeSpec,
    target: IpAddr,
    plain: PlainTcp<'_>,
) -> ProbeResult {
    let start = Instant::now();
    let target = target.to_canonical();
    let deadline = deadline_after(start, spec.timeout);
    let source = spec.source_for(target);
    // Probes in a namespace that is gone fail, saying so (the half-open engine's sockets and
    // the cached routes would otherwise live on in the namespace's remains).
    let (code, detail) = if let Err(e) = sockets.check() {
        (spec.kind.socket_error_code(), e.to_string())
    } else {
        match &spec.kind {
            // A plain TCP check (half-open or connect) is bounded by the deadline already: it
            // needs no guard, which saves a second timer per probe on the checker's hottest path.
            ProbeKind::Tcp { port, tls: None } => {
                let addr = std::net::SocketAddr::new(target, *port);
                match plain {
                    PlainTcp::HalfOpen { engine, fallback }
                        if !fallback || engine.supports(target) =>
                    {
                        engine
                            .check_until(addr, source, deadline, spec.timeout)
                            .await
                    }
                    PlainTcp::Unavailable(reason) => (
                        ResultCode::L4Con,
                        format!("half-open check unavailable: {reason}"),
                    ),
                    // Boxed, so that the half-open path's future stays small (one small block
                    // per probe, which the allocator recycles cheaply).
                    _ => {
                        Box::pin(net::plain_check(
                            sockets,
                            addr,
                            source,
                            deadline,
                            spec.timeout,
                        ))
                        .await
                    }
                }
            }
            // Boxed: the TLS and HTTP state is large, and a plain TCP check (the hot path, run
            // by the thousand) should not carry room for it.
            _ => Box::pin(guarded(sockets, spec, target, source, deadline)).await,
        }
    };
    let elapsed = start.elapsed();
    tracing::trace!(
        target: "maglev_health::probe",
        %target,
        code = code.as_str(),
        detail = %detail,
        elapsed_ms = elapsed.as_millis() as u64,
        "probe-done"
    );
    ProbeResult::new(code, detail, elapsed)
}

/// How [`ProbeRunner`] runs plain TCP checks (TCP without TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TcpCheckMode {
    /// Half-open when a [`SynEngine`] can be created (CAP_NET_RAW), else connect. Decided
    /// once, at the first plain TCP check, and logged (`tcp-check-mode`).
    #[default]
    Auto,
    /// Half-open only. Without raw sockets, every plain TCP check fails with `L4CON` and a
    /// detail saying why, rather than silently checking another way.
    HalfOpen,
    /// Connect, then reset before the server accepts (what [`probe`] does).
    Connect,
}

impl fmt::Display for TcpCheckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::HalfOpen => "half-open",
            Self::Connect => "connect",
        })
    }
}

/// Half-open TCP checks were asked for and cannot run here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("half-open tcp checks unavailable: {reason} (raw sockets need CAP_NET_RAW)")]
pub struct HalfOpenUnavailable {
    /// Why the raw sockets could not be opened.
    pub reason: String,
}

/// Runs probes like [`probe`], with plain TCP checks done as its [`TcpCheckMode`] says.
///
/// `Send + Sync`; share one (in an `Arc`) between all probes. The half-open engine is created
/// at the first plain TCP check (or by [`ProbeRunner::prepare`]), inside the tokio runtime
/// running it, and belongs to that runtime from then on.
#[derive(Debug)]
pub struct ProbeRunner {
    mode: TcpCheckMode,
    sockets: SocketFactory,
    backend: OnceLock<TcpBackend>,
}

#[derive(Debug)]
enum TcpBackend {
    HalfOpen(SynEngine),
    Connect,
    Unavailable(String),
}

impl Default for ProbeRunner {
    /// A runner in [`TcpCheckMode::Auto`].
    fn default() -> Self {
        Self::new(TcpCheckMode::Auto)
    }
}

impl ProbeRunner {
    /// A runner whose plain TCP checks follow `mode`. Opens nothing yet.
    pub fn new(mode: TcpCheckMode) -> Self {
        Self::with_sockets(mode, SocketFactory::host())
    }

    /// A runner whose plain TCP checks follow `mode` and whose every socket `sockets`
    /// creates (in its network namespace). Opens nothing yet.
    pub fn with_sockets(mode: TcpCheckMode, sockets: SocketFactory) -> Self {
        Self {
            mode,
            sockets,
            backend: OnceLock::new(),
        }
    }

    /// Where this runner's sockets are created.
    pub fn sockets(&self) -> &SocketFactory {
        &self.sockets
    }

    /// The mode asked for.
    pub fn mode(&self) -> TcpCheckMode {
        self.mode
    }

    /// Decides now how plain TCP checks run (otherwise the first one decides), so that a
    /// daemon can report it, or fail, at startup. Returns the effective mode (`HalfOpen` or
    /// `Connect`), or why `HalfOpen` cannot run. Must be called inside a tokio runtime.
    pub fn prepare(&self) -> Result<TcpCheckMode, HalfOpenUnavailable> {
        match self.backend() {
            TcpBackend::HalfOpen(_) => Ok(TcpCheckMode::HalfOpen),
            TcpBackend::Connect => Ok(TcpCheckMode::Connect),
            TcpBackend::Unavailable(reason) => Err(HalfOpenUnavailable {
                reason: reason.clone(),
            }),
        }
    }

    /// The effective mode of plain TCP checks (`HalfOpen` or `Connect`) once decided; `None`
    /// before the first plain TCP check (and [`ProbeRunner::prepare`]), or when `HalfOpen`
    /// was asked for and is unavailable.
    pub fn tcp_mode_in_use(&self) -> Option<TcpCheckMode> {
        match self.backend.get()? {
            TcpBackend::HalfOpen(_) => Some(TcpCheckMode::HalfOpen),
            TcpBackend::Connect => Some(TcpCheckMode::Connect),
            TcpBackend::Unavailable(_) => None,
        }
    }

    /// The half-open engine, when plain TCP checks use one.
    pub fn syn_engine(&self) -> Option<&SynEngine> {
        match self.backend.get()? {
            TcpBackend::HalfOpen(engine) => Some(engine),
            _ => None,
        }
    }

    /// Runs one probe of `target` as `spec` says: [`probe`], except that plain TCP checks
    /// run half-open when the mode says so. On a host without IPv6 raw sockets, IPv6 plain
    /// TCP checks connect in `Auto` mode and fail with `L4CON` in `HalfOpen` mode. Must run
    /// inside a tokio runtime with I/O and time enabled.
    pub async fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> ProbeResult {
        let plain = match &spec.kind {
            ProbeKind::Tcp { tls: None, .. } => match self.backend() {
                TcpBackend::HalfOpen(engine) => PlainTcp::HalfOpen {
                    engine,
                    fallback: self.mode == TcpCheckMode::Auto,
                },
                TcpBackend::Connect => PlainTcp::Connect,
                TcpBackend::Unavailable(reason) => PlainTcp::Unavailable(reason),
            },
            _ => PlainTcp::Connect,
        };
        run(&self.sockets, spec, target, plain).await
    }

    fn backend(&self) -> &TcpBackend {
        self.backend.get_or_init(|| {
            if self.mode == TcpCheckMode::Connect {
                tracing::info!(
                    name: "tcp-check-mode",
                    target: "maglev_health::probe",
                    mode = "connect",
                    reason = "configured",
                    "tcp-check-mode"
                );
                return TcpBackend::Connect;
            }
            match SynEngine::with_sockets(self.sockets.clone()) {
                Ok(engine) => {
                    tracing::info!(
                        name: "tcp-check-mode",
                        target: "maglev_health::probe",
                        mode = "half-open",
                        reason = "raw sockets available",
                        ipv6 = engine.supports(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                        "tcp-check-mode"
                    );
                    TcpBackend::HalfOpen(engine)
                }
                Err(e) if self.mode == TcpCheckMode::Auto => {
                    tracing::info!(
                        name: "tcp-check-mode",
                        target: "maglev_health::probe",
                        mode = "connect",
                        reason = %format!("raw socket: {}", io_detail(&e)),
                        "tcp-check-mode"
                    );
                    TcpBackend::Connect
                }
                Err(e) => {
                    let reason = format!("raw socket: {}", io_detail(&e));
                    tracing::warn!(
                        name: "tcp-check-mode",
                        target: "maglev_health::probe",
                        mode = "half-open",
                        reason = %reason,
                        "tcp-check-mode"
                    );
                    TcpBackend::Unavailable(reason)
                }
            }
        })
    }
}

/// `start + d`, saturating far in the future instead of overflowing.
fn deadline_after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365))
}

/// `"timeout after 1s"`, `"timeout after 200ms"`.
fn timeout_detail(timeout: Duration) -> String {
    format!("timeout after {}", human_duration(timeout))
}

/// A short duration for details: whole seconds as `1s`, whole milliseconds as `200ms`.
fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{d:?}")
    }
}

/// A short, lower-case description of a socket error.
pub(crate) fn io_detail(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let s = match e.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::AddrNotAvailable => "address not available",
        K::AddrInUse => "address in use",
        K::PermissionDenied => "permission denied",
        K::UnexpectedEof => "connection closed",
        K::BrokenPipe => "broken pipe",
        K::TimedOut => "timed out",
        _ => {
            let s = e.to_string();
            // `Display` of an OS error ends with " (os error N)"; keep the words.
            let words = s.split(" (os error").next().unwrap_or(&s);
            return words.to_lowercase();
        }
    };
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config() {
        assert_eq!(human_duration(Duration::from_secs(1)), "1s");
        assert_eq!(human_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(
            timeout_detail(Duration::from_secs(3)),
            "timeout after 3s".to_owned()
        );
    }

    #[test]
    fn regex_equality_is_by_pattern() {
        let a = BodyRegex::new("ok|up").unwrap();
        let b = BodyRegex::new("ok|up").unwrap();
        let c = BodyRegex::new("up|ok").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.is_match(b"status: up"));
        assert!(!a.is_match(b"status: down"));
        let err = BodyRegex::new("(").unwrap_err();
        assert!(matches!(err, SpecError::InvalidRegexp { .. }), "{err}");
    }

    #[test]
    fn validate_rejects_what_cannot_be_sent() {
        let http = |f: &dyn Fn(&mut HttpParams)| {
            let mut p = HttpParams::new(80);
            f(&mut p);
            ProbeSpec::new(ProbeKind::Http(p), Duration::from_secs(1)).validate()
        };
        assert_eq!(http(&|_| {}), Ok(()));
        assert_eq!(
            http(&|p| p.path = "healthz".into()),
            Err(SpecError::InvalidPath("healthz".into()))
        );
        assert_eq!(
            http(&|p| p.host = Some("a\nb".into())),
            Err(SpecError::InvalidHost("a\nb".into()))
        );
        assert_eq!(
            http(&|p| p.status = (400, 200)),
            Err(SpecError::InvalidStatusRange { lo: 400, hi: 200 })
        );
        assert_eq!(http(&|p| p.port = 0), Err(SpecError::ZeroPort));
        assert_eq!(
            ProbeSpec::new(ProbeKind::Icmp, Duration::ZERO).validate(),
            Err(SpecError::ZeroTimeout)
        );
    }

    #[test]
    fn spec_and_probe_future_fit_the_checker() {
        fn shareable<T: Clone + fmt::Debug + PartialEq + Eq + Send + Sync + 'static>() {}
        fn send<T: Send>(_: &T) {}
        shareable::<ProbeSpec>();
        let spec = ProbeSpec::new(ProbeKind::Icmp, Duration::from_secs(1));
        let fut = probe(&spec, IpAddr::V4(Ipv4Addr::LOCALHOST));
        send(&fut);
    }

    #[tokio::test]
    async fn an_invalid_http_spec_fails_without_connecting() {
        let mut p = HttpParams::new(1);
        p.path = "no-slash".into();
        let spec = ProbeSpec::new(ProbeKind::Http(p), Duration::from_secs(1));
        let r = probe(&spec, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
        assert_eq!(r.code, ResultCode::L7Rsp);
        assert!(r.detail.starts_with("invalid check: path"), "{}", r.detail);
    }

    #[tokio::test]
    async fn a_zero_or_huge_timeout_does_not_panic() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let target = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let tcp = |timeout| ProbeSpec::new(ProbeKind::Tcp { port, tls: None }, timeout);
        // No overflow computing the deadline: the refusal comes back as usual.
        let r = probe(&tcp(Duration::MAX), target).await;
        assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
        // A zero timeout expires at once, unless the refusal is already there.
        let r = probe(&tcp(Duration::ZERO), target).await;
        assert!(
            matches!(r.code, ResultCode::L4Tout | ResultCode::L4Con),
            "{r:?}"
        );
        assert!(r.elapsed < Duration::from_secs(1), "{r:?}");
    }

    #[test]
    fn source_follows_the_target_family() {
        let mut spec = ProbeSpec::new(ProbeKind::Icmp, Duration::from_secs(1));
        spec.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(spec.source_for(v4), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(spec.source_for(v6), None);
        spec.source_v6 = Some(Ipv6Addr::LOCALHOST);
        assert_eq!(spec.source_for(v6), Some(v6));
    }
}
