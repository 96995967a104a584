//! Pass 4: thread stacks, from each thread's stack pointer.
//!
//! Linux stopped naming thread stacks in maps in 4.5, so the only reliable
//! way from outside is the stack pointer: the anonymous mapping that holds
//! it is that thread's stack, whatever its size (custom
//! `pthread_attr_setstacksize`) or origin (a user-supplied
//! `pthread_attr_setstack` buffer). The PROT_NONE mapping right below it is
//! glibc's guard and joins the block.

use std::borrow::Cow;

use super::{is_plain_anon, Context, Plan};
use crate::model::{MemoryType, Region, ThreadInfo};

pub(super) fn plan_stacks(
    regions: &mut [Region],
    ctx: &Context<'_>,
    plan: &mut Plan,
    warnings: &mut Vec<String>,
) {
    // Which thread's stack each VMA holds; the lowest TID wins if two
    // threads point into one mapping (a user-supplied stack shared by
    // accident, or a thread that switched stacks).
    let mut owner: Vec<(usize, &ThreadInfo)> = Vec::new();
    for t in ctx.threads {
        let Some(sp) = t.stack_pointer else {
            continue;
        };
        let i = regions.partition_point(|r| r.end <= sp);
        if !regions.get(i).is_some_and(|r| r.contains(sp)) {
            warnings.push(format!(
                "thread {} ({}): stack pointer {sp:#x} is in no mapping",
                t.tid, t.name
            ));
            continue;
        }
        match owner.iter_mut().find(|(j, _)| *j == i) {
            Some(o) if o.1.tid > t.tid => o.1 = t,
            Some(_) => {}
            None => owner.push((i, t)),
        }
    }
    for (i, t) in owner {
        let label = format!("Thread {} ({})", t.tid, t.name);
        let grouped = plan.is_grouped(i);
        let r = &mut regions[i];
        match r.memory_type {
            MemoryType::Stack if !grouped => {
                r.tid = Some(t.tid);
                r.details = label;
            }
            MemoryType::PrivateData if !grouped && is_plain_anon(r) && !r.perms.shared() => {
                r.memory_type = MemoryType::Stack;
                r.tid = Some(t.tid);
                r.details = label.clone();
                r.evidence = Cow::Borrowed("holds the thread's stack pointer");
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
                    plan.add(
                        i - 1,
                        2,
                        MemoryType::Stack,
                        label,
                        Cow::Borrowed("thread stack and its guard"),
                        None,
                        Some(t.tid),
                    );
                }
            }
            _ => {
                // The stack lives inside memory of another type (a stack
                // malloc()ed from an arena, say): keep that type, say so.
                let note = format!("holds the stack of thread {} ({})", t.tid, t.name);
                r.details = if r.details.is_empty() {
                    note
                } else {
                    format!("{}; {note}", r.details)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::FakeInspector;
    use super::super::{classify, Context};
    use super::*;
    use crate::model::StackPointerSource;
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
}
