//! Command-line flags and their `MAGLEV_FRONTEND_*` environment overrides (a flag wins).

use std::time::Duration;

use clap::Parser;

use crate::auth::Credentials;

/// maglevd-frontend: a live web dashboard over one or many maglevds.
#[derive(Clone, Debug, Parser)]
#[command(name = "maglevd-frontend", version, about, long_about = None)]
pub struct Args {
    /// maglevd gRPC addresses (`host:port`, `https://host:port`, `unix:/path`), comma
    /// separated or repeated.
    #[arg(
        long = "server",
        env = "MAGLEV_FRONTEND_SERVERS",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub servers: Vec<String>,

    /// The HTTP listen address.
    #[arg(
        long,
        env = "MAGLEV_FRONTEND_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: String,

    /// Log level or tracing filter directive.
    #[arg(long, env = "MAGLEV_FRONTEND_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// The SSE heartbeat (`: ping`) period, milliseconds.
    #[arg(
        long,
        env = "MAGLEV_FRONTEND_SSE_PING_MS",
        default_value_t = 15_000,
        value_name = "MS"
    )]
    pub sse_ping_ms: u64,

    /// How long the SSE replay ring keeps events, seconds.
    #[arg(
        long,
        env = "MAGLEV_FRONTEND_REPLAY_SECS",
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub replay_secs: u64,

    /// The most events the SSE replay ring keeps.
    #[arg(
        long,
        env = "MAGLEV_FRONTEND_REPLAY_EVENTS",
        default_value_t = 2000,
        value_name = "N"
    )]
    pub replay_events: usize,

    /// The admin user (default `admin`).
    #[arg(
        long,
        env = "MAGLEV_FRONTEND_USER",
        hide_env_values = true,
        default_value = "admin"
    )]
    pub user: String,

    /// The admin password; without it `/admin/` is off. Environment only: a flag would show in
    /// `ps`.
    #[arg(skip)]
    pub password: Option<String>,
}

impl Args {
    /// The admin credentials, when a password is set.
    #[must_use]
    pub fn admin(&self) -> Option<Credentials> {
        self.password
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| Credentials::new(&self.user, p))
    }

    /// The SSE heartbeat period (at least 10 ms).
    #[must_use]
    pub fn ping(&self) -> Duration {
        Duration::from_millis(self.sse_ping_ms.max(10))
    }
}
