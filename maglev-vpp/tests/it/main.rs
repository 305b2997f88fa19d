//! Integration tests of maglev-vpp against the VPP simulator.
