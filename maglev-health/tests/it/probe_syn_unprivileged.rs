//! Plain TCP checks without raw sockets. The test first drops CAP_NET_RAW from its own
//! thread's effective set (CI runs the tests as root), so the half-open engine cannot open
//! its sockets: `auto` must fall back to connect, and `half-open` must refuse, saying why.
//!
//! It shares the process with the tests that need the capability, because capabilities
//! belong to threads, not to the process: libtest runs each test on a thread of its own that
//! ends with it, and the `current_thread` runtime keeps every socket of this test on that
//! thread. The library keeps no thread or engine beyond the runtime that created it, so
//! nothing without the capability outlives the test (`netns` drops CAP_SYS_ADMIN the same way).

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::Duration;

use caps::{CapSet, Capability};
use maglev_health::probe::{ProbeKind, ProbeRunner, ProbeSpec, SynEngine, TcpCheckMode};
use maglev_health::result::ResultCode;

#[tokio::test(flavor = "current_thread")]
async fn without_cap_net_raw_auto_connects_and_half_open_refuses() {
    // The runtime is this thread; dropping the capability here covers every socket below.
    caps::drop(None, CapSet::Effective, Capability::CAP_NET_RAW).expect("drop CAP_NET_RAW");
    assert!(!caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_RAW).unwrap());

    let err = SynEngine::new().expect_err("a raw socket without CAP_NET_RAW");
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = ProbeSpec::new(ProbeKind::Tcp { port, tls: None }, Duration::from_secs(2));
    let target = IpAddr::V4(Ipv4Addr::LOCALHOST);

    let auto = ProbeRunner::new(TcpCheckMode::Auto);
    assert_eq!(auto.prepare().unwrap(), TcpCheckMode::Connect);
    assert_eq!(auto.tcp_mode_in_use(), Some(TcpCheckMode::Connect));
    assert!(auto.syn_engine().is_none());
    let r = auto.probe(&spec, target).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");

    let strict = ProbeRunner::new(TcpCheckMode::HalfOpen);
    let err = strict.prepare().expect_err("half-open without raw sockets");
    let message = err.to_string();
    assert!(
        message.contains("permission denied") && message.contains("CAP_NET_RAW"),
        "{message}"
    );
    assert_eq!(strict.tcp_mode_in_use(), None);
    let r = strict.probe(&spec, target).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert!(
        r.detail
            .starts_with("half-open check unavailable: raw socket: permission denied"),
        "{r:?}"
    );
}
