//! maglevd's glue, kept out of `main.rs` so it can be tested: flags, config loading, the
//! config to checker conversion, the startup warmup, the demo backends, the VPP reconciler
//! and the daemon's main task. The logic itself lives in the libraries (`maglev-core`,
//! `maglev-health`, `vpp-binapi`, `vpp-sim`).

#![forbid(unsafe_code)]

pub mod cli;
pub mod config_file;
pub mod daemon;
pub mod demo;
pub mod logging;
pub mod specs;
pub mod vpp;
pub mod warmup;
