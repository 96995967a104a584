//! Empty Working Set: ask the kernel to page out a process's memory with
//! `process_madvise(2)` and `MADV_PAGEOUT` through a pidfd (Linux 5.10+).
//!
//! Clean file pages are dropped (they are read back from the file on the
//! next touch); dirty anonymous and shmem pages go to swap, and stay
//! resident when there is no swap. Pages mapped by other processes too stay
//! resident (the kernel pages out only pages this process alone maps).
//! Locked (`mlock`), PFN-mapped and hugetlb mappings cannot be paged out and
//! are skipped. The target needs nothing; vmmap needs ptrace read access to
//! it and `CAP_SYS_NICE`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::model::Snapshot;

/// What paging out did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageOut {
    /// Mappings advised.
    pub advised: u32,
    /// Bytes of the mappings advised.
    pub advised_bytes: u64,
    /// Mappings skipped: locked, PFN or hugetlb, or gone since the
    /// snapshot.
    pub skipped: u32,
}

fn denied(pid: u32, what: &str) -> Error {
    Error::PermissionDenied {
        pid,
        path: std::path::PathBuf::from(what),
        hint: "paging out another process's memory needs CAP_SYS_NICE and ptrace read access to it (the same user and a dumpable process, or CAP_SYS_PTRACE); run vmmap as root (sudo)".into(),
    }
}

/// Pages out every mapping of `snap`'s process that can be.
pub fn page_out(snap: &Snapshot) -> Result<PageOut> {
    let pid = snap.process.pid;
    let raw_pid = libc::pid_t::try_from(pid).map_err(|_| Error::NoSuchProcess { pid })?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new file
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ESRCH) => Error::ProcessExited { pid },
            Some(libc::ENOSYS) => Error::Unsupported {
                what: "pidfd_open(2)".into(),
                hint: "emptying the working set needs Linux 5.10 or later (pidfd_open and process_madvise)".into(),
            },
            Some(libc::EPERM | libc::EACCES) => denied(pid, "pidfd_open"),
            _ => Error::Io {
                path: "pidfd_open".into(),
                source: e,
            },
        });
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut out = PageOut::default();
    for vma in snap.vmas() {
        let unmovable = ["lo", "pf", "ht", "io"].iter().any(|f| vma.has_vm_flag(f));
        if unmovable || vma.start >= 1 << 63 {
            out.skipped += 1;
            continue;
        }
        let iov = libc::iovec {
            iov_base: vma.start as *mut libc::c_void,
            iov_len: usize::try_from(vma.end - vma.start).unwrap_or(usize::MAX),
        };
        // SAFETY: `iov` is one valid iovec describing a range in the
        // target's address space, which the kernel checks; nothing in this
        // process is read or written through it.
        let n = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                pidfd.as_raw_fd(),
                &iov as *const libc::iovec,
                1usize,
                libc::MADV_PAGEOUT,
                0u32,
            )
        };
        if n >= 0 {
            out.advised += 1;
            out.advised_bytes += vma.end - vma.start;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ESRCH) => return Err(Error::ProcessExited { pid }),
            Some(libc::EPERM | libc::EACCES) => return Err(denied(pid, "process_madvise")),
            Some(libc::ENOSYS) => {
                return Err(Error::Unsupported {
                    what: "process_madvise(2)".into(),
                    hint: "emptying the working set needs Linux 5.10 or later".into(),
                })
            }
            // Unmapped since the snapshot (ENOMEM), or a mapping the
            // kernel will not page out (EINVAL).
            _ => out.skipped += 1,
        }
    }
    if out.advised == 0 && out.skipped > 0 {
        return Err(Error::Unsupported {
            what: "MADV_PAGEOUT for any mapping of this process".into(),
            hint: "the kernel refused every mapping (MADV_PAGEOUT needs Linux 5.4+, process_madvise 5.10+)".into(),
        });
    }
    Ok(out)
}
