//! Integration tests of maglev-vpp against the VPP simulator.

mod e2e;
mod harness;
mod syncer;
