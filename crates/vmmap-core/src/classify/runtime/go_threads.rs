//! Go's OS threads and their own stacks, from the runtime's list of Ms.
//!
//! Without cgo the Go runtime starts each OS thread itself (`clone`), on
//! a system stack (its M's `g0`) of 16 KiB that it allocates inside its
//! heap arenas like a goroutine stack; only the main thread runs on the
//! kernel's `[stack]`. No glibc TCB marks such a stack, and the thread's
//! stack pointer is often not on it (during a system call it is on the
//! goroutine's stack). The runtime's list of Ms says where each is:
//! `runtime.allm` heads a list of `m` structs linked by `m.alllink` that
//! ends at `runtime.m0`; each holds its thread's id (`m.procid`) and its
//! `g0`, whose `stack{lo, hi}` are the bounds. The M's signal stack
//! (`m.gsignal`, 32 KiB) is in the arenas too.
//!
//! Three offsets are fixed in every Go version (runtime2.go marks them
//! "known to liblink"): `m.g0` is an m's first word, `g.stack` a g's first
//! two, and `g.m` a g's seventh word (48 on 64-bit). Those of `alllink`
//! and `procid` move between releases (336 and 72 in Go 1.19). They are
//! not taken from a table per Go version, which would guess for every
//! release it does not list, nor from DWARF, which the Go programs Debian
//! packages do not carry (they are stripped of it and of `.symtab`): they
//! are found in the target's memory from what the runtime keeps true.
//! - `alllink` is the offset at which the words followed from `*allm`
//!   visit only m structs (each one's `g0.m` points back to it) and end at
//!   `&m0`, which holds nil there.
//! - `procid` is the offset at which m0 holds the process id and every
//!   other m a distinct thread id of the process; `gsignal` is the next
//!   word, taken only when each such g's `m` points back to its M.
//!
//! A stripped executable has no `.symtab` to say where `allm` and `m0`
//! are, but it has its section headers: `m0` is the one m in `.bss` whose
//! `g0` (`runtime.g0`, in `.bss` too) names it, and `allm` the word of
//! `.bss` that heads the longest list of Ms ending at m0.
//!
//! An M being created is at the head of `allm` before it has a `g0`, and
//! has `procid` 0 until its thread runs: both states are passed over (the
//! second paired with the one thread no M names, if there is exactly one
//! of each).
//!
//! When no offset passes, or two pass with different answers, the thread
//! stacks are "not found", with the reason, never guessed.

use std::collections::{HashMap, HashSet};

use crate::classify::{Context, Inspector};
use crate::model::{Part, Region};

/// Bytes of an `m` read (Go 1.19's is 1,008): `alllink` and `procid` are
/// looked for in them.
const M_READ: usize = 2048;
/// Fewest bytes of an `m` that count (a page boundary past them was not
/// resident): up to `alllink` in Go 1.19.
const M_MIN: usize = 512;
/// Pages read one at a time: the inspector reads only resident pages, and
/// a variable or struct may be followed by one never touched.
const PAGE: u64 = 4096;
/// The offset of `g.m` on 64-bit (after `stack`, `stackguard0`,
/// `stackguard1`, `_panic` and `_defer`).
const G_M: usize = 48;
/// Most Ms followed.
const MAX_MS: usize = 1 << 16;

/// One OS thread of a Go program, from its M.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct M {
    /// Where its `m` is.
    addr: u64,
    tid: u32,
    name: String,
    /// Its `g0` stack, `lo..hi`.
    g0: (u64, u64),
    /// Its signal stack (`gsignal`), when its offset was certain.
    gsignal: Option<(u64, u64)>,
}

impl M {
    pub(super) fn addr(&self) -> u64 {
        self.addr
    }
}

/// The Ms read, or why there are none.
pub(super) type Threads = Result<Vec<M>, &'static str>;

fn word(b: &[u8], o: usize) -> Option<u64> {
    let mut w = [0u8; 8];
    w.copy_from_slice(b.get(o..o + 8)?);
    Some(u64::from_le_bytes(w))
}

/// `len` bytes at `addr`, a page at a time: up to the first page that
/// cannot be read, or, with `zeros`, all of them with such pages zero.
pub(super) fn read_pages(
    inspector: &mut dyn Inspector,
    addr: u64,
    len: usize,
    zeros: bool,
) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut at = 0usize;
    while at < len {
        let a = addr + at as u64;
        let n = ((PAGE - a % PAGE) as usize).min(len - at);
        if !inspector.read_memory(a, &mut out[at..at + n]) && !zeros {
            out.truncate(at);
            break;
        }
        at += n;
    }
    out
}

/// The target's `m` and `g` structs, read once each.
struct Reader<'i> {
    inspector: &'i mut dyn Inspector,
    /// The Ms read whole (only those [`Reader::is_m`] confirmed).
    ms: HashMap<u64, Option<Vec<u8>>>,
    /// Whether each address asked about holds an m.
    checked: HashMap<u64, bool>,
    /// `(g.stack.lo, g.stack.hi, g.m)` of each g read.
    gs: HashMap<u64, Option<(u64, u64, u64)>>,
}

impl Reader<'_> {
    fn m(&mut self, addr: u64) -> Option<&[u8]> {
        if !self.ms.contains_key(&addr) {
            let got = (addr != 0 && addr % 8 == 0)
                .then(|| read_pages(self.inspector, addr, M_READ, false))
                .filter(|b| b.len() >= M_MIN);
            self.ms.insert(addr, got);
        }
        self.ms.get(&addr).and_then(|b| b.as_deref())
    }

    fn g(&mut self, addr: u64) -> Option<(u64, u64, u64)> {
        *self.gs.entry(addr).or_insert_with(|| {
            let mut b = [0u8; G_M + 8];
            (addr != 0 && addr % 8 == 0 && self.inspector.read_memory(addr, &mut b))
                .then(|| Some((word(&b, 0)?, word(&b, 8)?, word(&b, G_M)?)))
                .flatten()
        })
    }

    /// Whether an `m` is at `addr`: its `g0` names it as its M. Only its
    /// first word is read to tell (most addresses asked about are not
    /// Ms); a confirmed m is then read whole.
    fn is_m(&mut self, addr: u64) -> bool {
        if let Some(&known) = self.checked.get(&addr) {
            return known;
        }
        let mut w = [0u8; 8];
        let yes = addr != 0
            && addr % 8 == 0
            && self.inspector.read_memory(addr, &mut w)
            && self
                .g(u64::from_le_bytes(w))
                .is_some_and(|(_, _, m)| m == addr)
            && self.m(addr).is_some();
        self.checked.insert(addr, yes);
        yes
    }

    /// The list of Ms from `head` if `alllink` is at `k`: every element an
    /// m, ending at `m0` with nil.
    fn chain(&mut self, head: u64, m0: u64, k: usize) -> Option<Vec<u64>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut m = head;
        loop {
            if out.len() >= MAX_MS || !seen.insert(m) || !self.is_m(m) {
                return None;
            }
            out.push(m);
            let next = word(self.m(m)?, k)?;
            if m == m0 {
                return (next == 0).then_some(out);
            }
            m = next;
        }
    }

    /// The list of Ms from `head` to `m0`: the longest that an offset of
    /// `alllink` gives (another link field, such as `schedlink` of the
    /// idle Ms, can end at m0 too, with fewer of them).
    ///
    /// The runtime puts a new M at the head before it gives it a `g0`
    /// (allocm): a head that is no m yet is skipped, the list taken from
    /// the word at each offset in it.
    fn list(&mut self, head: u64, m0: u64) -> Result<Vec<u64>, &'static str> {
        let len = self.m(m0).map_or(0, <[u8]>::len);
        let raw = if self.is_m(head) {
            None
        } else {
            Some(read_pages(self.inspector, head, len, false))
        };
        let mut best: Option<Vec<u64>> = None;
        for k in (8..len).step_by(8) {
            let from = match &raw {
                None => head,
                Some(b) => match word(b, k) {
                    Some(next) if next != 0 => next,
                    _ => continue,
                },
            };
            let Some(c) = self.chain(from, m0, k) else {
                continue;
            };
            match &best {
                Some(b) if b.len() > c.len() || *b == c => {}
                Some(b) if b.len() == c.len() => {
                    return Err("two offsets link different lists of Ms");
                }
                _ => best = Some(c),
            }
        }
        best.ok_or("no offset links the list of Ms to runtime.m0")
    }
}

/// The address of `runtime.m0` in a stripped executable's `.bss` (`bss`,
/// at `start`): the one m there whose `g0` (`runtime.g0`, in `.bss` too)
/// names it as its M.
fn find_m0(bss: &[u8], start: u64) -> Result<u64, &'static str> {
    let at = |a: u64| {
        let o = usize::try_from(a.checked_sub(start)?).ok()?;
        word(bss, o)
    };
    let mut found = None;
    for o in (0..bss.len().saturating_sub(7)).step_by(8) {
        let m = start + o as u64;
        let Some(g) = word(bss, o) else { continue };
        if g % 8 != 0 || g == m || at(g.wrapping_add(G_M as u64)) != Some(m) {
            continue;
        }
        let (Some(lo), Some(hi)) = (at(g), at(g + 8)) else {
            continue;
        };
        if lo < hi {
            if found.is_some() {
                return Err("more than one m in .bss has its g0 there");
            }
            found = Some(m);
        }
    }
    found.ok_or("no m in .bss has its g0 there (runtime.m0 not found)")
}

/// Where the list of Ms starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Roots {
    /// `runtime.allm` and `runtime.m0`, from `.symtab`.
    Symbols { allm: u64, m0: u64 },
    /// A stripped executable's `.bss`, which holds both variables.
    Bss { start: u64, len: u64 },
}

/// Most bytes of `.bss` read (a large Go service has a few hundred KiB).
const MAX_BSS: u64 = 16 << 20;

/// How much of a `.bss` of `len` bytes is read.
pub(super) fn bss_len(len: u64) -> usize {
    usize::try_from(len.min(MAX_BSS)).unwrap_or(0)
}

/// Every M of the Go program with its thread and stacks, from `roots`
/// and the target's memory; `regions` are the process's VMAs.
pub(super) fn read_ms(
    roots: &Result<Roots, &'static str>,
    regions: &[Region],
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
) -> Threads {
    let unreadable = "the target's memory cannot be read (--no-read-memory, or no ptrace access)";
    // The fixed offsets above are those of 64-bit ports.
    if ctx.pointer_width != 8 {
        return Err("the Ms of a 32-bit Go program are not read");
    }
    let mut r = Reader {
        inspector,
        ms: HashMap::new(),
        checked: HashMap::new(),
        gs: HashMap::new(),
    };
    let (m0, list) = match *roots.as_ref().map_err(|e| *e)? {
        Roots::Symbols { allm, m0 } => {
            let mut head = [0u8; 8];
            if !r.inspector.read_memory(allm, &mut head) {
                return Err(unreadable);
            }
            let head = u64::from_le_bytes(head);
            if !r.is_m(m0) {
                return Err("runtime.m0 does not hold an M (its g0 does not point back)");
            }
            (m0, r.list(head, m0)?)
        }
        Roots::Bss { start, len } => {
            let bss = read_pages(r.inspector, start, bss_len(len), true);
            if bss.iter().all(|&b| b == 0) {
                return Err(unreadable);
            }
            let m0 = find_m0(&bss, start)?;
            if !r.is_m(m0) {
                return Err("runtime.m0 could not be read");
            }
            // The head is a word of .bss pointing to an m in private
            // anonymous memory (the heap); the longest list that ends at
            // m0 is runtime.allm's (the others, such as the idle Ms, are
            // parts of it).
            let anon: Vec<(u64, u64)> = regions
                .iter()
                .filter(|v| v.inode == 0 && v.perms.read() && v.perms.write() && !v.perms.shared())
                .map(|v| (v.start, v.end))
                .collect();
            let mut heads: Vec<u64> = bss
                .chunks_exact(8)
                .filter_map(|w| word(w, 0))
                .filter(|&v| v % 8 == 0 && anon.iter().any(|&(a, b)| a <= v && v < b))
                .collect();
            heads.sort_unstable();
            heads.dedup();
            let mut best: Option<Vec<u64>> = None;
            for h in heads {
                if !r.is_m(h) {
                    continue;
                }
                let Ok(l) = r.list(h, m0) else { continue };
                match &best {
                    Some(b) if b.len() > l.len() => {}
                    Some(b) if b.len() == l.len() && *b != l => {
                        return Err("two lists of Ms of the same length end at m0");
                    }
                    _ => best = Some(l),
                }
            }
            (
                m0,
                best.ok_or("no word of .bss heads a list of Ms that ends at m0")?,
            )
        }
    };
    let (pid, threads) = (ctx.pid, ctx.threads);
    let m0_len = r.m(m0).map_or(0, <[u8]>::len);
    let names: HashMap<u32, &str> = threads.iter().map(|t| (t.tid, t.name.as_str())).collect();
    let mut tids: Option<Vec<u32>> = None;
    let mut procid_at = None;
    for p in (8..m0_len).step_by(8) {
        let got: Option<Vec<u32>> = list
            .iter()
            .map(|&m| {
                let v = u32::try_from(word(r.m(m)?, p)?).ok()?;
                // 0: an M whose thread has not started yet (minit sets it).
                let ok = if m == m0 {
                    v == pid
                } else {
                    v == 0 || (v != pid && names.contains_key(&v))
                };
                ok.then_some(v)
            })
            .collect();
        let Some(got) = got else { continue };
        let started: Vec<u32> = got.iter().copied().filter(|&v| v != 0).collect();
        let distinct = started.iter().collect::<HashSet<_>>().len() == started.len();
        // Besides m0, some M must hold a thread id there.
        if !distinct || (got.len() > 1 && started.len() < 2) {
            continue;
        }
        match &tids {
            Some(t) if *t != got => return Err("more than one offset gives the Ms' thread ids"),
            Some(_) => {}
            None => {
                tids = Some(got);
                procid_at = Some(p);
            }
        }
    }
    let (Some(tids), Some(p)) = (tids, procid_at) else {
        return Err("no offset of the Ms gives the process's thread ids");
    };
    // Without cgo every thread is an M: when exactly one M has not set
    // its procid yet (its thread was cloned but has not run minit) and
    // exactly one thread is named by no M, they are each other's.
    let named: HashSet<u32> = tids.iter().copied().collect();
    let unnamed: Vec<u32> = threads
        .iter()
        .map(|t| t.tid)
        .filter(|t| *t != pid && !named.contains(t))
        .collect();
    let unstarted = tids.iter().filter(|&&t| t == 0).count();
    let paired = (unstarted == 1 && unnamed.len() == 1).then(|| unnamed[0]);
    let mut out = Vec::with_capacity(list.len());
    let mut signal = Vec::with_capacity(list.len());
    for (&m, &tid) in list.iter().zip(&tids) {
        let Some(tid) = (if tid == 0 { paired } else { Some(tid) }) else {
            continue;
        };
        let b = r.m(m).ok_or("an M could not be read again")?;
        let (g0, gsignal) = (word(b, 0), word(b, p + 8));
        let (lo, hi, _) = g0.and_then(|g| r.g(g)).ok_or("a g0 could not be read")?;
        // The signal stack's g names its M, as the g0 does.
        signal.push(
            gsignal
                .and_then(|g| r.g(g))
                .filter(|&(lo, hi, back)| back == m && lo < hi),
        );
        out.push(M {
            addr: m,
            tid,
            name: names.get(&tid).map_or_else(String::new, |n| n.to_string()),
            g0: (lo, hi),
            gsignal: None,
        });
    }
    // Every M but one without a signal stack (m0's may be the kernel's
    // alternate stack, outside the runtime) says the offset holds.
    if signal.iter().filter(|s| s.is_some()).count() + 1 >= out.len() {
        for (m, s) in out.iter_mut().zip(signal) {
            m.gsignal = s.map(|(lo, hi, _)| (lo, hi));
        }
    }
    Ok(out)
}

/// Marks the stacks of `ms` that lie inside `vmas` (the Go arenas) as
/// their parts: each M's `g0`, the thread's own stack, with its TID, and
/// its signal stack. Returns how many own stacks and their bytes.
pub(super) fn mark_stacks(vmas: &mut [Region], ms: &[M]) -> (usize, u64) {
    let (mut n, mut bytes) = (0, 0);
    for m in ms {
        let own = Part {
            start: m.g0.0,
            end: m.g0.1,
            details: format!("stack of thread {} ({}), its M's g0", m.tid, m.name),
            tid: Some(m.tid),
        };
        if add_part(vmas, own) {
            n += 1;
            bytes += m.g0.1 - m.g0.0;
        }
        if let Some((lo, hi)) = m.gsignal {
            add_part(
                vmas,
                Part {
                    start: lo,
                    end: hi,
                    details: format!("signal stack of thread {} ({})", m.tid, m.name),
                    tid: None,
                },
            );
        }
    }
    for r in vmas.iter_mut() {
        r.parts.sort_by_key(|p| p.start);
    }
    (n, bytes)
}

/// Adds `p` to the readable VMA of `vmas` that holds it whole, unless it
/// overlaps a part already there; false if none takes it.
fn add_part(vmas: &mut [Region], p: Part) -> bool {
    if p.start >= p.end {
        return false;
    }
    let k = vmas.partition_point(|r| r.end <= p.start);
    let Some(r) = vmas.get_mut(k) else {
        return false;
    };
    let fits = r.start <= p.start && p.end <= r.end && !r.perms.none();
    if !fits || r.parts.iter().any(|q| q.start < p.end && p.start < q.end) {
        return false;
    }
    r.parts.push(p);
    true
}

#[cfg(test)]
mod tests {
    use super::super::testutil::anon;
    use super::*;
    use crate::classify::testutil::{context, FakeInspector};
    use crate::model::{StackPointerSource, ThreadInfo};

    /// The executable's `.bss`: `runtime.allm` at its start, `runtime.m0`
    /// and `runtime.g0` inside.
    const BSS: u64 = 0x5000;
    const BSS_LEN: usize = 0x5000;
    const ALLM: u64 = BSS;
    const M0: u64 = 0x6000;
    const G0: u64 = 0x9000;
    const HEAP: u64 = 0xc0_0000_0000;
    /// Where `alllink` and `procid` are in the fake Ms.
    const LINK: usize = 336;
    const PROCID: usize = 72;

    fn thread(tid: u32) -> ThreadInfo {
        ThreadInfo {
            tid,
            name: "srv".into(),
            stack_pointer: None,
            stack_pointer_source: StackPointerSource::Syscall,
            tcb: None,
        }
    }

    fn put(mem: &mut [u8], base: u64, addr: u64, v: u64) {
        let o = (addr - base) as usize;
        mem[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// A fake Go process: m0 (pid 100) and `n` Ms in the heap for threads
    /// 101..., each with a g0 of 16 KiB and a signal stack of 32 KiB.
    fn process(n: usize) -> FakeInspector {
        let mut bss = vec![0u8; BSS_LEN];
        let mut heap = vec![0u8; 0x40000];
        let ms: Vec<u64> = (0..n as u64)
            .map(|k| HEAP + 0x1000 * k)
            .chain([M0])
            .collect();
        put(&mut bss, BSS, ALLM, ms[0]);
        for (k, &m) in ms.iter().enumerate() {
            let (g0, tid) = if m == M0 {
                (G0, 100)
            } else {
                (HEAP + 0x20000 + 0x100 * k as u64, 101 + k as u64)
            };
            let gsignal = HEAP + 0x30000 + 0x100 * k as u64;
            let next = ms.get(k + 1).copied().unwrap_or(0);
            let stack = 0xc0_1000_0000 + 0x10_0000 * k as u64;
            for (at, v) in [
                (m, g0),
                (m + PROCID as u64, tid),
                (m + PROCID as u64 + 8, gsignal),
                (m + LINK as u64, next),
                (g0, stack),
                (g0 + 8, stack + (16 << 10)),
                (g0 + 48, m),
                (gsignal, stack + 0x8000),
                (gsignal + 8, stack + 0x8000 + (32 << 10)),
                (gsignal + 48, m),
            ] {
                if at < HEAP {
                    put(&mut bss, BSS, at, v);
                } else {
                    put(&mut heap, HEAP, at, v);
                }
            }
        }
        let mut fake = FakeInspector::default();
        fake.memory.push((BSS, bss));
        fake.memory.push((HEAP, heap));
        fake
    }

    fn regions() -> Vec<Region> {
        vec![Region::from_mapping(anon(
            HEAP,
            HEAP + 0x40_0000,
            b"rw-p",
            0,
        ))]
    }

    fn read(roots: Roots, tids: &[u32], fake: &mut FakeInspector) -> Threads {
        let threads: Vec<ThreadInfo> = tids.iter().copied().map(thread).collect();
        let ctx = Context {
            pid: 100,
            threads: &threads,
            ..context()
        };
        read_ms(&Ok(roots), &regions(), &ctx, fake)
    }

    const SYMBOLS: Roots = Roots::Symbols { allm: ALLM, m0: M0 };
    const STRIPPED: Roots = Roots::Bss {
        start: BSS,
        len: BSS_LEN as u64,
    };

    #[test]
    fn ms_are_found_with_their_threads_and_stacks() {
        for roots in [SYMBOLS, STRIPPED] {
            let mut fake = process(2);
            let ms = read(roots, &[100, 101, 102], &mut fake).unwrap();
            let got: Vec<(u32, u64, bool)> = ms
                .iter()
                .map(|m| (m.tid, m.g0.1 - m.g0.0, m.gsignal.is_some()))
                .collect();
            assert_eq!(
                got,
                [
                    (101, 16 << 10, true),
                    (102, 16 << 10, true),
                    (100, 16 << 10, true)
                ],
                "{roots:?}"
            );
        }
    }

    /// An M the runtime is creating: at the head of allm before it has a
    /// g0, then with a g0 but no thread yet (procid 0). Both are passed
    /// over, the others found.
    #[test]
    fn an_m_being_created_is_passed_over() {
        let tids = |ms: Threads| -> Vec<u32> { ms.unwrap().iter().map(|m| m.tid).collect() };
        let mut fake = process(2);
        put(&mut fake.memory[1].1, HEAP, HEAP, 0);
        assert_eq!(tids(read(SYMBOLS, &[100, 102], &mut fake)), [102, 100]);
        let mut fake = process(2);
        put(
            &mut fake.memory[1].1,
            HEAP,
            HEAP + 0x1000 + PROCID as u64,
            0,
        );
        for roots in [SYMBOLS, STRIPPED] {
            assert_eq!(tids(read(roots, &[100, 101], &mut fake)), [101, 100]);
        }
        // Its thread was cloned: the one thread no M names is its.
        assert_eq!(
            tids(read(SYMBOLS, &[100, 101, 102], &mut fake)),
            [101, 102, 100]
        );
    }

    #[test]
    fn a_thread_id_not_of_the_process_is_not_found() {
        let mut fake = process(2);
        // Thread 102 is not listed: no offset gives every M a thread.
        let got = read(SYMBOLS, &[100, 101], &mut fake);
        assert_eq!(
            got,
            Err("no offset of the Ms gives the process's thread ids")
        );
    }

    #[test]
    fn a_broken_list_is_not_found() {
        let mut fake = process(1);
        // m0's g0 no longer names it.
        put(&mut fake.memory[0].1, BSS, G0 + 48, 0);
        for roots in [SYMBOLS, STRIPPED] {
            assert!(read(roots, &[100, 101], &mut fake).is_err(), "{roots:?}");
        }
        let mut blind = FakeInspector::default();
        assert!(read(SYMBOLS, &[100, 101], &mut blind).is_err());
        assert_eq!(
            read_ms(&Err("stripped"), &[], &context(), &mut blind),
            Err("stripped")
        );
    }
}
