//! Writing resolved symbols back into the trace file they came from, so
//! that the next analysis (on this machine or another) needs neither the
//! binaries nor their debug files.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::symbols::Symbols;
use vmmap_core::format::{chunk_bytes, CHUNK_SYMBOLS};

/// What writing the cache back did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheWrite {
    /// Every symbol needed was already in the file.
    UpToDate,
    /// A chunk with this many modules' symbols was appended.
    Appended(usize),
    /// The file could not be written (read-only, someone else's): the
    /// analysis is unaffected, only the next one resolves again.
    Failed(String),
}

/// Appends the symbols `syms` resolved that the file's cache lacked, as
/// one [`CHUNK_SYMBOLS`] chunk. Append only, in one write on an
/// `O_APPEND` file: nothing already in the file is touched, and an agent
/// or launcher still appending to it never interleaves with this chunk.
///
/// Only into a regular file of this user's that is the very file analysed
/// (`analysed`: its device and inode as read): an analysis reads, and
/// root looking at another user's trace must not change it. The name is
/// opened a second time here, and a link swapped in since the analysis
/// read the file (another user's, in /tmp, to /etc/shadow) took that
/// append to the file it named.
pub(crate) fn append(path: &Path, analysed: Option<(u64, u64)>, syms: &Symbols) -> CacheWrite {
    let fresh = syms.new_cache_entries();
    if fresh.is_empty() {
        return CacheWrite::UpToDate;
    }
    let bytes = super::scan::encode_symbols(&fresh)
        .and_then(|(payload, raw)| chunk_bytes(CHUNK_SYMBOLS, &payload, raw));
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => return CacheWrite::Failed(e.to_string()),
    };
    let written = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|mut f| {
            let m = f.metadata()?;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let euid = unsafe { libc::geteuid() };
            if !m.is_file() || m.uid() != euid || analysed != Some((m.dev(), m.ino())) {
                return Err(std::io::Error::other(
                    "not the file analysed, or not a regular file of this user's",
                ));
            }
            f.write_all(&bytes)
        });
    match written {
        Ok(()) => CacheWrite::Appended(fresh.len()),
        Err(e) => CacheWrite::Failed(e.to_string()),
    }
}
