//! glibc malloc's mmapped chunks: requests above `M_MMAP_THRESHOLD`
//! (128 KiB to 32 MiB, dynamic) get a mapping of their own, which starts
//! with the chunk header
//!
//! ```c
//! size_t mchunk_prev_size;  /* 0: no alignment correction */
//! size_t mchunk_size;       /* page multiple | IS_MMAPPED (0x2) */
//! ```
//!
//! The kernel merges neighbouring anonymous mappings, so one VMA may hold
//! several chunks back to back; a VMA is claimed only when a chain of such
//! headers covers it exactly, which chance does not do.

use std::borrow::Cow;

use super::Claimer;
use crate::classify::Inspector;
use crate::model::{Confidence, MemoryType};

/// The smallest mapping looked at: malloc's default `M_MMAP_THRESHOLD`
/// is 128 KiB, so its chunks are larger. Reading a header from each of the
/// tens of thousands of small mappings some processes have would cost more
/// than the rest of the snapshot; a program that lowers the threshold below
/// this keeps its small mmapped blocks as Private Data.
const MIN_CHUNK_VMA: u64 = 128 << 10;

/// The most chunks followed in one VMA: a VMA of more would be a heap of
/// its own, and reading must stay cheap.
const MAX_CHAIN: usize = 4096;

/// The size of the mmapped chunk whose header is at `addr`, if one is
/// there and ends at or before `limit`.
pub(crate) fn mmapped_chunk(
    inspector: &mut dyn Inspector,
    addr: u64,
    limit: u64,
    page: u64,
) -> Option<u64> {
    let mut b = [0u8; 16];
    if !inspector.read_memory(addr, &mut b) {
        return None;
    }
    let prev = u64::from_ne_bytes(b[..8].try_into().ok()?);
    let head = u64::from_ne_bytes(b[8..].try_into().ok()?);
    let size = head & !7;
    (prev == 0
        && head & 7 == 2
        && size >= page
        && size % page == 0
        && addr.checked_add(size).is_some_and(|e| e <= limit))
    .then_some(size)
}

pub(super) fn plan_chunks(c: &mut Claimer<'_>, inspector: &mut dyn Inspector) {
    for i in 0..c.regions.len() {
        if !c.free(i) || &c.regions[i].perms.0 != b"rw-p" || c.regions[i].size() < MIN_CHUNK_VMA {
            continue;
        }
        let (start, end) = (c.regions[i].start, c.regions[i].end);
        let mut at = start;
        let mut n = 0;
        while at < end && n < MAX_CHAIN {
            match mmapped_chunk(inspector, at, end, c.page) {
                Some(size) => {
                    at += size;
                    n += 1;
                }
                None => break,
            }
        }
        // The kernel also merges a chunk with any anonymous neighbour
        // mapped above it later in time (mmap grows down): chunks that
        // make up most of the VMA still make it Heap, less surely.
        let rest = end - at;
        if n == 0 || rest * 2 > end - start {
            continue;
        }
        let mut details = if n == 1 {
            "glibc mmapped chunk".to_string()
        } else {
            format!("glibc mmapped chunks ({n})")
        };
        let (evidence, confidence) = if rest == 0 {
            (EXACT, Confidence::High)
        } else {
            details.push_str(&format!(" and {} not identified", super::mib(rest)));
            (MOSTLY, Confidence::Medium)
        };
        c.claim(
            i,
            1,
            MemoryType::Heap,
            details,
            Cow::Borrowed(evidence),
            confidence,
            None,
        );
    }
}

const EXACT: &str = "malloc()ed block with a mapping of its own: chunk headers read from the process (IS_MMAPPED set, page-multiple sizes) cover the mapping exactly";
const MOSTLY: &str = "malloc()ed blocks with mappings of their own: chunk headers read from the process (IS_MMAPPED set, page-multiple sizes) cover most of the mapping, the kernel having merged it with a neighbour";

#[cfg(test)]
mod tests {
    use super::super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::FakeInspector;

    use crate::model::{Confidence, MemoryType};

    fn header(size: u64) -> Vec<u8> {
        let mut v = 0u64.to_ne_bytes().to_vec();
        v.extend_from_slice(&(size | 2).to_ne_bytes());
        v
    }

    /// Two chunks merged into one VMA are Heap; chunks covering most of a
    /// VMA make it Heap with medium confidence, a chunk covering less than
    /// half does not. Without libc there is no glibc malloc: the same
    /// memory stays Private Data.
    #[test]
    fn chains_must_cover_the_mapping() {
        let a = 0x7f00_0010_0000u64;
        let b = 0x7f00_0040_0000u64;
        let c = 0x7f00_0080_0000u64;
        let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        let maps = vec![
            anon(a, a + 0x42000, b"rw-p", 0x42000),
            anon(b, b + 0x21000, b"rw-p", 0x1000),
            anon(c, c + 0x61000, b"rw-p", 0x1000),
            file(0x7f10_0000_0000, 0x7f10_0010_0000, b"r-xp", 7, libc),
        ];
        let mut fake = FakeInspector::default();
        fake.files
            .insert(libc.into(), crate::classify::testutil::shared_object());
        // Two chunks merged into one VMA.
        fake.memory.push((a, header(0x21000)));
        fake.memory.push((a + 0x21000, header(0x21000)));
        // A chunk, then 4 KiB of something else.
        fake.memory.push((b, header(0x20000)));
        // A chunk of a third of the mapping.
        fake.memory.push((c, header(0x20000)));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(r[0].memory_type, MemoryType::Heap);
        assert_eq!(r[0].details, "glibc mmapped chunks (2)");
        assert_eq!(r[0].confidence, Confidence::High);
        assert_eq!(
            (r[1].memory_type, r[1].confidence, r[1].details.as_str()),
            (
                MemoryType::Heap,
                Confidence::Medium,
                "glibc mmapped chunk and 4 KiB not identified"
            )
        );
        assert_eq!(r[2].memory_type, MemoryType::PrivateData);
        let (no_libc, _) = classify(
            vec![anon(a, a + 0x42000, b"rw-p", 0x42000)],
            &ctx,
            &mut fake,
        );
        assert_eq!(no_libc[0].memory_type, MemoryType::PrivateData);
    }
}
