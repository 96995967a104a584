//! The container of a process from its cgroup file, and what is shown and
//! matched of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::container;

fuzz_target!(|data: &[u8]| {
    let _ = container::unified_path(data);
    if let Some(c) = container::from_cgroup(data) {
        let label = c.label();
        let _ = c.matches(&label);
        let _ = c.matches(&c.id);
    }
});
