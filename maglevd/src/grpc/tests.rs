//! The service through the `maglev-api` client on loopback: read RPCs, the guards, error
//! codes, read-only mode, the VPP side (absent and faked), and PreviewChange against
//! `maglev::disruption`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_api::v1::maglev_client::MaglevClient;
use maglev_api::v1::maglev_server::MaglevServer;
use maglev_api::v1::*;
use maglev_core::plan::{Op, VipKey};
use maglev_core::weights::{BackendState as CoreState, WeightOverrides};
use maglev_health::checker::{Checker, CheckerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;

use super::{
    BuildInfo, LbCounters, LbState, MaglevService, SyncReport, SyncScope, VppError, VppInfo,
    VppSide,
};

const CONFIG: &str = r"
maglev:
  healthchecks:
    tcp-check:
      type: tcp
      port: 9
  backends:
    a:
      address: 127.0.0.1
    b:
      address: 127.0.0.2
    c:
      address: 127.0.0.3
    d:
      address: 127.0.0.4
      healthcheck: tcp-check
      enabled: false
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
            d: {}
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

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A VPP side that records overrides and answers with a fixed plan.
#[derive(Default)]
struct FakeVpp {
    overrides: Mutex<WeightOverrides>,
    plans: Mutex<Vec<SyncScope>>,
}

impl FakeVpp {
    fn plan_ops() -> Vec<Op> {
        let key = VipKey::new("192.0.2.80/32".parse().unwrap(), 6, 80);
        vec![Op::AsSetWeight {
            key,
            address: ip("127.0.0.2"),
            weight: 0,
            flush: true,
        }]
    }
}

#[tonic::async_trait]
impl VppSide for FakeVpp {
    fn info(&self) -> Result<VppInfo, VppError> {
        Err(VppError::NotConnected)
    }

    async fn lb_state(&self) -> Result<LbState, VppError> {
        Err(VppError::NotConnected)
    }

    fn counters(&self) -> Result<LbCounters, VppError> {
        Err(VppError::NotYet("lb counters"))
    }

    async fn plan(&self, scope: SyncScope) -> Result<Vec<Op>, VppError> {
        self.plans.lock().unwrap().push(scope);
        Ok(Self::plan_ops())
    }

    async fn sync(&self, _: SyncScope) -> Result<SyncReport, VppError> {
        Err(VppError::Failed("not in this test".to_owned()))
    }

    fn weight_overrides(&self) -> WeightOverrides {
        self.overrides.lock().unwrap().clone()
    }

    async fn set_weight_override(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: Option<u8>,
    ) -> Result<(), VppError> {
        let mut overrides = self.overrides.lock().unwrap();
        match weight {
            Some(w) => overrides.set(frontend, pool, backend, w),
            None => {
                overrides.remove(frontend, pool, backend);
            }
        }
        Ok(())
    }
}

struct Harness {
    client: MaglevClient<Channel>,
    channel: Channel,
    checker: Checker,
}

/// The service over the test config, its static backends up.
async fn service(vpp: Option<Arc<FakeVpp>>, read_only: bool) -> (MaglevService, Checker) {
    let loaded = crate::config_file::load_str("test.yaml", CONFIG).expect("valid config");
    let checker = Checker::new(CheckerConfig::default());
    checker.apply_config(loaded.specs).unwrap();
    // Static backends resolve up on their first cycle.
    for name in ["a", "b", "c"] {
        let mut waited = Duration::ZERO;
        while checker.state(name).unwrap().state != CoreState::Up {
            assert!(waited < Duration::from_secs(10), "{name} never came up");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += Duration::from_millis(10);
        }
    }
    // A receiver keeps the last value after its sender is gone.
    let (_, rx) = watch::channel(Arc::new(loaded.config));
    let build = BuildInfo {
        version: "1.2.3".to_owned(),
        git_commit: "abcdef".to_owned(),
        build_date: "2026-12-03".to_owned(),
    };
    let mut service = MaglevService::new(checker.clone(), rx, build).read_only(read_only);
    if let Some(vpp) = vpp {
        service = service.with_vpp(vpp);
    }
    (service, checker)
}

async fn start(vpp: Option<Arc<FakeVpp>>, read_only: bool) -> Harness {
    let (service, checker) = service(vpp, read_only).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MaglevServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let client = MaglevClient::new(channel.clone());
    Harness {
        client,
        channel,
        checker,
    }
}

fn member<'a>(frontend: &'a FrontendInfo, pool: &str, backend: &str) -> &'a PoolBackendInfo {
    frontend
        .pools
        .iter()
        .find(|p| p.name == pool)
        .and_then(|p| p.backends.iter().find(|b| b.name == backend))
        .unwrap_or_else(|| panic!("{pool}/{backend} missing"))
}

#[tokio::test]
async fn frontends_in_config_order_with_weights_and_bucket_shares() {
    let mut h = start(None, false).await;
    let list = h
        .client
        .list_frontends(ListFrontendsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["web", "dns"]);

    let web = &list.frontends[0];
    assert_eq!(web.state(), FrontendState::Up);
    assert_eq!(web.protocol(), Protocol::Tcp);
    assert_eq!(web.prefix, "192.0.2.80/32");
    assert_eq!(web.active_pool, 0);
    let (a, b, c, d) = (
        member(web, "primary", "a"),
        member(web, "primary", "b"),
        member(web, "fallback", "c"),
        member(web, "primary", "d"),
    );
    assert_eq!(
        (a.weight, a.effective_weight, a.weight_override),
        (100, 100, None)
    );
    assert_eq!((b.weight, b.effective_weight), (50, 50));
    assert_eq!(c.effective_weight, 0, "standby pool");
    assert_eq!(d.state(), BackendState::Disabled);
    assert_eq!(
        a.buckets + b.buckets,
        web.new_flows_table_length,
        "the active backends own the whole table"
    );
    assert!(a.buckets > b.buckets, "{} vs {}", a.buckets, b.buckets);
    assert_eq!(c.buckets + d.buckets, 0);

    let dns = h
        .client
        .get_frontend(GetFrontendRequest { name: "dns".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(member(&dns, "all", "c").buckets, dns.new_flows_table_length);

    let missing = h
        .client
        .get_frontend(GetFrontendRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn backends_and_health_checks() {
    let mut h = start(None, false).await;
    let backends = h
        .client
        .list_backends(ListBackendsRequest {})
        .await
        .unwrap()
        .into_inner()
        .backends;
    let names: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);

    let c = h
        .client
        .get_backend(GetBackendRequest { name: "c".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.ip().unwrap(), ip("127.0.0.3"));
    assert_eq!(c.frontends, ["web", "dns"]);
    assert_eq!(c.healthcheck, "");
    let last = c.transitions.last().expect("a transition to up");
    assert_eq!(
        (last.from(), last.to()),
        (BackendState::Unknown, BackendState::Up)
    );
    assert_eq!(last.code(), ResultCode::Static);
    assert!(last.at().is_some());

    let err = h
        .client
        .get_backend(GetBackendRequest { name: "zz".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let check = h
        .client
        .get_health_check(GetHealthCheckRequest {
            name: "tcp-check".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.r#type(), HealthCheckType::Tcp);
    assert_eq!(check.port, 9);
    assert_eq!(check.backends, ["d"]);
    let all = h
        .client
        .list_health_checks(ListHealthChecksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.healthchecks.len(), 1);
    let err = h
        .client
        .get_health_check(GetHealthCheckRequest { name: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn operator_actions_and_their_guards() {
    let mut h = start(None, false).await;
    let req = |name: &str| BackendRequest { name: name.into() };

    // d is disabled: pause and resume are refused.
    for status in [
        h.client.pause_backend(req("d")).await.unwrap_err(),
        h.client.resume_backend(req("d")).await.unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    }
    let err = h.client.pause_backend(req("zz")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let paused = h.client.pause_backend(req("a")).await.unwrap().into_inner();
    assert_eq!(paused.state(), BackendState::Paused);
    assert_eq!(h.checker.state("a").unwrap().state, CoreState::Paused);
    let web = h
        .client
        .get_frontend(GetFrontendRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(member(&web, "primary", "a").effective_weight, 0);
    assert_eq!(member(&web, "primary", "a").buckets, 0);

    let disabled = h
        .client
        .disable_backend(req("b"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disabled.state(), BackendState::Disabled);
    assert!(!disabled.enabled);
    let enabled = h
        .client
        .enable_backend(req("b"))
        .await
        .unwrap()
        .into_inner();
    assert!(enabled.enabled);
    assert_ne!(enabled.state(), BackendState::Disabled);
}

#[tokio::test]
async fn read_only_mode_refuses_every_mutation() {
    let vpp = Arc::new(FakeVpp::default());
    let mut h = start(Some(vpp), true).await;
    let name = BackendRequest { name: "a".into() };
    let statuses = [
        h.client.pause_backend(name.clone()).await.unwrap_err(),
        h.client.resume_backend(name.clone()).await.unwrap_err(),
        h.client.enable_backend(name.clone()).await.unwrap_err(),
        h.client.disable_backend(name).await.unwrap_err(),
        h.client
            .set_frontend_pool_backend_weight(SetWeightRequest {
                frontend: "web".into(),
                pool: "primary".into(),
                backend: "a".into(),
                weight: 10,
                reset: false,
            })
            .await
            .unwrap_err(),
        h.client
            .sync_vpplb_state(SyncVpplbStateRequest { frontend: None })
            .await
            .unwrap_err(),
        h.client
            .reload_config(ReloadConfigRequest {})
            .await
            .unwrap_err(),
    ];
    for status in statuses {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    assert_eq!(h.checker.state("a").unwrap().state, CoreState::Up);
    // Reads still work.
    h.client
        .list_frontends(ListFrontendsRequest {})
        .await
        .unwrap();
}

#[tokio::test]
async fn vpp_rpcs_are_unavailable_without_vpp() {
    let mut h = start(None, false).await;
    let statuses = [
        h.client
            .get_vpp_info(GetVppInfoRequest {})
            .await
            .unwrap_err(),
        h.client
            .get_vpplb_state(GetVpplbStateRequest {})
            .await
            .unwrap_err(),
        h.client
            .sync_vpplb_state(SyncVpplbStateRequest { frontend: None })
            .await
            .unwrap_err(),
        h.client
            .get_vpplb_counters(GetVpplbCountersRequest {})
            .await
            .unwrap_err(),
        h.client
            .plan_vpplb_sync(PlanVpplbSyncRequest { frontend: None })
            .await
            .unwrap_err(),
        h.client
            .set_frontend_pool_backend_weight(SetWeightRequest {
                frontend: "web".into(),
                pool: "primary".into(),
                backend: "a".into(),
                weight: 10,
                reset: false,
            })
            .await
            .unwrap_err(),
    ];
    for status in statuses {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
}

#[tokio::test]
async fn set_weight_validates_then_overrides_through_the_vpp_side() {
    let vpp = Arc::new(FakeVpp::default());
    let mut h = start(Some(Arc::clone(&vpp)), false).await;
    let set = |frontend: &str, pool: &str, backend: &str, weight: u32| SetWeightRequest {
        frontend: frontend.into(),
        pool: pool.into(),
        backend: backend.into(),
        weight,
        reset: false,
    };
    let cases = [
        (set("web", "primary", "a", 101), Code::InvalidArgument),
        (set("web", "fallback", "a", 10), Code::InvalidArgument),
        (set("web", "nope", "a", 10), Code::InvalidArgument),
        (set("nope", "primary", "a", 10), Code::NotFound),
        (set("web", "primary", "zz", 10), Code::NotFound),
    ];
    for (request, code) in cases {
        let status = h
            .client
            .set_frontend_pool_backend_weight(request.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{request:?}: {status:?}");
    }
    assert!(vpp.weight_overrides().is_empty(), "nothing applied");

    let web = h
        .client
        .set_frontend_pool_backend_weight(set("web", "primary", "b", 100))
        .await
        .unwrap()
        .into_inner();
    let b = member(&web, "primary", "b");
    assert_eq!(
        (b.weight, b.weight_override, b.effective_weight),
        (50, Some(100), 100)
    );
    assert_eq!(
        member(&web, "primary", "a").buckets,
        b.buckets,
        "equal weights share the table evenly"
    );
    assert_eq!(vpp.weight_overrides().get("web", "primary", "b"), Some(100));

    let reset = SetWeightRequest {
        reset: true,
        ..set("web", "primary", "b", 0)
    };
    let web = h
        .client
        .set_frontend_pool_backend_weight(reset)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(member(&web, "primary", "b").weight_override, None);
    assert_eq!(member(&web, "primary", "b").effective_weight, 50);
}

#[tokio::test]
async fn plan_names_frontends_and_backends_and_checks_the_scope() {
    let vpp = Arc::new(FakeVpp::default());
    let mut h = start(Some(Arc::clone(&vpp)), false).await;
    let plan = h
        .client
        .plan_vpplb_sync(PlanVpplbSyncRequest {
            frontend: Some("web".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.ops.len(), 1);
    let op = &plan.ops[0];
    assert_eq!(op.kind(), LbSyncOpKind::AsSetWeight);
    assert_eq!(
        (
            op.frontend.as_str(),
            op.backend.as_str(),
            op.address.as_str()
        ),
        ("web", "b", "127.0.0.2")
    );
    assert_eq!((op.weight, op.flush, op.port), (0, true, 80));
    assert_eq!(
        *vpp.plans.lock().unwrap(),
        [SyncScope::Frontend("web".into())]
    );

    let err = h
        .client
        .plan_vpplb_sync(PlanVpplbSyncRequest {
            frontend: Some("nope".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = h
        .client
        .get_vpplb_counters(GetVpplbCountersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn preview_change_matches_disruption_on_the_same_input() {
    let mut h = start(None, false).await;
    // The web VIP as VPP would hold it: a 100, b 50, d disabled 0, c standby 0; sorted.
    let before = [
        (ip("127.0.0.1"), 100),
        (ip("127.0.0.2"), 50),
        (ip("127.0.0.3"), 0),
        (ip("127.0.0.4"), 0),
    ];
    let with_b = |w: u8| before.map(|(a, x)| (a, if a == ip("127.0.0.2") { w } else { x }));
    let removed: Vec<(IpAddr, u8)> = before
        .iter()
        .copied()
        .filter(|(a, _)| *a != ip("127.0.0.2"))
        .collect();
    type Ases = Vec<(IpAddr, u8)>;
    let cases: [(ChangeKind, u32, Ases); 3] = [
        (ChangeKind::Drain, 0, with_b(0).to_vec()),
        (ChangeKind::SetWeight, 100, with_b(100).to_vec()),
        (ChangeKind::Remove, 0, removed),
    ];
    for (kind, weight, after) in cases {
        let preview = h
            .client
            .preview_change(PreviewChangeRequest {
                frontend: "web".into(),
                backend: "b".into(),
                kind: kind.into(),
                weight,
            })
            .await
            .unwrap()
            .into_inner();
        let expected = maglev_core::maglev::disruption(1024, &before, &after).unwrap();
        assert_eq!(preview.table_length, 1024);
        assert_eq!(preview.changed_buckets, expected.changed, "{kind:?}");
        assert!(preview.changed_buckets > 0, "{kind:?}");
        let moved: u32 = preview.moves.iter().map(|m| m.buckets).sum();
        assert_eq!(moved, preview.changed_buckets, "{kind:?}");
        let total = |shares: &[BucketShare]| shares.iter().map(|s| s.buckets).sum::<u32>();
        assert_eq!(total(&preview.before), 1024);
        assert_eq!(total(&preview.after), 1024);
        if kind != ChangeKind::SetWeight {
            // Only b loses buckets, and only a (the other active backend) gains them.
            assert!(
                preview
                    .moves
                    .iter()
                    .all(|m| m.from_backend == "b" && m.to_backend == "a"),
                "{kind:?}: {:?}",
                preview.moves
            );
        }
    }

    let bad = [
        (
            PreviewChangeRequest {
                frontend: "dns".into(),
                backend: "a".into(),
                kind: ChangeKind::Drain.into(),
                weight: 0,
            },
            Code::NotFound,
        ),
        (
            PreviewChangeRequest {
                frontend: "web".into(),
                backend: "a".into(),
                kind: ChangeKind::Unspecified.into(),
                weight: 0,
            },
            Code::InvalidArgument,
        ),
        (
            PreviewChangeRequest {
                frontend: "web".into(),
                backend: "a".into(),
                kind: ChangeKind::SetWeight.into(),
                weight: 500,
            },
            Code::InvalidArgument,
        ),
    ];
    for (request, code) in bad {
        let status = h.client.preview_change(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
    }
}

#[tokio::test]
async fn get_version_reports_the_build() {
    let mut h = start(None, false).await;
    let v = h
        .client
        .get_version(GetVersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            v.version.as_str(),
            v.git_commit.as_str(),
            v.build_date.as_str()
        ),
        ("1.2.3", "abcdef", "2026-12-03")
    );
}

/// Arbitrary bytes as request bodies: decoding never panics, and whatever decodes is answered
/// (with a reply or a status), never a panic.
#[test]
fn arbitrary_request_bodies_never_panic() {
    use maglev_api::v1::maglev_server::Maglev;
    use proptest::prelude::*;
    use prost::Message;
    use tonic::Request;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (service, _checker) = rt.block_on(service(Some(Arc::new(FakeVpp::default())), false));
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &(0u8..8, proptest::collection::vec(any::<u8>(), 0..256)),
            |(rpc, bytes)| {
                rt.block_on(async {
                    let s = &service;
                    // Each arm decodes one request type; the result of the call is either.
                    let _ = match rpc {
                        0 => match GetFrontendRequest::decode(&bytes[..]) {
                            Ok(r) => s.get_frontend(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        1 => match GetBackendRequest::decode(&bytes[..]) {
                            Ok(r) => s.get_backend(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        2 => match BackendRequest::decode(&bytes[..]) {
                            Ok(r) => s.disable_backend(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        3 => match SetWeightRequest::decode(&bytes[..]) {
                            Ok(r) => s
                                .set_frontend_pool_backend_weight(Request::new(r))
                                .await
                                .map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        4 => match PreviewChangeRequest::decode(&bytes[..]) {
                            Ok(r) => s.preview_change(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        5 => match PlanVpplbSyncRequest::decode(&bytes[..]) {
                            Ok(r) => s.plan_vpplb_sync(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        6 => match GetHealthCheckRequest::decode(&bytes[..]) {
                            Ok(r) => s.get_health_check(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                        _ => match WatchRequest::decode(&bytes[..]) {
                            Ok(r) => s.watch_events(Request::new(r)).await.map(|_| ()),
                            Err(_) => Ok(()),
                        },
                    };
                });
                Ok(())
            },
        )
        .unwrap();
}

#[tokio::test]
async fn watch_events_replays_then_streams_transitions() {
    let mut h = start(None, false).await;
    let mut stream = h
        .client
        .watch_events(WatchRequest {
            backends: vec!["a".into()],
            frontends: vec!["dns".into()],
            kinds: vec![],
            log_level: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream stays open")
            .event
            .expect("an event")
    };
    match next().await {
        event::Event::Backend(b) => {
            assert_eq!(b.backend, "a");
            assert!(b.replay);
            assert_eq!((b.from(), b.to()), (BackendState::Up, BackendState::Up));
        }
        other => panic!("expected the backend replay, got {other:?}"),
    }
    match next().await {
        event::Event::Frontend(f) => {
            assert_eq!(f.frontend, "dns");
            assert!(f.replay);
            assert_eq!(f.to(), FrontendState::Up);
        }
        other => panic!("expected the frontend replay, got {other:?}"),
    }
    // b is filtered out; a's pause comes through.
    h.checker.pause("b").unwrap();
    h.checker.pause("a").unwrap();
    match next().await {
        event::Event::Backend(b) => {
            assert_eq!(b.backend, "a");
            assert!(!b.replay);
            assert_eq!((b.from(), b.to()), (BackendState::Up, BackendState::Paused));
            assert_eq!(b.code(), ResultCode::Paused);
        }
        other => panic!("expected a's transition, got {other:?}"),
    }
}

/// Raw request bodies through a real client: the bytes go out as the message, whatever they
/// are.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let len = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, len).to_vec()))
    }
}

/// Whether `bytes` decode as `M`.
fn decodes<M: prost::Message + Default>(bytes: &[u8]) -> bool {
    M::decode(bytes).is_ok()
}

/// One RPC: its name, whether it streams, and whether bytes decode as its request.
type Rpc = (&'static str, bool, fn(&[u8]) -> bool);

/// Every RPC.
const RPCS: &[Rpc] = &[
    ("ListFrontends", false, decodes::<ListFrontendsRequest>),
    ("GetFrontend", false, decodes::<GetFrontendRequest>),
    ("ListBackends", false, decodes::<ListBackendsRequest>),
    ("GetBackend", false, decodes::<GetBackendRequest>),
    ("PauseBackend", false, decodes::<BackendRequest>),
    ("ResumeBackend", false, decodes::<BackendRequest>),
    ("EnableBackend", false, decodes::<BackendRequest>),
    ("DisableBackend", false, decodes::<BackendRequest>),
    (
        "ListHealthChecks",
        false,
        decodes::<ListHealthChecksRequest>,
    ),
    ("GetHealthCheck", false, decodes::<GetHealthCheckRequest>),
    (
        "SetFrontendPoolBackendWeight",
        false,
        decodes::<SetWeightRequest>,
    ),
    ("WatchEvents", true, decodes::<WatchRequest>),
    ("CheckConfig", false, decodes::<CheckConfigRequest>),
    ("ReloadConfig", false, decodes::<ReloadConfigRequest>),
    ("GetVPPInfo", false, decodes::<GetVppInfoRequest>),
    ("GetVPPLBState", false, decodes::<GetVpplbStateRequest>),
    ("SyncVPPLBState", false, decodes::<SyncVpplbStateRequest>),
    (
        "GetVPPLBCounters",
        false,
        decodes::<GetVpplbCountersRequest>,
    ),
    ("PlanVPPLBSync", false, decodes::<PlanVpplbSyncRequest>),
    ("PreviewChange", false, decodes::<PreviewChangeRequest>),
    ("GetVersion", false, decodes::<GetVersionRequest>),
];

/// Arbitrary bytes as the request body of every RPC, through a real loopback server: each
/// call ends in time with a reply or a status (an error status whenever the bytes do not
/// decode), never a broken connection, and the server answers normally afterwards.
#[test]
fn hostile_request_bodies_over_loopback_get_a_status() {
    use proptest::prelude::*;
    use tonic::codegen::http::uri::PathAndQuery;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut h = rt.block_on(start(Some(Arc::new(FakeVpp::default())), false));
    let channel = h.channel.clone();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 512,
        ..proptest::test_runner::Config::default()
    });
    runner
        .run(
            &(
                0..RPCS.len(),
                proptest::collection::vec(any::<u8>(), 0..512),
            ),
            |(index, bytes)| {
                let (rpc, streams, valid) = RPCS[index];
                let decodes = valid(&bytes);
                let result = rt.block_on(async {
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.expect("the server is up");
                    let path = PathAndQuery::try_from(format!("/maglev.v1.Maglev/{rpc}")).unwrap();
                    let call = async {
                        if streams {
                            let mut stream = grpc
                                .server_streaming(
                                    tonic::Request::new(bytes.clone()),
                                    path,
                                    RawCodec,
                                )
                                .await?
                                .into_inner();
                            // The replay's first event, or the stream's end.
                            stream.message().await.map(drop)
                        } else {
                            grpc.unary(tonic::Request::new(bytes.clone()), path, RawCodec)
                                .await
                                .map(drop)
                        }
                    };
                    tokio::time::timeout(Duration::from_secs(10), call).await
                });
                let result = result
                    .map_err(|_| TestCaseError::fail(format!("{rpc} did not answer in time")))?;
                if let Err(status) = &result {
                    prop_assert!(
                        !matches!(status.code(), Code::Unknown | Code::Cancelled),
                        "{rpc}: a broken call, not a status: {status:?}"
                    );
                }
                if !decodes {
                    prop_assert!(result.is_err(), "{rpc}: undecodable bytes accepted");
                }
                Ok(())
            },
        )
        .unwrap();
    let list = rt
        .block_on(h.client.list_frontends(ListFrontendsRequest {}))
        .expect("still serving")
        .into_inner();
    assert_eq!(list.frontends.len(), 2);
}
