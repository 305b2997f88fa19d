//! vpp-sim's integration tests, in one binary (one link instead of one per file).

mod common;

#[cfg(feature = "cli")]
mod binary;
mod client_lb;
mod client_sim;
mod lb_model;
mod lb_model_props;
mod papi_workflow;
mod sim_api;
mod stats_sim;
