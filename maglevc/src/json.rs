//! `--json`: every reply as one JSON document, for scripts and `jq`.
//!
//! The field names are stable: they are the `maglev.v1` proto's field names (snake case), so
//! the proto's comments document them. Three rules differ from the proto's own JSON mapping:
//!
//! - Enums are short lower-case strings: a backend `state` is `"up"`, `"down"`, `"unknown"`,
//!   `"paused"`, `"disabled"` or `"removed"`; a frontend `state` `"up"`, `"down"` or
//!   `"unknown"`; `protocol` is `"tcp"`, `"udp"` or `"any"`; `encap` `"gre4"`, `"gre6"`, ...;
//!   a sync operation's `kind` is `"vip-add"`, `"vip-del"`, `"as-add"`, `"as-del"` or
//!   `"as-set-weight"`; a result `code` is HAProxy's (`"L7OK"`, `"L4CON"`, ...) or an
//!   operator code (`"paused"`, `"disabled"`, ...), `null` when unset.
//! - Every field is present, with its zero value when unset (`""`, `0`, `false`, `[]`);
//!   absent messages and an unset `weight_override` are `null`. Times stay signed unix
//!   nanoseconds (`*_unix_nanos`, `*_ns`), durations whole milliseconds (`*_ms`).
//! - 64-bit integers are JSON numbers (not strings).
//!
//! The documents, by command:
//!
//! | command | document |
//! |---|---|
//! | `show version` | `{client_version, version, git_commit, build_date}` |
//! | `show frontends` | `{frontends: [frontend]}` |
//! | `show frontend <f>`, `set frontend ...` | `frontend`: `{name, address, prefix, protocol, port, description, src_ip_sticky, flush_on_down, state, encap, new_flows_table_length, active_pool, pools: [{name, active, backends: [{name, address, weight, weight_override, effective_weight, state, buckets}]}]}` |
//! | `show backends` | `{backends: [backend]}` |
//! | `show backend <b>`, `set backend ...` | `backend`: `{name, address, state, enabled, healthcheck, counter, rise, fall, frontends, last_result: {code, detail, elapsed_ms}, transitions: [{from, to, at_unix_nanos, code, detail}]}` |
//! | `show healthchecks` | `{healthchecks: [healthcheck]}` |
//! | `show healthcheck <h>` | `{name, type, port, interval_ms, fast_interval_ms, down_interval_ms, timeout_ms, rise, fall, probe_ipv4_src, probe_ipv6_src, http: {path, host, response_code_min, response_code_max, response_regexp}, tls: {server_name, insecure_skip_verify}, backends}` |
//! | `show vpp info` | `{version, build_date, build_directory, pid, boottime_ns, connecttime_ns, api_socket}` |
//! | `show vpp lb state` | `{conf: {ip4_src_address, ip6_src_address, sticky_buckets_per_core, flow_timeout_s}, vips: [{prefix, protocol, port, encap, src_ip_sticky, new_flows_table_length, frontend, ases: [{address, weight, flags, buckets, backend}]}]}` |
//! | `show vpp lb counters` | `{scraped_at_unix_nanos, vips: [{frontend, prefix, protocol, port, existing_session_packets, first_session_packets, untracked_packets, no_server_packets, route_packets, route_bytes}]}` |
//! | `sync vpp lb state` | `{ops: [op], summary: {frontend, ok, error, vips_added, vips_deleted, ases_added, ases_deleted, weights_changed, flushes, duration_ms}}` |
//! | `sync ... dry-run` | `{ops: [op]}`, an op being `{kind, frontend, prefix, protocol, port, address, backend, weight, flush, encap, src_ip_sticky, new_flows_table_length}` |
//! | `preview ...` | `{table_length, changed_buckets, moves: [{from_backend, to_backend, buckets}], before: [{backend, weight, buckets}], after: [...]}` |
//! | `config check` | `{ok, path, parse_error: error, semantic_errors: [error]}`, an error being `{file, line, column, key, message}` |
//! | `config reload` | as `config check`, with `backends_added`, `backends_restarted`, `backends_removed` |
//! | `watch events` | one document per line: `{at_unix_nanos, type, ...}` with `type` one of `backend`, `frontend`, `vpp_connection`, `sync_op`, `sync_summary`, `config_reload`, `log`, `missed` and the event's fields |
//! | `help` | `{help}` |

use maglev_api::v1::{
    BackendInfo, ConfigError, Event, FrontendInfo, HealthCheckInfo, LbSyncOp, ProbeResult,
    SyncSummary, event,
};
use serde_json::{Value, json};

use crate::render::{
    CLIENT_VERSION, Reply, backend_state, frontend_state, protocol, result_code, short,
};

fn code(c: maglev_api::v1::ResultCode) -> Value {
    match result_code(c).as_str() {
        "-" => Value::Null,
        s => Value::from(s),
    }
}

fn encap(e: maglev_api::v1::Encap) -> String {
    short(e.as_str_name(), "ENCAP_")
}

fn frontend(f: &FrontendInfo) -> Value {
    json!({
        "name": f.name,
        "address": f.address,
        "prefix": f.prefix,
        "protocol": protocol(f.protocol()),
        "port": f.port,
        "description": f.description,
        "src_ip_sticky": f.src_ip_sticky,
        "flush_on_down": f.flush_on_down,
        "state": frontend_state(f.state()),
        "encap": encap(f.encap()),
        "new_flows_table_length": f.new_flows_table_length,
        "active_pool": f.active_pool,
        "pools": f.pools.iter().map(|p| json!({
            "name": p.name,
            "active": p.active,
            "backends": p.backends.iter().map(|b| json!({
                "name": b.name,
                "address": b.address,
                "weight": b.weight,
                "weight_override": b.weight_override,
                "effective_weight": b.effective_weight,
                "state": backend_state(b.state()),
                "buckets": b.buckets,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn probe(r: &ProbeResult) -> Value {
    json!({"code": code(r.code()), "detail": r.detail, "elapsed_ms": r.elapsed_ms})
}

fn backend(b: &BackendInfo) -> Value {
    json!({
        "name": b.name,
        "address": b.address,
        "state": backend_state(b.state()),
        "enabled": b.enabled,
        "healthcheck": b.healthcheck,
        "counter": b.counter,
        "rise": b.rise,
        "fall": b.fall,
        "frontends": b.frontends,
        "last_result": b.last_result.as_ref().map(probe),
        "transitions": b.transitions.iter().map(|t| json!({
            "from": backend_state(t.from()),
            "to": backend_state(t.to()),
            "at_unix_nanos": t.at_unix_nanos,
            "code": code(t.code()),
            "detail": t.detail,
        })).collect::<Vec<_>>(),
    })
}

fn healthcheck(h: &HealthCheckInfo) -> Value {
    json!({
        "name": h.name,
        "type": short(h.r#type().as_str_name(), "HEALTH_CHECK_TYPE_"),
        "port": h.port,
        "interval_ms": h.interval_ms,
        "fast_interval_ms": h.fast_interval_ms,
        "down_interval_ms": h.down_interval_ms,
        "timeout_ms": h.timeout_ms,
        "rise": h.rise,
        "fall": h.fall,
        "probe_ipv4_src": h.probe_ipv4_src,
        "probe_ipv6_src": h.probe_ipv6_src,
        "http": h.http.as_ref().map(|p| json!({
            "path": p.path,
            "host": p.host,
            "response_code_min": p.response_code_min,
            "response_code_max": p.response_code_max,
            "response_regexp": p.response_regexp,
        })),
        "tls": h.tls.as_ref().map(|t| json!({
            "server_name": t.server_name,
            "insecure_skip_verify": t.insecure_skip_verify,
        })),
        "backends": h.backends,
    })
}

/// One sync operation.
#[must_use]
pub fn op(o: &LbSyncOp) -> Value {
    json!({
        "kind": short(o.kind().as_str_name(), "LB_SYNC_OP_KIND_"),
        "frontend": o.frontend,
        "prefix": o.prefix,
        "protocol": protocol(o.protocol()),
        "port": o.port,
        "address": o.address,
        "backend": o.backend,
        "weight": o.weight,
        "flush": o.flush,
        "encap": encap(o.encap()),
        "src_ip_sticky": o.src_ip_sticky,
        "new_flows_table_length": o.new_flows_table_length,
    })
}

fn summary(s: &SyncSummary) -> Value {
    json!({
        "frontend": s.frontend,
        "ok": s.ok,
        "error": s.error,
        "vips_added": s.vips_added,
        "vips_deleted": s.vips_deleted,
        "ases_added": s.ases_added,
        "ases_deleted": s.ases_deleted,
        "weights_changed": s.weights_changed,
        "flushes": s.flushes,
        "duration_ms": s.duration_ms,
    })
}

fn config_error(e: &ConfigError) -> Value {
    json!({
        "file": e.file,
        "line": e.line,
        "column": e.column,
        "key": e.key,
        "message": e.message,
    })
}

fn config_errors(errors: &[ConfigError]) -> Value {
    Value::from(errors.iter().map(config_error).collect::<Vec<_>>())
}

/// A reply as a JSON document (see the module doc for the field names).
#[must_use]
pub fn reply(r: &Reply) -> Value {
    match r {
        Reply::Version(v) => json!({
            "client_version": CLIENT_VERSION,
            "version": v.version,
            "git_commit": v.git_commit,
            "build_date": v.build_date,
        }),
        Reply::Frontends(l) => {
            json!({"frontends": l.frontends.iter().map(frontend).collect::<Vec<_>>()})
        }
        Reply::Frontend(f) => frontend(f),
        Reply::Backends(l) => {
            json!({"backends": l.backends.iter().map(backend).collect::<Vec<_>>()})
        }
        Reply::Backend(b) => backend(b),
        Reply::HealthChecks(l) => {
            json!({"healthchecks": l.healthchecks.iter().map(healthcheck).collect::<Vec<_>>()})
        }
        Reply::HealthCheck(h) => healthcheck(h),
        Reply::VppInfo(v) => json!({
            "version": v.version,
            "build_date": v.build_date,
            "build_directory": v.build_directory,
            "pid": v.pid,
            "boottime_ns": v.boottime_ns,
            "connecttime_ns": v.connecttime_ns,
            "api_socket": v.api_socket,
        }),
        Reply::LbState(s) => json!({
            "conf": s.conf.as_ref().map(|c| json!({
                "ip4_src_address": c.ip4_src_address,
                "ip6_src_address": c.ip6_src_address,
                "sticky_buckets_per_core": c.sticky_buckets_per_core,
                "flow_timeout_s": c.flow_timeout_s,
            })),
            "vips": s.vips.iter().map(|v| json!({
                "prefix": v.prefix,
                "protocol": protocol(v.protocol()),
                "port": v.port,
                "encap": encap(v.encap()),
                "src_ip_sticky": v.src_ip_sticky,
                "new_flows_table_length": v.new_flows_table_length,
                "frontend": v.frontend,
                "ases": v.ases.iter().map(|a| json!({
                    "address": a.address,
                    "weight": a.weight,
                    "flags": a.flags,
                    "buckets": a.buckets,
                    "backend": a.backend,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
        Reply::LbCounters(c) => json!({
            "scraped_at_unix_nanos": c.scraped_at_unix_nanos,
            "vips": c.vips.iter().map(|v| json!({
                "frontend": v.frontend,
                "prefix": v.prefix,
                "protocol": protocol(v.protocol()),
                "port": v.port,
                "existing_session_packets": v.existing_session_packets,
                "first_session_packets": v.first_session_packets,
                "untracked_packets": v.untracked_packets,
                "no_server_packets": v.no_server_packets,
                "route_packets": v.route_packets,
                "route_bytes": v.route_bytes,
            })).collect::<Vec<_>>(),
        }),
        Reply::Sync(s) => json!({
            "ops": s.ops.iter().map(op).collect::<Vec<_>>(),
            "summary": s.summary.as_ref().map(summary),
        }),
        Reply::Plan(p) => json!({"ops": p.ops.iter().map(op).collect::<Vec<_>>()}),
        Reply::Preview(p) => {
            let shares = |v: &[maglev_api::v1::BucketShare]| {
                v.iter()
                    .map(
                        |s| json!({"backend": s.backend, "weight": s.weight, "buckets": s.buckets}),
                    )
                    .collect::<Vec<_>>()
            };
            json!({
                "table_length": p.table_length,
                "changed_buckets": p.changed_buckets,
                "moves": p.moves.iter().map(|m| json!({
                    "from_backend": m.from_backend,
                    "to_backend": m.to_backend,
                    "buckets": m.buckets,
                })).collect::<Vec<_>>(),
                "before": shares(&p.before),
                "after": shares(&p.after),
            })
        }
        Reply::ConfigCheck(c) => json!({
            "ok": c.ok,
            "path": c.path,
            "parse_error": c.parse_error.as_ref().map(config_error),
            "semantic_errors": config_errors(&c.semantic_errors),
        }),
        Reply::ConfigReload(c) => json!({
            "ok": c.ok,
            "path": c.path,
            "parse_error": c.parse_error.as_ref().map(config_error),
            "semantic_errors": config_errors(&c.semantic_errors),
            "backends_added": c.backends_added,
            "backends_restarted": c.backends_restarted,
            "backends_removed": c.backends_removed,
        }),
        Reply::Help(h) => json!({"help": h}),
    }
}

/// One event of `watch events` as a JSON document.
#[must_use]
pub fn event(e: &Event) -> Value {
    let (kind, body) = match &e.event {
        None => ("empty", json!({})),
        Some(event::Event::Backend(b)) => (
            "backend",
            json!({
                "backend": b.backend,
                "from": backend_state(b.from()),
                "to": backend_state(b.to()),
                "code": code(b.code()),
                "detail": b.detail,
                "replay": b.replay,
            }),
        ),
        Some(event::Event::Frontend(f)) => (
            "frontend",
            json!({
                "frontend": f.frontend,
                "from": frontend_state(f.from()),
                "to": frontend_state(f.to()),
                "replay": f.replay,
            }),
        ),
        Some(event::Event::VppConnection(v)) => (
            "vpp_connection",
            json!({
                "connected": v.connected,
                "reason": v.reason,
                "version": v.info.as_ref().map(|i| i.version.clone()),
            }),
        ),
        Some(event::Event::SyncOp(o)) => (
            "sync_op",
            json!({"op": o.op.as_ref().map(op), "ok": o.ok, "error": o.error}),
        ),
        Some(event::Event::SyncSummary(s)) => (
            "sync_summary",
            json!({"summary": s.summary.as_ref().map(summary)}),
        ),
        Some(event::Event::ConfigReload(r)) => (
            "config_reload",
            json!({"ok": r.ok, "errors": config_errors(&r.errors)}),
        ),
        Some(event::Event::Log(l)) => (
            "log",
            json!({
                "level": short(l.level().as_str_name(), "LOG_LEVEL_"),
                "name": l.name,
                "target": l.target,
                "fields": l.fields.iter().map(|f| json!({"key": f.key, "value": f.value})).collect::<Vec<_>>(),
            }),
        ),
        Some(event::Event::Missed(m)) => ("missed", json!({"count": m.count})),
    };
    let mut doc = json!({"at_unix_nanos": e.at_unix_nanos, "type": kind});
    if let (Value::Object(doc), Value::Object(body)) = (&mut doc, body) {
        doc.extend(body);
    }
    doc
}
