//! Typed values read from the stats segment, and per-thread reduction helpers.

/// A combined counter: packets and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Combined {
    /// Packet count.
    pub packets: u64,
    /// Byte count.
    pub bytes: u64,
}

impl Combined {
    /// Adds two counters, wrapping on overflow like VPP's own sums.
    #[must_use]
    pub fn wrapping_add(self, other: Self) -> Self {
        Self {
            packets: self.packets.wrapping_add(other.packets),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }
}

/// A simple counter vector, indexed `[thread][index]` (thread 0 is the main thread).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCounters(pub Vec<Vec<u64>>);

impl SimpleCounters {
    /// The per-thread rows.
    #[must_use]
    pub fn per_thread(&self) -> &[Vec<u64>] {
        &self.0
    }

    /// Number of threads (rows).
    #[must_use]
    pub fn threads(&self) -> usize {
        self.0.len()
    }

    /// The value of one thread's counter, if both indices exist.
    #[must_use]
    pub fn get(&self, thread: usize, index: usize) -> Option<u64> {
        self.0.get(thread)?.get(index).copied()
    }

    /// Sum of one index across all threads (a thread without that index counts as 0).
    #[must_use]
    pub fn sum_index(&self, index: usize) -> u64 {
        self.0
            .iter()
            .filter_map(|row| row.get(index))
            .fold(0u64, |acc, v| acc.wrapping_add(*v))
    }

    /// Sum per index across threads. The result is as long as the longest row.
    #[must_use]
    pub fn sum_per_index(&self) -> Vec<u64> {
        let width = self.0.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = vec![0u64; width];
        for row in &self.0 {
            for (acc, v) in out.iter_mut().zip(row) {
                *acc = acc.wrapping_add(*v);
            }
        }
        out
    }

    /// Sum of every counter of every thread.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0
            .iter()
            .flatten()
            .fold(0u64, |acc, v| acc.wrapping_add(*v))
    }
}

/// A combined counter vector, indexed `[thread][index]` (thread 0 is the main thread).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CombinedCounters(pub Vec<Vec<Combined>>);

impl CombinedCounters {
    /// The per-thread rows.
    #[must_use]
    pub fn per_thread(&self) -> &[Vec<Combined>] {
        &self.0
    }

    /// Number of threads (rows).
    #[must_use]
    pub fn threads(&self) -> usize {
        self.0.len()
    }

    /// The value of one thread's counter, if both indices exist.
    #[must_use]
    pub fn get(&self, thread: usize, index: usize) -> Option<Combined> {
        self.0.get(thread)?.get(index).copied()
    }

    /// Sum of one index across all threads (a thread without that index counts as 0).
    #[must_use]
    pub fn sum_index(&self, index: usize) -> Combined {
        self.0
            .iter()
            .filter_map(|row| row.get(index))
            .fold(Combined::default(), |acc, v| acc.wrapping_add(*v))
    }

    /// Packets and bytes summed per index across threads. The result is as long as the longest row.
    #[must_use]
    pub fn sum_per_index(&self) -> Vec<Combined> {
        let width = self.0.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = vec![Combined::default(); width];
        for row in &self.0 {
            for (acc, v) in out.iter_mut().zip(row) {
                *acc = acc.wrapping_add(*v);
            }
        }
        out
    }

    /// Sum of every counter of every thread.
    #[must_use]
    pub fn total(&self) -> Combined {
        self.0
            .iter()
            .flatten()
            .fold(Combined::default(), |acc, v| acc.wrapping_add(*v))
    }
}

/// The per-thread values a symlink resolves to: column `index2` of its target, for every thread.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymlinkValue {
    /// The target is a simple counter vector; one value per thread.
    Simple(Vec<u64>),
    /// The target is a combined counter vector; one value per thread.
    Combined(Vec<Combined>),
}

impl SymlinkValue {
    /// Number of threads.
    #[must_use]
    pub fn threads(&self) -> usize {
        match self {
            Self::Simple(v) => v.len(),
            Self::Combined(v) => v.len(),
        }
    }
}

/// A resolved symlink (`/err/...` and `/interfaces/...` entries in VPP).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    /// Name of the counter vector the chain ends at.
    pub target: String,
    /// Directory index of that counter vector.
    pub target_index: u32,
    /// The column (`index2`) within the target.
    pub column: u32,
    /// The column's value for every thread.
    pub value: SymlinkValue,
}

/// The typed value of one directory entry.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatValue {
    /// `SCALAR_INDEX`: a u64 held in the entry (VPP stores timestamps as whole seconds).
    Scalar(u64),
    /// `GAUGE` (VPP 26.02 and later): a u64 held in the entry.
    Gauge(u64),
    /// `COUNTER_VECTOR_SIMPLE`, `[thread][index]`.
    SimpleCounters(SimpleCounters),
    /// `COUNTER_VECTOR_COMBINED`, `[thread][index]`.
    CombinedCounters(CombinedCounters),
    /// `NAME_VECTOR`, indexed by object (`None` where VPP stores a null pointer).
    NameVector(Vec<Option<String>>),
    /// `SYMLINK`, resolved to the target's column.
    Symlink(Symlink),
    /// A type this reader does not decode (histograms, ring buffers, or a newer type).
    Unsupported {
        /// The raw directory type code.
        type_code: u32,
    },
}

/// One directory entry with its value, as returned by a dump.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatEntry {
    /// The entry's name, such as `/if/rx` or `first session packet`.
    pub name: String,
    /// The entry's index in the directory vector.
    pub index: u32,
    /// Its value.
    pub value: StatValue,
}
