//! Exit codes and the failure type every command returns.

use std::io;

use vmmap_core::Error;

pub const OTHER: u8 = 1;
pub const USAGE: u8 = 2;
pub const NO_PROCESS: u8 = 3;
pub const PERMISSION: u8 = 4;
pub const EXITED: u8 = 5;
pub const KERNEL_THREAD: u8 = 6;
pub const UNSUPPORTED: u8 = 7;
pub const AMBIGUOUS: u8 = 8;
pub const PARSE: u8 = 9;
pub const OUTPUT: u8 = 10;
pub const BAD_FILE: u8 = 11;
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
