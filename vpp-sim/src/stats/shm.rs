//! The writable shared mapping of the simulated segment, and the tokio registration of the stats
//! socket. This is the only module of vpp-sim with `unsafe`.
//!
//! Readers in other processes map the same memfd while we write, so nothing here forms a `&[u8]`
//! or `&mut [u8]` over the mapping: every access is a bounds-checked raw-pointer volatile or atomic
//! operation.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::MemfdFlags;

/// A memfd of fixed size mapped read-write and shared.
pub(crate) struct SharedRegion {
    fd: OwnedFd,
    map: MmapRaw,
}

impl SharedRegion {
    /// Creates a zero-filled memfd of `size` bytes and maps it.
    pub(crate) fn create(size: usize) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create("vpp-sim stats segment", MemfdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&fd, size as u64)?;
        let map = MmapOptions::new().len(size).map_raw(&fd)?;
        Ok(Self { fd, map })
    }

    /// The memfd.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The mapping's address in this process: the segment's base address.
    pub(crate) fn base(&self) -> u64 {
        self.map.as_mut_ptr() as u64
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// A pointer to `len` bytes at `off`, aligned to `align`; panics if the writer computed an
    /// out-of-range or misaligned offset (a bug in the writer, not bad input).
    fn at(&self, off: usize, len: usize, align: usize) -> *mut u8 {
        let end = off.checked_add(len).expect("segment offset overflow");
        assert!(
            end <= self.map.len(),
            "segment write out of range: {off}+{len}"
        );
        let p = self.map.as_mut_ptr().wrapping_add(off);
        assert!(
            (p as usize).is_multiple_of(align),
            "misaligned segment access at {off}"
        );
        p
    }

    /// Atomically stores a u64 at the 8-aligned offset `off`.
    pub(crate) fn store_u64(&self, off: usize, value: u64, order: Ordering) {
        let p = self.at(off, 8, 8).cast::<u64>();
        // SAFETY: `at` checked bounds and alignment; the mapping lives as long as `self`; every
        // concurrent access to this word (ours or a reader's) is atomic or volatile.
        unsafe { AtomicU64::from_ptr(p) }.store(value, order);
    }

    /// Atomically loads a u64 at the 8-aligned offset `off`.
    pub(crate) fn load_u64(&self, off: usize) -> u64 {
        let p = self.at(off, 8, 8).cast::<u64>();
        // SAFETY: as in `store_u64`.
        unsafe { AtomicU64::from_ptr(p) }.load(Ordering::Relaxed)
    }

    /// Atomically adds to a u64 at the 8-aligned offset `off` (wrapping).
    pub(crate) fn add_u64(&self, off: usize, delta: u64) {
        let p = self.at(off, 8, 8).cast::<u64>();
        // SAFETY: as in `store_u64`.
        unsafe { AtomicU64::from_ptr(p) }.fetch_add(delta, Ordering::Relaxed);
    }

    /// Atomically stores a u32 at the 4-aligned offset `off`.
    pub(crate) fn store_u32(&self, off: usize, value: u32) {
        let p = self.at(off, 4, 4).cast::<u32>();
        // SAFETY: as in `store_u64`, for a 4-byte word.
        unsafe { AtomicU32::from_ptr(p) }.store(value, Ordering::Relaxed);
    }

    /// Writes bytes at `off` with volatile stores.
    pub(crate) fn write_bytes(&self, off: usize, bytes: &[u8]) {
        let p = self.at(off, bytes.len(), 1);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `p + i` is inside the range checked by `at`.
            unsafe { ptr::write_volatile(p.add(i), *b) };
        }
    }

    /// Zeroes `len` bytes (a multiple of 8) at the 8-aligned offset `off`.
    pub(crate) fn zero(&self, off: usize, len: usize) {
        assert!(len.is_multiple_of(8), "zero length not a multiple of 8");
        for word in (off..off + len).step_by(8) {
            self.store_u64(word, 0, Ordering::Relaxed);
        }
    }

    /// Copies `len` bytes (a multiple of 8) between 8-aligned offsets, word by word.
    pub(crate) fn copy_words(&self, from: usize, to: usize, len: usize) {
        assert!(len.is_multiple_of(8), "copy length not a multiple of 8");
        for i in (0..len).step_by(8) {
            self.store_u64(to + i, self.load_u64(from + i), Ordering::Relaxed);
        }
    }
}

/// Registers a nonblocking socket with tokio's reactor.
///
/// Kept here so that all of vpp-sim's `unsafe` sits in this module.
pub(crate) fn register_async(
    fd: OwnedFd,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: `OwnedFd` owns a valid, open descriptor, and `AsyncFd` owns the `OwnedFd`: the
    // descriptor cannot be closed or replaced while registered (it is deregistered before the
    // `OwnedFd` drops).
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }
        .map_err(|e| e.into_parts().1)
}
