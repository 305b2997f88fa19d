//! The daemon's main task: start the checker (and the demo backends, the simulator), start
//! the VPP sync engine, then serve signals: SIGHUP reloads, SIGINT/SIGTERM shut down.

use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::LoadOptions;
use maglev_health::checker::{Checker, DefaultProber, Prober};
use maglev_vpp::syncer::LbSyncer;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::Args;
use crate::config_file::{self, ConfigSource, LoadError, Loaded};
use crate::metrics::{MeteredProber, Metrics, ProbeRecorder, TransitionCounts};
use crate::{demo, metrics, specs, vpp};

/// Backends of the embedded demo that come and go, to show transitions and syncs.
pub const DEMO_FLAPPING: &[&str] = &["web2"];
/// How long a flapping demo backend stays up, then down.
pub const DEMO_FLAP_PERIOD: Duration = Duration::from_secs(20);

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config given at startup was refused.
    #[error("invalid config")]
    InvalidConfig(#[source] LoadError),
    /// Anything else that keeps the daemon from running.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Runs the daemon until SIGINT or SIGTERM.
///
/// # Errors
///
/// An invalid startup config, or a failure to set up signals, the checker or the simulator.
pub async fn run(args: Args) -> Result<(), DaemonError> {
    tracing::info!(
        name: "starting",
        version = env!("CARGO_PKG_VERSION"),
        "starting"
    );
    let source = ConfigSource::from_arg(args.config.as_deref());
    let options = args.load_options();
    let Loaded { config, specs } = match config_file::load_with(&source, &options) {
        Ok(loaded) => loaded,
        Err(error) => {
            log_config_error(ConfigStage::Startup, &error);
            return Err(DaemonError::InvalidConfig(error));
        }
    };
    tracing::info!(
        name: "config-loaded",
        source = %source.name(),
        backends = config.backends.len(),
        frontends = config.frontends.len(),
        "config-loaded"
    );
    if let Some(netns) = &config.healthchecker.netns {
        tracing::warn!(
            name: "netns-unsupported",
            netns = %netns,
            "healthchecker.netns is not supported yet; probing in the current namespace"
        );
    }

    let mut sighup = signal(SignalKind::hangup()).map_err(anyhow::Error::from)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;

    let _demo = (source == ConfigSource::Embedded)
        .then(|| demo::spawn(demo::plan(&config, DEMO_FLAPPING, DEMO_FLAP_PERIOD)));

    let metrics_addr = metrics::parse_addr(&args.metrics_addr)
        .map_err(|e| anyhow::anyhow!("--metrics-addr {:?}: {e}", args.metrics_addr))?;
    let probes = ProbeRecorder::default();
    probes.set_specs(&specs);
    let checker = Checker::with_prober(
        specs::checker_config(&config),
        MeteredProber::new(DefaultProber::new(args.tcp_check.into()), probes.clone()),
    );
    // Decide the TCP check mode now (it is logged as `tcp-check-mode`): an explicit
    // `--tcp-check half-open` without raw sockets is a startup error, not a silent fallback.
    checker
        .prober()
        .inner()
        .runner()
        .prepare()
        .map_err(|e| anyhow::anyhow!("--tcp-check half-open: {e}"))?;
    // Subscribe before the first apply so the syncer sees every transition.
    let transitions = checker.subscribe();
    let transition_counts = TransitionCounts::default();
    let _count_transitions = tokio::spawn(transition_counts.clone().follow(checker.subscribe()));
    let report = checker
        .apply_config(specs)
        .map_err(|e| anyhow::anyhow!("starting the checker: {e}"))?;
    tracing::info!(name: "checker-started", backends = report.added.len(), "checker-started");

    let config = Arc::new(config);
    let vpp = vpp::Vpp::start(
        args.vpp_target(),
        Arc::clone(&config),
        checker.clone(),
        transitions,
    )
    .await?;
    let syncer = vpp.as_ref().map(|v| v.syncer.clone());
    let metrics = Metrics::new(
        checker.clone(),
        config,
        syncer.clone(),
        vpp.as_ref().map(|v| v.api.clone()).unwrap_or_default(),
        probes.clone(),
        transition_counts,
    );
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = match metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: {e}"))?;
            let local = listener.local_addr().map_err(anyhow::Error::from)?;
            tracing::info!(name: "metrics-listening", addr = %local, "metrics-listening");
            let stopped = async move {
                let _ = metrics_stopped.await;
            };
            Some(tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
                stopped,
            )))
        }
        None => None,
    };

    loop {
        tokio::select! {
            _ = sighup.recv() => reload(&source, &options, &checker, syncer.as_ref(), &metrics, &probes),
            _ = sigint.recv() => { tracing::info!(name: "signal", signal = "SIGINT", "signal"); break; }
            _ = sigterm.recv() => { tracing::info!(name: "signal", signal = "SIGTERM", "signal"); break; }
        }
    }

    tracing::info!(name: "stopping", "stopping");
    let _ = metrics_stop.send(());
    if let Some(server) = metrics_server {
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    }
    if let Some(vpp) = vpp
        && tokio::time::timeout(Duration::from_secs(5), vpp.shutdown())
            .await
            .is_err()
    {
        tracing::warn!(name: "vpp-task-timeout", "the vpp task did not stop in 5s");
    }
    checker.shutdown().await;
    tracing::info!(name: "stopped", "stopped");
    Ok(())
}

/// SIGHUP (spec B §1.8): a bad config is logged and the old one keeps running; a good one
/// goes to the checker and the syncer (which syncs).
fn reload<P: Prober>(
    source: &ConfigSource,
    options: &LoadOptions,
    checker: &Checker<P>,
    syncer: Option<&LbSyncer>,
    metrics: &Metrics,
    probes: &ProbeRecorder,
) {
    tracing::info!(name: "config-reload", source = %source.name(), "config-reload");
    let Loaded { config, specs } = match config_file::load_with(source, options) {
        Ok(loaded) => loaded,
        Err(error) => {
            log_config_error(ConfigStage::Reload, &error);
            return;
        }
    };
    probes.set_specs(&specs);
    match checker.apply_config(specs) {
        Ok(report) => {
            tracing::info!(
                name: "config-reload-done",
                added = report.added.len(),
                unchanged = report.unchanged.len(),
                restarted = report.restarted.len(),
                removed = report.removed.len(),
                "config-reload-done"
            );
            let config = Arc::new(config);
            metrics.set_config(Arc::clone(&config));
            if let Some(syncer) = syncer {
                syncer.set_config(config);
            }
        }
        Err(error) => {
            tracing::error!(name: "config-reload-failed", %error, "config-reload-failed");
        }
    }
}

/// When a config was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConfigStage {
    /// At startup: the daemon does not start.
    Startup,
    /// On SIGHUP: the running config stays.
    Reload,
}

fn log_config_error(when: ConfigStage, error: &LoadError) {
    let stage = error.stage();
    let lines = error.lines();
    for line in &lines {
        tracing::error!(name: "config-error", stage, error = %line, "config-error");
    }
    match when {
        ConfigStage::Reload => tracing::error!(
            name: "config-reload-failed",
            stage,
            errors = lines.len(),
            outcome = "keeping the running config",
            "config-reload-failed"
        ),
        ConfigStage::Startup => {
            tracing::error!(name: "config-invalid", stage, errors = lines.len(), "config-invalid");
        }
    }
}
