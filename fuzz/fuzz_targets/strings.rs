//! The strings scanner: never panics, and any chunking of the input (the
//! first byte picks two cut points) finds exactly what one pass finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::memory::strings::{scan, Encodings, StringScanner};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let min = usize::from(sel & 7) + 1;
    let enc = match sel >> 6 {
        0 => Encodings::parse("ascii"),
        1 => Encodings::parse("utf8"),
        2 => Encodings::parse("utf16le"),
        _ => Encodings::parse("all"),
    }
    .unwrap_or(Encodings::ALL);
    let addr = 0x7000_0000_0001u64;
    let mut whole = scan(addr, data, min, enc);
    let a = data.len() * usize::from(sel & 0x38) / 0x38;
    let b = a + (data.len() - a) / 2;
    let mut parts = Vec::new();
    let mut s = StringScanner::new(min, enc);
    for (from, to) in [(0, a), (a, b), (b, data.len())] {
        s.feed(addr + from as u64, &data[from..to], &mut |f| parts.push(f));
    }
    s.finish(&mut |f| parts.push(f));
    let key = |f: &vmmap_core::memory::strings::Found| (f.address, f.encoding);
    whole.sort_by_key(key);
    parts.sort_by_key(key);
    assert_eq!(whole, parts);
    for f in &whole {
        assert!(f.address >= addr && f.address < addr + data.len() as u64);
        assert!(!f.text.chars().any(|c| c.is_control() && c != '\t'));
    }
});
