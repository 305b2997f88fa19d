//! One `/metrics` render (`maglevd::metrics::Metrics::render`) of 10,000 backends in 1,000
//! frontends (1,000 VIPs of 10 backends each): every backend up with a probe count, a probe
//! duration histogram and a transition, every frontend with its weights and bucket shares.
//! Target: 20 ms. `warm` is every scrape after the first (the bucket shares cached);
//! `first` includes building the 1,000 Maglev tables of 1,024 slots. No VPP session is
//! rendered (no syncer): the VIP counter families are not in these figures. Measured in CPU
//! time of the benchmark thread (`common/cpu_time.rs`): the machines are shared and noisy.

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_time::CpuTime;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use maglev_core::config::Config;
use maglev_core::weights::BackendState;
use maglev_health::checker::BackendStatus;
use maglev_health::machine::Transition;
use maglev_health::result::{ProbeResult, ResultCode};
use maglev_vpp::metrics::ApiCounters;
use maglevd::metrics::{Metrics, ProbeRecorder, TransitionCounts};

const FRONTENDS: u32 = 1000;
const PER_FRONTEND: u32 = 10;

fn config() -> Config {
    let mut yaml = String::from("maglev:\n  backends:\n");
    for f in 0..FRONTENDS {
        for b in 0..PER_FRONTEND {
            writeln!(
                yaml,
                "    f{f}b{b}: {{ address: 10.{}.{}.{} }}",
                f / 256,
                f % 256,
                b + 1
            )
            .unwrap();
        }
    }
    yaml.push_str("  frontends:\n");
    for f in 0..FRONTENDS {
        write!(
            yaml,
            "    f{f}:\n      address: 198.18.{}.{}\n      protocol: tcp\n      port: 80\n      pools:\n        - name: p\n          backends: {{ ",
            f / 256,
            f % 256
        )
        .unwrap();
        for b in 0..PER_FRONTEND {
            write!(yaml, "f{f}b{b}: {{ weight: {} }}, ", 10 * (b + 1)).unwrap();
        }
        yaml.push_str("}\n");
    }
    Config::from_yaml_str("bench.yaml", &yaml).expect("valid config")
}

/// A new [`Metrics`] over the same data (its bucket-share cache empty).
type Fresh = Box<dyn Fn() -> Metrics>;

fn metrics() -> Fresh {
    let config = Arc::new(config());
    let backends: Vec<BackendStatus> = config
        .backends
        .iter()
        .map(|(name, b)| BackendStatus {
            name: Arc::from(name.as_str()),
            address: b.address,
            state: BackendState::Up,
            counter: 3,
            enabled: true,
        })
        .collect();
    let probes = ProbeRecorder::default();
    let transitions = TransitionCounts::default();
    let now = Instant::now();
    for b in &backends {
        let ok = ProbeResult::new(ResultCode::L4Ok, "", Duration::from_micros(300));
        probes.record(&b.name, "tcp", &ok);
        transitions.record(&Transition {
            backend: Arc::clone(&b.name),
            from: BackendState::Unknown,
            to: BackendState::Up,
            at: now,
            code: ResultCode::L4Ok,
            detail: String::new(),
        });
    }
    let (_tx, config_rx) = tokio::sync::watch::channel(config);
    let backends: Arc<dyn Fn() -> Vec<BackendStatus> + Send + Sync> =
        Arc::new(move || backends.clone());
    let api = ApiCounters::new();
    Box::new(move || {
        Metrics::from_parts(
            Arc::clone(&backends),
            config_rx.clone(),
            None,
            api.clone(),
            probes.clone(),
            transitions.clone(),
        )
    })
}

fn bench(c: &mut Criterion<CpuTime>) {
    let fresh = metrics();
    let metrics = fresh();
    let text = metrics.render().expect("renders");
    eprintln!(
        "metrics_render: {} bytes, {} lines",
        text.len(),
        text.lines().count()
    );
    let mut group = c.benchmark_group("metrics_render");
    group.sample_size(20);
    group.bench_function("warm", |b| b.iter(|| black_box(metrics.render())));
    group.bench_function("first", |b| {
        b.iter_batched(&fresh, |m| black_box(m.render()), BatchSize::LargeInput);
    });
    group.finish();
}

fn cpu_time() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime)
}

criterion_group! {
    name = benches;
    config = cpu_time();
    targets = bench
}
criterion_main!(benches);
