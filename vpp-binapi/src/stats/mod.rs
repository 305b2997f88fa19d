//! Reader for the VPP stats segment.
//!
//! VPP publishes its counters in a shared-memory segment. Connecting to the stats socket
//! (`AF_UNIX`, `SOCK_SEQPACKET`, `/run/vpp/stats.sock` by default) yields the segment's memfd via
//! `SCM_RIGHTS`; [`StatsClient`] maps it read-only and reads entries by name or regex.
//!
//! Only the layout used since VPP 22.06 (header version 2 without the error vector, the 22.06
//! type numbering plus the 26.02 gauge type) is accepted; older layouts are refused with
//! [`StatsError::UnsupportedVersion`] or [`StatsError::UnsupportedLayout`].
//!
//! Design:
//! - every pointer read from the segment is translated against the base address recorded in the
//!   header and bounds-checked against the mapping; vector lengths are checked before allocating,
//!   and the total copied per read is bounded by a budget proportional to the segment size, so a
//!   corrupted segment yields a [`StatsError`], never a panic or an unbounded allocation;
//! - reads follow VPP's optimistic epoch / in-progress protocol and retry within a [`RetryPolicy`];
//! - the parser runs over any bounds-checked source: the live mapping (all `unsafe` lives in the
//!   private `segment` module) or a plain byte image through [`parse_image`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), vpp_binapi::stats::StatsError> {
//! use vpp_binapi::stats::{StatValue, StatsClient};
//! let stats = StatsClient::connect("/run/vpp/stats.sock").await?;
//! for entry in stats.dump(&["^/net/route/to$"])? {
//!     if let StatValue::CombinedCounters(c) = &entry.value {
//!         println!("{}: {:?}", entry.name, c.sum_per_index());
//!     }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod client;
mod error;
mod parse;
#[allow(unsafe_code)] // the mapping of the shared segment; every block has a SAFETY note
mod segment;
mod types;

pub use client::StatsClient;
pub use error::StatsError;
pub use parse::{MAX_SYMLINK_DEPTH, RetryPolicy, StatsFilter};
pub use types::{
    Combined, CombinedCounters, SimpleCounters, StatEntry, StatValue, Symlink, SymlinkValue,
};

/// Parses a plain byte image of a segment (for example a copy taken with
/// [`StatsClient::image`], a test fixture or a fuzz input) and returns every entry with its value.
///
/// Pointers in the image are translated with the base address recorded in its header, as for a
/// live segment. The image is read as is: the `in_progress` / `epoch` words are not consulted.
///
/// # Errors
///
/// Any [`StatsError`] describing why the image is not a valid 22.06+ segment. Never panics.
pub fn parse_image(image: &[u8]) -> Result<Vec<StatEntry>, StatsError> {
    parse_image_filtered(image, &StatsFilter::all())
}

/// Like [`parse_image`], keeping only entries whose names pass `filter`.
///
/// # Errors
///
/// As [`parse_image`].
pub fn parse_image_filtered(
    image: &[u8],
    filter: &StatsFilter,
) -> Result<Vec<StatEntry>, StatsError> {
    let src = parse::ImageSource(image);
    parse::Parser::new(&src)?.dump(filter, None)
}
