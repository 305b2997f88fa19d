//! The sans-IO reconcile core: decides *when* VPP is synced and *what* a sync covers. It reads
//! no clock and does no I/O: time comes in as a value, jobs and events go out as values
//! (quinn-proto style). The driver owns the VPP session, the backend states and the weight
//! overrides.
//!
//! What each input makes pending (spec A.3, A.5, B §1.8, §3.3, §4.3):
//!
//! | input | pending afterwards | event |
//! |---|---|---|
//! | [`Reconciler::new`] | a full sync ([`SyncReason::Startup`]); the warmup clock starts | |
//! | [`Reconciler::on_config`] (reload) | a full sync ([`SyncReason::Reload`]); the warmup clock is kept, delays and `sync-interval` are the new config's; pending frontends and flushes the new config lacks are dropped | |
//! | [`Reconciler::on_transition`] | every frontend of that backend; a one-time flush of the backend's address in those whose rules make `to` a flushing state **and** that are open (released, or the warmup over) at that time; flushes seen while a frontend is held are dropped | |
//! | [`Reconciler::on_lagged`], a full sync already pending | nothing more | none (absorbed) |
//! | [`Reconciler::on_lagged`], else | a full sync ([`SyncReason::Lagged`]) | [`ReconcileEvent::LagEscalated`] |
//! | [`Reconciler::on_connected`] | a full sync ([`SyncReason::Connected`]) | |
//! | [`Reconciler::on_disconnected`], a job in flight | the job is abandoned: a full sync ([`SyncReason::Retry`]) and its flushes | [`ReconcileEvent::Abandoned`] |
//! | [`Reconciler::request_sync`] `All` / `Frontend` | a full sync / that frontend ([`SyncReason::Operator`]) | [`ReconcileEvent::UnknownFrontend`] for a name the config lacks |
//! | the `sync-interval` tick ([`Reconciler::handle_timeout`]) | a full sync ([`SyncReason::Periodic`]) unless one is pending; the tick restarts at every full job | |
//! | [`Reconciler::on_sync_done`] `Done` | nothing more | |
//! | `Failed` | a full sync ([`SyncReason::Retry`]) and the job's flushes, after a backoff of [`RETRY_MIN`] doubling to [`RETRY_MAX`] (reset by a `Done`) | [`ReconcileEvent::RetryScheduled`] |
//! | `Aborted` | a full sync ([`SyncReason::Retry`]) and the job's flushes, at once | |
//!
//! What [`Reconciler::poll_sync`] hands out (one job in flight at a time; everything that
//! arrives meanwhile is merged into one follow-up job):
//!
//! | warmup phase ([`warmup`]) | full sync pending | job |
//! |---|---|---|
//! | `Hold` (before `startup-min-delay`) | either | none: [`ReconcileEvent::Suppressed`], once per phase and held count |
//! | `PerFrontend` | no | one `Scope::Vip` per pending frontend that is released; held ones stay pending |
//! | `PerFrontend` | yes | one `Scope::Vip` per released frontend not yet synced under this full sync, or pending since; the full sync stays owed |
//! | `Done` (or ended by this poll) | no | one `Scope::Vip` per pending frontend |
//! | `Done` (or ended by this poll) | yes | `[Scope::All]`, covering every frontend and removing stale VIPs |
//!
//! A job carries the pending flushes of the VIPs it covers; a job clears what it covers from
//! the pending set, so a frontend is not synced again without a new input. A full sync owed
//! during the warmup stays owed until the warmup ends: frontends synced per VIP under it are
//! remembered, so they are not synced again at every release; any new full trigger but the
//! periodic tick forgets them. The warmup's release, by resolution or by the deadline, is
//! reported as one [`ReconcileEvent::WarmupRelease`] per step, never one per frontend.
//! Admission looks at a held frontend's backend states only when one of its backends had a
//! transition since the last poll, or after a phase change or full trigger: a poll costs
//! O(frontends) plus the backends of the frontends touched since the last one, and a
//! transition O(frontends of that backend).
//!
//! No job is handed out while the config has no `vpp` section (the pending set is kept).
//!
//! The driver loop: feed inputs as they come; after each, call [`Reconciler::poll_sync`] and
//! run the job it returns (plan each scope against a fresh dump of VPP with the job's flushes,
//! execute, report with [`Reconciler::on_sync_done`]); drain [`Reconciler::poll_event`]; sleep
//! until [`Reconciler::poll_timeout`] and call [`Reconciler::handle_timeout`].
//!
//! Events wait in a queue of at most [`MAX_QUEUED_EVENTS`] (the oldest are dropped beyond).
//!
//! Refinements of the agreed interface: [`JobId`]'s number is private (read it with
//! [`JobId::get`]); additions: [`SyncJob::is_full`], [`Reconciler::warmup_phase`],
//! [`Reconciler::in_flight`], [`SyncReason::as_str`], [`ReconcileEvent::name`],
//! [`WarmupEnd`], the constants, and the [`warmup`] module.

pub mod warmup;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, defaults};
use crate::desired::vip_key;
use crate::plan::{FlushSet, Scope, VipKey};
use crate::weights::{BackendState, BackendStates, transition_flushes};

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

/// First backoff after a failed job; doubles up to [`RETRY_MAX`].
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest backoff after failed jobs.
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Shortest `sync-interval` honoured (validation already refuses 0).
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_millis(100);
/// Events kept for [`Reconciler::poll_event`]; beyond this the oldest are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// The config's frontends by index, and each backend's frontends: what makes
/// [`Reconciler::on_transition`] cost O(frontends of that backend).
#[derive(Debug, Default)]
struct Index {
    /// Backend name → its address and the indices of the frontends that use it.
    by_backend: HashMap<String, (IpAddr, Vec<usize>)>,
    /// Frontend name → index.
    by_name: HashMap<String, usize>,
    /// Each frontend's VIP key, by index.
    vips: Vec<VipKey>,
}

impl Index {
    fn new(config: &Config) -> Self {
        let mut index = Self {
            vips: config.frontends.iter().map(vip_key).collect(),
            ..Self::default()
        };
        for (i, frontend) in config.frontends.iter().enumerate() {
            index.by_name.entry(frontend.name.clone()).or_insert(i);
            for name in frontend.backend_names() {
                if let Some((_, frontends)) = index.by_backend.get_mut(name) {
                    frontends.push(i);
                } else if let Some(backend) = config.backend(name) {
                    index
                        .by_backend
                        .insert(name.to_owned(), (backend.address, vec![i]));
                }
            }
        }
        index
    }
}

/// What the next job must cover. Frontends are indices into the current config.
#[derive(Debug, Default)]
struct Pending {
    /// A full pass is owed, and the trigger that made it so.
    full: Option<SyncReason>,
    /// While the warmup runs: frontends already synced per VIP under the owed full pass.
    covered: BTreeSet<usize>,
    /// Frontends touched by transitions or requests.
    frontends: BTreeSet<usize>,
    /// The first trigger of `frontends`.
    frontends_reason: Option<SyncReason>,
    /// One-time flushes of already released frontends.
    flush: FlushSet,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.full.is_none() && self.frontends.is_empty()
    }
}

/// The job in flight.
#[derive(Debug)]
struct InFlight {
    id: JobId,
    flush: FlushSet,
}

/// The reconcile state machine: one per process; it survives VPP reconnects and reloads. See
/// the [module docs](self) for the rules and the driver loop.
#[derive(Debug)]
pub struct Reconciler {
    config: Arc<Config>,
    index: Index,
    /// When the warmup clock started.
    start: Instant,
    /// The latest time passed in.
    now: Instant,
    warmup: Warmup,
    /// The phase at `now`, to notice boundaries.
    phase: Phase,
    pending: Pending,
    interval: Duration,
    next_tick: Option<Instant>,
    in_flight: Option<InFlight>,
    next_id: u64,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// Held frontends whose backends changed since the last admission check.
    unchecked: BTreeSet<usize>,
    /// Check the admission of every held frontend at the next poll.
    recheck_all: bool,
    /// The last `Suppressed` event's phase and count: the same again is not repeated.
    last_suppressed: Option<(Phase, usize)>,
    events: VecDeque<ReconcileEvent>,
}

fn delays_of(config: &Config) -> (Duration, Duration) {
    config.vpp.as_ref().map_or(
        (defaults::STARTUP_MIN_DELAY, defaults::STARTUP_MAX_DELAY),
        |v| (v.lb.startup_min_delay, v.lb.startup_max_delay),
    )
}

fn interval_of(config: &Config) -> Duration {
    config
        .vpp
        .as_ref()
        .map_or(defaults::SYNC_INTERVAL, |v| v.lb.sync_interval)
        .max(MIN_SYNC_INTERVAL)
}

impl Reconciler {
    /// A reconciler for `config`; the warmup clock starts at `now` and a full sync
    /// ([`SyncReason::Startup`]) is pending.
    #[must_use]
    pub fn new(config: Arc<Config>, now: Instant) -> Self {
        let (min, max) = delays_of(&config);
        let warmup = Warmup::new(min, max);
        let interval = interval_of(&config);
        Self {
            index: Index::new(&config),
            config,
            start: now,
            now,
            phase: warmup.phase(Duration::ZERO),
            warmup,
            pending: Pending {
                full: Some(SyncReason::Startup),
                ..Pending::default()
            },
            interval,
            next_tick: now.checked_add(interval),
            in_flight: None,
            next_id: 1,
            retry_at: None,
            retry_delay: Duration::ZERO,
            unchecked: BTreeSet::new(),
            recheck_all: true,
            last_suppressed: None,
            events: VecDeque::new(),
        }
    }

    /// A reload: a full sync ([`SyncReason::Reload`]) is pending; the warmup clock is not
    /// reset; the delays and `sync-interval` are taken from the new config (a changed interval
    /// restarts the tick at `now`). Pending frontends are carried over by name, pending flushes
    /// by VIP; those the new config lacks are dropped (the full sync removes their VIPs).
    pub fn on_config(&mut self, config: Arc<Config>, now: Instant) {
        self.advance(now);
        let index = Index::new(&config);
        let remap = |set: &BTreeSet<usize>| -> BTreeSet<usize> {
            set.iter()
                .filter_map(|&i| self.config.frontends.get(i))
                .filter_map(|f| index.by_name.get(&f.name).copied())
                .collect()
        };
        let frontends = remap(&self.pending.frontends);
        self.pending.frontends = frontends;
        if self.pending.frontends.is_empty() {
            self.pending.frontends_reason = None;
        }
        let vips: BTreeSet<&VipKey> = index.vips.iter().collect();
        let mut flush = FlushSet::new();
        for (vip, address) in self.pending.flush.iter() {
            if vips.contains(vip) {
                flush.insert(*vip, *address);
            }
        }
        self.pending.flush = flush;
        self.unchecked.clear();
        self.index = index;
        self.config = config;
        let (min, max) = delays_of(&self.config);
        if self.warmup.set_delays(min, max) {
            self.warmup_ended(WarmupEnd::Disabled);
        }
        let interval = interval_of(&self.config);
        if interval != self.interval {
            self.interval = interval;
            self.next_tick = self.now.checked_add(interval);
        }
        self.raise_full(SyncReason::Reload);
        self.advance(now);
    }

    /// A backend changed state: the frontends that use it are pending, with a one-time flush
    /// (spec A.3) where the frontend is open (released, or the warmup over) at `now`. A backend
    /// the config lacks touches nothing. Costs O(frontends of that backend).
    pub fn on_transition(
        &mut self,
        backend: &str,
        from: BackendState,
        to: BackendState,
        now: Instant,
    ) {
        self.advance(now);
        let Some((address, frontends)) = self.index.by_backend.get(backend) else {
            return;
        };
        let elapsed = self.elapsed();
        let finished = self.warmup.phase(elapsed) == Phase::Done;
        for &i in frontends {
            let Some(frontend) = self.config.frontends.get(i) else {
                continue;
            };
            self.pending.frontends.insert(i);
            if !finished {
                self.unchecked.insert(i);
            }
            if transition_flushes(from, to, frontend.flush_on_down)
                && self.warmup.is_open(elapsed, &frontend.name)
            {
                self.pending.flush.insert(self.index.vips[i], *address);
            }
        }
        if !frontends.is_empty() {
            self.pending
                .frontends_reason
                .get_or_insert(SyncReason::Transition);
        }
    }

    /// Transitions were lost: a full sync ([`SyncReason::Lagged`]) with a
    /// [`ReconcileEvent::LagEscalated`], or nothing at all when a full sync is already pending
    /// (it reads every state afresh).
    pub fn on_lagged(&mut self, missed: u64, now: Instant) {
        self.advance(now);
        self.recheck_all = true;
        if self.pending.full.is_some() {
            return;
        }
        self.raise_full(SyncReason::Lagged);
        self.push_event(ReconcileEvent::LagEscalated { missed });
    }

    /// A new VPP session: a full sync ([`SyncReason::Connected`]).
    pub fn on_connected(&mut self, now: Instant) {
        self.advance(now);
        self.raise_full(SyncReason::Connected);
    }

    /// The VPP session ended: the in-flight job, if any, is abandoned
    /// ([`ReconcileEvent::Abandoned`]) and a full sync is pending; its one-time flushes are kept.
    /// A later outcome for it is ignored.
    pub fn on_disconnected(&mut self, now: Instant) {
        self.advance(now);
        if let Some(job) = self.in_flight.take() {
            self.restore(job.flush);
            self.push_event(ReconcileEvent::Abandoned { id: job.id });
        }
    }

    /// An operator "sync now" or a weight override ([`SyncReason::Operator`]). A frontend the
    /// config lacks gives [`ReconcileEvent::UnknownFrontend`] and nothing else.
    pub fn request_sync(&mut self, request: SyncRequest, now: Instant) {
        self.advance(now);
        match request {
            SyncRequest::All => self.raise_full(SyncReason::Operator),
            SyncRequest::Frontend(name) => match self.index.by_name.get(&name) {
                Some(&i) => {
                    self.pending.frontends.insert(i);
                    self.pending
                        .frontends_reason
                        .get_or_insert(SyncReason::Operator);
                }
                None => self.push_event(ReconcileEvent::UnknownFrontend { name }),
            },
        }
    }

    /// Warmup boundaries, the `sync-interval` tick (a full sync, [`SyncReason::Periodic`]) and
    /// the end of a retry backoff. Every other method does this too, so calling it late is
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// When [`Reconciler::handle_timeout`] must next be called: the earliest of the next warmup
    /// boundary, the next `sync-interval` tick and the end of a retry backoff. Never before the
    /// latest `now` passed in, unless that `now` was not yet handled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let boundary = self
            .warmup
            .next_boundary(self.elapsed())
            .and_then(|b| self.start.checked_add(b));
        [boundary, self.next_tick, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next job, if one is due and admitted by the warmup. `None` while a job is in flight,
    /// during a retry backoff, while the config has no `vpp` section, when nothing is pending,
    /// and when the warmup holds every pending frontend. Held frontends give a
    /// [`ReconcileEvent::Suppressed`] when their count or the phase changed since the last one
    /// (or a full sync was triggered since). `states` decides which frontends the warmup releases.
    pub fn poll_sync(&mut self, now: Instant, states: &impl BackendStates) -> Option<SyncJob> {
        self.advance(now);
        if self.in_flight.is_some()
            || self.retry_at.is_some()
            || self.config.vpp.is_none()
            || self.pending.is_empty()
        {
            return None;
        }
        let elapsed = self.elapsed();
        let mut phase = self.warmup.phase(elapsed);
        let candidates = self.candidates();
        let mut admitted = Vec::with_capacity(candidates.len());
        let mut held = 0usize;
        match phase {
            Phase::Hold => held = candidates.len(),
            Phase::Done => admitted = candidates,
            Phase::PerFrontend => {
                let mut released = 0usize;
                for i in candidates {
                    let frontend = &self.config.frontends[i];
                    let check = self.recheck_all || self.unchecked.contains(&i);
                    let resolved = check
                        && frontend
                            .backend_names()
                            .all(|b| states.state_of(b) != BackendState::Unknown);
                    match self.warmup.admit(elapsed, &frontend.name, resolved) {
                        Admission::Held => held += 1,
                        Admission::Released => {
                            released += 1;
                            admitted.push(i);
                        }
                        Admission::Open => admitted.push(i),
                    }
                }
                self.unchecked.clear();
                self.recheck_all = false;
                let all = self.config.frontends.iter().map(|f| f.name.as_str());
                let end = self
                    .warmup
                    .finish_if_all_released(all)
                    .then_some(WarmupEnd::AllResolved);
                if end.is_some() {
                    phase = Phase::Done;
                    self.phase = Phase::Done;
                }
                if released > 0 || end.is_some() {
                    self.push_event(ReconcileEvent::WarmupRelease {
                        released,
                        held,
                        end,
                    });
                }
            }
        }
        if held > 0 && self.last_suppressed != Some((phase, held)) {
            self.last_suppressed = Some((phase, held));
            self.push_event(ReconcileEvent::Suppressed { phase, held });
        }
        let job = if phase == Phase::Done
            && let Some(reason) = self.pending.full
        {
            let pending = std::mem::take(&mut self.pending);
            self.next_tick = self.now.checked_add(self.interval);
            self.job(
                vec![Scope::All],
                self.config
                    .frontends
                    .iter()
                    .map(|f| f.name.clone())
                    .collect(),
                pending.flush,
                reason,
            )
        } else {
            if admitted.is_empty() {
                return None;
            }
            let vips: BTreeSet<&VipKey> = admitted.iter().map(|&i| &self.index.vips[i]).collect();
            let mut flush = FlushSet::new();
            for (vip, address) in self.pending.flush.iter() {
                if vips.contains(vip) {
                    flush.insert(*vip, *address);
                }
            }
            // The rest belong to no pending frontend (see the module docs): dropped.
            self.pending.flush = FlushSet::new();
            for i in &admitted {
                self.pending.frontends.remove(i);
            }
            let reason = match self.pending.full {
                Some(reason) => {
                    self.pending.covered.extend(admitted.iter().copied());
                    reason
                }
                None => self
                    .pending
                    .frontends_reason
                    .unwrap_or(SyncReason::Transition),
            };
            if self.pending.frontends.is_empty() {
                self.pending.frontends_reason = None;
            }
            self.job(
                admitted
                    .iter()
                    .map(|&i| Scope::Vip(self.index.vips[i]))
                    .collect(),
                admitted
                    .iter()
                    .map(|&i| self.config.frontends[i].name.clone())
                    .collect(),
                flush,
                reason,
            )
        };
        self.in_flight = Some(InFlight {
            id: job.id,
            flush: job.flush.clone(),
        });
        Some(job)
    }

    /// The one-time flushes the next sync of `scope` would send: those pending for the VIPs in
    /// `scope` (every pending one for [`Scope::All`]). Nothing is taken: a dry run shows them
    /// and the next job still carries them.
    #[must_use]
    pub fn pending_flush(&self, scope: Scope) -> FlushSet {
        let mut out = FlushSet::new();
        for (vip, address) in self.pending.flush.iter() {
            let in_scope = match scope {
                Scope::All => true,
                Scope::Vip(key) => key == *vip,
            };
            if in_scope {
                out.insert(*vip, *address);
            }
        }
        out
    }

    /// The in-flight job `id` ended. `Done` ends any retry backoff; `Failed` makes a full sync
    /// ([`SyncReason::Retry`]) pending after a backoff ([`RETRY_MIN`] doubling to
    /// [`RETRY_MAX`]); `Aborted` makes it pending at once. Either way the job's one-time
    /// flushes are pending again. An outcome for a job not in flight is ignored
    /// ([`ReconcileEvent::StaleOutcome`]).
    pub fn on_sync_done(&mut self, id: JobId, outcome: SyncOutcome, now: Instant) {
        self.advance(now);
        let Some(job) = self.in_flight.take_if(|job| job.id == id) else {
            self.push_event(ReconcileEvent::StaleOutcome { id });
            return;
        };
        match outcome {
            SyncOutcome::Done => self.retry_delay = Duration::ZERO,
            SyncOutcome::Failed => {
                self.restore(job.flush);
                self.retry_delay = if self.retry_delay.is_zero() {
                    RETRY_MIN
                } else {
                    self.retry_delay.saturating_mul(2).min(RETRY_MAX)
                };
                self.retry_at = self.now.checked_add(self.retry_delay);
                self.push_event(ReconcileEvent::RetryScheduled {
                    id,
                    after: self.retry_delay,
                });
            }
            SyncOutcome::Aborted => self.restore(job.flush),
        }
    }

    /// The next event worth logging, oldest first.
    pub fn poll_event(&mut self) -> Option<ReconcileEvent> {
        self.events.pop_front()
    }

    /// The current config.
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The warmup phase at `now`.
    #[must_use]
    pub fn warmup_phase(&self, now: Instant) -> Phase {
        self.warmup.phase(now.saturating_duration_since(self.start))
    }

    /// The job in flight, if any.
    #[must_use]
    pub fn in_flight(&self) -> Option<JobId> {
        self.in_flight.as_ref().map(|job| job.id)
    }

    /// Time since the warmup clock started, at the latest `now` passed in.
    fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.start)
    }

    /// Moves the clock to `now` (never back) and fires what is due.
    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        let phase = self.warmup.phase(self.elapsed());
        if phase == Phase::Done && self.warmup.finish() {
            self.warmup_ended(WarmupEnd::MaxDelay);
        }
        if phase != self.phase {
            self.phase = phase;
            self.recheck_all = true;
        }
        if self.next_tick.is_some_and(|tick| tick <= now) {
            self.raise_full(SyncReason::Periodic);
            self.next_tick = now.checked_add(self.interval);
        }
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
        }
    }

    /// The warmup ended other than by every frontend resolving: the rest are released.
    fn warmup_ended(&mut self, end: WarmupEnd) {
        let released = self
            .config
            .frontends
            .iter()
            .filter(|f| !self.warmup.is_released(&f.name))
            .count();
        self.phase = Phase::Done;
        self.push_event(ReconcileEvent::WarmupRelease {
            released,
            held: 0,
            end: Some(end),
        });
    }

    /// A full pass is owed. A periodic tick adds nothing to one already owed; any other
    /// trigger takes over its reason and voids the warmup's per-VIP coverage.
    fn raise_full(&mut self, reason: SyncReason) {
        self.recheck_all = true;
        self.last_suppressed = None;
        if reason == SyncReason::Periodic && self.pending.full.is_some() {
            return;
        }
        self.pending.full = Some(reason);
        self.pending.covered.clear();
    }

    /// A job that did not complete: a full follow-up with its flushes.
    fn restore(&mut self, flush: FlushSet) {
        for (vip, address) in flush.iter() {
            self.pending.flush.insert(*vip, *address);
        }
        self.raise_full(SyncReason::Retry);
    }

    /// The frontends a job could cover now, in config order.
    fn candidates(&self) -> Vec<usize> {
        match self.pending.full {
            Some(_) => (0..self.config.frontends.len())
                .filter(|i| !self.pending.covered.contains(i) || self.pending.frontends.contains(i))
                .collect(),
            None => self.pending.frontends.iter().copied().collect(),
        }
    }

    fn job(
        &mut self,
        scopes: Vec<Scope>,
        frontends: Vec<String>,
        flush: FlushSet,
        reason: SyncReason,
    ) -> SyncJob {
        let id = JobId(self.next_id);
        self.next_id += 1;
        SyncJob {
            id,
            config: Arc::clone(&self.config),
            scopes,
            frontends,
            flush,
            reason,
        }
    }

    fn push_event(&mut self, event: ReconcileEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}
