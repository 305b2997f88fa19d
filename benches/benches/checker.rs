//! Checker scale benchmark: N backends (default 10,000) TCP-checked every second against local
//! listeners on loopback, for a bounded time.
//!
//! A measurement program rather than a criterion loop: it prints CPU seconds per 1,000 probes,
//! peak RSS, probe start lag (actual minus planned start, p50/p99/max) and probes per second.
//! The listeners run in a child process (this same binary, `CHECKER_BENCH_ROLE=listener`) so
//! the checker's CPU and memory are measured alone, like HAProxy's in `haproxy-hc-anchor.md`.
//!
//! Environment:
//! - `CHECKER_BENCH_SECS`: measurement window in seconds (default 10), after a warm-up of one
//!   interval plus 2 s;
//! - `CHECKER_BENCH_BACKENDS`: number of backends (default 10000);
//! - `CHECKER_BENCH_INTERVAL_MS`: probe interval (default 1000);
//! - `CHECKER_BENCH_THREADS`: tokio worker threads of the checker (default 2; 0 for a
//!   current-thread runtime);
//! - `CHECKER_BENCH_LISTENERS`: listener count, one per address 127.0.1.x (default 100);
//! - `CHECKER_BENCH_PROBER`: `minimal` swaps the real prober (`maglev_health::probe`) for a
//!   bench-local connect-and-close prober, `rst` for the same closing with a reset (as HAProxy
//!   does; no TIME_WAIT), `rst-noqa` for the reset close with quick-ack off before the connect
//!   (HAProxy's full trick: the server never leaves SYN-RECV), `noop` for one that does no I/O
//!   at all, to separate prober cost from scheduler cost; `connect` and `half-open` force
//!   the production prober's TCP check mode (default: `auto`, half-open when raw sockets are
//!   allowed).
//! - `CHECKER_BENCH_NETNS`: the name of a network namespace (`ip netns add NAME; ip -n NAME
//!   link set lo up`): the listeners run inside it (`ip netns exec`), and the production
//!   prober creates its sockets there through a `SocketFactory` (`healthchecker.netns`).
//!
//! Run: `cargo bench -p benches --bench checker`.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use maglev_health::checker::{
    BackendSpec, CheckSpec, Checker, CheckerConfig, DefaultProber, Prober,
};
use maglev_health::machine::State;
use maglev_health::netns::SocketFactory;
use maglev_health::probe::{ProbeKind, ProbeRunner, ProbeSpec, TcpCheckMode};
use maglev_health::result::{ProbeResult, ResultCode};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn listener_addr(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, (i % 250 + 1) as u8)
}

/// Child process: `listeners` accept loops on 127.0.1.x:port, closing every connection at
/// once. Prints the port, then runs until stdin closes (the parent exits).
fn run_listeners() {
    let listeners = env_u64("CHECKER_BENCH_LISTENERS", 100).clamp(1, 250);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("listener runtime");
    rt.block_on(async move {
        let first = tokio::net::TcpListener::bind((listener_addr(0), 0))
            .await
            .expect("bind first listener");
        let port = first.local_addr().expect("local addr").port();
        let mut all = vec![first];
        for i in 1..listeners {
            let l = tokio::net::TcpListener::bind((listener_addr(i), port))
                .await
                .expect("bind listener");
            all.push(l);
        }
        for l in all {
            tokio::spawn(async move {
                loop {
                    if let Ok((s, _)) = l.accept().await {
                        drop(s);
                    }
                }
            });
        }
        let mut out = std::io::stdout();
        writeln!(out, "{port}").expect("write port");
        out.flush().expect("flush");
        // Run until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                line.clear();
            }
        })
        .await
        .expect("stdin watcher");
    });
}

/// A minimal TCP-connect prober: connect within the spec's timeout, then close (with a reset
/// when `reset` is set, as HAProxy closes its plain TCP checks).
struct ConnectProber {
    port: u16,
    reset: bool,
    quickack_off: bool,
}

/// A prober that does no I/O: isolates the scheduler's own cost (`CHECKER_BENCH_PROBER=noop`).
struct NoopProber;

impl Prober for NoopProber {
    async fn probe(&self, _spec: &ProbeSpec, _target: IpAddr) -> ProbeResult {
        ProbeResult::new(ResultCode::L4Ok, "noop", Duration::ZERO)
    }
}

// The port also lives in the spec; the minimal prober keeps its own copy so it never has to
// look inside `ProbeKind`.

impl Prober for ConnectProber {
    async fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> ProbeResult {
        let start = tokio::time::Instant::now();
        let addr = SocketAddr::new(target, self.port);
        let socket = match tokio::net::TcpSocket::new_v4() {
            Ok(s) => s,
            Err(e) => return ProbeResult::new(ResultCode::L4Con, e.to_string(), start.elapsed()),
        };
        if self.quickack_off {
            let _ = socket2::SockRef::from(&socket).set_tcp_quickack(false);
        }
        match tokio::time::timeout(spec.timeout, socket.connect(addr)).await {
            Ok(Ok(stream)) => {
                if self.reset {
                    // Failure only means a normal close.
                    let _ = stream.set_zero_linger();
                }
                drop(stream);
                ProbeResult::new(ResultCode::L4Ok, "connected", start.elapsed())
            }
            Ok(Err(e)) => ProbeResult::new(ResultCode::L4Con, e.to_string(), start.elapsed()),
            Err(_) => ProbeResult::new(ResultCode::L4Tout, "timeout", start.elapsed()),
        }
    }
}

fn probe_spec(port: u16, timeout: Duration) -> ProbeSpec {
    ProbeSpec::new(ProbeKind::Tcp { port, tls: None }, timeout)
}

/// Runs the measurement with the given prober and prints the figures.
async fn measure<P: Prober>(prober: P, port: u16, opts: &Opts, child: u32) {
    let child = child.to_string();
    let Opts {
        secs,
        backends,
        interval,
        threads,
        listeners,
    } = *opts;
    let checker = Checker::with_prober(CheckerConfig::default(), prober);
    let check = CheckSpec {
        probe: probe_spec(port, Duration::from_secs(1)),
        interval,
        fast_interval: interval,
        down_interval: interval,
        rise: 2,
        fall: 3,
    };
    let specs = (0..backends)
        .map(|i| BackendSpec {
            name: format!("be-{i}"),
            address: IpAddr::V4(listener_addr(i % listeners)),
            check: Some(check.clone()),
            enabled: true,
        })
        .collect();
    checker.apply_config(specs).expect("apply config");

    // Warm up: every backend gets its first probe and settles.
    tokio::time::sleep(interval + Duration::from_secs(2)).await;
    let up0 = checker
        .snapshot()
        .iter()
        .filter(|s| s.state == State::Up)
        .count();
    let cpu0 = cpu_seconds();
    let run0 = run_seconds();
    let user0 = user_seconds();
    let child0 = cpu_seconds_of(&child);
    let stats0 = checker.stats();
    let net0 = tcp_counters();
    let t0 = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds();
    let run1 = run_seconds();
    let user = user_seconds() - user0;
    let child_cpu = cpu_seconds_of(&child) - child0;
    let stats1 = checker.stats();
    let net1 = tcp_counters();
    let snap = checker.snapshot();
    let up = snap.iter().filter(|s| s.state == State::Up).count();
    let failed = snap
        .iter()
        .filter(|s| s.last_result.as_ref().is_some_and(|r| !r.is_pass()))
        .count();
    let mut durations: Vec<Duration> = snap
        .iter()
        .filter_map(|s| s.last_result.as_ref().map(|r| r.elapsed))
        .collect();
    durations.sort();
    let pick = |q: f64| {
        durations
            .get(((durations.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let (d50, d99, dmax) = (pick(0.5), pick(0.99), pick(1.0));
    checker.shutdown().await;

    let probes = stats1.probes_completed - stats0.probes_completed;
    let cpu = cpu1 - cpu0;
    let expected = backends as f64 * elapsed / interval.as_secs_f64();
    println!(
        "checker bench: {backends} backends, interval {interval:?}, {threads} worker threads, {listeners} listeners"
    );
    println!(
        "window: {elapsed:.1} s, probes completed: {probes} ({:.1}% of expected {expected:.0})",
        100.0 * probes as f64 / expected
    );
    println!("probes/s: {:.0}", probes as f64 / elapsed);
    println!(
        "checker CPU: {cpu:.2} s = {:.1}% of one core; {:.3} CPU s per 1,000 probes ({:.1} us per probe)",
        100.0 * cpu / elapsed,
        1000.0 * cpu / probes.max(1) as f64,
        1e6 * cpu / probes.max(1) as f64
    );
    let run = run1 - run0;
    println!(
        "  on-CPU time (schedstat, to the nanosecond): {run:.3} s; {:.2} us per probe",
        1e6 * run / probes.max(1) as f64
    );
    println!(
        "  of which user {:.0}%, system {:.0}%",
        100.0 * user / cpu.max(1e-9),
        100.0 * (cpu - user) / cpu.max(1e-9)
    );
    println!(
        "listener process CPU: {child_cpu:.2} s = {:.1}% of one core",
        100.0 * child_cpu / elapsed
    );
    println!(
        "peak RSS (VmHWM): {:.1} MB, RSS now: {:.1} MB",
        status_kb("VmHWM:") as f64 / 1024.0,
        status_kb("VmRSS:") as f64 / 1024.0
    );
    println!(
        "start lag (whole run): p50 {:?}, p99 {:?}, max {:?}",
        stats1.lag_p50, stats1.lag_p99, stats1.lag_max
    );
    println!("last probe duration per backend: p50 {d50:?}, p99 {d99:?}, max {dmax:?}");
    let per_s = |i: usize| (net1[i] - net0[i]) as f64 / elapsed;
    println!(
        "kernel TCP counters per second (whole host): active opens {:.0}, passive opens {:.0}, \
         attempt fails {:.0}, listen overflows {:.0}, listen drops {:.0}",
        per_s(0),
        per_s(1),
        per_s(2),
        per_s(3),
        per_s(4)
    );
    println!("backends up: {up0} after warm-up, {up} at end; last probe failed: {failed}");
}

#[derive(Clone, Copy)]
struct Opts {
    secs: u64,
    backends: u64,
    interval: Duration,
    threads: usize,
    listeners: u64,
}

/// Time this process's threads spent on a CPU, in seconds, from `/proc/self/task/*/schedstat`
/// (nanoseconds, unlike the tick-sampled utime and stime); 0 when unreadable.
fn run_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ns as f64 / 1e9
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// utime of this process, in seconds.
fn user_seconds() -> f64 {
    cpu_fields("self").map_or(0.0, |(u, _)| u)
}

/// utime + stime of process `pid` (`self` for this one), in seconds; 0 when unreadable.
fn cpu_seconds_of(pid: &str) -> f64 {
    cpu_fields(pid).map_or(0.0, |(u, s)| u + s)
}

/// (utime, stime) of process `pid`, in seconds.
fn cpu_fields(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15, in USER_HZ (100) ticks.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime as f64 / 100.0, stime as f64 / 100.0))
}

/// Host-wide TCP counters: `Tcp` ActiveOpens, PassiveOpens, AttemptFails (`/proc/net/snmp`),
/// `TcpExt` ListenOverflows, ListenDrops (`/proc/net/netstat`); zeros when unreadable. Passive
/// opens show whether the listeners had to complete handshakes (the reset trick avoids it).
fn tcp_counters() -> [u64; 5] {
    let mut out = [0; 5];
    let wanted = [
        ("Tcp:", "ActiveOpens", 0),
        ("Tcp:", "PassiveOpens", 1),
        ("Tcp:", "AttemptFails", 2),
        ("TcpExt:", "ListenOverflows", 3),
        ("TcpExt:", "ListenDrops", 4),
    ];
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        // Each group is a header line of names followed by a line of values.
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let names: Vec<&str> = names.split_whitespace().collect();
            let values: Vec<&str> = values.split_whitespace().collect();
            for (group, field, slot) in wanted {
                if names.first() != Some(&group) {
                    continue;
                }
                if let Some(i) = names.iter().position(|n| *n == field) {
                    out[slot] = values.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
        }
    }
    out
}

fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if std::env::var("CHECKER_BENCH_ROLE").as_deref() == Ok("listener") {
        run_listeners();
        return;
    }
    let secs = env_u64("CHECKER_BENCH_SECS", 10);
    let backends = env_u64("CHECKER_BENCH_BACKENDS", 10_000);
    let interval = Duration::from_millis(env_u64("CHECKER_BENCH_INTERVAL_MS", 1000));
    let threads = env_u64("CHECKER_BENCH_THREADS", 2) as usize;
    let listeners = env_u64("CHECKER_BENCH_LISTENERS", 100).clamp(1, 250);
    let prober = std::env::var("CHECKER_BENCH_PROBER").unwrap_or_default();

    let netns = std::env::var("CHECKER_BENCH_NETNS").unwrap_or_default();
    let exe = std::env::current_exe().expect("current exe");
    let mut listener_cmd = if netns.is_empty() {
        Command::new(exe)
    } else {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &netns]).arg(exe);
        cmd
    };
    let mut child = listener_cmd
        .env("CHECKER_BENCH_ROLE", "listener")
        .env("CHECKER_BENCH_LISTENERS", listeners.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn listener process");
    let mut port_line = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut port_line)
        .expect("read port");
    let port: u16 = port_line.trim().parse().expect("listener port");
    let child_pid = child.id();

    // 0 threads: a current-thread runtime (everything on the bench's main thread).
    let rt = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("checker runtime");
    let opts = Opts {
        secs,
        backends,
        interval,
        threads,
        listeners,
    };
    rt.block_on(async move {
        if prober == "minimal" || prober == "rst" || prober == "rst-noqa" {
            let reset = prober != "minimal";
            let quickack_off = prober == "rst-noqa";
            println!(
                "prober: bench-local connect, then close (reset: {reset}, quick-ack off: {quickack_off})"
            );
            let p = ConnectProber {
                port,
                reset,
                quickack_off,
            };
            measure(p, port, &opts, child_pid).await;
        } else if prober == "noop" {
            println!("prober: noop (no I/O; scheduler cost only)");
            measure(NoopProber, port, &opts, child_pid).await;
        } else {
            let mode = match prober.as_str() {
                "connect" => TcpCheckMode::Connect,
                "half-open" => TcpCheckMode::HalfOpen,
                _ => TcpCheckMode::Auto,
            };
            let sockets = if netns.is_empty() {
                SocketFactory::host()
            } else {
                SocketFactory::enter(&netns).expect("CHECKER_BENCH_NETNS")
            };
            let p = DefaultProber::with_runner(ProbeRunner::with_sockets(mode, sockets));
            let used = p.runner().prepare().expect("tcp check mode");
            println!(
                "prober: maglev-health's DefaultProber, tcp check mode {mode} (in use: {used}), netns {}",
                p.netns().as_deref().unwrap_or("-")
            );
            measure(p, port, &opts, child_pid).await;
        }
    });
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}
