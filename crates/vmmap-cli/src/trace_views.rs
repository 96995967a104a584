//! The symbolised views of `vmmap trace`: call tree, leaks, allocations of
//! a region, and the exports (folded, flame graph, pprof, speedscope).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};

use vmmap_core::format::{ChunkStream, FormatError};
use vmmap_core::text::Escaped;
use vmmap_core::units::size;
use vmmap_trace::analysis::{self, AnalysisError, Note, Options};
use vmmap_trace::calltree::{self, CallTree, Metric, TreeOptions};
use vmmap_trace::scan;
use vmmap_trace::summary::{StackCost, Summarizer};
use vmmap_trace::symbols::{short_path, SymbolOptions};
use vmmap_trace::TraceInfo;

use crate::cli::{TraceArgs, TraceView};
use crate::{exit, Failure};

pub use vmmap_trace::analysis::Analysis;

/// Opens a file's trace chunks, with the exit code its error needs.
pub fn open(path: &Path) -> Result<ChunkStream<io::BufReader<std::fs::File>>, Failure> {
    analysis::open(path).map_err(|e| open_failure(path, e))
}

/// The failure of a file that cannot be read or is no trace file.
fn open_failure(path: &Path, e: FormatError) -> Failure {
    let what = crate::shown(path);
    match e {
        FormatError::Io(e) => Failure {
            code: exit::OTHER,
            message: format!("cannot read {what}: {e}"),
        },
        e => Failure {
            code: exit::BAD_FILE,
            message: format!("{what}: {e}"),
        },
    }
}

/// The failure of a file that holds no trace.
fn no_trace(path: &Path) -> Failure {
    Failure {
        code: exit::BAD_FILE,
        message: format!(
            "{}: no trace in this file (it was not written by `vmmap run`, or the agent never started)",
            crate::shown(path)
        ),
    }
}

/// A trace in a format version this vmmap does not read.
fn unreadable(path: &Path, e: &vmmap_trace::TraceError) -> Failure {
    Failure {
        code: exit::BAD_FILE,
        message: format!("{}: {e}", crate::shown(path)),
    }
}

/// Reads every record of the file's trace (up to `until`, see
/// [`scan::scan_until`]) on a second thread, calling `each` in time order;
/// warns about a damaged file, fails when it holds no trace.
pub fn scan_file(
    path: &Path,
    until: Vec<u64>,
    each: impl FnMut(&vmmap_trace::Record),
) -> Result<scan::Scan, Failure> {
    let s = scan_unchecked(path, until, each)?;
    check_scan(path, s)
}

/// [`scan_file`] without its warning and checks, for a caller that may
/// have to stay silent (`vmmap run -q`); [`check_scan`] does them.
pub(crate) fn scan_unchecked(
    path: &Path,
    until: Vec<u64>,
    each: impl FnMut(&vmmap_trace::Record),
) -> Result<scan::Scan, Failure> {
    let file = vmmap_core::format::open_input(path).map_err(|e| open_failure(path, e))?;
    scan_open_unchecked(path, file, until, each)
}

/// [`scan_unchecked`] of the trace in `file`, already open, which
/// messages call `path`.
pub(crate) fn scan_open_unchecked(
    path: &Path,
    file: std::fs::File,
    until: Vec<u64>,
    each: impl FnMut(&vmmap_trace::Record),
) -> Result<scan::Scan, Failure> {
    keep_large_buffers_mapped();
    let stream = vmmap_core::format::ChunkStream::new(
        io::BufReader::with_capacity(1 << 20, file),
        vmmap_core::format::CHUNK_TRACE,
    )
    .map_err(|e| open_failure(path, e))?;
    Ok(scan::scan_until(stream, until, each))
}

/// Warns about a damaged file, fails when it holds no trace (or none this
/// vmmap reads).
pub(crate) fn check_scan(path: &Path, s: scan::Scan) -> Result<scan::Scan, Failure> {
    let what = crate::shown(path);
    if let Some(p) = &s.file_problem {
        eprintln!("vmmap: warning: {what}: {p}; the trace before it is used");
    }
    if s.messages == 0 {
        return Err(no_trace(path));
    }
    if let Some(e) = s.unreadable() {
        return Err(unreadable(path, e));
    }
    Ok(s)
}

/// Makes glibc serve every buffer of 1 MiB or more from its own mapping
/// and give it back when freed. By default glibc raises that threshold to
/// the size of the largest buffer freed so far, after which the
/// decompressed trace chunks (several megabytes each, one or two alive at
/// a time) come from the arena and stay resident: 64-70 MB peak instead
/// of 45 on a 10-million-operation trace.
fn keep_large_buffers_mapped() {
    // SAFETY: mallopt only changes an allocator setting; any value is
    // accepted or refused with 0.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };
}

/// Pretty JSON and a newline.
pub fn write_json(out: &mut impl Write, doc: &serde_json::Value) -> io::Result<()> {
    vmmap_core::export::to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

/// Reads the whole trace once (up to `--at`), counting only blocks inside
/// `range` when given, then symbolises the stacks that cost something.
pub fn analyse(a: &TraceArgs, range: Option<(u64, u64)>) -> Result<Analysis, Failure> {
    analyse_file(&a.file, a.at, range, &symbol_options(a), !a.no_symbol_cache)
}

/// [`analyse`] with explicit settings.
pub fn analyse_file(
    file: &Path,
    at: Option<f64>,
    range: Option<(u64, u64)>,
    symbols: &SymbolOptions,
    cache: bool,
) -> Result<Analysis, Failure> {
    let until = match at {
        Some(s) if s.is_nan() || s < 0.0 => {
            return Err(Failure::usage(format!(
                "--at {s} is not a time: give seconds since the program started, such as 2.5"
            )))
        }
        Some(s) => scan::ticks_at(&scan::facts(open(file)?), s),
        None => Vec::new(),
    };
    let opts = Options {
        until,
        region: range.map(|(lo, hi)| lo..hi),
        only_region: true,
        every_stack: false,
        symbols: symbols.clone(),
        cache,
    };
    keep_large_buffers_mapped();
    let what = crate::shown(file);
    let an = analysis::analyse(file, &opts, &AtomicU64::new(0), &AtomicBool::new(false)).map_err(
        |e| match e {
            AnalysisError::Open(e) => open_failure(file, e),
            AnalysisError::NoTrace(problem) => {
                if let Some(p) = problem {
                    eprintln!("vmmap: warning: {what}: {p}; the trace before it is used");
                }
                no_trace(file)
            }
            AnalysisError::Unreadable(e) => unreadable(file, &e),
            AnalysisError::Cancelled => Failure {
                code: exit::OTHER,
                message: "the analysis was cancelled".into(),
            },
        },
    )?;
    for n in &an.notes {
        match n {
            Note::FileProblem(_) => eprintln!("vmmap: warning: {what}: {n}"),
            Note::Damage(_) => eprintln!("vmmap: warning: {n}"),
            Note::NoSymbols(m) => eprintln!(
                "vmmap: note: no symbols for {}; its frames show as module+offset",
                Escaped(m)
            ),
            // A file that cannot be written (read-only, someone else's)
            // simply is not cached.
            Note::NotCached { .. } => {}
        }
    }
    Ok(an)
}

pub fn symbol_options(a: &TraceArgs) -> SymbolOptions {
    SymbolOptions::with_env(a.symbol_dirs.clone())
}

fn metric(a: &TraceArgs, default: Metric) -> Metric {
    a.metric
        .and_then(|m| Metric::parse(m.as_str()))
        .unwrap_or(default)
}

/// A size for a table cell: `0` rather than the blank `size` gives for
/// nothing, so a column of figures has no holes.
fn bytes(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        size(v, false)
    }
}

/// `calltree`
pub fn calltree(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    let an = analyse(a, None)?;
    let m = metric(a, Metric::Allocated);
    let mut t = CallTree::build(
        &an.info,
        &an.syms,
        &an.costs,
        &an.images,
        TreeOptions {
            bottom_up: a.bottom_up,
            lines: a.lines,
        },
    );
    t.sort(m);
    let total = m.of(&t.nodes[0].total).max(1);
    let keep = |n: usize| m.of(&t.nodes[n].total) as f64 * 100.0 / total as f64 >= a.min_percent;
    if a.json {
        let v = tree_json(&t, 0, 0, a.depth, &keep);
        let doc = serde_json::json!({
            "schema": "vmmap.trace-calltree",
            "version": 1,
            "direction": if a.bottom_up { "bottom-up" } else { "top-down" },
            "metric": a.metric.map_or("allocated", |m| m.as_str()),
            "tree": v,
        });
        return Ok(write_json(out, &doc));
    }
    Ok((|| {
        writeln!(
            out,
            "Call tree, {} (sorted by {}; entries under {}% hidden)",
            if a.bottom_up {
                "allocation sites first"
            } else {
                "callers first"
            },
            vmmap_trace::export::metric_title(m),
            a.min_percent
        )?;
        writeln!(
            out,
            "{:>10} {:>10} {:>10} {:>10} {:>10}  FUNCTION",
            "ALLOCATED", "CALLS", "LIVE", "PEAK", "TEMPORARY"
        )?;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((n, depth)) = stack.pop() {
            let node = &t.nodes[n];
            let c = &node.total;
            let label = node.frame.label(true);
            let inl = if node.frame.inlined { " [inlined]" } else { "" };
            writeln!(
                out,
                "{:>10} {:>10} {:>10} {:>10} {:>10}  {}{}{inl}",
                bytes(c.bytes),
                c.allocations,
                bytes(c.live_bytes),
                bytes(c.peak_bytes),
                c.temporary,
                "  ".repeat(depth),
                Escaped(&label),
            )?;
            if a.depth != 0 && depth + 1 >= a.depth {
                continue;
            }
            for &ch in node.children.iter().rev() {
                if keep(ch) {
                    stack.push((ch, depth + 1));
                }
            }
        }
        Ok(())
    })())
}

fn tree_json(
    t: &CallTree,
    n: usize,
    depth: usize,
    max_depth: usize,
    keep: &dyn Fn(usize) -> bool,
) -> serde_json::Value {
    let node = &t.nodes[n];
    let children: Vec<_> = if max_depth != 0 && depth + 1 >= max_depth {
        Vec::new()
    } else {
        node.children
            .iter()
            .filter(|&&c| keep(c))
            .map(|&c| tree_json(t, c, depth + 1, max_depth, keep))
            .collect()
    };
    serde_json::json!({
        "function": node.frame.function,
        "file": node.frame.file,
        "line": node.frame.line,
        "inlined": node.frame.inlined,
        "allocated": node.total.bytes,
        "calls": node.total.allocations,
        "live_bytes": node.total.live_bytes,
        "live_blocks": node.total.live_blocks,
        "peak": node.total.peak_bytes,
        "temporary": node.total.temporary,
        "own": cost_json(&node.own),
        "children": children,
    })
}

fn cost_json(c: &StackCost) -> serde_json::Value {
    serde_json::json!({
        "allocated": c.bytes,
        "calls": c.allocations,
        "live_bytes": c.live_bytes,
        "live_blocks": c.live_blocks,
        "peak": c.peak_bytes,
        "temporary": c.temporary,
    })
}

/// Stacks ranked by a figure, with their symbolised frames.
fn ranked(an: &Analysis, m: Metric, top: usize) -> Vec<(usize, StackCost)> {
    let mut v = calltree::ranked_stacks(&an.costs, m);
    if top != 0 {
        v.truncate(top);
    }
    v
}

fn frames_json(an: &Analysis, id: usize) -> Vec<serde_json::Value> {
    let image = an.images.get(id).copied().unwrap_or(0);
    calltree::stack_frames(&an.info, &an.syms, image, id as u32)
        .into_iter()
        .map(|f| {
            serde_json::json!({
                "function": f.function, "file": f.file, "line": f.line, "inlined": f.inlined,
            })
        })
        .collect()
}

fn write_frames(out: &mut impl Write, an: &Analysis, id: usize) -> io::Result<()> {
    let image = an.images.get(id).copied().unwrap_or(0);
    let frames = calltree::stack_frames(&an.info, &an.syms, image, id as u32);
    if frames.is_empty() {
        writeln!(out, "      (no call stack recorded)")?;
    }
    for f in frames {
        let at = match (&f.file, f.line) {
            (Some(file), Some(l)) => format!("  {}:{l}", Escaped(short_path(file))),
            _ => String::new(),
        };
        let inl = if f.inlined { " [inlined]" } else { "" };
        writeln!(out, "      {}{inl}{at}", Escaped(&f.function))?;
    }
    Ok(())
}

/// `leaks`
pub fn leaks(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    let an = analyse(a, None)?;
    let list = ranked(&an, Metric::Live, a.top);
    let exited = an.info.images.iter().all(|i| i.complete()) && a.at.is_none();
    let stacks = an.costs.iter().filter(|c| c.live_blocks > 0).count();
    if a.json {
        let doc = serde_json::json!({
            "schema": "vmmap.trace-leaks",
            "version": 1,
            "program_exited": exited,
            "blocks": an.summary.live_blocks,
            "bytes": an.summary.live_bytes,
            "stacks": stacks,
            "leaks": list.iter().map(|(id, c)| serde_json::json!({
                "bytes": c.live_bytes, "blocks": c.live_blocks,
                "allocated": c.bytes, "calls": c.allocations,
                "frames": frames_json(&an, *id),
            })).collect::<Vec<_>>(),
        });
        return Ok(write_json(out, &doc));
    }
    Ok((|| {
        let what = if exited {
            "never freed"
        } else {
            "still allocated (the program had not exited then: not all are leaks)"
        };
        writeln!(
            out,
            "{} blocks ({}) {what}, from {stacks} call stacks",
            an.summary.live_blocks,
            size(an.summary.live_bytes, false)
        )?;
        for (id, c) in &list {
            writeln!(
                out,
                "\n{} in {} block(s), {} allocated by {} call(s) from:",
                size(c.live_bytes, false),
                c.live_blocks,
                size(c.bytes, false),
                c.allocations
            )?;
            write_frames(out, &an, *id)?;
        }
        if a.top != 0 && stacks > a.top {
            writeln!(
                out,
                "\n({} more call stacks; --top 0 lists all)",
                stacks - a.top
            )?;
        }
        Ok(())
    })())
}

/// A mapping of the agent's last `/proc/self/maps` record.
struct RecordedMapping {
    start: u64,
    end: u64,
    /// Its line of the maps file.
    line: String,
}

/// The mapping of the agent's last `/proc/self/maps` record holding `addr`.
fn region_of(info: &TraceInfo, addr: u64) -> Option<RecordedMapping> {
    let (_, _, text) = info.maps.last()?;
    text.lines().find_map(|l| {
        let range = l.split_whitespace().next()?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        );
        (addr >= a && addr < b).then(|| RecordedMapping {
            start: a,
            end: b,
            line: l.to_string(),
        })
    })
}

/// `allocations --region ADDR`
pub fn allocations(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    let Some(r) = &a.region else {
        return Err(Failure::usage(
            "allocations needs --region ADDR: an address inside the region (see `vmmap trace FILE regions`)",
        ));
    };
    let addr = u64::from_str_radix(r.trim_start_matches("0x"), 16).map_err(|_| {
        Failure::usage(format!(
            "--region {r:?} is not a hexadecimal address such as 0x7f12ab345678"
        ))
    })?;
    // The region comes from the maps the agent recorded; one cheap pass
    // over the facts finds it before the costed pass.
    let facts = scan::facts(open(&a.file)?);
    let Some(RecordedMapping {
        start: lo,
        end: hi,
        line,
    }) = region_of(&facts, addr)
    else {
        return Err(Failure {
            code: exit::NO_PROCESS,
            message: format!(
                "no recorded mapping holds {addr:#x} (the agent's last map of the process); `vmmap trace {} regions` lists them",
                a.file.display()
            ),
        });
    };
    let an = analyse(a, Some((lo, hi)))?;
    let list = ranked(&an, Metric::Allocated, a.top);
    let s = &an.summary;
    if a.json {
        let doc = serde_json::json!({
            "schema": "vmmap.trace-allocations",
            "version": 1,
            "region": { "start": lo, "end": hi, "maps_line": line },
            "allocations": s.allocations,
            "bytes_allocated": s.bytes_allocated,
            "live_blocks": s.live_blocks,
            "live_bytes": s.live_bytes,
            "peak_bytes": s.peak_bytes,
            "stacks": list.iter().map(|(id, c)| serde_json::json!({
                "cost": cost_json(c),
                "frames": frames_json(&an, *id),
            })).collect::<Vec<_>>(),
        });
        return Ok(write_json(out, &doc));
    }
    Ok((|| {
        writeln!(out, "Region {lo:#x}-{hi:#x} ({})", size(hi - lo, false))?;
        writeln!(out, "  {}", Escaped(&line))?;
        writeln!(
            out,
            "{} blocks allocated inside it ({}), {} still live ({}); peak {}",
            s.allocations,
            size(s.bytes_allocated, false),
            s.live_blocks,
            size(s.live_bytes, false),
            size(s.peak_bytes, false)
        )?;
        for (id, c) in &list {
            writeln!(
                out,
                "\n{} in {} call(s), {} live in {} block(s), from:",
                size(c.bytes, false),
                c.allocations,
                size(c.live_bytes, false),
                c.live_blocks
            )?;
            write_frames(out, &an, *id)?;
        }
        writeln!(
            out,
            "\n`vmmap trace {} history --address ADDR --stacks` shows the operations on one block.",
            a.file.display()
        )?;
        Ok(())
    })())
}

/// `folded`, `flamegraph`, `pprof`, `speedscope`
pub fn export(a: &TraceArgs) -> Result<(), Failure> {
    let an = analyse(a, None)?;
    let m = metric(a, Metric::Allocated);
    let ext = match a.view {
        TraceView::Folded => "folded",
        TraceView::Flamegraph => "svg",
        TraceView::Pprof => "pb.gz",
        _ => "speedscope.json",
    };
    let path: PathBuf = a.output.clone().unwrap_or_else(|| {
        let stem = a.file.file_stem().unwrap_or_default().to_string_lossy();
        a.file.with_file_name(format!("{stem}.{ext}"))
    });
    let mut buf = Vec::new();
    let profile = vmmap_trace::export::Profile::new(&an.info, &an.syms, &an.costs, &an.images);
    let res = match a.view {
        TraceView::Folded => profile
            .folded(m, a.lines)
            .iter()
            .try_for_each(|l| writeln!(buf, "{l}")),
        TraceView::Flamegraph => profile.flamegraph(m, a.lines, &mut buf),
        TraceView::Pprof => {
            let (first, last) = an.summary.span;
            let ns = an
                .info
                .tick_ns(0, last)
                .saturating_sub(an.info.tick_ns(0, first));
            vmmap_trace::export::pprof(&an.info, &an.syms, &an.costs, &an.images, ns, &mut buf)
        }
        _ => vmmap_core::export::to_writer(&mut buf, &profile.speedscope(a.lines)),
    };
    res.map_err(|e| Failure {
        code: exit::OTHER,
        message: format!("cannot build the {}: {e}", a.view),
    })?;
    crate::write_file(&path, |w| w.write_all(&buf))?;
    if crate::is_stdout(&path) {
        return Ok(());
    }
    eprintln!(
        "vmmap: wrote {} ({}, {})",
        path.display(),
        a.view,
        vmmap_trace::export::metric_title(m)
    );
    Ok(())
}

/// `heap`: live bytes, malloc overhead, free space and resident pages of
/// every region holding live blocks, at the time of a snapshot the run
/// recorded (the last one, or the last before --at).
pub fn heap(a: &TraceArgs, out: &mut impl Write) -> Result<io::Result<()>, Failure> {
    use vmmap_trace::heap::{heap_regions, ArenaMaps};
    let facts = scan::facts(open(&a.file)?);
    let limit = a.at.and_then(|s| {
        let t0 = facts.images.first()?.clocks.first()?.2;
        Some(t0 + (s.max(0.0) * 1e9) as u64)
    });
    let mut snap = None;
    let mut s =
        ChunkStream::open(&a.file, vmmap_core::format::CHUNK_SNAPSHOT).map_err(|e| Failure {
            code: exit::BAD_FILE,
            message: format!("{}: {e}", a.file.display()),
        })?;
    while let Some(p) = s.next_payload() {
        if let Ok(sn) = vmmap_core::format::snapshot_from_payload(p) {
            if limit.is_none_or(|l| sn.taken_at_unix_ns <= l) {
                snap = Some(sn);
            }
        }
    }
    let Some(snap) = snap else {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!(
                "{}: no snapshot of the process was recorded{} (run with a snapshot interval, `vmmap run -i 1s`, the default)",
                a.file.display(),
                if limit.is_some() { " before that time" } else { "" }
            ),
        });
    };
    let seconds = scan::seconds_at_unix(&facts, snap.taken_at_unix_ns).unwrap_or(f64::MAX);
    let until = scan::ticks_at(&facts, seconds);
    let mut acc = Summarizer::default();
    let mut arenas = ArenaMaps::default();
    let sc = scan_file(&a.file, until, |r| {
        acc.add(r);
        arenas.add(r);
    })?;
    if let Some(d) = &sc.damage {
        eprintln!("vmmap: warning: {d}; the analysis covers what came before it");
    }
    let rows = heap_regions(
        &snap,
        acc.live_blocks().map(|(p, n, _)| (p, n)),
        &arenas.ranges(),
    );
    let sum = |f: &dyn Fn(&vmmap_trace::heap::HeapRegion) -> u64| rows.iter().map(f).sum::<u64>();
    if a.json {
        let doc = serde_json::json!({
            "schema": "vmmap.trace-heap",
            "version": 1,
            "seconds": seconds,
            "live_bytes_total": acc.live_bytes(),
            "regions": rows.iter().map(|h| serde_json::json!({
                "start": format!("{:#x}", h.start), "end": format!("{:#x}", h.end),
                "type": h.memory_type.name(), "path": h.path,
                "size": h.size, "rss": h.rss, "blocks": h.blocks, "live": h.live,
                "overhead": h.overhead, "free": h.free,
                "pymalloc_arenas": h.pymalloc_arenas, "pymalloc_bytes": h.pymalloc,
                "resident_not_live": h.resident_not_live(), "untouched": h.untouched(),
                "swap": h.swap, "frag_percent": h.frag_percent(),
            })).collect::<Vec<_>>(),
        });
        return Ok(write_json(out, &doc));
    }
    Ok((|| {
        writeln!(
            out,
            "Heap at {seconds:.2} s (the snapshot then): live bytes vs pages, per region"
        )?;
        writeln!(
            out,
            "{:<33} {:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6}",
            "REGION",
            "TYPE",
            "SIZE",
            "RSS",
            "BLOCKS",
            "LIVE",
            "OVERHEAD",
            "FREE",
            "PYMALLOC",
            "UNTOUCHED",
            "%FRAG"
        )?;
        for h in &rows {
            writeln!(
                out,
                "{:<33} {:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6}",
                format!("{:x}-{:x}", h.start, h.end),
                h.memory_type.name(),
                bytes(h.size),
                bytes(h.rss),
                h.blocks,
                bytes(h.live),
                bytes(h.overhead),
                bytes(h.free),
                bytes(h.pymalloc),
                bytes(h.untouched()),
                h.frag_percent().map_or("-".into(), |f| format!("{f:.1}"))
            )?;
        }
        let arenas: u64 = rows.iter().map(|h| h.pymalloc_arenas).sum();
        if arenas > 0 {
            writeln!(
                out,
                "{arenas} CPython pymalloc arenas ({}): Python's own object heap, apart from malloc's blocks and free space; %FRAG is not given for a region holding them (smaps has one Rss for the whole mapping)",
                size(sum(&|h| h.pymalloc), false)
            )?;
        }
        writeln!(
            out,
            "total: {} live in {} blocks + {} malloc overhead; {} resident of {} mapped; {} resident holds no live block",
            size(sum(&|h| h.live), false),
            sum(&|h| h.blocks),
            size(sum(&|h| h.overhead), false),
            size(sum(&|h| h.rss), false),
            size(sum(&|h| h.size), false),
            size(rows.iter().map(|h| h.resident_not_live().max(0) as u64).sum(), false),
        )?;
        writeln!(out, "Size = live + overhead + free + pymalloc; RSS - (live + overhead) is resident memory with no live block in it (docs/metrics.md).")
    })())
}

/// The top-down call tree of a traced file for the HTML report, or None
/// when the file holds no trace. Entries under 0.1% of the bytes are
/// folded away to keep the page small.
pub fn report_call_tree(
    file: &Path,
) -> Result<Option<vmmap_render::report::CallTreeNode>, Failure> {
    let opts = SymbolOptions::with_env(Vec::new());
    let an = analyse_file(file, None, None, &opts, true)?;
    let mut t = CallTree::build(
        &an.info,
        &an.syms,
        &an.costs,
        &an.images,
        TreeOptions::default(),
    );
    t.sort(Metric::Allocated);
    let min = t.nodes[0].total.bytes / 1000;
    fn convert(t: &CallTree, n: usize, min: u64) -> vmmap_render::report::CallTreeNode {
        let node = &t.nodes[n];
        let f = &node.frame;
        vmmap_render::report::CallTreeNode {
            name: f.function.clone(),
            location: match (&f.file, f.line) {
                (Some(file), Some(l)) => Some(format!("{}:{l}", short_path(file))),
                (Some(file), None) => Some(short_path(file).to_string()),
                _ => None,
            },
            bytes: node.total.bytes,
            count: node.total.allocations,
            live_bytes: node.total.live_bytes,
            children: node
                .children
                .iter()
                .filter(|&&c| t.nodes[c].total.bytes >= min.max(1))
                .map(|&c| convert(t, c, min))
                .collect(),
        }
    }
    Ok((an.summary.allocations > 0).then(|| convert(&t, 0, min)))
}
