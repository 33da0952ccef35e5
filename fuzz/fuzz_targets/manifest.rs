//! The model package manifest parser (`vctts_core::package::Manifest`):
//! parse and validate arbitrary text; a manifest that parses serialises and
//! parses back to itself, and one that validates still validates after the
//! round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vctts_core::package::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Manifest::from_json(text) else {
        return;
    };
    let valid = m.validate().is_ok();
    let _ = m.self_hash();
    let again = Manifest::from_json(&m.to_json()).expect("a parsed manifest parses after a round trip");
    assert_eq!(again, m);
    assert_eq!(again.validate().is_ok(), valid);
});
