//! Startup warmup ("restart neutrality", spec B §3.3): after a restart, VPP still holds the
//! state the previous instance programmed, while every backend here starts `unknown`. Syncing
//! at once would zero every weight, so VPP is left alone until backends had a chance to
//! resolve:
//!
//! - before `startup-min-delay`, nothing touches VPP (phase [`Phase::Hold`]);
//! - between min and `startup-max-delay`, a frontend is released for sync as soon as every
//!   backend it references has left `unknown` (phase [`Phase::PerFrontend`]); released
//!   frontends stay released. Syncs in this phase are per-VIP: stale VIPs are not removed yet;
//! - at max-delay, or once every frontend is released, the warmup is over and full syncs
//!   (including removal of VIPs not in the config) run (phase [`Phase::Done`]).
//!
//! One-time flushes (spec A.3) asked for by transitions seen while a frontend was held are
//! dropped: such a transition is the first resolution of a backend after a restart, not a
//! change of what VPP was told, and the weight sync on release still flushes every AS it
//! takes to weight 0 in a flushing state.
//!
//! The clock starts with the process; a reload does not reset it. Both delays 0 turn the
//! warmup off. The tracker is pure: callers pass the time elapsed since start.

use std::collections::BTreeSet;
use std::time::Duration;

/// Where the warmup stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Hands off VPP entirely.
    Hold,
    /// Only released frontends are synced (per VIP, no VIP removal).
    PerFrontend,
    /// Warmup over: full syncs.
    Done,
}

/// The process-wide warmup tracker.
#[derive(Clone, Debug)]
pub struct Warmup {
    min: Duration,
    max: Duration,
    released: BTreeSet<String>,
    done: bool,
}

impl Warmup {
    /// A tracker with the config's `startup-min-delay` and `startup-max-delay`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            released: BTreeSet::new(),
            done: min.is_zero() && max.is_zero(),
        }
    }

    /// Takes new delays from a reload; the clock and the released set are kept.
    pub fn set_delays(&mut self, min: Duration, max: Duration) {
        self.min = min;
        self.max = max.max(min);
        if min.is_zero() && max.is_zero() {
            self.done = true;
        }
    }

    /// The phase at `elapsed` since start.
    pub fn phase(&self, elapsed: Duration) -> Phase {
        if self.done || elapsed >= self.max {
            Phase::Done
        } else if elapsed < self.min {
            Phase::Hold
        } else {
            Phase::PerFrontend
        }
    }

    /// The next phase boundary after `elapsed`, as time since start, if any.
    pub fn next_boundary(&self, elapsed: Duration) -> Option<Duration> {
        match self.phase(elapsed) {
            Phase::Hold => Some(self.min),
            Phase::PerFrontend => Some(self.max),
            Phase::Done => None,
        }
    }

    /// Whether `frontend` may be synced now. In the per-frontend phase, `resolved` says
    /// whether every backend of the frontend has left `unknown`; a `true` releases the
    /// frontend for good (returned as `Released`, so callers can log it once).
    pub fn admit(&mut self, elapsed: Duration, frontend: &str, resolved: bool) -> Admission {
        match self.phase(elapsed) {
            Phase::Done => Admission::Open,
            Phase::Hold => Admission::Held,
            Phase::PerFrontend if self.released.contains(frontend) => Admission::Open,
            Phase::PerFrontend if resolved => {
                self.released.insert(frontend.to_owned());
                Admission::Released
            }
            Phase::PerFrontend => Admission::Held,
        }
    }

    /// Ends the warmup early when every one of `frontends` has been released. Returns whether
    /// it ended now.
    pub fn finish_if_all_released<'a>(
        &mut self,
        frontends: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        if self.done {
            return false;
        }
        if frontends.into_iter().all(|f| self.released.contains(f)) {
            self.done = true;
            return true;
        }
        false
    }

    /// Marks the warmup as over (called when the max-delay passes).
    pub fn finish(&mut self) -> bool {
        !std::mem::replace(&mut self.done, true)
    }
}

/// Whether a frontend may be synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not yet.
    Held,
    /// Yes, and it was released by this call.
    Released,
    /// Yes.
    Open,
}

impl Admission {
    /// Whether the frontend may be synced.
    pub fn allowed(self) -> bool {
        !matches!(self, Self::Held)
    }
}
