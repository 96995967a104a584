//! A module's file as the symboliser may read it.
//!
//! blazesym opens the files that a module's link sections name, by those
//! names, and allocates what its compressed sections declare
//! (`vmmap_core::elf_debug` says why each is a hazard); it also maps the
//! file, so a file truncated under it raises SIGBUS. As root, the modules
//! of a trace are often another user's files: that user could make
//! `vmmap trace` open a device, wait on a FIFO for ever, abort, exhaust
//! the host's memory or die. So a file is read as it is only when root
//! and the user running vmmap are the only ones who can change it or the
//! directories its links are looked up in; any other file is copied into
//! a sealed memfd first, with its link sections hidden and its compressed
//! sections inflated within bounds (or hidden when they do not keep
//! them). What a hidden link named is not followed: that module keeps its
//! symbol table's names, without the lines a separate debug file holds.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use vmmap_core::elf::NotElf;
use vmmap_core::elf_debug::{self, Compressed, ELFCOMPRESS_ZLIB, ELFCOMPRESS_ZSTD, HIDDEN_NAME};

/// A file another user can change is copied up to this size; a larger
/// one is not read (its copy would be held in memory).
const COPY_LIMIT: u64 = 1 << 30;
/// Compressed sections of a copy inflate to this much in all, at most.
const INFLATE_LIMIT: u64 = 1 << 30;

/// A file for the symboliser: the one opened, or a copy of it.
pub(crate) struct DebugFile {
    _file: File,
    /// Its name for blazesym (`/proc/self/fd/N`).
    pub(crate) by_fd: PathBuf,
    /// In a copy: the debug link it hid (the file name and its CRC-32),
    /// for [`linked`] to follow.
    pub(crate) link: Option<(String, u32)>,
}

/// `file` as blazesym may read it: itself if only root and this user can
/// change it and its directory ([`fixed`]), else a copy made safe.
pub(crate) fn readable(file: File) -> Result<DebugFile, String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let (file, link) = if fixed(&file, &meta) {
        (file, None)
    } else {
        safe_copy(&file, meta.len())?
    };
    let by_fd = vmmap_core::regular::by_fd(&file);
    Ok(DebugFile {
        _file: file,
        by_fd,
        link,
    })
}

/// The debug file a copy's hidden link named, found where gdb looks for
/// it: beside the module `path`, in its `.debug` directory, and under each
/// of `debug_dirs` followed by the module's directory. Each candidate is
/// opened as a regular file only, must have the link's CRC-32, and is made
/// [`readable`] in turn (copied if another user can change it).
pub(crate) fn linked(
    path: &Path,
    (name, crc): &(String, u32),
    debug_dirs: &[PathBuf],
) -> Option<DebugFile> {
    let dir = path.parent()?;
    let mut candidates = vec![dir.join(name), dir.join(".debug").join(name)];
    let below_root = dir.strip_prefix("/").unwrap_or(dir);
    candidates.extend(debug_dirs.iter().map(|d| d.join(below_root).join(name)));
    candidates.into_iter().find_map(|p| {
        let mut file = vmmap_core::regular::open(&p).ok()?;
        if file.metadata().ok()?.len() > COPY_LIMIT {
            return None;
        }
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(_) => return None,
            }
        }
        if hasher.finalize() != *crc {
            return None;
        }
        // A copy is made from where the reading stopped.
        io::Seek::rewind(&mut file).ok()?;
        readable(file).ok()
    })
}

/// Whether what `m` describes belongs to root or to this user.
fn owned(m: &Metadata) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    m.uid() == 0 || m.uid() == me
}

/// Whether only root or this user can change what `m` describes: it is
/// [`owned`] so, and neither group nor others may write.
fn ours(m: &Metadata) -> bool {
    owned(m) && m.mode() & 0o022 == 0
}

/// Whether the open `file` and every name blazesym may look its links up
/// by are beyond other users' reach: the file is [`ours`] and so is its
/// directory, where a link's name is looked for next to it
/// ([`fixed_dir`]).
fn fixed(file: &File, meta: &Metadata) -> bool {
    if !ours(meta) {
        return false;
    }
    let Ok(path) = std::fs::read_link(vmmap_core::regular::by_fd(file)) else {
        return false;
    };
    if !path.is_absolute() || path.as_os_str().as_encoded_bytes().ends_with(b" (deleted)") {
        return false;
    }
    path.parent().is_some_and(fixed_dir)
}

/// Whether only root and this user can change what the names in `dir`
/// lead to: `dir` is [`ours`], and each directory above keeps the entry
/// below it (not writable by others, or sticky with that entry root's or
/// this user's). blazesym looks files up by name in such directories
/// only: the debug directories given to it are those that are.
pub(crate) fn fixed_dir(dir: &Path) -> bool {
    if !dir.is_absolute() || !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && ours(&m)) {
        return false;
    }
    let mut below: &Path = dir;
    while let Some(above) = below.parent() {
        let (Ok(a), Ok(b)) = (
            std::fs::symlink_metadata(above),
            std::fs::symlink_metadata(below),
        ) else {
            return false;
        };
        // In a sticky directory only the entry's owner, the directory's
        // and root may rename or remove the entry.
        let sticky_keeps = a.mode() & libc::S_ISVTX != 0 && owned(&a) && owned(&b);
        if !(ours(&a) || sticky_keeps) {
            return false;
        }
        below = above;
    }
    true
}

/// A sealed in-memory copy of `file` (`len` bytes by its size) with its
/// link sections hidden and its compressed sections inflated or hidden,
/// and the debug link it hid.
fn safe_copy(file: &File, len: u64) -> Result<(File, Option<(String, u32)>), String> {
    if len > COPY_LIMIT {
        return Err(format!(
            "another user can change this file, and at {} MiB it is too large to copy for reading (the limit is {} MiB)",
            len >> 20,
            COPY_LIMIT >> 20
        ));
    }
    let copy = memfd().map_err(|e| format!("cannot copy it for reading: {e}"))?;
    io::copy(&mut file.take(COPY_LIMIT), &mut &copy)
        .map_err(|e| format!("cannot copy it for reading: {e}"))?;
    let found = elf_debug::hazards(&mut vmmap_core::collect::sections::file_reader(&copy));
    let h = match found {
        Ok(h) => h,
        // Not ELF: blazesym says so itself, opening nothing else.
        Err(NotElf::BadMagic) => return Ok((seal(copy)?, None)),
        // ELF whose headers cannot be read here: blazesym might read
        // more of them, links included.
        Err(NotElf::Truncated) => return Err("another user can change this file, and its ELF headers cannot be read (they may name files to open)".into()),
    };
    if !h.complete {
        return Err("another user can change this file, and its section table cannot be read whole (it may name files to open)".into());
    }
    let hide = |at: Option<u64>| -> Result<(), String> {
        let at = at.ok_or("a section that names another file has no readable name")?;
        copy.write_all_at(&[HIDDEN_NAME], at)
            .map_err(|e| format!("cannot change its copy: {e}"))
    };
    // The link's data is small (a name and a checksum): a larger section
    // is not a link to follow.
    let link = h
        .debuglink
        .filter(|&(_, size)| size <= 4096)
        .and_then(|(at, size)| vmmap_core::collect::sections::file_reader(&copy)(at, size as usize))
        .and_then(|data| elf_debug::debuglink(&data, h.little_endian));
    for &at in &h.links {
        hide(at)?;
    }
    let mut inflated = 0u64;
    for c in &h.compressed {
        let data = (h.elf64_le && c.declared <= INFLATE_LIMIT - inflated)
            .then(|| {
                let at = c.offset.checked_add(c.header_len)?;
                let len = usize::try_from(c.size.checked_sub(c.header_len)?).ok()?;
                let mut read = vmmap_core::collect::sections::file_reader(&copy);
                inflate(c, &read(at, len)?)
            })
            .flatten();
        let Some(data) = data else {
            hide(c.name_at)?;
            continue;
        };
        inflated += data.len() as u64;
        let end = copy.metadata().map_err(|e| e.to_string())?.len();
        let at = end.next_multiple_of(8);
        copy.write_all_at(&data, at)
            .and_then(|()| {
                elf_debug::uncompressed_header(c, at, data.len() as u64)
                    .iter()
                    .try_for_each(|(off, bytes)| copy.write_all_at(bytes, *off))
            })
            .map_err(|e| format!("cannot change its copy: {e}"))?;
    }
    Ok((seal(copy)?, link))
}

/// The section's stream inflated, if it is zlib or zstd and yields
/// exactly the size its header declares (read no further than that).
fn inflate(c: &Compressed, stream: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = c.declared.checked_add(1)?;
    match c.kind? {
        ELFCOMPRESS_ZLIB => flate2::read::ZlibDecoder::new(stream)
            .take(limit)
            .read_to_end(&mut out)
            .ok()?,
        ELFCOMPRESS_ZSTD => zstd::stream::read::Decoder::new(stream)
            .ok()?
            .take(limit)
            .read_to_end(&mut out)
            .ok()?,
        _ => return None,
    };
    (out.len() as u64 == c.declared).then_some(out)
}

fn memfd() -> io::Result<File> {
    // SAFETY: a valid C string; flags known to the kernel.
    let fd = unsafe {
        libc::memfd_create(
            c"vmmap-symbols".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just made, owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Seals the copy against every change: what blazesym maps stays.
fn seal(copy: File) -> Result<File, String> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor this function owns.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(format!(
            "cannot seal its copy: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_only_root_can_change_is_read_as_it_is() {
        let f = File::open("/bin/sh").unwrap();
        let m = f.metadata().unwrap();
        assert!(fixed(&f, &m));
    }

    #[test]
    fn a_file_in_a_directory_others_can_write_is_copied() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lib.so");
        std::fs::write(&p, b"not an ELF file").unwrap();
        let mut perms = std::fs::metadata(d.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
        std::fs::set_permissions(d.path(), perms).unwrap();
        let f = File::open(&p).unwrap();
        assert!(!fixed(&f, &f.metadata().unwrap()));
        let r = readable(f).unwrap();
        // The copy is sealed: nothing can grow, shrink or write it.
        let copy = File::options().write(true).open(&r.by_fd).unwrap();
        assert!(copy.set_len(1).is_err());
        assert_eq!(std::fs::read(&r.by_fd).unwrap(), b"not an ELF file");
        // An ELF file whose headers cannot be read is not handed over.
        std::fs::write(&p, b"\x7fELF cut short").unwrap();
        assert!(readable(File::open(&p).unwrap()).is_err());
    }
}
