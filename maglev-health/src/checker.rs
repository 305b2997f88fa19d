//! The checker: one state machine per backend, a scheduler, operator actions and config apply.
//!
//! [`Checker`] keeps every backend's sans-IO [`Machine`] and one scheduler task per checker (not
//! a task or a thread per backend). The scheduler keeps next-probe deadlines in a hashed timing
//! wheel with a [`SCHEDULER_TICK`] resolution, wakes once per tick while anything is scheduled,
//! and starts every probe that is due: the probe runs in a task of its own only while it is in
//! flight (one that finishes in its first poll runs inline), so an idle backend costs a wheel
//! slot entry and no timer. A finished probe feeds its result into the backend's machine and asks it for
//! the next deadline. The deadline is measured start to start and never lies in the past, so a
//! slow probe delays only its own backend and never causes a burst. Backends are keyed by
//! name: a backend used by many frontends is probed once.
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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::machine::{
    ActionError, Jitter, Machine, Params, ResultEffect, State, Transition, TransitionRecord,
};
use crate::probe::{ProbeRunner, ProbeSpec, TcpCheckMode};
use crate::result::ProbeResult;

/// Runs one probe. The checker calls it once per backend per cycle; tests inject fakes.
///
/// The returned future must finish on its own (the probe's timeout lives in the
/// [`ProbeSpec`]); the checker drops it early when the backend is paused or disabled.
pub trait Prober: Send + Sync + 'static {
    /// Probes `target` as `spec` says.
    fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> impl Future<Output = ProbeResult> + Send;
}

/// The prober used in production: a [`ProbeRunner`], whose plain TCP checks run half-open
/// when raw sockets are allowed ([`TcpCheckMode::Auto`], the default), and whose sockets are
/// created where its [`SocketFactory`](crate::netns::SocketFactory) says (`healthchecker.netns`).
///
/// The runner can be replaced while the checker runs ([`DefaultProber::set_runner`], for a
/// reload that changes the namespace): probes started from then on use the new one, probes in
/// flight finish on the old one.
#[derive(Debug, Default)]
pub struct DefaultProber {
    runner: RwLock<Arc<ProbeRunner>>,
}

impl DefaultProber {
    /// A prober whose plain TCP checks follow `mode`, with sockets in the caller's namespace.
    pub fn new(mode: TcpCheckMode) -> Self {
        Self::with_runner(ProbeRunner::new(mode))
    }

    /// A prober running probes through `runner`.
    pub fn with_runner(runner: ProbeRunner) -> Self {
        Self {
            runner: RwLock::new(Arc::new(runner)),
        }
    }

    /// The runner probes start on now: [`ProbeRunner::prepare`] decides the TCP check mode up
    /// front, [`ProbeRunner::sockets`] says which namespace probes run in.
    pub fn runner(&self) -> Arc<ProbeRunner> {
        Arc::clone(&self.runner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the runner for the probes started from now on; returns the old one.
    pub fn set_runner(&self, runner: ProbeRunner) -> Arc<ProbeRunner> {
        let mut slot = self.runner.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, Arc::new(runner))
    }

    /// The network namespace probes run in, as configured; `None` for the daemon's own.
    pub fn netns(&self) -> Option<String> {
        self.runner().sockets().netns().map(str::to_owned)
    }
}

impl Prober for DefaultProber {
    fn probe(&self, spec: &ProbeSpec, target: IpAddr) -> impl Future<Output = ProbeResult> + Send {
        let runner = self.runner();
        async move { runner.probe(spec, target).await }
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

/// The few fields of a backend that change as it is probed: [`BackendSnapshot`] without the
/// history and the last result, which cost a copy each (a scrape of 10,000 backends, or the
/// states a sync reads, need only these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    /// The backend's name.
    pub name: Arc<str>,
    /// The address probed.
    pub address: IpAddr,
    /// The current state.
    pub state: State,
    /// The rise/fall counter.
    pub counter: u32,
    /// The runtime enabled flag.
    pub enabled: bool,
}

/// What [`Checker::apply_config`] did, by backend name (each list sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// New backends, now probing (or disabled when the config says so).
    pub added: Vec<Arc<str>>,
    /// Backends whose health check is unchanged: worker, state and runtime enabled flag kept.
    pub unchanged: Vec<Arc<str>>,
    /// Backends whose health check changed: restarted in `unknown` (or kept `paused` or
    /// `disabled`, see [`Checker::apply_config`]).
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

/// The per-backend state shared by the operator API, the scheduler and the in-flight probe.
struct Shared {
    machine: Machine,
    address: IpAddr,
    /// The health check probed; `None` for a static backend.
    check: Option<Arc<CheckSpec>>,
    /// Bumped whenever the schedule is replaced or stopped: a wheel entry or a probe result of an
    /// older generation is dropped (an aborted probe may still be finishing a poll on another
    /// thread).
    generation: u64,
    /// The probe in flight.
    in_flight: Option<JoinHandle<()>>,
}

impl Shared {
    /// Cancels the schedule and aborts the probe in flight; returns that probe's task.
    fn stop(&mut self) -> Option<JoinHandle<()>> {
        self.generation += 1;
        let task = self.in_flight.take();
        if let Some(task) = &task {
            task.abort();
        }
        task
    }
}

type Slot = Arc<Mutex<Shared>>;

struct Worker {
    name: Arc<str>,
    spec: BackendSpec,
    shared: Slot,
}

/// A scheduled probe: backend `slot` is due at `at` if its generation is still `generation`.
struct Due {
    at: Instant,
    /// The wheel tick `at` falls in (rounded up).
    tick: u64,
    generation: u64,
    name: Arc<str>,
    slot: Slot,
}

/// Slots of the timing wheel, one per tick: deadlines up to this many ticks ahead land in their
/// own slot; later ones share a slot with nearer ones and wait for their lap.
const WHEEL_SLOTS: usize = 4096;
/// The scheduler's granularity: a probe starts within one tick after its deadline.
///
/// Four milliseconds: every wakeup of the scheduler costs about 10 µs of CPU (timer and
/// context switch), so at 10,000 probes per second a 1 ms tick spends 10% of the checker's CPU
/// on wakeups alone. A probe starts at most one tick after its deadline, far inside the ±10%
/// jitter of its interval.
pub const SCHEDULER_TICK: Duration = Duration::from_millis(4);
const TICK: Duration = SCHEDULER_TICK;

/// A hashed timing wheel of due probes with [`TICK`]-long ticks: O(1) insert and expiry, and a tick
/// touches only its own slot, which keeps the scheduler cheap at 10,000 probes per second.
struct Wheel {
    origin: Instant,
    slots: Box<[Vec<Due>]>,
    /// The first tick not yet expired.
    cursor: u64,
    len: usize,
    /// When the scheduler looks next; `None` while it waits for an entry.
    wake_at: Option<Instant>,
}

impl Wheel {
    fn new(origin: Instant) -> Self {
        Self {
            origin,
            slots: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            len: 0,
            wake_at: None,
        }
    }

    /// The tick at whose end `at` has passed: deadlines are rounded up, never started early.
    fn tick_of(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(ns.div_ceil(TICK.as_nanos())).unwrap_or(u64::MAX)
    }

    /// The last tick that has fully begun at `now`.
    fn tick_floor(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(ns / TICK.as_nanos()).unwrap_or(u64::MAX)
    }

    fn slot_index(tick: u64) -> usize {
        // The modulo keeps the value below WHEEL_SLOTS, so the cast cannot truncate.
        (tick % WHEEL_SLOTS as u64) as usize
    }

    fn insert(&mut self, mut due: Due) {
        due.tick = self.tick_of(due.at).max(self.cursor);
        self.slots[Self::slot_index(due.tick)].push(due);
        self.len += 1;
    }

    /// Moves every entry due at `now` to `out`.
    fn expire(&mut self, now: Instant, out: &mut Vec<Due>) {
        let now_tick = self.tick_floor(now);
        if now_tick < self.cursor {
            return;
        }
        // After a stall longer than a lap, every slot is visited once.
        let first = if now_tick - self.cursor >= WHEEL_SLOTS as u64 {
            now_tick - (WHEEL_SLOTS as u64 - 1)
        } else {
            self.cursor
        };
        for tick in first..=now_tick {
            let slot = &mut self.slots[Self::slot_index(tick)];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].tick <= now_tick {
                    out.push(slot.swap_remove(i));
                    self.len -= 1;
                } else {
                    i += 1;
                }
            }
        }
        self.cursor = now_tick + 1;
    }

    /// When the scheduler should look again: the start of the first non-empty slot's tick
    /// (which may hold only entries of a later lap: then it looks again one lap later).
    fn next_wake(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let ahead = (0..WHEEL_SLOTS as u64)
            .find(|k| !self.slots[Self::slot_index(self.cursor + k)].is_empty())
            .unwrap_or(0);
        let tick = self.cursor + ahead;
        let offset = TICK.saturating_mul(u32::try_from(tick).unwrap_or(u32::MAX));
        Some(self.origin + offset)
    }

    fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.clear();
        }
        self.len = 0;
    }
}

/// Distinct health checks of one config apply, so that backends with the same check share one
/// copy: a config names a handful of checks for thousands of backends, and one shared copy
/// stays in the CPU cache where thousands would not.
#[derive(Default)]
struct CheckPool {
    distinct: Vec<Arc<CheckSpec>>,
}

impl CheckPool {
    /// Beyond this many distinct checks, new ones are not looked up (the search is linear).
    const MAX: usize = 64;

    fn get(&mut self, check: Option<&CheckSpec>) -> Option<Arc<CheckSpec>> {
        let check = check?;
        if let Some(known) = self.distinct.iter().find(|known| ***known == *check) {
            return Some(Arc::clone(known));
        }
        let new = Arc::new(check.clone());
        if self.distinct.len() < Self::MAX {
            self.distinct.push(Arc::clone(&new));
        }
        Some(new)
    }
}

/// What the scheduler task and the probe tasks share with the checker.
struct Core<P> {
    prober: P,
    tx: broadcast::Sender<Transition>,
    stats: Stats,
    queue: Mutex<Wheel>,
    /// Wakes the scheduler when a deadline earlier than every queued one arrives.
    wake: Notify,
}

impl<P: Prober> Core<P> {
    /// Queues a probe of `slot` at `at` for `generation`.
    fn schedule(&self, name: Arc<str>, slot: Slot, generation: u64, at: Instant) {
        let mut wheel = lock(&self.queue);
        // The scheduler sleeps until its next tick with entries; wake it when this entry is
        // due sooner (a resumed backend, a first probe), never in the steady state.
        let sooner = wheel.wake_at.is_none_or(|wake| at < wake);
        if sooner {
            wheel.wake_at = Some(at);
        }
        wheel.insert(Due {
            at,
            tick: 0,
            generation,
            name,
            slot,
        });
        drop(wheel);
        if sooner {
            self.wake.notify_one();
        }
    }

    /// Feeds a finished probe's result to the machine; returns the next deadline.
    fn complete(
        &self,
        name: &str,
        shared: &mut Shared,
        started: Instant,
        done: Instant,
        result: &ProbeResult,
    ) -> Option<Instant> {
        self.stats.completed.fetch_add(1, Ordering::Relaxed);
        let effect = shared.machine.on_result(done.into_std(), result);
        if let ResultEffect::Transition(t) = effect {
            emit(&self.tx, t);
        } else {
            tracing::trace!(name: "backend-probe", backend = %name, code = %result.code);
        }
        shared
            .machine
            .next_probe(started.into_std(), done.into_std())
            .map(Instant::from_std)
    }

    /// Starts the probe of a due entry, unless the entry is stale.
    fn start(self: &Arc<Self>, due: Due) {
        let Due {
            at,
            generation,
            name,
            slot,
            ..
        } = due;
        let mut shared = lock(&slot);
        if shared.generation != generation {
            return;
        }
        let started = Instant::now();
        self.stats
            .record_start(started.saturating_duration_since(at));
        let Some(check) = shared.check.clone() else {
            let result = Machine::static_result();
            let next = self.complete(&name, &mut shared, started, Instant::now(), &result);
            drop(shared);
            if let Some(next) = next {
                self.schedule(name, slot, generation, next);
            }
            return;
        };
        let address = shared.address;
        let core = Arc::clone(self);
        let mut probe = Box::pin(async move { core.prober.probe(&check.probe, address).await });
        // One poll right here: a probe that can finish without waiting (a half-open check of
        // a local backend) then costs no task and no wakeup. A pending probe moves to a task of
        // its own, whose first poll registers the task's waker in place of this no-op one.
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(result) = probe.as_mut().poll(&mut cx) {
            let next = self.complete(&name, &mut shared, started, Instant::now(), &result);
            drop(shared);
            if let Some(next) = next {
                self.schedule(name, slot, generation, next);
            }
            return;
        }
        let core = Arc::clone(self);
        let task_slot = Arc::clone(&slot);
        let task = async move {
            let result = probe.await;
            let done = Instant::now();
            let next = {
                let mut shared = lock(&task_slot);
                if shared.generation != generation {
                    return;
                }
                shared.in_flight = None;
                core.complete(&name, &mut shared, started, done, &result)
            };
            if let Some(next) = next {
                core.schedule(name, task_slot, generation, next);
            }
        };
        shared.in_flight = Some(tokio::spawn(task));
    }
}

/// The scheduler: sleeps until the earliest deadline, then starts every probe that is due.
async fn drive<P: Prober>(core: Arc<Core<P>>) {
    let mut due = Vec::new();
    loop {
        let next = {
            let mut wheel = lock(&core.queue);
            wheel.expire(Instant::now(), &mut due);
            wheel.wake_at = wheel.next_wake();
            wheel.wake_at
        };
        for entry in due.drain(..) {
            core.start(entry);
        }
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = core.wake.notified() => {}
                }
            }
            None => core.wake.notified().await,
        }
    }
}

struct Inner<P> {
    core: Arc<Core<P>>,
    workers: Mutex<HashMap<Arc<str>, Worker>>,
    history: usize,
    seeds: Mutex<Jitter>,
    scheduler: JoinHandle<()>,
}

impl<P> Drop for Inner<P> {
    fn drop(&mut self) {
        self.scheduler.abort();
        let workers = self
            .workers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for w in workers.values_mut() {
            lock(&w.shared).stop();
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
        Self::with_prober(config, DefaultProber::default())
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
        let core = Arc::new(Core {
            prober,
            tx,
            stats: Stats::new(),
            queue: Mutex::new(Wheel::new(Instant::now())),
            wake: Notify::new(),
        });
        let scheduler = tokio::runtime::Handle::current().spawn(drive(Arc::clone(&core)));
        Self {
            inner: Arc::new(Inner {
                core,
                workers: Mutex::new(HashMap::new()),
                history: config.history,
                seeds: Mutex::new(Jitter::new(seed)),
                scheduler,
            }),
        }
    }

    /// A new receiver of every transition from now on. A receiver that falls more than the
    /// channel capacity behind gets `RecvError::Lagged(n)` and continues with the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.inner.core.tx.subscribe()
    }

    /// The prober probes run through.
    pub fn prober(&self) -> &P {
        &self.inner.core.prober
    }

    /// Scheduler figures since the checker was built.
    pub fn stats(&self) -> SchedulerStats {
        self.inner.core.stats.snapshot()
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

    /// Schedules `worker`'s next probe at `at` for the current generation of `shared`.
    fn schedule(&self, worker: &Worker, shared: &Shared, at: Instant) {
        self.inner.core.schedule(
            Arc::clone(&worker.name),
            Arc::clone(&worker.shared),
            shared.generation,
            at,
        );
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
            shared.stop();
            emit(&self.inner.core.tx, t);
            if shared.machine.is_probing() {
                // Resume and enable probe at once: one backend, no herd to spread.
                self.schedule(worker, &shared, now);
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
        self.by_name(snapshot_of)
    }

    /// The status of every backend, sorted by name: [`Checker::snapshot`] without the history
    /// and the last result.
    pub fn statuses(&self) -> Vec<BackendStatus> {
        self.by_name(|name, shared| {
            let m = &shared.machine;
            BackendStatus {
                name: Arc::clone(name),
                address: shared.address,
                state: m.state(),
                counter: m.counter(),
                enabled: m.enabled(),
            }
        })
    }

    /// `view` of every backend, sorted by name.
    fn by_name<T>(&self, view: impl Fn(&Arc<str>, &Shared) -> T) -> Vec<T> {
        let workers = lock(&self.inner.workers);
        let mut named: Vec<(&Arc<str>, T)> = workers
            .iter()
            .map(|(name, w)| (name, view(name, &lock(&w.shared))))
            .collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v).collect()
    }

    /// Applies a config (spec B §1.8): new backends start; backends with an unchanged health
    /// check keep their worker, state and runtime enabled flag (an address change is copied);
    /// backends with a changed check restart in `unknown`, but a paused one stays paused and the
    /// runtime enabled flag is kept unless the config's `enabled` changed too (then the config
    /// wins); backends that are gone go to `removed` and stop.
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
        let mut checks = CheckPool::default();
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
            if let Some(worker) = workers.remove(&name) {
                let shared_arc = Arc::clone(&worker.shared);
                let mut shared = lock(&shared_arc);
                shared.stop();
                if let Some(t) = shared.machine.remove(now_std) {
                    emit(&self.inner.core.tx, t);
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
                shared.stop();
                let params = spec.check.as_ref().map(CheckSpec::params);
                // The operator's runtime enable/disable outlives a new health check, unless the
                // config's own `enabled` changed with it (then the config says what it wants).
                let enabled = if worker.spec.enabled == spec.enabled {
                    shared.machine.enabled()
                } else {
                    spec.enabled
                };
                if let Some(t) = shared.machine.restart(now_std, params, enabled) {
                    emit(&self.inner.core.tx, t);
                }
                shared.address = spec.address;
                shared.check = checks.get(spec.check.as_ref());
                worker.spec = spec;
                if let Some(first) = shared.machine.first_probe(now_std) {
                    self.schedule(worker, &shared, Instant::from_std(first));
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
                    emit(&self.inner.core.tx, t);
                }
                let first = machine.first_probe(now_std);
                let shared = Shared {
                    machine,
                    address: spec.address,
                    check: checks.get(spec.check.as_ref()),
                    generation: 0,
                    in_flight: None,
                };
                let worker = Worker {
                    name: Arc::clone(&key),
                    spec,
                    shared: Arc::new(Mutex::new(shared)),
                };
                if let Some(first) = first {
                    let shared = lock(&worker.shared);
                    self.schedule(&worker, &shared, Instant::from_std(first));
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

    /// Stops every backend's probing and waits for the probes in flight to end. Backends are
    /// forgotten without `removed` transitions; the checker can be given a new config
    /// afterwards.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut workers = lock(&self.inner.workers);
            let tasks = workers
                .drain()
                .filter_map(|(_, w)| lock(&w.shared).stop())
                .collect();
            lock(&self.inner.core.queue).clear();
            tasks
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(n: u64) -> Duration {
        TICK * u32::try_from(n).unwrap()
    }

    /// An entry due `at` ticks after the wheel's origin, tagged (in its generation) with `at`.
    fn due(wheel: &Wheel, at: u64) -> Due {
        let machine = Machine::new(Arc::from("b"), None, 1, 1);
        Due {
            at: wheel.origin + ticks(at),
            tick: 0,
            generation: at,
            name: Arc::from("b"),
            slot: Arc::new(Mutex::new(Shared {
                machine,
                address: IpAddr::from([127, 0, 0, 1]),
                check: None,
                generation: 0,
                in_flight: None,
            })),
        }
    }

    fn expired(wheel: &mut Wheel, now: u64) -> Vec<u64> {
        let mut out = Vec::new();
        wheel.expire(wheel.origin + ticks(now), &mut out);
        let mut at: Vec<u64> = out.iter().map(|d| d.generation).collect();
        at.sort_unstable();
        at
    }

    #[test]
    fn wheel_expires_each_entry_once_at_its_tick_across_laps() {
        let lap = WHEEL_SLOTS as u64;
        let mut w = Wheel::new(Instant::now());
        assert_eq!(w.next_wake(), None);
        // Same slot, three different laps; plus a near entry.
        for at in [5, 5 + lap, 5 + 2 * lap, 7] {
            let d = due(&w, at);
            w.insert(d);
        }
        assert_eq!(w.next_wake(), Some(w.origin + ticks(5)));
        assert_eq!(expired(&mut w, 4), Vec::<u64>::new(), "nothing early");
        assert_eq!(expired(&mut w, 5), vec![5]);
        assert_eq!(expired(&mut w, 6), Vec::<u64>::new());
        assert_eq!(expired(&mut w, lap), vec![7], "later laps wait");
        assert_eq!(expired(&mut w, lap + 5), vec![5 + lap]);
        assert_eq!(w.len, 1);
        // A stall of more than a lap still expires everything due, once.
        assert_eq!(expired(&mut w, 10 * lap), vec![5 + 2 * lap]);
        assert_eq!(w.len, 0);
        assert_eq!(w.next_wake(), None);
    }

    #[test]
    fn wheel_rounds_deadlines_up_and_runs_overdue_entries_next() {
        let mut w = Wheel::new(Instant::now());
        let mut d = due(&w, 0);
        d.at = w.origin + ticks(2) + TICK / 3;
        w.insert(d);
        assert_eq!(expired(&mut w, 2), Vec::<u64>::new(), "never started early");
        assert_eq!(expired(&mut w, 3).len(), 1);
        // An entry already overdue goes to the next tick, not to a passed slot.
        let d = due(&w, 1);
        w.insert(d);
        assert_eq!(w.next_wake(), Some(w.origin + ticks(4)));
        assert_eq!(expired(&mut w, 4), vec![1]);
    }
}
