//! Writing resolved symbols back into the trace file they came from, so
//! that the next analysis (on this machine or another) needs neither the
//! binaries nor their debug files.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
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
    // Looked up once and checked before it is opened: a device swapped
    // in under the name since the analysis read the file (a watchdog
    // starts on being opened) is never opened.
    let check = |m: &std::fs::Metadata| {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if m.uid() != euid || analysed != Some((m.dev(), m.ino())) {
            return Err(std::io::Error::other(
                "not the file analysed, or not a regular file of this user's",
            ));
        }
        Ok(())
    };
    let written =
        vmmap_core::regular::open_append(path, check).and_then(|mut f| f.write_all(&bytes));
    match written {
        Ok(()) => CacheWrite::Appended(fresh.len()),
        Err(e) => CacheWrite::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    use super::*;
    use crate::symbols::{CachedModule, Frame};

    #[test]
    fn a_name_swapped_to_something_else_is_never_opened() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // The trace's name now leads to the FIFO (it was a regular file
        // when the analysis read it).
        let name = d.path().join("trace.vmmap");
        std::os::unix::fs::symlink(&fifo, &name).unwrap();
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let syms = Symbols::with_fresh(CachedModule {
            key: "00".into(),
            entries: vec![(
                16,
                vec![Frame {
                    function: "f".into(),
                    file: None,
                    line: None,
                    inlined: false,
                }],
            )],
        });
        assert!(matches!(
            append(&name, Some((1, 2)), &syms),
            CacheWrite::Failed(_)
        ));
        // A writer that came and went would leave POLLHUP to its reader.
        let mut p = libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut p, 1, 0) };
        assert_eq!(ready, 0, "the FIFO was opened");
    }
}
