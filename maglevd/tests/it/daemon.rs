//! The daemon (the binary) against the VPP simulator with local backends on loopback: it
//! reaches the expected VPP state, sends nothing when there is no drift, follows a backend
//! going down, keeps running on its old config after a bad SIGHUP, applies a good one, stops
//! cleanly on SIGTERM, and starts a config of 10,000 backends without a lag warning. (The
//! sync engine's own behaviour, VPP restarts and the warmup included, is tested in
//! maglev-vpp.)

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vpp_sim::{SimConfig, SimHandle, Simulator};

const VIP: &str = "192.0.2.80";

/// The daemon tests run one at a time: the 10,000-backend start loads the machine enough to
/// upset the other's timing.
static DAEMONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(config: &Path, api: &Path) -> Self {
        Self::start_logging(
            config,
            api,
            &["--log-format", "json", "--log-level", "info"],
        )
    }

    /// Starts with `log` as the log flags.
    fn start_logging(config: &Path, api: &Path, log: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_maglevd"))
            .arg("--config")
            .arg(config)
            .arg("--vpp-api-socket")
            .arg(api)
            .args(log)
            // No API: parallel tests never collide on a port (the API has its own tests).
            .args(["--grpc-addr", ""])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .env_remove("MAGLEV_CONFIG")
            .env_remove("MAGLEV_METRICS_ADDR")
            .env_remove("MAGLEV_LOG_LEVEL")
            .env_remove("MAGLEV_LOG_FORMAT")
            .env_remove("MAGLEV_ENV_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn count(&self, event: &str) -> usize {
        let needle = format!("\"message\":\"{event}\"");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Lines that contain every one of `words`.
    fn lines_with(&self, words: &[&str]) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    }

    fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The used ASes of the VIP as address -> weight, `None` when the VIP does not exist.
fn vip_ases(sim: &SimHandle) -> Option<BTreeMap<IpAddr, u8>> {
    let vip: IpAddr = VIP.parse().unwrap();
    sim.with_lb(|lb| {
        let exists = lb
            .vip_dump()
            .iter()
            .any(|v| v.prefix == vip && v.protocol == 6 && v.port == 80);
        exists.then(|| {
            lb.as_dump(None)
                .into_iter()
                .filter(|a| a.vip.prefix == vip && a.flags & 1 == 1)
                .map(|a| (a.address, a.weight))
                .collect()
        })
    })
}

async fn wait_for(what: &str, daemon: &Daemon, ok: impl FnMut() -> bool) {
    wait_within(Duration::from_secs(20), what, daemon, ok).await;
}

async fn wait_within(limit: Duration, what: &str, daemon: &Daemon, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(ports: [u16; 2], b1_weight: u8) -> String {
    config_with_warmup(ports, b1_weight, "0s", "0s")
}

fn config_with_warmup(ports: [u16; 2], b1_weight: u8, min: &str, max: &str) -> String {
    format!(
        "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: 1s
      startup-min-delay: {min}
      startup-max-delay: {max}
  healthchecks:
    c1: {{ type: tcp, port: {p1}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
    c2: {{ type: tcp, port: {p2}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
  backends:
    b1: {{ address: 127.0.0.61, healthcheck: c1 }}
    b2: {{ address: 127.0.0.62, healthcheck: c2 }}
    b3: {{ address: 127.0.0.63 }}
  frontends:
    web:
      address: {VIP}
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            b1: {{ weight: {b1_weight} }}
            b2: {{}}
            b3: {{ weight: 20 }}
",
        p1 = ports[0],
        p2 = ports[1],
    )
}

/// A TCP listener that accepts and closes, until the task is aborted (which closes it).
async fn listen(addr: SocketAddr) -> (tokio::task::JoinHandle<()>, u16) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    (task, port)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_programs_the_simulator_and_survives_a_bad_reload() {
    let _serial = DAEMONS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let api: PathBuf = dir.path().join("api.sock");
    let sim = Simulator::start(SimConfig::new(&api)).await.unwrap();

    // b1 listens; b2's port is closed (bound then released).
    let (b1, b1_port) = listen(SocketAddr::from(([127, 0, 0, 61], 0))).await;
    let b2_port = {
        let l = TcpListener::bind(SocketAddr::from(([127, 0, 0, 62], 0))).unwrap();
        l.local_addr().unwrap().port()
    };
    let ports = [b1_port, b2_port];
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config(ports, 100)).unwrap();
    let daemon = Daemon::start(&path, &api);

    // b1 up with its pool weight, b2 down with 0, b3 static with its weight.
    let expected = BTreeMap::from([
        (ip("127.0.0.61"), 100),
        (ip("127.0.0.62"), 0),
        (ip("127.0.0.63"), 20),
    ]);
    wait_for("the initial state", &daemon, || {
        vip_ases(&sim).as_ref() == Some(&expected)
    })
    .await;
    // b2 went unknown -> down (flush-on-down). When VPP already held b2, that is one flush even
    // though its weight is 0; when b2's first result came before the first sync, b2 was added
    // at weight 0 with no flows to flush. Either way, never more than one (maglev-vpp's e2e
    // tests pin the flush of an AS VPP already holds).
    let b2_before_sync = {
        let logs = daemon.logs();
        let b2 = logs.find("\"backend\":\"b2\",\"from\":\"unknown\"");
        let first_sync = logs.find("\"message\":\"vpp-lbsync-done\"");
        matches!((b2, first_sync), (Some(t), Some(s)) if t < s)
    };
    if b2_before_sync {
        assert!(flushes(&sim, "127.0.0.62") <= 1);
    } else {
        wait_for("b2's one-time flush", &daemon, || {
            flushes(&sim, "127.0.0.62") == 1
        })
        .await;
    }
    assert!(daemon.count("vpp-connect") >= 1);
    assert!(daemon.count("vpp-lb-conf-set") == 1);
    let conf = sim.with_lb(|lb| lb.conf());
    assert_eq!(conf.flow_timeout, 40);

    // No drift: two periodic syncs later, not one more mutating message.
    let before = sim.journal().len();
    let syncs = daemon.count("vpp-lbsync-done");
    wait_for("two more syncs", &daemon, || {
        daemon.count("vpp-lbsync-done") >= syncs + 2
    })
    .await;
    assert_eq!(sim.journal().len(), before, "{:?}", sim.journal());

    // A bad config on SIGHUP is refused and the old one keeps running.
    std::fs::write(&path, config(ports, 100).replace("port: 80", "port: 0")).unwrap();
    daemon.signal("-HUP");
    wait_for("the reload failure", &daemon, || {
        daemon.count("config-reload-failed") == 1
    })
    .await;
    assert!(daemon.logs().contains("frontends.web.port"));
    // Still health checking and syncing with the old config: b1 goes down -> weight 0.
    b1.abort();
    let down = BTreeMap::from([
        (ip("127.0.0.61"), 0),
        (ip("127.0.0.62"), 0),
        (ip("127.0.0.63"), 20),
    ]);
    wait_for("b1 drained", &daemon, || {
        vip_ases(&sim).as_ref() == Some(&down)
    })
    .await;
    // flush-on-down (default true): the drain flushed b1's flows.
    assert_eq!(flushes(&sim, "127.0.0.61"), 1, "{:?}", sim.journal());

    // A good config applies: b1 back up (a new listener on its port) with weight 30.
    let (_b1, _) = listen(SocketAddr::from(([127, 0, 0, 61], b1_port))).await;
    std::fs::write(&path, config(ports, 30)).unwrap();
    daemon.signal("-HUP");
    let reweighted = BTreeMap::from([
        (ip("127.0.0.61"), 30),
        (ip("127.0.0.62"), 0),
        (ip("127.0.0.63"), 20),
    ]);
    wait_for("the new weight", &daemon, || {
        vip_ases(&sim).as_ref() == Some(&reweighted)
    })
    .await;
    assert_eq!(daemon.count("config-reload-done"), 1);
    // The reload did not change vpp.lb: no second lb_conf.
    assert_eq!(daemon.count("vpp-lb-conf-set"), 1);

    // SIGTERM: clean exit.
    stop(daemon).await;
    sim.shutdown();
}

/// How many `lb_as_set_weight` with `is_flush` the simulator got for AS `address`.
fn flushes(sim: &SimHandle, address: &str) -> usize {
    let address: IpAddr = address.parse().unwrap();
    sim.journal()
        .iter()
        .filter_map(|e| {
            e.message
                .as_any()
                .downcast_ref::<vpp_binapi::api::lb::LbAsSetWeight>()
        })
        .filter(|m| m.is_flush && m.as_address.to_ip().ok() == Some(address))
        .count()
}

/// SIGTERM, then waits for a successful exit.
async fn stop(mut daemon: Daemon) {
    daemon.signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "maglevd did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}\n{}", daemon.logs());
    assert_eq!(daemon.count("stopped"), 1);
    // A VPP session is closed, and said so, once.
    if daemon.count("vpp-connect") > 0 {
        assert_eq!(daemon.count("vpp-disconnect"), 1, "{}", daemon.logs());
    }
}

/// 100 frontends x 100 static backends, a 3 s warmup hold (every static backend resolves
/// within it, even on a loaded machine) and a 30 s sync-interval.
fn big_config() -> String {
    use std::fmt::Write as _;
    let mut yaml = String::from(
        "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: 30s
      startup-min-delay: 3s
      startup-max-delay: 30s
  backends:
",
    );
    for f in 0..100 {
        for b in 0..100 {
            writeln!(yaml, "    f{f}b{b}: {{ address: 10.1.{f}.{} }}", b + 1).unwrap();
        }
    }
    yaml.push_str("  frontends:\n");
    for f in 0..100 {
        write!(
            yaml,
            "    f{f}:\n      address: 192.0.3.{}\n      protocol: tcp\n      port: 80\n      pools:\n        - name: p\n          backends: {{ ",
            f + 1
        )
        .unwrap();
        for b in 0..100 {
            write!(yaml, "f{f}b{b}: {{}}, ").unwrap();
        }
        yaml.push_str("}\n");
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_backends_start_cleanly() {
    let _serial = DAEMONS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.sock");
    let sim = Simulator::start(SimConfig::new(&api)).await.unwrap();
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, big_config()).unwrap();
    let daemon = Daemon::start(&path, &api);
    // 10,000 operations from a debug build on a loaded machine: give it time.
    wait_within(Duration::from_secs(90), "the first sync", &daemon, || {
        daemon.count("vpp-lbsync-done") >= 1
    })
    .await;
    let ases = sim.with_lb(|lb| lb.as_dump(None).len());
    let lines: Vec<String> = daemon
        .logs()
        .lines()
        .filter(|l| !l.contains("vpp-lbsync-as-") && !l.contains("vpp-lbsync-vip-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(ases, 10_000, "{}", lines.join("\n"));
    // Nothing more to do: no second full sync (the sync-interval is 30 s). On a loaded machine a
    // backend's first result can land after the full sync; the per-frontend follow-up it causes
    // must then find nothing to change.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let logs = daemon.logs();
    let done: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"message\":\"vpp-lbsync-done\""))
        .collect();
    let full = done
        .iter()
        .filter(|l| l.contains("\"scope\":\"all\""))
        .count();
    assert_eq!(full, 1, "{logs}");
    let idle = "\"vip_add\":0,\"vip_del\":0,\"as_add\":0,\"as_del\":0,\"as_weight\":0";
    assert!(
        done.iter()
            .filter(|l| !l.contains("\"scope\":\"all\""))
            .all(|l| l.contains(idle)),
        "{logs}"
    );
    assert_eq!(daemon.count("vpp-lbsync-lagged"), 0, "{}", daemon.logs());
    assert_eq!(
        daemon.count("vpp-lb-warmup-release"),
        1,
        "{}",
        daemon.logs()
    );
    stop(daemon).await;
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logfmt_lines_and_sighup_changes_the_level_from_the_env_file() {
    let _serial = DAEMONS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let api: PathBuf = dir.path().join("api.sock");
    let sim = Simulator::start(SimConfig::new(&api)).await.unwrap();
    let (_b1, b1_port) = listen(SocketAddr::from(([127, 0, 0, 61], 0))).await;
    let (_b2, b2_port) = listen(SocketAddr::from(([127, 0, 0, 62], 0))).await;
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config([b1_port, b2_port], 100)).unwrap();
    let env_file = dir.path().join("maglevd");
    std::fs::write(&env_file, "MAGLEV_CONFIG=/ignored/on/reload\n").unwrap();
    let env_arg = env_file.to_str().unwrap();
    let daemon = Daemon::start_logging(
        &path,
        &api,
        &[
            "--log-format",
            "logfmt",
            "--log-level",
            "info",
            "--env-file",
            env_arg,
        ],
    );

    // logfmt at INFO: key=value records, no DEBUG ones.
    wait_for("a transition in logfmt", &daemon, || {
        daemon.lines_with(&["level=info", "message=backend-transition", "backend=b1"]) > 0
    })
    .await;
    assert_eq!(daemon.lines_with(&["{\""]), 0, "no JSON: {}", daemon.logs());
    assert!(daemon.lines_with(&["ts=", "level=info", "message=starting"]) == 1);
    assert_eq!(daemon.lines_with(&["level=debug"]), 0);

    // The env file asks for DEBUG: probes and API messages show, with their names.
    std::fs::write(&env_file, "# raised for a look\nMAGLEV_LOG_LEVEL=debug\n").unwrap();
    daemon.signal("-HUP");
    wait_for("DEBUG records after SIGHUP", &daemon, || {
        daemon.lines_with(&["message=log-level", "filter=debug", "source=env-file"]) == 1
            && daemon.lines_with(&["level=debug", "message=probe-start", "backend=b1"]) > 0
            && daemon.lines_with(&["level=debug", "message=probe-done", "backend=b1"]) > 0
            && daemon.lines_with(&["level=debug", "vpp-api-send", "msg=lb_vip_dump"]) > 0
            && daemon.lines_with(&["level=debug", "vpp-api-recv", "msg=lb_vip_details"]) > 0
    })
    .await;

    // The level leaves the file: back to --log-level, the DEBUG records stop.
    std::fs::write(&env_file, "MAGLEV_CONFIG=/ignored/on/reload\n").unwrap();
    daemon.signal("-HUP");
    wait_for("the flag's level again", &daemon, || {
        daemon.lines_with(&["message=log-level", "filter=info", "source=flag"]) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let debug = daemon.lines_with(&["level=debug"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        daemon.lines_with(&["level=debug"]),
        debug,
        "probes run every 100 ms"
    );
    drop(daemon);
    sim.shutdown();
}
