//! Stats segment reads: a VPP-sized directory written by the simulator, read through a live
//! mapping (dump all, dump by regex, one lookup) and parsed from an image copy.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vpp_binapi::stats::{StatsClient, StatsFilter, parse_image};
use vpp_sim::stats::{LbCounter, SegmentConfig, StatsSegment};

/// About 2,500 entries, like a small VPP: interface counters for 1,024 interfaces on 2 threads,
/// `/node/errors` with 2,500 `/err/...` symlinks into it, names, and the lb counters for 256 VIPs.
fn segment() -> StatsSegment {
    let seg = StatsSegment::with_standard_entries(SegmentConfig {
        size: 64 << 20,
        n_threads: 2,
    })
    .expect("segment");
    seg.update(|txn| -> Result<(), vpp_sim::stats::StatsSimError> {
        for name in ["/if/rx", "/if/tx", "/if/rx-unicast", "/if/tx-unicast"] {
            txn.add_combined_counter(name, 1024)?;
        }
        for name in ["/if/drops", "/if/punt", "/if/ip4", "/if/ip6"] {
            txn.add_simple_counter(name, 1024)?;
        }
        let names: Vec<String> = (0..1024).map(|i| format!("eth{i}")).collect();
        let names: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
        txn.add_name_vector("/if/names", &names)?;
        let errors = txn.add_simple_counter("/node/errors", 2500)?;
        for i in 0..2500u32 {
            txn.add_symlink(&format!("/err/node{}/error{}", i / 10, i % 10), errors, i)?;
        }
        Ok(())
    })
    .expect("entries");
    seg.lb_vip_created(255).expect("lb counters");
    seg.lb_count(LbCounter::FirstPacket, 1, 7, 3)
        .expect("count");
    seg
}

fn bench(c: &mut Criterion) {
    let seg = segment();
    let client = StatsClient::from_fd(seg.try_clone_fd().expect("dup")).expect("map");
    let all = StatsFilter::all();
    let route = StatsFilter::new(["^/net/route/to$"]).expect("regex");
    let image = client.image().expect("image");
    let n = client.dump_filter(&all).expect("dump").len();
    assert!(n > 2500, "{n} entries");

    c.bench_function("stats_dump_all_2500_entries", |b| {
        b.iter(|| black_box(client.dump_filter(&all).expect("dump")))
    });
    c.bench_function("stats_dump_regex_route_to", |b| {
        b.iter(|| black_box(client.dump_filter(&route).expect("dump")))
    });
    c.bench_function("stats_get_lb_counter", |b| {
        b.iter(|| black_box(client.get("first session packet").expect("get")))
    });
    c.bench_function("stats_parse_image_all", |b| {
        b.iter(|| black_box(parse_image(&image).expect("parse")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
