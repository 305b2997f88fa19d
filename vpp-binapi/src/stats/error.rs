//! The typed error of the stats segment reader.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while connecting to or reading a stats segment.
///
/// A corrupted or hostile segment always surfaces as one of these variants, never as a panic.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A system call on the stats socket or the segment file descriptor failed.
    #[error("stats socket {path}: {op} failed: {source}", path = path.display())]
    Io {
        /// The socket path (empty when the segment came from a raw file descriptor).
        path: PathBuf,
        /// The operation that failed (`"connect"`, `"recvmsg"`, `"fstat"`, `"mmap"`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The peer closed the stats socket without passing a file descriptor.
    #[error("stats socket {path}: no file descriptor received (SCM_RIGHTS missing)", path = path.display())]
    NoFd {
        /// The socket path.
        path: PathBuf,
    },
    /// The segment is smaller than its fixed header.
    #[error("stats segment too small: {len} bytes, the header needs {needed}")]
    TooSmall {
        /// Size of the mapping or image in bytes.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The header's version word is not 2.
    #[error("unsupported stats segment version {version} (only version 2 is supported)")]
    UnsupportedVersion {
        /// The version word found at offset 0.
        version: u64,
    },
    /// The header says version 2 but the layout is one this reader does not understand.
    #[error("unsupported stats segment layout: {reason}")]
    UnsupportedLayout {
        /// Why the layout was refused.
        reason: &'static str,
    },
    /// A pointer stored in the segment does not translate into the mapping.
    #[error(
        "{what}: pointer {ptr:#x} does not translate into the segment (base {base:#x}, size {size})"
    )]
    PointerOutOfRange {
        /// Which pointer was being followed.
        what: &'static str,
        /// The raw pointer value (a VPP virtual address).
        ptr: u64,
        /// The segment base address recorded in the header.
        base: u64,
        /// Size of the mapping in bytes.
        size: usize,
    },
    /// A vector's length makes it run past the end of the mapping.
    #[error(
        "{what}: vector of {len} elements of {elem_size} bytes at offset {offset:#x} overruns the segment ({size} bytes)"
    )]
    VectorOverrun {
        /// Which vector was being read.
        what: &'static str,
        /// Offset of the vector data in the mapping.
        offset: usize,
        /// The element count read from the vector header.
        len: u64,
        /// Size of one element in bytes.
        elem_size: usize,
        /// Size of the mapping in bytes.
        size: usize,
    },
    /// A directory entry index is outside the directory vector.
    #[error("{what}: directory index {index} is outside the directory ({len} entries)")]
    IndexOutOfRange {
        /// What referred to the index.
        what: &'static str,
        /// The index.
        index: u64,
        /// Number of directory entries.
        len: usize,
    },
    /// A symlink chain is longer than the reader follows (a cycle, or a hostile segment).
    #[error("symlink {name:?}: chain longer than {max} hops (cyclic or corrupted)")]
    SymlinkTooDeep {
        /// The symlink being resolved.
        name: String,
        /// The hop limit.
        max: usize,
    },
    /// A symlink points at an entry that is not a counter vector.
    #[error("symlink {name:?}: target entry {target} has type {type_code}, not a counter vector")]
    SymlinkTarget {
        /// The symlink being resolved.
        name: String,
        /// The target directory index.
        target: u32,
        /// The target's type code.
        type_code: u32,
    },
    /// A symlink's column is outside the target counter vector of some thread.
    #[error(
        "symlink {name:?}: column {column} is outside thread {thread}'s counters ({len} entries)"
    )]
    SymlinkColumn {
        /// The symlink being resolved.
        name: String,
        /// The column (`index2`).
        column: u32,
        /// The thread whose vector is too short.
        thread: usize,
        /// That vector's length.
        len: usize,
    },
    /// The writer kept the segment busy: no consistent snapshot within the retry policy.
    #[error("stats segment busy: no consistent snapshot after {attempts} attempts")]
    Busy {
        /// How many snapshot attempts were made.
        attempts: u32,
    },
    /// Reading would copy more data than the segment could legitimately hold (aliased vectors).
    #[error("read budget of {limit} bytes exceeded (aliased or corrupted vectors)")]
    BudgetExceeded {
        /// The budget in bytes.
        limit: usize,
    },
    /// A name pattern is not a valid regular expression.
    #[error("invalid stats name pattern: {0}")]
    Pattern(#[from] regex::Error),
    /// No directory entry has this name.
    #[error("no stats entry named {name:?}")]
    NotFound {
        /// The name looked up.
        name: String,
    },
}
