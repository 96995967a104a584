//! Writing resolved symbols back into the trace file they came from, so
//! that the next analysis (on this machine or another) needs neither the
//! binaries nor their debug files.

use std::io::Write;
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
pub(crate) fn append(path: &Path, syms: &Symbols) -> CacheWrite {
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
        .open(path)
        .and_then(|mut f| f.write_all(&bytes));
    match written {
        Ok(()) => CacheWrite::Appended(fresh.len()),
        Err(e) => CacheWrite::Failed(e.to_string()),
    }
}
