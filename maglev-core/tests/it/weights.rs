//! Weights: the state → (weight, flush) table, the active pool, frontend state and failover.

use std::collections::BTreeMap;
use std::net::IpAddr;

use BackendState::{Disabled, Down, Paused, Removed, Unknown, Up};
use maglev_core::config::Config;
use maglev_core::weights::{
    AsWeight, BackendState, FrontendState, WeightOverrides, active_pool_index, backend_weight,
    cmp_numeric, effective_weights, frontend_state, sort_numeric, transition_flushes,
};

#[test]
fn backend_weight_truth_table() {
    // (state, pool index, active pool, pool weight, flush-on-down) -> (weight, flush)
    let cases: [(BackendState, usize, usize, u8, bool, u8, bool); 18] = [
        (Up, 0, 0, 100, true, 100, false),     // up in the active pool
        (Up, 0, 0, 50, true, 50, false),       // its configured weight
        (Up, 0, 0, 0, true, 0, false),         // configured 0 stays 0
        (Up, 1, 0, 100, true, 0, false),       // standby pool: drained, no flush
        (Up, 1, 1, 100, true, 100, false),     // promoted fallback pool
        (Up, 0, 1, 100, true, 0, false),       // a pool that is not active
        (Up, 0, 0, 250, true, 100, false),     // clamped to 100
        (Unknown, 0, 0, 100, true, 0, false),  // unknown: 0, never flush
        (Unknown, 1, 0, 100, false, 0, false), //
        (Down, 0, 0, 100, true, 0, true),      // down flushes with flush-on-down
        (Down, 0, 0, 100, false, 0, false),    // and drains without
        (Down, 1, 0, 100, true, 0, true),      // in a standby pool as well
        (Paused, 0, 0, 100, true, 0, false),   // paused: drain, never flush
        (Paused, 1, 1, 100, false, 0, false),  //
        (Disabled, 0, 0, 100, false, 0, true), // disabled always flushes
        (Disabled, 1, 0, 100, true, 0, true),  //
        (Removed, 0, 0, 100, false, 0, true),  // removed: the AS goes, flushed
        (Removed, 1, 0, 100, true, 0, true),   //
    ];
    for (state, pool, active, cfg, fod, weight, flush) in cases {
        assert_eq!(
            backend_weight(state, pool, active, cfg, fod),
            AsWeight { weight, flush },
            "{state} pool {pool} active {active} weight {cfg} flush-on-down {fod}"
        );
    }
}

#[test]
fn active_pool_index_cases() {
    let cases: [(&[&[BackendState]], usize); 10] = [
        (&[&[Up, Down], &[Up]], 0),                 // pool 0 has an up backend
        (&[&[Down, Down], &[Up]], 1),               // pool 0 all down
        (&[&[Disabled, Disabled], &[Down, Up]], 1), // pool 0 all disabled
        (&[&[Paused], &[Up]], 1),                   // pool 0 all paused
        (&[&[Unknown, Unknown], &[Up]], 1),         // pool 0 all unknown
        (&[&[Down], &[Paused], &[Unknown]], 0),     // nothing up anywhere
        (&[&[Down], &[Disabled], &[Up, Up]], 2),    // three tiers
        (&[&[Down], &[Up], &[Up]], 1),              // the first up pool wins
        (&[], 0),                                   // no pools
        (&[&[Removed], &[Removed, Up]], 1),         // removed counts as not up
    ];
    for (pools, expected) in cases {
        let got = active_pool_index(pools.iter().map(|p| p.iter().copied()));
        assert_eq!(got, expected, "{pools:?}");
    }
}

#[test]
fn frontend_state_rules() {
    assert_eq!(frontend_state([]), FrontendState::Unknown);
    assert_eq!(
        frontend_state([(Unknown, 0), (Unknown, 0)]),
        FrontendState::Unknown
    );
    assert_eq!(frontend_state([(Unknown, 0), (Up, 10)]), FrontendState::Up);
    assert_eq!(
        frontend_state([(Unknown, 0), (Down, 0)]),
        FrontendState::Down
    );
    // Up but only in a standby pool or with weight 0: nobody carries traffic.
    assert_eq!(frontend_state([(Up, 0), (Down, 0)]), FrontendState::Down);
    assert_eq!(frontend_state([(Paused, 0)]), FrontendState::Down);
    assert_eq!(FrontendState::Up.to_string(), "up");
}

#[test]
fn transitions_that_flush() {
    assert!(transition_flushes(Up, Disabled, false));
    assert!(transition_flushes(Up, Down, true));
    assert!(!transition_flushes(Up, Down, false));
    assert!(!transition_flushes(Up, Paused, true));
    assert!(
        !transition_flushes(Down, Down, true),
        "no transition, no flush"
    );
    assert!(transition_flushes(Down, Disabled, false));
    assert!(!transition_flushes(Disabled, Unknown, true));
    assert_eq!(Disabled.to_string(), "disabled");
}

#[test]
fn numeric_order_puts_ipv4_first_and_compares_numbers() {
    let mut addrs: Vec<IpAddr> = [
        "::1",
        "10.0.0.10",
        "2001:db8::2",
        "10.0.0.2",
        "9.255.255.255",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    sort_numeric(&mut addrs);
    let text: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "9.255.255.255",
            "10.0.0.2",
            "10.0.0.10",
            "::1",
            "2001:db8::2"
        ]
    );
    assert!(cmp_numeric(&addrs[2], &addrs[3]).is_lt());
}

const FAILOVER: &str = r#"
maglev:
  backends:
    p1: { address: 10.0.0.1 }
    p2: { address: 10.0.0.2 }
    f1: { address: 10.0.1.1 }
    l1: { address: 10.0.2.1 }
  frontends:
    web:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            p1: { weight: 100 }
            p2: { weight: 40 }
        - name: fallback
          backends:
            f1: {}
        - name: last
          backends:
            l1: { weight: 7 }
    drain:
      address: 192.0.2.2
      protocol: tcp
      port: 80
      flush-on-down: false
      pools:
        - name: only
          backends:
            p1: {}
"#;

fn config() -> Config {
    Config::from_yaml_str("failover.yaml", FAILOVER).unwrap()
}

fn states(list: &[(&str, BackendState)]) -> BTreeMap<String, BackendState> {
    list.iter().map(|&(n, s)| (n.to_owned(), s)).collect()
}

/// Effective weights of `web` as (pool, backend) -> weight, plus the active pool and state.
fn web(list: &[(&str, BackendState)], ov: &WeightOverrides) -> (Vec<u8>, usize, FrontendState) {
    let cfg = config();
    let fw = effective_weights(cfg.frontend("web").unwrap(), &states(list), ov);
    let weights = [(0, "p1"), (0, "p2"), (1, "f1"), (2, "l1")]
        .iter()
        .map(|&(p, b)| fw.weight(p, b).unwrap())
        .collect();
    (weights, fw.active_pool, fw.state)
}

#[test]
fn failover_scenarios() {
    let none = WeightOverrides::new();
    // Everything unknown at start: nothing carries traffic, the frontend is unknown.
    assert_eq!(
        web(&[], &none),
        (vec![0, 0, 0, 0], 0, FrontendState::Unknown)
    );
    // Primary up, fallback standby.
    let all_up = [("p1", Up), ("p2", Up), ("f1", Up), ("l1", Up)];
    assert_eq!(
        web(&all_up, &none),
        (vec![100, 40, 0, 0], 0, FrontendState::Up)
    );
    // One primary down: the other keeps the pool active.
    assert_eq!(
        web(&[("p1", Down), ("p2", Up), ("f1", Up), ("l1", Up)], &none),
        (vec![0, 40, 0, 0], 0, FrontendState::Up)
    );
    // Primary disabled and down: fallback takes over.
    assert_eq!(
        web(
            &[("p1", Disabled), ("p2", Down), ("f1", Up), ("l1", Up)],
            &none
        ),
        (vec![0, 0, 100, 0], 1, FrontendState::Up)
    );
    // Primary re-enabled (unknown): the fallback stays active until a primary is up again.
    assert_eq!(
        web(
            &[("p1", Unknown), ("p2", Down), ("f1", Up), ("l1", Up)],
            &none
        ),
        (vec![0, 0, 100, 0], 1, FrontendState::Up)
    );
    // Primary back up: the fallback steps back to standby.
    assert_eq!(
        web(&[("p1", Up), ("p2", Down), ("f1", Up), ("l1", Up)], &none),
        (vec![100, 0, 0, 0], 0, FrontendState::Up)
    );
    // Two tiers gone: the last pool serves.
    assert_eq!(
        web(
            &[("p1", Paused), ("p2", Down), ("f1", Down), ("l1", Up)],
            &none
        ),
        (vec![0, 0, 0, 7], 2, FrontendState::Up)
    );
    // Nothing up: down.
    assert_eq!(
        web(&[("p1", Down), ("p2", Paused), ("f1", Disabled)], &none),
        (vec![0, 0, 0, 0], 0, FrontendState::Down)
    );
}

#[test]
fn overrides_replace_the_configured_weight() {
    let mut ov = WeightOverrides::new();
    ov.set("web", "primary", "p2", 80);
    ov.set("web", "fallback", "f1", 200);
    let all_up = [("p1", Up), ("p2", Up), ("f1", Up), ("l1", Up)];
    assert_eq!(web(&all_up, &ov).0, vec![100, 80, 0, 0]);
    assert_eq!(ov.get("web", "fallback", "f1"), Some(100), "clamped");
    // An override of 0 drains the backend; the pool stays active through the other member.
    ov.set("web", "primary", "p1", 0);
    assert_eq!(web(&all_up, &ov), (vec![0, 80, 0, 0], 0, FrontendState::Up));
    assert_eq!(ov.remove("web", "primary", "p1"), Some(0));
    assert_eq!(ov.remove("web", "primary", "p1"), None);
    assert_eq!(web(&all_up, &ov).0, vec![100, 80, 0, 0]);
    ov.clear();
    assert!(ov.is_empty());
}

#[test]
fn retain_keeps_only_the_chosen_overrides_and_prunes_empty_levels() {
    let mut ov = WeightOverrides::new();
    ov.set("web", "primary", "p1", 10);
    ov.set("web", "primary", "p2", 20);
    ov.set("web", "fallback", "f1", 30);
    ov.set("dns", "p", "a", 40);
    let mut seen = Vec::new();
    ov.retain(|f, p, b| {
        seen.push(format!("{f}/{p}/{b}"));
        (f, b) == ("web", "p2") || p == "fallback"
    });
    seen.sort();
    assert_eq!(
        seen,
        [
            "dns/p/a",
            "web/fallback/f1",
            "web/primary/p1",
            "web/primary/p2"
        ]
    );
    assert_eq!(ov.get("web", "primary", "p1"), None);
    assert_eq!(ov.get("web", "primary", "p2"), Some(20));
    assert_eq!(ov.get("web", "fallback", "f1"), Some(30));
    assert_eq!(ov.get("dns", "p", "a"), None);
    ov.retain(|_, _, _| false);
    assert!(ov.is_empty(), "empty frontends and pools are pruned");
    assert_eq!(ov, WeightOverrides::new());
}

#[test]
fn flush_on_down_is_per_frontend() {
    let cfg = config();
    let st = states(&[("p1", Down)]);
    let none = WeightOverrides::new();
    let web = effective_weights(cfg.frontend("web").unwrap(), &st, &none);
    let drain = effective_weights(cfg.frontend("drain").unwrap(), &st, &none);
    assert!(web.pools[0].members[0].effective.flush);
    assert!(!drain.pools[0].members[0].effective.flush);
    assert_eq!(drain.pools[0].members[0].state, Down);
}
