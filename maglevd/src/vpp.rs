//! The VPP reconciler task (placeholder until the VPP libraries land).

use std::sync::Arc;

use maglev_core::config::Config;
use maglev_health::checker::Checker;
use maglev_health::machine::Transition;
use tokio::sync::{broadcast, watch};

use crate::cli::VppTarget;

/// Runs until `shutdown` turns true.
pub async fn run(
    target: VppTarget,
    _checker: Checker,
    _config: watch::Receiver<Arc<Config>>,
    _transitions: broadcast::Receiver<Transition>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::warn!(name: "vpp-unavailable", target = ?target, "vpp integration not built yet: health checking only");
    let _ = shutdown.wait_for(|stop| *stop).await;
}
