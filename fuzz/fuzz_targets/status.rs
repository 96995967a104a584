//! status parser and its typed accessors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::proc::status;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = status::parse(data) {
        let _ = (s.name(), s.uids(), s.gids());
        let _ = (s.bytes("VmPTE"), s.bytes("VmRSS"), s.number("Threads"));
        let _ = (s.ns_pids(), s.ns_pid());
    }
});
