//! A minimal blocking-free raw client for tests: framing, handshake and typed calls through
//! the generated codec, independent of `vpp_binapi::client`.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vpp_binapi::api::memclnt;
use vpp_binapi::codec::{self, HeaderKind, Message};

pub struct Raw {
    pub stream: UnixStream,
    pub ids: HashMap<String, u16>,
    pub client_index: u32,
    ctx: u32,
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 8];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(&[0u8; 4]);
    v.extend_from_slice(payload);
    v
}

impl Raw {
    pub async fn connect(path: &Path) -> Self {
        let mut stream = UnixStream::connect(path).await.unwrap();
        let req = memclnt::SockclntCreate {
            name: "raw-test".into(),
        };
        let bytes = codec::encode_message_to_vec(&req, 15, 0, 124);
        stream.write_all(&frame(&bytes)).await.unwrap();
        let mut raw = Self {
            stream,
            ids: HashMap::new(),
            client_index: 0,
            ctx: 1000,
        };
        let reply = raw.read_frame().await.expect("handshake reply");
        assert_eq!(codec::read_msg_id(&reply), Some(16));
        let (hdr, r) = codec::decode_message::<memclnt::SockclntCreateReply>(&reply).unwrap();
        assert_eq!(hdr.context, Some(124));
        assert_eq!(r.response, 0);
        raw.client_index = r.index;
        raw.ids = r
            .message_table
            .into_iter()
            .map(|e| (e.name, e.index))
            .collect();
        raw
    }

    pub fn id<M: Message>(&self) -> u16 {
        self.ids[M::NAME_CRC]
    }

    /// Reads one frame payload; `None` on EOF or after 2 s without data.
    pub async fn read_frame(&mut self) -> Option<Vec<u8>> {
        let fut = async {
            let mut hdr = [0u8; 16];
            self.stream.read_exact(&mut hdr).await.ok()?;
            let len = u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
            let mut p = vec![0u8; len];
            self.stream.read_exact(&mut p).await.ok()?;
            Some(p)
        };
        tokio::time::timeout(Duration::from_secs(2), fut)
            .await
            .ok()
            .flatten()
    }

    pub fn next_ctx(&mut self) -> u32 {
        self.ctx += 1;
        self.ctx
    }

    pub async fn send<M: Message>(&mut self, m: &M, ctx: u32) {
        let id = self.id::<M>();
        let bytes = codec::encode_message_to_vec(m, id, self.client_index, ctx);
        self.stream.write_all(&frame(&bytes)).await.unwrap();
    }

    pub async fn send_payload(&mut self, payload: &[u8]) {
        self.stream.write_all(&frame(payload)).await.unwrap();
    }

    /// Sends a request and decodes the one reply.
    pub async fn call<Q: Message, R: Message>(&mut self, q: &Q) -> R {
        let ctx = self.next_ctx();
        self.send(q, ctx).await;
        let f = self.read_frame().await.expect("reply");
        assert_eq!(
            codec::read_msg_id(&f),
            Some(self.id::<R>()),
            "reply id for {}",
            Q::NAME
        );
        let (hdr, r) = codec::decode_message::<R>(&f).unwrap();
        assert_eq!(hdr.context, Some(ctx));
        r
    }

    /// Sends a dump and a control_ping with the same context; collects details until the ping
    /// reply.
    pub async fn dump<Q: Message, D: Message>(&mut self, q: &Q) -> Vec<D> {
        let ctx = self.next_ctx();
        self.send(q, ctx).await;
        self.send(&memclnt::ControlPing {}, ctx).await;
        let ping_reply = self.id::<memclnt::ControlPingReply>();
        let mut out = Vec::new();
        loop {
            let f = self.read_frame().await.expect("details or ping reply");
            if codec::read_msg_id(&f) == Some(ping_reply) {
                return out;
            }
            assert_eq!(codec::read_context(&f, D::HEADER), Some(ctx));
            out.push(codec::decode_message::<D>(&f).unwrap().1);
        }
    }

    /// Whether a control_ping is answered (the connection still works and is in order).
    pub async fn ping(&mut self) -> bool {
        let ctx = self.next_ctx();
        self.send(&memclnt::ControlPing {}, ctx).await;
        match self.read_frame().await {
            Some(f) => {
                codec::read_msg_id(&f) == Some(self.id::<memclnt::ControlPingReply>())
                    && codec::read_context(&f, HeaderKind::Reply) == Some(ctx)
            }
            None => false,
        }
    }
}
