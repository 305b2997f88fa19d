//! Processes and a small HTTP/SSE client for the tests: real maglevds on their embedded demo
//! (each with its in-process simulator) and the real maglevd-frontend binary, all on
//! loopback, on ports the kernel picked.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader as TokioBufReader,
};
use tokio::net::TcpStream;

/// The maglevd binary of this workspace, built once when missing.
pub(crate) fn maglevd_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        // …/target/debug/deps/it-xxxx → …/target/debug
        let debug = exe.parent().and_then(|d| d.parent()).expect("target/debug");
        let bin = debug.join("maglevd");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let target = debug.parent().expect("target dir");
            let status = Command::new(cargo)
                .args(["build", "-p", "maglevd", "--bin", "maglevd", "--target-dir"])
                .arg(target)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building maglevd failed");
        }
        bin
    })
}

/// Extra flags every maglevd gets: listeners this maglevd may have besides gRPC, off.
fn maglevd_extra_flags() -> &'static Vec<String> {
    static FLAGS: OnceLock<Vec<String>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let help = Command::new(maglevd_bin())
            .arg("--help")
            .output()
            .expect("maglevd --help");
        let help = String::from_utf8_lossy(&help.stdout);
        let mut flags = Vec::new();
        if help.contains("--metrics-addr") {
            flags.extend(["--metrics-addr".to_owned(), String::new()]);
        }
        flags
    })
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process with its stdout lines.
pub(crate) struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    what: &'static str,
}

impl Proc {
    fn spawn(what: &'static str, mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines, what }
    }

    pub(crate) fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The first line containing `needle`, waiting for it.
    pub(crate) async fn line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status:?}) before {needle}:\n{}",
                    self.what,
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {needle}:\n{}",
                self.what,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (`-TERM`, `-HUP`).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` while it runs.
    pub(crate) async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A maglevd on its embedded demo.
pub(crate) struct Maglevd {
    pub(crate) proc: Proc,
    pub(crate) addr: String,
}

impl Maglevd {
    /// Starts maglevd's demo with its gRPC API on `127.0.0.1:port`, and waits until it listens.
    pub(crate) async fn start(port: u16) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(maglevd_bin());
        command
            .args([
                "--grpc-addr",
                &addr,
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .args(maglevd_extra_flags())
            .env_remove("MAGLEV_CONFIG")
            .env_remove("MAGLEV_VPP_API_ADDR")
            .env_remove("MAGLEV_GRPC_ADDR")
            .env_remove("MAGLEV_LOG_LEVEL")
            .env_remove("MAGLEV_METRICS_ADDR");
        let mut proc = Proc::spawn("maglevd", command);
        proc.line("grpc-listening").await;
        Self { proc, addr }
    }

    /// A gRPC client of it.
    pub(crate) async fn client(
        &self,
    ) -> maglev_api::v1::maglev_client::MaglevClient<tonic::transport::Channel> {
        maglev_api::client::connect(&self.addr)
            .await
            .expect("connects")
    }
}

/// The maglevd-frontend binary.
pub(crate) struct Frontend {
    pub(crate) proc: Proc,
    /// `127.0.0.1:port` of its HTTP server.
    pub(crate) addr: String,
}

impl Frontend {
    /// Starts it over `servers` with `args` and `env`, on a port the kernel picks.
    pub(crate) async fn start(servers: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_maglevd-frontend"));
        command
            .arg("--server")
            .arg(servers.join(","))
            .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .args(args)
            .env_remove("MAGLEV_FRONTEND_SERVERS")
            .env_remove("MAGLEV_FRONTEND_USER")
            .env_remove("MAGLEV_FRONTEND_PASSWORD")
            .env_remove("MAGLEV_FRONTEND_LISTEN");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut proc = Proc::spawn("maglevd-frontend", command);
        let line = proc.line("frontend-listening").await;
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .unwrap_or_else(|| panic!("no addr in {line}"))
            .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
            .to_owned();
        Self { proc, addr }
    }

    /// `GET path` as JSON, asserting 200.
    pub(crate) async fn json(&self, path: &str) -> serde_json::Value {
        let r = request(&self.addr, "GET", path, &[], "").await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body))
    }

    /// Polls `GET path` until `check` holds (20 s at most); the last document.
    pub(crate) async fn wait_json(
        &self,
        path: &str,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            let doc = self.json(path).await;
            if check(&doc) {
                return doc;
            }
            assert!(Instant::now() < deadline, "{what}: last {path}: {doc:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request with `Connection: close` (5 s at most).
pub(crate) async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = raw.split_once("\r\n\r\n").expect("a response head");
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        let body = if chunked { dechunk(rest) } else { rest.to_owned() };
        Response {
            status,
            head: head.to_owned(),
            body,
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{method} {path}: no answer in 5 s"))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// One SSE frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Frame {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: Option<String>,
    pub(crate) comment: Option<String>,
    pub(crate) retry: Option<String>,
}

impl Frame {
    /// The seq of its id.
    pub(crate) fn seq(&self) -> Option<u64> {
        self.id.as_ref()?.rsplit_once('-')?.1.parse().ok()
    }
}

/// A raw SSE client.
pub(crate) struct Sse {
    reader: TokioBufReader<TcpStream>,
    pending: String,
    pub(crate) head: String,
}

impl Sse {
    /// Opens `/view/api/events`, with `Last-Event-ID` when given.
    pub(crate) async fn open(addr: &str, last_id: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        let mut text = format!(
            "GET /view/api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_id {
            text.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        text.push_str("\r\n");
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut reader = TokioBufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        Self {
            reader,
            pending: String::new(),
            head,
        }
    }

    /// The next frame (10 s at most).
    pub(crate) async fn next(&mut self) -> Frame {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.pending.find("\n\n") {
                    let block: String = self.pending.drain(..end + 2).collect();
                    let mut frame = Frame::default();
                    for line in block.lines().filter(|l| !l.is_empty()) {
                        if let Some(c) = line.strip_prefix(':') {
                            frame.comment = Some(c.trim().to_owned());
                        } else if let Some((k, v)) = line.split_once(':') {
                            let v = v.strip_prefix(' ').unwrap_or(v).to_owned();
                            match k {
                                "id" => frame.id = Some(v),
                                "event" => frame.event = Some(v),
                                "data" => frame.data = Some(v),
                                "retry" => frame.retry = Some(v),
                                _ => {}
                            }
                        }
                    }
                    return frame;
                }
                // One chunk of the chunked body.
                let mut size = String::new();
                let n = self.reader.read_line(&mut size).await.unwrap();
                assert!(n > 0, "the stream ended");
                let Ok(len) = usize::from_str_radix(size.trim(), 16) else {
                    continue;
                };
                let mut chunk = vec![0; len + 2];
                self.reader.read_exact(&mut chunk).await.unwrap();
                chunk.truncate(len);
                self.pending.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an SSE frame within 10 s")
    }

    /// The next frame that is an event (skipping pings and the retry hint).
    pub(crate) async fn next_event(&mut self) -> Frame {
        loop {
            let frame = self.next().await;
            if frame.event.is_some() {
                return frame;
            }
        }
    }
}
