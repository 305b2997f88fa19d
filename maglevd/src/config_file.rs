//! Loading the config: from a file or the embedded example, with exit codes for `--check`
//! and for a refused startup.

use std::path::{Path, PathBuf};

use maglev_core::config::{Config, ConfigError, LoadOptions};
use maglev_health::checker::BackendSpec;

use crate::specs::{self, SpecConversionError};

/// The example config compiled into the binary, used when no `--config` is given.
pub const EMBEDDED_CONFIG: &str = include_str!("../../etc/maglev.yaml");

/// The source name of the embedded config in messages.
pub const EMBEDDED_NAME: &str = "<embedded etc/maglev.yaml>";

/// Exit code of `--check` for a parse (YAML, shape) error, as in the original.
pub const EXIT_PARSE: i32 = 1;
/// Exit code of `--check` for a semantic error, as in the original.
pub const EXIT_SEMANTIC: i32 = 2;
/// Exit code when the daemon refuses to start on an invalid config (`EX_USAGE`).
pub const EXIT_INVALID_CONFIG: i32 = 64;

/// Where the config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// [`EMBEDDED_CONFIG`].
    Embedded,
    /// A file, read again on every reload.
    File(PathBuf),
}

impl ConfigSource {
    /// The source for an optional `--config` path.
    pub fn from_arg(path: Option<&Path>) -> Self {
        path.map_or(Self::Embedded, |p| Self::File(p.to_owned()))
    }

    /// The name used in messages.
    pub fn name(&self) -> String {
        match self {
            Self::Embedded => EMBEDDED_NAME.to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }
}

/// A config that loaded, with its checker specs.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// One spec per backend, for the checker.
    pub specs: Vec<BackendSpec>,
}

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than the loader accepts.
    #[error(
        "{path}: config is too large (over the limit of {limit} bytes); raise the limit with --config-max-bytes or MAGLEV_CONFIG_MAX_BYTES"
    )]
    TooLarge {
        /// The file.
        path: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The text was refused by the config loader.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A health check the probers refuse.
    #[error("{source_name}: {error}")]
    Spec {
        /// The config's name.
        source_name: String,
        /// The refused check.
        error: SpecConversionError,
    },
}

impl LoadError {
    /// The `--check` exit code: 1 for unreadable or unparsable, 2 for semantic errors.
    pub fn check_exit_code(&self) -> i32 {
        match self {
            Self::Read { .. } | Self::TooLarge { .. } => EXIT_PARSE,
            Self::Config(error) if error.is_parse() => EXIT_PARSE,
            Self::Config(_) | Self::Spec { .. } => EXIT_SEMANTIC,
        }
    }

    /// `parse` or `semantic`, for logs.
    pub fn stage(&self) -> &'static str {
        match self.check_exit_code() {
            EXIT_PARSE => "parse",
            _ => "semantic",
        }
    }

    /// One line per error (`file:line:col: key: message`).
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_owned).collect()
    }
}

/// The `--check` line that says where probes run: `health checks: probes run in network
/// namespace NAME (FILE)`, or in maglevd's own network namespace.
pub fn netns_line(config: &Config) -> String {
    match &config.healthchecker.netns {
        Some(netns) => format!(
            "health checks: probes run in network namespace {netns} ({})",
            maglev_health::netns::netns_path(netns).display()
        ),
        None => "health checks: probes run in maglevd's own network namespace".to_owned(),
    }
}

/// Reads (for a file) and validates the config with the default [`LoadOptions`], and builds
/// the checker specs.
///
/// # Errors
///
/// See [`LoadError`].
pub fn load(source: &ConfigSource) -> Result<Loaded, LoadError> {
    load_with(source, &LoadOptions::default())
}

/// Reads (for a file) and validates the config within `options`' limits, and builds the
/// checker specs.
///
/// # Errors
///
/// See [`LoadError`].
pub fn load_with(source: &ConfigSource, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let name = source.name();
    let text = match source {
        ConfigSource::Embedded => EMBEDDED_CONFIG.to_owned(),
        ConfigSource::File(path) => read_bounded(path, options.max_bytes)
            .map_err(|source| LoadError::Read {
                path: name.clone(),
                source,
            })?
            .ok_or(LoadError::TooLarge {
                path: name.clone(),
                limit: options.max_bytes,
            })?,
    };
    load_str_with(&name, &text, options)
}

/// Validates config `text` named `name` with the default [`LoadOptions`] and builds the
/// checker specs.
///
/// # Errors
///
/// See [`LoadError`].
pub fn load_str(name: &str, text: &str) -> Result<Loaded, LoadError> {
    load_str_with(name, text, &LoadOptions::default())
}

/// Validates config `text` named `name` within `options`' limits and builds the checker
/// specs.
///
/// # Errors
///
/// See [`LoadError`].
pub fn load_str_with(name: &str, text: &str, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let config = Config::from_yaml_str_with(name, text, options)?;
    let specs = specs::backend_specs(&config).map_err(|error| LoadError::Spec {
        source_name: name.to_owned(),
        error,
    })?;
    Ok(Loaded { config, specs })
}

/// Reads at most `max_bytes` bytes; `None` when the file is larger, which is noticed without
/// reading it whole.
fn read_bounded(path: &Path, max_bytes: usize) -> std::io::Result<Option<String>> {
    use std::io::Read as _;
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_string(&mut text)?;
    Ok((text.len() <= max_bytes).then_some(text))
}
