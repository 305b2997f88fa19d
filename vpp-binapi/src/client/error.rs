//! The error type of the socket client.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a [`Client`](super::Client) call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting to the API socket failed.
    #[error("cannot connect to vpp api socket {path}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Reading from or writing to the socket failed; the connection is closed.
    #[error("vpp api socket i/o error")]
    Io(#[source] Arc<io::Error>),
    /// The `sockclnt_create` handshake failed.
    #[error("vpp api handshake failed: {reason}")]
    HandshakeFailed {
        /// What went wrong.
        reason: String,
    },
    /// The options passed to [`Client::connect`](super::Client::connect) are unusable.
    #[error("invalid client options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// No reply arrived in time. VPP drops bad requests silently, so this is also how an
    /// unknown id, a wrong client index or a truncated request shows up.
    #[error("no reply to {msg} (context {context}) within the timeout")]
    Timeout {
        /// Name of the request message.
        msg: &'static str,
        /// Context of the request; 0 if it never got a window slot and was not sent.
        context: u32,
    },
    /// The connection is closed (by [`Client::close`](super::Client::close), by VPP, or after a
    /// fatal error); pending and later calls fail with this.
    #[error("vpp api connection is closed")]
    Closed,
    /// A received frame header announced a payload above the configured limit; the stream is
    /// out of sync and the connection was closed.
    #[error("received frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Announced payload length.
        len: u32,
        /// Configured limit.
        limit: u32,
    },
    /// The message is not in VPP's message table under this name and CRC.
    #[error("message {name} is not known to this vpp")]
    UnknownMessage {
        /// The `name_crc` looked up.
        name: String,
    },
    /// VPP knows the message, but with a different definition (CRC).
    #[error("message {name} has crc {vpp_crc:08x} in this vpp, but {our_crc:08x} in this client")]
    CrcMismatch {
        /// Message name without CRC.
        name: String,
        /// CRC this client was generated with.
        our_crc: u32,
        /// CRC VPP reports.
        vpp_crc: u32,
    },
    /// A reply carried a message id that is not in VPP's message table.
    #[error("reply to context {context} has message id {id}, not in the message table")]
    UnknownReplyId {
        /// The message id received.
        id: u16,
        /// The context it carried.
        context: u32,
    },
    /// A reply with the right context but the wrong message arrived.
    #[error("expected {expected} for context {context}, received {received}")]
    UnexpectedReply {
        /// Name of the message that was expected.
        expected: String,
        /// Name (or `#id`) of the message received.
        received: String,
        /// The context.
        context: u32,
    },
    /// A received message could not be decoded (the error names message, field and offset).
    #[error(transparent)]
    Decode(#[from] crate::codec::DecodeError),
    /// The message type cannot be used this way (e.g. subscribing to a message with a context).
    #[error("{msg} cannot be used as {what}")]
    WrongKind {
        /// Message name.
        msg: &'static str,
        /// The role it was used in.
        what: &'static str,
    },
    /// An event subscriber did not keep up and events were dropped.
    #[error("{count} events were dropped because the subscriber was too slow")]
    EventsLost {
        /// How many were dropped since the last report.
        count: u64,
    },
    /// `sockclnt_delete` was answered with a failure code.
    #[error("sockclnt_delete failed with response {response}")]
    CloseFailed {
        /// The `response` field (VPP answers 1 on success).
        response: i32,
    },
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}
