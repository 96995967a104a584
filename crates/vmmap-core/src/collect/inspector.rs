//! The [`Inspector`] over the live system: mapped files are read through
//! the target's root (`/proc/PID/root/…`, right across mount namespaces and
//! containers) or `map_files/` (right for deleted files), and target memory
//! through [`ProcessMemory`], which reads resident pages only (a read of
//! any other page would fault it into the target).

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
    fs_types: HashMap<(u32, u32), String>,
    mem: Option<ProcessMemory>,
    /// Whether target memory may be read at all.
    pub(crate) read_memory: bool,
}

impl<'a> LiveInspector<'a> {
    /// An inspector for `dir`'s process; reads its mountinfo now.
    pub(super) fn new(dir: &'a ProcDir, read_memory: bool) -> Self {
        let fs_types = dir
            .read("mountinfo")
            .map(|b| mountinfo::parse(&b))
            .unwrap_or_default()
            .into_iter()
            .map(|m| ((m.major, m.minor), m.fs_type))
            .collect();
        LiveInspector {
            dir,
            fs_types,
            mem: None,
            read_memory,
        }
    }

    fn open_mapped_file(&self, r: &Region) -> Result<File, String> {
        let path = r.path.strip_suffix(" (deleted)").unwrap_or(&r.path);
        let mut last_err = String::from("no way to open it");
        if !r.path.ends_with(" (deleted)") {
            let p = self.dir.path("root").join(path.trim_start_matches('/'));
            match File::open(&p) {
                // The path may now name another file than the one mapped
                // (replaced by a package upgrade): check the inode.
                Ok(f) if f.metadata().map(|m| m.ino() == r.inode).unwrap_or(false) => return Ok(f),
                Ok(_) => last_err = "the file at that path was replaced since it was mapped".into(),
                Err(e) => last_err = e.to_string(),
            }
        }
        let p = self
            .dir
            .path(&format!("map_files/{:x}-{:x}", r.start, r.end));
        File::open(&p).map_err(|e| format!("{last_err}; map_files: {e}"))
    }
}

impl Inspector for LiveInspector<'_> {
    fn probe_file(&mut self, r: &Region) -> FileProbe {
        let f = match self.open_mapped_file(r) {
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

    fn fs_type(&self, major: u32, minor: u32) -> Option<&str> {
        self.fs_types.get(&(major, minor)).map(String::as_str)
    }

    fn read_file_at(&mut self, r: &Region, offset: u64, buf: &mut [u8]) -> bool {
        self.open_mapped_file(r)
            .is_ok_and(|f| f.read_exact_at(buf, offset).is_ok())
    }

    fn proc_file(&mut self, name: &str) -> Option<Vec<u8>> {
        self.dir.read_optional(name).ok().flatten()
    }
}
