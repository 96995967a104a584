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
//! several chunks back to back, and splits one chunk in several VMAs when
//! part of it is advised or protected differently; VMAs are claimed only
//! when a chain of such headers covers them exactly, which chance does not
//! do.

use super::{Claim, Claimer};
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
    chunk_size(&b, addr, limit, page)
}

/// The size of the mmapped chunk whose header `b` is, read at `addr`, if
/// it is one and ends at or before `limit`.
fn chunk_size(b: &[u8; 16], addr: u64, limit: u64, page: u64) -> Option<u64> {
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
    // One past the last VMA of the free run measured last. A claim only
    // takes VMAs before the next one looked at, so the rest of that run
    // stays free and contiguous: measuring it again from each of its VMAs
    // cost time quadratic in its length (800 adjacent small mappings: a
    // fifth of a snapshot).
    let mut run_end = 0;
    let mut ahead = Headers::default();
    let mut i = 0;
    while i < c.regions.len() {
        i += chunks_at(c, inspector, i, &mut run_end, &mut ahead).max(1);
    }
}

/// The headers at the start of every `rw-p` VMA of the free run measured
/// last, read together when it is measured (one pagemap look-up and one
/// read for the run, not two system calls per VMA); `None` where one
/// could not be read.
#[derive(Default)]
struct Headers {
    at: Vec<(u64, Option<[u8; 16]>)>,
}

impl Headers {
    /// Reads the headers of VMAs `i..i + run`.
    fn read(c: &Claimer<'_>, inspector: &mut dyn Inspector, i: usize, run: usize) -> Headers {
        let addrs: Vec<u64> = c.regions[i..i + run]
            .iter()
            .filter(|r| &r.perms.0 == b"rw-p")
            .map(|r| r.start)
            .collect();
        let mut out = vec![0u8; addrs.len() * 16];
        let ok = inspector.read_memory_each(&addrs, 16, &mut out);
        let at = addrs
            .iter()
            .zip(out.chunks_exact(16))
            .zip(ok)
            .map(|((&a, b), ok)| (a, ok.then(|| b.try_into().ok()).flatten()))
            .collect();
        Headers { at }
    }

    /// The chunk at `addr` as [`mmapped_chunk`] finds it, from the headers
    /// read ahead when `addr` is one of theirs.
    fn chunk(
        &self,
        inspector: &mut dyn Inspector,
        addr: u64,
        limit: u64,
        page: u64,
    ) -> Option<u64> {
        match self.at.binary_search_by_key(&addr, |h| h.0) {
            Ok(k) => chunk_size(self.at[k].1.as_ref()?, addr, limit, page),
            Err(_) => mmapped_chunk(inspector, addr, limit, page),
        }
    }
}

/// Follows the chain of chunk headers from the start of VMA `i` and claims
/// the VMAs it covers; returns how many VMAs it claimed.
///
/// A chunk may span several VMAs: madvise (huge-page advice), mprotect or
/// THP split a mapping into parts with other flags or permissions, which
/// the kernel does not merge back. The chain therefore runs on across the
/// free, contiguous, non-executable VMAs that follow, and stops where a
/// chunk ends exactly at the end of a VMA (the next VMA is then looked at
/// on its own, as its own chunk or not).
///
/// `run_end` is one past the free run measured last (see [`plan_chunks`]).
fn chunks_at(
    c: &mut Claimer<'_>,
    inspector: &mut dyn Inspector,
    i: usize,
    run_end: &mut usize,
    ahead: &mut Headers,
) -> usize {
    if &c.regions[i].perms.0 != b"rw-p" {
        return 0;
    }
    let run = if i < *run_end {
        *run_end - i
    } else {
        let Some(run) = c.free_run(i, |r| !r.perms.exec()) else {
            return 0;
        };
        *run_end = i + run;
        if c.span(i, run) >= MIN_CHUNK_VMA {
            *ahead = Headers::read(c, inspector, i, run);
        }
        run
    };
    if c.span(i, run) < MIN_CHUNK_VMA {
        return 0;
    }
    let start = c.regions[i].start;
    let limit = c.regions[i + run - 1].end;
    // `k`: the VMA the chain has reached; `at`: where the next header is.
    let (mut at, mut k, mut n) = (start, i, 0);
    while at < limit && n < MAX_CHAIN {
        let Some(size) = ahead.chunk(inspector, at, limit, c.page) else {
            break;
        };
        at += size;
        n += 1;
        while c.regions[k].end < at {
            k += 1;
        }
        if c.regions[k].end == at {
            break;
        }
    }
    if n == 0 {
        return 0;
    }
    // The chain ended inside VMA `k` (or exactly at its end).
    let len = k - i + 1;
    let end = c.regions[k].end;
    // The kernel also merges a chunk with any anonymous neighbour
    // mapped above it later in time (mmap grows down): chunks that
    // make up most of the VMAs still make them Heap, less surely.
    let rest = end - at;
    if rest * 2 > end - start {
        return 0;
    }
    let mut details = if n == 1 {
        "glibc mmapped chunk".to_string()
    } else {
        format!("glibc mmapped chunks ({n})")
    };
    let (evidence, confidence) = match (rest, len) {
        (0, 1) => (EXACT, Confidence::High),
        (0, _) => (EXACT_SPLIT, Confidence::High),
        _ => {
            details.push_str(&format!(" and {} not identified", super::mib(rest)));
            (MOSTLY, Confidence::Medium)
        }
    };
    c.claim(
        i,
        len,
        Claim::new(MemoryType::Heap, details, evidence).confidence(confidence),
    );
    len
}

const EXACT: &str = "malloc()ed block with a mapping of its own: chunk headers read from the process (IS_MMAPPED set, page-multiple sizes) cover the mapping exactly";
const EXACT_SPLIT: &str = "malloc()ed block with a mapping of its own, which the kernel split in several (madvise, mprotect): chunk headers read from the process (IS_MMAPPED set, page-multiple sizes) cover the mappings exactly";
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

    /// One chunk the kernel split in three (advised, protected): one Heap
    /// group of the three. A chunk whose chain ends inside the second VMA
    /// of two, that VMA mostly not the chunk, is not.
    #[test]
    fn a_chunk_split_in_several_mappings() {
        let a = 0x7f00_0100_0000u64;
        let b = 0x7f00_0400_0000u64;
        let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        let maps = vec![
            anon(a, a + 0x100000, b"rw-p", 0x100000),
            anon(a + 0x100000, a + 0x200000, b"r--p", 0x100000),
            anon(a + 0x200000, a + 0x801000, b"rw-p", 0x601000),
            anon(b, b + 0x21000, b"rw-p", 0x1000),
            anon(b + 0x21000, b + 0x100000, b"r--p", 0x1000),
            file(0x7f10_0000_0000, 0x7f10_0010_0000, b"r-xp", 7, libc),
        ];
        let mut fake = FakeInspector::default();
        fake.files
            .insert(libc.into(), crate::classify::testutil::shared_object());
        fake.memory.push((a, header(0x801000)));
        fake.memory.push((b, header(0x22000)));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(
            (r[0].memory_type, r[0].size(), r[0].sub_blocks.len()),
            (MemoryType::Heap, 0x801000, 3),
            "{r:#?}"
        );
        assert_eq!(r[0].details, "glibc mmapped chunk");
        assert_eq!(r[0].confidence, Confidence::High);
        assert_eq!(r[1].memory_type, MemoryType::PrivateData);
    }
}
