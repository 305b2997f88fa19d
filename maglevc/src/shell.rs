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
use crate::style::Theme;
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

impl ConditionalEventHandler for QuestionMark {
    fn handle(
        &self,
        _evt: &Event,
        _n: RepeatCount,
        _positive: bool,
        ctx: &EventContext<'_>,
    ) -> Option<Cmd> {
        let before = &ctx.line()[..ctx.pos()];
        let help = match tree::help_at(before) {
            Ok(entries) => tree::format_help(&entries),
            Err(e) => format!(
                "{}\n",
                self.theme
                    .paint(crate::style::Style::Bad, &format!("error: {e}"))
            ),
        };
        // The terminal is in raw mode: lines end with \r\n. The echo replaces the line on
        // screen by the text before the cursor and the `?`.
        let mut text = format!("\r\x1b[K{PROMPT}{before}?\r\n");
        text.push_str(&help.replace('\n', "\r\n"));
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
    let theme = cli::theme(cli);
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
            cli::print_failure(&failure, theme);
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
                cli::print_failure(&Failure::Usage(e), theme);
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
                    cli::print_failure(&failure, theme);
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
