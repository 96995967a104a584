//! What in an ELF file makes a symboliser reach past the file: sections
//! that name other files, which it then opens by those names
//! (`.gnu_debuglink`, `.gnu_debugaltlink`, `.debug_sup`), and compressed
//! sections, whose header declares how much to allocate and whose stream
//! may expand beyond that.
//!
//! A file that another user can change may say anything there. An
//! absolute or `../` name makes a root process open any path (a device
//! acts on being opened: a watchdog starts); a FIFO next to the file holds
//! the reader in `open` for ever; a declared size of 4 TiB aborts it, and
//! a small stream that inflates to gigabytes exhausts the host's memory.
//! Sans-IO: `vmmap_trace` reads such a file from a copy of its own, which
//! it changes where [`hazards`] says (see `vmmap_trace::debug_file`).

use crate::elf::{placed_sections, NotElf};
use crate::endian::Reader;

/// Sections that name another file for a symboliser to open.
pub const LINK_SECTIONS: [&str; 3] = [".gnu_debuglink", ".gnu_debugaltlink", ".debug_sup"];

/// `sh_flags` bit: the section's data is compressed, after a header.
pub const SHF_COMPRESSED: u64 = 0x800;
/// `ch_type` of zlib (RFC 1950) data.
pub const ELFCOMPRESS_ZLIB: u32 = 1;
/// `ch_type` of zstd data.
pub const ELFCOMPRESS_ZSTD: u32 = 2;

/// A compressed section, as its headers describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compressed {
    /// File offset of its section header.
    pub header_at: u64,
    /// File offset of its name's first byte.
    pub name_at: Option<u64>,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_offset`: where the compression header starts.
    pub offset: u64,
    /// `sh_size`: the compression header and the stream.
    pub size: u64,
    /// `ch_type` ([`ELFCOMPRESS_ZLIB`], [`ELFCOMPRESS_ZSTD`], or what a
    /// newer toolchain writes); None if the header could not be read.
    pub kind: Option<u32>,
    /// `ch_size`: what the data says it inflates to.
    pub declared: u64,
    /// Length of the compression header (24 bytes in ELF64, 12 in ELF32).
    pub header_len: u64,
}

/// What [`hazards`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hazards {
    /// File offset of the first byte of each link section's name (None:
    /// a link section whose name could not be placed).
    pub links: Vec<Option<u64>>,
    /// The compressed sections.
    pub compressed: Vec<Compressed>,
    /// A 64-bit little-endian file: the one layout whose section headers
    /// [`uncompressed_header`] rewrites.
    pub elf64_le: bool,
    /// Every section header and name was read: nothing is left unseen.
    pub complete: bool,
    /// Where `.gnu_debuglink`'s data is: (file offset, size).
    pub debuglink: Option<(u64, u64)>,
    /// The file is little-endian (how the link's checksum is stored).
    pub little_endian: bool,
}

impl Hazards {
    /// Nothing that reaches past the file.
    pub fn none(&self) -> bool {
        self.complete && self.links.is_empty() && self.compressed.is_empty()
    }
}

/// Finds the link and compressed sections of an ELF file read through
/// `read(offset, len)` (as [`crate::elf::sections`]).
pub fn hazards(read: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>) -> Result<Hazards, NotElf> {
    let table = placed_sections(read)?;
    let class64 = table.info.class == 64;
    let le = table.info.little_endian;
    let mut out = Hazards {
        elf64_le: class64 && le,
        complete: table.complete,
        little_endian: le,
        ..Hazards::default()
    };
    for p in &table.sections {
        let s = &p.section;
        if LINK_SECTIONS.contains(&s.name.as_str()) {
            out.links.push(p.name_at);
        }
        if s.name == ".gnu_debuglink" {
            out.debuglink = Some((s.offset, s.size));
        }
        if s.flags & SHF_COMPRESSED != 0 {
            let header_len: u64 = if class64 { 24 } else { 12 };
            let head = read(s.offset, header_len as usize).filter(|b| b.len() as u64 == header_len);
            let r = head.as_deref().map(|b| Reader { b, le });
            let (kind, declared) = match r {
                Some(r) if class64 => (r.u32(0), r.u64(8)),
                Some(r) => (r.u32(0), r.u32(4).map(u64::from)),
                None => (None, None),
            };
            out.compressed.push(Compressed {
                header_at: p.header_at,
                name_at: p.name_at,
                flags: s.flags,
                offset: s.offset,
                size: s.size,
                kind,
                declared: declared.unwrap_or(0),
                header_len,
            });
        }
    }
    Ok(out)
}

/// The most a debug link's file name may hold (gdb and the toolchains
/// write a plain name, `NAME.debug` or the build id's hex).
const MAX_LINK_NAME: usize = 255;

/// A `.gnu_debuglink` section's data: the debug file's name (NUL-ended,
/// padded to 4 bytes) and the CRC-32 of that file. None unless the name
/// is one plain file name (no `/`, not `.` or `..`): it is joined to
/// directories, and a path there would reach anywhere.
pub fn debuglink(data: &[u8], little_endian: bool) -> Option<(String, u32)> {
    let end = data.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&data[..end]).ok()?;
    if name.is_empty()
        || name.len() > MAX_LINK_NAME
        || name.contains('/')
        || name == "."
        || name == ".."
    {
        return None;
    }
    let at = (end + 1).next_multiple_of(4);
    let crc = Reader {
        b: data,
        le: little_endian,
    }
    .u32(at)?;
    Some((name.to_string(), crc))
}

/// The bytes that make a 64-bit little-endian section header describe
/// plain data of `size` bytes at `offset` instead of the compressed
/// section `c`: (file offset, bytes) to write over the header.
pub fn uncompressed_header(c: &Compressed, offset: u64, size: u64) -> [(u64, [u8; 8]); 3] {
    [
        (c.header_at + 8, (c.flags & !SHF_COMPRESSED).to_le_bytes()),
        (c.header_at + 24, offset.to_le_bytes()),
        (c.header_at + 32, size.to_le_bytes()),
    ]
}

/// The byte that hides a section from a look-up by name, written over
/// the first byte of its name (`.gnu_debuglink` becomes `~gnu_debuglink`).
pub const HIDDEN_NAME: u8 = b'~';

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF file with the given (name, flags, data)
    /// sections after the null one, and its section names last.
    fn elf(sections: &[(&str, u64, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELF64
        b[5] = 1; // little-endian
        b[6] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        let mut names = vec![0u8];
        let mut placed = Vec::new();
        for (name, flags, data) in sections {
            let at = b.len() as u64;
            b.extend_from_slice(data);
            placed.push((names.len() as u32, *flags, at, data.len() as u64));
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let names_at = b.len() as u64;
        placed.push((names.len() as u32, 0, names_at, 0));
        names.extend_from_slice(b".shstrtab\0");
        let names_len = names.len() as u64;
        b.extend_from_slice(&names);
        let last = placed.len() - 1;
        placed[last].3 = names_len;
        let shoff = b.len() as u64;
        b.extend_from_slice(&[0u8; 64]);
        for (name, flags, at, len) in &placed {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&1u32.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[24..32].copy_from_slice(&at.to_le_bytes());
            h[32..40].copy_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&h);
        }
        b[40..48].copy_from_slice(&shoff.to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        b[60..62].copy_from_slice(&(placed.len() as u16 + 1).to_le_bytes());
        b[62..64].copy_from_slice(&(placed.len() as u16).to_le_bytes());
        b
    }

    fn read(b: &[u8]) -> impl FnMut(u64, usize) -> Option<Vec<u8>> + '_ {
        |off, len| {
            let off = usize::try_from(off).ok()?;
            b.get(off..).map(|t| t[..len.min(t.len())].to_vec())
        }
    }

    #[test]
    fn links_and_compressed_sections_are_found_where_they_sit() {
        let mut chdr = Vec::new();
        chdr.extend_from_slice(&ELFCOMPRESS_ZLIB.to_le_bytes());
        chdr.extend_from_slice(&0u32.to_le_bytes());
        chdr.extend_from_slice(&(1u64 << 42).to_le_bytes());
        chdr.extend_from_slice(&1u64.to_le_bytes());
        chdr.extend_from_slice(b"stream");
        let b = elf(&[
            (".text", 6, b"code"),
            (".gnu_debuglink", 0, b"/dev/watchdog\0\0\0\0\0\0\0"),
            (".debug_info", SHF_COMPRESSED, &chdr),
        ]);
        let h = hazards(&mut read(&b)).unwrap();
        assert!(h.complete && h.elf64_le && !h.none());
        assert_eq!(h.links.len(), 1);
        let at = h.links[0].unwrap() as usize;
        assert_eq!(&b[at..at + 14], b".gnu_debuglink");
        let c = &h.compressed[0];
        assert_eq!((c.kind, c.declared, c.header_len), (Some(1), 1 << 42, 24));
        assert_eq!(&b[c.offset as usize + 24..][..6], b"stream");
        // Rewritten as plain data elsewhere, it is read so.
        let mut patched = b.clone();
        for (at, bytes) in uncompressed_header(c, 4096, 10) {
            patched[at as usize..at as usize + 8].copy_from_slice(&bytes);
        }
        patched[at] = HIDDEN_NAME;
        let s = crate::elf::sections(&mut read(&patched)).unwrap();
        let info = s.iter().find(|s| s.name == ".debug_info").unwrap();
        assert_eq!((info.flags, info.offset, info.size), (0, 4096, 10));
        assert!(s.iter().any(|s| s.name == "~gnu_debuglink"));
        assert!(hazards(&mut read(&patched)).unwrap().links.is_empty());
    }

    #[test]
    fn a_debug_link_is_one_plain_file_name() {
        let link = |name: &[u8]| {
            let mut d = name.to_vec();
            d.push(0);
            d.resize(d.len().next_multiple_of(4), 0);
            d.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
            debuglink(&d, true)
        };
        assert_eq!(
            link(b"libc.so.6.debug"),
            Some(("libc.so.6.debug".into(), 0xdead_beef))
        );
        for bad in [
            &b"/dev/watchdog"[..],
            b"../../dev/tty",
            b"..",
            b".",
            b"",
            b"a/b",
        ] {
            assert_eq!(link(bad), None, "{bad:?}");
        }
        // Cut before its checksum.
        assert_eq!(debuglink(b"name.debug\0\0", true), None);
    }

    #[test]
    fn a_plain_file_has_none_and_a_cut_one_is_not_complete() {
        let b = elf(&[(".text", 6, b"code"), (".symtab", 0, b"")]);
        assert!(hazards(&mut read(&b)).unwrap().none());
        // The section names cut off: a link could hide among them.
        let mut cut = b.clone();
        let names_len_at = cut.len() - 64 + 32;
        cut[names_len_at..names_len_at + 8].copy_from_slice(&(2u64 << 20).to_le_bytes());
        assert!(!hazards(&mut read(&cut)).unwrap().complete);
    }
}
