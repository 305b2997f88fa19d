//! [`ConfigControl`]: what CheckConfig and ReloadConfig ask of the daemon, as one small trait
//! the daemon's reload handle ([`crate::reload::Reloader`]) implements, so the service runs
//! the very code path SIGHUP runs without knowing the daemon's internals. Also the conversion
//! of a refused config into the wire's located errors.

use maglev_api::v1::ConfigError as WireError;
use maglev_core::config::ConfigError;

use crate::config_file::LoadError;
use crate::reload::{ReloadError, ReloadSummary};

/// The daemon's config handling, as the gRPC service sees it.
pub trait ConfigControl: Send + Sync + 'static {
    /// The name of the config source (its path), for replies.
    fn source_name(&self) -> String;

    /// Loads and validates the config source without applying it.
    ///
    /// # Errors
    ///
    /// Why the config would be refused.
    fn check(&self) -> Result<(), LoadError>;

    /// Loads, validates and applies the config source: SIGHUP's code path.
    ///
    /// # Errors
    ///
    /// Why the config was refused; the running config stays.
    fn reload(&self) -> Result<ReloadSummary, ReloadError>;
}

/// A refused config as the wire's parse error and semantic errors, each with file, line,
/// column and key.
pub(crate) fn wire_errors(error: &LoadError) -> (Option<WireError>, Vec<WireError>) {
    let whole = |file: &str, message: String| WireError {
        file: file.to_owned(),
        line: 0,
        column: 0,
        key: String::new(),
        message,
    };
    match error {
        LoadError::Read { path, source } => (Some(whole(path, source.to_string())), Vec::new()),
        LoadError::TooLarge { path, .. } => (Some(whole(path, error.to_string())), Vec::new()),
        LoadError::Spec { source_name, error } => (
            None,
            vec![WireError {
                key: format!("healthchecks.{}", error.check),
                ..whole(source_name, error.source.to_string())
            }],
        ),
        LoadError::Config(ConfigError::Parse(p)) => (
            Some(WireError {
                file: p.source_name.clone(),
                line: p.line,
                column: p.column,
                key: p.path.clone(),
                message: p.message.clone(),
            }),
            Vec::new(),
        ),
        LoadError::Config(other) => (
            None,
            other
                .semantic_errors()
                .iter()
                .map(|e| WireError {
                    file: e.source_name.clone(),
                    line: e.line,
                    column: e.column,
                    key: e.path.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        ),
    }
}
