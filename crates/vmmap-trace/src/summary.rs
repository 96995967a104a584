//! Totals of a traced run: operation counts, bytes, the heap's peak and
//! what was still allocated at the end. One pass, memory bounded by the
//! number of live blocks.

use std::collections::{BTreeMap, HashMap};

pub use super::decode::OPERATIONS;
use super::decode::{Decoder, Event, Record, TraceError, TraceInfo};
use super::frees::Resolved;

/// What a trace adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Calls recorded, by operation name (`malloc`, `free`, `mmap`...).
    pub calls: BTreeMap<&'static str, u64>,
    /// Blocks handed out: malloc, calloc, the aligned family, and realloc
    /// calls that returned a block.
    pub allocations: u64,
    /// Blocks given back: free, and realloc's release of the old block.
    pub frees: u64,
    /// Bytes requested over the run.
    pub bytes_allocated: u64,
    /// Largest sum of live requested bytes.
    pub peak_bytes: u64,
    /// Ticks of that peak.
    pub peak_tick: u64,
    /// Blocks never freed (leaks, if the program had exited).
    pub live_blocks: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Blocks still live when their process image was replaced by an
    /// exec: the kernel released them with the image, so they are
    /// neither freed nor leaked.
    pub exec_released_blocks: u64,
    /// Their bytes.
    pub exec_released_bytes: u64,
    /// The process image the heap peaked in.
    pub peak_image: u32,
    /// Frees of pointers the trace never saw allocated (allocated before
    /// the agent started, or by a path no hook sees).
    pub unknown_frees: u64,
    /// Bytes mapped by `mmap` calls.
    pub mapped_bytes: u64,
    /// Threads seen.
    pub threads: u64,
    /// Distinct call stacks.
    pub stacks: u64,
    /// Stacks the unwinder could not finish.
    pub truncated_stacks: u64,
    /// First and last event ticks.
    pub span: (u64, u64),
    /// The last image's last record was an exec (of this program) and no
    /// image came after: the new program was not traced (it could not
    /// open the trace file, or the loader did not load the agent).
    pub untraced_exec: Option<(u32, String)>,
}

/// What one call stack allocated, for the call tree, leaks and exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackCost {
    /// Blocks it allocated (malloc, calloc, the aligned family, realloc).
    pub allocations: u64,
    /// Bytes it requested.
    pub bytes: u64,
    /// Its blocks still live at the end (or the chosen time).
    pub live_blocks: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Its live bytes at the moment of the heap's peak: these add up to
    /// the peak, so a call tree can show who made it.
    pub peak_bytes: u64,
    /// Blocks freed by the allocating thread before that thread allocated
    /// again: memory used for so short a time that it could have lived on
    /// the stack.
    pub temporary: u64,
}

impl StackCost {
    /// Adds `o` (a node of a call tree sums its stacks).
    pub(crate) fn add(&mut self, o: &StackCost) {
        self.allocations += o.allocations;
        self.bytes += o.bytes;
        self.live_blocks += o.live_blocks;
        self.live_bytes += o.live_bytes;
        self.peak_bytes += o.peak_bytes;
        self.temporary += o.temporary;
    }
}

/// A live block: its size and stack.
#[derive(Clone, Copy)]
pub(crate) struct Block {
    pub(crate) size: u64,
    pub(crate) stack: u32,
}

/// A hasher for the few blocks [`LiveMap`] keeps apart.
type Fast = foldhash::fast::FixedState;

/// The live blocks by address, grouped by 4 KiB page of address space.
/// A program that keeps a million blocks alive (a queue between threads)
/// made the map of live blocks the analysis' cost: one hash entry per
/// block missed the cache on most allocations and frees, even with a hash
/// that kept neighbours together. Allocations and frees close in time are
/// mostly close in address, so here a lookup finds the page (few pages
/// are busy at once) and scans the page's short array of blocks, eight
/// bytes each: offset in the page, size and stack in one word.
///
/// The pages are an open-addressing table (linear probing) rather than a
/// `HashMap`, because the place of a page's slot must be known before the
/// lookup: [`Summarizer::add_batch`] asks the cache for the slots of the
/// records coming up, then for their pages' blocks, so that the misses of
/// many records overlap instead of each waiting for the last. Hand-written:
/// no crate keeps a map in this layout or says where a key's slot is.
#[derive(Default)]
pub(crate) struct LiveMap {
    /// Twice as many as the pages at least, a power of two.
    slots: Vec<Slot>,
    /// Slots in use.
    pages: usize,
    /// Emptied pages' arrays, kept for reuse (pages fill and empty as the
    /// heap is reused).
    spare: Vec<Vec<u64>>,
    len: usize,
    /// Blocks whose size or stack does not fit in a word (marked [`BIG`]
    /// in their page).
    big: HashMap<u64, Block, Fast>,
}

/// One page's blocks ([`pack`]ed), or an empty slot ([`EMPTY`]).
/// Aligned so that a slot never straddles two cache lines.
#[repr(align(32))]
struct Slot {
    page: u64,
    blocks: Vec<u64>,
}

const PAGE_SHIFT: u32 = 12;
/// The key of an empty slot: no address has this page.
const EMPTY: u64 = u64::MAX;
/// Emptied pages kept for reuse: enough for the pages of a busy heap that
/// come and go, few enough that their arrays do not add up.
const SPARE_PAGES: usize = 1024;
/// Room a new page's array starts with: a page of a busy heap holds tens
/// of blocks, and growing from four took five allocations a page.
const FIRST_BLOCKS: usize = 16;
const OFFSET_SHIFT: u32 = 52;
const SIZE_BITS: u32 = 28;
const STACK_BITS: u32 = OFFSET_SHIFT - SIZE_BITS;
/// The low bits of a block kept in [`LiveMap::big`] (no packed block has
/// them all set: its stack is below `2^24 - 1`).
const BIG: u64 = (1 << OFFSET_SHIFT) - 1;
/// How many records ahead [`Summarizer::add_batch`] asks for the pages'
/// slots; it asks for their blocks half as far ahead. Far enough for a
/// miss to arrive before the record is counted.
const AHEAD: usize = 32;

/// The live blocks from which [`Summarizer::add_batch`] prefetches: about
/// a megabyte of blocks, more than stays in a core's own caches.
const PREFETCH_FROM: usize = 1 << 17;

/// A hint to the cache to load the line at `p`.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the
    // address, and changes no memory.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A block's low 52 bits: size in the low 28 (up to 256 MiB), stack id
/// above (up to 2^24 - 2); None when it does not fit.
fn pack(b: Block) -> Option<u64> {
    (b.size < 1 << SIZE_BITS && b.stack < (1 << STACK_BITS) - 1)
        .then(|| u64::from(b.stack) << SIZE_BITS | b.size)
}

fn unpack(v: u64) -> Block {
    Block {
        size: v & ((1 << SIZE_BITS) - 1),
        stack: ((v & BIG) >> SIZE_BITS) as u32,
    }
}

/// A block's page and its offset in the page, placed above the packed
/// block.
#[inline(always)]
fn split(ptr: u64) -> (u64, u64) {
    (
        ptr >> PAGE_SHIFT,
        (ptr & ((1 << PAGE_SHIFT) - 1)) << OFFSET_SHIFT,
    )
}

/// The index of the block at `offset` in a page.
#[inline(always)]
fn find(blocks: &[u64], offset: u64) -> Option<usize> {
    blocks.iter().position(|&w| w & !BIG == offset)
}

impl LiveMap {
    /// The slot a page's probe starts at (the table is not empty).
    #[inline(always)]
    fn home(&self, page: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (page.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// The slot holding `page`, if one does.
    #[inline(always)]
    fn slot(&self, page: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(page);
        loop {
            match self.slots[i].page {
                p if p == page => return Some(i),
                EMPTY => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The slot for `page`, taken if it was empty.
    fn slot_or_take(&mut self, page: u64) -> usize {
        if (self.pages + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(page);
        loop {
            match self.slots[i].page {
                p if p == page => return i,
                EMPTY => break,
                _ => i = (i + 1) & mask,
            }
        }
        self.slots[i] = Slot {
            page,
            blocks: self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(FIRST_BLOCKS)),
        };
        self.pages += 1;
        i
    }

    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(1024);
        let empty = || Slot {
            page: EMPTY,
            blocks: Vec::new(),
        };
        let old = std::mem::replace(&mut self.slots, (0..n).map(|_| empty()).collect());
        let mask = n - 1;
        for s in old.into_iter().filter(|s| s.page != EMPTY) {
            let mut i = self.home(s.page);
            while self.slots[i].page != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// Empties slot `i`, moving back the slots after it whose probe
    /// passed through it, so that every lookup still finds its page.
    fn vacate(&mut self, mut i: usize) {
        let mask = self.slots.len() - 1;
        let blocks = std::mem::take(&mut self.slots[i].blocks);
        if self.spare.len() < SPARE_PAGES {
            self.spare.push(blocks);
        }
        self.pages -= 1;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let p = self.slots[j].page;
            if p == EMPTY {
                break;
            }
            // Slot j may move to i only if its probe started at or
            // before i (cyclically): i lies in home..j.
            let home = self.home(p);
            let between = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !between {
                self.slots.swap(i, j);
                i = j;
            }
        }
        self.slots[i].page = EMPTY;
    }

    /// Inserts a block; returns the one that was at that address.
    pub(crate) fn insert(&mut self, ptr: u64, b: Block) -> Option<Block> {
        let v = pack(b).unwrap_or(BIG);
        let big = if v == BIG {
            self.big.insert(ptr, b)
        } else {
            None
        };
        let (page, offset) = split(ptr);
        let i = self.slot_or_take(page);
        let blocks = &mut self.slots[i].blocks;
        let old = match find(blocks, offset) {
            Some(k) => Some(std::mem::replace(&mut blocks[k], offset | v) & BIG),
            None => {
                blocks.push(offset | v);
                self.len += 1;
                None
            }
        };
        match old {
            Some(BIG) if v != BIG => self.big.remove(&ptr),
            Some(BIG) => big,
            old => old.map(unpack),
        }
    }

    pub(crate) fn remove(&mut self, ptr: u64) -> Option<Block> {
        let (page, offset) = split(ptr);
        let i = self.slot(page)?;
        let blocks = &mut self.slots[i].blocks;
        let k = find(blocks, offset)?;
        let v = blocks.swap_remove(k) & BIG;
        let emptied = blocks.is_empty();
        self.len -= 1;
        if emptied {
            self.vacate(i);
        }
        match v {
            BIG => self.big.remove(&ptr),
            v => Some(unpack(v)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Asks the cache for the slot of `ptr`'s page.
    #[inline(always)]
    fn prefetch_slot(&self, ptr: u64) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[self.home(ptr >> PAGE_SHIFT)]);
        }
    }

    /// Asks the cache for the blocks of `ptr`'s page (its slot should be
    /// there already), up to the line a new block would go in.
    #[inline(always)]
    fn prefetch_blocks(&self, ptr: u64) {
        if let Some(i) = self.slot(ptr >> PAGE_SHIFT) {
            let b = &self.slots[i].blocks;
            let end = b.as_ptr_range().end;
            let mut p = b.as_ptr();
            while p <= end {
                prefetch(p);
                p = p.wrapping_add(8);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, Block)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.page != EMPTY)
            .flat_map(move |s| {
                s.blocks.iter().map(move |&w| {
                    let ptr = s.page << PAGE_SHIFT | w >> OFFSET_SHIFT;
                    match w & BIG {
                        BIG => (ptr, self.big[&ptr]),
                        v => (ptr, unpack(v)),
                    }
                })
            })
    }
}

/// Per-stack state for the peak: its live bytes when the heap last
/// reached a new peak, and which peak that was.
#[derive(Clone, Copy, Default)]
struct PeakMark {
    bytes: u64,
    epoch: u64,
}

/// Everything kept per call stack, together so that one record touches
/// one place.
#[derive(Clone, Copy, Default)]
struct PerStack {
    cost: StackCost,
    mark: PeakMark,
    /// The process image the stack was seen in (for symbolisation).
    image: u32,
}

/// Accumulates a [`Summary`] and the cost of every call stack from
/// records in time order. Memory is bounded by the live blocks and the
/// distinct stacks, not by the trace's length.
#[derive(Default)]
pub struct Summarizer {
    /// The totals so far.
    pub(crate) summary: Summary,
    calls: [u64; OPERATIONS.len()],
    live: LiveMap,
    live_bytes: u64,
    stacks: Vec<PerStack>,
    /// Times the heap reached a new peak.
    epoch: u64,
    /// The (size, stack) of the last allocation of any thread, until the
    /// next free of a known block: heaptrack's key for temporary
    /// allocations (see [`Summarizer::free`]).
    last_alloc: Option<(u64, u32)>,
    /// Only blocks inside this address range count (`allocations --region`).
    range: Option<(u64, u64)>,
    /// The process image of the records so far (images follow one
    /// another in a file: each one after an exec).
    image: u32,
    /// Each free's block as `vmmap run` found it: then `live` stays
    /// empty and `live_count` counts the blocks.
    resolved: Option<Resolved>,
    live_count: u64,
    /// The last exec: its image, its program and the records counted up
    /// to it; no record followed it if the count is the same at the end
    /// (see [`Summary::untraced_exec`]).
    last_exec: Option<(u32, String, u64)>,
}

/// Whether a block a [`Resolved`] chunk names can be live: its stack has
/// at least that many live blocks and bytes. A damaged chunk is marked
/// broken here, before any count could go below zero.
#[inline(always)]
fn holds(stacks: &[PerStack], b: &Block, r: &mut Resolved) -> bool {
    let ok = stacks
        .get(b.stack as usize)
        .is_some_and(|s| s.cost.live_blocks > 0 && s.cost.live_bytes >= b.size);
    r.broken |= !ok;
    ok
}

impl Summarizer {
    /// Counts only blocks whose address is in `start..end`.
    pub(crate) fn with_range(start: u64, end: u64) -> Summarizer {
        Summarizer {
            range: Some((start, end)),
            ..Summarizer::default()
        }
    }

    /// Takes each free's block from `r` ([`crate::frees`]) instead of a
    /// map of live blocks: [`Summarizer::live_blocks`] is then empty, and
    /// [`Summarizer::resolution_agrees`] must be checked at the end.
    pub(crate) fn with_resolved(r: Resolved) -> Summarizer {
        Summarizer {
            resolved: Some(r),
            ..Summarizer::default()
        }
    }

    /// [`Summarizer::with_resolved`] from a [`crate::frees`] chunk's
    /// payload; None if it cannot be read.
    pub fn with_frees_chunk(payload: Vec<u8>) -> Option<Summarizer> {
        Resolved::parse(payload).map(Summarizer::with_resolved)
    }

    /// Whether the resolved frees, if used, answered for exactly these
    /// records (if not, the figures are wrong: count again without them).
    pub fn resolution_agrees(&self, info: &TraceInfo) -> bool {
        self.resolved.as_ref().is_none_or(|r| r.agrees(info))
    }

    /// Adds records in order, asking the cache for the live blocks of the
    /// records [`AHEAD`] places on before counting each one: the lookups
    /// of a heap of a million blocks miss the cache, and overlapping those
    /// misses instead of waiting for each in turn is most of the count's
    /// speed.
    pub fn add_batch(&mut self, batch: &[Record]) {
        if self.resolved.is_some() || self.live.len() < PREFETCH_FROM {
            // A map this small stays in the cache: asking for its pages
            // costs more than it saves; the records still come from the
            // decoding thread's core.
            for (i, r) in batch.iter().enumerate() {
                prefetch(batch.as_ptr().wrapping_add(i + 4 * AHEAD));
                self.add(r);
            }
            return;
        }
        for (i, r) in batch.iter().enumerate() {
            // The records themselves come from the decoding thread's core.
            prefetch(batch.as_ptr().wrapping_add(i + 4 * AHEAD));
            if let Some(next) = batch.get(i + AHEAD) {
                self.prefetch(next, true);
            }
            if let Some(next) = batch.get(i + AHEAD / 2) {
                self.prefetch(next, false);
            }
            self.add(r);
        }
    }

    /// Asks the cache for what adding `r` will read: with `slots`, its
    /// blocks' page slots, else the blocks of their pages.
    #[inline(always)]
    fn prefetch(&self, r: &Record, slots: bool) {
        if self.resolved.is_some() {
            return;
        }
        let one = |ptr| {
            if slots {
                self.live.prefetch_slot(ptr)
            } else {
                self.live.prefetch_blocks(ptr)
            }
        };
        match r.event {
            Event::Alloc { ptr, .. } | Event::Free { ptr } => one(ptr),
            Event::Realloc { old, new, .. } => {
                one(old);
                one(new);
            }
            _ => {}
        }
    }

    /// Adds one record.
    pub fn add(&mut self, r: &Record) {
        if r.image != self.image {
            self.release_image();
            self.image = r.image;
        }
        self.calls[r.event.operation()] += 1;
        let s = &mut self.summary;
        if s.span.0 == 0 || r.tick < s.span.0 {
            s.span.0 = r.tick;
        }
        s.span.1 = s.span.1.max(r.tick);
        match &r.event {
            Event::Alloc {
                ptr, size, stack, ..
            } => self.alloc(r, *ptr, *size, *stack),
            Event::Realloc {
                old,
                new,
                size,
                stack,
            } => {
                if *old != 0 {
                    self.free(*old);
                }
                if *new != 0 {
                    self.alloc(r, *new, *size, *stack);
                }
            }
            Event::Free { ptr } => self.free(*ptr),
            Event::Mmap { len, .. } => self.summary.mapped_bytes += len,
            Event::ThreadStart { .. } => self.summary.threads += 1,
            Event::Exec { path, .. } => {
                let seen = self.calls.iter().sum();
                self.last_exec = Some((r.image, path.clone(), seen));
            }
            _ => {}
        }
    }

    /// The image was replaced by an exec: its live blocks went with it.
    fn release_image(&mut self) {
        if self.resolved.is_some() {
            // Every live block is the old image's: release them by stack.
            for i in 0..self.stacks.len() {
                let (blocks, bytes) = {
                    let c = &self.stacks[i].cost;
                    (c.live_blocks, c.live_bytes)
                };
                if blocks == 0 && bytes == 0 {
                    continue;
                }
                let c = &mut self.touch(i as u32).cost;
                c.live_blocks = 0;
                c.live_bytes = 0;
                self.summary.exec_released_blocks += blocks;
                self.summary.exec_released_bytes += bytes;
            }
            self.live_count = 0;
            self.live_bytes = 0;
            self.last_alloc = None;
            return;
        }
        let live = std::mem::take(&mut self.live);
        for (_, b) in live.iter() {
            let c = &mut self.touch(b.stack).cost;
            c.live_blocks -= 1;
            c.live_bytes -= b.size;
            self.summary.exec_released_blocks += 1;
            self.summary.exec_released_bytes += b.size;
        }
        self.live_bytes = 0;
        self.last_alloc = None;
    }

    fn in_range(&self, ptr: u64) -> bool {
        self.range.is_none_or(|(a, b)| ptr >= a && ptr < b)
    }

    /// Brings a stack's peak mark up to date before its live bytes change.
    fn touch(&mut self, stack: u32) -> &mut PerStack {
        let i = stack as usize;
        if i >= self.stacks.len() {
            self.stacks.resize(i + 1, PerStack::default());
        }
        let s = &mut self.stacks[i];
        if s.mark.epoch != self.epoch {
            // The heap peaked since this stack last changed, so its live
            // bytes then were what they are now.
            s.mark = PeakMark {
                bytes: s.cost.live_bytes,
                epoch: self.epoch,
            };
        }
        s
    }

    fn alloc(&mut self, r: &Record, ptr: u64, size: u64, stack: u32) {
        if !self.in_range(ptr) {
            return;
        }
        let s = &mut self.summary;
        s.allocations += 1;
        s.bytes_allocated += size;
        // A block at a live address means its free was not seen (glibc
        // freed it internally): drop the stale one.
        let old = match &mut self.resolved {
            Some(r) => {
                let old = r.alloc().filter(|b| holds(&self.stacks, b, r));
                self.live_count += u64::from(old.is_none());
                old
            }
            None => self.live.insert(ptr, Block { size, stack }),
        };
        if let Some(old) = old {
            self.live_bytes -= old.size;
            let c = &mut self.touch(old.stack).cost;
            c.live_blocks -= 1;
            c.live_bytes -= old.size;
        }
        self.last_alloc = Some((size, stack));
        self.live_bytes += size;
        let s = self.touch(stack);
        s.image = r.image;
        let c = &mut s.cost;
        c.allocations += 1;
        c.bytes += size;
        c.live_blocks += 1;
        c.live_bytes += size;
        if self.live_bytes > self.summary.peak_bytes {
            self.summary.peak_bytes = self.live_bytes;
            self.summary.peak_tick = r.tick;
            self.summary.peak_image = r.image;
            self.epoch += 1;
        }
    }

    /// A free; temporary as heaptrack counts it (its analyser,
    /// `AccumulatedTraceData::read`): the freed block has the same size and
    /// call stack as the last allocation of the process, any thread, with
    /// no free of a known block in between. A free of an unknown block
    /// changes nothing (heaptrack drops those before the analysis).
    fn free(&mut self, ptr: u64) {
        if !self.in_range(ptr) {
            return;
        }
        let b = match &mut self.resolved {
            Some(r) => {
                let b = r.free().filter(|b| holds(&self.stacks, b, r));
                self.live_count -= u64::from(b.is_some());
                b
            }
            None => self.live.remove(ptr),
        };
        match b {
            Some(b) => {
                self.live_bytes -= b.size;
                self.summary.frees += 1;
                let temporary = self.last_alloc.take() == Some((b.size, b.stack));
                let c = &mut self.touch(b.stack).cost;
                c.live_blocks -= 1;
                c.live_bytes -= b.size;
                c.temporary += u64::from(temporary);
            }
            None => self.summary.unknown_frees += 1,
        }
    }

    /// The blocks live now: (address, bytes requested, stack id).
    pub fn live_blocks(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.live.iter().map(|(p, b)| (p, b.size, b.stack))
    }

    /// Bytes live now.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Closes the totals with the decoder's stack table.
    pub fn finish(self, info: &TraceInfo) -> Summary {
        self.finish_costs(info).0
    }

    /// [`Summarizer::finish`], with the cost of every stack and the
    /// process image it belongs to (both indexed by stack id).
    pub fn finish_costs(mut self, info: &TraceInfo) -> (Summary, Vec<StackCost>, Vec<u32>) {
        let mut costs = Vec::with_capacity(self.stacks.len());
        let mut images = Vec::with_capacity(self.stacks.len());
        for s in &self.stacks {
            let mut c = s.cost;
            c.peak_bytes = if s.mark.epoch == self.epoch {
                s.mark.bytes
            } else {
                c.live_bytes
            };
            costs.push(c);
            images.push(s.image);
        }
        let s = &mut self.summary;
        s.calls = OPERATIONS
            .iter()
            .zip(self.calls)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (*k, n))
            .collect();
        s.live_blocks = match self.resolved {
            Some(_) => self.live_count,
            None => self.live.len() as u64,
        };
        s.live_bytes = self.live_bytes;
        let seen: u64 = self.calls.iter().sum();
        s.untraced_exec = self
            .last_exec
            .take()
            .filter(|e| e.2 == seen)
            .map(|(image, path, _)| (image, path));
        s.stacks = info.stacks.len().saturating_sub(1) as u64;
        s.truncated_stacks = info.stacks.iter().filter(|s| s.truncated).count() as u64;
        (self.summary, costs, images)
    }
}

/// Feeds messages one at a time to a decoder and a [`Summarizer`].
pub(crate) struct SummaryBuilder {
    d: Decoder,
    acc: Summarizer,
    problem: Option<TraceError>,
}

impl Default for SummaryBuilder {
    fn default() -> Self {
        SummaryBuilder {
            d: Decoder::new(),
            acc: Summarizer::default(),
            problem: None,
        }
    }
}

impl SummaryBuilder {
    /// Adds one message; after a damaged one, the rest are ignored.
    pub(crate) fn feed(&mut self, msg: &[u8]) {
        if self.problem.is_some() {
            return;
        }
        let acc = &mut self.acc;
        if let Err(e) = self.d.feed(msg, &mut |r, _| acc.add(r)) {
            self.problem = Some(e);
        }
    }

    /// The totals, the trace's facts and the first damage met.
    pub(crate) fn finish(mut self) -> (Summary, TraceInfo, Option<TraceError>) {
        let acc = &mut self.acc;
        if let Err(e) = self.d.finish(&mut |r, _| acc.add(r)) {
            self.problem.get_or_insert(e);
        }
        let info = self.d.info;
        (self.acc.finish(&info), info, self.problem)
    }
}

/// Summarises trace messages (the payloads of a file's trace chunks).
/// On a damaged message the totals cover everything before it, and the
/// error says where it stopped.
pub fn summarize<'a>(
    messages: impl IntoIterator<Item = &'a [u8]>,
) -> (Summary, TraceInfo, Option<TraceError>) {
    let mut b = SummaryBuilder::default();
    for m in messages {
        b.feed(m);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::{malloc, record};

    fn rec(tick: u64, stream: u32, event: Event) -> Record {
        record(tick, 0, stream, event)
    }

    fn temporary(events: Vec<(u32, Event)>) -> u64 {
        let mut s = Summarizer::default();
        for (i, (stream, e)) in events.into_iter().enumerate() {
            s.add(&rec(i as u64 + 1, stream, e));
        }
        let (_, costs, _) = s.finish_costs(&TraceInfo::default());
        costs.iter().map(|c| c.temporary).sum()
    }

    /// heaptrack's rule: the freed block's size and stack match the last
    /// allocation of any thread, no known free in between.
    #[test]
    fn temporary_is_heaptracks_rule() {
        // Same size and stack, another block: temporary for heaptrack.
        let v = vec![
            (0, malloc(0x10, 8, 1)),
            (0, malloc(0x20, 8, 1)),
            (0, Event::Free { ptr: 0x10 }),
        ];
        assert_eq!(temporary(v), 1);
        // Another thread's allocation in between counts.
        let v = vec![
            (0, malloc(0x10, 8, 1)),
            (1, malloc(0x20, 16, 2)),
            (0, Event::Free { ptr: 0x10 }),
        ];
        assert_eq!(temporary(v), 0);
        // A known free in between ends it; an unknown one does not.
        let v = vec![
            (0, malloc(0x10, 8, 1)),
            (0, malloc(0x20, 8, 3)),
            (0, Event::Free { ptr: 0x999 }),
            (0, Event::Free { ptr: 0x20 }),
            (0, Event::Free { ptr: 0x10 }),
        ];
        assert_eq!(temporary(v), 1);
    }

    /// Blocks of one page and of neighbouring pages are told apart by
    /// their whole address; a page emptied by frees is taken by new blocks.
    #[test]
    fn live_blocks_share_pages_and_pages_are_reused() {
        let b = |size| Block { size, stack: 1 };
        let mut m = LiveMap::default();
        let ptrs: Vec<u64> = (0..600u64).map(|i| 0x7f00_0000_0000 + i * 24).collect();
        for &p in &ptrs {
            assert!(m.insert(p, b(p & 0xffff)).is_none());
        }
        assert_eq!(m.len(), 600);
        // Free every other block, then the rest backwards.
        for &p in ptrs.iter().step_by(2) {
            assert_eq!(m.remove(p).unwrap().size, p & 0xffff);
            assert!(m.remove(p).is_none());
        }
        for &p in ptrs.iter().skip(1).step_by(2).rev() {
            assert_eq!(m.remove(p).unwrap().size, p & 0xffff);
        }
        assert_eq!((m.len(), m.pages, m.iter().count()), (0, 0, 0));
        assert!(m.insert(0x10, b(7)).is_none());
        assert!(m.insert(0x1010, b(8)).is_none());
        assert_eq!(m.remove(0x1010).unwrap().size, 8);
        assert!(m.remove(0x2010).is_none());
        assert_eq!(
            m.iter().map(|(p, b)| (p, b.size)).collect::<Vec<_>>(),
            vec![(0x10, 7)]
        );
    }

    /// Pages come and go in any order over a table that grows: every
    /// lookup still finds its page after others were vacated around it
    /// (checked against a plain map).
    #[test]
    fn live_blocks_match_a_plain_map_as_pages_come_and_go() {
        let mut m = LiveMap::default();
        let mut model = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 3,000 pages, a few blocks each: many collisions and vacated slots.
            let ptr = ((x % 3000) << 12) | ((x >> 32) % 4 * 16);
            if x >> 60 < 9 {
                let b = Block {
                    size: step,
                    stack: 1,
                };
                let old = m.insert(ptr, b).map(|b| b.size);
                assert_eq!(old, model.insert(ptr, step));
            } else {
                assert_eq!(m.remove(ptr).map(|b| b.size), model.remove(&ptr));
            }
            assert_eq!(m.len(), model.len());
        }
        let mut got: Vec<_> = m.iter().map(|(p, b)| (p, b.size)).collect();
        let mut want: Vec<_> = model.into_iter().collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    /// Blocks too large for a word, or of a stack id past 24 bits, are
    /// kept whole, replaced and removed like any other.
    #[test]
    fn live_blocks_of_every_size_and_stack_are_kept_whole() {
        let (huge, far) = (3 << 40, u32::MAX);
        let b = |size, stack| Block { size, stack };
        let get = |m: &LiveMap| {
            let mut v: Vec<_> = m.iter().map(|(p, b)| (p, b.size, b.stack)).collect();
            v.sort();
            v
        };
        let mut m = LiveMap::default();
        assert!(m.insert(0x1000, b(24, 1)).is_none());
        assert!(m.insert(0x2000, b(huge, 2)).is_none());
        assert!(m.insert(0x3000, b(40, far)).is_none());
        // Big over small, small over big, big over big.
        let old = m.insert(0x1000, b(huge + 1, far - 1)).unwrap();
        assert_eq!((old.size, old.stack), (24, 1));
        let old = m.insert(0x2000, b(16, 4)).unwrap();
        assert_eq!((old.size, old.stack), (huge, 2));
        let old = m.insert(0x3000, b(huge + 2, far)).unwrap();
        assert_eq!((old.size, old.stack), (40, far));
        assert_eq!(m.len(), 3);
        assert_eq!(
            get(&m),
            vec![
                (0x1000, huge + 1, far - 1),
                (0x2000, 16, 4),
                (0x3000, huge + 2, far)
            ]
        );
        let old = m.remove(0x3000).unwrap();
        assert_eq!((old.size, old.stack), (huge + 2, far));
        assert!(m.remove(0x3000).is_none());
        assert_eq!(m.big.len(), 1);
        assert_eq!(get(&m), vec![(0x1000, huge + 1, far - 1), (0x2000, 16, 4)]);
    }
}
