//! Watching a launched program to its end, so that every traced run holds
//! its memory map at start and at exit, however short it was.
//!
//! The launcher is the program's parent, so it may trace it. The child
//! asks for it (`PTRACE_TRACEME`) before exec and so stops right after
//! exec: the first snapshot. A tracer attached that way cannot keep job
//! control right (a Ctrl+Z'd program would not stay stopped), so the
//! launcher then detaches leaving the program stopped (SIGSTOP) and
//! seizes it again (`PTRACE_SEIZE`, only the main thread, with
//! `PTRACE_O_TRACEEXIT`), which reports group-stops as such and lets them
//! stand (`PTRACE_LISTEN`), and resumes it (SIGCONT, which a program that
//! has just exec'd has no handler for). Every signal the main thread stops
//! for is delivered as it came; at the exit stop, which comes before the
//! address space is torn down, the last snapshot is taken, then the
//! program goes on to die and its wait status is the launcher's to
//! report. Children of the program are not traced.
//!
//! When ptrace is refused (Yama's ptrace_scope 3, seccomp, the launcher
//! already traced), the program runs as before, with a note saying that
//! the exit snapshot is missing.
//!
//! The tracer is one thread of the launcher (ptrace requests must come
//! from the thread that traces); the periodic snapshots may come from any.
//! Another follows the trace file at idle priority ([`Follower`]), so that
//! the exit snapshot can type the stacks of the threads the `exit` killed
//! from what the agent recorded, without decoding the whole trace then.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::attach::filters;
use crate::handover::Handover;
use crate::launch::{self, Inherited, Launch, LaunchError};
use vmmap_core::collect::{self, Options};
use vmmap_core::format::{ChunkStream, FormatError, Writer, CHUNK_SNAPSHOT, CHUNK_TRACE};
use vmmap_core::model::{StackPointerSource, ThreadInfo};
use vmmap_core::Error;

mod skim;

/// A program started by [`start`], being watched.
pub struct Supervised {
    /// Its process id.
    pub pid: u32,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<io::Result<ExitStatus>>>,
    /// Disconnected when the tracer thread ends (the program was reaped).
    done: mpsc::Receiver<()>,
    /// Said at once: the agent was withheld, or may be unsafe, for
    /// vmmap's own seccomp filters (see [`start`]).
    pub warning: Option<String>,
    /// Serves the trace file to images that may not open it, as long as
    /// the run lasts.
    _handover: Option<Handover>,
    /// The trace file open for reading (see [`Supervised::recording`]).
    reader: File,
}

/// Why a snapshot was not appended.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Collecting it failed (other than because the program ended).
    #[error("{0}")]
    Collect(Error),
    /// The trace file could not be written.
    #[error("{0}")]
    Write(io::Error),
}

struct Shared {
    /// None once finished: later snapshots are dropped.
    writer: Mutex<Option<Writer<File>>>,
    snapshots: AtomicU64,
    /// The first failed write of a snapshot the tracer took.
    write_error: Mutex<Option<io::Error>>,
    notes: Mutex<Vec<String>>,
    opts: Options,
    /// The trace file, for what the agent recorded.
    path: PathBuf,
    /// Asks the follower thread (see [`Follower`]) for the threads alive
    /// now, naming the unnamed ones as given; None without an agent.
    follower: Mutex<Option<mpsc::Sender<Ask>>>,
    /// How far into the file the follower has decoded.
    followed: Arc<AtomicU64>,
    /// The program reached its exit stop (or ended): no more periodic
    /// snapshots.
    ended: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Takes a snapshot of `pid` and appends it. A program that is gone
    /// (or going) is not an error.
    fn snapshot(&self, pid: u32) -> Result<(), SnapshotError> {
        if self.ended.load(Ordering::Acquire) {
            return Ok(());
        }
        self.snapshot_with(pid, &self.opts, false)
    }

    /// Collects a snapshot and appends it. One of the launcher's
    /// (`after_end` false) is dropped if the exit stop began while it was
    /// collected: the exit's snapshot is the last word, and a collection
    /// that ran on past it may have read the address space while the
    /// kernel tore it down (a map with mappings missing, after the whole
    /// one).
    fn snapshot_with(
        &self,
        pid: u32,
        opts: &Options,
        after_end: bool,
    ) -> Result<(), SnapshotError> {
        let s = match collect::snapshot(pid, opts) {
            Ok(s) => s,
            Err(
                Error::ProcessExited { .. }
                | Error::Zombie { .. }
                | Error::NoSuchProcess { .. }
                | Error::Parse { .. },
            ) => return Ok(()),
            Err(e) => return Err(SnapshotError::Collect(e)),
        };
        if let Some(w) = lock(&self.writer).as_mut() {
            if !after_end && self.ended.load(Ordering::Acquire) {
                return Ok(());
            }
            w.append(&s).map_err(SnapshotError::Write)?;
            self.snapshots.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A snapshot the tracer takes: failures are kept for
    /// [`Supervised::finish`] and the notes.
    fn snapshot_here(&self, pid: u32, when: &str) {
        self.snapshot_here_with(pid, when, &self.opts)
    }

    /// The snapshot at the exit stop. By then an `exit` has killed every
    /// other thread, and the kernel lists them no more, while their stacks
    /// are still mapped: the threads the trace says were alive at its end
    /// are given to the classifier, so that their stacks are typed Stack
    /// with their TIDs. The agent has written out everything by now
    /// (it does before exit; after a crash, up to its last flush).
    fn snapshot_at_exit(&self, pid: u32) {
        // Interval snapshots of a program stopped at its exit would only
        // repeat this one.
        self.ended.store(true, Ordering::Release);
        let mut opts = self.opts.clone();
        // Threads left unnamed are named as the process (as the kernel does).
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // Ask the follower to catch up and say; it ends after that. A
        // follower far behind (it decodes on idle CPU only, which a busy
        // program leaves little of) would hold the program at its exit
        // for as long as decoding the rest takes: then the snapshot goes
        // without the trace's threads, and the follower ends unasked.
        let behind = std::fs::metadata(&self.path).map_or(0, |m| {
            m.len()
                .saturating_sub(self.followed.load(Ordering::Relaxed))
        });
        let ask = lock(&self.follower).take();
        if let Some(ask) = ask.filter(|_| behind <= FOLLOW_BEHIND_MAX) {
            let (tx, rx) = mpsc::channel();
            if ask.send((comm.trim_end().to_string(), tx)).is_ok() {
                opts.known_threads = rx.recv().unwrap_or_default();
            }
        }
        self.snapshot_here_with(pid, "at exit", &opts)
    }

    fn snapshot_here_with(&self, pid: u32, when: &str, opts: &Options) {
        match self.snapshot_with(pid, opts, true) {
            Ok(()) => {}
            Err(SnapshotError::Write(e)) => {
                lock(&self.write_error).get_or_insert(e);
            }
            Err(SnapshotError::Collect(e)) => self.note(format!("the snapshot {when} failed: {e}")),
        }
    }

    fn note(&self, s: String) {
        lock(&self.notes).push(s);
    }
}

/// Creates the trace file and starts the program as [`launch::start`]
/// does, watched: snapshots are taken right after exec and at exit (see
/// the module's documentation), and [`Supervised::snapshot`] takes the
/// periodic ones. `opts` is how every snapshot is collected.
///
/// `at_exit` false detaches after the snapshot at exec: no exit snapshot,
/// and the program is not traced while it runs (a debugger may attach, a
/// set-user-ID program it execs keeps its privileges for any launcher).
pub fn start(l: &Launch, opts: Options, at_exit: bool) -> Result<Supervised, LaunchError> {
    // vmmap's own seccomp filters go to the program, and cannot be read
    // from under them: the agent stays out unless the user said otherwise.
    let filtered = l.agent.is_some() && filters::inherited();
    const WHY: &str = "vmmap runs under seccomp, which the program inherits, and no process under seccomp may read a filter: vmmap cannot tell whether it would kill the program at a call of the agent's";
    let (withheld, warning) = if filtered && !l.seccomp_unchecked {
        (
            Some(Launch {
                agent: None,
                ..l.clone()
            }),
            Some(format!(
                "{WHY}, so the agent is not loaded: the program runs without it and only the snapshots are recorded. `--seccomp-unchecked` loads it anyway (right where the filter answers refused calls with an error, as Docker's default profile does; fatal where it kills them)"
            )),
        )
    } else if filtered {
        (
            None,
            Some(format!(
                "{WHY}; the agent is loaded as asked (--seccomp-unchecked)"
            )),
        )
    } else {
        (None, None)
    };
    let l = withheld.as_ref().unwrap_or(l);
    // A leak check at exit fails under ptrace: let the program go after
    // the snapshot at exec.
    let leak_check = at_exit
        .then(|| launch::leak_check_at_exit(&l.program))
        .flatten();
    let at_exit = at_exit && leak_check.is_none();
    let warning = match (warning, leak_check) {
        (Some(w), Some(c)) => Some(format!("{w}. {c}")),
        (w, c) => w.or(c),
    };
    let out = launch::create_output(l)?;
    // An image that may not open the file (an exec after the program
    // gave up root) gets it from here.
    let handover = (l.agent.is_some() && out.regular)
        .then(|| Handover::start(&out.path, out.identity, l.follow_forks).ok())
        .flatten();
    let (mut cmd, exec) = match launch::command(l, &out.path, handover.as_ref().map(Handover::name))
    {
        Ok(prepared) => prepared,
        Err(e) => {
            out.discard();
            return Err(LaunchError::Spawn(e));
        }
    };
    let (path, regular) = (out.path.clone(), out.regular);
    let reader = out.reader;
    // The writer is in place before the program starts: the tracer takes
    // the first snapshot at once.
    let shared = Arc::new(Shared {
        writer: Mutex::new(Some(out.writer)),
        snapshots: AtomicU64::new(0),
        write_error: Mutex::new(None),
        notes: Mutex::new(Vec::new()),
        opts,
        path: path.clone(),
        follower: Mutex::new(None),
        followed: Arc::new(AtomicU64::new(0)),
        ended: AtomicBool::new(false),
    });
    // Nothing ran: leave no header-only file behind.
    let discard = |shared: &Shared| {
        drop(lock(&shared.writer).take());
        if regular {
            let _ = std::fs::remove_file(&path);
        }
    };
    let inherited = Inherited {
        // Given /dev/null on purpose (the launcher owns the terminal).
        closed_stdio: if l.quiet_stdio {
            0
        } else {
            l.inherited.closed_stdio
        },
        ..l.inherited
    };
    // SAFETY: the closure runs in the forked child after the standard
    // descriptors and the working directory are set up, and makes only
    // system calls (async-signal-safe) on memory prepared before the fork.
    // It puts back what vmmap was started with (closed standard
    // descriptors, SIGPIPE ignored, the signal mask), and execs the
    // program itself: std's own exec (execvp) would run a
    // file without a #! line through /bin/sh, where the program should
    // fail with ENOEXEC as it does when started without ptrace. A failed
    // TRACEME is found after exec from the child's TracerPid.
    unsafe {
        cmd.pre_exec(move || {
            inherited.restore();
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize);
            Err(exec.exec())
        });
    }
    if l.agent.is_some() && at_exit {
        let (ask, asked) = mpsc::channel::<Ask>();
        let progress = Arc::clone(&shared.followed);
        let started = File::open(vmmap_core::regular::by_fd(&reader)).and_then(|followed| {
            std::thread::Builder::new()
                .name("vmmap-follow".into())
                .spawn(move || follow(&followed, &asked, &progress))
        });
        // Without it, the exit snapshot goes without the trace's threads.
        if started.is_ok() {
            *lock(&shared.follower) = Some(ask);
        }
    }
    // The thread that forks is the one the child's TRACEME makes its
    // tracer, so the tracer thread spawns the program itself.
    let (tx, rx) = mpsc::channel::<io::Result<u32>>();
    let (ending, done) = mpsc::channel::<()>();
    let s = Arc::clone(&shared);
    let handle = std::thread::Builder::new()
        .name("vmmap-tracer".into())
        .spawn(move || {
            // Dropped when the thread ends, however: wakes wait_timeout.
            let _ending = ending;
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let kept = io::Error::new(e.kind(), e.to_string());
                    let _ = tx.send(Err(e));
                    return Err(kept);
                }
            };
            let _ = tx.send(Ok(child.id()));
            supervise(child, &s, at_exit)
        });
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            discard(&shared);
            return Err(LaunchError::Spawn(e));
        }
    };
    match rx.recv() {
        Ok(Ok(pid)) => {
            if let Some(h) = &handover {
                h.set_root(pid);
            }
            Ok(Supervised {
                pid,
                shared,
                handle: Some(handle),
                done,
                warning,
                _handover: handover,
                reader,
            })
        }
        Ok(Err(e)) => {
            let _ = handle.join();
            discard(&shared);
            Err(LaunchError::Spawn(e))
        }
        Err(_) => {
            let _ = handle.join();
            discard(&shared);
            Err(LaunchError::Spawn(io::Error::other(
                "the thread starting the program ended early",
            )))
        }
    }
}

impl Supervised {
    /// The exit status once the program has ended (and was reaped).
    pub fn try_wait(&mut self) -> Option<io::Result<ExitStatus>> {
        if !self.handle.as_ref()?.is_finished() {
            return None;
        }
        let h = self.handle.take()?;
        Some(
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("the tracing thread failed"))),
        )
    }

    /// [`Supervised::try_wait`], after waiting at most `timeout` for the
    /// program to end: the launcher learns of the end at once, where
    /// polling every 10 ms added 5 ms to every run on average.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<io::Result<ExitStatus>> {
        if let Err(mpsc::RecvTimeoutError::Disconnected) = self.done.recv_timeout(timeout) {
            let h = self.handle.take()?;
            return Some(
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("the tracing thread failed"))),
            );
        }
        self.try_wait()
    }

    /// Takes a snapshot now and appends it; nothing when the program has
    /// just ended.
    pub fn snapshot(&self) -> Result<(), SnapshotError> {
        self.shared.snapshot(self.pid)
    }

    /// Whether the agent has written to the trace file yet (it is loaded
    /// and running): the snapshot at exec shows only the program's image
    /// and the loader, so the launcher takes another once this holds.
    pub fn agent_started(&self) -> bool {
        let w = lock(&self.shared.writer);
        let Some(w) = w.as_ref() else {
            return false;
        };
        std::fs::metadata(&self.shared.path).is_ok_and(|m| m.len() > w.bytes_written())
    }

    /// Snapshots appended so far (those at start and exit included).
    pub fn snapshots(&self) -> u64 {
        self.shared.snapshots.load(Ordering::Relaxed)
    }

    /// What the user should know about the recording (no exit snapshot,
    /// and why).
    pub fn notes(&self) -> Vec<String> {
        lock(&self.shared.notes).clone()
    }

    /// The trace file, opened anew for reading through the descriptor
    /// the run holds, never by its name: the program or another user may
    /// have pointed the name elsewhere meanwhile.
    pub fn recording(&self) -> io::Result<File> {
        File::open(vmmap_core::regular::by_fd(&self.reader))
    }

    /// Appends a chunk the launcher computed from the recording (such as
    /// [`vmmap_core::format::CHUNK_FREES`]), before [`Supervised::finish`].
    pub fn append_chunk(&self, kind: u32, payload: &[u8]) -> io::Result<()> {
        match lock(&self.shared.writer).as_mut() {
            Some(w) => w.append_chunk(kind, payload, payload.len()),
            None => Err(io::Error::other("the trace file was already finished")),
        }
    }

    /// Marks the file cleanly closed and returns it with the bytes the
    /// launcher wrote. A program still running is no longer recorded (its
    /// agent goes on appending its events). A failed write of a snapshot
    /// taken at start or exit is returned here.
    pub fn finish(&mut self) -> io::Result<(File, u64)> {
        if let Some(e) = lock(&self.shared.write_error).take() {
            return Err(e);
        }
        let w = lock(&self.shared.writer)
            .take()
            .ok_or_else(|| io::Error::other("the trace file was already finished"))?;
        let n = w.bytes_written();
        Ok((w.finish()?, n))
    }
}

/// How the program ended, as a sentence's predicate ("exited with status
/// 1", "was killed by signal 9"): what `vmmap run` and the TUI say of it.
pub fn describe_status(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!(
            "was killed by signal {sig}{}",
            if s.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => "ended".into(),
    }
}

/// The tracer thread: snapshots at exec and at exit, signals passed on,
/// the wait status returned.
fn supervise(mut child: Child, s: &Shared, at_exit: bool) -> io::Result<ExitStatus> {
    let pid = child.id();
    // TracerPid names the tracing thread.
    // SAFETY: gettid has no arguments and cannot fail.
    let me = unsafe { libc::gettid() } as u32;
    if tracer_of(pid) != Some(me) {
        s.note(format!(
            "cannot trace pid {pid} with ptrace ({}): no snapshot at exit, only at start and every interval",
            ptrace_refusal()
        ));
        s.snapshot_here(pid, "at start");
        return child.wait();
    }
    let p = pid as libc::pid_t;
    // The stop right after exec (SIGTRAP); a signal that came first is
    // delivered.
    loop {
        let st = wait(p, 0)?;
        if !libc::WIFSTOPPED(st) {
            return Ok(ExitStatus::from_raw(st));
        }
        let sig = libc::WSTOPSIG(st);
        if sig == libc::SIGTRAP {
            break;
        }
        resume(libc::PTRACE_CONT, p, sig);
    }
    s.snapshot_here(pid, "at start");
    if !at_exit {
        resume(libc::PTRACE_DETACH, p, 0);
        return child.wait();
    }
    // Leave it stopped, then seize it.
    resume(libc::PTRACE_DETACH, p, libc::SIGSTOP);
    let st = wait(p, libc::WUNTRACED)?;
    if !libc::WIFSTOPPED(st) {
        return Ok(ExitStatus::from_raw(st));
    }
    // SAFETY: PTRACE_SEIZE takes no pointers; the options are flags.
    let seized = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            p,
            0usize,
            libc::PTRACE_O_TRACEEXIT as usize,
        )
    } == 0;
    if !seized {
        s.note(format!(
            "cannot keep tracing pid {pid} with ptrace ({}): no snapshot at exit",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: signalling our own child; it has no handler yet (just
    // exec'd), so the SIGCONT only resumes it.
    unsafe { libc::kill(p, libc::SIGCONT) };
    if !seized {
        return child.wait();
    }
    loop {
        let st = wait(p, 0)?;
        if !libc::WIFSTOPPED(st) {
            return Ok(ExitStatus::from_raw(st));
        }
        let sig = libc::WSTOPSIG(st);
        match st >> 16 {
            libc::PTRACE_EVENT_EXIT => {
                s.snapshot_at_exit(pid);
                resume(libc::PTRACE_CONT, p, 0);
            }
            // A group-stop (SIGSTOP, Ctrl+Z...): it stands until SIGCONT.
            libc::PTRACE_EVENT_STOP
                if matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) =>
            {
                resume(libc::PTRACE_LISTEN, p, 0)
            }
            // A signal on its way: delivered as it came.
            0 => resume(libc::PTRACE_CONT, p, sig),
            _ => resume(libc::PTRACE_CONT, p, 0),
        }
    }
}

/// Follows the trace file as the agent appends to it, reading only what
/// is new each time, to know which threads are alive and where their
/// stacks are. Followed during the run (a thread of its own), so that the
/// exit stop only reads the last fraction of a second. It skims the
/// trace ([`skim`]) rather than decoding it.
#[derive(Default)]
struct Follower {
    /// File offset of the next chunk to read (0: not started).
    offset: u64,
    skim: skim::Skim,
    /// The trace could not be read past some point: stop.
    broken: bool,
}

/// The most trace the follower may have left to decode when the exit stop
/// asks it for the threads: about 20 ms of decoding (a file is 2 to 8 MB
/// per million allocations). Measured on `alloc_bench 10000000 2`, paired
/// runs: waiting for the whole backlog held the exit for 0.6 s of a 3.4 s
/// run (x2.59 wall against x2.13 without the exit snapshot).
const FOLLOW_BEHIND_MAX: u64 = 2 << 20;

/// A question to the follower: the process's name, where to answer.
type Ask = (String, mpsc::Sender<Vec<ThreadInfo>>);

/// The follower thread: decodes what the agent appended every quarter of
/// a second, and answers a question at once (after catching up); ends when
/// asked, or when the supervisor is gone.
fn follow(file: &File, asked: &mpsc::Receiver<Ask>, progress: &AtomicU64) {
    // Decoding takes CPU the traced program would use: only idle CPU
    // while it runs (SCHED_IDLE), the usual share once it waits at its
    // exit for the answer.
    set_policy(libc::SCHED_IDLE);
    let mut f = Follower::default();
    loop {
        match asked.recv_timeout(Duration::from_millis(250)) {
            Ok((comm, answer)) => {
                set_policy(libc::SCHED_OTHER);
                f.poll(file);
                let _ = answer.send(f.threads(&comm));
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                f.poll(file);
                progress.store(f.offset, Ordering::Relaxed);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Sets the calling thread's scheduling policy (priority 0); a refusal
/// leaves it as it was.
fn set_policy(policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; a valid pointer to a
    // sched_param that outlives the call.
    unsafe { libc::sched_setscheduler(0, policy, &param) };
}

/// Counts what is read through it: where the last whole chunk ended.
struct Counting<R> {
    r: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

impl Follower {
    /// Decodes the chunks appended since the last call (a chunk still
    /// being written is left for the next).
    fn poll(&mut self, file: &File) {
        if self.broken {
            return;
        }
        let header = vmmap_core::format::file_header().len() as u64;
        if self.offset == 0 {
            self.offset = header;
        }
        let mut f = file;
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        // The stream checks a file header first: give it one, then the
        // file from the saved offset.
        let n = Rc::new(Cell::new(0u64));
        let r = io::Cursor::new(vmmap_core::format::file_header()).chain(Counting {
            r: f,
            n: Rc::clone(&n),
        });
        let Ok(stream) = ChunkStream::new(r, CHUNK_TRACE) else {
            self.broken = true;
            return;
        };
        // Every chunk of the file during the run is one or the other, so
        // each returned chunk ends where the next begins.
        let mut stream = stream.with_extra_kind(CHUNK_SNAPSHOT);
        let base = self.offset;
        while let Some((kind, payload)) = stream.next_chunk() {
            if kind == CHUNK_TRACE && self.skim.feed(payload).is_err() {
                self.broken = true;
                return;
            }
            self.offset = base + n.get();
        }
        if matches!(stream.problem, Some(FormatError::Corrupt { .. })) {
            self.broken = true;
        }
    }

    /// The threads alive at the end of what was read, with the stack
    /// ranges the agent recorded; `comm` names those left unnamed.
    fn threads(&self, comm: &str) -> Vec<ThreadInfo> {
        let agent = self.skim.agent.map(|(tid, sp)| ThreadInfo {
            tid: tid as u32,
            name: "vmmap-agent".into(),
            stack_pointer: Some(sp),
            stack_pointer_source: StackPointerSource::Trace,
            tcb: None,
        });
        self.skim
            .threads()
            .into_iter()
            .filter(|(t, _)| t.tid > 0 && t.stack_hi >= 64)
            .map(|(t, name)| ThreadInfo {
                tid: t.tid as u32,
                name: name.unwrap_or(comm).into(),
                // Inside the stack mapping, below its top.
                stack_pointer: Some((t.stack_hi - 64) & !15),
                stack_pointer_source: StackPointerSource::Trace,
                tcb: None,
            })
            .chain(agent)
            .collect()
    }
}

/// waitpid for `pid` (any thread kind, EINTR retried): its raw status.
fn wait(pid: libc::pid_t, flags: libc::c_int) -> io::Result<libc::c_int> {
    loop {
        let mut st = 0;
        // SAFETY: a valid pointer to an int.
        let r = unsafe { libc::waitpid(pid, &mut st, flags | libc::__WALL) };
        if r == pid {
            return Ok(st);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// A ptrace request that restarts `pid` with `sig` (0: none). A failure
/// (ESRCH: killed meanwhile) shows in the next wait.
fn resume(req: libc::c_uint, pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: these requests take a signal number as data, no pointers.
    unsafe { libc::ptrace(req, pid, 0usize, sig as usize) };
}

/// TracerPid of `pid`, from /proc/PID/status.
fn tracer_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Why PTRACE_TRACEME likely failed, for the note.
fn ptrace_refusal() -> String {
    if tracer_of(std::process::id()).is_some_and(|t| t != 0) {
        return "vmmap itself is being traced".into();
    }
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(v) if v.trim() == "3" => "Yama's ptrace_scope is 3, which forbids ptrace".into(),
        _ => "refused by the system, e.g. a seccomp filter".into(),
    }
}
