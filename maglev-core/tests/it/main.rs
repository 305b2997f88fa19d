//! maglev-core's integration tests, in one binary (one link instead of one per file), each
//! topic a module: the `maglev.yaml` loader (`config`, and its property tests in
//! `config_proptest`), the Maglev table (`maglev`), the reconcile plan (`plan`), desired state
//! from config and backend states (`plan_desired`), the reconcile state machine (`reconcile`)
//! and the weights and failover rules (`weights`).
//!
//! Every test here is pure (no I/O, no process-wide state), so they share the process freely.
//! Snapshots live in `it/snapshots/`, proptest regressions beside their module's file.

mod config;
mod config_proptest;
mod maglev;
mod plan;
mod plan_desired;
mod reconcile;
mod weights;
