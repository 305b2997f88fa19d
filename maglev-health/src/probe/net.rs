//! TCP connect with an optional source address, and the TCP / TCP+TLS probe.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::tls::{self, TlsParams};
use super::{Outcome, io_detail, timeout_detail};
use crate::result::ResultCode;

/// Opens a fresh TCP connection to `target`, bound to `source` first when given.
///
/// Fails with `L4CON` (socket, bind or connect error) or `L4TOUT` (deadline reached).
pub(super) async fn connect(
    target: SocketAddr,
    source: Option<IpAddr>,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, Outcome> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| (ResultCode::L4Con, format!("socket: {}", io_detail(&e))))?;
    if let Some(src) = source {
        socket
            .bind(SocketAddr::new(src, 0))
            .map_err(|e| (ResultCode::L4Con, format!("bind {src}: {}", io_detail(&e))))?;
    }
    let stream = match tokio::time::timeout_at(deadline, socket.connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err((ResultCode::L4Con, io_detail(&e))),
        Err(_) => return Err((ResultCode::L4Tout, timeout_detail(timeout))),
    };
    // Probes write one small request; do not let Nagle hold it back. Failure is harmless.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// TCP connect, then a TLS handshake when `tls` is set.
pub(super) async fn tcp_probe(
    target: IpAddr,
    port: u16,
    source: Option<IpAddr>,
    tls: Option<&TlsParams>,
    deadline: Instant,
    timeout: Duration,
) -> Outcome {
    let stream = match connect(SocketAddr::new(target, port), source, deadline, timeout).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let Some(params) = tls else {
        return (ResultCode::L4Ok, "connected".to_owned());
    };
    let name = params.name_for(None, target);
    match tls::handshake(stream, params, name, deadline, timeout).await {
        Ok(conn) => (ResultCode::L6Ok, tls::describe(conn.get_ref().1)),
        Err(outcome) => outcome,
    }
}
