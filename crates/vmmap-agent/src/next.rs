//! The program's own allocator: each malloc-family hook forwards to the
//! definition the program would have called without the agent, the next
//! one in lookup order (`dlsym(RTLD_NEXT)`): glibc's, or jemalloc's,
//! tcmalloc's, mimalloc's when the program links or preloads one. Calling
//! glibc's `__libc_malloc` instead crashed programs linked with jemalloc:
//! their `malloc_usable_size` and `mallctl` are jemalloc's, and jemalloc
//! does not define the `__libc_*` names.
//!
//! Resolution happens once, on the first allocation call (the loader and
//! library constructors allocate before the agent's constructor runs).
//! `dlsym` itself may allocate (glibc's error state, with `calloc`): calls
//! made while the names are being resolved, by that thread or another, are
//! served from a small static buffer and their frees are no-ops.
//!
//! Every function of the family goes to the same allocator: one the
//! allocator that defines `malloc` does not define (jemalloc has no
//! `pvalloc`) is built from its aligned allocation instead of reaching
//! glibc's, which would hand out blocks of another heap.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::*};

use libc::size_t;

pub type MallocFn = unsafe extern "C" fn(size_t) -> *mut c_void;
pub type CallocFn = unsafe extern "C" fn(size_t, size_t) -> *mut c_void;
pub type ReallocFn = unsafe extern "C" fn(*mut c_void, size_t) -> *mut c_void;
pub type FreeFn = unsafe extern "C" fn(*mut c_void);
pub type MemalignFn = unsafe extern "C" fn(size_t, size_t) -> *mut c_void;
type PosixMemalignFn = unsafe extern "C" fn(*mut *mut c_void, size_t, size_t) -> c_int;

static MALLOC: AtomicUsize = AtomicUsize::new(0);
static CALLOC: AtomicUsize = AtomicUsize::new(0);
static REALLOC: AtomicUsize = AtomicUsize::new(0);
static FREE: AtomicUsize = AtomicUsize::new(0);
static MEMALIGN: AtomicUsize = AtomicUsize::new(0);
static ALIGNED_ALLOC: AtomicUsize = AtomicUsize::new(0);
static VALLOC: AtomicUsize = AtomicUsize::new(0);
static PVALLOC: AtomicUsize = AtomicUsize::new(0);
/// The allocator's `posix_memalign`, or 0: what the emulated aligned
/// calls use when the allocator has it.
static POSIX_MEMALIGN: AtomicUsize = AtomicUsize::new(0);

/// Loaded by `vmmap attach`: the allocator is the global definition, the
/// one the program's modules bind to (`RTLD_DEFAULT`); `RTLD_NEXT` from
/// an agent loaded with dlopen would search its own dependencies, glibc,
/// and miss jemalloc in a program linked with it.
static ATTACHED: AtomicBool = AtomicBool::new(false);

/// Resolves the allocator for attach mode (once: the agent stays loaded).
pub fn resolve_attached() {
    if ATTACHED.swap(true, SeqCst) {
        return;
    }
    STATE.store(1, SeqCst);
    resolve();
    STATE.store(2, Release);
}

/// 0: not resolved; 1: being resolved; 2: resolved.
static STATE: AtomicU8 = AtomicU8::new(0);

/// The start-up buffer (see the module's documentation). glibc's `dlsym`
/// asks for a few dozen bytes at most; this leaves room for other threads
/// that allocate meanwhile.
const BOOT_LEN: usize = 64 * 1024;
#[repr(C, align(4096))]
struct Boot(core::cell::UnsafeCell<[u8; BOOT_LEN]>);
// SAFETY: disjoint parts are handed out by an atomic bump pointer.
unsafe impl Sync for Boot {}
static BOOT: Boot = Boot(core::cell::UnsafeCell::new([0; BOOT_LEN]));
static BOOT_USED: AtomicUsize = AtomicUsize::new(0);

/// Whether `p` was handed out from the start-up buffer (never freed).
#[inline(always)]
pub fn is_boot(p: *mut c_void) -> bool {
    (p as usize).wrapping_sub(BOOT.0.get() as usize) < BOOT_LEN
}

/// A zeroed block of the start-up buffer, its size in the 16 bytes before
/// it (for realloc), or null when the buffer is used up.
fn boot_alloc(align: usize, size: usize) -> *mut c_void {
    let align = align.max(16);
    let base = BOOT.0.get() as usize;
    let mut used = BOOT_USED.load(Relaxed);
    loop {
        let start = (base + used + 16).next_multiple_of(align);
        let Some(end) = start.checked_add(size) else {
            return core::ptr::null_mut();
        };
        if end > base + BOOT_LEN {
            return core::ptr::null_mut();
        }
        match BOOT_USED.compare_exchange_weak(used, end - base, AcqRel, Relaxed) {
            Ok(_) => {
                // SAFETY: [start - 16, end) is inside the buffer and ours.
                unsafe { *((start - 8) as *mut usize) = size };
                return start as *mut c_void;
            }
            Err(now) => used = now,
        }
    }
}

/// The size recorded by [`boot_alloc`] for `p`.
///
/// # Safety
/// `p` must come from [`boot_alloc`].
pub unsafe fn boot_size(p: *mut c_void) -> usize {
    // SAFETY: per the contract, the size is stored just before p.
    unsafe { *((p as usize - 8) as *const usize) }
}

unsafe extern "C" fn boot_malloc(size: size_t) -> *mut c_void {
    boot_alloc(16, size)
}
unsafe extern "C" fn boot_calloc(n: size_t, size: size_t) -> *mut c_void {
    // The buffer is never reused: still zero.
    n.checked_mul(size)
        .map_or(core::ptr::null_mut(), |t| boot_alloc(16, t))
}
unsafe extern "C" fn boot_realloc(p: *mut c_void, size: size_t) -> *mut c_void {
    let q = boot_alloc(16, size);
    if !p.is_null() && !q.is_null() {
        // SAFETY: p is a start-up block (the only kind this sees before
        // resolution), q a fresh one at least `size` long.
        unsafe {
            core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, boot_size(p).min(size))
        };
    }
    q
}
unsafe extern "C" fn boot_free(_p: *mut c_void) {}
unsafe extern "C" fn boot_memalign(align: size_t, size: size_t) -> *mut c_void {
    boot_alloc(align.next_power_of_two(), size)
}

/// Resolves the allocator now (also done on first use).
pub fn resolve_now() {
    let _ = slot(&MALLOC, boot_malloc as MallocFn as usize);
}

#[cold]
#[inline(never)]
fn slow(slot: &AtomicUsize, boot: usize) -> usize {
    if STATE.compare_exchange(0, 1, Acquire, Relaxed).is_ok() {
        resolve();
        STATE.store(2, Release);
    }
    match slot.load(Acquire) {
        0 => boot,
        f => f,
    }
}

#[inline(always)]
fn slot(slot: &AtomicUsize, boot: usize) -> usize {
    match slot.load(Relaxed) {
        0 => slow(slot, boot),
        f => f,
    }
}

fn next_sym(name: &core::ffi::CStr) -> usize {
    if ATTACHED.load(Relaxed) {
        return global_definition(name);
    }
    // SAFETY: dlsym with a C string; RTLD_NEXT searches the objects after
    // the agent, as the program's own calls would have.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char) as usize }
}

/// Whether a symbol of some loaded object starts at `f` (not inside a
/// PLT or in the middle of a function). A non-PIE executable that takes
/// `malloc`'s address gets a "canonical PLT entry": its undefined
/// `malloc` carries the stub's address, which `dlsym` returns for pointer
/// equality (Debian's node does this). The stub jumps through the
/// executable's slot, which attach mode points at the hook: forwarding
/// there would call the hook until the stack ran out. `dladdr` matches
/// that stub's symbol too, so [`global_definition`] also checks where it
/// lies.
fn is_definition(f: usize) -> bool {
    // SAFETY: dladdr only reads the loader's tables; info is an
    // out-parameter.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        libc::dladdr(f as *const c_void, &mut info) != 0 && info.dli_saddr as usize == f
    }
}

/// Where the executable is mapped (what `dladdr` reports as its base).
fn executable_base() -> usize {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid info (the executable comes
        // first); data is our usize.
        let info = unsafe { &*info };
        // SAFETY: dlpi_phnum headers at dlpi_phdr.
        let phdrs =
            unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let first = phdrs
            .iter()
            .filter(|p| p.p_type == libc::PT_LOAD)
            .map(|p| p.p_vaddr)
            .min()
            .unwrap_or(0);
        // SAFETY: data is the caller's usize.
        unsafe { *(data as *mut usize) = (info.dlpi_addr + (first & !0xfff)) as usize };
        1
    }
    let mut base = 0usize;
    // SAFETY: the callback only reads the loader's data.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut base as *mut usize as *mut c_void) };
    base
}

/// The program's own definition of `name` in attach mode: the global
/// one (`RTLD_DEFAULT`: jemalloc in a program linked with it, glibc's
/// otherwise), or, when that is a canonical PLT entry (see
/// [`is_definition`]), the first loaded object after the executable that
/// defines it, in load order (the global search order).
fn global_definition(name: &core::ffi::CStr) -> usize {
    // SAFETY: dlsym with a C string.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char) } as usize;
    // The executable's own entry can only be that stub: one that defines
    // malloc itself is refused by vmmap before the agent is loaded.
    if f == 0 || (is_definition(f) && object_of(f) != executable_base()) {
        return f;
    }
    struct Search<'a> {
        name: &'a core::ffi::CStr,
        own: usize,
        found: usize,
    }
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid info; data is our Search.
        let (s, info) = unsafe { (&mut *(data as *mut Search<'_>), &*info) };
        if info.dlpi_name.is_null() || info.dlpi_addr as usize == s.own {
            return 0;
        }
        // SAFETY: a C string the loader keeps.
        if unsafe { *info.dlpi_name } == 0 {
            return 0; // the executable (its entry is the stub)
        }
        // SAFETY: RTLD_NOLOAD only returns a handle of a loaded object;
        // dlsym on it searches that object first.
        let f = unsafe {
            let h = libc::dlopen(info.dlpi_name, libc::RTLD_LAZY | libc::RTLD_NOLOAD);
            if h.is_null() {
                return 0;
            }
            libc::dlsym(h, s.name.as_ptr())
        } as usize;
        if f != 0 && object_of(f) == info.dlpi_addr as usize && is_definition(f) {
            s.found = f;
            return 1;
        }
        0
    }
    let mut s = Search {
        name,
        own: object_of(global_definition as *const () as usize),
        found: 0,
    };
    // SAFETY: the callback only reads the loader's data.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut s as *mut Search<'_> as *mut c_void) };
    s.found
}

/// The load address of the object that holds `f`.
fn object_of(f: usize) -> usize {
    // SAFETY: dladdr only reads the loader's tables; info is an
    // out-parameter.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if f == 0 || libc::dladdr(f as *const c_void, &mut info) == 0 {
            0
        } else {
            info.dli_fbase as usize
        }
    }
}

extern "C" {
    fn __libc_malloc(size: size_t) -> *mut c_void;
    fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: size_t) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
    fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
}

fn resolve() {
    let malloc = next_sym(c"malloc");
    let home = object_of(malloc);
    // The rest of the family from the same object as malloc, else 0.
    let same = |name: &core::ffi::CStr| {
        let f = next_sym(name);
        if f != 0 && object_of(f) == home {
            f
        } else {
            0
        }
    };
    let (calloc, realloc, free) = (same(c"calloc"), same(c"realloc"), same(c"free"));
    if malloc == 0 || calloc == 0 || realloc == 0 || free == 0 {
        // No allocator after the agent defines the four (cannot happen
        // with glibc, which defines them all): glibc's own, as before.
        MALLOC.store(__libc_malloc as MallocFn as usize, Release);
        CALLOC.store(__libc_calloc as CallocFn as usize, Release);
        REALLOC.store(__libc_realloc as ReallocFn as usize, Release);
        FREE.store(__libc_free as FreeFn as usize, Release);
        MEMALIGN.store(__libc_memalign as MemalignFn as usize, Release);
        ALIGNED_ALLOC.store(__libc_memalign as MemalignFn as usize, Release);
        VALLOC.store(emulated_valloc as MallocFn as usize, Release);
        PVALLOC.store(emulated_pvalloc as MallocFn as usize, Release);
        return;
    }
    let pm = same(c"posix_memalign");
    let aligned_alloc = same(c"aligned_alloc");
    POSIX_MEMALIGN.store(pm, Release);
    // An aligned call the allocator lacks goes through the aligned call it
    // has; when it has none (a wrapper that defines only the four), to the
    // next definition, as the program's own call would have.
    let can_emulate = pm != 0 || aligned_alloc != 0;
    // When nothing defines it, `last`.
    let pick = |own: usize, name: &core::ffi::CStr, emulated: usize, last: usize| {
        let f = if own != 0 {
            own
        } else if can_emulate {
            emulated
        } else {
            next_sym(name)
        };
        if f != 0 {
            f
        } else {
            last
        }
    };
    MEMALIGN.store(
        pick(
            same(c"memalign"),
            c"memalign",
            emulated_memalign as MemalignFn as usize,
            __libc_memalign as MemalignFn as usize,
        ),
        Release,
    );
    ALIGNED_ALLOC.store(
        pick(
            aligned_alloc,
            c"aligned_alloc",
            emulated_memalign as MemalignFn as usize,
            emulated_memalign as MemalignFn as usize,
        ),
        Release,
    );
    VALLOC.store(
        pick(
            same(c"valloc"),
            c"valloc",
            emulated_valloc as MallocFn as usize,
            emulated_valloc as MallocFn as usize,
        ),
        Release,
    );
    PVALLOC.store(
        pick(
            same(c"pvalloc"),
            c"pvalloc",
            emulated_pvalloc as MallocFn as usize,
            emulated_pvalloc as MallocFn as usize,
        ),
        Release,
    );
    CALLOC.store(calloc, Release);
    REALLOC.store(realloc, Release);
    FREE.store(free, Release);
    MALLOC.store(malloc, Release);
}

/// memalign through the allocator's own posix_memalign or aligned_alloc
/// (whichever it has), for an allocator without memalign.
unsafe extern "C" fn emulated_memalign(align: size_t, size: size_t) -> *mut c_void {
    // memalign takes any alignment (glibc rounds it up to a power of two);
    // posix_memalign wants a power of two, at least a pointer's size.
    let align = align.max(core::mem::size_of::<*mut c_void>());
    let Some(align) = align.checked_next_power_of_two() else {
        crate::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    };
    let pm = POSIX_MEMALIGN.load(Acquire);
    if pm != 0 {
        // SAFETY: the allocator's posix_memalign.
        let f = unsafe { core::mem::transmute::<usize, PosixMemalignFn>(pm) };
        let mut out = core::ptr::null_mut();
        // SAFETY: out is a valid out-pointer; align is valid for it.
        let r = unsafe { f(&mut out, align, size) };
        if r != 0 {
            crate::set_errno(r);
            return core::ptr::null_mut();
        }
        return out;
    }
    let aa = ALIGNED_ALLOC.load(Acquire);
    if aa != 0 && aa != emulated_memalign as MemalignFn as usize {
        // SAFETY: the allocator's aligned_alloc.
        let f = unsafe { core::mem::transmute::<usize, MemalignFn>(aa) };
        // SAFETY: a power-of-two alignment, a size rounded to it (C11).
        return unsafe { f(align, size.next_multiple_of(align)) };
    }
    crate::set_errno(libc::ENOMEM);
    core::ptr::null_mut()
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

unsafe extern "C" fn emulated_valloc(size: size_t) -> *mut c_void {
    // SAFETY: the allocator's memalign (or its emulation).
    unsafe { memalign()(page(), size) }
}

unsafe extern "C" fn emulated_pvalloc(size: size_t) -> *mut c_void {
    let page = page();
    let Some(rounded) = size.max(1).checked_next_multiple_of(page) else {
        crate::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    // SAFETY: as above.
    unsafe { memalign()(page, rounded) }
}

macro_rules! getter {
    ($name:ident, $slot:ident, $ty:ty, $boot:ident) => {
        /// The program's allocator's function.
        #[inline(always)]
        pub fn $name() -> $ty {
            // SAFETY: the slot holds a function of this type (resolved,
            // emulated or the start-up one).
            unsafe { core::mem::transmute::<usize, $ty>(slot(&$slot, $boot as $ty as usize)) }
        }
    };
}

getter!(malloc, MALLOC, MallocFn, boot_malloc);
getter!(calloc, CALLOC, CallocFn, boot_calloc);
getter!(realloc, REALLOC, ReallocFn, boot_realloc);
getter!(free, FREE, FreeFn, boot_free);
getter!(memalign, MEMALIGN, MemalignFn, boot_memalign);
getter!(aligned_alloc, ALIGNED_ALLOC, MemalignFn, boot_memalign);

unsafe extern "C" fn boot_valloc(size: size_t) -> *mut c_void {
    boot_alloc(4096, size)
}
getter!(valloc, VALLOC, MallocFn, boot_valloc);
getter!(pvalloc, PVALLOC, MallocFn, boot_valloc);

/// realloc of a block from the start-up buffer, once the allocator is
/// known: a new block of the allocator with the old contents.
///
/// # Safety
/// `p` must be a start-up block.
pub unsafe fn realloc_boot(p: *mut c_void, size: size_t) -> *mut c_void {
    // SAFETY: the allocator's malloc.
    let q = unsafe { malloc()(size) };
    if !q.is_null() {
        // SAFETY: p is a start-up block with its size before it.
        unsafe {
            core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, boot_size(p).min(size))
        };
    }
    q
}
