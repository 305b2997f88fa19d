//! The stats socket: hands the segment's memfd to every client, as VPP does.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::FileType;
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::writer::{StatsSegment, StatsSimError};

fn io_err(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> StatsSimError {
    move |e| StatsSimError::Io {
        op,
        source: e.into(),
    }
}

/// A bound, listening stats socket (`AF_UNIX`, `SOCK_SEQPACKET`).
///
/// For every connection it sends one message with an empty payload carrying the segment's memfd
/// as `SCM_RIGHTS`, then closes the connection, like VPP's `stats_socket_accept_ready`.
#[derive(Debug)]
pub struct StatsListener {
    fd: AsyncFd<OwnedFd>,
    path: PathBuf,
}

impl StatsListener {
    /// Binds and listens on `path`. A stale socket file at `path` is removed first (VPP does the
    /// same); any other kind of file there is an error. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::Io`] when a system call fails.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, StatsSimError> {
        let path = path.as_ref().to_owned();
        if let Ok(stat) = rustix::fs::lstat(&path)
            && FileType::from_raw_mode(stat.st_mode) == FileType::Socket
        {
            rustix::fs::unlink(&path).map_err(io_err("unlink stale socket"))?;
        }
        let addr = SocketAddrUnix::new(&path).map_err(io_err("socket address"))?;
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(io_err("socket"))?;
        rustix::net::bind(&sock, &addr).map_err(io_err("bind"))?;
        rustix::net::listen(&sock, 64).map_err(io_err("listen"))?;
        let fd = super::shm::register_async(sock, Interest::READABLE).map_err(|source| {
            StatsSimError::Io {
                op: "register with tokio",
                source,
            }
        })?;
        Ok(Self { fd, path })
    }

    /// The socket path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections forever, passing `segment`'s memfd to each. Failures on one
    /// connection are logged and do not stop the loop.
    ///
    /// # Errors
    ///
    /// [`StatsSimError::Io`] when waiting on the listening socket itself fails.
    pub async fn run(self, segment: Arc<StatsSegment>) -> Result<(), StatsSimError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|source| StatsSimError::Io {
                    op: "poll listener",
                    source,
                })?;
            loop {
                match rustix::net::accept_with(
                    self.fd.get_ref(),
                    SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                ) {
                    Ok(conn) => match send_fd(&conn, &segment) {
                        Ok(()) => {
                            tracing::debug!(event = "stats_client_served", path = %self.path.display())
                        }
                        Err(e) => {
                            tracing::warn!(event = "stats_client_failed", path = %self.path.display(), error = %e)
                        }
                    },
                    Err(rustix::io::Errno::AGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => {}
                    Err(e) => {
                        tracing::warn!(event = "stats_accept_failed", path = %self.path.display(), error = %e);
                        guard.clear_ready();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for StatsListener {
    fn drop(&mut self) {
        let _ = rustix::fs::unlink(&self.path);
    }
}

/// Sends the memfd with an empty payload; the connection closes when `conn` drops.
fn send_fd(conn: &OwnedFd, segment: &StatsSegment) -> Result<(), StatsSimError> {
    let fds = [segment.fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(StatsSimError::Io {
            op: "sendmsg",
            source: std::io::Error::other("control buffer too small"),
        });
    }
    rustix::net::sendmsg(
        conn.as_fd(),
        &[IoSlice::new(&[])],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(io_err("sendmsg"))?;
    Ok(())
}

/// Binds `path` and serves `segment` on it until the returned future is dropped (abort the task
/// to stop). Equivalent to [`StatsListener::bind`] followed by [`StatsListener::run`].
///
/// # Errors
///
/// As [`StatsListener::bind`] and [`StatsListener::run`].
pub async fn serve(
    path: impl AsRef<Path>,
    segment: Arc<StatsSegment>,
) -> Result<(), StatsSimError> {
    StatsListener::bind(path)?.run(segment).await
}
