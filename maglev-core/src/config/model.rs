//! The validated `maglev.yaml` model: every default resolved, every reference checked.
//!
//! Values of these types only come out of [`Config::from_yaml_str`], which runs the parse stage
//! and the semantic stage; code that holds a [`Config`] can rely on every rule documented here.
//! Maps are [`BTreeMap`]s and lists keep file order, so iteration is deterministic.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;

/// Default values of every optional key, in one place.
pub mod defaults {
    use std::time::Duration;

    /// `healthchecker.transition-history`.
    pub const TRANSITION_HISTORY: u32 = 5;
    /// `vpp.lb.sticky-buckets-per-core`.
    pub const STICKY_BUCKETS_PER_CORE: u32 = 65_536;
    /// `vpp.lb.flow-timeout`.
    pub const FLOW_TIMEOUT: Duration = Duration::from_secs(40);
    /// `vpp.lb.sync-interval`.
    pub const SYNC_INTERVAL: Duration = Duration::from_secs(30);
    /// `vpp.lb.startup-min-delay`.
    pub const STARTUP_MIN_DELAY: Duration = Duration::from_secs(5);
    /// `vpp.lb.startup-max-delay`.
    pub const STARTUP_MAX_DELAY: Duration = Duration::from_secs(30);
    /// `healthchecks.<name>.interval` (also the default of `fast-interval` and `down-interval`).
    pub const INTERVAL: Duration = Duration::from_secs(2);
    /// `healthchecks.<name>.timeout` (or `interval` when that is shorter).
    pub const TIMEOUT: Duration = Duration::from_secs(1);
    /// `healthchecks.<name>.rise`.
    pub const RISE: u8 = 2;
    /// `healthchecks.<name>.fall`.
    pub const FALL: u8 = 3;
    /// `healthchecks.<name>.params.path`.
    pub const HTTP_PATH: &str = "/";
    /// `healthchecks.<name>.params.response-code` (inclusive range).
    pub const HTTP_RESPONSE_CODES: (u16, u16) = (200, 399);
    /// `backends.<name>.enabled`.
    pub const BACKEND_ENABLED: bool = true;
    /// `frontends.<name>.pools[i].backends.<name>.weight`.
    pub const POOL_WEIGHT: u8 = 100;
    /// `frontends.<name>.flush-on-down`.
    pub const FLUSH_ON_DOWN: bool = true;
    /// `frontends.<name>.src-ip-sticky`.
    pub const SRC_IP_STICKY: bool = false;
    /// `frontends.<name>.new-flows-table-length`.
    pub const NEW_FLOWS_TABLE_LENGTH: u32 = 1024;
    /// `frontends.<name>.port` (0 = every port).
    pub const FRONTEND_PORT: u16 = 0;
    /// Largest accepted `healthchecker.transition-history`.
    pub const MAX_TRANSITION_HISTORY: u32 = 10_000;
    /// Largest accepted pool weight.
    pub const MAX_WEIGHT: u8 = 100;
    /// Largest accepted `rise` / `fall`.
    pub const MAX_RISE_FALL: u8 = 100;
    /// Largest accepted `vpp.lb.flow-timeout`, in seconds.
    pub const MAX_FLOW_TIMEOUT_SECS: u64 = 120;
    /// Largest accepted `new-flows-table-length` (a power of two).
    pub const MAX_NEW_FLOWS_TABLE_LENGTH: u32 = 1 << 24;
    /// Largest accepted `sticky-buckets-per-core` (a power of two).
    pub const MAX_STICKY_BUCKETS_PER_CORE: u32 = 1 << 28;
}

/// A validated `maglev.yaml` (everything under the top-level `maglev:` key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Global health-checker settings (`maglev.healthchecker`).
    pub healthchecker: HealthChecker,
    /// VPP integration (`maglev.vpp`); `None` when the file has no `vpp` section. A daemon that
    /// talks to VPP must refuse to program it without this section.
    pub vpp: Option<Vpp>,
    /// Health checks by name (`maglev.healthchecks`).
    pub healthchecks: BTreeMap<String, HealthCheck>,
    /// Backends by name (`maglev.backends`).
    pub backends: BTreeMap<String, Backend>,
    /// Frontends (one VPP VIP each) in file order (`maglev.frontends`). Names are unique.
    pub frontends: Vec<Frontend>,
}

/// `maglev.healthchecker`: global health-checker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChecker {
    /// How many state transitions are kept per backend (>= 1).
    pub transition_history: u32,
    /// Linux network namespace to run probes in; `None` means the current one.
    pub netns: Option<String>,
}

impl Default for HealthChecker {
    fn default() -> Self {
        Self {
            transition_history: defaults::TRANSITION_HISTORY,
            netns: None,
        }
    }
}

/// `maglev.vpp`: VPP integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpp {
    /// `maglev.vpp.lb`: the load-balancer plugin settings.
    pub lb: VppLb,
}

/// `maglev.vpp.lb`: global settings of VPP's `lb` plugin and of our sync loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppLb {
    /// Source address of IPv4 GRE encapsulation (`lb_conf.ip4_src_address`), required.
    pub ipv4_src_address: Ipv4Addr,
    /// Source address of IPv6 GRE encapsulation (`lb_conf.ip6_src_address`), required.
    pub ipv6_src_address: Ipv6Addr,
    /// Per-worker sticky flow-table buckets (`lb_conf.sticky_buckets_per_core`), a power of two.
    pub sticky_buckets_per_core: u32,
    /// Idle flow timeout (`lb_conf.flow_timeout`): whole seconds, 1 to 120.
    pub flow_timeout: Duration,
    /// Period of the full drift-reconciliation pass (> 0).
    pub sync_interval: Duration,
    /// Absolute hands-off window after start (may be 0).
    pub startup_min_delay: Duration,
    /// Deadline of the per-VIP warmup release (may be 0; never below `startup_min_delay`).
    pub startup_max_delay: Duration,
}

impl VppLb {
    /// `flow_timeout` in whole seconds, as `lb_conf` wants it.
    #[must_use]
    pub fn flow_timeout_secs(&self) -> u32 {
        // Validation bounds the value to 1..=120 seconds.
        u32::try_from(self.flow_timeout.as_secs()).unwrap_or(u32::MAX)
    }
}

/// `maglev.healthchecks.<name>`: one probe definition, shareable by many backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The check's name (its key in `healthchecks`).
    pub name: String,
    /// Probe type and its type-specific parameters.
    pub kind: CheckKind,
    /// Port to probe; `None` exactly for ICMP, `Some(1..=65535)` otherwise.
    pub port: Option<u16>,
    /// Wait between probes while fully up (> 0).
    pub interval: Duration,
    /// Wait between probes while unknown, rising or falling (> 0; defaults to `interval`).
    pub fast_interval: Duration,
    /// Wait between probes while fully down (> 0; defaults to `interval`).
    pub down_interval: Duration,
    /// Probe timeout (> 0, never above `interval`).
    pub timeout: Duration,
    /// Consecutive successes needed to go up (1-100).
    pub rise: u8,
    /// Consecutive failures needed to go down (1-100).
    pub fall: u8,
    /// Source address bound for IPv4 probes; `None` lets the kernel pick.
    pub probe_ipv4_src: Option<Ipv4Addr>,
    /// Source address bound for IPv6 probes; `None` lets the kernel pick.
    pub probe_ipv6_src: Option<Ipv6Addr>,
}

impl HealthCheck {
    /// The short type name used in the file: `http`, `https`, `tcp` or `icmp`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }
}

/// Probe type with its resolved parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `type: http`: plain HTTP GET.
    Http(HttpParams),
    /// `type: https`: HTTP GET over TLS.
    Https {
        /// HTTP request and response rules.
        http: HttpParams,
        /// TLS settings.
        tls: TlsParams,
    },
    /// `type: tcp`: connect, optionally followed by a TLS handshake (`params.ssl: true`).
    Tcp {
        /// `Some` when `params.ssl` is true.
        tls: Option<TlsParams>,
    },
    /// `type: icmp`: echo request / reply.
    Icmp,
}

impl CheckKind {
    /// The short type name used in the file: `http`, `https`, `tcp` or `icmp`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Https { .. } => "https",
            Self::Tcp { .. } => "tcp",
            Self::Icmp => "icmp",
        }
    }

    /// HTTP parameters, for `http` and `https` checks.
    #[must_use]
    pub fn http(&self) -> Option<&HttpParams> {
        match self {
            Self::Http(http) | Self::Https { http, .. } => Some(http),
            Self::Tcp { .. } | Self::Icmp => None,
        }
    }

    /// TLS parameters, for `https` checks and `tcp` checks with `ssl: true`.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsParams> {
        match self {
            Self::Https { tls, .. } => Some(tls),
            Self::Tcp { tls } => tls.as_ref(),
            Self::Http(_) | Self::Icmp => None,
        }
    }
}

/// HTTP request and response rules (`params` of `http` / `https` checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpParams {
    /// Absolute request path (starts with `/`).
    pub path: String,
    /// `Host` header; `None` means the backend's address.
    pub host: Option<String>,
    /// Accepted status codes.
    pub response_codes: StatusRange,
    /// Regex the body (at most its first 64 KiB) must match, if set.
    pub response_regexp: Option<ResponseRegex>,
}

/// An inclusive range of HTTP status codes, both ends within 100-599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub min: u16,
    /// Highest accepted code (>= `min`).
    pub max: u16,
}

impl StatusRange {
    /// Whether `code` is in the range.
    #[must_use]
    pub fn contains(&self, code: u16) -> bool {
        (self.min..=self.max).contains(&code)
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// A compiled `response-regexp`; equality compares the pattern text.
#[derive(Debug, Clone)]
pub struct ResponseRegex(pub regex::Regex);

impl ResponseRegex {
    /// The pattern as written in the file.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the pattern matches somewhere in `body`.
    #[must_use]
    pub fn is_match(&self, body: &str) -> bool {
        self.0.is_match(body)
    }
}

impl PartialEq for ResponseRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ResponseRegex {}

/// TLS settings of `https` checks and of `tcp` checks with `ssl: true`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsParams {
    /// SNI and name to verify: `params.server-name`, else `params.host`, else `None`.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
}

/// `maglev.backends.<name>`: one real server, probed once however many frontends use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The backend's name (its key in `backends`).
    pub name: String,
    /// Its address; VPP installs it as an application server (AS).
    pub address: IpAddr,
    /// Name of its health check (exists in [`Config::healthchecks`]); `None` = static, always up.
    pub healthcheck: Option<String>,
    /// Initial administrative state.
    pub enabled: bool,
}

/// IP protocol of a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// Every protocol and port: an all-port VIP (VPP's protocol 255, port 0).
    Any,
}

impl Protocol {
    /// The protocol number VPP's `lb` plugin uses (6, 17, or 255 for any).
    #[must_use]
    pub fn ip_proto(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Any => 255,
        }
    }

    /// The name used in the file: `tcp`, `udp` or `any`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Any => "any",
        }
    }
}

/// GRE encapsulation of a VIP, derived from its address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encap {
    /// IPv4 backends (`LB_API_ENCAP_TYPE_GRE4`).
    Gre4,
    /// IPv6 backends (`LB_API_ENCAP_TYPE_GRE6`).
    Gre6,
}

impl Encap {
    /// The encap that carries traffic to backends of `address`'s family.
    #[must_use]
    pub fn for_address(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self::Gre4,
            IpAddr::V6(_) => Self::Gre6,
        }
    }
}

/// `maglev.frontends.<name>`: one VPP VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// The frontend's name (its key in `frontends`).
    pub name: String,
    /// Free-text description (empty when unset).
    pub description: String,
    /// The VIP address (the network address of `prefix`).
    pub address: IpAddr,
    /// The VIP prefix: `address/32` or `address/128` unless the file gives a prefix.
    pub prefix: IpNet,
    /// The VIP protocol.
    pub protocol: Protocol,
    /// The VIP port: 0 exactly when `protocol` is [`Protocol::Any`].
    pub port: u16,
    /// Priority tiers, in file order: the first pool with an up backend is active. Non-empty.
    pub pools: Vec<Pool>,
    /// Source-IP stickiness (`lb_add_del_vip_v2.src_ip_sticky`).
    pub src_ip_sticky: bool,
    /// Flush existing flows of a backend that goes down.
    pub flush_on_down: bool,
    /// Size of the VIP's new-flow (Maglev) table: a power of two, never 0.
    pub new_flows_table_length: u32,
    /// Encapsulation, from the VIP's family; every backend shares that family.
    pub encap: Encap,
}

impl Frontend {
    /// Backend names of every pool in pool order then file order, each once (first pool wins).
    pub fn backend_names(&self) -> impl Iterator<Item = &str> + '_ {
        let mut seen = std::collections::BTreeSet::new();
        self.pools
            .iter()
            .flat_map(|pool| pool.backends.iter())
            .map(|member| member.backend.as_str())
            .filter(move |name| seen.insert(*name))
    }

    /// The pool membership of `backend` that counts (the first pool listing it) with its index.
    #[must_use]
    pub fn membership(&self, backend: &str) -> Option<(usize, &PoolMember)> {
        self.pools.iter().enumerate().find_map(|(index, pool)| {
            pool.backends
                .iter()
                .find(|member| member.backend == backend)
                .map(|member| (index, member))
        })
    }
}

/// One priority tier of a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's name (non-empty, unique within its frontend).
    pub name: String,
    /// Members in file order (non-empty, each backend at most once per pool).
    pub backends: Vec<PoolMember>,
}

/// A backend's membership in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMember {
    /// Name of the backend (exists in [`Config::backends`]).
    pub backend: String,
    /// Configured weight, 0-100.
    pub weight: u8,
}

impl Config {
    /// The frontend called `name`.
    #[must_use]
    pub fn frontend(&self, name: &str) -> Option<&Frontend> {
        self.frontends.iter().find(|frontend| frontend.name == name)
    }

    /// The backend called `name`.
    #[must_use]
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.get(name)
    }

    /// The health check called `name`.
    #[must_use]
    pub fn healthcheck(&self, name: &str) -> Option<&HealthCheck> {
        self.healthchecks.get(name)
    }

    /// The health check of `backend`, if it has one.
    #[must_use]
    pub fn healthcheck_of(&self, backend: &Backend) -> Option<&HealthCheck> {
        backend
            .healthcheck
            .as_deref()
            .and_then(|name| self.healthchecks.get(name))
    }

    /// The backends of frontend `name`, each once, in pool order then file order; empty when
    /// there is no such frontend.
    #[must_use]
    pub fn backends_of_frontend(&self, name: &str) -> Vec<&Backend> {
        self.frontend(name)
            .map(|frontend| {
                frontend
                    .backend_names()
                    .filter_map(|backend| self.backends.get(backend))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names of the frontends that use backend `name`, in file order.
    pub fn frontends_of_backend<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.frontends
            .iter()
            .filter(move |frontend| frontend.membership(name).is_some())
            .map(|frontend| frontend.name.as_str())
    }
}
