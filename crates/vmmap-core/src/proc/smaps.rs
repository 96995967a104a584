//! Sans-IO parser for `/proc/PID/smaps` (and `maps`, which is smaps
//! without the field lines).
//!
//! The parser is fed bytes in chunks of any size and yields one
//! [`Mapping`] per VMA, so a 44 MB smaps never has to sit in memory whole.
//! Fields are matched by name; names the parser does not know are kept in
//! [`Mapping::unknown`] so a newer kernel loses nothing, and fields an older
//! kernel lacks are marked absent in [`SmapsFields::present`] rather than
//! read as zero.
//!
//! Written by hand rather than with `procfs`: this is the hottest path of a
//! snapshot (60,000 VMAs and 1.5 million lines), `procfs` allocates a
//! `HashMap` per mapping, and it drops the raw `VmFlags` we must keep.

use serde::{Deserialize, Serialize};

use super::ParseError;

/// Known smaps figure lines, in kernel order. The index of each is its bit
/// in [`SmapsFields::present`] and its slot in [`SmapsFields::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Field {
    Size,
    KernelPageSize,
    MmuPageSize,
    Rss,
    Pss,
    PssDirty,
    SharedClean,
    SharedDirty,
    PrivateClean,
    PrivateDirty,
    Referenced,
    Anonymous,
    Ksm,
    LazyFree,
    AnonHugePages,
    ShmemPmdMapped,
    FilePmdMapped,
    SharedHugetlb,
    PrivateHugetlb,
    Swap,
    SwapPss,
    Locked,
    /// Only in `smaps_rollup`.
    PssAnon,
    /// Only in `smaps_rollup`.
    PssFile,
    /// Only in `smaps_rollup`.
    PssShmem,
}

impl Field {
    /// Every field, in slot order.
    pub const ALL: [Field; 25] = [
        Field::Size,
        Field::KernelPageSize,
        Field::MmuPageSize,
        Field::Rss,
        Field::Pss,
        Field::PssDirty,
        Field::SharedClean,
        Field::SharedDirty,
        Field::PrivateClean,
        Field::PrivateDirty,
        Field::Referenced,
        Field::Anonymous,
        Field::Ksm,
        Field::LazyFree,
        Field::AnonHugePages,
        Field::ShmemPmdMapped,
        Field::FilePmdMapped,
        Field::SharedHugetlb,
        Field::PrivateHugetlb,
        Field::Swap,
        Field::SwapPss,
        Field::Locked,
        Field::PssAnon,
        Field::PssFile,
        Field::PssShmem,
    ];

    /// The fields smaps prints per VMA (all but the rollup-only three).
    pub const PER_VMA: &'static [Field] = Field::ALL.split_at(22).0;

    /// The kernel's name for the field, as it appears before the colon.
    pub fn kernel_name(self) -> &'static str {
        match self {
            Field::Size => "Size",
            Field::KernelPageSize => "KernelPageSize",
            Field::MmuPageSize => "MMUPageSize",
            Field::Rss => "Rss",
            Field::Pss => "Pss",
            Field::PssDirty => "Pss_Dirty",
            Field::SharedClean => "Shared_Clean",
            Field::SharedDirty => "Shared_Dirty",
            Field::PrivateClean => "Private_Clean",
            Field::PrivateDirty => "Private_Dirty",
            Field::Referenced => "Referenced",
            Field::Anonymous => "Anonymous",
            Field::Ksm => "KSM",
            Field::LazyFree => "LazyFree",
            Field::AnonHugePages => "AnonHugePages",
            Field::ShmemPmdMapped => "ShmemPmdMapped",
            Field::FilePmdMapped => "FilePmdMapped",
            Field::SharedHugetlb => "Shared_Hugetlb",
            Field::PrivateHugetlb => "Private_Hugetlb",
            Field::Swap => "Swap",
            Field::SwapPss => "SwapPss",
            Field::Locked => "Locked",
            Field::PssAnon => "Pss_Anon",
            Field::PssFile => "Pss_File",
            Field::PssShmem => "Pss_Shmem",
        }
    }

    /// Looks a field up by its kernel name.
    pub fn from_kernel_name(name: &[u8]) -> Option<Field> {
        // A match on the byte string compiles to a length switch followed by
        // a few comparisons: much cheaper than hashing on this hot path.
        Some(match name {
            b"Size" => Field::Size,
            b"KernelPageSize" => Field::KernelPageSize,
            b"MMUPageSize" => Field::MmuPageSize,
            b"Rss" => Field::Rss,
            b"Pss" => Field::Pss,
            b"Pss_Dirty" => Field::PssDirty,
            b"Shared_Clean" => Field::SharedClean,
            b"Shared_Dirty" => Field::SharedDirty,
            b"Private_Clean" => Field::PrivateClean,
            b"Private_Dirty" => Field::PrivateDirty,
            b"Referenced" => Field::Referenced,
            b"Anonymous" => Field::Anonymous,
            b"KSM" => Field::Ksm,
            b"LazyFree" => Field::LazyFree,
            b"AnonHugePages" => Field::AnonHugePages,
            b"ShmemPmdMapped" => Field::ShmemPmdMapped,
            b"FilePmdMapped" => Field::FilePmdMapped,
            b"Shared_Hugetlb" => Field::SharedHugetlb,
            b"Private_Hugetlb" => Field::PrivateHugetlb,
            b"Swap" => Field::Swap,
            b"SwapPss" => Field::SwapPss,
            b"Locked" => Field::Locked,
            b"Pss_Anon" => Field::PssAnon,
            b"Pss_File" => Field::PssFile,
            b"Pss_Shmem" => Field::PssShmem,
            _ => return None,
        })
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The `kB` figures of one smaps record (or of `smaps_rollup`), in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmapsFields {
    /// Bit `Field as u32` is set when the kernel printed that field.
    pub(crate) present: u32,
    /// Values in bytes, indexed by `Field as usize`.
    pub(crate) values: [u64; 25],
}

impl SmapsFields {
    /// The value of a field in bytes, or `None` when the kernel did not
    /// print it (an older kernel, or a rollup-only field).
    pub fn get(&self, f: Field) -> Option<u64> {
        self.has(f).then(|| self.values[f as usize])
    }

    /// The value of a field in bytes, zero when absent.
    #[inline]
    pub fn bytes(&self, f: Field) -> u64 {
        self.values[f as usize]
    }

    /// Whether the kernel printed this field.
    #[inline]
    pub fn has(&self, f: Field) -> bool {
        self.present & f.bit() != 0
    }

    /// Sets a field's value and marks it present.
    #[inline]
    pub fn set(&mut self, f: Field, bytes: u64) {
        self.values[f as usize] = bytes;
        self.present |= f.bit();
    }

    /// Adds another set of figures into this one; a field is present in the
    /// sum if it is present in either side.
    pub fn add(&mut self, other: &SmapsFields) {
        for (a, b) in self.values.iter_mut().zip(other.values.iter()) {
            *a = a.saturating_add(*b);
        }
        self.present |= other.present;
    }
}

/// A field line the parser did not recognise, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownField {
    /// Text before the colon.
    pub name: Box<str>,
    /// Text after the colon, trimmed.
    pub value: Box<str>,
}

/// One VMA as the kernel printed it: the header line of `maps` plus, for
/// smaps, its figure lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `rwxp`/`rwxs` as printed.
    pub perms: [u8; 4],
    /// File offset in bytes.
    pub offset: u64,
    /// Device major number.
    pub dev_major: u32,
    /// Device minor number.
    pub dev_minor: u32,
    /// Inode number (0 for anonymous memory).
    pub inode: u64,
    /// Path or pseudo-name (`[heap]`, `[anon:name]`, …), empty if none.
    /// Kept as the kernel printed it, including a ` (deleted)` suffix.
    pub path: Box<str>,
    /// The figures, in bytes.
    pub fields: SmapsFields,
    /// `THPeligible`, when printed.
    pub thp_eligible: Option<bool>,
    /// `ProtectionKey`, when printed (x86 protection keys).
    pub protection_key: Option<u32>,
    /// The `VmFlags` line as printed, trimmed. Empty before Linux 3.8.
    pub vm_flags: Box<str>,
    /// Field lines not recognised, kept in order.
    pub unknown: Vec<UnknownField>,
}

impl Mapping {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// Receives parsed mappings.
pub(crate) trait Sink {
    /// One finished mapping.
    fn mapping(&mut self, m: Mapping);
}

impl<F: FnMut(Mapping)> Sink for F {
    fn mapping(&mut self, m: Mapping) {
        self(m)
    }
}

/// Longest line accepted: a header line is at most about 100 bytes plus
/// a path of at most `PATH_MAX` (4096) bytes, which the kernel may print
/// with escapes (`\012` for a newline: four bytes for one). Longer input
/// is not smaps, and is refused before it is held in memory.
pub(crate) const MAX_LINE: usize = 64 << 10;

/// Most field lines of one mapping that the parser does not know (kept in
/// [`Mapping::unknown`]): Linux 6.18 prints 25 known ones; more unknown
/// ones than this is not a newer kernel.
pub const MAX_UNKNOWN: usize = 64;

/// Incremental smaps/maps parser: feed it bytes with [`SmapsParser::feed`],
/// collect mappings, and call [`SmapsParser::finish`] at end of input.
#[derive(Debug, Default)]
pub struct SmapsParser {
    /// An incomplete trailing line from the previous chunk.
    carry: Vec<u8>,
    current: Option<Mapping>,
    /// The address range of the last header, which the next must follow.
    prev: Option<(u64, u64)>,
    line_no: u64,
    /// The index in [`Field::PER_VMA`] of the figure line expected next:
    /// the kernel prints them in that order.
    next: usize,
    /// A mapping did not follow the one before it (see [`Self::torn`]).
    torn: bool,
}

impl SmapsParser {
    /// A parser at the start of input.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the input failed because a mapping overlapped or came
    /// before the one printed before it. The kernel prints smaps a page at
    /// a time and lets the process run in between: a mapping that grew or
    /// merged meanwhile is printed again from where the last page ended
    /// (a live Chromium did so), so a reader of a live process reads it
    /// again; in a file it is damage.
    pub fn torn(&self) -> bool {
        self.torn
    }

    /// Parses every complete line in `chunk`, pushing each finished mapping
    /// into `out`. A partial line at the end is kept for the next call.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Mapping>) -> Result<(), ParseError> {
        self.feed_with(chunk, &mut |m| out.push(m))
    }

    /// [`SmapsParser::feed`] handing each finished mapping to `out`.
    pub(crate) fn feed_with(
        &mut self,
        mut chunk: &[u8],
        out: &mut impl Sink,
    ) -> Result<(), ParseError> {
        if !self.carry.is_empty() {
            match super::find_byte(b'\n', chunk) {
                None => {
                    self.carry_over(chunk)?;
                    return Ok(());
                }
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..nl]);
                    self.line(&line, out)?;
                    line.clear();
                    self.carry = line;
                    chunk = &chunk[nl + 1..];
                }
            }
        }
        let mut pos = 0;
        while pos < chunk.len() {
            let rest = &chunk[pos..];
            // Most lines (22 of the 25 of each mapping) are a known figure
            // in the kernel's own layout, taken in one pass that also finds
            // the end of the line; the rest, and anything unusual, go the
            // general way (which reports the errors).
            if let Some(cur) = self.current.as_mut() {
                if let Some((f, bytes, len)) =
                    expected_figure(rest, self.next).or_else(|| known_figure(rest))
                {
                    self.next = f as usize + 1;
                    self.line_no += 1;
                    cur.fields.set(f, bytes);
                    pos += len;
                    continue;
                }
            }
            let Some(nl) = super::find_byte(b'\n', rest) else {
                break;
            };
            self.line(&rest[..nl], out)?;
            pos += nl + 1;
        }
        self.carry_over(&chunk[pos..])
    }

    /// Keeps the start of a line for the next chunk, up to [`MAX_LINE`].
    fn carry_over(&mut self, part: &[u8]) -> Result<(), ParseError> {
        if self.carry.len() + part.len() > MAX_LINE {
            return Err(self.too_long(self.line_no + 1));
        }
        self.carry.extend_from_slice(part);
        Ok(())
    }

    fn too_long(&self, line_no: u64) -> ParseError {
        ParseError::new(
            "smaps",
            line_no,
            format!("the line is longer than {MAX_LINE} bytes, which no kernel prints"),
        )
    }

    /// Ends the input: parses a last line without newline and emits the
    /// last mapping.
    pub fn finish(self, out: &mut Vec<Mapping>) -> Result<(), ParseError> {
        self.finish_with(&mut |m| out.push(m))
    }

    /// [`SmapsParser::finish`] handing the mapping to `sink`.
    pub(crate) fn finish_with(mut self, out: &mut impl Sink) -> Result<(), ParseError> {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, out)?;
        }
        if let Some(m) = self.current.take() {
            out.mapping(m);
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut impl Sink) -> Result<(), ParseError> {
        self.line_no += 1;
        if line.is_empty() {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            return Err(self.too_long(self.line_no));
        }
        // A header line starts with a hex address; a field line with a
        // capitalised name. Hex digits are lower case in /proc, so the first
        // byte tells them apart.
        let first = line[0];
        if first.is_ascii_digit() || (b'a'..=b'f').contains(&first) {
            let m = parse_header(line).map_err(|msg| self.err(msg))?;
            if let Err(e) = crate::validate::range(self.prev, m.start, m.end) {
                use crate::validate::RangeError;
                self.torn = matches!(
                    e,
                    RangeError::Overlaps { .. } | RangeError::OutOfOrder { .. }
                );
                return Err(ParseError::new(
                    "smaps",
                    self.line_no,
                    format!("mapping {e}"),
                ));
            }
            self.prev = Some((m.start, m.end));
            self.next = 0;
            if let Some(done) = self.current.replace(m) {
                out.mapping(done);
            }
            return Ok(());
        }
        let line_no = self.line_no;
        let Some(cur) = self.current.as_mut() else {
            return Err(ParseError::new(
                "smaps",
                line_no,
                "field line before any mapping header",
            ));
        };
        // The colon and the check of the name in one pass: a name is at
        // most 15 bytes, less than a vector search for the colon costs.
        let mut colon = None;
        let mut plain = true;
        for (i, &c) in line.iter().enumerate() {
            if c == b':' {
                colon = Some(i);
                break;
            }
            plain &= c.is_ascii_alphanumeric() || c == b'_';
        }
        let colon = colon.ok_or_else(|| {
            ParseError::new(
                "smaps",
                line_no,
                "line is neither a mapping header nor a `Name: value` field",
            )
        })?;
        let name = &line[..colon];
        let rest = &line[colon + 1..];
        if name.is_empty() || !plain {
            return Err(ParseError::new(
                "smaps",
                line_no,
                format!(
                    "field name {:?} holds characters no kernel prints in one",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        if let Some(f) = Field::from_kernel_name(name) {
            let kb = parse_kb(rest).ok_or_else(|| {
                ParseError::new(
                    "smaps",
                    line_no,
                    format!(
                        "field {} has no `N kB` value that fits in 64 bits",
                        String::from_utf8_lossy(name)
                    ),
                )
            })?;
            let bytes = kb.checked_mul(1024).ok_or_else(|| {
                ParseError::new(
                    "smaps",
                    line_no,
                    format!(
                        "field {}: {kb} kB is more bytes than fit in 64 bits",
                        String::from_utf8_lossy(name)
                    ),
                )
            })?;
            cur.fields.set(f, bytes);
            return Ok(());
        }
        match name {
            b"VmFlags" => cur.vm_flags = lossy(trim(rest)),
            b"THPeligible" => cur.thp_eligible = parse_u64(trim(rest)).map(|v| v != 0),
            b"ProtectionKey" => {
                cur.protection_key = parse_u64(trim(rest)).and_then(|v| u32::try_from(v).ok())
            }
            _ if cur.unknown.len() >= MAX_UNKNOWN => {
                return Err(ParseError::new(
                    "smaps",
                    line_no,
                    format!(
                        "more than {MAX_UNKNOWN} unknown field lines in one mapping, which no kernel prints"
                    ),
                ))
            }
            _ => cur.unknown.push(UnknownField {
                name: lossy(name),
                value: lossy(trim(rest)),
            }),
        }
        Ok(())
    }

    fn err(&self, msg: &'static str) -> ParseError {
        ParseError::new("smaps", self.line_no, msg)
    }
}

/// Parses a whole smaps or maps text in one call.
pub fn parse(text: &[u8]) -> Result<Vec<Mapping>, ParseError> {
    let mut out = Vec::new();
    let mut p = SmapsParser::new();
    p.feed(text, &mut out)?;
    p.finish(&mut out)?;
    Ok(out)
}

fn lossy(b: &[u8]) -> Box<str> {
    String::from_utf8_lossy(b).into()
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (v, end) = decimal(b, 0)?;
    (end == b.len()).then_some(v)
}

/// The decimal digits of `s` from `i`: their value and the index after
/// them (`i` itself where there are none); `None` if the value overflows.
/// By hand rather than `str::parse`, which wants the number's end found
/// first and UTF-8: this runs for every figure line of smaps.
#[inline(always)]
fn decimal(s: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    while let Some(&c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    Some((v, i))
}

fn parse_hex(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// The first 16 bytes of each line of [`Field::PER_VMA`] as the kernel
/// prints it (`SEQ_PUT_DEC` in `fs/proc/task_mmu.c`): the name and its
/// colon, padded with spaces.
const PADDED: [[u8; 16]; 22] = [
    *b"Size:           ",
    *b"KernelPageSize: ",
    *b"MMUPageSize:    ",
    *b"Rss:            ",
    *b"Pss:            ",
    *b"Pss_Dirty:      ",
    *b"Shared_Clean:   ",
    *b"Shared_Dirty:   ",
    *b"Private_Clean:  ",
    *b"Private_Dirty:  ",
    *b"Referenced:     ",
    *b"Anonymous:      ",
    *b"KSM:            ",
    *b"LazyFree:       ",
    *b"AnonHugePages:  ",
    *b"ShmemPmdMapped: ",
    *b"FilePmdMapped:  ",
    *b"Shared_Hugetlb: ",
    *b"Private_Hugetlb:",
    *b"Swap:           ",
    *b"SwapPss:        ",
    *b"Locked:         ",
];

/// The figure line the kernel prints after field `next` in its own layout
/// (the padded name, the number right-aligned in 8 columns, ` kB`,
/// newline: 28 bytes), checked with two comparisons of fixed width instead
/// of a search for the colon and a look-up of the name. None for anything
/// else, which [`known_figure`] then reads (the same figure: this is a
/// faster path to its result, not a different rule).
#[inline]
fn expected_figure(s: &[u8], next: usize) -> Option<(Field, u64, usize)> {
    let line: &[u8; 28] = s.get(..28)?.try_into().ok()?;
    if &line[24..] != b" kB\n" || line[..16] != *PADDED.get(next)? {
        return None;
    }
    // Spaces only, as `known_figure` skips.
    let pad = line[16..24].iter().take_while(|&&c| c == b' ').count();
    let digits = &line[16 + pad..24];
    if digits.is_empty() {
        return None;
    }
    let mut kb: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        kb = kb * 10 + u64::from(c - b'0');
    }
    Some((Field::PER_VMA[next], kb * 1024, 28))
}

/// A known figure line as the kernel prints it (`Name:`, spaces, the
/// number, ` kB`, newline) at the start of `s`: the field, its value in
/// bytes and the length of the line with its newline. None for any other
/// line, or one whose newline is not in `s`.
#[inline]
fn known_figure(s: &[u8]) -> Option<(Field, u64, usize)> {
    // The longest known name, `Private_Hugetlb`, has 15 bytes.
    let colon = s.iter().take(16).position(|&c| c == b':')?;
    let f = Field::from_kernel_name(&s[..colon])?;
    let mut i = colon + 1;
    while s.get(i) == Some(&b' ') {
        i += 1;
    }
    let start = i;
    let (kb, i) = decimal(s, start)?;
    if i == start || s.get(i..i + 4) != Some(b" kB\n") {
        return None;
    }
    Some((f, kb.checked_mul(1024)?, i + 4))
}

/// `"   1234 kB"` → 1234. One pass, no trimming: 1.3 million calls for
/// 60,000 mappings.
fn parse_kb(rest: &[u8]) -> Option<u64> {
    let mut i = 0;
    while matches!(rest.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let start = i;
    let (v, i) = decimal(rest, start)?;
    if i == start {
        return None;
    }
    match rest[i..].trim_ascii() {
        b"" | b"kB" => Some(v),
        _ => None,
    }
}

/// Parses `start-end perms offset major:minor inode   path`.
fn parse_header(line: &[u8]) -> Result<Mapping, &'static str> {
    let mut it = Fields { s: line };
    let range = it.next().ok_or("missing address range")?;
    let dash = super::find_byte(b'-', range).ok_or("address range has no '-'")?;
    let start = parse_hex(&range[..dash]).ok_or("bad start address")?;
    let end = parse_hex(&range[dash + 1..]).ok_or("bad end address")?;
    let perms_b = it.next().ok_or("missing permissions")?;
    if perms_b.len() != 4 {
        return Err("permissions are not 4 characters");
    }
    let mut perms = [0u8; 4];
    perms.copy_from_slice(perms_b);
    let offset = parse_hex(it.next().ok_or("missing offset")?).ok_or("bad offset")?;
    let dev = it.next().ok_or("missing device")?;
    let colon = super::find_byte(b':', dev).ok_or("device has no ':'")?;
    let dev_major = parse_hex(&dev[..colon]).ok_or("bad device major")?;
    let dev_minor = parse_hex(&dev[colon + 1..]).ok_or("bad device minor")?;
    let inode = parse_u64(it.next().ok_or("missing inode")?).ok_or("bad inode")?;
    // The path is the rest of the line after the padding; it may contain
    // spaces, so it is not split further.
    let path = it.s.trim_ascii_start();
    Ok(Mapping {
        start,
        end,
        perms,
        offset,
        dev_major: u32::try_from(dev_major).map_err(|_| "device major too large")?,
        dev_minor: u32::try_from(dev_minor).map_err(|_| "device minor too large")?,
        inode,
        path: if path.is_empty() {
            Box::from("")
        } else {
            lossy(path)
        },
        ..Mapping::default()
    })
}

/// Splits on runs of spaces, leaving the unsplit rest in `s`.
struct Fields<'a> {
    s: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.s.trim_ascii_start();
        if s.is_empty() {
            self.s = s;
            return None;
        }
        let end = super::find_byte(b' ', s).unwrap_or(s.len());
        self.s = &s[end..];
        Some(&s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_names_are_the_kernels_in_field_order() {
        for (f, padded) in Field::PER_VMA.iter().zip(PADDED) {
            let name = format!("{}:", f.kernel_name());
            assert_eq!(&padded[..name.len()], name.as_bytes());
            assert!(padded[name.len()..].iter().all(|&c| c == b' '));
        }
    }

    #[test]
    fn the_expected_figure_is_what_the_general_path_reads() {
        for line in [
            "Rss:                   8 kB\n",
            "Rss:            12345678 kB\n",
            "Rss:           123456789 kB\n",
            "Rss:            \t      8 kB\n",
            "Rss:               8   8 kB\n",
            "Rss:                     kB\n",
            "Rss:                   8 kB ",
            "Rss:                   8 MB\n",
            "Pss:                   8 kB\n",
            "Rss:                   8 kB",
        ] {
            // Where the fast path answers, the general one agrees; where
            // it does not, the general one decides.
            let fast = expected_figure(line.as_bytes(), Field::Rss as usize);
            if fast.is_some() {
                assert_eq!(fast, known_figure(line.as_bytes()), "{line:?}");
            }
        }
        assert_eq!(
            expected_figure(b"Rss:                   8 kB\n", Field::Rss as usize),
            Some((Field::Rss, 8192, 28))
        );
    }

    const ONE: &str = "\
561dab7a6000-561dab7a8000 r--p 00000000 fe:00 247282                     /usr/bin/head
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   8 kB
Pss:                   8 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         8 kB
Private_Dirty:         0 kB
Referenced:            8 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd mr mw me 
7ffd11000000-7ffd11002000 rw-p 00000000 00:00 0 
Size:                  8 kB
Rss:                   4 kB
";

    #[test]
    fn parses_header_and_fields() {
        let m = parse(ONE.as_bytes()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].start, 0x561dab7a6000);
        assert_eq!(m[0].end, 0x561dab7a8000);
        assert_eq!(&m[0].perms, b"r--p");
        assert_eq!(
            (m[0].dev_major, m[0].dev_minor, m[0].inode),
            (0xfe, 0, 247282)
        );
        assert_eq!(&*m[0].path, "/usr/bin/head");
        assert_eq!(m[0].fields.get(Field::Rss), Some(8192));
        assert_eq!(m[0].fields.get(Field::PrivateClean), Some(8192));
        assert_eq!(m[0].thp_eligible, Some(false));
        assert_eq!(&*m[0].vm_flags, "rd mr mw me");
        assert_eq!(&*m[1].path, "");
        assert_eq!(m[1].fields.get(Field::Rss), Some(4096));
        assert_eq!(
            m[1].fields.get(Field::Pss),
            None,
            "absent field is not zero"
        );
    }

    #[test]
    fn any_chunking_gives_the_same_result() {
        let whole = parse(ONE.as_bytes()).unwrap();
        for size in [1, 2, 3, 7, 64, 100] {
            let mut out = Vec::new();
            let mut p = SmapsParser::new();
            for c in ONE.as_bytes().chunks(size) {
                p.feed(c, &mut out).unwrap();
            }
            p.finish(&mut out).unwrap();
            assert_eq!(out, whole, "chunk size {size}");
        }
    }

    /// The one-pass reading of the kernel's own layout and the general
    /// path agree: other spacing is read the same, and bad values are
    /// refused the same, with their line numbers.
    #[test]
    fn figures_in_any_layout_read_alike() {
        let h = "00400000-00401000 r-xp 00000000 08:01 12 /bin/x\n";
        let kernel = parse(
            format!("{h}Rss:                  12 kB\nPrivate_Hugetlb:       0 kB\n").as_bytes(),
        )
        .unwrap();
        for other in [
            "Rss:\t12 kB\nPrivate_Hugetlb: 0 kB",
            "Rss: 12 kB \nPrivate_Hugetlb:0kB\n",
            "Rss:12 kB\nPrivate_Hugetlb:  0  kB\n",
        ] {
            assert_eq!(
                parse(format!("{h}{other}").as_bytes()).unwrap(),
                kernel,
                "{other:?}"
            );
        }
        for (bad, line) in [
            ("Rss: 18014398509481984 kB\n", 2),
            ("Rss: 184467440737095516160 kB\n", 2),
            ("Size: 4 kB\nRss: x kB\n", 3),
            ("Rss: kB\n", 2),
        ] {
            let e = parse(format!("{h}{bad}").as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{bad:?}: {e}");
        }
    }

    #[test]
    fn keeps_unknown_fields_and_protection_key() {
        let t = "00400000-00401000 r-xp 00000000 08:01 12 /bin/x\nRss: 4 kB\nFuture_Field:   12 kB\nProtectionKey:         3\nVmFlags: rd ex mr mw me zz\n";
        let m = parse(t.as_bytes()).unwrap();
        assert_eq!(
            m[0].unknown,
            vec![UnknownField {
                name: "Future_Field".into(),
                value: "12 kB".into()
            }]
        );
        assert_eq!(m[0].protection_key, Some(3));
        assert_eq!(&*m[0].vm_flags, "rd ex mr mw me zz");
    }

    #[test]
    fn path_with_spaces_and_deleted_suffix() {
        let t = "7f0000000000-7f0000001000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)\n7f0000001000-7f0000002000 rw-s 00000000 00:05 77 /tmp/my file (deleted)\n";
        let m = parse(t.as_bytes()).unwrap();
        assert_eq!(&*m[0].path, "/dev/zero (deleted)");
        assert_eq!(&*m[1].path, "/tmp/my file (deleted)");
    }

    /// What a live Chromium's smaps once held: a mapping that grew while
    /// the kernel printed the text, printed again from the same start.
    /// That (and a mapping out of order) is a torn read, to be read again;
    /// a range no kernel prints is not.
    #[test]
    fn a_mapping_printed_again_after_it_grew_is_a_torn_read() {
        let torn = |t: &str| {
            let mut p = SmapsParser::new();
            assert!(p.feed(t.as_bytes(), &mut Vec::new()).is_err(), "{t}");
            p.torn()
        };
        let grew = "2d4400e04000-2d4400ec4000 rw-p 00000000 00:00 0\n2d4400e04000-2d4400f50000 rw-p 00000000 00:00 0\n";
        assert!(torn(grew));
        assert!(torn(
            "00400000-00401000 r-xp 0 08:01 12\n00300000-00301000 r--p 0 08:01 12\n"
        ));
        assert!(!torn("00402000-00401000 r--p 0 08:01 12\n"));
        assert!(!torn("00400000-00401000 r-xp 0 08:01 12\nRss: x kB\n"));
    }

    #[test]
    fn impossible_or_unbounded_input_is_refused_with_its_line() {
        let h = "00400000-00401000 r-xp 00000000 08:01 12 /bin/x\n";
        let line_of = |t: &[u8]| parse(t).unwrap_err().line;
        // Out of order, overlapping, backwards, empty.
        let t = format!("{h}00300000-00301000 r--p 0 08:01 12\n");
        let e = parse(t.as_bytes()).unwrap_err();
        assert!(e.line == 2 && e.message.contains("address order"), "{e}");
        let t = format!("{h}00400800-00402000 r--p 0 08:01 12\n");
        assert!(parse(t.as_bytes())
            .unwrap_err()
            .message
            .contains("overlaps"));
        assert!(parse(b"00402000-00401000 r--p 0 08:01 12\n")
            .unwrap_err()
            .message
            .contains("ends before it starts"));
        assert!(parse(b"00402000-00402000 r--p 0 08:01 12\n")
            .unwrap_err()
            .message
            .contains("empty"));
        // A kB figure past 64 bits, a NUL in a field name.
        let t = format!("{h}Rss: 18014398509481984 kB\n");
        assert!(parse(t.as_bytes()).unwrap_err().message.contains("64 bits"));
        let t = format!("{h}R\0ss: 4 kB\n");
        assert_eq!(line_of(t.as_bytes()), 2);
        // A line past the cap, whole or fed in pieces.
        let mut long = h.as_bytes()[..h.len() - 1].to_vec();
        long.resize(MAX_LINE + 1, b'x');
        long.push(b'\n');
        assert!(parse(&long).unwrap_err().message.contains("longer than"));
        let mut p = SmapsParser::new();
        let mut out = Vec::new();
        let e = long
            .chunks(4096)
            .try_for_each(|c| p.feed(c, &mut out))
            .unwrap_err();
        assert_eq!(e.line, 1);
        // Unknown fields past the cap.
        let mut t = h.to_string();
        for i in 0..=MAX_UNKNOWN {
            t += &format!("Future{i}: 1 kB\n");
        }
        let e = parse(t.as_bytes()).unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        assert_eq!(e.line, MAX_UNKNOWN as u64 + 2);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = parse(b"00400000-00401000 r-xp 00000000 08:01 12 /bin/x\nRss: lots\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse(b"Rss: 4 kB\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(parse(b"00400000-003 r-xp 0 08:01 12\n").is_err());
        assert!(parse(b"zz\n").is_err());
    }
}
