//! The desired VPP state: what the config and the backends' states say VPP should hold.
//!
//! For every frontend: one VIP (prefix, protocol, port, encap from its family, `src-ip-sticky`,
//! table length) whose ASes are every backend of every pool, with the weight and flush hint of
//! [`crate::weights::backend_weight`]. Backends in a standby pool, down, paused or disabled stay
//! installed with weight 0, so re-enabling them never needs an AS add; a `removed` backend is
//! left out, so its AS is deleted. A backend listed in several pools counts with its first
//! pool; two backends with the same address count once, the first in pool order.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::config::{Config, Frontend};
use crate::plan::{As, FlushSet, Vip, VipKey, VppState};
use crate::weights::{
    BackendState, BackendStates, FrontendWeights, WeightOverrides, effective_weights,
    transition_flushes,
};

/// The desired state with the per-frontend decisions behind it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desired {
    /// What VPP should hold.
    pub vpp: VppState,
    /// Each frontend's active pool, effective weights and state, by frontend name.
    pub frontends: BTreeMap<String, FrontendWeights>,
}

/// The VIP key of a frontend.
#[must_use]
pub fn vip_key(frontend: &Frontend) -> VipKey {
    VipKey::new(frontend.prefix, frontend.protocol.ip_proto(), frontend.port)
}

/// Backend name → (state, address), resolved once per build: one hash lookup per pool
/// membership instead of two ordered-map searches.
struct Resolved<'a>(HashMap<&'a str, (BackendState, IpAddr)>);

impl<'a> Resolved<'a> {
    fn new(config: &'a Config, states: &impl BackendStates) -> Self {
        Self(
            config
                .backends
                .iter()
                .map(|(name, b)| (name.as_str(), (states.state_of(name), b.address)))
                .collect(),
        )
    }
}

impl BackendStates for Resolved<'_> {
    fn get_state(&self, backend: &str) -> Option<BackendState> {
        self.0.get(backend).map(|&(state, _)| state)
    }
}

/// The desired VIP of one frontend and the decisions behind it.
#[must_use]
pub fn desired_vip(
    config: &Config,
    frontend: &Frontend,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> (VipKey, Vip, FrontendWeights) {
    let resolved = Resolved(
        frontend
            .backend_names()
            .filter_map(|name| {
                let b = config.backend(name)?;
                Some((name, (states.state_of(name), b.address)))
            })
            .collect(),
    );
    build_vip(frontend, &resolved, overrides)
}

fn build_vip(
    frontend: &Frontend,
    resolved: &Resolved<'_>,
    overrides: &WeightOverrides,
) -> (VipKey, Vip, FrontendWeights) {
    let weights = effective_weights(frontend, resolved, overrides);
    let mut vip = Vip::new(
        frontend.encap.into(),
        frontend.src_ip_sticky,
        frontend.new_flows_table_length,
    );
    // Keyed by address, the first membership wins: a backend's first pool, and the first of
    // two backends sharing an address.
    for member in weights.pools.iter().flat_map(|p| p.members.iter()) {
        if member.state == BackendState::Removed {
            continue;
        }
        let Some(&(_, address)) = resolved.0.get(member.backend.as_str()) else {
            continue;
        };
        vip.ases.entry(address).or_insert(As {
            weight: member.effective.weight,
            flush: member.effective.flush,
        });
    }
    (vip_key(frontend), vip, weights)
}

/// The desired state of every frontend in `config`.
#[must_use]
pub fn desired_state(
    config: &Config,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> Desired {
    let resolved = Resolved::new(config, states);
    let mut desired = Desired::default();
    for frontend in &config.frontends {
        let (key, vip, weights) = build_vip(frontend, &resolved, overrides);
        // Validation guarantees distinct VIP keys; keep the first if not.
        desired.vpp.vips.entry(key).or_insert(vip);
        desired.frontends.insert(frontend.name.clone(), weights);
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
