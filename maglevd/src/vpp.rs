//! The VPP reconciler task: connects to VPP (or starts the in-process simulator), pushes
//! `lb_conf`, and on every backend transition, reload, `sync-interval` tick and warmup step
//! computes the desired state, plans against what VPP reports and sends the operations.
//!
//! - **Coalescing** (spec A.5): the task runs one sync at a time. Events that arrive while a
//!   sync runs wait in their channels and are merged into one follow-up sync: the frontends
//!   touched by transitions are collected in a set, any full-sync trigger turns the follow-up
//!   into a full sync, and the one-time flushes are merged.
//! - **Warmup** (spec B §3.3): see [`crate::warmup`]. Held frontends keep their pending
//!   mark and are synced once released.
//! - **Connection** (spec B §4.1): `control_ping` every 10 s (and a local check of the
//!   socket every second); when the socket dies or a call
//!   fails at the transport level, the task logs `vpp-disconnect` and reconnects with a
//!   backoff (1 s doubling to 30 s). On every (re)connect `lb_conf` is pushed unless VPP
//!   already holds it, then a full sync runs.
//!
//! The glue that turns VPP's dumps into a [`VppState`] and plan operations into messages is
//! here because `vpp-binapi` is generic; the decisions (desired state, plan) come from
//! `maglev-core`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::{Config, VppLb};
use maglev_core::desired::{desired_state, flush_targets, vip_key};
use maglev_core::plan::{As, Encap, FlushSet, Op, Plan, Scope, Vip, VipKey, VppState, plan};
use maglev_core::weights::{BackendState, FrontendState, FrontendWeights, WeightOverrides};
use maglev_health::checker::{Checker, Prober};
use maglev_health::machine::Transition;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior};
use vpp_binapi::api::{ip_types, lb, lb_types, vlib, vpe};
use vpp_binapi::client::{Client, ClientError, ClientOptions};
use vpp_binapi::codec::Message;

use crate::cli::VppTarget;
use crate::warmup::{Admission, Phase, Warmup};

/// The name we register with (`show api clients`).
pub const CLIENT_NAME: &str = "vpp-maglev";
/// Period of the `control_ping` liveness check.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// First reconnect delay; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The messages the reconciler sends or expects, checked against VPP's table on connect.
pub fn required_messages() -> [(&'static str, u32); 8] {
    [
        (lb::LbConf::NAME, lb::LbConf::CRC),
        (lb::LbAddDelVipV2::NAME, lb::LbAddDelVipV2::CRC),
        (lb::LbAddDelAsV2::NAME, lb::LbAddDelAsV2::CRC),
        (lb::LbAsSetWeight::NAME, lb::LbAsSetWeight::CRC),
        (lb::LbVipDump::NAME, lb::LbVipDump::CRC),
        (lb::LbVipDetails::NAME, lb::LbVipDetails::CRC),
        (lb::LbAsV2Dump::NAME, lb::LbAsV2Dump::CRC),
        (lb::LbAsV2Details::NAME, lb::LbAsV2Details::CRC),
    ]
}

/// Why a session with VPP ended.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A transport-level failure: reconnect.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// VPP answered a call with a non-zero retval.
    #[error("{msg}: retval {retval} ({})", retval_name(*.retval))]
    Retval {
        /// The message.
        msg: &'static str,
        /// What VPP answered.
        retval: i32,
    },
    /// VPP lacks messages we need or has other definitions of them.
    #[error("incompatible vpp: {0}")]
    Incompatible(String),
}

impl SyncError {
    /// Whether the connection is unusable.
    fn is_fatal(&self) -> bool {
        !matches!(self, Self::Retval { .. })
    }
}

/// VPP's name for the retvals the lb plugin answers (`vnet/api_errno.h`).
pub fn retval_name(retval: i32) -> &'static str {
    match retval {
        -6 => "no such entry",
        -70 => "invalid memory size",
        -73 => "invalid argument",
        -81 => "value exists",
        -97 => {
            "invalid address family: the AS is not of the VIP's family (VPP takes ::/96 addresses such as ::1 for IPv4)"
        }
        _ => "vpp error",
    }
}

fn check(msg: &'static str, retval: i32) -> Result<(), SyncError> {
    if retval == 0 {
        Ok(())
    } else {
        Err(SyncError::Retval { msg, retval })
    }
}

/// Runs until `shutdown` turns true. See the [module docs](self).
pub async fn run<P: Prober>(
    target: VppTarget,
    checker: Checker<P>,
    config: watch::Receiver<Arc<Config>>,
    transitions: broadcast::Receiver<Transition>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (api, _sim) = match target {
        VppTarget::Disabled => {
            tracing::info!(name: "vpp-disabled", detail = "health checking only", "vpp-disabled");
            stopped(&mut shutdown).await;
            return;
        }
        VppTarget::Socket { api, .. } => (api, None),
        VppTarget::Embedded => match EmbeddedSim::start().await {
            Ok(sim) => (sim.api_socket(), Some(sim)),
            Err(error) => {
                tracing::error!(name: "vpp-sim-failed", error = %error, "vpp-sim-failed");
                stopped(&mut shutdown).await;
                return;
            }
        },
    };
    let mut reconciler = Reconciler {
        checker,
        config,
        transitions,
        warmup: None,
        start: Instant::now(),
        pending: Pending::full(),
        overrides: WeightOverrides::new(),
        frontends: BTreeMap::new(),
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        let connected = tokio::select! {
            () = stopped(&mut shutdown) => return,
            connected = connect(&api) => connected,
        };
        match connected {
            Ok(client) => {
                backoff = MIN_BACKOFF;
                let reason = reconciler.session(&client, &mut shutdown).await;
                let _ = client.close().await;
                match reason {
                    Ok(()) => {
                        tracing::info!(name: "vpp-disconnect", reason = "shutdown", "vpp-disconnect");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(name: "vpp-disconnect", error = %error, "vpp-disconnect");
                    }
                }
            }
            Err(error) => {
                tracing::warn!(
                    name: "vpp-connect-failed",
                    socket = %api.display(),
                    error = %error,
                    retry_in = ?backoff,
                    "vpp-connect-failed"
                );
            }
        }
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, checks compatibility and logs `vpp-connect`.
async fn connect(api: &std::path::Path) -> Result<Client, SyncError> {
    let client = Client::connect(api, ClientOptions::default().name(CLIENT_NAME)).await?;
    let report = client.compat(&required_messages());
    if !report.is_compatible() {
        let problems: Vec<String> = report.problems().map(|p| format!("{p:?}")).collect();
        let _ = client.close().await;
        return Err(SyncError::Incompatible(problems.join(", ")));
    }
    let version = match client.request(&vpe::ShowVersion {}).await {
        Ok(reply) => reply.version,
        Err(_) => String::from("unknown"),
    };
    tracing::info!(
        name: "vpp-connect",
        socket = %api.display(),
        version = %version,
        client_index = client.client_index(),
        "vpp-connect"
    );
    Ok(client)
}

/// What the next sync must cover.
#[derive(Debug, Default)]
struct Pending {
    /// Every frontend, and stale VIPs once the warmup is over.
    full: bool,
    /// Frontends touched by transitions.
    frontends: BTreeSet<String>,
    /// One-time flushes from transitions.
    flush: FlushSet,
}

impl Pending {
    fn full() -> Self {
        Self {
            full: true,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        !self.full && self.frontends.is_empty()
    }

    fn add_transition(&mut self, config: &Config, t: &Transition) {
        self.frontends
            .extend(config.frontends_of_backend(&t.backend).map(str::to_owned));
        let flush = flush_targets(config, &t.backend, t.from, t.to);
        for (vip, address) in flush.iter() {
            self.flush.insert(*vip, *address);
        }
    }
}

struct Reconciler<P: Prober> {
    checker: Checker<P>,
    config: watch::Receiver<Arc<Config>>,
    transitions: broadcast::Receiver<Transition>,
    warmup: Option<Warmup>,
    start: Instant,
    pending: Pending,
    overrides: WeightOverrides,
    /// Each frontend's last logged state and active pool.
    frontends: BTreeMap<String, (FrontendState, usize)>,
}

impl<P: Prober> Reconciler<P> {
    /// One connection's life: returns `Ok` on shutdown, the error when the connection broke.
    async fn session(
        &mut self,
        client: &Client,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), SyncError> {
        let mut config = self.config.borrow_and_update().clone();
        let mut lb = config.vpp.as_ref().map(|v| v.lb.clone());
        if let Some(lb) = &lb {
            self.warmup
                .get_or_insert_with(|| Warmup::new(lb.startup_min_delay, lb.startup_max_delay));
            conf_or_log(push_conf(client, lb, true).await)?;
        } else {
            tracing::warn!(name: "vpp-no-config", detail = "the config has no vpp section: not programming vpp", "vpp-no-config");
        }
        self.pending.full = true;
        let mut tick = sync_ticker(lb.as_ref());
        let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A local look at the client (no message): notices a dead socket within a second.
        let mut alive = tokio::time::interval(Duration::from_secs(1));
        alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if !self.pending.is_empty() && lb.is_some() {
                match self.sync(client, &config).await {
                    Ok(()) => {}
                    Err(error) if error.is_fatal() => return Err(error),
                    Err(error) => {
                        // VPP refused an operation: the next trigger (at the latest the
                        // sync-interval) retries from a fresh dump.
                        tracing::error!(name: "vpp-lbsync-error", error = %error, "vpp-lbsync-error");
                    }
                }
            }
            let boundary = self
                .warmup
                .as_ref()
                .and_then(|w| w.next_boundary(self.start.elapsed()))
                .map(|b| self.start + b);
            tokio::select! {
                () = stopped(shutdown) => return Ok(()),
                changed = self.config.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    config = self.config.borrow_and_update().clone();
                    let new_lb = config.vpp.as_ref().map(|v| v.lb.clone());
                    if let Some(new) = &new_lb {
                        match self.warmup.as_mut() {
                            Some(w) => w.set_delays(new.startup_min_delay, new.startup_max_delay),
                            None => {
                                self.warmup = Some(Warmup::new(new.startup_min_delay, new.startup_max_delay));
                            }
                        }
                        if lb.as_ref().map(conf_fields) != Some(conf_fields(new)) {
                            conf_or_log(push_conf(client, new, false).await)?;
                        }
                        if lb.as_ref().map(|l| l.sync_interval) != Some(new.sync_interval) {
                            tick = sync_ticker(Some(new));
                        }
                    }
                    lb = new_lb;
                    // A reload triggers a full sync (spec B §1.8).
                    self.pending.full = true;
                }
                received = self.transitions.recv() => self.on_transition(&config, received),
                _ = tick.tick() => {
                    tracing::debug!(name: "vpp-lbsync-periodic", "vpp-lbsync-periodic");
                    self.pending.full = true;
                }
                _ = ping.tick() => client.ping().await?,
                _ = alive.tick() => {
                    if client.is_closed() {
                        return Err(ClientError::Closed.into());
                    }
                }
                () = sleep_until_opt(boundary) => {
                    let elapsed = self.start.elapsed();
                    if let Some(w) = self.warmup.as_mut()
                        && w.phase(elapsed) == Phase::Done
                        && w.finish()
                    {
                        tracing::info!(name: "vpp-lb-warmup-release", scope = "all", reason = "startup-max-delay", "vpp-lb-warmup-release");
                    }
                    self.pending.full = true;
                }
            }
            // Coalesce: everything already queued joins this follow-up sync.
            loop {
                match self.transitions.try_recv() {
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    received => {
                        let received = received.map_err(|e| match e {
                            broadcast::error::TryRecvError::Lagged(n) => {
                                broadcast::error::RecvError::Lagged(n)
                            }
                            _ => broadcast::error::RecvError::Closed,
                        });
                        let closed = matches!(received, Err(broadcast::error::RecvError::Closed));
                        self.on_transition(&config, received);
                        if closed {
                            break;
                        }
                    }
                }
            }
        }
    }

    fn on_transition(
        &mut self,
        config: &Config,
        received: Result<Transition, broadcast::error::RecvError>,
    ) {
        match received {
            Ok(t) => self.pending.add_transition(config, &t),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(name: "vpp-lbsync-lagged", missed = n, detail = "transitions lost: full sync", "vpp-lbsync-lagged");
                self.pending.full = true;
            }
            Err(broadcast::error::RecvError::Closed) => {}
        }
    }

    /// One sync of what is pending and admitted by the warmup.
    async fn sync(&mut self, client: &Client, config: &Config) -> Result<(), SyncError> {
        let states: BTreeMap<String, BackendState> = self
            .checker
            .snapshot()
            .into_iter()
            .map(|s| (s.name.to_string(), s.state))
            .collect();
        let elapsed = self.start.elapsed();
        let warmup = self
            .warmup
            .get_or_insert_with(|| Warmup::new(Duration::ZERO, Duration::ZERO));
        if warmup.phase(elapsed) == Phase::Hold {
            tracing::debug!(name: "vpp-lbsync-suppressed", reason = "warmup", "vpp-lbsync-suppressed");
            return Ok(());
        }
        // Which frontends may be synced now.
        let mut admitted = Vec::new();
        let mut open = BTreeSet::new();
        let mut held = BTreeSet::new();
        for frontend in &config.frontends {
            let resolved = frontend
                .backend_names()
                .all(|b| states.get(b).copied().unwrap_or_default() != BackendState::Unknown);
            match warmup.admit(elapsed, &frontend.name, resolved) {
                Admission::Held => {
                    held.insert(frontend.name.clone());
                }
                Admission::Released => {
                    tracing::info!(name: "vpp-lb-warmup-release", frontend = %frontend.name, "vpp-lb-warmup-release");
                    admitted.push(frontend);
                }
                Admission::Open => {
                    open.insert(vip_key(frontend));
                    admitted.push(frontend);
                }
            }
        }
        if warmup.phase(elapsed) != Phase::Done
            && warmup.finish_if_all_released(config.frontends.iter().map(|f| f.name.as_str()))
        {
            tracing::info!(name: "vpp-lb-warmup-release", scope = "all", reason = "every frontend resolved", "vpp-lb-warmup-release");
        }
        let done = warmup.phase(elapsed) == Phase::Done;

        let scopes: Vec<(Scope, String)> = if done && self.pending.full {
            vec![(Scope::All, "all".to_owned())]
        } else {
            admitted
                .iter()
                .filter(|f| self.pending.full || self.pending.frontends.contains(&f.name))
                .map(|f| (Scope::Vip(vip_key(f)), f.name.clone()))
                .collect()
        };
        if !held.is_empty() {
            tracing::debug!(name: "vpp-lbsync-suppressed", reason = "warmup", frontends = ?held, "vpp-lbsync-suppressed");
        }
        // What stays pending: held frontends (synced once released).
        // One-time flushes only for frontends that were already released: a transition seen
        // while its frontend was held (a restart resolving its backends) is not a change of
        // what VPP was told, and the weight sync on release flushes whatever it zeroes.
        let mut flush = FlushSet::new();
        for (vip, address) in self.pending.flush.iter() {
            if open.contains(vip) {
                flush.insert(*vip, *address);
            }
        }
        let keep_full = self.pending.full && !done && !held.is_empty();
        self.pending = Pending {
            full: keep_full,
            frontends: self
                .pending
                .frontends
                .intersection(&held)
                .cloned()
                .collect(),
            flush: FlushSet::new(),
        };
        if scopes.is_empty() {
            return Ok(());
        }

        let desired = desired_state(config, &states, &self.overrides);
        self.log_frontends(config, &desired.frontends);
        let current = dump_state(client, &desired.vpp).await?;
        let scope_name = if scopes.len() == 1 {
            scopes[0].1.clone()
        } else {
            format!("{} frontends", scopes.len())
        };
        tracing::info!(name: "vpp-lbsync-start", scope = %scope_name, "vpp-lbsync-start");
        let mut total = Plan::default();
        for (scope, _) in &scopes {
            total
                .ops
                .extend(plan(&current, &desired.vpp, *scope, &flush).ops);
        }
        let mut errors = 0usize;
        for op in &total {
            log_op(op);
            match apply(client, op).await {
                Ok(()) => {}
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => {
                    // VPP refused this operation; the others still go out, and the next
                    // sync retries from a fresh dump.
                    errors += 1;
                    tracing::error!(name: "vpp-lbsync-error", op = %op, error = %error, "vpp-lbsync-error");
                }
            }
        }
        let stats = total.stats();
        tracing::info!(
            name: "vpp-lbsync-done",
            scope = %scope_name,
            errors,
            vip_add = stats.vip_add,
            vip_del = stats.vip_del,
            as_add = stats.as_add,
            as_del = stats.as_del,
            as_weight = stats.as_weight,
            "vpp-lbsync-done"
        );
        Ok(())
    }
}

impl<P: Prober> Reconciler<P> {
    /// Logs `frontend-transition` for every frontend whose state or active pool changed.
    fn log_frontends(&mut self, config: &Config, weights: &BTreeMap<String, FrontendWeights<'_>>) {
        for frontend in &config.frontends {
            let Some(w) = weights.get(&frontend.name) else {
                continue;
            };
            let now = (w.state, w.active_pool);
            let before = self.frontends.insert(frontend.name.clone(), now);
            if before == Some(now) {
                continue;
            }
            let pool = frontend
                .pools
                .get(w.active_pool)
                .map_or("", |p| p.name.as_str());
            tracing::info!(
                name: "frontend-transition",
                frontend = %frontend.name,
                from = before.map_or("none", |(s, _)| s.as_str()),
                to = w.state.as_str(),
                active_pool = pool,
                "frontend-transition"
            );
        }
        self.frontends
            .retain(|name, _| config.frontend(name).is_some());
    }
}

fn sync_ticker(lb: Option<&VppLb>) -> tokio::time::Interval {
    let period = lb.map_or(maglev_core::config::defaults::SYNC_INTERVAL, |l| {
        l.sync_interval
    });
    let period = period.max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The `vpp.lb` values that `lb_conf` carries.
fn conf_fields(lb: &VppLb) -> (std::net::Ipv4Addr, std::net::Ipv6Addr, u32, u32) {
    (
        lb.ipv4_src_address,
        lb.ipv6_src_address,
        lb.sticky_buckets_per_core,
        lb.flow_timeout_secs(),
    )
}

/// A refused `lb_conf` is logged and the daemon carries on (VIPs and ASes do not depend on
/// it); a transport error ends the session.
fn conf_or_log(result: Result<(), SyncError>) -> Result<(), SyncError> {
    match result {
        Err(error) if error.is_fatal() => Err(error),
        Err(error) => {
            tracing::error!(name: "vpp-lb-conf-error", error = %error, "vpp-lb-conf-error");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Pushes `lb_conf`. On connect (`on_connect`) it first reads `lb_conf_get` (when VPP has
/// it) and skips the push when VPP already holds these values.
async fn push_conf(client: &Client, lb: &VppLb, on_connect: bool) -> Result<(), SyncError> {
    let want = lb::LbConf {
        ip4_src_address: lb.ipv4_src_address.into(),
        ip6_src_address: lb.ipv6_src_address.into(),
        sticky_buckets_per_core: lb.sticky_buckets_per_core,
        flow_timeout: lb.flow_timeout_secs(),
    };
    if on_connect && client.message_id::<lb::LbConfGet>().is_ok() {
        let have = client.request(&lb::LbConfGet {}).await?;
        if have.retval == 0
            && have.ip4_src_address == want.ip4_src_address
            && have.ip6_src_address == want.ip6_src_address
            && have.sticky_buckets_per_core == want.sticky_buckets_per_core
            && have.flow_timeout == want.flow_timeout
        {
            tracing::debug!(name: "vpp-lb-conf-unchanged", "vpp-lb-conf-unchanged");
            return Ok(());
        }
    }
    let reply = client.request(&want).await?;
    check(lb::LbConf::NAME, reply.retval)?;
    tracing::info!(
        name: "vpp-lb-conf-set",
        ipv4_src_address = %lb.ipv4_src_address,
        ipv6_src_address = %lb.ipv6_src_address,
        sticky_buckets_per_core = lb.sticky_buckets_per_core,
        flow_timeout = lb.flow_timeout_secs(),
        "vpp-lb-conf-set"
    );
    Ok(())
}

/// What VPP holds: VIPs from `lb_vip_dump`, USED ASes from an unfiltered `lb_as_v2_dump`
/// (spec A.4), `src_ip_sticky` from `show lb vips verbose` (not in `lb_vip_details`). When
/// the CLI output cannot be read, a VIP's stickiness is taken from `desired` so that no
/// recreate is triggered by a missing fact.
pub async fn dump_state(client: &Client, desired: &VppState) -> Result<VppState, SyncError> {
    let vips = client.dump(&lb::LbVipDump::default()).await?;
    let ases = client
        .dump(&lb::LbAsV2Dump {
            protocol: 255,
            ..lb::LbAsV2Dump::default()
        })
        .await?;
    let sticky = match client
        .request(&vlib::CliInband {
            cmd: "show lb vips verbose".to_owned(),
        })
        .await
    {
        Ok(reply) if reply.retval == 0 => Some(parse_show_lb_vips(&reply.reply)),
        Ok(_) | Err(ClientError::UnknownMessage { .. } | ClientError::CrcMismatch { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    Ok(state_from_dumps(&vips, &ases, sticky.as_ref(), desired))
}

/// Builds the current state from dump replies (pure; see [`dump_state`]).
pub fn state_from_dumps(
    vips: &[lb::LbVipDetails],
    ases: &[lb::LbAsV2Details],
    sticky: Option<&BTreeMap<VipKey, bool>>,
    desired: &VppState,
) -> VppState {
    let mut state = VppState::new();
    for details in vips {
        let Some(key) = key_of(&details.vip) else {
            tracing::warn!(name: "vpp-dump-skip", vip = ?details.vip, detail = "unreadable prefix", "vpp-dump-skip");
            continue;
        };
        let Some(encap) = Encap::from_api_value(details.encap.0) else {
            tracing::warn!(name: "vpp-dump-skip", vip = %key, encap = details.encap.0, detail = "unknown encap", "vpp-dump-skip");
            continue;
        };
        let src_ip_sticky = match sticky {
            Some(map) => map.get(&key).copied().unwrap_or(false),
            None => desired.vips.get(&key).is_some_and(|v| v.src_ip_sticky),
        };
        state.vips.insert(
            key,
            Vip::new(encap, src_ip_sticky, u32::from(details.flow_table_length)),
        );
    }
    for details in ases {
        if details.flags & 1 == 0 {
            continue;
        }
        let (Some(key), Ok(address)) = (key_of(&details.vip), details.app_srv.to_ip()) else {
            continue;
        };
        if let Some(vip) = state.vips.get_mut(&key) {
            vip.ases.insert(address, As::new(details.weight));
        }
    }
    state
}

fn key_of(vip: &lb_types::LbVip) -> Option<VipKey> {
    let prefix = vip.pfx.to_ipnet().ok()?;
    Some(VipKey::new(prefix, vip.protocol.0, vip.port))
}

/// `src_ip_sticky` per live VIP from `show lb vips verbose`: a VIP block starts with
/// ` <type> [<index>] <prefix>[ src_ip_sticky][ removed]`, and has a `protocol:<p> port:<n>`
/// line unless it is an all-port VIP. Removed VIPs are left out; unreadable blocks skipped.
pub fn parse_show_lb_vips(text: &str) -> BTreeMap<VipKey, bool> {
    struct Block {
        prefix: ipnet::IpNet,
        sticky: bool,
        removed: bool,
        proto_port: Option<(u8, u16)>,
    }
    let mut blocks: Vec<Option<Block>> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 3 && words[1].starts_with('[') && words[1].ends_with(']') {
            blocks.push(words[2].parse().ok().map(|prefix| Block {
                prefix,
                sticky: words[3..].contains(&"src_ip_sticky"),
                removed: words[3..].contains(&"removed"),
                proto_port: None,
            }));
            continue;
        }
        if let (Some(Some(block)), [proto, port, ..]) = (blocks.last_mut(), words.as_slice())
            && let (Some(proto), Some(port)) =
                (proto.strip_prefix("protocol:"), port.strip_prefix("port:"))
            && block.proto_port.is_none()
            && let (Ok(proto), Ok(port)) = (proto.parse(), port.parse())
        {
            block.proto_port = Some((proto, port));
        }
    }
    blocks
        .into_iter()
        .flatten()
        .filter(|b| !b.removed)
        .map(|b| {
            let (proto, port) = b.proto_port.unwrap_or((255, 0));
            (VipKey::new(b.prefix, proto, port), b.sticky)
        })
        .collect()
}

fn log_op(op: &Op) {
    let vip = op.key().to_string();
    let detail = op.to_string();
    match op {
        Op::VipAdd { .. } => {
            tracing::info!(name: "vpp-lbsync-vip-add", vip = %vip, op = %detail, "vpp-lbsync-vip-add");
        }
        Op::VipDel { .. } => {
            tracing::info!(name: "vpp-lbsync-vip-del", vip = %vip, op = %detail, "vpp-lbsync-vip-del");
        }
        Op::AsAdd {
            address, weight, ..
        } => {
            tracing::info!(name: "vpp-lbsync-as-add", vip = %vip, address = %address, weight, "vpp-lbsync-as-add");
        }
        Op::AsDel { address, flush, .. } => {
            tracing::info!(name: "vpp-lbsync-as-del", vip = %vip, address = %address, flush, "vpp-lbsync-as-del");
        }
        Op::AsSetWeight {
            address,
            weight,
            flush,
            ..
        } => {
            tracing::info!(name: "vpp-lbsync-as-weight", vip = %vip, address = %address, weight, flush, "vpp-lbsync-as-weight");
        }
    }
}

fn prefix(key: &VipKey) -> ip_types::Prefix {
    ip_types::Prefix::from(key.prefix)
}

/// Sends one plan operation.
pub async fn apply(client: &Client, op: &Op) -> Result<(), SyncError> {
    match *op {
        Op::VipAdd {
            key,
            encap,
            src_ip_sticky,
            table_len,
        } => {
            let reply = client
                .request(&lb::LbAddDelVipV2 {
                    pfx: prefix(&key),
                    protocol: key.protocol,
                    port: key.port,
                    encap: lb_types::LbEncapType(encap.api_value()),
                    new_flows_table_length: table_len,
                    src_ip_sticky,
                    is_del: false,
                    ..lb::LbAddDelVipV2::default()
                })
                .await?;
            check(lb::LbAddDelVipV2::NAME, reply.retval)
        }
        Op::VipDel {
            key,
            encap,
            src_ip_sticky,
        } => {
            let reply = client
                .request(&lb::LbAddDelVipV2 {
                    pfx: prefix(&key),
                    protocol: key.protocol,
                    port: key.port,
                    encap: lb_types::LbEncapType(encap.api_value()),
                    src_ip_sticky,
                    is_del: true,
                    ..lb::LbAddDelVipV2::default()
                })
                .await?;
            check(lb::LbAddDelVipV2::NAME, reply.retval)
        }
        Op::AsAdd {
            key,
            address,
            weight,
        } => {
            let reply = client
                .request(&lb::LbAddDelAsV2 {
                    pfx: prefix(&key),
                    protocol: key.protocol,
                    port: key.port,
                    as_address: address.into(),
                    weight,
                    is_del: false,
                    is_flush: false,
                })
                .await?;
            check(lb::LbAddDelAsV2::NAME, reply.retval)
        }
        Op::AsDel {
            key,
            address,
            flush,
        } => {
            let reply = client
                .request(&lb::LbAddDelAsV2 {
                    pfx: prefix(&key),
                    protocol: key.protocol,
                    port: key.port,
                    as_address: address.into(),
                    weight: 0,
                    is_del: true,
                    is_flush: flush,
                })
                .await?;
            check(lb::LbAddDelAsV2::NAME, reply.retval)
        }
        Op::AsSetWeight {
            key,
            address,
            weight,
            flush,
        } => {
            let reply = client
                .request(&lb::LbAsSetWeight {
                    pfx: prefix(&key),
                    protocol: key.protocol,
                    port: key.port,
                    as_address: address.into(),
                    weight,
                    is_flush: flush,
                })
                .await?;
            check(lb::LbAsSetWeight::NAME, reply.retval)
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
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        self.handle.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maglev_health::machine::State;
    use maglev_health::result::ResultCode;

    const CONFIG: &str = "
maglev:
  backends:
    a: { address: 10.0.0.1 }
    b: { address: 10.0.0.2 }
  frontends:
    one:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools: [ { name: p, backends: { a: {}, b: {} } } ]
    two:
      address: 192.0.2.2
      protocol: tcp
      port: 80
      flush-on-down: false
      pools: [ { name: p, backends: { a: {} } } ]
";

    fn transition(backend: &str, from: State, to: State) -> Transition {
        Transition {
            backend: Arc::from(backend),
            from,
            to,
            at: std::time::Instant::now(),
            code: ResultCode::L4Con,
            detail: String::new(),
        }
    }

    #[test]
    fn transitions_coalesce_into_one_pending_sync() {
        let config = crate::config_file::load_str("t", CONFIG).unwrap().config;
        let mut pending = Pending::default();
        assert!(pending.is_empty());
        pending.add_transition(&config, &transition("b", State::Unknown, State::Up));
        pending.add_transition(&config, &transition("a", State::Up, State::Down));
        pending.add_transition(&config, &transition("a", State::Down, State::Up));
        assert!(!pending.is_empty() && !pending.full);
        let frontends: Vec<&str> = pending.frontends.iter().map(String::as_str).collect();
        assert_eq!(frontends, ["one", "two"]);
        // a went down: a one-time flush in `one` (flush-on-down) but not in `two`.
        let flushes: Vec<String> = pending
            .flush
            .iter()
            .map(|(k, a)| format!("{k} {a}"))
            .collect();
        assert_eq!(flushes, ["192.0.2.1/32 tcp:80 10.0.0.1"]);
    }

    #[test]
    fn unknown_backend_transition_touches_nothing() {
        let config = crate::config_file::load_str("t", CONFIG).unwrap().config;
        let mut pending = Pending::default();
        pending.add_transition(&config, &transition("zz", State::Up, State::Down));
        assert!(pending.is_empty());
        assert!(pending.flush.is_empty());
    }

    #[test]
    fn checker_states_map_onto_core_states() {
        let pairs = [
            (State::Unknown, BackendState::Unknown),
            (State::Up, BackendState::Up),
            (State::Down, BackendState::Down),
            (State::Paused, BackendState::Paused),
            (State::Disabled, BackendState::Disabled),
            (State::Removed, BackendState::Removed),
        ];
        for (health, core) in pairs {
            // One type: the checker's states are the core's states.
            assert_eq!(health, core);
            assert_eq!(health.as_str(), core.as_str());
        }
    }
}
