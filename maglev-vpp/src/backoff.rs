//! A reusable, jittered exponential backoff (for reconnects).
//!
//! The base delay starts at [`BackoffSettings::initial`], is multiplied by
//! [`BackoffSettings::multiplier`] after every [`Backoff::next_delay`] and is capped at
//! [`BackoffSettings::max`]. Each delay handed out is the base shortened by a random fraction of
//! at most [`BackoffSettings::jitter`] (so it never exceeds the cap, and many clients restarted
//! together do not retry in lockstep). [`Backoff::reset`] returns to the initial delay after a
//! success.
//!
//! | attempt | base delay (defaults: 1 s, x2, cap 30 s) | delay handed out (jitter 0.2) |
//! |---|---|---|
//! | 1 | 1 s | 0.8 s ..= 1 s |
//! | 2 | 2 s | 1.6 s ..= 2 s |
//! | 3 | 4 s | 3.2 s ..= 4 s |
//! | 6 and later | 30 s | 24 s ..= 30 s |
//!
//! The random source is a seeded [`SmallRng`]: [`Backoff::with_seed`] makes the sequence
//! deterministic for tests; [`Backoff::new`] seeds from the OS.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

/// Settings that [`BackoffSettings::validate`] refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackoffError {
    /// The first delay is zero: retries would spin.
    #[error("backoff: the initial delay must be above zero")]
    ZeroInitial,
    /// The cap is below the first delay.
    #[error("backoff: the maximum delay {max:?} is below the initial delay {initial:?}")]
    MaxBelowInitial {
        /// The initial delay given.
        initial: Duration,
        /// The maximum delay given.
        max: Duration,
    },
    /// The multiplier is below 1 or not a finite number.
    #[error("backoff: the multiplier must be a finite number >= 1, not {0}")]
    Multiplier(f64),
    /// The jitter is outside `0.0..=1.0`.
    #[error("backoff: the jitter must be within 0.0..=1.0, not {0}")]
    Jitter(f64),
}

/// How a [`Backoff`] grows. Build with [`BackoffSettings::new`] (validated) or start from
/// [`BackoffSettings::default`] (1 s doubling to 30 s, jitter 0.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffSettings {
    /// The first delay (and the delay after [`Backoff::reset`]).
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The factor applied to the base delay after each attempt (at least 1).
    pub multiplier: f64,
    /// The largest fraction (`0.0..=1.0`) by which a delay is randomly shortened.
    pub jitter: f64,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl BackoffSettings {
    /// Settings from `initial` to `max`, doubling, with the default jitter.
    ///
    /// # Errors
    ///
    /// See [`BackoffSettings::validate`].
    pub fn new(initial: Duration, max: Duration) -> Result<Self, BackoffError> {
        Self {
            initial,
            max,
            ..Self::default()
        }
        .validate()
    }

    /// The same settings with another multiplier.
    ///
    /// # Errors
    ///
    /// See [`BackoffSettings::validate`].
    pub fn with_multiplier(self, multiplier: f64) -> Result<Self, BackoffError> {
        Self { multiplier, ..self }.validate()
    }

    /// The same settings with another jitter.
    ///
    /// # Errors
    ///
    /// See [`BackoffSettings::validate`].
    pub fn with_jitter(self, jitter: f64) -> Result<Self, BackoffError> {
        Self { jitter, ..self }.validate()
    }

    /// Checks the settings and returns them.
    ///
    /// # Errors
    ///
    /// A zero initial delay, a maximum below the initial delay, a multiplier below 1 (or NaN or
    /// infinite), a jitter outside `0.0..=1.0`.
    pub fn validate(self) -> Result<Self, BackoffError> {
        if self.initial.is_zero() {
            return Err(BackoffError::ZeroInitial);
        }
        if self.max < self.initial {
            return Err(BackoffError::MaxBelowInitial {
                initial: self.initial,
                max: self.max,
            });
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(BackoffError::Multiplier(self.multiplier));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BackoffError::Jitter(self.jitter));
        }
        Ok(self)
    }
}

/// A jittered exponential backoff; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Backoff {
    settings: BackoffSettings,
    base: Duration,
    rng: SmallRng,
}

impl Backoff {
    /// A backoff seeded from the OS.
    pub fn new(settings: BackoffSettings) -> Self {
        Self::from_rng(settings, SmallRng::from_os_rng())
    }

    /// A backoff whose jitter is deterministic: the same seed gives the same delays.
    pub fn with_seed(settings: BackoffSettings, seed: u64) -> Self {
        Self::from_rng(settings, SmallRng::seed_from_u64(seed))
    }

    fn from_rng(settings: BackoffSettings, rng: SmallRng) -> Self {
        Self {
            settings,
            base: settings.initial,
            rng,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &BackoffSettings {
        &self.settings
    }

    /// The delay before the next attempt; grows the base delay for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base.min(self.settings.max);
        let cut = if self.settings.jitter > 0.0 {
            self.rng.random_range(0.0..=self.settings.jitter)
        } else {
            0.0
        };
        self.base = base
            .mul_f64(self.settings.multiplier)
            .min(self.settings.max);
        base.mul_f64(1.0 - cut)
    }

    /// Back to the initial delay (after a success).
    pub fn reset(&mut self) {
        self.base = self.settings.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn without_jitter_the_delays_double_up_to_the_cap() {
        let settings = BackoffSettings::new(S, 10 * S)
            .and_then(|s| s.with_jitter(0.0))
            .unwrap();
        let mut b = Backoff::with_seed(settings, 1);
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [S, 2 * S, 4 * S, 8 * S, 10 * S, 10 * S]);
        b.reset();
        assert_eq!(b.next_delay(), S);
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let settings = BackoffSettings::default();
        let mut b = Backoff::with_seed(settings, 7);
        let mut base = settings.initial;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= base, "{d:?} > {base:?}");
            assert!(
                d >= base.mul_f64(1.0 - settings.jitter),
                "{d:?} < {base:?} - 20%"
            );
            base = (base * 2).min(settings.max);
        }
    }

    #[test]
    fn a_seed_gives_the_same_sequence() {
        let settings = BackoffSettings::default();
        let run = |seed| {
            let mut b = Backoff::with_seed(settings, seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert_eq!(
            BackoffSettings::new(Duration::ZERO, S),
            Err(BackoffError::ZeroInitial)
        );
        assert!(matches!(
            BackoffSettings::new(2 * S, S),
            Err(BackoffError::MaxBelowInitial { .. })
        ));
        let ok = BackoffSettings::default();
        for m in [0.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                ok.with_multiplier(m),
                Err(BackoffError::Multiplier(_))
            ));
        }
        for j in [-0.1, 1.5, f64::NAN] {
            assert!(matches!(ok.with_jitter(j), Err(BackoffError::Jitter(_))));
        }
        assert!(ok.with_multiplier(1.0).is_ok());
        assert!(ok.with_jitter(1.0).is_ok());
    }
}
