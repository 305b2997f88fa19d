//! `healthchecker.netns`: maglevd probes from the namespace the config names.
//!
//! The tests create their own namespace (`ip netns add`), with a veth pair to the test's
//! namespace and an address from 10.213.X.0/24 that exists only inside it (routed
//! `unreachable` outside, so a probe from the wrong namespace fails at once and nothing leaves
//! the machine), and a TCP listener inside. A guard removes it all, also when a test fails.
//! Without the rights to create namespaces the tests skip with a loud message, and fail under
//! `CI=true`.

use std::io::{BufRead as _, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

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

/// A namespace of this test with a veth pair, an address inside and an unreachable route
/// outside; removed on drop.
struct TestNs {
    name: String,
    outer: String,
    addr: IpAddr,
    net: String,
}

impl TestNs {
    fn create() -> Option<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // 10.213.121-250: maglev-health's tests use 1-120.
        let x = (pid.wrapping_mul(7).wrapping_add(n)) % 130 + 121;
        let name = format!("maglevd-it-{pid}-{n}");
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
            outer: format!("md{}o{n}", pid % 100_000),
            addr: format!("10.213.{x}.1").parse().unwrap(),
            net: format!("10.213.{x}.0/24"),
            name,
        };
        let inner = format!("md{}i{n}", pid % 100_000);
        let cidr = format!("{}/24", ns.addr);
        let steps: [&[&str]; 6] = [
            &[
                "link", "add", &ns.outer, "type", "veth", "peer", "name", &inner, "netns", &ns.name,
            ],
            &["link", "set", &ns.outer, "up"],
            &["-n", &ns.name, "link", "set", "lo", "up"],
            &["-n", &ns.name, "link", "set", &inner, "up"],
            &["-n", &ns.name, "addr", "add", &cidr, "dev", &inner],
            &["route", "add", "unreachable", &ns.net],
        ];
        for step in steps {
            ip_cmd(step).unwrap_or_else(|e| panic!("setting up {}: {e}", ns.name));
        }
        Some(ns)
    }

    /// A TCP listener on the namespace's address, from a thread inside it; it closes when
    /// the returned sender is dropped.
    fn listen(&self) -> (u16, mpsc::Sender<()>) {
        let path = Path::new("/var/run/netns").join(&self.name);
        let addr = self.addr;
        let (port_tx, port_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the namespace");
            move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(LinkNameSpaceType::Network),
            )
            .expect("enter the namespace");
            // The kernel completes handshakes from the backlog: nothing needs to accept.
            let listener = std::net::TcpListener::bind((addr, 0)).expect("listen inside");
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let _ = stop_rx.recv();
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("listener inside the namespace");
        (port, stop_tx)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = ip_cmd(&["route", "del", "unreachable", &self.net]);
        let _ = ip_cmd(&["link", "del", &self.outer]);
        let _ = ip_cmd(&["netns", "del", &self.name]);
    }
}

/// A health-checking-only config: one backend probed over TCP, one over ICMP, both at
/// `addr`, from namespace `netns` when given.
fn config(netns: Option<&str>, addr: IpAddr, port: u16) -> String {
    let netns = netns.map_or(String::new(), |n| {
        format!("  healthchecker: {{ netns: {n} }}\n")
    });
    format!(
        "
maglev:
{netns}  healthchecks:
    t: {{ type: tcp, port: {port}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
    i: {{ type: icmp, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
  backends:
    bt: {{ address: {addr}, healthcheck: t }}
    bi: {{ address: {addr}, healthcheck: i }}
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends:
            bt: {{}}
    ping:
      address: 192.0.2.81
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends:
            bi: {{}}
"
    )
}

/// maglevd with health checking only (no VPP), JSON logs collected.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(config: &Path) -> Self {
        let mut child = maglevd(&[], config)
            .stdout(Stdio::piped())
            .spawn()
            .expect("maglevd starts");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Whether a `backend-transition` of `backend` to `to` was logged.
    fn went(&self, backend: &str, to: &str) -> bool {
        let (b, t) = (
            format!("\"backend\":\"{backend}\""),
            format!("\"to\":\"{to}\""),
        );
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("\"backend-transition\"") && l.contains(&b) && l.contains(&t))
    }

    fn wait_for(&self, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[wrapper...] maglevd --config PATH`, health checking only (no VPP, no gRPC, no metrics), JSON logs.
fn maglevd(wrapper: &[&str], config: &Path) -> Command {
    let bin = env!("CARGO_BIN_EXE_maglevd");
    let mut cmd = match wrapper.split_first() {
        None => Command::new(bin),
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(bin);
            cmd
        }
    };
    cmd.arg("--config")
        .arg(config)
        .args(["--vpp-api-socket", ""])
        .args(["--grpc-addr", ""])
        .args(["--metrics-addr", ""])
        .args(["--log-format", "json", "--log-level", "info"])
        .env_remove("MAGLEV_CONFIG")
        .env_remove("MAGLEV_LOG_LEVEL")
        .env_remove("MAGLEV_GRPC_ADDR")
        .env_remove("MAGLEV_METRICS_ADDR")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// Runs maglevd to its exit (it must not start), at most 20 s.
fn refused(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("maglevd starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("maglevd kept running: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn probes_run_in_the_configured_namespace_and_follow_a_reload() {
    let Some(ns) = TestNs::create() else { return };
    let (port, _stop) = ns.listen();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config(Some(&ns.name), ns.addr, port)).unwrap();
    let daemon = Daemon::start(&path);
    daemon.wait_for("both backends up from inside the namespace", |d| {
        d.went("bt", "up") && d.went("bi", "up")
    });
    assert!(
        daemon
            .logs()
            .contains(&format!("\"netns\":\"{}\"", ns.name)),
        "{}",
        daemon.logs()
    );
    // The same config without netns: probes from maglevd's own namespace cannot reach the
    // backends, which go down.
    std::fs::write(&path, config(None, ns.addr, port)).unwrap();
    daemon.signal("-HUP");
    daemon.wait_for("both backends down from outside", |d| {
        d.went("bt", "down") && d.went("bi", "down")
    });
    assert!(daemon.logs().contains("netns-changed"), "{}", daemon.logs());
    // And back: a reload into the namespace brings them up again.
    std::fs::write(&path, config(Some(&ns.name), ns.addr, port)).unwrap();
    let ups = |d: &Daemon| {
        d.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("\"backend-transition\"") && l.contains("\"to\":\"up\""))
            .count()
    };
    daemon.signal("-HUP");
    daemon.wait_for("both backends up again", |d| ups(d) >= 4);
}

#[test]
fn a_missing_namespace_is_a_startup_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maglev.yaml");
    let name = format!("maglevd-it-missing-{}", std::process::id());
    std::fs::write(
        &path,
        config(Some(&name), "10.213.250.1".parse().unwrap(), 80),
    )
    .unwrap();
    let out = refused(maglevd(&[], &path));
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("netns-error"), "{logs}");
    assert!(
        logs.contains(&format!(
            "network namespace {name}: /var/run/netns/{name} does not exist"
        )),
        "{logs}"
    );
}

#[test]
fn without_cap_sys_admin_the_namespace_is_a_startup_error() {
    let Some(ns) = TestNs::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config(Some(&ns.name), ns.addr, 80)).unwrap();
    let out = refused(maglevd(
        &[
            "setpriv",
            "--inh-caps=-sys_admin",
            "--bounding-set=-sys_admin",
        ],
        &path,
    ));
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("netns-error"), "{logs}");
    assert!(logs.contains(&ns.name), "{logs}");
    assert!(logs.contains("needs CAP_SYS_ADMIN"), "{logs}");
}

#[test]
fn check_says_where_probes_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maglev.yaml");
    let addr: IpAddr = "10.213.250.1".parse().unwrap();
    let check = |text: String| {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_maglevd"))
            .arg("--check")
            .arg("--config")
            .arg(&path)
            .env_remove("MAGLEV_CONFIG")
            .env_remove("MAGLEV_GRPC_ADDR")
            .output()
            .expect("maglevd runs");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let inside = check(config(Some("dataplane"), addr, 80));
    assert!(
        inside.contains(
            "health checks: probes run in network namespace dataplane (/var/run/netns/dataplane)"
        ),
        "{inside}"
    );
    let own = check(config(None, addr, 80));
    assert!(
        own.contains("health checks: probes run in maglevd's own network namespace"),
        "{own}"
    );
}
