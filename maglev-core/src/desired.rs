//! The desired VPP state: what the config and the backends' states say VPP should hold.
//!
//! For every frontend: one VIP (prefix, protocol, port, encap from its family, `src-ip-sticky`,
//! table length) whose ASes are every backend of every pool, with the weight and flush hint of
//! [`crate::weights::backend_weight`]. Backends in a standby pool, down, paused or disabled stay
//! installed with weight 0, so re-enabling them never needs an AS add; a `removed` backend is
//! left out, so its AS is deleted. A backend listed in several pools counts with its first
//! pool; two backends with the same address count once, the first in pool order; of two
//! frontends with the same VIP key (only in a hand-built config), the first.
//!
//! The build ([`desired_state`], [`desired_frontends`]) walks a [`ConfigIndex`], prepared once
//! per config, with the backends' states as a dense slice by backend number
//! ([`ConfigIndex::backend_states`]): per membership it reads a backend number, a weight and a
//! state, and writes one AS; nothing is looked up by name and nothing is allocated per
//! membership (one vector of ASes per VIP).
//!
//! What it records: the VIPs, and per frontend only what the sync engine reads, its state and
//! active pool ([`FrontendSummary`]). Each membership's decision (configured and effective
//! weight, state) is not kept: at 10,000 frontends × 100 backends that was 24 MB in 20,000
//! vectors, the largest cost of the build, and only the API's per-frontend view reads it; that
//! view calls [`desired_vip`], which computes one frontend's VIP with its decisions.

use std::net::IpAddr;

use crate::config::{Config, Frontend};
use crate::index::ConfigIndex;
use crate::plan::{As, AsMap, FlushSet, Vip, VipKey, VppState};
use crate::weights::{
    BackendState, BackendStates, FrontendState, FrontendWeights, WeightOverrides, backend_weight,
    transition_flushes, weigh,
};

/// The desired state with, per frontend, the decisions the sync engine reads. Names borrow
/// from the config of the [`ConfigIndex`] it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desired<'a> {
    /// What VPP should hold.
    pub vpp: VppState,
    /// Each frontend built, in config order (for [`desired_frontends`], in the order asked).
    pub frontends: Vec<FrontendSummary<'a>>,
}

/// A frontend's aggregate decisions: its state and active pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrontendSummary<'a> {
    /// The frontend's name.
    pub name: &'a str,
    /// Index of the active pool in the frontend's pools.
    pub active_pool: usize,
    /// The active pool's name (empty for a frontend without pools).
    pub active_pool_name: &'a str,
    /// Aggregate state.
    pub state: FrontendState,
}

impl<'a> FrontendSummary<'a> {
    /// The summary of `frontend`'s full decisions.
    #[must_use]
    pub fn of(frontend: &'a Frontend, weights: &FrontendWeights<'_>) -> Self {
        Self::new(frontend, weights.active_pool, weights.state)
    }

    fn new(frontend: &'a Frontend, active_pool: usize, state: FrontendState) -> Self {
        Self {
            name: &frontend.name,
            active_pool,
            active_pool_name: frontend
                .pools
                .get(active_pool)
                .map_or("", |pool| pool.name.as_str()),
            state,
        }
    }
}

/// The VIP key of a frontend.
#[must_use]
pub fn vip_key(frontend: &Frontend) -> VipKey {
    VipKey::new(frontend.prefix, frontend.protocol.ip_proto(), frontend.port)
}

/// The desired VIP of one frontend and every membership's decision: the straightforward
/// build, by name (a name `config` lacks is `unknown` and gets no AS), for one frontend at a
/// time.
#[must_use]
pub fn desired_vip<'a>(
    config: &Config,
    frontend: &'a Frontend,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> (VipKey, Vip, FrontendWeights<'a>) {
    let mut addresses: Vec<Option<IpAddr>> = Vec::new();
    let weights = weigh(frontend, overrides, &mut Vec::new(), |name| {
        let backend = config.backend(name);
        addresses.push(backend.map(|b| b.address));
        backend.map_or(BackendState::Unknown, |_| states.state_of(name))
    });
    let mut ases: Vec<(IpAddr, As)> = weights
        .pools
        .iter()
        .flat_map(|pool| pool.members.iter())
        .zip(addresses)
        .filter(|(member, _)| member.state != BackendState::Removed)
        .filter_map(|(member, address)| {
            let weight = As {
                weight: member.effective.weight,
                flush: member.effective.flush,
            };
            Some((address?, weight))
        })
        .collect();
    // Keyed by address, the first membership wins: the sort is stable and `dedup_by` keeps
    // the first.
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

/// Buffers reused from one frontend to the next.
#[derive(Default)]
struct Scratch {
    /// Each membership's backend state.
    states: Vec<BackendState>,
    /// Each membership's decision.
    decisions: Vec<As>,
}

/// Frontend number `f` of `index`: its summary and, when `with_vip`, its VIP.
fn build_frontend<'a>(
    index: &'a ConfigIndex,
    f: usize,
    states: &[BackendState],
    overrides: &WeightOverrides,
    scratch: &mut Scratch,
    with_vip: bool,
) -> (FrontendSummary<'a>, Option<Vip>) {
    let frontend = &index.config().frontends[f];
    let members = index.members(f);
    let Scratch {
        states: member_states,
        decisions,
    } = scratch;
    member_states.clear();
    member_states.extend(
        members
            .backends
            .iter()
            .map(|&b| states.get(b as usize).copied().unwrap_or_default()),
    );
    let active_pool = members
        .pool_ends
        .ranges()
        .position(|pool| member_states[pool].contains(&BackendState::Up))
        .unwrap_or(0);
    let frontend_overrides = if overrides.is_empty() {
        None
    } else {
        overrides.of_frontend(&frontend.name)
    };
    decisions.clear();
    // The flush half of the rule as a table by state (`ALL` is in declaration order, so
    // `state as usize` indexes it): the states are mixed, and a branch per membership
    // mispredicts.
    let flushes = BackendState::ALL.map(|state| state.flushes(frontend.flush_on_down));
    let mut any_weight = false;
    let mut all_unknown = true;
    for ((p, range), pool) in members.pool_ends.ranges().enumerate().zip(&frontend.pools) {
        let pool_overrides = frontend_overrides.and_then(|pools| pools.get(&pool.name));
        let start = range.start;
        for i in range {
            let state = member_states[i];
            let mut configured = members.weights[i];
            if let Some(weight) =
                pool_overrides.and_then(|o| o.get(&pool.backends.get(i - start)?.backend))
            {
                configured = *weight;
            }
            let weight = backend_weight(state, p, active_pool, configured, false).weight;
            any_weight |= weight > 0;
            all_unknown &= state == BackendState::Unknown;
            decisions.push(As {
                weight,
                flush: flushes[state as usize],
            });
        }
    }
    let state = if any_weight {
        FrontendState::Up
    } else if all_unknown {
        FrontendState::Unknown
    } else {
        FrontendState::Down
    };
    let summary = FrontendSummary::new(frontend, active_pool, state);
    if !with_vip {
        return (summary, None);
    }
    // In address order, the first membership of an address wins; unknown backends come last
    // and get no AS.
    let mut ases = Vec::with_capacity(members.as_order.len());
    let mut last = None;
    for &offset in members.as_order {
        let offset = offset as usize;
        let Some(address) = index.address_of(members.backends[offset]) else {
            break;
        };
        if member_states[offset] == BackendState::Removed || last == Some(address) {
            continue;
        }
        last = Some(address);
        ases.push((address, decisions[offset]));
    }
    let mut vip = Vip::new(
        frontend.encap.into(),
        frontend.src_ip_sticky,
        frontend.new_flows_table_length,
    );
    vip.ases = AsMap::from_strictly_sorted(ases);
    (summary, Some(vip))
}

/// The desired state of every frontend of `index`'s config, with `states` by backend number
/// (see [`ConfigIndex::backend_states`]; a number past its end is `unknown`).
///
/// The cost is proportional to the number of pool memberships, with no name lookup and no
/// allocation per membership.
#[must_use]
pub fn desired_state<'a>(
    index: &'a ConfigIndex,
    states: &[BackendState],
    overrides: &WeightOverrides,
) -> Desired<'a> {
    let frontends = index.config().frontends.len();
    let mut scratch = Scratch::default();
    let mut summaries = Vec::with_capacity(frontends);
    let mut vips: Vec<Option<Vip>> = Vec::with_capacity(frontends);
    // Only the first frontend of a VIP key builds that VIP.
    let mut owners = vec![false; frontends];
    for &f in index.vip_order() {
        owners[f as usize] = true;
    }
    for (f, &owner) in owners.iter().enumerate() {
        let (summary, vip) = build_frontend(index, f, states, overrides, &mut scratch, owner);
        summaries.push(summary);
        vips.push(vip);
    }
    // Already in key order: the map is built without a real sort.
    let vips = index
        .vip_order()
        .iter()
        .filter_map(|&f| Some((index.vips()[f as usize], vips[f as usize].take()?)))
        .collect();
    Desired {
        vpp: VppState { vips },
        frontends: summaries,
    }
}

/// The desired state of some frontends of `index`'s config, by number (numbers past the end
/// are skipped), for a sync of those VIPs only. Of two with the same VIP key, the first given
/// builds it.
#[must_use]
pub fn desired_frontends<'a>(
    index: &'a ConfigIndex,
    frontends: &[usize],
    states: &[BackendState],
    overrides: &WeightOverrides,
) -> Desired<'a> {
    let mut scratch = Scratch::default();
    let mut desired = Desired::default();
    for &f in frontends {
        let Some(key) = index.vip(f) else {
            continue;
        };
        let owner = !desired.vpp.vips.contains_key(&key);
        let (summary, vip) = build_frontend(index, f, states, overrides, &mut scratch, owner);
        desired.frontends.push(summary);
        if let Some(vip) = vip {
            desired.vpp.vips.insert(key, vip);
        }
    }
    desired
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
