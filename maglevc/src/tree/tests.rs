//! Table tests of the command tree: parsing, prefixes, ambiguity, errors, completion at every
//! position, `?` help and the `help` synopsis.

use super::*;

/// Fixed names: frontends `web` and `dns`, pools `primary`/`backup` of `web`, backends.
struct Fixed;

impl NameSource for Fixed {
    fn names(&self, kind: NameKind, context: &Args) -> Vec<String> {
        let v: &[&str] = match kind {
            NameKind::Frontend => &["web", "dns"],
            NameKind::Pool => match context.frontend.as_deref() {
                Some("web") => &["primary", "backup"],
                Some("dns") => &["main"],
                _ => &[],
            },
            NameKind::Backend => match context.pool.as_deref() {
                Some("primary") => &["nginx0", "nginx1"],
                Some("backup") => &["nginx2"],
                _ => &["nginx0", "nginx1", "nginx2", "dns0"],
            },
            NameKind::HealthCheck => &["http-check", "icmp"],
        };
        v.iter().map(|s| (*s).to_owned()).collect()
    }
}

fn cmd(action: Action, f: impl FnOnce(&mut Args)) -> Command {
    let mut args = Args::default();
    f(&mut args);
    Command { action, args }
}

#[test]
fn every_command_parses_with_its_values() {
    use Action as A;
    let s = |v: &str| Some(v.to_owned());
    let cases: Vec<(&str, Command)> = vec![
        ("show version", cmd(A::ShowVersion, |_| {})),
        ("show frontends", cmd(A::ShowFrontends, |_| {})),
        (
            "show frontend web",
            cmd(A::ShowFrontends, |a| a.frontend = s("web")),
        ),
        ("show backends", cmd(A::ShowBackends, |_| {})),
        (
            "show backends nginx0",
            cmd(A::ShowBackends, |a| a.backend = s("nginx0")),
        ),
        (
            "show backend nginx0",
            cmd(A::ShowBackends, |a| a.backend = s("nginx0")),
        ),
        ("show healthchecks", cmd(A::ShowHealthChecks, |_| {})),
        (
            "show healthcheck icmp",
            cmd(A::ShowHealthChecks, |a| a.healthcheck = s("icmp")),
        ),
        ("show vpp info", cmd(A::ShowVppInfo, |_| {})),
        ("show vpp lb state", cmd(A::ShowVppLbState, |_| {})),
        ("show vpp lb counters", cmd(A::ShowVppLbCounters, |_| {})),
        ("sync vpp lb state", cmd(A::SyncVppLbState, |_| {})),
        (
            "sync vpp lb state web",
            cmd(A::SyncVppLbState, |a| a.frontend = s("web")),
        ),
        (
            "sync vpp lb state dry-run",
            cmd(A::SyncVppLbState, |a| a.dry_run = true),
        ),
        (
            "sync vpp lb state web dry-run",
            cmd(A::SyncVppLbState, |a| {
                a.frontend = s("web");
                a.dry_run = true;
            }),
        ),
        (
            "preview frontend web backend nginx0 drain",
            cmd(A::Preview(PreviewKind::Drain), |a| {
                a.frontend = s("web");
                a.backend = s("nginx0");
            }),
        ),
        (
            "preview frontend web backend nginx0 weight 30",
            cmd(A::Preview(PreviewKind::Weight), |a| {
                a.frontend = s("web");
                a.backend = s("nginx0");
                a.weight = Some(30);
            }),
        ),
        (
            "preview frontend web backend nginx0 remove",
            cmd(A::Preview(PreviewKind::Remove), |a| {
                a.frontend = s("web");
                a.backend = s("nginx0");
            }),
        ),
        (
            "set backend b pause",
            cmd(A::SetBackend(BackendOp::Pause), |a| a.backend = s("b")),
        ),
        (
            "set backend b resume",
            cmd(A::SetBackend(BackendOp::Resume), |a| a.backend = s("b")),
        ),
        (
            "set backend b enable",
            cmd(A::SetBackend(BackendOp::Enable), |a| a.backend = s("b")),
        ),
        (
            "set backend b disable",
            cmd(A::SetBackend(BackendOp::Disable), |a| a.backend = s("b")),
        ),
        (
            "set frontend web pool primary backend nginx0 weight 0",
            cmd(A::SetWeight, |a| {
                a.frontend = s("web");
                a.pool = s("primary");
                a.backend = s("nginx0");
                a.weight = Some(0);
            }),
        ),
        ("config check", cmd(A::ConfigCheck, |_| {})),
        ("config reload", cmd(A::ConfigReload, |_| {})),
        ("watch events", cmd(A::WatchEvents, |_| {})),
        (
            "watch events num 3",
            cmd(A::WatchEvents, |a| a.count = Some(3)),
        ),
        ("watch events log", cmd(A::WatchEvents, |a| a.log = true)),
        (
            "watch events log level warn",
            cmd(A::WatchEvents, |a| {
                a.log = true;
                a.level = Some(3);
            }),
        ),
        (
            "watch events frontend web log level debug num 10 backend nginx0",
            cmd(A::WatchEvents, |a| {
                a.frontend = s("web");
                a.log = true;
                a.level = Some(1);
                a.count = Some(10);
                a.backend = s("nginx0");
            }),
        ),
        ("help", cmd(A::Help, |_| {})),
        ("quit", cmd(A::Quit, |_| {})),
        ("exit", cmd(A::Quit, |_| {})),
    ];
    for (line, want) in cases {
        assert_eq!(parse(line), Ok(want), "{line}");
    }
}

#[test]
fn unique_prefixes_expand_and_exact_matches_win() {
    use Action as A;
    let cases: &[(&str, &str)] = &[
        ("sh ba n", "show backends n"),
        ("sh ba", "show backends"),
        ("sh fr web", "show frontends web"),
        ("sh h", "show healthchecks"),
        ("sh ver", "show version"),
        ("sh vp i", "show vpp info"),
        ("sh vp l s", "show vpp lb state"),
        ("sh vp l c", "show vpp lb counters"),
        ("sy v l s d", "sync vpp lb state dry-run"),
        ("se b x p", "set backend x pause"),
        ("se b x d", "set backend x disable"),
        (
            "se f web p primary b nginx0 w 5",
            "set frontend web pool primary backend nginx0 weight 5",
        ),
        (
            "pr f web b nginx0 r",
            "preview frontend web backend nginx0 remove",
        ),
        ("c ch", "config check"),
        ("c r", "config reload"),
        ("w e n 2 l le e", "watch events num 2 log level error"),
        ("q", "quit"),
        ("e", "exit"),
        // `backend` is both a keyword of the options and a value elsewhere: exact wins.
        (
            "w e backend b frontend f",
            "watch events backend b frontend f",
        ),
    ];
    for (short, long) in cases {
        assert_eq!(parse(short), parse(long), "{short} = {long}");
        assert!(parse(short).is_ok(), "{short}: {:?}", parse(short));
    }
    assert_eq!(parse("sh ba n").unwrap().action, A::ShowBackends);
}

#[test]
fn ambiguous_prefixes_list_their_candidates() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("s", "", &["show", "set", "sync"]),
        ("show v", "show", &["version", "vpp"]),
        ("config", "", &[]),
        ("set backend b e", "", &[]),
        ("watch events log level warn log", "", &[]),
    ];
    for (line, after, candidates) in cases {
        match parse(line) {
            Err(ParseError::Ambiguous {
                after: a,
                candidates: c,
                ..
            }) => {
                assert_eq!(&a, after, "{line}");
                assert_eq!(&c, candidates, "{line}");
            }
            other => assert!(
                candidates.is_empty(),
                "{line}: expected ambiguity, got {other:?}"
            ),
        }
    }
}

#[test]
fn errors_say_where_the_walk_stopped() {
    let cases: &[(&str, &str)] = &[
        ("", "empty command (try \"help\")"),
        (
            "bogus",
            "unknown word \"bogus\" at the start; expected show, set, sync, preview, config, watch, help, quit, exit",
        ),
        (
            "show bogus",
            "unknown word \"bogus\" after \"show\"; expected version, frontends, backends, healthchecks, vpp",
        ),
        (
            "sh vpp lb st x",
            "unknown word \"x\" after \"sh vpp lb st\": the command ends there",
        ),
        (
            "s",
            "ambiguous word \"s\" at the start: could be show, set, sync",
        ),
        (
            "set frontend web pool p backend b weight 101",
            "bad value \"101\" after \"set frontend web pool p backend b weight\": a weight is a whole number from 0 to 100",
        ),
        (
            "set frontend web pool p backend b weight -1",
            "bad value \"-1\" after \"set frontend web pool p backend b weight\": a weight is a whole number from 0 to 100",
        ),
        (
            "watch events num 0",
            "bad value \"0\" after \"watch events num\": a count is a whole number from 1 to 1000000",
        ),
        (
            "watch events log level loud",
            "bad value \"loud\" after \"watch events log level\": a level is one of trace, debug, info, warn, error",
        ),
        (
            "watch events num 3 num 4",
            "unknown word \"num\" after \"watch events num 3\"; expected log, backend, frontend",
        ),
        (
            "show",
            "incomplete command \"show\"; expected version, frontends, backends, healthchecks, vpp",
        ),
        (
            "set backend b",
            "incomplete command \"set backend b\"; expected pause, resume, enable, disable",
        ),
        (
            "preview frontend web",
            "incomplete command \"preview frontend web\"; expected backend",
        ),
        (
            "watch events num",
            "incomplete command \"watch events num\"; expected <n>",
        ),
    ];
    for (line, message) in cases {
        let err = parse(line).expect_err(line);
        let text = err.to_string();
        assert_eq!(&text, message, "{line}");
    }
}

#[test]
fn completion_offers_keywords_and_live_names_at_every_position() {
    let cases: &[(&str, &[&str])] = &[
        (
            "",
            &[
                "config", "exit", "help", "preview", "quit", "set", "show", "sync", "watch",
            ],
        ),
        ("s", &["set", "show", "sync"]),
        ("sh", &["show"]),
        (
            "show ",
            &[
                "backend",
                "backends",
                "frontend",
                "frontends",
                "healthcheck",
                "healthchecks",
                "version",
                "vpp",
            ],
        ),
        ("show ba", &["backend", "backends"]),
        ("sh ba ", &["dns0", "nginx0", "nginx1", "nginx2"]),
        ("sh ba ng", &["nginx0", "nginx1", "nginx2"]),
        ("show frontends ", &["dns", "web"]),
        ("show healthchecks i", &["icmp"]),
        ("show vpp ", &["info", "lb"]),
        ("show vpp lb ", &["counters", "state"]),
        ("sync vpp lb state ", &["dns", "dry-run", "web"]),
        ("sync vpp lb state web ", &["dry-run"]),
        ("set ", &["backend", "frontend"]),
        (
            "set backend nginx0 ",
            &["disable", "enable", "pause", "resume"],
        ),
        ("set frontend web ", &["pool"]),
        ("set frontend web pool ", &["backup", "primary"]),
        ("set frontend dns pool ", &["main"]),
        ("set frontend web pool backup backend ", &["nginx2"]),
        ("set frontend web pool primary backend nginx0 ", &["weight"]),
        ("set frontend web pool primary backend nginx0 weight ", &[]),
        (
            "preview frontend web backend nginx1 ",
            &["drain", "remove", "weight"],
        ),
        ("config ", &["check", "reload"]),
        ("watch events ", &["backend", "frontend", "log", "num"]),
        ("watch events num 5 ", &["backend", "frontend", "log"]),
        (
            "watch events log ",
            &["backend", "frontend", "level", "num"],
        ),
        (
            "watch events log level ",
            &["debug", "error", "info", "trace", "warn"],
        ),
        ("watch events log level w", &["warn"]),
        (
            "watch events log level warn backend ",
            &["dns0", "nginx0", "nginx1", "nginx2"],
        ),
        ("bogus ", &[]),
        ("show version ", &[]),
    ];
    for (line, want) in cases {
        assert_eq!(complete(line, &Fixed), *want, "{line:?}");
    }
    assert_eq!(complete("sh ba ", &NoNames), Vec::<String>::new());
}

#[test]
fn question_mark_lists_the_choices_at_the_cursor() {
    let show = |line: &str| format_help(&help_at(line).unwrap());
    insta::assert_snapshot!("help_at_start", show(""));
    insta::assert_snapshot!("help_after_show", show("show "));
    insta::assert_snapshot!("help_partial", show("sh v"));
    insta::assert_snapshot!("help_optional_name", show("sh ba "));
    insta::assert_snapshot!("help_sync_state", show("sync vpp lb state "));
    insta::assert_snapshot!(
        "help_weight",
        show("set frontend web pool p backend b weight ")
    );
    insta::assert_snapshot!("help_watch_options", show("watch events num 3 "));
    assert_eq!(
        help_at("show bogus ").unwrap_err().to_string(),
        "unknown word \"bogus\" after \"show\"; expected version, frontends, backends, healthchecks, vpp"
    );
}

#[test]
fn help_lists_every_action_of_the_tree() {
    let text = help_text();
    insta::assert_snapshot!("help", text);
    // Every synopsis line parses (with its placeholders filled in) to a command.
    for (syn, _) in synopsis() {
        let line: Vec<&str> = syn
            .split_whitespace()
            .take_while(|w| !w.starts_with('['))
            .map(|w| match w {
                "<0-100>" | "<n>" => "7",
                w if w.starts_with('<') => "x",
                w => w.split('|').next().unwrap_or(w),
            })
            .collect();
        assert!(parse(&line.join(" ")).is_ok(), "{syn}");
    }
}
