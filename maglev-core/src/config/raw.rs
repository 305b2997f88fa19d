//! The parse stage: serde shapes of `maglev.yaml`, with spans kept for the semantic stage.
//!
//! Every struct denies unknown keys. Values that semantic validation checks are kept loose
//! (integers as `i64`, addresses as strings) so a bad value becomes a located semantic error
//! that names the rule rather than a type error.
//!
//! These shapes are filled either by serde through serde-saphyr (every file, and the only
//! path that reports parse errors) or by the event walker in `fast.rs` (plain files only);
//! both give the same tree, positions included.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// Where a value starts in the source: what the semantic stage needs of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    /// 1-based line.
    pub(crate) line: u64,
    /// 1-based column, in characters.
    pub(crate) column: u64,
    /// Byte offset in the text, when known.
    pub(crate) byte_offset: Option<u64>,
}

impl From<&Location> for At {
    fn from(location: &Location) -> Self {
        Self {
            line: location.line(),
            column: location.column(),
            byte_offset: location.span().byte_offset(),
        }
    }
}

/// A value and where it was written (for an alias, where the alias was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node<T> {
    pub(crate) value: T,
    pub(crate) referenced: At,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Node<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        Ok(Self {
            referenced: At::from(&spanned.referenced),
            value: spanned.value,
        })
    }
}

/// The whole file: one top-level `maglev:` key.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) maglev: Node<Option<RawMaglev>>,
}

/// Everything under `maglev:`.
#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaglev {
    pub(crate) healthchecker: Option<Node<RawHealthChecker>>,
    pub(crate) vpp: Option<Node<RawVpp>>,
    pub(crate) healthchecks: Option<NameMap<RawHealthCheck>>,
    pub(crate) backends: Option<NameMap<RawBackend>>,
    pub(crate) frontends: Option<NameMap<RawFrontend>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawHealthChecker {
    pub(crate) transition_history: Option<Node<i64>>,
    pub(crate) netns: Option<Node<String>>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVpp {
    pub(crate) lb: Option<Node<RawLb>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawLb {
    pub(crate) ipv4_src_address: Option<Node<String>>,
    pub(crate) ipv6_src_address: Option<Node<String>>,
    pub(crate) sticky_buckets_per_core: Option<Node<i64>>,
    pub(crate) flow_timeout: Option<Node<Scalar>>,
    pub(crate) sync_interval: Option<Node<Scalar>>,
    pub(crate) startup_min_delay: Option<Node<Scalar>>,
    pub(crate) startup_max_delay: Option<Node<Scalar>>,
}

/// `healthchecks.<name>.type`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawCheckType {
    Http,
    Https,
    Tcp,
    Icmp,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawHealthCheck {
    #[serde(rename = "type")]
    pub(crate) kind: Node<RawCheckType>,
    pub(crate) port: Option<Node<i64>>,
    pub(crate) interval: Option<Node<Scalar>>,
    pub(crate) fast_interval: Option<Node<Scalar>>,
    pub(crate) down_interval: Option<Node<Scalar>>,
    pub(crate) timeout: Option<Node<Scalar>>,
    pub(crate) rise: Option<Node<i64>>,
    pub(crate) fall: Option<Node<i64>>,
    #[serde(rename = "probe-ipv4-src")]
    pub(crate) probe_ipv4_src: Option<Node<String>>,
    #[serde(rename = "probe-ipv6-src")]
    pub(crate) probe_ipv6_src: Option<Node<String>>,
    pub(crate) params: Option<Node<RawParams>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawParams {
    pub(crate) path: Option<Node<String>>,
    pub(crate) host: Option<Node<String>>,
    pub(crate) response_code: Option<Node<Scalar>>,
    pub(crate) response_regexp: Option<Node<String>>,
    pub(crate) server_name: Option<Node<String>>,
    pub(crate) insecure_skip_verify: Option<Node<bool>>,
    pub(crate) ssl: Option<Node<bool>>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackend {
    pub(crate) address: Node<String>,
    pub(crate) healthcheck: Option<Node<String>>,
    pub(crate) enabled: Option<bool>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawFrontend {
    pub(crate) description: Option<String>,
    pub(crate) address: Node<String>,
    pub(crate) protocol: Option<Node<String>>,
    pub(crate) port: Option<Node<i64>>,
    pub(crate) pools: Option<Node<Vec<Node<RawPool>>>>,
    pub(crate) src_ip_sticky: Option<bool>,
    pub(crate) flush_on_down: Option<bool>,
    pub(crate) new_flows_table_length: Option<Node<i64>>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) name: Option<Node<String>>,
    pub(crate) backends: Option<Node<NameMap<Option<RawMember>>>>,
}

/// A pool membership; `b1: {}` and `b1:` (null) both take every default.
#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMember {
    pub(crate) weight: Option<Node<i64>>,
}

/// An integer or a string: durations (`2s`, or whole seconds where allowed) and response codes
/// (`200`, `200-399`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
                i64::try_from(value)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(value.to_owned()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A YAML mapping from names to values, in file order. The value carries its span; the key
/// stays a plain string so parse errors can name it in their key path.
#[derive(Debug, PartialEq)]
pub(crate) struct NameMap<V>(pub(crate) Vec<(String, Node<V>)>);

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for NameMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = NameMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from names to entries")
            }
            fn visit_unit<E: de::Error>(self) -> Result<NameMap<V>, E> {
                Ok(NameMap(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NameMap<V>, A::Error> {
                // No size hint: the parser's budget bounds the entries, not the hint.
                let mut entries = Vec::new();
                while let Some((name, value)) = map.next_entry()? {
                    entries.push((name, value));
                }
                Ok(NameMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}
