//! Attach mode: the agent loaded into a running process (`vmmap attach`)
//! rather than preloaded.
//!
//! A library loaded with `dlopen` interposes nothing: every module bound
//! its calls when it was loaded. So the attach entry rewrites the
//! relocation slots (`R_X86_64_JUMP_SLOT` and `R_X86_64_GLOB_DAT` in
//! `DT_JMPREL` and `DT_RELA`) of every loaded module for the functions
//! the agent interposes, to point at the hooks, and remembers what each
//! held. Slots inside RELRO are made writable for the write and read-only
//! again. Modules loaded later are patched by the `dlopen` hook and, for
//! loads no hook sees (glibc's own NSS and iconv modules), by the writer
//! when the loader's counters move. Detach writes the remembered values
//! back, except in the agent's own image: its calls (zstd's allocations)
//! keep going through the hooks, which pass them to its private heap,
//! since a block of that heap must never reach the program's `free`.
//!
//! Output goes to a ring in the agent's memory that vmmap drains with
//! `process_vm_readv` (layout: `vmmap_wire::attach`): the process may run
//! as another user or in another mount namespace, where vmmap's file
//! cannot be opened, and its descriptors are left alone. vmmap bumps a
//! heartbeat in the control block; when it stops (vmmap was killed) or
//! vmmap asks, the writer removes the hooks, writes the END message and
//! stops.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::collections::HashMap;
use std::sync::Mutex;

use vmmap_wire::attach as wire;

use crate::sys;

/// Set from the attach entry until detach: the writer drains to the ring,
/// watches vmmap and patches new modules.
static ATTACHED: AtomicBool = AtomicBool::new(false);
/// The control block (see `vmmap_wire::attach`), once made.
static CONTROL: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// The ring: mapped once, kept across attaches.
static RING: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// The ring's length (a power of two).
const RING_LEN: usize = 8 << 20;
/// How long vmmap's heartbeat may stand still before the agent detaches
/// by itself (vmmap was killed, or stopped).
const HEARTBEAT_MS: u64 = 2000;

/// Slot address -> (value before the patch, load bias of its module).
static SLOTS: Mutex<Option<HashMap<usize, (usize, u64)>>> = Mutex::new(None);
/// The loader's (adds, subs) when the modules were last patched.
static PATCHED_AT: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// Whether the agent is attached now.
#[inline]
pub(crate) fn attached() -> bool {
    ATTACHED.load(Relaxed)
}

fn field(off: usize) -> Option<&'static AtomicU64> {
    let c = CONTROL.load(Acquire);
    // SAFETY: the control block is a page of ours, never unmapped; every
    // field is an aligned u64.
    (!c.is_null()).then(|| unsafe { AtomicU64::from_ptr(c.add(off) as *mut u64) })
}

/// The functions the agent interposes.
const HOOKED: [&str; 50] = [
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "cfree",
    "memalign",
    "aligned_alloc",
    "posix_memalign",
    "valloc",
    "pvalloc",
    "mmap",
    "mmap64",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "sbrk",
    "pthread_create",
    "pthread_setname_np",
    "dlopen",
    "dlclose",
    "fork",
    "posix_spawn",
    "posix_spawnp",
    "execve",
    "execv",
    "execvp",
    "execvpe",
    "fexecve",
    "execl",
    "execlp",
    "execle",
    "_exit",
    "_Exit",
    "abort",
    "prctl",
    "syscall",
    "unshare",
    "setns",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
];

/// The hooks by name: the agent's own definitions, asked of the loader
/// through the agent's handle (its own scope, itself first). Naming them
/// in Rust (`hooks::malloc as usize`) would not do: the agent's
/// references to its exported names go through its own GOT, which the
/// loader bound to the program's (libc's) definitions.
fn hook_table() -> &'static [(&'static [u8], usize)] {
    static TABLE: std::sync::OnceLock<Vec<(&'static [u8], usize)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut out = Vec::new();
        // SAFETY: dladdr reads the loader's tables; dlopen with
        // RTLD_NOLOAD only returns a handle of the loaded agent (a
        // reference that is never released: the agent stays loaded).
        let handle = unsafe {
            let mut info: libc::Dl_info = core::mem::zeroed();
            if libc::dladdr(hook_table as *const () as *const c_void, &mut info) == 0
                || info.dli_fname.is_null()
            {
                return out;
            }
            libc::dlopen(info.dli_fname, libc::RTLD_LAZY | libc::RTLD_NOLOAD)
        };
        if handle.is_null() {
            return out;
        }
        for name in HOOKED {
            let Ok(c) = std::ffi::CString::new(name) else {
                continue;
            };
            // SAFETY: a handle of ours and a C string.
            let f = unsafe { libc::dlsym(handle, c.as_ptr()) } as usize;
            if f != 0 {
                out.push((name.as_bytes(), f));
            }
        }
        out
    })
}

/// The load bias of the agent's own image.
fn own_base() -> u64 {
    // SAFETY: dladdr reads the loader's tables; info is an out-parameter.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(own_base as *const () as *const c_void, &mut info) == 0 {
            return 0;
        }
        info.dli_fbase as u64
    }
}

/// An entry of the dynamic section (`Elf64_Dyn`; the libc crate has no
/// such type).
#[repr(C)]
struct Dyn {
    d_tag: i64,
    d_un: u64,
}

const PT_GNU_RELRO: u32 = 0x6474_e552;
const R_X86_64_GLOB_DAT: u64 = 6;
const R_X86_64_JUMP_SLOT: u64 = 7;

/// What one pass over the modules does to each slot of an interposed
/// function.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    /// Point it at the hook, remembering the value.
    Patch,
    /// Put the remembered value back (where the hook still is).
    Restore,
}

struct PassState<'a> {
    pass: Pass,
    table: &'static [(&'static [u8], usize)],
    slots: &'a mut HashMap<usize, (usize, u64)>,
    own: u64,
    page: usize,
    /// Slots of the allocator's entry points patched in the program's
    /// modules (not the agent's, nor libc's own).
    allocator_slots: usize,
}

/// Patches (or restores) every loaded module's slots. Returns how many
/// slots of `malloc` or `free` outside the agent were patched.
fn pass(pass: Pass) -> usize {
    unsafe extern "C" fn cb(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
        // SAFETY: the loader passes a valid info; data is our PassState.
        let (st, info) = unsafe { (&mut *(data as *mut PassState<'_>), &*info) };
        // SAFETY: the module is loaded (the loader holds its lock while
        // we look), its headers and dynamic section mapped.
        unsafe { module(st, info) };
        0
    }
    let mut guard = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let slots = guard.get_or_insert_with(HashMap::new);
    let mut st = PassState {
        pass,
        table: hook_table(),
        slots,
        own: own_base(),
        // SAFETY: sysconf has no preconditions.
        page: unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize,
        allocator_slots: 0,
    };
    // SAFETY: the callback touches only the modules' slots and our state.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut st as *mut PassState<'_> as *mut c_void) };
    let n = st.allocator_slots;
    if pass == Pass::Restore {
        st.slots.clear();
    }
    n
}

/// One module's slots.
///
/// # Safety
/// `info` describes a loaded module.
unsafe fn module(st: &mut PassState<'_>, info: &libc::dl_phdr_info) {
    let base = info.dlpi_addr;
    let name = if info.dlpi_name.is_null() {
        &[][..]
    } else {
        // SAFETY: a C string the loader keeps.
        unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    // The loader binds its own few calls before anything else is loaded
    // (its allocations go through pointers it keeps, not slots); the
    // preloaded agent never sees them either.
    if name.windows(6).any(|w| w == b"/ld-li") || name.windows(8).any(|w| w == b"ld64.so.") {
        return;
    }
    let is_own = base == st.own;
    if is_own && st.pass == Pass::Restore {
        return;
    }
    let is_libc = name.windows(7).any(|w| w == b"libc.so");
    // SAFETY: dlpi_phnum headers at dlpi_phdr.
    let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let Some(dynamic) = phdrs.iter().find(|p| p.p_type == libc::PT_DYNAMIC) else {
        return;
    };
    let relro = phdrs.iter().find(|p| p.p_type == PT_GNU_RELRO).map(|p| {
        let lo = (base + p.p_vaddr) as usize & !(st.page - 1);
        let hi = (base + p.p_vaddr + p.p_memsz) as usize & !(st.page - 1);
        (lo, hi)
    });
    // glibc relocates the dynamic section's addresses in place on x86_64;
    // one it did not (the vDSO's) is still relative to the load bias.
    let abs = |v: u64| if v < base { v + base } else { v };
    let mut d = (base + dynamic.p_vaddr) as *const Dyn;
    let (mut symtab, mut strtab, mut rela, mut relasz, mut jmprel, mut pltrelsz) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    loop {
        // SAFETY: the dynamic section ends with DT_NULL.
        let e = unsafe { &*d };
        match e.d_tag as u64 {
            0 => break,
            2 => pltrelsz = e.d_un,
            5 => strtab = abs(e.d_un),
            6 => symtab = abs(e.d_un),
            7 => rela = abs(e.d_un),
            8 => relasz = e.d_un,
            23 => jmprel = abs(e.d_un),
            _ => {}
        }
        // SAFETY: still inside the section (no DT_NULL yet).
        d = unsafe { d.add(1) };
    }
    if symtab == 0 || strtab == 0 {
        return;
    }
    for (start, len) in [(rela, relasz), (jmprel, pltrelsz)] {
        if start == 0 {
            continue;
        }
        let n = len as usize / core::mem::size_of::<libc::Elf64_Rela>();
        // SAFETY: the module's relocation table, mapped.
        let relocs = unsafe { core::slice::from_raw_parts(start as *const libc::Elf64_Rela, n) };
        for r in relocs {
            let kind = r.r_info & 0xffff_ffff;
            if kind != R_X86_64_JUMP_SLOT && kind != R_X86_64_GLOB_DAT {
                continue;
            }
            let sym = (r.r_info >> 32) as usize;
            // SAFETY: the symbol the relocation names, in the mapped
            // dynamic symbol table, and its name in the string table.
            let sym_name = unsafe {
                let s = &*(symtab as *const libc::Elf64_Sym).add(sym);
                core::ffi::CStr::from_ptr((strtab + u64::from(s.st_name)) as *const c_char)
            }
            .to_bytes();
            let Some(&(_, hook)) = st.table.iter().find(|(n, _)| *n == sym_name) else {
                continue;
            };
            let slot = (base + r.r_offset) as usize;
            // SAFETY: a relocated slot of the module: aligned, mapped.
            let cell = unsafe { AtomicUsize::from_ptr(slot as *mut usize) };
            let now = cell.load(Acquire);
            let want = match st.pass {
                Pass::Patch => {
                    if now == hook {
                        continue;
                    }
                    if !is_own {
                        st.slots.insert(slot, (now, base));
                    }
                    if !is_own && !is_libc && matches!(sym_name, b"malloc" | b"free") {
                        st.allocator_slots += 1;
                    }
                    hook
                }
                Pass::Restore => match st.slots.get(&slot) {
                    Some(&(orig, b)) if b == base && now == hook => orig,
                    _ => continue,
                },
            };
            let ro = relro.is_some_and(|(lo, hi)| slot >= lo && slot < hi);
            let page = slot & !(st.page - 1);
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            // SAFETY: mprotect of the module's own RELRO page, read-only
            // again right after; the raw call, not the hook.
            let opened =
                !ro || unsafe { libc::syscall(libc::SYS_mprotect, page, st.page, rw) } == 0;
            if !opened {
                continue;
            }
            cell.store(want, Release);
            if ro {
                // SAFETY: as above.
                unsafe { libc::syscall(libc::SYS_mprotect, page, st.page, libc::PROT_READ) };
            }
        }
    }
}

/// Patches the modules loaded since the last pass (the `dlopen` hook, and
/// the writer when the loader's counters moved).
pub(crate) fn patch_new_modules() {
    if !attached() {
        return;
    }
    let now = crate::unwind::dl_counters();
    let mut at = PATCHED_AT.lock().unwrap_or_else(|e| e.into_inner());
    if *at == now {
        return;
    }
    *at = now;
    drop(at);
    pass(Pass::Patch);
}

/// Puts every patched slot back (not the agent's own).
fn unhook() {
    pass(Pass::Restore);
}

/// Appends one message to the ring, waiting while vmmap takes what is
/// there; dropped (and counted) when vmmap stopped taking.
pub(crate) fn push(parts: &[&[u8]]) {
    let (Some(head), Some(tail), Some(lost)) =
        (field(wire::HEAD), field(wire::TAIL), field(wire::LOST))
    else {
        return;
    };
    let ring = RING.load(Acquire);
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let need = (wire::FRAME_HEADER + total) as u64;
    if need > RING_LEN as u64 || total > u32::MAX as usize {
        lost.fetch_add(need, Relaxed);
        return;
    }
    let h = head.load(Relaxed);
    let mut waited = 0;
    while h + need - tail.load(Acquire) > RING_LEN as u64 {
        if waited >= HEARTBEAT_MS || vmmap_gone() {
            lost.fetch_add(need, Relaxed);
            return;
        }
        sys::sleep_ms(1);
        waited += 1;
    }
    let mut at = h;
    let len = (total as u32).to_le_bytes();
    for p in core::iter::once(&len[..]).chain(parts.iter().copied()) {
        // Up to the ring's end, then the rest from its start: two copies
        // at most (a message is never longer than the ring).
        let pos = at as usize & (RING_LEN - 1);
        let first = p.len().min(RING_LEN - pos);
        // SAFETY: the ring is RING_LEN bytes of ours; pos + first and
        // p.len() - first are within it (p.len() <= RING_LEN, checked
        // above through `need`), and the message's bytes are not in it.
        unsafe {
            core::ptr::copy_nonoverlapping(p.as_ptr(), ring.add(pos), first);
            core::ptr::copy_nonoverlapping(p.as_ptr().add(first), ring, p.len() - first);
        }
        at += p.len() as u64;
    }
    head.store(at, Release);
}

/// vmmap's heartbeat, and when it last moved.
static BEAT: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// Whether vmmap stopped bumping its heartbeat for [`HEARTBEAT_MS`].
fn vmmap_gone() -> bool {
    let Some(hb) = field(wire::HEARTBEAT) else {
        return true;
    };
    let now = sys::clock_ns(libc::CLOCK_MONOTONIC);
    let v = hb.load(Acquire);
    let mut beat = BEAT.lock().unwrap_or_else(|e| e.into_inner());
    if beat.0 != v || beat.1 == 0 {
        *beat = (v, now);
        return false;
    }
    now - beat.1 > HEARTBEAT_MS * 1_000_000
}

/// Called by the writer on every pass: whether to detach now (vmmap asked,
/// or is gone). Patches modules loaded meanwhile.
pub(crate) fn writer_pass() -> bool {
    if !attached() {
        return false;
    }
    let asked = field(wire::REQUEST).is_some_and(|r| r.load(Acquire) == wire::DETACH);
    if asked || vmmap_gone() {
        // Recording stops first, then the hooks go: restoring the slots
        // one after the other while still recording would let a thread's
        // malloc be recorded after its free went by unrecorded. Then the
        // writer writes what was.
        crate::ACTIVE.store(false, SeqCst);
        unhook();
        return true;
    }
    patch_new_modules();
    false
}

/// The writer has written its END message and stops.
pub(crate) fn writer_done() {
    if ATTACHED.swap(false, SeqCst) {
        if let Some(s) = field(wire::STATE) {
            s.store(wire::FINISHED, Release);
        }
    }
}

/// The process is exiting and the writer has stopped: waits (at most
/// `ms`) for vmmap to take what is left in the ring, END included, so
/// that the file of a process that exits while attached is complete.
pub(crate) fn wait_drained(ms: u64) {
    let (Some(head), Some(tail)) = (field(wire::HEAD), field(wire::TAIL)) else {
        return;
    };
    for _ in 0..ms {
        if tail.load(Acquire) >= head.load(Acquire) || vmmap_gone() {
            return;
        }
        sys::sleep_ms(1);
    }
}

/// After the END message: once vmmap has taken it (or is gone), the ring's
/// pages go back to the kernel, and so does the free end of the agent's
/// heap, which the compressor held (the writer's buffers are mappings of
/// their own, gone with its state): a detached process keeps the agent
/// loaded, and the full ring alone held 8 MiB of its resident memory for
/// good. The control page stays, for the next attach.
pub(crate) fn release_memory() {
    // As long as a process's exit waits for the same ([`crate::shutdown`]):
    // a vmmap that was killed must not hold the exit longer.
    wait_drained(1000);
    let ring = RING.load(Acquire);
    if !ring.is_null() {
        // SAFETY: the ring is our own mapping, and nothing writes to it
        // now: the writer is the only one that does, and it is here.
        unsafe {
            libc::syscall(
                libc::SYS_madvise,
                ring as usize,
                RING_LEN,
                libc::MADV_DONTNEED,
            )
        };
    }
    crate::heap::trim();
}

/// The agent's own memory of attach mode, for AGENT_MEMORY.
pub(crate) fn own_memory(out: &mut Vec<(u64, u64)>) {
    let (c, r) = (CONTROL.load(Relaxed), RING.load(Relaxed));
    if !c.is_null() {
        out.push((c as u64, 4096));
    }
    if !r.is_null() {
        out.push((r as u64, RING_LEN as u64));
    }
}

/// Starts tracing a running process: the agent was just loaded with
/// `dlopen` by vmmap (through ptrace, on one of the process's threads).
/// `config` is a C string of space-separated settings (`unwind=fp`).
/// Returns the address of the control block (`vmmap_wire::attach`), or a
/// negative `vmmap_wire::attach::refusal`.
///
/// # Safety
/// `config` is null or a C string. Called once at a time (vmmap does).
#[no_mangle]
pub unsafe extern "C" fn vmmap_agent_attach(config: *const c_char) -> i64 {
    // What glibc allocates on this thread meanwhile (a thread-local
    // destructor's entry, say) is the program's: glibc frees it with its
    // own free, after the hooks are gone, so it must not come from the
    // agent's heap. The agent's own Rust allocations do.
    // SAFETY: per the contract.
    unsafe { attach(config) }
}

unsafe fn attach(config: *const c_char) -> i64 {
    if crate::ACTIVE.load(SeqCst) || attached() || crate::config().is_some() {
        return wire::refusal::ALREADY;
    }
    let cfg = if config.is_null() {
        &[][..]
    } else {
        // SAFETY: per the contract.
        unsafe { core::ffi::CStr::from_ptr(config) }.to_bytes()
    };
    let mut fp = false;
    for word in cfg.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        match word {
            b"unwind=fp" => fp = true,
            b"unwind=dwarf" => fp = false,
            _ => return wire::refusal::CONFIG,
        }
    }
    crate::FP.store(fp, Relaxed);
    // vmmap judged the process's seccomp filters, if any, to let the
    // agent's calls through: an agent quiet since the program filtered
    // itself may work again.
    crate::QUIET.store(false, SeqCst);
    crate::next::resolve_attached();
    if CONTROL.load(Relaxed).is_null() {
        let c = sys::map_anon(4096);
        let r = sys::map_anon(RING_LEN);
        if c.is_null() || r.is_null() {
            for (m, len) in [(c, 4096), (r, RING_LEN)] {
                if !m.is_null() {
                    // SAFETY: our own mapping, just made, used by nothing.
                    unsafe { libc::syscall(libc::SYS_munmap, m, len) };
                }
            }
            return wire::refusal::MEMORY;
        }
        sys::name_agent_memory(c as usize, 4096);
        sys::name_agent_memory(r as usize, RING_LEN);
        // SAFETY: a fresh page of ours.
        unsafe {
            core::ptr::copy_nonoverlapping(wire::MAGIC.as_ptr(), c, 8);
            *(c.add(wire::RING) as *mut u64) = r as u64;
            *(c.add(wire::RING_LEN) as *mut u64) = RING_LEN as u64;
        }
        RING.store(r, Release);
        CONTROL.store(c, Release);
    }
    for f in [
        wire::HEAD,
        wire::TAIL,
        wire::REQUEST,
        wire::STATE,
        wire::LOST,
        wire::HEARTBEAT,
    ] {
        if let Some(f) = field(f) {
            f.store(0, SeqCst);
        }
    }
    *BEAT.lock().unwrap_or_else(|e| e.into_inner()) = (0, 0);
    if !crate::attach_key() {
        return wire::refusal::KEY;
    }
    // A new session: blocks of threads from an earlier one start new
    // streams, buffers left from it are dropped.
    crate::SESSION.fetch_add(1, SeqCst);
    crate::block::drop_leftovers();
    crate::thread::setup_bias();
    ATTACHED.store(true, SeqCst);
    // The hooks go in first, with recording still off: the writer's
    // allocations (zstd's) then reach the agent's heap through them.
    *PATCHED_AT.lock().unwrap_or_else(|e| e.into_inner()) = crate::unwind::dl_counters();
    if pass(Pass::Patch) == 0 {
        unhook();
        ATTACHED.store(false, SeqCst);
        return wire::refusal::NO_ALLOCATOR;
    }
    crate::PID.store(sys::getpid(), Relaxed);
    crate::unwind::rebuild_modules();
    // The writer sends HELLO first thing: reading /proc/self/exe here would
    // take a descriptor in the program's table.
    if !crate::writer::start() {
        unhook();
        ATTACHED.store(false, SeqCst);
        return match crate::writer::START_ERRNO.load(Relaxed) {
            0 => wire::refusal::START,
            errno => wire::refusal::thread(errno),
        };
    }
    if let Some(s) = field(wire::STATE) {
        s.store(wire::RUNNING, Release);
    }
    crate::ACTIVE.store(true, Release);
    CONTROL.load(Relaxed) as i64
}

/// Detaches from inside the process (the same as vmmap's request): asks
/// the writer and waits for it, at most two seconds. Returns 0 when
/// detached, -1 when not attached or the writer did not finish in time.
#[no_mangle]
pub extern "C" fn vmmap_agent_detach() -> i64 {
    let Some(req) = field(wire::REQUEST) else {
        return -1;
    };
    if !attached() {
        return -1;
    }
    req.store(wire::DETACH, SeqCst);
    for _ in 0..2000 {
        if !attached() {
            return 0;
        }
        sys::sleep_ms(1);
    }
    -1
}
