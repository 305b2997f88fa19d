//! Serde support for fixed arrays `[T; N]` of any length (serde derives only `N <= 32`).
//!
//! Used by the generated types with the `serde` feature (`#[serde(with = "...serde_array")]`):
//! an array is written as a sequence of its elements and read back from a sequence of exactly
//! `N` elements. `[u8; N]` (addresses, unions, raw byte arrays) is thus a list of integers.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serializes `a` as a sequence of `N` elements.
pub fn serialize<S: Serializer, T: Serialize, const N: usize>(
    a: &[T; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(a.iter())
}

/// Deserializes a sequence of exactly `N` elements.
pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
    d: D,
) -> Result<[T; N], D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    let len = v.len();
    v.try_into()
        .map_err(|_| D::Error::custom(format_args!("expected an array of {N} elements, got {len}")))
}
