//! Sysinternals VMMap's `.mmp` files: XML with `<Snapshot>` elements
//! holding `<Region>` elements, which nest by address range. [`parse`]
//! reads them into [`Snapshot`]s (sans-IO: bytes in); [`write`] writes
//! snapshots in the same schema, which VMMap-reading tools (PerfView)
//! accept. `docs/mmp.md` is the mapping between VMMap's types and columns
//! and ours, and lists what cannot be mapped either way.
//!
//! Region attributes (decimal numbers): `Address`, `Size`, `Commit`,
//! `Blocks`, `PrivateBytes`, `PrivateWS`, `ShareableWS`, `SharedWS`, `Id`
//! (the heap id), `Protection` (a Win32 `PAGE_*` value), `Storage`
//! (`MEM_IMAGE`, `MEM_MAPPED`, `MEM_PRIVATE`), `UseType` (0 Heap, 1
//! Stack, 2 Image, 3 MappedFile, 4 PrivateData, 5 Shareable, 6 Free, 8
//! ManagedHeaps, 10 Unusable), `Type` and `Details` (text). vmmap adds
//! `Perms` (`rw-p`: the Linux permissions, which `Protection` cannot hold
//! exactly) and, on `<Snapshot>`, `Pid`, `Process`, `Time`, `PageTable`,
//! `MinAddress` and `AddressLimit`; other readers ignore attributes they
//! do not know.

use std::borrow::Cow;
use std::io::{self, Write};

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::{Writer, XmlVersion};

use crate::figures::{Column, Figures};
use crate::model::{MemoryType, Perms, Region, Snapshot};
use crate::proc::smaps::{Field, Mapping};
use crate::summary::free_blocks;

/// `UseType` values.
pub(crate) mod use_type {
    /// Heap.
    pub(crate) const HEAP: u32 = 0;
    /// Stack.
    pub(crate) const STACK: u32 = 1;
    /// Image.
    pub(crate) const IMAGE: u32 = 2;
    /// Mapped File.
    pub(crate) const MAPPED_FILE: u32 = 3;
    /// Private Data.
    pub(crate) const PRIVATE_DATA: u32 = 4;
    /// Shareable.
    pub(crate) const SHAREABLE: u32 = 5;
    /// Free.
    pub(crate) const FREE: u32 = 6;
    /// Managed Heap.
    pub(crate) const MANAGED_HEAPS: u32 = 8;
    /// Unusable (free space stranded by Windows' 64 KiB granularity).
    pub(crate) const UNUSABLE: u32 = 10;
}

/// Win32 `PAGE_*` protection values.
pub mod page {
    /// No access.
    pub(crate) const NOACCESS: u32 = 0x01;
    /// Read.
    pub(crate) const READONLY: u32 = 0x02;
    /// Read and write.
    pub(crate) const READWRITE: u32 = 0x04;
    /// Read and copy-on-write.
    pub(crate) const WRITECOPY: u32 = 0x08;
    /// Execute.
    pub(crate) const EXECUTE: u32 = 0x10;
    /// Execute and read.
    pub(crate) const EXECUTE_READ: u32 = 0x20;
    /// Execute, read and write.
    pub(crate) const EXECUTE_READWRITE: u32 = 0x40;
    /// Execute, read and copy-on-write.
    pub(crate) const EXECUTE_WRITECOPY: u32 = 0x80;
}

/// Win32 `MEM_*` storage values.
pub(crate) mod storage {
    /// Free address space.
    pub(crate) const FREE: u32 = 0x1_0000;
    /// Private memory (VirtualAlloc).
    pub(crate) const PRIVATE: u32 = 0x2_0000;
    /// A view of a section: a file or pagefile-backed shared memory.
    pub(crate) const MAPPED: u32 = 0x4_0000;
    /// A view of an executable image.
    pub(crate) const IMAGE: u32 = 0x100_0000;
}

/// Why an `.mmp` file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MmpError {
    /// Not XML, or XML without any `<Snapshot>` or `<Region>`.
    #[error("not a VMMap .mmp file: {0}")]
    NotMmp(String),
    /// The XML is malformed.
    #[error("malformed .mmp XML at byte {offset}: {reason}")]
    Xml {
        /// Where the reader stopped.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `<Region>` cannot be placed or read.
    #[error("bad Region at byte {offset} of the .mmp file: {reason}")]
    Region {
        /// Where the element starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `<Snapshot>` attribute cannot be read, or the snapshot its
    /// regions make is impossible.
    #[error("bad Snapshot at byte {offset} of the .mmp file: {reason}")]
    Snapshot {
        /// Where the element starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The kernel release of an imported snapshot (the file does not say).
pub const IMPORTED_KERNEL: &str = "unknown (imported from a VMMap .mmp file)";

/// The `UseType` of a memory type; Page Table has none (it is not a
/// region in VMMap either).
pub(crate) fn use_type_of(t: MemoryType) -> Option<u32> {
    Some(match t {
        MemoryType::Heap => use_type::HEAP,
        MemoryType::Stack => use_type::STACK,
        MemoryType::Image => use_type::IMAGE,
        MemoryType::MappedFile => use_type::MAPPED_FILE,
        MemoryType::PrivateData => use_type::PRIVATE_DATA,
        MemoryType::Shareable => use_type::SHAREABLE,
        MemoryType::Free => use_type::FREE,
        MemoryType::ManagedHeap => use_type::MANAGED_HEAPS,
        MemoryType::PageTable => return None,
    })
}

/// The memory type of a `UseType`; `None` for Free, Unusable and values
/// VMMap leaves unnamed.
pub(crate) fn memory_type_of(u: u32) -> Option<MemoryType> {
    Some(match u {
        use_type::HEAP => MemoryType::Heap,
        use_type::STACK => MemoryType::Stack,
        use_type::IMAGE => MemoryType::Image,
        use_type::MAPPED_FILE => MemoryType::MappedFile,
        use_type::PRIVATE_DATA => MemoryType::PrivateData,
        use_type::SHAREABLE => MemoryType::Shareable,
        use_type::MANAGED_HEAPS => MemoryType::ManagedHeap,
        _ => return None,
    })
}

fn file_backed(r: &Region) -> bool {
    r.inode != 0 || r.path.starts_with('/')
}

/// The nearest Win32 protection: a writable private file mapping is
/// copy-on-write, as on Windows.
pub(crate) fn protection_of(r: &Region) -> u32 {
    let p = r.perms;
    let cow = !p.shared() && file_backed(r);
    match (p.read(), p.write(), p.exec()) {
        (_, true, true) if cow => page::EXECUTE_WRITECOPY,
        (_, true, true) => page::EXECUTE_READWRITE,
        (true, false, true) => page::EXECUTE_READ,
        (false, false, true) => page::EXECUTE,
        (_, true, false) if cow => page::WRITECOPY,
        (_, true, false) => page::READWRITE,
        (true, false, false) => page::READONLY,
        (false, false, false) => page::NOACCESS,
    }
}

/// Linux permissions from a protection, a storage and a type: shared when
/// the memory is a section view that is not copy-on-write.
pub(crate) fn perms_of(protection: u32, storage: u32, t: MemoryType) -> Perms {
    let rwx: &[u8; 3] = match protection & 0xff {
        page::READONLY => b"r--",
        page::READWRITE | page::WRITECOPY => b"rw-",
        page::EXECUTE => b"--x",
        page::EXECUTE_READ => b"r-x",
        page::EXECUTE_READWRITE | page::EXECUTE_WRITECOPY => b"rwx",
        _ => b"---",
    };
    let cow = matches!(protection & 0xff, page::WRITECOPY | page::EXECUTE_WRITECOPY);
    let shared = storage == storage::MAPPED
        && !cow
        && matches!(t, MemoryType::Shareable | MemoryType::MappedFile);
    Perms([rwx[0], rwx[1], rwx[2], if shared { b's' } else { b'p' }])
}

/// An element being written: its name and attributes.
struct Element(BytesStart<'static>);

impl Element {
    fn new(name: &'static str) -> Element {
        Element(BytesStart::new(name))
    }

    fn num(&mut self, name: &str, v: u64) {
        self.0.push_attribute((name, v.to_string().as_str()));
    }

    fn text(&mut self, name: &str, value: &str) {
        self.0.push_attribute(crate::xml::attribute(name, value));
    }
}

/// Writes `event` on a line of its own, `indent` spaces in.
fn line<W: Write>(x: &mut Writer<W>, indent: usize, event: Event<'_>) -> io::Result<()> {
    crate::xml::line(x, indent, [event])
}

fn write_region<W: Write>(
    x: &mut Writer<W>,
    r: &Region,
    top: bool,
    indent: usize,
) -> io::Result<()> {
    let f = if r.sub_blocks.is_empty() {
        Figures::of_vma(r)
    } else {
        Figures::of_region(r)
    };
    let mut e = Element::new("Region");
    e.num("Address", r.start);
    e.num("Size", r.size());
    for (name, c) in [
        ("Commit", Column::Committed),
        ("PrivateBytes", Column::Private),
        ("PrivateWS", Column::PrivateWs),
        ("ShareableWS", Column::ShareableWs),
        ("SharedWS", Column::SharedWs),
    ] {
        if let Some(v) = f.get(c) {
            e.num(name, v);
        }
    }
    if top {
        e.num("Blocks", r.vmas().len() as u64);
    }
    let id = match r.memory_type {
        MemoryType::Heap => r.heap_id,
        MemoryType::Stack => r.tid,
        _ => None,
    };
    if let Some(id) = id {
        e.num("Id", u64::from(id));
    }
    e.num("Protection", u64::from(protection_of(r)));
    let st = if r.memory_type == MemoryType::Image {
        storage::IMAGE
    } else if r.perms.shared() || file_backed(r) {
        storage::MAPPED
    } else {
        storage::PRIVATE
    };
    e.num("Storage", u64::from(st));
    if let Some(u) = use_type_of(r.memory_type) {
        e.num("UseType", u64::from(u));
    }
    e.text("Type", r.memory_type.name());
    e.text("Details", &r.details);
    e.text("Perms", r.perms.as_str());
    if r.sub_blocks.is_empty() {
        return line(x, indent, Event::Empty(e.0));
    }
    line(x, indent, Event::Start(e.0))?;
    let mut cursor = r.start;
    for s in &r.sub_blocks {
        // A hole inside a region (an image's segments need not touch):
        // written as Unusable, so that import knows it is no reservation.
        if s.start > cursor {
            write_hole(x, cursor, s.start - cursor, indent + 2)?;
        }
        write_region(x, s, false, indent + 2)?;
        cursor = cursor.max(s.end);
    }
    if r.end > cursor {
        write_hole(x, cursor, r.end - cursor, indent + 2)?;
    }
    line(x, indent, Event::End(BytesEnd::new("Region")))
}

fn write_hole<W: Write>(x: &mut Writer<W>, start: u64, size: u64, indent: usize) -> io::Result<()> {
    let mut e = Element::new("Region");
    e.num("Address", start);
    e.num("Size", size);
    e.num("Commit", 0);
    e.num("Protection", u64::from(page::NOACCESS));
    e.num("Storage", u64::from(storage::FREE));
    e.num("UseType", u64::from(use_type::UNUSABLE));
    e.text("Type", "Unusable");
    line(x, indent, Event::Empty(e.0))
}

/// Writes snapshots as one `.mmp` document: each top-level region with
/// its sub-blocks nested inside, and the free gaps as `UseType` 6.
pub fn write<W: Write>(snaps: &[&Snapshot], w: W) -> io::Result<()> {
    let mut x = Writer::new(io::BufWriter::with_capacity(1 << 16, w));
    line(
        &mut x,
        0,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    )?;
    let mut root = Element::new("VMMap");
    root.text(
        "Generator",
        concat!("vmmap for Linux ", env!("CARGO_PKG_VERSION")),
    );
    line(&mut x, 0, Event::Start(root.0))?;
    for s in snaps {
        let mut e = Element::new("Snapshot");
        e.num("Pid", u64::from(s.process.pid));
        e.text("Process", &s.process.name);
        e.num("Time", s.taken_at_unix_ns);
        if let Some(pt) = s.page_table_bytes() {
            e.num("PageTable", pt);
        }
        e.num("MinAddress", s.kernel.mmap_min_addr);
        e.num("AddressLimit", s.kernel.user_address_limit);
        line(&mut x, 0, Event::Start(e.0))?;
        let free = free_blocks(s);
        let mut free = free.iter().peekable();
        for r in &s.regions {
            while let Some(f) = free.next_if(|f| f.start < r.start) {
                write_free(&mut x, f.start, f.size())?;
            }
            write_region(&mut x, r, true, 2)?;
        }
        for f in free {
            write_free(&mut x, f.start, f.size())?;
        }
        line(&mut x, 0, Event::End(BytesEnd::new("Snapshot")))?;
    }
    line(&mut x, 0, Event::End(BytesEnd::new("VMMap")))?;
    x.into_inner().flush()
}

fn write_free<W: Write>(x: &mut Writer<W>, start: u64, size: u64) -> io::Result<()> {
    let mut e = Element::new("Region");
    e.num("Address", start);
    e.num("Size", size);
    e.num("Commit", 0);
    e.num("Blocks", 1);
    e.num("Protection", u64::from(page::NOACCESS));
    e.num("Storage", u64::from(storage::FREE));
    e.num("UseType", u64::from(use_type::FREE));
    e.text("Type", "Free");
    e.text("Details", "");
    line(x, 2, Event::Empty(e.0))
}

/// One `<Region>` as read.
#[derive(Debug, Default)]
struct Record {
    offset: u64,
    start: u64,
    end: u64,
    commit: Option<u64>,
    private_bytes: Option<u64>,
    private_ws: Option<u64>,
    shareable_ws: Option<u64>,
    shared_ws: Option<u64>,
    id: Option<u64>,
    protection: Option<u32>,
    storage: Option<u32>,
    use_type: Option<u32>,
    details: String,
    perms: Option<Perms>,
}

/// A snapshot as read, before its regions are assembled.
#[derive(Debug, Default)]
struct RawSnapshot {
    /// Where its element starts (or its first region, without one).
    offset: u64,
    pid: u32,
    name: String,
    time: u64,
    page_table: Option<u64>,
    min_address: Option<u64>,
    address_limit: Option<u64>,
    records: Vec<Record>,
}

fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The element's attributes as (name, value) pairs, values normalised.
fn attributes(e: &BytesStart<'_>, offset: u64) -> Result<Vec<(String, String)>, MmpError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| MmpError::Xml {
            offset,
            reason: err.to_string(),
        })?;
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| MmpError::Xml {
                offset,
                reason: err.to_string(),
            })?;
        out.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            v.into_owned(),
        ));
    }
    Ok(out)
}

fn record(attrs: &[(String, String)], offset: u64) -> Result<Record, MmpError> {
    let bad = |reason: String| MmpError::Region { offset, reason };
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let n = |name: &str| -> Result<Option<u64>, MmpError> {
        match get(name) {
            None => Ok(None),
            Some(v) => number(v)
                .map(Some)
                .ok_or_else(|| bad(format!("{name}={v:?} is not a number that fits in 64 bits"))),
        }
    };
    let n32 = |name: &str| -> Result<Option<u32>, MmpError> {
        n(name)?
            .map(|v| u32::try_from(v).map_err(|_| bad(format!("{name}={v} is out of range"))))
            .transpose()
    };
    let start = n("Address")?.ok_or_else(|| bad("no Address attribute".into()))?;
    let size = n("Size")?.ok_or_else(|| bad("no Size attribute".into()))?;
    let end = start
        .checked_add(size)
        .ok_or_else(|| bad(format!("Address {start:#x} + Size {size} overflows")))?;
    let perms = match get("Perms") {
        None => None,
        Some(p) => {
            let b = p.as_bytes();
            let ok = b.len() == 4
                && matches!(b[0], b'r' | b'-')
                && matches!(b[1], b'w' | b'-')
                && matches!(b[2], b'x' | b'-')
                && matches!(b[3], b'p' | b's');
            if !ok {
                return Err(bad(format!("Perms={p:?} is not like rw-p")));
            }
            Some(Perms([b[0], b[1], b[2], b[3]]))
        }
    };
    Ok(Record {
        offset,
        start,
        end,
        commit: n("Commit")?,
        private_bytes: n("PrivateBytes")?,
        private_ws: n("PrivateWS")?,
        shareable_ws: n("ShareableWS")?,
        shared_ws: n("SharedWS")?,
        id: n("Id")?,
        protection: n32("Protection")?,
        storage: n32("Storage")?,
        use_type: n32("UseType")?,
        details: get("Details").unwrap_or("").to_string(),
        perms,
    })
}

/// UTF-16 files (with a byte order mark) become UTF-8; a UTF-8 BOM goes.
fn to_utf8(bytes: &[u8]) -> Cow<'_, [u8]> {
    let utf16 = |be: bool| -> Cow<'_, [u8]> {
        let units = bytes[2..].chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        let s: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or('\u{fffd}'))
            .collect();
        Cow::Owned(s.into_bytes())
    };
    match bytes {
        [0xff, 0xfe, ..] => utf16(false),
        [0xfe, 0xff, ..] => utf16(true),
        [0xef, 0xbb, 0xbf, rest @ ..] => Cow::Borrowed(rest),
        _ => Cow::Borrowed(bytes),
    }
}

/// Whether `bytes` look like XML (after a byte order mark and blanks),
/// which is how a loader tells a `.mmp` file from the native format.
pub(crate) fn sniff(bytes: &[u8]) -> bool {
    let b = to_utf8(&bytes[..bytes.len().min(64)]);
    b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'<')
}

/// Reads every snapshot of an `.mmp` document. Regions are nested by
/// address range whatever their XML nesting (as PerfView does); a region
/// whose range partly overlaps another is an error.
pub fn parse(bytes: &[u8]) -> Result<Vec<Snapshot>, MmpError> {
    let text = to_utf8(bytes);
    let mut reader = quick_xml::Reader::from_reader(&text[..]);
    reader.config_mut().check_end_names = true;
    let mut raws: Vec<RawSnapshot> = Vec::new();
    let mut elements = 0usize;
    let mut open = 0usize;
    // The start address of the last Region in the current snapshot:
    // VMMap writes them in address order, containers before contents.
    let mut last_start: Option<(u64, u64)> = None;
    loop {
        let offset = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| MmpError::Xml {
            offset: reader.error_position(),
            reason: e.to_string(),
        })?;
        let root = open == 0;
        let e = match ev {
            Event::Start(e) => {
                open += 1;
                e
            }
            Event::Empty(e) => e,
            Event::End(_) => {
                open = open.saturating_sub(1);
                continue;
            }
            Event::Eof if open > 0 => {
                return Err(MmpError::Xml {
                    offset: reader.buffer_position(),
                    reason: format!("the file ends inside {open} unclosed element(s) (cut off?)"),
                })
            }
            Event::Eof => break,
            Event::Text(t) if elements == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(MmpError::NotMmp("text before the first element".into()));
            }
            _ => continue,
        };
        if root && elements > 0 {
            return Err(MmpError::Xml {
                offset,
                reason: format!(
                    "a second root element <{}>: an XML document has one",
                    String::from_utf8_lossy(e.name().as_ref())
                ),
            });
        }
        elements += 1;
        match e.local_name().as_ref() {
            b"Snapshot" => {
                let attrs = attributes(&e, offset)?;
                let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                // An attribute that is there must be read; one that is not
                // takes its default.
                let n = |k: &str| -> Result<Option<u64>, MmpError> {
                    get(k)
                        .map(|v| {
                            number(v).ok_or_else(|| MmpError::Snapshot {
                                offset,
                                reason: format!("{k}={v:?} is not a number that fits in 64 bits"),
                            })
                        })
                        .transpose()
                };
                let pid = n("Pid")?
                    .map(|p| {
                        u32::try_from(p).map_err(|_| MmpError::Snapshot {
                            offset,
                            reason: format!("Pid={p} is out of range (a PID fits in 32 bits)"),
                        })
                    })
                    .transpose()?;
                last_start = None;
                raws.push(RawSnapshot {
                    offset,
                    pid: pid.unwrap_or(0),
                    name: get("Process").unwrap_or("").to_string(),
                    time: n("Time")?.unwrap_or(0),
                    page_table: n("PageTable")?,
                    min_address: n("MinAddress")?,
                    address_limit: n("AddressLimit")?,
                    records: Vec::new(),
                });
            }
            b"Region" => {
                let rec = record(&attributes(&e, offset)?, offset)?;
                if let Some((start, end)) = last_start.filter(|&(s, _)| rec.start < s) {
                    return Err(MmpError::Region {
                        offset,
                        reason: format!(
                            "{:#x}-{:#x} is out of address order (it comes after the region at {start:#x}-{end:#x})",
                            rec.start, rec.end
                        ),
                    });
                }
                last_start = Some((rec.start, rec.end));
                if raws.is_empty() {
                    // Regions without a Snapshot around them: one snapshot.
                    raws.push(RawSnapshot {
                        offset,
                        ..RawSnapshot::default()
                    });
                }
                if let Some(last) = raws.last_mut() {
                    last.records.push(rec);
                }
            }
            _ => {}
        }
    }
    if elements == 0 {
        return Err(MmpError::NotMmp("no XML element in it".into()));
    }
    if raws.is_empty() {
        return Err(MmpError::NotMmp(
            "no <Snapshot> or <Region> element in it".into(),
        ));
    }
    raws.into_iter().map(assemble).collect()
}

fn fields_of(rec: &Record, perms: Perms) -> crate::proc::smaps::SmapsFields {
    let mut f = crate::proc::smaps::SmapsFields::default();
    f.set(Field::Size, rec.end - rec.start);
    if let Some(pws) = rec.private_ws {
        f.set(Field::Anonymous, pws);
        if let Some(sws) = rec.shareable_ws {
            f.set(Field::Rss, pws.saturating_add(sws));
        }
        if let Some(pb) = rec.private_bytes {
            // Private = Anonymous + Swap for private memory: what is
            // private but not resident shows as Swap.
            let swap = if perms.shared() {
                0
            } else {
                pb.saturating_sub(pws)
            };
            f.set(Field::Swap, swap);
        }
    }
    if let Some(s) = rec.shared_ws {
        f.set(Field::SharedClean, s);
        f.set(Field::SharedDirty, 0);
    }
    f
}

struct Built {
    unknown_use: usize,
    missing_use: usize,
    missing_protection: usize,
    partly_committed: usize,
}

/// The region of one record. A group's own figures are its sub-blocks'
/// sums, so only a region used as it is (`as_is`) is checked for a partial
/// commit.
///
/// A sub-block gets its parent's type when it has none, and, in an image
/// or mapped file, the parent's path unless it is writable private memory
/// that is not copy-on-write (an image's anonymous `.bss`).
fn leaf(
    rec: &Record,
    parent: Option<(MemoryType, &str)>,
    as_is: bool,
    built: &mut Built,
) -> Region {
    let inherited = parent.map(|(t, _)| t);
    let t = match rec.use_type {
        Some(u) => memory_type_of(u).unwrap_or_else(|| {
            built.unknown_use += 1;
            MemoryType::PrivateData
        }),
        None => inherited.unwrap_or_else(|| {
            built.missing_use += 1;
            MemoryType::PrivateData
        }),
    };
    let perms = match (rec.perms, rec.protection) {
        (Some(p), _) => p,
        (None, Some(prot)) => perms_of(prot, rec.storage.unwrap_or(0), t),
        (None, None) => {
            built.missing_protection += 1;
            Perms(*b"---p")
        }
    };
    let committed = if perms.none() { 0 } else { rec.end - rec.start };
    if as_is && rec.commit.is_some_and(|c| c != committed) {
        built.partly_committed += 1;
    }
    let cow = rec
        .protection
        .is_some_and(|p| matches!(p & 0xff, page::WRITECOPY | page::EXECUTE_WRITECOPY));
    let anonymous = perms.write() && !perms.shared() && !cow;
    let path: Box<str> = match (t, parent) {
        (MemoryType::Image | MemoryType::MappedFile, None) => rec.details.as_str().into(),
        (MemoryType::Image | MemoryType::MappedFile, Some((_, p))) if !anonymous => p.into(),
        _ => "".into(),
    };
    let mut r = Region::from_mapping(Mapping {
        start: rec.start,
        end: rec.end,
        perms: perms.0,
        path,
        fields: fields_of(rec, perms),
        ..Mapping::default()
    });
    r.memory_type = t;
    r.details = rec.details.clone();
    r.evidence = Cow::Borrowed("imported from a VMMap .mmp file");
    set_id(&mut r, rec.id);
    r
}

fn set_id(r: &mut Region, id: Option<u64>) {
    let id = id.and_then(|i| u32::try_from(i).ok());
    match r.memory_type {
        MemoryType::Heap => r.heap_id = id,
        MemoryType::Stack => r.tid = id,
        _ => {}
    }
}

/// Builds a snapshot from its records, and refuses it if it is impossible
/// ([`crate::validate::snapshot`], as for the native format).
fn assemble(raw: RawSnapshot) -> Result<Snapshot, MmpError> {
    let offset = raw.offset;
    let snap = build(raw)?;
    crate::validate::snapshot(&snap).map_err(|e| MmpError::Snapshot {
        offset,
        reason: e.to_string(),
    })?;
    Ok(snap)
}

fn build(raw: RawSnapshot) -> Result<Snapshot, MmpError> {
    // Unusable space inside a region is a hole, not a reservation: no
    // filler is made for it.
    let holes: Vec<(u64, u64)> = raw
        .records
        .iter()
        .filter(|r| r.use_type == Some(use_type::UNUSABLE))
        .map(|r| (r.start, r.end))
        .collect();
    let mut recs: Vec<(usize, Record)> = raw
        .records
        .into_iter()
        .enumerate()
        // Free and Unusable space is derived from the gaps; empty regions
        // hold nothing.
        .filter(|(_, r)| {
            !matches!(r.use_type, Some(use_type::FREE | use_type::UNUSABLE)) && r.end > r.start
        })
        .collect();
    // Containers before their contents: by address, larger first, then
    // in file order.
    recs.sort_by(|(ia, a), (ib, b)| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(ia.cmp(ib))
    });
    let mut built = Built {
        unknown_use: 0,
        missing_use: 0,
        missing_protection: 0,
        partly_committed: 0,
    };
    let mut regions: Vec<Region> = Vec::new();
    let mut i = 0;
    while i < recs.len() {
        let top = &recs[i].1;
        if let Some(prev) = regions.last() {
            if top.start < prev.end {
                return Err(MmpError::Region {
                    offset: top.offset,
                    reason: format!(
                        "{:#x}-{:#x} overlaps the region at {:#x}-{:#x} without lying inside it",
                        top.start, top.end, prev.start, prev.end
                    ),
                });
            }
        }
        // Everything inside the top-level region follows it.
        let mut j = i + 1;
        while j < recs.len() && recs[j].1.start < top.end {
            let r = &recs[j].1;
            if r.end > top.end {
                return Err(MmpError::Region {
                    offset: r.offset,
                    reason: format!(
                        "{:#x}-{:#x} overlaps the region at {:#x}-{:#x} without lying inside it",
                        r.start, r.end, top.start, top.end
                    ),
                });
            }
            j += 1;
        }
        let inside = &recs[i + 1..j];
        let top_leaf = leaf(top, None, inside.is_empty(), &mut built);
        if inside.is_empty() {
            regions.push(top_leaf);
            i = j;
            continue;
        }
        // The sub-blocks are the innermost regions: those that contain no
        // other (deeper nesting is flattened).
        let mut subs: Vec<Region> = Vec::new();
        let mut cursor = top.start;
        for (k, (_, r)) in inside.iter().enumerate() {
            if let Some((_, n)) = inside.get(k + 1).filter(|(_, n)| n.start < r.end) {
                if n.end > r.end {
                    return Err(MmpError::Region {
                        offset: n.offset,
                        reason: format!(
                            "{:#x}-{:#x} overlaps the region at {:#x}-{:#x} without lying inside it",
                            n.start, n.end, r.start, r.end
                        ),
                    });
                }
                continue; // contains the next one
            }
            if r.start < cursor {
                return Err(MmpError::Region {
                    offset: r.offset,
                    reason: format!(
                        "{:#x}-{:#x} overlaps another sub-block of the region at {:#x}",
                        r.start, r.end, top.start
                    ),
                });
            }
            if r.start > cursor && !holes.contains(&(cursor, r.start)) {
                subs.push(filler(cursor, r.start, &top_leaf));
            }
            subs.push(leaf(
                r,
                Some((top_leaf.memory_type, &top_leaf.path)),
                true,
                &mut built,
            ));
            cursor = r.end;
        }
        if cursor < top.end && !holes.contains(&(cursor, top.end)) {
            subs.push(filler(cursor, top.end, &top_leaf));
        }
        let mut g = Region::group(
            subs,
            top_leaf.memory_type,
            top_leaf.details.clone(),
            top_leaf.evidence.clone(),
        );
        g.path = top_leaf.path.clone();
        g.heap_id = top_leaf.heap_id;
        g.tid = top_leaf.tid;
        regions.push(g);
        i = j;
    }
    let mut snap = Snapshot::from_regions(raw.pid, raw.time, regions);
    snap.process.name = raw.name.clone();
    snap.kernel.release = IMPORTED_KERNEL.into();
    // The user address space: as vmmap wrote it, or at least up to the
    // last region (VMMap's files do not say).
    match raw.address_limit {
        Some(hi) => snap.kernel.user_address_limit = hi,
        None => {
            let last = snap.regions.last().map_or(0, |r| r.end);
            snap.kernel.user_address_limit = snap.kernel.user_address_limit.max(last);
        }
    }
    if let Some(lo) = raw.min_address {
        snap.kernel.mmap_min_addr = lo;
    }
    let mut status = vec![(Box::from("Name"), Box::from(raw.name.as_str()))];
    if let Some(pt) = raw.page_table {
        status.push((
            Box::from("VmPTE"),
            format!("{} kB", pt / 1024).into_boxed_str(),
        ));
    }
    snap.status.entries = status;
    let mut warn = |n: usize, what: &str| {
        if n > 0 {
            snap.warnings.push(format!("{n} region(s) {what}"));
        }
    };
    warn(
        built.unknown_use,
        "have a UseType VMMap leaves unnamed (7, 9 or unknown): shown as Private Data",
    );
    warn(built.missing_use, "have no UseType: shown as Private Data");
    warn(
        built.missing_protection,
        "have neither Protection nor Perms: shown as ---p (no access)",
    );
    warn(
        built.partly_committed,
        "are partly committed (Commit differs from Size): Committed shows the whole region",
    );
    Ok(snap)
}

/// Address space inside a top-level region that no sub-block describes:
/// a reservation (no access).
fn filler(start: u64, end: u64, top: &Region) -> Region {
    let mut fields = crate::proc::smaps::SmapsFields::default();
    fields.set(Field::Size, end - start);
    let mut r = Region::from_mapping(Mapping {
        start,
        end,
        perms: *b"---p",
        path: top.path.clone(),
        fields,
        ..Mapping::default()
    });
    r.memory_type = top.memory_type;
    r.evidence = Cow::Borrowed("imported from a VMMap .mmp file: no sub-block covers this part");
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{self, Options};

    fn export(s: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        write(&[s], &mut out).unwrap();
        out
    }

    /// What the schema holds of a region: its range, type, details,
    /// permissions, ids and VMMap's figures.
    type Key = (
        u64,
        u64,
        MemoryType,
        String,
        String,
        Option<u32>,
        Option<u32>,
        Vec<Option<u64>>,
    );

    fn key(r: &Region) -> Key {
        let f = if r.sub_blocks.is_empty() {
            Figures::of_vma(r)
        } else {
            Figures::of_region(r)
        };
        (
            r.start,
            r.end,
            r.memory_type,
            r.details.clone(),
            r.perms.as_str().to_string(),
            r.heap_id,
            r.tid,
            // The figures the schema holds: the table's first seven.
            Column::ALL[..7].iter().map(|&c| f.get(c)).collect(),
        )
    }

    #[test]
    fn a_real_snapshot_round_trips_in_what_the_schema_holds() {
        let s = collect::snapshot(std::process::id(), &Options::default()).unwrap();
        let back = parse(&export(&s)).unwrap();
        assert_eq!(back.len(), 1);
        let b = &back[0];
        assert_eq!(b.process.pid, s.process.pid);
        assert_eq!(b.process.name, s.process.name);
        assert_eq!(b.taken_at_unix_ns, s.taken_at_unix_ns);
        assert_eq!(b.page_table_bytes(), s.page_table_bytes());
        assert_eq!(b.regions.len(), s.regions.len());
        for (x, y) in s.regions.iter().zip(&b.regions) {
            assert_eq!(key(x), key(y));
            assert_eq!(x.sub_blocks.len(), y.sub_blocks.len());
            for (p, q) in x.sub_blocks.iter().zip(&y.sub_blocks) {
                assert_eq!(key(p), key(q));
            }
        }
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        // Exported again, the import gives the same file.
        assert_eq!(
            String::from_utf8(export(b)).unwrap(),
            String::from_utf8(export(&s)).unwrap()
        );
    }

    #[test]
    fn a_hole_between_sub_blocks_stays_a_hole() {
        let vma = |start: u64, end: u64, perms: &[u8; 4]| {
            let mut fields = crate::proc::smaps::SmapsFields::default();
            fields.set(Field::Size, end - start);
            Region::from_mapping(Mapping {
                start,
                end,
                perms: *perms,
                inode: 7,
                path: "/bin/x".into(),
                fields,
                ..Mapping::default()
            })
        };
        let g = Region::group(
            vec![
                vma(0x10000, 0x12000, b"r--p"),
                vma(0x13000, 0x14000, b"rw-p"),
            ],
            MemoryType::Image,
            "/bin/x".into(),
            Cow::Borrowed("test"),
        );
        let s = Snapshot::from_regions(1, 0, vec![g]);
        let back = parse(&export(&s)).unwrap();
        let r = &back[0].regions[0];
        assert_eq!((r.start, r.end, r.sub_blocks.len()), (0x10000, 0x14000, 2));
        assert_eq!(key(r), key(&s.regions[0]));
    }

    #[test]
    fn free_gaps_are_written_and_ignored_on_import() {
        let s = collect::snapshot(std::process::id(), &Options::default()).unwrap();
        let text = String::from_utf8(export(&s)).unwrap();
        assert_eq!(text.matches("UseType=\"6\"").count(), free_blocks(&s).len());
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VMMap"));
    }

    #[test]
    fn protections_map_both_ways() {
        for (perms, prot) in [
            (b"r-xp", page::EXECUTE_READ),
            (b"r--p", page::READONLY),
            (b"rw-p", page::READWRITE),
            (b"---p", page::NOACCESS),
            (b"rwxp", page::EXECUTE_READWRITE),
            (b"--xp", page::EXECUTE),
        ] {
            let r = Region {
                perms: Perms(*perms),
                ..Region::default()
            };
            assert_eq!(protection_of(&r), prot, "{perms:?}");
            assert_eq!(
                perms_of(prot, storage::PRIVATE, MemoryType::PrivateData).0,
                *perms
            );
        }
        let file = Region {
            perms: Perms(*b"rw-p"),
            path: "/data".into(),
            ..Region::default()
        };
        assert_eq!(protection_of(&file), page::WRITECOPY);
        assert_eq!(
            perms_of(page::WRITECOPY, storage::MAPPED, MemoryType::MappedFile).0,
            *b"rw-p"
        );
        assert_eq!(
            perms_of(page::READONLY, storage::MAPPED, MemoryType::MappedFile).0,
            *b"r--s"
        );
        // PAGE_GUARD and other modifiers above the low byte are ignored.
        assert_eq!(
            perms_of(0x100 | page::READWRITE, storage::PRIVATE, MemoryType::Stack).0,
            *b"rw-p"
        );
    }

    #[test]
    fn odd_text_survives_the_round_trip() {
        let mut s = Snapshot::from_regions(7, 1, Vec::new());
        let mut r = Region::from_mapping(Mapping {
            start: 0x1000,
            end: 0x3000,
            perms: *b"r--s",
            path: "/tmp/a\"<&>\n\tb".into(),
            ..Mapping::default()
        });
        r.fields.set(Field::Size, 0x2000);
        r.memory_type = MemoryType::MappedFile;
        r.details = "/tmp/a\"<&>\n\tb\u{1}".into();
        s.regions.push(r);
        s.process.name = "x&y".into();
        let back = parse(&export(&s)).unwrap();
        assert_eq!(back[0].regions[0].details, "/tmp/a\"<&>\n\tb\u{fffd}");
        assert_eq!(back[0].process.name, "x&y");
        assert_eq!(back[0].regions[0].perms.as_str(), "r--s");
    }

    #[test]
    fn sub_blocks_that_partly_overlap_are_an_error() {
        let xml = br#"<Snapshot><Region Address="0" Size="100"><Region Address="0" Size="50"/><Region Address="10" Size="60"/></Region></Snapshot>"#;
        let e = parse(xml).unwrap_err().to_string();
        assert!(
            e.contains("0xa-0x46 overlaps the region at 0x0-0x32"),
            "{e}"
        );
        // Contained, it is fine: the innermost regions are the sub-blocks.
        let ok = br#"<Snapshot><Region Address="0" Size="100"><Region Address="0" Size="50"/><Region Address="10" Size="20"/></Region></Snapshot>"#;
        let s = parse(ok).unwrap();
        let subs: Vec<(u64, u64)> = s[0].regions[0]
            .sub_blocks
            .iter()
            .map(|r| (r.start, r.end))
            .collect();
        assert_eq!(subs, [(0, 10), (10, 30), (30, 100)]);
    }

    #[test]
    fn utf16_files_are_read() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><Root><Snapshot><Region Address=\"4096\" Size=\"4096\" Protection=\"4\" Storage=\"131072\" UseType=\"4\" PrivateWS=\"4096\" ShareableWS=\"0\" PrivateBytes=\"4096\" SharedWS=\"0\" Details=\"é\"/></Snapshot></Root>";
        let mut le = vec![0xff, 0xfe];
        le.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
        let s = parse(&le).unwrap();
        assert_eq!(s[0].regions[0].details, "é");
        assert!(sniff(&le));
        assert!(!sniff(b"VMMAPSNP"));
    }
}
