//! The `vpp-sim` binary: serves both sockets, answers a client, exits cleanly on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::Raw;

#[tokio::test]
async fn binary_serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.sock");
    let stats = dir.path().join("stats.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vpp-sim"))
        .arg("--api-socket")
        .arg(&api)
        .arg("--stats-socket")
        .arg(&stats)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if api.exists() && stats.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(api.exists() && stats.exists(), "sockets not created");
    let mut raw = Raw::connect(&api).await;
    assert!(raw.ping().await);
    let stats_client = vpp_binapi::stats::StatsClient::connect(&stats)
        .await
        .unwrap();
    assert!(stats_client.ls(&["/net/route/to"]).unwrap().len() == 1);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!api.exists(), "api socket removed on exit");
}
