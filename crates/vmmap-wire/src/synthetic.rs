//! Trace messages written by hand in the agent's wire format, for the
//! tests of every reader of traces (this crate, the CLI, the TUI): one
//! encoder of records outside the agent, so a change to the format is
//! made in one place. Everything a test builds here follows the layouts in
//! the crate root and `docs/trace-format.md`.

use crate::*;

/// One thread's records, in the current format ([`TRACE_VERSION`] 4 and
/// 3: heads (tags and ticks), other fields and addresses apart, heap
/// addresses as references to recent ones when they can be) and in
/// version 2 (records,
/// then their addresses), with the running tick and address the formats
/// code differences from. Starts with the thread-start record at tick 0.
pub struct StreamBuilder {
    heads: Vec<u8>,
    rest: Vec<u8>,
    addrs: Vec<u8>,
    /// Version 2: the records, and their addresses.
    v2: Vec<u8>,
    v2_addrs: Vec<u8>,
    tick: u64,
    addr: u64,
    v2_addr: u64,
    /// The record being written and how many addresses it has so far.
    tag: EventKind,
    addr_fields: usize,
    /// Heap addresses allocated (0) and freed (1) so far.
    pushed: [Vec<u64>; 2],
}

impl StreamBuilder {
    /// A stream of thread `tid` whose stack is `stack_lo..stack_hi`.
    pub fn new(tid: u64, pthread: u64, stack_lo: u64, stack_hi: u64) -> StreamBuilder {
        let mut b = StreamBuilder {
            heads: [&[EventKind::ThreadStart as u8][..], &0u64.to_le_bytes()].concat(),
            rest: Vec::new(),
            addrs: Vec::new(),
            v2: vec![EventKind::ThreadStart as u8],
            v2_addrs: Vec::new(),
            tick: 0,
            addr: 0,
            v2_addr: 0,
            tag: EventKind::ThreadStart,
            addr_fields: 0,
            pushed: [Vec::new(), Vec::new()],
        };
        b.v2.extend_from_slice(&0u64.to_le_bytes());
        b.ints(&[tid, pthread, stack_lo, stack_hi]);
        b
    }

    /// A record's tag and tick.
    pub fn head(&mut self, tag: EventKind, tick: u64) {
        let d = zigzag(tick as i64 - self.tick as i64);
        self.heads.push(tag as u8);
        push_uvarint(&mut self.heads, d);
        self.v2.push(tag as u8);
        push_uvarint(&mut self.v2, d);
        self.tick = tick;
        (self.tag, self.addr_fields) = (tag, 0);
    }

    /// An address field (it goes to the addresses part; a heap address
    /// of version 3 as a reference when the block went by recently).
    pub fn addr(&mut self, a: u64) {
        let class = match (self.tag, self.addr_fields) {
            (EventKind::Malloc | EventKind::Calloc | EventKind::Memalign, 0)
            | (EventKind::Realloc, 1) => Some(0),
            (EventKind::Free, 0) | (EventKind::Realloc, 0) => Some(1),
            _ => None,
        };
        self.addr_fields += 1;
        push_uvarint(&mut self.v2_addrs, zigzag(a as i64 - self.v2_addr as i64));
        self.v2_addr = a;
        let Some(class) = class else {
            self.plain_addr(a);
            return;
        };
        if a == 0 {
            push_uvarint(&mut self.addrs, HEAP_REF);
            return;
        }
        let age = self.pushed[1 - class]
            .iter()
            .rev()
            .take(AGE_RING)
            .position(|&x| x == a);
        match age {
            Some(i) => push_uvarint(&mut self.addrs, (i as u64 + 1) << 1 | HEAP_REF),
            None => {
                push_uvarint(&mut self.addrs, zigzag(a as i64 - self.addr as i64) << 1);
                self.addr = a;
            }
        }
        self.pushed[class].push(a);
    }

    /// An address as the difference from the last one written.
    fn plain_addr(&mut self, a: u64) {
        push_uvarint(&mut self.addrs, zigzag(a as i64 - self.addr as i64));
        self.addr = a;
    }

    /// Plain integer fields.
    pub fn ints(&mut self, values: &[u64]) {
        for &v in values {
            push_uvarint(&mut self.rest, v);
            push_uvarint(&mut self.v2, v);
        }
    }

    /// Defines stack `id` (return addresses, innermost first).
    pub fn stack(&mut self, id: u64, frames: &[u64]) {
        self.heads.push(EventKind::Stack as u8);
        self.v2.push(EventKind::Stack as u8);
        self.ints(&[id, 0, frames.len() as u64]);
        let mut prev = 0u64;
        for &f in frames {
            self.ints(&[zigzag(f as i64 - prev as i64)]);
            prev = f;
        }
    }

    /// `malloc(size)` returned `ptr`.
    pub fn malloc(&mut self, tick: u64, ptr: u64, size: u64, stack: u64) {
        self.head(EventKind::Malloc, tick);
        self.addr(ptr);
        self.ints(&[size, stack]);
    }

    /// `free(ptr)`.
    pub fn free(&mut self, tick: u64, ptr: u64) {
        self.head(EventKind::Free, tick);
        self.addr(ptr);
    }

    /// An anonymous private read-write `mmap` of `len` bytes at `addr`.
    pub fn mmap_anon(&mut self, tick: u64, addr: u64, len: u64, stack: u64) {
        self.head(EventKind::Mmap, tick);
        self.addr(addr);
        // prot, flags (MAP_PRIVATE | MAP_ANONYMOUS), fd -1, offset, stack
        self.ints(&[len, 3, 0x22, zigzag(-1), 0, stack]);
    }

    /// The body of a segment of the records so far (after its stream id
    /// and length): the lengths of the heads and field parts, then the
    /// three parts.
    pub fn segment(&self) -> Vec<u8> {
        let mut seg = Vec::new();
        for part in [&self.heads, &self.rest] {
            seg.extend_from_slice(&(part.len() as u32).to_le_bytes());
        }
        for part in [&self.heads, &self.rest, &self.addrs] {
            seg.extend_from_slice(part);
        }
        seg
    }

    /// [`StreamBuilder::segment`] in version 2: the records' length, the
    /// records, their addresses.
    pub fn segment_v2(&self) -> Vec<u8> {
        let mut seg = (self.v2.len() as u32).to_le_bytes().to_vec();
        seg.extend_from_slice(&self.v2);
        seg.extend_from_slice(&self.v2_addrs);
        seg
    }
}

/// A HELLO message for process `pid`: tick 0 is 1 ms on the monotonic
/// clock and 2 ms after the Unix epoch, and with [`end`] a tick is a
/// microsecond.
pub fn hello(pid: u64, exe: &str, cmdline: &[u8]) -> Vec<u8> {
    hello_version(u64::from(TRACE_VERSION), pid, exe, cmdline)
}

/// [`hello`] of an agent writing format `version`.
pub fn hello_version(version: u64, pid: u64, exe: &str, cmdline: &[u8]) -> Vec<u8> {
    let mut m = vec![MessageKind::Hello as u8];
    // version, pid, ppid, page size, flags, clock anchor (tick, ns, unix ns)
    for v in [version, pid, 1, 4096, 1, 0, 1_000_000, 2_000_000] {
        push_uvarint(&mut m, v);
    }
    push_bytes(&mut m, exe.as_bytes());
    push_bytes(&mut m, cmdline);
    m
}

/// A MODULES message at tick 0 with one module loaded at `base`: its path,
/// build id and one segment (offset 0, `len` bytes, flags r-x).
pub fn one_module(base: u64, path: &str, build_id: &[u8], len: u64) -> Vec<u8> {
    let mut m = vec![MessageKind::Modules as u8];
    for v in [0, 1, base] {
        push_uvarint(&mut m, v);
    }
    push_bytes(&mut m, path.as_bytes());
    push_bytes(&mut m, build_id);
    for v in [1, 0, len, 0, 5] {
        push_uvarint(&mut m, v);
    }
    m
}

/// An EVENTS message holding `stream` (as stream 0) whole, stamped `tick`:
/// in version 4, a directory of that one segment, then its heads, fields
/// and addresses.
pub fn events(tick: u64, stream: &StreamBuilder) -> Vec<u8> {
    let parts = [&stream.heads, &stream.rest, &stream.addrs];
    let mut body = [1u32, 0].map(u32::to_le_bytes).concat();
    for part in parts {
        body.extend_from_slice(&(part.len() as u32).to_le_bytes());
    }
    for part in parts {
        body.extend_from_slice(part);
    }
    compressed_events(tick, &body)
}

/// [`events`] in version 3 (one segment with its three parts).
pub fn events_v3(tick: u64, stream: &StreamBuilder) -> Vec<u8> {
    events_of(tick, stream.segment())
}

/// [`events`] in version 2.
pub fn events_v2(tick: u64, stream: &StreamBuilder) -> Vec<u8> {
    events_of(tick, stream.segment_v2())
}

fn events_of(tick: u64, body: Vec<u8>) -> Vec<u8> {
    let mut seg = 0u32.to_le_bytes().to_vec();
    seg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    seg.extend_from_slice(&body);
    compressed_events(tick, &seg)
}

fn compressed_events(tick: u64, body: &[u8]) -> Vec<u8> {
    let mut m = vec![MessageKind::Events as u8];
    push_uvarint(&mut m, tick);
    push_uvarint(&mut m, body.len() as u64);
    m.extend_from_slice(&zstd::bulk::compress(body, 1).unwrap_or_default());
    m
}

/// An END message: tick 1000 is 2 ms monotonic and 3 ms Unix, so that
/// with [`hello`]'s anchor a tick is a microsecond.
pub fn end() -> Vec<u8> {
    let mut m = vec![MessageKind::End as u8];
    for v in [1000u64, 2_000_000, 3_000_000, 0, 0, 0] {
        push_uvarint(&mut m, v);
    }
    m
}
