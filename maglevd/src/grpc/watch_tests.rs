//! WatchEvents with the real sync engine and simulator: every kind of live event, each
//! filter, the replay, and a subscriber too slow to keep up.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use maglev_api::v1::*;
use tokio_stream::StreamExt as _;
use tonic::Streaming;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use super::sync_tests::{CONFIG, Stack};
use crate::log_feed::LogFeed;

fn request(kinds: &[EventKind]) -> WatchRequest {
    WatchRequest {
        backends: vec![],
        frontends: vec![],
        kinds: kinds.iter().map(|k| (*k).into()).collect(),
        log_level: 0,
    }
}

async fn watch(s: &mut Stack, request: WatchRequest) -> Streaming<Event> {
    s.client.watch_events(request).await.unwrap().into_inner()
}

/// The next event matching `pred` (10 s at most), skipping the rest.
async fn next_matching(
    stream: &mut Streaming<Event>,
    mut pred: impl FnMut(&event::Event) -> bool,
) -> event::Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("a matching event in time")
            .unwrap()
            .expect("the stream stays open")
            .event
            .expect("an event");
        if pred(&event) {
            return event;
        }
    }
}

/// Every event that arrives within `quiet` of the previous one.
async fn drain(stream: &mut Streaming<Event>, quiet: Duration) -> Vec<event::Event> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(quiet, stream.next()).await {
        out.extend(e.event);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_transitions_follow_backend_transitions() {
    let mut s = Stack::start().await;
    let mut stream = watch(&mut s, request(&[EventKind::Frontend])).await;
    let replay = drain(&mut stream, Duration::from_millis(300)).await;
    assert_eq!(replay.len(), 2, "one replay per frontend: {replay:?}");
    // c carries dns alone: pausing it takes dns down; web keeps its primary pool and stays up.
    s.checker.pause("c").unwrap();
    let live = drain(&mut stream, Duration::from_millis(500)).await;
    let changes: Vec<_> = live
        .iter()
        .map(|e| match e {
            event::Event::Frontend(f) => (f.frontend.as_str(), f.from(), f.to(), f.replay),
            other => panic!("only frontend events asked for, got {other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        [("dns", FrontendState::Up, FrontendState::Down, false)]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_operations_and_summaries_follow_a_transition() {
    let mut s = Stack::start().await;
    let mut stream = watch(
        &mut s,
        WatchRequest {
            backends: vec!["a".into()],
            frontends: vec!["web".into()],
            kinds: vec![EventKind::SyncOp.into(), EventKind::SyncSummary.into()],
            log_level: 0,
        },
    )
    .await;
    s.checker.disable("a").unwrap();
    let op = next_matching(&mut stream, |_| true).await;
    let event::Event::SyncOp(op) = op else {
        panic!("the operation first, got {op:?}")
    };
    let wire = op.op.expect("an op");
    assert!(op.ok);
    assert_eq!(wire.kind(), LbSyncOpKind::AsSetWeight);
    assert_eq!(
        (
            wire.frontend.as_str(),
            wire.backend.as_str(),
            wire.weight,
            wire.flush
        ),
        ("web", "a", 0, true)
    );
    let summary = next_matching(&mut stream, |_| true).await;
    let event::Event::SyncSummary(summary) = summary else {
        panic!("then the summary, got {summary:?}")
    };
    let summary = summary.summary.unwrap();
    assert!(summary.ok);
    assert_eq!(summary.weights_changed, 1);
    assert_eq!(summary.flushes, 1);
    // The backend filter: b's operation does not come through, its sync's summary does.
    s.checker.disable("b").unwrap();
    let next = next_matching(&mut stream, |_| true).await;
    assert!(
        matches!(next, event::Event::SyncSummary(_)),
        "b's op is filtered out: {next:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_disconnect_and_reconnect_are_reported() {
    let mut s = Stack::start().await;
    let mut stream = watch(&mut s, request(&[EventKind::VppConnection])).await;
    let api = s.sim.api_socket().to_owned();
    s.sim.shutdown();
    let down = next_matching(&mut stream, |_| true).await;
    let event::Event::VppConnection(down) = down else {
        panic!("{down:?}")
    };
    assert!(!down.connected);
    assert!(!down.reason.is_empty());
    let _ = std::fs::remove_file(&api);
    let sim = vpp_sim::Simulator::start(vpp_sim::SimConfig::new(&api))
        .await
        .unwrap();
    let up = next_matching(&mut stream, |_| true).await;
    let event::Event::VppConnection(up) = up else {
        panic!("{up:?}")
    };
    assert!(up.connected);
    let info = up.info.expect("VPP's info on connect");
    assert_eq!(info.pid, std::process::id());
    s.sim = sim;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_reload_is_reported_and_reevaluates_frontends() {
    let mut s = Stack::start().await;
    let mut stream = watch(
        &mut s,
        request(&[EventKind::ConfigReload, EventKind::Frontend]),
    )
    .await;
    let replay = drain(&mut stream, Duration::from_millis(300)).await;
    assert_eq!(replay.len(), 2);
    // The new config moves dns to a, which is up: dns stays up; web loses c (its fallback).
    let reloaded = CONFIG.replace(
        "        - name: all\n          backends:\n            c: {}",
        "        - name: all\n          backends:\n            a: {}",
    );
    assert_ne!(reloaded, CONFIG);
    let loaded = crate::config_file::load_str("test.yaml", &reloaded).unwrap();
    s.config_tx.send_replace(Arc::new(loaded.config));
    let event = next_matching(&mut stream, |_| true).await;
    let event::Event::ConfigReload(reload) = event else {
        panic!("{event:?}")
    };
    assert!(reload.ok && reload.errors.is_empty());
    // dns now rides on a: pausing c changes no frontend's state any more.
    s.checker.pause("c").unwrap();
    let live = drain(&mut stream, Duration::from_millis(500)).await;
    assert!(live.is_empty(), "{live:?}");
    s.stop().await;
}

/// One global subscriber for the test binary, feeding [`LogFeed::global`].
fn install_feed() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::registry()
            .with(LogFeed::global().layer())
            .try_init();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_at_each_subscribers_own_level() {
    install_feed();
    let mut s = Stack::start_with(|svc| svc.with_logs(LogFeed::global().clone())).await;
    let log_request = |level: LogLevel| WatchRequest {
        backends: vec![],
        frontends: vec![],
        kinds: vec![EventKind::Log.into()],
        log_level: level.into(),
    };
    let mut info = watch(&mut s, log_request(LogLevel::Info)).await;
    let mut debug = watch(&mut s, log_request(LogLevel::Debug)).await;
    let mut none = watch(&mut s, request(&[])).await;
    // Both subscriptions are registered once their streams answered; give the tasks a turn.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let token = format!("{:x}", std::ptr::from_ref(&s) as usize);
    tracing::debug!(name: "watch-test-debug", token = %token, "watch-test-debug");
    tracing::info!(name: "watch-test-info", token = %token, "watch-test-info");
    let ours = |e: &event::Event| {
        matches!(e, event::Event::Log(l)
            if l.fields.iter().any(|f| f.key == "token" && f.value == token))
    };
    let first = next_matching(&mut debug, ours).await;
    let event::Event::Log(first) = first else {
        unreachable!()
    };
    assert_eq!(
        (first.name.as_str(), first.level()),
        ("watch-test-debug", LogLevel::Debug)
    );
    assert!(first.target.starts_with("maglevd"));
    let second = next_matching(&mut debug, ours).await;
    assert!(matches!(second, event::Event::Log(l) if l.name == "watch-test-info"));
    let at_info = next_matching(&mut info, ours).await;
    assert!(
        matches!(&at_info, event::Event::Log(l) if l.name == "watch-test-info"),
        "the INFO subscriber skips the debug record: {at_info:?}"
    );
    // Without EVENT_KIND_LOG, no log record.
    let other = drain(&mut none, Duration::from_millis(300)).await;
    assert!(
        other.iter().all(|e| !matches!(e, event::Event::Log(_))),
        "{other:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kind_and_frontend_filters_narrow() {
    let mut s = Stack::start().await;
    let mut stream = watch(
        &mut s,
        WatchRequest {
            backends: vec![],
            frontends: vec!["web".into()],
            kinds: vec![EventKind::Frontend.into()],
            log_level: 0,
        },
    )
    .await;
    let replay = drain(&mut stream, Duration::from_millis(300)).await;
    assert!(
        matches!(&replay[..], [event::Event::Frontend(f)] if f.frontend == "web" && f.replay && f.from == f.to),
        "{replay:?}"
    );
    // dns goes down (filtered out), then web (c is its last up backend once a and b pause).
    s.checker.pause("c").unwrap();
    s.checker.pause("a").unwrap();
    s.checker.pause("b").unwrap();
    let live = drain(&mut stream, Duration::from_millis(500)).await;
    let got: Vec<_> = live
        .iter()
        .map(|e| match e {
            event::Event::Frontend(f) => (f.frontend.as_str(), f.to()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, [("web", FrontendState::Down)]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
    let mut s = Stack::start_with(|svc| svc.with_watch_capacity(8)).await;
    let mut slow = watch(&mut s, request(&[EventKind::Backend])).await;
    // Far more events than the stream's buffers hold while nobody reads.
    for _ in 0..4000 {
        s.checker.pause("a").unwrap();
        s.checker.resume("a").unwrap();
    }
    let mut missed = 0;
    let mut delivered = 0;
    for e in drain(&mut slow, Duration::from_millis(500)).await {
        match e {
            event::Event::Missed(m) => missed += m.count,
            event::Event::Backend(b) if !b.replay => delivered += 1,
            _ => {}
        }
    }
    assert!(missed > 0, "delivered {delivered}, none missed");
    assert!(delivered < 8000, "{delivered}");
    // Told, it goes on: the next transition comes through.
    s.checker.pause("b").unwrap();
    let next = next_matching(
        &mut slow,
        |e| matches!(e, event::Event::Backend(b) if b.backend == "b"),
    )
    .await;
    assert!(
        matches!(&next, event::Event::Backend(b) if b.to() == BackendState::Paused && !b.replay),
        "{next:?}"
    );
    s.stop().await;
}
