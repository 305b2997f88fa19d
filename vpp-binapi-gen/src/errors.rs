//! VPP's API error table (`vnet/api_errno.h`) and the `ApiError` enum generated from it.
//!
//! The `.api.json` files do not carry the meaning of a reply's `retval`; VPP keeps it in C.
//! This crate keeps the facts (value, name, message) in its own data file,
//! `data/api_errno.txt` ([`API_ERRNO`]), which [`parse_errno_table`] reads and
//! [`generate_errors`](crate::generate_errors) turns into a Rust module.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::Error;

/// The error table this crate ships, in its own text format (see the file's header).
pub const API_ERRNO: &str = include_str!("../data/api_errno.txt");

/// The file name [`API_ERRNO`] is reported under in errors.
const TABLE_FILE: &str = "api_errno.txt";

/// The prefix of every error's C name.
pub const C_PREFIX: &str = "VNET_API_ERROR_";

/// One row of the error table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrnoEntry {
    /// The `retval` value (never 0, which is success).
    pub value: i32,
    /// The name without [`C_PREFIX`], e.g. `NO_SUCH_ENTRY`.
    pub name: String,
    /// VPP's message, e.g. `No such entry`.
    pub message: String,
}

impl ErrnoEntry {
    /// The Rust variant name: `NO_SUCH_ENTRY` becomes `NoSuchEntry`.
    pub fn variant(&self) -> String {
        self.name
            .split('_')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let lower = p.to_ascii_lowercase();
                let mut cs = lower.chars();
                cs.next().map_or_else(String::new, |c| {
                    c.to_ascii_uppercase().to_string() + cs.as_str()
                })
            })
            .collect()
    }

    /// The C name, e.g. `VNET_API_ERROR_NO_SUCH_ENTRY`.
    pub fn c_name(&self) -> String {
        format!("{C_PREFIX}{}", self.name)
    }
}

/// The longest message accepted (a guard against a corrupt table).
const MAX_MESSAGE: usize = 200;

/// Parses an error table: one `value NAME message...` line per error; `#` comments and blank
/// lines are skipped. Refuses a value of 0, a name that is not `[A-Z0-9_]+`, an empty message,
/// and duplicate values, names or variant names.
pub fn parse_errno_table(text: &str) -> Result<Vec<ErrnoEntry>, Error> {
    let bad = |line: usize, reason: String| Error::Format {
        file: TABLE_FILE.to_owned(),
        item: format!("line {line}"),
        reason,
    };
    let mut out: Vec<ErrnoEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (value, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(line_no, "expected `value NAME message`".to_owned()))?;
        let (name, message) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(line_no, "expected `value NAME message`".to_owned()))?;
        let message = message.trim();
        let value: i32 = value
            .parse()
            .map_err(|_| bad(line_no, format!("value {value:?} is not an i32")))?;
        if value == 0 {
            return Err(bad(line_no, "value 0 is success, not an error".to_owned()));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            || !name.starts_with(|c: char| c.is_ascii_uppercase())
        {
            return Err(bad(
                line_no,
                format!("name {name:?} is not [A-Z][A-Z0-9_]*"),
            ));
        }
        if message.is_empty() || message.len() > MAX_MESSAGE {
            return Err(bad(
                line_no,
                format!("message must be 1 to {MAX_MESSAGE} bytes"),
            ));
        }
        let entry = ErrnoEntry {
            value,
            name: name.to_owned(),
            message: message.to_owned(),
        };
        if entry.variant() == "Unknown" {
            return Err(bad(line_no, "name UNKNOWN is reserved".to_owned()));
        }
        if let Some(prev) = out.iter().find(|e| {
            e.value == entry.value || e.name == entry.name || e.variant() == entry.variant()
        }) {
            return Err(bad(
                line_no,
                format!(
                    "{} ({}) clashes with {} ({})",
                    entry.name, entry.value, prev.name, prev.value
                ),
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Emits the `errors` module (without its leading `//!` lines): the `ApiError` enum with one
/// variant per entry plus `Unknown(i32)`, and its `const` conversions and names.
pub(crate) fn emit_errors(entries: &[ErrnoEntry]) -> TokenStream {
    let variants: Vec<Ident> = entries
        .iter()
        .map(|e| Ident::new(&e.variant(), Span::call_site()))
        .collect();
    let values: Vec<Literal> = entries
        .iter()
        .map(|e| Literal::i32_unsuffixed(e.value))
        .collect();
    let c_names: Vec<String> = entries.iter().map(ErrnoEntry::c_name).collect();
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    let docs = entries
        .iter()
        .map(|e| format!(" `{}` ({}): {}.", e.c_name(), e.value, e.message));
    let count = Literal::usize_unsuffixed(entries.len());
    quote! {
        /// An error VPP answered in a reply's `retval`, named as in VPP's `vnet/api_errno.h`.
        ///
        /// [`ApiError::from_retval`] maps every non-zero `retval` to a variant; a value this
        /// table does not name is kept as [`ApiError::Unknown`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ApiError {
            #(#[doc = #docs] #variants,)*
            /// A non-zero `retval` that the table does not name.
            Unknown(i32),
        }

        impl ApiError {
            /// Every named error, in table order.
            pub const ALL: [ApiError; #count] = [#(Self::#variants),*];

            /// The error a `retval` stands for, or `None` for 0 (success).
            pub const fn from_retval(retval: i32) -> Option<Self> {
                match retval {
                    0 => None,
                    #(#values => Some(Self::#variants),)*
                    v => Some(Self::Unknown(v)),
                }
            }

            /// The `retval` value.
            pub const fn retval(self) -> i32 {
                match self {
                    #(Self::#variants => #values,)*
                    Self::Unknown(v) => v,
                }
            }

            /// The C name, e.g. `VNET_API_ERROR_NO_SUCH_ENTRY`; `None` for an unknown value.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    #(Self::#variants => Some(#c_names),)*
                    Self::Unknown(_) => None,
                }
            }

            /// VPP's message, e.g. `No such entry`; `None` for an unknown value.
            pub const fn message(self) -> Option<&'static str> {
                match self {
                    #(Self::#variants => Some(#messages),)*
                    Self::Unknown(_) => None,
                }
            }
        }
    }
}
