//! Text building blocks: colour that never breaks alignment, aligned tables, key-value blocks
//! and human durations.
//!
//! A cell is padded to its column's width first and coloured after, so the ANSI codes never
//! count towards a width. Colour is a [`Theme`] decision made once, from the terminal and
//! `NO_COLOR`, by the binary ([`Theme::detect`]); rendering itself is pure.

use std::fmt::Write as _;
use std::time::Duration;

/// The colour classes maglevc uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Column headers and field labels.
    Label,
    /// Healthy: up, ok.
    Good,
    /// Failed: down, errors.
    Bad,
    /// Neither: unknown, paused, standby.
    Warn,
    /// Operator-disabled, removed, secondary text.
    Dim,
    /// Names of things.
    Name,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Self::Label => "\x1b[34m",
            Self::Good => "\x1b[32m",
            Self::Bad => "\x1b[31m",
            Self::Warn => "\x1b[33m",
            Self::Dim => "\x1b[2m",
            Self::Name => "\x1b[1m",
        }
    }
}

/// Whether output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Theme {
    /// Emit ANSI colour codes.
    pub color: bool,
}

/// The `--color` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always colour, unless `NO_COLOR` is set.
    Always,
    /// Never colour.
    Never,
}

impl Theme {
    /// Plain text.
    pub const PLAIN: Self = Self { color: false };

    /// Decides from the choice, whether the stream written to is a terminal, and `NO_COLOR`
    /// (set and not empty: never colour, whatever the choice).
    #[must_use]
    pub fn detect(choice: ColorChoice, is_terminal: bool, no_color: Option<&str>) -> Self {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        let color = !no_color
            && match choice {
                ColorChoice::Auto => is_terminal,
                ColorChoice::Always => true,
                ColorChoice::Never => false,
            };
        Self { color }
    }

    /// `text` in `style` (unchanged without colour).
    #[must_use]
    pub fn paint(self, style: Style, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("{}{text}\x1b[0m", style.code())
        } else {
            text.to_owned()
        }
    }
}

/// An output stream of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Replies.
    Stdout,
    /// Errors.
    Stderr,
}

/// The themes of the two streams: replies on stdout, errors on stderr, each coloured (under
/// `auto`) only when its own stream is a terminal, so `maglevc ... 2>err.log` keeps escape
/// codes out of the log while the reply on the terminal stays coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Themes {
    /// For replies (stdout), and the shell's `?` help, which goes to the terminal with them.
    pub out: Theme,
    /// For error messages (stderr).
    pub err: Theme,
}

impl Themes {
    /// Plain text on both streams.
    pub const PLAIN: Self = Self {
        out: Theme::PLAIN,
        err: Theme::PLAIN,
    };

    /// Decides each stream's theme with [`Theme::detect`], asking `is_terminal` about that
    /// stream.
    #[must_use]
    pub fn detect(
        choice: ColorChoice,
        no_color: Option<&str>,
        is_terminal: impl Fn(Stream) -> bool,
    ) -> Self {
        Self {
            out: Theme::detect(choice, is_terminal(Stream::Stdout), no_color),
            err: Theme::detect(choice, is_terminal(Stream::Stderr), no_color),
        }
    }
}

/// One table cell: its text and an optional style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The text, without escape codes.
    pub text: String,
    /// Its colour.
    pub style: Option<Style>,
}

impl Cell {
    /// A plain cell.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            style: None,
        }
    }

    /// A styled cell.
    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style: Some(style),
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::plain(text)
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::plain(text)
    }
}

/// An aligned table: a header row and rows of cells, columns two spaces apart, each as wide
/// as its widest cell (counted in characters), the last column unpadded.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
    indent: usize,
}

impl Table {
    /// A table with these column headers.
    #[must_use]
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// Indents every line by `n` spaces.
    #[must_use]
    pub fn indent(mut self, n: usize) -> Self {
        self.indent = n;
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table.
    #[must_use]
    pub fn render(&self, theme: Theme) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .header
            .iter()
            .map(|h| Cell::styled(*h, Style::Label))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = " ".repeat(self.indent);
            for (i, cell) in row.iter().enumerate().take(columns) {
                let last = i + 1 == columns.min(row.len());
                let pad = if last {
                    0
                } else {
                    widths[i] - cell.text.chars().count()
                };
                let text = match cell.style {
                    Some(style) => theme.paint(style, &cell.text),
                    None => cell.text.clone(),
                };
                line.push_str(&text);
                if !last {
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A block of `label: value` lines with the values aligned.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    rows: Vec<(&'static str, Cell)>,
}

impl Fields {
    /// An empty block.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line.
    pub fn add(&mut self, label: &'static str, value: impl Into<Cell>) -> &mut Self {
        self.rows.push((label, value.into()));
        self
    }

    /// Renders the block.
    #[must_use]
    pub fn render(&self, theme: Theme) -> String {
        let width = self
            .rows
            .iter()
            .map(|(l, _)| l.chars().count() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (label, value) in &self.rows {
            let label = format!("{label}:");
            let pad = width - label.chars().count();
            let value = match value.style {
                Some(style) => theme.paint(style, &value.text),
                None => value.text.clone(),
            };
            let _ = writeln!(
                out,
                "{}{}  {value}",
                theme.paint(Style::Label, &label),
                " ".repeat(pad)
            );
        }
        out
    }
}

/// A duration for humans, in its two largest units: "now" under a second, "45s", "3m20s",
/// "1h12m", "2d3h".
#[must_use]
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        _ if s == 0 => "now".to_owned(),
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) if seconds == 0 => format!("{minutes}m"),
        (0, 0, _) => format!("{minutes}m{seconds}s"),
        (0, _, 0) => format!("{hours}h"),
        (0, _, _) => format!("{hours}h{minutes}m"),
        (_, 0, _) => format!("{days}d"),
        _ => format!("{days}d{hours}h"),
    }
}

/// The age of a unix-nanosecond time at `now` (also unix nanoseconds), for humans: "never"
/// for 0, "now" for a time in the future (clock skew).
#[must_use]
pub fn age(at_unix_nanos: i64, now_unix_nanos: i64) -> String {
    if at_unix_nanos == 0 {
        return "never".to_owned();
    }
    let nanos = now_unix_nanos.saturating_sub(at_unix_nanos).max(0);
    human_duration(Duration::from_nanos(nanos.unsigned_abs()))
}

/// A duration given in milliseconds, as the config writes them: "500ms", "2s", "1m30s".
#[must_use]
pub fn millis(ms: u64) -> String {
    if ms == 0 || !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// A unix-nanosecond time as a UTC timestamp, `2026-12-03 17:59:04Z`; "-" for 0.
#[must_use]
pub fn timestamp(unix_nanos: i64) -> String {
    if unix_nanos == 0 {
        return "-".to_owned();
    }
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix_nanos.div_euclid(1_000_000_000))
    else {
        return "-".to_owned();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_humans_say_them() {
        let cases: &[(u64, &str)] = &[
            (0, "now"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m"),
            (200, "3m20s"),
            (3_600, "1h"),
            (4_320, "1h12m"),
            (4_321, "1h12m"),
            (86_400, "1d"),
            (86_400 + 120, "1d"),
            (3 * 86_400 + 7_200, "3d2h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}");
        }
        assert_eq!(human_duration(Duration::from_millis(999)), "now");
    }

    #[test]
    fn ages_handle_never_and_the_future() {
        let now = 1_000 * 1_000_000_000;
        assert_eq!(age(0, now), "never");
        assert_eq!(age(now + 5_000_000_000, now), "now");
        assert_eq!(age(now - 4_320 * 1_000_000_000, now), "1h12m");
    }

    #[test]
    fn millis_read_as_the_config_writes_them() {
        let cases: &[(u64, &str)] = &[
            (0, "0ms"),
            (250, "250ms"),
            (1_500, "1500ms"),
            (2_000, "2s"),
            (60_000, "1m"),
            (90_000, "1m30s"),
        ];
        for (ms, want) in cases {
            assert_eq!(millis(*ms), *want);
        }
    }

    #[test]
    fn timestamps_are_utc_civil_dates() {
        assert_eq!(timestamp(0), "-");
        assert_eq!(timestamp(1), "1970-01-01 00:00:00Z");
        // 2026-12-04 17:59:04 UTC.
        assert_eq!(
            timestamp(1_796_407_144 * 1_000_000_000),
            "2026-12-04 17:59:04Z"
        );
        // A leap day.
        assert_eq!(
            timestamp(951_782_400 * 1_000_000_000),
            "2000-02-29 00:00:00Z"
        );
    }

    #[test]
    fn colour_never_breaks_alignment() {
        let mut t = Table::new(&["NAME", "STATE", "WEIGHT"]);
        t.row(vec![
            Cell::styled("nginx0", Style::Name),
            Cell::styled("up", Style::Good),
            "100".into(),
        ]);
        t.row(vec![
            "a-long-backend-name".into(),
            Cell::styled("disabled", Style::Dim),
            "0".into(),
        ]);
        let plain = t.render(Theme::PLAIN);
        let colored = t.render(Theme { color: true });
        assert!(colored.contains("\x1b["));
        let strip = |s: &str| {
            let mut out = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        assert_eq!(strip(&colored), plain);
        assert_eq!(
            plain,
            "NAME                 STATE     WEIGHT\n\
             nginx0               up        100\n\
             a-long-backend-name  disabled  0\n"
        );
    }

    #[test]
    fn colour_follows_the_terminal_and_no_color() {
        let cases = [
            (ColorChoice::Auto, true, None, true),
            (ColorChoice::Auto, false, None, false),
            (ColorChoice::Auto, true, Some("1"), false),
            (ColorChoice::Auto, true, Some(""), true),
            (ColorChoice::Always, false, None, true),
            (ColorChoice::Always, true, Some("1"), false),
            (ColorChoice::Never, true, None, false),
        ];
        for (choice, tty, no_color, want) in cases {
            assert_eq!(
                Theme::detect(choice, tty, no_color).color,
                want,
                "{choice:?} {tty} {no_color:?}"
            );
        }
    }

    #[test]
    fn errors_are_coloured_by_whether_stderr_is_a_terminal() {
        // (stdout a terminal, stderr a terminal) -> (replies coloured, errors coloured)
        let cases = [
            ((true, true), (true, true)),
            ((true, false), (true, false)),
            ((false, true), (false, true)),
            ((false, false), (false, false)),
        ];
        for ((stdout, stderr), (out, err)) in cases {
            let themes = Themes::detect(ColorChoice::Auto, None, |s| match s {
                Stream::Stdout => stdout,
                Stream::Stderr => stderr,
            });
            assert_eq!(
                (themes.out.color, themes.err.color),
                (out, err),
                "stdout tty {stdout}, stderr tty {stderr}"
            );
        }
        // `always` and `never` ignore the terminals; NO_COLOR wins over both.
        let tty = |_| true;
        assert_eq!(Themes::detect(ColorChoice::Never, None, tty), Themes::PLAIN);
        assert_eq!(
            Themes::detect(ColorChoice::Always, Some("1"), tty),
            Themes::PLAIN
        );
        let piped = Themes::detect(ColorChoice::Always, None, |_| false);
        assert!(piped.out.color && piped.err.color);
    }
}
