//! `/metrics` and `/healthz` over a real checker (loopback backends), the sync engine and the
//! simulator with its stats segment: the exposition parses (and passes `promtool check
//! metrics` where promtool is installed; CI requires it), every family is there with its
//! labels, a backend going down moves its state, transitions and probe counters, and a
//! reload that renames or adds backends moves the probe series to the new names (a probe in
//! flight across it counts under neither).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maglev_core::config::Config;
use maglev_core::maglev::Table;
use maglev_health::checker::{Checker, DefaultProber};
use maglev_vpp::metrics::ApiCounters;
use maglev_vpp::syncer::{LbSyncer, SyncerOptions};
use maglevd::grpc::requests::GrpcRequests;
use maglevd::metrics::{MeteredProber, Metrics, ProbeRecorder, TransitionCounts};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vpp_sim::{SimConfig, Simulator};

const VIP: &str = "192.0.2.80";

fn config(ports: [u16; 2]) -> String {
    format!(
        "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: 1s
      startup-min-delay: 0s
      startup-max-delay: 0s
  healthchecks:
    c1: {{ type: tcp, port: {p1}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
    c2: {{ type: tcp, port: {p2}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
  backends:
    b1: {{ address: 127.0.0.61, healthcheck: c1 }}
    b2: {{ address: 127.0.0.62, healthcheck: c2 }}
    b3: {{ address: 127.0.0.63 }}
  frontends:
    web:
      address: {VIP}
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: {{ b1: {{}}, b2: {{}}, b3: {{ weight: 20 }} }}
",
        p1 = ports[0],
        p2 = ports[1],
    )
}

/// The buckets per backend of a 1,024-slot Maglev table over b1..b3 (127.0.0.61..63).
fn maglev_table(weights: &[(&'static str, u8)]) -> BTreeMap<&'static str, u32> {
    let address =
        |name: &str| -> std::net::IpAddr { format!("127.0.0.6{}", &name[1..]).parse().unwrap() };
    let ases: Vec<_> = weights.iter().map(|(n, w)| (address(n), *w)).collect();
    let table = Table::build(1024, &ases).unwrap();
    weights
        .iter()
        .map(|(n, _)| (*n, table.buckets_of(address(n))))
        .collect()
}

/// A TCP listener that accepts and closes, until the task is aborted.
async fn listen(addr: &str) -> (tokio::task::JoinHandle<()>, u16) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    (task, port)
}

/// One sample: name, labels, value.
pub(crate) type Sample = (String, BTreeMap<String, String>, f64);

/// Parses OpenMetrics text strictly enough to catch a malformed line.
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end");
    parse_lines(text)
}

/// The samples of OpenMetrics or Prometheus text, each line checked.
fn parse_lines(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("#"));
            let kind = words.next().unwrap_or_default();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closed labels");
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("key=\"value\"");
                    labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
                }
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        out.push((name.to_owned(), labels, value));
    }
    out
}

/// The value of the sample named `name` whose labels include `labels`.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

/// The label names of every sample named `name`.
pub(crate) fn label_names(samples: &[Sample], name: &str) -> Vec<Vec<String>> {
    samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, l, _)| l.keys().cloned().collect())
        .collect()
}

/// The `Accept` header of Prometheus's scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET path` over plain HTTP/1.0 as Prometheus asks (OpenMetrics): the status line and the
/// body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    get_accepting(addr, path, Some(PROMETHEUS_ACCEPT)).await
}

/// `GET path` with `accept` as the `Accept` header (none when `None`).
async fn get_accepting(addr: SocketAddr, path: &str, accept: Option<&str>) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{accept}\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    (head.to_owned(), body.to_owned())
}

/// `promtool check metrics` on `text`: what it said and whether it passed; `None` (with a
/// notice) outside CI when promtool is missing, a failure under `CI=true`.
fn promtool(text: &str) -> Option<(String, bool)> {
    use std::io::Write as _;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("promtool is required under CI (apt-get install prometheus): {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED promtool check metrics: promtool not runnable here ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((said, out.status.success()))
}

/// `promtool check metrics` on OpenMetrics `text`.
fn promtool_check_openmetrics(text: &str) {
    let Some((said, _)) = promtool(text) else {
        return;
    };
    // promtool 2.x reads the Prometheus text format, where a counter's HELP is keyed by its
    // sample name; OpenMetrics keys it by the family name (`maglev_probe` for the samples
    // `maglev_probe_total`). That one complaint is expected for counters; anything else fails.
    let unexpected: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let family = l
                .strip_suffix(" no help text")
                .and_then(|name| name.strip_suffix("_total"));
            !family.is_some_and(|f| text.contains(&format!("# TYPE {f} counter\n")))
        })
        .collect();
    assert!(unexpected.is_empty(), "promtool check metrics: {said}");
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_every_family_and_follow_a_backend_going_down() {
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.sock");
    let stats = dir.path().join("stats.sock");
    let mut sim_config = SimConfig::new(&api);
    sim_config.stats_socket = Some(stats.clone());
    let sim = Simulator::start(sim_config).await.unwrap();

    let (b1, p1) = listen("127.0.0.61:0").await;
    let (_b2, p2) = listen("127.0.0.62:0").await;
    let config = Arc::new(Config::from_yaml_str("test.yaml", &config([p1, p2])).unwrap());
    let specs = maglevd::specs::backend_specs(&config).unwrap();
    let probes = ProbeRecorder::default();
    probes.set_specs(&specs);
    let checker = Checker::with_prober(
        maglevd::specs::checker_config(&config),
        MeteredProber::new(DefaultProber::default(), probes.clone()),
    );
    let transitions = checker.subscribe();
    let counts = TransitionCounts::default();
    tokio::spawn(counts.clone().follow(checker.subscribe()));
    checker.apply_config(specs).unwrap();

    let api_counters = ApiCounters::new();
    let mut options = SyncerOptions::new(&api);
    options.stats_socket = Some(stats);
    options.scrape_interval = Duration::from_millis(50);
    options.client = options.client.metrics(Arc::new(api_counters.clone()));
    let states = checker.clone();
    let syncer = LbSyncer::start(options, Arc::clone(&config), move || {
        states
            .snapshot()
            .into_iter()
            .map(|b| (b.name.to_string(), b.state))
            .collect()
    });
    tokio::spawn(maglevd::vpp::forward(transitions, syncer.clone()));

    let (_config_tx, config_rx) = tokio::sync::watch::channel(Arc::clone(&config));
    let grpc = GrpcRequests::new();
    grpc.record("maglev.v1.Maglev/GetFrontend", tonic::Code::NotFound);
    let metrics = Metrics::new(
        checker.clone(),
        config_rx,
        Some(syncer.clone()),
        api_counters,
        probes,
        counts,
    )
    .with_grpc_requests(grpc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(maglevd::metrics::serve(listener, metrics.clone(), async {
        let _ = stopped.await;
    }));

    // Every backend up, the VIP programmed, a counters scrape with the VIP in it.
    let vip_index = {
        let m = metrics.clone();
        wait_until("all up and the VIP scraped", || {
            let s = parse(&m.render().unwrap());
            ["b1", "b2", "b3"].iter().all(|b| {
                value(
                    &s,
                    "maglev_backend_state",
                    &[("backend", b), ("state", "up")],
                ) == Some(1.0)
            }) && value(&s, "vip_packets_total", &[("kind", "next")]).is_some()
                && value(
                    &s,
                    "maglev_frontend_pool_backend_weight",
                    &[("backend", "b3")],
                ) == Some(20.0)
        })
        .await;
        sim.with_lb(|lb| lb.vip_dump()[0].index)
    };
    assert!(sim.bump_vip_counter(vip_index, 1, 11));
    assert!(sim.bump_route_counter(VIP.parse().unwrap(), 32, 5, 700));
    {
        let m = metrics.clone();
        wait_until("the bumped VIP counters", || {
            let s = parse(&m.render().unwrap());
            value(&s, "vip_packets_total", &[("kind", "first")]) == Some(11.0)
                && value(&s, "vip_route_bytes_total", &[]) == Some(700.0)
        })
        .await;
    }

    let (head, body) = get(addr, "/metrics").await;
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let before = parse(&body);
    promtool_check_openmetrics(&body);
    // A client that does not ask for OpenMetrics (curl, promtool) gets the text format, which
    // promtool passes without a word, with the same metrics (the series may move in between).
    let (head, text) = get_accepting(addr, "/metrics", None).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    if let Some((said, passed)) = promtool(&text) {
        assert!(
            passed && said.trim().is_empty(),
            "promtool check metrics: {said}"
        );
    }
    let names = |samples: &[Sample]| -> BTreeSet<String> {
        samples.iter().map(|(n, _, _)| n.clone()).collect()
    };
    assert_eq!(names(&parse_lines(&text)), names(&before));
    let (head, body) = get(addr, "/healthz").await;
    assert!(head.contains(" 200 "), "{head}");
    assert_eq!(body, "ok\n");

    // Every family, with its labels.
    let want: &[(&str, &[&str])] = &[
        ("maglev_build_info", &["version"]),
        ("maglev_backend_state", &["backend", "state"]),
        ("maglev_backend_health", &["backend"]),
        ("maglev_backend_enabled", &["backend"]),
        (
            "maglev_frontend_pool_backend_weight",
            &["backend", "frontend", "pool"],
        ),
        (
            "maglev_frontend_pool_backend_buckets",
            &["backend", "frontend", "pool"],
        ),
        ("maglev_frontend_state", &["frontend", "state"]),
        ("maglev_frontend_active_pool", &["frontend", "pool"]),
        ("maglev_probe_total", &["backend", "code", "result", "type"]),
        (
            "maglev_probe_duration_seconds_bucket",
            &["backend", "le", "type"],
        ),
        ("maglev_probe_duration_seconds_count", &["backend", "type"]),
        (
            "maglev_backend_transitions_total",
            &["backend", "from", "to"],
        ),
        ("maglev_grpc_requests_total", &["code", "method"]),
        ("maglev_vpp_connected", &[]),
        ("maglev_vpp_uptime_seconds", &[]),
        ("maglev_vpp_connected_seconds", &[]),
        ("maglev_vpp_info", &["build_date", "pid", "version"]),
        ("maglev_vpp_api_total", &["direction", "msg", "result"]),
        ("maglev_vpp_lbsync_total", &["kind", "scope"]),
        ("maglev_vpp_lbsync_duration_seconds_count", &[]),
        ("maglev_vpp_lbsync_last_success_timestamp_seconds", &[]),
        ("vip_packets_total", &["frontend", "kind", "vip"]),
        ("vip_route_packets_total", &["frontend", "vip"]),
        ("vip_route_bytes_total", &["frontend", "vip"]),
    ];
    for (name, labels) in want {
        let found = label_names(&before, name);
        assert!(!found.is_empty(), "{name} is missing");
        assert!(
            found.iter().all(|l| l == labels),
            "{name} has labels {found:?}, want {labels:?}"
        );
    }
    assert_eq!(value(&before, "maglev_vpp_connected", &[]), Some(1.0));
    assert_eq!(
        value(
            &before,
            "maglev_grpc_requests_total",
            &[
                ("method", "maglev.v1.Maglev/GetFrontend"),
                ("code", "NOT_FOUND")
            ]
        ),
        Some(1.0)
    );
    // The bucket shares are VPP's Maglev table of the three ASes with their weights.
    let ases = [("b1", 100), ("b2", 100), ("b3", 20)];
    let table = maglev_table(&ases);
    for (backend, _) in ases {
        assert_eq!(
            value(
                &before,
                "maglev_frontend_pool_backend_buckets",
                &[
                    ("frontend", "web"),
                    ("pool", "primary"),
                    ("backend", backend)
                ]
            ),
            Some(f64::from(table[backend])),
            "{backend}"
        );
    }
    assert_eq!(table.values().sum::<u32>(), 1024);
    assert_eq!(
        value(
            &before,
            "maglev_vpp_lbsync_total",
            &[("scope", "all"), ("kind", "vip_added")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &before,
            "vip_packets_total",
            &[
                ("frontend", "web"),
                ("vip", "192.0.2.80/32 tcp:80"),
                ("kind", "first")
            ]
        ),
        Some(11.0)
    );
    assert_eq!(
        value(&before, "vip_route_packets_total", &[("frontend", "web")]),
        Some(5.0)
    );
    assert!(
        before
            .iter()
            .filter(|(n, l, _)| n == "maglev_vpp_lbsync_total"
                && l.get("kind").map(String::as_str) == Some("as_removed"))
            .all(|(_, _, v)| *v > 0.0),
        "zero kinds are left out"
    );
    assert!(
        value(
            &before,
            "maglev_vpp_api_total",
            &[
                ("msg", "control_ping"),
                ("direction", "send"),
                ("result", "success")
            ]
        )
        .is_some_and(|v| v >= 1.0)
    );
    let ok_before = value(
        &before,
        "maglev_probe_total",
        &[("backend", "b1"), ("result", "success")],
    )
    .expect("b1 probed");
    assert!(ok_before >= 1.0);

    // b1 goes down.
    b1.abort();
    let _ = b1.await;
    let m = metrics.clone();
    wait_until("b1 down in the metrics", || {
        let s = parse(&m.render().unwrap());
        value(
            &s,
            "maglev_backend_state",
            &[("backend", "b1"), ("state", "down")],
        ) == Some(1.0)
    })
    .await;
    let after = parse(&metrics.render().unwrap());
    assert_eq!(
        value(
            &after,
            "maglev_backend_state",
            &[("backend", "b1"), ("state", "up")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &after,
            "maglev_backend_transitions_total",
            &[("backend", "b1"), ("from", "up"), ("to", "down")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &after,
            "maglev_probe_total",
            &[("backend", "b1"), ("result", "failure")]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert_eq!(
        value(
            &after,
            "maglev_frontend_pool_backend_weight",
            &[("backend", "b1")]
        ),
        Some(0.0)
    );
    // b1's buckets went to the others, as VPP's table without it.
    let table = maglev_table(&[("b1", 0), ("b2", 100), ("b3", 20)]);
    for backend in ["b1", "b2", "b3"] {
        assert_eq!(
            value(
                &after,
                "maglev_frontend_pool_backend_buckets",
                &[("backend", backend)]
            ),
            Some(f64::from(table[backend])),
            "{backend}"
        );
    }
    assert_eq!(table["b1"], 0);

    let _ = stop.send(());
    let _ = server.await;
    syncer.shutdown().await;
    checker.shutdown().await;
    sim.shutdown();
}

#[test]
fn metrics_addr_parses_empty_as_off_and_port_only_as_every_address() {
    use maglevd::metrics::parse_addr;
    assert_eq!(parse_addr("").unwrap(), None);
    assert_eq!(
        parse_addr("127.0.0.1:9091").unwrap(),
        Some("127.0.0.1:9091".parse().unwrap())
    );
    assert_eq!(
        parse_addr(":9091").unwrap(),
        Some("0.0.0.0:9091".parse().unwrap())
    );
    assert!(parse_addr("nonsense").is_err());
    assert_eq!(
        maglevd::cli::DEFAULT_METRICS_ADDR,
        "127.0.0.1:9091",
        "localhost unless told otherwise"
    );
}

/// The `maglev_probe_total` and `maglev_probe_duration_seconds_count` of `backend`, summed
/// over their other labels; `None` when the backend has no series.
fn probes_of(samples: &[Sample], backend: &str) -> Option<(f64, f64)> {
    let sum = |name: &str| {
        let mut found = None;
        for (n, l, v) in samples {
            if n == name && l.get("backend").map(String::as_str) == Some(backend) {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    };
    match (
        sum("maglev_probe_total"),
        sum("maglev_probe_duration_seconds_count"),
    ) {
        (None, None) => None,
        (total, count) => Some((total.unwrap_or(0.0), count.unwrap_or(0.0))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_metrics_follow_backends_renamed_and_added_by_a_reload() {
    let mut daemon =
        crate::grpc::Daemon::start(&["--grpc-addr", "", "--metrics-addr", "127.0.0.1:0"]).await;
    let line = daemon.record("metrics-listening").await;
    let addr: SocketAddr = crate::grpc::field(&line, "addr").unwrap().parse().unwrap();
    let scrape = || async move { parse(&get(addr, "/metrics").await.1) };

    // b1 (127.0.0.61) is probed and counted under its name.
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let s = scrape().await;
        if probes_of(&s, "b1").is_some_and(|(total, count)| total >= 1.0 && count >= 1.0) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "b1 never probed:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(probes_of(&before, "b1-renamed"), None);
    assert_eq!(probes_of(&before, "b6"), None);

    // The same config with b1 renamed (same address, same check) and b6 added.
    let (_b6, p6) = listen("127.0.0.66:0").await;
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    assert_eq!(text.matches("b1: ").count(), 2, "{text}");
    let text = text
        .replace("b1: ", "b1-renamed: ")
        .replace(
            "\n  healthchecks:\n",
            &format!(
                "\n  healthchecks:\n    c6: {{ type: tcp, port: {p6}, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}\n"
            ),
        )
        .replace(
            "\n  backends:\n",
            "\n  backends:\n    b6: { address: 127.0.0.66, healthcheck: c6 }\n",
        )
        .replace("b3: { weight: 20 }", "b3: { weight: 20 }\n            b6: {}");
    std::fs::write(&daemon.config, text).unwrap();
    daemon.signal("-HUP");
    daemon.record("config-reload-done").await;

    // The probes of 127.0.0.61 are now counted under the new name, b6's under its own; the old
    // name's series are dropped (`ProbeRecorder::set_backends`) and, while the new name's
    // counter keeps moving, never come back.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first_renamed = None;
    loop {
        let s = scrape().await;
        assert_eq!(
            probes_of(&s, "b1"),
            None,
            "a probe counted under the old name after the reload"
        );
        let renamed = probes_of(&s, "b1-renamed");
        let added = probes_of(&s, "b6");
        if let (Some((total, count)), Some((added, _))) = (renamed, added) {
            assert_eq!(total, count, "one duration per probe");
            let first = *first_renamed.get_or_insert(total);
            // Five more probes of the renamed backend (100 ms apart): well past any probe in
            // flight at the reload.
            if total >= first + 5.0 && added >= 1.0 {
                assert_eq!(
                    value(
                        &s,
                        "maglev_probe_total",
                        &[
                            ("backend", "b1-renamed"),
                            ("type", "tcp"),
                            ("result", "success")
                        ]
                    )
                    .map(|v| v >= 1.0),
                    Some(true)
                );
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the new names never showed (b1-renamed {renamed:?}, b6 {added:?}):\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().await.success());
}

/// A prober whose probes pass when the test lets them through, one semaphore permit each.
struct Gated(Arc<tokio::sync::Semaphore>);

impl maglev_health::checker::Prober for Gated {
    fn probe(
        &self,
        _: &maglev_health::probe::ProbeSpec,
        _: std::net::IpAddr,
    ) -> impl Future<Output = maglev_health::result::ProbeResult> + Send {
        let gate = Arc::clone(&self.0);
        async move {
            gate.acquire().await.expect("open").forget();
            maglev_health::result::ProbeResult::new(
                maglev_health::result::ResultCode::L4Ok,
                "",
                Duration::from_millis(1),
            )
        }
    }
}

#[tokio::test]
async fn a_probe_in_flight_across_a_rename_is_not_counted_under_either_name() {
    use maglev_health::checker::{CheckerConfig, Prober as _};
    use maglev_health::probe::{ProbeKind, ProbeSpec};

    let spec = ProbeSpec::new(ProbeKind::Icmp, Duration::from_secs(1));
    let at: std::net::IpAddr = "127.0.0.61".parse().unwrap();
    let probes = ProbeRecorder::default();
    probes.set_backends([("old", at, &spec)]);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let prober = MeteredProber::new(Gated(Arc::clone(&gate)), probes.clone());
    let checker = Checker::new(CheckerConfig::default());
    let config = Arc::new(Config::from_yaml_str("test.yaml", &config([1, 2])).unwrap());
    let (_config_tx, config_rx) = tokio::sync::watch::channel(config);
    let metrics = Metrics::new(
        checker.clone(),
        config_rx,
        None,
        ApiCounters::new(),
        probes.clone(),
        TransitionCounts::default(),
    );
    let counted = |name: &str| probes_of(&parse(&metrics.render().unwrap()), name);

    gate.add_permits(1);
    prober.probe(&spec, at).await;
    assert_eq!(counted("old"), Some((1.0, 1.0)));

    // A probe named "old" when it starts; the backend is renamed before it ends.
    let in_flight = prober.probe(&spec, at);
    probes.set_backends([("new", at, &spec)]);
    gate.add_permits(1);
    in_flight.await;
    assert_eq!(counted("old"), None, "the old name's series came back");
    assert_eq!(
        counted("new"),
        None,
        "counted under a name it did not start with"
    );

    // Probes started after the rename count under the new name.
    gate.add_permits(1);
    prober.probe(&spec, at).await;
    assert_eq!(counted("new"), Some((1.0, 1.0)));
    checker.shutdown().await;
}
