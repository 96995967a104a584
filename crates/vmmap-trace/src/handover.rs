//! The launcher's side of `vmmap_wire::files`: hands the trace file to a
//! traced image that may not open it (started by an exec after the
//! program gave up root).
//!
//! A thread serves an abstract unix socket whose name holds 128 random
//! bits. Any process in the network namespace can connect; the launcher
//! answers only the process it started (for the main file) and, following
//! children, a descendant of it asking for the very name
//! [`vmmap_wire::files::child_file_name`] gives it, as the kernel names
//! the peer (`SO_PEERCRED`, which the peer cannot forge). It opens only
//! those files, never follows a link, hands only regular files, and
//! gives each peer at most a second to finish its request.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use vmmap_wire::files::{child_file_name, GRANTED, MAX_REQUEST, REFUSED};

/// The serving thread; stopped when dropped.
pub struct Handover {
    name: String,
    root: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the thread answers for.
struct Files {
    /// The main trace file, and its identity when the launcher made it.
    main: PathBuf,
    identity: (u64, u64),
    follow_forks: bool,
    /// The launcher's child (0 until it is started).
    root: Arc<AtomicU32>,
    /// The launcher's pid namespace.
    pid_ns: Option<u64>,
}

impl Handover {
    /// Starts serving `main` (a regular file the launcher created, of
    /// that device and inode) and, with `follow_forks`, the followed
    /// processes' files beside it.
    pub fn start(main: &Path, identity: (u64, u64), follow_forks: bool) -> io::Result<Handover> {
        let mut token = [0u8; 16];
        // SAFETY: the buffer is valid for its length.
        let got = unsafe { libc::getrandom(token.as_mut_ptr().cast(), token.len(), 0) };
        if got != token.len() as isize {
            return Err(io::Error::last_os_error());
        }
        let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("vmmap-trace.{}.{hex}", std::process::id());
        let listener = listen(&name)?;
        let root = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let files = Files {
            main: main.to_path_buf(),
            identity,
            follow_forks,
            root: Arc::clone(&root),
            pid_ns: pid_ns("self"),
        };
        let halt = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vmmap-files".into())
            .spawn(move || serve(&listener, &files, &halt))?;
        Ok(Handover {
            name,
            root,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's name, for the agent's environment.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The launcher's child, once started.
    pub fn set_root(&self, pid: u32) {
        self.root.store(pid, Release);
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        self.stop.store(true, Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listening abstract socket (std's descriptors are close-on-exec: the
/// program does not inherit it).
fn listen(name: &str) -> io::Result<UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let listener = UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn serve(listener: &UnixListener, files: &Files, stop: &AtomicBool) {
    while !stop.load(Acquire) {
        let mut p = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        if let Ok((conn, _)) = listener.accept() {
            // Accepted from a non-blocking listener: answered blocking,
            // with time limits.
            let _ = conn.set_nonblocking(false);
            answer(&conn, files);
        }
    }
}

/// One request: the path, a newline; the answer byte and the file.
fn answer(conn: &UnixStream, files: &Files) {
    let Some(peer) = peer_pid(conn) else { return };
    // Strangers are not read at all.
    let root = wait_root(&files.root);
    if root == 0 || !(peer == root || files.follow_forks && descends(peer, root)) {
        let _ = send(conn, None);
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    let mut reader = conn;
    while !request.ends_with(b"\n") && request.len() <= MAX_REQUEST {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let Some(asked) = request.strip_suffix(b"\n") else {
        return;
    };
    let file = granted(files, peer, root, Path::new(OsStr::from_bytes(asked)))
        .and_then(|p| open(files, &p));
    let _ = send(conn, file.as_ref());
}

/// The file `peer` may have under the name it `asked` for.
fn granted(files: &Files, peer: u32, root: u32, asked: &Path) -> Option<PathBuf> {
    if asked == files.main {
        return (peer == root).then(|| files.main.clone());
    }
    if !files.follow_forks {
        return None;
    }
    let status = std::fs::read(format!("/proc/{peer}/status")).ok()?;
    // The pid as the process knows itself: the last of NSpid.
    let own = *vmmap_core::proc::status::parse(&status)
        .ok()?
        .ns_pids()
        .last()?;
    let ns = pid_ns(&peer.to_string()).filter(|ns| Some(*ns) != files.pid_ns);
    let stem = files.main.file_stem()?.to_str()?;
    let expected = files.main.with_file_name(child_file_name(stem, own, ns));
    (asked == expected).then_some(expected)
}

/// Opens a file to hand over: appending, never through a link, only a
/// regular file (a FIFO planted under the name must not block the
/// launcher: opened without waiting), the main file only if it is still
/// the one the launcher made, and a followed process's file only if the
/// launcher's user owns it (the process made it before it gave up root,
/// or the launcher makes it now): another user may have put a file of
/// theirs under that name in a shared directory, to read the trace.
fn open(files: &Files, path: &Path) -> Option<std::fs::File> {
    let main = path == files.main;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(!main)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    (m.is_file() && ours(main, (m.dev(), m.ino(), m.uid()), files.identity, euid)).then_some(f)
}

/// Whether an opened file (device, inode, owner) may be handed: the main
/// file while it is the one made (`identity`), another only when `euid`
/// owns it.
fn ours(main: bool, (dev, ino, uid): (u64, u64, u32), identity: (u64, u64), euid: u32) -> bool {
    if main {
        (dev, ino) == identity
    } else {
        uid == euid
    }
}

/// The answer: [`GRANTED`] with the file's descriptor, or [`REFUSED`].
fn send(conn: &UnixStream, file: Option<&std::fs::File>) -> io::Result<()> {
    let mut byte = if file.is_some() { GRANTED } else { REFUSED };
    let mut iov = libc::iovec {
        iov_base: &mut byte as *mut u8 as *mut libc::c_void,
        iov_len: 1,
    };
    let mut room = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; the pointers set below are live
    // for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(f) = file {
        msg.msg_control = room.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes; the room holds it.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
        // SAFETY: the control buffer is that long and aligned.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut i32, f.as_raw_fd());
        }
    }
    // SAFETY: msg describes live buffers.
    if unsafe { libc::sendmsg(conn.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The connected process, as the kernel names it.
fn peer_pid(conn: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid out-pointers of that size.
    let r = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some(cred.pid as u32)
}

/// The launcher's child: an image may ask before the launcher has heard
/// its pid back from the spawn (at most a second).
fn wait_root(root: &AtomicU32) -> u32 {
    for _ in 0..100 {
        match root.load(Acquire) {
            0 => std::thread::sleep(Duration::from_millis(10)),
            pid => return pid,
        }
    }
    0
}

/// Whether `pid` descends from `root` (its parents, as `/proc` gives
/// them, lead there).
fn descends(mut pid: u32, root: u32) -> bool {
    for _ in 0..4096 {
        let Some(parent) = parent_of(pid) else {
            return false;
        };
        if parent == root {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        pid = parent;
    }
    false
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    vmmap_core::proc::stat::parse(&stat).ok().map(|s| s.ppid)
}

/// The inode of a process's pid namespace (`self` or a pid).
fn pid_ns(who: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{who}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_descends_from_its_ancestors_only() {
        let me = std::process::id();
        let parent = parent_of(me).unwrap();
        assert!(descends(me, parent));
        assert!(!descends(parent, me));
        assert!(!descends(me, me));
    }

    #[test]
    fn only_the_started_process_gets_the_main_file_and_only_its_own_name() {
        let dir = std::env::temp_dir().join(format!("vmmap-handover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("run.vmmap");
        std::fs::write(&main, b"").unwrap();
        let m = std::fs::metadata(&main).unwrap();
        let files = Files {
            main: main.clone(),
            identity: (m.dev(), m.ino()),
            follow_forks: true,
            root: Arc::new(AtomicU32::new(0)),
            pid_ns: pid_ns("self"),
        };
        let me = std::process::id();
        let parent = parent_of(me).unwrap();
        assert_eq!(granted(&files, me, me, &main), Some(main.clone()));
        assert_eq!(granted(&files, me, parent, &main), None);
        let own = dir.join(format!("run.{me}.vmmap"));
        assert_eq!(granted(&files, me, parent, &own), Some(own.clone()));
        let other = dir.join(format!("run.{parent}.vmmap"));
        assert_eq!(granted(&files, me, parent, &other), None);
        assert_eq!(granted(&files, me, parent, Path::new("/etc/passwd")), None);
        assert!(open(&files, &own).is_some(), "made anew, the launcher's");
        std::fs::remove_file(&own).unwrap();
        // Another user's file under a followed process's name is not
        // handed (that user could read the trace); the main file only
        // while it is the one made.
        assert!(ours(false, (1, 2, 0), (1, 2), 0));
        assert!(!ours(false, (1, 2, 65534), (1, 2), 0));
        assert!(ours(true, (1, 2, 65534), (1, 2), 0));
        assert!(!ours(true, (1, 3, 0), (1, 2), 0));
        // A link put in the main file's place is not followed.
        std::fs::remove_file(&main).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &main).unwrap();
        assert!(open(&files, &main).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
