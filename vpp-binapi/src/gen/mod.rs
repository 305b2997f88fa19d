//! Generated message modules, one per `.api.json` file.
