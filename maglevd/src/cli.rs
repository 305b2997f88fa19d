//! Command-line flags and their environment overrides (spec B §3.1; a flag wins over its
//! environment variable).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use maglev_core::config::LoadOptions;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line (the original's format).
    Json,
    /// One `key=value` line per record (logfmt).
    Logfmt,
}

/// How plain TCP health checks (TCP without TLS) are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TcpCheck {
    /// Half-open (SYN, then the kernel's reset) when raw sockets are allowed (CAP_NET_RAW),
    /// else connect.
    Auto,
    /// Half-open only; refuse to start without raw sockets.
    HalfOpen,
    /// Connect, then reset before the server accepts.
    Connect,
}

impl From<TcpCheck> for maglev_health::probe::TcpCheckMode {
    fn from(mode: TcpCheck) -> Self {
        match mode {
            TcpCheck::Auto => Self::Auto,
            TcpCheck::HalfOpen => Self::HalfOpen,
            TcpCheck::Connect => Self::Connect,
        }
    }
}

/// maglevd: health-checks backends and programs VPP's lb plugin to match.
///
/// Without `--config` it runs the embedded demo: the example config (`etc/maglev.yaml`), a
/// few local backend servers on its 127.0.0.x addresses and the VPP simulator in-process.
#[derive(Clone, Debug, Parser)]
#[command(name = "maglevd", version = crate::build::VERSION_LINE, about, long_about = None)]
pub struct Args {
    /// The config file; without it, the embedded example config and local demo backends.
    #[arg(long, env = "MAGLEV_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// VPP binary API socket. Without it: `/run/vpp/api.sock` when a config is given, the
    /// in-process VPP simulator of the demo when not. An empty value disables the VPP
    /// integration (health checking only).
    #[arg(
        long,
        visible_alias = "vpp-api-addr",
        env = "MAGLEV_VPP_API_ADDR",
        value_name = "PATH"
    )]
    pub vpp_api_socket: Option<String>,

    /// VPP stats socket (`/run/vpp/stats.sock` when a config is given without a VPP socket).
    /// Accepted for compatibility with the original; this version does not read counters
    /// from it yet.
    #[arg(
        long,
        visible_alias = "vpp-stats-addr",
        env = "MAGLEV_VPP_STATS_ADDR",
        value_name = "PATH"
    )]
    pub vpp_stats_socket: Option<String>,

    /// Run the VPP simulator in-process and program it (the default without `--config` and
    /// without `--vpp-api-socket`).
    #[arg(long, conflicts_with = "vpp_api_socket")]
    pub embedded_sim: bool,

    /// Log format; by default `json` when stdout is not a terminal (a service, a pipe), else
    /// `pretty` ([`Args::log_format`]).
    #[arg(long, env = "MAGLEV_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level (`trace`, `debug`, `info`, `warn`, `error`) or a tracing filter directive
    /// (`info,maglevd=debug`).
    #[arg(long, env = "MAGLEV_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// A file of `KEY=value` lines (systemd's `EnvironmentFile=`, `/etc/default/maglevd`):
    /// SIGHUP applies its `MAGLEV_LOG_LEVEL` (or, without one, `--log-level` again) without a
    /// restart.
    #[arg(long, env = "MAGLEV_ENV_FILE", value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// How plain TCP checks are done: `auto` (half-open with CAP_NET_RAW, else connect),
    /// `half-open` or `connect`.
    #[arg(long, env = "MAGLEV_TCP_CHECK", value_enum, default_value = "auto")]
    pub tcp_check: TcpCheck,

    /// Where `/metrics` and `/healthz` listen (`host:port`; `:port` for every IPv4 address;
    /// empty turns them off). Localhost by default: exposing them is the operator's choice.
    #[arg(
        long,
        env = "MAGLEV_METRICS_ADDR",
        value_name = "ADDR",
        default_value = DEFAULT_METRICS_ADDR
    )]
    pub metrics_addr: String,

    /// Largest config file accepted, in bytes (default 64 MiB). A larger file is refused
    /// with an error naming this limit.
    #[arg(
        long,
        env = "MAGLEV_CONFIG_MAX_BYTES",
        value_name = "BYTES",
        default_value_t = LoadOptions::DEFAULT_MAX_BYTES
    )]
    pub config_max_bytes: usize,

    /// Validate the config and exit: 0 valid, 1 parse error, 2 semantic error (errors are
    /// printed as `file:line:col: key: message`).
    #[arg(long)]
    pub check: bool,

    /// The gRPC API's listen address: `host:port`, or `unix:/path` (socket file mode 0660).
    /// An empty value turns the API off.
    #[arg(long, env = "MAGLEV_GRPC_ADDR", default_value = DEFAULT_GRPC_ADDR, value_name = "ADDR")]
    pub grpc_addr: String,

    /// Refuse every mutating RPC with PERMISSION_DENIED.
    #[arg(long, env = "MAGLEV_READ_ONLY")]
    pub read_only: bool,

    /// gRPC server reflection (`--reflection=false` turns it off).
    #[arg(long, env = "MAGLEV_REFLECTION", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub reflection: bool,

    /// PEM certificate chain: serve the gRPC API over TLS (needs `--grpc-tls-key`).
    #[arg(
        long,
        env = "MAGLEV_GRPC_TLS_CERT",
        value_name = "PATH",
        requires = "grpc_tls_key"
    )]
    pub grpc_tls_cert: Option<PathBuf>,

    /// PEM private key of `--grpc-tls-cert`.
    #[arg(
        long,
        env = "MAGLEV_GRPC_TLS_KEY",
        value_name = "PATH",
        requires = "grpc_tls_cert"
    )]
    pub grpc_tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): require clients to present a certificate it signed (mutual TLS).
    #[arg(
        long,
        env = "MAGLEV_GRPC_TLS_CLIENT_CA",
        value_name = "PATH",
        requires = "grpc_tls_cert"
    )]
    pub grpc_tls_client_ca: Option<PathBuf>,
}

/// The gRPC API's default listen address: loopback only.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9090";

/// Where the VPP API lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VppTarget {
    /// No VPP integration: health checking only.
    Disabled,
    /// The in-process simulator.
    Embedded,
    /// A real VPP (or an external simulator) on these sockets.
    Socket {
        /// The binary API socket.
        api: PathBuf,
        /// The stats socket, if any.
        stats: Option<PathBuf>,
    },
}

/// The default `--metrics-addr`: the original's port, on localhost only.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9091";
/// VPP's API socket where the original expects it: used when a config is given without one.
pub const DEFAULT_VPP_API_SOCKET: &str = "/run/vpp/api.sock";
/// VPP's stats socket where the original expects it.
pub const DEFAULT_VPP_STATS_SOCKET: &str = "/run/vpp/stats.sock";

impl Args {
    /// The log format in force: `--log-format`, else `json` when stdout is not a terminal,
    /// else `pretty`.
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or_else(|| {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            }
        })
    }

    /// The config loader's limits, from `--config-max-bytes`.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions::default().with_max_bytes(self.config_max_bytes)
    }

    /// Where the VPP API lives, from `--vpp-api-socket` / `--embedded-sim` / `--config`:
    ///
    /// | `--embedded-sim` | `--vpp-api-socket` | `--config` | VPP |
    /// |---|---|---|---|
    /// | yes | - | any | the in-process simulator |
    /// | no | `''` | any | none (health checking only) |
    /// | no | `S` | any | `S` |
    /// | no | not given | given | `/run/vpp/api.sock` (never a silent simulator in production) |
    /// | no | not given | not given | the in-process simulator (the demo) |
    pub fn vpp_target(&self) -> VppTarget {
        let stats = |default: Option<&str>| {
            self.vpp_stats_socket
                .as_deref()
                .or(default)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        };
        match &self.vpp_api_socket {
            _ if self.embedded_sim => VppTarget::Embedded,
            None if self.config.is_none() => VppTarget::Embedded,
            None => VppTarget::Socket {
                api: PathBuf::from(DEFAULT_VPP_API_SOCKET),
                stats: stats(Some(DEFAULT_VPP_STATS_SOCKET)),
            },
            Some(path) if path.is_empty() => VppTarget::Disabled,
            Some(path) => VppTarget::Socket {
                api: PathBuf::from(path),
                stats: stats(None),
            },
        }
    }
}
