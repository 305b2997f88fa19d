//! Loading the config: from a file or the embedded example, with exit codes for `--check`
//! and for a refused startup.

use std::path::{Path, PathBuf};

use maglev_core::config::{Config, ConfigError};
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
            Self::Read { .. } => EXIT_PARSE,
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

/// Reads (for a file) and validates the config, and builds the checker specs.
///
/// # Errors
///
/// See [`LoadError`].
pub fn load(source: &ConfigSource) -> Result<Loaded, LoadError> {
    let name = source.name();
    let text = match source {
        ConfigSource::Embedded => EMBEDDED_CONFIG.to_owned(),
        ConfigSource::File(path) => read_bounded(path).map_err(|source| LoadError::Read {
            path: name.clone(),
            source,
        })?,
    };
    load_str(&name, &text)
}

/// Validates config `text` named `name` and builds the checker specs.
///
/// # Errors
///
/// See [`LoadError`].
pub fn load_str(name: &str, text: &str) -> Result<Loaded, LoadError> {
    let config = Config::from_yaml_str(name, text)?;
    let specs = specs::backend_specs(&config).map_err(|error| LoadError::Spec {
        source_name: name.to_owned(),
        error,
    })?;
    Ok(Loaded { config, specs })
}

/// Reads at most one byte more than the loader accepts, so a huge file is refused by the
/// loader's size check instead of being read whole.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let limit = u64::try_from(maglev_core::config::MAX_INPUT_BYTES).unwrap_or(u64::MAX) + 1;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_string(&mut text)?;
    Ok(text)
}
