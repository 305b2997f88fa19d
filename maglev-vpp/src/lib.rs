//! The lb sync engine: keeps VPP's `lb` plugin in step with the desired state that
//! `maglev-core` computes, over VPP's binary API (`vpp-binapi`), with no C and no FFI.
//!
//! - [`adapter`]: VPP's dumps to a [`maglev_core::plan::VppState`], `show lb vips verbose`
//!   parsing, plan operations to request messages (pure), the required-messages check.
//! - [`counters`]: the VIP counters scrape: where each VIP's lb and route counters are, one
//!   stats read, the per-VIP snapshot (the decisions pure).
//! - [`metrics`]: what the sync engine counts (operations applied, sync durations, API
//!   messages through the client's hook), as plain data for an exporter.
//! - [`pipeline`]: runs a sync's operations through the client's window, back to back,
//!   respecting only the real dependencies between them.
//! - [`syncer`]: [`syncer::LbSyncer`], the driver around `maglev_core::reconcile`: a
//!   cheap-clone handle that other code steers.
//! - [`error`]: the adapter's and pipeline's errors; a refused operation carries VPP's typed error.
//! - [`backoff`]: a reusable, jittered exponential backoff for reconnects.
#![cfg_attr(not(fuzzing), warn(missing_docs))]
#![forbid(unsafe_code)]

pub mod adapter;
pub mod backoff;
pub mod counters;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod syncer;
