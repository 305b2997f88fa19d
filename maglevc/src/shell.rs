//! The interactive shell: rustyline with history, Tab completion of keywords and live names,
//! and `?` help at the cursor, echoed birdc style without inserting the `?`.
//!
//! Live names (frontends, their pools and members, backends, health checks) are fetched from
//! maglevd before a line is read when the cached ones are older than [`NAMES_TTL`], so
//! completion itself never waits on the network.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use maglev_api::v1::{
    GetVersionRequest, ListBackendsRequest, ListFrontendsRequest, ListHealthChecksRequest,
};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, KeyEvent, RepeatCount,
};

use crate::cli::{self, Cli};
use crate::exec::{Client, Failure};
use crate::render::{CLIENT_VERSION, Reply};
use crate::style::{Theme, Themes};
use crate::tree::{self, Action, Args, NameKind, NameSource};

/// How long fetched names are used before they are fetched again.
pub const NAMES_TTL: Duration = Duration::from_secs(2);

/// The shell's prompt.
pub const PROMPT: &str = "maglevc> ";

/// The live names of one frontend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontendNames {
    /// The frontend's name.
    pub name: String,
    /// Its pools, each with its members.
    pub pools: Vec<(String, Vec<String>)>,
}

/// Names fetched from maglevd, for completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveNames {
    /// Every frontend, with its pools and members.
    pub frontends: Vec<FrontendNames>,
    /// Every backend.
    pub backends: Vec<String>,
    /// Every health check.
    pub healthchecks: Vec<String>,
}

impl LiveNames {
    /// Fetches the names; a failed call leaves its part empty.
    pub async fn fetch(client: &mut Client) -> Self {
        let (mut a, mut b, mut c) = (client.clone(), client.clone(), client.clone());
        let (frontends, backends, checks) = tokio::join!(
            a.list_frontends(ListFrontendsRequest {}),
            b.list_backends(ListBackendsRequest {}),
            c.list_health_checks(ListHealthChecksRequest {}),
        );
        Self {
            frontends: frontends
                .map(|r| {
                    r.into_inner()
                        .frontends
                        .into_iter()
                        .map(|f| FrontendNames {
                            name: f.name,
                            pools: f
                                .pools
                                .into_iter()
                                .map(|p| (p.name, p.backends.into_iter().map(|b| b.name).collect()))
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            backends: backends
                .map(|r| {
                    r.into_inner()
                        .backends
                        .into_iter()
                        .map(|b| b.name)
                        .collect()
                })
                .unwrap_or_default(),
            healthchecks: checks
                .map(|r| {
                    r.into_inner()
                        .healthchecks
                        .into_iter()
                        .map(|h| h.name)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn frontend(&self, name: Option<&str>) -> Option<&FrontendNames> {
        name.and_then(|n| self.frontends.iter().find(|f| f.name == n))
    }
}

impl NameSource for LiveNames {
    fn names(&self, kind: NameKind, context: &Args) -> Vec<String> {
        let frontend = self.frontend(context.frontend.as_deref());
        match kind {
            NameKind::Frontend => self.frontends.iter().map(|f| f.name.clone()).collect(),
            NameKind::HealthCheck => self.healthchecks.clone(),
            NameKind::Pool => frontend
                .map(|f| f.pools.iter().map(|(p, _)| p.clone()).collect())
                .unwrap_or_default(),
            NameKind::Backend => match (frontend, context.pool.as_deref()) {
                (Some(f), Some(pool)) => f
                    .pools
                    .iter()
                    .filter(|(p, _)| p == pool)
                    .flat_map(|(_, members)| members.clone())
                    .collect(),
                (Some(f), None) => f
                    .pools
                    .iter()
                    .flat_map(|(_, members)| members.clone())
                    .collect(),
                (None, _) => self.backends.clone(),
            },
        }
    }
}

/// The rustyline helper: completion over the command tree with the cached live names.
pub struct ShellHelper {
    names: Arc<Mutex<LiveNames>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        let candidates = tree::complete(before, &*names)
            .into_iter()
            .map(|word| Pair {
                display: word.clone(),
                replacement: format!("{word} "),
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {}

impl rustyline::Helper for ShellHelper {}

/// `?`: prints the help at the cursor under the line as typed (with the `?`, as birdc does),
/// then redraws the prompt and the line, without inserting the `?`.
struct QuestionMark {
    theme: Theme,
}

/// Where rustyline has drawn the prompt and the line: rows below the prompt's row of the
/// cursor and of the line's end, on a terminal `cols` wide. The rule is rustyline's: a row
/// holds `cols` columns and a line that fills its last row exactly ends on the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRows {
    /// The cursor's row.
    pub cursor: usize,
    /// The row of the line's end.
    pub end: usize,
}

impl LineRows {
    /// The rows of `PROMPT` + `line` with the cursor at byte `pos`. Every character counts one
    /// column (the command words and names are ASCII); a width of 0 counts as 80.
    #[must_use]
    pub fn of(line: &str, pos: usize, cols: usize) -> Self {
        let cols = if cols == 0 { 80 } else { cols };
        let prompt = PROMPT.chars().count();
        let width = |s: &str| prompt + s.chars().count();
        Self {
            cursor: width(&line[..pos]) / cols,
            end: width(line) / cols,
        }
    }

    /// The text that replaces the drawn line by `echo` and `help`, then leaves the cursor
    /// where rustyline's repaint expects it: the repaint moves down to the old end row and
    /// clears that many rows upwards, so `end` blank rows are made below the help (scrolling
    /// if need be) and the cursor goes back up to the old cursor row among them. The repaint
    /// then draws the prompt on the row just below the help.
    #[must_use]
    pub fn redraw(self, echo: &str, help: &str) -> String {
        let mut text = String::new();
        if self.cursor > 0 {
            text.push_str(&format!("\x1b[{}A", self.cursor));
        }
        text.push_str("\r\x1b[J");
        text.push_str(echo);
        text.push_str("\r\n");
        text.push_str(&help.replace('\n', "\r\n"));
        text.push_str(&"\n".repeat(self.end));
        if self.end > self.cursor {
            text.push_str(&format!("\x1b[{}A", self.end - self.cursor));
        }
        text
    }
}

/// The terminal's width in columns (0 when stdout is not a terminal).
fn terminal_cols() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout()).map_or(0, |w| usize::from(w.ws_col))
}

impl ConditionalEventHandler for QuestionMark {
    fn handle(
        &self,
        _evt: &Event,
        _n: RepeatCount,
        _positive: bool,
        ctx: &EventContext<'_>,
    ) -> Option<Cmd> {
        let line = ctx.line();
        let before = &line[..ctx.pos()];
        let help = match tree::help_at(before) {
            Ok(entries) => tree::format_help(&entries),
            Err(e) => format!(
                "{}\n",
                self.theme
                    .paint(crate::style::Style::Bad, &format!("error: {e}"))
            ),
        };
        // The terminal is in raw mode: the text carries its own carriage returns.
        let rows = LineRows::of(line, ctx.pos(), terminal_cols());
        let text = rows.redraw(&format!("{PROMPT}{before}?"), &help);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        Some(Cmd::Repaint)
    }
}

/// Where the history is kept: `$MAGLEVC_HISTORY`, else `~/.maglevc_history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MAGLEVC_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".maglevc_history"))
}

/// Runs the interactive shell until `quit`, `exit` or Ctrl-D; returns the exit status (3 when
/// maglevd cannot be reached at start).
#[must_use]
pub fn run(cli: &Cli) -> u8 {
    let Themes { out: theme, err } = cli::themes(cli);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    let connected = runtime.block_on(async {
        let mut client = cli::connect(&cli.server).await?;
        let version = client
            .get_version(GetVersionRequest {})
            .await
            .map(|r| r.into_inner().version)
            .unwrap_or_else(|_| "unknown".to_owned());
        let names = LiveNames::fetch(&mut client).await;
        Ok::<_, Failure>((client, version, names))
    });
    let (mut client, server_version, names) = match connected {
        Ok(c) => c,
        Err(failure) => {
            cli::print_failure(&failure, err);
            return failure.exit_code();
        }
    };
    println!(
        "maglevc {CLIENT_VERSION}, maglevd {server_version} at {}",
        cli.server
    );
    println!("Type ? for the choices at the cursor, help for every command, quit to leave.");

    let names = Arc::new(Mutex::new(names));
    let mut fetched = Instant::now();
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(1000)
        .map_or_else(|_| Config::default(), |b| b.build());
    let mut editor: Editor<ShellHelper, FileHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return 1;
        }
    };
    editor.set_helper(Some(ShellHelper {
        names: Arc::clone(&names),
    }));
    editor.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(QuestionMark { theme })),
    );
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    loop {
        if fetched.elapsed() >= NAMES_TTL {
            let fresh = runtime.block_on(LiveNames::fetch(&mut client));
            *names.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
            fetched = Instant::now();
        }
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        let command = match tree::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                cli::print_failure(&Failure::Usage(e), err);
                continue;
            }
        };
        match command.action {
            Action::Quit => break,
            Action::Help => cli::print_reply(&Reply::Help(tree::help_text()), theme, cli.json),
            _ => {
                let result =
                    runtime.block_on(cli::run_command(&mut client, &command, theme, cli.json));
                if let Err(failure) = result {
                    cli::print_failure(&failure, err);
                }
                // A change may have added or removed names.
                fetched = Instant::now().checked_sub(NAMES_TTL).unwrap_or(fetched);
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_rows_follow_rustylines_wrapping() {
        // The prompt is 9 columns wide.
        let cases: &[(&str, usize, usize, LineRows)] = &[
            ("show", 4, 80, LineRows { cursor: 0, end: 0 }),
            // 9 + 21 = 30: a full row ends on the next one.
            (
                "set frontend web pool",
                21,
                30,
                LineRows { cursor: 1, end: 1 },
            ),
            (
                "set frontend web poo",
                20,
                30,
                LineRows { cursor: 0, end: 0 },
            ),
            // The cursor back on the first row of a line of three.
            (&"x".repeat(60), 3, 30, LineRows { cursor: 0, end: 2 }),
            // An unknown width counts as 80.
            (&"x".repeat(71), 71, 0, LineRows { cursor: 1, end: 1 }),
        ];
        for &(line, pos, cols, want) in cases {
            assert_eq!(
                LineRows::of(line, pos, cols),
                want,
                "{line:?} at {pos}, {cols}"
            );
        }
    }

    #[test]
    fn the_redraw_leaves_blank_rows_for_the_repaint_to_clear() {
        let rows = LineRows { cursor: 1, end: 2 };
        assert_eq!(
            rows.redraw("maglevc> x?", "  a  help\n"),
            "\x1b[1A\r\x1b[Jmaglevc> x?\r\n  a  help\r\n\n\n\x1b[1A"
        );
        let one = LineRows { cursor: 0, end: 0 };
        assert_eq!(one.redraw("p?", "h\n"), "\r\x1b[Jp?\r\nh\r\n");
    }
}
