//! Arbitrary bytes as a stats segment image through the safe image parser: never panics, never
//! hangs, never allocates without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vpp_binapi::stats::parse_image(data);
});
