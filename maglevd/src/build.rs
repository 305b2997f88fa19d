//! The build identity (version, git commit, build date) that `build.rs` records: printed by
//! `--version`, carried by the first log record `starting`, returned by GetVersion.

use crate::grpc::BuildInfo;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The short git commit it was built from, or `unknown`.
pub const GIT_COMMIT: &str = env!("MAGLEVD_GIT_COMMIT");
/// The build date, RFC 3339 UTC (`SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("MAGLEVD_BUILD_DATE");
/// What `--version` prints after the program name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MAGLEVD_GIT_COMMIT"),
    ", built ",
    env!("MAGLEVD_BUILD_DATE"),
    ")"
);

/// The build identity as the gRPC service reports it.
pub fn info() -> BuildInfo {
    BuildInfo {
        version: VERSION.to_owned(),
        git_commit: GIT_COMMIT.to_owned(),
        build_date: BUILD_DATE.to_owned(),
    }
}
