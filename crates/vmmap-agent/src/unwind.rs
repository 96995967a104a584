//! Call stacks from `.eh_frame`, with a per-thread cache of unwind rules.
//!
//! Written by hand rather than with framehop: the hot path here is one
//! hash probe and two loads per frame, the design libunwind's x86_64
//! "fast trace" uses, because the budget is a few nanoseconds a frame
//! (see `bench/trace.sh`). A cache miss parses the rule from the module's
//! `.eh_frame_hdr` with gimli, once per return address per thread; frames
//! whose rules are not a register plus an offset (signal trampolines, PLT
//! stubs) end the walk, which is then marked truncated.

use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, NativeEndian, ParsedEhFrameHdr, Register,
    RegisterRule, UnwindContext, UnwindContextStorage, UnwindSection, UnwindTableRow, X86_64,
};
use vmmap_wire::MAX_FRAMES;

use crate::block::Block;
use crate::memo::{
    finish, mix, FrameRecord, Source, CFA_RBP, KEEP_AFTER, KEEP_SHORT, LOADS_BP, OWN, TRUNCATED,
};

type Slice = gimli::EndianSlice<'static, NativeEndian>;

/// Slots in the rule cache (a power of two) of the first lanes
/// ([`crate::block::FULL_LANES`]).
pub const RULE_SLOTS: usize = 4096;
/// The same for later lanes (8 KiB instead of 128 KiB): a miss only
/// costs a lookup in `.eh_frame_hdr`.
pub const SMALL_RULE_SLOTS: usize = 256;

/// One cached rule, for a return address (the rule itself is the call
/// instruction's, one byte before) or for the walk's first, exact address
/// (which no return address can equal: it follows no call). Offsets are
/// from the base register, not from the CFA, so that finding the return
/// address is one add after the rule's load: the walk is bound by the
/// latency of that chain (load a return address, load its rule, load the
/// next return address), not by its instruction count.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct RuleSlot {
    addr: u64,
    /// CFA = base + `cfa_off`.
    cfa_off: i32,
    /// The return address is at base + `ra_off`.
    ra_off: i32,
    /// The caller's rbp is at base + `rbp_off` ([`F_RBP`]).
    rbp_off: i32,
    flags: u32,
}

const F_VALID: u32 = 1;
const F_CFA_RBP: u32 = 2;
const F_RBP: u32 = 16;
const F_ROOT: u32 = 8;

impl RuleSlot {
    /// Unpacks a rule from [`compute_rule`] into the form the walk reads
    /// with plain loads.
    fn new(addr: u64, rule: u64) -> RuleSlot {
        let cfa_off = rule as u32 as i32;
        let rbp_rel = (rule >> 32) as u16 as i16;
        let ra_rel = (rule >> 48) as u8 as i8;
        let flags = (rule >> 56) as u8 as u32;
        let (Some(ra_off), Some(rbp_off)) = (
            cfa_off.checked_add(i32::from(ra_rel)),
            cfa_off.checked_add(i32::from(rbp_rel)),
        ) else {
            // Offsets past i32: no such frame is walked.
            return RuleSlot {
                addr,
                cfa_off: 0,
                ra_off: 0,
                rbp_off: 0,
                flags: 0,
            };
        };
        RuleSlot {
            addr,
            cfa_off,
            ra_off,
            rbp_off,
            flags: flags | if rbp_rel != 0 { F_RBP } else { 0 },
        }
    }
}

/// A direct-mapped cache from return address to unwind rule.
#[repr(C, align(32))]
pub struct RuleCache {
    generation: u64,
    /// Slots - 1.
    mask: usize,
    /// The slots, right after this header in the same mapping.
    slots: *mut RuleSlot,
}

impl RuleCache {
    /// Bytes of a mapping for a cache of `slots` (a power of two) slots.
    pub const fn bytes(slots: usize) -> usize {
        core::mem::size_of::<RuleCache>() + slots * core::mem::size_of::<RuleSlot>()
    }

    /// Sets up an empty cache in a fresh zeroed mapping.
    ///
    /// # Safety
    /// `at` is valid for [`RuleCache::bytes`]`(slots)` bytes, zeroed, and
    /// not in use.
    pub unsafe fn init(at: *mut RuleCache, slots: usize) {
        // SAFETY: per the contract; the header's size is a multiple of a
        // slot's alignment (both 32).
        unsafe {
            (*at).mask = slots - 1;
            (*at).slots = at.add(1).cast::<RuleSlot>();
        }
    }

    /// The slot for a return address: its low bits, with no hashing,
    /// because this sits on the walk's critical path (load a return
    /// address, find its rule, load the next return address). Return
    /// addresses differ in their low bits.
    #[inline(always)]
    fn slot(&mut self, addr: u64) -> &mut RuleSlot {
        // SAFETY: the index is at most `mask`, inside the slots (`init`).
        unsafe { &mut *self.slots.add(addr as usize & self.mask) }
    }

    /// Empties the cache.
    pub fn clear(&mut self) {
        for i in 0..=self.mask {
            // SAFETY: i <= mask, inside the slots.
            unsafe { *self.slots.add(i) = RuleSlot::new(0, 0) };
        }

        self.start();
    }

    /// Makes an empty (all-zero) cache current for today's module list.
    pub fn start(&mut self) {
        self.generation = MODULE_GENERATION.load(Relaxed);
    }
}

// Packed rule: CFA offset (i32, bits 0-31), saved-rbp offset from the CFA
// (i16, bits 32-47; 0 = rbp unchanged), return-address offset from the CFA
// (i8, bits 48-55), flags (bits 56-63).
const R_VALID: u64 = 1 << 56;
const R_CFA_RBP: u64 = 1 << 57;
const R_END: u64 = 1 << 58;
/// No caller: the return address is undefined (`_start`, `clone3`), so
/// the walk is complete.
const R_ROOT: u64 = 1 << 59;

fn pack(cfa_rbp: bool, cfa_off: i32, rbp_off: i16, ra_off: i8) -> u64 {
    R_VALID
        | if cfa_rbp { R_CFA_RBP } else { 0 }
        | (cfa_off as u32 as u64)
        | ((rbp_off as u16 as u64) << 32)
        | ((ra_off as u8 as u64) << 48)
}

/// One loaded object with unwind information.
pub struct Module {
    /// Executable range (absolute).
    pub text_lo: u64,
    /// See `text_lo`.
    pub text_hi: u64,
    bases: BaseAddresses,
    eh_frame: EhFrame<Slice>,
    hdr: ParsedEhFrameHdr<Slice>,
}

/// The modules at one moment, sorted by `text_lo`.
pub struct ModuleList {
    /// Bumped on every rebuild.
    pub generation: u64,
    /// `dl_iterate_phdr`'s adds and subs counters when it was built.
    pub adds: u64,
    /// See `adds`.
    pub subs: u64,
    /// The modules.
    pub modules: Vec<Module>,
}

static MODULES: AtomicPtr<ModuleList> = AtomicPtr::new(core::ptr::null_mut());
/// Generation of the current module list.
pub static MODULE_GENERATION: AtomicU64 = AtomicU64::new(0);
static AGENT_LO: AtomicU64 = AtomicU64::new(0);
static AGENT_HI: AtomicU64 = AtomicU64::new(0);

/// The current module list (null before the first build).
pub fn modules() -> *const ModuleList {
    MODULES.load(Acquire)
}

/// Calls to `dlopen`/`dlclose` under way. While one is, a walk that meets
/// an address in no known module (a constructor of the library being
/// loaded) rebuilds the module list at once, so that the constructor's
/// allocations keep the whole stack down to the `dlopen` call: the
/// loader runs constructors holding its recursive load lock, not the
/// lock `dl_iterate_phdr` takes, and the rebuild takes no lock of the
/// agent's that a thread could hold while waiting for the loader.
pub static IN_DLOPEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// A walk met an address in no known module: the writer thread checks
/// whether modules were loaded and rebuilds the list.
pub static REBUILD_WANTED: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Called by the writer thread (never from a hook): rebuilds the module
/// list if a walk asked and the loader's counters moved.
pub fn rebuild_if_wanted() {
    if !REBUILD_WANTED.swap(false, Relaxed) {
        return;
    }
    let list = modules();
    // SAFETY: published lists are never freed.
    if list.is_null() || dl_counters() != unsafe { ((*list).adds, (*list).subs) } {
        rebuild_modules();
    }
}

/// `dl_iterate_phdr`'s (adds, subs) now.
pub fn dl_counters() -> (u64, u64) {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut libc::c_void,
    ) -> i32 {
        let out = data as *mut (u64, u64);
        if size >= core::mem::size_of::<libc::dl_phdr_info>() {
            // SAFETY: the loader passes a valid info of at least `size` bytes.
            unsafe { *out = ((*info).dlpi_adds, (*info).dlpi_subs) };
        }
        1
    }
    let mut out = (0u64, 0u64);
    // SAFETY: the callback only writes to `out`.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut out as *mut _ as *mut libc::c_void) };
    out
}

/// Rebuilds the module list from `dl_iterate_phdr` and publishes it. Old
/// lists are leaked on purpose: another thread may be reading one, and
/// they change only on `dlopen`/`dlclose`.
pub fn rebuild_modules() {
    struct Acc {
        modules: Vec<Module>,
        adds: u64,
        subs: u64,
    }
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut libc::c_void,
    ) -> i32 {
        // SAFETY: data is our Acc; info is valid for the call.
        let (acc, info) = unsafe { (&mut *(data as *mut Acc), &*info) };
        if size >= core::mem::size_of::<libc::dl_phdr_info>() {
            acc.adds = info.dlpi_adds;
            acc.subs = info.dlpi_subs;
        }
        // SAFETY: as above.
        if let Some(m) = unsafe { module_from(info) } {
            acc.modules.push(m);
        }
        0
    }
    let mut acc = Acc {
        modules: Vec::new(),
        adds: 0,
        subs: 0,
    };
    // SAFETY: the callback reads loader-provided data only.
    unsafe { crate::sys::iterate_phdr(Some(cb), &mut acc as *mut _ as *mut libc::c_void) };
    acc.modules.sort_by_key(|m| m.text_lo);
    let generation = MODULE_GENERATION.load(Relaxed) + 1;
    let list = Box::new(ModuleList {
        generation,
        adds: acc.adds,
        subs: acc.subs,
        modules: acc.modules,
    });
    let here = rebuild_modules as *const () as usize as u64;
    if let Some(m) = list
        .modules
        .iter()
        .find(|m| m.text_lo <= here && here < m.text_hi)
    {
        AGENT_LO.store(m.text_lo, Relaxed);
        AGENT_HI.store(m.text_hi, Relaxed);
    }
    MODULES.store(Box::into_raw(list), Release);
    MODULE_GENERATION.store(generation, Release);
}

/// Builds a module from its program headers, if it has `.eh_frame_hdr`
/// with a search table.
///
/// # Safety
/// `info` must describe a loaded object (its headers and segments mapped).
unsafe fn module_from(info: &libc::dl_phdr_info) -> Option<Module> {
    if info.dlpi_phdr.is_null() {
        return None;
    }
    // SAFETY: the loader guarantees dlpi_phnum headers at dlpi_phdr.
    let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let base = info.dlpi_addr;
    let text = phdrs
        .iter()
        .filter(|p| p.p_type == libc::PT_LOAD && p.p_flags & libc::PF_X != 0)
        .map(|p| (base + p.p_vaddr, base + p.p_vaddr + p.p_memsz))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))?;
    let hdr_ph = phdrs.iter().find(|p| p.p_type == libc::PT_GNU_EH_FRAME)?;
    let hdr_addr = base + hdr_ph.p_vaddr;
    // SAFETY: PT_GNU_EH_FRAME lies inside a mapped PT_LOAD.
    let hdr_bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(hdr_addr as *const u8, hdr_ph.p_memsz as usize) };
    let bases = BaseAddresses::default()
        .set_eh_frame_hdr(hdr_addr)
        .set_text(text.0);
    let hdr = EhFrameHdr::new(hdr_bytes, NativeEndian)
        .parse(&bases, 8)
        .ok()?;
    let eh_frame_addr = match hdr.eh_frame_ptr() {
        gimli::Pointer::Direct(a) => a,
        gimli::Pointer::Indirect(_) => return None,
    };
    hdr.table()?;
    // .eh_frame runs to the end of the segment that holds it at most.
    let seg_end = phdrs
        .iter()
        .filter(|p| p.p_type == libc::PT_LOAD)
        .map(|p| (base + p.p_vaddr, base + p.p_vaddr + p.p_memsz))
        .find(|(lo, hi)| *lo <= eh_frame_addr && eh_frame_addr < *hi)?
        .1;
    // SAFETY: the range lies inside a mapped segment of a loaded object.
    let eh_bytes: &'static [u8] = unsafe {
        core::slice::from_raw_parts(
            eh_frame_addr as *const u8,
            (seg_end - eh_frame_addr) as usize,
        )
    };
    let bases = bases.set_eh_frame(eh_frame_addr);
    Some(Module {
        text_lo: text.0,
        text_hi: text.1,
        bases,
        eh_frame: EhFrame::new(eh_bytes, NativeEndian),
        hdr,
    })
}

/// Storage for gimli's unwind context inside the agent's own per-thread
/// mapping. gimli's default keeps it on the heap and allocates on every
/// rule-cache miss: a signal handler's `mmap` that missed the cache called
/// malloc while the thread it interrupted held glibc's arena lock inside
/// `free`, and the process hung. 32 rules cover x86-64's registers; a
/// frame description with more ends the walk (the stack is truncated).
pub struct FixedStorage;

impl UnwindContextStorage<usize> for FixedStorage {
    type Rules = [(Register, RegisterRule<usize>); 32];
    type Stack = [UnwindTableRow<usize, Self>; 4];
}

/// The unwind context each thread's block owns.
pub type Context = UnwindContext<usize, FixedStorage>;

/// A fresh context, written into `at` (the block's mapping for it).
///
/// # Safety
/// `at` must be valid for writing a `Context` and not in use.
pub unsafe fn init_context(at: *mut Context) {
    // SAFETY: per the contract.
    unsafe { at.write(Context::new_in()) };
}

fn find_module(list: &ModuleList, addr: u64) -> Option<&Module> {
    let i = list.modules.partition_point(|m| m.text_lo <= addr);
    let m = list.modules.get(i.checked_sub(1)?)?;
    (addr < m.text_hi).then_some(m)
}

/// Computes the packed rule for `addr` (already adjusted to lie inside the
/// call instruction for caller frames), with the thread's own context: no
/// allocation and no loader lock (except building the very first module
/// list).
/// Only ever called with the reentrancy guard held.
#[cold]
fn compute_rule(addr: u64, ctx: &mut Context) -> u64 {
    let mut list = modules();
    if list.is_null() {
        rebuild_modules();
        list = modules();
    }
    // SAFETY: published lists are never freed.
    let mut found = find_module(unsafe { &*list }, addr);
    if found.is_none() && IN_DLOPEN.load(Relaxed) > 0 {
        rebuild_modules();
        list = modules();
        // SAFETY: as above.
        found = find_module(unsafe { &*list }, addr);
    }
    let Some(m) = found else {
        // Perhaps a module loaded without the hooked dlopen (glibc's own
        // NSS or iconv loads). Checking means dl_iterate_phdr, which takes
        // the loader's lock, and rebuilding allocates: neither is safe in
        // a signal handler, so the writer thread does it, and the new
        // generation clears the rule caches (this walk stops here).
        REBUILD_WANTED.store(true, Relaxed);
        return R_END;
    };
    let Some(table) = m.hdr.table() else {
        return R_END;
    };
    let Ok(row) = table.unwind_info_for_address(&m.eh_frame, &m.bases, ctx, addr, |s, b, o| {
        s.cie_from_offset(b, o)
    }) else {
        return R_END;
    };
    let (cfa_rbp, cfa_off) = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RSP => {
            (false, *offset)
        }
        CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RBP => {
            (true, *offset)
        }
        _ => return R_END,
    };
    let ra_off = match row.register(X86_64::RA) {
        RegisterRule::Offset(o) if (-128..0).contains(&o) => o as i8,
        RegisterRule::Undefined => return R_ROOT,
        _ => return R_END,
    };
    let rbp_off = match row.register(X86_64::RBP) {
        RegisterRule::Offset(o) if (i16::MIN as i64..0).contains(&o) => o as i16,
        RegisterRule::Undefined | RegisterRule::SameValue => 0,
        _ => return R_END,
    };
    let Ok(cfa_off) = i32::try_from(cfa_off) else {
        return R_END;
    };
    pack(cfa_rbp, cfa_off, rbp_off, ra_off)
}

/// Reads one aligned word of the thread's stack, or None outside it.
#[inline(always)]
fn read(b: &Block, addr: u64) -> Option<u64> {
    if addr & 7 != 0 || addr < b.stack_lo as u64 || addr + 8 > b.stack_hi as u64 {
        return None;
    }
    // SAFETY: the address is aligned and inside this thread's own stack.
    Some(unsafe { core::ptr::read(addr as *const u64) })
}

/// Result of one unwind.
pub struct Stack {
    /// Frame count.
    pub n: usize,
    /// Hash of the frames.
    pub hash: u64,
    /// The walk stopped early.
    pub truncated: bool,
    /// Where the frames are ([`memo::materialize`] copies them out).
    pub src: Source,
}

/// Scratch records a walk may fill: every recorded frame plus a few of
/// the agent's own further out (its thread-start trampoline).
pub const SCRATCH: usize = MAX_FRAMES + 8;

/// Unwinds the calling thread's stack from the given registers, skipping
/// the agent's own frames. `ip` is an exact address, or with `caller` a
/// return address (a hook's caller, read at the hook's entry: no frame of
/// the agent's to walk). Frames are return addresses as found (the
/// symboliser looks up `addr - 1`). The walk stops at the first frame it
/// shares with a stored walk (`memo`), and is stored itself when it found
/// enough new frames.
#[inline(always)]
pub fn walk(b: &mut Block, mut ip: u64, mut sp: u64, mut bp: u64, caller: bool, fp: bool) -> Stack {
    // SAFETY: the rule cache and the memo are this block's own mappings.
    let (rules, memo) = unsafe { (&mut *b.rules, &mut *b.memo) };
    if rules.generation != MODULE_GENERATION.load(Relaxed) {
        rules.clear();
        memo.clear();
    }
    let (alo, ahi) = (AGENT_LO.load(Relaxed), AGENT_HI.load(Relaxed));
    let hi = b.stack_hi as u64;
    if sp >= hi {
        // On an alternate signal stack, or bounds unknown: no safe walk.
        return Stack {
            n: 0,
            hash: finish(0, 0),
            truncated: true,
            src: Source::Frames,
        };
    }
    if fp {
        if caller {
            b.frames[0] = ip;
            return walk_fp(b, 1, mix(0, ip), bp);
        }
        return walk_fp_after_agent(b, ip, sp, bp, hi, alo, ahi);
    }
    // Records from the first frame that is not the agent's: `m` of them,
    // `n` recorded frames among them.
    let mut m = 0usize;
    let mut n = 0usize;
    let mut found = None;
    // The first frame's rule is for its exact address; a caller's for the
    // call instruction, just before the return address.
    let mut before = u64::from(caller);
    let ends = loop {
        let own = ip >= alo && ip < ahi;
        if !own || m > 0 {
            if m == SCRATCH {
                break TRUNCATED | MAX;
            }
            if !own {
                if let Some(k) = memo.find(ip, sp, bp, MAX_FRAMES - n) {
                    found = Some(k);
                    break 0;
                }
                if n == MAX_FRAMES {
                    break TRUNCATED | MAX;
                }
                n += 1;
            }
            b.scratch[m] = FrameRecord::new(ip, sp, bp, if own { OWN } else { 0 });
            m += 1;
        }
        let slot = rules.slot(ip);
        if slot.addr != ip {
            // SAFETY: the context is this block's own mapping, used only
            // by its thread inside the reentrancy guard.
            let rule = compute_rule(ip - before, unsafe { &mut *b.unwind });
            *slot = RuleSlot::new(ip, rule);
        }
        let r = *slot;
        if r.flags & F_VALID == 0 {
            break if r.flags & F_ROOT == 0 { TRUNCATED } else { 0 };
        }
        let base = if r.flags & F_CFA_RBP != 0 { bp } else { sp };
        let cfa = base.wrapping_add(r.cfa_off as i64 as u64);
        // sp < cfa <= hi (one compare): the caller's frame is above ours
        // and inside the stack, so every read below lies in [sp, hi).
        let room = hi - sp;
        if cfa.wrapping_sub(sp).wrapping_sub(1) >= room {
            break TRUNCATED;
        }
        let ra_at = base.wrapping_add(r.ra_off as i64 as u64);
        if ra_at.wrapping_sub(sp) > room - 8 {
            break TRUNCATED;
        }
        // SAFETY: inside this thread's own stack, checked above.
        let ra = unsafe { core::ptr::read_unaligned(ra_at as *const u64) };
        if let Some(rec) = m.checked_sub(1).map(|i| &mut b.scratch[i]) {
            rec.ra_at = ra_at;
            rec.ra = ra;
            if r.flags & F_CFA_RBP != 0 {
                rec.flags |= CFA_RBP;
            }
        }
        if r.flags & F_RBP != 0 {
            let at = base.wrapping_add(r.rbp_off as i64 as u64);
            if at.wrapping_sub(sp) > room - 8 {
                break TRUNCATED;
            }
            // SAFETY: as above.
            bp = unsafe { core::ptr::read_unaligned(at as *const u64) };
            if let Some(rec) = m.checked_sub(1).map(|i| &mut b.scratch[i]) {
                rec.bp_at = at;
                rec.bp_val = bp;
                rec.flags |= LOADS_BP;
            }
        }
        sp = cfa;
        ip = ra;
        if ip == 0 {
            // The outermost frame (_start's caller is 0).
            break 0;
        }
        before = 1;
    };
    let new = &b.scratch[..m];
    if let Some(k) = found {
        let out = *memo.record(k);
        let (total, truncated) = (n + out.frames as usize, out.flags & TRUNCATED != 0);
        if n >= KEEP_AFTER
            || (n > 0 && n + out.left as usize <= KEEP_SHORT && memo.again(new[0].ip, new[0].sp))
        {
            if let Some(pos) = memo.keep(new, Some(k), 0) {
                return Stack {
                    n: total,
                    hash: finish(memo.record(pos).hash, total),
                    truncated,
                    src: Source::Stored { k: pos },
                };
            }
        }
        let mut h = out.hash;
        for r in new.iter().rev() {
            if r.flags & OWN == 0 {
                h = mix(h, r.ip);
            }
        }
        return Stack {
            n: total,
            hash: finish(h, total),
            truncated,
            src: Source::Walked { m, k: found },
        };
    }
    if ends & MAX == 0 {
        if let Some(pos) = memo.keep(new, None, ends) {
            return Stack {
                n,
                hash: finish(memo.record(pos).hash, n),
                truncated: ends & TRUNCATED != 0,
                src: Source::Stored { k: pos },
            };
        }
    }
    let mut h = 0;
    for r in new.iter().rev() {
        if r.flags & OWN == 0 {
            h = mix(h, r.ip);
        }
    }
    Stack {
        n,
        hash: finish(h, n),
        truncated: ends & TRUNCATED != 0,
        src: Source::Walked { m, k: None },
    }
}

/// How a walk ended: at the frame limit (the walk is not stored).
const MAX: u32 = 1 << 31;

/// Frame-pointer mode: the agent's own frames by rules (the agent is not
/// built with frame pointers), then the rbp chain.
fn walk_fp_after_agent(
    b: &mut Block,
    mut ip: u64,
    mut sp: u64,
    mut bp: u64,
    hi: u64,
    alo: u64,
    ahi: u64,
) -> Stack {
    // SAFETY: the rule cache is this block's own mapping.
    let rules = unsafe { &mut *b.rules };
    let mut before = 0;
    for _ in 0..16 {
        if ip < alo || ip >= ahi {
            b.frames[0] = ip;
            return walk_fp(b, 1, mix(0, ip), bp);
        }
        let slot = rules.slot(ip);
        if slot.addr != ip {
            // SAFETY: the context is this block's own mapping, used only
            // by its thread inside the reentrancy guard.
            let rule = compute_rule(ip.wrapping_sub(before), unsafe { &mut *b.unwind });
            *slot = RuleSlot::new(ip, rule);
        }
        let r = *slot;
        if r.flags & F_VALID == 0 {
            break;
        }
        let base = if r.flags & F_CFA_RBP != 0 { bp } else { sp };
        let cfa = base.wrapping_add(r.cfa_off as i64 as u64);
        let room = hi - sp;
        let ra_at = base.wrapping_add(r.ra_off as i64 as u64);
        if cfa.wrapping_sub(sp).wrapping_sub(1) >= room || ra_at.wrapping_sub(sp) > room - 8 {
            break;
        }
        // SAFETY: inside this thread's own stack, checked above.
        let ra = unsafe { core::ptr::read_unaligned(ra_at as *const u64) };
        if r.flags & F_RBP != 0 {
            let at = base.wrapping_add(r.rbp_off as i64 as u64);
            if at.wrapping_sub(sp) > room - 8 {
                break;
            }
            // SAFETY: as above.
            bp = unsafe { core::ptr::read_unaligned(at as *const u64) };
        }
        sp = cfa;
        ip = ra;
        before = 1;
    }
    Stack {
        n: 0,
        hash: finish(0, 0),
        truncated: true,
        src: Source::Frames,
    }
}

/// Frame-pointer walk (`--unwind fp`), continuing after `n` frames: follows
/// the rbp chain. Only right when every function on the stack keeps a frame
/// pointer; each link must move up the stack.
fn walk_fp(b: &mut Block, mut n: usize, mut h: u64, mut bp: u64) -> Stack {
    let truncated = loop {
        let (Some(next_bp), Some(ra)) = (read(b, bp), read(b, bp.wrapping_add(8))) else {
            break false;
        };
        if ra == 0 {
            break false;
        }
        if n == MAX_FRAMES {
            break true;
        }
        b.frames[n] = ra;
        h = mix(h, ra);
        n += 1;
        if next_bp <= bp {
            break false;
        }
        bp = next_bp;
    };
    Stack {
        n,
        hash: finish(h, n),
        truncated,
        src: Source::Frames,
    }
}
