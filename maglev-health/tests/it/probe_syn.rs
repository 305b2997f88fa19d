//! Half-open TCP checks (`SynEngine`, `ProbeRunner`) against real loopback listeners.
//!
//! These need raw sockets (CAP_NET_RAW; CI runs as root). Without them every test fails with
//! a message saying so, rather than passing without checking anything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use maglev_health::probe::{ProbeKind, ProbeRunner, ProbeSpec, SynEngine, TcpCheckMode};
use maglev_health::result::ResultCode;
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

const V4: &str = "127.0.0.1";
const V6: &str = "::1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn engine() -> SynEngine {
    SynEngine::new().unwrap_or_else(|e| {
        panic!("SynEngine::new failed: {e}; these tests need raw sockets (CAP_NET_RAW, e.g. root)")
    })
}

/// A listener on `bind`, non-blocking so that an accept can show the queue is empty.
fn listener(bind: &str) -> TcpListener {
    let l = TcpListener::bind((ip(bind), 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// A port on `bind` with nothing listening.
fn closed_port(bind: &str) -> SocketAddr {
    let l = TcpListener::bind((ip(bind), 0)).unwrap();
    l.local_addr().unwrap()
}

/// A listener that answers no SYN: its accept queue (backlog 0) is full with a connection
/// it never accepts, so the kernel drops every new SYN. The returned sockets must be kept.
fn unanswering(bind: &str) -> (Socket, Vec<Socket>, SocketAddr) {
    let addr = SocketAddr::new(ip(bind), 0);
    let l = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    l.bind(&addr.into()).unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..3 {
        let c = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        c.set_nonblocking(true).unwrap();
        // In progress or done: either way it takes the queue's only place or waits.
        let _ = c.connect(&addr.into());
        fillers.push(c);
    }
    (l, fillers, addr)
}

fn assert_never_accepted(l: &TcpListener) {
    let err = l.accept().map(|(_, peer)| peer).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
}

#[tokio::test]
async fn an_open_port_passes_and_the_server_never_accepts() {
    let engine = engine();
    for bind in [V4, V6] {
        let l = listener(bind);
        let addr = l.local_addr().unwrap();
        for _ in 0..3 {
            let r = engine.check(addr, None, Duration::from_secs(1)).await;
            assert_eq!(r.code, ResultCode::L4Ok, "{bind}: {r:?}");
            assert_eq!(r.detail, "syn-ack received");
        }
        // Give a stray handshake completion time to land in the queue: none must.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_never_accepted(&l);
    }
    assert_eq!(engine.in_flight(), 0);
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let engine = engine();
    for bind in [V4, V6] {
        let addr = closed_port(bind);
        let r = engine.check(addr, None, Duration::from_secs(1)).await;
        assert_eq!(r.code, ResultCode::L4Con, "{bind}: {r:?}");
        assert_eq!(r.detail, "connection refused");
    }
}

#[tokio::test]
async fn no_answer_is_a_timeout() {
    let engine = engine();
    for bind in [V4, V6] {
        let (_l, _fillers, addr) = unanswering(bind);
        let r = engine.check(addr, None, Duration::from_millis(300)).await;
        assert_eq!(r.code, ResultCode::L4Tout, "{bind}: {r:?}");
        assert_eq!(r.detail, "timeout after 300ms");
        assert!(r.elapsed >= Duration::from_millis(300), "{r:?}");
        assert!(r.elapsed < Duration::from_secs(2), "{r:?}");
    }
    assert_eq!(engine.in_flight(), 0);
}

/// A listening socket on 127.0.0.1 whose kernel filter drops every packet not from `source`.
fn listener_only_from(source: Ipv4Addr) -> Socket {
    // Classic BPF: load the IPv4 source address (network header offset 12), accept the
    // packet when it equals `source`, drop it otherwise.
    const SKF_NET_OFF: i32 = -0x10_0000;
    let program = [
        SockFilter::new(0x20, 0, 0, (SKF_NET_OFF + 12) as u32),
        SockFilter::new(0x15, 0, 1, u32::from(source)),
        SockFilter::new(0x06, 0, 0, u32::MAX),
        SockFilter::new(0x06, 0, 0, 0),
    ];
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.attach_filter(&program).unwrap();
    sock.bind(&SocketAddr::new(ip(V4), 0).into()).unwrap();
    sock.listen(16).unwrap();
    sock
}

/// The SYN carries the configured source address: a listener that only answers 127.0.0.2
/// gives no answer to the default source (127.0.0.1) and passes the probe from 127.0.0.2.
#[tokio::test]
async fn the_configured_source_address_is_used() {
    let engine = engine();
    let l = listener_only_from(Ipv4Addr::new(127, 0, 0, 2));
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let r = engine.check(addr, None, Duration::from_millis(300)).await;
    assert_eq!(
        r.code,
        ResultCode::L4Tout,
        "filter let 127.0.0.1 through: {r:?}"
    );
    let r = engine
        .check(addr, Some(ip("127.0.0.2")), Duration::from_secs(1))
        .await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    // A source of the other family is a configuration error, reported as such.
    let r = engine
        .check(addr, Some(ip(V6)), Duration::from_secs(1))
        .await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert!(r.detail.contains("not of the target's family"), "{r:?}");
}

/// A source address that is not local cannot be bound: the probe fails at once with a detail
/// naming it, and sends nothing.
#[tokio::test]
async fn a_non_local_source_is_refused_at_once() {
    let engine = engine();
    let l = listener(V4);
    let addr = l.local_addr().unwrap();
    // 192.0.2.1 (TEST-NET-1) is not configured on any interface here.
    let r = engine
        .check(addr, Some(ip("192.0.2.1")), Duration::from_secs(5))
        .await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert!(r.detail.starts_with("bind 192.0.2.1"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(1), "{r:?}");
    assert_never_accepted(&l);
}

#[tokio::test]
async fn a_mapped_address_is_probed_as_ipv4() {
    let engine = engine();
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse().unwrap();
    let r = engine.check(mapped, None, Duration::from_secs(1)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_probes_each_get_their_own_answer() {
    let engine = Arc::new(engine());
    let open: Vec<TcpListener> = (0..20)
        .map(|i| listener(if i % 2 == 0 { V4 } else { V6 }))
        .collect();
    let closed: Vec<SocketAddr> = (0..20)
        .map(|i| closed_port(if i % 2 == 0 { V4 } else { V6 }))
        .collect();
    let mut targets: Vec<(SocketAddr, ResultCode)> = Vec::new();
    for i in 0..200 {
        let n = i % 40;
        if n < 20 {
            targets.push((open[n].local_addr().unwrap(), ResultCode::L4Ok));
        } else {
            targets.push((closed[n - 20], ResultCode::L4Con));
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, (addr, want)) in targets.into_iter().enumerate() {
        let engine = Arc::clone(&engine);
        set.spawn(async move {
            let r = engine.check(addr, None, Duration::from_secs(2)).await;
            (i, addr, want, r)
        });
    }
    let mut seen = 0;
    while let Some(done) = set.join_next().await {
        let (i, addr, want, r) = done.unwrap();
        assert_eq!(r.code, want, "probe {i} of {addr}: {r:?}");
        seen += 1;
    }
    assert_eq!(seen, 200);
    assert_eq!(engine.in_flight(), 0);
    for l in &open {
        assert_never_accepted(l);
    }
}

/// Folds and complements a ones'-complement sum of big-endian words.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut acc = 0u32;
    for part in parts {
        for w in part.chunks(2) {
            acc += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Waits (on a thread) for the engine's SYN to `server`, then after `delay` answers it with
/// a SYN-ACK of our own making, as a slow server would.
fn answer_late(server: SocketAddr, delay: Duration) -> std::thread::JoinHandle<()> {
    let sniffer = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap();
    sniffer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sniffer = std::net::UdpSocket::from(sniffer);
    let IpAddr::V4(server_ip) = server.ip() else {
        panic!("ipv4 only")
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let (client, client_port, seq) = loop {
            let n = sniffer.recv(&mut buf).expect("no syn seen");
            let p = &buf[..n];
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let tcp = &p[ihl..];
            let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
            if dport == server.port() && tcp[13] == 0x02 {
                let client = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
                let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
                let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
                break (client, sport, seq);
            }
        };
        std::thread::sleep(delay);
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&server.port().to_be_bytes());
        tcp[2..4].copy_from_slice(&client_port.to_be_bytes());
        tcp[4..8].copy_from_slice(&12345u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&seq.wrapping_add(1).to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x12;
        tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
        let pseudo = [
            &server_ip.octets()[..],
            &client.octets()[..],
            &[0, 6, 0, 20][..],
        ];
        let sum = checksum(&[pseudo[0], pseudo[1], pseudo[2], &tcp[..]]);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        // Without IP_HDRINCL the kernel writes the IP header, from the server's address.
        let out = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap();
        out.bind(&SocketAddr::new(server.ip(), 0).into()).unwrap();
        out.send_to(&tcp, &SocketAddr::new(IpAddr::V4(client), 0).into())
            .unwrap();
    })
}

/// A reply that is not there when the probe has sent its SYN reaches it through the
/// engine's receiver task, which wakes the waiting probe.
#[tokio::test]
async fn a_late_reply_wakes_the_waiting_probe() {
    let engine = engine();
    let (_l, _fillers, addr) = unanswering(V4);
    let server = answer_late(addr, Duration::from_millis(100));
    let r = engine.check(addr, None, Duration::from_secs(3)).await;
    server.join().unwrap();
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert!(r.elapsed >= Duration::from_millis(100), "{r:?}");
    assert_eq!(engine.in_flight(), 0);
}

#[tokio::test]
async fn a_dropped_probe_leaves_no_waiter() {
    let engine = engine();
    let (_l, _fillers, addr) = unanswering(V4);
    let mut probe = Box::pin(engine.check(addr, None, Duration::from_secs(30)));
    let waited = tokio::time::timeout(Duration::from_millis(50), &mut probe).await;
    assert!(waited.is_err(), "the probe got an answer: {waited:?}");
    assert_eq!(engine.in_flight(), 1, "the probe is waiting");
    drop(probe);
    assert_eq!(engine.in_flight(), 0);
}

#[tokio::test]
async fn the_engine_reserves_its_source_ports() {
    let engine = engine();
    let ports = engine.reserved_ports().to_vec();
    assert_eq!(ports.len(), maglev_health::probe::RESERVED_PORTS);
    // Nothing else can bind them.
    for port in ports.iter().take(4) {
        let err = TcpListener::bind((ip(V4), *port)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "port {port}");
    }
}

fn tcp_spec(port: u16, ms: u64) -> ProbeSpec {
    ProbeSpec::new(
        ProbeKind::Tcp { port, tls: None },
        Duration::from_millis(ms),
    )
}

#[tokio::test]
async fn runner_auto_uses_the_half_open_engine() {
    let runner = ProbeRunner::new(TcpCheckMode::Auto);
    assert_eq!(runner.tcp_mode_in_use(), None, "nothing decided before use");
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();
    let r = runner.probe(&tcp_spec(port, 1000), ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_eq!(r.detail, "syn-ack received", "the engine answered");
    assert_eq!(runner.tcp_mode_in_use(), Some(TcpCheckMode::HalfOpen));
    assert!(runner.syn_engine().is_some());
    let closed = closed_port(V6);
    let r = runner.probe(&tcp_spec(closed.port(), 1000), ip(V6)).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert_eq!(r.detail, "connection refused");
    // The source address of the spec is honoured.
    let only = listener_only_from(Ipv4Addr::new(127, 0, 0, 2));
    let port = only.local_addr().unwrap().as_socket().unwrap().port();
    let mut spec = tcp_spec(port, 1000);
    spec.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
    let r = runner.probe(&spec, ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_never_accepted(&l);
}

#[tokio::test]
async fn runner_half_open_prepares_the_engine_up_front() {
    let runner = ProbeRunner::new(TcpCheckMode::HalfOpen);
    assert_eq!(runner.prepare(), Ok(TcpCheckMode::HalfOpen));
    assert_eq!(runner.tcp_mode_in_use(), Some(TcpCheckMode::HalfOpen));
    let l = listener(V6);
    let r = runner
        .probe(&tcp_spec(l.local_addr().unwrap().port(), 1000), ip(V6))
        .await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_eq!(r.detail, "syn-ack received");
}

#[tokio::test]
async fn runner_connect_mode_never_opens_the_engine() {
    let runner = ProbeRunner::new(TcpCheckMode::Connect);
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();
    let r = runner.probe(&tcp_spec(port, 1000), ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    assert_eq!(r.detail, "connected", "the connect check answered");
    assert_eq!(runner.tcp_mode_in_use(), Some(TcpCheckMode::Connect));
    assert!(runner.syn_engine().is_none());
    let closed = closed_port(V4);
    let r = runner.probe(&tcp_spec(closed.port(), 1000), ip(V4)).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
}

#[tokio::test]
async fn runner_leaves_other_probe_kinds_alone() {
    let runner = ProbeRunner::new(TcpCheckMode::Auto);
    // An ICMP probe does not decide the TCP mode.
    let spec = ProbeSpec::new(ProbeKind::Icmp, Duration::from_secs(1));
    let r = runner.probe(&spec, ip(V4)).await;
    assert_eq!(r.code, ResultCode::IcmpOk, "{r:?}");
    assert_eq!(runner.tcp_mode_in_use(), None);
}

#[test]
fn runner_is_shareable_and_its_probe_is_send() {
    fn shareable<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    shareable::<ProbeRunner>();
    shareable::<SynEngine>();
    let runner = ProbeRunner::new(TcpCheckMode::Auto);
    let spec = tcp_spec(1, 1000);
    let fut = runner.probe(&spec, ip(V4));
    send(&fut);
    let engine_fut = async {
        let e = engine();
        e.check(SocketAddr::new(ip(V4), 1), None, Duration::from_secs(1))
            .await
    };
    send(&engine_fut);
}

#[test]
fn outside_a_runtime_the_engine_is_an_error_not_a_panic() {
    let err = SynEngine::new().unwrap_err();
    assert!(err.to_string().contains("runtime"), "{err}");
}
