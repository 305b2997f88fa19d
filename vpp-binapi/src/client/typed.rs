//! The typed API on top of the raw connection: generated messages in, generated messages out.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::conn::Shared;
use super::memclnt::Route;
use super::{Client, ClientError, CompatReport, CompatStatus};
use crate::codec::{self, Dump, HeaderKind, Message, MessageInfo, Request};

/// Where a received message of this header kind carries its context.
pub(crate) fn route_of(kind: HeaderKind) -> Route {
    match kind {
        HeaderKind::Request => Route::Ctx6,
        HeaderKind::Reply => Route::Ctx2,
        HeaderKind::Event | HeaderKind::Other => Route::Event,
    }
}

/// Classifies every generated message VPP knows, so received frames are routed by their
/// definition rather than guessed.
pub(crate) fn classify_known(shared: &Shared) {
    for info in crate::api::MESSAGES {
        if let Some(id) = shared.table.id(info.name_crc) {
            shared.set_route(id, route_of(info.header));
        }
    }
}

fn decode<M: Message>(frame: &[u8]) -> Result<M, ClientError> {
    // Lenient like VPP itself: bytes beyond the definition are ignored.
    Ok(codec::decode_message_lenient::<M>(frame)?.1)
}

impl Client {
    /// The id VPP gave message `M`, or why it cannot be used.
    pub fn message_id<M: Message>(&self) -> Result<u16, ClientError> {
        let table = self.table();
        if let Some(id) = table.id(M::NAME_CRC) {
            return Ok(id);
        }
        Err(match table.check(M::NAME, M::CRC) {
            CompatStatus::CrcMismatch { vpp_crc, .. } => ClientError::CrcMismatch {
                name: M::NAME.to_owned(),
                our_crc: M::CRC,
                vpp_crc,
            },
            _ => ClientError::UnknownMessage {
                name: M::NAME_CRC.to_owned(),
            },
        })
    }

    /// The id of a message this client expects to receive, with its route recorded.
    fn incoming_id<M: Message>(&self) -> Result<u16, ClientError> {
        let id = self.message_id::<M>()?;
        self.shared().set_route(id, route_of(M::HEADER));
        Ok(id)
    }

    /// Whether VPP knows message `M` with the same definition.
    pub fn check<M: Message>(&self) -> CompatStatus {
        self.table().check(M::NAME, M::CRC)
    }

    /// Checks a set of generated messages, e.g. one module's `MESSAGES` list or `api::MESSAGES`
    /// filtered to what a caller uses.
    pub fn compat_messages<'a>(
        &self,
        messages: impl IntoIterator<Item = &'a MessageInfo>,
    ) -> CompatReport {
        let pairs: Vec<(&str, u32)> = messages.into_iter().map(|m| (m.name, m.crc)).collect();
        self.compat(&pairs)
    }

    /// Sends a request and waits for its reply.
    ///
    /// The reply's `retval` is not interpreted; check it yourself.
    pub async fn request<M: Request>(&self, msg: &M) -> Result<M::Reply, ClientError> {
        let req = self.message_id::<M>()?;
        let reply = self.incoming_id::<M::Reply>()?;
        let ci = self.client_index();
        let frame = self
            .shared()
            .call(M::NAME, req, reply, |out, ctx| {
                codec::encode_message(msg, req, ci, ctx, out)
            })
            .await?;
        decode::<M::Reply>(&frame)
    }

    /// Sends a dump request followed by `control_ping` and collects the details until the ping
    /// reply. The timeout bounds the wait for each next message.
    pub async fn dump<M: Dump>(&self, msg: &M) -> Result<Vec<M::Details>, ClientError> {
        let req = self.message_id::<M>()?;
        let details = self.incoming_id::<M::Details>()?;
        let ci = self.client_index();
        let mut items = Vec::new();
        self.shared()
            .dump(
                M::NAME,
                req,
                details,
                |out, ctx| codec::encode_message(msg, req, ci, ctx, out),
                |frame| {
                    items.push(decode::<M::Details>(&frame)?);
                    Ok(())
                },
            )
            .await?;
        Ok(items)
    }

    /// Sends `msgs` back to back (pipelined, within the in-flight window) and returns their
    /// replies in the same order. Fails with the first error; calls still in flight are then
    /// abandoned (their late replies are dropped).
    pub async fn batch<M: Request>(&self, msgs: &[M]) -> Result<Vec<M::Reply>, ClientError> {
        let req = self.message_id::<M>()?;
        let reply = self.incoming_id::<M::Reply>()?;
        let ci = self.client_index();
        let mut replies = Vec::with_capacity(msgs.len());
        self.shared()
            .batch(
                M::NAME,
                req,
                reply,
                msgs.len(),
                |i, out, ctx| codec::encode_message(&msgs[i], req, ci, ctx, out),
                |frame| {
                    replies.push(decode::<M::Reply>(&frame)?);
                    Ok(())
                },
            )
            .await?;
        Ok(replies)
    }

    /// Subscribes to messages of type `E` that VPP sends without a context (events such as
    /// `sw_interface_event`). Turning the events on in VPP (the `want_*` request) is the
    /// caller's business; subscribe first so that none is missed.
    pub fn subscribe<E: Message>(&self) -> Result<Subscription<E>, ClientError> {
        if E::HEADER.context_offset().is_some() {
            return Err(ClientError::WrongKind {
                msg: E::NAME,
                what: "an event (it carries a context)",
            });
        }
        let id = self.message_id::<E>()?;
        let (rx, lost) = self.shared().subscribe(id)?;
        Ok(Subscription {
            rx,
            lost,
            _marker: PhantomData,
        })
    }
}

/// A stream of decoded events of type `E`; see [`Client::subscribe`].
///
/// Each subscription buffers up to [`ClientOptions::event_buffer`](super::ClientOptions::event_buffer)
/// events; when it is full, new events are dropped and the next [`Subscription::recv`] reports
/// how many with [`ClientError::EventsLost`]. Dropping the subscription unsubscribes. It does not
/// keep the connection open: once the last [`Client`] clone is dropped or closed, `recv` returns
/// the events still buffered, then `None`.
#[derive(Debug)]
pub struct Subscription<E> {
    rx: mpsc::Receiver<Bytes>,
    lost: Arc<AtomicU64>,
    _marker: PhantomData<fn() -> E>,
}

impl<E: Message> Subscription<E> {
    /// The next event; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<E, ClientError>> {
        let lost = self.lost.swap(0, Ordering::Relaxed);
        if lost > 0 {
            return Some(Err(ClientError::EventsLost { count: lost }));
        }
        let frame = self.rx.recv().await?;
        Some(decode::<E>(&frame))
    }
}
