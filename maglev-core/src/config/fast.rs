//! The parse stage's fast path: plain files read straight from the YAML parser's events.
//!
//! serde-saphyr does much per value that a plain config does not need (a span wrapper built
//! as a map of maps, recorded events, comment bookkeeping): on a file of 64,000 backends it
//! is two thirds of the load time. This walker reads the same parser's events (granit-parser,
//! with the options serde-saphyr gives it) into the same raw tree, positions included, for
//! files made of mappings, sequences and untagged scalars whose meaning is not in doubt.
//!
//! It gives up (`None`) at the first thing it does not read exactly as serde-saphyr does,
//! and the caller then parses the text with serde-saphyr, which decides and reports:
//!
//! | input | serde-saphyr | here |
//! |---|---|---|
//! | parser error, second document, `%YAML` directive | error / accepted | give up |
//! | anchor, alias, tag, merge key (`<<`) | resolved or refused | give up |
//! | key that is not a plain scalar, or reads as null, bool or number | canonicalised | give up |
//! | unknown, duplicate or missing key | error | give up |
//! | null value (`key:`, `~`) | `None`, or an error | give up, except a pool member (`b1:`) |
//! | integer other than `0` or `-?[1-9][0-9]*` within `i64` (`0x10`, `+5`, `08`) | parsed or refused | give up |
//! | bool other than plain `true` / `false` | YAML 1.1 forms | give up |
//! | plain scalar for an integer-or-text value that could be a bool, null or number | typed | give up |
//! | a budget (events, nodes, scalar or comment bytes) exceeded | error | give up |
//!
//! Giving up is always correct, only slower; accepting must give what serde-saphyr gives,
//! which the tests check on the repository's configs and on random ones.

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use super::raw::{
    At, NameMap, Node, RawBackend, RawCheckType, RawFile, RawFrontend, RawHealthCheck,
    RawHealthChecker, RawLb, RawMaglev, RawMember, RawParams, RawPool, RawVpp, Scalar,
};

/// Reads `text` into the raw tree, or `None` when serde-saphyr has to decide (see the
/// module doc). `budget` is the one serde-saphyr would enforce.
pub(crate) fn parse(text: &str, budget: &serde_saphyr::Budget) -> Option<RawFile> {
    let mut walker = Walker::new(text, budget);
    let file = walker.file()?;
    // Nothing may follow the document (serde-saphyr refuses a second one).
    walker.parser.next().is_none().then_some(file)
}

/// The parser options serde-saphyr derives from its budget and default options.
fn parser_options(budget: &serde_saphyr::Budget) -> granit_parser::Options {
    let mut options = granit_parser::Options::default();
    options.strict_indentation = false;
    options.emit_comments = true;
    options.max_buffered_comment_events = budget.max_buffered_comment_events;
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    options.block_nesting_limit = options
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    options
}

/// Running totals of what serde-saphyr's budget counts.
#[derive(Default)]
struct Counts {
    events: usize,
    nodes: usize,
    scalar_bytes: usize,
    comment_bytes: usize,
}

/// Reads events into the raw tree, counting what serde-saphyr's budget counts.
struct Walker<'a, 'b> {
    parser: Parser<'a, StrInput<'a>>,
    budget: &'b serde_saphyr::Budget,
    counts: Counts,
}

impl<'a, 'b> Walker<'a, 'b> {
    fn new(text: &'a str, budget: &'b serde_saphyr::Budget) -> Self {
        Self {
            parser: Parser::new_from_str_with_options(text, parser_options(budget)),
            budget,
            counts: Counts::default(),
        }
    }

    /// The next event that carries data, counted against the budget; comments are counted
    /// and skipped. `None` on a parser error, a budget breach, or an event this walker
    /// does not handle (anchors, aliases, tags, `%YAML` directives).
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        loop {
            let (event, span) = self.parser.next()?.ok()?;
            let counts = &mut self.counts;
            counts.events += 1;
            match &event {
                Event::Comment(text, _) => {
                    counts.comment_bytes = counts.comment_bytes.saturating_add(text.len());
                }
                Event::Scalar(value, _, 0, None) => {
                    counts.nodes += 1;
                    counts.scalar_bytes = counts.scalar_bytes.saturating_add(value.len());
                }
                Event::MappingStart(_, 0, None) | Event::SequenceStart(_, 0, None) => {
                    counts.nodes += 1;
                }
                Event::DocumentStart(_, None)
                | Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentEnd
                | Event::MappingEnd
                | Event::SequenceEnd => {}
                _ => return None,
            }
            let budget = self.budget;
            if counts.events > budget.max_events
                || counts.nodes > budget.max_nodes
                || counts.scalar_bytes > budget.max_total_scalar_bytes
                || counts.comment_bytes > budget.max_total_comment_bytes
            {
                return None;
            }
            if !matches!(event, Event::Comment(..)) {
                return Some((event, span));
            }
        }
    }

    /// Reads the next event, which must be `expected`.
    fn expect(&mut self, expected: fn(&Event<'a>) -> bool) -> Option<At> {
        let (event, span) = self.next()?;
        expected(&event).then(|| at(&span))
    }

    /// The next event, which must start a mapping; its position.
    fn map_start(&mut self) -> Option<At> {
        self.expect(|event| matches!(event, Event::MappingStart(..)))
    }

    /// The entries of a mapping whose start was read, up to its end. Each key must be a
    /// plain scalar that can only be text and not a merge key; `entry` reads its value.
    fn entries(&mut self, mut entry: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        loop {
            match self.next()? {
                (Event::MappingEnd, _) => return Some(()),
                (Event::Scalar(key, ScalarStyle::Plain, ..), _) if is_key(&key) => {
                    entry(self, &key)?;
                }
                _ => return None,
            }
        }
    }

    /// A mapping of names to entries, in file order; a duplicate name gives up.
    fn names<V>(&mut self, value: fn(&mut Self) -> Option<Node<V>>) -> Option<Node<NameMap<V>>> {
        let referenced = self.map_start()?;
        let mut entries = Vec::new();
        self.entries(|walker, name| {
            entries.push((name.to_owned(), value(walker)?));
            Some(())
        })?;
        let mut sorted: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
        Some(Node {
            value: NameMap(entries),
            referenced,
        })
    }

    /// A scalar that is not a plain null: its text, style and position.
    fn scalar(&mut self) -> Option<(Cow<'a, str>, ScalarStyle, At)> {
        match self.next()? {
            (Event::Scalar(value, style, ..), span)
                if !(style == ScalarStyle::Plain && is_null(&value)) =>
            {
                Some((value, style, at(&span)))
            }
            _ => None,
        }
    }

    /// A plain scalar that `read` accepts.
    fn plain<T>(&mut self, read: fn(&str) -> Option<T>) -> Option<Node<T>> {
        match self.scalar()? {
            (value, ScalarStyle::Plain, referenced) => Some(Node {
                value: read(&value)?,
                referenced,
            }),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<Node<String>> {
        let (value, _, referenced) = self.scalar()?;
        Some(Node {
            value: value.into_owned(),
            referenced,
        })
    }

    fn integer(&mut self) -> Option<Node<i64>> {
        self.plain(decimal)
    }

    fn boolean(&mut self) -> Option<Node<bool>> {
        self.plain(|text| match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
    }

    /// An integer or a text, typed as serde-saphyr types an untagged scalar: quoted and
    /// block scalars are text; a plain one is a decimal integer, or text if it can be
    /// nothing else.
    fn int_or_text(&mut self) -> Option<Node<Scalar>> {
        let (value, style, referenced) = self.scalar()?;
        let value = match (style, decimal(&value)) {
            (ScalarStyle::Plain, Some(number)) => Scalar::Int(number),
            (ScalarStyle::Plain, None) if !is_text(&value) => return None,
            _ => Scalar::Text(value.into_owned()),
        };
        Some(Node { value, referenced })
    }

    /// The whole stream: one document holding one mapping with one key, `maglev`.
    fn file(&mut self) -> Option<RawFile> {
        self.expect(|event| matches!(event, Event::StreamStart))?;
        self.expect(|event| matches!(event, Event::DocumentStart(..)))?;
        self.map_start()?;
        let mut maglev = None;
        self.entries(|walker, key| match key {
            "maglev" => set(&mut maglev, walker.maglev()?),
            _ => None,
        })?;
        self.expect(|event| matches!(event, Event::DocumentEnd))?;
        self.expect(|event| matches!(event, Event::StreamEnd))?;
        let maglev = maglev?;
        Some(RawFile {
            maglev: Node {
                value: Some(maglev.value),
                referenced: maglev.referenced,
            },
        })
    }

    fn maglev(&mut self) -> Option<Node<RawMaglev>> {
        let referenced = self.map_start()?;
        let mut out = RawMaglev::default();
        self.entries(|walker, key| match key {
            "healthchecker" => set(&mut out.healthchecker, walker.healthchecker()?),
            "vpp" => set(&mut out.vpp, walker.vpp()?),
            "healthchecks" => set(
                &mut out.healthchecks,
                walker.names(Self::healthcheck)?.value,
            ),
            "backends" => set(&mut out.backends, walker.names(Self::backend)?.value),
            "frontends" => set(&mut out.frontends, walker.names(Self::frontend)?.value),
            _ => None,
        })?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    fn healthchecker(&mut self) -> Option<Node<RawHealthChecker>> {
        let referenced = self.map_start()?;
        let mut out = RawHealthChecker::default();
        self.entries(|walker, key| match key {
            "transition-history" => set(&mut out.transition_history, walker.integer()?),
            "netns" => set(&mut out.netns, walker.string()?),
            _ => None,
        })?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    fn vpp(&mut self) -> Option<Node<RawVpp>> {
        let referenced = self.map_start()?;
        let mut out = RawVpp { lb: None };
        self.entries(|walker, key| match key {
            "lb" => set(&mut out.lb, walker.lb()?),
            _ => None,
        })?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    fn lb(&mut self) -> Option<Node<RawLb>> {
        let referenced = self.map_start()?;
        let mut out = RawLb::default();
        self.entries(|walker, key| match key {
            "ipv4-src-address" => set(&mut out.ipv4_src_address, walker.string()?),
            "ipv6-src-address" => set(&mut out.ipv6_src_address, walker.string()?),
            "sticky-buckets-per-core" => set(&mut out.sticky_buckets_per_core, walker.integer()?),
            "flow-timeout" => set(&mut out.flow_timeout, walker.int_or_text()?),
            "sync-interval" => set(&mut out.sync_interval, walker.int_or_text()?),
            "startup-min-delay" => set(&mut out.startup_min_delay, walker.int_or_text()?),
            "startup-max-delay" => set(&mut out.startup_max_delay, walker.int_or_text()?),
            _ => None,
        })?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    fn healthcheck(&mut self) -> Option<Node<RawHealthCheck>> {
        let referenced = self.map_start()?;
        // `type` is required: read apart, the rest into a check of any type.
        let mut kind = None;
        let mut out = RawHealthCheck {
            kind: Node {
                value: RawCheckType::Http,
                referenced,
            },
            port: None,
            interval: None,
            fast_interval: None,
            down_interval: None,
            timeout: None,
            rise: None,
            fall: None,
            probe_ipv4_src: None,
            probe_ipv6_src: None,
            params: None,
        };
        self.entries(|walker, key| match key {
            "type" => set(&mut kind, walker.plain(check_type)?),
            "port" => set(&mut out.port, walker.integer()?),
            "interval" => set(&mut out.interval, walker.int_or_text()?),
            "fast-interval" => set(&mut out.fast_interval, walker.int_or_text()?),
            "down-interval" => set(&mut out.down_interval, walker.int_or_text()?),
            "timeout" => set(&mut out.timeout, walker.int_or_text()?),
            "rise" => set(&mut out.rise, walker.integer()?),
            "fall" => set(&mut out.fall, walker.integer()?),
            "probe-ipv4-src" => set(&mut out.probe_ipv4_src, walker.string()?),
            "probe-ipv6-src" => set(&mut out.probe_ipv6_src, walker.string()?),
            "params" => set(&mut out.params, walker.params()?),
            _ => None,
        })?;
        out.kind = kind?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    fn params(&mut self) -> Option<Node<RawParams>> {
        let referenced = self.map_start()?;
        let mut out = RawParams::default();
        self.entries(|walker, key| match key {
            "path" => set(&mut out.path, walker.string()?),
            "host" => set(&mut out.host, walker.string()?),
            "response-code" => set(&mut out.response_code, walker.int_or_text()?),
            "response-regexp" => set(&mut out.response_regexp, walker.string()?),
            "server-name" => set(&mut out.server_name, walker.string()?),
            "insecure-skip-verify" => set(&mut out.insecure_skip_verify, walker.boolean()?),
            "ssl" => set(&mut out.ssl, walker.boolean()?),
            _ => None,
        })?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    fn backend(&mut self) -> Option<Node<RawBackend>> {
        let referenced = self.map_start()?;
        let (mut address, mut healthcheck, mut enabled) = (None, None, None);
        self.entries(|walker, key| match key {
            "address" => set(&mut address, walker.string()?),
            "healthcheck" => set(&mut healthcheck, walker.string()?),
            "enabled" => set(&mut enabled, walker.boolean()?.value),
            _ => None,
        })?;
        Some(Node {
            value: RawBackend {
                address: address?,
                healthcheck,
                enabled,
            },
            referenced,
        })
    }

    fn frontend(&mut self) -> Option<Node<RawFrontend>> {
        let referenced = self.map_start()?;
        // `address` is required: read apart, the rest into a frontend at any address.
        let mut address = None;
        let mut out = RawFrontend {
            description: None,
            address: Node {
                value: String::new(),
                referenced,
            },
            protocol: None,
            port: None,
            pools: None,
            src_ip_sticky: None,
            flush_on_down: None,
            new_flows_table_length: None,
        };
        self.entries(|walker, key| match key {
            "description" => set(&mut out.description, walker.string()?.value),
            "address" => set(&mut address, walker.string()?),
            "protocol" => set(&mut out.protocol, walker.string()?),
            "port" => set(&mut out.port, walker.integer()?),
            "pools" => set(&mut out.pools, walker.pools()?),
            "src-ip-sticky" => set(&mut out.src_ip_sticky, walker.boolean()?.value),
            "flush-on-down" => set(&mut out.flush_on_down, walker.boolean()?.value),
            "new-flows-table-length" => set(&mut out.new_flows_table_length, walker.integer()?),
            _ => None,
        })?;
        out.address = address?;
        Some(Node {
            value: out,
            referenced,
        })
    }

    /// A frontend's `pools`: a sequence of pool mappings.
    fn pools(&mut self) -> Option<Node<Vec<Node<RawPool>>>> {
        let referenced = self.expect(|event| matches!(event, Event::SequenceStart(..)))?;
        let mut pools = Vec::new();
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => break,
                (Event::MappingStart(..), span) => {
                    let mut pool = RawPool {
                        name: None,
                        backends: None,
                    };
                    self.entries(|walker, key| match key {
                        "name" => set(&mut pool.name, walker.string()?),
                        "backends" => set(&mut pool.backends, walker.names(Self::member)?),
                        _ => None,
                    })?;
                    pools.push(Node {
                        value: pool,
                        referenced: at(&span),
                    });
                }
                _ => return None,
            }
        }
        Some(Node {
            value: pools,
            referenced,
        })
    }

    /// A pool member: `{ weight: .. }`, `{}`, or a null (`b1:`), which takes the defaults.
    fn member(&mut self) -> Option<Node<Option<RawMember>>> {
        match self.next()? {
            (Event::Scalar(value, ScalarStyle::Plain, ..), span) if is_null(&value) => Some(Node {
                value: None,
                referenced: at(&span),
            }),
            (Event::MappingStart(..), span) => {
                let mut out = RawMember::default();
                self.entries(|walker, key| match key {
                    "weight" => set(&mut out.weight, walker.integer()?),
                    _ => None,
                })?;
                Some(Node {
                    value: Some(out),
                    referenced: at(&span),
                })
            }
            _ => None,
        }
    }
}

/// Fills an empty slot; a second value for it (a duplicate key) gives up.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// The position serde-saphyr reports for a node starting at `span` (1-based line and
/// column, clamped to `u32`, and the byte offset when it and the length fit in `u32`).
fn at(span: &Span) -> At {
    let clamp = |value: usize| u64::from(u32::try_from(value).unwrap_or(u32::MAX));
    let byte_offset = match (span.start.byte_offset(), span.end.byte_offset()) {
        (Some(start), Some(end)) => {
            let start32 = u32::try_from(start).ok();
            let length32 = u32::try_from(end.saturating_sub(start)).ok();
            start32.zip(length32).map(|(start, _)| u64::from(start))
        }
        _ => None,
    };
    At {
        line: clamp(span.start.line()),
        column: clamp(span.start.col().saturating_add(1)),
        byte_offset,
    }
}

/// A plain scalar YAML reads as null.
fn is_null(text: &str) -> bool {
    text.is_empty() || text == "~" || text.eq_ignore_ascii_case("null")
}

/// A decimal integer without sign or redundant zero (`0`, `42`, `-7`) that fits `i64`.
fn decimal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = match digits.as_bytes() {
        [b'0'] => digits.len() == text.len(),
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if plain { text.parse().ok() } else { None }
}

/// A plain scalar that YAML cannot read as anything but text: not a null, not a YAML 1.1
/// bool, and not anything that might be a number (integers in any base or with `_`,
/// floats, `.inf`, `.nan`, sexagesimal `1:30`). Errs towards "might be a number".
fn is_text(text: &str) -> bool {
    const BOOLS: [&str; 8] = ["true", "false", "yes", "no", "y", "n", "on", "off"];
    if is_null(text) || BOOLS.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        return false;
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let bytes = unsigned.as_bytes();
    let named = ["inf", "infinity", "nan"]
        .iter()
        .any(|word| unsigned.eq_ignore_ascii_case(word));
    let number = match bytes {
        [] | [b'.', ..] => true,
        [b'0'..=b'9', b'x' | b'X' | b'o' | b'O' | b'b' | b'B', ..] => true,
        [b'0'..=b'9', ..] => bytes.iter().enumerate().all(|(index, byte)| match byte {
            b'0'..=b'9' | b'_' | b'.' | b':' | b'e' | b'E' => true,
            b'+' | b'-' => index > 0 && matches!(bytes[index - 1], b'e' | b'E'),
            _ => false,
        }),
        _ => false,
    };
    !named && !number
}

/// A mapping key the walker reads as serde-saphyr does: text, and not a merge key.
fn is_key(text: &str) -> bool {
    text != "<<" && is_text(text)
}

/// `healthchecks.<name>.type`.
fn check_type(text: &str) -> Option<RawCheckType> {
    match text {
        "http" => Some(RawCheckType::Http),
        "https" => Some(RawCheckType::Https),
        "tcp" => Some(RawCheckType::Tcp),
        "icmp" => Some(RawCheckType::Icmp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::super::{parse_serde, parser_budget};
    use super::parse;

    const EXAMPLE: &str = include_str!("../../../etc/maglev.yaml");

    /// The fast path's tree, which must equal serde-saphyr's whenever the fast path gives
    /// one; `None` when it gave up.
    fn agree(text: &str, max_bytes: usize) -> Option<()> {
        let budget = parser_budget(max_bytes);
        let fast = parse(text, &budget)?;
        match parse_serde(text, &budget) {
            Ok(serde) => assert_eq!(fast, serde, "the fast path differs on:\n{text}"),
            Err(error) => {
                panic!("the fast path accepted what serde-saphyr refuses ({error}):\n{text}")
            }
        }
        Some(())
    }

    /// A config with every member form and both mapping styles.
    fn generated(frontends: usize, backends: usize) -> String {
        let mut out = String::from("# generated\nmaglev:\n  healthchecks:\n");
        for f in 0..frontends {
            let _ = writeln!(
                out,
                "    check{f}: {{ type: http, port: 80, interval: 2s, params: {{ response-code: 200-399 }} }}"
            );
        }
        out.push_str("  backends:\n");
        for f in 0..frontends {
            for b in 0..backends {
                let _ = write!(
                    out,
                    "    f{f}-b{b}:\n      address: 10.0.{f}.{b}\n      healthcheck: check{f}  # shared\n"
                );
            }
        }
        out.push_str("  frontends:\n");
        for f in 0..frontends {
            let _ = write!(
                out,
                "    svc{f}:\n      description: 'service {f}'\n      address: 198.18.0.{f}\n      protocol: tcp\n      port: 443\n      pools:\n        - name: primary\n          backends:\n"
            );
            for b in 0..backends {
                let member = match b % 3 {
                    0 => " { weight: 100 }",
                    1 => " {}",
                    _ => "",
                };
                let _ = writeln!(out, "            f{f}-b{b}:{member}");
            }
        }
        out
    }

    #[test]
    fn plain_configs_take_the_fast_path_and_read_as_serde_does() {
        for text in [
            EXAMPLE.to_owned(),
            generated(5, 7),
            format!("---\n{EXAMPLE}...\n"),
            // Positions after a byte-order mark, CRLF line ends and multi-byte characters.
            format!("\u{feff}{}", EXAMPLE.replace('\n', "\r\n")),
            generated(2, 3).replace("'service", "'sérvice ✓"),
        ] {
            assert!(agree(&text, 1 << 20).is_some(), "gave up on:\n{text}");
        }
    }

    #[test]
    fn what_only_serde_decides_is_left_to_it() {
        let base = "maglev:\n  backends:\n    b1:\n      address: 10.0.0.1\n";
        let cases = [
            "maglev:\n  backends: &all\n    b1: { address: 10.0.0.1 }\n  frontends: *all\n",
            "maglev:\n  backends:\n    b1: !!map { address: 10.0.0.1 }\n",
            "maglev:\n  backends:\n    b1: { address: 10.0.0.1, enabled: yes }\n",
            "maglev:\n  backends:\n    b1: { address: 10.0.0.1, enabled: }\n",
            "maglev:\n  backends:\n    b1: { address: 10.0.0.1 }\n    b1: { address: 10.0.0.2 }\n",
            "maglev:\n  backends:\n    1: { address: 10.0.0.1 }\n    01: { address: 10.0.0.2 }\n",
            "maglev:\n  backends:\n    b1: { address: 10.0.0.1, colour: red }\n",
            "maglev:\n  backends:\n    b1: { healthcheck: c }\n",
            "maglev:\n  healthchecks:\n    c: { type: tcp, port: 0x50 }\n",
            "maglev:\n  healthchecks:\n    c: { type: tcp, port: 80, interval: 1e3 }\n",
            "maglev:\n  healthchecks:\n    c: { type: tcp, port: 80, interval: 1:30 }\n",
            "maglev:\n  healthchecks:\n    c: { type: TCP, port: 80 }\n",
            "maglev:\n  healthchecks:\n    c: { port: 80 }\n",
            "maglev:\n  vpp:\n    lb: { <<: { sync-interval: 5s } }\n",
            "maglev:\n",
            "%YAML 1.2\n---\nmaglev: {}\n",
            "maglev: {}\n---\nmaglev: {}\n",
            "maglev: {\n",
        ];
        assert!(agree(base, 1 << 20).is_some());
        for text in cases {
            assert!(
                agree(text, 1 << 20).is_none(),
                "did not give up on:\n{text}"
            );
        }
        // The budgets bind as serde-saphyr's do: 8 bytes allow 2 events.
        assert!(agree(base, 8).is_none());
    }

    /// Values and pieces spliced into the example: every scalar form the fast path types
    /// itself, and the ones it must leave to serde-saphyr.
    const PIECES: &[&str] = &[
        "",
        "~",
        "null",
        "NULL",
        "0",
        "-0",
        "7",
        "-7",
        "007",
        "+7",
        "0x1f",
        "0o17",
        "0b11",
        "1_000",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "1.5",
        "1e3",
        ".inf",
        "-.inf",
        ".nan",
        "inf",
        "1:30",
        "true",
        "false",
        "True",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "2s",
        "500ms",
        "200-399",
        "200",
        "'2s'",
        "\"200\"",
        "'true'",
        "\"a\\tb\"",
        "|\n  text",
        ">\n  folded",
        "{}",
        "{ weight: 5 }",
        "[]",
        "[a, b]",
        "&a x",
        "*a",
        "!!str 5",
        "!tag x",
        "<<",
        "# comment",
        "a b",
        "a: b",
        "10.0.0.1",
        "::1",
        "http",
        "tcp",
        "icmp",
        "https",
        "\t",
        "  ",
        "- ",
        ",",
        "{",
        "}",
        "'",
        "\"",
    ];

    #[derive(Debug, Clone)]
    enum Mutation {
        /// Replace what follows the first `: ` on a line.
        Value {
            line: usize,
            piece: usize,
        },
        /// Insert a piece at a character position.
        Insert {
            line: usize,
            at: usize,
            piece: usize,
        },
        DuplicateLine(usize),
        DeleteLine(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let line = 0..200usize;
        let piece = 0..PIECES.len();
        prop_oneof![
            6 => (line.clone(), piece.clone()).prop_map(|(line, piece)| Mutation::Value { line, piece }),
            2 => (line.clone(), 0..60usize, piece).prop_map(|(line, at, piece)| Mutation::Insert { line, at, piece }),
            1 => line.clone().prop_map(Mutation::DuplicateLine),
            1 => line.prop_map(Mutation::DeleteLine),
        ]
    }

    fn mutate(text: &str, mutations: &[Mutation]) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for mutation in mutations {
            let count = lines.len();
            match mutation {
                Mutation::Value { line, piece } => {
                    let target = &mut lines[line % count];
                    if let Some(colon) = target.find(": ") {
                        target.truncate(colon + 2);
                        target.push_str(PIECES[*piece]);
                    }
                }
                Mutation::Insert { line, at, piece } => {
                    let target = &mut lines[line % count];
                    let at = target
                        .char_indices()
                        .nth(*at)
                        .map_or(target.len(), |(index, _)| index);
                    target.insert_str(at, PIECES[*piece]);
                }
                Mutation::DuplicateLine(line) => {
                    let copy = lines[line % count].clone();
                    lines.insert(line % count, copy);
                }
                Mutation::DeleteLine(line) => {
                    lines.remove(line % count);
                }
            }
        }
        lines.join("\n") + "\n"
    }

    proptest! {
        #[test]
        fn a_mutated_config_reads_as_serde_reads_it_or_is_left_to_serde(
            base in prop_oneof![Just(EXAMPLE.to_owned()), Just(generated(2, 4))],
            mutations in prop::collection::vec(mutation(), 1..4),
            max_bytes in prop_oneof![4 => Just(1usize << 20), 1 => 64usize..8192],
        ) {
            let _ = agree(&mutate(&base, &mutations), max_bytes);
        }
    }
}
