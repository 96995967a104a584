//! Encoding events into the calling thread's buffer (the hot path).

use vmmap_wire::*;

use crate::ages::Class;
use crate::block::{self, Block, Out, StackSlot, ADDRS, HEADS, REST, STACK_SLOTS, STACK_WAYS};
use crate::unwind::{self, Stack};

/// Captures the caller's stack and returns its id in this stream, writing
/// its definition first if the stream has not seen it. Returns 0 (no
/// stack) if no buffer could be had.
#[inline(never)]
pub fn stack_id(b: &mut Block) -> u32 {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers; touches no memory.
    unsafe {
        core::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags)
        );
    }
    let st = unwind::walk(b, ip, sp, bp, false, crate::fp_mode());
    intern(b, &st)
}

/// [`stack_id`] for a hook entered through a trampoline that passed its
/// caller's return address, stack pointer and rbp: the walk starts in the
/// caller, with no frame of the agent's to go through.
#[inline(never)]
pub fn caller_stack_id(b: &mut Block, at: Caller) -> u32 {
    let st = unwind::walk(b, at.ra, at.sp, at.bp, true, crate::fp_mode());
    intern(b, &st)
}

/// A hook's caller as its trampoline saw it on entry.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Caller {
    /// The return address into the caller.
    pub ra: u64,
    /// The caller's stack pointer once the call returns.
    pub sp: u64,
    /// The caller's rbp.
    pub bp: u64,
}

#[inline(always)]
fn intern(b: &mut Block, st: &Stack) -> u32 {
    // SAFETY: the cache is this block's own mapping.
    let slots = unsafe { &mut *b.stacks };
    // Bit 0 of a stack hash is always set: the set comes from the bits
    // above it.
    let set = ((st.hash >> 1) as usize) & (STACK_SLOTS / STACK_WAYS - 1);
    let ways = &mut slots[set * STACK_WAYS..(set + 1) * STACK_WAYS];
    if let Some(w) = ways.iter().find(|w| w.hash == st.hash) {
        return w.id;
    }
    let Some(mut o) = block::open(b) else {
        return 0;
    };
    let id = b.next_stack;
    b.next_stack += 1;
    // First in, first out: the newest stack goes in front.
    ways.copy_within(0..STACK_WAYS - 1, 1);
    ways[0] = StackSlot { hash: st.hash, id };
    crate::memo::materialize(b, st.src);
    o.u8(HEADS, EventKind::Stack as u8);
    o.var(REST, u64::from(id));
    o.u8(REST, if st.truncated { STACK_TRUNCATED } else { 0 });
    o.var(REST, st.n as u64);
    let mut prev = 0u64;
    for &f in &b.frames[..st.n] {
        o.var(REST, zigzag(f.wrapping_sub(prev) as i64));
        prev = f;
    }
    o.close(b);
    id
}

/// Starts a record: makes room, writes the tag and the tick delta.
/// None if no buffer could be had.
#[inline(always)]
fn start(b: &mut Block, tag: EventKind, tick: u64) -> Option<Out> {
    let mut o = block::open(b)?;
    let d = tick.wrapping_sub(b.last_tick) as i64;
    b.last_tick = tick;
    o.u8(HEADS, tag as u8);
    o.var(HEADS, zigzag(d));
    Some(o)
}

/// Writes an address as the difference from the stream's previous one.
#[inline(always)]
fn addr(b: &mut Block, o: &mut Out, a: u64) {
    let d = a.wrapping_sub(b.last_addr) as i64;
    b.last_addr = a;
    o.var(ADDRS, zigzag(d));
}

/// A heap address and its age in the other class
/// (`vmmap_wire::HEAP_REF`), looked up before the record is
/// written so that the lookup's cache miss overlaps the stack walk.
#[derive(Clone, Copy)]
struct HeapRef {
    a: u64,
    age: u32,
}

#[inline(always)]
fn heap_ref(b: &mut Block, class: Class, a: u64) -> HeapRef {
    let age = if a == 0 {
        0
    } else {
        // SAFETY: the index is this block's own mapping.
        unsafe { (*b.ages).note(class, a) }
    };
    HeapRef { a, age }
}

/// Writes a heap address: its age, or the address itself (as the
/// difference from the last one written) when it went by too long ago.
/// Which one is as random as the heap, so both are computed and one is
/// chosen without a branch, and written as one varint.
#[inline(always)]
fn heap_addr(b: &mut Block, o: &mut Out, h: HeapRef) {
    let reference = h.age != 0 || h.a == 0;
    let explicit = zigzag(h.a.wrapping_sub(b.last_addr) as i64) << 1;
    let age = u64::from(h.age) << 1 | HEAP_REF;
    o.var_random(ADDRS, if reference { age } else { explicit });
    b.last_addr = if reference { b.last_addr } else { h.a };
}

/// `malloc`, `calloc` and the aligned family (align 0 = none), called
/// from `at` or, without it, from the hook's own caller.
#[inline(always)]
pub fn alloc(
    b: &mut Block,
    tag: EventKind,
    tick: u64,
    ptr: u64,
    size: u64,
    align: u64,
    at: Option<Caller>,
) {
    let h = heap_ref(b, Class::Allocated, ptr);
    let stack = match at {
        Some(at) => caller_stack_id(b, at),
        None => stack_id(b),
    };
    let Some(mut o) = start(b, tag, tick) else {
        return;
    };
    heap_addr(b, &mut o, h);
    o.var(REST, size);
    o.var(REST, u64::from(stack));
    if tag == EventKind::Memalign {
        o.var(REST, align);
    }
    o.close(b);
}

/// `realloc` and `reallocarray`, called from `at` or the hook's caller.
#[inline(always)]
pub fn realloc(b: &mut Block, tick: u64, old: u64, new: u64, size: u64, at: Option<Caller>) {
    let (h_old, h_new) = (
        heap_ref(b, Class::Freed, old),
        heap_ref(b, Class::Allocated, new),
    );
    let stack = match at {
        Some(at) => caller_stack_id(b, at),
        None => stack_id(b),
    };
    let Some(mut o) = start(b, EventKind::Realloc, tick) else {
        return;
    };
    heap_addr(b, &mut o, h_old);
    heap_addr(b, &mut o, h_new);
    o.var(REST, size);
    o.var(REST, u64::from(stack));
    o.close(b);
}

/// `free`: no stack (as heaptrack; stacks on free cost about 20 %). The
/// block is looked up first, so that the lookup's cache miss overlaps
/// reading the clock.
#[inline(always)]
pub fn free(b: &mut Block, ptr: u64) {
    let h = heap_ref(b, Class::Freed, ptr);
    let tick = crate::sys::ticks();
    let Some(mut o) = start(b, EventKind::Free, tick) else {
        return;
    };
    heap_addr(b, &mut o, h);
    o.close(b);
}

/// A mapping call: tag, address, then up to four more integers, then the
/// stack. Layouts per tag are listed in `docs/trace-format.md`. The call
/// being recorded has already set errno, which recording (a rule lookup,
/// a new buffer) must not change.
pub fn mapping(b: &mut Block, tag: EventKind, a: u64, rest: &[u64]) {
    let saved = crate::errno();
    mapping_inner(b, tag, a, rest);
    crate::set_errno(saved);
}

fn mapping_inner(b: &mut Block, tag: EventKind, a: u64, rest: &[u64]) {
    let stack = stack_id(b);
    let Some(mut o) = start(b, tag, crate::sys::ticks()) else {
        return;
    };
    addr(b, &mut o, a);
    for &v in rest {
        o.var(REST, v);
    }
    o.var(REST, u64::from(stack));
    o.close(b);
}

/// A record with integers, a string and optionally the stack; errno is
/// kept as the recorded call left it.
pub fn plain(b: &mut Block, tag: EventKind, ints: &[u64], text: &[u8], with_stack: bool) {
    let saved = crate::errno();
    plain_inner(b, tag, ints, text, with_stack);
    crate::set_errno(saved);
}

fn plain_inner(b: &mut Block, tag: EventKind, ints: &[u64], text: &[u8], with_stack: bool) {
    let stack = if with_stack { stack_id(b) } else { 0 };
    let Some(mut o) = start(b, tag, crate::sys::ticks()) else {
        return;
    };
    for &v in ints {
        o.var(REST, v);
    }
    let text = &text[..text.len().min(1024)];
    o.var(REST, text.len() as u64);
    o.bytes(REST, text);
    if with_stack {
        o.var(REST, u64::from(stack));
    }
    o.close(b);
}

/// The first record of a stream: absolute tick (eight bytes, in the tick
/// part), then tid, pthread handle and stack bounds.
pub fn thread_start(b: &mut Block, pthread: u64) {
    let Some(mut o) = block::open(b) else {
        return;
    };
    let tick = crate::sys::ticks();
    b.last_tick = tick;
    o.u8(HEADS, EventKind::ThreadStart as u8);
    o.bytes(HEADS, &tick.to_le_bytes());
    for v in [b.tid as u64, pthread, b.stack_lo as u64, b.stack_hi as u64] {
        o.var(REST, v);
    }
    o.close(b);
}
