//! Startup warmup ("restart neutrality", spec B §3.3): after a restart, VPP still holds the
//! state the previous instance programmed, while every backend here starts `unknown`. Syncing
//! at once would zero every weight, so VPP is left alone until backends had a chance to
//! resolve.
//!
//! | phase | elapsed since start | a frontend is admitted for sync | syncs |
//! |---|---|---|---|
//! | [`Phase::Hold`] | `< startup-min-delay` | never ([`Admission::Held`]) | none |
//! | [`Phase::PerFrontend`] | `< startup-max-delay` | once every backend it references has left `unknown` ([`Admission::Released`] the first time, [`Admission::Open`] after) | per VIP, stale VIPs kept |
//! | [`Phase::Done`] | `>= startup-max-delay`, or every frontend released | always ([`Admission::Open`]) | full, stale VIPs removed |
//!
//! Released frontends stay released, and `Done` is final. The clock starts with the process;
//! a reload does not reset it ([`Warmup::set_delays`] keeps it and the released set). Both
//! delays 0 turn the warmup off. The tracker is pure: callers pass the time elapsed since
//! start.

use std::collections::BTreeSet;
use std::time::Duration;

/// Where the warmup stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Hands off VPP entirely.
    Hold,
    /// Only released frontends are synced (per VIP, no VIP removal).
    PerFrontend,
    /// Warmup over: full syncs.
    Done,
}

impl Phase {
    /// The lower-case name (`hold`, `per-frontend`, `done`), for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::PerFrontend => "per-frontend",
            Self::Done => "done",
        }
    }
}

/// The process-wide warmup tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warmup {
    min: Duration,
    max: Duration,
    released: BTreeSet<String>,
    done: bool,
}

impl Warmup {
    /// A tracker with the config's `startup-min-delay` and `startup-max-delay` (a max below the
    /// min counts as the min).
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            released: BTreeSet::new(),
            done: min.is_zero() && max.is_zero(),
        }
    }

    /// Takes new delays from a reload; the clock and the released set are kept. Returns whether
    /// this turned the warmup off (both delays 0 while it was running).
    pub fn set_delays(&mut self, min: Duration, max: Duration) -> bool {
        self.min = min;
        self.max = max.max(min);
        min.is_zero() && max.is_zero() && !std::mem::replace(&mut self.done, true)
    }

    /// The phase at `elapsed` since start.
    #[must_use]
    pub fn phase(&self, elapsed: Duration) -> Phase {
        if self.done || elapsed >= self.max {
            Phase::Done
        } else if elapsed < self.min {
            Phase::Hold
        } else {
            Phase::PerFrontend
        }
    }

    /// Whether the warmup has been marked over ([`Warmup::finish`] or every frontend released).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// The next phase boundary after `elapsed`, as time since start, if any.
    #[must_use]
    pub fn next_boundary(&self, elapsed: Duration) -> Option<Duration> {
        match self.phase(elapsed) {
            Phase::Hold => Some(self.min),
            Phase::PerFrontend => Some(self.max),
            Phase::Done => None,
        }
    }

    /// Whether `frontend` may be synced now. In the per-frontend phase, `resolved` says
    /// whether every backend of the frontend has left `unknown`; a `true` releases the
    /// frontend for good (returned as `Released`, so callers can count it once).
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

    /// Whether `frontend` is admitted without a look at its backends: the warmup is over at
    /// `elapsed`, or the frontend was released.
    #[must_use]
    pub fn is_open(&self, elapsed: Duration, frontend: &str) -> bool {
        match self.phase(elapsed) {
            Phase::Done => true,
            Phase::Hold => false,
            Phase::PerFrontend => self.released.contains(frontend),
        }
    }

    /// Whether `frontend` has been released (by [`Warmup::admit`]).
    #[must_use]
    pub fn is_released(&self, frontend: &str) -> bool {
        self.released.contains(frontend)
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

    /// Marks the warmup as over (called when the max-delay passes). Returns whether it ended
    /// now.
    pub fn finish(&mut self) -> bool {
        !std::mem::replace(&mut self.done, true)
    }
}

/// Whether a frontend may be synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    #[must_use]
    pub fn allowed(self) -> bool {
        !matches!(self, Self::Held)
    }
}
