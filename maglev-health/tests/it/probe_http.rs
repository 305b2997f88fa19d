//! HTTP and HTTPS probes against real loopback servers.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::support::*;
use maglev_health::probe::{BODY_LIMIT, BodyRegex, HttpParams, ProbeKind, TlsParams, probe};
use maglev_health::result::ResultCode;

fn get(params: HttpParams, timeout_ms: u64) -> maglev_health::probe::ProbeSpec {
    spec(ProbeKind::Http(params), timeout_ms)
}

#[tokio::test]
async fn ok_response_is_l7ok_and_the_request_is_as_documented() {
    let server = http_server(V4, Behaviour::status(200), None).await;
    let mut p = http(server.port());
    p.path = "/healthz?deep=1".into();
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(r.detail, "status 200");
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "one connection per probe");
    let req = &seen[0];
    assert_eq!(req.request_line(), "GET /healthz?deep=1 HTTP/1.1");
    // A non-default port is part of the default Host header.
    assert_eq!(
        req.header("host").as_deref(),
        Some(format!("127.0.0.1:{}", server.port()).as_str())
    );
    assert_eq!(
        req.header("user-agent").as_deref(),
        Some(concat!("maglev-health/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(req.header("connection").as_deref(), Some("close"));
}

#[tokio::test]
async fn each_probe_opens_a_fresh_connection() {
    let server = http_server(V4, Behaviour::status(204), None).await;
    let s = get(http(server.port()), 2000);
    for _ in 0..3 {
        assert_eq!(probe(&s, server.ip()).await.code, ResultCode::L7Ok);
    }
    let peers: std::collections::BTreeSet<_> =
        server.seen().iter().map(|s| s.peer.unwrap()).collect();
    assert_eq!(peers.len(), 3, "three source ports for three probes");
}

#[tokio::test]
async fn status_outside_the_range_is_l7sts() {
    let server = http_server(V4, Behaviour::status(503), None).await;
    let r = probe(&get(http(server.port()), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Sts, "{r:?}");
    assert_eq!(r.detail, "status 503");

    // A redirect passes the default 200-399 range but not an exact 200.
    let server = http_server(V4, Behaviour::status(301), None).await;
    let r = probe(&get(http(server.port()), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    let mut p = http(server.port());
    p.status = (200, 200);
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Sts, "{r:?}");
    assert_eq!(r.detail, "status 301");
}

#[tokio::test]
async fn body_regexp_match_and_mismatch() {
    let server = http_server(V4, Behaviour::body(r#"{"status":"up"}"#), None).await;
    let mut p = http(server.port());
    p.regexp = Some(BodyRegex::new(r#""status":\s*"up""#).unwrap());
    let r = probe(&get(p.clone(), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");

    p.regexp = Some(BodyRegex::new("down").unwrap());
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert_eq!(r.detail, "body did not match /down/");
}

#[tokio::test]
async fn body_regexp_sees_only_the_first_64_kib() {
    let mut body = vec![b'a'; BODY_LIMIT - 6];
    body.extend_from_slice(b"EARLY!");
    body.extend_from_slice(b"LATE");
    body.extend(std::iter::repeat_n(b'z', 4 << 20)); // a 4 MiB tail we must not read
    let server = http_server(V4, Behaviour::body(body), None).await;
    let mut p = http(server.port());
    p.regexp = Some(BodyRegex::new("EARLY!$").unwrap());
    let r = probe(&get(p.clone(), 5000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    p.regexp = Some(BodyRegex::new("LATE").unwrap());
    let r = probe(&get(p, 5000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
}

#[tokio::test]
async fn a_status_failure_wins_over_the_body_check() {
    let server = http_server(
        V4,
        Behaviour::Respond {
            status: 500,
            body: b"up".to_vec(),
            delay: Duration::ZERO,
        },
        None,
    )
    .await;
    let mut p = http(server.port());
    p.regexp = Some(BodyRegex::new("up").unwrap());
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Sts, "{r:?}");
}

#[tokio::test]
async fn close_without_an_answer_is_l7rsp() {
    let server = http_server(V4, Behaviour::Close, None).await;
    let r = probe(&get(http(server.port()), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert_eq!(r.detail, "connection closed before the response");
}

#[tokio::test]
async fn a_malformed_response_is_l7rsp() {
    let server = http_server(
        V4,
        Behaviour::Raw(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
        None,
    )
    .await;
    let r = probe(&get(http(server.port()), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert!(r.detail.starts_with("malformed response"), "{}", r.detail);
}

#[tokio::test]
async fn a_truncated_body_is_l7rsp_when_the_body_is_read() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec();
    let server = http_server(V4, Behaviour::Raw(raw), None).await;
    let mut p = http(server.port());
    p.regexp = Some(BodyRegex::new("short").unwrap());
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert!(r.detail.starts_with("body: "), "{}", r.detail);
}

#[tokio::test]
async fn no_answer_is_l7tout() {
    let server = http_server(V4, Behaviour::Silent, None).await;
    let r = probe(&get(http(server.port()), 200), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Tout, "{r:?}");
    assert_eq!(r.detail, "timeout after 200ms");
    assert!(r.elapsed < Duration::from_secs(2), "{r:?}");
}

#[tokio::test]
async fn a_slow_answer_within_the_timeout_passes_and_beyond_it_times_out() {
    let slow = |ms| Behaviour::Respond {
        status: 200,
        body: b"ok".to_vec(),
        delay: Duration::from_millis(ms),
    };
    let server = http_server(V4, slow(50), None).await;
    let r = probe(&get(http(server.port()), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    let server = http_server(V4, slow(1500), None).await;
    let r = probe(&get(http(server.port()), 200), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Tout, "{r:?}");
}

/// With the paused clock a long timeout costs no real time: the runtime jumps to the deadline
/// once the connect has completed and everything waits on the silent server.
#[tokio::test(start_paused = true)]
async fn a_long_timeout_expires_on_the_paused_clock() {
    let server = http_server(V4, Behaviour::Silent, None).await;
    let wall = std::time::Instant::now();
    let r = probe(&get(http(server.port()), 30_000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Tout, "{r:?}");
    assert_eq!(r.detail, "timeout after 30s");
    assert_eq!(r.elapsed, Duration::from_secs(30));
    assert!(wall.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn connection_refused_is_l4con() {
    let port = closed_port(V4);
    let r = probe(&get(http(port), 1000), ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert_eq!(r.detail, "connection refused");
}

#[tokio::test]
async fn ipv6_backend_gets_a_bracketed_host() {
    let server = http_server(V6, Behaviour::status(200), None).await;
    let r = probe(&get(http(server.port()), 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(
        server.seen()[0].header("host"),
        Some(format!("[::1]:{}", server.port()))
    );
}

#[tokio::test]
async fn ipv4_mapped_target_is_probed_as_ipv4() {
    let server = http_server(V4, Behaviour::status(200), None).await;
    let mapped = std::net::IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
    let r = probe(&get(http(server.port()), 2000), mapped).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
}

#[tokio::test]
async fn configured_host_is_sent_verbatim() {
    let server = http_server(V4, Behaviour::status(200), None).await;
    let mut p = http(server.port());
    p.host = Some("www.example".into());
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(
        server.seen()[0].header("host").as_deref(),
        Some("www.example")
    );
}

#[tokio::test]
async fn source_address_is_what_the_server_sees() {
    let server = http_server(V4, Behaviour::status(200), None).await;
    let mut s = get(http(server.port()), 2000);
    s.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
    let r = probe(&s, server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(server.seen()[0].peer.unwrap().ip(), ip("127.0.0.2"));
}

#[tokio::test]
async fn https_verifies_the_host_name_and_sends_it_as_sni() {
    let pki = Pki::new();
    let server = http_server(V4, Behaviour::status(200), Some(pki.acceptor())).await;
    let mut p = http(server.port());
    p.host = Some("backend.test".into());
    p.tls = Some(pki.trusting(None)); // server-name defaults to the host
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    let seen = &server.seen()[0];
    assert_eq!(seen.sni.as_deref(), Some("backend.test"));
    assert_eq!(seen.header("host").as_deref(), Some("backend.test"));
    assert_eq!(seen.request_line(), "GET / HTTP/1.1");
}

#[tokio::test]
async fn https_with_the_wrong_server_name_is_l6rsp() {
    let pki = Pki::new();
    let server = http_server(V4, Behaviour::status(200), Some(pki.acceptor())).await;
    let mut p = http(server.port());
    p.host = Some("backend.test".into());
    p.tls = Some(pki.trusting(Some("wrong.test")));
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
    assert_eq!(r.detail, "certificate not valid for name \"wrong.test\"");
    assert!(
        server.seen().iter().all(|s| s.head.is_empty()),
        "no request after a failed handshake"
    );
}

#[tokio::test]
async fn https_skip_verify_reaches_the_status_check() {
    let pki = Pki::new();
    let server = http_server(V4, Behaviour::status(500), Some(pki.acceptor())).await;
    let mut p = http(server.port());
    p.tls = Some(TlsParams::new(Some("wrong.test".into()), true).unwrap());
    let r = probe(&get(p, 2000), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Sts, "{r:?}");
    assert_eq!(r.detail, "status 500");
}

#[tokio::test]
async fn https_to_a_silent_server_is_l6tout() {
    let server = silent_server(V4).await;
    let mut p = http(server.port());
    p.tls = Some(TlsParams::new(None, true).unwrap());
    let r = probe(&get(p, 200), server.ip()).await;
    assert_eq!(r.code, ResultCode::L6Tout, "{r:?}");
}

#[tokio::test]
async fn https_over_ipv6_with_a_silent_backend_after_the_handshake_is_l7tout() {
    let pki = Pki::new();
    let server = http_server(V6, Behaviour::Silent, Some(pki.acceptor())).await;
    let mut p = http(server.port());
    p.tls = Some(pki.trusting(Some("backend.test")));
    let r = probe(&get(p, 300), server.ip()).await;
    assert_eq!(r.code, ResultCode::L7Tout, "{r:?}");
    assert_eq!(server.seen()[0].sni.as_deref(), Some("backend.test"));
}
