//! Image sections (`--sections`): each ELF image's allocated sections
//! (`.text`, `.rodata`, `.data.rel.ro`, `.got`, `.data`, `.bss`, …) placed
//! at their run-time addresses, with per-section figures from pagemap.
//!
//! A section's address is its link-time `sh_addr` plus the load bias: where
//! the mapping of file offset 0 starts, minus the page-aligned address of
//! the lowest `PT_LOAD`. Sections do not start on page boundaries, so a
//! page can hold the end of one section and the start of the next; such a
//! page counts in both (and `boundary_pages` says how many there were), so
//! section figures can add up to more than the image's.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::procdir::ProcDir;
use super::Options;
use crate::elf;
use crate::error::Result;
use crate::model::{MemoryType, Region, Snapshot};
use crate::proc::pagemap;
use crate::sharing::{shared_by_exclusive_bit, PageSharing, SectionFigures};

/// Fills in [`Region::sections`] of every image whose file can be read.
/// Images whose file is unreadable or has no section headers keep none.
pub fn image_sections(snap: &mut Snapshot, opts: &Options) -> Result<()> {
    let dir = ProcDir::open(&opts.proc_root, snap.process.pid)?;
    let path = dir.path("pagemap");
    let pm = File::open(&path).map_err(|e| dir.error(path.clone(), e))?;
    let page = snap.kernel.page_size;
    for r in &mut snap.regions {
        if r.memory_type != MemoryType::Image || r.inode == 0 {
            continue;
        }
        let Some(secs) = load_sections(&dir, r, page) else {
            continue;
        };
        let mut out = Vec::with_capacity(secs.len());
        for (name, start, end) in &secs {
            let first = start / page;
            let last = end.div_ceil(page);
            let mut entries = vec![0u8; ((last - first) * 8) as usize];
            let got = match pm.read_at(&mut entries, first * 8) {
                Ok(n) => n,
                Err(e) => return Err(dir.error(path.clone(), e)),
            };
            let mut acc = PageSharing::default();
            let mut private = 0;
            for (i, e) in pagemap::entries(&entries[..got]).enumerate() {
                let addr = (first + i as u64) * page;
                let file_vma = r.vmas().iter().any(|v| v.contains(addr) && v.inode != 0);
                acc.tally(e, file_vma, Some(shared_by_exclusive_bit(e)), page);
                if e & pagemap::PRESENT != 0 && e & pagemap::FILE_OR_SHARED == 0 {
                    private += page;
                }
            }
            let boundary = boundary_pages(&secs, *start, *end, page);
            out.push(SectionFigures {
                name: name.clone(),
                start: *start,
                end: *end,
                resident: acc.resident,
                private,
                shareable: acc.shareable,
                shared: acc.shared,
                boundary_pages: boundary,
            });
        }
        r.sections = out;
    }
    Ok(())
}

/// How many of the edge pages of section `start..end` another section of
/// `secs` also touches (0, 1 or 2): pages counted in both.
fn boundary_pages(secs: &[(String, u64, u64)], start: u64, end: u64, page: u64) -> u64 {
    let (first, last) = (start / page, end.div_ceil(page));
    let others = |pg: u64| {
        secs.iter()
            .any(|&(_, s, e)| (s, e) != (start, end) && s / page <= pg && pg < e.div_ceil(page))
    };
    let mut n = u64::from(others(first));
    if last - 1 != first && others(last - 1) {
        n += 1;
    }
    n
}

/// The loaded sections of image `r` as (name, start, end) at run-time
/// addresses, in address order; `None` if the file cannot be read.
fn load_sections(dir: &ProcDir, r: &Region, page: u64) -> Option<Vec<(String, u64, u64)>> {
    // map_files/ reaches the very file mapped, even when it was deleted or
    // replaced on disk since, or lives in another mount namespace.
    let vma = r
        .vmas()
        .iter()
        .find(|v| v.inode == r.inode && v.offset == 0)?;
    let f = crate::regular::open(&dir.path(&format!("map_files/{:x}-{:x}", vma.start, vma.end)))
        .or_else(|_| crate::regular::open(std::path::Path::new(&*r.path)))
        .ok()?;
    let mut read = file_reader(&f);
    let head = read(0, 4096)?;
    let info = elf::parse(&head).ok()?;
    let lowest = info.loads.iter().map(|l| l.vaddr).min()?;
    let bias = vma.start.checked_sub(lowest & !(page - 1))?;
    let mut out: Vec<(String, u64, u64)> = elf::sections(&mut read)
        .ok()?
        .into_iter()
        .filter(elf::Section::is_loaded)
        .filter_map(|s| {
            let start = bias.checked_add(s.addr)?;
            Some((s.name, start, start.checked_add(s.size)?))
        })
        // A section outside the image's mappings is not in this process.
        .filter(|(_, s, e)| r.start <= *s && *e <= r.end)
        .collect();
    out.sort_by_key(|s| s.1);
    Some(out)
}

/// `read(offset, len)` over `f`, for the ELF readers that take one
/// ([`elf::sections`], [`elf::program_facts_from`]): the bytes there,
/// fewer at the end of the file, `None` on an error or past the end. A
/// length larger than the file is cut to it before anything is allocated
/// (a damaged header may ask for gigabytes).
pub fn file_reader(f: &File) -> impl FnMut(u64, usize) -> Option<Vec<u8>> + '_ {
    let size = f.metadata().map_or(0, |m| m.len());
    move |off: u64, len: usize| {
        let len = len.min(usize::try_from(size.checked_sub(off)?).unwrap_or(usize::MAX));
        let mut b = vec![0u8; len];
        let mut got = 0;
        while got < len {
            match f.read_at(&mut b[got..], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(_) => return None,
            }
        }
        b.truncate(got);
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::boundary_pages;

    #[test]
    fn edge_pages_shared_with_neighbours() {
        let p = 0x1000;
        let secs: Vec<(String, u64, u64)> = [
            (".got", 0x3fe8, 0x4000),  // ends exactly at a page boundary
            (".data", 0x4000, 0x6010), // its last page holds the start of .bss
            (".bss", 0x6010, 0x9000),
            (".tiny", 0xa100, 0xa200), // alone in its page
        ]
        .iter()
        .map(|&(n, s, e)| (n.to_string(), s, e))
        .collect();
        assert_eq!(boundary_pages(&secs, 0x3fe8, 0x4000, p), 0);
        assert_eq!(boundary_pages(&secs, 0x4000, 0x6010, p), 1);
        assert_eq!(boundary_pages(&secs, 0x6010, 0x9000, p), 1);
        assert_eq!(boundary_pages(&secs, 0xa100, 0xa200, p), 0);
    }
}
