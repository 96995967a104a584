//! Heap addresses as references to recent ones (trace format 3).
//!
//! Most blocks a program frees it allocated a little earlier, and glibc
//! hands out the chunks freed last first: an address is usually one of
//! the last few thousand the same thread allocated or freed. Such an
//! address is written as its age, how many frees (for an allocated block)
//! or allocations (for a freed one) ago it went by, which takes a byte or
//! two and repeats where the program's pattern does, instead of a
//! difference from the previous address, which is as random as the heap.
//! A typical program's trace shrinks by half. The decoder keeps the same
//! rings and reads the address back from them (`vmmap_wire`
//! defines the references).

use vmmap_wire::AGE_RING;

/// Slots of each index from an address to when it went by, for the
/// first lanes ([`crate::block::FULL_LANES`]).
pub const INDEX: usize = 4096;
/// The same for later lanes: a smaller index finds fewer references
/// (the decoder is none the wiser, an address not found is written as a
/// difference) in 8 KiB instead of 128 KiB (docs/tracing.md, "Footprint").
pub const SMALL_INDEX: usize = 256;

/// Which ring an address goes into: allocated blocks (malloc's result,
/// realloc's new block) or freed ones (free's, realloc's old block).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A block handed out.
    Allocated = 0,
    /// A block given back.
    Freed = 1,
}

/// Where each class's recent addresses went by: for an address's hash,
/// the last address with that hash and its sequence number. The decoder
/// keeps the rings of addresses themselves; here an entry is enough to
/// tell that an address went by, and when (one load, not two).
#[repr(C)]
pub struct Ages {
    /// Addresses pushed so far, per class (wrapping).
    seq: [u32; 2],
    /// 64 - log2(`slots`): the hash's top bits pick the slot.
    shift: u32,
    /// Slots of each class's index.
    slots: usize,
    /// Both classes' indexes, one after the other, right after this
    /// header in the same mapping.
    index: *mut Seen,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Seen {
    a: u64,
    seq: u32,
}

#[inline(always)]
fn slot(a: u64, shift: u32) -> usize {
    ((a >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

impl Ages {
    /// Bytes of a mapping for an `Ages` of `slots` (a power of two) slots.
    pub const fn bytes(slots: usize) -> usize {
        core::mem::size_of::<Ages>() + 2 * slots * core::mem::size_of::<Seen>()
    }

    /// Sets up an empty `Ages` in a fresh zeroed mapping.
    ///
    /// # Safety
    /// `at` is valid for [`Ages::bytes`]`(slots)` bytes, zeroed, and not in use.
    pub unsafe fn init(at: *mut Ages, slots: usize) {
        // SAFETY: per the contract; the index follows the header, which
        // keeps `Seen`'s alignment (both are multiples of eight bytes).
        unsafe {
            (*at).shift = 64 - slots.trailing_zeros();
            (*at).slots = slots;
            (*at).index = at.add(1).cast::<Seen>();
        }
    }

    /// Forgets everything (a new stream).
    pub fn clear(&mut self) {
        // In place: a new thread's first hook may run on a small stack.
        self.seq = [0; 2];
        // SAFETY: the index holds 2 * slots entries (see `init`).
        unsafe { core::ptr::write_bytes(self.index, 0, 2 * self.slots) };
    }

    /// Pushes `a` (not 0) into its class and returns its age in the other
    /// class (1 for the newest), or 0 if it did not go by in the last
    /// [`AGE_RING`] of that class. An entry holds the newest push of its
    /// address (a later one would have replaced it), so the age is that
    /// of the address's last appearance, where the decoder's ring has it.
    #[inline(always)]
    pub fn note(&mut self, class: Class, a: u64) -> u32 {
        let (mine, other) = (class as usize, 1 - class as usize);
        let h = slot(a, self.shift);
        // SAFETY: h < slots; the index holds 2 * slots entries.
        let (mine_at, other_at) = unsafe {
            (
                self.index.add(mine * self.slots + h),
                self.index.add(other * self.slots + h),
            )
        };
        // SAFETY: see above.
        let e = unsafe { *other_at };
        let age = self.seq[other].wrapping_sub(e.seq);
        let found = (1..=AGE_RING as u32).contains(&age) && e.a == a;
        let n = self.seq[mine];
        // SAFETY: see above.
        unsafe { *mine_at = Seen { a, seq: n } };
        self.seq[mine] = n.wrapping_add(1);
        age * u32::from(found)
    }
}
