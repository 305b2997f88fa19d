//! Domain types (`maglev-core`, `maglev-health`) to `maglev.v1` wire types. One function per
//! type, exhaustive matches where the domain enum allows it, so a new state forces a decision
//! here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use maglev_api::convert::{to_millis, to_unix_nanos};
use maglev_api::v1;
use maglev_core::config::{self, CheckKind, Config, HealthCheck};
use maglev_core::plan::{self, Op};
use maglev_core::weights::{BackendState, FrontendState};
use maglev_health::checker::BackendSnapshot;
use maglev_health::machine::TransitionRecord;
use maglev_health::result::{ProbeResult, ResultCode};

/// Turns the checker's monotonic instants into wall-clock times, against one reading of both
/// clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    instant: Instant,
    system: SystemTime,
}

impl WallClock {
    /// Reads both clocks now.
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// `at` in unix nanoseconds.
    pub(crate) fn unix_nanos(&self, at: Instant) -> i64 {
        let wall = match self.instant.checked_duration_since(at) {
            Some(ago) => self.system.checked_sub(ago),
            None => self.system.checked_add(at.duration_since(self.instant)),
        };
        wall.map_or(0, to_unix_nanos)
    }
}

pub(crate) fn backend_state(state: BackendState) -> v1::BackendState {
    match state {
        BackendState::Unknown => v1::BackendState::Unknown,
        BackendState::Up => v1::BackendState::Up,
        BackendState::Down => v1::BackendState::Down,
        BackendState::Paused => v1::BackendState::Paused,
        BackendState::Disabled => v1::BackendState::Disabled,
        BackendState::Removed => v1::BackendState::Removed,
    }
}

pub(crate) fn frontend_state(state: FrontendState) -> v1::FrontendState {
    match state {
        FrontendState::Unknown => v1::FrontendState::Unknown,
        FrontendState::Up => v1::FrontendState::Up,
        FrontendState::Down => v1::FrontendState::Down,
    }
}

pub(crate) fn result_code(code: ResultCode) -> v1::ResultCode {
    match code {
        ResultCode::L4Ok => v1::ResultCode::L4ok,
        ResultCode::L4Tout => v1::ResultCode::L4tout,
        ResultCode::L4Con => v1::ResultCode::L4con,
        ResultCode::L6Ok => v1::ResultCode::L6ok,
        ResultCode::L6Tout => v1::ResultCode::L6tout,
        ResultCode::L6Rsp => v1::ResultCode::L6rsp,
        ResultCode::L7Ok => v1::ResultCode::L7ok,
        ResultCode::L7Tout => v1::ResultCode::L7tout,
        ResultCode::L7Rsp => v1::ResultCode::L7rsp,
        ResultCode::L7Sts => v1::ResultCode::L7sts,
        ResultCode::IcmpOk => v1::ResultCode::Icmpok,
        ResultCode::IcmpTout => v1::ResultCode::Icmptout,
        ResultCode::IcmpErr => v1::ResultCode::Icmperr,
        ResultCode::Paused => v1::ResultCode::Paused,
        ResultCode::Resumed => v1::ResultCode::Resumed,
        ResultCode::Disabled => v1::ResultCode::Disabled,
        ResultCode::Enabled => v1::ResultCode::Enabled,
        ResultCode::Removed => v1::ResultCode::Removed,
        ResultCode::Static => v1::ResultCode::Static,
        // `ResultCode` is non-exhaustive: a code added later reads as unspecified until it is
        // added to the proto.
        _ => v1::ResultCode::Unspecified,
    }
}

pub(crate) fn protocol(protocol: config::Protocol) -> v1::Protocol {
    match protocol {
        config::Protocol::Tcp => v1::Protocol::Tcp,
        config::Protocol::Udp => v1::Protocol::Udp,
        config::Protocol::Any => v1::Protocol::Any,
    }
}

/// A VIP's IP protocol number as the enum; numbers maglevd never programs are unspecified.
pub(crate) fn protocol_number(number: u8) -> v1::Protocol {
    match number {
        6 => v1::Protocol::Tcp,
        17 => v1::Protocol::Udp,
        255 => v1::Protocol::Any,
        _ => v1::Protocol::Unspecified,
    }
}

pub(crate) fn encap(encap: plan::Encap) -> v1::Encap {
    match encap {
        plan::Encap::Gre4 => v1::Encap::Gre4,
        plan::Encap::Gre6 => v1::Encap::Gre6,
        plan::Encap::L3dsr => v1::Encap::L3dsr,
        plan::Encap::Nat4 => v1::Encap::Nat4,
        plan::Encap::Nat6 => v1::Encap::Nat6,
        _ => v1::Encap::Unspecified,
    }
}

pub(crate) fn probe_result(result: &ProbeResult) -> v1::ProbeResult {
    v1::ProbeResult {
        code: result_code(result.code).into(),
        detail: result.detail.clone(),
        elapsed_ms: to_millis(result.elapsed),
    }
}

pub(crate) fn transition(record: &TransitionRecord, clock: &WallClock) -> v1::TransitionRecord {
    v1::TransitionRecord {
        from: backend_state(record.from).into(),
        to: backend_state(record.to).into(),
        at_unix_nanos: clock.unix_nanos(record.at),
        code: result_code(record.code).into(),
        detail: record.detail.clone(),
    }
}

pub(crate) fn backend_info(
    snapshot: &BackendSnapshot,
    config: &Config,
    clock: &WallClock,
) -> v1::BackendInfo {
    let name: &str = &snapshot.name;
    v1::BackendInfo {
        name: name.to_owned(),
        address: snapshot.address.to_string(),
        state: backend_state(snapshot.state).into(),
        enabled: snapshot.enabled,
        healthcheck: config
            .backend(name)
            .and_then(|b| b.healthcheck.clone())
            .unwrap_or_default(),
        counter: snapshot.counter,
        rise: snapshot.rise,
        fall: snapshot.fall,
        transitions: snapshot
            .history
            .iter()
            .map(|r| transition(r, clock))
            .collect(),
        last_result: snapshot.last_result.as_ref().map(probe_result),
        frontends: config
            .frontends_of_backend(name)
            .map(str::to_owned)
            .collect(),
    }
}

pub(crate) fn health_check_info(check: &HealthCheck, config: &Config) -> v1::HealthCheckInfo {
    let check_type = match &check.kind {
        CheckKind::Http(_) => v1::HealthCheckType::Http,
        CheckKind::Https { .. } => v1::HealthCheckType::Https,
        CheckKind::Tcp { .. } => v1::HealthCheckType::Tcp,
        CheckKind::Icmp => v1::HealthCheckType::Icmp,
    };
    let mut backends: Vec<String> = config
        .backends
        .values()
        .filter(|b| b.healthcheck.as_deref() == Some(check.name.as_str()))
        .map(|b| b.name.clone())
        .collect();
    backends.sort();
    v1::HealthCheckInfo {
        name: check.name.clone(),
        r#type: check_type.into(),
        port: check.port.map_or(0, u32::from),
        interval_ms: to_millis(check.interval),
        fast_interval_ms: to_millis(check.fast_interval),
        down_interval_ms: to_millis(check.down_interval),
        timeout_ms: to_millis(check.timeout),
        rise: u32::from(check.rise),
        fall: u32::from(check.fall),
        probe_ipv4_src: check
            .probe_ipv4_src
            .map(|a| a.to_string())
            .unwrap_or_default(),
        probe_ipv6_src: check
            .probe_ipv6_src
            .map(|a| a.to_string())
            .unwrap_or_default(),
        http: check.kind.http().map(|http| v1::HttpCheckParams {
            path: http.path.clone(),
            host: http.host.clone().unwrap_or_default(),
            response_code_min: u32::from(http.response_codes.min),
            response_code_max: u32::from(http.response_codes.max),
            response_regexp: http
                .response_regexp
                .as_ref()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        }),
        tls: check.kind.tls().map(|tls| v1::TlsCheckParams {
            server_name: tls.server_name.clone().unwrap_or_default(),
            insecure_skip_verify: tls.insecure_skip_verify,
        }),
        backends,
    }
}

/// Names for the addresses and VIP keys VPP speaks in.
pub(crate) struct Names<'a> {
    frontends: HashMap<plan::VipKey, &'a str>,
    backends: HashMap<IpAddr, &'a str>,
}

impl<'a> Names<'a> {
    pub(crate) fn new(config: &'a Config) -> Self {
        let frontends = config
            .frontends
            .iter()
            .map(|f| (maglev_core::desired::vip_key(f), f.name.as_str()))
            .collect();
        let mut backends = HashMap::new();
        // The first backend (by name) with an address names it.
        for (name, backend) in &config.backends {
            backends.entry(backend.address).or_insert(name.as_str());
        }
        Self {
            frontends,
            backends,
        }
    }

    pub(crate) fn frontend(&self, key: &plan::VipKey) -> String {
        self.frontends
            .get(key)
            .map(|n| (*n).to_owned())
            .unwrap_or_default()
    }

    pub(crate) fn backend(&self, address: &IpAddr) -> String {
        self.backends
            .get(address)
            .map(|n| (*n).to_owned())
            .unwrap_or_default()
    }
}

/// One plan operation as the wire's `LBSyncOp`: the varying part of each kind is data.
pub(crate) fn op(op: &Op, names: &Names<'_>) -> v1::LbSyncOp {
    let key = op.key();
    let mut out = v1::LbSyncOp {
        frontend: names.frontend(key),
        prefix: key.prefix.to_string(),
        protocol: protocol_number(key.protocol).into(),
        port: u32::from(key.port),
        ..v1::LbSyncOp::default()
    };
    let (kind, address) = match *op {
        Op::VipAdd {
            encap: e,
            src_ip_sticky,
            table_len,
            ..
        } => {
            out.encap = encap(e).into();
            out.src_ip_sticky = src_ip_sticky;
            out.new_flows_table_length = table_len;
            (v1::LbSyncOpKind::VipAdd, None)
        }
        Op::VipDel {
            encap: e,
            src_ip_sticky,
            ..
        } => {
            out.encap = encap(e).into();
            out.src_ip_sticky = src_ip_sticky;
            (v1::LbSyncOpKind::VipDel, None)
        }
        Op::AsAdd {
            address, weight, ..
        } => {
            out.weight = u32::from(weight);
            (v1::LbSyncOpKind::AsAdd, Some(address))
        }
        Op::AsDel { address, flush, .. } => {
            out.flush = flush;
            (v1::LbSyncOpKind::AsDel, Some(address))
        }
        Op::AsSetWeight {
            address,
            weight,
            flush,
            ..
        } => {
            out.weight = u32::from(weight);
            out.flush = flush;
            (v1::LbSyncOpKind::AsSetWeight, Some(address))
        }
    };
    out.kind = kind.into();
    if let Some(address) = address {
        out.address = address.to_string();
        out.backend = names.backend(&address);
    }
    out
}

/// A sync's summary on the wire; flushes are counted from its operations.
pub(crate) fn sync_summary(
    frontend: String,
    ok: bool,
    error: Option<String>,
    ops: &[Op],
    stats: &plan::PlanStats,
    duration: std::time::Duration,
) -> v1::SyncSummary {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let flushes = ops
        .iter()
        .filter(|op| {
            matches!(
                op,
                Op::AsDel { flush: true, .. } | Op::AsSetWeight { flush: true, .. }
            )
        })
        .count();
    v1::SyncSummary {
        frontend,
        ok,
        error: error.unwrap_or_default(),
        vips_added: count(stats.vip_add),
        vips_deleted: count(stats.vip_del),
        ases_added: count(stats.as_add),
        ases_deleted: count(stats.as_del),
        weights_changed: count(stats.as_weight),
        flushes: count(flushes),
        duration_ms: to_millis(duration),
    }
}
