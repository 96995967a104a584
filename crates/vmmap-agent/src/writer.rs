//! The writer thread: drains the threads' buffers, compresses them and
//! appends trace chunks to the file; also records module lists, clock
//! anchors and `/proc/self/maps` whenever it changes (which is how mappings
//! made inside glibc, invisible to any hook, get an owner later).

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use vmmap_wire::container::{chunk_bytes, file_header, CHUNK_TRACE};
use vmmap_wire::*;

use crate::block::{self, Buf};
use crate::placement::{self, Placement};
use crate::sys;
use crate::thread::{self, Thread, LIVE};

static FD: AtomicI32 = AtomicI32::new(-1);
static RUNNING: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicBool = AtomicBool::new(false);
static FLUSH_REQ: AtomicU64 = AtomicU64::new(0);
static FLUSH_DONE: AtomicU64 = AtomicU64::new(0);
/// Changed (and the writer woken) by [`flush`] and [`stop`]: the writer
/// sleeps between passes on it, so that a flush at exit is served at once
/// rather than at the next pass, up to 5 ms later (twice at exit: the
/// `atexit` flush, then the end record).
static WAKE: AtomicU32 = AtomicU32::new(0);
/// A pause asked by [`park`]: [`PAUSE_NONE`], then [`PAUSE_ASKED`], which
/// the writer answers with [`PAUSE_READY`] or [`PAUSE_REFUSED`]; then
/// [`PAUSE_GO`] (write everything and leave the state for the next
/// writer), [`PAUSE_STEP`] (leave the state as it is, at once) or
/// [`PAUSE_END`] (stop for good), answered with [`PAUSE_GONE`].
static PAUSE: AtomicU32 = AtomicU32::new(PAUSE_NONE);
const PAUSE_NONE: u32 = 0;
const PAUSE_ASKED: u32 = 1;
const PAUSE_READY: u32 = 2;
const PAUSE_REFUSED: u32 = 3;
const PAUSE_GO: u32 = 4;
const PAUSE_END: u32 = 5;
const PAUSE_GONE: u32 = 6;
const PAUSE_STEP: u32 = 7;
/// What a paused writer leaves to the one [`resume`] starts: its staging
/// columns, compressor, counters and the agent's own ranges, so that the
/// trace goes on as if the writer had never left.
static PARKED: std::sync::Mutex<Option<State>> = std::sync::Mutex::new(None);
/// The trace file as [`open`] opened it, to open it again after a pause:
/// its path and its (device, inode).
static TRACE_FILE: std::sync::Mutex<Option<(CString, u64, u64)>> = std::sync::Mutex::new(None);
/// Why the writer stops, for its END message (`vmmap_wire::END_*`).
pub static END_REASON: AtomicU64 = AtomicU64::new(vmmap_wire::END_EXIT);
static WRITER: AtomicPtr<Thread> = AtomicPtr::new(core::ptr::null_mut());
/// The writer thread's `pthread_self`, while it runs (0 otherwise): its
/// allocation calls are the agent's own ([`crate::agent_own`]).
static WRITER_SELF: AtomicU64 = AtomicU64::new(0);
/// The writer's kernel thread id and an address in its stack, for the
/// AGENT_MEMORY message: snapshots label its stack as the agent's.
static WRITER_TID: AtomicI32 = AtomicI32::new(0);
static WRITER_SP: AtomicU64 = AtomicU64::new(0);
/// A hook saw something that probably changed the mappings (a large
/// allocation, a new thread, a dlopen): read /proc/self/maps soon.
pub static MAPS_DIRTY: AtomicBool = AtomicBool::new(false);

static MAPS_BEFORE: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

/// The anonymous mappings now, as (start, length).
fn anon_ranges() -> Vec<(u64, u64)> {
    let Ok(maps) = std::fs::read("/proc/self/maps") else {
        return Vec::new();
    };
    crate::maps::lines(&maps)
        .filter(|m| m.inode == 0 && !m.path.starts_with(b"["))
        .map(|m| (m.start, m.size()))
        .collect()
}

/// How long a committed event may wait before it reaches the file.
const FLUSH_MS: u64 = 50;
/// Compress once this much is staged, whatever the time. The staging
/// columns, their copy for zstd and the compressed output are each about
/// this big: they are most of the agent's heap (docs/tracing.md,
/// "Footprint"). Larger chunks compress no better at zstd's level 1.
const STAGE_BYTES: usize = 1 << 20;
/// The most a chunk stages: [`STAGE_BYTES`] less one, one more segment,
/// its directory entry and the chunk's count. No staging buffer ever
/// grows: a doubled one once overflowed the agent's private heap.
const STAGE_CAP: usize = STAGE_BYTES + block::BUF_DATA + 64;

pub fn running() -> bool {
    RUNNING.load(Relaxed)
}

/// Whether `t` is the writer thread.
#[inline]
pub fn is_writer_thread(t: libc::pthread_t) -> bool {
    WRITER_SELF.load(Relaxed) == t
}

/// Whether `t` is the writer thread's record.
pub fn is_writer_thread_record(t: &Thread) -> bool {
    core::ptr::eq(WRITER.load(Relaxed), t)
}

/// Opens (creating if needed) the trace file for appending.
///
/// A followed process's file has a name anyone can foresee
/// (`trace.PID.vmmap`), often in a directory others may write to: a link
/// put there made a root process append its trace to the file it named
/// (any of root's), and a FIFO would have held the program in `open`. So
/// the file is made here, or else it must be a regular file of this
/// user's, opened without following a link or waiting.
pub fn open(path: &std::path::Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    // SAFETY: c is a valid C string.
    let made = unsafe { libc::open(c.as_ptr(), flags | libc::O_CREAT | libc::O_EXCL, 0o644) };
    let found = if made < 0 && crate::errno() == libc::EEXIST {
        // SAFETY: as above.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        match fd {
            0.. if own_regular(fd) => fd,
            0.. => {
                // SAFETY: the descriptor just opened here.
                unsafe { libc::syscall(libc::SYS_close, fd) };
                crate::set_errno(libc::EACCES);
                -1
            }
            _ => -1,
        }
    } else {
        made
    };
    // As the user it runs as, this image may not open the file (it was
    // started by an exec after the program gave up root): the launcher
    // hands it over (and refuses a link or another user's file as well).
    // Not a word on the program's stderr otherwise: its output must stay
    // its own; the trace then ends with that exec.
    let fd = match found {
        0.. => found,
        _ if denied() => match crate::handover::ask(path) {
            Some(fd) => fd,
            None => return false,
        },
        _ => return false,
    };
    let ready =
        file_identity(fd).filter(|&(size, ..)| size > 0 || sys::write_all(fd, &file_header()));
    let Some((_, dev, ino)) = ready else {
        // SAFETY: the descriptor just opened here, in the program's table.
        unsafe { libc::syscall(libc::SYS_close, fd) };
        return false;
    };
    *TRACE_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some((c, dev, ino));
    FD.store(fd, Relaxed);
    true
}

/// Whether `fd` is a regular file owned by this process's user.
fn own_regular(fd: i32) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    fstat(fd).is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_uid == me)
}

/// `fstat` of `fd`.
fn fstat(fd: i32) -> Option<libc::stat> {
    // SAFETY: zeroed is a valid stat; the buffer is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

/// Whether the last call was refused for want of rights (not for a
/// missing directory, a full disk...).
fn denied() -> bool {
    matches!(
        crate::errno(),
        libc::EACCES | libc::EPERM | libc::EROFS | libc::ELOOP
    )
}

/// The size, device and inode of the file open at `fd`.
fn file_identity(fd: i32) -> Option<(i64, u64, u64)> {
    fstat(fd).map(|st| (st.st_size, st.st_dev, st.st_ino))
}

/// Opens the trace file again (in the caller's table, as [`open`] does
/// before the writer takes it): by its path, which must still name the
/// same file (not a link, not another file put in its place).
fn reopen() -> Option<i32> {
    let file = TRACE_FILE.lock().unwrap_or_else(|e| e.into_inner());
    let (path, dev, ino) = file.as_ref()?;
    // SAFETY: path is a C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    let fd = match fd {
        0.. => fd,
        // The program gave up the rights to it before this call.
        _ if denied() => crate::handover::ask(std::path::Path::new(std::ffi::OsStr::from_bytes(
            path.to_bytes(),
        )))?,
        _ => return None,
    };
    match file_identity(fd) {
        Some((_, d, i)) if (d, i) == (*dev, *ino) => Some(fd),
        _ => {
            // SAFETY: the descriptor just opened here.
            unsafe { libc::syscall(libc::SYS_close, fd) };
            None
        }
    }
}

fn write_msg(msg: &[u8]) {
    #[cfg(not(test))]
    if crate::attach::attached() {
        crate::attach::push(&[msg]);
        return;
    }
    if let Ok(chunk) = chunk_bytes(CHUNK_TRACE, msg, msg.len()) {
        sys::write_all(FD.load(Relaxed), &chunk);
    }
}

/// Whether the agent was loaded by `vmmap attach`.
fn attached() -> bool {
    #[cfg(not(test))]
    return crate::attach::attached();
    #[cfg(test)]
    false
}

/// Writes the HELLO message: who we are and the clock anchor.
pub fn hello() {
    let mut m = vec![MessageKind::Hello as u8];
    push_uvarint(&mut m, u64::from(TRACE_VERSION));
    push_uvarint(&mut m, sys::getpid() as u64);
    // SAFETY: getppid has no preconditions.
    push_uvarint(&mut m, unsafe { libc::getppid() } as u64);
    // SAFETY: sysconf has no preconditions.
    push_uvarint(&mut m, unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64);
    let flags = u64::from(crate::fp_mode())
        | if attached() {
            vmmap_wire::attach::HELLO_ATTACHED
        } else {
            0
        }
        | if own_malloc() {
            vmmap_wire::HELLO_OWN_MALLOC
        } else {
            0
        };
    push_uvarint(&mut m, flags);
    clock_fields(&mut m);
    ANCHOR_TICKS.store(sys::ticks(), Relaxed);
    ANCHOR_NS.store(sys::clock_ns(libc::CLOCK_MONOTONIC), Relaxed);
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    push_bytes(&mut m, exe.as_os_str().as_bytes());
    push_bytes(
        &mut m,
        &std::fs::read("/proc/self/cmdline").unwrap_or_default(),
    );
    write_msg(&m);
}

/// Whether the program's calls to `malloc` bind to a definition other
/// than the agent's: the executable's own (a statically linked allocator,
/// which `vmmap run` refuses but an exec from a traced program reaches)
/// or an earlier preloaded library's. Preloaded only: an attached agent
/// hooks the slots that import `malloc`, and a program with none is
/// refused before it is attached.
fn own_malloc() -> bool {
    #[cfg(not(test))]
    if !attached() {
        // SAFETY: dlsym with a NUL-terminated name.
        let bound = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()) };
        // Compared by the object that holds it: the address of the
        // agent's own exported `malloc`, taken here, is the bound one too
        // (references to an exported symbol go through the interposition).
        let object = |at: *const libc::c_void| {
            // SAFETY: zeroed is a valid Dl_info; dladdr only fills it.
            let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
            // SAFETY: as above; `at` is only looked up.
            (unsafe { libc::dladdr(at, &mut info) } != 0).then_some(info.dli_fbase as usize)
        };
        let mine = object(own_malloc as *const libc::c_void);
        return !bound.is_null() && object(bound) != mine;
    }
    false
}

fn clock_fields(m: &mut Vec<u8>) {
    push_uvarint(m, sys::ticks());
    push_uvarint(m, sys::clock_ns(libc::CLOCK_MONOTONIC));
    push_uvarint(m, sys::clock_ns(libc::CLOCK_REALTIME));
}

/// Starts the writer thread with every signal blocked (the program's
/// signals must go to its own threads).
pub fn start() -> bool {
    // The mappings before the writer exists: whatever appears by the end
    // of its set-up (its stack, its malloc arena, its buffers) is ours.
    // Attached, the program's threads run meanwhile (what they map is
    // theirs), and reading the maps here would take a descriptor in the
    // program's table: the agent's memory is listed as it is made.
    if !attached() {
        *MAPS_BEFORE.lock().unwrap_or_else(|e| e.into_inner()) = anon_ranges();
    }
    spawn()
}

/// Starts a writer thread on the trace file at [`FD`] (see [`start`]).
fn spawn() -> bool {
    STOP.store(false, Relaxed);
    STOPPED.store(false, Relaxed);
    // SAFETY: sigset operations on local sets.
    let old = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    APART.store(0, Relaxed);
    START_ERRNO.store(0, Relaxed);
    let spawned = create_thread();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    if let Err(errno) = spawned {
        // A task limit (RLIMIT_NPROC, the cgroup's pids.max: systemd's
        // TasksMax=), or no memory for the thread's stack.
        START_ERRNO.store(errno, Relaxed);
        unstarted(errno);
        return false;
    }
    // The writer first takes the trace into a table of its own; then the
    // program's table gets the number back, before the program runs. A
    // writer that has not done so in time is abandoned (it will not
    // write: the number may be the program's by then).
    let mut state = APART.load(Acquire);
    // Polled every 50 µs (2 s at most): the writer is usually there
    // within a few dozen microseconds, and a whole millisecond's sleep
    // here was most of what a call that sends the writer away costs.
    for _ in 0..SPAWN_POLLS {
        if state != 0 {
            break;
        }
        sys::sleep_us(50);
        state = APART.load(Acquire);
    }
    if state == 0 {
        state = match APART.compare_exchange(0, 3, AcqRel, Acquire) {
            Ok(_) => 3,
            Err(now) => now,
        };
    }
    if state != 1 {
        // The writer could not take a table of its own, or not in time:
        // it will not write (it sees state 2 or 3), so this thread says
        // why the trace stops here.
        unstarted(0);
        return false;
    }
    // SAFETY: our own descriptor, in the program's table.
    unsafe { libc::syscall(libc::SYS_close, FD.load(Relaxed)) };
    // Recording starts only once the writer has its guarded record: the
    // thread's own start-up (naming itself, allocating) must not be traced.
    for _ in 0..SPAWN_POLLS {
        if !WRITER.load(Acquire).is_null() {
            RUNNING.store(true, Release);
            return true;
        }
        sys::sleep_us(50);
    }
    false
}

/// The writer could not be started: ends the trace from the calling
/// thread with [`END_NO_WRITER`] and gives the trace's descriptor back to
/// the program's table. The callers run where nothing else can use that
/// descriptor yet: the constructor before the program's code, a fork
/// child's first call, the program's only thread after [`park`]. Left
/// open, the descriptor would be one the program never opened.
fn unstarted(errno: i32) {
    let (bytes_in, bytes_out) = PARKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or((0, 0), |st| (st.bytes_in, st.bytes_out));
    let mut m = vec![MessageKind::End as u8];
    clock_fields(&mut m);
    push_uvarint(&mut m, block::STALLS.load(Relaxed));
    push_uvarint(&mut m, bytes_in);
    push_uvarint(&mut m, bytes_out);
    push_uvarint(&mut m, END_NO_WRITER);
    push_uvarint(&mut m, errno.max(0) as u64);
    write_msg(&m);
    let fd = FD.swap(-1, Relaxed);
    if fd >= 0 {
        // SAFETY: our own descriptor, in the program's table.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
}

/// The error number of the last writer thread that could not be created
/// (0: none), for the attach entry's answer.
pub static START_ERRNO: AtomicI32 = AtomicI32::new(0);

/// Creates the writer thread (256 KiB of stack, detached), named
/// `vmmap-agent`. Not with `std::thread`: Rust's start of a thread
/// allocates before `main` can say the thread is the agent's, and in an
/// attached process (where nothing else marks those calls as the
/// agent's) glibc gave the thread a 64 MiB malloc arena of its own for
/// them. Here `main` is the first thing the thread runs.
fn create_thread() -> Result<(), i32> {
    extern "C" fn start(_: *mut libc::c_void) -> *mut libc::c_void {
        // A panic must not cross into C (it would abort the program):
        // the writer then just ends, as a crashed writer does.
        let _ = std::panic::catch_unwind(main);
        core::ptr::null_mut()
    }
    // SAFETY: a zeroed attribute object, initialised before use and
    // destroyed after; the thread's start routine has the C signature.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return Err(libc::ENOMEM);
        }
        libc::pthread_attr_setstacksize(&mut attr, 256 * 1024);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut t: libc::pthread_t = 0;
        let r = libc::pthread_create(&mut t, &attr, start, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        match r {
            0 => Ok(()),
            e => Err(e),
        }
    }
}

/// How many times [`spawn`] looks for the writer, 50 µs apart: 2 s.
const SPAWN_POLLS: u32 = 40_000;

/// Whether the writer has its descriptor table apart: 0 not yet, 1 yes,
/// 2 it could not, 3 it was too late and must not write.
static APART: AtomicI32 = AtomicI32::new(0);

/// Gives the calling thread (the writer) a descriptor table of its own
/// holding only the trace file, `fd`. The program may then close, reuse
/// or replace any descriptor (daemons close 3..1023, or call close_range,
/// at start-up) without touching the trace, and the writer can never
/// write into a file of the program's that took the trace's number. The
/// writer's own reads (/proc/self/maps, /proc/stat) no longer take a
/// number in the program's table either. Hooking close, dup2 and
/// close_range instead would miss glibc's internal calls (closefrom) and
/// raw system calls; checking the descriptor before each write leaves a
/// window between the check and the write.
fn descriptors_apart(fd: i32) -> bool {
    // close_range(CLOSE_RANGE_UNSHARE) copies this thread's table and
    // closes a range in the copy in one call; unlike unshare(2), container
    // seccomp profiles (Docker's default) allow it without CAP_SYS_ADMIN.
    // The copy holds every descriptor of the program: closing them here
    // (in this table only) keeps the program's closes effective, a pipe
    // closed by the program reaching EOF.
    const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
    let close_range = |first: i32, last: u32, flags: u32| {
        // SAFETY: close_range on this thread's own table (after the first
        // call, a private one).
        unsafe { libc::syscall(libc::SYS_close_range, first as u32, last, flags) == 0 }
    };
    let (below, above) = ((fd > 0).then(|| (0, (fd - 1) as u32)), (fd + 1, u32::MAX));
    let ranged = match below {
        Some((lo, hi)) => {
            close_range(lo, hi, CLOSE_RANGE_UNSHARE) && close_range(above.0, above.1, 0)
        }
        None => close_range(above.0, above.1, CLOSE_RANGE_UNSHARE),
    };
    if ranged {
        return true;
    }
    // Before Linux 5.9 (or where close_range is filtered out).
    // SAFETY: unshare(CLONE_FILES) copies the calling thread's table;
    // nothing else changes.
    if unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_FILES) } != 0 {
        return false;
    }
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    let max = rl.rlim_cur.min(1 << 20) as i32;
    for other in (0..max).filter(|&o| o != fd) {
        // SAFETY: closing in this thread's own table.
        unsafe { libc::syscall(libc::SYS_close, other) };
    }
    true
}

/// In the child of `fork`: the writer thread does not exist there, nor
/// does its descriptor (it lived in the writer's own table; the number may
/// be one of the program's in the child's).
pub fn after_fork_child() {
    RUNNING.store(false, Relaxed);
    WRITER.store(core::ptr::null_mut(), Relaxed);
    // The writer is not in the child; a thread the child starts may get
    // its thread descriptor (glibc reuses the dead threads' stacks).
    WRITER_SELF.store(0, Relaxed);
    FD.store(-1, Relaxed);
    forget_parked();
}

/// Asks the writer to write everything committed so far and waits for it
/// (at most `ms`).
pub fn flush(ms: u64) {
    come_back(true);
    if !RUNNING.load(Relaxed) {
        return;
    }
    let want = FLUSH_REQ.fetch_add(1, SeqCst) + 1;
    wake_writer();
    for _ in 0..ms {
        if FLUSH_DONE.load(Acquire) >= want || !RUNNING.load(Relaxed) {
            return;
        }
        sys::sleep_ms(1);
    }
}

/// Writes everything, then the END message, and stops the writer.
pub fn stop(ms: u64) {
    come_back(true);
    if !RUNNING.load(Relaxed) {
        return;
    }
    STOP.store(true, SeqCst);
    wake_writer();
    for _ in 0..ms {
        if STOPPED.load(Acquire) {
            return;
        }
        sys::sleep_ms(1);
    }
}

/// Waits (at most `ms`) until the writer's thread has ended, its last
/// system calls (the stack's `madvise`, `exit`) made.
pub fn wait_gone(ms: u64) {
    let tid = WRITER_TID.load(Relaxed);
    for _ in 0..ms * 20 {
        if tid == 0 || !sys::thread_alive(tid) {
            return;
        }
        sys::sleep_us(50);
    }
}

/// A writer that [`park`] sent away: the trace file opened again in the
/// program's table (-1 when attached: the ring needs none), which
/// [`resume`] hands to the next writer.
pub struct Parked {
    fd: i32,
}

/// Takes the writer thread out of the process for a call the kernel
/// refuses to a process with another thread in it (`unshare` of a user
/// namespace, `setns` into a user or mount namespace): the writer writes
/// everything committed and ends, leaving its state to the next. Only when
/// the calling thread is the program's only one (else the call fails
/// without the agent too, and the trace's descriptor must not stand in a
/// table other threads use). When the trace file cannot be opened again
/// (the program dropped its rights to it, or moved its root), the writer
/// stops for good instead, with [`vmmap_wire::END_ALONE`]: the call must
/// behave as without the agent, the trace ends cleanly before it.
pub fn park(ms: u64) -> Option<Parked> {
    come_back(true);
    if !alone_with_writer(ms) {
        return None;
    }
    // The program's only thread is here: nothing else can touch its table
    // while the descriptor stands in it. Nothing is recorded until the
    // next writer runs: the leaving thread's end and the next one's start
    // (glibc's and Rust's own allocations) are the agent's, not the
    // program's.
    crate::ACTIVE.store(false, SeqCst);
    let fd = if attached() { Some(-1) } else { reopen() };
    if fd.is_none() {
        END_REASON.store(END_ALONE, SeqCst);
    }
    send_off(if fd.is_some() { PAUSE_GO } else { PAUSE_END }, ms);
    fd.map(|fd| Parked { fd })
}

/// Starts the next writer after [`park`], on the parked state, and
/// recording again.
pub fn resume(p: Parked) {
    FD.store(p.fd, Relaxed);
    if spawn() {
        crate::ACTIVE.store(true, SeqCst);
    }
}

/// Asks the writer whether the calling thread is the program's only one
/// (waiting at most `ms`); when it is, the writer waits for [`send_off`].
fn alone_with_writer(ms: u64) -> bool {
    if !RUNNING.load(Acquire) || PAUSE.load(SeqCst) != PAUSE_NONE {
        return false;
    }
    PAUSE.store(PAUSE_ASKED, SeqCst);
    wake_writer();
    if wait_pause(ms, |s| s != PAUSE_ASKED) == PAUSE_READY {
        return true;
    }
    // Refused, or no answer in time: take the question back (the
    // writer may be answering it just now).
    let _ = PAUSE.compare_exchange(PAUSE_ASKED, PAUSE_NONE, SeqCst, SeqCst);
    if PAUSE.load(SeqCst) == PAUSE_READY {
        PAUSE.store(PAUSE_NONE, SeqCst);
        wake_writer();
    } else if PAUSE.load(SeqCst) == PAUSE_REFUSED {
        PAUSE.store(PAUSE_NONE, SeqCst);
    }
    false
}

/// Sends a writer that answered [`alone_with_writer`] away with `how`
/// ([`PAUSE_GO`], [`PAUSE_STEP`] or [`PAUSE_END`]) and waits (at most
/// `ms` each) until its thread has ended.
fn send_off(how: u32, ms: u64) {
    PAUSE.store(how, SeqCst);
    wake_writer();
    wait_pause(ms, |s| s == PAUSE_GONE);
    wait_gone(ms);
    PAUSE.store(PAUSE_NONE, SeqCst);
}

/// When the writer that stepped out ([`step_out`]) comes back
/// (`CLOCK_MONOTONIC` nanoseconds; 0: it is not out).
static AWAY_UNTIL: AtomicU64 = AtomicU64::new(0);
/// How long the writer stays out ([`step_out`]).
const AWAY_NS: u64 = 20_000_000;
/// [`AWAY_UNTIL`] in ticks, a little early: the time-stamp counter is
/// read where `clock_gettime` took a hundred nanoseconds here, and the
/// clock decides once the counter has passed.
static AWAY_UNTIL_TICKS: AtomicU64 = AtomicU64::new(0);
/// Calls made while the writer is out, and how often among them the time
/// is looked at ([`come_back`]): a program that makes few calls has little
/// to write, and what it has waits at most that many calls longer.
static AWAY_CALLS: AtomicU32 = AtomicU32::new(0);
const AWAY_CHECK_EVERY: u32 = 64;
/// A tick and its CLOCK_MONOTONIC ns from the image's start, for the
/// counter's rate.
static ANCHOR_TICKS: AtomicU64 = AtomicU64::new(0);
static ANCHOR_NS: AtomicU64 = AtomicU64::new(0);

/// Sets [`AWAY_UNTIL`] (and [`AWAY_UNTIL_TICKS`]) to [`AWAY_NS`] from now.
fn away_from_now() {
    let (ticks, ns) = (sys::ticks(), sys::clock_ns(libc::CLOCK_MONOTONIC));
    let (t0, n0) = (ANCHOR_TICKS.load(Relaxed), ANCHOR_NS.load(Relaxed));
    let (dt, dn) = (ticks.saturating_sub(t0), ns.saturating_sub(n0));
    // Nine tenths of the span at the rate seen since the start; with no
    // rate yet (under a millisecond), the clock is asked at every call.
    let span = if t0 == 0 || dn < 1_000_000 {
        0
    } else {
        (u128::from(AWAY_NS) * u128::from(dt) * 9 / (u128::from(dn) * 10)) as u64
    };
    AWAY_UNTIL_TICKS.store(ticks + span, SeqCst);
    AWAY_UNTIL.store(ns + AWAY_NS, SeqCst);
}

/// Before the program, from its only thread, forks or looks at how many
/// threads it has: the writer leaves at once, its state and everything
/// not yet written parked, so that the program sees one thread as it
/// would without the agent (`crate::thread_count`). CPython 3.12 and later count the
/// threads right after `os.fork()` returns and warn on stderr when there
/// is more than one; Chromium's zygote checks the links of
/// `/proc/self/task` and stops when there are more than three. Recording
/// goes on meanwhile, into the threads' buffers; the writer comes back at
/// the program's first call [`AWAY_NS`] later, or at once when it is
/// wanted ([`come_back`]). Not when attached, nor when the program has
/// other threads (it sees more than one without the agent too).
pub fn step_out(ms: u64) -> bool {
    // Other threads of the program's: no need to wake the writer to learn
    // that it must stay.
    if attached() || thread::several_live() || !alone_with_writer(ms) {
        return false;
    }
    // As in park: the leaving thread's end is the agent's. It writes
    // nothing on its way out: the next writer does, and a fork waits for
    // no compression.
    crate::ACTIVE.store(false, SeqCst);
    send_off(PAUSE_STEP, ms);
    away_from_now();
    crate::ACTIVE.store(true, SeqCst);
    true
}

/// After the call the writer stepped out for (in the parent of a fork):
/// it stays out [`AWAY_NS`] from now.
pub fn stay_out() {
    if AWAY_UNTIL.load(Relaxed) != 0 {
        away_from_now();
    }
}

/// Whether the writer stepped out and has not come back.
#[inline(always)]
pub fn away() -> bool {
    AWAY_UNTIL.load(Relaxed) != 0
}

/// Brings back the writer that stepped out: when its time is up, or
/// at once with `now` (before the program starts a thread, before a
/// flush, when the buffers in flight reach their limit). It opens the
/// trace file again by its name, as after [`park`]; if the program has
/// since given up its rights to it or moved its root, the trace ends
/// there without an end record. Called only where the program has one
/// thread (every thread it starts brings the writer back first): the
/// next writer's start-up is the agent's.
#[cold]
pub fn come_back(now: bool) {
    let until = AWAY_UNTIL.load(SeqCst);
    // Every call of the program's comes here while the writer is out:
    // the time is looked at every [`AWAY_CHECK_EVERY`] calls only (even
    // `rdtsc` took an eighth of a fork-and-allocate loop's time here),
    // and the counter before the clock, the clock before the process id
    // (a system call).
    if until == 0
        || (!now
            && !AWAY_CALLS
                .fetch_add(1, Relaxed)
                .is_multiple_of(AWAY_CHECK_EVERY))
        || (!now && sys::ticks() < AWAY_UNTIL_TICKS.load(Relaxed))
        || (!now && sys::clock_ns(libc::CLOCK_MONOTONIC) < until)
        || !crate::same_process()
        || AWAY_UNTIL
            .compare_exchange(until, 0, SeqCst, SeqCst)
            .is_err()
    {
        return;
    }
    let e = crate::errno();
    let was = crate::ACTIVE.swap(false, SeqCst);
    let back = crate::own_all(|| {
        let fd = if attached() { Some(-1) } else { reopen() };
        fd.is_some_and(|fd| {
            FD.store(fd, Relaxed);
            spawn()
        })
    });
    crate::ACTIVE.store(was && back, SeqCst);
    crate::set_errno(e);
}

/// In the child of a fork: the parent's parked writer is not this
/// process's (a followed child starts a writer of its own).
fn forget_parked() {
    AWAY_UNTIL.store(0, Relaxed);
    PARKED.clear_poison();
    if let Ok(mut p) = PARKED.try_lock() {
        // Not freed: the child's copy of the parent's memory, untouched.
        core::mem::forget(p.take());
    }
}

/// Waits (at most `ms`) for the pause to reach a state `done` accepts.
fn wait_pause(ms: u64, done: impl Fn(u32) -> bool) -> u32 {
    for _ in 0..ms * 20 {
        let s = PAUSE.load(SeqCst);
        if done(s) {
            return s;
        }
        sys::sleep_us(50);
    }
    PAUSE.load(SeqCst)
}

/// The writer's answer to a pause: ready when this process has no thread
/// but the writer and the one asking (`/proc/self/stat`, read in the
/// writer's own table).
fn answer_pause() {
    let alone = own_stat().and_then(|s| threads_in_stat(&s)) == Some(2);
    let to = if alone { PAUSE_READY } else { PAUSE_REFUSED };
    let _ = PAUSE.compare_exchange(PAUSE_ASKED, to, SeqCst, SeqCst);
}

/// `/proc/self/stat` as of now, through the descriptor the writer opened
/// when it started (in its own table): a program that has since changed
/// its root (`chroot` into a directory without `/proc`) may still make a
/// call that needs it alone, and the kernel then answers it as without
/// the agent.
fn own_stat() -> Option<Vec<u8>> {
    let fd = STAT_FD.load(Relaxed);
    if fd < 0 {
        return std::fs::read("/proc/self/stat").ok();
    }
    let mut buf = vec![0u8; 1024];
    // SAFETY: the buffer is valid for its length; a procfs file is
    // generated anew at offset 0.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    buf.truncate(usize::try_from(n).ok()?);
    Some(buf)
}

/// The writer's `/proc/self/stat` (see [`own_stat`]), or -1.
static STAT_FD: AtomicI32 = AtomicI32::new(-1);

/// The thread count of a `/proc/PID/stat` line (the 20th field; the
/// second, the name in parentheses, may hold spaces and parentheses).
fn threads_in_stat(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(17)?.parse().ok()
}

fn wake_writer() {
    WAKE.fetch_add(1, SeqCst);
    sys::wake(&WAKE);
}

struct State {
    /// The staged segments (trace format 4): their directory (stream id
    /// and the lengths of its heads, fields and addresses, u32 LE each)...
    dir: Vec<u8>,
    /// ...and their parts, each kind in one column, in directory order.
    /// Compressed as one run per kind, zstd takes a third less time than
    /// over segments one after another (whose 128 KiB blocks each mixed
    /// the regular heads with the random addresses), and writes a little
    /// less.
    cols: [Vec<u8>; 3],
    /// The directory's count and the columns, one after another, for zstd.
    stage: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    maps: Vec<u8>,
    module_gen: u64,
    bytes_in: u64,
    bytes_out: u64,
    pass_tick: u64,
    /// Compressed output, reused.
    zbuf: Vec<u8>,
    /// Mappings that appeared while the writer set itself up.
    own: Vec<(u64, u64)>,
    /// Full buffers taken and not yet staged, oldest first, as addresses
    /// (see [`drain_full`]).
    backlog: Vec<usize>,
}

impl State {
    /// Every buffer at the capacity it keeps: none grows while tracing.
    fn new(compressor: zstd::bulk::Compressor<'static>) -> State {
        State {
            dir: Vec::new(),
            cols: [
                Vec::with_capacity(STAGE_BYTES / 2),
                Vec::with_capacity(STAGE_BYTES / 2),
                Vec::with_capacity(STAGE_BYTES / 2),
            ],
            stage: Vec::with_capacity(STAGE_CAP),
            compressor,
            maps: Vec::new(),
            module_gen: 0,
            bytes_in: 0,
            bytes_out: 0,
            pass_tick: 0,
            zbuf: Vec::with_capacity(zstd::zstd_safe::compress_bound(STAGE_CAP)),
            own: Vec::new(),
            backlog: Vec::new(),
        }
    }
}

fn main() {
    // SAFETY: pthread_self has no preconditions.
    WRITER_SELF.store(unsafe { libc::pthread_self() }, Relaxed);
    // SAFETY: naming the calling thread (15 bytes and the NUL).
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            c"vmmap-agent".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let here = 0u8;
    WRITER_SP.store(core::hint::black_box(&here) as *const u8 as u64, Relaxed);
    WRITER_TID.store(sys::gettid(), Relaxed);
    run();
    // Its descriptors went with its table.
    STAT_FD.store(-1, Relaxed);
    // Its record goes back to the registry (a later attach starts another
    // writer); the thread's key destructor then finds it not live.
    let b = WRITER.swap(core::ptr::null_mut(), AcqRel);
    if !b.is_null() {
        // SAFETY: the writer's own record.
        thread::free(unsafe { &mut *b });
    }
    WRITER_SELF.store(0, Relaxed);
}

fn run() {
    // Nothing is ever printed here: in this table, descriptor 2 is closed
    // or, when the program started without one, the trace itself. The
    // thread that started this one ends the trace with the reason when
    // the table could not be taken apart.
    let apart = descriptors_apart(FD.load(Relaxed));
    let to = if apart { 1 } else { 2 };
    if APART.compare_exchange(0, to, AcqRel, Acquire).is_err() || !apart {
        return;
    }
    // SAFETY: a C string; the descriptor goes into this thread's table.
    let stat = unsafe {
        libc::open(
            c"/proc/self/stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    STAT_FD.store(stat, Relaxed);
    let parked = PARKED.lock().unwrap_or_else(|e| e.into_inner()).take();
    let resumed = parked.is_some();
    let mut st = match parked {
        Some(st) => st,
        None => {
            let Ok(compressor) = zstd::bulk::Compressor::new(1) else {
                // No memory for it: the trace ends here without END, as
                // a crash would leave it.
                return;
            };
            State::new(compressor)
        }
    };
    let tid = sys::gettid();
    let b = thread::new_thread(tid);
    if b.is_null() {
        return;
    }
    // SAFETY: the key exists; the record stays guarded forever, so every
    // allocation this thread makes passes through untraced.
    unsafe { libc::pthread_setspecific(crate::KEY.load(Relaxed), b as *const libc::c_void) };
    // The staging buffer and the compressor exist by now: everything new
    // since start() is ours. Read before WRITER is set, while start()
    // still holds the program back: once it is set the program runs, and
    // a mapping it made at once (xz's dictionary) was counted as the
    // agent's. A writer after a pause goes on with the ranges found
    // before (its stack is the last one's, which glibc keeps for the next
    // thread of that size).
    if !resumed && !attached() {
        let before = std::mem::take(&mut *MAPS_BEFORE.lock().unwrap_or_else(|e| e.into_inner()));
        st.own = anon_ranges()
            .into_iter()
            .filter(|r| !before.contains(r))
            .collect();
    }
    WRITER.store(b, Release);
    if !resumed {
        if attached() {
            hello();
        }
        st.own.extend(own_image());
    }
    name_own_stack();
    let mut placement = Placement::new(placement::allowed_cpus());
    let mut last_write = sys::clock_ns(libc::CLOCK_MONOTONIC);
    let mut last_maps = 0u64;
    let mut last_second = last_write;
    loop {
        let seen = WAKE.load(SeqCst);
        let pause = PAUSE.load(SeqCst);
        if FLUSH_REQ.load(SeqCst) <= FLUSH_DONE.load(Relaxed)
            && !STOP.load(SeqCst)
            && !matches!(pause, PAUSE_ASKED | PAUSE_GO | PAUSE_END | PAUSE_STEP)
        {
            sys::wait_on(&WAKE, seen, 5);
        }
        let pause = PAUSE.load(SeqCst);
        if pause == PAUSE_ASKED {
            answer_pause();
            if PAUSE.load(SeqCst) == PAUSE_READY {
                // The asker's next word comes at once: a pass now (a
                // chunk to compress) would keep it waiting.
                continue;
            }
        }
        if pause == PAUSE_STEP {
            // Stepping out for a moment: everything stays where it is
            // (the staged columns, the full and partial buffers) for the
            // next writer, which writes it.
            RUNNING.store(false, Relaxed);
            *PARKED.lock().unwrap_or_else(|e| e.into_inner()) = Some(st);
            PAUSE.store(PAUSE_GONE, SeqCst);
            return;
        }
        if pause == PAUSE_END {
            STOP.store(true, SeqCst);
        }
        let leaving = pause == PAUSE_GO;
        #[cfg(not(test))]
        if crate::attach::writer_pass() {
            STOP.store(true, SeqCst);
        }
        let stop = STOP.load(Acquire);
        let flush_req = FLUSH_REQ.load(Acquire);
        let flushing = flush_req > FLUSH_DONE.load(Relaxed) || stop || leaving;
        let now = sys::clock_ns(libc::CLOCK_MONOTONIC);
        st.pass_tick = sys::ticks();
        drain_full(&mut st, &mut placement);
        let due = now - last_write >= FLUSH_MS * 1_000_000;
        // A lane's current buffer comes after its full ones: not while
        // some of those wait in the backlog.
        if (due || flushing) && st.backlog.is_empty() {
            drain_partials(&mut st, &mut placement);
        }
        let staged = staged(&st);
        if staged > 0 && (due || flushing || staged >= STAGE_BYTES) {
            write_staged(&mut st, &mut placement);
            last_write = now;
        } else if due {
            last_write = now;
        }
        crate::unwind::rebuild_if_wanted();
        if crate::unwind::MODULE_GENERATION.load(Acquire) != st.module_gen {
            write_modules(&mut st);
        }
        let dirty = MAPS_DIRTY.load(Relaxed) && now - last_maps >= 20_000_000;
        if dirty || now - last_maps >= 1_000_000_000 || flushing {
            MAPS_DIRTY.store(false, Relaxed);
            write_maps(&mut st);
            last_maps = now;
        }
        if now - last_second >= 1_000_000_000 {
            let mut m = vec![MessageKind::Clock as u8];
            clock_fields(&mut m);
            write_msg(&m);
            collect_dead_threads();
            last_second = now;
        }
        if flushing {
            FLUSH_DONE.store(flush_req, Release);
        }
        if stop {
            let mut m = vec![MessageKind::End as u8];
            clock_fields(&mut m);
            push_uvarint(&mut m, block::STALLS.load(Relaxed));
            push_uvarint(&mut m, st.bytes_in);
            push_uvarint(&mut m, st.bytes_out);
            push_uvarint(&mut m, END_REASON.load(Relaxed));
            write_msg(&m);
            RUNNING.store(false, Relaxed);
            #[cfg(not(test))]
            if attached() {
                // The buffers and the compressor go back to the heap
                // before the heap gives its free end back.
                drop(st);
                crate::attach::release_memory();
            }
            #[cfg(not(test))]
            crate::attach::writer_done();
            STOPPED.store(true, Release);
            if pause == PAUSE_END {
                PAUSE.store(PAUSE_GONE, SeqCst);
            }
            return;
        }
        if leaving {
            RUNNING.store(false, Relaxed);
            *PARKED.lock().unwrap_or_else(|e| e.into_inner()) = Some(st);
            PAUSE.store(PAUSE_GONE, SeqCst);
            return;
        }
    }
}

/// Bytes staged for the next chunk.
fn staged(st: &State) -> usize {
    st.dir.len() + st.cols.iter().map(Vec::len).sum::<usize>()
}

/// Compresses and writes what is staged, where [`Placement`] says.
fn write_staged(st: &mut State, placement: &mut Option<Placement>) {
    match placement.as_mut() {
        Some(p) => p.run(|| write_events(st)),
        None => write_events(st),
    }
}

/// The agent's library image: the pages of its PT_LOAD segments, as
/// (start, length). Listed with the agent's memory, so that snapshots show
/// its code and data as the agent's, not as one more of the program's
/// libraries.
fn own_image() -> Vec<(u64, u64)> {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> i32 {
        // SAFETY: the loader passes a valid info; data is our Vec.
        let (out, info) = unsafe { (&mut *(data as *mut Vec<(u64, u64)>), &*info) };
        let phdrs = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: dlpi_phnum headers at dlpi_phdr.
            unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let here = own_image as *const () as u64;
        let page = 4096u64;
        let loads = phdrs.iter().filter(|p| p.p_type == libc::PT_LOAD);
        let ranges: Vec<(u64, u64)> = loads
            .map(|p| {
                let start = (info.dlpi_addr + p.p_vaddr) & !(page - 1);
                let end = (info.dlpi_addr + p.p_vaddr + p.p_memsz).next_multiple_of(page);
                (start, end - start)
            })
            .collect();
        if ranges.iter().any(|&(s, l)| s <= here && here < s + l) {
            *out = ranges;
            return 1;
        }
        0
    }
    let mut out: Vec<(u64, u64)> = Vec::new();
    // SAFETY: the callback only reads loader data.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut out as *mut _ as *mut libc::c_void) };
    out
}

/// Names the writer thread's stack mapping, as the agent's other memory.
fn name_own_stack() {
    let here = &0u8 as *const u8 as u64;
    let Ok(maps) = std::fs::read("/proc/self/maps") else {
        return;
    };
    let mine = crate::maps::lines(&maps).find(|m| m.start <= here && here < m.end && m.inode == 0);
    if let Some(m) = mine {
        sys::name_agent_memory(m.start as usize, m.size() as usize);
    }
}

/// Stages the records of `bf` committed since the writer last took some
/// (up to the packed length `len`): its directory entry, and its heads,
/// fields and addresses at the ends of their columns (trace format 4).
fn segment(st: &mut State, placement: &mut Option<Placement>, id: u32, bf: &Buf, len: usize) {
    let (to, from) = (block::unpack(len), block::unpack(bf.copied));
    let part = |i: usize| {
        let start = block::PART_START[i];
        &bf.data[start + from[i].min(to[i])..start + to[i]]
    };
    let parts = [part(0), part(1), part(2)];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total == 0 {
        return;
    }
    // Written first when it would not fit: the columns keep the capacity
    // they were made with, and no chunk stages more than STAGE_CAP.
    let full = staged(st) >= STAGE_BYTES
        || st
            .cols
            .iter()
            .zip(&parts)
            .any(|(c, p)| c.len() + p.len() > c.capacity());
    if full && staged(st) > 0 {
        write_staged(st, placement);
    }
    st.dir.extend_from_slice(&id.to_le_bytes());
    for (col, p) in st.cols.iter_mut().zip(parts) {
        st.dir.extend_from_slice(&(p.len() as u32).to_le_bytes());
        col.extend_from_slice(p);
    }
}

/// Stages every full buffer, compressing and writing whenever
/// [`STAGE_BYTES`] are staged: a backlog (the writer was descheduled while
/// the threads filled many buffers) never grows the staging buffers.
///
/// A pause asked meanwhile ([`alone_with_writer`]: a fork waits for the
/// answer) stops it between two buffers: the rest stay in the state's
/// backlog, in order, for the next pass or the next writer.
fn drain_full(st: &mut State, placement: &mut Option<Placement>) {
    st.backlog
        .extend(block::take_full().into_iter().map(|b| b as usize));
    let mut done = 0;
    while done < st.backlog.len() && PAUSE.load(Relaxed) != PAUSE_ASKED {
        let buf = st.backlog[done] as *mut Buf;
        // SAFETY: a full buffer belongs to the writer until given back; its
        // owner lane is never unmapped.
        let (bf, owner) = unsafe { (&mut *buf, &mut *(*buf).owner) };
        let len = bf.len.load(Acquire);
        segment(st, placement, owner.id, bf, len);
        owner.w_done = bf.seq;
        block::give_back(buf);
        done += 1;
    }
    st.backlog.drain(..done);
}

/// Copies the committed part of every lane's current buffer, so that
/// quiet threads' events reach the file too.
fn drain_partials(st: &mut State, placement: &mut Option<Placement>) {
    let session = crate::session();
    block::each(|b| {
        if b.session != session {
            return; // an earlier session's stream, dropped when next leased
        }
        let cur: *mut Buf = b.buf.load(Acquire);
        if cur.is_null() {
            return;
        }
        // SAFETY: the buffer cannot be recycled before the writer (this
        // thread) has drained it from the full list.
        let bf = unsafe { &mut *cur };
        if bf.seq != b.w_done + 1 {
            return; // an older buffer of this thread is still in flight
        }
        let len = bf.len.load(Acquire);
        if len != bf.copied {
            segment(st, placement, b.id, bf, len);
            bf.copied = len;
        }
    });
}

/// Compresses the staged segments into a buffer kept across calls (a fresh
/// multi-megabyte buffer each time would cost page faults) and writes the
/// chunk with one `writev`, header and payload uncopied.
fn write_events(st: &mut State) {
    // The previous pass's copy goes only now: cleared, a Vec keeps its
    // memory.
    st.stage.clear();
    st.stage.reserve_exact(4 + staged(st));
    let count = (st.dir.len() / 16) as u32;
    st.stage.extend_from_slice(&count.to_le_bytes());
    st.stage.extend_from_slice(&st.dir);
    for col in &st.cols {
        st.stage.extend_from_slice(col);
    }
    st.dir.clear();
    st.cols.iter_mut().for_each(Vec::clear);
    let raw = st.stage.len();
    st.zbuf.clear();
    st.zbuf.reserve_exact(zstd::zstd_safe::compress_bound(raw));
    if st
        .compressor
        .compress_to_buffer(&st.stage, &mut st.zbuf)
        .is_err()
    {
        // The buffer holds the bound: only a lack of memory gets here,
        // and these events are lost.
        return;
    }
    let mut prefix = vec![MessageKind::Events as u8];
    push_uvarint(&mut prefix, st.pass_tick);
    push_uvarint(&mut prefix, raw as u64);
    let total = prefix.len() + st.zbuf.len();
    #[cfg(not(test))]
    if crate::attach::attached() {
        crate::attach::push(&[&prefix, &st.zbuf]);
        st.bytes_in += raw as u64;
        st.bytes_out += total as u64;
        return;
    }
    if let Ok(h) = vmmap_wire::container::chunk_header(CHUNK_TRACE, &[&prefix, &st.zbuf], total) {
        sys::write_parts(FD.load(Relaxed), &[&h, &prefix, &st.zbuf]);
    }
    st.bytes_in += raw as u64;
    st.bytes_out += total as u64;
}

fn write_maps(st: &mut State) {
    let Ok(maps) = std::fs::read("/proc/self/maps") else {
        return;
    };
    if maps == st.maps {
        return;
    }
    let tick = sys::ticks();
    let mut own = st.own.clone();
    block::own_memory(&mut own);
    thread::own_memory(&mut own);
    own.extend(crate::heap::range());
    crate::heap::own_blocks(&mut own);
    #[cfg(not(test))]
    crate::attach::own_memory(&mut own);
    // The writer's buffers, made while it set itself up, are in both the
    // ranges found then and the heap's list of its own mappings.
    own.sort_unstable();
    own.dedup();
    let mut a = vec![MessageKind::AgentMemory as u8];
    push_uvarint(&mut a, tick);
    push_uvarint(&mut a, own.len() as u64);
    for (s, l) in own {
        push_uvarint(&mut a, s);
        push_uvarint(&mut a, l);
    }
    push_uvarint(&mut a, WRITER_TID.load(Relaxed) as u64);
    push_uvarint(&mut a, WRITER_SP.load(Relaxed));
    write_msg(&a);
    let mut m = vec![MessageKind::Maps as u8];
    push_uvarint(&mut m, tick);
    match st.compressor.compress(&maps) {
        Ok(z) => {
            push_uvarint(&mut m, maps.len() as u64);
            m.extend_from_slice(&z);
            write_msg(&m);
        }
        Err(_) => return,
    }
    st.maps = maps;
}

fn write_modules(st: &mut State) {
    let list = crate::unwind::modules();
    if list.is_null() {
        return;
    }
    // SAFETY: published lists are never freed.
    st.module_gen = unsafe { (*list).generation };
    let mut m = vec![MessageKind::Modules as u8];
    push_uvarint(&mut m, sys::ticks());
    describe_modules(&mut m);
    write_msg(&m);
}

/// For every loaded object: load bias, path, build id and PT_LOAD
/// segments (vaddr, memsz, file offset, flags).
fn describe_modules(m: &mut Vec<u8>) {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> i32 {
        // SAFETY: the loader passes a valid info; data is our Vec.
        let (out, info) = unsafe { (&mut *(data as *mut Vec<Vec<u8>>), &*info) };
        let mut rec = Vec::new();
        push_uvarint(&mut rec, info.dlpi_addr);
        let name = if info.dlpi_name.is_null() {
            &[][..]
        } else {
            // SAFETY: dlpi_name is a C string.
            unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        // The path as /proc/self/maps prints it (links resolved), so that
        // mappings and modules can be matched later.
        let resolved = if name.is_empty() && out.is_empty() {
            std::fs::read_link("/proc/self/exe").unwrap_or_default()
        } else {
            let p = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
            std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
        };
        let name = resolved.as_os_str().as_bytes();
        push_bytes(&mut rec, name);
        let phdrs = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: dlpi_phnum headers at dlpi_phdr.
            unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        // SAFETY: note segments are mapped.
        push_bytes(&mut rec, &unsafe { build_id(info.dlpi_addr, phdrs) });
        let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type == libc::PT_LOAD).collect();
        push_uvarint(&mut rec, loads.len() as u64);
        for p in loads {
            push_uvarint(&mut rec, p.p_vaddr);
            push_uvarint(&mut rec, p.p_memsz);
            push_uvarint(&mut rec, p.p_offset);
            push_uvarint(&mut rec, u64::from(p.p_flags));
        }
        out.push(rec);
        0
    }
    let mut recs: Vec<Vec<u8>> = Vec::new();
    // SAFETY: the callback only reads loader data.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut recs as *mut _ as *mut libc::c_void) };
    push_uvarint(m, recs.len() as u64);
    for r in recs {
        m.extend_from_slice(&r);
    }
}

/// The GNU build id from the PT_NOTE segments, or empty.
///
/// # Safety
/// The segments must be mapped at `base + p_vaddr`.
unsafe fn build_id(base: u64, phdrs: &[libc::Elf64_Phdr]) -> Vec<u8> {
    for p in phdrs.iter().filter(|p| p.p_type == libc::PT_NOTE) {
        // SAFETY: per the contract.
        let notes = unsafe {
            core::slice::from_raw_parts((base + p.p_vaddr) as *const u8, p.p_memsz as usize)
        };
        if let Some(id) = vmmap_wire::find_build_id_note(notes) {
            return id.to_vec();
        }
    }
    Vec::new()
}

/// Threads whose key destructor never ran (they were created after their
/// destructor round, or died in an odd way): their records are free once
/// the kernel says they are gone.
fn collect_dead_threads() {
    thread::each(|t| {
        if t.state.load(Acquire) == LIVE
            && !is_writer_thread_record(t)
            && t.tid > 0
            && !sys::thread_alive(t.tid)
        {
            thread::free(t);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_count_is_read_past_a_name_that_holds_parentheses() {
        let line = b"4242 (a) b (c) R 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 7 0 99 \n";
        assert_eq!(threads_in_stat(line), Some(7));
        assert_eq!(threads_in_stat(b"4242 (x) R 1"), None);
        let own = std::fs::read("/proc/self/stat").unwrap();
        assert!(threads_in_stat(&own).is_some_and(|n| n >= 1));
    }

    /// A buffer whose committed records are `lens` bytes of each part.
    fn buffer(lens: [usize; block::PARTS]) -> Box<Buf> {
        // SAFETY: all-zero is a valid Buf (null links, zero counts).
        let b: Box<Buf> = unsafe { Box::new_zeroed().assume_init() };
        b.len.store(block::pack(lens), Relaxed);
        b
    }

    /// Segments as skewed as a lane can make them (one part full, the
    /// others nearly empty) and many partial ones: the staging buffers keep
    /// the capacity they were made with. A doubled staging buffer once
    /// overflowed the agent's heap, whose fallback then reached the
    /// program's allocator (issue 21).
    #[test]
    fn staging_never_grows_whatever_the_mix_of_segments() {
        let mut st = State::new(zstd::bulk::Compressor::new(1).unwrap());
        let caps = |st: &State| {
            (
                st.cols.each_ref().map(Vec::capacity),
                st.stage.capacity(),
                st.zbuf.capacity(),
            )
        };
        let before = caps(&st);
        let mut none = None;
        for round in 0..400usize {
            for part in 0..block::PARTS {
                let mut lens = [1; block::PARTS];
                lens[part] = block::PART_CAP[part];
                let bf = buffer(lens);
                let len = bf.len.load(Relaxed);
                segment(&mut st, &mut none, round as u32, &bf, len);
            }
            // A partial buffer taken twice, as drain_partials does.
            let mut bf = buffer([100, 200, 50]);
            let len = bf.len.load(Relaxed);
            segment(&mut st, &mut none, 7, &bf, len);
            bf.copied = len;
            bf.len.store(block::pack([300, 900, 70]), Relaxed);
            segment(&mut st, &mut none, 7, &bf, bf.len.load(Relaxed));
            assert!(staged(&st) <= STAGE_CAP, "round {round}: {}", staged(&st));
        }
        write_events(&mut st);
        assert_eq!(caps(&st), before);
    }
}
