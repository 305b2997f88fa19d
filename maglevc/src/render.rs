//! Rendering: a [`Reply`] (what a command got from maglevd) to text for humans, or to JSON
//! for scripts ([`crate::json`]). Pure: the time ages are measured against comes in as a
//! value, and colour is a [`Theme`].

use std::fmt::Write as _;

use maglev_api::v1::{
    BackendInfo, BackendState, CheckConfigResponse, ConfigError, Event, FrontendInfo,
    FrontendState, HealthCheckInfo, LbSyncOp, LbSyncOpKind, ListBackendsResponse,
    ListFrontendsResponse, ListHealthChecksResponse, PlanVpplbSyncResponse, PreviewChangeResponse,
    Protocol, ReloadConfigResponse, SyncSummary, SyncVpplbStateResponse, VersionInfo, VppInfo,
    VpplbCounters, VpplbState, event,
};

use crate::style::{Cell, Fields, Style, Table, Theme, age, millis, timestamp};

/// maglevc's own version.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a command got back, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `show version`: maglevc's version and maglevd's.
    Version(VersionInfo),
    /// `show frontends`.
    Frontends(ListFrontendsResponse),
    /// `show frontend <name>`, and `set frontend ... weight`.
    Frontend(FrontendInfo),
    /// `show backends`.
    Backends(ListBackendsResponse),
    /// `show backend <name>`, and `set backend ...`.
    Backend(BackendInfo),
    /// `show healthchecks`.
    HealthChecks(ListHealthChecksResponse),
    /// `show healthcheck <name>`.
    HealthCheck(HealthCheckInfo),
    /// `show vpp info`.
    VppInfo(VppInfo),
    /// `show vpp lb state`.
    LbState(VpplbState),
    /// `show vpp lb counters`.
    LbCounters(VpplbCounters),
    /// `sync vpp lb state`.
    Sync(SyncVpplbStateResponse),
    /// `sync vpp lb state ... dry-run`.
    Plan(PlanVpplbSyncResponse),
    /// `preview ...`.
    Preview(PreviewChangeResponse),
    /// `config check`.
    ConfigCheck(CheckConfigResponse),
    /// `config reload`.
    ConfigReload(ReloadConfigResponse),
    /// `help`.
    Help(String),
}

impl Reply {
    /// Whether the reply reports a failure the server did not raise as an error (a config
    /// with errors, a sync an operation of which VPP refused): the exit status is then 1.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        match self {
            Self::ConfigCheck(r) => !r.ok,
            Self::ConfigReload(r) => !r.ok,
            Self::Sync(r) => r.summary.as_ref().is_some_and(|s| !s.ok),
            Self::Version(_)
            | Self::Frontends(_)
            | Self::Frontend(_)
            | Self::Backends(_)
            | Self::Backend(_)
            | Self::HealthChecks(_)
            | Self::HealthCheck(_)
            | Self::VppInfo(_)
            | Self::LbState(_)
            | Self::LbCounters(_)
            | Self::Plan(_)
            | Self::Preview(_)
            | Self::Help(_) => false,
        }
    }
}

/// An enum's proto name without its prefix, lower-case: `BACKEND_STATE_UP` is `up`,
/// `LB_SYNC_OP_KIND_AS_ADD` is `as-add`.
#[must_use]
pub fn short(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// A backend state's short name.
#[must_use]
pub fn backend_state(state: BackendState) -> String {
    short(state.as_str_name(), "BACKEND_STATE_")
}

/// A frontend state's short name.
#[must_use]
pub fn frontend_state(state: FrontendState) -> String {
    short(state.as_str_name(), "FRONTEND_STATE_")
}

/// A protocol's short name.
#[must_use]
pub fn protocol(p: Protocol) -> String {
    short(p.as_str_name(), "PROTOCOL_")
}

/// A result code as HAProxy writes it (`L7OK`), or the operator code (`paused`); "-" unset.
#[must_use]
pub fn result_code(code: maglev_api::v1::ResultCode) -> String {
    use maglev_api::v1::ResultCode as C;
    let name = code.as_str_name().trim_start_matches("RESULT_CODE_");
    match code {
        C::Unspecified => "-".to_owned(),
        C::Paused | C::Resumed | C::Disabled | C::Enabled | C::Removed | C::Static => {
            name.to_ascii_lowercase()
        }
        C::L4ok
        | C::L4tout
        | C::L4con
        | C::L6ok
        | C::L6tout
        | C::L6rsp
        | C::L7ok
        | C::L7tout
        | C::L7rsp
        | C::L7sts
        | C::Icmpok
        | C::Icmptout
        | C::Icmperr => name.to_owned(),
    }
}

fn backend_style(state: BackendState) -> Style {
    match state {
        BackendState::Up => Style::Good,
        BackendState::Down => Style::Bad,
        BackendState::Unknown | BackendState::Paused | BackendState::Unspecified => Style::Warn,
        BackendState::Disabled | BackendState::Removed => Style::Dim,
    }
}

fn frontend_style(state: FrontendState) -> Style {
    match state {
        FrontendState::Up => Style::Good,
        FrontendState::Down => Style::Bad,
        FrontendState::Unknown | FrontendState::Unspecified => Style::Warn,
    }
}

fn state_cell(state: BackendState) -> Cell {
    Cell::styled(backend_state(state), backend_style(state))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// `protocol/port` of a VIP, or `any` for an all-port VIP.
fn proto_port(p: Protocol, port: u32) -> String {
    match p {
        Protocol::Any => "any".to_owned(),
        Protocol::Tcp | Protocol::Udp | Protocol::Unspecified => format!("{}/{port}", protocol(p)),
    }
}

/// A bucket share as a percentage with one decimal.
fn share(buckets: u32, of: u32) -> String {
    if of == 0 {
        return "-".to_owned();
    }
    format!("{:.1}%", f64::from(buckets) * 100.0 / f64::from(of))
}

/// Renders a reply for humans. `now_unix_nanos` is the time ages are measured against.
#[must_use]
pub fn text(reply: &Reply, theme: Theme, now_unix_nanos: i64) -> String {
    match reply {
        Reply::Version(v) => version(v, theme),
        Reply::Frontends(r) => frontends(r, theme),
        Reply::Frontend(f) => frontend(f, theme),
        Reply::Backends(r) => backends(r, theme, now_unix_nanos),
        Reply::Backend(b) => backend(b, theme, now_unix_nanos),
        Reply::HealthChecks(r) => healthchecks(r, theme),
        Reply::HealthCheck(h) => healthcheck(h, theme),
        Reply::VppInfo(v) => vpp_info(v, theme, now_unix_nanos),
        Reply::LbState(s) => lb_state(s, theme),
        Reply::LbCounters(c) => lb_counters(c, theme, now_unix_nanos),
        Reply::Sync(s) => sync(s, theme),
        Reply::Plan(p) => plan(p, theme),
        Reply::Preview(p) => preview(p, theme),
        Reply::ConfigCheck(c) => config_outcome(
            theme,
            c.ok,
            &c.path,
            c.parse_error.as_ref(),
            &c.semantic_errors,
            "valid",
        ),
        Reply::ConfigReload(r) => {
            let mut out = config_outcome(
                theme,
                r.ok,
                &r.path,
                r.parse_error.as_ref(),
                &r.semantic_errors,
                "reloaded",
            );
            for (label, names) in [
                ("added", &r.backends_added),
                ("restarted", &r.backends_restarted),
                ("removed", &r.backends_removed),
            ] {
                if !names.is_empty() {
                    let _ = writeln!(out, "backends {label}: {}", names.join(", "));
                }
            }
            out
        }
        Reply::Help(h) => h.clone(),
    }
}

fn version(v: &VersionInfo, theme: Theme) -> String {
    let mut f = Fields::new();
    f.add("maglevc", CLIENT_VERSION);
    f.add("maglevd", or_dash(&v.version));
    if !v.git_commit.is_empty() {
        f.add("maglevd commit", v.git_commit.clone());
    }
    if !v.build_date.is_empty() {
        f.add("maglevd built", v.build_date.clone());
    }
    f.render(theme)
}

fn frontends(r: &ListFrontendsResponse, theme: Theme) -> String {
    let mut t = Table::new(&[
        "FRONTEND",
        "STATE",
        "ADDRESS",
        "PROTO",
        "POOL",
        "UP",
        "DESCRIPTION",
    ]);
    for f in &r.frontends {
        let members: Vec<_> = f.pools.iter().flat_map(|p| &p.backends).collect();
        let up = members.iter().filter(|b| b.effective_weight > 0).count();
        let pool = f
            .pools
            .get(f.active_pool as usize)
            .map_or_else(|| "-".to_owned(), |p| p.name.clone());
        t.row(vec![
            Cell::styled(f.name.clone(), Style::Name),
            Cell::styled(frontend_state(f.state()), frontend_style(f.state())),
            f.prefix.clone().into(),
            proto_port(f.protocol(), f.port).into(),
            pool.into(),
            format!("{up}/{}", members.len()).into(),
            f.description.clone().into(),
        ]);
    }
    t.render(theme)
}

fn frontend(f: &FrontendInfo, theme: Theme) -> String {
    let mut out = String::new();
    let mut fields = Fields::new();
    fields
        .add("frontend", Cell::styled(f.name.clone(), Style::Name))
        .add(
            "state",
            Cell::styled(frontend_state(f.state()), frontend_style(f.state())),
        )
        .add("address", f.prefix.clone())
        .add("protocol", protocol(f.protocol()))
        .add("port", f.port.to_string())
        .add("src-ip-sticky", yes_no(f.src_ip_sticky))
        .add("flush-on-down", yes_no(f.flush_on_down))
        .add("buckets", f.new_flows_table_length.to_string());
    if !f.description.is_empty() {
        fields.add("description", f.description.clone());
    }
    out.push_str(&fields.render(theme));
    for pool in &f.pools {
        let marker = if pool.active { " (active)" } else { "" };
        let _ = writeln!(
            out,
            "\n{}{}",
            theme.paint(Style::Label, &format!("pool {}", pool.name)),
            theme.paint(Style::Good, marker)
        );
        let mut t = Table::new(&[
            "BACKEND",
            "ADDRESS",
            "STATE",
            "WEIGHT",
            "OVERRIDE",
            "EFFECTIVE",
            "BUCKETS",
            "SHARE",
        ])
        .indent(2);
        for b in &pool.backends {
            let mut name = b.name.clone();
            if b.state() == BackendState::Disabled {
                name.push_str(" [disabled]");
            }
            t.row(vec![
                Cell::styled(name, Style::Name),
                b.address.clone().into(),
                state_cell(b.state()),
                b.weight.to_string().into(),
                b.weight_override
                    .map_or_else(|| "-".to_owned(), |w| w.to_string())
                    .into(),
                b.effective_weight.to_string().into(),
                b.buckets.to_string().into(),
                share(b.buckets, f.new_flows_table_length).into(),
            ]);
        }
        out.push_str(&t.render(theme));
    }
    out
}

fn last_change(b: &BackendInfo) -> i64 {
    b.transitions.last().map_or(0, |t| t.at_unix_nanos)
}

fn backends(r: &ListBackendsResponse, theme: Theme, now: i64) -> String {
    let mut t = Table::new(&[
        "BACKEND",
        "ADDRESS",
        "STATE",
        "FOR",
        "HEALTHCHECK",
        "LAST",
        "FRONTENDS",
    ]);
    for b in &r.backends {
        let mut name = b.name.clone();
        if !b.enabled {
            name.push_str(" [disabled]");
        }
        t.row(vec![
            Cell::styled(name, Style::Name),
            b.address.clone().into(),
            state_cell(b.state()),
            age(last_change(b), now).into(),
            or_dash(&b.healthcheck).into(),
            b.last_result
                .as_ref()
                .map_or_else(|| "-".to_owned(), |r| result_code(r.code()))
                .into(),
            b.frontends.join(",").into(),
        ]);
    }
    t.render(theme)
}

fn backend(b: &BackendInfo, theme: Theme, now: i64) -> String {
    let mut fields = Fields::new();
    fields
        .add("backend", Cell::styled(b.name.clone(), Style::Name))
        .add("address", b.address.clone())
        .add("state", state_cell(b.state()))
        .add("for", age(last_change(b), now))
        .add("enabled", yes_no(b.enabled))
        .add("healthcheck", or_dash(&b.healthcheck))
        .add(
            "counter",
            format!("{} (rise {}, fall {})", b.counter, b.rise, b.fall),
        );
    if let Some(r) = &b.last_result {
        let mut s = format!("{} in {}", result_code(r.code()), millis(r.elapsed_ms));
        if !r.detail.is_empty() {
            let _ = write!(s, ": {}", r.detail);
        }
        fields.add("last probe", s);
    }
    fields.add("frontends", or_dash(&b.frontends.join(", ")));
    let mut out = fields.render(theme);
    if !b.transitions.is_empty() {
        out.push('\n');
        let mut t = Table::new(&["AGE", "FROM", "TO", "CODE", "DETAIL"]).indent(2);
        for tr in b.transitions.iter().rev() {
            t.row(vec![
                age(tr.at_unix_nanos, now).into(),
                state_cell(tr.from()),
                state_cell(tr.to()),
                result_code(tr.code()).into(),
                tr.detail.clone().into(),
            ]);
        }
        out.push_str(&theme.paint(Style::Label, "transitions (newest first)"));
        out.push('\n');
        out.push_str(&t.render(theme));
    }
    out
}

fn check_type(h: &HealthCheckInfo) -> String {
    let mut s = short(h.r#type().as_str_name(), "HEALTH_CHECK_TYPE_");
    if h.r#type() == maglev_api::v1::HealthCheckType::Tcp && h.tls.is_some() {
        s.push_str("+tls");
    }
    s
}

fn healthchecks(r: &ListHealthChecksResponse, theme: Theme) -> String {
    let mut t = Table::new(&[
        "HEALTHCHECK",
        "TYPE",
        "PORT",
        "INTERVAL",
        "TIMEOUT",
        "RISE",
        "FALL",
        "BACKENDS",
    ]);
    for h in &r.healthchecks {
        t.row(vec![
            Cell::styled(h.name.clone(), Style::Name),
            check_type(h).into(),
            if h.port == 0 {
                "-".to_owned()
            } else {
                h.port.to_string()
            }
            .into(),
            millis(h.interval_ms).into(),
            millis(h.timeout_ms).into(),
            h.rise.to_string().into(),
            h.fall.to_string().into(),
            h.backends.len().to_string().into(),
        ]);
    }
    t.render(theme)
}

fn healthcheck(h: &HealthCheckInfo, theme: Theme) -> String {
    let mut f = Fields::new();
    f.add("healthcheck", Cell::styled(h.name.clone(), Style::Name))
        .add("type", check_type(h))
        .add(
            "port",
            if h.port == 0 {
                "-".to_owned()
            } else {
                h.port.to_string()
            },
        )
        .add("interval", millis(h.interval_ms))
        .add("fast-interval", millis(h.fast_interval_ms))
        .add("down-interval", millis(h.down_interval_ms))
        .add("timeout", millis(h.timeout_ms))
        .add("rise", h.rise.to_string())
        .add("fall", h.fall.to_string());
    if !h.probe_ipv4_src.is_empty() {
        f.add("probe-ipv4-src", h.probe_ipv4_src.clone());
    }
    if !h.probe_ipv6_src.is_empty() {
        f.add("probe-ipv6-src", h.probe_ipv6_src.clone());
    }
    if let Some(http) = &h.http {
        f.add("path", http.path.clone())
            .add("host", or_dash(&http.host))
            .add(
                "response-code",
                format!("{}-{}", http.response_code_min, http.response_code_max),
            );
        if !http.response_regexp.is_empty() {
            f.add("response-regexp", http.response_regexp.clone());
        }
    }
    if let Some(tls) = &h.tls {
        f.add("server-name", or_dash(&tls.server_name))
            .add("insecure-skip-verify", yes_no(tls.insecure_skip_verify));
    }
    f.add("backends", or_dash(&h.backends.join(", ")));
    f.render(theme)
}

fn time_with_age(at: i64, now: i64) -> String {
    if at == 0 {
        "-".to_owned()
    } else {
        format!("{} ({} ago)", timestamp(at), age(at, now))
    }
}

fn vpp_info(v: &VppInfo, theme: Theme, now: i64) -> String {
    let mut f = Fields::new();
    f.add("version", v.version.clone())
        .add("build date", or_dash(&v.build_date))
        .add("build directory", or_dash(&v.build_directory))
        .add("pid", v.pid.to_string())
        .add("boot time", time_with_age(v.boottime_ns, now))
        .add("connected", time_with_age(v.connecttime_ns, now))
        .add("api socket", or_dash(&v.api_socket));
    f.render(theme)
}

fn lb_state(s: &VpplbState, theme: Theme) -> String {
    let mut out = String::new();
    if let Some(c) = &s.conf {
        let mut f = Fields::new();
        f.add("ip4-src-address", or_dash(&c.ip4_src_address))
            .add("ip6-src-address", or_dash(&c.ip6_src_address))
            .add(
                "sticky-buckets-per-core",
                c.sticky_buckets_per_core.to_string(),
            )
            .add("flow-timeout", format!("{}s", c.flow_timeout_s));
        out.push_str(&f.render(theme));
    }
    for vip in &s.vips {
        let _ = writeln!(
            out,
            "\n{} {} {} encap {} sticky {} buckets {}{}",
            theme.paint(Style::Label, "vip"),
            theme.paint(Style::Name, &vip.prefix),
            proto_port(vip.protocol(), vip.port),
            short(vip.encap().as_str_name(), "ENCAP_"),
            yes_no(vip.src_ip_sticky),
            vip.new_flows_table_length,
            if vip.frontend.is_empty() {
                String::from(" (no frontend)")
            } else {
                format!(" frontend {}", vip.frontend)
            },
        );
        let mut t = Table::new(&["AS", "BACKEND", "WEIGHT", "BUCKETS", "SHARE"]).indent(2);
        for a in &vip.ases {
            t.row(vec![
                a.address.clone().into(),
                or_dash(&a.backend).into(),
                a.weight.to_string().into(),
                a.buckets.to_string().into(),
                share(a.buckets, vip.new_flows_table_length).into(),
            ]);
        }
        out.push_str(&t.render(theme));
    }
    out
}

fn lb_counters(c: &VpplbCounters, theme: Theme, now: i64) -> String {
    let mut out = format!(
        "{} {}\n",
        theme.paint(Style::Label, "scraped:"),
        time_with_age(c.scraped_at_unix_nanos, now)
    );
    let mut t = Table::new(&[
        "VIP",
        "PROTO",
        "FRONTEND",
        "EXISTING",
        "FIRST",
        "UNTRACKED",
        "NO-SERVER",
        "ROUTE-PACKETS",
        "ROUTE-BYTES",
    ]);
    for v in &c.vips {
        t.row(vec![
            v.prefix.clone().into(),
            proto_port(v.protocol(), v.port).into(),
            or_dash(&v.frontend).into(),
            v.existing_session_packets.to_string().into(),
            v.first_session_packets.to_string().into(),
            v.untracked_packets.to_string().into(),
            v.no_server_packets.to_string().into(),
            v.route_packets.to_string().into(),
            v.route_bytes.to_string().into(),
        ]);
    }
    out.push_str(&t.render(theme));
    out
}

/// One sync operation as a line: `as-add 192.0.2.80/32 tcp/80 10.0.0.1 (nginx0) weight 100`.
#[must_use]
pub fn op_line(op: &LbSyncOp) -> String {
    let vip = format!("{} {}", op.prefix, proto_port(op.protocol(), op.port));
    let mut s = format!(
        "{:<13} {vip}",
        short(op.kind().as_str_name(), "LB_SYNC_OP_KIND_")
    );
    match op.kind() {
        LbSyncOpKind::VipAdd => {
            let _ = write!(
                s,
                " encap {} sticky {} buckets {}",
                short(op.encap().as_str_name(), "ENCAP_"),
                yes_no(op.src_ip_sticky),
                op.new_flows_table_length
            );
        }
        LbSyncOpKind::VipDel | LbSyncOpKind::Unspecified => {}
        LbSyncOpKind::AsAdd | LbSyncOpKind::AsDel | LbSyncOpKind::AsSetWeight => {
            let _ = write!(s, " {}", op.address);
            if !op.backend.is_empty() {
                let _ = write!(s, " ({})", op.backend);
            }
            if op.kind() != LbSyncOpKind::AsDel {
                let _ = write!(s, " weight {}", op.weight);
            }
            if op.flush {
                s.push_str(" flush");
            }
        }
    }
    s
}

fn ops(list: &[LbSyncOp]) -> String {
    let mut out = String::new();
    for (i, op) in list.iter().enumerate() {
        let _ = writeln!(out, "{:>3}  {}", i + 1, op_line(op));
    }
    out
}

fn summary_line(s: &SyncSummary, theme: Theme) -> String {
    let verdict = if s.ok {
        theme.paint(Style::Good, "ok")
    } else {
        theme.paint(Style::Bad, &format!("failed: {}", s.error))
    };
    format!(
        "sync {}: {verdict}: {} vip added, {} vip deleted, {} as added, {} as deleted, {} weights changed, {} flushes in {}ms\n",
        if s.frontend.is_empty() {
            "of every frontend"
        } else {
            &s.frontend
        },
        s.vips_added,
        s.vips_deleted,
        s.ases_added,
        s.ases_deleted,
        s.weights_changed,
        s.flushes,
        s.duration_ms
    )
}

fn sync(r: &SyncVpplbStateResponse, theme: Theme) -> String {
    let mut out = if r.ops.is_empty() {
        "no drift: nothing sent\n".to_owned()
    } else {
        ops(&r.ops)
    };
    if let Some(s) = &r.summary {
        out.push_str(&summary_line(s, theme));
    }
    out
}

fn plan(p: &PlanVpplbSyncResponse, _theme: Theme) -> String {
    if p.ops.is_empty() {
        return "no drift: a sync would send nothing\n".to_owned();
    }
    let n = p.ops.len();
    let mut out = format!(
        "a sync would send {n} operation{}:\n",
        if n == 1 { "" } else { "s" }
    );
    out.push_str(&ops(&p.ops));
    out
}

fn preview(p: &PreviewChangeResponse, theme: Theme) -> String {
    let mut out = format!(
        "{} of {} buckets ({}) would change owner\n",
        p.changed_buckets,
        p.table_length,
        share(p.changed_buckets, p.table_length)
    );
    if !p.moves.is_empty() {
        let mut t = Table::new(&["FROM", "TO", "BUCKETS"]).indent(2);
        for m in &p.moves {
            t.row(vec![
                or_dash(&m.from_backend).into(),
                or_dash(&m.to_backend).into(),
                m.buckets.to_string().into(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render(theme));
    }
    let mut t = Table::new(&[
        "BACKEND",
        "WEIGHT",
        "BUCKETS",
        "AFTER WEIGHT",
        "AFTER BUCKETS",
    ])
    .indent(2);
    for before in &p.before {
        let after = p.after.iter().find(|a| a.backend == before.backend);
        t.row(vec![
            Cell::styled(before.backend.clone(), Style::Name),
            before.weight.to_string().into(),
            before.buckets.to_string().into(),
            after
                .map_or_else(|| "-".to_owned(), |a| a.weight.to_string())
                .into(),
            after
                .map_or_else(|| "-".to_owned(), |a| a.buckets.to_string())
                .into(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render(theme));
    out
}

fn config_error_line(e: &ConfigError) -> String {
    let mut s = e.file.clone();
    if e.line > 0 {
        let _ = write!(s, ":{}", e.line);
        if e.column > 0 {
            let _ = write!(s, ":{}", e.column);
        }
    }
    if !e.key.is_empty() {
        let _ = write!(s, ": {}", e.key);
    }
    let _ = write!(s, ": {}", e.message);
    s
}

fn config_outcome(
    theme: Theme,
    ok: bool,
    path: &str,
    parse_error: Option<&ConfigError>,
    semantic: &[ConfigError],
    verdict: &str,
) -> String {
    if ok {
        return format!("{}: {}\n", or_dash(path), theme.paint(Style::Good, verdict));
    }
    let mut out = format!(
        "{}: {}\n",
        or_dash(path),
        theme.paint(Style::Bad, "errors (the running config is unchanged)")
    );
    for e in parse_error.into_iter().chain(semantic) {
        let _ = writeln!(out, "  {}", config_error_line(e));
    }
    out
}

/// One event of `watch events` as one line: its time, its kind, and what happened.
#[must_use]
pub fn event_line(e: &Event, theme: Theme) -> String {
    let at = timestamp(e.at_unix_nanos);
    let body = match &e.event {
        None => "(empty event)".to_owned(),
        Some(event::Event::Backend(b)) => format!(
            "backend {} {} -> {} {}{}{}",
            theme.paint(Style::Name, &b.backend),
            backend_state(b.from()),
            theme.paint(backend_style(b.to()), &backend_state(b.to())),
            result_code(b.code()),
            if b.detail.is_empty() {
                String::new()
            } else {
                format!(" {}", b.detail)
            },
            if b.replay { " (current)" } else { "" }
        ),
        Some(event::Event::Frontend(f)) => format!(
            "frontend {} {} -> {}{}",
            theme.paint(Style::Name, &f.frontend),
            frontend_state(f.from()),
            theme.paint(frontend_style(f.to()), &frontend_state(f.to())),
            if f.replay { " (current)" } else { "" }
        ),
        Some(event::Event::VppConnection(v)) => {
            if v.connected {
                let version = v.info.as_ref().map_or("", |i| i.version.as_str());
                format!("vpp {} {version}", theme.paint(Style::Good, "connected"))
            } else {
                format!(
                    "vpp {}: {}",
                    theme.paint(Style::Bad, "disconnected"),
                    v.reason
                )
            }
        }
        Some(event::Event::SyncOp(o)) => {
            let line = o.op.as_ref().map(op_line).unwrap_or_default();
            if o.ok {
                format!("sync-op {line}")
            } else {
                format!("sync-op {line}: {}", theme.paint(Style::Bad, &o.error))
            }
        }
        Some(event::Event::SyncSummary(s)) => s
            .summary
            .as_ref()
            .map(|s| summary_line(s, theme).trim_end().to_owned())
            .unwrap_or_default(),
        Some(event::Event::ConfigReload(r)) => {
            if r.ok {
                format!("config reload {}", theme.paint(Style::Good, "applied"))
            } else {
                let errors: Vec<String> = r.errors.iter().map(config_error_line).collect();
                format!(
                    "config reload {}: {}",
                    theme.paint(Style::Bad, "refused"),
                    errors.join("; ")
                )
            }
        }
        Some(event::Event::Log(l)) => {
            let fields: Vec<String> = l
                .fields
                .iter()
                .map(|f| format!("{}={}", f.key, f.value))
                .collect();
            format!(
                "log {} {} {}",
                short(l.level().as_str_name(), "LOG_LEVEL_"),
                theme.paint(Style::Name, &l.name),
                fields.join(" ")
            )
            .trim_end()
            .to_owned()
        }
        Some(event::Event::Missed(m)) => theme.paint(
            Style::Warn,
            &format!("missed {} events (too slow)", m.count),
        ),
    };
    format!("{} {body}", theme.paint(Style::Dim, &at))
}

#[cfg(test)]
mod tests;
