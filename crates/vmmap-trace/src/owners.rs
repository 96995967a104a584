//! Who made each mapping of a traced process.
//!
//! The hooks see the mapping calls a program makes itself, but glibc makes
//! most of its mappings (malloc arenas, large chunks, thread stacks, the
//! brk heap) through internal calls no preloaded library can interpose.
//! The agent therefore also records `/proc/self/maps` whenever it changes;
//! here each mapping of such a record gets an owner: the recorded call
//! that made it, the thread whose stack it is, the module it holds, or,
//! for a mapping no hook saw, the first allocation that landed in it (the
//! call that made glibc create it).

use super::decode::{Event, Record, TraceInfo};
use vmmap_core::proc::smaps::Mapping;

/// Why a mapping exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A recorded call made it (mmap, mremap, brk, sbrk).
    Call {
        /// The operation.
        op: &'static str,
        /// When (agent ticks).
        tick: u64,
        /// Which thread.
        tid: i32,
        /// Its call stack id.
        stack: u32,
    },
    /// glibc or the loader made it through a call no hook sees; `first_use`
    /// is the first recorded allocation inside it: (operation, tick, tid,
    /// stack, size, address).
    Unobserved {
        /// The allocation that made glibc create it, if any landed in it.
        first_use: Option<(&'static str, u64, i32, u32, u64, u64)>,
    },
    /// A thread's stack.
    ThreadStack {
        /// The thread.
        tid: i32,
        /// The stack of the `pthread_create` call that made it (0 for the
        /// main thread or when unknown).
        created_by: u32,
    },
    /// A loaded module's file mapping.
    Image {
        /// The module's path.
        path: String,
    },
    /// There before the agent started: made by the kernel, the loader or
    /// libc's start-up, which no hook can see.
    BeforeStart,
    /// There when `vmmap attach` attached: who made it is unknown.
    BeforeAttach,
    /// The main thread's stack, made by the kernel at exec.
    MainStack,
    /// Kernel-provided pages (`[vdso]`, `[vvar]`, `[vsyscall]`).
    Kernel,
    /// The tracing agent's own memory (from its AGENT_MEMORY messages, or
    /// named `[anon:vmmap-agent…]` where the kernel names mappings).
    Agent,
}

impl Owner {
    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            Owner::Call { op, tid, .. } => format!("{op} in thread {tid}"),
            Owner::Unobserved {
                first_use: Some((op, _, tid, _, size, _)),
            } => {
                format!("made inside glibc for {op}({size}) in thread {tid}")
            }
            Owner::Unobserved { first_use: None } => {
                "made inside glibc or the loader (no hooked call)".into()
            }
            Owner::ThreadStack { tid, .. } => format!("stack of thread {tid}"),
            Owner::Image { path } => format!("image {path}"),
            Owner::BeforeStart => "there before tracing started (loader or libc start-up)".into(),
            Owner::BeforeAttach => "there before vmmap attached".into(),
            Owner::MainStack => "main thread stack (kernel, at exec)".into(),
            Owner::Kernel => "kernel".into(),
            Owner::Agent => "vmmap agent".into(),
        }
    }

    /// The call stack behind it (0 when none).
    pub fn stack(&self) -> u32 {
        match self {
            Owner::Call { stack, .. } => *stack,
            Owner::Unobserved {
                first_use: Some((_, _, _, s, _, _)),
            } => *s,
            Owner::ThreadStack { created_by, .. } => *created_by,
            _ => 0,
        }
    }
}

impl Owner {
    /// Whether no record explains the part yet: no call made it and no
    /// allocation was seen inside it, or it was there before tracing
    /// started. The first allocation inside it ([`FirstAllocations`]) may
    /// then be what made glibc create it.
    pub fn unexplained(&self) -> bool {
        matches!(
            self,
            Owner::Unobserved { first_use: None } | Owner::BeforeStart | Owner::BeforeAttach
        )
    }
}

/// The first allocation recorded inside each of some address ranges, from
/// records seen in record order: the second pass over a trace that finds
/// what made the [`Owner::unexplained`] parts of mappings.
pub struct FirstAllocations {
    /// `[start, end)`, sorted.
    ranges: Vec<(u64, u64)>,
    /// The first allocation inside each range, by index.
    found: Vec<Option<Record>>,
}

impl FirstAllocations {
    /// For the ranges `[start, end)`, which must not overlap.
    pub fn new(mut ranges: Vec<(u64, u64)>) -> Self {
        ranges.sort_unstable();
        let found = vec![None; ranges.len()];
        FirstAllocations { ranges, found }
    }

    /// Keeps `r` if it is the first allocation inside one of the ranges.
    pub fn see(&mut self, r: &Record) {
        let Some((ptr, ..)) = r.event.allocated() else {
            return;
        };
        let k = self.ranges.partition_point(|u| u.0 <= ptr);
        if k > 0 && ptr < self.ranges[k - 1].1 && self.found[k - 1].is_none() {
            self.found[k - 1] = Some(r.clone());
        }
    }

    /// The allocations kept, at most one a range.
    pub fn into_records(self) -> impl Iterator<Item = Record> {
        self.found.into_iter().flatten()
    }
}

/// A mapping, or the part of one that a single call made, and its owner.
#[derive(Debug, Clone)]
pub struct RegionOwner {
    /// The mapping as the agent saw it, cut to this part (the kernel merges
    /// neighbouring mappings made by different calls).
    pub mapping: Mapping,
    /// Why it exists.
    pub owner: Owner,
}

/// Sorted, non-overlapping (start, length) ranges.
fn merge(v: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = v.iter().map(|&(a, l)| (a, a.saturating_add(l))).collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out.into_iter().map(|(a, b)| (a, b - a)).collect()
}

/// Owners of every mapping in `info.maps[maps_index]`, from the records
/// (time-ordered, as the decoder releases them) up to that record's time.
pub fn owners(records: &[Record], info: &TraceInfo, maps_index: usize) -> Vec<RegionOwner> {
    let Some((image, tick, text)) = info.maps.get(maps_index) else {
        return Vec::new();
    };
    let mappings = vmmap_core::proc::smaps::parse(text.as_bytes()).unwrap_or_default();
    owners_of(records, info, *image, *tick, mappings)
}

/// Owners of `mappings` (in address order) of process image `image` as of
/// `tick`: the same rules as [`owners`] applied to any map, such as the
/// regions of a snapshot vmmap took of the traced process.
pub(crate) fn owners_of(
    records: &[Record],
    info: &TraceInfo,
    image: u32,
    tick: u64,
    mappings: Vec<Mapping>,
) -> Vec<RegionOwner> {
    let seen: Vec<&Record> = records
        .iter()
        .filter(|r| r.image == image && r.tick <= tick)
        .collect();
    // The kernel maps and unmaps whole pages: a call's range ends where
    // the kernel rounded it to (mmap(5000) holds two pages), else the
    // part past its last byte would look made by no call.
    let page = info
        .images
        .get(image as usize)
        .map_or(4096, |i| i.page_size.max(1));
    let up = |end: u64| end.div_ceil(page).saturating_mul(page);
    // Calls that create or remove mappings, oldest first.
    let calls: Vec<(&Record, u64, u64, bool)> = seen
        .iter()
        .filter_map(|r| match &r.event {
            Event::Mmap { addr, len, .. } => Some((*r, *addr, up(addr + len), true)),
            Event::Mremap { new, new_len, .. } => Some((*r, *new, up(new + new_len), true)),
            Event::Brk { old, new, .. } if new > old => Some((*r, up(*old), up(*new), true)),
            Event::Munmap { addr, len, .. } => Some((*r, *addr, up(addr + len), false)),
            _ => None,
        })
        .collect();
    let modules: Vec<&str> = info
        .modules
        .iter()
        .rfind(|(img, t, _)| *img == image && *t <= tick)
        .map(|(_, _, m)| m.iter().map(|m| m.path.as_str()).collect())
        .unwrap_or_default();
    // The agent's memory as of `tick`; before its first record (the
    // snapshot right after start is taken before the writer's first pass),
    // that first record: the agent unmaps nothing, so what it lists was
    // mapped by the agent then or moments later.
    let agent: Vec<(u64, u64)> = info
        .agent_memory
        .iter()
        .rfind(|(img, t, _)| *img == image && *t <= tick)
        .or_else(|| info.agent_memory.iter().find(|(img, _, _)| *img == image))
        .map(|(_, _, v)| {
            // A page-aligned range is one of the agent's mmaps: the kernel
            // gave it whole pages, so the tail of its last page is the
            // agent's too (else that slack shows as a mapping no call made).
            let whole: Vec<(u64, u64)> = v
                .iter()
                .map(|&(a, l)| {
                    if a % page == 0 {
                        (a, l.div_ceil(page) * page)
                    } else {
                        (a, l)
                    }
                })
                .collect();
            merge(&whole)
        })
        .unwrap_or_default();
    let mut out: Vec<RegionOwner> = Vec::new();
    for m in mappings {
        // The kernel merges neighbouring mappings that look alike, so one
        // mapping may hold what several calls made: each part gets its own
        // owner, the latest call that made or unmapped it deciding.
        for (part, made_by) in split(&m, &calls) {
            let owner = match made_by {
                Some(r) => Owner::Call {
                    op: r.event.name(),
                    tick: r.tick,
                    tid: r.tid,
                    stack: r.event.stack(),
                },
                None => {
                    // The agent's own memory may be merged in too.
                    for (sub, agent_part) in cut_by(&part, &agent) {
                        // File-backed parts too: the agent's library
                        // image is listed with its memory.
                        let owner = if agent_part {
                            Owner::Agent
                        } else {
                            owner_of(&sub, &seen, &modules)
                        };
                        out.push(RegionOwner {
                            mapping: sub,
                            owner,
                        });
                    }
                    continue;
                }
            };
            out.push(RegionOwner {
                mapping: part,
                owner,
            });
        }
    }
    // Mappings no hook saw: the first allocation inside each.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| out[i].mapping.start);
    for r in &seen {
        let Some((ptr, size, stack)) = r.event.allocated() else {
            continue;
        };
        let op = r.event.name();
        let k = order.partition_point(|&i| out[i].mapping.start <= ptr);
        let Some(&i) = k.checked_sub(1).and_then(|k| order.get(k)) else {
            continue;
        };
        if ptr < out[i].mapping.end {
            if let Owner::Unobserved {
                first_use: f @ None,
            } = &mut out[i].owner
            {
                *f = Some((op, r.tick, r.tid, stack, size, ptr));
            }
        }
    }
    // Inaccessible neighbours share their owner: a thread stack's guard
    // page lies below it, an arena's unused reservation above its heap.
    for i in 0..out.len() {
        let unowned = matches!(out[i].owner, Owner::Unobserved { first_use: None })
            && out[i].mapping.inode == 0;
        if !unowned {
            continue;
        }
        let blank = &out[i].mapping.perms[..3] == b"---";
        let next = out
            .get(i + 1)
            .filter(|n| n.mapping.start == out[i].mapping.end);
        if let Some(
            n @ RegionOwner {
                owner: Owner::ThreadStack { .. },
                ..
            },
        ) = next.filter(|_| blank)
        {
            out[i].owner = n.owner.clone();
            continue;
        }
        let prev = i
            .checked_sub(1)
            .map(|p| &out[p])
            .filter(|p| p.mapping.end == out[i].mapping.start);
        if let Some(
            p @ RegionOwner {
                owner: Owner::Image { .. },
                ..
            },
        ) = prev
        {
            // The loader zero-fills .bss past the file's end with an
            // anonymous mapping right after the image.
            out[i].owner = p.owner.clone();
            continue;
        }
        if let Some(
            p @ RegionOwner {
                owner: Owner::Unobserved { first_use: Some(_) } | Owner::Call { .. },
                ..
            },
        ) = prev.filter(|_| blank)
        {
            out[i].owner = p.owner.clone();
        }
    }
    // Still nothing: was it there when the agent first looked?
    let first = info
        .maps
        .iter()
        .find(|(img, _, _)| *img == image)
        .and_then(|(_, _, t)| vmmap_core::proc::smaps::parse(t.as_bytes()).ok())
        .unwrap_or_default();
    // An attached image's first map is the process's at attach: anything
    // in it was made before, by calls no hook saw.
    let attached = info.images.get(image as usize).is_some_and(|i| i.attached);
    for r in out.iter_mut() {
        let unexplained = if attached {
            // Also what glibc made for an allocation seen later: it was
            // there already.
            matches!(
                r.owner,
                Owner::Unobserved { .. } | Owner::BeforeStart | Owner::BeforeAttach
            )
        } else {
            matches!(r.owner, Owner::Unobserved { first_use: None })
        };
        if unexplained
            && first
                .iter()
                .any(|f| f.start <= r.mapping.start && r.mapping.end <= f.end)
        {
            r.owner = if attached {
                Owner::BeforeAttach
            } else {
                Owner::BeforeStart
            };
        }
    }
    out
}

/// Cuts a mapping at the edges of sorted, disjoint `ranges`: (part, inside
/// one of them).
fn cut_by(m: &Mapping, ranges: &[(u64, u64)]) -> Vec<(Mapping, bool)> {
    let mut out = Vec::new();
    let mut pos = m.start;
    let mut push = |s: u64, e: u64, inside: bool| {
        if s < e {
            let mut part = m.clone();
            part.offset += s - m.start;
            part.start = s;
            part.end = e;
            out.push((part, inside));
        }
    };
    for &(a, l) in ranges {
        let (x, y) = (a.max(m.start), (a + l).min(m.end));
        if x >= y {
            continue;
        }
        push(pos, x, false);
        push(x, y, true);
        pos = y;
    }
    push(pos, m.end, false);
    out
}

/// Cuts a mapping into the parts the recorded calls made (Some) and the
/// rest (None), in address order.
fn split<'a>(
    m: &Mapping,
    calls: &[(&'a Record, u64, u64, bool)],
) -> Vec<(Mapping, Option<&'a Record>)> {
    let mut free = vec![(m.start, m.end)];
    let mut parts: Vec<(u64, u64, Option<&'a Record>)> = Vec::new();
    for &(r, a, b, create) in calls.iter().rev() {
        if free.is_empty() {
            break;
        }
        let mut rest = Vec::with_capacity(free.len() + 1);
        for (s, e) in free {
            let (x, y) = (s.max(a), e.min(b));
            if x >= y {
                rest.push((s, e));
                continue;
            }
            if s < x {
                rest.push((s, x));
            }
            if y < e {
                rest.push((y, e));
            }
            // An unmap means what is there now came from elsewhere.
            parts.push((x, y, create.then_some(r)));
        }
        free = rest;
    }
    parts.extend(free.into_iter().map(|(s, e)| (s, e, None)));
    parts.sort_by_key(|p| p.0);
    // Neighbouring parts with the same maker are one part.
    let mut merged: Vec<(u64, u64, Option<&'a Record>)> = Vec::with_capacity(parts.len());
    for p in parts {
        match merged.last_mut() {
            Some(last) if last.1 == p.0 && same_maker(last.2, p.2) => last.1 = p.1,
            _ => merged.push(p),
        }
    }
    merged
        .into_iter()
        .map(|(s, e, r)| {
            let mut part = m.clone();
            part.offset += s - m.start;
            part.start = s;
            part.end = e;
            (part, r)
        })
        .collect()
}

fn same_maker(a: Option<&Record>, b: Option<&Record>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => std::ptr::eq(x, y),
        _ => false,
    }
}

fn owner_of(m: &Mapping, seen: &[&Record], modules: &[&str]) -> Owner {
    let path = &*m.path;
    if path.starts_with("[anon:vmmap-agent") {
        return Owner::Agent;
    }
    match path {
        "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]" => return Owner::Kernel,
        "[stack]" => return Owner::MainStack,
        _ => {}
    }
    let base = |p: &str| p.rsplit('/').next().map(str::to_string);
    if m.inode != 0
        && (modules.contains(&path)
            || modules
                .iter()
                .any(|mp| base(mp) == base(path) && !mp.is_empty()))
    {
        return Owner::Image {
            path: path.to_string(),
        };
    }
    // A thread's stack: its top lies in this mapping.
    for r in seen {
        if let Event::ThreadStart {
            pthread, stack_hi, ..
        } = &r.event
        {
            if *stack_hi > m.start && *stack_hi <= m.end {
                let created_by = seen
                    .iter()
                    .find_map(|c| match &c.event {
                        Event::ThreadCreate { pthread: p, stack } if p == pthread => Some(*stack),
                        _ => None,
                    })
                    .unwrap_or(0);
                return Owner::ThreadStack {
                    tid: r.tid,
                    created_by,
                };
            }
        }
    }
    Owner::Unobserved { first_use: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap(addr: u64, len: u64, tick: u64) -> Record {
        Record {
            stream: 0,
            tick,
            image: 0,
            tid: 1,
            event: Event::Mmap {
                addr,
                len,
                prot: 3,
                flags: 0x22,
                fd: -1,
                offset: 0,
                stack: 1,
            },
        }
    }

    #[test]
    fn a_merged_mapping_is_cut_into_the_parts_each_call_made() {
        let m = Mapping {
            start: 0x1000,
            end: 0x6000,
            ..Mapping::default()
        };
        let (a, b) = (mmap(0x2000, 0x1000, 1), mmap(0x2800, 0x2000, 2));
        let unmap = Record {
            stream: 0,
            tick: 3,
            image: 0,
            tid: 1,
            event: Event::Munmap {
                addr: 0x4000,
                len: 0x800,
                stack: 0,
            },
        };
        let calls = vec![
            (&a, 0x2000, 0x3000, true),
            (&b, 0x2800, 0x4800, true),
            (&unmap, 0x4000, 0x4800, false),
        ];
        let parts: Vec<(u64, u64, Option<u64>)> = split(&m, &calls)
            .into_iter()
            .map(|(p, r)| (p.start, p.end, r.map(|r| r.tick)))
            .collect();
        assert_eq!(
            parts,
            vec![
                (0x1000, 0x2000, None),
                (0x2000, 0x2800, Some(1)),
                (0x2800, 0x4000, Some(2)),
                (0x4000, 0x6000, None)
            ]
        );
    }

    #[test]
    fn merging_keeps_sorted_disjoint_ranges() {
        assert_eq!(
            merge(&[(0x3000, 0x1000), (0x1000, 0x1000), (0x1800, 0x1000)]),
            vec![(0x1000, 0x1800), (0x3000, 0x1000)]
        );
    }
}
