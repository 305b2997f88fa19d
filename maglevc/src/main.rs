//! maglevc: parses the options, then runs one command or the interactive shell.

use std::process::ExitCode;

use clap::Parser as _;
use maglevc::cli::{Cli, one_shot};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = if cli.command.is_empty() {
        maglevc::shell::run(&cli)
    } else {
        one_shot(&cli)
    };
    ExitCode::from(code)
}
