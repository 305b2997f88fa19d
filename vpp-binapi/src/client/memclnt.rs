//! The few memclnt messages the transport itself needs, encoded by hand so the connection works
//! without the generated code: the `sockclnt_create` handshake, `sockclnt_delete`, `control_ping`
//! (the end-of-dump marker) and `memclnt_keepalive`.

use super::error::ClientError;
use super::table::MessageTable;

/// Fixed id of `sockclnt_create` (memclnt occupies ids 1..=28 in every VPP).
pub(crate) const SOCKCLNT_CREATE_ID: u16 = 15;
/// Fixed id of `sockclnt_create_reply`.
pub(crate) const SOCKCLNT_CREATE_REPLY_ID: u16 = 16;
/// Context used for the handshake.
pub(crate) const HANDSHAKE_CONTEXT: u32 = 0x4d_4c_56_01;

pub(crate) const CONTROL_PING: &str = "control_ping_51077d14";
pub(crate) const CONTROL_PING_REPLY: &str = "control_ping_reply_f6b0b8ca";
pub(crate) const SOCKCLNT_DELETE_REPLY: &str = "sockclnt_delete_reply_8f38b1ee";
pub(crate) const MEMCLNT_KEEPALIVE: &str = "memclnt_keepalive_51077d14";
pub(crate) const MEMCLNT_KEEPALIVE_REPLY: &str = "memclnt_keepalive_reply_e8d4e804";

const NAME_LEN: usize = 64;
const REPLY_FIXED_LEN: usize = 20;
const ENTRY_LEN: usize = 2 + NAME_LEN;

/// Encodes the `sockclnt_create` payload: id, context, `string name[64]`.
pub(crate) fn encode_sockclnt_create(name: &str) -> Result<Vec<u8>, ClientError> {
    if name.len() >= NAME_LEN || name.as_bytes().contains(&0) {
        return Err(ClientError::InvalidOptions {
            reason: "client name must be at most 63 bytes without NUL",
        });
    }
    let mut p = Vec::with_capacity(2 + 4 + NAME_LEN);
    p.extend_from_slice(&SOCKCLNT_CREATE_ID.to_be_bytes());
    p.extend_from_slice(&HANDSHAKE_CONTEXT.to_be_bytes());
    p.extend_from_slice(name.as_bytes());
    p.resize(2 + 4 + NAME_LEN, 0);
    Ok(p)
}

/// What the handshake yields.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The handle to put in `client_index` of every later request (the reply's `index` field).
    pub(crate) client_index: u32,
    pub(crate) table: MessageTable,
}

fn handshake_err(reason: impl Into<String>) -> ClientError {
    ClientError::HandshakeFailed {
        reason: reason.into(),
    }
}

fn be_u16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

pub(crate) fn be_u32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

/// Parses `sockclnt_create_reply`, checking every length against the bytes present.
pub(crate) fn parse_sockclnt_create_reply(p: &[u8]) -> Result<Registration, ClientError> {
    if p.len() < REPLY_FIXED_LEN {
        return Err(handshake_err(format!(
            "sockclnt_create_reply is {} bytes, shorter than its fixed part of {REPLY_FIXED_LEN}",
            p.len()
        )));
    }
    let id = be_u16(p, 0);
    if id != SOCKCLNT_CREATE_REPLY_ID {
        return Err(handshake_err(format!(
            "expected sockclnt_create_reply (id {SOCKCLNT_CREATE_REPLY_ID}), got message id {id}"
        )));
    }
    let context = be_u32(p, 6);
    if context != HANDSHAKE_CONTEXT {
        return Err(handshake_err(format!(
            "sockclnt_create_reply has context {context:#x}, expected {HANDSHAKE_CONTEXT:#x}"
        )));
    }
    let response = be_u32(p, 10) as i32;
    if response != 0 {
        return Err(handshake_err(format!(
            "sockclnt_create_reply response {response}"
        )));
    }
    let client_index = be_u32(p, 14);
    let count = usize::from(be_u16(p, 18));
    let body = &p[REPLY_FIXED_LEN..];
    if body.len() / ENTRY_LEN < count {
        return Err(handshake_err(format!(
            "message table announces {count} entries but only {} bytes follow (offset {REPLY_FIXED_LEN})",
            body.len()
        )));
    }
    let entries = body.chunks_exact(ENTRY_LEN).take(count).map(|e| {
        let name = &e[2..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let mut name = &name[..end];
        // GoVPP strips a trailing 0x13 that some old VPP versions left in table names.
        if let [rest @ .., 0x13] = name {
            name = rest;
        }
        (be_u16(e, 0), String::from_utf8_lossy(name).into_owned())
    });
    Ok(Registration {
        client_index,
        table: MessageTable::from_entries(entries),
    })
}

/// Context offset of a message class, used to route received frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Not known: the id has not been classified.
    Unknown = 0,
    /// `context` at offset 2 (ordinary replies and details).
    Ctx2 = 1,
    /// `context` at offset 6 (request-shaped replies such as `sockclnt_create_reply`).
    Ctx6 = 2,
    /// No context: delivered to event subscribers.
    Event = 3,
}

impl Route {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Ctx2,
            2 => Self::Ctx6,
            3 => Self::Event,
            _ => Self::Unknown,
        }
    }

    pub(crate) fn context_offset(self) -> Option<usize> {
        match self {
            Self::Ctx2 => Some(2),
            Self::Ctx6 => Some(6),
            Self::Event | Self::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_layout() {
        let p = encode_sockclnt_create("abc").unwrap();
        assert_eq!(p.len(), 70);
        assert_eq!(&p[..2], &[0, 15]);
        assert_eq!(&p[6..9], b"abc");
        assert!(p[9..].iter().all(|&b| b == 0));
        assert!(encode_sockclnt_create(&"x".repeat(64)).is_err());
        assert!(encode_sockclnt_create(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn reply_with_short_table_is_an_error() {
        let mut p = vec![0u8; 20];
        p[1] = 16;
        p[6..10].copy_from_slice(&HANDSHAKE_CONTEXT.to_be_bytes());
        p[18..20].copy_from_slice(&3u16.to_be_bytes());
        p.extend_from_slice(&[0u8; 66 * 2]);
        let err = parse_sockclnt_create_reply(&p).unwrap_err();
        assert!(err.to_string().contains("announces 3 entries"), "{err}");
    }
}
