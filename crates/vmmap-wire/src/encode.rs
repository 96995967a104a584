//! The one encoder of event records: which part of a segment each field
//! goes to, in what order, and how ticks and addresses are coded (the
//! layouts are listed in `docs/trace-format.md`). The agent writes through
//! it into its fixed-size buffers, the tests (`synthetic`) into vectors;
//! only where the bytes land differs, which is the [`Sink`]'s business.
//! Nothing here allocates or branches on anything but the record, so the
//! agent's hooks pay nothing for sharing it: every function is inlined
//! into the hook with its constant kind.

use crate::{zigzag, EventKind, HEAP_REF};

/// The parts of a segment's records: each record's head
/// (tag and tick), its other fields, and its addresses. Kept apart, each
/// kind of field compresses far better than all of them interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Part {
    /// Tags and ticks.
    Heads = 0,
    /// Everything but tags, ticks and addresses.
    Fields = 1,
    /// Addresses: heap addresses as references to recent ones when they
    /// can be ([`HEAP_REF`]), others as differences.
    Addrs = 2,
}

/// The longest text a record carries (a thread name, a `dlopen` or `exec`
/// path); longer ones are cut, so that a record has a bound the agent
/// reserves room for.
pub const MAX_TEXT: usize = 1024;

/// Where one record's bytes go, part by part. The record functions below
/// write no more than a record's bound into each part (the agent reserves
/// that much before it starts one, and writes without further checks).
pub trait Sink {
    /// One byte.
    fn u8(&mut self, part: Part, v: u8);
    /// A LEB128 varint whose length is predictable (ticks, sizes, ids).
    fn var(&mut self, part: Part, v: u64);
    /// A varint whose length is as random as a heap address's (the agent
    /// builds those without a branch per byte).
    #[inline(always)]
    fn var_random(&mut self, part: Part, v: u64) {
        self.var(part, v);
    }
    /// Raw bytes.
    fn bytes(&mut self, part: Part, v: &[u8]);
}

/// A stream's coding state: the last tick and the last explicit address,
/// which the next ones are written as differences from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Deltas {
    /// The tick of the stream's last record.
    pub tick: u64,
    /// The last address written as a difference.
    pub addr: u64,
}

/// A heap address and its age in the other class's ring ([`HEAP_REF`]):
/// 0 when it did not go by recently (or is null). Finding the age is the
/// writer's business (the agent keeps an index of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapAddr {
    /// The address (0: null, realloc's absent old or new block).
    pub a: u64,
    /// Its age, or 0.
    pub age: u32,
}

impl Deltas {
    /// A record's head: its tag and its tick as a zigzag difference from
    /// the stream's previous record.
    #[inline(always)]
    pub fn head(&mut self, s: &mut impl Sink, kind: EventKind, tick: u64) {
        let d = tick.wrapping_sub(self.tick) as i64;
        self.tick = tick;
        s.u8(Part::Heads, kind as u8);
        s.var(Part::Heads, zigzag(d));
    }

    /// An address as the difference from the previous explicit one.
    #[inline(always)]
    pub fn addr(&mut self, s: &mut impl Sink, a: u64) {
        let d = a.wrapping_sub(self.addr) as i64;
        self.addr = a;
        s.var(Part::Addrs, zigzag(d));
    }

    /// A heap address: its age, or the address itself (as the difference
    /// from the last one written) when it went by too long ago. Which one
    /// is as random as the heap, so both are computed and one is chosen
    /// without a branch, and written as one varint.
    #[inline(always)]
    pub fn heap_addr(&mut self, s: &mut impl Sink, h: HeapAddr) {
        let (last, reference) = (self.addr, h.age != 0 || h.a == 0);
        let explicit = zigzag(h.a.wrapping_sub(last) as i64) << 1;
        let age = u64::from(h.age) << 1 | HEAP_REF;
        // Both chosen before the write: the sink's store may alias `self`
        // for all the compiler knows, and re-reading the address after it
        // made the choice a branch.
        let (v, next) = if reference {
            (age, last)
        } else {
            (explicit, h.a)
        };
        s.var_random(Part::Addrs, v);
        self.addr = next;
    }
}

/// The first record of a stream: its absolute tick (eight bytes LE, in
/// the heads), then tid, pthread handle and stack bounds.
#[inline(always)]
pub fn thread_start(
    s: &mut impl Sink,
    d: &mut Deltas,
    tick: u64,
    tid: u64,
    pthread: u64,
    stack_lo: u64,
    stack_hi: u64,
) {
    d.tick = tick;
    s.u8(Part::Heads, EventKind::ThreadStart as u8);
    s.bytes(Part::Heads, &tick.to_le_bytes());
    for v in [tid, pthread, stack_lo, stack_hi] {
        s.var(Part::Fields, v);
    }
}

/// Whose records follow in the stream (no tick): the thread's number in
/// the image and its kernel id. The agent writes it when a thread takes a
/// lane that another thread (or none) wrote last.
#[inline(always)]
pub fn thread(s: &mut impl Sink, number: u32, tid: u64) {
    s.u8(Part::Heads, EventKind::Thread as u8);
    s.var(Part::Fields, u64::from(number));
    s.var(Part::Fields, tid);
}

/// A call stack's definition (no tick): its stream-local id, flags
/// ([`crate::STACK_TRUNCATED`]) and return addresses, innermost first,
/// each as a difference from the one before.
#[inline(always)]
pub fn stack(s: &mut impl Sink, id: u32, truncated: bool, frames: &[u64]) {
    s.u8(Part::Heads, EventKind::Stack as u8);
    s.var(Part::Fields, u64::from(id));
    s.u8(
        Part::Fields,
        if truncated { crate::STACK_TRUNCATED } else { 0 },
    );
    s.var(Part::Fields, frames.len() as u64);
    let mut prev = 0u64;
    for &f in frames {
        s.var(Part::Fields, zigzag(f.wrapping_sub(prev) as i64));
        prev = f;
    }
}

/// `malloc`, `calloc` and the aligned family: the block, size and stack,
/// and for [`EventKind::Memalign`] the alignment.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn alloc<S: Sink>(
    s: &mut S,
    d: &mut Deltas,
    kind: EventKind,
    tick: u64,
    ptr: HeapAddr,
    size: u64,
    stack: u32,
    align: u64,
) {
    debug_assert_eq!(
        kind.fields(),
        crate::FieldLayout::ints(2 + u8::from(kind == EventKind::Memalign))
    );
    d.head(s, kind, tick);
    d.heap_addr(s, ptr);
    s.var(Part::Fields, size);
    s.var(Part::Fields, u64::from(stack));
    if kind == EventKind::Memalign {
        s.var(Part::Fields, align);
    }
}

/// `realloc` and `reallocarray`: the old block, the new one, size and
/// stack.
#[inline(always)]
pub fn realloc<S: Sink>(
    s: &mut S,
    d: &mut Deltas,
    tick: u64,
    old: HeapAddr,
    new: HeapAddr,
    size: u64,
    stack: u32,
) {
    d.head(s, EventKind::Realloc, tick);
    d.heap_addr(s, old);
    d.heap_addr(s, new);
    s.var(Part::Fields, size);
    s.var(Part::Fields, u64::from(stack));
}

/// `free`: the block alone (no stack).
#[inline(always)]
pub fn free<S: Sink>(s: &mut S, d: &mut Deltas, tick: u64, ptr: HeapAddr) {
    d.head(s, EventKind::Free, tick);
    d.heap_addr(s, ptr);
}

/// A mapping call: its address, the call's other integers (`rest`, as
/// the kind's layout lists them), then the stack.
#[inline(always)]
pub fn mapping(
    s: &mut impl Sink,
    d: &mut Deltas,
    kind: EventKind,
    tick: u64,
    a: u64,
    rest: &[u64],
    stack: u32,
) {
    debug_assert_eq!(
        kind.fields(),
        crate::FieldLayout::ints(rest.len() as u8 + 1)
    );
    d.head(s, kind, tick);
    d.addr(s, a);
    for &v in rest {
        s.var(Part::Fields, v);
    }
    s.var(Part::Fields, u64::from(stack));
}

/// A record of integers, a text (cut at [`MAX_TEXT`] bytes) and, for the
/// kinds that have one, the stack.
#[inline(always)]
pub fn plain(
    s: &mut impl Sink,
    d: &mut Deltas,
    kind: EventKind,
    tick: u64,
    ints: &[u64],
    text: &[u8],
    stack: Option<u32>,
) {
    debug_assert_eq!(
        kind.fields(),
        crate::FieldLayout::with_text(ints.len() as u8, u8::from(stack.is_some()))
    );
    d.head(s, kind, tick);
    for &v in ints {
        s.var(Part::Fields, v);
    }
    let text = &text[..text.len().min(MAX_TEXT)];
    s.var(Part::Fields, text.len() as u64);
    s.bytes(Part::Fields, text);
    if let Some(stack) = stack {
        s.var(Part::Fields, u64::from(stack));
    }
}

/// A stream's parts as growing vectors: the sink of the test encoder
/// (`synthetic`) and of this module's tests, never of the agent.
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub(crate) struct Parts(pub(crate) [Vec<u8>; 3]);

#[cfg(any(test, feature = "test-support"))]
impl Sink for Parts {
    fn u8(&mut self, part: Part, v: u8) {
        self.0[part as usize].push(v);
    }

    fn var(&mut self, part: Part, v: u64) {
        crate::push_uvarint(&mut self.0[part as usize], v);
    }

    fn bytes(&mut self, part: Part, v: &[u8]) {
        self.0[part as usize].extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind with a plain layout, written through the encoder, is
    /// stepped over whole by its [`crate::FieldLayout`].
    #[test]
    fn every_layout_steps_over_what_the_encoder_writes() {
        let mut kinds = 0;
        for tag in 0..=u8::MAX {
            let Ok(kind) = EventKind::try_from(tag) else {
                continue;
            };
            let Some(layout) = kind.fields() else {
                continue;
            };
            kinds += 1;
            let (mut s, mut d) = (Parts::default(), Deltas::default());
            let block = HeapAddr { a: 0x1000, age: 0 };
            let ints: Vec<u64> = (1..=u64::from(layout.lead)).map(|v| v << 9).collect();
            match kind {
                EventKind::Free => free(&mut s, &mut d, 1, block),
                EventKind::Realloc => realloc(&mut s, &mut d, 1, block, block, 300, 2),
                EventKind::Malloc | EventKind::Calloc | EventKind::Memalign => {
                    alloc(&mut s, &mut d, kind, 1, block, 300, 2, 64)
                }
                _ if !layout.text => mapping(&mut s, &mut d, kind, 1, 0x7000, &ints[1..], 2),
                _ => {
                    let stack = (layout.trail == 1).then_some(2);
                    plain(&mut s, &mut d, kind, 1, &ints, b"/lib/x.so", stack)
                }
            }
            let fields = &s.0[Part::Fields as usize];
            let mut c = crate::Cursor::new(fields);
            assert_eq!(layout.skip(&mut c), Some(()), "{kind:?}");
            assert_eq!(c.remaining(), 0, "{kind:?}: fields left over");
        }
        assert_eq!(kinds, 18);
    }

    /// The bytes of a few records, spelled out from
    /// `docs/trace-format.md`: a change to them is a change of format.
    #[test]
    fn records_are_written_as_the_format_says() {
        let (mut s, mut d) = (Parts::default(), Deltas::default());
        thread_start(&mut s, &mut d, 0x100, 7, 8, 0x10, 0x20);
        stack(&mut s, 1, true, &[0x401, 0x3ff]);
        let block = HeapAddr { a: 0x1000, age: 0 };
        alloc(&mut s, &mut d, EventKind::Memalign, 0x105, block, 64, 1, 16);
        free(&mut s, &mut d, 0x104, HeapAddr { a: 0x1000, age: 1 });
        let null = HeapAddr { a: 0, age: 0 };
        realloc(&mut s, &mut d, 0x104, null, block, 32, 1);
        mapping(&mut s, &mut d, EventKind::Munmap, 0x104, 0x800, &[4096], 0);
        plain(&mut s, &mut d, EventKind::Exec, 0x104, &[], b"/x", Some(1));
        let [heads, fields, addrs] = s.0;
        #[rustfmt::skip]
        assert_eq!(heads, [
            12, 0, 1, 0, 0, 0, 0, 0, 0, // thread start, tick 0x100 LE
            17,                         // stack
            4, 10,                      // memalign, tick +5
            5, 1,                       // free, tick -1
            3, 0,                       // realloc, tick +0
            7, 0,                       // munmap
            20, 0,                      // exec
        ]);
        #[rustfmt::skip]
        assert_eq!(fields, [
            7, 8, 0x10, 0x20,                       // tid, pthread, stack
            1, 1, 2, 0x82, 0x10, 3,                 // id, truncated, 2 frames: +0x401, -2
            64, 1, 16,                              // size, stack, alignment
            32, 1,                                  // size, stack
            0x80, 0x20, 0,                          // length 4096, no stack
            2, b'/', b'x', 1,                       // path, stack
        ]);
        #[rustfmt::skip]
        assert_eq!(addrs, [
            0x80, 0x80, 0x01, // 0x1000 explicit: zz(0x1000) << 1
            3,                // age 1
            1,                // null
            0,                // no age, not null: explicit, +0
            0xff, 0x1f,       // munmap at 0x800: zz(0x800 - 0x1000)
        ]);
    }
}
