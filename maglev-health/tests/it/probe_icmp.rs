//! ICMP and ICMPv6 echo to loopback.
//!
//! These need a ping socket (`net.ipv4.ping_group_range` covering our group) or a raw socket
//! (CAP_NET_RAW). Where neither can be opened the tests print a loud SKIPPED line with the
//! reason and check only that the probe reports that reason as ICMPERR.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::support::*;
use maglev_health::probe::{IcmpMode, IpFamily, ProbeKind, icmp_mode, probe};
use maglev_health::result::ResultCode;

/// The mode for `family`, or `None` after printing why the test is skipped.
fn mode_or_skip(test: &str, family: IpFamily) -> Option<IcmpMode> {
    match icmp_mode(family) {
        Ok(mode) => {
            eprintln!("{test}: {family} icmp via {mode:?} socket");
            Some(mode)
        }
        Err(e) => {
            eprintln!("\n*** SKIPPED {test}: {e} ***\n");
            None
        }
    }
}

async fn unavailable_is_reported(target: IpAddr) {
    let r = probe(&spec(ProbeKind::Icmp, 500), target).await;
    assert_eq!(r.code, ResultCode::IcmpErr, "{r:?}");
    assert!(r.detail.contains("CAP_NET_RAW"), "{}", r.detail);
}

#[tokio::test]
async fn echo_to_ipv4_loopback_is_icmpok() {
    let target = ip(V4);
    if mode_or_skip("echo_to_ipv4_loopback_is_icmpok", IpFamily::V4).is_none() {
        return unavailable_is_reported(target).await;
    }
    let r = probe(&spec(ProbeKind::Icmp, 1000), target).await;
    assert_eq!(r.code, ResultCode::IcmpOk, "{r:?}");
    assert_eq!(r.detail, "echo reply");
}

#[tokio::test]
async fn echo_to_ipv6_loopback_is_icmpok() {
    let target = ip(V6);
    if mode_or_skip("echo_to_ipv6_loopback_is_icmpok", IpFamily::V6).is_none() {
        return unavailable_is_reported(target).await;
    }
    // The kernel fills the ICMPv6 checksum; a wrong one would be dropped and time out here.
    let r = probe(&spec(ProbeKind::Icmp, 1000), target).await;
    assert_eq!(r.code, ResultCode::IcmpOk, "{r:?}");
}

#[tokio::test]
async fn many_concurrent_echoes_each_get_their_own_reply() {
    let target = ip(V4);
    if mode_or_skip("many_concurrent_echoes", IpFamily::V4).is_none() {
        return unavailable_is_reported(target).await;
    }
    let s = spec(ProbeKind::Icmp, 2000);
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { probe(&s, target).await })
        })
        .collect();
    for h in handles {
        let r = h.await.unwrap();
        assert_eq!(r.code, ResultCode::IcmpOk, "{r:?}");
    }
}

#[tokio::test]
async fn echo_from_a_bound_source_address() {
    let target = ip(V4);
    if mode_or_skip("echo_from_a_bound_source_address", IpFamily::V4).is_none() {
        return unavailable_is_reported(target).await;
    }
    let mut s = spec(ProbeKind::Icmp, 1000);
    s.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
    let r = probe(&s, target).await;
    assert_eq!(r.code, ResultCode::IcmpOk, "{r:?}");

    // A source that is not local fails at bind, before any packet leaves.
    s.source_v4 = Some(Ipv4Addr::new(192, 0, 2, 200));
    let r = probe(&s, target).await;
    assert_eq!(r.code, ResultCode::IcmpErr, "{r:?}");
    assert!(r.detail.starts_with("bind 192.0.2.200: "), "{}", r.detail);
}

#[tokio::test]
async fn echo_from_a_bound_ipv6_source() {
    let target = ip(V6);
    if mode_or_skip("echo_from_a_bound_ipv6_source", IpFamily::V6).is_none() {
        return unavailable_is_reported(target).await;
    }
    let mut s = spec(ProbeKind::Icmp, 1000);
    s.source_v6 = Some("::1".parse().unwrap());
    s.source_v4 = Some(Ipv4Addr::new(192, 0, 2, 200)); // not used for a v6 target
    let r = probe(&s, target).await;
    assert_eq!(r.code, ResultCode::IcmpOk, "{r:?}");
    s.source_v6 = Some("2001:db8::200".parse().unwrap());
    let r = probe(&s, target).await;
    assert_eq!(r.code, ResultCode::IcmpErr, "{r:?}");
    assert!(r.detail.starts_with("bind 2001:db8::200: "), "{}", r.detail);
}

/// Set in the environment of a test re-run inside a private network namespace.
const CHILD: &str = "MAGLEV_HEALTH_ICMP_CHILD";
const CHILD_MARK: &str = "icmp-child-started";

/// The name libtest gives test `name` of this module: its module path without the crate
/// (the test binary), as `--exact` wants it.
fn test_path(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// Re-runs test `name` of this module in a private network namespace (loopback up), with
/// `ping_group_range` set to `range` there and CAP_NET_RAW dropped. Returns `false` (after a
/// loud SKIPPED line) when the namespace cannot be made here, for example without root.
fn rerun_unprivileged(name: &str, range: &str) -> bool {
    let exe = std::env::current_exe().unwrap();
    let test = test_path(name);
    let script = format!(
        "ip link set lo up && echo '{range}' > /proc/sys/net/ipv4/ping_group_range && \
         exec setpriv --inh-caps=-net_raw --bounding-set=-net_raw \"$0\" --exact {test} \
         --nocapture --test-threads 1"
    );
    let out = std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .arg(&exe)
        .env(CHILD, "1")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("\n*** SKIPPED {name}: cannot run unshare: {e} ***\n");
            return false;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The child started but ran nothing: the name is wrong, which must not pass as a skip.
    assert!(
        !stdout.contains("running 0 tests"),
        "no test {test} in {}",
        exe.display()
    );
    if !stdout.contains(CHILD_MARK) && !stderr.contains(CHILD_MARK) {
        eprintln!(
            "\n*** SKIPPED {name}: no private network namespace without CAP_NET_RAW here \
             (needs root, unshare and setpriv): {} ***\n",
            stderr.trim()
        );
        return false;
    }
    eprintln!("--- child stdout ---\n{stdout}--- child stderr ---\n{stderr}");
    assert!(out.status.success(), "child run of {name} failed");
    true
}

/// Without CAP_NET_RAW, with our group in `ping_group_range`: ping sockets on both families.
#[tokio::test]
async fn ping_socket_without_cap_net_raw() {
    const NAME: &str = "ping_socket_without_cap_net_raw";
    if std::env::var_os(CHILD).is_none() {
        rerun_unprivileged(NAME, "0 2147483647");
        return;
    }
    eprintln!("{CHILD_MARK}");
    for (family, target) in [(IpFamily::V4, V4), (IpFamily::V6, V6)] {
        assert_eq!(icmp_mode(family), Ok(IcmpMode::Dgram), "{family}");
        let r = probe(&spec(ProbeKind::Icmp, 1000), ip(target)).await;
        assert_eq!(r.code, ResultCode::IcmpOk, "{target}: {r:?}");
    }
    let mut s = spec(ProbeKind::Icmp, 1000);
    s.source_v4 = Some(Ipv4Addr::new(127, 0, 0, 2));
    let r = probe(&s, ip(V4)).await;
    assert_eq!(r.code, ResultCode::IcmpOk, "from 127.0.0.2: {r:?}");
}

/// Without CAP_NET_RAW and with the default empty `ping_group_range`: a typed error naming
/// both remedies, and ICMPERR with that reason from the probe.
#[tokio::test]
async fn no_icmp_socket_is_a_clear_error() {
    const NAME: &str = "no_icmp_socket_is_a_clear_error";
    if std::env::var_os(CHILD).is_none() {
        rerun_unprivileged(NAME, "1 0");
        return;
    }
    eprintln!("{CHILD_MARK}");
    for family in [IpFamily::V4, IpFamily::V6] {
        let err = icmp_mode(family).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("net.ipv4.ping_group_range"), "{msg}");
        assert!(msg.contains("CAP_NET_RAW"), "{msg}");
    }
    let r = probe(&spec(ProbeKind::Icmp, 1000), ip(V4)).await;
    assert_eq!(r.code, ResultCode::IcmpErr, "{r:?}");
    assert!(r.detail.contains("CAP_NET_RAW"), "{}", r.detail);
    assert!(r.elapsed < Duration::from_secs(1), "{r:?}");
}
