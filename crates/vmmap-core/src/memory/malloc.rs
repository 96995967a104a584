//! Allocator fragmentation of glibc heaps, from a walk of their chunks read
//! out of the process: how much of a heap's resident memory holds live
//! allocations, and how much is free chunks that malloc keeps.
//!
//! A glibc heap is a run of chunks, each starting with two words:
//! `prev_size` and `size`, whose low three bits are flags (`PREV_INUSE` = 1:
//! the chunk before is in use; `IS_MMAPPED` = 2; `NON_MAIN_ARENA` = 4). The
//! next chunk starts `size` bytes further on, and the last one, the *top*
//! chunk, ends exactly where the heap's memory ends. So one pass over the
//! heap's bytes, reading only the size words, classifies every chunk: a
//! chunk is free when the next one's `PREV_INUSE` is clear.
//!
//! Chunks in tcache and fastbins keep `PREV_INUSE` set in their successor
//! (glibc does not coalesce them), so they count as in use: the free figure
//! is a lower bound. The walk is validated: every size must be a multiple
//! of the alignment and at least the minimum chunk, and the chain must end
//! exactly at the heap's end; otherwise the heap is reported as not
//! walkable, never guessed.
//!
//! [`ChunkWalker`] is sans-IO (bytes in, figures out); [`heaps`] reads.

use std::ops::ControlFlow;

use serde::Serialize;

use super::{reader, ProcessMemory, ScanRange};
use crate::error::Result;
use crate::model::{MemoryType, Region, Snapshot};
use crate::proc::smaps::Field;

/// What a walk found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChunkStats {
    /// Chunks in use (tcache and fastbin chunks included).
    pub in_use_chunks: u64,
    /// Their bytes, headers included.
    pub in_use_bytes: u64,
    /// Free chunks (in the unsorted, small and large bins).
    pub free_chunks: u64,
    /// Their bytes.
    pub free_bytes: u64,
    /// The largest free chunk.
    pub largest_free: u64,
    /// The top chunk (free space at the end, not yet handed out).
    pub top_bytes: u64,
}

/// The sans-IO chunk walker over one heap's bytes, fed in address order.
pub struct ChunkWalker {
    word: u64,
    next: u64,
    end: u64,
    /// The last bytes of the previous feed and the address of the first.
    tail: (u64, Vec<u8>),
    prev: Option<u64>,
    stats: ChunkStats,
    done: bool,
    error: Option<String>,
}

const PREV_INUSE: u64 = 1;
const IS_MMAPPED: u64 = 2;

impl ChunkWalker {
    /// A walk from the chunk at `first` to the heap's end `end`, with
    /// `word`-byte words (8 on 64-bit, 4 on 32-bit).
    pub fn new(first: u64, end: u64, word: u64) -> ChunkWalker {
        ChunkWalker {
            word,
            next: first,
            end,
            tail: (0, Vec::new()),
            prev: None,
            stats: ChunkStats::default(),
            done: false,
            error: None,
        }
    }

    /// Whether the walk has reached the top chunk or failed: the rest of
    /// the heap need not be read.
    pub(crate) fn finished(&self) -> bool {
        self.done || self.error.is_some()
    }

    fn word_at(&self, at: u64, addr: u64, bytes: &[u8]) -> Option<u64> {
        let w = self.word as usize;
        let mut buf = [0u8; 8];
        for (k, b) in buf.iter_mut().enumerate().take(w) {
            let a = at + k as u64;
            *b = if a >= addr {
                *bytes.get(usize::try_from(a - addr).ok()?)?
            } else {
                let (t0, t) = &self.tail;
                *t.get(usize::try_from(a.checked_sub(*t0)?).ok()?)?
            };
        }
        Some(u64::from_le_bytes(buf))
    }

    /// Feeds the bytes at `addr` (each feed continues the previous one).
    pub fn feed(&mut self, addr: u64, bytes: &[u8]) {
        let end_of_bytes = addr + bytes.len() as u64;
        while !self.finished() {
            let h = self.next + self.word;
            if h + self.word > end_of_bytes {
                break;
            }
            if h < addr && h < self.tail.0 {
                self.error = Some(format!(
                    "the header of the chunk at {:#x} could not be read",
                    self.next
                ));
                break;
            }
            let Some(raw) = self.word_at(h, addr, bytes) else {
                self.error = Some(format!(
                    "the header of the chunk at {:#x} could not be read",
                    self.next
                ));
                break;
            };
            self.step(raw);
        }
        // Keep the stream's last bytes for a header split across feeds.
        let keep = 2 * self.word as usize;
        let (t0, t) = &mut self.tail;
        if *t0 + t.len() as u64 != addr {
            t.clear();
            *t0 = addr;
        }
        let take = bytes.len().min(keep);
        t.extend_from_slice(&bytes[bytes.len() - take..]);
        if t.len() > keep {
            t.drain(..t.len() - keep);
        }
        *t0 = end_of_bytes - t.len() as u64;
    }

    fn step(&mut self, raw: u64) {
        let size = raw & !7;
        let align = 2 * self.word;
        let min = 4 * self.word;
        if size < min || size % align.clamp(8, 16) != 0 || raw & IS_MMAPPED != 0 {
            self.error = Some(format!(
                "no chunk header at {:#x} (size word {raw:#x})",
                self.next
            ));
            return;
        }
        match self.prev {
            Some(p) if raw & PREV_INUSE == 0 => {
                self.stats.free_chunks += 1;
                self.stats.free_bytes += p;
                self.stats.largest_free = self.stats.largest_free.max(p);
            }
            Some(p) => {
                self.stats.in_use_chunks += 1;
                self.stats.in_use_bytes += p;
            }
            None if raw & PREV_INUSE == 0 => {
                self.error = Some(format!(
                    "the first chunk at {:#x} does not have PREV_INUSE set",
                    self.next
                ));
                return;
            }
            None => {}
        }
        let after = self.next.saturating_add(size);
        if after == self.end {
            self.stats.top_bytes = size;
            self.done = true;
        } else if after > self.end {
            self.error = Some(format!(
                "the chunk at {:#x} ({size:#x} bytes) runs past the heap's end {:#x}",
                self.next, self.end
            ));
        } else {
            self.prev = Some(size);
            self.next = after;
        }
    }

    /// The figures, or why the walk failed.
    pub fn finish(self) -> Result<ChunkStats, String> {
        match (self.error, self.done) {
            (Some(e), _) => Err(e),
            (None, true) => Ok(self.stats),
            (None, false) => Err(format!(
                "the walk stopped at {:#x}, before the top chunk",
                self.next
            )),
        }
    }
}

/// One heap's fragmentation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeapFragmentation {
    /// Heap ID (0: the brk heap of the main arena).
    pub heap_id: Option<u32>,
    /// The heap's first address.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub start: u64,
    /// Where its chunks end.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub(crate) end: u64,
    /// Resident bytes of its mapping (Rss).
    pub resident: u64,
    /// Swapped-out bytes.
    pub swap: u64,
    /// Bytes of the heap the walk did not read because they were not
    /// resident (reading them would have faulted them in). A chunk header
    /// in them stops the walk; the inside of a chunk does not.
    pub not_resident: u64,
    /// The walk's figures, or why it failed.
    pub chunks: std::result::Result<ChunkStats, String>,
}

impl HeapFragmentation {
    /// macOS's `%FRAG`: the share of the heap's resident and swapped memory
    /// not holding live allocations, `100 − 100 · in use / (resident +
    /// swap)`, at least 0.
    pub fn frag_percent(&self) -> Option<f64> {
        let c = self.chunks.as_ref().ok()?;
        let mem = self.resident + self.swap;
        (mem > 0).then(|| (100.0 - 100.0 * c.in_use_bytes as f64 / mem as f64).max(0.0))
    }
}

/// Walks one heap: `first` chunk to `end`, reading `[first, end)`. The
/// reader skips pages that are not resident (the inside of a large free
/// chunk that glibc gave back with `MADV_DONTNEED`, say); the walker fails
/// only when a chunk header lies in a skipped page.
fn walk(
    mem: &mut ProcessMemory,
    first: u64,
    end: u64,
    word: u64,
    page: u64,
) -> Result<(std::result::Result<ChunkStats, String>, u64)> {
    let mut w = ChunkWalker::new(first, end, word);
    let range = ScanRange {
        start: first,
        end,
        region: 0,
    };
    let stats = reader::walk(
        mem,
        std::slice::from_ref(&range),
        super::CHUNK,
        0,
        page,
        &mut |_| ControlFlow::Continue(()),
        &mut |c| {
            w.feed(c.address, c.data);
            if w.finished() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    let chunks = w.finish().map_err(|e| {
        if stats.not_resident + stats.unreadable > 0 {
            format!("{e} (part of the heap is not resident or cannot be read)")
        } else {
            e
        }
    });
    Ok((chunks, stats.not_resident))
}

/// The first chunk candidates of a non-main arena heap: 16-aligned
/// offsets after its `heap_info` (and after the arena's `malloc_state`
/// when it lives in this heap) whose header looks like a first chunk and
/// whose successor looks like a chunk, in the first 64 KiB.
fn arena_candidates(head: &[u8], start: u64, min_offset: u64, word: u64) -> Vec<u64> {
    let w = word as usize;
    let rd = |o: usize| -> Option<u64> {
        let b = head.get(o..o + w)?;
        let mut buf = [0u8; 8];
        buf[..w].copy_from_slice(b);
        Some(u64::from_le_bytes(buf))
    };
    let mut out = Vec::new();
    let mut o = usize::try_from(min_offset.div_ceil(16) * 16).unwrap_or(usize::MAX);
    while o + 2 * w <= head.len() && out.len() < 4 {
        if let Some(raw) = rd(o + w) {
            let size = raw & !7;
            let sane = |raw: u64| {
                let s = raw & !7;
                s >= 4 * word && s % 16 == 0 && raw & IS_MMAPPED == 0
            };
            if raw & PREV_INUSE != 0 && sane(raw) {
                let next = o + size as usize;
                if rd(next + w).is_none_or(sane) {
                    out.push(start + o as u64);
                }
            }
        }
        o += 16;
    }
    out
}

/// Walks every glibc heap of `snap`: the brk heap (Heap ID 0) and each
/// non-main arena heap. Only on explicit request: this reads the heaps'
/// memory.
pub fn heaps(mem: &mut ProcessMemory, snap: &Snapshot) -> Result<Vec<HeapFragmentation>> {
    let word = snap.process.pointer_width() as u64;
    let page = snap.kernel.page_size;
    let mut out = Vec::new();
    for r in &snap.regions {
        if r.memory_type != MemoryType::Heap || r.heap_id.is_none() {
            continue;
        }
        let Some(rw) = r.vmas().iter().find(|v| v.perms.read() && v.perms.write()) else {
            continue;
        };
        let (resident, swap) = figures(r);
        let mut entry = HeapFragmentation {
            heap_id: r.heap_id,
            start: rw.start,
            end: rw.end,
            resident,
            swap,
            not_resident: 0,
            chunks: Err(String::new()),
        };
        if &*r.path == "[heap]" || r.heap_id == Some(0) {
            // The brk heap: chunks from its first byte to the brk.
            (entry.chunks, entry.not_resident) = walk(mem, rw.start, rw.end, word, page)?;
        } else {
            let mut head = vec![0u8; (64usize << 10).min((rw.end - rw.start) as usize)];
            let n = mem.read(rw.start, &mut head)?;
            head.truncate(n);
            let w = word as usize;
            let rd = |k: usize| -> u64 {
                let mut buf = [0u8; 8];
                if let Some(b) = head.get(k * w..(k + 1) * w) {
                    buf[..w].copy_from_slice(b);
                }
                u64::from_le_bytes(buf)
            };
            // heap_info: ar_ptr, prev, size, mprotect_size.
            let (ar_ptr, size) = (rd(0), rd(2));
            let end = rw.start.saturating_add(size);
            if head.len() < 4 * w || size == 0 || end > rw.end {
                entry.chunks = Err(if head.is_empty() {
                    "its heap_info header is not resident or cannot be read".into()
                } else {
                    "its heap_info header could not be read".into()
                });
                out.push(entry);
                continue;
            }
            entry.end = end;
            // The arena's malloc_state follows heap_info in its first heap
            // (about 2 KiB); the first chunk comes after it.
            let min = if (rw.start..end).contains(&ar_ptr) {
                ar_ptr - rw.start + 0x800
            } else {
                4 * word
            };
            entry.chunks = Err("no first chunk found after heap_info".into());
            for first in arena_candidates(&head, rw.start, min, word) {
                (entry.chunks, entry.not_resident) = walk(mem, first, end, word, page)?;
                if entry.chunks.is_ok() {
                    break;
                }
            }
        }
        out.push(entry);
    }
    Ok(out)
}

fn figures(r: &Region) -> (u64, u64) {
    r.vmas().iter().fold((0, 0), |(a, b), v| {
        (
            a + v.fields.get(Field::Rss).unwrap_or(0),
            b + v.fields.get(Field::Swap).unwrap_or(0),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap image: chunks of the given sizes (flags added), then a top
    /// chunk to `total`.
    fn heap(chunks: &[(u64, bool)], total: u64) -> Vec<u8> {
        let mut d = vec![0u8; total as usize];
        let mut at = 0u64;
        let mut prev_in_use = true;
        for &(size, in_use) in chunks.iter().chain(&[(0, true)]) {
            let size = if size == 0 { total - at } else { size };
            let raw = size | u64::from(prev_in_use);
            d[at as usize + 8..at as usize + 16].copy_from_slice(&raw.to_le_bytes());
            prev_in_use = in_use;
            at += size;
        }
        d
    }

    #[test]
    fn counts_in_use_free_and_top_in_any_chunking() {
        let d = heap(
            &[
                (0x290, true),
                (0x20, true),
                (0x100, false),
                (0x30, true),
                (0x40, false),
                (0x20, true),
            ],
            0x1000,
        );
        let want = ChunkStats {
            in_use_chunks: 4,
            in_use_bytes: 0x290 + 0x20 + 0x30 + 0x20,
            free_chunks: 2,
            free_bytes: 0x140,
            largest_free: 0x100,
            top_bytes: 0x1000 - 0x290 - 0x20 - 0x100 - 0x30 - 0x40 - 0x20,
        };
        for step in [1, 3, 7, 8, 9, 16, 100, 0x1000] {
            let mut w = ChunkWalker::new(0x5000, 0x6000, 8);
            for (k, c) in d.chunks(step).enumerate() {
                w.feed(0x5000 + (k * step) as u64, c);
            }
            assert_eq!(w.finish(), Ok(want), "step {step}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_heap() {
        let mut w = ChunkWalker::new(0, 0x1000, 8);
        w.feed(0, &vec![0xabu8; 0x1000]);
        assert!(w.finish().is_err());
        // A chain that overshoots the end.
        let d = heap(&[(0x20, true)], 0x1000);
        let mut w = ChunkWalker::new(0, 0x800, 8);
        w.feed(0, &d);
        assert!(w.finish().unwrap_err().contains("runs past"));
        // Cut short.
        let mut w = ChunkWalker::new(0, 0x1000, 8);
        w.feed(0, &d[..0x18]);
        assert!(w.finish().unwrap_err().contains("before the top chunk"));
    }

    #[test]
    fn frag_percent() {
        let h = HeapFragmentation {
            heap_id: Some(0),
            start: 0,
            end: 0,
            resident: 1000,
            swap: 0,
            not_resident: 0,
            chunks: Ok(ChunkStats {
                in_use_bytes: 250,
                ..ChunkStats::default()
            }),
        };
        assert_eq!(h.frag_percent(), Some(75.0));
    }
}
