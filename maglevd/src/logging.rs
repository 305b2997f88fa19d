//! Log setup: `tracing` to stdout, pretty, JSON or logfmt, filtered by `--log-level`; beside it
//! the [`LogFeed`] layer that WatchEvents subscribers read, each at its own level.
//!
//! The stdout filter sits in a [`tracing_subscriber::reload`] layer: SIGHUP sets it again
//! ([`reload_level`]) from the `--env-file`'s `MAGLEV_LOG_LEVEL`, or from `--log-level` when the
//! file gives none, so an operator edits `/etc/default/maglevd` and runs `systemctl reload`.
//!
//! | SIGHUP, `--env-file` | level applied |
//! |---|---|
//! | none given | `--log-level` (unchanged) |
//! | file with `MAGLEV_LOG_LEVEL=...` | that value |
//! | file without it | `--log-level` (an earlier change is undone) |
//! | file unreadable, or a bad value | unchanged, `log-level-refused` at ERROR |

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry, reload};

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
    let (filter, handle) = reload::Layer::new(filter(level)?);
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
        LogFormat::Logfmt => tracing_logfmt::builder()
            .with_target(false)
            .with_span_name(false)
            .with_span_path(false)
            .layer()
            .with_writer(std::io::stdout)
            .boxed(),
    };
    // A second init (tests calling into the library) is not an error worth failing for.
    if tracing_subscriber::registry()
        .with(stdout.with_filter(filter))
        .with(LogFeed::global().layer())
        .try_init()
        .is_ok()
    {
        let _ = LEVEL.set(handle);
    }
    Ok(())
}

/// The stdout filter of the installed subscriber.
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The largest `--env-file` read: a few lines of settings, never a whole disk.
pub const MAX_ENV_FILE_BYTES: u64 = 64 * 1024;

/// Why SIGHUP left the log level as it was.
#[derive(Debug, thiserror::Error)]
pub enum ReloadLevelError {
    /// The env file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The env file is larger than [`MAX_ENV_FILE_BYTES`].
    #[error("{path} is larger than {MAX_ENV_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The level is not a valid filter.
    #[error(transparent)]
    Level(#[from] LogLevelError),
    /// No subscriber of ours is installed (a library user's own).
    #[error("maglevd's log subscriber is not installed")]
    NotInstalled,
    /// The subscriber is gone.
    #[error("the log subscriber is gone")]
    Gone,
}

/// The value of `MAGLEV_LOG_LEVEL` in env-file text: `KEY=value` lines, `#` comments, an
/// optional `export `, the value optionally in single or double quotes; the last one wins.
pub fn env_file_level(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let value = line.strip_prefix("MAGLEV_LOG_LEVEL")?.trim_start();
        let value = value.strip_prefix('=')?.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(value);
        Some(unquoted.to_owned())
    })
}

/// The level SIGHUP applies: the env file's `MAGLEV_LOG_LEVEL`, else `startup` (the
/// `--log-level` value), with where it came from (`env-file` or `flag`).
///
/// # Errors
///
/// The file cannot be read or is too large.
pub fn sighup_level(
    env_file: Option<&Path>,
    startup: &str,
) -> Result<(String, &'static str), ReloadLevelError> {
    let from_file = match env_file {
        None => None,
        Some(path) => {
            use std::io::Read as _;
            let read = |source| ReloadLevelError::Read {
                path: path.to_owned(),
                source,
            };
            let mut text = String::new();
            std::fs::File::open(path)
                .map_err(read)?
                .take(MAX_ENV_FILE_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(read)?;
            if text.len() as u64 > MAX_ENV_FILE_BYTES {
                return Err(ReloadLevelError::TooLarge {
                    path: path.to_owned(),
                });
            }
            env_file_level(&text)
        }
    };
    Ok(match from_file {
        Some(level) => (level, "env-file"),
        None => (startup.to_owned(), "flag"),
    })
}

/// Sets the stdout filter of the installed subscriber to `level`.
///
/// # Errors
///
/// A bad level (the filter in force stays), or no subscriber of ours.
pub fn reload_level(level: &str) -> Result<(), ReloadLevelError> {
    let filter = filter(level)?;
    let handle = LEVEL.get().ok_or(ReloadLevelError::NotInstalled)?;
    handle.reload(filter).map_err(|_| ReloadLevelError::Gone)
}

/// SIGHUP's log part: applies [`sighup_level`] and logs `log-level` (or `log-level-refused`).
pub fn on_sighup(env_file: Option<&Path>, startup: &str) {
    match sighup_level(env_file, startup).and_then(|(level, source)| {
        reload_level(&level)?;
        Ok((level, source))
    }) {
        Ok((level, source)) => {
            tracing::info!(name: "log-level", filter = %level, source, "log-level");
        }
        Err(error) => {
            tracing::error!(name: "log-level-refused", error = %error, "log-level-refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_level_reads_the_last_assignment_in_any_usual_form() {
        assert_eq!(env_file_level(""), None);
        assert_eq!(
            env_file_level("MAGLEV_CONFIG=/x\n# MAGLEV_LOG_LEVEL=debug\n"),
            None
        );
        assert_eq!(
            env_file_level("MAGLEV_LOG_LEVEL=debug"),
            Some("debug".into())
        );
        assert_eq!(
            env_file_level("export MAGLEV_LOG_LEVEL = \"info,maglevd=debug\"\n"),
            Some("info,maglevd=debug".into())
        );
        assert_eq!(
            env_file_level("MAGLEV_LOG_LEVEL='warn'\nMAGLEV_LOG_LEVEL=error\n"),
            Some("error".into())
        );
        assert_eq!(env_file_level("MAGLEV_LOG_LEVELX=debug"), None);
    }

    #[test]
    fn sighup_level_falls_back_to_the_flag_and_refuses_a_huge_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            sighup_level(None, "info").unwrap(),
            ("info".to_owned(), "flag")
        );
        let path = dir.path().join("maglevd");
        std::fs::write(&path, "MAGLEV_CONFIG=/etc/maglev.yaml\n").unwrap();
        assert_eq!(
            sighup_level(Some(&path), "warn").unwrap(),
            ("warn".to_owned(), "flag")
        );
        std::fs::write(&path, "MAGLEV_LOG_LEVEL=debug\n").unwrap();
        assert_eq!(
            sighup_level(Some(&path), "warn").unwrap(),
            ("debug".to_owned(), "env-file")
        );
        let huge = "#".repeat(usize::try_from(MAX_ENV_FILE_BYTES).unwrap() + 1);
        std::fs::write(&path, huge).unwrap();
        assert!(matches!(
            sighup_level(Some(&path), "info"),
            Err(ReloadLevelError::TooLarge { .. })
        ));
        assert!(matches!(
            sighup_level(Some(&dir.path().join("missing")), "info"),
            Err(ReloadLevelError::Read { .. })
        ));
    }
}
