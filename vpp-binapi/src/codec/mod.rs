//! The wire codec runtime shared by every generated message.
//!
//! VPP's binary API encodes packed structs: integers are big-endian, `f64` is little-endian
//! (VPP's host order), `bool` is one byte, fixed strings are NUL-padded, variable strings and
//! variable-length arrays (VLAs) carry an explicit count.
//!
//! Generated types implement [`Wire`]; generated messages implement [`Message`], which only
//! covers the message *body*. The header (`_vl_msg_id`, and depending on [`HeaderKind`] a
//! `client_index` and/or a `context`) is written and read by [`encode_message`],
//! [`decode_message`] and [`decode_message_lenient`].
//!
//! # Conventions chosen by this codec
//!
//! - **VLA count fields are not struct fields.** The encoder writes the count from the length of
//!   the `Vec`; if the `Vec` is longer than the count type can express (e.g. more than 255
//!   elements for a `u8` count), only the first `max` elements are encoded.
//! - **Fixed strings** (`string x[N]`) are truncated on encode to at most `N - 1` bytes (at a
//!   UTF-8 character boundary) so that VPP always sees a NUL terminator; decoding stops at the
//!   first NUL.
//! - **Strings are validated** as UTF-8 on decode ([`DecodeErrorKind::InvalidUtf8`]).
//! - **`bool`** decodes any non-zero byte as `true`.
//! - Counts are checked against the bytes remaining **before** anything is allocated.
//!
//! Encoding never fails and never panics.
//!
//! Because of these conventions `encode(decode(bytes))` is the *canonical* form of `bytes`
//! (booleans become 0/1, fixed strings are re-padded after their first NUL and cut to `N - 1`
//! bytes); encoding that canonical form again is stable.
//!
//! # Example
//!
//! ```
//! use std::net::Ipv4Addr;
//! use vpp_binapi::codec::{self, HeaderKind, Message};
//! use vpp_binapi::api::lb::LbAddDelAsV2;
//!
//! let msg = LbAddDelAsV2 {
//!     pfx: "10.0.0.1/32".parse::<ipnet::IpNet>().unwrap().into(),
//!     protocol: 6,
//!     port: 80,
//!     as_address: Ipv4Addr::new(10, 1, 1, 1).into(),
//!     ..Default::default() // weight 100, from the .api.json default
//! };
//! // The id comes from VPP's message table, looked up by `LbAddDelAsV2::NAME_CRC`.
//! let raw = codec::encode_message_to_vec(&msg, 600, 0x8000_0001, 7);
//! assert_eq!(LbAddDelAsV2::HEADER, HeaderKind::Request);
//! assert_eq!(codec::read_context(&raw, LbAddDelAsV2::HEADER), Some(7));
//! let (header, back) = codec::decode_message::<LbAddDelAsV2>(&raw).unwrap();
//! assert_eq!((header.msg_id, header.client_index, header.context), (600, Some(0x8000_0001), Some(7)));
//! assert_eq!(back, msg);
//! assert_eq!(back.weight, 100);
//! ```

#[cfg(feature = "arbitrary")]
pub mod arbitrary_support;
pub mod ip;
mod reply;
pub use reply::{ApiError, Reply};
#[cfg(feature = "serde")]
pub mod serde_array;
mod visit;
pub use visit::{MaybeArbitrary, MaybeSerde, MessageVisitor, VisitedMessage};

/// Modules generated from the generator's test fixtures (`vpp-binapi-gen/tests/fixtures`), so
/// that every `.api.json` shape is compiled and round-tripped here.
#[cfg(test)]
#[rustfmt::skip]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod fixture;

use std::any::Any;
use std::fmt;

/// How the header of a message is laid out (VPP protocol §2.2).
///
/// The class is derived by the generator from the message's first fields:
/// `client_index, context` is [`Request`](Self::Request), `context` is
/// [`Reply`](Self::Reply), `client_index` alone is [`Event`](Self::Event), anything else is
/// [`Other`](Self::Other). Some replies (e.g. `sockclnt_create_reply`) are request-shaped and
/// therefore have kind `Request`, and `sockclnt_create` itself is reply-shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    /// `u16 _vl_msg_id, u32 client_index, u32 context`: the body starts at offset 10.
    Request,
    /// `u16 _vl_msg_id, u32 context`: the body starts at offset 6.
    Reply,
    /// `u16 _vl_msg_id, u32 client_index`: the body starts at offset 6, there is no context.
    Event,
    /// `u16 _vl_msg_id` only: the body starts at offset 2.
    Other,
}

impl HeaderKind {
    /// Length of the header in bytes (the offset at which the body starts).
    #[inline]
    pub const fn header_len(self) -> usize {
        match self {
            Self::Request => 10,
            Self::Reply | Self::Event => 6,
            Self::Other => 2,
        }
    }

    /// Offset of the `context` field in a whole message, if this kind has one.
    #[inline]
    pub const fn context_offset(self) -> Option<usize> {
        match self {
            Self::Request => Some(6),
            Self::Reply => Some(2),
            Self::Event | Self::Other => None,
        }
    }

    /// Offset of the `client_index` field in a whole message, if this kind has one.
    #[inline]
    pub const fn client_index_offset(self) -> Option<usize> {
        match self {
            Self::Request | Self::Event => Some(2),
            Self::Reply | Self::Other => None,
        }
    }

    /// A stable lower-case name (`"request"`, `"reply"`, `"event"`, `"other"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Reply => "reply",
            Self::Event => "event",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for HeaderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong while decoding; see [`DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before the field was complete.
    TooShort {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The message was complete but more bytes followed (only in exact decoding).
    TrailingBytes {
        /// Number of unread bytes.
        extra: usize,
    },
    /// A VLA count or string length announces more data than the input holds.
    CountTooLarge {
        /// The count read from the wire.
        count: u64,
        /// Minimum bytes per element.
        elem_size: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A string is not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { needed, remaining } => {
                write!(
                    f,
                    "input too short: needed {needed} bytes, {remaining} left"
                )
            }
            Self::TrailingBytes { extra } => write!(f, "{extra} trailing bytes after the message"),
            Self::CountTooLarge {
                count,
                elem_size,
                remaining,
            } => write!(
                f,
                "count {count} (at least {elem_size} bytes each) exceeds the {remaining} bytes left"
            ),
            Self::InvalidUtf8 => f.write_str("string is not valid utf-8"),
        }
    }
}

/// A message could not be decoded: which message, which field, at which offset, and why.
///
/// `offset` counts from the start of the buffer given to the decoder (the whole message for
/// [`decode_message`], the body for [`decode_body`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {message} field {field} at offset {offset}: {kind}")]
#[non_exhaustive]
pub struct DecodeError {
    /// The VPP message (or type) name being decoded, e.g. `lb_add_del_as`.
    pub message: &'static str,
    /// The field being decoded; fields of nested types are written `type.field`.
    pub field: &'static str,
    /// Byte offset where the failing field starts.
    pub offset: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

/// [`decode_any`](crate::api::decode_any) failed: the message is unknown or its body is bad.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeAnyError {
    /// No generated message has this `name_crc`.
    #[error("unknown message {0}")]
    UnknownMessage(String),
    /// The body does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A cursor over an input buffer used by generated decoders.
///
/// All reads are bounds-checked and return a [`DecodeError`] naming the field.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, reporting errors against the message name `message`.
    #[inline]
    pub const fn new(buf: &'a [u8], message: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
            message,
        }
    }

    /// Like [`Reader::new`], but error offsets are reported as `base + position`; used when
    /// `buf` is the body of a message whose header was `base` bytes long.
    #[inline]
    pub const fn with_base(buf: &'a [u8], message: &'static str, base: usize) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            message,
        }
    }

    /// Bytes consumed so far.
    #[inline]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    #[inline]
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread rest of the input.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The message name used in errors.
    #[inline]
    pub const fn message(&self) -> &'static str {
        self.message
    }

    /// An error of `kind` for `field` at the current position.
    #[cold]
    pub fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            message: self.message,
            field,
            offset: self.base + self.pos,
            kind,
        }
    }

    /// Fails with [`DecodeErrorKind::TrailingBytes`] if any input is left.
    #[inline]
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(
                "",
                DecodeErrorKind::TrailingBytes {
                    extra: self.remaining(),
                },
            ))
        }
    }

    /// Takes the next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.pos..self.pos.wrapping_add(n)) {
            Some(s) if n <= self.remaining() => {
                self.pos += n;
                Ok(s)
            }
            _ => Err(self.error(
                field,
                DecodeErrorKind::TooShort {
                    needed: n,
                    remaining: self.remaining(),
                },
            )),
        }
    }

    /// Takes the next `N` bytes as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        match self.buf.get(self.pos..).and_then(|s| s.first_chunk::<N>()) {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.error(
                field,
                DecodeErrorKind::TooShort {
                    needed: N,
                    remaining: self.remaining(),
                },
            )),
        }
    }

    /// Reads a fixed string of `n` bytes on the wire, cut at the first NUL.
    pub fn fixed_string(&mut self, n: usize, field: &'static str) -> Result<String, DecodeError> {
        let start = self.pos;
        let raw = self.take(n, field)?;
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        match std::str::from_utf8(&raw[..len]) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => {
                self.pos = start;
                Err(self.error(field, DecodeErrorKind::InvalidUtf8))
            }
        }
    }

    /// Reads a variable string: a big-endian `u32` byte count, then the bytes.
    pub fn var_string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let start = self.pos;
        let n = self.u32(field)?;
        self.check_count(u64::from(n), 1, field)?;
        let raw = self.take(n as usize, field)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => {
                self.pos = start;
                Err(self.error(field, DecodeErrorKind::InvalidUtf8))
            }
        }
    }

    /// Checks that `count` elements of at least `elem_size` bytes fit in the rest of the
    /// input; call before allocating for a VLA.
    #[inline]
    pub fn check_count(
        &self,
        count: u64,
        elem_size: usize,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        let elem = elem_size.max(1) as u64;
        if count.saturating_mul(elem) <= self.remaining() as u64 {
            Ok(())
        } else {
            Err(self.error(
                field,
                DecodeErrorKind::CountTooLarge {
                    count,
                    elem_size,
                    remaining: self.remaining(),
                },
            ))
        }
    }

    /// Reads a byte VLA of `count` bytes.
    pub fn vla_u8(&mut self, count: u64, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        self.check_count(count, 1, field)?;
        Ok(self.take(count as usize, field)?.to_vec())
    }

    /// Reads a VLA of `count` elements of type `T`.
    pub fn vla<T: Wire>(&mut self, count: u64, field: &'static str) -> Result<Vec<T>, DecodeError> {
        self.check_count(count, T::MIN_WIRE_SIZE, field)?;
        let mut v = Vec::with_capacity(count as usize);
        for _ in 0..count {
            v.push(T::decode(self, field)?);
        }
        Ok(v)
    }

    /// Reads elements of type `T` until the input ends (legacy VLAs without a count field).
    pub fn rest_vla<T: Wire>(&mut self, field: &'static str) -> Result<Vec<T>, DecodeError> {
        let mut v = Vec::new();
        while self.remaining() > 0 {
            let before = self.pos;
            v.push(T::decode(self, field)?);
            if self.pos == before {
                // a zero-sized element would loop forever
                return Err(self.error(
                    field,
                    DecodeErrorKind::TrailingBytes {
                        extra: self.remaining(),
                    },
                ));
            }
        }
        Ok(v)
    }

    /// Reads a fixed array of `N` elements of type `T`.
    pub fn fixed_array<T: Wire + Default, const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[T; N], DecodeError> {
        let mut err = None;
        let arr = std::array::from_fn(|_| {
            if err.is_some() {
                return T::default();
            }
            T::decode(self, field).unwrap_or_else(|e| {
                err = Some(e);
                T::default()
            })
        });
        match err {
            None => Ok(arr),
            Some(e) => Err(e),
        }
    }

    /// Reads a `u8`.
    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    #[inline]
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
}

/// Writes a fixed string of `n` wire bytes: at most `n - 1` bytes of `s` (cut at a character
/// boundary), then NUL padding.
#[inline]
pub fn put_fixed_string(out: &mut Vec<u8>, s: &str, n: usize) {
    let mut len = s.len().min(n.saturating_sub(1));
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    out.extend_from_slice(&s.as_bytes()[..len]);
    out.resize(out.len() + (n - len), 0);
}

/// Writes a variable string: a big-endian `u32` byte count, then the bytes (at most
/// `u32::MAX` bytes are written).
#[inline]
pub fn put_var_string(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// Wire size of a variable string holding `s`.
#[inline]
pub const fn var_string_len(s: &str) -> usize {
    4 + s.len()
}

/// The number of VLA elements the encoder writes for a `Vec` of length `len` whose count field
/// can hold at most `max`.
#[inline]
pub const fn vla_count(len: usize, max: u64) -> u64 {
    if len as u64 > max { max } else { len as u64 }
}

/// A type with a VPP wire encoding: every generated type, enum, union and alias, and the
/// primitive types.
pub trait Wire: Sized {
    /// Minimum encoded size: the size with every VLA and variable string empty.
    const MIN_WIRE_SIZE: usize;

    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The number of bytes [`Wire::encode`] appends.
    fn wire_len(&self) -> usize;

    /// Decodes a value; `field` names the field in errors.
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const MIN_WIRE_SIZE: usize = size_of::<$t>();
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            #[inline]
            fn wire_len(&self) -> usize {
                size_of::<$t>()
            }
            #[inline]
            fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
                Ok(<$t>::from_be_bytes(r.array(field)?))
            }
        }
    )*};
}
wire_int!(u8, i8, u16, i16, u32, i32, u64, i64);

/// `f64` travels little-endian (VPP host order on x86-64 and arm64).
impl Wire for f64 {
    const MIN_WIRE_SIZE: usize = 8;
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    #[inline]
    fn wire_len(&self) -> usize {
        8
    }
    #[inline]
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Self::from_le_bytes(r.array(field)?))
    }
}

/// `bool` is one byte; any non-zero value decodes as `true`.
impl Wire for bool {
    const MIN_WIRE_SIZE: usize = 1;
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    #[inline]
    fn wire_len(&self) -> usize {
        1
    }
    #[inline]
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(r.u8(field)? != 0)
    }
}

/// Decodes a union arm of a fixed-size type from the union's bytes.
///
/// Generated union accessors use this for arm types that cannot fail to decode from enough
/// bytes (no strings, no VLAs); the union is at least as wide as each arm, so the fallback to
/// `T::default()` is never taken.
#[inline]
pub fn decode_arm<T: Wire + Default>(bytes: &[u8], union: &'static str) -> T {
    T::decode(&mut Reader::new(bytes, union), union).unwrap_or_default()
}

/// Encodes a union arm into a zero-filled union of `N` bytes (extra arm bytes, which cannot
/// occur for generated unions, are dropped).
#[inline]
pub fn encode_arm<T: Wire, const N: usize>(value: &T) -> [u8; N] {
    let mut tmp = Vec::with_capacity(N);
    value.encode(&mut tmp);
    let mut out = [0u8; N];
    let n = tmp.len().min(N);
    out[..n].copy_from_slice(&tmp[..n]);
    out
}

/// A VPP API message body with its identity; implemented by every generated message struct.
///
/// The struct holds only the body: `_vl_msg_id` and the header fields selected by
/// [`Message::HEADER`] (`client_index`, `context`) are not fields; replies keep `retval` as an
/// ordinary field.
pub trait Message: Sized + Clone + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The VPP message name, e.g. `lb_add_del_as`.
    const NAME: &'static str;
    /// The message CRC (recomputed and verified by the generator).
    const CRC: u32;
    /// The message table key: name, `_`, eight lower-case hex digits of the CRC.
    const NAME_CRC: &'static str;
    /// The header layout.
    const HEADER: HeaderKind;

    /// The number of bytes [`Message::encode_body`] appends.
    fn body_len(&self) -> usize;

    /// Appends the body (everything after the header) to `out`.
    fn encode_body(&self, out: &mut Vec<u8>);

    /// Decodes the body from `r`; trailing bytes are left unread.
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A request answered by exactly one reply.
pub trait Request: Message {
    /// The reply message.
    type Reply: Message;
}

/// A `_dump` request answered by a stream of details, terminated by the caller with a
/// `control_ping` (VPP sends no end marker).
pub trait Dump: Message {
    /// The details message streamed back.
    type Details: Message;
}

/// A cursor-style `_get` request: details are streamed, then the reply ends the batch; a reply
/// `retval` of -165 (`VNET_API_ERROR_EAGAIN`) means "call again with the returned cursor".
pub trait CursorGet: Message {
    /// The final reply carrying the cursor.
    type Reply: Message;
    /// The details message streamed before the reply.
    type Details: Message;
}

/// A `want_*` style subscription: the request has a normal reply and afterwards VPP sends
/// `Event` messages (no context) until unsubscribed.
pub trait EventSubscribe: Request {
    /// The event message sent after subscribing.
    type Event: Message;
}

/// A message with no reply at all (`"reply": "null"` in the service table).
pub trait OneWay: Message {}

/// Decodes an exact message body into a boxed message (see [`MessageInfo::decode_body`]).
pub type DecodeBodyFn = fn(&[u8]) -> Result<Box<dyn DynMessage>, DecodeError>;

/// Identity of a message and how to decode its body without knowing its type statically.
#[derive(Clone, Copy)]
pub struct MessageInfo {
    /// The VPP message name.
    pub name: &'static str,
    /// The message CRC.
    pub crc: u32,
    /// `name_crc` as used in VPP's message table.
    pub name_crc: &'static str,
    /// The header layout.
    pub header: HeaderKind,
    /// The generated module (`.api.json` file stem) defining the message.
    pub module: &'static str,
    /// Decodes an exact body (no trailing bytes) into a boxed message.
    pub decode_body: DecodeBodyFn,
    /// Decodes a body, ignoring trailing bytes (as VPP does), into a boxed message.
    pub decode_body_lenient: DecodeBodyFn,
}

impl MessageInfo {
    /// The table entry of message `M` in module `module`.
    pub const fn of<M: Message>(module: &'static str) -> Self {
        Self {
            name: M::NAME,
            crc: M::CRC,
            name_crc: M::NAME_CRC,
            header: M::HEADER,
            module,
            decode_body: decode_boxed::<M>,
            decode_body_lenient: decode_boxed_lenient::<M>,
        }
    }
}

impl fmt::Debug for MessageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageInfo")
            .field("name_crc", &self.name_crc)
            .field("header", &self.header)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

fn decode_boxed<M: Message>(body: &[u8]) -> Result<Box<dyn DynMessage>, DecodeError> {
    Ok(Box::new(decode_body::<M>(body)?))
}

fn decode_boxed_lenient<M: Message>(body: &[u8]) -> Result<Box<dyn DynMessage>, DecodeError> {
    Ok(Box::new(M::decode_body(&mut Reader::new(body, M::NAME))?))
}

/// Object-safe view of any [`Message`], for code that handles messages chosen at run time.
pub trait DynMessage: fmt::Debug + Send + Sync + Any {
    /// The VPP message name.
    fn name(&self) -> &'static str;
    /// `name_crc` as used in VPP's message table.
    fn name_crc(&self) -> &'static str;
    /// The header layout.
    fn header_kind(&self) -> HeaderKind;
    /// Appends the body to `out`.
    fn encode_body_dyn(&self, out: &mut Vec<u8>);
    /// `self` as [`Any`], for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is the same message type with an equal value.
    fn eq_dyn(&self, other: &dyn DynMessage) -> bool;
}

impl<M: Message> DynMessage for M {
    fn name(&self) -> &'static str {
        M::NAME
    }
    fn name_crc(&self) -> &'static str {
        M::NAME_CRC
    }
    fn header_kind(&self) -> HeaderKind {
        M::HEADER
    }
    fn encode_body_dyn(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn eq_dyn(&self, other: &dyn DynMessage) -> bool {
        other.as_any().downcast_ref::<M>() == Some(self)
    }
}

/// Header values of a whole message. Fields the message's [`HeaderKind`] lacks are `None` on
/// decode and ignored on encode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// The message id, as assigned by VPP at start-up (see `sockclnt_create_reply`).
    pub msg_id: u16,
    /// The client index (requests and events).
    pub client_index: Option<u32>,
    /// The context (requests and replies).
    pub context: Option<u32>,
}

impl Header {
    /// A header with every field set.
    pub const fn new(msg_id: u16, client_index: u32, context: u32) -> Self {
        Self {
            msg_id,
            client_index: Some(client_index),
            context: Some(context),
        }
    }
}

/// Appends a whole message (header for `M::HEADER`, then body) to `out`.
///
/// `client_index` and `context` are written only if the message's header has them.
pub fn encode_message<M: Message>(
    msg: &M,
    msg_id: u16,
    client_index: u32,
    context: u32,
    out: &mut Vec<u8>,
) {
    out.reserve(M::HEADER.header_len() + msg.body_len());
    out.extend_from_slice(&msg_id.to_be_bytes());
    match M::HEADER {
        HeaderKind::Request => {
            out.extend_from_slice(&client_index.to_be_bytes());
            out.extend_from_slice(&context.to_be_bytes());
        }
        HeaderKind::Reply => out.extend_from_slice(&context.to_be_bytes()),
        HeaderKind::Event => out.extend_from_slice(&client_index.to_be_bytes()),
        HeaderKind::Other => {}
    }
    msg.encode_body(out);
}

/// A whole message (header and body) as a new `Vec`.
pub fn encode_message_to_vec<M: Message>(
    msg: &M,
    msg_id: u16,
    client_index: u32,
    context: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_message(msg, msg_id, client_index, context, &mut out);
    out
}

/// The body of `msg` as a new `Vec`.
pub fn encode_body_to_vec<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.body_len());
    msg.encode_body(&mut out);
    out
}

fn decode_header(raw: &[u8], kind: HeaderKind, name: &'static str) -> Result<Header, DecodeError> {
    let mut r = Reader::new(raw, name);
    let msg_id = r.u16("_vl_msg_id")?;
    let (client_index, context) = match kind {
        HeaderKind::Request => (Some(r.u32("client_index")?), Some(r.u32("context")?)),
        HeaderKind::Reply => (None, Some(r.u32("context")?)),
        HeaderKind::Event => (Some(r.u32("client_index")?), None),
        HeaderKind::Other => (None, None),
    };
    Ok(Header {
        msg_id,
        client_index,
        context,
    })
}

/// Decodes a whole message (header and body); trailing bytes are an error
/// ([`DecodeErrorKind::TrailingBytes`]). Error offsets count from the start of `raw`.
pub fn decode_message<M: Message>(raw: &[u8]) -> Result<(Header, M), DecodeError> {
    let header = decode_header(raw, M::HEADER, M::NAME)?;
    let hl = M::HEADER.header_len();
    let mut r = Reader::with_base(&raw[hl..], M::NAME, hl);
    let msg = M::decode_body(&mut r)?;
    r.finish()?;
    Ok((header, msg))
}

/// Decodes a whole message, ignoring trailing bytes (VPP itself accepts messages longer than
/// their definition, e.g. from a newer peer).
pub fn decode_message_lenient<M: Message>(raw: &[u8]) -> Result<(Header, M), DecodeError> {
    let header = decode_header(raw, M::HEADER, M::NAME)?;
    let hl = M::HEADER.header_len();
    let mut r = Reader::with_base(&raw[hl..], M::NAME, hl);
    Ok((header, M::decode_body(&mut r)?))
}

/// Decodes a body (everything after the header); trailing bytes are an error.
pub fn decode_body<M: Message>(body: &[u8]) -> Result<M, DecodeError> {
    let mut r = Reader::new(body, M::NAME);
    let msg = M::decode_body(&mut r)?;
    r.finish()?;
    Ok(msg)
}

/// The message id (first two bytes, big-endian) of a raw message.
#[inline]
pub fn read_msg_id(raw: &[u8]) -> Option<u16> {
    raw.first_chunk::<2>().map(|b| u16::from_be_bytes(*b))
}

/// The `context` of a raw message of the given header kind, if it has one and is long enough.
#[inline]
pub fn read_context(raw: &[u8], kind: HeaderKind) -> Option<u32> {
    read_u32_at(raw, kind.context_offset()?)
}

/// The `client_index` of a raw message of the given header kind, if it has one.
#[inline]
pub fn read_client_index(raw: &[u8], kind: HeaderKind) -> Option<u32> {
    read_u32_at(raw, kind.client_index_offset()?)
}

#[inline]
fn read_u32_at(raw: &[u8], off: usize) -> Option<u32> {
    raw.get(off..)?
        .first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
}

/// Formats a CRC as `name_crc` (`name` + `_` + eight lower-case hex digits).
pub fn name_crc(name: &str, crc: u32) -> String {
    format!("{name}_{crc:08x}")
}

#[cfg(test)]
mod tests;
