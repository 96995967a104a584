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

/// What a cgroup reclaim did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupReclaim {
    /// The cgroup's directory.
    pub cgroup: std::path::PathBuf,
    /// Its `memory.current` before.
    pub before: u64,
    /// Its `memory.current` after.
    pub after: u64,
    /// The kernel could not reclaim all it was asked for (EAGAIN).
    pub partial: bool,
}

/// The cgroup v2 path of a process (`0::/path` in `/proc/PID/cgroup`).
pub(crate) fn cgroup_of(cgroup_file: &str) -> Option<&str> {
    cgroup_file.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Empty Working Set by cgroup: writes the cgroup's `memory.current` to
/// its `memory.reclaim` (cgroup v2, Linux 5.19+), which pages out memory
/// charged to the cgroup: every process in it, and its page cache, not
/// only `pid`. Refused with a reason when the kernel or the mount does
/// not offer it.
pub fn reclaim_cgroup(pid: u32, proc_root: &std::path::Path) -> Result<CgroupReclaim> {
    use std::path::PathBuf;
    let unsupported = |hint: String| Error::Unsupported {
        what: "cgroup memory.reclaim".into(),
        hint,
    };
    let read = |p: PathBuf| -> Result<String> {
        std::fs::read_to_string(&p).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Error::ProcessExited { pid },
            _ => Error::Io { path: p, source: e },
        })
    };
    let text = read(proc_root.join(pid.to_string()).join("cgroup"))?;
    let Some(rel) = cgroup_of(&text) else {
        return Err(unsupported(format!(
            "process {pid} is in no cgroup v2 hierarchy (no 0:: line in /proc/{pid}/cgroup); use --reclaim madvise"
        )));
    };
    let mounts = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    let Some(root) = crate::proc::mountinfo::parse(&mounts)
        .into_iter()
        .find(|m| m.fs_type == "cgroup2")
    else {
        return Err(unsupported(
            "no cgroup v2 hierarchy is mounted here; use --reclaim madvise".into(),
        ));
    };
    let dir = PathBuf::from(&root.mount_point).join(rel.trim_start_matches('/'));
    let file = dir.join("memory.reclaim");
    if !file.exists() {
        let controllers =
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let hint = if !controllers.split_whitespace().any(|c| c == "memory") {
            format!(
                "the memory controller is not enabled for cgroup {} (on this machine it may be bound to the cgroup v1 hierarchy); use --reclaim madvise",
                dir.display()
            )
        } else {
            format!(
                "{} is missing: memory.reclaim needs Linux 5.19 or later; use --reclaim madvise",
                file.display()
            )
        };
        return Err(unsupported(hint));
    }
    let current = |d: &PathBuf| -> Result<u64> {
        let t = read(d.join("memory.current"))?;
        t.trim().parse().map_err(|_| Error::Io {
            path: d.join("memory.current"),
            source: std::io::Error::other("not a number"),
        })
    };
    let before = current(&dir)?;
    let partial = match std::fs::write(&file, format!("{before}\n")) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => true,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            return Err(Error::PermissionDenied {
                pid,
                path: file,
                hint: "writing memory.reclaim needs write access to the cgroup (root, or a delegated cgroup)".into(),
            })
        }
        Err(e) => return Err(Error::Io { path: file, source: e }),
    };
    let after = current(&dir)?;
    Ok(CgroupReclaim {
        cgroup: dir,
        before,
        after,
        partial,
    })
}

#[cfg(test)]
mod cgroup_tests {
    use super::*;

    #[test]
    fn the_v2_line_names_the_cgroup() {
        let t = "4:memory:/x\n0::/user.slice/app.scope\n";
        assert_eq!(cgroup_of(t), Some("/user.slice/app.scope"));
        assert_eq!(cgroup_of("4:memory:/x\n"), None);
    }
}
