//! maglevd-frontend's benches (figures in BENCHMARKS.md):
//!
//! - `sse_fanout_200`: 200 SSE connections over loopback HTTP while the hub publishes 500
//!   events per second for 5 s; prints the events each connection got, the process CPU time
//!   and the RSS growth, then times one `publish` with the 200 streams open.
//! - `page_weight`: the bytes of a first load of `/view/` (the page, its modules, its CSS
//!   and icon), printed, and the time to serve the page.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use maglevd_frontend::machine::Timing;
use maglevd_frontend::ring::RingLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

const CONNECTIONS: usize = 200;
const RATE: u64 = 500;
const SECONDS: u64 = 5;

/// A frontend over a maglevd that is not there (its driver just retries), serving on loopback.
fn serve(rt: &Runtime) -> (maglevd_frontend::hub::Hub, String) {
    rt.block_on(async {
        let settings = maglevd_frontend::Settings {
            servers: vec!["127.0.0.1:1".into()],
            admin: None,
            ping: Duration::from_secs(15),
            ring: RingLimits::default(),
            timing: Timing::default(),
        };
        let (hub, router) = maglevd_frontend::start(&settings).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(maglevd_frontend::serve(
            listener,
            router,
            std::future::pending(),
        ));
        (hub, addr)
    })
}

/// User and system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Resident set size, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn get(addr: &str, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    raw
}

fn sse_fanout(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (hub, addr) = serve(&rt);
    let frames = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        for _ in 0..CONNECTIONS {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            let request = format!("GET /view/api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let (frames, ready) = (Arc::clone(&frames), Arc::clone(&ready));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut tail: Vec<u8> = Vec::new();
                let mut first = true;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if first {
                                first = false;
                                ready.fetch_add(1, Ordering::Relaxed);
                            }
                            // Count frame ids, including one split across two reads.
                            tail.extend_from_slice(&buf[..n]);
                            let count = tail.windows(4).filter(|w| w == b"id: ").count();
                            frames.fetch_add(count as u64, Ordering::Relaxed);
                            let keep = tail.len().saturating_sub(3);
                            tail.drain(..keep);
                        }
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while ready.load(Ordering::Relaxed) < CONNECTIONS as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    println!(
        "sse fan-out: {} of {CONNECTIONS} streams open",
        ready.load(Ordering::Relaxed)
    );
    let (cpu0, rss0, t0) = (cpu_time(), rss_kib(), Instant::now());
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
        for i in 0..RATE * SECONDS {
            tick.tick().await;
            hub.publish(
                "bench",
                "backend",
                serde_json::json!({ "backend": format!("b{}", i % 50), "from": "up", "to": "down", "at_ms": i }),
            );
        }
    });
    let published_in = t0.elapsed();
    let at_end = frames.load(Ordering::Relaxed);
    // Then until every stream caught up (or 20 s).
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = CONNECTIONS as u64 * RATE * SECONDS;
        while frames.load(Ordering::Relaxed) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    let delivered = frames.load(Ordering::Relaxed);
    println!(
        "sse fan-out: published for {:.2} s; {at_end} frames delivered by then, all {delivered} {:.2} s after the start",
        published_in.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "sse fan-out: {CONNECTIONS} connections, {RATE} events/s for {SECONDS} s: {delivered} frames delivered ({:.1}% of {}), CPU {:.2} s in {:.2} s wall ({:.0}% of one core), RSS {} KiB -> {} KiB",
        100.0 * delivered as f64 / (CONNECTIONS as u64 * RATE * SECONDS) as f64,
        CONNECTIONS as u64 * RATE * SECONDS,
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        rss0,
        rss_kib(),
    );
    let _guard = rt.enter();
    c.bench_function("sse_fanout_200/publish", |b| {
        b.iter(|| {
            hub.publish(
                "bench",
                "log",
                black_box(serde_json::json!({ "name": "x" })),
            )
        });
    });
}

fn page_weight(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (_hub, addr) = serve(&rt);
    let paths = [
        "/view/",
        "/assets/app.js",
        "/assets/render.js",
        "/assets/app.css",
        "/favicon.ico",
    ];
    let total: usize = rt.block_on(async {
        let mut total = 0;
        for path in paths {
            let raw = get(&addr, path).await;
            let body = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(0, |i| raw.len() - i - 4);
            println!(
                "page weight: {path}: {body} bytes (+{} of headers)",
                raw.len() - body
            );
            total += raw.len();
        }
        total
    });
    println!(
        "page weight: first load of /view/: {total} bytes in {} requests",
        paths.len()
    );
    c.bench_function("page_weight/get_view", |b| {
        b.iter(|| rt.block_on(get(&addr, "/view/")));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = sse_fanout, page_weight
}
criterion_main!(benches);
