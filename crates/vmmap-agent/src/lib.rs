//! The LD_PRELOAD agent of `vmmap run`.
//!
//! It interposes the malloc family, the mapping calls, thread creation,
//! `dlopen`/`dlclose`, `fork`, the `exec` family and `_exit`, records each
//! call with a timestamp, the thread and (for allocations and mappings) the
//! call stack, and appends the records to the trace file as native-format
//! chunks from one writer thread. Design and pitfalls: `docs/tracing.md`.
//!
//! Rules every hook follows: no Rust `thread_local!` (see [`thread`]), no
//! lock and no system call on the common path, never call the exported
//! `malloc`/`mmap` for the agent's own needs, and pass nested calls (from
//! the agent itself, or a signal handler that interrupts a hook) straight
//! through without recording.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]
// Without the hooks (see below) much of the agent has no caller.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod ages;
mod alone;
// Attach mode (`vmmap attach`): needs the hooks, as they do.
#[cfg(not(test))]
mod attach;
mod block;
mod env;
mod handover;
mod heap;
// The exported hooks (`malloc`, `mmap`, …) and the constructor are left
// out of the unit-test build: a test binary that exported them would
// interpose its own allocator and trace itself. What the tests exercise
// (encoding, buffers, parsing) does not need them; the hooks are tested
// through the real `vmmap run` in vmmap-cli's tests.
#[cfg(not(test))]
#[macro_use]
mod hooks;
mod maps;
mod memo;
mod next;
mod placement;
mod record;
mod sys;
mod thread;
mod thread_count;
mod unwind;
mod writer;

use core::ffi::c_void;
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicI32, AtomicU32, Ordering::*};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::OnceLock;

use thread::Thread;

/// The agent's Rust allocations: its private heap ([`heap`]), or a mapping
/// of their own when large ([`heap::DIRECT`]) or when the heap is full. Never the program's allocator:
/// anything interposed after the agent would see calls the trace does not
/// hold.
struct AgentHeap;

// SAFETY: dlmalloc's aligned calls meet GlobalAlloc's contract for any
// power-of-two alignment, as does `heap::map_block`; each block is given
// back to the allocator it came from (told apart by address).
unsafe impl GlobalAlloc for AgentHeap {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() >= heap::DIRECT {
            let p = heap::map_block(l.align(), l.size());
            if !p.is_null() {
                return p as *mut u8;
            }
        }
        let p = heap::memalign(l.align(), l.size());
        if !p.is_null() {
            return p as *mut u8;
        }
        heap::map_block(l.align(), l.size()) as *mut u8
    }
    unsafe fn dealloc(&self, p: *mut u8, _l: Layout) {
        if heap::contains(p as *const c_void) {
            // SAFETY: a live private block.
            unsafe { heap::free(p as *mut c_void) }
        } else {
            // SAFETY: not the heap's, so it came from map_block above.
            unsafe { heap::unmap_block(p as *mut c_void) }
        }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if l.align() <= 16 && new < heap::DIRECT && heap::contains(p as *const c_void) {
            // SAFETY: a live private block, at dlmalloc's own alignment.
            let q = unsafe { heap::realloc(p as *mut c_void, new) };
            if !q.is_null() {
                return q as *mut u8;
            }
        }
        // SAFETY: a new block, the contents copied, the old one freed.
        unsafe {
            let q = self.alloc(Layout::from_size_align_unchecked(new, l.align()));
            if !q.is_null() {
                core::ptr::copy_nonoverlapping(p, q, l.size().min(new));
                self.dealloc(p, l);
            }
            q
        }
    }
}

#[global_allocator]
static HEAP: AgentHeap = AgentHeap;

/// Set while the agent starts (its constructor, or a followed child's new
/// trace): the process is single-threaded then, and every allocation made
/// is the agent's own.
static OWN_ALL: AtomicBool = AtomicBool::new(false);

/// Whether an allocation call that is not recorded (no hook entered) is
/// the agent's own, to be served from its private heap: made while the
/// agent starts, or on the writer thread (whatever calls it: zstd,
/// `realpath`, glibc's thread start and exit).
#[inline]
/// Runs `f` with every allocation counted as the agent's own: only where
/// no thread of the program's can be allocating meanwhile.
pub(crate) fn own_all<R>(f: impl FnOnce() -> R) -> R {
    OWN_ALL.store(true, SeqCst);
    let r = f();
    OWN_ALL.store(false, SeqCst);
    r
}

pub(crate) fn agent_own() -> bool {
    // SAFETY: pthread_self has no preconditions.
    OWN_ALL.load(Relaxed) || writer::is_writer_thread(unsafe { libc::pthread_self() })
}
/// Bumped on every attach and in a followed `fork` child, each a new
/// trace: a thread from an earlier one starts again on its first call
/// (see [`enter`]), a lane starts a new stream when next leased.
static SESSION: AtomicU32 = AtomicU32::new(0);

/// The current attach session (0 when preloaded).
#[inline(always)]
pub(crate) fn session() -> u32 {
    SESSION.load(Relaxed)
}

/// Hooks record only while this is set: after a successful start, and not
/// in an untraced child.
pub(crate) static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The program put itself under seccomp ([`hooks`]' `prctl` and
/// `syscall`): the agent has stopped and makes no system call from then
/// on, since the filter may kill the process for one the program never
/// makes. The hooks pass straight through, as in a `vfork` child. (An
/// image that starts under a filter is traced: the agent judged the
/// filter to let it through when the program installed it, or vmmap run
/// was asked to load the agent regardless; the agent then leaves out
/// `membarrier`.)
pub(crate) static QUIET: AtomicBool = AtomicBool::new(false);
/// The pthread key of the per-thread records ([`thread::Thread`]).
static KEY: AtomicU32 = AtomicU32::new(0);
/// Frame-pointer unwinding was asked for.
static FP: AtomicBool = AtomicBool::new(false);
/// The process this agent instance started in (the kernel's pid: a
/// `vfork` child shares our memory and must not touch our state).
static PID: AtomicI32 = AtomicI32::new(0);

/// What the environment asked for.
pub(crate) struct Config {
    /// The trace file of this process.
    pub path: std::path::PathBuf,
    /// The main trace file (the launcher's child's), next to which every
    /// followed process writes its own.
    pub main: std::path::PathBuf,
    /// Trace the children of `fork` into files of their own.
    pub follow_forks: bool,
    /// The launcher's pid namespace (its inode), when it said.
    pub pid_ns: Option<u64>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub(crate) fn config() -> Option<&'static Config> {
    CONFIG.get()
}

#[inline(always)]
pub(crate) fn fp_mode() -> bool {
    FP.load(Relaxed)
}

/// Enters a hook: returns the thread's record with the guard set, or None
/// if this call must not be recorded (agent inactive, nested call, no
/// memory). The record functions lease a lane themselves.
#[inline(always)]
pub(crate) fn enter() -> Option<&'static mut Thread> {
    if !ACTIVE.load(Relaxed) {
        return None;
    }
    if writer::away() {
        writer::come_back(false);
    }
    // SAFETY: the key was created before ACTIVE was set.
    let p = unsafe { libc::pthread_getspecific(KEY.load(Relaxed)) } as *mut Thread;
    if p.is_null() {
        return new_thread_record();
    }
    // SAFETY: thread records are never unmapped and this one is the
    // thread's own.
    let b = unsafe { &mut *p };
    if b.in_hook.load(Relaxed) {
        return None;
    }
    if b.session != session() {
        return restart_thread(b);
    }
    b.in_hook.store(true, Relaxed);
    compiler_fence(SeqCst);
    Some(b)
}

/// Leaves a hook entered with [`enter`].
#[inline(always)]
pub(crate) fn leave(b: &mut Thread) {
    compiler_fence(SeqCst);
    b.in_hook.store(false, Relaxed);
}

/// The calling thread's record is from an earlier attach (or, in a
/// followed `fork` child, the parent's trace): the thread starts again in
/// this trace (guard set, as [`new_thread_record`]).
#[cold]
fn restart_thread(b: &'static mut Thread) -> Option<&'static mut Thread> {
    b.in_hook.store(true, Relaxed);
    compiler_fence(SeqCst);
    thread::restart(b, sys::gettid());
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    record::thread_start(b, me);
    Some(b)
}

/// The calling thread has no record yet: make one (guard already set in
/// it, so the allocations made here pass through) and start it.
#[cold]
fn new_thread_record() -> Option<&'static mut Thread> {
    let saved = errno();
    let tid = sys::gettid();
    let p = thread::new_thread(tid);
    if p.is_null() {
        return None;
    }
    // SAFETY: pthread_setspecific on a key below 32 does not allocate.
    unsafe { libc::pthread_setspecific(KEY.load(Relaxed), p as *const c_void) };
    // SAFETY: the record is ours.
    let b = unsafe { &mut *p };
    let (lo, hi) = stack_bounds();
    b.stack_lo = lo;
    b.stack_hi = hi;
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    record::thread_start(b, me);
    set_errno(saved);
    Some(b)
}

extern "C" {
    /// Set by the dynamic loader: the stack pointer at process entry, above
    /// every frame of the main thread.
    static __libc_stack_end: *mut c_void;
}

/// The calling thread's stack bounds (low end 0 when unknown), found
/// without locks or allocation. `pthread_getattr_np` is no use here: it
/// holds the thread's lock while it allocates (for the main thread it
/// reads /proc/self/maps through fopen), and that allocation lands in a
/// hook that would ask again.
fn stack_bounds() -> (usize, usize) {
    let page = 4096usize;
    if sys::gettid() == sys::getpid() {
        // SAFETY: the loader sets __libc_stack_end before any code runs.
        let end = unsafe { __libc_stack_end } as usize;
        let hi = (end + page - 1) & !(page - 1);
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: rl is a valid out-pointer.
        let lo = if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut rl) } == 0
            && rl.rlim_cur != libc::RLIM_INFINITY
        {
            hi.saturating_sub(rl.rlim_cur as usize)
        } else {
            0
        };
        return (lo, hi);
    }
    // glibc on x86_64 keeps the thread descriptor (what pthread_self points
    // to) at the top of the thread's stack block: every frame lies below.
    // SAFETY: pthread_self has no preconditions.
    let tcb = unsafe { libc::pthread_self() } as usize;
    (0, tcb)
}

pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(v: i32) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = v };
}

/// Key destructor: the thread is exiting. Its exit is recorded, and its
/// record is free at once (its events are in the lanes).
unsafe extern "C" fn thread_exit(p: *mut c_void) {
    // SAFETY: the key only ever holds our thread records.
    let b = unsafe { &mut *(p as *mut Thread) };
    if writer::is_writer_thread_record(b) || b.state.load(Acquire) != thread::LIVE {
        return;
    }
    if ACTIVE.load(Relaxed) && b.session == session() {
        b.in_hook.store(true, Relaxed);
        record::plain(b, vmmap_wire::EventKind::ThreadExit, &[], &[], false);
    }
    thread::free(b);
}

/// Runs before the program's own constructors (preloaded objects are
/// initialised first): reads the environment, opens the trace and starts
/// the writer.
extern "C" fn init() {
    // Loaded by `vmmap attach` (dlopen, no settings in the environment):
    // the attach entry does the rest; the allocator is the one the
    // program's own modules bind to, resolved then.
    if std::env::var_os("VMMAP_TRACE_FILE").is_none() {
        return;
    }
    OWN_ALL.store(true, SeqCst);
    start();
    OWN_ALL.store(false, SeqCst);
}

/// The constructor's work (see [`init`]), every allocation the agent's own.
fn start() {
    next::resolve_now();
    let cfg = read_config();
    env::scrub();
    let Some(cfg) = cfg else { return };

    if !writer::open(&cfg.path) {
        return;
    }
    let _ = CONFIG.set(cfg);
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: thread_exit has the destructor signature.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) } != 0 {
        return;
    }
    KEY.store(key, Relaxed);
    KEY_MADE.store(true, SeqCst);
    PID.store(sys::getpid(), Relaxed);
    unwind::rebuild_modules();
    writer::hello();
    // SAFETY: nobody dlcloses a preloaded object, so the handlers stay
    // loaded; at_exit is a plain function too.
    unsafe {
        fork_handlers();
        libc::atexit(at_exit);
    }
    thread::setup_bias();
    if writer::start() {
        ACTIVE.store(true, Release);
    }
}

/// Registers the fork handlers: the private heap's first (a child's
/// handlers run in the order they were registered, and `fork_child`
/// allocates), then the trace's own.
///
/// # Safety
/// The agent must stay loaded for the life of the process: the handlers
/// are its functions.
unsafe fn fork_handlers() {
    // SAFETY: plain functions, loaded for as long as the caller promises.
    unsafe {
        libc::pthread_atfork(
            Some(heap::before_fork),
            Some(heap::after_fork),
            Some(heap::after_fork),
        );
        libc::pthread_atfork(None, None, Some(fork_child));
        // Registered last, so that its prepare handler runs first: a
        // listing it waits for may allocate from the heap, whose lock
        // the heap's handler takes.
        libc::pthread_atfork(
            Some(sys::phdr_before_fork),
            Some(sys::phdr_after_fork),
            Some(sys::phdr_after_fork),
        );
    }
}

/// Whether the key and the fork handlers were made (once per process).
static KEY_MADE: AtomicBool = AtomicBool::new(false);

/// The pthread key and the fork handlers for attach mode, made on the
/// first attach (an agent loaded with dlopen runs no [`start`]).
#[cfg(not(test))]
fn attach_key() -> bool {
    if KEY_MADE.load(SeqCst) {
        return true;
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: thread_exit has the destructor signature.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) } != 0 {
        return false;
    }
    KEY.store(key, Relaxed);
    // SAFETY: as in start(); the agent stays loaded (nothing dlcloses it:
    // vmmap never does, and its handle is vmmap's alone).
    unsafe { fork_handlers() };
    KEY_MADE.store(true, SeqCst);
    true
}

fn read_config() -> Option<Config> {
    let main = std::path::PathBuf::from(std::env::var_os("VMMAP_TRACE_FILE")?);
    handover::remember(std::env::var_os(vmmap_wire::files::ENV));
    let follow_forks = std::env::var_os("VMMAP_TRACE_FOLLOW_FORKS").is_some_and(|v| v == "1");
    FP.store(
        std::env::var_os("VMMAP_TRACE_UNWIND").is_some_and(|v| v == "fp"),
        Relaxed,
    );
    let pid_ns = std::env::var("VMMAP_TRACE_PIDNS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut path = main.clone();
    // The launcher's direct child (and whatever it execs) writes the main
    // file; any other descendant is traced only with --follow-forks, into
    // a file of its own.
    if let Some(launcher) = std::env::var_os("VMMAP_TRACE_LAUNCHER") {
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() };
        if launcher.to_str().and_then(|s| s.parse::<i32>().ok()) != Some(ppid) {
            if !follow_forks {
                return None;
            }
            path = child_path(&main, pid_ns);
        }
    }
    Some(Config {
        path,
        main,
        follow_forks,
        pid_ns,
    })
}

/// `trace.vmmap` → `trace.PID.vmmap` for a followed process, whichever
/// process started it: the same name before and after an exec, so its
/// images stay in one file. A process in a pid namespace other than the
/// launcher's (a sandbox, `unshare -p`) may be pid 1 there like every
/// other such one: its name takes the namespace's inode after the pid
/// (`trace.1-4026532941.vmmap`), so that no two live processes share a
/// file.
pub(crate) fn child_path(main: &std::path::Path, launcher_ns: Option<u64>) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let pid = sys::getpid();
    let own_ns = std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok();
    let ns = match (own_ns, launcher_ns) {
        (Some(own), Some(launcher)) if own != launcher => Some(own),
        _ => None,
    };
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    main.with_file_name(vmmap_wire::files::child_file_name(&stem, pid as u32, ns))
}

/// In the child of `fork`: only this thread survives. Untraced by default;
/// with --follow-forks, the child starts a trace file of its own.
extern "C" fn fork_child() {
    // Its own handler runs after this one (handlers run in the order they
    // were made): what this one starts may list modules.
    sys::phdr_after_fork();
    let was = ACTIVE.swap(false, SeqCst);
    writer::after_fork_child();
    if !was {
        return;
    }
    // SAFETY: the key is valid (ACTIVE was set).
    let me = unsafe { libc::pthread_getspecific(KEY.load(Relaxed)) } as *mut Thread;
    thread::after_fork_child(me);
    block::after_fork_child();
    thread::setup_bias();
    PID.store(sys::getpid(), Relaxed);
    let Some(cfg) = config() else { return };
    if !cfg.follow_forks {
        return;
    }
    OWN_ALL.store(true, SeqCst);
    let started = start_child_trace(cfg);
    OWN_ALL.store(false, SeqCst);
    if !started {
        return;
    }
    // A new session: the lanes' streams start over in the new file (the
    // parent's buffers are not ours to write) when next leased.
    SESSION.fetch_add(1, SeqCst);
    if !me.is_null() {
        // This thread starts again in the new file. Its guard stays as it
        // is (the fork hook clears it on return).
        // SAFETY: single-threaded child; the record is ours.
        let b = unsafe { &mut *me };
        thread::restart(b, sys::gettid());
        // SAFETY: pthread_self has no preconditions.
        record::thread_start(b, unsafe { libc::pthread_self() } as u64);
    }
    ACTIVE.store(true, Release);
}

/// A followed child's own trace file and writer.
fn start_child_trace(cfg: &Config) -> bool {
    let path = child_path(&cfg.main, cfg.pid_ns);
    if !writer::open(&path) {
        return false;
    }
    writer::hello();
    writer::start()
}

/// Whether the caller is the process this agent started in (false in a
/// `vfork` child, which shares our memory).
pub(crate) fn same_process() -> bool {
    // Quiet: not even getpid.
    !QUIET.load(Relaxed) && sys::getpid() == PID.load(Relaxed)
}

/// Whether this process is being traced now.
pub(crate) fn tracing() -> bool {
    ACTIVE.load(Relaxed) && same_process()
}

/// Whether children are followed and this process (or, in a `vfork`
/// child, the parent whose memory it shares) is being traced: every child
/// it starts is then given the agent's environment.
pub(crate) fn following() -> bool {
    ACTIVE.load(Relaxed) && config().is_some_and(|c| c.follow_forks)
}

extern "C" fn at_exit() {
    if ACTIVE.load(Relaxed) && same_process() {
        writer::flush(2000);
    }
}

/// At exit. A `vfork` child that calls exit shares our memory: the test of
/// the process comes first, or the child would turn tracing off in the
/// parent, which then lost every later event and its end record.
extern "C" fn fini() {
    shutdown();
}

/// Stops tracing for good and writes the end record (`_exit`, `_Exit`);
/// in a `vfork` child, touches nothing (see [`fini`]).
pub(crate) fn shutdown() {
    if same_process() && ACTIVE.swap(false, SeqCst) {
        writer::stop(2000);
        // Attached: what the writer put in the ring reaches the file only
        // through vmmap.
        #[cfg(not(test))]
        attach::wait_drained(1000);
    }
}

#[cfg(not(test))]
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

#[cfg(not(test))]
#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = fini;
