//! Frees tied to their blocks at record time ([`CHUNK_FREES`]).
//!
//! An analysis must know, for every free, the size and call stack of the
//! block it releases. Looking that up in a map of live blocks was most of
//! the cost of analysing a program that frees on other threads than it
//! allocates: a million blocks alive, and each lookup a cache miss, since
//! the allocator hands blocks back in no order of address. `vmmap run`
//! already decodes the trace as the agent writes it (its follower, at idle
//! priority, for the threads' stacks), but that decoding starves on busy
//! cores. So `vmmap run`, once the program has ended, reads the recording
//! once more with a [`Recorder`] (in the same pass as the summary it
//! prints) and appends the answers: then every analysis reads each free's
//! block in order and keeps no map (heaptrack does the same:
//! `heaptrack_interpret` resolves frees while recording), and the traced
//! program's own hooks do no more than before. The analyses read the chunk
//! whenever a file has one (docs/tracing.md, "Analysis cost", has the
//! figures).
//!
//! The chunk's payload (LEB128 varints):
//!
//! ```text
//! version (1) | messages | stacks | allocations | frees
//! | replaced: count, then (allocation number delta, stack, size) each
//! | entries_len | zstd frame of entries_len bytes of entries:
//!     per free, in the decoder's record order: 0 (a block the trace never
//!     saw allocated) or stack + 1, then size
//! ```
//!
//! `messages` (trace messages decoded) and `stacks` (distinct stacks)
//! let a reader check that it decoded the same records; `replaced` lists
//! the allocations made at the address of a block still live (its free
//! was not seen), by their number among allocations, with the block they
//! replaced. Stack ids are the decoder's, which numbers stacks in the
//! order the merge meets them: the same on every decode of the same file.
//! A reader that finds anything amiss (another count, entries left over
//! or missing) drops the chunk and looks the blocks up itself.

use std::io::{Read, Write};

use super::decode::{Event, Record, TraceInfo};
use super::summary::{Block, LiveMap};
use vmmap_core::format::CHUNK_FREES;
use vmmap_wire::{push_uvarint, Cursor};

/// The payload layout's version; a reader ignores chunks of another.
const VERSION: u64 = 1;
/// Entries buffered before they are compressed.
const FLUSH: usize = 1 << 16;
/// zstd level: the entries compress fourfold at level 1 already, and
/// compression runs while the user waits for `vmmap run` to end.
const LEVEL: i32 = 1;
/// Live blocks past which the recorder gives up (no chunk: the analyses
/// keep their own map, as for a file without one). The map takes 10 to 16
/// bytes a block, so `vmmap run` stays under about 64 MiB for it on a
/// production host whatever the program keeps alive; the threaded bench
/// workload peaks at about a million.
const MAX_LIVE: usize = 1 << 22;

/// Ties each free to its block as the records go by (the launcher's
/// side), and writes the chunk's payload at the end.
pub struct Recorder {
    live: LiveMap,
    image: u32,
    allocations: u64,
    frees: u64,
    replaced: Vec<u8>,
    replaced_count: u64,
    last_replaced: u64,
    entries: Vec<u8>,
    entries_len: u64,
    packed: zstd::stream::write::Encoder<'static, Vec<u8>>,
    /// Compression failed: no chunk.
    failed: bool,
}

impl Recorder {
    /// An empty recorder; None when zstd cannot start.
    pub fn new() -> Option<Recorder> {
        Some(Recorder {
            live: LiveMap::default(),
            image: 0,
            allocations: 0,
            frees: 0,
            replaced: Vec::new(),
            replaced_count: 0,
            last_replaced: 0,
            entries: Vec::with_capacity(FLUSH + 32),
            entries_len: 0,
            packed: zstd::stream::write::Encoder::new(Vec::new(), LEVEL).ok()?,
            failed: false,
        })
    }

    /// Takes one record, in the decoder's order. Mirrors the map of
    /// [`crate::summary::Summarizer`] (whole run, no range) step for step.
    pub fn add(&mut self, r: &Record) {
        if self.failed {
            return;
        }
        if r.image != self.image {
            // An exec: the old image's blocks went with it.
            self.live = LiveMap::default();
            self.image = r.image;
        }
        match r.event {
            Event::Alloc {
                ptr, size, stack, ..
            } => self.alloc(ptr, size, stack),
            Event::Realloc {
                old,
                new,
                size,
                stack,
            } => {
                if old != 0 {
                    self.free(old);
                }
                if new != 0 {
                    self.alloc(new, size, stack);
                }
            }
            Event::Free { ptr } => self.free(ptr),
            _ => {}
        }
    }

    fn alloc(&mut self, ptr: u64, size: u64, stack: u32) {
        if let Some(old) = self.live.insert(ptr, Block { size, stack }) {
            push_uvarint(&mut self.replaced, self.allocations - self.last_replaced);
            push_uvarint(&mut self.replaced, u64::from(old.stack));
            push_uvarint(&mut self.replaced, old.size);
            self.replaced_count += 1;
            self.last_replaced = self.allocations;
        }
        self.allocations += 1;
        if self.live.len() > MAX_LIVE {
            self.give_up();
        }
    }

    /// No chunk after all: the memory goes back at once.
    #[cold]
    fn give_up(&mut self) {
        self.failed = true;
        self.live = LiveMap::default();
        self.replaced = Vec::new();
        self.entries = Vec::new();
    }

    /// Whether the chunk was given up (too many live blocks, or
    /// compression failed).
    pub fn given_up(&self) -> bool {
        self.failed
    }

    fn free(&mut self, ptr: u64) {
        match self.live.remove(ptr) {
            Some(b) => {
                push_uvarint(&mut self.entries, u64::from(b.stack) + 1);
                push_uvarint(&mut self.entries, b.size);
            }
            None => self.entries.push(0),
        }
        self.frees += 1;
        if self.entries.len() >= FLUSH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.entries_len += self.entries.len() as u64;
        if self.packed.write_all(&self.entries).is_err() {
            self.failed = true;
        }
        self.entries.clear();
    }

    /// The chunk's payload, for a trace whose records were all taken
    /// (`info` is the decoder's, after its `finish`); None when the
    /// recorder gave up or compression failed.
    pub fn finish(mut self, info: &TraceInfo) -> Option<Vec<u8>> {
        if self.failed {
            return None;
        }
        self.flush();
        let z = self.packed.finish().ok()?;
        if self.failed {
            return None;
        }
        let mut out = Vec::with_capacity(z.len() + self.replaced.len() + 64);
        for v in [
            VERSION,
            info.messages as u64,
            info.stacks.len() as u64,
            self.allocations,
            self.frees,
            self.replaced_count,
        ] {
            push_uvarint(&mut out, v);
        }
        out.extend_from_slice(&self.replaced);
        push_uvarint(&mut out, self.entries_len);
        out.extend_from_slice(&z);
        Some(out)
    }
}

/// A [`CHUNK_FREES`] payload being read (the analysis' side), in step
/// with the records.
pub(crate) struct Resolved {
    /// Trace messages and distinct stacks the recorder's decoder saw.
    pub(crate) messages: u64,
    pub(crate) stacks: u64,
    allocations: u64,
    frees: u64,
    /// (allocation number, block replaced), in order.
    replaced: Vec<(u64, Block)>,
    next_replaced: usize,
    allocs_seen: u64,
    frees_seen: u64,
    entries: Entries,
    /// The records and the chunk disagree: its answers are not used.
    pub(crate) broken: bool,
}

/// Bytes kept ahead of the cursor: more than the longest entry (two
/// varints of ten bytes).
const AHEAD: usize = 24;
/// Decompressed entries held at once: memory stays small whatever the
/// trace's length (a 10-million-free trace has 30 MB of entries).
const WINDOW: usize = 1 << 16;

/// The largest zstd window accepted (8 MiB).
const WINDOW_LOG_MAX: u32 = 23;

/// The entries, decompressed a window at a time.
struct Entries {
    z: zstd::stream::read::Decoder<'static, std::io::BufReader<std::io::Cursor<Vec<u8>>>>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Decompressed bytes still to come (from the header).
    left: u64,
}

impl Entries {
    /// Keeps [`AHEAD`] bytes (or the rest) after `pos`; false on a
    /// decompression error.
    #[inline(never)]
    fn refill(&mut self) -> bool {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        while self.end < AHEAD && self.left > 0 {
            let room = (self.buf.len() - self.end).min(self.left as usize);
            match self.z.read(&mut self.buf[self.end..self.end + room]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    self.end += n;
                    self.left -= n as u64;
                }
            }
        }
        true
    }

    /// The next entry: Some(None) for an unknown block, None at the end
    /// or on damage.
    #[inline(always)]
    fn next(&mut self) -> Option<Option<Block>> {
        if self.end - self.pos < AHEAD && self.left > 0 && !self.refill() {
            return None;
        }
        let mut c = Cursor::new(&self.buf[self.pos..self.end]);
        let stack = c.uvarint()?;
        let entry = if stack == 0 {
            None
        } else {
            let size = c.uvarint()?;
            Some(Block {
                size,
                stack: u32::try_from(stack - 1).ok()?,
            })
        };
        self.pos += c.position();
        Some(entry)
    }
}

impl Resolved {
    /// Parses a payload; None if it is of another version or damaged.
    pub(crate) fn parse(payload: Vec<u8>) -> Option<Resolved> {
        let mut c = Cursor::new(&payload);
        if c.uvarint()? != VERSION {
            return None;
        }
        let (messages, stacks, allocations, frees) =
            (c.uvarint()?, c.uvarint()?, c.uvarint()?, c.uvarint()?);
        let n = c.uvarint()?;
        // Each takes three bytes at least: a damaged count cannot claim
        // more memory than the payload's size.
        if n > c.remaining() as u64 / 3 {
            return None;
        }
        let mut replaced = Vec::with_capacity(n as usize);
        let mut at = 0u64;
        for _ in 0..n {
            at = at.checked_add(c.uvarint()?)?;
            let stack = u32::try_from(c.uvarint()?).ok()?;
            replaced.push((
                at,
                Block {
                    size: c.uvarint()?,
                    stack,
                },
            ));
        }
        let left = c.uvarint()?;
        let start = c.position();
        let mut z = std::io::Cursor::new(payload);
        z.set_position(start as u64);
        let mut z = zstd::stream::read::Decoder::new(z).ok()?;
        // The recorder's frames need far less; a damaged one may not
        // claim more.
        z.window_log_max(WINDOW_LOG_MAX).ok()?;
        Some(Resolved {
            messages,
            stacks,
            allocations,
            frees,
            replaced,
            next_replaced: 0,
            allocs_seen: 0,
            frees_seen: 0,
            entries: Entries {
                z,
                buf: vec![0u8; WINDOW].into_boxed_slice(),
                pos: 0,
                end: 0,
                left,
            },
            broken: false,
        })
    }

    /// The block an allocation replaced (a live block at its address),
    /// if it replaced one.
    #[inline(always)]
    pub(crate) fn alloc(&mut self) -> Option<Block> {
        let n = self.allocs_seen;
        self.allocs_seen += 1;
        match self.replaced.get(self.next_replaced) {
            Some(&(at, b)) if at == n => {
                self.next_replaced += 1;
                Some(b)
            }
            _ => None,
        }
    }

    /// The block a free released (None: a block the trace never saw
    /// allocated). Past the end of the entries, marks the chunk broken.
    #[inline(always)]
    pub(crate) fn free(&mut self) -> Option<Block> {
        self.frees_seen += 1;
        match self.entries.next() {
            Some(b) => b,
            None => {
                self.broken = true;
                None
            }
        }
    }

    /// Whether the records read were exactly those the chunk answers
    /// for: every entry used, and the same counts.
    pub(crate) fn agrees(&self, info: &TraceInfo) -> bool {
        !self.broken
            && self.entries.left == 0
            && self.entries.pos == self.entries.end
            && self.next_replaced == self.replaced.len()
            && self.allocs_seen == self.allocations
            && self.frees_seen == self.frees
            && self.messages == info.messages as u64
            && self.stacks == info.stacks.len() as u64
    }
}

/// The last [`CHUNK_FREES`] payload of a file, parsed; None if it has
/// none (recorded by `vmmap attach`, an older vmmap, or a run that did not
/// end cleanly) or it cannot be read. Reads only the chunks' headers, and
/// seeks past their payloads: it runs before the analysis starts, and
/// reading a 100 MB trace through would delay it by a tenth of its time
/// (no reader of the container seeks, so these few lines do it here).
pub(crate) fn read(path: &std::path::Path) -> Option<Resolved> {
    use std::io::{Seek, SeekFrom};
    let mut f = vmmap_core::format::open_input(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut h = [0u8; 16];
    f.read_exact(&mut h).ok()?;
    if h[..8] != vmmap_core::format::MAGIC {
        return None;
    }
    let word = |h: &[u8; 16], i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (mut at, mut last) = (16u64, None);
    while at + 16 <= len {
        f.seek(SeekFrom::Start(at)).ok()?;
        f.read_exact(&mut h).ok()?;
        let stored = u64::from(word(&h, 4));
        if word(&h, 0) == CHUNK_FREES && at + 16 + stored <= len {
            last = Some((at, h));
        }
        at += 16 + stored;
    }
    let (at, h) = last?;
    let mut payload = vec![0u8; word(&h, 4) as usize];
    f.seek(SeekFrom::Start(at + 16)).ok()?;
    f.read_exact(&mut payload).ok()?;
    let header = vmmap_core::format::chunk_header(CHUNK_FREES, &[&payload], word(&h, 8) as usize);
    if header.ok()? != h {
        return None;
    }
    Resolved::parse(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::{malloc, record};

    fn rec(image: u32, event: Event) -> Record {
        record(1, image, 0, event)
    }

    /// What the recorder writes reads back in order: known, unknown,
    /// realloc'd and replaced blocks, across an exec; one more free than
    /// recorded breaks the agreement.
    #[test]
    fn entries_read_back_as_recorded() {
        let mut r = Recorder::new().unwrap();
        let mut events = vec![
            rec(0, malloc(0x10, 8, 1)),
            rec(0, malloc(0x10, 9, 2)), // replaces the first
            rec(0, Event::Free { ptr: 0x99 }),
            rec(
                0,
                Event::Realloc {
                    old: 0x10,
                    new: 0x20,
                    size: 300,
                    stack: 3,
                },
            ),
            rec(0, malloc(0x30, 1 << 41, 70_000)),
            rec(1, Event::Free { ptr: 0x20 }), // after an exec: unknown
        ];
        for i in 0..50_000u64 {
            events.push(rec(1, malloc(0x1000 + i * 16, i, 5)));
            events.push(rec(
                1,
                Event::Free {
                    ptr: 0x1000 + i * 16,
                },
            ));
        }
        for e in &events {
            r.add(e);
        }
        let info = TraceInfo {
            messages: 4,
            ..TraceInfo::default()
        };
        let payload = r.finish(&info).unwrap();
        let mut res = Resolved::parse(payload.clone()).unwrap();
        assert!(res.alloc().is_none());
        let b = res.alloc().unwrap();
        assert_eq!((b.size, b.stack), (8, 1));
        assert!(res.free().is_none());
        let b = res.free().unwrap();
        assert_eq!((b.size, b.stack), (9, 2));
        assert!(res.alloc().is_none() && res.alloc().is_none());
        assert!(res.free().is_none());
        for i in 0..50_000u64 {
            assert!(res.alloc().is_none());
            let b = res.free().unwrap();
            assert_eq!((b.size, b.stack), (i, 5));
        }
        assert!(res.agrees(&info));
        assert!(!res.agrees(&TraceInfo::default()));
        assert!(res.free().is_none() && !res.agrees(&info));
        // Damage anywhere is refused or found, never a panic.
        for cut in (0..payload.len()).step_by(payload.len() / 40 + 1) {
            if let Some(mut r) = Resolved::parse(payload[..cut].to_vec()) {
                for _ in 0..100_005 {
                    r.alloc();
                    r.free();
                }
                assert!(!r.agrees(&info));
            }
        }
    }

    /// A program with more live blocks than the launcher keeps gets no
    /// chunk (its map is dropped at once), not an ever larger launcher.
    #[test]
    fn too_many_live_blocks_give_no_chunk() {
        let mut r = Recorder::new().unwrap();
        for i in 0..=MAX_LIVE as u64 {
            r.add(&rec(0, malloc(0x1000 + i * 16, 8, 1)));
        }
        assert!(r.given_up());
        assert!(r.live.len() == 0);
        r.add(&rec(0, Event::Free { ptr: 0x1000 }));
        assert!(r.finish(&TraceInfo::default()).is_none());
    }

    /// A count with the chunk gives what a count with the map gives, to
    /// the last figure; a chunk that names a block no stack holds is found
    /// out, not counted below zero.
    #[test]
    fn counting_with_the_chunk_equals_counting_with_the_map() {
        let mut events = vec![
            rec(0, malloc(0x10, 8, 1)),
            rec(0, malloc(0x10, 9, 2)),
            rec(0, Event::Free { ptr: 0x99 }),
            rec(0, malloc(0x40, 5, 1)),
            rec(0, Event::Free { ptr: 0x40 }),
        ];
        for i in 0..3000u64 {
            events.push(rec(
                0,
                malloc(0x1000 + i * 32, 10 + i % 7, (i % 5) as u32 + 1),
            ));
            if i % 3 == 0 {
                events.push(rec(
                    0,
                    Event::Free {
                        ptr: 0x1000 + (i / 2) * 32,
                    },
                ));
            }
        }
        events.push(rec(
            0,
            Event::Realloc {
                old: 0x1000,
                new: 0x9000,
                size: 77,
                stack: 4,
            },
        ));
        // An exec releases the rest; the new image allocates and frees.
        events.push(rec(1, malloc(0x10, 3, 6)));
        events.push(rec(1, Event::Free { ptr: 0x1020 }));
        events.push(rec(1, malloc(0x20, 4, 6)));
        let info = TraceInfo {
            messages: 2,
            stacks: vec![
                crate::decode::StackInfo {
                    frames: Vec::new(),
                    truncated: false,
                };
                7
            ],
            ..TraceInfo::default()
        };
        let mut r = Recorder::new().unwrap();
        let mut map = crate::summary::Summarizer::default();
        for e in &events {
            r.add(e);
            map.add(e);
        }
        let payload = r.finish(&info).unwrap();
        let mut chunk = crate::summary::Summarizer::with_frees_chunk(payload).unwrap();
        for e in &events {
            chunk.add(e);
        }
        assert!(chunk.resolution_agrees(&info));
        assert_eq!(chunk.finish_costs(&info), map.finish_costs(&info));
        // A free said to release a block of a stack that holds none.
        let mut r = Recorder::new().unwrap();
        r.add(&rec(0, malloc(0x10, 8, 1)));
        r.add(&rec(0, Event::Free { ptr: 0x10 }));
        let payload = r.finish(&info).unwrap();
        let mut chunk = crate::summary::Summarizer::with_frees_chunk(payload).unwrap();
        chunk.add(&rec(0, malloc(0x10, 8, 2)));
        chunk.add(&rec(0, Event::Free { ptr: 0x10 }));
        assert!(!chunk.resolution_agrees(&info));
    }
}
