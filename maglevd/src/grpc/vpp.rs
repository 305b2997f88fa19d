//! [`VppSide`]: everything the gRPC service asks of VPP, as one small trait that the sync
//! engine's handle implements. The service holds an `Option<Arc<dyn VppSide>>`: without one
//! (VPP integration off, or not wired yet) every VPP RPC answers `UNAVAILABLE`.
//!
//! The trait speaks the domain types of `maglev-core` (plans, VPP states, overrides), never the
//! wire types, so the sync engine does not depend on the API crate.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use maglev_core::plan::{Op, PlanStats, VipKey, VppState};
use maglev_core::weights::WeightOverrides;

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

/// The lb counters of one VIP, summed over threads.
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
}
