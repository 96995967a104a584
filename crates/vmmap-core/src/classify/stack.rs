//! Pass 4: thread stacks, from each thread's stack pointer or, for a
//! thread that was running, from glibc's thread control block.
//!
//! Linux stopped naming thread stacks in maps in 4.5, so the reliable way
//! from outside is the stack pointer: the anonymous mapping that holds it
//! is that thread's stack, whatever its size (custom
//! `pthread_attr_setstacksize`) or origin (a user-supplied
//! `pthread_attr_setstack` buffer). The PROT_NONE mapping right below it is
//! glibc's guard and joins the block.
//!
//! A running thread gives no stack pointer without being stopped. But a
//! stack glibc allocated has a shape: an anonymous private read-write
//! mapping directly above a PROT_NONE guard, with the thread's
//! `struct pthread` (its TCB) at the top end. On x86 the TCB begins with
//! two pointers to itself (`tcbhead_t.tcb` and `.self`), and it holds the
//! thread's TID at an offset that depends on the glibc version, which
//! [`scan_tcbs`] calibrates from the stacks already known (or from the set
//! of TIDs). Reading the top page of a mapping stops nothing.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::{is_plain_anon, Claim, Context, Inspector, Plan};
use crate::model::{Confidence, MemoryType, Region, StackPointerSource, ThreadInfo};

/// The evidence of a stack found from its thread's stack pointer.
const BY_SP: &str = "holds the thread's stack pointer";
/// How much of the top of a candidate mapping is read for the TCB: glibc
/// puts `struct pthread` (about 2.3 KiB) in the last page, or lower by the
/// alignment of static TLS; two pages cover the usual cases.
const TOP_WINDOW: u64 = 8192;
/// How far past the TCB's start the TID is looked for.
const TID_SPAN: usize = 0x1000;
/// Candidates smaller than this hold no TCB and static TLS worth a stack.
const MIN_STACK: u64 = 8192;

/// Whether VMA `i` has the shape of a glibc thread stack: a plain
/// anonymous private read-write mapping directly above a plain anonymous
/// PROT_NONE guard.
pub(crate) fn stack_shaped(regions: &[Region], i: usize) -> bool {
    let r = &regions[i];
    if i == 0 || !is_plain_anon(r) || r.perms.shared() || !r.perms.read() || !r.perms.write() {
        return false;
    }
    if r.end - r.start < MIN_STACK {
        return false;
    }
    let g = &regions[i - 1];
    g.end == r.start && g.perms.none() && !g.perms.shared() && is_plain_anon(g)
}

/// What the top of a stack-shaped mapping held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Top {
    /// Its memory could not be read (`--no-read-memory`, no permission).
    Unreadable,
    /// No TCB: not a glibc stack on this architecture, or not a stack.
    NoTcb,
    /// A TCB at `addr`; `tid` is the TID it holds, when the offset of the
    /// TID could be calibrated (0: the thread exited, and glibc keeps the
    /// stack in its cache).
    Tcb { addr: u64, tid: Option<u32> },
}

/// Reads the tops of `candidates` (indices of stack-shaped VMAs) and finds
/// their TCBs and TIDs. `known` are candidates whose thread is known (from
/// its stack pointer): the TID offset is the one where every known TCB
/// holds its own thread's TID, and, without any known, the one where the
/// most TCBs hold distinct TIDs of the process (`all_tids`).
pub(crate) fn scan_tcbs(
    regions: &[Region],
    candidates: &[usize],
    known: &HashMap<usize, u32>,
    all_tids: &HashSet<u32>,
    pointer_width: usize,
    inspector: &mut dyn Inspector,
) -> Vec<(usize, Top)> {
    // (candidate slot, TCB address, bytes from the TCB on)
    let mut tcbs: Vec<(usize, u64, Vec<u8>)> = Vec::new();
    let mut out: Vec<(usize, Top)> = Vec::with_capacity(candidates.len());
    for &i in candidates {
        let r = &regions[i];
        let Some((base, buf)) = read_top(r, inspector) else {
            out.push((i, Top::Unreadable));
            continue;
        };
        match find_tcb(&buf, base, pointer_width) {
            Some(off) => {
                let tail = buf[off..buf.len().min(off + TID_SPAN)].to_vec();
                tcbs.push((out.len(), base + off as u64, tail));
                out.push((
                    i,
                    Top::Tcb {
                        addr: base + off as u64,
                        tid: None,
                    },
                ));
            }
            None => out.push((i, Top::NoTcb)),
        }
    }
    let value = |tail: &[u8], k: usize| -> Option<u32> {
        tail.get(k..k + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let known_tcbs: Vec<(&[u8], u32)> = tcbs
        .iter()
        .filter_map(|(slot, _, tail)| Some((tail.as_slice(), *known.get(&out[*slot].0)?)))
        .collect();
    let mut best: Option<(usize, usize)> = None; // (score, offset)
    for k in (3 * pointer_width..TID_SPAN).step_by(4) {
        if !known_tcbs.iter().all(|(t, tid)| value(t, k) == Some(*tid)) {
            continue;
        }
        let hits: HashSet<u32> = tcbs
            .iter()
            .filter_map(|(_, _, t)| value(t, k))
            .filter(|v| *v != 0 && all_tids.contains(v))
            .collect();
        if !hits.is_empty() && best.is_none_or(|(s, _)| hits.len() > s) {
            best = Some((hits.len(), k));
        }
    }
    if let Some((_, k)) = best {
        for (slot, addr, tail) in &tcbs {
            out[*slot].1 = Top::Tcb {
                addr: *addr,
                tid: value(tail, k),
            };
        }
    }
    out
}

/// The top [`TOP_WINDOW`] bytes of `r` (or its top page alone, if only
/// that can be read), with the address they start at.
fn read_top(r: &Region, inspector: &mut dyn Inspector) -> Option<(u64, Vec<u8>)> {
    for len in [TOP_WINDOW, 4096] {
        let len = len.min(r.end - r.start);
        let mut buf = vec![0u8; len as usize];
        if inspector.read_memory(r.end - len, &mut buf) {
            return Some((r.end - len, buf));
        }
    }
    None
}

/// The offset in `buf` (which starts at `base`) of the highest TCB: a word
/// holding its own address, and the same two words further (`tcb` at 0
/// and `self` at 16 in x86-64's `tcbhead_t`, 0 and 8 on i386).
fn find_tcb(buf: &[u8], base: u64, pointer_width: usize) -> Option<usize> {
    let pw = pointer_width;
    let word = |o: usize| -> Option<u64> {
        let b = buf.get(o..o + pw)?;
        Some(if pw == 8 {
            u64::from_ne_bytes(b.try_into().ok()?)
        } else {
            u64::from(u32::from_ne_bytes(b.try_into().ok()?))
        })
    };
    (0..buf.len().checked_sub(3 * pw)?)
        .step_by(pw)
        .rev()
        .find(|&o| {
            let a = base + o as u64;
            word(o) == Some(a) && word(o + 2 * pw) == Some(a)
        })
}

pub(super) fn plan_stacks(
    regions: &mut [Region],
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
    plan: &mut Plan,
    warnings: &mut Vec<String>,
) {
    // Which thread's stack each VMA holds; the lowest TID wins if two
    // threads point into one mapping (a user-supplied stack shared by
    // accident, or a thread that switched stacks).
    let mut owner: Vec<(usize, &ThreadInfo)> = Vec::new();
    // Threads whose stack pointer is in memory of another type: a Go
    // thread in a system call on a goroutine stack inside the arenas, a
    // stack malloc()ed from a heap. Each is named there, and its own stack
    // is still looked for by its TCB.
    let mut elsewhere: Vec<(usize, &ThreadInfo)> = Vec::new();
    for t in ctx.threads {
        let Some(addr) = t.stack_pointer.or(t.tcb) else {
            continue;
        };
        let i = regions.partition_point(|r| r.end <= addr);
        if !regions.get(i).is_some_and(|r| r.contains(addr)) {
            warnings.push(format!(
                "thread {} ({}): stack {} {addr:#x} is in no mapping",
                t.tid,
                t.name,
                if t.stack_pointer.is_some() {
                    "pointer"
                } else {
                    "TCB"
                }
            ));
            continue;
        }
        let r = &regions[i];
        let own = !plan.is_grouped(i)
            && (r.memory_type == MemoryType::Stack
                || (r.memory_type == MemoryType::PrivateData
                    && is_plain_anon(r)
                    && !r.perms.shared()));
        if !own {
            elsewhere.push((i, t));
            continue;
        }
        match owner.iter_mut().find(|(j, _)| *j == i) {
            Some(o) if o.1.tid > t.tid => o.1 = t,
            Some(_) => {}
            None => owner.push((i, t)),
        }
    }
    for &(i, t) in &elsewhere {
        name_thread_on(&mut regions[i], t);
    }
    let displaced: HashSet<u32> = elsewhere.iter().map(|(_, t)| t.tid).collect();
    let unknown = by_shape(regions, ctx, inspector, plan, &mut owner, &displaced);
    for (i, t) in owner {
        let label = format!("Thread {} ({})", t.tid, t.name);
        let grouped = plan.is_grouped(i);
        let evidence = if displaced.contains(&t.tid) {
            "its top holds the thread's glibc TCB (struct pthread), which names this TID; the thread itself was on other memory (a goroutine stack, say), which names it"
        } else if t.stack_pointer.is_some() {
            BY_SP
        } else {
            "its top holds the thread's glibc TCB (struct pthread), which names this TID"
        };
        let r = &regions[i];
        let plain = is_plain_anon(r) && !r.perms.shared();
        match r.memory_type {
            MemoryType::Stack if !grouped => {
                let r = &mut regions[i];
                r.tid = Some(t.tid);
                r.details = label;
            }
            MemoryType::PrivateData if !grouped && plain => {
                mark_stack(regions, plan, i, label, evidence, Some(t.tid), None);
            }
            _ => {
                // The stack lives inside memory of another type (a stack
                // malloc()ed from an arena, say): keep that type, say so.
                let r = &mut regions[i];
                let note = format!("holds the stack of thread {} ({})", t.tid, t.name);
                r.details = if r.details.is_empty() {
                    note
                } else {
                    format!("{}; {note}", r.details)
                };
            }
        }
    }
    for (i, evidence, confidence) in unknown {
        mark_stack(
            regions,
            plan,
            i,
            "Thread stack (TID unknown)".into(),
            evidence,
            None,
            Some(confidence),
        );
    }
}

/// Says on the memory at `r` (of another type than Stack) that thread `t`
/// is on it: on the part (a goroutine stack) that holds its stack pointer,
/// or on the mapping.
fn name_thread_on(r: &mut Region, t: &ThreadInfo) {
    let note = format!("thread {} ({}) on it", t.tid, t.name);
    let sp = t.stack_pointer.or(t.tcb).unwrap_or(r.start);
    if let Some(p) = r.parts.iter_mut().find(|p| p.start <= sp && sp < p.end) {
        // A thread on its own stack (a Go M's g0) is named there already.
        if p.tid != Some(t.tid) {
            p.details = format!("{}; {note}", p.details);
        }
        return;
    }
    let note = format!("holds the stack of thread {} ({})", t.tid, t.name);
    r.details = if r.details.is_empty() {
        note
    } else {
        format!("{}; {note}", r.details)
    };
}

/// Stacks of the threads that neither a stack pointer nor a TCB placed
/// (running threads ptrace could not stop), and of the `displaced` ones,
/// whose stack pointer is on other memory: a TCB read now that names one
/// of them adds it to `owner`; the other stack-shaped mappings with a live
/// TCB, or, when their tops cannot be read, with the shape alone (if there
/// are no more of them than threads left), are returned to be typed Stack
/// with a lower confidence and no TID.
fn by_shape<'t>(
    regions: &mut [Region],
    ctx: &Context<'t>,
    inspector: &mut dyn Inspector,
    plan: &Plan,
    owner: &mut Vec<(usize, &'t ThreadInfo)>,
    displaced: &HashSet<u32>,
) -> Vec<(usize, &'static str, Confidence)> {
    // Threads whose own stack a runtime found inside its memory (a Go M's
    // g0 in the arenas) are not missing.
    let placed: HashSet<u32> = regions
        .iter()
        .flat_map(|r| &r.parts)
        .filter_map(|p| p.tid)
        .collect();
    let mut missing: HashMap<u32, &ThreadInfo> = ctx
        .threads
        .iter()
        .filter(|t| {
            t.tid != ctx.pid
                && !placed.contains(&t.tid)
                && (displaced.contains(&t.tid)
                    || (t.stack_pointer.is_none()
                        && t.tcb.is_none()
                        && t.stack_pointer_source != StackPointerSource::Exited))
        })
        .map(|t| (t.tid, t))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let free = |i: usize| {
        !plan.is_grouped(i)
            && !plan.is_grouped(i - 1)
            && regions[i].memory_type == MemoryType::PrivateData
            && regions[i - 1].memory_type == MemoryType::PrivateData
    };
    let known: HashMap<usize, u32> = owner
        .iter()
        .filter(|(i, _)| stack_shaped(regions, *i))
        .map(|(i, t)| (*i, t.tid))
        .collect();
    let mut candidates: Vec<usize> = (1..regions.len())
        .filter(|&i| stack_shaped(regions, i) && (known.contains_key(&i) || free(i)))
        .collect();
    candidates.sort_unstable();
    let all_tids: HashSet<u32> = ctx.threads.iter().map(|t| t.tid).collect();
    let tops = scan_tcbs(
        regions,
        &candidates,
        &known,
        &all_tids,
        ctx.pointer_width,
        inspector,
    );
    let mut out = Vec::new();
    let mut shape_only = Vec::new();
    for (i, top) in tops {
        if known.contains_key(&i) {
            continue;
        }
        match top {
            Top::Tcb { tid: Some(0), .. } => {
                regions[i].details = "glibc's cached stack of an exited thread".into();
            }
            Top::Tcb { tid: Some(v), .. } if missing.contains_key(&v) => {
                owner.push((i, missing.remove(&v).expect("checked")));
            }
            Top::Tcb { .. } => out.push((
                i,
                "glibc thread stack shape: PROT_NONE guard below, a thread control block at its top; no thread's TID found in it",
                Confidence::Medium,
            )),
            Top::Unreadable | Top::NoTcb => shape_only.push(i),
        }
    }
    // The shape alone stands in only for threads that gave no stack
    // pointer: a displaced thread's own stack may be in the memory it is
    // on (a Go thread's g0 stack inside the arenas without cgo).
    let left = missing
        .keys()
        .filter(|t| !displaced.contains(t))
        .count()
        .saturating_sub(out.len());
    if !shape_only.is_empty() && shape_only.len() <= left {
        out.extend(shape_only.into_iter().map(|i| {
            (
                i,
                "glibc thread stack shape: anonymous read-write mapping directly above a PROT_NONE guard, while threads' stacks are missing (its top was not read)",
                Confidence::Low,
            )
        }));
    }
    out
}

/// Types VMA `i` (plain anonymous PrivateData) Stack, with the PROT_NONE
/// mapping right below it as its guard when there is one.
fn mark_stack(
    regions: &mut [Region],
    plan: &mut Plan,
    i: usize,
    label: String,
    evidence: &'static str,
    tid: Option<u32>,
    confidence: Option<Confidence>,
) {
    let r = &mut regions[i];
    r.memory_type = MemoryType::Stack;
    r.tid = tid;
    r.details = label.clone();
    r.evidence = Cow::Borrowed(evidence);
    if let Some(c) = confidence {
        r.confidence = c;
    }
    let start = r.start;
    let has_guard = i > 0 && !plan.is_grouped(i - 1) && {
        let g = &regions[i - 1];
        g.end == start
            && g.perms.none()
            && !g.perms.shared()
            && is_plain_anon(g)
            && g.memory_type == MemoryType::PrivateData
    };
    if has_guard {
        let g = &mut regions[i - 1];
        g.memory_type = MemoryType::Stack;
        g.details = "guard page".into();
        g.evidence = Cow::Borrowed("PROT_NONE mapping directly below a thread stack");
        if let Some(c) = confidence {
            g.confidence = c;
        }
        let group_evidence = if evidence == BY_SP {
            "thread stack and its guard"
        } else {
            evidence
        };
        let claim = Claim::new(MemoryType::Stack, label, group_evidence)
            .confidence(confidence.unwrap_or(Confidence::Certain));
        plan.add(i - 1, 2, claim, tid);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::FakeInspector;
    use super::super::{classify, Context};
    use super::*;
    use crate::proc::smaps::Mapping;

    fn anon(start: u64, end: u64, perms: &[u8; 4], path: &str) -> Mapping {
        Mapping {
            start,
            end,
            perms: *perms,
            path: path.into(),
            ..Mapping::default()
        }
    }

    fn thread(tid: u32, sp: Option<u64>) -> ThreadInfo {
        ThreadInfo {
            tid,
            name: format!("t{tid}"),
            stack_pointer: sp,
            stack_pointer_source: StackPointerSource::Syscall,
            tcb: None,
        }
    }

    #[test]
    fn stacks_with_and_without_guard() {
        let maps = vec![
            anon(0x1000, 0x2000, b"---p", ""),
            anon(0x2000, 0x9000, b"rw-p", ""),   // t11, with guard
            anon(0x9000, 0xa000, b"---p", ""),   // a guard of nothing
            anon(0x10000, 0x20000, b"rw-p", ""), // t12, user stack
            anon(0x7000_0000, 0x7000_8000, b"rw-p", "[stack]"),
        ];
        let threads = [
            thread(10, Some(0x7000_7f00)),
            thread(11, Some(0x8ff0)),
            thread(12, Some(0x10100)),
            thread(13, None),
        ];
        let ctx = Context {
            pid: 10,
            pointer_width: 8,
            page_size: 4096,
            threads: &threads,
        };
        let (r, w) = classify(maps, &ctx, &mut FakeInspector::default());
        assert_eq!(r.len(), 4, "{r:#?}");
        assert_eq!(
            (r[0].memory_type, r[0].tid, r[0].sub_blocks.len()),
            (MemoryType::Stack, Some(11), 2)
        );
        assert_eq!(r[0].sub_blocks[0].details, "guard page");
        assert_eq!(r[1].memory_type, MemoryType::PrivateData);
        assert_eq!((r[2].memory_type, r[2].tid), (MemoryType::Stack, Some(12)));
        assert_eq!((r[3].memory_type, r[3].tid), (MemoryType::Stack, Some(10)));
        assert!(r[3].details.starts_with("Thread 10"));
        assert!(
            w.is_empty(),
            "a thread without SP is reported by the collector, not here"
        );
    }

    /// The top 8 KiB of a stack ending at `end`, with an x86-64 TCB
    /// (self-pointers at 0 and 16) 0x900 below the end holding `tid` at
    /// 0x2d0.
    fn top_with_tcb(end: u64, tid: u32) -> (u64, Vec<u8>) {
        let base = end - 8192;
        let mut b = vec![0u8; 8192];
        let off = 8192 - 0x900;
        let a = base + off as u64;
        b[off..off + 8].copy_from_slice(&a.to_ne_bytes());
        b[off + 16..off + 24].copy_from_slice(&a.to_ne_bytes());
        b[off + 0x2d0..off + 0x2d4].copy_from_slice(&tid.to_ne_bytes());
        (base, b)
    }

    #[test]
    fn running_threads_are_placed_by_their_tcb() {
        let mb = 0x10_0000;
        let stack = |k: u64| {
            [
                anon(k * mb, k * mb + 0x1000, b"---p", ""),
                anon(k * mb + 0x1000, (k + 1) * mb, b"rw-p", ""),
            ]
        };
        let mut maps = Vec::new();
        for k in 1..=5 {
            maps.extend(stack(k));
        }
        let mut fake = FakeInspector::default();
        // 1: thread 11, known by its SP (calibrates); 2: running thread 12;
        // 3: an exited thread's cached stack; 4: a TID not in the list;
        // 5: unreadable.
        for (k, tid) in [(1u64, 11u32), (2, 12), (3, 0), (4, 999)] {
            fake.memory.push(top_with_tcb((k + 1) * mb, tid));
        }
        let mut running = thread(12, None);
        running.stack_pointer_source = StackPointerSource::Deadline;
        let threads = [thread(10, None), thread(11, Some(2 * mb - 0x3000)), running];
        let ctx = Context {
            pid: 10,
            pointer_width: 8,
            page_size: 4096,
            threads: &threads,
        };
        let (r, _) = classify(maps, &ctx, &mut fake);
        // Stacks 1, 2 and 4 are groups; 3 and 5 stay two VMAs each.
        assert_eq!(r.len(), 7, "{r:#?}");
        assert_eq!((r[0].memory_type, r[0].tid), (MemoryType::Stack, Some(11)));
        assert_eq!((r[1].memory_type, r[1].tid), (MemoryType::Stack, Some(12)));
        assert!(r[1].evidence.contains("TCB"), "{}", r[1].evidence);
        assert_eq!(r[3].memory_type, MemoryType::PrivateData, "{:?}", r[3]);
        assert_eq!(r[3].details, "glibc's cached stack of an exited thread");
        assert_eq!(
            (r[4].memory_type, r[4].tid, r[4].confidence),
            (MemoryType::Stack, None, Confidence::Medium)
        );
        assert_eq!(r[4].details, "Thread stack (TID unknown)");
        // The fifth is unreadable, but no thread is left for it.
        assert_eq!(r[6].memory_type, MemoryType::PrivateData);
    }

    #[test]
    fn tid_offset_is_calibrated_from_the_tid_set_alone() {
        let regions: Vec<Region> = [
            anon(0x10_0000, 0x10_1000, b"---p", ""),
            anon(0x10_1000, 0x20_0000, b"rw-p", ""),
            anon(0x20_0000, 0x20_1000, b"---p", ""),
            anon(0x20_1000, 0x30_0000, b"rw-p", ""),
        ]
        .into_iter()
        .map(Region::from_mapping)
        .collect();
        let mut fake = FakeInspector::default();
        fake.memory.push(top_with_tcb(0x20_0000, 21));
        fake.memory.push(top_with_tcb(0x30_0000, 22));
        let tids: HashSet<u32> = [20, 21, 22].into();
        let got = scan_tcbs(&regions, &[1, 3], &HashMap::new(), &tids, 8, &mut fake);
        let tid = |t: &Top| match t {
            Top::Tcb { tid, .. } => *tid,
            _ => None,
        };
        assert_eq!(
            got.iter().map(|(_, t)| tid(t)).collect::<Vec<_>>(),
            [Some(21), Some(22)]
        );
        assert!(!stack_shaped(&regions, 0));
    }
}
