//! Maglev table: the documented VPP vectors, a naive reference transcription, and properties.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::maglev::{
    Algorithm, DEFAULT_TABLE_LEN, MAX_TABLE_LEN, MaglevError, Table, disruption,
};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Maps each slot to 1/2/3 for 10.0.0.1/2/3 (0 for no owner), as the doc writes tables.
fn numbered(t: &Table) -> Vec<u8> {
    t.owners()
        .map(|o| match o {
            None => 0,
            Some(IpAddr::V4(a)) => a.octets()[3],
            Some(IpAddr::V6(_)) => 255,
        })
        .collect()
}

fn three() -> [IpAddr; 3] {
    [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]
}

#[test]
fn n16_unweighted_matches_vpp_vector() {
    let ases: Vec<_> = three().iter().map(|&a| (a, 100)).collect();
    let t = Table::build_with(Algorithm::Unweighted, 16, &ases).unwrap();
    assert_eq!(
        numbered(&t),
        [2, 1, 1, 1, 1, 3, 1, 1, 3, 3, 2, 3, 3, 2, 2, 2]
    );
}

#[test]
fn n16_all_weights_one_reproduces_the_unweighted_table() {
    let ases: Vec<_> = three().iter().map(|&a| (a, 1)).collect();
    let t = Table::build(16, &ases).unwrap();
    assert_eq!(
        numbered(&t),
        [2, 1, 1, 1, 1, 3, 1, 1, 3, 3, 2, 3, 3, 2, 2, 2]
    );
}

#[test]
fn n16_all_weights_100_matches_vpp_vector() {
    let ases: Vec<_> = three().iter().map(|&a| (a, 100)).collect();
    let t = Table::build(16, &ases).unwrap();
    assert_eq!(
        numbered(&t),
        [2, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 1, 1, 3, 3]
    );
}

#[test]
fn n1024_unweighted_counts_match_vpp() {
    let ases: Vec<_> = three().iter().map(|&a| (a, 100)).collect();
    let t = Table::build_with(Algorithm::Unweighted, 1024, &ases).unwrap();
    let counts: Vec<u32> = t.buckets_per_as().map(|(_, c)| c).collect();
    assert_eq!(counts, [342, 341, 341]);
}

#[test]
fn n1024_weights_100_50_0_counts_match_vpp() {
    let [a, b, c] = three();
    let t = Table::build(1024, &[(c, 0), (a, 100), (b, 50)]).unwrap();
    assert_eq!(t.buckets_of(a), 674);
    assert_eq!(t.buckets_of(b), 350);
    assert_eq!(t.buckets_of(c), 0);
    assert_eq!(
        t.ases().len(),
        3,
        "a weight-0 AS stays listed with 0 buckets"
    );
}

#[test]
fn no_positive_weight_leaves_every_slot_unowned() {
    let [a, b, _] = three();
    for ases in [vec![], vec![(a, 0), (b, 0)]] {
        let t = Table::build(DEFAULT_TABLE_LEN, &ases).unwrap();
        assert_eq!(t.len(), 1024);
        assert!(t.owners().all(|o| o.is_none()));
        assert!(t.buckets_per_as().all(|(_, c)| c == 0));
    }
}

#[test]
fn bad_inputs_are_rejected_with_a_reason() {
    let [a, b, _] = three();
    for len in [0, 3, 1000, 1025] {
        assert_eq!(
            Table::build(len, &[(a, 1)]),
            Err(MaglevError::NotPowerOfTwo(len))
        );
    }
    assert!(matches!(
        Table::build(MAX_TABLE_LEN * 2, &[(a, 1)]),
        Err(MaglevError::TooLong { .. })
    ));
    assert_eq!(
        Table::build(16, &[(a, 1), (b, 1), (a, 5)]),
        Err(MaglevError::DuplicateAs(a))
    );
    assert!(matches!(
        Table::build(16, &[(a, 1), (ip("2001:db8::1"), 1)]),
        Err(MaglevError::MixedFamilies(..))
    ));
    let t16 = Table::build(16, &[(a, 1)]).unwrap();
    let t32 = Table::build(32, &[(a, 1)]).unwrap();
    assert_eq!(
        t16.changed_buckets(&t32),
        Err(MaglevError::LengthMismatch(16, 32))
    );
    assert!(!t16.is_empty());
}

#[test]
fn owner_out_of_range_is_none() {
    let t = Table::build(16, &[(ip("10.0.0.1"), 1)]).unwrap();
    assert_eq!(t.owner(15), Some(ip("10.0.0.1")));
    assert_eq!(t.owner(16), None);
}

#[test]
fn disruption_counts_moved_buckets() {
    let [a, b, c] = three();
    let before = [(a, 100), (b, 100), (c, 100)];
    // Identical sets move nothing.
    let same = disruption(1024, &before, &before).unwrap();
    assert_eq!(same.changed, 0);
    assert_eq!(same.fraction(), 0.0);
    // Draining c moves exactly c's buckets plus Maglev's small reshuffle among the rest.
    let drained = disruption(1024, &before, &[(a, 100), (b, 100), (c, 0)]).unwrap();
    let c_share = Table::build(1024, &before).unwrap().buckets_of(c);
    assert!(drained.changed >= c_share);
    assert!(drained.changed < c_share + 1024 / 10, "{drained:?}");
    // Everything to nothing moves the whole table.
    let all = disruption(16, &before, &[]).unwrap();
    assert_eq!(all.changed, 16);
    assert_eq!(all.fraction(), 1.0);
}

/// The lb.c routine transcribed as literally as possible: explicit entry list, `sort` by
/// (replica, 16 address bytes), a plain `u32` table with 0 meaning free and AS indices from 1.
/// It shares nothing with the library except the hash (checked by the library's own vectors).
fn reference_counts(len: u32, ases: &[(IpAddr, u8)]) -> BTreeMap<IpAddr, u32> {
    fn ip46(a: IpAddr) -> [u8; 16] {
        match a {
            IpAddr::V4(v) => v.to_ipv6_compatible().octets(),
            IpAddr::V6(v) => v.octets(),
        }
    }
    fn xxh64_u64(k: u64) -> u64 {
        // Written from the XXH64 spec for an 8-byte input.
        const P: [u64; 5] = [
            11400714785074694791,
            14029467366897019727,
            1609587929392839161,
            9650029242287828579,
            2870177450012600261,
        ];
        let seed: u64 = 0x9e3779b97f4a7c13;
        let mut acc = seed.wrapping_add(P[4]).wrapping_add(8);
        let mut k1 = k.wrapping_mul(P[1]);
        k1 = k1.rotate_left(31);
        k1 = k1.wrapping_mul(P[0]);
        acc ^= k1;
        acc = acc.rotate_left(27).wrapping_mul(P[0]).wrapping_add(P[3]);
        acc = (acc ^ (acc >> 33)).wrapping_mul(P[1]);
        acc = (acc ^ (acc >> 29)).wrapping_mul(P[2]);
        acc ^ (acc >> 32)
    }
    let mask = len - 1;
    // (replica, address bytes, as_index, skip, last)
    let mut entries = Vec::new();
    for (i, &(addr, w)) in ases.iter().enumerate() {
        for r in 0..u32::from(w) {
            let b = ip46(addr);
            let a0 = u64::from_le_bytes(b[..8].try_into().unwrap());
            let a1 = u64::from_le_bytes(b[8..].try_into().unwrap());
            let seed = xxh64_u64(a0 ^ a1 ^ u64::from(r));
            let skip = ((seed & 0xffff_ffff) as u32 | 1) & mask;
            let last = ((seed >> 32) as u32) & mask;
            entries.push((r, b, i as u32 + 1, skip, last));
        }
    }
    entries.sort_by_key(|x| (x.0, x.1));
    let mut table = vec![0u32; len as usize];
    if !entries.is_empty() {
        let mut done = 0;
        'outer: loop {
            for e in entries.iter_mut() {
                loop {
                    let slot = e.4;
                    e.4 = (e.4 + e.3) & mask;
                    if table[slot as usize] == 0 {
                        table[slot as usize] = e.2;
                        break;
                    }
                }
                done += 1;
                if done == len {
                    break 'outer;
                }
            }
        }
    }
    let mut counts: BTreeMap<IpAddr, u32> = ases.iter().map(|&(a, _)| (a, 0)).collect();
    for idx in table {
        if idx != 0 {
            *counts.get_mut(&ases[idx as usize - 1].0).unwrap() += 1;
        }
    }
    counts
}

#[test]
fn reference_transcription_agrees_with_the_vectors() {
    let [a, b, c] = three();
    let r = reference_counts(1024, &[(a, 100), (b, 50), (c, 0)]);
    assert_eq!(r.values().copied().collect::<Vec<_>>(), [674, 350, 0]);
}

/// A set of distinct ASes of one family, with weights.
fn as_set(max: usize) -> impl Strategy<Value = Vec<(IpAddr, u8)>> {
    let v4 = proptest::collection::btree_map(any::<u32>(), 0u8..=100, 0..max).prop_map(|m| {
        m.into_iter()
            .map(|(a, w)| (IpAddr::V4(Ipv4Addr::from(a)), w))
            .collect::<Vec<_>>()
    });
    let v6 = proptest::collection::btree_map(any::<u128>(), 0u8..=100, 0..max).prop_map(|m| {
        m.into_iter()
            .map(|(a, w)| (IpAddr::V6(Ipv6Addr::from(a)), w))
            .collect::<Vec<_>>()
    });
    prop_oneof![v4, v6]
}

fn table_len() -> impl Strategy<Value = u32> {
    (0u32..=12).prop_map(|e| 1 << e)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matches_reference_transcription(len in table_len(), ases in as_set(12)) {
        let t = Table::build(len, &ases).unwrap();
        let ours: BTreeMap<IpAddr, u32> = t.buckets_per_as().collect();
        prop_assert_eq!(ours, reference_counts(len, &ases));
    }

    #[test]
    fn every_slot_owned_iff_some_weight_positive(len in table_len(), ases in as_set(12)) {
        let t = Table::build(len, &ases).unwrap();
        let any_positive = ases.iter().any(|&(_, w)| w > 0);
        prop_assert_eq!(t.owners().all(|o| o.is_some()), any_positive);
        prop_assert_eq!(t.owners().all(|o| o.is_none()), !any_positive);
        let total: u32 = t.buckets_per_as().map(|(_, c)| c).sum();
        prop_assert_eq!(total, if any_positive { len } else { 0 });
    }

    #[test]
    fn weight_zero_owns_nothing(len in table_len(), ases in as_set(12)) {
        let t = Table::build(len, &ases).unwrap();
        for &(a, w) in &ases {
            if w == 0 {
                prop_assert_eq!(t.buckets_of(a), 0);
                prop_assert!(t.owners().all(|o| o != Some(a)));
            }
        }
    }

    #[test]
    fn counts_follow_weights(len in table_len(), ases in as_set(12)) {
        let t = Table::build(len, &ases).unwrap();
        let total: u32 = ases.iter().map(|&(_, w)| u32::from(w)).sum();
        // A heavier AS never owns fewer buckets than a lighter one, up to one tie-break slot.
        for &(a, wa) in &ases {
            for &(b, wb) in &ases {
                if wa >= wb {
                    prop_assert!(t.buckets_of(a) + 1 >= t.buckets_of(b));
                }
            }
        }
        if total > 0 && total <= len {
            // Each full pass gives every replica one slot; the last, partial pass at most one more.
            let passes = len / total;
            for &(a, w) in &ases {
                let c = t.buckets_of(a);
                prop_assert!(c >= u32::from(w) * passes && c <= u32::from(w) * (passes + 1));
            }
        } else {
            for &(a, w) in &ases {
                prop_assert!(t.buckets_of(a) <= u32::from(w));
            }
        }
    }

    #[test]
    fn insertion_order_is_irrelevant(len in table_len(), ases in as_set(12), seed in any::<u64>()) {
        let mut shuffled = ases.clone();
        // A deterministic Fisher-Yates from the proptest-chosen seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(Table::build(len, &ases).unwrap(), Table::build(len, &shuffled).unwrap());
    }

    #[test]
    fn unweighted_is_weighted_with_all_ones(len in table_len(), ases in as_set(12)) {
        let ones: Vec<_> = ases.iter().map(|&(a, _)| (a, 1)).collect();
        let u = Table::build_with(Algorithm::Unweighted, len, &ases).unwrap();
        let w = Table::build(len, &ones).unwrap();
        prop_assert!(u.owners().eq(w.owners()));
    }
}
