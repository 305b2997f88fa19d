//! One-shot maglevc against the fake server: every command's text and JSON, the operator
//! round trip, exit statuses, colour, and a server that is down.

use std::net::TcpListener;

use crate::fake;
use crate::support::{maglevc, redact, run, run_with};

/// Every read-only command, by snapshot name.
const SHOWS: &[(&str, &str)] = &[
    ("version", "show version"),
    ("frontends", "show frontends"),
    ("frontend", "show frontend web"),
    ("backends", "show backends"),
    ("backend", "show backend dns0"),
    ("healthchecks", "show healthchecks"),
    ("healthcheck", "show healthcheck http"),
    ("vpp_info", "show vpp info"),
    ("vpp_lb_state", "show vpp lb state"),
    ("vpp_lb_counters", "show vpp lb counters"),
    ("sync", "sync vpp lb state web"),
    ("dry_run", "sync vpp lb state dry-run"),
    ("preview", "preview frontend web backend nginx0 drain"),
    ("config_check", "config check"),
];

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn every_command_prints_text_and_json() {
    let addr = fake::start();
    for (name, line) in SHOWS {
        let text = run(addr, &words(line));
        assert_eq!(text.code, 0, "{line}: {}", text.stderr);
        assert!(text.stderr.is_empty(), "{line}: {}", text.stderr);
        insta::assert_snapshot!(format!("text_{name}"), redact(&text.stdout), line);

        let mut args = vec!["--json"];
        args.extend(words(line));
        let json = run(addr, &args);
        assert_eq!(json.code, 0, "{line} --json: {}", json.stderr);
        let doc: serde_json::Value = serde_json::from_str(&json.stdout)
            .unwrap_or_else(|e| panic!("{line} --json is not JSON: {e}\n{}", json.stdout));
        assert!(doc.is_object(), "{line}");
        insta::assert_snapshot!(format!("json_{name}"), redact(&json.stdout), line);
    }
}

#[test]
fn prefixes_give_the_same_output_as_the_full_words() {
    let addr = fake::start();
    let full = run(addr, &words("show backends nginx0"));
    let short = run(addr, &words("sh ba nginx0"));
    assert_eq!(short.code, 0, "{}", short.stderr);
    assert_eq!(redact(&short.stdout), redact(&full.stdout));
}

/// The effective weight and state of `backend` in `show frontend web --json`.
fn member(addr: std::net::SocketAddr, backend: &str) -> serde_json::Value {
    let out = run(addr, &["--json", "show", "frontend", "web"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    doc["pools"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["backends"].as_array().unwrap().clone())
        .find(|b| b["name"] == backend)
        .unwrap()
}

#[test]
fn operator_actions_and_weights_round_trip_through_show_frontend() {
    let addr = fake::start();
    assert_eq!(member(addr, "nginx0")["state"], "up");
    assert_eq!(member(addr, "nginx0")["effective_weight"], 100);

    let steps: &[(&str, &str, u64)] = &[
        ("set backend nginx0 pause", "paused", 0),
        ("set backend nginx0 resume", "up", 100),
        ("set backend nginx0 disable", "disabled", 0),
        ("set backend nginx0 enable", "up", 100),
    ];
    for (line, state, weight) in steps {
        let out = run(addr, &words(line));
        assert_eq!(out.code, 0, "{line}: {}", out.stderr);
        assert!(out.stdout.contains(state), "{line}: {}", out.stdout);
        let m = member(addr, "nginx0");
        assert_eq!(m["state"], *state, "{line}");
        assert_eq!(m["effective_weight"], *weight, "{line}");
    }

    // A disabled backend shows its marker in the text.
    run(addr, &words("set backend nginx1 disable"));
    let text = run(addr, &words("show frontend web")).stdout;
    assert!(text.contains("nginx1 [disabled]"), "{text}");
    run(addr, &words("set backend nginx1 enable"));

    let out = run(
        addr,
        &words("set frontend web pool primary backend nginx1 weight 10"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = member(addr, "nginx1");
    assert_eq!(m["weight"], 50);
    assert_eq!(m["weight_override"], 10);
    assert_eq!(m["effective_weight"], 10);
    // The text shows configured, override and effective weight side by side.
    let text = run(addr, &words("show frontend web")).stdout;
    let row = text.lines().find(|l| l.contains("nginx1")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..6],
        ["nginx1", "10.0.0.2", "up", "50", "10", "10"],
        "{row}"
    );
}

#[test]
fn exit_statuses_and_errors_are_the_documented_ones() {
    let addr = fake::start();
    // 1: a server error, its message without any gRPC prefix.
    let out = run(addr, &words("show frontend nope"));
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "error: frontend \"nope\" not found\n");
    assert!(out.stdout.is_empty());
    run(addr, &words("set backend dns0 disable"));
    let out = run(addr, &words("set backend dns0 pause"));
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: backend \"dns0\" is disabled: enable it first\n"
    );
    // 1: a reply that reports a failure: the reply is printed, then the status.
    let out = run(addr, &words("config reload"));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("unknown backend \"nginx9\""),
        "{}",
        out.stdout
    );
    // 2: a usage error, before any connection.
    let out = run(addr, &words("show bogus"));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: unknown word \"bogus\" after \"show\"; expected version, frontends, backends, healthchecks, vpp\n"
    );
    let out = run(addr, &words("s"));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: ambiguous word \"s\" at the start: could be show, set, sync\n"
    );
    let out = run(
        addr,
        &words("set frontend web pool primary backend nginx0 weight 101"),
    );
    assert_eq!(out.code, 2);
    // 2: a bad option (clap).
    let out = run(addr, &["--color", "sometimes", "show", "version"]);
    assert_eq!(out.code, 2);
}

#[test]
fn a_server_that_is_down_exits_3() {
    // A port that was just free: nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("127.0.0.1:{port}");
    let out = run_with(maglevc().args(["--server", &server, "show", "frontends"]));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot connect to maglevd at {server}: ")),
        "{}",
        out.stderr
    );
    // The environment variable names the server too, and a flag wins over it.
    let out = run_with(
        maglevc()
            .env("MAGLEV_SERVER", &server)
            .args(["show", "version"]),
    );
    assert_eq!(out.code, 3);
    let addr = fake::start();
    let out = run_with(maglevc().env("MAGLEV_SERVER", &server).args([
        "--server",
        &addr.to_string(),
        "show",
        "version",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // help needs no server.
    let out = run_with(maglevc().args(["--server", &server, "help"]));
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("watch events [num <n>]"),
        "{}",
        out.stdout
    );
    // A malformed address is a connection failure too, named in the message.
    let out = run_with(maglevc().args(["--server", "ftp://x:1", "show", "version"]));
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("unsupported scheme"), "{}", out.stderr);
}

#[test]
fn watch_events_stops_after_n_events() {
    let addr = fake::start();
    let out = run(addr, &words("watch events num 2"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].ends_with("backend dns0 down -> down - (current)"),
        "{}",
        lines[0]
    );
    let out = run(addr, &words("--json watch events num 1 backend nginx1"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(doc["type"], "backend");
    assert_eq!(doc["backend"], "nginx1");
    assert_eq!(doc["replay"], true);
    let out = run(addr, &words("watch events log level info num 5"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("log info vpp-lbsync-done ops=0"),
        "{}",
        out.stdout
    );
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    let addr = fake::start();
    let piped = run(addr, &words("show frontends"));
    assert!(!piped.stdout.contains('\x1b'), "not a terminal: no colour");
    let always = run(addr, &["--color", "always", "show", "frontends"]);
    assert!(
        always.stdout.contains("\x1b[32mup\x1b[0m"),
        "{}",
        always.stdout
    );
    let no_color = run_with(maglevc().env("NO_COLOR", "1").args([
        "--server",
        &addr.to_string(),
        "--color",
        "always",
        "show",
        "frontends",
    ]));
    assert!(!no_color.stdout.contains('\x1b'));
    assert_eq!(no_color.stdout, piped.stdout);
    // Errors are red with colour, plain without.
    let err = run(addr, &["--color", "always", "show", "frontend", "nope"]);
    assert_eq!(
        err.stderr,
        "\x1b[31merror: frontend \"nope\" not found\x1b[0m\n"
    );
}
