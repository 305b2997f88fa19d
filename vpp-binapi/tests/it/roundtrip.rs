//! Property tests over EVERY generated message type (via `api::visit_messages`):
//!
//! - encode -> decode is the identity: for any value built by `arbitrary` from random bytes,
//!   `decode(encode(x)) == x`, for the body alone and for the whole message with its header;
//! - decode -> encode of valid bytes returns the same bytes: `encode(decode(encode(x)))` is
//!   `encode(x)`, and any random body that decodes re-encodes to a body of the same length that
//!   decodes to the same value (one normalization step at most: a non-zero `bool` byte becomes
//!   1, bytes after a fixed string's NUL become 0; a NaN float keeps its bits).
//!
//! Values that cannot round trip by design are never generated: the `Arbitrary` impls of the
//! `arbitrary` feature produce fixed strings without NUL and of at most `N - 1` bytes, VLAs no
//! longer than their count type allows, and no NaN (see `vpp_binapi::codec::arbitrary_support`).
//! Runs with `cargo test -p vpp-binapi --features arbitrary`.

use std::collections::BTreeSet;

use arbitrary::Unstructured;
use proptest::prelude::*;
use vpp_binapi::codec::{
    MessageVisitor, VisitedMessage, decode_body, decode_message, encode_body_to_vec,
    encode_message_to_vec,
};

/// Checks both properties for each visited type on the same random input.
struct RoundTrip<'a> {
    data: &'a [u8],
    visited: BTreeSet<&'static str>,
    decoded_random: usize,
}

impl MessageVisitor for RoundTrip<'_> {
    fn visit<M: VisitedMessage>(&mut self) {
        self.visited.insert(M::NAME_CRC);

        // encode -> decode identity
        let mut u = Unstructured::new(self.data);
        let x = M::arbitrary(&mut u).expect("arbitrary never runs out: it falls back to defaults");
        let body = encode_body_to_vec(&x);
        assert_eq!(body.len(), x.body_len(), "{}: body_len", M::NAME_CRC);
        let y: M = decode_body(&body)
            .unwrap_or_else(|e| panic!("{}: our own encoding does not decode: {e}", M::NAME_CRC));
        assert_eq!(y, x, "{}: decode(encode(x)) != x", M::NAME_CRC);
        let whole = encode_message_to_vec(&x, 0x1234, 0x8000_0001, 0xdead_beef);
        let (h, z) = decode_message::<M>(&whole)
            .unwrap_or_else(|e| panic!("{}: whole message does not decode: {e}", M::NAME_CRC));
        assert_eq!(z, x, "{}: whole-message round trip", M::NAME_CRC);
        assert_eq!(h.msg_id, 0x1234);
        assert_eq!(whole.len(), M::HEADER.header_len() + body.len());

        // decode -> encode of valid bytes
        assert_eq!(encode_body_to_vec(&y), body, "{}: re-encoding", M::NAME_CRC);

        // random bytes that happen to decode: at most one normalization step
        if let Ok(m) = decode_body::<M>(self.data) {
            self.decoded_random += 1;
            let b2 = encode_body_to_vec(&m);
            assert_eq!(
                b2.len(),
                self.data.len(),
                "{}: length preserved",
                M::NAME_CRC
            );
            let m2: M = decode_body(&b2).expect("re-encoded random body decodes");
            // Random bytes may hold a NaN float, which is never equal to itself: the value is
            // compared through its Debug form (NaN prints as NaN) and, bit for bit, through its
            // encoding.
            assert_eq!(
                format!("{m2:?}"),
                format!("{m:?}"),
                "{}: normalized value is stable",
                M::NAME_CRC
            );
            assert_eq!(
                encode_body_to_vec(&m2),
                b2,
                "{}: normalized bytes are stable",
                M::NAME_CRC
            );
        }
    }
}

fn registry() -> BTreeSet<&'static str> {
    vpp_binapi::api::MESSAGES
        .iter()
        .map(|m| m.name_crc)
        .collect()
}

#[test]
fn the_visitor_covers_every_registered_message() {
    let mut rt = RoundTrip {
        data: &[],
        visited: BTreeSet::new(),
        decoded_random: 0,
    };
    vpp_binapi::api::visit_messages(&mut rt);
    println!(
        "round-trip properties cover {} message types",
        rt.visited.len()
    );
    assert_eq!(rt.visited, registry());
    assert!(rt.visited.len() > 100);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut rt = RoundTrip { data: &data, visited: BTreeSet::new(), decoded_random: 0 };
        vpp_binapi::api::visit_messages(&mut rt);
        prop_assert_eq!(rt.visited.len(), vpp_binapi::api::MESSAGES.len());
    }

    /// Short inputs: many small messages decode from them, exercising the random-bytes branch.
    #[test]
    fn short_random_bodies(data in proptest::collection::vec(any::<u8>(), 0..24)) {
        let mut rt = RoundTrip { data: &data, visited: BTreeSet::new(), decoded_random: 0 };
        vpp_binapi::api::visit_messages(&mut rt);
        // the empty-body messages (e.g. control_ping) decode from an empty input
        if data.is_empty() {
            prop_assert!(rt.decoded_random > 0);
        }
    }
}
