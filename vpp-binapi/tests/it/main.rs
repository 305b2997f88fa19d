//! vpp-binapi's integration tests, in one binary (one link instead of one per file), except
//! `tests/client_tracing.rs`: it captures `tracing` events with a thread-local subscriber, which
//! other tests running in the same process would defeat through tracing's per-callsite
//! interest cache (a callsite first reached on their threads caches "never"; that file's
//! header says how).
//!
//! `client_socket` installs a global allocator that records the largest allocation, for the
//! whole binary: no test here may allocate 256 MiB or more at once.
//!
//! The value-level tests need the feature-gated derives: run them with
//! `cargo test -p vpp-binapi --features serde,arbitrary` (or `--all-features`).

#[allow(dead_code)]
mod fake;

mod client_frame;
mod client_socket;
mod examples;
#[cfg(feature = "serde")]
mod papi_golden;
#[cfg(feature = "arbitrary")]
mod roundtrip;
mod stats_reader;
