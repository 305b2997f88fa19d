//! Probes from a network namespace (`healthchecker.netns`).
//!
//! Each test creates its own namespace with `ip netns add`, a veth pair to the test's own
//! namespace, and addresses from 10.213.X.0/24 and fd00:213:X::/64 that exist only inside it;
//! in the test's namespace those subnets are routed `unreachable`, so a probe from the wrong
//! namespace fails at once and nothing leaves the machine. Servers run on a thread that entered
//! the namespace (a tokio runtime of its own). A guard removes the namespace and the routes,
//! also when a test fails.
//!
//! Without the rights to create namespaces the tests skip with a loud message, and fail under
//! `CI=true`.

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use caps::{CapSet, Capability};
use maglev_health::checker::{BackendSpec, CheckSpec, Checker, CheckerConfig, DefaultProber};
use maglev_health::machine::State;
use maglev_health::netns::{NetnsError, SocketFactory};
use maglev_health::probe::{HttpParams, ProbeKind, ProbeRunner, TcpCheckMode};
use maglev_health::result::{ProbeResult, ResultCode};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::support::{self, Behaviour, Pki, spec, tcp};

/// The third octet of the next test's subnets (and a unique suffix for its names).
static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip_cmd(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace of this test, its veth pair and the unreachable routes outside.
struct TestNs {
    name: String,
    outer: String,
    v4: IpAddr,
    v6: IpAddr,
    net4: String,
    net6: String,
}

impl TestNs {
    /// Creates the namespace, or returns `None` (after a loud message) where namespaces
    /// cannot be created at all. Panics under `CI=true` instead of skipping.
    fn create() -> Option<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let x = (pid.wrapping_mul(7).wrapping_add(n)) % 120 + 1;
        let name = format!("maglev-it-{pid}-{n}");
        if let Err(e) = ip_cmd(&["netns", "add", &name]) {
            let message = format!(
                "*** SKIPPED: cannot create a network namespace ({e}); these tests need root and iproute2 ***"
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{message}");
            }
            eprintln!("\n{message}\n");
            return None;
        }
        let ns = Self {
            outer: format!("mh{}o{n}", pid % 100_000),
            v4: format!("10.213.{x}.1").parse().unwrap(),
            v6: format!("fd00:213:{x}::1").parse().unwrap(),
            net4: format!("10.213.{x}.0/24"),
            net6: format!("fd00:213:{x}::/64"),
            name,
        };
        let inner = format!("mh{}i{n}", pid % 100_000);
        let v4 = format!("{}/24", ns.v4);
        let v6 = format!("{}/64", ns.v6);
        let steps: [&[&str]; 8] = [
            &[
                "link", "add", &ns.outer, "type", "veth", "peer", "name", &inner, "netns", &ns.name,
            ],
            &["link", "set", &ns.outer, "up"],
            &["-n", &ns.name, "link", "set", "lo", "up"],
            &["-n", &ns.name, "link", "set", &inner, "up"],
            &["-n", &ns.name, "addr", "add", &v4, "dev", &inner],
            &["-n", &ns.name, "addr", "add", &v6, "dev", &inner, "nodad"],
            &["route", "add", "unreachable", &ns.net4],
            &["-6", "route", "add", "unreachable", &ns.net6],
        ];
        for step in steps {
            // The guard cleans up what was created so far.
            ip_cmd(step).unwrap_or_else(|e| panic!("setting up {}: {e}", ns.name));
        }
        Some(ns)
    }

    fn addr(&self, v6: bool) -> IpAddr {
        if v6 { self.v6 } else { self.v4 }
    }

    /// `ip netns del`: the name goes away (the namespace lives on while a socket thread
    /// holds it).
    fn delete_name(&self) {
        ip_cmd(&["netns", "del", &self.name]).expect("ip netns del");
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = ip_cmd(&["route", "del", "unreachable", &self.net4]);
        let _ = ip_cmd(&["-6", "route", "del", "unreachable", &self.net6]);
        let _ = ip_cmd(&["link", "del", &self.outer]);
        let _ = ip_cmd(&["netns", "del", &self.name]);
    }
}

/// Ports of the servers running inside a namespace.
#[derive(Clone, Copy, Debug)]
struct Ports {
    http: u16,
    https: u16,
    tls: u16,
}

/// Servers inside the namespace: an HTTP server (also the TCP listener), an HTTPS server and
/// a TLS server, each on `addr`, on a thread that entered the namespace. They stop when the
/// returned sender is dropped.
fn serve_inside(ns: &TestNs, addr: IpAddr, pki: &Pki) -> (Ports, mpsc::Sender<()>) {
    let path = maglev_health::netns::netns_path(&ns.name);
    let acceptor = pki.acceptor();
    let (ports_tx, ports_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open the namespace");
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(LinkNameSpaceType::Network),
        )
        .expect("enter the namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let bind = addr.to_string();
            let http = support::http_server(&bind, Behaviour::status(200), None).await;
            let https =
                support::http_server(&bind, Behaviour::status(200), Some(acceptor.clone())).await;
            let tls = support::tls_server(&bind, acceptor).await;
            ports_tx
                .send(Ports {
                    http: http.port(),
                    https: https.port(),
                    tls: tls.port(),
                })
                .unwrap();
            // Serve until the test ends.
            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
        });
    });
    let ports = ports_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("servers inside the namespace");
    (ports, stop_tx)
}

/// The probes of the test matrix: name, TCP check mode, kind.
fn probes(ports: Ports, pki: &Pki) -> Vec<(&'static str, TcpCheckMode, ProbeKind)> {
    let trusted = || pki.trusting(Some("backend.test"));
    let mut https = HttpParams::new(ports.https);
    https.tls = Some(trusted());
    vec![
        ("tcp connect", TcpCheckMode::Connect, tcp(ports.http, None)),
        (
            "tcp half-open",
            TcpCheckMode::HalfOpen,
            tcp(ports.http, None),
        ),
        (
            "http",
            TcpCheckMode::Connect,
            ProbeKind::Http(HttpParams::new(ports.http)),
        ),
        ("https", TcpCheckMode::Connect, ProbeKind::Http(https)),
        (
            "tls",
            TcpCheckMode::Connect,
            tcp(ports.tls, Some(trusted())),
        ),
        ("icmp", TcpCheckMode::Connect, ProbeKind::Icmp),
    ]
}

async fn inside_up_outside_down(v6: bool) {
    let Some(ns) = TestNs::create() else { return };
    let pki = Pki::new();
    let target = ns.addr(v6);
    let (ports, _stop) = serve_inside(&ns, target, &pki);
    let inside = SocketFactory::enter(&ns.name).expect("enter the test namespace");
    assert_eq!(inside.netns(), Some(ns.name.as_str()));
    for (what, mode, kind) in probes(ports, &pki) {
        let spec = spec(kind, 3000);
        let runner = ProbeRunner::with_sockets(mode, inside.clone());
        let r = runner.probe(&spec, target).await;
        assert!(r.is_pass(), "{what} to {target} inside {}: {r:?}", ns.name);
        // The same probe from the test's own namespace cannot reach it: the route there is
        // unreachable, so it fails at once.
        let outside = ProbeRunner::new(mode).probe(&spec, target).await;
        assert!(
            !outside.is_pass(),
            "{what} to {target} from outside: {outside:?}"
        );
        assert!(
            outside.elapsed < Duration::from_secs(3),
            "{what} to {target} from outside took the whole timeout: {outside:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_probes_reach_backends_inside_the_namespace_only() {
    inside_up_outside_down(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_probes_reach_backends_inside_the_namespace_only() {
    inside_up_outside_down(true).await;
}

fn tcp_check(port: u16) -> CheckSpec {
    CheckSpec {
        probe: spec(tcp(port, None), 1000),
        interval: Duration::from_millis(50),
        fast_interval: Duration::from_millis(50),
        down_interval: Duration::from_millis(50),
        rise: 1,
        fall: 1,
    }
}

async fn wait_for_state(checker: &Checker, want: State) -> ProbeResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = checker.state("b").unwrap();
        if snap.state == want {
            return snap.last_result.expect("a probe result");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backend never became {want:?}: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checker_follows_the_runner_it_is_given() {
    let Some(ns) = TestNs::create() else { return };
    let pki = Pki::new();
    let (ports, _stop) = serve_inside(&ns, ns.v4, &pki);
    let inside = SocketFactory::enter(&ns.name).unwrap();
    let prober = DefaultProber::with_runner(ProbeRunner::with_sockets(TcpCheckMode::Auto, inside));
    assert_eq!(prober.netns().as_deref(), Some(ns.name.as_str()));
    let checker = Checker::with_prober(CheckerConfig::default(), prober);
    checker
        .apply_config(vec![BackendSpec {
            name: "b".into(),
            address: ns.v4,
            check: Some(tcp_check(ports.http)),
            enabled: true,
        }])
        .unwrap();
    wait_for_state(&checker, State::Up).await;
    // A reload back to the daemon's own namespace: the next probes fail.
    let old = checker
        .prober()
        .set_runner(ProbeRunner::new(TcpCheckMode::Auto));
    assert_eq!(old.sockets().netns(), Some(ns.name.as_str()));
    assert_eq!(checker.prober().netns(), None);
    let r = wait_for_state(&checker, State::Down).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    checker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_deleted_at_run_time_fails_probes_saying_why() {
    let Some(ns) = TestNs::create() else { return };
    let pki = Pki::new();
    let (ports, stop) = serve_inside(&ns, ns.v4, &pki);
    let inside = SocketFactory::enter(&ns.name).unwrap();
    let runners = [
        ProbeRunner::with_sockets(TcpCheckMode::HalfOpen, inside.clone()),
        ProbeRunner::with_sockets(TcpCheckMode::Connect, inside.clone()),
    ];
    let tcp_spec = spec(tcp(ports.http, None), 2000);
    let icmp_spec = spec(ProbeKind::Icmp, 2000);
    for runner in &runners {
        let r = runner.probe(&tcp_spec, ns.v4).await;
        assert!(r.is_pass(), "{r:?}");
    }
    drop(stop);
    ns.delete_name();
    assert!(inside.check().is_err());
    for runner in &runners {
        let r = runner.probe(&tcp_spec, ns.v4).await;
        assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
        assert!(
            r.detail
                .contains(&format!("network namespace {} is gone", ns.name)),
            "{r:?}"
        );
        let r = runner.probe(&icmp_spec, ns.v4).await;
        assert_eq!(r.code, ResultCode::IcmpErr, "{r:?}");
        assert!(r.detail.contains("is gone"), "{r:?}");
    }
    // A namespace of that name that comes back is another one: still refused, saying so.
    ip_cmd(&["netns", "add", &ns.name]).unwrap();
    let err = inside.check().unwrap_err();
    assert!(err.to_string().contains("was replaced"), "{err}");
}

/// A process that lives in a namespace (`ip netns exec NAME sleep`), for its
/// `/proc/<pid>/ns/net`; killed on drop.
struct NsHolder(std::process::Child);

impl NsHolder {
    /// Starts the process and waits until it is inside the namespace; its namespace file.
    fn start(ns: &TestNs) -> (Self, String) {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "sleep", "120"])
            .spawn()
            .expect("ip netns exec");
        let holder = Self(child);
        let path = format!("/proc/{}/ns/net", holder.0.id());
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(&path).ok().as_ref() == Some(&ours) {
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never left our namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        (holder, path)
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_given_by_path_is_entered_like_one_given_by_name() {
    let Some(ns) = TestNs::create() else { return };
    let pki = Pki::new();
    let (ports, _stop) = serve_inside(&ns, ns.v4, &pki);
    let (_holder, proc_path) = NsHolder::start(&ns);
    let netns_dir_path = format!("{}/{}", maglev_health::netns::NETNS_DIR, ns.name);
    let tcp_spec = spec(tcp(ports.http, None), 3000);
    let http_spec = spec(ProbeKind::Http(HttpParams::new(ports.http)), 3000);
    for path in [netns_dir_path, proc_path] {
        let inside = SocketFactory::enter(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(inside.netns(), Some(path.as_str()));
        assert_eq!(inside.netns_file(), Some(std::path::Path::new(&path)));
        assert!(inside.check().is_ok(), "{path}");
        let runner = ProbeRunner::with_sockets(TcpCheckMode::Connect, inside);
        for probe in [&tcp_spec, &http_spec] {
            let r = runner.probe(probe, ns.v4).await;
            assert!(r.is_pass(), "{path}: {r:?}");
        }
    }
    // A path that is not there is named in the error, as a name is.
    let missing = format!("{}/{}-gone", maglev_health::netns::NETNS_DIR, ns.name);
    let err = SocketFactory::enter(&missing).unwrap_err();
    assert!(matches!(err, NetnsError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing), "{err}");
}

#[test]
fn without_cap_sys_admin_entering_fails_naming_namespace_and_capability() {
    let Some(ns) = TestNs::create() else { return };
    let name = ns.name.clone();
    // Capabilities belong to a thread (and the threads it starts): drop it in one of ours.
    let err = std::thread::spawn(move || {
        caps::drop(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).expect("drop");
        assert!(!caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).unwrap());
        SocketFactory::enter(&name).expect_err("entering without CAP_SYS_ADMIN")
    })
    .join()
    .unwrap();
    assert!(matches!(err, NetnsError::Permission { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&ns.name), "{message}");
    assert!(message.contains("CAP_SYS_ADMIN"), "{message}");
}

#[test]
fn a_missing_namespace_is_an_error_naming_it() {
    let err = SocketFactory::enter("maglev-it-never-created").unwrap_err();
    assert!(matches!(err, NetnsError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "maglev-it-never-created: /var/run/netns/maglev-it-never-created does not exist"
        ),
        "{err}"
    );
}
