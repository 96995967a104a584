//! mountinfo parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::proc::mountinfo;

fuzz_target!(|data: &[u8]| {
    let mounts = mountinfo::parse(data);
    assert!(mounts.len() <= data.len());
});
