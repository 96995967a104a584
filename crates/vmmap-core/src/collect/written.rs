//! "Written since": which regions had pages written between two moments,
//! from the kernel's soft-dirty bits. Clearing them (`echo 4 >
//! /proc/PID/clear_refs`) changes the target's state (it write-protects
//! every page so the next write faults once), so this runs only on request.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::procdir::ProcDir;
use super::Options;
use crate::error::{Error, Result};
use crate::model::Region;
use crate::proc::pagemap;

/// Clears the soft-dirty bits of every page of process `pid`.
pub fn clear_soft_dirty(pid: u32, opts: &Options) -> Result<()> {
    let dir = ProcDir::open(&opts.proc_root, pid)?;
    let path = dir.path("clear_refs");
    let mut f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| dir.error(path.clone(), e))?;
    f.write_all(b"4").map_err(|e| dir.error(path, e))
}

/// Bytes of each region whose pages are soft-dirty: written (or newly
/// mapped) since [`clear_soft_dirty`]. One pagemap read per region, in
/// chunks of at most 512 KiB of entries.
pub fn soft_dirty_bytes(
    pid: u32,
    opts: &Options,
    regions: &[Region],
    page_size: u64,
) -> Result<Vec<u64>> {
    let dir = ProcDir::open(&opts.proc_root, pid)?;
    let path = dir.path("pagemap");
    let f = std::fs::File::open(&path).map_err(|e| dir.error(path.clone(), e))?;
    let mut buf = vec![0u8; 1 << 19];
    let mut out = Vec::with_capacity(regions.len());
    for r in regions {
        let mut dirty = 0u64;
        for vma in r.vmas() {
            let (mut page, end) = (vma.start / page_size, vma.end / page_size);
            while page < end {
                let n = ((end - page) as usize).min(buf.len() / 8);
                let chunk = &mut buf[..n * 8];
                match f.read_at(chunk, page * 8) {
                    Ok(0) => break,
                    Ok(got) => dirty += pagemap::count(&chunk[..got], pagemap::SOFT_DIRTY),
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                        return Err(Error::ProcessExited { pid })
                    }
                    Err(e) => return Err(dir.error(path.clone(), e)),
                }
                page += n as u64;
            }
        }
        out.push(dirty * page_size);
    }
    Ok(out)
}
