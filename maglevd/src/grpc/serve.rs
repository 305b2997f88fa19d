//! Serving `maglev.v1` from the daemon: the listener (`host:port` or `unix:/path`), optional
//! TLS and mutual TLS, grpc.health.v1, server reflection, and a graceful stop.
//!
//! # Pieces
//!
//! - [`ListenAddr::parse`] reads `--grpc-addr` (pure): empty means off, `unix:/path` a unix
//!   socket, anything else a socket address.
//! - [`Listener::bind`] binds it at startup, so a taken port is a startup error that names the
//!   address. A unix socket file is created with mode 0660; a stale one (nobody accepts on
//!   it) is replaced, a live one or a file that is not a socket is refused; the file is
//!   removed when the listener is dropped.
//! - [`GrpcServer::start`] serves the service, the health service and (unless turned off)
//!   reflection v1 and v1alpha from the committed descriptor set. TLS is tonic's, over rustls
//!   with the ring provider (already in the graph for the client); it wraps our own incoming
//!   stream, so TCP and unix sockets share one code path.
//! - Health: the overall status (`""`) is SERVING while the server runs;
//!   `maglev.v1.Maglev` is SERVING while the sync engine has a VPP session and NOT_SERVING
//!   otherwise (always NOT_SERVING without VPP integration), driven by
//!   [`LbSyncer::subscribe`] with [`LbSyncer::snapshot`] to start from and after a lag.
//! - [`GrpcServer::shutdown`]: every response body still open (WatchEvents, health Watch,
//!   reflection streams) ends with `UNAVAILABLE "maglevd is shutting down"` as soon as it has
//!   nothing ready to send; the listener closes, in-flight calls drain, and after the deadline
//!   the rest is dropped.
//!
//! These live in maglevd rather than in `maglev-api`: the daemon is the only server, and
//! keeping the transport here leaves `maglev-api`'s `server` feature transport-free, so a
//! client never compiles server plumbing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use maglev_api::v1::maglev_server::MaglevServer;
use maglev_health::checker::Prober;
use maglev_vpp::syncer::{ConnectionState, LbSyncer, SyncEvent};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap};
use tonic::transport::server::Router;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::MaglevService;
use super::requests::GrpcRequests;

/// Largest request message accepted, in bytes (tonic's default, stated here on purpose: no
/// maglev.v1 request comes near it).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// How long [`GrpcServer::shutdown`] waits for in-flight calls by default.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// The final status of a stream cut by a shutdown.
pub const SHUTDOWN_MESSAGE: &str = "maglevd is shutting down";

/// Where the API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// TCP on this address (port 0: a free port, logged in `grpc-listening`).
    Tcp(SocketAddr),
    /// A unix socket at this path.
    Unix(PathBuf),
}

/// A `--grpc-addr` that is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--grpc-addr {value:?}: {reason} (expected host:port, unix:/path, or '' to turn the API off)"
)]
pub struct ListenAddrError {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ListenAddr {
    /// Parses `--grpc-addr`: `None` for an empty value (API off).
    ///
    /// # Errors
    ///
    /// A value that is neither `unix:/path` nor an `ip:port` (`[v6]:port`).
    pub fn parse(value: &str) -> Result<Option<Self>, ListenAddrError> {
        let trimmed = value.trim();
        let err = |reason: &str| ListenAddrError {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if trimmed.is_empty() {
            return Ok(None);
        }
        if let Some(path) = trimmed.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(err("the unix socket path is empty"));
            }
            return Ok(Some(Self::Unix(PathBuf::from(path))));
        }
        if let Some(host) = trimmed.strip_suffix(|c: char| c.is_ascii_digit())
            && host.starts_with("localhost:")
        {
            // `localhost:port` is loopback: the address operators write most.
            let port = &trimmed["localhost:".len()..];
            let port: u16 = port.parse().map_err(|_| err("invalid port"))?;
            return Ok(Some(Self::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))));
        }
        trimmed
            .parse::<SocketAddr>()
            .map(|a| Some(Self::Tcp(a)))
            .map_err(|e| err(&e.to_string()))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The PEM files of `--grpc-tls-cert`, `--grpc-tls-key` and `--grpc-tls-client-ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate this CA signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// How the API is served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TLS, or plain HTTP/2.
    pub tls: Option<TlsFiles>,
    /// Whether server reflection is served.
    pub reflection: bool,
    /// Where every call is counted by method and code (for `/metrics`).
    pub requests: GrpcRequests,
}

/// Why the API could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Binding the listener failed.
    #[error("gRPC API: cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: ListenAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The unix socket path holds something maglevd must not replace.
    #[error("gRPC API: cannot listen on {addr}: {reason}")]
    SocketInUse {
        /// The address.
        addr: ListenAddr,
        /// A live socket, or not a socket.
        reason: &'static str,
    },
    /// A TLS file could not be read.
    #[error("gRPC API: cannot read {path}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings were refused (a malformed certificate or key).
    #[error("gRPC API: bad TLS settings ({cert})")]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The reflection service could not read the descriptor set.
    #[error("gRPC API: reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
}

enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, SocketFile),
}

/// A bound listener, not serving yet.
pub struct Listener {
    bound: Bound,
    local: ListenAddr,
}

impl Listener {
    /// Binds `addr`.
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] or [`ServeError::SocketInUse`], naming the address.
    pub async fn bind(addr: &ListenAddr) -> Result<Self, ServeError> {
        let bind_error = |source| ServeError::Bind {
            addr: addr.clone(),
            source,
        };
        match addr {
            ListenAddr::Tcp(socket) => {
                let listener = TcpListener::bind(socket).await.map_err(bind_error)?;
                let local = ListenAddr::Tcp(listener.local_addr().map_err(bind_error)?);
                Ok(Self {
                    bound: Bound::Tcp(listener),
                    local,
                })
            }
            ListenAddr::Unix(path) => {
                remove_stale_socket(path).map_err(|e| match e {
                    StaleSocket::Io(source) => bind_error(source),
                    StaleSocket::Live => ServeError::SocketInUse {
                        addr: addr.clone(),
                        reason: "another process accepts on this socket",
                    },
                    StaleSocket::NotASocket => ServeError::SocketInUse {
                        addr: addr.clone(),
                        reason: "the path exists and is not a socket",
                    },
                })?;
                let listener = UnixListener::bind(path).map_err(bind_error)?;
                let file = SocketFile(path.clone());
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                        .map_err(bind_error)?;
                }
                Ok(Self {
                    bound: Bound::Unix(listener, file),
                    local: addr.clone(),
                })
            }
        }
    }

    /// The bound address (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.local
    }
}

enum StaleSocket {
    Io(std::io::Error),
    Live,
    NotASocket,
}

/// Removes a socket file nobody accepts on; leaves a live socket and any other file alone.
fn remove_stale_socket(path: &Path) -> Result<(), StaleSocket> {
    use std::os::unix::fs::FileTypeExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StaleSocket::Io(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(StaleSocket::NotASocket);
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(StaleSocket::Live);
    }
    std::fs::remove_file(path).map_err(StaleSocket::Io)
}

/// The unix socket file, removed on drop.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The running API server.
pub struct GrpcServer {
    local: ListenAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    health: HealthReporter,
    vpp_health: Option<JoinHandle<()>>,
    _socket: Option<SocketFile>,
}

impl GrpcServer {
    /// Serves `service` (and health, reflection) on `listener`. With `syncer`, the health
    /// status of `maglev.v1.Maglev` follows its VPP session.
    ///
    /// # Errors
    ///
    /// Bad TLS files or settings, or an unreadable descriptor set.
    pub async fn start<P: Prober>(
        listener: Listener,
        options: &ServeOptions,
        service: MaglevService<P>,
        syncer: Option<LbSyncer>,
    ) -> Result<Self, ServeError> {
        let stop = CancellationToken::new();
        let mut builder = Server::builder();
        if let Some(tls) = &options.tls {
            builder = builder
                .tls_config(tls_config(tls)?)
                .map_err(|source| ServeError::Tls {
                    cert: tls.cert.clone(),
                    source,
                })?;
        }
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status(maglev_api::SERVICE_NAME, ServingStatus::NotServing)
            .await;
        let cut = stop.clone();
        // Layers added later are inner: the count sees the shutdown trailers too.
        let builder = builder.layer(options.requests.layer());
        let mut builder = builder.layer(tower::util::MapResponseLayer::new(
            move |response: http::Response<Body>| {
                response.map(|body| Body::new(ShutdownBody::new(body, cut.clone())))
            },
        ));
        let maglev = MaglevServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES);
        let router = builder
            .add_service(maglev)
            .add_service(health_service)
            .add_optional_service(options.reflection.then(reflection_v1).transpose()?)
            .add_optional_service(options.reflection.then(reflection_v1alpha).transpose()?);
        let Listener { bound, local } = listener;
        let signal = stop.clone().cancelled_owned();
        let (task, socket) = match bound {
            Bound::Tcp(listener) => (
                tokio::spawn(serve(router, no_delay(listener), signal)),
                None,
            ),
            Bound::Unix(listener, file) => (
                tokio::spawn(serve(router, UnixListenerStream::new(listener), signal)),
                Some(file),
            ),
        };
        let vpp_health = syncer.map(|syncer| tokio::spawn(follow_vpp(syncer, health.clone())));
        tracing::info!(
            name: "grpc-listening",
            addr = %local,
            tls = options.tls.is_some(),
            mutual_tls = options.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            reflection = options.reflection,
            "grpc-listening"
        );
        Ok(Self {
            local,
            stop,
            task,
            health,
            vpp_health,
            _socket: socket,
        })
    }

    /// The address served (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.local
    }

    /// Stops serving: open streams end with `UNAVAILABLE` ([`SHUTDOWN_MESSAGE`]), the
    /// listener closes, in-flight calls get until `deadline` to finish, then the rest is
    /// dropped. The unix socket file is removed.
    pub async fn shutdown(self, deadline: Duration) {
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        if let Some(task) = &self.vpp_health {
            task.abort();
        }
        self.stop.cancel();
        let mut task = self.task;
        match tokio::time::timeout(deadline, &mut task).await {
            Ok(Ok(Ok(()))) => tracing::info!(name: "grpc-stopped", "grpc-stopped"),
            Ok(Ok(Err(error))) => {
                tracing::warn!(name: "grpc-stopped", error = %error, "grpc-stopped");
            }
            Ok(Err(error)) => tracing::warn!(name: "grpc-stopped", error = %error, "grpc-stopped"),
            Err(_) => {
                task.abort();
                tracing::warn!(
                    name: "grpc-drain-timeout",
                    deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                    "grpc-drain-timeout"
                );
            }
        }
    }
}

/// Accepted TCP connections with Nagle's algorithm off: a unary reply is one small write,
/// and with Nagle on it waits for the client's delayed ACK (about 40 ms a call on loopback).
fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |accepted| {
        accepted.and_then(|stream| stream.set_nodelay(true).map(|()| stream))
    })
}

async fn serve<L, I, IO, IE>(
    router: Router<L>,
    incoming: I,
    signal: WaitForCancellationFutureOwned,
) -> Result<(), tonic::transport::Error>
where
    L: tower::Layer<tonic::service::Routes> + Clone,
    L::Service: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<Body>>>::Future: Send + 'static,
    <L::Service as tower::Service<http::Request<Body>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    I: tokio_stream::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    router.serve_with_incoming_shutdown(incoming, signal).await
}

fn tls_config(files: &TlsFiles) -> Result<ServerTlsConfig, ServeError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ServeError::TlsFile {
            path: path.clone(),
            source,
        })
    };
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    if let Some(ca) = &files.client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(false);
    }
    Ok(config)
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(maglev_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder().build_v1()
}

fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder().build_v1alpha()
}

/// The health status of `maglev.v1.Maglev` for a VPP session state.
pub fn vpp_serving_status(connection: &ConnectionState) -> ServingStatus {
    match connection {
        ConnectionState::Connected => ServingStatus::Serving,
        ConnectionState::Connecting
        | ConnectionState::Disconnected { .. }
        | ConnectionState::Stopped => ServingStatus::NotServing,
    }
}

/// Keeps `maglev.v1.Maglev`'s health status equal to the syncer's VPP session state.
async fn follow_vpp(syncer: LbSyncer, health: HealthReporter) {
    // Subscribe before reading the snapshot, so a change between the two is not missed.
    let mut events = syncer.subscribe();
    let mut status = vpp_serving_status(&syncer.snapshot().connection);
    health
        .set_service_status(maglev_api::SERVICE_NAME, status)
        .await;
    loop {
        let next = match events.recv().await {
            Ok(SyncEvent::Connected(_)) => ServingStatus::Serving,
            Ok(SyncEvent::Disconnected { .. }) => ServingStatus::NotServing,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                vpp_serving_status(&syncer.snapshot().connection)
            }
            Err(broadcast::error::RecvError::Closed) => ServingStatus::NotServing,
        };
        if next != status {
            status = next;
            health
                .set_service_status(maglev_api::SERVICE_NAME, status)
                .await;
        }
        if events.is_closed() {
            return;
        }
    }
}

/// A response body that, once the server stops, ends with the trailers of
/// `UNAVAILABLE` ([`SHUTDOWN_MESSAGE`]) the next time it has nothing ready: a stream that
/// would wait for events gets a final status instead, and a body that is ready (a unary
/// reply) finishes as it is.
struct ShutdownBody<B> {
    inner: B,
    stop: CancellationToken,
    wait: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    done: bool,
}

impl<B> ShutdownBody<B> {
    fn new(inner: B, stop: CancellationToken) -> Self {
        Self {
            inner,
            stop,
            wait: None,
            done: false,
        }
    }
}

fn shutdown_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    // A fixed ASCII message always makes valid header values.
    let _ = tonic::Status::unavailable(SHUTDOWN_MESSAGE).add_header(&mut trailers);
    trailers
}

impl<B> tonic::codegen::Body for ShutdownBody<B>
where
    B: tonic::codegen::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            ready => return ready,
        }
        let stop = &this.stop;
        let wait = this
            .wait
            .get_or_insert_with(|| Box::pin(stop.clone().cancelled_owned()));
        match wait.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.done = true;
                Poll::Ready(Some(Ok(http_body::Frame::trailers(shutdown_trailers()))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let tcp = |s: &str| ListenAddr::parse(s).unwrap();
        assert_eq!(tcp(""), None);
        assert_eq!(tcp("  "), None);
        assert_eq!(
            tcp("127.0.0.1:9090"),
            Some(ListenAddr::Tcp("127.0.0.1:9090".parse().unwrap()))
        );
        assert_eq!(
            tcp("[::1]:0"),
            Some(ListenAddr::Tcp("[::1]:0".parse().unwrap()))
        );
        assert_eq!(
            tcp("localhost:9090"),
            Some(ListenAddr::Tcp("127.0.0.1:9090".parse().unwrap()))
        );
        assert_eq!(
            tcp("unix:/run/maglev.sock"),
            Some(ListenAddr::Unix("/run/maglev.sock".into()))
        );
        assert_eq!(
            tcp("unix:///run/maglev.sock"),
            Some(ListenAddr::Unix("/run/maglev.sock".into()))
        );
        for bad in [
            "unix:",
            "9090",
            "host",
            "example.com:80",
            "1.2.3.4:99999",
            "localhost:x",
        ] {
            let error = ListenAddr::parse(bad).unwrap_err();
            assert_eq!(error.value, bad);
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[test]
    fn vpp_health_follows_the_session() {
        assert_eq!(
            vpp_serving_status(&ConnectionState::Connected),
            ServingStatus::Serving
        );
        for state in [
            ConnectionState::Connecting,
            ConnectionState::Disconnected {
                error: "gone".into(),
            },
            ConnectionState::Stopped,
        ] {
            assert_eq!(vpp_serving_status(&state), ServingStatus::NotServing);
        }
    }

    #[tokio::test]
    async fn stale_unix_socket_is_replaced_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let addr = ListenAddr::Unix(path.clone());
        // A stale socket file: bound, then its listener dropped (the file stays).
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let listener = Listener::bind(&addr).await.unwrap();
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode, 0o660);
        // Live: a second bind is refused and leaves the socket alone.
        let error = Listener::bind(&addr).await.err().unwrap();
        assert!(matches!(error, ServeError::SocketInUse { .. }), "{error}");
        assert!(error.to_string().contains("api.sock"), "{error}");
        drop(listener);
        assert!(!path.exists(), "the socket file is removed on drop");
        // Not a socket: never removed.
        std::fs::write(&path, b"data").unwrap();
        assert!(Listener::bind(&addr).await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[tokio::test]
    async fn taken_port_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ListenAddr::Tcp(taken.local_addr().unwrap());
        let error = Listener::bind(&addr).await.err().unwrap();
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    }
}
