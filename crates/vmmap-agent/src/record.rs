//! Recording events (the hot path): each record is written into a lane
//! the calling thread leases for it ([`crate::thread::lease`]), with the
//! lane's stack walk, heap address index and buffer; the records' bytes
//! are `vmmap_wire::encode`'s, the encoder the tests share.
//!
//! A record's tick is never before the lane's last one, nor before the
//! thread's own last record ([`block::tick_at`]).

use vmmap_wire::encode::{self, HeapAddr, Part, Sink};
use vmmap_wire::*;

use crate::ages::Class;
use crate::block::{self, Block, Out, StackSlot, ADDRS, HEADS, REST, STACK_WAYS};
use crate::thread::{self, Thread};
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
    // Bit 0 of a stack hash is always set: the set comes from the bits
    // above it.
    let set = ((st.hash >> 1) as usize) & b.stack_sets;
    // SAFETY: the cache is this block's own mapping, of `stack_sets + 1`
    // sets of STACK_WAYS slots; nothing else refers to it meanwhile.
    let ways = unsafe {
        &mut *b
            .stacks
            .add(set * STACK_WAYS)
            .cast::<[StackSlot; STACK_WAYS]>()
    };
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
    encode::stack(&mut o, id, st.truncated, &b.frames[..st.n]);
    o.close(b);
    id
}

/// The buffer's parts as the encoder names them.
impl Sink for Out {
    #[inline(always)]
    fn u8(&mut self, part: Part, v: u8) {
        Out::u8(self, part as usize, v);
    }

    #[inline(always)]
    fn var(&mut self, part: Part, v: u64) {
        Out::var(self, part as usize, v);
    }

    #[inline(always)]
    fn var_random(&mut self, part: Part, v: u64) {
        Out::var_random(self, part as usize, v);
    }

    #[inline(always)]
    fn bytes(&mut self, part: Part, v: &[u8]) {
        Out::bytes(self, part as usize, v);
    }
}

// The encoder's parts are the buffer's.
const _: () = assert!(
    Part::Heads as usize == HEADS && Part::Fields as usize == REST && Part::Addrs as usize == ADDRS
);

/// A heap address and its age in the other class
/// (`vmmap_wire::HEAP_REF`), looked up before the record is
/// written so that the lookup's cache miss overlaps the stack walk.
#[inline(always)]
fn heap_ref(b: &mut Block, class: Class, a: u64) -> HeapAddr {
    let age = if a == 0 {
        0
    } else {
        // SAFETY: the index is this block's own mapping.
        unsafe { (*b.ages).note(class, a) }
    };
    HeapAddr { a, age }
}

/// `malloc`, `calloc` and the aligned family (align 0 = none), called
/// from `at` or, without it, from the hook's own caller.
#[inline(always)]
pub fn alloc(
    t: &mut Thread,
    tag: EventKind,
    tick: u64,
    ptr: u64,
    size: u64,
    align: u64,
    at: Option<Caller>,
) {
    let Some(b) = thread::lease(t) else {
        return;
    };
    alloc_in(b, tag, tick, ptr, size, align, at);
    thread::release(t, b);
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn alloc_in(
    b: &mut Block,
    tag: EventKind,
    tick: u64,
    ptr: u64,
    size: u64,
    align: u64,
    at: Option<Caller>,
) {
    let tick = block::tick_at(b, tick);
    let h = heap_ref(b, Class::Allocated, ptr);
    let stack = match at {
        Some(at) => caller_stack_id(b, at),
        None => stack_id(b),
    };
    let Some(mut o) = block::open(b) else {
        return;
    };
    encode::alloc(&mut o, &mut b.deltas, tag, tick, h, size, stack, align);
    o.close(b);
}

/// `realloc` and `reallocarray`, called from `at` or the hook's caller.
#[inline(always)]
pub fn realloc(t: &mut Thread, tick: u64, old: u64, new: u64, size: u64, at: Option<Caller>) {
    let Some(b) = thread::lease(t) else {
        return;
    };
    realloc_in(b, tick, old, new, size, at);
    thread::release(t, b);
}

#[inline(always)]
fn realloc_in(b: &mut Block, tick: u64, old: u64, new: u64, size: u64, at: Option<Caller>) {
    let tick = block::tick_at(b, tick);
    let (h_old, h_new) = (
        heap_ref(b, Class::Freed, old),
        heap_ref(b, Class::Allocated, new),
    );
    let stack = match at {
        Some(at) => caller_stack_id(b, at),
        None => stack_id(b),
    };
    let Some(mut o) = block::open(b) else {
        return;
    };
    encode::realloc(&mut o, &mut b.deltas, tick, h_old, h_new, size, stack);
    o.close(b);
}

/// `free`: no stack (as heaptrack; stacks on free cost about 20 %). The
/// block is looked up first, so that the lookup's cache miss overlaps
/// reading the clock.
#[inline(always)]
pub fn free(t: &mut Thread, ptr: u64) {
    let Some(b) = thread::lease(t) else {
        return;
    };
    free_in(b, ptr);
    thread::release(t, b);
}

#[inline(always)]
fn free_in(b: &mut Block, ptr: u64) {
    let h = heap_ref(b, Class::Freed, ptr);
    let tick = block::tick_at(b, crate::sys::ticks());
    let Some(mut o) = block::open(b) else {
        return;
    };
    encode::free(&mut o, &mut b.deltas, tick, h);
    o.close(b);
}

/// A mapping call: tag, address, then up to four more integers, then the
/// stack. Layouts per tag are listed in `docs/trace-format.md`. The call
/// being recorded has already set errno, which recording (a rule lookup,
/// a new buffer) must not change.
pub fn mapping(t: &mut Thread, tag: EventKind, a: u64, rest: &[u64]) {
    let saved = crate::errno();
    if let Some(b) = thread::lease(t) {
        mapping_inner(b, tag, a, rest);
        thread::release(t, b);
    }
    crate::set_errno(saved);
}

fn mapping_inner(b: &mut Block, tag: EventKind, a: u64, rest: &[u64]) {
    let stack = stack_id(b);
    let tick = block::tick_at(b, crate::sys::ticks());
    let Some(mut o) = block::open(b) else {
        return;
    };
    encode::mapping(&mut o, &mut b.deltas, tag, tick, a, rest, stack);
    o.close(b);
}

/// A record with integers, a string and optionally the stack; errno is
/// kept as the recorded call left it.
pub fn plain(t: &mut Thread, tag: EventKind, ints: &[u64], text: &[u8], with_stack: bool) {
    let saved = crate::errno();
    if let Some(b) = thread::lease(t) {
        plain_inner(b, tag, ints, text, with_stack);
        thread::release(t, b);
    }
    crate::set_errno(saved);
}

fn plain_inner(b: &mut Block, tag: EventKind, ints: &[u64], text: &[u8], with_stack: bool) {
    let stack = with_stack.then(|| stack_id(b));
    let tick = block::tick_at(b, crate::sys::ticks());
    let Some(mut o) = block::open(b) else {
        return;
    };
    encode::plain(&mut o, &mut b.deltas, tag, tick, ints, text, stack);
    o.close(b);
}

/// A thread's first record: absolute tick (eight bytes, in the tick
/// part), then tid, pthread handle and stack bounds. Errno is kept.
pub fn thread_start(t: &mut Thread, pthread: u64) {
    let saved = crate::errno();
    if let Some(b) = thread::lease(t) {
        if let Some(mut o) = block::open(b) {
            let tick = block::tick_at(b, crate::sys::ticks());
            let (tid, lo, hi) = (t.tid as u64, t.stack_lo as u64, t.stack_hi as u64);
            encode::thread_start(&mut o, &mut b.deltas, tick, tid, pthread, lo, hi);
            o.close(b);
        }
        thread::release(t, b);
    }
    crate::set_errno(saved);
}
