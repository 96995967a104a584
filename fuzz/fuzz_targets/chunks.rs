//! The glibc chunk walker: never panics, and any chunking of the input
//! (the first byte picks the feed size) gives the same result as one feed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::memory::malloc::ChunkWalker;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let word = if sel & 0x80 != 0 { 4 } else { 8 };
    let base = 0x5555_0000_0000u64;
    let end = base + data.len() as u64;
    let mut whole = ChunkWalker::new(base, end, word);
    whole.feed(base, data);
    let step = usize::from(sel & 0x7f) + 1;
    let mut parts = ChunkWalker::new(base, end, word);
    for (k, c) in data.chunks(step).enumerate() {
        parts.feed(base + (k * step) as u64, c);
    }
    let (a, b) = (whole.finish(), parts.finish());
    assert_eq!(a.is_ok(), b.is_ok());
    if let (Ok(a), Ok(b)) = (a, b) {
        assert_eq!(a, b);
        assert_eq!(a.in_use_bytes + a.free_bytes + a.top_bytes, data.len() as u64);
    }
});
