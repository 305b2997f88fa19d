//! The semantic stage: raw parse tree to [`Config`], collecting every broken rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use super::duration::parse_duration;
use super::error::SemanticError;
use super::model::{
    Backend, CheckKind, Config, Encap, Frontend, HealthCheck, HealthChecker, HttpParams, Pool,
    PoolMember, Protocol, ResponseRegex, StatusRange, TlsParams, Vpp, VppLb, defaults,
};
use super::raw::{
    At, NameMap, Node, RawBackend, RawCheckType, RawFrontend, RawHealthCheck, RawLb, RawMaglev,
    RawParams, RawPool, Scalar,
};

/// Largest compiled size of a `response-regexp`, so a hostile pattern cannot eat memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// How far back from a value the loader looks for its key to report the key's position.
const KEY_SEARCH_WINDOW: usize = 4096;

/// A position in the source: 1-based line and column.
#[derive(Debug, Clone, Copy)]
struct Pos {
    line: u64,
    column: u64,
}

/// Collects semantic errors while converting.
pub(crate) struct Checker<'a> {
    source_name: &'a str,
    text: &'a str,
    errors: Vec<SemanticError>,
    /// Health checks in the file that were refused (so a broken check does not also make
    /// every backend that uses it report an unknown reference).
    refused_checks: BTreeSet<String>,
    /// Backends in the file that were refused (likewise for the pools that list them).
    refused_backends: BTreeSet<String>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(source_name: &'a str, text: &'a str) -> Self {
        Self {
            source_name,
            text,
            errors: Vec::new(),
            refused_checks: BTreeSet::new(),
            refused_backends: BTreeSet::new(),
        }
    }

    fn error(&mut self, pos: Pos, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SemanticError {
            source_name: self.source_name.to_owned(),
            line: pos.line,
            column: pos.column,
            path: path.into(),
            message: message.into(),
        });
    }

    /// The position of a value.
    fn at(location: &At) -> Pos {
        Pos {
            line: location.line,
            column: location.column,
        }
    }

    /// The position of the key `name` whose value sits at `value`: the last occurrence of the
    /// name shortly before the value, else the value itself. Looks at most
    /// [`KEY_SEARCH_WINDOW`] bytes back, so the cost per entry stays bounded.
    fn key_pos(&self, name: &str, value: &At) -> Pos {
        let fallback = Self::at(value);
        let Some(offset) = value
            .byte_offset
            .and_then(|offset| usize::try_from(offset).ok())
        else {
            return fallback;
        };
        if name.is_empty() || offset > self.text.len() || !self.text.is_char_boundary(offset) {
            return fallback;
        }
        let mut start = offset.saturating_sub(KEY_SEARCH_WINDOW);
        while !self.text.is_char_boundary(start) {
            start += 1;
        }
        let Some(found) = self.text[start..offset]
            .rfind(name)
            .map(|index| start + index)
        else {
            return fallback;
        };
        let between = &self.text[found..offset];
        let newlines = between.bytes().filter(|&byte| byte == b'\n').count();
        let count = |text: &str| u64::try_from(text.chars().count()).unwrap_or(u64::MAX);
        let column = if newlines == 0 {
            value.column.saturating_sub(count(between))
        } else {
            match self.text[start..found].rfind('\n') {
                Some(index) => count(&self.text[start + index + 1..found]) + 1,
                None if start == 0 => count(&self.text[..found]) + 1,
                None => return fallback,
            }
        };
        let newlines = u64::try_from(newlines).unwrap_or(u64::MAX);
        if column == 0 || newlines >= value.line {
            return fallback;
        }
        Pos {
            line: value.line - newlines,
            column,
        }
    }

    /// Runs every rule; `Err` holds every broken one, in file order.
    pub(crate) fn check(mut self, raw: RawMaglev) -> Result<Config, Vec<SemanticError>> {
        let healthchecker = self.healthchecker(raw.healthchecker);
        let vpp = raw.vpp.map(|vpp| self.vpp(vpp));
        let raw_checks = raw.healthchecks.unwrap_or_default();
        let raw_backends = raw.backends.unwrap_or_default();
        let healthchecks = self.healthchecks(raw_checks);
        let backends = self.backends(raw_backends, &healthchecks);
        let frontends = self.frontends(raw.frontends.unwrap_or_default(), &backends);
        if self.errors.is_empty() {
            Ok(Config {
                healthchecker,
                vpp: vpp.flatten(),
                healthchecks,
                backends,
                frontends,
            })
        } else {
            let mut errors = self.errors;
            errors.sort_by_key(|error| (error.line, error.column));
            Err(errors)
        }
    }

    fn healthchecker(&mut self, raw: Option<Node<super::raw::RawHealthChecker>>) -> HealthChecker {
        let mut out = HealthChecker::default();
        let Some(raw) = raw else { return out };
        let raw = raw.value;
        if let Some(history) = raw.transition_history {
            let path = "healthchecker.transition-history";
            match u32::try_from(history.value) {
                Ok(value) if (1..=defaults::MAX_TRANSITION_HISTORY).contains(&value) => {
                    out.transition_history = value;
                }
                _ => self.error(
                    Self::at(&history.referenced),
                    path,
                    format!(
                        "must be between 1 and {}, got {}",
                        defaults::MAX_TRANSITION_HISTORY,
                        history.value
                    ),
                ),
            }
        }
        if let Some(netns) = raw.netns {
            let name = netns.value;
            if name.is_empty() {
                out.netns = None;
            } else if let Some(problem) = netns_problem(&name) {
                self.error(
                    Self::at(&netns.referenced),
                    "healthchecker.netns",
                    format!("`{name}` {problem}"),
                );
            } else {
                out.netns = Some(name);
            }
        }
        out
    }

    fn vpp(&mut self, raw: Node<super::raw::RawVpp>) -> Option<Vpp> {
        let Some(lb) = raw.value.lb else {
            self.error(
                self.key_pos("vpp", &raw.referenced),
                "vpp.lb",
                "is required when the vpp section is present",
            );
            return None;
        };
        self.lb(lb).map(|lb| Vpp { lb })
    }

    fn lb(&mut self, raw: Node<RawLb>) -> Option<VppLb> {
        let section = self.key_pos("lb", &raw.referenced);
        let raw: RawLb = raw.value;
        let ipv4 = self.required_address(
            raw.ipv4_src_address.as_ref(),
            section,
            "vpp.lb.ipv4-src-address",
            Family::V4,
        );
        let ipv6 = self.required_address(
            raw.ipv6_src_address.as_ref(),
            section,
            "vpp.lb.ipv6-src-address",
            Family::V6,
        );
        let mut sticky = defaults::STICKY_BUCKETS_PER_CORE;
        if let Some(value) = &raw.sticky_buckets_per_core
            && let Some(ok) = self.power_of_two(
                value,
                "vpp.lb.sticky-buckets-per-core",
                defaults::MAX_STICKY_BUCKETS_PER_CORE,
            )
        {
            sticky = ok;
        }
        let mut flow_timeout = defaults::FLOW_TIMEOUT;
        if let Some(value) = &raw.flow_timeout {
            let path = "vpp.lb.flow-timeout";
            let pos = Self::at(&value.referenced);
            let parsed = match &value.value {
                Scalar::Int(seconds) => u64::try_from(*seconds)
                    .map(Duration::from_secs)
                    .map_err(|_| format!("duration `{seconds}` must not be negative")),
                Scalar::Text(text) => parse_duration(text),
            };
            match parsed {
                Err(message) => self.error(pos, path, message),
                Ok(duration) if duration.subsec_nanos() != 0 => {
                    self.error(pos, path, "must be a whole number of seconds");
                }
                Ok(duration)
                    if !(1..=defaults::MAX_FLOW_TIMEOUT_SECS).contains(&duration.as_secs()) =>
                {
                    self.error(
                        pos,
                        path,
                        format!(
                            "must be between 1s and {}s, got {}s",
                            defaults::MAX_FLOW_TIMEOUT_SECS,
                            duration.as_secs()
                        ),
                    );
                }
                Ok(duration) => flow_timeout = duration,
            }
        }
        let sync_interval = self
            .duration(raw.sync_interval.as_ref(), "vpp.lb.sync-interval", true)
            .unwrap_or(defaults::SYNC_INTERVAL);
        let min_value = self.duration(
            raw.startup_min_delay.as_ref(),
            "vpp.lb.startup-min-delay",
            false,
        );
        let max_value = self.duration(
            raw.startup_max_delay.as_ref(),
            "vpp.lb.startup-max-delay",
            false,
        );
        // Compare only values that are valid (or defaulted), so one typo gives one error.
        let both_valid = (raw.startup_min_delay.is_none() || min_value.is_some())
            && (raw.startup_max_delay.is_none() || max_value.is_some());
        let min_delay = min_value.unwrap_or(defaults::STARTUP_MIN_DELAY);
        let max_delay = max_value.unwrap_or(defaults::STARTUP_MAX_DELAY);
        if both_valid && max_delay < min_delay {
            let pos = raw
                .startup_max_delay
                .as_ref()
                .or(raw.startup_min_delay.as_ref())
                .map_or(section, |value| Self::at(&value.referenced));
            self.error(
                pos,
                "vpp.lb.startup-max-delay",
                format!(
                    "must not be below startup-min-delay ({} < {})",
                    show(max_delay),
                    show(min_delay)
                ),
            );
        }
        Some(VppLb {
            ipv4_src_address: match ipv4? {
                IpAddr::V4(address) => address,
                IpAddr::V6(_) => return None,
            },
            ipv6_src_address: match ipv6? {
                IpAddr::V6(address) => address,
                IpAddr::V4(_) => return None,
            },
            sticky_buckets_per_core: sticky,
            flow_timeout,
            sync_interval,
            startup_min_delay: min_delay,
            startup_max_delay: max_delay,
        })
    }

    /// A required address of one family; reports a missing key at `section`.
    fn required_address(
        &mut self,
        value: Option<&Node<String>>,
        section: Pos,
        path: &str,
        family: Family,
    ) -> Option<IpAddr> {
        let Some(value) = value else {
            self.error(section, path, "is required");
            return None;
        };
        self.address(value, path, Some(family))
    }

    /// Parses a plain address, optionally of one family.
    fn address(
        &mut self,
        value: &Node<String>,
        path: impl fmt::Display,
        family: Option<Family>,
    ) -> Option<IpAddr> {
        let pos = Self::at(&value.referenced);
        let Ok(address) = IpAddr::from_str(value.value.trim()) else {
            self.error(
                pos,
                path.to_string(),
                format!("`{}` is not an IP address", value.value),
            );
            return None;
        };
        match (family, address) {
            (Some(Family::V4), IpAddr::V6(_)) => {
                self.error(
                    pos,
                    path.to_string(),
                    format!("`{address}` is not an IPv4 address"),
                );
                None
            }
            (Some(Family::V6), IpAddr::V4(_)) => {
                self.error(
                    pos,
                    path.to_string(),
                    format!("`{address}` is not an IPv6 address"),
                );
                None
            }
            _ => Some(address),
        }
    }

    /// A duration key; `None` when absent or invalid (an invalid one records an error).
    fn duration(
        &mut self,
        value: Option<&Node<Scalar>>,
        path: &str,
        positive: bool,
    ) -> Option<Duration> {
        let value = value?;
        let pos = Self::at(&value.referenced);
        let parsed = match &value.value {
            Scalar::Int(0) => Ok(Duration::ZERO),
            Scalar::Int(number) => Err(format!(
                "missing unit in duration `{number}` (write e.g. `{number}s`)"
            )),
            Scalar::Text(text) => parse_duration(text),
        };
        match parsed {
            Err(message) => {
                self.error(pos, path, message);
                None
            }
            Ok(duration) if positive && duration.is_zero() => {
                self.error(pos, path, "must be greater than 0");
                None
            }
            Ok(duration) => Some(duration),
        }
    }

    /// An integer in `min..=max`.
    fn ranged(
        &mut self,
        value: &Node<i64>,
        path: impl fmt::Display,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        if (min..=max).contains(&value.value) {
            Some(value.value)
        } else {
            self.error(
                Self::at(&value.referenced),
                path.to_string(),
                format!("must be between {min} and {max}, got {}", value.value),
            );
            None
        }
    }

    /// A power of two in `1..=max`.
    fn power_of_two(&mut self, value: &Node<i64>, path: &str, max: u32) -> Option<u32> {
        match u32::try_from(value.value) {
            Ok(number) if number.is_power_of_two() && number <= max => Some(number),
            _ => {
                self.error(
                    Self::at(&value.referenced),
                    path,
                    format!(
                        "must be a power of two between 1 and {max}, got {}",
                        value.value
                    ),
                );
                None
            }
        }
    }

    fn entry_name(&mut self, section: &str, name: &str, value: &At) {
        if name.is_empty() {
            let pos = Self::at(value);
            self.error(pos, format!("{section}.\"\""), "name must not be empty");
        }
    }

    fn healthchecks(&mut self, raw: NameMap<RawHealthCheck>) -> BTreeMap<String, HealthCheck> {
        let mut out = BTreeMap::new();
        for (name, value) in raw.0 {
            self.entry_name("healthchecks", &name, &value.referenced);
            let entry = self.key_pos(&name, &value.referenced);
            match self.healthcheck(&name, entry, value.value) {
                Some(check) => {
                    out.insert(name, check);
                }
                None => {
                    self.refused_checks.insert(name);
                }
            }
        }
        out
    }

    fn healthcheck(&mut self, name: &str, entry: Pos, raw: RawHealthCheck) -> Option<HealthCheck> {
        let before = self.errors.len();
        let base = format!("healthchecks.{name}");
        let kind = raw.kind.value;
        let port = match (&raw.port, kind) {
            (Some(port), RawCheckType::Icmp) => {
                self.error(
                    Self::at(&port.referenced),
                    format!("{base}.port"),
                    "is not allowed for icmp checks",
                );
                None
            }
            (Some(port), _) => self
                .ranged(port, format_args!("{base}.port"), 1, 65_535)
                .and_then(|port| u16::try_from(port).ok()),
            (None, RawCheckType::Icmp) => None,
            (None, _) => {
                self.error(
                    entry,
                    format!("{base}.port"),
                    format!("is required for {} checks", type_name(kind)),
                );
                None
            }
        };
        let interval_value =
            self.duration(raw.interval.as_ref(), &format!("{base}.interval"), true);
        let interval_valid = raw.interval.is_none() || interval_value.is_some();
        let interval = interval_value.unwrap_or(defaults::INTERVAL);
        let fast_interval = self
            .duration(
                raw.fast_interval.as_ref(),
                &format!("{base}.fast-interval"),
                true,
            )
            .unwrap_or(interval);
        let down_interval = self
            .duration(
                raw.down_interval.as_ref(),
                &format!("{base}.down-interval"),
                true,
            )
            .unwrap_or(interval);
        let timeout_value = self.duration(raw.timeout.as_ref(), &format!("{base}.timeout"), true);
        // Without a timeout key the default shrinks to a short interval, so `interval: 500ms`
        // alone is valid.
        let timeout = timeout_value.unwrap_or_else(|| defaults::TIMEOUT.min(interval));
        if let Some(timeout_raw) = raw
            .timeout
            .as_ref()
            .filter(|_| interval_valid && timeout > interval)
        {
            self.error(
                Self::at(&timeout_raw.referenced),
                format!("{base}.timeout"),
                format!(
                    "must not exceed interval ({} > {})",
                    show(timeout),
                    show(interval)
                ),
            );
        }
        let max = i64::from(defaults::MAX_RISE_FALL);
        let rise = raw
            .rise
            .as_ref()
            .and_then(|rise| self.ranged(rise, format_args!("{base}.rise"), 1, max))
            .and_then(|rise| u8::try_from(rise).ok())
            .unwrap_or(defaults::RISE);
        let fall = raw
            .fall
            .as_ref()
            .and_then(|fall| self.ranged(fall, format_args!("{base}.fall"), 1, max))
            .and_then(|fall| u8::try_from(fall).ok())
            .unwrap_or(defaults::FALL);
        let probe_ipv4_src = raw.probe_ipv4_src.as_ref().and_then(|value| {
            match self.address(
                value,
                format_args!("{base}.probe-ipv4-src"),
                Some(Family::V4),
            ) {
                Some(IpAddr::V4(address)) => Some(address),
                _ => None,
            }
        });
        let probe_ipv6_src = raw.probe_ipv6_src.as_ref().and_then(|value| {
            match self.address(
                value,
                format_args!("{base}.probe-ipv6-src"),
                Some(Family::V6),
            ) {
                Some(IpAddr::V6(address)) => Some(address),
                _ => None,
            }
        });
        let kind = self.check_kind(&base, kind, raw.params);
        if self.errors.len() > before {
            return None;
        }
        Some(HealthCheck {
            name: name.to_owned(),
            kind: kind?,
            port,
            interval,
            fast_interval,
            down_interval,
            timeout,
            rise,
            fall,
            probe_ipv4_src,
            probe_ipv6_src,
        })
    }

    fn check_kind(
        &mut self,
        base: &str,
        kind: RawCheckType,
        params: Option<Node<RawParams>>,
    ) -> Option<CheckKind> {
        let params = params.map(|params| params.value).unwrap_or_default();
        let type_name = type_name(kind);
        let is_http = matches!(kind, RawCheckType::Http | RawCheckType::Https);
        let ssl = params.ssl.as_ref().is_some_and(|ssl| ssl.value);
        let has_tls = kind == RawCheckType::Https || (kind == RawCheckType::Tcp && ssl);
        // Keys that do not apply to this type.
        let mut not_for = |present: Option<&At>, key: &str, why: &str| {
            if let Some(location) = present {
                self.error(
                    Self::at(location),
                    format!("{base}.params.{key}"),
                    format!("is not allowed for {type_name} checks ({why})"),
                );
            }
        };
        if !is_http {
            let why = "only for http and https";
            not_for(params.path.as_ref().map(|v| &v.referenced), "path", why);
            not_for(params.host.as_ref().map(|v| &v.referenced), "host", why);
            not_for(
                params.response_code.as_ref().map(|v| &v.referenced),
                "response-code",
                why,
            );
            not_for(
                params.response_regexp.as_ref().map(|v| &v.referenced),
                "response-regexp",
                why,
            );
        }
        if kind != RawCheckType::Tcp {
            not_for(
                params.ssl.as_ref().map(|v| &v.referenced),
                "ssl",
                "only for tcp",
            );
        }
        if !has_tls {
            let why = if kind == RawCheckType::Tcp {
                "needs ssl: true"
            } else {
                "only for https, or tcp with ssl: true"
            };
            not_for(
                params.server_name.as_ref().map(|v| &v.referenced),
                "server-name",
                why,
            );
            not_for(
                params.insecure_skip_verify.as_ref().map(|v| &v.referenced),
                "insecure-skip-verify",
                why,
            );
        }
        let host = params
            .host
            .as_ref()
            .and_then(|host| self.name_like(host, &format!("{base}.params.host"), "host"));
        let server_name = params.server_name.as_ref().and_then(|name| {
            self.name_like(name, &format!("{base}.params.server-name"), "server name")
        });
        let tls = TlsParams {
            server_name: server_name.or_else(|| host.clone()),
            insecure_skip_verify: params
                .insecure_skip_verify
                .as_ref()
                .is_some_and(|skip| skip.value),
        };
        let http = if is_http {
            Some(self.http_params(base, &params, host)?)
        } else {
            None
        };
        Some(match (kind, http) {
            (RawCheckType::Http, Some(http)) => CheckKind::Http(http),
            (RawCheckType::Https, Some(http)) => CheckKind::Https { http, tls },
            (RawCheckType::Tcp, _) => CheckKind::Tcp {
                tls: ssl.then_some(tls),
            },
            _ => CheckKind::Icmp,
        })
    }

    /// A host or server name: non-empty, no whitespace or control characters.
    fn name_like(&mut self, value: &Node<String>, path: &str, what: &str) -> Option<String> {
        let text = &value.value;
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                Self::at(&value.referenced),
                path,
                format!(
                    "`{text}` is not a valid {what} (empty, or has spaces or control characters)"
                ),
            );
            None
        } else {
            Some(text.clone())
        }
    }

    fn http_params(
        &mut self,
        base: &str,
        params: &RawParams,
        host: Option<String>,
    ) -> Option<HttpParams> {
        let before = self.errors.len();
        let path = match &params.path {
            None => defaults::HTTP_PATH.to_owned(),
            Some(path) => {
                let text = &path.value;
                if !text.starts_with('/')
                    || text.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    self.error(
                        Self::at(&path.referenced),
                        format!("{base}.params.path"),
                        format!(
                            "`{text}` is not an absolute path (must start with `/`, no spaces)"
                        ),
                    );
                }
                text.clone()
            }
        };
        let response_codes = match &params.response_code {
            None => StatusRange {
                min: defaults::HTTP_RESPONSE_CODES.0,
                max: defaults::HTTP_RESPONSE_CODES.1,
            },
            Some(code) => match status_range(&code.value) {
                Ok(range) => range,
                Err(message) => {
                    self.error(
                        Self::at(&code.referenced),
                        format!("{base}.params.response-code"),
                        message,
                    );
                    StatusRange { min: 0, max: 0 }
                }
            },
        };
        let response_regexp = params.response_regexp.as_ref().and_then(|pattern| {
            match regex::RegexBuilder::new(&pattern.value)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(regex) => Some(ResponseRegex(regex)),
                Err(error) => {
                    let detail = error.to_string();
                    let detail = detail.lines().last().unwrap_or_default().trim().to_owned();
                    self.error(
                        Self::at(&pattern.referenced),
                        format!("{base}.params.response-regexp"),
                        format!("invalid regular expression: {}", detail.to_lowercase()),
                    );
                    None
                }
            }
        });
        (self.errors.len() == before).then_some(HttpParams {
            path,
            host,
            response_codes,
            response_regexp,
        })
    }

    fn backends(
        &mut self,
        raw: NameMap<RawBackend>,
        checks: &BTreeMap<String, HealthCheck>,
    ) -> BTreeMap<String, Backend> {
        let mut out = BTreeMap::new();
        for (name, value) in raw.0 {
            self.entry_name("backends", &name, &value.referenced);
            let raw = value.value;
            let address = self.address(&raw.address, format_args!("backends.{name}.address"), None);
            if let Some(address) = address
                && !is_unicast(address)
            {
                self.error(
                    Self::at(&raw.address.referenced),
                    format!("backends.{name}.address"),
                    format!("`{address}` is not a unicast address"),
                );
            }
            let mut healthcheck = None;
            if let Some(check) = raw.healthcheck {
                if checks.contains_key(&check.value) || self.refused_checks.contains(&check.value) {
                    healthcheck = Some(check.value);
                } else {
                    self.error(
                        Self::at(&check.referenced),
                        format!("backends.{name}.healthcheck"),
                        format!("unknown healthcheck `{}`", check.value),
                    );
                }
            }
            let Some(address) = address else {
                self.refused_backends.insert(name);
                continue;
            };
            out.insert(
                name.clone(),
                Backend {
                    name,
                    address,
                    healthcheck,
                    enabled: raw.enabled.unwrap_or(defaults::BACKEND_ENABLED),
                },
            );
        }
        out
    }

    fn frontends(
        &mut self,
        raw: NameMap<RawFrontend>,
        backends: &BTreeMap<String, Backend>,
    ) -> Vec<Frontend> {
        let mut out = Vec::new();
        let mut vips: BTreeMap<(IpNet, Protocol, u16), String> = BTreeMap::new();
        for (name, value) in raw.0 {
            self.entry_name("frontends", &name, &value.referenced);
            let entry = self.key_pos(&name, &value.referenced);
            if let Some(frontend) = self.frontend(&name, entry, value.value, backends) {
                let key = (frontend.prefix, frontend.protocol, frontend.port);
                if let Some(other) = vips.get(&key) {
                    self.error(
                        entry,
                        format!("frontends.{name}"),
                        format!(
                            "same VIP ({} {} port {}) as frontend `{other}`",
                            frontend.prefix,
                            frontend.protocol.name(),
                            frontend.port
                        ),
                    );
                } else {
                    vips.insert(key, name.clone());
                }
                out.push(frontend);
            }
        }
        out
    }

    fn frontend(
        &mut self,
        name: &str,
        entry: Pos,
        raw: RawFrontend,
        backends: &BTreeMap<String, Backend>,
    ) -> Option<Frontend> {
        let before = self.errors.len();
        let base = format!("frontends.{name}");
        let prefix = self.vip(&raw.address, &format!("{base}.address"));
        let mut protocol_known = true;
        let protocol = match &raw.protocol {
            None => None,
            Some(protocol) => match protocol.value.as_str() {
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                "any" => Some(Protocol::Any),
                other => {
                    self.error(
                        Self::at(&protocol.referenced),
                        format!("{base}.protocol"),
                        format!("unknown protocol `{other}`, expected tcp, udp or any"),
                    );
                    protocol_known = false;
                    None
                }
            },
        };
        let port_value = match &raw.port {
            None => Some(defaults::FRONTEND_PORT),
            Some(port) => self
                .ranged(port, format_args!("{base}.port"), 0, 65_535)
                .and_then(|port| u16::try_from(port).ok()),
        };
        // An invalid protocol or port is reported once, not again as a mismatch.
        let port = port_value.unwrap_or(0);
        let protocol = match (protocol, port) {
            _ if !protocol_known || port_value.is_none() => Protocol::Any,
            (None | Some(Protocol::Any), 0) => Protocol::Any,
            (Some(protocol @ (Protocol::Tcp | Protocol::Udp)), 1..) => protocol,
            (Some(protocol @ (Protocol::Tcp | Protocol::Udp)), 0) => {
                let pos = match (&raw.port, &raw.protocol) {
                    (Some(port), _) => Self::at(&port.referenced),
                    (None, Some(protocol)) => Self::at(&protocol.referenced),
                    (None, None) => entry,
                };
                self.error(
                    pos,
                    format!("{base}.port"),
                    format!(
                        "is required for protocol {} (port 0 means all ports, which needs protocol any)",
                        protocol.name()
                    ),
                );
                protocol
            }
            (None | Some(Protocol::Any), 1..) => {
                let pos = raw
                    .protocol
                    .as_ref()
                    .map_or(entry, |value| Self::at(&value.referenced));
                self.error(
                    pos,
                    format!("{base}.protocol"),
                    format!("must be tcp or udp with port {port} (protocol any serves all ports)"),
                );
                Protocol::Any
            }
        };
        let new_flows_table_length = match &raw.new_flows_table_length {
            None => defaults::NEW_FLOWS_TABLE_LENGTH,
            Some(value) => self
                .power_of_two(
                    value,
                    &format!("{base}.new-flows-table-length"),
                    defaults::MAX_NEW_FLOWS_TABLE_LENGTH,
                )
                .unwrap_or(defaults::NEW_FLOWS_TABLE_LENGTH),
        };
        let pools = self.pools(&base, entry, raw.pools, prefix, backends);
        if self.errors.len() > before {
            return None;
        }
        let prefix = prefix?;
        Some(Frontend {
            name: name.to_owned(),
            description: raw.description.unwrap_or_default(),
            address: prefix.addr(),
            prefix,
            protocol,
            port,
            pools,
            src_ip_sticky: raw.src_ip_sticky.unwrap_or(defaults::SRC_IP_STICKY),
            flush_on_down: raw.flush_on_down.unwrap_or(defaults::FLUSH_ON_DOWN),
            new_flows_table_length,
            encap: Encap::for_address(prefix.addr()),
        })
    }

    /// A VIP: an address (a host prefix) or a prefix without host bits.
    fn vip(&mut self, value: &Node<String>, path: &str) -> Option<IpNet> {
        let text = value.value.trim();
        let pos = Self::at(&value.referenced);
        let prefix = if text.contains('/') {
            let Ok(prefix) = IpNet::from_str(text) else {
                self.error(
                    pos,
                    path,
                    format!("`{text}` is not an IP address or prefix"),
                );
                return None;
            };
            if prefix.trunc() != prefix {
                self.error(
                    pos,
                    path,
                    format!(
                        "prefix `{text}` has host bits set (use `{}`)",
                        prefix.trunc()
                    ),
                );
                return None;
            }
            prefix
        } else {
            let Ok(address) = IpAddr::from_str(text) else {
                self.error(
                    pos,
                    path,
                    format!("`{text}` is not an IP address or prefix"),
                );
                return None;
            };
            IpNet::from(address)
        };
        if !is_unicast(prefix.addr()) {
            self.error(pos, path, format!("`{text}` is not a unicast address"));
            return None;
        }
        Some(prefix)
    }

    fn pools(
        &mut self,
        base: &str,
        entry: Pos,
        raw: Option<Node<Vec<Node<RawPool>>>>,
        prefix: Option<IpNet>,
        backends: &BTreeMap<String, Backend>,
    ) -> Vec<Pool> {
        let raw = match raw {
            Some(pools) if !pools.value.is_empty() => pools,
            present => {
                let pos = present.map_or(entry, |pools| Self::at(&pools.referenced));
                self.error(pos, format!("{base}.pools"), "must list at least one pool");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut pool_names: BTreeSet<String> = BTreeSet::new();
        // Address -> backend name, across every pool of this frontend.
        let mut addresses: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for (index, pool) in raw.value.into_iter().enumerate() {
            let pool_base = format!("{base}.pools[{index}]");
            let pool_pos = Self::at(&pool.referenced);
            let pool = pool.value;
            let name = match &pool.name {
                Some(name) if !name.value.trim().is_empty() => {
                    if !pool_names.insert(name.value.clone()) {
                        self.error(
                            Self::at(&name.referenced),
                            format!("{pool_base}.name"),
                            format!("duplicate pool name `{}`", name.value),
                        );
                    }
                    name.value.clone()
                }
                Some(name) => {
                    self.error(
                        Self::at(&name.referenced),
                        format!("{pool_base}.name"),
                        "must not be empty",
                    );
                    String::new()
                }
                None => {
                    self.error(pool_pos, format!("{pool_base}.name"), "is required");
                    String::new()
                }
            };
            let members = pool.backends.filter(|members| !members.value.0.is_empty());
            let Some(members) = members else {
                self.error(
                    pool_pos,
                    format!("{pool_base}.backends"),
                    "must list at least one backend",
                );
                continue;
            };
            let mut pool_out = Pool {
                name,
                backends: Vec::new(),
            };
            for (backend_name, member) in members.value.0 {
                // The member's path and the position of its key are only worked out for an
                // error: most members have none.
                let member_error = |checker: &mut Self, message: String| {
                    let pos = checker.key_pos(&backend_name, &member.referenced);
                    let path = format!("{pool_base}.backends.{backend_name}");
                    checker.error(pos, path, message);
                };
                let weight = match member.value.as_ref().and_then(|raw| raw.weight.as_ref()) {
                    None => defaults::POOL_WEIGHT,
                    Some(weight) => self
                        .ranged(
                            weight,
                            format_args!("{pool_base}.backends.{backend_name}.weight"),
                            0,
                            i64::from(defaults::MAX_WEIGHT),
                        )
                        .and_then(|weight| u8::try_from(weight).ok())
                        .unwrap_or(0),
                };
                match backends.get(&backend_name) {
                    None if self.refused_backends.contains(&backend_name) => {}
                    None => member_error(self, format!("unknown backend `{backend_name}`")),
                    Some(backend) => {
                        if let Some(prefix) = prefix
                            && family(backend.address) != family(prefix.addr())
                        {
                            member_error(
                                self,
                                format!(
                                    "backend `{backend_name}` ({}) is {} but the VIP {} is {}; all backends of a frontend share the VIP's address family",
                                    backend.address,
                                    family_name(backend.address),
                                    prefix,
                                    family_name(prefix.addr())
                                ),
                            );
                        }
                        if let IpAddr::V6(v6) = backend.address
                            && v6.octets()[..12] == [0; 12]
                        {
                            member_error(
                                self,
                                format!(
                                    "backend `{backend_name}` ({v6}) is in ::/96, which VPP's lb plugin takes for an IPv4 address; use a routable IPv6 address"
                                ),
                            );
                        }
                        match addresses.get(&backend.address) {
                            Some(other) if *other != backend_name => {
                                member_error(
                                    self,
                                    format!(
                                        "backend `{backend_name}` has the same address {} as backend `{other}` in this frontend",
                                        backend.address
                                    ),
                                );
                            }
                            Some(_) => {}
                            None => {
                                addresses.insert(backend.address, backend.name.as_str());
                            }
                        }
                    }
                }
                pool_out.backends.push(PoolMember {
                    backend: backend_name,
                    weight,
                });
            }
            out.push(pool_out);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

fn family(address: IpAddr) -> Family {
    match address {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn family_name(address: IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

fn is_unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4 == Ipv4Addr::BROADCAST),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

fn type_name(kind: RawCheckType) -> &'static str {
    match kind {
        RawCheckType::Http => "http",
        RawCheckType::Https => "https",
        RawCheckType::Tcp => "tcp",
        RawCheckType::Icmp => "icmp",
    }
}

/// A duration as people write it.
fn show(duration: Duration) -> String {
    format!("{duration:?}")
}

/// `200` or `200-399`, both ends within 100-599.
fn status_range(value: &Scalar) -> Result<StatusRange, String> {
    let shown = match value {
        Scalar::Int(code) => code.to_string(),
        Scalar::Text(text) => text.clone(),
    };
    let invalid =
        || format!("`{shown}` is not a status code (`200`) or range (`200-399`) within 100-599");
    let code = |text: &str| -> Result<u16, String> {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(invalid)
    };
    let range = match value {
        Scalar::Int(number) => {
            let single = u16::try_from(*number)
                .ok()
                .filter(|code| (100..=599).contains(code))
                .ok_or_else(invalid)?;
            StatusRange {
                min: single,
                max: single,
            }
        }
        Scalar::Text(text) => match text.split_once('-') {
            Some((low, high)) => StatusRange {
                min: code(low)?,
                max: code(high)?,
            },
            None => {
                let single = code(text)?;
                StatusRange {
                    min: single,
                    max: single,
                }
            }
        },
    };
    if range.min > range.max {
        return Err(format!("range `{shown}` is empty (low end above high end)"));
    }
    Ok(range)
}

/// Why a non-empty `healthchecker.netns` is refused, or `None` when it names a namespace:
///
/// | value | accepted as |
/// |---|---|
/// | a name: no `/`, not `.` or `..`, no NUL | `/var/run/netns/NAME` (what `ip netns add NAME` creates) |
/// | an absolute path without `.`, `..` or empty components, no NUL | that namespace file (`/var/run/netns/x`, `/proc/<pid>/ns/net`) |
/// | a relative path (`a/b`), `.`, `..`, a path with `..` or `//`, a NUL | refused |
fn netns_problem(value: &str) -> Option<&'static str> {
    const NEITHER: &str = "is neither a network namespace name (no `/`, not `.` or `..`) \
                           nor an absolute path to a namespace file";
    if value.contains('\0') {
        return Some("contains a NUL byte");
    }
    match value.strip_prefix('/') {
        None if value.contains('/') || value == "." || value == ".." => Some(NEITHER),
        None => None,
        Some(rest)
            if rest
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..") =>
        {
            Some("is not a plain absolute path (no `.`, `..` or empty components)")
        }
        Some(_) => None,
    }
}
