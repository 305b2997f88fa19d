//! The checker: one worker per backend, a scheduler, operator actions and config apply.
//!
//! [`Checker`] owns one lightweight tokio task per backend (not a thread). Each task sleeps on
//! tokio's timer wheel until its next deadline, runs one probe through the [`Prober`], feeds the
//! result into the backend's sans-IO [`Machine`] and asks the machine for the next deadline.
//! The deadline is measured start to start and never lies in the past, so a slow probe delays
//! only its own backend and never causes a burst. Backends are keyed by name: a backend used by
//! many frontends is probed once.
//!
//! Every state change is broadcast to any number of subscribers ([`Checker::subscribe`]) over a
//! bounded [`tokio::sync::broadcast`] channel: sending never waits, so a slow subscriber cannot
//! slow the checker; it gets [`broadcast::error::RecvError::Lagged`] instead. Transitions are
//! sent while the backend's lock is held, so subscribers see each backend's transitions in
//! order.
//!
//! Operator actions ([`Checker::pause`], [`Checker::resume`], [`Checker::enable`],
//! [`Checker::disable`]) take effect at once: pause and disable abort an in-flight probe.
//! [`Checker::apply_config`] implements reload semantics (spec B §1.8).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::machine::{
    ActionError, Jitter, Machine, Params, ResultEffect, State, Transition, TransitionRecord,
};
use crate::probe::ProbeSpec;
use crate::result::ProbeResult;

/// Runs one probe. The checker calls it once per backend per cycle; tests inject fakes.
///
/// The returned future must finish on its own (the probe's timeout lives in the
/// [`ProbeSpec`]); the checker drops it early when the backend is paused or disabled.
pub trait Prober: Send + Sync + 'static {
    /// Probes `target` as `spec` says.
    fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> impl Future<Output = ProbeResult> + Send;
}

/// The prober used in production: [`crate::probe::probe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultProber;

impl Prober for DefaultProber {
    fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> impl Future<Output = ProbeResult> + Send {
        crate::probe::probe(spec, target)
    }
}

/// A backend's health check: the probe and the state machine's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSpec {
    /// What to probe and how (opaque to the checker).
    pub probe: ProbeSpec,
    /// Wait while fully up.
    pub interval: Duration,
    /// Wait while unknown or transitional.
    pub fast_interval: Duration,
    /// Wait while fully down.
    pub down_interval: Duration,
    /// Consecutive passes to come up (1-100).
    pub rise: u32,
    /// Consecutive failures to go down (1-100).
    pub fall: u32,
}

impl CheckSpec {
    /// The state machine's view of this check.
    pub fn params(&self) -> Params {
        Params {
            interval: self.interval,
            fast_interval: self.fast_interval,
            down_interval: self.down_interval,
            rise: self.rise,
            fall: self.fall,
        }
    }
}

/// One backend as the config describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendSpec {
    /// The backend's name, its key.
    pub name: String,
    /// The address probed.
    pub address: IpAddr,
    /// The health check; `None` for a static backend (up at once, never probed).
    pub check: Option<CheckSpec>,
    /// The config's `enabled` value.
    pub enabled: bool,
}

/// Checker-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckerConfig {
    /// Transitions kept per backend (`healthchecker.transition-history`, default 5).
    pub history: usize,
    /// Capacity of the transition broadcast channel (default 1024).
    pub channel_capacity: usize,
    /// Seed for jitter and first-probe offsets; `None` picks one at random.
    pub seed: Option<u64>,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        Self {
            history: 5,
            channel_capacity: 1024,
            seed: None,
        }
    }
}

impl CheckerConfig {
    /// The defaults with the given history length.
    pub fn with_history(mut self, history: usize) -> Self {
        self.history = history;
        self
    }

    /// The defaults with the given broadcast capacity (at least 1).
    pub fn with_channel_capacity(mut self, capacity: usize) -> Self {
        self.channel_capacity = capacity;
        self
    }

    /// The defaults with a fixed seed, for reproducible schedules.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// Errors from the checker's operator API and config apply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckerError {
    /// No backend has this name.
    #[error("unknown backend {name:?}")]
    UnknownBackend {
        /// The name asked for.
        name: String,
    },
    /// The backend's state refuses the action (pause/resume while disabled).
    #[error("backend {name:?}: {action} refused: {source}")]
    Refused {
        /// The backend.
        name: String,
        /// The action refused: `pause`, `resume`, `enable`, `disable`.
        action: &'static str,
        /// Why.
        source: ActionError,
    },
    /// A backend's health check has bad parameters; nothing was applied.
    #[error("backend {name:?}: invalid health check: {reason}")]
    InvalidCheck {
        /// The backend.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two backends in one config share a name; nothing was applied.
    #[error("backend {name:?} appears more than once in the config")]
    DuplicateBackend {
        /// The name.
        name: String,
    },
}

/// A point-in-time view of one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSnapshot {
    /// The backend's name.
    pub name: Arc<str>,
    /// The address probed.
    pub address: IpAddr,
    /// The current state.
    pub state: State,
    /// The rise/fall counter.
    pub counter: u32,
    /// The rise parameter (1 for a static backend).
    pub rise: u32,
    /// The fall parameter (1 for a static backend).
    pub fall: u32,
    /// The runtime enabled flag.
    pub enabled: bool,
    /// Whether the backend has no health check.
    pub is_static: bool,
    /// The last transitions, oldest first.
    pub history: Vec<TransitionRecord>,
    /// The last probe result counted.
    pub last_result: Option<ProbeResult>,
}

/// What [`Checker::apply_config`] did, by backend name (each list sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// New backends, now probing (or disabled when the config says so).
    pub added: Vec<Arc<str>>,
    /// Backends whose health check is unchanged: worker, state and runtime enabled flag kept.
    pub unchanged: Vec<Arc<str>>,
    /// Backends whose health check changed: restarted in `unknown` (or `disabled`).
    pub restarted: Vec<Arc<str>>,
    /// Backends gone from the config: moved to `removed` and stopped.
    pub removed: Vec<Arc<str>>,
}

/// Scheduler figures: probe counts and how late probes start against their deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Probes started since the checker was built.
    pub probes_started: u64,
    /// Probes whose result reached the state machine.
    pub probes_completed: u64,
    /// Median start lag (actual start minus planned), to 50 µs up to about 51 ms; beyond
    /// that, the maximum.
    pub lag_p50: Duration,
    /// 99th-percentile start lag, to 50 µs up to about 51 ms; beyond that, the maximum.
    pub lag_p99: Duration,
    /// Largest start lag seen.
    pub lag_max: Duration,
}

const LAG_BUCKET_US: u64 = 50;
const LAG_BUCKETS: usize = 1024;

struct Stats {
    started: AtomicU64,
    completed: AtomicU64,
    lag_max_ns: AtomicU64,
    lag: Box<[AtomicU64]>,
}

impl Stats {
    fn new() -> Self {
        Self {
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            lag_max_ns: AtomicU64::new(0),
            lag: (0..LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record_start(&self, lag: Duration) {
        self.started.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        self.lag_max_ns.fetch_max(ns, Ordering::Relaxed);
        let idx = usize::try_from(ns / 1000 / LAG_BUCKET_US)
            .unwrap_or(usize::MAX)
            .min(LAG_BUCKETS - 1);
        self.lag[idx].fetch_add(1, Ordering::Relaxed);
    }

    fn quantile(&self, counts: &[u64], total: u64, q: f64) -> Duration {
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                if i == LAG_BUCKETS - 1 {
                    // The overflow bucket: the best bound known is the maximum.
                    break;
                }
                return Duration::from_micros((i as u64 + 1) * LAG_BUCKET_US);
            }
        }
        Duration::from_nanos(self.lag_max_ns.load(Ordering::Relaxed))
    }

    fn snapshot(&self) -> SchedulerStats {
        let counts: Vec<u64> = self.lag.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total = counts.iter().sum();
        SchedulerStats {
            probes_started: self.started.load(Ordering::Relaxed),
            probes_completed: self.completed.load(Ordering::Relaxed),
            lag_p50: self.quantile(&counts, total, 0.50),
            lag_p99: self.quantile(&counts, total, 0.99),
            lag_max: Duration::from_nanos(self.lag_max_ns.load(Ordering::Relaxed)),
        }
    }
}

/// The per-backend state shared by the operator API and the backend's task.
struct Shared {
    machine: Machine,
    address: IpAddr,
    /// Bumped whenever the task is replaced or stopped; a task whose generation is stale drops
    /// its result (an aborted task may still be finishing a poll on another thread).
    generation: u64,
}

struct Worker {
    name: Arc<str>,
    spec: BackendSpec,
    shared: Arc<Mutex<Shared>>,
    task: Option<JoinHandle<()>>,
}

impl Worker {
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Inner<P> {
    prober: Arc<P>,
    workers: Mutex<HashMap<Arc<str>, Worker>>,
    tx: broadcast::Sender<Transition>,
    history: usize,
    seeds: Mutex<Jitter>,
    stats: Arc<Stats>,
    runtime: tokio::runtime::Handle,
}

impl<P> Drop for Inner<P> {
    fn drop(&mut self) {
        let workers = self
            .workers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for w in workers.values_mut() {
            w.stop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn emit(tx: &broadcast::Sender<Transition>, t: Transition) {
    tracing::info!(
        name: "backend-transition",
        backend = %t.backend,
        from = %t.from,
        to = %t.to,
        code = %t.code,
        detail = %t.detail,
        "backend-transition"
    );
    // No receivers is fine: nobody listens yet.
    let _ = tx.send(t);
}

/// The health checker. Cheap to clone (a handle); see the [module docs](self).
pub struct Checker<P: Prober = DefaultProber> {
    inner: Arc<Inner<P>>,
}

impl<P: Prober> Clone for Checker<P> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<P: Prober> fmt::Debug for Checker<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("backends", &lock(&self.inner.workers).len())
            .finish_non_exhaustive()
    }
}

impl Checker<DefaultProber> {
    /// A checker with the production prober and no backends.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: CheckerConfig) -> Self {
        Self::with_prober(config, DefaultProber)
    }
}

impl<P: Prober> Checker<P> {
    /// A checker with the given prober and no backends. Its tasks run on the current tokio
    /// runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn with_prober(config: CheckerConfig, prober: P) -> Self {
        let (tx, _) = broadcast::channel(config.channel_capacity.max(1));
        let seed = config.seed.unwrap_or_else(rand::random);
        Self {
            inner: Arc::new(Inner {
                prober: Arc::new(prober),
                workers: Mutex::new(HashMap::new()),
                tx,
                history: config.history,
                seeds: Mutex::new(Jitter::new(seed)),
                stats: Arc::new(Stats::new()),
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// A new receiver of every transition from now on. A receiver that falls more than the
    /// channel capacity behind gets `RecvError::Lagged(n)` and continues with the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.inner.tx.subscribe()
    }

    /// Scheduler figures since the checker was built.
    pub fn stats(&self) -> SchedulerStats {
        self.inner.stats.snapshot()
    }

    /// Number of backends.
    pub fn len(&self) -> usize {
        lock(&self.inner.workers).len()
    }

    /// Whether there are no backends.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn next_seed(&self) -> u64 {
        lock(&self.inner.seeds).next_u64()
    }

    /// Starts `worker`'s task with its first probe at `first` (replacing any task).
    fn spawn(&self, name: &Arc<str>, worker: &mut Worker, shared: &Shared, first: Instant) {
        worker.stop();
        let task = run_worker(
            Arc::clone(name),
            Arc::clone(&worker.shared),
            shared.generation,
            first,
            Arc::clone(&self.inner.prober),
            worker.spec.check.clone().map(Arc::new),
            self.inner.tx.clone(),
            Arc::clone(&self.inner.stats),
        );
        worker.task = Some(self.inner.runtime.spawn(task));
    }

    fn now() -> (Instant, std::time::Instant) {
        let now = Instant::now();
        (now, now.into_std())
    }

    /// Applies an operator action to one backend and returns its snapshot.
    fn act(
        &self,
        name: &str,
        action: &'static str,
        f: impl FnOnce(&mut Machine, std::time::Instant) -> Result<Option<Transition>, ActionError>,
    ) -> Result<BackendSnapshot, CheckerError> {
        let mut workers = lock(&self.inner.workers);
        let worker = workers
            .get_mut(name)
            .ok_or_else(|| CheckerError::UnknownBackend {
                name: name.to_owned(),
            })?;
        let key = Arc::clone(&worker.name);
        let shared_arc = Arc::clone(&worker.shared);
        let mut shared = lock(&shared_arc);
        let (now, now_std) = Self::now();
        let transition =
            f(&mut shared.machine, now_std).map_err(|source| CheckerError::Refused {
                name: name.to_owned(),
                action,
                source,
            })?;
        if let Some(t) = transition {
            shared.generation += 1;
            worker.stop();
            emit(&self.inner.tx, t);
            if shared.machine.is_probing() {
                // Resume and enable probe at once: one backend, no herd to spread.
                self.spawn(&key, worker, &shared, now);
            }
        }
        Ok(snapshot_of(&key, &shared))
    }

    /// Pauses health checking of `name`: state `paused`, the in-flight probe is dropped, no
    /// probes are sent. Refused while disabled.
    pub fn pause(&self, name: &str) -> Result<BackendSnapshot, CheckerError> {
        self.act(name, "pause", Machine::pause)
    }

    /// Resumes health checking of a paused `name`: state `unknown`, probing at once. Refused
    /// while disabled.
    pub fn resume(&self, name: &str) -> Result<BackendSnapshot, CheckerError> {
        self.act(name, "resume", Machine::resume)
    }

    /// Enables `name`: a disabled backend goes to `unknown` and probes at once; any other
    /// only gets its enabled flag set.
    pub fn enable(&self, name: &str) -> Result<BackendSnapshot, CheckerError> {
        self.act(name, "enable", Machine::enable)
    }

    /// Disables `name`: state `disabled`, the in-flight probe is dropped, no probes are sent.
    /// Idempotent.
    pub fn disable(&self, name: &str) -> Result<BackendSnapshot, CheckerError> {
        self.act(name, "disable", Machine::disable)
    }

    /// The current view of `name`.
    pub fn state(&self, name: &str) -> Result<BackendSnapshot, CheckerError> {
        let workers = lock(&self.inner.workers);
        let (key, worker) =
            workers
                .get_key_value(name)
                .ok_or_else(|| CheckerError::UnknownBackend {
                    name: name.to_owned(),
                })?;
        Ok(snapshot_of(key, &lock(&worker.shared)))
    }

    /// The current view of every backend, sorted by name.
    pub fn snapshot(&self) -> Vec<BackendSnapshot> {
        let workers = lock(&self.inner.workers);
        let mut out: Vec<BackendSnapshot> = workers
            .iter()
            .map(|(k, w)| snapshot_of(k, &lock(&w.shared)))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Applies a config (spec B §1.8): new backends start; backends with an unchanged health
    /// check keep their worker, state and runtime enabled flag (an address change is copied);
    /// backends with a changed check restart in `unknown` with the config's `enabled`; backends
    /// that are gone go to `removed` and stop.
    ///
    /// The whole list is validated first; on error nothing changes.
    pub fn apply_config(&self, specs: Vec<BackendSpec>) -> Result<ApplyReport, CheckerError> {
        let mut names = HashSet::with_capacity(specs.len());
        for spec in &specs {
            if !names.insert(spec.name.as_str()) {
                return Err(CheckerError::DuplicateBackend {
                    name: spec.name.clone(),
                });
            }
            if let Some(check) = &spec.check {
                check
                    .params()
                    .validate()
                    .map_err(|reason| CheckerError::InvalidCheck {
                        name: spec.name.clone(),
                        reason,
                    })?;
            }
        }
        drop(names);

        let mut report = ApplyReport::default();
        let mut workers = lock(&self.inner.workers);
        let now_std = Instant::now().into_std();

        let gone: Vec<Arc<str>> = {
            let keep: HashSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            workers
                .keys()
                .filter(|k| !keep.contains(&***k))
                .cloned()
                .collect()
        };
        for name in gone {
            if let Some(mut worker) = workers.remove(&name) {
                let shared_arc = Arc::clone(&worker.shared);
                let mut shared = lock(&shared_arc);
                shared.generation += 1;
                worker.stop();
                if let Some(t) = shared.machine.remove(now_std) {
                    emit(&self.inner.tx, t);
                }
                drop(shared);
                report.removed.push(name);
            }
        }

        for spec in specs {
            if let Some(worker) = workers.get_mut(spec.name.as_str()) {
                let key = Arc::clone(&worker.name);
                let shared_arc = Arc::clone(&worker.shared);
                let mut shared = lock(&shared_arc);
                if worker.spec.check == spec.check {
                    shared.address = spec.address;
                    worker.spec = spec;
                    report.unchanged.push(key);
                    continue;
                }
                shared.generation += 1;
                worker.stop();
                let params = spec.check.as_ref().map(CheckSpec::params);
                if let Some(t) = shared.machine.restart(now_std, params, spec.enabled) {
                    emit(&self.inner.tx, t);
                }
                shared.address = spec.address;
                worker.spec = spec;
                if let Some(first) = shared.machine.first_probe(now_std) {
                    self.spawn(&key, worker, &shared, Instant::from_std(first));
                }
                report.restarted.push(key);
            } else {
                let key: Arc<str> = Arc::from(spec.name.as_str());
                let params = spec.check.as_ref().map(CheckSpec::params);
                let mut machine = Machine::new(
                    Arc::clone(&key),
                    params,
                    self.inner.history,
                    self.next_seed(),
                );
                if !spec.enabled
                    && let Some(t) = machine.restart(now_std, params, false)
                {
                    emit(&self.inner.tx, t);
                }
                let first = machine.first_probe(now_std);
                let shared = Shared {
                    machine,
                    address: spec.address,
                    generation: 0,
                };
                let mut worker = Worker {
                    name: Arc::clone(&key),
                    spec,
                    shared: Arc::new(Mutex::new(shared)),
                    task: None,
                };
                if let Some(first) = first {
                    let shared_arc = Arc::clone(&worker.shared);
                    let shared = lock(&shared_arc);
                    self.spawn(&key, &mut worker, &shared, Instant::from_std(first));
                }
                workers.insert(Arc::clone(&key), worker);
                report.added.push(key);
            }
        }
        drop(workers);
        report.added.sort();
        report.unchanged.sort();
        report.restarted.sort();
        report.removed.sort();
        Ok(report)
    }

    /// Stops every worker and waits for the tasks to end. Backends are forgotten without
    /// `removed` transitions; the checker can be given a new config afterwards.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut workers = lock(&self.inner.workers);
            workers
                .drain()
                .filter_map(|(_, mut w)| {
                    lock(&w.shared).generation += 1;
                    w.task.take()
                })
                .collect()
        };
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

// The checker is shared across tasks and threads.
const _: () = {
    const fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Checker>();
    send_sync::<BackendSnapshot>();
    send_sync::<Transition>();
};

fn snapshot_of(name: &Arc<str>, shared: &Shared) -> BackendSnapshot {
    let m = &shared.machine;
    BackendSnapshot {
        name: Arc::clone(name),
        address: shared.address,
        state: m.state(),
        counter: m.counter(),
        rise: m.params().rise,
        fall: m.params().fall,
        enabled: m.enabled(),
        is_static: m.is_static(),
        history: m.history().cloned().collect(),
        last_result: m.last_result().cloned(),
    }
}

/// One backend's probe loop. Ends when the machine says no further probe is due, or when it
/// is aborted or superseded (stale generation).
#[allow(clippy::too_many_arguments)]
async fn run_worker<P: Prober>(
    name: Arc<str>,
    shared: Arc<Mutex<Shared>>,
    generation: u64,
    first: Instant,
    prober: Arc<P>,
    check: Option<Arc<CheckSpec>>,
    tx: broadcast::Sender<Transition>,
    stats: Arc<Stats>,
) {
    let mut deadline = first;
    loop {
        tokio::time::sleep_until(deadline).await;
        let started = Instant::now();
        stats.record_start(started.saturating_duration_since(deadline));
        let address = lock(&shared).address;
        let result = match &check {
            // Boxed so that a sleeping task does not reserve room for the largest probe's
            // state (HTTPS): only in-flight probes cost that memory.
            Some(check) => Box::pin(prober.probe(&check.probe, address)).await,
            None => Machine::static_result(),
        };
        let done = Instant::now();
        let mut guard = lock(&shared);
        if guard.generation != generation {
            return;
        }
        stats.completed.fetch_add(1, Ordering::Relaxed);
        let effect = guard.machine.on_result(done.into_std(), &result);
        if let ResultEffect::Transition(t) = effect {
            emit(&tx, t);
        } else {
            tracing::trace!(name: "backend-probe", backend = %name, code = %result.code);
        }
        match guard
            .machine
            .next_probe(started.into_std(), done.into_std())
        {
            Some(next) => deadline = Instant::from_std(next),
            None => return,
        }
    }
}
