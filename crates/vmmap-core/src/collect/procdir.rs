//! Thin reader of one process's `/proc/PID` directory: opens files and
//! turns OS errors into [`Error`]s that say what happened to the process.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::proc::ParseError;

/// Largest `/proc` file read whole (all but smaps): `maps` of 60,000
/// mappings is 4.5 MB, `status` a few KiB.
pub(crate) const MAX_FILE: u64 = 64 << 20;

/// One process's directory under a proc root (`/proc`, or a captured copy).
#[derive(Clone, Debug)]
pub struct ProcDir {
    /// The proc root.
    pub(crate) root: PathBuf,
    /// The PID.
    pub(crate) pid: u32,
    dir: PathBuf,
}

impl ProcDir {
    /// The directory of `pid` under `root`; fails if there is none.
    pub fn open(root: &Path, pid: u32) -> Result<ProcDir> {
        let dir = root.join(pid.to_string());
        match std::fs::metadata(&dir) {
            Ok(_) => Ok(ProcDir {
                root: root.to_path_buf(),
                pid,
                dir,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchProcess { pid }),
            Err(e) => Err(Error::Io {
                path: dir,
                source: e,
            }),
        }
    }

    /// Whether this reads the live system rather than a captured tree.
    pub(crate) fn is_live(&self) -> bool {
        self.root == Path::new("/proc")
    }

    /// Path of a file in the process directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Opens a file, mapping errors.
    pub(crate) fn open_file(&self, name: &str) -> Result<File> {
        let p = self.path(name);
        File::open(&p).map_err(|e| self.error(p, e))
    }

    /// Reads a whole (small) file, of at most [`MAX_FILE`] bytes: a
    /// captured tree may hold anything, and smaps, the one large file, is
    /// streamed instead.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>> {
        let f = self.open_file(name)?;
        let mut buf = Vec::with_capacity(4096);
        f.take(MAX_FILE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| self.error(self.path(name), e))?;
        if buf.len() as u64 > MAX_FILE {
            let file = [
                "stat",
                "status",
                "cmdline",
                "maps",
                "smaps_rollup",
                "mountinfo",
            ]
            .into_iter()
            .find(|f| *f == name)
            .unwrap_or("file");
            return Err(Error::Parse {
                path: self.path(name),
                source: ParseError::new(
                    file,
                    0,
                    format!(
                        "larger than {} MiB, which the kernel never prints",
                        MAX_FILE >> 20
                    ),
                ),
            });
        }
        Ok(buf)
    }

    /// Reads a thread's one-line file (`task/{rel}`: its `comm` or
    /// `syscall`) with one `read` into a buffer larger than the kernel
    /// prints there: [`ProcDir::read`] makes a second call to see the end
    /// of the file, and for two files of every thread those calls add up.
    /// Anything else (a longer file in a captured tree) is read whole.
    /// The file is opened relative to `task`, the open `task` directory:
    /// the kernel then looks up only the thread and the file, not `/proc`,
    /// the process and `task` again each time (`open` was 8% of a snapshot
    /// of a 31-thread process).
    pub(crate) fn read_task_line(&self, task: &File, rel: &str) -> Result<Vec<u8>> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let name = format!("task/{rel}");
        let c = std::ffi::CString::new(rel).map_err(|_| {
            self.error(
                self.path(&name),
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;
        // SAFETY: `task` is an open directory for the duration of the call
        // and `c` a NUL-terminated path; openat only reads them.
        let fd = unsafe {
            libc::openat(
                task.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(self.error(self.path(&name), io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let f = unsafe { File::from_raw_fd(fd) };
        self.read_line_from(f, &name)
    }

    /// The one-`read` body of [`ProcDir::read_task_line`], on `name` opened.
    fn read_line_from(&self, mut f: File, name: &str) -> Result<Vec<u8>> {
        let mut buf = [0u8; 512];
        loop {
            match f.read(&mut buf) {
                Ok(n) if n < buf.len() && (n == 0 || buf[n - 1] == b'\n') => {
                    return Ok(buf[..n].to_vec())
                }
                Ok(_) => return self.read(name),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(self.path(name), e)),
            }
        }
    }

    /// Reads a file that may not exist on this kernel.
    pub(crate) fn read_optional(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.read(name) {
            Ok(b) => Ok(Some(b)),
            Err(Error::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && self.alive() =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the process directory still exists.
    pub(crate) fn alive(&self) -> bool {
        self.dir.join("stat").exists()
    }

    /// Turns an OS error on `path` into the error the user should see.
    pub(crate) fn error(&self, path: PathBuf, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ESRCH) => return Error::ProcessExited { pid: self.pid },
            Some(libc::EACCES | libc::EPERM) => {
                return Error::PermissionDenied {
                    pid: self.pid,
                    path,
                    hint: super::privilege::hint(self),
                }
            }
            _ => {}
        }
        if e.kind() == io::ErrorKind::NotFound && !self.alive() {
            return Error::ProcessExited { pid: self.pid };
        }
        Error::Io { path, source: e }
    }
}
