//! The startup warmup tracker (spec B §3.3): hold, per-frontend release, done.

use std::time::Duration;

use maglevd::warmup::{Admission, Phase, Warmup};

const S: Duration = Duration::from_secs(1);

#[test]
fn phases_follow_min_and_max() {
    let w = Warmup::new(5 * S, 30 * S);
    assert_eq!(w.phase(Duration::ZERO), Phase::Hold);
    assert_eq!(w.phase(5 * S - Duration::from_millis(1)), Phase::Hold);
    assert_eq!(w.phase(5 * S), Phase::PerFrontend);
    assert_eq!(
        w.phase(30 * S - Duration::from_millis(1)),
        Phase::PerFrontend
    );
    assert_eq!(w.phase(30 * S), Phase::Done);
    assert_eq!(w.next_boundary(Duration::ZERO), Some(5 * S));
    assert_eq!(w.next_boundary(6 * S), Some(30 * S));
    assert_eq!(w.next_boundary(31 * S), None);
}

#[test]
fn both_delays_zero_disable_the_warmup() {
    let mut w = Warmup::new(Duration::ZERO, Duration::ZERO);
    assert_eq!(w.phase(Duration::ZERO), Phase::Done);
    assert_eq!(w.admit(Duration::ZERO, "web", false), Admission::Open);
}

#[test]
fn nothing_is_admitted_while_holding() {
    let mut w = Warmup::new(5 * S, 30 * S);
    assert_eq!(w.admit(S, "web", true), Admission::Held);
    // Holding did not release it: the release happens in the per-frontend phase.
    assert_eq!(w.admit(6 * S, "web", true), Admission::Released);
}

#[test]
fn a_frontend_is_released_once_resolved_and_stays_released() {
    let mut w = Warmup::new(5 * S, 30 * S);
    assert_eq!(w.admit(6 * S, "web", false), Admission::Held);
    assert_eq!(w.admit(7 * S, "web", true), Admission::Released);
    // A later unknown backend (a reload added one) does not take it back.
    assert_eq!(w.admit(8 * S, "web", false), Admission::Open);
    assert!(Admission::Open.allowed() && Admission::Released.allowed());
    assert!(!Admission::Held.allowed());
}

#[test]
fn warmup_ends_early_when_every_frontend_is_released() {
    let mut w = Warmup::new(5 * S, 30 * S);
    assert_eq!(w.admit(6 * S, "a", true), Admission::Released);
    assert!(!w.finish_if_all_released(["a", "b"]));
    assert_eq!(w.phase(6 * S), Phase::PerFrontend);
    assert_eq!(w.admit(6 * S, "b", true), Admission::Released);
    assert!(w.finish_if_all_released(["a", "b"]));
    assert_eq!(w.phase(6 * S), Phase::Done);
    // Only once.
    assert!(!w.finish_if_all_released(["a", "b"]));
    assert!(!w.finish());
}

#[test]
fn max_delay_releases_stragglers() {
    let mut w = Warmup::new(5 * S, 30 * S);
    assert_eq!(w.admit(29 * S, "slow", false), Admission::Held);
    assert_eq!(w.admit(30 * S, "slow", false), Admission::Open);
    assert!(w.finish());
}

#[test]
fn reload_keeps_the_clock_and_the_released_set() {
    let mut w = Warmup::new(5 * S, 30 * S);
    assert_eq!(w.admit(6 * S, "web", true), Admission::Released);
    w.set_delays(10 * S, 40 * S);
    // The clock still counts from the start: 6 s is now within the hold window...
    assert_eq!(w.phase(6 * S), Phase::Hold);
    // ...and the released frontend stays released once the hold is over.
    assert_eq!(w.admit(11 * S, "web", false), Admission::Open);
    w.set_delays(Duration::ZERO, Duration::ZERO);
    assert_eq!(w.phase(S), Phase::Done);
}

#[test]
fn max_below_min_is_raised_to_min() {
    let w = Warmup::new(10 * S, 5 * S);
    assert_eq!(w.phase(7 * S), Phase::Hold);
    assert_eq!(w.phase(10 * S), Phase::Done);
}
