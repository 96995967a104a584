//! Go. The linker writes `.go.buildinfo` at the start of the data segment:
//! the 14-byte magic `\xff Go buildinf:`, the pointer size, a flags byte
//! (bit 1: strings inline, Go 1.18+), and from byte 32 the version as a
//! varint-prefixed string.
//!
//! The heap is made of 64 MiB arenas (`heapArenaBytes` on 64-bit) that
//! `mallocinit` asks for at hint addresses `i<<40 | 0x00c0<<32` (amd64,
//! arm64 and the other 64-bit ports but ios), growing upwards: the
//! committed arenas are `rw-p`, the reserved rest `---p`. Goroutine stacks
//! live in spans inside the arenas. Everything else the runtime maps
//! (arena metadata and heap bitmaps, span tables, the page allocator's
//! summaries and scavenger index, persistentalloc chunks) comes from
//! `sysAlloc`/`sysReserve` anywhere; Go 1.25+ names them
//! (`[anon: Go: …]`), older runtimes leave them plain.
//!
//! Goroutine stacks are found in the runtime's own list: `runtime.allgs`
//! (a slice of `*g`, its address from the executable's `.symtab`, or in
//! a stripped one the slice in `.bss` that only it can be) read from the
//! target's memory; every `g` starts with its `stack{lo, hi}`. The OS
//! threads' own stacks come from the list of Ms (`go_threads`).
//! The goroutine id (`goid`) and status sit at an offset that changed
//! with Go 1.23 (`syscallbp` was added before them); the offset is taken
//! only when it gives the main goroutine id 1 and every goroutine a
//! distinct id.

use std::borrow::Cow;
use std::collections::HashSet;

use super::{go_threads, mib, symbols, Claim, Claimer};
use crate::classify::Inspector;
use crate::model::{Confidence, MemoryType, Part, Region};

/// Go's smallest goroutine stack (`_StackMin`).
const STACK_MIN: u64 = 2048;
/// Most goroutines read (the list is read from another process).
const MAX_GS: u64 = 1 << 22;
/// The offset of `g.m` on 64-bit (fixed: see `go_threads`).
const G_M: usize = 48;
/// Bytes of a `g` read: up to `goid` at its latest offset.
const G_READ: usize = 168;
/// Offsets of `goid` on 64-bit: Go 1.17-1.22, then Go 1.23+. The status
/// (`atomicstatus`, a uint32) is 8 bytes before.
const GOID_AT: [usize; 2] = [152, 160];
/// `_Gdead`: an unused `g` kept for reuse.
const DEAD: u32 = 6;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const ARENA: u64 = 64 << 20;
/// The low 40 bits of every arena hint.
const HINT_LOW: u64 = 0x00c0 << 32;

/// The Go version in a buffer that starts with `.go.buildinfo`.
pub(super) fn buildinfo_version(b: &[u8]) -> Option<String> {
    if !b.starts_with(MAGIC) || b.len() < 33 {
        return None;
    }
    let flags = b[15];
    if flags & 2 == 0 {
        // Before Go 1.18 the version is behind a pointer: Go, version unknown.
        return Some("go (before 1.18)".into());
    }
    let mut c = vmmap_wire::Cursor::new(&b[32..]);
    let len = c.uvarint()?;
    let from = 32 + c.position();
    let s = b.get(from..from.checked_add(usize::try_from(len).ok()?)?)?;
    let v = std::str::from_utf8(s).ok()?;
    v.starts_with("go").then(|| v.to_string())
}

/// A goroutine's stack, from its `g`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Goroutine {
    lo: u64,
    hi: u64,
    id: Option<u64>,
    status: Option<u32>,
}

/// The goroutines read, or why there are none.
pub(super) type Goroutines = Result<Vec<Goroutine>, &'static str>;

/// Where the runtime's variables that vmmap reads are, at run time.
pub(super) struct Vars {
    /// `runtime.allgs`, the slice of every `*g`, or why it is unknown.
    allgs: Result<u64, &'static str>,
    /// Where the list of Ms is found, or why it cannot be.
    pub(super) ms: Result<go_threads::Roots, &'static str>,
}

/// Finds [`Vars`] in the executable whose first mapping is `exe`: one
/// read of its symbol table for all of them. A stripped executable still
/// has its section headers: the list of Ms is then looked for in `.bss`.
pub(super) fn runtime_vars(c: &Claimer<'_>, exe: usize, inspector: &mut dyn Inspector) -> Vars {
    let r = &c.regions[exe];
    let mut read = |offset: u64, buf: &mut [u8]| inspector.read_file_at(r, offset, buf);
    // A position-independent executable is linked at 0: its first
    // mapping says where it was loaded.
    let bias = if symbols::elf_type(&mut read) == Some(3) {
        c.regions
            .iter()
            .find(|m| m.inode == r.inode && m.dev_major == r.dev_major && m.offset == 0)
            .map_or(0, |m| m.start)
    } else {
        0
    };
    let at = |a: u64| a.wrapping_add(bias);
    let names: [&[u8]; 3] = [b"runtime.allgs", b"runtime.allm", b"runtime.m0"];
    let Some(values) = symbols::symbol_values(&mut read, &names) else {
        let mut read_len = |offset: u64, len: usize| {
            let mut b = vec![0u8; len];
            read(offset, &mut b).then_some(b)
        };
        let bss = crate::elf::sections(&mut read_len)
            .ok()
            .and_then(|s| s.into_iter().find(|s| s.name == ".bss" && s.size > 0));
        return Vars {
            allgs: Err(
                "the executable has no symbol table (stripped), so runtime.allgs cannot be found",
            ),
            ms: bss
                .map(|s| go_threads::Roots::Bss {
                    start: at(s.addr),
                    len: s.size,
                })
                .ok_or("the executable has neither a symbol table nor a .bss section"),
        };
    };
    Vars {
        allgs: values[0]
            .map(at)
            .ok_or("the executable defines no runtime.allgs"),
        ms: match (values[1], values[2]) {
            (Some(allm), Some(m0)) => Ok(go_threads::Roots::Symbols {
                allm: at(allm),
                m0: at(m0),
            }),
            _ => Err("the executable defines no runtime.allm or runtime.m0"),
        },
    }
}

/// Reads every live goroutine's stack through `runtime.allgs`.
/// In a stripped executable, the slice is looked for in `.bss` (see
/// [`allgs_in_bss`]); `ms` are the Ms found, `regions` the process's VMAs.
pub(super) fn read_goroutines(
    vars: &Vars,
    regions: &[Region],
    ms: &go_threads::Threads,
    inspector: &mut dyn Inspector,
) -> Goroutines {
    let allgs = match (vars.allgs, &vars.ms) {
        (Ok(a), _) => a,
        (Err(why), Ok(go_threads::Roots::Bss { start, len })) => {
            let ms: HashSet<u64> = ms.iter().flatten().map(go_threads::M::addr).collect();
            return allgs_in_bss(inspector, *start, *len, regions, &ms)
                .map_err(|e| e.unwrap_or(why));
        }
        (Err(why), _) => return Err(why),
    };
    let unreadable = "the target's memory cannot be read (--no-read-memory, or no ptrace access)";
    let mut slice = [0u8; 24];
    if !inspector.read_memory(allgs, &mut slice) {
        return Err(unreadable);
    }
    let word = |b: &[u8], o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(w)
    };
    let (ptr, len, cap) = (word(&slice, 0), word(&slice, 8), word(&slice, 16));
    if len > cap || len > MAX_GS {
        return Err("runtime.allgs does not hold a plausible slice");
    }
    let mut ptrs = vec![0u8; len as usize * 8];
    if !inspector.read_memory(ptr, &mut ptrs) {
        return Err(unreadable);
    }
    let ptrs: Vec<u64> = ptrs.chunks_exact(8).map(|p| word(p, 0)).collect();
    Ok(goroutines(&read_gs(inspector, &ptrs)))
}

/// The goroutines of a stripped executable: the one slice in `.bss`
/// (`start`, `len` bytes) whose elements are all `g`s, which only
/// `runtime.allgs` is. A slice of pointers counts when every element
/// points into private anonymous memory (the heap) at a `g`: a stack of
/// at least 2 KiB whose size is a power of two (or none: a dead `g` whose
/// stack was freed), and an M that is none or one of `ms` (when known);
/// and the goroutine ids check out (the first is 1, all distinct). Two
/// such slices are ambiguous: nothing is marked. `Err(None)` when there is
/// none, for the caller's reason.
fn allgs_in_bss(
    inspector: &mut dyn Inspector,
    start: u64,
    len: u64,
    regions: &[Region],
    ms: &HashSet<u64>,
) -> Result<Vec<Goroutine>, Option<&'static str>> {
    let bss = go_threads::read_pages(inspector, start, go_threads::bss_len(len), true);
    let anon: Vec<(u64, u64)> = regions
        .iter()
        .filter(|v| v.inode == 0 && v.perms.read() && v.perms.write() && !v.perms.shared())
        .map(|v| (v.start, v.end))
        .collect();
    let in_anon = |p: u64| p != 0 && p % 8 == 0 && anon.iter().any(|&(a, b)| a <= p && p < b);
    let word = |b: &[u8], o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(w)
    };
    let mut found: Option<Vec<Goroutine>> = None;
    for o in (0..bss.len().saturating_sub(23)).step_by(8) {
        let (ptr, n, cap) = (word(&bss, o), word(&bss, o + 8), word(&bss, o + 16));
        if n == 0 || n > cap || n > MAX_GS || !in_anon(ptr) {
            continue;
        }
        let raw = go_threads::read_pages(inspector, ptr, n as usize * 8, false);
        if raw.len() != n as usize * 8 {
            continue;
        }
        let ptrs: Vec<u64> = raw.chunks_exact(8).map(|p| word(p, 0)).collect();
        if !ptrs.iter().all(|&p| in_anon(p)) {
            continue;
        }
        let gs = read_gs(inspector, &ptrs);
        let is_g = |g: &[u8; G_READ]| {
            let (lo, hi, m) = (word(g, 0), word(g, 8), word(g, G_M));
            let size = hi.wrapping_sub(lo);
            let stack = (lo == 0 && hi == 0)
                || (lo < hi && size >= STACK_MIN && size.is_power_of_two() && size <= 1 << 30);
            stack && (m == 0 || ms.is_empty() || ms.contains(&m))
        };
        if gs.len() != ptrs.len() || !gs.iter().all(is_g) || goid_offset(&gs).is_none() {
            continue;
        }
        if found.is_some() {
            return Err(Some(
                "the executable is stripped, and two slices in .bss look like runtime.allgs",
            ));
        }
        found = Some(goroutines(&gs));
    }
    found.ok_or(None)
}

/// The `g` structs at `ptrs`, in that order (those that cannot be read
/// are left out). The runtime allocates them side by side in spans, so
/// nearby ones are read together: one read per 64 KiB rather than one per
/// goroutine, which matters with a million goroutines.
fn read_gs(inspector: &mut dyn Inspector, ptrs: &[u64]) -> Vec<[u8; G_READ]> {
    const BATCH: u64 = 64 << 10;
    let mut sorted: Vec<u64> = ptrs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut found: std::collections::HashMap<u64, [u8; G_READ]> = std::collections::HashMap::new();
    let mut buf = Vec::new();
    let mut k = 0;
    while k < sorted.len() {
        let first = sorted[k];
        let mut last = k;
        while last + 1 < sorted.len()
            && sorted[last + 1].saturating_sub(first) + G_READ as u64 <= BATCH
        {
            last += 1;
        }
        let span = (sorted[last] - first) as usize + G_READ;
        buf.resize(span, 0);
        let batch_ok = inspector.read_memory(first, &mut buf);
        for &p in &sorted[k..=last] {
            let mut g = [0u8; G_READ];
            let at = (p - first) as usize;
            if batch_ok {
                g.copy_from_slice(&buf[at..at + G_READ]);
            } else if !inspector.read_memory(p, &mut g) {
                continue;
            }
            found.insert(p, g);
        }
        k = last + 1;
    }
    ptrs.iter().filter_map(|p| found.get(p).copied()).collect()
}

/// The offset of `goid` in raw `g` structs (the first is the main
/// goroutine): the one of [`GOID_AT`] that gives it id 1 and every
/// goroutine a distinct id.
fn goid_offset(gs: &[[u8; G_READ]]) -> Option<usize> {
    let word = |b: &[u8], o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(w)
    };
    GOID_AT.into_iter().find(|&o| {
        let mut ids: Vec<u64> = gs.iter().map(|g| word(g, o)).collect();
        let main_is_1 = ids.first() == Some(&1);
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        main_is_1 && ids.len() == n && ids.iter().all(|&id| id > 0 && id < 1 << 40)
    })
}

/// The stacks of the live goroutines in raw `g` structs (the first is the
/// main goroutine), with ids and statuses when their offset is certain.
fn goroutines(gs: &[[u8; G_READ]]) -> Vec<Goroutine> {
    let word = |b: &[u8], o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(w)
    };
    let goid_at = goid_offset(gs);
    gs.iter()
        .filter_map(|g| {
            let (lo, hi) = (word(g, 0), word(g, 8));
            let size = hi.checked_sub(lo)?;
            let status = goid_at
                .map(|o| u32::from_le_bytes([g[o - 8], g[o - 7], g[o - 6], g[o - 5]]) & !0x1000);
            let plausible = size >= STACK_MIN && size.is_power_of_two() && size <= 1 << 30;
            (plausible && status != Some(DEAD)).then(|| Goroutine {
                lo,
                hi,
                id: goid_at.map(|o| word(g, o)),
                status,
            })
        })
        .collect()
}

/// `goroutine 18 stack (waiting)`.
fn describe(g: &Goroutine) -> String {
    let state = match g.status {
        Some(0) => " (idle)",
        Some(1) => " (runnable)",
        Some(2) => " (running)",
        Some(3) => " (in a system call)",
        Some(4) => " (waiting)",
        Some(8) => " (copying its stack)",
        Some(9) => " (preempted)",
        _ => "",
    };
    match g.id {
        Some(id) => format!("goroutine {id} stack{state}"),
        None => "goroutine stack".to_string(),
    }
}

/// Marks the stacks inside VMAs `i..i + len` as their parts; returns how
/// many and their bytes.
fn mark_stacks(c: &mut Claimer<'_>, i: usize, len: usize, gs: &[Goroutine]) -> (usize, u64) {
    let (mut n, mut bytes) = (0, 0);
    let vmas = &mut c.regions[i..i + len];
    for g in gs {
        let k = vmas.partition_point(|r| r.end <= g.lo);
        let Some(r) = vmas.get_mut(k) else { continue };
        if r.start <= g.lo && g.hi <= r.end && !r.perms.none() {
            r.parts.push(Part {
                start: g.lo,
                end: g.hi,
                details: describe(g),
                tid: None,
            });
            n += 1;
            bytes += g.hi - g.lo;
        }
    }
    for r in vmas.iter_mut() {
        r.parts.sort_by_key(|p| p.start);
    }
    (n, bytes)
}

pub(super) fn plan_arenas(
    c: &mut Claimer<'_>,
    version: &str,
    goroutines: &Goroutines,
    threads: &go_threads::Threads,
) {
    let at_hint = |r: &crate::model::Region| r.start & ((1 << 40) - 1) == HINT_LOW;
    c.scan_free_runs(at_hint, |_| true, |c, i, len| {
        let start = c.regions[i].start;
        // The kernel may have merged the last arena with a neighbour:
        // claim whole arenas only.
        let mut len = len;
        while len > 0 && (c.regions[i + len - 1].end - start) % ARENA != 0 {
            len -= 1;
        }
        if len == 0 {
            return 1;
        }
        let span = c.span(i, len);
        let committed = c.committed(i, len);
        let (stacks, why) = match goroutines {
            Ok(gs) => {
                let (n, bytes) = mark_stacks(c, i, len, gs);
                (
                    format!(", {n} goroutine stacks ({})", mib(bytes)),
                    String::new(),
                )
            }
            Err(why) => (
                String::new(),
                format!("; goroutine stacks not marked: {why}"),
            ),
        };
        let (own, why_own) = match threads {
            Ok(ms) => match go_threads::mark_stacks(&mut c.regions[i..i + len], ms) {
                (0, _) => (String::new(), String::new()),
                (n, bytes) => (
                    format!(", {n} thread stacks ({})", mib(bytes)),
                    String::new(),
                ),
            },
            Err(why) => (String::new(), format!("; thread stacks not found: {why}")),
        };
        // One reason, not two, when the symbols or the memory are missing.
        let why = match (goroutines, threads) {
            (Err(a), Err(b)) if a == b => {
                format!("; goroutine and thread stacks not marked: {a}")
            }
            _ => format!("{why}{why_own}"),
        };
        c.claim(
            i,
            len,
            Claim::managed_heap(
                format!(
                    "Go heap arenas ({} x 64 MiB, {} committed{stacks}{own}; {version})",
                    span / ARENA,
                    mib(committed)
                ),
                format!("{version} executable (.go.buildinfo); anonymous memory from the arena hint address {start:#x} in whole 64 MiB heap arenas{why}"),
            ),
        );
        len
    });
}

pub(super) fn plan_rest(c: &mut Claimer<'_>, version: &str, cgo: bool) {
    let (evidence, confidence): (Cow<'static, str>, _) = if cgo {
        (Cow::Owned(format!("{version} executable linked with libc (cgo): anonymous memory that is no stack, arena or malloc memory is presumed the Go runtime's")), Confidence::Low)
    } else {
        (Cow::Owned(format!("{version} executable without libc: only the Go runtime maps anonymous memory, and this is not in the arenas, so it is runtime metadata")), Confidence::Medium)
    };
    c.claim_free_runs(
        MemoryType::ManagedHeap,
        "Go runtime metadata (heap bitmaps, spans, page summaries)",
        evidence,
        confidence,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw `g` with its stack and, at `goid_at`, its id and status.
    fn g(lo: u64, size: u64, goid_at: usize, id: u64, status: u32) -> [u8; G_READ] {
        let mut b = [0u8; G_READ];
        b[0..8].copy_from_slice(&lo.to_le_bytes());
        b[8..16].copy_from_slice(&(lo + size).to_le_bytes());
        b[goid_at - 8..goid_at - 4].copy_from_slice(&status.to_le_bytes());
        b[goid_at..goid_at + 8].copy_from_slice(&id.to_le_bytes());
        b
    }

    #[test]
    fn goroutine_ids_at_either_layout() {
        for at in GOID_AT {
            let gs = [
                g(0xc000086000, 4096, at, 1, 2),
                g(0xc000038800, 2048, at, 2, 4 | 0x1000),
                g(0xc000039000, 2048, at, 3, DEAD),
                g(0xc000039800, 3000, at, 4, 4),
            ];
            let found = goroutines(&gs);
            assert_eq!(found.len(), 2, "dead and odd-sized stacks are left out");
            assert_eq!(describe(&found[0]), "goroutine 1 stack (running)");
            assert_eq!(describe(&found[1]), "goroutine 2 stack (waiting)");
        }
        // No offset gives main id 1 and distinct ids: stacks without ids.
        let gs = [
            g(0xc000086000, 4096, 152, 7, 2),
            g(0xc000038800, 2048, 152, 7, 4),
        ];
        let found = goroutines(&gs);
        assert_eq!(found.len(), 2);
        assert_eq!(describe(&found[0]), "goroutine stack");
    }

    #[test]
    fn version_from_go_1_19_buildinfo() {
        let mut b = b"\xff Go buildinf:\x08\x02".to_vec();
        b.resize(32, 0);
        b.push(8);
        b.extend_from_slice(b"go1.19.8\xe9\x01");
        assert_eq!(buildinfo_version(&b).as_deref(), Some("go1.19.8"));
        assert_eq!(buildinfo_version(&b[..20]), None);
        assert_eq!(buildinfo_version(b"\x7fELF"), None);
    }
}
