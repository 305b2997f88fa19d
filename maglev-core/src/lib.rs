//! Pure decisions of the maglev control plane: config model, weights, failover, reconcile plan
//! and the Maglev table. No I/O, no async runtime.

#![cfg_attr(not(fuzzing), warn(missing_docs))]
#![forbid(unsafe_code)]

pub mod config;
pub mod desired;
pub mod frontends;
pub mod index;
pub mod maglev;
pub mod plan;
pub mod reconcile;
pub mod weights;
