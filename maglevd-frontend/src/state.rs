//! What the dashboard knows of one maglevd, as `/view/api/state` serves it: a JSON-friendly
//! copy of the gRPC answers (enums as short lowercase names, times as unix milliseconds), and
//! the translation of a WatchEvents event into a state change and an SSE event.

use std::collections::BTreeMap;

use maglev_api::v1;
use serde::Serialize;

/// A proto enum's name without its prefix, lowercase: `BACKEND_STATE_UP` → `up`.
fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// A backend state's short name.
#[must_use]
pub fn backend_state(state: v1::BackendState) -> String {
    short(state.as_str_name(), "BACKEND_STATE_")
}

/// A frontend state's short name.
#[must_use]
pub fn frontend_state(state: v1::FrontendState) -> String {
    short(state.as_str_name(), "FRONTEND_STATE_")
}

fn millis(nanos: i64) -> i64 {
    nanos / 1_000_000
}

/// One maglevd as the page shows it.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ScopeState {
    /// Its name (the address given to `--server`).
    pub name: String,
    /// Whether its gRPC API answers.
    pub connected: bool,
    /// The last connection error, when disconnected.
    pub error: Option<String>,
    /// maglevd's version.
    pub version: Option<String>,
    /// Its frontends, by name.
    pub frontends: BTreeMap<String, Frontend>,
    /// Its backends, by name.
    pub backends: BTreeMap<String, Backend>,
    /// Its VPP connection.
    pub vpp: Vpp,
    /// VPP's lb state: the VIPs as VPP has them.
    pub vips: Vec<Vip>,
    /// Traffic counters per VIP, when maglevd reads them.
    pub counters: Vec<VipCounters>,
    /// When the last full refresh finished, unix milliseconds.
    pub refreshed_ms: i64,
}

/// One frontend.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Frontend {
    /// Name.
    pub name: String,
    /// Description from the config.
    pub description: String,
    /// The VIP prefix.
    pub prefix: String,
    /// `tcp`, `udp` or `any`.
    pub protocol: String,
    /// The port (0 for all ports).
    pub port: u32,
    /// `unknown`, `up` or `down`.
    pub state: String,
    /// The index of the active pool.
    pub active_pool: u32,
    /// The Maglev table length.
    pub table_length: u32,
    /// The pools in priority order.
    pub pools: Vec<Pool>,
}

/// One pool of a frontend.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Whether it is the active pool.
    pub active: bool,
    /// Its members.
    pub backends: Vec<Member>,
}

/// One backend in a pool.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Member {
    /// The backend's name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Its state.
    pub state: String,
    /// The configured weight.
    pub weight: u32,
    /// The operator's override, if any.
    pub weight_override: Option<u32>,
    /// The weight VPP gets.
    pub effective_weight: u32,
    /// The Maglev buckets it owns in the frontend's table.
    pub buckets: u32,
}

/// One backend.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Backend {
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// State.
    pub state: String,
    /// Administratively enabled.
    pub enabled: bool,
    /// Its health check's name (empty: static).
    pub healthcheck: String,
    /// When it last changed state, unix milliseconds (0: never).
    pub since_ms: i64,
    /// The last probe's code (`l7ok`, ...), empty before the first.
    pub last_code: String,
    /// The last probe's detail.
    pub last_detail: String,
    /// When the last probe started, unix milliseconds (0: none seen), from maglevd's DEBUG
    /// `probe-start` records: with [`Backend::last_probe_ms`], the page's heartbeat shows a probe
    /// in flight.
    pub probe_start_ms: i64,
    /// When the last probe finished, unix milliseconds (0: none yet), from `probe-done`.
    pub last_probe_ms: i64,
}

/// maglevd's VPP connection.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Vpp {
    /// Connected to VPP.
    pub connected: bool,
    /// VPP's version.
    pub version: String,
    /// VPP's boot time, unix milliseconds.
    pub boot_ms: i64,
    /// When maglevd connected, unix milliseconds.
    pub connect_ms: i64,
    /// Sync operations seen on the event stream (API activity).
    pub api_ops: u64,
    /// When the last sync operation was seen, unix milliseconds.
    pub last_op_ms: i64,
}

/// One VIP in VPP.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Vip {
    /// Its frontend.
    pub frontend: String,
    /// Prefix.
    pub prefix: String,
    /// Port.
    pub port: u32,
    /// Its application servers.
    pub ases: Vec<As>,
}

/// One application server of a VIP.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct As {
    /// Address.
    pub address: String,
    /// Backend name.
    pub backend: String,
    /// Weight in VPP.
    pub weight: u32,
    /// Buckets in VPP's table.
    pub buckets: u32,
}

/// Traffic counters of one VIP.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VipCounters {
    /// Its frontend.
    pub frontend: String,
    /// Packets of existing sessions.
    pub existing: u64,
    /// First packets of sessions.
    pub first: u64,
    /// Untracked packets.
    pub untracked: u64,
    /// Packets with no server.
    pub no_server: u64,
    /// Packets VPP forwarded to the VIP's prefix (`/net/route/to`).
    pub route_packets: u64,
    /// Bytes VPP forwarded to the VIP's prefix (`/net/route/to`).
    pub route_bytes: u64,
}

impl From<&v1::FrontendInfo> for Frontend {
    fn from(f: &v1::FrontendInfo) -> Self {
        Self {
            name: f.name.clone(),
            description: f.description.clone(),
            prefix: f.prefix.clone(),
            protocol: short(f.protocol().as_str_name(), "PROTOCOL_"),
            port: f.port,
            state: frontend_state(f.state()),
            active_pool: f.active_pool,
            table_length: f.new_flows_table_length,
            pools: f
                .pools
                .iter()
                .map(|p| Pool {
                    name: p.name.clone(),
                    active: p.active,
                    backends: p
                        .backends
                        .iter()
                        .map(|b| Member {
                            name: b.name.clone(),
                            address: b.address.clone(),
                            state: backend_state(b.state()),
                            weight: b.weight,
                            weight_override: b.weight_override,
                            effective_weight: b.effective_weight,
                            buckets: b.buckets,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<&v1::BackendInfo> for Backend {
    fn from(b: &v1::BackendInfo) -> Self {
        let last = b.last_result.as_ref();
        Self {
            name: b.name.clone(),
            address: b.address.clone(),
            state: backend_state(b.state()),
            enabled: b.enabled,
            healthcheck: b.healthcheck.clone(),
            since_ms: b.transitions.last().map_or(0, |t| millis(t.at_unix_nanos)),
            last_code: last.map_or_else(String::new, |r| {
                let code = r.code();
                if code == v1::ResultCode::Unspecified {
                    String::new()
                } else {
                    short(code.as_str_name(), "RESULT_CODE_")
                }
            }),
            last_detail: last.map_or_else(String::new, |r| r.detail.clone()),
            probe_start_ms: 0,
            last_probe_ms: 0,
        }
    }
}

/// What a maglevd log record says about a backend's probes, by its stable event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeMark {
    /// `probe-start`: a probe went out.
    Start,
    /// `probe-done`: its result came back.
    Done,
}

impl ProbeMark {
    fn of(event_name: &str) -> Option<Self> {
        match event_name {
            "probe-start" => Some(Self::Start),
            "probe-done" => Some(Self::Done),
            _ => None,
        }
    }
}

impl From<&v1::VpplbState> for ScopeLb {
    fn from(s: &v1::VpplbState) -> Self {
        Self(
            s.vips
                .iter()
                .map(|v| Vip {
                    frontend: v.frontend.clone(),
                    prefix: v.prefix.clone(),
                    port: v.port,
                    ases: v
                        .ases
                        .iter()
                        .map(|a| As {
                            address: a.address.clone(),
                            backend: a.backend.clone(),
                            weight: a.weight,
                            buckets: a.buckets,
                        })
                        .collect(),
                })
                .collect(),
        )
    }
}

/// VPP's VIPs, converted from a `VPPLBState`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeLb(pub Vec<Vip>);

impl From<&v1::LbVipCounters> for VipCounters {
    fn from(c: &v1::LbVipCounters) -> Self {
        Self {
            frontend: c.frontend.clone(),
            existing: c.existing_session_packets,
            first: c.first_session_packets,
            untracked: c.untracked_packets,
            no_server: c.no_server_packets,
            route_packets: c.route_packets,
            route_bytes: c.route_bytes,
        }
    }
}

impl Vpp {
    /// The VPP panel from a `VPPInfo` (connected when maglevd answered it).
    #[must_use]
    pub fn from_info(info: &v1::VppInfo) -> Self {
        Self {
            connected: true,
            version: info.version.clone(),
            boot_ms: millis(info.boottime_ns),
            connect_ms: millis(info.connecttime_ns),
            api_ops: 0,
            last_op_ms: 0,
        }
    }
}

/// What a WatchEvents event means for the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The SSE event type.
    pub kind: &'static str,
    /// Its JSON payload (`maglevd` is added by the caller).
    pub data: serde_json::Value,
    /// Whether VPP's lb state may have changed (debounced fetch).
    pub lb_trigger: bool,
}

impl ScopeState {
    /// Applies one event of the stream to this state; what to tell the browsers.
    pub fn apply(&mut self, event: &v1::Event) -> Option<Translated> {
        use v1::event::Event as E;
        let at = millis(event.at_unix_nanos);
        let translated = match event.event.as_ref()? {
            E::Backend(b) => {
                let state = backend_state(b.to());
                for member in self
                    .frontends
                    .values_mut()
                    .flat_map(|f| f.pools.iter_mut())
                    .flat_map(|p| p.backends.iter_mut())
                    .filter(|m| m.name == b.backend)
                {
                    member.state.clone_from(&state);
                }
                if let Some(backend) = self.backends.get_mut(&b.backend) {
                    backend.state.clone_from(&state);
                    if !b.replay {
                        backend.since_ms = at;
                    }
                }
                Translated {
                    kind: "backend",
                    data: serde_json::json!({
                        "backend": b.backend,
                        "from": backend_state(b.from()),
                        "to": state,
                        "code": short(b.code().as_str_name(), "RESULT_CODE_"),
                        "detail": b.detail,
                        "replay": b.replay,
                        "at_ms": at,
                    }),
                    lb_trigger: !b.replay,
                }
            }
            E::Frontend(f) => {
                let state = frontend_state(f.to());
                if let Some(frontend) = self.frontends.get_mut(&f.frontend) {
                    frontend.state.clone_from(&state);
                }
                Translated {
                    kind: "frontend",
                    data: serde_json::json!({
                        "frontend": f.frontend,
                        "from": frontend_state(f.from()),
                        "to": state,
                        "replay": f.replay,
                        "at_ms": at,
                    }),
                    lb_trigger: false,
                }
            }
            E::VppConnection(c) => {
                self.vpp = match &c.info {
                    Some(info) if c.connected => Vpp::from_info(info),
                    _ => Vpp {
                        connected: c.connected,
                        ..self.vpp.clone()
                    },
                };
                Translated {
                    kind: "vpp",
                    data: serde_json::json!({
                        "connected": c.connected,
                        "reason": c.reason,
                        "at_ms": at,
                    }),
                    lb_trigger: c.connected,
                }
            }
            E::SyncOp(op) => {
                self.vpp.api_ops += 1;
                self.vpp.last_op_ms = at;
                let o = op.op.clone().unwrap_or_default();
                Translated {
                    kind: "sync-op",
                    data: serde_json::json!({
                        "op": short(o.kind().as_str_name(), "LB_SYNC_OP_KIND_"),
                        "frontend": o.frontend,
                        "backend": o.backend,
                        "address": o.address,
                        "weight": o.weight,
                        "ok": op.ok,
                        "error": op.error,
                        "at_ms": at,
                    }),
                    lb_trigger: false,
                }
            }
            E::SyncSummary(s) => {
                let s = s.summary.clone().unwrap_or_default();
                Translated {
                    kind: "sync",
                    data: serde_json::json!({
                        "frontend": s.frontend,
                        "ok": s.ok,
                        "error": s.error,
                        "at_ms": at,
                    }),
                    lb_trigger: true,
                }
            }
            E::ConfigReload(r) => Translated {
                kind: "reload",
                data: serde_json::json!({ "ok": r.ok, "errors": r.errors.len(), "at_ms": at }),
                lb_trigger: r.ok,
            },
            E::Log(l) => {
                if let Some(mark) = ProbeMark::of(&l.name)
                    && let Some(field) = l.fields.iter().find(|f| f.key == "backend")
                    && let Some(backend) = self.backends.get_mut(&field.value)
                {
                    match mark {
                        ProbeMark::Start => backend.probe_start_ms = at,
                        ProbeMark::Done => backend.last_probe_ms = at,
                    }
                }
                Translated {
                    kind: "log",
                    data: serde_json::json!({
                        "level": short(l.level().as_str_name(), "LOG_LEVEL_"),
                        "name": l.name,
                        "fields": l.fields.iter().map(|f| (f.key.clone(), f.value.clone())).collect::<BTreeMap<_, _>>(),
                        "at_ms": at,
                    }),
                    lb_trigger: false,
                }
            }
            E::Missed(m) => Translated {
                kind: "missed",
                data: serde_json::json!({ "count": m.count, "at_ms": at }),
                lb_trigger: true,
            },
        };
        Some(translated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frontend() -> v1::FrontendInfo {
        v1::FrontendInfo {
            name: "web".into(),
            prefix: "192.0.2.80/32".into(),
            protocol: v1::Protocol::Tcp.into(),
            port: 80,
            state: v1::FrontendState::Up.into(),
            new_flows_table_length: 1024,
            pools: vec![v1::PoolInfo {
                name: "primary".into(),
                active: true,
                backends: vec![v1::PoolBackendInfo {
                    name: "web1".into(),
                    weight: 100,
                    effective_weight: 100,
                    state: v1::BackendState::Up.into(),
                    buckets: 1024,
                    address: "127.0.0.11".into(),
                    weight_override: None,
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn vip_counters_reach_the_page_with_the_route_counters() {
        let c = VipCounters::from(&v1::LbVipCounters {
            frontend: "web".into(),
            existing_session_packets: 1,
            first_session_packets: 2,
            untracked_packets: 3,
            no_server_packets: 4,
            route_packets: 5,
            route_bytes: 600,
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({
                "frontend": "web",
                "existing": 1,
                "first": 2,
                "untracked": 3,
                "no_server": 4,
                "route_packets": 5,
                "route_bytes": 600,
            })
        );
    }

    #[test]
    fn enums_become_short_lowercase_names() {
        let f = Frontend::from(&frontend());
        assert_eq!((f.state.as_str(), f.protocol.as_str()), ("up", "tcp"));
        assert_eq!(f.pools[0].backends[0].state, "up");
        assert_eq!(backend_state(v1::BackendState::Paused), "paused");
    }

    #[test]
    fn a_backend_event_changes_every_pool_member_and_triggers_an_lb_fetch() {
        let mut state = ScopeState::default();
        state
            .frontends
            .insert("web".into(), Frontend::from(&frontend()));
        let event = v1::Event {
            at_unix_nanos: 5_000_000_000,
            event: Some(v1::event::Event::Backend(v1::BackendEvent {
                backend: "web1".into(),
                from: v1::BackendState::Up.into(),
                to: v1::BackendState::Down.into(),
                code: v1::ResultCode::L4con.into(),
                ..Default::default()
            })),
        };
        let t = state.apply(&event).expect("translated");
        assert_eq!(t.kind, "backend");
        assert!(t.lb_trigger);
        assert_eq!(t.data["to"], "down");
        assert_eq!(t.data["code"], "l4con");
        assert_eq!(t.data["at_ms"], 5000);
        assert_eq!(state.frontends["web"].pools[0].backends[0].state, "down");
    }

    #[test]
    fn probe_start_and_done_records_drive_the_heartbeat() {
        let mut state = ScopeState::default();
        state.backends.insert(
            "web1".into(),
            Backend::from(&v1::BackendInfo {
                name: "web1".into(),
                ..Default::default()
            }),
        );
        let log = |name: &str, at_ms: i64, backend: &str| v1::Event {
            at_unix_nanos: at_ms * 1_000_000,
            event: Some(v1::event::Event::Log(v1::LogEvent {
                level: v1::LogLevel::Debug.into(),
                name: name.into(),
                fields: vec![v1::LogField {
                    key: "backend".into(),
                    value: backend.into(),
                }],
                ..Default::default()
            })),
        };
        state
            .apply(&log("probe-start", 1_000, "web1"))
            .expect("a log record");
        assert_eq!(
            (
                state.backends["web1"].probe_start_ms,
                state.backends["web1"].last_probe_ms
            ),
            (1_000, 0),
            "in flight"
        );
        state
            .apply(&log("probe-done", 1_020, "web1"))
            .expect("a log record");
        assert_eq!(state.backends["web1"].last_probe_ms, 1_020);
        // Another record, or a backend the scope does not know, leaves the marks alone.
        state
            .apply(&log("backend-transition", 2_000, "web1"))
            .expect("a log record");
        state
            .apply(&log("probe-start", 3_000, "nope"))
            .expect("a log record");
        assert_eq!(
            (
                state.backends["web1"].probe_start_ms,
                state.backends["web1"].last_probe_ms
            ),
            (1_000, 1_020)
        );
    }

    #[test]
    fn an_empty_event_is_ignored() {
        let mut state = ScopeState::default();
        assert_eq!(state.apply(&v1::Event::default()), None);
    }
}
