//! A first-fit allocator with coalescing over the segment's heap area.

use std::collections::BTreeMap;

/// A block handed out by [`Heap::alloc`]: `start` is 8-aligned, `len` a multiple of 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// Free ranges of the heap, keyed by start offset.
#[derive(Debug)]
pub(crate) struct Heap {
    free: BTreeMap<usize, usize>,
}

fn align_up(v: usize, align: usize) -> Option<usize> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

impl Heap {
    /// A heap covering `start..end` (both 8-aligned).
    pub(crate) fn new(start: usize, end: usize) -> Self {
        let mut free = BTreeMap::new();
        if end > start {
            free.insert(start, end - start);
        }
        Self { free }
    }

    /// Allocates a block whose first 8 bytes are a header and whose data, `size` bytes long,
    /// starts at an `align`-aligned offset (`align` a power of two, at least 8). The data offset
    /// is `block.start + 8`.
    pub(crate) fn alloc(&mut self, size: usize, align: usize) -> Option<Block> {
        let size = align_up(size.max(8), 8)?;
        let (start, len, data) = self.free.iter().find_map(|(&s, &l)| {
            let data = align_up(s.checked_add(8)?, align)?;
            let end = data.checked_add(size)?;
            (end <= s + l).then_some((s, l, data))
        })?;
        self.free.remove(&start);
        let block = Block {
            start: data - 8,
            len: size + 8,
        };
        if block.start > start {
            self.free.insert(start, block.start - start);
        }
        let end = block.start + block.len;
        if end < start + len {
            self.free.insert(end, start + len - end);
        }
        Some(block)
    }

    /// Returns a block to the heap, merging it with free neighbours.
    pub(crate) fn free(&mut self, block: Block) {
        let mut start = block.start;
        let mut len = block.len;
        if let Some((&ps, &pl)) = self.free.range(..start).next_back()
            && ps + pl == start
        {
            self.free.remove(&ps);
            start = ps;
            len += pl;
        }
        if let Some(&nl) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += nl;
        }
        self.free.insert(start, len);
    }

    /// Total free bytes.
    #[cfg(test)]
    pub(crate) fn free_bytes(&self) -> usize {
        self.free.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_aligns_data_and_free_coalesces() {
        let mut heap = Heap::new(4096, 8192);
        let a = heap.alloc(10, 64).unwrap();
        assert_eq!((a.start + 8) % 64, 0);
        assert!(a.len >= 18);
        let b = heap.alloc(100, 8).unwrap();
        assert!(b.start >= a.start + a.len || b.start + b.len <= a.start);
        heap.free(a);
        heap.free(b);
        assert_eq!(heap.free_bytes(), 4096);
        assert_eq!(heap.free.len(), 1, "free list coalesced into one range");
    }

    #[test]
    fn alloc_fails_when_full() {
        let mut heap = Heap::new(0, 64);
        assert!(heap.alloc(100, 8).is_none());
        assert!(heap.alloc(48, 8).is_some());
        assert!(heap.alloc(8, 8).is_none());
    }
}
