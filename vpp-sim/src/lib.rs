//! A VPP simulator: a binary API socket server with a model of the lb plugin, and a stats
//! segment in shared memory.
//!
//! [`lb::LbModel`] is the plugin state as plain data; [`Simulator::start`] serves it on VPP's
//! socket transport (16-byte framing, `sockclnt_create` handshake, message table) so that our
//! own client and VPP's Python `vpp_papi` can talk to it. [`SimHandle`] exposes fault knobs for
//! tests (delays, dropped connections, forced retvals, garbage frames, restarts) and a journal of
//! every mutating request received.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use vpp_sim::{SimConfig, Simulator};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let sim = Simulator::start(SimConfig::new(dir.path().join("api.sock"))).await.unwrap();
//! // Clients connect to sim.api_socket(); tests steer the simulator through the handle:
//! sim.set_reply_delay(Some(std::time::Duration::from_millis(5)));
//! assert!(sim.journal().is_empty());
//! assert!(sim.with_lb(|lb| lb.vip_dump().is_empty()));
//! sim.shutdown();
//! # }
//! ```
#![cfg_attr(not(fuzzing), warn(missing_docs))]
// `unsafe` is allowed only in the shared-memory module of the stats segment.
#![deny(unsafe_code)]

pub mod lb;
mod maglev;
mod msgtable;
pub mod server;
pub mod stats;

pub use server::{JournalEntry, SimConfig, SimError, SimHandle, Simulator};
