//! The live, read-only mapping of a stats segment. This is the only module with `unsafe`.
//!
//! VPP changes the segment while we read it, so no `&[u8]` or `&T` is ever formed over the mapping:
//! every read goes through a raw pointer with a volatile or atomic load into an owned copy, after
//! an explicit bounds check against the mapping length.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use memmap2::{MmapOptions, MmapRaw};

use super::error::StatsError;
use super::parse::{HEADER_SIZE, Source};

/// A read-only shared mapping of a segment's memfd.
///
/// The peer (VPP) must not shrink the file while it is mapped: pages past a shrunken end raise
/// `SIGBUS`, which no bounds check can prevent. VPP never does.
pub(crate) struct LiveSegment {
    map: MmapRaw,
}

impl std::fmt::Debug for LiveSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSegment")
            .field("len", &self.map.len())
            .finish()
    }
}

impl LiveSegment {
    /// Maps the whole file behind `fd` (its `fstat` size) read-only and shared.
    pub(crate) fn map(fd: &OwnedFd, path: &Path) -> Result<Self, StatsError> {
        let io = |op, source| StatsError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        let stat = rustix::fs::fstat(fd).map_err(|e| io("fstat", e.into()))?;
        let len = usize::try_from(stat.st_size).unwrap_or(0);
        if len < HEADER_SIZE {
            return Err(StatsError::TooSmall {
                len,
                needed: HEADER_SIZE,
            });
        }
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(fd)
            .map_err(|e| io("mmap", e))?;
        Ok(Self { map })
    }

    /// A pointer to `len` bytes at `off`, if they lie inside the mapping.
    fn range(&self, off: usize, len: usize) -> Option<*const u8> {
        let end = off.checked_add(len)?;
        (end <= self.map.len()).then(|| self.map.as_ptr().wrapping_add(off))
    }
}

/// Copies `out.len()` bytes from `src` with volatile loads, word by word where aligned.
///
/// # Safety
///
/// `src..src + out.len()` must lie inside one live mapping, readable for the whole call.
unsafe fn copy_volatile(src: *const u8, out: &mut [u8]) {
    let mut i = 0;
    while i < out.len() && !(src as usize + i).is_multiple_of(8) {
        // SAFETY: `src + i` is inside the range the caller guarantees readable.
        out[i] = unsafe { ptr::read_volatile(src.add(i)) };
        i += 1;
    }
    while i + 8 <= out.len() {
        // SAFETY: in range (i + 8 <= len) and 8-byte aligned by the loop above.
        let w = unsafe { ptr::read_volatile(src.add(i).cast::<u64>()) };
        out[i..i + 8].copy_from_slice(&w.to_ne_bytes());
        i += 8;
    }
    while i < out.len() {
        // SAFETY: `src + i` is inside the range the caller guarantees readable.
        out[i] = unsafe { ptr::read_volatile(src.add(i)) };
        i += 1;
    }
}

impl Source for LiveSegment {
    fn size(&self) -> usize {
        self.map.len()
    }

    fn read_bytes(&self, off: usize, out: &mut [u8]) -> bool {
        let Some(p) = self.range(off, out.len()) else {
            return false;
        };
        // SAFETY: `range` checked that `off..off + out.len()` lies inside the mapping, which
        // lives as long as `self` and is mapped readable.
        unsafe { copy_volatile(p, out) };
        true
    }

    fn read_u64(&self, off: usize) -> Option<u64> {
        let p = self.range(off, 8)?;
        if (p as usize).is_multiple_of(8) {
            // SAFETY: in bounds (checked by `range`), aligned (checked above), readable mapping.
            Some(unsafe { ptr::read_volatile(p.cast::<u64>()) })
        } else {
            let mut b = [0u8; 8];
            self.read_bytes(off, &mut b).then(|| u64::from_ne_bytes(b))
        }
    }

    fn read_u32(&self, off: usize) -> Option<u32> {
        let p = self.range(off, 4)?;
        if (p as usize).is_multiple_of(4) {
            // SAFETY: in bounds (checked by `range`), aligned (checked above), readable mapping.
            Some(unsafe { ptr::read_volatile(p.cast::<u32>()) })
        } else {
            let mut b = [0u8; 4];
            self.read_bytes(off, &mut b).then(|| u32::from_ne_bytes(b))
        }
    }

    fn read_u64s(&self, off: usize, out: &mut [u64]) -> bool {
        let Some(len) = out.len().checked_mul(8) else {
            return false;
        };
        let Some(p) = self.range(off, len) else {
            return false;
        };
        if (p as usize).is_multiple_of(8) {
            for (i, dst) in out.iter_mut().enumerate() {
                // SAFETY: `p + 8 * i .. p + 8 * (i + 1)` is inside the checked range, and
                // aligned because `p` is; each word is one volatile (untorn) load.
                *dst = unsafe { ptr::read_volatile(p.cast::<u64>().add(i)) };
            }
        } else {
            let mut b = [0u8; 8];
            for (i, dst) in out.iter_mut().enumerate() {
                // SAFETY: `p + 8 * i .. p + 8 * (i + 1)` is inside the checked range.
                unsafe { copy_volatile(p.add(i * 8), &mut b) };
                *dst = u64::from_ne_bytes(b);
            }
        }
        true
    }

    fn load_acquire(&self, off: usize) -> Option<u64> {
        let p = self.range(off, 8)?;
        if !(p as usize).is_multiple_of(8) {
            return None;
        }
        // SAFETY: in bounds and 8-byte aligned (checked above), inside a mapping that outlives
        // this call. The writer updates header words with atomic stores; an atomic load of a
        // naturally aligned u64 is a plain load on the supported targets, so it is fine on a
        // read-only mapping. No reference to the memory escapes this expression.
        Some(unsafe { AtomicU64::from_ptr(p.cast::<u64>().cast_mut()) }.load(Ordering::Acquire))
    }

    fn fence_acquire(&self) {
        fence(Ordering::Acquire);
    }

    fn is_live(&self) -> bool {
        true
    }
}
