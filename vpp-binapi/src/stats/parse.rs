//! The safe parsing core: walks the header, directory and per-entry data through a bounds-checked
//! [`Source`], either a live mapping or a plain byte image.

use std::cell::Cell;
use std::time::{Duration, Instant};

use regex::RegexSet;

use super::error::StatsError;
use super::types::{
    Combined, CombinedCounters, SimpleCounters, StatEntry, StatValue, Symlink, SymlinkValue,
};

/// Bytes of the shared header that are read (VPP's 22.06+ header is 40; readers read 48).
pub(crate) const HEADER_SIZE: usize = 48;
const OFF_VERSION: usize = 0;
const OFF_BASE: usize = 8;
pub(crate) const OFF_EPOCH: usize = 16;
pub(crate) const OFF_IN_PROGRESS: usize = 24;
const OFF_DIRECTORY: usize = 32;
const OFF_ERROR_VECTOR: usize = 40;

/// Size of one `vlib_stats_entry_t`.
pub(crate) const ENTRY_SIZE: usize = 144;
const ENTRY_NAME_OFF: usize = 16;
const ENTRY_NAME_LEN: usize = 128;
/// Size of VPP's `vec_header_t`, which precedes vector data.
const VEC_HEADER: usize = 8;

/// The longest symlink chain followed before giving up.
pub const MAX_SYMLINK_DEPTH: usize = 8;

/// Directory type codes, numbering used since VPP 22.06 (with the 26.02 additions).
pub(crate) mod kind {
    pub(crate) const ILLEGAL: u32 = 0;
    pub(crate) const SCALAR: u32 = 1;
    pub(crate) const SIMPLE: u32 = 2;
    pub(crate) const COMBINED: u32 = 3;
    pub(crate) const NAME_VECTOR: u32 = 4;
    pub(crate) const EMPTY: u32 = 5;
    pub(crate) const SYMLINK: u32 = 6;
    pub(crate) const GAUGE: u32 = 9;
}

/// Bounds-checked access to segment bytes. Every method returns `None`/`false` when the requested
/// range is not entirely inside the source; values are native-endian, as VPP writes them.
pub(crate) trait Source {
    /// Size in bytes.
    fn size(&self) -> usize;
    /// Copies `out.len()` bytes from `off`.
    fn read_bytes(&self, off: usize, out: &mut [u8]) -> bool;
    /// Reads a u64 at `off`.
    fn read_u64(&self, off: usize) -> Option<u64>;
    /// Reads a u32 at `off`.
    fn read_u32(&self, off: usize) -> Option<u32>;
    /// Reads `out.len()` consecutive u64 from `off`.
    fn read_u64s(&self, off: usize, out: &mut [u64]) -> bool;
    /// Acquire-load of an 8-byte-aligned header word.
    fn load_acquire(&self, off: usize) -> Option<u64>;
    /// An acquire fence, ordering the data reads before the final header check.
    fn fence_acquire(&self);
    /// Whether another process may change the bytes while they are read.
    fn is_live(&self) -> bool;
}

/// A plain byte image (a copy of a segment, a test fixture or a fuzz input).
pub(crate) struct ImageSource<'a>(pub(crate) &'a [u8]);

impl Source for ImageSource<'_> {
    fn size(&self) -> usize {
        self.0.len()
    }

    fn read_bytes(&self, off: usize, out: &mut [u8]) -> bool {
        match off
            .checked_add(out.len())
            .and_then(|end| self.0.get(off..end))
        {
            Some(src) => {
                out.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn read_u64(&self, off: usize) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_bytes(off, &mut b).then(|| u64::from_ne_bytes(b))
    }

    fn read_u32(&self, off: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read_bytes(off, &mut b).then(|| u32::from_ne_bytes(b))
    }

    fn read_u64s(&self, off: usize, out: &mut [u64]) -> bool {
        let Some(len) = out.len().checked_mul(8) else {
            return false;
        };
        let Some(src) = off.checked_add(len).and_then(|end| self.0.get(off..end)) else {
            return false;
        };
        for (dst, chunk) in out.iter_mut().zip(src.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *dst = u64::from_ne_bytes(b);
        }
        true
    }

    fn load_acquire(&self, off: usize) -> Option<u64> {
        self.read_u64(off)
    }

    fn fence_acquire(&self) {}

    fn is_live(&self) -> bool {
        false
    }
}

/// One directory entry's fixed fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEntry {
    pub(crate) type_code: u32,
    /// The union read as a u64 (value or pointer).
    pub(crate) value: u64,
    /// The union's first u32 (`index1`).
    pub(crate) index1: u32,
    /// The union's second u32 (`index2`).
    pub(crate) index2: u32,
}

/// A compiled set of name patterns. An empty set matches every name.
///
/// Patterns are [`regex`] expressions matched anywhere in the name (anchor them with `^...$` for
/// an exact match, as in `"^/net/route/to$"`).
#[derive(Debug, Clone)]
pub struct StatsFilter {
    set: Option<RegexSet>,
}

impl StatsFilter {
    /// Compiles patterns; a name matches when any pattern matches it. No patterns match everything.
    ///
    /// # Errors
    ///
    /// [`StatsError::Pattern`] when a pattern is not a valid regular expression.
    pub fn new<I, P>(patterns: I) -> Result<Self, StatsError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        let patterns: Vec<String> = patterns
            .into_iter()
            .map(|p| p.as_ref().to_owned())
            .collect();
        if patterns.is_empty() {
            return Ok(Self::all());
        }
        Ok(Self {
            set: Some(RegexSet::new(patterns)?),
        })
    }

    /// A filter that matches every name.
    #[must_use]
    pub fn all() -> Self {
        Self { set: None }
    }

    /// Whether `name` passes the filter.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.set.as_ref().is_none_or(|s| s.is_match(name))
    }
}

/// How hard a live read tries to get a consistent snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Snapshot attempts before giving up with [`StatsError::Busy`].
    pub max_attempts: u32,
    /// Total time one read may spend waiting for the writer, across all attempts.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 1000 attempts within 100 ms (GoVPP waits at most 100 ms for `in_progress` to clear).
    fn default() -> Self {
        Self {
            max_attempts: 1000,
            timeout: Duration::from_millis(100),
        }
    }
}

/// Walks one segment. Every offset it hands to the [`Source`] has been translated and
/// bounds-checked; every allocation is charged to a budget proportional to the segment size.
pub(crate) struct Parser<'s, S: Source + ?Sized> {
    src: &'s S,
    base: u64,
    size: usize,
    dir_off: usize,
    dir_len: usize,
    budget: Cell<usize>,
    limit: usize,
}

impl<'s, S: Source + ?Sized> Parser<'s, S> {
    /// Reads and checks the header and locates the directory vector.
    pub(crate) fn new(src: &'s S) -> Result<Self, StatsError> {
        let size = src.size();
        let too_small = StatsError::TooSmall {
            len: size,
            needed: HEADER_SIZE,
        };
        if size < HEADER_SIZE {
            return Err(too_small);
        }
        let word = |off| {
            src.read_u64(off).ok_or(StatsError::TooSmall {
                len: size,
                needed: HEADER_SIZE,
            })
        };
        let version = word(OFF_VERSION)?;
        if version != 2 {
            return Err(StatsError::UnsupportedVersion { version });
        }
        let base = word(OFF_BASE)?;
        let dir_ptr = word(OFF_DIRECTORY)?;
        let error_vector = word(OFF_ERROR_VECTOR)?;
        let limit = size.saturating_mul(4).saturating_add(1 << 20);
        let mut parser = Self {
            src,
            base,
            size,
            dir_off: 0,
            dir_len: 0,
            budget: Cell::new(limit),
            limit,
        };
        // GoVPP's test: before 22.06 the header had a sixth word, a pointer into the segment.
        if error_vector != 0 && parser.translate(error_vector, 1, "error vector").is_ok() {
            return Err(StatsError::UnsupportedLayout {
                reason: "v2 header with an error vector (VPP 20.09 to 22.02); only the 22.06+ layout is supported",
            });
        }
        if dir_ptr != 0 {
            let (off, len) = parser.vector(dir_ptr, ENTRY_SIZE, "directory vector")?;
            parser.dir_off = off;
            parser.dir_len = len;
        }
        Ok(parser)
    }

    /// Translates a VPP pointer to an offset such that `need` bytes from it lie in the mapping.
    fn translate(&self, ptr: u64, need: usize, what: &'static str) -> Result<usize, StatsError> {
        ptr.checked_sub(self.base)
            .and_then(|off| usize::try_from(off).ok())
            .filter(|off| off.checked_add(need).is_some_and(|end| end <= self.size))
            .ok_or(StatsError::PointerOutOfRange {
                what,
                ptr,
                base: self.base,
                size: self.size,
            })
    }

    /// Locates a vector: returns the data offset and element count, checked against the mapping.
    fn vector(
        &self,
        ptr: u64,
        elem_size: usize,
        what: &'static str,
    ) -> Result<(usize, usize), StatsError> {
        let off = self.translate(ptr, 0, what)?;
        let bad_ptr = StatsError::PointerOutOfRange {
            what,
            ptr,
            base: self.base,
            size: self.size,
        };
        let hdr = off.checked_sub(VEC_HEADER).ok_or(bad_ptr)?;
        let len = self
            .src
            .read_u32(hdr)
            .ok_or(StatsError::PointerOutOfRange {
                what,
                ptr,
                base: self.base,
                size: self.size,
            })?;
        let fits = (len as usize)
            .checked_mul(elem_size)
            .and_then(|bytes| off.checked_add(bytes))
            .is_some_and(|end| end <= self.size);
        if !fits {
            return Err(StatsError::VectorOverrun {
                what,
                offset: off,
                len: u64::from(len),
                elem_size,
                size: self.size,
            });
        }
        Ok((off, len as usize))
    }

    /// Charges `bytes` of output against the budget before allocating them.
    fn charge(&self, bytes: usize) -> Result<(), StatsError> {
        let left = self.budget.get();
        match left.checked_sub(bytes) {
            Some(rest) => {
                self.budget.set(rest);
                Ok(())
            }
            None => Err(StatsError::BudgetExceeded { limit: self.limit }),
        }
    }

    fn entry_off(&self, index: usize, what: &'static str) -> Result<usize, StatsError> {
        if index >= self.dir_len {
            return Err(StatsError::IndexOutOfRange {
                what,
                index: index as u64,
                len: self.dir_len,
            });
        }
        // In range: the directory vector was checked to fit in the mapping.
        Ok(self.dir_off + index * ENTRY_SIZE)
    }

    /// The fixed fields of directory entry `index`.
    pub(crate) fn entry(&self, index: usize) -> Result<RawEntry, StatsError> {
        let off = self.entry_off(index, "directory entry")?;
        let oob = || StatsError::IndexOutOfRange {
            what: "directory entry",
            index: index as u64,
            len: self.dir_len,
        };
        Ok(RawEntry {
            type_code: self.src.read_u32(off).ok_or_else(oob)?,
            value: self.src.read_u64(off + 8).ok_or_else(oob)?,
            index1: self.src.read_u32(off + 8).ok_or_else(oob)?,
            index2: self.src.read_u32(off + 12).ok_or_else(oob)?,
        })
    }

    /// Compares the name of entry `index` with `name` without allocating.
    fn name_is(&self, index: usize, name: &str) -> Result<bool, StatsError> {
        let raw = self.name_bytes(index)?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(ENTRY_NAME_LEN);
        Ok(&raw[..end] == name.as_bytes())
    }

    fn name_bytes(&self, index: usize) -> Result<[u8; ENTRY_NAME_LEN], StatsError> {
        let off = self.entry_off(index, "directory entry name")?;
        let mut raw = [0u8; ENTRY_NAME_LEN];
        if !self.src.read_bytes(off + ENTRY_NAME_OFF, &mut raw) {
            return Err(StatsError::IndexOutOfRange {
                what: "directory entry name",
                index: index as u64,
                len: self.dir_len,
            });
        }
        Ok(raw)
    }

    /// The name of entry `index` (NUL-terminated, at most 128 bytes; invalid UTF-8 replaced).
    pub(crate) fn entry_name(&self, index: usize) -> Result<String, StatsError> {
        let raw = self.name_bytes(index)?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(ENTRY_NAME_LEN);
        self.charge(end)?;
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    /// The per-thread vector of pointers of a counter entry.
    fn thread_pointers(&self, ptr: u64, what: &'static str) -> Result<Vec<u64>, StatsError> {
        let (off, n) = self.vector(ptr, 8, what)?;
        self.charge(n.saturating_mul(8 + size_of::<Vec<u64>>()))?;
        let mut ptrs = vec![0u64; n];
        if !self.src.read_u64s(off, &mut ptrs) {
            return Err(self.overrun(what, off, n, 8));
        }
        Ok(ptrs)
    }

    fn overrun(
        &self,
        what: &'static str,
        offset: usize,
        len: usize,
        elem_size: usize,
    ) -> StatsError {
        StatsError::VectorOverrun {
            what,
            offset,
            len: len as u64,
            elem_size,
            size: self.size,
        }
    }

    fn simple(&self, ptr: u64) -> Result<SimpleCounters, StatsError> {
        let threads = self.thread_pointers(ptr, "simple counter thread vector")?;
        let mut rows = Vec::with_capacity(threads.len());
        for p in threads {
            if p == 0 {
                rows.push(Vec::new());
                continue;
            }
            let what = "simple counter vector";
            let (off, n) = self.vector(p, 8, what)?;
            self.charge(n * 8)?;
            let mut row = vec![0u64; n];
            if !self.src.read_u64s(off, &mut row) {
                return Err(self.overrun(what, off, n, 8));
            }
            rows.push(row);
        }
        Ok(SimpleCounters(rows))
    }

    fn combined(&self, ptr: u64) -> Result<CombinedCounters, StatsError> {
        let threads = self.thread_pointers(ptr, "combined counter thread vector")?;
        let mut rows = Vec::with_capacity(threads.len());
        for p in threads {
            if p == 0 {
                rows.push(Vec::new());
                continue;
            }
            let what = "combined counter vector";
            let (off, n) = self.vector(p, 16, what)?;
            self.charge(n * 16)?;
            let mut words = vec![0u64; n * 2];
            if !self.src.read_u64s(off, &mut words) {
                return Err(self.overrun(what, off, n, 16));
            }
            rows.push(
                words
                    .chunks_exact(2)
                    .map(|c| Combined {
                        packets: c[0],
                        bytes: c[1],
                    })
                    .collect(),
            );
        }
        Ok(CombinedCounters(rows))
    }

    fn names(&self, ptr: u64) -> Result<Vec<Option<String>>, StatsError> {
        let what = "name vector";
        let ptrs = {
            let (off, n) = self.vector(ptr, 8, what)?;
            self.charge(n.saturating_mul(8 + size_of::<Option<String>>()))?;
            let mut ptrs = vec![0u64; n];
            if !self.src.read_u64s(off, &mut ptrs) {
                return Err(self.overrun(what, off, n, 8));
            }
            ptrs
        };
        let mut out = Vec::with_capacity(ptrs.len());
        for p in ptrs {
            if p == 0 {
                out.push(None);
                continue;
            }
            let what = "name string";
            let (off, n) = self.vector(p, 1, what)?;
            self.charge(n)?;
            let mut bytes = vec![0u8; n];
            if !self.src.read_bytes(off, &mut bytes) {
                return Err(self.overrun(what, off, n, 1));
            }
            // The length includes a trailing NUL; stop at the first NUL in any case.
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(n);
            bytes.truncate(end);
            out.push(Some(String::from_utf8(bytes).unwrap_or_else(|e| {
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            })));
        }
        Ok(out)
    }

    /// Reads column `column` of every thread of the counter vector at `ptr`.
    fn column(
        &self,
        name: &str,
        ptr: u64,
        column: u32,
        elem_size: usize,
    ) -> Result<Vec<(u64, u64)>, StatsError> {
        let what = if elem_size == 8 {
            "simple counter vector"
        } else {
            "combined counter vector"
        };
        let threads = self.thread_pointers(ptr, "symlink target thread vector")?;
        self.charge(threads.len().saturating_mul(16))?;
        let mut out = Vec::with_capacity(threads.len());
        for (thread, p) in threads.into_iter().enumerate() {
            let (off, n) = if p == 0 {
                (0, 0)
            } else {
                self.vector(p, elem_size, what)?
            };
            if column as usize >= n {
                return Err(StatsError::SymlinkColumn {
                    name: name.to_owned(),
                    column,
                    thread,
                    len: n,
                });
            }
            let at = off + column as usize * elem_size;
            let mut words = [0u64; 2];
            if !self.src.read_u64s(at, &mut words[..elem_size / 8]) {
                return Err(self.overrun(what, off, n, elem_size));
            }
            out.push((words[0], words[1]));
        }
        Ok(out)
    }

    fn symlink(&self, name: &str, first: RawEntry) -> Result<Symlink, StatsError> {
        let mut link = first;
        for _ in 0..MAX_SYMLINK_DEPTH {
            let target_index = link.index1 as usize;
            let target = self
                .entry(target_index)
                .map_err(|_| StatsError::IndexOutOfRange {
                    what: "symlink target",
                    index: u64::from(link.index1),
                    len: self.dir_len,
                })?;
            let value = match target.type_code {
                kind::SYMLINK => {
                    link = target;
                    continue;
                }
                kind::SIMPLE => SymlinkValue::Simple(
                    self.column(name, target.value, link.index2, 8)?
                        .into_iter()
                        .map(|(v, _)| v)
                        .collect(),
                ),
                kind::COMBINED => SymlinkValue::Combined(
                    self.column(name, target.value, link.index2, 16)?
                        .into_iter()
                        .map(|(packets, bytes)| Combined { packets, bytes })
                        .collect(),
                ),
                other => {
                    return Err(StatsError::SymlinkTarget {
                        name: name.to_owned(),
                        target: link.index1,
                        type_code: other,
                    });
                }
            };
            return Ok(Symlink {
                target: self.entry_name(target_index)?,
                target_index: link.index1,
                column: link.index2,
                value,
            });
        }
        Err(StatsError::SymlinkTooDeep {
            name: name.to_owned(),
            max: MAX_SYMLINK_DEPTH,
        })
    }

    /// The value of an entry; `None` for `EMPTY` and `ILLEGAL` slots.
    pub(crate) fn value(&self, name: &str, raw: RawEntry) -> Result<Option<StatValue>, StatsError> {
        Ok(Some(match raw.type_code {
            kind::EMPTY | kind::ILLEGAL => return Ok(None),
            kind::SCALAR => StatValue::Scalar(raw.value),
            kind::GAUGE => StatValue::Gauge(raw.value),
            kind::SIMPLE => StatValue::SimpleCounters(self.simple(raw.value)?),
            kind::COMBINED => StatValue::CombinedCounters(self.combined(raw.value)?),
            kind::NAME_VECTOR => StatValue::NameVector(self.names(raw.value)?),
            kind::SYMLINK => StatValue::Symlink(self.symlink(name, raw)?),
            other => StatValue::Unsupported { type_code: other },
        }))
    }

    /// Names of every directory entry in order (empty for free slots), for a per-epoch cache.
    pub(crate) fn all_names(&self) -> Result<Vec<String>, StatsError> {
        self.charge(self.dir_len.saturating_mul(size_of::<String>()))?;
        (0..self.dir_len).map(|i| self.entry_name(i)).collect()
    }

    /// A names cache is usable only if it covers exactly this directory.
    fn usable<'n>(&self, names: Option<&'n [String]>) -> Option<&'n [String]> {
        names.filter(|n| n.len() == self.dir_len)
    }

    /// The name of entry `index` if it passes `filter` (from `names` when given).
    fn matching_name(
        &self,
        index: usize,
        filter: &StatsFilter,
        names: Option<&[String]>,
    ) -> Result<Option<String>, StatsError> {
        let name = match names {
            Some(names) => {
                let name = &names[index];
                if !filter.matches(name) {
                    return Ok(None);
                }
                self.charge(name.len())?;
                name.clone()
            }
            None => self.entry_name(index)?,
        };
        Ok(filter.matches(&name).then_some(name))
    }

    /// Every live entry whose name passes `filter`, with its value. `names` is an optional
    /// cache of [`Parser::all_names`] taken at the same epoch.
    pub(crate) fn dump(
        &self,
        filter: &StatsFilter,
        names: Option<&[String]>,
    ) -> Result<Vec<StatEntry>, StatsError> {
        let names = self.usable(names);
        let mut out = Vec::new();
        for index in 0..self.dir_len {
            if names.is_some_and(|n| !filter.matches(&n[index])) {
                continue;
            }
            let raw = self.entry(index)?;
            if matches!(raw.type_code, kind::EMPTY | kind::ILLEGAL) {
                continue;
            }
            let Some(name) = self.matching_name(index, filter, names)? else {
                continue;
            };
            if let Some(value) = self.value(&name, raw)? {
                out.push(StatEntry {
                    name,
                    index: index as u32,
                    value,
                });
            }
        }
        Ok(out)
    }

    /// Names of every live entry that passes `filter`.
    pub(crate) fn ls(
        &self,
        filter: &StatsFilter,
        names: Option<&[String]>,
    ) -> Result<Vec<String>, StatsError> {
        let names = self.usable(names);
        let mut out = Vec::new();
        for index in 0..self.dir_len {
            if names.is_some_and(|n| !filter.matches(&n[index])) {
                continue;
            }
            let raw = self.entry(index)?;
            if matches!(raw.type_code, kind::EMPTY | kind::ILLEGAL) {
                continue;
            }
            if let Some(name) = self.matching_name(index, filter, names)? {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The entry named exactly `name`.
    pub(crate) fn get(
        &self,
        name: &str,
        names: Option<&[String]>,
    ) -> Result<StatEntry, StatsError> {
        let names = self.usable(names);
        for index in 0..self.dir_len {
            let same = match names {
                Some(n) => n[index] == name,
                None => self.name_is(index, name)?,
            };
            if !same {
                continue;
            }
            let raw = self.entry(index)?;
            if matches!(raw.type_code, kind::EMPTY | kind::ILLEGAL) {
                continue;
            }
            if let Some(value) = self.value(name, raw)? {
                return Ok(StatEntry {
                    name: name.to_owned(),
                    index: index as u32,
                    value,
                });
            }
        }
        Err(StatsError::NotFound {
            name: name.to_owned(),
        })
    }
}

/// Runs `read` over a consistent snapshot, following VPP's optimistic protocol on live sources:
/// wait for `in_progress == 0`, note `epoch`, read, then require `epoch` unchanged and
/// `in_progress` still 0; otherwise retry, within `policy`. A byte image is read once, as is.
/// `read` gets the epoch the attempt runs under (`None` for an image).
pub(crate) fn consistent<S, T>(
    src: &S,
    policy: RetryPolicy,
    mut read: impl FnMut(&Parser<'_, S>, Option<u64>) -> Result<T, StatsError>,
) -> Result<T, StatsError>
where
    S: Source + ?Sized,
{
    if !src.is_live() {
        return read(&Parser::new(src)?, None);
    }
    if src.size() < HEADER_SIZE {
        return Err(StatsError::TooSmall {
            len: src.size(),
            needed: HEADER_SIZE,
        });
    }
    let header = |off| {
        src.load_acquire(off).ok_or(StatsError::TooSmall {
            len: src.size(),
            needed: HEADER_SIZE,
        })
    };
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let mut spins = 0u32;
        while header(OFF_IN_PROGRESS)? != 0 {
            if start.elapsed() > policy.timeout {
                return Err(StatsError::Busy { attempts });
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(10));
            }
        }
        let epoch = header(OFF_EPOCH)?;
        let result = Parser::new(src).and_then(|p| read(&p, Some(epoch)));
        src.fence_acquire();
        if header(OFF_IN_PROGRESS)? == 0 && header(OFF_EPOCH)? == epoch {
            return result;
        }
        if attempts >= policy.max_attempts || start.elapsed() > policy.timeout {
            return Err(StatsError::Busy { attempts });
        }
    }
}
