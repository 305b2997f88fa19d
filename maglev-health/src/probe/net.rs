//! TCP connect with an optional source address, and the TCP / TCP+TLS probe.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::tls::{self, TlsParams};
use super::{Outcome, io_detail, timeout_detail};
use crate::netns::SocketFactory;
use crate::result::ResultCode;

/// Opens a fresh TCP connection to `target`, bound to `source` first when given.
///
/// Fails with `L4CON` (socket, bind or connect error) or `L4TOUT` (deadline reached).
pub(super) async fn connect(
    sockets: &SocketFactory,
    target: SocketAddr,
    source: Option<IpAddr>,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, Outcome> {
    let socket = sockets
        .tcp(target)
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

/// A plain TCP check: `L4OK` once the handshake completes on our side (SYN-ACK received).
///
/// Cheap on both ends, as HAProxy does it: quick-ack is off before the connect, so the kernel
/// holds back the handshake's final ACK, and the socket closes with a reset (zero linger) as
/// soon as the connect completes. The server sees SYN, sends SYN-ACK, then gets the reset
/// while still in SYN-RECV: it never accepts, and neither side keeps a TIME_WAIT entry. The
/// meaning is unchanged: refused is `L4CON`, no answer within the deadline is `L4TOUT`.
pub(super) async fn plain_check(
    sockets: &SocketFactory,
    target: SocketAddr,
    source: Option<IpAddr>,
    deadline: Instant,
    timeout: Duration,
) -> Outcome {
    let socket = match sockets.tcp(target) {
        Ok(s) => s,
        Err(e) => return (ResultCode::L4Con, format!("socket: {}", io_detail(&e))),
    };
    // Both are optimisations only: if either fails, the check still means the same, it just
    // ends with a normal close.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(&socket).set_tcp_quickack(false);
    let _ = socket.set_zero_linger();
    if let Some(src) = source
        && let Err(e) = socket.bind(SocketAddr::new(src, 0))
    {
        return (ResultCode::L4Con, format!("bind {src}: {}", io_detail(&e)));
    }
    match tokio::time::timeout_at(deadline, socket.connect(target)).await {
        // Dropping the stream sends the reset.
        Ok(Ok(_stream)) => (ResultCode::L4Ok, "connected".to_owned()),
        Ok(Err(e)) => (ResultCode::L4Con, io_detail(&e)),
        Err(_) => (ResultCode::L4Tout, timeout_detail(timeout)),
    }
}

/// TCP connect, then a TLS handshake when `tls` is set.
pub(super) async fn tcp_probe(
    sockets: &SocketFactory,
    target: IpAddr,
    port: u16,
    source: Option<IpAddr>,
    tls: Option<&TlsParams>,
    deadline: Instant,
    timeout: Duration,
) -> Outcome {
    let addr = SocketAddr::new(target, port);
    let Some(params) = tls else {
        return plain_check(sockets, addr, source, deadline, timeout).await;
    };
    let stream = match connect(sockets, addr, source, deadline, timeout).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let name = params.name_for(None, target);
    match tls::handshake(stream, params, name, deadline, timeout).await {
        Ok(conn) => (ResultCode::L6Ok, tls::describe(conn.get_ref().1)),
        Err(outcome) => outcome,
    }
}
