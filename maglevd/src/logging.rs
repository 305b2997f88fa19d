//! Log setup: `tracing` to stdout, pretty or JSON, filtered by `--log-level`; beside it the
//! [`LogFeed`] layer that WatchEvents subscribers read, each at its own level.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::log_feed::LogFeed;

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

/// Installs the global subscriber. Records go to stdout, one per line, filtered by `level`;
/// [`LogFeed::global`] gets its own records, whatever `level` says.
///
/// # Errors
///
/// When `level` is not a valid filter.
pub fn init(format: LogFormat, level: &str) -> Result<(), LogLevelError> {
    let filter = filter(level)?;
    let stdout = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let stdout = match format {
        LogFormat::Pretty => stdout.with_target(false).boxed(),
        LogFormat::Json => stdout
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
    };
    // A second init (tests calling into the library) is not an error worth failing for.
    let _ = tracing_subscriber::registry()
        .with(stdout.with_filter(filter))
        .with(LogFeed::global().layer())
        .try_init();
    Ok(())
}
