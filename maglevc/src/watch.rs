//! `watch events`: the event stream, printed one line (or one JSON document) per event until
//! `num` events, the end of the stream, a key (when stdin is a terminal) or Ctrl-C.
//!
//! While it runs on a terminal, stdin is in cbreak mode (no line buffering, no echo, no
//! signal keys, so Ctrl-C arrives as a key like any other); a guard restores the terminal's
//! settings however the watch ends. A small thread polls stdin for a key and is told to stop
//! when the watch ends, so it never steals a later keystroke from the shell.

use std::io::{IsTerminal as _, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use maglev_api::v1::{EventKind, LogLevel, WatchRequest};
use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use tokio::sync::oneshot;

use crate::exec::{Client, Failure};
use crate::render::event_line;
use crate::style::Theme;
use crate::tree::{Args, LEVELS};

/// How often the key thread looks at its stop flag.
const KEY_POLL: Duration = Duration::from_millis(50);

/// The request for a `watch events` line: its backend and frontend filters, and log records
/// at the given level when `log` is given.
#[must_use]
pub fn request(args: &Args) -> WatchRequest {
    let kinds = if args.log {
        vec![
            EventKind::Backend,
            EventKind::Frontend,
            EventKind::VppConnection,
            EventKind::SyncOp,
            EventKind::SyncSummary,
            EventKind::ConfigReload,
            EventKind::Log,
        ]
    } else {
        Vec::new()
    };
    // In the order of `tree::LEVELS`.
    const LEVEL_OF: [LogLevel; LEVELS.len()] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];
    let log_level = args
        .level
        .and_then(|i| LEVEL_OF.get(i).copied())
        .unwrap_or(LogLevel::Info);
    WatchRequest {
        backends: args.backend.iter().cloned().collect(),
        frontends: args.frontend.iter().cloned().collect(),
        kinds: kinds.into_iter().map(i32::from).collect(),
        log_level: log_level.into(),
    }
}

/// Why a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `num` events were shown.
    Count,
    /// The server ended the stream.
    End,
    /// A key was pressed.
    Key,
    /// Ctrl-C (as a signal, when stdin is not a terminal).
    Interrupt,
}

/// Restores a terminal's settings when dropped.
struct TermGuard {
    saved: Termios,
}

impl TermGuard {
    /// Puts stdin in cbreak mode without echo or signal keys; `None` when stdin is not a
    /// terminal (or refuses).
    fn cbreak() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Waits for one byte on stdin on a thread of its own; the receiver fires on a key, and the
/// thread ends soon after `stop` is set.
fn key_watcher(stop: Arc<AtomicBool>) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: KEY_POLL.as_nanos() as _,
        };
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [rustix::event::PollFd::new(
                &stdin,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) => {}
                Ok(_) => {
                    let mut byte = [0u8; 1];
                    let _ = rustix::io::read(&stdin, &mut byte);
                    let _ = tx.send(());
                    return;
                }
                Err(_) => return,
            }
        }
    });
    rx
}

/// Streams events to `out` until a stop condition; returns why it stopped.
///
/// # Errors
/// The server's status when the call or the stream fails; writing to `out` failing ends the
/// watch as [`Stop::End`].
pub async fn run(
    client: &mut Client,
    args: &Args,
    theme: Theme,
    json: bool,
    out: &mut dyn Write,
) -> Result<Stop, Failure> {
    let mut stream = client.watch_events(request(args)).await?.into_inner();
    let guard = TermGuard::cbreak();
    let stop_keys = Arc::new(AtomicBool::new(false));
    let mut key = if guard.is_some() {
        Some(key_watcher(Arc::clone(&stop_keys)))
    } else {
        None
    };
    let limit = args.count;
    let mut seen = 0u64;
    let result = loop {
        let key_pressed = async {
            match key.as_mut() {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(event)) => {
                    let line = if json {
                        crate::json::event(&event).to_string()
                    } else {
                        event_line(&event, theme)
                    };
                    // In cbreak mode the terminal still translates \n on output (OPOST).
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        break Ok(Stop::End);
                    }
                    seen += 1;
                    if limit.is_some_and(|n| seen >= n) {
                        break Ok(Stop::Count);
                    }
                }
                Ok(None) => break Ok(Stop::End),
                Err(status) => break Err(Failure::Server(status)),
            },
            () = key_pressed => break Ok(Stop::Key),
            _ = tokio::signal::ctrl_c() => break Ok(Stop::Interrupt),
        }
    };
    stop_keys.store(true, Ordering::Relaxed);
    drop(guard);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_filters_and_log_records_only_when_asked() {
        let plain = request(&Args::default());
        assert!(plain.kinds.is_empty());
        assert!(plain.backends.is_empty() && plain.frontends.is_empty());
        let args = Args {
            backend: Some("nginx0".into()),
            frontend: Some("web".into()),
            log: true,
            level: Some(3),
            ..Args::default()
        };
        let r = request(&args);
        assert_eq!(r.backends, vec!["nginx0"]);
        assert_eq!(r.frontends, vec!["web"]);
        assert!(r.kinds.contains(&i32::from(EventKind::Log)));
        assert!(r.kinds.contains(&i32::from(EventKind::Backend)));
        assert_eq!(r.log_level, i32::from(LogLevel::Warn));
        let default_level = request(&Args {
            log: true,
            ..Args::default()
        });
        assert_eq!(default_level.log_level, i32::from(LogLevel::Info));
    }
}
