//! Totals of a traced run: operation counts, bytes, the heap's peak and
//! what was still allocated at the end. One pass, memory bounded by the
//! number of live blocks.

use std::collections::{BTreeMap, HashMap};

use super::decode::{Decoder, Event, Record, TraceError, TraceInfo};

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
}

/// Accumulates a [`Summary`] from records in time order.
#[derive(Default)]
pub struct Summarizer {
    /// The totals so far.
    pub summary: Summary,
    live: HashMap<u64, u64>,
    live_bytes: u64,
}

impl Summarizer {
    /// Adds one record.
    pub fn add(&mut self, r: &Record) {
        let s = &mut self.summary;
        *s.calls.entry(r.event.name()).or_default() += 1;
        if s.span.0 == 0 || r.tick < s.span.0 {
            s.span.0 = r.tick;
        }
        s.span.1 = s.span.1.max(r.tick);
        match &r.event {
            Event::Alloc { ptr, size, .. } => self.alloc(*ptr, *size, r.tick),
            Event::Realloc { old, new, size, .. } => {
                if *old != 0 {
                    self.free(*old);
                }
                if *new != 0 {
                    self.alloc(*new, *size, r.tick);
                }
            }
            Event::Free { ptr } => self.free(*ptr),
            Event::Mmap { len, .. } => self.summary.mapped_bytes += len,
            Event::ThreadStart { .. } => self.summary.threads += 1,
            _ => {}
        }
    }

    fn alloc(&mut self, ptr: u64, size: u64, tick: u64) {
        let s = &mut self.summary;
        s.allocations += 1;
        s.bytes_allocated += size;
        // A block at a live address means its free was not seen (glibc
        // freed it internally): drop the stale one.
        if let Some(old) = self.live.insert(ptr, size) {
            self.live_bytes -= old;
        }
        self.live_bytes += size;
        if self.live_bytes > s.peak_bytes {
            s.peak_bytes = self.live_bytes;
            s.peak_tick = tick;
        }
    }

    fn free(&mut self, ptr: u64) {
        match self.live.remove(&ptr) {
            Some(size) => {
                self.live_bytes -= size;
                self.summary.frees += 1;
            }
            None => self.summary.unknown_frees += 1,
        }
    }

    /// Closes the totals with the decoder's stack table.
    pub fn finish(mut self, info: &TraceInfo) -> Summary {
        self.summary.live_blocks = self.live.len() as u64;
        self.summary.live_bytes = self.live_bytes;
        self.summary.stacks = info.stacks.len().saturating_sub(1) as u64;
        self.summary.truncated_stacks = info.stacks.iter().filter(|s| s.truncated).count() as u64;
        self.summary
    }
}

/// Feeds messages one at a time to a decoder and a [`Summarizer`].
pub struct SummaryBuilder {
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
    pub fn feed(&mut self, msg: &[u8]) {
        if self.problem.is_some() {
            return;
        }
        let acc = &mut self.acc;
        if let Err(e) = self.d.feed(msg, &mut |r, _| acc.add(r)) {
            self.problem = Some(e);
        }
    }

    /// The totals, the trace's facts and the first damage met.
    pub fn finish(mut self) -> (Summary, TraceInfo, Option<TraceError>) {
        let acc = &mut self.acc;
        self.d.finish(&mut |r, _| acc.add(r));
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
