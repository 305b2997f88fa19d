//! What the sync engine counts, as plain data for whoever exports it (maglevd renders it as
//! Prometheus metrics; this crate knows nothing of Prometheus).
//!
//! | data | where it comes from | read with |
//! |---|---|---|
//! | [`SyncTotals`]: operations applied, by scope (`all`, `vip`) and [`OpKind`] | every finished sync | [`LbSyncer::sync_metrics`](crate::syncer::LbSyncer::sync_metrics) |
//! | [`DurationHistogram`] of sync durations, last successful sync time | every finished sync | the same |
//! | [`ApiCounters`]: binary API messages by name, direction and result | the client's metrics hook ([`vpp_binapi::client::ClientMetrics`]) | [`ApiCounters::snapshot`] |
//!
//! The hook also logs each message at DEBUG as `vpp-api-send` / `vpp-api-recv` with its name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use maglev_core::plan::Op;
use vpp_binapi::client::{ClientMetrics, Direction, MessageEvent, Outcome};

/// The kind of a sync operation, as `maglev_vpp_lbsync_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// A VIP added.
    VipAdded,
    /// A VIP removed.
    VipRemoved,
    /// An AS added.
    AsAdded,
    /// An AS removed.
    AsRemoved,
    /// An AS's weight set (flushes included).
    AsWeightUpdated,
}

impl OpKind {
    /// Every kind, in label order.
    pub const ALL: [Self; 5] = [
        Self::VipAdded,
        Self::VipRemoved,
        Self::AsAdded,
        Self::AsRemoved,
        Self::AsWeightUpdated,
    ];

    /// The kind of `op`.
    #[must_use]
    pub fn of(op: &Op) -> Self {
        match op {
            Op::VipAdd { .. } => Self::VipAdded,
            Op::VipDel { .. } => Self::VipRemoved,
            Op::AsAdd { .. } => Self::AsAdded,
            Op::AsDel { .. } => Self::AsRemoved,
            Op::AsSetWeight { .. } => Self::AsWeightUpdated,
        }
    }

    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::VipAdded => "vip_added",
            Self::VipRemoved => "vip_removed",
            Self::AsAdded => "as_added",
            Self::AsRemoved => "as_removed",
            Self::AsWeightUpdated => "as_weight_updated",
        }
    }

    fn position(self) -> usize {
        match self {
            Self::VipAdded => 0,
            Self::VipRemoved => 1,
            Self::AsAdded => 2,
            Self::AsRemoved => 3,
            Self::AsWeightUpdated => 4,
        }
    }
}

/// What a sync covered, as `maglev_vpp_lbsync_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncScopeKind {
    /// A full sync.
    All,
    /// A sync of some frontends' VIPs.
    Vip,
}

impl SyncScopeKind {
    /// Both, in label order.
    pub const ALL: [Self; 2] = [Self::All, Self::Vip];

    /// The scope of a sync that was `full` or not.
    #[must_use]
    pub fn of(full: bool) -> Self {
        if full { Self::All } else { Self::Vip }
    }

    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Vip => "vip",
        }
    }

    fn position(self) -> usize {
        match self {
            Self::All => 0,
            Self::Vip => 1,
        }
    }
}

/// Operations VPP applied, by scope and kind, since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncTotals {
    counts: [[u64; 5]; 2],
}

impl SyncTotals {
    /// Counts one applied operation.
    pub fn record(&mut self, scope: SyncScopeKind, op: &Op) {
        let slot = &mut self.counts[scope.position()][OpKind::of(op).position()];
        *slot = slot.saturating_add(1);
    }

    /// The count of one scope and kind.
    #[must_use]
    pub fn get(&self, scope: SyncScopeKind, kind: OpKind) -> u64 {
        self.counts[scope.position()][kind.position()]
    }

    /// Every non-zero count (the original leaves zero kinds out).
    pub fn non_zero(&self) -> impl Iterator<Item = (SyncScopeKind, OpKind, u64)> + '_ {
        SyncScopeKind::ALL.into_iter().flat_map(move |scope| {
            OpKind::ALL
                .into_iter()
                .map(move |kind| (scope, kind, self.get(scope, kind)))
                .filter(|(_, _, n)| *n > 0)
        })
    }
}

/// The upper bounds (seconds) of the sync duration histogram's buckets.
pub const SYNC_DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A fixed-bucket histogram of durations (the buckets of [`SYNC_DURATION_BUCKETS`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationHistogram {
    /// Observations per bucket, not cumulative; the last slot is `+Inf`.
    counts: [u64; SYNC_DURATION_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl DurationHistogram {
    /// Records one duration.
    pub fn observe(&mut self, duration: Duration) {
        let secs = duration.as_secs_f64();
        let slot = SYNC_DURATION_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(SYNC_DURATION_BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += secs;
        self.count += 1;
    }

    /// The sum of all observations, in seconds.
    #[must_use]
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// How many observations.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `(upper bound, count)` per bucket, not cumulative, `+Inf` last.
    #[must_use]
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        SYNC_DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        SYNC_DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter())
            .scan(0u64, |acc, (le, n)| {
                *acc += n;
                Some((le, *acc))
            })
    }
}

/// The sync engine's own figures ([`LbSyncer::sync_metrics`](crate::syncer::LbSyncer::sync_metrics)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncMetrics {
    /// Operations applied, by scope and kind.
    pub totals: SyncTotals,
    /// Durations of finished syncs (aborted ones excluded).
    pub duration: DurationHistogram,
    /// When the last sync that VPP answered in full (`done`) finished.
    pub last_success: Option<SystemTime>,
    /// How many VPP sessions started since start.
    pub connects: u64,
}

/// A message's result, as `maglev_vpp_api_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiResult {
    /// Sent, or received and delivered.
    Success,
    /// Timed out, unmatched, unknown or malformed.
    Failure,
}

impl ApiResult {
    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ok => Self::Success,
            _ => Self::Failure,
        }
    }
}

/// A message's direction, as `maglev_vpp_api_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiDirection {
    /// Written to VPP.
    Send,
    /// Read from VPP.
    Recv,
}

impl ApiDirection {
    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Recv => "recv",
        }
    }

    fn of(direction: Direction) -> Self {
        match direction {
            Direction::Send => Self::Send,
            _ => Self::Recv,
        }
    }
}

/// One `maglev_vpp_api_total` series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKey {
    /// The message's name, without its CRC (bounded by VPP's message table).
    pub msg: Arc<str>,
    /// Which way.
    pub direction: ApiDirection,
    /// What became of it.
    pub result: ApiResult,
}

/// Counts binary API messages; plug it into the client with
/// [`ClientOptions::metrics`](vpp_binapi::client::ClientOptions::metrics). A cheap clone.
#[derive(Debug, Clone, Default)]
pub struct ApiCounters {
    counts: Arc<Mutex<HashMap<ApiKey, u64>>>,
}

impl ApiCounters {
    /// New, empty counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every series and its count.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(ApiKey, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// A message's name without the `_<crc>` suffix VPP's table appends.
fn bare_name(name_crc: &str) -> &str {
    match name_crc.rsplit_once('_') {
        Some((name, crc)) if crc.len() == 8 && crc.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => name_crc,
    }
}

impl ClientMetrics for ApiCounters {
    fn record(&self, event: &MessageEvent<'_>) {
        let msg = bare_name(event.name);
        let direction = ApiDirection::of(event.direction);
        let result = ApiResult::of(event.outcome);
        match direction {
            ApiDirection::Send => {
                tracing::debug!(name: "vpp-api-send", msg, result = result.label(), "vpp-api-send");
            }
            ApiDirection::Recv => {
                tracing::debug!(name: "vpp-api-recv", msg, result = result.label(), "vpp-api-recv");
            }
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        // Look up by borrowed parts first: the common case allocates nothing.
        if let Some(n) = counts
            .iter_mut()
            .find(|(k, _)| &*k.msg == msg && k.direction == direction && k.result == result)
            .map(|(_, n)| n)
        {
            *n += 1;
            return;
        }
        counts.insert(
            ApiKey {
                msg: Arc::from(msg),
                direction,
                result,
            },
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_drop_only_a_crc_suffix() {
        assert_eq!(bare_name("lb_add_del_vip_v2_7c520e0f"), "lb_add_del_vip_v2");
        assert_eq!(bare_name("control_ping"), "control_ping");
        assert_eq!(bare_name("show_lb_vips"), "show_lb_vips");
        assert_eq!(bare_name("unknown"), "unknown");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = DurationHistogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c.first(), Some(&(0.0005, 1)));
        assert_eq!(c[3], (0.005, 2));
        assert_eq!(c.last(), Some(&(f64::INFINITY, 3)));
        assert_eq!(h.count(), 3);
        assert!((h.sum() - 10.0031).abs() < 1e-9);
    }

    #[test]
    fn totals_leave_zero_kinds_out() {
        let mut t = SyncTotals::default();
        let key = maglev_core::plan::VipKey::new("192.0.2.1/32".parse().unwrap(), 6, 80);
        let op = Op::AsDel {
            key,
            address: "10.0.0.1".parse().unwrap(),
            flush: true,
        };
        t.record(SyncScopeKind::Vip, &op);
        t.record(SyncScopeKind::Vip, &op);
        let all: Vec<_> = t.non_zero().collect();
        assert_eq!(all, [(SyncScopeKind::Vip, OpKind::AsRemoved, 2)]);
    }
}
