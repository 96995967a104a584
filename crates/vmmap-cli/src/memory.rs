//! What `vmmap strings` and `vmmap find` share to read a process's memory:
//! the ranges to read, the output, a progress line on a terminal and the
//! closing report ([`scan`]). The scanning is in `vmmap_core::memory`.

use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;

use vmmap_core::collect::{self, Options, ProcDir};
use vmmap_core::memory::{ProcessMemory, ReadStats, ScanRange};
use vmmap_core::Snapshot;

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

/// The callbacks a scan of `vmmap_core::memory` reports to: progress (bytes
/// done) and each hit.
type Callbacks<'a, H> = (
    &'a mut dyn FnMut(u64) -> ControlFlow<()>,
    &'a mut dyn FnMut(H) -> ControlFlow<()>,
);

/// Runs one scan of `target`'s memory (all of it, or the region holding
/// `region`): `run` calls the library's scanner with the reader, the
/// ranges, the page size and the callbacks; `print` writes each hit, given
/// the count so far, and may stop the scan; `finish` writes after the last
/// one. A progress line shows on a terminal, and standard error says what
/// was read, as `what` (strings, matches).
pub(crate) fn scan<H>(
    target: &str,
    region: Option<&str>,
    proc_root: &Path,
    what: &str,
    run: impl FnOnce(
        &mut ProcessMemory,
        &[ScanRange],
        u64,
        Callbacks<'_, H>,
    ) -> vmmap_core::Result<ReadStats>,
    mut print: impl FnMut(&Snapshot, &H, u64, &mut dyn Write) -> io::Result<ControlFlow<()>>,
    finish: impl FnOnce(u64, &mut dyn Write) -> io::Result<()>,
) -> Result<(), Failure> {
    let (snap, ranges, mut memory) = prepare(target, region, proc_root)?;
    let out = io::stdout();
    let mut w = io::BufWriter::with_capacity(1 << 16, out.lock());
    let mut write_error = None;
    let mut count = 0u64;
    let mut progress = Progress::new(&ranges);
    let stats = run(
        &mut memory,
        &ranges,
        snap.kernel.page_size,
        (
            &mut |d| {
                progress.update(d);
                ControlFlow::Continue(())
            },
            &mut |hit| {
                count += 1;
                match print(&snap, &hit, count, &mut w) {
                    Ok(flow) => flow,
                    Err(e) => {
                        write_error = Some(e);
                        ControlFlow::Break(())
                    }
                }
            },
        ),
    );
    progress.done();
    let stats = stats?;
    if let Some(e) = write_error {
        return Err(output_error(e, "standard output"));
    }
    finish(count, &mut w)
        .and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))?;
    report(&stats, what, count);
    Ok(())
}
