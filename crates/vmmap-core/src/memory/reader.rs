//! Reading another process's memory in bounded chunks: which ranges of a
//! snapshot can be read, and a driver that walks them with one fixed
//! buffer, handing each chunk (with an optional overlap carried over from
//! the previous one) to a sans-IO consumer.
//!
//! **Only resident pages are read.** `process_vm_readv(2)` and
//! `/proc/PID/mem` go through the kernel's `get_user_pages` on the target's
//! address space, which faults in any page that is not in its page tables:
//! an untouched page of shared anonymous memory, a memfd or tmpfs gets
//! allocated, a file page gets mapped (raising the target's Rss), a swapped
//! page gets swapped in. So every read, from the chunked scans and from the
//! small reads of classification alike, first asks the target's pagemap
//! ([`super::residency`]) which pages are present, and reads only those;
//! the rest is counted in [`ReadStats::not_resident`] and ends the
//! contiguous stretch. The one change a read of a resident page makes is
//! the page's accessed bit (smaps' `Referenced`).
//!
//! Reads go through `process_vm_readv(2)`, with `pread` on
//! `/proc/PID/mem` as the fallback (captured trees, kernels without the
//! syscall, seccomp filters that refuse it). Both need ptrace access to the
//! target (`PTRACE_MODE_ATTACH`). A page that cannot be read (unmapped
//! since the snapshot, a guard page) is skipped and ends the contiguous
//! stretch; it is never an error.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;

use super::residency::Residency;
use crate::collect::ProcDir;
use crate::error::{Error, Result};
use crate::model::{Region, Snapshot};

/// A range of addresses to read, within one top-level region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanRange {
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// Index of its top-level region in `Snapshot::regions`.
    pub region: usize,
}

/// Why a mapping is not read, if it is not.
pub fn skip_reason(vma: &Region) -> Option<&'static str> {
    if !vma.perms.read() {
        return Some("not readable");
    }
    if vma.has_vm_flag("io") || vma.has_vm_flag("pf") {
        return Some("I/O or PFN mapping (device memory: reading it may have side effects)");
    }
    if vma.path.starts_with("[vvar") || &*vma.path == "[vsyscall]" {
        return Some("kernel data page");
    }
    // Private anonymous memory with nothing resident or swapped is all
    // zeros: reading it would only fault in the zero page.
    let anon_private = vma.inode == 0 && !vma.perms.shared() && !vma.path.starts_with('/');
    let present = vma.fields.get(crate::proc::smaps::Field::Rss).unwrap_or(1)
        + vma.fields.get(crate::proc::smaps::Field::Swap).unwrap_or(0);
    if anon_private && present == 0 {
        return Some("nothing resident (all zeros)");
    }
    None
}

/// The ranges of `snap` worth reading: every readable VMA that is not
/// device memory or a kernel data page, in address order. With `only`,
/// just those of the top-level region holding that address (None if no
/// region does).
pub fn scan_ranges(snap: &Snapshot, only: Option<u64>) -> Option<Vec<ScanRange>> {
    let mut out = Vec::new();
    let indices: Vec<usize> = match only {
        Some(a) => {
            let i = snap.regions.partition_point(|r| r.end <= a);
            if !snap.regions.get(i).is_some_and(|r| r.contains(a)) {
                return None;
            }
            vec![i]
        }
        None => (0..snap.regions.len()).collect(),
    };
    for i in indices {
        for vma in snap.regions[i].vmas() {
            if skip_reason(vma).is_none() && vma.end > vma.start {
                out.push(ScanRange {
                    start: vma.start,
                    end: vma.end,
                    region: i,
                });
            }
        }
    }
    Some(out)
}

/// Reads one process's memory: its resident pages only.
pub struct ProcessMemory {
    dir: ProcDir,
    vm_readv: bool,
    mem: Option<File>,
    residency: Option<Residency>,
}

impl ProcessMemory {
    /// Prepares to read `dir`'s process. Nothing is read yet.
    pub fn new(dir: ProcDir) -> ProcessMemory {
        let vm_readv = dir.is_live();
        ProcessMemory {
            dir,
            vm_readv,
            mem: None,
            residency: None,
        }
    }

    /// Reads up to `buf.len()` bytes at `addr`, from resident pages only.
    /// Returns how many bytes were read from `addr` on: fewer than asked
    /// when a page in the middle is not resident or cannot be read, 0 when
    /// the first is not or cannot. Errors only for what ends the whole
    /// scan: the process exited, access is refused, or its pagemap cannot
    /// say which pages are resident.
    pub(crate) fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let end = addr.saturating_add(buf.len() as u64);
        let mut n = 0usize;
        while n < buf.len() {
            let at = addr + n as u64;
            let (resident, until) = self.resident(at, end)?;
            if !resident {
                break;
            }
            let want = usize::try_from(until - at).map_or(buf.len() - n, |w| w.min(buf.len() - n));
            let k = self.read_present(at, &mut buf[n..n + want])?;
            n += k;
            if k < want {
                break;
            }
        }
        Ok(n)
    }

    /// Reads `len` bytes at each of `addrs` (in ascending order) into the
    /// consecutive `len`-byte pieces of `out`; says for each whether all
    /// its bytes were read. Resident pages only, as [`ProcessMemory::read`]:
    /// one pagemap look-up over the whole span and one
    /// `process_vm_readv(2)` for all of them (per [`IOV_MAX`]), where one
    /// read each cost a look-up and a read (two system calls) per address:
    /// glibc's chunk headers, one at the start of every anonymous mapping
    /// of a run, were a tenth of a snapshot of a few hundred mappings.
    pub(crate) fn read_each(
        &mut self,
        addrs: &[u64],
        len: usize,
        out: &mut [u8],
    ) -> Result<Vec<bool>> {
        let mut ok = vec![false; addrs.len()];
        let (Some(&last), true) = (addrs.last(), len > 0 && out.len() >= addrs.len() * len) else {
            return Ok(ok);
        };
        let span_end = last.saturating_add(len as u64);
        // The addresses whose bytes are all resident, by index.
        let mut todo = Vec::with_capacity(addrs.len());
        for (k, &a) in addrs.iter().enumerate() {
            let (resident, until) = self.resident(a, span_end)?;
            if resident && until >= a.saturating_add(len as u64) {
                todo.push(k);
            }
        }
        let mut start = 0;
        while self.vm_readv && start < todo.len() {
            let batch = &todo[start..todo.len().min(start + IOV_MAX)];
            let remote: Vec<libc::iovec> = batch
                .iter()
                .map(|&k| libc::iovec {
                    iov_base: addrs[k] as *mut libc::c_void,
                    iov_len: len,
                })
                .collect();
            let local: Vec<libc::iovec> = out
                .chunks_exact_mut(len)
                .enumerate()
                .filter(|(k, _)| batch.binary_search(k).is_ok())
                .map(|(_, piece)| libc::iovec {
                    iov_base: piece.as_mut_ptr().cast(),
                    iov_len: len,
                })
                .collect();
            // SAFETY: each local iovec is a distinct piece of `out`, held
            // mutably here.
            match unsafe { vm_readv_iov(self.dir.pid, &local, &remote) } {
                Ok(n) => {
                    let done = (n / len).min(batch.len());
                    for &k in &batch[..done] {
                        ok[k] = true;
                    }
                    start += done;
                    // A piece that could not be read (unmapped since, a
                    // guard page) ends the transfer: it goes the one-by-one
                    // way below, and the batch resumes after it.
                    if done < batch.len() {
                        let k = batch[done];
                        let piece = &mut out[k * len..(k + 1) * len];
                        ok[k] = matches!(self.read(addrs[k], piece), Ok(r) if r == len);
                        start += 1;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    return Err(Error::ProcessExited { pid: self.dir.pid })
                }
                // EFAULT on the first piece, or no process_vm_readv at all:
                // the one-by-one reads below handle both.
                Err(_) => break,
            }
        }
        for &k in &todo[start..] {
            let piece = &mut out[k * len..(k + 1) * len];
            ok[k] = matches!(self.read(addrs[k], piece), Ok(r) if r == len);
        }
        Ok(ok)
    }

    /// Whether the page holding `addr` is resident in the target, and
    /// where (after `addr`, at most `end`) that answer ends.
    pub(crate) fn resident(&mut self, addr: u64, end: u64) -> Result<(bool, u64)> {
        if self.residency.is_none() {
            let f = self.dir.open_file("pagemap").map_err(|e| match e {
                Error::Io { path, source } if source.kind() == io::ErrorKind::NotFound => {
                    Error::Unsupported {
                        what: format!(
                            "{} (which pages are resident; vmmap reads no other page, since reading it would fault it into the process)",
                            path.display()
                        ),
                        hint: "use a kernel built with CONFIG_PROC_PAGE_MONITOR".into(),
                    }
                }
                e => memory_hint(e),
            })?;
            self.residency = Some(Residency::new(f, crate::collect::page_size()));
        }
        let Some(r) = self.residency.as_mut() else {
            return Ok((false, end));
        };
        let answer = r
            .at(addr, end)
            .map_err(|e| self.dir.error(self.dir.path("pagemap"), e))?;
        // An exited process has no resident pages: say it exited rather
        // than that its memory was skipped.
        if std::mem::take(&mut r.found_nothing) && !self.has_memory() {
            return Err(Error::ProcessExited { pid: self.dir.pid });
        }
        Ok(answer)
    }

    /// Whether the process still has its address space (it is not gone,
    /// nor a zombie).
    fn has_memory(&self) -> bool {
        let Ok(stat) = self.dir.read("stat") else {
            return false;
        };
        let stat = String::from_utf8_lossy(&stat);
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, None | Some("Z" | "X"))
    }

    /// Reads pages known to be resident; as [`ProcessMemory::read`].
    fn read_present(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.vm_readv {
            match vm_readv(self.dir.pid, addr, buf) {
                Ok(n) => return Ok(n),
                Err(e) => match e.raw_os_error() {
                    // Nothing read: the first page, or (if the kernel does
                    // not split a transfer) a later one, cannot be read.
                    // Page by page, to keep what comes before the hole.
                    Some(libc::EFAULT) => return Ok(self.read_pages(addr, buf)),
                    Some(libc::ESRCH) => return Err(Error::ProcessExited { pid: self.dir.pid }),
                    // EPERM (no ptrace access: the mem file gives the same
                    // answer with a better message), ENOSYS, seccomp:
                    // fall back to /proc/PID/mem for good.
                    _ => self.vm_readv = false,
                },
            }
        }
        if self.mem.is_none() {
            self.mem = Some(self.dir.open_file("mem").map_err(memory_hint)?);
        }
        let Some(f) = self.mem.as_ref() else {
            return Ok(0);
        };
        let mut n = 0;
        while n < buf.len() {
            match f.read_at(&mut buf[n..], addr + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EIO: an unreadable page; a read stops short before it.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(_) if !self.dir.alive() => {
                    return Err(Error::ProcessExited { pid: self.dir.pid })
                }
                Err(_) => break,
            }
        }
        Ok(n)
    }
}

impl ProcessMemory {
    /// Reads page by page up to the first page that cannot be read.
    fn read_pages(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        let page = crate::collect::page_size();
        let mut n = 0usize;
        while n < buf.len() {
            let at = addr + n as u64;
            let len = usize::try_from(page - at % page)
                .unwrap_or(buf.len())
                .min(buf.len() - n);
            if n == 0 && len == buf.len() {
                // One page or less: the failed read was exactly this.
                return 0;
            }
            match vm_readv(self.dir.pid, at, &mut buf[n..n + len]) {
                Ok(k) if k > 0 => n += k,
                _ => break,
            }
        }
        n
    }
}

/// Reading memory needs ptrace *attach* access, more than the *read*
/// access smaps needs: Yama's ptrace_scope 1 or 2 can refuse it for a
/// process whose smaps was readable. Says so.
fn memory_hint(e: Error) -> Error {
    match e {
        Error::PermissionDenied { pid, path, hint } => {
            let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let hint = match yama {
                Some(1) => format!("reading memory needs ptrace attach rights, and kernel.yama.ptrace_scope is 1 (only a parent may attach without CAP_SYS_PTRACE): run vmmap as root or with CAP_SYS_PTRACE, or lower the setting (sysctl kernel.yama.ptrace_scope=0); {hint}"),
                Some(2) => format!("reading memory needs ptrace attach rights, and kernel.yama.ptrace_scope is 2 (admin only): run vmmap as root or with CAP_SYS_PTRACE; {hint}"),
                _ => hint,
            };
            Error::PermissionDenied { pid, path, hint }
        }
        e => e,
    }
}

/// The most iovecs one `process_vm_readv(2)` takes (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// `process_vm_readv(2)` of the `remote` pieces into the `local` ones.
///
/// # Safety
/// Every `local` iovec describes a distinct piece of memory the caller
/// may write for the duration of the call.
unsafe fn vm_readv_iov(
    pid: u32,
    local: &[libc::iovec],
    remote: &[libc::iovec],
) -> io::Result<usize> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    let (nl, nr) = (
        libc::c_ulong::try_from(local.len()).unwrap_or(0),
        libc::c_ulong::try_from(remote.len()).unwrap_or(0),
    );
    // SAFETY: per the contract for `local`; `remote` holds only addresses
    // in the other process, which the kernel checks.
    let n = unsafe { libc::process_vm_readv(pid, local.as_ptr(), nl, remote.as_ptr(), nr, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads `pid`'s memory at `addr` into `buf` with one `process_vm_readv`
/// (no ptrace stop, no `/proc/PID/mem` file to open): the count read,
/// which is short where the range runs into memory that cannot be read.
/// The one wrapper of the call, for the scanners here and for attaching.
pub fn vm_readv(pid: u32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, held mutably for the call.
    unsafe { vm_readv_iov(pid, &[local], &[remote]) }
}

/// One piece of memory handed to a consumer.
pub(crate) struct Chunk<'a> {
    /// The range it belongs to.
    pub(crate) range: &'a ScanRange,
    /// Address of `data[0]`.
    pub(crate) address: u64,
    /// The bytes: the overlap carried from the previous chunk of the same
    /// contiguous stretch, then the new bytes.
    pub(crate) data: &'a [u8],
    /// Where the new bytes start in `data` (the overlap's length).
    pub(crate) new_from: usize,
}

/// What a walk read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Bytes read.
    pub read: u64,
    /// Bytes of the ranges that could not be read.
    pub unreadable: u64,
    /// Bytes of the ranges not read because they were not resident in the
    /// target (never touched, not mapped yet, or swapped out): reading them
    /// would have faulted them in.
    pub not_resident: u64,
}

/// Walks `ranges` in chunks of `chunk` bytes with one buffer of
/// `chunk + overlap` bytes. Each chunk after the first of a contiguous
/// stretch starts with the last `overlap` bytes of the one before, so that
/// a pattern up to `overlap + 1` bytes long is seen whole somewhere.
/// `progress` gets the bytes of the ranges done so far. Either may stop the
/// walk with `ControlFlow::Break` (a consumer that has seen enough, a user
/// who cancelled).
pub(crate) fn walk(
    mem: &mut ProcessMemory,
    ranges: &[ScanRange],
    chunk: usize,
    overlap: usize,
    page_size: u64,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
    consume: &mut dyn FnMut(&Chunk<'_>) -> ControlFlow<()>,
) -> Result<ReadStats> {
    let chunk = chunk.max(1);
    let page = page_size.max(1);
    let mut buf = vec![0u8; chunk + overlap];
    let mut stats = ReadStats::default();
    let mut done = 0u64;
    for range in ranges {
        let mut addr = range.start;
        let mut kept = 0usize;
        while addr < range.end {
            let (resident, until) = mem.resident(addr, range.end)?;
            let n = if resident {
                let want = usize::try_from(until - addr).map_or(chunk, |r| r.min(chunk));
                mem.read_present(addr, &mut buf[kept..kept + want])?
            } else {
                0
            };
            if n == 0 {
                // Skipped: what is not in the target's page tables, or else
                // the unreadable page. Either way the stretch ends here.
                let (next, skipped) = if resident {
                    let next = ((addr / page) + 1).saturating_mul(page).min(range.end);
                    (next, &mut stats.unreadable)
                } else {
                    (until, &mut stats.not_resident)
                };
                *skipped += next - addr;
                if progress(done + (next - range.start)).is_break() {
                    return Ok(stats);
                }
                addr = next;
                kept = 0;
                continue;
            }
            stats.read += n as u64;
            let c = Chunk {
                range,
                address: addr - kept as u64,
                data: &buf[..kept + n],
                new_from: kept,
            };
            if consume(&c).is_break() {
                return Ok(stats);
            }
            addr += n as u64;
            if progress(done + (addr - range.start)).is_break() {
                return Ok(stats);
            }
            let total = kept + n;
            let keep = overlap.min(total);
            buf.copy_within(total - keep..total, 0);
            kept = keep;
        }
        done += range.end - range.start;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three pages of this process, the middle one PROT_NONE, with text
    /// in the first and last; unmapped on drop.
    struct Pages(*mut u8, usize);

    impl Pages {
        fn new() -> Pages {
            let page = crate::collect::page_size() as usize;
            // SAFETY: an anonymous private mapping at an address the kernel
            // picks; no existing memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    3 * page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            let p = p.cast::<u8>();
            // SAFETY: the mapping is 3 pages long and writable; the writes
            // stay inside its first and last page.
            unsafe {
                std::ptr::copy_nonoverlapping(b"first-page".as_ptr(), p.add(page - 10), 10);
                std::ptr::copy_nonoverlapping(b"last".as_ptr(), p.add(2 * page), 4);
                assert_eq!(libc::mprotect(p.add(page).cast(), page, libc::PROT_NONE), 0);
            }
            Pages(p, page)
        }
    }

    impl Drop for Pages {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping made in `new`.
            unsafe { libc::munmap(self.0.cast(), 3 * self.1) };
        }
    }

    #[test]
    fn a_process_whose_memory_is_gone_has_exited() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie, with /proc/PID but no address space.
        for _ in 0..400 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let dir = ProcDir::open(std::path::Path::new("/proc"), pid).unwrap();
        let mut mem = ProcessMemory::new(dir);
        let mut buf = [0u8; 64];
        let r = mem.read(0x40_0000, &mut buf);
        child.wait().unwrap();
        assert!(matches!(r, Err(Error::ProcessExited { .. })), "{r:?}");
    }

    #[test]
    fn walk_skips_an_unreadable_page_and_carries_the_overlap() {
        let pages = Pages::new();
        let (start, page) = (pages.0 as u64, pages.1 as u64);
        let dir = ProcDir::open(std::path::Path::new("/proc"), std::process::id()).unwrap();
        let mut mem = ProcessMemory::new(dir);
        let range = ScanRange {
            start,
            end: start + 3 * page,
            region: 7,
        };
        let mut seen = Vec::new();
        let mut progress = Vec::new();
        let stats = walk(
            &mut mem,
            &[range],
            1024,
            16,
            page,
            &mut |d| {
                progress.push(d);
                ControlFlow::Continue(())
            },
            &mut |c| {
                seen.push((c.address, c.data.len(), c.new_from, c.data.to_vec()));
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert_eq!(stats.read, 2 * page);
        // The PROT_NONE page is unreadable, and pagemap may already say it
        // is not present: either way it is skipped and counted once.
        assert_eq!(stats.unreadable + stats.not_resident, page);
        assert_eq!(progress.last(), Some(&(3 * page)));
        // Within the first page, each chunk after the first starts with
        // the 16 bytes before it.
        assert_eq!(seen[0].0, start);
        assert_eq!(seen[0].2, 0);
        assert_eq!(seen[1].0, start + 1024 - 16);
        assert_eq!(seen[1].2, 16);
        // The text at the end of the first page arrives whole.
        let last_of_first = seen
            .iter()
            .rfind(|s| s.0 < start + page)
            .expect("chunks of the first page");
        assert!(last_of_first.3.ends_with(b"first-page"));
        // After the hole, a new stretch: no overlap carried across it.
        let after = seen
            .iter()
            .find(|s| s.0 >= start + page)
            .expect("chunks of the last page");
        assert_eq!((after.0, after.2), (start + 2 * page, 0));
        assert!(after.3.starts_with(b"last"));
    }

    #[test]
    fn scan_ranges_skip_unreadable_and_kernel_pages() {
        use crate::proc::smaps::Mapping;
        let m = |start: u64, perms: &[u8; 4], path: &str, flags: &str| {
            let mut r = Region::from_mapping(Mapping {
                start,
                end: start + 0x1000,
                perms: *perms,
                path: path.into(),
                inode: u64::from(path.starts_with('/')),
                vm_flags: flags.into(),
                ..Mapping::default()
            });
            r.fields.set(crate::proc::smaps::Field::Rss, 4096);
            r
        };
        let snap = Snapshot::from_regions(
            1,
            0,
            vec![
                m(0x1000, b"r--p", "/lib/x.so", "rd mr"),
                m(0x3000, b"---p", "", ""),
                m(0x5000, b"rw-s", "/dev/mem", "rd wr sh io pf"),
                m(0x7000, b"r--p", "[vvar]", "rd"),
                m(0x9000, b"rw-p", "", "rd wr"),
            ],
        );
        let r = scan_ranges(&snap, None).unwrap();
        assert_eq!(
            r.iter().map(|r| r.start).collect::<Vec<_>>(),
            vec![0x1000, 0x9000]
        );
        assert_eq!(scan_ranges(&snap, Some(0x3010)), Some(vec![]));
        assert_eq!(scan_ranges(&snap, Some(0x2000)), None);
        assert_eq!(scan_ranges(&snap, Some(0x9fff)).unwrap()[0].region, 4);
    }
}
