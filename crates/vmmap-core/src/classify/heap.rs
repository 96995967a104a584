//! Pass 3: glibc non-main arenas.
//!
//! glibc gives each non-main arena "heaps" of `HEAP_MAX_SIZE` (64 MiB on
//! 64-bit, 1 MiB on 32-bit) address space, aligned to that size so that
//! `heap_for_ptr(p) = p & ~(HEAP_MAX_SIZE - 1)`. The committed head is
//! `rw-p` and the rest a `---p` reservation. Every heap starts with
//!
//! ```c
//! typedef struct _heap_info {
//!   mstate ar_ptr;          /* arena of this heap */
//!   struct _heap_info *prev;/* previous heap of the same arena */
//!   size_t size;            /* current size in bytes */
//!   size_t mprotect_size;   /* size that is mprotected read/write */
//!   ...
//! } heap_info;
//! ```
//!
//! The alignment is only a hint; the header, read from the target, confirms
//! the heap, and `ar_ptr` says which arena it belongs to. Heaps of one arena
//! share a Heap ID; arenas are numbered from 1 in address order of their
//! `malloc_state` (0 is the brk heap of the main arena).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{is_plain_anon, Claim, Context, Inspector, Plan};
use crate::model::{Confidence, MemoryType, Region};

/// A confirmed or presumed arena heap: indices into the region list.
struct HeapRun {
    committed: usize,
    /// How many VMAs the committed part spans (more than one when the
    /// kernel did not merge the parts the heap grew by).
    committed_len: usize,
    reserved: Option<usize>,
    ar_ptr: Option<u64>,
}

pub(super) fn plan_arenas(
    regions: &mut [Region],
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
    plan: &mut Plan,
) {
    let heap_max: u64 = if ctx.pointer_width == 4 {
        1 << 20
    } else {
        64 << 20
    };
    let mut runs = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        let candidate_type = r.memory_type == MemoryType::PrivateData
            || (r.memory_type == MemoryType::Heap && r.path.contains("glibc: malloc arena"));
        if !candidate_type
            || plan.is_grouped(i)
            || !(is_plain_anon(r) || r.path.contains("glibc: malloc arena"))
            || &r.perms.0 != b"rw-p"
            || r.start % heap_max != 0
            || r.size() > heap_max
        {
            continue;
        }
        let header = read_heap_info(r.start, ctx.pointer_width, inspector);
        // The committed part is `mprotect_size` bytes: it may span several
        // VMAs when the kernel did not merge what the heap grew by, or when
        // part of it was advised (huge pages) or protected differently
        // (read-only: any access but execute).
        let mut committed_len = 1;
        if let Some(h) = &header {
            let mut end = r.end;
            while end - r.start < h.mprotect_size {
                let Some(n) = regions.get(i + committed_len).filter(|n| {
                    n.start == end
                        && !n.perms.none()
                        && !n.perms.exec()
                        && !n.perms.shared()
                        && is_plain_anon(n)
                        && n.memory_type == MemoryType::PrivateData
                        && !plan.is_grouped(i + committed_len)
                }) else {
                    break;
                };
                end = n.end;
                committed_len += 1;
            }
            // Past the header's size: the pieces are not the heap's. Short
            // of it: the heap grew after smaps was read (the check on the
            // reservation below decides), so every piece seen still
            // belongs to it.
            if end - r.start > h.mprotect_size {
                committed_len = 1;
            }
        }
        let last = i + committed_len - 1;
        let committed_size = regions[last].end - r.start;
        let reserved = regions
            .get(last + 1)
            .filter(|n| {
                n.start == regions[last].end
                    && n.perms.none()
                    && !n.perms.shared()
                    && n.inode == 0
                    && !plan.is_grouped(last + 1)
            })
            .map(|_| last + 1);
        let span = reserved.map_or(committed_size, |j| regions[j].end - r.start);
        // A heap whose thread is allocating grows (mprotect) between the
        // read of smaps and that of its header: the header then claims
        // more than the read-write part seen, and no more than the part
        // and its reservation, which is what it grew into.
        let seen = match &header {
            Some(h) if reserved.is_some() && h.mprotect_size > committed_size => {
                h.mprotect_size.min(span)
            }
            _ => committed_size,
        };
        match header {
            Some(h) if plausible(&h, r.start, seen, heap_max, ctx.page_size) => {
                runs.push(HeapRun {
                    committed: i,
                    committed_len,
                    reserved,
                    ar_ptr: Some(h.ar_ptr),
                });
            }
            Some(_) => {}
            // Memory unreadable (a captured /proc, or no ptrace access): the
            // exact HEAP_MAX_SIZE layout alone is strong enough to call it a
            // heap, and the evidence says it is unconfirmed. Go's first heap
            // arena has that layout too, at its hint address 0xc000000000:
            // the runtime pass takes those.
            None if span == heap_max && reserved.is_some() && !at_go_arena_hint(r.start) => {
                runs.push(HeapRun {
                    committed: i,
                    committed_len: 1,
                    reserved,
                    ar_ptr: None,
                });
            }
            None => {}
        }
    }
    if runs.is_empty() {
        return;
    }
    // Arena ids: each distinct ar_ptr, in address order, from 1; unconfirmed
    // heaps each get their own id after those.
    let mut arenas: BTreeMap<u64, u32> = BTreeMap::new();
    for run in &runs {
        if let Some(a) = run.ar_ptr {
            arenas.insert(a, 0);
        }
    }
    for (n, id) in arenas.values_mut().enumerate() {
        *id = n as u32 + 1;
    }
    let mut next_unconfirmed = arenas.len() as u32 + 1;
    for run in runs {
        let id = match run.ar_ptr {
            Some(a) => arenas[&a],
            None => {
                next_unconfirmed += 1;
                next_unconfirmed - 1
            }
        };
        let (details, evidence): (String, Cow<'static, str>) = match run.ar_ptr {
            Some(a) => (
                format!("Heap ID: {id} (glibc arena at {a:#x})"),
                Cow::Borrowed("HEAP_MAX_SIZE-aligned heap whose heap_info header, read from the process, names its arena"),
            ),
            None => (
                format!("Heap ID: {id} (glibc arena heap, unconfirmed)"),
                Cow::Borrowed("HEAP_MAX_SIZE-aligned rw-p + ---p reservation of exactly HEAP_MAX_SIZE; header unreadable, so unconfirmed"),
            ),
        };
        let confidence = if run.ar_ptr.is_some() {
            Confidence::Certain
        } else {
            Confidence::Medium
        };
        for r in &mut regions[run.committed..run.committed + run.committed_len] {
            r.memory_type = MemoryType::Heap;
            r.details = "committed".into();
            r.evidence = evidence.clone();
            r.confidence = confidence;
        }
        if let Some(j) = run.reserved {
            let res = &mut regions[j];
            res.memory_type = MemoryType::Heap;
            res.details = "reserved".into();
            res.evidence =
                Cow::Borrowed("the PROT_NONE rest of the arena heap's HEAP_MAX_SIZE reservation");
        }
        if let Some(j) = run.reserved {
            regions[j].confidence = confidence;
        }
        let len = run.committed_len + usize::from(run.reserved.is_some());
        let claim = Claim::new(MemoryType::Heap, details, evidence)
            .confidence(confidence)
            .heap_id(id);
        plan.add(run.committed, len, claim, None);
    }
}

struct HeapInfo {
    ar_ptr: u64,
    prev: u64,
    size: u64,
    mprotect_size: u64,
}

fn read_heap_info(addr: u64, width: usize, inspector: &mut dyn Inspector) -> Option<HeapInfo> {
    let mut buf = [0u8; 32];
    let buf = &mut buf[..4 * width];
    if !inspector.read_memory(addr, buf) {
        return None;
    }
    let word = |i: usize| -> u64 {
        let b = &buf[i * width..(i + 1) * width];
        if width == 4 {
            u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        } else {
            u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
    };
    Some(HeapInfo {
        ar_ptr: word(0),
        prev: word(1),
        size: word(2),
        mprotect_size: word(3),
    })
}

/// Whether `start` is one of the addresses Go's allocator asks for its
/// heap arenas (`i<<40 | 0xc0<<32` on 64-bit).
fn at_go_arena_hint(start: u64) -> bool {
    start & ((1 << 40) - 1) == 0xc0 << 32
}

/// Checks the header against the mapping, as glibc's own invariants have
/// it: sizes within HEAP_MAX_SIZE, the mprotected part page-aligned and no
/// larger than the rw-p mapping, `prev` another aligned heap.
fn plausible(h: &HeapInfo, start: u64, size: u64, heap_max: u64, page: u64) -> bool {
    h.ar_ptr != 0
        && h.size > 0
        && h.size <= heap_max
        && h.mprotect_size <= heap_max
        && h.mprotect_size % page == 0
        && h.mprotect_size <= size
        && h.size <= size.max(h.mprotect_size)
        && (h.prev == 0 || (h.prev % heap_max == 0 && h.prev != start))
}

#[cfg(test)]
mod tests {
    use super::super::classify;
    use super::super::testutil::FakeInspector;
    use super::*;
    use crate::proc::smaps::Mapping;

    const MB64: u64 = 64 << 20;

    fn anon(start: u64, end: u64, perms: &[u8; 4]) -> Mapping {
        Mapping {
            start,
            end,
            perms: *perms,
            ..Mapping::default()
        }
    }

    fn header(ar: u64, prev: u64, size: u64, mp: u64) -> Vec<u8> {
        [ar, prev, size, mp]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect()
    }

    #[test]
    fn two_arenas_get_their_own_ids() {
        let a = 0x7f00_0000_0000u64; // 64 MiB aligned
        let b = a + 2 * MB64;
        let c = a + 4 * MB64;
        let maps = vec![
            anon(a, a + 0x21000, b"rw-p"),
            anon(a + 0x21000, a + MB64, b"---p"),
            anon(b, b + 0x1000, b"rw-p"),
            anon(b + 0x1000, b + MB64, b"---p"),
            anon(c, c + 0x2000, b"rw-p"), // aligned, but header is garbage
        ];
        let mut fake = FakeInspector::default();
        fake.memory.push((a, header(b + 0x20, 0, 0x21000, 0x21000))); // second heap of arena at b
        fake.memory.push((b, header(b + 0x20, 0, 0x1000, 0x1000)));
        fake.memory.push((c, header(0, 0, 0, 0)));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].memory_type, r[0].heap_id),
            (MemoryType::Heap, Some(1))
        );
        assert_eq!(r[0].sub_blocks.len(), 2);
        assert_eq!(r[0].size(), MB64);
        assert_eq!(
            (r[1].memory_type, r[1].heap_id),
            (MemoryType::Heap, Some(1)),
            "same ar_ptr, same arena"
        );
        assert_eq!(r[2].memory_type, MemoryType::PrivateData);
    }

    /// A heap that grew between the read of the maps and that of its
    /// header (its thread allocating): the header claims more than the
    /// read-write part seen, within its reservation. Still a heap; more
    /// than the reservation is not.
    #[test]
    fn heap_that_grew_while_read() {
        let a = 0x7f00_0000_0000u64;
        let b = a + 2 * MB64;
        let maps = vec![
            anon(a, a + 0x21000, b"rw-p"),
            anon(a + 0x21000, a + MB64, b"---p"),
            anon(b, b + 0x21000, b"rw-p"),
            anon(b + 0x21000, b + 0x40000, b"---p"),
        ];
        let mut fake = FakeInspector::default();
        fake.memory.push((a, header(a + 0x20, 0, 0x50000, 0x52000)));
        fake.memory.push((b, header(b + 0x20, 0, 0x50000, 0x52000)));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!((r[0].memory_type, r[0].size()), (MemoryType::Heap, MB64));
        assert!(
            r[1..].iter().all(|r| r.memory_type != MemoryType::Heap),
            "{r:#?}"
        );
    }

    /// A heap whose committed part the kernel left in two VMAs: the
    /// header's `mprotect_size` covers both, and both join the heap.
    #[test]
    fn committed_part_in_two_vmas() {
        let r = heap_in_two_vmas(0x7f000, 0x80000);
        assert_eq!(r[0].sub_blocks[1].details, "committed");
    }

    /// A heap at 0x7f00_0000_0000 committed in two VMAs (0x21000 and
    /// 0x5f000 bytes) before its reservation, with a header of `size` and
    /// `mprotect_size`, classified: it must be one Heap region of 64 MiB
    /// holding the three VMAs.
    fn heap_in_two_vmas(size: u64, mprotect_size: u64) -> Vec<Region> {
        let a = 0x7f00_0000_0000u64;
        let maps = vec![
            anon(a, a + 0x21000, b"rw-p"),
            anon(a + 0x21000, a + 0x80000, b"rw-p"),
            anon(a + 0x80000, a + MB64, b"---p"),
        ];
        let mut fake = FakeInspector::default();
        fake.memory
            .push((a, header(a + 0x20, 0, size, mprotect_size)));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!((r[0].memory_type, r[0].size()), (MemoryType::Heap, MB64));
        assert_eq!(r[0].sub_blocks.len(), 3);
        r
    }

    /// Both at once: the committed part in two VMAs, and the heap grown
    /// between the read of smaps and that of its header. A traced run's
    /// snapshot, taken while the arena's thread allocated, once showed
    /// such a heap as Private Data.
    #[test]
    fn committed_part_in_two_vmas_that_grew_while_read() {
        heap_in_two_vmas(0x90000, 0xa0000);
    }

    #[test]
    fn unreadable_memory_needs_the_exact_layout() {
        let a = 0x7f00_0000_0000u64;
        let maps = vec![
            anon(a, a + 0x21000, b"rw-p"),
            anon(a + 0x21000, a + MB64, b"---p"),
        ];
        let mut fake = FakeInspector::default();
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(r[0].memory_type, MemoryType::Heap);
        assert!(r[0].details.contains("unconfirmed"));
    }
}
