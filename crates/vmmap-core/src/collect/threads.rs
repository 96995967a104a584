//! The threads of a process and their stack pointers.
//!
//! `task/TID/syscall` gives the user stack pointer of a thread that is
//! blocked in a system call or stopped, at no cost to the target. A thread
//! that is running on a CPU prints `running` instead. For those we read the
//! file a few more times (most threads block within microseconds), and then
//! stop the thread for an instant with ptrace: `PTRACE_SEIZE` (which, unlike
//! `PTRACE_ATTACH`, sends no signal), `PTRACE_INTERRUPT`, read the registers
//! with `PTRACE_GETREGSET`, `PTRACE_DETACH`. The target sees only a
//! microsecond-long pause.

use std::time::Duration;

use super::procdir::ProcDir;
use crate::error::Result;
use crate::model::{StackPointerSource, ThreadInfo};
use crate::proc::syscall::{self, Syscall};

/// How hard to try for a running thread's stack pointer.
#[derive(Clone, Copy, Debug)]
pub struct StackPointerPolicy {
    /// Re-reads of `syscall` before falling back.
    pub retries: u32,
    /// Whether a running thread may be interrupted with ptrace.
    pub ptrace: bool,
}

/// Lists the threads, main thread first, with stack pointers.
pub fn threads(dir: &ProcDir, policy: StackPointerPolicy) -> Result<Vec<ThreadInfo>> {
    let task = dir.path("task");
    let rd = std::fs::read_dir(&task).map_err(|e| dir.error(task.clone(), e))?;
    let mut tids: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&t| (t != dir.pid, t));
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        let base = format!("task/{tid}");
        let name = match dir.read(&format!("{base}/comm")) {
            Ok(b) => String::from_utf8_lossy(&b).trim_end().to_string(),
            Err(_) => {
                out.push(ThreadInfo {
                    tid,
                    name: String::new(),
                    stack_pointer: None,
                    stack_pointer_source: StackPointerSource::Exited,
                });
                continue;
            }
        };
        let (sp, source) = stack_pointer(dir, tid, policy);
        out.push(ThreadInfo {
            tid,
            name,
            stack_pointer: sp,
            stack_pointer_source: source,
        });
    }
    Ok(out)
}

fn stack_pointer(
    dir: &ProcDir,
    tid: u32,
    policy: StackPointerPolicy,
) -> (Option<u64>, StackPointerSource) {
    let file = format!("task/{tid}/syscall");
    for attempt in 0..=policy.retries {
        match dir.read(&file).ok().and_then(|b| syscall::parse(&b).ok()) {
            Some(Syscall::Running) => {
                if attempt < policy.retries {
                    std::thread::sleep(Duration::from_micros(200 << attempt.min(4)));
                }
            }
            Some(s) => return (s.sp(), StackPointerSource::Syscall),
            // Permission to read `syscall` (PTRACE_MODE_ATTACH) can be
            // missing where smaps (PTRACE_MODE_READ) is allowed.
            None => break,
        }
    }
    if policy.ptrace && dir.is_live() {
        if let Some(sp) = ptrace_sp(tid) {
            return (Some(sp), StackPointerSource::Ptrace);
        }
    }
    (None, StackPointerSource::Unavailable)
}

/// Reads a running thread's stack pointer with a ptrace interrupt.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn ptrace_sp(tid: u32) -> Option<u64> {
    let tid = libc::pid_t::try_from(tid).ok()?;
    // SAFETY: PTRACE_SEIZE takes no pointers; on failure nothing changes.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) } != 0 {
        return None;
    }
    let sp = interrupt_and_read(tid);
    // SAFETY: we are the tracer of `tid` (the seize succeeded); detaching
    // takes no pointers and resumes the thread.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0usize, 0usize) };
    sp
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn ptrace_sp(_tid: u32) -> Option<u64> {
    None
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn interrupt_and_read(tid: libc::pid_t) -> Option<u64> {
    // SAFETY: no pointers; `tid` is seized by us.
    if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) } != 0 {
        return None;
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for the duration of the call.
    if unsafe { libc::waitpid(tid, &mut status, libc::__WALL) } != tid {
        return None;
    }
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
