//! The VIP counters scrape (`maglev_vpp::counters::scrape`): 1,000 VIPs on 4 threads, their
//! four lb counters and their `/net/route/to` entries, read in one pass from a live mapping of
//! a simulator segment that also holds a small VPP's interface and error counters. Target:
//! 2 ms of CPU per scrape.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use maglev_core::plan::VipKey;
use maglev_vpp::adapter::ShownVip;
use maglev_vpp::counters::{self, CounterIndex};
use vpp_binapi::stats::StatsClient;
use vpp_sim::stats::{LbCounter, ROUTE_TO, SegmentConfig, StatsSegment};

const VIPS: u32 = 1000;

fn segment() -> StatsSegment {
    let seg = StatsSegment::with_standard_entries(SegmentConfig {
        size: 64 << 20,
        n_threads: 4,
    })
    .expect("segment");
    seg.update(|txn| -> Result<(), vpp_sim::stats::StatsSimError> {
        for name in ["/if/rx", "/if/tx"] {
            txn.add_combined_counter(name, 1024)?;
        }
        let errors = txn.add_simple_counter("/node/errors", 2500)?;
        for i in 0..2500u32 {
            txn.add_symlink(&format!("/err/node{}/error{}", i / 10, i % 10), errors, i)?;
        }
        Ok(())
    })
    .expect("entries");
    seg.lb_vip_created(VIPS).expect("lb counters");
    let route = seg.entry(ROUTE_TO).expect("route entry");
    seg.resize_counter(route, (VIPS + 64) as usize)
        .expect("routes");
    for v in 1..=VIPS {
        for thread in 0..4 {
            seg.lb_count(LbCounter::NextPacket, thread, v, u64::from(v))
                .expect("count");
            seg.add_combined(route, thread, (v + 16) as usize, 1, 100)
                .expect("route");
        }
    }
    seg
}

fn key(v: u32) -> VipKey {
    let addr = Ipv4Addr::from(0xc000_0000 | v);
    VipKey::new(IpNet::from(IpAddr::V4(addr)), 6, 80)
}

fn index() -> CounterIndex {
    let shown: Vec<ShownVip> = (1..=VIPS)
        .map(|v| ShownVip {
            index: v,
            key: key(v),
            encap: None,
            src_ip_sticky: false,
            removed: false,
            new_size: None,
            ases: Vec::new(),
        })
        .collect();
    let routes: BTreeMap<IpNet, u32> = (1..=VIPS).map(|v| (key(v).prefix, v + 16)).collect();
    CounterIndex::from_parts(&shown, &routes)
}

fn bench(c: &mut Criterion) {
    let seg = segment();
    let client = StatsClient::from_fd(seg.try_clone_fd().expect("dup")).expect("map");
    let filter = counters::filter();
    let index = index();
    let snap = counters::scrape(&client, &filter, &index).expect("scrape");
    assert_eq!(snap.vips.len(), VIPS as usize);
    assert_eq!(snap.vips[&key(7)].lb[0], 28);
    c.bench_function("counters_scrape_1000_vips_4_threads", |b| {
        b.iter(|| black_box(counters::scrape(&client, &filter, &index).expect("scrape")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
