//! The threads of a process and their stack pointers.
//!
//! `task/TID/syscall` gives the user stack pointer of a thread that is
//! blocked in a system call or stopped, at no cost to the target. A thread
//! that is running on a CPU prints `running` instead; those are read again
//! a few times, all together (most threads block within microseconds).
//! The stacks of the threads still running are then found by their glibc
//! thread control block (see `classify::stack::scan_tcbs`), which stops
//! nothing; only the rest are interrupted with ptrace ([`interrupt_all`]),
//! all at once and within one budget for the whole snapshot.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::procdir::ProcDir;
use super::Options;
use crate::classify::stack::{scan_tcbs, stack_shaped, Top};
use crate::classify::Inspector;
use crate::error::Result;
use crate::model::{Region, StackPointerSource, ThreadInfo};
use crate::proc::syscall::{self, Syscall};

/// Lists the threads, main thread first, with the stack pointers that
/// `syscall` gives, re-reading it `retries` times for the running ones.
/// A running thread is left with `Unavailable` for the caller to resolve.
pub(super) fn threads(dir: &ProcDir, retries: u32) -> Result<Vec<ThreadInfo>> {
    let task = dir.path("task");
    let rd = std::fs::read_dir(&task).map_err(|e| dir.error(task.clone(), e))?;
    let mut tids: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&t| (t != dir.pid, t));
    let task_dir = std::fs::File::open(&task).map_err(|e| dir.error(task.clone(), e))?;
    let mut out = Vec::with_capacity(tids.len());
    let mut running = Vec::new();
    for tid in tids {
        let (name, source) = match dir.read_task_line(&task_dir, &format!("{tid}/comm")) {
            Ok(b) => (
                String::from_utf8_lossy(&b).trim_end().to_string(),
                StackPointerSource::Unavailable,
            ),
            Err(_) => (String::new(), StackPointerSource::Exited),
        };
        let mut t = ThreadInfo {
            tid,
            name,
            stack_pointer: None,
            stack_pointer_source: source,
            tcb: None,
        };
        if source != StackPointerSource::Exited && !read_syscall(dir, &task_dir, &mut t) {
            running.push(out.len());
        }
        out.push(t);
    }
    // Re-read the running ones together: one short sleep per round, not
    // one per thread (256 busy threads would otherwise cost 0.4 s).
    for attempt in 0..retries {
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_micros(200 << attempt.min(4)));
        running.retain(|&i| !read_syscall(dir, &task_dir, &mut out[i]));
    }
    Ok(out)
}

/// Reads `syscall` for `t`; false while the thread is running. Permission
/// to read `syscall` (PTRACE_MODE_ATTACH) can be missing where smaps
/// (PTRACE_MODE_READ) is allowed: that counts as done, with no pointer.
fn read_syscall(dir: &ProcDir, task_dir: &std::fs::File, t: &mut ThreadInfo) -> bool {
    match dir
        .read_task_line(task_dir, &format!("{}/syscall", t.tid))
        .ok()
        .and_then(|b| syscall::parse(&b).ok())
    {
        Some(Syscall::Running) => false,
        Some(s) => {
            t.stack_pointer = s.sp();
            t.stack_pointer_source = StackPointerSource::Syscall;
            true
        }
        None => true,
    }
}

/// Finds the stacks of the threads [`threads`] left running: first by
/// their TCBs, which stops nothing, then, for the rest, with ptrace within
/// `opts.ptrace_budget`. Says in `warnings` which threads are left without
/// a stack and why (grouped: a process can have thousands).
pub(crate) fn find_running_stacks(
    dir: &ProcDir,
    opts: &Options,
    regions: &[Region],
    threads: &mut [ThreadInfo],
    pointer_width: usize,
    inspector: &mut dyn Inspector,
    warnings: &mut Vec<String>,
) {
    let running = |t: &ThreadInfo| t.stack_pointer_source == StackPointerSource::Unavailable;
    if !threads.iter().any(running) {
        return;
    }
    if opts.read_memory {
        // The stack-shaped mappings; those holding a known stack pointer
        // calibrate where the TID is in the TCB.
        let candidates: Vec<usize> = (1..regions.len())
            .filter(|&i| stack_shaped(regions, i))
            .collect();
        let mut known = HashMap::new();
        for t in threads.iter() {
            if let Some(sp) = t.stack_pointer {
                let i = regions.partition_point(|r| r.end <= sp);
                if regions.get(i).is_some_and(|r| r.contains(sp)) {
                    known.insert(i, t.tid);
                }
            }
        }
        let all: HashSet<u32> = threads.iter().map(|t| t.tid).collect();
        let tops = scan_tcbs(regions, &candidates, &known, &all, pointer_width, inspector);
        let index: HashMap<u32, usize> = threads
            .iter()
            .enumerate()
            .filter(|(_, t)| running(t))
            .map(|(n, t)| (t.tid, n))
            .collect();
        for (i, top) in tops {
            if let Top::Tcb {
                addr,
                tid: Some(tid),
            } = top
            {
                if known.contains_key(&i) {
                    continue;
                }
                if let Some(&n) = index.get(&tid) {
                    threads[n].tcb = Some(addr);
                    threads[n].stack_pointer_source = StackPointerSource::Tcb;
                }
            }
        }
    }
    let left: Vec<usize> = (0..threads.len())
        .filter(|&n| running(&threads[n]))
        .collect();
    if left.is_empty() {
        return;
    }
    if opts.ptrace && dir.is_live() {
        let tids: Vec<u32> = left.iter().map(|&n| threads[n].tid).collect();
        for (&n, got) in left.iter().zip(interrupt_all(&tids, opts.ptrace_budget)) {
            let t = &mut threads[n];
            match got {
                Interrupted::Sp(sp) => {
                    t.stack_pointer = Some(sp);
                    t.stack_pointer_source = StackPointerSource::Ptrace;
                }
                Interrupted::NotReached => t.stack_pointer_source = StackPointerSource::Deadline,
                Interrupted::Refused => {}
            }
        }
    }
    let list = |source: StackPointerSource| -> (usize, String) {
        let names: Vec<String> = threads
            .iter()
            .filter(|t| t.stack_pointer_source == source)
            .map(|t| format!("{} ({})", t.tid, t.name))
            .collect();
        let n = names.len();
        let mut text = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
        if n > 8 {
            text.push_str(&format!(" and {} more", n - 8));
        }
        (n, text)
    };
    let plural = |n: usize| if n == 1 { "thread" } else { "threads" };
    let (n, text) = list(StackPointerSource::Deadline);
    if n > 0 {
        warnings.push(format!(
            "the ptrace budget ({} ms, --ptrace-budget-ms) ran out before {n} running {} could be interrupted: {text}; their stacks are typed by shape alone, or shown as Private Data",
            opts.ptrace_budget.as_millis(),
            plural(n),
        ));
    }
    let (n, text) = list(StackPointerSource::Unavailable);
    if n > 0 {
        warnings.push(format!(
            "{n} running {} not placed: {text}; {} and ptrace {}: their stacks are typed by shape alone, or shown as Private Data",
            plural(n),
            if opts.read_memory {
                "no thread control block named them"
            } else {
                "thread control blocks were not read (--no-read-memory)"
            },
            if opts.ptrace {
                "was refused"
            } else {
                "is disabled (--no-ptrace)"
            }
        ));
    }
}

/// What a ptrace interrupt gave for one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The thread stopped and its stack pointer was read.
    Sp(u64),
    /// The budget ran out before the thread was reached or stopped.
    NotReached,
    /// ptrace was refused (permissions, Yama), or the thread exited.
    Refused,
}

/// Reads the stack pointers of running threads with ptrace, all in
/// parallel and within `budget` for all of them: `PTRACE_SEIZE` (which,
/// unlike `PTRACE_ATTACH`, sends no signal) and `PTRACE_INTERRUPT` for
/// every thread, then the stops are collected as they come
/// (`PTRACE_GETREGSET`, `PTRACE_DETACH`) until the budget is spent.
///
/// No thread is ever left stopped. The tracer is a thread spawned for
/// this and gone when it returns: a thread that had not stopped by the
/// deadline cannot be detached with `PTRACE_DETACH` (it only works on a
/// stopped tracee), but the kernel detaches every tracee of a tracer that
/// exits and clears its pending interrupt (`exit_ptrace`). The same holds
/// when vmmap itself is killed, whatever it was doing.
pub(crate) fn interrupt_all(tids: &[u32], budget: Duration) -> Vec<Interrupted> {
    if budget.is_zero() || tids.is_empty() {
        return vec![Interrupted::NotReached; tids.len()];
    }
    let deadline = Instant::now() + budget;
    let owned = tids.to_vec();
    std::thread::Builder::new()
        .name("vmmap-ptrace".into())
        .spawn(move || tracer(&owned, deadline))
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| vec![Interrupted::Refused; tids.len()])
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn tracer(tids: &[u32], deadline: Instant) -> Vec<Interrupted> {
    let mut out = vec![Interrupted::NotReached; tids.len()];
    let mut pending = Vec::with_capacity(tids.len());
    for (i, &tid) in tids.iter().enumerate() {
        if Instant::now() >= deadline {
            break;
        }
        let Ok(tid) = libc::pid_t::try_from(tid) else {
            out[i] = Interrupted::Refused;
            continue;
        };
        // SAFETY: PTRACE_SEIZE takes no pointers; on failure nothing changes.
        if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) } != 0 {
            out[i] = Interrupted::Refused;
            continue;
        }
        // SAFETY: no pointers; `tid` is seized by this thread. Should this
        // fail, the tracee is detached when this thread exits.
        if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) } != 0 {
            out[i] = Interrupted::Refused;
            continue;
        }
        pending.push((i, tid));
    }
    while !pending.is_empty() && Instant::now() < deadline {
        let before = pending.len();
        pending.retain(|&(i, tid)| {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer for the call; WNOHANG
            // makes it return at once.
            let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
            if r == 0 {
                return true;
            }
            out[i] = if r == tid && libc::WIFSTOPPED(status) {
                let sp = read_sp(tid);
                // A signal arriving meanwhile stops the tracee before our
                // interrupt does (a signal-delivery stop, no event in the
                // status): detaching with it delivers it, as if we had
                // never been there; with 0 it would be lost.
                let sig = if status >> 16 == 0 {
                    libc::WSTOPSIG(status)
                } else {
                    0
                };
                // SAFETY: `tid` is our tracee, in a ptrace stop; detaching
                // takes no pointers (the data argument is a signal number)
                // and resumes it.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0usize, sig as usize) };
                sp.map_or(Interrupted::Refused, Interrupted::Sp)
            } else {
                // It exited (or is no longer ours).
                Interrupted::Refused
            };
            false
        });
        if pending.len() == before {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    // Threads still in `pending` are left to the kernel: this thread's
    // exit detaches them (see `interrupt_all`).
    out
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn tracer(tids: &[u32], _deadline: Instant) -> Vec<Interrupted> {
    vec![Interrupted::Refused; tids.len()]
}

/// The stack pointer of a tracee in a ptrace stop.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn read_sp(tid: libc::pid_t) -> Option<u64> {
    // SAFETY: user_regs_struct is plain integers; zero is a valid value.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut libc::user_regs_struct).cast(),
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    // SAFETY: `iov` describes `regs`, which outlives the call; the kernel
    // writes at most iov_len bytes and updates iov_len.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            libc::NT_PRSTATUS as usize,
            &mut iov as *mut libc::iovec,
        )
    };
    if rc != 0 {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if iov.iov_len == std::mem::size_of::<libc::user_regs_struct>() {
            Some(regs.rsp)
        } else {
            // A 32-bit (i386) thread: user_regs_struct32, esp is word 15.
            // SAFETY: the kernel wrote iov_len bytes into `regs`, and the
            // i386 layout is 17 u32 words, within that.
            let words = unsafe {
                std::slice::from_raw_parts(
                    (&regs as *const libc::user_regs_struct).cast::<u32>(),
                    17,
                )
            };
            Some(u64::from(words[15]))
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        Some(regs.sp)
    }
}
