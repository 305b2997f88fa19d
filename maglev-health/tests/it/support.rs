//! Loopback test servers for the prober tests: a tiny HTTP/1.1 server (optionally over TLS),
//! a TLS-only server, a silent listener and a closed port. Every server records what it saw.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_health::probe::{HttpParams, ProbeKind, ProbeSpec, TlsParams};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub(crate) const V4: &str = "127.0.0.1";
pub(crate) const V6: &str = "::1";

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What the HTTP server does with each request.
#[derive(Clone, Debug)]
pub(crate) enum Behaviour {
    /// Wait `delay`, then answer with `status` and `body`.
    Respond {
        status: u16,
        body: Vec<u8>,
        delay: Duration,
    },
    /// Read the request, then close without a word.
    Close,
    /// Read the request, then send these bytes and close.
    Raw(Vec<u8>),
    /// Read the request and never answer (holds the connection open).
    Silent,
}

impl Behaviour {
    pub(crate) fn status(status: u16) -> Self {
        Self::Respond {
            status,
            body: b"ok".to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn body(body: impl Into<Vec<u8>>) -> Self {
        Self::Respond {
            status: 200,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// One connection as the server saw it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seen {
    pub(crate) peer: Option<SocketAddr>,
    /// The request head (request line and headers), as text.
    pub(crate) head: String,
    /// The SNI the client sent, for TLS servers.
    pub(crate) sni: Option<String>,
}

impl Seen {
    /// The value of header `name` (case-insensitive) in the request head.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    pub(crate) fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
}

/// A running server: its address and what it saw.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP server on `bind`, plain or (with `tls`) HTTPS.
pub(crate) async fn http_server(
    bind: &str,
    behaviour: Behaviour,
    tls: Option<TlsAcceptor>,
) -> Server {
    let listener = TcpListener::bind((ip(bind), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let behaviour = behaviour.clone();
            let tls = tls.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut seen = Seen {
                    peer: Some(peer),
                    ..Seen::default()
                };
                match tls {
                    None => serve_http(stream, &behaviour, &mut seen, &log).await,
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            log.lock().unwrap().push(seen);
                            return;
                        };
                        seen.sni = tls.get_ref().1.server_name().map(str::to_owned);
                        serve_http(tls, &behaviour, &mut seen, &log).await;
                    }
                }
            });
        }
    });
    Server { addr, seen, task }
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    behaviour: &Behaviour,
    seen: &mut Seen,
    log: &Mutex<Vec<Seen>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    seen.head = String::from_utf8_lossy(&head).into_owned();
    log.lock().unwrap().push(seen.clone());
    match behaviour {
        Behaviour::Respond {
            status,
            body,
            delay,
        } => {
            tokio::time::sleep(*delay).await;
            let head = format!(
                "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
            let _ = stream.shutdown().await;
        }
        Behaviour::Close => {
            let _ = stream.shutdown().await;
        }
        Behaviour::Raw(bytes) => {
            let _ = stream.write_all(bytes).await;
            let _ = stream.shutdown().await;
        }
        Behaviour::Silent => {
            std::future::pending::<()>().await;
        }
    }
}

/// A TLS server that completes handshakes, records the SNI, then closes.
pub(crate) async fn tls_server(bind: &str, acceptor: TlsAcceptor) -> Server {
    let listener = TcpListener::bind((ip(bind), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut seen = Seen {
                    peer: Some(peer),
                    ..Seen::default()
                };
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    seen.sni = tls.get_ref().1.server_name().map(str::to_owned);
                    let _ = tls.shutdown().await;
                }
                log.lock().unwrap().push(seen);
            });
        }
    });
    Server { addr, seen, task }
}

/// A listener that accepts and records connections, then holds them open without a word.
pub(crate) async fn silent_server(bind: &str) -> Server {
    let listener = TcpListener::bind((ip(bind), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            log.lock().unwrap().push(Seen {
                peer: Some(peer),
                ..Seen::default()
            });
            held.push(stream);
        }
    });
    Server { addr, seen, task }
}

/// A server that writes `bytes` as soon as it accepts, then closes (no request read).
pub(crate) async fn greeter(bind: &str, bytes: &'static [u8]) -> Server {
    let listener = TcpListener::bind((ip(bind), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(bytes).await;
            let _ = stream.shutdown().await;
        }
    });
    Server { addr, seen, task }
}

/// A port on `bind` that nothing listens on: bound, then released.
pub(crate) fn closed_port(bind: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip(bind), 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// A CA and a leaf certificate for `backend.test` and 127.0.0.1, with the leaf's key.
pub(crate) struct Pki {
    pub(crate) ca: CertificateDer<'static>,
    pub(crate) leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

impl Pki {
    pub(crate) fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["backend.test".to_owned(), V4.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        Self {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    }

    /// A server-side acceptor presenting the leaf (and the CA) certificate.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone(), self.ca.clone()], key)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    /// Client TLS params that trust this CA, with `server_name`.
    pub(crate) fn trusting(&self, server_name: Option<&str>) -> TlsParams {
        TlsParams::with_roots(server_name.map(str::to_owned), vec![self.ca.clone()]).unwrap()
    }
}

pub(crate) fn spec(kind: ProbeKind, timeout_ms: u64) -> ProbeSpec {
    ProbeSpec::new(kind, Duration::from_millis(timeout_ms))
}

pub(crate) fn http(port: u16) -> HttpParams {
    HttpParams::new(port)
}

pub(crate) fn tcp(port: u16, tls: Option<TlsParams>) -> ProbeKind {
    ProbeKind::Tcp { port, tls }
}
