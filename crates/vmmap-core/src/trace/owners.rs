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
use crate::proc::smaps::Mapping;

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

/// A mapping and its owner.
#[derive(Debug, Clone)]
pub struct RegionOwner {
    /// The mapping as the agent saw it.
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

fn overlaps(a: u64, b: u64, m: &Mapping) -> bool {
    a < m.end && b > m.start
}

/// Owners of every mapping in `info.maps[maps_index]`, from the records
/// (time-ordered, as the decoder releases them) up to that record's time.
pub fn owners(records: &[Record], info: &TraceInfo, maps_index: usize) -> Vec<RegionOwner> {
    let Some((image, tick, text)) = info.maps.get(maps_index) else {
        return Vec::new();
    };
    let (image, tick) = (*image, *tick);
    let mappings = crate::proc::smaps::parse(text.as_bytes()).unwrap_or_default();
    let seen: Vec<&Record> = records
        .iter()
        .filter(|r| r.image == image && r.tick <= tick)
        .collect();
    // Calls that create or remove mappings, oldest first.
    let calls: Vec<(&Record, u64, u64, bool)> = seen
        .iter()
        .filter_map(|r| match &r.event {
            Event::Mmap { addr, len, .. } => Some((*r, *addr, addr + len, true)),
            Event::Mremap { new, new_len, .. } => Some((*r, *new, new + new_len, true)),
            Event::Brk { old, new, .. } if new > old => Some((*r, *old, *new, true)),
            Event::Munmap { addr, len, .. } => Some((*r, *addr, addr + len, false)),
            _ => None,
        })
        .collect();
    let modules: Vec<&str> = info
        .modules
        .iter()
        .rfind(|(img, t, _)| *img == image && *t <= tick)
        .map(|(_, _, m)| m.iter().map(|m| m.path.as_str()).collect())
        .unwrap_or_default();
    let agent: Vec<(u64, u64)> = info
        .agent_memory
        .iter()
        .rfind(|(img, t, _)| *img == image && *t <= tick)
        .map(|(_, _, v)| merge(v))
        .unwrap_or_default();
    let mut out: Vec<RegionOwner> = mappings
        .into_iter()
        .map(|m| {
            let covered: u64 = agent
                .iter()
                .map(|&(a, l)| (a + l).min(m.end).saturating_sub(a.max(m.start)))
                .sum();
            // A program's own call wins: the kernel may have merged its
            // mapping with an agent buffer next to it.
            let owner = match owner_of(&m, &calls, &seen, &modules) {
                Owner::Unobserved { first_use: None } if covered >= m.size() && m.inode == 0 => {
                    Owner::Agent
                }
                o => o,
            };
            RegionOwner { mapping: m, owner }
        })
        .collect();
    // Mappings no hook saw: the first allocation inside each.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| out[i].mapping.start);
    for r in &seen {
        let (op, ptr, size, stack) = match &r.event {
            Event::Alloc {
                ptr, size, stack, ..
            } => (r.event.name(), *ptr, *size, *stack),
            Event::Realloc {
                new, size, stack, ..
            } if *new != 0 => ("realloc", *new, *size, *stack),
            _ => continue,
        };
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
        .and_then(|(_, _, t)| crate::proc::smaps::parse(t.as_bytes()).ok())
        .unwrap_or_default();
    for r in out.iter_mut() {
        if matches!(r.owner, Owner::Unobserved { first_use: None })
            && first
                .iter()
                .any(|f| f.start == r.mapping.start && f.end == r.mapping.end)
        {
            r.owner = Owner::BeforeStart;
        }
    }
    out
}

fn owner_of(
    m: &Mapping,
    calls: &[(&Record, u64, u64, bool)],
    seen: &[&Record],
    modules: &[&str],
) -> Owner {
    let path = &*m.path;
    if path.starts_with("[anon:vmmap-agent") {
        return Owner::Agent;
    }
    match path {
        "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]" => return Owner::Kernel,
        "[stack]" => return Owner::MainStack,
        _ => {}
    }
    // The latest call that touched this range decides: a creation owns
    // it, an unmap means whatever is there now came from elsewhere.
    if let Some((r, _, _, create)) = calls.iter().rev().find(|(_, a, b, _)| overlaps(*a, *b, m)) {
        if *create {
            return Owner::Call {
                op: r.event.name(),
                tick: r.tick,
                tid: r.tid,
                stack: match &r.event {
                    Event::Mmap { stack, .. }
                    | Event::Mremap { stack, .. }
                    | Event::Brk { stack, .. } => *stack,
                    _ => 0,
                },
            };
        }
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
