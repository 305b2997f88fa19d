//! [`VppSide`]: everything the gRPC service asks of VPP, as one small trait that the sync
//! engine's handle implements. The service holds an `Option<Arc<dyn VppSide>>`: without one
//! (VPP integration off, or not wired yet) every VPP RPC answers `UNAVAILABLE`.
//!
//! The trait speaks the domain types of `maglev-core` (plans, VPP states, overrides), never the
//! wire types, so the sync engine does not depend on the API crate.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use maglev_core::plan::{Op, PlanStats, VipKey, VppState};
use maglev_core::reconcile::SyncRequest;
use maglev_core::weights::WeightOverrides;
use maglev_vpp::counters::LbCounter;
use maglev_vpp::syncer::{
    ConnectionState, LbSyncer, PlanError, StateError, SyncError, SyncEvent, WeightError,
};
use tokio::sync::broadcast;

/// How long SyncVPPLBState waits for its sync (a frontend the warmup has not released yet
/// waits for its release).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a VPP request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VppError {
    /// maglevd has no VPP connection now.
    #[error("VPP is not connected")]
    NotConnected,
    /// The data asked for does not exist yet (for example: no counters scraped yet).
    #[error("{0} not available yet")]
    NotYet(&'static str),
    /// The startup warmup holds every sync for now.
    #[error("the startup warmup holds syncs for now")]
    Warmup,
    /// The operation did not finish in time.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// VPP refused or failed a request.
    #[error("VPP: {0}")]
    Failed(String),
}

/// Which frontends a sync or a plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncScope {
    /// Every frontend (and stale VIPs no frontend owns).
    All,
    /// One frontend, by name (the service has checked it exists).
    Frontend(String),
}

/// What maglevd knows of the VPP it is connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppInfo {
    /// `show_version.version`.
    pub version: String,
    /// `show_version.build_date`.
    pub build_date: String,
    /// `show_version.build_directory`.
    pub build_directory: String,
    /// VPP's process id.
    pub pid: u32,
    /// When VPP started, if known.
    pub boot_time: Option<SystemTime>,
    /// When maglevd connected.
    pub connect_time: SystemTime,
    /// The API socket.
    pub api_socket: String,
}

/// The lb plugin's global configuration as VPP reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbConf {
    /// IPv4 GRE source address.
    pub ip4_src_address: Ipv4Addr,
    /// IPv6 GRE source address.
    pub ip6_src_address: Ipv6Addr,
    /// Sticky buckets per worker.
    pub sticky_buckets_per_core: u32,
    /// Flow timeout, seconds.
    pub flow_timeout_secs: u32,
}

/// What VPP's lb plugin holds: the conf and the VIPs with their used ASes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbState {
    /// The global conf.
    pub conf: LbConf,
    /// The VIPs and their ASes (only ASes VPP marks used).
    pub vips: VppState,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The operations sent, in order.
    pub ops: Vec<Op>,
    /// Their counts.
    pub stats: PlanStats,
    /// The first error, when an operation failed.
    pub error: Option<String>,
    /// How long the sync took.
    pub duration: Duration,
}

/// The lb counters of one VIP and its route counters, summed over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipCounters {
    /// The VIP.
    pub key: VipKey,
    /// "packet from existing sessions".
    pub existing_session_packets: u64,
    /// "first session packet".
    pub first_session_packets: u64,
    /// "untracked packet".
    pub untracked_packets: u64,
    /// "no server configured".
    pub no_server_packets: u64,
    /// Packets forwarded to the VIP's prefix (`/net/route/to`); 0 when VPP has no route for it.
    pub route_packets: u64,
    /// Bytes forwarded to the VIP's prefix (`/net/route/to`); 0 when VPP has no route for it.
    pub route_bytes: u64,
}

/// One counters scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbCounters {
    /// When it was read.
    pub scraped_at: SystemTime,
    /// Per VIP.
    pub vips: Vec<VipCounters>,
}

/// Everything VPP, as the gRPC service needs it. Implemented by the sync engine's handle.
#[tonic::async_trait]
pub trait VppSide: Send + Sync + 'static {
    /// What maglevd knows of VPP; [`VppError::NotConnected`] without a connection.
    fn info(&self) -> Result<VppInfo, VppError>;

    /// Dumps what the lb plugin holds now.
    async fn lb_state(&self) -> Result<LbState, VppError>;

    /// The last counters scrape; [`VppError::NotYet`] until one exists.
    fn counters(&self) -> Result<LbCounters, VppError>;

    /// The operations a sync of `scope` would send now, without sending them.
    async fn plan(&self, scope: SyncScope) -> Result<Vec<Op>, VppError>;

    /// Runs a sync of `scope` now.
    async fn sync(&self, scope: SyncScope) -> Result<SyncReport, VppError>;

    /// The runtime weight overrides in force.
    fn weight_overrides(&self) -> WeightOverrides;

    /// Sets (`Some`) or removes (`None`) the override of `backend` in `pool` of `frontend`
    /// and applies it to that frontend's VIP at once. The service has validated the names and
    /// the weight.
    async fn set_weight_override(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: Option<u8>,
    ) -> Result<(), VppError>;

    /// The sync engine's events from now on (connect, disconnect, each sync's operations and
    /// summary); `None` when this side has none.
    fn subscribe(&self) -> Option<broadcast::Receiver<SyncEvent>> {
        None
    }
}

impl From<SyncScope> for SyncRequest {
    fn from(scope: SyncScope) -> Self {
        match scope {
            SyncScope::All => Self::All,
            SyncScope::Frontend(name) => Self::Frontend(name),
        }
    }
}

/// The sync engine's handle is the VPP side: its snapshot for the info and the overrides, its
/// last counters scrape for the counters, its dumps, dry run, waited sync and overrides for the
/// rest.
#[tonic::async_trait]
impl VppSide for LbSyncer {
    fn info(&self) -> Result<VppInfo, VppError> {
        let vpp = self.snapshot().vpp.ok_or(VppError::NotConnected)?;
        Ok(VppInfo {
            version: vpp.version.clone(),
            build_date: vpp.build_date.clone(),
            build_directory: vpp.build_directory.clone(),
            pid: vpp.pid.unwrap_or(0),
            boot_time: vpp.boot_time,
            connect_time: vpp.connected_at,
            api_socket: vpp.socket.display().to_string(),
        })
    }

    async fn lb_state(&self) -> Result<LbState, VppError> {
        let dump = LbSyncer::lb_state(self).await.map_err(|e| match e {
            StateError::NotConnected => VppError::NotConnected,
            StateError::Dump(e) => VppError::Failed(e.to_string()),
        })?;
        // Without lb_conf_get, the values pushed from the config are what VPP holds.
        let conf = match (dump.conf, &self.config().vpp) {
            (Some(c), _) => LbConf {
                ip4_src_address: c.ip4_src_address,
                ip6_src_address: c.ip6_src_address,
                sticky_buckets_per_core: c.sticky_buckets_per_core,
                flow_timeout_secs: c.flow_timeout,
            },
            (None, Some(vpp)) => LbConf {
                ip4_src_address: vpp.lb.ipv4_src_address,
                ip6_src_address: vpp.lb.ipv6_src_address,
                sticky_buckets_per_core: vpp.lb.sticky_buckets_per_core,
                flow_timeout_secs: vpp.lb.flow_timeout_secs(),
            },
            (None, None) => return Err(VppError::NotYet("lb conf (no vpp section)")),
        };
        Ok(LbState {
            conf,
            vips: dump.vips,
        })
    }

    fn counters(&self) -> Result<LbCounters, VppError> {
        if self.snapshot().connection != ConnectionState::Connected {
            return Err(VppError::NotConnected);
        }
        let snapshot = LbSyncer::counters(self).ok_or(VppError::NotYet("lb counters"))?;
        Ok(LbCounters {
            scraped_at: snapshot.scraped_at,
            vips: snapshot
                .vips
                .iter()
                .map(|(key, c)| VipCounters {
                    key: *key,
                    existing_session_packets: c.get(LbCounter::Next),
                    first_session_packets: c.get(LbCounter::First),
                    untracked_packets: c.get(LbCounter::Untracked),
                    no_server_packets: c.get(LbCounter::NoServer),
                    route_packets: c.route.map_or(0, |r| r.packets),
                    route_bytes: c.route.map_or(0, |r| r.bytes),
                })
                .collect(),
        })
    }

    async fn plan(&self, scope: SyncScope) -> Result<Vec<Op>, VppError> {
        match LbSyncer::plan(self, scope.into()).await {
            Ok(plan) => Ok(plan.ops),
            Err(PlanError::NotConnected) => Err(VppError::NotConnected),
            Err(e @ (PlanError::Name(_) | PlanError::NoVppConfig | PlanError::Dump(_))) => {
                Err(VppError::Failed(e.to_string()))
            }
        }
    }

    async fn sync(&self, scope: SyncScope) -> Result<SyncReport, VppError> {
        let summary = tokio::time::timeout(SYNC_TIMEOUT, LbSyncer::sync(self, scope.into()))
            .await
            .map_err(|_| VppError::TimedOut(SYNC_TIMEOUT))?
            .map_err(|e| match e {
                SyncError::NotConnected | SyncError::Stopped => VppError::NotConnected,
                SyncError::Warmup => VppError::Warmup,
                SyncError::Name(_) | SyncError::NoVppConfig => VppError::Failed(e.to_string()),
            })?;
        Ok(SyncReport {
            ops: summary.plan.ops.clone(),
            stats: summary.stats,
            error: summary.first_error.clone(),
            duration: summary.duration,
        })
    }

    fn weight_overrides(&self) -> WeightOverrides {
        self.snapshot().overrides
    }

    async fn set_weight_override(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: Option<u8>,
    ) -> Result<(), VppError> {
        let result = match weight {
            Some(weight) => self.set_weight(frontend, pool, backend, weight),
            None => self.clear_weight(frontend, pool, backend).map(drop),
        };
        result.map_err(|e: WeightError| VppError::Failed(e.to_string()))
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<SyncEvent>> {
        Some(LbSyncer::subscribe(self))
    }
}
