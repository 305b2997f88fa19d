//! The sync engine end to end against the simulator (what maglevd's end-to-end tests
//! checked): it reaches the desired state, sends nothing without drift, flushes once, follows
//! a backend going down and a reload, leaves a running VPP untouched while a restarted
//! instance's backends resolve, and reprograms a restarted VPP.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::Config;
use maglev_core::reconcile::ReconcileEvent;
use maglev_core::weights::BackendState;
use maglev_vpp::syncer::{LbSyncer, SyncEvent};

use crate::harness::{
    Harness, States, conf_pushes, config, flushes, ip, options, vip_ases, vpp_section, wait_for,
};

const VIP: &str = "192.0.2.80";

fn web(b1_weight: u8, min: &str, max: &str) -> Arc<Config> {
    config(&format!(
        "
maglev:{}
  backends:
    b1: {{ address: 127.0.0.61 }}
    b2: {{ address: 127.0.0.62 }}
    b3: {{ address: 127.0.0.63 }}
  frontends:
    web:
      address: {VIP}
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            b1: {{ weight: {b1_weight} }}
            b2: {{}}
            b3: {{ weight: 20 }}
",
        vpp_section(min, max)
    ))
}

fn expected(b1: u8) -> BTreeMap<IpAddr, u8> {
    BTreeMap::from([
        (ip("127.0.0.61"), b1),
        (ip("127.0.0.62"), 0),
        (ip("127.0.0.63"), 20),
    ])
}

/// The backends resolve as the checker would report them: b1 up, b2 down, b3 up.
fn resolve(h: &Harness) {
    h.set("b1", BackendState::Up);
    h.set("b2", BackendState::Down);
    h.set("b3", BackendState::Up);
}

async fn syncs(h: &mut Harness, n: usize) {
    for _ in 0..n {
        h.sync_done().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaches_the_desired_state_and_follows_changes_without_drift_traffic() {
    let mut h = Harness::start(web(100, "0s", "0s"), States::default()).await;
    // The first sync installs every backend unknown (weight 0), then they resolve.
    h.sync_done().await;
    resolve(&h);
    wait_for("the initial state", || {
        vip_ases(&h.sim, VIP) == Some(expected(100))
    })
    .await;
    // b2 went unknown -> down (flush-on-down): one flush, even though its weight is 0.
    wait_for("b2's one-time flush", || flushes(&h.sim, "127.0.0.62") == 1).await;
    assert_eq!(conf_pushes(&h.sim), 1);
    assert_eq!(h.sim.with_lb(|lb| lb.conf()).flow_timeout, 40);

    // No drift: two periodic syncs later, not one more mutating message.
    let before = h.sim.journal().len();
    h.drain_events();
    syncs(&mut h, 2).await;
    assert_eq!(h.sim.journal().len(), before, "{:?}", h.sim.journal());

    // b1 goes down: weight 0 with a flush.
    h.set("b1", BackendState::Down);
    wait_for("b1 drained", || vip_ases(&h.sim, VIP) == Some(expected(0))).await;
    assert_eq!(flushes(&h.sim, "127.0.0.61"), 1);

    // A reload with another weight for b1, back up: applied; vpp.lb unchanged, so no
    // second lb_conf.
    h.syncer.set_config(web(30, "0s", "0s"));
    h.set("b1", BackendState::Up);
    wait_for("the new weight", || {
        vip_ases(&h.sim, VIP) == Some(expected(30))
    })
    .await;
    assert_eq!(conf_pushes(&h.sim), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_leaves_vpp_untouched_while_backends_resolve() {
    let mut first = Harness::start(web(100, "0s", "0s"), States::default()).await;
    first.sync_done().await;
    resolve(&first);
    wait_for("the initial state", || {
        vip_ases(&first.sim, VIP) == Some(expected(100))
    })
    .await;
    wait_for("b2's one-time flush", || {
        flushes(&first.sim, "127.0.0.62") == 1
    })
    .await;
    first.syncer.shutdown().await;
    let journal = first.sim.journal().len();

    // The next instance starts with every backend unknown. With the warmup it waits until
    // they resolve, finds no drift and sends nothing: not even lb_conf, which VPP holds.
    let states = States::default();
    let second = LbSyncer::start(
        options(&first.api),
        web(100, "500ms", "10s"),
        states.source(),
    );
    let mut events = second.subscribe();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (name, state) in [
        ("b1", BackendState::Up),
        ("b2", BackendState::Down),
        ("b3", BackendState::Up),
    ] {
        let from = states.set(name, state);
        second.transition(name, from, state);
    }
    let mut released = false;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("a sync within 20 s")
            .unwrap();
        match event {
            SyncEvent::Reconcile(ReconcileEvent::WarmupRelease { .. }) => released = true,
            SyncEvent::SyncDone(_) => break,
            _ => {}
        }
    }
    assert!(released);
    assert_eq!(vip_ases(&first.sim, VIP), Some(expected(100)));
    assert_eq!(
        first.sim.journal().len(),
        journal,
        "{:?}",
        first.sim.journal()
    );
    second.shutdown().await;
    first.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_reprograms_a_restarted_vpp() {
    let mut h = Harness::start(web(100, "0s", "0s"), States::default()).await;
    resolve(&h);
    wait_for("the initial state", || {
        vip_ases(&h.sim, VIP) == Some(expected(100))
    })
    .await;
    h.sim.restart().await.unwrap();
    assert_eq!(
        vip_ases(&h.sim, VIP),
        None,
        "the restarted simulator starts empty"
    );
    h.next_event(|e| matches!(e, SyncEvent::Disconnected { error: Some(_) }))
        .await;
    h.next_event(|e| matches!(e, SyncEvent::Connected(_))).await;
    wait_for("the state after the restart", || {
        vip_ases(&h.sim, VIP) == Some(expected(100))
    })
    .await;
    assert_eq!(conf_pushes(&h.sim), 2, "pushed again to the fresh VPP");
    assert_eq!(h.sim.with_lb(|lb| lb.conf()).flow_timeout, 40);
    h.stop().await;
}
