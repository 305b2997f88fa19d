//! Running the maglevc binary and redacting the volatile parts of its output.

use std::net::SocketAddr;
use std::process::Command;

/// What a one-shot run printed and how it exited.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The maglevc binary with a clean environment for output tests.
pub(crate) fn maglevc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_maglevc"));
    c.env_remove("MAGLEV_SERVER").env_remove("NO_COLOR");
    c
}

/// Runs `maglevc --server <addr> <args>`.
pub(crate) fn run(addr: SocketAddr, args: &[&str]) -> Run {
    run_with(maglevc().arg("--server").arg(addr.to_string()).args(args))
}

/// Runs a prepared command.
pub(crate) fn run_with(command: &mut Command) -> Run {
    let out = command.output().expect("maglevc runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Replaces wall-clock timestamps and unix-nanosecond values (they change with every run)
/// by placeholders; ages stay, the fake's times being fixed offsets from now.
pub(crate) fn redact(text: &str) -> String {
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ").unwrap();
    let nanos = regex::Regex::new(r#"("[a-z_]*(_unix_nanos|_ns)": )-?\d+"#).unwrap();
    let text = time.replace_all(text, "[time]");
    nanos.replace_all(&text, "$1[nanos]").into_owned()
}
