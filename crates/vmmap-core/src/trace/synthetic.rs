//! Trace messages written by hand in the agent's wire format, for the
//! tests of every reader of traces (this crate, the CLI, the TUI): one
//! encoder of records outside the agent, so a change to the format is
//! made in one place. Everything a test builds here follows the layouts in
//! [`super::wire`] and `docs/trace-format.md`.

use super::wire::*;

/// One thread's records, with the running tick and address the format
/// codes differences from, the addresses apart ([`TRACE_VERSION`] 2).
/// Starts with the thread-start record at tick 0.
pub struct StreamBuilder {
    bytes: Vec<u8>,
    addrs: Vec<u8>,
    tick: u64,
    addr: u64,
}

impl StreamBuilder {
    /// A stream of thread `tid` whose stack is `stack_lo..stack_hi`.
    pub fn new(tid: u64, pthread: u64, stack_lo: u64, stack_hi: u64) -> StreamBuilder {
        let mut bytes = vec![EV_THREAD_START];
        bytes.extend_from_slice(&0u64.to_le_bytes());
        for v in [tid, pthread, stack_lo, stack_hi] {
            push_uvarint(&mut bytes, v);
        }
        StreamBuilder {
            bytes,
            addrs: Vec::new(),
            tick: 0,
            addr: 0,
        }
    }

    /// A record's tag and tick.
    pub fn head(&mut self, tag: u8, tick: u64) {
        self.bytes.push(tag);
        push_uvarint(&mut self.bytes, zigzag(tick as i64 - self.tick as i64));
        self.tick = tick;
    }

    /// An address field (it goes to the addresses part).
    pub fn addr(&mut self, a: u64) {
        push_uvarint(&mut self.addrs, zigzag(a as i64 - self.addr as i64));
        self.addr = a;
    }

    /// Plain integer fields.
    pub fn ints(&mut self, values: &[u64]) {
        for &v in values {
            push_uvarint(&mut self.bytes, v);
        }
    }

    /// Defines stack `id` (return addresses, innermost first).
    pub fn stack(&mut self, id: u64, frames: &[u64]) {
        self.bytes.push(EV_STACK);
        push_uvarint(&mut self.bytes, id);
        self.bytes.push(0);
        push_uvarint(&mut self.bytes, frames.len() as u64);
        let mut prev = 0u64;
        for &f in frames {
            push_uvarint(&mut self.bytes, zigzag(f as i64 - prev as i64));
            prev = f;
        }
    }

    /// `malloc(size)` returned `ptr`.
    pub fn malloc(&mut self, tick: u64, ptr: u64, size: u64, stack: u64) {
        self.head(EV_MALLOC, tick);
        self.addr(ptr);
        self.ints(&[size, stack]);
    }

    /// `free(ptr)`.
    pub fn free(&mut self, tick: u64, ptr: u64) {
        self.head(EV_FREE, tick);
        self.addr(ptr);
    }

    /// An anonymous private read-write `mmap` of `len` bytes at `addr`.
    pub fn mmap_anon(&mut self, tick: u64, addr: u64, len: u64, stack: u64) {
        self.head(EV_MMAP, tick);
        self.addr(addr);
        // prot, flags (MAP_PRIVATE | MAP_ANONYMOUS), fd -1, offset, stack
        self.ints(&[len, 3, 0x22, zigzag(-1), 0, stack]);
    }

    /// The segment of the records so far: the records' length, the
    /// records, their addresses.
    pub fn segment(&self) -> Vec<u8> {
        let mut seg = (self.bytes.len() as u32).to_le_bytes().to_vec();
        seg.extend_from_slice(&self.bytes);
        seg.extend_from_slice(&self.addrs);
        seg
    }
}

/// A HELLO message for process `pid`: tick 0 is 1 ms on the monotonic
/// clock and 2 ms after the Unix epoch, and with [`end`] a tick is a
/// microsecond.
pub fn hello(pid: u64, exe: &str, cmdline: &[u8]) -> Vec<u8> {
    let mut m = vec![MSG_HELLO];
    // version, pid, ppid, page size, flags, clock anchor (tick, ns, unix ns)
    for v in [
        u64::from(TRACE_VERSION),
        pid,
        1,
        4096,
        1,
        0,
        1_000_000,
        2_000_000,
    ] {
        push_uvarint(&mut m, v);
    }
    push_bytes(&mut m, exe.as_bytes());
    push_bytes(&mut m, cmdline);
    m
}

/// A MODULES message at tick 0 with one module loaded at `base`: its path,
/// build id and one segment (offset 0, `len` bytes, flags r-x).
pub fn one_module(base: u64, path: &str, build_id: &[u8], len: u64) -> Vec<u8> {
    let mut m = vec![MSG_MODULES];
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
    let body = stream.segment();
    let mut seg = 0u32.to_le_bytes().to_vec();
    seg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    seg.extend_from_slice(&body);
    let mut m = vec![MSG_EVENTS];
    push_uvarint(&mut m, tick);
    push_uvarint(&mut m, seg.len() as u64);
    m.extend_from_slice(&zstd::bulk::compress(&seg, 1).unwrap_or_default());
    m
}

/// An END message: tick 1000 is 2 ms monotonic and 3 ms Unix, so that
/// with [`hello`]'s anchor a tick is a microsecond.
pub fn end() -> Vec<u8> {
    let mut m = vec![MSG_END];
    for v in [1000u64, 2_000_000, 3_000_000, 0, 0, 0] {
        push_uvarint(&mut m, v);
    }
    m
}
