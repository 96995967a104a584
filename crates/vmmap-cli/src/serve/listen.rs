//! The listening socket: TCP, or a unix socket whose file permissions say
//! who may scrape. Bound before privileges are dropped (a port below 1024,
//! a socket in /run) and before any thread exists (the umask is
//! process-wide).

use std::io;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::{exit, Failure};

/// A bound listener.
pub(crate) enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// Binds `listen`: `ADDR:PORT`, or `unix:PATH` with the socket file's
/// `mode` and, if given, group.
pub(crate) fn bind(listen: &str, mode: u32, group: Option<u32>) -> Result<Bound, Failure> {
    let fail = |code, why: String| Failure {
        code,
        message: format!("cannot listen on {listen}: {why}"),
    };
    let Some(path) = listen.strip_prefix("unix:") else {
        return TcpListener::bind(listen).map(Bound::Tcp).map_err(|e| {
            let code = if e.kind() == io::ErrorKind::InvalidInput {
                exit::USAGE
            } else {
                exit::OTHER
            };
            fail(code, e.to_string())
        });
    };
    let path = PathBuf::from(path);
    if path.as_os_str().is_empty() {
        return Err(fail(exit::USAGE, "no path after unix:".into()));
    }
    remove_stale(&path).map_err(|(code, why)| fail(code, why))?;
    // Created owner-only, then opened up to `mode`: the socket is never
    // reachable by more users than asked, even for a moment.
    // SAFETY: umask only swaps the process's mask; no thread runs yet.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(&path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| fail(exit::OTHER, e.to_string()))?;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| fail(exit::USAGE, "the path contains a NUL byte".into()))?;
    if let Some(gid) = group {
        // SAFETY: `c` is a NUL-terminated path; uid -1 keeps the owner.
        if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
            return Err(fail(
                exit::OTHER,
                format!("chown to gid {gid}: {}", io::Error::last_os_error()),
            ));
        }
    }
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| fail(exit::OTHER, format!("chmod {mode:o}: {e}")))?;
    Ok(Bound::Unix(listener, path))
}

/// Makes room for the socket: nothing there, or a socket nobody listens on
/// any more (left by a server that was killed), which is removed. Anything
/// else at the path is kept and refused.
fn remove_stale(path: &Path) -> Result<(), (u8, String)> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err((exit::OTHER, e.to_string())),
        Ok(m) if !m.file_type().is_socket() => Err((
            exit::USAGE,
            format!(
                "{} exists and is not a socket; refusing to replace it (remove it or choose another path)",
                path.display()
            ),
        )),
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => Err((
                exit::OTHER,
                "the socket is in use by a running server".into(),
            )),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
                .map_err(|e| (exit::OTHER, format!("removing the stale socket: {e}"))),
            Err(e) => Err((exit::OTHER, format!("probing the existing socket: {e}"))),
        },
    }
}
