//! Table-driven and property tests of the sans-IO probe state machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use maglev_health::machine::{
    ActionError, Machine, Params, ResultEffect, State, Transition, jittered, spread,
};
use maglev_health::result::{ProbeResult, ResultCode};
use proptest::prelude::*;

const INTERVAL: Duration = Duration::from_millis(2000);
const FAST: Duration = Duration::from_millis(500);
const DOWN: Duration = Duration::from_millis(5000);

fn params(rise: u32, fall: u32) -> Params {
    Params {
        interval: INTERVAL,
        fast_interval: FAST,
        down_interval: DOWN,
        rise,
        fall,
    }
}

fn machine(rise: u32, fall: u32) -> Machine {
    Machine::new(Arc::from("be1"), Some(params(rise, fall)), 5, 42)
}

fn pass() -> ProbeResult {
    ProbeResult::new(ResultCode::L4Ok, "connected", Duration::from_millis(1))
}

fn fail() -> ProbeResult {
    ProbeResult::new(
        ResultCode::L4Con,
        "connection refused",
        Duration::from_millis(1),
    )
}

fn feed(m: &mut Machine, t0: Instant, results: &[bool]) -> Vec<Transition> {
    results
        .iter()
        .enumerate()
        .filter_map(|(i, &ok)| {
            let r = if ok { pass() } else { fail() };
            m.on_result(t0 + Duration::from_secs(i as u64), &r)
                .transition()
        })
        .collect()
}

#[test]
fn fresh_machine_is_unknown_with_counter_rise_minus_one() {
    for (rise, fall) in [(1, 1), (2, 3), (5, 1), (100, 100)] {
        let m = machine(rise, fall);
        assert_eq!(m.state(), State::Unknown);
        assert_eq!(m.counter(), rise - 1);
        assert!(m.enabled());
        assert_eq!(m.history().len(), 0);
        assert_eq!(m.params().max_counter(), rise + fall - 1);
    }
}

/// (rise, fall, results fed to a fresh machine, final state, final counter, states entered)
#[test]
fn probe_sequences_table() {
    use State::*;
    type Case<'a> = (u32, u32, &'a [bool], State, u32, &'a [State]);
    let cases: &[Case<'_>] = &[
        // expedited start: one pass is up, one failure is down
        // (a change of state jumps the counter to max when up, to 0 when down)
        (2, 3, &[true], Up, 4, &[Up]),
        (2, 3, &[false], Down, 0, &[Down]),
        (3, 2, &[false], Down, 0, &[Down]),
        (1, 1, &[true], Up, 1, &[Up]),
        (1, 1, &[false], Down, 0, &[Down]),
        // just up (c jumped to max 4): one or two failures keep it up, the third takes it down
        (2, 3, &[true, false], Up, 3, &[Up]),
        (2, 3, &[true, false, false], Up, 2, &[Up]),
        (2, 3, &[true, false, false, false], Down, 0, &[Up, Down]),
        // fully up needs fall failures to go down
        (2, 3, &[true, true, true, false, false], Up, 2, &[Up]),
        (
            2,
            3,
            &[true, true, true, false, false, false],
            Down,
            0,
            &[Up, Down],
        ),
        // counter saturates at max
        (2, 3, &[true; 10], Up, 4, &[Up]),
        // fully down needs rise passes
        (2, 3, &[false, true], Down, 1, &[Down]),
        (2, 3, &[false, true, true], Up, 4, &[Down, Up]),
        (2, 3, &[false, false, false, true, true], Up, 4, &[Down, Up]),
        // just down (c jumped to 0): needs rise passes again
        (
            2,
            3,
            &[true, false, false, false, true],
            Down,
            1,
            &[Up, Down],
        ),
        // counter floors at 0
        (2, 3, &[false; 10], Down, 0, &[Down]),
        // alternating after settling up stays in the band
        (
            2,
            3,
            &[true, true, true, false, true, false, true, false],
            Up,
            3,
            &[Up],
        ),
        (3, 3, &[true, true, false, true, false, true], Up, 5, &[Up]),
    ];
    for (i, (rise, fall, results, state, counter, entered)) in cases.iter().enumerate() {
        let mut m = machine(*rise, *fall);
        let t0 = Instant::now();
        let transitions = feed(&mut m, t0, results);
        assert_eq!(m.state(), *state, "case {i}");
        assert_eq!(m.counter(), *counter, "case {i}");
        let tos: Vec<State> = transitions.iter().map(|t| t.to).collect();
        assert_eq!(tos, *entered, "case {i}");
        for w in transitions.windows(2) {
            assert_eq!(w[0].to, w[1].from, "case {i}: transitions chain");
        }
    }
}

#[test]
fn transition_carries_probe_code_detail_and_time() {
    let mut m = machine(2, 3);
    let t0 = Instant::now();
    let at = t0 + Duration::from_secs(3);
    let t = m.on_result(at, &fail()).transition().expect("down");
    assert_eq!(&*t.backend, "be1");
    assert_eq!((t.from, t.to), (State::Unknown, State::Down));
    assert_eq!(t.at, at);
    assert_eq!(t.code, ResultCode::L4Con);
    assert_eq!(t.detail, "connection refused");
    assert_eq!(m.last_result(), Some(&fail()));
    let rec = m.history().last().expect("recorded");
    assert_eq!(
        (rec.from, rec.to, rec.at, rec.code),
        (t.from, t.to, t.at, t.code)
    );
    assert_eq!(rec.detail, t.detail);
    assert_eq!(m.on_result(at, &fail()), ResultEffect::Counted);
}

/// (action, state before, expected result: Ok(Some(to)) / Ok(None) / Err)
#[test]
fn operator_actions_table() {
    use State::*;
    type Act = fn(&mut Machine, Instant) -> Result<Option<Transition>, ActionError>;
    let pause: Act = Machine::pause;
    let resume: Act = Machine::resume;
    let enable: Act = Machine::enable;
    let disable: Act = Machine::disable;
    type Case = (
        &'static str,
        Act,
        State,
        Result<Option<State>, ActionError>,
        ResultCode,
    );
    let cases: &[Case] = &[
        (
            "pause",
            pause,
            Unknown,
            Ok(Some(Paused)),
            ResultCode::Paused,
        ),
        ("pause", pause, Up, Ok(Some(Paused)), ResultCode::Paused),
        ("pause", pause, Down, Ok(Some(Paused)), ResultCode::Paused),
        ("pause", pause, Paused, Ok(None), ResultCode::Paused),
        (
            "pause",
            pause,
            Disabled,
            Err(ActionError::Disabled),
            ResultCode::Paused,
        ),
        (
            "pause",
            pause,
            Removed,
            Err(ActionError::Removed),
            ResultCode::Paused,
        ),
        (
            "resume",
            resume,
            Paused,
            Ok(Some(Unknown)),
            ResultCode::Resumed,
        ),
        ("resume", resume, Up, Ok(None), ResultCode::Resumed),
        ("resume", resume, Down, Ok(None), ResultCode::Resumed),
        ("resume", resume, Unknown, Ok(None), ResultCode::Resumed),
        (
            "resume",
            resume,
            Disabled,
            Err(ActionError::Disabled),
            ResultCode::Resumed,
        ),
        (
            "resume",
            resume,
            Removed,
            Err(ActionError::Removed),
            ResultCode::Resumed,
        ),
        (
            "disable",
            disable,
            Unknown,
            Ok(Some(Disabled)),
            ResultCode::Disabled,
        ),
        (
            "disable",
            disable,
            Up,
            Ok(Some(Disabled)),
            ResultCode::Disabled,
        ),
        (
            "disable",
            disable,
            Down,
            Ok(Some(Disabled)),
            ResultCode::Disabled,
        ),
        (
            "disable",
            disable,
            Paused,
            Ok(Some(Disabled)),
            ResultCode::Disabled,
        ),
        ("disable", disable, Disabled, Ok(None), ResultCode::Disabled),
        (
            "disable",
            disable,
            Removed,
            Err(ActionError::Removed),
            ResultCode::Disabled,
        ),
        (
            "enable",
            enable,
            Disabled,
            Ok(Some(Unknown)),
            ResultCode::Enabled,
        ),
        ("enable", enable, Up, Ok(None), ResultCode::Enabled),
        ("enable", enable, Down, Ok(None), ResultCode::Enabled),
        ("enable", enable, Paused, Ok(None), ResultCode::Enabled),
        ("enable", enable, Unknown, Ok(None), ResultCode::Enabled),
        (
            "enable",
            enable,
            Removed,
            Err(ActionError::Removed),
            ResultCode::Enabled,
        ),
    ];
    for (name, act, before, expected, code) in cases {
        let mut m = machine(3, 2);
        let t0 = Instant::now();
        drive_to(&mut m, *before, t0);
        assert_eq!(m.state(), *before, "{name} setup");
        let hist_before = m.history().len();
        let counter_before = m.counter();
        let at = t0 + Duration::from_secs(100);
        let got = act(&mut m, at);
        match (expected, got) {
            (Ok(Some(to)), Ok(Some(t))) => {
                assert_eq!(
                    (t.from, t.to, t.code, t.at),
                    (*before, *to, *code, at),
                    "{name}"
                );
                assert_eq!(m.state(), *to);
                if *to == Unknown {
                    assert_eq!(m.counter(), 2, "{name} from {before}: c = rise-1");
                }
                assert_eq!(m.history().last().map(|r| r.to), Some(*to));
            }
            (Ok(None), Ok(None)) => {
                assert_eq!(m.state(), *before, "{name} from {before}");
                assert_eq!(m.counter(), counter_before);
                assert_eq!(m.history().len(), hist_before, "no record for a no-op");
            }
            (Err(e), Err(g)) => {
                assert_eq!(*e, g, "{name} from {before}");
                assert_eq!(m.state(), *before);
            }
            (e, g) => panic!("{name} from {before}: expected {e:?}, got {g:?}"),
        }
        // enable/disable always sync the flag, even as no-ops; errors leave it alone.
        match (*name, expected) {
            ("enable", Ok(_)) => assert!(m.enabled()),
            ("disable", Ok(_)) => assert!(!m.enabled()),
            _ => {}
        }
    }
}

/// Drives a fresh machine (rise 3, fall 2) into `state`.
fn drive_to(m: &mut Machine, state: State, t0: Instant) {
    match state {
        State::Unknown => {}
        State::Up => {
            m.on_result(t0, &pass());
        }
        State::Down => {
            m.on_result(t0, &fail());
        }
        State::Paused => {
            m.pause(t0).expect("pause");
        }
        State::Disabled => {
            m.disable(t0).expect("disable");
        }
        State::Removed => {
            m.remove(t0);
        }
    }
}

#[test]
fn disable_of_disabled_only_syncs_the_flag_and_enable_of_enabled_too() {
    let mut m = machine(2, 3);
    let t0 = Instant::now();
    m.disable(t0).expect("disable");
    assert_eq!(m.history().len(), 1);
    assert_eq!(m.disable(t0).expect("again"), None);
    assert_eq!(m.history().len(), 1);
    m.enable(t0).expect("enable");
    assert!(m.enabled());
    assert_eq!(m.state(), State::Unknown);
    assert_eq!(m.enable(t0).expect("again"), None);
    assert_eq!(m.history().len(), 2);
}

#[test]
fn results_are_ignored_in_operator_states() {
    for state in [State::Paused, State::Disabled, State::Removed] {
        let mut m = machine(2, 3);
        let t0 = Instant::now();
        drive_to(&mut m, state, t0);
        let counter = m.counter();
        let hist = m.history().len();
        assert_eq!(m.on_result(t0, &pass()), ResultEffect::Ignored, "{state}");
        assert_eq!(m.on_result(t0, &fail()), ResultEffect::Ignored, "{state}");
        assert_eq!(
            (m.state(), m.counter(), m.history().len()),
            (state, counter, hist)
        );
        assert_eq!(m.last_result(), None);
        assert_eq!(m.base_interval(), None, "no probes in {state}");
        assert_eq!(m.next_probe(t0, t0), None);
        assert_eq!(m.first_probe(t0), None);
    }
}

#[test]
fn removed_is_final() {
    let mut m = machine(2, 3);
    let t0 = Instant::now();
    let t = m.remove(t0).expect("removed");
    assert_eq!(
        (t.from, t.to, t.code),
        (State::Unknown, State::Removed, ResultCode::Removed)
    );
    assert_eq!(m.remove(t0), None);
    assert_eq!(m.enable(t0), Err(ActionError::Removed));
    assert_eq!(m.disable(t0), Err(ActionError::Removed));
    assert_eq!(m.restart(t0, Some(params(2, 3)), true), None);
    assert_eq!(m.state(), State::Removed);
}

#[test]
fn static_backend_resolves_up_at_once_and_stops_probing() {
    let mut m = Machine::new(Arc::from("static"), None, 5, 1);
    let t0 = Instant::now();
    assert!(m.is_static());
    assert_eq!(m.state(), State::Unknown);
    assert_eq!(
        m.first_probe(t0),
        Some(t0),
        "static resolves on its first cycle"
    );
    let t = m
        .on_result(t0, &Machine::static_result())
        .transition()
        .expect("up");
    assert_eq!(
        (t.from, t.to, t.code),
        (State::Unknown, State::Up, ResultCode::Static)
    );
    assert_eq!(m.next_probe(t0, t0), None, "no further probes once up");
    // pause/resume goes back through unknown and resolves up again
    m.pause(t0).expect("pause");
    m.resume(t0).expect("resume");
    assert_eq!(m.state(), State::Unknown);
    assert_eq!(m.first_probe(t0), Some(t0));
    m.on_result(t0, &Machine::static_result());
    assert_eq!(m.state(), State::Up);
}

#[test]
fn restart_goes_to_unknown_or_disabled_and_keeps_history() {
    let t0 = Instant::now();
    let mut m = machine(2, 3);
    m.on_result(t0, &pass());
    let t = m.restart(t0, Some(params(4, 1)), true).expect("restart");
    assert_eq!((t.from, t.to), (State::Up, State::Unknown));
    assert_eq!(m.counter(), 3);
    assert_eq!(m.params().rise, 4);
    assert_eq!(m.history().len(), 2);
    assert_eq!(m.last_result(), None);
    let t = m.restart(t0, Some(params(2, 2)), false).expect("disabled");
    assert_eq!(
        (t.from, t.to, t.code),
        (State::Unknown, State::Disabled, ResultCode::Disabled)
    );
    assert!(!m.enabled());
    // a paused backend stays paused, with the new parameters
    let mut paused = machine(2, 3);
    paused.pause(t0).expect("pause");
    assert_eq!(paused.restart(t0, Some(params(5, 2)), true), None);
    assert_eq!((paused.state(), paused.params().rise), (State::Paused, 5));
    assert_eq!(paused.first_probe(t0), None, "paused: no probe");
    // restarting an unknown backend into unknown emits nothing
    let mut fresh = machine(2, 3);
    assert_eq!(fresh.restart(t0, Some(params(3, 3)), true), None);
    assert_eq!(fresh.counter(), 2);
}

#[test]
fn history_is_bounded_and_keeps_the_newest() {
    let t0 = Instant::now();
    let mut m = Machine::new(Arc::from("be"), Some(params(1, 1)), 3, 9);
    let results = [true, false, true, false, true];
    let transitions = feed(&mut m, t0, &results);
    assert_eq!(transitions.len(), 5);
    let hist: Vec<_> = m.history().map(|r| (r.from, r.to, r.at)).collect();
    let newest: Vec<_> = transitions[2..]
        .iter()
        .map(|t| (t.from, t.to, t.at))
        .collect();
    assert_eq!(hist, newest);
    let mut none = Machine::new(Arc::from("be"), Some(params(1, 1)), 0, 9);
    none.on_result(t0, &pass());
    assert_eq!(none.history().len(), 0);
}

#[test]
fn interval_rule_table() {
    let t0 = Instant::now();
    // (results from fresh rise 2 fall 3 (max 4), expected base interval)
    let cases: &[(&[bool], Duration)] = &[
        (&[], FAST),                          // unknown
        (&[true], INTERVAL),                  // just up: c jumps to 4 (max)
        (&[true, true, true], INTERVAL),      // up, c=4 (max)
        (&[true, true, true, false], FAST),   // falling, c=3
        (&[false], DOWN),                     // down, c=0
        (&[false, true], FAST),               // rising, c=1
        (&[true, false], FAST),               // falling, c=3
        (&[true, false, false], FAST),        // falling, c=2
        (&[true, false, false, false], DOWN), // just down: c jumps to 0
    ];
    for (results, expected) in cases {
        let mut m = machine(2, 3);
        feed(&mut m, t0, results);
        assert_eq!(m.base_interval(), Some(*expected), "{results:?}");
    }
}

#[test]
fn next_probe_is_start_to_start_without_catch_up() {
    let t0 = Instant::now();
    let mut m = machine(2, 3);
    feed(&mut m, t0, &[true, true, true]);
    // a 500 ms probe: next start is last start + jittered interval, not result + interval
    let next = m
        .next_probe(t0, t0 + Duration::from_millis(500))
        .expect("next");
    let wait = next - t0;
    assert!(
        wait >= INTERVAL.mul_f64(0.9) && wait <= INTERVAL.mul_f64(1.1),
        "{wait:?}"
    );
    // a probe that overran: next start is now, not in the past
    let late = t0 + Duration::from_secs(10);
    assert_eq!(m.next_probe(t0, late), Some(late));
}

#[test]
fn first_probe_is_spread_over_the_first_interval() {
    let t0 = Instant::now();
    let mut offsets = Vec::new();
    for seed in 0..200 {
        let mut m = Machine::new(Arc::from("be"), Some(params(2, 3)), 5, seed);
        let first = m.first_probe(t0).expect("first");
        let off = first - t0;
        assert!(off < FAST, "{off:?}");
        offsets.push(off);
    }
    // spread, not all at one point: both halves of the interval are used
    let half = FAST / 2;
    assert!(offsets.iter().any(|o| *o < half));
    assert!(offsets.iter().any(|o| *o >= half));
}

#[derive(Clone, Debug)]
enum Op {
    Result(bool),
    Pause,
    Resume,
    Enable,
    Disable,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<bool>().prop_map(Op::Result),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Enable),
        1 => Just(Op::Disable),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_over_random_sequences(
        rise in 1u32..6,
        fall in 1u32..6,
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let mut m = Machine::new(Arc::from("p"), Some(params(rise, fall)), 4, seed);
        let max = rise + fall - 1;
        let t0 = Instant::now();
        let mut last_to = m.state();
        for (i, op) in ops.iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 100);
            let before = m.state();
            let t = match op {
                Op::Result(ok) => {
                    let r = if *ok { pass() } else { fail() };
                    let e = m.on_result(now, &r);
                    if before.is_operator() {
                        prop_assert_eq!(&e, &ResultEffect::Ignored);
                    }
                    e.transition()
                }
                Op::Pause => m.pause(now).ok().flatten(),
                Op::Resume => m.resume(now).ok().flatten(),
                Op::Enable => m.enable(now).ok().flatten(),
                Op::Disable => m.disable(now).ok().flatten(),
            };
            if let Some(t) = &t {
                prop_assert_eq!(t.from, last_to);
                prop_assert_ne!(t.from, t.to);
                last_to = t.to;
            }
            prop_assert!(m.counter() <= max);
            match m.state() {
                State::Up => prop_assert!(m.counter() >= rise),
                State::Down => prop_assert!(m.counter() < rise),
                State::Unknown => prop_assert_eq!(m.counter(), rise - 1),
                _ => {}
            }
            if m.state() == State::Disabled {
                prop_assert!(!m.enabled());
            }
            prop_assert!(m.history().len() <= 4);
            // interval rule
            let expected = match m.state() {
                State::Up if m.counter() == max => Some(INTERVAL),
                State::Down if m.counter() == 0 => Some(DOWN),
                State::Up | State::Down | State::Unknown => Some(FAST),
                _ => None,
            };
            prop_assert_eq!(m.base_interval(), expected);
            if let Some(base) = expected {
                let next = m.next_probe(now, now).expect("probing");
                let wait = next - now;
                prop_assert!(wait >= base.mul_f64(0.9) - Duration::from_nanos(1));
                prop_assert!(wait <= base.mul_f64(1.1) + Duration::from_nanos(1));
            }
        }
    }

    #[test]
    fn alternating_results_never_flap_once_settled(
        rise in 1u32..6,
        fall in 1u32..6,
        settle_up in any::<bool>(),
        start_pass in any::<bool>(),
        n in 2usize..100,
    ) {
        // The band exists when both thresholds are at least 2: from c == max one failure leaves
        // c >= rise, from c == 0 one pass leaves c < rise.
        prop_assume!(rise >= 2 && fall >= 2);
        let mut m = machine(rise, fall);
        let t0 = Instant::now();
        // settle: enough identical results to saturate
        for _ in 0..(rise + fall) {
            m.on_result(t0, &if settle_up { pass() } else { fail() });
        }
        let mut states = std::collections::BTreeSet::new();
        let mut flips = 0;
        let mut prev = m.state();
        for i in 0..n {
            let ok = (i % 2 == 0) == start_pass;
            m.on_result(t0, &if ok { pass() } else { fail() });
            if m.state() != prev {
                flips += 1;
                prev = m.state();
            }
            states.insert(m.state());
        }
        prop_assert_eq!(flips, 0, "states {:?}", states);
    }

    #[test]
    fn jitter_stays_within_ten_percent(base_ms in 1u64..120_000, r in any::<u64>()) {
        let base = Duration::from_millis(base_ms);
        let j = jittered(base, r);
        prop_assert!(j >= base.mul_f64(0.9) - Duration::from_nanos(1));
        prop_assert!(j <= base.mul_f64(1.1) + Duration::from_nanos(1));
        prop_assert!(spread(base, r) < base);
    }
}
