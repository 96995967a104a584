//! Loading the agent from memory, for a process in another mount
//! namespace (a container) where the agent's path is not the agent.
//!
//! The stopped thread creates a memfd (`syscall(SYS_memfd_create)`: the
//! `memfd_create` wrapper is newer than glibc 2.27); vmmap takes a
//! duplicate of that very descriptor with `pidfd_getfd` and writes the
//! agent's bytes into it; the thread then calls
//! `dlopen("/proc/self/fd/N")` and `close(N)`. Nothing is copied into the
//! container's files, and the descriptor table is as it was afterwards.
//!
//! `pidfd_getfd` rather than opening `/proc/PID/fd/N`: the process's other
//! threads run meanwhile and could put another file at N; an open by path
//! (as root) could then reach a device or a file the process itself may
//! not write. The duplicate is checked to be an anonymous memfd (no link,
//! empty, sealing allowed with no seal set, which only a memfd created
//! with `MFD_ALLOW_SEALING` is) before anything is written to it.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use super::{other, read_mem, symbol_in, write_mem, AttachError, Stopped};

/// The memfd's name: `/proc/PID/maps` shows the agent as
/// `/memfd:libvmmap_agent.so (deleted)`.
const NAME: &str = "libvmmap_agent.so";
/// `PROC_SUPER_MAGIC`: the file system type of a procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// The agent's mappings as the maps show them when it came from a memfd.
fn mapped_path() -> String {
    format!("/memfd:{NAME} (deleted)")
}

/// Whether the process has a procfs at /proc in its own mount namespace:
/// `dlopen("/proc/self/fd/N")` needs one. Says why not, for the refusal.
pub(super) fn proc_visible(pid: i32) -> Result<(), AttachError> {
    let path = CString::new(format!("/proc/{pid}/root/proc")).unwrap_or_default();
    // SAFETY: all-zero is a valid statfs, filled in by the kernel.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is a C string; st a valid out-pointer.
    let r = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    if r == 0 && st.f_type == PROC_SUPER_MAGIC {
        return Ok(());
    }
    Err(AttachError::Refused(format!(
        "process {pid} runs in another mount namespace (a container?) where the agent is not at vmmap's path, and it has no /proc mounted to load the agent from memory: copy the agent to that same path inside it (or mount /proc there), then attach again"
    )))
}

/// `(start, end, offset)` of every mapping of a memfd agent in `pid`.
fn agent_mappings(pid: i32) -> Result<Vec<(u64, u64, u64)>, AttachError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| other(&format!("cannot read /proc/{pid}/maps"), e))?;
    let want = mapped_path();
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(6, ' ');
            let (range, _perms, off) = (f.next()?, f.next()?, f.next()?);
            let (_dev, _inode, path) = (f.next()?, f.next()?, f.next()?);
            if path.trim_start() != want {
                return None;
            }
            let (lo, hi) = range.split_once('-')?;
            Some((
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
                u64::from_str_radix(off, 16).ok()?,
            ))
        })
        .collect())
}

/// The base of a memfd agent an earlier attach loaded, when it is this
/// very agent: its first mapping (the ELF headers and dynamic tables,
/// never relocated) holds the same bytes as the file's start. The agent
/// stays loaded after a detach; loading a second copy would leave two.
pub(super) fn loaded(pid: i32, agent: &[u8]) -> Result<Option<u64>, AttachError> {
    for (lo, hi, off) in agent_mappings(pid)? {
        if off != 0 {
            continue;
        }
        let len = ((hi - lo) as usize).min(agent.len());
        if read_mem(pid, lo, len).is_ok_and(|b| b == agent[..len]) {
            return Ok(Some(lo));
        }
    }
    Ok(None)
}

/// Loads `agent` (its bytes) into `pid` on the stopped thread `t` from a
/// memfd, as the module's documentation says. `data` is where strings of
/// up to 64 bytes may be written below the thread's stack, `sp` the
/// calls' stack. Returns the
/// agent's base address.
pub(super) fn load(
    t: &mut Stopped,
    maps: &[(u64, u64, String)],
    agent: &[u8],
    data: u64,
    sp: u64,
) -> Result<u64, AttachError> {
    let pid = t.pid;
    let libc_fn = |name: &str| {
        symbol_in(pid, maps, super::is_libc, name).ok_or_else(|| {
            AttachError::Refused(format!(
                "process {pid} has no {name} in its C library: the agent cannot be loaded from memory"
            ))
        })
    };
    let (syscall, close, dlopen) = (
        libc_fn("syscall")?,
        libc_fn("close")?,
        super::dlopen_of(pid, maps)?,
    );
    let before: Vec<u64> = agent_mappings(pid)?.iter().map(|m| m.0).collect();

    let name = CString::new(NAME).unwrap_or_default();
    write_mem(pid, data, name.as_bytes_with_nul())
        .map_err(|e| other("writing the memfd's name into the process", e))?;
    let flags = (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as u64;
    let fd = t.call(syscall, &[libc::SYS_memfd_create as u64, data, flags], sp)? as i64;
    if fd < 0 {
        return Err(AttachError::Refused(format!(
            "process {pid} could not create a memfd to load the agent from (memfd_create failed: a seccomp filter?)"
        )));
    }
    let loaded = fill(pid, fd as i32, agent).and_then(|()| {
        let path = CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        write_mem(pid, data, path.as_bytes_with_nul())
            .map_err(|e| other("writing the agent's path into the process", e))?;
        t.call(
            dlopen,
            &[data, (libc::RTLD_NOW | libc::RTLD_LOCAL) as u64],
            sp,
        )
    });
    // The mappings keep the memfd alive: its descriptor goes, whatever
    // happened, so that the table is as it was.
    let closed = t.call(close, &[fd as u64], sp);
    let handle = loaded?;
    closed?;
    if handle == 0 {
        return Err(AttachError::Refused(format!(
            "process {pid} could not load the agent from memory (/proc/self/fd/{fd}): {}",
            super::dlerror_of(t, maps, sp)
        )));
    }
    agent_mappings(pid)?
        .into_iter()
        .find(|&(lo, _, off)| off == 0 && !before.contains(&lo))
        .map(|m| m.0)
        .ok_or_else(|| {
            AttachError::Other(
                "the agent was loaded from memory but is not in the process's maps".into(),
            )
        })
}

/// Writes the agent into the process's memfd `fd`, through a duplicate
/// of that descriptor, once it is seen to be the empty memfd just made.
fn fill(pid: i32, fd: i32, agent: &[u8]) -> Result<(), AttachError> {
    // SAFETY: pidfd_open takes a pid and flags; a descriptor comes back.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(other("pidfd_open", io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor of ours.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd takes descriptors and flags.
    let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if dup < 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::ENOSYS) {
            AttachError::Refused(format!(
                "process {pid} runs in another mount namespace where the agent's path is not the agent, and this kernel has no pidfd_getfd (Linux 5.6) to load it from memory: copy the agent to that same path inside it, then attach again"
            ))
        } else {
            other("pidfd_getfd", e)
        });
    }
    // SAFETY: a fresh descriptor of ours.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(dup as i32) });
    let meta = file
        .metadata()
        .map_err(|e| other("fstat of the memfd", e))?;
    // SAFETY: F_GET_SEALS takes no argument.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if !meta.is_file() || meta.nlink() != 0 || meta.len() != 0 || seals != 0 {
        return Err(AttachError::Other(format!(
            "descriptor {fd} of process {pid} is not the empty memfd it just created (the process changed it meanwhile?): nothing was written to it"
        )));
    }
    file.write_all(agent)
        .map_err(|e| other("writing the agent into the process's memfd", e))
}
