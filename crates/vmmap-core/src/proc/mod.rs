//! Sans-IO parsers for the `/proc` files a snapshot reads, one module per
//! file. Each takes bytes and returns typed values; reading the files is
//! the job of [`crate::collect`].

pub mod cmdline;
pub(crate) mod kpage;
pub mod mountinfo;
pub mod pagemap;
pub mod rollup;
pub mod smaps;
pub mod stat;
pub mod status;
pub mod syscall;

use std::fmt;

/// The index of the first `needle` in `hay`, by the C library's `memchr`.
///
/// Not the `memchr` crate: with `std` (which other crates of the workspace
/// turn on for it) it picks its routine by asking the CPU what it supports
/// at the first call, and under a hypervisor each CPUID instruction traps
/// (7 µs here): 6% of the time of a snapshot of 282 mappings. glibc's
/// `memchr` was chosen by the dynamic loader from what it had already
/// asked at start-up, and is as fast on the long runs of smaps.
pub(crate) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    if hay.is_empty() {
        return None;
    }
    // SAFETY: the pointer and length describe `hay`, valid for reads for
    // the call; memchr reads at most `hay.len()` bytes from it.
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), i32::from(needle), hay.len()) };
    // `p` is null or points into `hay`, so the offset is in bounds.
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

/// Text in a `/proc` file that does not have the expected shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Which file (`smaps`, `status`, …).
    pub(crate) file: &'static str,
    /// 1-based line number, 0 when not line-oriented.
    pub line: u64,
    /// What was wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(file: &'static str, line: u64, message: impl Into<String>) -> Self {
        Self {
            file,
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{} line {}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for ParseError {}
