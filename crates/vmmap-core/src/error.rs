//! Errors of collection. Each variant is a situation the user can act on,
//! so the command line can give each its own message and exit code.

use std::io;
use std::path::PathBuf;

use crate::proc::ParseError;
use crate::text::Escaped;

/// What went wrong while taking a snapshot or listing processes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No process has that PID.
    #[error("no process with PID {pid}; `vmmap ps` lists the running processes")]
    NoSuchProcess {
        /// The PID asked for.
        pid: u32,
    },
    /// No process has that name.
    #[error("no process named {name:?}; `vmmap ps` lists the running processes")]
    NoProcessNamed {
        /// The name asked for.
        name: String,
    },
    /// A name matches more than one process.
    #[error("{name:?} matches {} processes; give a PID instead:\n{}", matches.len(), list(matches))]
    AmbiguousName {
        /// The name asked for.
        name: String,
        /// PID and command line of each match.
        matches: Vec<(u32, String)>,
    },
    /// The kernel refused access.
    #[error("permission denied reading {}: {hint}", shown(path))]
    PermissionDenied {
        /// The PID.
        pid: u32,
        /// The file refused.
        path: PathBuf,
        /// Which privilege is missing and how to get it.
        hint: String,
    },
    /// The process went away while it was being read.
    #[error("process {pid} exited while vmmap was reading it; run vmmap again (on a new PID if it was restarted)")]
    ProcessExited {
        /// The PID.
        pid: u32,
    },
    /// The process has exited but its parent has not reaped it: the
    /// kernel has already freed its address space.
    #[error("process {pid} is a zombie: it has exited and has no address space left (its parent, PID {parent}, has not reaped it)")]
    Zombie {
        /// The PID.
        pid: u32,
        /// Its parent, which has not called wait().
        parent: u32,
    },
    /// A kernel thread has no user address space to show.
    #[error("PID {pid} ({}) is a kernel thread: it has no user address space to show; pick a user process (`vmmap ps`)", Escaped(name))]
    KernelThread {
        /// The PID.
        pid: u32,
        /// Its name.
        name: String,
    },
    /// The kernel lacks a /proc file or field vmmap cannot do without.
    #[error("this kernel does not provide {what}: {hint}")]
    Unsupported {
        /// What is missing.
        what: String,
        /// What to do.
        hint: String,
    },
    /// A /proc file had content vmmap does not understand.
    #[error(
        "unexpected content in {}: {source}; please report this with the output of `uname -r`",
        shown(path)
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        source: ParseError,
    },
    /// Any other I/O failure.
    #[error("reading {}: {source}", shown(path))]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// The processes a name matches, one a line; their command lines are
/// chosen by whoever started them, so they are escaped.
fn list(m: &[(u32, String)]) -> String {
    m.iter()
        .map(|(pid, cmd)| format!("  {pid:>7}  {}", Escaped(cmd)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A path in a message, escaped: a `--proc-root` or a file name may hold
/// any byte.
fn shown(p: &std::path::Path) -> std::borrow::Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    crate::text::escape_bytes(p.as_os_str().as_bytes())
}

/// Result of collection.
pub type Result<T, E = Error> = std::result::Result<T, E>;
