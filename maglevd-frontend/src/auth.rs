//! Basic auth for `/admin/` and the CSRF token of admin POSTs. Secrets are compared in
//! constant time (for equal lengths; a length mismatch is answered just as slowly).

use std::fmt;

/// The admin's credentials (from `MAGLEV_FRONTEND_USER` / `MAGLEV_FRONTEND_PASSWORD`).
#[derive(Clone)]
pub struct Credentials {
    user: String,
    /// `Basic <base64(user:password)>`, the header value a browser sends.
    expected: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials for `user` (empty: `admin`) and `password`.
    #[must_use]
    pub fn new(user: &str, password: &str) -> Self {
        let user = if user.is_empty() { "admin" } else { user };
        let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        Self {
            user: user.to_owned(),
            expected: expected.into_bytes(),
        }
    }

    /// The user name.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether an `Authorization` header value carries these credentials.
    #[must_use]
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        authorization.is_some_and(|given| ct_eq(given, &self.expected))
    }
}

/// Compares two secrets in time that depends only on `expected`'s length.
#[must_use]
pub fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(!e) ^ e;
    }
    std::hint::black_box(diff) == 0
}

/// A fresh random token: 32 hex digits.
#[must_use]
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding.
#[must_use]
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn credentials_accept_only_the_exact_header() {
        let c = Credentials::new("ops", "s3cret");
        assert!(c.check(Some(b"Basic b3BzOnMzY3JldA==")));
        assert!(!c.check(Some(b"Basic b3BzOnMzY3JldA")));
        assert!(!c.check(Some(b"Basic b3BzOnMzY3JldA==x")));
        assert!(!c.check(Some(b"Basic b3BzOndyb25n")));
        assert!(!c.check(None));
        assert_eq!(Credentials::new("", "x").user(), "admin");
    }

    #[test]
    fn ct_eq_needs_equal_length_and_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abd", b"abc"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"", b"abc"));
        assert!(!ct_eq(b"abc", b""));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
