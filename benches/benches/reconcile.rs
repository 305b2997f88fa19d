//! The reconcile state machine at 10,000 backends: a transition, the start of a big config,
//! and the index build of a reload.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use maglev_core::config::{
    Backend, Config, Encap, Frontend, HealthChecker, Pool, PoolMember, Protocol, Vpp, VppLb,
};
use maglev_core::reconcile::{Reconciler, SyncOutcome};
use maglev_core::weights::BackendState;

/// `frontends` frontends of `per` of the 10,000 backends each (frontend `f` has backends
/// `f * per` onwards, modulo 10,000), with a warmup of `min`/`max` seconds.
fn config(frontends: u32, per: u32, min: u64, max: u64) -> Arc<Config> {
    const BACKENDS: u32 = 10_000;
    let address = |n: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
    let backends: BTreeMap<String, Backend> = (0..BACKENDS)
        .map(|n| {
            let b = Backend {
                name: format!("b{n}"),
                address: address(n),
                healthcheck: None,
                enabled: true,
            };
            (b.name.clone(), b)
        })
        .collect();
    let frontends = (0..frontends)
        .map(|f| {
            let vip = Ipv4Addr::from(0xc000_0000 + f);
            Frontend {
                name: format!("fe{f}"),
                description: String::new(),
                address: IpAddr::V4(vip),
                prefix: IpNet::V4(Ipv4Net::new(vip, 32).unwrap()),
                protocol: Protocol::Tcp,
                port: 80,
                pools: vec![Pool {
                    name: "p".into(),
                    backends: (0..per)
                        .map(|b| PoolMember {
                            backend: format!("b{}", (f * per + b) % BACKENDS),
                            weight: 100,
                        })
                        .collect(),
                }],
                src_ip_sticky: false,
                flush_on_down: true,
                new_flows_table_length: 1024,
                encap: Encap::Gre4,
            }
        })
        .collect();
    Arc::new(Config {
        healthchecker: HealthChecker::default(),
        vpp: Some(Vpp {
            lb: VppLb {
                ipv4_src_address: Ipv4Addr::new(192, 0, 2, 250),
                ipv6_src_address: "2001:db8::250".parse().unwrap(),
                sticky_buckets_per_core: 65_536,
                flow_timeout: Duration::from_secs(40),
                sync_interval: Duration::from_secs(30),
                startup_min_delay: Duration::from_secs(min),
                startup_max_delay: Duration::from_secs(max),
            },
        }),
        healthchecks: BTreeMap::new(),
        backends,
        frontends,
    })
}

fn bench_reconcile(c: &mut Criterion) {
    let big = config(100, 100, 0, 0);
    let names: Vec<String> = big.backends.keys().cloned().collect();
    let up: BTreeMap<String, BackendState> = names
        .iter()
        .map(|n| (n.clone(), BackendState::Up))
        .collect();

    // One transition into a flushing state, the warmup over, a job in flight.
    let t0 = Instant::now();
    let mut r = Reconciler::new(Arc::clone(&big), t0);
    let job = r.poll_sync(t0, &up).unwrap();
    let mut i = 0usize;
    c.bench_function("reconcile_on_transition_10k_backends", |b| {
        b.iter(|| {
            let name = &names[i % names.len()];
            let (from, to) = if (i / names.len()).is_multiple_of(2) {
                (BackendState::Up, BackendState::Down)
            } else {
                (BackendState::Down, BackendState::Up)
            };
            r.on_transition(black_box(name), from, to, t0);
            i += 1;
        });
    });
    r.on_sync_done(job.id, SyncOutcome::Done, t0);

    // A start: 10,000 backends resolve during the hold phase, each followed by a poll, then
    // the one full sync at startup-min-delay.
    let held = config(100, 100, 5, 30);
    c.bench_function("reconcile_start_10k_backends", |b| {
        b.iter(|| {
            let t0 = Instant::now();
            let mut r = Reconciler::new(Arc::clone(&held), t0);
            r.on_connected(t0);
            for name in &names {
                r.on_transition(name, BackendState::Unknown, BackendState::Up, t0);
                assert!(r.poll_sync(t0, &up).is_none());
            }
            let at = t0 + Duration::from_secs(5);
            r.handle_timeout(at);
            let job = r.poll_sync(at, &up).unwrap();
            assert!(job.is_full());
            job
        });
    });

    // A reload to 10,000 frontends x 100 of the 10,000 backends (the per-config index).
    let huge = config(10_000, 100, 0, 0);
    c.bench_function("reconcile_reload_10k_frontends_x_100", |b| {
        b.iter_batched(
            || Reconciler::new(Arc::clone(&big), t0),
            |mut r| {
                r.on_config(Arc::clone(&huge), t0);
                r
            },
            BatchSize::LargeInput,
        );
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_reconcile
}
criterion_main!(benches);
