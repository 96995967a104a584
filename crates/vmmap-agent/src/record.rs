//! Encoding events into the calling thread's buffer (the hot path).

use vmmap_core::trace::wire::*;

use crate::block::{self, Block, StackSlot, STACK_SLOTS, STACK_WAYS};
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
    if !block::reserve(b) {
        return 0;
    }
    let id = b.next_stack;
    b.next_stack += 1;
    // First in, first out: the newest stack goes in front.
    ways.copy_within(0..STACK_WAYS - 1, 1);
    ways[0] = StackSlot { hash: st.hash, id };
    crate::memo::materialize(b, st.src);
    let frames = b.frames; // a new stack: rare, so the copy is cheap overall
    let buf = block::tail(b);
    buf[0] = EV_STACK;
    let mut p = put_uvarint(buf, 1, u64::from(id));
    buf[p] = if st.truncated { STACK_TRUNCATED } else { 0 };
    p = put_uvarint(buf, p + 1, st.n as u64);
    let mut prev = 0u64;
    for &f in &frames[..st.n] {
        p = put_uvarint(buf, p, zigzag(f.wrapping_sub(prev) as i64));
        prev = f;
    }
    block::commit(b, p, 0);
    id
}

/// Starts a record: reserves room, writes the tag and the tick delta.
/// Returns the write position, or None if no buffer could be had.
#[inline(always)]
fn start(b: &mut Block, tag: u8, tick: u64) -> Option<usize> {
    if !block::reserve(b) {
        return None;
    }
    let d = tick.wrapping_sub(b.last_tick) as i64;
    b.last_tick = tick;
    let buf = block::tail(b);
    buf[0] = tag;
    Some(put_uvarint(buf, 1, zigzag(d)))
}

/// Writes an address at `ap` in the buffer's address part; returns the
/// new position there.
#[inline(always)]
fn addr(b: &mut Block, ap: usize, a: u64) -> usize {
    let d = a.wrapping_sub(b.last_addr) as i64;
    b.last_addr = a;
    put_uvarint(block::addr_tail(b), ap, zigzag(d))
}

#[inline(always)]
fn u(b: &mut Block, p: usize, v: u64) -> usize {
    put_uvarint(block::tail(b), p, v)
}

/// `malloc`, `calloc` and the aligned family (align 0 = none), called
/// from `at` or, without it, from the hook's own caller.
#[inline(always)]
pub fn alloc(
    b: &mut Block,
    tag: u8,
    tick: u64,
    ptr: u64,
    size: u64,
    align: u64,
    at: Option<Caller>,
) {
    let stack = match at {
        Some(at) => caller_stack_id(b, at),
        None => stack_id(b),
    };
    let Some(mut p) = start(b, tag, tick) else {
        return;
    };
    let ap = addr(b, 0, ptr);
    p = u(b, p, size);
    p = u(b, p, u64::from(stack));
    if tag == EV_MEMALIGN {
        p = u(b, p, align);
    }
    block::commit(b, p, ap);
}

/// `realloc` and `reallocarray`, called from `at` or the hook's caller.
#[inline(always)]
pub fn realloc(b: &mut Block, tick: u64, old: u64, new: u64, size: u64, at: Option<Caller>) {
    let stack = match at {
        Some(at) => caller_stack_id(b, at),
        None => stack_id(b),
    };
    let Some(mut p) = start(b, EV_REALLOC, tick) else {
        return;
    };
    let mut ap = addr(b, 0, old);
    ap = addr(b, ap, new);
    p = u(b, p, size);
    p = u(b, p, u64::from(stack));
    block::commit(b, p, ap);
}

/// `free`: no stack (as heaptrack; stacks on free cost about 20 %).
#[inline(always)]
pub fn free(b: &mut Block, tick: u64, ptr: u64) {
    let Some(p) = start(b, EV_FREE, tick) else {
        return;
    };
    let ap = addr(b, 0, ptr);
    block::commit(b, p, ap);
}

/// A mapping call: tag, address, then up to four more integers, then the
/// stack. Layouts per tag are listed in `docs/trace-format.md`. The call
/// being recorded has already set errno, which recording (a rule lookup,
/// a new buffer) must not change.
pub fn mapping(b: &mut Block, tag: u8, a: u64, rest: &[u64]) {
    let saved = crate::errno();
    mapping_inner(b, tag, a, rest);
    crate::set_errno(saved);
}

fn mapping_inner(b: &mut Block, tag: u8, a: u64, rest: &[u64]) {
    let stack = stack_id(b);
    let Some(mut p) = start(b, tag, crate::sys::ticks()) else {
        return;
    };
    let ap = addr(b, 0, a);
    for &v in rest {
        p = u(b, p, v);
    }
    p = u(b, p, u64::from(stack));
    block::commit(b, p, ap);
}

/// A record with integers, a string and optionally the stack; errno is
/// kept as the recorded call left it.
pub fn plain(b: &mut Block, tag: u8, ints: &[u64], text: &[u8], with_stack: bool) {
    let saved = crate::errno();
    plain_inner(b, tag, ints, text, with_stack);
    crate::set_errno(saved);
}

fn plain_inner(b: &mut Block, tag: u8, ints: &[u64], text: &[u8], with_stack: bool) {
    let stack = if with_stack { stack_id(b) } else { 0 };
    let Some(mut p) = start(b, tag, crate::sys::ticks()) else {
        return;
    };
    for &v in ints {
        p = u(b, p, v);
    }
    let text = &text[..text.len().min(1024)];
    p = u(b, p, text.len() as u64);
    block::tail(b)[p..p + text.len()].copy_from_slice(text);
    p += text.len();
    if with_stack {
        p = u(b, p, u64::from(stack));
    }
    block::commit(b, p, 0);
}

/// The first record of a stream: absolute tick, tid, pthread handle and
/// stack bounds.
pub fn thread_start(b: &mut Block, pthread: u64) {
    if !block::reserve(b) {
        return;
    }
    let tick = crate::sys::ticks();
    b.last_tick = tick;
    let (tid, lo, hi) = (b.tid as u64, b.stack_lo as u64, b.stack_hi as u64);
    let buf = block::tail(b);
    buf[0] = EV_THREAD_START;
    buf[1..9].copy_from_slice(&tick.to_le_bytes());
    let mut p = put_uvarint(buf, 9, tid);
    p = put_uvarint(buf, p, pthread);
    p = put_uvarint(buf, p, lo);
    p = put_uvarint(buf, p, hi);
    block::commit(b, p, 0);
}
