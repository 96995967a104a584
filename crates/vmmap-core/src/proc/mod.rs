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
