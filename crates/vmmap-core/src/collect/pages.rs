//! Exact sharing (`--sharing exact`): reads each VMA's pagemap entries and,
//! with root, the kpagecount of the shareable pages the kernel does not
//! mark exclusive, and stores the per-page figures in the snapshot's VMAs.
//!
//! Cost: one pread per 64 Ki pages of pagemap. A page with bit 56 set has
//! mapcount 1 and needs no lookup; the frames of the others are gathered
//! into runs of consecutive frames, sorted, and read from kpagecount a
//! window at a time (at most 128 Ki frames, 1 MiB, per pread), never one
//! read per page. The kernel spends about 150 ns per frame read, about
//! what smaps spends per page, so the lookups cost what the shared pages
//! are worth.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::procdir::ProcDir;
use super::Options;
use crate::error::{Error, Result};
use crate::model::{MemoryType, Region, Snapshot};
use crate::proc::kpage::{self, Run, RunBuilder};
use crate::proc::pagemap;
use crate::proc::smaps::Field;
use crate::sharing::{
    precision_from_config, release_predates_no_page_mapcount, shared_by_exclusive_bit, FrameTag,
    MapcountPrecision, PageSharing, SharingMethod, SharingSource,
};

/// pagemap entries read per pread (512 KiB).
const PAGEMAP_CHUNK: usize = 1 << 16;
/// Frames closer than this share one kpagecount read.
const MAX_GAP: u64 = 8;
/// Frames per kpagecount read at most (1 MiB of counts).
const MAX_WINDOW: u64 = 1 << 17;

/// What [`exact_sharing`] found besides the per-VMA figures.
#[derive(Debug, Default)]
pub struct PageScan {
    /// Every present page's frame, as runs, when frames were asked for and
    /// readable (root); `None` otherwise.
    pub(crate) frames: Option<Vec<Run<FrameTag>>>,
}

/// Whether this process can read page frame numbers and kpagecount
/// (CAP_SYS_ADMIN), found by trying to open it.
pub(crate) fn can_read_frames(proc_root: &Path) -> bool {
    File::open(proc_root.join("kpagecount")).is_ok()
}

/// What [`exact_sharing`] reads besides pagemap.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageOptions {
    /// Decide Shared WS from kpagecount (root) instead of pagemap bit 56.
    /// Both read the same per-page mapcount on kernels that keep one, so
    /// this is a cross-check that costs a read per shared frame.
    pub kpagecount: bool,
    /// Return every present page's frame (root), for multi-process
    /// accounting.
    pub keep_frames: bool,
}

/// Reads the page tables of `snap`'s process and fills in every VMA's
/// [`Region::pages`] and [`Snapshot::sharing`].
///
/// Shared WS comes from pagemap bit 56 (the kernel's "mapcount is 1"
/// test for the page), or with [`PageOptions::kpagecount`] from the
/// frames' kpagecount. As root, on a kernel that may lack per-page
/// mapcounts, kpageflags says whether shared pages lie in large folios
/// (where the kernel's answer is approximate).
///
/// The work is split in two halves by pages, read on two threads: the
/// kernel's page-table walk for pagemap and its per-frame lookups are the
/// whole cost, and they parallelise.
pub fn exact_sharing(snap: &mut Snapshot, opts: &Options, how: PageOptions) -> Result<PageScan> {
    let pid = snap.process.pid;
    let dir = ProcDir::open(&opts.proc_root, pid)?;
    let path = dir.path("pagemap");
    let pm = File::open(&path).map_err(|e| dir.error(path.clone(), e))?;
    let root = can_read_frames(&opts.proc_root);
    let kpath = opts.proc_root.join("kpagecount");
    let kpagecount = match (how.kpagecount, File::open(&kpath)) {
        (false, _) => None,
        (true, Ok(f)) => Some(f),
        (true, Err(e)) => {
            return Err(Error::PermissionDenied {
                pid,
                path: kpath,
                hint: format!("{e}: kpagecount is readable by root (CAP_SYS_ADMIN) only; --sharing exact needs no privilege"),
            })
        }
    };
    let precision = mapcount_precision(&opts.proc_root, &snap.kernel.release);
    let kpageflags = match precision {
        MapcountPrecision::Exact => None,
        _ => File::open(opts.proc_root.join("kpageflags")).ok(),
    };
    let page = snap.kernel.page_size;
    let limit = snap.kernel.user_address_limit;
    let use_counts = kpagecount.is_some();
    let zero = if root { zero_page_frame() } else { None };
    let keep_frames = how.keep_frames && root;

    // Every VMA, with its index in address order.
    let mut work: Vec<(&Region, MemoryType)> = Vec::new();
    for r in &snap.regions {
        for vma in r.vmas() {
            work.push((vma, r.memory_type));
        }
    }
    let nvmas = work.len();
    // Split where half of the pages to read have been passed.
    let weight = |v: &Region| {
        if reads_pagemap(v, keep_frames, limit) {
            v.size() / page
        } else {
            0
        }
    };
    let pages_total: u64 = work.iter().map(|(v, _)| weight(v)).sum();
    let mut split = 0;
    let mut seen = 0u64;
    while split < work.len() && seen < pages_total / 2 {
        seen += weight(work[split].0);
        split += 1;
    }
    let scan = ScanParams {
        page,
        limit,
        zero,
        use_counts,
        lookups: use_counts || kpageflags.is_some(),
        keep_frames,
    };
    let (a, b) = std::thread::scope(|sc| {
        let (first, second) = work.split_at(split);
        let h = sc.spawn(|| scan_vmas(&pm, second, split, &scan));
        let a = scan_vmas(&pm, first, 0, &scan);
        let b = h
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("pagemap reader thread panicked")));
        (a, b)
    });
    let (a, b) = (
        a.map_err(|e| dir.error(path.clone(), e))?,
        b.map_err(|e| dir.error(path.clone(), e))?,
    );
    let mut per_vma = a.per_vma;
    per_vma.extend(b.per_vma);
    debug_assert_eq!(per_vma.len(), nvmas);
    let mut candidates = a.candidates;
    candidates.extend(b.candidates);
    let frames = scan.keep_frames.then(|| {
        let mut f = a.frames;
        f.extend(b.frames);
        f
    });

    let mut large = kpageflags.as_ref().map(|_| 0u64);
    if scan.lookups {
        let windows = kpage::plan(&mut candidates, MAX_GAP, MAX_WINDOW);
        let half = windows.len() / 2;
        let lookup = |ws: &[kpage::Window]| -> std::io::Result<(Vec<u64>, u64)> {
            let mut shared = vec![0u64; nvmas];
            let mut large = 0u64;
            let mut buf = vec![0u8; (MAX_WINDOW * 8) as usize];
            if let Some(kc) = &kpagecount {
                kpage::lookup(
                    &candidates,
                    ws,
                    &mut buf,
                    &mut |w, b| read_window(kc, w, b),
                    &mut |tag, count| {
                        if count > 1 {
                            shared[tag as usize] += page;
                        }
                    },
                )?;
            }
            if let Some(kf) = &kpageflags {
                kpage::lookup(
                    &candidates,
                    ws,
                    &mut buf,
                    &mut |w, b| read_window(kf, w, b),
                    &mut |_, flags| {
                        if flags & (kpage::COMPOUND_HEAD | kpage::COMPOUND_TAIL | kpage::THP) != 0 {
                            large += page;
                        }
                    },
                )?;
            }
            Ok((shared, large))
        };
        let (x, y) = std::thread::scope(|sc| {
            let (first, second) = windows.split_at(half);
            let h = sc.spawn(|| lookup(second));
            let x = lookup(first);
            let y = h.join().unwrap_or_else(|_| {
                Err(std::io::Error::other("kpagecount reader thread panicked"))
            });
            (x, y)
        });
        let kpath = opts.proc_root.join(if use_counts {
            "kpagecount"
        } else {
            "kpageflags"
        });
        for part in [x, y] {
            let (shared, l) = part.map_err(|e| Error::Io {
                path: kpath.clone(),
                source: e,
            })?;
            for (acc, s) in per_vma.iter_mut().zip(shared) {
                acc.shared += s;
            }
            if let Some(t) = &mut large {
                *t += l;
            }
        }
    }

    let mut it = per_vma.into_iter();
    for r in &mut snap.regions {
        let vmas: &mut [Region] = if r.sub_blocks.is_empty() {
            std::slice::from_mut(r)
        } else {
            &mut r.sub_blocks
        };
        for vma in vmas {
            vma.pages = it.next().map(Box::new);
        }
    }
    snap.sharing = Some(SharingMethod {
        source: if use_counts {
            SharingSource::Kpagecount
        } else {
            SharingSource::ExclusiveBit
        },
        mapcount: precision,
        large_folio_bytes: large,
    });
    Ok(PageScan { frames })
}

/// What every pagemap reader needs to know.
struct ScanParams {
    page: u64,
    limit: u64,
    zero: Option<u64>,
    use_counts: bool,
    lookups: bool,
    keep_frames: bool,
}

/// One reader's results.
struct ScanPart {
    per_vma: Vec<PageSharing>,
    /// Frames of shareable pages not marked exclusive, tagged with their
    /// VMA's index: the kpagecount lookups to make.
    candidates: Vec<Run<u32>>,
    frames: Vec<Run<FrameTag>>,
}

/// Pages the kernel leaves out of Rss: hugetlb (smaps counts it apart)
/// and raw frame mappings (`pf`, `io`: vvar, device memory).
fn not_in_rss(vma: &Region) -> bool {
    ["ht", "pf", "io"].iter().any(|f| vma.has_vm_flag(f))
}

/// Whether a VMA's pagemap entries are read: it can hold resident pages
/// that count (not above the user address space, where vsyscall lies),
/// and it is a file or shared mapping or its frames are wanted. A
/// PROT_NONE VMA is read too: pages made PROT_NONE after they were
/// touched stay mapped, and smaps counts them in Rss (Linux 6.18).
fn reads_pagemap(vma: &Region, keep_frames: bool, limit: u64) -> bool {
    let private_anon = vma.inode == 0 && !vma.perms.shared();
    !not_in_rss(vma) && vma.end <= limit && (keep_frames || !private_anon)
}

/// Reads the pagemap entries of `vmas` (whose first has index `first`).
fn scan_vmas(
    pm: &File,
    vmas: &[(&Region, MemoryType)],
    first: usize,
    p: &ScanParams,
) -> std::io::Result<ScanPart> {
    let page = p.page;
    let mut per_vma = Vec::with_capacity(vmas.len());
    let mut candidates = RunBuilder::<u32>::new();
    let mut frames = RunBuilder::<FrameTag>::new();
    let mut buf = vec![0u8; PAGEMAP_CHUNK * 8];
    for (i, &(vma, memory_type)) in vmas.iter().enumerate() {
        let g = (first + i) as u32;
        let mut acc = PageSharing::default();
        let counted = !not_in_rss(vma);
        // Private anonymous memory holds no file or shmem page, so its
        // Shareable and Shared WS are 0 without reading a page: unless its
        // frames are wanted, smaps' figures stand for it.
        if counted && !p.keep_frames && vma.inode == 0 && !vma.perms.shared() {
            acc.resident = vma.fields.bytes(Field::Rss);
            acc.swapped = vma.fields.bytes(Field::Swap);
            per_vma.push(acc);
            continue;
        }
        if reads_pagemap(vma, p.keep_frames, p.limit) {
            let file_vma = vma.inode != 0;
            let (mut at, end) = (vma.start / page, vma.end / page);
            while at < end {
                let n = ((end - at) as usize).min(PAGEMAP_CHUNK);
                let chunk = &mut buf[..n * 8];
                let got = match pm.read_at(chunk, at * 8) {
                    Ok(0) => break,
                    Ok(got) => got,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                for e in pagemap::entries(&chunk[..got]) {
                    let pfn = pagemap::pfn(e);
                    // The shared zero page is no resident memory of
                    // anyone's (smaps leaves it out of Rss too).
                    if p.zero.is_some() && pfn == p.zero {
                        continue;
                    }
                    // A page the kernel marks exclusive has mapcount 1:
                    // only the others need a lookup.
                    let shareable = e & pagemap::FILE_OR_SHARED != 0;
                    let candidate = p.lookups && shareable && shared_by_exclusive_bit(e);
                    let shared = (!(candidate && p.use_counts)).then(|| shared_by_exclusive_bit(e));
                    acc.tally(e, file_vma, shared, page);
                    let Some(pfn) = pfn else { continue };
                    if candidate {
                        candidates.push(pfn, g);
                    }
                    if p.keep_frames {
                        frames.push(
                            pfn,
                            FrameTag {
                                memory_type,
                                shareable,
                            },
                        );
                    }
                }
                at += (got / 8) as u64;
            }
        }
        per_vma.push(acc);
    }
    Ok(ScanPart {
        per_vma,
        candidates: candidates.finish(),
        frames: frames.finish(),
    })
}

/// The frame of the shared zero page, found by reading a fresh anonymous
/// page of our own (a read fault maps the zero page) and looking it up in
/// our own pagemap; `None` without root or if the kernel did otherwise.
pub(crate) fn zero_page_frame() -> Option<u64> {
    let page = super::page_size() as usize;
    // SAFETY: a fresh private anonymous mapping; no existing memory is
    // touched, and it is unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: `p` is a readable mapping of `page` bytes; the volatile
    // read makes the kernel fault the zero page in.
    let _ = unsafe { std::ptr::read_volatile(p.cast::<u8>()) };
    let entry = File::open("/proc/self/pagemap").ok().and_then(|f| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, (p as u64 / page as u64) * 8).ok()?;
        Some(u64::from_le_bytes(b))
    });
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(p, page) };
    let entry = entry?;
    // The zero page is present but belongs to no one: not exclusive.
    (entry & pagemap::EXCLUSIVE == 0).then(|| pagemap::pfn(entry))?
}

/// Reads window `w` of kpagecount or kpageflags; returns the bytes read.
fn read_window(f: &File, w: &kpage::Window, buf: &mut [u8]) -> std::io::Result<usize> {
    let want = buf.len();
    let mut got = 0;
    while got < want {
        match f.read_at(&mut buf[got..], w.first * 8 + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Whether this kernel keeps per-page mapcounts for large folios: it
/// predates the option, or its configuration says (`/proc/config.gz`,
/// else `/boot/config-RELEASE`).
pub(crate) fn mapcount_precision(proc_root: &Path, release: &str) -> MapcountPrecision {
    use std::io::Read;
    if release_predates_no_page_mapcount(release) {
        return MapcountPrecision::Exact;
    }
    let gz = std::fs::File::open(proc_root.join("config.gz"))
        .ok()
        .and_then(|f| {
            let mut text = String::new();
            // The configuration is about 200 KB unpacked; cap it anyway.
            flate2::read::GzDecoder::new(f)
                .take(16 << 20)
                .read_to_string(&mut text)
                .ok()?;
            Some(text)
        });
    let boot = || {
        (proc_root == Path::new("/proc"))
            .then(|| std::fs::read_to_string(format!("/boot/config-{release}")).ok())
            .flatten()
    };
    gz.or_else(boot)
        .and_then(|c| precision_from_config(&c))
        .unwrap_or(MapcountPrecision::Unknown)
}

/// Another process that maps some of the same page frames.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedWith {
    /// Its PID.
    pub(crate) pid: u32,
    /// Its command name.
    pub(crate) name: String,
    /// How many of the region's frames it maps (each counted once).
    pub(crate) pages: u64,
    /// Its mappings that hold them (path, or `[anonymous]`), deduplicated.
    pub(crate) mappings: Vec<String>,
}

/// Which other processes map the frames of `region` (a top-level region
/// of `snap`, from the live process): a join on page frame number over
/// every process's pagemap (root only). Only mappings that can hold the
/// same frames are read: those of the same file or shmem object (device
/// and inode), and for anonymous memory every anonymous mapping
/// (copy-on-write after fork, KSM). Returns the region's own resident
/// frame count and the sharers, most pages first.
pub fn shared_with(
    snap: &Snapshot,
    region: &Region,
    opts: &Options,
) -> Result<(u64, Vec<SharedWith>)> {
    if !can_read_frames(&opts.proc_root) {
        return Err(Error::PermissionDenied {
            pid: snap.process.pid,
            path: opts.proc_root.join("kpagecount"),
            hint: "finding the processes that share a page joins page frame numbers across processes, which the kernel shows only to root (CAP_SYS_ADMIN)".into(),
        });
    }
    let page = snap.kernel.page_size;
    let dir = ProcDir::open(&opts.proc_root, snap.process.pid)?;
    let mut own = Vec::new();
    let mut buf = vec![0u8; PAGEMAP_CHUNK * 8];
    for vma in region.vmas() {
        read_frames(&dir, vma.start, vma.end, page, &mut buf, &mut |pfn| {
            own.push(pfn)
        })?;
    }
    own.sort_unstable();
    own.dedup();
    drop_zero_pages(&mut own, &opts.proc_root)?;
    let keys: Vec<(u32, u32, u64)> = region
        .vmas()
        .iter()
        .map(|v| (v.dev_major, v.dev_minor, v.inode))
        .collect();
    let anon = keys.iter().any(|k| k.2 == 0);
    let rd = std::fs::read_dir(&opts.proc_root).map_err(|e| Error::Io {
        path: opts.proc_root.clone(),
        source: e,
    })?;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == snap.process.pid || own.is_empty() {
            continue;
        }
        // Processes that exit or refuse meanwhile are skipped: this is a
        // survey of the system, not of one target.
        let Ok(other) = ProcDir::open(&opts.proc_root, pid) else {
            continue;
        };
        let Ok(maps) = other.read("maps") else {
            continue;
        };
        let Ok(maps) = crate::proc::smaps::parse(&maps) else {
            continue;
        };
        seen.clear();
        let mut mappings: Vec<String> = Vec::new();
        for m in maps.iter().filter(|m| {
            let k = (m.dev_major, m.dev_minor, m.inode);
            keys.contains(&k) || (anon && m.inode == 0)
        }) {
            let before = seen.len();
            let r = read_frames(&other, m.start, m.end, page, &mut buf, &mut |pfn| {
                if own.binary_search(&pfn).is_ok() {
                    seen.push(pfn);
                }
            });
            if r.is_err() {
                break;
            }
            if seen.len() > before {
                let name = if m.path.is_empty() {
                    "[anonymous]".to_string()
                } else {
                    m.path.to_string()
                };
                if !mappings.contains(&name) {
                    mappings.push(name);
                }
            }
        }
        seen.sort_unstable();
        seen.dedup();
        if !seen.is_empty() {
            let name = other
                .read("comm")
                .map(|c| String::from_utf8_lossy(&c).trim_end().to_string())
                .unwrap_or_default();
            out.push(SharedWith {
                pid,
                name,
                pages: seen.len() as u64,
                mappings,
            });
        }
    }
    out.sort_by(|a, b| b.pages.cmp(&a.pages).then(a.pid.cmp(&b.pid)));
    Ok((own.len() as u64, out))
}

/// The report of [`shared_with`] as plain text lines: the region, its
/// resident page count, then one line per other process.
pub fn shared_with_lines(
    snap: &Snapshot,
    region: &Region,
    own: u64,
    others: &[SharedWith],
    exact: bool,
) -> Vec<String> {
    let mut out = vec![format!(
        "Region {:#x}-{:#x} ({}, {}) of process {}: {} resident page(s), not counting the zero page",
        region.start,
        region.end,
        region.memory_type.name(),
        crate::text::Escaped(&region.details),
        snap.process.pid,
        own
    )];
    if others.is_empty() {
        out.push("No other process maps any of these pages.".into());
    }
    for o in others {
        out.push(format!(
            "{:>8}  {:<16}{:>8} page(s) {:>9}  {}",
            o.pid,
            crate::text::Escaped(&o.name),
            o.pages,
            crate::units::size(o.pages * snap.kernel.page_size, exact),
            o.mappings
                .iter()
                .map(|m| crate::text::escape(m))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

/// Removes the shared zero page (and huge zero page) from sorted frames:
/// every process that read untouched anonymous memory maps it, which says
/// nothing about sharing.
fn drop_zero_pages(frames: &mut Vec<u64>, proc_root: &Path) -> Result<()> {
    let path = proc_root.join("kpageflags");
    let f = File::open(&path).map_err(|e| Error::Io {
        path: path.clone(),
        source: e,
    })?;
    let mut b = RunBuilder::new();
    for &pfn in frames.iter() {
        b.push(pfn, ());
    }
    let mut runs = b.finish();
    let windows = kpage::plan(&mut runs, MAX_GAP, MAX_WINDOW);
    let mut buf = vec![0u8; (MAX_WINDOW * 8) as usize];
    let mut flags = Vec::with_capacity(frames.len());
    kpage::lookup(
        &runs,
        &windows,
        &mut buf,
        &mut |w, b| read_window(&f, w, b),
        &mut |(), v| flags.push(v),
    )
    .map_err(|e| Error::Io {
        path: path.clone(),
        source: e,
    })?;
    // Runs of single-tag frames come back in frame order, one value each,
    // unless a read fell short (past the end of memory): keep those.
    if flags.len() != frames.len() {
        return Ok(());
    }
    let zero: Vec<u64> = frames
        .iter()
        .zip(&flags)
        .filter(|(_, f)| *f & kpage::ZERO_PAGE != 0)
        .map(|(p, _)| *p)
        .collect();
    frames.retain(|p| zero.binary_search(p).is_err());
    Ok(())
}

/// Calls `each` with the frame of every present page in `start..end` of
/// the process in `dir`.
fn read_frames(
    dir: &ProcDir,
    start: u64,
    end: u64,
    page: u64,
    buf: &mut [u8],
    each: &mut dyn FnMut(u64),
) -> Result<()> {
    let path = dir.path("pagemap");
    let pm = File::open(&path).map_err(|e| dir.error(path.clone(), e))?;
    let (mut at, end) = (start / page, end / page);
    while at < end {
        let n = ((end - at) as usize).min(buf.len() / 8);
        let chunk = &mut buf[..n * 8];
        let got = match pm.read_at(chunk, at * 8) {
            Ok(0) => break,
            Ok(g) => g,
            Err(e) => return Err(dir.error(path.clone(), e)),
        };
        for e in pagemap::entries(&chunk[..got]) {
            if let Some(pfn) = pagemap::pfn(e) {
                each(pfn);
            }
        }
        at += (got / 8) as u64;
    }
    Ok(())
}
