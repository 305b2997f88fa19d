//! Placeholder: filled by the backoff work.
