//! Loader tests for `maglev.yaml`: the example, the Go original's format, defaults, and every
//! parse and semantic rule with its message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use maglev_core::config::{
    CheckKind, Config, ConfigError, Encap, LoadOptions, ParseError, Protocol, StatusRange,
};

/// Joins lines, so a test's line numbers are the index in the slice plus one.
fn y(lines: &[&str]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_str("t.yaml", text)
}

fn ok(text: &str) -> Config {
    match load(text) {
        Ok(config) => config,
        Err(error) => panic!("expected a valid config, got:\n{error}"),
    }
}

/// The rendered semantic errors (one per line), failing on success or a parse error.
fn invalid(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected semantic errors, the config loaded"),
        Err(ConfigError::Parse(error)) => panic!("expected semantic errors, got parse: {error}"),
        Err(error @ ConfigError::Invalid(_)) => {
            assert!(!error.is_parse());
            let rendered = error.to_string();
            let lines: Vec<String> = rendered.lines().map(str::to_owned).collect();
            assert_eq!(lines.len(), error.semantic_errors().len());
            lines
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

fn parse_error(text: &str) -> ParseError {
    parse_error_with(text, &LoadOptions::default())
}

fn parse_error_with(text: &str, options: &LoadOptions) -> ParseError {
    match Config::from_yaml_str_with("t.yaml", text, options) {
        Ok(_) => panic!("expected a parse error, the config loaded"),
        Err(ConfigError::Parse(error)) => error,
        Err(other) => panic!("expected a parse error, got: {other}"),
    }
}

/// A valid config's backend and health-check sections, shared by the frontend tests.
const COMMON: &[&str] = &[
    "maglev:",
    "  healthchecks:",
    "    hc:",
    "      type: tcp",
    "      port: 80",
    "  backends:",
    "    a4: { address: 127.0.0.11, healthcheck: hc }",
    "    b4: { address: 127.0.0.12 }",
    "    a6: { address: '2001:db8::6' }",
    "  frontends:",
];

/// `COMMON` followed by `frontends` lines (line 11 is the first of them).
fn with_frontends(frontends: &[&str]) -> String {
    let mut lines = COMMON.to_vec();
    lines.extend_from_slice(frontends);
    y(&lines)
}

// ---------------------------------------------------------------------------------------------
// Complete configs
// ---------------------------------------------------------------------------------------------

#[test]
fn example_config_loads_with_every_feature() {
    let text = include_str!("../../../etc/maglev.yaml");
    let config = Config::from_yaml_str("etc/maglev.yaml", text).expect("example must load");
    assert_eq!(config.healthchecker.transition_history, 10);
    assert_eq!(config.healthchecker.netns, None);
    let lb = &config.vpp.as_ref().expect("vpp section").lb;
    assert_eq!(lb.ipv4_src_address, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        lb.ipv6_src_address,
        "2001:db8::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(lb.flow_timeout_secs(), 40);
    let kinds: Vec<&str> = config
        .healthchecks
        .values()
        .map(|check| check.type_name())
        .collect();
    for kind in ["http", "https", "tcp", "icmp"] {
        assert!(kinds.contains(&kind), "example lacks a {kind} check");
    }
    assert!(
        config
            .healthchecks
            .values()
            .any(|check| matches!(check.kind, CheckKind::Tcp { tls: Some(_) }))
    );
    // Every IPv4 backend probes a loopback address (the IPv6 one is a documentation address:
    // VPP's lb plugin cannot take `::1`).
    assert!(
        config
            .backends
            .values()
            .all(|backend| backend.address.is_loopback() || backend.address.is_ipv6())
    );
    assert!(config.backends.values().any(|backend| !backend.enabled));
    assert!(
        config
            .backends
            .values()
            .any(|backend| backend.healthcheck.is_none())
    );
    // Frontends keep file order and cover both families, all-port VIPs and prefixes.
    let names: Vec<&str> = config.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["web", "dns", "tls-all-ports", "web-v6"]);
    let web = config.frontend("web").unwrap();
    assert_eq!(web.pools.len(), 2);
    assert_eq!(web.pools[0].backends[1].backend, "web2");
    assert_eq!(web.pools[0].backends[1].weight, 50);
    let all_ports = config.frontend("tls-all-ports").unwrap();
    assert_eq!((all_ports.protocol, all_ports.port), (Protocol::Any, 0));
    assert_eq!(all_ports.prefix.to_string(), "192.0.2.0/28");
    assert!(!all_ports.flush_on_down);
    assert_eq!(config.frontend("web-v6").unwrap().encap, Encap::Gre6);
    assert!(config.frontend("dns").unwrap().src_ip_sticky);
}

/// A config written for the Go original (its documented keys, its example fragments such as
/// `nginx0-fra: {}` pool members) loads unchanged.
#[test]
fn go_original_format_loads_unchanged() {
    let text = y(&[
        "maglev:",
        "  healthchecker:",
        "    transition-history: 5",
        "    netns: dataplane",
        "  vpp:",
        "    lb:",
        "      ipv4-src-address: 198.51.100.1",
        "      ipv6-src-address: 2001:db8:1::1",
        "      sync-interval: 30s",
        "      startup-min-delay: 5s",
        "      startup-max-delay: 30s",
        "  healthchecks:",
        "    http-check:",
        "      type: http",
        "      port: 80",
        "      interval: 2s",
        "      timeout: 1s",
        "      rise: 2",
        "      fall: 3",
        "      params:",
        "        path: /healthz",
        "    ping:",
        "      type: icmp",
        "    tcp-check:",
        "      type: tcp",
        "      port: 443",
        "  backends:",
        "    nginx0-ams:",
        "      address: 192.0.2.10",
        "      healthcheck: http-check",
        "    nginx0-fra:",
        "      address: 192.0.2.11",
        "      healthcheck: http-check",
        "      enabled: true",
        "    nginx0-lon:",
        "      address: 192.0.2.12",
        "      healthcheck: ping",
        "      enabled: false",
        "  frontends:",
        "    nginx-http:",
        "      description: nginx, two tiers",
        "      address: 203.0.113.80",
        "      protocol: tcp",
        "      port: 80",
        "      src-ip-sticky: true",
        "      flush-on-down: false",
        "      pools:",
        "        - name: primary",
        "          backends:",
        "            nginx0-ams: { weight: 100 }",
        "            nginx0-fra: {}",
        "        - name: secondary",
        "          backends:",
        "            nginx0-lon:",
        "              weight: 20",
    ]);
    let config = ok(&text);
    assert_eq!(config.healthchecker.netns.as_deref(), Some("dataplane"));
    let frontend = config.frontend("nginx-http").unwrap();
    assert_eq!(frontend.description, "nginx, two tiers");
    assert_eq!(frontend.address, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 80)));
    assert_eq!((frontend.protocol, frontend.port), (Protocol::Tcp, 80));
    assert_eq!(frontend.protocol.ip_proto(), 6);
    assert!(frontend.src_ip_sticky);
    assert!(!frontend.flush_on_down);
    let members: Vec<(&str, u8)> = frontend
        .pools
        .iter()
        .flat_map(|pool| &pool.backends)
        .map(|member| (member.backend.as_str(), member.weight))
        .collect();
    assert_eq!(
        members,
        [("nginx0-ams", 100), ("nginx0-fra", 100), ("nginx0-lon", 20)]
    );
    assert!(!config.backend("nginx0-lon").unwrap().enabled);
    let check = config.healthcheck("http-check").unwrap();
    assert_eq!(check.kind.http().unwrap().path, "/healthz");
    assert_eq!(check.port, Some(80));
    assert_eq!(config.healthcheck("ping").unwrap().port, None);
}

#[test]
fn defaults_are_the_documented_values() {
    let text = y(&[
        "maglev:",
        "  vpp:",
        "    lb:",
        "      ipv4-src-address: 192.0.2.1",
        "      ipv6-src-address: 2001:db8::1",
        "  healthchecks:",
        "    h:",
        "      type: http",
        "      port: 80",
        "    s:",
        "      type: https",
        "      port: 443",
        "      params: { host: example.test }",
        "  backends:",
        "    b: { address: 10.0.0.1, healthcheck: h }",
        "  frontends:",
        "    f:",
        "      address: 10.0.0.100",
        "      pools:",
        "        - name: p",
        "          backends:",
        "            b:",
    ]);
    let config = ok(&text);
    assert_eq!(config.healthchecker.transition_history, 5);
    assert_eq!(config.healthchecker.netns, None);
    let lb = &config.vpp.as_ref().unwrap().lb;
    assert_eq!(lb.sticky_buckets_per_core, 65_536);
    assert_eq!(lb.flow_timeout, Duration::from_secs(40));
    assert_eq!(lb.sync_interval, Duration::from_secs(30));
    assert_eq!(lb.startup_min_delay, Duration::from_secs(5));
    assert_eq!(lb.startup_max_delay, Duration::from_secs(30));
    let check = config.healthcheck("h").unwrap();
    assert_eq!(check.interval, Duration::from_secs(2));
    assert_eq!(check.fast_interval, Duration::from_secs(2));
    assert_eq!(check.down_interval, Duration::from_secs(2));
    assert_eq!(check.timeout, Duration::from_secs(1));
    assert_eq!((check.rise, check.fall), (2, 3));
    assert_eq!((check.probe_ipv4_src, check.probe_ipv6_src), (None, None));
    let http = check.kind.http().unwrap();
    assert_eq!(http.path, "/");
    assert_eq!(http.host, None);
    assert_eq!(http.response_codes, StatusRange { min: 200, max: 399 });
    assert!(http.response_codes.contains(399) && !http.response_codes.contains(400));
    assert!(http.response_regexp.is_none());
    // server-name falls back to params.host; verification is on by default.
    let tls = config.healthcheck("s").unwrap().kind.tls().unwrap();
    assert_eq!(tls.server_name.as_deref(), Some("example.test"));
    assert!(!tls.insecure_skip_verify);
    let backend = config.backend("b").unwrap();
    assert!(backend.enabled);
    let frontend = config.frontend("f").unwrap();
    assert_eq!((frontend.protocol, frontend.port), (Protocol::Any, 0));
    assert_eq!(frontend.protocol.ip_proto(), 255);
    assert_eq!(frontend.prefix.to_string(), "10.0.0.100/32");
    assert_eq!(frontend.new_flows_table_length, 1024);
    assert!(frontend.flush_on_down);
    assert!(!frontend.src_ip_sticky);
    assert_eq!(frontend.description, "");
    assert_eq!(frontend.encap, Encap::Gre4);
    assert_eq!(frontend.pools[0].backends[0].weight, 100);
}

#[test]
fn intervals_and_timeout_defaults_follow_interval() {
    let text = y(&[
        "maglev:",
        "  healthchecks:",
        "    fast:",
        "      type: icmp",
        "      interval: 500ms",
        "    tuned:",
        "      type: icmp",
        "      interval: 1m30s",
        "      fast-interval: 1.5s",
        "      down-interval: 1h",
        "      timeout: 100ms",
    ]);
    let config = ok(&text);
    let fast = config.healthcheck("fast").unwrap();
    assert_eq!(fast.fast_interval, Duration::from_millis(500));
    assert_eq!(fast.down_interval, Duration::from_millis(500));
    // The 1s default timeout shrinks to a shorter interval.
    assert_eq!(fast.timeout, Duration::from_millis(500));
    let tuned = config.healthcheck("tuned").unwrap();
    assert_eq!(tuned.interval, Duration::from_secs(90));
    assert_eq!(tuned.fast_interval, Duration::from_millis(1500));
    assert_eq!(tuned.down_interval, Duration::from_secs(3600));
    assert_eq!(tuned.timeout, Duration::from_millis(100));
}

#[test]
fn empty_sections_and_missing_vpp_load() {
    for text in [
        "maglev:\n",
        "maglev: {}\n",
        "maglev:\n  frontends: {}\n  backends:\n",
    ] {
        let config = ok(text);
        assert!(config.vpp.is_none());
        assert!(config.frontends.is_empty() && config.backends.is_empty());
    }
}

/// A large valid config (thousands of backends and members, block and flow style) loads, and
/// errors deep inside it still point at the right line.
#[test]
fn large_configs_load_and_locate_errors() {
    let mut text = String::from("maglev:\n  backends:\n");
    for index in 0..4_000u32 {
        let [_, _, high, low] = index.to_be_bytes();
        text.push_str(&format!("    b{index}: {{ address: 10.1.{high}.{low} }}\n"));
    }
    text.push_str("  frontends:\n");
    for frontend in 0..40u32 {
        text.push_str(&format!(
            "    f{frontend}:\n      address: 10.2.0.{frontend}\n      pools:\n        - name: p\n          backends: {{"
        ));
        for member in 0..100u32 {
            text.push_str(&format!(" b{}: {{}},", frontend * 100 + member));
        }
        text.push_str(" }\n");
    }
    let config = ok(&text);
    assert_eq!(config.backends.len(), 4_000);
    assert_eq!(config.frontends.len(), 40);
    assert_eq!(config.frontends[39].pools[0].backends[99].backend, "b3999");

    let broken = text.replace(" b3999: {},", " b3999: { weight: 200 },");
    let lines = invalid(&broken);
    let line = text
        .lines()
        .position(|line| line.contains(" b3999: {},"))
        .unwrap()
        + 1;
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(&format!("t.yaml:{line}:")),
        "{} (expected line {line})",
        lines[0]
    );
    assert!(lines[0].ends_with(
        "frontends.f39.pools[0].backends.b3999.weight: must be between 0 and 100, got 200"
    ));
}

#[test]
fn names_are_case_sensitive() {
    let text = y(&[
        "maglev:",
        "  backends:",
        "    web: { address: 10.0.0.1 }",
        "    Web: { address: 10.0.0.2 }",
    ]);
    let config = ok(&text);
    assert_eq!(config.backends.len(), 2);
    assert_ne!(config.backend("web"), config.backend("Web"));
}

#[test]
fn frontends_keep_file_order_and_accessors_work() {
    let text = with_frontends(&[
        "    zeta:",
        "      address: 10.0.0.3",
        "      pools: [ { name: p, backends: { b4: {}, a4: { weight: 7 } } } ]",
        "    alpha:",
        "      address: 10.0.0.1",
        "      pools:",
        "        - { name: first, backends: { a4: {} } }",
        "        - { name: second, backends: { a4: { weight: 1 }, b4: {} } }",
        "    v6:",
        "      address: 2001:db8::1",
        "      protocol: udp",
        "      port: 53",
        "      pools: [ { name: p, backends: { a6: {} } } ]",
    ]);
    let config = ok(&text);
    let names: Vec<&str> = config.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "v6"]);
    let zeta: Vec<&str> = config
        .backends_of_frontend("zeta")
        .iter()
        .map(|backend| backend.name.as_str())
        .collect();
    assert_eq!(zeta, ["b4", "a4"]);
    // A backend listed in two pools counts once, in its first pool.
    let alpha: Vec<&str> = config
        .backends_of_frontend("alpha")
        .iter()
        .map(|backend| backend.name.as_str())
        .collect();
    assert_eq!(alpha, ["a4", "b4"]);
    let alpha_frontend = config.frontend("alpha").unwrap();
    let (pool, member) = alpha_frontend.membership("a4").unwrap();
    assert_eq!((pool, member.weight), (0, 100));
    assert_eq!(alpha_frontend.membership("b4").unwrap().0, 1);
    assert!(alpha_frontend.membership("a6").is_none());
    assert!(config.backends_of_frontend("nope").is_empty());
    assert!(config.frontend("nope").is_none());
    let users: Vec<&str> = config.frontends_of_backend("a4").collect();
    assert_eq!(users, ["zeta", "alpha"]);
    let a4 = config.backend("a4").unwrap();
    assert_eq!(config.healthcheck_of(a4).unwrap().name, "hc");
    assert!(
        config
            .healthcheck_of(config.backend("b4").unwrap())
            .is_none()
    );
    let v6 = config.frontend("v6").unwrap();
    assert_eq!((v6.encap, v6.protocol.ip_proto()), (Encap::Gre6, 17));
}

#[test]
fn flow_timeout_accepts_whole_seconds_as_integer_or_duration() {
    for (value, seconds) in [("60", 60), ("2m", 120), ("1s", 1), ("'15s'", 15)] {
        let text = y(&[
            "maglev:",
            "  vpp:",
            "    lb:",
            "      ipv4-src-address: 192.0.2.1",
            "      ipv6-src-address: 2001:db8::1",
            &format!("      flow-timeout: {value}"),
            "      startup-min-delay: 0",
            "      startup-max-delay: 0s",
        ]);
        let config = ok(&text);
        let lb = &config.vpp.unwrap().lb;
        assert_eq!(lb.flow_timeout_secs(), seconds, "{value}");
        assert_eq!(lb.startup_min_delay, Duration::ZERO);
        assert_eq!(lb.startup_max_delay, Duration::ZERO);
    }
}

#[test]
fn response_codes_and_tls_params_resolve() {
    let text = y(&[
        "maglev:",
        "  healthchecks:",
        "    one:",
        "      type: http",
        "      port: 80",
        "      params: { response-code: 204, response-regexp: '^ok$' }",
        "    quoted:",
        "      type: https",
        "      port: 443",
        "      params:",
        "        response-code: '301'",
        "        host: h.example",
        "        server-name: sni.example",
        "    plain-tcp:",
        "      type: tcp",
        "      port: 22",
        "      params: { ssl: false }",
    ]);
    let config = ok(&text);
    let one = config.healthcheck("one").unwrap().kind.http().unwrap();
    assert_eq!(one.response_codes, StatusRange { min: 204, max: 204 });
    assert_eq!(one.response_codes.to_string(), "204");
    let regexp = one.response_regexp.as_ref().unwrap();
    assert!(regexp.is_match("ok") && !regexp.is_match("not ok"));
    assert_eq!(regexp.as_str(), "^ok$");
    let quoted = &config.healthcheck("quoted").unwrap().kind;
    assert_eq!(quoted.http().unwrap().response_codes.to_string(), "301");
    assert_eq!(
        quoted.tls().unwrap().server_name.as_deref(),
        Some("sni.example")
    );
    assert_eq!(
        config.healthcheck("plain-tcp").unwrap().kind,
        CheckKind::Tcp { tls: None }
    );
}

// ---------------------------------------------------------------------------------------------
// Parse stage
// ---------------------------------------------------------------------------------------------

#[test]
fn parse_error_unknown_key_names_the_full_path() {
    let text = with_frontends(&[
        "    web:",
        "      address: 10.0.0.1",
        "      pools:",
        "        - name: p",
        "          backends:",
        "            a4: { wieght: 5 }",
    ]);
    let error = parse_error(&text);
    assert_eq!((error.line, error.column), (16, 19));
    assert_eq!(error.path, "frontends.web.pools[0].backends.a4.wieght");
    assert_eq!(
        error.to_string(),
        "t.yaml:16:19: frontends.web.pools[0].backends.a4.wieght: unknown field `wieght`, expected one of weight"
    );
    assert!(load(&text).unwrap_err().is_parse());
    assert!(load(&text).unwrap_err().semantic_errors().is_empty());
}

#[test]
fn parse_error_unknown_top_level_and_section_keys() {
    let top = parse_error("maglev: {}\nextra: 1\n");
    assert_eq!(
        top.to_string(),
        "t.yaml:2:1: extra: unknown field `extra`, expected one of maglev"
    );
    let section = parse_error("maglev:\n  vpp:\n    lb: {}\n    stats: {}\n");
    assert_eq!(
        section.to_string(),
        "t.yaml:4:5: vpp.stats: unknown field `stats`, expected one of lb"
    );
    // The original's backend `weight` was removed in 0.1.1: it now lives on pool members.
    let weight = parse_error("maglev:\n  backends:\n    b: { address: 10.0.0.1, weight: 5 }\n");
    assert_eq!(weight.path, "backends.b.weight");
    assert!(
        weight.message.starts_with("unknown field `weight`"),
        "{weight}"
    );
}

#[test]
fn parse_error_type_mismatches() {
    let weight = parse_error(&with_frontends(&[
        "    web:",
        "      address: 10.0.0.1",
        "      pools: [ { name: p, backends: { a4: { weight: heavy } } } ]",
    ]));
    assert_eq!(
        weight.to_string(),
        "t.yaml:13:53: frontends.web.pools[0].backends.a4.weight: expected an integer"
    );
    let enabled = parse_error("maglev:\n  backends:\n    b: { address: 10.0.0.1, enabled: [] }\n");
    assert_eq!(enabled.path, "backends.b.enabled");
    assert_eq!(enabled.line, 3);
    let kind = parse_error("maglev:\n  healthchecks:\n    h: { type: ftp }\n");
    assert_eq!(
        kind.to_string(),
        "t.yaml:3:16: healthchecks.h.type: unknown variant `ftp`, expected one of http, https, tcp, icmp"
    );
    let missing = parse_error("maglev:\n  healthchecks:\n    h:\n      port: 80\n");
    assert_eq!(
        missing.to_string(),
        "t.yaml:4:7: healthchecks.h: missing field `type`"
    );
    let address = parse_error("maglev:\n  backends:\n    b: { healthcheck: h }\n");
    assert_eq!(address.path, "backends.b");
    assert!(
        address.message.contains("missing field `address`"),
        "{address}"
    );
    let pools = parse_error("maglev:\n  frontends:\n    f: { address: 10.0.0.1, pools: {} }\n");
    assert_eq!(pools.path, "frontends.f.pools");
}

#[test]
fn parse_error_duplicate_keys() {
    let text = y(&[
        "maglev:",
        "  backends:",
        "    b1: { address: 10.0.0.1 }",
        "    b1: { address: 10.0.0.2 }",
    ]);
    let error = parse_error(&text);
    assert_eq!((error.line, error.column), (4, 5));
    assert!(
        error.message.starts_with("duplicate mapping key: b1"),
        "{error}"
    );
    let member = parse_error(&with_frontends(&[
        "    f:",
        "      address: 10.0.0.1",
        "      pools: [ { name: p, backends: { a4: {}, a4: { weight: 1 } } } ]",
    ]));
    assert_eq!(member.path, "frontends.f.pools[0].backends");
    assert!(
        member.message.starts_with("duplicate mapping key: a4"),
        "{member}"
    );
    let section = parse_error("maglev:\n  backends: {}\n  backends: {}\n");
    assert_eq!(section.line, 3);
    assert!(
        section.message.contains("duplicate mapping key"),
        "{section}"
    );
}

#[test]
fn parse_error_yaml_syntax_and_shape() {
    let syntax = parse_error("maglev:\n  backends: [\n");
    assert!(syntax.line >= 2, "{syntax}");
    assert!(syntax.to_string().starts_with("t.yaml:"), "{syntax}");
    let tab = parse_error("maglev:\n\tbackends: {}\n");
    assert_eq!(tab.line, 2, "{tab}");
    let not_a_map = parse_error("- maglev\n");
    assert_eq!(not_a_map.line, 1, "{not_a_map}");
    let empty = parse_error("");
    assert_eq!(
        empty.to_string(),
        "t.yaml: config is empty (expected a top-level `maglev:` key)"
    );
    let blank = parse_error("   \n# only a comment\n");
    assert_eq!(blank.to_string(), "t.yaml:3:1: unexpected end of input");
    let two_documents = parse_error("maglev: {}\n---\nmaglev: {}\n");
    assert_eq!(
        two_documents.to_string(),
        "t.yaml:3:1: expected one YAML document, found more"
    );
}

#[test]
fn parse_error_hostile_input_is_refused() {
    // The budgets scale with the size limit; with a 1 MiB limit (the former default) the
    // cases below stay within it and are refused by the parser's budgets.
    const MAX: usize = 1 << 20;
    let options = LoadOptions::default().with_max_bytes(MAX);
    let budget = |text: &str| {
        assert!(text.len() <= MAX);
        let error = parse_error_with(text, &options);
        assert!(
            error
                .message
                .starts_with("config exceeds the parser's limits"),
            "{error}"
        );
    };

    // Deep nesting.
    let deep = format!("maglev: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    // Refused at the first level by the types, without recursing.
    assert_eq!(
        parse_error(&deep).to_string(),
        "t.yaml:1:9: expected mapping start"
    );
    let deep_block: String = (0..10_000)
        .map(|depth| format!("{}k{depth}:\n", " ".repeat(depth)))
        .collect();
    assert!(load(&deep_block).unwrap_err().is_parse());
    assert!(
        Config::from_yaml_str_with("t.yaml", &deep_block, &options)
            .unwrap_err()
            .is_parse()
    );

    // Many nodes within the size limit: 150 000 pool members.
    let mut wide =
        String::from("maglev:\n  frontends:\n    f:\n      pools:\n        - backends: {");
    let mut index = 0;
    while wide.len() < MAX - 32 {
        wide.push_str(&format!("b{index}: {{}},"));
        index += 1;
    }
    wide.push_str("}\n");
    budget(&wide);

    // Alias flood: one anchored map replayed thousands of times.
    let mut aliases = String::from(
        "maglev:\n  frontends:\n    f:\n      address: 10.0.0.1\n      pools:\n        - { name: p0, backends: &m { b: {} } }\n",
    );
    for pool in 1..5_000 {
        aliases.push_str(&format!("        - {{ name: p{pool}, backends: *m }}\n"));
    }
    budget(&aliases);
    // Alias limits do not grow with the size limit.
    let error = parse_error(&aliases);
    assert!(
        error
            .message
            .starts_with("config exceeds the parser's limits"),
        "{error}"
    );
}

/// Padding comments up to just over `size` bytes, after a valid config.
fn padded(size: usize) -> String {
    let mut text = y(&["maglev:", "  backends:", "    b1: { address: 10.0.0.1 }"]);
    while text.len() <= size {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    text
}

#[test]
fn size_limit_defaults_to_64_mib() {
    assert_eq!(LoadOptions::default().max_bytes, 64 << 20);
    assert_eq!(LoadOptions::DEFAULT_MAX_BYTES, 64 << 20);
    // Far beyond the former 1 MiB limit, a config loads with the defaults.
    let text = padded(3 << 20);
    assert_eq!(ok(&text).backends.len(), 1);
}

#[test]
fn size_limit_over_names_the_limit_and_how_to_raise_it() {
    let text = padded(4096);
    let small = LoadOptions::default().with_max_bytes(4096);
    let error = parse_error_with(&text, &small);
    assert_eq!(error.line, 0);
    assert_eq!(
        error.to_string(),
        format!(
            "t.yaml: config is too large ({} bytes, over the limit of 4096 bytes; raise the loader's max_bytes to load it)",
            text.len()
        )
    );
    // Exactly at the limit loads.
    let exact = LoadOptions::default().with_max_bytes(text.len());
    let config = Config::from_yaml_str_with("t.yaml", &text, &exact).unwrap();
    assert_eq!(config.backends.len(), 1);
    // Over the default limit, with the default options.
    let huge = padded(LoadOptions::DEFAULT_MAX_BYTES);
    let error = parse_error(&huge);
    assert!(
        error
            .message
            .contains(&format!("over the limit of {} bytes", 64 << 20)),
        "{error}"
    );
}

#[test]
fn anchors_and_aliases_within_limits_are_fine() {
    let text = y(&[
        "maglev:",
        "  healthchecks:",
        "    a: &check { type: tcp, port: 80 }",
        "    b: *check",
        "  backends:",
        "    x: { address: 10.0.0.1, healthcheck: a }",
    ]);
    let config = ok(&text);
    assert_eq!(config.healthcheck("b").unwrap().port, Some(80));
}

// ---------------------------------------------------------------------------------------------
// Semantic stage: healthchecker and vpp.lb
// ---------------------------------------------------------------------------------------------

#[test]
fn healthchecker_rules() {
    let text = y(&[
        "maglev:",
        "  healthchecker:",
        "    transition-history: 0",
        "    netns: ../etc",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:3:25: healthchecker.transition-history: must be between 1 and 10000, got 0",
            "t.yaml:4:12: healthchecker.netns: `../etc` is neither a network namespace name (no `/`, not `.` or `..`) nor an absolute path to a namespace file",
        ]
    );
    // A name or an absolute path to a namespace file; nothing in between.
    for (value, accepted) in [
        ("dataplane", true),
        ("/var/run/netns/dataplane", true),
        ("/proc/1234/ns/net", true),
        ("..", false),
        (".", false),
        ("netns/dataplane", false),
        ("/var/run/netns/../x", false),
        ("/var/run//netns/x", false),
        ("/var/run/netns/", false),
        ("/", false),
    ] {
        let text = y(&[
            "maglev:",
            "  healthchecker:",
            &format!("    netns: '{value}'"),
        ]);
        if accepted {
            assert_eq!(ok(&text).healthchecker.netns.as_deref(), Some(value));
        } else {
            let errors = invalid(&text);
            assert_eq!(errors.len(), 1, "{value}: {errors:?}");
            assert!(
                errors[0].starts_with(&format!("t.yaml:3:12: healthchecker.netns: `{value}` ")),
                "{value}: {errors:?}"
            );
        }
    }
    let high = y(&["maglev:", "  healthchecker: { transition-history: 10001 }"]);
    assert_eq!(
        invalid(&high),
        ["t.yaml:2:40: healthchecker.transition-history: must be between 1 and 10000, got 10001"]
    );
    let empty_netns = ok("maglev:\n  healthchecker: { netns: '', transition-history: 1 }\n");
    assert_eq!(empty_netns.healthchecker.netns, None);
    assert_eq!(empty_netns.healthchecker.transition_history, 1);
}

#[test]
fn vpp_lb_is_required_with_a_vpp_section() {
    assert_eq!(
        invalid("maglev:\n  vpp: {}\n"),
        ["t.yaml:2:3: vpp.lb: is required when the vpp section is present"]
    );
}

#[test]
fn vpp_lb_source_addresses_are_required_and_of_their_family() {
    assert_eq!(
        invalid("maglev:\n  vpp:\n    lb:\n      sync-interval: 10s\n"),
        [
            "t.yaml:3:5: vpp.lb.ipv4-src-address: is required",
            "t.yaml:3:5: vpp.lb.ipv6-src-address: is required",
        ]
    );
    let swapped = y(&[
        "maglev:",
        "  vpp:",
        "    lb:",
        "      ipv4-src-address: 2001:db8::1",
        "      ipv6-src-address: 192.0.2.1",
    ]);
    assert_eq!(
        invalid(&swapped),
        [
            "t.yaml:4:25: vpp.lb.ipv4-src-address: `2001:db8::1` is not an IPv4 address",
            "t.yaml:5:25: vpp.lb.ipv6-src-address: `192.0.2.1` is not an IPv6 address",
        ]
    );
    let garbage = y(&[
        "maglev:",
        "  vpp:",
        "    lb:",
        "      ipv4-src-address: 192.0.2.300",
        "      ipv6-src-address: 2001:db8::1/64",
    ]);
    assert_eq!(
        invalid(&garbage),
        [
            "t.yaml:4:25: vpp.lb.ipv4-src-address: `192.0.2.300` is not an IP address",
            "t.yaml:5:25: vpp.lb.ipv6-src-address: `2001:db8::1/64` is not an IP address",
        ]
    );
}

fn lb_with(lines: &[&str]) -> String {
    let mut all = vec![
        "maglev:",
        "  vpp:",
        "    lb:",
        "      ipv4-src-address: 192.0.2.1",
        "      ipv6-src-address: 2001:db8::1",
    ];
    all.extend_from_slice(lines);
    y(&all)
}

#[test]
fn vpp_lb_sticky_buckets_must_be_a_power_of_two() {
    for value in ["3000", "0", "-4", "536870912"] {
        assert_eq!(
            invalid(&lb_with(&[&format!(
                "      sticky-buckets-per-core: {value}"
            )])),
            [format!(
                "t.yaml:6:32: vpp.lb.sticky-buckets-per-core: must be a power of two between 1 and 268435456, got {value}"
            )]
        );
    }
    let config = ok(&lb_with(&["      sticky-buckets-per-core: 1024"]));
    assert_eq!(config.vpp.unwrap().lb.sticky_buckets_per_core, 1024);
}

#[test]
fn vpp_lb_flow_timeout_is_whole_seconds_within_1_to_120() {
    let cases = [
        ("0", "must be between 1s and 120s, got 0s"),
        ("121s", "must be between 1s and 120s, got 121s"),
        ("3m", "must be between 1s and 120s, got 180s"),
        ("1500ms", "must be a whole number of seconds"),
        ("-5", "duration `-5` must not be negative"),
        (
            "soon",
            "invalid duration `soon` (expected e.g. `500ms`, `2s`, `1m30s`)",
        ),
    ];
    for (value, message) in cases {
        assert_eq!(
            invalid(&lb_with(&[&format!("      flow-timeout: {value}")])),
            [format!("t.yaml:6:21: vpp.lb.flow-timeout: {message}")],
            "{value}"
        );
    }
}

#[test]
fn vpp_lb_intervals_and_startup_delays() {
    assert_eq!(
        invalid(&lb_with(&["      sync-interval: 0s"])),
        ["t.yaml:6:22: vpp.lb.sync-interval: must be greater than 0"]
    );
    assert_eq!(
        invalid(&lb_with(&["      sync-interval: 30"])),
        ["t.yaml:6:22: vpp.lb.sync-interval: missing unit in duration `30` (write e.g. `30s`)"]
    );
    assert_eq!(
        invalid(&lb_with(&[
            "      startup-min-delay: 10s",
            "      startup-max-delay: 5s"
        ])),
        ["t.yaml:7:26: vpp.lb.startup-max-delay: must not be below startup-min-delay (5s < 10s)"]
    );
    // Only the min delay set, above the default max.
    assert_eq!(
        invalid(&lb_with(&["      startup-min-delay: 1m"])),
        ["t.yaml:6:26: vpp.lb.startup-max-delay: must not be below startup-min-delay (30s < 60s)"]
    );
    // A typo gives one error, not a second one from comparing against a default.
    assert_eq!(
        invalid(&lb_with(&[
            "      startup-min-delay: 2x",
            "      startup-max-delay: 1s"
        ])),
        ["t.yaml:6:26: vpp.lb.startup-min-delay: unknown unit `x` in duration `2x`"]
    );
}

// ---------------------------------------------------------------------------------------------
// Semantic stage: healthchecks
// ---------------------------------------------------------------------------------------------

fn check_with(lines: &[&str]) -> String {
    let mut all = vec!["maglev:", "  healthchecks:", "    h:"];
    all.extend_from_slice(lines);
    y(&all)
}

#[test]
fn healthcheck_port_required_forbidden_and_ranged() {
    for kind in ["http", "https", "tcp"] {
        assert_eq!(
            invalid(&check_with(&[&format!("      type: {kind}")])),
            [format!(
                "t.yaml:3:5: healthchecks.h.port: is required for {kind} checks"
            )]
        );
    }
    assert_eq!(
        invalid(&check_with(&["      type: icmp", "      port: 7"])),
        ["t.yaml:5:13: healthchecks.h.port: is not allowed for icmp checks"]
    );
    for port in ["0", "65536", "-1"] {
        assert_eq!(
            invalid(&check_with(&[
                "      type: tcp",
                &format!("      port: {port}")
            ])),
            [format!(
                "t.yaml:5:13: healthchecks.h.port: must be between 1 and 65535, got {port}"
            )]
        );
    }
    let edge = ok(&check_with(&["      type: tcp", "      port: 65535"]));
    assert_eq!(edge.healthcheck("h").unwrap().port, Some(65_535));
}

#[test]
fn healthcheck_durations_parse_and_are_positive() {
    let text = check_with(&[
        "      type: icmp",
        "      interval: 0s",
        "      fast-interval: 2",
        "      down-interval: 1 minute",
        "      timeout: 0",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:5:17: healthchecks.h.interval: must be greater than 0",
            "t.yaml:6:22: healthchecks.h.fast-interval: missing unit in duration `2` (write e.g. `2s`)",
            "t.yaml:7:22: healthchecks.h.down-interval: unknown unit ` minute` in duration `1 minute`",
            "t.yaml:8:16: healthchecks.h.timeout: must be greater than 0",
        ]
    );
}

#[test]
fn healthcheck_timeout_must_not_exceed_interval() {
    let text = check_with(&[
        "      type: icmp",
        "      interval: 1s",
        "      timeout: 1500ms",
    ]);
    assert_eq!(
        invalid(&text),
        ["t.yaml:6:16: healthchecks.h.timeout: must not exceed interval (1.5s > 1s)"]
    );
    // Against the default interval (2s).
    let text = check_with(&["      type: icmp", "      timeout: 3s"]);
    assert_eq!(
        invalid(&text),
        ["t.yaml:5:16: healthchecks.h.timeout: must not exceed interval (3s > 2s)"]
    );
    // A broken interval is reported once, without comparing the timeout to a default.
    let text = check_with(&["      type: icmp", "      interval: 5", "      timeout: 3s"]);
    assert_eq!(
        invalid(&text),
        ["t.yaml:5:17: healthchecks.h.interval: missing unit in duration `5` (write e.g. `5s`)"]
    );
    // Equal is fine.
    let config = ok(&check_with(&["      type: icmp", "      timeout: 2s"]));
    assert_eq!(
        config.healthcheck("h").unwrap().timeout,
        Duration::from_secs(2)
    );
}

#[test]
fn healthcheck_rise_and_fall_are_1_to_100() {
    let text = check_with(&["      type: icmp", "      rise: 0", "      fall: 101"]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:5:13: healthchecks.h.rise: must be between 1 and 100, got 0",
            "t.yaml:6:13: healthchecks.h.fall: must be between 1 and 100, got 101",
        ]
    );
    let config = ok(&check_with(&[
        "      type: icmp",
        "      rise: 100",
        "      fall: 1",
    ]));
    let check = config.healthcheck("h").unwrap();
    assert_eq!((check.rise, check.fall), (100, 1));
}

#[test]
fn healthcheck_probe_sources_have_their_family() {
    let text = check_with(&[
        "      type: icmp",
        "      probe-ipv4-src: '::1'",
        "      probe-ipv6-src: 127.0.0.1",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:5:23: healthchecks.h.probe-ipv4-src: `::1` is not an IPv4 address",
            "t.yaml:6:23: healthchecks.h.probe-ipv6-src: `127.0.0.1` is not an IPv6 address",
        ]
    );
    let text = check_with(&["      type: icmp", "      probe-ipv4-src: localhost"]);
    assert_eq!(
        invalid(&text),
        ["t.yaml:5:23: healthchecks.h.probe-ipv4-src: `localhost` is not an IP address"]
    );
    let config = ok(&check_with(&[
        "      type: icmp",
        "      probe-ipv4-src: 127.0.0.2",
        "      probe-ipv6-src: '::1'",
    ]));
    let check = config.healthcheck("h").unwrap();
    assert_eq!(check.probe_ipv4_src, Some(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(check.probe_ipv6_src, Some(Ipv6Addr::LOCALHOST));
}

#[test]
fn healthcheck_params_only_where_they_apply() {
    let icmp = check_with(&[
        "      type: icmp",
        "      params:",
        "        path: /x",
        "        host: h",
        "        response-code: 200",
        "        response-regexp: ok",
        "        ssl: true",
        "        server-name: s",
        "        insecure-skip-verify: true",
    ]);
    let why_http = "is not allowed for icmp checks (only for http and https)";
    let why_tls = "is not allowed for icmp checks (only for https, or tcp with ssl: true)";
    assert_eq!(
        invalid(&icmp),
        [
            format!("t.yaml:6:15: healthchecks.h.params.path: {why_http}"),
            format!("t.yaml:7:15: healthchecks.h.params.host: {why_http}"),
            format!("t.yaml:8:24: healthchecks.h.params.response-code: {why_http}"),
            format!("t.yaml:9:26: healthchecks.h.params.response-regexp: {why_http}"),
            "t.yaml:10:14: healthchecks.h.params.ssl: is not allowed for icmp checks (only for tcp)"
                .to_owned(),
            format!("t.yaml:11:22: healthchecks.h.params.server-name: {why_tls}"),
            format!("t.yaml:12:31: healthchecks.h.params.insecure-skip-verify: {why_tls}"),
        ]
    );
    let http = check_with(&[
        "      type: http",
        "      port: 80",
        "      params: { ssl: true, server-name: s }",
    ]);
    assert_eq!(
        invalid(&http),
        [
            "t.yaml:6:22: healthchecks.h.params.ssl: is not allowed for http checks (only for tcp)",
            "t.yaml:6:41: healthchecks.h.params.server-name: is not allowed for http checks (only for https, or tcp with ssl: true)",
        ]
    );
    let tcp = check_with(&[
        "      type: tcp",
        "      port: 80",
        "      params: { path: /, insecure-skip-verify: true }",
    ]);
    assert_eq!(
        invalid(&tcp),
        [
            "t.yaml:6:23: healthchecks.h.params.path: is not allowed for tcp checks (only for http and https)",
            "t.yaml:6:48: healthchecks.h.params.insecure-skip-verify: is not allowed for tcp checks (needs ssl: true)",
        ]
    );
}

#[test]
fn healthcheck_http_param_values() {
    let text = check_with(&[
        "      type: https",
        "      port: 443",
        "      params:",
        "        path: healthz",
        "        host: 'a b'",
        "        server-name: ''",
        "        response-regexp: '(unclosed'",
    ]);
    let lines = invalid(&text);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0],
        "t.yaml:7:15: healthchecks.h.params.path: `healthz` is not an absolute path (must start with `/`, no spaces)"
    );
    assert_eq!(
        lines[1],
        "t.yaml:8:15: healthchecks.h.params.host: `a b` is not a valid host (empty, or has spaces or control characters)"
    );
    assert_eq!(
        lines[2],
        "t.yaml:9:22: healthchecks.h.params.server-name: `` is not a valid server name (empty, or has spaces or control characters)"
    );
    assert!(
        lines[3].starts_with(
            "t.yaml:10:26: healthchecks.h.params.response-regexp: invalid regular expression: "
        ),
        "{}",
        lines[3]
    );
}

#[test]
fn healthcheck_response_code_forms() {
    let range = "is not a status code (`200`) or range (`200-399`) within 100-599";
    let cases = [
        ("600", format!("`600` {range}")),
        ("99", format!("`99` {range}")),
        ("'2xx'", format!("`2xx` {range}")),
        ("'200-'", format!("`200-` {range}")),
        ("'200-700'", format!("`200-700` {range}")),
        (
            "'399-200'",
            "range `399-200` is empty (low end above high end)".to_owned(),
        ),
    ];
    for (value, message) in cases {
        let text = check_with(&[
            "      type: http",
            "      port: 80",
            &format!("      params: {{ response-code: {value} }}"),
        ]);
        assert_eq!(
            invalid(&text),
            [format!(
                "t.yaml:6:32: healthchecks.h.params.response-code: {message}"
            )],
            "{value}"
        );
    }
    let config = ok(&check_with(&[
        "      type: http",
        "      port: 80",
        "      params: { response-code: 200-204 }",
    ]));
    let codes = config
        .healthcheck("h")
        .unwrap()
        .kind
        .http()
        .unwrap()
        .response_codes;
    assert_eq!(codes, StatusRange { min: 200, max: 204 });
    assert_eq!(codes.to_string(), "200-204");
}

#[test]
fn hostile_regexp_is_refused_not_compiled_without_bound() {
    let text = check_with(&[
        "      type: http",
        "      port: 80",
        "      params: { response-regexp: '(((a{100}){100}){100})' }",
    ]);
    let lines = invalid(&text);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("healthchecks.h.params.response-regexp: invalid regular expression"),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Semantic stage: backends
// ---------------------------------------------------------------------------------------------

#[test]
fn backend_rules() {
    let text = y(&[
        "maglev:",
        "  backends:",
        "    bad-address: { address: 10.0.0.256 }",
        "    with-prefix: { address: 10.0.0.0/24 }",
        "    multicast: { address: 224.0.0.1 }",
        "    any6: { address: '::' }",
        "    orphan: { address: 10.0.0.5, healthcheck: missing }",
        "    '': { address: 10.0.0.6 }",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:3:29: backends.bad-address.address: `10.0.0.256` is not an IP address",
            "t.yaml:4:29: backends.with-prefix.address: `10.0.0.0/24` is not an IP address",
            "t.yaml:5:27: backends.multicast.address: `224.0.0.1` is not a unicast address",
            "t.yaml:6:22: backends.any6.address: `::` is not a unicast address",
            "t.yaml:7:47: backends.orphan.healthcheck: unknown healthcheck `missing`",
            "t.yaml:8:9: backends.\"\": name must not be empty",
        ]
    );
}

#[test]
fn broken_healthcheck_does_not_cascade_into_unknown_references() {
    let text = y(&[
        "maglev:",
        "  healthchecks:",
        "    h: { type: tcp }",
        "  backends:",
        "    b: { address: nowhere, healthcheck: h }",
        "  frontends:",
        "    f:",
        "      address: 10.0.0.1",
        "      pools: [ { name: p, backends: { b: {} } } ]",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:3:5: healthchecks.h.port: is required for tcp checks",
            "t.yaml:5:19: backends.b.address: `nowhere` is not an IP address",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Semantic stage: frontends
// ---------------------------------------------------------------------------------------------

#[test]
fn frontend_vip_address_rules() {
    let text = with_frontends(&[
        "    bad:",
        "      address: 10.0.0",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    host-bits:",
        "      address: 10.0.0.1/24",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    multicast:",
        "      address: ff02::1",
        "      pools: [ { name: p, backends: { a6: {} } } ]",
        "    long-prefix:",
        "      address: 10.0.0.0/33",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:12:16: frontends.bad.address: `10.0.0` is not an IP address or prefix",
            "t.yaml:15:16: frontends.host-bits.address: prefix `10.0.0.1/24` has host bits set (use `10.0.0.0/24`)",
            "t.yaml:18:16: frontends.multicast.address: `ff02::1` is not a unicast address",
            "t.yaml:21:16: frontends.long-prefix.address: `10.0.0.0/33` is not an IP address or prefix",
        ]
    );
}

#[test]
fn frontend_protocol_and_port_rules() {
    let text = with_frontends(&[
        "    unknown:",
        "      address: 10.0.0.1",
        "      protocol: sctp",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    tcp-no-port:",
        "      address: 10.0.0.2",
        "      protocol: tcp",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    port-no-protocol:",
        "      address: 10.0.0.3",
        "      port: 80",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    any-with-port:",
        "      address: 10.0.0.4",
        "      protocol: any",
        "      port: 443",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    port-range:",
        "      address: 10.0.0.5",
        "      protocol: udp",
        "      port: 65536",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    udp-port-zero:",
        "      address: 10.0.0.6",
        "      protocol: udp",
        "      port: 0",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:13:17: frontends.unknown.protocol: unknown protocol `sctp`, expected tcp, udp or any",
            "t.yaml:17:17: frontends.tcp-no-port.port: is required for protocol tcp (port 0 means all ports, which needs protocol any)",
            "t.yaml:19:5: frontends.port-no-protocol.protocol: must be tcp or udp with port 80 (protocol any serves all ports)",
            "t.yaml:25:17: frontends.any-with-port.protocol: must be tcp or udp with port 443 (protocol any serves all ports)",
            "t.yaml:31:13: frontends.port-range.port: must be between 0 and 65535, got 65536",
            "t.yaml:36:13: frontends.udp-port-zero.port: is required for protocol udp (port 0 means all ports, which needs protocol any)",
        ]
    );
}

#[test]
fn frontend_pools_must_be_non_empty_and_named() {
    let text = with_frontends(&[
        "    no-pools:",
        "      address: 10.0.0.1",
        "    empty-pools:",
        "      address: 10.0.0.2",
        "      pools: []",
        "    pool-problems:",
        "      address: 10.0.0.3",
        "      pools:",
        "        - backends: { a4: {} }",
        "        - name: ''",
        "          backends: { a4: {} }",
        "        - name: twin",
        "          backends: { a4: {} }",
        "        - name: twin",
        "          backends: { b4: {} }",
        "        - name: empty",
        "          backends: {}",
        "        - name: missing",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:11:5: frontends.no-pools.pools: must list at least one pool",
            "t.yaml:15:14: frontends.empty-pools.pools: must list at least one pool",
            "t.yaml:19:11: frontends.pool-problems.pools[0].name: is required",
            "t.yaml:20:17: frontends.pool-problems.pools[1].name: must not be empty",
            "t.yaml:24:17: frontends.pool-problems.pools[3].name: duplicate pool name `twin`",
            "t.yaml:26:11: frontends.pool-problems.pools[4].backends: must list at least one backend",
            "t.yaml:28:11: frontends.pool-problems.pools[5].backends: must list at least one backend",
        ]
    );
}

#[test]
fn frontend_members_exist_and_weights_are_0_to_100() {
    let text = with_frontends(&[
        "    web:",
        "      address: 10.0.0.1",
        "      pools:",
        "        - name: p",
        "          backends:",
        "            a4: { weight: 101 }",
        "            ghost: {}",
        "            b4:",
        "              weight: -1",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:16:27: frontends.web.pools[0].backends.a4.weight: must be between 0 and 100, got 101",
            "t.yaml:17:13: frontends.web.pools[0].backends.ghost: unknown backend `ghost`",
            "t.yaml:19:23: frontends.web.pools[0].backends.b4.weight: must be between 0 and 100, got -1",
        ]
    );
    let zero = ok(&with_frontends(&[
        "    web:",
        "      address: 10.0.0.1",
        "      pools: [ { name: p, backends: { a4: { weight: 0 }, b4: { weight: 100 } } } ]",
    ]));
    let weights: Vec<u8> = zero.frontends[0].pools[0]
        .backends
        .iter()
        .map(|member| member.weight)
        .collect();
    assert_eq!(weights, [0, 100]);
}

#[test]
fn frontend_backends_share_the_vip_family_across_pools() {
    let text = with_frontends(&[
        "    v4:",
        "      address: 10.0.0.1",
        "      pools:",
        "        - name: p",
        "          backends: { a4: {} }",
        "        - name: q",
        "          backends: { a6: {} }",
        "    v6:",
        "      address: 2001:db8::1",
        "      pools:",
        "        - name: p",
        "          backends: { b4: {} }",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:17:23: frontends.v4.pools[1].backends.a6: backend `a6` (2001:db8::6) is IPv6 but the VIP 10.0.0.1/32 is IPv4; all backends of a frontend share the VIP's address family",
            "t.yaml:22:23: frontends.v6.pools[0].backends.b4: backend `b4` (127.0.0.12) is IPv4 but the VIP 2001:db8::1/128 is IPv6; all backends of a frontend share the VIP's address family",
        ]
    );
}

#[test]
fn ipv6_backends_in_the_ipv4_compatible_range_are_refused() {
    // VPP's lb plugin takes any address whose first 96 bits are zero for IPv4, so `::1` or
    // `::10.0.0.1` would be refused (or misrouted) by the dataplane.
    let text = y(&[
        "maglev:",
        "  backends:",
        "    lo6: { address: '::1' }",
        "    compat: { address: '::10.0.0.1' }",
        "    good: { address: '2001:db8::7' }",
        "  frontends:",
        "    v6:",
        "      address: 2001:db8::1",
        "      pools:",
        "        - name: p",
        "          backends: { lo6: {}, compat: {}, good: {} }",
    ]);
    let errors = invalid(&text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("backend `lo6` (::1) is in ::/96"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("backend `compat` (::a00:1) is in ::/96"),
        "{errors:?}"
    );
}

#[test]
fn frontend_backends_with_the_same_address_conflict() {
    let text = y(&[
        "maglev:",
        "  backends:",
        "    one: { address: 10.0.0.1 }",
        "    same: { address: 10.0.0.1 }",
        "  frontends:",
        "    f:",
        "      address: 10.0.1.1",
        "      pools:",
        "        - name: p",
        "          backends: { one: {} }",
        "        - name: q",
        "          backends: { same: {}, one: {} }",
        "    g:",
        "      address: 10.0.1.2",
        "      pools: [ { name: p, backends: { same: {} } } ]",
    ]);
    assert_eq!(
        invalid(&text),
        [
            "t.yaml:12:23: frontends.f.pools[1].backends.same: backend `same` has the same address 10.0.0.1 as backend `one` in this frontend"
        ]
    );
}

#[test]
fn frontend_new_flows_table_length_is_a_power_of_two() {
    for value in ["1000", "0", "33554432"] {
        let text = with_frontends(&[
            "    f:",
            "      address: 10.0.0.1",
            &format!("      new-flows-table-length: {value}"),
            "      pools: [ { name: p, backends: { a4: {} } } ]",
        ]);
        assert_eq!(
            invalid(&text),
            [format!(
                "t.yaml:13:31: frontends.f.new-flows-table-length: must be a power of two between 1 and 16777216, got {value}"
            )]
        );
    }
    let config = ok(&with_frontends(&[
        "    f:",
        "      address: 10.0.0.1",
        "      new-flows-table-length: 65536",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
    ]));
    assert_eq!(config.frontends[0].new_flows_table_length, 65_536);
}

#[test]
fn frontend_vips_are_unique() {
    let text = with_frontends(&[
        "    first:",
        "      address: 10.0.0.1",
        "      protocol: tcp",
        "      port: 80",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    other-port:",
        "      address: 10.0.0.1",
        "      protocol: tcp",
        "      port: 443",
        "      pools: [ { name: p, backends: { a4: {} } } ]",
        "    again:",
        "      address: 10.0.0.1/32",
        "      protocol: tcp",
        "      port: 80",
        "      pools: [ { name: p, backends: { b4: {} } } ]",
    ]);
    assert_eq!(
        invalid(&text),
        ["t.yaml:21:5: frontends.again: same VIP (10.0.0.1/32 tcp port 80) as frontend `first`"]
    );
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

/// Every broken rule is reported at once, in file order, whatever the section order.
#[test]
fn every_semantic_error_is_reported_in_file_order() {
    let text = y(&[
        "maglev:",
        "  frontends:",
        "    web:",
        "      address: 10.0.0.1",
        "      protocol: tcp",
        "      port: 80",
        "      new-flows-table-length: 100",
        "      pools:",
        "        - name: primary",
        "          backends:",
        "            b1: { weight: 300 }",
        "            nope: {}",
        "  backends:",
        "    b1: { address: 10.0.0.11, healthcheck: hc }",
        "    b2: { address: 10.0.0.12, healthcheck: none }",
        "  healthchecks:",
        "    hc:",
        "      type: http",
        "      port: 70000",
        "      rise: 0",
        "      timeout: 5s",
        "      params: { path: x }",
        "  healthchecker:",
        "    transition-history: 0",
        "  vpp:",
        "    lb:",
        "      ipv4-src-address: 2001:db8::1",
        "      flow-timeout: 0.5s",
    ]);
    let error = load(&text).unwrap_err();
    insta::assert_snapshot!("every_semantic_error", error.to_string());
    let lines: Vec<u64> = error.semantic_errors().iter().map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    assert!(
        error
            .semantic_errors()
            .iter()
            .all(|e| e.source_name == "t.yaml")
    );
}

#[test]
fn source_name_appears_in_every_message() {
    let parse = Config::from_yaml_str("/etc/vpp-maglev/maglev.yaml", "maglev: [\n").unwrap_err();
    assert!(
        parse
            .to_string()
            .starts_with("/etc/vpp-maglev/maglev.yaml:1:"),
        "{parse}"
    );
    let semantic = Config::from_yaml_str(
        "reload.yaml",
        "maglev:\n  healthchecker: { transition-history: 0 }\n",
    )
    .unwrap_err();
    assert!(
        semantic.to_string().starts_with("reload.yaml:2:"),
        "{semantic}"
    );
}

/// The segments of an accepted key path: `pools[]` is the key `pools`, then a list item.
fn key_segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for segment in path.split('.') {
        match segment.strip_suffix("[]") {
            Some(key) => out.extend([key, "[]"]),
            None => out.push(segment),
        }
    }
    out
}

/// A file in which `path` exists and holds one more key, `zz-not-a-key`.
fn file_with_extra_key(path: &[&str]) -> String {
    let mut text = String::new();
    let mut indent = 0;
    let mut dash = false;
    let line = |indent: usize, dash: bool, key: &str, text: &mut String| {
        text.push_str(&" ".repeat(indent));
        if dash {
            text.push_str("- ");
        }
        text.push_str(key);
    };
    for segment in path {
        if *segment == "[]" {
            dash = true;
            continue;
        }
        let key = if segment.starts_with('<') {
            "n"
        } else {
            segment
        };
        line(indent, dash, &format!("{key}:\n"), &mut text);
        indent += if dash { 4 } else { 2 };
        dash = false;
    }
    line(indent, dash, "zz-not-a-key: 1\n", &mut text);
    text
}

/// The keys the parser names in its unknown-key error at `path`, or `None` when it reports
/// no unknown key there.
fn parser_keys_at(path: &[&str]) -> Option<std::collections::BTreeSet<String>> {
    let text = file_with_extra_key(path);
    let Err(ConfigError::Parse(error)) = Config::from_yaml_str("t.yaml", &text) else {
        return None;
    };
    let list = error
        .message
        .strip_prefix("unknown field `zz-not-a-key`, expected one of ")?;
    Some(
        list.split(", ")
            .map(|k| k.trim_matches('`').to_owned())
            .collect(),
    )
}

#[test]
fn accepted_keys_match_the_parser_both_ways() {
    use std::collections::BTreeSet;
    let keys = maglev_core::config::accepted_keys();
    let set: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(set.len(), keys.len(), "a key is listed twice");
    // Every key's parent is listed (or is the file itself).
    for key in keys {
        if let Some((parent, _)) = key.rsplit_once('.') {
            let parent = parent.trim_end_matches("[]");
            assert!(set.contains(parent), "{key}: parent {parent} not listed");
        }
    }
    // The children listed under a path, as the parser names them.
    let children = |path: &str| -> BTreeSet<String> {
        if path.is_empty() {
            return keys
                .iter()
                .filter(|k| !k.contains('.'))
                .map(|k| (*k).to_owned())
                .collect();
        }
        keys.iter()
            .filter_map(|k| k.strip_prefix(path))
            .filter_map(|rest| rest.strip_prefix('.').or_else(|| rest.strip_prefix("[].")))
            .filter(|rest| !rest.contains('.'))
            .map(str::to_owned)
            .collect()
    };
    let mut structs = 0;
    for path in std::iter::once("").chain(keys.iter().copied()) {
        let listed = children(path);
        let segments: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            key_segments(path)
        };
        let segments_item: Vec<&str> = if keys.iter().any(|k| k.starts_with(&format!("{path}[].")))
        {
            segments.iter().copied().chain(["[]"]).collect()
        } else {
            segments.clone()
        };
        let parsed = parser_keys_at(&segments_item);
        match (listed.is_empty(), listed.iter().all(|c| c == "<name>")) {
            // A leaf: the parser must not take keys under it.
            (true, _) => assert_eq!(parsed, None, "{path} is listed as a leaf but takes keys"),
            // A map of names: any name goes.
            (false, true) => assert_eq!(parsed, None, "{path}: a map of names expected"),
            (false, false) => {
                structs += 1;
                assert_eq!(
                    parsed.as_ref(),
                    Some(&listed),
                    "{path}: the parser's keys differ from accepted_keys()"
                );
            }
        }
    }
    assert!(structs >= 10, "only {structs} sections checked");
}
