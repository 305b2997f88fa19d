//! Reads VPP `.api.json` definitions and generates typed Rust messages and wire codecs.
//!
//! The flow is: [`find_api_files`] locates `*.api.json` files under a directory,
//! [`ApiSet::load`] parses the requested modules and everything they import into the typed
//! [`model`], recomputing and verifying every message CRC ([`crc`]), and [`generate`] emits one
//! Rust module per `.api.json` file plus a `mod.rs` registry, formatted with `prettyplease`.
//!
//! Types are emitted once, in the module that owns them: a type that an imported file defines is
//! referenced through that module (e.g. `lb` uses `crate::api::ip_types::Address`).
//!
//! ```no_run
//! use vpp_binapi_gen::{ApiSet, Config, generate};
//! let set = ApiSet::load(std::path::Path::new("/usr/share/vpp/api"), &["lb"]).unwrap();
//! let files = generate(&set, &["lb", "lb_types", "ip_types", "interface_types"], &Config::default()).unwrap();
//! for (name, text) in files {
//!     println!("{name}: {} bytes", text.len());
//! }
//! ```
#![cfg_attr(not(fuzzing), warn(missing_docs))]
#![forbid(unsafe_code)]

pub mod apidir;
pub mod crc;
pub mod doc;
mod emit;
mod error;
pub mod errors;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use error::Error;
pub use model::{ApiFile, parse_api_json};

/// Where generated code finds the runtime and its sibling modules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Path of the module holding the generated modules (default `crate::api`).
    pub gen_path: String,
    /// Path of the codec runtime (default `crate::codec`).
    pub codec_path: String,
    /// Whether [`generate`] also emits `errors.rs`, the `ApiError` enum from the error table
    /// [`errors::API_ERRNO`], re-exported by `mod.rs` (default `true`).
    pub errors: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gen_path: "crate::api".to_owned(),
            codec_path: "crate::codec".to_owned(),
            errors: true,
        }
    }
}

/// A set of parsed `.api.json` files, by module name, with their import graph.
#[derive(Clone, Debug, Default)]
pub struct ApiSet {
    files: BTreeMap<String, ApiFile>,
}

/// How deep [`find_api_files`] descends (a guard against symbolic-link cycles).
const MAX_DIR_DEPTH: usize = 8;

/// Finds every `*.api.json` file below `dir` (recursively, at most 8 levels), by module name
/// (file name without `.api.json`).
pub fn find_api_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        let mut entries: Vec<PathBuf> = Vec::new();
        for e in rd {
            let e = e.map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
            entries.push(e.path());
        }
        entries.sort();
        for p in entries {
            if p.is_dir() {
                if depth < MAX_DIR_DEPTH {
                    stack.push((p, depth + 1));
                }
            } else if let Some(name) = p.file_name().and_then(|n| n.to_str())
                && let Some(module) = name.strip_suffix(".api.json")
            {
                if let Some(first) = out.get(module) {
                    return Err(Error::DuplicateModule {
                        module: module.to_owned(),
                        first: first.clone(),
                        second: p,
                    });
                }
                out.insert(module.to_owned(), p);
            }
        }
    }
    Ok(out)
}

impl ApiSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parsed file after verifying every message CRC.
    pub fn add(&mut self, file: ApiFile) -> Result<(), Error> {
        crc::verify_file(&file)?;
        self.files.insert(file.module.clone(), file);
        Ok(())
    }

    /// Parses and adds the `.api.json` text of one file.
    pub fn add_json(&mut self, file_name: &str, text: &str) -> Result<(), Error> {
        self.add(parse_api_json(file_name, text)?)
    }

    /// Loads `modules` and, transitively, every module they import, from the `*.api.json` files
    /// below `dir`.
    pub fn load(dir: &Path, modules: &[&str]) -> Result<Self, Error> {
        let paths = find_api_files(dir)?;
        let mut set = Self::new();
        let mut todo: Vec<(String, Option<String>)> =
            modules.iter().map(|m| ((*m).to_owned(), None)).collect();
        while let Some((m, by)) = todo.pop() {
            if set.files.contains_key(&m) {
                continue;
            }
            let path = paths.get(&m).ok_or_else(|| Error::MissingModule {
                module: m.clone(),
                imported_by: by.clone(),
            })?;
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?.api.json");
            let mut file = parse_api_json(name, &text)?;
            // the file name decides the module, so that imports resolve
            file.module = m.clone();
            for i in &file.imports {
                todo.push((i.clone(), Some(m.clone())));
            }
            set.add(file)?;
        }
        Ok(set)
    }

    /// The file of `module`.
    pub fn get(&self, module: &str) -> Option<&ApiFile> {
        self.files.get(module)
    }

    /// The loaded module names, sorted.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The modules `module` imports, transitively (without itself), sorted.
    pub fn import_closure(&self, module: &str) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![module];
        while let Some(m) = todo.pop() {
            if let Some(f) = self.files.get(m) {
                for i in &f.imports {
                    if let Some((k, _)) = self.files.get_key_value(i.as_str())
                        && k != module
                        && seen.insert(k.as_str())
                    {
                        todo.push(k.as_str());
                    }
                }
            }
        }
        seen
    }

    /// The type names `module` defines itself: those in its file that no (transitively)
    /// imported file defines.
    pub fn own_types(&self, module: &str) -> BTreeSet<&str> {
        let Some(f) = self.files.get(module) else {
            return BTreeSet::new();
        };
        let mut imported: BTreeSet<&str> = BTreeSet::new();
        for i in self.import_closure(module) {
            if let Some(fi) = self.files.get(i) {
                imported.extend(fi.type_items().into_keys());
            }
        }
        f.type_items()
            .into_keys()
            .filter(|n| !imported.contains(n))
            .collect()
    }

    /// The module that owns type `name` as seen from `module` (itself or an imported module).
    pub fn owner_of<'s>(&'s self, module: &str, name: &str) -> Option<&'s str> {
        let (k, _) = self.files.get_key_value(module)?;
        if self.own_types(module).contains(name) {
            return Some(k.as_str());
        }
        self.import_closure(module)
            .into_iter()
            .find(|i| self.own_types(i).contains(name))
    }
}

/// Renders one module; the text starts with the "generated, do not edit" line.
pub fn generate_module(set: &ApiSet, module: &str, cfg: &Config) -> Result<String, Error> {
    let em = emit::ModuleEmitter::new(set, cfg, module)?;
    let tokens = em.emit()?;
    let f = set.get(module).ok_or_else(|| Error::MissingModule {
        module: module.to_owned(),
        imported_by: None,
    })?;
    let header = format!(
        "//! Generated by `cargo xtask codegen` from {}, do not edit.\n//!\n//! VPP API module `{}`, version {}.\n",
        f.file_name,
        module,
        f.version.as_deref().unwrap_or("unknown")
    );
    render(module, tokens, &header)
}

fn render(module: &str, tokens: proc_macro2::TokenStream, prefix: &str) -> Result<String, Error> {
    let file = syn::parse2::<syn::File>(tokens).map_err(|source| Error::Syntax {
        module: module.to_owned(),
        source,
    })?;
    Ok(format!("{prefix}\n{}", prettyplease::unparse(&file)))
}

/// The file (and module) name of the generated error enum (see [`Config::errors`]).
pub const ERRORS_MODULE: &str = "errors";

/// Generates `modules` (every import of each must be among them): returns file name
/// (`<module>.rs`, `mod.rs`, and `errors.rs` if [`Config::errors`]) to file contents.
/// Same input, same bytes.
pub fn generate(
    set: &ApiSet,
    modules: &[&str],
    cfg: &Config,
) -> Result<BTreeMap<String, String>, Error> {
    let mut mods: Vec<String> = modules.iter().map(|m| (*m).to_owned()).collect();
    mods.sort();
    mods.dedup();
    for m in &mods {
        if set.get(m).is_none() {
            return Err(Error::MissingModule {
                module: m.clone(),
                imported_by: None,
            });
        }
        for i in set.import_closure(m) {
            if !mods.iter().any(|x| x == i) {
                return Err(Error::MissingModule {
                    module: i.to_owned(),
                    imported_by: Some(m.clone()),
                });
            }
        }
        if let Some(f) = set.get(m) {
            for i in &f.imports {
                if set.get(i).is_none() {
                    return Err(Error::MissingModule {
                        module: i.clone(),
                        imported_by: Some(m.clone()),
                    });
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for m in &mods {
        out.insert(format!("{m}.rs"), generate_module(set, m, cfg)?);
    }
    if cfg.errors {
        if mods.iter().any(|m| m == ERRORS_MODULE) {
            return Err(Error::Unsupported {
                file: format!("{ERRORS_MODULE}.api.json"),
                item: format!("module {ERRORS_MODULE}"),
                reason: "the name is taken by the generated error enum".into(),
            });
        }
        out.insert(
            format!("{ERRORS_MODULE}.rs"),
            generate_errors(&errors::parse_errno_table(errors::API_ERRNO)?)?,
        );
    }
    let tokens = emit::emit_mod(set, cfg, &mods)?;
    let header = "//! Generated message modules, one per `.api.json` file.\n//!\n//! Generated by `cargo xtask codegen`, do not edit.\n";
    out.insert("mod.rs".to_owned(), render("mod", tokens, header)?);
    Ok(out)
}

/// Renders the error module from `entries` (see [`errors`]); the text starts with the
/// "generated, do not edit" line.
pub fn generate_errors(entries: &[errors::ErrnoEntry]) -> Result<String, Error> {
    let header = "//! VPP's API errors, from the table in `vpp-binapi-gen/data/api_errno.txt`.\n//!\n//! Generated by `cargo xtask codegen`, do not edit.\n";
    render(ERRORS_MODULE, errors::emit_errors(entries), header)
}

/// One line per message of `module`: name, CRC, `name_crc`, header kind; sorted by name.
pub fn message_list(set: &ApiSet, module: &str) -> Result<Vec<MessageSummary>, Error> {
    let f = set.get(module).ok_or_else(|| Error::MissingModule {
        module: module.to_owned(),
        imported_by: None,
    })?;
    let mut v: Vec<MessageSummary> = f
        .messages
        .iter()
        .map(|m| MessageSummary {
            name: m.name.clone(),
            crc: m.crc,
            header: emit::classify(&m.fields).0.name(),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// A message's identity, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSummary {
    /// The message name.
    pub name: String,
    /// The (verified) CRC.
    pub crc: u32,
    /// The header kind: `request`, `reply`, `event` or `other`.
    pub header: &'static str,
}

impl MessageSummary {
    /// `name_crc` as in VPP's message table.
    pub fn name_crc(&self) -> String {
        format!("{}_{:08x}", self.name, self.crc)
    }
}

#[cfg(test)]
mod tests;
