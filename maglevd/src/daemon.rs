//! The daemon's main task: start the checker (and the demo backends, the simulator), start
//! the VPP sync engine, then serve signals: SIGHUP reloads, SIGINT/SIGTERM shut down.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use maglev_health::checker::{Checker, DefaultProber};
use maglev_health::netns::{NetnsError, SocketFactory};
use maglev_health::probe::ProbeRunner;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::cli::Args;
use crate::config_file::{self, ConfigSource, LoadError, Loaded};
use crate::grpc::MaglevService;
use crate::grpc::requests::GrpcRequests;
use crate::grpc::serve::{self, GrpcServer, ListenAddr, Listener, ServeOptions, TlsFiles};
use crate::metrics::{MeteredProber, Metrics, ProbeRecorder, TransitionCounts};
use crate::reload::{ConfigStage, Reloader, log_config_error};
use crate::sd_notify::{self, Notifier};
use crate::{build, demo, logging, metrics, specs, vpp};

/// Backends of the embedded demo that come and go, to show transitions and syncs.
pub const DEMO_FLAPPING: &[&str] = &["web2"];
/// How long a flapping demo backend stays up, then down.
pub const DEMO_FLAP_PERIOD: Duration = Duration::from_secs(20);

/// The checker's prober: the default one, counted and timed for `/metrics`.
type DaemonProber = MeteredProber<DefaultProber>;

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
        version = build::VERSION,
        git_commit = build::GIT_COMMIT,
        build_date = build::BUILD_DATE,
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

    // Bind the API before starting anything, so a taken address fails the start at once.
    let grpc_addr = ListenAddr::parse(&args.grpc_addr).map_err(anyhow::Error::from)?;
    let listener = match &grpc_addr {
        Some(addr) => Some(Listener::bind(addr).await.map_err(anyhow::Error::from)?),
        None => {
            tracing::info!(name: "grpc-disabled", "grpc-disabled");
            None
        }
    };

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
        MeteredProber::new(
            DefaultProber::with_runner(ProbeRunner::with_sockets(args.tcp_check.into(), sockets)),
            probes.clone(),
        ),
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
    let (config_tx, config_rx) = watch::channel(config);
    let follower = checker.clone();
    let named = probes.clone();
    let reloader = Reloader::new(source, options, checker.clone(), syncer.clone(), config_tx)
        .with_netns_follower(move |netns| follow_netns(&follower, netns))
        .with_specs_follower(move |specs| named.set_specs(specs));
    let grpc_requests = GrpcRequests::new();
    let metrics = Metrics::new(
        checker.clone(),
        config_rx.clone(),
        syncer.clone(),
        vpp.as_ref().map(|v| v.api.clone()).unwrap_or_default(),
        probes,
        transition_counts,
    )
    .with_grpc_requests(grpc_requests.clone());
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
            Some(tokio::spawn(metrics::serve(listener, metrics, stopped)))
        }
        None => None,
    };
    let grpc = match listener {
        Some(listener) => {
            let mut service = MaglevService::new(checker.clone(), config_rx, build::info())
                .read_only(args.read_only)
                .with_config_control(Arc::new(reloader.clone()))
                .with_logs(crate::log_feed::LogFeed::global().clone());
            if let Some(syncer) = &syncer {
                service = service.with_vpp(Arc::new(syncer.clone()));
            }
            let options = ServeOptions {
                tls: args
                    .grpc_tls_cert
                    .clone()
                    .zip(args.grpc_tls_key.clone())
                    .map(|(cert, key)| TlsFiles {
                        cert,
                        key,
                        client_ca: args.grpc_tls_client_ca.clone(),
                    }),
                reflection: args.reflection,
                requests: grpc_requests.clone(),
            };
            Some(
                GrpcServer::start(listener, &options, service, syncer.clone())
                    .await
                    .context("starting the gRPC API")?,
            )
        }
        None => None,
    };

    // The config is loaded and every listener (gRPC, metrics) is bound: tell systemd (Type=notify).
    let notifier = Notifier::from_env().unwrap_or_else(|error| {
        tracing::warn!(name: "sd-notify-failed", error = %error, "sd-notify-failed");
        Notifier::default()
    });
    notifier.send(sd_notify::State::Ready);
    let _watchdog = notifier.spawn_watchdog();

    loop {
        tokio::select! {
            _ = sighup.recv() => {
                notifier.send(sd_notify::State::Reloading);
                logging::on_sighup(args.env_file.as_deref(), &args.log_level);
                let _ = reloader.reload();
                notifier.send(sd_notify::State::Ready);
            }
            _ = sigint.recv() => { tracing::info!(name: "signal", signal = "SIGINT", "signal"); break; }
            _ = sigterm.recv() => { tracing::info!(name: "signal", signal = "SIGTERM", "signal"); break; }
        }
    }

    notifier.send(sd_notify::State::Stopping);
    tracing::info!(name: "stopping", "stopping");
    if let Some(grpc) = grpc {
        grpc.shutdown(serve::DRAIN_DEADLINE).await;
    }
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

/// Where probe sockets are created for `healthchecker.netns`: the daemon's own namespace, or
/// the named one (logged as `netns`).
fn probe_sockets(netns: Option<&str>) -> Result<SocketFactory, NetnsError> {
    let sockets = match netns {
        None => SocketFactory::host(),
        Some(netns) => SocketFactory::enter(netns)?,
    };
    tracing::info!(name: "netns", netns = sockets.netns().unwrap_or(""), "netns");
    Ok(sockets)
}

/// On reload: when `healthchecker.netns` changed, or the namespace entered is gone or was
/// replaced, probes started from now on run in the namespace the config names. The TCP check
/// mode stays as it was asked for; its half-open engine is opened in the new namespace.
fn follow_netns(checker: &Checker<DaemonProber>, netns: Option<&str>) -> Result<(), NetnsError> {
    let prober = checker.prober().inner();
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
    tracing::info!(name: "netns-changed", netns = netns.unwrap_or(""), "netns-changed");
    Ok(())
}
