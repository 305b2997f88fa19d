//! Async client for the VPP API socket (`/run/vpp/api.sock`, `AF_UNIX` `SOCK_STREAM`).
//!
//! [`Client::connect`] performs the `sockclnt_create` handshake and keeps VPP's message table
//! (`name_crc` to id). Calls are pipelined: every request gets its own context, any number of
//! tasks may call concurrently on clones of one [`Client`] (up to a bounded window of calls in
//! flight), and a reader task routes each reply to its caller by context. Every call has a
//! timeout, because VPP drops bad requests silently.
//!
//! ```no_run
//! use vpp_binapi::client::{Client, ClientOptions};
//! use vpp_binapi::api::lb::{LbConf, LbVipDump};
//!
//! # async fn demo() -> Result<(), vpp_binapi::client::ClientError> {
//! let client = Client::connect("/run/vpp/api.sock", ClientOptions::default().name("demo")).await?;
//! // Which of the lb messages does this VPP know, and with which definition?
//! let report = client.compat_messages(vpp_binapi::api::lb::MESSAGES);
//! for problem in report.problems() {
//!     eprintln!("{problem}"); // e.g. "lb_conf_56cd3261: missing"
//! }
//! let reply = client.request(&LbConf { flow_timeout: 40, ..Default::default() }).await?;
//! assert_eq!(reply.retval, 0);
//! let vips = client.dump(&LbVipDump::default()).await?;
//! println!("{} vips", vips.len());
//! client.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - A **reader task** splits the byte stream into frames with the pure [`FrameDecoder`] and
//!   routes each frame: by message id to event subscribers, otherwise by context to the
//!   waiting call. Where the context sits depends on the message class (offset 2 for ordinary
//!   replies, 6 for request-shaped replies such as `sockclnt_create_reply`, none for events);
//!   the client classifies every generated message VPP knows at connect, and any other message
//!   type when a call first expects it.
//! - Callers encode their frames straight into one shared outbound buffer; a **writer task**
//!   flushes it with one `write` per burst, so pipelined requests cost one syscall per burst.
//! - The **window** (a semaphore, [`ClientOptions::max_in_flight`]) bounds the calls in flight.
//!   A reply frees its slot; so does a timeout.
//! - When the socket closes or breaks, every pending call fails at once with
//!   [`ClientError::Closed`] (or the fatal error that broke the stream), subscriptions end, and
//!   later calls fail with [`ClientError::Closed`]. Nothing waits for a timeout.
//!
//! # Bad input from VPP
//!
//! - A frame header announcing more than [`ClientOptions::max_frame_len`] bytes is fatal: the
//!   stream cannot be resynchronised, so the connection is closed and pending calls fail with
//!   [`ClientError::FrameTooLarge`]. Nothing is allocated for the announced length.
//! - A reply whose id is not in the message table, or is not the message the caller expects,
//!   fails that caller ([`ClientError::UnknownReplyId`], [`ClientError::UnexpectedReply`]); the
//!   connection stays up. A frame whose id has not been classified is matched by the context at
//!   offset 2, where ordinary replies carry it.
//! - A reply that does not decode fails its caller with [`ClientError::Decode`].
//! - Frames nobody waits for (late replies after a timeout, events without subscriber, frames
//!   too short for their header) are dropped and reported to tracing and the metrics hook.
//!
//! # Observability
//!
//! Every message sent or received is a `tracing` event named `vpp-api-send` / `vpp-api-recv`
//! (fields `msg`, the `name_crc`, and `context`) at `DEBUG` level (the original's level), with
//! an `outcome` field when something went wrong. An optional [`ClientMetrics`] hook sees the same events.

mod conn;
mod error;
mod frame;
mod memclnt;
mod metrics;
mod table;
mod typed;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};

pub use error::ClientError;
pub use frame::{DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, FrameDecoder, FrameError, frame_header};
pub use metrics::{ClientMetrics, Direction, MessageEvent, Outcome};
pub use table::{CompatEntry, CompatReport, CompatStatus, MessageTable};
pub use typed::Subscription;

use crate::api::memclnt::{ControlPing, SockclntDelete};
use conn::{ConnConfig, Shared};

/// The default path of VPP's API socket when VPP runs as root.
pub const DEFAULT_SOCKET_PATH: &str = "/run/vpp/api.sock";

/// Settings for [`Client::connect`]; build with [`ClientOptions::default`] and the setters.
#[derive(Clone)]
pub struct ClientOptions {
    name: String,
    timeout: Duration,
    max_in_flight: usize,
    max_frame_len: u32,
    event_buffer: usize,
    metrics: Option<Arc<dyn ClientMetrics>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            name: "maglev-rs".to_owned(),
            timeout: Duration::from_secs(5),
            max_in_flight: 1024,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            event_buffer: 1024,
            metrics: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_frame_len", &self.max_frame_len)
            .field("event_buffer", &self.event_buffer)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl ClientOptions {
    /// The client name VPP shows in `show api clients` (at most 63 bytes; default `maglev-rs`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long a call waits for its reply, including the wait for a window slot (default 5 s).
    /// For dumps it bounds the wait for each next message.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many calls may be in flight at once (default 1024, at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// Largest payload accepted in one received frame (default [`DEFAULT_MAX_FRAME_LEN`]).
    pub fn max_frame_len(mut self, len: u32) -> Self {
        self.max_frame_len = len;
        self
    }

    /// Events buffered per subscription before new ones are dropped (default 1024).
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n.max(1);
        self
    }

    /// A hook that observes every message sent and received.
    pub fn metrics(mut self, metrics: Arc<dyn ClientMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

struct Inner {
    shared: Arc<Shared>,
    reader: AbortHandle,
    writer: AbortHandle,
}

impl Inner {
    fn stop(&self) {
        self.shared.shutdown(ClientError::Closed);
        self.reader.abort();
        self.writer.abort();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A connection to VPP's API socket. Cheap to clone; clones share the connection, and the
/// connection closes when the last clone is dropped (or on [`Client::close`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_index", &self.inner.shared.client_index)
            .field("messages", &self.inner.shared.table.len())
            .field("closed", &self.inner.shared.is_closed())
            .finish()
    }
}

impl Client {
    /// Connects to the API socket at `path` and registers with `sockclnt_create`.
    ///
    /// Must be called within a tokio runtime; the client spawns its reader and writer tasks
    /// there.
    pub async fn connect(
        path: impl AsRef<Path>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::Connect {
                path: path.to_owned(),
                source: Arc::new(e),
            })?;
        Self::handshake(stream, options).await
    }

    async fn handshake(mut stream: UnixStream, opts: ClientOptions) -> Result<Self, ClientError> {
        let payload = memclnt::encode_sockclnt_create(&opts.name)?;
        let timed_out = || ClientError::Timeout {
            msg: "sockclnt_create",
            context: memclnt::HANDSHAKE_CONTEXT,
        };
        let deadline = Instant::now() + opts.timeout;
        let mut wire = frame_header(payload.len() as u32).to_vec();
        wire.extend_from_slice(&payload);
        timeout_at(deadline, stream.write_all(&wire))
            .await
            .map_err(|_| timed_out())??;
        tracing::debug!(name: "vpp-api-send", msg = "sockclnt_create", context = memclnt::HANDSHAKE_CONTEXT);

        let mut dec = FrameDecoder::new(opts.max_frame_len);
        let reply = timeout_at(deadline, async {
            loop {
                match dec.next_frame() {
                    Ok(Some(frame)) => return Ok(frame),
                    Ok(None) => {}
                    Err(FrameError::TooLarge { len, limit }) => {
                        return Err(ClientError::FrameTooLarge { len, limit });
                    }
                }
                let want = dec.wanted().clamp(64 * 1024, 1 << 20);
                dec.buf_mut().reserve(want);
                if stream.read_buf(dec.buf_mut()).await? == 0 {
                    return Err(ClientError::HandshakeFailed {
                        reason: "socket closed before sockclnt_create_reply".to_owned(),
                    });
                }
            }
        })
        .await
        .map_err(|_| timed_out())??;
        let reg = memclnt::parse_sockclnt_create_reply(&reply)?;
        tracing::debug!(
            name: "vpp-api-recv",
            msg = "sockclnt_create_reply",
            context = memclnt::HANDSHAKE_CONTEXT,
            client_index = reg.client_index,
            messages = reg.table.len(),
        );

        let cfg = ConnConfig {
            timeout: opts.timeout,
            max_in_flight: opts.max_in_flight,
            event_buffer: opts.event_buffer,
            metrics: opts.metrics,
        };
        let shared = Arc::new(Shared::new(cfg, reg.client_index, reg.table));
        typed::classify_known(&shared);
        let (rd, wr) = stream.into_split();
        let reader = tokio::spawn(conn::reader_task(shared.clone(), rd, dec)).abort_handle();
        let writer = tokio::spawn(conn::writer_task(shared.clone(), wr)).abort_handle();
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                reader,
                writer,
            }),
        })
    }

    /// VPP's message table from the handshake.
    pub fn table(&self) -> &MessageTable {
        &self.inner.shared.table
    }

    /// The client index VPP assigned (put in `client_index` of every request).
    pub fn client_index(&self) -> u32 {
        self.inner.shared.client_index
    }

    /// How many calls may be in flight at once ([`ClientOptions::max_in_flight`]): a caller
    /// that drives many calls from one task keeps at most this many pending, so that none
    /// waits for a window slot without being polled.
    pub fn max_in_flight(&self) -> usize {
        self.inner.shared.cfg.max_in_flight
    }

    /// Whether the connection is closed; every call on a closed client fails with
    /// [`ClientError::Closed`].
    pub fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// Checks messages given as `(name, crc)` against VPP's table: each is present, missing, or
    /// present with another CRC.
    pub fn compat(&self, messages: &[(&str, u32)]) -> CompatReport {
        self.table().compat(messages)
    }

    /// Sends `control_ping` and waits for its reply: a cheap liveness check.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.request(&ControlPing {}).await.map(drop)
    }

    /// Unregisters with `sockclnt_delete` and closes the connection. Pending calls on other
    /// clones fail with [`ClientError::Closed`]. Closing a closed client does nothing.
    pub async fn close(&self) -> Result<(), ClientError> {
        if self.is_closed() {
            self.inner.stop();
            return Ok(());
        }
        let result = match self
            .request(&SockclntDelete {
                index: self.client_index(),
            })
            .await
        {
            // VPP answers 1 on success (not 0), then closes the socket.
            Ok(reply) if reply.response == 1 => Ok(()),
            Ok(reply) => Err(ClientError::CloseFailed {
                response: reply.response,
            }),
            // VPP closed first, or this VPP has no sockclnt_delete: closing is all that is left.
            Err(ClientError::Closed | ClientError::UnknownMessage { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        tracing::debug!(name: "vpp-api-close", client_index = self.client_index(), ok = result.is_ok());
        self.inner.stop();
        result
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }
}
