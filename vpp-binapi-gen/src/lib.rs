//! Reads VPP .api.json definitions and generates typed Rust messages and wire codecs.
