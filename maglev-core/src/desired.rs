//! The desired VPP state: what the config and the backends' states say VPP should hold.
//!
//! For every frontend: one VIP (prefix, protocol, port, encap from its family, `src-ip-sticky`,
//! table length) whose ASes are every backend of every pool, with the weight and flush hint of
//! [`crate::weights::backend_weight`]. Backends in a standby pool, down, paused or disabled stay
//! installed with weight 0, so re-enabling them never needs an AS add; a `removed` backend is
//! left out, so its AS is deleted. A backend listed in several pools counts with its first
//! pool; two backends with the same address count once, the first in pool order.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use crate::config::{Backend, Config, Frontend};
use crate::plan::{As, FlushSet, Vip, VipKey, VppState};
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

/// Backend name → (state, address), resolved once per build: one hash lookup per pool
/// membership, with a cheap seeded hasher.
struct Resolver<'a>(HashMap<&'a str, (BackendState, IpAddr), BuildSeeded>);

impl<'a> Resolver<'a> {
    fn new<'b>(
        backends: impl Iterator<Item = (&'a str, &'b Backend)>,
        states: &impl BackendStates,
    ) -> Self {
        let mut map = HashMap::with_hasher(BuildSeeded::new());
        map.extend(
            backends.map(|(name, backend)| (name, (states.state_of(name), backend.address))),
        );
        Self(map)
    }

    fn get(&self, name: &str) -> Option<&(BackendState, IpAddr)> {
        self.0.get(name)
    }
}

/// Builds [`Seeded`] hashers with a seed drawn once per table from the standard library's
/// random keys, so colliding names cannot be chosen in advance.
#[derive(Clone)]
struct BuildSeeded(u64);

impl BuildSeeded {
    fn new() -> Self {
        Self(std::hash::RandomState::new().hash_one(0x6d61_676c_6576_u64))
    }
}

impl BuildHasher for BuildSeeded {
    type Hasher = Seeded;
    fn build_hasher(&self) -> Seeded {
        Seeded(self.0)
    }
}

/// A multiply-and-rotate hasher over whole words: a few cycles for a short name, where SipHash
/// takes tens of nanoseconds.
struct Seeded(u64);

impl Hasher for Seeded {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        // Fold the high bits, which the multiplication mixes best, into the low ones.
        self.0 ^ (self.0 >> 29)
    }
}

/// Buffers reused from one frontend to the next.
#[derive(Default)]
struct Scratch {
    states: Vec<BackendState>,
    addresses: Vec<Option<IpAddr>>,
    ases: Vec<(IpAddr, As)>,
}

/// The desired VIP of one frontend and the decisions behind it.
#[must_use]
pub fn desired_vip<'a>(
    config: &Config,
    frontend: &'a Frontend,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> (VipKey, Vip, FrontendWeights<'a>) {
    let resolver = Resolver::new(
        frontend
            .backend_names()
            .filter_map(|name| Some((name, config.backend(name)?))),
        states,
    );
    build_vip(frontend, &resolver, overrides, &mut Scratch::default())
}

fn build_vip<'a>(
    frontend: &'a Frontend,
    resolver: &Resolver<'_>,
    overrides: &WeightOverrides,
    scratch: &mut Scratch,
) -> (VipKey, Vip, FrontendWeights<'a>) {
    let Scratch {
        states,
        addresses,
        ases,
    } = scratch;
    addresses.clear();
    // A name the config does not know (only in a hand-built config) is `unknown` and gets no AS.
    let weights = weigh(frontend, overrides, states, |name| {
        let resolved = resolver.get(name);
        addresses.push(resolved.map(|&(_, address)| address));
        resolved.map_or(BackendState::Unknown, |&(state, _)| state)
    });
    ases.clear();
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
    vip.ases = ases.drain(..).collect();
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
