//! maglevd-frontend: a live web dashboard over one or many maglevds, on their `maglev.v1`
//! gRPC API.
//!
//! | module | what |
//! |---|---|
//! | [`machine`] | per-maglevd decisions, sans IO: connect and backoff, refresh, health, LB fetch debounce |
//! | [`driver`] | the tokio loop around a machine: gRPC calls with deadlines, the event stream |
//! | [`state`] | the JSON model of a maglevd and the translation of its events |
//! | [`ring`] | the SSE replay ring (`Last-Event-ID`, `resync`) |
//! | [`hub`] | the shared scopes and the event broker |
//! | [`http`], [`sse`], [`auth`], [`assets`] | the HTTP surface, the event stream, admin auth, the embedded page |
//! | [`cli`] | flags and environment |
//!
//! [`start`] wires it all: one driver per maglevd and the HTTP server.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod assets;
pub mod auth;
pub mod cli;
pub mod driver;
pub mod http;
pub mod hub;
pub mod machine;
pub mod ring;
pub mod sse;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::hub::{Hub, Scope};
use crate::machine::Timing;
use crate::ring::RingLimits;
use crate::state::ScopeState;

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The maglevds' gRPC addresses.
    pub servers: Vec<String>,
    /// The admin's credentials; `None` turns `/admin/` off.
    pub admin: Option<auth::Credentials>,
    /// The SSE heartbeat period.
    pub ping: Duration,
    /// The replay ring's limits.
    pub ring: RingLimits,
    /// The per-maglevd timers.
    pub timing: Timing,
}

/// Why the frontend could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A `--server` address is malformed.
    #[error("bad --server address")]
    Address(#[from] maglev_api::client::ConnectError),
    /// No `--server` was given.
    #[error("no maglevd given: pass --server host:port (or MAGLEV_FRONTEND_SERVERS)")]
    NoServer,
}

/// Builds the hub and starts one driver per maglevd (needs a tokio runtime); the router to
/// serve.
///
/// # Errors
/// [`StartError`] for a malformed address or none at all.
pub fn start(settings: &Settings) -> Result<(Hub, axum::Router), StartError> {
    if settings.servers.is_empty() {
        return Err(StartError::NoServer);
    }
    let mut scopes = Vec::new();
    let mut receivers = Vec::new();
    for server in &settings.servers {
        let channel = maglev_api::client::endpoint(server, None)?.connect_lazy();
        let (tx, rx) = mpsc::unbounded_channel();
        scopes.push(Arc::new(Scope {
            name: server.clone(),
            state: RwLock::new(ScopeState {
                name: server.clone(),
                ..ScopeState::default()
            }),
            client: maglev_api::v1::maglev_client::MaglevClient::new(channel),
            commands: tx,
        }));
        receivers.push(rx);
    }
    let epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let hub = Hub::new(scopes, epoch, settings.ring);
    for (scope, rx) in hub.scopes().iter().zip(receivers) {
        tokio::spawn(driver::run(
            hub.clone(),
            Arc::clone(scope),
            settings.timing,
            rx,
        ));
    }
    let router = http::router(http::AppState {
        hub: hub.clone(),
        admin: settings.admin.clone(),
        csrf: auth::random_token().into(),
        ping: settings.ping,
    });
    Ok((hub, router))
}

/// Serves `router` on `listener` until `shutdown` resolves.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
