//! Unit tests of the text rendering: markers, shares, plural forms and failure verdicts.

use maglev_api::v1::{
    CheckConfigResponse, LbSyncOp, PlanVpplbSyncResponse, PoolBackendInfo, PoolInfo, SyncSummary,
    SyncVpplbStateResponse,
};

use super::*;

fn web() -> FrontendInfo {
    let member = |name: &str, state: BackendState, weight, effective, buckets| PoolBackendInfo {
        name: name.to_owned(),
        weight,
        weight_override: None,
        effective_weight: effective,
        state: state.into(),
        buckets,
        address: "10.0.0.1".to_owned(),
    };
    FrontendInfo {
        name: "web".to_owned(),
        prefix: "192.0.2.80/32".to_owned(),
        protocol: Protocol::Tcp.into(),
        port: 80,
        state: FrontendState::Up.into(),
        new_flows_table_length: 1024,
        pools: vec![PoolInfo {
            name: "primary".to_owned(),
            active: true,
            backends: vec![
                member("a", BackendState::Up, 100, 100, 1024),
                member("b", BackendState::Disabled, 100, 0, 0),
            ],
        }],
        ..FrontendInfo::default()
    }
}

#[test]
fn a_frontend_shows_disabled_members_and_bucket_shares() {
    let text = text(&Reply::Frontend(web()), Theme::PLAIN, 0);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("  a") || l.starts_with("  b"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["a", "10.0.0.1", "up", "100", "-", "100", "1024", "100.0%"]
    );
    assert_eq!(rows[1][..3], ["b", "[disabled]", "10.0.0.1"]);
    assert!(text.contains("pool primary (active)"), "{text}");
}

#[test]
fn coloured_tables_keep_the_plain_layout() {
    let plain = text(&Reply::Frontend(web()), Theme::PLAIN, 0);
    let coloured = text(&Reply::Frontend(web()), Theme { color: true }, 0);
    let strip = regex_free_strip(&coloured);
    assert_ne!(coloured, plain);
    assert_eq!(strip, plain);
}

/// Removes `ESC [ ... m` sequences.
fn regex_free_strip(s: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[test]
fn plans_and_syncs_say_when_there_is_no_drift() {
    let empty = Reply::Plan(PlanVpplbSyncResponse { ops: vec![] });
    assert_eq!(
        text(&empty, Theme::PLAIN, 0),
        "no drift: a sync would send nothing\n"
    );
    let one = Reply::Plan(PlanVpplbSyncResponse {
        ops: vec![LbSyncOp {
            kind: LbSyncOpKind::VipAdd.into(),
            prefix: "192.0.2.80/32".to_owned(),
            protocol: Protocol::Any.into(),
            encap: maglev_api::v1::Encap::Gre4.into(),
            new_flows_table_length: 1024,
            ..LbSyncOp::default()
        }],
    });
    assert_eq!(
        text(&one, Theme::PLAIN, 0),
        "a sync would send 1 operation:\n  1  vip-add       192.0.2.80/32 any encap gre4 sticky no buckets 1024\n"
    );
}

#[test]
fn failures_reported_in_a_reply_are_failures() {
    let failed_sync = Reply::Sync(SyncVpplbStateResponse {
        ops: vec![],
        summary: Some(SyncSummary {
            ok: false,
            error: "VNET_API_ERROR_NO_SUCH_ENTRY".to_owned(),
            ..SyncSummary::default()
        }),
    });
    assert!(failed_sync.is_failure());
    assert!(text(&failed_sync, Theme::PLAIN, 0).contains("failed: VNET_API_ERROR_NO_SUCH_ENTRY"));
    let bad_config = Reply::ConfigCheck(CheckConfigResponse {
        ok: false,
        ..CheckConfigResponse::default()
    });
    assert!(bad_config.is_failure());
    assert!(!Reply::Frontend(web()).is_failure());
}
