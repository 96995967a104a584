//! `vmmap`: the command-line front end. Parses arguments, calls the
//! library, prints, and maps every failure to its own exit code.

mod address;
mod cli;
mod memory;
mod multi;
mod owners;
mod record;
mod render;
mod report;
mod serve;
mod trace_cmd;
mod trace_views;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use vmmap_core::collect::{self, Access, Options, ProcessEntry};
use vmmap_core::export::{self, ExportOptions};
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;
use vmmap_core::text::Escaped;
use vmmap_core::{Error, Snapshot, Summary};

use cli::{Cli, Command, ConvertArgs, DisplayArgs, OpenArgs, PsArgs, SnapshotArgs};
use render::{SortKey, TextOptions};

/// Exit codes, documented in `--help` and the README.
pub(crate) mod exit {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_PROCESS: u8 = 3;
    pub const PERMISSION: u8 = 4;
    pub const EXITED: u8 = 5;
    pub const KERNEL_THREAD: u8 = 6;
    pub const UNSUPPORTED: u8 = 7;
    pub const AMBIGUOUS: u8 = 8;
    pub const PARSE: u8 = 9;
    pub const OUTPUT: u8 = 10;
    pub const BAD_FILE: u8 = 11;
    pub const CANNOT_TRACE: u8 = 12;
}

/// A failure with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::NoSuchProcess { .. } | Error::NoProcessNamed { .. } => exit::NO_PROCESS,
            Error::PermissionDenied { .. } => exit::PERMISSION,
            Error::ProcessExited { .. } | Error::Zombie { .. } => exit::EXITED,
            Error::KernelThread { .. } => exit::KERNEL_THREAD,
            Error::Unsupported { .. } => exit::UNSUPPORTED,
            Error::AmbiguousName { .. } => exit::AMBIGUOUS,
            Error::Parse { .. } => exit::PARSE,
            _ => exit::OTHER,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Output errors: a reader that went away (`vmmap … | head`) is success.
pub(crate) fn output_error(e: io::Error, what: &str) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure {
            code: 0,
            message: String::new(),
        }
    } else {
        Failure {
            code: exit::OUTPUT,
            message: format!("cannot write {what}: {e}"),
        }
    }
}

fn main() -> ExitCode {
    // clap quotes a bad argument as it is, and an argument may be a file
    // name chosen by someone else (`vmmap open *`). With such arguments
    // the message is rendered without colours, and each of them escaped.
    let hostile: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| vmmap_core::text::needs_quoting(a))
        .collect();
    let parsed = if hostile.is_empty() {
        Cli::try_parse()
    } else {
        use clap::{CommandFactory, FromArgMatches};
        Cli::command()
            .styles(clap::builder::Styles::plain())
            .try_get_matches()
            .and_then(|m| Cli::from_arg_matches(&m))
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            // --help and --version go to stdout and exit 0; a closed pipe
            // there is no error either.
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            if e.use_stderr() && !hostile.is_empty() {
                let mut text = e.render().ansi().to_string();
                for a in &hostile {
                    text = text.replace(a.as_str(), &vmmap_core::text::escape(a));
                }
                eprint!("{}", vmmap_core::text::escape_lines(&text));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                // Messages quote names, paths and file contents: the last
                // guard before the terminal.
                eprintln!("vmmap: {}", vmmap_core::text::escape_lines(&f.message));
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Some(Command::Ps(a)) => ps(&a, &cli.proc_root),
        Some(Command::Explain {
            topic: Some(target),
            address: Some(addr),
        }) => explain_address(&target, &addr, &cli.proc_root),
        Some(Command::Explain { topic, .. }) => explain(topic.as_deref()),
        Some(Command::Config { action }) => config(&action),
        Some(Command::Open(a)) => open(&a, &cli.proc_root),
        Some(Command::Convert(a)) => convert(&a),
        Some(Command::Strings(a)) => memory::strings(&a, &cli.proc_root),
        Some(Command::Find(a)) => memory::find(&a, &cli.proc_root),
        Some(Command::Map(a)) => map(&a, &cli.proc_root),
        Some(Command::Report(a)) => report::report(&a, &cli.proc_root),
        Some(Command::Watch(a)) => record::watch(&a, &cli.proc_root),
        Some(Command::Timeline(a)) => record::timeline(&a),
        Some(Command::Diff(a)) => record::diff(&a, &cli.proc_root),
        Some(Command::Run(a)) => trace_cmd::run(&a, &cli.proc_root),
        Some(Command::Trace(a)) => trace_cmd::trace(&a),
        Some(Command::Metrics(a)) => serve::metrics(&a, &cli.proc_root),
        Some(Command::Serve(a)) => serve::serve(&a, &cli.proc_root),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Manpage { dir }) => manpage(dir.as_deref()),
        None => snapshot(&cli.snapshot, &cli.proc_root),
    }
}

#[derive(Clone, Copy)]
enum Format {
    Text,
    Json,
    Csv,
    Native,
    Mmp,
}

/// The format an output file's extension names.
fn format_of(path: &Path) -> Option<Format> {
    Some(
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some("txt" | "text") => Format::Text,
            Some("vmmap") => Format::Native,
            Some("mmp") => Format::Mmp,
            _ => return None,
        },
    )
}

fn snapshot(a: &SnapshotArgs, proc_root: &Path) -> Result<(), Failure> {
    if multi::is_multi(a) {
        return multi::combined(a, proc_root);
    }
    let pid = match (a.pid, &a.name, &a.target) {
        (Some(p), _, _) => p,
        (None, Some(n), _) => collect::find_by_name(proc_root, n)?,
        (None, None, Some(t)) => resolve(t, proc_root)?,
        (None, None, None) if a.interactive || interactive_terminal() => {
            return tui(vmmap_tui::Start::Picker, proc_root)
        }
        (None, None, None) => return no_target(proc_root),
    };
    if a.interactive {
        let opts = Options::default()
            .proc_root(proc_root)
            .ptrace(!a.no_ptrace)
            .ptrace_budget(std::time::Duration::from_millis(a.ptrace_budget_ms))
            .read_memory(!a.no_read_memory);
        let t = std::time::Instant::now();
        let snap = collect::snapshot(pid, &opts)?;
        return tui(
            vmmap_tui::Start::Snapshot(std::sync::Arc::new(snap), t.elapsed()),
            proc_root,
        );
    }
    if a.empty_working_set {
        return empty_working_set(
            pid,
            a.samples,
            a.display.bytes,
            a.reclaim == "cgroup",
            proc_root,
        );
    }
    if let Some(text) = &a.address {
        let addr = vmmap_core::lookup::parse_address(text).ok_or_else(|| {
            Failure::usage(format!(
                "{text:?} is not an address: give it in hex, as vmmap prints it (0x7f12ab340000)"
            ))
        })?;
        let opts = Options::default()
            .proc_root(proc_root)
            .ptrace(!a.no_ptrace)
            .ptrace_budget(std::time::Duration::from_millis(a.ptrace_budget_ms))
            .read_memory(!a.no_read_memory);
        let mut snap = collect::snapshot(pid, &opts)?;
        if a.shared_with {
            return multi::shared_with(&snap, addr, &opts, a.display.json, a.display.bytes);
        }
        multi::enrich(&mut snap, a, &opts)?;
        let out = io::stdout();
        let mut w = out.lock();
        let r = if a.display.json {
            vmmap_core::export::to_writer_pretty(&mut w, &address::to_json(&snap, addr))
                .and_then(|()| writeln!(w))
        } else {
            address::write_text(&snap, addr, a.display.bytes, &mut w)
        };
        return r.map_err(|e| output_error(e, "standard output"));
    }
    // Check the display options before the (possibly long) collection.
    let format = output_format(&a.display)?;
    let text = text_options(&a.display)?;
    let opts = Options::default()
        .proc_root(proc_root)
        .ptrace(!a.no_ptrace)
        .ptrace_budget(std::time::Duration::from_millis(a.ptrace_budget_ms))
        .read_memory(!a.no_read_memory);
    let mut snap = collect::snapshot(pid, &opts)?;
    multi::enrich(&mut snap, a, &opts)?;
    show(snap, &a.display, format, text)
}

fn output_format(d: &DisplayArgs) -> Result<Format, Failure> {
    Ok(match (d.json, d.csv, &d.output) {
        (true, _, _) => Format::Json,
        (_, true, _) => Format::Csv,
        (_, _, Some(path)) if is_stdout(path) => Format::Text,
        (_, _, Some(path)) => match format_of(path) {
            Some(f) => f,
            None => {
                return Err(Failure::usage(format!(
                    "cannot tell the format of {} from its extension: use .vmmap, .mmp, .json, .csv or .txt, or give --json or --csv",
                    path.display()
                )))
            }
        },
        _ => Format::Text,
    })
}

/// Prints or saves one snapshot, live or loaded.
fn show(snap: Snapshot, d: &DisplayArgs, format: Format, text: TextOptions) -> Result<(), Failure> {
    show_owned(snap, d, format, text, None)
}

/// [`show`], with the Owner of each region when the snapshot is of a
/// traced run (text, JSON and CSV).
fn show_owned(
    snap: Snapshot,
    d: &DisplayArgs,
    format: Format,
    text: TextOptions,
    owners: Option<vmmap_trace::region_owners::SnapshotOwners>,
) -> Result<(), Failure> {
    let owners = owners.as_ref();
    let summary = Summary::of(&snap);
    let export_opts = ExportOptions {
        free: d.free,
        summary_only: d.summary,
    };
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match format {
            Format::Json => export::write_json_owned(&snap, &summary, export_opts, owners, w),
            Format::Csv => export::write_csv_owned(&snap, &summary, export_opts, owners, w),
            Format::Native => {
                let mut f = vmmap_core::format::Writer::new(io::BufWriter::new(w))?;
                f.append(&snap)?;
                f.finish()?.flush()
            }
            Format::Mmp => vmmap_core::mmp::write(&[&snap], w),
            Format::Text => {
                let mut w = io::BufWriter::with_capacity(1 << 16, w);
                render::write_text_owned(&snap, &summary, &text, owners, &mut w)?;
                w.flush()
            }
        }
    };
    let result = match &d.output {
        Some(path) => write_file(path, write),
        None => {
            let out = io::stdout();
            let mut lock = out.lock();
            write(&mut lock).map_err(|e| output_error(e, "standard output"))
        }
    };
    // The process exits next and the kernel takes the memory back at once;
    // freeing 60,000 regions one by one first would only cost time.
    std::mem::forget(summary);
    std::mem::forget(snap);
    result
}

/// `vmmap PID --empty-working-set`: page out, then watch Rss come back.
fn empty_working_set(
    pid: u32,
    samples: u32,
    exact: bool,
    by_cgroup: bool,
    proc_root: &Path,
) -> Result<(), Failure> {
    use vmmap_core::proc::smaps::Field;
    if proc_root != Path::new("/proc") {
        return Err(Failure::usage(
            "--empty-working-set acts on a live process; it cannot use --proc-root",
        ));
    }
    let opts = Options::default().proc_root(proc_root);
    let snap = collect::snapshot(pid, &opts)?;
    let rss = |pid| -> Result<u64, Failure> {
        let s = collect::sample(pid, &opts)?;
        Ok(s.rollup.get(Field::Rss).unwrap_or(0))
    };
    let size = |v: u64| {
        if v == 0 {
            "0".to_string()
        } else {
            vmmap_core::units::size(v, exact)
        }
    };
    let before = rss(pid)?;
    let done = if by_cgroup {
        let c = collect::reclaim::reclaim_cgroup(pid, proc_root)?;
        format!(
            "Reclaimed from cgroup {} (every process in it, and its page cache): charged memory {} -> {}{}",
            c.cgroup.display(),
            size(c.before),
            size(c.after),
            if c.partial {
                " (the kernel could not reclaim all it was asked for)"
            } else {
                ""
            }
        )
    } else {
        let r = collect::reclaim::page_out(&snap)?;
        format!(
            "Paged out {} mapping(s) ({}); {} skipped (locked, PFN, hugetlb, or unmapped since)",
            r.advised,
            size(r.advised_bytes),
            r.skipped
        )
    };
    let after = rss(pid)?;
    let out = io::stdout();
    let mut w = out.lock();
    let mut print = |text: String| -> Result<(), Failure> {
        writeln!(w, "{text}")
            .and_then(|()| w.flush())
            .map_err(|e| output_error(e, "standard output"))
    };
    print(format!(
        "Process {pid} ({}): working set {} before",
        Escaped(&snap.process.name),
        size(before)
    ))?;
    print(done)?;
    print(format!(
        "Working set after: {} ({} paged out)",
        size(after),
        size(before.saturating_sub(after))
    ))?;
    let t0 = std::time::Instant::now();
    for i in 1..=samples {
        let due = std::time::Duration::from_secs(u64::from(i));
        std::thread::sleep(due.saturating_sub(t0.elapsed()));
        let now = match rss(pid) {
            Ok(v) => v,
            Err(f) if f.code == exit::EXITED || f.code == exit::NO_PROCESS => {
                print(format!(
                    "+{:.1}s  the process exited",
                    t0.elapsed().as_secs_f64()
                ))?;
                return Ok(());
            }
            Err(f) => return Err(f),
        };
        print(format!(
            "+{:.1}s  working set {} ({} back)",
            t0.elapsed().as_secs_f64(),
            size(now),
            size(now.saturating_sub(after))
        ))?;
    }
    Ok(())
}

/// `vmmap map PID`: the fragmentation map as text, JSON or SVG.
fn map(a: &cli::MapArgs, proc_root: &Path) -> Result<(), Failure> {
    use vmmap_render::layout::Layout;
    if let Some(p) = &a.output {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        // `-o -`: SVG on standard output.
        if !is_stdout(p) && !matches!(ext.as_deref(), Some("svg" | "png")) {
            return Err(Failure::usage(format!(
                "cannot draw {}: the map is written as SVG (.svg) or PNG (.png), or as SVG to standard output with -o -",
                p.display()
            )));
        }
    }
    let pid = resolve(&a.target, proc_root)?;
    let snap = collect::snapshot(pid, &Options::default().proc_root(proc_root))?;
    let layout = Layout::of(&snap);
    let heaps = if a.heaps {
        let dir = collect::ProcDir::open(proc_root, pid)?;
        let mut mem = vmmap_core::memory::ProcessMemory::new(dir);
        Some(vmmap_core::memory::malloc::heaps(&mut mem, &snap)?)
    } else {
        None
    };
    if let Some(p) = &a.output {
        let png = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if png {
            let bytes = layout.to_png(&snap).map_err(|e| Failure {
                code: exit::OTHER,
                message: format!("cannot draw {}: {e}", p.display()),
            })?;
            return write_file(p, |w| w.write_all(&bytes));
        }
        let svg = layout.to_svg(&snap);
        return write_file(p, |w| w.write_all(svg.as_bytes()));
    }
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        let v = serde_json::json!({
            "schema": "vmmap.layout",
            "version": 1,
            "pid": pid,
            "layout": layout,
            "heaps": heaps.as_ref().map(|hs| hs.iter().map(|h| {
                let mut v = serde_json::to_value(h).unwrap_or_default();
                match &h.chunks {
                    Ok(c) => v["chunks"] = serde_json::to_value(c).unwrap_or_default(),
                    Err(e) => {
                        v["chunks"] = serde_json::Value::Null;
                        v["error"] = e.as_str().into();
                    }
                }
                v["frag_percent"] = h.frag_percent().into();
                v
            }).collect::<Vec<_>>()),
        });
        vmmap_core::export::to_writer_pretty(&mut w, &v).and_then(|()| writeln!(w))
    } else {
        write_layout(&snap, &layout, a.bytes, &mut w).and_then(|()| match &heaps {
            Some(hs) => write_heaps(hs, a.bytes, &mut w),
            None => Ok(()),
        })
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))?;
    if let Some(hs) = &heaps {
        memory::not_resident_note(hs.iter().map(|h| h.not_resident).sum());
    }
    Ok(())
}

fn write_layout(
    snap: &Snapshot,
    l: &vmmap_render::layout::Layout,
    exact: bool,
    w: &mut impl Write,
) -> io::Result<()> {
    let size = |v| vmmap_core::units::size(v, exact);
    writeln!(
        w,
        "Process:         {} ({})",
        snap.process.pid,
        Escaped(&snap.process.name)
    )?;
    writeln!(w, "Regions:         {}", l.region_count)?;
    writeln!(w, "Free gaps:       {}", l.gap_count)?;
    writeln!(w, "Free:            {}", size(l.free_bytes))?;
    match l.largest_free {
        Some(f) => writeln!(
            w,
            "Largest free:    {} at {:#x}-{:#x}",
            size(f.size()),
            f.start,
            f.end
        )?,
        None => writeln!(w, "Largest free:    none")?,
    }
    writeln!(
        w,
        "Reserved:        {} (PROT_NONE regions)",
        size(l.reserved_bytes)
    )?;
    writeln!(
        w,
        "Axis:            {} units (16 per doubling of size; a page is 16)\n",
        l.total_units
    )?;
    writeln!(
        w,
        "{:<29}  {:<12}  {:>8}  {:>7}  {:>5}",
        "Address", "Type", "Size", "At", "Units"
    )?;
    for s in &l.segments {
        writeln!(
            w,
            "{:#014x}-{:#014x}  {:<12}  {:>8}  {:>7}  {:>5}{}",
            s.start,
            s.end,
            s.memory_type.name(),
            size(s.end - s.start),
            s.pos,
            s.units,
            if s.reserved { "  reserved" } else { "" }
        )?;
    }
    Ok(())
}

fn write_heaps(
    hs: &[vmmap_core::memory::malloc::HeapFragmentation],
    exact: bool,
    w: &mut impl Write,
) -> io::Result<()> {
    let size = |v: u64| {
        if v == 0 {
            "0".to_string()
        } else {
            vmmap_core::units::size(v, exact)
        }
    };
    writeln!(
        w,
        "\nHeap fragmentation (glibc chunks; tcache and fastbin chunks count as in use)"
    )?;
    if hs.is_empty() {
        writeln!(w, "  no glibc heap")?;
    }
    for h in hs {
        let id = h.heap_id.map_or_else(|| "?".into(), |i| i.to_string());
        match &h.chunks {
            Ok(c) => writeln!(
                w,
                "  Heap ID {id:<3} {:#014x}  resident {:>7}  swap {:>5}  in use {:>7} in {} chunks  free {:>7} in {} chunks (largest {})  top {:>7}  %FRAG {:.1}",
                h.start,
                size(h.resident),
                size(h.swap),
                size(c.in_use_bytes),
                c.in_use_chunks,
                size(c.free_bytes),
                c.free_chunks,
                size(c.largest_free),
                size(c.top_bytes),
                h.frag_percent().unwrap_or(0.0)
            )?,
            Err(e) => writeln!(w, "  Heap ID {id:<3} {:#014x}  not walkable: {e}", h.start)?,
        }
    }
    Ok(())
}

/// A path for a message: file names may hold any byte, control
/// characters included (`vmmap open *.vmmap`).
pub(crate) fn shown(path: &Path) -> std::borrow::Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    vmmap_core::text::escape_bytes(path.as_os_str().as_bytes())
}

/// A PID, or the name of exactly one process.
pub(crate) fn resolve(target: &str, proc_root: &Path) -> Result<u32, Failure> {
    match target.parse::<u32>() {
        Ok(p) => Ok(p),
        Err(_) => Ok(collect::find_by_name(proc_root, target)?),
    }
}

/// Whether a command-line target names a file to read rather than a
/// process: anything but a directory, so that a device or FIFO is read
/// (and refused at its first bytes) instead of looked up as a name.
pub(crate) fn names_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| !m.is_dir())
}

/// Loads a .vmmap file's snapshots (not its trace, which the trace views
/// stream from the file); a damaged tail is a warning, with what was
/// recovered before it.
pub(crate) fn load(path: &Path) -> Result<vmmap_core::format::Loaded, Failure> {
    load_with(path, vmmap_core::format::load_file_snapshots)
}

/// [`load`], keeping the trace chunks in memory too.
pub(crate) fn load_with_trace(path: &Path) -> Result<vmmap_core::format::Loaded, Failure> {
    load_with(path, vmmap_core::format::load_file)
}

fn load_with(
    path: &Path,
    loader: fn(&Path) -> Result<vmmap_core::format::Loaded, vmmap_core::format::FormatError>,
) -> Result<vmmap_core::format::Loaded, Failure> {
    let what = shown(path);
    let loaded = match loader(path) {
        Ok(l) => l,
        Err(vmmap_core::format::FormatError::Io(e)) => {
            return Err(Failure {
                code: exit::OTHER,
                message: format!("cannot read {what}: {e}"),
            });
        }
        Err(e) => {
            return Err(Failure {
                code: exit::BAD_FILE,
                message: format!("{what}: {e}"),
            })
        }
    };
    if let Some(p) = &loaded.problem {
        eprintln!(
            "vmmap: warning: {what}: {p}; the {} snapshot(s) and {} sample(s) before it are loaded",
            loaded.snapshots.len(),
            loaded.samples.len()
        );
    }
    Ok(loaded)
}

/// `vmmap open FILE`: a saved snapshot, shown as a live one.
fn open(a: &OpenArgs, proc_root: &Path) -> Result<(), Failure> {
    let format = output_format(&a.display)?;
    let text = text_options(&a.display)?;
    let what = shown(&a.file);
    let loaded = load(&a.file)?;
    record::require_snapshots(&loaded, &what)?;
    let n = loaded.snapshots.len();
    if n == 0 {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!("{what} holds no complete snapshot"),
        });
    }
    let i = match a.snapshot {
        None => n,
        Some(k) if (1..=n).contains(&k) => k,
        Some(k) => {
            return Err(Failure::usage(format!(
                "{what} has snapshots 1 to {n}; there is no snapshot {k}"
            )));
        }
    };
    if a.interactive {
        // The trace messages are not kept: the Trace view (`T`) streams
        // them from the file, and a long run's trace is large.
        let snaps = { loaded }
            .snapshots
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        return tui(
            vmmap_tui::Start::File(snaps, i - 1, a.file.clone()),
            proc_root,
        );
    }
    // The owners stream the trace from the file again.
    let traced = loaded.traced;
    let snap = loaded
        .snapshots
        .into_iter()
        .nth(i - 1)
        .unwrap_or_else(|| unreachable!("index checked"));
    let wants_owners = traced
        && !a.no_owners
        && !a.display.summary
        && matches!(format, Format::Text | Format::Json | Format::Csv);
    let owners = if wants_owners {
        owners::of_snapshot(&a.file, &snap)
    } else {
        None
    };
    show_owned(snap, &a.display, format, text, owners)
}

/// `vmmap convert IN OUT`: a saved file in another format.
fn convert(a: &ConvertArgs) -> Result<(), Failure> {
    let format = format_of(&a.output).ok_or_else(|| {
        Failure::usage(format!(
            "cannot tell the format of {} from its extension: use .vmmap, .mmp, .json, .csv or .txt",
            a.output.display()
        ))
    })?;
    let what = shown(&a.input).into_owned();
    if matches!(
        format_of(&a.input),
        Some(Format::Json | Format::Csv | Format::Text)
    ) {
        return Err(Failure::usage(format!(
            "{what}: JSON, CSV and text are export formats that vmmap cannot read back; convert a .vmmap or .mmp file"
        )));
    }
    let loaded = load(&a.input)?;
    record::require_snapshots(&loaded, &what)?;
    let traced = loaded.traced;
    let mut snaps = loaded.snapshots;
    let n = snaps.len();
    if let Some(k) = a.snapshot {
        if !(1..=n).contains(&k) {
            return Err(Failure::usage(format!(
                "{what} has snapshots 1 to {n}; there is no snapshot {k}"
            )));
        }
        snaps = vec![snaps.swap_remove(k - 1)];
    }
    let last = snaps
        .last()
        .unwrap_or_else(|| unreachable!("checked above"));
    // A traced run's snapshot exported as a table carries its owners.
    let owners = (traced && matches!(format, Format::Json | Format::Csv | Format::Text))
        .then(|| owners::of_snapshot(&a.input, last))
        .flatten();
    let owners = owners.as_ref();
    write_file(&a.output, |w| match format {
        Format::Native => {
            let mut f = vmmap_core::format::Writer::new(io::BufWriter::new(w))?;
            for s in &snaps {
                f.append(s)?;
            }
            f.finish()?.flush()
        }
        Format::Mmp => vmmap_core::mmp::write(&snaps.iter().collect::<Vec<_>>(), w),
        Format::Json => export::write_json_owned(
            last,
            &Summary::of(last),
            ExportOptions::default(),
            owners,
            w,
        ),
        Format::Csv => export::write_csv_owned(
            last,
            &Summary::of(last),
            ExportOptions::default(),
            owners,
            w,
        ),
        Format::Text => {
            let text = TextOptions {
                summary_only: false,
                free: false,
                types: Vec::new(),
                sort: SortKey::parse("address").unwrap_or_else(|| unreachable!("a sort key")),
                reverse: false,
                columns: parse_columns("default").map_err(|f| io::Error::other(f.message))?,
                sub_blocks: true,
                exact: false,
            };
            let mut w = io::BufWriter::new(w);
            render::write_text_owned(last, &Summary::of(last), &text, owners, &mut w)?;
            w.flush()
        }
    })
}

/// Writes an output: `-` is standard output; anything else goes through
/// [`vmmap_core::output::write`] (a regular file replaced atomically,
/// keeping its owner and mode; a device or FIFO written in place; links
/// followed only where the kernel allows).
pub(crate) fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Failure> {
    if is_stdout(path) {
        let mut out = io::stdout().lock();
        return write(&mut out)
            .and_then(|()| out.flush())
            .map_err(|e| output_error(e, "standard output"));
    }
    vmmap_core::output::write(path, write).map_err(|e| output_error(e, &shown(path)))
}

/// `-o -`: standard output.
pub(crate) fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn text_options(a: &DisplayArgs) -> Result<TextOptions, Failure> {
    let mut types = Vec::new();
    for t in a.r#type.iter().filter(|t| !t.is_empty()) {
        let parsed = MemoryType::parse(t).ok_or_else(|| {
            Failure::usage(format!(
                "unknown memory type {t:?}; types are: {}",
                MemoryType::ALL
                    .iter()
                    .map(|t| t.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        types.push(parsed);
    }
    let sort = SortKey::parse(&a.sort).ok_or_else(|| {
        Failure::usage(format!(
            "cannot sort by {:?}; use address, type, details, protection or a column: {}",
            a.sort,
            Column::ALL
                .iter()
                .map(|c| c.id())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok(TextOptions {
        summary_only: a.summary,
        free: a.free,
        types,
        sort,
        reverse: a.reverse,
        columns: parse_columns(&a.columns)?,
        sub_blocks: !a.no_sub_blocks,
        exact: a.bytes,
    })
}

fn parse_columns(spec: &str) -> Result<Vec<Column>, Failure> {
    let linux = [
        Column::Pss,
        Column::Swap,
        Column::SwapPss,
        Column::Dirty,
        Column::Uss,
        Column::Thp,
        Column::Ksm,
        Column::LazyFree,
    ];
    let mut out: Vec<Column> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "default" => {
                out.extend(
                    Column::VMMAP
                        .iter()
                        .chain(&[Column::Pss, Column::Swap, Column::Dirty]),
                )
            }
            "vmmap" => out.extend(Column::VMMAP),
            "linux" => out.extend(linux),
            "all" => out.extend(Column::ALL),
            _ => out.push(Column::parse(part).ok_or_else(|| {
                Failure::usage(format!(
                    "unknown column {part:?}; use default, vmmap, linux, all or: {}",
                    Column::ALL
                        .iter()
                        .map(|c| c.id())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?),
        }
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    });
    if out.is_empty() {
        return Err(Failure::usage("no columns chosen"));
    }
    Ok(out)
}

/// Whether both ends are a terminal, so that `vmmap` alone may take it over.
fn interactive_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

fn tui(start: vmmap_tui::Start, proc_root: &Path) -> Result<(), Failure> {
    vmmap_tui::run(start, proc_root.to_path_buf()).map_err(|e| Failure {
        code: exit::OTHER,
        message: format!("terminal UI: {e}"),
    })
}

fn config(action: &str) -> Result<(), Failure> {
    let path = vmmap_tui::Settings::path();
    let shown = path.as_ref().map_or_else(
        || "(no HOME or XDG_CONFIG_HOME)".to_string(),
        |p| p.display().to_string(),
    );
    match action {
        "path" => println!("{shown}"),
        "show" => {
            let (s, warning) = vmmap_tui::Settings::load();
            if let Some(w) = warning {
                eprintln!("vmmap: {w}");
            }
            println!("# {shown}");
            print!("{}", vmmap_tui::settings::to_toml(&s));
        }
        "reset" => match vmmap_tui::Settings::reset() {
            Ok(Some(p)) => println!("removed {}: defaults restored", p.display()),
            Ok(None) => println!("no settings file at {shown}: already the defaults"),
            Err(e) => {
                return Err(Failure {
                    code: exit::OUTPUT,
                    message: format!("cannot remove {shown}: {e}"),
                })
            }
        },
        other => {
            return Err(Failure::usage(format!(
                "unknown config action {other:?}; use show, path or reset"
            )))
        }
    }
    Ok(())
}

/// `vmmap` alone without a terminal: teach the usage and show what there
/// is to look at.
fn no_target(root: &Path) -> Result<(), Failure> {
    let out = io::stdout();
    let mut w = out.lock();
    let r = (|| -> io::Result<()> {
        writeln!(
            w,
            "usage: vmmap <PID|NAME> [options]   (vmmap --help for all options)\n"
        )?;
        let list = collect::list_processes(root).map_err(|e| io::Error::other(e.to_string()))?;
        write_ps(&list, false, &mut w)
    })();
    r.map_err(|e| output_error(e, "standard output"))
}

fn ps(a: &PsArgs, proc_root: &Path) -> Result<(), Failure> {
    let mut list = collect::list_processes(proc_root)?;
    let key = a.sort.to_ascii_lowercase();
    match key.as_str() {
        "pid" => list.sort_by_key(|p| p.pid),
        "user" => list.sort_by(|x, y| x.user.cmp(&y.user).then(x.pid.cmp(&y.pid))),
        "name" => list.sort_by(|x, y| x.name.cmp(&y.name).then(x.pid.cmp(&y.pid))),
        "private" | "private_bytes" => list.sort_by(|x, y| {
            render::cmp_opt(y.private_bytes, x.private_bytes).then(x.pid.cmp(&y.pid))
        }),
        "ws" | "working_set" | "rss" => list
            .sort_by(|x, y| render::cmp_opt(y.working_set, x.working_set).then(x.pid.cmp(&y.pid))),
        "arch" | "architecture" => list.sort_by(|x, y| x.arch.cmp(&y.arch).then(x.pid.cmp(&y.pid))),
        _ => {
            return Err(Failure::usage(format!(
                "cannot sort by {:?}; use pid, user, name, private, ws or arch",
                a.sort
            )))
        }
    }
    if a.reverse {
        list.reverse();
    }
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        vmmap_core::export::to_writer_pretty(&mut w, &list).and_then(|()| writeln!(w))
    } else {
        write_ps(&list, a.bytes, &mut w)
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))
}

fn write_ps(list: &[ProcessEntry], exact: bool, w: &mut impl Write) -> io::Result<()> {
    let width = if exact { 13 } else { 8 };
    writeln!(
        w,
        "{:>7}  {:<10}  {:<16}  {:>width$}  {:>width$}  {:<16}  COMMAND",
        "PID", "USER", "NAME", "PRIVATE", "WS", "ARCH"
    )?;
    let mut denied = 0;
    for p in list {
        let size =
            |v: Option<u64>| v.map_or_else(|| "n/a".into(), |v| vmmap_core::units::size(v, exact));
        let arch = match (&p.arch, &p.access) {
            (_, Access::Denied(_)) => {
                denied += 1;
                "(no access)".to_string()
            }
            (Some(a), _) => a.clone(),
            (None, _) => "?".into(),
        };
        writeln!(
            w,
            "{:>7}  {:<10}  {:<16}  {:>width$}  {:>width$}  {:<16}  {}",
            p.pid,
            Escaped(&p.user),
            Escaped(&p.name),
            size(p.private_bytes),
            size(p.working_set),
            arch,
            Escaped(&p.cmdline)
        )?;
    }
    if denied > 0 {
        writeln!(
            w,
            "\n{denied} process(es) marked (no access) belong to other users: run vmmap as their owner, as root, or with CAP_SYS_PTRACE to inspect them."
        )?;
    }
    Ok(())
}

/// `vmmap completions SHELL`: the completion script, generated from the
/// clap definitions so it never lags behind them.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vmmap", &mut out);
    io::stdout()
        .lock()
        .write_all(&out)
        .map_err(|e| output_error(e, "standard output"))
}

/// `vmmap manpage [--dir DIR]`: the man page in roff, from the clap
/// definitions.
fn manpage(dir: Option<&Path>) -> Result<(), Failure> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            // clap_mangen::generate_to, with its File::create replaced by
            // the writer every output uses.
            fn each(cmd: clap::Command, dir: &Path) -> io::Result<()> {
                for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                    each(sub.clone(), dir)?;
                }
                let man = clap_mangen::Man::new(cmd);
                vmmap_core::output::write(&dir.join(man.get_filename()), |w| man.render(w))
            }
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            each(cmd, dir).map_err(|e| Failure {
                code: exit::OUTPUT,
                message: format!("cannot write the man pages into {}: {e}", dir.display()),
            })
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| output_error(e, "the man page"))?;
            io::stdout()
                .lock()
                .write_all(&out)
                .map_err(|e| output_error(e, "standard output"))
        }
    }
}

/// `vmmap explain PID ADDRESS`: why the region at an address has its type.
fn explain_address(target: &str, text: &str, proc_root: &Path) -> Result<(), Failure> {
    let addr = vmmap_core::lookup::parse_address(text).ok_or_else(|| {
        Failure::usage(format!(
            "{text:?} is not an address: give it in hex, as vmmap prints it (0x7f12ab340000)"
        ))
    })?;
    let pid = resolve(target, proc_root)?;
    let snap = collect::snapshot(pid, &Options::default().proc_root(proc_root))?;
    let out = io::stdout();
    let mut w = out.lock();
    address::write_why(&snap, addr, &mut w).map_err(|e| output_error(e, "standard output"))
}

fn explain(topic: Option<&str>) -> Result<(), Failure> {
    let mut text = String::new();
    match topic {
        None => {
            text.push_str("MEMORY TYPES\n\n");
            for t in MemoryType::ALL {
                text.push_str(&format!("{}\n{}\n", t.name(), wrap(t.definition())));
            }
            text.push_str("COLUMNS (all figures in bytes, from /proc/PID/smaps)\n\n");
            for c in Column::ALL {
                text.push_str(&format!("{}\n{}\n", c.header(), wrap(c.definition())));
            }
        }
        Some(t) => {
            if let Some(m) = MemoryType::parse(t) {
                text.push_str(&format!("{} (type)\n{}", m.name(), wrap(m.definition())));
            } else if let Some(c) = Column::parse(t) {
                text.push_str(&format!(
                    "{} (column)\n    {}\n",
                    c.header(),
                    c.definition()
                ));
            } else {
                return Err(Failure::usage(format!(
                    "nothing called {t:?} to explain; topics are the types ({}) and the columns ({})",
                    MemoryType::ALL.iter().map(|t| t.id()).collect::<Vec<_>>().join(", "),
                    Column::ALL.iter().map(|c| c.id()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| output_error(e, "standard output"))
}

/// Wraps a definition at 76 columns, indented by four spaces.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("   ");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 80 && line.len() > 4 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("   ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}
