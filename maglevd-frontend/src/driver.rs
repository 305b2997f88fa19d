//! The I/O around one maglevd's [`Machine`]: performs its actions over gRPC (each call with a
//! deadline), feeds back what happened, reads the WatchEvents stream into the
//! [`ScopeState`](crate::state::ScopeState) and the event broker, and takes commands from the
//! HTTP handlers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use maglev_api::v1::{
    self, EventKind, GetVersionRequest, GetVppInfoRequest, GetVpplbCountersRequest,
    GetVpplbStateRequest, ListBackendsRequest, ListFrontendsRequest, LogLevel, WatchRequest,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Streaming;

use crate::hub::{Command, Hub, Scope};
use crate::machine::{Action, Input, Machine, Timing};
use crate::state::{Backend, Frontend, ScopeLb, VipCounters, Vpp};

/// The deadline of every unary gRPC call (and of opening the event stream).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// maglevd answered with an error status.
    #[error("{0}")]
    Status(#[from] tonic::Status),
    /// maglevd did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Runs `call` with [`CALL_TIMEOUT`]; its answer's message.
///
/// # Errors
/// The call's status, or [`CallError::Timeout`].
pub async fn call<T, F>(call: F) -> Result<T, CallError>
where
    F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(answer) => Ok(answer?.into_inner()),
        Err(_) => Err(CallError::Timeout(CALL_TIMEOUT)),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Drives one scope until the process ends.
pub async fn run(
    hub: Hub,
    scope: Arc<Scope>,
    timing: Timing,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut driver = Driver {
        hub,
        scope,
        machine: Machine::new(timing),
        stream: None,
    };
    driver.feed(Input::Start).await;
    loop {
        let deadline = driver.machine.deadline().map(Instant::from_std);
        tokio::select! {
            () = sleep_until(deadline) => driver.feed(Input::Tick).await,
            event = next_event(&mut driver.stream) => driver.on_event(event).await,
            command = commands.recv() => match command {
                Some(Command::Changed) => driver.feed(Input::Trigger).await,
                None => return,
            },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_event(
    stream: &mut Option<Streaming<v1::Event>>,
) -> Option<Result<v1::Event, tonic::Status>> {
    match stream {
        Some(s) => s.message().await.transpose(),
        None => std::future::pending().await,
    }
}

struct Driver {
    hub: Hub,
    scope: Arc<Scope>,
    machine: Machine,
    stream: Option<Streaming<v1::Event>>,
}

impl Driver {
    fn name(&self) -> &str {
        &self.scope.name
    }

    /// Feeds `input` and performs the actions, feeding back their outcomes.
    async fn feed(&mut self, input: Input) {
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            let actions = self.machine.handle(std::time::Instant::now(), input);
            for action in actions {
                if let Some(next) = self.perform(action).await {
                    inputs.push(next);
                }
            }
        }
    }

    async fn on_event(&mut self, event: Option<Result<v1::Event, tonic::Status>>) {
        match event {
            Some(Ok(event)) => {
                let translated = self.write_state(|s| s.apply(&event));
                if let Some(t) = translated {
                    self.hub.publish(self.name(), t.kind, t.data);
                    if t.lb_trigger {
                        self.feed(Input::Trigger).await;
                    }
                }
            }
            Some(Err(status)) => {
                self.stream = None;
                self.lost(&status.to_string()).await;
            }
            None => {
                self.stream = None;
                self.lost("the event stream ended").await;
            }
        }
    }

    async fn lost(&mut self, why: &str) {
        tracing::warn!(name: "maglevd-lost", maglevd = %self.name(), error = %why, "maglevd-lost");
        self.write_state(|s| s.error = Some(why.to_owned()));
        self.feed(Input::Lost).await;
    }

    fn write_state<R>(&self, f: impl FnOnce(&mut crate::state::ScopeState) -> R) -> R {
        let mut state = self
            .scope
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    fn publish_state(&self) {
        self.hub.publish(
            self.name(),
            "state",
            serde_json::json!({ "at_ms": unix_ms() }),
        );
    }

    async fn perform(&mut self, action: Action) -> Option<Input> {
        let mut client = self.scope.client.clone();
        match action {
            Action::Connect => match call(client.get_version(GetVersionRequest {})).await {
                Ok(version) => {
                    tracing::info!(name: "maglevd-connected", maglevd = %self.name(), version = %version.version, "maglevd-connected");
                    self.write_state(|s| {
                        s.version = Some(version.version);
                        s.error = None;
                    });
                    Some(Input::Connected)
                }
                Err(e) => {
                    tracing::debug!(name: "maglevd-connect-failed", maglevd = %self.name(), error = %e, "maglevd-connect-failed");
                    self.write_state(|s| s.error = Some(e.to_string()));
                    Some(Input::ConnectFailed)
                }
            },
            Action::Watch => {
                let request = WatchRequest {
                    kinds: [
                        EventKind::Backend,
                        EventKind::Frontend,
                        EventKind::VppConnection,
                        EventKind::SyncOp,
                        EventKind::SyncSummary,
                        EventKind::ConfigReload,
                        EventKind::Log,
                    ]
                    .into_iter()
                    .map(i32::from)
                    .collect(),
                    log_level: LogLevel::Debug.into(),
                    ..Default::default()
                };
                match call(client.watch_events(request)).await {
                    Ok(stream) => {
                        self.stream = Some(stream);
                        None
                    }
                    Err(e) => {
                        self.write_state(|s| s.error = Some(e.to_string()));
                        Some(Input::Lost)
                    }
                }
            }
            Action::Refresh => {
                let frontends = call(client.list_frontends(ListFrontendsRequest {})).await;
                let backends = call(client.list_backends(ListBackendsRequest {})).await;
                let vpp = call(client.get_vpp_info(GetVppInfoRequest {})).await;
                let (Ok(frontends), Ok(backends)) = (frontends, backends) else {
                    return Some(Input::Lost);
                };
                self.write_state(|s| {
                    s.frontends = frontends
                        .frontends
                        .iter()
                        .map(|f| (f.name.clone(), Frontend::from(f)))
                        .collect();
                    let old = std::mem::take(&mut s.backends);
                    s.backends = backends
                        .backends
                        .iter()
                        .map(|b| {
                            let mut new = Backend::from(b);
                            if let Some(o) = old.get(&b.name) {
                                new.probe_start_ms = o.probe_start_ms;
                                new.last_probe_ms = o.last_probe_ms;
                            }
                            (b.name.clone(), new)
                        })
                        .collect();
                    let (ops, last) = (s.vpp.api_ops, s.vpp.last_op_ms);
                    s.vpp = match &vpp {
                        Ok(info) => Vpp::from_info(info),
                        Err(_) => Vpp::default(),
                    };
                    s.vpp.api_ops = ops;
                    s.vpp.last_op_ms = last;
                    s.refreshed_ms = unix_ms();
                });
                self.publish_state();
                None
            }
            Action::Health => match call(client.get_version(GetVersionRequest {})).await {
                Ok(_) => None,
                Err(e) => {
                    self.stream = None;
                    tracing::warn!(name: "maglevd-lost", maglevd = %self.name(), error = %e, "maglevd-lost");
                    self.write_state(|s| s.error = Some(e.to_string()));
                    Some(Input::Lost)
                }
            },
            Action::Lb => {
                let frontends = call(client.list_frontends(ListFrontendsRequest {})).await;
                let lb = call(client.get_vpplb_state(GetVpplbStateRequest {})).await;
                let counters = call(client.get_vpplb_counters(GetVpplbCountersRequest {})).await;
                self.write_state(|s| {
                    if let Ok(frontends) = &frontends {
                        s.frontends = frontends
                            .frontends
                            .iter()
                            .map(|f| (f.name.clone(), Frontend::from(f)))
                            .collect();
                    }
                    s.vips = lb
                        .as_ref()
                        .map_or_else(|_| Vec::new(), |l| ScopeLb::from(l).0);
                    s.counters = counters.as_ref().map_or_else(
                        |_| Vec::new(),
                        |c| c.vips.iter().map(VipCounters::from).collect(),
                    );
                });
                self.publish_state();
                None
            }
            Action::Publish { connected } => {
                if !connected {
                    self.stream = None;
                }
                self.write_state(|s| s.connected = connected);
                self.hub.publish(
                    self.name(),
                    "maglevd",
                    serde_json::json!({ "connected": connected, "at_ms": unix_ms() }),
                );
                None
            }
        }
    }
}
