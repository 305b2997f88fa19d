//! Property tests: the loader never panics on arbitrary or mutated input, every error is
//! located, and every config it accepts satisfies the model's documented invariants.

use std::net::IpAddr;

use maglev_core::config::{CheckKind, Config, ConfigError, Protocol};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../etc/maglev.yaml");

/// Pieces of YAML and values the mutator splices in.
const VOCABULARY: &[&str] = &[
    "",
    " ",
    "  ",
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "'",
    "\"",
    "#",
    "~",
    "null",
    "0",
    "-1",
    "1",
    "100",
    "101",
    "65536",
    "1024",
    "1000",
    "0s",
    "2s",
    "500ms",
    "1m30s",
    "9999999999h",
    "1.5s",
    "true",
    "yes",
    "tcp",
    "udp",
    "any",
    "icmp",
    "https",
    "127.0.0.1",
    "::1",
    "10.0.0.0/8",
    "2001:db8::/32",
    "300.1.1.1",
    "weight: 5",
    "port: 0",
    "timeout: 10s",
    "pools: []",
    "backends: {}",
    "healthcheck: nope",
    "response-code: 500-100",
    "response-regexp: '('",
    "new-flows-table-length: 3",
    "\t",
    "\u{0}",
    "é",
    "\u{feff}",
];

/// Scalar values the mutator puts after a key, keeping the YAML structure intact.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "100",
    "101",
    "255",
    "1024",
    "3000",
    "65535",
    "65536",
    "0s",
    "1s",
    "2s",
    "500ms",
    "3s",
    "1m",
    "121s",
    "1.5s",
    "5",
    "true",
    "false",
    "''",
    "tcp",
    "udp",
    "any",
    "sctp",
    "http",
    "https",
    "icmp",
    "127.0.0.1",
    "127.0.0.99",
    "::1",
    "2001:db8::1",
    "10.0.0.0/8",
    "192.0.2.80",
    "192.0.2.0/28",
    "224.0.0.1",
    "web1",
    "web6",
    "nope",
    "http-local",
    "icmp-local",
    "/",
    "healthz",
    "200",
    "200-299",
    "399-200",
    "'('",
    "{}",
    "[]",
    "~",
];

#[derive(Debug, Clone)]
enum Mutation {
    ReplaceValue {
        line: usize,
        value: usize,
    },
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert {
        line: usize,
        at: usize,
        piece: usize,
    },
    Truncate {
        line: usize,
        at: usize,
    },
    Indent {
        line: usize,
        by: usize,
    },
    Dedent(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = 0..400usize;
    prop_oneof![
        8 => (index.clone(), 0..VALUES.len())
            .prop_map(|(line, value)| Mutation::ReplaceValue { line, value }),
        1 => index.clone().prop_map(Mutation::DeleteLine),
        1 => index.clone().prop_map(Mutation::DuplicateLine),
        1 => (index.clone(), index.clone()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (index.clone(), 0..80usize, 0..VOCABULARY.len())
            .prop_map(|(line, at, piece)| Mutation::Insert { line, at, piece }),
        1 => (index.clone(), 0..80usize).prop_map(|(line, at)| Mutation::Truncate { line, at }),
        1 => (index.clone(), 1..5usize).prop_map(|(line, by)| Mutation::Indent { line, by }),
        1 => index.prop_map(Mutation::Dedent),
    ]
}

/// Applies mutations line-wise, so the text stays valid UTF-8.
fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for mutation in mutations {
        if lines.is_empty() {
            break;
        }
        let count = lines.len();
        let char_at = |line: &str, at: usize| {
            line.char_indices()
                .nth(at)
                .map_or(line.len(), |(index, _)| index)
        };
        match mutation {
            Mutation::ReplaceValue { line, value } => {
                // Replace what follows the first `: ` outside comments, if any.
                let target = &mut lines[line % count];
                if let Some(colon) = target.find(": ")
                    && !target[..colon].contains('#')
                {
                    let comment = target[colon..].find(" #").map(|at| colon + at);
                    let tail = comment
                        .map(|at| target[at..].to_owned())
                        .unwrap_or_default();
                    target.truncate(colon + 2);
                    target.push_str(VALUES[*value]);
                    target.push_str(&tail);
                }
            }
            Mutation::DeleteLine(line) => {
                lines.remove(line % count);
            }
            Mutation::DuplicateLine(line) => {
                let copy = lines[line % count].clone();
                lines.insert(line % count, copy);
            }
            Mutation::SwapLines(a, b) => lines.swap(a % count, b % count),
            Mutation::Insert { line, at, piece } => {
                let target = &mut lines[line % count];
                let at = char_at(target, *at);
                target.insert_str(at, VOCABULARY[*piece]);
            }
            Mutation::Truncate { line, at } => {
                let target = &mut lines[line % count];
                let at = char_at(target, *at);
                target.truncate(at);
            }
            Mutation::Indent { line, by } => {
                lines[line % count].insert_str(0, &" ".repeat(*by));
            }
            Mutation::Dedent(line) => {
                let target = &mut lines[line % count];
                if target.starts_with(' ') {
                    target.remove(0);
                }
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// What every accepted config guarantees (see the model's docs).
fn assert_invariants(config: &Config) {
    for check in config.healthchecks.values() {
        assert!(check.timeout <= check.interval, "{check:?}");
        for wait in [
            check.interval,
            check.fast_interval,
            check.down_interval,
            check.timeout,
        ] {
            assert!(!wait.is_zero(), "{check:?}");
        }
        assert!((1..=100).contains(&check.rise) && (1..=100).contains(&check.fall));
        match (&check.kind, check.port) {
            (CheckKind::Icmp, port) => assert_eq!(port, None),
            (_, port) => assert!(port.is_some_and(|port| port > 0), "{check:?}"),
        }
        if let Some(http) = check.kind.http() {
            assert!(http.path.starts_with('/'));
            assert!(http.response_codes.min <= http.response_codes.max);
        }
    }
    for (name, backend) in &config.backends {
        assert_eq!(name, &backend.name);
        if let Some(check) = &backend.healthcheck {
            assert!(config.healthchecks.contains_key(check), "{backend:?}");
        }
    }
    let mut vips = std::collections::BTreeSet::new();
    for frontend in &config.frontends {
        assert!(vips.insert((frontend.prefix, frontend.protocol, frontend.port)));
        assert!(frontend.new_flows_table_length.is_power_of_two());
        assert_eq!(frontend.port == 0, frontend.protocol == Protocol::Any);
        assert_eq!(frontend.address, frontend.prefix.addr());
        assert!(!frontend.pools.is_empty());
        for pool in &frontend.pools {
            assert!(!pool.name.is_empty() && !pool.backends.is_empty());
            for member in &pool.backends {
                assert!(member.weight <= 100);
                let backend = config.backend(&member.backend).expect("member exists");
                assert_eq!(
                    matches!(backend.address, IpAddr::V4(_)),
                    matches!(frontend.address, IpAddr::V4(_)),
                    "family of {} in {}",
                    backend.name,
                    frontend.name
                );
            }
        }
    }
    if let Some(vpp) = &config.vpp {
        let lb = &vpp.lb;
        assert!((1..=120).contains(&lb.flow_timeout_secs()));
        assert!(lb.sticky_buckets_per_core.is_power_of_two());
        assert!(lb.startup_min_delay <= lb.startup_max_delay);
        assert!(!lb.sync_interval.is_zero());
    }
}

/// Loads twice (the loader is deterministic) and checks the outcome's shape.
fn check(text: &str) {
    let first = Config::from_yaml_str("fuzz.yaml", text);
    let second = Config::from_yaml_str("fuzz.yaml", text);
    assert_eq!(first, second);
    match first {
        Ok(config) => assert_invariants(&config),
        Err(ConfigError::Invalid(errors)) => {
            assert!(!errors.is_empty());
            for error in &errors {
                assert!(error.line >= 1, "{error}");
                assert!(!error.path.is_empty(), "{error}");
                assert!(!error.message.is_empty(), "{error}");
            }
        }
        Err(ConfigError::Parse(error)) => {
            assert!(!error.message.is_empty());
            assert!(error.to_string().starts_with("fuzz.yaml"));
        }
        Err(other) => panic!("unexpected error kind {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "(maglev:|frontends:|backends:|pools:| |-|\n|[a-z0-9]{1,6}|: |\\{|\\}|\\[|\\]|,|&a|\\*a){0,80}") {
        check(&text);
    }

    #[test]
    fn mutated_example_never_panics(mutations in prop::collection::vec(mutation(), 1..5)) {
        check(&mutate(EXAMPLE, &mutations));
    }
}

#[test]
fn the_unmutated_example_satisfies_the_invariants() {
    let config = Config::from_yaml_str("etc/maglev.yaml", EXAMPLE).expect("example loads");
    assert_invariants(&config);
}
