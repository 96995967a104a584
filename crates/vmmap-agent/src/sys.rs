//! Raw system calls and clocks. The agent never calls the libc wrappers it
//! interposes (`mmap`, `munmap`...) for its own needs: those would come back
//! into its hooks.

use core::ffi::c_void;

/// The calling thread's id, from the kernel (glibc's cached copy is not
/// reachable without TLS access).
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The process id from the kernel, not glibc's cache: after `vfork` the
/// child shares the parent's memory and the cache would lie.
pub fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}

/// Anonymous private read-write memory straight from the kernel.
pub fn map_anon(len: usize) -> *mut u8 {
    map_anon_with(len, 0)
}

/// [`map_anon`] with more mmap flags (`MAP_NORESERVE` for a reservation);
/// named as the agent's, null when the kernel refuses.
pub fn map_anon_with(len: usize, flags: i32) -> *mut u8 {
    // SAFETY: an anonymous mapping at a kernel-chosen address touches no
    // existing memory.
    let p = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1i32,
            0usize,
        )
    };
    if p < 0 {
        core::ptr::null_mut()
    } else {
        name_agent_memory(p as usize, len);
        p as *mut u8
    }
}

/// Names a mapping `[anon:vmmap-agent]` (Linux 5.17+; ignored elsewhere)
/// so that vmmap can tell the agent's own memory from the program's.
pub fn name_agent_memory(addr: usize, len: usize) {
    const PR_SET_VMA: i32 = 0x5356_4d41;
    const PR_SET_VMA_ANON_NAME: usize = 0;
    // SAFETY: the name is a static C string; the kernel copies it.
    unsafe {
        libc::prctl(
            PR_SET_VMA,
            PR_SET_VMA_ANON_NAME,
            addr,
            len,
            c"vmmap-agent".as_ptr(),
        );
    }
}

/// The time-stamp counter, shifted to the trace's tick unit. `rdtsc` costs
/// a few nanoseconds where `clock_gettime` costs twenty, on every event;
/// the writer records (tick, nanosecond) pairs to convert later.
#[inline(always)]
pub fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    (unsafe { core::arch::x86_64::_rdtsc() }) >> vmmap_wire::TICK_SHIFT
}

/// CLOCK_MONOTONIC or CLOCK_REALTIME in nanoseconds.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_us(us: u64) {
    let ts = libc::timespec {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_nsec: ((us % 1_000_000) * 1000) as libc::c_long,
    };
    // SAFETY: ts is valid; a null remainder is allowed.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: ts is valid; a null remainder is allowed.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

/// Sleeps until `word` no longer holds `seen` (after [`wake`]) or `ms`
/// milliseconds have passed, whichever comes first.
pub fn wait_on(word: &core::sync::atomic::AtomicU32, seen: u32, ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: futex on a live, aligned 32-bit word of this process
    // (private); ts is valid for the call. Any error (EAGAIN: the word
    // changed already, EINTR) only ends the wait early.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            &ts as *const libc::timespec,
        )
    };
}

/// Ends a [`wait_on`] of `word` (the caller changed it first).
pub fn wake(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: futex wake on a live, aligned 32-bit word; no pointers are
    // read besides it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// `membarrier(2)` commands (linux/membarrier.h; the libc crate has the
/// system call's number but not these).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
/// See [`MEMBARRIER_CMD_PRIVATE_EXPEDITED`].
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether a seccomp filter may stand between the calling thread and a
/// system call the program never makes (`Seccomp:` in
/// `/proc/thread-self/status` is not 0, or cannot be read): a filter may
/// kill the process for `membarrier` rather than refuse it, so the agent
/// does not try. Errno is kept; nothing is allocated, and the file is
/// read 256 bytes at a time (a hook may ask, on a thread's small stack).
pub fn seccomp_filtered() -> bool {
    let saved = crate::errno();
    let path = b"/proc/thread-self/status\0";
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    let mut field = SeccompField::default();
    if fd >= 0 {
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reads into `buf`.
            let n = unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) };
            if n <= 0 || field.feed(&buf[..n as usize]) {
                break;
            }
        }
        // SAFETY: our own descriptor.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
    crate::set_errno(saved);
    field.mode() != Some(0)
}

/// The `Seccomp:` field of a status file, read piece by piece.
#[derive(Default)]
struct SeccompField {
    /// Bytes of [`SeccompField::KEY`] matched so far.
    matched: usize,
    /// The field's digits so far, once the key has matched.
    value: Option<u32>,
    /// The field has ended.
    done: bool,
}

impl SeccompField {
    const KEY: &'static [u8] = b"\nSeccomp:";

    /// Takes the next bytes of the file; true once the field is read.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.done {
                break;
            }
            if self.matched < Self::KEY.len() {
                self.matched = if b == Self::KEY[self.matched] {
                    self.matched + 1
                } else {
                    usize::from(b == b'\n')
                };
            } else if b.is_ascii_digit() {
                let v = self.value.unwrap_or(0);
                self.value = Some(v.saturating_mul(10).saturating_add(u32::from(b - b'0')));
            } else if self.value.is_some() || !(b == b' ' || b == b'\t') {
                self.done = true;
            }
        }
        self.done
    }

    /// The mode, if the field was there and complete.
    fn mode(&self) -> Option<u32> {
        self.done.then_some(self.value).flatten()
    }
}

/// Registers the process for [`heavy_barrier`] (Linux 4.14); false if the
/// kernel (or a seccomp filter) refuses.
pub fn register_heavy_barrier() -> bool {
    // SAFETY: membarrier takes no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        ) == 0
    }
}

/// A full memory barrier in every running thread of the process, so that
/// the other side of a Dekker-style handshake needs only a compiler
/// fence on its (frequent) path: the lane bias in [`crate::thread`].
/// False if the kernel refused (then nothing is ordered).
pub fn heavy_barrier() -> bool {
    // SAFETY: membarrier takes no pointers.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 }
}

/// Copies `out.len()` bytes at `at` in this process's memory, through
/// the kernel (`process_vm_readv`): a bad address fails instead of
/// faulting. Whether all were read.
pub fn read_own(at: u64, out: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: at as *mut libc::c_void,
        iov_len: out.len(),
    };
    let saved = crate::errno();
    // SAFETY: one local buffer of ours, written by the kernel; the remote
    // range is only read, and checked by the kernel.
    let n = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    crate::set_errno(saved);
    n == out.len() as isize
}

/// Whether thread `tid` of this process still exists.
pub fn thread_alive(tid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Writes all of `buf` to `fd`, retrying on interruption and short writes.
pub fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// Writes several buffers with one `writev` (one write keeps them together
/// in an O_APPEND file); finishes a short write with plain writes.
pub fn write_parts(fd: i32, parts: &[&[u8]]) -> bool {
    let iov: Vec<libc::iovec> = parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut c_void,
            iov_len: p.len(),
        })
        .collect();
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let n = loop {
        // SAFETY: every iovec points into a live slice.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as i32) };
        if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break n;
        }
    };
    if n < 0 {
        return false;
    }
    let mut done = n as usize;
    if done == total {
        return true;
    }
    for p in parts {
        if done >= p.len() {
            done -= p.len();
            continue;
        }
        if !write_all(fd, &p[done..]) {
            return false;
        }
        done = 0;
    }
    true
}

/// A tiny spin lock for the slow paths (buffer pool, block registry). It
/// never sleeps in the kernel, so it is safe in code that signal handlers
/// may interrupt as long as a handler never takes it, which the reentrancy
/// guard ensures.
pub struct SpinLock(core::sync::atomic::AtomicBool);

impl SpinLock {
    /// An unlocked lock.
    pub const fn new() -> SpinLock {
        SpinLock(core::sync::atomic::AtomicBool::new(false))
    }

    /// Takes the lock, yielding the CPU while another thread holds it.
    pub fn lock(&self) -> SpinGuard<'_> {
        use core::sync::atomic::Ordering::{Acquire, Relaxed};
        let mut spins = 0u32;
        while self
            .0
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            spins += 1;
            if spins > 64 {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            } else {
                core::hint::spin_loop();
            }
        }
        SpinGuard(self)
    }

    /// Forgets any holder: the child of `fork` has only the forking thread,
    /// and a lock another thread held stays held forever otherwise.
    pub fn force_unlock(&self) {
        self.0.store(false, core::sync::atomic::Ordering::Release);
    }
}

/// Releases a [`SpinLock`] on drop.
pub struct SpinGuard<'a>(&'a SpinLock);

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        (self.0)
            .0
            .store(false, core::sync::atomic::Ordering::Release);
    }
}

/// Held by every `dl_iterate_phdr` of the agent's, and by `fork` (the
/// handlers below) across the fork. `dl_iterate_phdr` holds the loader's
/// `dl_load_write_lock`, which glibc (2.36) does not reset in a child:
/// a fork while the writer was listing modules left the child holding
/// it with no thread to let it go, and the child's next `dlclose`
/// waited for ever (`su`'s child in `pam_end`).
static PHDR_LOCK: SpinLock = SpinLock::new();

/// `dl_iterate_phdr`, never across a `fork`.
///
/// # Safety
/// As `dl_iterate_phdr`: `cb` may be called with `data` for each module.
pub unsafe fn iterate_phdr(
    cb: Option<unsafe extern "C" fn(*mut libc::dl_phdr_info, usize, *mut core::ffi::c_void) -> i32>,
    data: *mut core::ffi::c_void,
) -> i32 {
    let _g = PHDR_LOCK.lock();
    // SAFETY: per the contract.
    unsafe { libc::dl_iterate_phdr(cb, data) }
}

/// Before `fork`: no `dl_iterate_phdr` of the agent's is under way, and
/// none starts until the fork is done.
pub extern "C" fn phdr_before_fork() {
    core::mem::forget(PHDR_LOCK.lock());
}

/// After `fork`, in the parent and in the child.
pub extern "C" fn phdr_after_fork() {
    PHDR_LOCK.force_unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seccomp_mode_is_read_from_a_status_file() {
        let mode = |pieces: &[&[u8]]| {
            let mut f = SeccompField::default();
            for p in pieces {
                if f.feed(p) {
                    break;
                }
            }
            f.mode()
        };
        let status: &[u8] = b"Name:\tx\nNoNewPrivs:\t0\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        assert_eq!(mode(&[status]), Some(2));
        // Split anywhere, one byte at a time included.
        for cut in 0..status.len() {
            assert_eq!(
                mode(&[&status[..cut], &status[cut..]]),
                Some(2),
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = status.chunks(1).collect();
        assert_eq!(mode(&bytes), Some(2));
        assert_eq!(mode(&[b"Name:\tx\nSeccomp:\t0\n"]), Some(0));
        assert_eq!(mode(&[b"Name:\tx\nSeccomp_filters:\t0\n"]), None);
        assert_eq!(mode(&[b"Name:\tx\nSeccomp:\t"]), None);
        assert_eq!(mode(&[b"Name:\tSeccomp:\t0\n"]), None);
    }
}
