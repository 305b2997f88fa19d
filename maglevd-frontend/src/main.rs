//! maglevd-frontend: wiring only (flags, logging, signals); the logic is in the library.

use anyhow::Context as _;
use clap::Parser as _;
use maglevd_frontend::cli::Args;
use maglevd_frontend::machine::Timing;
use maglevd_frontend::ring::RingLimits;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.password = std::env::var("MAGLEV_FRONTEND_PASSWORD").ok();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .with_context(|| format!("bad --log-level {:?}", args.log_level))?,
        )
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let admin = args.admin();
    if admin.is_none() {
        tracing::info!(name: "admin-off", "admin-off: set MAGLEV_FRONTEND_PASSWORD to turn /admin/ on");
    }
    let settings = maglevd_frontend::Settings {
        servers: args
            .servers
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        admin,
        ping: args.ping(),
        ring: RingLimits {
            max_events: args.replay_events.max(1),
            max_age: std::time::Duration::from_secs(args.replay_secs),
        },
        timing: Timing::default(),
    };
    let (hub, router) = maglevd_frontend::start(&settings)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(name: "frontend-listening", addr = %addr, "frontend-listening");
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = hup.recv() => tracing::info!(name: "sighup-ignored", "sighup-ignored"),
            }
        }
        tracing::info!(name: "frontend-stopping", "frontend-stopping");
        hub.close();
    };
    maglevd_frontend::serve(listener, router, shutdown).await?;
    Ok(())
}
