//! vpp-sim binary: serves the VPP simulator on an API socket (and a stats socket) until Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use vpp_sim::{SimConfig, Simulator};

/// A VPP simulator speaking VPP's binary API (socket transport) with a model of the lb plugin.
#[derive(Debug, Parser)]
#[command(name = "vpp-sim", version)]
struct Args {
    /// Path of the binary API socket to create.
    #[arg(long, value_name = "PATH", required_unless_present = "demo")]
    api_socket: Option<PathBuf>,
    /// Path of the stats socket to create.
    #[arg(long, value_name = "PATH")]
    stats_socket: Option<PathBuf>,
    /// Demo mode: create both sockets in a fresh temporary directory (unless paths are given),
    /// print where they are and serve until Ctrl-C.
    #[arg(long)]
    demo: bool,
    /// Reproduce the lb API of VPP 26.06 and earlier (no weight messages, old wire bugs).
    #[arg(long)]
    release_2606: bool,
    /// Seconds between lb garbage collections.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    gc_interval: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Handlers first, so a signal arriving once the sockets exist is never fatal.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let tmp = if args.demo && (args.api_socket.is_none() || args.stats_socket.is_none()) {
        let dir = std::env::temp_dir().join(format!("vpp-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Some(dir)
    } else {
        None
    };
    let api_socket = match (&args.api_socket, &tmp) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.join("api.sock"),
        (None, None) => anyhow::bail!("--api-socket is required"),
    };
    let stats_socket = match (&args.stats_socket, &tmp) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(dir)) => Some(dir.join("stats.sock")),
        (None, None) => None,
    };
    let mut cfg = SimConfig::new(&api_socket);
    cfg.stats_socket = stats_socket.clone();
    cfg.gc_interval = Duration::from_secs(args.gc_interval.max(1));
    if args.release_2606 {
        cfg.lb_flavor = vpp_sim::lb::LbFlavor::Release2606;
    }
    let sim = Simulator::start(cfg)
        .await
        .context("starting the simulator")?;
    eprintln!("vpp-sim: api socket   {}", api_socket.display());
    if let Some(s) = sim.stats_socket() {
        eprintln!("vpp-sim: stats socket {}", s.display());
    }
    eprintln!("vpp-sim: serving; press Ctrl-C (or send SIGTERM) to stop");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
