//! CPython's object allocator (pymalloc). Objects of up to 512 bytes live
//! in pools of 16 KiB carved from arenas of 1 MiB (Python 3.10+; 4 KiB
//! pools in 256 KiB arenas before), each arena its own `mmap`. Pools are
//! aligned to their size and start with
//!
//! ```c
//! struct pool_header {
//!     union { block *_padding; uint count; } ref; /* blocks in use */
//!     block *freeblock;                           /* inside the pool */
//!     struct pool_header *nextpool, *prevpool;
//!     uint arenaindex, szidx;                     /* size class < 32 */
//!     uint nextoffset, maxnextoffset;             /* POOL_SIZE - size */
//! };
//! ```
//!
//! whose fields tie to each other (`maxnextoffset` is `POOL_SIZE` minus the
//! block size of `szidx`), so a header read from the process confirms an
//! arena. The kernel merges neighbouring arenas, and glibc's mmapped
//! chunks next to them, into one VMA: a VMA is walked arena by arena and
//! chunk by chunk and claimed only when the walk covers it exactly. A VMA
//! with arenas is Managed Heap whatever else is in it; its chunks are
//! listed as its parts.

use super::{chunks::mmapped_chunk, mib, Claim, Claimer};
use crate::classify::Inspector;
use crate::model::{Confidence, MemoryType, Part};

/// Header size rounded to the 16-byte alignment (`POOL_OVERHEAD`).
const OVERHEAD: u64 = 48;
const ALIGNMENT: u64 = 16;
const CLASSES: u32 = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    arena: u64,
    pool: u64,
}

const LAYOUTS: [Layout; 2] = [
    Layout {
        arena: 1 << 20,
        pool: 16 << 10,
    },
    Layout {
        arena: 256 << 10,
        pool: 4 << 10,
    },
];

fn pool_header_ok(inspector: &mut dyn Inspector, addr: u64, l: Layout) -> bool {
    let mut b = [0u8; 48];
    if !inspector.read_memory(addr, &mut b) {
        return false;
    }
    let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_ne_bytes(w)
    };
    let (count, freeblock) = (u64::from(u32_at(0)), u64_at(8));
    let (szidx, next, max_next) = (u32_at(36), u64::from(u32_at(40)), u64::from(u32_at(44)));
    if szidx >= CLASSES {
        return false;
    }
    let size = u64::from(szidx + 1) * ALIGNMENT;
    max_next == l.pool - size
        && next >= OVERHEAD
        && next <= max_next + size
        && count <= (l.pool - OVERHEAD) / size
        && (freeblock == 0 || (freeblock >= addr + OVERHEAD && freeblock < addr + l.pool))
}

const EXACT: &str = "CPython is loaded and the mapping is covered exactly by pymalloc arenas, each confirmed by a pool header read from the process (size class and offsets agree), and malloc's mmapped chunks";
const PARTLY: &str = "CPython is loaded and most of the mapping is pymalloc arenas, each confirmed by a pool header read from the process, next to memory that is neither an arena nor a malloc chunk";

pub(super) fn plan_arenas(c: &mut Claimer<'_>, inspector: &mut dyn Inspector) {
    let mut layout: Option<Layout> = None;
    for i in 0..c.regions.len() {
        if !c.free(i) || &c.regions[i].perms.0 != b"rw-p" {
            continue;
        }
        let (start, end) = (c.regions[i].start, c.regions[i].end);
        let (mut at, mut arenas, mut chunk_bytes) = (start, 0u64, 0u64);
        let mut chunks = Vec::new();
        while at < end {
            if let Some(size) = mmapped_chunk(inspector, at, end, c.page) {
                chunks.push(Part {
                    start: at,
                    end: at + size,
                    details: format!("glibc mmapped chunk ({})", mib(size)),
                    tid: None,
                });
                chunk_bytes += size;
                at += size;
                continue;
            }
            let candidates: &[Layout] = match &layout {
                Some(l) => std::slice::from_ref(l),
                None => &LAYOUTS,
            };
            let found = candidates.iter().copied().find(|l| {
                let first = at.next_multiple_of(l.pool);
                at + l.arena <= end && pool_header_ok(inspector, first, *l)
            });
            match found {
                Some(l) => {
                    layout = Some(l);
                    arenas += 1;
                    at += l.arena;
                }
                None => break,
            }
        }
        // Something else may sit between arenas (the kernel merges any
        // anonymous neighbour): walk back from the end too, arena by arena,
        // down to where the forward walk stopped.
        let mut back = end;
        while at < back {
            let candidates: &[Layout] = match &layout {
                Some(l) => std::slice::from_ref(l),
                None => &LAYOUTS,
            };
            let found = candidates.iter().copied().find(|l| {
                back >= at + l.arena
                    && pool_header_ok(inspector, (back - l.arena).next_multiple_of(l.pool), *l)
            });
            match found {
                Some(l) => {
                    layout = Some(l);
                    arenas += 1;
                    back -= l.arena;
                }
                None => break,
            }
        }
        let unknown = back - at;
        if arenas == 0 || unknown * 2 > end - start {
            continue;
        }
        let l = layout.unwrap_or(LAYOUTS[0]);
        let mut details = format!("CPython pymalloc arenas ({arenas} x {})", mib(l.arena));
        if chunk_bytes > 0 {
            details.push_str(&format!(" and glibc mmapped chunks ({})", mib(chunk_bytes)));
        }
        if unknown > 0 {
            details.push_str(&format!(" and {} not identified", mib(unknown)));
        }
        // One rule, whatever the mix: a mapping that holds pymalloc arenas
        // is CPython's (Managed Heap), and the malloc()ed blocks in it are
        // its parts. Typing it by whichever kind had more bytes made the
        // same mix Heap in one process and Managed Heap in another.
        let memory_type = MemoryType::ManagedHeap;
        c.regions[i].parts = chunks;
        let (evidence, confidence) = if unknown == 0 {
            (EXACT, Confidence::High)
        } else {
            (PARTLY, Confidence::Medium)
        };
        c.claim(
            i,
            1,
            Claim::new(memory_type, details, evidence).confidence(confidence),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::testutil::FakeInspector;

    pub(crate) fn pool(szidx: u32, pool_size: u64) -> Vec<u8> {
        let size = u64::from(szidx + 1) * 16;
        let mut b = vec![0u8; 48];
        b[0..4].copy_from_slice(&3u32.to_ne_bytes());
        b[36..40].copy_from_slice(&szidx.to_ne_bytes());
        b[40..44].copy_from_slice(&((48 + 4 * size) as u32).to_ne_bytes());
        b[44..48].copy_from_slice(&((pool_size - size) as u32).to_ne_bytes());
        b
    }

    /// Two arenas with 276 KiB of something else between them, merged into
    /// one VMA (seen with Python 3.11): the walk from the end finds the
    /// second; the VMA is claimed with medium confidence.
    #[test]
    fn arenas_around_unknown_memory() {
        use super::super::testutil::anon;
        use crate::classify::Plan;
        let a = 0x7efd_d848_2000u64;
        let x = a + (1 << 20);
        let b = x + 0x4_5000;
        let mut fake = FakeInspector::default();
        fake.memory
            .push((a.next_multiple_of(16 << 10), pool(3, 16 << 10)));
        fake.memory
            .push((b.next_multiple_of(16 << 10), pool(7, 16 << 10)));
        let ctx = crate::classify::testutil::context();
        let maps = vec![anon(a, b + (1 << 20), b"rw-p", 0)];
        let mut regions: Vec<_> = maps
            .into_iter()
            .map(crate::model::Region::from_mapping)
            .collect();
        let mut plan = Plan::new(regions.len());
        let mut claimer = super::super::Claimer::new(&mut regions, &mut plan, &ctx);
        plan_arenas(&mut claimer, &mut fake);
        let r = &regions[0];
        assert_eq!(r.memory_type, MemoryType::ManagedHeap);
        assert_eq!(
            r.details,
            "CPython pymalloc arenas (2 x 1 MiB) and 276 KiB not identified"
        );
        assert_eq!(r.confidence, Confidence::Medium);
    }

    #[test]
    fn pool_headers() {
        let mut fake = FakeInspector::default();
        fake.memory.push((0x10000, pool(3, 16 << 10)));
        fake.memory.push((0x20000, pool(3, 4 << 10)));
        let mut bad = pool(3, 16 << 10);
        bad[44] ^= 0x10;
        fake.memory.push((0x30000, bad));
        assert!(pool_header_ok(&mut fake, 0x10000, LAYOUTS[0]));
        assert!(!pool_header_ok(&mut fake, 0x10000, LAYOUTS[1]));
        assert!(pool_header_ok(&mut fake, 0x20000, LAYOUTS[1]));
        assert!(!pool_header_ok(&mut fake, 0x30000, LAYOUTS[0]));
        assert!(
            !pool_header_ok(&mut fake, 0x40000, LAYOUTS[0]),
            "unreadable"
        );
    }
}
