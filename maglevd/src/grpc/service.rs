//! [`MaglevService`]: the `maglev.v1.Maglev` server trait over the checker, the current config,
//! the Maglev table and an optional [`VppSide`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use maglev_api::v1::maglev_server::Maglev;
use maglev_api::v1::*;
use maglev_core::config::{Config, Frontend};
use maglev_core::desired::desired_vip;
use maglev_core::maglev::{Table, disruption};
use maglev_core::plan::{Vip, effective_table_len};
use maglev_core::weights::{BackendState as CoreState, WeightOverrides};
use maglev_health::checker::{Checker, CheckerError, DefaultProber, Prober};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::config::{ConfigControl, wire_errors};
use super::convert::{self, Names, WallClock};
use super::events::{Filter, HUB_CAPACITY, Routed, serve_subscriber, start_hub};
use super::vpp::{SyncScope, VppError, VppSide};
use crate::log_feed::LogFeed;
use crate::reload::ReloadError;

/// Events buffered per WatchEvents subscriber between its task and its stream.
const WATCH_BUFFER: usize = 256;

/// The build identity GetVersion reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The version.
    pub version: String,
    /// The git commit; empty when unknown.
    pub git_commit: String,
    /// The build date; empty when unknown.
    pub build_date: String,
}

/// The `maglev.v1.Maglev` service. Cheap to clone; serve it with
/// `MaglevServer::new(service)`.
pub struct MaglevService<P: Prober = DefaultProber> {
    checker: Checker<P>,
    config: watch::Receiver<Arc<Config>>,
    vpp: Option<Arc<dyn VppSide>>,
    control: Option<Arc<dyn ConfigControl>>,
    read_only: bool,
    build: BuildInfo,
    logs: Option<LogFeed>,
    /// The WatchEvents hub, started by the first subscriber.
    hub: Arc<OnceLock<broadcast::Sender<Arc<Routed>>>>,
    hub_capacity: usize,
}

impl<P: Prober> Clone for MaglevService<P> {
    fn clone(&self) -> Self {
        Self {
            checker: self.checker.clone(),
            config: self.config.clone(),
            vpp: self.vpp.clone(),
            control: self.control.clone(),
            read_only: self.read_only,
            build: self.build.clone(),
            logs: self.logs.clone(),
            hub: Arc::clone(&self.hub),
            hub_capacity: self.hub_capacity,
        }
    }
}

impl<P: Prober> MaglevService<P> {
    /// A service over `checker` and the config in `config`, without VPP and writable.
    pub fn new(
        checker: Checker<P>,
        config: watch::Receiver<Arc<Config>>,
        build: BuildInfo,
    ) -> Self {
        Self {
            checker,
            config,
            vpp: None,
            control: None,
            read_only: false,
            build,
            logs: None,
            hub: Arc::new(OnceLock::new()),
            hub_capacity: HUB_CAPACITY,
        }
    }

    /// The log records WatchEvents subscribers may ask for; without a feed they get none.
    #[must_use]
    pub fn with_logs(mut self, logs: LogFeed) -> Self {
        self.logs = Some(logs);
        self
    }

    /// How many events each WatchEvents subscriber may fall behind before it misses some
    /// (default [`HUB_CAPACITY`]).
    #[must_use]
    pub fn with_watch_capacity(mut self, capacity: usize) -> Self {
        self.hub_capacity = capacity.max(1);
        self
    }

    /// The hub's events from now on, starting the hub if no subscriber did yet.
    fn hub(&self) -> broadcast::Receiver<Arc<Routed>> {
        self.hub
            .get_or_init(|| {
                start_hub(
                    self.checker.clone(),
                    self.config.clone(),
                    self.vpp.clone(),
                    self.hub_capacity,
                )
            })
            .subscribe()
    }

    /// The VPP side; without one every VPP RPC answers UNAVAILABLE.
    #[must_use]
    pub fn with_vpp(mut self, vpp: Arc<dyn VppSide>) -> Self {
        self.vpp = Some(vpp);
        self
    }

    /// The daemon's config handling, for CheckConfig and ReloadConfig; without it both answer
    /// UNIMPLEMENTED.
    #[must_use]
    pub fn with_config_control(mut self, control: Arc<dyn ConfigControl>) -> Self {
        self.control = Some(control);
        self
    }

    fn control(&self) -> Result<Arc<dyn ConfigControl>, Status> {
        self.control
            .clone()
            .ok_or_else(|| Status::unimplemented("config control is not wired"))
    }

    /// Read-only mode: every mutating RPC answers PERMISSION_DENIED.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow())
    }

    fn vpp(&self) -> Result<&Arc<dyn VppSide>, Status> {
        self.vpp
            .as_ref()
            .ok_or_else(|| Status::unavailable("VPP integration is off"))
    }

    fn overrides(&self) -> WeightOverrides {
        self.vpp
            .as_ref()
            .map(|v| v.weight_overrides())
            .unwrap_or_default()
    }

    fn states(&self) -> HashMap<String, CoreState> {
        self.checker
            .snapshot()
            .into_iter()
            .map(|s| (s.name.to_string(), s.state))
            .collect()
    }

    /// Refuses a mutating RPC in read-only mode, and logs the ones allowed with their peer.
    fn mutation<T>(
        &self,
        rpc: &'static str,
        request: &Request<T>,
        subject: &str,
    ) -> Result<(), Status> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "local".to_owned(), |a| a.to_string());
        if self.read_only {
            tracing::warn!(name: "grpc-refused", rpc, subject, peer, "grpc-refused");
            return Err(Status::permission_denied(format!(
                "{rpc}: maglevd runs read-only"
            )));
        }
        tracing::info!(name: "grpc-mutation", rpc, subject, peer, "grpc-mutation");
        Ok(())
    }

    fn backend_action(
        &self,
        rpc: &'static str,
        request: Request<BackendRequest>,
        act: fn(&Checker<P>, &str) -> Result<maglev_health::checker::BackendSnapshot, CheckerError>,
    ) -> Result<Response<BackendInfo>, Status> {
        let name = request.get_ref().name.clone();
        self.mutation(rpc, &request, &name)?;
        let snapshot = act(&self.checker, &name).map_err(checker_status)?;
        Ok(Response::new(convert::backend_info(
            &snapshot,
            &self.config(),
            &WallClock::now(),
        )))
    }
}

/// The frontend's wire view: config, state, and per membership the weights and bucket share.
pub(crate) fn frontend_info(
    config: &Config,
    frontend: &Frontend,
    states: &HashMap<String, CoreState>,
    overrides: &WeightOverrides,
) -> FrontendInfo {
    let (_, vip, weights) = desired_vip(config, frontend, states, overrides);
    let table = vip.maglev_table().ok();
    let pools = frontend
        .pools
        .iter()
        .zip(&weights.pools)
        .enumerate()
        .map(|(index, (pool, decided))| PoolInfo {
            name: pool.name.clone(),
            active: index == weights.active_pool,
            backends: pool
                .backends
                .iter()
                .zip(&decided.members)
                .map(|(member, decision)| {
                    let address = config.backend(&member.backend).map(|b| b.address);
                    // VPP gets a backend's first membership only: the others own no bucket.
                    let counts = frontend
                        .membership(&member.backend)
                        .is_some_and(|(first, _)| first == index);
                    let buckets = match (&table, address) {
                        (Some(table), Some(address)) if counts => table.buckets_of(address),
                        _ => 0,
                    };
                    PoolBackendInfo {
                        name: member.backend.clone(),
                        weight: u32::from(member.weight),
                        weight_override: overrides
                            .get(&frontend.name, &pool.name, &member.backend)
                            .map(u32::from),
                        effective_weight: u32::from(decision.effective.weight),
                        state: convert::backend_state(decision.state).into(),
                        buckets,
                        address: address.map(|a| a.to_string()).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect();
    FrontendInfo {
        name: frontend.name.clone(),
        address: frontend.address.to_string(),
        protocol: convert::protocol(frontend.protocol).into(),
        port: u32::from(frontend.port),
        pools,
        description: frontend.description.clone(),
        src_ip_sticky: frontend.src_ip_sticky,
        flush_on_down: frontend.flush_on_down,
        prefix: frontend.prefix.to_string(),
        state: convert::frontend_state(weights.state).into(),
        encap: convert::encap(frontend.encap.into()).into(),
        new_flows_table_length: effective_table_len(frontend.new_flows_table_length),
        active_pool: u32::try_from(weights.active_pool).unwrap_or(u32::MAX),
    }
}

fn checker_status(error: CheckerError) -> Status {
    match error {
        CheckerError::UnknownBackend { .. } => Status::not_found(error.to_string()),
        CheckerError::Refused { .. } => Status::failed_precondition(error.to_string()),
        _ => Status::internal(error.to_string()),
    }
}

fn vpp_status(error: VppError) -> Status {
    match error {
        VppError::NotConnected | VppError::NotYet(_) | VppError::Warmup => {
            Status::unavailable(error.to_string())
        }
        VppError::TimedOut(_) => Status::deadline_exceeded(error.to_string()),
        VppError::Failed(_) => Status::internal(error.to_string()),
    }
}

fn find_frontend<'a>(config: &'a Config, name: &str) -> Result<&'a Frontend, Status> {
    config
        .frontend(name)
        .ok_or_else(|| Status::not_found(format!("unknown frontend {name:?}")))
}

fn scope(config: &Config, frontend: Option<String>) -> Result<SyncScope, Status> {
    match frontend {
        None => Ok(SyncScope::All),
        Some(name) => find_frontend(config, &name).map(|_| SyncScope::Frontend(name)),
    }
}

fn weight_arg(weight: u32) -> Result<u8, Status> {
    u8::try_from(weight)
        .ok()
        .filter(|w| *w <= 100)
        .ok_or_else(|| Status::invalid_argument(format!("weight {weight} is over 100")))
}

/// `(address, weight)` of every AS of `vip`, the Maglev table's input.
fn table_input(vip: &Vip) -> Vec<(IpAddr, u8)> {
    vip.ases.iter().map(|(a, x)| (*a, x.weight)).collect()
}

/// The moves between two tables of the same length, grouped by old and new owner, largest
/// first (ties by name).
fn bucket_moves(before: &Table, after: &Table, names: &Names<'_>) -> Vec<BucketMove> {
    let mut moves: HashMap<(Option<IpAddr>, Option<IpAddr>), u32> = HashMap::new();
    for (old, new) in before.owners().zip(after.owners()) {
        if old != new {
            *moves.entry((old, new)).or_default() += 1;
        }
    }
    let name = |a: Option<IpAddr>| a.map(|a| names.backend(&a)).unwrap_or_default();
    let mut out: Vec<BucketMove> = moves
        .into_iter()
        .map(|((old, new), buckets)| BucketMove {
            from_backend: name(old),
            to_backend: name(new),
            buckets,
        })
        .collect();
    out.sort_by(|a, b| {
        b.buckets
            .cmp(&a.buckets)
            .then_with(|| a.from_backend.cmp(&b.from_backend))
            .then_with(|| a.to_backend.cmp(&b.to_backend))
    });
    out
}

fn shares(table: &Table, input: &[(IpAddr, u8)], names: &Names<'_>) -> Vec<BucketShare> {
    let mut out: Vec<BucketShare> = input
        .iter()
        .map(|(address, weight)| BucketShare {
            backend: names.backend(address),
            weight: u32::from(*weight),
            buckets: table.buckets_of(*address),
        })
        .collect();
    out.sort_by(|a, b| a.backend.cmp(&b.backend));
    out
}

fn preview(
    config: &Config,
    states: &HashMap<String, CoreState>,
    overrides: &WeightOverrides,
    request: &PreviewChangeRequest,
) -> Result<PreviewChangeResponse, Status> {
    let frontend = find_frontend(config, &request.frontend)?;
    let Some((pool, _)) = frontend.membership(&request.backend) else {
        return Err(Status::not_found(format!(
            "backend {:?} is not in frontend {:?}",
            request.backend, frontend.name
        )));
    };
    let address = config
        .backend(&request.backend)
        .map(|b| b.address)
        .ok_or_else(|| Status::not_found(format!("unknown backend {:?}", request.backend)))?;
    let (_, vip, _) = desired_vip(config, frontend, states, overrides);
    let before = table_input(&vip);
    let after: Vec<(IpAddr, u8)> = match ChangeKind::try_from(request.kind) {
        Ok(ChangeKind::Drain) => before
            .iter()
            .map(|&(a, w)| (a, if a == address { 0 } else { w }))
            .collect(),
        Ok(ChangeKind::Remove) => before
            .iter()
            .copied()
            .filter(|(a, _)| *a != address)
            .collect(),
        Ok(ChangeKind::SetWeight) => {
            let weight = weight_arg(request.weight)?;
            let mut changed = overrides.clone();
            changed.set(
                &frontend.name,
                &frontend.pools[pool].name,
                &request.backend,
                weight,
            );
            table_input(&desired_vip(config, frontend, states, &changed).1)
        }
        Ok(ChangeKind::Unspecified) | Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown change kind {}",
                request.kind
            )));
        }
    };
    let len = effective_table_len(vip.table_len);
    let internal = |e: maglev_core::maglev::MaglevError| Status::internal(e.to_string());
    let old = Table::build(len, &before).map_err(internal)?;
    let new = Table::build(len, &after).map_err(internal)?;
    let changed = disruption(len, &before, &after).map_err(internal)?.changed;
    let names = Names::new(config);
    Ok(PreviewChangeResponse {
        table_length: len,
        changed_buckets: changed,
        moves: bucket_moves(&old, &new, &names),
        before: shares(&old, &before, &names),
        after: shares(&new, &after, &names),
    })
}

#[tonic::async_trait]
impl<P: Prober> Maglev for MaglevService<P> {
    async fn list_frontends(
        &self,
        _: Request<ListFrontendsRequest>,
    ) -> Result<Response<ListFrontendsResponse>, Status> {
        let config = self.config();
        let (states, overrides) = (self.states(), self.overrides());
        let frontends = config
            .frontends
            .iter()
            .map(|f| frontend_info(&config, f, &states, &overrides))
            .collect();
        Ok(Response::new(ListFrontendsResponse { frontends }))
    }

    async fn get_frontend(
        &self,
        request: Request<GetFrontendRequest>,
    ) -> Result<Response<FrontendInfo>, Status> {
        let config = self.config();
        let frontend = find_frontend(&config, &request.get_ref().name)?;
        Ok(Response::new(frontend_info(
            &config,
            frontend,
            &self.states(),
            &self.overrides(),
        )))
    }

    async fn list_backends(
        &self,
        _: Request<ListBackendsRequest>,
    ) -> Result<Response<ListBackendsResponse>, Status> {
        let (config, clock) = (self.config(), WallClock::now());
        let backends = self
            .checker
            .snapshot()
            .iter()
            .map(|s| convert::backend_info(s, &config, &clock))
            .collect();
        Ok(Response::new(ListBackendsResponse { backends }))
    }

    async fn get_backend(
        &self,
        request: Request<GetBackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        let snapshot = self
            .checker
            .state(&request.get_ref().name)
            .map_err(checker_status)?;
        Ok(Response::new(convert::backend_info(
            &snapshot,
            &self.config(),
            &WallClock::now(),
        )))
    }

    async fn pause_backend(
        &self,
        request: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.backend_action("PauseBackend", request, Checker::pause)
    }

    async fn resume_backend(
        &self,
        request: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.backend_action("ResumeBackend", request, Checker::resume)
    }

    async fn enable_backend(
        &self,
        request: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.backend_action("EnableBackend", request, Checker::enable)
    }

    async fn disable_backend(
        &self,
        request: Request<BackendRequest>,
    ) -> Result<Response<BackendInfo>, Status> {
        self.backend_action("DisableBackend", request, Checker::disable)
    }

    async fn list_health_checks(
        &self,
        _: Request<ListHealthChecksRequest>,
    ) -> Result<Response<ListHealthChecksResponse>, Status> {
        let config = self.config();
        let healthchecks = config
            .healthchecks
            .values()
            .map(|c| convert::health_check_info(c, &config))
            .collect();
        Ok(Response::new(ListHealthChecksResponse { healthchecks }))
    }

    async fn get_health_check(
        &self,
        request: Request<GetHealthCheckRequest>,
    ) -> Result<Response<HealthCheckInfo>, Status> {
        let config = self.config();
        let name = &request.get_ref().name;
        let check = config
            .healthcheck(name)
            .ok_or_else(|| Status::not_found(format!("unknown health check {name:?}")))?;
        Ok(Response::new(convert::health_check_info(check, &config)))
    }

    async fn set_frontend_pool_backend_weight(
        &self,
        request: Request<SetWeightRequest>,
    ) -> Result<Response<FrontendInfo>, Status> {
        let subject = {
            let r = request.get_ref();
            format!("{}/{}/{}", r.frontend, r.pool, r.backend)
        };
        self.mutation("SetFrontendPoolBackendWeight", &request, &subject)?;
        let r = request.into_inner();
        let config = self.config();
        let frontend = find_frontend(&config, &r.frontend)?;
        if config.backend(&r.backend).is_none() {
            return Err(Status::not_found(format!(
                "unknown backend {:?}",
                r.backend
            )));
        }
        let member = frontend
            .pools
            .iter()
            .find(|p| p.name == r.pool)
            .is_some_and(|p| p.backends.iter().any(|m| m.backend == r.backend));
        if !member {
            return Err(Status::invalid_argument(format!(
                "backend {:?} is not in pool {:?} of frontend {:?}",
                r.backend, r.pool, r.frontend
            )));
        }
        let weight = if r.reset {
            None
        } else {
            Some(weight_arg(r.weight)?)
        };
        let vpp = self.vpp()?;
        vpp.set_weight_override(&r.frontend, &r.pool, &r.backend, weight)
            .await
            .map_err(vpp_status)?;
        Ok(Response::new(frontend_info(
            &config,
            frontend,
            &self.states(),
            &vpp.weight_overrides(),
        )))
    }

    type WatchEventsStream = ReceiverStream<Result<Event, Status>>;

    async fn watch_events(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let filter = Filter::new(request.into_inner());
        // Subscribe before the snapshot: a transition between the two is seen twice at worst,
        // never missed.
        let live = self.hub();
        let clock = WallClock::now();
        let now = maglev_api::convert::to_unix_nanos(std::time::SystemTime::now());
        let mut replay = Vec::new();
        if filter.wants(EventKind::Backend) {
            for snapshot in self.checker.snapshot() {
                if filter.backend(&snapshot.name) {
                    let state = convert::backend_state(snapshot.state).into();
                    let last = snapshot.history.last();
                    replay.push(Event {
                        at_unix_nanos: last.map_or(now, |r| clock.unix_nanos(r.at)),
                        event: Some(event::Event::Backend(BackendEvent {
                            backend: snapshot.name.to_string(),
                            from: state,
                            to: state,
                            code: last.map_or(0, |r| convert::result_code(r.code).into()),
                            detail: last.map(|r| r.detail.clone()).unwrap_or_default(),
                            replay: true,
                        })),
                    });
                }
            }
        }
        if filter.wants(EventKind::Frontend) {
            let config = self.config();
            let (states, overrides) = (self.states(), self.overrides());
            for frontend in &config.frontends {
                if filter.frontend(&frontend.name) {
                    let state = frontend_info(&config, frontend, &states, &overrides).state;
                    replay.push(Event {
                        at_unix_nanos: now,
                        event: Some(event::Event::Frontend(FrontendEvent {
                            frontend: frontend.name.clone(),
                            from: state,
                            to: state,
                            replay: true,
                        })),
                    });
                }
            }
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let logs = self.logs.clone();
        tokio::spawn(async move {
            serve_subscriber(filter, replay, live, logs.as_ref(), tx).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn check_config(
        &self,
        _: Request<CheckConfigRequest>,
    ) -> Result<Response<CheckConfigResponse>, Status> {
        let control = self.control()?;
        let path = control.source_name();
        // Reading and validating a large file is blocking work: off the async workers.
        let checked = tokio::task::spawn_blocking(move || control.check())
            .await
            .map_err(|e| Status::internal(format!("CheckConfig: {e}")))?;
        let (parse_error, semantic_errors) = match &checked {
            Ok(()) => (None, Vec::new()),
            Err(error) => wire_errors(error),
        };
        Ok(Response::new(CheckConfigResponse {
            ok: checked.is_ok(),
            parse_error,
            semantic_errors,
            path,
        }))
    }

    async fn reload_config(
        &self,
        request: Request<ReloadConfigRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        // Read-only refuses first, whatever else is missing.
        let path = self
            .control
            .as_ref()
            .map(|c| c.source_name())
            .unwrap_or_default();
        self.mutation("ReloadConfig", &request, &path)?;
        let control = self.control()?;
        let reloaded = tokio::task::spawn_blocking(move || control.reload())
            .await
            .map_err(|e| Status::internal(format!("ReloadConfig: {e}")))?;
        match reloaded {
            Ok(summary) => Ok(Response::new(ReloadConfigResponse {
                ok: true,
                parse_error: None,
                semantic_errors: Vec::new(),
                path,
                backends_added: summary.added,
                backends_restarted: summary.restarted,
                backends_removed: summary.removed,
            })),
            Err(ReloadError::Load(error)) => {
                let (parse_error, semantic_errors) = wire_errors(&error);
                Ok(Response::new(ReloadConfigResponse {
                    ok: false,
                    parse_error,
                    semantic_errors,
                    path,
                    ..ReloadConfigResponse::default()
                }))
            }
            Err(ReloadError::Apply(error)) => Err(Status::internal(format!(
                "ReloadConfig: the checker refused the config: {error}"
            ))),
            Err(ReloadError::Netns(error)) => Err(Status::failed_precondition(format!(
                "ReloadConfig: {error}"
            ))),
        }
    }

    async fn get_vpp_info(
        &self,
        _: Request<GetVppInfoRequest>,
    ) -> Result<Response<VppInfo>, Status> {
        let info = self.vpp()?.info().map_err(vpp_status)?;
        Ok(Response::new(VppInfo {
            version: info.version,
            build_date: info.build_date,
            build_directory: info.build_directory,
            pid: info.pid,
            boottime_ns: info.boot_time.map_or(0, maglev_api::convert::to_unix_nanos),
            connecttime_ns: maglev_api::convert::to_unix_nanos(info.connect_time),
            api_socket: info.api_socket,
        }))
    }

    async fn get_vpplb_state(
        &self,
        _: Request<GetVpplbStateRequest>,
    ) -> Result<Response<VpplbState>, Status> {
        let state = self.vpp()?.lb_state().await.map_err(vpp_status)?;
        let config = self.config();
        let names = Names::new(&config);
        let vips = state
            .vips
            .vips
            .iter()
            .map(|(key, vip)| {
                let table = vip.maglev_table().ok();
                LbVip {
                    prefix: key.prefix.to_string(),
                    protocol: convert::protocol_number(key.protocol).into(),
                    port: u32::from(key.port),
                    encap: convert::encap(vip.encap).into(),
                    src_ip_sticky: vip.src_ip_sticky,
                    new_flows_table_length: vip.table_len,
                    frontend: names.frontend(key),
                    ases: vip
                        .ases
                        .iter()
                        .map(|(address, a)| LbAs {
                            address: address.to_string(),
                            weight: u32::from(a.weight),
                            // Only used ASes are in the state (bit 0 of VPP's flags).
                            flags: 1,
                            buckets: table.as_ref().map_or(0, |t| t.buckets_of(*address)),
                            backend: names.backend(address),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Response::new(VpplbState {
            conf: Some(LbConf {
                ip4_src_address: state.conf.ip4_src_address.to_string(),
                ip6_src_address: state.conf.ip6_src_address.to_string(),
                sticky_buckets_per_core: state.conf.sticky_buckets_per_core,
                flow_timeout_s: state.conf.flow_timeout_secs,
            }),
            vips,
        }))
    }

    async fn sync_vpplb_state(
        &self,
        request: Request<SyncVpplbStateRequest>,
    ) -> Result<Response<SyncVpplbStateResponse>, Status> {
        let subject = request.get_ref().frontend.clone().unwrap_or_default();
        self.mutation("SyncVPPLBState", &request, &subject)?;
        let config = self.config();
        let scope = scope(&config, request.into_inner().frontend)?;
        let frontend = match &scope {
            SyncScope::All => String::new(),
            SyncScope::Frontend(name) => name.clone(),
        };
        let report = self.vpp()?.sync(scope).await.map_err(vpp_status)?;
        let names = Names::new(&config);
        Ok(Response::new(SyncVpplbStateResponse {
            ops: report
                .ops
                .iter()
                .map(|op| convert::op(op, &names))
                .collect(),
            summary: Some(convert::sync_summary(
                frontend,
                report.error.is_none(),
                report.error,
                &report.ops,
                &report.stats,
                report.duration,
            )),
        }))
    }

    async fn get_vpplb_counters(
        &self,
        _: Request<GetVpplbCountersRequest>,
    ) -> Result<Response<VpplbCounters>, Status> {
        let counters = self.vpp()?.counters().map_err(vpp_status)?;
        let config = self.config();
        let names = Names::new(&config);
        Ok(Response::new(VpplbCounters {
            scraped_at_unix_nanos: maglev_api::convert::to_unix_nanos(counters.scraped_at),
            vips: counters
                .vips
                .iter()
                .map(|c| LbVipCounters {
                    frontend: names.frontend(&c.key),
                    prefix: c.key.prefix.to_string(),
                    protocol: convert::protocol_number(c.key.protocol).into(),
                    port: u32::from(c.key.port),
                    existing_session_packets: c.existing_session_packets,
                    first_session_packets: c.first_session_packets,
                    untracked_packets: c.untracked_packets,
                    no_server_packets: c.no_server_packets,
                    route_packets: c.route_packets,
                    route_bytes: c.route_bytes,
                })
                .collect(),
        }))
    }

    async fn plan_vpplb_sync(
        &self,
        request: Request<PlanVpplbSyncRequest>,
    ) -> Result<Response<PlanVpplbSyncResponse>, Status> {
        let config = self.config();
        let scope = scope(&config, request.into_inner().frontend)?;
        let ops = self.vpp()?.plan(scope).await.map_err(vpp_status)?;
        let names = Names::new(&config);
        Ok(Response::new(PlanVpplbSyncResponse {
            ops: ops.iter().map(|op| convert::op(op, &names)).collect(),
        }))
    }

    async fn preview_change(
        &self,
        request: Request<PreviewChangeRequest>,
    ) -> Result<Response<PreviewChangeResponse>, Status> {
        let config = self.config();
        preview(
            &config,
            &self.states(),
            &self.overrides(),
            request.get_ref(),
        )
        .map(Response::new)
    }

    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<VersionInfo>, Status> {
        Ok(Response::new(VersionInfo {
            version: self.build.version.clone(),
            git_commit: self.build.git_commit.clone(),
            build_date: self.build.build_date.clone(),
        }))
    }
}
