//! One-shot maglevc against a real maglevd on its embedded VPP simulator with loopback
//! backends ([`crate::daemon`]): every command's text and JSON (snapshots with the volatile
//! parts redacted), the operator round trip as VPP ends up holding it, the dry run equal to
//! the sync that follows it, and the exit statuses, down to a daemon that has stopped.

use std::time::Duration;

use crate::daemon::Daemon;
use crate::support::run;

/// Every command that leaves the daemon's state as it is, by snapshot name.
const COMMANDS: &[(&str, &str)] = &[
    ("version", "show version"),
    ("frontends", "show frontends"),
    ("frontend", "show frontend web"),
    ("backends", "show backends"),
    ("backend", "show backend nginx0"),
    ("healthchecks", "show healthchecks"),
    ("healthcheck", "show healthcheck tcp"),
    ("vpp_info", "show vpp info"),
    ("vpp_lb_state", "show vpp lb state"),
    ("dry_run", "sync vpp lb state dry-run"),
    ("sync", "sync vpp lb state web"),
    ("preview_drain", "preview frontend web backend nginx0 drain"),
    (
        "preview_weight",
        "preview frontend web backend nginx1 weight 100",
    ),
    (
        "preview_remove",
        "preview frontend dns backend static0 remove",
    ),
    ("config_check", "config check"),
    ("config_reload", "config reload"),
];

/// JSON keys whose values change from run to run (times, durations, versions, build
/// identity, process ids, paths of temporary files).
const VOLATILE_KEYS: &[&str] = &[
    "at_unix_nanos",
    "boottime_ns",
    "connecttime_ns",
    "scraped_at_unix_nanos",
    "elapsed_ms",
    "duration_ms",
    "version",
    "client_version",
    "git_commit",
    "build_date",
    "build_directory",
    "pid",
    "api_socket",
    "path",
];

/// Text field labels whose values change from run to run.
const VOLATILE_FIELDS: &[&str] = &[
    "maglevc",
    "maglevd",
    "maglevd commit",
    "maglevd built",
    "version",
    "build date",
    "build directory",
    "pid",
    "boot time",
    "connected",
    "api socket",
    "scraped",
    "for",
];

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The JSON with every [`VOLATILE_KEYS`] value and the check port replaced.
fn redact_json(value: &mut serde_json::Value, port: u16) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if VOLATILE_KEYS.contains(&key.as_str()) {
                    *v = serde_json::Value::from("[redacted]");
                } else if key == "port" && *v == port {
                    *v = serde_json::Value::from("[port]");
                } else {
                    redact_json(v, port);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, port)),
        serde_json::Value::String(s) => *s = s.replace(&port.to_string(), "[port]"),
        _ => {}
    }
}

/// The text with volatile field values, ages, probe and sync durations, the config's path
/// and the check port replaced; when anything was, runs of spaces (whose length followed the redacted widths)
/// are made two.
fn redact_text(original: &str, daemon: &Daemon) -> String {
    let text = original.replace(&*daemon.config.to_string_lossy(), "[config]");
    let fields = regex::Regex::new(&format!(
        r"(?m)^(\s*(?:{}):\s+).*$",
        VOLATILE_FIELDS.join("|")
    ))
    .unwrap();
    let ages = regex::Regex::new(r"(?m)^(\s*)(now|\d+[dhms](\d+[hms])?)\b").unwrap();
    let age_cells = regex::Regex::new(r"  (now|\d+[dhms](\d+[hms])?)  ").unwrap();
    let millis = regex::Regex::new(r"\bin \d+ms\b").unwrap();
    let port = regex::Regex::new(&format!(r"\b{}\b", daemon.check_port)).unwrap();
    let spaces = regex::Regex::new(r"([^ ])  +").unwrap();
    let text = fields.replace_all(&text, "$1[redacted]");
    let text = ages.replace_all(&text, "$1[age]");
    let text = age_cells.replace_all(&text, "  [age]  ");
    let text = millis.replace_all(&text, "in [ms]");
    let text = port.replace_all(&text, "[port]");
    if text == original {
        // Nothing volatile: the alignment is deterministic and stays.
        return text.into_owned();
    }
    spaces.replace_all(&text, "$1  ").into_owned()
}

#[test]
fn every_command_prints_text_and_json_against_a_live_daemon() {
    let daemon = Daemon::start();
    for (name, line) in COMMANDS {
        let text = run(daemon.addr, &words(line));
        assert_eq!(text.code, 0, "{line}: {}", text.stderr);
        assert!(text.stderr.is_empty(), "{line}: {}", text.stderr);
        insta::assert_snapshot!(
            format!("live_text_{name}"),
            redact_text(&text.stdout, &daemon),
            line
        );

        let mut doc = daemon.json(line);
        assert!(doc.is_object(), "{line}");
        redact_json(&mut doc, daemon.check_port);
        insta::assert_snapshot!(
            format!("live_json_{name}"),
            serde_json::to_string_pretty(&doc).unwrap(),
            line
        );
    }
}

/// `backend`'s entry in `show frontend <frontend> --json`.
fn member(daemon: &Daemon, frontend: &str, backend: &str) -> serde_json::Value {
    let doc = daemon.json(&format!("show frontend {frontend}"));
    doc["pools"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["backends"].as_array().unwrap().clone())
        .find(|b| b["name"] == backend)
        .unwrap_or_else(|| panic!("no {backend} in {doc}"))
}

/// The weight VPP holds for `backend` in the VIP of `frontend`, as `show vpp lb state`
/// reports it.
fn vpp_weight(daemon: &Daemon, frontend: &str, backend: &str) -> Option<u64> {
    let doc = daemon.json("show vpp lb state");
    doc["vips"]
        .as_array()?
        .iter()
        .find(|v| v["frontend"] == frontend)?["ases"]
        .as_array()?
        .iter()
        .find(|a| a["backend"] == backend)?["weight"]
        .as_u64()
}

#[test]
fn operator_actions_and_weights_round_trip_through_the_daemon_into_vpp() {
    let daemon = Daemon::start();
    assert_eq!(member(&daemon, "web", "nginx0")["state"], "up");
    assert_eq!(vpp_weight(&daemon, "web", "nginx0"), Some(100));

    // (command, state in show frontend, effective weight, weight VPP ends up holding)
    let steps: &[(&str, &str, u64, u64)] = &[
        ("set backend nginx0 pause", "paused", 0, 0),
        ("set backend nginx0 resume", "up", 100, 100),
        ("set backend nginx0 disable", "disabled", 0, 0),
        ("set backend nginx0 enable", "up", 100, 100),
    ];
    for &(line, state, effective, in_vpp) in steps {
        let out = run(daemon.addr, &words(line));
        assert_eq!(out.code, 0, "{line}: {}", out.stderr);
        // An enabled backend starts over from unknown: wait for its check to bring it up.
        daemon.wait_for(&format!("{line}: state {state}"), |d| {
            member(d, "web", "nginx0")["state"] == state
        });
        assert_eq!(
            member(&daemon, "web", "nginx0")["effective_weight"],
            effective,
            "{line}"
        );
        daemon.wait_for(&format!("{line}: VPP weight {in_vpp}"), |d| {
            vpp_weight(d, "web", "nginx0") == Some(in_vpp)
        });
        if state == "disabled" {
            let text = run(daemon.addr, &words("show frontend web")).stdout;
            assert!(text.contains("nginx0 [disabled]"), "{text}");
        }
    }

    let out = run(
        daemon.addr,
        &words("set frontend web pool primary backend nginx1 weight 10"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = member(&daemon, "web", "nginx1");
    assert_eq!(m["weight"], 50);
    assert_eq!(m["weight_override"], 10);
    assert_eq!(m["effective_weight"], 10);
    daemon.wait_for("VPP weight 10 for nginx1", |d| {
        vpp_weight(d, "web", "nginx1") == Some(10)
    });
    let text = run(daemon.addr, &words("show frontend web")).stdout;
    let row = text.lines().find(|l| l.contains("nginx1")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..6],
        ["nginx1", "127.0.0.72", "up", "50", "10", "10"],
        "{row}"
    );
    // The buckets follow the new weights: 100 to 10 of 1024.
    let text = run(daemon.addr, &words("show vpp lb state")).stdout;
    let row = text.lines().find(|l| l.contains("nginx1")).unwrap();
    assert!(row.contains("  10  "), "{row}");
}

/// Sets the weight VPP holds for `address` in the VIP `prefix` tcp/`port`, behind maglevd's
/// back.
async fn drift(
    client: &vpp_binapi::client::Client,
    prefix: &str,
    proto: u8,
    port: u16,
    address: &str,
    weight: u8,
) {
    use vpp_binapi::api::lb::LbAsSetWeight;
    let pfx: ipnet::IpNet = prefix.parse().unwrap();
    let address: std::net::IpAddr = address.parse().unwrap();
    let reply = client
        .request(&LbAsSetWeight {
            pfx: pfx.into(),
            protocol: proto,
            port,
            as_address: address.into(),
            weight,
            is_flush: false,
        })
        .await
        .expect("lb_as_set_weight");
    assert_eq!(reply.retval, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_prints_exactly_what_the_next_sync_sends() {
    let daemon = tokio::task::spawn_blocking(Daemon::start).await.unwrap();
    // Another VPP client changes two weights: maglevd notices only at its next sync (its
    // periodic sync is an hour away).
    let client = vpp_binapi::client::Client::connect(
        &daemon.vpp_socket,
        vpp_binapi::client::ClientOptions::default().timeout(Duration::from_secs(5)),
    )
    .await
    .expect("connects to the simulator");
    drift(&client, "192.0.2.80/32", 6, 80, "127.0.0.72", 7).await;
    drift(&client, "192.0.2.53/32", 17, 53, "127.0.0.74", 99).await;
    drop(client);

    let daemon = std::sync::Arc::new(daemon);
    let d = std::sync::Arc::clone(&daemon);
    tokio::task::spawn_blocking(move || {
        let plan = d.json("sync vpp lb state dry-run");
        let ops = plan["ops"].as_array().unwrap().clone();
        let kinds: Vec<_> = ops
            .iter()
            .map(|o| (o["kind"].clone(), o["backend"].clone(), o["weight"].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("as-set-weight".into(), "static0".into(), 10.into()),
                ("as-set-weight".into(), "nginx1".into(), 50.into()),
            ],
            "{plan}"
        );
        // The text dry run lists the same operations, one a line.
        let text = run(d.addr, &words("sync vpp lb state dry-run")).stdout;
        assert_eq!(
            text.lines().filter(|l| l.contains("as-set-weight")).count(),
            2,
            "{text}"
        );

        let sync = d.json("sync vpp lb state");
        assert_eq!(
            sync["ops"], plan["ops"],
            "the sync sent what the dry run printed"
        );
        assert_eq!(sync["summary"]["ok"], true);
        assert_eq!(sync["summary"]["weights_changed"], 2);
        // Nothing is left to do.
        let after = d.json("sync vpp lb state dry-run");
        assert_eq!(after["ops"], serde_json::json!([]), "{after}");
    })
    .await
    .unwrap();
}

#[test]
fn lb_counters_print_or_say_they_are_not_there_yet() {
    // This maglevd scrapes no counters yet (its stats socket is not read): the reply is a
    // server error that says so; once it does, the counters print like any other reply.
    let daemon = Daemon::start();
    let out = run(daemon.addr, &words("show vpp lb counters"));
    match out.code {
        0 => {
            assert!(out.stdout.starts_with("scraped: "), "{}", out.stdout);
            assert!(out.stdout.contains("192.0.2.80/32"), "{}", out.stdout);
        }
        1 => {
            assert_eq!(out.stderr, "error: lb counters not available yet\n");
            assert!(out.stdout.is_empty(), "{}", out.stdout);
        }
        code => panic!("exit {code}: {}", out.stderr),
    }
}

#[test]
fn exit_statuses_against_a_live_daemon_and_after_it_stops() {
    let mut daemon = Daemon::start();
    let addr = daemon.addr;
    let out = run(addr, &words("show frontends"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // 1: the server refuses.
    let out = run(addr, &words("show frontend nope"));
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    assert!(!out.stderr.contains("rpc error"), "{}", out.stderr);
    let out = run(addr, &words("sync vpp lb state nope"));
    assert_eq!(out.code, 1, "{}", out.stderr);
    run(addr, &words("set backend dead0 disable"));
    let out = run(addr, &words("set backend dead0 pause"));
    assert_eq!(out.code, 1, "{}", out.stderr);
    // 2: a usage error.
    let out = run(addr, &words("set backend dead0"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run(addr, &words("set backend dead0 jump"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    // 3: the daemon is gone.
    daemon.kill();
    let out = run(addr, &words("show frontends"));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot connect to maglevd at {addr}: ")),
        "{}",
        out.stderr
    );
}
