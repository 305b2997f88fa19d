//! maglevd.

fn main() {}
