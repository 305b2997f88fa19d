//! Codec benchmarks: encode/decode of small lb messages, decode of the handshake reply with
//! 2,000 message-table entries, and generating every binding from the `.api.json` files.
//!
//! Targets: a small message encoded or decoded in <= 50 ns; the 2,000-entry handshake reply
//! decoded in <= 100 us. The generator bench reads the `.api.json` files where
//! `vpp_binapi_gen::apidir` finds them (`$VPP_API_DIR`, else `../shared/vpp-api` beside the
//! repository, else `/usr/share/vpp/api`), and is skipped when there are none.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use vpp_binapi::api::MODULES;
use vpp_binapi::api::ip_types::{Address, AddressFamily, AddressUnion, Ip6Address, Prefix};
use vpp_binapi::api::lb::{LbAddDelAsV2, LbAsV2Details};
use vpp_binapi::api::lb_types::LbVip;
use vpp_binapi::api::memclnt::{MessageTableEntry, SockclntCreateReply};
use vpp_binapi::codec::{decode_message, encode_message};

fn ip6(last: u8) -> Address {
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[15] = last;
    Address {
        af: AddressFamily::ADDRESS_IP6,
        un: AddressUnion::from_ip6(Ip6Address(a)),
    }
}

fn add_del_as() -> LbAddDelAsV2 {
    LbAddDelAsV2 {
        pfx: Prefix {
            address: ip6(1),
            len: 128,
        },
        protocol: 6,
        port: 443,
        as_address: ip6(42),
        weight: 37,
        is_del: false,
        is_flush: false,
    }
}

fn small_messages(c: &mut Criterion) {
    let msg = add_del_as();
    let mut buf = Vec::with_capacity(128);
    c.bench_function("encode lb_add_del_as_v2", |b| {
        b.iter(|| {
            buf.clear();
            encode_message(black_box(&msg), 600, 0x8000_0001, 7, &mut buf);
            black_box(buf.len())
        });
    });
    let wire = vpp_binapi::codec::encode_message_to_vec(&msg, 600, 0x8000_0001, 7);
    c.bench_function("decode lb_add_del_as_v2", |b| {
        b.iter(|| decode_message::<LbAddDelAsV2>(black_box(&wire)).map(|(_, m)| m.weight));
    });

    let details = LbAsV2Details {
        vip: LbVip {
            pfx: Prefix {
                address: ip6(1),
                len: 128,
            },
            protocol: 6.into(),
            port: 443,
        },
        app_srv: ip6(42),
        flags: 1,
        in_use_since: 123_456,
        weight: 100,
        num_buckets: 655,
    };
    let wire = vpp_binapi::codec::encode_message_to_vec(&details, 601, 0, 9);
    c.bench_function("decode lb_as_v2_details", |b| {
        b.iter(|| decode_message::<LbAsV2Details>(black_box(&wire)).map(|(_, m)| m.num_buckets));
    });
}

fn handshake_reply(c: &mut Criterion) {
    let reply = SockclntCreateReply {
        response: 0,
        index: 0x8000_0001,
        message_table: (0..2000u16)
            .map(|i| MessageTableEntry {
                index: i + 1,
                name: format!(
                    "some_plugin_message_number_{i}_{:08x}",
                    u32::from(i).wrapping_mul(2_654_435_761)
                ),
            })
            .collect(),
    };
    let wire = vpp_binapi::codec::encode_message_to_vec(&reply, 16, 0, 124);
    assert_eq!(wire.len(), 20 + 2000 * 66);
    c.bench_function("decode sockclnt_create_reply 2000 entries", |b| {
        b.iter(|| {
            decode_message::<SockclntCreateReply>(black_box(&wire))
                .map(|(_, m)| m.message_table.len())
        });
    });
}

fn api_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    vpp_binapi_gen::apidir::locate_from_env(&root, MODULES).ok()
}

fn generator(c: &mut Criterion) {
    let Some(dir) = api_dir() else {
        eprintln!("generate bindings: no api dir (set VPP_API_DIR), skipped");
        return;
    };
    let cfg = vpp_binapi_gen::Config::default();
    let mut g = c.benchmark_group("generator");
    g.sample_size(10);
    g.bench_function("load and generate all bindings", |b| {
        b.iter(|| {
            let set = vpp_binapi_gen::ApiSet::load(&dir, MODULES).expect("load api files");
            let files = vpp_binapi_gen::generate(&set, MODULES, &cfg).expect("generate");
            black_box(files.values().map(String::len).sum::<usize>())
        });
    });
    g.finish();
}

criterion_group!(benches, small_messages, handshake_reply, generator);
criterion_main!(benches);
