//! The client's tracing events, in a test binary of their own: `tracing`'s per-thread default
//! subscriber and its global callsite interest cache do not mix reliably with other tests
//! running on other threads of the same process. While a thread-local subscriber is the only
//! one registered, tracing-core (0.1.36) computes the interest of a callsite first reached on
//! any thread from that thread's default alone; a client test on another thread (no
//! subscriber) would cache "never" for the client's send and receive events, process-wide, and
//! this test would see none of them. A global subscriber instead would capture every test's
//! events, so the test keeps a process of its own.

use vpp_binapi::client::{Client, ClientOptions};

#[path = "it/fake.rs"]
#[allow(dead_code)]
mod fake;

use fake::FakeVpp;

fn opts() -> ClientOptions {
    ClientOptions::default().name("client-test")
}

mod trace_capture {
    //! A minimal `tracing` subscriber recording event names and their `msg` field.

    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Clone, Default)]
    pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<(String, String)>>>);

    struct MsgField(String);

    impl Visit for MsgField {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "msg" {
                self.0 = value.to_owned();
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut msg = MsgField(String::new());
            event.record(&mut msg);
            self.0
                .lock()
                .unwrap()
                .push((event.metadata().name().to_owned(), msg.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[tokio::test]
async fn every_send_and_receive_is_a_tracing_event() {
    let capture = trace_capture::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let vpp = FakeVpp::with_handler(fake::default_handler).await;
    let client = Client::connect(&vpp.path, opts()).await.unwrap();
    client.ping().await.unwrap();
    let events = capture.0.lock().unwrap().clone();
    let io: Vec<(&str, &str)> = events
        .iter()
        .filter(|(name, _)| name.starts_with("vpp-api-send") || name.starts_with("vpp-api-recv"))
        .map(|(n, m)| (n.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        io,
        [
            ("vpp-api-send", "sockclnt_create"),
            ("vpp-api-recv", "sockclnt_create_reply"),
            ("vpp-api-send", "control_ping_51077d14"),
            ("vpp-api-recv", "control_ping_reply_f6b0b8ca"),
        ]
    );
}
