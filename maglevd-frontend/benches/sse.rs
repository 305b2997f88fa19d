//! SSE fan-out and page weight (see BENCHMARKS.md).
fn main() {}
