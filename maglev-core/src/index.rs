//! [`ConfigIndex`]: a config's names resolved once, when the config is loaded or set, so that
//! the work done per sync walks integers rather than strings.
//!
//! Backends are numbered densely in the config's order ([`Config::backends`], by name);
//! frontends keep their position in [`Config::frontends`]. The index holds:
//!
//! | what | layout | read by |
//! |---|---|---|
//! | each backend's number, by name | a hash table of one-cache-line slots | [`ConfigIndex::backend_number`] |
//! | each backend's address | a vector by backend number | the desired state, transitions |
//! | each frontend's number, by name (the first of a repeated name) | a hash map | jobs, operator requests |
//! | each frontend's VIP key | a vector by frontend number | the reconciler's scopes and flushes |
//! | each pool membership: backend number (or none: a name the config lacks) and configured weight | flat vectors, frontend after frontend, pool after pool | the desired state |
//! | each frontend's memberships in AS order (by address, then pool order) | one flat vector of offsets | the desired state |
//! | each backend's frontends, each once, ascending | one flat vector | [`crate::reconcile::Reconciler::on_transition`] |
//!
//! Building it costs one name lookup per membership and one sort per frontend; it is shared
//! (an [`Arc`]) by the reconciler and every sync job planned against the config.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::desired::vip_key;
use crate::plan::VipKey;
use crate::weights::{BackendState, BackendStates};

/// A membership whose backend the config does not have (only in a hand-built config).
const NO_BACKEND: u32 = u32::MAX;

/// A config with its names resolved to dense numbers. See the [module docs](self).
///
/// Two indexes are equal when their configs are (an index is a function of its config).
pub struct ConfigIndex {
    config: Arc<Config>,
    names: NameTable,
    /// Backend number → address.
    addresses: Vec<IpAddr>,
    /// Frontend name → number (the first frontend of that name).
    frontends_by_name: HashMap<String, usize>,
    /// Frontend number → VIP key.
    vips: Vec<VipKey>,
    /// Frontend number `f`'s memberships are `frontend_members[f]..frontend_members[f + 1]`.
    frontend_members: Vec<u32>,
    /// Frontend number `f`'s pools are `frontend_pools[f]..frontend_pools[f + 1]` in
    /// `pool_ends`.
    frontend_pools: Vec<u32>,
    /// Where each pool's memberships end (exclusive, in the flat membership vectors).
    pool_ends: Vec<u32>,
    /// Membership → backend number, or [`NO_BACKEND`].
    member_backends: Vec<u32>,
    /// Membership → configured weight.
    member_weights: Vec<u8>,
    /// Per frontend, the offsets of its memberships (relative to its first) ordered by the
    /// backend's address, then by position; memberships of unknown backends last.
    as_order: Vec<u32>,
    /// Backend number `b`'s frontends are `backend_frontends[b]..backend_frontends[b + 1]` in
    /// `frontends_of`.
    backend_frontends: Vec<u32>,
    /// The frontends of each backend, each once, ascending.
    frontends_of: Vec<u32>,
    /// The frontends that own a VIP (the first of those with the same key), by key.
    vip_order: Vec<u32>,
}

impl PartialEq for ConfigIndex {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) || self.config == other.config
    }
}

impl Eq for ConfigIndex {}

impl std::fmt::Debug for ConfigIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigIndex")
            .field("backends", &self.addresses.len())
            .field("frontends", &self.vips.len())
            .field("memberships", &self.member_backends.len())
            .finish_non_exhaustive()
    }
}

/// One frontend's memberships, as the desired-state build walks them.
pub(crate) struct FrontendMembers<'i> {
    /// Where each pool ends, relative to the frontend's first membership.
    pub(crate) pool_ends: PoolEnds<'i>,
    /// Backend numbers ([`NO_BACKEND`] for an unknown name).
    pub(crate) backends: &'i [u32],
    /// Configured weights.
    pub(crate) weights: &'i [u8],
    /// Offsets into the two slices above in AS order (see [`ConfigIndex`]).
    pub(crate) as_order: &'i [u32],
}

/// A frontend's pool ends, relative to its first membership.
#[derive(Clone, Copy)]
pub(crate) struct PoolEnds<'i> {
    ends: &'i [u32],
    start: u32,
}

impl PoolEnds<'_> {
    /// Each pool's range of membership offsets.
    pub(crate) fn ranges(self) -> impl Iterator<Item = std::ops::Range<usize>> {
        let start = self.start;
        let mut previous = 0usize;
        self.ends.iter().map(move |&end| {
            let end = (end - start) as usize;
            let range = previous..end;
            previous = end;
            range
        })
    }
}

/// A count that the index stores as `u32`; configs are far smaller (a million memberships is
/// about 30 MB of YAML), so a larger one is refused when the index is built.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ConfigIndex {
    /// The index of `config`.
    ///
    /// # Panics
    ///
    /// When the config has 2³² − 1 or more backends or pool memberships (some 100 GB of YAML:
    /// the loader refuses files far smaller).
    #[must_use]
    pub fn new(config: Arc<Config>) -> Self {
        let members: usize = config
            .frontends
            .iter()
            .flat_map(|f| &f.pools)
            .map(|p| p.backends.len())
            .sum();
        assert!(
            members < NO_BACKEND as usize && config.backends.len() < NO_BACKEND as usize,
            "a config of {members} memberships and {} backends is too large to index",
            config.backends.len()
        );
        let names = NameTable::new(config.backends.keys().map(String::as_str));
        let addresses: Vec<IpAddr> = config.backends.values().map(|b| b.address).collect();
        let frontends = config.frontends.len();
        let mut index = Self {
            names,
            frontends_by_name: HashMap::with_capacity(frontends),
            vips: config.frontends.iter().map(vip_key).collect(),
            frontend_members: Vec::with_capacity(frontends + 1),
            frontend_pools: Vec::with_capacity(frontends + 1),
            pool_ends: Vec::new(),
            member_backends: Vec::with_capacity(members),
            member_weights: Vec::with_capacity(members),
            as_order: Vec::with_capacity(members),
            backend_frontends: Vec::new(),
            frontends_of: Vec::new(),
            vip_order: Vec::new(),
            addresses,
            config: Arc::clone(&config),
        };
        index.frontend_members.push(0);
        index.frontend_pools.push(0);
        // How many frontends use each backend, and the last frontend counted for it.
        let mut uses = vec![0u32; index.addresses.len()];
        let mut last_use = vec![NO_BACKEND; index.addresses.len()];
        for (f, frontend) in config.frontends.iter().enumerate() {
            index
                .frontends_by_name
                .entry(frontend.name.clone())
                .or_insert(f);
            let start = index.member_backends.len();
            for pool in &frontend.pools {
                for member in &pool.backends {
                    let number = index.names.get(&member.backend).unwrap_or(NO_BACKEND);
                    if let Some(last) = last_use.get_mut(number as usize)
                        && *last != count(f)
                    {
                        *last = count(f);
                        uses[number as usize] += 1;
                    }
                    index.member_backends.push(number);
                    index.member_weights.push(member.weight);
                }
                index.pool_ends.push(count(index.member_backends.len()));
            }
            let end = index.member_backends.len();
            let own = &index.member_backends[start..end];
            let first = index.as_order.len();
            index.as_order.extend(0..count(end - start));
            // Unknown backends last (no address), then by address, then by position: the sort
            // is stable and the offsets start in position order.
            let addresses = &index.addresses;
            index.as_order[first..].sort_by_key(|&offset| {
                addresses
                    .get(own[offset as usize] as usize)
                    .map_or((1, None), |address| (0, Some(*address)))
            });
            index.frontend_members.push(count(end));
            index.frontend_pools.push(count(index.pool_ends.len()));
        }
        // Each backend's frontends, as one flat vector: offsets from the counts, then a fill in
        // frontend order (so each backend's run is ascending).
        index.backend_frontends.reserve(uses.len() + 1);
        index.backend_frontends.push(0);
        let mut total = 0u32;
        for n in &uses {
            total += n;
            index.backend_frontends.push(total);
        }
        index.frontends_of = vec![0; total as usize];
        let mut next: Vec<u32> = index.backend_frontends[..uses.len()].to_vec();
        last_use.fill(NO_BACKEND);
        for f in 0..frontends {
            let range = index.member_range(f);
            for &number in &index.member_backends[range] {
                if let Some(last) = last_use.get_mut(number as usize)
                    && *last != count(f)
                {
                    *last = count(f);
                    let slot = &mut next[number as usize];
                    index.frontends_of[*slot as usize] = count(f);
                    *slot += 1;
                }
            }
        }
        // Stable, so of two frontends with the same key the first comes first and stays.
        index.vip_order = (0..count(frontends)).collect();
        let vips = &index.vips;
        index.vip_order.sort_by_key(|&f| vips[f as usize]);
        index.vip_order.dedup_by_key(|f| vips[*f as usize]);
        index
    }

    /// The config this index was built from.
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The number of backends.
    #[must_use]
    pub fn backends(&self) -> usize {
        self.addresses.len()
    }

    /// The number of the backend called `name`: its position in [`Config::backends`].
    #[must_use]
    pub fn backend_number(&self, name: &str) -> Option<usize> {
        self.names.get(name).map(|n| n as usize)
    }

    /// The address of backend number `backend`.
    #[must_use]
    pub fn backend_address(&self, backend: usize) -> Option<IpAddr> {
        self.addresses.get(backend).copied()
    }

    /// The frontends (numbers, ascending, each once) that list backend number `backend` in
    /// some pool.
    #[must_use]
    pub fn frontends_of(&self, backend: usize) -> &[u32] {
        let (Some(&start), Some(&end)) = (
            self.backend_frontends.get(backend),
            self.backend_frontends.get(backend + 1),
        ) else {
            return &[];
        };
        &self.frontends_of[start as usize..end as usize]
    }

    /// The number of the frontend called `name` (the first one, should names repeat).
    #[must_use]
    pub fn frontend_number(&self, name: &str) -> Option<usize> {
        self.frontends_by_name.get(name).copied()
    }

    /// The VIP key of frontend number `frontend`.
    #[must_use]
    pub fn vip(&self, frontend: usize) -> Option<VipKey> {
        self.vips.get(frontend).copied()
    }

    /// Every frontend's VIP key, by frontend number.
    #[must_use]
    pub fn vips(&self) -> &[VipKey] {
        &self.vips
    }

    /// The state of every backend by number, read from `states` once per backend (a backend
    /// `states` does not know is [`BackendState::Unknown`]).
    #[must_use]
    pub fn backend_states(&self, states: &impl BackendStates) -> Vec<BackendState> {
        self.config
            .backends
            .keys()
            .map(|name| states.state_of(name))
            .collect()
    }

    fn member_range(&self, frontend: usize) -> std::ops::Range<usize> {
        self.frontend_members[frontend] as usize..self.frontend_members[frontend + 1] as usize
    }

    /// Frontend number `frontend`'s memberships (`frontend` < the number of frontends).
    pub(crate) fn members(&self, frontend: usize) -> FrontendMembers<'_> {
        let range = self.member_range(frontend);
        let pools =
            self.frontend_pools[frontend] as usize..self.frontend_pools[frontend + 1] as usize;
        FrontendMembers {
            pool_ends: PoolEnds {
                ends: &self.pool_ends[pools],
                start: count(range.start),
            },
            backends: &self.member_backends[range.clone()],
            weights: &self.member_weights[range.clone()],
            as_order: &self.as_order[range],
        }
    }

    /// The address of backend number `backend` (`None` for [`NO_BACKEND`]).
    pub(crate) fn address_of(&self, backend: u32) -> Option<IpAddr> {
        self.addresses.get(backend as usize).copied()
    }

    /// The frontends that own a VIP (the first of those with the same key), ordered by key.
    pub(crate) fn vip_order(&self) -> &[u32] {
        &self.vip_order
    }
}

/// Backend name → number: open addressing with linear probing over 64-byte slots, at most
/// two thirds full, each slot holding the number, the name's length and its first [`HEAD`]
/// bytes, so that a lookup reads one cache line; a map keyed by strings reads its slot, then
/// the key somewhere in the heap.
struct NameTable {
    seed: u64,
    /// `slots.len() - 1`; the length is a power of two.
    mask: usize,
    slots: Vec<Slot>,
    /// Every name longer than [`HEAD`] bytes, whole, back to back: such names are compared
    /// here after their head matched.
    long_names: Vec<u8>,
    /// Where each long name ends in `long_names`; it starts where the previous one ends.
    long_ends: Vec<usize>,
}

/// How many leading bytes of a name a slot holds.
const HEAD: usize = 32;

/// A table slot: one name's head and number.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    /// The name's first [`HEAD`] bytes, zero-padded.
    head: [u8; HEAD],
    /// The name's length (saturated at `u32::MAX`).
    len: u32,
    /// Bits of the name's hash.
    tag: u32,
    /// A long name's number in [`NameTable::long_ends`].
    long: u32,
    /// The number; [`NO_BACKEND`]: an empty slot.
    number: u32,
}

// One slot, one cache line.
const _: () = assert!(size_of::<Slot>() == 64);

impl Slot {
    const EMPTY: Self = Self {
        head: [0; HEAD],
        len: 0,
        tag: 0,
        long: 0,
        number: NO_BACKEND,
    };
}

/// A name as the table compares it: its hash, length and zero-padded head.
struct Key<'n> {
    name: &'n [u8],
    hash: u64,
    len: u32,
    head: [u8; HEAD],
}

impl<'n> Key<'n> {
    fn new(seed: u64, name: &'n [u8]) -> Self {
        let mut head = [0; HEAD];
        let n = name.len().min(HEAD);
        head[..n].copy_from_slice(&name[..n]);
        Self {
            name,
            hash: hash_name(seed, name),
            len: u32::try_from(name.len()).unwrap_or(u32::MAX),
            head,
        }
    }

    fn tag(&self) -> u32 {
        (self.hash >> 32) as u32
    }
}

impl NameTable {
    /// The table over `names`, numbered in order from 0; of two equal names, the first counts.
    fn new<'b>(names: impl ExactSizeIterator<Item = &'b str>) -> Self {
        let len = (names.len() + names.len() / 2 + 1).next_power_of_two();
        let mut table = Self {
            seed: std::hash::RandomState::new().hash_one(0x6d61_676c_6576_u64),
            mask: len - 1,
            slots: vec![Slot::EMPTY; len],
            long_names: Vec::new(),
            long_ends: Vec::new(),
        };
        for (number, name) in names.enumerate() {
            let key = Key::new(table.seed, name.as_bytes());
            let Err(pos) = table.find(&key) else {
                continue;
            };
            // A long name numbered past `u32::MAX` (never: that is 140 GB of names) would
            // match nothing.
            let long = if name.len() > HEAD {
                table.long_names.extend_from_slice(name.as_bytes());
                table.long_ends.push(table.long_names.len());
                count(table.long_ends.len() - 1)
            } else {
                0
            };
            table.slots[pos] = Slot {
                head: key.head,
                len: key.len,
                tag: key.tag(),
                long,
                number: count(number),
            };
        }
        table
    }

    /// The slot holding `key` (`Ok`), or the empty slot where it would go (`Err`). The table
    /// always has an empty slot, so the probe ends.
    fn find(&self, key: &Key<'_>) -> Result<usize, usize> {
        let mut pos = key.hash as usize & self.mask;
        loop {
            let slot = &self.slots[pos];
            if slot.number == NO_BACKEND {
                return Err(pos);
            }
            if slot.tag == key.tag()
                && slot.len == key.len
                && slot.head == key.head
                && (key.name.len() <= HEAD || self.long_name(slot) == Some(key.name))
            {
                return Ok(pos);
            }
            pos = (pos + 1) & self.mask;
        }
    }

    fn long_name(&self, slot: &Slot) -> Option<&[u8]> {
        let number = slot.long as usize;
        let start = number
            .checked_sub(1)
            .map_or(Some(0), |previous| self.long_ends.get(previous).copied())?;
        self.long_names.get(start..*self.long_ends.get(number)?)
    }

    /// The key of `name` in this table.
    fn key<'n>(&self, name: &'n str) -> Key<'n> {
        Key::new(self.seed, name.as_bytes())
    }

    /// The number of `name`.
    fn get(&self, name: &str) -> Option<u32> {
        Some(self.slots[self.find(&self.key(name)).ok()?].number)
    }
}

/// A seeded multiply-and-rotate hash over whole words: a few cycles for a short name, where
/// SipHash takes tens of nanoseconds. The seed is drawn per table from the standard library's
/// random keys, so colliding names cannot be chosen in advance.
fn hash_name(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    for chunk in bytes.chunks(8) {
        let mut word = [0; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    // The multiplications mix upwards: fold the high bits over the low ones.
    let h = (h ^ (h >> 29)).wrapping_mul(K);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::{Key, NameTable};

    /// Names that a table keeping 32-byte heads must tell apart by more than the head: one
    /// byte longer with a zero byte, long names with the same 32 first bytes, 31 and 32 bytes.
    fn names() -> Vec<String> {
        let h = "h".repeat(32);
        vec![
            "b0".into(),
            "b0\0".into(),
            format!("{h}1"),
            format!("{h}2"),
            format!("{h}22"),
            h[..31].to_owned(),
            h.clone(),
        ]
    }

    fn table(names: &[String]) -> NameTable {
        NameTable::new(names.iter().map(String::as_str))
    }

    #[test]
    fn every_name_finds_its_own_number() {
        let names = names();
        let table = table(&names);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(table.get(name), Some(u32::try_from(i).unwrap()), "{name:?}");
        }
        for unknown in ["", "b", "b00", "b0\0\0", &"h".repeat(33), &"h".repeat(64)] {
            assert_eq!(table.get(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_repeated_name_keeps_its_first_number() {
        let names = ["a", "b", "a"].map(String::from);
        assert_eq!(table(&names).get("a"), Some(0));
        assert_eq!(table(&names).get("b"), Some(1));
    }

    #[test]
    fn names_whose_hashes_collide_stay_apart() {
        let names = names();
        let table = table(&names);
        for name in &names {
            for other in names.iter().filter(|other| *other != name) {
                // `name` probing from `other`'s slot with `other`'s tag, as if their hashes
                // were equal: the length, the head or the rest of the name must differ.
                let forged = Key {
                    hash: table.key(other).hash,
                    ..table.key(name)
                };
                assert_ne!(
                    table.find(&forged).ok(),
                    table.find(&table.key(other)).ok(),
                    "{name:?} taken for {other:?}"
                );
            }
        }
    }
}
