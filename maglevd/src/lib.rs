//! maglevd's glue, kept out of `main.rs` so it can be tested: flags, config loading, the
//! config to checker conversion, the demo backends, the wiring of the checker into the VPP
//! sync engine and the daemon's main task. The logic itself lives in the libraries
//! (`maglev-core`, `maglev-health`, `maglev-vpp`, `vpp-binapi`, `vpp-sim`).
//!
//! # Modes
//!
//! | invocation | config | VPP |
//! |---|---|---|
//! | `maglevd` | the embedded `etc/maglev.yaml`, plus local demo backends ([`demo`]) | the in-process simulator |
//! | `maglevd --embedded-sim [--config F]` | `F`, else the embedded example | the in-process simulator |
//! | `maglevd --config F` | `F` | VPP on `/run/vpp/api.sock` (stats `/run/vpp/stats.sock`) |
//! | `maglevd --config F --vpp-api-socket S` | `F` | VPP (or `vpp-sim`) on `S` |
//! | `maglevd --config F --vpp-api-socket ''` | `F` | none: health checking only |
//! | `maglevd --check [--config F]` | validate and exit | - |
//!
//! Every flag has an environment override (`MAGLEV_CONFIG`, `MAGLEV_VPP_API_ADDR`,
//! `MAGLEV_VPP_STATS_ADDR`, `MAGLEV_LOG_FORMAT`, `MAGLEV_LOG_LEVEL`, `MAGLEV_GRPC_ADDR`,
//! `MAGLEV_READ_ONLY`, `MAGLEV_REFLECTION`, `MAGLEV_GRPC_TLS_*`); a flag wins over its
//! variable. The gRPC API listens on `127.0.0.1:9090` unless `--grpc-addr` says otherwise
//! (`unix:/path`, or `''` for none); see [`grpc::serve`]. The original's `--vpp-api-addr` / `--vpp-stats-addr` are accepted as aliases.
//!
//! # Exit codes
//!
//! `--check`: 0 valid, 1 unreadable or parse error, 2 semantic error, as the original (spec
//! B §1.7); each error on stderr as `file:line:col: key: message`. The daemon refuses to start
//! on an invalid config with 64 (`EX_USAGE`), after logging every error.
//!
//! # Signals
//!
//! `SIGHUP` reloads the config (spec B §1.8): a refused config is logged (`config-error` per
//! error, then `config-reload-failed`) and the running config stays; an accepted one goes to
//! the checker (unchanged checks keep probing, changed ones restart, removed backends go to
//! `removed`) and to the syncer, which syncs; the ReloadConfig RPC runs the same
//! [`reload::Reloader`]. `SIGINT` / `SIGTERM` end open gRPC streams with `UNAVAILABLE`, drain
//! in-flight calls for up to 5 s, stop the syncer,
//! close the VPP connection, stop every probe and exit 0.
//!
//! # systemd
//!
//! Under `Type=notify` ([`sd_notify`]): `READY=1` once the config is loaded and the gRPC API
//! and metrics listeners are bound, `RELOADING=1` then `READY=1` around a SIGHUP reload, `STOPPING=1` on shutdown,
//! and `WATCHDOG=1` every half `WatchdogSec=`. Nothing is sent without `$NOTIFY_SOCKET`.
//!
//! # Logs
//!
//! `tracing` records on stdout, `--log-format pretty|json`. The message of every record is
//! its stable event name (`starting`, `config-loaded`, `backend-transition`, `vpp-connect`,
//! `vpp-disconnect`, `vpp-lb-conf-set`, `vpp-lb-warmup-release`, `vpp-lbsync-start`,
//! `vpp-lbsync-vip-add`/`-del`, `vpp-lbsync-as-add`/`-del`/`-weight`, `vpp-lbsync-done`,
//! `vpp-lbsync-error`, `config-reload`, `config-reload-done`, `config-reload-failed`,
//! `grpc-listening`, `grpc-mutation`, `grpc-stopped`, `stopping`, `stopped`, ...); the
//! details are structured fields.

#![forbid(unsafe_code)]

pub mod build;
pub mod cli;
pub mod config_file;
pub mod daemon;
pub mod demo;
pub mod grpc;
pub mod log_feed;
pub mod logging;
pub mod metrics;
pub mod reload;
pub mod sd_notify;
pub mod specs;
pub mod vpp;
