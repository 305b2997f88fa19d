//! The `maglev.yaml` config model: parsing and semantic validation.
