//! The simulated stats segment and its socket.
//!
//! [`StatsSegment`] writes VPP's stats segment layout (22.06+, the layout `vpp_papi` and
//! `vpp_binapi::stats` read) into a memfd, and follows VPP's writer protocol (in-progress flag
//! and epoch) for structural changes. [`StatsListener`] / [`serve`] answer connections on a
//! `SOCK_SEQPACKET` socket with the memfd, as VPP's `stats.sock` does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vpp_sim::stats::StatsSimError> {
//! use std::sync::Arc;
//! use vpp_sim::stats::{LbCounter, SegmentConfig, StatsListener, StatsSegment};
//! let segment = Arc::new(StatsSegment::with_standard_entries(SegmentConfig::default())?);
//! let listener = StatsListener::bind("/tmp/stats.sock")?;
//! tokio::spawn(listener.run(segment.clone()));
//! segment.lb_vip_created(1)?;
//! segment.lb_count(LbCounter::FirstPacket, 0, 1, 1)?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod heap;
mod server;
#[allow(unsafe_code)] // the mapping of the shared segment; every block has a SAFETY note
mod shm;
mod writer;

pub use server::{StatsListener, serve};
pub use writer::{
    BOOTTIME, EntryIndex, LbCounter, ROUTE_TO, SegmentConfig, SegmentTxn, StatsSegment,
    StatsSimError,
};
