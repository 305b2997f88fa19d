//! `arbitrary` constructors for fields whose arbitrary values would not survive a wire round
//! trip (used by the generated types with the `arbitrary` feature).
//!
//! By design the codec normalizes some values (see [`crate::codec`]): a fixed string
//! `string x[N]` is sent as at most `N - 1` bytes and read up to its first NUL; a VLA longer
//! than its count type can express is cut; `NaN != NaN`. The generated `Arbitrary` impls use
//! these constructors so that every arbitrary value *is* round-trippable, and property tests can
//! assert `decode(encode(x)) == x` exactly.

use arbitrary::{Arbitrary, Result, Unstructured};

/// A string for a fixed `string x[N]` field: no NUL, at most `N - 1` bytes, cut at a character
/// boundary.
pub fn fixed_string<const N: usize>(u: &mut Unstructured<'_>) -> Result<String> {
    let mut s: String = String::arbitrary(u)?
        .chars()
        .filter(|&c| c != '\0')
        .collect();
    let mut len = s.len().min(N.saturating_sub(1));
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    s.truncate(len);
    Ok(s)
}

/// A vector for a VLA whose count type holds at most `MAX`.
pub fn vla<T: for<'a> Arbitrary<'a>, const MAX: u64>(u: &mut Unstructured<'_>) -> Result<Vec<T>> {
    let mut v = Vec::<T>::arbitrary(u)?;
    v.truncate(usize::try_from(MAX).unwrap_or(usize::MAX));
    Ok(v)
}

/// An `f64` that is not NaN (NaN is encoded faithfully but never compares equal).
pub fn f64_not_nan(u: &mut Unstructured<'_>) -> Result<f64> {
    let f = f64::arbitrary(u)?;
    Ok(if f.is_nan() { 0.0 } else { f })
}
