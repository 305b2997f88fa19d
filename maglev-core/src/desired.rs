//! The desired VPP state: what the config and the backends' states say VPP should hold.
//!
//! For every frontend: one VIP (prefix, protocol, port, encap from its family, `src-ip-sticky`,
//! table length) whose ASes are every backend of every pool, with the weight and flush hint of
//! [`crate::weights::backend_weight`]. Backends in a standby pool, down, paused or disabled stay
//! installed with weight 0, so re-enabling them never needs an AS add; a `removed` backend is
//! left out, so its AS is deleted. A backend listed in several pools counts with its first
//! pool; two backends with the same address count once, the first in pool order.

use std::collections::BTreeMap;

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

/// The desired VIP of one frontend and the decisions behind it.
#[must_use]
pub fn desired_vip(
    config: &Config,
    frontend: &Frontend,
    states: &impl BackendStates,
    overrides: &WeightOverrides,
) -> (VipKey, Vip, FrontendWeights) {
    let weights = effective_weights(frontend, states, overrides);
    let mut vip = Vip::new(
        frontend.encap.into(),
        frontend.src_ip_sticky,
        frontend.new_flows_table_length,
    );
    let mut seen = std::collections::BTreeSet::new();
    for member in weights.pools.iter().flat_map(|p| p.members.iter()) {
        if !seen.insert(member.backend.as_str()) || member.state == BackendState::Removed {
            continue;
        }
        let Some(backend) = config.backend(&member.backend) else {
            continue;
        };
        vip.ases.entry(backend.address).or_insert(As {
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
    let mut desired = Desired::default();
    for frontend in &config.frontends {
        let (key, vip, weights) = desired_vip(config, frontend, states, overrides);
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
