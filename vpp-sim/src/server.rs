//! The binary API socket server: VPP's `socksvr` framing, the `sockclnt_create` handshake, the
//! handlers of the messages we model, and the fault knobs of [`SimHandle`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use vpp_binapi::api::{ip, ip_types, lb as api, lb_types, memclnt, vlib, vpe};
use vpp_binapi::codec::{self, DynMessage, HeaderKind, Message};

use crate::lb::{AsDumpFilter, AsView, LbFlavor, LbModel, VipKey, VipSpec, VipView};
use crate::msgtable::MsgTable;
use crate::stats::{EntryIndex, LbCounter, ROUTE_TO, SegmentConfig, StatsListener, StatsSegment};

/// Length of the socket frame header (`msgbuf_t`).
pub const FRAME_HEADER_LEN: usize = 16;
/// Frames longer than this make the simulator drop the connection (VPP has no limit; we bound
/// memory per client).
pub const MAX_FRAME_LEN: usize = 64 << 20;
/// Fixed id of `sockclnt_create`.
pub const SOCKCLNT_CREATE_ID: u16 = 15;

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Binding the API socket failed.
    #[error("binding api socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Starting the stats segment or its socket failed.
    #[error("starting stats server on {path}: {reason}")]
    Stats {
        /// The stats socket path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Path of the binary API socket (`api.sock`).
    pub api_socket: PathBuf,
    /// Path of the stats socket (`stats.sock`), if the stats server should run.
    pub stats_socket: Option<PathBuf>,
    /// How often the lb garbage collection runs (VPP: `LB_GARBAGE_RUN`, 60 s).
    pub gc_interval: Duration,
    /// Version string reported by `show_version` and `show version`.
    pub version: String,
    /// `vpe_pid` reported by `control_ping_reply`.
    pub pid: u32,
    /// Which VPP generation's lb plugin (message set, wire bugs, Maglev variant) to reproduce.
    pub lb_flavor: LbFlavor,
}

impl SimConfig {
    /// Defaults for an API socket at `api_socket` and no stats socket.
    pub fn new(api_socket: impl Into<PathBuf>) -> Self {
        Self {
            api_socket: api_socket.into(),
            stats_socket: None,
            gc_interval: Duration::from_secs(u64::from(crate::lb::GARBAGE_RUN_SECS)),
            version: "26.10-rc0~sim".to_owned(),
            pid: std::process::id(),
            lb_flavor: LbFlavor::Master,
        }
    }
}

/// One mutating request the simulator received (lb configuration calls).
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// Order of arrival, from 0, across connections (reset by [`SimHandle::clear_journal`]).
    pub seq: u64,
    /// Connection number (from 1, in accept order).
    pub connection: u64,
    /// The message name, e.g. `lb_add_del_as_v2`.
    pub name: &'static str,
    /// The decoded request; downcast with `message.as_any().downcast_ref::<T>()`.
    pub message: Arc<dyn DynMessage>,
    /// The retval answered.
    pub retval: i32,
}

impl fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} -> {}: {:?}",
            self.seq, self.name, self.retval, self.message
        )
    }
}

/// Injected by tests into every open connection.
#[derive(Debug)]
enum Out {
    /// A payload; the writer adds the 16-byte header.
    Frame(Vec<u8>),
    /// Raw bytes written as they are (may break the framing on purpose).
    Raw(Vec<u8>),
}

#[derive(Debug, Default)]
struct Faults {
    reply_delay: Option<Duration>,
    drop_after_received: Option<u64>,
    drop_after_sent: Option<u64>,
    forced: HashMap<String, (i32, Option<u32>)>,
}

#[derive(Debug)]
struct Routes {
    by_prefix: BTreeMap<(IpAddr, u8), u32>,
    free: Vec<u32>,
    next: u32,
}

impl Routes {
    /// Stats indices below this belong to the routes a fresh VPP already has.
    const FIRST: u32 = 16;

    fn new() -> Self {
        Self {
            by_prefix: BTreeMap::new(),
            free: Vec::new(),
            next: Self::FIRST,
        }
    }

    /// Keeps one FIB entry per prefix of an in-use VIP, as `lb_vip_add_adjacency` does.
    fn sync(&mut self, vips: &[VipView]) {
        let want: std::collections::BTreeSet<(IpAddr, u8)> = vips
            .iter()
            .filter(|v| v.used)
            .map(|v| (v.prefix, v.plen))
            .collect();
        let gone: Vec<_> = self
            .by_prefix
            .keys()
            .filter(|k| !want.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(i) = self.by_prefix.remove(&k) {
                self.free.push(i);
            }
        }
        for k in want {
            if !self.by_prefix.contains_key(&k) {
                let i = self.free.pop().unwrap_or_else(|| {
                    self.next += 1;
                    self.next - 1
                });
                self.by_prefix.insert(k, i);
            }
        }
    }
}

#[derive(Debug)]
struct State {
    lb: LbModel,
    boot: Instant,
    boot_count: u64,
    routes: Routes,
    registrations: Vec<bool>,
}

impl State {
    fn new(boot_count: u64, flavor: LbFlavor) -> Self {
        Self {
            lb: LbModel::with_flavor(flavor),
            boot: Instant::now(),
            boot_count,
            routes: Routes::new(),
            // Registration 0 is never handed out: VPP's first socket client gets 0x80000001.
            registrations: vec![true],
        }
    }

    fn now(&self) -> u32 {
        u32::try_from(self.boot.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn register(&mut self) -> u32 {
        let slot = match self.registrations.iter().position(|used| !used) {
            Some(i) => {
                self.registrations[i] = true;
                i
            }
            None => {
                self.registrations.push(true);
                self.registrations.len() - 1
            }
        };
        0x8000_0000 | u32::try_from(slot).unwrap_or(0x7fff_ffff)
    }

    fn unregister(&mut self, index: u32) {
        if let Some(used) = self.registrations.get_mut((index & 0x7fff_ffff) as usize) {
            *used = false;
        }
    }
}

struct Inner {
    cfg: SimConfig,
    table: MsgTable,
    state: Mutex<State>,
    faults: Mutex<Faults>,
    journal: Mutex<Vec<JournalEntry>>,
    journal_seq: AtomicU64,
    conns: Mutex<HashMap<u64, mpsc::UnboundedSender<Out>>>,
    next_conn: AtomicU64,
    /// Bumped on restart: every connection of an older generation closes.
    generation: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    hooks: Mutex<Vec<LbHook>>,
    stats: Mutex<Option<StatsRt>>,
}

/// A callback run after every lb state change.
type LbHook = Box<dyn Fn(&LbModel) + Send>;

/// The running stats segment and its socket task.
struct StatsRt {
    segment: Arc<StatsSegment>,
    task: tokio::task::JoinHandle<()>,
    /// Length of the lb counter vectors (0 before the first VIP).
    lb_len: usize,
    /// Route stats indices already zeroed in `/net/route/to`.
    routes: std::collections::BTreeSet<u32>,
    /// Length of the `/net/route/to` vector (empty in a fresh segment).
    route_len: usize,
}

impl StatsRt {
    fn start(path: &Path) -> Result<Self, SimError> {
        let err = |e: crate::stats::StatsSimError| SimError::Stats {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let segment =
            Arc::new(StatsSegment::with_standard_entries(SegmentConfig::default()).map_err(err)?);
        let listener = StatsListener::bind(path).map_err(err)?;
        let seg = segment.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = listener.run(seg).await {
                tracing::warn!(event = "sim_stats_stopped", error = %e);
            }
        });
        Ok(Self {
            segment,
            task,
            lb_len: 0,
            routes: std::collections::BTreeSet::new(),
            route_len: 0,
        })
    }

    /// Brings the segment in step with the model: lb counters (created with the first VIP,
    /// grown and zeroed per new pool slot) and the `/net/route/to` vector.
    fn sync(&mut self, lb: &LbModel, routes: &Routes) -> Result<(), crate::stats::StatsSimError> {
        let seg = &self.segment;
        for vi in lb.vip_indices() {
            let i = vi as usize;
            if i >= self.lb_len {
                seg.lb_vip_created(vi)?;
                self.lb_len = i + 1;
            }
            if let Some(values) = lb.counters(vi) {
                for (counter, value) in LbCounter::ALL.iter().zip(values) {
                    if let Some(entry) = seg.entry(counter.name()) {
                        seg.set_simple(entry, 0, i, value)?;
                    }
                }
            }
        }
        let route_entry: Option<EntryIndex> = seg.entry(ROUTE_TO);
        if let Some(entry) = route_entry {
            let need = routes
                .by_prefix
                .values()
                .max()
                .map_or(0, |m| *m as usize + 1);
            if need > self.route_len {
                seg.resize_counter(entry, need)?;
                self.route_len = need;
            }
            for &ri in routes.by_prefix.values() {
                if self.routes.insert(ri) {
                    seg.set_combined(entry, 0, ri as usize, 0, 0)?;
                }
            }
            self.routes
                .retain(|r| routes.by_prefix.values().any(|v| v == r));
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The simulator entry point.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds the API socket (removing a stale socket file first) and starts serving on the
    /// current tokio runtime. The returned handle controls the simulator; dropping it does not
    /// stop it (call [`SimHandle::shutdown`]).
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
        let path = cfg.api_socket.clone();
        if path.exists() {
            let _ = std::fs::remove_file(&path);
        }
        let listener = UnixListener::bind(&path).map_err(|source| SimError::Bind {
            path: path.clone(),
            source,
        })?;
        let stats = match &cfg.stats_socket {
            Some(p) => Some(StatsRt::start(p)?),
            None => None,
        };
        let flavor = cfg.lb_flavor;
        let (generation, _) = watch::channel(0);
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            cfg,
            table: MsgTable::build(flavor),
            state: Mutex::new(State::new(1, flavor)),
            faults: Mutex::new(Faults::default()),
            journal: Mutex::new(Vec::new()),
            journal_seq: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            generation,
            shutdown,
            hooks: Mutex::new(Vec::new()),
            stats: Mutex::new(stats),
        });
        let handle = SimHandle { inner };
        tokio::spawn(accept_loop(handle.clone(), listener));
        tokio::spawn(gc_loop(handle.clone()));
        tracing::info!(event = "sim_started", api_socket = %path.display());
        Ok(handle)
    }
}

async fn accept_loop(sim: SimHandle, listener: UnixListener) {
    let mut shutdown = sim.inner.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let id = sim.inner.next_conn.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(serve_connection(sim.clone(), stream, id));
                }
                Err(e) => {
                    tracing::warn!(event = "sim_accept_failed", error = %e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&sim.inner.cfg.api_socket);
}

async fn gc_loop(sim: SimHandle) {
    let mut shutdown = sim.inner.shutdown.subscribe();
    let period = sim.inner.cfg.gc_interval.max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let freed = sim.run_gc(false);
                if !freed.is_empty() {
                    tracing::debug!(event = "sim_gc", freed = ?freed);
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Per-connection context.
struct Conn {
    id: u64,
    client_index: u32,
    out: mpsc::UnboundedSender<Out>,
    close: bool,
}

async fn serve_connection(sim: SimHandle, stream: UnixStream, id: u64) {
    let (client_index, boot) = {
        let mut st = lock(&sim.inner.state);
        (st.register(), st.boot_count)
    };
    let (tx, rx) = mpsc::unbounded_channel();
    lock(&sim.inner.conns).insert(id, tx.clone());
    let (mut rd, wr) = stream.into_split();
    let (closed_tx, mut closed_rx) = watch::channel(false);
    let writer = tokio::spawn(write_loop(sim.clone(), wr, rx, closed_tx));
    let mut generation = sim.inner.generation.subscribe();
    let mut shutdown = sim.inner.shutdown.subscribe();
    let mut conn = Conn {
        id,
        client_index,
        out: tx,
        close: false,
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    tracing::debug!(event = "sim_conn_open", conn = id, client_index);
    'outer: loop {
        while buf.len() >= FRAME_HEADER_LEN {
            let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
            if len > MAX_FRAME_LEN {
                tracing::warn!(event = "sim_frame_too_long", conn = id, len);
                break 'outer;
            }
            if buf.len() < FRAME_HEADER_LEN + len {
                // Grow towards the announced length in steps, not all at once.
                buf.reserve((FRAME_HEADER_LEN + len - buf.len()).min(1 << 20));
                break;
            }
            buf.advance(FRAME_HEADER_LEN);
            let payload = buf.split_to(len);
            if sim.count_received() {
                tracing::info!(event = "sim_fault_drop_received", conn = id);
                break 'outer;
            }
            let delay = lock(&sim.inner.faults).reply_delay;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
                // A restart or shutdown during the delay: the request dies with the old VPP.
                if generation.has_changed().unwrap_or(true)
                    || shutdown.has_changed().unwrap_or(true)
                {
                    break 'outer;
                }
            }
            sim.handle(&mut conn, &payload);
            if conn.close {
                break 'outer;
            }
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = closed_rx.changed() => break,
            _ = generation.changed() => break,
            _ = shutdown.changed() => break,
        }
    }
    lock(&sim.inner.conns).remove(&id);
    drop(conn);
    // Let the writer drain what was queued (replies before a sockclnt_delete close).
    let _ = writer.await;
    {
        // After a restart the registration belongs to a VPP that no longer exists.
        let mut st = lock(&sim.inner.state);
        if st.boot_count == boot {
            st.unregister(client_index);
        }
    }
    tracing::debug!(event = "sim_conn_closed", conn = id);
}

async fn write_loop(
    sim: SimHandle,
    mut wr: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    closed: watch::Sender<bool>,
) {
    let mut out = Vec::with_capacity(64 * 1024);
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Out::Frame(p) => {
                    out.extend_from_slice(&[0u8; 8]);
                    out.extend_from_slice(
                        &u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes(),
                    );
                    out.extend_from_slice(&[0u8; 4]);
                    out.extend_from_slice(&p);
                    if sim.count_sent() {
                        let _ = wr.write_all(&out).await;
                        tracing::info!(event = "sim_fault_drop_sent");
                        break 'outer;
                    }
                }
                Out::Raw(b) => out.extend_from_slice(&b),
            }
            if out.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if wr.write_all(&out).await.is_err() {
            break;
        }
        out.clear();
    }
    let _ = wr.shutdown().await;
    let _ = closed.send(true);
}

/// Controls a running simulator: state access, fault knobs and the request journal.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("api_socket", &self.inner.cfg.api_socket)
            .finish()
    }
}

impl SimHandle {
    /// The API socket path.
    pub fn api_socket(&self) -> &Path {
        &self.inner.cfg.api_socket
    }

    /// The stats socket path, if configured.
    pub fn stats_socket(&self) -> Option<&Path> {
        self.inner.cfg.stats_socket.as_deref()
    }

    /// Stops accepting, closes every connection and removes the socket file.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        if let Some(rt) = lock(&self.inner.stats).take() {
            rt.task.abort();
        }
    }

    /// The stats segment currently served on the stats socket, if any (a new one after each
    /// [`SimHandle::restart`]).
    pub fn stats_segment(&self) -> Option<Arc<StatsSegment>> {
        lock(&self.inner.stats)
            .as_ref()
            .map(|rt| rt.segment.clone())
    }

    /// The id the simulator assigned to a message, by `name_crc`.
    pub fn message_id(&self, name_crc: &str) -> Option<u16> {
        self.inner.table.id_of_name_crc(name_crc)
    }

    /// Number of open API connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    /// Simulated VPP uptime in seconds (VPP's `vlib_time_now`).
    pub fn uptime_secs(&self) -> u32 {
        lock(&self.inner.state).now()
    }

    /// How many times the simulated VPP has booted (1 at start, +1 per [`SimHandle::restart`]).
    pub fn boot_count(&self) -> u64 {
        lock(&self.inner.state).boot_count
    }

    /// Runs `f` on the lb model (read-only).
    pub fn with_lb<R>(&self, f: impl FnOnce(&LbModel) -> R) -> R {
        f(&lock(&self.inner.state).lb)
    }

    /// Adds `by` to counter `counter` (0..4, see [`crate::lb::VIP_COUNTER_NAMES`]) of the VIP
    /// at pool index `vip_index`, as the dataplane would. False if there is no such VIP.
    pub fn bump_vip_counter(&self, vip_index: u32, counter: usize, by: u64) -> bool {
        let ok = lock(&self.inner.state)
            .lb
            .bump_counter(vip_index, counter, by);
        self.notify_hooks();
        ok
    }

    /// Runs the lb garbage collection now. With `force`, unused ASes are freed regardless of
    /// their age. Returns the pool indices of the VIPs freed.
    pub fn collect_garbage(&self, force: bool) -> Vec<u32> {
        self.run_gc(force)
    }

    fn run_gc(&self, force: bool) -> Vec<u32> {
        let freed = {
            let mut st = lock(&self.inner.state);
            let now = st.now();
            st.lb.collect_garbage(now, force)
        };
        if !freed.is_empty() {
            self.notify_hooks();
        }
        freed
    }

    /// Registers a callback run (with the lb model) after every change of lb state, restarts
    /// included, and once right away. It runs under the simulator's state lock: it must not call
    /// back into this handle.
    pub fn on_lb_change(&self, f: impl Fn(&LbModel) + Send + 'static) {
        let st = lock(&self.inner.state);
        f(&st.lb);
        lock(&self.inner.hooks).push(Box::new(f));
    }

    /// The FIB stats index (`/net/route/to`) of the route for a VIP prefix, if installed.
    pub fn route_stats_index(&self, prefix: IpAddr, plen: u8) -> Option<u32> {
        lock(&self.inner.state)
            .routes
            .by_prefix
            .get(&(prefix, plen))
            .copied()
    }

    /// Adds packets and bytes to the `/net/route/to` counter of a VIP prefix's route, as
    /// forwarding would. False when the route or the stats segment does not exist.
    pub fn bump_route_counter(&self, prefix: IpAddr, plen: u8, packets: u64, bytes: u64) -> bool {
        let Some(index) = self.route_stats_index(prefix, plen) else {
            return false;
        };
        let stats = lock(&self.inner.stats);
        let Some(rt) = stats.as_ref() else {
            return false;
        };
        rt.segment.entry(ROUTE_TO).is_some_and(|e| {
            rt.segment
                .add_combined(e, 0, index as usize, packets, bytes)
                .is_ok()
        })
    }

    fn notify_hooks(&self) {
        let st = lock(&self.inner.state);
        if let Some(rt) = lock(&self.inner.stats).as_mut()
            && let Err(e) = rt.sync(&st.lb, &st.routes)
        {
            tracing::warn!(event = "sim_stats_sync_failed", error = %e);
        }
        for h in lock(&self.inner.hooks).iter() {
            h(&st.lb);
        }
    }

    /// Delays the handling of every request by `delay` (`None` to stop).
    pub fn set_reply_delay(&self, delay: Option<Duration>) {
        lock(&self.inner.faults).reply_delay = delay;
    }

    /// Closes the connection that receives the `n`-th request from now (counted across
    /// connections), without handling it. `n = 1` drops on the next request.
    pub fn drop_after_received(&self, n: u64) {
        lock(&self.inner.faults).drop_after_received = Some(n);
    }

    /// Closes a connection right after the simulator has sent the `n`-th frame from now, e.g.
    /// in the middle of a dump.
    pub fn drop_after_sent(&self, n: u64) {
        lock(&self.inner.faults).drop_after_sent = Some(n);
    }

    /// Answers the next `times` requests named `name` (every one if `None`) with `retval`
    /// instead of handling them. Dumps are not affected.
    pub fn force_retval(&self, name: &str, retval: i32, times: Option<u32>) {
        lock(&self.inner.faults)
            .forced
            .insert(name.to_owned(), (retval, times));
    }

    /// Clears every fault knob.
    pub fn clear_faults(&self) {
        *lock(&self.inner.faults) = Faults::default();
    }

    /// Sends a frame (the 16-byte header is added) with this payload to every connection.
    pub fn inject_frame(&self, payload: Vec<u8>) {
        for tx in lock(&self.inner.conns).values() {
            let _ = tx.send(Out::Frame(payload.clone()));
        }
    }

    /// Writes raw bytes (no header added) to every connection.
    pub fn inject_raw(&self, bytes: Vec<u8>) {
        for tx in lock(&self.inner.conns).values() {
            let _ = tx.send(Out::Raw(bytes.clone()));
        }
    }

    /// Sends a well-framed message with an id no message has (0xffff) and junk bytes to every
    /// connection; a client must skip it.
    pub fn send_garbage_frame(&self) {
        self.inject_frame(vec![0xff, 0xff, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]);
    }

    /// Simulates a VPP restart: closes every connection and forgets all state (lb model,
    /// registrations); uptime starts again from 0 and the stats socket serves a fresh segment.
    /// The message table stays the same.
    ///
    /// # Errors
    /// When the new stats segment or socket cannot be created.
    pub async fn restart(&self) -> Result<(), SimError> {
        {
            let mut st = lock(&self.inner.state);
            let boots = st.boot_count + 1;
            *st = State::new(boots, self.inner.cfg.lb_flavor);
        }
        self.inner.generation.send_modify(|g| *g += 1);
        let old = lock(&self.inner.stats).take();
        if let Some(old) = old {
            old.task.abort();
            // The listener unlinks its socket when dropped: wait for that before rebinding.
            let _ = old.task.await;
            if let Some(path) = &self.inner.cfg.stats_socket {
                *lock(&self.inner.stats) = Some(StatsRt::start(path)?);
            }
        }
        self.notify_hooks();
        tracing::info!(event = "sim_restart");
        Ok(())
    }

    /// Every mutating request received so far, in arrival order.
    pub fn journal(&self) -> Vec<JournalEntry> {
        lock(&self.inner.journal).clone()
    }

    /// Empties the journal.
    pub fn clear_journal(&self) {
        lock(&self.inner.journal).clear();
        self.inner.journal_seq.store(0, Ordering::Relaxed);
    }

    fn count_received(&self) -> bool {
        countdown(&mut lock(&self.inner.faults).drop_after_received)
    }

    fn count_sent(&self) -> bool {
        countdown(&mut lock(&self.inner.faults).drop_after_sent)
    }

    fn forced(&self, name: &str) -> Option<i32> {
        let mut f = lock(&self.inner.faults);
        let (rv, times) = f.forced.get_mut(name)?;
        let rv = *rv;
        match times {
            None => {}
            Some(0) => return None,
            Some(n) => *n -= 1,
        }
        Some(rv)
    }

    fn journal_push(&self, conn: &Conn, name: &'static str, msg: Arc<dyn DynMessage>, retval: i32) {
        let seq = self.inner.journal_seq.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.journal).push(JournalEntry {
            seq,
            connection: conn.id,
            name,
            message: msg,
            retval,
        });
    }

    fn send<R: Message>(&self, conn: &Conn, reply: &R, context: u32) {
        let Some(id) = self.inner.table.id_of_name_crc(R::NAME_CRC) else {
            return;
        };
        let client_index = if R::HEADER == HeaderKind::Request {
            0
        } else {
            conn.client_index
        };
        let bytes = codec::encode_message_to_vec(reply, id, client_index, context);
        let _ = conn.out.send(Out::Frame(bytes));
    }

    /// Handles one request payload; replies go to the connection's writer.
    fn handle(&self, conn: &mut Conn, raw: &[u8]) {
        let Some(id) = codec::read_msg_id(raw) else {
            return;
        };
        if id == SOCKCLNT_CREATE_ID {
            self.sockclnt_create(conn, raw);
            return;
        }
        let Some(info) = self.inner.table.info(id) else {
            tracing::debug!(event = "sim_unknown_msg_id", conn = conn.id, id);
            return;
        };
        if info.header != HeaderKind::Request {
            tracing::debug!(
                event = "sim_not_a_request",
                conn = conn.id,
                name = info.name
            );
            return;
        }
        if codec::read_client_index(raw, HeaderKind::Request) != Some(conn.client_index) {
            tracing::debug!(
                event = "sim_bad_client_index",
                conn = conn.id,
                name = info.name
            );
            return;
        }
        let ctx = codec::read_context(raw, HeaderKind::Request).unwrap_or(0);
        match info.name {
            "control_ping" => self.control_ping(conn, raw, ctx),
            "sockclnt_delete" => self.sockclnt_delete(conn, raw, ctx),
            "memclnt_keepalive" => {
                if decode::<memclnt::MemclntKeepalive>(raw).is_some() {
                    self.send(conn, &memclnt::MemclntKeepaliveReply { retval: 0 }, ctx);
                }
            }
            "api_versions" => self.api_versions(conn, raw, ctx),
            "get_first_msg_id" => self.get_first_msg_id(conn, raw, ctx),
            "show_version" => self.show_version(conn, raw, ctx),
            "cli_inband" => self.cli_inband(conn, raw, ctx),
            "ip_route_lookup" => self.ip_route_lookup(conn, raw, ctx),
            "lb_conf" => self.lb_conf(conn, raw, ctx),
            "lb_conf_get" => self.lb_conf_get(conn, raw, ctx),
            "lb_add_del_vip" => self.lb_add_del_vip(conn, raw, ctx),
            "lb_add_del_vip_v2" => self.lb_add_del_vip_v2(conn, raw, ctx),
            "lb_add_del_as" => self.lb_add_del_as(conn, raw, ctx),
            "lb_add_del_as_v2" => self.lb_add_del_as_v2(conn, raw, ctx),
            "lb_as_set_weight" => self.lb_as_set_weight(conn, raw, ctx),
            "lb_flush_vip" => self.lb_flush_vip(conn, raw, ctx),
            "lb_vip_dump" => self.lb_vip_dump(conn, raw, ctx),
            "lb_as_dump" => self.lb_as_dump(conn, raw, ctx, false),
            "lb_as_v2_dump" => self.lb_as_dump(conn, raw, ctx, true),
            other => tracing::debug!(event = "sim_no_handler", conn = conn.id, name = other),
        }
    }

    fn sockclnt_create(&self, conn: &Conn, raw: &[u8]) {
        let Some((hdr, req)) = decode_any_header::<memclnt::SockclntCreate>(raw) else {
            return;
        };
        let message_table = self
            .inner
            .table
            .entries()
            .map(|(index, name)| memclnt::MessageTableEntry {
                index,
                name: name.to_owned(),
            })
            .collect();
        let reply = memclnt::SockclntCreateReply {
            response: 0,
            index: conn.client_index,
            message_table,
        };
        tracing::debug!(event = "sim_sockclnt_create", conn = conn.id, name = %req.name);
        self.send(conn, &reply, hdr.context.unwrap_or(0));
    }

    fn sockclnt_delete(&self, conn: &mut Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<memclnt::SockclntDelete>(raw) else {
            return;
        };
        let ok = req.index == conn.client_index;
        self.send(
            conn,
            &memclnt::SockclntDeleteReply {
                response: if ok { 1 } else { -1 },
            },
            ctx,
        );
        if ok {
            conn.close = true;
        }
    }

    fn control_ping(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        if decode::<memclnt::ControlPing>(raw).is_none() {
            return;
        }
        let retval = self.forced("control_ping").unwrap_or(0);
        let reply = memclnt::ControlPingReply {
            retval,
            client_index: conn.client_index,
            vpe_pid: self.inner.cfg.pid,
        };
        self.send(conn, &reply, ctx);
    }

    fn api_versions(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        if decode::<memclnt::ApiVersions>(raw).is_none() {
            return;
        }
        let mods: [(&str, &str); 5] = [
            ("memclnt", memclnt::VERSION),
            ("vlib", vlib::VERSION),
            ("vpe", vpe::VERSION),
            ("ip", ip::VERSION),
            ("lb", self.lb_version()),
        ];
        let api_versions = mods
            .iter()
            .map(|(name, v)| {
                let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
                memclnt::ModuleVersion {
                    major: parts.next().unwrap_or(0),
                    minor: parts.next().unwrap_or(0),
                    patch: parts.next().unwrap_or(0),
                    name: (*name).to_owned(),
                }
            })
            .collect();
        self.send(
            conn,
            &memclnt::ApiVersionsReply {
                retval: 0,
                api_versions,
            },
            ctx,
        );
    }

    fn get_first_msg_id(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<memclnt::GetFirstMsgId>(raw) else {
            return;
        };
        let module = req
            .name
            .rsplit_once('_')
            .map_or(req.name.as_str(), |(m, _)| m);
        let first = self
            .inner
            .table
            .first_id_of_module(&req.name)
            .or_else(|| self.inner.table.first_id_of_module(module));
        let reply = match first {
            Some(first_msg_id) => memclnt::GetFirstMsgIdReply {
                retval: 0,
                first_msg_id,
            },
            None => memclnt::GetFirstMsgIdReply {
                retval: -1,
                first_msg_id: u16::MAX,
            },
        };
        self.send(conn, &reply, ctx);
    }

    fn show_version(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        if decode::<vpe::ShowVersion>(raw).is_none() {
            return;
        }
        let reply = vpe::ShowVersionReply {
            retval: self.forced("show_version").unwrap_or(0),
            program: "vpe".to_owned(),
            version: self.inner.cfg.version.clone(),
            build_date: "2026-05-01T00:00:00".to_owned(),
            build_directory: "/vpp-sim".to_owned(),
        };
        self.send(conn, &reply, ctx);
    }

    /// The text `cli_inband` answers for `cmd`.
    fn cli(&self, cmd: &str) -> String {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let st = lock(&self.inner.state);
        match words.as_slice() {
            ["show", "version"] | ["sh", "ver"] => format!(
                "vpp v{} built by sim on vpp-sim at 2026-05-01T00:00:00\n",
                self.inner.cfg.version
            ),
            ["show", "lb", "vips"] => st.lb.show_vips(false),
            ["show", "lb", "vips", "verbose"] => st.lb.show_vips(true),
            ["show", "lb"] => {
                let c = st.lb.conf();
                format!(
                    "lb_main ip4-src-address: {} \n ip6-src-address: {} \n #vips: {}\n #ass: {}\n",
                    c.ip4_src_address,
                    c.ip6_src_address,
                    st.lb.vip_indices().len() + 1,
                    st.lb.as_count()
                )
            }
            [] => String::new(),
            _ => format!("unknown input `{}'\n", cmd.trim()),
        }
    }

    fn cli_inband(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<vlib::CliInband>(raw) else {
            return;
        };
        let reply = match self.forced("cli_inband") {
            Some(retval) => vlib::CliInbandReply {
                retval,
                reply: String::new(),
            },
            None => vlib::CliInbandReply {
                retval: 0,
                reply: self.cli(&req.cmd),
            },
        };
        self.send(conn, &reply, ctx);
    }

    fn ip_route_lookup(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<ip::IpRouteLookup>(raw) else {
            return;
        };
        let addr = from_address(&req.prefix.address);
        let plen = req.prefix.len;
        let found = {
            let st = lock(&self.inner.state);
            if req.table_id != 0 {
                None
            } else if req.exact != 0 {
                st.routes
                    .by_prefix
                    .get(&(addr, plen))
                    .map(|&i| ((addr, plen), i))
            } else {
                st.routes
                    .by_prefix
                    .iter()
                    .filter(|((p, l), _)| contains(*p, *l, addr))
                    .max_by_key(|((_, l), _)| *l)
                    .map(|(k, &i)| (*k, i))
            }
        };
        let reply = match found {
            Some(((p, l), stats_index)) => ip::IpRouteLookupReply {
                retval: 0,
                route: ip::IpRoute {
                    table_id: 0,
                    stats_index,
                    prefix: ip_types::Prefix {
                        address: to_address(p),
                        len: l,
                    },
                    paths: Vec::new(),
                },
            },
            None => ip::IpRouteLookupReply {
                retval: crate::lb::RV_NO_SUCH_ENTRY,
                route: ip::IpRoute::default(),
            },
        };
        self.send(conn, &reply, ctx);
    }

    /// Runs a mutating lb call: forced retval or `op`, journal, reply built by `mk`.
    fn mutate<Q, R>(
        &self,
        conn: &Conn,
        req: Q,
        ctx: u32,
        op: impl FnOnce(&mut LbModel, u32) -> i32,
        mk: impl FnOnce(i32) -> R,
    ) where
        Q: Message,
        R: Message,
    {
        let retval = match self.forced(Q::NAME) {
            Some(rv) => rv,
            None => {
                let mut st = lock(&self.inner.state);
                let now = st.now();
                let rv = op(&mut st.lb, now);
                let vips = st.lb.all_vips();
                st.routes.sync(&vips);
                rv
            }
        };
        tracing::debug!(
            event = "sim_lb_call",
            conn = conn.id,
            name = Q::NAME,
            retval
        );
        self.journal_push(conn, Q::NAME, Arc::new(req), retval);
        self.notify_hooks();
        self.send(conn, &mk(retval), ctx);
    }

    fn lb_conf(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbConf>(raw) else {
            return;
        };
        let (ip4, ip6) = (
            Ipv4Addr::from(req.ip4_src_address.0),
            Ipv6Addr::from(req.ip6_src_address.0),
        );
        let (sticky, timeout) = (req.sticky_buckets_per_core, req.flow_timeout);
        self.mutate(
            conn,
            req,
            ctx,
            |lb, _| rv(lb.set_conf(ip4, ip6, sticky, timeout)),
            |retval| api::LbConfReply { retval },
        );
    }

    fn lb_conf_get(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        if decode::<api::LbConfGet>(raw).is_none() {
            return;
        }
        let c = lock(&self.inner.state).lb.conf();
        let reply = api::LbConfGetReply {
            retval: self.forced("lb_conf_get").unwrap_or(0),
            ip4_src_address: ip_types::Ip4Address(c.ip4_src_address.octets()),
            ip6_src_address: ip_types::Ip6Address(c.ip6_src_address.octets()),
            sticky_buckets_per_core: c.sticky_buckets_per_core,
            flow_timeout: c.flow_timeout,
        };
        self.send(conn, &reply, ctx);
    }

    fn release_2606(&self) -> bool {
        self.inner.cfg.lb_flavor == LbFlavor::Release2606
    }

    fn lb_version(&self) -> &'static str {
        if self.release_2606() {
            "1.1.0"
        } else {
            api::VERSION
        }
    }

    /// The VIP key a handler looks up. 26.06 used `pfx.len` raw (an IPv4 /32 only matches when
    /// the client sends 128); master adds 96 for IPv4.
    fn vip_key(&self, pfx: &ip_types::Prefix, protocol: u8, port: u16) -> VipKey {
        let mut key = vip_key(pfx, protocol, port);
        if self.release_2606() && key.prefix.is_ipv4() {
            key.plen = key.plen.wrapping_sub(96);
        }
        key
    }

    #[allow(clippy::too_many_arguments)]
    fn vip_spec(
        &self,
        pfx: &ip_types::Prefix,
        protocol: u8,
        port: u16,
        encap: lb_types::LbEncapType,
        dscp: u8,
        srv_type: lb_types::LbSrvType,
        target_port: u16,
        len: u32,
        src_ip_sticky: bool,
    ) -> VipSpec {
        VipSpec {
            key: self.vip_key(pfx, protocol, port),
            // 26.06 compared the encap without ntohl: it reads the wire bytes little-endian.
            encap: if self.release_2606() {
                encap.0.swap_bytes()
            } else {
                encap.0
            },
            dscp,
            // VPP copies the u32 into a u8 unconverted: it keeps the first wire byte.
            srv_type: srv_type.0.to_be_bytes()[0],
            target_port,
            new_flows_table_length: len,
            src_ip_sticky,
        }
    }

    /// A VIP added with `new_flows_table_length = 0` makes a real VPP allocate a 2^32-entry
    /// table and die: the simulator restarts, without replying.
    fn crash_on_zero_table(
        &self,
        conn: &mut Conn,
        is_del: bool,
        len: u32,
        name: &'static str,
    ) -> bool {
        if is_del || len != 0 {
            return false;
        }
        tracing::error!(
            event = "sim_vpp_crash",
            conn = conn.id,
            name,
            reason = "new_flows_table_length 0"
        );
        conn.close = true;
        let sim = self.clone();
        tokio::spawn(async move {
            if let Err(e) = sim.restart().await {
                tracing::warn!(event = "sim_restart_failed", error = %e);
            }
        });
        true
    }

    fn lb_add_del_vip(&self, conn: &mut Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbAddDelVip>(raw) else {
            return;
        };
        if self.crash_on_zero_table(
            conn,
            req.is_del,
            req.new_flows_table_length,
            api::LbAddDelVip::NAME,
        ) {
            return;
        }
        let spec = self.vip_spec(
            &req.pfx,
            req.protocol,
            req.port,
            req.encap,
            req.dscp,
            req.r#type,
            req.target_port,
            req.new_flows_table_length,
            false,
        );
        let is_del = req.is_del;
        self.mutate(
            conn,
            req,
            ctx,
            |lb, now| vip_op(lb, &spec, is_del, now),
            |retval| api::LbAddDelVipReply { retval },
        );
    }

    fn lb_add_del_vip_v2(&self, conn: &mut Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbAddDelVipV2>(raw) else {
            return;
        };
        if self.crash_on_zero_table(
            conn,
            req.is_del,
            req.new_flows_table_length,
            api::LbAddDelVipV2::NAME,
        ) {
            return;
        }
        let spec = self.vip_spec(
            &req.pfx,
            req.protocol,
            req.port,
            req.encap,
            req.dscp,
            req.r#type,
            req.target_port,
            req.new_flows_table_length,
            req.src_ip_sticky,
        );
        let is_del = req.is_del;
        self.mutate(
            conn,
            req,
            ctx,
            |lb, now| vip_op(lb, &spec, is_del, now),
            |retval| api::LbAddDelVipV2Reply { retval },
        );
    }

    fn lb_add_del_as(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbAddDelAs>(raw) else {
            return;
        };
        let key = self.vip_key(&req.pfx, req.protocol, req.port);
        let addr = from_address(&req.as_address);
        let is_del = req.is_del;
        self.mutate(
            conn,
            req,
            ctx,
            |lb, now| as_op(lb, &key, addr, crate::lb::DEFAULT_WEIGHT, is_del, now),
            |retval| api::LbAddDelAsReply { retval },
        );
    }

    fn lb_add_del_as_v2(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbAddDelAsV2>(raw) else {
            return;
        };
        let key = self.vip_key(&req.pfx, req.protocol, req.port);
        let addr = from_address(&req.as_address);
        let (weight, is_del) = (req.weight, req.is_del);
        self.mutate(
            conn,
            req,
            ctx,
            |lb, now| as_op(lb, &key, addr, weight, is_del, now),
            |retval| api::LbAddDelAsV2Reply { retval },
        );
    }

    fn lb_as_set_weight(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbAsSetWeight>(raw) else {
            return;
        };
        let key = self.vip_key(&req.pfx, req.protocol, req.port);
        let addr = from_address(&req.as_address);
        let weight = req.weight;
        self.mutate(
            conn,
            req,
            ctx,
            |lb, _| rv(lb.set_as_weight(&key, addr, weight)),
            |retval| api::LbAsSetWeightReply { retval },
        );
    }

    fn lb_flush_vip(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        let Some(req) = decode::<api::LbFlushVip>(raw) else {
            return;
        };
        let mut key = self.vip_key(&req.pfx, req.protocol, req.port);
        if self.release_2606() {
            // 26.06 copied the address union raw: an IPv4 VIP is never found.
            key.prefix = IpAddr::V6(Ipv6Addr::from(req.pfx.address.un.0));
            key.plen = req.pfx.len;
        }
        self.mutate(
            conn,
            req,
            ctx,
            |lb, _| {
                lb.flush_vip(&key);
                0
            },
            |retval| api::LbFlushVipReply { retval },
        );
    }

    fn lb_vip_dump(&self, conn: &Conn, raw: &[u8], ctx: u32) {
        // VPP ignores every filter field.
        if decode::<api::LbVipDump>(raw).is_none() {
            return;
        }
        let old = self.release_2606();
        let vips = {
            let st = lock(&self.inner.state);
            // 26.06 also listed deleted VIPs.
            if old {
                st.lb.all_vips()
            } else {
                st.lb.vip_dump()
            }
        };
        for v in vips {
            if old {
                let mut vip = lb_vip(&v);
                if v.prefix.is_ipv4() {
                    vip.pfx.len = v.plen.wrapping_add(96);
                }
                // htonl(protocol) truncated to u8.
                vip.protocol = ip_types::IpProto(0);
                let d = api::LbVipDetails {
                    vip,
                    // htonl() of the internal lb_vip_type, not the API enum.
                    encap: lb_types::LbEncapType(v.vip_type.internal_value()),
                    dscp: ip_types::IpDscp(v.dscp),
                    srv_type: lb_types::LbSrvType(u32::from(v.srv_type) << 24),
                    target_port: v.target_port.swap_bytes(),
                    // htonl(len) truncated to u16, stored without htons.
                    flow_table_length: (v.table_len.swap_bytes() as u16).swap_bytes(),
                };
                self.send(conn, &d, ctx);
                continue;
            }
            let d = api::LbVipDetails {
                vip: lb_vip(&v),
                encap: lb_types::LbEncapType(v.vip_type.api_encap()),
                dscp: ip_types::IpDscp(v.dscp),
                // A u8 placed in the u32 without htonl: it lands in the first wire byte.
                srv_type: lb_types::LbSrvType(u32::from(v.srv_type) << 24),
                // htons() of a value already in network order: byte-swapped on the wire.
                target_port: v.target_port.swap_bytes(),
                flow_table_length: v.table_len as u16,
            };
            self.send(conn, &d, ctx);
        }
    }

    fn lb_as_dump(&self, conn: &Conn, raw: &[u8], ctx: u32, v2: bool) {
        let (pfx, protocol, port) = if v2 {
            let Some(r) = decode::<api::LbAsV2Dump>(raw) else {
                return;
            };
            (r.pfx, r.protocol, r.port)
        } else {
            let Some(r) = decode::<api::LbAsDump>(raw) else {
                return;
            };
            (r.pfx, r.protocol, r.port)
        };
        let filter = AsDumpFilter {
            raw_address: pfx.address.un.0,
            protocol,
            // 26.06 compared the network-order port with the host-order one.
            port: if self.release_2606() {
                port.swap_bytes()
            } else {
                port
            },
        };
        let rows: Vec<AsView> = lock(&self.inner.state).lb.as_dump(Some(&filter));
        for a in rows {
            if v2 {
                let d = api::LbAsV2Details {
                    vip: lb_vip(&a.vip),
                    app_srv: to_address(a.address),
                    flags: a.flags,
                    in_use_since: a.in_use_since,
                    weight: a.weight,
                    num_buckets: a.num_buckets,
                };
                self.send(conn, &d, ctx);
            } else {
                let d = api::LbAsDetails {
                    vip: lb_vip(&a.vip),
                    app_srv: to_address(a.address),
                    flags: a.flags,
                    in_use_since: a.in_use_since,
                };
                self.send(conn, &d, ctx);
            }
        }
    }
}

fn countdown(slot: &mut Option<u64>) -> bool {
    match slot {
        Some(n) if *n <= 1 => {
            *slot = None;
            true
        }
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    }
}

fn rv(r: Result<(), crate::lb::LbError>) -> i32 {
    r.map_or_else(crate::lb::LbError::retval, |()| 0)
}

fn vip_op(lb: &mut LbModel, spec: &VipSpec, is_del: bool, now: u32) -> i32 {
    if is_del {
        rv(lb.del_vip(&spec.key, now).map(|_| ()))
    } else {
        rv(lb.add_vip(spec, now).map(|_| ()))
    }
}

fn as_op(lb: &mut LbModel, key: &VipKey, addr: IpAddr, weight: u8, is_del: bool, now: u32) -> i32 {
    if is_del {
        rv(lb.del_as(key, addr, now))
    } else {
        rv(lb.add_as(key, addr, weight, now).map(|_| ()))
    }
}

/// Decodes a request leniently (VPP accepts longer messages); `None` (dropped) when short.
fn decode<M: Message>(raw: &[u8]) -> Option<M> {
    decode_any_header::<M>(raw).map(|(_, m)| m)
}

fn decode_any_header<M: Message>(raw: &[u8]) -> Option<(codec::Header, M)> {
    match codec::decode_message_lenient::<M>(raw) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(event = "sim_short_message", name = M::NAME, error = %e);
            None
        }
    }
}

/// `ip_address_decode`: any family other than IPv4 reads the union as IPv6.
fn from_address(a: &ip_types::Address) -> IpAddr {
    if a.af == ip_types::AddressFamily::ADDRESS_IP4 {
        let b = a.un.0;
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(a.un.0))
    }
}

fn to_address(a: IpAddr) -> ip_types::Address {
    let mut un = [0u8; 16];
    match a {
        IpAddr::V4(v4) => {
            un[..4].copy_from_slice(&v4.octets());
            ip_types::Address {
                af: ip_types::AddressFamily::ADDRESS_IP4,
                un: ip_types::AddressUnion(un),
            }
        }
        IpAddr::V6(v6) => ip_types::Address {
            af: ip_types::AddressFamily::ADDRESS_IP6,
            un: ip_types::AddressUnion(v6.octets()),
        },
    }
}

fn vip_key(pfx: &ip_types::Prefix, protocol: u8, port: u16) -> VipKey {
    VipKey {
        prefix: from_address(&pfx.address),
        plen: pfx.len,
        protocol,
        port,
    }
}

fn lb_vip(v: &VipView) -> lb_types::LbVip {
    lb_types::LbVip {
        pfx: ip_types::Prefix {
            address: to_address(v.prefix),
            len: v.plen,
        },
        protocol: ip_types::IpProto(v.protocol),
        port: v.port,
    }
}

fn contains(prefix: IpAddr, plen: u8, addr: IpAddr) -> bool {
    match (prefix, addr) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let bits = u32::from(plen.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let bits = u32::from(plen.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}
