//! `vmmap run` (launch a program with the tracing agent) and `vmmap trace`
//! (read what it recorded).

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmmap_core::collect::Options;
use vmmap_core::text::Escaped;
use vmmap_core::trace::analysis::describe;
use vmmap_core::trace::decode::{Decoder, Event};
use vmmap_core::trace::{launch, supervise};
use vmmap_core::units::size;

use crate::cli::{RunArgs, TraceArgs};
use crate::record::parse_duration;
use crate::{exit, output_error, Failure};

fn cannot_trace(message: String) -> Failure {
    Failure {
        code: exit::CANNOT_TRACE,
        message,
    }
}

/// Why `program` could not be started, with what to do about the usual
/// causes.
fn spawn_failure(program: &Path, e: &io::Error) -> Failure {
    let code = match e.raw_os_error() {
        Some(libc::EACCES) => exit::PERMISSION,
        _ => exit::OTHER,
    };
    let why = launch::spawn_advice(e).map_or_else(|| e.to_string(), str::to_string);
    Failure {
        code,
        message: format!("cannot start {}: {why}", program.display()),
    }
}

/// `vmmap run [OPTIONS] -- PROGRAM ARGS…`
pub fn run(a: &RunArgs, proc_root: &Path) -> Result<(), Failure> {
    let interval = parse_duration(&a.interval).ok_or_else(|| {
        Failure::usage(format!(
            "--interval {:?} is not a time such as 500ms, 1s or 2m",
            a.interval
        ))
    })?;
    let name = &a.command[0];
    let program = launch::find_program(name).ok_or_else(|| Failure {
        code: exit::NO_PROCESS,
        message: format!(
            "{}: no such program (not a file, nor on $PATH)",
            Path::new(name).display()
        ),
    })?;
    let agent = if a.snapshot_only {
        None
    } else {
        if let Some(why) = launch::untraceable(&program) {
            return Err(cannot_trace(format!(
                "cannot trace: {why}. `vmmap run --snapshot-only -- …` records its snapshots without the agent"
            )));
        }
        Some(launch::find_agent(a.agent.as_deref()).map_err(cannot_trace)?)
    };
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| launch::default_output(&program));
    if crate::is_stdout(&output) {
        return Err(Failure::usage(
            "-o - is not possible for vmmap run: the traced program appends to the trace file by name; give a file name",
        ));
    }
    let what = crate::shown(&output).into_owned();
    let out_err = |e: io::Error| Failure {
        code: exit::OUTPUT,
        message: format!("cannot write {what}: {e}"),
    };
    let spec = launch::Launch {
        program: program.clone(),
        argv0: name.clone(),
        args: a.command[1..].to_vec(),
        cwd: a.cwd.clone(),
        output: output.clone(),
        agent: agent.clone(),
        frame_pointers: a.unwind == "fp",
        follow_forks: a.follow_forks,
        quiet_stdio: false,
    };
    // Ctrl+C reaches the program (same process group); vmmap waits for it
    // to end and closes the file.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGQUIT,
    ] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&interrupted));
    }
    // Followed children write files of their own next to the main one:
    // what is there before the run is not theirs.
    let before = if a.follow_forks {
        child_files(&output)
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let opts = Options::default()
        .proc_root(proc_root)
        .ptrace(false)
        .read_memory(true);
    // Snapshots at start and at exit come from the supervisor itself.
    let mut run = supervise::start(&spec, opts, !a.no_exit_snapshot).map_err(|e| match e {
        launch::LaunchError::Output(e) => Failure {
            code: exit::OUTPUT,
            message: format!("cannot create {what}: {e}"),
        },
        launch::LaunchError::Spawn(e) => spawn_failure(&program, &e),
    })?;
    let pid = run.pid;
    let mut next = start + interval;
    // A snapshot once the agent is loaded and running (the one at exec
    // precedes the loader), unless an interval's comes first.
    let mut loaded_taken = agent.is_none();
    let status = loop {
        if let Some(st) = run.try_wait() {
            break st.map_err(|e| Failure {
                code: exit::OTHER,
                message: format!("waiting for {}: {e}", program.display()),
            })?;
        }
        if interrupted.swap(false, Ordering::Relaxed) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let loaded = !loaded_taken && run.agent_started();
        let due = !interval.is_zero() && Instant::now() >= next;
        if loaded || due {
            loaded_taken = true;
            if due {
                next += interval;
            }
            match run.snapshot() {
                Ok(()) => {}
                Err(supervise::SnapshotError::Write(e)) => return Err(out_err(e)),
                Err(e) => eprintln!("vmmap: snapshot of {pid} failed: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let snapshots = run.snapshots();
    let (file, total) = run.finish().map_err(out_err)?;
    vmmap_core::output::sync(&file).map_err(out_err)?;
    if !a.quiet {
        for n in run.notes() {
            eprintln!("vmmap: note: {n}");
        }
    }
    if !a.quiet {
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "vmmap: {} (pid {pid}) ran {:.2} s and {}; {snapshots} snapshot(s)",
            crate::shown(&program),
            elapsed.as_secs_f64(),
            describe_status(&status)
        );
        if agent.is_some() {
            if let Err(e) = write_summary(&mut err, &output) {
                let _ = writeln!(err, "vmmap: {e}");
            }
        }
        let size_now = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(total);
        let _ = writeln!(
            err,
            "vmmap: wrote {what} ({}); `vmmap trace {what}` shows it",
            size(size_now, false)
        );
        if a.follow_forks {
            let children: Vec<_> = child_files(&output)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            for (path, _, len) in &children {
                let _ = writeln!(
                    err,
                    "vmmap: wrote {} ({}), the trace of a followed child (pid {})",
                    crate::shown(path),
                    size(*len, false),
                    child_pid(path).unwrap_or_default()
                );
            }
            if children.is_empty() {
                let _ = writeln!(err, "vmmap: no child was traced (none was started, or none kept the agent's environment)");
            }
        }
    }
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(Failure {
            code: c.clamp(0, 255) as u8,
            message: String::new(),
        }),
        (None, Some(s)) => Err(Failure {
            code: (128 + s).clamp(0, 255) as u8,
            message: String::new(),
        }),
        _ => Err(Failure {
            code: exit::OTHER,
            message: String::new(),
        }),
    }
}

/// The files of followed children next to `main` (`STEM.PID.vmmap`, and
/// `STEM.PID.PID2.vmmap` for their own children), with their modification
/// time and size, in name order.
fn child_files(main: &Path) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)> {
    let dir = match main.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(stem) = main.file_stem().and_then(|s| s.to_str()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let Some(pids) = name
                .to_str()
                .and_then(|n| n.strip_prefix(stem))
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".vmmap"))
            else {
                return false;
            };
            pids.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| {
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some((
                main.with_file_name(e.file_name()),
                m.modified().ok(),
                m.len(),
            ))
        })
        .collect();
    v.sort();
    v
}

/// The pid in a child's file name: the last number of `STEM.PID.vmmap`.
fn child_pid(path: &Path) -> Option<u32> {
    path.file_stem()?.to_str()?.rsplit('.').next()?.parse().ok()
}

fn describe_status(s: &std::process::ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!(
            "was killed by signal {sig}{}",
            if s.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => "ended".into(),
    }
}

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
    each: impl FnMut(&vmmap_core::trace::Record),
) -> Result<vmmap_core::trace::scan::Scan, Failure> {
    crate::trace_views::scan_file(path, Vec::new(), each)
}

fn summarize_file(
    path: &Path,
) -> Result<
    (
        vmmap_core::trace::Summary,
        vmmap_core::trace::TraceInfo,
        Option<vmmap_core::trace::TraceError>,
    ),
    Failure,
> {
    let mut acc = vmmap_core::trace::summary::Summarizer::default();
    let scan = scan_file(path, |r| acc.add(r))?;
    Ok((acc.finish(&scan.info), scan.info, scan.damage))
}

fn write_summary(w: &mut impl Write, path: &Path) -> io::Result<()> {
    let (s, info, problem) = summarize_file(path).map_err(|f| io::Error::other(f.message))?;
    print_summary(w, &s, &info, problem)
}

fn print_summary(
    w: &mut impl Write,
    s: &vmmap_core::trace::Summary,
    info: &vmmap_core::trace::TraceInfo,
    problem: Option<vmmap_core::trace::TraceError>,
) -> io::Result<()> {
    let ops: u64 = s.calls.values().sum();
    let calls = s
        .calls
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(w, "vmmap: {ops} operations recorded ({calls})")?;
    let img = info.images.first();
    let peak_at = img
        .map(|_| info.trace_ns(s.peak_image, s.peak_tick) as f64 / 1e9)
        .unwrap_or(0.0);
    writeln!(
        w,
        "vmmap: {} allocations, {} bytes requested; heap peak {} at {:.2} s; {} blocks ({}) never freed; {} thread(s), {} call stacks",
        s.allocations,
        s.bytes_allocated,
        size(s.peak_bytes, false),
        peak_at,
        s.live_blocks,
        size(s.live_bytes, false),
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
    for (i, img) in info.images.iter().enumerate() {
        if !img.complete() {
            writeln!(
                w,
                "vmmap: note: image {i} ({}) did not stop cleanly (killed or crashed): its last ~100 ms of events may be missing",
                Escaped(&img.exe)
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
    let mut out = io::BufWriter::new(stdout.lock());
    let res = match a.view.as_str() {
        "history" => history(a, &mut out),
        "regions" => regions(a, &mut out),
        "calltree" => crate::trace_views::calltree(a, &mut out),
        "leaks" => crate::trace_views::leaks(a, &mut out),
        "heap" => crate::trace_views::heap(a, &mut out),
        "allocations" => crate::trace_views::allocations(a, &mut out),
        "folded" | "flamegraph" | "pprof" | "speedscope" => {
            return crate::trace_views::export(a);
        }
        _ => summary(a, &mut out),
    }?;
    res.and_then(|_| out.flush())
        .map_err(|e| output_error(e, "the trace"))
}

fn summary(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    let (s, info, problem) = summarize_file(&a.file)?;
    if !a.json {
        return Ok(print_summary(out, &s, &info, problem));
    }
    let v = serde_json::json!({
        "schema": "vmmap.trace-summary",
        "version": 1,
        "images": info.images.iter().map(|i| serde_json::json!({
            "pid": i.pid, "exe": i.exe, "cmdline": i.cmdline, "ended": i.ended, "exec_replaced": i.exec_replaced,
            "stalls": i.stalls, "event_bytes": i.event_bytes.0, "compressed_bytes": i.event_bytes.1,
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
            Ok(s) => vmmap_core::trace::scan::facts(s),
            Err(_) => vmmap_core::trace::TraceInfo::default(),
        };
    let mut d = Decoder::new();
    let mut err: Option<io::Error> = None;
    let mut at = a.address.as_ref().map(|s| {
        let v = u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(u64::MAX);
        vmmap_core::trace::address::AddressFilter::new(v)
    });
    let mut print = |r: &vmmap_core::trace::Record, info: &vmmap_core::trace::TraceInfo| {
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
    use vmmap_core::trace::owners::{owners, Owner};
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
        let mut unowned: Vec<(u64, u64)> = owners(&kept, &info, last)
            .iter()
            // "Before start" is decided only for parts no allocation used.
            .filter(|p| {
                matches!(
                    p.owner,
                    Owner::Unobserved { first_use: None } | Owner::BeforeStart
                )
            })
            .map(|p| (p.mapping.start, p.mapping.end))
            .collect();
        unowned.sort_unstable();
        let mut first: Vec<Option<vmmap_core::trace::Record>> = vec![None; unowned.len()];
        scan_file(&a.file, |r| {
            if r.image != image || r.tick > tick {
                return;
            }
            let Some((ptr, ..)) = r.event.allocated() else {
                return;
            };
            let k = unowned.partition_point(|u| u.0 <= ptr);
            if k > 0 && ptr < unowned[k - 1].1 && first[k - 1].is_none() {
                first[k - 1] = Some(r.clone());
            }
        })?;
        kept.extend(first.into_iter().flatten());
        kept.sort_by_key(|r| r.tick);
    }
    Ok(write_regions(a, &kept, &info, chosen, out))
}

/// The maps record the regions view shows: the last one, or with --at the
/// last one recorded by then.
fn maps_index(info: &vmmap_core::trace::TraceInfo, at: Option<f64>) -> Option<usize> {
    let Some(s) = at else {
        return info.maps.len().checked_sub(1);
    };
    let ticks = vmmap_core::trace::scan::ticks_at(info, s.max(0.0));
    info.maps
        .iter()
        .rposition(|(img, tick, _)| ticks.get(*img as usize).is_none_or(|&t| *tick <= t))
}

fn write_regions(
    a: &TraceArgs,
    records: &[vmmap_core::trace::Record],
    info: &vmmap_core::trace::TraceInfo,
    chosen: Option<usize>,
    out: &mut impl Write,
) -> io::Result<()> {
    use vmmap_core::trace::owners::owners;
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
    let mut syms = vmmap_core::trace::symbols::Symbols::default();
    let addrs: Vec<(u32, u64)> = list
        .iter()
        .filter_map(|r| info.stacks.get(r.owner.stack() as usize))
        .flat_map(|s| s.frames.iter().map(|f| (image, *f)))
        .collect();
    syms.resolve(info, &addrs, &crate::trace_views::symbol_options(a));
    let frames = |stack: u32| vmmap_core::trace::calltree::stack_frames(info, &syms, image, stack);
    // The function that made each mapping: the first frame of its stack
    // outside the allocator, libc, the loader and the agent.
    let mut spans: Vec<(u64, u64, &str)> = list
        .iter()
        .map(|r| (r.mapping.start, r.mapping.end, &*r.mapping.path))
        .collect();
    spans.sort_unstable_by_key(|s| s.0);
    let maker = |stack: u32| -> Option<String> {
        let s = info.stacks.get(stack as usize)?;
        s.frames.iter().find_map(|&a| {
            let k = spans.partition_point(|s| s.0 <= a);
            let path = k
                .checked_sub(1)
                .map(|k| spans[k])
                .filter(|s| a < s.1)
                .map_or("", |s| s.2);
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
                        vmmap_core::trace::owners::Owner::Unobserved { first_use: Some((op, _, tid, _, size, ptr)) } =>
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
fn describe_owner(o: &vmmap_core::trace::owners::Owner, maker: Option<&str>) -> String {
    use vmmap_core::trace::owners::Owner;
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

fn owner_kind(o: &vmmap_core::trace::owners::Owner) -> &'static str {
    use vmmap_core::trace::owners::Owner;
    match o {
        Owner::Call { .. } => "call",
        Owner::Unobserved { first_use: Some(_) } => "glibc-internal",
        Owner::Unobserved { first_use: None } => "unobserved",
        Owner::ThreadStack { .. } => "thread-stack",
        Owner::Image { .. } => "image",
        Owner::BeforeStart => "before-start",
        Owner::MainStack => "main-stack",
        Owner::Kernel => "kernel",
        Owner::Agent => "agent",
    }
}

/// One JSON object per line: time (ns from the start of the run), thread,
/// image, operation, its fields, and its stack's frames.
fn write_json_record(
    out: &mut impl Write,
    r: &vmmap_core::trace::Record,
    t: u64,
    info: &vmmap_core::trace::TraceInfo,
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
