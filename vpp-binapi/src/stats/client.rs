//! Connecting to the stats socket and reading the mapped segment.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketAddrUnix,
    SocketFlags, SocketType, sockopt,
};

use super::error::StatsError;
use super::parse::{Parser, RetryPolicy, Source, StatsFilter, consistent};
use super::segment::LiveSegment;
use super::types::StatEntry;

/// How long connecting waits for VPP to pass the segment's file descriptor.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A mapped stats segment.
///
/// Reads are synchronous: each is a bounded series of memory copies under VPP's optimistic
/// epoch / in-progress protocol, retried according to the [`RetryPolicy`].
///
/// Directory names are cached per epoch (VPP bumps the epoch on every directory change), so
/// lookups by name or pattern do not re-read every entry's name from shared memory.
#[derive(Debug)]
pub struct StatsClient {
    segment: LiveSegment,
    policy: RetryPolicy,
    names: Mutex<Option<Arc<NameCache>>>,
}

/// The directory's names at one epoch.
#[derive(Debug)]
struct NameCache {
    epoch: u64,
    names: Vec<String>,
}

impl StatsClient {
    /// Connects to a stats socket (`/run/vpp/stats.sock` by default in VPP), receives the segment's
    /// memfd and maps it read-only. The blocking socket work runs on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// [`StatsError::Io`] when a system call fails, [`StatsError::NoFd`] when the peer sends no
    /// descriptor, and the header errors of [`StatsClient::from_fd`].
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, StatsError> {
        let path = path.as_ref().to_owned();
        let join_path = path.clone();
        tokio::task::spawn_blocking(move || Self::connect_blocking(&path))
            .await
            .map_err(|e| StatsError::Io {
                path: join_path,
                op: "spawn_blocking",
                source: io::Error::other(e),
            })?
    }

    /// Blocking variant of [`StatsClient::connect`].
    ///
    /// # Errors
    ///
    /// As [`StatsClient::connect`].
    pub fn connect_blocking(path: impl AsRef<Path>) -> Result<Self, StatsError> {
        let path = path.as_ref();
        let fd = receive_fd(path)?;
        Self::map(&fd, path)
    }

    /// Maps an already received segment file descriptor.
    ///
    /// # Errors
    ///
    /// [`StatsError::Io`] when `fstat` or `mmap` fails, [`StatsError::TooSmall`] when the file
    /// cannot hold a header, and [`StatsError::UnsupportedVersion`] /
    /// [`StatsError::UnsupportedLayout`] when the header is not the 22.06+ v2 layout.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, StatsError> {
        Self::map(&fd, Path::new(""))
    }

    fn map(fd: &OwnedFd, path: &Path) -> Result<Self, StatsError> {
        let client = Self {
            segment: LiveSegment::map(fd, path)?,
            policy: RetryPolicy::default(),
            names: Mutex::new(None),
        };
        // Refuse an unknown layout up front rather than at the first read.
        consistent(&client.segment, client.policy, |_, _| Ok(()))?;
        Ok(client)
    }

    /// Replaces the retry policy used by later reads.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Size of the mapping in bytes.
    #[must_use]
    pub fn size(&self) -> usize {
        self.segment.size()
    }

    /// The segment's current epoch (bumped by VPP after every structural change).
    ///
    /// # Errors
    ///
    /// [`StatsError::TooSmall`] cannot happen after a successful connect; kept for symmetry.
    pub fn epoch(&self) -> Result<u64, StatsError> {
        use super::parse::OFF_EPOCH;
        self.segment
            .load_acquire(OFF_EPOCH)
            .ok_or(StatsError::TooSmall {
                len: self.segment.size(),
                needed: super::parse::HEADER_SIZE,
            })
    }

    /// Names of the entries matching any of `patterns` (all entries if `patterns` is empty).
    ///
    /// # Errors
    ///
    /// [`StatsError::Pattern`] for a bad pattern, [`StatsError::Busy`] when no consistent
    /// snapshot could be taken, or a corruption error.
    pub fn ls<P: AsRef<str>>(&self, patterns: &[P]) -> Result<Vec<String>, StatsError> {
        let filter = StatsFilter::new(patterns)?;
        self.with_names(|p, names| p.ls(&filter, names))
    }

    /// Entries (with values) whose names match any of `patterns`, like GoVPP's
    /// `DumpStats("^/net/route/to$")`. An empty pattern list dumps everything.
    ///
    /// # Errors
    ///
    /// As [`StatsClient::ls`].
    pub fn dump<P: AsRef<str>>(&self, patterns: &[P]) -> Result<Vec<StatEntry>, StatsError> {
        let filter = StatsFilter::new(patterns)?;
        self.dump_filter(&filter)
    }

    /// Like [`StatsClient::dump`] with a precompiled filter.
    ///
    /// # Errors
    ///
    /// [`StatsError::Busy`] when no consistent snapshot could be taken, or a corruption error.
    pub fn dump_filter(&self, filter: &StatsFilter) -> Result<Vec<StatEntry>, StatsError> {
        self.with_names(|p, names| p.dump(filter, names))
    }

    /// The entry named exactly `name`.
    ///
    /// # Errors
    ///
    /// [`StatsError::NotFound`] when no entry has that name, [`StatsError::Busy`], or a
    /// corruption error.
    pub fn get(&self, name: &str) -> Result<StatEntry, StatsError> {
        self.with_names(|p, names| p.get(name, names))
    }

    /// Copies the whole mapping under the consistency protocol, for offline parsing with
    /// [`parse_image`](super::parse_image) (fixtures, fuzz corpora). Allocates the segment's size.
    ///
    /// # Errors
    ///
    /// [`StatsError::Busy`] when no consistent copy could be taken.
    pub fn image(&self) -> Result<Vec<u8>, StatsError> {
        consistent(&self.segment, self.policy, |_, _| {
            let mut out = vec![0u8; self.segment.size()];
            self.segment.read_bytes(0, &mut out);
            Ok(out)
        })
    }
}

impl StatsClient {
    /// Runs `read` in a consistent snapshot with the directory names of its epoch, taken from
    /// the cache or read afresh (and cached once the snapshot proved consistent).
    fn with_names<T>(
        &self,
        mut read: impl FnMut(&Parser<'_, LiveSegment>, Option<&[String]>) -> Result<T, StatsError>,
    ) -> Result<T, StatsError> {
        let cached = self
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (out, names) = consistent(&self.segment, self.policy, |p, epoch| {
            let names = match (&cached, epoch) {
                (Some(c), Some(e)) if c.epoch == e => c.clone(),
                _ => Arc::new(NameCache {
                    epoch: epoch.unwrap_or(0),
                    names: p.all_names()?,
                }),
            };
            Ok((read(p, Some(&names.names))?, names))
        })?;
        *self.names.lock().unwrap_or_else(PoisonError::into_inner) = Some(names);
        Ok(out)
    }
}

/// Connects to the SEQPACKET stats socket and receives the memfd VPP passes with SCM_RIGHTS.
fn receive_fd(path: &Path) -> Result<OwnedFd, StatsError> {
    let io = |op, source: rustix::io::Errno| StatsError::Io {
        path: path.to_owned(),
        op,
        source: source.into(),
    };
    let addr = SocketAddrUnix::new(path).map_err(|e| io("socket address", e))?;
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| io("socket", e))?;
    sockopt::set_socket_timeout(&sock, sockopt::Timeout::Recv, Some(RECV_TIMEOUT))
        .map_err(|e| io("setsockopt", e))?;
    rustix::net::connect(&sock, &addr).map_err(|e| io("connect", e))?;

    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut payload = [0u8; 16];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(
            &sock,
            &mut [io::IoSliceMut::new(&mut payload)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        match received {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io("recvmsg", e)),
        }
        let mut fd = None;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                for received_fd in fds {
                    // Keep the first descriptor; any extra ones are closed on drop.
                    if fd.is_none() {
                        fd = Some(received_fd);
                    }
                }
            }
        }
        return fd.ok_or_else(|| StatsError::NoFd {
            path: PathBuf::from(path),
        });
    }
}
