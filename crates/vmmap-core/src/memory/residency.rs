//! Which pages of another process are resident, from its
//! `/proc/PID/pagemap`: the reader reads only those, because reading any
//! other page changes the target (see [`super::reader`]).
//!
//! The `PAGEMAP_SCAN` ioctl (Linux 6.7+) returns the resident stretches of
//! a range in one call; on older kernels the pagemap entries are read in
//! bulk, one `pread` per [`ENTRIES`] pages. Either way the answer covers a
//! window of address space that later questions are answered from, so a
//! scan costs one system call per window, not one per page.
//!
//! Hand-written: the `libc` crate has no `PAGEMAP_SCAN` definitions, and
//! the crates that parse pagemap read it an entry at a time.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Pagemap entries read per `pread` when `PAGEMAP_SCAN` is missing (64 KiB
/// of entries, 32 MiB of address space with 4 KiB pages).
pub(crate) const ENTRIES: u64 = 8192;
/// The most address space one `PAGEMAP_SCAN` call covers. An answer is
/// used while that much is read, so it stays fresh (a page reclaimed
/// between the look-up and the read would be faulted back in), and a walk
/// over a huge sparse mapping still reports progress.
const SCAN_WINDOW: u64 = 64 << 20;
/// Resident stretches one `PAGEMAP_SCAN` call can return; when they run
/// out the kernel stops early and says where (`walk_end`).
const SCAN_REGIONS: usize = 512;

/// `struct pm_scan_arg` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `PAGEMAP_SCAN`: `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | (0x66 << 8) | 16;
/// `PAGE_IS_PRESENT`: the page is in the page tables (not swapped out, not
/// merely in the page cache).
const PAGE_IS_PRESENT: u64 = 1 << 3;
/// Bits of a pagemap entry: present in RAM, swapped out.
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAP: u64 = 1 << 62;

/// Answers "is this page resident, and up to where" from a pagemap file.
pub(crate) struct Residency {
    pagemap: File,
    page: u64,
    /// Whether `PAGEMAP_SCAN` works on this kernel (None: not tried yet).
    scan: Option<bool>,
    /// The window last looked up: `[lo, hi)`.
    lo: u64,
    hi: u64,
    /// The resident stretches in it, in order, merged.
    present: Vec<(u64, u64)>,
    /// Set when a look-up found nothing resident in its whole window: what
    /// a process whose memory is gone (it exited) also looks like, so the
    /// caller checks for that.
    pub(crate) found_nothing: bool,
    buf: Vec<u8>,
}

impl Residency {
    /// Looks up pages of `page` bytes in `pagemap` (an open
    /// `/proc/PID/pagemap`).
    pub(crate) fn new(pagemap: File, page: u64) -> Residency {
        Residency {
            pagemap,
            page: page.max(1),
            scan: None,
            lo: 0,
            hi: 0,
            present: Vec::new(),
            found_nothing: false,
            buf: Vec::new(),
        }
    }

    /// Whether the page holding `addr` is resident, and the address (after
    /// `addr`, at most `end`) where that stops being so or the answer ends.
    pub(crate) fn at(&mut self, addr: u64, end: u64) -> io::Result<(bool, u64)> {
        if !(self.lo <= addr && addr < self.hi) {
            self.load(addr, end)?;
            self.found_nothing = self.present.is_empty();
        }
        let end = end.min(self.hi);
        let i = self.present.partition_point(|s| s.1 <= addr);
        Ok(match self.present.get(i) {
            Some(&(s, e)) if s <= addr => (true, e.min(end)),
            Some(&(s, _)) => (false, s.min(end)),
            None => (false, end),
        })
    }

    /// Looks up the window from `addr`'s page towards `end`.
    fn load(&mut self, addr: u64, end: u64) -> io::Result<()> {
        let page = self.page;
        let lo = addr / page * page;
        let end = end
            .max(addr.saturating_add(1))
            .div_ceil(page)
            .saturating_mul(page);
        self.present.clear();
        (self.lo, self.hi) = (lo, lo);
        if self.scan != Some(false) {
            match self.scan_ioctl(lo, end.min(lo.saturating_add(SCAN_WINDOW))) {
                Ok(hi) => {
                    self.scan = Some(true);
                    self.hi = hi;
                    return Ok(());
                }
                // A kernel without the ioctl (before 6.7) or that does not
                // take this argument: read the entries instead, from now on.
                Err(_) if self.scan.is_none() => {
                    self.scan = Some(false);
                    self.present.clear();
                }
                Err(e) => return Err(e),
            }
        }
        self.read_entries(lo, end.min(lo.saturating_add(ENTRIES * page)))
    }

    /// `PAGEMAP_SCAN` over `[lo, end)`: the present stretches; returns where
    /// the kernel stopped (at `end` unless the stretches ran out).
    fn scan_ioctl(&mut self, lo: u64, end: u64) -> io::Result<u64> {
        let mut regions = [PageRegion::default(); SCAN_REGIONS];
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            start: lo,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: SCAN_REGIONS as u64,
            category_mask: PAGE_IS_PRESENT,
            return_mask: PAGE_IS_PRESENT,
            ..PmScanArg::default()
        };
        // SAFETY: `arg` is a valid `pm_scan_arg` whose `vec` points at
        // `regions`, writable for `vec_len` entries, both alive for the
        // call; the ioctl only reads the target's page tables (no
        // write-protect flag is set).
        let n = unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0).min(SCAN_REGIONS);
        for r in &regions[..n] {
            self.push(r.start, r.end);
        }
        Ok(arg
            .walk_end
            .clamp(lo.saturating_add(self.page).min(end), end))
    }

    /// Reads the pagemap entries of `[lo, end)` in one `pread`.
    fn read_entries(&mut self, lo: u64, end: u64) -> io::Result<()> {
        let page = self.page;
        let n = usize::try_from((end - lo) / page).unwrap_or(1).max(1);
        self.buf.resize(8 * n, 0);
        let mut got = 0;
        while got < self.buf.len() {
            match self
                .pagemap
                .read_at(&mut self.buf[got..], lo / page * 8 + got as u64)
            {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let entries = got / 8;
        if entries == 0 {
            // The end of the file, below the top of the address space: the
            // process's memory is gone.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        for i in 0..entries {
            let e = u64::from_le_bytes(self.buf[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
            if e & PM_PRESENT != 0 && e & PM_SWAP == 0 {
                let a = lo + i as u64 * page;
                self.push(a, a + page);
            }
        }
        self.hi = lo + entries as u64 * page;
        Ok(())
    }

    fn push(&mut self, start: u64, end: u64) {
        match self.present.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.present.push((start, end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page of `[start, end)` whose state `r` reports as resident.
    fn resident_pages(r: &mut Residency, start: u64, end: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut a = start;
        while a < end {
            let (yes, until) = r.at(a, end).unwrap();
            assert!(until > a && until <= end);
            if yes {
                out.extend(
                    (a..until)
                        .step_by(r.page as usize)
                        .map(|p| (p - start) / r.page),
                );
            }
            a = until;
        }
        out
    }

    #[test]
    fn both_ways_see_exactly_the_touched_pages() {
        let page = crate::collect::page_size();
        let n = 64u64;
        // SAFETY: a private anonymous mapping at an address the kernel
        // picks; nothing existing is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (n * page) as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let touched = [0u64, 3, 4, 5, 40, 63];
        for &i in &touched {
            // SAFETY: inside the mapping, which is writable.
            unsafe { *p.cast::<u8>().add((i * page) as usize) = 1 };
        }
        let start = p as u64;
        let open = || File::open("/proc/self/pagemap").unwrap();
        let mut scan = Residency::new(open(), page);
        let got = resident_pages(&mut scan, start, start + n * page);
        let mut bulk = Residency::new(open(), page);
        bulk.scan = Some(false);
        let got_bulk = resident_pages(&mut bulk, start, start + n * page);
        // A short window: the answer is given in pieces, the same.
        let mut small = Residency::new(open(), page);
        small.scan = Some(false);
        let mut got_small = Vec::new();
        for k in (0..n).step_by(7) {
            let a = start + k * page;
            let e = (a + 7 * page).min(start + n * page);
            got_small.extend(resident_pages(&mut small, a, e).into_iter().map(|i| i + k));
        }
        // SAFETY: unmaps exactly the mapping made above.
        unsafe { libc::munmap(p, (n * page) as usize) };
        assert_eq!(got, touched);
        assert_eq!(got_bulk, touched);
        assert_eq!(got_small, touched);
        // Linux 6.7 and later have PAGEMAP_SCAN, and it was used.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|x| x.parse::<u32>().unwrap_or(0));
        let version = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        assert_eq!(scan.scan, Some(version >= (6, 7)), "kernel {release}");
    }

    #[test]
    fn the_ioctl_number_is_the_kernels() {
        // _IOWR('f', 16, struct pm_scan_arg) with the 96-byte struct.
        assert_eq!(std::mem::size_of::<PmScanArg>(), 96);
        assert_eq!(PAGEMAP_SCAN, 0xc060_6610);
    }
}
