#![no_main]
//! The hsperfdata reader must never panic on a file another process wrote.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmmap_core::hsperfdata::parse(data);
});
