//! Maglev new-flow table build: the sizes VPP deployments use.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use maglev_core::maglev::Table;

fn ases(n: u32, weight: u8) -> Vec<(IpAddr, u8)> {
    (0..n)
        .map(|i| (IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), weight))
        .collect()
}

fn bench_build(c: &mut Criterion) {
    let big = ases(1000, 100);
    c.bench_function("maglev_build_65536_slots_1000_as_w100", |b| {
        b.iter(|| Table::build(black_box(65_536), black_box(&big)).unwrap());
    });
    let small = ases(64, 100);
    c.bench_function("maglev_build_1024_slots_64_as_w100", |b| {
        b.iter(|| Table::build(black_box(1024), black_box(&small)).unwrap());
    });
    let few = ases(8, 100);
    c.bench_function("maglev_build_65536_slots_8_as_w100", |b| {
        b.iter(|| Table::build(black_box(65_536), black_box(&few)).unwrap());
    });
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
