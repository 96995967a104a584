//! Text strings in raw memory, as `strings(1)` finds them: a sans-IO
//! scanner fed with byte chunks at their addresses. A run of characters
//! that crosses a chunk boundary is found whole, as long as the next chunk
//! continues at the address where the previous one ended; a gap in the
//! addresses (an unreadable page) ends every run.
//!
//! Two encodings, each with its own state:
//! - UTF-8: printable ASCII (0x20–0x7e and tab, as `strings`) plus valid
//!   multi-byte UTF-8 sequences of non-control characters. With
//!   [`Encodings::ascii_only`], only 7-bit ASCII, exactly as `strings -a`.
//! - UTF-16LE: code units of printable ASCII or Latin-1 characters (high
//!   byte zero, as `strings -el`), at even and at odd addresses (two
//!   independent lanes, so a string is found whatever its alignment).
//!
//! The minimum length counts characters. A run longer than
//! [`MAX_CHARS`] characters is reported in pieces of that many, so memory
//! stays bounded whatever the input.

use serde::Serialize;

/// The longest string reported in one piece, in characters.
pub(crate) const MAX_CHARS: usize = 4096;

/// How a string was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// 7-bit ASCII only.
    Ascii,
    /// UTF-8 with at least one multi-byte character.
    Utf8,
    /// UTF-16, little endian.
    Utf16le,
}

impl Encoding {
    /// The name printed and used on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Encoding::Ascii => "ascii",
            Encoding::Utf8 => "utf8",
            Encoding::Utf16le => "utf16le",
        }
    }
}

/// Which encodings to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encodings {
    /// ASCII and (unless `ascii_only`) UTF-8.
    pub utf8: bool,
    /// Only 7-bit ASCII in the UTF-8 lane.
    pub ascii_only: bool,
    /// UTF-16LE.
    pub utf16le: bool,
}

impl Encodings {
    /// Everything: UTF-8 (with ASCII) and UTF-16LE.
    pub const ALL: Encodings = Encodings {
        utf8: true,
        ascii_only: false,
        utf16le: true,
    };

    /// Parses `ascii`, `utf8`, `utf16le` (or `utf16`, `unicode`) or `all`.
    pub fn parse(s: &str) -> Option<Encodings> {
        let none = Encodings {
            utf8: false,
            ascii_only: false,
            utf16le: false,
        };
        Some(match s.to_ascii_lowercase().replace('-', "").as_str() {
            "ascii" => Encodings {
                utf8: true,
                ascii_only: true,
                ..none
            },
            "utf8" => Encodings { utf8: true, ..none },
            "utf16le" | "utf16" | "unicode" => Encodings {
                utf16le: true,
                ..none
            },
            "all" => Encodings::ALL,
            _ => return None,
        })
    }
}

/// One string found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Address of its first byte.
    pub address: u64,
    /// Its encoding.
    pub encoding: Encoding,
    /// The text (printable characters only).
    pub text: String,
}

/// A run of UTF-8 characters being collected.
#[derive(Default)]
struct Utf8Lane {
    start: u64,
    buf: Vec<u8>,
    chars: usize,
    multibyte: bool,
    partial: [u8; 4],
    plen: usize,
    need: usize,
}

/// A run of UTF-16LE code units being collected.
#[derive(Default)]
struct Utf16Lane {
    start: u64,
    text: String,
    chars: usize,
}

/// The scanner. Feed it chunks with [`StringScanner::feed`], then call
/// [`StringScanner::finish`] at the end of each contiguous stretch.
pub struct StringScanner {
    min: usize,
    enc: Encodings,
    utf8: Utf8Lane,
    utf16: [Utf16Lane; 2],
    /// The last byte seen and its address, the low half of a UTF-16 unit.
    pending: Option<(u64, u8)>,
    next: Option<u64>,
}

/// Whether a multi-byte character may be part of a string: not a control
/// character, and not a bidirectional override or isolate, which could
/// make a terminal show the text in another order than it is.
fn shown(c: char) -> bool {
    !c.is_control()
        && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Printable ASCII as `strings` takes it: 0x20–0x7e and tab.
const PRINTABLE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = true;
        b += 1;
    }
    t[b'\t' as usize] = true;
    t
};

fn printable_ascii(b: u8) -> bool {
    PRINTABLE[usize::from(b)]
}

impl StringScanner {
    /// A scanner for strings of at least `min` characters (at least 1).
    pub fn new(min: usize, enc: Encodings) -> StringScanner {
        StringScanner {
            min: min.max(1),
            enc,
            utf8: Utf8Lane::default(),
            utf16: Default::default(),
            pending: None,
            next: None,
        }
    }

    /// Scans `bytes`, which start at `addr`. If `addr` is not where the
    /// previous chunk ended, the runs in progress end first.
    pub fn feed(&mut self, addr: u64, bytes: &[u8], out: &mut impl FnMut(Found)) {
        if self.next.is_some_and(|n| n != addr) {
            self.finish(out);
        }
        if bytes.is_empty() {
            return;
        }
        if self.enc.utf8 {
            self.feed_utf8(addr, bytes, out);
        }
        if self.enc.utf16le {
            self.feed_utf16(addr, bytes, out);
        }
        self.next = addr.checked_add(bytes.len() as u64);
    }

    /// Ends every run in progress, reporting those long enough.
    pub fn finish(&mut self, out: &mut impl FnMut(Found)) {
        let min = self.min;
        end_utf8(&mut self.utf8, min, out);
        for lane in &mut self.utf16 {
            end_utf16(lane, min, out);
        }
        self.pending = None;
        self.next = None;
    }

    fn feed_utf8(&mut self, addr: u64, bytes: &[u8], out: &mut impl FnMut(Found)) {
        let min = self.min;
        let ascii_only = self.enc.ascii_only;
        let l = &mut self.utf8;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let a = addr + i as u64;
            if l.need > 0 {
                if b & 0xC0 == 0x80 {
                    l.partial[l.plen] = b;
                    l.plen += 1;
                    l.need -= 1;
                    if l.need == 0 {
                        let ok = std::str::from_utf8(&l.partial[..l.plen])
                            .ok()
                            .and_then(|s| s.chars().next())
                            .is_some_and(shown);
                        if ok {
                            let p = l.plen;
                            l.buf.extend_from_slice(&l.partial[..p]);
                            l.chars += 1;
                            l.multibyte = true;
                            l.plen = 0;
                            if l.chars >= MAX_CHARS {
                                end_utf8(l, min, out);
                            }
                        } else {
                            l.plen = 0;
                            end_utf8(l, min, out);
                        }
                    }
                    i += 1;
                    continue;
                }
                // A broken sequence ends the run before its lead byte; this
                // byte starts afresh.
                l.need = 0;
                l.plen = 0;
                end_utf8(l, min, out);
            }
            if printable_ascii(b) {
                // The common case: a stretch of ASCII at once.
                let run_end = bytes[i..]
                    .iter()
                    .position(|&c| !printable_ascii(c))
                    .map_or(bytes.len(), |p| i + p);
                let mut j = i;
                while j < run_end {
                    if l.buf.is_empty() {
                        l.start = addr + j as u64;
                    }
                    let take = (run_end - j).min(MAX_CHARS - l.chars);
                    l.buf.extend_from_slice(&bytes[j..j + take]);
                    l.chars += take;
                    j += take;
                    if l.chars >= MAX_CHARS {
                        end_utf8(l, min, out);
                    }
                }
                i = run_end;
                continue;
            }
            let need = match b {
                0xC2..=0xDF => 1,
                0xE0..=0xEF => 2,
                0xF0..=0xF4 => 3,
                _ => 0,
            };
            if need > 0 && !ascii_only {
                if l.buf.is_empty() {
                    l.start = a;
                }
                l.partial[0] = b;
                l.plen = 1;
                l.need = need;
                i += 1;
            } else {
                if l.chars > 0 {
                    end_utf8(l, min, out);
                }
                // Skip what cannot start a character (most of binary data).
                let starts =
                    |c: u8| printable_ascii(c) || (!ascii_only && (0xC2..=0xF4).contains(&c));
                i = bytes[i + 1..]
                    .iter()
                    .position(|&c| starts(c))
                    .map_or(bytes.len(), |p| i + 1 + p);
            }
        }
    }

    fn feed_utf16(&mut self, addr: u64, bytes: &[u8], out: &mut impl FnMut(Found)) {
        let min = self.min;
        let mut prev = self
            .pending
            .filter(|&(pa, _)| pa.checked_add(1) == Some(addr));
        for (i, &b) in bytes.iter().enumerate() {
            let a = addr + i as u64;
            if let Some((pa, lo)) = prev {
                let lane = &mut self.utf16[(pa & 1) as usize];
                let printable = b == 0 && (printable_ascii(lo) || lo >= 0xA0);
                if printable {
                    if lane.chars == 0 {
                        lane.start = pa;
                    }
                    lane.text.push(char::from(lo));
                    lane.chars += 1;
                    if lane.chars >= MAX_CHARS {
                        end_utf16(lane, min, out);
                    }
                } else {
                    end_utf16(lane, min, out);
                }
            }
            prev = Some((a, b));
        }
        self.pending = prev;
    }
}

fn end_utf8(l: &mut Utf8Lane, min: usize, out: &mut impl FnMut(Found)) {
    if l.chars >= min {
        // A copy of exactly the text's size; the run buffer keeps its
        // capacity for the next run.
        let text = String::from_utf8_lossy(&l.buf).into_owned();
        out(Found {
            address: l.start,
            encoding: if l.multibyte {
                Encoding::Utf8
            } else {
                Encoding::Ascii
            },
            text,
        });
    }
    l.buf.clear();
    l.chars = 0;
    l.multibyte = false;
    l.need = 0;
    l.plen = 0;
}

fn end_utf16(l: &mut Utf16Lane, min: usize, out: &mut impl FnMut(Found)) {
    if l.chars >= min {
        out(Found {
            address: l.start,
            encoding: Encoding::Utf16le,
            text: std::mem::take(&mut l.text),
        });
    }
    l.text.clear();
    l.chars = 0;
}

/// Scans one buffer whole (a convenience for tests and small inputs).
pub fn scan(addr: u64, bytes: &[u8], min: usize, enc: Encodings) -> Vec<Found> {
    let mut out = Vec::new();
    let mut s = StringScanner::new(min, enc);
    s.feed(addr, bytes, &mut |f| out.push(f));
    s.finish(&mut |f| out.push(f));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn texts(v: &[Found]) -> Vec<(u64, Encoding, &str)> {
        let mut t: Vec<_> = v
            .iter()
            .map(|f| (f.address, f.encoding, f.text.as_str()))
            .collect();
        t.sort();
        t
    }

    #[test]
    fn ascii_like_strings() {
        let data = b"\x00\x01hello\x00ab\x00world!\xffxyz\tq\n";
        let f = scan(0x1000, data, 4, Encodings::ALL);
        assert_eq!(
            texts(&f),
            vec![
                (0x1002, Encoding::Ascii, "hello"),
                (0x100b, Encoding::Ascii, "world!"),
                (0x1012, Encoding::Ascii, "xyz\tq"),
            ]
        );
    }

    #[test]
    fn utf8_and_broken_sequences() {
        let mut data = b"\x00caf".to_vec();
        data.extend_from_slice("é ünïcode".as_bytes());
        data.extend_from_slice(b"\x00abc\xe2\x82zz\x00");
        let f = scan(0, &data, 4, Encodings::ALL);
        assert_eq!(texts(&f), vec![(1, Encoding::Utf8, "café ünïcode")]);
        // ASCII only cuts at the first multi-byte character.
        let ascii = Encodings::parse("ascii").unwrap();
        let f = scan(0, &data, 3, ascii);
        assert_eq!(
            texts(&f),
            vec![
                (1, Encoding::Ascii, "caf"),
                (12, Encoding::Ascii, "code"),
                (17, Encoding::Ascii, "abc"),
            ]
        );
    }

    #[test]
    fn utf16_at_either_alignment() {
        let mut data = vec![0xffu8];
        data.extend(utf16("Unicode!"));
        data.extend([0xff, 0xff, 0xff]);
        data.extend(utf16("Even"));
        let f = scan(0x2000, &data, 4, Encoding::Utf16le.into_set());
        assert_eq!(
            texts(&f),
            vec![
                (0x2001, Encoding::Utf16le, "Unicode!"),
                (0x2014, Encoding::Utf16le, "Even")
            ]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_strings() {
        let mut data = b"\x01first string\x00".to_vec();
        data.extend(utf16("wide string"));
        data.extend_from_slice("\x00naïve ☃ snow\x00".as_bytes());
        let whole = texts(&scan(0x10, &data, 4, Encodings::ALL))
            .into_iter()
            .map(|(a, e, t)| (a, e, t.to_string()))
            .collect::<Vec<_>>();
        assert_eq!(whole.len(), 3, "{whole:?}");
        for cut in 0..=data.len() {
            for cut2 in cut..=data.len() {
                let mut out = Vec::new();
                let mut s = StringScanner::new(4, Encodings::ALL);
                s.feed(0x10, &data[..cut], &mut |f| out.push(f));
                s.feed(0x10 + cut as u64, &data[cut..cut2], &mut |f| out.push(f));
                s.feed(0x10 + cut2 as u64, &data[cut2..], &mut |f| out.push(f));
                s.finish(&mut |f| out.push(f));
                let got: Vec<_> = texts(&out)
                    .into_iter()
                    .map(|(a, e, t)| (a, e, t.to_string()))
                    .collect();
                assert_eq!(got, whole, "cuts at {cut}, {cut2}");
            }
        }
    }

    #[test]
    fn a_gap_in_addresses_ends_runs() {
        let mut out = Vec::new();
        let mut s = StringScanner::new(4, Encodings::ALL);
        s.feed(0x1000, b"\x00abcdef", &mut |f| out.push(f));
        s.feed(0x3000, b"ghij\x00", &mut |f| out.push(f));
        s.finish(&mut |f| out.push(f));
        assert_eq!(
            texts(&out),
            vec![
                (0x1001, Encoding::Ascii, "abcdef"),
                (0x3000, Encoding::Ascii, "ghij")
            ]
        );
    }

    #[test]
    fn long_runs_come_in_pieces() {
        let data = vec![b'a'; MAX_CHARS * 2 + 10];
        let f = scan(0, &data, 4, Encodings::parse("ascii").unwrap());
        let lens: Vec<(u64, usize)> = f.iter().map(|f| (f.address, f.text.len())).collect();
        assert_eq!(
            lens,
            vec![
                (0, MAX_CHARS),
                (MAX_CHARS as u64, MAX_CHARS),
                (2 * MAX_CHARS as u64, 10)
            ]
        );
    }

    #[test]
    fn bidi_overrides_end_a_string() {
        let f = scan(0, "abcd\u{202e}efgh".as_bytes(), 4, Encodings::ALL);
        assert_eq!(
            texts(&f),
            vec![(0, Encoding::Ascii, "abcd"), (7, Encoding::Ascii, "efgh")]
        );
    }

    #[test]
    fn minimum_length_counts_characters() {
        let f = scan(0, "\x00ééé\x00".as_bytes(), 3, Encodings::ALL);
        assert_eq!(texts(&f), vec![(1, Encoding::Utf8, "ééé")]);
        assert!(scan(0, "\x00ééé\x00".as_bytes(), 4, Encodings::ALL).is_empty());
    }

    impl Encoding {
        fn into_set(self) -> Encodings {
            Encodings::parse(self.id()).unwrap()
        }
    }
}
