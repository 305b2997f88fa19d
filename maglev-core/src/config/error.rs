//! Errors of the two validation stages: parse (YAML syntax, types, unknown keys) and semantic.

use std::fmt;

/// Why a `maglev.yaml` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not valid YAML, or does not have the shape of a config (types, unknown or
    /// missing keys, duplicate keys, limits). `maglevd --check` exits 1.
    #[error("{0}")]
    Parse(ParseError),
    /// The text parsed, but breaks one or more rules; every broken rule is listed, in file
    /// order. `maglevd --check` exits 2.
    #[error("{}", SemanticErrors(.0))]
    Invalid(Vec<SemanticError>),
}

impl ConfigError {
    /// Whether this is a parse (structural) error rather than a semantic one.
    #[must_use]
    pub fn is_parse(&self) -> bool {
        matches!(self, Self::Parse(_))
    }

    /// The semantic errors, empty for a parse error.
    #[must_use]
    pub fn semantic_errors(&self) -> &[SemanticError] {
        match self {
            Self::Parse(_) => &[],
            Self::Invalid(errors) => errors,
        }
    }
}

struct SemanticErrors<'a>(&'a [SemanticError]);

impl fmt::Display for SemanticErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// The parse stage refused the text. Rendered as `source:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(&self.source_name, self.line, self.column, &self.path, &self.message))]
#[non_exhaustive]
pub struct ParseError {
    /// Name of the source (usually the file path) as given to the loader.
    pub source_name: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// Dotted key path below `maglev:` (e.g. `frontends.web.pools[0].name`); empty when the
    /// error is not inside a key.
    pub path: String,
    /// What is wrong, lower-case.
    pub message: String,
}

/// One broken semantic rule. Rendered as `source:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(&self.source_name, self.line, self.column, &self.path, &self.message))]
#[non_exhaustive]
pub struct SemanticError {
    /// Name of the source (usually the file path) as given to the loader.
    pub source_name: String,
    /// 1-based line of the offending key or value.
    pub line: u64,
    /// 1-based column of the offending key or value.
    pub column: u64,
    /// Dotted key path below `maglev:`, e.g. `frontends.web.pools[0].backends.b1.weight`.
    pub path: String,
    /// What is wrong, lower-case.
    pub message: String,
}

fn render(source: &str, line: u64, column: u64, path: &str, message: &str) -> String {
    let mut out = String::from(source);
    if line > 0 {
        out.push_str(&format!(":{line}:{column}"));
    }
    out.push_str(": ");
    if !path.is_empty() {
        out.push_str(path);
        out.push_str(": ");
    }
    out.push_str(message);
    out
}
