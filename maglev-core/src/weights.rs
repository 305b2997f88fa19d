//! Backend states to weights: active pool, effective weight, flush, frontend state.
