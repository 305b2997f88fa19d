//! A VPP simulator: a binary API socket server with a model of the lb plugin, and a stats
//! segment in shared memory.

pub mod stats;
