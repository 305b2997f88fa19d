//! Recomputes message CRCs the way vppapigen does (`foldup_crcs`, VPP protocol notes §1.6).
//!
//! A message's CRC starts as the CRC-32 of the Python `repr` of its field list (without
//! `_vl_msg_id` and without options), then, for every field whose type is `vl_api_*`, in order,
//! chains the CRC of that type's own `repr` and recurses into the type's fields. Enums
//! contribute the `repr` of their `[name, value]` list, aliases the string `[]`.

use std::collections::BTreeMap;

use crate::Error;
use crate::model::{ApiFile, Field, MessageDef, TypeItem, bare_type_name};

const fn make_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = make_table();

/// CRC-32 (IEEE, as zlib's `crc32(data, crc)`), continuing from `crc`.
pub fn crc32(data: &[u8], crc: u32) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn list_repr(fields: &[Field]) -> String {
    let parts: Vec<String> = fields.iter().map(Field::crc_repr).collect();
    format!("[{}]", parts.join(", "))
}

/// Recomputes the CRC of `msg` using the types defined in `file` (which, as vppapigen's JSON
/// backend flattens imports, holds every type the message uses).
pub fn message_crc(file: &ApiFile, msg: &MessageDef) -> Result<u32, Error> {
    let items = file.type_items();
    let crc = crc32(list_repr(&msg.fields).as_bytes(), 0);
    fold(
        file,
        &items,
        &format!("message {}", msg.name),
        &msg.fields,
        crc,
        0,
    )
}

fn fold(
    file: &ApiFile,
    items: &BTreeMap<&str, TypeItem<'_>>,
    item: &str,
    fields: &[Field],
    mut crc: u32,
    depth: u32,
) -> Result<u32, Error> {
    if depth > 64 {
        return Err(Error::Format {
            file: file.file_name.clone(),
            item: item.to_owned(),
            reason: "type definitions nest too deeply (cycle?)".into(),
        });
    }
    for f in fields {
        if !f.ty.starts_with("vl_api_") {
            continue;
        }
        let t = bare_type_name(&f.ty)
            .and_then(|n| items.get(n))
            .ok_or_else(|| Error::UnknownType {
                file: file.file_name.clone(),
                item: format!("{item}.{}", f.name),
                type_name: f.ty.clone(),
            })?;
        match t {
            TypeItem::Struct(d) | TypeItem::Union(d) => {
                crc = crc32(list_repr(&d.fields).as_bytes(), crc);
                crc = fold(
                    file,
                    items,
                    &format!("type {}", d.name),
                    &d.fields,
                    crc,
                    depth + 1,
                )?;
            }
            TypeItem::Enum(e) => {
                let parts: Vec<String> = e
                    .values
                    .iter()
                    .map(|(n, v)| format!("['{n}', {v}]"))
                    .collect();
                crc = crc32(format!("[{}]", parts.join(", ")).as_bytes(), crc);
            }
            TypeItem::Alias(_) => crc = crc32(b"[]", crc),
        }
    }
    Ok(crc)
}

/// Checks every message CRC of `file`; the first mismatch is an [`Error::CrcMismatch`].
pub fn verify_file(file: &ApiFile) -> Result<(), Error> {
    for m in &file.messages {
        let computed = message_crc(file, m)?;
        if computed != m.crc {
            return Err(Error::CrcMismatch {
                file: file.file_name.clone(),
                message: m.name.clone(),
                expected: m.crc,
                computed,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib_check_value() {
        assert_eq!(crc32(b"123456789", 0), 0xcbf4_3926);
        // chaining equals one pass over the concatenation
        assert_eq!(crc32(b"6789", crc32(b"12345", 0)), 0xcbf4_3926);
    }

    #[test]
    fn control_ping_crc_from_repr() {
        assert_eq!(
            crc32(b"[['u32', 'client_index'], ['u32', 'context']]", 0),
            0x5107_7d14
        );
    }
}
