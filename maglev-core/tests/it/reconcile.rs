//! The reconcile state machine: table tests of the warmup and the flush rules, big configs,
//! and properties over random event sequences with a virtual clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};
use maglev_core::config::{Backend, Config, Frontend, Pool, PoolMember};
use maglev_core::desired::{flush_targets, vip_key};
use maglev_core::plan::Scope;
use maglev_core::reconcile::{
    Admission, JobId, Phase, RETRY_MAX, RETRY_MIN, ReconcileEvent, Reconciler, SyncJob,
    SyncOutcome, SyncReason, SyncRequest, Warmup, WarmupEnd,
};
use maglev_core::weights::BackendState::{self, Disabled, Down, Paused, Removed, Unknown, Up};
use proptest::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A config with a `vpp` section. Frontends: `web` (a, b), `dns` (b, c; no flush-on-down),
/// `mail` (d).
fn yaml(min: &str, max: &str, interval: &str, frontends: &str) -> String {
    format!(
        "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.250
      ipv6-src-address: 2001:db8::250
      sync-interval: {interval}
      startup-min-delay: {min}
      startup-max-delay: {max}
  backends:
    a: {{ address: 10.0.0.1 }}
    b: {{ address: 10.0.0.2 }}
    c: {{ address: 10.0.0.3 }}
    d: {{ address: 10.0.0.4 }}
  frontends:
{frontends}"
    )
}

const WEB: &str = "    web:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools: [ { name: p, backends: { a: {}, b: {} } } ]
";
const DNS: &str = "    dns:
      address: 192.0.2.2
      protocol: udp
      port: 53
      flush-on-down: false
      pools: [ { name: p, backends: { b: {}, c: {} } } ]
";
const MAIL: &str = "    mail:
      address: 192.0.2.3
      protocol: tcp
      port: 25
      pools: [ { name: p, backends: { d: {} } } ]
";
const SMTP: &str = "    smtp:
      address: 192.0.2.4
      protocol: tcp
      port: 587
      pools: [ { name: p, backends: { a: {}, d: {} } } ]
";

fn config(min: &str, max: &str, interval: &str) -> Arc<Config> {
    let text = yaml(min, max, interval, &format!("{WEB}{DNS}{MAIL}"));
    Arc::new(Config::from_yaml_str("t.yaml", &text).unwrap())
}

fn states(list: &[(&str, BackendState)]) -> BTreeMap<String, BackendState> {
    list.iter().map(|&(n, s)| (n.to_owned(), s)).collect()
}

fn all_up() -> BTreeMap<String, BackendState> {
    states(&[("a", Up), ("b", Up), ("c", Up), ("d", Up)])
}

fn events(r: &mut Reconciler) -> Vec<ReconcileEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn names(job: &SyncJob) -> Vec<&str> {
    job.frontends.iter().map(String::as_str).collect()
}

fn flushes(job: &SyncJob) -> Vec<String> {
    job.flush.iter().map(|(k, a)| format!("{k} {a}")).collect()
}

// ---------------------------------------------------------------------------------------
// Warmup tracker

#[test]
fn warmup_phases() {
    // (min, max, elapsed) → phase, next boundary.
    let table = [
        (5, 30, 0, Phase::Hold, Some(5)),
        (5, 30, 4, Phase::Hold, Some(5)),
        (5, 30, 5, Phase::PerFrontend, Some(30)),
        (5, 30, 29, Phase::PerFrontend, Some(30)),
        (5, 30, 30, Phase::Done, None),
        (5, 5, 4, Phase::Hold, Some(5)),
        (5, 5, 5, Phase::Done, None),
        // A max below the min counts as the min.
        (10, 3, 5, Phase::Hold, Some(10)),
        (10, 3, 10, Phase::Done, None),
        (0, 30, 0, Phase::PerFrontend, Some(30)),
        // Both 0: no warmup.
        (0, 0, 0, Phase::Done, None),
    ];
    for (min, max, elapsed, phase, boundary) in table {
        let w = Warmup::new(secs(min), secs(max));
        let at = secs(elapsed);
        assert_eq!(w.phase(at), phase, "{min} {max} {elapsed}");
        assert_eq!(
            w.next_boundary(at),
            boundary.map(secs),
            "{min} {max} {elapsed}"
        );
    }
}

#[test]
fn warmup_admission() {
    // (elapsed, released before, backends resolved) → admission; min 5, max 30.
    let table = [
        (1, false, false, Admission::Held),
        (1, false, true, Admission::Held),
        (10, false, false, Admission::Held),
        (10, false, true, Admission::Released),
        (10, true, false, Admission::Open),
        (10, true, true, Admission::Open),
        (30, false, false, Admission::Open),
        (30, false, true, Admission::Open),
    ];
    for (elapsed, released, resolved, want) in table {
        let mut w = Warmup::new(secs(5), secs(30));
        if released {
            assert_eq!(w.admit(secs(5), "f", true), Admission::Released);
        }
        assert_eq!(
            w.admit(secs(elapsed), "f", resolved),
            want,
            "{elapsed} {released} {resolved}"
        );
        assert_eq!(want.allowed(), want != Admission::Held);
        assert_eq!(
            w.is_open(secs(elapsed), "f"),
            want != Admission::Held || elapsed >= 30
        );
    }
}

#[test]
fn warmup_ends_when_every_frontend_is_released_and_keeps_its_clock_on_new_delays() {
    let mut w = Warmup::new(secs(5), secs(30));
    assert!(!w.finish_if_all_released(["x", "y"]));
    w.admit(secs(6), "x", true);
    assert!(!w.finish_if_all_released(["x", "y"]));
    w.admit(secs(7), "y", true);
    assert!(w.finish_if_all_released(["x", "y"]));
    assert!(!w.finish_if_all_released(["x", "y"]), "ends once");
    assert_eq!(w.phase(secs(8)), Phase::Done);

    let mut w = Warmup::new(secs(5), secs(30));
    w.admit(secs(6), "x", true);
    assert!(!w.set_delays(secs(10), secs(20)));
    assert_eq!(
        w.phase(secs(8)),
        Phase::Hold,
        "the new min counts from the same start"
    );
    assert!(w.is_released("x"), "released stays released");
    assert!(w.set_delays(Duration::ZERO, Duration::ZERO), "both 0: off");
    assert_eq!(w.phase(Duration::ZERO), Phase::Done);
    assert!(!w.finish());
}

// ---------------------------------------------------------------------------------------
// The reconciler: warmup

#[test]
fn nothing_is_synced_during_the_hold_phase() {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config("5s", "30s", "60s"), t0);
    r.on_connected(t0);
    assert_eq!(r.poll_timeout(), Some(t0 + secs(5)));
    assert!(r.poll_sync(t0, &all_up()).is_none());
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::Suppressed {
            phase: Phase::Hold,
            held: 3
        }]
    );
    // Polling again without news logs nothing more.
    assert!(r.poll_sync(t0 + SECOND, &all_up()).is_none());
    assert!(events(&mut r).is_empty());
    // Nor does a transition, which holds nothing more.
    r.on_transition("a", Unknown, Up, t0 + secs(2));
    assert!(r.poll_sync(t0 + secs(3), &all_up()).is_none());
    assert!(events(&mut r).is_empty());
    // A reload is logged again.
    r.on_config(config("5s", "30s", "60s"), t0 + secs(4));
    assert!(r.poll_sync(t0 + secs(4), &all_up()).is_none());
    assert_eq!(events(&mut r).len(), 1);
    assert_eq!(r.warmup_phase(t0 + secs(4)), Phase::Hold);
}

#[test]
fn all_frontends_resolved_at_min_delay_give_one_full_sync_and_one_release_event() {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config("5s", "30s", "60s"), t0);
    r.on_connected(t0);
    for b in ["a", "b", "c", "d"] {
        r.on_transition(b, Unknown, Up, t0 + SECOND);
    }
    let _ = events(&mut r);
    r.handle_timeout(t0 + secs(5));
    let job = r.poll_sync(t0 + secs(5), &all_up()).unwrap();
    assert_eq!(job.scopes, [Scope::All]);
    assert_eq!(names(&job), ["web", "dns", "mail"]);
    assert_eq!(job.reason, SyncReason::Connected);
    assert!(job.flush.is_empty());
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::WarmupRelease {
            released: 3,
            held: 0,
            end: Some(WarmupEnd::AllResolved)
        }]
    );
    assert!(r.poll_sync(t0 + secs(5), &all_up()).is_none(), "in flight");
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(6));
    assert!(
        r.poll_sync(t0 + secs(6), &all_up()).is_none(),
        "nothing pending"
    );
    assert_eq!(r.warmup_phase(t0 + secs(6)), Phase::Done);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + secs(65)),
        "only the tick, from the full sync"
    );
}

#[test]
fn released_frontends_sync_per_vip_and_stragglers_go_at_max_delay() {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config("5s", "30s", "60s"), t0);
    let mut st = states(&[("a", Up), ("b", Up)]);
    r.on_transition("a", Unknown, Up, t0 + SECOND);
    r.on_transition("b", Unknown, Up, t0 + SECOND);
    let _ = events(&mut r);
    r.handle_timeout(t0 + secs(5));
    let job = r.poll_sync(t0 + secs(5), &st).unwrap();
    assert_eq!(names(&job), ["web"]);
    assert_eq!(job.reason, SyncReason::Startup);
    let web = vip_key(job.config.frontend("web").unwrap());
    assert_eq!(job.scopes, [Scope::Vip(web)]);
    assert_eq!(
        events(&mut r),
        [
            ReconcileEvent::WarmupRelease {
                released: 1,
                held: 2,
                end: None
            },
            ReconcileEvent::Suppressed {
                phase: Phase::PerFrontend,
                held: 2
            }
        ]
    );
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(6));
    // `web` is not synced again without news.
    assert!(r.poll_sync(t0 + secs(6), &st).is_none());
    // c resolves: dns is released, web stays covered.
    st.insert("c".into(), Down);
    r.on_transition("c", Unknown, Down, t0 + secs(7));
    let job = r.poll_sync(t0 + secs(7), &st).unwrap();
    assert_eq!(names(&job), ["dns"]);
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(8));
    // A transition of a released frontend: synced, with its flush.
    st.insert("a".into(), Down);
    r.on_transition("a", Up, Down, t0 + secs(9));
    // The dry run sees the pending flush in the scopes that hold it, and takes nothing.
    let config = Arc::clone(r.config());
    let web_vip = vip_key(config.frontend("web").unwrap());
    let dns_vip = vip_key(config.frontend("dns").unwrap());
    let listed = |set: maglev_core::plan::FlushSet| -> Vec<String> {
        set.iter().map(|(k, a)| format!("{k} {a}")).collect()
    };
    assert_eq!(
        listed(r.pending_flush(Scope::All)),
        ["192.0.2.1/32 tcp:80 10.0.0.1"]
    );
    assert_eq!(
        listed(r.pending_flush(Scope::Vip(web_vip))),
        ["192.0.2.1/32 tcp:80 10.0.0.1"]
    );
    assert!(r.pending_flush(Scope::Vip(dns_vip)).is_empty());
    let job = r.poll_sync(t0 + secs(9), &st).unwrap();
    assert_eq!(names(&job), ["web"]);
    assert_eq!(flushes(&job), ["192.0.2.1/32 tcp:80 10.0.0.1"]);
    // Taken by the job: nothing pending any more.
    assert!(r.pending_flush(Scope::All).is_empty());
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(10));
    let _ = events(&mut r);
    // mail never resolves: released by the deadline, with a full sync.
    assert_eq!(r.poll_timeout(), Some(t0 + secs(30)));
    r.handle_timeout(t0 + secs(30));
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::WarmupRelease {
            released: 1,
            held: 0,
            end: Some(WarmupEnd::MaxDelay)
        }]
    );
    let job = r.poll_sync(t0 + secs(30), &st).unwrap();
    assert!(job.is_full());
    assert_eq!(job.reason, SyncReason::Startup);
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(31));
    assert!(r.poll_sync(t0 + secs(31), &st).is_none());
}

#[test]
fn a_reload_does_not_reset_the_warmup_clock() {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config("5s", "30s", "60s"), t0);
    r.on_config(config("5s", "30s", "60s"), t0 + secs(4));
    assert_eq!(r.warmup_phase(t0 + secs(4)), Phase::Hold);
    assert_eq!(r.poll_timeout(), Some(t0 + secs(5)));
    let job = r.poll_sync(t0 + secs(5), &all_up()).unwrap();
    assert!(job.is_full());
    assert_eq!(job.reason, SyncReason::Reload);
    // New delays count from the same start: a max already passed ends the warmup at once.
    let mut r = Reconciler::new(config("20s", "40s", "60s"), t0);
    r.on_config(config("5s", "10s", "60s"), t0 + secs(12));
    assert_eq!(r.warmup_phase(t0 + secs(12)), Phase::Done);
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::WarmupRelease {
            released: 3,
            held: 0,
            end: Some(WarmupEnd::MaxDelay)
        }]
    );
    // Both delays 0 turn a running warmup off.
    let mut r = Reconciler::new(config("20s", "40s", "60s"), t0);
    r.on_config(config("0s", "0s", "60s"), t0 + SECOND);
    assert_eq!(r.warmup_phase(t0 + SECOND), Phase::Done);
    assert!(matches!(
        events(&mut r).as_slice(),
        [ReconcileEvent::WarmupRelease {
            end: Some(WarmupEnd::Disabled),
            ..
        }]
    ));
    assert!(r.poll_sync(t0 + SECOND, &all_up()).unwrap().is_full());
}

// ---------------------------------------------------------------------------------------
// The one-time flush rules

/// After a warmup of `min`/`max`, a transition `from` → `to` of `backend` at `at` seconds:
/// the flushes of the job that follows (which frontends' scopes also listed).
fn flush_after(
    min: &str,
    max: &str,
    backend: &str,
    from: BackendState,
    to: BackendState,
    at: u64,
) -> Vec<String> {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config(min, max, "600s"), t0);
    // web released at 5s; dns and mail stay held (c, d unknown).
    let st = states(&[("a", Up), ("b", Up)]);
    let now = t0 + secs(at);
    let mut out = Vec::new();
    if at < 5 {
        r.on_transition(backend, from, to, now);
    }
    r.handle_timeout(t0 + secs(5));
    if let Some(job) = r.poll_sync(t0 + secs(5), &st) {
        out.extend(flushes(&job));
        r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(5));
    }
    if at >= 5 {
        r.on_transition(backend, from, to, now);
    }
    // Run everything due until the end of the warmup.
    let mut t = now;
    for _ in 0..10 {
        r.handle_timeout(t);
        if let Some(job) = r.poll_sync(t, &st) {
            out.extend(flushes(&job));
            r.on_sync_done(job.id, SyncOutcome::Done, t);
        }
        t += secs(10);
    }
    out
}

/// (min, max, backend, from, to, at seconds) → flushes sent.
type FlushCase = (
    &'static str,
    &'static str,
    &'static str,
    BackendState,
    BackendState,
    u64,
    &'static [&'static str],
);

#[test]
fn one_time_flushes_follow_the_rules_of_the_warmup() {
    const WEB_A: &str = "192.0.2.1/32 tcp:80 10.0.0.1";
    const WEB_B: &str = "192.0.2.1/32 tcp:80 10.0.0.2";
    const MAIL_D: &str = "192.0.2.3/32 tcp:25 10.0.0.4";
    // (min, max, backend, from, to, at) → flushes sent.
    let table: [FlushCase; 11] = [
        // Held (hold phase): dropped.
        ("5s", "30s", "a", Up, Down, 2, &[]),
        // Released frontend: kept; dns has flush-on-down false.
        ("5s", "30s", "a", Up, Down, 6, &[WEB_A]),
        ("5s", "30s", "b", Up, Down, 6, &[WEB_B]),
        // dns (b, c) is still held: only web's.
        ("5s", "30s", "b", Up, Disabled, 6, &[WEB_B]),
        (
            "5s",
            "30s",
            "b",
            Up,
            Disabled,
            31,
            &[WEB_B, "192.0.2.2/32 udp:53 10.0.0.2"],
        ),
        // Not a flushing transition.
        ("5s", "30s", "a", Up, Paused, 6, &[]),
        ("5s", "30s", "a", Down, Up, 6, &[]),
        // mail is still held in the per-frontend phase: dropped.
        ("5s", "30s", "d", Up, Down, 6, &[]),
        // After the warmup: kept.
        ("5s", "30s", "d", Up, Down, 31, &[MAIL_D]),
        ("0s", "0s", "d", Unknown, Down, 1, &[MAIL_D]),
        ("5s", "30s", "zz", Up, Down, 31, &[]),
    ];
    for (min, max, backend, from, to, at, want) in table {
        assert_eq!(
            flush_after(min, max, backend, from, to, at),
            want,
            "{min} {max} {backend} {from}->{to} at {at}s"
        );
    }
}

#[test]
fn removed_backends_are_a_transition_like_any_other() {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config("0s", "0s", "600s"), t0);
    let job = r.poll_sync(t0, &all_up()).unwrap();
    r.on_sync_done(job.id, SyncOutcome::Done, t0);
    r.on_transition("b", Up, Removed, t0 + SECOND);
    let job = r.poll_sync(t0 + SECOND, &all_up()).unwrap();
    assert_eq!(names(&job), ["web", "dns"]);
    assert_eq!(job.reason, SyncReason::Transition);
    let c = &job.config;
    assert_eq!(job.flush, flush_targets(c, "b", Up, Removed));
}

// ---------------------------------------------------------------------------------------
// Coalescing, outcomes, triggers

/// A reconciler past its warmup with its first full sync done.
fn settled(interval: &str) -> (Reconciler, Instant) {
    let t0 = Instant::now();
    let mut r = Reconciler::new(config("0s", "0s", interval), t0);
    r.on_connected(t0);
    let job = r.poll_sync(t0, &all_up()).unwrap();
    assert!(job.is_full());
    r.on_sync_done(job.id, SyncOutcome::Done, t0);
    assert!(events(&mut r).is_empty());
    (r, t0)
}

#[test]
fn events_during_a_job_merge_into_one_follow_up() {
    let (mut r, t0) = settled("600s");
    r.on_transition("a", Up, Down, t0);
    let first = r.poll_sync(t0, &all_up()).unwrap();
    assert_eq!(names(&first), ["web"]);
    r.on_transition("a", Down, Up, t0 + SECOND);
    r.on_transition("c", Up, Down, t0 + SECOND);
    r.on_transition("a", Up, Down, t0 + SECOND);
    r.request_sync(SyncRequest::Frontend("mail".into()), t0 + SECOND);
    assert!(
        r.poll_sync(t0 + SECOND, &all_up()).is_none(),
        "one job at a time"
    );
    r.on_sync_done(first.id, SyncOutcome::Done, t0 + secs(2));
    let next = r.poll_sync(t0 + secs(2), &all_up()).unwrap();
    assert_eq!(names(&next), ["web", "dns", "mail"]);
    assert_eq!(next.reason, SyncReason::Transition);
    assert_eq!(flushes(&next), ["192.0.2.1/32 tcp:80 10.0.0.1"]);
    assert!(next.id > first.id);
    r.on_sync_done(next.id, SyncOutcome::Done, t0 + secs(2));
    assert!(r.poll_sync(t0 + secs(2), &all_up()).is_none());
}

#[test]
fn a_failed_job_is_followed_by_a_full_sync_after_a_backoff() {
    let (mut r, t0) = settled("600s");
    r.on_transition("a", Up, Down, t0);
    let job = r.poll_sync(t0, &all_up()).unwrap();
    r.on_sync_done(job.id, SyncOutcome::Failed, t0);
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::RetryScheduled {
            id: job.id,
            after: RETRY_MIN
        }]
    );
    assert!(r.poll_sync(t0, &all_up()).is_none(), "backoff");
    assert_eq!(r.poll_timeout(), Some(t0 + RETRY_MIN));
    r.handle_timeout(t0 + RETRY_MIN);
    let retry = r.poll_sync(t0 + RETRY_MIN, &all_up()).unwrap();
    assert!(retry.is_full());
    assert_eq!(retry.reason, SyncReason::Retry);
    assert_eq!(retry.flush, job.flush, "the flush is not lost");
    // Failing again doubles the backoff, up to the cap.
    let mut at = t0 + RETRY_MIN;
    let mut id = retry.id;
    let mut backoffs = Vec::new();
    for _ in 0..8 {
        r.on_sync_done(id, SyncOutcome::Failed, at);
        let Some(ReconcileEvent::RetryScheduled { after, .. }) = r.poll_event() else {
            panic!("no retry event");
        };
        backoffs.push(after.as_secs());
        at += after;
        r.handle_timeout(at);
        id = r.poll_sync(at, &all_up()).unwrap().id;
    }
    assert_eq!(backoffs, [2, 4, 8, 16, 30, 30, 30, 30]);
    assert_eq!(RETRY_MAX, secs(30));
    // A success resets it.
    r.on_sync_done(id, SyncOutcome::Done, at);
    r.request_sync(SyncRequest::All, at);
    let job = r.poll_sync(at, &all_up()).unwrap();
    r.on_sync_done(job.id, SyncOutcome::Failed, at);
    assert_eq!(
        r.poll_event(),
        Some(ReconcileEvent::RetryScheduled {
            id: job.id,
            after: RETRY_MIN
        })
    );
}

#[test]
fn an_aborted_or_abandoned_job_is_followed_by_a_full_sync_at_once() {
    let (mut r, t0) = settled("600s");
    r.on_transition("a", Up, Down, t0);
    let job = r.poll_sync(t0, &all_up()).unwrap();
    r.on_sync_done(job.id, SyncOutcome::Aborted, t0);
    let next = r.poll_sync(t0, &all_up()).unwrap();
    assert!(next.is_full());
    assert_eq!(next.flush, job.flush);

    r.on_disconnected(t0 + SECOND);
    assert_eq!(events(&mut r), [ReconcileEvent::Abandoned { id: next.id }]);
    // The abandoned job's late outcome is ignored.
    r.on_sync_done(next.id, SyncOutcome::Done, t0 + SECOND);
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::StaleOutcome { id: next.id }]
    );
    r.on_connected(t0 + secs(2));
    let again = r.poll_sync(t0 + secs(2), &all_up()).unwrap();
    assert!(again.is_full());
    assert_eq!(again.reason, SyncReason::Connected);
    assert_eq!(again.flush, job.flush);
    r.on_sync_done(again.id, SyncOutcome::Done, t0 + secs(2));
    assert!(r.poll_sync(t0 + secs(2), &all_up()).is_none());
}

#[test]
fn lag_is_absorbed_by_a_pending_full_sync_and_escalates_otherwise() {
    let (mut r, t0) = settled("600s");
    r.on_lagged(7, t0);
    assert_eq!(events(&mut r), [ReconcileEvent::LagEscalated { missed: 7 }]);
    r.on_lagged(9, t0);
    assert!(events(&mut r).is_empty(), "absorbed silently");
    let job = r.poll_sync(t0, &all_up()).unwrap();
    assert!(job.is_full());
    assert_eq!(job.reason, SyncReason::Lagged);
    // While the full sync is in flight, lost transitions call for another one.
    r.on_lagged(3, t0);
    assert_eq!(events(&mut r), [ReconcileEvent::LagEscalated { missed: 3 }]);
    r.on_sync_done(job.id, SyncOutcome::Done, t0);
    assert!(r.poll_sync(t0, &all_up()).unwrap().is_full());
}

#[test]
fn the_sync_interval_ticks_a_full_sync_and_restarts_at_each_full_sync() {
    let (mut r, t0) = settled("30s");
    assert_eq!(r.poll_timeout(), Some(t0 + secs(30)));
    r.handle_timeout(t0 + secs(30));
    let job = r.poll_sync(t0 + secs(30), &all_up()).unwrap();
    assert!(job.is_full());
    assert_eq!(job.reason, SyncReason::Periodic);
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(31));
    assert_eq!(r.poll_timeout(), Some(t0 + secs(60)));
    // An operator full sync at 40s moves the next tick to 70s.
    r.request_sync(SyncRequest::All, t0 + secs(40));
    let job = r.poll_sync(t0 + secs(40), &all_up()).unwrap();
    assert_eq!(job.reason, SyncReason::Operator);
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(40));
    assert_eq!(r.poll_timeout(), Some(t0 + secs(70)));
    // A reload with another interval restarts the tick at the reload.
    r.on_config(config("0s", "0s", "10s"), t0 + secs(45));
    assert_eq!(r.poll_timeout(), Some(t0 + secs(55)));
}

#[test]
fn requests_and_reloads() {
    let (mut r, t0) = settled("600s");
    r.request_sync(SyncRequest::Frontend("nope".into()), t0);
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::UnknownFrontend {
            name: "nope".into()
        }]
    );
    assert!(r.poll_sync(t0, &all_up()).is_none());
    r.request_sync(SyncRequest::Frontend("dns".into()), t0);
    let job = r.poll_sync(t0, &all_up()).unwrap();
    assert_eq!(
        (names(&job), job.reason),
        (vec!["dns"], SyncReason::Operator)
    );
    // While it runs, mail is touched, then a reload drops mail and adds smtp.
    r.on_transition("d", Up, Down, t0);
    let text = yaml("0s", "0s", "600s", &format!("{WEB}{DNS}{SMTP}"));
    let reloaded = Arc::new(Config::from_yaml_str("t.yaml", &text).unwrap());
    r.on_config(Arc::clone(&reloaded), t0 + SECOND);
    assert!(Arc::ptr_eq(r.config(), &reloaded));
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + SECOND);
    let job = r.poll_sync(t0 + SECOND, &all_up()).unwrap();
    assert!(job.is_full());
    assert!(Arc::ptr_eq(&job.config, &reloaded));
    assert_eq!(names(&job), ["web", "dns", "smtp"]);
    assert_eq!(job.reason, SyncReason::Reload);
    // A transition now reaches smtp through the new index.
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + SECOND);
    r.on_transition("d", Down, Up, t0 + secs(2));
    assert_eq!(
        names(&r.poll_sync(t0 + secs(2), &all_up()).unwrap()),
        ["smtp"]
    );
}

#[test]
fn no_job_without_a_vpp_section() {
    let t0 = Instant::now();
    let text = format!(
        "maglev:\n  backends:\n    a: {{ address: 10.0.0.1 }}\n    b: {{ address: 10.0.0.2 }}\n  frontends:\n{WEB}"
    );
    let c = Arc::new(Config::from_yaml_str("t.yaml", &text).unwrap());
    let mut r = Reconciler::new(c, t0);
    r.on_connected(t0);
    r.on_transition("a", Unknown, Up, t0);
    assert!(r.poll_sync(t0 + secs(3600), &all_up()).is_none());
    // A reload that adds it: a full sync.
    r.on_config(config("0s", "0s", "60s"), t0 + secs(3600));
    assert!(r.poll_sync(t0 + secs(3600), &all_up()).unwrap().is_full());
}

#[test]
fn job_ids_and_reasons_have_names() {
    let (mut r, t0) = settled("600s");
    r.request_sync(SyncRequest::All, t0);
    let job = r.poll_sync(t0, &all_up()).unwrap();
    assert_eq!(job.id.get(), 2);
    assert_eq!(job.id.to_string(), "2");
    assert_eq!(r.in_flight(), Some(job.id));
    let reasons = [
        SyncReason::Startup,
        SyncReason::Connected,
        SyncReason::Reload,
        SyncReason::Transition,
        SyncReason::Periodic,
        SyncReason::Operator,
        SyncReason::Lagged,
        SyncReason::Retry,
    ];
    let names: BTreeSet<&str> = reasons.iter().map(|r| r.as_str()).collect();
    assert_eq!(names.len(), reasons.len());
    assert_eq!(
        ReconcileEvent::LagEscalated { missed: 1 }.name(),
        "vpp-lbsync-lagged"
    );
    assert_eq!(Phase::PerFrontend.as_str(), "per-frontend");
    assert_eq!(WarmupEnd::MaxDelay.as_str(), "startup-max-delay");
}

// ---------------------------------------------------------------------------------------
// Big configs (10,000 backends)

/// 100 frontends of 100 backends each (10,000 backends), built once.
fn big_config() -> Arc<Config> {
    static BIG: OnceLock<Arc<Config>> = OnceLock::new();
    let small = config("5s", "30s", "600s");
    Arc::clone(BIG.get_or_init(|| {
        let address = |n: u32| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + n));
        let backends: BTreeMap<String, Backend> = (0..10_000)
            .map(|n: u32| {
                let backend = Backend {
                    name: format!("b{n}"),
                    address: address(n),
                    healthcheck: None,
                    enabled: true,
                };
                (backend.name.clone(), backend)
            })
            .collect();
        let template = small.frontend("web").unwrap();
        let frontends = (0..100u32)
            .map(|f| {
                let vip = Ipv4Addr::from(0xc000_0200 + f);
                Frontend {
                    name: format!("f{f}"),
                    address: IpAddr::from(vip),
                    prefix: IpNet::from(Ipv4Net::new(vip, 32).unwrap()),
                    pools: vec![Pool {
                        name: "p".into(),
                        backends: (0..100)
                            .map(|b| PoolMember {
                                backend: format!("b{}", f * 100 + b),
                                weight: 100,
                            })
                            .collect(),
                    }],
                    ..template.clone()
                }
            })
            .collect();
        Arc::new(Config {
            backends,
            frontends,
            ..(*small).clone()
        })
    }))
}

#[test]
fn a_big_start_is_one_full_sync_with_one_release_event() {
    let c = big_config();
    let t0 = Instant::now();
    let mut r = Reconciler::new(Arc::clone(&c), t0);
    r.on_connected(t0);
    let mut st = BTreeMap::new();
    // Backends resolve during the hold phase, with lag on the way.
    for (i, name) in c.backends.keys().enumerate() {
        st.insert(name.clone(), Up);
        r.on_transition(name, Unknown, Up, t0 + SECOND);
        if i % 1000 == 0 {
            r.on_lagged(50, t0 + SECOND);
        }
        assert!(r.poll_sync(t0 + SECOND, &st).is_none());
    }
    let during: Vec<_> = events(&mut r);
    assert!(
        during
            .iter()
            .all(|e| matches!(e, ReconcileEvent::Suppressed { .. })),
        "no warning, only debug events: {during:?}"
    );
    assert_eq!(during.len(), 1, "one debug event for the whole storm");
    r.handle_timeout(t0 + secs(5));
    let job = r.poll_sync(t0 + secs(5), &st).unwrap();
    assert!(job.is_full());
    assert_eq!(job.frontends.len(), 100);
    assert_eq!(
        events(&mut r),
        [ReconcileEvent::WarmupRelease {
            released: 100,
            held: 0,
            end: Some(WarmupEnd::AllResolved)
        }]
    );
    r.on_sync_done(job.id, SyncOutcome::Done, t0 + secs(6));
    assert!(r.poll_sync(t0 + secs(6), &st).is_none(), "no second sync");
    assert!(events(&mut r).is_empty());
}

#[test]
fn a_big_start_resolving_during_the_per_frontend_phase_syncs_each_frontend_once() {
    let c = big_config();
    let t0 = Instant::now();
    let mut r = Reconciler::new(Arc::clone(&c), t0);
    r.on_connected(t0);
    r.handle_timeout(t0 + secs(5));
    let mut st = BTreeMap::new();
    let mut synced: BTreeMap<String, usize> = BTreeMap::new();
    let mut full = 0;
    let mut now = t0 + secs(5);
    let mut job: Option<SyncJob> = None;
    let mut steps = 0;
    let mut released = 0;
    let mut count = |r: &mut Reconciler| {
        for event in events(r) {
            if let ReconcileEvent::WarmupRelease { released: n, .. } = event {
                steps += 1;
                released += n;
            }
        }
    };
    for name in c.backends.keys() {
        st.insert(name.clone(), Up);
        r.on_transition(name, Unknown, Up, now);
        if let Some(j) = job.take() {
            r.on_sync_done(j.id, SyncOutcome::Done, now);
        }
        if let Some(j) = r.poll_sync(now, &st) {
            if j.is_full() {
                full += 1;
            } else {
                for f in &j.frontends {
                    *synced.entry(f.clone()).or_default() += 1;
                }
            }
            job = Some(j);
        }
        count(&mut r);
        now += Duration::from_millis(1);
    }
    if let Some(j) = job.take() {
        r.on_sync_done(j.id, SyncOutcome::Done, now);
    }
    // 99 frontends per VIP once each as they resolve, the last one's release ends the warmup
    // with the one full sync.
    assert_eq!(full, 1);
    assert_eq!(synced.len(), 99);
    assert!(synced.values().all(|&n| n == 1), "{synced:?}");
    // One summary per step: releases that happen while a job runs are counted together.
    count(&mut r);
    assert_eq!(released, 100);
    assert!((1..=100).contains(&steps), "{steps} release events");
    assert!(r.poll_sync(now, &st).is_none());
}

#[test]
fn a_big_reload_is_one_full_sync() {
    let (mut r, t0) = settled("600s");
    let c = big_config();
    r.on_config(Arc::clone(&c), t0);
    let mut st = BTreeMap::new();
    for (i, name) in c.backends.keys().enumerate() {
        st.insert(name.clone(), Up);
        r.on_transition(name, Unknown, Up, t0);
        if i % 1000 == 0 {
            r.on_lagged(50, t0);
        }
    }
    let job = r.poll_sync(t0, &st).unwrap();
    assert!(job.is_full());
    assert_eq!(job.reason, SyncReason::Reload);
    assert!(events(&mut r).is_empty());
    r.on_sync_done(job.id, SyncOutcome::Done, t0);
    assert!(r.poll_sync(t0, &st).is_none(), "no redundant second sync");
}

// ---------------------------------------------------------------------------------------
// Properties over random event sequences

#[derive(Debug, Clone)]
enum Input {
    Advance(u64),
    Transition(usize, BackendState),
    Lagged,
    Connected,
    Disconnected,
    RequestAll,
    RequestFrontend(usize),
    Reload(usize),
    Complete(SyncOutcome),
}

const BACKENDS: [&str; 4] = ["a", "b", "c", "d"];
const FRONTEND_NAMES: [&str; 5] = ["web", "dns", "mail", "smtp", "nope"];

fn configs() -> Vec<Arc<Config>> {
    let mk = |min: &str, max: &str, interval: &str, fronts: &str| {
        Arc::new(Config::from_yaml_str("t.yaml", &yaml(min, max, interval, fronts)).unwrap())
    };
    vec![
        mk("5s", "30s", "20s", &format!("{WEB}{DNS}{MAIL}")),
        mk("2s", "10s", "7s", &format!("{WEB}{DNS}{SMTP}")),
        mk("0s", "0s", "5s", &format!("{DNS}{MAIL}{SMTP}")),
        mk("8s", "8s", "15s", &format!("{WEB}{MAIL}")),
    ]
}

fn arb_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (0u64..12_000).prop_map(Input::Advance),
        6 => (0..BACKENDS.len(), proptest::sample::select(BackendState::ALL.to_vec()))
            .prop_map(|(b, s)| Input::Transition(b, s)),
        1 => Just(Input::Lagged),
        1 => Just(Input::Connected),
        1 => Just(Input::Disconnected),
        1 => Just(Input::RequestAll),
        1 => (0..FRONTEND_NAMES.len()).prop_map(Input::RequestFrontend),
        1 => (0usize..4).prop_map(Input::Reload),
        5 => proptest::sample::select(vec![
            SyncOutcome::Done,
            SyncOutcome::Done,
            SyncOutcome::Done,
            SyncOutcome::Failed,
            SyncOutcome::Aborted
        ])
        .prop_map(Input::Complete),
    ]
}

/// What the test knows independently of the reconciler.
struct Model {
    configs: Vec<Arc<Config>>,
    config: Arc<Config>,
    start: Instant,
    now: Instant,
    states: BTreeMap<String, BackendState>,
    in_flight: Option<SyncJob>,
    /// Frontends touched since a job last covered them: must be covered later.
    owed: BTreeSet<String>,
    /// A full trigger since the last full job: a full job must follow.
    owe_full: bool,
    /// One-time flushes asked for after the warmup: must be sent later.
    owed_flush: BTreeSet<(String, IpAddr)>,
    /// Flushes that may be sent (asked for while the warmup released frontends).
    may_flush: BTreeSet<(String, IpAddr)>,
    /// Frontends with an input since their last per-VIP sync (a sync needs one).
    dirty: BTreeSet<String>,
    /// A full trigger since the last full job (a full job needs one, or the tick).
    full_dirty: bool,
    /// `startup-min-delay` passed under the config of that time, or the warmup was turned off.
    over_min: bool,
    last_full: Instant,
    /// The last job handed out.
    last_id: Option<JobId>,
}

impl Model {
    fn new(start: Instant) -> Self {
        let configs = configs();
        let config = Arc::clone(&configs[0]);
        let mut m = Self {
            config,
            configs,
            start,
            now: start,
            states: BTreeMap::new(),
            in_flight: None,
            owed: BTreeSet::new(),
            owe_full: true,
            owed_flush: BTreeSet::new(),
            may_flush: BTreeSet::new(),
            dirty: BTreeSet::new(),
            full_dirty: true,
            over_min: false,
            last_full: start,
            last_id: None,
        };
        m.all_dirty();
        m
    }

    fn observe_min(&mut self) {
        let lb = self.lb();
        let off = lb.startup_min_delay.is_zero() && lb.startup_max_delay.is_zero();
        self.over_min |= off || self.now - self.start >= lb.startup_min_delay;
    }

    fn lb(&self) -> &maglev_core::config::VppLb {
        &self.config.vpp.as_ref().unwrap().lb
    }

    fn all_dirty(&mut self) {
        self.full_dirty = true;
        self.owe_full = true;
        self.dirty = self
            .config
            .frontends
            .iter()
            .map(|f| f.name.clone())
            .collect();
    }

    /// Calls `handle_timeout` at every deadline up to `to`, polling after each.
    fn run_until(&mut self, r: &mut Reconciler, to: Instant) -> Result<(), TestCaseError> {
        for _ in 0..10_000 {
            match r.poll_timeout() {
                Some(at) if at <= to => {
                    prop_assert!(at >= self.now, "a deadline in the past");
                    self.observe_min();
                    self.now = at;
                    r.handle_timeout(at);
                    self.check_timeout(r)?;
                    self.poll(r)?;
                }
                _ => break,
            }
        }
        self.now = self.now.max(to);
        r.handle_timeout(self.now);
        self.check_timeout(r)?;
        self.poll(r)
    }

    fn check_timeout(&self, r: &Reconciler) -> Result<(), TestCaseError> {
        if let Some(at) = r.poll_timeout() {
            prop_assert!(
                at > self.now,
                "poll_timeout {at:?} not after {:?}",
                self.now
            );
        }
        let lb = self.lb();
        let elapsed = self.now - self.start;
        if elapsed >= lb.startup_max_delay.max(lb.startup_min_delay) {
            prop_assert_eq!(
                r.warmup_phase(self.now),
                Phase::Done,
                "released by max-delay"
            );
        }
        Ok(())
    }

    fn poll(&mut self, r: &mut Reconciler) -> Result<(), TestCaseError> {
        let job = r.poll_sync(self.now, &self.states);
        let Some(job) = job else {
            return Ok(());
        };
        prop_assert!(self.in_flight.is_none(), "two jobs in flight");
        let elapsed = self.now - self.start;
        self.observe_min();
        prop_assert!(
            self.over_min,
            "a job at {elapsed:?}, before startup-min-delay"
        );
        prop_assert!(Arc::ptr_eq(&job.config, &self.config));
        let phase = r.warmup_phase(self.now);
        if job.is_full() {
            prop_assert_eq!(phase, Phase::Done, "a full sync during the warmup");
            prop_assert!(
                self.full_dirty
                    || (job.reason == SyncReason::Periodic
                        && self.now - self.last_full >= self.lb().sync_interval),
                "a full sync without a trigger: {:?}",
                job.reason
            );
            self.full_dirty = false;
            self.owe_full = false;
            self.last_full = self.now;
            self.owed.clear();
            self.dirty.clear();
            let all: Vec<String> = self
                .config
                .frontends
                .iter()
                .map(|f| f.name.clone())
                .collect();
            prop_assert_eq!(&job.frontends, &all);
        } else {
            prop_assert!(
                !(self.owe_full && phase == Phase::Done),
                "a full sync is owed"
            );
            prop_assert_eq!(job.scopes.len(), job.frontends.len());
            let unique: BTreeSet<&String> = job.frontends.iter().collect();
            prop_assert_eq!(
                unique.len(),
                job.frontends.len(),
                "a frontend twice in a job"
            );
            for (scope, name) in job.scopes.iter().zip(&job.frontends) {
                let f = self.config.frontend(name);
                prop_assert!(f.is_some());
                prop_assert_eq!(*scope, Scope::Vip(vip_key(f.unwrap())));
                prop_assert!(
                    self.dirty.remove(name),
                    "{} synced again without news",
                    name
                );
                self.owed.remove(name);
            }
            for (vip, _) in job.flush.iter() {
                prop_assert!(
                    job.scopes.contains(&Scope::Vip(*vip)),
                    "a flush outside the job"
                );
            }
        }
        for (vip, address) in job.flush.iter() {
            let key = (vip.to_string(), *address);
            prop_assert!(
                self.owed_flush.contains(&key) || self.may_flush.contains(&key),
                "a flush nobody asked for: {key:?}"
            );
            self.owed_flush.remove(&key);
        }
        prop_assert!(self.last_id < Some(job.id), "job ids increase");
        self.last_id = Some(job.id);
        self.in_flight = Some(job);
        Ok(())
    }

    fn apply(&mut self, r: &mut Reconciler, input: &Input) -> Result<(), TestCaseError> {
        match *input {
            Input::Advance(ms) => {
                let to = self.now + Duration::from_millis(ms);
                return self.run_until(r, to);
            }
            Input::Transition(b, to) => {
                let name = BACKENDS[b];
                let from = self.states.get(name).copied().unwrap_or_default();
                if from == to {
                    return Ok(());
                }
                self.states.insert(name.to_owned(), to);
                let phase = r.warmup_phase(self.now);
                for (vip, address) in flush_targets(&self.config, name, from, to).iter() {
                    let key = (vip.to_string(), *address);
                    match phase {
                        Phase::Done => {
                            self.owed_flush.insert(key);
                        }
                        Phase::PerFrontend => {
                            self.may_flush.insert(key);
                        }
                        Phase::Hold => {}
                    }
                }
                let touched: Vec<String> = self
                    .config
                    .frontends_of_backend(name)
                    .map(str::to_owned)
                    .collect();
                self.owed.extend(touched.iter().cloned());
                self.dirty.extend(touched);
                r.on_transition(name, from, to, self.now);
            }
            Input::Lagged => {
                self.all_dirty();
                r.on_lagged(1, self.now);
            }
            Input::Connected => {
                self.all_dirty();
                r.on_connected(self.now);
            }
            Input::Disconnected => {
                if let Some(job) = self.in_flight.take() {
                    self.failed(&job);
                }
                r.on_disconnected(self.now);
            }
            Input::RequestAll => {
                self.all_dirty();
                r.request_sync(SyncRequest::All, self.now);
            }
            Input::RequestFrontend(f) => {
                let name = FRONTEND_NAMES[f];
                if self.config.frontend(name).is_some() {
                    self.owed.insert(name.to_owned());
                    self.dirty.insert(name.to_owned());
                }
                r.request_sync(SyncRequest::Frontend(name.to_owned()), self.now);
            }
            Input::Reload(i) => {
                self.config = Arc::clone(&self.configs[i]);
                let keep: BTreeSet<String> = self
                    .config
                    .frontends
                    .iter()
                    .map(|f| f.name.clone())
                    .collect();
                self.owed.retain(|f| keep.contains(f));
                let vips: BTreeSet<String> = self
                    .config
                    .frontends
                    .iter()
                    .map(|f| vip_key(f).to_string())
                    .collect();
                self.owed_flush.retain(|(v, _)| vips.contains(v));
                self.all_dirty();
                self.observe_min();
                r.on_config(Arc::clone(&self.config), self.now);
                // The interval may have restarted: no tick was due.
                self.last_full = self.last_full.min(self.now);
            }
            Input::Complete(outcome) => {
                let Some(job) = self.in_flight.take() else {
                    return Ok(());
                };
                if outcome != SyncOutcome::Done {
                    self.failed(&job);
                }
                r.on_sync_done(job.id, outcome, self.now);
            }
        }
        self.poll(r)
    }

    /// The job did not complete: what it covered is owed again, with a full sync.
    fn failed(&mut self, job: &SyncJob) {
        self.owed.extend(job.frontends.iter().cloned());
        for (vip, address) in job.flush.iter() {
            self.owed_flush.insert((vip.to_string(), *address));
        }
        self.all_dirty();
    }

    /// Completes everything and runs past the warmup and any backoff: nothing may be left.
    fn settle(&mut self, r: &mut Reconciler) -> Result<(), TestCaseError> {
        let lb = self.lb();
        let end = (self.start + lb.startup_max_delay.max(lb.startup_min_delay)).max(self.now)
            + RETRY_MAX
            + SECOND;
        for _ in 0..50 {
            if let Some(job) = self.in_flight.take() {
                r.on_sync_done(job.id, SyncOutcome::Done, self.now);
            }
            self.run_until(r, end)?;
            if self.in_flight.is_none() {
                break;
            }
        }
        prop_assert!(self.in_flight.is_none(), "never settles");
        prop_assert!(!self.owe_full, "a full sync was lost");
        prop_assert!(self.owed.is_empty(), "transitions lost for {:?}", self.owed);
        prop_assert!(
            self.owed_flush.is_empty(),
            "flushes lost: {:?}",
            self.owed_flush
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_event_sequences_keep_the_invariants(inputs in proptest::collection::vec(arb_input(), 0..60)) {
        let t0 = Instant::now();
        let mut model = Model::new(t0);
        let mut r = Reconciler::new(Arc::clone(&model.config), t0);
        model.poll(&mut r)?;
        for input in &inputs {
            model.apply(&mut r, input)?;
            while let Some(event) = r.poll_event() {
                if let ReconcileEvent::StaleOutcome { .. } = event {
                    prop_assert!(false, "the model never reports a stale job");
                }
            }
        }
        model.settle(&mut r)?;
    }
}
