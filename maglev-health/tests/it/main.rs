//! maglev-health's integration tests that need their own fixtures: probes from a network
//! namespace the tests create (`netns`).

#[path = "../support/mod.rs"]
mod support;

mod netns;
