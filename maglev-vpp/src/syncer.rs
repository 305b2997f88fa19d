//! Placeholder: filled by the syncer work.
