//! The parse stage: serde shapes of `maglev.yaml`, with spans kept for the semantic stage.
//!
//! Every struct denies unknown keys. Values that semantic validation checks are kept loose
//! (integers as `i64`, addresses as strings) so a bad value becomes a located semantic error
//! that names the rule rather than a type error.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// The whole file: one top-level `maglev:` key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) maglev: Spanned<Option<RawMaglev>>,
}

/// Everything under `maglev:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaglev {
    pub(crate) healthchecker: Option<Spanned<RawHealthChecker>>,
    pub(crate) vpp: Option<Spanned<RawVpp>>,
    pub(crate) healthchecks: Option<NameMap<RawHealthCheck>>,
    pub(crate) backends: Option<NameMap<RawBackend>>,
    pub(crate) frontends: Option<NameMap<RawFrontend>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawHealthChecker {
    pub(crate) transition_history: Option<Spanned<i64>>,
    pub(crate) netns: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVpp {
    pub(crate) lb: Option<Spanned<RawLb>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawLb {
    pub(crate) ipv4_src_address: Option<Spanned<String>>,
    pub(crate) ipv6_src_address: Option<Spanned<String>>,
    pub(crate) sticky_buckets_per_core: Option<Spanned<i64>>,
    pub(crate) flow_timeout: Option<Spanned<Scalar>>,
    pub(crate) sync_interval: Option<Spanned<Scalar>>,
    pub(crate) startup_min_delay: Option<Spanned<Scalar>>,
    pub(crate) startup_max_delay: Option<Spanned<Scalar>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawHealthCheck {
    #[serde(rename = "type")]
    pub(crate) kind: Spanned<RawCheckType>,
    pub(crate) port: Option<Spanned<i64>>,
    pub(crate) interval: Option<Spanned<Scalar>>,
    pub(crate) fast_interval: Option<Spanned<Scalar>>,
    pub(crate) down_interval: Option<Spanned<Scalar>>,
    pub(crate) timeout: Option<Spanned<Scalar>>,
    pub(crate) rise: Option<Spanned<i64>>,
    pub(crate) fall: Option<Spanned<i64>>,
    #[serde(rename = "probe-ipv4-src")]
    pub(crate) probe_ipv4_src: Option<Spanned<String>>,
    #[serde(rename = "probe-ipv6-src")]
    pub(crate) probe_ipv6_src: Option<Spanned<String>>,
    pub(crate) params: Option<Spanned<RawParams>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawParams {
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) response_code: Option<Spanned<Scalar>>,
    pub(crate) response_regexp: Option<Spanned<String>>,
    pub(crate) server_name: Option<Spanned<String>>,
    pub(crate) insecure_skip_verify: Option<Spanned<bool>>,
    pub(crate) ssl: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackend {
    pub(crate) address: Spanned<String>,
    pub(crate) healthcheck: Option<Spanned<String>>,
    pub(crate) enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawFrontend {
    pub(crate) description: Option<String>,
    pub(crate) address: Spanned<String>,
    pub(crate) protocol: Option<Spanned<String>>,
    pub(crate) port: Option<Spanned<i64>>,
    pub(crate) pools: Option<Spanned<Vec<Spanned<RawPool>>>>,
    pub(crate) src_ip_sticky: Option<bool>,
    pub(crate) flush_on_down: Option<bool>,
    pub(crate) new_flows_table_length: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) backends: Option<Spanned<NameMap<Option<RawMember>>>>,
}

/// A pool membership; `b1: {}` and `b1:` (null) both take every default.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMember {
    pub(crate) weight: Option<Spanned<i64>>,
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
#[derive(Debug)]
pub(crate) struct NameMap<V>(pub(crate) Vec<(String, Spanned<V>)>);

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
