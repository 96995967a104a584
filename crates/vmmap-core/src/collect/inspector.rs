//! The [`Inspector`] over the live system: mapped files are read through
//! the target's root (`/proc/PID/root/…`, right across mount namespaces and
//! containers) or `map_files/` (right for deleted files), and target memory
//! through [`ProcessMemory`], which reads resident pages only (a read of
//! any other page would fault it into the target).
//!
//! Classification reads the same few files many times (the executable's
//! section headers, one small read each): those are opened once per
//! snapshot and kept, by device and inode ([`KEPT_FILES`] at most, so that
//! a process mapping thousands of files costs no more descriptors), and
//! mountinfo is read only when a file system type is asked for (shared
//! file mappings).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use super::procdir::ProcDir;
use crate::classify::{FileProbe, Inspector};
use crate::elf;
use crate::memory::ProcessMemory;
use crate::model::Region;
use crate::proc::mountinfo;

/// Reads what classification needs from a live (or captured) process.
pub(crate) struct LiveInspector<'a> {
    dir: &'a ProcDir,
    fs_types: OnceCell<HashMap<(u32, u32), String>>,
    /// The mapped files opened so far, or why one could not be.
    files: HashMap<(u32, u32, u64), Result<File, String>>,
    mem: Option<ProcessMemory>,
    /// Whether target memory may be read at all.
    pub(crate) read_memory: bool,
}

impl<'a> LiveInspector<'a> {
    /// An inspector for `dir`'s process. Nothing is read yet.
    pub(super) fn new(dir: &'a ProcDir, read_memory: bool) -> Self {
        LiveInspector {
            dir,
            fs_types: OnceCell::new(),
            files: HashMap::new(),
            mem: None,
            read_memory,
        }
    }

    /// Reads from the file `r` maps, opened once per snapshot when it can
    /// be kept (see the module doc).
    fn with_mapped_file<T>(&mut self, r: &Region, f: impl FnOnce(&File) -> T) -> Result<T, String> {
        let key = (r.dev_major, r.dev_minor, r.inode);
        // Inode 0 names no file: each such mapping is opened on its own.
        if r.inode == 0 || (self.files.len() >= KEPT_FILES && !self.files.contains_key(&key)) {
            return open_mapped_file(self.dir, r).map(|file| f(&file));
        }
        let dir = self.dir;
        match self
            .files
            .entry(key)
            .or_insert_with(|| open_mapped_file(dir, r))
        {
            Ok(file) => Ok(f(file)),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The most mapped files kept open at once by one inspector.
const KEPT_FILES: usize = 16;

fn open_mapped_file(dir: &ProcDir, r: &Region) -> Result<File, String> {
    let path = r.path.strip_suffix(" (deleted)").unwrap_or(&r.path);
    let mut last_err = String::from("no way to open it");
    if !r.path.ends_with(" (deleted)") {
        let p = dir.path("root").join(path.trim_start_matches('/'));
        // The name is resolved in the process's own mount namespace, which
        // it may have changed since it mapped the file: a FIFO mounted
        // over the name held vmmap in open() for ever.
        match crate::regular::open(&p) {
            // The path may now name another file than the one mapped
            // (replaced by a package upgrade): check the inode.
            Ok(f) if f.metadata().map(|m| m.ino() == r.inode).unwrap_or(false) => return Ok(f),
            Ok(_) => last_err = "the file at that path was replaced since it was mapped".into(),
            Err(e) => last_err = e.to_string(),
        }
    }
    // map_files/ reaches the very object mapped, a device among them
    // (a GPU's, /dev/zero): only a regular file is opened.
    let p = dir.path(&format!("map_files/{:x}-{:x}", r.start, r.end));
    crate::regular::open(&p).map_err(|e| format!("{last_err}; map_files: {e}"))
}

impl Inspector for LiveInspector<'_> {
    fn probe_file(&mut self, r: &Region) -> FileProbe {
        // Probes are made once per file (the classifier keeps them): the
        // file is not kept open for them.
        let f = match open_mapped_file(self.dir, r) {
            Ok(f) => f,
            Err(e) => return FileProbe::Unreadable(e),
        };
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        while n < buf.len() {
            match f.read_at(&mut buf[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return FileProbe::Unreadable(e.to_string()),
            }
        }
        match elf::parse(&buf[..n]) {
            Ok(info) => FileProbe::Elf(info),
            Err(_) => FileProbe::NotElf,
        }
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        if !self.read_memory {
            return false;
        }
        let dir = self.dir;
        let mem = self
            .mem
            .get_or_insert_with(|| ProcessMemory::new(dir.clone()));
        // A page that is not resident, or an error (no pagemap, no access),
        // is memory classification goes without.
        matches!(mem.read(addr, buf), Ok(n) if n == buf.len())
    }

    fn read_memory_each(&mut self, addrs: &[u64], len: usize, out: &mut [u8]) -> Vec<bool> {
        if !self.read_memory {
            return vec![false; addrs.len()];
        }
        let dir = self.dir;
        let mem = self
            .mem
            .get_or_insert_with(|| ProcessMemory::new(dir.clone()));
        mem.read_each(addrs, len, out)
            .unwrap_or_else(|_| vec![false; addrs.len()])
    }

    fn fs_type(&self, major: u32, minor: u32) -> Option<&str> {
        self.fs_types
            .get_or_init(|| {
                self.dir
                    .read("mountinfo")
                    .map(|b| mountinfo::parse(&b))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| ((m.major, m.minor), m.fs_type))
                    .collect()
            })
            .get(&(major, minor))
            .map(String::as_str)
    }

    fn read_file_at(&mut self, r: &Region, offset: u64, buf: &mut [u8]) -> bool {
        self.with_mapped_file(r, |f| f.read_exact_at(buf, offset).is_ok())
            .unwrap_or(false)
    }

    fn proc_file(&mut self, name: &str) -> Option<Vec<u8>> {
        self.dir.read_optional(name).ok().flatten()
    }
}
