//! Per-thread state, and the lanes threads lease to record.
//!
//! A thread's own state is small and fixed: its re-entrancy guard, its
//! number in the trace, its kernel id and its stack bounds (a [`Thread`],
//! 64 bytes in a shared slab). Everything large that recording needs (the
//! buffer, the stack-id and rule caches, the remembered walks, the address
//! ages, the unwinder's context) is in a lane ([`Block`]), which a thread
//! leases for the length of one record from a pool of at most
//! [`MAX_LANES`]. A lane is one stream of the trace (trace format 5): when
//! a thread takes a lane another thread wrote last, it writes a THREAD
//! record naming itself first. A program with 500 threads then costs the
//! agent 500 small records and the few lanes its threads use at the same
//! moment, where it cost each thread its own caches and buffer
//! (docs/tracing.md, "Footprint").
//!
//! A thread first tries the lane it used last. While lanes are
//! plentiful, that lane is *biased* to it: the lane's lock stays taken
//! for the thread, which enters and leaves a record with plain stores
//! (`owner_in`) and a compiler fence, no atomic read-modify-write. The
//! exchange a lock takes was a fifth of the `free` hook's time, and it
//! also waits for every store before it (the allocator's) to reach the
//! cache. Another thread that needs the lane revokes the bias: it clears
//! `bias`, then makes every running thread of the process execute a
//! full barrier (`membarrier(2)`, [`sys::heavy_barrier`]), then waits
//! until `owner_in` is clear. Either the holder sees the cleared bias
//! after its store of `owner_in` and backs out, or the revoker sees
//! `owner_in` set and waits (the asymmetric form of Dekker's handshake).
//! A revoked lane is never biased again, so that threads sharing lanes
//! pay the old exchange rather than a system call each time; without
//! `membarrier` (an old kernel, a seccomp filter) no lane is biased.
//!
//! [`Thread`]s are reached through a pthread key, not Rust's
//! `thread_local!`: the latter compiles to `__tls_get_addr`, which may call
//! `malloc` after a `dlopen` and would re-enter the hooks before the guard
//! is readable (bytehound #131). glibc serves keys below 32 from the thread
//! descriptor without allocating.

use core::ptr::null_mut;
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU8, Ordering::*};

use crate::block::{self, Block};
use crate::sys::{self, SpinLock};

/// Thread states.
pub const LIVE: u8 = 1;
/// Free for a new thread.
pub const FREE: u8 = 3;

/// Lanes at most: threads recording at the same moment beyond this wait
/// for one (yielding the CPU). Each lane is a stream with its buffer and
/// caches, so this bounds the agent's memory whatever the number of
/// threads; eight lanes cover eight CPUs allocating at once.
pub const MAX_LANES: usize = 8;

/// What one thread of the program holds: a cache line of its own, which
/// every hook writes (the guard) and no other thread's hooks touch.
#[repr(C, align(64))]
pub struct Thread {
    /// Set while the thread is inside a hook (or is the writer): nested
    /// calls pass straight through.
    pub in_hook: AtomicBool,
    /// Lifecycle: [`LIVE`] or [`FREE`].
    pub state: AtomicU8,
    /// The lease being held is through the lane's bias (own thread only),
    /// for [`release`].
    pub biased: bool,
    /// The attach session (or followed fork) its number belongs to
    /// ([`crate::session`]).
    pub session: u32,
    /// The thread's number in the trace (from 1), unique for the life of
    /// the process: what THREAD records name.
    pub number: u32,
    /// Kernel thread id.
    pub tid: i32,
    /// The thread's stack bounds, for safe unwinding (copied into the
    /// lane it records in).
    pub stack_lo: usize,
    /// See `stack_lo`.
    pub stack_hi: usize,
    /// The lane it took last, tried first next time.
    pub lane: *mut Block,
    /// The tick of its last record, which its next one in another lane
    /// must follow ([`Block::floor`]).
    pub last_tick: u64,
    /// Registry link (never changes once set).
    pub next: *mut Thread,
}

const _: () = assert!(core::mem::size_of::<Thread>() == 64);

/// Bytes of a slab of [`Thread`]s: 256 threads.
const SLAB: usize = 16 * 1024;

static REGISTRY: AtomicPtr<Thread> = AtomicPtr::new(null_mut());
static REGISTRY_LOCK: SpinLock = SpinLock::new();
/// The unused tail of the last slab: (next, end), under the lock.
static SLAB_NEXT: AtomicPtr<Thread> = AtomicPtr::new(null_mut());
static SLAB_END: AtomicPtr<Thread> = AtomicPtr::new(null_mut());
/// Every slab mapped, as (start): for the agent's memory list.
static SLABS: [AtomicPtr<u8>; 64] = [const { AtomicPtr::new(null_mut()) }; 64];
static NEXT_NUMBER: AtomicU32 = AtomicU32::new(1);
/// Lanes may be biased: the process is registered for `membarrier`.
static BIAS_OK: AtomicBool = AtomicBool::new(false);

/// Lets lanes be biased from now on if the kernel offers the barrier
/// that revoking a bias needs (at the trace's start, and again in a
/// `fork` child, which is a new address space).
pub fn setup_bias() {
    BIAS_OK.store(
        !sys::seccomp_filtered() && sys::register_heavy_barrier(),
        Relaxed,
    );
}

/// Takes a free thread record or makes one, for the calling thread; its
/// guard is set. Null if the kernel refuses memory.
pub fn new_thread(tid: i32) -> *mut Thread {
    let mut p = REGISTRY.load(Acquire);
    while !p.is_null() {
        // SAFETY: registry records are never unmapped.
        let t = unsafe { &*p };
        if t.state.load(Relaxed) == FREE
            && t.state
                .compare_exchange(FREE, LIVE, Acquire, Relaxed)
                .is_ok()
        {
            // SAFETY: we own the record now.
            unsafe { reset(p, tid) };
            return p;
        }
        p = t.next;
    }
    let _g = REGISTRY_LOCK.lock();
    let mut t = SLAB_NEXT.load(Relaxed);
    if (SLAB_END.load(Relaxed) as usize).saturating_sub(t as usize) < core::mem::size_of::<Thread>()
    {
        let base = sys::map_anon(SLAB);
        if base.is_null() {
            return null_mut();
        }
        if let Some(s) = SLABS.iter().find(|s| s.load(Relaxed).is_null()) {
            s.store(base, Release);
        }
        t = base.cast::<Thread>();
        // SAFETY: the end of the fresh mapping.
        SLAB_END.store(unsafe { base.add(SLAB) }.cast::<Thread>(), Relaxed);
    }
    // SAFETY: t and the record after it are inside a mapping of ours.
    SLAB_NEXT.store(unsafe { t.add(1) }, Relaxed);
    // SAFETY: a fresh zeroed record, ours; all-zero is a valid Thread.
    unsafe {
        (*t).state.store(LIVE, Relaxed);
        reset(t, tid);
        (*t).next = REGISTRY.load(Relaxed);
    }
    REGISTRY.store(t, Release);
    t
}

/// Gives a thread record its number and identity, guard set.
///
/// # Safety
/// The caller owns `t` exclusively.
unsafe fn reset(t: *mut Thread, tid: i32) {
    // SAFETY: exclusive per the contract.
    let t = unsafe { &mut *t };
    t.in_hook.store(true, Relaxed);
    t.session = crate::session();
    t.number = NEXT_NUMBER.fetch_add(1, Relaxed);
    t.tid = tid;
    t.stack_lo = 0;
    t.stack_hi = 0;
    t.last_tick = 0;
}

/// The thread starts over in a new session's trace (attach, a followed
/// fork): a new number, so that lanes name it again; the lane biased to
/// its old number is free again.
pub fn restart(t: &mut Thread, tid: i32) {
    unbias(t);
    t.session = crate::session();
    t.number = NEXT_NUMBER.fetch_add(1, Relaxed);
    t.tid = tid;
}

/// The thread is gone: its record is free at once (its events are in the
/// lanes, which outlive it).
pub fn free(t: &mut Thread) {
    unbias(t);
    t.lane = null_mut();
    t.state.store(FREE, Release);
}

/// Gives up the bias of the thread's last lane, if it still has it: the
/// thread is not inside a record (it is exiting, dead, or starting over).
fn unbias(t: &mut Thread) {
    if t.lane.is_null() || t.number == 0 {
        return;
    }
    // SAFETY: lanes are never unmapped.
    let b = unsafe { &*t.lane };
    if b.bias
        .compare_exchange(t.number, 0, Acquire, Relaxed)
        .is_ok()
    {
        b.owner_in.store(false, Relaxed);
        b.busy.store(false, Release);
    }
}

/// Calls `f` with every thread record (the writer's walks).
pub fn each(mut f: impl FnMut(&mut Thread)) {
    let mut p = REGISTRY.load(Acquire);
    while !p.is_null() {
        // SAFETY: registry records are never unmapped.
        let t = unsafe { &mut *p };
        p = t.next;
        f(t);
    }
}

/// Whether the program has more than one thread by the agent's own
/// records (live ones, the writer's left out): a cheap "yes" before the
/// kernel is asked. Threads that never made a traced call have no record,
/// so "no" is only a maybe.
pub fn several_live() -> bool {
    let mut live = 0;
    let mut p = REGISTRY.load(Acquire);
    while !p.is_null() {
        // SAFETY: registry records are never unmapped.
        let t = unsafe { &*p };
        p = t.next;
        if t.state.load(Acquire) == LIVE && !crate::writer::is_writer_thread_record(t) {
            live += 1;
            if live > 1 {
                return true;
            }
        }
    }
    false
}

/// Takes a lane for one record: the one the thread used last if it is
/// free, else any free one, else a new one while there are fewer than
/// [`MAX_LANES`], else waits for one. Writes the THREAD record when the
/// lane's stream was another thread's. None if no memory could be had.
/// Give it back with [`release`].
#[inline(always)]
pub fn lease(t: &mut Thread) -> Option<&'static mut Block> {
    let hint = t.lane;
    if !hint.is_null() {
        // SAFETY: lanes are never unmapped.
        let b = unsafe { &mut *hint };
        if b.bias.load(Relaxed) == t.number {
            b.owner_in.store(true, Relaxed);
            // The revoker's membarrier makes this a full barrier
            // (module doc): the load below cannot pass the store above.
            compiler_fence(SeqCst);
            if b.bias.load(Relaxed) == t.number {
                // No acquire is needed: nobody else used the lane since
                // this thread took it with its lock (a revoked lane is
                // never biased again).
                t.biased = true;
                if b.thread == t.number && b.session == t.session {
                    return Some(b);
                }
                return adopt(t, b);
            }
            b.owner_in.store(false, Release);
        } else if !b.busy.swap(true, Acquire) {
            t.biased = false;
            if b.thread == t.number && b.session == t.session {
                return Some(b);
            }
            take_bias(t, b);
            return adopt(t, b);
        }
    }
    lease_slow(t)
}

/// Ends a lease taken with [`lease`] by `t`.
#[inline(always)]
pub fn release(t: &mut Thread, b: &mut Block) {
    t.last_tick = b.deltas.tick;
    if t.biased {
        b.owner_in.store(false, Release);
    } else {
        b.busy.store(false, Release);
    }
}

/// The lease when the thread's last lane is busy (or it has none). While
/// there are fewer than [`block::FULL_LANES`], a new lane: a program with
/// a handful of threads gives each its own, which it then keeps (its
/// stream, stack ids and address ages are the same as with a lane per
/// thread); taking a free lane another thread uses had the two swap lanes
/// back and forth, each swap a THREAD record and stacks defined again
/// (typical_mix's trace was 2% larger). Then any free lane, then a new
/// small one up to [`MAX_LANES`], then it waits.
#[cold]
#[inline(never)]
fn lease_slow(t: &mut Thread) -> Option<&'static mut Block> {
    let mut spins = 0u32;
    loop {
        if block::lanes() < block::FULL_LANES {
            if let Some(b) = new_lane(t, block::FULL_LANES) {
                return b;
            }
        }
        let mut p = block::registry();
        while !p.is_null() {
            // SAFETY: lanes are never unmapped.
            let b = unsafe { &mut *p };
            p = b.next;
            if !b.busy.load(Relaxed) && !b.busy.swap(true, Acquire) {
                t.lane = b;
                take_bias(t, b);
                return adopt(t, b);
            }
        }
        if block::lanes() < MAX_LANES {
            if let Some(b) = new_lane(t, MAX_LANES) {
                return b;
            }
            continue;
        }
        if let Some(b) = revoke(t) {
            t.lane = b;
            return adopt(t, b);
        }
        spins += 1;
        if spins > 16 {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        } else {
            core::hint::spin_loop();
        }
    }
}

/// A new lane for `t` unless there are `max` (None); Some(None) if the
/// kernel refuses memory.
fn new_lane(t: &mut Thread, max: usize) -> Option<Option<&'static mut Block>> {
    let b = block::new_lane(max)?;
    if b.is_null() {
        return Some(None);
    }
    // SAFETY: a new lane, leased to us (busy) from the start.
    let b = unsafe { &mut *b };
    t.lane = b;
    take_bias(t, b);
    Some(adopt(t, b))
}

/// The lane `t` just leased with its lock becomes biased to it, if it
/// may be: the lock stays taken and `t` holds it as the biased owner.
fn take_bias(t: &mut Thread, b: &mut Block) {
    t.biased = false;
    if b.biasable && BIAS_OK.load(Relaxed) && t.number != 0 {
        // Inside a record before anyone can see the bias: a revoker
        // waits for this record's end.
        b.owner_in.store(true, Relaxed);
        b.bias.store(t.number, Release);
        t.biased = true;
    }
}

/// Takes a lane biased to a thread that is not inside a record, for `t`
/// (every lane is taken, and none more may be made). The lane's lock was
/// the bias holder's, so it is `t`'s now; the lane is never biased again.
#[cold]
fn revoke(t: &mut Thread) -> Option<&'static mut Block> {
    // A filter installed since the start could kill the process for the
    // barrier: then the biased lanes stay with their threads, and the
    // others share the small ones (released after every record).
    if !BIAS_OK.load(Relaxed) {
        return None;
    }
    let mut p = block::registry();
    while !p.is_null() {
        // SAFETY: lanes are never unmapped.
        let b = unsafe { &mut *p };
        p = b.next;
        let owner = b.bias.load(Relaxed);
        if owner == 0 || owner == t.number || b.owner_in.load(Relaxed) {
            continue;
        }
        // Read only with a lane to take (at most once per full lane). The
        // unit tests revoke whatever filter their runner has (membarrier
        // is theirs to call: they check that it registers).
        if !cfg!(test) && sys::seccomp_filtered() {
            BIAS_OK.store(false, Relaxed);
            return None;
        }
        if b.bias.compare_exchange(owner, 0, SeqCst, Relaxed).is_err() {
            continue;
        }
        let saved = crate::errno();
        let ordered = sys::heavy_barrier();
        crate::set_errno(saved);
        if !ordered {
            // Nothing was ordered: the owner keeps the lane, and no lane
            // is biased from now on.
            BIAS_OK.store(false, Relaxed);
            b.bias.store(owner, Release);
            return None;
        }
        let mut spins = 0u32;
        while b.owner_in.load(Acquire) {
            spins += 1;
            if spins > 16 {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            } else {
                core::hint::spin_loop();
            }
        }
        b.biasable = false;
        t.biased = false;
        return Some(b);
    }
    None
}

/// A lane just leased that another thread (or an earlier session) wrote
/// last: a stale stream starts over, and the THREAD record says whose
/// records follow.
#[cold]
#[inline(never)]
fn adopt(t: &mut Thread, b: &'static mut Block) -> Option<&'static mut Block> {
    if b.session != crate::session() {
        block::drop_buffer(b);
        // SAFETY: leased, so ours.
        unsafe { block::reset(b, true) };
    }
    let Some(mut o) = block::open(b) else {
        release(t, b);
        return None;
    };
    vmmap_wire::encode::thread(&mut o, t.number, t.tid as u64);
    o.close(b);
    b.thread = t.number;
    b.floor = t.last_tick + 1;
    b.stack_lo = t.stack_lo;
    b.stack_hi = t.stack_hi;
    Some(b)
}

/// After `fork`, in the child: only `keep` (the forking thread's record)
/// lives on.
pub fn after_fork_child(keep: *mut Thread) {
    REGISTRY_LOCK.force_unlock();
    each(|t| {
        if !core::ptr::eq(t, keep) {
            free(t);
        }
    });
}

/// The slabs of thread records, as (start, length), for the agent's
/// memory list.
pub fn own_memory(out: &mut Vec<(u64, u64)>) {
    for s in &SLABS {
        let p = s.load(Acquire);
        if !p.is_null() {
            out.push((p as u64, SLAB as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;

    /// Records made under a lease, per lane id: read and written back
    /// without a read-modify-write, so that two holders at once would
    /// lose counts.
    static COUNTS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

    fn count_under_lease(t: &mut Thread) {
        let b = lease(t).expect("a lane");
        let c = &COUNTS[b.id as usize];
        let v = c.load(Relaxed);
        for _ in 0..50 {
            core::hint::spin_loop();
        }
        c.store(v + 1, Relaxed);
        release(t, b);
    }

    struct Send(*mut Thread);
    // SAFETY: each record is used by one thread at a time in the test.
    unsafe impl core::marker::Send for Send {}

    /// Four threads hold biased lanes and four small lanes are held
    /// throughout, so that a fifth thread gets a lane only by revoking a
    /// bias; the four owners keep recording meanwhile. No record is made by
    /// two threads in one lane at once (every count is there), and a
    /// revoked lane is biased to nobody, for good.
    #[test]
    fn a_revoked_bias_leaves_one_holder_per_lane() {
        // Not setup_bias(): the mechanism is tested even where a seccomp
        // filter (a container's) would turn it off in a traced program.
        assert!(
            sys::register_heavy_barrier(),
            "membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) was refused"
        );
        BIAS_OK.store(true, Relaxed);
        let tid = sys::gettid();
        let t: Vec<*mut Thread> = (0..9).map(|_| new_thread(tid)).collect();
        let t2 = t.clone();
        let rec = move |i: usize| {
            let p: *mut Thread = t2[i];
            // SAFETY: fresh records, each used by one thread at a time below.
            unsafe { &mut *p }
        };
        for i in 0..4 {
            count_under_lease(rec(i));
            assert!(rec(i).biased, "full lane {i} not biased");
        }
        let held: Vec<_> = (4..8)
            .map(|i| {
                let b = lease(rec(i)).expect("a small lane");
                assert!(!rec(i).biased, "a small lane was biased");
                b as *mut Block
            })
            .collect();
        assert_eq!(block::lanes(), MAX_LANES);
        const N: u64 = 100_000;
        let go = std::sync::Arc::new(std::sync::Barrier::new(5));
        let workers: Vec<_> = [0usize, 1, 2, 3, 8]
            .into_iter()
            .map(|i| {
                let p = Send(t[i]);
                let go = go.clone();
                std::thread::spawn(move || {
                    let p = p;
                    go.wait();
                    // SAFETY: this record is this thread's alone now.
                    let r = unsafe { &mut *p.0 };
                    for _ in 0..N {
                        count_under_lease(r);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let total: u64 = COUNTS.iter().map(|c| c.load(Relaxed)).sum();
        assert_eq!(
            total,
            4 + 5 * N,
            "records were lost: two holders of one lane"
        );
        let mut revoked = 0;
        block::each(|b| {
            if !b.small && !b.biasable {
                revoked += 1;
                assert_eq!(b.bias.load(Relaxed), 0, "a revoked lane is biased again");
            }
        });
        assert!(
            revoked >= 1,
            "the fifth thread got a lane without a revocation"
        );
        for (i, b) in (4..8).zip(held) {
            // SAFETY: leased above by record i.
            release(rec(i), unsafe { &mut *b });
        }
    }
}
