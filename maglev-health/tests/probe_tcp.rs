//! TCP and TCP+TLS probes against real loopback servers.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use maglev_health::probe::{TlsParams, probe};
use maglev_health::result::ResultCode;
use support::*;

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

#[tokio::test]
async fn tcp_source_address_is_bound_before_connect() {
    let server = silent_server(V4).await;
    let mut s = spec(tcp(server.port(), None), 1000);
    s.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
    let r = probe(&s, server.ip()).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    // The listener records the peer as soon as it accepts; give its task a moment.
    let peer = wait_for_peer(&server).await;
    assert_eq!(peer, ip("127.0.0.2"));
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

async fn wait_for_peer(server: &Server) -> std::net::IpAddr {
    for _ in 0..100 {
        if let Some(peer) = server.seen().first().and_then(|s| s.peer) {
            return peer.ip();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server saw no connection");
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
