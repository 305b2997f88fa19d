//! Reconcile plan: worked cases, and properties checked against a model of VPP.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use maglev_core::plan::{
    As, AsMap, Encap, FlushSet, Op, Plan, Scope, Vip, VipKey, VppState, effective_table_len, plan,
};
use proptest::prelude::*;

fn key(s: &str, port: u16) -> VipKey {
    VipKey::new(s.parse::<IpNet>().unwrap(), 6, port)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip(encap: Encap, sticky: bool, len: u32, ases: &[(&str, u8)]) -> Vip {
    let mut v = Vip::new(encap, sticky, len);
    for &(a, w) in ases {
        v.ases.insert(ip(a), As::new(w));
    }
    v
}

fn state(vips: Vec<(VipKey, Vip)>) -> VppState {
    VppState {
        vips: vips.into_iter().collect(),
    }
}

fn lines(p: &Plan) -> Vec<String> {
    p.iter().map(ToString::to_string).collect()
}

#[test]
fn no_drift_gives_an_empty_plan() {
    let s = state(vec![
        (
            key("192.0.2.1/32", 80),
            vip(
                Encap::Gre4,
                false,
                1024,
                &[("10.0.0.1", 100), ("10.0.0.2", 0)],
            ),
        ),
        (
            key("2001:db8::1/128", 443),
            vip(Encap::Gre6, true, 0, &[("2001:db8::10", 5)]),
        ),
    ]);
    let mut desired = s.clone();
    // The current side reports 0 for an unknown length; the desired side says 1024.
    desired
        .vips
        .get_mut(&key("2001:db8::1/128", 443))
        .unwrap()
        .table_len = 1024;
    // A flush hint with an unchanged weight does nothing either.
    desired
        .vips
        .get_mut(&key("192.0.2.1/32", 80))
        .unwrap()
        .ases
        .get_mut(&ip("10.0.0.2"))
        .unwrap()
        .flush = true;
    assert!(plan(&s, &desired, Scope::All, &FlushSet::new()).is_empty());
    assert!(
        plan(
            &s,
            &s,
            Scope::Vip(key("192.0.2.1/32", 80)),
            &FlushSet::new()
        )
        .is_empty()
    );
}

#[test]
fn new_vip_then_ases_in_numeric_order_with_default_length() {
    let desired = state(vec![(
        key("192.0.2.1/32", 80),
        vip(
            Encap::Gre4,
            false,
            0,
            &[("10.0.0.10", 100), ("10.0.0.2", 50), ("9.0.0.1", 0)],
        ),
    )]);
    let p = plan(&VppState::new(), &desired, Scope::All, &FlushSet::new());
    assert_eq!(
        lines(&p),
        [
            "vip add 192.0.2.1/32 tcp:80 encap gre4 src-ip-sticky false table-length 1024",
            "as add 192.0.2.1/32 tcp:80 9.0.0.1 weight 0",
            "as add 192.0.2.1/32 tcp:80 10.0.0.2 weight 50",
            "as add 192.0.2.1/32 tcp:80 10.0.0.10 weight 100",
        ]
    );
    assert_eq!(p.stats().vip_add, 1);
    assert_eq!(p.stats().as_add, 3);
}

#[test]
fn stale_vips_go_only_in_a_full_sync() {
    let k = key("192.0.2.9/32", 80);
    let current = state(vec![(
        k,
        vip(
            Encap::Gre4,
            false,
            1024,
            &[("10.0.0.2", 1), ("10.0.0.1", 0)],
        ),
    )]);
    let p = plan(&current, &VppState::new(), Scope::All, &FlushSet::new());
    assert_eq!(
        lines(&p),
        [
            "as del 192.0.2.9/32 tcp:80 10.0.0.1 flush",
            "as del 192.0.2.9/32 tcp:80 10.0.0.2 flush",
            "vip del 192.0.2.9/32 tcp:80",
        ]
    );
    assert!(plan(&current, &VppState::new(), Scope::Vip(k), &FlushSet::new()).is_empty());
}

#[test]
fn adds_and_weights_before_deletes() {
    let k = key("192.0.2.1/32", 80);
    let current = state(vec![(
        k,
        vip(
            Encap::Gre4,
            false,
            1024,
            &[("10.0.0.1", 100), ("10.0.0.3", 100)],
        ),
    )]);
    let desired = state(vec![(
        k,
        vip(
            Encap::Gre4,
            false,
            1024,
            &[("10.0.0.2", 100), ("10.0.0.3", 60)],
        ),
    )]);
    let p = plan(&current, &desired, Scope::Vip(k), &FlushSet::new());
    assert_eq!(
        lines(&p),
        [
            "as add 192.0.2.1/32 tcp:80 10.0.0.2 weight 100",
            "as weight 192.0.2.1/32 tcp:80 10.0.0.3 weight 60",
            "as del 192.0.2.1/32 tcp:80 10.0.0.1 flush",
        ]
    );
}

#[test]
fn encap_sticky_or_length_change_recreates() {
    let k = key("192.0.2.1/32", 80);
    let base = vip(Encap::Gre4, false, 1024, &[("10.0.0.1", 100)]);
    let mut sticky = base.clone();
    sticky.src_ip_sticky = true;
    let mut gre6 = vip(Encap::Gre6, false, 1024, &[("2001:db8::1", 100)]);
    let mut longer = base.clone();
    longer.table_len = 4096;
    for (desired, add_line) in [
        (
            &sticky,
            "vip add 192.0.2.1/32 tcp:80 encap gre4 src-ip-sticky true table-length 1024",
        ),
        (
            &mut gre6,
            "vip add 192.0.2.1/32 tcp:80 encap gre6 src-ip-sticky false table-length 1024",
        ),
        (
            &longer,
            "vip add 192.0.2.1/32 tcp:80 encap gre4 src-ip-sticky false table-length 4096",
        ),
    ] {
        let p = plan(
            &state(vec![(k, base.clone())]),
            &state(vec![(k, desired.clone())]),
            Scope::Vip(k),
            &FlushSet::new(),
        );
        let l = lines(&p);
        assert_eq!(l[0], "as del 192.0.2.1/32 tcp:80 10.0.0.1 flush");
        assert_eq!(l[1], "vip del 192.0.2.1/32 tcp:80");
        assert_eq!(l[2], add_line);
        assert!(l[3].starts_with("as add 192.0.2.1/32 tcp:80 "));
        assert_eq!(l.len(), 4);
    }
    // An unknown current length (0) never recreates.
    let mut unknown = base;
    unknown.table_len = 0;
    assert!(
        plan(
            &state(vec![(k, unknown)]),
            &state(vec![(k, longer)]),
            Scope::All,
            &FlushSet::new()
        )
        .is_empty()
    );
}

#[test]
fn vip_maglev_table_uses_the_effective_length_and_weights() {
    let v = vip(
        Encap::Gre4,
        false,
        0,
        &[("10.0.0.1", 100), ("10.0.0.2", 50), ("10.0.0.3", 0)],
    );
    let t = v.maglev_table().unwrap();
    assert_eq!(t.len(), 1024);
    // The documented VPP vector for these weights at 1024 slots.
    assert_eq!(
        t.buckets_per_as().map(|(_, c)| c).collect::<Vec<_>>(),
        [674, 350, 0]
    );
    let mixed = vip(
        Encap::Gre4,
        false,
        16,
        &[("10.0.0.1", 1), ("2001:db8::1", 1)],
    );
    assert!(mixed.maglev_table().is_err());
}

#[test]
fn flush_rules() {
    let k = key("192.0.2.1/32", 80);
    let a = ip("10.0.0.1");
    let none = FlushSet::new();
    let mut now = FlushSet::new();
    now.insert(k, a);
    let with = |w: u8, flush: bool| {
        let mut v = vip(Encap::Gre4, false, 1024, &[]);
        v.ases.insert(a, As { weight: w, flush });
        state(vec![(k, v)])
    };
    // Already 0: a full sync leaves it alone, even for a backend in a flushing state.
    assert!(plan(&with(0, false), &with(0, true), Scope::All, &none).is_empty());
    // A transition asks for a one-time flush: sent even though VPP already has 0.
    assert_eq!(
        lines(&plan(&with(0, false), &with(0, true), Scope::Vip(k), &now)),
        ["as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 0 flush"]
    );
    // 100 -> 0 in a flushing state flushes; in a draining state it does not.
    assert_eq!(
        lines(&plan(&with(100, false), &with(0, true), Scope::All, &none)),
        ["as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 0 flush"]
    );
    assert_eq!(
        lines(&plan(&with(100, false), &with(0, false), Scope::All, &none)),
        ["as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 0"]
    );
    // A flush request for a backend that should carry traffic is ignored.
    assert_eq!(
        lines(&plan(&with(0, false), &with(50, false), Scope::All, &now)),
        ["as weight 192.0.2.1/32 tcp:80 10.0.0.1 weight 50"]
    );
    assert!(plan(&with(50, false), &with(50, false), Scope::All, &now).is_empty());
}

#[test]
fn display_of_every_op_and_key() {
    let any = VipKey::new("192.0.2.0/28".parse().unwrap(), 255, 0);
    let udp = VipKey::new("2001:db8::/64".parse().unwrap(), 17, 53);
    let odd = VipKey::new("192.0.2.1/32".parse().unwrap(), 132, 9);
    assert_eq!(any.to_string(), "192.0.2.0/28 any");
    assert_eq!(udp.to_string(), "2001:db8::/64 udp:53");
    assert_eq!(odd.to_string(), "192.0.2.1/32 proto-132:9");
    let ops = [
        Op::VipDel {
            key: any,
            encap: Encap::L3dsr,
            src_ip_sticky: true,
        },
        Op::AsDel {
            key: udp,
            address: ip("2001:db8::5"),
            flush: false,
        },
        Op::AsSetWeight {
            key: odd,
            address: ip("10.0.0.1"),
            weight: 7,
            flush: false,
        },
    ];
    let p = Plan { ops: ops.to_vec() };
    assert_eq!(
        p.to_string(),
        "vip del 192.0.2.0/28 any\nas del 2001:db8::/64 udp:53 2001:db8::5\nas weight 192.0.2.1/32 proto-132:9 10.0.0.1 weight 7\n"
    );
    assert_eq!(ops[0].event_name(), "vpp-lbsync-vip-del");
    assert_eq!(ops[2].key(), &odd);
    for v in 0..5 {
        assert_eq!(Encap::from_api_value(v).unwrap().api_value(), v);
    }
    assert_eq!(Encap::from_api_value(5), None);
    assert_eq!(effective_table_len(0), 1024);
    assert_eq!(effective_table_len(3000), 1024);
    assert_eq!(effective_table_len(65_536), 65_536);
}

// ---- a model of VPP that checks each operation is valid where it is sent ----

fn apply(s: &mut VppState, op: &Op) -> Result<(), String> {
    match *op {
        Op::VipAdd {
            key,
            encap,
            src_ip_sticky,
            table_len,
        } => {
            if !table_len.is_power_of_two() {
                return Err(format!("{op}: bad table length"));
            }
            if s.vips.contains_key(&key) {
                return Err(format!("{op}: vip exists"));
            }
            s.vips
                .insert(key, Vip::new(encap, src_ip_sticky, table_len));
        }
        Op::VipDel { key, .. } => match s.vips.get(&key) {
            None => return Err(format!("{op}: no such vip")),
            Some(v) if !v.ases.is_empty() => return Err(format!("{op}: vip still has ases")),
            Some(_) => {
                s.vips.remove(&key);
            }
        },
        Op::AsAdd {
            key,
            address,
            weight,
        } => {
            let v = s.vips.get_mut(&key).ok_or(format!("{op}: no such vip"))?;
            if v.ases.insert(address, As::new(weight)).is_some() {
                return Err(format!("{op}: as exists"));
            }
        }
        Op::AsDel {
            key,
            address,
            flush,
        } => {
            let v = s.vips.get_mut(&key).ok_or(format!("{op}: no such vip"))?;
            if !flush {
                return Err(format!("{op}: deletes must flush"));
            }
            v.ases.remove(&address).ok_or(format!("{op}: no such as"))?;
        }
        Op::AsSetWeight {
            key,
            address,
            weight,
            ..
        } => {
            let v = s.vips.get_mut(&key).ok_or(format!("{op}: no such vip"))?;
            v.ases
                .get_mut(&address)
                .ok_or(format!("{op}: no such as"))?
                .weight = weight;
        }
    }
    Ok(())
}

fn apply_all(mut s: VppState, p: &Plan) -> Result<VppState, String> {
    for op in p {
        apply(&mut s, op)?;
    }
    Ok(s)
}

fn arb_key() -> impl Strategy<Value = VipKey> {
    let v4 = (0u8..4).prop_map(|i| IpNet::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))));
    let v6 = (0u16..3)
        .prop_map(|i| IpNet::from(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))));
    (
        prop_oneof![v4, v6],
        prop_oneof![Just(6u8), Just(17)],
        prop_oneof![Just(80u16), Just(443)],
    )
        .prop_map(|(prefix, protocol, port)| VipKey::new(prefix, protocol, port))
}

fn arb_vip(current: bool) -> impl Strategy<Value = Vip> {
    let addr = prop_oneof![
        (0u8..10).prop_map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))),
        (0u16..4).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i))),
    ];
    let len = if current {
        prop_oneof![Just(0u32), Just(1024), Just(4096)].boxed()
    } else {
        prop_oneof![Just(0u32), Just(1024), Just(4096), Just(1000)].boxed()
    };
    (
        prop_oneof![Just(Encap::Gre4), Just(Encap::Gre6)],
        any::<bool>(),
        len,
        proptest::collection::btree_map(
            addr,
            (prop_oneof![Just(0u8), 1u8..=100], any::<bool>()),
            0..6,
        ),
    )
        .prop_map(move |(encap, sticky, len, ases)| {
            let mut v = Vip::new(encap, sticky, len);
            v.ases = ases
                .into_iter()
                .map(|(a, (weight, flush))| {
                    (
                        a,
                        As {
                            weight,
                            flush: flush && !current,
                        },
                    )
                })
                .collect();
            v
        })
}

fn arb_state(current: bool) -> impl Strategy<Value = VppState> {
    proptest::collection::btree_map(arb_key(), arb_vip(current), 0..6)
        .prop_map(|vips| VppState { vips })
}

fn arb_flush() -> impl Strategy<Value = FlushSet> {
    let addr = (0u8..10).prop_map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)));
    proptest::collection::vec((arb_key(), addr), 0..6).prop_map(|pairs| {
        let mut f = FlushSet::new();
        for (k, a) in pairs {
            f.insert(k, a);
        }
        f
    })
}

/// Checks the flush rules and numeric order of one plan against its inputs.
fn check_rules(
    cur: &VppState,
    des: &VppState,
    flush: &FlushSet,
    p: &Plan,
) -> Result<(), TestCaseError> {
    let mut last_addr: BTreeMap<VipKey, IpAddr> = BTreeMap::new();
    let mut deleting: BTreeMap<VipKey, bool> = BTreeMap::new();
    for op in p {
        match *op {
            Op::AsSetWeight {
                key,
                address,
                weight,
                flush: f,
            } => {
                let c = cur.vips[&key].ases[&address];
                let d = des.vips[&key].ases[&address];
                prop_assert_eq!(weight, d.weight);
                if f {
                    prop_assert_eq!(weight, 0, "only a drain to 0 flushes: {}", op);
                    prop_assert!(
                        flush.contains(&key, &address) || (c.weight > 0 && d.flush),
                        "{}",
                        op
                    );
                } else {
                    prop_assert!(c.weight != weight, "a weight-only no-op was sent: {}", op);
                }
                prop_assert!(
                    !deleting.get(&key).copied().unwrap_or(false),
                    "weight after delete: {}",
                    op
                );
                if let Some(prev) = last_addr.insert(key, address) {
                    prop_assert!(prev < address, "not numeric order: {}", op);
                }
            }
            Op::AsAdd { key, address, .. } => {
                if let Some(prev) = last_addr.insert(key, address) {
                    prop_assert!(prev < address, "not numeric order: {}", op);
                }
            }
            Op::AsDel { key, flush: f, .. } => {
                prop_assert!(f);
                deleting.insert(key, true);
            }
            Op::VipAdd { key, .. } | Op::VipDel { key, .. } => {
                last_addr.remove(&key);
                deleting.remove(&key);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn full_plan_is_valid_and_reaches_desired(cur in arb_state(true), des in arb_state(false), flush in arb_flush()) {
        let p = plan(&cur, &des, Scope::All, &flush);
        let after = apply_all(cur.clone(), &p).map_err(TestCaseError::fail)?;
        prop_assert!(after.converged(&des), "{p}");
        for (k, v) in &after.vips {
            prop_assert_eq!(v.table_len == 0, cur.vips.get(k).is_some_and(|c| c.table_len == 0) && !p.iter().any(|o| matches!(o, Op::VipAdd { key, .. } if key == k)));
        }
        prop_assert!(plan(&after, &des, Scope::All, &FlushSet::new()).is_empty());
        check_rules(&cur, &des, &flush, &p)?;
    }

    #[test]
    fn plan_of_a_state_against_itself_is_empty(s in arb_state(true)) {
        prop_assert!(plan(&s, &s, Scope::All, &FlushSet::new()).is_empty());
        for k in s.vips.keys() {
            prop_assert!(plan(&s, &s, Scope::Vip(*k), &FlushSet::new()).is_empty());
        }
    }

    #[test]
    fn vip_plan_touches_one_vip_and_never_removes_it(cur in arb_state(true), des in arb_state(false), k in arb_key(), flush in arb_flush()) {
        let p = plan(&cur, &des, Scope::Vip(k), &flush);
        let mut removed = false;
        for op in &p {
            prop_assert_eq!(op.key(), &k);
            match op {
                Op::VipDel { .. } => removed = true,
                Op::VipAdd { .. } => removed = false,
                _ => {}
            }
        }
        prop_assert!(!removed, "VIP left deleted: {}", p);
        let after = apply_all(cur.clone(), &p).map_err(TestCaseError::fail)?;
        for (other, v) in &cur.vips {
            if *other != k {
                prop_assert_eq!(after.vips.get(other), Some(v));
            }
        }
        match des.vips.get(&k) {
            Some(d) => {
                let one = |s: &VppState| VppState { vips: s.vips.get(&k).map(|v| (k, v.clone())).into_iter().collect() };
                prop_assert!(one(&after).converged(&one(&des)));
                prop_assert!(!after.vips[&k].ases.is_empty() || d.ases.is_empty());
            }
            None => prop_assert!(p.is_empty()),
        }
        check_rules(&cur, &des, &flush, &p)?;
    }

    #[test]
    fn transition_flush_is_sent_once_even_at_weight_zero(cur in arb_state(true), des in arb_state(false), flush in arb_flush()) {
        let p = plan(&cur, &des, Scope::All, &flush);
        for (k, a) in flush.iter() {
            let (Some(c), Some(d)) = (cur.vips.get(k), des.vips.get(k)) else { continue };
            let recreated = p.iter().any(|o| matches!(o, Op::VipDel { key, .. } if key == k));
            if recreated || !c.ases.contains_key(a) || d.ases.get(a).is_none_or(|x| x.weight != 0) {
                continue;
            }
            let n = p.iter().filter(|o| matches!(o, Op::AsSetWeight { key, address, weight: 0, flush: true } if key == k && address == a)).count();
            prop_assert_eq!(n, 1, "{} {} in {}", k, a, p);
        }
    }
}

/// One change to a VIP's ASes.
#[derive(Debug, Clone)]
enum MapOp {
    Insert(IpAddr, u8),
    Remove(IpAddr),
    SetWeight(IpAddr, u8),
    Extend(Vec<(IpAddr, u8)>),
}

fn arb_as_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..12).prop_map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))),
        (0u16..4).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i))),
    ]
}

fn arb_map_op() -> impl Strategy<Value = MapOp> {
    prop_oneof![
        (arb_as_address(), 0u8..=100).prop_map(|(a, w)| MapOp::Insert(a, w)),
        arb_as_address().prop_map(MapOp::Remove),
        (arb_as_address(), 0u8..=100).prop_map(|(a, w)| MapOp::SetWeight(a, w)),
        proptest::collection::vec((arb_as_address(), 0u8..=100), 0..4).prop_map(MapOp::Extend),
    ]
}

/// Every observation of `map` agrees with `model`.
fn same_as_model(map: &AsMap, model: &BTreeMap<IpAddr, As>) -> Result<(), TestCaseError> {
    prop_assert_eq!(map.len(), model.len());
    prop_assert_eq!(map.is_empty(), model.is_empty());
    prop_assert!(map.iter().eq(model.iter()));
    prop_assert!(map.iter().rev().eq(model.iter().rev()));
    prop_assert!(map.keys().eq(model.keys()));
    prop_assert!(map.values().eq(model.values()));
    prop_assert_eq!(format!("{map:?}"), format!("{model:?}"));
    for i in 0..12 {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        prop_assert_eq!(map.get(&a), model.get(&a));
        prop_assert_eq!(map.contains_key(&a), model.contains_key(&a));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn as_map_behaves_as_an_ordered_map(
        start in proptest::collection::vec((arb_as_address(), 0u8..=100), 0..12),
        ops in proptest::collection::vec(arb_map_op(), 0..24),
    ) {
        let entries = || start.iter().map(|&(a, w)| (a, As::new(w)));
        let mut map: AsMap = entries().collect();
        let mut model: BTreeMap<IpAddr, As> = entries().collect();
        same_as_model(&map, &model)?;
        // Sorted or not, repeated addresses or not: the same map as collecting.
        prop_assert_eq!(&AsMap::from_sorted_vec(entries().collect()), &map);
        let mut sorted: Vec<(IpAddr, As)> = model.iter().map(|(a, x)| (*a, *x)).collect();
        prop_assert_eq!(&AsMap::from_sorted_vec(sorted.clone()), &map);
        sorted.reverse();
        prop_assert_eq!(&AsMap::from_sorted_vec(sorted), &map);
        for op in ops {
            match op {
                MapOp::Insert(a, w) => {
                    prop_assert_eq!(map.insert(a, As::new(w)), model.insert(a, As::new(w)));
                }
                MapOp::Remove(a) => prop_assert_eq!(map.remove(&a), model.remove(&a)),
                MapOp::SetWeight(a, w) => {
                    let set = |x: &mut As| {
                        x.weight = w;
                        *x
                    };
                    prop_assert_eq!(map.get_mut(&a).map(set), model.get_mut(&a).map(set));
                }
                MapOp::Extend(more) => {
                    map.extend(more.iter().map(|&(a, w)| (a, As::new(w))));
                    model.extend(more.iter().map(|&(a, w)| (a, As::new(w))));
                }
            }
            same_as_model(&map, &model)?;
        }
        for (_, x) in map.iter_mut() {
            x.flush = true;
        }
        prop_assert!(map.values().all(|x| x.flush) && map.keys().eq(model.keys()));
    }
}
