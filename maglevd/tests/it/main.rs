//! maglevd's tests: flags, `--check`, the config to checker conversion, and the daemon
//! against the simulator (signals, reloads, a big config), probes from a network namespace,
//! systemd notifications.

mod check;
mod cli;
mod daemon;
mod grpc;
mod metrics;
mod netns;
mod notify;
mod specs;
