//! Sans-IO reading of ELF file and program headers: enough to tell an ELF
//! object from any other file (by its header, never by its name), to give a
//! process's architecture, and to find where an image's `.bss` ends.

use crate::endian::Reader;
use serde::{Deserialize, Serialize};

/// What the ELF header says about a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfInfo {
    /// 32 or 64.
    pub class: u8,
    /// True for little-endian.
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `e_type` (2 = EXEC, 3 = DYN, …).
    pub file_type: u16,
    /// The `PT_LOAD` program headers that fit in the bytes given.
    pub loads: Vec<LoadSegment>,
}

/// One `PT_LOAD` program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSegment {
    /// `p_offset`.
    pub(crate) offset: u64,
    /// `p_vaddr`.
    pub(crate) vaddr: u64,
    /// `p_filesz`.
    pub(crate) file_size: u64,
    /// `p_memsz`.
    pub(crate) mem_size: u64,
    /// `p_flags` (1 = X, 2 = W, 4 = R).
    pub(crate) flags: u32,
}

impl ElfInfo {
    /// A short architecture name for `e_machine`, e.g. `x86-64`.
    pub(crate) fn machine_name(&self) -> &'static str {
        machine_name(self.machine)
    }

    /// `x86-64 (ELF64)` style description.
    pub fn arch(&self) -> String {
        format!("{} (ELF{})", self.machine_name(), self.class)
    }

    /// `EXEC`, `DYN`, … for `e_type`.
    pub fn type_name(&self) -> &'static str {
        match self.file_type {
            1 => "REL",
            2 => "EXEC",
            3 => "DYN",
            4 => "CORE",
            _ => "other",
        }
    }
}

/// Names for the common `e_machine` values.
pub(crate) fn machine_name(machine: u16) -> &'static str {
    match machine {
        3 => "i386",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390",
        40 => "arm",
        62 => "x86-64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => "unknown",
    }
}

/// Why a byte string is not a usable ELF header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotElf {
    /// No `\x7fELF` magic: some other kind of file.
    BadMagic,
    /// Magic present but the header is cut short or inconsistent.
    Truncated,
}

/// Parses the ELF header at the start of `bytes` and as many `PT_LOAD`
/// program headers as `bytes` holds. Reading the first 4 KiB of a file is
/// enough for every object a toolchain produces.
pub fn parse(bytes: &[u8]) -> Result<ElfInfo, NotElf> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(NotElf::BadMagic);
    }
    if bytes.len() < 52 {
        return Err(NotElf::Truncated);
    }
    let class = match bytes[4] {
        1 => 32,
        2 => 64,
        _ => return Err(NotElf::Truncated),
    };
    let little_endian = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err(NotElf::Truncated),
    };
    let r = Reader {
        b: bytes,
        le: little_endian,
    };
    let file_type = r.u16(16).ok_or(NotElf::Truncated)?;
    let machine = r.u16(18).ok_or(NotElf::Truncated)?;
    let (phoff, phentsize, phnum) = if class == 64 {
        if bytes.len() < 64 {
            return Err(NotElf::Truncated);
        }
        (r.u64(32), r.u16(54), r.u16(56))
    } else {
        (r.u32(28).map(u64::from), r.u16(42), r.u16(44))
    };
    let (phoff, phentsize, phnum) = (
        phoff.ok_or(NotElf::Truncated)?,
        usize::from(phentsize.ok_or(NotElf::Truncated)?),
        usize::from(phnum.ok_or(NotElf::Truncated)?),
    );
    let mut loads = Vec::new();
    let min_ent = if class == 64 { 56 } else { 32 };
    if phentsize >= min_ent {
        for i in 0..phnum {
            let Some(base) = usize::try_from(phoff)
                .ok()
                .and_then(|o| o.checked_add(i.checked_mul(phentsize)?))
            else {
                break;
            };
            if base.checked_add(phentsize).is_none_or(|e| e > bytes.len()) {
                break;
            }
            let seg = if class == 64 {
                (|| {
                    Some((
                        r.u32(base)?,
                        LoadSegment {
                            flags: r.u32(base + 4)?,
                            offset: r.u64(base + 8)?,
                            vaddr: r.u64(base + 16)?,
                            file_size: r.u64(base + 32)?,
                            mem_size: r.u64(base + 40)?,
                        },
                    ))
                })()
            } else {
                (|| {
                    Some((
                        r.u32(base)?,
                        LoadSegment {
                            offset: u64::from(r.u32(base + 4)?),
                            vaddr: u64::from(r.u32(base + 8)?),
                            file_size: u64::from(r.u32(base + 16)?),
                            mem_size: u64::from(r.u32(base + 20)?),
                            flags: r.u32(base + 24)?,
                        },
                    ))
                })()
            };
            match seg {
                Some((1, s)) => loads.push(s), // PT_LOAD
                Some(_) => {}
                None => break,
            }
        }
    }
    Ok(ElfInfo {
        class,
        little_endian,
        machine,
        file_type,
        loads,
    })
}

/// `sh_flags` bit: the section occupies memory at run time.
pub(crate) const SHF_ALLOC: u64 = 2;
/// `sh_type` of a section with no bytes in the file (`.bss`, `.tbss`).
pub(crate) const SHT_NOBITS: u32 = 8;
/// `sh_flags` bit: thread-local storage (a template, not the live copy).
pub(crate) const SHF_TLS: u64 = 0x400;

/// One section header, with its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Name from the section header string table (`.text`, …).
    pub(crate) name: String,
    /// `sh_type`.
    pub(crate) kind: u32,
    /// `sh_flags`.
    pub(crate) flags: u64,
    /// `sh_addr`: the link-time address (before the load bias).
    pub(crate) addr: u64,
    /// `sh_offset`.
    pub(crate) offset: u64,
    /// `sh_size`.
    pub(crate) size: u64,
}

impl Section {
    /// Whether it is in memory at run time as itself: allocated, not a
    /// thread-local template, not empty.
    pub fn is_loaded(&self) -> bool {
        self.flags & SHF_ALLOC != 0 && self.flags & SHF_TLS == 0 && self.size > 0
    }
}

/// Section tables larger than this are taken as damage, not read.
const MAX_SECTION_TABLE: usize = 4 << 20;
/// Section names beyond this many bytes of the string table are not read.
const MAX_SECTION_NAMES: usize = 1 << 20;

/// Reads the section headers of an ELF file through `read(offset, len)`,
/// which returns the file's bytes there (fewer at the end of the file,
/// `None` on failure): the headers sit at the end of the file, so only
/// the header, the table and its names are read, never the whole file.
/// Sections whose name or header cannot be read are left out.
pub fn sections(
    read: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<Vec<Section>, NotElf> {
    Ok(placed_sections(read)?
        .sections
        .into_iter()
        .map(|p| p.section)
        .collect())
}

/// A section header and where it and its name sit in the file, for
/// changing a copy of the file ([`crate::elf_debug`]).
#[derive(Clone, Debug)]
pub(crate) struct PlacedSection {
    pub(crate) section: Section,
    /// File offset of the header.
    pub(crate) header_at: u64,
    /// File offset of the name's first byte (None: no name read).
    pub(crate) name_at: Option<u64>,
}

/// A file's section table as [`placed_sections`] read it.
pub(crate) struct SectionTable {
    pub(crate) info: ElfInfo,
    pub(crate) sections: Vec<PlacedSection>,
    /// Every header and every name was read (none left out).
    pub(crate) complete: bool,
}

/// [`sections`], with the ELF header and where each section's header and
/// name are.
pub(crate) fn placed_sections(
    read: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<SectionTable, NotElf> {
    let head = read(0, 64).ok_or(NotElf::Truncated)?;
    let info = parse(&head)?;
    let r = Reader {
        b: &head,
        le: info.little_endian,
    };
    let (shoff, shentsize, shnum, shstrndx) = if info.class == 64 {
        (r.u64(40), r.u16(58), r.u16(60), r.u16(62))
    } else {
        (r.u32(32).map(u64::from), r.u16(46), r.u16(48), r.u16(50))
    };
    let (Some(shoff), Some(entsize), Some(num), Some(strndx)) = (shoff, shentsize, shnum, shstrndx)
    else {
        return Err(NotElf::Truncated);
    };
    let (entsize, num, strndx) = (usize::from(entsize), usize::from(num), usize::from(strndx));
    let min_ent = if info.class == 64 { 64 } else { 40 };
    if shoff == 0 || num == 0 || entsize < min_ent {
        // Stripped of section headers.
        return Ok(SectionTable {
            info,
            sections: Vec::new(),
            complete: true,
        });
    }
    let len = num.checked_mul(entsize).ok_or(NotElf::Truncated)?;
    if len > MAX_SECTION_TABLE {
        return Err(NotElf::Truncated);
    }
    let table = read(shoff, len).ok_or(NotElf::Truncated)?;
    let t = Reader {
        b: &table,
        le: info.little_endian,
    };
    // (name, type, flags, addr, offset, size) of entry i
    let header = |i: usize| -> Option<(u32, u32, u64, u64, u64, u64)> {
        let b = i.checked_mul(entsize)?;
        if info.class == 64 {
            Some((
                t.u32(b)?,
                t.u32(b + 4)?,
                t.u64(b + 8)?,
                t.u64(b + 16)?,
                t.u64(b + 24)?,
                t.u64(b + 32)?,
            ))
        } else {
            Some((
                t.u32(b)?,
                t.u32(b + 4)?,
                u64::from(t.u32(b + 8)?),
                u64::from(t.u32(b + 12)?),
                u64::from(t.u32(b + 16)?),
                u64::from(t.u32(b + 20)?),
            ))
        }
    };
    let names_at = header(strndx).filter(|h| h.1 != SHT_NOBITS).map(|h| h.4);
    let names_len = header(strndx).map_or(0, |h| h.5);
    let names = names_at
        .and_then(|off| read(off, usize::try_from(names_len).ok()?.min(MAX_SECTION_NAMES)))
        .unwrap_or_default();
    let mut complete = names.len() as u64 == names_len;
    let mut out = Vec::new();
    for i in 1..num {
        let Some((name_off, kind, flags, addr, offset, size)) = header(i) else {
            complete = false;
            break;
        };
        let name = names
            .get(name_off as usize..)
            .and_then(|n| n.split(|&c| c == 0).next());
        out.push(PlacedSection {
            section: Section {
                name: name
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default(),
                kind,
                flags,
                addr,
                offset,
                size,
            },
            header_at: shoff + (i * entsize) as u64,
            name_at: name.and(names_at).map(|at| at + u64::from(name_off)),
        });
        complete &= name.is_some();
    }
    Ok(SectionTable {
        info,
        sections: out,
        complete,
    })
}

#[cfg(test)]
mod tests {
    /// The libc this test runs with, from its own map.
    fn own_libc() -> Vec<u8> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_ascii_whitespace().nth(5))
            .find(|p| p.ends_with("/libc.so.6"))
            .expect("libc.so.6 in the test's map");
        std::fs::read(libc).unwrap()
    }

    #[test]
    fn the_c_library_has_room_after_its_code() {
        let bytes = own_libc();
        let (first, end) = super::exec_segment_end(&bytes).expect("an executable segment");
        let (malloc, _) = super::dynamic_symbol(&bytes, "malloc").unwrap();
        assert!(first < malloc && malloc < end);
        // Cut short: nothing, no panic; the program headers are in the
        // first page.
        for cut in [0, 16, 64] {
            assert!(super::exec_segment_end(&bytes[..cut]).is_none());
        }
        assert_eq!(super::exec_segment_end(&bytes[..4096]), Some((first, end)));
    }

    #[test]
    fn dynamic_symbols_of_the_c_library() {
        let bytes = own_libc();
        let (value, first) = super::dynamic_symbol(&bytes, "malloc").expect("malloc");
        assert!(value > first);
        assert!(super::dynamic_symbol(&bytes, "no_such_symbol_here").is_none());
        // A prefix of a name is not the name.
        assert_ne!(
            super::dynamic_symbol(&bytes, "mallo").map(|v| v.0),
            Some(value)
        );
        // Cut short: no symbol, no panic.
        for cut in [0, 64, 4096, bytes.len() / 2] {
            let _ = super::dynamic_symbol(&bytes[..cut], "malloc");
        }
    }

    use super::*;

    /// A minimal ELF64 little-endian header with one PT_LOAD.
    pub(crate) fn elf64(machine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let p = 64;
        b[p..p + 4].copy_from_slice(&1u32.to_le_bytes());
        b[p + 4..p + 8].copy_from_slice(&6u32.to_le_bytes());
        b[p + 16..p + 24].copy_from_slice(&0x3000u64.to_le_bytes());
        b[p + 32..p + 40].copy_from_slice(&0x100u64.to_le_bytes());
        b[p + 40..p + 48].copy_from_slice(&0x2100u64.to_le_bytes());
        b
    }

    /// Found by the `elf` fuzz target: a section table whose offset is
    /// near the top of the address space overflowed `base + 4`.
    #[test]
    fn program_facts_with_a_section_table_at_the_end_of_memory() {
        let crash = [
            0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00, 0xff, 0xff, 0x3f, 0xff, 0x43, 0x43, 0x43,
            0xff, 0xff, 0xff, 0xff, 0xf7, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61,
            0xff, 0xff, 0x2c, 0x7f, 0x7f, 0x45, 0x4c, 0x46, 0x01, 0x01, 0x00, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x20, 0x34, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x27, 0x00, 0xfb, 0xff, 0xff, 0x01, 0x00, 0xff, 0xff, 0x34, 0x00,
            0x00, 0xff, 0x02, 0x00, 0x00, 0xff,
        ];
        assert_eq!(program_facts(&crash).map(|f| f.defines_malloc), Some(false));
    }

    /// Found by the `elf` fuzz target: a symbol table entry whose offset
    /// is near the top of the address space overflowed `base + 6` in
    /// [`dynamic_symbol`].
    #[test]
    fn dynamic_symbol_with_a_symbol_at_the_end_of_memory() {
        let crash = [
            0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0xeb, 0xff, 0xff,
            0xff, 0x00, 0x03, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x70, 0x11, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfc, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00,
            0x0d, 0x00, 0x40, 0x00, 0x27, 0x00, 0x26, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00,
            0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd8, 0x02,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd8, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00,
            0x00, 0x00, 0x18, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x03, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x18, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88, 0x0a,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00,
            0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x06,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x10, 0x00, 0x00, 0x00, 0x65, 0x74, 0xe5, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0xa4, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa4, 0x02, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0xd0, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0xd0, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3d, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0xd8, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe8, 0x02, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
            0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0xe0, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0xe0, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3d, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0xe0, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
            0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x58,
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x58, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x58, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x53, 0xe5, 0x74, 0x64, 0x04, 0x00, 0x00, 0x7f, 0x45,
            0x4c, 0x46, 0x00, 0x00, 0xe0, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3d,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(dynamic_symbol(&crash, "dlopen"), None);
        let _ = program_facts(&crash);
    }

    #[test]
    fn sanitizer_runtimes_are_known_by_their_libraries_and_entries() {
        for (name, want) in [
            (&b"libasan.so.8\0"[..], Some(Sanitizer::Address)),
            (b"libclang_rt.asan-x86_64.so\0", Some(Sanitizer::Address)),
            (b"__asan_init\0", Some(Sanitizer::Address)),
            (b"liblsan.so.0\0", Some(Sanitizer::Leak)),
            (b"__lsan_init\0", Some(Sanitizer::Leak)),
            (b"libtsan.so.2\0", Some(Sanitizer::Thread)),
            (b"__tsan_init\0", Some(Sanitizer::Thread)),
            (b"__asan_report_load8\0", None),
            (b"libc.so.6\0", None),
            (b"lib\0", None),
            (b"__\0", None),
        ] {
            assert_eq!(
                Sanitizer::of(name),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn reads_header_and_loads() {
        let e = parse(&elf64(62)).unwrap();
        assert_eq!(
            (e.class, e.machine_name(), e.type_name()),
            (64, "x86-64", "DYN")
        );
        assert_eq!(e.loads.len(), 1);
        assert_eq!(e.loads[0].mem_size, 0x2100);
        assert_eq!(e.arch(), "x86-64 (ELF64)");
    }

    #[test]
    fn rejects_non_elf_and_truncated() {
        assert_eq!(parse(b"#!/bin/sh\n"), Err(NotElf::BadMagic));
        assert_eq!(parse(b"\x7fELF\x02\x01"), Err(NotElf::Truncated));
        let mut b = elf64(62);
        b.truncate(80); // program header cut off: header still reads
        assert_eq!(parse(&b).unwrap().loads.len(), 0);
    }

    /// Reads `b` the way a file would be read.
    fn reader(b: &[u8]) -> impl FnMut(u64, usize) -> Option<Vec<u8>> + '_ {
        move |off, len| {
            let off = usize::try_from(off).ok()?;
            let end = off.checked_add(len)?.min(b.len());
            Some(b.get(off..end)?.to_vec())
        }
    }

    #[test]
    fn section_headers_of_a_built_object() {
        // ELF64 header + two sections (null, .data) + names.
        let mut b = elf64(62);
        let names = b"\0.data\0.shstrtab\0";
        let names_off = b.len() as u64;
        b.extend_from_slice(names);
        let shoff = b.len() as u64;
        b[40..48].copy_from_slice(&shoff.to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        b[60..62].copy_from_slice(&3u16.to_le_bytes());
        b[62..64].copy_from_slice(&2u16.to_le_bytes());
        let mut sh = |name: u32, kind: u32, flags: u64, addr: u64, off: u64, size: u64| {
            let mut e = vec![0u8; 64];
            e[0..4].copy_from_slice(&name.to_le_bytes());
            e[4..8].copy_from_slice(&kind.to_le_bytes());
            e[8..16].copy_from_slice(&flags.to_le_bytes());
            e[16..24].copy_from_slice(&addr.to_le_bytes());
            e[24..32].copy_from_slice(&off.to_le_bytes());
            e[32..40].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&e);
        };
        sh(0, 0, 0, 0, 0, 0);
        sh(1, 1, SHF_ALLOC | 1, 0x4000, 0x3000, 0x800);
        sh(7, 3, 0, 0, names_off, names.len() as u64);
        let s = sections(&mut reader(&b)).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].name.as_str(), s[0].addr, s[0].size),
            (".data", 0x4000, 0x800)
        );
        assert!(s[0].is_loaded());
        assert_eq!(s[1].name, ".shstrtab");
        assert!(!s[1].is_loaded());
        // A table cut short: the sections that fit are kept.
        let cut = &b[..b.len() - 40];
        assert_eq!(sections(&mut reader(cut)).unwrap().len(), 1);
    }

    #[test]
    fn sections_of_this_test_binary() {
        let b = std::fs::read("/proc/self/exe").unwrap();
        let s = sections(&mut reader(&b)).unwrap();
        assert!(s.iter().any(|s| s.name == ".text" && s.is_loaded()));
        assert!(s.iter().any(|s| s.name == ".bss" && s.kind == SHT_NOBITS));
    }

    #[test]
    fn real_executable() {
        let b = std::fs::read("/proc/self/exe").unwrap();
        let e = parse(&b[..4096.min(b.len())]).unwrap();
        assert!(!e.loads.is_empty());
    }
}

/// What `vmmap run` must know about a program before preloading the agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramFacts {
    /// The dynamic loader it asks for (`PT_INTERP`); None for a static
    /// binary, which ignores `LD_PRELOAD`.
    pub interp: Option<String>,
    /// The executable defines `malloc` itself (a statically linked
    /// jemalloc, mimalloc or tcmalloc): its own calls never reach the agent.
    pub defines_malloc: bool,
    /// The sanitizer runtime it is built with, if any (AddressSanitizer,
    /// LeakSanitizer, ThreadSanitizer): from a needed library
    /// (`libasan.so.8`, gcc's way) or the runtime's entry symbols, linked
    /// in (clang's way) or called (`__asan_init`).
    pub sanitizer: Option<Sanitizer>,
}

/// A sanitizer runtime a program is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanitizer {
    /// AddressSanitizer (checks for leaks at exit, as LeakSanitizer).
    Address,
    /// LeakSanitizer alone.
    Leak,
    /// ThreadSanitizer.
    Thread,
}

impl Sanitizer {
    /// Its name, as its runtime calls itself.
    pub fn name(self) -> &'static str {
        match self {
            Sanitizer::Address => "AddressSanitizer",
            Sanitizer::Leak => "LeakSanitizer",
            Sanitizer::Thread => "ThreadSanitizer",
        }
    }

    /// Whether it checks for leaks at exit by default (LeakSanitizer,
    /// which stops every thread with ptrace and fails in a process that
    /// has a tracer already).
    pub fn checks_leaks(self) -> bool {
        matches!(self, Sanitizer::Address | Sanitizer::Leak)
    }

    /// The sanitizer a needed library's name (`libasan.so.8`,
    /// `libclang_rt.asan-x86_64.so`) or a symbol's (`__asan_init`)
    /// belongs to.
    fn of(name: &[u8]) -> Option<Sanitizer> {
        let (rest, symbol) = match name.strip_prefix(b"__") {
            Some(rest) => (rest, true),
            None => (
                name.strip_prefix(b"libclang_rt.")
                    .or_else(|| name.strip_prefix(b"lib"))?,
                false,
            ),
        };
        let (kind, after) = rest.split_at_checked(4)?;
        if symbol && !after.starts_with(b"_init\0") {
            return None;
        }
        match kind {
            b"asan" => Some(Sanitizer::Address),
            b"lsan" => Some(Sanitizer::Leak),
            b"tsan" => Some(Sanitizer::Thread),
            _ => None,
        }
    }
}

/// Reads [`ProgramFacts`] from a whole 64-bit little-endian ELF file
/// (None for anything else).
pub fn program_facts(bytes: &[u8]) -> Option<ProgramFacts> {
    program_facts_from(&mut |off, len| {
        let off = usize::try_from(off).ok()?;
        let end = off.checked_add(len)?.min(bytes.len());
        bytes.get(off..end).map(<[u8]>::to_vec)
    })
}

/// The largest symbol table, string table or dynamic section
/// [`program_facts_from`] reads; a larger one (a huge unstripped
/// `.symtab`) is passed over, the dynamic symbols still read.
const MAX_FACT_SECTION: usize = 64 << 20;

/// [`program_facts`] through `read(offset, len)`, as [`sections`] reads:
/// only the header, the program headers, the loader's path, the section
/// table, the symbol tables with their strings and the dynamic section
/// are read, never the whole file (Chromium's executable is 300 MB, its
/// dynamic symbols a few hundred KB).
pub fn program_facts_from(
    read: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Option<ProgramFacts> {
    let head = read(0, 64)?;
    let info = parse(&head).ok()?;
    if info.class != 64 || !info.little_endian {
        return None;
    }
    let r = Reader { b: &head, le: true };
    let mut facts = ProgramFacts::default();
    let (phoff, phentsize, phnum) = (r.u64(32)?, usize::from(r.u16(54)?), usize::from(r.u16(56)?));
    if phentsize >= 56 {
        let phdrs = read(phoff, (phnum * phentsize).min(MAX_SECTION_TABLE)).unwrap_or_default();
        let p = Reader {
            b: &phdrs,
            le: true,
        };
        for base in (0..phnum).map(|i| i * phentsize) {
            if p.u32(base) != Some(3) {
                continue;
            }
            // PT_INTERP: a NUL-terminated path.
            let (Some(off), Some(len)) = (p.u64(base + 8), p.u64(base + 32)) else {
                break;
            };
            let s = read(off, usize::try_from(len).ok()?.min(4096))?;
            let s = s.split(|&c| c == 0).next().unwrap_or_default();
            facts.interp = Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    // Section headers: a defined function named malloc in the dynamic
    // and the static symbol tables, a sanitizer's entry among their
    // symbols, and a sanitizer's runtime among the needed libraries.
    let (shoff, shentsize, shnum) = (r.u64(40)?, usize::from(r.u16(58)?), usize::from(r.u16(60)?));
    if shentsize < 64 || shoff == 0 {
        return Some(facts);
    }
    let Some(table) = read(shoff, (shnum * shentsize).min(MAX_SECTION_TABLE)) else {
        return Some(facts);
    };
    let t = Reader {
        b: &table,
        le: true,
    };
    // (type, offset, size, link, entsize) of entry i
    let section = |i: usize| -> Option<(u32, u64, usize, u32, u64)> {
        let b = i.checked_mul(shentsize)?;
        let size = usize::try_from(t.u64(b + 32)?).ok()?;
        Some((
            t.u32(b + 4)?,
            t.u64(b + 24)?,
            size,
            t.u32(b + 40)?,
            t.u64(b + 56)?,
        ))
    };
    for i in 0..shnum {
        let Some((kind, off, size, link, entsize)) = section(i) else {
            break;
        };
        if !matches!(kind, 2 | 6 | 11) {
            continue; // SHT_SYMTAB, SHT_DYNAMIC, SHT_DYNSYM
        }
        let Some((_, str_off, str_size, _, _)) = section(link as usize) else {
            continue;
        };
        if size > MAX_FACT_SECTION || str_size > MAX_FACT_SECTION {
            continue;
        }
        let (Some(data), Some(strtab)) = (read(off, size), read(str_off, str_size)) else {
            continue;
        };
        let entsize = usize::try_from(entsize).unwrap_or(0);
        scan_for_facts(kind, &data, &strtab, entsize, &mut facts);
    }
    Some(facts)
}

/// What one symbol table (`kind` 2 or 11) or dynamic section (6) tells
/// of [`ProgramFacts`], `strtab` being its linked string table.
fn scan_for_facts(kind: u32, data: &[u8], strtab: &[u8], entsize: usize, facts: &mut ProgramFacts) {
    let r = Reader { b: data, le: true };
    let name_at = |off: u64| usize::try_from(off).ok().and_then(|o| strtab.get(o..));
    if kind == 6 {
        // (tag, value) pairs; DT_NEEDED (1) names a library.
        for base in (0..data.len() / 16).map(|e| e * 16) {
            let (Some(tag), Some(val)) = (r.u64(base), r.u64(base + 8)) else {
                break;
            };
            if let (1, Some(name)) = (tag, name_at(val)) {
                facts.sanitizer = facts.sanitizer.or(Sanitizer::of(name));
            }
        }
        return;
    }
    if entsize < 24 {
        return;
    }
    for base in (0..data.len() / entsize).map(|s| s * entsize) {
        let (Some(name), Some(&st_info), Some(shndx)) =
            (r.u32(base), data.get(base + 4), r.u16(base + 6))
        else {
            break;
        };
        if st_info & 0xf != 2 {
            continue; // not STT_FUNC
        }
        let Some(n) = name_at(u64::from(name)) else {
            continue;
        };
        if facts.sanitizer.is_none() && n.starts_with(b"__") {
            facts.sanitizer = Sanitizer::of(n);
        }
        if shndx != 0 && n.starts_with(b"malloc\0") {
            facts.defines_malloc = true;
        }
    }
}

/// The end (`p_vaddr + p_memsz`) of the last executable `PT_LOAD` segment
/// of a 64-bit little-endian ELF file, and the lowest `p_vaddr` of its
/// segments (as [`dynamic_symbol`] gives it): `vmmap attach` writes its
/// way back for the thread it borrows in the rest of that page, mapped
/// executable but holding no code. None when no segment is executable, or
/// when another segment shares the rest of that page.
pub fn exec_segment_end(bytes: &[u8]) -> Option<(u64, u64)> {
    let info = parse(bytes).ok()?;
    if info.class != 64 || !info.little_endian {
        return None;
    }
    let first_vaddr = info.loads.iter().map(|l| l.vaddr).min()?;
    let end = info
        .loads
        .iter()
        .filter(|l| l.flags & 1 != 0)
        .map(|l| l.vaddr.checked_add(l.mem_size))
        .max()??;
    let page_end = end.checked_next_multiple_of(4096)?;
    let shared = info
        .loads
        .iter()
        .any(|l| l.vaddr < page_end && l.vaddr.saturating_add(l.mem_size) > end);
    (!shared).then_some((first_vaddr, end))
}

/// The value (`st_value`: an address relative to the load bias, for a
/// shared library) of the defined dynamic symbol `name` of a whole 64-bit
/// little-endian ELF file, and the lowest `p_vaddr` of its PT_LOAD
/// segments: `vmmap attach` finds `dlopen` in the target's libc and its
/// own entry in the agent this way. None when either is missing.
pub fn dynamic_symbol(bytes: &[u8], name: &str) -> Option<(u64, u64)> {
    let info = parse(bytes).ok()?;
    if info.class != 64 || !info.little_endian {
        return None;
    }
    let first_vaddr = info.loads.iter().map(|l| l.vaddr).min()?;
    let r = Reader { b: bytes, le: true };
    let (shoff, shentsize, shnum) = (r.u64(40)?, usize::from(r.u16(58)?), usize::from(r.u16(60)?));
    if shentsize < 64 {
        return None;
    }
    // An offset inside `bytes` plus a field's offset cannot overflow.
    let inside = |base: usize| (base < bytes.len()).then_some(base);
    let section = |i: usize| -> Option<(u32, usize, usize, u32, usize)> {
        let base = usize::try_from(shoff)
            .ok()?
            .checked_add(i.checked_mul(shentsize)?)
            .and_then(inside)?;
        // (type, offset, size, link, entsize)
        Some((
            r.u32(base + 4)?,
            usize::try_from(r.u64(base + 24)?).ok()?,
            usize::try_from(r.u64(base + 32)?).ok()?,
            r.u32(base + 40)?,
            usize::try_from(r.u64(base + 56)?).ok()?,
        ))
    };
    let mut wanted = name.as_bytes().to_vec();
    wanted.push(0);
    for i in 0..shnum.min(65536) {
        let (kind, off, size, link, entsize) = section(i)?;
        if kind != 11 || entsize < 24 {
            continue; // SHT_DYNSYM only
        }
        let (_, str_off, str_size, _, _) = section(link as usize)?;
        let strtab = bytes.get(str_off..str_off.checked_add(str_size)?)?;
        for s in 0..size / entsize {
            let base = off.checked_add(s * entsize).and_then(inside)?;
            let (n, shndx, value) = (r.u32(base)? as usize, r.u16(base + 6)?, r.u64(base + 8)?);
            if shndx == 0 || value == 0 {
                continue; // undefined
            }
            if strtab.get(n..n.saturating_add(wanted.len())) == Some(&wanted[..]) {
                return Some((value, first_vaddr));
            }
        }
    }
    None
}
