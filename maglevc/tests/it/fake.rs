//! An in-process `maglev.v1` server with fixed, realistic data (two frontends, four backends,
//! two health checks, a VPP with two VIPs) that follows the operator actions and weight
//! overrides, so one-shot maglevc can be tested end to end over loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use maglev_api::v1::maglev_server::{Maglev, MaglevServer};
use maglev_api::v1::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

/// The version the fake reports.
pub(crate) const VERSION: &str = "0.1.0-fake";

/// The new-flow table length of every fake VIP.
const TABLE: u32 = 1024;

fn now_nanos() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// `secs` seconds ago, plus half a second so a rendered age never straddles a boundary.
fn ago(secs: i64) -> i64 {
    now_nanos() - secs * 1_000_000_000 - 500_000_000
}

#[derive(Clone)]
struct Member {
    name: &'static str,
    weight: u32,
    overridden: Option<u32>,
}

#[derive(Clone)]
struct Pool {
    name: &'static str,
    members: Vec<Member>,
}

#[derive(Clone)]
struct Frontend {
    name: &'static str,
    address: &'static str,
    protocol: Protocol,
    port: u32,
    description: &'static str,
    pools: Vec<Pool>,
}

/// The fake's mutable state.
struct State {
    frontends: Vec<Frontend>,
    backends: Vec<BackendInfo>,
}

impl State {
    fn new() -> Self {
        let member = |name, weight| Member {
            name,
            weight,
            overridden: None,
        };
        let transition =
            |from: BackendState, to: BackendState, secs, code: ResultCode, detail: &str| {
                TransitionRecord {
                    from: from.into(),
                    to: to.into(),
                    at_unix_nanos: ago(secs),
                    code: code.into(),
                    detail: detail.to_owned(),
                }
            };
        let backend = |name: &str,
                       address: &str,
                       state: BackendState,
                       check: &str,
                       frontends: &[&str],
                       transitions: Vec<TransitionRecord>,
                       last: Option<ProbeResult>| BackendInfo {
            name: name.to_owned(),
            address: address.to_owned(),
            state: state.into(),
            enabled: state != BackendState::Disabled,
            healthcheck: check.to_owned(),
            counter: if state == BackendState::Up { 2 } else { 0 },
            rise: 2,
            fall: 3,
            transitions,
            last_result: last,
            frontends: frontends.iter().map(|s| (*s).to_owned()).collect(),
        };
        let l7ok = || ProbeResult {
            code: ResultCode::L7ok.into(),
            detail: "HTTP 200".to_owned(),
            elapsed_ms: 3,
        };
        use BackendState as S;
        Self {
            frontends: vec![
                Frontend {
                    name: "web",
                    address: "192.0.2.80",
                    protocol: Protocol::Tcp,
                    port: 80,
                    description: "public web site",
                    pools: vec![
                        Pool {
                            name: "primary",
                            members: vec![member("nginx0", 100), member("nginx1", 50)],
                        },
                        Pool {
                            name: "backup",
                            members: vec![member("nginx2", 100)],
                        },
                    ],
                },
                Frontend {
                    name: "dns",
                    address: "192.0.2.53",
                    protocol: Protocol::Udp,
                    port: 53,
                    description: "",
                    pools: vec![Pool {
                        name: "main",
                        members: vec![member("dns0", 100)],
                    }],
                },
            ],
            backends: vec![
                backend(
                    "dns0",
                    "10.0.1.1",
                    S::Down,
                    "icmp",
                    &["dns"],
                    vec![
                        transition(S::Unknown, S::Up, 90_000, ResultCode::Icmpok, "echo reply"),
                        transition(
                            S::Up,
                            S::Down,
                            4_330,
                            ResultCode::Icmptout,
                            "no reply in 1s",
                        ),
                    ],
                    Some(ProbeResult {
                        code: ResultCode::Icmptout.into(),
                        detail: "no reply in 1s".to_owned(),
                        elapsed_ms: 1000,
                    }),
                ),
                backend(
                    "nginx0",
                    "10.0.0.1",
                    S::Up,
                    "http",
                    &["web"],
                    vec![transition(
                        S::Unknown,
                        S::Up,
                        12_000,
                        ResultCode::L7ok,
                        "HTTP 200",
                    )],
                    Some(l7ok()),
                ),
                backend(
                    "nginx1",
                    "10.0.0.2",
                    S::Up,
                    "http",
                    &["web"],
                    vec![transition(
                        S::Unknown,
                        S::Up,
                        12_000,
                        ResultCode::L7ok,
                        "HTTP 200",
                    )],
                    Some(l7ok()),
                ),
                backend(
                    "nginx2",
                    "10.0.0.3",
                    S::Up,
                    "http",
                    &["web"],
                    vec![transition(
                        S::Unknown,
                        S::Up,
                        12_000,
                        ResultCode::L7ok,
                        "HTTP 200",
                    )],
                    Some(l7ok()),
                ),
            ],
        }
    }

    fn backend(&self, name: &str) -> Result<&BackendInfo, Status> {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| Status::not_found(format!("backend {name:?} not found")))
    }

    fn frontend_index(&self, name: &str) -> Result<usize, Status> {
        self.frontends
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| Status::not_found(format!("frontend {name:?} not found")))
    }

    fn state_of(&self, name: &str) -> BackendState {
        self.backend(name)
            .map_or(BackendState::Unknown, BackendInfo::state)
    }

    /// A frontend as the API shows it: the first pool with an up member is active, and the
    /// active pool's buckets are shared in proportion to the effective weights.
    fn frontend_info(&self, f: &Frontend) -> FrontendInfo {
        let active = f
            .pools
            .iter()
            .position(|p| {
                p.members
                    .iter()
                    .any(|m| self.state_of(m.name) == BackendState::Up)
            })
            .unwrap_or(0);
        let mut pools = Vec::new();
        for (i, p) in f.pools.iter().enumerate() {
            let effective: Vec<u32> = p
                .members
                .iter()
                .map(|m| {
                    if i == active && self.state_of(m.name) == BackendState::Up {
                        m.overridden.unwrap_or(m.weight)
                    } else {
                        0
                    }
                })
                .collect();
            let total: u32 = effective.iter().sum();
            pools.push(PoolInfo {
                name: p.name.to_owned(),
                active: i == active,
                backends: p
                    .members
                    .iter()
                    .zip(&effective)
                    .map(|(m, &e)| PoolBackendInfo {
                        name: m.name.to_owned(),
                        weight: m.weight,
                        weight_override: m.overridden,
                        effective_weight: e,
                        state: self.state_of(m.name).into(),
                        buckets: (TABLE * e).checked_div(total).unwrap_or(0),
                        address: self
                            .backend(m.name)
                            .map(|b| b.address.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        let any_up = pools
            .iter()
            .any(|p| p.backends.iter().any(|b| b.effective_weight > 0));
        FrontendInfo {
            name: f.name.to_owned(),
            address: f.address.to_owned(),
            protocol: f.protocol.into(),
            port: f.port,
            pools,
            description: f.description.to_owned(),
            src_ip_sticky: f.name == "dns",
            flush_on_down: true,
            prefix: format!("{}/32", f.address),
            state: if any_up {
                FrontendState::Up
            } else {
                FrontendState::Down
            }
            .into(),
            encap: Encap::Gre4.into(),
            new_flows_table_length: TABLE,
            active_pool: u32::try_from(active).unwrap(),
        }
    }

    fn operator(
        &mut self,
        name: &str,
        to: BackendState,
        code: ResultCode,
    ) -> Result<BackendInfo, Status> {
        let b = self
            .backends
            .iter_mut()
            .find(|b| b.name == name)
            .ok_or_else(|| Status::not_found(format!("backend {name:?} not found")))?;
        let from = b.state();
        let pausing = matches!(code, ResultCode::Paused | ResultCode::Resumed);
        if pausing && from == BackendState::Disabled {
            return Err(Status::failed_precondition(format!(
                "backend {name:?} is disabled: enable it first"
            )));
        }
        if code == ResultCode::Enabled && from != BackendState::Disabled {
            return Ok(b.clone());
        }
        if from != to {
            b.transitions.push(TransitionRecord {
                from: from.into(),
                to: to.into(),
                at_unix_nanos: ago(0),
                code: code.into(),
                detail: String::new(),
            });
        }
        b.state = to.into();
        b.enabled = to != BackendState::Disabled;
        Ok(b.clone())
    }

    fn ops(&self) -> Vec<LbSyncOp> {
        vec![LbSyncOp {
            kind: LbSyncOpKind::AsSetWeight.into(),
            frontend: "web".to_owned(),
            prefix: "192.0.2.80/32".to_owned(),
            protocol: Protocol::Tcp.into(),
            port: 80,
            address: "10.0.0.2".to_owned(),
            backend: "nginx1".to_owned(),
            weight: 50,
            flush: false,
            encap: Encap::Unspecified.into(),
            src_ip_sticky: false,
            new_flows_table_length: 0,
        }]
    }
}

/// The fake service.
#[derive(Clone)]
pub(crate) struct Fake {
    state: Arc<Mutex<State>>,
}

/// The operator RPCs, as data: the state each leaves a backend in and the code of the
/// transition it records.
#[derive(Clone, Copy)]
enum OperatorRpc {
    Pause,
    Resume,
    Enable,
    Disable,
}

impl OperatorRpc {
    fn outcome(self) -> (BackendState, ResultCode) {
        match self {
            Self::Pause => (BackendState::Paused, ResultCode::Paused),
            // The fake's probes pass at once: a resumed backend is up again.
            Self::Resume => (BackendState::Up, ResultCode::Resumed),
            Self::Enable => (BackendState::Up, ResultCode::Enabled),
            Self::Disable => (BackendState::Disabled, ResultCode::Disabled),
        }
    }
}

impl Fake {
    /// Runs an operator RPC on the backend the request names.
    fn operate(
        &self,
        r: Request<BackendRequest>,
        rpc: OperatorRpc,
    ) -> Result<Response<BackendInfo>, Status> {
        let name = r.into_inner().name;
        let (state, code) = rpc.outcome();
        self.with(|s| s.operator(&name, state, code))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, Status>,
    ) -> Result<Response<T>, Status> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state).map(Response::new)
    }
}

fn health(name: &str) -> HealthCheckInfo {
    let http = name == "http";
    HealthCheckInfo {
        name: name.to_owned(),
        r#type: if http {
            HealthCheckType::Http
        } else {
            HealthCheckType::Icmp
        }
        .into(),
        port: if http { 80 } else { 0 },
        interval_ms: 2_000,
        fast_interval_ms: 500,
        down_interval_ms: 5_000,
        timeout_ms: 1_000,
        rise: 2,
        fall: 3,
        probe_ipv4_src: String::new(),
        probe_ipv6_src: String::new(),
        http: http.then(|| HttpCheckParams {
            path: "/healthz".to_owned(),
            host: String::new(),
            response_code_min: 200,
            response_code_max: 399,
            response_regexp: String::new(),
        }),
        tls: None,
        backends: if http {
            vec!["nginx0".into(), "nginx1".into(), "nginx2".into()]
        } else {
            vec!["dns0".into()]
        },
    }
}

#[tonic::async_trait]
impl Maglev for Fake {
    async fn list_frontends(
        &self,
        _: Request<ListFrontendsRequest>,
    ) -> Result<Response<ListFrontendsResponse>, Status> {
        self.with(|s| {
            Ok(ListFrontendsResponse {
                frontends: s.frontends.iter().map(|f| s.frontend_info(f)).collect(),
            })
        })
    }

    async fn get_frontend(
        &self,
        r: Request<GetFrontendRequest>,
    ) -> Result<Response<FrontendInfo>, Status> {
        let name = r.into_inner().name;
        self.with(|s| {
            let i = s.frontend_index(&name)?;
            Ok(s.frontend_info(&s.frontends[i]))
        })
    }

    async fn list_backends(
        &self,
        _: Request<ListBackendsRequest>,
    ) -> Result<Response<ListBackendsResponse>, Status> {
        self.with(|s| {
            Ok(ListBackendsResponse {
                backends: s.backends.clone(),
            })
        })
    }

    async fn get_backend(
        &self,
        r: Request<GetBackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        let name = r.into_inner().name;
        self.with(|s| s.backend(&name).cloned())
    }

    async fn pause_backend(
        &self,
        r: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.operate(r, OperatorRpc::Pause)
    }

    async fn resume_backend(
        &self,
        r: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.operate(r, OperatorRpc::Resume)
    }

    async fn enable_backend(
        &self,
        r: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.operate(r, OperatorRpc::Enable)
    }

    async fn disable_backend(
        &self,
        r: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.operate(r, OperatorRpc::Disable)
    }

    async fn list_health_checks(
        &self,
        _: Request<ListHealthChecksRequest>,
    ) -> Result<Response<ListHealthChecksResponse>, Status> {
        Ok(Response::new(ListHealthChecksResponse {
            healthchecks: vec![health("http"), health("icmp")],
        }))
    }

    async fn get_health_check(
        &self,
        r: Request<GetHealthCheckRequest>,
    ) -> Result<Response<HealthCheckInfo>, Status> {
        match r.into_inner().name.as_str() {
            name @ ("http" | "icmp") => Ok(Response::new(health(name))),
            name => Err(Status::not_found(format!(
                "health check {name:?} not found"
            ))),
        }
    }

    async fn set_frontend_pool_backend_weight(
        &self,
        r: Request<SetWeightRequest>,
    ) -> Result<Response<FrontendInfo>, Status> {
        let r = r.into_inner();
        self.with(|s| {
            if r.weight > 100 {
                return Err(Status::invalid_argument("weight over 100"));
            }
            let i = s.frontend_index(&r.frontend)?;
            let pool = s.frontends[i]
                .pools
                .iter_mut()
                .find(|p| p.name == r.pool)
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "no pool {:?} in frontend {:?}",
                        r.pool, r.frontend
                    ))
                })?;
            let member = pool
                .members
                .iter_mut()
                .find(|m| m.name == r.backend)
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "backend {:?} is not in pool {:?}",
                        r.backend, r.pool
                    ))
                })?;
            member.overridden = if r.reset { None } else { Some(r.weight) };
            Ok(s.frontend_info(&s.frontends[i]))
        })
    }

    type WatchEventsStream = ReceiverStream<Result<Event, Status>>;

    async fn watch_events(
        &self,
        r: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let r = r.into_inner();
        let backends: Vec<BackendInfo> = self.with(|s| Ok(s.backends.clone()))?.into_inner();
        let mut events: Vec<Event> = backends
            .iter()
            .filter(|b| r.backends.is_empty() || r.backends.contains(&b.name))
            .map(|b| Event {
                at_unix_nanos: ago(0),
                event: Some(event::Event::Backend(BackendEvent {
                    backend: b.name.clone(),
                    from: b.state,
                    to: b.state,
                    code: ResultCode::Unspecified.into(),
                    detail: String::new(),
                    replay: true,
                })),
            })
            .collect();
        if r.kinds.contains(&i32::from(EventKind::Log)) {
            events.push(Event {
                at_unix_nanos: ago(0),
                event: Some(event::Event::Log(LogEvent {
                    level: LogLevel::Info.into(),
                    name: "vpp-lbsync-done".to_owned(),
                    target: "maglev_vpp::syncer".to_owned(),
                    fields: vec![LogField {
                        key: "ops".to_owned(),
                        value: "0".to_owned(),
                    }],
                })),
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            for e in events {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            // Live events: none; the stream stays open until the client leaves.
            tx.closed().await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn check_config(
        &self,
        _: Request<CheckConfigRequest>,
    ) -> Result<Response<CheckConfigResponse>, Status> {
        Ok(Response::new(CheckConfigResponse {
            ok: true,
            parse_error: None,
            semantic_errors: vec![],
            path: "/etc/maglev/maglev.yaml".to_owned(),
        }))
    }

    async fn reload_config(
        &self,
        _: Request<ReloadConfigRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        Ok(Response::new(ReloadConfigResponse {
            ok: false,
            parse_error: None,
            semantic_errors: vec![ConfigError {
                file: "/etc/maglev/maglev.yaml".to_owned(),
                line: 42,
                column: 9,
                key: "frontends.web.pools[0].backends[2]".to_owned(),
                message: "unknown backend \"nginx9\"".to_owned(),
            }],
            path: "/etc/maglev/maglev.yaml".to_owned(),
            backends_added: vec![],
            backends_restarted: vec![],
            backends_removed: vec![],
        }))
    }

    async fn get_vpp_info(
        &self,
        _: Request<GetVppInfoRequest>,
    ) -> Result<Response<VppInfo>, Status> {
        Ok(Response::new(VppInfo {
            version: "25.10-release".to_owned(),
            build_date: "2025-10-29T10:00:00".to_owned(),
            build_directory: "/build/vpp".to_owned(),
            pid: 4242,
            boottime_ns: ago(3 * 86_400 + 7_230),
            connecttime_ns: ago(4_330),
            api_socket: "/run/vpp/api.sock".to_owned(),
        }))
    }

    async fn get_vpplb_state(
        &self,
        _: Request<GetVpplbStateRequest>,
    ) -> Result<Response<VpplbState>, Status> {
        let as_ = |address: &str, backend: &str, weight, buckets| LbAs {
            address: address.to_owned(),
            weight,
            flags: 1,
            buckets,
            backend: backend.to_owned(),
        };
        Ok(Response::new(VpplbState {
            conf: Some(LbConf {
                ip4_src_address: "192.0.2.1".to_owned(),
                ip6_src_address: "2001:db8::1".to_owned(),
                sticky_buckets_per_core: 65_536,
                flow_timeout_s: 40,
            }),
            vips: vec![
                LbVip {
                    prefix: "192.0.2.53/32".to_owned(),
                    protocol: Protocol::Udp.into(),
                    port: 53,
                    encap: Encap::Gre4.into(),
                    src_ip_sticky: true,
                    new_flows_table_length: TABLE,
                    frontend: "dns".to_owned(),
                    ases: vec![as_("10.0.1.1", "dns0", 0, 0)],
                },
                LbVip {
                    prefix: "192.0.2.80/32".to_owned(),
                    protocol: Protocol::Tcp.into(),
                    port: 80,
                    encap: Encap::Gre4.into(),
                    src_ip_sticky: false,
                    new_flows_table_length: TABLE,
                    frontend: "web".to_owned(),
                    ases: vec![
                        as_("10.0.0.1", "nginx0", 100, 683),
                        as_("10.0.0.2", "nginx1", 50, 341),
                        as_("10.0.0.3", "nginx2", 0, 0),
                    ],
                },
            ],
        }))
    }

    async fn sync_vpplb_state(
        &self,
        r: Request<SyncVpplbStateRequest>,
    ) -> Result<Response<SyncVpplbStateResponse>, Status> {
        let frontend = r.into_inner().frontend;
        self.with(|s| {
            if let Some(f) = &frontend {
                s.frontend_index(f)?;
            }
            Ok(SyncVpplbStateResponse {
                ops: s.ops(),
                summary: Some(SyncSummary {
                    frontend: frontend.unwrap_or_default(),
                    ok: true,
                    error: String::new(),
                    vips_added: 0,
                    vips_deleted: 0,
                    ases_added: 0,
                    ases_deleted: 0,
                    weights_changed: 1,
                    flushes: 0,
                    duration_ms: 2,
                }),
            })
        })
    }

    async fn get_vpplb_counters(
        &self,
        _: Request<GetVpplbCountersRequest>,
    ) -> Result<Response<VpplbCounters>, Status> {
        Ok(Response::new(VpplbCounters {
            scraped_at_unix_nanos: ago(3),
            vips: vec![LbVipCounters {
                frontend: "web".to_owned(),
                prefix: "192.0.2.80/32".to_owned(),
                protocol: Protocol::Tcp.into(),
                port: 80,
                existing_session_packets: 1_234_567,
                first_session_packets: 8_910,
                untracked_packets: 0,
                no_server_packets: 2,
                route_packets: 1_243_479,
                route_bytes: 98_765_432,
            }],
        }))
    }

    async fn plan_vpplb_sync(
        &self,
        r: Request<PlanVpplbSyncRequest>,
    ) -> Result<Response<PlanVpplbSyncResponse>, Status> {
        let frontend = r.into_inner().frontend;
        self.with(|s| {
            if let Some(f) = &frontend {
                s.frontend_index(f)?;
            }
            Ok(PlanVpplbSyncResponse { ops: s.ops() })
        })
    }

    async fn preview_change(
        &self,
        r: Request<PreviewChangeRequest>,
    ) -> Result<Response<PreviewChangeResponse>, Status> {
        let r = r.into_inner();
        self.with(|s| {
            s.frontend_index(&r.frontend)?;
            s.backend(&r.backend)?;
            let share = |backend: &str, weight, buckets| BucketShare {
                backend: backend.to_owned(),
                weight,
                buckets,
            };
            Ok(PreviewChangeResponse {
                table_length: TABLE,
                changed_buckets: 683,
                moves: vec![BucketMove {
                    from_backend: "nginx0".to_owned(),
                    to_backend: "nginx1".to_owned(),
                    buckets: 683,
                }],
                before: vec![share("nginx0", 100, 683), share("nginx1", 50, 341)],
                after: vec![share("nginx0", 0, 0), share("nginx1", 50, 1024)],
            })
        })
    }

    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<VersionInfo>, Status> {
        Ok(Response::new(VersionInfo {
            version: VERSION.to_owned(),
            git_commit: "0123abc".to_owned(),
            build_date: "2026-12-03".to_owned(),
        }))
    }
}

/// A fake server on a loopback port of its own, served from a thread with its own runtime
/// until the process ends.
pub(crate) fn start() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let fake = Fake {
                state: Arc::new(Mutex::new(State::new())),
            };
            tonic::transport::Server::builder()
                .add_service(MaglevServer::new(fake))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}
