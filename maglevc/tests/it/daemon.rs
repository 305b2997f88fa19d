//! A real maglevd for the live tests: the daemon binary on its embedded VPP simulator, with a
//! config of its own whose health-checked backends are TCP listeners this process runs on
//! loopback. Every listener binds port 0 (the API's address and the simulator's socket are
//! read from the daemon's JSON log), so parallel tests never collide.
//!
//! maglevd is a binary of another crate, so there is no `CARGO_BIN_EXE_maglevd`: the binary is
//! found next to this test's own (`target/<profile>/deps/it-*` → `target/<profile>/maglevd`)
//! and built once with `$CARGO build -p maglevd` when it is not there.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the daemon may take to reach an expected state: generous, as the first start of
/// a freshly built debug binary on a busy machine is slow (a deadline, not a timing goal).
const WAIT: Duration = Duration::from_secs(60);

/// The loopback addresses of the backends that answer (nginx0, nginx1) and of the one nobody
/// answers on (dead0).
const NGINX0: &str = "127.0.0.71";
const NGINX1: &str = "127.0.0.72";

/// The maglevd binary of this build, built once when missing.
pub(crate) fn maglevd_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // .../target[/<triple>]/<profile>/deps/it-xxxx
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <profile>/deps");
        let bin = profile_dir.join(format!("maglevd{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            // What cargo set for this test is not the build's business (a build script that
            // watches one of these would rebuild for nothing).
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key.starts_with("CARGO_PKG_")
                    || key.starts_with("CARGO_BIN_EXE_")
                    || matches!(
                        &*key,
                        "CARGO_MANIFEST_DIR"
                            | "CARGO_MANIFEST_PATH"
                            | "CARGO_CRATE_NAME"
                            | "CARGO_PRIMARY_PACKAGE"
                            | "CARGO_TARGET_TMPDIR"
                            | "CARGO_RUSTC_CURRENT_DIR"
                    )
                {
                    build.env_remove(&*key);
                }
            }
            build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "-p", "maglevd", "--bin", "maglevd", "--target-dir"])
                .arg(profile_dir.parent().expect("a target directory"));
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo build -p maglevd failed: {status}");
        }
        assert!(bin.exists(), "no maglevd at {}", bin.display());
        bin
    })
}

/// A TCP listener that accepts and closes: a healthy TCP-checked backend.
struct Backend {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn serve(listener: TcpListener) -> Self {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => drop(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running maglevd.
pub(crate) struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The gRPC API's address.
    pub(crate) addr: SocketAddr,
    /// The health-check port of every checked backend (volatile: redacted in snapshots).
    pub(crate) check_port: u16,
    /// The embedded simulator's binary API socket.
    pub(crate) vpp_socket: PathBuf,
    /// The config file (in a temporary directory: redacted in snapshots).
    pub(crate) config: PathBuf,
    _backends: Vec<Backend>,
    _dir: tempfile::TempDir,
}

/// The config: two frontends, four backends (two answering, one not, one unchecked) over
/// two pools, one TCP health check on `port`.
fn config(port: u16) -> String {
    format!(
        "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: 1h
      startup-min-delay: 0s
      startup-max-delay: 0s
  healthchecks:
    tcp: {{ type: tcp, port: {port}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
  backends:
    nginx0: {{ address: {NGINX0}, healthcheck: tcp }}
    nginx1: {{ address: {NGINX1}, healthcheck: tcp }}
    dead0: {{ address: 127.0.0.73, healthcheck: tcp }}
    static0: {{ address: 127.0.0.74 }}
  frontends:
    web:
      description: public web site
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            nginx0: {{ weight: 100 }}
            nginx1: {{ weight: 50 }}
        - name: fallback
          backends:
            static0: {{}}
    dns:
      address: 192.0.2.53
      protocol: udp
      port: 53
      src-ip-sticky: true
      pools:
        - name: all
          backends:
            dead0: {{}}
            static0: {{ weight: 10 }}
"
    )
}

impl Daemon {
    /// Starts maglevd and waits until every backend has its first state and VPP holds the
    /// desired state (an empty dry run).
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // nginx0 and nginx1 answer on the same port of their own addresses; dead0's address
        // has no listener, so its check is refused at once.
        let first = TcpListener::bind((NGINX0, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let second = TcpListener::bind((NGINX1, port)).unwrap();
        let backends = vec![Backend::serve(first), Backend::serve(second)];
        let path = dir.path().join("maglev.yaml");
        std::fs::write(&path, config(port)).unwrap();
        let mut child = Command::new(maglevd_bin())
            .arg("--config")
            .arg(&path)
            .args([
                "--embedded-sim",
                "--grpc-addr",
                "127.0.0.1:0",
                // No /metrics listener: its default port is fixed.
                "--metrics-addr",
                "",
                "--tcp-check",
                "connect",
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .env_remove("MAGLEV_CONFIG")
            .env_remove("MAGLEV_LOG_LEVEL")
            .env_remove("MAGLEV_GRPC_ADDR")
            .env_remove("MAGLEV_VPP_API_ADDR")
            .env_remove("MAGLEV_METRICS_ADDR")
            // The simulator's sockets go to a directory under TMPDIR: this test's own.
            .env("TMPDIR", dir.path())
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
        let mut daemon = Self {
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            check_port: port,
            vpp_socket: PathBuf::new(),
            config: path,
            _backends: backends,
            _dir: dir,
        };
        daemon.addr = daemon
            .field("grpc-listening", "addr")
            .parse()
            .expect("a socket address");
        daemon.vpp_socket = PathBuf::from(daemon.field("vpp-sim-started", "api_socket"));
        daemon.wait_steady();
        daemon
    }

    /// Everything the daemon logged so far.
    pub(crate) fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The string field `name` of the first `event` record, waiting for it.
    fn field(&mut self, event: &str, name: &str) -> String {
        let needle = format!("\"message\":\"{event}\"");
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(&needle))
                .cloned();
            if let Some(line) = found {
                let record: serde_json::Value = serde_json::from_str(&line).unwrap();
                return find_str(&record, name)
                    .unwrap_or_else(|| panic!("no {name} in {line}"))
                    .to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "maglevd exited ({status:?}) before {event}:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {event} record:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `maglevc --server <addr> --json <words>` and parses its output.
    pub(crate) fn json(&self, line: &str) -> serde_json::Value {
        let mut args = vec!["--json"];
        args.extend(line.split_whitespace());
        let out = crate::support::run(self.addr, &args);
        assert_eq!(out.code, 0, "{line}: {}", out.stderr);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{line} --json is not JSON: {e}\n{}", out.stdout))
    }

    /// Like [`Self::json`], `None` when the command fails (while the daemon starts).
    fn try_json(&self, line: &str) -> Option<serde_json::Value> {
        let mut args = vec!["--json"];
        args.extend(line.split_whitespace());
        let out = crate::support::run(self.addr, &args);
        (out.code == 0).then(|| serde_json::from_str(&out.stdout).ok())?
    }

    /// Polls `probe` until it holds.
    pub(crate) fn wait_for(&self, what: &str, mut probe: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !probe(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_steady(&self) {
        let want = [
            ("nginx0", "up"),
            ("nginx1", "up"),
            ("dead0", "down"),
            ("static0", "up"),
        ];
        self.wait_for("the backends' first states", |d| {
            let Some(doc) = d.try_json("show backends") else {
                return false;
            };
            want.iter().all(|(name, state)| {
                doc["backends"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["name"] == *name && b["state"] == *state)
            })
        });
        self.wait_for("VPP to hold the desired state", |d| {
            d.try_json("sync vpp lb state dry-run")
                .is_some_and(|plan| plan["ops"].as_array().is_some_and(Vec::is_empty))
        });
    }

    /// Stops the daemon (SIGKILL) and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first string value of key `name` anywhere in `value`.
fn find_str<'a>(value: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    match value {
        serde_json::Value::Object(map) => map
            .get(name)
            .and_then(serde_json::Value::as_str)
            .or_else(|| map.values().find_map(|v| find_str(v, name))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_str(v, name)),
        _ => None,
    }
}
