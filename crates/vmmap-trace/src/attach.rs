//! `vmmap attach`: loads the agent into a running process and takes what
//! it records (docs/tracing.md, "Attach").
//!
//! Injection without a debugger: one thread of the target is seized with
//! ptrace, interrupted, and made to call the loader's `dlopen` on the
//! agent and then the agent's attach entry, as a function call set up by
//! hand (x86_64 System V: arguments in rdi and rsi, the stack 16-byte
//! aligned at the call, a return address of 0 whose fault brings the
//! thread back to us). Its registers are then put back and it is let go.
//! Only that thread stops, and only for the two calls: the others run on,
//! so that a lock one of them holds (the loader's, an arena's) is released
//! while ours waits for it. The thread is chosen where it holds no lock
//! dlopen needs: in the program's own code, or blocked in a system call
//! that waits (sleep, poll, read, futex).
//!
//! The agent writes no file: its writer puts the trace messages in a ring
//! in its own memory (`vmmap_wire::attach`), which [`Session`] drains with
//! `process_vm_readv`; the process may run as another user, in another
//! mount namespace, and keeps its descriptors to itself.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The judgement of seccomp filters (the integration tests read its
/// [`seccomp::NEEDED`]).
pub use vmmap_seccomp as seccomp;
use vmmap_wire::attach as wire;

pub(crate) mod filters;
mod memfd;
mod rseq;
mod way_back;

use way_back::Extended;

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// No such process, or it ended.
    #[error("{0}")]
    Gone(String),
    /// ptrace (or reading the process) is not permitted; says why.
    #[error("{0}")]
    Permission(String),
    /// The process cannot be traced this way (static, another
    /// architecture, its own allocator, the agent not visible to it).
    #[error("{0}")]
    Refused(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn other(what: &str, e: io::Error) -> AttachError {
    AttachError::Other(format!("{what}: {e}"))
}

/// The process's `TracerPid`.
fn tracer_of(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The process's state letter in `stat` (`R`, `S`, `T` stopped, `Z`...).
pub(crate) fn state_of(pid: i32) -> Option<u8> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What makes `pid` impossible to attach to, checked before anything is
/// done to it: gone, already traced, not ours to trace, static, another
/// architecture, its own allocator.
pub fn check(pid: i32) -> Result<(), AttachError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !proc.exists() {
        return Err(AttachError::Gone(format!("no process {pid}")));
    }
    if let Some(t) = tracer_of(pid).filter(|&t| t != 0) {
        return Err(AttachError::Permission(format!(
            "process {pid} is already traced by process {t} ({}): a process has one tracer at a time",
            comm(t)
        )));
    }
    match state_of(pid) {
        Some(b'T') => {
            return Err(AttachError::Refused(format!(
                "process {pid} ({}) is stopped (SIGSTOP, or Ctrl+Z in its terminal): the agent's writer, a thread of the process, could not run until it is continued; continue it (kill -CONT {pid}) and attach again",
                comm(pid)
            )))
        }
        Some(b'Z' | b'X') => {
            return Err(AttachError::Gone(format!(
                "process {pid} has exited (its parent has not collected it yet): nothing runs in it to trace"
            )))
        }
        _ => {}
    }
    // Read in the parts that tell (the header, the symbol tables), not
    // whole: a browser's executable is 300 MB.
    let exe = match std::fs::File::open(proc.join("exe")) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(permission_refusal(pid));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AttachError::Gone(format!(
                "process {pid} has no executable (a kernel thread, or it ended)"
            )));
        }
        Err(e) => return Err(other(&format!("cannot read /proc/{pid}/exe"), e)),
    };
    let mut read = vmmap_core::collect::file_reader(&exe);
    let head = read(0, 4096).unwrap_or_default();
    let info = vmmap_core::elf::parse(&head).map_err(|_| {
        AttachError::Refused(format!("process {pid}'s executable is not an ELF file"))
    })?;
    if info.machine != 62 || info.class != 64 {
        return Err(AttachError::Refused(format!(
            "process {pid} runs {} code: vmmap attach supports x86-64 processes only",
            info.arch()
        )));
    }
    let facts = vmmap_core::elf::program_facts_from(&mut read).unwrap_or_default();
    if facts.interp.is_none() {
        return Err(AttachError::Refused(format!(
            "process {pid} ({}) is statically linked: there is no dynamic loader to load the agent with, nor relocation slots to hook",
            comm(pid)
        )));
    }
    if let Some(san) = facts.sanitizer {
        return Err(AttachError::Refused(format!(
            "process {pid} ({}) is built with {}, whose runtime takes over the allocator: vmmap cannot trace its allocations (nothing was done to the process)",
            comm(pid),
            san.name()
        )));
    }
    if facts.defines_malloc {
        return Err(AttachError::Refused(format!(
            "process {pid} ({}) defines its own malloc (a statically linked allocator): its allocations never go through a slot the agent can hook",
            comm(pid)
        )));
    }
    Ok(())
}

/// Why ptrace on `pid` was refused, in the user's terms.
fn permission_refusal(pid: i32) -> AttachError {
    if let Some(t) = tracer_of(pid).filter(|&t| t != 0) {
        return AttachError::Permission(format!(
            "process {pid} is already traced by process {t} ({})",
            comm(t)
        ));
    }
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let owner = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .ok();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let why = if owner.is_some_and(|o| o != me) && me != 0 {
        format!(
            "it belongs to another user (uid {}); run vmmap as that user or as root",
            owner.unwrap_or_default()
        )
    } else if scope == "3" {
        "Yama's ptrace_scope is 3: no process may be traced on this system".into()
    } else if scope == "2" && me != 0 {
        "Yama's ptrace_scope is 2: only root (CAP_SYS_PTRACE) may attach".into()
    } else if scope == "1" && me != 0 {
        "Yama's ptrace_scope is 1: only a parent may trace its children; run vmmap as root or set the scope to 0".into()
    } else if tracer_of(std::process::id() as i32).is_some_and(|t| t != 0) {
        "vmmap itself is being traced".into()
    } else {
        "refused by the system (a seccomp filter, or the process is not dumpable)".into()
    };
    AttachError::Permission(format!("cannot attach to process {pid} with ptrace: {why}"))
}

/// One line of /proc/PID/maps: (start, offset, path).
fn maps(pid: i32) -> Result<Vec<(u64, u64, String)>, AttachError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| other(&format!("cannot read /proc/{pid}/maps"), e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_ascii_whitespace();
            let range = f.next()?;
            let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
            let (_perms, off) = (f.next()?, f.next()?);
            let off = u64::from_str_radix(off, 16).ok()?;
            let (_dev, _inode) = (f.next()?, f.next()?);
            let path = f.collect::<Vec<_>>().join(" ");
            Some((start, off, path))
        })
        .collect())
}

/// The address of `symbol` in the module mapped from a path `matches`
/// accepts, in `pid`: the module's file is read through /proc/PID/root
/// (its mount namespace).
fn symbol_in(
    pid: i32,
    maps: &[(u64, u64, String)],
    matches: impl Fn(&str) -> bool,
    symbol: &str,
) -> Option<u64> {
    let (start, _, path) = maps.iter().find(|(_, off, p)| *off == 0 && matches(p))?;
    let bytes = read_module(pid, path)?;
    let (value, first) = vmmap_core::elf::dynamic_symbol(&bytes, symbol)?;
    Some(start - (first & !0xfff) + value)
}

/// The largest module file read whole (the C library is 2 MiB).
const MODULE_MAX: u64 = 256 << 20;

/// The file of a module `pid` maps at `path`, read through its mount
/// namespace (`/proc/PID/root`), whose owner may have put anything at
/// that name since: only a regular file ([`vmmap_core::regular`]: a FIFO
/// held the attach, with the target stopped, for ever) of a sane size (a
/// sparse file of 100 GiB would have been read into memory whole).
pub(super) fn read_module(pid: i32, path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = vmmap_core::regular::open(Path::new(&format!("/proc/{pid}/root{path}"))).ok()?;
    if f.metadata().ok()?.len() > MODULE_MAX {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(MODULE_MAX).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn is_libc(p: &str) -> bool {
    let name = p.rsplit('/').next().unwrap_or_default();
    name == "libc.so.6" || (name.starts_with("libc-2.") && name.ends_with(".so"))
}

fn is_libdl(p: &str) -> bool {
    p.rsplit('/')
        .next()
        .unwrap_or_default()
        .starts_with("libdl")
}

/// Whether the agent's path, as the target sees it, is the agent: the
/// same file, or a copy of it, at that path in its mount namespace (a
/// container's root differs), which the target's user may read (an agent
/// built under root's home is not readable by a daemon's user: its
/// `dlopen` failed with "Permission denied"). When it is not, the agent
/// is loaded from memory ([`memfd`]).
fn agent_visible(pid: i32, agent: &Path) -> Result<bool, AttachError> {
    let ours = std::fs::metadata(agent).map_err(|e| other(&agent.display().to_string(), e))?;
    let there = PathBuf::from(format!("/proc/{pid}/root{}", agent.display()));
    let theirs = vmmap_core::regular::open(&there).and_then(|f| Ok((f.metadata()?, f)));
    let same = match theirs {
        Ok((m, _)) if m.dev() == ours.dev() && m.ino() == ours.ino() => true,
        Ok((m, f)) if m.len() == ours.len() => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &f, &mut bytes).is_ok()
                && std::fs::read(agent).ok() == Some(bytes)
        }
        _ => false,
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Ok(same
        && Reader::of(&status)
            .is_none_or(|r| r.may_read(&PathBuf::from(format!("/proc/{pid}/root")), agent)))
}

/// Who a process's loader opens files as: its file-system ids, groups and
/// whether it may pass permission checks (`CAP_DAC_OVERRIDE` or
/// `CAP_DAC_READ_SEARCH`). Access control lists are not read: a file they
/// open to the process is loaded from memory instead, as it works either
/// way.
struct Reader {
    uid: u32,
    gids: Vec<u32>,
    privileged: bool,
}

impl Reader {
    /// From `/proc/PID/status` text; None when a field is missing.
    fn of(status: &str) -> Option<Reader> {
        let st = vmmap_core::proc::status::parse(status.as_bytes()).ok()?;
        // Real, effective, saved, file system: the loader opens as the last.
        let mut gids = vec![st.gids()?[3]];
        gids.extend(st.groups());
        // CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2).
        let dac = (1u64 << 1) | (1u64 << 2);
        Some(Reader {
            uid: st.uids()?[3],
            gids,
            privileged: st.effective_capabilities()? & dac != 0,
        })
    }

    /// Whether this reader may open `path` (under `root`, the process's
    /// view of `/`) for reading: search on every directory above it, read
    /// on the file.
    fn may_read(&self, root: &Path, path: &Path) -> bool {
        if self.privileged {
            return true;
        }
        let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
        dirs.reverse();
        let allowed = |p: &Path, bit: u32| {
            let inside = root.join(p.strip_prefix("/").unwrap_or(p));
            std::fs::metadata(inside).is_ok_and(|m| self.granted(m.mode(), m.uid(), m.gid(), bit))
        };
        dirs.iter().all(|d| allowed(d, 1)) && allowed(path, 4)
    }

    /// Whether `mode` grants `bit` (4 read, 1 search) to this reader.
    fn granted(&self, mode: u32, uid: u32, gid: u32, bit: u32) -> bool {
        let class = if uid == self.uid {
            mode >> 6
        } else if self.gids.contains(&gid) {
            mode >> 3
        } else {
            mode
        };
        class & bit != 0
    }
}

/// The target's `dlopen`: in its libc (glibc 2.34 and later), or libdl.
fn dlopen_of(pid: i32, m: &[(u64, u64, String)]) -> Result<u64, AttachError> {
    symbol_in(pid, m, is_libc, "dlopen")
        .or_else(|| symbol_in(pid, m, is_libdl, "dlopen"))
        .ok_or_else(|| {
            let libc = m.iter().find(|(_, off, p)| *off == 0 && is_libc(p));
            if let Some((_, _, path)) = libc.filter(|(_, _, p)| read_module(pid, p).is_none()) {
                return AttachError::Refused(format!(
                    "the C library process {pid} maps, {path}, is not a regular file at that name in its mount namespace (replaced or covered since), so its dlopen cannot be found: the agent cannot be loaded"
                ));
            }
            AttachError::Refused(format!(
                "process {pid} has no dlopen in its C library (not glibc, or no libc at all): the agent cannot be loaded"
            ))
        })
}

/// What the target's `dlerror()` says, after a failed `dlopen` on `t`.
fn dlerror_of(t: &mut Stopped, m: &[(u64, u64, String)], sp: u64) -> String {
    let pid = t.pid;
    let Some(f) =
        symbol_in(pid, m, is_libc, "dlerror").or_else(|| symbol_in(pid, m, is_libdl, "dlerror"))
    else {
        return String::new();
    };
    t.call(f, &[], sp)
        .ok()
        .filter(|&p| p != 0)
        .and_then(|p| read_mem(pid, p, 512).ok())
        .map(|b| {
            String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or_default()).into_owned()
        })
        .unwrap_or_default()
}

/// System calls a thread may be blocked in while holding no lock that
/// dlopen takes: it waits for time, a descriptor, a child or a futex.
const WAITING: &[i64] = &[
    0, 7, 23, 34, 35, 43, 45, 47, 61, 128, 130, 202, 230, 232, 247, 270, 271, 281, 288, 441,
];

/// Threads of `pid`, the best candidates first: blocked in a waiting
/// system call (from /proc/PID/task/TID/syscall, read without stopping
/// anything), then the others.
fn candidates(pid: i32) -> Vec<i32> {
    let mut waiting = Vec::new();
    let mut rest = Vec::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let sc = std::fs::read_to_string(e.path().join("syscall")).unwrap_or_default();
            let nr = sc
                .split_ascii_whitespace()
                .next()
                .and_then(|s| s.parse::<i64>().ok());
            if nr.is_some_and(|n| WAITING.contains(&n)) {
                waiting.push(tid);
            } else {
                rest.push(tid);
            }
        }
    }
    waiting.sort_unstable();
    rest.sort_unstable();
    waiting.extend(rest);
    waiting
}

fn ptrace(req: libc::c_uint, tid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: the requests used here take integers, or a pointer to a
    // user_regs_struct the caller owns as `data`.
    let r = unsafe { libc::ptrace(req, tid, addr, data) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn get_regs(tid: i32) -> io::Result<libc::user_regs_struct> {
    // SAFETY: all-zero is a valid user_regs_struct.
    let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    ptrace(libc::PTRACE_GETREGS, tid, 0, &mut r as *mut _ as usize)?;
    Ok(r)
}

fn set_regs(tid: i32, r: &libc::user_regs_struct) -> io::Result<()> {
    ptrace(libc::PTRACE_SETREGS, tid, 0, r as *const _ as usize).map(|_| ())
}

/// Waits for `tid`'s next stop, at most `limit`. Returns the wait status.
fn wait_stop(tid: i32, limit: Duration) -> Result<i32, AttachError> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == tid {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Err(AttachError::Gone(format!(
                    "thread {tid} ended while vmmap was attaching"
                )));
            }
            return Ok(status);
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(other("waitpid", e));
            }
        }
        if start.elapsed() > limit {
            return Err(AttachError::Other(format!(
                "thread {tid} did not come back within {} s",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Stops `tid`, seized already, with `PTRACE_INTERRUPT`. Returns the
/// signal that arrived first, if one did, for the thread to get when let
/// go.
fn interrupt(tid: i32) -> Result<i32, AttachError> {
    ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0).map_err(|e| other("PTRACE_INTERRUPT", e))?;
    let mut pending = 0;
    loop {
        let status = wait_stop(tid, Duration::from_secs(5))?;
        if status >> 16 == libc::PTRACE_EVENT_STOP {
            return Ok(pending);
        }
        // A signal arrived first: kept for later, and the interrupt's
        // stop still comes.
        pending = libc::WSTOPSIG(status);
        ptrace(libc::PTRACE_CONT, tid, 0, 0).map_err(|e| other("PTRACE_CONT", e))?;
    }
}

/// Reads `len` bytes of `pid`'s memory at `addr`.
fn read_mem(pid: i32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let pid = u32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    if vmmap_core::memory::vm_readv(pid, addr, &mut buf)? != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short read of the process's memory",
        ));
    }
    Ok(buf)
}

/// Writes `data` into `pid`'s memory at `addr`.
fn write_mem(pid: i32, addr: u64, data: &[u8]) -> io::Result<()> {
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` describes `data`, which the kernel only reads (the
    // `*mut` is the iovec type's); `remote` is only an address in the
    // target, which the kernel checks and writes.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != data.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to the process's memory",
        ));
    }
    Ok(())
}

/// ` (in FILE+0xOFFSET)` for an address of `pid`, for messages.
fn where_is(pid: i32, addr: u64) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return String::new();
    };
    for l in text.lines() {
        let mut f = l.split_ascii_whitespace();
        let (Some(range), _, Some(off)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mut r = range
            .split('-')
            .filter_map(|v| u64::from_str_radix(v, 16).ok());
        let (Some(lo), Some(hi)) = (r.next(), r.next()) else {
            continue;
        };
        if (lo..hi).contains(&addr) {
            let path = f.nth(2).unwrap_or("[anon]");
            let off = u64::from_str_radix(off, 16).unwrap_or(0);
            return format!(" (in {path}+{:#x})", addr - lo + off);
        }
    }
    String::new()
}

/// A seized, stopped thread, let go (registers restored) when dropped.
struct Stopped {
    pid: i32,
    tid: i32,
    saved: libc::user_regs_struct,
    /// Its extended state (x87, SSE, AVX), which the calls clobber.
    saved_ext: Extended,
    /// A signal that arrived while it was ours: delivered when let go.
    pending: i32,
    since: Instant,
    restored: bool,
    /// Where the way back goes, if a module has room for it (found before
    /// the thread is stopped: reading the module takes time).
    way_back_at: Option<u64>,
    /// The way back once written for its calls: its address and the
    /// bytes it covers.
    way_back: Option<(u64, Vec<u8>)>,
    /// Stopped at the way back's marker (a system call's entry) rather
    /// than at a signal: its registers are then put back by hand.
    at_marker: bool,
}

impl Stopped {
    /// Seizes and interrupts `tid`.
    fn seize(pid: i32, tid: i32) -> Result<Stopped, AttachError> {
        if let Err(e) = ptrace(
            libc::PTRACE_SEIZE,
            tid,
            0,
            libc::PTRACE_O_TRACESYSGOOD as usize,
        ) {
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) => permission_refusal(pid),
                Some(libc::ESRCH) => {
                    AttachError::Gone(format!("thread {tid} of process {pid} ended"))
                }
                _ => other("PTRACE_SEIZE", e),
            });
        }
        let since = Instant::now();
        let fail = |e| {
            let _ = ptrace(libc::PTRACE_DETACH, tid, 0, 0);
            e
        };
        let pending = interrupt(tid).map_err(fail)?;
        let mut saved = get_regs(tid).map_err(|e| fail(other("PTRACE_GETREGS", e)))?;
        rseq::abort_section(pid, tid, &mut saved)
            .map_err(|e| fail(other("reading the thread's rseq area", e)))?;
        let saved_ext =
            Extended::read(tid).map_err(|e| fail(other("PTRACE_GETREGSET (extended state)", e)))?;
        Ok(Stopped {
            pid,
            tid,
            saved,
            saved_ext,
            pending,
            since,
            restored: false,
            way_back_at: None,
            way_back: None,
            at_marker: false,
        })
    }

    /// The way back's address, written the first time (None if no module
    /// has room for it: calls then return to 0, and a vmmap killed during
    /// one leaves the thread to fault).
    fn way_back(&mut self) -> Result<Option<u64>, AttachError> {
        if let (Some(at), None) = (self.way_back_at, &self.way_back) {
            let (rip, _) = way_back::resume(&self.saved);
            let code = way_back::code(&self.saved_ext, self.saved.rsp, rip);
            let before = way_back::peek(self.tid, at, code.len())?;
            way_back::poke(self.tid, at, &code)?;
            self.way_back = Some((at, before));
        }
        Ok(self.way_back.as_ref().map(|w| w.0))
    }

    /// Calls `func(args…)` on the thread with its stack below `sp` and
    /// returns rax. The call returns to the way back, below which the
    /// registers to put back are saved (`way_back`), so that the thread
    /// finds its way back alone if vmmap dies meanwhile.
    fn call(&mut self, func: u64, args: &[u64], sp: u64) -> Result<u64, AttachError> {
        let at_marker = std::mem::take(&mut self.at_marker);
        let back = self.way_back()?;
        let area = way_back::area(&self.saved, &self.saved_ext);
        let area_at = (sp - area.len() as u64) & !63;
        write_mem(self.pid, area_at, &area)
            .map_err(|e| other("writing the registers' save area", e))?;
        let mut r = self.saved;
        let ret_at = area_at - 8;
        write_mem(self.pid, ret_at, &back.unwrap_or(0).to_le_bytes())
            .map_err(|e| other("writing the call's stack", e))?;
        r.rsp = ret_at;
        r.rip = func;
        r.rax = 0;
        // At a stop that is not a system call's: the kernel must not
        // restart one at our address when the thread resumes. At the
        // marker's entry (after a call), its getpid runs first: harmless,
        // its result lands in rax, which the call does not read. Not -1
        // (no call), which the process's seccomp filters would see, and an
        // allow-list answers by killing the process.
        r.orig_rax = if at_marker {
            libc::SYS_getpid as u64
        } else {
            u64::MAX
        };
        let regs = [&mut r.rdi, &mut r.rsi, &mut r.rdx, &mut r.rcx];
        for (reg, &v) in regs.into_iter().zip(args) {
            *reg = v;
        }
        set_regs(self.tid, &r).map_err(|e| other("PTRACE_SETREGS", e))?;
        // With a way back, the thread stops at every system call, the
        // marker's among them.
        let go = if back.is_some() {
            libc::PTRACE_SYSCALL
        } else {
            libc::PTRACE_CONT
        };
        let resume = |tid: i32, sig: i32| {
            ptrace(go, tid, 0, sig as usize).map_err(|e| other("PTRACE_CONT", e))
        };
        resume(self.tid, 0)?;
        loop {
            let status = wait_stop(self.tid, Duration::from_secs(20))?;
            let sig = libc::WSTOPSIG(status);
            if status >> 16 != 0 {
                // An event stop (group-stop): go on.
                resume(self.tid, 0)?;
                continue;
            }
            if sig == libc::SIGTRAP | 0x80 {
                let now = get_regs(self.tid).map_err(|e| other("PTRACE_GETREGS", e))?;
                if back.is_some_and(|at| now.rip == way_back::marker(at)) {
                    self.at_marker = true;
                    return Ok(now.rdi);
                }
                resume(self.tid, 0)?;
                continue;
            }
            if sig == libc::SIGSEGV {
                let now = get_regs(self.tid).map_err(|e| other("PTRACE_GETREGS", e))?;
                if back.is_none() && now.rip == 0 {
                    return Ok(now.rax);
                }
                // SAFETY: all-zero is a valid siginfo_t, filled in by the
                // kernel.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                let _ = ptrace(
                    libc::PTRACE_GETSIGINFO,
                    self.tid,
                    0,
                    &mut info as *mut _ as usize,
                );
                // SAFETY: a SIGSEGV's siginfo carries an address.
                let fault = unsafe { info.si_addr() } as u64;
                return Err(AttachError::Other(format!(
                    "the call of {func:#x}{} crashed in process {} at {:#x}{}, touching {fault:#x} (stack at {:#x}, was {:#x})",
                    where_is(self.pid, func),
                    self.pid,
                    now.rip,
                    where_is(self.pid, now.rip),
                    now.rsp,
                    self.saved.rsp
                )));
            }
            // Another signal: delivered now (its handler returns to our
            // call), as it would have been.
            resume(self.tid, sig)?;
        }
    }

    /// From the marker's system call entry, where the thread waits after
    /// a call, to its exit: the marker's `getpid` runs. Skipping it from
    /// the entry instead (its number set to -1) would put a call -1
    /// through the process's seccomp filters, which an allow-list filter
    /// answers by killing the process. Registers set at the exit are the
    /// ones the thread goes on with (the release needs its rax exact).
    fn past_marker(&mut self) -> Result<(), AttachError> {
        if !self.at_marker {
            return Ok(());
        }
        self.at_marker = false;
        ptrace(libc::PTRACE_SYSCALL, self.tid, 0, 0).map_err(|e| other("PTRACE_SYSCALL", e))?;
        loop {
            let status = wait_stop(self.tid, Duration::from_secs(5))?;
            if libc::WSTOPSIG(status) == libc::SIGTRAP | 0x80 {
                return Ok(());
            }
            // No signal is delivered inside getpid; an event stop goes on.
            ptrace(libc::PTRACE_SYSCALL, self.tid, 0, 0).map_err(|e| other("PTRACE_SYSCALL", e))?;
        }
    }

    /// Puts the registers back and lets the thread go. Returns how long it
    /// was stopped.
    fn release(&mut self) -> Duration {
        if !self.restored {
            self.restored = true;
            let _ = self.saved_ext.write(self.tid);
            let after_call = self.at_marker;
            if after_call && self.past_marker().is_err() {
                // Gone, or not coming back: nothing to put back.
                let _ = ptrace(libc::PTRACE_DETACH, self.tid, 0, self.pending as usize);
                return self.since.elapsed();
            }
            if after_call {
                // At a system call's exit, not at a signal: the kernel's
                // restart of the interrupted call is done by hand.
                let mut r = self.saved;
                (r.rip, r.rax) = way_back::resume(&self.saved);
                r.orig_rax = u64::MAX;
                let _ = set_regs(self.tid, &r);
            } else {
                let _ = set_regs(self.tid, &self.saved);
            }
            // Only now, the thread being out of it for good: the page's
            // bytes as they were.
            if let Some((at, before)) = self.way_back.take() {
                let _ = way_back::poke(self.tid, at, &before);
            }
            let _ = ptrace(libc::PTRACE_DETACH, self.tid, 0, self.pending as usize);
        }
        self.since.elapsed()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.release();
    }
}

/// An attached process: its agent's control block, drained into a file.
pub struct Session {
    pid: i32,
    control: u64,
    ring: u64,
    ring_len: u64,
    beat: u64,
    /// How long the chosen thread was stopped.
    pub stopped: Duration,
    /// The thread that ran the calls.
    pub tid: i32,
}

fn frames(bytes: &[u8], mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut at = 0;
    while at + wire::FRAME_HEADER <= bytes.len() {
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[at..at + 4]);
        let len = u32::from_le_bytes(len) as usize;
        let start = at + wire::FRAME_HEADER;
        let Some(msg) = bytes.get(start..start + len) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a cut message in the agent's ring",
            ));
        };
        each(msg)?;
        at = start + len;
    }
    Ok(())
}

/// Loads `agent` into `pid` and starts it (see the module's
/// documentation). `config` is the agent's settings (`unwind=fp`).
pub fn inject(pid: i32, agent: &Path, config: &str) -> Result<Session, AttachError> {
    check(pid)?;
    let visible = agent_visible(pid, agent)?;
    if !visible {
        memfd::proc_visible(pid)?;
    }
    filters::check(pid, !visible)?;
    let m = maps(pid)?;
    // Loaded already (by `vmmap run`, or an earlier attach): dlopen of the
    // same path returns it; the attach entry refuses a process traced now.
    let dlopen = dlopen_of(pid, &m)?;
    let path = CString::new(agent.as_os_str().as_encoded_bytes())
        .map_err(|_| AttachError::Other("the agent's path holds a NUL byte".into()))?;
    let cfg = CString::new(config).map_err(|_| AttachError::Other("bad agent settings".into()))?;
    let agent_bytes = std::fs::read(agent).map_err(|e| other(&agent.display().to_string(), e))?;
    let (entry_value, entry_first) =
        vmmap_core::elf::dynamic_symbol(&agent_bytes, "vmmap_agent_attach").ok_or_else(|| {
            AttachError::Other(format!(
                "{} has no attach entry: an older agent?",
                agent.display()
            ))
        })?;

    let back = way_back::padding(pid, &m);
    let mut last = None;
    for tid in candidates(pid).into_iter().take(8) {
        let mut t = match Stopped::seize(pid, tid) {
            Ok(t) => t,
            Err(e @ (AttachError::Permission(_) | AttachError::Refused(_))) => return Err(e),
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        t.way_back_at = back;
        // Below the red zone: the strings, then the calls' frames.
        let data = (t.saved.rsp - 128 - 4096) & !15;
        let mut blob = path.as_bytes_with_nul().to_vec();
        let cfg_at = data + blob.len() as u64;
        blob.extend_from_slice(cfg.as_bytes_with_nul());
        write_mem(pid, data, &blob)
            .map_err(|e| other("writing the agent's path into the process", e))?;
        let sp = (data - 256) & !15;
        let base = if visible {
            let handle = t.call(
                dlopen,
                &[data, (libc::RTLD_NOW | libc::RTLD_LOCAL) as u64],
                sp,
            )?;
            if handle == 0 {
                let why = dlerror_of(&mut t, &m, sp);
                t.release();
                return Err(AttachError::Refused(format!(
                    "process {pid} could not load the agent {}: {why}",
                    agent.display()
                )));
            }
            let canon = agent.display().to_string();
            let m = maps(pid)?;
            m.iter()
                .find(|(_, off, p)| *off == 0 && *p == canon)
                .map(|(s, _, _)| *s)
                .ok_or_else(|| {
                    AttachError::Other(
                        "the agent was loaded but is not in the process's maps".into(),
                    )
                })?
        } else if let Some(base) = memfd::loaded(pid, &agent_bytes)? {
            base
        } else {
            // Its strings go between the calls' stack and the path's.
            memfd::load(&mut t, &m, &agent_bytes, data - 128, sp)?
        };
        let entry = base - (entry_first & !0xfff) + entry_value;
        let r = t.call(entry, &[cfg_at], sp)? as i64;
        let stopped = t.release();
        if r < 0 {
            return Err(match r {
                wire::refusal::ALREADY => AttachError::Refused(format!(
                    "process {pid} is traced by vmmap already (vmmap run, or another vmmap attach)"
                )),
                wire::refusal::NO_ALLOCATOR => AttachError::Refused(format!(
                    "process {pid}: no module of the program imports malloc or free, so there is no slot to hook (its allocator is built in)"
                )),
                wire::refusal::MEMORY => AttachError::Refused(format!(
                    "process {pid} has no room for the agent's memory (a control page and an 8 MiB ring): its address-space limit (RLIMIT_AS) or its memory cgroup is reached; nothing was hooked"
                )),
                wire::refusal::KEY => AttachError::Refused(format!(
                    "process {pid} has no thread-specific data key left for the agent (all PTHREAD_KEYS_MAX are taken); nothing was hooked"
                )),
                r => match wire::refusal::thread_errno(r) {
                    Some(errno) => AttachError::Refused(format!(
                        "process {pid} could not start the agent's writer thread: {}; its hooks were taken out again and it runs on as before",
                        crate::decode::no_writer_reason(errno)
                    )),
                    None if r == wire::refusal::START => AttachError::Refused(format!(
                        "the agent's writer thread in process {pid} did not start running within 2 s (was the process stopped meanwhile, or its CPUs starved?); its hooks were taken out again and it runs on as before"
                    )),
                    None => AttachError::Other(format!(
                        "the agent could not start in process {pid} (code {r})"
                    )),
                },
            });
        }
        let control = r as u64;
        let block = read_mem(pid, control, wire::SIZE)
            .map_err(|e| other("reading the agent's control block", e))?;
        let u = |off: usize| u64::from_le_bytes(block[off..off + 8].try_into().unwrap_or_default());
        if block[..8] != wire::MAGIC {
            return Err(AttachError::Other(
                "the agent's control block is not what vmmap expects".into(),
            ));
        }
        return Ok(Session {
            pid,
            control,
            ring: u(wire::RING),
            ring_len: u(wire::RING_LEN),
            beat: 0,
            stopped,
            tid,
        });
    }
    Err(last.unwrap_or_else(|| {
        AttachError::Gone(format!("process {pid} has no thread to attach with"))
    }))
}

impl Session {
    fn field(&self, off: usize) -> io::Result<u64> {
        let b = read_mem(self.pid, self.control + off as u64, 8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    fn set(&self, off: usize, v: u64) -> io::Result<()> {
        write_mem(self.pid, self.control + off as u64, &v.to_le_bytes())
    }

    /// Takes every whole message in the ring, handing each to `each`, and
    /// bumps the heartbeat. Returns the agent's state.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
        self.beat += 1;
        self.set(wire::HEARTBEAT, self.beat)?;
        let block = read_mem(self.pid, self.control, wire::SIZE)?;
        let u = |off: usize| u64::from_le_bytes(block[off..off + 8].try_into().unwrap_or_default());
        let (head, tail, state) = (u(wire::HEAD), u(wire::TAIL), u(wire::STATE));
        if head > tail {
            let len = (head - tail) as usize;
            let at = tail % self.ring_len;
            let first = len.min((self.ring_len - at) as usize);
            let mut bytes = read_mem(self.pid, self.ring + at, first)?;
            if first < len {
                bytes.extend(read_mem(self.pid, self.ring, len - first)?);
            }
            frames(&bytes, &mut each)?;
            self.set(wire::TAIL, head)?;
        }
        Ok(state)
    }

    /// Bytes the agent dropped because the ring stayed full.
    pub fn lost(&self) -> u64 {
        self.field(wire::LOST).unwrap_or(0)
    }

    /// Asks the agent to detach and takes what it writes until it has
    /// finished (at most `limit`). Returns whether it finished.
    pub fn detach(
        &mut self,
        limit: Duration,
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<bool> {
        self.set(wire::REQUEST, wire::DETACH)?;
        let start = Instant::now();
        loop {
            let state = self.drain(&mut each)?;
            if state == wire::FINISHED {
                // What it wrote before saying so.
                self.drain(&mut each)?;
                return Ok(true);
            }
            if start.elapsed() > limit {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod reader_tests {
    use super::Reader;

    const NOBODY: &str = "Name:\tpython3\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t100 \nCapEff:\t0000000000000000\n";

    #[test]
    fn the_loader_reads_as_the_file_system_ids() {
        let r = Reader::of(NOBODY).unwrap();
        assert!(!r.privileged);
        // Other's bits, group's when a group matches, owner's for its own.
        assert!(r.granted(0o644, 0, 0, 4));
        assert!(!r.granted(0o640, 0, 0, 4));
        assert!(r.granted(0o640, 0, 100, 4));
        assert!(!r.granted(0o700, 0, 0, 1));
        assert!(r.granted(0o700, 65534, 0, 1));
        let root = NOBODY
            .replace("65534", "0")
            .replace("0000000000000000", "000001ffffffffff");
        assert!(Reader::of(&root).unwrap().privileged);
        assert!(Reader::of("Name:\tx\n").is_none());
    }
}
