//! smaps_rollup parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::proc::rollup;
use vmmap_core::proc::smaps::Field;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(f)) = rollup::parse(data) {
        for field in Field::ALL {
            let _ = f.get(field);
        }
    }
});
