//! `vmmap strings` and `vmmap find`: what the process's memory holds.
//! The scanning is in `vmmap_core::memory`; this reads arguments, prints,
//! and shows progress on a terminal.

use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;

use vmmap_core::collect::{self, Options, ProcDir};
use vmmap_core::memory::{self as mem, ProcessMemory, ReadStats, ScanRange};
use vmmap_core::text::{self, Escaped};
use vmmap_core::Snapshot;

use crate::cli::{FindArgs, StringsArgs};
use crate::{output_error, resolve, Failure};

/// The snapshot, and the ranges to read: every readable one, or those of
/// the region holding `region` (an error if none does or none of it can
/// be read).
fn prepare(
    target: &str,
    region: Option<&str>,
    proc_root: &Path,
) -> Result<(Snapshot, Vec<ScanRange>, ProcessMemory), Failure> {
    let only = match region {
        Some(text) => Some(vmmap_core::lookup::parse_address(text).ok_or_else(|| {
            Failure::usage(format!(
                "--region {text:?} is not an address: give it in hex (0x7f12ab340000)"
            ))
        })?),
        None => None,
    };
    if proc_root != Path::new("/proc") {
        return Err(Failure::usage(
            "strings and find read a live process's memory; a captured /proc tree (--proc-root) has none",
        ));
    }
    let pid = resolve(target, proc_root)?;
    let snap = collect::snapshot(pid, &Options::default().proc_root(proc_root))?;
    let ranges = match vmmap_core::memory::scan_ranges(&snap, only) {
        Some(r) => r,
        None => {
            return Err(Failure::usage(format!(
                "no region of process {pid} holds {:#x}; `vmmap {pid}` lists them",
                only.unwrap_or(0)
            )))
        }
    };
    if let (Some(a), true) = (only, ranges.is_empty()) {
        let l = vmmap_core::lookup::lookup(&snap, a);
        let why = match l.hit {
            vmmap_core::lookup::Hit::Region { vma, .. } => {
                vmmap_core::memory::skip_reason(vma).unwrap_or("empty")
            }
            _ => "not mapped",
        };
        return Err(Failure::usage(format!(
            "the region holding {a:#x} cannot be read: {why}"
        )));
    }
    let dir = ProcDir::open(proc_root, pid)?;
    Ok((snap, ranges, ProcessMemory::new(dir)))
}

/// A progress line on standard error, only when it is a terminal, at most
/// once per percent.
struct Progress {
    total: u64,
    shown: Option<u64>,
    on: bool,
}

impl Progress {
    fn new(ranges: &[ScanRange]) -> Progress {
        let total = ranges.iter().map(|r| r.end - r.start).sum();
        Progress {
            total,
            shown: None,
            // Small scans finish before a line would be worth drawing.
            on: io::stderr().is_terminal() && total >= 256 << 20,
        }
    }

    fn update(&mut self, done: u64) {
        if !self.on || self.total == 0 {
            return;
        }
        let pct = done.saturating_mul(100) / self.total;
        if self.shown != Some(pct) {
            self.shown = Some(pct);
            eprint!(
                "\rvmmap: read {} of {} ({pct}%)   ",
                vmmap_core::units::size(done, false),
                vmmap_core::units::size(self.total, false)
            );
        }
    }

    fn done(&self) {
        if self.on && self.shown.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

fn report(stats: &ReadStats, what: &str, n: u64) {
    if io::stderr().is_terminal() {
        eprintln!(
            "vmmap: {n} {what}; read {}, {} unreadable skipped",
            vmmap_core::units::size(stats.read, false),
            vmmap_core::units::size(stats.unreadable, false),
        );
    }
    // Always, terminal or not: the output leaves this memory out.
    not_resident_note(stats.not_resident);
}

/// Says on standard error how much memory was left out because it was not
/// resident in the target, if any.
pub(crate) fn not_resident_note(bytes: u64) {
    if bytes > 0 {
        eprintln!(
            "vmmap: skipped {} not resident in the target (reading it would fault it in)",
            vmmap_core::units::size(bytes, false)
        );
    }
}

/// `vmmap strings PID`.
pub fn strings(a: &StringsArgs, proc_root: &Path) -> Result<(), Failure> {
    let encodings = a.encoding.encodings();
    if a.min == 0 {
        return Err(Failure::usage("--min must be at least 1"));
    }
    let (snap, ranges, mut memory) = prepare(&a.target, a.region.as_deref(), proc_root)?;
    let out = io::stdout();
    let mut w = io::BufWriter::with_capacity(1 << 16, out.lock());
    let mut write_error = None;
    let mut count = 0u64;
    let mut progress = Progress::new(&ranges);
    let stats = mem::strings(
        &mut memory,
        &ranges,
        a.min,
        encodings,
        mem::CHUNK,
        snap.kernel.page_size,
        &mut |d| {
            progress.update(d);
            ControlFlow::Continue(())
        },
        &mut |hit| {
            count += 1;
            let r = &snap.regions[hit.region];
            match writeln!(
                w,
                "{:#014x}  {:<12}  {:<7}  {}",
                hit.found.address,
                r.memory_type.name(),
                hit.found.encoding.id(),
                Escaped(&hit.found.text)
            ) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    write_error = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    );
    progress.done();
    let stats = stats?;
    if let Some(e) = write_error {
        return Err(output_error(e, "standard output"));
    }
    w.flush().map_err(|e| output_error(e, "standard output"))?;
    report(&stats, "strings", count);
    Ok(())
}

/// `vmmap find PID PATTERN`.
pub fn find(a: &FindArgs, proc_root: &Path) -> Result<(), Failure> {
    use vmmap_core::memory::search::{escape, parse_hex, Searcher};
    let mut searcher = match (&a.hex, &a.pattern) {
        (Some(h), _) => parse_hex(h).and_then(|b| Searcher::literal(&b)),
        (None, Some(p)) if a.regex => Searcher::regex(p, a.ignore_case),
        (None, Some(p)) if a.ignore_case => Searcher::regex(&regex_escape(p), true),
        (None, Some(p)) => Searcher::literal(p.as_bytes()),
        (None, None) => Err("give a PATTERN or --hex BYTES".to_string()),
    }
    .map_err(|e| Failure::usage(format!("bad pattern: {e}")))?;
    if a.max == Some(0) {
        return Err(Failure::usage("--max must be at least 1"));
    }
    let (snap, ranges, mut memory) = prepare(&a.target, a.region.as_deref(), proc_root)?;
    let out = io::stdout();
    let mut w = io::BufWriter::with_capacity(1 << 16, out.lock());
    let mut write_error = None;
    let mut count = 0u64;
    let mut progress = Progress::new(&ranges);
    let stats = mem::search(
        &mut memory,
        &ranges,
        &mut searcher,
        mem::CHUNK,
        snap.kernel.page_size,
        &mut |d| {
            progress.update(d);
            ControlFlow::Continue(())
        },
        &mut |hit| {
            count += 1;
            if !a.count {
                let r = &snap.regions[hit.region];
                let more = if hit.found.len > hit.found.bytes.len() {
                    format!("… ({} bytes)", hit.found.len)
                } else {
                    String::new()
                };
                let details = text::escape(if r.details.is_empty() {
                    &r.path
                } else {
                    &r.details
                });
                let line = writeln!(
                    w,
                    "{:#014x}  {:<12}  {:#x}-{:#x}  \"{}\"{more}{}{details}",
                    hit.found.address,
                    r.memory_type.name(),
                    r.start,
                    r.end,
                    escape(&hit.found.bytes),
                    if details.is_empty() { "" } else { "  " },
                );
                if let Err(e) = line {
                    write_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
            if a.max.is_some_and(|m| count >= m) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    progress.done();
    let stats = stats?;
    if let Some(e) = write_error {
        return Err(output_error(e, "standard output"));
    }
    if a.count {
        writeln!(w, "{count}").map_err(|e| output_error(e, "standard output"))?;
    }
    w.flush().map_err(|e| output_error(e, "standard output"))?;
    report(&stats, "matches", count);
    Ok(())
}

/// Escapes text for use as a literal inside a regular expression.
fn regex_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}
