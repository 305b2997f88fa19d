//! Loading and validating a large `maglev.yaml`: 1,000 frontends, each with its own 64
//! backends (64,000 in all), a health check per frontend that each of its backends uses,
//! and realistic keys. Measured as on-CPU time ([`CpuTime`]).

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::fmt::Write as _;
use std::hint::black_box;

use cpu_time::CpuTime;
use criterion::{Criterion, criterion_group, criterion_main};
use maglev_core::config::{Config, LoadOptions};

const FRONTENDS: usize = 1_000;
const BACKENDS: usize = 64;

/// The config text.
fn big_yaml() -> String {
    let mut out = String::from(
        "maglev:\n  healthchecker:\n    transition-history: 10\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.250\n      ipv6-src-address: 2001:db8::250\n      sync-interval: 30s\n  healthchecks:\n",
    );
    for f in 0..FRONTENDS {
        let _ = write!(
            out,
            "    http-svc{f:04}:\n      type: http\n      port: 8080\n      interval: 2s\n      fast-interval: 500ms\n      down-interval: 5s\n      timeout: 1s\n      rise: 2\n      fall: 3\n      params:\n        path: /healthz\n        host: svc{f:04}.example.com\n        response-code: 200-399\n"
        );
    }
    out.push_str("  backends:\n");
    for f in 0..FRONTENDS {
        for b in 0..BACKENDS {
            let _ = write!(
                out,
                "    svc{f:04}-node{b:02}:\n      address: 10.{}.{}.{}\n      healthcheck: http-svc{f:04}\n",
                f / 250,
                f % 250,
                b + 1
            );
        }
    }
    out.push_str("  frontends:\n");
    for f in 0..FRONTENDS {
        let _ = write!(
            out,
            "    svc{f:04}:\n      description: service {f}\n      address: 198.18.{}.{}\n      protocol: tcp\n      port: 443\n      flush-on-down: true\n      pools:\n        - name: primary\n          backends:\n",
            f / 250,
            f % 250
        );
        for b in 0..BACKENDS {
            if b == BACKENDS / 2 {
                out.push_str("        - name: fallback\n          backends:\n");
            }
            let _ = writeln!(out, "            svc{f:04}-node{b:02}: {{ weight: 100 }}");
        }
    }
    out
}

fn bench_config(c: &mut Criterion<CpuTime>) {
    let text = big_yaml();
    let options = LoadOptions::default();
    let config = Config::from_yaml_str_with("big.yaml", &text, &options).unwrap();
    assert_eq!(config.frontends.len(), FRONTENDS);
    assert_eq!(config.backends.len(), FRONTENDS * BACKENDS);
    assert_eq!(config.healthchecks.len(), FRONTENDS);
    println!("config text: {} bytes", text.len());
    let mut group = c.benchmark_group("config");
    group.sample_size(10);
    group.bench_function("load_1k_frontends_64k_backends", |b| {
        b.iter(|| {
            let config = Config::from_yaml_str_with("big.yaml", black_box(&text), &options);
            assert!(config.is_ok());
        });
    });
    group.finish();
}

fn cpu_time() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime)
}

criterion_group! {
    name = benches;
    config = cpu_time();
    targets = bench_config
}
criterion_main!(benches);
