//! Errors reported by the generator.

use std::path::PathBuf;

/// Everything that can go wrong while loading `.api.json` files or generating code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON.
    #[error("{file}: invalid json: {source}")]
    Json {
        /// The file name.
        file: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A file is valid JSON but does not have the `.api.json` shape.
    #[error("{file}: {item}: {reason}")]
    Format {
        /// The file name.
        file: String,
        /// The definition (message, type, field) concerned.
        item: String,
        /// What is wrong.
        reason: String,
    },
    /// A message's CRC in the file differs from the CRC recomputed from its definition.
    #[error(
        "{file}: message {message}: crc mismatch: file says {expected:#010x}, definition gives {computed:#010x}"
    )]
    CrcMismatch {
        /// The file name.
        file: String,
        /// The message name.
        message: String,
        /// The CRC written in the file.
        expected: u32,
        /// The CRC recomputed from the definition.
        computed: u32,
    },
    /// A field refers to a type that no loaded file defines.
    #[error("{file}: {item}: unknown type {type_name}")]
    UnknownType {
        /// The file name.
        file: String,
        /// The definition using the type.
        item: String,
        /// The unresolved type name as written (`vl_api_x_t`).
        type_name: String,
    },
    /// A module (requested, or imported by one) has no `.api.json` file.
    #[error("module {module} not found{}", match .imported_by { Some(m) => format!(" (imported by {m})"), None => String::new() })]
    MissingModule {
        /// The module name.
        module: String,
        /// The module importing it, if any.
        imported_by: Option<String>,
    },
    /// Two `.api.json` files define the same module.
    #[error("module {module} is defined by both {first} and {second}")]
    DuplicateModule {
        /// The module name.
        module: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// A definition cannot be represented by the generated code.
    #[error("{file}: {item}: unsupported: {reason}")]
    Unsupported {
        /// The file name.
        file: String,
        /// The definition concerned.
        item: String,
        /// What is unsupported.
        reason: String,
    },
    /// The generated tokens did not parse as Rust (a generator bug).
    #[error("generated code for {module} does not parse: {source}")]
    Syntax {
        /// The module being generated.
        module: String,
        /// The parse error.
        #[source]
        source: syn::Error,
    },
}
