//! Log setup: `tracing` to stdout, pretty or JSON, filtered by `--log-level`.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// A `--log-level` that is neither a level nor a filter directive.
#[derive(Debug, thiserror::Error)]
#[error("invalid --log-level {level:?}: {reason}")]
pub struct LogLevelError {
    /// The value given.
    pub level: String,
    /// Why the filter refused it.
    pub reason: String,
}

/// The filter for a `--log-level` value.
///
/// # Errors
///
/// When `level` is not a valid filter.
pub fn filter(level: &str) -> Result<EnvFilter, LogLevelError> {
    let err = |reason: String| LogLevelError {
        level: level.to_owned(),
        reason,
    };
    if level.trim().is_empty() {
        return Err(err("empty".to_owned()));
    }
    EnvFilter::builder()
        .with_regex(false)
        .parse(level)
        .map_err(|e| err(e.to_string()))
}

/// Installs the global subscriber. Records go to stdout, one per line.
///
/// # Errors
///
/// When `level` is not a valid filter.
pub fn init(format: LogFormat, level: &str) -> Result<(), LogLevelError> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    // A second init (tests calling into the library) is not an error worth failing for.
    let _ = match format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    Ok(())
}
