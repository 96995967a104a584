//! Searching memory for a byte string, a hex byte pattern or a regular
//! expression: a sans-IO matcher over chunks that overlap (see
//! [`super::reader::walk`]), so that a match crossing a chunk or page
//! boundary is found, and found once.
//!
//! - A literal (or hex) pattern of `n` bytes needs an overlap of `n - 1`
//!   bytes: any occurrence then lies whole in some chunk, and exactly one
//!   chunk holds it with its end among the new bytes. Found with
//!   `memchr::memmem` (SIMD).
//! - A regular expression (the `regex` crate's bytes API: leftmost-first,
//!   non-overlapping matches) gets an overlap of [`REGEX_WINDOW`] bytes. A
//!   match that crosses a chunk boundary is found whole if it is at most
//!   that long; a longer one is reported cut at the boundary. Empty matches
//!   are never reported. Anchors and `\b` see the chunk, so they can
//!   match at a chunk's edges where the memory does not end.

use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};

/// How far back a regex match may start in the previous chunk and still be
/// found whole (and the longest match guaranteed whole across chunks).
pub(crate) const REGEX_WINDOW: usize = 4096;

/// The longest literal or hex pattern (the overlap, and so the memory
/// budget, grows with it).
pub(crate) const MAX_LITERAL: usize = 64 << 10;

/// Bytes of a match kept for display.
pub(crate) const PREVIEW: usize = 96;

/// A match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Address of its first byte.
    pub address: u64,
    /// Its length in bytes.
    pub len: usize,
    /// Its first bytes (at most [`PREVIEW`]).
    pub bytes: Vec<u8>,
}

enum Kind {
    Literal(Box<memmem::Finder<'static>>),
    Regex(Regex),
}

/// A compiled pattern and the state of one walk.
pub struct Searcher {
    kind: Kind,
    /// End address of the last match reported in this stretch.
    reported_until: u64,
    /// A regex match that reached the end of the last chunk: it may go on
    /// in the next one.
    pending: Option<Match>,
}

/// Parses a hex byte pattern: pairs of hex digits, optionally separated by
/// spaces, colons, commas or `0x` prefixes (`de ad be ef`, `deadbeef`,
/// `0xde,0xad`).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let mut digits = String::new();
    for tok in s.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
        let t = tok
            .strip_prefix("0x")
            .or_else(|| tok.strip_prefix("0X"))
            .unwrap_or(tok);
        digits.push_str(t);
    }
    if digits.is_empty() {
        return Err("the hex pattern is empty".into());
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "the hex pattern {s:?} has an odd number of digits; give whole bytes (de ad be ef)"
        ));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("{:?} in {s:?} is not a hex byte", &digits[i..i + 2]))
        })
        .collect()
}

impl Searcher {
    /// A search for exact bytes.
    pub fn literal(bytes: &[u8]) -> Result<Searcher, String> {
        if bytes.is_empty() {
            return Err("the pattern is empty".into());
        }
        if bytes.len() > MAX_LITERAL {
            return Err(format!(
                "the pattern is {} bytes long; at most {MAX_LITERAL} are allowed",
                bytes.len()
            ));
        }
        Ok(Searcher::new(Kind::Literal(Box::new(
            memmem::Finder::new(bytes).into_owned(),
        ))))
    }

    /// A search for a regular expression (syntax of the `regex` crate;
    /// `(?-u)` for raw bytes), optionally ignoring case.
    pub fn regex(pattern: &str, ignore_case: bool) -> Result<Searcher, String> {
        let re = RegexBuilder::new(pattern)
            .case_insensitive(ignore_case)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Searcher::new(Kind::Regex(re)))
    }

    fn new(kind: Kind) -> Searcher {
        Searcher {
            kind,
            reported_until: 0,
            pending: None,
        }
    }

    /// The overlap the reader must keep between chunks.
    pub(crate) fn overlap(&self) -> usize {
        match &self.kind {
            Kind::Literal(f) => f.needle().len() - 1,
            Kind::Regex(_) => REGEX_WINDOW,
        }
    }

    /// Searches one chunk: `data` starts at `address`; its first
    /// `new_from` bytes are the overlap kept from the previous chunk of the
    /// same stretch (0 when a new stretch starts).
    pub(crate) fn feed(
        &mut self,
        address: u64,
        data: &[u8],
        new_from: usize,
        out: &mut impl FnMut(Match),
    ) {
        if new_from == 0 {
            self.finish(out);
        } else if let Some(p) = self.pending.take() {
            if p.address < address {
                // Too long to be found again: reported cut.
                self.reported_until = p.address + p.len as u64;
                out(p);
            }
        }
        let make = |s: usize, e: usize| Match {
            address: address + s as u64,
            len: e - s,
            bytes: data[s..e.min(s + PREVIEW)].to_vec(),
        };
        match &self.kind {
            Kind::Literal(f) => {
                let n = f.needle().len();
                // From the end of the last match reported (which may lie in
                // the overlap), so that matches never overlap whatever the
                // chunking.
                let from = usize::try_from(self.reported_until.saturating_sub(address))
                    .map_or(data.len(), |f| f.min(data.len()));
                for s in f.find_iter(&data[from..]).map(|s| s + from) {
                    // Only the chunk where it ends among the new bytes.
                    if s + n > new_from {
                        self.reported_until = address + (s + n) as u64;
                        out(make(s, s + n));
                    }
                }
            }
            Kind::Regex(re) => {
                // From the end of the last match reported, so that a match
                // is never reported twice nor cut by one reported earlier.
                let mut from = usize::try_from(self.reported_until.saturating_sub(address))
                    .map_or(data.len(), |f| f.min(data.len()));
                while let Some(m) = re.find_at(data, from) {
                    let (s, e) = (m.start(), m.end());
                    from = if e > s { e } else { e + 1 };
                    if s == e {
                        if from > data.len() {
                            break;
                        }
                        continue;
                    }
                    if e == data.len() && e - s <= REGEX_WINDOW {
                        // It may go on in the next chunk, where it will be
                        // found again from its start.
                        self.pending = Some(make(s, e));
                        break;
                    }
                    self.reported_until = address + e as u64;
                    out(make(s, e));
                }
            }
        }
    }

    /// Ends the current stretch: reports a match held back at its end.
    pub(crate) fn finish(&mut self, out: &mut impl FnMut(Match)) {
        if let Some(p) = self.pending.take() {
            out(p);
        }
        self.reported_until = 0;
    }
}

/// Shows matched bytes as text: printable ASCII as is, `\"` and `\\`
/// escaped, anything else as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Searches `data` in chunks of `chunk` new bytes, as the reader would.
    fn chunked(s: &mut Searcher, data: &[u8], base: u64, chunk: usize) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let ov = s.overlap();
        let mut pos = 0;
        while pos < data.len() {
            let keep = ov.min(pos);
            let end = (pos + chunk).min(data.len());
            s.feed(
                base + (pos - keep) as u64,
                &data[pos - keep..end],
                keep,
                &mut |m| out.push((m.address, m.len)),
            );
            pos = end;
        }
        s.finish(&mut |m| out.push((m.address, m.len)));
        out
    }

    fn haystack() -> Vec<u8> {
        let mut d = vec![0u8; 10_000];
        for (at, text) in [
            (100, &b"needle"[..]),
            (4093, b"needle"),
            (8190, b"SPAN-12345-END"),
            (9990, b"needle"),
        ] {
            d[at..at + text.len()].copy_from_slice(text);
        }
        d
    }

    #[test]
    fn literal_found_once_whatever_the_chunking() {
        let d = haystack();
        for chunk in [1, 2, 3, 5, 7, 64, 4096, 10_000] {
            let mut s = Searcher::literal(b"needle").unwrap();
            assert_eq!(
                chunked(&mut s, &d, 0x1000, chunk),
                vec![(0x1000 + 100, 6), (0x1000 + 4093, 6), (0x1000 + 9990, 6)],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn regex_across_boundaries_found_whole_and_once() {
        let d = haystack();
        for chunk in [1, 3, 4096, 8192, 8195, 10_000] {
            let mut s = Searcher::regex(r"SPAN-[0-9]+-END", false).unwrap();
            assert_eq!(
                chunked(&mut s, &d, 0, chunk),
                vec![(8190, 14)],
                "chunk {chunk}"
            );
            // A greedy match cut by a chunk end is held back and found
            // whole in the next chunk.
            let mut s = Searcher::regex(r"[0-9]+", false).unwrap();
            assert_eq!(
                chunked(&mut s, &d, 0, chunk),
                vec![(8195, 5)],
                "chunk {chunk}"
            );
        }
        let mut s = Searcher::regex("NEEDLE", true).unwrap();
        assert_eq!(chunked(&mut s, &d, 0, 4096).len(), 3);
    }

    #[test]
    fn regex_longer_than_the_window_is_reported_cut() {
        let mut d = vec![b'a'; REGEX_WINDOW * 3];
        d.push(0);
        let mut s = Searcher::regex("a+", false).unwrap();
        let got = chunked(&mut s, &d, 0, REGEX_WINDOW * 2);
        assert_eq!(got[0], (0, REGEX_WINDOW * 2));
        assert_eq!(got.iter().map(|m| m.1).sum::<usize>(), REGEX_WINDOW * 3);
    }

    #[test]
    fn a_new_stretch_does_not_join_the_old_one() {
        let mut s = Searcher::literal(b"abcd").unwrap();
        let mut out = Vec::new();
        s.feed(0x1000, b"xxab", 0, &mut |m| out.push(m.address));
        // Not contiguous (new_from 0): "ab" + "cd" is no match.
        s.feed(0x5000, b"cdxx", 0, &mut |m| out.push(m.address));
        s.finish(&mut |m| out.push(m.address));
        assert!(out.is_empty());
    }

    proptest::proptest! {
        /// Any chunking finds exactly the occurrences a naive scan finds
        /// (non-overlapping, left to right), and a regex finds what one
        /// pass over the whole buffer finds.
        #[test]
        fn chunking_never_changes_the_matches(
            data in proptest::collection::vec(proptest::sample::select(b"ab\x00".to_vec()), 0..300),
            needle in proptest::collection::vec(proptest::sample::select(b"ab".to_vec()), 1..5),
            chunk in 1usize..40,
        ) {
            let mut naive = Vec::new();
            let mut i = 0;
            while i + needle.len() <= data.len() {
                if data[i..i + needle.len()] == needle[..] {
                    naive.push((i as u64, needle.len()));
                    i += needle.len();
                } else {
                    i += 1;
                }
            }
            let mut s = Searcher::literal(&needle).unwrap();
            proptest::prop_assert_eq!(chunked(&mut s, &data, 0, chunk), naive);
            let mut whole = Searcher::regex("a+b?", false).unwrap();
            let one = chunked(&mut whole, &data, 0, data.len().max(1));
            let mut parts = Searcher::regex("a+b?", false).unwrap();
            proptest::prop_assert_eq!(chunked(&mut parts, &data, 0, chunk), one);
        }
    }

    #[test]
    fn hex_patterns() {
        assert_eq!(
            parse_hex("de ad be ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(parse_hex("DEADbeef").unwrap(), vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_hex("0xde,0xad:00").unwrap(), vec![0xde, 0xad, 0]);
        assert!(parse_hex("dea").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("  ").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(escape(b"a\"b\\\x00\xff"), "a\\\"b\\\\\\x00\\xff");
    }
}
