//! Tests that keep `docs/` true to the code: the config reference lists exactly the keys the
//! config model accepts, and the troubleshooting page has exactly the log events the code
//! emits.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::workspace_root;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys in the first column of the reference's tables: rows starting ``| `maglev``.
fn documented_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(key, _)| key.to_owned()))
        .collect()
}

#[test]
fn config_reference_documents_exactly_the_accepted_keys() {
    let text = read(&workspace_root().join("docs/config-reference.md"));
    let documented = documented_keys(&text);
    let unique: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), documented.len(), "a key is documented twice");
    let accepted: BTreeSet<&str> = maglev_core::config::accepted_keys()
        .iter()
        .copied()
        .collect();
    let not_accepted: Vec<_> = unique.difference(&accepted).collect();
    let not_documented: Vec<_> = accepted.difference(&unique).collect();
    assert!(
        not_accepted.is_empty() && not_documented.is_empty(),
        "documented but not accepted: {not_accepted:?}; accepted but not documented: {not_documented:?}"
    );
}

#[test]
fn the_reference_check_fails_on_drift() {
    // The extraction the test above relies on sees an added and a missing row.
    let text =
        "| key | type |\n|---|---|\n| `maglev` | map |\n| `maglev.nope` | x |\nprose `maglev.x`\n";
    assert_eq!(documented_keys(text), ["maglev", "maglev.nope"]);
}

#[test]
fn config_man_page_names_every_key() {
    let page = crate::man::CONFIG_PAGE.replace("\\-", "-");
    for key in maglev_core::config::accepted_keys() {
        let last = key
            .rsplit('.')
            .find(|s| *s != "<name>")
            .unwrap_or(key)
            .trim_end_matches("[]");
        let described = regex::Regex::new(&format!(r"(?m)^\.BR? {}[\n :,]", regex::escape(last)))
            .unwrap()
            .is_match(&page);
        assert!(described, "maglev.yaml.5 does not describe {last} ({key})");
    }
}

/// The crates whose sources are scanned for log events.
const CRATES: &[&str] = &[
    "vpp-binapi-gen",
    "vpp-binapi",
    "vpp-sim",
    "maglev-core",
    "maglev-health",
    "maglev-vpp",
    "maglev-api",
    "maglevd",
    "maglevc",
    "maglevd-frontend",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Event names in `tracing` macros (`info!(name: "x", ...)`, `event!(Level::INFO, name: "x")`)
/// of non-test code: `src/` files, each up to its first `#[cfg(test)]`, without `*tests.rs`.
fn logged_events(source: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(
        r#"(?:trace|debug|info|warn|error|event)!\s*\(\s*(?:[A-Za-z_:]*Level::[A-Z]+\s*,\s*|[a-z_]+\s*,\s*)?name:\s*"([^"]+)""#,
    )
    .unwrap();
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    re.captures_iter(code).map(|c| c[1].to_owned()).collect()
}

fn code_events() -> BTreeSet<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in CRATES {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    files
        .iter()
        .filter(|f| {
            !f.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
        })
        .flat_map(|f| logged_events(&read(f)))
        .collect()
}

/// The events the page documents: its ``### `name` `` headings.
fn documented_events(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.strip_suffix('`'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn troubleshooting_covers_exactly_the_logged_events() {
    let logged = code_events();
    assert!(
        logged.contains("backend-transition") && logged.contains("vpp-lbsync-as-weight"),
        "{logged:?}"
    );
    let text = read(&workspace_root().join("docs/troubleshooting.md"));
    let documented = documented_events(&text);
    let missing: Vec<_> = logged.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&logged).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "logged but not in docs/troubleshooting.md: {missing:?}; documented but never logged: {stale:?}"
    );
}

#[test]
fn the_event_scanner_reads_every_macro_form() {
    let source = r#"
        tracing::info!(name: "a-one", x = 1, "a-one");
        tracing::warn!(
            name: "b-two",
            "b-two"
        );
        tracing::event!(Level::DEBUG, name: "c-three", "c-three");
        let s = Thing { name: "not-an-event" };
        #[cfg(test)]
        mod tests { fn f() { tracing::info!(name: "test-only", "test-only"); } }
    "#;
    let events: Vec<String> = logged_events(source).into_iter().collect();
    assert_eq!(events, ["a-one", "b-two", "c-three"]);
}
