//! The VPP connection as one unit (API and stats sockets) and the VIP counters scrape, against
//! the simulator: VPP info from both sockets, counters of two VIPs at their pool indices, a
//! recreated VIP followed to its new slot, the stats socket's loss reconnecting both and
//! clearing the snapshot, a VPP without a stats socket still synced; and the per-thread sum on
//! a segment with two threads.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use maglev_core::plan::VipKey;
use maglev_core::reconcile::{SyncOutcome, SyncRequest};
use maglev_core::weights::BackendState;
use maglev_vpp::adapter::ShownVip;
use maglev_vpp::counters::{self, CounterIndex, CounterSnapshot, LbCounter};
use maglev_vpp::syncer::{ConnectionState, SyncEvent};
use vpp_binapi::stats::{Combined, StatsClient};
use vpp_sim::stats::{SegmentConfig, StatsSegment};

use crate::harness::{Captured, Harness, States, config, ip, vpp_section, wait_for};

fn two_vips(web_sticky: bool) -> String {
    format!(
        "
maglev:{}
  backends:
    a: {{ address: 127.0.0.71 }}
    b: {{ address: 127.0.0.72 }}
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      src-ip-sticky: {web_sticky}
      pools:
        - name: p
          backends: {{ a: {{}}, b: {{}} }}
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

fn web() -> VipKey {
    VipKey::new(host("192.0.2.80"), 6, 80)
}

fn dns() -> VipKey {
    VipKey::new(host("192.0.2.53"), 17, 53)
}

fn host(addr: &str) -> IpNet {
    IpNet::from(ip(addr))
}

/// The simulator's pool index of the live VIP on `addr`.
fn pool_index(h: &Harness, addr: &str) -> u32 {
    let addr: IpAddr = ip(addr);
    h.sim.with_lb(|lb| {
        lb.vip_dump()
            .into_iter()
            .find(|v| v.prefix == addr)
            .map(|v| v.index)
            .expect("the VIP exists")
    })
}

/// Waits for a published snapshot that satisfies `ok`.
async fn snapshot_where(
    h: &Harness,
    what: &str,
    mut ok: impl FnMut(&CounterSnapshot) -> bool,
) -> Arc<CounterSnapshot> {
    let mut found = None;
    wait_for(what, || {
        found = h.syncer.counters().filter(|s| ok(s));
        found.is_some()
    })
    .await;
    found.unwrap()
}

/// A harness with a stats socket, every backend up, converged.
async fn started(web_sticky: bool) -> Harness {
    let config = config(&two_vips(web_sticky));
    let states = States::all(&config, BackendState::Up);
    let mut h =
        Harness::start_with_stats(&tracing::Span::none(), config, states, true, |_| {}).await;
    assert_eq!(h.sync_done().await.outcome, SyncOutcome::Done);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reads_version_pid_and_boot_time_from_both_sockets() {
    let h = started(false).await;
    let snap = h.syncer.snapshot();
    assert_eq!(snap.connection, ConnectionState::Connected);
    let vpp = snap.vpp.expect("vpp info while connected");
    assert_ne!(vpp.version, "unknown");
    assert!(!vpp.build_date.is_empty());
    assert_eq!(
        vpp.pid,
        Some(std::process::id()),
        "the pid comes from control_ping"
    );
    assert_eq!(
        vpp.stats_socket.as_deref(),
        Some(h.api.with_file_name("stats.sock").as_path())
    );
    let boot = vpp.boot_time.expect("/sys/boottime read on connect");
    let age = SystemTime::now()
        .duration_since(boot)
        .expect("booted in the past");
    assert!(age < Duration::from_secs(60), "booted {age:?} ago");
    // The first, full sync created both VIPs and three ASes.
    let m = h.syncer.sync_metrics();
    let totals: Vec<_> = m
        .totals
        .non_zero()
        .map(|(scope, kind, n)| (scope.label(), kind.label(), n))
        .collect();
    assert_eq!(totals, [("all", "vip_added", 2), ("all", "as_added", 3)]);
    assert_eq!(m.duration.count(), 1);
    assert!(m.last_success.is_some());
    assert_eq!(m.connects, 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_reads_two_vips_at_their_pool_indices() {
    let h = started(false).await;
    let (iw, id) = (pool_index(&h, "192.0.2.80"), pool_index(&h, "192.0.2.53"));
    assert_ne!(iw, id);
    assert!(h.sim.bump_vip_counter(iw, 0, 5));
    assert!(h.sim.bump_vip_counter(id, 1, 7));
    assert!(h.sim.bump_vip_counter(id, 3, 2));
    assert!(h.sim.bump_route_counter(ip("192.0.2.80"), 32, 10, 1500));
    let snap = snapshot_where(&h, "the bumped counters", |s| {
        s.vips
            .get(&web())
            .is_some_and(|c| c.get(LbCounter::Next) == 5)
            && s.vips
                .get(&dns())
                .is_some_and(|c| c.get(LbCounter::First) == 7)
    })
    .await;
    assert!(snap.lb_counters);
    assert_eq!(snap.vips.len(), 2);
    let w = snap.vips[&web()];
    assert_eq!(w.pool_index, iw);
    assert_eq!(w.lb, [5, 0, 0, 0]);
    assert_eq!(
        w.route,
        Some(Combined {
            packets: 10,
            bytes: 1500
        })
    );
    let d = snap.vips[&dns()];
    assert_eq!(d.pool_index, id);
    assert_eq!(d.lb, [0, 7, 0, 2]);
    assert_eq!(d.route, Some(Combined::default()));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_vip_is_followed_to_its_new_pool_index() {
    let mut h = started(false).await;
    let old = pool_index(&h, "192.0.2.80");
    assert!(h.sim.bump_vip_counter(old, 0, 9));
    snapshot_where(&h, "the old slot's counter", |s| {
        s.vips
            .get(&web())
            .is_some_and(|c| c.get(LbCounter::Next) == 9)
    })
    .await;
    // Stickiness changes: the VIP is deleted and added again, in a new pool slot while the
    // old one waits for garbage collection.
    h.syncer.set_config(config(&two_vips(true)));
    let done = h.sync_done().await;
    assert_eq!(done.outcome, SyncOutcome::Done);
    assert!(done.stats.vip_add >= 1);
    let new = pool_index(&h, "192.0.2.80");
    assert_ne!(
        new, old,
        "the simulator put the recreated VIP in a new slot"
    );
    assert!(h.sim.bump_vip_counter(new, 2, 4));
    let snap = snapshot_where(&h, "the new slot's counter", |s| {
        s.vips.get(&web()).is_some_and(|c| c.pool_index == new)
    })
    .await;
    let w = snap.vips[&web()];
    assert_eq!(w.lb, [0, 0, 4, 0], "the new slot's counters only");
    assert_eq!(snap.vips[&dns()].pool_index, pool_index(&h, "192.0.2.53"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_stats_socket_reconnects_both_and_clears_the_snapshot() {
    let mut h = started(false).await;
    snapshot_where(&h, "a first scrape", |s| s.vips.len() == 2).await;
    let before = h.syncer.snapshot().vpp.expect("connected").connected_at;
    h.drain_events();
    // VPP going away removes its stats socket; the API socket stays up.
    std::fs::remove_file(h.api.with_file_name("stats.sock")).unwrap();
    let gone = h
        .next_event(|e| matches!(e, SyncEvent::Disconnected { .. }))
        .await;
    let SyncEvent::Disconnected { error: Some(error) } = gone else {
        panic!("an error disconnect, got {gone:?}");
    };
    assert!(error.contains("stats socket"), "{error}");
    assert!(h.syncer.counters().is_none(), "cleared on disconnect");
    let SyncEvent::Connected(info) = h.next_event(|e| matches!(e, SyncEvent::Connected(_))).await
    else {
        unreachable!()
    };
    assert!(info.connected_at > before, "a new session");
    assert_eq!(
        h.sim.connection_count(),
        1,
        "the old API connection was closed"
    );
    assert!(info.stats_socket.is_none() && info.boot_time.is_none());
    // Without a stats socket the session syncs on, without counters.
    assert_eq!(h.sync_done().await.outcome, SyncOutcome::Done);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.syncer.counters().is_none());
    assert_eq!(h.syncer.snapshot().connection, ConnectionState::Connected);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpp_without_a_stats_socket_keeps_syncing_with_one_warning() {
    let captured = Captured::new();
    let config = config(&two_vips(false));
    let states = States::all(&config, BackendState::Up);
    let mut h = Harness::start_with_stats(captured.span(), config, states, false, |_| {}).await;
    assert_eq!(h.sync_done().await.outcome, SyncOutcome::Done);
    for _ in 0..3 {
        h.syncer.sync_now(SyncRequest::All).unwrap();
        assert_eq!(h.sync_done().await.outcome, SyncOutcome::Done);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let snap = h.syncer.snapshot();
    assert_eq!(snap.connection, ConnectionState::Connected);
    let vpp = snap.vpp.expect("connected");
    assert!(vpp.boot_time.is_none() && vpp.stats_socket.is_none());
    assert!(h.syncer.counters().is_none());
    assert_eq!(captured.count("vpp-stats-unavailable"), 1);
    assert_eq!(captured.count("vpp-disconnect"), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_sums_threads_and_reads_zero_before_the_lb_counters_exist() {
    let segment = StatsSegment::with_standard_entries(SegmentConfig {
        n_threads: 2,
        ..SegmentConfig::default()
    })
    .unwrap();
    let client = StatsClient::from_fd(segment.try_clone_fd().unwrap()).unwrap();
    let shown = |index, key: VipKey| ShownVip {
        index,
        key,
        encap: None,
        src_ip_sticky: false,
        removed: false,
        new_size: None,
        ases: Vec::new(),
    };
    let mut removed = shown(1, VipKey::new(host("192.0.2.9"), 6, 80));
    removed.removed = true;
    let index = CounterIndex::from_parts(
        &[shown(2, web()), shown(5, dns()), removed],
        &BTreeMap::from([(host("192.0.2.80"), 3)]),
    );
    assert_eq!(index.len(), 2, "a removed VIP is left out");
    let filter = counters::filter();

    let empty = counters::scrape(&client, &filter, &index).unwrap();
    assert!(!empty.lb_counters);
    assert_eq!(empty.vips[&web()].lb, [0; 4]);

    segment.lb_vip_created(2).unwrap();
    segment.lb_vip_created(5).unwrap();
    segment
        .lb_count(vpp_sim::stats::LbCounter::NextPacket, 0, 2, 3)
        .unwrap();
    segment
        .lb_count(vpp_sim::stats::LbCounter::NextPacket, 1, 2, 4)
        .unwrap();
    segment
        .lb_count(vpp_sim::stats::LbCounter::NoServer, 1, 5, 6)
        .unwrap();
    let route = segment
        .entry(vpp_sim::stats::ROUTE_TO)
        .expect("a standard entry");
    segment.resize_counter(route, 8).unwrap();
    segment.add_combined(route, 0, 3, 1, 100).unwrap();
    segment.add_combined(route, 1, 3, 2, 200).unwrap();

    let snap = counters::scrape(&client, &filter, &index).unwrap();
    assert!(snap.lb_counters);
    assert_eq!(snap.vips[&web()].lb, [7, 0, 0, 0]);
    assert_eq!(
        snap.vips[&web()].route,
        Some(Combined {
            packets: 3,
            bytes: 300
        })
    );
    assert_eq!(snap.vips[&dns()].lb, [0, 0, 0, 6]);
    assert_eq!(snap.vips[&dns()].route, None, "no FIB entry known");
}
