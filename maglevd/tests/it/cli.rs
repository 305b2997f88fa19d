//! Flags: where VPP is, aliases of the original's flag names, formats, env overrides.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser as _;
use maglev_health::probe::TcpCheckMode;
use maglevd::cli::{Args, LogFormat, TcpCheck, VppTarget};

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("maglevd").chain(args.iter().copied()))
}

#[test]
fn no_arguments_run_the_embedded_demo() {
    let args = parse(&[]).unwrap();
    assert_eq!(args.config, None);
    assert_eq!(args.vpp_target(), VppTarget::Embedded);
    assert_eq!(
        args.log_format, None,
        "json or pretty, from whether stdout is a terminal"
    );
    assert_eq!(args.log_level, "info");
    assert!(!args.check);
}

#[test]
fn vpp_socket_flags_and_their_original_aliases() {
    let args = parse(&[
        "--vpp-api-socket",
        "/run/vpp/api.sock",
        "--vpp-stats-socket",
        "/s",
    ])
    .unwrap();
    assert_eq!(
        args.vpp_target(),
        VppTarget::Socket {
            api: PathBuf::from("/run/vpp/api.sock"),
            stats: Some(PathBuf::from("/s")),
        }
    );
    let args = parse(&["--vpp-api-addr", "/a", "--vpp-stats-addr", ""]).unwrap();
    assert_eq!(
        args.vpp_target(),
        VppTarget::Socket {
            api: PathBuf::from("/a"),
            stats: None,
        }
    );
}

#[test]
fn a_config_without_a_socket_programs_the_real_vpp() {
    // Never a silent simulator in production: a config means VPP where the original has it.
    let args = parse(&["--config", "/etc/maglev/maglev.yaml"]).unwrap();
    assert_eq!(
        args.vpp_target(),
        VppTarget::Socket {
            api: PathBuf::from(maglevd::cli::DEFAULT_VPP_API_SOCKET),
            stats: Some(PathBuf::from(maglevd::cli::DEFAULT_VPP_STATS_SOCKET)),
        }
    );
    assert_eq!(
        maglevd::cli::DEFAULT_VPP_API_SOCKET,
        "/run/vpp/api.sock",
        "the original's default"
    );
    assert_eq!(
        maglevd::cli::DEFAULT_VPP_STATS_SOCKET,
        "/run/vpp/stats.sock"
    );
    // The stats socket given (or disabled) alone.
    let args = parse(&["--config", "/m.yaml", "--vpp-stats-socket", ""]).unwrap();
    assert_eq!(
        args.vpp_target(),
        VppTarget::Socket {
            api: PathBuf::from("/run/vpp/api.sock"),
            stats: None,
        }
    );
    // The simulator only when asked for.
    let args = parse(&["--config", "/m.yaml", "--embedded-sim"]).unwrap();
    assert_eq!(args.vpp_target(), VppTarget::Embedded);
    // And health checking only with an empty socket.
    let args = parse(&["--config", "/m.yaml", "--vpp-api-socket", ""]).unwrap();
    assert_eq!(args.vpp_target(), VppTarget::Disabled);
}

#[test]
fn empty_api_socket_disables_vpp() {
    assert_eq!(
        parse(&["--vpp-api-socket", ""]).unwrap().vpp_target(),
        VppTarget::Disabled
    );
}

#[test]
fn embedded_sim_conflicts_with_a_socket() {
    assert_eq!(
        parse(&["--embedded-sim"]).unwrap().vpp_target(),
        VppTarget::Embedded
    );
    assert!(parse(&["--embedded-sim", "--vpp-api-socket", "/a"]).is_err());
}

#[test]
fn tcp_check_mode_defaults_to_auto_and_maps_to_the_prober_modes() {
    assert_eq!(parse(&[]).unwrap().tcp_check, TcpCheck::Auto);
    for (flag, mode) in [
        ("auto", TcpCheckMode::Auto),
        ("half-open", TcpCheckMode::HalfOpen),
        ("connect", TcpCheckMode::Connect),
    ] {
        let args = parse(&["--tcp-check", flag]).unwrap();
        assert_eq!(TcpCheckMode::from(args.tcp_check), mode, "{flag}");
    }
    assert!(parse(&["--tcp-check", "syn"]).is_err());
}

#[test]
fn log_format_and_level() {
    let args = parse(&["--log-format", "json", "--log-level", "debug"]).unwrap();
    assert_eq!(args.log_format, Some(LogFormat::Json));
    assert_eq!(args.log_format(), LogFormat::Json);
    let args = parse(&["--log-format", "pretty"]).unwrap();
    assert_eq!(args.log_format(), LogFormat::Pretty);
    assert!(parse(&["--log-format", "xml"]).is_err());
    assert!(maglevd::logging::filter("debug").is_ok());
    assert!(maglevd::logging::filter("info,maglevd=trace").is_ok());
    assert!(maglevd::logging::filter("").is_err());
    assert!(maglevd::logging::filter("info,=[").is_err());
}

#[test]
fn env_sets_the_config_and_a_flag_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_maglevd"))
            .arg("--check")
            .args(extra)
            .env("MAGLEV_CONFIG", &missing)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/maglev.yaml");
    let out = run(&["--config", example]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn check_without_config_checks_the_embedded_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--check")
        .env_remove("MAGLEV_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("embedded"));
}
