//! stat parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::proc::stat;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = stat::parse(data) {
        let _ = s.is_kernel_thread();
    }
});
