#![no_main]
//! The native file loader on arbitrary bytes: it must never panic,
//! whatever it recovers must be a prefix of what it recovers from a longer
//! input, and every snapshot it returns has passed `validate::snapshot`
//! (regions in order, none backwards or overlapping, sums in 64 bits).

use libfuzzer_sys::fuzz_target;
use vmmap_core::format;

fuzz_target!(|data: &[u8]| {
    // Start most inputs with a valid header so the fuzzer reaches chunks.
    let mut bytes = Vec::with_capacity(data.len() + 16);
    if data.first().is_some_and(|b| b & 1 == 0) {
        bytes.extend_from_slice(&format::MAGIC);
        bytes.extend_from_slice(&format::VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0; 6]);
    }
    bytes.extend_from_slice(data);
    if let Ok(whole) = format::load(&bytes) {
        for s in &whole.snapshots {
            assert!(vmmap_core::validate::snapshot(s).is_ok());
        }
        let cut = bytes.len() / 2;
        if let Ok(half) = format::load(&bytes[..cut]) {
            assert!(half.snapshots.len() <= whole.snapshots.len());
            assert_eq!(half.snapshots[..], whole.snapshots[..half.snapshots.len()]);
        }
    }
});
