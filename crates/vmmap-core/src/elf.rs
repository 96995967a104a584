//! Sans-IO reading of ELF file and program headers: enough to tell an ELF
//! object from any other file (by its header, never by its name), to give a
//! process's architecture, and to find where an image's `.bss` ends.

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
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub file_size: u64,
    /// `p_memsz`.
    pub mem_size: u64,
    /// `p_flags` (1 = X, 2 = W, 4 = R).
    pub flags: u32,
}

impl ElfInfo {
    /// A short architecture name for `e_machine`, e.g. `x86-64`.
    pub fn machine_name(&self) -> &'static str {
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
pub fn machine_name(machine: u16) -> &'static str {
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

struct Reader<'a> {
    b: &'a [u8],
    le: bool,
}

impl Reader<'_> {
    fn arr<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.b.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        let a = self.arr::<2>(at)?;
        Some(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let a = self.arr::<4>(at)?;
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let a = self.arr::<8>(at)?;
        Some(if self.le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn real_executable() {
        let b = std::fs::read("/proc/self/exe").unwrap();
        let e = parse(&b[..4096.min(b.len())]).unwrap();
        assert!(!e.loads.is_empty());
    }
}
