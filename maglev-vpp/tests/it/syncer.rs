//! The `LbSyncer` handle against the simulator: snapshot, set_weight/clear_weight, sync_now,
//! the dry-run plan, a transition reaching `lb_as_set_weight`, coalescing of a burst during a
//! sync, and a start of 10,000 backends.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::plan::Op;
use maglev_core::reconcile::{SyncOutcome, SyncRequest};
use maglev_core::weights::BackendState;
use maglev_vpp::syncer::{
    ConnectionState, NameError, OpResult, PlanError, StateError, SyncError, SyncEvent, WeightError,
};
use vpp_binapi::api::lb::LbAsSetWeight;

use crate::harness::{
    Captured, Harness, States, all_weights, config, ip, vpp_section, vpp_section_with, wait_for,
};

fn small() -> String {
    format!(
        "
maglev:{}
  backends:
    a: {{ address: 127.0.0.71 }}
    b: {{ address: 127.0.0.72 }}
    c: {{ address: 127.0.0.73 }}
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends: {{ a: {{}}, b: {{}}, c: {{ weight: 20 }} }}
    dns:
      address: 192.0.2.53
      protocol: udp
      port: 53
      pools:
        - name: p
          backends: {{ a: {{}} }}
",
        vpp_section("0s", "0s")
    )
}

fn expected_web(a: u8, b: u8, c: u8) -> BTreeMap<IpAddr, u8> {
    BTreeMap::from([
        (ip("127.0.0.71"), a),
        (ip("127.0.0.72"), b),
        (ip("127.0.0.73"), c),
    ])
}

/// A started harness with every backend up, converged by its first sync, events drained.
async fn converged() -> Harness {
    let config = config(&small());
    let states = States::all(&config, BackendState::Up);
    let mut h = Harness::start(config, states).await;
    let first = h.sync_done().await;
    assert_eq!(first.outcome, SyncOutcome::Done);
    assert_eq!(
        crate::harness::vip_ases(&h.sim, "192.0.2.80"),
        Some(expected_web(100, 100, 20))
    );
    h.drain_events();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reports_the_session_and_the_last_sync() {
    let mut h = converged().await;
    h.syncer.sync_now(SyncRequest::All).unwrap();
    let done = h.sync_done().await;
    let snap = h.syncer.snapshot();
    assert_eq!(snap.connection, ConnectionState::Connected);
    let vpp = snap.vpp.expect("vpp info while connected");
    assert!(
        !vpp.version.is_empty() && vpp.version != "unknown",
        "{vpp:?}"
    );
    assert_eq!(vpp.socket, h.api);
    assert!(snap.syncs >= 2);
    let last = snap.last_sync.expect("a last sync");
    assert_eq!(last.outcome, SyncOutcome::Done);
    assert!(last.full);
    // No drift: the last full sync planned nothing.
    assert!(last.plan.is_empty(), "{:?}", last.plan);
    assert_eq!(last.id, done.id);
    assert!(snap.overrides.is_empty());
    let syncer = h.syncer.clone();
    h.stop().await;
    assert_eq!(syncer.snapshot().connection, ConnectionState::Stopped);
    assert!(syncer.snapshot().vpp.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_reaches_lb_as_set_weight() {
    let h = converged().await;
    let before = h.sim.journal().len();
    h.set("b", BackendState::Down);
    wait_for("b drained", || {
        crate::harness::vip_ases(&h.sim, "192.0.2.80") == Some(expected_web(100, 0, 20))
    })
    .await;
    let journal = h.sim.journal();
    let sent: Vec<(IpAddr, u8, bool)> = journal[before..]
        .iter()
        .map(|e| {
            let m = e
                .message
                .as_any()
                .downcast_ref::<LbAsSetWeight>()
                .unwrap_or_else(|| panic!("only a weight change expected, got {e}"));
            (m.as_address.to_ip().unwrap(), m.weight, m.is_flush)
        })
        .collect();
    // flush-on-down (the default): drained with a one-time flush, and only b.
    assert_eq!(sent, [(ip("127.0.0.72"), 0, true)]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_weight_overrides_until_cleared_and_refuses_bad_input() {
    let mut h = converged().await;
    assert_eq!(
        h.syncer.set_weight("web", "p", "a", 101),
        Err(WeightError::OutOfRange(101))
    );
    assert_eq!(
        h.syncer.set_weight("nope", "p", "a", 1),
        Err(WeightError::Name(NameError::Frontend("nope".into())))
    );
    assert!(matches!(
        h.syncer.set_weight("web", "q", "a", 1),
        Err(WeightError::Name(NameError::Pool { .. }))
    ));
    assert!(matches!(
        h.syncer.clear_weight("dns", "p", "b"),
        Err(WeightError::Name(NameError::Backend { .. }))
    ));
    h.syncer.set_weight("web", "p", "a", 30).unwrap();
    let done = h.sync_done().await;
    assert_eq!(done.frontends, ["web"], "only that frontend is synced");
    assert_eq!(
        crate::harness::vip_ases(&h.sim, "192.0.2.80"),
        Some(expected_web(30, 100, 20))
    );
    // dns has a too, without an override.
    assert_eq!(
        crate::harness::vip_ases(&h.sim, "192.0.2.53"),
        Some(BTreeMap::from([(ip("127.0.0.71"), 100)]))
    );
    assert_eq!(h.syncer.snapshot().overrides.get("web", "p", "a"), Some(30));
    assert_eq!(h.syncer.clear_weight("web", "p", "a"), Ok(Some(30)));
    wait_for("the configured weight back", || {
        crate::harness::vip_ases(&h.sim, "192.0.2.80") == Some(expected_web(100, 100, 20))
    })
    .await;
    assert_eq!(h.syncer.clear_weight("web", "p", "a"), Ok(None));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_overrides_whose_names_still_exist() {
    let mut h = converged().await;
    h.syncer.set_weight("web", "p", "a", 30).unwrap();
    h.syncer.set_weight("web", "p", "c", 5).unwrap();
    h.syncer.set_weight("dns", "p", "a", 7).unwrap();
    // The new config drops c from web and the whole dns frontend.
    let reloaded = small()
        .replace(", c: { weight: 20 }", "")
        .split("    dns:")
        .next()
        .unwrap()
        .to_owned();
    h.syncer.set_config(config(&reloaded));
    let overrides = h.syncer.snapshot().overrides;
    assert_eq!(
        overrides.get("web", "p", "a"),
        Some(30),
        "kept: still a member"
    );
    assert_eq!(
        overrides.get("web", "p", "c"),
        None,
        "dropped: c left the pool"
    );
    assert_eq!(
        overrides.get("dns", "p", "a"),
        None,
        "dropped: the frontend is gone"
    );
    wait_for("the reload synced with a's override", || {
        crate::harness::vip_ases(&h.sim, "192.0.2.80")
            == Some(BTreeMap::from([
                (ip("127.0.0.71"), 30),
                (ip("127.0.0.72"), 100),
            ]))
    })
    .await;
    h.drain_events();
    h.stop().await;
}

/// What an op looks like in the journal: the message name, the AS address and weight.
fn op_shape(op: &Op) -> (&'static str, Option<IpAddr>, Option<u8>) {
    match *op {
        Op::VipAdd { .. } | Op::VipDel { .. } => ("lb_add_del_vip_v2", None, None),
        Op::AsAdd {
            address, weight, ..
        } => ("lb_add_del_as_v2", Some(address), Some(weight)),
        Op::AsDel { address, .. } => ("lb_add_del_as_v2", Some(address), None),
        Op::AsSetWeight {
            address, weight, ..
        } => ("lb_as_set_weight", Some(address), Some(weight)),
    }
}

fn entry_shape(e: &vpp_sim::JournalEntry) -> (&'static str, Option<IpAddr>, Option<u8>) {
    let any = e.message.as_any();
    if let Some(m) = any.downcast_ref::<LbAsSetWeight>() {
        return (e.name, m.as_address.to_ip().ok(), Some(m.weight));
    }
    if let Some(m) = any.downcast_ref::<vpp_binapi::api::lb::LbAddDelAsV2>() {
        let weight = (!m.is_del).then_some(m.weight);
        return (e.name, m.as_address.to_ip().ok(), weight);
    }
    (e.name, None, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_plan_is_what_the_next_sync_sends() {
    let mut h = converged().await;
    assert!(matches!(
        h.syncer.plan(SyncRequest::Frontend("nope".into())).await,
        Err(PlanError::Name(NameError::Frontend(_)))
    ));
    // No drift: nothing to send.
    assert!(h.syncer.plan(SyncRequest::All).await.unwrap().is_empty());

    // Drift the syncer does not know of yet: states change without transitions.
    h.states.set("b", BackendState::Down);
    h.states.set("a", BackendState::Disabled);
    let plan = h
        .syncer
        .plan(SyncRequest::Frontend("web".into()))
        .await
        .unwrap();
    assert!(!plan.is_empty());
    assert!(
        plan.iter().all(|op| op.key().port == 80),
        "web only: {plan:?}"
    );
    // Planning sent nothing.
    let before = h.sim.journal().len();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.sim.journal().len(), before);

    h.syncer
        .sync_now(SyncRequest::Frontend("web".into()))
        .unwrap();
    let done = h.sync_done().await;
    assert_eq!(*done.plan, plan, "the sync planned what the dry run showed");
    let sent: Vec<_> = h.sim.journal()[before..].iter().map(entry_shape).collect();
    let mut planned: Vec<_> = plan.iter().map(op_shape).collect();
    let mut sent_sorted = sent.clone();
    // Pipelining may reorder independent operations; the set is what matters.
    planned.sort();
    sent_sorted.sort();
    assert_eq!(sent_sorted, planned);
    assert!(matches!(
        h.syncer.sync_now(SyncRequest::Frontend("nope".into())),
        Err(NameError::Frontend(_))
    ));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_report_every_op_of_a_sync() {
    let config = config(&small());
    let states = States::all(&config, BackendState::Up);
    let mut h = Harness::start(config, states).await;
    // Every op event between a sync's start and its end, for the first sync that completes
    // (a sync aborted by a slow machine's timeout is followed by another).
    let mut started = None;
    let mut ops = Vec::new();
    let done = loop {
        match h.next_event(|_| true).await {
            SyncEvent::SyncStarted { id, .. } => {
                started = Some(id);
                ops.clear();
            }
            SyncEvent::Op { id, op, result } => {
                assert_eq!(Some(id), started);
                assert_eq!(result, OpResult::Applied);
                ops.push(op);
            }
            SyncEvent::SyncDone(done) if done.outcome == SyncOutcome::Done => break done,
            _ => {}
        }
    };
    assert_eq!(Some(done.id), started);
    // Two VIPs, four ASes: every planned op reported once.
    assert_eq!(done.plan.len(), 6);
    assert_eq!(ops.len(), 6);
    assert!(done.plan.iter().all(|op| ops.contains(op)));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_during_a_sync_becomes_one_follow_up() {
    let yaml = format!(
        "
maglev:{}
  backends:
    a: {{ address: 127.0.0.71 }}
    b: {{ address: 127.0.0.72 }}
    c: {{ address: 127.0.0.73 }}
    d: {{ address: 127.0.0.74 }}
    e: {{ address: 127.0.0.75 }}
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends: {{ a: {{}}, b: {{}}, c: {{}}, d: {{}}, e: {{}} }}
",
        vpp_section("0s", "0s")
    );
    let config = config(&yaml);
    let h = Harness::start(Arc::clone(&config), States::all(&config, BackendState::Up)).await;
    wait_for("every backend at weight 100", || {
        let w = all_weights(&h.sim);
        w.len() == 5 && w.values().all(|&w| w == 100)
    })
    .await;
    let before = h.sim.journal().len();
    // Slow VPP down so a sync takes a while; start one with a single transition and disable
    // the rest while it runs.
    h.sim.set_reply_delay(Some(Duration::from_millis(100)));
    h.set("a", BackendState::Disabled);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for name in ["b", "c", "d", "e"] {
        h.set(name, BackendState::Disabled);
    }
    wait_for("every backend drained", || {
        all_weights(&h.sim).values().all(|&w| w == 0)
    })
    .await;
    h.sim.set_reply_delay(None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_as: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for entry in &h.sim.journal()[before..] {
        let m = entry
            .message
            .as_any()
            .downcast_ref::<LbAsSetWeight>()
            .unwrap_or_else(|| panic!("only weight changes expected, got {entry}"));
        assert_eq!(m.weight, 0);
        assert!(m.is_flush, "disabled flushes");
        *per_as.entry(m.as_address.to_ip().unwrap()).or_default() += 1;
    }
    assert_eq!(per_as.len(), 5, "{per_as:?}");
    assert!(per_as.values().all(|&n| n == 1), "{per_as:?}");
    h.stop().await;
}

/// 100 frontends x 100 static backends.
fn big(min: &str, max: &str) -> String {
    use std::fmt::Write as _;
    let mut yaml = format!(
        "maglev:{}\n  backends:\n",
        vpp_section_with(min, max, "30s")
    );
    for f in 0..100 {
        for b in 0..100 {
            writeln!(yaml, "    f{f}b{b}: {{ address: 10.1.{f}.{} }}", b + 1).unwrap();
        }
    }
    yaml.push_str("  frontends:\n");
    for f in 0..100 {
        write!(
            yaml,
            "    f{f}:\n      address: 192.0.3.{}\n      protocol: tcp\n      port: 80\n      pools:\n        - name: p\n          backends: {{ ",
            f + 1
        )
        .unwrap();
        for b in 0..100 {
            write!(yaml, "f{f}b{b}: {{}}, ").unwrap();
        }
        yaml.push_str("}\n");
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_backends_start_with_one_full_sync_and_no_lag() {
    let logs = Captured::new();
    // A 30 s sync-interval: no periodic sync during the test.
    let config = config(&big("2s", "20s"));
    // Every backend starts unknown, as after a restart, and resolves during the hold.
    let mut h =
        Harness::start_in(logs.span(), Arc::clone(&config), States::default(), |_| {}).await;
    for name in config.backends.keys() {
        h.set(name, BackendState::Up);
    }
    let done = h.sync_done().await;
    assert!(
        done.full,
        "a per-frontend job of {} frontends",
        done.frontends.len()
    );
    assert_eq!(done.outcome, SyncOutcome::Done);
    assert_eq!(done.stats.vip_add, 100);
    assert_eq!(done.stats.as_add, 10_000);
    assert_eq!(all_weights(&h.sim).len(), 10_000);
    // Quiet afterwards: no redundant second sync within the next 700 ms (the sync-interval is
    // 1 s), and no sync that sends anything.
    let extra = tokio::time::timeout(Duration::from_millis(700), h.sync_done()).await;
    assert!(extra.is_err(), "a second sync: {extra:?}");
    let summary = logs.summary();
    assert_eq!(logs.count("vpp-lbsync-lagged"), 0, "{summary:?}");
    assert_eq!(logs.count("vpp-lb-warmup-release"), 1, "{summary:?}");
    assert_eq!(logs.count("vpp-lbsync-start"), 1, "{summary:?}");
    assert_eq!(logs.count("vpp-lbsync-done"), 1, "{summary:?}");
    // The capture sees the syncer's own records.
    assert_eq!(logs.count("vpp-connect"), 1, "{summary:?}");
    assert_eq!(logs.count("vpp-lbsync-as-add"), 10_000);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_info_carries_the_build_directory_and_pid() {
    let h = converged().await;
    let vpp = h.syncer.snapshot().vpp.expect("connected");
    assert_eq!(vpp.pid, Some(std::process::id()), "the simulator's pid");
    assert!(!vpp.build_date.is_empty(), "{vpp:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_state_reads_the_conf_and_every_vip() {
    let h = converged().await;
    let dump = h.syncer.lb_state().await.unwrap();
    let conf = dump.conf.expect("the simulator has lb_conf_get");
    assert_eq!(
        conf.ip4_src_address,
        "192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(
        conf.ip6_src_address,
        "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap()
    );
    assert_eq!(dump.vips.vips.len(), 2);
    let web = dump
        .vips
        .vips
        .iter()
        .find(|(k, _)| k.port == 80)
        .map(|(_, v)| v)
        .expect("web's VIP");
    let weights: BTreeMap<IpAddr, u8> = web.ases.iter().map(|(a, s)| (*a, s.weight)).collect();
    assert_eq!(weights, expected_web(100, 100, 20));
    assert!(web.table_len > 0);
    let syncer = h.syncer.clone();
    h.stop().await;
    assert!(matches!(
        syncer.lb_state().await,
        Err(StateError::NotConnected)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_waits_for_the_job_that_covers_it() {
    let h = converged().await;
    assert!(matches!(
        h.syncer.sync(SyncRequest::Frontend("nope".into())).await,
        Err(SyncError::Name(NameError::Frontend(_)))
    ));
    // Drift the syncer does not know of: the plan shows it, the sync sends exactly that.
    h.states.set("b", BackendState::Disabled);
    let plan = h
        .syncer
        .plan(SyncRequest::Frontend("web".into()))
        .await
        .unwrap();
    assert!(!plan.is_empty());
    let done = h
        .syncer
        .sync(SyncRequest::Frontend("web".into()))
        .await
        .unwrap();
    assert!(done.full || done.frontends.iter().any(|f| f == "web"));
    assert_eq!(done.outcome, SyncOutcome::Done);
    assert_eq!(*done.plan, plan);
    assert_eq!(done.first_error, None);
    assert_eq!(
        crate::harness::vip_ases(&h.sim, "192.0.2.80"),
        Some(expected_web(100, 0, 20))
    );
    // A full sync with no drift sends nothing.
    let full = h.syncer.sync(SyncRequest::All).await.unwrap();
    assert!(full.full && full.plan.is_empty(), "{full:?}");
    let syncer = h.syncer.clone();
    h.stop().await;
    assert!(matches!(
        syncer.sync(SyncRequest::All).await,
        Err(SyncError::NotConnected)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_refused_while_the_warmup_holds() {
    let yaml = small()
        .replace("startup-min-delay: 0s", "startup-min-delay: 1h")
        .replace("startup-max-delay: 0s", "startup-max-delay: 2h");
    let config = config(&yaml);
    let states = States::all(&config, BackendState::Up);
    let h = Harness::start(config, states).await;
    wait_for("connected", || {
        h.syncer.snapshot().connection == ConnectionState::Connected
    })
    .await;
    assert!(matches!(
        h.syncer.sync(SyncRequest::All).await,
        Err(SyncError::Warmup)
    ));
    h.stop().await;
}
