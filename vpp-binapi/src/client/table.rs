//! VPP's message table (`name_crc` to id) and the compatibility check built on it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The message table VPP sent in `sockclnt_create_reply`: every message it knows, as
/// `name_crc` (for example `control_ping_51077d14`) and the id it assigned at start-up.
#[derive(Debug, Clone, Default)]
pub struct MessageTable {
    by_name_crc: HashMap<Arc<str>, u16>,
    /// name without CRC -> (crc, id); several entries when VPP knows a name twice.
    by_name: HashMap<Arc<str>, Vec<(u32, u16)>>,
    by_id: Vec<Option<Arc<str>>>,
}

impl MessageTable {
    /// Builds a table from `(id, name_crc)` entries.
    pub fn from_entries<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = (u16, S)>,
        S: AsRef<str>,
    {
        let mut t = Self::default();
        for (id, name_crc) in entries {
            let full: Arc<str> = Arc::from(name_crc.as_ref());
            if let Some((name, crc)) = split_name_crc(&full) {
                t.by_name
                    .entry(Arc::from(name))
                    .or_default()
                    .push((crc, id));
            }
            let slot = usize::from(id);
            if t.by_id.len() <= slot {
                t.by_id.resize(slot + 1, None);
            }
            t.by_id[slot] = Some(full.clone());
            t.by_name_crc.insert(full, id);
        }
        t
    }

    /// The id of a message given as `name_crc`.
    pub fn id(&self, name_crc: &str) -> Option<u16> {
        self.by_name_crc.get(name_crc).copied()
    }

    /// The `name_crc` VPP registered under `id`.
    pub fn name(&self, id: u16) -> Option<&str> {
        self.by_id.get(usize::from(id))?.as_deref()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_name_crc.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_name_crc.is_empty()
    }

    /// Checks one message given by name and CRC.
    pub fn check(&self, name: &str, crc: u32) -> CompatStatus {
        if let Some(id) = self.id(&format!("{name}_{crc:08x}")) {
            return CompatStatus::Present { id };
        }
        match self.by_name.get(name).and_then(|v| v.first()) {
            Some((vpp_crc, id)) => CompatStatus::CrcMismatch {
                vpp_crc: *vpp_crc,
                id: *id,
            },
            None => CompatStatus::Missing,
        }
    }

    /// Checks a list of `(name, crc)` pairs.
    pub fn compat(&self, messages: &[(&str, u32)]) -> CompatReport {
        CompatReport {
            entries: messages
                .iter()
                .map(|&(name, crc)| CompatEntry {
                    name: name.to_owned(),
                    crc,
                    status: self.check(name, crc),
                })
                .collect(),
        }
    }
}

/// Splits `name_crc` into name and CRC (eight hex digits).
fn split_name_crc(s: &str) -> Option<(&str, u32)> {
    let (name, crc) = s.rsplit_once('_')?;
    if crc.len() != 8 || !crc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((name, u32::from_str_radix(crc, 16).ok()?))
}

/// Whether VPP knows one message the way this client does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompatStatus {
    /// Known with the same CRC, under this id.
    Present {
        /// Message id.
        id: u16,
    },
    /// VPP does not know a message of that name at all.
    Missing,
    /// VPP knows the name, but with another CRC: the definitions differ.
    CrcMismatch {
        /// The CRC VPP has.
        vpp_crc: u32,
        /// The id VPP gave it.
        id: u16,
    },
}

/// One line of a [`CompatReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatEntry {
    /// Message name.
    pub name: String,
    /// The CRC this client expects.
    pub crc: u32,
    /// What VPP has.
    pub status: CompatStatus,
}

impl fmt::Display for CompatEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{:08x}: ", self.name, self.crc)?;
        match &self.status {
            CompatStatus::Present { id } => write!(f, "present (id {id})"),
            CompatStatus::Missing => f.write_str("missing"),
            CompatStatus::CrcMismatch { vpp_crc, id } => {
                write!(
                    f,
                    "different definition in vpp (crc {vpp_crc:08x}, id {id})"
                )
            }
        }
    }
}

/// Result of a compatibility check over a set of messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompatReport {
    /// One entry per message checked, in the order given.
    pub entries: Vec<CompatEntry>,
}

impl CompatReport {
    /// True when every message is present with the expected CRC.
    pub fn is_compatible(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e.status, CompatStatus::Present { .. }))
    }

    /// The entries that are missing or have another CRC.
    pub fn problems(&self) -> impl Iterator<Item = &CompatEntry> {
        self.entries
            .iter()
            .filter(|e| !matches!(e.status, CompatStatus::Present { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MessageTable {
        MessageTable::from_entries([
            (1u16, "control_ping_51077d14"),
            (2, "lb_conf_56cd3261"),
            (3, "lb_conf_deadbeef"),
            (4, "not_a_name_crc"),
        ])
    }

    #[test]
    fn lookups_both_ways() {
        let t = table();
        assert_eq!(t.len(), 4);
        assert_eq!(t.id("lb_conf_56cd3261"), Some(2));
        assert_eq!(t.name(4), Some("not_a_name_crc"));
        assert_eq!(t.name(5), None);
        assert_eq!(t.name(u16::MAX), None);
    }

    #[test]
    fn check_distinguishes_missing_from_other_crc() {
        let t = table();
        assert_eq!(
            t.check("control_ping", 0x51077d14),
            CompatStatus::Present { id: 1 }
        );
        assert_eq!(
            t.check("control_ping", 0x1),
            CompatStatus::CrcMismatch {
                vpp_crc: 0x51077d14,
                id: 1
            }
        );
        assert_eq!(
            t.check("lb_conf", 0xdeadbeef),
            CompatStatus::Present { id: 3 }
        );
        assert_eq!(t.check("nope", 0x51077d14), CompatStatus::Missing);
        // An entry without a CRC suffix is only reachable by its full key.
        assert_eq!(t.check("not_a_name", 0), CompatStatus::Missing);
    }

    #[test]
    fn report_lines_read_well() {
        let r = table().compat(&[
            ("control_ping", 0x51077d14),
            ("x", 0xab),
            ("control_ping", 0xab),
        ]);
        let lines: Vec<String> = r.entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "control_ping_51077d14: present (id 1)",
                "x_000000ab: missing",
                "control_ping_000000ab: different definition in vpp (crc 51077d14, id 1)",
            ]
        );
    }
}
