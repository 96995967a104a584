//! Exit codes and the failure every command returns.
//!
//! Each failure maps to its own exit status, so that scripts can tell a
//! process that went away from a permission problem. The table is the
//! README's "Exit status" (and `vmmap --help`'s EXIT STATUS):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also when the reader of the output goes away, e.g. `\| head`) |
//! | 1 | other error |
//! | 2 | bad usage |
//! | 3 | no such process (PID or name) |
//! | 4 | permission denied (the message says which privilege is missing) |
//! | 5 | the process exited while being read, or is a zombie |
//! | 6 | kernel thread (no user address space) |
//! | 7 | the kernel lacks a needed /proc file or field |
//! | 8 | the name matches several processes (they are listed) |
//! | 9 | unexpected /proc content |
//! | 10 | cannot write the output |
//! | 11 | not a vmmap or VMMap .mmp file (or a malformed one), a newer format version or a trace format no release wrote, or no complete snapshot in it |
//! | 12 | the program cannot be traced (static, setuid, own malloc, no agent; attach: another architecture, traced by vmmap already) |

use std::io;

use vmmap_core::Error;

/// Any failure without a code of its own.
pub const OTHER: u8 = 1;
/// Bad usage: an argument clap accepted but the command cannot use.
pub const USAGE: u8 = 2;
/// No such process (PID or name).
pub const NO_PROCESS: u8 = 3;
/// Permission denied.
pub const PERMISSION: u8 = 4;
/// The process exited while being read, or is a zombie.
pub const EXITED: u8 = 5;
/// A kernel thread: no user address space.
pub const KERNEL_THREAD: u8 = 6;
/// The kernel lacks a needed /proc file or field.
pub const UNSUPPORTED: u8 = 7;
/// A name that matches several processes.
pub const AMBIGUOUS: u8 = 8;
/// Unexpected /proc content.
pub const PARSE: u8 = 9;
/// The output cannot be written.
pub const OUTPUT: u8 = 10;
/// Not a vmmap or .mmp file, a malformed or newer one (or a trace in a
/// format no release wrote), or one without a complete snapshot.
pub const BAD_FILE: u8 = 11;
/// The program cannot be traced (`vmmap run`).
pub const CANNOT_TRACE: u8 = 12;

/// A failure with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::NoSuchProcess { .. } | Error::NoProcessNamed { .. } => NO_PROCESS,
            Error::PermissionDenied { .. } => PERMISSION,
            Error::ProcessExited { .. } | Error::Zombie { .. } => EXITED,
            Error::KernelThread { .. } => KERNEL_THREAD,
            Error::Unsupported { .. } => UNSUPPORTED,
            Error::AmbiguousName { .. } => AMBIGUOUS,
            Error::Parse { .. } => PARSE,
            _ => OTHER,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Output errors: a reader that went away (`vmmap … | head`) is success.
pub(crate) fn output_error(e: io::Error, what: &str) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure {
            code: 0,
            message: String::new(),
        }
    } else {
        Failure {
            code: OUTPUT,
            message: format!("cannot write {what}: {e}"),
        }
    }
}
