//! Arbitrary bytes decoded as a known message chosen by the first two bytes (an index into the
//! registry `vpp_binapi::api::MESSAGES`). Decoding must never panic; whatever decodes must
//! re-encode to a body of the same length whose re-decoding encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vpp_binapi::api::MESSAGES;

fuzz_target!(|data: &[u8]| {
    let Some((sel, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let info = &MESSAGES[usize::from(u16::from_be_bytes(*sel)) % MESSAGES.len()];
    let Ok(msg) = (info.decode_body)(body) else {
        return;
    };
    assert_eq!(msg.name_crc(), info.name_crc);
    let mut again = Vec::new();
    msg.encode_body_dyn(&mut again);
    assert_eq!(
        again.len(),
        body.len(),
        "{}: re-encoded length",
        info.name_crc
    );
    let back = (info.decode_body)(&again).expect("a re-encoded body decodes");
    // compared as bytes, not values: an f64 NaN is carried faithfully but never equals itself
    let mut third = Vec::new();
    back.encode_body_dyn(&mut third);
    assert_eq!(third, again, "{}: re-encoding is not stable", info.name_crc);
});
