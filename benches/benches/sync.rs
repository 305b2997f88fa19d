//! The lb sync engine (`maglev-vpp`) against the VPP simulator, which runs on its own thread
//! and runtime like a separate VPP process; the client runs on a current-thread runtime on the
//! bench thread, so that thread's CPU time is the client side's whole cost.
//!
//! - `cold_sync_100x64`: dump + plan + `pipeline::execute` of 100 VIPs x 64 ASes into an empty
//!   VPP, against the floor: the same operations pre-encoded and written back to back on a
//!   bare socket, replies read and counted (`bare_writer_100x64`). Read as a ratio.
//! - `no_drift_sync_1000x64`: a full sync with no drift of 1,000 VIPs x 64 ASes (the three
//!   dumps, decode, plan). Wall time from criterion; CPU time per sync printed for the bench
//!   thread (client) and for the process (client and simulator).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use maglev_core::plan::{As, Encap, FlushSet, Op, Scope, Vip, VipKey, VppState, plan};
use maglev_vpp::adapter::{dump_state, request};
use maglev_vpp::pipeline::execute;
use rustix::time::{ClockId, clock_gettime};
use vpp_binapi::api::memclnt::{SockclntCreate, SockclntCreateReply};
use vpp_binapi::client::{Client, ClientOptions, frame_header};
use vpp_binapi::codec::{self, Message};
use vpp_sim::{SimConfig, SimHandle, Simulator};

fn state(vips: u32, ases: u32) -> VppState {
    let mut s = VppState::new();
    for v in 0..vips {
        let vip_addr = Ipv4Addr::from(0xc000_0000 + v);
        let key = VipKey::new(IpNet::V4(Ipv4Net::new(vip_addr, 32).unwrap()), 6, 80);
        let mut vip = Vip::new(Encap::Gre4, false, 1024);
        for a in 0..ases {
            let backend = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (v * 7 + a) % 10_000));
            vip.ases.insert(backend, As::new(100));
        }
        s.vips.insert(key, vip);
    }
    s
}

/// Starts the simulator on its own thread and runtime.
fn start_simulator(tag: &str) -> (SimHandle, PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "maglev-sync-bench-{tag}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = SimConfig::new(&path);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sim = Simulator::start(cfg).await.unwrap();
            tx.send(sim.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    (rx.recv().unwrap(), path)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn connect(rt: &tokio::runtime::Runtime, path: &PathBuf) -> Client {
    rt.block_on(Client::connect(path, ClientOptions::default()))
        .unwrap()
}

/// Empties the simulator (a restart closes every connection).
fn reset(rt: &tokio::runtime::Runtime, sim: &SimHandle) {
    rt.block_on(sim.restart()).unwrap();
    sim.clear_journal();
}

/// The floor: a raw socket, a by-hand `sockclnt_create`, then every frame of the plan written
/// back to back by one thread while this one reads and counts the replies.
fn bare_writer(sim: &SimHandle, path: &PathBuf, ops: &[Op]) -> Duration {
    let mut sock = UnixStream::connect(path).unwrap();
    let create_id = sim.message_id(SockclntCreate::NAME_CRC).unwrap();
    let hello = codec::encode_message_to_vec(
        &SockclntCreate {
            name: "bare".to_owned(),
        },
        create_id,
        0,
        1,
    );
    sock.write_all(&frame_header(hello.len() as u32)).unwrap();
    sock.write_all(&hello).unwrap();
    let reply: SockclntCreateReply = codec::decode_message_lenient(&read_frame(&mut sock))
        .unwrap()
        .1;
    let mut wire = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let req = request(op);
        let msg = req.message();
        let id = sim.message_id(msg.name_crc()).unwrap();
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&reply.index.to_be_bytes());
        payload.extend_from_slice(&(i as u32 + 2).to_be_bytes());
        msg.encode_body_dyn(&mut payload);
        wire.extend_from_slice(&frame_header(payload.len() as u32));
        wire.extend_from_slice(&payload);
    }
    let start = Instant::now();
    let mut writer = sock.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&wire).unwrap());
    let mut buf = vec![0u8; 256 * 1024];
    let (mut have, mut replies) = (0usize, 0usize);
    while replies < ops.len() {
        let n = sock.read(&mut buf[have..]).unwrap();
        assert!(n > 0, "simulator closed the socket");
        have += n;
        let mut at = 0;
        while have - at >= 16 {
            let len = u32::from_be_bytes(buf[at + 8..at + 12].try_into().unwrap()) as usize;
            if have - at < 16 + len {
                break;
            }
            // Every reply of these messages carries retval 0 at offset 6.
            assert_eq!(&buf[at + 16 + 6..at + 16 + 10], &[0, 0, 0, 0]);
            replies += 1;
            at += 16 + len;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
    let elapsed = start.elapsed();
    sender.join().unwrap();
    elapsed
}

fn read_frame(sock: &mut UnixStream) -> Vec<u8> {
    let mut hdr = [0u8; 16];
    sock.read_exact(&mut hdr).unwrap();
    let mut payload = vec![0u8; u32::from_be_bytes(hdr[8..12].try_into().unwrap()) as usize];
    sock.read_exact(&mut payload).unwrap();
    payload
}

/// One cold sync into an emptied simulator: dump + plan + execute, timed.
fn cold_sync(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    path: &PathBuf,
    want: &VppState,
    expected: usize,
) -> Duration {
    reset(rt, sim);
    let client = connect(rt, path);
    rt.block_on(async {
        let start = Instant::now();
        let current = dump_state(&client, want).await.unwrap();
        let ops = plan(&current, want, Scope::All, &FlushSet::new());
        let report = execute(&client, &ops.ops).await.unwrap();
        let elapsed = start.elapsed();
        assert!(report.is_clean());
        assert_eq!(report.applied, expected);
        elapsed
    })
}

/// Pairs measured in alternation for the printed ratio.
const PAIRS: usize = 8;

fn bench_cold_sync(c: &mut Criterion) {
    let rt = runtime();
    let (sim, path) = start_simulator("cold");
    let want = state(100, 64);
    let cold_plan = plan(&VppState::new(), &want, Scope::All, &FlushSet::new());
    let mut g = c.benchmark_group("lb_sync");
    g.sample_size(10);
    g.bench_function("cold_sync_100x64", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| cold_sync(&rt, &sim, &path, &want, cold_plan.len()))
                .sum()
        });
    });
    g.bench_function("bare_writer_100x64", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                reset(&rt, &sim);
                total += bare_writer(&sim, &path, &cold_plan.ops);
            }
            total
        });
    });
    g.finish();
    // Criterion runs the two one after the other, so load drift between them moves their
    // ratio: measure it again in alternation.
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|_| {
            let ours = cold_sync(&rt, &sim, &path, &want, cold_plan.len());
            reset(&rt, &sim);
            let floor = bare_writer(&sim, &path, &cold_plan.ops);
            ours.as_secs_f64() / floor.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "lb_sync/cold_sync_100x64 against bare_writer_100x64, {PAIRS} alternating pairs: ratio median {:.2}, min {:.2}, max {:.2}",
        ratios[PAIRS / 2],
        ratios[0],
        ratios[PAIRS - 1]
    );
}

fn cpu(clock: ClockId) -> Duration {
    let t = clock_gettime(clock);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn bench_no_drift(c: &mut Criterion) {
    let rt = runtime();
    let (sim, path) = start_simulator("nodrift");
    let want = state(1_000, 64);
    let client = connect(&rt, &path);
    rt.block_on(async {
        let ops = plan(&VppState::new(), &want, Scope::All, &FlushSet::new());
        let report = execute(&client, &ops.ops).await.unwrap();
        assert!(report.is_clean());
    });
    sim.clear_journal();
    let mut g = c.benchmark_group("lb_sync");
    g.sample_size(10);
    let (mut syncs, mut thread_cpu, mut process_cpu) = (0u64, Duration::ZERO, Duration::ZERO);
    g.bench_function("no_drift_sync_1000x64", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (t0, p0) = (cpu(ClockId::ThreadCPUTime), cpu(ClockId::ProcessCPUTime));
                let start = Instant::now();
                for _ in 0..iters {
                    let current = dump_state(&client, &want).await.unwrap();
                    let ops = plan(&current, &want, Scope::All, &FlushSet::new());
                    assert!(ops.is_empty());
                }
                let elapsed = start.elapsed();
                syncs += iters;
                thread_cpu += cpu(ClockId::ThreadCPUTime) - t0;
                process_cpu += cpu(ClockId::ProcessCPUTime) - p0;
                elapsed
            })
        });
    });
    g.finish();
    assert!(
        sim.journal().is_empty(),
        "a sync without drift sent a mutating message"
    );
    if syncs > 0 {
        let per = |d: Duration| d / u32::try_from(syncs).unwrap_or(u32::MAX);
        println!(
            "lb_sync/no_drift_sync_1000x64 CPU per sync over {syncs} syncs: client thread {:.1?}, process (client + simulator) {:.1?}",
            per(thread_cpu),
            per(process_cpu)
        );
    }
    let _ = std::fs::remove_file(&path);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench_cold_sync, bench_no_drift
}
criterion_main!(benches);
