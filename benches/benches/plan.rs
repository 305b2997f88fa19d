//! Reconcile plan and desired-state build at 10,000 VIPs x 100 ASes, and a sync with no drift
//! at 1,000 VIPs x 64 ASes. Measured as the benchmark thread's on-CPU time ([`CpuTime`]), so
//! other work on the machine does not count.

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use cpu_time::CpuTime;
use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use maglev_core::config::{
    Backend, Config, Encap, Frontend, HealthChecker, Pool, PoolMember, Protocol,
};
use maglev_core::desired::{desired_state, vip_key};
use maglev_core::index::ConfigIndex;
use maglev_core::plan::{As, FlushSet, Scope, Vip, VipKey, VppState, plan};
use maglev_core::weights::{
    BackendState, BackendStates, FrontendWeights, WeightOverrides, effective_weights,
};

const VIPS: u32 = 10_000;
const ASES: u32 = 100;

fn vip_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc000_0000 + i)
}

fn backend_addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

fn big_state(vips: u32, ases: u32) -> VppState {
    let mut s = VppState::new();
    for v in 0..vips {
        let key = VipKey::new(IpNet::V4(Ipv4Net::new(vip_addr(v), 32).unwrap()), 6, 80);
        let mut vip = Vip::new(maglev_core::plan::Encap::Gre4, false, 1024);
        for a in 0..ases {
            vip.ases
                .insert(backend_addr((v * 7 + a) % 10_000), As::new(100));
        }
        s.vips.insert(key, vip);
    }
    s
}

fn big_config() -> Config {
    let backends: BTreeMap<String, Backend> = (0..10_000)
        .map(|i: u32| {
            let name = format!("b{i}");
            let b = Backend {
                name: name.clone(),
                address: backend_addr(i),
                healthcheck: None,
                enabled: true,
            };
            (name, b)
        })
        .collect();
    let frontends = (0..VIPS)
        .map(|v| {
            let member = |a: u32| PoolMember {
                backend: format!("b{}", (v * 7 + a) % 10_000),
                weight: 100,
            };
            Frontend {
                name: format!("fe{v}"),
                description: String::new(),
                address: IpAddr::V4(vip_addr(v)),
                prefix: IpNet::V4(Ipv4Net::new(vip_addr(v), 32).unwrap()),
                protocol: Protocol::Tcp,
                port: 80,
                pools: vec![
                    Pool {
                        name: "primary".into(),
                        backends: (0..80).map(member).collect(),
                    },
                    Pool {
                        name: "fallback".into(),
                        backends: (80..ASES).map(member).collect(),
                    },
                ],
                src_ip_sticky: false,
                flush_on_down: true,
                new_flows_table_length: 1024,
                encap: Encap::Gre4,
            }
        })
        .collect();
    Config {
        healthchecker: HealthChecker::default(),
        vpp: None,
        healthchecks: BTreeMap::new(),
        backends,
        frontends,
    }
}

/// The desired-state build as it was before it was made proportional to the work (one owned
/// name per membership, two lookups per membership, one ordered-map insertion per AS, every
/// membership's decision kept), as the comparison point.
fn desired_state_before<'a>(
    config: &'a Config,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> (VppState, BTreeMap<String, FrontendWeights<'a>>) {
    struct Resolved<'a>(HashMap<&'a str, (BackendState, IpAddr)>);
    impl BackendStates for Resolved<'_> {
        fn get_state(&self, backend: &str) -> Option<BackendState> {
            self.0.get(backend).map(|&(state, _)| state)
        }
    }
    let resolved = Resolved(
        config
            .backends
            .iter()
            .map(|(name, b)| (name.as_str(), (states.state_of(name), b.address)))
            .collect(),
    );
    let mut desired = (VppState::new(), BTreeMap::new());
    for frontend in &config.frontends {
        let weights = effective_weights(frontend, &resolved, overrides);
        // The former decisions owned each member's name.
        let names: Vec<String> = weights
            .pools
            .iter()
            .flat_map(|p| p.members.iter())
            .map(|m| m.backend.to_owned())
            .collect();
        black_box(&names);
        let mut vip = Vip::new(
            frontend.encap.into(),
            frontend.src_ip_sticky,
            frontend.new_flows_table_length,
        );
        for member in weights.pools.iter().flat_map(|p| p.members.iter()) {
            if member.state == BackendState::Removed {
                continue;
            }
            let Some(&(_, address)) = resolved.0.get(member.backend) else {
                continue;
            };
            if !vip.ases.contains_key(&address) {
                vip.ases.insert(
                    address,
                    As {
                        weight: member.effective.weight,
                        flush: member.effective.flush,
                    },
                );
            }
        }
        desired.0.vips.entry(vip_key(frontend)).or_insert(vip);
        desired.1.insert(frontend.name.clone(), weights);
    }
    desired
}

fn bench_plan(c: &mut Criterion<CpuTime>) {
    let current = big_state(VIPS, ASES);
    let desired = current.clone();
    c.bench_function("plan_10k_vips_100_as_no_drift", |b| {
        b.iter(|| {
            let p = plan(
                black_box(&current),
                black_box(&desired),
                Scope::All,
                &FlushSet::new(),
            );
            assert!(p.is_empty());
        });
    });
    let mut changed = current.clone();
    let mut n = 0u32;
    for vip in changed.vips.values_mut() {
        for a in vip.ases.values_mut() {
            if n.is_multiple_of(100) {
                a.weight = 50;
            }
            n += 1;
        }
    }
    c.bench_function("plan_10k_vips_100_as_1pct_weights_changed", |b| {
        b.iter(|| {
            let p = plan(
                black_box(&current),
                black_box(&changed),
                Scope::All,
                &FlushSet::new(),
            );
            assert_eq!(p.len(), (VIPS * ASES / 100) as usize);
        });
    });

    let config = Arc::new(big_config());
    let index = ConfigIndex::new(Arc::clone(&config));
    let states: BTreeMap<String, BackendState> = (0..10_000)
        .map(|i: u32| {
            (
                format!("b{i}"),
                if i.is_multiple_of(10) {
                    BackendState::Down
                } else {
                    BackendState::Up
                },
            )
        })
        .collect();
    let overrides = WeightOverrides::new();
    let before = desired_state_before(&config, &states, &overrides);
    let now = desired_state(&index, &index.backend_states(&states), &overrides);
    assert_eq!(now.vpp, before.0);
    assert!(now.frontends.iter().all(
        |f| (f.state, f.active_pool) == (before.1[f.name].state, before.1[f.name].active_pool)
    ));
    drop((now, before));
    let mut group = c.benchmark_group("desired");
    group.sample_size(10);
    // What a sync does: each backend's state read once, then the build over the index.
    group.bench_function("desired_build_10k_frontends_100_backends", |b| {
        b.iter(|| {
            let states = index.backend_states(black_box(&states));
            let d = desired_state(black_box(&index), &states, &overrides);
            assert_eq!(d.vpp.vips.len(), VIPS as usize);
        });
    });
    // Once per config: resolving the names.
    group.bench_function("desired_index_10k_frontends_100_backends", |b| {
        b.iter(|| {
            let index = ConfigIndex::new(Arc::clone(black_box(&config)));
            assert_eq!(index.backends(), 10_000);
        });
    });
    group.bench_function("desired_build_10k_frontends_100_backends_before", |b| {
        b.iter(|| {
            let d = desired_state_before(black_box(&config), black_box(&states), &overrides);
            assert_eq!(d.0.vips.len(), VIPS as usize);
        });
    });
    group.finish();
}

/// The planning side of a full sync with no drift at 1,000 VIPs x 64 ASes: the plan, and the
/// state comparisons a caller may make.
fn bench_sync_1k(c: &mut Criterion<CpuTime>) {
    let current = big_state(1_000, 64);
    let desired = current.clone();
    c.bench_function("plan_1k_vips_64_as_no_drift", |b| {
        b.iter(|| {
            let p = plan(
                black_box(&current),
                black_box(&desired),
                Scope::All,
                &FlushSet::new(),
            );
            assert!(p.is_empty());
        });
    });
    c.bench_function("converged_1k_vips_64_as", |b| {
        b.iter(|| assert!(black_box(&current).converged(black_box(&desired))));
    });
    c.bench_function("vpp_state_eq_1k_vips_64_as", |b| {
        b.iter(|| assert!(black_box(&current) == black_box(&desired)));
    });
}

fn cpu_time() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime)
}

criterion_group! {
    name = benches;
    config = cpu_time();
    targets = bench_plan, bench_sync_1k
}
criterion_main!(benches);
