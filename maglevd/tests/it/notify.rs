//! systemd notifications (`Type=notify`): the real daemon, started with `$NOTIFY_SOCKET` on a
//! datagram socket of the test, says `READY=1` only once its gRPC and metrics ports accept, pings the
//! watchdog at half `$WATCHDOG_USEC`, brackets a SIGHUP reload with `RELOADING=1` and
//! `READY=1`, and says `STOPPING=1` on SIGTERM.

use std::net::TcpStream;
use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::grpc::Daemon;

/// The next notification, within 20 s.
async fn next(socket: &UnixDatagram) -> String {
    let mut buf = [0; 256];
    let n = tokio::time::timeout(Duration::from_secs(20), socket.recv(&mut buf))
        .await
        .expect("a notification within 20 s")
        .expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The next notification other than a watchdog ping.
async fn next_state(socket: &UnixDatagram) -> String {
    loop {
        let message = next(socket).await;
        if message != "WATCHDOG=1" {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_notifies_ready_reloading_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    // Ports picked here (bound, read, released), so that the test can connect the moment READY=1
    // arrives, without waiting for the log records that name them.
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (grpc, metrics) = (free_port(), free_port());
    let mut daemon = Daemon::start_with_env(
        &["--grpc-addr", &grpc, "--metrics-addr", &metrics],
        &[
            ("NOTIFY_SOCKET", path.as_os_str()),
            // pings every 150 ms
            ("WATCHDOG_USEC", "300000".as_ref()),
        ],
    )
    .await;

    assert_eq!(next(&socket).await, "READY=1", "{}", daemon.logs());
    // READY=1 came after both listeners were bound: their ports accept now, without waiting.
    TcpStream::connect(&grpc).expect("the gRPC port accepts once READY=1 is sent");
    TcpStream::connect(&metrics).expect("the metrics port accepts once READY=1 is sent");
    assert_eq!(daemon.grpc_addr().await, grpc);

    for _ in 0..2 {
        assert_eq!(next(&socket).await, "WATCHDOG=1");
    }

    daemon.signal("-HUP");
    assert_eq!(next_state(&socket).await, "RELOADING=1");
    assert_eq!(next_state(&socket).await, "READY=1");

    daemon.signal("-TERM");
    assert_eq!(next_state(&socket).await, "STOPPING=1");
    assert!(daemon.wait_exit().await.success(), "{}", daemon.logs());
}
