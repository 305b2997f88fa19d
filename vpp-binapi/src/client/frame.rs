//! The 16-byte socket framing of the VPP API socket, as a pure (sans-IO) decoder.
//!
//! Every message in either direction is a 16-byte header followed by the payload. Only bytes
//! 8..12 of the header mean anything: the payload length as a big-endian `u32`. Bytes 0..8 and
//! 12..16 mirror VPP's in-memory `msgbuf_t` and may hold garbage; they are ignored on receive and
//! sent as zeros.

use bytes::{Buf, Bytes, BytesMut};

/// Length of the frame header that precedes every message on the socket.
pub const FRAME_HEADER_LEN: usize = 16;

/// Default upper bound for the payload length of one received frame (64 MiB).
///
/// VPP itself sets no limit; its biggest single messages are a few MB (`get_api_json_reply`).
pub const DEFAULT_MAX_FRAME_LEN: u32 = 64 << 20;

/// A framing error: the byte stream cannot be split into frames any more.
///
/// After such an error the stream is out of sync, so the decoder stays failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame header announced a payload longer than the configured limit.
    #[error("frame header announces {len} payload bytes, above the limit of {limit}")]
    TooLarge {
        /// Payload length found in the header.
        len: u32,
        /// The configured limit.
        limit: u32,
    },
}

/// Returns the 16-byte frame header for a payload of `len` bytes.
pub fn frame_header(len: u32) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[8..12].copy_from_slice(&len.to_be_bytes());
    h
}

/// Splits a byte stream into frame payloads.
///
/// Feed it bytes in chunks of any size with [`FrameDecoder::feed`] and pop complete payloads with
/// [`FrameDecoder::next_frame`]. It never allocates on behalf of a length field: a header whose
/// length exceeds the limit is an error as soon as the header is complete, and the buffer only
/// ever holds bytes that were fed. As long as the caller pops every available frame after each
/// feed, at most `16 + limit - 1` bytes stay buffered (plus the size of the last chunk).
///
/// ```
/// use vpp_binapi::client::{FrameDecoder, frame_header};
/// let mut dec = FrameDecoder::new(1024);
/// let mut wire = frame_header(3).to_vec();
/// wire.extend_from_slice(b"abc");
/// dec.feed(&wire[..10]);
/// assert_eq!(dec.next_frame(), Ok(None));
/// dec.feed(&wire[10..]);
/// assert_eq!(dec.next_frame().unwrap().unwrap().as_ref(), b"abc");
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_len: u32,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// Creates a decoder that rejects payloads longer than `max_len` bytes.
    pub fn new(max_len: u32) -> Self {
        Self {
            buf: BytesMut::new(),
            max_len,
            failed: None,
        }
    }

    /// Appends received bytes. Bytes fed after a framing error are discarded.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Pops the next complete frame payload, if one is buffered.
    ///
    /// Returns `Ok(None)` when more bytes are needed, and the same error forever once a header
    /// announced an oversized payload.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let Some(len) = self.peek_len() else {
            return Ok(None);
        };
        if len > self.max_len {
            let err = FrameError::TooLarge {
                len,
                limit: self.max_len,
            };
            self.failed = Some(err.clone());
            self.buf = BytesMut::new();
            return Err(err);
        }
        let total = FRAME_HEADER_LEN + len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.advance(FRAME_HEADER_LEN);
        Ok(Some(self.buf.split_to(len as usize).freeze()))
    }

    /// Number of bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes complete the frame (or header) being assembled; 0 if one is ready.
    pub(crate) fn wanted(&self) -> usize {
        match self.peek_len() {
            None => FRAME_HEADER_LEN - self.buf.len(),
            Some(len) => {
                // A length above the limit is reported by `next_frame`; never size a read from it.
                let len = len.min(self.max_len) as usize;
                (FRAME_HEADER_LEN + len).saturating_sub(self.buf.len())
            }
        }
    }

    /// The receive buffer, for readers that read from a socket straight into it.
    pub(crate) fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn peek_len(&self) -> Option<u32> {
        let h = self.buf.get(..FRAME_HEADER_LEN)?;
        Some(u32::from_be_bytes([h[8], h[9], h[10], h[11]]))
    }
}
