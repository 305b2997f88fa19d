//! The reconciler in-process against the simulator: a burst of transitions that arrives
//! while a sync runs is merged into one follow-up sync, so every AS gets exactly one message
//! (a naive sync per transition would send the one-time flush of a backend a second time).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maglev_health::checker::Checker;
use maglevd::cli::VppTarget;
use maglevd::config_file;
use tokio::sync::watch;
use vpp_binapi::api::lb::LbAsSetWeight;
use vpp_sim::{SimConfig, SimHandle, Simulator};

const CONFIG: &str = "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      startup-min-delay: 0s
      startup-max-delay: 0s
  backends:
    a: { address: 127.0.0.71 }
    b: { address: 127.0.0.72 }
    c: { address: 127.0.0.73 }
    d: { address: 127.0.0.74 }
    e: { address: 127.0.0.75 }
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends: { a: {}, b: {}, c: {}, d: {}, e: {} }
";

fn weights(sim: &SimHandle) -> BTreeMap<IpAddr, u8> {
    sim.with_lb(|lb| {
        lb.as_dump(None)
            .into_iter()
            .filter(|a| a.flags & 1 == 1)
            .map(|a| (a.address, a.weight))
            .collect()
    })
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_during_a_sync_becomes_one_follow_up() {
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.sock");
    let sim = Simulator::start(SimConfig::new(&api)).await.unwrap();

    let loaded = config_file::load_str("t.yaml", CONFIG).unwrap();
    let checker = Checker::new(maglevd::specs::checker_config(&loaded.config));
    let transitions = checker.subscribe();
    checker.apply_config(loaded.specs).unwrap();
    let (_config_tx, config_rx) = watch::channel(Arc::new(loaded.config));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(maglevd::vpp::run(
        VppTarget::Socket {
            api: api.clone(),
            stats: None,
        },
        checker.clone(),
        config_rx,
        transitions,
        shutdown_rx,
    ));

    wait_for("every static backend at weight 100", || {
        let w = weights(&sim);
        w.len() == 5 && w.values().all(|&w| w == 100)
    })
    .await;
    let before = sim.journal().len();

    // Slow VPP down so a sync (three dumps, then the operations) takes a while, start one
    // with a single transition and disable the rest while it runs.
    sim.set_reply_delay(Some(Duration::from_millis(100)));
    checker.disable("a").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for name in ["b", "c", "d", "e"] {
        checker.disable(name).unwrap();
    }
    wait_for("every backend drained", || {
        weights(&sim).values().all(|&w| w == 0)
    })
    .await;
    // Let any further (wrong) sync happen before counting.
    sim.set_reply_delay(None);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let journal = sim.journal();
    let mut per_as: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for entry in &journal[before..] {
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

    shutdown_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reconciler stops on shutdown")
        .unwrap();
    checker.shutdown().await;
    sim.shutdown();
}
