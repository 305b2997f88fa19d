//! vpp-sim binary.

fn main() {}
