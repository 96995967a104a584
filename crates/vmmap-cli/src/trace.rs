//! `vmmap trace`: what a traced run (`vmmap run`) recorded: the summary,
//! the history and the regions view here, the analyses in
//! `trace_views.rs`.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::text::Escaped;
use vmmap_core::units::size;
use vmmap_trace::analysis::describe;
use vmmap_trace::decode::{Decoder, Event};

use crate::cli::{TraceArgs, TraceView};
use crate::{exit, output_error, Failure};

/// Calls `f` with each trace message of the file, one at a time.
fn stream(path: &Path, mut f: impl FnMut(&[u8])) -> Result<(), Failure> {
    let what = crate::shown(path);
    let mut s = crate::trace_views::open(path)?;
    let mut any = false;
    while let Some(m) = s.next_payload() {
        any = true;
        f(m);
    }
    if let Some(p) = &s.problem {
        eprintln!("vmmap: warning: {what}: {p}; the trace before it is used");
    }
    if !any {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!(
                "{what}: no trace in this file (it was not written by `vmmap run`, or the agent never started)"
            ),
        });
    }
    Ok(())
}

/// Reads every record of the file's trace on a second thread, calling
/// `each` in time order; warns about damage, fails when there is no trace.
fn scan_file(
    path: &Path,
    each: impl FnMut(&vmmap_trace::Record),
) -> Result<vmmap_trace::scan::Scan, Failure> {
    crate::trace_views::scan_file(path, Vec::new(), each)
}

fn summarize_file(
    path: &Path,
) -> Result<
    (
        vmmap_trace::Summary,
        vmmap_trace::TraceInfo,
        Option<vmmap_trace::TraceError>,
    ),
    Failure,
> {
    let mut acc = vmmap_trace::summary::Summarizer::default();
    let scan = scan_file(path, |r| acc.add(r))?;
    Ok((acc.finish(&scan.info), scan.info, scan.damage))
}

/// A size in the summary's sentences: "0B" where the tables leave a
/// blank cell.
fn bytes(v: u64) -> String {
    if v == 0 {
        "0B".into()
    } else {
        size(v, false)
    }
}

/// `unwritten`: the file could not be written to its end (`vmmap run`
/// said why just before), so an image without its end record was cut
/// there rather than killed.
pub(crate) fn print_summary(
    w: &mut impl Write,
    s: &vmmap_trace::Summary,
    info: &vmmap_trace::TraceInfo,
    problem: Option<vmmap_trace::TraceError>,
    unwritten: bool,
) -> io::Result<()> {
    let ops: u64 = s.calls.values().sum();
    let calls = s
        .calls
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if ops == 0 {
        writeln!(w, "vmmap: no operations recorded")?;
    } else {
        writeln!(w, "vmmap: {ops} operations recorded ({calls})")?;
    }
    let img = info.images.first();
    let peak_at = img
        .map(|_| info.trace_ns(s.peak_image, s.peak_tick) as f64 / 1e9)
        .unwrap_or(0.0);
    writeln!(
        w,
        "vmmap: {} allocations, {} bytes requested; heap peak {} at {:.2} s; {} blocks ({}) never freed; {} thread(s), {} call stacks",
        s.allocations,
        s.bytes_allocated,
        bytes(s.peak_bytes),
        peak_at,
        s.live_blocks,
        bytes(s.live_bytes),
        s.threads,
        s.stacks
    )?;
    if s.exec_released_blocks > 0 {
        writeln!(
            w,
            "vmmap: {} blocks ({}) were live when an exec replaced their image: released with it, not counted as never freed",
            s.exec_released_blocks,
            size(s.exec_released_bytes, false)
        )?;
    }
    if s.unknown_frees > 0 && info.images.iter().any(|i| i.attached) {
        writeln!(
            w,
            "vmmap: {} frees of blocks allocated before attach (unknown sizes: counted apart, not in the figures)",
            s.unknown_frees
        )?;
    }
    for (i, img) in info.images.iter().enumerate() {
        let exec_untraced = s
            .untraced_exec
            .as_ref()
            .filter(|(at, _)| *at as usize == i && !img.complete());
        if let (Some((_, path)), true) = (exec_untraced, img.attached) {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) ended with an exec of {}: the new program was not traced (an attach traces the program it attached to)",
                Escaped(&img.exe),
                Escaped(path)
            )?;
        } else if let Some((_, path)) = exec_untraced {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) ended with an exec of {}, whose new program was not traced: as the user it ran as (after giving up root), it may not read the agent's library, or vmmap could not hand it the trace file (another network namespace, seccomp); or it is statically linked or set-user-ID, so the loader did not load the agent",
                Escaped(&img.exe),
                Escaped(path)
            )?;
        } else if !img.complete() && unwritten {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) is recorded up to where the file could not be written any more",
                Escaped(&img.exe)
            )?;
        } else if !img.complete() {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) did not stop cleanly (killed or crashed, or the file could not be written to its end): its last ~100 ms of events may be missing",
                Escaped(&img.exe)
            )?;
        }
        if img.own_malloc {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) defines its own malloc (a statically linked allocator): its allocations never reached the agent, so only its mappings and other calls are in the trace",
                Escaped(&img.exe)
            )?;
        }
        if img.seccomp_stop {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) put itself under seccomp: the agent stopped recording first (a filter may kill the process for a call of the agent's), so what came after is not in the trace (docs/tracing.md, \"Seccomp\")",
                Escaped(&img.exe)
            )?;
        }
        if img.alone_stop {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) entered a namespace after giving up its access to the trace file: the agent's writer had to leave the process for that call and could not come back, so what came after is not in the trace (docs/tracing.md, \"Calls that need the process alone\")",
                Escaped(&img.exe)
            )?;
        }
        if let Some(errno) = img.no_writer {
            writeln!(
                w,
                "vmmap: note: image {i} ({}): the agent could not start its writer thread: {}; the program ran on untraced, so nothing of it after that is in the trace",
                Escaped(&img.exe),
                vmmap_trace::decode::no_writer_reason(errno)
            )?;
        }
        if img.stalls > 0 {
            writeln!(
                w,
                "vmmap: note: threads waited {} times for the agent's writer",
                img.stalls
            )?;
        }
    }
    if let Some(p) = problem {
        writeln!(
            w,
            "vmmap: warning: {p}; the totals cover what came before it"
        )?;
    }
    Ok(())
}

/// `vmmap trace FILE [summary|history]`
pub fn trace(a: &TraceArgs) -> Result<(), Failure> {
    if let Some(s) = &a.address {
        if u64::from_str_radix(s.trim_start_matches("0x"), 16).is_err() {
            return Err(Failure::usage(format!(
                "--address {s:?} is not a hexadecimal address such as 0x7f12ab345678"
            )));
        }
    }
    let stdout = io::stdout();
    let width = if a.json {
        None
    } else {
        crate::width::fit_width(a.wide)
    };
    let mut out = crate::width::FitLines::new(io::BufWriter::new(stdout.lock()), width);
    let res = match a.view {
        TraceView::Summary => summary(a, &mut out),
        TraceView::History => history(a, &mut out),
        TraceView::Regions => regions(a, &mut out),
        TraceView::Calltree => crate::trace_views::calltree(a, &mut out),
        TraceView::Leaks => crate::trace_views::leaks(a, &mut out),
        TraceView::Heap => crate::trace_views::heap(a, &mut out),
        TraceView::Allocations => crate::trace_views::allocations(a, &mut out),
        TraceView::Folded | TraceView::Flamegraph | TraceView::Pprof | TraceView::Speedscope => {
            return crate::trace_views::export(a);
        }
    }?;
    res.and_then(|_| out.flush())
        .map_err(|e| output_error(e, "the trace"))
}

fn summary(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    let (s, info, problem) = summarize_file(&a.file)?;
    if !a.json {
        return Ok(print_summary(out, &s, &info, problem, false));
    }
    let v = serde_json::json!({
        "schema": "vmmap.trace-summary",
        "version": 1,
        "images": info.images.iter().enumerate().map(|(n, i)| serde_json::json!({
            "pid": i.pid, "exe": i.exe, "cmdline": i.cmdline, "ended": i.ended, "exec_replaced": i.exec_replaced,
            "stalls": i.stalls, "attached": i.attached, "own_malloc": i.own_malloc, "seccomp_stop": i.seccomp_stop, "alone_stop": i.alone_stop, "no_writer_errno": i.no_writer, "untraced_exec": s.untraced_exec.as_ref().filter(|(at, _)| *at as usize == n && !i.complete()).map(|(_, p)| p), "event_bytes": i.event_bytes.0, "compressed_bytes": i.event_bytes.1,
        })).collect::<Vec<_>>(),
        "calls": s.calls,
        "allocations": s.allocations,
        "frees": s.frees,
        "bytes_allocated": s.bytes_allocated,
        "peak_bytes": s.peak_bytes,
        "live_blocks": s.live_blocks,
        "live_bytes": s.live_bytes,
        "exec_released_blocks": s.exec_released_blocks,
        "exec_released_bytes": s.exec_released_bytes,
        "unknown_frees": s.unknown_frees,
        "frees_allocated_before_attach": if info.images.iter().any(|i| i.attached) { s.unknown_frees } else { 0 },
        "mapped_bytes": s.mapped_bytes,
        "threads": s.threads,
        "stacks": s.stacks,
        "truncated_stacks": s.truncated_stacks,
        "modules": info.modules.last().map(|m| m.2.len()).unwrap_or(0),
        "maps_records": info.maps.len(),
        "problem": problem.map(|p| p.to_string()),
    });
    Ok(vmmap_core::export::to_writer_pretty(&mut *out, &v).and_then(|_| writeln!(out)))
}

fn history(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    let clocks =
        match vmmap_core::format::ChunkStream::open(&a.file, vmmap_core::format::CHUNK_TRACE) {
            Ok(s) => vmmap_trace::scan::facts(s),
            Err(_) => vmmap_trace::TraceInfo::default(),
        };
    let mut d = Decoder::new();
    let mut err: Option<io::Error> = None;
    let mut at = a.address.as_ref().map(|s| {
        let v = u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(u64::MAX);
        vmmap_trace::address::AddressFilter::new(v)
    });
    let mut print = |r: &vmmap_trace::Record, info: &vmmap_trace::TraceInfo| {
        if err.is_some() {
            return;
        }
        if let Some(f) = at.as_mut() {
            if !f.matches(r) {
                return;
            }
        }
        if !a.op.is_empty() && !a.op.iter().any(|o| o == r.event.name()) {
            return;
        }
        if a.tid.is_some_and(|t| t != r.tid) {
            return;
        }
        // Ticks convert to time with the whole run's clock anchors (while
        // streaming, only the first has been read), counted from the start
        // of the run as --at and --from count, whatever the filters keep.
        let t = clocks.trace_ns(r.image, r.tick);
        let secs = t as f64 / 1e9;
        if a.from.is_some_and(|f| secs < f) || a.to.is_some_and(|to| secs >= to) {
            return;
        }
        if a.json {
            if let Err(e) = write_json_record(out, r, t, info) {
                err = Some(e);
            }
            return;
        }
        let (detail, stack) = (describe(&r.event).to_string(), r.event.stack());
        let line = format!(
            "{:>12.6} {:>7} {:<14} {}",
            t as f64 / 1e9,
            r.tid,
            r.event.name(),
            detail
        );
        let mut res = writeln!(out, "{line}");
        if a.stacks && stack != 0 {
            if let Some(s) = info.stacks.get(stack as usize) {
                for f in &s.frames {
                    res = res.and_then(|_| writeln!(out, "{:>36}{f:#x}", ""));
                }
                if s.truncated {
                    res = res.and_then(|_| writeln!(out, "{:>36}(truncated)", ""));
                }
            }
        }
        if let Err(e) = res {
            err = Some(e);
        }
    };
    let mut failed = false;
    stream(&a.file, |m| {
        if !failed {
            if let Err(e) = d.feed(m, &mut print) {
                eprintln!("vmmap: warning: {e}; the history stops there");
                failed = true;
            }
        }
    })?;
    if let Err(e) = d.finish(&mut print) {
        eprintln!("vmmap: warning: {e}; the history stops there");
    }
    Ok(err.map_or(Ok(()), Err))
}

/// `regions`: the last map the agent recorded, each mapping with its owner.
/// Two passes with memory bounded by the mapping calls, not by the
/// allocations: the first keeps every record but allocations and frees,
/// which is enough to cut the map into parts and find the parts no call
/// made; the second keeps only the first allocation inside each of those.
fn regions(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    use vmmap_trace::owners::{owners, FirstAllocations};
    let is_heap_op = |e: &Event| {
        matches!(
            e,
            Event::Alloc { .. } | Event::Realloc { .. } | Event::Free { .. }
        )
    };
    let mut kept = Vec::new();
    let scan = scan_file(&a.file, |r| {
        if !is_heap_op(&r.event) {
            kept.push(r.clone());
        }
    })?;
    if let Some(e) = &scan.damage {
        eprintln!("vmmap: warning: {e}; the regions are as of the last good message");
    }
    let info = scan.info;
    let chosen = maps_index(&info, a.at);
    if let Some(last) = chosen {
        let (image, tick) = (info.maps[last].0, info.maps[last].1);
        // "Before start" is decided only for parts no allocation used.
        let unowned = owners(&kept, &info, last)
            .iter()
            .filter(|p| p.owner.unexplained())
            .map(|p| (p.mapping.start, p.mapping.end))
            .collect();
        let mut first = FirstAllocations::new(unowned);
        scan_file(&a.file, |r| {
            if r.image == image && r.tick <= tick {
                first.see(r);
            }
        })?;
        kept.extend(first.into_records());
        kept.sort_by_key(|r| r.tick);
    }
    Ok(write_regions(a, &kept, &info, chosen, out))
}

/// The maps record the regions view shows: the last one, or with --at the
/// last one recorded by then.
fn maps_index(info: &vmmap_trace::TraceInfo, at: Option<f64>) -> Option<usize> {
    let Some(s) = at else {
        return info.maps.len().checked_sub(1);
    };
    let ticks = vmmap_trace::scan::ticks_at(info, s.max(0.0));
    info.maps
        .iter()
        .rposition(|(img, tick, _)| ticks.get(*img as usize).is_none_or(|&t| *tick <= t))
}

fn write_regions(
    a: &TraceArgs,
    records: &[vmmap_trace::Record],
    info: &vmmap_trace::TraceInfo,
    chosen: Option<usize>,
    out: &mut impl Write,
) -> io::Result<()> {
    use vmmap_trace::owners::owners;
    let Some(last) = chosen else {
        return writeln!(
            out,
            "no map was recorded{} (the process ended before the agent's first flush)",
            if a.at.is_some() { " by then" } else { "" }
        );
    };
    let list = owners(records, info, last);
    let hex = |v: u64| format!("{v:#x}");
    // Symbolise the owners' stacks (a few hundred addresses at most).
    let image = info.maps[last].0;
    let mut syms = vmmap_trace::symbols::Symbols::default();
    let addrs: Vec<(u32, u64)> = list
        .iter()
        .filter_map(|r| info.stacks.get(r.owner.stack() as usize))
        .flat_map(|s| s.frames.iter().map(|f| (image, *f)))
        .collect();
    syms.resolve(info, &addrs, &crate::trace_views::symbol_options(a));
    let frames = |stack: u32| vmmap_trace::calltree::stack_frames(info, &syms, image, stack);
    // The function that made each mapping: the first frame of its stack
    // outside the allocator, libc, the loader and the agent.
    struct Span<'a> {
        start: u64,
        end: u64,
        path: &'a str,
    }
    let mut spans: Vec<Span<'_>> = list
        .iter()
        .map(|r| Span {
            start: r.mapping.start,
            end: r.mapping.end,
            path: &r.mapping.path,
        })
        .collect();
    spans.sort_unstable_by_key(|s| s.start);
    let maker = |stack: u32| -> Option<String> {
        let s = info.stacks.get(stack as usize)?;
        s.frames.iter().find_map(|&a| {
            let k = spans.partition_point(|s| s.start <= a);
            let path = k
                .checked_sub(1)
                .map(|k| &spans[k])
                .filter(|s| a < s.end)
                .map_or("", |s| s.path);
            if is_runtime_library(path) {
                return None;
            }
            syms.frames(image, a).first().map(|f| f.label(true))
        })
    };
    if a.json {
        let v: Vec<_> = list
            .iter()
            .map(|r| {
                let m = &r.mapping;
                let st = info.stacks.get(r.owner.stack() as usize).map(|s| s.frames.iter().map(|f| hex(*f)).collect::<Vec<_>>());
                serde_json::json!({
                    "start": hex(m.start), "end": hex(m.end), "size": m.size(),
                    "perms": String::from_utf8_lossy(&m.perms), "path": &*m.path,
                    "owner": owner_kind(&r.owner), "description": r.owner.describe(),
                    "made_by": maker(r.owner.stack()),
                    "stack": st.filter(|s| !s.is_empty()),
                    "frames": frames(r.owner.stack()).iter().map(|f| serde_json::json!({
                        "function": f.function, "file": f.file, "line": f.line, "inlined": f.inlined,
                    })).collect::<Vec<_>>(),
                    "first_use": match &r.owner {
                        vmmap_trace::owners::Owner::Unobserved { first_use: Some((op, _, tid, _, size, ptr)) } =>
                            serde_json::json!({"op": op, "tid": tid, "size": size, "ptr": hex(*ptr)}),
                        _ => serde_json::Value::Null,
                    },
                })
            })
            .collect();
        vmmap_core::export::to_writer_pretty(&mut *out, &v)?;
        return writeln!(out);
    }
    writeln!(
        out,
        "{:>33} {:<4} {:>8} {:<40} MADE BY",
        "START-END", "PERM", "SIZE", "PATH"
    )?;
    for r in &list {
        let m = &r.mapping;
        writeln!(
            out,
            "{:>16x}-{:<16x} {:<4} {:>8} {:<40} {}",
            m.start,
            m.end,
            String::from_utf8_lossy(&m.perms),
            size(m.size(), false),
            Escaped(if m.path.is_empty() { "[anon]" } else { &m.path }),
            Escaped(&describe_owner(&r.owner, maker(r.owner.stack()).as_deref()))
        )?;
        if a.stacks {
            for f in frames(r.owner.stack()) {
                writeln!(out, "{:>36}{}", "", Escaped(&f.label(true)))?;
            }
        }
    }
    Ok(())
}

/// A library whose frames say how memory was obtained, not who wanted it:
/// libc and its loader, the C++ runtime's `operator new`, the common
/// malloc replacements, and the agent itself.
fn is_runtime_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    [
        "libc.so",
        "libc-",
        "ld-linux",
        "ld-musl",
        "libpthread",
        "libstdc++",
        "libjemalloc",
        "libtcmalloc",
        "libmimalloc",
        "libvmmap_agent",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// An owner in words, naming the function that made the mapping when its
/// stack was recorded.
fn describe_owner(o: &vmmap_trace::owners::Owner, maker: Option<&str>) -> String {
    use vmmap_trace::owners::Owner;
    let Some(f) = maker else {
        return o.describe();
    };
    match o {
        Owner::Call { op, tid, .. } => format!("{f}: {op} in thread {tid}"),
        Owner::Unobserved {
            first_use: Some((op, _, tid, _, size, _)),
        } => format!("{f}: made inside glibc for {op}({size}) in thread {tid}"),
        Owner::ThreadStack { tid, .. } => format!("{f}: stack of thread {tid}"),
        _ => o.describe(),
    }
}

fn owner_kind(o: &vmmap_trace::owners::Owner) -> &'static str {
    use vmmap_trace::owners::Owner;
    match o {
        Owner::Call { .. } => "call",
        Owner::Unobserved { first_use: Some(_) } => "glibc-internal",
        Owner::Unobserved { first_use: None } => "unobserved",
        Owner::ThreadStack { .. } => "thread-stack",
        Owner::Image { .. } => "image",
        Owner::BeforeStart => "before-start",
        Owner::BeforeAttach => "before-attach",
        Owner::MainStack => "main-stack",
        Owner::Kernel => "kernel",
        Owner::Agent => "agent",
    }
}

/// One JSON object per line: time (ns from the start of the run), thread,
/// image, operation, its fields, and its stack's frames.
fn write_json_record(
    out: &mut impl Write,
    r: &vmmap_trace::Record,
    t: u64,
    info: &vmmap_trace::TraceInfo,
) -> io::Result<()> {
    use serde_json::json;
    let hex = |v: u64| format!("{v:#x}");
    let mut o = match &r.event {
        Event::Alloc {
            ptr, size, align, ..
        } => json!({"ptr": hex(*ptr), "size": size, "align": align}),
        Event::Realloc { old, new, size, .. } => {
            json!({"old": hex(*old), "new": hex(*new), "size": size})
        }
        Event::Free { ptr } => json!({"ptr": hex(*ptr)}),
        Event::Mmap {
            addr,
            len,
            prot,
            flags,
            fd,
            offset,
            ..
        } => {
            json!({"addr": hex(*addr), "len": len, "prot": prot, "flags": flags, "fd": fd, "offset": offset})
        }
        Event::Munmap { addr, len, .. } => json!({"addr": hex(*addr), "len": len}),
        Event::Mremap {
            old,
            old_len,
            new,
            new_len,
            flags,
            ..
        } => {
            json!({"old": hex(*old), "old_len": old_len, "new": hex(*new), "new_len": new_len, "flags": flags})
        }
        Event::Mprotect {
            addr, len, prot, ..
        } => json!({"addr": hex(*addr), "len": len, "prot": prot}),
        Event::Madvise {
            addr, len, advice, ..
        } => json!({"addr": hex(*addr), "len": len, "advice": advice}),
        Event::Brk { old, new, .. } => json!({"old": hex(*old), "new": hex(*new)}),
        Event::ThreadStart {
            pthread,
            stack_lo,
            stack_hi,
        } => {
            json!({"pthread": hex(*pthread), "stack_lo": hex(*stack_lo), "stack_hi": hex(*stack_hi)})
        }
        Event::ThreadExit => json!({}),
        Event::ThreadName { pthread, name } => json!({"pthread": hex(*pthread), "name": name}),
        Event::ThreadCreate { pthread, .. } => json!({"pthread": hex(*pthread)}),
        Event::Dlopen {
            handle,
            flags,
            path,
            ..
        } => json!({"handle": hex(*handle), "flags": flags, "path": path}),
        Event::Dlclose { handle, .. } => json!({"handle": hex(*handle)}),
        Event::Fork { pid, .. } => json!({"child": pid}),
        Event::Exec { path, .. } => json!({"path": path}),
    };
    o["t_ns"] = json!(t);
    o["tid"] = json!(r.tid);
    o["image"] = json!(r.image);
    o["op"] = json!(r.event.name());
    let stack = r.event.stack();
    if stack != 0 {
        if let Some(s) = info.stacks.get(stack as usize) {
            o["stack"] = json!(s.frames.iter().map(|f| hex(*f)).collect::<Vec<_>>());
            o["truncated"] = json!(s.truncated);
        }
    }
    vmmap_core::export::to_writer(&mut *out, &o)?;
    writeln!(out)
}
