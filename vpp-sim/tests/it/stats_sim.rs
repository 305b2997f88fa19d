//! The simulated stats segment read back through the real stats socket: by our own reader
//! (`vpp_binapi::stats`), under concurrent writes, and by VPP's own Python client (`vpp_papi`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vpp_binapi::stats::{Combined, StatValue, StatsClient, StatsError, SymlinkValue};
use vpp_sim::stats::{
    BOOTTIME, LbCounter, ROUTE_TO, SegmentConfig, StatsListener, StatsSegment, StatsSimError,
};

const BOOT: u64 = 1_700_000_123;

/// A two-thread segment with every entry type the simulator writes, and known values.
fn scenario() -> Result<Arc<StatsSegment>, StatsSimError> {
    let seg = StatsSegment::with_standard_entries(SegmentConfig {
        size: 1 << 20,
        n_threads: 2,
    })?;
    let boot = seg.entry(BOOTTIME).expect("boottime");
    seg.set_value(boot, BOOT)?;
    let route = seg.entry(ROUTE_TO).expect("route/to");
    seg.resize_counter(route, 3)?;
    seg.set_combined(route, 0, 0, 10, 1000)?;
    seg.add_combined(route, 0, 2, 1, 64)?;
    seg.add_combined(route, 1, 2, 7, 700)?;
    seg.lb_vip_created(1)?;
    seg.lb_vip_created(2)?;
    seg.lb_count(LbCounter::FirstPacket, 0, 1, 5)?;
    seg.lb_count(LbCounter::FirstPacket, 1, 1, 3)?;
    seg.lb_count(LbCounter::NextPacket, 1, 2, 40)?;
    seg.lb_count(LbCounter::NextPacket, 1, 2, 2)?;
    seg.add_gauge("/sim/gauge", 77)?;
    seg.add_name_vector("/sim/names", &[Some("local0"), None, Some("eth0")])?;
    seg.add_symlink("/sim/route-2", route, 2)?;
    Ok(Arc::new(seg))
}

struct Served {
    _dir: tempfile::TempDir,
    path: PathBuf,
    task: tokio::task::JoinHandle<Result<(), StatsSimError>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn serve(seg: &Arc<StatsSegment>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.sock");
    let listener = StatsListener::bind(&path).unwrap();
    let task = tokio::spawn(listener.run(seg.clone()));
    Served {
        _dir: dir,
        path,
        task,
    }
}

fn get(client: &StatsClient, name: &str) -> StatValue {
    client.get(name).unwrap().value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_reads_every_type_through_the_socket() {
    let seg = scenario().unwrap();
    let served = serve(&seg);
    let client = StatsClient::connect(&served.path).await.unwrap();

    assert_eq!(get(&client, BOOTTIME), StatValue::Scalar(BOOT));
    assert_eq!(get(&client, "/sim/gauge"), StatValue::Gauge(77));
    let StatValue::CombinedCounters(route) = get(&client, ROUTE_TO) else {
        panic!("route/to is not combined")
    };
    let c = |packets, bytes| Combined { packets, bytes };
    assert_eq!(
        route.per_thread(),
        &[
            vec![c(10, 1000), c(0, 0), c(1, 64)],
            vec![c(0, 0), c(0, 0), c(7, 700)]
        ]
    );
    assert_eq!(route.sum_index(2), c(8, 764));
    let StatValue::SimpleCounters(first) = get(&client, "first session packet") else {
        panic!("lb counter is not simple")
    };
    assert_eq!(first.per_thread(), &[vec![0, 5, 0], vec![0, 3, 0]]);
    assert_eq!(first.sum_per_index(), vec![0, 8, 0]);
    let StatValue::SimpleCounters(next) = get(&client, "packet from existing sessions") else {
        panic!("lb counter is not simple")
    };
    assert_eq!(next.sum_index(2), 42);
    assert_eq!(
        get(&client, "/sim/names"),
        StatValue::NameVector(vec![Some("local0".into()), None, Some("eth0".into())])
    );
    let StatValue::Symlink(link) = get(&client, "/sim/route-2") else {
        panic!("not a symlink")
    };
    assert_eq!(link.target, ROUTE_TO);
    assert_eq!(
        link.value,
        SymlinkValue::Combined(vec![c(1, 64), c(7, 700)])
    );

    let mut names = client.ls::<&str>(&[]).unwrap();
    names.sort();
    let mut want = vec![
        "/net/route/to",
        "/sim/gauge",
        "/sim/names",
        "/sim/route-2",
        "/sys/boottime",
        "first session packet",
        "no server configured",
        "packet from existing sessions",
        "untracked packet",
    ];
    want.sort();
    assert_eq!(names, want);
    let dumped = client.dump(&["^/net/route/to$", "packet"]).unwrap();
    let dumped: Vec<&str> = dumped.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        dumped,
        [
            "/net/route/to",
            "packet from existing sessions",
            "first session packet",
            "untracked packet"
        ]
    );
    assert!(matches!(
        client.get("/nope"),
        Err(StatsError::NotFound { .. })
    ));

    // Counter updates are visible at once, without reconnecting and without an epoch change.
    let epoch = client.epoch().unwrap();
    seg.lb_count(LbCounter::NoServer, 1, 2, 9).unwrap();
    let StatValue::SimpleCounters(no_server) = get(&client, "no server configured") else {
        panic!("lb counter is not simple")
    };
    assert_eq!(no_server.get(1, 2), Some(9));
    assert_eq!(client.epoch().unwrap(), epoch);

    // Structural changes bump the epoch; removed slots disappear and are reused.
    let gauge = seg.entry("/sim/gauge").unwrap();
    seg.remove_entry(gauge).unwrap();
    assert!(client.epoch().unwrap() > epoch);
    assert!(matches!(
        client.get("/sim/gauge"),
        Err(StatsError::NotFound { .. })
    ));
    let reused = seg.add_scalar("/sim/reused", 5).unwrap();
    assert_eq!(reused, gauge);
    assert_eq!(client.get("/sim/reused").unwrap().index, gauge.0);

    // The image copy parses offline to the same entries.
    let image = client.image().unwrap();
    let offline = vpp_binapi::stats::parse_image(&image).unwrap();
    assert_eq!(offline, client.dump::<&str>(&[]).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_growth_and_counter_resizes_keep_values() {
    let seg = Arc::new(
        StatsSegment::new(SegmentConfig {
            size: 1 << 20,
            n_threads: 3,
        })
        .unwrap(),
    );
    let served = serve(&seg);
    let client = StatsClient::connect(&served.path).await.unwrap();
    assert!(client.dump::<&str>(&[]).unwrap().is_empty());
    // More entries than the initial directory capacity (64) forces the directory to move.
    for i in 0..150u64 {
        seg.add_scalar(&format!("/sim/s{i}"), i * 3).unwrap();
    }
    let counter = seg.add_simple_counter("/sim/c", 2).unwrap();
    seg.set_simple(counter, 2, 1, 11).unwrap();
    seg.resize_counter(counter, 100).unwrap();
    seg.set_simple(counter, 0, 99, 4).unwrap();
    let all = client.dump::<&str>(&[]).unwrap();
    assert_eq!(all.len(), 151);
    for i in 0..150u64 {
        assert_eq!(
            get(&client, &format!("/sim/s{i}")),
            StatValue::Scalar(i * 3)
        );
    }
    let StatValue::SimpleCounters(c) = get(&client, "/sim/c") else {
        panic!("not simple")
    };
    assert_eq!(c.threads(), 3);
    assert!(c.per_thread().iter().all(|row| row.len() == 100));
    assert_eq!(
        (c.get(2, 1), c.get(0, 99), c.total()),
        (Some(11), Some(4), 15)
    );
    // Bad writer calls are typed errors.
    assert!(matches!(
        seg.set_simple(counter, 3, 0, 1),
        Err(StatsSimError::OutOfRange { thread: 3, .. })
    ));
    assert!(matches!(
        seg.add_scalar("/sim/s1", 0),
        Err(StatsSimError::DuplicateName { .. })
    ));
    assert!(matches!(
        seg.add_scalar(&"x".repeat(128), 0),
        Err(StatsSimError::InvalidName { .. })
    ));
}

/// While a writer keeps restructuring an entry (resizing it and rewriting every value under one
/// in-progress window), every read must be a consistent snapshot: all values equal to one
/// generation `g`, and the row length the one that generation wrote.
#[test]
fn reads_during_concurrent_updates_are_consistent_snapshots() {
    let seg = Arc::new(
        StatsSegment::new(SegmentConfig {
            size: 4 << 20,
            n_threads: 4,
        })
        .unwrap(),
    );
    let entry = seg.add_simple_counter("/sim/consistent", 1).unwrap();
    seg.set_simple(entry, 0, 0, 0).unwrap();
    let client = StatsClient::from_fd(seg.try_clone_fd().unwrap()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (seg, stop) = (seg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut generation = 0u64;
            while !stop.load(Ordering::Relaxed) {
                generation += 1;
                let len = (generation % 7 + 1) as usize * 8;
                seg.update(|txn| {
                    txn.resize_counter(entry, len).unwrap();
                    for thread in 0..4 {
                        for index in 0..len {
                            txn.set_simple(entry, thread, index, generation).unwrap();
                        }
                    }
                });
                std::thread::yield_now();
            }
            generation
        })
    };

    let mut seen = std::collections::BTreeSet::new();
    let mut busy = 0;
    let start_epoch = seg.epoch();
    let mut reads = 0u64;
    // Read until the writer has made 300 changes and the reads have seen more than 10 distinct
    // generations (bounded, so a stuck writer or a reader that only ever sees `Busy` fails the
    // test). Both conditions are needed: how the two threads interleave depends on the scheduler.
    while (seg.epoch() < start_epoch + 300 || seen.len() <= 10) && reads < 20_000_000 {
        reads += 1;
        match client.get("/sim/consistent") {
            Ok(entry) => {
                let StatValue::SimpleCounters(c) = entry.value else {
                    panic!("not simple")
                };
                let g = c.get(0, 0).unwrap();
                let want_len = if g == 0 { 1 } else { (g % 7 + 1) as usize * 8 };
                for row in c.per_thread() {
                    assert_eq!(row.len(), want_len, "generation {g}: torn row length");
                    assert!(
                        row.iter().all(|v| *v == g),
                        "generation {g}: torn values {row:?}"
                    );
                }
                seen.insert(g);
            }
            Err(StatsError::Busy { .. }) => busy += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let generations = writer.join().unwrap();
    assert!(
        generations >= 300,
        "writer made only {generations} changes in {reads} reads"
    );
    assert!(
        seen.len() > 10,
        "reads saw only {} generations (busy {busy})",
        seen.len()
    );
}

fn python_has_vpp_papi() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import vpp_papi.vpp_stats"])
        .output()
        .map_err(|e| {
            format!("cannot run python3 ({e}); install python3 and `pip install vpp-papi`")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 cannot import vpp_papi: run `pip install vpp-papi` (CI installs it)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn run_papi(socket: &Path, expected: &str) -> (bool, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/papi/stats_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(socket)
        .arg(expected)
        .output()
        .expect("run python3");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// VPP's own reader (`vpp_papi.vpp_stats.VPPStats`) reads the simulator's segment as VPP's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_papi_reads_the_simulated_segment() {
    if let Err(msg) = python_has_vpp_papi() {
        panic!("{msg}");
    }
    let seg = scenario().unwrap();
    let served = serve(&seg);
    let expected = format!(
        r#"{{
        "/sys/boottime": {BOOT},
        "/net/route/to": [[[10, 1000], [0, 0], [1, 64]], [[0, 0], [0, 0], [7, 700]]],
        "first session packet": [[0, 5, 0], [0, 3, 0]],
        "packet from existing sessions": [[0, 0, 0], [0, 0, 42]],
        "untracked packet": [[0, 0, 0], [0, 0, 0]],
        "no server configured": [[0, 0, 0], [0, 0, 0]],
        "/sim/gauge": 77,
        "/sim/names": ["local0", "eth0"],
        "/sim/route-2": [[1, 64], [7, 700]]
        }}"#
    );
    let path = served.path.clone();
    let exp = expected.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || run_papi(&path, &exp))
        .await
        .unwrap();
    assert!(
        ok,
        "vpp_papi check failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains(r#""mismatches": []"#), "{stdout}");
    assert!(
        stdout.contains(r#""first session packet": [[0, 5, 0], [0, 3, 0]]"#),
        "{stdout}"
    );

    // The check really compares: a wrong expectation must make the script fail.
    let wrong = expected.replace("[0, 3, 0]", "[0, 4, 0]");
    let path = served.path.clone();
    let (ok, stdout, _) = tokio::task::spawn_blocking(move || run_papi(&path, &wrong))
        .await
        .unwrap();
    assert!(!ok, "a wrong expectation passed: {stdout}");
    assert!(
        stdout.contains(r#""name": "first session packet""#),
        "{stdout}"
    );
}
