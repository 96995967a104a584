//! Writing an output file without harm, even as root in a directory that
//! other users can write.
//!
//! What a shell's `>` does, with the replacement of a regular file made
//! atomic:
//!
//! - a symbolic link is followed, but never one that another user planted
//!   in a sticky world-writable directory such as `/tmp` (the rule of the
//!   kernel's `fs.protected_symlinks`, checked here too, since that
//!   setting is off on some systems: a link there is followed only if this
//!   user or the directory's owner owns it); the file opened must be the
//!   one that checked walk reached, and the link itself stays a link. A
//!   link to nothing is refused (creating its target would need a
//!   hand-made follow the kernel cannot check);
//! - a regular file (or a new name) is written to a temporary beside it,
//!   created with `O_EXCL` under an unpredictable name, synced, given the
//!   replaced file's owner and permission bits (a new file gets 0666 less
//!   the umask), then renamed over it: readers see the old file or the new
//!   one, never half of one, and on any error the old file is left as it
//!   was and the temporary removed;
//! - anything else that exists (a character or block device, a FIFO, a
//!   socket) is opened for writing and written in place: never replaced,
//!   never removed, never truncated.

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `path` with what `fill` writes, atomically where it is (or will
/// be) a regular file, in place where it is a device or a FIFO.
pub fn write(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let target = Target::resolve(path)?;
    if let Some(existing) = &target.existing {
        if !existing.meta.is_file() {
            let mut w = BufWriter::new(existing.reopen(false)?);
            fill(&mut w)?;
            return w.flush();
        }
    }
    let dir = match target.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = target
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // O_CREAT|O_EXCL under a random name: a link planted beside the
    // output is never followed, and no name can be guessed in advance.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Some(existing) = &target.existing {
        let m = &existing.meta;
        let f = tmp.as_file();
        let mine = f.metadata()?;
        if (mine.uid(), mine.gid()) != (m.uid(), m.gid()) {
            std::os::unix::fs::fchown(f, Some(m.uid()), Some(m.gid())).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot give the new file the old one's owner {}:{} ({e}); write it as that user or remove the old file first",
                        m.uid(),
                        m.gid()
                    ),
                )
            })?;
        }
        // The permission bits only: set-id bits do not carry over to new
        // content.
        f.set_permissions(Permissions::from_mode(m.mode() & 0o777))?;
    }
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(&target.path).map_err(|e| e.error)?;
    // The rename itself survives a crash once the directory is synced;
    // the new file is complete either way, so a failure here is no error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens `path` for a writer that grows over time (a recording): a
/// regular file is truncated and written in place, a device or FIFO
/// written in place, a new name created with `O_EXCL`. Symbolic links are
/// followed only as [`write`] follows them.
pub fn create(path: &Path) -> io::Result<File> {
    let target = Target::resolve(path)?;
    match &target.existing {
        Some(existing) => existing.reopen(existing.meta.is_file()),
        None => OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .custom_flags(libc::O_NOCTTY)
            .open(&target.path),
    }
}

/// Flushes a finished stream to the disk when it is a regular file
/// (devices and FIFOs have nothing to sync, and refuse to).
pub fn sync(f: &File) -> io::Result<()> {
    if f.metadata()?.is_file() {
        f.sync_all()?;
    }
    Ok(())
}

/// Where an output really goes.
struct Target {
    /// The file to write: the given path, or the file its links lead to.
    path: PathBuf,
    /// What is there now, if anything.
    existing: Option<Existing>,
}

struct Existing {
    /// An `O_PATH` descriptor: the very file resolved, whatever happens
    /// to the names afterwards.
    fd: File,
    meta: Metadata,
}

impl Existing {
    /// Opens the resolved file for writing through its descriptor (no
    /// second path lookup, so no new symlink can be slipped in).
    fn reopen(&self, truncate: bool) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .truncate(truncate)
            .custom_flags(libc::O_NOCTTY)
            .open(crate::regular::by_fd(&self.fd))
    }
}

impl Target {
    fn resolve(path: &Path) -> io::Result<Target> {
        let walked = walk(path)?;
        if let Some((link, owner)) = walked.planted {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is a symbolic link of user {owner} in a sticky world-writable directory, which vmmap does not follow (the rule of fs.protected_symlinks, whatever that setting is here); remove it or write elsewhere",
                    link.display()
                ),
            ));
        }
        // O_PATH follows links the way open(2) does, with the kernel's
        // protections; it opens devices and FIFOs without side effects
        // and never blocks.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path);
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => return Self::unresolved(path, e),
        };
        let meta = fd.metadata()?;
        // A link swapped in between the walk and the open would take the
        // open elsewhere: the file opened must be the one walked to.
        let same = walked.end.as_ref().is_none_or(|end| {
            std::fs::metadata(end).is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()))
        });
        if !same {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the path changed while it was opened (a link replaced?); try again",
            ));
        }
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory; give a file name",
            ));
        }
        // The kernel's name for the file opened, links resolved.
        let real = std::fs::read_link(crate::regular::by_fd(&fd))?;
        Ok(Target {
            path: real,
            existing: Some(Existing { fd, meta }),
        })
    }

    /// A path that could not be opened: a new name, or an explained error.
    fn unresolved(path: &Path, e: io::Error) -> io::Result<Target> {
        let link = std::fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.file_type().is_symlink());
        match (e.kind(), link) {
            (io::ErrorKind::NotFound, None) => Ok(Target {
                path: path.to_path_buf(),
                existing: None,
            }),
            (io::ErrorKind::NotFound, Some(_)) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "it is a symbolic link to {}, which does not exist; create that file or remove the link",
                    std::fs::read_link(path)
                        .map_or_else(|_| "?".into(), |t| t.display().to_string())
                ),
            )),
            (io::ErrorKind::PermissionDenied, Some(m)) if m.uid() != euid() => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "it is a symbolic link of user {} that the kernel does not follow (fs.protected_symlinks: a link in a sticky world-writable directory is followed only by its owner); remove it or write elsewhere",
                    m.uid()
                ),
            )),
            _ => Err(e),
        }
    }
}

/// Where [`walk`] ended: the path with every link replaced by its
/// target (None where a link's text names nothing: /proc's links to
/// pipes and sockets, which only the kernel follows), and the first link
/// on the way that another user planted.
struct Walk {
    end: Option<PathBuf>,
    planted: Option<(PathBuf, u32)>,
}

/// Links followed at most, as the kernel's limit (`ELOOP` past it).
const MAX_LINKS: u32 = 40;

/// Resolves `path` as the kernel would, one name at a time, looking at
/// every symbolic link on the way: one in a sticky world-writable
/// directory that is owned by neither this user nor the directory's owner
/// is what `fs.protected_symlinks` refuses to follow. The walk stops at
/// the first link so planted, at a name that does not exist, or where a
/// name cannot be looked at (the open then says why).
fn walk(path: &Path) -> io::Result<Walk> {
    use std::path::Component;
    let mut at = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir()?
    };
    // Names still to walk, the next one last.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    let push = |todo: &mut Vec<std::ffi::OsString>, at: &mut PathBuf, p: &Path| {
        if p.is_absolute() {
            *at = PathBuf::from("/");
        }
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => todo.push(n.to_os_string()),
                Component::ParentDir => todo.push("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut todo, &mut at, path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let Ok(m) = std::fs::symlink_metadata(&next) else {
            // A new name, or a name only the kernel can follow.
            at = next;
            at.extend(todo.iter().rev());
            return Ok(Walk {
                end: (links == 0).then_some(at),
                planted: None,
            });
        };
        if !m.file_type().is_symlink() {
            at = next;
            continue;
        }
        let dir = std::fs::metadata(&at)?;
        let sticky_shared = dir.mode() & 0o1002 == 0o1002;
        if sticky_shared && m.uid() != euid() && m.uid() != dir.uid() {
            return Ok(Walk {
                end: None,
                planted: Some((next, m.uid())),
            });
        }
        links += 1;
        if links > MAX_LINKS {
            // The open fails with ELOOP.
            return Ok(Walk {
                end: None,
                planted: None,
            });
        }
        let target = std::fs::read_link(&next)?;
        push(&mut todo, &mut at, &target);
    }
    Ok(Walk {
        end: Some(at),
        planted: None,
    })
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new().prefix(tag).tempdir().unwrap()
    }

    #[test]
    fn the_walk_ends_where_the_kernel_does() {
        let d = dir("out-walk");
        let root = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("a/b", root.join("ab")).unwrap();
        std::os::unix::fs::symlink("../b/f", root.join("a/b/rel")).unwrap();
        std::os::unix::fs::symlink(root.join("ab/rel"), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        for (path, end) in [
            ("a/b/f", Some("a/b/f")),
            ("ab/f", Some("a/b/f")),
            ("abs", Some("a/b/f")),
            ("a/./b/../b/f", Some("a/b/f")),
            ("ab/../b/f", Some("a/b/f")),
            ("a/new", Some("a/new")),
            ("ab/new", None),
            ("loop", None),
        ] {
            let w = walk(&root.join(path)).unwrap();
            assert_eq!(w.end, end.map(|e| root.join(e)), "{path}");
            assert!(w.planted.is_none(), "{path}");
        }
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let d = dir("out-fail");
        let p = d.path().join("f.txt");
        std::fs::write(&p, "old").unwrap();
        let r = write(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("stopped"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_file_and_a_replaced_one() {
        let d = dir("out-new");
        let p = d.path().join("f.txt");
        write(&p, |w| w.write_all(b"one")).unwrap();
        std::fs::set_permissions(&p, Permissions::from_mode(0o640)).unwrap();
        write(&p, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_stream_truncates_in_place_and_a_directory_is_refused() {
        let d = dir("out-stream");
        let p = d.path().join("rec");
        std::fs::write(&p, "longer old content").unwrap();
        let mut f = create(&p).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let e = write(d.path(), |w| w.write_all(b"x")).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }
}
