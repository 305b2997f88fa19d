//! The Maglev new-flow table, bit-exact with VPP's `lb` plugin.
//!
//! VPP's `lb_vip_update_new_flow_table` (lb.c) fills each VIP's new-flow table with a Maglev
//! permutation walk. This module computes the same table on our side, so the control plane can
//! show each application server's (AS) bucket share and preview how many buckets a change moves.
//!
//! Two variants exist:
//!
//! - [`Algorithm::Weighted`], VPP master from May 2026 on: each AS with `weight > 0` contributes
//!   `weight` entries (replicas `0..weight`), sorted replica-major, then by address.
//! - [`Algorithm::Unweighted`], VPP up to 26.06: one entry per AS, sorted by address. It equals
//!   the weighted variant with every weight set to 1.
//!
//! For every entry the permutation is derived from `XXH64(a0 ^ a1 ^ replica)` with seed
//! `0x9e3779b97f4a7c13`, where `a0`/`a1` are the two little-endian halves of the AS's 16-byte
//! `ip46` address (IPv4 is stored as 12 zero bytes followed by the address).
//! `skip = (seed as u32 | 1) & mask` and `last = (seed >> 32) & mask`. The table is then filled
//! pass after pass: each entry in sorted order takes the next free slot of its own permutation,
//! until every slot is taken.
//!
//! ```
//! use std::net::IpAddr;
//! use maglev_core::maglev::Table;
//!
//! let a: IpAddr = "10.0.0.1".parse().unwrap();
//! let b: IpAddr = "10.0.0.2".parse().unwrap();
//! let table = Table::build(1024, &[(a, 100), (b, 50)]).unwrap();
//! assert_eq!(table.len(), 1024);
//! assert_eq!(table.buckets_of(a) + table.buckets_of(b), 1024);
//! assert!(table.buckets_of(a) > table.buckets_of(b));
//! ```

use std::fmt;
use std::net::IpAddr;

/// The largest table length [`Table::build`] accepts: 2^24 slots (64 MiB of slot indices).
///
/// VPP takes any power of two in a `u32`; we cap the length so a bad input cannot make us
/// allocate without bound. Real deployments use 1,024 to 65,536.
pub const MAX_TABLE_LEN: u32 = 1 << 24;

/// VPP's default new-flow table length (`new_flows_table_length`).
pub const DEFAULT_TABLE_LEN: u32 = 1024;

/// The seed VPP's `clib_xxhash` passes to XXH64.
const XXHASH_SEED: u64 = 0x9e37_79b9_7f4a_7c13;

/// Marks a slot that no AS owns (VPP's AS index 0, the drop AS).
const NO_OWNER: u32 = u32::MAX;

/// Which VPP generation's table to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// VPP master from May 2026 on: `weight` replicas per AS, weight 0 owns nothing.
    #[default]
    Weighted,
    /// VPP up to 26.06: one entry per AS, weights ignored (every AS counts as weight 1).
    Unweighted,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaglevError {
    /// The length is 0 or not a power of two (VPP rejects it with `INVALID_MEMORY_SIZE`).
    #[error("table length {0} is not a power of two")]
    NotPowerOfTwo(u32),
    /// The length is above [`MAX_TABLE_LEN`].
    #[error("table length {len} exceeds the maximum of {max}")]
    TooLong {
        /// The requested length.
        len: u32,
        /// The maximum, [`MAX_TABLE_LEN`].
        max: u32,
    },
    /// The same AS address was given twice.
    #[error("application server {0} is listed twice")]
    DuplicateAs(IpAddr),
    /// The ASes mix IPv4 and IPv6; VPP requires one family per VIP.
    #[error("application servers mix ipv4 and ipv6 ({0} and {1})")]
    MixedFamilies(IpAddr, IpAddr),
    /// Two tables of different lengths were compared.
    #[error("cannot compare tables of length {0} and {1}")]
    LengthMismatch(usize, usize),
}

/// One AS of a [`Table`]: its address, weight and the number of slots it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsShare {
    /// The AS address.
    pub address: IpAddr,
    /// The weight it was built with.
    pub weight: u8,
    /// How many slots of the table it owns (VPP's `num_buckets`).
    pub buckets: u32,
}

/// A computed Maglev new-flow table: bucket → AS.
#[derive(Clone, PartialEq, Eq)]
pub struct Table {
    /// Owner of each slot, as an index into `ases`, or [`NO_OWNER`].
    slots: Vec<u32>,
    /// The ASes in ascending address order.
    ases: Vec<AsShare>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.slots.len())
            .field("ases", &self.ases)
            .finish()
    }
}

impl Table {
    /// Builds the table VPP master computes for a VIP with `len` slots and these ASes
    /// (address, weight). The order of `ases` does not matter.
    ///
    /// Only pass the ASes VPP counts: those with the USED flag. An AS with weight 0 is kept in
    /// [`Table::ases`] with 0 buckets. When no AS has a weight above 0, every slot is unowned
    /// (VPP points them at its drop AS).
    ///
    /// # Errors
    /// When `len` is not a power of two or above [`MAX_TABLE_LEN`], when an address repeats,
    /// or when IPv4 and IPv6 addresses are mixed.
    pub fn build(len: u32, ases: &[(IpAddr, u8)]) -> Result<Self, MaglevError> {
        Self::build_with(Algorithm::Weighted, len, ases)
    }

    /// Builds the table with the chosen [`Algorithm`]; see [`Table::build`].
    ///
    /// # Errors
    /// As [`Table::build`].
    pub fn build_with(
        algorithm: Algorithm,
        len: u32,
        ases: &[(IpAddr, u8)],
    ) -> Result<Self, MaglevError> {
        if !len.is_power_of_two() {
            return Err(MaglevError::NotPowerOfTwo(len));
        }
        if len > MAX_TABLE_LEN {
            return Err(MaglevError::TooLong {
                len,
                max: MAX_TABLE_LEN,
            });
        }
        let mut shares: Vec<AsShare> = ases
            .iter()
            .map(|&(address, weight)| AsShare {
                address,
                weight,
                buckets: 0,
            })
            .collect();
        shares.sort_unstable_by_key(|s| s.address);
        for pair in shares.windows(2) {
            if pair[0].address == pair[1].address {
                return Err(MaglevError::DuplicateAs(pair[0].address));
            }
        }
        if let (Some(first), Some(last)) = (shares.first(), shares.last())
            && first.address.is_ipv4() != last.address.is_ipv4()
        {
            return Err(MaglevError::MixedFamilies(first.address, last.address));
        }
        let replicas: Vec<u32> = shares
            .iter()
            .map(|s| match algorithm {
                Algorithm::Weighted => u32::from(s.weight),
                Algorithm::Unweighted => 1,
            })
            .collect();
        let slots = fill(len, &shares, &replicas);
        for &owner in &slots {
            if owner != NO_OWNER {
                shares[owner as usize].buckets += 1;
            }
        }
        Ok(Self {
            slots,
            ases: shares,
        })
    }

    /// The number of slots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a table has at least one slot.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The AS owning `bucket`, or `None` when no AS has a weight above 0 (VPP drops the flow)
    /// or `bucket` is out of range. A flow's bucket is `flow_hash & (len - 1)`.
    #[must_use]
    pub fn owner(&self, bucket: usize) -> Option<IpAddr> {
        let owner = *self.slots.get(bucket)?;
        self.ases.get(owner as usize).map(|s| s.address)
    }

    /// Iterates over every slot's owner, in bucket order.
    pub fn owners(&self) -> impl ExactSizeIterator<Item = Option<IpAddr>> + '_ {
        self.slots
            .iter()
            .map(|&o| self.ases.get(o as usize).map(|s| s.address))
    }

    /// The ASes in ascending address order, each with its weight and bucket count.
    #[must_use]
    pub fn ases(&self) -> &[AsShare] {
        &self.ases
    }

    /// Bucket count per AS, in ascending address order (what VPP reports as
    /// `lb_as_v2_details.num_buckets`).
    pub fn buckets_per_as(&self) -> impl ExactSizeIterator<Item = (IpAddr, u32)> + '_ {
        self.ases.iter().map(|s| (s.address, s.buckets))
    }

    /// The number of buckets `address` owns; 0 when it is not in the table.
    #[must_use]
    pub fn buckets_of(&self, address: IpAddr) -> u32 {
        self.ases
            .binary_search_by_key(&address, |s| s.address)
            .map_or(0, |i| self.ases[i].buckets)
    }

    /// The number of buckets whose owner differs between `self` and `other` (a bucket that
    /// moves to or from "no owner" counts too).
    ///
    /// # Errors
    /// [`MaglevError::LengthMismatch`] when the tables have different lengths.
    pub fn changed_buckets(&self, other: &Self) -> Result<u32, MaglevError> {
        if self.len() != other.len() {
            return Err(MaglevError::LengthMismatch(self.len(), other.len()));
        }
        let changed = self
            .owners()
            .zip(other.owners())
            .filter(|(a, b)| a != b)
            .count();
        // The length is at most MAX_TABLE_LEN, so this fits.
        Ok(u32::try_from(changed).unwrap_or(u32::MAX))
    }
}

/// How much of a table a change moves; see [`disruption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Disruption {
    /// Buckets whose owner changes.
    pub changed: u32,
    /// Buckets in the table.
    pub total: u32,
}

impl Disruption {
    /// The changed share of the table, from 0.0 to 1.0.
    #[must_use]
    pub fn fraction(&self) -> f64 {
        f64::from(self.changed) / f64::from(self.total.max(1))
    }
}

/// Counts the buckets that change owner when a VIP with `len` slots goes from the AS set
/// `before` to `after` (both `(address, weight)`, weighted algorithm). New flows hashing to a
/// changed bucket go to a different AS.
///
/// # Errors
/// As [`Table::build`], for either set.
pub fn disruption(
    len: u32,
    before: &[(IpAddr, u8)],
    after: &[(IpAddr, u8)],
) -> Result<Disruption, MaglevError> {
    let a = Table::build(len, before)?;
    let b = Table::build(len, after)?;
    Ok(Disruption {
        changed: a.changed_buckets(&b)?,
        total: len,
    })
}

/// VPP's `clib_xxhash`: XXH64 of the 8 little-endian bytes of `key`, seed
/// `0x9e3779b97f4a7c13`.
fn clib_xxhash(key: u64) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    const P4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P5: u64 = 0x27D4_EB2F_1656_67C5;
    let mut h = XXHASH_SEED.wrapping_add(P5).wrapping_add(8);
    let k = key.wrapping_mul(P2).rotate_left(31).wrapping_mul(P1);
    h ^= k;
    h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

/// `a0 ^ a1` of an address's 16-byte `ip46` form, each half read little-endian.
fn address_key(address: IpAddr) -> u64 {
    let bytes = match address {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[12..].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    };
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&bytes[..8]);
    hi.copy_from_slice(&bytes[8..]);
    u64::from_le_bytes(lo) ^ u64::from_le_bytes(hi)
}

/// The XXH64 seed of one entry (AS address, replica).
fn entry_seed(address: IpAddr, replica: u32) -> u64 {
    clib_xxhash(address_key(address) ^ u64::from(replica))
}

/// `(skip, last)` of an entry's permutation for a table with `mask = len - 1`.
fn permutation(seed: u64, mask: u32) -> (u32, u32) {
    // Truncations are the algorithm: low and high 32 bits of the seed.
    let skip = ((seed as u32) | 1) & mask;
    let last = ((seed >> 32) as u32) & mask;
    (skip, last)
}

/// One entry of the fill: its permutation state and owner.
#[derive(Clone, Copy)]
struct Entry {
    skip: u32,
    last: u32,
    owner: u32,
}

/// Fills the table. `shares` is in ascending address order (VPP's `memcmp` order within one
/// family) and `replicas[i]` is the entry count of `shares[i]`.
fn fill(len: u32, shares: &[AsShare], replicas: &[u32]) -> Vec<u32> {
    let n = len as usize;
    let mask = len - 1;
    let total: u64 = replicas.iter().map(|&r| u64::from(r)).sum();
    if total == 0 {
        return vec![NO_OWNER; n];
    }
    // Entries in VPP's sort order: replica-major, then address. Only the first `len` entries
    // can ever take a slot (each entry takes one slot per pass), so no more are made.
    let wanted = usize::try_from(total).map_or(n, |t| t.min(n));
    let mut entries: Vec<Entry> = Vec::with_capacity(wanted);
    let max_replicas = replicas.iter().copied().max().unwrap_or(0);
    'levels: for replica in 0..max_replicas {
        for (i, share) in shares.iter().enumerate() {
            if replicas[i] > replica {
                let (skip, last) = permutation(entry_seed(share.address, replica), mask);
                // `i` < number of ASes, which is far below u32::MAX in any slice we accept.
                entries.push(Entry {
                    skip,
                    last,
                    owner: i as u32,
                });
                if entries.len() == wanted {
                    break 'levels;
                }
            }
        }
    }

    let mut slots = vec![NO_OWNER; n];
    // Occupancy bitmap: 8 KiB for 65,536 slots, so probing stays in L1.
    let mut taken = vec![0u64; n.div_ceil(64)];
    // Probing for a free slot costs about `len / free` steps, which explodes as the table fills.
    // Once at most `endgame` slots are free, each entry instead finds its next free slot
    // directly: on its permutation `last, last + skip, ...`, slot `s` comes after
    // `(s - last) * skip⁻¹ mod len` steps, so the free slot with the fewest steps is the one
    // probing would reach first. Both ways give the same table.
    let endgame = (n.isqrt() * 2).max(64);
    let mut done = 0usize;
    let mut i = 0usize;
    while n - done > endgame {
        let e = &mut entries[i];
        loop {
            let slot = e.last;
            e.last = (e.last + e.skip) & mask;
            let (word, bit) = ((slot >> 6) as usize, 1u64 << (slot & 63));
            if taken[word] & bit == 0 {
                taken[word] |= bit;
                slots[slot as usize] = e.owner;
                break;
            }
        }
        done += 1;
        i += 1;
        if i == entries.len() {
            i = 0;
        }
    }

    // The endgame: list the free slots, then give each entry in turn its nearest one.
    let mut free: Vec<u32> = Vec::with_capacity(n - done);
    for (w, &bits) in taken.iter().enumerate() {
        let mut open = !bits;
        while open != 0 {
            let slot = (w << 6) | open.trailing_zeros() as usize;
            if slot < n {
                // `slot` < len <= MAX_TABLE_LEN.
                free.push(slot as u32);
            }
            open &= open - 1;
        }
    }
    while !free.is_empty() {
        let e = &mut entries[i];
        let inverse = inverse_mod_pow2(e.skip);
        let mut best = 0usize;
        let mut best_steps = u32::MAX;
        for (k, &slot) in free.iter().enumerate() {
            let steps = slot.wrapping_sub(e.last).wrapping_mul(inverse) & mask;
            if steps < best_steps {
                best_steps = steps;
                best = k;
            }
        }
        let slot = free.swap_remove(best);
        slots[slot as usize] = e.owner;
        e.last = (slot + e.skip) & mask;
        i += 1;
        if i == entries.len() {
            i = 0;
        }
    }
    slots
}

/// The inverse of odd `x` modulo 2^32 (Newton's iteration; each step doubles the correct bits).
/// For `x` = 0 (only in a one-slot table, where every step count is 0 anyway) it returns 0.
fn inverse_mod_pow2(x: u32) -> u32 {
    let mut y = x; // correct to 3 bits for odd x
    for _ in 0..4 {
        y = y.wrapping_mul(2u32.wrapping_sub(x.wrapping_mul(y)));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn xxhash_matches_the_documented_vector() {
        assert_eq!(clib_xxhash(0x0100_000a_0000_0000), 0xbc30_f861_da48_3441);
    }

    #[test]
    fn address_key_places_ipv4_in_the_high_half() {
        assert_eq!(address_key(v4("10.0.0.1")), 0x0100_000a_0000_0000);
        assert_eq!(address_key(v4("10.0.0.3")), 0x0300_000a_0000_0000);
    }

    #[test]
    fn seeds_and_permutations_match_the_documented_vectors() {
        let cases = [
            ("10.0.0.1", 0xbc30_f861_da48_3441, (1, 1), (65, 97)),
            ("10.0.0.2", 0x3153_f420_9ed2_373e, (15, 0), (831, 32)),
            ("10.0.0.3", 0x6d17_77fb_6649_92ac, (13, 11), (685, 1019)),
        ];
        for (addr, seed, p16, p1024) in cases {
            assert_eq!(entry_seed(v4(addr), 0), seed, "{addr}");
            assert_eq!(permutation(seed, 15), p16, "{addr}");
            assert_eq!(permutation(seed, 1023), p1024, "{addr}");
        }
        assert_eq!(entry_seed(v4("10.0.0.1"), 1), 0x815b_2f24_a0f5_2138);
        assert_eq!(entry_seed(v4("10.0.0.2"), 1), 0x9f22_6ee6_c7fa_87fc);
    }

    #[test]
    fn inverse_mod_pow2_inverts_odd_numbers() {
        for x in [1u32, 3, 5, 65, 831, 0xffff_ffff, 0x8000_0001, 0x1234_5679] {
            assert_eq!(x.wrapping_mul(inverse_mod_pow2(x)), 1, "{x}");
        }
    }

    /// The plain probing fill, with no endgame, to check the endgame against at large sizes.
    fn probe_only(len: u32, ases: &[(IpAddr, u8)]) -> Vec<Option<IpAddr>> {
        let mut sorted = ases.to_vec();
        sorted.sort_unstable();
        let mask = len - 1;
        let mut entries = Vec::new();
        for r in 0..100u32 {
            for (i, &(a, w)) in sorted.iter().enumerate() {
                if u32::from(w) > r {
                    let (skip, last) = permutation(entry_seed(a, r), mask);
                    entries.push((skip, last, i));
                }
            }
        }
        let mut table = vec![None; len as usize];
        let mut done = 0;
        'fill: loop {
            for e in &mut entries {
                loop {
                    let slot = e.1 as usize;
                    e.1 = (e.1 + e.0) & mask;
                    if table[slot].is_none() {
                        table[slot] = Some(sorted[e.2].0);
                        break;
                    }
                }
                done += 1;
                if done == len {
                    break 'fill;
                }
            }
        }
        table
    }

    #[test]
    fn endgame_gives_the_same_table_as_probing() {
        let sets: [Vec<(IpAddr, u8)>; 3] = [
            (1..=7)
                .map(|i| (v4(&format!("192.0.2.{i}")), 100))
                .collect(),
            (1..=300)
                .map(|i: u32| {
                    (
                        IpAddr::from([10, 1, (i >> 8) as u8, i as u8]),
                        (i % 101) as u8,
                    )
                })
                .collect(),
            (1..=40)
                .map(|i: u16| {
                    (
                        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]),
                        1 + (i % 3) as u8,
                    )
                })
                .collect(),
        ];
        for ases in &sets {
            for len in [64, 1024, 8192, 65_536] {
                let t = Table::build(len, ases).unwrap();
                assert!(t.owners().eq(probe_only(len, ases)), "len {len}");
            }
        }
    }

    #[test]
    fn a_one_slot_table_has_skip_zero() {
        assert_eq!(permutation(0xffff_ffff_ffff_ffff, 0), (0, 0));
        let t = Table::build(1, &[(v4("10.0.0.1"), 5), (v4("10.0.0.2"), 5)]).unwrap();
        assert_eq!(t.owner(0), Some(v4("10.0.0.1")));
    }
}
