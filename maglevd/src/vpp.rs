//! maglevd's VPP glue: where VPP is ([`VppTarget`]), the in-process simulator of the demo
//! ([`EmbeddedSim`]), and the wiring of the checker into the sync engine
//! ([`maglev_vpp::syncer::LbSyncer`]): the checker's transitions are forwarded into
//! [`LbSyncer::transition`] by a tiny task ([`LbSyncer::lagged`] when the subscription
//! lagged), and the syncer reads backend states from the checker's snapshot. Everything else
//! (connection, warmup, coalescing, dumps, plans, pipelined operations) is `maglev-vpp`'s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use maglev_core::config::Config;
use maglev_core::weights::BackendState;
use maglev_health::checker::{Checker, Prober};
use maglev_health::machine::Transition;
use maglev_vpp::syncer::{LbSyncer, SyncerOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::cli::VppTarget;

/// The running VPP integration: the syncer, the forwarding task, the simulator if embedded.
pub struct Vpp {
    /// The sync engine's handle.
    pub syncer: LbSyncer,
    /// The binary API messages the syncer's client sent and received.
    pub api: maglev_vpp::metrics::ApiCounters,
    forwarder: JoinHandle<()>,
    _sim: Option<EmbeddedSim>,
}

impl Vpp {
    /// Starts the VPP integration for `target`: `None` when it is disabled (health checking
    /// only). `transitions` must be subscribed before the checker's first config is applied,
    /// so that no transition is missed.
    ///
    /// # Errors
    ///
    /// When the embedded simulator cannot start.
    pub async fn start<P: Prober>(
        target: VppTarget,
        config: Arc<Config>,
        checker: Checker<P>,
        transitions: broadcast::Receiver<Transition>,
    ) -> anyhow::Result<Option<Self>> {
        let (api, stats, sim) = match target {
            VppTarget::Disabled => {
                tracing::info!(name: "vpp-disabled", detail = "health checking only", "vpp-disabled");
                return Ok(None);
            }
            VppTarget::Socket { api, stats } => (api, stats, None),
            VppTarget::Embedded => {
                let sim = EmbeddedSim::start().await?;
                (sim.api_socket(), sim.stats_socket(), Some(sim))
            }
        };
        let mut options = SyncerOptions::new(api);
        options.stats_socket = stats;
        let api = maglev_vpp::metrics::ApiCounters::new();
        options.client = options.client.metrics(Arc::new(api.clone()));
        let syncer = LbSyncer::start(options, config, move || backend_states(&checker));
        let forwarder = tokio::spawn(forward(transitions, syncer.clone()));
        Ok(Some(Self {
            syncer,
            api,
            forwarder,
            _sim: sim,
        }))
    }

    /// Stops forwarding, then the syncer (closing the VPP session), then the simulator.
    pub async fn shutdown(self) {
        self.forwarder.abort();
        self.syncer.shutdown().await;
    }
}

/// The checker's backend states by name, as the syncer and the event hub read them.
pub(crate) fn backend_states<P: Prober>(checker: &Checker<P>) -> HashMap<String, BackendState> {
    checker
        .statuses()
        .into_iter()
        .map(|b| (b.name.to_string(), b.state))
        .collect()
}

/// Forwards the checker's transitions into the syncer until the checker is gone.
pub async fn forward(mut transitions: broadcast::Receiver<Transition>, syncer: LbSyncer) {
    loop {
        match transitions.recv().await {
            Ok(t) => syncer.transition(&t.backend, t.from, t.to),
            Err(broadcast::error::RecvError::Lagged(missed)) => syncer.lagged(missed),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The in-process simulator of the default mode, on sockets in a private temporary
/// directory that is removed when it stops.
pub struct EmbeddedSim {
    handle: vpp_sim::SimHandle,
    dir: PathBuf,
}

impl EmbeddedSim {
    /// Starts the simulator.
    ///
    /// # Errors
    ///
    /// When the directory or the sockets cannot be created.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("maglevd-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut cfg = vpp_sim::SimConfig::new(dir.join("api.sock"));
        cfg.stats_socket = Some(dir.join("stats.sock"));
        let handle = vpp_sim::Simulator::start(cfg).await?;
        tracing::info!(
            name: "vpp-sim-started",
            api_socket = %handle.api_socket().display(),
            detail = "embedded VPP simulator",
            "vpp-sim-started"
        );
        Ok(Self { handle, dir })
    }

    /// The simulator's API socket.
    pub fn api_socket(&self) -> PathBuf {
        self.handle.api_socket().to_owned()
    }

    /// The simulator's stats socket.
    pub fn stats_socket(&self) -> Option<PathBuf> {
        self.handle.stats_socket().map(ToOwned::to_owned)
    }
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        self.handle.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
