//! maglev-health's integration tests, in one binary (one link instead of one per file), each
//! topic a module: the probe state machine (`machine`), the checker on a paused clock with fake
//! probers (`checker`), the HTTP, TCP, ICMP and half-open TCP probers against loopback
//! (`probe_http`, `probe_tcp`, `probe_icmp`, `probe_syn`), plain TCP checks without CAP_NET_RAW
//! (`probe_syn_unprivileged`), and probes from a network namespace the tests create (`netns`).
//! `support` has the loopback servers and certificates they share.
//!
//! Tests that drop a capability do it on their own thread only (capabilities are per thread),
//! and `probe_icmp` re-runs single tests of this binary in a child process of its own; nothing
//! here changes process-wide state, so the tests share the process.

mod checker;
mod machine;
mod netns;
mod probe_http;
mod probe_icmp;
mod probe_syn;
mod probe_syn_unprivileged;
mod probe_tcp;
mod support;
