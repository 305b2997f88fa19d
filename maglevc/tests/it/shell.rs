//! The interactive shell through a pseudo-terminal, typed at as a person would: Tab
//! completion of keywords and live names, `?`, history, errors, `watch events` stopped by a
//! key and by Ctrl-C, Ctrl-C at the prompt, and Ctrl-D.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use crate::fake;
use crate::support::maglevc;

/// How long an expected text may take to appear.
const WAIT: Duration = Duration::from_secs(15);

/// maglevc running on the slave side of a pseudo-terminal.
struct Pty {
    child: Child,
    master: File,
    output: Arc<Mutex<Vec<u8>>>,
    /// How much of the output (without escape sequences) earlier expectations consumed.
    seen: usize,
}

impl Pty {
    fn spawn(addr: SocketAddr, history: &Path) -> Self {
        Self::spawn_sized(addr, history, 40, 160)
    }

    fn spawn_sized(addr: SocketAddr, history: &Path, rows: u16, cols: u16) -> Self {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        tcsetwinsize(
            &master,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("window size");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = File::options()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .expect("open the slave");
        let child = maglevc()
            .args(["--server", &addr.to_string()])
            .env("TERM", "xterm")
            .env("MAGLEVC_HISTORY", history)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("maglevc starts");
        let master = File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with an error (EIO) once the child has closed the slave.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            master,
            output,
            seen: 0,
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits until `needle` appears after what was consumed; returns the text up to and
    /// including it, and consumes it.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let out = self.output.lock().unwrap();
                // Offsets count in the output without escape sequences, so colours and
                // cursor moves never split a needle.
                let all = strip_escapes(&String::from_utf8_lossy(&out));
                let text = all.get(self.seen..).unwrap_or_default();
                if let Some(i) = text.find(needle) {
                    let end = i + needle.len();
                    self.seen += end;
                    return text[..end].to_owned();
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {needle:?}; the screen got:\n{text}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the output has not changed for a while; all of it, raw.
    fn settle(&self) -> Vec<u8> {
        let mut last = self.output.lock().unwrap().len();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let out = self.output.lock().unwrap();
            if out.len() == last {
                return out.clone();
            }
            last = out.len();
        }
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "maglevc did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PROMPT: &str = "maglevc> ";

/// The text without terminal escape sequences (colours, cursor moves, modes).
fn strip_escapes(text: &str) -> String {
    let re = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    re.replace_all(text, "").into_owned()
}

#[test]
fn the_shell_completes_helps_remembers_watches_and_leaves() {
    let addr = fake::start();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut pty = Pty::spawn(addr, &history);

    let banner = pty.expect(PROMPT);
    assert!(
        banner.contains(&format!(
            "maglevc {}, maglevd {} at {addr}",
            env!("CARGO_PKG_VERSION"),
            fake::VERSION
        )),
        "{banner}"
    );

    // Tab completes a unique keyword, then the common part of two, then a live name.
    pty.send("sh\t");
    pty.expect("show ");
    pty.send("fr\t");
    pty.expect("frontend");
    pty.send("s w\t");
    pty.expect("web ");
    pty.send("\r");
    let out = pty.expect(PROMPT);
    assert!(out.contains("pool primary (active)"), "{out}");
    assert!(out.contains("nginx0"), "{out}");

    // ? echoes the line with the ?, lists the choices, and does not insert the ?.
    pty.send("sh ba ?");
    let help = pty.expect("run the command");
    assert!(help.contains(&format!("{PROMPT}sh ba ?")), "{help}");
    assert!(
        help.contains("<backend>  a backend with its transition history"),
        "{help}"
    );
    // The prompt and the line are drawn again, without the ?.
    let redraw = pty.expect(&format!("{PROMPT}sh ba "));
    assert!(!redraw.contains('?'), "{redraw}");
    pty.send("nginx2\r");
    let out = pty.expect(PROMPT);
    assert!(out.contains("address:"), "{out}");
    assert!(out.contains("10.0.0.3"), "{out}");
    // ? at the start lists the top-level commands.
    pty.send("?");
    let help = pty.expect("leave the shell");
    assert!(help.contains("preview  what a change would do"), "{help}");
    pty.expect(PROMPT);

    // Errors read as in one-shot mode.
    pty.send("\x15show bogus\r");
    let out = pty.expect(PROMPT);
    assert!(
        out.contains("error: unknown word \"bogus\" after \"show\"; expected version"),
        "{out}"
    );

    // History: Up twice recalls the command before the error.
    pty.send("\x1b[A\x1b[A");
    pty.expect(&format!("{PROMPT}sh ba nginx2"));
    pty.send("\r");
    pty.expect("10.0.0.3");
    pty.expect(PROMPT);

    // watch events runs until a key, then the prompt is back.
    pty.send("watch events\r");
    pty.expect("nginx2 up -> up - (current)");
    pty.send("q");
    pty.expect(PROMPT);
    // ... and until Ctrl-C, which does not end the shell.
    pty.send("watch events backend nginx0\r");
    pty.expect("nginx0 up -> up - (current)");
    pty.send("\x03");
    pty.expect(PROMPT);
    // The key that stopped the watch was not left for the line editor: the next command runs
    // as typed.
    pty.send("show version\r");
    let out = pty.expect(PROMPT);
    assert!(out.contains(fake::VERSION), "{out}");

    // Ctrl-C at the prompt drops the line and keeps the shell.
    pty.send("show fr\x03");
    pty.expect(PROMPT);
    pty.send("sh he\r");
    pty.expect("HEALTHCHECK");
    pty.expect(PROMPT);

    // Ctrl-D leaves with status 0 and saves the history.
    pty.send("\x04");
    assert_eq!(pty.wait_exit(), 0);
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("sh ba nginx2"), "{saved}");
    assert!(saved.contains("watch events backend nginx0"), "{saved}");
}

#[test]
fn quit_and_exit_leave_the_shell() {
    let addr = fake::start();
    let dir = tempfile::tempdir().unwrap();
    for word in ["quit", "exit", "q"] {
        let mut pty = Pty::spawn(addr, &dir.path().join("history"));
        pty.expect(PROMPT);
        pty.send(&format!("{word}\r"));
        assert_eq!(pty.wait_exit(), 0, "{word}");
    }
}

/// A terminal screen as much as the line editor drives one: printable text with xterm's
/// deferred autowrap, CR, LF with scrolling, cursor up/down/forward/back/column, erase to the
/// end of the line and of the screen; other sequences (modes, colours) change nothing shown.
struct Screen {
    rows: usize,
    cols: usize,
    cells: Vec<Vec<char>>,
    /// Whether a row continues the one above it (reached by autowrap).
    wrapped: Vec<bool>,
    row: usize,
    col: usize,
}

impl Screen {
    fn new(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            cells: vec![vec![' '; cols]; rows],
            wrapped: vec![false; rows],
            row: 0,
            col: 0,
        }
    }

    fn line_feed(&mut self) {
        if self.row + 1 == self.rows {
            self.cells.remove(0);
            self.cells.push(vec![' '; self.cols]);
            self.wrapped.remove(0);
            self.wrapped.push(false);
        } else {
            self.row += 1;
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => self.col = 0,
                '\n' => self.line_feed(),
                '\x08' => self.col = self.col.saturating_sub(1).min(self.cols - 1),
                '\x1b' => {
                    if chars.peek() != Some(&'[') {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    let mut params = String::new();
                    let mut fin = ' ';
                    for p in chars.by_ref() {
                        if p.is_ascii_digit() || p == ';' || p == '?' {
                            params.push(p);
                        } else {
                            fin = p;
                            break;
                        }
                    }
                    let n = params.parse::<usize>().unwrap_or(1).max(1);
                    let col = self.col.min(self.cols - 1);
                    match fin {
                        'A' => self.row = self.row.saturating_sub(n),
                        'B' => self.row = (self.row + n).min(self.rows - 1),
                        'C' => self.col = (col + n).min(self.cols - 1),
                        'D' => self.col = col.saturating_sub(n),
                        'G' => self.col = (n - 1).min(self.cols - 1),
                        'K' => self.cells[self.row][col..].fill(' '),
                        'J' => {
                            self.cells[self.row][col..].fill(' ');
                            for r in self.row + 1..self.rows {
                                self.cells[r].fill(' ');
                                self.wrapped[r] = false;
                            }
                        }
                        _ => {}
                    }
                }
                c if c >= ' ' => {
                    if self.col >= self.cols {
                        self.col = 0;
                        self.line_feed();
                        self.wrapped[self.row] = true;
                    }
                    self.cells[self.row][self.col] = c;
                    self.col += 1;
                }
                _ => {}
            }
        }
    }

    /// The lines shown, wrapped rows joined, trailing blanks and blank lines dropped.
    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for (r, row) in self.cells.iter().enumerate() {
            let text: String = row.iter().collect();
            match lines.last_mut() {
                Some(last) if self.wrapped[r] => last.push_str(&text),
                _ => lines.push(text),
            }
        }
        let mut lines: Vec<String> = lines.iter().map(|l| l.trim_end().to_owned()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }
}

#[test]
fn question_mark_redraws_a_line_that_takes_several_rows() {
    let addr = fake::start();
    let dir = tempfile::tempdir().unwrap();
    let (rows, cols) = (16, 30);
    let mut pty = Pty::spawn_sized(addr, &dir.path().join("history"), rows, cols);
    pty.expect(PROMPT);
    // A screenful of output first, so that what follows scrolls.
    pty.send("?");
    pty.expect("leave the shell");
    pty.expect(PROMPT);

    // The cursor at the end of a line of two rows.
    let line = "set frontend web pool primary ";
    pty.send(line);
    pty.expect("primary");
    pty.send("?");
    let want_help = maglevc::tree::format_help(&maglevc::tree::help_at(line).unwrap());
    let mut screen = Screen::new(usize::from(rows), usize::from(cols));
    screen.feed(&pty.settle());
    let shown = screen.lines();
    let mut want: Vec<String> = vec![format!("{PROMPT}{line}?")];
    want.extend(want_help.lines().map(|l| l.trim_end().to_owned()));
    want.push(format!("{PROMPT}{line}").trim_end().to_owned());
    assert!(
        shown.ends_with(&want),
        "the screen ends:\n{}\nwanted it to end:\n{}",
        shown.join("\n"),
        want.join("\n")
    );
    // The line as it was before the ? is not left above the echo.
    let before_echo = &shown[..shown.len() - want.len()];
    assert!(
        !before_echo.iter().any(|l| l.contains("primary")),
        "{}",
        shown.join("\n")
    );

    // The cursor in the middle of a line of two rows: the help is the one at the cursor and
    // the whole line comes back, the cursor where it was (typing goes in there).
    pty.send("backend nginx0");
    pty.send(&"\x1b[D".repeat("nginx0".len()));
    pty.send("?");
    let at = format!("{line}backend ");
    let want_help = maglevc::tree::format_help(&maglevc::tree::help_at(&at).unwrap());
    let mut screen = Screen::new(usize::from(rows), usize::from(cols));
    screen.feed(&pty.settle());
    let shown = screen.lines();
    let mut want: Vec<String> = vec![format!("{PROMPT}{at}?")];
    want.extend(want_help.lines().map(|l| l.trim_end().to_owned()));
    want.push(format!("{PROMPT}{line}backend nginx0"));
    assert!(
        shown.ends_with(&want),
        "the screen ends:\n{}\nwanted it to end:\n{}",
        shown.join("\n"),
        want.join("\n")
    );
    pty.send("x");
    let mut screen = Screen::new(usize::from(rows), usize::from(cols));
    screen.feed(&pty.settle());
    let typed = format!("{PROMPT}{line}backend xnginx0");
    assert_eq!(
        screen.lines().last(),
        Some(&typed),
        "{}",
        screen.lines().join("\n")
    );
}
