//! The shared heart of the dashboard: each maglevd's [`ScopeState`], its gRPC client and its
//! driver's command channel, and the event broker (the replay [`EventRing`] plus a broadcast
//! to the open SSE streams). A cheap clone; the drivers write, the HTTP handlers read.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use maglev_api::v1::maglev_client::MaglevClient;
use tokio::sync::{broadcast, mpsc, watch};
use tonic::transport::Channel;

use crate::ring::{EventRing, Replay, RingLimits, StoredEvent};
use crate::state::ScopeState;

/// How many live events an SSE stream may fall behind before it is told to resync.
pub const LIVE_BUFFER: usize = 4096;

/// What an HTTP handler asks a driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// An admin action changed maglevd: refetch the frontends and VPP's lb state (debounced).
    Changed,
}

/// One maglevd.
#[derive(Debug)]
pub struct Scope {
    /// Its name (the `--server` address).
    pub name: String,
    /// What is known of it.
    pub state: RwLock<ScopeState>,
    /// Its client (a lazily connecting channel that reconnects by itself).
    pub client: MaglevClient<Channel>,
    /// Its driver's commands.
    pub commands: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
struct Inner {
    scopes: Vec<Arc<Scope>>,
    ring: Mutex<EventRing>,
    live: broadcast::Sender<Arc<StoredEvent>>,
    start: Instant,
    closing: watch::Sender<bool>,
}

/// The hub; see the module doc.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// An SSE subscription: what to replay first, then the live events.
#[derive(Debug)]
pub struct Subscription {
    /// The replay for the client's `Last-Event-ID`.
    pub replay: Replay,
    /// The live events (those after the replay; skip seqs already sent).
    pub live: broadcast::Receiver<Arc<StoredEvent>>,
    /// The id of the newest event at subscription (for a `resync`).
    pub latest_id: String,
}

impl Hub {
    /// A hub over `scopes`, with a ring of `epoch` and `limits`.
    #[must_use]
    pub fn new(scopes: Vec<Arc<Scope>>, epoch: u64, limits: RingLimits) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Self {
            inner: Arc::new(Inner {
                scopes,
                ring: Mutex::new(EventRing::new(epoch, limits)),
                live,
                start: Instant::now(),
                closing: watch::Sender::new(false),
            }),
        }
    }

    /// Every maglevd, in `--server` order.
    #[must_use]
    pub fn scopes(&self) -> &[Arc<Scope>] {
        &self.inner.scopes
    }

    /// The maglevd called `name`.
    #[must_use]
    pub fn scope(&self, name: &str) -> Option<&Arc<Scope>> {
        self.inner.scopes.iter().find(|s| s.name == name)
    }

    fn now(&self) -> Duration {
        self.inner.start.elapsed()
    }

    /// The ring's epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        lock(&self.inner.ring).epoch()
    }

    /// Sends an event to every browser (and keeps it for replay): `data` gets a `maglevd`
    /// field naming `scope`.
    pub fn publish(&self, scope: &str, kind: &'static str, mut data: serde_json::Value) {
        if let Some(object) = data.as_object_mut() {
            object.insert("maglevd".into(), scope.into());
        }
        let text = data.to_string();
        let now = self.now();
        let mut ring = lock(&self.inner.ring);
        let event = ring.push(now, kind, text);
        // Under the ring's lock, so a subscriber sees every event either in its replay or live.
        let _ = self.inner.live.send(event);
    }

    /// Subscribes a browser that last saw `last_event_id`.
    #[must_use]
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let now = self.now();
        let mut ring = lock(&self.inner.ring);
        let live = self.inner.live.subscribe();
        let replay = ring.replay(now, last_event_id);
        let latest_id = ring.latest_id();
        Subscription {
            replay,
            live,
            latest_id,
        }
    }

    /// Tells every open SSE stream to end (for a graceful stop).
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Resolves once [`Hub::close`] was called.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    /// The id of the newest event, for a `resync` sent to a lagging stream.
    #[must_use]
    pub fn latest_id(&self) -> String {
        lock(&self.inner.ring).latest_id()
    }
}

/// Locks, ignoring poison (the data stays consistent: every writer finishes its update).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
