//! Config to checker conversion: every check type maps onto the prober's spec with the
//! config's values, static backends have no check, and the embedded example converts.

use std::net::IpAddr;
use std::time::Duration;

use maglev_health::probe::ProbeKind;
use maglevd::config_file::{self, ConfigSource};
use maglevd::specs;

const CONFIG: &str = "
maglev:
  healthchecker:
    transition-history: 7
  healthchecks:
    h:
      type: http
      port: 8080
      interval: 3s
      fast-interval: 400ms
      down-interval: 9s
      timeout: 700ms
      rise: 4
      fall: 5
      probe-ipv4-src: 127.0.0.1
      params:
        path: /healthz
        host: www.example.test
        response-code: 200-204
        response-regexp: \"ok\"
    s:
      type: https
      port: 8443
      params:
        server-name: tls.example.test
        insecure-skip-verify: true
    t:
      type: tcp
      port: 22
    tt:
      type: tcp
      port: 993
      params:
        ssl: true
    i:
      type: icmp
  backends:
    web: { address: 127.0.0.11, healthcheck: h }
    sec: { address: 127.0.0.12, healthcheck: s, enabled: false }
    ssh: { address: 127.0.0.13, healthcheck: t }
    imap: { address: 127.0.0.14, healthcheck: tt }
    ping: { address: 127.0.0.15, healthcheck: i }
    fixed: { address: 127.0.0.16 }
";

fn load() -> Vec<maglev_health::checker::BackendSpec> {
    config_file::load_str("t.yaml", CONFIG)
        .expect("config loads")
        .specs
}

#[test]
fn every_backend_gets_one_spec_in_name_order() {
    let specs = load();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fixed", "imap", "ping", "sec", "ssh", "web"]);
    let sec = specs.iter().find(|s| s.name == "sec").unwrap();
    assert!(!sec.enabled);
    assert!(specs.iter().filter(|s| s.name != "sec").all(|s| s.enabled));
}

#[test]
fn http_check_carries_every_value() {
    let specs = load();
    let web = specs.iter().find(|s| s.name == "web").unwrap();
    assert_eq!(web.address, "127.0.0.11".parse::<IpAddr>().unwrap());
    let check = web.check.as_ref().expect("web has a check");
    assert_eq!(check.interval, Duration::from_secs(3));
    assert_eq!(check.fast_interval, Duration::from_millis(400));
    assert_eq!(check.down_interval, Duration::from_secs(9));
    assert_eq!((check.rise, check.fall), (4, 5));
    assert_eq!(check.probe.timeout, Duration::from_millis(700));
    assert_eq!(check.probe.source_v4, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(check.probe.source_v6, None);
    let ProbeKind::Http(http) = &check.probe.kind else {
        panic!("expected an http probe, got {:?}", check.probe.kind);
    };
    assert_eq!(http.port, 8080);
    assert!(http.tls.is_none());
    assert_eq!(http.path, "/healthz");
    assert_eq!(http.host.as_deref(), Some("www.example.test"));
    assert_eq!(http.status, (200, 204));
    assert_eq!(http.regexp.as_ref().map(|r| r.as_str()), Some("ok"));
}

#[test]
fn https_tcp_tls_and_icmp_map_to_their_probe_kinds() {
    let specs = load();
    let probe = |name: &str| {
        specs
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.check.as_ref())
            .map(|c| c.probe.kind.clone())
            .unwrap()
    };
    let ProbeKind::Http(https) = probe("sec") else {
        panic!("sec is https")
    };
    let tls = https.tls.expect("https has tls");
    assert_eq!(https.port, 8443);
    assert_eq!(tls.server_name(), Some("tls.example.test"));
    assert!(tls.insecure_skip_verify());
    // Defaults of the config model reach the prober.
    assert_eq!(https.path, "/");
    assert_eq!(https.status, (200, 399));

    assert!(matches!(
        probe("ssh"),
        ProbeKind::Tcp {
            port: 22,
            tls: None
        }
    ));
    let ProbeKind::Tcp { port, tls } = probe("imap") else {
        panic!("imap is tcp")
    };
    assert_eq!(port, 993);
    let tls = tls.expect("ssl: true gives a tls handshake");
    assert!(!tls.insecure_skip_verify());
    assert!(matches!(probe("ping"), ProbeKind::Icmp));
}

#[test]
fn backend_without_healthcheck_is_static() {
    let specs = load();
    let fixed = specs.iter().find(|s| s.name == "fixed").unwrap();
    assert!(fixed.check.is_none());
}

#[test]
fn checker_history_comes_from_the_config() {
    let loaded = config_file::load_str("t.yaml", CONFIG).unwrap();
    assert_eq!(specs::checker_config(&loaded.config).history, 7);
}

#[test]
fn embedded_example_converts_and_every_spec_validates() {
    let loaded = config_file::load(&ConfigSource::Embedded).expect("embedded config loads");
    assert_eq!(loaded.specs.len(), loaded.config.backends.len());
    for spec in &loaded.specs {
        if let Some(check) = &spec.check {
            check.probe.validate().unwrap();
            check.params().validate().unwrap();
        }
    }
    assert!(loaded.config.vpp.is_some(), "the demo programs VPP");
}

#[test]
fn missing_file_is_a_read_error_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.yaml");
    let error = config_file::load(&ConfigSource::File(path)).unwrap_err();
    assert_eq!(error.check_exit_code(), config_file::EXIT_PARSE);
    assert!(error.to_string().contains("absent.yaml"), "{error}");
}

#[test]
fn config_size_limit_is_adjustable_and_named_when_exceeded() {
    use clap::Parser as _;
    use maglevd::cli::Args;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let source = ConfigSource::File(path);
    let limit = CONFIG.len() - 1;
    let args = Args::try_parse_from(["maglevd", "--config-max-bytes", &limit.to_string()]).unwrap();
    let error = config_file::load_with(&source, &args.load_options()).unwrap_err();
    assert_eq!(error.check_exit_code(), config_file::EXIT_PARSE);
    let message = error.to_string();
    assert!(message.contains("big.yaml"), "{message}");
    assert!(
        message.contains(&format!("over the limit of {limit} bytes")),
        "{message}"
    );
    assert!(message.contains("--config-max-bytes"), "{message}");
    assert!(message.contains("MAGLEV_CONFIG_MAX_BYTES"), "{message}");
    // At the limit it loads; the default is 64 MiB.
    let exact =
        Args::try_parse_from(["maglevd", "--config-max-bytes", &CONFIG.len().to_string()]).unwrap();
    config_file::load_with(&source, &exact.load_options()).unwrap();
    let default = Args::try_parse_from(["maglevd"]).unwrap();
    assert_eq!(default.load_options().max_bytes, 64 << 20);
}
