//! Probe sockets, created in the network namespace probes run in (`healthchecker.netns`).
//!
//! On a VPP router the backends are reached through the dataplane's interfaces, which Linux
//! sees only inside a network namespace. A [`SocketFactory`] creates every probe socket (TCP
//! connect, the half-open engine's raw, reservation and route-lookup sockets, HTTP/HTTPS,
//! TLS, ICMP); a socket keeps the namespace it was created in, so the daemon's own sockets
//! (gRPC, metrics, VPP's unix sockets) stay where they are.
//!
//! | factory | where sockets are created | cost per socket |
//! |---|---|---|
//! | [`SocketFactory::host`] (the default) | inline, in the caller's namespace | none added |
//! | [`SocketFactory::enter`] | on one dedicated thread that entered the namespace (`setns`) | a round trip to that thread, plus a `stat` of the namespace file per probe |
//!
//! The namespace is given as `healthchecker.netns` is written ([`netns_path`]):
//!
//! | `netns` | the namespace file |
//! |---|---|
//! | a name, `dataplane` | [`NETNS_DIR`]`/dataplane`, what `ip netns add dataplane` made |
//! | a path, `/var/run/netns/dataplane` or `/proc/<pid>/ns/net` | that file (a process's namespace needs no name) |
//!
//! The namespace file is opened once. Entering it needs `CAP_SYS_ADMIN`; a missing file, a
//! file that is not a network namespace, or a missing capability is a [`NetnsError`] from
//! [`SocketFactory::enter`], naming the namespace. At run time a namespace can disappear
//! (`ip netns del`): the thread keeps the old one alive, but probes stop at
//! [`SocketFactory::check`], which fails once the file is gone or names another namespace,
//! and the probe fails with a detail that says so.

use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpSocket;

/// Where named network namespaces live (`ip netns add NAME` creates `NETNS_DIR/NAME`).
pub const NETNS_DIR: &str = "/var/run/netns";

/// A network namespace could not be entered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The namespace file does not exist.
    #[error("network namespace {name}: {path} does not exist")]
    NotFound {
        /// The namespace as configured.
        name: String,
        /// The file looked for.
        path: PathBuf,
    },
    /// The namespace file exists but cannot be opened.
    #[error("network namespace {name}: cannot open {path}: {source}")]
    Open {
        /// The namespace as configured.
        name: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The process may not enter the namespace.
    #[error(
        "network namespace {name}: entering it needs CAP_SYS_ADMIN ({path}: {source}); \
         run maglevd with CAP_SYS_ADMIN or unset healthchecker.netns"
    )]
    Permission {
        /// The namespace as configured.
        name: String,
        /// The file.
        path: PathBuf,
        /// The OS error (`EPERM`).
        #[source]
        source: io::Error,
    },
    /// The file is not a network namespace.
    #[error("network namespace {name}: {path} is not a network namespace ({source})")]
    NotANamespace {
        /// The namespace as configured.
        name: String,
        /// The file.
        path: PathBuf,
        /// The OS error (`EINVAL`).
        #[source]
        source: io::Error,
    },
    /// The thread that creates the sockets could not start.
    #[error("network namespace {name}: cannot start the socket thread: {source}")]
    Thread {
        /// The namespace as configured.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The file of a network namespace: `NAME` is [`NETNS_DIR`]`/NAME`, anything with a `/` is a
/// path (such as `/proc/1234/ns/net`).
pub fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        Path::new(NETNS_DIR).join(netns)
    }
}

/// Creates probe sockets, in the caller's namespace or in a configured one. Cheap to clone;
/// see the [module docs](self).
#[derive(Clone, Default)]
pub struct SocketFactory {
    ns: Option<Arc<NsThread>>,
}

/// The dedicated thread of a namespace, and what identifies the namespace.
struct NsThread {
    name: String,
    path: PathBuf,
    /// Device and inode of the namespace file when it was opened.
    id: (u64, u64),
    requests: mpsc::Sender<Request>,
}

/// One socket to create on the namespace's thread.
struct Request {
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
    reply: mpsc::SyncSender<io::Result<Socket>>,
}

impl fmt::Debug for SocketFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ns {
            None => f.write_str("SocketFactory(host)"),
            Some(ns) => write!(f, "SocketFactory(netns {})", ns.name),
        }
    }
}

impl PartialEq for SocketFactory {
    /// Two factories are equal when they create sockets in the same place: both in the
    /// caller's namespace, or in the same namespace file.
    fn eq(&self, other: &Self) -> bool {
        match (&self.ns, &other.ns) {
            (None, None) => true,
            (Some(a), Some(b)) => a.id == b.id,
            _ => false,
        }
    }
}

impl SocketFactory {
    /// Sockets in the caller's own namespace, created inline (the default).
    pub const fn host() -> Self {
        Self { ns: None }
    }

    /// Sockets in the network namespace `netns` (a name under [`NETNS_DIR`], or a path; see
    /// [`netns_path`]). Opens the namespace file, starts the socket thread and waits until
    /// it has entered the namespace.
    ///
    /// # Errors
    /// The file is missing or unreadable, is not a network namespace, or the process lacks
    /// `CAP_SYS_ADMIN`; each error names the namespace.
    pub fn enter(netns: &str) -> Result<Self, NetnsError> {
        let name = netns.to_owned();
        let path = netns_path(netns);
        let file = File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => NetnsError::NotFound {
                name: name.clone(),
                path: path.clone(),
            },
            _ => NetnsError::Open {
                name: name.clone(),
                path: path.clone(),
                source,
            },
        })?;
        let meta = file.metadata().map_err(|source| NetnsError::Open {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        let id = (meta.dev(), meta.ino());
        let (requests, queue) = mpsc::channel::<Request>();
        let (entered_tx, entered) = mpsc::sync_channel::<io::Result<()>>(1);
        std::thread::Builder::new()
            .name("maglev-netns".to_owned())
            .spawn(move || {
                let joined = move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(LinkNameSpaceType::Network),
                )
                .map_err(io::Error::from);
                drop(file);
                let ok = joined.is_ok();
                let _ = entered_tx.send(joined);
                if ok {
                    serve(queue);
                }
            })
            .map_err(|source| NetnsError::Thread {
                name: name.clone(),
                source,
            })?;
        let joined = entered.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the socket thread ended before entering the namespace",
            ))
        });
        if let Err(source) = joined {
            return Err(match source.kind() {
                io::ErrorKind::PermissionDenied => NetnsError::Permission { name, path, source },
                io::ErrorKind::InvalidInput => NetnsError::NotANamespace { name, path, source },
                _ => NetnsError::Open { name, path, source },
            });
        }
        tracing::info!(
            name: "netns-entered",
            target: "maglev_health::netns",
            netns = %name,
            path = %path.display(),
            "netns-entered"
        );
        Ok(Self {
            ns: Some(Arc::new(NsThread {
                name,
                path,
                id,
                requests,
            })),
        })
    }

    /// The namespace as configured, or `None` for the caller's own namespace.
    pub fn netns(&self) -> Option<&str> {
        self.ns.as_deref().map(|ns| ns.name.as_str())
    }

    /// The namespace file, or `None` for the caller's own namespace.
    pub fn netns_file(&self) -> Option<&Path> {
        self.ns.as_deref().map(|ns| ns.path.as_path())
    }

    /// Whether the namespace is still there: its file exists and names the namespace that
    /// was entered. Always `Ok` for the caller's own namespace.
    ///
    /// # Errors
    /// An error saying the namespace is gone or was replaced, naming it.
    pub fn check(&self) -> io::Result<()> {
        let Some(ns) = &self.ns else {
            return Ok(());
        };
        match std::fs::metadata(&ns.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == ns.id => Ok(()),
            Ok(_) => Err(io::Error::other(format!(
                "network namespace {} was replaced ({} names another namespace now; reload to use it)",
                ns.name,
                ns.path.display()
            ))),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!(
                    "network namespace {} is gone ({}: {})",
                    ns.name,
                    ns.path.display(),
                    crate::probe::io_detail(&e)
                ),
            )),
        }
    }

    /// A socket (close-on-exec, blocking) in this factory's namespace.
    ///
    /// # Errors
    /// The OS error of `socket(2)`, or an error when the namespace's thread is gone.
    pub fn socket(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<Socket> {
        let Some(ns) = &self.ns else {
            return Socket::new(domain, ty, protocol);
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let request = Request {
            domain,
            ty,
            protocol,
            reply,
        };
        let gone = || {
            io::Error::other(format!(
                "network namespace {}: socket thread ended",
                ns.name
            ))
        };
        ns.requests.send(request).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// A non-blocking TCP socket of `target`'s family, for tokio.
    pub(crate) fn tcp(&self, target: SocketAddr) -> io::Result<TcpSocket> {
        if self.ns.is_none() {
            // The default path: one system call, as before there were namespaces.
            return match target {
                SocketAddr::V4(_) => TcpSocket::new_v4(),
                SocketAddr::V6(_) => TcpSocket::new_v6(),
            };
        }
        let socket = self.socket(Domain::for_address(target), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        Ok(TcpSocket::from_std_stream(socket.into()))
    }
}

/// The namespace thread's loop: one socket per request, until every factory is dropped.
fn serve(queue: mpsc::Receiver<Request>) {
    for request in queue {
        let socket = Socket::new(request.domain, request.ty, request.protocol);
        // The requester may have given up (its probe was cancelled): the socket just closes.
        let _ = request.reply.send(socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_live_under_the_netns_dir_and_paths_stay_paths() {
        assert_eq!(
            netns_path("dataplane"),
            PathBuf::from("/var/run/netns/dataplane")
        );
        assert_eq!(
            netns_path("/proc/1/ns/net"),
            PathBuf::from("/proc/1/ns/net")
        );
        assert_eq!(
            netns_path("/var/run/netns/dataplane"),
            PathBuf::from("/var/run/netns/dataplane")
        );
    }

    #[test]
    fn a_missing_path_is_named_in_the_error() {
        let err = SocketFactory::enter("/var/run/netns/maglev-no-such-ns-4712").unwrap_err();
        assert!(matches!(err, NetnsError::NotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("/var/run/netns/maglev-no-such-ns-4712"),
            "{msg}"
        );
    }

    #[test]
    fn host_factory_creates_inline_and_is_always_there() {
        let f = SocketFactory::host();
        assert_eq!(f.netns(), None);
        assert!(f.check().is_ok());
        let s = f.socket(Domain::IPV4, Type::DGRAM, None).unwrap();
        assert_eq!(s.r#type().unwrap(), Type::DGRAM);
        assert_eq!(f, SocketFactory::default());
    }

    #[test]
    fn a_missing_namespace_is_named_in_the_error() {
        let err = SocketFactory::enter("maglev-no-such-ns-4711").unwrap_err();
        assert!(matches!(err, NetnsError::NotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("maglev-no-such-ns-4711"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_namespace_is_refused() {
        // Entering needs CAP_SYS_ADMIN first; without it the error is the permission one.
        let err = SocketFactory::enter("/proc/self/status").unwrap_err();
        assert!(
            matches!(
                err,
                NetnsError::NotANamespace { .. } | NetnsError::Permission { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn own_namespace_by_path_creates_sockets_on_the_thread() {
        // Entering our own namespace changes nothing, so this runs wherever CAP_SYS_ADMIN is
        // held; without it, the permission error must name the capability.
        match SocketFactory::enter("/proc/self/ns/net") {
            Ok(f) => {
                assert_eq!(f.netns(), Some("/proc/self/ns/net"));
                let s = f.socket(Domain::IPV4, Type::STREAM, None).unwrap();
                assert_eq!(s.r#type().unwrap(), Type::STREAM);
                assert!(f.tcp("127.0.0.1:1".parse().unwrap()).is_ok());
                assert_ne!(f, SocketFactory::host());
                assert_eq!(f, f.clone());
            }
            Err(e) => assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}"),
        }
    }
}
