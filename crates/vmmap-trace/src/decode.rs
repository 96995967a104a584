//! Decoding a traced run: messages in, time-ordered [`Record`]s out.
//!
//! Sans-IO: [`Decoder::feed`] takes one trace chunk's payload at a time.
//! Each thread's events arrive in order, but different threads' buffers
//! reach the file at different times, so records wait in a heap until no
//! earlier record can still come: the agent stamps every event chunk with
//! the tick its writer pass started, and everything older than the
//! previous chunk's stamp is already in the file.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;

use super::wire::*;

/// What went wrong reading trace data. Decoding stops at the bad message;
/// everything before it stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// A message is cut short or inconsistent.
    #[error("trace message {index} is damaged: {reason}")]
    Corrupt {
        /// Message number, from 0.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// Written by a newer agent.
    #[error("trace version {0} is newer than this vmmap understands; upgrade vmmap")]
    NewerVersion(u64),
    /// Written by a development build before the first release, in a
    /// format no release reads or writes.
    #[error("trace version {0} was written by a development build of vmmap before its first release and is not read (this vmmap reads versions {oldest} to {current}); record the program again with `vmmap run`", oldest = OLDEST_TRACE_VERSION, current = TRACE_VERSION)]
    OlderVersion(u64),
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `malloc` (kind [`EventKind::Malloc`]), `calloc`
    /// ([`EventKind::Calloc`]) or an aligned allocation
    /// ([`EventKind::Memalign`], with its alignment).
    Alloc {
        /// Which call.
        kind: EventKind,
        /// The block.
        ptr: u64,
        /// Bytes requested.
        size: u64,
        /// Alignment asked for (0 = none).
        align: u64,
        /// Call stack id (0 = none).
        stack: u32,
    },
    /// `realloc`/`reallocarray`; `old` 0 is an allocation, `new` 0 a free.
    Realloc {
        /// The block before.
        old: u64,
        /// The block after.
        new: u64,
        /// Bytes requested.
        size: u64,
        /// Call stack id.
        stack: u32,
    },
    /// `free`.
    Free {
        /// The block.
        ptr: u64,
    },
    /// `mmap`.
    Mmap {
        /// Where it landed.
        addr: u64,
        /// Length asked for.
        len: u64,
        /// PROT_* bits.
        prot: u32,
        /// MAP_* bits.
        flags: u32,
        /// File descriptor (-1 for anonymous).
        fd: i32,
        /// File offset.
        offset: u64,
        /// Call stack id.
        stack: u32,
    },
    /// `munmap`.
    Munmap {
        /// Start.
        addr: u64,
        /// Length.
        len: u64,
        /// Call stack id.
        stack: u32,
    },
    /// `mremap`.
    Mremap {
        /// Old start.
        old: u64,
        /// Old length.
        old_len: u64,
        /// New start.
        new: u64,
        /// New length.
        new_len: u64,
        /// MREMAP_* bits.
        flags: u32,
        /// Call stack id.
        stack: u32,
    },
    /// `mprotect`.
    Mprotect {
        /// Start.
        addr: u64,
        /// Length.
        len: u64,
        /// PROT_* bits.
        prot: u32,
        /// Call stack id.
        stack: u32,
    },
    /// `madvise`.
    Madvise {
        /// Start.
        addr: u64,
        /// Length.
        len: u64,
        /// MADV_* value.
        advice: u32,
        /// Call stack id.
        stack: u32,
    },
    /// `brk` or `sbrk` moved the program break.
    Brk {
        /// Break before.
        old: u64,
        /// Break after.
        new: u64,
        /// Made by `sbrk` (else `brk`).
        sbrk: bool,
        /// Call stack id.
        stack: u32,
    },
    /// A thread's first record.
    ThreadStart {
        /// Its pthread handle.
        pthread: u64,
        /// Its stack's low end.
        stack_lo: u64,
        /// Its stack's high end.
        stack_hi: u64,
    },
    /// The thread exited.
    ThreadExit,
    /// `pthread_setname_np`.
    ThreadName {
        /// The renamed thread's pthread handle.
        pthread: u64,
        /// The name.
        name: String,
    },
    /// `pthread_create` made a thread.
    ThreadCreate {
        /// The new thread's pthread handle.
        pthread: u64,
        /// Call stack id.
        stack: u32,
    },
    /// `dlopen`.
    Dlopen {
        /// The handle returned.
        handle: u64,
        /// RTLD_* flags (without RTLD_DEEPBIND, which the agent drops).
        flags: u32,
        /// The path asked for.
        path: String,
        /// Call stack id.
        stack: u32,
    },
    /// `dlclose`.
    Dlclose {
        /// The handle.
        handle: u64,
        /// Call stack id.
        stack: u32,
    },
    /// `fork` returned in the parent.
    Fork {
        /// The child.
        pid: u32,
        /// Call stack id.
        stack: u32,
    },
    /// An `exec*` call was about to replace the image.
    Exec {
        /// The program.
        path: String,
        /// Call stack id.
        stack: u32,
    },
}

/// Every operation name [`Event::name`] gives, in the order of
/// [`Event::operation`] (for filters that check a user's list).
pub const OPERATIONS: [&str; 20] = [
    "malloc",
    "calloc",
    "memalign",
    "realloc",
    "free",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "sbrk",
    "thread-start",
    "thread-exit",
    "thread-name",
    "pthread_create",
    "dlopen",
    "dlclose",
    "fork",
    "exec",
];

impl Event {
    /// The block a heap operation hands out: (address, bytes requested,
    /// stack), for an allocation and a realloc that returned a block.
    #[inline]
    pub fn allocated(&self) -> Option<(u64, u64, u32)> {
        match *self {
            Event::Alloc {
                ptr, size, stack, ..
            } => Some((ptr, size, stack)),
            Event::Realloc {
                new, size, stack, ..
            } if new != 0 => Some((new, size, stack)),
            _ => None,
        }
    }

    /// The block a heap operation gives back: a free's, or a realloc's old
    /// block.
    #[inline]
    pub(crate) fn freed(&self) -> Option<u64> {
        match *self {
            Event::Free { ptr } => Some(ptr),
            Event::Realloc { old, .. } if old != 0 => Some(old),
            _ => None,
        }
    }

    /// The id of the call stack recorded with it (0: none; frees and thread
    /// records carry none).
    pub fn stack(&self) -> u32 {
        match self {
            Event::Alloc { stack, .. }
            | Event::Realloc { stack, .. }
            | Event::Mmap { stack, .. }
            | Event::Munmap { stack, .. }
            | Event::Mremap { stack, .. }
            | Event::Mprotect { stack, .. }
            | Event::Madvise { stack, .. }
            | Event::Brk { stack, .. }
            | Event::ThreadCreate { stack, .. }
            | Event::Dlopen { stack, .. }
            | Event::Dlclose { stack, .. }
            | Event::Fork { stack, .. }
            | Event::Exec { stack, .. } => *stack,
            Event::Free { .. }
            | Event::ThreadStart { .. }
            | Event::ThreadExit
            | Event::ThreadName { .. } => 0,
        }
    }

    /// The operation's name, as the history shows it.
    pub fn name(&self) -> &'static str {
        OPERATIONS[self.operation()]
    }

    /// The index of the operation in [`OPERATIONS`] (a trace summary
    /// counts the calls of each in an array).
    #[inline]
    pub(crate) fn operation(&self) -> usize {
        match self {
            Event::Alloc {
                kind: EventKind::Calloc,
                ..
            } => 1,
            Event::Alloc {
                kind: EventKind::Memalign,
                ..
            } => 2,
            Event::Alloc { .. } => 0,
            Event::Realloc { .. } => 3,
            Event::Free { .. } => 4,
            Event::Mmap { .. } => 5,
            Event::Munmap { .. } => 6,
            Event::Mremap { .. } => 7,
            Event::Mprotect { .. } => 8,
            Event::Madvise { .. } => 9,
            Event::Brk { sbrk: false, .. } => 10,
            Event::Brk { sbrk: true, .. } => 11,
            Event::ThreadStart { .. } => 12,
            Event::ThreadExit => 13,
            Event::ThreadName { .. } => 14,
            Event::ThreadCreate { .. } => 15,
            Event::Dlopen { .. } => 16,
            Event::Dlclose { .. } => 17,
            Event::Fork { .. } => 18,
            Event::Exec { .. } => 19,
        }
    }
}

/// An event with its time and thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Agent ticks (see [`TraceInfo::tick_ns`]).
    pub tick: u64,
    /// Which process image (a HELLO message starts one; `exec` starts the
    /// next), from 0.
    pub image: u32,
    /// The thread's kernel id.
    pub tid: i32,
    /// The thread: a number unique per thread of the trace, for
    /// per-thread state in analyses.
    pub(crate) stream: u32,
    /// What happened.
    pub event: Event,
}

/// A process image's start facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub(crate) ppid: u32,
    /// Page size.
    pub(crate) page_size: u64,
    /// Stacks came from frame pointers, not `.eh_frame`.
    pub(crate) frame_pointers: bool,
    /// Executable path.
    pub exe: String,
    /// Command line, arguments separated by spaces.
    pub cmdline: String,
    /// Clock anchors: (tick, CLOCK_MONOTONIC ns, CLOCK_REALTIME ns).
    pub clocks: Vec<(u64, u64, u64)>,
    /// The agent stopped cleanly (else the process was killed or crashed,
    /// and the trace ends at its last flush).
    pub ended: bool,
    /// The image was replaced by an exec: the next image in the file has
    /// its pid. Nothing is missing (the agent writes everything before
    /// the exec), but no END is written either.
    pub exec_replaced: bool,
    /// Traced by attaching to the running process (`vmmap attach`): the
    /// blocks and regions it had before are unknown.
    pub attached: bool,
    /// The program defines its own `malloc` (from the HELLO message): its
    /// allocations never reached the agent, only its mappings did.
    pub own_malloc: bool,
    /// Times a thread waited for the writer (from the END message).
    pub stalls: u64,
    /// Event bytes before and after compression (from the END message).
    pub event_bytes: (u64, u64),
    /// The agent stopped because the program put itself under seccomp
    /// (from the END message): nothing after that moment is recorded.
    pub seccomp_stop: bool,
    /// The agent stopped before a call that needs the process alone
    /// (`unshare` or `setns` of a namespace) because it could not open
    /// the trace file again afterwards (from the END message).
    pub alone_stop: bool,
    /// The agent could not start its writer thread (from the END
    /// message): the error number (0: none given), and nothing of the
    /// image is recorded after its HELLO.
    pub no_writer: Option<i32>,
}

impl ImageInfo {
    /// Every event of the image is in the file: it stopped cleanly or was
    /// replaced by an exec.
    pub fn complete(&self) -> bool {
        self.ended || self.exec_replaced
    }
}

/// A loaded object, for symbolisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Load bias (runtime address minus link-time address).
    pub(crate) base: u64,
    /// Path.
    pub(crate) path: String,
    /// GNU build id (may be empty).
    pub(crate) build_id: Vec<u8>,
    /// PT_LOAD segments: (vaddr, memsz, file offset, flags).
    pub(crate) segments: Vec<(u64, u64, u64, u32)>,
}

/// A call stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StackInfo {
    /// Return addresses, innermost first.
    pub frames: Vec<u64>,
    /// The unwind stopped early.
    pub truncated: bool,
}

/// (start, length) pairs.
pub(crate) type AddressRanges = Vec<(u64, u64)>;

/// Everything but the events.
#[derive(Debug, Clone, Default)]
pub struct TraceInfo {
    /// Process images in order.
    pub images: Vec<ImageInfo>,
    /// Module lists: (image, tick, modules).
    pub modules: Vec<(u32, u64, Vec<ModuleInfo>)>,
    /// `/proc/self/maps` as the agent saw it: (image, tick, text).
    pub maps: Vec<(u32, u64, String)>,
    /// The agent's own memory: (image, tick, (start, length) ranges).
    pub agent_memory: Vec<(u32, u64, AddressRanges)>,
    /// The agent's writer thread: (image, thread id, an address in its
    /// stack), from the AGENT_MEMORY messages that name it.
    pub agent_thread: Vec<(u32, i32, u64)>,
    /// Stack table; index 0 is the empty stack.
    pub stacks: Vec<StackInfo>,
    /// Trace messages read.
    pub messages: usize,
    /// The threads named by THREAD records (format 5, where a stream is
    /// a lane threads take turns at): (image, the agent's number for the
    /// thread) to [`Record`]'s thread number.
    pub threads: HashMap<(u32, u32), u32>,
}

impl TraceInfo {
    /// Nanoseconds since the trace's first image started, for a tick of
    /// `image`: images after an exec start later on the same monotonic
    /// clock.
    pub fn trace_ns(&self, image: u32, tick: u64) -> u64 {
        let start = |i: usize| {
            self.images
                .get(i)
                .and_then(|m| m.clocks.first())
                .map(|c| c.1)
        };
        let offset = match (start(0), start(image as usize)) {
            (Some(first), Some(this)) => this.saturating_sub(first),
            _ => 0,
        };
        offset.saturating_add(self.tick_ns(image, tick))
    }

    /// Nanoseconds since the image started, for a tick (linear between the
    /// first and last clock anchors).
    pub fn tick_ns(&self, image: u32, tick: u64) -> u64 {
        let Some(img) = self.images.get(image as usize) else {
            return 0;
        };
        let (Some(a), Some(b)) = (img.clocks.first(), img.clocks.last()) else {
            return 0;
        };
        if b.0 <= a.0 {
            return 0;
        }
        // In f64: a damaged anchor may run the clock backwards.
        let rate = (b.1 as f64 - a.1 as f64) / (b.0 - a.0) as f64;
        let ns = (tick as f64 - a.0 as f64) * rate;
        ns.max(0.0) as u64
    }
}

/// One thread's (or the agent's) event stream within a process image.
#[derive(Default)]
struct Stream {
    image: u32,
    tid: i32,
    /// Whose records these are ([`Record`]'s number): the stream's own
    /// in format 4, the last THREAD record's in format 5.
    thread: u32,
    last_tick: u64,
    last_addr: u64,
    /// Stream-local stack ids to global ones.
    stacks: Vec<u32>,
    /// Bytes not decoded yet, in stream order. Records are decoded only
    /// when the merge reaches them: a decoded record takes three times the
    /// bytes of its encoding, and two writer passes of a busy program are
    /// tens of megabytes of encoding.
    pending: VecDeque<Pending>,
    /// The next record's tag and tick, read ahead so the merge can compare
    /// ticks; its body is decoded only when it is released, straight into
    /// the caller's hands.
    next: Option<(u8, u64)>,
    /// Arrival order of the stream, to break tick ties the same way
    /// every time.
    order: u64,
    /// Its recent heap addresses (for references to them).
    ages: Ages,
}

/// A stream's recent heap addresses, as the agent keeps them
/// ([`HEAP_REF`]): for each class (0 allocated, 1 freed) how many went
/// by, and the last [`AGE_RING`] of them.
#[derive(Default)]
struct Ages {
    seq: [u64; 2],
    /// Both rings, made at the first heap address.
    rings: Option<Box<[[u64; AGE_RING]; 2]>>,
}

const ALLOCATED: usize = 0;
const FREED: usize = 1;
const RING_MASK: u64 = AGE_RING as u64 - 1;

impl Ages {
    /// The counts, and the rings (made at the first use).
    #[inline(always)]
    fn state(&mut self) -> ([u64; 2], &mut [[u64; AGE_RING]; 2]) {
        let seq = self.seq;
        (
            seq,
            self.rings
                .get_or_insert_with(|| Box::new([[0; AGE_RING]; 2])),
        )
    }
}

/// A stream segment not fully decoded.
struct Pending {
    /// The trace message it came in (for error reports).
    index: usize,
    /// The message's decompressed events, shared by its segments.
    data: Rc<Vec<u8>>,
    /// Read position and end within `data` of the fields (all but tags,
    /// ticks and addresses)...
    pos: usize,
    end: usize,
    /// ...of their addresses...
    apos: usize,
    aend: usize,
    /// ...and of the heads (tags and ticks).
    hpos: usize,
    hend: usize,
}

impl Pending {
    /// Cursors over what is left of each part.
    #[inline(always)]
    fn fields(&self) -> Fields<'_> {
        let at = |a: usize, b: usize| Cursor::new(&self.data[a..b]);
        Fields {
            main: at(self.pos, self.end),
            addrs: at(self.apos, self.aend),
            heads: at(self.hpos, self.hend),
        }
    }

    /// Moves past what `f` (from [`Pending::fields`]) read.
    #[inline(always)]
    fn advance(&mut self, f: [usize; 3]) {
        self.pos += f[0];
        self.apos += f[1];
        self.hpos += f[2];
    }

    /// Whether every record of the segment was read.
    fn done(&self) -> bool {
        self.hpos >= self.hend
    }
}

/// Stack interning hashes whole frame lists; SipHash made it a visible
/// share of decoding.
type Fast = foldhash::fast::FixedState;

/// A stream's head in the merge: (tick, stream order, stream index).
type Head = (u64, u64, usize);

/// The streams' next ticks, earliest first. Most programs have a handful
/// of threads with records waiting at once: a sorted vector (earliest at
/// the end) beats a binary heap there, and the merge touches it once per
/// record on an allocation-heavy trace. Past [`SMALL_HEADS`] streams it
/// turns into a heap for good.
#[derive(Debug)]
enum Heads {
    Sorted(Vec<Head>),
    Heap(BinaryHeap<Reverse<Head>>),
}

const SMALL_HEADS: usize = 16;

impl Default for Heads {
    fn default() -> Self {
        Heads::Sorted(Vec::new())
    }
}

impl Heads {
    #[inline(always)]
    fn peek(&self) -> Option<Head> {
        match self {
            Heads::Sorted(v) => v.last().copied(),
            Heads::Heap(h) => h.peek().map(|r| r.0),
        }
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Head> {
        match self {
            Heads::Sorted(v) => v.pop(),
            Heads::Heap(h) => h.pop().map(|r| r.0),
        }
    }

    #[inline(always)]
    fn push(&mut self, head: Head) {
        match self {
            Heads::Sorted(v) if v.len() < SMALL_HEADS => {
                // Descending order: the new head sinks from the end past
                // every earlier one (usually none or one, with no call to
                // memmove as `insert` makes, and no swap that reloads the
                // entry just stored).
                let mut i = v.len();
                v.push(head);
                while i > 0 && v[i - 1] < head {
                    v[i] = v[i - 1];
                    i -= 1;
                }
                v[i] = head;
            }
            Heads::Sorted(v) => {
                let mut h: BinaryHeap<Reverse<Head>> = v.drain(..).map(Reverse).collect();
                h.push(Reverse(head));
                *self = Heads::Heap(h);
            }
            Heads::Heap(h) => h.push(Reverse(head)),
        }
    }
}

/// Turns trace messages into time-ordered records.
#[derive(Default)]
pub struct Decoder {
    /// Everything but the events, as read so far.
    pub info: TraceInfo,
    streams: Vec<Stream>,
    stream_index: HashMap<(u32, u32), usize>,
    stack_ids: HashMap<StackInfo, u32, Fast>,
    /// The head of every stream with records waiting. A k-way merge: each
    /// stream is already in order, so the heap holds one entry per thread,
    /// not one per record.
    heads: Heads,
    chunk_ticks: [u64; 2],
    /// Damage met while decoding a stream lazily, not reported yet.
    failed: Option<TraceError>,
    /// Damage was met: no record is released after it.
    dead: bool,
    /// Event buffers whose records are all out, for the next messages: a
    /// fresh multi-megabyte buffer per message cost page faults and
    /// unmapping, a twentieth of the decoding time.
    spare: Vec<Vec<u8>>,
}

/// Why the agent stopped, if `msg` is its END message (END's last field:
/// `vmmap_wire::END_EXIT` when absent, as in older files).
pub fn end_reason(msg: &[u8]) -> Option<u64> {
    let mut c = Cursor::new(msg);
    if c.u8()? != MessageKind::End as u8 {
        return None;
    }
    // The clock's three fields, the stalls and the event bytes in and out.
    for _ in 0..6 {
        c.uvarint()?;
    }
    Some(c.uvarint().unwrap_or(vmmap_wire::END_EXIT))
}

/// The error number of an END message whose reason is
/// [`vmmap_wire::END_NO_WRITER`] (0 when the message gives none).
pub fn no_writer_errno(msg: &[u8]) -> Option<i32> {
    if end_reason(msg)? != vmmap_wire::END_NO_WRITER {
        return None;
    }
    let mut c = Cursor::new(msg);
    c.u8()?;
    for _ in 0..7 {
        c.uvarint()?;
    }
    Some(c.uvarint().and_then(|e| i32::try_from(e).ok()).unwrap_or(0))
}

/// Why the agent's writer thread could not be created, for a person:
/// the system's words for `errno` and, for the usual causes, which limit.
pub fn no_writer_reason(errno: i32) -> String {
    match errno {
        0 => "it could not take a descriptor table of its own in time".into(),
        libc::EAGAIN => format!(
            "{} (the process had as many tasks as a limit allows: RLIMIT_NPROC, or its cgroup's pids.max, which systemd sets with TasksMax=)",
            std::io::Error::from_raw_os_error(errno)
        ),
        libc::ENOMEM => format!(
            "{} (no room for the thread's 256 KiB stack: RLIMIT_AS, or the memory cgroup)",
            std::io::Error::from_raw_os_error(errno)
        ),
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

fn bad(index: usize, reason: &str) -> TraceError {
    TraceError::Corrupt {
        index,
        reason: reason.to_string(),
    }
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        let mut d = Decoder::default();
        d.info.stacks.push(StackInfo {
            frames: Vec::new(),
            truncated: false,
        });
        d
    }

    /// Decodes one trace chunk's payload; records that can no longer be
    /// preceded by another go to `out`, oldest first.
    pub fn feed(
        &mut self,
        msg: &[u8],
        out: &mut impl FnMut(&Record, &TraceInfo),
    ) -> Result<(), TraceError> {
        self.feed_owned(msg, &mut |r, i| out(&r, i))
    }

    /// [`Decoder::feed`], handing over each record (no copy for callers
    /// that keep them).
    pub(crate) fn feed_owned(
        &mut self,
        msg: &[u8],
        out: &mut impl FnMut(Record, &TraceInfo),
    ) -> Result<(), TraceError> {
        let index = self.info.messages;
        self.info.messages += 1;
        let mut c = Cursor::new(msg);
        let kind = c.u8().ok_or_else(|| bad(index, "empty message"))?;
        let image = self.info.images.len().saturating_sub(1) as u32;
        match MessageKind::try_from(kind) {
            Ok(MessageKind::Hello) => {
                self.release_all(out);
                let hello = parse_hello(&mut c).ok_or_else(|| bad(index, "HELLO cut short"))?;
                if hello.0 > u64::from(TRACE_VERSION) {
                    return Err(TraceError::NewerVersion(hello.0));
                }
                if hello.0 < u64::from(OLDEST_TRACE_VERSION) {
                    return Err(TraceError::OlderVersion(hello.0));
                }
                let image = hello.1;
                if let Some(last) = self.info.images.last_mut() {
                    last.exec_replaced = !last.ended && last.pid == image.pid;
                }
                self.info.images.push(image);
                self.chunk_ticks = [0, 0];
            }
            Ok(MessageKind::Clock | MessageKind::End) => {
                let img = self
                    .info
                    .images
                    .last_mut()
                    .ok_or_else(|| bad(index, "clock before HELLO"))?;
                let t = (c.uvarint(), c.uvarint(), c.uvarint());
                let (Some(a), Some(b), Some(r)) = t else {
                    return Err(bad(index, "clock cut short"));
                };
                img.clocks.push((a, b, r));
                if kind == MessageKind::End as u8 {
                    img.ended = true;
                    img.stalls = c.uvarint().unwrap_or(0);
                    img.event_bytes = (c.uvarint().unwrap_or(0), c.uvarint().unwrap_or(0));
                    let why = end_reason(msg);
                    img.seccomp_stop = why == Some(vmmap_wire::END_SECCOMP);
                    img.alone_stop = why == Some(vmmap_wire::END_ALONE);
                    img.no_writer = no_writer_errno(msg);
                    self.release_all(out);
                }
            }
            Ok(MessageKind::Modules) => {
                let tick = c.uvarint().ok_or_else(|| bad(index, "MODULES cut short"))?;
                let mods = parse_modules(&mut c).ok_or_else(|| bad(index, "MODULES cut short"))?;
                self.info.modules.push((image, tick, mods));
            }
            Ok(MessageKind::Maps) => {
                let tick = c.uvarint();
                let raw = c.uvarint();
                let (Some(tick), Some(raw)) = (tick, raw) else {
                    return Err(bad(index, "MAPS cut short"));
                };
                let text = inflate(c.take(c.remaining()).unwrap_or_default(), raw, MAX_MAPS_RAW)
                    .map_err(|e| bad(index, &e))?;
                self.info
                    .maps
                    .push((image, tick, String::from_utf8_lossy(&text).into_owned()));
            }
            Ok(MessageKind::AgentMemory) => {
                let tick = c
                    .uvarint()
                    .ok_or_else(|| bad(index, "AGENT_MEMORY cut short"))?;
                let n = c
                    .uvarint()
                    .ok_or_else(|| bad(index, "AGENT_MEMORY cut short"))?
                    as usize;
                let mut v = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let (Some(a), Some(l)) = (c.uvarint(), c.uvarint()) else {
                        return Err(bad(index, "AGENT_MEMORY cut short"));
                    };
                    v.push((a, l));
                }
                self.info.agent_memory.push((image, tick, v));
                // Since the writer named its thread: its id and stack.
                if let (Some(tid), Some(sp)) = (c.uvarint(), c.uvarint()) {
                    if tid > 0 && self.info.agent_thread.last().map(|a| a.0) != Some(image) {
                        self.info.agent_thread.push((image, tid as i32, sp));
                    }
                }
            }
            Ok(MessageKind::Events) => {
                let buf = self.spare.pop().unwrap_or_default();
                let (tick, data) = inflate_events(msg, buf).map_err(|e| bad(index, &e))?;
                self.events(index, image, tick, data, out)?;
            }
            Err(_) => {} // a message type from a newer agent
        }
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Releases every record still held (end of file). Returns the damage
    /// met in records decoded since the last call, if any.
    pub fn finish(&mut self, out: &mut impl FnMut(&Record, &TraceInfo)) -> Result<(), TraceError> {
        self.finish_owned(&mut |r, i| out(&r, i))
    }

    /// [`Decoder::finish`], handing over each record.
    pub(crate) fn finish_owned(
        &mut self,
        out: &mut impl FnMut(Record, &TraceInfo),
    ) -> Result<(), TraceError> {
        self.release_all(out);
        self.failed.take().map_or(Ok(()), Err)
    }

    /// [`Decoder::feed_owned`] of an EVENTS message that
    /// [`inflate_events`] already decompressed (on another thread, so that
    /// decompression and decoding overlap): its pass tick and events, or
    /// why it could not be decompressed.
    pub(crate) fn feed_inflated(
        &mut self,
        inflated: Result<(u64, Vec<u8>), String>,
        out: &mut impl FnMut(Record, &TraceInfo),
    ) -> Result<(), TraceError> {
        let index = self.info.messages;
        self.info.messages += 1;
        let image = self.info.images.len().saturating_sub(1) as u32;
        let (tick, data) = inflated.map_err(|e| bad(index, &e))?;
        self.events(index, image, tick, data, out)?;
        self.failed.take().map_or(Ok(()), Err)
    }

    /// A buffer whose records are all out, for the next [`inflate_events`].
    pub(crate) fn spare_buffer(&mut self) -> Option<Vec<u8>> {
        self.spare.pop()
    }

    fn events(
        &mut self,
        index: usize,
        image: u32,
        tick: u64,
        data: Vec<u8>,
        out: &mut impl FnMut(Record, &TraceInfo),
    ) -> Result<(), TraceError> {
        self.segments(index, image, data)?;
        // Everything older than the previous chunk's stamp is in.
        let watermark = self.chunk_ticks[1];
        self.chunk_ticks = [self.chunk_ticks[1], tick];
        self.release(watermark, out);
        Ok(())
    }

    fn release(&mut self, below: u64, out: &mut impl FnMut(Record, &TraceInfo)) {
        let Decoder {
            info,
            streams,
            heads,
            stack_ids,
            failed,
            dead,
            spare,
            ..
        } = self;
        if *dead {
            return;
        }
        // Take the earliest stream out of the heap and release its records
        // until another stream's head comes first: a busy thread's records
        // go out in runs, with one heap operation per run, not per record.
        while let Some((tick, order, si)) = heads.peek() {
            if tick >= below {
                break;
            }
            heads.pop();
            let (next_tick, next_order) = heads.peek().map_or((u64::MAX, u64::MAX), |h| (h.0, h.1));
            let limit = Limit {
                before: next_tick.min(below),
                tie: (next_tick < below && order < next_order).then_some(next_tick),
            };
            let st = &mut streams[si];
            match run(st, info, stack_ids, spare, limit, out) {
                Ok(Some(t)) => heads.push((t, order, si)),
                Ok(None) => {}
                Err(e) => {
                    *failed = Some(e);
                    *dead = true;
                    return;
                }
            }
        }
    }

    fn release_all(&mut self, out: &mut impl FnMut(Record, &TraceInfo)) {
        self.release(u64::MAX, out);
    }

    /// An EVENTS message's segments: their directory (their count, then
    /// per segment its stream and the lengths of its heads, fields and
    /// addresses, u32 LE each), then every segment's heads, every
    /// segment's fields and every segment's addresses, each kind in
    /// directory order. Each kind in one run compresses a third faster
    /// and a little smaller than segments one after another.
    fn segments(&mut self, index: usize, image: u32, data: Vec<u8>) -> Result<(), TraceError> {
        let data = &Rc::new(data);
        let cut = || bad(index, "segment directory cut short");
        let mut c = Cursor::new(data);
        let n = c.u32().ok_or_else(cut)? as usize;
        let dir_end = n
            .checked_mul(16)
            .and_then(|d| d.checked_add(4))
            .filter(|&d| d <= data.len())
            .ok_or_else(cut)?;
        let entry = |c: &mut Cursor<'_>| -> Option<(u32, [usize; 3])> {
            Some((
                c.u32()?,
                [c.u32()? as usize, c.u32()? as usize, c.u32()? as usize],
            ))
        };
        let mut sums = [0usize; 3];
        for _ in 0..n {
            let (_, lens) = entry(&mut c).ok_or_else(cut)?;
            for (s, l) in sums.iter_mut().zip(lens) {
                *s = s.saturating_add(l);
            }
        }
        let total = sums.iter().fold(dir_end, |t, &s| t.saturating_add(s));
        if total != data.len() {
            return Err(bad(index, "segments' parts do not add up to the message"));
        }
        let mut at = [dir_end, dir_end + sums[0], dir_end + sums[0] + sums[1]];
        let mut c = Cursor::new(data);
        c.u32();
        for _ in 0..n {
            let (stream, lens) = entry(&mut c).ok_or_else(cut)?;
            let [h, f, a] = [0, 1, 2].map(|i| {
                at[i] += lens[i];
                (at[i] - lens[i], at[i])
            });
            self.segment(index, image, stream, data, [f, a, h])?;
        }
        Ok(())
    }

    /// Queues a segment of `stream`: where its fields, addresses and
    /// heads are in `data`.
    fn segment(
        &mut self,
        index: usize,
        image: u32,
        stream: u32,
        data: &Rc<Vec<u8>>,
        [main, addrs, heads]: [(usize, usize); 3],
    ) -> Result<(), TraceError> {
        let next = self.streams.len();
        let si = *self.stream_index.entry((image, stream)).or_insert(next);
        if si == next {
            self.streams.push(Stream {
                image,
                thread: next as u32,
                order: next as u64,
                ..Stream::default()
            });
        }
        let st = &mut self.streams[si];
        st.pending.push_back(Pending {
            index,
            data: data.clone(),
            pos: main.0,
            end: main.1,
            apos: addrs.0,
            aend: addrs.1,
            hpos: heads.0,
            hend: heads.1,
        });
        if st.next.is_none() {
            // The stream was idle: read its first tick for the merge.
            if let Some(tick) = peek(st, &mut self.info, &mut self.stack_ids, &mut self.spare)? {
                self.heads.push((tick, st.order, si));
            }
        }
        Ok(())
    }
}

/// Up to where a stream may run in the merge: ticks before `before`, and
/// `tie` too when the stream wins ties with the next one.
#[derive(Clone, Copy)]
struct Limit {
    before: u64,
    tie: Option<u64>,
}

impl Limit {
    #[inline(always)]
    fn admits(self, tick: u64) -> bool {
        tick < self.before || Some(tick) == self.tie
    }
}

/// Releases the stream's records, starting with the one [`peek`] read the
/// tick of, while their ticks stay within `limit`; returns the tick of
/// the record it stopped at (None when the stream ran dry). This is the
/// decoder's hot loop: ordinary records inside one segment are decoded,
/// header and body, with one cursor over the records (and one over their
/// addresses), without going back to the merge;
/// segment ends, stack definitions and thread starts take [`peek`]'s
/// general path.
fn run(
    st: &mut Stream,
    info: &mut TraceInfo,
    stack_ids: &mut HashMap<StackInfo, u32, Fast>,
    spare: &mut Vec<Vec<u8>>,
    limit: Limit,
    out: &mut impl FnMut(Record, &TraceInfo),
) -> Result<Option<u64>, TraceError> {
    loop {
        if let Some((mut tag, mut tick)) = st.next.take() {
            let Stream {
                image,
                tid,
                thread,
                last_tick,
                last_addr,
                stacks,
                pending,
                ages,
                ..
            } = &mut *st;
            let Some(p) = pending.front_mut() else {
                return Ok(None);
            };
            let mut f = p.fields();
            // The address state in locals for the run, written back when
            // it stops: through the stream, every record's loads waited on
            // the previous record's stores.
            let (seq, rings) = ages.state();
            let a = &mut Addrs {
                last: *last_addr,
                seq,
                rings,
            };
            loop {
                let record = |event| Record {
                    tick,
                    image: *image,
                    tid: *tid,
                    stream: *thread,
                    event,
                };
                // One hand-over per kind of record, so that each builds its
                // record where it goes: a hand-over shared by every kind
                // copied the record through memory that the kinds had
                // written in different widths, and stalled on it.
                let done = match EventKind::try_from(tag) {
                    Ok(EventKind::Free) => f
                        .heap(a, FREED)
                        .map(|ptr| out(record(Event::Free { ptr }), info)),
                    Ok(kind @ (EventKind::Malloc | EventKind::Calloc)) => {
                        hot_alloc(kind, &mut f, a, stacks).map(|event| out(record(event), info))
                    }
                    Ok(EventKind::Realloc) => {
                        hot_realloc(&mut f, a, stacks).map(|event| out(record(event), info))
                    }
                    _ => decode_event(tag, &mut f, a, stacks).map(|event| out(record(event), info)),
                };
                if done.is_none() {
                    return Err(bad(
                        p.index,
                        &format!("event with tag {tag} cut short or unknown"),
                    ));
                }
                let Some(next_tag) = f.peek_tag() else {
                    break;
                };
                if next_tag == EventKind::Stack as u8
                    || next_tag == EventKind::ThreadStart as u8
                    || next_tag == EventKind::Thread as u8
                {
                    break;
                }
                f.tag();
                let Some(d) = f.tick_delta() else {
                    return Err(bad(p.index, "event cut short"));
                };
                let next_tick = last_tick.wrapping_add(d as u64);
                *last_tick = next_tick;
                if !limit.admits(next_tick) {
                    p.advance(f.positions());
                    (*last_addr, ages.seq) = (a.last, a.seq);
                    st.next = Some((next_tag, next_tick));
                    return Ok(Some(next_tick));
                }
                (tag, tick) = (next_tag, next_tick);
            }
            p.advance(f.positions());
            (*last_addr, ages.seq) = (a.last, a.seq);
        }
        match peek(st, info, stack_ids, spare)? {
            Some(t) if limit.admits(t) => continue,
            other => return Ok(other),
        }
    }
}

/// Reads a stream's next record's tag and tick (taking in the stack
/// definitions before it); None when its bytes are used up.
fn peek(
    st: &mut Stream,
    info: &mut TraceInfo,
    stack_ids: &mut HashMap<StackInfo, u32, Fast>,
    spare: &mut Vec<Vec<u8>>,
) -> Result<Option<u64>, TraceError> {
    let Stream {
        image,
        tid,
        thread,
        last_tick,
        stacks,
        pending,
        next,
        ..
    } = st;
    loop {
        let Some(p) = pending.front_mut() else {
            *next = None;
            return Ok(None);
        };
        if p.done() {
            if let Some(Ok(buf)) = pending.pop_front().map(|p| Rc::try_unwrap(p.data)) {
                if spare.len() < 2 {
                    spare.push(buf);
                }
            }
            continue;
        }
        let index = p.index;
        let mut f = p.fields();
        let cut = || bad(index, "event cut short");
        let tag = f.tag().ok_or_else(cut)?;
        if tag == EventKind::Stack as u8 {
            let c = &mut f.main;
            let id = c.uvarint().ok_or_else(cut)? as usize;
            let flags = c.u8().ok_or_else(cut)?;
            let n = c.uvarint().ok_or_else(cut)? as usize;
            if n > MAX_FRAMES {
                return Err(bad(index, "stack deeper than the agent records"));
            }
            let mut frames = Vec::with_capacity(n);
            let mut prev = 0u64;
            for _ in 0..n {
                prev = prev.wrapping_add(c.ivarint().ok_or_else(cut)? as u64);
                frames.push(prev);
            }
            p.advance(f.positions());
            let g = intern(
                info,
                stack_ids,
                StackInfo {
                    frames,
                    truncated: flags & STACK_TRUNCATED != 0,
                },
            );
            if id >= stacks.len() {
                if id > 1 << 24 {
                    return Err(bad(index, "implausible stack id"));
                }
                stacks.resize(id + 1, 0);
            }
            stacks[id] = g;
            continue;
        }
        if tag == EventKind::Thread as u8 {
            let number = f.main.uvarint().ok_or_else(cut)?;
            let kernel = f.main.uvarint().ok_or_else(cut)?;
            let (Ok(number), Ok(kernel)) = (u32::try_from(number), i32::try_from(kernel)) else {
                return Err(bad(index, "implausible thread"));
            };
            p.advance(f.positions());
            let n = info.threads.len() as u32;
            *thread = *info.threads.entry((*image, number)).or_insert(n);
            *tid = kernel;
            continue;
        }
        let tick = if tag == EventKind::ThreadStart as u8 {
            let t = f.tick_abs().ok_or_else(cut)?;
            *tid = f.main.uvarint().ok_or_else(cut)? as i32;
            t
        } else {
            let d = f.tick_delta().ok_or_else(cut)?;
            last_tick.wrapping_add(d as u64)
        };
        *last_tick = tick;
        p.advance(f.positions());
        *next = Some((tag, tick));
        return Ok(Some(tick));
    }
}

fn intern(info: &mut TraceInfo, ids: &mut HashMap<StackInfo, u32, Fast>, s: StackInfo) -> u32 {
    if let Some(&id) = ids.get(&s) {
        return id;
    }
    let id = info.stacks.len() as u32;
    info.stacks.push(s.clone());
    ids.insert(s, id);
    id
}

/// A record's parts: its fields but tags, ticks and addresses (`main`),
/// its addresses and its head (tag and tick).
struct Fields<'a> {
    main: Cursor<'a>,
    addrs: Cursor<'a>,
    heads: Cursor<'a>,
}

/// A stream's state for decoding addresses: the last one (differences are
/// from it) and the recent heap addresses (references are to them).
struct Addrs<'s> {
    last: u64,
    seq: [u64; 2],
    rings: &'s mut [[u64; AGE_RING]; 2],
}

impl Fields<'_> {
    /// How far each cursor went, in [`Pending::advance`]'s order.
    #[inline(always)]
    fn positions(&self) -> [usize; 3] {
        [
            self.main.position(),
            self.addrs.position(),
            self.heads.position(),
        ]
    }

    #[inline(always)]
    fn peek_tag(&self) -> Option<u8> {
        self.heads.peek_u8()
    }

    #[inline(always)]
    fn tag(&mut self) -> Option<u8> {
        self.heads.u8()
    }

    /// A record's tick, as the difference from the stream's last one.
    #[inline(always)]
    fn tick_delta(&mut self) -> Option<i64> {
        self.heads.ivarint()
    }

    /// A thread start's absolute tick.
    fn tick_abs(&mut self) -> Option<u64> {
        self.heads.u64()
    }

    /// The next address (coded as the difference from the last one).
    #[inline(always)]
    fn addr(&mut self, a: &mut Addrs<'_>) -> Option<u64> {
        let d = self.addrs.ivarint()?;
        let v = a.last.wrapping_add(d as u64);
        a.last = v;
        Some(v)
    }

    /// The next heap address of `class` ([`ALLOCATED`] or [`FREED`]): a
    /// reference or the address ([`HEAP_REF`]). Which of the two is as
    /// random as the heap, so both are worked out and one is taken without
    /// a branch.
    #[inline(always)]
    fn heap(&mut self, a: &mut Addrs<'_>, class: usize) -> Option<u64> {
        let h = self.addrs.uvarint_random()?;
        let x = h >> 1;
        let is_ref = h & HEAP_REF != 0;
        let (class, other) = (class & 1, (1 - class) & 1);
        let seq = a.seq[other];
        // `&` and `|`, not `&&` and `||`: one branch, never taken.
        if is_ref & ((x > AGE_RING as u64) | (x > seq)) {
            return None;
        }
        let mine = a.seq[class];
        let recent = a.rings[other][(seq.wrapping_sub(x) & RING_MASK) as usize];
        let explicit = a.last.wrapping_add(unzigzag(x) as u64);
        // Masks, not `if`s: the compiler kept branches for those.
        let ref_mask = 0u64.wrapping_sub(u64::from(is_ref));
        let recent = recent & 0u64.wrapping_sub(u64::from(x != 0));
        let v = (recent & ref_mask) | (explicit & !ref_mask);
        a.last = (a.last & ref_mask) | (explicit & !ref_mask);
        // Null goes into no ring: the slot keeps its address.
        let slot = &mut a.rings[class][(mine & RING_MASK) as usize];
        let keep = 0u64.wrapping_sub(u64::from(v == 0));
        *slot = (*slot & keep) | (v & !keep);
        a.seq[class] = mine + u64::from(v != 0);
        Some(v)
    }
}

#[inline(always)]
fn stack(c: &mut Cursor<'_>, stacks: &[u32]) -> Option<u32> {
    let local = c.uvarint()? as usize;
    if local == 0 {
        return Some(0);
    }
    stacks.get(local).copied()
}

fn text(c: &mut Cursor<'_>) -> Option<String> {
    Some(String::from_utf8_lossy(c.bytes()?).into_owned())
}

/// `malloc` and `calloc`, decoded inline in [`run`] (nine records in ten
/// are heap operations; a call returning an [`Event`] through memory cost
/// a third of the decoding thread's time in store-forwarding stalls).
#[inline(always)]
fn hot_alloc(
    kind: EventKind,
    f: &mut Fields<'_>,
    a: &mut Addrs<'_>,
    stacks: &[u32],
) -> Option<Event> {
    let ptr = f.heap(a, ALLOCATED)?;
    let size = f.main.uvarint()?;
    let stack = stack(&mut f.main, stacks)?;
    Some(Event::Alloc {
        kind,
        ptr,
        size,
        align: 0,
        stack,
    })
}

/// `realloc`, decoded inline in [`run`].
#[inline(always)]
fn hot_realloc(f: &mut Fields<'_>, a: &mut Addrs<'_>, stacks: &[u32]) -> Option<Event> {
    Some(Event::Realloc {
        old: f.heap(a, FREED)?,
        new: f.heap(a, ALLOCATED)?,
        size: f.main.uvarint()?,
        stack: stack(&mut f.main, stacks)?,
    })
}

#[inline(never)]
fn decode_event(tag: u8, f: &mut Fields<'_>, st: &mut Addrs<'_>, stacks: &[u32]) -> Option<Event> {
    let Ok(kind) = EventKind::try_from(tag) else {
        return None;
    };
    Some(match kind {
        EventKind::Malloc | EventKind::Calloc | EventKind::Memalign => {
            let mut e = hot_alloc(kind, f, st, stacks)?;
            if let Event::Alloc { align, .. } = &mut e {
                if kind == EventKind::Memalign {
                    *align = f.main.uvarint()?;
                }
            }
            e
        }
        EventKind::Realloc => hot_realloc(f, st, stacks)?,
        EventKind::Free => Event::Free {
            ptr: f.heap(st, FREED)?,
        },
        EventKind::Mmap => Event::Mmap {
            addr: f.addr(st)?,
            len: f.main.uvarint()?,
            prot: f.main.uvarint()? as u32,
            flags: f.main.uvarint()? as u32,
            fd: unzigzag(f.main.uvarint()?) as i32,
            offset: f.main.uvarint()?,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Munmap => Event::Munmap {
            addr: f.addr(st)?,
            len: f.main.uvarint()?,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Mremap => Event::Mremap {
            old: f.addr(st)?,
            old_len: f.main.uvarint()?,
            new: f.main.uvarint()?,
            new_len: f.main.uvarint()?,
            flags: f.main.uvarint()? as u32,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Mprotect => Event::Mprotect {
            addr: f.addr(st)?,
            len: f.main.uvarint()?,
            prot: f.main.uvarint()? as u32,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Madvise => Event::Madvise {
            addr: f.addr(st)?,
            len: f.main.uvarint()?,
            advice: f.main.uvarint()? as u32,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Brk => Event::Brk {
            old: f.addr(st)?,
            new: f.main.uvarint()?,
            sbrk: f.main.uvarint()? == 1,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::ThreadStart => Event::ThreadStart {
            pthread: f.main.uvarint()?,
            stack_lo: f.main.uvarint()?,
            stack_hi: f.main.uvarint()?,
        },
        EventKind::ThreadExit => {
            f.main.bytes()?;
            Event::ThreadExit
        }
        EventKind::ThreadName => Event::ThreadName {
            pthread: f.main.uvarint()?,
            name: text(&mut f.main)?,
        },
        EventKind::ThreadCreate => {
            let pthread = f.main.uvarint()?;
            f.main.bytes()?;
            Event::ThreadCreate {
                pthread,
                stack: stack(&mut f.main, stacks)?,
            }
        }
        EventKind::Dlopen => Event::Dlopen {
            handle: f.main.uvarint()?,
            flags: f.main.uvarint()? as u32,
            path: text(&mut f.main)?,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Dlclose => {
            let handle = f.main.uvarint()?;
            f.main.bytes()?;
            Event::Dlclose {
                handle,
                stack: stack(&mut f.main, stacks)?,
            }
        }
        EventKind::Fork => {
            let pid = f.main.uvarint()? as u32;
            f.main.bytes()?;
            Event::Fork {
                pid,
                stack: stack(&mut f.main, stacks)?,
            }
        }
        EventKind::Exec => Event::Exec {
            path: text(&mut f.main)?,
            stack: stack(&mut f.main, stacks)?,
        },
        EventKind::Stack | EventKind::Thread => return None,
    })
}

/// Decompresses an EVENTS message (type byte included) into `buf`:
/// returns its pass tick and events. Sans-IO and independent of the
/// decoder's state, so that it may run on a thread of its own
/// ([`Decoder::feed_inflated`]).
pub(crate) fn inflate_events(msg: &[u8], buf: Vec<u8>) -> Result<(u64, Vec<u8>), String> {
    let mut c = Cursor::new(msg);
    if c.u8() != Some(MessageKind::Events as u8) {
        return Err("not an EVENTS message".into());
    }
    let (Some(tick), Some(raw)) = (c.uvarint(), c.uvarint()) else {
        return Err("EVENTS cut short".into());
    };
    let data = inflate_into(
        c.take(c.remaining()).unwrap_or_default(),
        raw,
        MAX_EVENTS_RAW,
        buf,
    )?;
    Ok((tick, data))
}

/// The most an EVENTS message may hold decompressed. The agent compresses
/// once 8 MiB are staged (plus at most one 128 KiB thread buffer), so a
/// real message is below 9 MiB; the cap leaves room and bounds what a
/// crafted message can make a reader reserve, whatever its frame declares
/// (a frame of one repeated byte compresses too well for a ratio cap).
pub(crate) const MAX_EVENTS_RAW: u64 = 64 << 20;
/// The most a MAPS message (a `/proc/PID/maps` text) may hold
/// decompressed: some 1.7 million mappings, far past the kernel's default
/// `vm.max_map_count` of 65,530.
pub(crate) const MAX_MAPS_RAW: u64 = 256 << 20;

fn inflate(z: &[u8], raw: u64, cap: u64) -> Result<Vec<u8>, String> {
    inflate_into(z, raw, cap, Vec::new())
}

/// [`inflate`] into a buffer that may be reused. The declared size is
/// checked against the message kind's `cap` and against the frame's own
/// content size before anything is reserved; a frame that does not carry
/// its size is streamed, so memory follows what it really holds.
fn inflate_into(z: &[u8], raw: u64, cap: u64, mut out: Vec<u8>) -> Result<Vec<u8>, String> {
    if raw > cap {
        return Err(format!(
            "declared size {raw} is implausible (at most {} MiB)",
            cap >> 20
        ));
    }
    vmmap_core::format::frame_size_agrees(z, raw)?;
    out.clear();
    if let Ok(Some(_)) = zstd::zstd_safe::get_frame_content_size(z) {
        out.reserve(raw as usize);
        zstd::bulk::Decompressor::new()
            .and_then(|mut d| d.decompress_to_buffer(z, &mut out))
            .map_err(|e| format!("zstd: {e}"))?;
    } else {
        use std::io::Read;
        zstd::stream::read::Decoder::new(z)
            .and_then(|d| d.take(raw + 1).read_to_end(&mut out))
            .map_err(|e| format!("zstd: {e}"))?;
    }
    if out.len() as u64 != raw {
        return Err("decompressed size differs from the declared size".into());
    }
    Ok(out)
}

fn parse_hello(c: &mut Cursor<'_>) -> Option<(u64, ImageInfo)> {
    let version = c.uvarint()?;
    let pid = c.uvarint()? as u32;
    let ppid = c.uvarint()? as u32;
    let page_size = c.uvarint()?;
    let flags = c.uvarint()?;
    let frame_pointers = flags & 1 == 1;
    let attached = flags & vmmap_wire::attach::HELLO_ATTACHED != 0;
    let own_malloc = flags & vmmap_wire::HELLO_OWN_MALLOC != 0;
    let clock = (c.uvarint()?, c.uvarint()?, c.uvarint()?);
    let exe = text(c)?;
    let cmd = c.bytes()?;
    let cmdline = cmd
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some((
        version,
        ImageInfo {
            pid,
            ppid,
            page_size,
            frame_pointers,
            attached,
            own_malloc,
            exe,
            cmdline,
            clocks: vec![clock],
            ..ImageInfo::default()
        },
    ))
}

fn parse_modules(c: &mut Cursor<'_>) -> Option<Vec<ModuleInfo>> {
    let n = c.uvarint()? as usize;
    let mut v = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let base = c.uvarint()?;
        let path = text(c)?;
        let build_id = c.bytes()?.to_vec();
        let ns = c.uvarint()? as usize;
        let mut segments = Vec::with_capacity(ns.min(64));
        for _ in 0..ns {
            segments.push((
                c.uvarint()?,
                c.uvarint()?,
                c.uvarint()?,
                c.uvarint()? as u32,
            ));
        }
        v.push(ModuleInfo {
            base,
            path,
            build_id,
            segments,
        });
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmmap_wire::synthetic::{self as syn, StreamBuilder};

    #[test]
    fn an_end_without_a_writer_gives_its_error_number() {
        let end = |tail: &[u64]| {
            let mut m = vec![MessageKind::End as u8];
            for v in [1, 2, 3, 0, 10, 5].iter().chain(tail) {
                vmmap_wire::push_uvarint(&mut m, *v);
            }
            m
        };
        assert_eq!(
            no_writer_errno(&end(&[vmmap_wire::END_NO_WRITER, 11])),
            Some(11)
        );
        // No number: 0, "none given".
        assert_eq!(no_writer_errno(&end(&[vmmap_wire::END_NO_WRITER])), Some(0));
        assert_eq!(no_writer_errno(&end(&[vmmap_wire::END_EXIT])), None);
        assert_eq!(no_writer_errno(&end(&[])), None);
    }

    #[test]
    fn an_events_message_past_its_cap_is_refused_before_it_is_inflated() {
        // 65 MiB of zeros: a frame whose declared size agrees with the
        // message, each within the format's general limit.
        let raw = MAX_EVENTS_RAW + (1 << 20);
        let z = zstd::bulk::compress(&vec![0u8; raw as usize], 3).unwrap();
        let mut m = vec![MessageKind::Events as u8];
        push_uvarint(&mut m, 7);
        push_uvarint(&mut m, raw);
        m.extend_from_slice(&z);
        let e = inflate_events(&m, Vec::new()).unwrap_err();
        assert!(e.contains("implausible"), "{e}");
        // The same at the cap goes through.
        let z = zstd::bulk::compress(&vec![0u8; MAX_EVENTS_RAW as usize], 3).unwrap();
        let mut m = vec![MessageKind::Events as u8];
        push_uvarint(&mut m, 7);
        push_uvarint(&mut m, MAX_EVENTS_RAW);
        m.extend_from_slice(&z);
        let (tick, data) = inflate_events(&m, Vec::new()).unwrap();
        assert_eq!((tick, data.len() as u64), (7, MAX_EVENTS_RAW));
    }

    fn hello() -> Vec<u8> {
        vmmap_wire::synthetic::hello(42, "/bin/prog", b"prog\0-x\0")
    }

    /// A stream of thread `tid` with mallocs at the given ticks.
    fn thread(tid: u64, mallocs: &[(u64, u64, u64)]) -> StreamBuilder {
        let mut s = StreamBuilder::new(tid, 0x1000, 0, 0x8000);
        for &(t, ptr, size) in mallocs {
            s.malloc(t, ptr, size, 0);
        }
        s
    }

    /// Found by the `trace` fuzz target: clock anchors whose monotonic
    /// time runs backwards overflowed a subtraction.
    #[test]
    fn a_clock_running_backwards_gives_time_zero() {
        let mut info = TraceInfo::default();
        info.images.push(ImageInfo {
            clocks: vec![(0, 5_000, 0), (10, 1_000, 0)],
            ..ImageInfo::default()
        });
        assert_eq!(info.tick_ns(0, 5), 0);
        info.images[0].clocks[1].1 = 15_000;
        assert_eq!(info.tick_ns(0, 5), 5_000);
    }

    /// A symbol cache frame that claims more than the cap, or is not
    /// zstd, is dropped rather than read or reserved for.
    #[test]
    fn damaged_symbol_caches_are_dropped() {
        use crate::scan::decode_symbols;
        assert!(decode_symbols(b"not zstd").is_none());
        let (z, _) = crate::scan::encode_symbols(&[]).unwrap();
        assert_eq!(decode_symbols(&z).map(|m| m.len()), Some(0));
        assert!(decode_symbols(&z[..z.len() - 1]).is_none(), "cut short");
    }

    /// Format 5: a stream is a lane threads take turns at, each turn
    /// after a THREAD record naming the thread. Records get the named
    /// thread's id and number; stack ids and address references are the
    /// lane's, whoever wrote them.
    #[test]
    fn a_lane_holds_the_records_of_the_threads_it_names() {
        let mut lane = StreamBuilder::lane();
        lane.thread(1, 11);
        lane.stack(1, &[0x401000, 0x402000]);
        lane.malloc(1, 0xa000, 16, 1);
        lane.thread(2, 12);
        lane.malloc(2, 0xb000, 32, 1);
        lane.free(3, 0xa000);
        lane.thread(1, 11);
        lane.free(4, 0xb000);
        let msgs = [hello(), syn::events(10, &lane), syn::end()];
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for m in &msgs {
            d.feed(m, &mut |r, _| got.push(r.clone())).unwrap();
        }
        d.finish(&mut |r, _| got.push(r.clone())).unwrap();
        let seen: Vec<(i32, &Event)> = got.iter().map(|r| (r.tid, &r.event)).collect();
        let (a, b) = (0xa000, 0xb000);
        assert_eq!(
            seen,
            [
                (
                    11,
                    &Event::Alloc {
                        kind: EventKind::Malloc,
                        ptr: a,
                        size: 16,
                        stack: 1,
                        align: 0
                    }
                ),
                (
                    12,
                    &Event::Alloc {
                        kind: EventKind::Malloc,
                        ptr: b,
                        size: 32,
                        stack: 1,
                        align: 0
                    }
                ),
                (12, &Event::Free { ptr: a }),
                (11, &Event::Free { ptr: b }),
            ]
        );
        let numbers: Vec<u32> = got.iter().map(|r| r.stream).collect();
        assert_eq!(numbers[0], numbers[3]);
        assert_eq!(numbers[1], numbers[2]);
        assert_ne!(numbers[0], numbers[1]);
        assert_eq!(d.info.stacks[1].frames, [0x401000, 0x402000]);
    }

    #[test]
    fn threads_are_merged_in_time_order_across_chunks() {
        // Thread 2's early records reach the file one chunk after thread
        // 1's later ones, as a quiet thread's partial buffer does.
        let msgs = [
            hello(),
            syn::events_of(
                100,
                &[(1, &thread(11, &[(20, 0x5000, 1), (40, 0x5100, 2)]))],
            ),
            syn::events_of(200, &[(2, &thread(12, &[(30, 0x7000, 3)]))]),
            syn::events_of(300, &[]),
        ];
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for m in &msgs {
            d.feed(m, &mut |r, _| {
                if let Event::Alloc { size, ptr, .. } = r.event {
                    got.push((r.tick, r.tid, size, ptr));
                }
            })
            .unwrap();
        }
        d.finish(&mut |r, _| {
            if let Event::Alloc { size, ptr, .. } = r.event {
                got.push((r.tick, r.tid, size, ptr));
            }
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (20, 11, 1, 0x5000),
                (30, 12, 3, 0x7000),
                (40, 11, 2, 0x5100)
            ]
        );
        let img = &d.info.images[0];
        assert_eq!((img.pid, img.cmdline.as_str()), (42, "prog -x"));
    }

    #[test]
    fn damage_is_reported_not_panicked() {
        let mut d = Decoder::new();
        d.feed(&hello(), &mut |_, _| {}).unwrap();
        let mut bad = syn::events(100, &thread(11, &[(20, 0x5000, 1)]));
        let n = bad.len();
        bad.truncate(n - 3);
        assert!(matches!(
            d.feed(&bad, &mut |_, _| {}),
            Err(TraceError::Corrupt { .. })
        ));
        let newer = syn::hello_version(99, 42, "/bin/x", b"x\0");
        assert_eq!(
            Decoder::new().feed(&newer, &mut |_, _| {}),
            Err(TraceError::NewerVersion(99))
        );
        // Versions 1 to 3 were written only before the first release.
        for v in 0..OLDEST_TRACE_VERSION {
            let older = syn::hello_version(v.into(), 42, "/bin/x", b"x\0");
            let mut d = Decoder::new();
            assert_eq!(
                d.feed(&older, &mut |_, _| {}),
                Err(TraceError::OlderVersion(v.into()))
            );
            assert!(d.info.images.is_empty());
        }
        assert!(matches!(
            Decoder::new().feed(&[], &mut |_, _| {}),
            Err(TraceError::Corrupt { .. })
        ));
    }

    /// Heap addresses are references to recent ones where they can be:
    /// every kind of record with addresses (two for a realloc, null ones
    /// too) decodes to the calls written.
    #[test]
    fn records_with_addresses_decode_to_the_calls_written() {
        let mut s = StreamBuilder::new(11, 0, 0, 0);
        s.stack(1, &[0x401]);
        s.malloc(10, 0x5000, 24, 1);
        s.head(EventKind::Realloc, 12);
        s.addr(0x5000);
        s.addr(0x9000);
        s.ints(&[4000, 1]);
        s.mmap_anon(14, 0x7000_0000, 8192, 1);
        s.free(16, 0x9000);
        s.head(EventKind::Realloc, 17);
        s.addr(0);
        s.addr(0x9000);
        s.ints(&[64, 1]);
        s.head(EventKind::Realloc, 18);
        s.addr(0x9000);
        s.addr(0);
        s.ints(&[0, 1]);
        s.malloc(19, 0x5000, 8, 1);
        let decode = |hello: Vec<u8>, events: Vec<u8>| {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            d.feed(&hello, &mut |_, _| {}).unwrap();
            d.feed(&events, &mut |r, _| got.push(r.event.clone()))
                .unwrap();
            d.finish(&mut |r, _| got.push(r.event.clone())).unwrap();
            got
        };
        let got = decode(syn::hello(42, "/bin/x", b"x\0"), syn::events(20, &s));
        let stack = got
            .iter()
            .find_map(|e| match e {
                Event::Alloc { stack, .. } => Some(*stack),
                _ => None,
            })
            .unwrap();
        let alloc = |ptr, size| Event::Alloc {
            kind: EventKind::Malloc,
            ptr,
            size,
            align: 0,
            stack,
        };
        let realloc = |old, new, size| Event::Realloc {
            old,
            new,
            size,
            stack,
        };
        assert_eq!(
            got[1..],
            [
                alloc(0x5000, 24),
                realloc(0x5000, 0x9000, 4000),
                Event::Mmap {
                    addr: 0x7000_0000,
                    len: 8192,
                    prot: 3,
                    flags: 0x22,
                    fd: -1,
                    offset: 0,
                    stack
                },
                Event::Free { ptr: 0x9000 },
                realloc(0, 0x9000, 64),
                realloc(0x9000, 0, 0),
                alloc(0x5000, 8),
            ]
        );
        // A reference to more addresses than went by is damage.
        let mut bad = StreamBuilder::new(11, 0, 0, 0);
        bad.head(EventKind::Free, 10);
        bad.addr(0x5000);
        let ev = syn::events(20, &bad);
        let (tick, mut body) = inflate_events(&ev, Vec::new()).unwrap();
        // The free's address is the body's last three bytes (the
        // addresses come last): make it a reference to 100 allocations
        // back, and the directory's length of the addresses agree.
        body.truncate(body.len() - 3);
        push_uvarint(&mut body, 100 << 1 | HEAP_REF);
        body[16..20].copy_from_slice(&2u32.to_le_bytes());
        let mut ev = vec![MessageKind::Events as u8];
        push_uvarint(&mut ev, tick);
        push_uvarint(&mut ev, body.len() as u64);
        ev.extend_from_slice(&zstd::bulk::compress(&body, 1).unwrap());
        let mut d = Decoder::new();
        d.feed(&syn::hello(42, "/bin/x", b"x\0"), &mut |_, _| {})
            .unwrap();
        d.feed(&ev, &mut |_, _| {}).unwrap();
        assert!(matches!(
            d.finish(&mut |_, _| {}),
            Err(TraceError::Corrupt { reason, .. }) if reason.contains("cut short or unknown")
        ));
        // A directory that promises more than the message holds, or
        // parts that do not add up to it, is damage.
        let v4 = |body: &[u8]| {
            let mut m = vec![MessageKind::Events as u8];
            push_uvarint(&mut m, 30);
            push_uvarint(&mut m, body.len() as u64);
            m.extend_from_slice(&zstd::bulk::compress(body, 1).unwrap());
            let mut d = Decoder::new();
            d.feed(&syn::hello(42, "/bin/x", b"x\0"), &mut |_, _| {})
                .unwrap();
            d.feed(&m, &mut |_, _| {})
        };
        let dir = |n: u32, lens: [u32; 3]| {
            let mut b = n.to_le_bytes().to_vec();
            for v in [0, lens[0], lens[1], lens[2]] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b
        };
        for body in [
            u32::MAX.to_le_bytes().to_vec(),
            dir(1, [4, 0, 0]),
            [dir(1, [1, 1, 1]), vec![0; 4]].concat(),
            dir(1, [u32::MAX, u32::MAX, u32::MAX]),
        ] {
            assert!(matches!(v4(&body), Err(TraceError::Corrupt { .. })));
        }
    }
}
