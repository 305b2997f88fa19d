//! TCP and TCP+TLS probes against real loopback servers.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::support::*;
use maglev_health::probe::{TlsParams, probe};
use maglev_health::result::ResultCode;

#[tokio::test]
async fn tcp_connect_to_a_listener_is_l4ok_on_v4_and_v6() {
    for bind in [V4, V6] {
        let server = silent_server(bind).await;
        let r = probe(&spec(tcp(server.port(), None), 1000), server.ip()).await;
        assert_eq!(r.code, ResultCode::L4Ok, "{bind}: {r:?}");
        assert!(r.elapsed < Duration::from_secs(1));
    }
}

#[tokio::test]
async fn tcp_connect_to_a_closed_port_is_refused() {
    for bind in [V4, V6] {
        let port = closed_port(bind);
        let r = probe(&spec(tcp(port, None), 1000), ip(bind)).await;
        assert_eq!(r.code, ResultCode::L4Con, "{bind}: {r:?}");
        assert_eq!(r.detail, "connection refused");
    }
}

/// A plain TCP check resets the connection before the server accepts it, so the server side
/// is observed through a socket filter instead: the listener only answers SYNs whose source
/// is 127.0.0.2. Without the source the check gets no answer; with it the check passes.
#[tokio::test]
async fn tcp_source_address_is_bound_before_connect() {
    let listener = listener_only_from(Ipv4Addr::new(127, 0, 0, 2));
    let port = listener.local_addr().unwrap().as_socket().unwrap().port();
    let unbound = spec(tcp(port, None), 300);
    let r = probe(&unbound, ip(V4)).await;
    assert_eq!(
        r.code,
        ResultCode::L4Tout,
        "filter let 127.0.0.1 through: {r:?}"
    );
    let mut s = spec(tcp(port, None), 1000);
    s.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
    let r = probe(&s, ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}

/// A listening socket on 127.0.0.1 whose kernel filter drops every packet not from `source`.
fn listener_only_from(source: Ipv4Addr) -> socket2::Socket {
    use socket2::SockFilter;
    // Classic BPF: load the IPv4 source address (network header offset 12), accept the packet
    // when it equals `source`, drop it otherwise.
    const SKF_NET_OFF: i32 = -0x10_0000;
    let program = [
        SockFilter::new(0x20, 0, 0, (SKF_NET_OFF + 12) as u32), // ld [net + 12]
        SockFilter::new(0x15, 0, 1, u32::from(source)),         // jeq source, 0, 1
        SockFilter::new(0x06, 0, 0, u32::MAX),                  // ret accept
        SockFilter::new(0x06, 0, 0, 0),                         // ret drop
    ];
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.attach_filter(&program).unwrap();
    sock.bind(&std::net::SocketAddr::new(ip(V4), 0).into())
        .unwrap();
    sock.listen(16).unwrap();
    sock
}

/// The plain TCP check ends with a reset before the server accepts (HAProxy's cheap check):
/// nothing is left in the listener's accept queue, while an ordinary connect is.
#[tokio::test]
async fn tcp_check_resets_before_the_server_accepts() {
    let listener = std::net::TcpListener::bind((ip(V4), 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    for _ in 0..3 {
        let r = probe(&spec(tcp(addr.port(), None), 1000), addr.ip()).await;
        assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    }
    // Longer than the delayed-ACK timer, which would otherwise complete the handshake.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = listener.accept().map(|(_, peer)| peer).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
    // Control: an ordinary connect does reach the accept queue.
    let normal = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut accepted = None;
    for _ in 0..100 {
        if let Ok((_, peer)) = listener.accept() {
            accepted = Some(peer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(accepted, Some(normal.local_addr().unwrap()));
}

#[tokio::test]
async fn a_source_address_that_is_not_local_fails_before_any_packet() {
    let server = silent_server(V4).await;
    let mut s = spec(tcp(server.port(), None), 1000);
    s.source_v4 = Some(Ipv4Addr::new(192, 0, 2, 200));
    // The v6 source is ignored for a v4 target, the v4 one is used.
    s.source_v6 = Some("::1".parse().unwrap());
    let r = probe(&s, server.ip()).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert!(r.detail.starts_with("bind 192.0.2.200: "), "{}", r.detail);
}

/// A listener with a full accept queue drops new SYNs, so the connect never completes.
#[tokio::test]
async fn tcp_connect_that_never_completes_is_l4tout() {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&std::net::SocketAddr::new(ip(V4), 0).into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue (backlog 0 holds one connection) with connections nobody accepts.
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(c);
        }
    }
    assert!(!fillers.is_empty(), "could not fill the accept queue");
    let r = probe(&spec(tcp(addr.port(), None), 200), addr.ip()).await;
    assert_eq!(r.code, ResultCode::L4Tout, "{r:?}");
    assert_eq!(r.detail, "timeout after 200ms");
    assert!(r.elapsed < Duration::from_secs(2), "{r:?}");
    drop(sock);
}

async fn wait_for_sni(server: &Server) -> Option<String> {
    for _ in 0..100 {
        if let Some(seen) = server.seen().first() {
            return seen.sni.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server saw no handshake");
}

#[tokio::test]
async fn tls_handshake_with_the_right_name_is_l6ok_and_sends_sni() {
    let pki = Pki::new();
    let server = tls_server(V4, pki.acceptor()).await;
    let tls = pki.trusting(Some("backend.test"));
    let r = probe(&spec(tcp(server.port(), Some(tls)), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Ok, "{r:?}");
    assert!(r.detail.starts_with("tls handshake done"), "{}", r.detail);
    assert_eq!(wait_for_sni(&server).await.as_deref(), Some("backend.test"));
}

#[tokio::test]
async fn tls_without_a_name_verifies_the_address_and_sends_no_sni() {
    let pki = Pki::new();
    let server = tls_server(V4, pki.acceptor()).await;
    let r = probe(
        &spec(tcp(server.port(), Some(pki.trusting(None))), 2000),
        server.ip(),
    )
    .await;
    assert_eq!(r.code, ResultCode::L6Ok, "{r:?}");
    assert_eq!(wait_for_sni(&server).await, None);
}

#[tokio::test]
async fn tls_with_a_wrong_name_is_l6rsp_naming_it() {
    let pki = Pki::new();
    let server = tls_server(V4, pki.acceptor()).await;
    let tls = pki.trusting(Some("other.test"));
    let r = probe(&spec(tcp(server.port(), Some(tls)), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
    assert_eq!(r.detail, "certificate not valid for name \"other.test\"");
}

#[tokio::test]
async fn tls_against_the_bundled_roots_rejects_a_private_ca() {
    let pki = Pki::new();
    let server = tls_server(V4, pki.acceptor()).await;
    let tls = TlsParams::new(Some("backend.test".into()), false).unwrap();
    let r = probe(&spec(tcp(server.port(), Some(tls)), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
    assert_eq!(r.detail, "certificate signed by unknown authority");
}

#[tokio::test]
async fn tls_skip_verify_accepts_any_certificate_and_name() {
    let pki = Pki::new();
    let server = tls_server(V4, pki.acceptor()).await;
    for name in [None, Some("other.test".to_owned())] {
        let tls = TlsParams::new(name.clone(), true).unwrap();
        let r = probe(&spec(tcp(server.port(), Some(tls)), 2000), server.ip()).await;
        assert_eq!(r.code, ResultCode::L6Ok, "{name:?}: {r:?}");
    }
}

#[tokio::test]
async fn tls_to_a_server_that_never_speaks_is_l6tout() {
    let server = silent_server(V4).await;
    let tls = TlsParams::new(None, true).unwrap();
    let r = probe(&spec(tcp(server.port(), Some(tls)), 200), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Tout, "{r:?}");
    assert_eq!(r.detail, "timeout after 200ms");
}

#[tokio::test]
async fn tls_to_a_server_speaking_something_else_is_l6rsp() {
    let server = greeter(V4, b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let tls = TlsParams::new(None, true).unwrap();
    let r = probe(&spec(tcp(server.port(), Some(tls)), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
    assert!(r.detail.starts_with("tls"), "{}", r.detail);
}

#[tokio::test]
async fn tls_to_a_closed_port_is_still_l4con() {
    let port = closed_port(V4);
    let tls = TlsParams::new(None, true).unwrap();
    let r = probe(&spec(tcp(port, Some(tls)), 1000), ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
}

#[tokio::test]
async fn tls_over_ipv6() {
    let pki = Pki::new();
    let server = tls_server(V6, pki.acceptor()).await;
    let tls = pki.trusting(Some("backend.test"));
    let r = probe(&spec(tcp(server.port(), Some(tls)), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Ok, "{r:?}");
}
