//! Socket client tests against a small fake VPP server written here (handcrafted frames).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use vpp_binapi::client::{
    Client, ClientError, ClientOptions, CompatStatus, Direction, MessageEvent, Outcome,
};

/// Records the largest single allocation, to show that an oversized frame header does not
/// allocate what it announces.
struct PeakAlloc;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only records sizes.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: PeakAlloc = PeakAlloc;

use crate::fake::{self, FakeVpp, Out, Req};

fn opts() -> ClientOptions {
    ClientOptions::default().name("client-test")
}

#[tokio::test]
async fn handshake_registers_and_reads_the_message_table() {
    let vpp = FakeVpp::with_handler(fake::default_handler).await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    assert_eq!(*vpp.names.lock().unwrap(), vec!["client-test".to_owned()]);
    assert_eq!(client.client_index(), fake::CLIENT_INDEX);
    let table = client.table();
    assert_eq!(table.len(), fake::base_table().len());
    assert_eq!(table.id("control_ping_51077d14"), Some(fake::CONTROL_PING));
    assert_eq!(
        table.name(fake::CONTROL_PING_REPLY),
        Some("control_ping_reply_f6b0b8ca")
    );
    assert_eq!(table.id("control_ping_00000000"), None);
}

#[tokio::test]
async fn handshake_with_a_large_table_spanning_many_reads() {
    // About 130 KB, like a real VPP's reply; well above the client's 64 KiB read size.
    let mut table = fake::base_table();
    for i in 0..2000u16 {
        table.push((
            1000 + i,
            format!("plugin_msg_{i}_{:08x}", u32::from(i) * 7919),
        ));
    }
    let vpp = FakeVpp::start(table, Arc::new(fake::default_handler)).await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    assert_eq!(client.table().len(), 2009);
    let key = format!("plugin_msg_1999_{:08x}", 1999u32 * 7919);
    assert_eq!(client.table().id(&key), Some(2999));
    client.ping().await.unwrap();
}

#[tokio::test]
async fn client_name_longer_than_63_bytes_is_rejected() {
    let vpp = FakeVpp::with_handler(fake::default_handler).await;
    let err = Client::connect(&vpp.path, opts().name("x".repeat(64)))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidOptions { .. }), "{err:?}");
}

#[tokio::test]
async fn connect_to_a_missing_socket_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect(dir.path().join("nope.sock"), opts())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn compat_tells_present_missing_and_other_crc_apart() {
    let vpp = FakeVpp::with_handler(fake::default_handler).await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    let report = client.compat(&[
        ("control_ping", 0x51077d14),
        ("no_such_message", 0x12345678),
        ("show_version", 0xc919bde1),
    ]);
    let statuses: Vec<_> = report.entries.iter().map(|e| e.status.clone()).collect();
    assert_eq!(
        statuses,
        vec![
            CompatStatus::Present {
                id: fake::CONTROL_PING
            },
            CompatStatus::Missing,
            CompatStatus::CrcMismatch {
                vpp_crc: 0xaaaaaaaa,
                id: fake::SHOW_VERSION
            },
        ]
    );
    assert!(!report.is_compatible());
    let problems: Vec<_> = report.problems().map(|e| e.name.as_str()).collect();
    assert_eq!(problems, ["no_such_message", "show_version"]);
    assert!(
        client
            .compat(&[("control_ping", 0x51077d14)])
            .is_compatible()
    );
}

#[tokio::test]
async fn ping_round_trip_uses_the_client_index_and_a_nonzero_context() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let vpp = {
        let seen = seen.clone();
        FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
            seen.lock().unwrap().push(req.clone());
            fake::default_handler(req, out);
        })
        .await
    };
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    client.ping().await.unwrap();
    client.ping().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for r in seen.iter() {
        assert_eq!(r.id, fake::CONTROL_PING);
        assert_eq!(r.client_index, fake::CLIENT_INDEX);
        assert_eq!(r.payload.len(), 10);
        assert_ne!(r.context, 0);
        assert!(r.context < 0x8000_0000);
    }
    assert_ne!(seen[0].context, seen[1].context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_100k_pings_all_complete() {
    let count = Arc::new(AtomicUsize::new(0));
    let vpp = {
        let count = count.clone();
        FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
            count.fetch_add(1, Ordering::Relaxed);
            fake::default_handler(req, out);
        })
        .await
    };
    // The test asserts that every call completes, not how fast: the last of 100,000 calls
    // queued behind the window may wait long on a loaded machine (other tests run alongside).
    let client = Client::connect(&vpp.path, opts().timeout(Duration::from_secs(120)))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..1000 {
                let client = client.clone();
                set.spawn(async move { client.ping().await });
            }
            let mut ok = 0;
            while let Some(r) = set.join_next().await {
                r.unwrap().unwrap();
                ok += 1;
            }
            ok
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.unwrap();
    }
    assert_eq!(total, 100_000);
    assert_eq!(count.load(Ordering::Relaxed), 100_000);
}

#[tokio::test]
async fn the_window_bounds_calls_in_flight() {
    // The server answers nothing, so only the window's worth of pings can ever be sent.
    let held = Arc::new(Mutex::new(Vec::new()));
    let vpp = {
        let held = held.clone();
        FakeVpp::with_handler(move |req: &Req, _: &mut Vec<Out>| {
            held.lock().unwrap().push(req.context);
        })
        .await
    };
    let client = Client::connect(&vpp.path, opts().max_in_flight(8))
        .await
        .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = client.clone();
        set.spawn(async move { client.ping().await });
    }
    // Wait until the window is full, then give the rest a chance to (wrongly) follow.
    tokio::time::timeout(Duration::from_secs(10), async {
        while held.lock().unwrap().len() < 8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first 8 pings never arrived");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(held.lock().unwrap().len(), 8);
    assert_eq!(set.len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out() {
    let vpp = FakeVpp::with_handler(|_: &Req, _: &mut Vec<Out>| {}).await;
    let client = Client::connect(&vpp.path, opts().timeout(Duration::from_millis(1500)))
        .await
        .unwrap();
    let start = Instant::now();
    let err = client.ping().await.unwrap_err();
    let ClientError::Timeout { msg, context } = err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(msg, "control_ping");
    assert_ne!(context, 0);
    assert!(start.elapsed() >= Duration::from_millis(1500));
    assert!(start.elapsed() < Duration::from_millis(1600));
    // The timed-out call freed its slot and the connection is still usable.
    assert!(!client.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_after_a_timeout_is_dropped_and_later_calls_work() {
    // First ping: no answer. Later pings: the stale reply first, then the right one.
    let first = Arc::new(Mutex::new(None::<u32>));
    let vpp = {
        let first = first.clone();
        FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
            let mut first = first.lock().unwrap();
            match *first {
                None => *first = Some(req.context),
                Some(stale) => {
                    out.push(Out::Frame(fake::ping_reply(stale)));
                    out.push(Out::Frame(fake::ping_reply(req.context)));
                }
            }
        })
        .await
    };
    let client = Client::connect(&vpp.path, opts().timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(matches!(
        client.ping().await,
        Err(ClientError::Timeout { .. })
    ));
    client.ping().await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dying_server_fails_every_pending_call_promptly() {
    let seen = Arc::new(AtomicUsize::new(0));
    let vpp = {
        let seen = seen.clone();
        FakeVpp::with_handler(move |_: &Req, out: &mut Vec<Out>| {
            // Swallow nine pings, then die on the tenth.
            if seen.fetch_add(1, Ordering::SeqCst) == 9 {
                out.push(Out::Close);
            }
        })
        .await
    };
    let client = Client::connect(&vpp.path, opts().timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = client.clone();
        set.spawn(async move { client.ping().await });
    }
    while let Some(r) = set.join_next().await {
        assert!(matches!(r.unwrap(), Err(ClientError::Closed)));
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(client.is_closed());
    assert!(matches!(client.ping().await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn unknown_reply_id_fails_the_call_and_keeps_the_connection() {
    let n = Arc::new(AtomicUsize::new(0));
    let vpp = {
        let n = n.clone();
        FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                // Id 4321 is not in the table.
                out.push(Out::Frame(fake::reply(4321, req.context, &[0; 8])));
            } else {
                fake::default_handler(req, out);
            }
        })
        .await
    };
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownReplyId { id: 4321, .. }),
        "{err:?}"
    );
    client.ping().await.unwrap();
}

#[tokio::test]
async fn wrong_known_reply_fails_the_call_with_unexpected_reply() {
    let vpp = FakeVpp::with_handler(|req: &Req, out: &mut Vec<Out>| {
        if req.id == fake::CONTROL_PING {
            out.push(Out::Frame(fake::reply(
                fake::SOCKCLNT_DELETE_REPLY,
                req.context,
                &1i32.to_be_bytes(),
            )));
        }
    })
    .await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    let err = client.ping().await.unwrap_err();
    let ClientError::UnexpectedReply {
        expected, received, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(expected, "control_ping_reply_f6b0b8ca");
    assert_eq!(received, "sockclnt_delete_reply_8f38b1ee");
    assert!(!client.is_closed());
}

#[tokio::test]
async fn short_and_empty_frames_are_dropped_without_harm() {
    let vpp = FakeVpp::with_handler(|req: &Req, out: &mut Vec<Out>| {
        out.push(Out::Frame(vec![])); // no message id at all
        out.push(Out::Frame(vec![0])); // half a message id
        out.push(Out::Frame(fake::CONTROL_PING_REPLY.to_be_bytes().to_vec())); // no context
        fake::default_handler(req, out);
    })
    .await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    client.ping().await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn oversized_frame_length_fails_with_frame_too_large_without_allocating() {
    let vpp = FakeVpp::with_handler(|_: &Req, out: &mut Vec<Out>| {
        // Announce 3 GiB and send a few bytes.
        let mut raw = vec![0u8; 16];
        raw[8..12].copy_from_slice(&(3u32 << 30).to_be_bytes());
        raw.extend_from_slice(&[1, 2, 3]);
        out.push(Out::Raw(raw));
    })
    .await;
    let client = Client::connect(&vpp.path, opts().max_frame_len(1 << 20))
        .await
        .unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::FrameTooLarge {
                len: 0xC000_0000,
                limit: 0x10_0000
            }
        ),
        "{err:?}"
    );
    assert!(client.is_closed());
    assert!(matches!(client.ping().await, Err(ClientError::Closed)));
    // Nothing in this test binary allocates anywhere near the announced size.
    assert!(LARGEST_ALLOC.load(Ordering::Relaxed) < 256 << 20);
}

#[tokio::test]
async fn close_sends_sockclnt_delete_with_the_handle() {
    let deleted = Arc::new(Mutex::new(None));
    let vpp = {
        let deleted = deleted.clone();
        FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
            if req.id == fake::SOCKCLNT_DELETE {
                *deleted.lock().unwrap() = Some(req.payload[10..14].to_vec());
            }
            fake::default_handler(req, out);
        })
        .await
    };
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    let other = client.clone();
    client.close().await.unwrap();
    assert_eq!(
        deleted.lock().unwrap().as_deref(),
        Some(&fake::CLIENT_INDEX.to_be_bytes()[..])
    );
    assert!(other.is_closed());
    assert!(matches!(other.ping().await, Err(ClientError::Closed)));
    // Closing again is a no-op.
    client.close().await.unwrap();
}

#[tokio::test]
async fn close_reports_a_failed_delete() {
    let vpp = FakeVpp::with_handler(|req: &Req, out: &mut Vec<Out>| {
        if req.id == fake::SOCKCLNT_DELETE {
            out.push(Out::Frame(fake::reply(
                fake::SOCKCLNT_DELETE_REPLY,
                req.context,
                &(-1i32).to_be_bytes(),
            )));
        }
    })
    .await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    let err = client.close().await.unwrap_err();
    assert!(
        matches!(err, ClientError::CloseFailed { response: -1 }),
        "{err:?}"
    );
    assert!(client.is_closed());
}

#[tokio::test]
async fn keepalive_is_answered() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let vpp = FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| match req.id {
        fake::CONTROL_PING => {
            // Ask the client for a keepalive reply before answering the ping.
            let mut k = fake::KEEPALIVE.to_be_bytes().to_vec();
            k.extend_from_slice(&0u32.to_be_bytes());
            k.extend_from_slice(&77u32.to_be_bytes());
            out.push(Out::Frame(k));
            fake::default_handler(req, out);
        }
        fake::KEEPALIVE_REPLY => {
            tx.send(req.payload.clone()).unwrap();
        }
        _ => {}
    })
    .await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    client.ping().await.unwrap();
    let reply = rx.recv().await.unwrap();
    // id, context 77, retval 0 (reply-shaped, so the fake's request view misreads it).
    assert_eq!(reply[..2], fake::KEEPALIVE_REPLY.to_be_bytes());
    assert_eq!(reply[2..6], 77u32.to_be_bytes());
    assert_eq!(reply[6..10], 0i32.to_be_bytes());
}

#[tokio::test]
async fn metrics_hook_sees_sends_and_receives() {
    type Seen = Arc<Mutex<Vec<(String, Direction, Outcome)>>>;
    let seen: Seen = Arc::default();
    let hook = {
        let seen = seen.clone();
        move |e: &MessageEvent<'_>| {
            seen.lock()
                .unwrap()
                .push((e.name.to_owned(), e.direction, e.outcome))
        }
    };
    let vpp = FakeVpp::with_handler(fake::default_handler).await;
    let client = Client::connect(&vpp.path, opts().metrics(Arc::new(hook)))
        .await
        .unwrap();
    client.ping().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (
                "control_ping_51077d14".to_owned(),
                Direction::Send,
                Outcome::Ok
            ),
            (
                "control_ping_reply_f6b0b8ca".to_owned(),
                Direction::Recv,
                Outcome::Ok
            ),
        ]
    );
}

#[tokio::test]
async fn dropping_every_handle_closes_the_socket() {
    let vpp = FakeVpp::with_handler(fake::default_handler).await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    let clone = client.clone();
    client.ping().await.unwrap();
    drop(client);
    clone.ping().await.unwrap();
    assert_eq!(vpp.disconnects.load(Ordering::SeqCst), 0);
    drop(clone);
    tokio::time::timeout(Duration::from_secs(5), async {
        while vpp.disconnects.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server never saw the socket close");
}

// ---------------------------------------------------------------------------------------------
// Typed API: generated messages (and test-local ones) through the fake server.

mod typed {
    use super::*;
    use vpp_binapi::api::ip::{IpMtableDetails, IpMtableDump, IpTable};
    use vpp_binapi::api::lb::{LbAsDetails, LbAsDump, LbConf, LbConfReply};
    use vpp_binapi::api::memclnt::{ControlPing, ControlPingReply};
    use vpp_binapi::codec::{
        self, DecodeError, HeaderKind, Message, Reader, Request, decode_message,
    };

    const LB_CONF: u16 = 300;
    const LB_CONF_REPLY: u16 = 301;
    const LB_AS_DUMP: u16 = 302;
    const LB_AS_DETAILS: u16 = 303;
    const IP_MTABLE_DUMP: u16 = 304;
    const IP_MTABLE_DETAILS: u16 = 305;
    const TEST_EVENT: u16 = 306;

    /// An event defined here, not generated: the client works with any `Message`.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub(crate) struct TestEvent {
        pub(crate) value: u32,
    }

    impl Message for TestEvent {
        const NAME: &'static str = "test_event";
        const CRC: u32 = 0x1234_5678;
        const NAME_CRC: &'static str = "test_event_12345678";
        const HEADER: HeaderKind = HeaderKind::Event;
        fn body_len(&self) -> usize {
            4
        }
        fn encode_body(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.value.to_be_bytes());
        }
        fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Self {
                value: r.u32("value")?,
            })
        }
    }

    /// Known to the fake VPP under another CRC.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub(crate) struct ShowVersion;

    impl Message for ShowVersion {
        const NAME: &'static str = "show_version";
        const CRC: u32 = 0x51077d14;
        const NAME_CRC: &'static str = "show_version_51077d14";
        const HEADER: HeaderKind = HeaderKind::Request;
        fn body_len(&self) -> usize {
            0
        }
        fn encode_body(&self, _: &mut Vec<u8>) {}
        fn decode_body(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Self)
        }
    }

    impl Request for ShowVersion {
        type Reply = ControlPingReply;
    }

    fn table() -> Vec<(u16, String)> {
        let mut t = fake::base_table();
        for (id, name) in [
            (LB_CONF, LbConf::NAME_CRC),
            (LB_CONF_REPLY, LbConfReply::NAME_CRC),
            (LB_AS_DUMP, LbAsDump::NAME_CRC),
            (LB_AS_DETAILS, LbAsDetails::NAME_CRC),
            (IP_MTABLE_DUMP, IpMtableDump::NAME_CRC),
            (IP_MTABLE_DETAILS, IpMtableDetails::NAME_CRC),
            (TEST_EVENT, TestEvent::NAME_CRC),
        ] {
            t.push((id, name.to_owned()));
        }
        t
    }

    async fn start(handler: impl Fn(&Req, &mut Vec<Out>) + Send + Sync + 'static) -> FakeVpp {
        FakeVpp::start(table(), Arc::new(handler)).await
    }

    fn encode<M: Message>(msg: &M, id: u16, client_index: u32, context: u32) -> Vec<u8> {
        codec::encode_message_to_vec(msg, id, client_index, context)
    }

    fn as_details(n: u32) -> LbAsDetails {
        LbAsDetails {
            in_use_since: n,
            flags: n as u8,
            ..Default::default()
        }
    }

    fn event(value: u32) -> Out {
        Out::Frame(encode(
            &TestEvent { value },
            TEST_EVENT,
            fake::CLIENT_INDEX,
            0,
        ))
    }

    #[tokio::test]
    async fn request_reply_encodes_the_body_and_decodes_the_reply() {
        let got = Arc::new(Mutex::new(None));
        let vpp = {
            let got = got.clone();
            start(move |req: &Req, out: &mut Vec<Out>| {
                if req.id == LB_CONF {
                    let (h, conf) = decode_message::<LbConf>(&req.payload).unwrap();
                    *got.lock().unwrap() = Some((h.client_index, conf));
                    let reply = LbConfReply { retval: -3 };
                    out.push(Out::Frame(encode(&reply, LB_CONF_REPLY, 0, req.context)));
                }
            })
            .await
        };
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let conf = LbConf {
            sticky_buckets_per_core: 1024,
            flow_timeout: 40,
            ..Default::default()
        };
        let reply = client.request(&conf).await.unwrap();
        assert_eq!(reply, LbConfReply { retval: -3 });
        assert_eq!(*got.lock().unwrap(), Some((Some(fake::CLIENT_INDEX), conf)));
    }

    #[tokio::test]
    async fn undecodable_reply_is_a_decode_error() {
        let vpp = start(|req: &Req, out: &mut Vec<Out>| {
            if req.id == LB_CONF {
                // lb_conf_reply without its retval.
                out.push(Out::Frame(fake::reply(LB_CONF_REPLY, req.context, &[0xff])));
            } else {
                fake::default_handler(req, out);
            }
        })
        .await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let err = client.request(&LbConf::default()).await.unwrap_err();
        let ClientError::Decode(e) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(e.message, "lb_conf_reply");
        assert_eq!(e.field, "retval");
        assert_eq!(e.offset, 6);
        client.ping().await.unwrap();
    }

    #[tokio::test]
    async fn unknown_and_other_crc_messages_are_refused_before_sending() {
        let sent = Arc::new(AtomicUsize::new(0));
        let vpp = {
            let sent = sent.clone();
            FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
                sent.fetch_add(1, Ordering::SeqCst);
                fake::default_handler(req, out);
            })
            .await
        };
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        // The base table lacks lb_conf entirely, and has show_version under another CRC.
        let err = client.request(&LbConf::default()).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::UnknownMessage { name } if name == LbConf::NAME_CRC),
            "{err:?}"
        );
        let err = client.request(&ShowVersion).await.unwrap_err();
        assert!(
            matches!(
                &err,
                ClientError::CrcMismatch { name, our_crc: 0x51077d14, vpp_crc: 0xaaaaaaaa }
                    if name == "show_version"
            ),
            "{err:?}"
        );
        assert_eq!(
            client.check::<ShowVersion>(),
            CompatStatus::CrcMismatch {
                vpp_crc: 0xaaaaaaaa,
                id: fake::SHOW_VERSION
            }
        );
        assert_eq!(client.check::<LbConf>(), CompatStatus::Missing);
        assert_eq!(
            client.check::<ControlPing>(),
            CompatStatus::Present {
                id: fake::CONTROL_PING
            }
        );
        assert_eq!(sent.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn compat_over_a_generated_module() {
        let vpp = start(fake::default_handler).await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let report = client.compat_messages(vpp_binapi::api::lb::MESSAGES);
        assert_eq!(report.entries.len(), vpp_binapi::api::lb::MESSAGES.len());
        let present: Vec<&str> = report
            .entries
            .iter()
            .filter(|e| matches!(e.status, CompatStatus::Present { .. }))
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            present,
            ["lb_as_details", "lb_as_dump", "lb_conf", "lb_conf_reply"]
        );
        assert!(!report.is_compatible());
    }

    #[tokio::test]
    async fn dump_collects_details_until_the_ping_reply() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let vpp = {
            let seen = seen.clone();
            start(move |req: &Req, out: &mut Vec<Out>| {
                seen.lock().unwrap().push((req.id, req.context));
                match req.id {
                    LB_AS_DUMP => {
                        for n in 0..3 {
                            out.push(Out::Frame(encode(
                                &as_details(n),
                                LB_AS_DETAILS,
                                0,
                                req.context,
                            )));
                        }
                    }
                    _ => fake::default_handler(req, out),
                }
            })
            .await
        };
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let details = client.dump(&LbAsDump::default()).await.unwrap();
        assert_eq!(details, (0..3).map(as_details).collect::<Vec<_>>());
        {
            let seen = seen.lock().unwrap();
            // The dump, then control_ping, with the same context.
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0].0, LB_AS_DUMP);
            assert_eq!(seen[1].0, fake::CONTROL_PING);
            assert_eq!(seen[0].1, seen[1].1);
        }
        assert_eq!(client.dump(&LbAsDump::default()).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn dump_of_request_shaped_details_reads_the_context_at_offset_6() {
        let vpp = start(|req: &Req, out: &mut Vec<Out>| match req.id {
            IP_MTABLE_DUMP => {
                for id in [7, 8] {
                    let d = IpMtableDetails {
                        table: IpTable {
                            table_id: id,
                            ..Default::default()
                        },
                    };
                    // client_index (offset 2) is something else than the context.
                    out.push(Out::Frame(encode(
                        &d,
                        IP_MTABLE_DETAILS,
                        0xdead_beef,
                        req.context,
                    )));
                }
            }
            _ => fake::default_handler(req, out),
        })
        .await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let details = client.dump(&IpMtableDump {}).await.unwrap();
        let ids: Vec<u32> = details.iter().map(|d| d.table.table_id).collect();
        assert_eq!(ids, [7, 8]);
    }

    #[tokio::test]
    async fn empty_dump_is_an_empty_vec() {
        let vpp = start(fake::default_handler).await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        assert!(client.dump(&LbAsDump::default()).await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn server_dying_mid_dump_fails_every_pending_call_promptly() {
        // Pings are swallowed, so they are still pending when the server dies.
        let vpp = start(|req: &Req, out: &mut Vec<Out>| {
            if req.id == LB_AS_DUMP {
                for n in [1, 2] {
                    let d = encode(&as_details(n), LB_AS_DETAILS, 0, req.context);
                    out.push(Out::Frame(d));
                }
                // An empty frame and half a header, then the connection drops before the ping
                // reply.
                out.push(Out::Raw(vec![0; 20]));
                out.push(Out::Close);
            }
        })
        .await;
        let client = Client::connect(&vpp.path, opts().timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        let start = Instant::now();
        let mut pings = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let client = client.clone();
            pings.spawn(async move { client.ping().await });
        }
        tokio::task::yield_now().await;
        let err = client.dump(&LbAsDump::default()).await.unwrap_err();
        assert!(matches!(err, ClientError::Closed), "{err:?}");
        while let Some(r) = pings.join_next().await {
            assert!(matches!(r.unwrap(), Err(ClientError::Closed)));
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(matches!(
            client.dump(&LbAsDump::default()).await,
            Err(ClientError::Closed)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn dump_timeout_bounds_the_wait_for_each_next_message() {
        let vpp = start(|req: &Req, out: &mut Vec<Out>| {
            if req.id == LB_AS_DUMP {
                out.push(Out::Frame(encode(
                    &as_details(1),
                    LB_AS_DETAILS,
                    0,
                    req.context,
                )));
            }
            // No ping reply: the dump never ends.
        })
        .await;
        let client = Client::connect(&vpp.path, opts().timeout(Duration::from_secs(2)))
            .await
            .unwrap();
        let err = client.dump(&LbAsDump::default()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    msg: "lb_as_dump",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// Answers pings with `vpe_pid` = arrival number, in pairs swapped (second first).
    fn swapping_ping_server() -> impl Fn(&Req, &mut Vec<Out>) + Send + Sync + 'static {
        let state = Mutex::new((0u32, None::<Vec<u8>>));
        move |req: &Req, out: &mut Vec<Out>| {
            if req.id != fake::CONTROL_PING {
                return fake::default_handler(req, out);
            }
            let mut st = state.lock().unwrap();
            let n = st.0;
            st.0 += 1;
            let reply = ControlPingReply {
                retval: 0,
                client_index: fake::CLIENT_INDEX,
                vpe_pid: n,
            };
            let frame = encode(&reply, fake::CONTROL_PING_REPLY, 0, req.context);
            match st.1.take() {
                None => st.1 = Some(frame),
                Some(held) => {
                    out.push(Out::Frame(frame));
                    out.push(Out::Frame(held));
                }
            }
        }
    }

    #[tokio::test]
    async fn batch_returns_replies_in_request_order() {
        let vpp = start(swapping_ping_server()).await;
        // A window smaller than the batch: the batch must keep refilling it.
        let client = Client::connect(&vpp.path, opts().max_in_flight(64))
            .await
            .unwrap();
        let replies = client.batch(&vec![ControlPing {}; 1000]).await.unwrap();
        let pids: Vec<u32> = replies.iter().map(|r| r.vpe_pid).collect();
        assert_eq!(pids, (0..1000).collect::<Vec<_>>());
        // An empty batch needs no round trip.
        assert!(client.batch::<ControlPing>(&[]).await.unwrap().is_empty());
        // The window is whole again afterwards.
        let replies = client.batch(&vec![ControlPing {}; 64]).await.unwrap();
        assert_eq!(replies.len(), 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelined_100k_pings_in_one_batch() {
        let vpp = start(fake::default_handler).await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let replies = client.batch(&vec![ControlPing {}; 100_000]).await.unwrap();
        assert_eq!(replies.len(), 100_000);
        assert!(replies.iter().all(|r| r.vpe_pid == fake::VPE_PID));
    }

    #[tokio::test(start_paused = true)]
    async fn batch_with_a_silently_dropped_request_times_out() {
        let n = AtomicUsize::new(0);
        let vpp = start(move |req: &Req, out: &mut Vec<Out>| {
            if n.fetch_add(1, Ordering::SeqCst) != 3 {
                fake::default_handler(req, out);
            }
        })
        .await;
        let client = Client::connect(&vpp.path, opts().timeout(Duration::from_secs(1)))
            .await
            .unwrap();
        let err = client.batch(&vec![ControlPing {}; 10]).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    msg: "control_ping",
                    ..
                }
            ),
            "{err:?}"
        );
        // Still usable.
        client.ping().await.unwrap();
    }

    #[tokio::test]
    async fn events_reach_subscribers_between_replies() {
        let vpp = start(|req: &Req, out: &mut Vec<Out>| {
            if req.id != fake::CONTROL_PING {
                return fake::default_handler(req, out);
            }
            out.extend([event(1), event(2)]);
            fake::default_handler(req, out);
            out.push(event(3));
        })
        .await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        let mut a = client.subscribe::<TestEvent>().unwrap();
        let mut b = client.subscribe::<TestEvent>().unwrap();
        client.ping().await.unwrap();
        for sub in [&mut a, &mut b] {
            for v in 1..=3 {
                assert_eq!(sub.recv().await.unwrap().unwrap(), TestEvent { value: v });
            }
        }
        // Closing ends the stream.
        client.close().await.unwrap();
        assert!(a.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_how_many_events_it_lost() {
        let vpp = start(|req: &Req, out: &mut Vec<Out>| {
            if req.id == fake::CONTROL_PING {
                out.extend((1..=5).map(event));
            }
            fake::default_handler(req, out);
        })
        .await;
        let client = Client::connect(&vpp.path, opts().event_buffer(2))
            .await
            .unwrap();
        let mut sub = client.subscribe::<TestEvent>().unwrap();
        client.ping().await.unwrap();
        assert!(matches!(
            sub.recv().await,
            Some(Err(ClientError::EventsLost { count: 3 }))
        ));
        assert_eq!(sub.recv().await.unwrap().unwrap().value, 1);
        assert_eq!(sub.recv().await.unwrap().unwrap().value, 2);
    }

    #[tokio::test]
    async fn subscribing_to_a_message_with_a_context_is_refused() {
        let vpp = start(fake::default_handler).await;
        let client = Client::connect(&vpp.path, opts()).await.unwrap();
        assert!(matches!(
            client.subscribe::<LbConfReply>(),
            Err(ClientError::WrongKind {
                msg: "lb_conf_reply",
                ..
            })
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Handshake failures, cancellation, tracing.

/// A listener whose single connection is handled by `f` (raw bytes, no fake VPP logic).
async fn raw_server<F, Fut>(f: F) -> (tempfile::TempDir, PathBuf)
where
    F: FnOnce(UnixStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        f(sock).await;
    });
    (dir, path)
}

async fn read_one_frame(sock: &mut UnixStream) -> Vec<u8> {
    let mut hdr = [0u8; 16];
    sock.read_exact(&mut hdr).await.unwrap();
    let mut p = vec![0u8; u32::from_be_bytes(hdr[8..12].try_into().unwrap()) as usize];
    sock.read_exact(&mut p).await.unwrap();
    p
}

#[tokio::test]
async fn handshake_refused_by_vpp_is_handshake_failed() {
    let (_dir, path) = raw_server(|mut sock| async move {
        let req = read_one_frame(&mut sock).await;
        let mut p = 16u16.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&req[2..6]); // context
        p.extend_from_slice(&(-1i32).to_be_bytes()); // response: failure
        p.extend_from_slice(&[0; 6]);
        sock.write_all(&fake::frame(&p)).await.unwrap();
    })
    .await;
    let err = Client::connect(&path, opts()).await.unwrap_err();
    let ClientError::HandshakeFailed { reason } = &err else {
        panic!("{err:?}");
    };
    assert!(reason.contains("response -1"), "{reason}");
}

#[tokio::test]
async fn socket_closed_during_handshake_is_handshake_failed() {
    let (_dir, path) = raw_server(|mut sock| async move {
        read_one_frame(&mut sock).await;
    })
    .await;
    let err = Client::connect(&path, opts()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::HandshakeFailed { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_message_table_is_handshake_failed() {
    let (_dir, path) = raw_server(|mut sock| async move {
        let req = read_one_frame(&mut sock).await;
        let mut p = 16u16.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&req[2..6]);
        p.extend_from_slice(&0i32.to_be_bytes());
        p.extend_from_slice(&fake::CLIENT_INDEX.to_be_bytes());
        p.extend_from_slice(&1000u16.to_be_bytes()); // 1000 entries announced, one present
        p.extend_from_slice(&[0; 66]);
        sock.write_all(&fake::frame(&p)).await.unwrap();
        let _ = sock.read(&mut [0; 1]).await;
    })
    .await;
    let err = Client::connect(&path, opts()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::HandshakeFailed { .. }),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn silent_server_during_handshake_times_out() {
    let (_dir, path) = raw_server(|mut sock| async move {
        read_one_frame(&mut sock).await;
        let _ = sock.read(&mut [0; 1]).await;
    })
    .await;
    let err = Client::connect(&path, opts().timeout(Duration::from_secs(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                msg: "sockclnt_create",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_call_returns_its_window_slot() {
    // The first ping is never answered; later ones are.
    let first = AtomicUsize::new(0);
    let vpp = FakeVpp::with_handler(move |req: &Req, out: &mut Vec<Out>| {
        if first.fetch_add(1, Ordering::SeqCst) > 0 {
            fake::default_handler(req, out);
        }
    })
    .await;
    let client = Client::connect(&vpp.path, opts().max_in_flight(1))
        .await
        .unwrap();
    // The caller gives up long before the client's own 5 s timeout.
    let abandoned = tokio::time::timeout(Duration::from_millis(100), client.ping()).await;
    assert!(abandoned.is_err());
    // With a window of one, this only works if the dropped call freed its slot.
    let start = Instant::now();
    client.ping().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
}
