//! Arbitrary text into the YAML config loader: a config or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = maglev_core::config::Config::from_yaml_str("fuzz.yaml", text);
    }
});
