//! Snapshot tests of the text rendering.
