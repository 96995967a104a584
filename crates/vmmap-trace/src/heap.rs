//! Heap bytes against pages: for each region of a snapshot that holds
//! live allocations, what the program asked for, what glibc's malloc adds
//! to each block, what is free or unused, and how much of it the kernel
//! has resident. This is the answer to "why is RSS larger than the sum of
//! my allocations" (docs/metrics.md, "Heap bytes vs pages").

use std::collections::BTreeMap;

use crate::decode::{Event, Record};
use vmmap_core::model::{MemoryType, Region, Snapshot};
use vmmap_core::proc::smaps::Field;

/// One region's heap arithmetic. All figures in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeapRegion {
    /// Region start and end.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// Its type in the snapshot (Heap for arenas; mmapped chunks of large
    /// blocks are their own Private Data mappings).
    pub memory_type: MemoryType,
    /// The mapping's name (`[heap]`, empty for anonymous).
    pub path: String,
    /// Live blocks inside it.
    pub blocks: u64,
    /// Bytes the program requested for them.
    pub live: u64,
    /// What malloc adds to them: chunk headers and rounding.
    pub overhead: u64,
    /// Size minus live, overhead and pymalloc arenas: free chunks, the top
    /// chunk, bins, glibc's own bookkeeping and reserve not yet handed out.
    pub free: u64,
    /// CPython pymalloc arenas inside the region (the kernel merges them
    /// with neighbouring anonymous mappings): Python's own object heap,
    /// neither malloc blocks nor malloc's free space.
    pub pymalloc_arenas: u64,
    /// Their bytes.
    pub pymalloc: u64,
    /// Mapped size.
    pub size: u64,
    /// Resident bytes (smaps Rss).
    pub rss: u64,
    /// Swapped-out bytes (smaps Swap).
    pub swap: u64,
}

impl HeapRegion {
    /// Resident bytes that hold no live block nor a pymalloc arena (free
    /// chunks the kernel still has pages for); negative when live blocks
    /// or arenas span pages never touched (a large calloc'd block the
    /// program has not written).
    pub fn resident_not_live(&self) -> i64 {
        self.rss as i64 - (self.live + self.overhead + self.pymalloc) as i64
    }

    /// macOS's `%FRAG`, as `vmmap map --heaps` gives it for a live heap:
    /// the share of the region's resident and swapped memory that holds no
    /// live block, `100 − 100 · (live + overhead) / (Rss + Swap)`, at
    /// least 0; here from the trace rather than from glibc's headers.
    /// None when pymalloc arenas share the region: smaps gives one Rss for
    /// the whole mapping, so the part of it malloc's blocks could fill is
    /// unknown, and a full arena is no free space.
    pub fn frag_percent(&self) -> Option<f64> {
        let mem = self.rss + self.swap;
        (mem > 0 && self.pymalloc == 0)
            .then(|| (100.0 - 100.0 * (self.live + self.overhead) as f64 / mem as f64).max(0.0))
    }

    /// Mapped but never touched (size minus Rss).
    pub fn untouched(&self) -> u64 {
        self.size.saturating_sub(self.rss)
    }
}

/// Bytes glibc's malloc uses for a block of `req` bytes on a 64-bit
/// target: an 8-byte size field, the total rounded up to 16, at least 32;
/// a block from its own mmap (`mmapped`) costs a 16-byte header and whole
/// pages.
pub(crate) fn chunk_bytes(req: u64, mmapped: bool, page: u64) -> u64 {
    if mmapped {
        let page = page.max(1);
        return (req + 16).div_ceil(page) * page;
    }
    ((req + 8 + 15) & !15).max(32)
}

/// The sizes of a pymalloc arena: 1 MiB since CPython 3.10, 256 KiB
/// before (obmalloc.c, `ARENA_SIZE`).
pub(crate) const PYMALLOC_ARENA_SIZES: [u64; 2] = [1 << 20, 256 << 10];

/// The anonymous mappings of exactly a pymalloc arena's size that the
/// trace saw made and not yet unmapped, from records in time order.
/// obmalloc makes each arena with its own `mmap(NULL, ARENA_SIZE,
/// PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)` and unmaps it whole;
/// [`heap_regions`] counts one only inside a region the snapshot's
/// classifier confirmed as pymalloc arenas by their pool headers.
#[derive(Default)]
pub struct ArenaMaps {
    live: BTreeMap<u64, u64>,
    image: u32,
}

impl ArenaMaps {
    /// Adds one record.
    pub fn add(&mut self, r: &Record) {
        if r.image != self.image {
            // An exec replaced the memory.
            self.live.clear();
            self.image = r.image;
        }
        let (gone, len) = match r.event {
            Event::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                ..
            } => {
                self.forget(addr, len);
                let private_anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                let arena_like = fd == -1
                    && prot == (libc::PROT_READ | libc::PROT_WRITE) as u32
                    && flags as i32 & (libc::MAP_SHARED | libc::MAP_FIXED | private_anon)
                        == private_anon
                    && PYMALLOC_ARENA_SIZES.contains(&len);
                if arena_like {
                    self.live.insert(addr, len);
                }
                return;
            }
            Event::Munmap { addr, len, .. } => (addr, len),
            Event::Mremap {
                old,
                old_len,
                new,
                new_len,
                ..
            } => {
                self.forget(new, new_len);
                (old, old_len)
            }
            _ => return,
        };
        self.forget(gone, len);
    }

    /// Drops the candidates that `addr..addr+len` overlaps.
    fn forget(&mut self, addr: u64, len: u64) {
        let end = addr.saturating_add(len.max(1));
        let hit: Vec<u64> = self
            .live
            .range(..end)
            .rev()
            .take_while(|(a, l)| *a + *l > addr)
            .map(|(a, _)| *a)
            .collect();
        for a in hit {
            self.live.remove(&a);
        }
    }

    /// (start, length) of each candidate, in address order.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.live.iter().map(|(a, l)| (*a, *l)).collect()
    }
}

/// The heap arithmetic of every region of `snap` that holds one of the
/// `live` blocks (address, bytes requested) or one of the pymalloc
/// `arenas` (start, length; see [`ArenaMaps`]), in address order. Blocks
/// in no region (freed by a path the trace did not see) are left out.
pub fn heap_regions(
    snap: &Snapshot,
    live: impl IntoIterator<Item = (u64, u64)>,
    arenas: &[(u64, u64)],
) -> Vec<HeapRegion> {
    let regions: Vec<&Region> = snap.regions.iter().collect();
    let page = snap.kernel.page_size.max(4096);
    let mut out: Vec<Option<HeapRegion>> = vec![None; regions.len()];
    let row = |r: &Region| HeapRegion {
        start: r.start,
        end: r.end,
        memory_type: r.memory_type,
        path: r.path.to_string(),
        size: r.size(),
        rss: r.fields.get(Field::Rss).unwrap_or(0),
        swap: r.fields.get(Field::Swap).unwrap_or(0),
        blocks: 0,
        live: 0,
        overhead: 0,
        free: 0,
        pymalloc_arenas: 0,
        pymalloc: 0,
    };
    for &(a, len) in arenas {
        let i = regions.partition_point(|r| r.end <= a);
        let Some(r) = regions
            .get(i)
            .filter(|r| r.start <= a && a + len <= r.end && r.details.contains("pymalloc"))
        else {
            continue;
        };
        let e = out[i].get_or_insert_with(|| row(r));
        e.pymalloc_arenas += 1;
        e.pymalloc += len;
    }
    for (ptr, req) in live {
        let i = regions.partition_point(|r| r.end <= ptr);
        let Some(r) = regions.get(i).filter(|r| r.start <= ptr) else {
            continue;
        };
        let e = out[i].get_or_insert_with(|| row(r));
        // glibc serves a block from its own mapping when it is over the
        // mmap threshold: the classifier names such regions (Heap since
        // it reads their chunk headers; Private Data when it cannot).
        let mmapped =
            r.memory_type != MemoryType::Heap || r.details.starts_with("glibc mmapped chunk");
        e.blocks += 1;
        e.live += req;
        e.overhead += chunk_bytes(req, mmapped, page) - req;
    }
    out.into_iter()
        .flatten()
        .map(|mut h| {
            h.free = h.size.saturating_sub(h.live + h.overhead + h.pymalloc);
            h
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap(addr: u64, len: u64, fd: i32) -> Record {
        Record {
            tick: 1,
            image: 0,
            tid: 1,
            stream: 0,
            event: Event::Mmap {
                addr,
                len,
                prot: 3,
                flags: 0x22,
                fd,
                offset: 0,
                stack: 0,
            },
        }
    }

    #[test]
    fn arena_candidates_are_whole_arena_mmaps_still_mapped() {
        let mut a = ArenaMaps::default();
        a.add(&mmap(0x100000, 1 << 20, -1));
        a.add(&mmap(0x300000, 256 << 10, -1));
        a.add(&mmap(0x400000, 5000, -1));
        a.add(&mmap(0x500000, 1 << 20, 3));
        a.add(&mmap(0x700000, 1 << 20, -1));
        let mut r = mmap(0, 0, -1);
        r.event = Event::Munmap {
            addr: 0x700000,
            len: 1 << 20,
            stack: 0,
        };
        a.add(&r);
        assert_eq!(a.ranges(), vec![(0x100000, 1 << 20), (0x300000, 256 << 10)]);
    }

    #[test]
    fn glibc_chunk_sizes() {
        assert_eq!(chunk_bytes(1, false, 4096), 32);
        assert_eq!(chunk_bytes(24, false, 4096), 32);
        assert_eq!(chunk_bytes(25, false, 4096), 48);
        assert_eq!(chunk_bytes(1000, false, 4096), 1008);
        assert_eq!(chunk_bytes(300_000, true, 4096), 303_104);
    }
}
