//! The agent's private heap: everything the agent allocates for itself
//! (Rust collections, zstd's contexts, what glibc allocates for the
//! writer thread or for `realpath`, `setenv`, `atexit` in the agent's
//! constructor) comes from here, never from the program's allocator.
//! Allocations of the agent's that reached the program's `malloc` were
//! seen by anything interposed after the agent (an independent counter
//! counted more calls than the trace held), made a malloc arena for the
//! writer thread (64 MiB of address space) and mixed the agent's blocks
//! into the program's heap.
//!
//! The heap is dlmalloc (the `dlmalloc` crate, the allocator behind
//! Rust's wasm targets: no dependency on libc's allocator, its C-shaped
//! calls need no layout on free or realloc), fed from one range of
//! [`RESERVE`] bytes mapped on first use with a raw system call
//! (`MAP_NORESERVE`: pages cost memory only once touched). One range
//! makes "is this pointer the agent's" a subtraction and a comparison,
//! which `free` and `realloc` ask of every pointer the program frees.
//! One spin lock serialises it: the agent allocates rarely, mostly on
//! its writer thread.
//!
//! A full heap returns null. The agent's Rust allocations then take a
//! mapping of their own ([`map_block`]), never the program's allocator:
//! a fallback there once showed as two aligned allocations the trace did
//! not hold (an independent counter after the agent saw them). The C
//! hooks serving glibc on the agent's behalf still fall back to the
//! program's allocator, so that the agent never makes the program fail
//! for want of its own memory.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};

use dlmalloc::{Allocator, Dlmalloc};

use crate::sys::SpinLock;

/// Address space reserved for the heap (see `docs/tracing.md`,
/// "Footprint"). zstd's context (under 1 MiB at level 1) is the bulk of
/// what it holds (about 560 KiB in all under python3 with numpy); the
/// writer's staging buffers, 3.3 MiB, are mappings of their own
/// ([`DIRECT`]). It was 6 MiB when it held them.
pub const RESERVE: usize = 3 << 20;

/// Where the range starts; until it is mapped, a kernel address no user
/// pointer can be in, so that [`contains`] needs no other test.
static BASE: AtomicUsize = AtomicUsize::new(usize::MAX - RESERVE);
/// Bytes of the range handed to dlmalloc so far.
static USED: AtomicUsize = AtomicUsize::new(0);
static LOCK: SpinLock = SpinLock::new();

/// While set, dlmalloc may give the free top of its one segment back
/// ([`trim`]): only then, so that tracing never pays for a page given
/// back and touched again.
static RELEASING: AtomicBool = AtomicBool::new(false);

/// The range, handed out in increasing, adjacent pieces: dlmalloc merges
/// each new piece with the top of the last one. Only [`trim`] gives the
/// end of it back.
struct Span;

// SAFETY: alloc hands out disjoint, fresh, zeroed pieces of one private
// mapping that is never unmapped; a piece given back by free_part is the
// end of what was handed out, its pages are emptied (zero when touched
// again) and it is handed out again from there.
unsafe impl Allocator for Span {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let fail = (core::ptr::null_mut(), 0, 0);
        if USED.load(Relaxed) == 0 && BASE.load(Relaxed) == usize::MAX - RESERVE {
            let p = crate::sys::map_anon_with(RESERVE, libc::MAP_NORESERVE);
            if p.is_null() {
                return fail;
            }
            BASE.store(p as usize, Release);
        }
        let used = USED.load(Relaxed);
        if RESERVE - used < size {
            return fail;
        }
        USED.store(used + size, Relaxed);
        ((BASE.load(Relaxed) + used) as *mut u8, size, 0)
    }
    fn remap(&self, _: *mut u8, _: usize, _: usize, _: bool) -> *mut u8 {
        core::ptr::null_mut()
    }
    fn free_part(&self, base: *mut u8, old: usize, new: usize) -> bool {
        let (start, used) = (BASE.load(Relaxed), USED.load(Relaxed));
        // Only the end of the range handed out (dlmalloc's one segment).
        if base as usize + old != start + used || new > old {
            return false;
        }
        // SAFETY: pages of our own mapping that dlmalloc no longer uses;
        // the mapping stays, its pages read as zeros when touched again.
        let r = unsafe {
            libc::syscall(
                libc::SYS_madvise,
                base as usize + new,
                old - new,
                libc::MADV_DONTNEED,
            )
        };
        if r != 0 {
            return false;
        }
        USED.store(base as usize + new - start, Relaxed);
        true
    }
    fn free(&self, _: *mut u8, _: usize) -> bool {
        false
    }
    fn can_release_part(&self, _: u32) -> bool {
        RELEASING.load(Relaxed)
    }
    fn allocates_zeros(&self) -> bool {
        true
    }
    fn page_size(&self) -> usize {
        4096
    }
}

struct Heap(core::cell::UnsafeCell<Dlmalloc<Span>>);
// SAFETY: only used with LOCK held.
unsafe impl Sync for Heap {}
static HEAP: Heap = Heap(core::cell::UnsafeCell::new(Dlmalloc::new_with_allocator(
    Span,
)));

fn with<R>(f: impl FnOnce(&mut Dlmalloc<Span>) -> R) -> R {
    let _g = LOCK.lock();
    // SAFETY: LOCK gives this thread the only access.
    f(unsafe { &mut *HEAP.0.get() })
}

/// Whether `p` is a block of the private heap.
#[inline(always)]
pub fn contains(p: *const c_void) -> bool {
    (p as usize).wrapping_sub(BASE.load(Relaxed)) < RESERVE
}

/// The heap's range, once mapped: the agent's memory.
pub fn range() -> Option<(u64, u64)> {
    let b = BASE.load(Acquire);
    (USED.load(Relaxed) > 0).then_some((b as u64, RESERVE as u64))
}

/// `malloc` from the private heap (null when it is full).
pub fn malloc(size: usize) -> *mut c_void {
    // SAFETY: dlmalloc's C-shaped call.
    with(|h| unsafe { h.c_malloc(size) }) as *mut c_void
}

/// `calloc` from the private heap.
pub fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        return core::ptr::null_mut();
    };
    // SAFETY: align 16 is dlmalloc's own; calloc zeroes what is reused.
    with(|h| unsafe { h.calloc(total, 16) }) as *mut c_void
}

/// `memalign` from the private heap (`align` a power of two).
pub fn memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: per the contract, a power of two.
    with(|h| unsafe { h.c_memalign(align, size) }) as *mut c_void
}

/// `realloc` of a private block (or null).
///
/// # Safety
/// `p` is null or a live block of the private heap.
pub unsafe fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: per the contract.
    with(|h| unsafe { h.c_realloc(p as *mut u8, size) }) as *mut c_void
}

/// `free` of a private block.
///
/// # Safety
/// `p` is a live block of the private heap.
pub unsafe fn free(p: *mut c_void) {
    // SAFETY: per the contract.
    with(|h| unsafe { h.c_free(p as *mut u8) })
}

/// Gives the free end of the heap back to the kernel (its pages, not its
/// address range): after a detach, the compressor is freed, and what it
/// held would otherwise stay resident in the program for good.
pub fn trim() {
    with(|h| {
        RELEASING.store(true, Relaxed);
        // SAFETY: dlmalloc's own trim, under the heap's lock.
        unsafe { h.trim(0) };
        RELEASING.store(false, Relaxed);
    });
}

/// `malloc_usable_size` of a private block: its chunk's size less the
/// chunk's one word of overhead. Read from dlmalloc's chunk header (the
/// word before the block: size and three flag bits), whose layout is
/// dlmalloc's documented format; the crate does not expose it, and this
/// heap has no mmapped chunks (whose overhead differs).
///
/// # Safety
/// `p` is a live block of the private heap.
pub unsafe fn usable_size(p: *const c_void) -> usize {
    // SAFETY: per the contract, the chunk header precedes p.
    let head = unsafe { *((p as usize - core::mem::size_of::<usize>()) as *const usize) };
    (head & !7) - core::mem::size_of::<usize>()
}

/// Bytes before a [`map_block`] block: its mapping's start and length
/// are in the 16 bytes just before the block.
const PAGE: usize = 4096;

/// Rust allocations of at least this many bytes get a mapping of their
/// own rather than heap space: the writer's staging columns and
/// compressed output (each up to 1 MiB, made once per writer) and large
/// reads of `/proc/self/maps`. Unmapped when freed, they leave nothing
/// resident behind, where freed heap space stays resident unless it is
/// the heap's end ([`trim`]: after a detach, up to 2.8 MB of the heap
/// stayed when they lived there).
pub const DIRECT: usize = 256 << 10;

/// The live [`map_block`] mappings, as (start, length), for AGENT_MEMORY:
/// made after the writer started (an attached agent's, a large maps
/// read), no look at the maps finds them as the agent's. A slot is free
/// while its start is 0. More blocks than slots are still made, only not
/// listed.
static MAPPED: [(AtomicUsize, AtomicUsize); 32] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; 32];

fn remember_mapping(base: usize, len: usize) {
    for (start, size) in &MAPPED {
        if start.compare_exchange(0, base, AcqRel, Relaxed).is_ok() {
            size.store(len, Release);
            return;
        }
    }
}

fn forget_mapping(base: usize) {
    for (start, size) in &MAPPED {
        if start.load(Acquire) == base {
            size.store(0, Relaxed);
            start.store(0, Release);
            return;
        }
    }
}

/// The mappings of the live [`map_block`] blocks, as (start, length).
pub fn own_blocks(out: &mut Vec<(u64, u64)>) {
    for (start, size) in &MAPPED {
        let (b, l) = (start.load(Acquire), size.load(Acquire));
        if b != 0 && l != 0 {
            out.push((b as u64, l as u64));
        }
    }
}

/// A block the heap has no room for, in a mapping of its own named as the
/// agent's (so snapshots count it apart): a page of header, then the
/// block at `align`. Null if the kernel refuses.
pub fn map_block(align: usize, size: usize) -> *mut c_void {
    let align = align.max(16);
    let Some(len) = size
        .checked_add(PAGE + align.saturating_sub(PAGE))
        .map(|l| l.next_multiple_of(PAGE))
    else {
        return core::ptr::null_mut();
    };
    let base = crate::sys::map_anon(len);
    if base.is_null() {
        return base.cast();
    }
    let block = (base as usize + PAGE).next_multiple_of(align);
    // SAFETY: block - 16 .. block lies in the header page, ours.
    unsafe {
        let head = (block - 16) as *mut usize;
        head.write(base as usize);
        head.add(1).write(len);
    }
    remember_mapping(base as usize, len);
    block as *mut c_void
}

/// Unmaps a block made by [`map_block`].
///
/// # Safety
/// `p` is a live block from [`map_block`].
pub unsafe fn unmap_block(p: *mut c_void) {
    // SAFETY: per the contract, the header precedes p.
    let (base, len) = unsafe {
        let head = (p as usize - 16) as *const usize;
        (head.read(), head.add(1).read())
    };
    forget_mapping(base);
    // SAFETY: the whole mapping was made for this block alone.
    unsafe { libc::syscall(libc::SYS_munmap, base, len) };
}

/// Before `fork`: no other thread may hold the heap's lock across it
/// (the child would wait for it forever).
pub extern "C" fn before_fork() {
    core::mem::forget(LOCK.lock());
}

/// After `fork`, in the parent and in the child: the lock taken by
/// [`before_fork`] is released.
pub extern "C" fn after_fork() {
    LOCK.force_unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks the heap has no room for: aligned as asked, writable to the
    /// last byte, outside the heap's range (so `free` tells them apart),
    /// and unmapped whole.
    #[test]
    fn mapped_blocks_are_aligned_apart_and_given_back() {
        for (align, size) in [(16, 1), (16, 3 << 20), (4096, 4096), (1 << 16, 100_000)] {
            let p = map_block(align, size);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "align {align}");
            assert!(!contains(p));
            let listed = |p: *mut c_void| {
                let mut own = Vec::new();
                own_blocks(&mut own);
                own.iter()
                    .any(|&(s, l)| s <= p as u64 && (p as u64) < s + l)
            };
            assert!(listed(p), "the block's mapping is listed as the agent's");
            // SAFETY: the block is size bytes, ours.
            unsafe {
                core::ptr::write_bytes(p as *mut u8, 0xa5, size);
                unmap_block(p);
            }
            assert!(!listed(p), "an unmapped block is no longer listed");
        }
    }
}
