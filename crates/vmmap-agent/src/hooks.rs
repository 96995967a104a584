//! The interposed functions.
//!
//! Allocation calls reach the program's own allocator ([`crate::next`]);
//! everything else goes through `dlsym(RTLD_NEXT)`, resolved on first use. Each hook takes its
//! timestamp where the operation takes effect for other threads: before the
//! call for `free` and `realloc` (the old block may be reused at once),
//! after it for allocations.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::Ordering::*;

use libc::{off_t, pthread_attr_t, pthread_t, size_t};
use vmmap_wire::*;

use crate::record::Caller;
use crate::{enter, heap, leave, next, record, sys, writer, Thread};

/// Allocations at least this large probably made a new mapping inside
/// glibc (its mmap threshold starts at 128 KiB): look at the maps soon.
const LARGE: usize = 64 * 1024;

macro_rules! real {
    ($slot:ident, $name:expr, $ty:ty) => {{
        static $slot: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
        let mut f = $slot.load(core::sync::atomic::Ordering::Relaxed);
        if f == 0 {
            // SAFETY: dlsym with a NUL-terminated name.
            f = unsafe {
                libc::dlsym(
                    libc::RTLD_NEXT,
                    concat!($name, "\0").as_ptr() as *const core::ffi::c_char,
                )
            } as usize;
            $slot.store(f, core::sync::atomic::Ordering::Relaxed);
        }
        if f == 0 {
            None
        } else {
            // SAFETY: the symbol has this C signature.
            Some(unsafe { core::mem::transmute::<usize, $ty>(f) })
        }
    }};
}

#[inline(always)]
fn large(size: usize) {
    if size >= LARGE {
        writer::MAPS_DIRTY.store(true, Relaxed);
    }
}

// malloc, calloc and realloc are entered through a naked trampoline that
// adds, as the next arguments, its caller's return address, stack pointer
// and rbp as they are on entry: the stack walk starts in the caller
// instead of going through the hook's own two frames, a tenth of the
// cost of tracing a typical allocation. A jump leaves everything else as
// the caller set it, and the hook returns to the caller directly.

/// # Safety
/// As C `malloc`.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn malloc(size: size_t) -> *mut c_void {
    core::arch::naked_asm!(
        "mov rsi, [rsp]",
        "lea rdx, [rsp + 8]",
        "mov rcx, rbp",
        "jmp {}",
        sym malloc_from,
    )
}

unsafe extern "C" fn malloc_from(size: size_t, ra: u64, sp: u64, bp: u64) -> *mut c_void {
    let b = enter();
    if b.is_none() && crate::agent_own() {
        let p = heap::malloc(size);
        if !p.is_null() {
            return p;
        }
    }
    // SAFETY: forwarding.
    let p = unsafe { next::malloc()(size) };
    if let Some(b) = b {
        if !p.is_null() {
            let at = Caller { ra, sp, bp };
            record::alloc(
                b,
                EventKind::Malloc,
                sys::ticks(),
                p as u64,
                size as u64,
                0,
                Some(at),
            );
            large(size);
        }
        leave(b);
    }
    p
}

/// # Safety
/// As C `calloc`.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn calloc(n: size_t, size: size_t) -> *mut c_void {
    core::arch::naked_asm!(
        "mov rdx, [rsp]",
        "lea rcx, [rsp + 8]",
        "mov r8, rbp",
        "jmp {}",
        sym calloc_from,
    )
}

unsafe extern "C" fn calloc_from(
    n: size_t,
    size: size_t,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    let b = enter();
    if b.is_none() && crate::agent_own() {
        let p = heap::calloc(n, size);
        if !p.is_null() {
            return p;
        }
    }
    // SAFETY: forwarding.
    let p = unsafe { next::calloc()(n, size) };
    if let Some(b) = b {
        if !p.is_null() {
            let total = n.wrapping_mul(size);
            let at = Caller { ra, sp, bp };
            record::alloc(
                b,
                EventKind::Calloc,
                sys::ticks(),
                p as u64,
                total as u64,
                0,
                Some(at),
            );
            large(total);
        }
        leave(b);
    }
    p
}

/// # Safety
/// As C `realloc`.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn realloc(old: *mut c_void, size: size_t) -> *mut c_void {
    core::arch::naked_asm!(
        "mov rdx, [rsp]",
        "lea rcx, [rsp + 8]",
        "mov r8, rbp",
        "jmp {}",
        sym realloc_from,
    )
}

unsafe extern "C" fn realloc_from(
    old: *mut c_void,
    size: size_t,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    // SAFETY: realloc's contract, passed on.
    unsafe { realloc_at(old, size, Some(Caller { ra, sp, bp })) }
}

/// realloc, recorded as called from `at` (else from the hook's caller).
///
/// # Safety
/// As C `realloc`.
unsafe fn realloc_at(old: *mut c_void, size: size_t, at: Option<Caller>) -> *mut c_void {
    if next::is_boot(old) {
        // A block handed out while the allocator was being resolved: it
        // moves to the allocator, untraced like its allocation.
        // SAFETY: old is a start-up block.
        return unsafe { next::realloc_boot(old, size) };
    }
    if heap::contains(old) {
        // The agent's own block (possibly glibc's, made for the agent:
        // setenv's environment array): it stays in the agent's heap,
        // unrecorded. A full heap leaves it where it is (null, as any
        // failed realloc).
        // SAFETY: a live private block.
        return unsafe { heap::realloc(old, size) };
    }
    let b = enter();
    if b.is_none() && old.is_null() && crate::agent_own() {
        let p = heap::malloc(size);
        if !p.is_null() {
            return p;
        }
    }
    let tick = sys::ticks();
    // SAFETY: forwarding.
    let p = unsafe { next::realloc()(old, size) };
    if let Some(b) = b {
        // Failure leaves the old block alone: nothing happened. realloc(p, 0)
        // frees p and returns null: recorded with new = 0.
        if !p.is_null() || (size == 0 && !old.is_null()) {
            record::realloc(b, tick, old as u64, p as u64, size as u64, at);
            large(size);
        }
        leave(b);
    }
    p
}

/// # Safety
/// As C `reallocarray`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(old: *mut c_void, n: size_t, size: size_t) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        crate::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    // SAFETY: realloc's contract.
    unsafe { realloc_at(old, total, None) }
}

/// # Safety
/// As C `free`.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() || next::is_boot(p) {
        return;
    }
    if heap::contains(p) {
        // SAFETY: a live private block.
        unsafe { heap::free(p) };
        return;
    }
    if let Some(b) = enter() {
        record::free(b, p as u64);
        leave(b);
    }
    // SAFETY: forwarding.
    unsafe { next::free()(p) }
}

/// # Safety
/// As C `malloc_usable_size`. A block of the agent's own heap (glibc may
/// hand one to the program: `setenv`'s environment array, grown from the
/// one made while the agent started) is measured there; any other goes
/// to the next definition, as without the agent.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> size_t {
    type F = unsafe extern "C" fn(*mut c_void) -> size_t;
    if p.is_null() {
        return 0;
    }
    if heap::contains(p) {
        // SAFETY: a live private block.
        return unsafe { heap::usable_size(p) };
    }
    if next::is_boot(p) {
        // SAFETY: a start-up block, its size stored before it.
        return unsafe { next::boot_size(p) };
    }
    match real!(MALLOC_USABLE_SIZE, "malloc_usable_size", F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(p) },
        None => 0,
    }
}

/// # Safety
/// As C `cfree` (an old alias of free).
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: same contract.
    unsafe { free(p) }
}

fn aligned(align: usize, size: usize, f: impl FnOnce() -> *mut c_void) -> *mut c_void {
    let b = enter();
    if b.is_none() && crate::agent_own() {
        let p = heap::memalign(align.max(16).next_power_of_two(), size);
        if !p.is_null() {
            return p;
        }
    }
    let p = f();
    if let Some(b) = b {
        if !p.is_null() {
            record::alloc(
                b,
                EventKind::Memalign,
                sys::ticks(),
                p as u64,
                size as u64,
                align as u64,
                None,
            );
            large(size);
        }
        leave(b);
    }
    p
}

/// # Safety
/// As C `memalign`.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    // SAFETY: forwarding.
    aligned(align, size, || unsafe { next::memalign()(align, size) })
}

/// # Safety
/// As C `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    if !align.is_power_of_two() {
        crate::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    // SAFETY: forwarding.
    aligned(align, size, || unsafe {
        next::aligned_alloc()(align, size)
    })
}

/// # Safety
/// As C `posix_memalign`.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let saved = crate::errno();
    // SAFETY: forwarding.
    let p = aligned(align, size, || unsafe { next::memalign()(align, size) });
    if p.is_null() {
        crate::set_errno(saved);
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer.
    unsafe { *out = p };
    0
}

/// # Safety
/// As C `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: size_t) -> *mut c_void {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: forwarding.
    aligned(page, size, || unsafe { next::valloc()(size) })
}

/// # Safety
/// As C `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: forwarding.
    aligned(page, size, || unsafe { next::pvalloc()(size) })
}

/// The end of every hook of a mapping call (mmap, munmap, mremap,
/// mprotect, madvise, brk, sbrk): the event is recorded when the thread is
/// traced (`b`, from [`enter`]) and the call succeeded (`ok`), and the
/// hook is left either way.
fn mapped(b: Option<&mut Thread>, ok: bool, tag: EventKind, a: u64, rest: &[u64]) {
    if let Some(b) = b {
        if ok {
            record::mapping(b, tag, a, rest);
        }
        leave(b);
    }
}

type MmapFn = unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;

/// # Safety
/// As C `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    let b = enter();
    let r = match real!(MMAP, "mmap", MmapFn) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(addr, len, prot, flags, fd, off) },
        // SAFETY: the raw system call has the same contract.
        None => unsafe {
            libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) as *mut c_void
        },
    };
    mapped(
        b,
        r != libc::MAP_FAILED,
        EventKind::Mmap,
        r as u64,
        &[
            len as u64,
            prot as u64,
            flags as u32 as u64,
            zigzag(i64::from(fd)),
            off as u64,
        ],
    );
    r
}

/// # Safety
/// As C `mmap64` (the same call on 64-bit).
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: same contract.
    unsafe { mmap(addr, len, prot, flags, fd, off) }
}

/// # Safety
/// As C `munmap`.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    type F = unsafe extern "C" fn(*mut c_void, size_t) -> c_int;
    let b = enter();
    let r = match real!(MUNMAP, "munmap", F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(addr, len) },
        // SAFETY: same contract.
        None => unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int },
    };
    mapped(b, r == 0, EventKind::Munmap, addr as u64, &[len as u64]);
    r
}

/// # Safety
/// As C `mremap`. Declared with five fixed arguments: on x86_64 a variadic
/// caller passes the optional new address in the same register.
#[no_mangle]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: size_t,
    new_len: size_t,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    type F = unsafe extern "C" fn(*mut c_void, size_t, size_t, c_int, *mut c_void) -> *mut c_void;
    let b = enter();
    let r = match real!(MREMAP, "mremap", F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(old, old_len, new_len, flags, new_addr) },
        // SAFETY: same contract.
        None => unsafe {
            libc::syscall(libc::SYS_mremap, old, old_len, new_len, flags, new_addr) as *mut c_void
        },
    };
    mapped(
        b,
        r != libc::MAP_FAILED,
        EventKind::Mremap,
        old as u64,
        &[
            old_len as u64,
            r as u64,
            new_len as u64,
            flags as u32 as u64,
        ],
    );
    r
}

type AddrLenIntFn = unsafe extern "C" fn(*mut c_void, size_t, c_int) -> c_int;

/// `mprotect` and `madvise`: (address, length, one int), 0 on success,
/// recorded with the int.
///
/// # Safety
/// As the C call `real` (or system call `sysno`) is.
unsafe fn addr_len_int(
    real: Option<AddrLenIntFn>,
    sysno: libc::c_long,
    tag: EventKind,
    addr: *mut c_void,
    len: size_t,
    v: c_int,
) -> c_int {
    let b = enter();
    let r = match real {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(addr, len, v) },
        // SAFETY: the raw system call has the same contract.
        None => unsafe { libc::syscall(sysno, addr, len, v) as c_int },
    };
    mapped(b, r == 0, tag, addr as u64, &[len as u64, v as u32 as u64]);
    r
}

/// Defines an exported hook of an (address, length, int) call over
/// [`addr_len_int`]: its system call number and record kind.
macro_rules! addr_len_int_hook {
    ($(#[$doc:meta])* $name:ident, $slot:ident, $sysno:ident, $kind:ident) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name(addr: *mut c_void, len: size_t, v: c_int) -> c_int {
            let real = real!($slot, stringify!($name), AddrLenIntFn);
            // SAFETY: the caller's contract is the call's.
            unsafe { addr_len_int(real, libc::$sysno, EventKind::$kind, addr, len, v) }
        }
    };
}

addr_len_int_hook!(
    /// # Safety
    /// As C `mprotect`.
    mprotect,
    MPROTECT,
    SYS_mprotect,
    Mprotect
);
addr_len_int_hook!(
    /// # Safety
    /// As C `madvise`.
    madvise,
    MADVISE,
    SYS_madvise,
    Madvise
);

type SbrkFn = unsafe extern "C" fn(libc::intptr_t) -> *mut c_void;

/// # Safety
/// As C `sbrk`.
#[no_mangle]
pub unsafe extern "C" fn sbrk(incr: libc::intptr_t) -> *mut c_void {
    let Some(real) = real!(SBRK, "sbrk", SbrkFn) else {
        crate::set_errno(libc::ENOMEM);
        return usize::MAX as *mut c_void;
    };
    let b = if incr != 0 { enter() } else { None };
    // SAFETY: forwarding.
    let r = unsafe { real(incr) };
    mapped(
        b,
        r as isize != -1,
        EventKind::Brk,
        r as u64,
        &[(r as u64).wrapping_add(incr as u64), 1],
    );
    r
}

/// # Safety
/// As C `brk`.
#[no_mangle]
pub unsafe extern "C" fn brk(addr: *mut c_void) -> c_int {
    type F = unsafe extern "C" fn(*mut c_void) -> c_int;
    let (Some(real), Some(sb)) = (real!(BRK, "brk", F), real!(SBRK, "sbrk", SbrkFn)) else {
        crate::set_errno(libc::ENOMEM);
        return -1;
    };
    let b = enter();
    // SAFETY: sbrk(0) only reads the break.
    let old = unsafe { sb(0) } as u64;
    // SAFETY: forwarding.
    let r = unsafe { real(addr) };
    mapped(
        b,
        r == 0 && old != addr as u64,
        EventKind::Brk,
        old,
        &[addr as u64, 0],
    );
    r
}

type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;

struct Start {
    f: StartFn,
    arg: *mut c_void,
}

/// Runs first in every thread the program creates: starts the thread's
/// stream (tid, stack bounds) before its own code runs.
extern "C" fn thread_trampoline(p: *mut c_void) -> *mut c_void {
    // SAFETY: pthread_create below passes a leaked Box<Start>.
    let s = unsafe { Box::from_raw(p as *mut Start) };
    if let Some(b) = enter() {
        leave(b);
    }
    (s.f)(s.arg)
}

/// # Safety
/// As C `pthread_create`.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    t: *mut pthread_t,
    attr: *const pthread_attr_t,
    f: StartFn,
    arg: *mut c_void,
) -> c_int {
    type F =
        unsafe extern "C" fn(*mut pthread_t, *const pthread_attr_t, StartFn, *mut c_void) -> c_int;
    let Some(real) = real!(PTHREAD_CREATE, "pthread_create", F) else {
        return libc::EAGAIN;
    };
    // A writer away for a fork comes back while the program has one
    // thread (see writer::come_back).
    if writer::away() {
        writer::come_back(true);
    }
    let Some(b) = enter() else {
        // SAFETY: forwarding.
        return unsafe { real(t, attr, f, arg) };
    };
    let s = Box::into_raw(Box::new(Start { f, arg }));
    // Not guarded across the call: what glibc allocates for the new thread
    // (its TLS vector) is the program's, and recorded.
    leave(b);
    // SAFETY: forwarding with our trampoline, which takes ownership of s.
    let r = unsafe { real(t, attr, thread_trampoline, s as *mut c_void) };
    if r != 0 {
        // SAFETY: the thread was not created; s is still ours.
        drop(unsafe { Box::from_raw(s) });
    } else if let Some(b) = enter() {
        // SAFETY: t was filled in by a successful pthread_create.
        let handle: u64 = unsafe { *t };
        record::plain(b, EventKind::ThreadCreate, &[handle], &[], true);
        writer::MAPS_DIRTY.store(true, Relaxed);
        leave(b);
    }
    r
}

/// What a program is about to put itself under.
#[derive(Clone, Copy)]
enum Seccomp {
    /// Strict mode: read, write, exit and sigreturn only.
    Strict,
    /// The filter at this address (a `struct sock_fprog` of the caller's).
    Filter(u64),
}

/// The program is about to put itself under seccomp, which may kill it
/// for any call it did not allow, ours included. A filter that lets every
/// call the agent makes through ([`vmmap_seccomp::NEEDED`], judged as
/// `vmmap attach` judges a process's filters) changes nothing. Otherwise
/// the agent stops for good first: recording ends (what was recorded
/// stays in the file), the writer writes its end and its thread ends, an
/// attached agent takes its hooks out, and from then on the agent makes
/// no system call of its own ([`crate::QUIET`]). A hook already recording
/// in another thread at this moment finishes its record first (a few
/// hundred nanoseconds). A `vfork` child's filter is its own: nothing
/// stops.
fn before_seccomp(what: Seccomp) {
    if !crate::same_process() {
        return;
    }
    if let Seccomp::Filter(at) = what {
        if lets_the_agent_through(at) {
            return;
        }
    }
    writer::END_REASON.store(END_SECCOMP, SeqCst);
    #[cfg(not(test))]
    let attached = crate::attach::attached();
    #[cfg(test)]
    let attached = false;
    if attached {
        #[cfg(not(test))]
        crate::attach::vmmap_agent_detach();
    } else {
        crate::shutdown();
    }
    writer::wait_gone(1000);
    crate::QUIET.store(true, SeqCst);
}

/// Whether the filter the program passes at `at` lets every call of the
/// agent's through. Copied with `process_vm_readv`, not read in place: a
/// bad pointer, which the kernel answers with EFAULT, must not crash the
/// program here. A filter that cannot be read does not.
fn lets_the_agent_through(at: u64) -> bool {
    let mut fprog = [0u8; core::mem::size_of::<libc::sock_fprog>()];
    if !sys::read_own(at, &mut fprog) {
        return false;
    }
    let len = u16::from_ne_bytes([fprog[0], fprog[1]]) as usize;
    let filter = u64::from_ne_bytes(fprog[8..16].try_into().unwrap_or_default());
    if len == 0 || len > 4096 {
        return false;
    }
    let mut insns = vec![0u8; len * 8];
    if !sys::read_own(filter, &mut insns) {
        return false;
    }
    let filters = [vmmap_seccomp::Insn::parse(&insns)];
    #[cfg(not(test))]
    let launched = !crate::attach::attached();
    #[cfg(test)]
    let launched = true;
    vmmap_seccomp::first_refused(&filters, false, launched).is_none()
}

/// `SECCOMP_SET_MODE_STRICT` and `SECCOMP_SET_MODE_FILTER`, the
/// operations of `seccomp(2)` that put the caller under seccomp.
const SECCOMP_SET_MODE_STRICT: libc::c_long = 0;
const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;

/// What a `prctl(PR_SET_SECCOMP, mode, filter)` installs.
fn prctl_seccomp(mode: libc::c_long, filter: libc::c_long) -> Option<Seccomp> {
    match mode {
        1 => Some(Seccomp::Strict),
        2 => Some(Seccomp::Filter(filter as u64)),
        _ => None,
    }
}

/// # Safety
/// As C `prctl` (variadic in C; its arguments are integers, which the
/// x86-64 ABI passes alike either way). `PR_SET_SECCOMP` goes through
/// [`before_seccomp`] first.
#[no_mangle]
pub unsafe extern "C" fn prctl(
    option: c_int,
    a2: libc::c_ulong,
    a3: libc::c_ulong,
    a4: libc::c_ulong,
    a5: libc::c_ulong,
) -> c_int {
    if option == libc::PR_SET_SECCOMP {
        if let Some(what) = prctl_seccomp(a2 as _, a3 as _) {
            before_seccomp(what);
        }
    }
    let args = [
        option as libc::c_long,
        a2 as _,
        a3 as _,
        a4 as _,
        a5 as _,
        0,
    ];
    // SAFETY: the raw system call has the same contract.
    unsafe { raw_syscall(libc::SYS_prctl, args) as c_int }
}

/// # Safety
/// As C `syscall` (variadic in C; read as six integers after the number,
/// as glibc's own does: the x86-64 ABI passes them alike, and a sixth the
/// caller did not pass is a word of its frame the kernel then ignores).
/// `seccomp(SECCOMP_SET_MODE_STRICT or _FILTER)` and
/// `prctl(PR_SET_SECCOMP)` go through [`before_seccomp`] first.
#[no_mangle]
pub unsafe extern "C" fn syscall(
    n: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    match n {
        libc::SYS_unshare => {
            let needed = crate::alone::unshare_needs_alone(a1);
            return crate::alone::call(needed, n, [a1, a2, a3, a4, a5, a6]);
        }
        libc::SYS_setns => {
            let needed = crate::alone::setns_needs_alone(a2);
            return crate::alone::call(needed, n, [a1, a2, a3, a4, a5, a6]);
        }
        // Made raw, a change of ids is the calling thread's alone: a
        // writer left behind would keep the old ones (root's, after the
        // program gave them up) in the program's memory.
        libc::SYS_setuid
        | libc::SYS_setgid
        | libc::SYS_setreuid
        | libc::SYS_setregid
        | libc::SYS_setresuid
        | libc::SYS_setresgid
        | libc::SYS_setgroups => {
            return crate::alone::call(true, n, [a1, a2, a3, a4, a5, a6]);
        }
        _ => {}
    }
    let what = match (n, a1) {
        (libc::SYS_seccomp, SECCOMP_SET_MODE_STRICT) => Some(Seccomp::Strict),
        (libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER) => Some(Seccomp::Filter(a3 as u64)),
        (libc::SYS_prctl, o) if o == libc::PR_SET_SECCOMP as libc::c_long => prctl_seccomp(a2, a3),
        _ => None,
    };
    if let Some(what) = what {
        before_seccomp(what);
    }
    // SAFETY: the caller's system call, as it asked.
    unsafe { raw_syscall(n, [a1, a2, a3, a4, a5, a6]) }
}

/// A system call made with the `syscall` instruction, with glibc's
/// `syscall()` convention for the result (-1 and errno on failure).
/// Not through glibc's `syscall`: the agent's own calls of `syscall`
/// reach the hook above, and finding the next definition (dlsym) may
/// allocate, which may make a system call.
///
/// # Safety
/// As the system call `n` with these arguments.
pub(crate) unsafe fn raw_syscall(n: libc::c_long, a: [libc::c_long; 6]) -> libc::c_long {
    let r: libc::c_long;
    // SAFETY: the x86-64 Linux system call convention: number in rax,
    // arguments in rdi, rsi, rdx, r10, r8, r9; rcx and r11 clobbered.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n => r,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if (-4095..0).contains(&r) {
        crate::set_errno(-r as i32);
        -1
    } else {
        r
    }
}

/// # Safety
/// As C `pthread_setname_np`.
#[no_mangle]
pub unsafe extern "C" fn pthread_setname_np(t: pthread_t, name: *const c_char) -> c_int {
    type F = unsafe extern "C" fn(pthread_t, *const c_char) -> c_int;
    let Some(real) = real!(SETNAME, "pthread_setname_np", F) else {
        return libc::ENOSYS;
    };
    // SAFETY: forwarding.
    let r = unsafe { real(t, name) };
    if r == 0 && !name.is_null() {
        if let Some(b) = enter() {
            // SAFETY: name is a C string (the call succeeded with it).
            let n = unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes();
            record::plain(b, EventKind::ThreadName, &[t], n, false);
            leave(b);
        }
    }
    r
}

/// # Safety
/// As C `dlopen`. `RTLD_DEEPBIND` is dropped: a deep-bound library would
/// call glibc's malloc directly and bypass the agent.
#[no_mangle]
pub unsafe extern "C" fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void {
    type F = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
    let Some(real) = real!(DLOPEN, "dlopen", F) else {
        return core::ptr::null_mut();
    };
    let flags = flags & !libc::RTLD_DEEPBIND;
    // Not guarded across the call: the loader's allocations and the new
    // library's constructors are the program's, recorded with this call in
    // their stacks (see crate::unwind::IN_DLOPEN).
    crate::unwind::IN_DLOPEN.fetch_add(1, SeqCst);
    // SAFETY: forwarding.
    let h = unsafe { real(path, flags) };
    crate::unwind::IN_DLOPEN.fetch_sub(1, SeqCst);
    // Attached: the new modules' slots go to the hooks before the caller
    // can call into them.
    if !h.is_null() {
        crate::attach::patch_new_modules();
    }
    if let Some(b) = enter() {
        if !h.is_null() {
            crate::unwind::rebuild_modules();
            let name = if path.is_null() {
                &[][..]
            } else {
                // SAFETY: path is a C string.
                unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes()
            };
            record::plain(
                b,
                EventKind::Dlopen,
                &[h as u64, flags as u32 as u64],
                name,
                true,
            );
            writer::MAPS_DIRTY.store(true, Relaxed);
        }
        leave(b);
    }
    h
}

/// # Safety
/// As C `dlclose`.
#[no_mangle]
pub unsafe extern "C" fn dlclose(h: *mut c_void) -> c_int {
    type F = unsafe extern "C" fn(*mut c_void) -> c_int;
    let Some(real) = real!(DLCLOSE, "dlclose", F) else {
        return -1;
    };
    // Not guarded, as dlopen: destructors' calls are the program's.
    crate::unwind::IN_DLOPEN.fetch_add(1, SeqCst);
    // SAFETY: forwarding.
    let r = unsafe { real(h) };
    crate::unwind::IN_DLOPEN.fetch_sub(1, SeqCst);
    if let Some(b) = enter() {
        if r == 0 {
            crate::unwind::rebuild_modules();
            record::plain(b, EventKind::Dlclose, &[h as u64], &[], true);
            writer::MAPS_DIRTY.store(true, Relaxed);
        }
        leave(b);
    }
    r
}

/// # Safety
/// As C `fork`. The child is handled by the agent's `pthread_atfork`
/// handler (untraced, or a file of its own with --follow-forks).
#[no_mangle]
pub unsafe extern "C" fn fork() -> libc::pid_t {
    type F = unsafe extern "C" fn() -> libc::pid_t;
    let Some(real) = real!(FORK, "fork", F) else {
        crate::set_errno(libc::ENOSYS);
        return -1;
    };
    // The writer steps out before a fork from the program's only thread
    // (writer::step_out), so that the parent has one thread after it, as
    // without the agent; the child's writer, if any, is its own.
    crate::thread_count::step_out();
    let b = enter();
    // SAFETY: forwarding.
    let pid = unsafe { real() };
    if pid != 0 {
        writer::stay_out();
    }
    if let Some(b) = b {
        if pid > 0 {
            record::plain(b, EventKind::Fork, &[pid as u64], &[], true);
        }
        leave(b);
    }
    pid
}

type SpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    *const *mut c_char,
    *const *mut c_char,
) -> c_int;

/// `posix_spawn` and `posix_spawnp`: glibc's start the child with
/// clone(CLONE_VM|CLONE_VFORK) and exec it through its internal `__execve`,
/// which no hook sees, with the `envp` given. Following children, that
/// environment gets the agent's variables (see [`crate::env`]), else a
/// child given an environment of its own would start untraced; the copy
/// is freed when the call returns (the child has exec'd or failed by
/// then). Otherwise the call passes straight through.
unsafe fn spawn(
    real: Option<SpawnFn>,
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let Some(real) = real else {
        return libc::ENOSYS;
    };
    let mut scratch = crate::env::Scratch::new();
    // Without --follow-forks the child is not the traced process: it
    // gets the environment it was given.
    let env = if crate::same_process() && crate::following() {
        // SAFETY: envp is the caller's environment array.
        unsafe { crate::env::for_exec(envp as *const *const c_char, &mut scratch) }
    } else {
        None
    };
    let envp = env
        .as_ref()
        .map_or(envp, |e| e.as_ptr() as *const *mut c_char);
    // SAFETY: forwarding, with the environment.
    unsafe { real(pid, path, actions, attr, argv, envp) }
}

/// Defines an exported `posix_spawn` hook over [`spawn`]; `$slot` caches
/// the real call.
macro_rules! spawn_hook {
    ($(#[$doc:meta])* $name:ident, $slot:ident) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            pid: *mut libc::pid_t,
            file: *const c_char,
            actions: *const libc::posix_spawn_file_actions_t,
            attr: *const libc::posix_spawnattr_t,
            argv: *const *mut c_char,
            envp: *const *mut c_char,
        ) -> c_int {
            let real = real!($slot, stringify!($name), SpawnFn);
            // SAFETY: the caller's arguments, as the call takes them.
            unsafe { spawn(real, pid, file, actions, attr, argv, envp) }
        }
    };
}

spawn_hook!(
    /// # Safety
    /// As C `posix_spawn` (see [`spawn`]).
    posix_spawn,
    POSIX_SPAWN
);
spawn_hook!(
    /// # Safety
    /// As C `posix_spawnp` (see [`spawn`]).
    posix_spawnp,
    POSIX_SPAWNP
);

/// Before the image is replaced: record the exec and write everything out
/// (exec runs no atexit handlers). A `vfork` child shares our memory and
/// must not touch it: it passes straight through.
fn before_exec(path: *const c_char) {
    if !crate::same_process() {
        return;
    }
    if let Some(b) = enter() {
        let name = if path.is_null() {
            &[][..]
        } else {
            // SAFETY: path is a C string.
            unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes()
        };
        record::plain(b, EventKind::Exec, &[], name, true);
        leave(b);
        writer::flush(2000);
        // Attached, the trace is in the agent's ring until vmmap takes it
        // (every 20 ms), and the exec would take the ring with it.
        #[cfg(not(test))]
        if crate::attach::attached() {
            crate::attach::wait_drained(250);
        }
    }
}

type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type ExecvFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;

/// The exec calls that take an environment (`execve`, `execvpe`,
/// `fexecve`): `exec` (the real call, or None when it cannot be found)
/// is given `envp` with the agent's variables put back
/// ([`crate::env::for_exec`]), or `envp` as it is.
///
/// # Safety
/// `envp` is a C environment array; `exec` forwards to the real call.
unsafe fn exec_with_env(
    path: *const c_char,
    envp: *const *const c_char,
    exec: impl FnOnce(*const *const c_char) -> Option<c_int>,
) -> c_int {
    before_exec(path);
    let mut scratch = crate::env::Scratch::new();
    // SAFETY: envp is the caller's environment array.
    let env = unsafe { crate::env::for_exec(envp, &mut scratch) };
    exec(env.as_ref().map_or(envp, |e| e.as_ptr())).unwrap_or(-1)
}

/// The exec calls that take no environment (`execv`, `execvp`): when the
/// agent's variables must be put back into the process's environment,
/// through the variant that takes one (`with_env`: `execve`, `execvpe`),
/// as the C library itself does; else `plain` as called.
///
/// # Safety
/// As C `execv`; `with_env` and `plain` are the real calls.
unsafe fn exec_current_env(
    file: *const c_char,
    argv: *const *const c_char,
    with_env: impl FnOnce() -> Option<ExecveFn>,
    plain: impl FnOnce() -> Option<ExecvFn>,
) -> c_int {
    before_exec(file);
    let mut scratch = crate::env::Scratch::new();
    // SAFETY: the process's environment array.
    if let Some(env) = unsafe { crate::env::for_exec(crate::env::current(), &mut scratch) } {
        return match with_env() {
            // SAFETY: forwarding, as the C library does, with the environment.
            Some(f) => unsafe { f(file, argv, env.as_ptr()) },
            None => -1,
        };
    }
    match plain() {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(file, argv) },
        None => -1,
    }
}

/// Defines an exported exec hook that takes an environment (`execve`,
/// `execvpe`) over [`exec_with_env`]; `$slot` caches the real call.
macro_rules! exec_hook_with_env {
    ($(#[$doc:meta])* $name:ident, $slot:ident) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            file: *const c_char,
            argv: *const *const c_char,
            envp: *const *const c_char,
        ) -> c_int {
            let exec = |envp| {
                // SAFETY: forwarding, with the caller's arguments.
                real!($slot, stringify!($name), ExecveFn).map(|f| unsafe { f(file, argv, envp) })
            };
            // SAFETY: envp is the caller's environment array.
            unsafe { exec_with_env(file, envp, exec) }
        }
    };
}

/// Defines an exported exec hook that takes no environment (`execv`,
/// `execvp`) over [`exec_current_env`]: `$with_env` is the variant that
/// takes one.
macro_rules! exec_hook_current_env {
    ($(#[$doc:meta])* $name:ident, $slot:ident, $with_env:ident, $with_env_slot:ident) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name(file: *const c_char, argv: *const *const c_char) -> c_int {
            let (with_env, plain) = (
                || real!($with_env_slot, stringify!($with_env), ExecveFn),
                || real!($slot, stringify!($name), ExecvFn),
            );
            // SAFETY: forwarding the caller's arguments.
            unsafe { exec_current_env(file, argv, with_env, plain) }
        }
    };
}

exec_hook_with_env!(
    /// # Safety
    /// As C `execve`. The traced process's own exec gets the agent's
    /// variables back ([`crate::env`]), so that its new image is traced.
    execve,
    EXECVE
);
exec_hook_with_env!(
    /// # Safety
    /// As C `execvpe`.
    execvpe,
    EXECVPE
);
exec_hook_current_env!(
    /// # Safety
    /// As C `execv`.
    execv,
    EXECV,
    execve,
    EXECVE
);
exec_hook_current_env!(
    /// # Safety
    /// As C `execvp`.
    execvp,
    EXECVP,
    execvpe,
    EXECVPE
);

/// # Safety
/// As C `fexecve`.
#[no_mangle]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;
    let exec = |envp| {
        // SAFETY: forwarding, with the caller's arguments.
        real!(FEXECVE, "fexecve", F).map(|f| unsafe { f(fd, argv, envp) })
    };
    // SAFETY: envp is the caller's environment array.
    unsafe { exec_with_env(core::ptr::null(), envp, exec) }
}

extern "C" {
    fn vmmap_agent_execl();
    fn vmmap_agent_execlp();
    fn vmmap_agent_execle();
}

/// `execl`, variadic: a jump to the C version (src/execl.c), which builds
/// argv and calls the `execv` hook. Stable Rust cannot define a variadic
/// function, and a jump leaves registers and stack as the caller set them.
#[unsafe(naked)]
#[no_mangle]
pub extern "C" fn execl() {
    core::arch::naked_asm!("jmp {}", sym vmmap_agent_execl)
}

/// `execlp`, as [`execl`].
#[unsafe(naked)]
#[no_mangle]
pub extern "C" fn execlp() {
    core::arch::naked_asm!("jmp {}", sym vmmap_agent_execlp)
}

/// `execle`, as [`execl`].
#[unsafe(naked)]
#[no_mangle]
pub extern "C" fn execle() {
    core::arch::naked_asm!("jmp {}", sym vmmap_agent_execle)
}

/// # Safety
/// As C `_exit`: flushes the trace first (no atexit handlers run).
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    crate::shutdown();
    // SAFETY: exit_group ends the process.
    unsafe { libc::syscall(libc::SYS_exit_group, status) };
    loop {
        core::hint::spin_loop();
    }
}

/// As C `abort`: the trace is written out first, so an aborting program
/// keeps its last events. (glibc's own aborts on heap corruption do not
/// come through here; like a crash, they lose the last ~50 ms.)
#[no_mangle]
pub extern "C" fn abort() -> ! {
    type F = unsafe extern "C" fn() -> !;
    if crate::same_process() {
        writer::flush(2000);
    }
    if let Some(f) = real!(ABORT, "abort", F) {
        // SAFETY: forwarding.
        unsafe { f() }
    }
    // SAFETY: as abort would, if glibc's could not be found.
    unsafe {
        libc::raise(libc::SIGABRT);
        libc::syscall(libc::SYS_exit_group, 134);
    }
    loop {
        core::hint::spin_loop();
    }
}

/// # Safety
/// As C `_Exit`.
#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    // SAFETY: same contract.
    unsafe { _exit(status) }
}

/// A change of the process's user or group ids through the C library,
/// which makes every thread repeat it (`crate::alone`: made with the
/// writer out of the process, so that the next one is a copy of the
/// calling thread, capabilities included).
macro_rules! credential_hook {
    ($slot:ident, $name:ident ($($arg:ident : $ty:ty),*)) => {
        /// # Safety
        #[doc = concat!("As C `", stringify!($name), "`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            type F = unsafe extern "C" fn($($ty),*) -> c_int;
            let Some(real) = real!($slot, stringify!($name), F) else {
                crate::set_errno(libc::ENOSYS);
                return -1;
            };
            // SAFETY: forwarding with the caller's arguments.
            crate::alone::around(true, || unsafe { real($($arg),*) })
        }
    };
}

credential_hook!(SETUID, setuid(uid: libc::uid_t));
credential_hook!(SETGID, setgid(gid: libc::gid_t));
credential_hook!(SETEUID, seteuid(uid: libc::uid_t));
credential_hook!(SETEGID, setegid(gid: libc::gid_t));
credential_hook!(SETREUID, setreuid(r: libc::uid_t, e: libc::uid_t));
credential_hook!(SETREGID, setregid(r: libc::gid_t, e: libc::gid_t));
credential_hook!(SETRESUID, setresuid(r: libc::uid_t, e: libc::uid_t, s: libc::uid_t));
credential_hook!(SETRESGID, setresgid(r: libc::gid_t, e: libc::gid_t, s: libc::gid_t));
credential_hook!(SETGROUPS, setgroups(n: libc::size_t, list: *const libc::gid_t));
