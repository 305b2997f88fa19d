//! Half-open TCP checks ("SYN checks") through raw sockets: [`SynEngine`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket as StdUdpSocket,
};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Outcome, deadline_after, io_detail, timeout_detail};
use crate::netns::SocketFactory;
use crate::result::{ProbeResult, ResultCode};

/// How many source ports an engine reserves. At most this many probes of one destination
/// address and port can be in flight at once.
pub const RESERVED_PORTS: usize = 64;

/// How long a route lookup (the source address the kernel would use for a destination) is
/// reused.
pub const ROUTE_TTL: Duration = Duration::from_secs(15);

/// Route-cache entries kept at most; the cache is emptied of stale entries, then entirely,
/// when full.
const ROUTE_CACHE_MAX: usize = 4096;

/// Distinct source addresses an engine probes from at most (one raw socket each).
pub const MAX_SOURCES: usize = 64;

/// Segments one read pass handles before giving the runtime a turn.
const RECV_BATCH: usize = 256;

/// Receive buffer asked for each raw socket: room for a burst of replies at 10,000 probes/s.
const RECV_BUFFER: usize = 1 << 20;

/// Enough for an IPv4 header with options plus a TCP header with options.
const PACKET_BUF: usize = 128;

const TCP_SYN_RST_ACK: u8 = 0x02 | 0x04 | 0x10;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
const PROTO_TCP: u8 = 6;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
/// TCP header with one option, MSS.
const TCP_SYN_LEN: usize = 24;
const SYN_WINDOW: u16 = 1024;
const MSS_V4: u16 = 1460;
const MSS_V6: u16 = 1440;
const TTL: u8 = 64;

/// IPv4: the packet starts at the IP header. `ldx 4*([0]&0xf)`, `ldb [x+13]` (TCP flags),
/// `and #0x16` (SYN|RST|ACK), accept `SYN|ACK` or `RST|ACK`, drop the rest.
const FILTER_V4: [(u16, u8, u8, u32); 7] = [
    (0xb1, 0, 0, 0),
    (0x50, 0, 0, 13),
    (0x54, 0, 0, TCP_SYN_RST_ACK as u32),
    (0x15, 2, 0, (TCP_SYN | TCP_ACK) as u32),
    (0x15, 1, 0, (TCP_RST | TCP_ACK) as u32),
    (0x06, 0, 0, 0),
    (0x06, 0, 0, 0xffff),
];

/// IPv6: the packet starts at the TCP header. `ldb [13]`, then as for IPv4.
const FILTER_V6: [(u16, u8, u8, u32); 6] = [
    (0x30, 0, 0, 13),
    (0x54, 0, 0, TCP_SYN_RST_ACK as u32),
    (0x15, 2, 0, (TCP_SYN | TCP_ACK) as u32),
    (0x15, 1, 0, (TCP_RST | TCP_ACK) as u32),
    (0x06, 0, 0, 0),
    (0x06, 0, 0, 0xffff),
];

/// Half-open TCP checks: SYN out, SYN-ACK (pass) or reset (refused) back, through raw sockets.
///
/// Create one per process (or per checker) with [`SynEngine::new`] inside a tokio runtime and
/// share it: every probe borrows it, and its cost is a few sockets and two receiver tasks
/// that end when the engine is dropped.
///
/// It sends a hand-built TCP SYN from a raw socket and waits for the answer: a
/// SYN-ACK acknowledging our sequence number passes (`L4OK`), a reset acknowledging it is a
/// refusal (`L4CON`), nothing before the deadline is a timeout (`L4TOUT`). No socket of ours
/// owns the 4-tuple, so the kernel itself answers the SYN-ACK with a reset: the server never
/// completes the handshake, never accepts, and neither side keeps any state. This costs about
/// half the kernel work of a connect check (no socket to create, bind, hash and tear down):
/// about 10 µs of CPU per check on loopback against 22 µs.
///
/// # How
///
/// - One raw `IPPROTO_TCP` socket per source address, bound to it, opened at the first probe
///   from that address (at most [`MAX_SOURCES`]), with `IP_HDRINCL` / `IPV6_HDRINCL`: we write
///   the whole IP header. Being bound, the socket is handed only the segments addressed to its
///   source, not a copy of every TCP segment the host receives. The TCP
///   checksum covers the source address, so when none is configured the engine asks the
///   routing table which one the kernel would pick (a connected UDP socket's local address),
///   and caches the answer per destination for [`ROUTE_TTL`].
/// - Source ports come from a pool of [`RESERVED_PORTS`] ports the engine holds bound (never
///   listening) TCP sockets on, dual-stack on `[::]` when the host has IPv6. A bound socket
///   owns no 4-tuple, so the kernel still resets the server's SYN-ACK, and it keeps other
///   sockets, including `connect()`'s automatic port choice, off these ports.
/// - In-flight probes are keyed by (source port, destination address, destination port); two
///   probes with the same key never run at once. Each probe has a random initial sequence
///   number, and a reply counts only when it acknowledges that number plus one.
/// - A classic BPF program on each raw socket lets through only TCP segments with ACK and
///   SYN or RST set, so the socket does not queue the host's ordinary traffic.
/// - Receiving: after sending, a probe reads the socket itself without blocking until its own
///   reply shows up or the socket is empty, handing every other reply to its waiter. On
///   loopback the answer is already queued when the send returns, so most probes finish in
///   one poll. Otherwise the probe waits on its slot; one receiver task per socket wakes on
///   readability, reads everything queued and wakes exactly the probes whose replies came.
///
/// # Limits
///
/// - Needs CAP_NET_RAW: [`SynEngine::new`] fails with the OS error (`EPERM`) without it.
/// - ICMP errors are not matched to probes: an unreachable host or a filtering firewall that
///   answers with ICMP reports as a timeout, not as `L4CON`.
/// - A configured source address that is not local cannot be bound: `L4CON` at once, with a
///   detail naming it.
/// - The engine belongs to the tokio runtime it was created in (its sockets and receiver
///   tasks are registered there).
/// - Each raw socket gets a copy of every SYN-ACK and reset addressed to its source, so the
///   receiver also reads (and ignores) those meant for other sockets.
#[derive(Debug)]
pub struct SynEngine {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Whether IPv6 raw sockets (and a dual-stack port reservation) are available.
    v6: bool,
    /// The raw socket of each source address, with its receiver task.
    sockets: Mutex<FastMap<IpAddr, Bound>>,
    table: Mutex<FastMap<Key, Waiter>>,
    ports: Vec<u16>,
    /// Held only to keep the ports reserved.
    _reserved: Vec<Socket>,
    cursor: AtomicUsize,
    routes: Mutex<FastMap<(IpAddr, u32), (IpAddr, std::time::Instant)>>,
    /// Where every socket of the engine is created.
    factory: SocketFactory,
}

/// A raw socket bound to one source address, and the task receiving on it.
type Bound = (Arc<RawSocket>, JoinHandle<()>);

/// A map with [`FastHasher`]: the engine's tables are looked up a few times per probe.
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A multiply-and-rotate hasher, much cheaper than the default SipHash for these small keys.
/// It does not resist chosen collisions, and needs not: entries are only ever added for our
/// own probes (a received packet can look an entry up, never add one), so no peer can grow a
/// chain.
#[derive(Clone, Copy, Debug, Default)]
struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One raw socket, two handles on the same open file: `sys` for direct non-blocking system
/// calls (which never wait for the runtime to notice readiness), `notify` registered with
/// tokio for the receiver task's wake-ups.
#[derive(Debug)]
struct RawSocket {
    family: Family,
    sys: StdUdpSocket,
    notify: UdpSocket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// What identifies an in-flight probe, as its replies carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    local_port: u16,
    remote: IpAddr,
    remote_port: u16,
}

#[derive(Debug)]
struct Waiter {
    /// The acknowledgement number a reply must carry: our sequence number plus one.
    ack: u32,
    /// Our source address; IPv4 replies must be addressed to it.
    local: IpAddr,
    reply: Option<Reply>,
    waker: Option<Waker>,
}

/// A reply that settles a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// SYN-ACK: something listens.
    Open,
    /// Reset: nothing listens.
    Refused,
}

/// The fields of a received segment that matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    src: IpAddr,
    /// Known for IPv4 only (IPv6 raw sockets deliver no IP header).
    dst: Option<IpAddr>,
    src_port: u16,
    dst_port: u16,
    ack: u32,
    flags: u8,
}

impl Segment {
    fn reply(&self) -> Option<Reply> {
        if self.flags & TCP_ACK == 0 {
            None
        } else if self.flags & TCP_RST != 0 {
            Some(Reply::Refused)
        } else if self.flags & TCP_SYN != 0 {
            Some(Reply::Open)
        } else {
            None
        }
    }

    fn key(&self) -> Key {
        Key {
            local_port: self.dst_port,
            remote: self.src,
            remote_port: self.src_port,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SynEngine {
    /// Opens the raw sockets (IPv4, and IPv6 when the host has it), reserves the source
    /// ports and starts the receiver tasks.
    ///
    /// Fails with the OS error when the process may not open raw sockets (`EPERM` without
    /// CAP_NET_RAW), or with an error when called outside a tokio runtime. Call it inside a
    /// runtime with I/O enabled; the engine then belongs to that runtime.
    pub fn new() -> io::Result<Self> {
        Self::with_sockets(SocketFactory::host())
    }

    /// As [`SynEngine::new`], with every socket (raw sockets, port reservations, route
    /// lookups) created by `factory`, in its network namespace.
    ///
    /// # Errors
    /// As [`SynEngine::new`].
    pub fn with_sockets(factory: SocketFactory) -> io::Result<Self> {
        // Registering sockets outside a runtime would panic: report it as an error instead.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // Opened only to learn now whether raw sockets are allowed; probes open their own.
        drop(RawSocket::open(&factory, Family::V4, None)?);
        let (reserved, ports, dual_stack) = reserve_ports(&factory, RESERVED_PORTS)?;
        // IPv6 probes need the reserved ports held on IPv6 too; without a dual-stack
        // reservation (or without IPv6 at all) the engine serves IPv4 only.
        let v6 = dual_stack && RawSocket::open(&factory, Family::V6, None).is_ok();
        let shared = Arc::new(Shared {
            v6,
            sockets: Mutex::new(FastMap::default()),
            table: Mutex::new(FastMap::default()),
            ports,
            _reserved: reserved,
            cursor: AtomicUsize::new(rand::random::<u16>() as usize),
            routes: Mutex::new(FastMap::default()),
            factory,
        });
        Ok(Self { shared })
    }

    /// Whether this engine can probe `target`'s family (IPv6 needs the host to have IPv6).
    pub fn supports(&self, target: IpAddr) -> bool {
        match target.to_canonical() {
            IpAddr::V4(_) => true,
            IpAddr::V6(_) => self.shared.v6,
        }
    }

    /// The source ports this engine holds reserved.
    pub fn reserved_ports(&self) -> &[u16] {
        &self.shared.ports
    }

    /// How many probes are waiting for a reply right now: a diagnostic (it is bounded by
    /// the probes in flight, and zero when none is).
    pub fn in_flight(&self) -> usize {
        lock(&self.shared.table).len()
    }

    /// One half-open check of `target`, from `source` when given (it must be of the
    /// target's family and local), else from the address the kernel's routing would pick.
    ///
    /// `L4OK` "syn-ack received", `L4CON` "connection refused" (reset) or another socket
    /// error, `L4TOUT` "timeout after ..." when nothing answered within `timeout` (ICMP
    /// errors included, see [`SynEngine`]). An IPv4-mapped IPv6 target is probed as
    /// IPv4. Dropping the future cancels the probe.
    pub async fn check(
        &self,
        target: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> ProbeResult {
        let start = Instant::now();
        let deadline = deadline_after(start, timeout);
        let (code, detail) = self.check_until(target, source, deadline, timeout).await;
        ProbeResult::new(code, detail, start.elapsed())
    }

    /// [`SynEngine::check`] with an absolute deadline; `timeout` only names it in details.
    pub(super) async fn check_until(
        &self,
        target: SocketAddr,
        source: Option<IpAddr>,
        deadline: Instant,
        timeout: Duration,
    ) -> Outcome {
        let target = canonical(target);
        let shared = &self.shared;
        if target.is_ipv6() && !shared.v6 {
            return (ResultCode::L4Con, "no ipv6 raw socket".to_owned());
        }
        let local = match source.map(|s| s.to_canonical()) {
            Some(src) if src.is_ipv4() == target.is_ipv4() => src,
            Some(src) => {
                return (
                    ResultCode::L4Con,
                    format!("source {src} is not of the target's family"),
                );
            }
            None => match shared.route_source(target) {
                Ok(src) => src,
                Err(e) => return (ResultCode::L4Con, io_detail(&e)),
            },
        };
        let sock = match shared.socket_for(local) {
            Ok(sock) => sock,
            Err(outcome) => return outcome,
        };
        let isn: u32 = rand::random();
        let Some(slot) = shared.reserve(target, local, isn.wrapping_add(1)) else {
            return (
                ResultCode::L4Con,
                format!("too many probes of {target} in flight"),
            );
        };
        let dst = match target {
            SocketAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(*a.ip(), 0)),
            SocketAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(*a.ip(), 0, 0, a.scope_id())),
        };
        // The packet lives only in this block, so that it takes no room in the future while
        // the probe waits; only a full socket buffer (rare) needs an owned copy and a wait.
        let blocked = {
            let mut packet = [0u8; IPV6_HEADER + TCP_SYN_LEN];
            let len = build_syn(&mut packet, local, target, slot.key.local_port, isn);
            match sock.sys.send_to(&packet[..len], dst) {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(packet[..len].to_vec()),
                Err(e) => return (ResultCode::L4Con, format!("send: {}", io_detail(&e))),
            }
        };
        if let Some(packet) = blocked
            && let Err(outcome) = Box::pin(sock.send(packet, dst, deadline, timeout)).await
        {
            return outcome;
        }
        let reply = match shared.read_for(&sock, &slot.key) {
            Some(reply) => reply,
            None => match tokio::time::timeout_at(deadline, slot.wait()).await {
                Ok(reply) => reply,
                Err(_) => return (ResultCode::L4Tout, timeout_detail(timeout)),
            },
        };
        match reply {
            Reply::Open => (ResultCode::L4Ok, "syn-ack received".to_owned()),
            Reply::Refused => (ResultCode::L4Con, "connection refused".to_owned()),
        }
    }
}

impl Drop for SynEngine {
    fn drop(&mut self) {
        for (_, task) in lock(&self.shared.sockets).values() {
            task.abort();
        }
    }
}

impl RawSocket {
    /// A raw TCP socket of `family`, bound to `source` when given.
    fn open(factory: &SocketFactory, family: Family, source: Option<IpAddr>) -> io::Result<Self> {
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let socket = factory.socket(domain, Type::RAW, Some(Protocol::TCP))?;
        if let Some(source) = source {
            socket.bind(&SocketAddr::new(source, 0).into())?;
        }
        let program: Vec<SockFilter> = match family {
            Family::V4 => {
                socket.set_header_included_v4(true)?;
                FILTER_V4
                    .iter()
                    .map(|&(c, t, f, k)| SockFilter::new(c, t, f, k))
                    .collect()
            }
            Family::V6 => {
                socket.set_header_included_v6(true)?;
                FILTER_V6
                    .iter()
                    .map(|&(c, t, f, k)| SockFilter::new(c, t, f, k))
                    .collect()
            }
        };
        socket.attach_filter(&program)?;
        // Best effort: a smaller buffer only drops replies under a heavy burst.
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
        socket.set_nonblocking(true)?;
        let sys = socket.try_clone()?;
        // The std and tokio UDP types only wrap a datagram descriptor: their send_to and
        // recv_from are exactly the calls a raw socket needs.
        let notify = UdpSocket::from_std(StdUdpSocket::from(socket))?;
        Ok(Self {
            family,
            sys: StdUdpSocket::from(sys),
            notify,
        })
    }

    /// Sends `packet` once the socket buffer has room, waiting until `deadline` at most.
    async fn send(
        &self,
        packet: Vec<u8>,
        dst: SocketAddr,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), Outcome> {
        let send = self.notify.send_to(&packet, dst);
        let Ok(sent) = tokio::time::timeout_at(deadline, send).await else {
            return Err((ResultCode::L4Tout, timeout_detail(timeout)));
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) => Err((ResultCode::L4Con, format!("send: {}", io_detail(&e)))),
        }
    }

    /// One segment from the socket without waiting, through `sys` or `notify`.
    fn recv(&self, buf: &mut [u8], via_notify: bool) -> io::Result<Option<Segment>> {
        match self.family {
            Family::V4 => {
                let n = if via_notify {
                    self.notify.try_recv(buf)?
                } else {
                    self.sys.recv(buf)?
                };
                Ok(parse_v4(&buf[..n]))
            }
            Family::V6 => {
                let (n, from) = if via_notify {
                    self.notify.try_recv_from(buf)?
                } else {
                    self.sys.recv_from(buf)?
                };
                Ok(parse_v6(&buf[..n], from.ip()))
            }
        }
    }
}

impl Shared {
    /// The raw socket bound to `source`, opened (with its receiver task) on first use.
    fn socket_for(self: &Arc<Self>, source: IpAddr) -> Result<Arc<RawSocket>, Outcome> {
        let mut sockets = lock(&self.sockets);
        if let Some((sock, _)) = sockets.get(&source) {
            return Ok(Arc::clone(sock));
        }
        if sockets.len() >= MAX_SOURCES {
            return Err((
                ResultCode::L4Con,
                format!("more than {MAX_SOURCES} source addresses"),
            ));
        }
        let family = if source.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let sock = RawSocket::open(&self.factory, family, Some(source))
            .map(Arc::new)
            .map_err(|e| {
                (
                    ResultCode::L4Con,
                    format!("bind {source}: {}", io_detail(&e)),
                )
            })?;
        let task = tokio::spawn(receive(Arc::downgrade(self), Arc::clone(&sock)));
        sockets.insert(source, (Arc::clone(&sock), task));
        Ok(sock)
    }

    /// Takes a free source port for a probe of `target` and registers its waiter.
    fn reserve(&self, target: SocketAddr, local: IpAddr, ack: u32) -> Option<Slot<'_>> {
        let n = self.ports.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut table = lock(&self.table);
        for i in 0..n {
            let key = Key {
                local_port: self.ports[start.wrapping_add(i) % n],
                remote: target.ip(),
                remote_port: target.port(),
            };
            if let Entry::Vacant(entry) = table.entry(key) {
                entry.insert(Waiter {
                    ack,
                    local,
                    reply: None,
                    waker: None,
                });
                return Some(Slot { shared: self, key });
            }
        }
        None
    }

    /// Reads what is queued on `sock` without waiting, until `mine`'s reply comes or the
    /// socket is empty, handing every other reply to its waiter.
    fn read_for(&self, sock: &RawSocket, mine: &Key) -> Option<Reply> {
        let mut buf = [0u8; PACKET_BUF];
        for _ in 0..RECV_BATCH {
            match sock.recv(&mut buf, false) {
                Ok(Some(segment)) => {
                    if let Some(reply) = self.dispatch(&segment, Some(mine)) {
                        return Some(reply);
                    }
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                // A pending socket error (an ICMP error about some SYN) is consumed by the
                // read that reports it; the next read goes on with the queue.
                Err(_) => {}
            }
        }
        None
    }

    /// Settles the waiter `segment` answers, if any. Returns the reply when that waiter is
    /// `mine` (the caller's own probe); wakes the waiter otherwise.
    fn dispatch(&self, segment: &Segment, mine: Option<&Key>) -> Option<Reply> {
        let reply = segment.reply()?;
        let key = segment.key();
        let mut table = lock(&self.table);
        let waiter = table.get_mut(&key)?;
        if waiter.reply.is_some()
            || waiter.ack != segment.ack
            || segment.dst.is_some_and(|dst| dst != waiter.local)
        {
            return None;
        }
        waiter.reply = Some(reply);
        if mine == Some(&key) {
            return Some(reply);
        }
        let waker = waiter.waker.take();
        drop(table);
        if let Some(waker) = waker {
            waker.wake();
        }
        None
    }

    /// The source address the kernel would use towards `target`, cached for [`ROUTE_TTL`].
    fn route_source(&self, target: SocketAddr) -> io::Result<IpAddr> {
        let scope = match target {
            SocketAddr::V4(_) => 0,
            SocketAddr::V6(a) => a.scope_id(),
        };
        let key = (target.ip(), scope);
        let now = std::time::Instant::now();
        if let Some(&(src, at)) = lock(&self.routes).get(&key)
            && now.duration_since(at) < ROUTE_TTL
        {
            return Ok(src);
        }
        // Connecting a UDP socket sends nothing: it only runs the route lookup.
        let udp = self
            .factory
            .socket(Domain::for_address(target), Type::DGRAM, None)?;
        udp.connect(&target.into())?;
        let src = udp
            .local_addr()?
            .as_socket()
            .map(|a| a.ip().to_canonical())
            .ok_or_else(|| io::Error::other("route lookup gave no address"))?;
        let mut routes = lock(&self.routes);
        if routes.len() >= ROUTE_CACHE_MAX {
            routes.retain(|_, (_, at)| now.duration_since(*at) < ROUTE_TTL);
            if routes.len() >= ROUTE_CACHE_MAX {
                routes.clear();
            }
        }
        routes.insert(key, (src, now));
        Ok(src)
    }
}

/// A registered in-flight probe; dropping it (probe done or cancelled) removes the waiter.
struct Slot<'a> {
    shared: &'a Shared,
    key: Key,
}

impl Slot<'_> {
    fn wait(&self) -> Wait<'_> {
        Wait { slot: self }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(&self.shared.table).remove(&self.key);
    }
}

/// Resolves when the slot's reply has been dispatched.
struct Wait<'a> {
    slot: &'a Slot<'a>,
}

impl Future for Wait<'_> {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut table = lock(&self.slot.shared.table);
        let Some(waiter) = table.get_mut(&self.slot.key) else {
            // Unreachable while the slot lives; treat as no answer rather than panic.
            return Poll::Pending;
        };
        if let Some(reply) = waiter.reply {
            return Poll::Ready(reply);
        }
        match &mut waiter.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The receiver task of one raw socket: wakes on readability, reads everything queued,
/// settles the waiters the replies answer. Ends with the engine.
async fn receive(shared: Weak<Shared>, sock: Arc<RawSocket>) {
    let mut buf = [0u8; PACKET_BUF];
    loop {
        if sock.notify.readable().await.is_err() {
            return;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut drained = false;
        for _ in 0..RECV_BATCH {
            match sock.recv(&mut buf, true) {
                Ok(Some(segment)) => {
                    shared.dispatch(&segment, None);
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(_) => {}
            }
        }
        if !drained {
            tokio::task::yield_now().await;
        }
    }
}

/// Binds `n` TCP sockets on kernel-chosen ports, dual-stack on `[::]` when possible (else
/// `0.0.0.0`), and never listens on them. Returns them, their ports, and whether they are
/// dual-stack.
fn reserve_ports(factory: &SocketFactory, n: usize) -> io::Result<(Vec<Socket>, Vec<u16>, bool)> {
    let mut sockets = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut dual_stack = true;
    for _ in 0..n {
        let socket = if dual_stack {
            match bind_any(factory, true) {
                Ok(s) => s,
                Err(_) if sockets.is_empty() => {
                    dual_stack = false;
                    bind_any(factory, false)?
                }
                Err(e) => return Err(e),
            }
        } else {
            bind_any(factory, false)?
        };
        let port = socket
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("reserved socket has no port"))?;
        sockets.push(socket);
        ports.push(port);
    }
    Ok((sockets, ports, dual_stack))
}

fn bind_any(factory: &SocketFactory, dual_stack: bool) -> io::Result<Socket> {
    let (domain, addr) = if dual_stack {
        (Domain::IPV6, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
    } else {
        (Domain::IPV4, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
    };
    let socket = factory.socket(domain, Type::STREAM, None)?;
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
            None => addr,
        },
        v4 => v4,
    }
}

/// Writes the IP header and a TCP SYN (window [`SYN_WINDOW`], an MSS option) from
/// `src`:`src_port` to `dst` into `buf`, checksums included; returns the packet length.
/// `src` must be of `dst`'s family (the caller checks).
fn build_syn(
    buf: &mut [u8; IPV6_HEADER + TCP_SYN_LEN],
    src: IpAddr,
    dst: SocketAddr,
    src_port: u16,
    isn: u32,
) -> usize {
    let (ip_len, mss) = match (src, dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (IPV4_HEADER + TCP_SYN_LEN) as u16;
            let ip = &mut buf[..IPV4_HEADER];
            ip[0] = 0x45;
            ip[1] = 0;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            // Identification 0: the kernel picks one. Don't fragment.
            ip[4..6].copy_from_slice(&[0, 0]);
            ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
            ip[8] = TTL;
            ip[9] = PROTO_TCP;
            ip[10..12].copy_from_slice(&[0, 0]);
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let sum = fold(sum16(ip, 0));
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            (IPV4_HEADER, MSS_V4)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = &mut buf[..IPV6_HEADER];
            ip[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
            ip[4..6].copy_from_slice(&(TCP_SYN_LEN as u16).to_be_bytes());
            ip[6] = PROTO_TCP;
            ip[7] = TTL;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            (IPV6_HEADER, MSS_V6)
        }
        // Mixed families: the caller never asks; an empty packet fails the send.
        _ => return 0,
    };
    let tcp = &mut buf[ip_len..ip_len + TCP_SYN_LEN];
    tcp[0..2].copy_from_slice(&src_port.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&isn.to_be_bytes());
    tcp[8..12].copy_from_slice(&[0; 4]);
    tcp[12] = ((TCP_SYN_LEN / 4) as u8) << 4;
    tcp[13] = TCP_SYN;
    tcp[14..16].copy_from_slice(&SYN_WINDOW.to_be_bytes());
    tcp[16..20].copy_from_slice(&[0; 4]);
    tcp[20] = 2; // MSS
    tcp[21] = 4;
    tcp[22..24].copy_from_slice(&mss.to_be_bytes());
    let sum = fold(sum16(tcp, pseudo_header_sum(src, dst.ip(), TCP_SYN_LEN)));
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    ip_len + TCP_SYN_LEN
}

/// The ones'-complement sum of the TCP pseudo-header.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, tcp_len: usize) -> u32 {
    let mut acc = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
        }
        (s, d) => {
            acc = sum16(&ip6_octets(s), acc);
            acc = sum16(&ip6_octets(d), acc);
        }
    }
    acc + u32::from(PROTO_TCP) + tcp_len as u32
}

fn ip6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Adds `data` as big-endian 16-bit words (odd length padded with zero) to `acc`.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Folds a 32-bit sum to 16 bits and complements it: the Internet checksum.
fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The TCP header fields of an IPv4 packet as a raw IPv4 socket delivers it (IP header
/// first). `None` for anything short, malformed, fragmented or not TCP.
fn parse_v4(pkt: &[u8]) -> Option<Segment> {
    let first = *pkt.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < IPV4_HEADER || pkt.len() < ihl + 20 || pkt[9] != PROTO_TCP {
        return None;
    }
    // A fragment other than the first carries no TCP header at its start.
    let frag = u16::from_be_bytes([pkt[6], pkt[7]]);
    if frag & 0x1fff != 0 {
        return None;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    parse_tcp(&pkt[ihl..], IpAddr::V4(src), Some(IpAddr::V4(dst)))
}

/// The TCP header fields of a segment as a raw IPv6 socket delivers it (TCP header first),
/// from `from`.
fn parse_v6(pkt: &[u8], from: IpAddr) -> Option<Segment> {
    parse_tcp(pkt, from, None)
}

fn parse_tcp(tcp: &[u8], src: IpAddr, dst: Option<IpAddr>) -> Option<Segment> {
    if tcp.len() < 20 || usize::from(tcp[12] >> 4) * 4 < 20 {
        return None;
    }
    Some(Segment {
        src,
        dst,
        src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        flags: tcp[13],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The Internet checksum of the pseudo-header and the segment, checksum field included,
    /// is zero when the checksum is right.
    fn tcp_checksum_ok(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> bool {
        fold(sum16(tcp, pseudo_header_sum(src, dst, tcp.len()))) == 0
    }

    #[test]
    fn ipv4_syn_has_valid_headers_and_checksums() {
        let mut buf = [0u8; IPV6_HEADER + TCP_SYN_LEN];
        let src = v4("127.0.0.2");
        let dst: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let len = build_syn(&mut buf, src, dst, 40_000, 0xdead_beef);
        assert_eq!(len, 44);
        let pkt = &buf[..len];
        assert_eq!(pkt[0], 0x45);
        assert_eq!(u16::from_be_bytes([pkt[2], pkt[3]]), 44);
        assert_eq!(pkt[9], 6);
        assert_eq!(&pkt[12..16], &[127, 0, 0, 2]);
        assert_eq!(&pkt[16..20], &[10, 1, 2, 3]);
        assert_eq!(fold(sum16(&pkt[..20], 0)), 0, "ip header checksum");
        let tcp = &pkt[20..];
        assert_eq!(u16::from_be_bytes([tcp[0], tcp[1]]), 40_000);
        assert_eq!(u16::from_be_bytes([tcp[2], tcp[3]]), 8080);
        assert_eq!(
            u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            0xdead_beef
        );
        assert_eq!(tcp[13], TCP_SYN);
        assert_eq!(tcp[12] >> 4, 6, "data offset covers the MSS option");
        assert!(tcp_checksum_ok(src, dst.ip(), tcp));
        // A different source address breaks it: the pseudo-header is covered.
        assert!(!tcp_checksum_ok(v4("127.0.0.1"), dst.ip(), tcp));
    }

    #[test]
    fn ipv6_syn_has_valid_headers_and_checksum() {
        let mut buf = [0u8; IPV6_HEADER + TCP_SYN_LEN];
        let src: IpAddr = "2001:db8::1".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:443".parse().unwrap();
        let len = build_syn(&mut buf, src, dst, 50_001, 7);
        assert_eq!(len, 64);
        let pkt = &buf[..len];
        assert_eq!(pkt[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([pkt[4], pkt[5]]), 24, "payload length");
        assert_eq!(pkt[6], 6);
        assert_eq!(&pkt[8..24], &ip6_octets(src));
        assert_eq!(&pkt[24..40], &ip6_octets(dst.ip()));
        let tcp = &pkt[40..];
        assert!(tcp_checksum_ok(src, dst.ip(), tcp));
        assert!(!tcp_checksum_ok(src, "2001:db8::3".parse().unwrap(), tcp));
    }

    #[test]
    fn checksum_matches_a_known_value() {
        // RFC 1071's example words: 0001 f203 f4f5 f6f7 sum to 0xddf2 (complement 0x220d).
        assert_eq!(
            fold(sum16(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0)),
            0x220d
        );
        // Odd length pads with a zero byte.
        assert_eq!(sum16(&[0x12], 0), 0x1200);
    }

    /// A reply as a raw IPv4 socket delivers it.
    fn reply_v4(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        ack: u32,
        flags: u8,
    ) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p
    }

    #[test]
    fn replies_parse_and_classify() {
        let p = reply_v4(
            [127, 0, 0, 1],
            [127, 0, 0, 2],
            80,
            40_000,
            5,
            TCP_SYN | TCP_ACK,
        );
        let s = parse_v4(&p).unwrap();
        assert_eq!(s.src, v4("127.0.0.1"));
        assert_eq!(s.dst, Some(v4("127.0.0.2")));
        assert_eq!((s.src_port, s.dst_port, s.ack), (80, 40_000, 5));
        assert_eq!(s.reply(), Some(Reply::Open));
        let rst = reply_v4(
            [127, 0, 0, 1],
            [127, 0, 0, 1],
            80,
            40_000,
            5,
            TCP_RST | TCP_ACK,
        );
        assert_eq!(parse_v4(&rst).unwrap().reply(), Some(Reply::Refused));
        // A bare reset or a bare SYN settles nothing.
        let bare = reply_v4([127, 0, 0, 1], [127, 0, 0, 1], 80, 40_000, 5, TCP_RST);
        assert_eq!(parse_v4(&bare).unwrap().reply(), None);
        let syn = reply_v4([127, 0, 0, 1], [127, 0, 0, 1], 80, 40_000, 5, TCP_SYN);
        assert_eq!(parse_v4(&syn).unwrap().reply(), None);
        // IPv6 raw sockets deliver the TCP header first.
        let from: IpAddr = "::1".parse().unwrap();
        let s = parse_v6(&p[20..], from).unwrap();
        assert_eq!(
            (s.src, s.dst, s.src_port, s.dst_port),
            (from, None, 80, 40_000)
        );
    }

    #[test]
    fn short_and_malformed_packets_are_ignored() {
        let good = reply_v4(
            [127, 0, 0, 1],
            [127, 0, 0, 1],
            80,
            40_000,
            5,
            TCP_SYN | TCP_ACK,
        );
        for n in 0..40 {
            assert_eq!(parse_v4(&good[..n]), None, "truncated to {n}");
        }
        let mut bad = good.clone();
        bad[0] = 0x65; // IPv6 version nibble
        assert_eq!(parse_v4(&bad), None);
        let mut bad = good.clone();
        bad[0] = 0x44; // IHL 16 bytes
        assert_eq!(parse_v4(&bad), None);
        let mut bad = good.clone();
        bad[0] = 0x4f; // IHL 60 bytes, past the end
        assert_eq!(parse_v4(&bad), None);
        let mut bad = good.clone();
        bad[9] = 17; // UDP
        assert_eq!(parse_v4(&bad), None);
        let mut bad = good.clone();
        bad[7] = 1; // a later fragment
        assert_eq!(parse_v4(&bad), None);
        let mut bad = good.clone();
        bad[32] = 4 << 4; // TCP data offset below 20 bytes
        assert_eq!(parse_v4(&bad), None);
        for n in 0..20 {
            assert_eq!(parse_v6(&good[20..20 + n], v4("::1")), None);
        }
    }

    /// An engine-less `Shared` for dispatch tests: only the table matters.
    fn table_with(key: Key, ack: u32, local: IpAddr) -> Mutex<FastMap<Key, Waiter>> {
        let mut t = FastMap::default();
        t.insert(
            key,
            Waiter {
                ack,
                local,
                reply: None,
                waker: None,
            },
        );
        Mutex::new(t)
    }

    #[tokio::test]
    async fn dispatch_matches_port_address_and_ack_only() {
        let shared = Shared {
            v6: false,
            sockets: Mutex::new(FastMap::default()),
            table: table_with(
                Key {
                    local_port: 40_000,
                    remote: v4("127.0.0.1"),
                    remote_port: 80,
                },
                101,
                v4("127.0.0.2"),
            ),
            ports: vec![40_000],
            _reserved: Vec::new(),
            cursor: AtomicUsize::new(0),
            routes: Mutex::new(FastMap::default()),
            factory: SocketFactory::host(),
        };
        let seg = |src: [u8; 4], dst: [u8; 4], sport, dport, ack, flags| {
            parse_v4(&reply_v4(src, dst, sport, dport, ack, flags)).unwrap()
        };
        let mine = Key {
            local_port: 40_000,
            remote: v4("127.0.0.1"),
            remote_port: 80,
        };
        let sa = TCP_SYN | TCP_ACK;
        let (l, r) = ([127, 0, 0, 2], [127, 0, 0, 1]);
        // Wrong ack, wrong remote port, wrong local port, wrong remote or local address.
        for s in [
            seg(r, l, 80, 40_000, 100, sa),
            seg(r, l, 81, 40_000, 101, sa),
            seg(r, l, 80, 40_001, 101, sa),
            seg([127, 0, 0, 3], l, 80, 40_000, 101, sa),
            seg(r, [127, 0, 0, 9], 80, 40_000, 101, sa),
        ] {
            assert_eq!(shared.dispatch(&s, Some(&mine)), None, "{s:?}");
        }
        assert!(lock(&shared.table)[&mine].reply.is_none());
        // The right one settles it, once.
        let ok = seg(r, l, 80, 40_000, 101, sa);
        assert_eq!(shared.dispatch(&ok, Some(&mine)), Some(Reply::Open));
        let rst = seg(r, l, 80, 40_000, 101, TCP_RST | TCP_ACK);
        assert_eq!(shared.dispatch(&rst, Some(&mine)), None);
        assert_eq!(lock(&shared.table)[&mine].reply, Some(Reply::Open));
    }

    #[test]
    fn mapped_targets_are_probed_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:80".parse().unwrap());
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
