//! Where VPP's `.api.json` files are, and what a test that needs them does when they are not.
//!
//! The files are looked for in `$VPP_API_DIR` if it is set (and only there), else in
//! `../shared/vpp-api` beside the repository, else in a VPP install's `/usr/share/vpp/api`.
//! A directory counts only if it holds every module asked for.
//!
//! Tests that need the files call [`api_dir_for_test`]: outside CI a missing directory skips
//! the test with a notice on the terminal; under CI (`CI=true`) it fails the test.
//!
//! | definitions | `CI` unset or false | `CI=true` (or `1`) |
//! |---|---|---|
//! | found | run | run |
//! | not found | skip, with a notice saying how to enable the test | fail |

use std::ffi::OsStr;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable naming the directory of `.api.json` files.
pub const ENV_VAR: &str = "VPP_API_DIR";

/// Where a VPP install (the `vpp-dev` package) puts its `.api.json` files.
pub const INSTALLED_API_DIR: &str = "/usr/share/vpp/api";

/// The shared definitions directory, relative to the workspace root.
pub const SHARED_API_DIR: &str = "../shared/vpp-api";

/// The directories looked at, in order: `env_dir` alone when it is set and not empty, else
/// [`SHARED_API_DIR`] beside `workspace_root`, then [`INSTALLED_API_DIR`].
pub fn candidates(env_dir: Option<&OsStr>, workspace_root: &Path) -> Vec<PathBuf> {
    match env_dir {
        Some(d) if !d.is_empty() => vec![PathBuf::from(d)],
        _ => vec![
            workspace_root.join(SHARED_API_DIR),
            PathBuf::from(INSTALLED_API_DIR),
        ],
    }
}

/// No directory looked at holds the definitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The directories looked at, in order.
    pub tried: Vec<PathBuf>,
    /// The modules that were required.
    pub modules: Vec<String>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VPP's .api.json definitions (")?;
        for (i, m) in self.modules.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{m}")?;
        }
        write!(f, ") were not found in")?;
        for (i, d) in self.tried.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{}", d.display())?;
        }
        write!(
            f,
            "; set {ENV_VAR} to a directory of .api.json files, or install VPP \
             (its definitions go to {INSTALLED_API_DIR})"
        )
    }
}

impl std::error::Error for Missing {}

/// Whether `dir` holds a `<module>.api.json` for every module of `modules`.
fn holds(dir: &Path, modules: &[&str]) -> bool {
    dir.is_dir()
        && crate::find_api_files(dir)
            .is_ok_and(|found| modules.iter().all(|m| found.contains_key(*m)))
}

/// The first of [`candidates`] that holds every module of `modules`.
pub fn locate(
    env_dir: Option<&OsStr>,
    workspace_root: &Path,
    modules: &[&str],
) -> Result<PathBuf, Missing> {
    let tried = candidates(env_dir, workspace_root);
    match tried.iter().find(|d| holds(d, modules)) {
        Some(d) => Ok(d.clone()),
        None => Err(Missing {
            tried,
            modules: modules.iter().map(|m| (*m).to_owned()).collect(),
        }),
    }
}

/// [`locate`] with `$VPP_API_DIR` from the environment.
pub fn locate_from_env(workspace_root: &Path, modules: &[&str]) -> Result<PathBuf, Missing> {
    locate(
        std::env::var_os(ENV_VAR).as_deref(),
        workspace_root,
        modules,
    )
}

/// Whether the value of `CI` means "running under CI": `true` or `1`, in any case.
pub fn is_ci(value: Option<&OsStr>) -> bool {
    value
        .and_then(OsStr::to_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// What a test that needs the definitions does (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestPlan {
    /// Run against this directory.
    Run(PathBuf),
    /// Skip the test, after showing this notice.
    Skip(String),
    /// Fail the test with this message.
    Fail(String),
}

/// The plan for test `test` given the lookup's result and whether this is CI.
pub fn test_plan(test: &str, found: Result<PathBuf, Missing>, ci: bool) -> TestPlan {
    match (found, ci) {
        (Ok(dir), _) => TestPlan::Run(dir),
        (Err(missing), false) => TestPlan::Skip(format!(
            "SKIPPED {test}: {missing}. The test passes without running; under CI (CI=true) \
             it fails instead."
        )),
        (Err(missing), true) => TestPlan::Fail(format!(
            "{test}: {missing}. CI=true: missing definitions are a failure."
        )),
    }
}

/// For a test that needs VPP's definitions of `modules`: the directory, or `None` when the
/// test should be skipped, after a notice written straight to the terminal (past the test
/// harness's output capture, so that a skipped test is seen). Panics under CI when the
/// definitions are missing.
#[track_caller]
pub fn api_dir_for_test(test: &str, workspace_root: &Path, modules: &[&str]) -> Option<PathBuf> {
    let found = locate_from_env(workspace_root, modules);
    match test_plan(test, found, is_ci(std::env::var_os("CI").as_deref())) {
        TestPlan::Run(dir) => Some(dir),
        TestPlan::Skip(notice) => {
            let line = "=".repeat(78);
            // Written to the process's stderr directly: libtest captures only `eprintln!`.
            let _ = writeln!(std::io::stderr(), "\n{line}\n{notice}\n{line}");
            None
        }
        TestPlan::Fail(message) => panic!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(dir: &Path, modules: &[&str]) {
        for m in modules {
            std::fs::write(dir.join(format!("{m}.api.json")), "{}").unwrap();
        }
    }

    #[test]
    fn an_explicit_directory_is_the_only_one_looked_at() {
        let root = tempfile::tempdir().unwrap();
        let env = tempfile::tempdir().unwrap();
        let c = candidates(Some(env.path().as_os_str()), root.path());
        assert_eq!(c, vec![env.path().to_path_buf()]);
        let c = candidates(Some(OsStr::new("")), root.path());
        assert_eq!(
            c,
            vec![
                root.path().join(SHARED_API_DIR),
                PathBuf::from(INSTALLED_API_DIR)
            ]
        );
        assert_eq!(c, candidates(None, root.path()));
    }

    #[test]
    fn a_directory_counts_only_with_every_module() {
        let env = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let e = Some(env.path().as_os_str());
        let err = locate(e, root.path(), &["lb", "memclnt"]).unwrap_err();
        assert_eq!(err.tried, vec![env.path().to_path_buf()]);
        let text = err.to_string();
        assert!(text.contains("(lb, memclnt)"), "{text}");
        assert!(
            text.contains(ENV_VAR) && text.contains(INSTALLED_API_DIR),
            "{text}"
        );
        stage(env.path(), &["lb"]);
        assert!(locate(e, root.path(), &["lb", "memclnt"]).is_err());
        stage(env.path(), &["memclnt"]);
        assert_eq!(
            locate(e, root.path(), &["lb", "memclnt"]),
            Ok(env.path().to_path_buf())
        );
    }

    #[test]
    fn the_shared_directory_beside_the_workspace_is_found() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("repo");
        let shared = top.path().join("shared/vpp-api/core");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        stage(&shared, &["vpe"]);
        let got = locate(None, &root, &["vpe"]).unwrap();
        assert_eq!(got, root.join(SHARED_API_DIR));
    }

    #[test]
    fn missing_definitions_skip_outside_ci_and_fail_under_ci() {
        let missing = || {
            Err(Missing {
                tried: vec![PathBuf::from("/nowhere")],
                modules: vec!["lb".into()],
            })
        };
        let TestPlan::Skip(notice) = test_plan("t", missing(), false) else {
            panic!("not a skip");
        };
        assert!(notice.starts_with("SKIPPED t: "), "{notice}");
        assert!(
            notice.contains("/nowhere") && notice.contains(ENV_VAR),
            "{notice}"
        );
        let TestPlan::Fail(msg) = test_plan("t", missing(), true) else {
            panic!("not a failure");
        };
        assert!(msg.contains("CI=true"), "{msg}");
        for ci in [false, true] {
            assert_eq!(
                test_plan("t", Ok(PathBuf::from("/d")), ci),
                TestPlan::Run(PathBuf::from("/d"))
            );
        }
    }

    #[test]
    fn ci_is_true_or_one() {
        for (v, want) in [
            (Some("true"), true),
            (Some("TRUE"), true),
            (Some("1"), true),
            (Some("false"), false),
            (Some("0"), false),
            (Some(""), false),
            (None, false),
        ] {
            assert_eq!(is_ci(v.map(OsStr::new)), want, "{v:?}");
        }
    }
}
