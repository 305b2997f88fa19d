//! [`Reloader`]: the one config reload path, shared by SIGHUP and the ReloadConfig RPC (spec
//! B §1.8). A refused config is logged and the running config keeps running; an accepted one
//! goes to the checker, then to the syncer (which syncs), then to the gRPC service's view.
//!
//! What survives a reload, and what a restart keeps:
//!
//! | runtime state | reload | restart |
//! |---|---|---|
//! | backend state, pause / disable flags | kept while the backend's health check is unchanged; a changed check restarts in `unknown` (or the config's `enabled`) | nothing: every backend starts from the config |
//! | weight overrides (SetFrontendPoolBackendWeight) | kept where the frontend, pool and backend still exist | nothing |
//! | transition history | kept with the backend's state | nothing |

use std::sync::{Arc, Mutex};

use maglev_core::config::{Config, LoadOptions};
use maglev_health::checker::{BackendSpec, Checker, CheckerError, DefaultProber, Prober};
use maglev_health::netns::NetnsError;
use maglev_vpp::syncer::LbSyncer;
use tokio::sync::watch;

use crate::config_file::{self, ConfigSource, LoadError, Loaded};
use crate::grpc::ConfigControl;

/// What an accepted reload changed in the checker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// The config source's name (its path).
    pub source: String,
    /// New backends.
    pub added: Vec<String>,
    /// Backends whose health check changed (restarted).
    pub restarted: Vec<String>,
    /// Backends whose health check is unchanged.
    pub unchanged: Vec<String>,
    /// Backends gone from the config.
    pub removed: Vec<String>,
}

/// Why a reload was refused (the running config stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config did not load or validate.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The checker refused the new backends.
    #[error("the checker refused the config")]
    Apply(#[source] CheckerError),
    /// The network namespace of `healthchecker.netns` cannot be entered.
    #[error("healthchecker.netns: {0}")]
    Netns(#[source] NetnsError),
}

/// Moves probes to the namespace a reloaded config names (`healthchecker.netns`).
type NetnsFollower = Box<dyn Fn(Option<&str>) -> Result<(), NetnsError> + Send + Sync>;

/// Sees the backends of each accepted config just before the checker gets them.
type SpecsFollower = Box<dyn Fn(&[BackendSpec]) + Send + Sync>;

/// When a config was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigStage {
    /// At startup: the daemon does not start.
    Startup,
    /// On reload: the running config stays.
    Reload,
}

/// The reload handle: cheap to clone; reloads are serialized.
pub struct Reloader<P: Prober = DefaultProber> {
    inner: Arc<Inner<P>>,
}

impl<P: Prober> Clone for Reloader<P> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<P: Prober> {
    source: ConfigSource,
    options: LoadOptions,
    checker: Checker<P>,
    syncer: Option<LbSyncer>,
    config: watch::Sender<Arc<Config>>,
    /// One reload at a time: SIGHUP and an RPC never interleave their applies.
    serial: Mutex<()>,
    netns: Option<NetnsFollower>,
    specs: Option<SpecsFollower>,
}

impl<P: Prober> Reloader<P> {
    /// A reloader of `source` into `checker`, `syncer` and `config` (whose receivers see each
    /// accepted config).
    pub fn new(
        source: ConfigSource,
        options: LoadOptions,
        checker: Checker<P>,
        syncer: Option<LbSyncer>,
        config: watch::Sender<Arc<Config>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                options,
                checker,
                syncer,
                config,
                serial: Mutex::new(()),
                netns: None,
                specs: None,
            }),
        }
    }

    /// Calls `follow` with each accepted config's `healthchecker.netns` before it is
    /// applied; an error refuses the reload. Call before cloning the reloader.
    #[must_use]
    pub fn with_netns_follower(
        mut self,
        follow: impl Fn(Option<&str>) -> Result<(), NetnsError> + Send + Sync + 'static,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.netns = Some(Box::new(follow));
        }
        self
    }

    /// Calls `follow` with each accepted config's backends just before the checker gets them
    /// (the probe metrics name backends from them). Call before cloning the reloader.
    #[must_use]
    pub fn with_specs_follower(
        mut self,
        follow: impl Fn(&[BackendSpec]) + Send + Sync + 'static,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.specs = Some(Box::new(follow));
        }
        self
    }

    /// The config source.
    pub fn source(&self) -> &ConfigSource {
        &self.inner.source
    }

    /// Loads, validates and applies the config source; logs the outcome.
    ///
    /// # Errors
    ///
    /// [`ReloadError`]: the running config stays.
    pub fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        let inner = &*self.inner;
        let _serial = inner
            .serial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let source = inner.source.name();
        tracing::info!(name: "config-reload", source = %source, "config-reload");
        let Loaded { config, specs } = match config_file::load_with(&inner.source, &inner.options) {
            Ok(loaded) => loaded,
            Err(error) => {
                log_config_error(ConfigStage::Reload, &error);
                return Err(error.into());
            }
        };
        if let Some(follow) = &inner.netns
            && let Err(error) = follow(config.healthchecker.netns.as_deref())
        {
            tracing::error!(
                name: "config-reload-failed",
                %error,
                outcome = "keeping the running config",
                "config-reload-failed"
            );
            return Err(ReloadError::Netns(error));
        }
        if let Some(follow) = &inner.specs {
            follow(&specs);
        }
        let report = match inner.checker.apply_config(specs) {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(name: "config-reload-failed", %error, "config-reload-failed");
                return Err(ReloadError::Apply(error));
            }
        };
        tracing::info!(
            name: "config-reload-done",
            added = report.added.len(),
            unchanged = report.unchanged.len(),
            restarted = report.restarted.len(),
            removed = report.removed.len(),
            "config-reload-done"
        );
        let config = Arc::new(config);
        if let Some(syncer) = &inner.syncer {
            syncer.set_config(Arc::clone(&config));
        }
        inner.config.send_replace(config);
        let names = |v: Vec<Arc<str>>| v.iter().map(|n| n.to_string()).collect();
        Ok(ReloadSummary {
            source,
            added: names(report.added),
            restarted: names(report.restarted),
            unchanged: names(report.unchanged),
            removed: names(report.removed),
        })
    }

    /// Loads and validates the config source without applying it.
    ///
    /// # Errors
    ///
    /// Why the config would be refused.
    pub fn check(&self) -> Result<(), LoadError> {
        config_file::load_with(&self.inner.source, &self.inner.options).map(|_| ())
    }
}

impl<P: Prober> ConfigControl for Reloader<P> {
    fn source_name(&self) -> String {
        self.inner.source.name()
    }

    fn check(&self) -> Result<(), LoadError> {
        Reloader::check(self)
    }

    fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        Reloader::reload(self)
    }
}

/// Logs a refused config: one `config-error` per error, then the outcome for `when`.
pub fn log_config_error(when: ConfigStage, error: &LoadError) {
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
