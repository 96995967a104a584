//! smaps parser: whole input, and the same input fed in two chunks split at
//! a fuzzer-chosen point (then in small chunks), which must give the same
//! result, error included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::proc::smaps::{self, Mapping, SmapsParser};
use vmmap_core::proc::ParseError;

fn in_chunks(chunks: &[&[u8]]) -> Result<Vec<Mapping>, ParseError> {
    let mut out = Vec::new();
    let mut p = SmapsParser::new();
    for c in chunks {
        p.feed(c, &mut out)?;
    }
    p.finish(&mut out)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the split point; the rest is the text.
    let (split, text) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let whole = smaps::parse(text);
    if let Ok(maps) = &whole {
        // validate::range ran on every header: non-empty, in order, apart.
        for m in maps {
            assert!(m.start < m.end);
            assert!(m.unknown.len() <= smaps::MAX_UNKNOWN);
            let _ = m.size();
        }
        for w in maps.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
    }
    let at = split % (text.len() + 1);
    let (a, b) = text.split_at(at);
    assert_eq!(in_chunks(&[a, b]), whole, "split at {at}");
    let small: Vec<&[u8]> = text.chunks(1 + split % 7).collect();
    assert_eq!(in_chunks(&small), whole, "chunks of {}", 1 + split % 7);
});
