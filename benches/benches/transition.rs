//! A backend transition to its `lb_as_set_weight` on the wire, through `LbSyncer`, against
//! the simulator: from `LbSyncer::transition` to the simulator applying the weight change
//! (its lb-change hook). Each sample is one transition (a backend flips between up and down,
//! so every sync sends one `lb_as_set_weight`), the next starts once the sync is done.
//!
//! A custom timing loop, not criterion: the target is a tail latency (p99 ≤ 1 ms), which
//! criterion does not report. `cargo bench -p benches --bench transition`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maglev_core::config::Config;
use maglev_core::weights::BackendState;
use maglev_vpp::syncer::{LbSyncer, SyncEvent, SyncerOptions};
use tokio::sync::broadcast;
use vpp_sim::{SimConfig, Simulator};

const WARMUP: usize = 200;
const SAMPLES: usize = 5_000;

const CONFIG: &str = "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: 1h
      startup-min-delay: 0s
      startup-max-delay: 0s
  backends:
    a: { address: 10.0.0.1 }
    b: { address: 10.0.0.2 }
    c: { address: 10.0.0.3 }
    d: { address: 10.0.0.4 }
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends: { a: {}, b: {}, c: {}, d: {} }
";

async fn sync_done(events: &mut broadcast::Receiver<SyncEvent>) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(SyncEvent::SyncDone(_))) => return,
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => panic!("no sync done"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test --benches` run passes nothing and wants
    // only a smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let samples = if full { SAMPLES } else { 20 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let samples = runtime.block_on(run(if full { WARMUP } else { 0 }, samples));
    let mut sorted = samples;
    sorted.sort();
    println!(
        "transition -> lb_as_set_weight through LbSyncer ({} samples): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        sorted.len(),
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.90),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1],
    );
}

async fn run(warmup: usize, samples: usize) -> Vec<Duration> {
    let dir = tempfile_dir();
    let api = dir.join("api.sock");
    let sim = Simulator::start(SimConfig::new(&api))
        .await
        .expect("the simulator starts");
    // The simulator reports every applied lb change: the time the weight reached VPP.
    let applied: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let hook = Arc::clone(&applied);
    let notify = Arc::new(tokio::sync::Notify::new());
    let wake = Arc::clone(&notify);
    sim.on_lb_change(move |_| {
        *hook.lock().unwrap() = Some(Instant::now());
        wake.notify_one();
    });

    let config = Arc::new(Config::from_yaml_str("bench.yaml", CONFIG).expect("valid config"));
    let states: Arc<Mutex<HashMap<String, BackendState>>> = Arc::new(Mutex::new(
        config
            .backends
            .keys()
            .map(|name| (name.clone(), BackendState::Up))
            .collect(),
    ));
    let source = Arc::clone(&states);
    let syncer = LbSyncer::start(SyncerOptions::new(&api), config, move || {
        source.lock().unwrap().clone()
    });
    let mut events = syncer.subscribe();
    sync_done(&mut events).await;

    let mut out = Vec::with_capacity(samples);
    let mut up = true;
    for i in 0..warmup + samples {
        let (from, to) = if up {
            (BackendState::Up, BackendState::Down)
        } else {
            (BackendState::Down, BackendState::Up)
        };
        up = !up;
        *applied.lock().unwrap() = None;
        states.lock().unwrap().insert("a".to_owned(), to);
        let start = Instant::now();
        syncer.transition("a", from, to);
        let at = loop {
            if let Some(at) = *applied.lock().unwrap() {
                break at;
            }
            notify.notified().await;
        };
        sync_done(&mut events).await;
        if i >= warmup {
            out.push(at.saturating_duration_since(start));
        }
    }
    syncer.shutdown().await;
    sim.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// A private directory for the simulator's socket.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("maglev-bench-transition-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
