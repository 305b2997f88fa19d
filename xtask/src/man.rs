//! `cargo xtask man`: the manual pages, written to `man/` in the cargo target dir (`target/man/`).
//!
//! | page | source |
//! |---|---|
//! | `maglevd.8` | `maglevd::cli::Args` (clap), plus hand-written EXIT STATUS, SIGNALS, FILES |
//! | `maglevc.1` | `maglevc::cli::Cli` (clap), plus a COMMANDS section walked from `maglevc::tree` |
//! | `maglevd-frontend.8` | `maglevd_frontend::cli::Args` (clap), plus hand-written ENDPOINTS and SIGNALS |
//! | `maglev.yaml.5` | written by hand in `xtask/man/maglev.yaml.5` (checked against the config model by `maglev-core`'s key list) |
//!
//! The pages are generated, not committed; the packaging installs them from these paths.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use roff::{Roff, bold, roman};

/// Where the pages go, relative to the workspace root.
pub(crate) const OUT_DIR: &str = "man";

/// The hand-written `maglev.yaml(5)`.
pub(crate) const CONFIG_PAGE: &str = include_str!("../man/maglev.yaml.5");

/// One generated page: its file name and its roff text.
pub(crate) struct Page {
    pub(crate) file: &'static str,
    pub(crate) text: String,
}

/// Every page, rendered.
pub(crate) fn pages() -> Result<Vec<Page>> {
    Ok(vec![
        Page {
            file: "maglevd.8",
            text: maglevd_page()?,
        },
        Page {
            file: "maglevc.1",
            text: maglevc_page()?,
        },
        Page {
            file: "maglevd-frontend.8",
            text: frontend_page()?,
        },
        Page {
            file: "maglev.yaml.5",
            text: CONFIG_PAGE.to_owned(),
        },
    ])
}

/// Writes every page into `target_dir/man/`; returns the paths written.
pub(crate) fn write(target_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = target_dir.join(OUT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for page in pages()? {
        let path = dir.join(page.file);
        std::fs::write(&path, page.text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn manual(cmd: clap::Command, section: &str) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .section(section)
        .source(format!("maglev-rs {}", env!("CARGO_PKG_VERSION")))
        .manual("maglev-rs")
}

/// The sections clap_mangen writes from the clap definition: title, name, synopsis, description
/// and options; each page adds its own after them.
fn clap_sections(man: &clap_mangen::Man) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    Ok(out)
}

/// Renders roff built with the `roff` crate onto the page.
fn push(out: &mut Vec<u8>, roff: &Roff) {
    out.extend_from_slice(roff.render().as_bytes());
}

/// A section of `.TP` entries: a bold term, then its text.
fn tagged(title: &str, entries: &[(&str, &str)]) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    for (term, text) in entries {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
    roff
}

fn paragraphs(title: &str, texts: &[&str]) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*text)]);
    }
    roff
}

/// `maglevd(8)`.
pub(crate) fn maglevd_page() -> Result<String> {
    let man = manual(maglevd::cli::Args::command(), "8");
    let mut out = clap_sections(&man)?;
    push(
        &mut out,
        &paragraphs(
            "MODES",
            &[
                "Without --config, maglevd runs the embedded demo: the example config, a few local \
                 backend servers and the VPP simulator in-process. With --config and no VPP socket \
                 it programs a real VPP on /run/vpp/api.sock (stats on /run/vpp/stats.sock); it \
                 never falls back to a simulator. --vpp-api-socket '' runs health checking only; \
                 --embedded-sim programs the in-process simulator.",
                "After a start, maglevd leaves VPP alone for vpp.lb.startup-min-delay, then releases \
                 each frontend once every backend it references has a state, and syncs everything \
                 at vpp.lb.startup-max-delay: a restart does not disturb the dataplane. See \
                 maglev.yaml(5).",
            ],
        ),
    );
    push(
        &mut out,
        &tagged(
            "EXIT STATUS",
            &[
                ("0", "Normal shutdown, or --check found the config valid."),
                ("1", "--check: the file is unreadable or does not parse."),
                ("2", "--check: the file parses but breaks a semantic rule."),
                (
                    "64",
                    "The daemon refused to start on an invalid config (every error is logged first).",
                ),
            ],
        ),
    );
    push(
        &mut out,
        &tagged(
            "SIGNALS",
            &[
                (
                    "SIGHUP",
                    "Reload the config. A config with errors is refused and the running one stays; \
                     unchanged health checks keep probing, and the startup warmup is not restarted.",
                ),
                (
                    "SIGTERM, SIGINT",
                    "Graceful shutdown: open gRPC streams end, in-flight calls drain for up to 5 \
                     seconds, probes stop, then maglevd exits 0.",
                ),
            ],
        ),
    );
    push(
        &mut out,
        &tagged(
            "FILES",
            &[
                (
                    "/etc/vpp-maglev/maglev.yaml",
                    "The config file of the packaged service (see maglev.yaml(5)).",
                ),
                (
                    "/etc/default/vpp-maglev",
                    "MAGLEV_CONFIG and MAGLEV_ARGS for the systemd unit.",
                ),
                (
                    "/run/vpp/api.sock",
                    "VPP's binary API socket (the default).",
                ),
                (
                    "/run/vpp/stats.sock",
                    "VPP's stats segment socket (the default).",
                ),
            ],
        ),
    );
    push(
        &mut out,
        &paragraphs("SEE ALSO", &["maglevc(1), maglev.yaml(5), vppctl(8)"]),
    );
    man.render_version_section(&mut out)?;
    String::from_utf8(out).context("maglevd.8 is not UTF-8")
}

/// `maglevd-frontend(8)`: the dashboard's clap options, its endpoints and signals.
pub(crate) fn frontend_page() -> Result<String> {
    let man = manual(maglevd_frontend::cli::Args::command(), "8");
    let mut out = clap_sections(&man)?;
    push(
        &mut out,
        &tagged(
            "ENDPOINTS",
            &[
                (
                    "/view/",
                    "The read-only dashboard: one tab per maglevd, one card per frontend, live.",
                ),
                (
                    "/view/api/state, /view/api/maglevds, /view/api/version",
                    "The same state as JSON.",
                ),
                (
                    "/view/api/events",
                    "Server-sent events, replayed after a short disconnect by Last-Event-ID.",
                ),
                (
                    "/admin/",
                    "The dashboard with actions (pause, resume, enable, disable, weight, sync, \
                     dry run, preview), behind basic auth from MAGLEV_FRONTEND_USER and \
                     MAGLEV_FRONTEND_PASSWORD; off when no password is set.",
                ),
                ("/healthz", "200 while the process serves."),
            ],
        ),
    );
    push(
        &mut out,
        &tagged(
            "SIGNALS",
            &[
                ("SIGHUP", "Ignored."),
                (
                    "SIGTERM, SIGINT",
                    "Graceful shutdown: open event streams end, then the process exits 0.",
                ),
            ],
        ),
    );
    push(
        &mut out,
        &paragraphs("SEE ALSO", &["maglevd(8), maglevc(1)"]),
    );
    man.render_version_section(&mut out)?;
    String::from_utf8(out).context("maglevd-frontend.8 is not UTF-8")
}

/// `maglevc(1)`: the clap options plus a COMMANDS section from the command tree.
pub(crate) fn maglevc_page() -> Result<String> {
    // The long help's command list becomes the COMMANDS section below, with roff markup.
    let cmd = maglevc::cli::Cli::command().after_long_help(None::<&str>);
    let man = manual(cmd, "1");
    let mut out = clap_sections(&man)?;
    push(&mut out, &commands_section());
    push(
        &mut out,
        &tagged(
            "EXIT STATUS",
            &[
                ("0", "The command succeeded."),
                ("1", "maglevd reported an error."),
                ("2", "Usage error: the command does not parse."),
                ("3", "maglevd cannot be reached."),
            ],
        ),
    );
    push(
        &mut out,
        &tagged(
            "ENVIRONMENT",
            &[
                ("MAGLEV_SERVER", "The default of --server."),
                ("NO_COLOR", "When set, never colour the output."),
            ],
        ),
    );
    push(
        &mut out,
        &paragraphs(
            "EXAMPLES",
            &[
                "maglevc show frontends",
                "maglevc sh fr web",
                "maglevc set backend web1 disable",
                "maglevc --json show backends | jq .",
            ],
        ),
    );
    push(
        &mut out,
        &paragraphs("SEE ALSO", &["maglevd(8), maglev.yaml(5)"]),
    );
    man.render_version_section(&mut out)?;
    String::from_utf8(out).context("maglevc.1 is not UTF-8")
}

/// The COMMANDS section: every command of `maglevc::tree` with its one-line help.
fn commands_section() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    roff.text([roman(
        "Commands are the same in the shell and on the command line. A keyword may be shortened \
         to a unique prefix (an exact keyword wins over a longer one); in the shell, Tab \
         completes keywords and live names and ? shows what fits at the cursor.",
    )]);
    for (synopsis, help) in maglevc::tree::synopsis() {
        roff.control("TP", []);
        roff.text([bold(synopsis)]);
        roff.text([roman(help)]);
    }
    roff
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Renders a page with groff as `man` would, with warnings on; returns the text and
    /// stderr.
    fn render(text: &str) -> (String, String) {
        // One file per call: the tests render in parallel threads of one process.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xtask-man-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("page");
        std::fs::write(&path, text).unwrap();
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-rLL=100n"])
            .arg(&path)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("groff runs (install groff-base)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "groff failed: {out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// groff's rendering without the overstrike/escape sequences of bold and underline.
    fn plain(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\u{8}' => {
                    out.pop();
                }
                '\u{1b}' => {
                    // SGR: ESC [ ... m
                    for d in chars.by_ref() {
                        if d == 'm' {
                            break;
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    fn check(page: &str, must_contain: &[&str]) {
        let (text, warnings) = render(page);
        assert!(warnings.is_empty(), "groff warnings:\n{warnings}");
        let text = plain(&text);
        for needle in must_contain {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }

    #[test]
    fn maglevd_page_renders_every_flag() {
        let page = maglevd_page().unwrap();
        let flags: Vec<String> = maglevd::cli::Args::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        assert!(flags.iter().any(|f| f == "--grpc-addr"), "{flags:?}");
        let mut needles: Vec<&str> = flags.iter().map(String::as_str).collect();
        needles.extend(["MAGLEV_CONFIG", "EXIT STATUS", "SIGHUP", "maglevd"]);
        check(&page, &needles);
    }

    #[test]
    fn frontend_page_renders_every_flag() {
        let page = frontend_page().unwrap();
        let flags: Vec<String> = maglevd_frontend::cli::Args::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        assert!(flags.iter().any(|f| f == "--listen"), "{flags:?}");
        let mut needles: Vec<&str> = flags.iter().map(String::as_str).collect();
        needles.extend(["MAGLEV_FRONTEND_PASSWORD", "ENDPOINTS", "/view/api/events"]);
        check(&page, &needles);
    }

    #[test]
    fn maglevc_page_renders_flags_and_every_command() {
        let page = maglevc_page().unwrap();
        let synopsis = maglevc::tree::synopsis();
        assert!(synopsis.len() > 10, "{synopsis:?}");
        let mut needles: Vec<&str> = vec!["--server", "--color", "--json", "COMMANDS"];
        needles.extend(synopsis.iter().map(|(s, _)| s.as_str()));
        needles.extend(synopsis.iter().map(|(_, h)| *h));
        check(&page, &needles);
    }

    #[test]
    fn config_page_renders() {
        check(
            CONFIG_PAGE,
            &[
                "maglev.yaml",
                "healthchecker",
                "startup-min-delay",
                "flush-on-down",
            ],
        );
    }

    #[test]
    fn man_l_renders_without_warnings() {
        // `man -l` is what an operator runs on the installed file.
        if Command::new("man").arg("--version").output().is_err() {
            return check(CONFIG_PAGE, &["maglev.yaml"]);
        }
        let dir = std::env::temp_dir().join(format!("xtask-man-l-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for page in pages().unwrap() {
            let path = dir.join(page.file);
            std::fs::write(&path, &page.text).unwrap();
            let out = Command::new("man")
                .arg("-l")
                .arg(&path)
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .env("MANWIDTH", "100")
                .env("MAN_KEEP_STDERR", "1")
                .env("LC_ALL", "C.UTF-8")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}: {out:?}", page.file);
            assert!(
                out.stderr.is_empty(),
                "{}: {}",
                page.file,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.stdout.is_empty(), "{}", page.file);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
