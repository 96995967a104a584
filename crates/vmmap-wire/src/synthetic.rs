//! Trace messages for the tests of every reader of traces (this crate,
//! the CLI, the TUI), their records written by the agent's own encoder
//! ([`crate::encode`]) into vectors: a change to the format is made in one
//! place, and what the tests read is what the agent writes. The messages
//! around the records follow the crate root and `docs/trace-format.md`.

use crate::encode::{self, Deltas, HeapAddr, Part, Parts, Sink};
use crate::*;

/// One thread's records, written with the agent's encoder
/// ([`crate::encode`]) in the format the agent writes ([`TRACE_VERSION`]:
/// heads (tags and ticks), other fields and addresses apart, heap
/// addresses as references to recent ones when they can be). Starts with
/// the thread-start record at tick 0.
pub struct StreamBuilder {
    parts: Parts,
    deltas: Deltas,
    /// The record being written and how many addresses it has so far.
    kind: EventKind,
    addr_fields: usize,
    /// Heap addresses allocated (0) and freed (1) so far.
    pushed: [Vec<u64>; 2],
}

impl StreamBuilder {
    /// A stream of thread `tid` whose stack is `stack_lo..stack_hi`.
    pub fn new(tid: u64, pthread: u64, stack_lo: u64, stack_hi: u64) -> StreamBuilder {
        let mut b = StreamBuilder {
            parts: Parts::default(),
            deltas: Deltas::default(),
            kind: EventKind::ThreadStart,
            addr_fields: 0,
            pushed: [Vec::new(), Vec::new()],
        };
        let bounds = (tid, pthread, stack_lo, stack_hi);
        encode::thread_start(
            &mut b.parts,
            &mut b.deltas,
            0,
            bounds.0,
            bounds.1,
            bounds.2,
            bounds.3,
        );
        b
    }

    /// A lane's stream as the agent writes it (format 5): no records yet;
    /// [`StreamBuilder::thread`] says whose records follow.
    pub fn lane() -> StreamBuilder {
        StreamBuilder {
            parts: Parts::default(),
            deltas: Deltas::default(),
            kind: EventKind::Thread,
            addr_fields: 0,
            pushed: [Vec::new(), Vec::new()],
        }
    }

    /// The records that follow are thread `number`'s (kernel id `tid`).
    pub fn thread(&mut self, number: u32, tid: u64) {
        encode::thread(&mut self.parts, number, tid);
    }

    /// A record's tag and tick; [`StreamBuilder::addr`] and
    /// [`StreamBuilder::ints`] write its fields in the kind's order (for
    /// records no helper below writes, or writes wrong on purpose).
    pub fn head(&mut self, kind: EventKind, tick: u64) {
        self.deltas.head(&mut self.parts, kind, tick);
        (self.kind, self.addr_fields) = (kind, 0);
    }

    /// An address field (it goes to the addresses part; a heap address
    /// as a reference when the block went by recently).
    pub fn addr(&mut self, a: u64) {
        use EventKind::*;
        let class = match (self.kind, self.addr_fields) {
            (Malloc | Calloc | Memalign, 0) | (Realloc, 1) => Some(0),
            (Free, 0) | (Realloc, 0) => Some(1),
            _ => None,
        };
        self.addr_fields += 1;
        match class {
            Some(class) => {
                let h = self.heap(class, a);
                self.deltas.heap_addr(&mut self.parts, h);
            }
            None => {
                self.deltas.addr(&mut self.parts, a);
            }
        }
    }

    /// `a` with its age in the other class (the newest appearance in the
    /// last [`AGE_RING`]), and into its own class (`class`: 0 allocated,
    /// 1 freed). The agent keeps an index for this; a search will do here.
    fn heap(&mut self, class: usize, a: u64) -> HeapAddr {
        if a == 0 {
            return HeapAddr { a, age: 0 };
        }
        let age = self.pushed[1 - class]
            .iter()
            .rev()
            .take(AGE_RING)
            .position(|&x| x == a)
            .map_or(0, |i| i as u32 + 1);
        self.pushed[class].push(a);
        HeapAddr { a, age }
    }

    /// Plain integer fields.
    pub fn ints(&mut self, values: &[u64]) {
        for &v in values {
            self.parts.var(Part::Fields, v);
        }
    }

    /// Defines stack `id` (return addresses, innermost first).
    pub fn stack(&mut self, id: u64, frames: &[u64]) {
        let id = stack_id(id);
        encode::stack(&mut self.parts, id, false, frames);
    }

    /// `malloc(size)` returned `ptr`.
    pub fn malloc(&mut self, tick: u64, ptr: u64, size: u64, stack: u64) {
        let (h, stack) = (self.heap(0, ptr), stack_id(stack));
        let kind = EventKind::Malloc;
        encode::alloc(
            &mut self.parts,
            &mut self.deltas,
            kind,
            tick,
            h,
            size,
            stack,
            0,
        );
    }

    /// `free(ptr)`.
    pub fn free(&mut self, tick: u64, ptr: u64) {
        let h = self.heap(1, ptr);
        encode::free(&mut self.parts, &mut self.deltas, tick, h);
    }

    /// An anonymous private read-write `mmap` of `len` bytes at `addr`.
    pub fn mmap_anon(&mut self, tick: u64, addr: u64, len: u64, stack: u64) {
        let stack = stack_id(stack);
        // len, prot, flags (MAP_PRIVATE | MAP_ANONYMOUS), fd -1, offset
        let rest = [len, 3, 0x22, zigzag(-1), 0];
        let kind = EventKind::Mmap;
        encode::mapping(
            &mut self.parts,
            &mut self.deltas,
            kind,
            tick,
            addr,
            &rest,
            stack,
        );
    }

    fn current(&self) -> [&Vec<u8>; 3] {
        let [heads, rest, addrs] = &self.parts.0;
        [heads, rest, addrs]
    }
}

/// A stack id as the agent has them (u32).
fn stack_id(id: u64) -> u32 {
    u32::try_from(id).expect("a test's stack id fits the agent's u32")
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

/// An EVENTS message holding `stream` (as stream 0) whole, stamped `tick`.
pub fn events(tick: u64, stream: &StreamBuilder) -> Vec<u8> {
    events_of(tick, &[(0, stream)])
}

/// An EVENTS message stamped `tick` holding each stream whole, under its
/// id: a directory of their segments, then their heads, fields and
/// addresses.
pub fn events_of(tick: u64, streams: &[(u32, &StreamBuilder)]) -> Vec<u8> {
    let mut body = (streams.len() as u32).to_le_bytes().to_vec();
    for (id, s) in streams {
        body.extend_from_slice(&id.to_le_bytes());
        for part in s.current() {
            body.extend_from_slice(&(part.len() as u32).to_le_bytes());
        }
    }
    for i in 0..3 {
        for (_, s) in streams {
            body.extend_from_slice(s.current()[i]);
        }
    }
    compressed_events(tick, &body)
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
