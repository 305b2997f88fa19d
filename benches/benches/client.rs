//! VPP API socket client: sequential `control_ping` round trip and pipelined throughput,
//! against the VPP simulator (`vpp_sim`, on its own thread) and against a minimal echo server on
//! a unix socket (a blocking thread), with a blocking hand-written round trip as the floor.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vpp_binapi::api::memclnt::ControlPing;
use vpp_binapi::client::{Client, ClientOptions};

const CONTROL_PING: u16 = 100;
const CONTROL_PING_REPLY: u16 = 101;

fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
}

fn create_reply(context: &[u8]) -> Vec<u8> {
    let table = [
        (15u16, "sockclnt_create_455fb9c4"),
        (16, "sockclnt_create_reply_35166268"),
        (17, "sockclnt_delete_8ac76db6"),
        (18, "sockclnt_delete_reply_8f38b1ee"),
        (CONTROL_PING, "control_ping_51077d14"),
        (CONTROL_PING_REPLY, "control_ping_reply_f6b0b8ca"),
    ];
    let mut p = 16u16.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(context);
    p.extend_from_slice(&0i32.to_be_bytes());
    p.extend_from_slice(&0x8000_0001u32.to_be_bytes());
    p.extend_from_slice(&(table.len() as u16).to_be_bytes());
    for (id, name) in table {
        p.extend_from_slice(&id.to_be_bytes());
        let mut n = name.as_bytes().to_vec();
        n.resize(64, 0);
        p.extend_from_slice(&n);
    }
    p
}

/// Serves one connection: answers the handshake, then every `control_ping`, writing all replies
/// to one read's worth of requests at once.
fn serve(mut sock: UnixStream) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = 0;
    let mut out = Vec::with_capacity(256 * 1024);
    loop {
        let n = match sock.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let mut at = 0;
        while have - at >= 16 {
            let len = u32::from_be_bytes(buf[at + 8..at + 12].try_into().unwrap()) as usize;
            if have - at < 16 + len {
                break;
            }
            let p = &buf[at + 16..at + 16 + len];
            match u16::from_be_bytes([p[0], p[1]]) {
                15 => put_frame(&mut out, &create_reply(&p[2..6])),
                CONTROL_PING => {
                    let mut r = [0u8; 18];
                    r[..2].copy_from_slice(&CONTROL_PING_REPLY.to_be_bytes());
                    r[2..6].copy_from_slice(&p[6..10]);
                    r[10..14].copy_from_slice(&p[2..6]);
                    r[14..18].copy_from_slice(&1234u32.to_be_bytes());
                    put_frame(&mut out, &r);
                }
                _ => {}
            }
            at += 16 + len;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        if !out.is_empty() {
            if sock.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn start_echo_server() -> PathBuf {
    let path = std::env::temp_dir().join(format!("vpp-client-bench-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            std::thread::spawn(move || serve(sock));
        }
    });
    path
}

/// Starts the VPP simulator on its own thread and runtime, like a separate VPP process.
fn start_simulator() -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("vpp-client-bench-sim-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = vpp_sim::SimConfig::new(&path);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sim = vpp_sim::Simulator::start(cfg).await.unwrap();
            tx.send(()).unwrap();
            std::future::pending::<()>().await;
            drop(sim);
        });
    });
    rx.recv().unwrap();
    path
}

fn bench_server(c: &mut Criterion, server: &str, path: &PathBuf) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt
        .block_on(Client::connect(
            path,
            ClientOptions::default().max_in_flight(4096),
        ))
        .unwrap();

    let mut g = c.benchmark_group(format!("client_{server}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("ping_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    client.ping().await.unwrap();
                }
                start.elapsed()
            })
        })
    });

    const BATCH: usize = 10_000;
    let pings = vec![ControlPing {}; BATCH];
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("ping_pipelined_batch_10k", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let replies = client.batch(&pings).await.unwrap();
                    assert_eq!(replies.len(), BATCH);
                }
                start.elapsed()
            })
        })
    });

    const CONCURRENT: u64 = 256;
    const PER_TASK: u64 = 40;
    g.throughput(Throughput::Elements(CONCURRENT * PER_TASK));
    g.bench_function("ping_concurrent_256_tasks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..CONCURRENT {
                        let client = client.clone();
                        set.spawn(async move {
                            for _ in 0..PER_TASK {
                                client.ping().await.unwrap();
                            }
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        r.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    let _ = rt.block_on(client.close());
}

/// The floor: the same exchange with blocking std sockets and hand-written frames, no client.
fn bench_baseline(c: &mut Criterion, path: &PathBuf) {
    let mut sock = UnixStream::connect(path).unwrap();
    let mut hello = Vec::new();
    let mut create = vec![0u8; 70];
    create[..2].copy_from_slice(&15u16.to_be_bytes());
    put_frame(&mut hello, &create);
    sock.write_all(&hello).unwrap();
    let mut hdr = [0u8; 16];
    sock.read_exact(&mut hdr).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(hdr[8..12].try_into().unwrap()) as usize];
    sock.read_exact(&mut reply).unwrap();
    let mut ping = Vec::new();
    let mut p = [0u8; 10];
    p[..2].copy_from_slice(&CONTROL_PING.to_be_bytes());
    put_frame(&mut ping, &p);
    let mut back = [0u8; 16 + 18];
    let mut g = c.benchmark_group("client_echo");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_blocking_round_trip", |b| {
        b.iter(|| {
            sock.write_all(&ping).unwrap();
            sock.read_exact(&mut back).unwrap();
        })
    });
    g.finish();
}

fn bench_client(c: &mut Criterion) {
    let sim = start_simulator();
    bench_server(c, "sim", &sim);
    let echo = start_echo_server();
    bench_server(c, "echo", &echo);
    bench_baseline(c, &echo);
    let _ = std::fs::remove_file(&sim);
    let _ = std::fs::remove_file(&echo);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench_client
}
criterion_main!(benches);
