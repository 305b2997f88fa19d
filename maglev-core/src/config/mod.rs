//! The `maglev.yaml` config model: parsing and semantic validation.
//!
//! Loading is two stages, as in the Go original: the parse stage turns YAML into typed raw
//! structs (unknown keys, duplicate keys and type mismatches are errors, reported with line,
//! column and key path), then the semantic stage checks every rule and resolves every default,
//! reporting every broken rule at once. The loader does no I/O: callers read the file and pass
//! its text with a source name for messages.
//!
//! # Rules checked by the semantic stage
//!
//! Every broken rule is reported (sorted by position) as `file:line:column: key: message`.
//!
//! - `healthchecker.transition-history` is 1-10000; `netns` is a name (no `/`, not `.` or `..`)
//!   or an absolute path (no `.`, `..` or empty components).
//! - With a `vpp` section, `vpp.lb` is required, and so are `ipv4-src-address` (IPv4) and
//!   `ipv6-src-address` (IPv6). `sticky-buckets-per-core` is a power of two up to 2^28;
//!   `flow-timeout` is whole seconds in 1-120 (`40s` or `40`); `sync-interval` is > 0;
//!   `startup-max-delay` is not below `startup-min-delay` (both may be 0).
//! - Durations are Go-style (`500ms`, `2s`, `1m30s`, `1.5h`, `0`); a bare number other than 0
//!   needs a unit.
//! - Health checks: `port` 1-65535, required for http/https/tcp, forbidden for icmp;
//!   `interval`, `fast-interval`, `down-interval`, `timeout` > 0; an explicit `timeout` must
//!   not exceed `interval` (the default timeout is `min(1s, interval)`); `rise`/`fall` 1-100;
//!   `probe-ipv4-src` IPv4 and `probe-ipv6-src` IPv6; `params` keys only where they apply
//!   (`path`, `host`, `response-code`, `response-regexp` for http/https; `ssl` for tcp;
//!   `server-name`, `insecure-skip-verify` for https or tcp with `ssl: true`); `path` absolute;
//!   `host`/`server-name` non-empty without spaces; `response-code` `200` or `200-399` within
//!   100-599; `response-regexp` compiles (within a size limit).
//! - Backends: `address` is a unicast IP address; `healthcheck` names an existing check.
//! - Frontends: `address` is a unicast IP address, or a prefix without host bits; `protocol`
//!   is tcp, udp or any; `port` 0-65535, with port 0 exactly for protocol any (absent protocol
//!   and port mean an all-port VIP); `new-flows-table-length` a power of two up to 2^24;
//!   `pools` non-empty, each pool named (non-empty, unique in the frontend) with at least one
//!   backend; every member names an existing backend, with `weight` 0-100; all backends of a
//!   frontend share the VIP's address family; no IPv6 backend in `::/96` (VPP's lb plugin
//!   takes those for IPv4 addresses); two different backends with the same address
//!   cannot serve one frontend; no two frontends share a VIP (prefix, protocol, port).
//! - Section names are non-empty; duplicate names (any duplicate YAML key) are parse errors.
//!
//! # Decisions beyond the original
//!
//! - A frontend `address` may be a prefix (`192.0.2.0/28`); a plain address is a host prefix.
//! - Without `protocol`, a frontend is an all-port VIP and must not set a port.
//! - A backend listed in several pools of one frontend counts in its first pool (as the
//!   original does); listing two backends with one address in one frontend is an error.
//! - Without a `vpp` section the config still loads ([`Config::vpp`] is `None`); a daemon
//!   that programs VPP must refuse to do so.
//!
//! ```
//! use maglev_core::config::Config;
//!
//! let text = "
//! maglev:
//!   backends:
//!     web1: { address: 127.0.0.11 }
//!   frontends:
//!     web:
//!       address: 127.0.0.100
//!       protocol: tcp
//!       port: 80
//!       pools:
//!         - name: primary
//!           backends:
//!             web1: {}
//! ";
//! let config = Config::from_yaml_str("maglev.yaml", text).unwrap();
//! let web = config.frontend("web").unwrap();
//! assert_eq!(web.pools[0].backends[0].weight, 100);
//! assert!(web.flush_on_down);
//! ```

mod duration;
mod error;
mod fast;
mod model;
mod raw;
mod validate;

pub use error::{ConfigError, ParseError, SemanticError};
pub use model::{
    Backend, CheckKind, Config, Encap, Frontend, HealthCheck, HealthChecker, HttpParams, Pool,
    PoolMember, Protocol, ResponseRegex, StatusRange, TlsParams, Vpp, VppLb, defaults,
};

use serde::Deserialize as _;
use serde_path_to_error::Segment;

/// Every key path `maglev.yaml` accepts, in file order: the one list the config reference
/// (`docs/config-reference.md`) and `maglev.yaml(5)` are checked against.
///
/// A path names the keys from the top of the file, joined by `.`; `<name>` stands for a name
/// the operator chooses (a health check, a backend, a frontend), `[]` for each item of a list.
/// A test checks the list against the parser, both ways: every section accepts exactly the
/// keys listed under it, and no listed leaf takes keys of its own.
///
/// ```
/// let keys = maglev_core::config::accepted_keys();
/// assert!(keys.contains(&"maglev.vpp.lb.startup-min-delay"));
/// assert!(keys.contains(&"maglev.frontends.<name>.pools[].backends.<name>.weight"));
/// ```
#[must_use]
pub fn accepted_keys() -> &'static [&'static str] {
    ACCEPTED_KEYS
}

const ACCEPTED_KEYS: &[&str] = &[
    "maglev",
    "maglev.healthchecker",
    "maglev.healthchecker.transition-history",
    "maglev.healthchecker.netns",
    "maglev.vpp",
    "maglev.vpp.lb",
    "maglev.vpp.lb.ipv4-src-address",
    "maglev.vpp.lb.ipv6-src-address",
    "maglev.vpp.lb.sticky-buckets-per-core",
    "maglev.vpp.lb.flow-timeout",
    "maglev.vpp.lb.sync-interval",
    "maglev.vpp.lb.startup-min-delay",
    "maglev.vpp.lb.startup-max-delay",
    "maglev.healthchecks",
    "maglev.healthchecks.<name>",
    "maglev.healthchecks.<name>.type",
    "maglev.healthchecks.<name>.port",
    "maglev.healthchecks.<name>.interval",
    "maglev.healthchecks.<name>.fast-interval",
    "maglev.healthchecks.<name>.down-interval",
    "maglev.healthchecks.<name>.timeout",
    "maglev.healthchecks.<name>.rise",
    "maglev.healthchecks.<name>.fall",
    "maglev.healthchecks.<name>.probe-ipv4-src",
    "maglev.healthchecks.<name>.probe-ipv6-src",
    "maglev.healthchecks.<name>.params",
    "maglev.healthchecks.<name>.params.path",
    "maglev.healthchecks.<name>.params.host",
    "maglev.healthchecks.<name>.params.response-code",
    "maglev.healthchecks.<name>.params.response-regexp",
    "maglev.healthchecks.<name>.params.server-name",
    "maglev.healthchecks.<name>.params.insecure-skip-verify",
    "maglev.healthchecks.<name>.params.ssl",
    "maglev.backends",
    "maglev.backends.<name>",
    "maglev.backends.<name>.address",
    "maglev.backends.<name>.healthcheck",
    "maglev.backends.<name>.enabled",
    "maglev.frontends",
    "maglev.frontends.<name>",
    "maglev.frontends.<name>.description",
    "maglev.frontends.<name>.address",
    "maglev.frontends.<name>.protocol",
    "maglev.frontends.<name>.port",
    "maglev.frontends.<name>.pools",
    "maglev.frontends.<name>.pools[].name",
    "maglev.frontends.<name>.pools[].backends",
    "maglev.frontends.<name>.pools[].backends.<name>",
    "maglev.frontends.<name>.pools[].backends.<name>.weight",
    "maglev.frontends.<name>.src-ip-sticky",
    "maglev.frontends.<name>.flush-on-down",
    "maglev.frontends.<name>.new-flows-table-length",
];

/// Limits of the config loader.
///
/// The defaults fit configs far larger than any deployment the engine is built for (10,000
/// frontends of 100 backends is about 40 MiB of YAML) while hostile input stays bounded: the
/// text is refused above [`LoadOptions::max_bytes`], the parser's budgets (events, nodes,
/// scalar bytes) scale with that limit, and the limits that stop alias bombs and deep nesting
/// (1,000 aliases and anchors, 100,000 replayed events, depth 32) do not scale at all.
///
/// ```
/// use maglev_core::config::{Config, LoadOptions};
///
/// let options = LoadOptions::default().with_max_bytes(1 << 20);
/// let error = Config::from_yaml_str_with("big.yaml", &"#".repeat(2 << 20), &options);
/// assert!(error.unwrap_err().to_string().contains("over the limit of 1048576 bytes"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Largest config text accepted, in bytes ([`LoadOptions::DEFAULT_MAX_BYTES`] unless set).
    pub max_bytes: usize,
}

impl LoadOptions {
    /// The default [`LoadOptions::max_bytes`]: 64 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

    /// These options with `max_bytes` as the size limit.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

impl Config {
    /// Parses and validates a `maglev.yaml` given as text, with the default [`LoadOptions`].
    /// `source_name` (usually the file's path) only appears in error messages.
    ///
    /// # Errors
    ///
    /// See [`Config::from_yaml_str_with`].
    pub fn from_yaml_str(source_name: &str, text: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_str_with(source_name, text, &LoadOptions::default())
    }

    /// Parses and validates a `maglev.yaml` given as text, within `options`' limits.
    /// `source_name` (usually the file's path) only appears in error messages.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] when the text is not YAML of the right shape (syntax, types,
    /// unknown or duplicate keys, more than [`LoadOptions::max_bytes`] or the parser's limits
    /// on nesting, nodes and aliases); [`ConfigError::Invalid`] with every broken semantic
    /// rule.
    pub fn from_yaml_str_with(
        source_name: &str,
        text: &str,
        options: &LoadOptions,
    ) -> Result<Self, ConfigError> {
        let raw = parse(source_name, text, options).map_err(ConfigError::Parse)?;
        let maglev = raw.maglev.value.unwrap_or_default();
        validate::Checker::new(source_name, text)
            .check(maglev)
            .map_err(ConfigError::Invalid)
    }
}

/// Parser limits: the size-driven budgets scale with `max_bytes` (an event or node takes at
/// least a few bytes of text, so these only bind on alias expansion); the limits on aliases,
/// replays and nesting are fixed, so hostile input fails fast instead of eating memory.
fn parser_budget(max_bytes: usize) -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = max_bytes / 4;
    budget.max_nodes = max_bytes / 8;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 32;
    budget.max_documents = 2;
    budget.max_total_scalar_bytes = max_bytes;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = max_bytes.min(1 << 20);
    budget.max_merge_keys = 100;
    budget
}

/// serde-saphyr's options: [`parser_budget`], alias replay limits, duplicate keys refused.
fn parser_options(budget: serde_saphyr::Budget) -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 16;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

fn parse(source_name: &str, text: &str, options: &LoadOptions) -> Result<raw::RawFile, ParseError> {
    let error = |line, column, path: String, message: String| ParseError {
        source_name: source_name.to_owned(),
        line,
        column,
        path,
        message,
    };
    if text.len() > options.max_bytes {
        return Err(error(
            0,
            0,
            String::new(),
            format!(
                "config is too large ({} bytes, over the limit of {} bytes; raise the loader's max_bytes to load it)",
                text.len(),
                options.max_bytes
            ),
        ));
    }
    if text.trim().is_empty() {
        return Err(error(
            0,
            0,
            String::new(),
            "config is empty (expected a top-level `maglev:` key)".to_owned(),
        ));
    }
    // A plain file is read straight from the parser's events; anything else goes through
    // serde-saphyr, first without key path tracking, and only a file that fails is parsed
    // again with it (which costs a string per key) to name the key in the error.
    let budget = parser_budget(options.max_bytes);
    if let Some(raw) = fast::parse(text, &budget) {
        return Ok(raw);
    }
    if let Ok(raw) = parse_serde(text, &budget) {
        return Ok(raw);
    }
    let mut path = String::new();
    let parsed =
        serde_saphyr::with_deserializer_from_str_with_options(text, parser_options(budget), |de| {
            serde_path_to_error::deserialize::<_, raw::RawFile>(de).map_err(|failure| {
                path = render_path(failure.path());
                failure.into_inner()
            })
        });
    parsed.map_err(|failure| {
        let (line, column) = failure
            .location()
            .map_or((0, 0), |location| (location.line(), location.column()));
        error(line, column, path, parse_message(&failure))
    })
}

/// The parse stage through serde-saphyr, without key path tracking.
fn parse_serde(
    text: &str,
    budget: &serde_saphyr::Budget,
) -> Result<raw::RawFile, serde_saphyr::Error> {
    serde_saphyr::with_deserializer_from_str_with_options(
        text,
        parser_options(budget.clone()),
        |de| raw::RawFile::deserialize(de),
    )
}

/// The key path of a parse error, below `maglev:` and without serde-saphyr's span wrappers.
fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key } if key == "value" => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    match out.strip_prefix("maglev") {
        Some(rest) => rest.strip_prefix('.').unwrap_or(rest).to_owned(),
        None => out,
    }
}

/// serde-saphyr's message without its location suffix (the location is rendered separately).
fn parse_message(failure: &serde_saphyr::Error) -> String {
    let text = failure.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = match text.rfind(" at line ") {
        Some(index) => &text[..index],
        None => text,
    };
    let text = text.lines().next().unwrap_or_default().trim();
    // serde-saphyr names the Rust type; say what the file should hold instead.
    let text = match text {
        "invalid i64" | "invalid u64" | "invalid i32" | "invalid u32" => "expected an integer",
        other if other.starts_with("multiple YAML documents") => {
            "expected one YAML document, found more"
        }
        other => other,
    };
    if let Some(limit) = text.strip_prefix("budget breached: ") {
        return format!("config exceeds the parser's limits ({limit})");
    }
    if text.is_empty() {
        "invalid yaml".to_owned()
    } else {
        text.to_owned()
    }
}
