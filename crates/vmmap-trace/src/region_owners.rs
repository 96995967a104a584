//! The Owner column of a traced run's snapshot: for every region, the
//! call that created it (its top symbolised frame) as of the time the
//! snapshot was taken, and for a heap region the call stack with the most
//! bytes live inside it then, with those bytes.
//!
//! The snapshot's own regions are given owners by the rules of
//! [`super::owners`], cut at the snapshot's time (its wall-clock time
//! mapped to each process image's ticks through the clock anchors). One
//! streaming pass over the trace, memory bounded by the mapping calls, the
//! live blocks and the regions, never by the trace's length: it keeps
//! every record but allocations and frees (enough to cut the map into the
//! parts each call made), the live blocks, and the first allocation inside
//! each of the snapshot's VMAs (the call that made glibc create a VMA no
//! call made). Only when a part no call made does not hold its VMA's first
//! allocation (a VMA several calls made parts of) does a second pass look
//! for that part's own first allocation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::calltree::stack_frames;
use super::decode::{Event, Record, TraceInfo};
use super::owners::{owners_of, FirstAllocations, Owner, RegionOwner};
use super::scan;
use super::symbol_cache::{self, CacheWrite};
use super::symbols::{Frame, SymbolOptions, Symbols};
use vmmap_core::export::{OwnerView, Owners};
use vmmap_core::format::{ChunkStream, FormatError, CHUNK_TRACE};
use vmmap_core::model::{MemoryType, Region, Snapshot};
use vmmap_core::proc::smaps::Mapping;

/// The owner of one region, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerCell {
    /// What kind of owner: `call`, `glibc-internal`, `thread-stack`,
    /// `image`, `before-start`, `main-stack`, `kernel`, `agent`,
    /// `unobserved`; `live-heap` for a heap region shown by its live bytes.
    pub kind: &'static str,
    /// The recorded operation behind it (`mmap`, `brk`, `malloc`...).
    pub op: Option<&'static str>,
    /// Its call stack id (0: none).
    pub(crate) stack: u32,
    /// The top symbolised frame of that stack.
    pub frame: Option<Frame>,
    /// For a heap region: the bytes live inside it from that stack.
    pub live_bytes: Option<u64>,
    /// For a heap region: who created it, as text.
    pub(crate) made_by: Option<String>,
    /// The cell: `make_big (calls.c:12)`, `make_big (calls.c:12) +34.2K
    /// live`, `loader`...
    pub text: String,
}

/// The owners of one snapshot's regions.
#[derive(Debug)]
pub struct SnapshotOwners {
    /// Seconds after the traced program started at which the snapshot was
    /// taken (the time the owners are as of).
    pub seconds: f64,
    /// Owner of each region of `Snapshot::regions`, by index.
    pub regions: Vec<Option<OwnerCell>>,
    /// Owner of each sub-block, by region and sub-block index.
    pub sub_blocks: Vec<Vec<Option<OwnerCell>>>,
    /// Whether each region is the tracing agent's own, by index (see
    /// [`agent_regions`]: the same rule, here with every record).
    pub agent: Vec<bool>,
    /// What writing the resolved symbols back into the file did.
    pub cache: CacheWrite,
    /// What could not be resolved, and damage met on the way.
    pub notes: Vec<String>,
}

impl SnapshotOwners {
    /// The owner of region `i`.
    pub fn region(&self, i: usize) -> Option<&OwnerCell> {
        self.regions.get(i)?.as_ref()
    }

    /// The owner of sub-block `j` of region `i`.
    pub fn sub_block(&self, i: usize, j: usize) -> Option<&OwnerCell> {
        self.sub_blocks.get(i)?.get(j)?.as_ref()
    }
}

impl OwnerCell {
    /// The cell as the JSON and CSV exports write it.
    pub(crate) fn view(&self) -> OwnerView<'_> {
        OwnerView {
            kind: self.kind,
            op: self.op,
            function: self.frame.as_ref().map(|f| f.function.as_str()),
            file: self.frame.as_ref().and_then(|f| f.file.as_deref()),
            line: self.frame.as_ref().and_then(|f| f.line),
            live_bytes: self.live_bytes,
            made_by: self.made_by.as_deref(),
            text: &self.text,
        }
    }
}

impl Owners for SnapshotOwners {
    fn region(&self, i: usize) -> Option<OwnerView<'_>> {
        SnapshotOwners::region(self, i).map(OwnerCell::view)
    }
    fn sub_block(&self, i: usize, j: usize) -> Option<OwnerView<'_>> {
        SnapshotOwners::sub_block(self, i, j).map(OwnerCell::view)
    }
}

/// How to compute owners.
#[derive(Clone, Debug, Default)]
pub struct OwnerOptions {
    /// Where to look for debug files.
    pub symbols: SymbolOptions,
    /// Append newly resolved symbols to the file.
    pub write_cache: bool,
}

/// The owners of `snap`'s regions from the trace in the file at `path`, as
/// of the snapshot's time. None when the file holds no trace of the
/// snapshot's process (or `cancel` was set).
pub fn snapshot_owners(
    path: &Path,
    snap: &Snapshot,
    opts: &OwnerOptions,
    cancel: &AtomicBool,
) -> Result<Option<SnapshotOwners>, FormatError> {
    let facts = match ChunkStream::open(path, CHUNK_TRACE) {
        Ok(s) => scan::facts(s),
        // A VMMap .mmp file holds no trace.
        Err(FormatError::NotVmmap) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(At {
        image,
        seconds,
        until,
        cut,
    }) = at(&facts, snap)
    else {
        return Ok(None);
    };
    drop(facts);

    // Pass 1: the mapping calls and thread events; the live blocks; the
    // first allocation inside each VMA.
    let mappings = leaf_mappings(snap);
    let mut first_in: Vec<Option<Record>> = vec![None; mappings.len()];
    let mut kept: Vec<Record> = Vec::new();
    let mut live: HashMap<u64, (u64, u32), foldhash::fast::FixedState> = HashMap::default();
    let stream = ChunkStream::open(path, CHUNK_TRACE)?;
    let identity = stream.file_identity();
    let first = scan::scan_until(stream, until.clone(), |r| {
        if r.image != image || cancel.load(Ordering::Relaxed) {
            return;
        }
        let made = r.event.allocated();
        if let Some((ptr, ..)) = made {
            if let Some(k) = vma_of(&mappings, ptr) {
                first_in[k].get_or_insert_with(|| r.clone());
            }
        }
        if let Some(ptr) = r.event.freed() {
            live.remove(&ptr);
        }
        if let Some((ptr, size, stack)) = made {
            live.insert(ptr, (size, stack));
        }
        if !matches!(
            r.event,
            Event::Alloc { .. } | Event::Realloc { .. } | Event::Free { .. }
        ) {
            kept.push(r.clone());
        }
    });
    if cancel.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let mut notes = Vec::new();
    if let Some(p) = &first.file_problem {
        notes.push(format!("{p}; the trace before it is used"));
    }
    if let Some(d) = &first.damage {
        notes.push(format!("{d}; the owners are as of the last good message"));
    }
    let info = first.info;
    let mut parts = owners_of(&kept, &info, image, cut, mappings.clone());

    // The first allocation inside each part no call made: its VMA's first
    // when that lies in it (the earliest of the whole VMA is the earliest
    // of any part holding it), none when its VMA has none; else a second
    // pass finds it.
    let mut firsts: Vec<Record> = Vec::new();
    let mut unknown: Vec<(u64, u64)> = Vec::new();
    for p in parts.iter().filter(|p| p.owner.unexplained()) {
        let (a, b) = (p.mapping.start, p.mapping.end);
        let vma_first = vma_of(&mappings, a).and_then(|k| first_in[k].as_ref());
        match vma_first {
            None => {}
            Some(r)
                if r.event
                    .allocated()
                    .is_some_and(|(ptr, ..)| a <= ptr && ptr < b) =>
            {
                firsts.push(r.clone())
            }
            Some(_) => unknown.push((a, b)),
        }
    }
    drop(first_in);
    if !unknown.is_empty() {
        let mut found = FirstAllocations::new(unknown);
        scan::scan_until(ChunkStream::open(path, CHUNK_TRACE)?, until, |r| {
            if r.image == image && !cancel.load(Ordering::Relaxed) {
                found.see(r);
            }
        });
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        firsts.extend(found.into_records());
    }
    if !firsts.is_empty() {
        kept.extend(firsts);
        kept.sort_by_key(|r| r.tick);
        parts = owners_of(&kept, &info, image, cut, mappings);
    }
    // A module the program loaded itself: the first dlopen that asked for
    // it (the loader maps modules through calls no hook sees). Modules
    // there when tracing started were loaded before any dlopen.
    let at_start: Vec<&str> = info
        .modules
        .iter()
        .find(|(img, _, _)| *img == image)
        .map(|(_, _, m)| m.iter().map(|m| base_name(&m.path)).collect())
        .unwrap_or_default();
    let mut dlopens: Vec<(String, u32)> = Vec::new();
    for r in &kept {
        if let Event::Dlopen { path, stack, .. } = &r.event {
            let name = base_name(path);
            if !name.is_empty() && !at_start.contains(&name) && !dlopens.iter().any(|d| d.0 == name)
            {
                dlopens.push((name.to_string(), *stack));
            }
        }
    }
    drop(at_start);
    drop(kept);

    // Who made each region, and who holds most of each heap region.
    let made: Vec<Option<&RegionOwner>> = snap
        .regions
        .iter()
        .map(|r| largest_part(&parts, r))
        .collect();
    let made_sub: Vec<Vec<Option<&RegionOwner>>> = snap
        .regions
        .iter()
        .map(|r| {
            r.sub_blocks
                .iter()
                .map(|s| largest_part(&parts, s))
                .collect()
        })
        .collect();
    let top_live = top_live_stacks(snap.regions.iter().enumerate().map(|(i, r)| (r, i)), &live);
    let sub_live = top_live_stacks(
        snap.regions.iter().enumerate().flat_map(|(i, r)| {
            r.sub_blocks
                .iter()
                .enumerate()
                .map(move |(j, s)| (s, (i, j)))
        }),
        &live,
    );
    drop(live);

    // Symbolise only the stacks the column shows.
    let mut stacks: Vec<u32> = made
        .iter()
        .chain(made_sub.iter().flatten())
        .flatten()
        .map(|p| p.owner.stack())
        .chain(top_live.values().chain(sub_live.values()).map(|t| t.0))
        .chain(dlopens.iter().map(|d| d.1))
        .filter(|&s| s != 0)
        .collect();
    stacks.sort_unstable();
    stacks.dedup();
    let mut addrs: Vec<(u32, u64)> = stacks
        .iter()
        .filter_map(|&s| info.stacks.get(s as usize))
        .flat_map(|s| s.frames.iter().map(|a| (image, *a)))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let mut syms = Symbols::from_cache(first.symbol_cache);
    syms.resolve(&info, &addrs, &opts.symbols);
    notes.extend(
        syms.notes
            .iter()
            .map(|n| format!("no symbols for {n}; its frames show as module+offset")),
    );
    let cache = if opts.write_cache {
        symbol_cache::append(path, identity, &syms)
    } else {
        CacheWrite::UpToDate
    };

    let agent = made
        .iter()
        .map(|p| p.is_some_and(|p| p.owner == Owner::Agent))
        .collect();
    let ctx = Cells {
        info: &info,
        syms: &syms,
        image,
        dlopens: &dlopens,
    };
    let regions = made
        .iter()
        .zip(&snap.regions)
        .enumerate()
        .map(|(i, (p, r))| ctx.cell(r, *p, top_live.get(&i).copied()))
        .collect();
    let sub_blocks = made_sub
        .iter()
        .zip(&snap.regions)
        .enumerate()
        .map(|(i, (subs, r))| {
            subs.iter()
                .zip(&r.sub_blocks)
                .enumerate()
                .map(|(j, (p, s))| ctx.cell(s, *p, sub_live.get(&(i, j)).copied()))
                .collect()
        })
        .collect();
    Ok(Some(SnapshotOwners {
        seconds,
        regions,
        sub_blocks,
        agent,
        cache,
        notes,
    }))
}

/// Where in the trace a snapshot falls.
struct At {
    /// The process image the snapshot is of.
    image: u32,
    /// Seconds after the traced program started.
    seconds: f64,
    /// Each image's tick at that time.
    until: Vec<u64>,
    /// The snapshot's image's tick at that time.
    cut: u64,
}

/// The process image `snap` is of and its time in ticks, from the trace's
/// facts; None when the trace does not cover the snapshot's process.
fn at(facts: &TraceInfo, snap: &Snapshot) -> Option<At> {
    let taken = snap.taken_at_unix_ns;
    let image = facts.images.iter().rposition(|i| {
        i.pid == snap.process.pid && i.clocks.first().is_some_and(|c| c.2 <= taken)
    })? as u32;
    let seconds = scan::seconds_at_unix(facts, taken)?;
    let until = scan::ticks_at(facts, seconds.max(0.0));
    let cut = until.get(image as usize).copied().unwrap_or(u64::MAX);
    Some(At {
        image,
        seconds,
        until,
        cut,
    })
}

/// Which of `snap`'s top-level regions are the tracing agent's own (its
/// library image, private heap, buffers, writer's stack), by index: a
/// region is the agent's when the largest part of it is, by the same rule
/// that gives the Owner column its "vmmap agent" cells. The snapshot's
/// figures count these apart from the program's
/// ([`vmmap_core::Summary::with_agent`]).
///
/// Cheap next to [`snapshot_owners`]: only the trace's facts are read
/// (the agent's memory records and the clock anchors), no event is
/// decoded. All false when the file holds no trace of the snapshot's
/// process.
pub fn agent_regions(path: &Path, snap: &Snapshot) -> Result<Vec<bool>, FormatError> {
    let mut all = agent_regions_all(path, [snap])?;
    Ok(all.pop().unwrap_or_default())
}

/// [`agent_regions`] of each of `snaps` (snapshots of the file at
/// `path`), the file read once.
pub fn agent_regions_all<'a>(
    path: &Path,
    snaps: impl IntoIterator<Item = &'a Snapshot>,
) -> Result<Vec<Vec<bool>>, FormatError> {
    let facts = match ChunkStream::open(path, CHUNK_TRACE) {
        Ok(s) => scan::facts(s),
        Err(FormatError::NotVmmap) => TraceInfo::default(),
        Err(e) => return Err(e),
    };
    Ok(snaps
        .into_iter()
        .map(|snap| match at(&facts, snap) {
            Some(when) => agent_regions_of(&facts, snap, when.image, when.cut),
            None => vec![false; snap.regions.len()],
        })
        .collect())
}

/// [`agent_regions`] from the trace's facts, for process image `image` as
/// of `tick`. No call record is needed: the agent's memory is known from
/// its own records of it (and the kernel's names for it), never from the
/// program's calls.
fn agent_regions_of(info: &TraceInfo, snap: &Snapshot, image: u32, tick: u64) -> Vec<bool> {
    let parts = owners_of(&[], info, image, tick, leaf_mappings(snap));
    snap.regions
        .iter()
        .map(|r| largest_part(&parts, r).is_some_and(|p| p.owner == Owner::Agent))
        .collect()
}

/// The index of the VMA (of sorted, disjoint `mappings`) holding `addr`.
fn vma_of(mappings: &[Mapping], addr: u64) -> Option<usize> {
    let k = mappings
        .partition_point(|m| m.start <= addr)
        .checked_sub(1)?;
    (addr < mappings[k].end).then_some(k)
}

/// The snapshot's VMAs (a group's sub-blocks in its place), in address
/// order, as the owner rules take them.
fn leaf_mappings(snap: &Snapshot) -> Vec<Mapping> {
    let as_mapping = |r: &Region| Mapping {
        start: r.start,
        end: r.end,
        perms: r.perms.0,
        offset: r.offset,
        dev_major: r.dev_major,
        dev_minor: r.dev_minor,
        inode: r.inode,
        path: r.path.clone(),
        ..Mapping::default()
    };
    let mut v: Vec<Mapping> = snap
        .regions
        .iter()
        .flat_map(|r| {
            if r.sub_blocks.is_empty() {
                std::slice::from_ref(r)
            } else {
                &r.sub_blocks[..]
            }
        })
        .filter(|r| r.start < r.end)
        .map(as_mapping)
        .collect();
    v.sort_by_key(|m| m.start);
    v
}

/// The part (of those the owner rules cut the map into, in address order)
/// covering most of `r`.
fn largest_part<'a>(parts: &'a [RegionOwner], r: &Region) -> Option<&'a RegionOwner> {
    let from = parts.partition_point(|p| p.mapping.end <= r.start);
    parts[from..]
        .iter()
        .take_while(|p| p.mapping.start < r.end)
        .map(|p| (p.mapping.end.min(r.end) - p.mapping.start.max(r.start), p))
        // The first of equals: max_by_key would take the last.
        .fold(
            None,
            |best: Option<(u64, &RegionOwner)>, (n, p)| match best {
                Some((b, _)) if b >= n => best,
                _ => Some((n, p)),
            },
        )
        .map(|(_, p)| p)
}

/// For each heap region of `units` (disjoint, each with a key): the stack
/// with the most live bytes inside it, and those bytes (ties go to the
/// lower stack id, so the answer does not depend on hashing).
fn top_live_stacks<'a, K: Copy + Ord + std::hash::Hash>(
    units: impl Iterator<Item = (&'a Region, K)>,
    live: &HashMap<u64, (u64, u32), foldhash::fast::FixedState>,
) -> HashMap<K, (u32, u64)> {
    let mut heaps: Vec<(u64, u64, K)> = units
        .filter(|(r, _)| r.memory_type == MemoryType::Heap)
        .map(|(r, k)| (r.start, r.end, k))
        .collect();
    heaps.sort_unstable();
    let mut per: HashMap<K, HashMap<u32, u64>> = HashMap::new();
    for (&ptr, &(size, stack)) in live {
        let k = heaps.partition_point(|h| h.0 <= ptr);
        let Some(&(_, end, key)) = k.checked_sub(1).and_then(|k| heaps.get(k)) else {
            continue;
        };
        if ptr < end {
            *per.entry(key).or_default().entry(stack).or_default() += size;
        }
    }
    per.into_iter()
        .filter_map(|(key, m)| {
            let best = m
                .into_iter()
                .min_by_key(|&(stack, bytes)| (std::cmp::Reverse(bytes), stack))?;
            Some((key, best))
        })
        .collect()
}

/// The last component of a path.
fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// What the cells are made from.
struct Cells<'a> {
    info: &'a TraceInfo,
    syms: &'a Symbols,
    image: u32,
    /// (file name, stack) of the dlopen that loaded each module the
    /// program loaded itself.
    dlopens: &'a [(String, u32)],
}

impl Cells<'_> {
    fn top_frame(&self, stack: u32) -> Option<Frame> {
        if stack == 0 {
            return None;
        }
        stack_frames(self.info, self.syms, self.image, stack)
            .first()
            .map(|f| (*f).clone())
    }

    /// The cell of region `r` made as `made` says, holding `live` (the top
    /// stack and its live bytes) if it is a heap region with live blocks.
    fn cell(
        &self,
        r: &Region,
        made: Option<&RegionOwner>,
        live: Option<(u32, u64)>,
    ) -> Option<OwnerCell> {
        let made = made.map(|p| self.made_cell(r, &p.owner));
        let Some((stack, bytes)) = live else {
            return made;
        };
        let frame = self.top_frame(stack);
        let who = frame
            .as_ref()
            .map_or_else(|| "(no stack)".to_string(), |f| f.label(true));
        Some(OwnerCell {
            kind: "live-heap",
            op: None,
            stack,
            frame,
            live_bytes: Some(bytes),
            made_by: made.map(|m| m.text),
            text: format!("{who} +{} live", vmmap_core::units::size(bytes, false)),
        })
    }

    fn made_cell(&self, r: &Region, o: &Owner) -> OwnerCell {
        // A file the program dlopen'ed (by path or by a name the loader
        // searched for), whether or not the agent's module list had caught
        // up with it by then.
        let loaded = matches!(
            o,
            Owner::Image { .. }
                | Owner::Unobserved { first_use: None }
                | Owner::BeforeStart
                | Owner::BeforeAttach
        );
        if loaded && r.inode != 0 {
            let name = base_name(r.path.trim_end_matches(" (deleted)"));
            if let Some(&(_, stack)) = self.dlopens.iter().find(|d| d.0 == name) {
                let frame = self.top_frame(stack);
                return OwnerCell {
                    kind: "image",
                    op: Some("dlopen"),
                    stack,
                    text: frame
                        .as_ref()
                        .map_or_else(|| "dlopen (no stack)".into(), |f| f.label(true)),
                    frame,
                    live_bytes: None,
                    made_by: None,
                };
            }
        }
        let stack = o.stack();
        let frame = self.top_frame(stack);
        let label = frame.as_ref().map(|f| f.label(true));
        let (kind, op, text) = match o {
            Owner::Call { op, .. } => (
                "call",
                Some(*op),
                label.unwrap_or_else(|| format!("{op} (no stack)")),
            ),
            Owner::Unobserved {
                first_use: Some((op, ..)),
            } => (
                "glibc-internal",
                Some(*op),
                label.unwrap_or_else(|| format!("glibc, for {op}")),
            ),
            Owner::Unobserved { first_use: None } => {
                ("unobserved", None, "not seen (glibc or loader)".into())
            }
            Owner::ThreadStack { tid, .. } => (
                "thread-stack",
                Some("pthread_create"),
                label.unwrap_or_else(|| format!("thread {tid}")),
            ),
            Owner::Image { .. } => ("image", None, "loader".into()),
            Owner::BeforeStart => ("before-start", None, "before tracing".into()),
            Owner::BeforeAttach => ("before-attach", None, "before attach".into()),
            Owner::MainStack => ("main-stack", None, "kernel (exec)".into()),
            Owner::Kernel => ("kernel", None, "kernel".into()),
            Owner::Agent => ("agent", None, "vmmap agent".into()),
        };
        OwnerCell {
            kind,
            op,
            stack,
            frame,
            live_bytes: None,
            made_by: None,
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use vmmap_core::testing::bare as region;

    fn part(start: u64, end: u64, tick: u64) -> RegionOwner {
        RegionOwner {
            mapping: Mapping {
                start,
                end,
                ..Mapping::default()
            },
            owner: Owner::Call {
                op: "mmap",
                tick,
                tid: 1,
                stack: 1,
            },
        }
    }

    #[test]
    fn a_region_is_owned_by_the_part_covering_most_of_it() {
        let parts = vec![
            part(0x1000, 0x2000, 1),
            part(0x2000, 0x5000, 2),
            part(0x5000, 0x6000, 3),
            part(0x8000, 0x9000, 4),
        ];
        let tick = |r: &Region| match largest_part(&parts, r).map(|p| &p.owner) {
            Some(Owner::Call { tick, .. }) => Some(*tick),
            _ => None,
        };
        let r = region(0x1000, 0x6000, MemoryType::PrivateData);
        assert_eq!(tick(&r), Some(2));
        // Equal overlaps: the lower part.
        assert_eq!(
            tick(&region(0x1800, 0x2800, MemoryType::PrivateData)),
            Some(1)
        );
        assert_eq!(tick(&region(0x6000, 0x8000, MemoryType::PrivateData)), None);
    }

    /// A trace file of pid 42 (one thread; a tick is a microsecond from
    /// unix time 2 ms): mmap 0x20000+4K (stack 3) at tick 1, then mallocs
    /// at 0x20100 (stack 1, tick 5), 0x1f100 (stack 1, tick 10) and
    /// 0x21100 (stack 2, tick 20), and a snapshot taken at 2.5 ms whose
    /// only region 0x1f000-0x24000 holds them all: the kernel merged the
    /// mmap'd page with memory no call made on both sides.
    fn merged_trace() -> std::path::PathBuf {
        use vmmap_core::format::Writer;
        use vmmap_wire::synthetic::*;
        let hello = hello(42, "/bin/app", b"app\0");
        let mut s = StreamBuilder::new(100, 0, 0x7ffd_0000_0000, 0x7ffd_0080_0000);
        for (id, ret) in [(1u64, 0x401u64), (2, 0x501), (3, 0x601)] {
            s.stack(id, &[ret]);
        }
        s.mmap_anon(1, 0x20000, 4096, 3);
        for (t, a, stack) in [(5, 0x20100, 1), (10, 0x1f100, 1), (20, 0x21100, 2)] {
            s.malloc(t, a, 16, stack);
        }
        let events = events(20, &s);
        let end = end();
        let path = std::env::temp_dir().join(format!("vmmap-owners-{}.vmmap", std::process::id()));
        let mut w = Writer::new(std::fs::File::create(&path).unwrap()).unwrap();
        for m in [&hello, &events, &end] {
            w.append_trace(m).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn a_part_no_call_made_is_owned_by_its_own_first_allocation() {
        let path = merged_trace();
        let mut snap = vmmap_core::collect::snapshot(
            std::process::id(),
            &vmmap_core::collect::Options::default(),
        )
        .unwrap();
        snap.process.pid = 42;
        snap.taken_at_unix_ns = 2_500_000;
        let mut r = region(0x1f000, 0x24000, MemoryType::PrivateData);
        r.perms = vmmap_core::model::Perms(*b"rw-p");
        snap.regions = vec![r];
        let opts = OwnerOptions {
            symbols: SymbolOptions {
                dirs: Vec::new(),
                no_system_dirs: true,
            },
            write_cache: false,
        };
        let o = snapshot_owners(&path, &snap, &opts, &AtomicBool::new(false))
            .unwrap()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        // The largest part, 0x21000-0x24000, holds neither the mmap'd page
        // nor the region's first allocation (0x20100, inside that page):
        // its owner is the first allocation inside it, from stack 2.
        let c = o.region(0).unwrap();
        assert_eq!(
            (c.kind, c.op, c.stack),
            ("glibc-internal", Some("malloc"), 2)
        );
        assert_eq!(c.frame.as_ref().unwrap().function, "0x501");
        // Before the mallocs (1 ms is tick 1000; 2.000005 ms is tick 5),
        // the same part had no allocation in it.
        snap.taken_at_unix_ns = 2_000_003;
        let path = merged_trace();
        let o = snapshot_owners(&path, &snap, &opts, &AtomicBool::new(false))
            .unwrap()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(o.region(0).unwrap().kind, "unobserved");
    }

    #[test]
    fn a_heap_region_is_held_by_the_stack_with_most_live_bytes() {
        let regions = [
            region(0x1000, 0x9000, MemoryType::Heap),
            region(0x9000, 0xa000, MemoryType::PrivateData),
        ];
        let mut live = HashMap::default();
        live.insert(0x1010, (100, 7));
        live.insert(0x1100, (60, 3));
        live.insert(0x1200, (40, 3));
        live.insert(0x1300, (90, 5));
        // Outside any heap region: not counted.
        live.insert(0x9010, (5000, 5));
        let top = top_live_stacks(regions.iter().zip(0..), &live);
        // Stacks 3 and 7 both hold 100 bytes: the lower id wins.
        assert_eq!(top.get(&0), Some(&(3, 100)));
        assert_eq!(top.len(), 1);
    }
}
