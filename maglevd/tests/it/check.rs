//! `maglevd --check`: exit codes and `file:line:col: key: message` errors.

use std::path::Path;
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--check")
        .arg("--config")
        .arg(path)
        .env_remove("MAGLEV_CONFIG")
        .output()
        .expect("maglevd runs")
}

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = "
maglev:
  backends:
    b1: { address: 127.0.0.11 }
  frontends:
    web:
      address: 127.0.0.100
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends:
            b1: {}
";

#[test]
fn valid_config_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&write(&dir, GOOD));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn example_config_file_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/maglev.yaml");
    let out = check(&example);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn parse_error_exits_one_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        &GOOD.replace("address: 127.0.0.100", "adress: 127.0.0.100"),
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:", path.display());
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert!(stderr.contains("adress"), "{stderr}");
}

#[test]
fn semantic_errors_exit_two_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD
        .replace("b1: {}", "b1: { weight: 101 }")
        .replace("port: 80", "port: 0");
    let path = write(&dir, &text);
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for line in &lines {
        // file:line:col: key: message
        let rest = line
            .strip_prefix(&format!("{}:", path.display()))
            .unwrap_or_else(|| panic!("{line}"));
        let mut parts = rest.splitn(3, ':');
        let line_no: u32 = parts.next().unwrap().parse().unwrap();
        let col: u32 = parts.next().unwrap().parse().unwrap();
        assert!(line_no > 0 && col > 0, "{line}");
    }
    assert!(stderr.contains("frontends.web.port"), "{stderr}");
    assert!(stderr.contains("weight"), "{stderr}");
}

#[test]
fn unreadable_file_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&dir.path().join("missing.yaml"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn daemon_refuses_an_invalid_config_with_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &GOOD.replace("port: 80", "port: 0"));
    let out = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--config")
        .arg(&path)
        .arg("--vpp-api-socket")
        .arg("")
        .env_remove("MAGLEV_CONFIG")
        .output()
        .expect("maglevd runs");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("frontends.web.port"), "{stdout}");
}
