#![no_main]
//! The VMMap `.mmp` reader on arbitrary bytes: it must never panic, what
//! it reads has passed `validate::snapshot` (as the native format's
//! snapshots do), and it must write back as a file it reads again the same.

use libfuzzer_sys::fuzz_target;
use vmmap_core::mmp;

fuzz_target!(|data: &[u8]| {
    let Ok(snaps) = mmp::parse(data) else {
        return;
    };
    for s in &snaps {
        assert!(vmmap_core::validate::snapshot(s).is_ok());
    }
    let mut out = Vec::new();
    mmp::write(&snaps.iter().collect::<Vec<_>>(), &mut out).expect("write to memory");
    let again = mmp::parse(&out).expect("vmmap reads what it writes");
    assert_eq!(again.len(), snaps.len());
    for (a, b) in snaps.iter().zip(&again) {
        assert_eq!(a.regions.len(), b.regions.len());
        for (x, y) in a.regions.iter().zip(&b.regions) {
            assert_eq!((x.start, x.end, x.memory_type), (y.start, y.end, y.memory_type));
            assert_eq!(x.sub_blocks.len(), y.sub_blocks.len());
        }
    }
});
