//! The VPP RPCs through the service with the real sync engine (`LbSyncer`) against an
//! in-process simulator, over loopback: info, lb state, sync, plan, overrides in the
//! simulator's journal, and UNAVAILABLE once VPP is gone.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use maglev_api::v1::maglev_client::MaglevClient;
use maglev_api::v1::maglev_server::MaglevServer;
use maglev_api::v1::*;
use maglev_core::plan::{Op, VipKey};
use maglev_core::weights::BackendState as CoreState;
use maglev_health::checker::{Checker, CheckerConfig};
use maglev_vpp::backoff::BackoffSettings;
use maglev_vpp::syncer::{LbSyncer, SyncerOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;
use vpp_binapi::api::lb::LbAsSetWeight;
use vpp_sim::{SimConfig, SimHandle, Simulator};

use super::{BuildInfo, MaglevService};

pub(crate) const CONFIG: &str = r"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.1
      ipv6-src-address: 2001:db8::1
      sync-interval: 1h
      startup-min-delay: 0s
      startup-max-delay: 0s
  backends:
    a:
      address: 127.0.0.1
    b:
      address: 127.0.0.2
    c:
      address: 127.0.0.3
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            a: { weight: 100 }
            b: { weight: 50 }
        - name: fallback
          backends:
            c: {}
    dns:
      address: 192.0.2.53
      protocol: udp
      port: 53
      pools:
        - name: all
          backends:
            c: {}
";

/// A simulator, the checker over static backends, the syncer between them, the service
/// over all three on loopback.
pub(crate) struct Stack {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) sim: SimHandle,
    pub(crate) checker: Checker,
    pub(crate) syncer: LbSyncer,
    pub(crate) client: MaglevClient<Channel>,
    pub(crate) config_tx: watch::Sender<Arc<maglev_core::config::Config>>,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Stack {
    pub(crate) async fn start() -> Self {
        Self::start_with(|s| s).await
    }

    pub(crate) async fn start_with(tune: impl FnOnce(MaglevService) -> MaglevService) -> Self {
        Self::start_full(false, tune).await
    }

    /// A stack whose simulator serves a stats socket, scraped every 20 ms.
    pub(crate) async fn start_with_stats() -> Self {
        Self::start_full(true, |s| s).await
    }

    async fn start_full(stats: bool, tune: impl FnOnce(MaglevService) -> MaglevService) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("api.sock");
        let mut sim_config = SimConfig::new(&api);
        if stats {
            sim_config.stats_socket = Some(dir.path().join("stats.sock"));
        }
        let sim = Simulator::start(sim_config).await.unwrap();
        let loaded = crate::config_file::load_str("test.yaml", CONFIG).expect("valid config");
        let checker = Checker::new(CheckerConfig::default());
        let transitions = checker.subscribe();
        checker.apply_config(loaded.specs).unwrap();
        let config = Arc::new(loaded.config);
        let mut options = SyncerOptions::new(&api);
        if stats {
            options.stats_socket = Some(dir.path().join("stats.sock"));
            options.scrape_interval = Duration::from_millis(20);
        }
        options.backoff =
            BackoffSettings::new(Duration::from_millis(20), Duration::from_millis(200)).unwrap();
        let states = {
            let checker = checker.clone();
            move || {
                checker
                    .snapshot()
                    .into_iter()
                    .map(|b| (b.name.to_string(), b.state))
                    .collect()
            }
        };
        let syncer = LbSyncer::start(options, Arc::clone(&config), states);
        let forwarder = tokio::spawn(crate::vpp::forward(transitions, syncer.clone()));
        let (config_tx, config_rx) = watch::channel(config);
        let build = BuildInfo::default();
        let service = tune(
            MaglevService::new(checker.clone(), config_rx, build)
                .with_vpp(Arc::new(syncer.clone())),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(MaglevServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let client = maglev_api::client::connect(&addr.to_string())
            .await
            .expect("connects");
        let stack = Self {
            _dir: dir,
            sim,
            checker,
            syncer,
            client,
            config_tx,
            forwarder,
        };
        stack
            .wait_for("every backend up and programmed", |s| {
                weights(&s.sim, "192.0.2.80")
                    == BTreeMap::from([
                        (ip("127.0.0.1"), 100),
                        (ip("127.0.0.2"), 50),
                        (ip("127.0.0.3"), 0),
                    ])
                    && ["a", "b", "c"]
                        .iter()
                        .all(|n| s.checker.state(n).unwrap().state == CoreState::Up)
            })
            .await;
        stack
    }

    /// Polls `ok` until it holds (20 s at most).
    pub(crate) async fn wait_for(&self, what: &str, ok: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !ok(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) async fn stop(self) {
        self.forwarder.abort();
        self.syncer.shutdown().await;
        self.checker.shutdown().await;
        self.sim.shutdown();
    }
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The used ASes of the VIP on `vip` as address -> weight.
pub(crate) fn weights(sim: &SimHandle, vip: &str) -> BTreeMap<IpAddr, u8> {
    let vip = ip(vip);
    sim.with_lb(|lb| {
        lb.as_dump(None)
            .into_iter()
            .filter(|a| a.vip.prefix == vip && a.flags & 1 == 1)
            .map(|a| (a.address, a.weight))
            .collect()
    })
}

/// `(address, weight)` of every `lb_as_set_weight` in the journal from `from` on.
fn weight_calls(sim: &SimHandle, from: usize) -> Vec<(IpAddr, u8)> {
    sim.journal()[from..]
        .iter()
        .filter_map(|e| e.message.as_any().downcast_ref::<LbAsSetWeight>())
        .map(|m| (m.as_address.to_ip().unwrap(), m.weight))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_info_and_lb_state_come_from_the_simulator() {
    let mut s = Stack::start().await;
    let info = s
        .client
        .get_vpp_info(GetVppInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        !info.version.is_empty() && info.version != "unknown",
        "{info:?}"
    );
    assert_eq!(info.pid, std::process::id());
    assert!(info.connecttime_ns > 0);
    assert_eq!(
        info.boottime_ns, 0,
        "unknown until the stats segment is read"
    );
    assert!(info.api_socket.ends_with("api.sock"));

    let state = s
        .client
        .get_vpplb_state(GetVpplbStateRequest {})
        .await
        .unwrap()
        .into_inner();
    let conf = state.conf.expect("conf");
    assert_eq!(conf.ip4_src_address, "192.0.2.1");
    assert_eq!(conf.ip6_src_address, "2001:db8::1");
    let names: Vec<_> = state.vips.iter().map(|v| v.frontend.as_str()).collect();
    assert_eq!(names, ["dns", "web"], "sorted by prefix");
    let web = &state.vips[1];
    assert_eq!((web.protocol(), web.port), (Protocol::Tcp, 80));
    assert_eq!(web.encap(), Encap::Gre4);
    assert!(web.new_flows_table_length > 0);
    let ases: Vec<_> = web
        .ases
        .iter()
        .map(|a| (a.backend.as_str(), a.weight, a.flags))
        .collect();
    assert_eq!(ases, [("a", 100, 1), ("b", 50, 1), ("c", 0, 1)]);
    let buckets: u32 = web.ases.iter().map(|a| a.buckets).sum();
    assert_eq!(buckets, web.new_flows_table_length, "every bucket owned");
    assert_eq!(web.ases[2].buckets, 0, "a weight-0 AS owns no bucket");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_reaches_vpp_at_once_without_a_transition() {
    let mut s = Stack::start().await;
    let mut events = s
        .client
        .watch_events(WatchRequest {
            backends: vec![],
            frontends: vec![],
            kinds: vec![EventKind::Backend.into()],
            log_level: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // The replay: one event per backend.
    for _ in 0..3 {
        let e = events.message().await.unwrap().unwrap();
        assert!(matches!(
            e.event,
            Some(event::Event::Backend(BackendEvent { replay: true, .. }))
        ));
    }
    let history = s.checker.state("b").unwrap().history.len();
    let before = s.sim.journal().len();
    let info = s
        .client
        .set_frontend_pool_backend_weight(SetWeightRequest {
            frontend: "web".into(),
            pool: "primary".into(),
            backend: "b".into(),
            weight: 10,
            reset: false,
        })
        .await
        .unwrap()
        .into_inner();
    let pools = &info.pools[0];
    assert_eq!(pools.backends[1].weight_override, Some(10));
    assert_eq!(pools.backends[1].effective_weight, 10);
    s.wait_for("the override in VPP", |s| {
        weights(&s.sim, "192.0.2.80").get(&ip("127.0.0.2")) == Some(&10)
    })
    .await;
    assert_eq!(weight_calls(&s.sim, before), [(ip("127.0.0.2"), 10)]);

    let after_set = s.sim.journal().len();
    s.client
        .set_frontend_pool_backend_weight(SetWeightRequest {
            frontend: "web".into(),
            pool: "primary".into(),
            backend: "b".into(),
            weight: 0,
            reset: true,
        })
        .await
        .unwrap();
    s.wait_for("the configured weight back", |s| {
        weights(&s.sim, "192.0.2.80").get(&ip("127.0.0.2")) == Some(&50)
    })
    .await;
    assert_eq!(weight_calls(&s.sim, after_set), [(ip("127.0.0.2"), 50)]);
    // No transition: the history did not grow and the stream stayed silent.
    assert_eq!(s.checker.state("b").unwrap().history.len(), history);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.message())
            .await
            .is_err(),
        "an override emits no backend event"
    );
    s.stop().await;
}

/// Changes a weight in VPP behind maglevd's back.
async fn drift(api: &std::path::Path, address: &str, weight: u8) {
    let client = vpp_binapi::client::Client::connect(
        api,
        vpp_binapi::client::ClientOptions::default().name("drift"),
    )
    .await
    .unwrap();
    let op = Op::AsSetWeight {
        key: VipKey::new("192.0.2.80/32".parse().unwrap(), 6, 80),
        address: ip(address),
        weight,
        flush: false,
    };
    let retval = maglev_vpp::adapter::request(&op)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(retval, 0);
    let _ = client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_is_what_the_next_sync_sends() {
    let mut s = Stack::start().await;
    let none = s
        .client
        .plan_vpplb_sync(PlanVpplbSyncRequest { frontend: None })
        .await
        .unwrap()
        .into_inner();
    assert!(none.ops.is_empty(), "no drift, nothing planned: {none:?}");

    drift(s.sim.api_socket(), "127.0.0.1", 7).await;
    let plan = s
        .client
        .plan_vpplb_sync(PlanVpplbSyncRequest {
            frontend: Some("web".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.ops.len(), 1, "{plan:?}");
    assert_eq!(plan.ops[0].kind(), LbSyncOpKind::AsSetWeight);
    assert_eq!(
        (plan.ops[0].backend.as_str(), plan.ops[0].weight),
        ("a", 100)
    );
    // Planning sent nothing.
    assert_eq!(
        weights(&s.sim, "192.0.2.80").get(&ip("127.0.0.1")),
        Some(&7)
    );

    let before = s.sim.journal().len();
    let sync = s
        .client
        .sync_vpplb_state(SyncVpplbStateRequest {
            frontend: Some("web".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sync.ops, plan.ops, "the sync sent what the plan showed");
    let summary = sync.summary.expect("summary");
    assert!(summary.ok);
    assert_eq!(
        (summary.frontend.as_str(), summary.weights_changed),
        ("web", 1)
    );
    assert_eq!(weight_calls(&s.sim, before), [(ip("127.0.0.1"), 100)]);

    // A full sync with no drift sends nothing.
    let all = s
        .client
        .sync_vpplb_state(SyncVpplbStateRequest { frontend: None })
        .await
        .unwrap()
        .into_inner();
    assert!(all.ops.is_empty() && all.summary.unwrap().ok);
    assert_eq!(
        s.client
            .sync_vpplb_state(SyncVpplbStateRequest {
                frontend: Some("nope".into())
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vpp_rpc_is_unavailable_once_vpp_is_gone() {
    let mut s = Stack::start().await;
    s.sim.shutdown();
    let syncer = s.syncer.clone();
    s.wait_for("the disconnect", |_| syncer.snapshot().vpp.is_none())
        .await;
    let c = &mut s.client;
    let codes = [
        c.get_vpp_info(GetVppInfoRequest {})
            .await
            .unwrap_err()
            .code(),
        c.get_vpplb_state(GetVpplbStateRequest {})
            .await
            .unwrap_err()
            .code(),
        c.sync_vpplb_state(SyncVpplbStateRequest { frontend: None })
            .await
            .unwrap_err()
            .code(),
        c.plan_vpplb_sync(PlanVpplbSyncRequest { frontend: None })
            .await
            .unwrap_err()
            .code(),
        c.get_vpplb_counters(GetVpplbCountersRequest {})
            .await
            .unwrap_err()
            .code(),
    ];
    assert_eq!(codes, [Code::Unavailable; 5]);
    s.stop().await;
}

/// The simulator's pool index of the live VIP on `vip`.
fn pool_index(sim: &SimHandle, vip: &str) -> u32 {
    let vip = ip(vip);
    sim.with_lb(|lb| {
        lb.vip_dump()
            .into_iter()
            .find(|v| v.prefix == vip)
            .map(|v| v.index)
            .expect("the VIP exists")
    })
}

/// GetVPPLBCounters until `ok` holds for the answer (UNAVAILABLE answers are retried).
async fn counters_where(
    client: &mut MaglevClient<Channel>,
    what: &str,
    ok: impl Fn(&VpplbCounters) -> bool,
) -> VpplbCounters {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match client.get_vpplb_counters(GetVpplbCountersRequest {}).await {
            Ok(reply) if ok(reply.get_ref()) => return reply.into_inner(),
            Ok(_) => {}
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_counters_come_from_the_scrape_and_follow_the_dataplane() {
    let mut s = Stack::start_with_stats().await;
    let first = counters_where(&mut s.client, "a scrape of both VIPs", |c| {
        c.vips.len() == 2
    })
    .await;
    assert!(first.scraped_at_unix_nanos > 0);
    let keys: Vec<_> = first
        .vips
        .iter()
        .map(|v| (v.frontend.as_str(), v.prefix.as_str(), v.protocol, v.port))
        .collect();
    assert_eq!(
        keys,
        [
            ("dns", "192.0.2.53/32", Protocol::Udp as i32, 53),
            ("web", "192.0.2.80/32", Protocol::Tcp as i32, 80),
        ],
        "sorted by prefix, named by frontend"
    );

    // The dataplane counts: each of the four counters and the route's packets and bytes
    // (`/net/route/to` at the prefix's FIB entry) land in their own field.
    let web = pool_index(&s.sim, "192.0.2.80");
    let dns = pool_index(&s.sim, "192.0.2.53");
    for (counter, by) in [(0, 11), (1, 3), (2, 5), (3, 7)] {
        assert!(s.sim.bump_vip_counter(web, counter, by));
    }
    assert!(s.sim.bump_vip_counter(dns, 1, 2));
    assert!(s.sim.bump_route_counter(ip("192.0.2.80"), 32, 13, 1700));
    // The last bump: a scrape that sees it sees every one before it.
    assert!(s.sim.bump_route_counter(ip("192.0.2.53"), 32, 2, 90));
    let dns_bytes = first
        .vips
        .iter()
        .find(|v| v.frontend == "dns")
        .map(|v| v.route_bytes);
    let after = counters_where(&mut s.client, "the bumped counters", |c| {
        c.vips
            .iter()
            .any(|v| v.frontend == "dns" && Some(v.route_bytes) > dns_bytes)
    })
    .await;
    let fields = |v: &LbVipCounters| {
        [
            v.existing_session_packets,
            v.first_session_packets,
            v.untracked_packets,
            v.no_server_packets,
            v.route_packets,
            v.route_bytes,
        ]
    };
    let by_frontend: BTreeMap<_, _> = after
        .vips
        .iter()
        .map(|v| (v.frontend.as_str(), fields(v)))
        .collect();
    let before: BTreeMap<_, _> = first
        .vips
        .iter()
        .map(|v| (v.frontend.clone(), fields(v)))
        .collect();
    let grew = |name: &str| {
        let (a, b) = (by_frontend[name], before[name]);
        std::array::from_fn::<u64, 6, _>(|i| a[i] - b[i])
    };
    assert_eq!(grew("web"), [11, 3, 5, 7, 13, 1700]);
    assert_eq!(grew("dns"), [0, 2, 0, 0, 2, 90]);
    assert!(after.scraped_at_unix_nanos >= first.scraped_at_unix_nanos);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_counters_are_unavailable_without_a_scrape_while_the_rest_works() {
    // Connected, but this VPP has no stats socket: no snapshot ever exists.
    let mut s = Stack::start().await;
    s.client.get_vpp_info(GetVppInfoRequest {}).await.unwrap();
    let status = s
        .client
        .get_vpplb_counters(GetVpplbCountersRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("not available yet"), "{status}");
    s.stop().await;
}
