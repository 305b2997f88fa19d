//! The sans-IO reconcile core: decides *when* VPP is synced and *what* a sync covers. It reads
//! no clock and does no I/O: time comes in as a value, jobs and events go out as values
//! (quinn-proto style). A driver owns the VPP session; see [`Reconciler`] for its loop.
//!
//! RULES (filled in below).

pub mod warmup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::plan::{FlushSet, Scope};
use crate::weights::{BackendState, BackendStates};

pub use warmup::{Admission, Phase, Warmup};

/// Why a sync job runs (the trigger that made it due).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncReason {
    /// The first sync after the process started.
    Startup,
    /// A new VPP session.
    Connected,
    /// A config reload (spec B §1.8).
    Reload,
    /// Backend state transitions.
    Transition,
    /// The `sync-interval` drift check.
    Periodic,
    /// An operator request or a weight override.
    Operator,
    /// Transitions were lost (the transition channel lagged).
    Lagged,
    /// A previous sync failed or was aborted.
    Retry,
}

impl SyncReason {
    /// The lower-case name, for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Connected => "connected",
            Self::Reload => "reload",
            Self::Transition => "transition",
            Self::Periodic => "periodic",
            Self::Operator => "operator",
            Self::Lagged => "lagged",
            Self::Retry => "retry",
        }
    }
}

/// What an operator asks to sync.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SyncRequest {
    /// Every frontend (a full sync, stale VIPs removed once the warmup is over).
    All,
    /// One frontend, by name.
    Frontend(String),
}

/// Identifies a job handed out by [`Reconciler::poll_sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

impl JobId {
    /// The number (increasing from 1 over the life of the reconciler).
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One sync to run: plan every scope against a fresh dump of VPP and execute it, then report
/// with [`Reconciler::on_sync_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncJob {
    /// Pass back to [`Reconciler::on_sync_done`].
    pub id: JobId,
    /// The config this job is planned against.
    pub config: Arc<Config>,
    /// `[Scope::All]`, or one `Scope::Vip` per admitted frontend in config order.
    pub scopes: Vec<Scope>,
    /// The names of the frontends covered, in config order (every frontend for `Scope::All`).
    pub frontends: Vec<String>,
    /// The one-time flushes to apply (spec A.3).
    pub flush: FlushSet,
    /// Why the job runs.
    pub reason: SyncReason,
}

impl SyncJob {
    /// Whether this is a full sync (`[Scope::All]`).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.scopes == [Scope::All]
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncOutcome {
    /// Every operation went out and VPP accepted it.
    Done,
    /// VPP refused an operation: a full follow-up sync is pending (after a short backoff).
    Failed,
    /// The connection was lost mid-job: a full follow-up sync is pending.
    Aborted,
}

/// How the warmup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarmupEnd {
    /// Every frontend was released before `startup-max-delay`.
    AllResolved,
    /// `startup-max-delay` passed: the stragglers were released.
    MaxDelay,
    /// A reload set both delays to 0.
    Disabled,
}

impl WarmupEnd {
    /// The lower-case name, for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllResolved => "all-resolved",
            Self::MaxDelay => "startup-max-delay",
            Self::Disabled => "disabled",
        }
    }
}

/// Something worth logging. Each variant names its suggested log event and level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileEvent {
    /// `vpp-lb-warmup-release` (info): frontends released by the warmup at one step, one summary
    /// for all of them.
    WarmupRelease {
        /// Frontends released by this step.
        released: usize,
        /// Frontends still held.
        held: usize,
        /// Set when this step ended the warmup.
        end: Option<WarmupEnd>,
    },
    /// `vpp-lbsync-suppressed` (debug): pending syncs held back by the warmup (spec B §3.3).
    Suppressed {
        /// The warmup phase.
        phase: Phase,
        /// How many pending frontends are held.
        held: usize,
    },
    /// `vpp-lbsync-lagged` (warn): transitions were lost while no full sync was pending, so
    /// one was scheduled.
    LagEscalated {
        /// How many transitions were lost.
        missed: u64,
    },
    /// `vpp-lbsync-retry` (warn): a job failed; a full sync follows after `after`.
    RetryScheduled {
        /// The failed job.
        id: JobId,
        /// The backoff before the follow-up.
        after: Duration,
    },
    /// `vpp-lbsync-abandoned` (warn): the in-flight job was given up on a disconnect.
    Abandoned {
        /// The job.
        id: JobId,
    },
    /// `vpp-lbsync-stale` (debug): an outcome for a job that is not in flight was ignored.
    StaleOutcome {
        /// The job named by the outcome.
        id: JobId,
    },
    /// `vpp-lbsync-unknown-frontend` (warn): a request named a frontend the config lacks.
    UnknownFrontend {
        /// The name asked for.
        name: String,
    },
}

impl ReconcileEvent {
    /// The stable log event name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::WarmupRelease { .. } => "vpp-lb-warmup-release",
            Self::Suppressed { .. } => "vpp-lbsync-suppressed",
            Self::LagEscalated { .. } => "vpp-lbsync-lagged",
            Self::RetryScheduled { .. } => "vpp-lbsync-retry",
            Self::Abandoned { .. } => "vpp-lbsync-abandoned",
            Self::StaleOutcome { .. } => "vpp-lbsync-stale",
            Self::UnknownFrontend { .. } => "vpp-lbsync-unknown-frontend",
        }
    }
}

/// The reconcile state machine: one per process; it survives VPP reconnects and reloads.
#[derive(Debug)]
pub struct Reconciler {
    config: Arc<Config>,
}

impl Reconciler {
    /// A reconciler for `config`; the warmup clock starts at `now` and a full sync is pending.
    #[must_use]
    pub fn new(config: Arc<Config>, now: Instant) -> Self {
        let _ = now;
        Self { config }
    }

    /// A reload: a full sync is pending; the warmup clock is not reset; delays and
    /// `sync-interval` are taken from the new config.
    pub fn on_config(&mut self, config: Arc<Config>, now: Instant) {
        let _ = (config, now);
        todo!()
    }

    /// A backend changed state: its frontends are pending, with a one-time flush where the
    /// frontend is already released by the warmup. Costs O(frontends of that backend).
    pub fn on_transition(
        &mut self,
        backend: &str,
        from: BackendState,
        to: BackendState,
        now: Instant,
    ) {
        let _ = (backend, from, to, now);
        todo!()
    }

    /// Transitions were lost: a full sync, unless one is already pending (then silently).
    pub fn on_lagged(&mut self, missed: u64, now: Instant) {
        let _ = (missed, now);
        todo!()
    }

    /// A new VPP session: a full sync.
    pub fn on_connected(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The VPP session ended: an in-flight job is abandoned; nothing it covered is lost.
    pub fn on_disconnected(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// An operator "sync now" or a weight override.
    pub fn request_sync(&mut self, request: SyncRequest, now: Instant) {
        let _ = (request, now);
        todo!()
    }

    /// Warmup boundaries, the `sync-interval` tick and the retry backoff.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// When [`Reconciler::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next job, if one is due and admitted by the warmup; `None` while a job is in flight.
    pub fn poll_sync(&mut self, now: Instant, states: &impl BackendStates) -> Option<SyncJob> {
        let _ = (now, states);
        todo!()
    }

    /// The in-flight job `id` ended.
    pub fn on_sync_done(&mut self, id: JobId, outcome: SyncOutcome, now: Instant) {
        let _ = (id, outcome, now);
        todo!()
    }

    /// The next event worth logging.
    pub fn poll_event(&mut self) -> Option<ReconcileEvent> {
        todo!()
    }

    /// The current config.
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The warmup phase at `now`.
    #[must_use]
    pub fn warmup_phase(&self, now: Instant) -> Phase {
        let _ = now;
        todo!()
    }

    /// The job in flight, if any.
    #[must_use]
    pub fn in_flight(&self) -> Option<JobId> {
        todo!()
    }
}
