//! `vmmap watch` (recording over time) and `vmmap timeline` (reading a
//! recording back).

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmmap_core::collect::{self, Options};
use vmmap_core::format::{self, Writer};
use vmmap_core::timeline::{self, Point, TYPES};
use vmmap_core::units::size;
use vmmap_core::Error;

use crate::cli::{DiffArgs, TimelineArgs, WatchArgs};
use crate::{exit, resolve, Failure};

/// `500ms`, `1s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

pub fn watch(a: &WatchArgs, proc_root: &Path) -> Result<(), Failure> {
    let interval = parse_duration(&a.interval)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::usage(format!(
                "--interval {:?} is not a time such as 500ms, 1s or 2m",
                a.interval
            ))
        })?;
    let duration = match &a.duration {
        Some(d) => Some(parse_duration(d).ok_or_else(|| {
            Failure::usage(format!("--duration {d:?} is not a time such as 30s or 5m"))
        })?),
        None => None,
    };
    if a.full_every == 0 {
        return Err(Failure::usage("--full-every must be at least 1"));
    }
    let pid = resolve(&a.target, proc_root)?;
    let opts = Options::default()
        .proc_root(proc_root)
        .ptrace(!a.no_ptrace)
        .ptrace_budget(std::time::Duration::from_millis(a.ptrace_budget_ms))
        .read_memory(!a.no_read_memory);
    // The first snapshot before the file exists: a wrong PID or a
    // permission problem leaves nothing behind.
    let first = collect::snapshot(pid, &opts)?;
    let first_fp = collect::maps_fingerprint(pid, &opts).unwrap_or(0);
    let (file, what) = if crate::is_stdout(&a.output) {
        let out = io::stdout().as_fd().try_clone_to_owned().map(File::from);
        (out, "standard output".to_string())
    } else {
        let out = vmmap_core::output::create(&a.output);
        (out, crate::shown(&a.output).into_owned())
    };
    let file = file.map_err(|e| Failure {
        code: exit::OUTPUT,
        message: format!("cannot create {what}: {e}"),
    })?;
    let out_err = |e: io::Error| Failure {
        code: exit::OUTPUT,
        message: format!("cannot write {what}: {e}"),
    };
    let mut w = Writer::new(file).map_err(out_err)?;
    w.append(&first).map_err(out_err)?;
    drop(first);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| Failure {
            code: exit::OTHER,
            message: e.to_string(),
        })?;
    }
    let progress = io::stderr().is_terminal();
    let start = Instant::now();
    let (mut records, mut full, mut since_full, mut last_fp) = (1u64, 1u64, 0u64, first_fp);
    let mut ended = None;
    let mut next = start + interval;
    loop {
        if progress {
            eprint!(
                "\r\x1b[Krecording {pid}: {records} records ({full} full), {:.1} s, {}",
                start.elapsed().as_secs_f64(),
                size(w.bytes_written(), false)
            );
        }
        if a.count.is_some_and(|c| records >= c) || duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        // Sleep to the next tick in short steps, so Ctrl+C is prompt.
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
        if stop.load(Ordering::Relaxed) {
            ended = Some("stopped");
            break;
        }
        next += interval;
        let fp = match collect::maps_fingerprint(pid, &opts) {
            Ok(fp) => fp,
            Err(
                Error::ProcessExited { .. } | Error::Zombie { .. } | Error::NoSuchProcess { .. },
            ) => {
                ended = Some("the process exited");
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let result = if fp != last_fp || since_full + 1 >= a.full_every {
            collect::snapshot(pid, &opts).map(|s| {
                full += 1;
                since_full = 0;
                last_fp = fp;
                w.append(&s)
            })
        } else {
            collect::sample(pid, &opts).map(|s| {
                since_full += 1;
                w.append_sample(&s)
            })
        };
        match result {
            Ok(written) => written.map_err(out_err)?,
            Err(
                Error::ProcessExited { .. } | Error::Zombie { .. } | Error::NoSuchProcess { .. },
            ) => {
                ended = Some("the process exited");
                break;
            }
            Err(e) => return Err(e.into()),
        }
        records += 1;
    }
    let total = w.bytes_written();
    let file = w.finish().map_err(out_err)?;
    vmmap_core::output::sync(&file).map_err(out_err)?;
    if progress {
        eprint!("\r\x1b[K");
    }
    eprintln!(
        "recorded {records} records ({full} full snapshots, {} totals-only) of process {pid} in {:.1} s to {what} ({}){}",
        records - full,
        start.elapsed().as_secs_f64(),
        size(total, false),
        ended.map(|e| format!("; {e}")).unwrap_or_default()
    );
    Ok(())
}

pub fn timeline(a: &TimelineArgs) -> Result<(), Failure> {
    let loaded = crate::load_with_trace(&a.file)?;
    if loaded.snapshots.is_empty() && loaded.samples.is_empty() && loaded.trace.is_empty() {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!(
                "{} holds no complete snapshot, sample or trace to draw a timeline from",
                a.file.display()
            ),
        });
    }
    let mut points = timeline::timeline(&loaded);
    vmmap_trace::timeline::add_live_heap(&mut points, &loaded.trace);
    // A traced run's times count from its start, as `vmmap trace --at`
    // does; a recording's from its first point.
    let t0 = vmmap_trace::timeline::run_start_unix_ns(&loaded.trace)
        .or_else(|| points.first().map(|p| p.taken_at_unix_ns))
        .unwrap_or(0);
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        write_json(&points, &mut w)
    } else if a.csv {
        write_csv(&points, t0, &mut w)
    } else {
        write_text(&points, t0, &mut w)
    };
    r.and_then(|()| w.flush())
        .map_err(|e| crate::output_error(e, "standard output"))
}

/// Seconds from `t0`; negative for the snapshot a traced run takes at
/// exec, before the agent's clock (the run's start) begins.
fn secs(p: &Point, t0: u64) -> f64 {
    (i128::from(p.taken_at_unix_ns) - i128::from(t0)) as f64 / 1e9
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_csv(points: &[Point], t0: u64, w: &mut impl Write) -> io::Result<()> {
    write!(
        w,
        "time_s,taken_at_unix_ns,snapshot,rss,pss,swap,anonymous,page_table,live_heap"
    )?;
    for what in ["committed", "ws", "private"] {
        for t in TYPES {
            write!(w, ",{what}_{}", t.id())?;
        }
    }
    writeln!(w)?;
    for p in points {
        write!(
            w,
            "{:.3},{},{},{},{},{},{},{},{}",
            secs(p, t0),
            p.taken_at_unix_ns,
            p.snapshot.map(|s| s.to_string()).unwrap_or_default(),
            opt(p.rss),
            opt(p.pss),
            opt(p.swap),
            opt(p.anonymous),
            opt(p.page_table),
            opt(p.live_heap)
        )?;
        for pick in [0, 1, 2] {
            for (i, _) in TYPES.iter().enumerate() {
                let v = p
                    .by_type
                    .as_ref()
                    .map(|b| [b[i].committed, b[i].working_set, b[i].private][pick]);
                write!(w, ",{}", opt(v))?;
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

fn write_json(points: &[Point], w: &mut impl Write) -> io::Result<()> {
    let doc = serde_json::json!({ "schema": "vmmap.timeline", "version": 1, "points": points });
    vmmap_core::export::to_writer(&mut *w, &doc)?;
    writeln!(w)
}

fn write_text(points: &[Point], t0: u64, w: &mut impl Write) -> io::Result<()> {
    let cell = |v: Option<u64>| v.map(|v| size(v, false)).unwrap_or_else(|| "-".into());
    write!(
        w,
        "{:>9}  {:>5}  {:>7} {:>7} {:>7}",
        "Time (s)", "Snap", "Rss", "PSS", "Swap"
    )?;
    for t in TYPES {
        let name = t.name();
        write!(w, " {:>8}", &name[..name.len().min(8)])?;
    }
    let traced = points.iter().any(|p| p.live_heap.is_some());
    if traced {
        write!(w, " {:>9}", "Live heap")?;
    }
    writeln!(w, "   (per type: working set; full snapshots only)")?;
    for p in points {
        write!(
            w,
            "{:>9.1}  {:>5}  {:>7} {:>7} {:>7}",
            secs(p, t0),
            p.snapshot
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            cell(p.rss),
            cell(p.pss),
            cell(p.swap)
        )?;
        for i in 0..TYPES.len() {
            write!(
                w,
                " {:>8}",
                cell(p.by_type.as_ref().map(|b| b[i].working_set))
            )?;
        }
        if traced {
            write!(w, " {:>9}", cell(p.live_heap))?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// Checks the CLI's view of a file before showing it.
pub fn require_snapshots(loaded: &format::Loaded, what: &str) -> Result<(), Failure> {
    if loaded.snapshots.is_empty() {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!("{what} holds no complete snapshot"),
        });
    }
    Ok(())
}

/// One side of a diff, as the user named it.
enum Side {
    /// A snapshot of a file (None: the last).
    File(std::path::PathBuf, Option<usize>),
    /// A live process.
    Live(u32),
}

fn side(arg: &str, proc_root: &Path) -> Result<Side, Failure> {
    let p = Path::new(arg);
    if crate::names_file(p) {
        return Ok(Side::File(p.to_path_buf(), None));
    }
    if let Some((file, n)) = arg.rsplit_once(':') {
        if crate::names_file(Path::new(file)) {
            let n = n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Failure::usage(format!(
                    "{arg:?}: after the colon comes a snapshot number from 1"
                ))
            })?;
            return Ok(Side::File(file.into(), Some(n)));
        }
    }
    Ok(Side::Live(resolve(arg, proc_root)?))
}

fn nth(
    loaded: &format::Loaded,
    n: Option<usize>,
    what: &str,
) -> Result<vmmap_core::Snapshot, Failure> {
    require_snapshots(loaded, what)?;
    let count = loaded.snapshots.len();
    let i = n.unwrap_or(count);
    loaded
        .snapshots
        .get(i.wrapping_sub(1))
        .cloned()
        .ok_or_else(|| {
            Failure::usage(format!(
                "{what} has snapshots 1 to {count}; there is no snapshot {i}"
            ))
        })
}

fn take(s: &Side, opts: &Options) -> Result<vmmap_core::Snapshot, Failure> {
    match s {
        Side::Live(pid) => Ok(collect::snapshot(*pid, opts)?),
        Side::File(path, n) => nth(&crate::load(path)?, *n, &path.display().to_string()),
    }
}

pub fn diff(a: &DiffArgs, proc_root: &Path) -> Result<(), Failure> {
    // 0 text, 1 JSON, 2 CSV.
    let ext = a
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str());
    let kind = match (a.json, a.csv, ext) {
        (true, _, _) | (_, _, Some("json")) => 1,
        (_, true, _) | (_, _, Some("csv")) => 2,
        (_, _, Some("txt" | "text") | None) => 0,
        (_, _, Some(other)) => {
            return Err(Failure::usage(format!(
                "cannot write a diff as .{other}: use .json, .csv or .txt"
            )))
        }
    };
    let opts = Options::default().proc_root(proc_root);
    let first = side(&a.a, proc_root)?;
    if a.written && (a.b.is_some() || !matches!(first, Side::Live(_))) {
        return Err(Failure::usage(
            "--written needs one live process: vmmap diff PID --after TIME --written",
        ));
    }
    let mut written: Option<Vec<u64>> = None;
    let (before, after) = match (&first, &a.b) {
        (_, Some(b)) => {
            let second = side(b, proc_root)?;
            (take(&first, &opts)?, take(&second, &opts)?)
        }
        (Side::File(path, None), None) => {
            let loaded = crate::load(path)?;
            let what = crate::shown(path).into_owned();
            (nth(&loaded, Some(1), &what)?, nth(&loaded, None, &what)?)
        }
        (Side::File(..), None) => {
            return Err(Failure::usage(
                "give a second snapshot to compare FILE:N with",
            ));
        }
        (Side::Live(pid), None) => {
            let wait = parse_duration(&a.after).ok_or_else(|| {
                Failure::usage(format!("--after {:?} is not a time such as 5s", a.after))
            })?;
            let before = collect::snapshot(*pid, &opts)?;
            if a.written {
                // The kernel marks new mappings soft-dirty (VmFlags "sd")
                // only when built with CONFIG_MEM_SOFT_DIRTY; without it
                // the bits never change and every region would read as
                // unwritten.
                if !before.vmas().any(|r| r.has_vm_flag("sd")) {
                    return Err(Error::Unsupported {
                        what: "soft-dirty page tracking (no mapping carries the \"sd\" VmFlag)".into(),
                        hint: "the kernel was built without CONFIG_MEM_SOFT_DIRTY, so vmmap cannot tell which pages were written; drop --written".into(),
                    }
                    .into());
                }
                collect::clear_soft_dirty(*pid, &opts)?;
            }
            if io::stderr().is_terminal() {
                eprintln!(
                    "vmmap: second snapshot of {pid} in {:.1} s…",
                    wait.as_secs_f64()
                );
            }
            std::thread::sleep(wait);
            let after = collect::snapshot(*pid, &opts)?;
            if a.written {
                written = Some(collect::soft_dirty_bytes(
                    *pid,
                    &opts,
                    &after.regions,
                    after.kernel.page_size,
                )?);
            }
            (before, after)
        }
    };
    let mut d = vmmap_core::diff::diff(&before, &after);
    if let Some(w) = &written {
        d.set_written(&after, w);
    }
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match kind {
            1 => vmmap_render::diff::write_json(&d, &mut *w),
            2 => vmmap_render::diff::write_csv(&d, &mut *w),
            _ => vmmap_render::diff::write_text(&d, &mut *w, a.bytes),
        }
    };
    match &a.output {
        Some(p) => crate::write_file(p, write),
        None => {
            let out = io::stdout();
            let mut lock = out.lock();
            write(&mut lock)
                .and_then(|()| lock.flush())
                .map_err(|e| crate::output_error(e, "standard output"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3 weeks"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
