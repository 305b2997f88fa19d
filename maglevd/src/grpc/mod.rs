//! The server side of the `maglev.v1` operator API (the contract lives in `maglev-api`).
//!
//! [`MaglevService`] implements the generated `Maglev` trait over:
//! - the checker ([`maglev_health::checker::Checker`]): backend views, history and the
//!   operator actions with their guards;
//! - the current config, a `watch::Receiver<Arc<Config>>`: frontends in file order, health
//!   checks, names;
//! - `maglev_core`'s desired state and VPP-exact Maglev table: effective weights and each
//!   backend's bucket share, and `maglev::disruption` for PreviewChange;
//! - an optional [`VppSide`] (the sync engine's handle): VPP info, lb state, sync, plan,
//!   counters and the runtime weight overrides. Without one those RPCs answer `UNAVAILABLE`.
//!
//! Errors map to gRPC codes: `NOT_FOUND` for an unknown name, `INVALID_ARGUMENT` for a weight
//! over 100 or a pool the backend is not in, `FAILED_PRECONDITION` for pausing or resuming a
//! disabled backend, `UNAVAILABLE` without VPP, `PERMISSION_DENIED` for a mutating RPC in
//! read-only mode. Every mutating RPC is logged (`grpc-mutation`, or `grpc-refused`) with its
//! peer.
//!
//! WatchEvents serves the replay (every backend and frontend asked for, from == to), then
//! live events of every kind from one hub task per service (see `events.rs`: backend and
//! frontend transitions, VPP connect and disconnect, each sync's operations and summary,
//! config reloads) and log records from [`crate::log_feed`], with a MissedEvents marker for
//! a subscriber that fell behind. The VPP side is implemented by
//! [`maglev_vpp::syncer::LbSyncer`] (wired in `daemon.rs`).
//! CheckConfig and ReloadConfig go through a [`ConfigControl`] (the daemon's
//! [`crate::reload::Reloader`], the code path SIGHUP runs). [`serve`] holds the listener (TCP or
//! unix socket), TLS, the health and reflection services and the graceful stop.

mod config;
mod convert;
mod events;
pub mod requests;
pub mod serve;
mod service;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
mod vpp;
#[cfg(test)]
mod watch_tests;

pub use config::ConfigControl;
pub use events::HUB_CAPACITY;
pub use service::{BuildInfo, MaglevService};
pub use vpp::{
    LbConf, LbCounters, LbState, SYNC_TIMEOUT, SyncReport, SyncScope, VipCounters, VppError,
    VppInfo, VppSide,
};
