//! Frontend transitions: which frontends' aggregate state or active pool changed, decided from
//! the weights rules ([`crate::weights::effective_weights`]) each time the inputs change.
//!
//! A [`FrontendTracker`] remembers each frontend's last [`FrontendStatus`]; the caller
//! [`observe`](FrontendTracker::observe)s the frontends its change can affect (those of a
//! backend that changed state; every frontend after a config change or a weight override)
//! and gets back the changes to report:
//!
//! | last status | status now | reported |
//! |---|---|---|
//! | none (a frontend new to the tracker) | `unknown` in pool 0 | nothing (it starts there) |
//! | none | anything else | a change from `unknown` in pool 0 |
//! | equal | equal | nothing |
//! | any | different state or active pool | a change from the last status |
//!
//! Frontends gone from the config are forgotten with [`FrontendTracker::retain`]; a frontend
//! that comes back starts again from `unknown`.

use std::collections::HashMap;

use crate::config::{Config, Frontend};
use crate::weights::{BackendStates, FrontendState, WeightOverrides, effective_weights};

/// What is reported of a frontend: its aggregate state and its active pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrontendStatus {
    /// The aggregate state.
    pub state: FrontendState,
    /// Index of the active pool in the frontend's pools.
    pub active_pool: usize,
}

impl FrontendStatus {
    /// Where every frontend starts: `unknown`, pool 0.
    pub const INITIAL: Self = Self {
        state: FrontendState::Unknown,
        active_pool: 0,
    };

    /// The status of `frontend` under `states` and `overrides` (pure).
    #[must_use]
    pub fn of(
        frontend: &Frontend,
        states: &impl BackendStates,
        overrides: &WeightOverrides,
    ) -> Self {
        let weights = effective_weights(frontend, states, overrides);
        Self {
            state: weights.state,
            active_pool: weights.active_pool,
        }
    }
}

/// A frontend's state or active pool changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendChange {
    /// The frontend.
    pub frontend: String,
    /// Its status before.
    pub from: FrontendStatus,
    /// Its status now.
    pub to: FrontendStatus,
}

/// Each frontend's last reported status; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontendTracker {
    last: HashMap<String, FrontendStatus>,
}

impl FrontendTracker {
    /// A tracker that knows no frontend yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker that starts from every frontend's status now (nothing to report).
    #[must_use]
    pub fn baseline(
        config: &Config,
        states: &impl BackendStates,
        overrides: &WeightOverrides,
    ) -> Self {
        let last = config
            .frontends
            .iter()
            .map(|f| (f.name.clone(), FrontendStatus::of(f, states, overrides)))
            .collect();
        Self { last }
    }

    /// The last status of `frontend`, if the tracker knows it.
    #[must_use]
    pub fn get(&self, frontend: &str) -> Option<FrontendStatus> {
        self.last.get(frontend).copied()
    }

    /// Evaluates `frontend` now and records it: the change to report, if any.
    pub fn observe(
        &mut self,
        frontend: &Frontend,
        states: &impl BackendStates,
        overrides: &WeightOverrides,
    ) -> Option<FrontendChange> {
        let to = FrontendStatus::of(frontend, states, overrides);
        let from = match self.last.get_mut(&frontend.name) {
            Some(last) => std::mem::replace(last, to),
            None => {
                self.last.insert(frontend.name.clone(), to);
                FrontendStatus::INITIAL
            }
        };
        (from != to).then(|| FrontendChange {
            frontend: frontend.name.clone(),
            from,
            to,
        })
    }

    /// [`observe`](Self::observe) for the frontends that use `backend`, in config order.
    pub fn observe_backend(
        &mut self,
        config: &Config,
        backend: &str,
        states: &impl BackendStates,
        overrides: &WeightOverrides,
    ) -> Vec<FrontendChange> {
        config
            .frontends
            .iter()
            .filter(|f| f.membership(backend).is_some())
            .filter_map(|f| self.observe(f, states, overrides))
            .collect()
    }

    /// [`observe`](Self::observe) for every frontend of `config`, in config order, after
    /// forgetting the frontends it no longer has.
    pub fn observe_all(
        &mut self,
        config: &Config,
        states: &impl BackendStates,
        overrides: &WeightOverrides,
    ) -> Vec<FrontendChange> {
        self.retain(config);
        config
            .frontends
            .iter()
            .filter_map(|f| self.observe(f, states, overrides))
            .collect()
    }

    /// Forgets the frontends `config` does not have.
    pub fn retain(&mut self, config: &Config) {
        self.last
            .retain(|name, _| config.frontends.iter().any(|f| &f.name == name));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::weights::BackendState;

    fn config(yaml: &str) -> Config {
        Config::from_yaml_str("t.yaml", yaml).unwrap()
    }

    const TWO_POOLS: &str = "
maglev:
  backends:
    a: { address: 192.0.2.1 }
    b: { address: 192.0.2.2 }
    c: { address: 192.0.2.3 }
  frontends:
    web:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools:
        - name: main
          backends: { a: {}, b: {} }
        - name: spare
          backends: { c: {} }
    other:
      address: 198.51.100.2
      protocol: tcp
      port: 80
      pools:
        - name: p
          backends: { c: {} }
";

    fn states(pairs: &[(&str, BackendState)]) -> HashMap<String, BackendState> {
        pairs.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    fn status(state: FrontendState, active_pool: usize) -> FrontendStatus {
        FrontendStatus { state, active_pool }
    }

    #[test]
    fn a_new_frontend_reports_only_a_change_from_unknown() {
        let config = config(TWO_POOLS);
        let none = WeightOverrides::new();
        let mut tracker = FrontendTracker::new();
        // Everything unknown: nothing to report.
        assert!(tracker.observe_all(&config, &states(&[]), &none).is_empty());
        let mut tracker = FrontendTracker::new();
        let up = states(&[("a", BackendState::Up)]);
        let changes = tracker.observe_all(&config, &up, &none);
        assert_eq!(
            changes,
            [FrontendChange {
                frontend: "web".into(),
                from: FrontendStatus::INITIAL,
                to: status(FrontendState::Up, 0),
            }]
        );
        assert_eq!(tracker.get("other"), Some(FrontendStatus::INITIAL));
    }

    #[test]
    fn state_and_active_pool_changes_are_reported_once() {
        let config = config(TWO_POOLS);
        let none = WeightOverrides::new();
        let mut s = states(&[
            ("a", BackendState::Up),
            ("b", BackendState::Up),
            ("c", BackendState::Up),
        ]);
        let mut tracker = FrontendTracker::baseline(&config, &s, &none);
        // One backend of two down: web stays up in pool 0, nothing to report.
        s.insert("a".into(), BackendState::Down);
        assert!(tracker.observe_backend(&config, "a", &s, &none).is_empty());
        // Both down: the spare pool takes over; the state stays up.
        s.insert("b".into(), BackendState::Down);
        let changes = tracker.observe_backend(&config, "b", &s, &none);
        assert_eq!(
            changes,
            [FrontendChange {
                frontend: "web".into(),
                from: status(FrontendState::Up, 0),
                to: status(FrontendState::Up, 1),
            }]
        );
        // c down too: both frontends go down, in config order; asked twice, reported once.
        s.insert("c".into(), BackendState::Down);
        let changes = tracker.observe_backend(&config, "c", &s, &none);
        let names: Vec<_> = changes.iter().map(|c| c.frontend.as_str()).collect();
        assert_eq!(names, ["web", "other"]);
        assert_eq!(changes[0].to, status(FrontendState::Down, 0));
        assert_eq!(changes[1].from, status(FrontendState::Up, 0));
        assert!(tracker.observe_all(&config, &s, &none).is_empty());
    }

    #[test]
    fn an_override_to_zero_takes_a_frontend_down() {
        let config = config(TWO_POOLS);
        let s = states(&[("c", BackendState::Up)]);
        let mut overrides = WeightOverrides::new();
        let mut tracker = FrontendTracker::baseline(&config, &s, &overrides);
        overrides.set("other", "p", "c", 0);
        let changes = tracker.observe_all(&config, &s, &overrides);
        assert!(
            changes
                .iter()
                .any(|c| c.frontend == "other" && c.to.state == FrontendState::Down),
            "{changes:?}"
        );
    }

    #[test]
    fn a_frontend_gone_from_the_config_is_forgotten() {
        let config_before = config(TWO_POOLS);
        let s = states(&[("c", BackendState::Up)]);
        let none = WeightOverrides::new();
        let mut tracker = FrontendTracker::baseline(&config_before, &s, &none);
        assert!(tracker.get("other").is_some());
        let without_other = config(&TWO_POOLS.replace("    other:", "    zother:"));
        let changes = tracker.observe_all(&without_other, &s, &none);
        assert_eq!(tracker.get("other"), None);
        // The renamed frontend is new: it reports its way up from unknown.
        assert_eq!(
            changes,
            [FrontendChange {
                frontend: "zother".into(),
                from: FrontendStatus::INITIAL,
                to: status(FrontendState::Up, 0),
            }]
        );
    }
}
