//! VPP binary API for Rust without C: generated messages, wire codec, async socket client and
//! stats segment reader.

pub mod client;
pub mod codec;
pub mod r#gen;
pub mod stats;
