//! Opening a file whose name someone else chose: a path in a process's
//! maps (resolved in its own mount namespace, which it may have changed
//! since), a module named in a trace file. Opened by name, a FIFO put
//! there holds the reader in `open` for ever, and a device opened as root
//! may act on being opened (a watchdog starts). So the name is looked up
//! once with `O_PATH`, which opens nothing, and only a regular file is
//! then opened, through that descriptor.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Opens `path` for reading if it is a regular file (links followed);
/// anything else is refused without being opened.
pub fn open(path: &Path) -> io::Result<File> {
    let (at, _) = look_up(path)?;
    File::open(by_fd(&at))
}

/// Opens `path` for appending if it is a regular file (links followed)
/// that `check` accepts from its metadata; anything else is refused
/// without being opened. The name is looked up once: what `check` saw is
/// what is opened, even if the name is changed meanwhile.
pub fn open_append(
    path: &Path,
    check: impl FnOnce(&std::fs::Metadata) -> io::Result<()>,
) -> io::Result<File> {
    let (at, meta) = look_up(path)?;
    check(&meta)?;
    std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(by_fd(&at))
}

/// `path` looked up with `O_PATH` (nothing is opened), if it names a
/// regular file: that lookup, and the file's metadata.
fn look_up(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let at = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    let meta = at.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((at, meta))
}

/// Opens a file named as input (a recording to read) for reading: a
/// regular file or a pipe (a FIFO, or `<(…)`'s `/dev/fd/N`); a device
/// is refused without being opened, with [`io::ErrorKind::Unsupported`]
/// (one acts on being opened: a watchdog starts). The name may be one
/// vmmap gave a file it wrote, which the program or another user has
/// since pointed elsewhere.
pub fn open_input(path: &Path) -> io::Result<File> {
    let at = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    let kind = at.metadata()?.file_type();
    if kind.is_block_device() || kind.is_char_device() || kind.is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a device, which vmmap does not open",
        ));
    }
    File::open(by_fd(&at))
}

/// A name for an open file that reaches that very file (for libraries
/// that open what they are given by name).
pub fn by_fd(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(&fifo, d.path().join("to-fifo")).unwrap();
        std::fs::write(d.path().join("lib.so"), b"not an elf").unwrap();
        // A FIFO would have blocked: it is turned down at once.
        assert!(open(&fifo).is_err());
        assert!(open(&d.path().join("to-fifo")).is_err());
        assert!(open(Path::new("/dev/null")).is_err());
        assert!(open(d.path()).is_err());
        // As input, a device is refused.
        let e = open_input(Path::new("/dev/null")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        // Nor is one opened to append to (`vmmap_trace::symbol_cache`'s
        // test sees that it is not even opened).
        let fifo_ok = |_: &std::fs::Metadata| Ok(());
        assert!(open_append(&d.path().join("to-fifo"), fifo_ok).is_err());
        let f = open(&d.path().join("lib.so")).unwrap();
        // Renamed away: the descriptor still reads the file checked.
        std::fs::rename(d.path().join("lib.so"), d.path().join("gone")).unwrap();
        assert_eq!(std::fs::read(by_fd(&f)).unwrap(), b"not an elf");
    }
}
