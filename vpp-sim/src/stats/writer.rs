//! The segment writer: VPP's stats segment layout in a memfd, with VPP's writer protocol.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{Ordering, fence};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::heap::{Block, Heap};
use super::shm::SharedRegion;

const PAGE: usize = 4096;
const OFF_VERSION: usize = 0;
const OFF_BASE: usize = 8;
const OFF_EPOCH: usize = 16;
const OFF_IN_PROGRESS: usize = 24;
const OFF_DIRECTORY: usize = 32;
const ENTRY_SIZE: usize = 144;
const NAME_LEN: usize = 128;
/// `log2_align` written in vector headers: 8 bytes for plain vectors, 64 for counter rows
/// (VPP validates counter vectors cache-line aligned).
const LOG2_ALIGN_WORD: u8 = 3;
const LOG2_ALIGN_LINE: u8 = 6;

/// Directory type codes, numbering used since VPP 22.06.
mod kind {
    pub(super) const SCALAR: u32 = 1;
    pub(super) const SIMPLE: u32 = 2;
    pub(super) const COMBINED: u32 = 3;
    pub(super) const NAME_VECTOR: u32 = 4;
    pub(super) const EMPTY: u32 = 5;
    pub(super) const SYMLINK: u32 = 6;
    pub(super) const GAUGE: u32 = 9;
}

/// Errors of the simulated stats segment.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StatsSimError {
    /// A system call failed.
    #[error("stats segment: {op} failed: {source}")]
    Io {
        /// The operation (`"memfd_create"`, `"bind"`, `"accept"`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The segment has no room left for an allocation.
    #[error("stats segment full: cannot allocate {requested} bytes")]
    OutOfSpace {
        /// Bytes requested.
        requested: usize,
    },
    /// The configuration cannot describe a segment.
    #[error("invalid stats segment config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry name VPP could not hold.
    #[error("invalid stats entry name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry with this name already exists.
    #[error("stats entry {name:?} already exists")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// No live entry has this index.
    #[error("no stats entry with index {index}")]
    NoSuchEntry {
        /// The directory index.
        index: u32,
    },
    /// The entry exists but is of another type.
    #[error("stats entry {index} is not a {expected}")]
    WrongType {
        /// The directory index.
        index: u32,
        /// The type the operation needs.
        expected: &'static str,
    },
    /// A thread or object index outside the counter vector.
    #[error("stats entry {index}: thread {thread} / index {object} out of range")]
    OutOfRange {
        /// The directory index.
        index: u32,
        /// The thread.
        thread: usize,
        /// The object index.
        object: usize,
    },
}

/// A directory index of an entry in the simulated segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryIndex(pub u32);

/// Size and thread count of a simulated segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Size of the memfd in bytes (VPP's default is 32 MiB; the file is sparse).
    pub size: usize,
    /// Number of VPP threads (main thread plus workers): the outer dimension of counter vectors.
    pub n_threads: usize,
}

impl Default for SegmentConfig {
    /// 32 MiB and a single (main) thread, like a default VPP.
    fn default() -> Self {
        Self {
            size: 32 << 20,
            n_threads: 1,
        }
    }
}

/// The four lb plugin counters (§7.5), registered without a leading `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbCounter {
    /// `"packet from existing sessions"`: sticky-table hit.
    NextPacket,
    /// `"first session packet"`: a new flow assigned from the new-flow table.
    FirstPacket,
    /// `"untracked packet"`: sticky table full, forwarded without tracking.
    UntrackedPacket,
    /// `"no server configured"`: a new flow whose bucket holds no application server.
    NoServer,
}

impl LbCounter {
    /// All four, in `lb_vip_counter_t` order.
    pub const ALL: [Self; 4] = [
        Self::NextPacket,
        Self::FirstPacket,
        Self::UntrackedPacket,
        Self::NoServer,
    ];

    /// The directory name VPP registers.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::NextPacket => "packet from existing sessions",
            Self::FirstPacket => "first session packet",
            Self::UntrackedPacket => "untracked packet",
            Self::NoServer => "no server configured",
        }
    }
}

/// `/sys/boottime`: scalar, unix time of start in whole seconds.
pub const BOOTTIME: &str = "/sys/boottime";
/// `/net/route/to`: combined counters `[thread][load-balance index]`.
pub const ROUTE_TO: &str = "/net/route/to";

#[derive(Debug)]
struct Counters {
    threads: Block,
    rows: Vec<Block>,
    len: usize,
    elem: usize,
}

#[derive(Debug)]
enum Body {
    Empty,
    Value,
    Counters(Counters),
    Names {
        vec: Block,
        strings: Vec<Option<Block>>,
    },
    Symlink,
}

#[derive(Debug)]
struct Meta {
    name: String,
    type_code: u32,
    body: Body,
}

#[derive(Debug)]
struct State {
    heap: Heap,
    dir: Block,
    dir_cap: usize,
    entries: Vec<Meta>,
    free_slots: Vec<usize>,
}

/// A simulated VPP stats segment: the writer side.
///
/// The memfd holds exactly VPP's (22.06+) layout: the shared header at offset 0 (version 2, the
/// base address, epoch, in-progress flag, directory pointer), a heap one page further, the
/// directory vector of 144-byte entries and per-entry data, all pointers stored as addresses in
/// this process's mapping (the base recorded in the header) and every vector preceded by VPP's
/// 8-byte `vec_header_t`.
///
/// Structural changes ([`StatsSegment::update`] and the `add_*` / `resize_*` / `remove_*`
/// helpers) follow VPP's writer protocol: set `in_progress`, mutate, bump `epoch`, clear
/// `in_progress`. Counter and scalar updates are single atomic stores, like VPP's unlocked
/// per-thread increments. All methods take `&self`; share it with an `Arc`.
pub struct StatsSegment {
    region: SharedRegion,
    n_threads: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for StatsSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSegment")
            .field("size", &self.region.len())
            .field("n_threads", &self.n_threads)
            .finish_non_exhaustive()
    }
}

fn vec_header(len: usize, log2_align: u8) -> [u8; 8] {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes();
    // {u32 len; u8 hdr_size; u8 log2_align:7 | default_heap:1; u8 grow_elts; u8 pad}
    [len[0], len[1], len[2], len[3], 0, log2_align, 0, 0]
}

impl StatsSegment {
    /// Creates an empty segment (header and an empty directory; epoch 1).
    ///
    /// # Errors
    ///
    /// [`StatsSimError::InvalidConfig`] for a segment smaller than two pages or no threads,
    /// [`StatsSimError::Io`] when the memfd cannot be created or mapped.
    pub fn new(config: SegmentConfig) -> Result<Self, StatsSimError> {
        if config.size < 4 * PAGE {
            return Err(StatsSimError::InvalidConfig {
                reason: "size must be at least 16 KiB",
            });
        }
        if config.n_threads == 0 || config.n_threads > 1024 {
            return Err(StatsSimError::InvalidConfig {
                reason: "n_threads must be between 1 and 1024",
            });
        }
        let size = config.size & !(PAGE - 1);
        let region = SharedRegion::create(size).map_err(|source| StatsSimError::Io {
            op: "memfd_create",
            source,
        })?;
        // The heap starts one page after the header, and stops a page short of the end so no
        // vector ends exactly at the end of the segment (vpp_papi rejects that).
        let mut heap = Heap::new(PAGE, size - PAGE);
        let dir_cap = 64;
        let dir = heap
            .alloc(dir_cap * ENTRY_SIZE, 64)
            .ok_or(StatsSimError::OutOfSpace {
                requested: dir_cap * ENTRY_SIZE,
            })?;
        region.write_bytes(dir.start, &vec_header(0, LOG2_ALIGN_LINE));
        let base = region.base();
        region.store_u64(OFF_VERSION, 2, Ordering::Relaxed);
        region.store_u64(OFF_BASE, base, Ordering::Relaxed);
        region.store_u64(OFF_IN_PROGRESS, 0, Ordering::Relaxed);
        region.store_u64(
            OFF_DIRECTORY,
            base + (dir.start + 8) as u64,
            Ordering::Relaxed,
        );
        region.store_u64(OFF_EPOCH, 1, Ordering::Release);
        Ok(Self {
            region,
            n_threads: config.n_threads,
            state: Mutex::new(State {
                heap,
                dir,
                dir_cap,
                entries: Vec::new(),
                free_slots: Vec::new(),
            }),
        })
    }

    /// Creates a segment holding what a freshly started VPP has that the simulator models:
    /// [`BOOTTIME`] (now) and an empty [`ROUTE_TO`]. The lb counters appear later, with the first
    /// VIP, through [`StatsSegment::lb_vip_created`].
    ///
    /// # Errors
    ///
    /// As [`StatsSegment::new`].
    pub fn with_standard_entries(config: SegmentConfig) -> Result<Self, StatsSimError> {
        let seg = Self::new(config)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        seg.update(|txn| {
            txn.add_scalar(BOOTTIME, now)?;
            txn.add_combined_counter(ROUTE_TO, 0)
        })?;
        Ok(seg)
    }

    /// The memfd, to pass to readers.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    /// A duplicate of the memfd (what the stats socket sends).
    ///
    /// # Errors
    ///
    /// [`StatsSimError::Io`] when `dup` fails.
    pub fn try_clone_fd(&self) -> Result<OwnedFd, StatsSimError> {
        self.region
            .fd()
            .try_clone_to_owned()
            .map_err(|source| StatsSimError::Io { op: "dup", source })
    }

    /// Size of the segment in bytes.
    #[must_use]
    pub fn size(&self) -> usize {
        self.region.len()
    }

    /// Number of threads (rows of every counter vector).
    #[must_use]
    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// The current epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.region.load_u64(OFF_EPOCH)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` as one structural change: readers see either none or all of it. Sets
    /// `in_progress`, runs `f`, bumps `epoch` and clears `in_progress` (even if `f` fails).
    pub fn update<T>(&self, f: impl FnOnce(&mut SegmentTxn<'_>) -> T) -> T {
        let mut state = self.lock();
        self.region.store_u64(OFF_IN_PROGRESS, 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let out = f(&mut SegmentTxn {
            region: &self.region,
            n_threads: self.n_threads,
            state: &mut state,
        });
        let epoch = self.region.load_u64(OFF_EPOCH);
        self.region
            .store_u64(OFF_EPOCH, epoch.wrapping_add(1), Ordering::Release);
        self.region.store_u64(OFF_IN_PROGRESS, 0, Ordering::Release);
        out
    }

    /// Runs `f` on the segment without the in-progress protocol (counter updates only).
    fn counters<T>(&self, f: impl FnOnce(&mut SegmentTxn<'_>) -> T) -> T {
        let mut state = self.lock();
        f(&mut SegmentTxn {
            region: &self.region,
            n_threads: self.n_threads,
            state: &mut state,
        })
    }

    /// The index of the live entry named `name`.
    #[must_use]
    pub fn entry(&self, name: &str) -> Option<EntryIndex> {
        self.counters(|txn| txn.entry(name))
    }

    /// Adds a scalar entry (a structural change).
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_scalar`].
    pub fn add_scalar(&self, name: &str, value: u64) -> Result<EntryIndex, StatsSimError> {
        self.update(|t| t.add_scalar(name, value))
    }

    /// Adds a gauge entry (a structural change).
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_gauge`].
    pub fn add_gauge(&self, name: &str, value: u64) -> Result<EntryIndex, StatsSimError> {
        self.update(|t| t.add_gauge(name, value))
    }

    /// Adds a simple counter vector of `len` indices per thread, zeroed.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_simple_counter`].
    pub fn add_simple_counter(&self, name: &str, len: usize) -> Result<EntryIndex, StatsSimError> {
        self.update(|t| t.add_simple_counter(name, len))
    }

    /// Adds a combined counter vector of `len` indices per thread, zeroed.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_combined_counter`].
    pub fn add_combined_counter(
        &self,
        name: &str,
        len: usize,
    ) -> Result<EntryIndex, StatsSimError> {
        self.update(|t| t.add_combined_counter(name, len))
    }

    /// Adds a name vector.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_name_vector`].
    pub fn add_name_vector(
        &self,
        name: &str,
        names: &[Option<&str>],
    ) -> Result<EntryIndex, StatsSimError> {
        self.update(|t| t.add_name_vector(name, names))
    }

    /// Sets (or clears) one name of a name vector, growing it as needed.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::set_name`].
    pub fn set_name(
        &self,
        entry: EntryIndex,
        index: usize,
        name: Option<&str>,
    ) -> Result<(), StatsSimError> {
        self.update(|t| t.set_name(entry, index, name))
    }

    /// Adds a symlink to column `column` of a counter vector.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_symlink`].
    pub fn add_symlink(
        &self,
        name: &str,
        target: EntryIndex,
        column: u32,
    ) -> Result<EntryIndex, StatsSimError> {
        self.update(|t| t.add_symlink(name, target, column))
    }

    /// Resizes a counter vector to `len` indices per thread (values kept, new ones zero).
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::resize_counter`].
    pub fn resize_counter(&self, entry: EntryIndex, len: usize) -> Result<(), StatsSimError> {
        self.update(|t| t.resize_counter(entry, len))
    }

    /// Removes an entry; its slot becomes `EMPTY` and is reused.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::remove_entry`].
    pub fn remove_entry(&self, entry: EntryIndex) -> Result<(), StatsSimError> {
        self.update(|t| t.remove_entry(entry))
    }

    /// Sets a scalar or gauge in place (no epoch change, as in VPP).
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::set_value`].
    pub fn set_value(&self, entry: EntryIndex, value: u64) -> Result<(), StatsSimError> {
        self.counters(|t| t.set_value(entry, value))
    }

    /// Sets one simple counter.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::set_simple`].
    pub fn set_simple(
        &self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        value: u64,
    ) -> Result<(), StatsSimError> {
        self.counters(|t| t.set_simple(entry, thread, index, value))
    }

    /// Adds to one simple counter.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_simple`].
    pub fn add_simple(
        &self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        delta: u64,
    ) -> Result<(), StatsSimError> {
        self.counters(|t| t.add_simple(entry, thread, index, delta))
    }

    /// Sets one combined counter.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::set_combined`].
    pub fn set_combined(
        &self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<(), StatsSimError> {
        self.counters(|t| t.set_combined(entry, thread, index, packets, bytes))
    }

    /// Adds packets and bytes to one combined counter.
    ///
    /// # Errors
    ///
    /// See [`SegmentTxn::add_combined`].
    pub fn add_combined(
        &self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<(), StatsSimError> {
        self.counters(|t| t.add_combined(entry, thread, index, packets, bytes))
    }

    /// What `lb_vip_add` does to the stats segment for a VIP created in pool slot `vip_index`:
    /// creates the four lb counters if missing, grows them to cover `vip_index` and zeroes that
    /// index on every thread. Returns the entries in [`LbCounter::ALL`] order.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::OutOfSpace`] when the segment is full.
    pub fn lb_vip_created(&self, vip_index: u32) -> Result<[EntryIndex; 4], StatsSimError> {
        self.update(|txn| {
            let mut out = [EntryIndex(0); 4];
            for (slot, counter) in out.iter_mut().zip(LbCounter::ALL) {
                let entry = match txn.entry(counter.name()) {
                    Some(e) => e,
                    None => txn.add_simple_counter(counter.name(), 0)?,
                };
                let need = vip_index as usize + 1;
                if txn.counter_len(entry)? < need {
                    txn.resize_counter(entry, need)?;
                }
                for thread in 0..txn.n_threads {
                    txn.set_simple(entry, thread, vip_index as usize, 0)?;
                }
                *slot = entry;
            }
            Ok(out)
        })
    }

    /// Adds `delta` to an lb counter of VIP `vip_index` on `thread`.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`] before the first [`StatsSegment::lb_vip_created`], and
    /// [`StatsSimError::OutOfRange`] for an unknown thread or VIP index.
    pub fn lb_count(
        &self,
        counter: LbCounter,
        thread: usize,
        vip_index: u32,
        delta: u64,
    ) -> Result<(), StatsSimError> {
        self.counters(|txn| {
            let entry = txn
                .entry(counter.name())
                .ok_or(StatsSimError::NoSuchEntry { index: u32::MAX })?;
            txn.add_simple(entry, thread, vip_index as usize, delta)
        })
    }
}

/// Access to the segment inside one [`StatsSegment::update`] (or a counter update).
pub struct SegmentTxn<'a> {
    region: &'a SharedRegion,
    n_threads: usize,
    state: &'a mut State,
}

impl std::fmt::Debug for SegmentTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentTxn").finish_non_exhaustive()
    }
}

impl SegmentTxn<'_> {
    fn ptr(&self, off: usize) -> u64 {
        self.region.base() + off as u64
    }

    /// Allocates a vector of `n` elements of `elem` bytes, header written, data zeroed.
    fn alloc_vec(&mut self, n: usize, elem: usize, log2_align: u8) -> Result<Block, StatsSimError> {
        let bytes = n.checked_mul(elem).ok_or(StatsSimError::OutOfSpace {
            requested: usize::MAX,
        })?;
        let block = self
            .state
            .heap
            .alloc(bytes, 1 << log2_align)
            .ok_or(StatsSimError::OutOfSpace { requested: bytes })?;
        self.region
            .write_bytes(block.start, &vec_header(n, log2_align));
        self.region.zero(block.start + 8, block.len - 8);
        Ok(block)
    }

    fn set_vec_len(&self, block: Block, n: usize) {
        self.region
            .store_u32(block.start, u32::try_from(n).unwrap_or(u32::MAX));
    }

    fn meta(&self, entry: EntryIndex) -> Result<&Meta, StatsSimError> {
        self.state
            .entries
            .get(entry.0 as usize)
            .filter(|m| m.type_code != kind::EMPTY)
            .ok_or(StatsSimError::NoSuchEntry { index: entry.0 })
    }

    fn entry_off(&self, slot: usize) -> usize {
        self.state.dir.start + 8 + slot * ENTRY_SIZE
    }

    /// The index of the live entry named `name`.
    #[must_use]
    pub fn entry(&self, name: &str) -> Option<EntryIndex> {
        self.state
            .entries
            .iter()
            .position(|m| m.type_code != kind::EMPTY && m.name == name)
            .map(|i| EntryIndex(i as u32))
    }

    fn write_entry(&self, slot: usize, type_code: u32, value: u64, name: &str) {
        let off = self.entry_off(slot);
        let mut name_bytes = [0u8; NAME_LEN];
        name_bytes[..name.len()].copy_from_slice(name.as_bytes());
        self.region.store_u32(off, type_code);
        self.region.store_u32(off + 4, 0);
        self.region.store_u64(off + 8, value, Ordering::Relaxed);
        self.region.write_bytes(off + 16, &name_bytes);
    }

    /// Claims a directory slot (reusing an `EMPTY` one), growing the directory as needed.
    fn add_entry(
        &mut self,
        name: &str,
        type_code: u32,
        value: u64,
        body: Body,
    ) -> Result<EntryIndex, StatsSimError> {
        let slot = if let Some(slot) = self.state.free_slots.pop() {
            slot
        } else {
            let n = self.state.entries.len();
            if n == self.state.dir_cap {
                let cap = self.state.dir_cap * 2;
                let new = self.alloc_vec(cap, ENTRY_SIZE, LOG2_ALIGN_LINE)?;
                let old = self.state.dir;
                self.region
                    .copy_words(old.start + 8, new.start + 8, n * ENTRY_SIZE);
                self.set_vec_len(new, n);
                self.region
                    .store_u64(OFF_DIRECTORY, self.ptr(new.start + 8), Ordering::Relaxed);
                self.state.dir = new;
                self.state.dir_cap = cap;
                self.state.heap.free(old);
            }
            self.state.entries.push(Meta {
                name: String::new(),
                type_code: kind::EMPTY,
                body: Body::Empty,
            });
            self.set_vec_len(self.state.dir, n + 1);
            n
        };
        self.write_entry(slot, type_code, value, name);
        self.state.entries[slot] = Meta {
            name: name.to_owned(),
            type_code,
            body,
        };
        Ok(EntryIndex(slot as u32))
    }

    fn check_name(&self, name: &str) -> Result<(), StatsSimError> {
        let bad = |reason| StatsSimError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.len() >= NAME_LEN {
            return Err(bad("longer than 127 bytes"));
        }
        if !name.bytes().all(|b| b.is_ascii() && b != 0) {
            return Err(bad("not NUL-free ASCII"));
        }
        if self.entry(name).is_some() {
            return Err(StatsSimError::DuplicateName {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Adds a scalar entry.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::InvalidName`], [`StatsSimError::DuplicateName`] or
    /// [`StatsSimError::OutOfSpace`].
    pub fn add_scalar(&mut self, name: &str, value: u64) -> Result<EntryIndex, StatsSimError> {
        self.check_name(name)?;
        self.add_entry(name, kind::SCALAR, value, Body::Value)
    }

    /// Adds a gauge entry.
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::add_scalar`].
    pub fn add_gauge(&mut self, name: &str, value: u64) -> Result<EntryIndex, StatsSimError> {
        self.check_name(name)?;
        self.add_entry(name, kind::GAUGE, value, Body::Value)
    }

    fn alloc_counters(&mut self, len: usize, elem: usize) -> Result<Counters, StatsSimError> {
        let threads = self.alloc_vec(self.n_threads, 8, LOG2_ALIGN_WORD)?;
        let mut rows = Vec::with_capacity(self.n_threads);
        for t in 0..self.n_threads {
            let row = self.alloc_vec(len, elem, LOG2_ALIGN_LINE)?;
            self.region.store_u64(
                threads.start + 8 + t * 8,
                self.ptr(row.start + 8),
                Ordering::Relaxed,
            );
            rows.push(row);
        }
        Ok(Counters {
            threads,
            rows,
            len,
            elem,
        })
    }

    fn add_counter(
        &mut self,
        name: &str,
        len: usize,
        elem: usize,
        type_code: u32,
    ) -> Result<EntryIndex, StatsSimError> {
        self.check_name(name)?;
        let counters = self.alloc_counters(len, elem)?;
        let value = self.ptr(counters.threads.start + 8);
        self.add_entry(name, type_code, value, Body::Counters(counters))
    }

    /// Adds a simple counter vector, `[n_threads][len]`, zeroed.
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::add_scalar`].
    pub fn add_simple_counter(
        &mut self,
        name: &str,
        len: usize,
    ) -> Result<EntryIndex, StatsSimError> {
        self.add_counter(name, len, 8, kind::SIMPLE)
    }

    /// Adds a combined counter vector, `[n_threads][len]`, zeroed.
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::add_scalar`].
    pub fn add_combined_counter(
        &mut self,
        name: &str,
        len: usize,
    ) -> Result<EntryIndex, StatsSimError> {
        self.add_counter(name, len, 16, kind::COMBINED)
    }

    fn counters_of(&self, entry: EntryIndex) -> Result<&Counters, StatsSimError> {
        match &self.meta(entry)?.body {
            Body::Counters(c) => Ok(c),
            _ => Err(StatsSimError::WrongType {
                index: entry.0,
                expected: "counter vector",
            }),
        }
    }

    /// The per-thread length of a counter vector.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`] or [`StatsSimError::WrongType`].
    pub fn counter_len(&self, entry: EntryIndex) -> Result<usize, StatsSimError> {
        Ok(self.counters_of(entry)?.len)
    }

    /// Resizes a counter vector to `len` per thread; values are kept, new ones are zero.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`], [`StatsSimError::WrongType`] or
    /// [`StatsSimError::OutOfSpace`].
    pub fn resize_counter(&mut self, entry: EntryIndex, len: usize) -> Result<(), StatsSimError> {
        let (old_rows, old_len, elem, threads) = {
            let c = self.counters_of(entry)?;
            (c.rows.clone(), c.len, c.elem, c.threads)
        };
        let mut new_rows = Vec::with_capacity(old_rows.len());
        for (t, old) in old_rows.iter().enumerate() {
            let row = self.alloc_vec(len, elem, LOG2_ALIGN_LINE)?;
            self.region
                .copy_words(old.start + 8, row.start + 8, old_len.min(len) * elem);
            self.region.store_u64(
                threads.start + 8 + t * 8,
                self.ptr(row.start + 8),
                Ordering::Relaxed,
            );
            new_rows.push(row);
        }
        for old in old_rows {
            self.state.heap.free(old);
        }
        if let Some(Meta {
            body: Body::Counters(c),
            ..
        }) = self.state.entries.get_mut(entry.0 as usize)
        {
            c.rows = new_rows;
            c.len = len;
        }
        Ok(())
    }

    fn counter_off(
        &self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        elem: usize,
    ) -> Result<usize, StatsSimError> {
        let c = self.counters_of(entry)?;
        if c.elem != elem {
            return Err(StatsSimError::WrongType {
                index: entry.0,
                expected: if elem == 8 {
                    "simple counter vector"
                } else {
                    "combined counter vector"
                },
            });
        }
        let row =
            c.rows
                .get(thread)
                .filter(|_| index < c.len)
                .ok_or(StatsSimError::OutOfRange {
                    index: entry.0,
                    thread,
                    object: index,
                })?;
        Ok(row.start + 8 + index * elem)
    }

    /// Sets a scalar or gauge.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`] or [`StatsSimError::WrongType`].
    pub fn set_value(&mut self, entry: EntryIndex, value: u64) -> Result<(), StatsSimError> {
        if !matches!(self.meta(entry)?.body, Body::Value) {
            return Err(StatsSimError::WrongType {
                index: entry.0,
                expected: "scalar or gauge",
            });
        }
        let off = self.entry_off(entry.0 as usize);
        self.region.store_u64(off + 8, value, Ordering::Relaxed);
        Ok(())
    }

    /// Sets one simple counter.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`], [`StatsSimError::WrongType`] or
    /// [`StatsSimError::OutOfRange`].
    pub fn set_simple(
        &mut self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        value: u64,
    ) -> Result<(), StatsSimError> {
        let off = self.counter_off(entry, thread, index, 8)?;
        self.region.store_u64(off, value, Ordering::Relaxed);
        Ok(())
    }

    /// Adds to one simple counter (wrapping).
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::set_simple`].
    pub fn add_simple(
        &mut self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        delta: u64,
    ) -> Result<(), StatsSimError> {
        let off = self.counter_off(entry, thread, index, 8)?;
        self.region.add_u64(off, delta);
        Ok(())
    }

    /// Sets one combined counter.
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::set_simple`].
    pub fn set_combined(
        &mut self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<(), StatsSimError> {
        let off = self.counter_off(entry, thread, index, 16)?;
        self.region.store_u64(off, packets, Ordering::Relaxed);
        self.region.store_u64(off + 8, bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Adds packets and bytes to one combined counter (wrapping).
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::set_simple`].
    pub fn add_combined(
        &mut self,
        entry: EntryIndex,
        thread: usize,
        index: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<(), StatsSimError> {
        let off = self.counter_off(entry, thread, index, 16)?;
        self.region.add_u64(off, packets);
        self.region.add_u64(off + 8, bytes);
        Ok(())
    }

    /// Adds a name vector holding `names` (`None` is stored as a null pointer).
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::add_scalar`].
    pub fn add_name_vector(
        &mut self,
        name: &str,
        names: &[Option<&str>],
    ) -> Result<EntryIndex, StatsSimError> {
        self.check_name(name)?;
        let vec = self.alloc_vec(names.len(), 8, LOG2_ALIGN_WORD)?;
        let value = self.ptr(vec.start + 8);
        let entry = self.add_entry(
            name,
            kind::NAME_VECTOR,
            value,
            Body::Names {
                vec,
                strings: vec![None; names.len()],
            },
        )?;
        for (i, n) in names.iter().enumerate() {
            self.set_name(entry, i, *n)?;
        }
        Ok(entry)
    }

    /// Sets or clears name `index` of a name vector, growing the vector as needed.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`], [`StatsSimError::WrongType`] or
    /// [`StatsSimError::OutOfSpace`].
    pub fn set_name(
        &mut self,
        entry: EntryIndex,
        index: usize,
        name: Option<&str>,
    ) -> Result<(), StatsSimError> {
        let (mut vec, mut strings) = match &self.meta(entry)?.body {
            Body::Names { vec, strings } => (*vec, strings.clone()),
            _ => {
                return Err(StatsSimError::WrongType {
                    index: entry.0,
                    expected: "name vector",
                });
            }
        };
        if index >= strings.len() {
            let new = self.alloc_vec(index + 1, 8, LOG2_ALIGN_WORD)?;
            self.region
                .copy_words(vec.start + 8, new.start + 8, strings.len() * 8);
            self.state.heap.free(vec);
            vec = new;
            strings.resize(index + 1, None);
            let off = self.entry_off(entry.0 as usize);
            self.region
                .store_u64(off + 8, self.ptr(vec.start + 8), Ordering::Relaxed);
        }
        let new_string = match name {
            Some(s) => {
                let block = self.alloc_vec(s.len() + 1, 1, LOG2_ALIGN_WORD)?;
                self.region.write_bytes(block.start + 8, s.as_bytes());
                Some(block)
            }
            None => None,
        };
        let slot = vec.start + 8 + index * 8;
        self.region.store_u64(
            slot,
            new_string.map_or(0, |b| self.ptr(b.start + 8)),
            Ordering::Relaxed,
        );
        if let Some(old) = std::mem::replace(&mut strings[index], new_string) {
            self.state.heap.free(old);
        }
        self.state.entries[entry.0 as usize].body = Body::Names { vec, strings };
        Ok(())
    }

    /// Adds a symlink to column `column` of the counter vector `target`.
    ///
    /// # Errors
    ///
    /// As [`SegmentTxn::add_scalar`], plus [`StatsSimError::WrongType`] when `target` is not a
    /// counter vector and [`StatsSimError::OutOfRange`] when `column` is outside it.
    pub fn add_symlink(
        &mut self,
        name: &str,
        target: EntryIndex,
        column: u32,
    ) -> Result<EntryIndex, StatsSimError> {
        self.check_name(name)?;
        if column as usize >= self.counters_of(target)?.len {
            return Err(StatsSimError::OutOfRange {
                index: target.0,
                thread: 0,
                object: column as usize,
            });
        }
        let entry = self.add_entry(name, kind::SYMLINK, 0, Body::Symlink)?;
        let off = self.entry_off(entry.0 as usize);
        self.region.store_u32(off + 8, target.0);
        self.region.store_u32(off + 12, column);
        Ok(entry)
    }

    /// Removes an entry: its data is freed and its slot becomes `EMPTY` (zeroed) for reuse.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::NoSuchEntry`].
    pub fn remove_entry(&mut self, entry: EntryIndex) -> Result<(), StatsSimError> {
        self.meta(entry)?;
        let slot = entry.0 as usize;
        let meta = std::mem::replace(
            &mut self.state.entries[slot],
            Meta {
                name: String::new(),
                type_code: kind::EMPTY,
                body: Body::Empty,
            },
        );
        match meta.body {
            Body::Counters(c) => {
                for row in c.rows {
                    self.state.heap.free(row);
                }
                self.state.heap.free(c.threads);
            }
            Body::Names { vec, strings } => {
                for s in strings.into_iter().flatten() {
                    self.state.heap.free(s);
                }
                self.state.heap.free(vec);
            }
            Body::Empty | Body::Value | Body::Symlink => {}
        }
        self.write_entry(slot, kind::EMPTY, 0, "");
        self.state.free_slots.push(slot);
        Ok(())
    }
}
