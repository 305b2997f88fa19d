//! A fake VPP: answers the handshake with a fixed message table, then hands every request to
//! a test-supplied handler.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

pub(crate) const CLIENT_INDEX: u32 = 0x8000_0001;
pub(crate) const CONTROL_PING: u16 = 100;
pub(crate) const CONTROL_PING_REPLY: u16 = 101;
pub(crate) const SOCKCLNT_DELETE: u16 = 17;
pub(crate) const SOCKCLNT_DELETE_REPLY: u16 = 18;
pub(crate) const KEEPALIVE: u16 = 19;
pub(crate) const KEEPALIVE_REPLY: u16 = 20;
pub(crate) const SHOW_VERSION: u16 = 200;
pub(crate) const VPE_PID: u32 = 4242;

pub(crate) fn base_table() -> Vec<(u16, String)> {
    [
        (15, "sockclnt_create_455fb9c4"),
        (16, "sockclnt_create_reply_35166268"),
        (SOCKCLNT_DELETE, "sockclnt_delete_8ac76db6"),
        (SOCKCLNT_DELETE_REPLY, "sockclnt_delete_reply_8f38b1ee"),
        (KEEPALIVE, "memclnt_keepalive_51077d14"),
        (KEEPALIVE_REPLY, "memclnt_keepalive_reply_e8d4e804"),
        (CONTROL_PING, "control_ping_51077d14"),
        (CONTROL_PING_REPLY, "control_ping_reply_f6b0b8ca"),
        // Known under another CRC than the client expects.
        (SHOW_VERSION, "show_version_aaaaaaaa"),
    ]
    .into_iter()
    .map(|(id, n)| (id, n.to_owned()))
    .collect()
}

/// A request as the server sees it (request-shaped header).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) id: u16,
    pub(crate) client_index: u32,
    pub(crate) context: u32,
    pub(crate) payload: Vec<u8>,
}

/// What the handler wants sent back.
pub(crate) enum Out {
    /// A payload, framed by the server.
    Frame(Vec<u8>),
    /// Bytes written as they are (for broken frames).
    Raw(Vec<u8>),
    /// Close the connection after flushing.
    Close,
}

pub(crate) type Handler = Arc<dyn Fn(&Req, &mut Vec<Out>) + Send + Sync>;

pub(crate) struct FakeVpp {
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
    /// Client names received in `sockclnt_create`.
    pub(crate) names: Arc<Mutex<Vec<String>>>,
    /// Connections that ended (EOF or error on the server's side).
    pub(crate) disconnects: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeVpp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xAB; 8]; // VPP sends garbage here; the client must ignore it.
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&[0xCD; 4]);
    f.extend_from_slice(payload);
    f
}

pub(crate) fn ping_reply(context: u32) -> Vec<u8> {
    let mut p = CONTROL_PING_REPLY.to_be_bytes().to_vec();
    p.extend_from_slice(&context.to_be_bytes());
    p.extend_from_slice(&0i32.to_be_bytes());
    p.extend_from_slice(&CLIENT_INDEX.to_be_bytes());
    p.extend_from_slice(&VPE_PID.to_be_bytes());
    p
}

/// A reply-shaped payload: id, context, then `body`.
pub(crate) fn reply(id: u16, context: u32, body: &[u8]) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&context.to_be_bytes());
    p.extend_from_slice(body);
    p
}

fn create_reply(context: u32, table: &[(u16, String)]) -> Vec<u8> {
    let mut p = 16u16.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes()); // client_index: always 0
    p.extend_from_slice(&context.to_be_bytes());
    p.extend_from_slice(&0i32.to_be_bytes()); // response
    p.extend_from_slice(&CLIENT_INDEX.to_be_bytes()); // index: the handle
    p.extend_from_slice(&(table.len() as u16).to_be_bytes());
    for (id, name) in table {
        p.extend_from_slice(&id.to_be_bytes());
        let mut n = name.as_bytes().to_vec();
        n.resize(64, 0);
        p.extend_from_slice(&n);
    }
    p
}

/// Answers `control_ping` and `sockclnt_delete`; everything else goes unanswered.
pub(crate) fn default_handler(req: &Req, out: &mut Vec<Out>) {
    match req.id {
        CONTROL_PING => out.push(Out::Frame(ping_reply(req.context))),
        SOCKCLNT_DELETE => {
            out.push(Out::Frame(reply(
                SOCKCLNT_DELETE_REPLY,
                req.context,
                &1i32.to_be_bytes(),
            )));
            out.push(Out::Close);
        }
        _ => {}
    }
}

impl FakeVpp {
    pub(crate) async fn start(table: Vec<(u16, String)>, handler: Handler) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let names = Arc::new(Mutex::new(Vec::new()));
        let disconnects = Arc::new(AtomicUsize::new(0));
        let table = Arc::new(table);
        let task = {
            let names = names.clone();
            let disconnects = disconnects.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        return;
                    };
                    let (table, handler, names) = (table.clone(), handler.clone(), names.clone());
                    let disconnects = disconnects.clone();
                    tokio::spawn(async move {
                        serve(sock, table, handler, names).await;
                        disconnects.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        };
        Self {
            _dir: dir,
            path,
            names,
            disconnects,
            task,
        }
    }

    pub(crate) async fn with_handler(
        handler: impl Fn(&Req, &mut Vec<Out>) + Send + Sync + 'static,
    ) -> Self {
        Self::start(base_table(), Arc::new(handler)).await
    }
}

/// True if `buf` starts with a complete frame.
fn has_frame(buf: &[u8]) -> bool {
    buf.len() >= 16
        && buf.len() - 16 >= u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize
}

async fn serve(
    sock: UnixStream,
    table: Arc<Vec<(u16, String)>>,
    handler: Handler,
    names: Arc<Mutex<Vec<String>>>,
) {
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::with_capacity(256 * 1024, rd);
    let mut wbuf = Vec::new();
    let mut out = Vec::new();
    let mut first = true;
    loop {
        let mut hdr = [0u8; 16];
        if rd.read_exact(&mut hdr).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
        let mut payload = vec![0u8; len];
        if rd.read_exact(&mut payload).await.is_err() {
            return;
        }
        if first {
            first = false;
            assert_eq!(
                &payload[..2],
                &15u16.to_be_bytes(),
                "first message must be sockclnt_create"
            );
            assert_eq!(&hdr[..8], &[0; 8], "client must send zeros in the header");
            let ctx = u32::from_be_bytes(payload[2..6].try_into().unwrap());
            let name = &payload[6..70];
            let end = name.iter().position(|&b| b == 0).unwrap();
            names
                .lock()
                .unwrap()
                .push(String::from_utf8(name[..end].to_vec()).unwrap());
            wbuf.extend_from_slice(&frame(&create_reply(ctx, &table)));
        } else {
            let req = Req {
                id: u16::from_be_bytes([payload[0], payload[1]]),
                client_index: u32::from_be_bytes(payload[2..6].try_into().unwrap()),
                context: u32::from_be_bytes(payload[6..10].try_into().unwrap()),
                payload,
            };
            handler(&req, &mut out);
            let mut close = false;
            for o in out.drain(..) {
                match o {
                    Out::Frame(p) => wbuf.extend_from_slice(&frame(&p)),
                    Out::Raw(b) => wbuf.extend_from_slice(&b),
                    Out::Close => close = true,
                }
            }
            if close {
                let _ = wr.write_all(&wbuf).await;
                return;
            }
        }
        if !has_frame(rd.buffer()) && !wbuf.is_empty() {
            if wr.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
    }
}
