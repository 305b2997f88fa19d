//! maglevc, the operator's CLI of maglevd: a birdc-style interactive shell and one-shot
//! commands over the `maglev.v1` gRPC API.
//!
//! The crate is a library with a thin binary, so that tests and benchmarks reach every part:
//!
//! | module | what it is |
//! |---|---|
//! | [`tree`] | the command tree: parsing, completion, `?` help and `help`, from one definition |
//! | [`exec`] | a parsed command run against maglevd; the one error type and its exit status |
//! | [`render`] | replies to aligned, optionally coloured text (pure) |
//! | [`json`] | replies to JSON for `--json`, with the field names documented |
//! | [`style`] | tables that stay aligned with colour, human durations |
//! | [`cli`] | the options, one-shot mode, printing replies and errors the same way in both modes |
//! | [`shell`] | the interactive shell: history, completion with live names, `?` |
//! | [`watch`] | `watch events`: the stream, stopped by a count, a key or Ctrl-C |
//!
//! maglevc depends on `maglev-api` (its `client` feature) and on no daemon crate.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;
pub mod exec;
pub mod json;
pub mod render;
pub mod shell;
pub mod style;
pub mod tree;
pub mod watch;
