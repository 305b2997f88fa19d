//! The daemon's main task: start the checker (and the demo backends, the simulator), start
//! the VPP sync engine, then serve signals: SIGHUP reloads, SIGINT/SIGTERM shut down.

use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::LoadOptions;
use maglev_health::checker::{Checker, DefaultProber};
use maglev_health::netns::{NetnsError, SocketFactory};
use maglev_health::probe::ProbeRunner;
use maglev_vpp::syncer::LbSyncer;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::Args;
use crate::config_file::{self, ConfigSource, LoadError, Loaded};
use crate::{demo, specs, vpp};

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
    /// The network namespace of `healthchecker.netns` cannot be used (missing, or no
    /// CAP_SYS_ADMIN): refused like an invalid config.
    #[error("healthchecker.netns: {0}")]
    Netns(#[source] NetnsError),
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
    let sockets = probe_sockets(config.healthchecker.netns.as_deref()).map_err(|error| {
        tracing::error!(name: "netns-error", error = %error, "netns-error");
        DaemonError::Netns(error)
    })?;

    let mut sighup = signal(SignalKind::hangup()).map_err(anyhow::Error::from)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;

    let _demo = (source == ConfigSource::Embedded)
        .then(|| demo::spawn(demo::plan(&config, DEMO_FLAPPING, DEMO_FLAP_PERIOD)));

    let checker = Checker::with_prober(
        specs::checker_config(&config),
        DefaultProber::with_runner(ProbeRunner::with_sockets(args.tcp_check.into(), sockets)),
    );
    // Decide the TCP check mode now (it is logged as `tcp-check-mode`): an explicit
    // `--tcp-check half-open` without raw sockets is a startup error, not a silent fallback.
    checker
        .prober()
        .runner()
        .prepare()
        .map_err(|e| anyhow::anyhow!("--tcp-check half-open: {e}"))?;
    // Subscribe before the first apply so the syncer sees every transition.
    let transitions = checker.subscribe();
    let report = checker
        .apply_config(specs)
        .map_err(|e| anyhow::anyhow!("starting the checker: {e}"))?;
    tracing::info!(name: "checker-started", backends = report.added.len(), "checker-started");

    let config = Arc::new(config);
    let vpp = vpp::Vpp::start(args.vpp_target(), config, checker.clone(), transitions).await?;
    let syncer = vpp.as_ref().map(|v| v.syncer.clone());

    loop {
        tokio::select! {
            _ = sighup.recv() => reload(&source, &options, &checker, syncer.as_ref()),
            _ = sigint.recv() => { tracing::info!(name: "signal", signal = "SIGINT", "signal"); break; }
            _ = sigterm.recv() => { tracing::info!(name: "signal", signal = "SIGTERM", "signal"); break; }
        }
    }

    tracing::info!(name: "stopping", "stopping");
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
fn reload(
    source: &ConfigSource,
    options: &LoadOptions,
    checker: &Checker,
    syncer: Option<&LbSyncer>,
) {
    tracing::info!(name: "config-reload", source = %source.name(), "config-reload");
    let Loaded { config, specs } = match config_file::load_with(source, options) {
        Ok(loaded) => loaded,
        Err(error) => {
            log_config_error(ConfigStage::Reload, &error);
            return;
        }
    };
    if let Err(error) = follow_netns(checker, config.healthchecker.netns.as_deref()) {
        tracing::error!(
            name: "config-reload-failed",
            error = %error,
            outcome = "keeping the running config",
            "config-reload-failed"
        );
        return;
    }
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
            if let Some(syncer) = syncer {
                syncer.set_config(Arc::new(config));
            }
        }
        Err(error) => {
            tracing::error!(name: "config-reload-failed", %error, "config-reload-failed");
        }
    }
}

/// Where probe sockets are created for `healthchecker.netns`: the daemon's own namespace, or
/// the named one (logged as `netns`).
fn probe_sockets(netns: Option<&str>) -> Result<SocketFactory, NetnsError> {
    let sockets = match netns {
        None => SocketFactory::host(),
        Some(netns) => SocketFactory::enter(netns)?,
    };
    tracing::info!(
        name: "netns",
        netns = sockets.netns().unwrap_or(""),
        "netns"
    );
    Ok(sockets)
}

/// On reload: when `healthchecker.netns` changed, or the namespace entered is gone or was
/// replaced, probes started from now on run in the namespace the config names. The TCP check
/// mode stays as it was asked for; its half-open engine is opened in the new namespace.
fn follow_netns(checker: &Checker, netns: Option<&str>) -> Result<(), NetnsError> {
    let prober = checker.prober();
    let current = prober.runner();
    if current.sockets().netns() == netns && current.sockets().check().is_ok() {
        return Ok(());
    }
    let runner = ProbeRunner::with_sockets(current.mode(), probe_sockets(netns)?);
    if let Err(error) = runner.prepare() {
        // The half-open engine is unavailable there: the probes' details will say so.
        tracing::warn!(name: "tcp-check-mode-unavailable", error = %error, "tcp-check-mode-unavailable");
    }
    prober.set_runner(runner);
    tracing::info!(
        name: "netns-changed",
        netns = netns.unwrap_or(""),
        "netns-changed"
    );
    Ok(())
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
