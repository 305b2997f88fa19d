//! Our async client (`vpp_binapi::client`) against the simulator: handshake, compatibility
//! report, 100,000 pipelined pings, timeouts, dropped connections, garbage and restarts.

use std::time::Duration;

use tokio::task::JoinSet;
use vpp_binapi::api::{lb, memclnt};
use vpp_binapi::client::{Client, ClientError, ClientOptions, CompatStatus};
use vpp_binapi::codec::Message;
use vpp_sim::{SimConfig, SimHandle, Simulator};

async fn start() -> (tempfile::TempDir, SimHandle) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig::new(dir.path().join("api.sock")))
        .await
        .unwrap();
    (dir, sim)
}

async fn connect(sim: &SimHandle, timeout: Duration) -> Client {
    Client::connect(sim.api_socket(), ClientOptions::default().timeout(timeout))
        .await
        .unwrap()
}

#[tokio::test]
async fn handshake_and_compat_report() {
    let (_d, sim) = start().await;
    let c = connect(&sim, Duration::from_secs(5)).await;
    assert_eq!(c.client_index(), 0x8000_0001);
    assert_eq!(c.table().id(memclnt::ControlPing::NAME_CRC), Some(23));
    assert_eq!(c.table().len(), vpp_binapi::api::MESSAGES.len());
    let lb_msgs: Vec<(&str, u32)> = lb::MESSAGES.iter().map(|m| (m.name, m.crc)).collect();
    let report = c.compat(&lb_msgs);
    assert!(
        report.is_compatible(),
        "{:?}",
        report.problems().collect::<Vec<_>>()
    );
    let report = c.compat(&[("lb_add_del_as_v2", 0xdead_beef), ("lb_nonexistent", 1)]);
    assert!(
        matches!(report.entries[0].status, CompatStatus::CrcMismatch { vpp_crc, .. }
        if vpp_crc == lb::LbAddDelAsV2::CRC)
    );
    assert_eq!(report.entries[1].status, CompatStatus::Missing);
    c.ping().await.unwrap();
    c.close().await.unwrap();
    assert!(c.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_pipelined_pings() {
    let (_d, sim) = start().await;
    let c = connect(&sim, Duration::from_secs(30)).await;
    let mut set = JoinSet::new();
    for _ in 0..100_000 {
        let c = c.clone();
        set.spawn(async move { c.ping().await });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 100_000);
}

#[tokio::test]
async fn delayed_replies_time_out_and_the_connection_survives() {
    let (_d, sim) = start().await;
    let c = connect(&sim, Duration::from_millis(100)).await;
    sim.set_reply_delay(Some(Duration::from_millis(400)));
    let err = c.ping().await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    sim.set_reply_delay(None);
    // The late reply is dropped by the client; later calls work.
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.ping().await.unwrap();
}

#[tokio::test]
async fn server_dropping_the_connection_fails_calls_at_once() {
    let (_d, sim) = start().await;
    let c = connect(&sim, Duration::from_secs(10)).await;
    sim.drop_after_received(1);
    let t = tokio::time::Instant::now();
    let err = c.ping().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Closed | ClientError::Io(_)),
        "{err:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "failed on close, not on timeout"
    );
    assert!(c.is_closed());
}

#[tokio::test]
async fn garbage_frame_is_skipped() {
    let (_d, sim) = start().await;
    let c = connect(&sim, Duration::from_secs(5)).await;
    sim.send_garbage_frame();
    sim.inject_frame(vec![0x00]); // too short for any header
    c.ping().await.unwrap();
    assert!(!c.is_closed());
}

#[tokio::test]
async fn restart_closes_clients_and_a_new_connection_works() {
    let (_d, sim) = start().await;
    let c = connect(&sim, Duration::from_secs(5)).await;
    c.ping().await.unwrap();
    sim.restart().await.unwrap();
    let err = c.ping().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Closed | ClientError::Io(_)),
        "{err:?}"
    );
    let c2 = connect(&sim, Duration::from_secs(5)).await;
    c2.ping().await.unwrap();
    assert_eq!(sim.boot_count(), 2);
}
