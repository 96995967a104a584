//! The bytes a traced run writes, and all that the preload agent
//! (`vmmap-agent`) shares with the readers of its files: the native
//! container's header and chunks ([`container`]), the trace messages and
//! records below, the LEB128 varint codec every part of vmmap uses, and the
//! GNU build id as a module record carries it ([`find_build_id_note`]),
//! and how a launched run names and hands over its trace files
//! ([`files`]).
//! The agent depends on this crate alone, so that what is loaded into
//! every traced program stays small; the decoder is `vmmap_trace`.
//! Documented in `docs/trace-format.md`.
//!
//! A traced run writes ordinary native-format chunks of kind
//! [`container::CHUNK_TRACE`]; the first byte of each payload is a
//! [`MessageKind`]. Event messages hold a zstd frame of *segments*; a
//! segment is a slice of one thread's event stream, and each thread's
//! segments arrive in order. Records start with an [`EventKind`] and are
//! variable-length: integers are LEB128 varints, signed ones zigzag-coded,
//! and addresses are coded as the difference from the previous address in
//! the same stream, which keeps heap pointers to two or three bytes. The
//! agent and the tests write records with the one encoder, [`encode`].

pub mod attach;
pub mod container;
pub mod encode;
pub mod files;
mod note;
#[cfg(feature = "test-support")]
pub mod synthetic;

pub use note::find_build_id_note;

/// Version of the messages below; the agent writes it in
/// [`MessageKind::Hello`]. Segments keep each record's head (tag and
/// tick), other fields and addresses in three parts, and write a heap
/// address as a reference to a recent one when it can ([`HEAP_REF`]); an
/// EVENTS message puts each kind of part of all its segments together,
/// after a directory of the segments. A stream is a lane of the agent's,
/// which threads take turns at: [`EventKind::Thread`] says whose records
/// follow (version 5; in version 4 a stream was one thread). Versions 4
/// and 5 are read ([`OLDEST_TRACE_VERSION`]); 1 to 3 were written by
/// development builds before the first release (`docs/trace-format.md`).
pub const TRACE_VERSION: u32 = 5;

/// The oldest version readers still take: 4, whose streams were threads
/// (a version-4 file simply has no [`EventKind::Thread`] records).
pub const OLDEST_TRACE_VERSION: u32 = 4;

/// How many of its recent heap addresses of each class (blocks
/// allocated, blocks freed) a stream remembers for references.
pub const AGE_RING: usize = 4096;

/// A heap address: one varint `h`. Odd, it is a reference to a
/// recent heap address: `h >> 1` is its age, how many addresses ago it
/// went by in the other class's ring (1: the newest; 0 is the null
/// pointer, realloc's absent old or new block). Even, `h >> 1` is the
/// address itself, zigzag-coded as the difference from the stream's
/// previous explicit address. Every heap address but null then goes into
/// its own class's ring: a block allocated (malloc, calloc, the aligned
/// calls, realloc's new block) or freed (free, realloc's old block).
pub const HEAP_REF: u64 = 1;

/// Declares a `#[repr(u8)]` enum of wire kinds and its `TryFrom<u8>`
/// from one list, so a kind cannot be added to one and not the other.
/// Written by hand: a derive crate (num_enum) would add three proc-macro
/// packages to the agent's build for a dozen lines.
macro_rules! wire_kinds {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl TryFrom<u8> for $name {
            /// The byte, which names no kind (damage, or a newer agent).
            type Error = u8;

            #[inline(always)]
            fn try_from(b: u8) -> Result<$name, u8> {
                match b {
                    $( $value => Ok($name::$variant), )+
                    _ => Err(b),
                }
            }
        }
    };
}

wire_kinds! {
    /// The type of a trace message: the first byte of a trace chunk's
    /// payload. Readers skip a type they do not know (a newer agent's).
    pub enum MessageKind {
        /// Process facts at agent start: version, pid, ppid, page size,
        /// clock anchor, flags, executable and command line.
        Hello = 1,
        /// The loaded modules (path, load bias, build id, PT_LOAD
        /// segments), sent whenever the set changes, for symbolisation
        /// later and elsewhere.
        Modules = 2,
        /// A zstd frame of event segments.
        Events = 3,
        /// `/proc/self/maps` as the agent saw it (zstd), when it changed:
        /// the mappings glibc made through calls no hook sees.
        Maps = 4,
        /// A (tick, CLOCK_MONOTONIC ns, CLOCK_REALTIME ns) triple, to turn
        /// event ticks into times.
        Clock = 5,
        /// The agent stopped cleanly: its counters, then why it stopped
        /// ([`END_EXIT`], [`END_SECCOMP`], [`END_ALONE`], [`END_NO_WRITER`]
        /// with its error number; absent before 2026-12-07, read as
        /// [`END_EXIT`]).
        End = 6,
        /// The agent's own memory: (start, length) ranges, sent with each
        /// MAPS message so its buffers and its writer thread's heap are not
        /// taken for the program's.
        AgentMemory = 7,
    }
}

/// The `flags` bit of the HELLO message of an image whose program defines
/// its own `malloc` (a statically linked allocator, such as Chromium's
/// PartitionAlloc): its allocations do not go through the agent, only its
/// mappings and other calls do. (Bit 1: frame-pointer stacks; bit 2:
/// [`attach::HELLO_ATTACHED`].)
pub const HELLO_OWN_MALLOC: u64 = 4;

/// Why the agent stopped (END's last field): the program's exit, exec,
/// or a detach.
pub const END_EXIT: u64 = 0;
/// Why the agent stopped: the program was about to put itself under a
/// seccomp filter that might kill it for a call of the agent's, or strict
/// mode. Nothing after is recorded.
pub const END_SECCOMP: u64 = 1;
/// Why the agent stopped: the program made a call the kernel refuses to a
/// process with a second thread (`unshare` of a user namespace, `setns`
/// into a user or mount namespace), the agent's writer left for it, and
/// the trace file could not be opened again afterwards. Nothing after is
/// recorded.
pub const END_ALONE: u64 = 2;
/// Why the agent stopped: it could not start its writer thread (one more
/// varint follows: the error number, 0 when there was none, as when the
/// thread could not take a descriptor table of its own). Written by the
/// thread that tried; nothing after is recorded, and the program runs on
/// untraced.
pub const END_NO_WRITER: u64 = 3;

wire_kinds! {
    /// The tag of an event record: its first byte, in the heads part.
    /// The allocation kinds share one record layout. A tag no kind has is
    /// damage: the decoder stops at it.
    pub enum EventKind {
        /// `malloc`.
        Malloc = 1,
        /// `calloc(n, size)`; the size recorded is `n * size`.
        Calloc = 2,
        /// `realloc` and `reallocarray`: old pointer, new pointer, size.
        Realloc = 3,
        /// `memalign`, `posix_memalign`, `aligned_alloc`, `valloc`,
        /// `pvalloc`: an allocation record plus its alignment.
        Memalign = 4,
        /// `free` (and `realloc`'s implicit free is in
        /// [`EventKind::Realloc`]).
        Free = 5,
        /// `mmap`/`mmap64` that succeeded.
        Mmap = 6,
        /// `munmap`.
        Munmap = 7,
        /// `mremap` that succeeded.
        Mremap = 8,
        /// `mprotect`.
        Mprotect = 9,
        /// `madvise`.
        Madvise = 10,
        /// `brk` or `sbrk` that moved the break: old and new break.
        Brk = 11,
        /// First record of every stream: absolute tick, tid, stack bounds.
        ThreadStart = 12,
        /// The thread's key destructor ran.
        ThreadExit = 13,
        /// `pthread_setname_np` on this or another thread.
        ThreadName = 14,
        /// `dlopen` that returned a handle.
        Dlopen = 15,
        /// `dlclose`.
        Dlclose = 16,
        /// A call stack's definition: stream-local id, flags, frames.
        Stack = 17,
        /// `pthread_create` returned: the new thread's pthread handle.
        ThreadCreate = 18,
        /// `fork()` returned in the parent: child pid.
        Fork = 19,
        /// An `exec*` call is about to replace the image.
        Exec = 20,
        /// *No tick:* the records that follow in this stream are those of
        /// the thread with this number (unique in the image) and kernel
        /// id, until the next such record (version 5).
        Thread = 21,
    }
}

/// What a record holds in the fields part after its head, as the encoder
/// ([`encode`]) writes it and `docs/trace-format.md` lists it: `lead`
/// varints, a text (its length, then its bytes) when `text` is set, then
/// `trail` varints. The decoder reads each field by name; a reader that
/// only steps over records (the follower's skim) steps by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLayout {
    /// Varints before the text.
    pub lead: u8,
    /// Whether a text follows them.
    pub text: bool,
    /// Varints after the text (a stack id, for the kinds with one).
    pub trail: u8,
}

impl FieldLayout {
    const fn ints(lead: u8) -> Option<FieldLayout> {
        Some(FieldLayout {
            lead,
            text: false,
            trail: 0,
        })
    }

    const fn with_text(lead: u8, trail: u8) -> Option<FieldLayout> {
        Some(FieldLayout {
            lead,
            text: true,
            trail,
        })
    }

    /// Steps `c` over one record's fields; `None` if they are cut short.
    #[inline]
    pub fn skip(self, c: &mut Cursor<'_>) -> Option<()> {
        for _ in 0..self.lead {
            c.uvarint()?;
        }
        if self.text {
            c.bytes()?;
        }
        for _ in 0..self.trail {
            c.uvarint()?;
        }
        Some(())
    }
}

impl EventKind {
    /// This kind's fields; `None` for the three kinds laid out otherwise
    /// (STACK: a counted list of frames; THREAD and THREAD_START: no tick
    /// difference in the heads, THREAD_START an absolute tick instead).
    pub const fn fields(self) -> Option<FieldLayout> {
        use EventKind as K;
        match self {
            K::Free => FieldLayout::ints(0),
            // size, stack; munmap: length, stack
            K::Malloc | K::Calloc | K::Realloc | K::Munmap => FieldLayout::ints(2),
            // size, stack, alignment; length, protection or advice, stack;
            // new break, sbrk or not, stack
            K::Memalign | K::Mprotect | K::Madvise | K::Brk => FieldLayout::ints(3),
            K::Mremap => FieldLayout::ints(5),
            K::Mmap => FieldLayout::ints(6),
            K::ThreadExit => FieldLayout::with_text(0, 0),
            K::ThreadName => FieldLayout::with_text(1, 0),
            // handle or pid, an empty text, the stack
            K::ThreadCreate | K::Dlclose | K::Fork => FieldLayout::with_text(1, 1),
            K::Dlopen => FieldLayout::with_text(2, 1),
            K::Exec => FieldLayout::with_text(0, 1),
            K::Stack | K::Thread | K::ThreadStart => None,
        }
    }
}

/// [`EventKind::Stack`] flag: the unwind stopped at the depth cap or on a frame it
/// could not unwind, so outer frames are missing.
pub const STACK_TRUNCATED: u8 = 1;

/// The deepest stack the agent records.
pub const MAX_FRAMES: usize = 128;

/// Event ticks are the CPU's time-stamp counter shifted right by this much
/// (about 85 ns per unit on a 3 GHz TSC: fine enough to order
/// a free before the allocation that reuses its block, coarse enough that
/// the deltas of a busy thread are mostly 0 or 1).
pub const TICK_SHIFT: u32 = 8;

/// Writes `v` as a LEB128 varint at `buf[pos..]`; returns the new position.
/// The caller guarantees 10 free bytes.
#[inline(always)]
pub fn put_uvarint(buf: &mut [u8], mut pos: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[pos] = (v as u8) | 0x80;
        v >>= 7;
        pos += 1;
    }
    buf[pos] = v as u8;
    pos + 1
}

/// Zigzag-codes a signed value so small magnitudes stay short.
#[inline(always)]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Undoes [`zigzag`].
#[inline(always)]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A bounds-checked reader over a byte slice; every read fails cleanly at
/// the end instead of panicking, since the bytes come from a file.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Starts at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The read position.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next byte, not consumed.
    pub fn peek_u8(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        let s = self.take(4)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }

    /// A LEB128 varint of at most 10 bytes.
    #[inline(always)]
    pub fn uvarint(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.pos..)?;
        // Most values (deltas, sizes, stack ids) fit in one byte.
        if let Some(&b) = rest.first() {
            if b < 0x80 {
                self.pos += 1;
                return Some(u64::from(b));
            }
        }
        self.uvarint_wide()
    }

    /// [`Cursor::uvarint`] for values whose length is unpredictable (a
    /// heap address, one or two bytes for a reference and three
    /// or four for an address): no branch on the first byte, which
    /// mispredicted on half of them.
    #[inline(always)]
    pub fn uvarint_random(&mut self) -> Option<u64> {
        self.uvarint_wide()
    }

    #[inline(always)]
    fn uvarint_wide(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.pos..)?;
        // Away from the end, one of up to eight bytes (an address delta) is
        // decoded from one 64-bit load without a branch per byte: this is
        // the decoder's hottest function.
        if let Some(w) = rest.get(..8) {
            let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            // The high bit of each byte that ends a varint is clear.
            let stop = !x & 0x8080_8080_8080_8080;
            if stop != 0 {
                // Keep the bytes up to and including the last one, then
                // squeeze out the continuation bits, 7 bits per byte.
                let x = x & (stop ^ (stop - 1));
                let x = ((x & 0x7f00_7f00_7f00_7f00) >> 1) | (x & 0x007f_007f_007f_007f);
                let x = ((x & 0x3fff_0000_3fff_0000) >> 2) | (x & 0x0000_3fff_0000_3fff);
                let x = ((x & 0x0fff_ffff_0000_0000) >> 4) | (x & 0x0000_0000_0fff_ffff);
                self.pos += (stop.trailing_zeros() as usize + 1) / 8;
                return Some(x);
            }
        }
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A zigzag varint.
    #[inline(always)]
    pub fn ivarint(&mut self) -> Option<i64> {
        self.uvarint().map(unzigzag)
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// A varint length followed by that many bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        self.take(n)
    }
}

/// Appends a varint to a growable buffer (the agent's writer thread and
/// tests; the hooks use [`put_uvarint`] on a reserved slice).
pub fn push_uvarint(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let n = put_uvarint(&mut tmp, 0, v);
    out.extend_from_slice(&tmp[..n]);
}

/// Appends a varint length and the bytes.
pub fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    push_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v: u64, s: i64) {
            let mut out = Vec::new();
            push_uvarint(&mut out, v);
            push_uvarint(&mut out, zigzag(s));
            let mut c = Cursor::new(&out);
            prop_assert_eq!(c.uvarint(), Some(v));
            prop_assert_eq!(c.ivarint(), Some(s));
            prop_assert_eq!(c.remaining(), 0);
        }

        /// Values of every length, with other bytes after them (the
        /// one-load path) and at the very end (the byte-by-byte path).
        #[test]
        fn varints_decode_alike_mid_buffer_and_at_the_end(
            bits in 0u32..64, v: u64, tail in proptest::collection::vec(any::<u8>(), 0..12)
        ) {
            let v = if bits == 0 { 0 } else { v >> (64 - bits) };
            let mut out = Vec::new();
            push_uvarint(&mut out, v);
            let len = out.len();
            out.extend_from_slice(&tail);
            let mut c = Cursor::new(&out);
            prop_assert_eq!(c.uvarint(), Some(v));
            prop_assert_eq!(c.position(), len);
        }
    }

    #[test]
    fn kinds_round_trip_through_their_byte_and_others_are_refused() {
        let events = (0..=u8::MAX).filter_map(|b| EventKind::try_from(b).ok());
        assert!(events.enumerate().all(|(i, k)| k as u8 == i as u8 + 1));
        assert_eq!(EventKind::try_from(20), Ok(EventKind::Exec));
        assert_eq!(EventKind::try_from(21), Ok(EventKind::Thread));
        assert_eq!(EventKind::try_from(0), Err(0));
        assert_eq!(EventKind::try_from(22), Err(22));
        let messages = (0..=u8::MAX).filter_map(|b| MessageKind::try_from(b).ok());
        assert!(messages.enumerate().all(|(i, k)| k as u8 == i as u8 + 1));
        assert_eq!(MessageKind::try_from(7), Ok(MessageKind::AgentMemory));
        assert_eq!(MessageKind::try_from(8), Err(8));
    }

    #[test]
    fn truncated_and_overlong_varints_fail() {
        assert_eq!(Cursor::new(&[0x80]).uvarint(), None);
        assert_eq!(Cursor::new(&[0xff; 11]).uvarint(), None);
        assert_eq!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).uvarint(),
            None
        );
        assert_eq!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).uvarint(),
            Some(u64::MAX)
        );
    }
}
