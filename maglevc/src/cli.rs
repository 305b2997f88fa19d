//! The command line: global options and the command words (parsed by [`crate::tree`]), and
//! the one-shot mode.

use std::io::{IsTerminal as _, Write as _};
use std::time::SystemTime;

use clap::Parser;

use crate::exec::{self, Client, Failure};
use crate::render::{self, Reply};
use crate::style::{ColorChoice, Stream, Theme, Themes};
use crate::tree::{self, Action, Command};

/// The default address of maglevd's gRPC API.
pub const DEFAULT_SERVER: &str = "127.0.0.1:9090";

/// maglevc: the maglevd operator CLI. With a command, runs it and exits (0 ok, 1 server
/// error, 2 usage error, 3 cannot connect); without one, starts an interactive shell.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "maglevc",
    version,
    about = "The maglevd operator CLI: a birdc-style shell and one-shot commands",
    long_about = "The maglevd operator CLI. With a command, maglevc runs it and exits with 0 \
                  (ok), 1 (server error), 2 (usage error) or 3 (cannot connect). Without one, \
                  it starts an interactive shell with completion (Tab) and help (?). Keywords \
                  may be shortened to a unique prefix: `maglevc sh ba nginx0`.",
    after_long_help = after_help()
)]
pub struct Cli {
    /// maglevd's gRPC address: host:port, http://host:port, https://host:port or unix:/path.
    #[arg(long, env = "MAGLEV_SERVER", default_value = DEFAULT_SERVER, value_name = "ADDR")]
    pub server: String,
    /// Colour: on a terminal (auto), always or never; NO_COLOR turns it off.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Print `show` results (and every other reply) as JSON.
    #[arg(long)]
    pub json: bool,
    /// The command to run (see COMMANDS); none starts the shell.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

fn after_help() -> String {
    format!("COMMANDS:\n{}", tree::help_text())
}

/// The current time in unix nanoseconds, for ages.
#[must_use]
pub fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Connects to maglevd.
///
/// # Errors
/// [`Failure::Connect`].
pub async fn connect(server: &str) -> Result<Client, Failure> {
    maglev_api::client::connect(server)
        .await
        .map_err(|e| Failure::connect(server, &e))
}

/// Prints a failure as both modes do: `error: <message>` on stderr, red on a colour theme.
pub fn print_failure(failure: &Failure, theme: Theme) {
    let text = theme.paint(crate::style::Style::Bad, &format!("error: {failure}"));
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Prints a reply on stdout, as text or JSON.
pub fn print_reply(reply: &Reply, theme: Theme, json: bool) {
    let text = if json {
        let mut s = serde_json::to_string_pretty(&crate::json::reply(reply)).unwrap_or_default();
        s.push('\n');
        s
    } else {
        render::text(reply, theme, now_unix_nanos())
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Runs one parsed command that needs the server (not `help` or `quit`) and prints its
/// result; the exit status is 1 when the reply reports a failure.
///
/// # Errors
/// The command's [`Failure`].
pub async fn run_command(
    client: &mut Client,
    command: &Command,
    theme: Theme,
    json: bool,
) -> Result<u8, Failure> {
    if command.action == Action::WatchEvents {
        let mut out = std::io::stdout();
        crate::watch::run(client, &command.args, theme, json, &mut out).await?;
        return Ok(0);
    }
    let reply = exec::run(client, command).await?;
    print_reply(&reply, theme, json);
    Ok(u8::from(reply.is_failure()))
}

/// The themes for these options, this process's stdout and stderr, and its environment.
#[must_use]
pub fn themes(cli: &Cli) -> Themes {
    Themes::detect(
        cli.color,
        std::env::var("NO_COLOR").ok().as_deref(),
        |stream| match stream {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        },
    )
}

/// One-shot mode: parses the command words, connects, runs, prints; returns the exit status.
#[must_use]
pub fn one_shot(cli: &Cli) -> u8 {
    let Themes { out: theme, err } = themes(cli);
    let command = match tree::parse_words(cli.command.iter().map(String::as_str)) {
        Ok(c) => c,
        Err(e) => {
            let failure = Failure::Usage(e);
            print_failure(&failure, err);
            return failure.exit_code();
        }
    };
    match command.action {
        Action::Help => {
            print_reply(&Reply::Help(tree::help_text()), theme, cli.json);
            return 0;
        }
        Action::Quit => return 0,
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        let result = async {
            let mut client = connect(&cli.server).await?;
            run_command(&mut client, &command, theme, cli.json).await
        }
        .await;
        match result {
            Ok(code) => code,
            Err(failure) => {
                print_failure(&failure, err);
                failure.exit_code()
            }
        }
    })
}
