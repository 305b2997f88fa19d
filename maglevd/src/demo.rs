//! Local backend servers for the embedded demo: tiny HTTP and TCP listeners on the example
//! config's loopback addresses, so some backends come up, one flaps and the rest stay down.
//!
//! Only plain `http` and `tcp` (without TLS) checks get a server; `https`, TCP+TLS and ICMP
//! backends are left alone (ICMP answers on loopback anyway when ping sockets are allowed).

use std::net::SocketAddr;
use std::time::Duration;

use maglev_core::config::{CheckKind, Config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The body every demo HTTP server answers with; matches the example's `ok|healthy`.
pub const HTTP_BODY: &str = "ok\n";

/// What a demo server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Answers every request with `200 OK` and [`HTTP_BODY`].
    Http,
    /// Accepts and closes.
    Tcp,
}

/// One demo server to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoServer {
    /// The backend it stands in for.
    pub backend: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it speaks.
    pub service: Service,
    /// `Some(period)`: listen for one period, stay away for one period, and so on.
    pub flap: Option<Duration>,
}

/// The servers that make the backends of `config` reachable: one per loopback backend with a
/// plain `http` or `tcp` check. Backends named in `flapping` come and go every `flap_period`.
pub fn plan(config: &Config, flapping: &[&str], flap_period: Duration) -> Vec<DemoServer> {
    config
        .backends
        .values()
        // Only loopback addresses can be served here; the others stay down in the demo.
        .filter(|backend| backend.address.is_loopback())
        .filter_map(|backend| {
            let check = config.healthcheck_of(backend)?;
            let service = match &check.kind {
                CheckKind::Http(_) => Service::Http,
                CheckKind::Tcp { tls: None } => Service::Tcp,
                _ => return None,
            };
            Some(DemoServer {
                backend: backend.name.clone(),
                addr: SocketAddr::new(backend.address, check.port?),
                service,
                flap: flapping
                    .contains(&backend.name.as_str())
                    .then_some(flap_period),
            })
        })
        .collect()
}

/// Runs `servers` until the returned set is dropped or aborted. A server that cannot bind
/// logs a warning and leaves its backend down.
pub fn spawn(servers: Vec<DemoServer>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for server in servers {
        set.spawn(run(server));
    }
    set
}

async fn run(server: DemoServer) {
    loop {
        match TcpListener::bind(server.addr).await {
            Ok(listener) => {
                tracing::info!(
                    name: "demo-backend-listen",
                    backend = %server.backend,
                    addr = %server.addr,
                    service = ?server.service,
                    "demo-backend-listen"
                );
                match server.flap {
                    None => serve(&listener, server.service).await,
                    Some(period) => {
                        let _ =
                            tokio::time::timeout(period, serve(&listener, server.service)).await;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(
                    name: "demo-backend-bind-failed",
                    backend = %server.backend,
                    addr = %server.addr,
                    %error,
                    "demo-backend-bind-failed"
                );
                if server.flap.is_none() {
                    return;
                }
            }
        }
        let Some(period) = server.flap else { return };
        tracing::info!(
            name: "demo-backend-stop",
            backend = %server.backend,
            addr = %server.addr,
            "demo-backend-stop"
        );
        tokio::time::sleep(period).await;
    }
}

async fn serve(listener: &TcpListener, service: Service) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if service == Service::Http {
                        conns.spawn(answer_http(stream));
                    }
                    // A TCP service closes at once (dropping the stream).
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Reads one request head (bounded in size and time) and answers `200 OK`.
async fn answer_http(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    let read_head = async {
        while seen < buf.len() {
            match stream.read(&mut buf[seen..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen += n,
            }
            if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                return true;
            }
        }
        false
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(2), read_head).await,
        Ok(true)
    ) {
        return;
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{HTTP_BODY}",
        HTTP_BODY.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::{EMBEDDED_CONFIG, EMBEDDED_NAME};

    #[test]
    fn the_embedded_demo_serves_only_loopback_http_and_tcp_backends() {
        let config = Config::from_yaml_str(EMBEDDED_NAME, EMBEDDED_CONFIG).unwrap();
        let servers = plan(&config, &["web2"], Duration::from_secs(20));
        assert!(!servers.is_empty());
        for server in &servers {
            assert!(server.addr.ip().is_loopback(), "{server:?}");
            let backend = config.backend(&server.backend).unwrap();
            assert_eq!(server.addr.ip(), backend.address);
        }
        // The example's IPv6 backend has an HTTP check but a non-local address: no server.
        let v6: Vec<_> = config
            .backends
            .values()
            .filter(|b| b.address.is_ipv6() && config.healthcheck_of(b).is_some())
            .collect();
        assert!(!v6.is_empty());
        for backend in v6 {
            assert!(servers.iter().all(|s| s.backend != backend.name));
        }
        let flapping: Vec<_> = servers.iter().filter(|s| s.flap.is_some()).collect();
        assert_eq!(flapping.len(), 1);
        assert_eq!(flapping[0].backend, "web2");
    }
}
