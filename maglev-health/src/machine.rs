//! The sans-IO probe state machine (states, rise/fall counter, intervals, history).
//!
//! [`Machine`] holds one backend's health: its [`State`], the HAProxy single counter over
//! `[0, rise+fall-1]`, the operator's enabled flag, the last probe result and a bounded history
//! of transitions. It never reads a clock and never does I/O: the caller passes `now` in and gets
//! effects back as values (a [`Transition`] to broadcast, the [`Instant`] of the next probe).
//!
//! Rules (spec A.2 and B §2):
//! - a pass does `c = min(c+1, max)`, a failure `c = max(c-1, 0)`; the backend is up iff
//!   `c >= rise`;
//! - as in HAProxy, a change of state jumps the counter to its end: a backend that comes up
//!   goes to `c = max` and one that goes down to `c = 0`. So a backend that has just come up
//!   needs `fall` consecutive failures to go down, and one that has just gone down needs `rise`
//!   consecutive passes to come up: a flapping backend stays where it is;
//! - entering `unknown` sets `c = rise-1`, so one pass means up and any failure means down;
//! - the wait before the next probe is `interval` while up with `c == max`, `down-interval` while
//!   down with `c == 0`, `fast-interval` otherwise, each with ±10% jitter, measured start to start
//!   with no catch-up;
//! - results that arrive while paused, disabled or removed are ignored.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::result::{ProbeResult, ResultCode};

/// The health state of one backend: `maglev-core`'s [`BackendState`], so that the weight
/// and plan decisions take the checker's states as they are.
///
/// [`BackendState`]: maglev_core::weights::BackendState
pub use maglev_core::weights::BackendState as State;

/// The health-check parameters the state machine needs (the probe itself is the checker's
/// business).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    /// Wait while fully up (`c == max`).
    pub interval: Duration,
    /// Wait while unknown or transitional.
    pub fast_interval: Duration,
    /// Wait while fully down (`c == 0`).
    pub down_interval: Duration,
    /// Consecutive passes that bring a fully-down backend up (>= 1).
    pub rise: u32,
    /// Consecutive failures that bring a just-up backend down (>= 1).
    pub fall: u32,
}

impl Params {
    /// Parameters for a static backend (no health check): `rise = fall = 1`. The intervals are
    /// never used, since a static backend stops probing once it is up.
    pub const STATIC: Self = Self {
        interval: Duration::from_secs(1),
        fast_interval: Duration::from_secs(1),
        down_interval: Duration::from_secs(1),
        rise: 1,
        fall: 1,
    };

    /// The counter's upper bound, `rise + fall - 1`.
    pub const fn max_counter(&self) -> u32 {
        self.rise.saturating_add(self.fall).saturating_sub(1)
    }

    /// Checks the parameters: rise and fall at least 1 and every interval non-zero.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.rise == 0 {
            return Err("rise must be at least 1");
        }
        if self.fall == 0 {
            return Err("fall must be at least 1");
        }
        if self.interval.is_zero() || self.fast_interval.is_zero() || self.down_interval.is_zero() {
            return Err("intervals must be greater than zero");
        }
        Ok(())
    }
}

/// One state change of one backend, as emitted to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The backend's name.
    pub backend: Arc<str>,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// When it happened (the `now` passed to the machine).
    pub at: Instant,
    /// The probe or operator code that caused it.
    pub code: ResultCode,
    /// A short human detail (the probe's detail, or what the operator did).
    pub detail: String,
}

/// One entry of a backend's transition history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionRecord {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// When it happened.
    pub at: Instant,
    /// The probe or operator code that caused it.
    pub code: ResultCode,
    /// A short human detail.
    pub detail: String,
}

/// Why an operator action was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// Pause and resume are refused while the backend is disabled.
    #[error("backend is disabled: enable it first")]
    Disabled,
    /// The backend has been removed from the config.
    #[error("backend has been removed")]
    Removed,
}

/// What [`Machine::on_result`] did with a probe result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultEffect {
    /// The result was counted and the state did not change.
    Counted,
    /// The result was counted and changed the state.
    Transition(Transition),
    /// The result arrived while paused, disabled or removed and was dropped.
    Ignored,
}

impl ResultEffect {
    /// The transition, if the result caused one.
    pub fn transition(self) -> Option<Transition> {
        match self {
            Self::Transition(t) => Some(t),
            Self::Counted | Self::Ignored => None,
        }
    }
}

/// A small deterministic random source (SplitMix64) used for jitter and first-probe offsets.
///
/// Deterministic for a given seed so that tests and property tests can replay a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A source seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `span * u` for `u = (r >> 11) / 2^53 in [0, 1)`, in exact integer nanoseconds.
fn scale(span: Duration, r: u64) -> Duration {
    let ns = span.as_nanos().saturating_mul(u128::from(r >> 11)) >> 53;
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// `base` with ±10% jitter chosen by the random value `r`: the result lies in
/// `[base - base/10, base + base/10)` (to the nanosecond).
pub fn jittered(base: Duration, r: u64) -> Duration {
    let tenth = base / 10;
    base - tenth + scale(tenth * 2, r)
}

/// A point chosen by `r` in `[0, span)` (or zero when `span` is zero): the first-probe offset
/// of a fresh backend.
pub fn spread(span: Duration, r: u64) -> Duration {
    scale(span, r)
}

/// The health state machine of one backend. See the [module docs](self) for the rules.
#[derive(Clone, Debug)]
pub struct Machine {
    backend: Arc<str>,
    params: Params,
    is_static: bool,
    state: State,
    counter: u32,
    enabled: bool,
    history: VecDeque<TransitionRecord>,
    history_cap: usize,
    last_result: Option<ProbeResult>,
    jitter: Jitter,
}

impl Machine {
    /// A machine for `backend` in `unknown` with `c = rise-1`. `check` is `None` for a static
    /// backend (no health check). `history_cap` bounds the transition history; `seed` seeds the
    /// jitter.
    ///
    /// Parameters with `rise` or `fall` 0 are raised to 1 so the counter range stays sound;
    /// callers validate with [`Params::validate`] first.
    pub fn new(backend: Arc<str>, check: Option<Params>, history_cap: usize, seed: u64) -> Self {
        let is_static = check.is_none();
        let mut params = check.unwrap_or(Params::STATIC);
        params.rise = params.rise.max(1);
        params.fall = params.fall.max(1);
        Self {
            backend,
            counter: params.rise - 1,
            params,
            is_static,
            state: State::Unknown,
            enabled: true,
            history: VecDeque::with_capacity(history_cap.min(64)),
            history_cap,
            last_result: None,
            jitter: Jitter::new(seed),
        }
    }

    /// The backend's name.
    pub fn backend(&self) -> &Arc<str> {
        &self.backend
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The rise/fall counter, in `[0, rise+fall-1]`.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The parameters in use (for a static backend, [`Params::STATIC`]).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Whether the backend has no health check.
    pub fn is_static(&self) -> bool {
        self.is_static
    }

    /// The operator's enabled flag.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The last probe result counted (ignored results are not kept).
    pub fn last_result(&self) -> Option<&ProbeResult> {
        self.last_result.as_ref()
    }

    /// The last transitions, oldest first, at most `history_cap` of them.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &TransitionRecord> + '_ {
        self.history.iter()
    }

    /// Whether probes run in the current state.
    pub fn is_probing(&self) -> bool {
        !self.state.is_operator()
    }

    fn transition(
        &mut self,
        to: State,
        now: Instant,
        code: ResultCode,
        detail: String,
    ) -> Option<Transition> {
        let from = self.state;
        if from == to {
            return None;
        }
        self.state = to;
        if self.history_cap > 0 {
            while self.history.len() >= self.history_cap {
                self.history.pop_front();
            }
            self.history.push_back(TransitionRecord {
                from,
                to,
                at: now,
                code,
                detail: detail.clone(),
            });
        }
        Some(Transition {
            backend: Arc::clone(&self.backend),
            from,
            to,
            at: now,
            code,
            detail,
        })
    }

    fn enter_unknown(
        &mut self,
        now: Instant,
        code: ResultCode,
        detail: &str,
    ) -> Option<Transition> {
        self.counter = self.params.rise - 1;
        self.transition(State::Unknown, now, code, detail.to_owned())
    }

    /// Counts one probe result received at `now`.
    ///
    /// In `unknown` a pass means up and any failure means down; in `up`/`down` the counter
    /// moves by one and the state follows `c >= rise`. A change of state jumps the counter to
    /// `max` (now up) or `0` (now down). In `paused`, `disabled` and `removed`
    /// the result is ignored.
    pub fn on_result(&mut self, now: Instant, result: &ProbeResult) -> ResultEffect {
        if !self.is_probing() {
            return ResultEffect::Ignored;
        }
        let max = self.params.max_counter();
        let pass = result.is_pass();
        self.counter = if pass {
            (self.counter + 1).min(max)
        } else {
            self.counter.saturating_sub(1)
        };
        let to = match (self.state, pass) {
            (State::Unknown, false) => State::Down,
            _ if self.counter >= self.params.rise => State::Up,
            _ => State::Down,
        };
        // HAProxy's hysteresis: a change of state jumps the counter to the far end of its band.
        if to != self.state {
            self.counter = if to == State::Up { max } else { 0 };
        }
        // Keep `up iff c >= rise` exact: a failure in unknown lands below rise already, since
        // unknown always holds c = rise-1.
        debug_assert!((to == State::Up) == (self.counter >= self.params.rise));
        // The hot path, once per probe: reuse the previous result's buffer, and copy the
        // detail for a transition only when there is one.
        match &mut self.last_result {
            Some(last) => {
                last.code = result.code;
                last.elapsed = result.elapsed;
                last.detail.clone_from(&result.detail);
            }
            None => self.last_result = Some(result.clone()),
        }
        if to == self.state {
            return ResultEffect::Counted;
        }
        match self.transition(to, now, result.code, result.detail.clone()) {
            Some(t) => ResultEffect::Transition(t),
            None => ResultEffect::Counted,
        }
    }

    /// The result a static backend records on its probe cycle: a pass with code `static`.
    pub fn static_result() -> ProbeResult {
        ProbeResult::new(ResultCode::Static, "no health check", Duration::ZERO)
    }

    /// Pauses health checking. Refused while disabled or removed; a no-op when already paused.
    pub fn pause(&mut self, now: Instant) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Disabled => Err(ActionError::Disabled),
            State::Removed => Err(ActionError::Removed),
            State::Paused => Ok(None),
            _ => Ok(self.transition(
                State::Paused,
                now,
                ResultCode::Paused,
                "health checking paused by operator".to_owned(),
            )),
        }
    }

    /// Resumes health checking: `paused` goes to `unknown` with `c = rise-1`. Refused while
    /// disabled or removed; a no-op in any other state.
    pub fn resume(&mut self, now: Instant) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Disabled => Err(ActionError::Disabled),
            State::Removed => Err(ActionError::Removed),
            State::Paused => Ok(self.enter_unknown(
                now,
                ResultCode::Resumed,
                "health checking resumed by operator",
            )),
            _ => Ok(None),
        }
    }

    /// Disables the backend and clears the enabled flag. Idempotent, keyed on the state: an
    /// already-disabled backend only gets its flag synced. Refused once removed.
    pub fn disable(&mut self, now: Instant) -> Result<Option<Transition>, ActionError> {
        if self.state == State::Removed {
            return Err(ActionError::Removed);
        }
        self.enabled = false;
        Ok(self.transition(
            State::Disabled,
            now,
            ResultCode::Disabled,
            "disabled by operator".to_owned(),
        ))
    }

    /// Enables the backend and sets the enabled flag. `disabled` goes to `unknown` with
    /// `c = rise-1`; any other state only gets its flag synced. Refused once removed.
    pub fn enable(&mut self, now: Instant) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Removed => Err(ActionError::Removed),
            State::Disabled => {
                self.enabled = true;
                Ok(self.enter_unknown(now, ResultCode::Enabled, "enabled by operator"))
            }
            _ => {
                self.enabled = true;
                Ok(None)
            }
        }
    }

    /// Marks the backend removed from the config. Final: every later action is refused and
    /// every later result ignored.
    pub fn remove(&mut self, now: Instant) -> Option<Transition> {
        self.transition(
            State::Removed,
            now,
            ResultCode::Removed,
            "removed from config".to_owned(),
        )
    }

    /// Restarts the machine with new parameters (the health check changed): state `unknown`
    /// with `c = rise-1`, or `disabled` when `enabled` is false. A paused machine stays paused
    /// (the operator's pause outlives a new health check; a resume then enters `unknown` with
    /// the new parameters). The history is kept.
    pub fn restart(
        &mut self,
        now: Instant,
        check: Option<Params>,
        enabled: bool,
    ) -> Option<Transition> {
        if self.state == State::Removed {
            return None;
        }
        let was_paused = self.state == State::Paused;
        self.is_static = check.is_none();
        let mut params = check.unwrap_or(Params::STATIC);
        params.rise = params.rise.max(1);
        params.fall = params.fall.max(1);
        self.params = params;
        self.last_result = None;
        self.enabled = enabled;
        if enabled && was_paused {
            self.counter = self.params.rise - 1;
            None
        } else if enabled {
            self.enter_unknown(now, ResultCode::Resumed, "health check changed, restarted")
        } else {
            self.counter = self.params.rise - 1;
            self.transition(
                State::Disabled,
                now,
                ResultCode::Disabled,
                "disabled in config".to_owned(),
            )
        }
    }

    /// The un-jittered wait the interval rule picks for the current state, or `None` when no
    /// probe should run (operator states, or a static backend that is up).
    pub fn base_interval(&self) -> Option<Duration> {
        if !self.is_probing() || (self.is_static && self.state == State::Up) {
            return None;
        }
        let max = self.params.max_counter();
        Some(match self.state {
            State::Up if self.counter == max => self.params.interval,
            State::Down if self.counter == 0 => self.params.down_interval,
            _ => self.params.fast_interval,
        })
    }

    /// When the next probe should start, given the previous probe started at `last_start` and
    /// its result was counted at `now`: `last_start` plus the jittered interval, or `now` when
    /// the probe overran (never earlier, so there is no catch-up burst). `None` when no probe
    /// should run.
    pub fn next_probe(&mut self, last_start: Instant, now: Instant) -> Option<Instant> {
        let base = self.base_interval()?;
        let wait = jittered(base, self.jitter.next_u64());
        Some((last_start + wait).max(now))
    }

    /// When the first probe of a fresh (or restarted) worker should start: a random point in
    /// `[now, now + first interval)`, so that a restart does not fire every probe at once.
    /// Static backends resolve at once. `None` when no probe should run.
    pub fn first_probe(&mut self, now: Instant) -> Option<Instant> {
        let base = self.base_interval()?;
        if self.is_static {
            return Some(now);
        }
        Some(now + spread(base, self.jitter.next_u64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_bounds_hold_at_the_extremes() {
        let base = Duration::from_millis(1000);
        assert_eq!(jittered(base, 0), Duration::from_millis(900));
        let top = jittered(base, u64::MAX);
        assert!(top < Duration::from_millis(1100) && top > Duration::from_millis(1099));
        assert_eq!(spread(base, 0), Duration::ZERO);
        assert!(spread(base, u64::MAX) < base);
    }

    #[test]
    fn splitmix_is_deterministic_per_seed() {
        let mut a = Jitter::new(7);
        let mut b = Jitter::new(7);
        let mut c = Jitter::new(8);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }
}
