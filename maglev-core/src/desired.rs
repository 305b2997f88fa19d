//! The desired VPP state: what the config and the backends' states say VPP should hold.
//!
//! For every frontend: one VIP (prefix, protocol, port, encap from its family, `src-ip-sticky`,
//! table length) whose ASes are every backend of every pool, with the weight and flush hint of
//! [`crate::weights::backend_weight`]. Backends in a standby pool, down, paused or disabled stay
//! installed with weight 0, so re-enabling them never needs an AS add; a `removed` backend is
//! left out, so its AS is deleted. A backend listed in several pools counts with its first
//! pool; two backends with the same address count once, the first in pool order.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::config::{Backend, Config, Frontend};
use crate::plan::{As, AsMap, FlushSet, Vip, VipKey, VppState};
use crate::weights::{
    BackendState, BackendStates, FrontendWeights, WeightOverrides, transition_flushes, weigh,
};

/// The desired state with the per-frontend decisions behind it. The decisions borrow names
/// from the config they were computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desired<'a> {
    /// What VPP should hold.
    pub vpp: VppState,
    /// Each frontend's active pool, effective weights and state, by frontend name.
    pub frontends: BTreeMap<String, FrontendWeights<'a>>,
}

/// The VIP key of a frontend.
#[must_use]
pub fn vip_key(frontend: &Frontend) -> VipKey {
    VipKey::new(frontend.prefix, frontend.protocol.ip_proto(), frontend.port)
}

/// Backend name → (state, address), resolved once per build, so that each pool membership
/// costs one lookup that reads one cache line: open addressing with linear probing over
/// 64-byte slots, at most two thirds full, each slot holding the state, the address, the
/// name's length and its first [`HEAD`] bytes. A map keyed by the config's own strings read
/// its slot, then the key's string somewhere in the config's heap, and at a million
/// memberships per build neither stays in the cache.
struct Resolver {
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

/// A table slot: one backend's name head, state and address.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    /// The name's first [`HEAD`] bytes, zero-padded.
    head: [u8; HEAD],
    /// The name's length (saturated at `u32::MAX`).
    len: u32,
    /// Bits of the name's hash.
    tag: u32,
    /// A long name's number in [`Resolver::long_ends`].
    long: u32,
    state: BackendState,
    /// `None`: an empty slot.
    address: Option<IpAddr>,
}

// One slot, one cache line.
const _: () = assert!(size_of::<Slot>() == 64);

impl Slot {
    const EMPTY: Self = Self {
        head: [0; HEAD],
        len: 0,
        tag: 0,
        long: 0,
        state: BackendState::Unknown,
        address: None,
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

impl Resolver {
    /// The table over `backends`; of two entries with the same name, the first counts.
    fn new<'b>(
        backends: impl ExactSizeIterator<Item = (&'b str, &'b Backend)>,
        states: &impl BackendStates,
    ) -> Self {
        let len = (backends.len() + backends.len() / 2 + 1).next_power_of_two();
        let mut table = Self {
            seed: std::hash::RandomState::new().hash_one(0x6d61_676c_6576_u64),
            mask: len - 1,
            slots: vec![Slot::EMPTY; len],
            long_names: Vec::new(),
            long_ends: Vec::new(),
        };
        for (name, backend) in backends {
            let key = Key::new(table.seed, name.as_bytes());
            let Err(pos) = table.find(&key) else {
                continue;
            };
            // A long name numbered past `u32::MAX` (never: that is 140 GB of names) would
            // match nothing.
            let long = if name.len() > HEAD {
                table.long_names.extend_from_slice(name.as_bytes());
                table.long_ends.push(table.long_names.len());
                u32::try_from(table.long_ends.len() - 1).unwrap_or(u32::MAX)
            } else {
                0
            };
            table.slots[pos] = Slot {
                head: key.head,
                len: key.len,
                tag: key.tag(),
                long,
                state: states.state_of(name),
                address: Some(backend.address),
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
            if slot.address.is_none() {
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

    /// The state and address of the name of `key`.
    fn get(&self, key: &Key<'_>) -> Option<(BackendState, IpAddr)> {
        let slot = &self.slots[self.find(key).ok()?];
        Some((slot.state, slot.address?))
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

/// Buffers reused from one frontend to the next.
#[derive(Default)]
struct Scratch {
    states: Vec<BackendState>,
    addresses: Vec<Option<IpAddr>>,
}

/// The desired VIP of one frontend and the decisions behind it.
#[must_use]
pub fn desired_vip<'a>(
    config: &Config,
    frontend: &'a Frontend,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> (VipKey, Vip, FrontendWeights<'a>) {
    let backends: Vec<(&str, &Backend)> = frontend
        .backend_names()
        .filter_map(|name| Some((name, config.backend(name)?)))
        .collect();
    let resolver = Resolver::new(backends.into_iter(), states);
    build_vip(frontend, &resolver, overrides, &mut Scratch::default())
}

fn build_vip<'a>(
    frontend: &'a Frontend,
    resolver: &Resolver,
    overrides: &WeightOverrides,
    scratch: &mut Scratch,
) -> (VipKey, Vip, FrontendWeights<'a>) {
    let Scratch { states, addresses } = scratch;
    addresses.clear();
    // A name the config does not know (only in a hand-built config) is `unknown` and gets no AS.
    let weights = weigh(frontend, overrides, states, |name| {
        let resolved = resolver.get(&resolver.key(name));
        addresses.push(resolved.map(|(_, address)| address));
        resolved.map_or(BackendState::Unknown, |(state, _)| state)
    });
    // Built in place, in one allocation.
    let mut ases = Vec::with_capacity(addresses.len());
    ases.extend(
        weights
            .pools
            .iter()
            .flat_map(|pool| pool.members.iter())
            .zip(addresses.iter())
            .filter(|(member, _)| member.state != BackendState::Removed)
            .filter_map(|(member, address)| {
                let weight = As {
                    weight: member.effective.weight,
                    flush: member.effective.flush,
                };
                Some(((*address)?, weight))
            }),
    );
    // Keyed by address, the first membership wins: a backend's first pool, and the first of
    // two backends sharing an address. The sort is stable and `dedup_by` keeps the first.
    ases.sort_by_key(|a| a.0);
    ases.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut vip = Vip::new(
        frontend.encap.into(),
        frontend.src_ip_sticky,
        frontend.new_flows_table_length,
    );
    vip.ases = AsMap::from_sorted_vec(ases);
    (vip_key(frontend), vip, weights)
}

/// The desired state of every frontend in `config`.
///
/// The cost is proportional to the number of pool memberships: one hash lookup each, no
/// allocation per membership (names are borrowed from `config`), and maps built from sorted
/// runs rather than by repeated insertion.
#[must_use]
pub fn desired_state<'a>(
    config: &'a Config,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> Desired<'a> {
    let resolver = Resolver::new(
        config
            .backends
            .iter()
            .map(|(name, backend)| (name.as_str(), backend)),
        states,
    );
    let mut scratch = Scratch::default();
    let mut vips = Vec::with_capacity(config.frontends.len());
    let mut frontends = Vec::with_capacity(config.frontends.len());
    for frontend in &config.frontends {
        let (key, vip, weights) = build_vip(frontend, &resolver, overrides, &mut scratch);
        vips.push((key, vip));
        frontends.push((frontend.name.clone(), weights));
    }
    // Validation guarantees distinct VIP keys; keep the first if not (stable sort, `dedup_by`
    // keeps the first). Frontend names are unique too; `collect` keeps the last, as
    // repeated insertion would.
    vips.sort_by_key(|a| a.0);
    vips.dedup_by(|later, earlier| later.0 == earlier.0);
    Desired {
        vpp: VppState {
            vips: vips.into_iter().collect(),
        },
        frontends: frontends.into_iter().collect(),
    }
}

/// The one-time flushes a backend's transition `from` → `to` asks for: its address in every
/// frontend that uses it and whose rules make `to` a flushing state (see
/// [`transition_flushes`]). Pass the result to [`crate::plan::plan`].
#[must_use]
pub fn flush_targets(
    config: &Config,
    backend: &str,
    from: BackendState,
    to: BackendState,
) -> FlushSet {
    let mut set = FlushSet::new();
    let Some(b) = config.backend(backend) else {
        return set;
    };
    for frontend in &config.frontends {
        if frontend.membership(backend).is_some()
            && transition_flushes(from, to, frontend.flush_on_down)
        {
            set.insert(vip_key(frontend), b.address);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use super::{Key, Resolver};
    use crate::config::Backend;
    use crate::weights::BackendState;

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

    fn resolver(names: &[String]) -> (Resolver, Vec<IpAddr>) {
        let backends: BTreeMap<String, Backend> = names
            .iter()
            .zip(1u8..)
            .map(|(name, i)| {
                let backend = Backend {
                    name: name.clone(),
                    address: IpAddr::from([10, 0, 0, i]),
                    healthcheck: None,
                    enabled: true,
                };
                (name.clone(), backend)
            })
            .collect();
        let states = BTreeMap::from([(names[1].clone(), BackendState::Up)]);
        let resolver = Resolver::new(backends.iter().map(|(n, b)| (n.as_str(), b)), &states);
        let addresses = names.iter().map(|n| backends[n].address).collect();
        (resolver, addresses)
    }

    #[test]
    fn every_name_finds_its_own_backend() {
        let names = names();
        let (resolver, addresses) = resolver(&names);
        for (i, (name, address)) in names.iter().zip(&addresses).enumerate() {
            let state = if i == 1 {
                BackendState::Up
            } else {
                BackendState::Unknown
            };
            assert_eq!(resolver.get(&resolver.key(name)), Some((state, *address)));
        }
        for unknown in ["", "b", "b00", "b0\0\0", &"h".repeat(33), &"h".repeat(64)] {
            assert_eq!(resolver.get(&resolver.key(unknown)), None, "{unknown:?}");
        }
    }

    #[test]
    fn names_whose_hashes_collide_stay_apart() {
        let names = names();
        let (resolver, _) = resolver(&names);
        for name in &names {
            for other in names.iter().filter(|other| *other != name) {
                // `name` probing from `other`'s slot with `other`'s tag, as if their hashes
                // were equal: the length, the head or the rest of the name must differ.
                let forged = Key {
                    hash: resolver.key(other).hash,
                    ..resolver.key(name)
                };
                assert_ne!(
                    resolver.find(&forged).ok(),
                    resolver.find(&resolver.key(other)).ok(),
                    "{name:?} taken for {other:?}"
                );
            }
        }
    }
}
