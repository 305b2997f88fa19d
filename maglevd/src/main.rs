//! maglevd: parses flags, then either checks a config (`--check`) or runs the daemon.

use std::process::ExitCode;

use clap::Parser as _;
use maglevd::cli::Args;
use maglevd::config_file::{self, ConfigSource};
use maglevd::daemon::{self, DaemonError};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check {
        return check(&args);
    }
    if let Err(error) = maglevd::logging::init(args.log_format(), &args.log_level) {
        eprintln!("maglevd: {error}");
        return exit(config_file::EXIT_INVALID_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("maglevd")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("maglevd: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(DaemonError::InvalidConfig(_) | DaemonError::Netns(_)) => {
            exit(config_file::EXIT_INVALID_CONFIG)
        }
        Err(DaemonError::Other(error)) => {
            tracing::error!(name: "fatal", error = format!("{error:#}"), "fatal");
            ExitCode::FAILURE
        }
    }
}

/// `--check`: prints every error as `file:line:col: key: message` on stderr.
fn check(args: &Args) -> ExitCode {
    let source = ConfigSource::from_arg(args.config.as_deref());
    match config_file::load_with(&source, &args.load_options()) {
        Ok(loaded) => {
            eprintln!(
                "{}: ok ({} backends, {} frontends)",
                source.name(),
                loaded.config.backends.len(),
                loaded.config.frontends.len()
            );
            eprintln!("{}", config_file::netns_line(&loaded.config));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            exit(error.check_exit_code())
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
