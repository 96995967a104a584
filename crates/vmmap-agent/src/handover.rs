//! The trace file from the launcher, for an image that may not open it
//! (`vmmap_wire::files`): one started by an exec after the program gave
//! up root, or a call that needs the process alone made after that.
//!
//! Asked only where nothing can go wrong for the program: never under a
//! seccomp filter (the calls below are not among those the agent judged
//! a filter by, and a filter may kill the process for one), and with a
//! bounded wait (two seconds) for an answer.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

use vmmap_wire::files::{GRANTED, MAX_REQUEST};

use crate::sys;

/// The launcher's socket name, from the environment at start.
static SOCKET: OnceLock<Vec<u8>> = OnceLock::new();

/// Keeps the launcher's socket name (before the environment is cleaned).
pub(crate) fn remember(name: Option<std::ffi::OsString>) {
    if let Some(n) = name.filter(|n| !n.is_empty() && n.len() < 100) {
        let _ = SOCKET.set(n.as_bytes().to_vec());
    }
}

/// A descriptor of `path` from the launcher, or None (no launcher to ask,
/// under seccomp, refused, no answer in time).
pub(crate) fn ask(path: &Path) -> Option<i32> {
    let name = SOCKET.get()?;
    let request = path.as_os_str().as_bytes();
    if request.len() + 1 > MAX_REQUEST || filtered() {
        return None;
    }
    // SAFETY: socket takes no pointers.
    let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return None;
    }
    let fd = exchange(s, name, request);
    // SAFETY: our own socket.
    unsafe { libc::syscall(libc::SYS_close, s) };
    fd
}

/// Whether this process is under seccomp (`Seccomp:` in its status).
fn filtered() -> bool {
    let Ok(status) = std::fs::read("/proc/self/status") else {
        return true;
    };
    let mode = status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Seccomp:"));
    mode.is_none_or(|m| m.trim_ascii() != b"0")
}

fn exchange(s: i32, name: &[u8], request: &[u8]) -> Option<i32> {
    // SAFETY: a zeroed sockaddr_un is valid; the name fits (checked in
    // remember: under 100 bytes, after the leading NUL).
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path[1..].iter_mut().zip(name) {
        *d = b as libc::c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    let wait = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: the address and the timeout are valid for their lengths.
    unsafe {
        for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
            libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                opt,
                &wait as *const _ as *const libc::c_void,
                core::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        if libc::connect(
            s,
            &addr as *const _ as *const libc::sockaddr,
            len as libc::socklen_t,
        ) != 0
        {
            return None;
        }
    }
    let mut line = request.to_vec();
    line.push(b'\n');
    if !sys::write_all(s, &line) {
        return None;
    }
    receive(s)
}

/// The answer byte and, when granted, the descriptor that came with it.
fn receive(s: i32) -> Option<i32> {
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: &mut byte as *mut u8 as *mut libc::c_void,
        iov_len: 1,
    };
    // Room for one descriptor, aligned as a cmsghdr.
    let mut room = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; every pointer set below is live
    // for the call.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = room.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_SPACE only computes.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
    // SAFETY: msg describes live buffers.
    let n = unsafe { libc::recvmsg(s, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    // SAFETY: the control buffer was filled by the kernel (or is empty:
    // CMSG_FIRSTHDR is then null).
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            None
        } else {
            Some(core::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32))
        }
    };
    if n == 1 && byte == GRANTED {
        return fd;
    }
    if let Some(fd) = fd {
        // SAFETY: a descriptor the kernel just gave us.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
    None
}
