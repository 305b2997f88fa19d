//! The connection actor: a reader task that routes received frames to waiting calls by context,
//! a writer task that flushes the shared outbound buffer, and the raw (untyped) call primitives
//! the typed API is built on.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use super::error::ClientError;
use super::frame::{FRAME_HEADER_LEN, FrameDecoder, FrameError};
use super::memclnt::{self, Route, be_u32};
use super::metrics::{ClientMetrics, Direction, MessageEvent, Outcome};
use super::table::MessageTable;

/// Smallest read the reader asks the socket for.
const READ_CHUNK: usize = 64 * 1024;
/// Largest single reservation the reader makes for one read, whatever a header announces.
const MAX_READ_RESERVE: usize = 1 << 20;

/// Settings the connection needs at run time.
#[derive(Clone)]
pub(crate) struct ConnConfig {
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) event_buffer: usize,
    pub(crate) metrics: Option<Arc<dyn ClientMetrics>>,
}

/// Ids of the memclnt messages the transport uses itself, looked up once after the handshake.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WellKnown {
    pub(crate) control_ping: Option<u16>,
    pub(crate) control_ping_reply: Option<u16>,
    pub(crate) sockclnt_delete_reply: Option<u16>,
    pub(crate) keepalive: Option<u16>,
    pub(crate) keepalive_reply: Option<u16>,
}

/// A fast hasher for `u32` contexts (Fibonacci multiplicative hashing).
#[derive(Default)]
pub(crate) struct CtxHasher(u64);

impl Hasher for CtxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type CtxMap<V> = HashMap<u32, V, BuildHasherDefault<CtxHasher>>;

/// What a dump caller receives, in order.
#[derive(Debug)]
pub(crate) enum StreamItem {
    Details(Bytes),
    End,
    Failed(ClientError),
}

enum Pending {
    Reply {
        expect: u16,
        tx: oneshot::Sender<Result<Bytes, ClientError>>,
        _permit: OwnedSemaphorePermit,
    },
    Stream {
        details: u16,
        end: u16,
        tx: mpsc::UnboundedSender<StreamItem>,
        _permit: OwnedSemaphorePermit,
    },
}

impl Pending {
    fn expected(&self) -> u16 {
        match self {
            Self::Reply { expect, .. } => *expect,
            Self::Stream { details, .. } => *details,
        }
    }

    fn fail(self, err: ClientError) {
        match self {
            Self::Reply { tx, .. } => {
                let _ = tx.send(Err(err));
            }
            Self::Stream { tx, .. } => {
                let _ = tx.send(StreamItem::Failed(err));
            }
        }
    }
}

/// One event subscriber.
pub(crate) struct Subscriber {
    tx: mpsc::Sender<Bytes>,
    lost: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    /// Set once; the error pending calls were failed with.
    closed: Option<ClientError>,
    pending: CtxMap<Pending>,
    subscribers: HashMap<u16, Vec<Subscriber>>,
}

/// State shared by the client handles, the reader task and the writer task.
pub(crate) struct Shared {
    pub(crate) cfg: ConnConfig,
    pub(crate) client_index: u32,
    pub(crate) table: MessageTable,
    pub(crate) ids: WellKnown,
    routes: Box<[AtomicU8]>,
    state: Mutex<State>,
    is_closed: AtomicBool,
    out: Mutex<Vec<u8>>,
    out_notify: Notify,
    window: Arc<Semaphore>,
    next_context: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if something ever did.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a pending entry when a call is abandoned (timeout, error, or the caller's future
/// dropped), which also returns its window permit.
struct PendingGuard<'a> {
    shared: &'a Shared,
    context: u32,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let removed = lock(&self.shared.state).pending.remove(&self.context);
            drop(removed);
        }
    }
}

/// Appends whole frames to the outbound buffer and wakes the writer when dropped.
pub(crate) struct FrameSink<'a> {
    shared: &'a Shared,
    out: Option<MutexGuard<'a, Vec<u8>>>,
    was_empty: bool,
}

impl FrameSink<'_> {
    /// Appends one frame whose payload `payload` writes.
    pub(crate) fn frame(&mut self, payload: impl FnOnce(&mut Vec<u8>)) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let start = out.len();
        out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
        payload(out);
        let len = out.len() - start - FRAME_HEADER_LEN;
        // A payload beyond 4 GiB cannot be framed; VPP has no message near that size.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        out[start + 8..start + 12].copy_from_slice(&len.to_be_bytes());
    }
}

impl Drop for FrameSink<'_> {
    fn drop(&mut self) {
        let notify = match self.out.take() {
            // Release the buffer before waking the writer so it does not block on the lock.
            Some(out) => self.was_empty && !out.is_empty(),
            None => false,
        };
        if notify {
            self.shared.out_notify.notify_one();
        }
    }
}

/// Maps an I/O error of the socket to what pending calls see.
fn io_error(e: io::Error) -> ClientError {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => ClientError::Closed,
        _ => ClientError::from(e),
    }
}

/// Writes the request header (`_vl_msg_id`, `client_index`, `context`) of a context-carrying
/// request such as `control_ping`.
pub(crate) fn put_request_header(out: &mut Vec<u8>, id: u16, client_index: u32, context: u32) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&client_index.to_be_bytes());
    out.extend_from_slice(&context.to_be_bytes());
}

impl Shared {
    pub(crate) fn new(cfg: ConnConfig, client_index: u32, table: MessageTable) -> Self {
        let ids = WellKnown {
            control_ping: table.id(memclnt::CONTROL_PING),
            control_ping_reply: table.id(memclnt::CONTROL_PING_REPLY),
            sockclnt_delete_reply: table.id(memclnt::SOCKCLNT_DELETE_REPLY),
            keepalive: table.id(memclnt::MEMCLNT_KEEPALIVE),
            keepalive_reply: table.id(memclnt::MEMCLNT_KEEPALIVE_REPLY),
        };
        let window = Arc::new(Semaphore::new(cfg.max_in_flight));
        let shared = Self {
            cfg,
            client_index,
            table,
            ids,
            routes: (0..=u16::MAX).map(|_| AtomicU8::new(0)).collect(),
            state: Mutex::new(State::default()),
            is_closed: AtomicBool::new(false),
            out: Mutex::new(Vec::with_capacity(READ_CHUNK)),
            out_notify: Notify::new(),
            window,
            next_context: AtomicU32::new(1),
        };
        for id in [ids.control_ping_reply, ids.sockclnt_delete_reply]
            .into_iter()
            .flatten()
        {
            shared.set_route(id, Route::Ctx2);
        }
        shared
    }

    /// Records where received messages with `id` carry their context.
    pub(crate) fn set_route(&self, id: u16, route: Route) {
        self.routes[usize::from(id)].store(route as u8, Ordering::Release);
    }

    fn route(&self, id: u16) -> Route {
        Route::from_u8(self.routes[usize::from(id)].load(Ordering::Acquire))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.is_closed.load(Ordering::Acquire)
    }

    /// The `name_crc` of `id` for logs and metrics.
    pub(crate) fn name(&self, id: u16) -> &str {
        self.table.name(id).unwrap_or("unknown")
    }

    /// Starts appending frames to the outbound buffer.
    pub(crate) fn sink(&self) -> FrameSink<'_> {
        let out = lock(&self.out);
        FrameSink {
            shared: self,
            was_empty: out.is_empty(),
            out: Some(out),
        }
    }

    pub(crate) fn note_send(&self, id: u16, context: u32, outcome: Outcome) {
        if outcome == Outcome::Ok {
            tracing::debug!(name: "vpp-api-send", msg = self.name(id), context);
        } else {
            tracing::debug!(name: "vpp-api-send", msg = self.name(id), context, ?outcome);
        }
        if let Some(m) = &self.cfg.metrics {
            m.record(&MessageEvent {
                name: self.name(id),
                direction: Direction::Send,
                outcome,
            });
        }
    }

    fn note_recv(&self, id: Option<u16>, context: Option<u32>, outcome: Outcome) {
        let name = id.map_or("unknown", |id| self.name(id));
        if outcome == Outcome::Ok {
            tracing::debug!(name: "vpp-api-recv", msg = name, context);
        } else {
            tracing::debug!(name: "vpp-api-recv", msg = name, msg_id = id, context, ?outcome);
        }
        if let Some(m) = &self.cfg.metrics {
            m.record(&MessageEvent {
                name,
                direction: Direction::Recv,
                outcome,
            });
        }
    }

    /// Takes a window slot, waiting at most until `deadline`.
    async fn acquire(
        &self,
        deadline: Instant,
        msg: &'static str,
    ) -> Result<OwnedSemaphorePermit, ClientError> {
        match self.window.clone().try_acquire_owned() {
            Ok(p) => return Ok(p),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(ClientError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {}
        }
        match timeout_at(deadline, self.window.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout { msg, context: 0 }),
        }
    }

    fn alloc_context(&self, st: &State) -> u32 {
        loop {
            let c = self.next_context.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
            // Contexts stay below 2^31, so they never equal a client_index (high bit set) that
            // an unclassified event carries at offset 2; 0 is avoided as vpp_papi reserves it.
            if c != 0 && !st.pending.contains_key(&c) {
                return c;
            }
        }
    }

    fn register(&self, make: impl FnOnce() -> Pending) -> Result<u32, ClientError> {
        let mut st = lock(&self.state);
        if st.closed.is_some() {
            return Err(ClientError::Closed);
        }
        let context = self.alloc_context(&st);
        st.pending.insert(context, make());
        Ok(context)
    }

    /// Sends one request (written by `encode` given the context) and waits for the frame of
    /// message `expect` with the same context.
    pub(crate) async fn call(
        &self,
        msg: &'static str,
        req_id: u16,
        expect: u16,
        encode: impl FnOnce(&mut Vec<u8>, u32),
    ) -> Result<Bytes, ClientError> {
        let deadline = Instant::now() + self.cfg.timeout;
        let permit = self.acquire(deadline, msg).await?;
        let (tx, rx) = oneshot::channel();
        let context = self.register(|| Pending::Reply {
            expect,
            tx,
            _permit: permit,
        })?;
        let mut guard = PendingGuard {
            shared: self,
            context,
            armed: true,
        };
        self.note_send(req_id, context, Outcome::Ok);
        self.sink().frame(|out| encode(out, context));
        match timeout_at(deadline, rx).await {
            Ok(reply) => {
                guard.armed = false;
                reply.unwrap_or(Err(ClientError::Closed))
            }
            Err(_) => {
                self.note_send(req_id, context, Outcome::Timeout);
                Err(ClientError::Timeout { msg, context })
            }
        }
    }

    /// Sends a dump request followed by `control_ping` with the same context, and hands every
    /// details frame to `on_details` until the ping reply arrives. The timeout bounds the wait
    /// for each next message, so a long dump that keeps making progress does not time out.
    pub(crate) async fn dump(
        &self,
        msg: &'static str,
        req_id: u16,
        details: u16,
        encode: impl FnOnce(&mut Vec<u8>, u32),
        mut on_details: impl FnMut(Bytes) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let (Some(ping), Some(ping_reply)) = (self.ids.control_ping, self.ids.control_ping_reply)
        else {
            return Err(ClientError::UnknownMessage {
                name: memclnt::CONTROL_PING.to_owned(),
            });
        };
        let mut deadline = Instant::now() + self.cfg.timeout;
        let permit = self.acquire(deadline, msg).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let context = self.register(|| Pending::Stream {
            details,
            end: ping_reply,
            tx,
            _permit: permit,
        })?;
        let mut guard = PendingGuard {
            shared: self,
            context,
            armed: true,
        };
        self.note_send(req_id, context, Outcome::Ok);
        self.note_send(ping, context, Outcome::Ok);
        {
            let mut sink = self.sink();
            sink.frame(|out| encode(out, context));
            sink.frame(|out| put_request_header(out, ping, self.client_index, context));
        }
        loop {
            // Details of a long dump are usually queued already: skip the timer then.
            let item = match rx.try_recv() {
                Ok(item) => Ok(Some(item)),
                Err(mpsc::error::TryRecvError::Disconnected) => Ok(None),
                Err(mpsc::error::TryRecvError::Empty) => timeout_at(deadline, rx.recv()).await,
            };
            match item {
                Ok(Some(StreamItem::Details(frame))) => {
                    on_details(frame)?;
                    deadline = Instant::now() + self.cfg.timeout;
                }
                Ok(Some(StreamItem::End)) => {
                    guard.armed = false;
                    return Ok(());
                }
                Ok(Some(StreamItem::Failed(e))) => {
                    guard.armed = false;
                    return Err(e);
                }
                Ok(None) => {
                    guard.armed = false;
                    return Err(ClientError::Closed);
                }
                Err(_) => {
                    self.note_send(req_id, context, Outcome::Timeout);
                    return Err(ClientError::Timeout { msg, context });
                }
            }
        }
    }

    /// Sends `n` requests back to back (as many as the window allows at a time) and hands their
    /// replies to `on_reply` in request order. Stops at the first failure.
    pub(crate) async fn batch(
        &self,
        msg: &'static str,
        req_id: u16,
        expect: u16,
        n: usize,
        mut encode: impl FnMut(usize, &mut Vec<u8>, u32),
        mut on_reply: impl FnMut(Bytes) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        type Waiting<'a> = (
            PendingGuard<'a>,
            Instant,
            oneshot::Receiver<Result<Bytes, ClientError>>,
        );
        let mut waiting: std::collections::VecDeque<Waiting<'_>> = Default::default();
        let mut permits: Vec<OwnedSemaphorePermit> = Vec::new();
        let mut next = 0;
        loop {
            // Take every free window slot, up to what is left to send.
            while permits.len() < n - next {
                match self.window.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(tokio::sync::TryAcquireError::Closed) => return Err(ClientError::Closed),
                    Err(tokio::sync::TryAcquireError::NoPermits) => break,
                }
            }
            if !permits.is_empty() {
                let first = next;
                let mut contexts = Vec::with_capacity(permits.len());
                {
                    let mut st = lock(&self.state);
                    if st.closed.is_some() {
                        return Err(ClientError::Closed);
                    }
                    for permit in permits.drain(..) {
                        let context = self.alloc_context(&st);
                        let (tx, rx) = oneshot::channel();
                        st.pending.insert(
                            context,
                            Pending::Reply {
                                expect,
                                tx,
                                _permit: permit,
                            },
                        );
                        contexts.push((context, rx));
                    }
                }
                let deadline = Instant::now() + self.cfg.timeout;
                for (context, _) in &contexts {
                    self.note_send(req_id, *context, Outcome::Ok);
                }
                {
                    let mut sink = self.sink();
                    for (i, (context, _)) in contexts.iter().enumerate() {
                        sink.frame(|out| encode(first + i, out, *context));
                    }
                }
                for (context, rx) in contexts {
                    let guard = PendingGuard {
                        shared: self,
                        context,
                        armed: true,
                    };
                    waiting.push_back((guard, deadline, rx));
                    next += 1;
                }
            }
            if next == n && waiting.is_empty() {
                return Ok(());
            }
            // Wait for the oldest reply, which also frees a window slot; if this batch has
            // nothing in flight, wait for a slot held by someone else.
            match waiting.pop_front() {
                Some((mut guard, deadline, mut rx)) => {
                    // Replies to a pipelined burst are usually there already: skip the timer.
                    let reply = match rx.try_recv() {
                        Ok(reply) => Ok(reply),
                        Err(oneshot::error::TryRecvError::Closed) => Ok(Err(ClientError::Closed)),
                        Err(oneshot::error::TryRecvError::Empty) => timeout_at(deadline, rx)
                            .await
                            .map(|r| r.unwrap_or(Err(ClientError::Closed))),
                    };
                    match reply {
                        Ok(reply) => {
                            guard.armed = false;
                            on_reply(reply?)?;
                        }
                        Err(_) => {
                            self.note_send(req_id, guard.context, Outcome::Timeout);
                            return Err(ClientError::Timeout {
                                msg,
                                context: guard.context,
                            });
                        }
                    }
                }
                None => {
                    let deadline = Instant::now() + self.cfg.timeout;
                    permits.push(self.acquire(deadline, msg).await?);
                }
            }
        }
    }

    /// Registers an event subscriber for message `id`.
    pub(crate) fn subscribe(
        &self,
        id: u16,
    ) -> Result<(mpsc::Receiver<Bytes>, Arc<AtomicU64>), ClientError> {
        self.set_route(id, Route::Event);
        let (tx, rx) = mpsc::channel(self.cfg.event_buffer.max(1));
        let lost = Arc::new(AtomicU64::new(0));
        let mut st = lock(&self.state);
        if st.closed.is_some() {
            return Err(ClientError::Closed);
        }
        st.subscribers.entry(id).or_default().push(Subscriber {
            tx,
            lost: lost.clone(),
        });
        Ok((rx, lost))
    }

    /// Closes the connection state: every pending call fails with `reason`, subscriptions end,
    /// and later calls fail with [`ClientError::Closed`]. Idempotent.
    pub(crate) fn shutdown(&self, reason: ClientError) {
        let (pending, subscribers) = {
            let mut st = lock(&self.state);
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason.clone());
            (
                std::mem::take(&mut st.pending),
                std::mem::take(&mut st.subscribers),
            )
        };
        self.is_closed.store(true, Ordering::Release);
        self.window.close();
        tracing::debug!(name: "vpp-api-closed", pending = pending.len(), %reason);
        for (_, p) in pending {
            p.fail(reason.clone());
        }
        drop(subscribers);
        self.out_notify.notify_one();
    }

    /// Routes one received frame.
    fn dispatch(&self, frame: Bytes) {
        let Some(id) = frame.first_chunk::<2>().map(|b| u16::from_be_bytes(*b)) else {
            self.note_recv(None, None, Outcome::Malformed);
            return;
        };
        if Some(id) == self.ids.keepalive {
            self.answer_keepalive(&frame);
            return;
        }
        let route = self.route(id);
        if route == Route::Event {
            self.deliver_event(id, frame);
            return;
        }
        // Unclassified messages are tried as ordinary replies (context at offset 2).
        let offset = route.context_offset().unwrap_or(2);
        if frame.len() < offset + 4 {
            self.note_recv(Some(id), None, Outcome::Malformed);
            return;
        }
        let context = be_u32(&frame, offset);
        self.deliver(id, context, frame);
    }

    fn deliver(&self, id: u16, context: u32, frame: Bytes) {
        let mut st = lock(&self.state);
        let Some(entry) = st.pending.get(&context) else {
            drop(st);
            let outcome = if self.table.name(id).is_none() {
                Outcome::UnknownId
            } else {
                Outcome::Unmatched
            };
            self.note_recv(Some(id), Some(context), outcome);
            return;
        };
        match entry {
            Pending::Stream { details, tx, .. } if *details == id => {
                let _ = tx.send(StreamItem::Details(frame));
                drop(st);
                self.note_recv(Some(id), Some(context), Outcome::Ok);
            }
            Pending::Stream { end, .. } if *end == id => {
                let entry = st.pending.remove(&context);
                drop(st);
                self.note_recv(Some(id), Some(context), Outcome::Ok);
                if let Some(Pending::Stream { tx, .. }) = entry {
                    let _ = tx.send(StreamItem::End);
                }
            }
            Pending::Reply { expect, .. } if *expect == id => {
                let entry = st.pending.remove(&context);
                drop(st);
                // Recorded before the caller can observe the reply.
                self.note_recv(Some(id), Some(context), Outcome::Ok);
                if let Some(Pending::Reply { tx, .. }) = entry {
                    let _ = tx.send(Ok(frame));
                }
            }
            _ => {
                let expected = entry.expected();
                let entry = st.pending.remove(&context);
                drop(st);
                let (err, outcome) = match self.table.name(id) {
                    None => (
                        ClientError::UnknownReplyId { id, context },
                        Outcome::UnknownId,
                    ),
                    Some(received) => (
                        ClientError::UnexpectedReply {
                            expected: self.name(expected).to_owned(),
                            received: received.to_owned(),
                            context,
                        },
                        Outcome::Malformed,
                    ),
                };
                self.note_recv(Some(id), Some(context), outcome);
                if let Some(entry) = entry {
                    entry.fail(err);
                }
            }
        }
    }

    fn deliver_event(&self, id: u16, frame: Bytes) {
        let mut st = lock(&self.state);
        let mut outcome = Outcome::Unmatched;
        if let Some(subs) = st.subscribers.get_mut(&id) {
            subs.retain(|s| !s.tx.is_closed());
            for s in subs.iter() {
                match s.tx.try_send(frame.clone()) {
                    Ok(()) => outcome = Outcome::Ok,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        s.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        drop(st);
        self.note_recv(Some(id), None, outcome);
    }

    fn answer_keepalive(&self, frame: &[u8]) {
        let (Some(reply_id), Some(context)) = (
            self.ids.keepalive_reply,
            frame.get(6..10).map(|_| be_u32(frame, 6)),
        ) else {
            self.note_recv(self.ids.keepalive, None, Outcome::Malformed);
            return;
        };
        self.note_recv(self.ids.keepalive, Some(context), Outcome::Ok);
        self.sink().frame(|out| {
            out.extend_from_slice(&reply_id.to_be_bytes());
            out.extend_from_slice(&context.to_be_bytes());
            out.extend_from_slice(&0i32.to_be_bytes());
        });
        self.note_send(reply_id, context, Outcome::Ok);
    }
}

/// Reads frames until the socket closes or the stream breaks, then shuts the connection down.
pub(crate) async fn reader_task(shared: Arc<Shared>, mut rd: OwnedReadHalf, mut dec: FrameDecoder) {
    let reason = 'conn: loop {
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => shared.dispatch(frame),
                Ok(None) => break,
                Err(FrameError::TooLarge { len, limit }) => {
                    tracing::warn!(name: "vpp-api-frame-too-large", len, limit);
                    break 'conn ClientError::FrameTooLarge { len, limit };
                }
            }
        }
        let want = dec.wanted().clamp(READ_CHUNK, MAX_READ_RESERVE);
        let buf = dec.buf_mut();
        buf.reserve(want);
        match rd.read_buf(buf).await {
            Ok(0) => break ClientError::Closed,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(name: "vpp-api-read-error", error = %e);
                break io_error(e);
            }
        }
    };
    shared.shutdown(reason);
}

/// Flushes the outbound buffer whenever callers add frames.
pub(crate) async fn writer_task(shared: Arc<Shared>, mut wr: OwnedWriteHalf) {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        shared.out_notify.notified().await;
        std::mem::swap(&mut *lock(&shared.out), &mut buf);
        if !buf.is_empty() {
            if let Err(e) = wr.write_all(&buf).await {
                tracing::debug!(name: "vpp-api-write-error", error = %e);
                shared.shutdown(io_error(e));
                break;
            }
            buf.clear();
            if buf.capacity() > MAX_READ_RESERVE * 4 {
                buf = Vec::with_capacity(READ_CHUNK);
            }
        }
        if shared.is_closed() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
