//! Pass 2: ELF objects become Image blocks. The consecutive mappings of
//! one file (its `PT_LOAD` segments and the PROT_NONE gaps the loader
//! leaves between them) form one block, and the anonymous mapping that
//! starts where the last segment ends joins it as `.bss` when the program
//! headers say the last segment's memory size reaches into it.

use std::borrow::Cow;

use super::basic::{file_key, Probes};
use super::{is_plain_anon, Claim, FileProbe, Plan};
use crate::elf::ElfInfo;
use crate::model::{Confidence, MemoryType, Region};

pub(super) fn plan_images(regions: &mut [Region], probes: &Probes, plan: &mut Plan) {
    let n = regions.len();
    let mut i = 0;
    while i < n {
        let probe = (regions[i].memory_type == MemoryType::MappedFile)
            .then(|| probes.get(&file_key(&regions[i])))
            .flatten();
        let Some(probe) = probe.filter(|p| !matches!(p, FileProbe::NotElf)) else {
            i += 1;
            continue;
        };
        let key = file_key(&regions[i]);
        let mut j = i + 1;
        while j < n
            && regions[j].memory_type == MemoryType::MappedFile
            && file_key(&regions[j]) == key
            && regions[j].path == regions[i].path
        {
            j += 1;
        }
        let run = &mut regions[i..j];
        let has_exec = run.iter().any(|m| m.perms.exec());
        let (is_image, evidence): (bool, Cow<'static, str>) = match probe {
            FileProbe::Elf(e) if has_exec || run.len() > 1 => (
                true,
                Cow::Owned(format!(
                    "ELF header ({} {}) and {} loader-style segment(s)",
                    e.type_name(),
                    e.arch(),
                    run.len()
                )),
            ),
            FileProbe::Elf(_) => (
                false,
                Cow::Borrowed(
                    "ELF file mapped as data (one non-executable mapping), not by the loader",
                ),
            ),
            FileProbe::Unreadable(_) if has_exec => (
                true,
                Cow::Borrowed("file unreadable; taken as an image because it is mapped executable"),
            ),
            _ => (false, Cow::Borrowed("file unreadable and not executable")),
        };
        if !is_image {
            for m in run {
                m.evidence = evidence.clone();
            }
            i = j;
            continue;
        }
        for m in run.iter_mut() {
            m.memory_type = MemoryType::Image;
            m.details = segment_label(m).to_string();
            m.evidence = Cow::Borrowed("segment of an ELF image");
        }
        if let (FileProbe::Elf(elf), Some(next)) = (probe, regions.get(j)) {
            if let Some(note) = bss_of(elf, &regions[i..j], next) {
                let bss = &mut regions[j];
                bss.memory_type = MemoryType::Image;
                bss.details = ".bss (anonymous)".to_string();
                bss.evidence = Cow::Owned(note);
                j += 1;
            }
        }
        let details = regions[i].path.to_string();
        let claim =
            Claim::new(MemoryType::Image, details, evidence).confidence(Confidence::Certain);
        plan.add(i, j - i, claim, None);
        i = j;
    }
}

fn segment_label(m: &Region) -> &'static str {
    match (m.perms.read(), m.perms.write(), m.perms.exec()) {
        (_, _, true) => "code (r-x)",
        (true, true, false) => "data (rw-)",
        (true, false, false) => "read-only data (r--)",
        (false, false, false) => "gap (PROT_NONE)",
        (false, true, false) => "data (-w-)",
    }
}

/// If `next` is the anonymous `.bss` of the image in `run`, says why.
fn bss_of(elf: &ElfInfo, run: &[Region], next: &Region) -> Option<String> {
    let last = run.last()?;
    if !is_plain_anon(next) || next.perms.shared() || next.start != last.end || !next.perms.write()
    {
        return None;
    }
    // Load bias: where the segment with file offset 0 was placed, minus its
    // page-aligned virtual address.
    let first = run.iter().find(|m| m.offset == 0)?;
    let first_load = elf.loads.iter().min_by_key(|l| l.vaddr)?;
    let page = 4096u64;
    let bias = first.start.checked_sub(first_load.vaddr & !(page - 1))?;
    let top = elf
        .loads
        .iter()
        .map(|l| bias.wrapping_add(l.vaddr).wrapping_add(l.mem_size))
        .max()?;
    let top = top.checked_add(page - 1)? & !(page - 1);
    if top <= next.start {
        return None;
    }
    Some(if next.end <= top {
        "anonymous mapping where the last PT_LOAD's memory size extends past its file size: the image's .bss".to_string()
    } else {
        format!(
            ".bss of the image; the kernel merged it with {} bytes of adjacent anonymous memory",
            next.end - top
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::classify;
    use super::super::testutil::FakeInspector;
    use super::*;
    use crate::elf::LoadSegment;
    use crate::proc::smaps::Mapping;

    fn m(start: u64, end: u64, perms: &[u8; 4], offset: u64, inode: u64, path: &str) -> Mapping {
        Mapping {
            start,
            end,
            perms: *perms,
            offset,
            inode,
            dev_major: 8,
            path: path.into(),
            ..Mapping::default()
        }
    }

    #[test]
    fn segments_gap_and_bss_form_one_image() {
        let lib = "/usr/lib/libfoo.so";
        let maps = vec![
            m(0x10000, 0x11000, b"r--p", 0, 5, lib),
            m(0x11000, 0x13000, b"r-xp", 0x1000, 5, lib),
            m(0x13000, 0x14000, b"---p", 0x3000, 5, lib),
            m(0x14000, 0x15000, b"rw-p", 0x3000, 5, lib),
            m(0x15000, 0x17000, b"rw-p", 0, 0, ""),
            m(0x17000, 0x18000, b"rw-p", 0, 0, ""),
            m(0x20000, 0x21000, b"r--p", 0, 6, "/data.bin"),
        ];
        let elf = ElfInfo {
            class: 64,
            little_endian: true,
            machine: 62,
            file_type: 3,
            loads: vec![
                LoadSegment {
                    offset: 0,
                    vaddr: 0,
                    file_size: 0x1000,
                    mem_size: 0x1000,
                    flags: 4,
                },
                LoadSegment {
                    offset: 0x3000,
                    vaddr: 0x4000,
                    file_size: 0x800,
                    mem_size: 0x6000,
                    flags: 6,
                },
            ],
        };
        let mut fake = FakeInspector::default();
        fake.files.insert(lib.into(), FileProbe::Elf(elf));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(r.len(), 3, "{r:#?}");
        assert_eq!(r[0].memory_type, MemoryType::Image);
        assert_eq!(r[0].sub_blocks.len(), 5, "4 segments + .bss");
        assert_eq!((r[0].start, r[0].end), (0x10000, 0x17000));
        assert_eq!(r[0].sub_blocks[4].details, ".bss (anonymous)");
        // Only the one anonymous VMA that starts at the image's end is .bss.
        assert_eq!(r[1].memory_type, MemoryType::PrivateData);
        assert_eq!(r[2].memory_type, MemoryType::MappedFile, "not ELF");
    }
}
