//! Project automation: `cargo xtask codegen [--check] [--api-dir DIR]` (the VPP bindings in
//! `vpp-binapi/src/api/` and the gRPC code in `maglev-api/src/gen/`) and
//! `cargo xtask messages MODULE`, `cargo xtask deb` (the Debian packages), `cargo xtask man`
//! (man pages in `target/man/`, see [`man`]) and `cargo xtask completions` (maglevc's in
//! `target/completions/`, see [`completions`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod deb;

/// The VPP API modules generated into `vpp-binapi/src/api/`: the one list, which the
/// generated code exports as `vpp_binapi::api::MODULES` for everyone else.
const MODULES: &[&str] = &[
    "memclnt",
    "vlib",
    "vpe",
    "vpe_types",
    "lb",
    "lb_types",
    "ip_types",
    "interface_types",
    "ip",
    "fib_types",
    "mfib_types",
    "ethernet_types",
];

#[derive(Parser)]
#[command(name = "xtask", about = "maglev-rs project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Regenerate maglev-api/src/gen/ from the proto, and vpp-binapi/src/api/ from the VPP
    /// .api.json files.
    Codegen {
        /// Do not write: fail if the committed files differ from fresh output.
        #[arg(long)]
        check: bool,
        /// List the messages (name, CRC, header kind) of every generated module instead.
        #[arg(long)]
        list: bool,
        /// Directory searched recursively for *.api.json (else $VPP_API_DIR, else /usr/share/vpp/api).
        #[arg(long)]
        api_dir: Option<PathBuf>,
    },
    /// Print the messages of one module with their CRCs and header kinds.
    Messages {
        /// The module, e.g. `lb`.
        module: String,
        /// Directory searched recursively for *.api.json (else $VPP_API_DIR, else /usr/share/vpp/api).
        #[arg(long)]
        api_dir: Option<PathBuf>,
    },
    /// Write the man pages (maglevd.8, maglevc.1, maglev.yaml.5) to target/man/ and the
    /// shell completions to target/completions/.
    Man,
    /// Write maglevc's shell completions (maglevc.bash, _maglevc, maglevc.fish) to
    /// target/completions/.
    Completions,
    /// Build the Debian packages vpp-maglevd and vpp-maglev (binaries included).
    Deb {
        /// The cargo profile of the binaries (`release`, or `dev` to reuse a test build).
        #[arg(long, default_value = "release")]
        profile: String,
        /// Where the .deb files go (default: `<target dir>/debian`).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Cross-build for this Rust target (`aarch64-unknown-linux-gnu` makes arm64 packages).
        #[arg(long, value_name = "TRIPLE")]
        target: Option<String>,
        /// The Debian revision: the version is `<workspace version>-<revision>`.
        #[arg(long, default_value = "1")]
        revision: String,
        /// Package the binaries already built, without running cargo build.
        #[arg(long)]
        no_build: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Codegen {
            check,
            list,
            api_dir,
        } => {
            let dir = api_dir_from(api_dir);
            if list {
                for m in MODULES {
                    print_messages(&dir, m)?;
                }
                return Ok(());
            }
            let root = workspace_root();
            println!("{}", codegen::run_proto(&root, check)?);
            println!(
                "{}",
                codegen::run(&dir, &root.join(codegen::OUT_DIR), check)?
            );
            println!("{}", codegen::run_fixtures(&root, check)?);
            Ok(())
        }
        Cmd::Messages { module, api_dir } => print_messages(&api_dir_from(api_dir), &module),
        Cmd::Man => print_written(
            man::write(&target_dir())?
                .into_iter()
                .chain(completions::write(&target_dir())?),
        ),
        Cmd::Completions => print_written(completions::write(&target_dir())?),
        Cmd::Deb {
            profile,
            out,
            target,
            revision,
            no_build,
        } => {
            let options = deb::Options {
                profile,
                out,
                target,
                revision,
                no_build,
            };
            deb::run(&workspace_root(), &options).map(drop)
        }
    }
}

fn print_written(paths: impl IntoIterator<Item = PathBuf>) -> Result<()> {
    for path in paths {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn api_dir_from(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("VPP_API_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(vpp_binapi_gen::apidir::INSTALLED_API_DIR))
}

/// Cargo's target dir: `$CARGO_TARGET_DIR` when set (as `cargo xtask deb` reads it, through
/// `cargo metadata`), else `target/` in the workspace.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .map_or_else(
            || workspace_root().join("target"),
            |dir| std::path::absolute(&dir).unwrap_or(dir),
        )
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn print_messages(dir: &Path, module: &str) -> Result<()> {
    let set = vpp_binapi_gen::ApiSet::load(dir, &[module])
        .with_context(|| format!("loading {module} from {}", dir.display()))?;
    println!("# {module}");
    for m in vpp_binapi_gen::message_list(&set, module)? {
        println!("{:<60} {:#010x} {}", m.name_crc(), m.crc, m.header);
    }
    Ok(())
}

mod completions;
#[cfg(test)]
mod docs;
mod man;

mod codegen {
    use super::*;

    /// Output directory, relative to the workspace root.
    pub(crate) const OUT_DIR: &str = "vpp-binapi/src/api";

    /// The generator's own hand-written test fixtures (`<module>.fixture.json`, in the
    /// `.api.json` format), compiled into `vpp-binapi`'s codec unit tests so that every shape
    /// is known to compile and round-trip.
    pub(crate) const FIXTURE_DIR: &str = "vpp-binapi-gen/tests/fixtures";
    /// Output directory of the fixture modules, relative to the workspace root.
    pub(crate) const FIXTURE_OUT_DIR: &str = "vpp-binapi/src/codec/fixture";
    const FIXTURE_MODULES: &[&str] = &["base_types", "shapes"];

    /// Generates every module of [`MODULES`]; with `check`, compares instead of writing.
    pub(crate) fn run(api_dir: &Path, out_dir: &Path, check: bool) -> Result<String> {
        if !api_dir.is_dir() {
            bail!(
                "VPP API directory {} does not exist; pass --api-dir or set VPP_API_DIR",
                api_dir.display()
            );
        }
        let set = vpp_binapi_gen::ApiSet::load(api_dir, MODULES)
            .with_context(|| format!("loading .api.json files from {}", api_dir.display()))?;
        write_or_check(
            &set,
            MODULES,
            &vpp_binapi_gen::Config::default(),
            out_dir,
            check,
        )
    }

    /// The `maglev-api` crate directory, relative to the workspace root.
    pub(crate) const MAGLEV_API_DIR: &str = "maglev-api";

    /// Generates `maglev-api`'s gRPC code and descriptor set from its proto with protox (no
    /// `protoc`); with `check`, compares instead of writing.
    pub(crate) fn run_proto(root: &Path, check: bool) -> Result<String> {
        use maglev_api::codegen::{CODE_FILE, DESCRIPTOR_FILE, Mode};
        let dir = root.join(MAGLEV_API_DIR);
        let mode = if check { Mode::Check } else { Mode::Write };
        let written = maglev_api::codegen::run(&dir, mode)
            .with_context(|| format!("generating the gRPC code in {}", dir.display()))?;
        Ok(if check {
            format!("{CODE_FILE} and {DESCRIPTOR_FILE} are up to date")
        } else {
            format!(
                "wrote {} of 2 files to {}/src/gen",
                written.len(),
                dir.display()
            )
        })
    }

    /// Generates the fixture modules; with `check`, compares instead of writing.
    pub(crate) fn run_fixtures(root: &Path, check: bool) -> Result<String> {
        let cfg = vpp_binapi_gen::Config {
            gen_path: "crate::codec::fixture".to_owned(),
            // the fixtures use the real `ApiError` of `crate::api`
            errors: false,
            ..vpp_binapi_gen::Config::default()
        };
        let mut set = vpp_binapi_gen::ApiSet::new();
        for module in FIXTURE_MODULES {
            let path = root
                .join(FIXTURE_DIR)
                .join(format!("{module}.fixture.json"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            set.add_json(&format!("{module}.api.json"), &text)
                .with_context(|| format!("loading {}", path.display()))?;
        }
        write_or_check(
            &set,
            FIXTURE_MODULES,
            &cfg,
            &root.join(FIXTURE_OUT_DIR),
            check,
        )
    }

    fn write_or_check(
        set: &vpp_binapi_gen::ApiSet,
        modules: &[&str],
        cfg: &vpp_binapi_gen::Config,
        out_dir: &Path,
        check: bool,
    ) -> Result<String> {
        let files = vpp_binapi_gen::generate(set, modules, cfg).context("generating code")?;
        let mut stale = vec![];
        for (name, text) in &files {
            let path = out_dir.join(name);
            let current = std::fs::read_to_string(&path).ok();
            if current.as_deref() == Some(text.as_str()) {
                continue;
            }
            if check {
                stale.push(name.clone());
            } else {
                std::fs::create_dir_all(out_dir)
                    .with_context(|| format!("creating {}", out_dir.display()))?;
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                stale.push(name.clone());
            }
        }
        // files in the output directory that the generator no longer produces
        let mut extra = vec![];
        if let Ok(rd) = std::fs::read_dir(out_dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".rs") && !files.contains_key(&n) {
                    extra.push(n);
                }
            }
        }
        extra.sort();
        if check {
            if !stale.is_empty() || !extra.is_empty() {
                bail!(
                    "generated code in {} is out of date (differs: {:?}, not generated: {:?}); run `cargo xtask codegen`",
                    out_dir.display(),
                    stale,
                    extra
                );
            }
            return Ok(format!("{} generated files are up to date", files.len()));
        }
        for n in &extra {
            let p = out_dir.join(n);
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
        Ok(format!(
            "wrote {} of {} files to {}",
            stale.len(),
            files.len(),
            out_dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed generated code must match the `.api.json` files (found as
    /// `vpp_binapi_gen::apidir` says; skipped with a notice outside CI when they are missing),
    /// and the fixture modules must match the generator's own fixtures.
    #[test]
    fn codegen_is_fresh() {
        if let Err(e) = codegen::run_fixtures(&workspace_root(), true) {
            panic!("{e:#}");
        }
        let Some(dir) = vpp_binapi_gen::apidir::api_dir_for_test(
            "codegen_is_fresh",
            &workspace_root(),
            MODULES,
        ) else {
            return;
        };
        if let Err(e) = codegen::run(&dir, &workspace_root().join(codegen::OUT_DIR), true) {
            panic!("{e:#}");
        }
    }

    /// The committed gRPC code and descriptor set must match the proto.
    #[test]
    fn proto_codegen_is_fresh() {
        if let Err(e) = codegen::run_proto(&workspace_root(), true) {
            panic!("{e:#}");
        }
    }
}
