//! The operator API over loopback: GetFrontend and ListBackends latency (criterion), and
//! WatchEvents fan-out (a measurement printed before them).
//!
//! The config: 1,000 backends in 50 frontends of 20 (two pools of 10), every backend checked
//! every second with rise 1 and fall 1.
//!
//! Fan-out: a prober that flips each backend's result on every probe makes the checker emit
//! 1,000 transitions per second. The same run is measured twice, side by side, each with a
//! fresh checker: without subscribers, then with `API_BENCH_SUBSCRIBERS` (default 100)
//! WatchEvents streams reading backend events over loopback. It prints the checker's cadence
//! (probe start lag: actual minus planned start, p50/p99) of each, the transitions emitted,
//! and per subscriber the backend events received and the events reported missed.
//!
//! Environment: `API_BENCH_SECS` (measurement window per run, default 10),
//! `API_BENCH_SUBSCRIBERS` (default 100).
//!
//! Run: `cargo bench -p benches --bench api`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use maglev_api::v1::maglev_client::MaglevClient;
use maglev_api::v1::maglev_server::MaglevServer;
use maglev_api::v1::{EventKind, GetFrontendRequest, ListBackendsRequest, WatchRequest, event};
use maglev_core::config::Config;
use maglev_health::checker::{Checker, CheckerConfig, Prober};
use maglev_health::probe::ProbeSpec;
use maglev_health::result::{ProbeResult, ResultCode};
use maglevd::grpc::{BuildInfo, MaglevService};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;

const FRONTENDS: usize = 50;
const PER_FRONTEND: usize = 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 1,000 backends on 127.1.x.y, 50 frontends of two pools of 10.
fn config_yaml() -> String {
    let mut y = String::from(
        "maglev:\n  healthchecks:\n    flip:\n      type: tcp\n      port: 9\n      interval: 1s\n      fast-interval: 1s\n      down-interval: 1s\n      timeout: 500ms\n      rise: 1\n      fall: 1\n  backends:\n",
    );
    for b in 0..FRONTENDS * PER_FRONTEND {
        let _ = writeln!(
            y,
            "    b{b}: {{ address: 127.1.{}.{}, healthcheck: flip }}",
            b / 250,
            b % 250 + 1
        );
    }
    y.push_str("  frontends:\n");
    for f in 0..FRONTENDS {
        let _ = write!(
            y,
            "    f{f}:\n      address: 192.0.2.{}\n      protocol: tcp\n      port: 80\n      pools:\n",
            f + 1
        );
        for (pool, range) in [
            ("main", 0..PER_FRONTEND / 2),
            ("spare", PER_FRONTEND / 2..PER_FRONTEND),
        ] {
            let _ = writeln!(y, "        - name: {pool}\n          backends:");
            for i in range {
                let _ = writeln!(y, "            b{}: {{}}", f * PER_FRONTEND + i);
            }
        }
    }
    y
}

/// Flips each backend's verdict on every probe (rise 1, fall 1: a transition per probe), or
/// always passes when `steady`.
#[derive(Default)]
struct FlipProber {
    last: Mutex<HashMap<IpAddr, bool>>,
    steady: bool,
}

impl Prober for FlipProber {
    async fn probe(&self, _spec: &ProbeSpec, target: IpAddr) -> ProbeResult {
        let ok = self.steady || {
            let mut last = self.last.lock().unwrap();
            let ok = !last.get(&target).copied().unwrap_or(false);
            last.insert(target, ok);
            ok
        };
        if ok {
            ProbeResult::new(ResultCode::L4Ok, "flip", Duration::ZERO)
        } else {
            ProbeResult::new(ResultCode::L4Con, "flop", Duration::ZERO)
        }
    }
}

struct Served {
    checker: Checker<FlipProber>,
    channel: Channel,
}

/// The checker over the config with `prober`, and the service on loopback.
async fn serve(prober: FlipProber) -> Served {
    let loaded = maglevd::config_file::load_str("bench.yaml", &config_yaml()).expect("valid");
    let checker = Checker::with_prober(CheckerConfig::default(), prober);
    checker.apply_config(loaded.specs).expect("applies");
    let config: Arc<Config> = Arc::new(loaded.config);
    let (tx, rx) = watch::channel(config);
    // The sender lives as long as the process: the config never changes here.
    std::mem::forget(tx);
    let service = MaglevService::new(checker.clone(), rx, BuildInfo::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MaglevServer::new(service))
            .serve_with_incoming(tokio_stream::StreamExt::map(
                TcpListenerStream::new(listener),
                |accepted| accepted.and_then(|s| s.set_nodelay(true).map(|()| s)),
            )),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Served { checker, channel }
}

/// What one fan-out run saw.
struct RunFigures {
    lag_p50: Duration,
    lag_p99: Duration,
    transitions: u64,
    received: Vec<u64>,
    missed: Vec<u64>,
}

/// One run: `subscribers` streams for `secs` seconds of 1,000 transitions per second.
fn fan_out_run(subscribers: usize, secs: u64) -> RunFigures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let served = serve(FlipProber::default()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let counting = Arc::new(AtomicBool::new(false));
        // Transitions emitted during the window, counted in-process.
        let transitions = Arc::new(AtomicU64::new(0));
        {
            let mut rx = served.checker.subscribe();
            let (transitions, counting) = (Arc::clone(&transitions), Arc::clone(&counting));
            tokio::spawn(async move {
                while let Ok(_t) = rx.recv().await {
                    if counting.load(Ordering::Relaxed) {
                        transitions.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let mut readers = Vec::new();
        for _ in 0..subscribers {
            let mut client = MaglevClient::new(served.channel.clone());
            let mut stream = client
                .watch_events(WatchRequest {
                    backends: vec![],
                    frontends: vec![],
                    kinds: vec![EventKind::Backend.into()],
                    log_level: 0,
                })
                .await
                .unwrap()
                .into_inner();
            let (stop, counting) = (Arc::clone(&stop), Arc::clone(&counting));
            readers.push(tokio::spawn(async move {
                let (mut received, mut missed) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Ok(Some(e))) =
                        tokio::time::timeout(Duration::from_millis(200), stream.message()).await
                    else {
                        continue;
                    };
                    if !counting.load(Ordering::Relaxed) {
                        continue;
                    }
                    match e.event {
                        Some(event::Event::Backend(b)) if !b.replay => received += 1,
                        Some(event::Event::Missed(m)) => missed += m.count,
                        _ => {}
                    }
                }
                (received, missed)
            }));
        }
        // Warm up past the first probes, then count for the window.
        tokio::time::sleep(Duration::from_secs(3)).await;
        counting.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        counting.store(false, Ordering::Relaxed);
        // Let the subscribers read what is in flight.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let stats = served.checker.stats();
        let mut received = Vec::new();
        let mut missed = Vec::new();
        for r in readers {
            let (got, lost) = r.await.unwrap();
            received.push(got);
            missed.push(lost);
        }
        served.checker.shutdown().await;
        RunFigures {
            lag_p50: stats.lag_p50,
            lag_p99: stats.lag_p99,
            transitions: transitions.load(Ordering::Relaxed),
            received,
            missed,
        }
    })
}

fn print_run(label: &str, f: &RunFigures) {
    let min = f.received.iter().min().copied().unwrap_or(0);
    let max = f.received.iter().max().copied().unwrap_or(0);
    let missed: u64 = f.missed.iter().sum();
    let complete = f.received.iter().filter(|r| **r == f.transitions).count();
    println!(
        "api fan-out [{label}]: cadence lag p50 {:?} p99 {:?}; {} transitions; {} subscribers: received min {min} max {max}, {complete} got every transition, {missed} events reported missed",
        f.lag_p50,
        f.lag_p99,
        f.transitions,
        f.received.len()
    );
}

fn fan_out(_: &mut Criterion) {
    let secs = env_u64("API_BENCH_SECS", 10);
    let subscribers = usize::try_from(env_u64("API_BENCH_SUBSCRIBERS", 100)).unwrap_or(100);
    let without = fan_out_run(0, secs);
    print_run("no subscribers", &without);
    let with = fan_out_run(subscribers, secs);
    print_run(&format!("{subscribers} subscribers"), &with);
}

fn latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let served = rt.block_on(async {
        let served = serve(FlipProber {
            steady: true,
            ..FlipProber::default()
        })
        .await;
        // Every backend up (one probe each at most a second apart).
        while served
            .checker
            .snapshot()
            .iter()
            .any(|b| b.state != maglev_core::weights::BackendState::Up)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        served
    });
    let client = MaglevClient::new(served.channel);
    let mut group = c.benchmark_group("api");
    group.bench_function("get_frontend (20 backends, 2 pools)", |b| {
        b.iter(|| {
            let mut client = client.clone();
            rt.block_on(client.get_frontend(GetFrontendRequest { name: "f7".into() }))
                .unwrap()
        });
    });
    group.bench_function("list_backends (1,000 backends)", |b| {
        b.iter(|| {
            let mut client = client.clone();
            rt.block_on(client.list_backends(ListBackendsRequest {}))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, fan_out, latency);
criterion_main!(benches);
