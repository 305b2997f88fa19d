//! [`LbSyncer`]: keeps VPP's `lb` plugin in step with the config and the backends' states.
//!
//! The handle is a cheap clone (an `Arc`): any number of tasks steer one driver task. The
//! decisions (when to sync, what a sync covers, the warmup, coalescing of bursts, one-time
//! flushes) are the sans-IO [`Reconciler`] of `maglev-core`; the driver task owns the VPP
//! session and does the I/O around it:
//!
//! ```text
//! transition() / lagged() / set_config() / set_weight() / sync_now()
//!        │   (under a mutex: feed the core, wake the driver; never blocks, never queues)
//!        ▼
//!   Reconciler ──poll_sync──▶ SyncJob ──▶ desired state ─▶ dump ─▶ plan ─▶ pipeline::execute
//!        ▲                                                                   │
//!        └──────────────────────────── on_sync_done ◀────────────────────────┘
//! ```
//!
//! Backend transitions are not queued: [`LbSyncer::transition`] folds them into the core's
//! pending set at once, so a burst of any size costs a lock and a wake-up each, and the driver
//! picks up everything pending in one job when it next looks. Backend *states* come from a
//! [`StateSource`] read when a job is planned.
//!
//! | the driver | what it does |
//! |---|---|
//! | connect | `Client::connect` as [`CLIENT_NAME`], required-messages check, `show_version`, `control_ping` (VPP's pid), the stats socket with `/sys/boottime`, then one `vpp-connect` with both |
//! | no stats socket | one `vpp-stats-unavailable` warning; the session syncs without counters |
//! | on connect | `lb_conf` pushed unless VPP holds the same values, then the core's full sync |
//! | config reload | `lb_conf` pushed again only when `vpp.lb`'s values changed |
//! | liveness | `control_ping` every [`SyncerOptions::ping_interval`] (10 s); a closed API socket, or a stats socket removed or replaced, noticed within [`SyncerOptions::liveness_interval`] (1 s) |
//! | counters | every [`SyncerOptions::scrape_interval`] (5 s), one stats read ([`crate::counters`]), published by [`LbSyncer::counters`]; the VIPs' pool and FIB indices looked up again after a sync that added or removed a VIP |
//! | a transport error, or the stats segment lost | `vpp-disconnect`, both sockets closed, VPP info and counters cleared, the in-flight job abandoned (the core keeps it pending), both reconnected after a jittered exponential [`Backoff`] |
//! | shutdown | the session closed, `vpp-disconnect` (reason `shutdown`, at info), the task ends |
//!
//! Events ([`SyncEvent`], through [`LbSyncer::subscribe`]) and logs carry the same facts; the
//! stable log event names are `vpp-connect`, `vpp-connect-failed`, `vpp-disconnect`,
//! `vpp-stats-unavailable`, `vpp-stats-scrape-error`,
//! `vpp-no-config`, `vpp-lb-conf-set`, `vpp-lb-conf-error`, `vpp-lbsync-start`, the operations'
//! `vpp-lbsync-vip-add` ... (logged by [`crate::pipeline`]), `vpp-lbsync-done`,
//! `frontend-transition`, and the core's events under their [`ReconcileEvent::name`]
//! (`vpp-lb-warmup-release`, `vpp-lbsync-lagged`, ...).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use maglev_core::config::{Config, VppLb};
use maglev_core::desired::{Desired, FrontendSummary, desired_frontends, desired_state, vip_key};
use maglev_core::index::ConfigIndex;
use maglev_core::plan::{Op, Plan, PlanStats, Scope, plan};
use maglev_core::reconcile::{
    JobId, Phase, ReconcileEvent, Reconciler, SyncJob, SyncOutcome, SyncReason, SyncRequest,
};
use maglev_core::weights::{BackendState, FrontendState, WeightOverrides};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument as _;
use vpp_binapi::api::{ApiError, lb, memclnt, vpe};
use vpp_binapi::client::{Client, ClientError, ClientOptions};
use vpp_binapi::codec::{Message as _, Reply as _};
use vpp_binapi::stats::{StatValue, StatsClient, StatsError, StatsFilter};

use crate::adapter;
use crate::backoff::{Backoff, BackoffSettings};
use crate::counters::{self, CounterIndex, CounterSnapshot};
use crate::error::{DumpError, Incompatible};
use crate::metrics::{SyncMetrics, SyncScopeKind};
use crate::pipeline::{self, ExecError};

/// The name the syncer registers with (`show api clients`).
pub const CLIENT_NAME: &str = "vpp-maglev";
/// The highest weight [`LbSyncer::set_weight`] takes.
pub const MAX_WEIGHT: u8 = 100;

/// Where backend states come from, read each time a sync is planned. Any
/// `Fn() -> HashMap<String, BackendState>` is one.
pub trait StateSource: Send + Sync + 'static {
    /// Every backend's current state, by name; a backend left out counts as `unknown`.
    fn backend_states(&self) -> HashMap<String, BackendState>;
}

impl<F> StateSource for F
where
    F: Fn() -> HashMap<String, BackendState> + Send + Sync + 'static,
{
    fn backend_states(&self) -> HashMap<String, BackendState> {
        self()
    }
}

/// How the syncer reaches VPP and paces itself. [`SyncerOptions::new`] gives the defaults.
#[derive(Clone)]
pub struct SyncerOptions {
    /// VPP's binary API socket.
    pub api_socket: PathBuf,
    /// VPP's stats socket (`None`: no counters, no boot time). Connected and lost together
    /// with the API socket.
    pub stats_socket: Option<PathBuf>,
    /// Period of the VIP counters scrape (default 5 s).
    pub scrape_interval: Duration,
    /// Client options (name [`CLIENT_NAME`], request timeout, window).
    pub client: ClientOptions,
    /// Reconnect delays (default: 1 s doubling to 30 s, jitter 0.2).
    pub backoff: BackoffSettings,
    /// Period of the `control_ping` liveness check (default 10 s).
    pub ping_interval: Duration,
    /// Period of the local look at the socket that notices a dead connection (default 1 s).
    pub liveness_interval: Duration,
    /// Capacity of the [`LbSyncer::subscribe`] channel (default 4096); a slower subscriber
    /// gets `Lagged`.
    pub event_capacity: usize,
}

impl SyncerOptions {
    /// The defaults, for VPP on `api_socket`.
    pub fn new(api_socket: impl Into<PathBuf>) -> Self {
        Self {
            api_socket: api_socket.into(),
            stats_socket: None,
            scrape_interval: Duration::from_secs(5),
            client: ClientOptions::default().name(CLIENT_NAME),
            backoff: BackoffSettings::default(),
            ping_interval: Duration::from_secs(10),
            liveness_interval: Duration::from_secs(1),
            event_capacity: 4096,
        }
    }
}

impl fmt::Debug for SyncerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncerOptions")
            .field("api_socket", &self.api_socket)
            .field("stats_socket", &self.stats_socket)
            .field("scrape_interval", &self.scrape_interval)
            .field("backoff", &self.backoff)
            .field("ping_interval", &self.ping_interval)
            .field("liveness_interval", &self.liveness_interval)
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}

/// The state of the VPP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting (first attempt, or after a failure).
    Connecting,
    /// Connected; see [`SyncerSnapshot::vpp`].
    Connected,
    /// The last attempt or session failed; retrying.
    Disconnected {
        /// Why.
        error: String,
    },
    /// [`LbSyncer::shutdown`] ran.
    Stopped,
}

/// What VPP said about itself on connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppInfo {
    /// The API socket.
    pub socket: PathBuf,
    /// `show_version`: the program name (`vpe`).
    pub program: String,
    /// `show_version`: the version (`unknown` when VPP did not answer).
    pub version: String,
    /// `show_version`: the build date.
    pub build_date: String,
    /// `show_version`: the build directory.
    pub build_directory: String,
    /// VPP's process id (`control_ping_reply.vpe_pid`), when VPP answered the ping.
    pub pid: Option<u32>,
    /// The stats socket, when connected.
    pub stats_socket: Option<PathBuf>,
    /// When VPP started (`/sys/boottime` of the stats segment), when known.
    pub boot_time: Option<SystemTime>,
    /// Our client index in VPP.
    pub client_index: u32,
    /// When the session started.
    pub connected_at: SystemTime,
}

/// What happened to one operation of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    /// VPP applied it.
    Applied,
    /// VPP refused it.
    Failed {
        /// VPP's answer (its retval, name and message).
        error: ApiError,
    },
    /// Not sent: an earlier operation of its VIP was refused.
    Skipped,
}

/// One finished sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    /// The job.
    pub id: JobId,
    /// Why it ran.
    pub reason: SyncReason,
    /// Whether it covered everything (stale VIPs removed).
    pub full: bool,
    /// The frontends it covered.
    pub frontends: Vec<String>,
    /// How it ended.
    pub outcome: SyncOutcome,
    /// The operations planned, by kind.
    pub stats: PlanStats,
    /// The operations VPP refused or that were skipped after a refusal.
    pub errors: usize,
    /// The first operation VPP refused, with its answer (or why the sync was aborted).
    pub first_error: Option<String>,
    /// The operations it planned (and sent, unless refused or skipped).
    pub plan: Arc<Plan>,
    /// When it started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
}

/// A point-in-time view of the syncer ([`LbSyncer::snapshot`]).
#[derive(Debug, Clone)]
pub struct SyncerSnapshot {
    /// The VPP session.
    pub connection: ConnectionState,
    /// VPP's version and our session, while connected.
    pub vpp: Option<Arc<VppInfo>>,
    /// The last finished sync, with its plan.
    pub last_sync: Option<Arc<SyncSummary>>,
    /// How many syncs finished since start.
    pub syncs: u64,
    /// Where the startup warmup stands.
    pub warmup: Phase,
    /// The runtime weight overrides in force.
    pub overrides: WeightOverrides,
    /// The config in force.
    pub config: Arc<Config>,
}

/// What the syncer did, for [`LbSyncer::subscribe`]rs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A VPP session started.
    Connected(Arc<VppInfo>),
    /// The VPP session ended; `error` is `None` on shutdown.
    Disconnected {
        /// Why, unless on shutdown.
        error: Option<String>,
    },
    /// A sync started (its dump is on its way).
    SyncStarted {
        /// The job.
        id: JobId,
        /// Why it runs.
        reason: SyncReason,
        /// Whether it covers everything.
        full: bool,
        /// The frontends covered.
        frontends: Arc<[String]>,
    },
    /// One operation of a sync, once VPP answered (or it was skipped).
    Op {
        /// The job.
        id: JobId,
        /// The operation.
        op: Op,
        /// What became of it.
        result: OpResult,
    },
    /// A sync ended (also when the connection broke during it).
    SyncDone(Arc<SyncSummary>),
    /// A frontend's state or active pool changed (seen when a sync planned it).
    FrontendTransition {
        /// The frontend.
        frontend: String,
        /// Its previous state, `None` the first time.
        from: Option<FrontendState>,
        /// Its state now.
        to: FrontendState,
        /// The name of its active pool.
        active_pool: String,
    },
    /// Something the reconcile core reported (warmup release, lag, retry, ...).
    Reconcile(ReconcileEvent),
}

/// A name [`LbSyncer`] was given that the config in force does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No such frontend.
    #[error("no frontend named {0:?}")]
    Frontend(String),
    /// The frontend has no such pool.
    #[error("frontend {frontend:?} has no pool named {pool:?}")]
    Pool {
        /// The frontend.
        frontend: String,
        /// The pool asked for.
        pool: String,
    },
    /// The pool has no such backend.
    #[error("pool {pool:?} of frontend {frontend:?} has no backend {backend:?}")]
    Backend {
        /// The frontend.
        frontend: String,
        /// The pool.
        pool: String,
        /// The backend asked for.
        backend: String,
    },
}

/// Why [`LbSyncer::set_weight`] or [`LbSyncer::clear_weight`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    /// A name the config does not have.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The weight is above [`MAX_WEIGHT`].
    #[error("weight {0} is above {MAX_WEIGHT}")]
    OutOfRange(u8),
}

/// Why [`LbSyncer::plan`] has no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    /// A frontend the config does not have.
    #[error(transparent)]
    Name(#[from] NameError),
    /// There is no VPP session to dump.
    #[error("not connected to vpp")]
    NotConnected,
    /// The config has no `vpp` section: VPP is not programmed.
    #[error("the config has no vpp section")]
    NoVppConfig,
    /// Reading VPP's state failed.
    #[error(transparent)]
    Dump(#[from] DumpError),
}

/// Why [`LbSyncer::lb_state`] has no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    /// There is no VPP session to dump.
    #[error("not connected to vpp")]
    NotConnected,
    /// Reading VPP's state failed.
    #[error(transparent)]
    Dump(#[from] DumpError),
}

/// Why [`LbSyncer::sync`] did not report a finished sync.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// A frontend the config does not have.
    #[error(transparent)]
    Name(#[from] NameError),
    /// There is no VPP session (or it ended before the sync finished).
    #[error("not connected to vpp")]
    NotConnected,
    /// The config has no `vpp` section: VPP is not programmed.
    #[error("the config has no vpp section")]
    NoVppConfig,
    /// The startup warmup holds every sync for now.
    #[error("the startup warmup holds syncs for now")]
    Warmup,
    /// The syncer stopped.
    #[error("the syncer stopped")]
    Stopped,
}

/// The lb plugin's global configuration as VPP reports it (`lb_conf_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbConfValues {
    /// Source address of IPv4 GRE encapsulation.
    pub ip4_src_address: std::net::Ipv4Addr,
    /// Source address of IPv6 GRE encapsulation.
    pub ip6_src_address: std::net::Ipv6Addr,
    /// Sticky buckets per worker.
    pub sticky_buckets_per_core: u32,
    /// Idle flow timeout, seconds.
    pub flow_timeout: u32,
}

/// What VPP's lb plugin holds ([`LbSyncer::lb_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbDump {
    /// The global conf; `None` when VPP lacks `lb_conf_get` or refused it.
    pub conf: Option<LbConfValues>,
    /// The VIPs and their used ASes, as a sync reads them.
    pub vips: maglev_core::plan::VppState,
}

/// Why a VPP session ended (or did not start).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Incompatible(#[from] Incompatible),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("stats segment: {0}")]
    Stats(#[from] StatsError),
    #[error("stats socket {} was removed or replaced", .0.display())]
    StatsGone(PathBuf),
}

/// VPP refused `lb_conf`.
#[derive(Debug, thiserror::Error)]
#[error("lb_conf: {error}")]
struct ConfRefused {
    error: ApiError,
}

/// The cheap-clone handle of the sync engine; see the [module docs](self).
#[derive(Clone)]
pub struct LbSyncer {
    shared: Arc<Shared>,
}

impl fmt::Debug for LbSyncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LbSyncer")
            .field("api_socket", &self.shared.api_socket)
            .finish_non_exhaustive()
    }
}

/// What the handles and the driver share.
struct Shared {
    api_socket: PathBuf,
    core: Mutex<Core>,
    status: Mutex<Status>,
    /// The session's client while connected (for [`LbSyncer::plan`]).
    client: Mutex<Option<Client>>,
    /// The last counters scrape of this session.
    counters: watch::Sender<Option<Arc<CounterSnapshot>>>,
    wake: Notify,
    events: broadcast::Sender<SyncEvent>,
    states: Box<dyn StateSource>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The decisions and the operator's inputs, under one mutex.
struct Core {
    reconciler: Reconciler,
    overrides: WeightOverrides,
}

struct Status {
    connection: ConnectionState,
    vpp: Option<Arc<VppInfo>>,
    last_sync: Option<Arc<SyncSummary>>,
    syncs: u64,
    metrics: SyncMetrics,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The clock fed to the core: tokio's, so tests can pause it.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl LbSyncer {
    /// Starts the driver task (on the current tokio runtime) for `config`, reading backend
    /// states from `states`. The warmup clock starts now. The driver's logs are recorded
    /// within the caller's current `tracing` span.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(options: SyncerOptions, config: Arc<Config>, states: impl StateSource) -> Self {
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            api_socket: options.api_socket.clone(),
            core: Mutex::new(Core {
                reconciler: Reconciler::new(config, now()),
                overrides: WeightOverrides::new(),
            }),
            status: Mutex::new(Status {
                connection: ConnectionState::Connecting,
                vpp: None,
                last_sync: None,
                syncs: 0,
                metrics: SyncMetrics::default(),
            }),
            client: Mutex::new(None),
            counters: watch::channel(None).0,
            wake: Notify::new(),
            events,
            states: Box::new(states),
            stop,
            task: Mutex::new(None),
        });
        let driver = Driver {
            shared: Arc::clone(&shared),
            options,
            frontends: BTreeMap::new(),
            pushed_conf: None,
            stats_warned: false,
        };
        // The driver logs within the caller's span, if any.
        let task = driver.run(stop_rx).instrument(tracing::Span::current());
        *lock(&shared.task) = Some(tokio::spawn(task));
        Self { shared }
    }

    /// A point-in-time view: connection, VPP info, the last sync and its plan, the warmup.
    pub fn snapshot(&self) -> SyncerSnapshot {
        let (warmup, overrides, config) = {
            let core = lock(&self.shared.core);
            (
                core.reconciler.warmup_phase(now()),
                core.overrides.clone(),
                Arc::clone(core.reconciler.config()),
            )
        };
        let status = lock(&self.shared.status);
        SyncerSnapshot {
            connection: status.connection.clone(),
            vpp: status.vpp.clone(),
            last_sync: status.last_sync.clone(),
            syncs: status.syncs,
            warmup,
            overrides,
            config,
        }
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(lock(&self.shared.core).reconciler.config())
    }

    /// The last VIP counters scrape of the current VPP session: `None` before the first one,
    /// while disconnected, and without a stats socket.
    pub fn counters(&self) -> Option<Arc<CounterSnapshot>> {
        self.shared.counters.borrow().clone()
    }

    /// The sync engine's figures since start: operations applied by scope and kind, sync
    /// durations, the last successful sync, sessions started.
    pub fn sync_metrics(&self) -> SyncMetrics {
        lock(&self.shared.status).metrics.clone()
    }

    /// Follows [`LbSyncer::counters`]: the receiver sees every new scrape and the clearing on
    /// disconnect.
    pub fn watch_counters(&self) -> watch::Receiver<Option<Arc<CounterSnapshot>>> {
        self.shared.counters.subscribe()
    }

    /// A backend changed state: the frontends using it are synced (coalesced with whatever
    /// else is pending). Cheap and never blocks on I/O.
    pub fn transition(&self, backend: &str, from: BackendState, to: BackendState) {
        lock(&self.shared.core)
            .reconciler
            .on_transition(backend, from, to, now());
        self.shared.wake.notify_one();
    }

    /// `missed` transitions were lost upstream (a lagging subscription): a full sync follows
    /// unless one is already pending.
    pub fn lagged(&self, missed: u64) {
        lock(&self.shared.core).reconciler.on_lagged(missed, now());
        self.shared.wake.notify_one();
    }

    /// A reload: the new config is synced in full; a runtime weight override survives when
    /// its frontend, pool and backend membership still exist in the new config, and is
    /// dropped otherwise; `lb_conf` is pushed again if `vpp.lb` changed. The warmup clock is
    /// not reset.
    pub fn set_config(&self, config: Arc<Config>) {
        {
            let mut core = lock(&self.shared.core);
            core.overrides.retain(|frontend, pool, backend| {
                check_member(&config, frontend, pool, backend).is_ok()
            });
            core.reconciler.on_config(config, now());
        }
        self.shared.wake.notify_one();
    }

    /// Overrides the weight of `backend` in `pool` of `frontend` (0..=100) until cleared or
    /// the config reloads; that frontend is synced at once.
    ///
    /// # Errors
    ///
    /// [`WeightError::OutOfRange`] above [`MAX_WEIGHT`], [`WeightError::Name`] for a name
    /// the config does not have.
    pub fn set_weight(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u8,
    ) -> Result<(), WeightError> {
        if weight > MAX_WEIGHT {
            return Err(WeightError::OutOfRange(weight));
        }
        self.with_member(frontend, pool, backend, |overrides| {
            overrides.set(frontend, pool, backend, weight);
        })?;
        Ok(())
    }

    /// Drops the override [`LbSyncer::set_weight`] set, returning the weight it held; the
    /// frontend is synced at once.
    ///
    /// # Errors
    ///
    /// [`WeightError::Name`] for a name the config does not have.
    pub fn clear_weight(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
    ) -> Result<Option<u8>, WeightError> {
        Ok(self.with_member(frontend, pool, backend, |overrides| {
            overrides.remove(frontend, pool, backend)
        })?)
    }

    /// Runs `change` on the overrides when the names exist, then syncs the frontend.
    fn with_member<R>(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        change: impl FnOnce(&mut WeightOverrides) -> R,
    ) -> Result<R, NameError> {
        let result = {
            let mut core = lock(&self.shared.core);
            check_member(core.reconciler.config(), frontend, pool, backend)?;
            let result = change(&mut core.overrides);
            core.reconciler
                .request_sync(SyncRequest::Frontend(frontend.to_owned()), now());
            result
        };
        self.shared.wake.notify_one();
        Ok(result)
    }

    /// Asks for a sync of `scope` now (subject to the warmup). The sync runs in the driver;
    /// watch for [`SyncEvent::SyncDone`] to know when it ended.
    ///
    /// # Errors
    ///
    /// [`NameError::Frontend`] for a frontend the config does not have.
    pub fn sync_now(&self, scope: SyncRequest) -> Result<(), NameError> {
        {
            let mut core = lock(&self.shared.core);
            if let SyncRequest::Frontend(name) = &scope
                && core.reconciler.config().frontend(name).is_none()
            {
                return Err(NameError::Frontend(name.clone()));
            }
            core.reconciler.request_sync(scope, now());
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The dry run: the operations a sync of `scope` would send now, planned exactly as the
    /// driver plans (the backends' current states, the overrides, a fresh dump of VPP), without
    /// sending anything. One-time flushes still pending in the core (a transition not synced
    /// yet) are included, as the next sync of `scope` would send them; the warmup's admission
    /// is not applied (the plan shows what a sync of `scope` sends once admitted).
    ///
    /// # Errors
    ///
    /// An unknown frontend, no VPP session, no `vpp` section, or a failed dump.
    pub async fn plan(&self, scope: SyncRequest) -> Result<Plan, PlanError> {
        let (index, overrides, scope, frontends, flush) = {
            let core = lock(&self.shared.core);
            let index = Arc::clone(core.reconciler.index());
            let config = index.config();
            if config.vpp.is_none() {
                return Err(PlanError::NoVppConfig);
            }
            let (scope, frontends) = match &scope {
                SyncRequest::All => (Scope::All, Vec::new()),
                SyncRequest::Frontend(name) => {
                    let frontend = config
                        .frontend(name)
                        .ok_or_else(|| NameError::Frontend(name.clone()))?;
                    (Scope::Vip(vip_key(frontend)), vec![name.clone()])
                }
            };
            let flush = core.reconciler.pending_flush(scope);
            (index, core.overrides.clone(), scope, frontends, flush)
        };
        let client = lock(&self.shared.client)
            .clone()
            .ok_or(PlanError::NotConnected)?;
        let states = self.shared.states.backend_states();
        let desired = build_desired(&index, &frontends, &states, &overrides);
        let current = adapter::dump_state(&client, &desired.vpp).await?;
        Ok(plan(&current, &desired.vpp, scope, &flush))
    }

    /// What the lb plugin holds now: `lb_conf_get` and the three reads of a sync (VIPs with
    /// encap, stickiness and table length; used ASes with their weights), sent together.
    ///
    /// # Errors
    ///
    /// No VPP session, or a failed read.
    pub async fn lb_state(&self) -> Result<LbDump, StateError> {
        let client = lock(&self.shared.client)
            .clone()
            .ok_or(StateError::NotConnected)?;
        let (index, overrides) = {
            let core = lock(&self.shared.core);
            (Arc::clone(core.reconciler.index()), core.overrides.clone())
        };
        // Stickiness falls back to the desired value when VPP refuses the CLI.
        let states = self.shared.states.backend_states();
        let desired = build_desired(&index, &[], &states, &overrides);
        let conf = async {
            if client.message_id::<lb::LbConfGet>().is_err() {
                return Ok(None);
            }
            let reply = client.request(&lb::LbConfGet {}).await?;
            Ok((reply.retval == 0).then(|| LbConfValues {
                ip4_src_address: reply.ip4_src_address.into(),
                ip6_src_address: reply.ip6_src_address.into(),
                sticky_buckets_per_core: reply.sticky_buckets_per_core,
                flow_timeout: reply.flow_timeout,
            }))
        };
        let (conf, vips) = tokio::join!(conf, adapter::dump_state(&client, &desired.vpp));
        let conf = conf.map_err(|source| DumpError {
            message: lb::LbConfGet::NAME,
            source,
        })?;
        Ok(LbDump { conf, vips: vips? })
    }

    /// Runs a sync of `scope` now and waits for it: the first job that starts after this call
    /// and covers `scope` (a full sync covers every frontend). A sync is subject to the
    /// warmup: while it holds everything this returns [`SyncError::Warmup`]; in the per-frontend
    /// phase a frontend not yet released waits for its release (callers bound the wait).
    ///
    /// # Errors
    ///
    /// An unknown frontend, no `vpp` section, no VPP session (or a session that ends before
    /// the sync does), the warmup, or a stopped syncer.
    pub async fn sync(&self, scope: SyncRequest) -> Result<Arc<SyncSummary>, SyncError> {
        let mut events = self.subscribe();
        let after = {
            let mut core = lock(&self.shared.core);
            let config = core.reconciler.config();
            if config.vpp.is_none() {
                return Err(SyncError::NoVppConfig);
            }
            if let SyncRequest::Frontend(name) = &scope
                && config.frontend(name).is_none()
            {
                return Err(NameError::Frontend(name.clone()).into());
            }
            if lock(&self.shared.status).connection != ConnectionState::Connected {
                return Err(SyncError::NotConnected);
            }
            if core.reconciler.warmup_phase(now()) == Phase::Hold {
                return Err(SyncError::Warmup);
            }
            // A job already handed out was planned before this request: wait past it.
            let after = core.reconciler.in_flight().map_or(0, JobId::get);
            core.reconciler.request_sync(scope.clone(), now());
            after
        };
        self.shared.wake.notify_one();
        loop {
            match events.recv().await {
                Ok(SyncEvent::SyncDone(summary))
                    if summary.id.get() > after && covers(&summary, &scope) =>
                {
                    return Ok(summary);
                }
                Ok(SyncEvent::Disconnected { error: Some(_) }) => {
                    return Err(SyncError::NotConnected);
                }
                Ok(SyncEvent::Disconnected { error: None })
                | Err(broadcast::error::RecvError::Closed) => return Err(SyncError::Stopped),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            }
        }
    }

    /// Sync events from now on. A subscriber that falls more than
    /// [`SyncerOptions::event_capacity`] events behind gets `Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncEvent> {
        self.shared.events.subscribe()
    }

    /// Stops the driver (closing the VPP session) and waits for it. Idempotent.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let task = lock(&self.shared.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Whether a finished sync covered what `scope` asked for.
fn covers(summary: &SyncSummary, scope: &SyncRequest) -> bool {
    match scope {
        SyncRequest::All => summary.full,
        SyncRequest::Frontend(name) => summary.full || summary.frontends.contains(name),
    }
}

/// Checks that `backend` is in `pool` of `frontend`.
fn check_member(
    config: &Config,
    frontend: &str,
    pool: &str,
    backend: &str,
) -> Result<(), NameError> {
    let f = config
        .frontend(frontend)
        .ok_or_else(|| NameError::Frontend(frontend.to_owned()))?;
    let p = f
        .pools
        .iter()
        .find(|p| p.name == pool)
        .ok_or_else(|| NameError::Pool {
            frontend: frontend.to_owned(),
            pool: pool.to_owned(),
        })?;
    if p.backends.iter().any(|m| m.backend == backend) {
        Ok(())
    } else {
        Err(NameError::Backend {
            frontend: frontend.to_owned(),
            pool: pool.to_owned(),
            backend: backend.to_owned(),
        })
    }
}

/// The desired state of `frontends` (every frontend when empty): a per-VIP job builds only
/// the VIPs it plans. Each backend's state is read once.
fn build_desired<'a>(
    index: &'a ConfigIndex,
    frontends: &[String],
    states: &HashMap<String, BackendState>,
    overrides: &WeightOverrides,
) -> Desired<'a> {
    let states = index.backend_states(states);
    if frontends.is_empty() {
        return desired_state(index, &states, overrides);
    }
    let numbers: Vec<usize> = frontends
        .iter()
        .filter_map(|name| index.frontend_number(name))
        .collect();
    desired_frontends(index, &numbers, &states, overrides)
}

/// The `vpp.lb` values that `lb_conf` carries.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ConfFields {
    ipv4: std::net::Ipv4Addr,
    ipv6: std::net::Ipv6Addr,
    sticky_buckets_per_core: u32,
    flow_timeout: u32,
}

impl ConfFields {
    fn of(lb: &VppLb) -> Self {
        Self {
            ipv4: lb.ipv4_src_address,
            ipv6: lb.ipv6_src_address,
            sticky_buckets_per_core: lb.sticky_buckets_per_core,
            flow_timeout: lb.flow_timeout_secs(),
        }
    }

    fn request(self) -> lb::LbConf {
        lb::LbConf {
            ip4_src_address: self.ipv4.into(),
            ip6_src_address: self.ipv6.into(),
            sticky_buckets_per_core: self.sticky_buckets_per_core,
            flow_timeout: self.flow_timeout,
        }
    }
}

/// Whether `lb_conf` is pushed unconditionally or only when VPP holds other values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConfPush {
    /// On connect: read `lb_conf_get` first (when VPP has it) and skip an identical push.
    UnlessHeld,
    /// On a reload that changed the values.
    Always,
}

/// The driver task's own state.
struct Driver {
    shared: Arc<Shared>,
    options: SyncerOptions,
    /// Each frontend's last seen state and active pool (for `frontend-transition`).
    frontends: BTreeMap<String, (FrontendState, usize)>,
    /// The `lb_conf` values pushed (or found) in this session.
    pushed_conf: Option<ConfFields>,
    /// `vpp-stats-unavailable` was logged since the stats socket last connected.
    stats_warned: bool,
}

/// The stats half of a session: the mapped segment and the socket file it came from.
struct StatsLink {
    client: StatsClient,
    path: PathBuf,
    /// The socket file's device and inode when connected: VPP makes a new one when it restarts.
    identity: Option<(u64, u64)>,
}

impl StatsLink {
    fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    /// Whether the socket file is still the one the segment came from.
    fn alive(&self) -> bool {
        Self::identity(&self.path) == self.identity
    }

    /// `/sys/boottime`, when the segment has it.
    fn boot_time(&self) -> Option<SystemTime> {
        match self.client.get("/sys/boottime").ok()?.value {
            StatValue::Scalar(secs) | StatValue::Gauge(secs) => {
                SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
            }
            _ => None,
        }
    }
}

/// The counters scrape's state within one session.
struct Scrape {
    filter: StatsFilter,
    /// `None` until looked up, and after a sync that may have moved a VIP.
    index: Option<CounterIndex>,
}

impl Driver {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.options.backoff);
        loop {
            let connected = tokio::select! {
                () = stopped(&mut stop) => break,
                connected = self.connect() => connected,
            };
            let error = match connected {
                Ok((client, stats)) => {
                    backoff.reset();
                    let end = self.session(&client, stats.as_ref(), &mut stop).await;
                    *lock(&self.shared.client) = None;
                    self.shared.counters.send_replace(None);
                    drop(stats);
                    let _ = client.close().await;
                    lock(&self.shared.core).reconciler.on_disconnected(now());
                    self.drain_core_events();
                    match end {
                        Ok(()) => {
                            self.publish(SyncEvent::Disconnected { error: None });
                            break;
                        }
                        Err(error) => {
                            let error = error.to_string();
                            self.publish(SyncEvent::Disconnected {
                                error: Some(error.clone()),
                            });
                            error
                        }
                    }
                }
                Err(error) => {
                    let error = error.to_string();
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        name: "vpp-connect-failed",
                        socket = %self.options.api_socket.display(),
                        error = %error,
                        retry_in = ?delay,
                        "vpp-connect-failed"
                    );
                    self.set_connection(ConnectionState::Disconnected { error });
                    tokio::select! {
                        () = stopped(&mut stop) => break,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            self.set_connection(ConnectionState::Disconnected { error });
            let delay = backoff.next_delay();
            tokio::select! {
                () = stopped(&mut stop) => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.set_connection(ConnectionState::Stopped);
    }

    fn set_connection(&self, connection: ConnectionState) {
        let mut status = lock(&self.shared.status);
        if connection != ConnectionState::Connected {
            status.vpp = None;
        }
        status.connection = connection;
    }

    /// Connects both sockets, checks compatibility and reads VPP's version, pid and boot time.
    /// A stats socket that cannot be connected leaves the session without counters (one
    /// warning), not failed.
    async fn connect(&mut self) -> Result<(Client, Option<StatsLink>), SessionError> {
        let socket = self.options.api_socket.clone();
        let client = Client::connect(&socket, self.options.client.clone()).await?;
        if let Err(error) = adapter::check_compat(&client) {
            let _ = client.close().await;
            return Err(error.into());
        }
        let (version, ping) = tokio::join!(
            client.request(&vpe::ShowVersion {}),
            client.request(&memclnt::ControlPing {})
        );
        let version = version.ok();
        let pid = ping
            .ok()
            .filter(|reply| reply.retval == 0)
            .map(|reply| reply.vpe_pid);
        let stats = self.connect_stats().await;
        let info = Arc::new(VppInfo {
            socket,
            program: version
                .as_ref()
                .map_or_else(String::new, |v| v.program.clone()),
            version: version
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |v| v.version.clone()),
            build_directory: version
                .as_ref()
                .map_or_else(String::new, |v| v.build_directory.clone()),
            build_date: version.map(|v| v.build_date).unwrap_or_default(),
            pid,
            stats_socket: stats.as_ref().map(|s| s.path.clone()),
            boot_time: stats.as_ref().and_then(StatsLink::boot_time),
            client_index: client.client_index(),
            connected_at: SystemTime::now(),
        });
        {
            let mut status = lock(&self.shared.status);
            status.connection = ConnectionState::Connected;
            status.vpp = Some(Arc::clone(&info));
            status.metrics.connects += 1;
        }
        *lock(&self.shared.client) = Some(client.clone());
        self.publish(SyncEvent::Connected(info));
        Ok((client, stats))
    }

    /// Connects the stats socket, if one is configured. A failure is logged once as
    /// `vpp-stats-unavailable` (then at DEBUG until a connect succeeds again).
    async fn connect_stats(&mut self) -> Option<StatsLink> {
        let path = self.options.stats_socket.clone()?;
        let identity = StatsLink::identity(&path);
        match StatsClient::connect(&path).await {
            Ok(client) => {
                self.stats_warned = false;
                Some(StatsLink {
                    client,
                    path,
                    identity,
                })
            }
            Err(error) => {
                if self.stats_warned {
                    tracing::debug!(name: "vpp-stats-unavailable", socket = %path.display(), error = %error, "vpp-stats-unavailable");
                } else {
                    tracing::warn!(
                        name: "vpp-stats-unavailable",
                        socket = %path.display(),
                        error = %error,
                        detail = "syncing without counters",
                        "vpp-stats-unavailable"
                    );
                    self.stats_warned = true;
                }
                None
            }
        }
    }

    /// One session: returns `Ok` on shutdown, the error when the connection broke.
    async fn session(
        &mut self,
        client: &Client,
        stats: Option<&StatsLink>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        self.pushed_conf = None;
        let config = self.config();
        match &config.vpp {
            Some(vpp) => {
                self.push_conf(client, &vpp.lb, ConfPush::UnlessHeld)
                    .await?
            }
            None => {
                tracing::warn!(name: "vpp-no-config", detail = "the config has no vpp section: not programming vpp", "vpp-no-config");
            }
        }
        lock(&self.shared.core).reconciler.on_connected(now());
        let period = self.options.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + period, period);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut alive = tokio::time::interval(self.options.liveness_interval);
        alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let period = self.options.scrape_interval.max(Duration::from_millis(1));
        let mut scrape_tick = tokio::time::interval(period);
        scrape_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut scrape = Scrape {
            filter: counters::filter(),
            index: None,
        };
        loop {
            self.follow_conf(client).await?;
            if let Some((job, states, overrides)) = self.poll_job() {
                let id = job.id;
                let result = tokio::select! {
                    () = stopped(stop) => return Ok(()),
                    result = self.run_job(client, &job, &states, &overrides) => result,
                };
                let outcome = result.as_ref().map_or(SyncOutcome::Aborted, |(o, _)| *o);
                lock(&self.shared.core)
                    .reconciler
                    .on_sync_done(id, outcome, now());
                self.drain_core_events();
                let moved = result.as_ref().map_or(true, |(_, moved)| *moved);
                result?;
                if moved {
                    scrape.index = None;
                }
                continue;
            }
            let deadline = lock(&self.shared.core).reconciler.poll_timeout();
            tokio::select! {
                () = stopped(stop) => return Ok(()),
                () = self.shared.wake.notified() => {}
                () = sleep_until_opt(deadline) => {}
                _ = ping.tick() => client.ping().await?,
                _ = alive.tick() => {
                    if client.is_closed() {
                        return Err(ClientError::Closed.into());
                    }
                    if let Some(stats) = stats && !stats.alive() {
                        return Err(SessionError::StatsGone(stats.path.clone()));
                    }
                }
                _ = scrape_tick.tick(), if stats.is_some() => {
                    if let Some(stats) = stats {
                        self.scrape(client, stats, &mut scrape).await?;
                    }
                }
            }
        }
    }

    /// One counters scrape: the index looked up first when stale, then one stats read,
    /// published. A busy segment skips this round; a segment that cannot be read ends the
    /// session (both sockets reconnect).
    async fn scrape(
        &self,
        client: &Client,
        stats: &StatsLink,
        scrape: &mut Scrape,
    ) -> Result<(), SessionError> {
        if !stats.alive() {
            return Err(SessionError::StatsGone(stats.path.clone()));
        }
        let index = match &scrape.index {
            Some(index) => index,
            None => scrape.index.insert(counters::lookup_index(client).await?),
        };
        match counters::scrape(&stats.client, &scrape.filter, index) {
            Ok(snapshot) => {
                self.shared.counters.send_replace(Some(Arc::new(snapshot)));
                Ok(())
            }
            Err(error @ StatsError::Busy { .. }) => {
                tracing::debug!(name: "vpp-stats-scrape-error", error = %error, "vpp-stats-scrape-error");
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    fn config(&self) -> Arc<Config> {
        Arc::clone(lock(&self.shared.core).reconciler.config())
    }

    /// Pushes `lb_conf` when the config's `vpp.lb` values differ from the session's.
    async fn follow_conf(&mut self, client: &Client) -> Result<(), SessionError> {
        let config = self.config();
        let Some(vpp) = &config.vpp else {
            return Ok(());
        };
        if self.pushed_conf != Some(ConfFields::of(&vpp.lb)) {
            self.push_conf(client, &vpp.lb, ConfPush::Always).await?;
        }
        Ok(())
    }

    /// Pushes `lb_conf` (see [`ConfPush`]). A refusal is logged and the session carries on
    /// (VIPs and ASes do not depend on it); a transport error ends the session.
    async fn push_conf(
        &mut self,
        client: &Client,
        lb: &VppLb,
        push: ConfPush,
    ) -> Result<(), ClientError> {
        let want = ConfFields::of(lb);
        // Whatever happens, this session does not retry these values.
        self.pushed_conf = Some(want);
        let request = want.request();
        if push == ConfPush::UnlessHeld && client.message_id::<lb::LbConfGet>().is_ok() {
            let have = client.request(&lb::LbConfGet {}).await?;
            if have.retval == 0
                && have.ip4_src_address == request.ip4_src_address
                && have.ip6_src_address == request.ip6_src_address
                && have.sticky_buckets_per_core == request.sticky_buckets_per_core
                && have.flow_timeout == request.flow_timeout
            {
                tracing::debug!(name: "vpp-lb-conf-unchanged", "vpp-lb-conf-unchanged");
                return Ok(());
            }
        }
        let reply = client.request(&request).await?;
        if let Err(error) = reply.check() {
            let error = ConfRefused { error };
            tracing::error!(name: "vpp-lb-conf-error", error = %error, "vpp-lb-conf-error");
            return Ok(());
        }
        tracing::info!(
            name: "vpp-lb-conf-set",
            ipv4_src_address = %want.ipv4,
            ipv6_src_address = %want.ipv6,
            sticky_buckets_per_core = want.sticky_buckets_per_core,
            flow_timeout = want.flow_timeout,
            "vpp-lb-conf-set"
        );
        Ok(())
    }

    /// Advances the core's timers and takes the next job, if one is due and admitted, with
    /// the states and overrides to plan it with.
    fn poll_job(&mut self) -> Option<(SyncJob, HashMap<String, BackendState>, WeightOverrides)> {
        let states = self.shared.states.backend_states();
        let job = {
            let mut core = lock(&self.shared.core);
            let now = now();
            if core.reconciler.poll_timeout().is_some_and(|t| t <= now) {
                core.reconciler.handle_timeout(now);
            }
            core.reconciler
                .poll_sync(now, &states)
                .map(|job| (job, core.overrides.clone()))
        };
        self.drain_core_events();
        job.map(|(job, overrides)| (job, states, overrides))
    }

    /// Runs one job: desired state, dump, plan, execute. `Ok` with the outcome, and whether a
    /// VIP was added or removed ([`counters::needs_refresh`]), when VPP answered everything;
    /// `Err` when the connection failed.
    async fn run_job(
        &mut self,
        client: &Client,
        job: &SyncJob,
        states: &HashMap<String, BackendState>,
        overrides: &WeightOverrides,
    ) -> Result<(SyncOutcome, bool), SessionError> {
        if job.config.vpp.is_none() {
            // No vpp section: VPP is not programmed (`vpp-no-config` said so on connect).
            return Ok((SyncOutcome::Done, false));
        }
        let started_at = SystemTime::now();
        let start = Instant::now();
        let full = job.is_full();
        let only: &[String] = if full { &[] } else { &job.frontends };
        let desired = build_desired(&job.index, only, states, overrides);
        self.log_frontends(&desired.frontends, full);
        self.publish(SyncEvent::SyncStarted {
            id: job.id,
            reason: job.reason,
            full,
            frontends: job.frontends.clone().into(),
        });
        let mut total = Plan::default();
        let result = async {
            let current = adapter::dump_state(client, &desired.vpp).await?;
            for scope in &job.scopes {
                total
                    .ops
                    .extend(plan(&current, &desired.vpp, *scope, &job.flush).ops);
            }
            Ok::<_, SessionError>(pipeline::execute(client, &total.ops).await?)
        }
        .await;
        let (outcome, errors, first_error) = match &result {
            Ok(report) => {
                self.publish_ops(job.id, &total, report);
                self.count_applied(full, &total, report);
                let errors = report.failed.len() + report.skipped.len();
                let outcome = if report.needs_full_sync() {
                    SyncOutcome::Failed
                } else {
                    SyncOutcome::Done
                };
                let first = report
                    .failed
                    .first()
                    .map(|f| format!("{}: {}", f.op, f.error));
                (outcome, errors, first)
            }
            Err(error) => (SyncOutcome::Aborted, 0, Some(error.to_string())),
        };
        let summary = Arc::new(SyncSummary {
            id: job.id,
            reason: job.reason,
            full,
            frontends: job.frontends.clone(),
            outcome,
            stats: total.stats(),
            errors,
            first_error,
            plan: Arc::new(total),
            started_at,
            duration: start.elapsed(),
        });
        {
            let mut status = lock(&self.shared.status);
            status.syncs += 1;
            status.last_sync = Some(Arc::clone(&summary));
            if outcome != SyncOutcome::Aborted {
                status.metrics.duration.observe(summary.duration);
            }
            if outcome == SyncOutcome::Done {
                status.metrics.last_success = Some(SystemTime::now());
            }
        }
        let moved = counters::needs_refresh(&summary.stats);
        self.publish(SyncEvent::SyncDone(summary));
        result.map(|_| (outcome, moved))
    }

    /// Counts the operations VPP applied (planned, less the refused and skipped ones).
    fn count_applied(&self, full: bool, total: &Plan, report: &pipeline::Report) {
        let not_applied: HashSet<&Op> = report
            .failed
            .iter()
            .map(|f| &f.op)
            .chain(&report.skipped)
            .collect();
        let scope = SyncScopeKind::of(full);
        let mut status = lock(&self.shared.status);
        for op in total.ops.iter().filter(|op| !not_applied.contains(op)) {
            status.metrics.totals.record(scope, op);
        }
    }

    /// One [`SyncEvent::Op`] per planned operation, with what became of it.
    fn publish_ops(&self, id: JobId, total: &Plan, report: &pipeline::Report) {
        if self.shared.events.receiver_count() == 0 {
            return;
        }
        // One lookup per operation: a refused VIP of a large sync can skip thousands.
        let failed: HashMap<&Op, ApiError> =
            report.failed.iter().map(|f| (&f.op, f.error)).collect();
        let skipped: HashSet<&Op> = report.skipped.iter().collect();
        for op in total {
            let result = match failed.get(op) {
                Some(&error) => OpResult::Failed { error },
                None if skipped.contains(op) => OpResult::Skipped,
                None => OpResult::Applied,
            };
            let _ = self.shared.events.send(SyncEvent::Op {
                id,
                op: *op,
                result,
            });
        }
    }

    /// Publishes `frontend-transition` for every frontend whose state or active pool changed.
    /// `complete` says `frontends` has every frontend (others are forgotten).
    fn log_frontends(&mut self, frontends: &[FrontendSummary<'_>], complete: bool) {
        for summary in frontends {
            let now = (summary.state, summary.active_pool);
            let before = self.frontends.get(summary.name).copied();
            if before == Some(now) {
                continue;
            }
            self.frontends.insert(summary.name.to_owned(), now);
            self.publish(SyncEvent::FrontendTransition {
                frontend: summary.name.to_owned(),
                from: before.map(|(state, _)| state),
                to: summary.state,
                active_pool: summary.active_pool_name.to_owned(),
            });
        }
        if complete {
            let names: HashSet<&str> = frontends.iter().map(|f| f.name).collect();
            self.frontends
                .retain(|name, _| names.contains(name.as_str()));
        }
    }

    fn drain_core_events(&self) {
        loop {
            let event = lock(&self.shared.core).reconciler.poll_event();
            let Some(event) = event else { break };
            self.publish(SyncEvent::Reconcile(event));
        }
    }

    fn publish(&self, event: SyncEvent) {
        log_event(&event);
        let _ = self.shared.events.send(event);
    }
}

/// Logs an event under its stable name (operations are logged by [`crate::pipeline`]).
fn log_event(event: &SyncEvent) {
    match event {
        SyncEvent::Connected(info) => tracing::info!(
            name: "vpp-connect",
            socket = %info.socket.display(),
            version = %info.version,
            build_date = %info.build_date,
            pid = info.pid,
            client_index = info.client_index,
            stats_socket = info.stats_socket.as_ref().map(|p| tracing::field::display(p.display())),
            boottime = info.boot_time.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
            "vpp-connect"
        ),
        SyncEvent::Disconnected { error: Some(error) } => {
            tracing::warn!(name: "vpp-disconnect", error = %error, "vpp-disconnect");
        }
        SyncEvent::Disconnected { error: None } => {
            tracing::info!(name: "vpp-disconnect", reason = "shutdown", "vpp-disconnect");
        }
        SyncEvent::Op { .. } => {}
        SyncEvent::SyncStarted {
            id,
            reason,
            full,
            frontends,
        } => tracing::info!(
            name: "vpp-lbsync-start",
            job = id.get(),
            scope = %ScopeName { full: *full, frontends },
            reason = reason.as_str(),
            "vpp-lbsync-start"
        ),
        SyncEvent::SyncDone(s) => tracing::info!(
            name: "vpp-lbsync-done",
            job = s.id.get(),
            scope = %ScopeName { full: s.full, frontends: &s.frontends },
            reason = s.reason.as_str(),
            outcome = outcome_name(s.outcome),
            errors = s.errors,
            vip_add = s.stats.vip_add,
            vip_del = s.stats.vip_del,
            as_add = s.stats.as_add,
            as_del = s.stats.as_del,
            as_weight = s.stats.as_weight,
            duration = ?s.duration,
            "vpp-lbsync-done"
        ),
        SyncEvent::FrontendTransition {
            frontend,
            from,
            to,
            active_pool,
        } => tracing::info!(
            name: "frontend-transition",
            frontend = %frontend,
            from = from.map_or("none", FrontendState::as_str),
            to = to.as_str(),
            active_pool = %active_pool,
            "frontend-transition"
        ),
        SyncEvent::Reconcile(event) => log_reconcile(event),
    }
}

/// Logs one of the core's events under its [`ReconcileEvent::name`], at its level.
fn log_reconcile(event: &ReconcileEvent) {
    match event {
        ReconcileEvent::WarmupRelease {
            released,
            held,
            end,
        } => tracing::info!(
            name: "vpp-lb-warmup-release",
            released,
            held,
            end = end.map(|e| e.as_str()),
            "vpp-lb-warmup-release"
        ),
        ReconcileEvent::Suppressed { phase, held } => tracing::debug!(
            name: "vpp-lbsync-suppressed",
            phase = phase.as_str(),
            held,
            "vpp-lbsync-suppressed"
        ),
        ReconcileEvent::LagEscalated { missed } => tracing::warn!(
            name: "vpp-lbsync-lagged",
            missed,
            detail = "transitions lost: full sync",
            "vpp-lbsync-lagged"
        ),
        ReconcileEvent::RetryScheduled { id, after } => tracing::warn!(
            name: "vpp-lbsync-retry",
            job = id.get(),
            after = ?after,
            "vpp-lbsync-retry"
        ),
        ReconcileEvent::Abandoned { id } => {
            tracing::warn!(name: "vpp-lbsync-abandoned", job = id.get(), "vpp-lbsync-abandoned");
        }
        ReconcileEvent::StaleOutcome { id } => {
            tracing::debug!(name: "vpp-lbsync-stale", job = id.get(), "vpp-lbsync-stale");
        }
        ReconcileEvent::UnknownFrontend { name } => tracing::warn!(
            name: "vpp-lbsync-unknown-frontend",
            frontend = %name,
            "vpp-lbsync-unknown-frontend"
        ),
    }
}

/// The lower-case name of an outcome, for logs.
fn outcome_name(outcome: SyncOutcome) -> &'static str {
    match outcome {
        SyncOutcome::Done => "done",
        SyncOutcome::Failed => "failed",
        SyncOutcome::Aborted => "aborted",
    }
}

/// A sync's scope in logs: `all`, the frontend's name, or `<n> frontends`.
struct ScopeName<'a> {
    full: bool,
    frontends: &'a [String],
}

impl fmt::Display for ScopeName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.frontends {
            _ if self.full => f.write_str("all"),
            [one] => f.write_str(one),
            many => write!(f, "{} frontends", many.len()),
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn sleep_until_opt(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}
