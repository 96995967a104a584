//! task/TID/syscall parser (and cmdline, which is too simple for a target
//! of its own).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::proc::{cmdline, syscall};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = syscall::parse(data) {
        let _ = s.sp();
    }
    let args = cmdline::parse(data);
    assert!(args.len() <= data.len());
});
