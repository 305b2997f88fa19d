//! Property tests of the lb model: random operation sequences keep the dumps consistent.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use vpp_sim::lb::{AS_FLAG_USED, LbModel, VipKey, VipSpec, encap};

#[derive(Debug, Clone)]
enum Op {
    AddVip(u8, u8),
    DelVip(u8),
    AddAs(u8, u8, u8),
    DelAs(u8, u8),
    SetWeight(u8, u8, u8),
    Gc(bool),
    Tick(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8, 2..8u8).prop_map(|(v, l)| Op::AddVip(v, l)),
        (0..4u8).prop_map(Op::DelVip),
        (0..4u8, 0..6u8, any::<u8>()).prop_map(|(v, a, w)| Op::AddAs(v, a, w)),
        (0..4u8, 0..6u8).prop_map(|(v, a)| Op::DelAs(v, a)),
        (0..4u8, 0..6u8, any::<u8>()).prop_map(|(v, a, w)| Op::SetWeight(v, a, w)),
        any::<bool>().prop_map(Op::Gc),
        (0..90u8).prop_map(Op::Tick),
    ]
}

fn key(v: u8) -> VipKey {
    VipKey {
        prefix: IpAddr::V4(Ipv4Addr::new(10, 0, 0, v + 1)),
        plen: 32,
        protocol: 6,
        port: 80,
    }
}

fn as_addr(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, a + 1))
}

proptest! {
    #[test]
    fn dumps_stay_consistent(ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = LbModel::new();
        let mut now = 0u32;
        let mut lens: BTreeMap<u32, u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::AddVip(v, l) => {
                    let spec = VipSpec {
                        key: key(v),
                        encap: encap::GRE4,
                        dscp: 0,
                        srv_type: 0,
                        target_port: 0,
                        new_flows_table_length: 1 << l,
                        src_ip_sticky: false,
                    };
                    if let Ok(i) = m.add_vip(&spec, now) {
                        prop_assert!(i > 0);
                        lens.insert(i, 1 << l);
                    }
                }
                Op::DelVip(v) => { let _ = m.del_vip(&key(v), now); }
                Op::AddAs(v, a, w) => { let _ = m.add_as(&key(v), as_addr(a), w, now); }
                Op::DelAs(v, a) => { let _ = m.del_as(&key(v), as_addr(a), now); }
                Op::SetWeight(v, a, w) => { let _ = m.set_as_weight(&key(v), as_addr(a), w); }
                Op::Gc(force) => { m.collect_garbage(now, force); }
                Op::Tick(s) => now += u32::from(s),
            }
            // Every VIP slot: buckets of used ASes sum to the table length when one of them has
            // weight > 0, else to 0; unused ASes own nothing; no AS listed twice per slot.
            let rows = m.as_dump(None);
            for vi in m.vip_indices() {
                let mine: Vec<_> = rows.iter().filter(|r| r.vip.index == vi).collect();
                let total: u32 = mine.iter().map(|r| r.num_buckets).sum();
                let live = mine.iter().any(|r| r.flags & AS_FLAG_USED != 0 && r.weight > 0);
                let want = if live { lens[&vi] } else { 0 };
                prop_assert_eq!(total, want);
                prop_assert!(mine.iter().all(|r| r.flags & AS_FLAG_USED != 0 || r.num_buckets == 0));
                let mut addrs: Vec<_> = mine.iter().map(|r| r.address).collect();
                addrs.sort();
                let n = addrs.len();
                addrs.dedup();
                prop_assert_eq!(n, addrs.len());
            }
            // lb_vip_dump lists exactly the in-use VIPs, each key at most once.
            let vips = m.vip_dump();
            prop_assert!(vips.iter().all(|v| v.used && v.index > 0));
            let mut keys: Vec<_> = vips.iter().map(|v| v.prefix).collect();
            keys.sort();
            let n = keys.len();
            keys.dedup();
            prop_assert_eq!(n, keys.len());
        }
    }
}
