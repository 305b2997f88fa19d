//! Backend states to weights: active pool, effective weight, flush, frontend state.
//!
//! These are the rules of the product spec (Part A.3), as pure functions:
//!
//! | backend state | weight sent to VPP | flush |
//! |---|---|---|
//! | `up`, in the active pool | the pool weight | no |
//! | `up`, in another pool (standby) | 0 | no |
//! | `down` | 0 | iff the frontend's `flush-on-down` |
//! | `disabled` | 0 | yes |
//! | `paused`, `unknown` | 0 | no |
//! | `removed` | the AS is deleted (deletion always flushes) | yes |
//!
//! The active pool is the first pool with at least one `up` backend (pool 0 when none has one).
//! A frontend is `up` iff some backend has a weight above 0, `unknown` iff every backend is
//! still `unknown`, and `down` otherwise.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::config::Frontend;

/// Largest weight VPP's `lb` plugin accepts from us (the CLI limit; the API does not check).
pub const MAX_WEIGHT: u8 = 100;

/// The state of a backend. The health checker's state machine (`maglev-health`) uses this
/// same type, so the decisions here take its states as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum BackendState {
    /// Not yet known: just started, resumed or enabled.
    #[default]
    Unknown,
    /// Healthy.
    Up,
    /// Failed enough probes.
    Down,
    /// Health checking stopped by an operator; existing flows drain.
    Paused,
    /// Disabled by an operator; existing flows are flushed.
    Disabled,
    /// Gone from the config.
    Removed,
}

impl BackendState {
    /// Every state, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Unknown,
        Self::Up,
        Self::Down,
        Self::Paused,
        Self::Disabled,
        Self::Removed,
    ];

    /// The lower-case name (`unknown`, `up`, `down`, `paused`, `disabled`, `removed`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
            Self::Removed => "removed",
        }
    }

    /// Whether this state is set by an operator or the config rather than by probes
    /// (`paused`, `disabled`, `removed`). No probes run in these states.
    #[must_use]
    pub const fn is_operator(self) -> bool {
        matches!(self, Self::Paused | Self::Disabled | Self::Removed)
    }

    /// Whether being in this state asks VPP to flush the backend's existing flows, for a
    /// frontend with the given `flush-on-down`.
    #[must_use]
    pub fn flushes(self, flush_on_down: bool) -> bool {
        match self {
            Self::Disabled | Self::Removed => true,
            Self::Down => flush_on_down,
            Self::Unknown | Self::Up | Self::Paused => false,
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a transition `from` → `to` calls for a one-time flush of the backend's flows in a
/// frontend with the given `flush-on-down`: it enters a flushing state it was not in.
///
/// The caller puts such backends into the plan's flush set
/// ([`FlushSet`](crate::plan::FlushSet)), so VPP gets `lb_as_set_weight(0, is_flush)` once
/// even when it already holds weight 0.
#[must_use]
pub fn transition_flushes(from: BackendState, to: BackendState, flush_on_down: bool) -> bool {
    from != to && to.flushes(flush_on_down)
}

/// The weight and flush decision for one backend of one frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AsWeight {
    /// Weight for VPP, 0 to [`MAX_WEIGHT`].
    pub weight: u8,
    /// Whether the backend is in a flushing state: when VPP's weight drops to 0, drop its
    /// existing flows too.
    pub flush: bool,
}

/// The rule of Part A.3: the weight and flush of a backend in `state`, member of pool
/// `pool_index` with `pool_weight`, while `active_pool` is active. Weights above
/// [`MAX_WEIGHT`] are clamped.
#[must_use]
pub fn backend_weight(
    state: BackendState,
    pool_index: usize,
    active_pool: usize,
    pool_weight: u8,
    flush_on_down: bool,
) -> AsWeight {
    let weight = match state {
        BackendState::Up if pool_index == active_pool => pool_weight.min(MAX_WEIGHT),
        _ => 0,
    };
    AsWeight {
        weight,
        flush: state.flushes(flush_on_down),
    }
}

/// The active pool: the index of the first pool with at least one `up` backend, or 0 when no
/// pool has one (every weight is then 0 anyway).
pub fn active_pool_index<P, B>(pools: P) -> usize
where
    P: IntoIterator<Item = B>,
    B: IntoIterator<Item = BackendState>,
{
    pools
        .into_iter()
        .position(|pool| pool.into_iter().any(|s| s == BackendState::Up))
        .unwrap_or(0)
}

/// Aggregate state of a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FrontendState {
    /// Every backend is still `unknown` (or there is none).
    #[default]
    Unknown,
    /// At least one backend has a weight above 0.
    Up,
    /// Otherwise.
    Down,
}

impl FrontendState {
    /// The lower-case name (`unknown`, `up`, `down`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl fmt::Display for FrontendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frontend's state from its backends' `(state, effective weight)` pairs.
pub fn frontend_state<I>(backends: I) -> FrontendState
where
    I: IntoIterator<Item = (BackendState, u8)>,
{
    let mut all_unknown = true;
    for (state, weight) in backends {
        if weight > 0 {
            return FrontendState::Up;
        }
        all_unknown &= state == BackendState::Unknown;
    }
    if all_unknown {
        FrontendState::Unknown
    } else {
        FrontendState::Down
    }
}

/// Orders addresses numerically, IPv4 before IPv6, the order ASes are sent to VPP in.
/// (`IpAddr`'s own `Ord` is exactly this; the function names the intent.)
#[must_use]
pub fn cmp_numeric(a: &IpAddr, b: &IpAddr) -> Ordering {
    a.cmp(b)
}

/// Sorts addresses numerically, IPv4 before IPv6 (see [`cmp_numeric`]).
pub fn sort_numeric(addresses: &mut [IpAddr]) {
    addresses.sort_unstable_by(cmp_numeric);
}

/// Where backend states come from: a map from backend name to state. A backend it does not
/// know is [`BackendState::Unknown`].
pub trait BackendStates {
    /// The state of `backend`, or `None` when unknown to this source.
    fn get_state(&self, backend: &str) -> Option<BackendState>;

    /// The state of `backend`, [`BackendState::Unknown`] when not known.
    fn state_of(&self, backend: &str) -> BackendState {
        self.get_state(backend).unwrap_or_default()
    }
}

impl BackendStates for BTreeMap<String, BackendState> {
    fn get_state(&self, backend: &str) -> Option<BackendState> {
        self.get(backend).copied()
    }
}

impl<S: BuildHasher> BackendStates for HashMap<String, BackendState, S> {
    fn get_state(&self, backend: &str) -> Option<BackendState> {
        self.get(backend).copied()
    }
}

/// Runtime weight overrides (`SetFrontendPoolBackendWeight`), keyed by frontend, pool and
/// backend name. They replace the configured pool weight until cleared or the config reloads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightOverrides {
    by_frontend: BTreeMap<String, BTreeMap<String, BTreeMap<String, u8>>>,
}

impl WeightOverrides {
    /// No overrides.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight of `backend` in `pool` of `frontend` (clamped to [`MAX_WEIGHT`]).
    pub fn set(&mut self, frontend: &str, pool: &str, backend: &str, weight: u8) {
        self.by_frontend
            .entry(frontend.to_owned())
            .or_default()
            .entry(pool.to_owned())
            .or_default()
            .insert(backend.to_owned(), weight.min(MAX_WEIGHT));
    }

    /// Removes one override; returns the weight it held.
    pub fn remove(&mut self, frontend: &str, pool: &str, backend: &str) -> Option<u8> {
        let pools = self.by_frontend.get_mut(frontend)?;
        let members = pools.get_mut(pool)?;
        let weight = members.remove(backend);
        if members.is_empty() {
            pools.remove(pool);
        }
        if pools.is_empty() {
            self.by_frontend.remove(frontend);
        }
        weight
    }

    /// The override for `backend` in `pool` of `frontend`, if any.
    #[must_use]
    pub fn get(&self, frontend: &str, pool: &str, backend: &str) -> Option<u8> {
        self.by_frontend
            .get(frontend)?
            .get(pool)?
            .get(backend)
            .copied()
    }

    /// The overrides of `frontend`, by pool then backend name.
    pub(crate) fn of_frontend(
        &self,
        frontend: &str,
    ) -> Option<&BTreeMap<String, BTreeMap<String, u8>>> {
        self.by_frontend.get(frontend)
    }

    /// Whether there is no override at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_frontend.is_empty()
    }

    /// Drops every override.
    pub fn clear(&mut self) {
        self.by_frontend.clear();
    }

    /// Keeps only the overrides for which `keep(frontend, pool, backend)` holds (a reload
    /// keeps the ones whose names still exist).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str, &str) -> bool) {
        self.by_frontend.retain(|frontend, pools| {
            pools.retain(|pool, members| {
                members.retain(|backend, _| keep(frontend, pool, backend));
                !members.is_empty()
            });
            !pools.is_empty()
        });
    }
}

/// One pool membership with its decision, for observability. It borrows the backend's name
/// from the config it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberWeight<'a> {
    /// Backend name.
    pub backend: &'a str,
    /// The weight configured for this membership (or its runtime override).
    pub configured: u8,
    /// The backend's state.
    pub state: BackendState,
    /// The effective weight and flush decision.
    pub effective: AsWeight,
}

/// One pool of a frontend with its members' decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolWeights<'a> {
    /// Pool name.
    pub name: &'a str,
    /// Members in config order.
    pub members: Vec<MemberWeight<'a>>,
}

/// The decisions for one frontend: which pool is active, each member's effective weight, and
/// the frontend's aggregate state. Names are borrowed from the config, so computing the
/// decisions allocates nothing per membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendWeights<'a> {
    /// Index of the active pool in [`FrontendWeights::pools`].
    pub active_pool: usize,
    /// Pools in config order.
    pub pools: Vec<PoolWeights<'a>>,
    /// Aggregate state.
    pub state: FrontendState,
}

impl FrontendWeights<'_> {
    /// The effective weight of `backend` in pool number `pool`, if it is a member there.
    #[must_use]
    pub fn weight(&self, pool: usize, backend: &str) -> Option<u8> {
        self.pools
            .get(pool)?
            .members
            .iter()
            .find(|m| m.backend == backend)
            .map(|m| m.effective.weight)
    }
}

/// Runs the rules over one frontend: active pool, every membership's effective weight and
/// flush, and the frontend state. A backend listed in several pools gets a decision per
/// membership; VPP receives the first pool's (see [`crate::desired`]).
#[must_use]
pub fn effective_weights<'a>(
    frontend: &'a Frontend,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> FrontendWeights<'a> {
    weigh(frontend, overrides, &mut Vec::new(), |name| {
        states.state_of(name)
    })
}

/// The rules over one frontend, with the state lookup supplied by the caller: `state_of` is
/// called exactly once per membership, in pool order then member order. `scratch` is a
/// buffer reused between calls.
pub(crate) fn weigh<'a, F>(
    frontend: &'a Frontend,
    overrides: &WeightOverrides,
    scratch: &mut Vec<BackendState>,
    mut state_of: F,
) -> FrontendWeights<'a>
where
    F: FnMut(&'a str) -> BackendState,
{
    scratch.clear();
    scratch.extend(
        frontend
            .pools
            .iter()
            .flat_map(|pool| pool.backends.iter())
            .map(|member| state_of(&member.backend)),
    );
    let mut rest = scratch.as_slice();
    let active_pool = active_pool_index(frontend.pools.iter().map(|pool| {
        let (this, next) = rest.split_at(pool.backends.len().min(rest.len()));
        rest = next;
        this.iter().copied()
    }));
    let mut states = scratch.iter().copied();
    let frontend_overrides = overrides.by_frontend.get(&frontend.name);
    let pools: Vec<PoolWeights<'a>> = frontend
        .pools
        .iter()
        .enumerate()
        .map(|(index, pool)| {
            let pool_overrides = frontend_overrides.and_then(|pools| pools.get(&pool.name));
            PoolWeights {
                name: &pool.name,
                members: pool
                    .backends
                    .iter()
                    .zip(states.by_ref())
                    .map(|(member, state)| {
                        let configured = pool_overrides
                            .and_then(|members| members.get(&member.backend).copied())
                            .unwrap_or(member.weight);
                        MemberWeight {
                            backend: &member.backend,
                            configured,
                            state,
                            effective: backend_weight(
                                state,
                                index,
                                active_pool,
                                configured,
                                frontend.flush_on_down,
                            ),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let state = frontend_state(
        pools
            .iter()
            .flat_map(|p| p.members.iter())
            .map(|m| (m.state, m.effective.weight)),
    );
    FrontendWeights {
        active_pool,
        pools,
        state,
    }
}
