//! Calls the kernel refuses to a process with a second thread in it:
//! `unshare` of a user namespace and `setns` into a user, mount or time
//! namespace fail with EINVAL while the agent's writer thread exists, so
//! `unshare -U`, `bwrap`, `nsenter` and sandboxes failed under the agent.
//! For these calls the writer leaves the process and comes back after
//! ([`writer::park`]); other calls pass straight through.
//!
//! The same for the C library's changes of user and group ids
//! (`setresuid`, `setgroups`, …; the hooks are in `hooks.rs`): glibc makes
//! every thread of the process repeat the change and aborts the process
//! when one of them cannot. A program that keeps its capabilities across
//! a change of user on its own thread only (`PR_SET_KEEPCAPS` and
//! `capset` act on the calling thread), as `setpriv` does, then changes
//! its group: the writer, which kept no capability, could not, and the
//! program died of SIGABRT. A writer started after each change is a
//! copy of the thread that made it, credentials and capabilities alike.

use core::ffi::c_int;

#[cfg(not(test))]
use crate::hooks::raw_syscall;
#[cfg(not(test))]
use crate::writer;

/// Whether `unshare(flags)` needs the process alone: a new user
/// namespace implies `CLONE_THREAD`, which (like `CLONE_SIGHAND` and
/// `CLONE_VM` asked outright) the kernel grants only a process with one
/// thread.
pub(crate) fn unshare_needs_alone(flags: libc::c_long) -> bool {
    let alone = libc::CLONE_NEWUSER | libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM;
    flags & alone as libc::c_long != 0
}

/// Whether `setns(fd, nstype)` may: a user namespace (refused with a
/// second thread), a mount namespace (refused while another thread shares
/// the filesystem context, as the writer does), a time namespace (refused
/// while another thread shares the memory); `nstype` 0 lets the file say
/// which, and a pidfd's `nstype` is a set of kinds.
pub(crate) fn setns_needs_alone(nstype: libc::c_long) -> bool {
    const CLONE_NEWTIME: c_int = 0x80;
    let alone = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | CLONE_NEWTIME;
    nstype == 0 || nstype & alone as libc::c_long != 0
}

/// Makes the system call `n`, with the writer out of the process when
/// `needed` (and this process is being traced, and the caller is not the
/// agent itself). The call's result and errno are the kernel's.
#[cfg(not(test))]
pub(crate) fn call(needed: bool, n: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    // SAFETY: the caller's system call, as it asked.
    around(needed, || unsafe { raw_syscall(n, args) })
}

/// Runs `call` with the writer out of the process when `needed` (and
/// this process is being traced, and the caller is not the agent
/// itself); the call's errno is kept.
#[cfg(not(test))]
pub(crate) fn around<T>(needed: bool, call: impl FnOnce() -> T) -> T {
    let park = needed && crate::tracing() && !crate::agent_own();
    let parked = if park { writer::park(2000) } else { None };
    let r = call();
    if let Some(p) = parked {
        let e = crate::errno();
        // The program's only thread is here (park checked): what starting
        // the next writer allocates is the agent's.
        crate::own_all(|| writer::resume(p));
        crate::set_errno(e);
    }
    r
}

/// # Safety
/// As C `unshare`.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn unshare(flags: c_int) -> c_int {
    let needed = unshare_needs_alone(flags as libc::c_long);
    call(needed, libc::SYS_unshare, [flags as _, 0, 0, 0, 0, 0]) as c_int
}

/// # Safety
/// As C `setns`.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn setns(fd: c_int, nstype: c_int) -> c_int {
    let needed = setns_needs_alone(nstype as libc::c_long);
    call(needed, libc::SYS_setns, [fd as _, nstype as _, 0, 0, 0, 0]) as c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kinds_the_kernel_refuses_a_threaded_process_need_it_alone() {
        let l = |f: c_int| f as libc::c_long;
        assert!(unshare_needs_alone(l(libc::CLONE_NEWUSER)));
        assert!(unshare_needs_alone(l(
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS
        )));
        assert!(unshare_needs_alone(l(libc::CLONE_VM)));
        assert!(!unshare_needs_alone(l(libc::CLONE_NEWNS)));
        assert!(!unshare_needs_alone(l(libc::CLONE_FILES)));
        assert!(!unshare_needs_alone(l(
            libc::CLONE_NEWNET | libc::CLONE_NEWUTS
        )));
        assert!(setns_needs_alone(0));
        assert!(setns_needs_alone(l(libc::CLONE_NEWNS)));
        assert!(setns_needs_alone(l(
            libc::CLONE_NEWUSER | libc::CLONE_NEWPID
        )));
        assert!(!setns_needs_alone(l(libc::CLONE_NEWNET)));
        assert!(!setns_needs_alone(l(
            libc::CLONE_NEWPID | libc::CLONE_NEWIPC
        )));
    }
}
