//! WatchEvents: one hub task turns every source into wire events once, and each subscriber's
//! task filters them into its own stream.
//!
//! ```text
//! checker.subscribe()  ──┐  backend transitions; frontend transitions decided by
//! config watch         ──┤  maglev_core::frontends::FrontendTracker (states kept from the
//! VppSide::subscribe() ──┤  transitions, re-read from the checker on a reload or a lag)
//!                        ▼
//!              hub task ── broadcast::Sender<Arc<Routed>> ──▶ subscriber task ─▶ mpsc ─▶ stream
//! LogFeed (tracing layer) ── broadcast, per subscriber level ──▶ subscriber task
//! ```
//!
//! Nothing upstream waits for a subscriber: the hub and the log feed send on bounded broadcast
//! channels, and a subscriber that falls behind gets a MissedEvents marker with the count its
//! receiver lost (counted before its filters). The hub starts with the first subscriber and
//! stops when the checker does.
//!
//! | event | kind | the backend filter applies | the frontend filter applies |
//! |---|---|---|---|
//! | backend transition | BACKEND | yes | no |
//! | frontend state or active pool change | FRONTEND | no | yes |
//! | VPP connect, disconnect | VPP_CONNECTION | no | no |
//! | a sync's operation | SYNC_OP | AS operations (by address) | yes (by VIP) |
//! | a sync's summary | SYNC_SUMMARY | no | yes (a full sync is about every frontend) |
//! | config reload applied | CONFIG_RELOAD | no | no |
//! | log record | LOG, at or above the subscriber's level | no | no |
//! | missed events | always sent | no | no |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use maglev_api::convert::to_unix_nanos;
use maglev_api::v1::{
    BackendEvent, ConfigReloadEvent, Event, EventKind, FrontendEvent, LogEvent, LogField, LogLevel,
    MissedEvents, SyncOpEvent, SyncSummaryEvent, VppConnectionEvent, WatchRequest, event,
};
use maglev_core::config::Config;
use maglev_core::frontends::{FrontendChange, FrontendTracker};
use maglev_core::weights::{BackendState, WeightOverrides};
use maglev_health::checker::{Checker, Prober};
use maglev_health::machine::Transition;
use maglev_vpp::syncer::{OpResult, SyncEvent};
use tokio::sync::{broadcast, mpsc, watch};

use super::convert::{self, Names, WallClock};
use super::vpp::VppSide;
use crate::log_feed::{LogFeed, LogRecord, LogSubscription};

/// Events the hub buffers per subscriber; one that falls further behind misses events.
pub const HUB_CAPACITY: usize = 4096;
/// Sync events the hub converts with one name lookup table.
const SYNC_BATCH: usize = 256;

/// What a routed event is about, for the frontend filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum About {
    /// Not about a frontend: the frontend filter does not apply.
    NoFrontend,
    /// Every frontend (a full sync).
    Every,
    /// These frontends.
    These(Vec<String>),
}

/// A wire event with what the filters look at.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    /// `None` for a MissedEvents marker (always delivered).
    kind: Option<EventKind>,
    /// The backend it is about, when the backend filter applies.
    backend: Option<String>,
    /// The frontends it is about.
    frontends: About,
    /// The event.
    event: Event,
}

/// A WatchEvents subscriber's filters: every filter narrows, an empty one lets all through.
pub(crate) struct Filter {
    backends: Vec<String>,
    frontends: Vec<String>,
    kinds: Vec<EventKind>,
    log_level: tracing::Level,
}

impl Filter {
    pub(crate) fn new(request: WatchRequest) -> Self {
        let kinds = request
            .kinds
            .iter()
            .filter_map(|k| EventKind::try_from(*k).ok())
            .filter(|k| *k != EventKind::Unspecified)
            .collect();
        let log_level = match LogLevel::try_from(request.log_level) {
            Ok(LogLevel::Trace) => tracing::Level::TRACE,
            Ok(LogLevel::Debug) => tracing::Level::DEBUG,
            Ok(LogLevel::Warn) => tracing::Level::WARN,
            Ok(LogLevel::Error) => tracing::Level::ERROR,
            Ok(LogLevel::Info | LogLevel::Unspecified) | Err(_) => tracing::Level::INFO,
        };
        Self {
            backends: request.backends,
            frontends: request.frontends,
            kinds,
            log_level,
        }
    }

    /// Empty kinds mean every kind except log records.
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        if self.kinds.is_empty() {
            kind != EventKind::Log
        } else {
            self.kinds.contains(&kind)
        }
    }

    pub(crate) fn backend(&self, name: &str) -> bool {
        self.backends.is_empty() || self.backends.iter().any(|b| b == name)
    }

    pub(crate) fn frontend(&self, name: &str) -> bool {
        self.frontends.is_empty() || self.frontends.iter().any(|f| f == name)
    }

    fn passes(&self, routed: &Routed) -> bool {
        let Some(kind) = routed.kind else {
            return true;
        };
        self.wants(kind)
            && routed.backend.as_deref().is_none_or(|b| self.backend(b))
            && match &routed.frontends {
                About::NoFrontend | About::Every => true,
                About::These(names) => {
                    self.frontends.is_empty() || names.iter().any(|n| self.frontend(n))
                }
            }
    }
}

fn now_nanos() -> i64 {
    to_unix_nanos(SystemTime::now())
}

fn missed(count: u64) -> Event {
    Event {
        at_unix_nanos: now_nanos(),
        event: Some(event::Event::Missed(MissedEvents { count })),
    }
}

/// A backend transition as a wire event (`replay` false).
pub(crate) fn backend_event(t: &Transition, clock: &WallClock) -> Event {
    Event {
        at_unix_nanos: clock.unix_nanos(t.at),
        event: Some(event::Event::Backend(BackendEvent {
            backend: t.backend.to_string(),
            from: convert::backend_state(t.from).into(),
            to: convert::backend_state(t.to).into(),
            code: convert::result_code(t.code).into(),
            detail: t.detail.clone(),
            replay: false,
        })),
    }
}

fn frontend_event(change: &FrontendChange) -> Routed {
    Routed {
        kind: Some(EventKind::Frontend),
        backend: None,
        frontends: About::These(vec![change.frontend.clone()]),
        event: Event {
            at_unix_nanos: now_nanos(),
            event: Some(event::Event::Frontend(FrontendEvent {
                frontend: change.frontend.clone(),
                from: convert::frontend_state(change.from.state).into(),
                to: convert::frontend_state(change.to.state).into(),
                replay: false,
            })),
        },
    }
}

/// A log record as a wire event.
pub(crate) fn log_event(record: &LogRecord) -> Event {
    let level = match record.level {
        tracing::Level::TRACE => LogLevel::Trace,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::ERROR => LogLevel::Error,
    };
    Event {
        at_unix_nanos: to_unix_nanos(record.at),
        event: Some(event::Event::Log(LogEvent {
            level: level.into(),
            name: record.name.to_owned(),
            target: record.target.to_owned(),
            fields: record
                .fields
                .iter()
                .map(|(key, value)| LogField {
                    key: (*key).to_owned(),
                    value: value.clone(),
                })
                .collect(),
        })),
    }
}

/// A sync engine event as a routed wire event; `None` for the engine's events the API does
/// not carry (sync start, its own frontend view, the reconcile core's).
fn sync_event(event: &SyncEvent, names: &Names<'_>) -> Option<Routed> {
    let not_about = |kind, event| Routed {
        kind: Some(kind),
        backend: None,
        frontends: About::NoFrontend,
        event: Event {
            at_unix_nanos: now_nanos(),
            event: Some(event),
        },
    };
    match event {
        SyncEvent::Connected(info) => Some(not_about(
            EventKind::VppConnection,
            event::Event::VppConnection(VppConnectionEvent {
                connected: true,
                reason: String::new(),
                info: Some(maglev_api::v1::VppInfo {
                    version: info.version.clone(),
                    build_date: info.build_date.clone(),
                    build_directory: info.build_directory.clone(),
                    pid: info.pid.unwrap_or(0),
                    boottime_ns: 0,
                    connecttime_ns: to_unix_nanos(info.connected_at),
                    api_socket: info.socket.display().to_string(),
                }),
            }),
        )),
        SyncEvent::Disconnected { error } => Some(not_about(
            EventKind::VppConnection,
            event::Event::VppConnection(VppConnectionEvent {
                connected: false,
                reason: error.clone().unwrap_or_else(|| "shutdown".to_owned()),
                info: None,
            }),
        )),
        SyncEvent::Op { op, result, .. } => {
            let wire = convert::op(op, names);
            let (ok, error) = match result {
                OpResult::Applied => (true, String::new()),
                OpResult::Failed { error } => (false, error.to_string()),
                OpResult::Skipped => (
                    false,
                    "skipped: an earlier operation of its VIP was refused".to_owned(),
                ),
            };
            Some(Routed {
                kind: Some(EventKind::SyncOp),
                backend: (!wire.address.is_empty()).then(|| wire.backend.clone()),
                frontends: About::These(vec![wire.frontend.clone()]),
                event: Event {
                    at_unix_nanos: now_nanos(),
                    event: Some(event::Event::SyncOp(SyncOpEvent {
                        op: Some(wire),
                        ok,
                        error,
                    })),
                },
            })
        }
        SyncEvent::SyncDone(summary) => {
            let frontend = if summary.full {
                String::new()
            } else {
                summary.frontends.join(",")
            };
            let ok =
                summary.outcome == maglev_core::reconcile::SyncOutcome::Done && summary.errors == 0;
            Some(Routed {
                kind: Some(EventKind::SyncSummary),
                backend: None,
                frontends: if summary.full {
                    About::Every
                } else {
                    About::These(summary.frontends.clone())
                },
                event: Event {
                    at_unix_nanos: now_nanos(),
                    event: Some(event::Event::SyncSummary(SyncSummaryEvent {
                        summary: Some(convert::sync_summary(
                            frontend,
                            ok,
                            summary.first_error.clone(),
                            &summary.plan.ops,
                            &summary.stats,
                            summary.duration,
                        )),
                    })),
                },
            })
        }
        SyncEvent::SyncStarted { .. }
        | SyncEvent::FrontendTransition { .. }
        | SyncEvent::Reconcile(_) => None,
    }
}

/// Starts the hub: subscribes to every source now (nothing after this call is missed), then
/// runs until the checker stops. Returns the sender subscribers subscribe to.
pub(crate) fn start_hub<P: Prober>(
    checker: Checker<P>,
    config: watch::Receiver<Arc<Config>>,
    vpp: Option<Arc<dyn VppSide>>,
    capacity: usize,
) -> broadcast::Sender<Arc<Routed>> {
    let (tx, _) = broadcast::channel(capacity.max(1));
    let transitions = checker.subscribe();
    let sync = vpp.as_ref().and_then(|v| v.subscribe());
    let hub = Hub {
        tx: tx.clone(),
        states: crate::vpp::backend_states(&checker),
        checker,
        vpp,
        tracker: FrontendTracker::new(),
    };
    tokio::spawn(hub.run(transitions, config, sync));
    tx
}

struct Hub<P: Prober> {
    tx: broadcast::Sender<Arc<Routed>>,
    checker: Checker<P>,
    vpp: Option<Arc<dyn VppSide>>,
    /// The backends' states, as the transitions left them.
    states: HashMap<String, BackendState>,
    tracker: FrontendTracker,
}

impl<P: Prober> Hub<P> {
    fn overrides(&self) -> WeightOverrides {
        self.vpp
            .as_ref()
            .map(|v| v.weight_overrides())
            .unwrap_or_default()
    }

    fn send(&self, routed: Routed) {
        // No subscriber is not an error: the last one may have just left.
        let _ = self.tx.send(Arc::new(routed));
    }

    fn send_frontends(&self, changes: Vec<FrontendChange>) {
        for change in &changes {
            self.send(frontend_event(change));
        }
    }

    /// Every frontend evaluated again (after a reload, a lag or a sync, which an override
    /// triggers).
    fn refresh(&mut self, config: &Config, reread: bool) {
        if reread {
            self.states = crate::vpp::backend_states(&self.checker);
        }
        let overrides = self.overrides();
        let changes = self.tracker.observe_all(config, &self.states, &overrides);
        self.send_frontends(changes);
    }

    async fn run(
        mut self,
        mut transitions: broadcast::Receiver<Transition>,
        mut config_rx: watch::Receiver<Arc<Config>>,
        mut sync: Option<broadcast::Receiver<SyncEvent>>,
    ) {
        let mut config = Arc::clone(&config_rx.borrow_and_update());
        let overrides = self.overrides();
        self.tracker = FrontendTracker::baseline(&config, &self.states, &overrides);
        let mut config_open = true;
        loop {
            tokio::select! {
                received = transitions.recv() => match received {
                    Ok(t) => {
                        self.states.insert(t.backend.to_string(), t.to);
                        self.send(Routed {
                            kind: Some(EventKind::Backend),
                            backend: Some(t.backend.to_string()),
                            frontends: About::NoFrontend,
                            event: backend_event(&t, &WallClock::now()),
                        });
                        let overrides = self.overrides();
                        let changes =
                            self.tracker.observe_backend(&config, &t.backend, &self.states, &overrides);
                        self.send_frontends(changes);
                    }
                    Err(broadcast::error::RecvError::Lagged(count)) => {
                        self.send(Routed {
                            kind: None,
                            backend: None,
                            frontends: About::NoFrontend,
                            event: missed(count),
                        });
                        self.refresh(&config, true);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                changed = config_rx.changed(), if config_open => {
                    if changed.is_err() {
                        config_open = false;
                        continue;
                    }
                    config = Arc::clone(&config_rx.borrow_and_update());
                    self.send(Routed {
                        kind: Some(EventKind::ConfigReload),
                        backend: None,
                        frontends: About::NoFrontend,
                        event: Event {
                            at_unix_nanos: now_nanos(),
                            event: Some(event::Event::ConfigReload(ConfigReloadEvent {
                                ok: true,
                                errors: Vec::new(),
                            })),
                        },
                    });
                    self.refresh(&config, true);
                },
                received = recv_some(&mut sync) => match received {
                    Ok(first) => {
                        // One name table for a batch: a big sync reports thousands of ops.
                        let names = Names::new(&config);
                        let mut done = matches!(first, SyncEvent::SyncDone(_));
                        if let Some(routed) = sync_event(&first, &names) {
                            self.send(routed);
                        }
                        let receiver = sync.as_mut().expect("received from it");
                        for _ in 0..SYNC_BATCH {
                            let Ok(next) = receiver.try_recv() else { break };
                            done |= matches!(next, SyncEvent::SyncDone(_));
                            if let Some(routed) = sync_event(&next, &names) {
                                self.send(routed);
                            }
                        }
                        if done {
                            self.refresh(&config, false);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(count)) => self.send(Routed {
                        kind: None,
                        backend: None,
                        frontends: About::NoFrontend,
                        event: missed(count),
                    }),
                    Err(broadcast::error::RecvError::Closed) => sync = None,
                },
            }
        }
    }
}

/// Receives from `receiver`, or never when there is none.
async fn recv_some<T: Clone>(
    receiver: &mut Option<broadcast::Receiver<T>>,
) -> Result<T, broadcast::error::RecvError> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// One subscriber: its replay, then the hub's events and, if it asked for them, the log
/// records, filtered, into `tx` until the client goes away or the hub stops.
pub(crate) async fn serve_subscriber(
    filter: Filter,
    replay: Vec<Event>,
    mut hub: broadcast::Receiver<Arc<Routed>>,
    logs: Option<&LogFeed>,
    tx: mpsc::Sender<Result<Event, tonic::Status>>,
) {
    let mut logs: Option<LogSubscription> = logs
        .filter(|_| filter.wants(EventKind::Log))
        .map(|feed| feed.subscribe(filter.log_level));
    for event in replay {
        if tx.send(Ok(event)).await.is_err() {
            return;
        }
    }
    loop {
        let event = tokio::select! {
            received = hub.recv() => match received {
                Ok(routed) if filter.passes(&routed) => routed.event.clone(),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(count)) => missed(count),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            received = recv_log(&mut logs) => match received {
                Ok(record) if logs.as_ref().is_some_and(|l| l.wants(&record)) => {
                    log_event(&record)
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(count)) => missed(count),
                Err(broadcast::error::RecvError::Closed) => {
                    logs = None;
                    continue;
                }
            },
            () = tx.closed() => return,
        };
        if tx.send(Ok(event)).await.is_err() {
            return;
        }
    }
}

async fn recv_log(
    logs: &mut Option<LogSubscription>,
) -> Result<Arc<LogRecord>, broadcast::error::RecvError> {
    match logs {
        Some(logs) => logs.records.recv().await,
        None => std::future::pending().await,
    }
}
