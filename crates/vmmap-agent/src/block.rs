//! The lanes threads record in, and the event buffers.
//!
//! A lane ([`Block`]) is one stream of the trace with everything large
//! that recording needs: its buffer, stack-id cache, rule cache, walk memo,
//! address ages and unwind context, in one mapping made with a raw
//! syscall. Threads lease lanes for one record at a time
//! ([`crate::thread`]), so the agent holds as many as its threads record
//! at once, not one per thread.
//!
//! Events go into the lane's current [`Buf`]. A full buffer is pushed onto
//! a lock-free list for the writer thread and replaced from a pool; the
//! writer also copies the committed part of every current buffer every
//! 100 ms, so a killed process loses at most that much.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

use crate::ages::{self, Ages};
use crate::memo::{FrameRecord, WalkMemo};
use crate::sys::{self, SpinLock};
use crate::unwind::{RuleCache, RULE_SLOTS, SMALL_RULE_SLOTS};

/// Bytes of event data per buffer. Each lane holds one while it is used:
/// 32 KiB, not 128 (when each of hundreds of threads held one, they cost
/// tens of MiB of address space); a full buffer is switched for another about every
/// thousand records, which costs nothing measurable. A little under 32 KiB,
/// so that the buffer with its header fits in eight pages, not nine.
pub const BUF_DATA: usize = 32 * 1024 - 64;
/// The parts of a buffer (trace format 3, `docs/trace-format.md`): each
/// record's head (tag and tick), its other fields, and its addresses
/// (heap addresses as references to recent ones when they can be). Kept
/// apart, each kind of field compresses far better than all of them
/// interleaved.
pub const HEADS: usize = 0;
/// See [`HEADS`].
pub const REST: usize = 1;
/// See [`HEADS`].
pub const ADDRS: usize = 2;
/// Parts in a buffer.
pub const PARTS: usize = 3;
/// Where each part starts in `data`, and its capacity (every part is
/// under 64 KiB, so that the positions pack in one word).
pub const PART_START: [usize; PARTS] = [0, 8 * 1024, 22 * 1024];
/// See [`PART_START`].
pub const PART_CAP: [usize; PARTS] = [8 * 1024, 14 * 1024, 10 * 1024 - 64];
const _: () = assert!(PART_START[2] + PART_CAP[2] == BUF_DATA);
const _: () = assert!(core::mem::size_of::<Buf>() <= 32 * 1024);
/// Room always left in each part for one record: a tag and a tick (eight
/// bytes for a thread start); the largest other fields (a 128-frame stack
/// definition, or a text of 1 KiB); two heap addresses, each written as
/// eight bytes whatever its length.
pub const MAX_RECORD: [usize; PARTS] = [11, 16 + vmmap_wire::MAX_FRAMES * 10, 26];
/// Buffers in flight (4 MiB), besides the one each lane fills, before
/// the producers wait for the writer; beyond that a thread yields until the writer catches up. No
/// event is lost: a thread waits instead. More buffers only let a
/// descheduled writer fall further behind, at the cost of the program's
/// memory (it was 256 MiB; docs/tracing.md, "Footprint").
const MAX_BUFFERS: usize = 128;

/// Slots in a lane's "stack already defined" cache, for the first lanes.
pub const STACK_SLOTS: usize = 4096;
/// The same for later lanes: a stack that fell out is defined again
/// under a new id, which the decoder takes as any other definition.
pub const SMALL_STACK_SLOTS: usize = 256;
/// Lanes that get the full caches (about half a megabyte of address
/// space each); the later ones, made only when more threads record at
/// the same moment, get caches a sixteenth of the size (docs/tracing.md,
/// "Footprint").
pub const FULL_LANES: usize = 4;
/// Ways per set of that cache. Direct-mapped, two stacks whose hashes met
/// in one slot evicted each other on every alternation: a program with
/// 181 stacks re-sent a definition for one allocation in eight, which was
/// a third of its trace and the decoder's busiest path. Four ways of 16
/// bytes are one cache line.
pub const STACK_WAYS: usize = 4;

/// One buffer of a lane's event stream.
#[repr(C)]
pub struct Buf {
    /// Position of this buffer in its lane's stream (1, 2, ...).
    pub seq: u64,
    /// The lane whose events these are.
    pub owner: *mut Block,
    /// Bytes committed by the owner (Release after each record), every
    /// part's in one word: see [`pack`].
    pub len: AtomicUsize,
    /// Bytes already taken by the writer (writer only), packed the same.
    pub copied: usize,
    /// Link in the full list or the pool.
    pub next: *mut Buf,
    /// Link in the list of every buffer ever made (never changes once set).
    pub all: *mut Buf,
    /// The records.
    pub data: [u8; BUF_DATA],
}

/// A slot of the stack-definition cache.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct StackSlot {
    /// The stack's hash (0 = empty).
    pub hash: u64,
    /// Its id in this lane's stream.
    pub id: u32,
}

/// A lane: one stream of the trace, and everything a thread needs to
/// record into it, leased by one thread at a time.
#[repr(C)]
pub struct Block {
    /// Leased by a thread ([`crate::thread::lease`]); stays set while the
    /// lane is biased to a thread.
    pub busy: AtomicBool,
    /// The biased holder is inside a record (see [`crate::thread`]).
    pub owner_in: AtomicBool,
    /// The lane may be biased to the thread that takes it: a full lane
    /// never revoked from a thread.
    pub biasable: bool,
    /// The number of the thread the lane is biased to (0: none): that
    /// thread leases it without an atomic read-modify-write.
    pub bias: AtomicU32,
    /// The attach session the stream belongs to ([`crate::session`]).
    pub session: u32,
    /// Stream id, unique for the life of the process.
    pub id: u32,
    /// The number of the thread whose records the stream holds now (0:
    /// none yet); another thread writes a THREAD record first.
    pub thread: u32,
    /// The leasing thread's stack bounds, for safe unwinding.
    pub stack_lo: usize,
    /// See `stack_lo`.
    pub stack_hi: usize,
    /// The buffer being filled (owner writes, writer reads).
    pub buf: AtomicPtr<Buf>,
    /// Write positions in `buf`'s parts (owner only).
    pub at: [usize; PARTS],
    /// Sequence number of the last buffer this lane started.
    pub last_seq: AtomicU64,
    /// Last tick and address written, for delta coding (leaseholder only).
    pub deltas: vmmap_wire::encode::Deltas,
    /// The least tick the leaseholder's records may have: past its own
    /// last record in another lane ([`tick_at`]).
    pub floor: u64,
    /// Next stack id to hand out (owner only).
    pub next_stack: u32,
    /// Stack definitions already in this stream ([`STACK_SLOTS`] or
    /// [`SMALL_STACK_SLOTS`] of them).
    pub stacks: *mut StackSlot,
    /// Sets of `stacks` - 1.
    pub stack_sets: usize,
    /// The lane has the smaller caches (see [`FULL_LANES`]).
    pub small: bool,
    /// Unwind rules by return address.
    pub rules: *mut RuleCache,
    /// gimli's context for computing a missing rule (no heap: see
    /// [`crate::unwind::FixedStorage`]).
    pub unwind: *mut crate::unwind::Context,
    /// The frames of a new stack, for its definition.
    pub frames: [u64; vmmap_wire::MAX_FRAMES],
    /// The frames one walk found before it met a stored walk.
    pub scratch: [FrameRecord; crate::unwind::SCRATCH],
    /// Recent walks (see [`crate::memo`]).
    pub memo: *mut WalkMemo,
    /// Recent heap addresses, for age references (see [`crate::ages`]).
    pub ages: *mut Ages,
    /// Writer only: the last buffer sequence fully written.
    pub w_done: u64,
    /// Registry link (never changes once set).
    pub next: *mut Block,
}

static REGISTRY: AtomicPtr<Block> = AtomicPtr::new(null_mut());
static REGISTRY_LOCK: SpinLock = SpinLock::new();
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
/// Lanes ever mapped: each may hold a buffer it is filling, beyond the
/// [`MAX_BUFFERS`] in flight.
static LANES: AtomicUsize = AtomicUsize::new(0);

static FULL: AtomicPtr<Buf> = AtomicPtr::new(null_mut());
static POOL: AtomicPtr<Buf> = AtomicPtr::new(null_mut());
static POOL_LOCK: SpinLock = SpinLock::new();
static BUFFERS: AtomicUsize = AtomicUsize::new(0);
static ALL_BUFFERS: AtomicPtr<Buf> = AtomicPtr::new(null_mut());
/// How many times a thread waited for the writer to free a buffer.
pub static STALLS: AtomicU64 = AtomicU64::new(0);

/// The first lane of the registry (every lane ever made).
pub fn registry() -> *mut Block {
    REGISTRY.load(Acquire)
}

/// Lanes made so far.
pub fn lanes() -> usize {
    LANES.load(Relaxed)
}

/// Calls `f` with every lane of the registry, in its order. The writer
/// thread's walks: it reads only the leaseholders' fields that are atomic
/// or written before publication.
pub fn each(mut f: impl FnMut(&mut Block)) {
    let mut p = registry();
    while !p.is_null() {
        // SAFETY: registry lanes are never unmapped.
        let b = unsafe { &mut *p };
        p = b.next;
        f(b);
    }
}

/// Maps a new lane, leased to the caller, unless there are `max` already
/// (None). Some(null) if the kernel refuses memory.
pub fn new_lane(max: usize) -> Option<*mut Block> {
    let _g = REGISTRY_LOCK.lock();
    let n = LANES.load(Relaxed);
    if n >= max {
        return None;
    }
    let small = n >= FULL_LANES;
    let (at, total) = layout(small);
    let base = sys::map_anon(total);
    if base.is_null() {
        return Some(null_mut());
    }
    let sizes = cache_bytes(small);
    // SAFETY: every part lies inside the mapping, at its alignment (`layout`).
    let (b, unwind, stacks, rules, memo, ages) = unsafe {
        (
            base.cast::<Block>(),
            base.add(at[0]).cast::<crate::unwind::Context>(),
            base.add(at[1]).cast::<StackSlot>(),
            base.add(at[2]).cast::<RuleCache>(),
            base.add(at[3]).cast::<WalkMemo>(),
            base.add(at[4]).cast::<Ages>(),
        )
    };
    // SAFETY: a fresh zeroed mapping holding every part at its size; all-zero
    // is a valid Block except for the fields set here.
    unsafe {
        (*b).stacks = stacks;
        (*b).stack_sets = sizes[0] / core::mem::size_of::<StackSlot>() / STACK_WAYS - 1;
        (*b).small = small;
        RuleCache::init(rules, if small { SMALL_RULE_SLOTS } else { RULE_SLOTS });
        (*b).rules = rules;
        WalkMemo::init(memo, small);
        (*b).memo = memo;
        Ages::init(
            ages,
            if small {
                ages::SMALL_INDEX
            } else {
                ages::INDEX
            },
        );
        (*b).ages = ages;
        crate::unwind::init_context(unwind);
        (*b).unwind = unwind;
        (*b).busy.store(true, Relaxed);
        (*b).biasable = !small;
        reset(b, false);
        (*b).next = REGISTRY.load(Relaxed);
        REGISTRY.store(b, Release);
    }
    LANES.store(n + 1, Release);
    Some(b)
}

/// Where a lane's unwind context, stack-id cache, rule cache, walk memo
/// and address ages start in its one mapping (the block itself first), and
/// the mapping's length: one mapping, not six, because each would round
/// up to whole pages (a small block's parts took 72 KiB apart, 60 together).
fn layout(small: bool) -> ([usize; 5], usize) {
    /// Every part's alignment divides this.
    const ALIGN: usize = 64;
    let sizes = cache_bytes(small);
    let parts = [
        core::mem::size_of::<crate::unwind::Context>(),
        sizes[0],
        sizes[1],
        sizes[2],
        sizes[3],
    ];
    let mut at = [0; 5];
    let mut end = core::mem::size_of::<Block>();
    for (i, len) in parts.into_iter().enumerate() {
        at[i] = end.next_multiple_of(ALIGN);
        end = at[i] + len;
    }
    (at, end)
}

/// Bytes of a block's stack-id cache, rule cache, walk memo and address
/// ages, full or small (see [`FULL_BLOCKS`]).
fn cache_bytes(small: bool) -> [usize; 4] {
    if small {
        [
            SMALL_STACK_SLOTS * core::mem::size_of::<StackSlot>(),
            RuleCache::bytes(SMALL_RULE_SLOTS),
            WalkMemo::bytes(true),
            Ages::bytes(ages::SMALL_INDEX),
        ]
    } else {
        [
            STACK_SLOTS * core::mem::size_of::<StackSlot>(),
            RuleCache::bytes(RULE_SLOTS),
            WalkMemo::bytes(false),
            Ages::bytes(ages::INDEX),
        ]
    }
}

/// Starts a new stream in a lane; `used`: the caches hold another
/// stream's entries and are emptied. A fresh lane's caches are the
/// kernel's zero pages, already empty: writing them would make every page
/// resident (about 400 KiB) where the threads touch only the pages their
/// entries hash to.
///
/// # Safety
/// The caller owns `b` exclusively (leased, or new).
pub unsafe fn reset(b: *mut Block, used: bool) {
    // SAFETY: exclusive access per the contract.
    let blk = unsafe { &mut *b };
    blk.id = NEXT_ID.fetch_add(1, Relaxed);
    blk.session = crate::session();
    blk.thread = 0;
    blk.stack_lo = 0;
    blk.stack_hi = 0;
    blk.buf.store(null_mut(), Relaxed);
    blk.at = [0; PARTS];
    blk.last_seq.store(0, Relaxed);
    blk.deltas = Default::default();
    blk.floor = 0;
    blk.next_stack = 1;
    blk.w_done = 0;
    // SAFETY: the caches are this block's own mappings.
    unsafe {
        if used {
            core::ptr::write_bytes(blk.stacks, 0, (blk.stack_sets + 1) * STACK_WAYS);
            (*blk.rules).clear();
            (*blk.memo).clear();
            (*blk.ages).clear();
        } else {
            (*blk.rules).start();
        }
    }
}

/// The tick a record written now in `b` takes, for the `tick` read: never
/// before the lane's last record (a tick read before the lease can be a
/// little older than another thread's record in the lane), nor before
/// the leaseholder's own last record in another lane ([`Block::floor`]):
/// each stream stays in time order, and a thread's records in different
/// lanes keep their order when the decoder merges streams by tick.
#[inline(always)]
pub fn tick_at(b: &Block, tick: u64) -> u64 {
    tick.max(b.deltas.tick).max(b.floor)
}

/// Makes sure the current buffer has room for one record, switching to a
/// fresh buffer if needed. Returns false if no memory could be had.
#[inline(always)]
pub fn reserve(b: &mut Block) -> bool {
    let cur = b.buf.load(Relaxed);
    if !cur.is_null() && (0..PARTS).all(|i| b.at[i] + MAX_RECORD[i] <= PART_CAP[i]) {
        return true;
    }
    switch_buffer(b)
}

#[cold]
fn switch_buffer(b: &mut Block) -> bool {
    let cur = b.buf.load(Relaxed);
    if !cur.is_null() {
        push_full(cur);
    }
    let fresh = take_buffer();
    if fresh.is_null() {
        b.buf.store(null_mut(), Release);
        return false;
    }
    let seq = b.last_seq.load(Relaxed) + 1;
    // SAFETY: a buffer from the pool belongs to nobody.
    unsafe {
        (*fresh).seq = seq;
        (*fresh).owner = b;
        (*fresh).len.store(0, Relaxed);
        (*fresh).copied = 0;
        (*fresh).next = null_mut();
    }
    b.last_seq.store(seq, Release);
    b.at = [0; PARTS];
    b.buf.store(fresh, Release);
    true
}

/// Write cursors into the current buffer's parts for one record, from
/// [`open`] to [`Out::close`]: plain offsets and raw writes, checked once
/// by [`reserve`] for the whole record instead of at every field.
pub struct Out {
    data: *mut u8,
    at: [usize; PARTS],
}

/// Starts a record (or a stack definition) in the current buffer, making
/// room first; None if no buffer could be had.
#[inline(always)]
pub fn open(b: &mut Block) -> Option<Out> {
    if !reserve(b) {
        return None;
    }
    let cur = b.buf.load(Relaxed);
    // SAFETY: reserve() made cur non-null and owned by this thread.
    let data = unsafe { (*cur).data.as_mut_ptr() };
    Some(Out { data, at: b.at })
}

impl Out {
    /// Where the next byte of `part` goes.
    #[inline(always)]
    fn ptr(&mut self, part: usize) -> *mut u8 {
        // SAFETY: inside the buffer: reserve() left MAX_RECORD[part] bytes
        // of room in the part, and a record writes no more than that.
        unsafe { self.data.add(PART_START[part] + self.at[part]) }
    }

    /// Appends one byte to a part.
    #[inline(always)]
    pub fn u8(&mut self, part: usize, v: u8) {
        // SAFETY: see `ptr`.
        unsafe { self.ptr(part).write(v) };
        self.at[part] += 1;
    }

    /// Appends a varint to a part, byte by byte: for fields whose length
    /// is predictable (ticks, sizes, stack ids).
    #[inline(always)]
    pub fn var(&mut self, part: usize, v: u64) {
        let n = var_bytes(self.ptr(part), v);
        self.at[part] += n;
    }

    /// Appends a varint whose length is as random as a heap address's.
    #[inline(always)]
    pub fn var_random(&mut self, part: usize, v: u64) {
        let n = self.var_ahead(part, v);
        self.at[part] += n;
    }

    /// Writes a varint at the end of a part; returns its length. Up to 56 bits
    /// (every tick difference, size and heap address difference in
    /// practice) it is built without a branch: the length of a random
    /// heap address's varint is as random as the address, and a loop over
    /// its bytes mispredicted on most heap records.
    #[inline(always)]
    fn var_ahead(&mut self, part: usize, v: u64) -> usize {
        let p = self.ptr(part);
        if v >> 56 != 0 {
            return var_bytes(p, v);
        }
        let bits = 64 - (v | 1).leading_zeros() as usize;
        let n = bits.div_ceil(7);
        let mut x = spread7(v);
        // Continuation bits on every byte but the last.
        x |= 0x8080_8080_8080_8080 & ((1u64 << (8 * (n - 1))) - 1);
        // SAFETY: see `ptr`: eight bytes of room (a part keeps room for a
        // whole record, which ends with at least that much left for its
        // largest field); only the first `n` count.
        unsafe { p.cast::<u64>().write_unaligned(x.to_le()) };
        n
    }

    /// Appends bytes to a part (at most the room [`MAX_RECORD`] keeps).
    #[inline(always)]
    pub fn bytes(&mut self, part: usize, v: &[u8]) {
        // SAFETY: see `ptr`; callers keep texts within MAX_RECORD.
        unsafe { core::ptr::copy_nonoverlapping(v.as_ptr(), self.ptr(part), v.len()) };
        self.at[part] += v.len();
    }

    /// Ends the record: publishes it to the writer.
    #[inline(always)]
    pub fn close(self, b: &mut Block) {
        b.at = self.at;
        let cur = b.buf.load(Relaxed);
        // SAFETY: cur is the owned current buffer.
        unsafe { (*cur).len.store(pack(b.at), Release) };
    }
}

/// The seven-bit groups of `v` (below 2^56) one to a byte, in three
/// halving steps (28-bit halves into 32-bit lanes, 14 into 16, 7 into 8):
/// twelve operations where a shift and a mask per byte took twenty-four.
#[inline(always)]
fn spread7(v: u64) -> u64 {
    let x = (v & 0x0FFF_FFFF) | (v & 0x00FF_FFFF_F000_0000) << 4;
    let x = (x & 0x0000_3FFF_0000_3FFF) | (x & 0x0FFF_C000_0FFF_C000) << 2;
    (x & 0x007F_007F_007F_007F) | (x & 0x3F80_3F80_3F80_3F80) << 1
}

/// Writes a varint byte by byte (ten at most) at `p`; returns its length.
#[inline(always)]
fn var_bytes(p: *mut u8, mut v: u64) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        // SAFETY: the caller's `ptr` has room for ten bytes (a part keeps
        // room for a whole record).
        unsafe { p.add(n).write((v as u8) | 0x80) };
        v >>= 7;
        n += 1;
    }
    // SAFETY: as above.
    unsafe { p.add(n).write(v as u8) };
    n + 1
}

/// The parts' lengths in one word (16 bits each), so that the writer
/// reads a consistent set with one atomic load.
#[inline(always)]
pub fn pack(at: [usize; PARTS]) -> usize {
    at[0] | at[1] << 16 | at[2] << 32
}

/// Undoes [`pack`].
#[inline(always)]
pub fn unpack(len: usize) -> [usize; PARTS] {
    [len & 0xffff, len >> 16 & 0xffff, len >> 32 & 0xffff]
}

/// Returns the block's current buffer to the pool unwritten: it belongs to
/// an attach that has ended (the caller owns the block).
pub fn drop_buffer(b: &mut Block) {
    let cur = b.buf.swap(null_mut(), AcqRel);
    if !cur.is_null() {
        give_back(cur);
    }
}

/// At a new attach (before its writer starts): the buffers an earlier
/// one left unwritten go back to the pool, and every lane not leased
/// starts a new stream (a leased one does when it is next leased).
pub fn drop_leftovers() {
    for buf in take_full() {
        give_back(buf);
    }
    each(|b| {
        if !b.busy.swap(true, Acquire) {
            drop_buffer(b);
            // SAFETY: leased just now.
            unsafe { reset(b, true) };
            b.busy.store(false, Release);
        }
    });
}

fn push_full(buf: *mut Buf) {
    let mut head = FULL.load(Relaxed);
    loop {
        // SAFETY: we own buf until the CAS publishes it.
        unsafe { (*buf).next = head };
        match FULL.compare_exchange_weak(head, buf, Release, Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

/// Takes every full buffer, oldest first (writer only).
pub fn take_full() -> Vec<*mut Buf> {
    let mut p = FULL.swap(null_mut(), Acquire);
    let mut v = Vec::new();
    while !p.is_null() {
        v.push(p);
        // SAFETY: the list is ours after the swap.
        p = unsafe { (*p).next };
    }
    v.reverse();
    v
}

fn take_buffer() -> *mut Buf {
    loop {
        {
            let _g = POOL_LOCK.lock();
            let p = POOL.load(Relaxed);
            if !p.is_null() {
                // SAFETY: pool buffers are linked through `next` under the lock.
                POOL.store(unsafe { (*p).next }, Relaxed);
                return p;
            }
        }
        let limit = MAX_BUFFERS + LANES.load(Relaxed);
        if crate::writer::away() && BUFFERS.load(Relaxed) >= limit {
            // The writer stepped out: it is wanted back now.
            crate::writer::come_back(true);
        }
        if BUFFERS.fetch_add(1, Relaxed) < limit || !crate::writer::running() {
            let p = sys::map_anon(core::mem::size_of::<Buf>()) as *mut Buf;
            if p.is_null() {
                BUFFERS.fetch_sub(1, Relaxed);
                return p;
            }
            let mut head = ALL_BUFFERS.load(Relaxed);
            loop {
                // SAFETY: the fresh buffer is ours until published.
                unsafe { (*p).all = head };
                match ALL_BUFFERS.compare_exchange_weak(head, p, Release, Relaxed) {
                    Ok(_) => return p,
                    Err(h) => head = h,
                }
            }
        }
        BUFFERS.fetch_sub(1, Relaxed);
        STALLS.fetch_add(1, Relaxed);
        sys::sleep_ms(1);
    }
}

/// Returns a drained buffer to the pool (writer only).
pub fn give_back(buf: *mut Buf) {
    let _g = POOL_LOCK.lock();
    // SAFETY: the writer owns drained buffers.
    unsafe { (*buf).next = POOL.load(Relaxed) };
    POOL.store(buf, Relaxed);
}

/// After `fork`, in the child: the lanes' buffers, and every buffer in
/// flight, were the parent's; threads that held lanes do not exist here.
pub fn after_fork_child() {
    REGISTRY_LOCK.force_unlock();
    POOL_LOCK.force_unlock();
    FULL.store(null_mut(), Relaxed);
    // The buffers are the parent's trace; the lanes' streams start over
    // when next leased (the child's session differs).
    each(|b| {
        b.buf.store(null_mut(), Relaxed);
        b.bias.store(0, Relaxed);
        b.owner_in.store(false, Relaxed);
        b.busy.store(false, Release);
    });
}

/// Every mapping the agent made for itself: lanes (their caches in the
/// same mapping) and all buffers, as (start, length).
pub fn own_memory(out: &mut Vec<(u64, u64)>) {
    let mut b = registry();
    while !b.is_null() {
        // SAFETY: registry lanes are never unmapped; these fields are set
        // before publication and never change.
        let blk = unsafe { &*b };
        out.push((b as u64, layout(blk.small).1 as u64));
        b = blk.next;
    }
    let mut p = ALL_BUFFERS.load(Acquire);
    while !p.is_null() {
        out.push((p as u64, core::mem::size_of::<Buf>() as u64));
        // SAFETY: buffers are never unmapped; `all` never changes.
        p = unsafe { (*p).all };
    }
}

#[cfg(test)]
mod tests {
    use super::spread7;

    #[test]
    fn spread7_puts_each_seven_bit_group_in_its_own_byte() {
        let mut v = 0x2545_F491_4F6C_DD1Du64;
        for shift in 0..56 {
            for x in [1u64 << shift, (1u64 << shift) - 1, v >> 8] {
                let mut want = 0u64;
                for i in 0..8 {
                    want |= ((x >> (7 * i)) & 0x7f) << (8 * i);
                }
                assert_eq!(spread7(x), want, "{x:#x}");
            }
            v ^= v << 13;
            v ^= v >> 7;
            v ^= v << 17;
        }
    }
}
