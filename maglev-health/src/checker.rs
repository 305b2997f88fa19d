//! The checker: one worker per backend, a scheduler, operator actions and config apply.
