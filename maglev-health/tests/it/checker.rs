//! Checker tests on tokio's paused clock with fake probers: cadence, first-probe spread,
//! operator actions end to end, in-flight cancel, subscriber lag and config apply.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_health::checker::{
    BackendSpec, BackendStatus, CheckSpec, Checker, CheckerConfig, CheckerError, Prober,
    SCHEDULER_TICK,
};
use maglev_health::machine::{ActionError, State, Transition};
use maglev_health::probe::{ProbeKind, ProbeSpec};
use maglev_health::result::{ProbeResult, ResultCode};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{Instant, sleep};

/// A fake prober: per-address health, a fixed probe duration, and a log of probe starts.
#[derive(Clone, Default)]
struct Fake {
    inner: Arc<FakeInner>,
}

#[derive(Default)]
struct FakeInner {
    unhealthy: Mutex<HashMap<IpAddr, bool>>,
    delay: Mutex<Duration>,
    starts: Mutex<Vec<(IpAddr, Instant)>>,
    dropped: AtomicUsize,
    finished: AtomicUsize,
}

struct DropGuard<'a>(&'a AtomicUsize, bool);

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Fake {
    fn with_delay(delay: Duration) -> Self {
        let f = Self::default();
        *f.inner.delay.lock().unwrap() = delay;
        f
    }

    fn set_healthy(&self, addr: IpAddr, healthy: bool) {
        self.inner.unhealthy.lock().unwrap().insert(addr, !healthy);
    }

    fn starts(&self, addr: IpAddr) -> Vec<Instant> {
        let starts = self.inner.starts.lock().unwrap();
        starts
            .iter()
            .filter(|(a, _)| *a == addr)
            .map(|(_, t)| *t)
            .collect()
    }

    fn total_starts(&self) -> usize {
        self.inner.starts.lock().unwrap().len()
    }
}

impl Prober for Fake {
    async fn probe(&self, _spec: &ProbeSpec, target: IpAddr) -> ProbeResult {
        let inner = &self.inner;
        inner.starts.lock().unwrap().push((target, Instant::now()));
        let delay = *inner.delay.lock().unwrap();
        let mut guard = DropGuard(&inner.dropped, false);
        sleep(delay).await;
        guard.1 = true;
        inner.finished.fetch_add(1, Ordering::SeqCst);
        let bad = inner
            .unhealthy
            .lock()
            .unwrap()
            .get(&target)
            .copied()
            .unwrap_or(false);
        if bad {
            ProbeResult::new(ResultCode::L4Con, "connection refused", delay)
        } else {
            ProbeResult::new(ResultCode::L4Ok, "connected", delay)
        }
    }
}

fn probe_spec(timeout_ms: u64) -> ProbeSpec {
    // The fake prober never looks at the spec; any valid one will do.
    ProbeSpec::new(ProbeKind::Icmp, Duration::from_millis(timeout_ms))
}

fn check(interval_ms: u64, fast_ms: u64, down_ms: u64, rise: u32, fall: u32) -> CheckSpec {
    CheckSpec {
        probe: probe_spec(50),
        interval: Duration::from_millis(interval_ms),
        fast_interval: Duration::from_millis(fast_ms),
        down_interval: Duration::from_millis(down_ms),
        rise,
        fall,
    }
}

fn addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + 1 + i))
}

fn backend(name: &str, i: u32, check: Option<CheckSpec>) -> BackendSpec {
    BackendSpec {
        name: name.to_owned(),
        address: addr(i),
        check,
        enabled: true,
    }
}

fn checker(fake: &Fake) -> Checker<Fake> {
    Checker::with_prober(CheckerConfig::default().with_seed(7), fake.clone())
}

fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<Transition>,
) -> Vec<(String, State, State, ResultCode)> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(t) => out.push((t.backend.to_string(), t.from, t.to, t.code)),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn cadence_is_start_to_start_with_jitter() {
    let fake = Fake::with_delay(Duration::from_millis(30));
    let c = checker(&fake);
    c.apply_config(vec![backend("a", 0, Some(check(100, 100, 100, 2, 3)))])
        .unwrap();
    sleep(Duration::from_secs(10)).await;
    let starts = fake.starts(addr(0));
    // about 100 probes in 10 s at a 100 ms period, despite each taking 30 ms
    assert!((95..=106).contains(&starts.len()), "{}", starts.len());
    // ±10% jitter, and a start may be up to one scheduler tick after its deadline
    for w in starts.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(90) && gap <= Duration::from_millis(110) + SCHEDULER_TICK,
            "gap {gap:?}"
        );
    }
    // the gaps are jittered, not all equal (in steps of the scheduler's tick: a ±10 ms jitter
    // spans about five 4 ms ticks)
    let distinct: std::collections::BTreeSet<_> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(distinct.len() >= 4, "{distinct:?}");
    let snap = c.state("a").unwrap();
    assert_eq!(snap.state, State::Up);
    assert_eq!(snap.counter, 4);
    assert_eq!(snap.last_result.unwrap().code, ResultCode::L4Ok);
    let stats = c.stats();
    assert_eq!(stats.probes_started as usize, starts.len());
}

#[tokio::test(start_paused = true)]
async fn overrunning_probe_starts_the_next_at_once_without_burst() {
    let fake = Fake::with_delay(Duration::from_millis(250));
    let c = checker(&fake);
    c.apply_config(vec![backend("a", 0, Some(check(100, 100, 100, 2, 3)))])
        .unwrap();
    sleep(Duration::from_secs(5)).await;
    let starts = fake.starts(addr(0));
    assert!((19..=21).contains(&starts.len()), "{}", starts.len());
    // back to back (within the scheduler's tick), no catch-up
    for w in starts.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(250) && gap <= Duration::from_millis(250) + SCHEDULER_TICK,
            "gap {gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn interval_follows_state() {
    let fake = Fake::with_delay(Duration::ZERO);
    fake.set_healthy(addr(0), false);
    let c = checker(&fake);
    c.apply_config(vec![backend("a", 0, Some(check(1000, 200, 5000, 2, 3)))])
        .unwrap();
    sleep(Duration::from_secs(30)).await;
    assert_eq!(c.state("a").unwrap().state, State::Down);
    let starts = fake.starts(addr(0));
    // after the first failure the backend is down with c = 0: down-interval
    for w in starts.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(4500) && gap <= Duration::from_millis(5500),
            "{gap:?}"
        );
    }
    // heal: rising uses fast-interval, fully up uses interval
    fake.set_healthy(addr(0), true);
    let healed = Instant::now();
    sleep(Duration::from_secs(20)).await;
    let starts: Vec<_> = fake
        .starts(addr(0))
        .into_iter()
        .filter(|t| *t > healed)
        .collect();
    let gaps: Vec<_> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // pass 1 (c=1, still down: fast-interval), pass 2 (c=2, up: the counter jumps to max, so
    // the normal interval from then on)
    assert!(gaps.len() >= 3, "{gaps:?}");
    for g in &gaps[..1] {
        assert!(
            *g >= Duration::from_millis(180) && *g <= Duration::from_millis(220),
            "{g:?}"
        );
    }
    for g in &gaps[1..] {
        assert!(
            *g >= Duration::from_millis(900) && *g <= Duration::from_millis(1100),
            "{g:?}"
        );
    }
    assert_eq!(c.state("a").unwrap().state, State::Up);
}

#[tokio::test(start_paused = true)]
async fn first_probes_are_spread_over_the_first_interval() {
    let fake = Fake::with_delay(Duration::ZERO);
    let c = checker(&fake);
    let t0 = Instant::now();
    let specs = (0..200)
        .map(|i| backend(&format!("b{i}"), i, Some(check(1000, 1000, 1000, 2, 3))))
        .collect();
    c.apply_config(specs).unwrap();
    sleep(Duration::from_millis(1001)).await;
    let firsts: Vec<Duration> = (0..200)
        .map(|i| {
            let s = fake.starts(addr(i));
            assert!(!s.is_empty(), "backend {i} probed in its first interval");
            let first = s[0] - t0;
            assert!(
                first <= Duration::from_millis(1000),
                "backend {i}: {first:?}"
            );
            first
        })
        .collect();
    // every tenth of the interval gets some first probes; none gets a burst
    let mut deciles = [0usize; 10];
    for f in &firsts {
        deciles[((f.as_millis() / 100) as usize).min(9)] += 1;
    }
    for (i, n) in deciles.iter().enumerate() {
        assert!((5..=40).contains(n), "decile {i}: {n} ({deciles:?})");
    }
}

#[tokio::test(start_paused = true)]
async fn static_backend_is_up_at_once_and_never_probed() {
    let fake = Fake::default();
    let c = checker(&fake);
    let mut rx = c.subscribe();
    c.apply_config(vec![backend("s", 0, None)]).unwrap();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        drain(&mut rx),
        vec![(
            "s".to_owned(),
            State::Unknown,
            State::Up,
            ResultCode::Static
        )]
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(fake.total_starts(), 0);
    let snap = c.state("s").unwrap();
    assert!(snap.is_static);
    assert_eq!(snap.state, State::Up);
}

#[tokio::test(start_paused = true)]
async fn operator_actions_end_to_end() {
    let fake = Fake::with_delay(Duration::from_millis(5));
    let c = checker(&fake);
    let mut rx = c.subscribe();
    c.apply_config(vec![backend("a", 0, Some(check(1000, 1000, 1000, 2, 3)))])
        .unwrap();
    sleep(Duration::from_secs(3)).await;
    assert_eq!(c.state("a").unwrap().state, State::Up);
    drain(&mut rx);

    // pause: no probes while paused
    let snap = c.pause("a").unwrap();
    assert_eq!(snap.state, State::Paused);
    let n = fake.starts(addr(0)).len();
    sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.starts(addr(0)).len(), n, "no probes while paused");
    // pause again is a no-op
    assert_eq!(c.pause("a").unwrap().state, State::Paused);

    // resume: unknown at once, then up on the first probe (sent at once)
    let resumed_at = Instant::now();
    let snap = c.resume("a").unwrap();
    assert_eq!((snap.state, snap.counter), (State::Unknown, 1));
    sleep(Duration::from_millis(10)).await;
    let last = fake.starts(addr(0)).last().copied().unwrap();
    assert!(
        last - resumed_at <= Duration::from_millis(1),
        "probed at once on resume"
    );
    assert_eq!(c.state("a").unwrap().state, State::Up);

    // disable: no probes; pause and resume refused
    let snap = c.disable("a").unwrap();
    assert_eq!((snap.state, snap.enabled), (State::Disabled, false));
    for res in [c.pause("a"), c.resume("a")] {
        assert!(matches!(
            res,
            Err(CheckerError::Refused {
                source: ActionError::Disabled,
                ..
            })
        ));
    }
    assert_eq!(c.disable("a").unwrap().state, State::Disabled, "idempotent");
    let n = fake.starts(addr(0)).len();
    sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.starts(addr(0)).len(), n, "no probes while disabled");

    // enable: unknown, probes again
    let snap = c.enable("a").unwrap();
    assert_eq!((snap.state, snap.enabled), (State::Unknown, true));
    assert_eq!(
        c.enable("a").unwrap().state,
        State::Unknown,
        "no-op when not disabled"
    );
    sleep(Duration::from_millis(10)).await;
    assert_eq!(c.state("a").unwrap().state, State::Up);

    let seen: Vec<_> = drain(&mut rx)
        .into_iter()
        .map(|(_, f, t, code)| (f, t, code))
        .collect();
    assert_eq!(
        seen,
        vec![
            (State::Up, State::Paused, ResultCode::Paused),
            (State::Paused, State::Unknown, ResultCode::Resumed),
            (State::Unknown, State::Up, ResultCode::L4Ok),
            (State::Up, State::Disabled, ResultCode::Disabled),
            (State::Disabled, State::Unknown, ResultCode::Enabled),
            (State::Unknown, State::Up, ResultCode::L4Ok),
        ]
    );
    let history: Vec<_> = c
        .state("a")
        .unwrap()
        .history
        .iter()
        .map(|r| (r.from, r.to))
        .collect();
    assert_eq!(
        history,
        vec![
            (State::Paused, State::Unknown),
            (State::Unknown, State::Up),
            (State::Up, State::Disabled),
            (State::Disabled, State::Unknown),
            (State::Unknown, State::Up)
        ]
    );

    for res in [
        c.pause("zz"),
        c.resume("zz"),
        c.enable("zz"),
        c.disable("zz"),
        c.state("zz"),
    ] {
        assert!(matches!(res, Err(CheckerError::UnknownBackend { ref name }) if name == "zz"));
    }
}

#[tokio::test(start_paused = true)]
async fn pause_and_disable_cancel_the_in_flight_probe() {
    for action in ["pause", "disable"] {
        let fake = Fake::with_delay(Duration::from_secs(10));
        let c = checker(&fake);
        c.apply_config(vec![backend("a", 0, Some(check(1000, 1000, 1000, 2, 3)))])
            .unwrap();
        sleep(Duration::from_secs(1)).await;
        assert_eq!(fake.total_starts(), 1, "one probe in flight");
        let res = if action == "pause" {
            c.pause("a")
        } else {
            c.disable("a")
        };
        res.unwrap();
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            fake.inner.dropped.load(Ordering::SeqCst),
            1,
            "{action}: probe dropped at once"
        );
        sleep(Duration::from_secs(60)).await;
        assert_eq!(fake.inner.finished.load(Ordering::SeqCst), 0, "{action}");
        assert_eq!(fake.total_starts(), 1, "{action}");
        assert_eq!(c.state("a").unwrap().last_result, None, "{action}");
    }
}

#[tokio::test(start_paused = true)]
async fn slow_subscriber_lags_and_never_slows_the_checker() {
    let fake = Fake::with_delay(Duration::ZERO);
    let c = Checker::with_prober(
        CheckerConfig::default()
            .with_seed(1)
            .with_channel_capacity(8),
        fake.clone(),
    );
    let mut slow = c.subscribe();
    let mut fast = c.subscribe();
    let specs = (0..50)
        .map(|i| backend(&format!("b{i}"), i, Some(check(100, 100, 100, 1, 1))))
        .collect();
    c.apply_config(specs).unwrap();
    let fast_task = tokio::spawn(async move {
        let mut n = 0;
        for _ in 0..50 {
            match fast.recv().await {
                Ok(_) => n += 1,
                Err(e) => panic!("fast subscriber: {e:?}"),
            }
        }
        n
    });
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fast_task.await.unwrap(),
        50,
        "a reading subscriber sees every transition"
    );
    // each backend went up; flip them all down to produce more transitions
    for i in 0..50 {
        fake.set_healthy(addr(i), false);
    }
    sleep(Duration::from_secs(1)).await;
    // the checker kept going: every backend is down
    assert!(c.snapshot().iter().all(|s| s.state == State::Down));
    match slow.recv().await {
        Err(RecvError::Lagged(n)) => assert_eq!(n, 100 - 8),
        other => panic!("expected lag, got {other:?}"),
    }
    // after the lag notice the receiver continues with the newest transitions
    let t = slow.recv().await.unwrap();
    assert_eq!(t.to, State::Down);
}

#[tokio::test(start_paused = true)]
async fn a_changed_check_keeps_the_operators_pause_and_disable_unless_the_config_flips_enabled() {
    let fake = Fake::with_delay(Duration::ZERO);
    let c = checker(&fake);
    let chk = check(1000, 1000, 1000, 2, 3);
    c.apply_config(vec![
        backend("paused", 0, Some(chk.clone())),
        backend("disabled", 1, Some(chk.clone())),
        BackendSpec {
            enabled: false,
            ..backend("flip", 2, Some(chk.clone()))
        },
    ])
    .unwrap();
    sleep(Duration::from_secs(3)).await;
    c.pause("paused").unwrap();
    c.disable("disabled").unwrap();

    let new_check = check(1000, 1000, 1000, 4, 3);
    let report = c
        .apply_config(vec![
            backend("paused", 0, Some(new_check.clone())),
            backend("disabled", 1, Some(new_check.clone())),
            // the config now enables it: the config wins
            backend("flip", 2, Some(new_check.clone())),
        ])
        .unwrap();
    assert_eq!(report.restarted.len(), 3);
    let paused = c.state("paused").unwrap();
    assert_eq!((paused.state, paused.rise), (State::Paused, 4));
    let disabled = c.state("disabled").unwrap();
    assert_eq!((disabled.state, disabled.enabled), (State::Disabled, false));
    let flip = c.state("flip").unwrap();
    assert_eq!((flip.state, flip.enabled), (State::Unknown, true));

    // a paused backend is not probed; resumed, it starts over with the new check
    let before = fake.starts(addr(0)).len();
    sleep(Duration::from_secs(5)).await;
    assert_eq!(fake.starts(addr(0)).len(), before, "paused: no probes");
    c.resume("paused").unwrap();
    sleep(Duration::from_secs(10)).await;
    assert_eq!(c.state("paused").unwrap().state, State::Up);
    assert!(
        fake.starts(addr(0)).len() >= before + 4,
        "rise 4 after the resume"
    );
}

#[tokio::test(start_paused = true)]
async fn apply_config_handles_added_unchanged_changed_and_removed() {
    let fake = Fake::with_delay(Duration::ZERO);
    let c = checker(&fake);
    let mut rx = c.subscribe();
    let chk = check(1000, 1000, 1000, 2, 3);
    let report = c
        .apply_config(vec![
            backend("keep", 0, Some(chk.clone())),
            backend("change", 1, Some(chk.clone())),
            backend("gone", 2, Some(chk.clone())),
            BackendSpec {
                enabled: false,
                ..backend("off", 3, Some(chk.clone()))
            },
        ])
        .unwrap();
    assert_eq!(report.added.len(), 4);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(c.state("keep").unwrap().state, State::Up);
    assert_eq!(c.state("change").unwrap().state, State::Up);
    assert_eq!(c.state("off").unwrap().state, State::Disabled);
    assert!(
        fake.starts(addr(3)).is_empty(),
        "disabled in config: never probed"
    );
    // the runtime flag of "keep" is disabled by the operator and must survive the reload
    c.disable("keep").unwrap();
    drain(&mut rx);

    let keep_history = c.state("keep").unwrap().history;
    let report = c
        .apply_config(vec![
            // unchanged check, new address, YAML says enabled: runtime flag and state survive
            backend("keep", 10, Some(chk.clone())),
            // changed check: restart in unknown
            backend("change", 1, Some(check(1000, 1000, 1000, 3, 3))),
            // unchanged but YAML now says enabled: stays disabled (runtime flag wins)
            backend("off", 3, Some(chk.clone())),
            // new
            backend("new", 4, Some(chk.clone())),
        ])
        .unwrap();
    let names = |v: &[Arc<str>]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&report.added), ["new"]);
    assert_eq!(names(&report.unchanged), ["keep", "off"]);
    assert_eq!(names(&report.restarted), ["change"]);
    assert_eq!(names(&report.removed), ["gone"]);

    let keep = c.state("keep").unwrap();
    assert_eq!((keep.state, keep.enabled), (State::Disabled, false));
    assert_eq!(
        keep.address,
        addr(10),
        "address copied onto the runtime backend"
    );
    assert_eq!(keep.history, keep_history);
    assert_eq!(c.state("off").unwrap().state, State::Disabled);
    let change = c.state("change").unwrap();
    assert_eq!(
        (change.state, change.counter, change.rise),
        (State::Unknown, 2, 3)
    );
    assert!(matches!(
        c.state("gone"),
        Err(CheckerError::UnknownBackend { .. })
    ));

    let mut seen = drain(&mut rx);
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "change".to_owned(),
                State::Up,
                State::Unknown,
                ResultCode::Resumed
            ),
            (
                "gone".to_owned(),
                State::Up,
                State::Removed,
                ResultCode::Removed
            ),
        ]
    );

    let gone_probes = fake.starts(addr(2)).len();
    let reloaded = Instant::now();
    sleep(Duration::from_secs(5)).await;
    assert_eq!(
        fake.starts(addr(2)).len(),
        gone_probes,
        "removed backend stopped"
    );
    assert_eq!(c.state("change").unwrap().state, State::Up);
    assert_eq!(c.state("new").unwrap().state, State::Up);
    // "keep" is disabled: not probed at either address
    assert!(fake.starts(addr(10)).is_empty());

    // re-enabled, "keep" probes its new address
    c.enable("keep").unwrap();
    sleep(Duration::from_secs(1)).await;
    assert!(fake.starts(addr(10)).iter().all(|t| *t > reloaded));
    assert!(!fake.starts(addr(10)).is_empty());
    assert_eq!(c.state("keep").unwrap().state, State::Up);

    // a changed check with YAML enabled: false restarts into disabled
    c.apply_config(vec![BackendSpec {
        enabled: false,
        ..backend("keep", 10, Some(check(2000, 1000, 1000, 2, 3)))
    }])
    .unwrap();
    assert_eq!(c.state("keep").unwrap().state, State::Disabled);
    assert_eq!(c.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn statuses_are_the_snapshots_without_history() {
    let fake = Fake::with_delay(Duration::from_millis(5));
    let c = checker(&fake);
    fake.set_healthy(addr(1), false);
    // Out of name order on purpose: both views sort by name.
    c.apply_config(vec![
        backend("c", 2, Some(check(1000, 1000, 1000, 2, 3))),
        backend("a", 0, Some(check(1000, 1000, 1000, 2, 3))),
        backend("b", 1, Some(check(1000, 1000, 1000, 2, 3))),
        backend("s", 3, None),
    ])
    .unwrap();
    sleep(Duration::from_secs(5)).await;
    c.disable("c").unwrap();
    let snapshot = c.snapshot();
    let projected: Vec<BackendStatus> = snapshot
        .iter()
        .map(|s| BackendStatus {
            name: Arc::clone(&s.name),
            address: s.address,
            state: s.state,
            counter: s.counter,
            enabled: s.enabled,
        })
        .collect();
    let statuses = c.statuses();
    assert_eq!(statuses, projected);
    let seen: Vec<_> = statuses
        .iter()
        .map(|s| (&*s.name, s.state, s.enabled))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", State::Up, true),
            ("b", State::Down, true),
            ("c", State::Disabled, false),
            ("s", State::Up, true),
        ]
    );
    assert!(
        snapshot.iter().any(|s| !s.history.is_empty()),
        "the snapshots carry what the statuses leave out"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_config_changes_nothing() {
    let fake = Fake::with_delay(Duration::ZERO);
    let c = checker(&fake);
    c.apply_config(vec![backend("a", 0, Some(check(1000, 1000, 1000, 2, 3)))])
        .unwrap();
    let dup = c.apply_config(vec![backend("b", 1, None), backend("b", 2, None)]);
    assert!(matches!(dup, Err(CheckerError::DuplicateBackend { ref name }) if name == "b"));
    let bad_rise = c.apply_config(vec![backend("c", 1, Some(check(1000, 1000, 1000, 0, 3)))]);
    assert!(matches!(bad_rise, Err(CheckerError::InvalidCheck { ref name, .. }) if name == "c"));
    let zero = c.apply_config(vec![backend("d", 1, Some(check(0, 1000, 1000, 2, 3)))]);
    assert!(matches!(zero, Err(CheckerError::InvalidCheck { .. })));
    let names: Vec<_> = c.snapshot().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["a"]);
}

#[tokio::test(start_paused = true)]
async fn one_probe_per_backend_per_cycle_and_clean_shutdown() {
    let fake = Fake::with_delay(Duration::from_millis(1));
    let c = checker(&fake);
    let specs: Vec<_> = (0..20)
        .map(|i| backend(&format!("b{i}"), i, Some(check(500, 500, 500, 2, 3))))
        .collect();
    c.apply_config(specs.clone()).unwrap();
    // re-applying the same config keeps one worker per backend
    let report = c.apply_config(specs).unwrap();
    assert_eq!(report.unchanged.len(), 20);
    sleep(Duration::from_secs(10)).await;
    for i in 0..20 {
        let n = fake.starts(addr(i)).len();
        assert!(
            (19..=22).contains(&n),
            "backend {i}: {n} probes in 10 s at 500 ms"
        );
    }
    c.shutdown().await;
    assert!(c.is_empty());
    let n = fake.total_starts();
    sleep(Duration::from_secs(10)).await;
    assert_eq!(fake.total_starts(), n, "no probes after shutdown");
}
