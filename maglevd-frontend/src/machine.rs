//! The per-maglevd decisions, sans IO: when to connect (with backoff), when to refresh
//! everything (the 30 s safety net), when to check the connection (the 5 s health loop) and
//! when to fetch VPP's lb state (debounced to 1 s, leading and trailing edge). Time comes in as
//! a value; actions go out as values; [`crate::driver`] does the I/O.
//!
//! | input | state | actions, and the new state |
//! |---|---|---|
//! | [`Input::Start`] | any | [`Action::Connect`], `Connecting` |
//! | [`Input::Connected`] | `Connecting` | [`Action::Publish`] (connected), [`Action::Watch`], [`Action::Refresh`], [`Action::Lb`]; `Up`, backoff reset |
//! | [`Input::ConnectFailed`] | `Connecting` | `Down` until now + backoff, backoff doubled (to the cap) |
//! | [`Input::Lost`] | `Up` | [`Action::Publish`] (disconnected), `Down` until now + backoff |
//! | [`Input::Trigger`] | `Up` | [`Action::Lb`] at once when no fetch ran in the last second (leading edge); else one fetch when the second is over (trailing edge) |
//! | [`Input::Tick`] | `Down`, retry due | [`Action::Connect`], `Connecting` |
//! | [`Input::Tick`] | `Up` | [`Action::Refresh`] every 30 s, [`Action::Health`] every 5 s, the trailing [`Action::Lb`] |
//!
//! Inputs that do not apply to the state (a trigger while down, a late `Connected`) change
//! nothing: a reconnect always starts with a full refresh anyway.

use std::time::{Duration, Instant};

/// The machine's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The full refresh (safety net).
    pub refresh: Duration,
    /// The connection check.
    pub health: Duration,
    /// The LB state debounce window.
    pub lb_debounce: Duration,
    /// The first reconnect delay.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for Timing {
    /// 30 s refresh, 5 s health, 1 s debounce, reconnect after 0.5 s doubling to 10 s.
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(30),
            health: Duration::from_secs(5),
            lb_debounce: Duration::from_secs(1),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The driver started.
    Start,
    /// The connection attempt succeeded.
    Connected,
    /// The connection attempt failed.
    ConnectFailed,
    /// The event stream ended or a health check failed.
    Lost,
    /// Something that changes VPP's lb state: a backend transition, a VPP connect, an admin
    /// action.
    Trigger,
    /// Time passed (the driver wakes at [`Machine::deadline`]).
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Try to connect (then report [`Input::Connected`] or [`Input::ConnectFailed`]).
    Connect,
    /// Open the WatchEvents stream.
    Watch,
    /// Fetch everything (frontends, backends, health checks, VPP info).
    Refresh,
    /// Check the connection (report [`Input::Lost`] when it fails).
    Health,
    /// Fetch VPP's lb state (and the frontends' buckets).
    Lb,
    /// The connection state changed: tell the browsers.
    Publish {
        /// Whether maglevd is reachable now.
        connected: bool,
    },
}

/// The connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started.
    Idle,
    /// A connection attempt is under way.
    Connecting,
    /// Connected: timers run.
    Up {
        /// The next full refresh.
        refresh_at: Instant,
        /// The next health check.
        health_at: Instant,
    },
    /// Disconnected: retry at this instant.
    Down {
        /// The next attempt.
        retry_at: Instant,
    },
}

/// The debounce of LB state fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Debounce {
    /// The end of the window opened by the last fetch.
    window_end: Option<Instant>,
    /// A trigger arrived inside the window.
    pending: bool,
}

/// One maglevd's machine; see the module doc.
#[derive(Debug, Clone)]
pub struct Machine {
    timing: Timing,
    phase: Phase,
    backoff: Duration,
    lb: Debounce,
}

impl Machine {
    /// A machine that waits for [`Input::Start`].
    #[must_use]
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            phase: Phase::Idle,
            backoff: timing.backoff_min,
            lb: Debounce::default(),
        }
    }

    /// The connection state.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the driver must wake up with [`Input::Tick`]; `None` when only an input can move
    /// the machine.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle | Phase::Connecting => None,
            Phase::Down { retry_at } => Some(retry_at),
            Phase::Up {
                refresh_at,
                health_at,
            } => {
                let mut next = refresh_at.min(health_at);
                if let (true, Some(end)) = (self.lb.pending, self.lb.window_end) {
                    next = next.min(end);
                }
                Some(next)
            }
        }
    }

    /// Feeds one input at `now`; the actions to perform, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match (input, self.phase) {
            (Input::Start, _) => {
                self.phase = Phase::Connecting;
                out.push(Action::Connect);
            }
            (Input::Connected, Phase::Connecting) => {
                self.backoff = self.timing.backoff_min;
                self.phase = Phase::Up {
                    refresh_at: now + self.timing.refresh,
                    health_at: now + self.timing.health,
                };
                self.lb = Debounce::default();
                out.extend([
                    Action::Publish { connected: true },
                    Action::Watch,
                    Action::Refresh,
                ]);
                self.fetch_lb(now, &mut out);
            }
            (Input::ConnectFailed, Phase::Connecting) => self.go_down(now),
            (Input::Lost, Phase::Up { .. }) => {
                self.go_down(now);
                out.push(Action::Publish { connected: false });
            }
            (Input::Trigger, Phase::Up { .. }) => match self.lb.window_end {
                Some(end) if now < end => self.lb.pending = true,
                _ => self.fetch_lb(now, &mut out),
            },
            (Input::Tick, Phase::Down { retry_at }) if now >= retry_at => {
                self.phase = Phase::Connecting;
                out.push(Action::Connect);
            }
            (
                Input::Tick,
                Phase::Up {
                    mut refresh_at,
                    mut health_at,
                },
            ) => {
                if now >= refresh_at {
                    refresh_at = now + self.timing.refresh;
                    out.push(Action::Refresh);
                }
                if now >= health_at {
                    health_at = now + self.timing.health;
                    out.push(Action::Health);
                }
                self.phase = Phase::Up {
                    refresh_at,
                    health_at,
                };
                if let (true, Some(end)) = (self.lb.pending, self.lb.window_end)
                    && now >= end
                {
                    self.fetch_lb(now, &mut out);
                }
            }
            (
                Input::Connected
                | Input::ConnectFailed
                | Input::Lost
                | Input::Trigger
                | Input::Tick,
                _,
            ) => {}
        }
        out
    }

    fn go_down(&mut self, now: Instant) {
        self.phase = Phase::Down {
            retry_at: now + self.backoff,
        };
        self.backoff = (self.backoff * 2).min(self.timing.backoff_max);
        self.lb = Debounce::default();
    }

    fn fetch_lb(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.lb = Debounce {
            window_end: Some(now + self.timing.lb_debounce),
            pending: false,
        };
        out.push(Action::Lb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn up(t0: Instant) -> Machine {
        let mut m = Machine::new(Timing::default());
        assert_eq!(m.handle(t0, Input::Start), vec![Action::Connect]);
        assert_eq!(
            m.handle(t0, Input::Connected),
            vec![
                Action::Publish { connected: true },
                Action::Watch,
                Action::Refresh,
                Action::Lb
            ]
        );
        m
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_on_connect() {
        let t0 = Instant::now();
        let mut m = Machine::new(Timing::default());
        m.handle(t0, Input::Start);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..7 {
            assert!(m.handle(now, Input::ConnectFailed).is_empty());
            let Phase::Down { retry_at } = m.phase() else {
                panic!("not down: {:?}", m.phase())
            };
            delays.push(retry_at - now);
            assert_eq!(m.deadline(), Some(retry_at));
            // Too early: nothing.
            assert!(m.handle(retry_at - ms(1), Input::Tick).is_empty());
            now = retry_at;
            assert_eq!(m.handle(now, Input::Tick), vec![Action::Connect]);
        }
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 10_000, 10_000]
                .map(ms)
                .to_vec()
        );
        m.handle(now, Input::Connected);
        m.handle(now, Input::Lost);
        let Phase::Down { retry_at } = m.phase() else {
            panic!()
        };
        assert_eq!(retry_at - now, ms(500));
    }

    #[test]
    fn losing_the_connection_publishes_and_stops_the_timers() {
        let t0 = Instant::now();
        let mut m = up(t0);
        assert_eq!(
            m.handle(t0 + ms(10), Input::Lost),
            vec![Action::Publish { connected: false }]
        );
        // Triggers while down do nothing.
        assert!(m.handle(t0 + ms(20), Input::Trigger).is_empty());
        assert_eq!(m.deadline(), Some(t0 + ms(510)));
    }

    #[test]
    fn refresh_every_30s_and_health_every_5s() {
        let t0 = Instant::now();
        let mut m = up(t0);
        let mut refreshes = 0;
        let mut healths = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(60) {
            now = m.deadline().expect("up has a deadline");
            for action in m.handle(now, Input::Tick) {
                match action {
                    Action::Refresh => refreshes += 1,
                    Action::Health => healths += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!((refreshes, healths), (2, 12));
    }

    #[test]
    fn lb_fetch_is_debounced_on_both_edges() {
        let t0 = Instant::now();
        let mut m = up(t0); // fetched at t0: a window until t0 + 1 s.
        // Inside the window: nothing now, one fetch at its end.
        assert!(m.handle(t0 + ms(100), Input::Trigger).is_empty());
        assert!(m.handle(t0 + ms(200), Input::Trigger).is_empty());
        assert_eq!(m.deadline(), Some(t0 + ms(1000)));
        assert!(m.handle(t0 + ms(999), Input::Tick).is_empty());
        assert_eq!(m.handle(t0 + ms(1000), Input::Tick), vec![Action::Lb]);
        // That trailing fetch opened a new window: no second fetch without a trigger.
        assert_eq!(m.deadline(), Some(t0 + ms(5000)));
        assert!(m.handle(t0 + ms(2000), Input::Tick).is_empty());
        // Leading edge: a trigger after a quiet second fetches at once.
        assert_eq!(m.handle(t0 + ms(2500), Input::Trigger), vec![Action::Lb]);
        assert!(m.handle(t0 + ms(2600), Input::Trigger).is_empty());
        assert_eq!(m.handle(t0 + ms(3500), Input::Tick), vec![Action::Lb]);
    }

    #[test]
    fn late_inputs_change_nothing() {
        let t0 = Instant::now();
        let mut m = Machine::new(Timing::default());
        assert!(m.handle(t0, Input::Connected).is_empty());
        assert!(m.handle(t0, Input::Lost).is_empty());
        assert!(m.handle(t0, Input::Tick).is_empty());
        assert_eq!(m.phase(), Phase::Idle);
        assert_eq!(m.deadline(), None);
        let mut m = up(t0);
        assert!(m.handle(t0, Input::ConnectFailed).is_empty());
        assert!(matches!(m.phase(), Phase::Up { .. }));
    }
}
