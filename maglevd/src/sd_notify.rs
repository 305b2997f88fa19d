//! systemd's service notifications (`sd_notify(3)`, `Type=notify`): one datagram per state
//! to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
//! Without `$NOTIFY_SOCKET` nothing is sent.
//!
//! | when | state sent |
//! |---|---|
//! | the config is loaded and every listener is bound | `READY=1` |
//! | a SIGHUP reload starts / ends | `RELOADING=1` / `READY=1` |
//! | shutdown starts | `STOPPING=1` |
//! | every half `$WATCHDOG_USEC` (when set, and `$WATCHDOG_PID` is unset or ours) | `WATCHDOG=1` |

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

/// A state reported to systemd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Startup finished: the service is up.
    Ready,
    /// The configuration is being reloaded.
    Reloading,
    /// Shutdown started.
    Stopping,
    /// The watchdog keep-alive.
    Watchdog,
}

impl State {
    /// The datagram's text.
    pub fn message(self) -> &'static str {
        match self {
            Self::Ready => "READY=1",
            Self::Reloading => "RELOADING=1",
            Self::Stopping => "STOPPING=1",
            Self::Watchdog => "WATCHDOG=1",
        }
    }
}

/// Why `$NOTIFY_SOCKET` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// It names neither an absolute path nor an abstract socket (`@name`).
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor @abstract")]
    BadAddress(String),
    /// The address is too long for a unix socket.
    #[error("NOTIFY_SOCKET={0:?}: {1}")]
    Address(String, #[source] io::Error),
    /// The sending socket cannot be created.
    #[error("creating the notification socket: {0}")]
    Socket(#[source] io::Error),
}

/// The socket address `$NOTIFY_SOCKET` names: `/path` or `@abstract`.
///
/// # Errors
///
/// Any other form, or a name too long for a unix socket address.
pub fn parse_address(value: &OsStr) -> Result<SocketAddr, NotifyError> {
    let bytes = value.as_bytes();
    let shown = || value.to_string_lossy().into_owned();
    let addr = match bytes.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        Some(b'/') => SocketAddr::from_pathname(value),
        _ => return Err(NotifyError::BadAddress(shown())),
    };
    addr.map_err(|e| NotifyError::Address(shown(), e))
}

/// The watchdog ping interval, half of `$WATCHDOG_USEC`, when the watchdog is on for
/// process `own_pid` (`$WATCHDOG_PID` unset or equal to it).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
}

/// Sends states to systemd; cheap to clone, and a no-op without `$NOTIFY_SOCKET`.
#[derive(Clone, Default)]
pub struct Notifier {
    target: Option<Arc<Target>>,
    watchdog: Option<Duration>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("enabled", &self.target.is_some())
            .field("watchdog", &self.watchdog)
            .finish()
    }
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`: a no-op notifier when
    /// `$NOTIFY_SOCKET` is unset or empty.
    ///
    /// # Errors
    ///
    /// `$NOTIFY_SOCKET` is set but unusable.
    pub fn from_env() -> Result<Self, NotifyError> {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) else {
            return Ok(Self::default());
        };
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Ok(Self::to(parse_address(&value)?)?.with_watchdog(watchdog))
    }

    /// Sends to `addr`.
    ///
    /// # Errors
    ///
    /// The sending socket cannot be created.
    pub fn to(addr: SocketAddr) -> Result<Self, NotifyError> {
        let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
        // A full or slow receiver must never block the daemon.
        socket.set_nonblocking(true).map_err(NotifyError::Socket)?;
        Ok(Self {
            target: Some(Arc::new(Target { socket, addr })),
            watchdog: None,
        })
    }

    /// With a watchdog ping interval.
    pub fn with_watchdog(mut self, interval: Option<Duration>) -> Self {
        self.watchdog = interval;
        self
    }

    /// The watchdog ping interval, if the watchdog is on.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.target.is_some())
    }

    /// Sends `state`; a failure is logged (`sd-notify-failed`), never fatal.
    pub fn send(&self, state: State) {
        let Some(target) = &self.target else { return };
        if let Err(error) = target
            .socket
            .send_to_addr(state.message().as_bytes(), &target.addr)
        {
            tracing::warn!(name: "sd-notify-failed", state = state.message(), error = %error, "sd-notify-failed");
        }
    }

    /// Starts the watchdog pings on the current tokio runtime, when the watchdog is on;
    /// they stop when the returned guard is dropped.
    pub fn spawn_watchdog(&self) -> Option<WatchdogGuard> {
        let interval = self.watchdog()?;
        let notifier = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                notifier.send(State::Watchdog);
            }
        });
        Some(WatchdogGuard(task))
    }
}

/// Stops the watchdog pings when dropped.
#[derive(Debug)]
pub struct WatchdogGuard(tokio::task::JoinHandle<()>);

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        let path = parse_address(OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let abs = parse_address(OsStr::new("@/org/freedesktop/systemd1/notify")).unwrap();
        assert_eq!(
            abs.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify"[..])
        );
        for bad in ["relative/path", "x"] {
            assert!(
                matches!(
                    parse_address(OsStr::new(bad)),
                    Err(NotifyError::BadAddress(_))
                ),
                "{bad}"
            );
        }
        let long = format!("/{}", "x".repeat(200));
        assert!(matches!(
            parse_address(OsStr::new(&long)),
            Err(NotifyError::Address(..))
        ));
    }

    #[test]
    fn the_watchdog_pings_at_half_its_timeout_for_this_process_only() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
    }

    #[test]
    fn states_reach_an_abstract_socket() {
        let name = format!("maglevd-sd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::to(parse_address(OsStr::new(&format!("@{name}"))).unwrap())
            .unwrap()
            .with_watchdog(Some(Duration::from_secs(1)));
        assert_eq!(notifier.watchdog(), Some(Duration::from_secs(1)));
        let mut buf = [0; 64];
        for state in [State::Ready, State::Reloading, State::Stopping] {
            notifier.send(state);
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], state.message().as_bytes());
        }
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_no_watchdog_runs() {
        let notifier = Notifier::default().with_watchdog(Some(Duration::from_secs(1)));
        assert_eq!(notifier.watchdog(), None);
        assert!(notifier.spawn_watchdog().is_none());
        notifier.send(State::Ready);
    }
}
