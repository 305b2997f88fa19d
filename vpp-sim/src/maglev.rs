//! Bucket counts of a VIP's new-flow table, from `maglev_core`'s VPP-exact Maglev table.

use std::collections::BTreeMap;

use maglev_core::maglev::{Algorithm, Table};

use crate::lb::{Ip46, from_ip46};

/// One in-use AS fed to the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) as_index: u32,
    pub(crate) address: Ip46,
    pub(crate) weight: u8,
}

/// Buckets owned per AS pool index for a table of `len` slots, weighted (master) or
/// unweighted (VPP 26.06 and earlier). Slots owned by nobody belong
/// to the drop AS, index 0. A length `maglev_core` refuses (above its cap) yields an empty map.
pub(crate) fn bucket_counts(entries: &[Entry], len: u32, unweighted: bool) -> BTreeMap<u32, u32> {
    let ases: Vec<_> = entries
        .iter()
        .map(|e| (from_ip46(&e.address), e.weight))
        .collect();
    let mut out = BTreeMap::new();
    let algorithm = if unweighted {
        Algorithm::Unweighted
    } else {
        Algorithm::Weighted
    };
    let Ok(table) = Table::build_with(algorithm, len, &ases) else {
        return out;
    };
    let mut owned = 0u32;
    for e in entries {
        let n = table.buckets_of(from_ip46(&e.address));
        owned = owned.saturating_add(n);
        out.insert(e.as_index, n);
    }
    out.insert(0, len.saturating_sub(owned));
    out
}
