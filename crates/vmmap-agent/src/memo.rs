//! Recent stack walks, so that a walk can stop at the first frame it
//! shares with one of them.
//!
//! Unwinding is a chain of dependent loads (a return address, its rule,
//! the next return address): about 13 cycles a frame however wide the
//! processor. Consecutive allocations mostly share their outer frames
//! (the main loop, a request handler, a thread's start), so every walk is
//! kept here: for each frame its address, stack pointer and rbp, and the
//! stack words the walk read to go on from it (the caller's return
//! address and saved rbp) with the values it read. A later walk that
//! reaches a frame with the same address and stack pointer (and rbp, when
//! the rest of the walk uses it) checks that each of those words still
//! holds the value read then. If so, the rest of the walk would read what
//! the stored one read and find the same frames, so it is taken from
//! here. The checks do not depend on each other, so the processor runs
//! them side by side: a cycle or two a frame instead of thirteen.
//!
//! Why that is sound: from a frame on, the walk is a function of the
//! frame's address (its rule), its stack pointer, its rbp (only if a rule
//! further out takes the CFA from rbp before rbp is reloaded), the
//! thread's stack top, and the stack words it loads, whose addresses
//! follow from the same inputs. Equal inputs and equal loaded words give
//! equal frames. Rules depend on the module list: a new list clears this
//! memory with the rule cache.

use crate::block::Block;

/// Frame records in the ring (a walk's records are contiguous in it).
pub const RECORDS: usize = 1024;
/// Records of a small lane's memo (see [`crate::block::FULL_LANES`]);
/// its index and filter are a quarter of the full ones too: 23 KiB
/// instead of 92.
const SMALL_RECORDS: usize = 256;
/// Slots of the index from (address, stack pointer) to records.
const INDEX: usize = 4096;
/// Records kept per (address, stack pointer) set: frames of different
/// walks meet at one address and stack pointer when their callers' frames
/// have the same sizes (recursion, sibling handlers), and each keeps its
/// own continuation.
const WAYS: usize = 4;
/// An index entry: the record's position in its low bits, bits of the
/// key's hash above them (0 is empty).
const RECORD_MASK: u32 = (RECORDS as u32) - 1;
/// A walk longer than this share of the records (a quarter) is not kept
/// (it would crowd out the rest).
const MAX_KEPT_SHARE: usize = 4;
/// A walk that stopped at a stored one is kept too when it found at
/// least this many frames of its own first (a new inner part that later
/// walks may meet again); fewer, and keeping it would cost more than
/// walking them again.
pub const KEEP_AFTER: usize = 3;
/// A walk that stopped at a stored one after fewer new frames is still
/// kept if it is this short in all and its first frame went by before:
/// a shallow program calls malloc from a handful of places in a loop one
/// or two frames below its thread's start, and walking those frames again
/// on every call cost more than all the rest of a hit.
pub const KEEP_SHORT: usize = 8;
/// Slots of the filter of first frames of walks not kept.
const SEEN: usize = 1024;

/// The frame is the agent's own: walked, not recorded.
pub const OWN: u32 = 1;
/// Its rule takes the CFA from rbp.
pub const CFA_RBP: u32 = 2;
/// Its rule reloads rbp (the caller's, saved on the stack).
pub const LOADS_BP: u32 = 4;
/// The rest of the walk from here reads this frame's rbp.
const BP_LIVE: u32 = 8;
/// The walk ended early (no rule, out of bounds).
pub const TRUNCATED: u32 = 16;
/// A saved rbp read from here outwards matters (a frame further out takes
/// its CFA from it): the checks include the saved rbp words. Code built
/// without frame pointers rarely has one, and then only the return
/// addresses are checked.
const BP_CHECKS: u32 = 32;

/// A word every check that reads nothing points at: always equal.
static NOTHING: u64 = 0x6e6f_7468_696e_6721;

/// One walked frame and the words read to go on from it.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct FrameRecord {
    /// The frame's address (a return address).
    pub ip: u64,
    /// The stack pointer in the frame.
    pub sp: u64,
    /// rbp in the frame.
    pub bp: u64,
    /// Where the caller's return address was read, and what was read.
    pub ra_at: u64,
    /// See `ra_at`.
    pub ra: u64,
    /// Where the caller's rbp was read, and what (else, or when no frame
    /// further out uses it, `NOTHING` twice).
    pub bp_at: u64,
    /// See `bp_at`.
    pub bp_val: u64,
    /// Hash of the recorded frames from this one outwards (stored walks).
    pub hash: u64,
    /// Records from this one to the walk's end, this one included.
    pub left: u16,
    /// Recorded (not the agent's) frames among them.
    pub frames: u16,
    /// [`OWN`], [`CFA_RBP`], [`LOADS_BP`], [`BP_LIVE`], [`TRUNCATED`],
    /// [`BP_CHECKS`].
    pub flags: u32,
}

impl FrameRecord {
    /// A frame that read nothing yet.
    #[inline(always)]
    pub fn new(ip: u64, sp: u64, bp: u64, flags: u32) -> FrameRecord {
        let nothing = &NOTHING as *const u64 as u64;
        FrameRecord {
            ip,
            sp,
            bp,
            ra_at: nothing,
            ra: NOTHING,
            bp_at: nothing,
            bp_val: NOTHING,
            hash: 0,
            left: 0,
            frames: 0,
            flags,
        }
    }
}

/// One thread's stored walks.
///
/// The arrays follow this header in the same mapping; their lengths are
/// [`INDEX`], [`SEEN`] and [`RECORDS`], or a quarter of each in a small
/// block.
#[repr(C)]
pub struct WalkMemo {
    head: u32,
    /// 64 - log2(sets of the index).
    set_shift: u32,
    /// Record index + 1 by (address, stack pointer); 0 is empty.
    index: *mut [u32],
    /// Tags of the first frames of recent walks that were not kept.
    seen: *mut [u32],
    records: *mut [FrameRecord],
}

/// Mixes one frame into a stack hash (outermost frame first).
#[inline(always)]
pub fn mix(h: u64, ip: u64) -> u64 {
    (h ^ ip).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

/// Final avalanche of a stack hash (never 0 for a stack).
#[inline(always)]
pub fn finish(h: u64, n: usize) -> u64 {
    let h = (h ^ n as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (h ^ (h >> 32)) | 1
}

/// The index set of (ip, sp) and the tag its entries carry.
#[inline(always)]
fn set_and_tag(ip: u64, sp: u64, set_shift: u32) -> (usize, u32) {
    let h = (ip ^ sp.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let set = (h >> set_shift) as usize * WAYS;
    (set, (h as u32 & !RECORD_MASK) | 1 << 31)
}

/// Lengths of a memo's index, filter and records.
const fn lengths(small: bool) -> [usize; 3] {
    if small {
        [INDEX / 4, SEEN / 4, SMALL_RECORDS]
    } else {
        [INDEX, SEEN, RECORDS]
    }
}

impl WalkMemo {
    /// Bytes of a mapping for a memo, full or small.
    pub const fn bytes(small: bool) -> usize {
        let [i, s, r] = lengths(small);
        core::mem::size_of::<WalkMemo>() + (i + s) * 4 + r * core::mem::size_of::<FrameRecord>()
    }

    /// Sets up an empty memo in a fresh zeroed mapping.
    ///
    /// # Safety
    /// `at` is valid for [`WalkMemo::bytes`]`(small)` bytes, zeroed, and
    /// not in use.
    pub unsafe fn init(at: *mut WalkMemo, small: bool) {
        let [i, s, r] = lengths(small);
        // SAFETY: per the contract: the arrays follow the header, each at
        // its alignment (the header and the u32 arrays are multiples of 8
        // bytes long, a record's alignment).
        unsafe {
            let index = at.add(1).cast::<u32>();
            let seen = index.add(i);
            let records = seen.add(s).cast::<FrameRecord>();
            (*at).set_shift = 64 - (i / WAYS).trailing_zeros();
            (*at).index = core::ptr::slice_from_raw_parts_mut(index, i);
            (*at).seen = core::ptr::slice_from_raw_parts_mut(seen, s);
            (*at).records = core::ptr::slice_from_raw_parts_mut(records, r);
        }
    }

    /// The index, the filter and the records.
    #[inline(always)]
    fn arrays(&self) -> (&[u32], &[u32], &[FrameRecord]) {
        // SAFETY: the arrays are this memo's own, set up by `init`, apart
        // from each other; `&self` keeps them from being changed meanwhile.
        unsafe { (&*self.index, &*self.seen, &*self.records) }
    }

    /// See [`WalkMemo::arrays`].
    #[inline(always)]
    fn arrays_mut(&mut self) -> (&mut [u32], &mut [u32], &mut [FrameRecord]) {
        // SAFETY: as in `arrays`, with `&mut self` for exclusive access.
        unsafe { (&mut *self.index, &mut *self.seen, &mut *self.records) }
    }

    /// Forgets every walk.
    pub fn clear(&mut self) {
        let (index, seen, _) = self.arrays_mut();
        index.fill(0);
        seen.fill(0);
        self.head = 0;
    }

    /// Whether a walk from the frame (ip, sp) went by unkept recently;
    /// notes that this one did.
    #[inline(always)]
    pub fn again(&mut self, ip: u64, sp: u64) -> bool {
        let (set, tag) = set_and_tag(ip, sp, self.set_shift);
        let (_, seen, _) = self.arrays_mut();
        let n = seen.len();
        // A power of two: a mask, not a division.
        let slot = &mut seen[(set / WAYS) & (n - 1)];
        let again = *slot == tag;
        *slot = tag;
        again
    }

    /// A stored record whose frame is (ip, sp, bp) and whose stack words
    /// all still hold what was read, with at most `room` recorded frames
    /// from it outwards. Only called with a frame inside the thread's
    /// stack, below `hi`.
    #[inline(always)]
    pub fn find(&self, ip: u64, sp: u64, bp: u64, room: usize) -> Option<usize> {
        let (set, tag) = set_and_tag(ip, sp, self.set_shift);
        let (index, _, records) = self.arrays();
        let ways = &index[set..set + WAYS];
        for &e in ways {
            if e & !RECORD_MASK != tag || e == 0 {
                continue;
            }
            let k = (e & RECORD_MASK) as usize;
            let r = &records[k];
            if r.ip != ip || r.sp != sp || (r.flags & BP_LIVE != 0 && r.bp != bp) {
                continue;
            }
            if r.frames as usize <= room && self.still_there(k) {
                return Some(k);
            }
        }
        None
    }

    /// Whether every stack word the walk from record `k` read still holds
    /// what it read. Checked from the outermost frame in, four frames at
    /// a time: walks that meet at one frame with different callers mostly
    /// part far out (the thread's main loop called another path), so a
    /// stale candidate fails in a few checks. The records from `k` to the
    /// end of its walk are all that walk's: walks are written in ring
    /// order, so a newer one reaching past `k` would have overwritten `k`
    /// first.
    #[inline(always)]
    fn still_there(&self, k: usize) -> bool {
        let (_, _, records) = self.arrays();
        let Some(rest) = records.get(k..k + records[k].left as usize) else {
            return false;
        };
        if records[k].flags & BP_CHECKS == 0 {
            return unchanged(rest, |r| {
                // SAFETY: the word was inside this thread's stack between
                // the stored frame's stack pointer and the stack top when
                // it was read, and the same frame is live now with the same
                // stack pointer (or it is `NOTHING`): it is mapped stack
                // above the current stack pointer.
                unsafe { core::ptr::read_unaligned(r.ra_at as *const u64) ^ r.ra }
            });
        }
        unchanged(rest, |r| {
            // SAFETY: as above, for both words.
            let (ra, bp) = unsafe {
                (
                    core::ptr::read_unaligned(r.ra_at as *const u64),
                    core::ptr::read_unaligned(r.bp_at as *const u64),
                )
            };
            (ra ^ r.ra) | (bp ^ r.bp_val)
        })
    }

    /// The stored record `k`.
    #[inline(always)]
    pub fn record(&self, k: usize) -> &FrameRecord {
        &self.arrays().2[k]
    }

    /// The stored records of the walk from `k` to its end.
    pub fn rest(&self, k: usize) -> &[FrameRecord] {
        let records = self.arrays().2;
        &records[k..k + records[k].left as usize]
    }

    /// Stores a walk: the frames `new` (innermost first; `ends` holds the
    /// flags of how it ended when it has no stored part), then the stored
    /// walk from record `k` if it stopped at one. Returns where it went,
    /// or None if it is too long to keep.
    pub fn keep(&mut self, new: &[FrameRecord], k: Option<usize>, ends: u32) -> Option<usize> {
        let head = self.head as usize;
        let (_, _, records) = self.arrays_mut();
        let left = k.map_or(0, |k| records[k].left as usize);
        let total = new.len() + left;
        if total == 0 || total > records.len() / MAX_KEPT_SHARE {
            return None;
        }
        let mut pos = head;
        if pos + total > records.len() {
            pos = 0;
        }
        let m = new.len();
        if let Some(k) = k {
            records.copy_within(k..k + left, pos + m);
        }
        records[pos..pos + m].copy_from_slice(new);
        let (mut h, mut frames, mut live, mut bp_checks, trunc) = match records.get(pos + m) {
            Some(out) if left > 0 => (
                out.hash,
                out.frames,
                out.flags & BP_LIVE != 0,
                out.flags & BP_CHECKS != 0,
                out.flags & TRUNCATED,
            ),
            _ => (0, 0, false, false, ends & TRUNCATED),
        };
        let nothing = &NOTHING as *const u64 as u64;
        for i in (pos..pos + m).rev() {
            let r = &mut records[i];
            if r.flags & OWN == 0 {
                h = mix(h, r.ip);
                frames += 1;
            }
            // The rbp this frame reloads is the next one's: `live` is
            // still the next frame's here.
            if r.flags & LOADS_BP != 0 && live {
                bp_checks = true;
            } else {
                (r.bp_at, r.bp_val) = (nothing, NOTHING);
            }
            live = r.flags & CFA_RBP != 0 || (r.flags & LOADS_BP == 0 && live);
            r.hash = h;
            r.frames = frames;
            r.left = (pos + total - i) as u16;
            r.flags = (r.flags & (OWN | CFA_RBP | LOADS_BP))
                | if live { BP_LIVE } else { 0 }
                | if bp_checks { BP_CHECKS } else { 0 }
                | trunc;
        }
        for i in pos..pos + total {
            let r = self.arrays().2[i];
            if r.flags & OWN == 0 {
                self.index_record(i, &r);
            }
        }
        self.head = (pos + total) as u32;
        Some(pos)
    }
}

impl WalkMemo {
    /// Enters record `i` in its set, first: in place of the entry for the
    /// same frame with the same frames outwards if there is one (a newer
    /// copy of it), else of the oldest.
    fn index_record(&mut self, i: usize, r: &FrameRecord) {
        let (set, tag) = set_and_tag(r.ip, r.sp, self.set_shift);
        let (index, _, records) = self.arrays_mut();
        let ways = &mut index[set..set + WAYS];
        let same = ways.iter().position(|&e| {
            let o = &records[(e & RECORD_MASK) as usize];
            e & !RECORD_MASK == tag
                && o.ip == r.ip
                && o.sp == r.sp
                && o.hash == r.hash
                && o.frames == r.frames
        });
        let w = same.unwrap_or(WAYS - 1);
        ways.copy_within(0..w, 1);
        ways[0] = tag | i as u32;
    }
}

/// Whether `changed` is 0 for every record, from the last in, four at a
/// time (one branch for four).
#[inline(always)]
fn unchanged(rest: &[FrameRecord], changed: impl Fn(&FrameRecord) -> u64) -> bool {
    let mut chunks = rest.rchunks_exact(4);
    for c in &mut chunks {
        if changed(&c[0]) | changed(&c[1]) | changed(&c[2]) | changed(&c[3]) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().fold(0, |acc, r| acc | changed(r)) == 0
}

/// Where the frames of a walk are: the block's scratch records (the
/// first `m`), then stored records from `k` on, if any.
#[derive(Clone, Copy)]
pub enum Source {
    /// `frames[..n]` of the block (frame-pointer walks).
    Frames,
    /// Scratch records `..m`, then the stored walk from `k`.
    Walked { m: usize, k: Option<usize> },
    /// The stored walk from record `k`.
    Stored { k: usize },
}

/// Writes the walk's frames into `b.frames` (a new stack: rare).
pub fn materialize(b: &mut Block, src: Source) {
    // SAFETY: the memo is this block's own mapping.
    let memo = unsafe { &*b.memo };
    let (scratch, stored): (&[FrameRecord], &[FrameRecord]) = match src {
        Source::Frames => return,
        Source::Walked { m, k } => (&b.scratch[..m], k.map_or(&[][..], |k| memo.rest(k))),
        Source::Stored { k } => (&[][..], memo.rest(k)),
    };
    let mut n = 0;
    for r in scratch.iter().chain(stored) {
        if r.flags & OWN == 0 && n < b.frames.len() {
            b.frames[n] = r.ip;
            n += 1;
        }
    }
}
