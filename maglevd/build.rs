//! Build identity for `--version`, the `starting` record and GetVersion: the git commit
//! (`git rev-parse --short HEAD`, else "unknown") and the build date (`SOURCE_DATE_EPOCH` when
//! set, for reproducible builds, else now), as `MAGLEVD_GIT_COMMIT` and `MAGLEVD_BUILD_DATE`.
//!
//! It reruns only when HEAD moves (the HEAD file and the branch ref it names) or
//! `SOURCE_DATE_EPOCH` changes, so an ordinary edit does not rebuild the crate for a new date.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        watch_head(&git_dir);
    } else {
        // Not a git checkout: nothing to watch but this script.
        println!("cargo:rerun-if-changed=build.rs");
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
        });
    println!("cargo:rustc-env=MAGLEVD_GIT_COMMIT={commit}");
    let date = rfc3339(epoch).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MAGLEVD_BUILD_DATE={date}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// Reruns when HEAD changes: the HEAD file (a checkout), the ref it points to (a commit), and
/// packed-refs (a ref packed away). In a worktree, HEAD is in the worktree's git dir and the
/// refs in the common one.
fn watch_head(git_dir: &Path) {
    let head = git_dir.join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    let common = git(&["rev-parse", "--git-common-dir"])
        .map(PathBuf::from)
        .map_or_else(
            || git_dir.to_owned(),
            |d| {
                if d.is_absolute() {
                    d
                } else {
                    std::env::current_dir().unwrap_or_default().join(d)
                }
            },
        );
    if let Ok(text) = std::fs::read_to_string(&head)
        && let Some(name) = text.trim().strip_prefix("ref: ")
    {
        for dir in [git_dir, common.as_path()] {
            let path = dir.join(name);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!(
        "cargo:rerun-if-changed={}",
        common.join("packed-refs").display()
    );
}

/// `epoch` seconds as an RFC 3339 UTC timestamp; `None` out of the calendar's range.
fn rfc3339(epoch: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}
