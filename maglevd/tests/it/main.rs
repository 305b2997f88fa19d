//! maglevd's tests: flags, `--check`, the config to checker conversion, and the daemon
//! against the simulator (signals, reloads, a big config).

mod check;
mod cli;
mod daemon;
mod metrics;
mod specs;
