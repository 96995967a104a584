//! Heap bytes against pages: for each region of a snapshot that holds
//! live allocations, what the program asked for, what glibc's malloc adds
//! to each block, what is free or unused, and how much of it the kernel
//! has resident. This is the answer to "why is RSS larger than the sum of
//! my allocations" (docs/metrics.md, "Heap bytes vs pages").

use crate::model::{MemoryType, Region, Snapshot};
use crate::proc::smaps::Field;

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
    /// Size minus live and overhead: free chunks, the top chunk, bins,
    /// glibc's own bookkeeping and reserve not yet handed out.
    pub free: u64,
    /// Mapped size.
    pub size: u64,
    /// Resident bytes (smaps Rss).
    pub rss: u64,
    /// Swapped-out bytes (smaps Swap).
    pub swap: u64,
}

impl HeapRegion {
    /// Resident bytes that hold no live block (free chunks the kernel
    /// still has pages for); negative when live blocks span pages never
    /// touched (a large calloc'd block the program has not written).
    pub fn resident_not_live(&self) -> i64 {
        self.rss as i64 - (self.live + self.overhead) as i64
    }

    /// macOS's `%FRAG`, as `vmmap map --heaps` gives it for a live heap:
    /// the share of the region's resident and swapped memory that holds no
    /// live block, `100 − 100 · (live + overhead) / (Rss + Swap)`, at
    /// least 0; here from the trace rather than from glibc's headers.
    pub fn frag_percent(&self) -> Option<f64> {
        let mem = self.rss + self.swap;
        (mem > 0)
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
pub fn chunk_bytes(req: u64, mmapped: bool, page: u64) -> u64 {
    if mmapped {
        let page = page.max(1);
        return (req + 16).div_ceil(page) * page;
    }
    ((req + 8 + 15) & !15).max(32)
}

/// The heap arithmetic of every region of `snap` that holds one of the
/// `live` blocks (address, bytes requested), in address order. Blocks in
/// no region (freed by a path the trace did not see) are left out.
pub fn heap_regions(
    snap: &Snapshot,
    live: impl IntoIterator<Item = (u64, u64)>,
) -> Vec<HeapRegion> {
    let regions: Vec<&Region> = snap.regions.iter().collect();
    let page = snap.kernel.page_size.max(4096);
    let mut out: Vec<Option<HeapRegion>> = vec![None; regions.len()];
    for (ptr, req) in live {
        let i = regions.partition_point(|r| r.end <= ptr);
        let Some(r) = regions.get(i).filter(|r| r.start <= ptr) else {
            continue;
        };
        let e = out[i].get_or_insert_with(|| HeapRegion {
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
        });
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
            h.free = h.size.saturating_sub(h.live + h.overhead);
            h
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_chunk_sizes() {
        assert_eq!(chunk_bytes(1, false, 4096), 32);
        assert_eq!(chunk_bytes(24, false, 4096), 32);
        assert_eq!(chunk_bytes(25, false, 4096), 48);
        assert_eq!(chunk_bytes(1000, false, 4096), 1008);
        assert_eq!(chunk_bytes(300_000, true, 4096), 303_104);
    }
}
