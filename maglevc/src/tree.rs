//! The command tree: one definition of every maglevc command, from which the parser, tab
//! completion, `?` help and `help` are all derived.
//!
//! The tree is data: [`Node`]s with a word (a keyword, or a value slot of some [`ValueKind`]),
//! a one-line help, children and, where a command may end, the [`Action`] it runs. Walking a
//! line through it ([`parse`]) follows these rules:
//!
//! | input word | outcome |
//! |---|---|
//! | equal to a keyword (or one of its aliases) | that keyword, even when it is a prefix of another |
//! | a prefix of exactly one keyword node | that keyword (`sh ba n` is `show backends n`) |
//! | a prefix of several keyword nodes | [`ParseError::Ambiguous`], listing them |
//! | no keyword matches, a value slot is open | the value, checked against its kind |
//! | nothing matches | [`ParseError::Unknown`], saying where it stopped and what was expected |
//!
//! A node marked `options` (as `watch events`) takes its children in any order, each once:
//! once an option's subtree is complete, the next word may start another option.
//!
//! Live names (frontends, backends, pools, health checks) come from a [`NameSource`], so tests
//! give fixed names and the shell gives names fetched from the server.

use std::fmt;
use std::sync::OnceLock;

/// What a value slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A frontend name.
    Frontend,
    /// A backend name.
    Backend,
    /// A pool name (of the frontend given before it).
    Pool,
    /// A health-check name.
    HealthCheck,
    /// A weight, 0-100.
    Weight,
    /// A count of events, 1 or more.
    Count,
    /// A log level.
    Level,
}

/// The log levels `watch events log level <level>` accepts, lowest first.
pub const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// The largest count `watch events num <n>` accepts.
pub const MAX_COUNT: u64 = 1_000_000;

impl ValueKind {
    /// The placeholder shown in help: `<frontend>`, `<0-100>`, ...
    #[must_use]
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Frontend => "<frontend>",
            Self::Backend => "<backend>",
            Self::Pool => "<pool>",
            Self::HealthCheck => "<healthcheck>",
            Self::Weight => "<0-100>",
            Self::Count => "<n>",
            Self::Level => "<level>",
        }
    }

    /// The names a [`NameSource`] is asked for, when the kind is a live name.
    fn name_kind(self) -> Option<NameKind> {
        match self {
            Self::Frontend => Some(NameKind::Frontend),
            Self::Backend => Some(NameKind::Backend),
            Self::Pool => Some(NameKind::Pool),
            Self::HealthCheck => Some(NameKind::HealthCheck),
            Self::Weight | Self::Count | Self::Level => None,
        }
    }
}

/// The kinds of live name a [`NameSource`] supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Frontend names.
    Frontend,
    /// Backend names (of the frontend and pool in the context, when given).
    Backend,
    /// Pool names (of the frontend in the context).
    Pool,
    /// Health-check names.
    HealthCheck,
}

/// Supplies live names for completion.
pub trait NameSource {
    /// The names of `kind`, narrowed by what the line has given so far (the frontend of a pool,
    /// the pool of a backend).
    fn names(&self, kind: NameKind, context: &Args) -> Vec<String>;
}

/// A [`NameSource`] with no names at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl NameSource for NoNames {
    fn names(&self, _kind: NameKind, _context: &Args) -> Vec<String> {
        Vec::new()
    }
}

/// An operator action on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendOp {
    /// Stop health checking; weight 0, flows drain.
    Pause,
    /// Restart health checking of a paused backend.
    Resume,
    /// Re-enable a disabled backend.
    Enable,
    /// Disable: weight 0, flows flushed.
    Disable,
}

/// A hypothetical change `preview` evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewKind {
    /// Effective weight 0.
    Drain,
    /// A new weight (the line's `<0-100>`).
    Weight,
    /// Out of the frontend.
    Remove,
}

/// What a complete command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `show version`.
    ShowVersion,
    /// `show frontends`, or one frontend when a name is given.
    ShowFrontends,
    /// `show backends`, or one backend when a name is given.
    ShowBackends,
    /// `show healthchecks`, or one health check when a name is given.
    ShowHealthChecks,
    /// `show vpp info`.
    ShowVppInfo,
    /// `show vpp lb state`.
    ShowVppLbState,
    /// `show vpp lb counters`.
    ShowVppLbCounters,
    /// `sync vpp lb state [<frontend>] [dry-run]`.
    SyncVppLbState,
    /// `preview frontend <f> backend <b> drain|weight <n>|remove`.
    Preview(PreviewKind),
    /// `set backend <b> pause|resume|enable|disable`.
    SetBackend(BackendOp),
    /// `set frontend <f> pool <p> backend <b> weight <0-100>`.
    SetWeight,
    /// `config check`.
    ConfigCheck,
    /// `config reload`.
    ConfigReload,
    /// `watch events ...`.
    WatchEvents,
    /// `help`.
    Help,
    /// `quit`, `exit`.
    Quit,
}

impl Action {
    /// Whether the command only reads (`show`, `help`, `preview`, dry runs are decided by
    /// the flag): the shell and scripts may repeat it freely.
    #[must_use]
    pub fn needs_server(self) -> bool {
        !matches!(self, Self::Help | Self::Quit)
    }
}

/// A keyword that sets a flag when matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `dry-run`: plan, do not send.
    DryRun,
    /// `log`: include log records in `watch events`.
    Log,
}

/// What a node matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// A fixed keyword, with alternative spellings.
    Key(&'static str, &'static [&'static str]),
    /// A value.
    Value(ValueKind),
}

/// One node of the command tree.
#[derive(Debug, Clone)]
pub struct Node {
    /// What the node matches.
    pub word: Word,
    /// One line of help.
    pub help: &'static str,
    /// What may follow.
    pub children: Vec<Node>,
    /// The command run when the line ends here; `None` where more words are needed.
    pub action: Option<Action>,
    /// A flag set when this keyword is matched.
    pub flag: Option<Flag>,
    /// The children are options: any order, each once.
    pub options: bool,
}

impl Node {
    fn key(word: &'static str, help: &'static str) -> Self {
        Self::alias(word, &[], help)
    }

    fn alias(word: &'static str, aliases: &'static [&'static str], help: &'static str) -> Self {
        Self {
            word: Word::Key(word, aliases),
            help,
            children: Vec::new(),
            action: None,
            flag: None,
            options: false,
        }
    }

    fn value(kind: ValueKind, help: &'static str) -> Self {
        Self {
            word: Word::Value(kind),
            ..Self::key("", help)
        }
    }

    fn run(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    fn flag(mut self, flag: Flag) -> Self {
        self.flag = Some(flag);
        self
    }

    fn with(mut self, children: impl IntoIterator<Item = Node>) -> Self {
        self.children.extend(children);
        self
    }

    fn options(mut self) -> Self {
        self.options = true;
        self
    }

    /// The word as help shows it: the keyword, or the value's placeholder.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self.word {
            Word::Key(word, _) => word,
            Word::Value(kind) => kind.placeholder(),
        }
    }

    fn spellings(&self) -> impl Iterator<Item = &'static str> {
        let (word, aliases): (&'static str, &'static [&'static str]) = match self.word {
            Word::Key(word, aliases) => (word, aliases),
            Word::Value(_) => ("", &[]),
        };
        std::iter::once(word)
            .chain(aliases.iter().copied())
            .filter(|w| !w.is_empty())
    }
}

/// The root of the command tree (built once).
#[must_use]
pub fn root() -> &'static Node {
    static ROOT: OnceLock<Node> = OnceLock::new();
    ROOT.get_or_init(build)
}

fn build() -> Node {
    use Action as A;
    use ValueKind as V;
    let dry_run = || {
        Node::key(
            "dry-run",
            "print the operations a sync would send, send none",
        )
        .flag(Flag::DryRun)
        .run(A::SyncVppLbState)
    };
    let show = Node::key("show", "show state").with([
        Node::key("version", "maglevc's and maglevd's versions").run(A::ShowVersion),
        Node::alias("frontends", &["frontend"], "frontends, or one in detail")
            .run(A::ShowFrontends)
            .with([Node::value(
                V::Frontend,
                "pools, backends, weights and bucket shares of a frontend",
            )
            .run(A::ShowFrontends)]),
        Node::alias("backends", &["backend"], "backends, or one in detail")
            .run(A::ShowBackends)
            .with([
                Node::value(V::Backend, "a backend with its transition history")
                    .run(A::ShowBackends),
            ]),
        Node::alias(
            "healthchecks",
            &["healthcheck"],
            "health checks, or one in detail",
        )
        .run(A::ShowHealthChecks)
        .with([Node::value(V::HealthCheck, "a health check's settings").run(A::ShowHealthChecks)]),
        Node::key("vpp", "VPP as maglevd sees it").with([
            Node::key("info", "VPP's version, pid, boot and connect times").run(A::ShowVppInfo),
            Node::key("lb", "VPP's load-balancer plugin").with([
                Node::key("state", "the VIPs and ASes VPP holds, with bucket shares")
                    .run(A::ShowVppLbState),
                Node::key("counters", "per-VIP packet counters").run(A::ShowVppLbCounters),
            ]),
        ]),
    ]);
    let sync =
        Node::key("sync", "reconcile VPP now").with([Node::key("vpp", "VPP").with([Node::key(
            "lb",
            "VPP's load-balancer plugin",
        )
        .with([Node::key("state", "sync every frontend's VIP with VPP")
            .run(A::SyncVppLbState)
            .with([
                dry_run(),
                Node::value(V::Frontend, "sync only this frontend's VIP")
                    .run(A::SyncVppLbState)
                    .with([dry_run()]),
            ])])])]);
    let preview =
        Node::key("preview", "what a change would do to the new-flow table").with([Node::key(
            "frontend",
            "the frontend",
        )
        .with([Node::value(V::Frontend, "frontend name").with([Node::key(
            "backend",
            "the backend",
        )
        .with([Node::value(V::Backend, "backend name").with([
            Node::key("drain", "its effective weight becomes 0")
                .run(A::Preview(PreviewKind::Drain)),
            Node::key("weight", "a new weight").with([Node::value(
                V::Weight,
                "the buckets that would move with this weight",
            )
            .run(A::Preview(PreviewKind::Weight))]),
            Node::key("remove", "out of the frontend").run(A::Preview(PreviewKind::Remove)),
        ])])])])]);
    let backend_ops = [
        (
            "pause",
            "stop health checking; weight 0, flows drain",
            BackendOp::Pause,
        ),
        ("resume", "restart health checking", BackendOp::Resume),
        ("enable", "re-enable a disabled backend", BackendOp::Enable),
        ("disable", "weight 0, flows flushed", BackendOp::Disable),
    ]
    .map(|(word, help, op)| Node::key(word, help).run(A::SetBackend(op)));
    let set = Node::key("set", "change runtime state").with([
        Node::key("backend", "an operator action on a backend").with([Node::value(
            V::Backend,
            "backend name",
        )
        .with(backend_ops)]),
        Node::key("frontend", "a runtime weight override").with([Node::value(
            V::Frontend,
            "frontend name",
        )
        .with([
            Node::key("pool", "the pool").with([Node::value(V::Pool, "pool name").with([
                Node::key("backend", "the backend").with([Node::value(V::Backend, "backend name")
                    .with([Node::key("weight", "the weight").with([Node::value(
                        V::Weight,
                        "set the runtime weight of the backend in the pool",
                    )
                    .run(A::SetWeight)])])]),
            ])]),
        ])]),
    ]);
    let config = Node::key("config", "maglevd's config file").with([
        Node::key("check", "validate the file on disk, apply nothing").run(A::ConfigCheck),
        Node::key("reload", "reload the file (as SIGHUP)").run(A::ConfigReload),
    ]);
    let watch = Node::key("watch", "stream live events").with([Node::key(
        "events",
        "until n events, a key or Ctrl-C",
    )
    .run(A::WatchEvents)
    .options()
    .with([
        Node::key("num", "stop after n events")
            .with([Node::value(V::Count, "how many events").run(A::WatchEvents)]),
        Node::key("log", "include maglevd's log records")
            .flag(Flag::Log)
            .run(A::WatchEvents)
            .with([
                Node::key("level", "the lowest level shown").with([Node::value(
                    V::Level,
                    "trace, debug, info, warn or error",
                )
                .run(A::WatchEvents)]),
            ]),
        Node::key("backend", "only this backend's events").with([Node::value(
            V::Backend,
            "backend name",
        )
        .run(A::WatchEvents)]),
        Node::key("frontend", "only this frontend's events").with([Node::value(
            V::Frontend,
            "frontend name",
        )
        .run(A::WatchEvents)]),
    ])]);
    Node::key("", "").with([
        show,
        set,
        sync,
        preview,
        config,
        watch,
        Node::key("help", "list every command").run(A::Help),
        Node::key("quit", "leave the shell").run(A::Quit),
        Node::key("exit", "leave the shell").run(A::Quit),
    ])
}

/// The values and flags a line gave, by slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// The `<frontend>` value.
    pub frontend: Option<String>,
    /// The `<backend>` value.
    pub backend: Option<String>,
    /// The `<pool>` value.
    pub pool: Option<String>,
    /// The `<healthcheck>` value.
    pub healthcheck: Option<String>,
    /// The `<0-100>` value.
    pub weight: Option<u32>,
    /// The `<n>` value.
    pub count: Option<u64>,
    /// The `<level>` value, an index into [`LEVELS`].
    pub level: Option<usize>,
    /// `dry-run` was given.
    pub dry_run: bool,
    /// `log` was given.
    pub log: bool,
}

impl Args {
    fn set_flag(&mut self, flag: Flag) {
        match flag {
            Flag::DryRun => self.dry_run = true,
            Flag::Log => self.log = true,
        }
    }

    fn set_value(&mut self, kind: ValueKind, word: &str) -> Result<(), String> {
        match kind {
            ValueKind::Frontend => self.frontend = Some(word.to_owned()),
            ValueKind::Backend => self.backend = Some(word.to_owned()),
            ValueKind::Pool => self.pool = Some(word.to_owned()),
            ValueKind::HealthCheck => self.healthcheck = Some(word.to_owned()),
            ValueKind::Weight => match word.parse::<u32>() {
                Ok(w) if w <= 100 => self.weight = Some(w),
                _ => return Err("a weight is a whole number from 0 to 100".to_owned()),
            },
            ValueKind::Count => match word.parse::<u64>() {
                Ok(n) if (1..=MAX_COUNT).contains(&n) => self.count = Some(n),
                _ => return Err(format!("a count is a whole number from 1 to {MAX_COUNT}")),
            },
            ValueKind::Level => {
                let matches: Vec<usize> = (0..LEVELS.len())
                    .filter(|&i| LEVELS[i].starts_with(word))
                    .collect();
                match matches.as_slice() {
                    [i] => self.level = Some(*i),
                    _ => return Err(format!("a level is one of {}", LEVELS.join(", "))),
                }
            }
        }
        Ok(())
    }
}

/// A parsed command: what to run, with which values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What to run.
    pub action: Action,
    /// The values and flags given.
    pub args: Args,
}

/// Why a line is not a command. Every variant says where the walk stopped: `after` is the
/// words accepted before it (empty at the start of the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The line is empty.
    Empty,
    /// A word matches nothing at its position.
    Unknown {
        /// The words accepted before it.
        after: String,
        /// The word.
        word: String,
        /// What was expected there.
        expected: Vec<&'static str>,
    },
    /// A word is a prefix of several keywords.
    Ambiguous {
        /// The words accepted before it.
        after: String,
        /// The word.
        word: String,
        /// The keywords it could be.
        candidates: Vec<&'static str>,
    },
    /// A value of the wrong form (a weight over 100, a count of 0, ...).
    BadValue {
        /// The words accepted before it.
        after: String,
        /// The word.
        word: String,
        /// What a value there must be.
        reason: String,
    },
    /// The line ends before the command is complete.
    Incomplete {
        /// The words accepted.
        after: String,
        /// What may come next.
        expected: Vec<&'static str>,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = |after: &str| {
            if after.is_empty() {
                "at the start".to_owned()
            } else {
                format!("after \"{after}\"")
            }
        };
        match self {
            Self::Empty => write!(f, "empty command (try \"help\")"),
            Self::Unknown {
                after,
                word,
                expected,
            } if expected.is_empty() => write!(
                f,
                "unknown word \"{word}\" {}: the command ends there",
                place(after)
            ),
            Self::Unknown {
                after,
                word,
                expected,
            } => write!(
                f,
                "unknown word \"{word}\" {}; expected {}",
                place(after),
                expected.join(", ")
            ),
            Self::Ambiguous {
                after,
                word,
                candidates,
            } => write!(
                f,
                "ambiguous word \"{word}\" {}: could be {}",
                place(after),
                candidates.join(", ")
            ),
            Self::BadValue {
                after,
                word,
                reason,
            } => write!(f, "bad value \"{word}\" {}: {reason}", place(after)),
            Self::Incomplete { after, expected } => write!(
                f,
                "incomplete command \"{after}\"; expected {}",
                expected.join(", ")
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// A position in the tree while walking a line.
struct Walk<'t> {
    node: &'t Node,
    /// The innermost options node whose subtree the walk is in, with the options used.
    anchor: Option<(&'t Node, Vec<usize>)>,
    args: Args,
    accepted: Vec<String>,
}

/// One choice at a position: a child of the current node, or an unused option of the anchor.
struct Choice<'t> {
    node: &'t Node,
    /// The index among the anchor's children, when it is an option of the anchor.
    option: Option<usize>,
}

impl<'t> Walk<'t> {
    fn new(root: &'t Node) -> Self {
        Self {
            node: root,
            anchor: None,
            args: Args::default(),
            accepted: Vec::new(),
        }
    }

    fn after(&self) -> String {
        self.accepted.join(" ")
    }

    /// What may come next, children first.
    fn choices(&self) -> Vec<Choice<'t>> {
        let mut out: Vec<Choice<'t>> = self
            .node
            .children
            .iter()
            .enumerate()
            .map(|(i, node)| Choice {
                node,
                option: self.node.options.then_some(i),
            })
            .collect();
        if let Some((anchor, used)) = &self.anchor
            && !std::ptr::eq(*anchor, self.node)
            && self.node.action.is_some()
        {
            out.extend(
                anchor
                    .children
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !used.contains(i))
                    .map(|(i, node)| Choice {
                        node,
                        option: Some(i),
                    }),
            );
        }
        if self.node.options {
            let used = self.used();
            out.retain(|c| c.option.is_none_or(|i| !used.contains(&i)));
        }
        out
    }

    fn used(&self) -> Vec<usize> {
        match &self.anchor {
            Some((anchor, used)) if std::ptr::eq(*anchor, self.node) => used.clone(),
            _ => Vec::new(),
        }
    }

    /// Accepts one word, or says why not.
    fn step(&mut self, word: &str) -> Result<(), ParseError> {
        let choices = self.choices();
        let exact: Vec<&Choice<'t>> = choices
            .iter()
            .filter(|c| c.node.spellings().any(|s| s == word))
            .collect();
        let prefixed: Vec<&Choice<'t>> = choices
            .iter()
            .filter(|c| c.node.spellings().any(|s| s.starts_with(word)))
            .collect();
        let chosen = match (exact.as_slice(), prefixed.as_slice()) {
            ([one], _) | ([], [one]) => *one,
            ([], []) => {
                let Some(value) = choices
                    .iter()
                    .find(|c| matches!(c.node.word, Word::Value(_)))
                else {
                    return Err(ParseError::Unknown {
                        after: self.after(),
                        word: word.to_owned(),
                        expected: choices.iter().map(|c| c.node.label()).collect(),
                    });
                };
                value
            }
            (_, many) => {
                return Err(ParseError::Ambiguous {
                    after: self.after(),
                    word: word.to_owned(),
                    candidates: many.iter().map(|c| c.node.label()).collect(),
                });
            }
        };
        let (node, option) = (chosen.node, chosen.option);
        match node.word {
            Word::Value(kind) => {
                self.args
                    .set_value(kind, word)
                    .map_err(|reason| ParseError::BadValue {
                        after: self.after(),
                        word: word.to_owned(),
                        reason,
                    })?;
            }
            Word::Key(..) => {
                if let Some(flag) = node.flag {
                    self.args.set_flag(flag);
                }
            }
        }
        if let Some(i) = option {
            // An option starts: it counts against the anchor the walk is in.
            if let Some((_, used)) = &mut self.anchor {
                used.push(i);
            }
        }
        if node.options {
            self.anchor = Some((node, Vec::new()));
        }
        self.node = node;
        self.accepted.push(word.to_owned());
        Ok(())
    }

    fn finish(self) -> Result<Command, ParseError> {
        match self.node.action {
            Some(action) => Ok(Command {
                action,
                args: self.args,
            }),
            None => Err(ParseError::Incomplete {
                after: self.after(),
                expected: self.choices().iter().map(|c| c.node.label()).collect(),
            }),
        }
    }
}

/// Splits a line into words on whitespace.
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split_whitespace()
}

/// Parses a line (or one-shot arguments joined by spaces) into a [`Command`].
///
/// # Errors
/// A [`ParseError`] saying where the walk stopped and why.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    parse_words(words(line))
}

/// Parses words into a [`Command`].
///
/// # Errors
/// As [`parse`].
pub fn parse_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Command, ParseError> {
    let mut walk = Walk::new(root());
    let mut any = false;
    for word in words {
        any = true;
        walk.step(word)?;
    }
    if !any {
        return Err(ParseError::Empty);
    }
    walk.finish()
}

/// Walks the complete words of `line` (all but a last word not followed by whitespace), and
/// returns the walk and that partial last word.
fn walk_to_end(line: &str) -> Result<(Walk<'static>, &str), ParseError> {
    let (complete, partial) = match line.rfind(char::is_whitespace) {
        _ if line.ends_with(char::is_whitespace) => (line, ""),
        Some(i) => (&line[..i], &line[i + 1..]),
        None => ("", line),
    };
    let mut walk = Walk::new(root());
    for word in words(complete) {
        walk.step(word)?;
    }
    Ok((walk, partial))
}

/// The completions of the word at the end of `line` (the text before the cursor): keywords and
/// live names that start with it, sorted, each once. Empty when the line before it does not
/// parse, or when only a number fits.
#[must_use]
pub fn complete(line: &str, names: &dyn NameSource) -> Vec<String> {
    let Ok((walk, partial)) = walk_to_end(line) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for choice in walk.choices() {
        match choice.node.word {
            Word::Key(..) => out.extend(
                choice
                    .node
                    .spellings()
                    .filter(|s| s.starts_with(partial))
                    .map(str::to_owned),
            ),
            Word::Value(ValueKind::Level) => out.extend(
                LEVELS
                    .iter()
                    .filter(|l| l.starts_with(partial))
                    .map(|l| (*l).to_owned()),
            ),
            Word::Value(kind) => {
                if let Some(name_kind) = kind.name_kind() {
                    out.extend(
                        names
                            .names(name_kind, &walk.args)
                            .into_iter()
                            .filter(|n| n.starts_with(partial)),
                    );
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// One entry of `?` help: what may come at the cursor, with its one-line help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpEntry {
    /// The keyword, the value placeholder, or `<cr>` where the command may end.
    pub word: &'static str,
    /// Its help.
    pub help: &'static str,
}

/// The `?` help at the end of `line` (the text before the cursor): the keywords and value
/// slots that fit the partial last word (all of them after a space), and `<cr>` where the
/// command is complete.
///
/// # Errors
/// A [`ParseError`] when the words before the cursor do not parse.
pub fn help_at(line: &str) -> Result<Vec<HelpEntry>, ParseError> {
    let (walk, partial) = walk_to_end(line)?;
    let mut out: Vec<HelpEntry> = walk
        .choices()
        .iter()
        .filter(|c| match c.node.word {
            Word::Key(..) => c.node.spellings().any(|s| s.starts_with(partial)),
            Word::Value(_) => true,
        })
        .map(|c| HelpEntry {
            word: c.node.label(),
            help: c.node.help,
        })
        .collect();
    if partial.is_empty() && walk.node.action.is_some() && !std::ptr::eq(walk.node, root()) {
        out.push(HelpEntry {
            word: "<cr>",
            help: "run the command",
        });
    }
    Ok(out)
}

/// Renders `?` help entries, one per line, words aligned.
#[must_use]
pub fn format_help(entries: &[HelpEntry]) -> String {
    let width = entries.iter().map(|e| e.word.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("  {:<width$}  {}\n", e.word, e.help));
    }
    out
}

/// Every command as a synopsis with its help, in tree order: one line per node that can end
/// a command, and one line for an options node with its options in brackets.
#[must_use]
pub fn synopsis() -> Vec<(String, &'static str)> {
    fn inline(node: &Node) -> String {
        let mut s = node.label().to_owned();
        match node.children.as_slice() {
            [] => {}
            [child] if node.action.is_some() => s.push_str(&format!(" [{}]", inline(child))),
            [child] => s.push_str(&format!(" {}", inline(child))),
            many => {
                let alts: Vec<String> = many.iter().map(inline).collect();
                s.push_str(&format!(" {}", alts.join("|")));
            }
        }
        s
    }
    fn visit(node: &Node, path: &mut Vec<&'static str>, out: &mut Vec<(String, &'static str)>) {
        if node.options {
            let opts: Vec<String> = node
                .children
                .iter()
                .map(|c| format!("[{}]", inline(c)))
                .collect();
            out.push((format!("{} {}", path.join(" "), opts.join(" ")), node.help));
            return;
        }
        if node.action.is_some() && !path.is_empty() {
            out.push((path.join(" "), node.help));
        }
        for child in &node.children {
            path.push(child.label());
            visit(child, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    visit(root(), &mut Vec::new(), &mut out);
    out
}

/// The text of `help`: every command with its help, aligned.
#[must_use]
pub fn help_text() -> String {
    const MAX_WIDTH: usize = 52;
    let lines = synopsis();
    let width = lines
        .iter()
        .map(|(s, _)| s.len())
        .filter(|&w| w <= MAX_WIDTH)
        .max()
        .unwrap_or(0);
    let mut out = String::from(
        "Commands (a keyword may be shortened to a unique prefix; ? shows what fits there):\n",
    );
    for (syn, help) in &lines {
        if syn.len() > width {
            out.push_str(&format!("  {syn}\n  {:width$}  {help}\n", ""));
        } else {
            out.push_str(&format!("  {syn:<width$}  {help}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
