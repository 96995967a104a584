//! Reading the process's seccomp filters before anything runs in it, and
//! refusing the attach when one of them would not let a call of the
//! attach through ([`super::seccomp`] says why and runs them).
//!
//! Filters belong to threads: each thread of the process with a filter
//! (`Seccomp: 2` in its status) is seized and stopped for as long as
//! `PTRACE_SECCOMP_GET_FILTER` takes, then let go; threads sharing the
//! same filters (the usual case: a sandbox installs them once, before the
//! threads start or for all of them at once) are judged once. A thread
//! started after this inherits the filters of the thread that started it,
//! which were judged. The check costs a read of each thread's status
//! where no thread has a filter.

use std::io;

use super::{comm, interrupt, other, ptrace, AttachError};
use vmmap_seccomp::{self as seccomp, Insn};

/// `PTRACE_SECCOMP_GET_FILTER` (linux/ptrace.h).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
/// `BPF_MAXINSNS`: no filter is longer.
const MAX_INSNS: usize = 4096;

/// A thread's seccomp mode (`Seccomp:` in its status): 0 none, 1 strict,
/// 2 filters; None if the thread is gone or the kernel does not say.
fn mode(pid: i32, tid: i32) -> Option<u64> {
    let text = std::fs::read(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    vmmap_core::proc::status::parse(&text)
        .ok()?
        .number("Seccomp")
}

/// Refuses the attach if a thread of `pid` runs in strict mode, or under
/// filters that would stop a call the attach makes (`from_memory`: the
/// agent is to be loaded from a memfd).
pub(super) fn check(pid: i32, from_memory: bool) -> Result<(), AttachError> {
    let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| other(&format!("/proc/{pid}/task"), e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let mut judged: Vec<Vec<Vec<Insn>>> = Vec::new();
    for tid in tids {
        match mode(pid, tid) {
            None | Some(0) => continue,
            Some(1) => {
                return Err(AttachError::Refused(format!(
                    "process {pid} ({}) runs in seccomp strict mode (thread {tid}): any system call but read, write, exit and sigreturn kills it, and loading the agent makes others; not attached",
                    comm(pid)
                )))
            }
            Some(_) => {}
        }
        let Some(chain) = filters_of(pid, tid)? else {
            continue;
        };
        if judged.contains(&chain) {
            continue;
        }
        if let Some((need, what)) = seccomp::first_refused(&chain, from_memory, false) {
            return Err(AttachError::Refused(format!(
                "process {pid} ({}) runs under a seccomp filter that would {what} at {} (thread {tid}), which vmmap needs for {}; not attached, the process is untouched",
                comm(pid),
                need.call.shown,
                need.why
            )));
        }
        judged.push(chain);
    }
    Ok(())
}

/// The filters of thread `tid`, newest first, read while it is stopped;
/// None if the thread ended meanwhile.
fn filters_of(pid: i32, tid: i32) -> Result<Option<Vec<Vec<Insn>>>, AttachError> {
    match ptrace(libc::PTRACE_SEIZE, tid, 0, 0) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(_) => return Err(super::permission_refusal(pid)),
    }
    let read = interrupt(tid).and_then(|sig| Ok((read_filters(pid, tid)?, sig)));
    let pending = read.as_ref().map_or(0, |r| r.1);
    let _ = ptrace(libc::PTRACE_DETACH, tid, 0, pending as usize);
    match read {
        Ok((chain, _)) => Ok(Some(chain)),
        Err(AttachError::Gone(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the filters of a stopped thread.
fn read_filters(pid: i32, tid: i32) -> Result<Vec<Vec<Insn>>, AttachError> {
    let mut chain = Vec::new();
    for index in 0.. {
        let count = match ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, 0) {
            Ok(n) => n as usize,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(unreadable(pid, e)),
        };
        if count == 0 || count > MAX_INSNS {
            return Err(AttachError::Refused(format!(
                "process {pid} ({}): its seccomp filter {index} has {count} instructions, which no kernel accepts; not attached",
                comm(pid)
            )));
        }
        let mut buf = vec![0u8; count * 8];
        // The filter may have been replaced meanwhile by none other (a
        // thread's filters only grow, newest first): index still names
        // the same one, of the same length.
        ptrace(
            PTRACE_SECCOMP_GET_FILTER,
            tid,
            index,
            buf.as_mut_ptr() as usize,
        )
        .map_err(|e| unreadable(pid, e))?;
        chain.push(Insn::parse(&buf));
    }
    Ok(chain)
}

fn unreadable(pid: i32, e: io::Error) -> AttachError {
    let name = comm(pid);
    match e.raw_os_error() {
        Some(libc::EACCES) if inherited() => AttachError::Refused(format!(
            "process {pid} ({name}) runs under a seccomp filter, and vmmap cannot read it: vmmap itself runs under one, and the kernel lets no process under a filter read another's; without it vmmap cannot tell whether the calls of an attach would get the process killed; not attached"
        )),
        Some(libc::EACCES) => AttachError::Permission(format!(
            "process {pid} ({name}) runs under a seccomp filter, and reading it takes CAP_SYS_ADMIN (vmmap as root): without it vmmap cannot tell whether the calls of an attach would get the process killed; not attached"
        )),
        _ => AttachError::Refused(format!(
            "process {pid} ({name}) runs under a seccomp filter that vmmap could not read ({e}; the kernel needs CONFIG_CHECKPOINT_RESTORE for it): without it vmmap cannot tell whether the calls of an attach would get the process killed; not attached"
        )),
    }
}

/// Whether vmmap's own thread runs under seccomp (strict mode or
/// filters), which a program it starts inherits, and the kernel lets no
/// process under seccomp read filters (`PTRACE_SECCOMP_GET_FILTER`
/// answers EACCES): then nothing tells whether they would kill the
/// program at a call of the agent's.
pub fn inherited() -> bool {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    mode(std::process::id() as i32, tid).is_some_and(|m| m != 0)
}
