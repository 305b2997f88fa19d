//! Reconcile plan and desired-state build at 10,000 VIPs x 100 ASes.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use maglev_core::config::{
    Backend, Config, Encap, Frontend, HealthChecker, Pool, PoolMember, Protocol,
};
use maglev_core::desired::desired_state;
use maglev_core::plan::{As, FlushSet, Scope, Vip, VipKey, VppState, plan};
use maglev_core::weights::{BackendState, WeightOverrides};

const VIPS: u32 = 10_000;
const ASES: u32 = 100;

fn vip_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc000_0000 + i)
}

fn backend_addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

fn big_state() -> VppState {
    let mut s = VppState::new();
    for v in 0..VIPS {
        let key = VipKey::new(IpNet::V4(Ipv4Net::new(vip_addr(v), 32).unwrap()), 6, 80);
        let mut vip = Vip::new(maglev_core::plan::Encap::Gre4, false, 1024);
        for a in 0..ASES {
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

fn bench_plan(c: &mut Criterion) {
    let current = big_state();
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

    let config = big_config();
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
    let mut group = c.benchmark_group("desired");
    group.sample_size(10);
    group.bench_function("desired_build_10k_frontends_100_backends", |b| {
        b.iter(|| {
            let d = desired_state(black_box(&config), black_box(&states), &overrides);
            assert_eq!(d.vpp.vips.len(), VIPS as usize);
        });
    });
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
