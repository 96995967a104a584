//! Metrics for Prometheus and other OpenMetrics consumers: per-process,
//! per-type gauges of the Summary's figures, rendered as OpenMetrics text
//! (`docs/metrics-export.md` lists every name). This module knows nothing
//! of HTTP; `vmmap metrics` prints [`render`]'s output and `vmmap serve`
//! answers `/metrics` with it.
//!
//! Label cardinality is bounded by construction: the `type` label takes
//! the eight memory types other than Free, the processes are the ones the
//! user selected, capped by [`ScrapeOptions::max_processes`], and every
//! process left out is counted, by reason, in
//! `vmmap_scrape_skipped_processes` instead of failing the scrape.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::collect::{self, Options};
use crate::error::Error;
use crate::figures::Column;
use crate::model::{MemoryType, Snapshot};
use crate::summary::Summary;

/// One exported figure: the column and its metric family.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metric {
    /// The Summary column it exports.
    pub(crate) column: Column,
    /// The metric family name (OpenMetrics: it ends in the unit).
    pub(crate) name: &'static str,
    /// The `# HELP` text.
    pub(crate) help: &'static str,
}

/// The exported figures, in output order. Names are stable: renaming one
/// breaks dashboards, so a change here is a new metric.
pub(crate) const METRICS: [Metric; 6] = [
    Metric {
        column: Column::Size,
        name: "vmmap_size_bytes",
        help: "Address space of the memory type (smaps Size; Page Table: VmPTE).",
    },
    Metric {
        column: Column::Committed,
        name: "vmmap_committed_bytes",
        help:
            "Size of the type's mappings that allow any access (PROT_NONE reservations excluded).",
    },
    Metric {
        column: Column::Private,
        name: "vmmap_private_bytes",
        help: "Private memory materialised by the type: Anonymous + Swap of MAP_PRIVATE mappings.",
    },
    Metric {
        column: Column::TotalWs,
        name: "vmmap_working_set_bytes",
        help: "Resident memory of the type (smaps Rss, VMMap's Total WS).",
    },
    Metric {
        column: Column::Pss,
        name: "vmmap_pss_bytes",
        help: "Proportional set size of the type (smaps Pss).",
    },
    Metric {
        column: Column::Swap,
        name: "vmmap_swap_bytes",
        help: "Memory of the type in swap (smaps Swap).",
    },
];

/// The memory types exported: every type but Free (address space nobody
/// uses, already implied by the others).
pub(crate) fn exported_types() -> impl Iterator<Item = MemoryType> {
    MemoryType::ALL
        .into_iter()
        .filter(|t| *t != MemoryType::Free)
}

/// Why a selected process is not in a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkipReason {
    /// It exited, or no process has that PID or name.
    Gone,
    /// The kernel refused access (another user's process without root or
    /// CAP_SYS_PTRACE).
    Permission,
    /// A kernel thread: no user address space.
    KernelThread,
    /// The time budget ran out before its turn.
    Budget,
    /// Over `max_processes`.
    Limit,
    /// Anything else: unexpected /proc content, an unsupported kernel, I/O.
    Error,
}

impl SkipReason {
    /// Every reason, in output order.
    pub(crate) const ALL: [SkipReason; 6] = [
        SkipReason::Gone,
        SkipReason::Permission,
        SkipReason::KernelThread,
        SkipReason::Budget,
        SkipReason::Limit,
        SkipReason::Error,
    ];

    /// The `reason` label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            SkipReason::Gone => "gone",
            SkipReason::Permission => "permission",
            SkipReason::KernelThread => "kernel_thread",
            SkipReason::Budget => "budget",
            SkipReason::Limit => "limit",
            SkipReason::Error => "error",
        }
    }

    /// The reason a collection error maps to.
    pub(crate) fn of(e: &Error) -> SkipReason {
        match e {
            Error::NoSuchProcess { .. } | Error::NoProcessNamed { .. } => SkipReason::Gone,
            Error::ProcessExited { .. } | Error::Zombie { .. } => SkipReason::Gone,
            Error::PermissionDenied { .. } => SkipReason::Permission,
            Error::KernelThread { .. } => SkipReason::KernelThread,
            _ => SkipReason::Error,
        }
    }
}

/// Counts of skipped processes, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped([u64; 6]);

impl Skipped {
    /// Counts one more.
    pub(crate) fn add(&mut self, r: SkipReason, n: u64) {
        self.0[r as usize] += n;
    }
    /// The count for one reason.
    pub(crate) fn get(&self, r: SkipReason) -> u64 {
        self.0[r as usize]
    }
    /// Adds another set of counts.
    pub fn add_all(&mut self, o: &Skipped) {
        for r in SkipReason::ALL {
            self.add(r, o.get(r));
        }
    }
    #[cfg(test)]
    /// All reasons together.
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// The exported figures of one process.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProcessMetrics {
    /// PID.
    pub(crate) pid: u32,
    /// Command name (`comm`).
    pub(crate) comm: String,
    /// One value per exported type and metric, `None` where the kernel
    /// lacks the field (the sample is then left out, never shown as 0).
    pub(crate) values: Vec<(MemoryType, [Option<u64>; METRICS.len()])>,
}

impl ProcessMetrics {
    /// The exported figures of a snapshot: its Summary rows.
    pub(crate) fn of(snap: &Snapshot) -> ProcessMetrics {
        let summary = Summary::of(snap);
        let values = exported_types()
            .map(|t| {
                let row = &summary.row(t).figures;
                (t, METRICS.map(|m| row.get(m.column)))
            })
            .collect();
        ProcessMetrics {
            pid: snap.process.pid,
            comm: snap.process.name.clone(),
            values,
        }
    }
}

/// One scrape: the processes collected and the ones skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    /// Collected processes, in collection order.
    pub(crate) processes: Vec<ProcessMetrics>,
    /// Skipped processes, by reason.
    pub skipped: Skipped,
    /// How long the collection took.
    pub(crate) duration: Duration,
    /// The budget ran out before every selected process was read.
    pub(crate) truncated: bool,
}

/// Which processes to collect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One PID.
    Pid(u32),
    /// Every process with this name (command name, argv\[0\] or executable
    /// file name); several matches are all collected.
    Name(String),
    /// Every user process the caller may read, largest working set first.
    All,
}

/// How to scrape.
#[derive(Clone, Debug)]
pub struct ScrapeOptions {
    /// How snapshots are taken.
    pub collect: Options,
    /// At most this many processes are collected; the rest (with `All`,
    /// those with the smallest working sets) count as skipped `limit`.
    pub max_processes: usize,
    /// The scrape returns after at most this long (plus thread start-up),
    /// with what it has: a process still being read is abandoned, and it
    /// and those not started count as skipped `budget`.
    pub budget: Option<Duration>,
}

/// Resolves the targets to PIDs, in order, without duplicates; names that
/// match nothing count as `gone`.
pub(crate) fn resolve(targets: &[Target], opts: &Options, skipped: &mut Skipped) -> Vec<u32> {
    let mut pids: Vec<u32> = Vec::new();
    let push = |p: u32, pids: &mut Vec<u32>| {
        if !pids.contains(&p) {
            pids.push(p);
        }
    };
    for t in targets {
        match t {
            Target::Pid(p) => push(*p, &mut pids),
            Target::Name(n) => match collect::find_by_name(&opts.proc_root, n) {
                Ok(p) => push(p, &mut pids),
                Err(Error::AmbiguousName { matches, .. }) => {
                    for (p, _) in matches {
                        push(p, &mut pids);
                    }
                }
                Err(e) => skipped.add(SkipReason::of(&e), 1),
            },
            Target::All => match collect::list_processes(&opts.proc_root) {
                Ok(mut list) => {
                    // SAFETY: getpid has no preconditions.
                    let me = unsafe { libc::getpid() } as u32;
                    list.retain(|p| p.pid != me);
                    list.sort_by(|a, b| b.working_set.cmp(&a.working_set).then(a.pid.cmp(&b.pid)));
                    for p in list {
                        match p.access {
                            collect::Access::Ok => push(p.pid, &mut pids),
                            collect::Access::Denied(_) => skipped.add(SkipReason::Permission, 1),
                        }
                    }
                }
                Err(e) => skipped.add(SkipReason::of(&e), 1),
            },
        }
    }
    pids
}

/// What the collecting side of a scrape reports.
enum Event {
    /// The targets resolved: this many processes will be read, and these
    /// were left out already.
    Resolved(usize, Skipped),
    /// One process read, or why not.
    Read(std::result::Result<ProcessMetrics, SkipReason>),
}

/// Held by a scrape's collecting thread while it runs. A scrape cut by its
/// budget leaves the thread to finish the process it is reading (a read of
/// /proc cannot be interrupted); the next scrape waits for it here, inside
/// its own budget, so abandoned reads never pile up.
static COLLECTING: Mutex<()> = Mutex::new(());

/// Resolves and reads the targets, reporting each step; stops before the
/// next process once `stop` is set.
fn collect(targets: &[Target], opts: &ScrapeOptions, stop: &AtomicBool, tx: &mpsc::Sender<Event>) {
    let _one = COLLECTING.lock().unwrap_or_else(|e| e.into_inner());
    if stop.load(Ordering::Relaxed) {
        return;
    }
    let mut skipped = Skipped::default();
    let pids = resolve(targets, &opts.collect, &mut skipped);
    let over = pids.len().saturating_sub(opts.max_processes);
    skipped.add(SkipReason::Limit, over as u64);
    let todo = &pids[..pids.len() - over];
    if tx.send(Event::Resolved(todo.len(), skipped)).is_err() {
        return;
    }
    for &pid in todo {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let read = collect::snapshot(pid, &opts.collect)
            .map(|snap| ProcessMetrics::of(&snap))
            .map_err(|e| SkipReason::of(&e));
        if tx.send(Event::Read(read)).is_err() {
            return;
        }
    }
}

/// Collects the targets within the options' limits. Never fails: every
/// process that cannot be read is counted in [`Scrape::skipped`].
///
/// With a budget, the processes are read on a separate thread and this
/// one returns when the budget runs out, even in the middle of a process
/// (reading one large process's smaps can take longer than any budget).
pub fn scrape(targets: &[Target], opts: &ScrapeOptions) -> Scrape {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    match opts.budget {
        None => {
            // Inline, and `tx` dropped at the end so that the loop below
            // ends when the events do.
            let tx = tx;
            collect(targets, opts, &stop, &tx);
        }
        Some(_) => {
            let (targets, opts, stop) = (targets.to_vec(), opts.clone(), stop.clone());
            // A thread that cannot start (out of tasks) leaves `tx` dropped
            // with it: the loop below sees no event and the scrape is
            // empty, not a panic.
            let _ = std::thread::Builder::new()
                .name("vmmap-collect".into())
                .spawn(move || collect(&targets, &opts, &stop, &tx));
        }
    }
    let deadline = opts.budget.map(|b| start + b);
    let mut out = Scrape::default();
    // Processes to read, once resolved.
    let mut todo: Option<usize> = None;
    // Those not read yet. Before resolution the selection is unknown: the
    // PIDs and names given count (an unread `All` counts none).
    let left = |todo: Option<usize>, done: usize| {
        todo.map_or_else(
            || targets.iter().filter(|t| **t != Target::All).count(),
            |n| n - done,
        )
    };
    let mut done = 0;
    loop {
        let event = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => rx.recv_timeout(left),
                _ => Err(RecvTimeoutError::Timeout),
            },
        };
        match event {
            Ok(Event::Resolved(n, skipped)) => {
                todo = Some(n);
                out.skipped.add_all(&skipped);
            }
            Ok(Event::Read(r)) => {
                done += 1;
                match r {
                    Ok(p) => out.processes.push(p),
                    Err(reason) => out.skipped.add(reason, 1),
                }
            }
            // The collector ended: normally after the last process; early
            // only if its thread could not start or panicked, and what it
            // left is then counted as `error`.
            Err(RecvTimeoutError::Disconnected) => {
                out.skipped.add(SkipReason::Error, left(todo, done) as u64);
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                stop.store(true, Ordering::Relaxed);
                out.truncated = true;
                out.skipped.add(SkipReason::Budget, left(todo, done) as u64);
                break;
            }
        }
    }
    out.duration = start.elapsed();
    out
}

/// The content type of [`render`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`render_as`]'s [`Format::PrometheusText`].
pub(crate) const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format. They differ only in how a counter family is
/// named: OpenMetrics names it without `_total` (its samples have it), the
/// Prometheus text format with it (else `promtool check metrics` and other
/// 0.0.4 parsers see samples of an undeclared family).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 ([`CONTENT_TYPE`]).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 ([`TEXT_CONTENT_TYPE`]).
    PrometheusText,
}

impl Format {
    /// The content type to send with it.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => CONTENT_TYPE,
            Format::PrometheusText => TEXT_CONTENT_TYPE,
        }
    }
}

/// Writes a label value with OpenMetrics escapes (`\\`, `\"`, `\n`).
/// Writes a label value. A process name is anyone's to choose, and this
/// text is often read on a terminal: a name holding control characters
/// is given in vmmap's escaped notation ([`crate::text::escape`]) first,
/// then escaped as OpenMetrics requires.
fn label_value(w: &mut impl Write, s: &str) -> io::Result<()> {
    let shown = crate::text::escape(s);
    let mut rest: &str = &shown;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        w.write_all(&rest.as_bytes()[..i])?;
        let esc: &[u8] = match rest.as_bytes()[i] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        };
        w.write_all(esc)?;
        rest = &rest[i + 1..];
    }
    w.write_all(rest.as_bytes())
}

fn family(w: &mut impl Write, name: &str, kind: &str, unit: &str, help: &str) -> io::Result<()> {
    writeln!(w, "# TYPE {name} {kind}")?;
    if !unit.is_empty() {
        writeln!(w, "# UNIT {name} {unit}")?;
    }
    writeln!(w, "# HELP {name} {help}")
}

/// Renders a scrape as OpenMetrics text, ending in `# EOF`. With
/// `lifetime` (a server's running totals), the cumulative
/// `vmmap_skipped_processes_total` counter is added.
pub fn render(scrape: &Scrape, lifetime: Option<&Skipped>, w: &mut impl Write) -> io::Result<()> {
    render_as(scrape, lifetime, Format::OpenMetrics, w)
}

/// [`render`] in either format.
pub fn render_as(
    scrape: &Scrape,
    lifetime: Option<&Skipped>,
    format: Format,
    w: &mut impl Write,
) -> io::Result<()> {
    for (i, m) in METRICS.iter().enumerate() {
        family(w, m.name, "gauge", "bytes", m.help)?;
        for p in &scrape.processes {
            for (t, values) in &p.values {
                let Some(v) = values[i] else { continue };
                write!(w, "{}{{pid=\"{}\",comm=\"", m.name, p.pid)?;
                label_value(w, &p.comm)?;
                writeln!(w, "\",type=\"{}\"}} {v}", t.id())?;
            }
        }
    }
    family(
        w,
        "vmmap_scrape_processes",
        "gauge",
        "",
        "Processes collected by this scrape.",
    )?;
    writeln!(w, "vmmap_scrape_processes {}", scrape.processes.len())?;
    family(
        w,
        "vmmap_scrape_skipped_processes",
        "gauge",
        "",
        "Selected processes left out of this scrape, by reason (gone, permission, kernel_thread, budget, limit, error).",
    )?;
    for r in SkipReason::ALL {
        writeln!(
            w,
            "vmmap_scrape_skipped_processes{{reason=\"{}\"}} {}",
            r.label(),
            scrape.skipped.get(r)
        )?;
    }
    family(
        w,
        "vmmap_scrape_duration_seconds",
        "gauge",
        "seconds",
        "Time this scrape took to collect.",
    )?;
    writeln!(
        w,
        "vmmap_scrape_duration_seconds {}",
        scrape.duration.as_secs_f64()
    )?;
    family(
        w,
        "vmmap_scrape_truncated",
        "gauge",
        "",
        "1 if the time budget ran out during this scrape (the processes left count as skipped budget), else 0.",
    )?;
    writeln!(w, "vmmap_scrape_truncated {}", u8::from(scrape.truncated))?;
    if let Some(total) = lifetime {
        family(
            w,
            match format {
                Format::OpenMetrics => "vmmap_skipped_processes",
                Format::PrometheusText => "vmmap_skipped_processes_total",
            },
            "counter",
            "",
            "Selected processes left out of scrapes since the server started, by reason.",
        )?;
        for r in SkipReason::ALL {
            writeln!(
                w,
                "vmmap_skipped_processes_total{{reason=\"{}\"}} {}",
                r.label(),
                total.get(r)
            )?;
        }
    }
    writeln!(w, "# EOF")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Region;
    use crate::proc::smaps::{Field, Mapping};

    fn region(start: u64, pages: u64, perms: &[u8; 4], t: MemoryType, rss_kb: u64) -> Region {
        let mut m = Mapping {
            start,
            end: start + pages * 4096,
            perms: *perms,
            ..Mapping::default()
        };
        for &f in Field::PER_VMA {
            m.fields.set(f, 0);
        }
        m.fields.set(Field::Rss, rss_kb * 1024);
        m.fields.set(Field::Pss, rss_kb * 512);
        m.fields.set(Field::Anonymous, rss_kb * 1024);
        m.fields.set(Field::Swap, 4096);
        let mut r = Region::from_mapping(m);
        r.memory_type = t;
        r
    }

    fn snap() -> Snapshot {
        let mut s = Snapshot::from_regions(
            42,
            0,
            vec![
                region(0x10000, 4, b"rw-p", MemoryType::Heap, 8),
                region(0x20000, 2, b"rw-p", MemoryType::Heap, 4),
                region(0x30000, 8, b"---p", MemoryType::PrivateData, 0),
            ],
        );
        s.process.name = "a \"b\"\\c".into();
        s
    }

    fn text(s: &Scrape, life: Option<&Skipped>) -> String {
        let mut out = Vec::new();
        render(s, life, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_name_with_control_characters_is_shown_escaped() {
        let mut s = snap();
        s.process.name = "\u{1b}]0;x\u{7}\nz".into();
        let scrape = Scrape {
            processes: vec![ProcessMetrics::of(&s)],
            skipped: Skipped::default(),
            duration: Duration::from_millis(1),
            truncated: false,
        };
        let t = text(&scrape, None);
        assert!(!t.contains('\u{1b}') && !t.contains('\u{7}'), "{t}");
        assert!(t.contains(r#"comm="\"\\x1b]0;x\\x07\\nz\"""#), "{t}");
    }

    #[test]
    fn renders_every_figure_per_type_with_escaped_labels() {
        let p = ProcessMetrics::of(&snap());
        let scrape = Scrape {
            processes: vec![p],
            skipped: Skipped::default(),
            duration: Duration::from_millis(1500),
            truncated: false,
        };
        let t = text(&scrape, None);
        let lbl = r#"pid="42",comm="a \"b\"\\c""#;
        assert!(
            t.contains(&format!("vmmap_size_bytes{{{lbl},type=\"heap\"}} 24576\n")),
            "{t}"
        );
        assert!(t.contains(&format!(
            "vmmap_working_set_bytes{{{lbl},type=\"heap\"}} 12288\n"
        )));
        assert!(t.contains(&format!("vmmap_pss_bytes{{{lbl},type=\"heap\"}} 6144\n")));
        assert!(t.contains(&format!("vmmap_swap_bytes{{{lbl},type=\"heap\"}} 8192\n")));
        // Private = Anonymous + Swap.
        assert!(t.contains(&format!(
            "vmmap_private_bytes{{{lbl},type=\"heap\"}} 20480\n"
        )));
        // A PROT_NONE reservation has size but no commit.
        assert!(t.contains(&format!(
            "vmmap_size_bytes{{{lbl},type=\"private_data\"}} 32768\n"
        )));
        assert!(t.contains(&format!(
            "vmmap_committed_bytes{{{lbl},type=\"private_data\"}} 0\n"
        )));
        // Free is never exported; the types without regions are (as 0).
        assert!(!t.contains("type=\"free\""));
        assert!(t.contains(&format!("vmmap_size_bytes{{{lbl},type=\"stack\"}} 0\n")));
        // No VmPTE in this snapshot: Page Table figures are left out,
        // never shown as 0; the seven other types remain.
        assert!(!t.contains("type=\"page_table\""));
        for m in METRICS {
            assert_eq!(t.matches(&format!("{}{{", m.name)).count(), 7, "{}", m.name);
        }
        assert!(t.contains("vmmap_scrape_duration_seconds 1.5\n"));
        assert!(t.contains("# UNIT vmmap_size_bytes bytes\n"));
        assert!(t.ends_with("# EOF\n"));
        assert!(!t.contains("vmmap_skipped_processes_total"));
    }

    #[test]
    fn missing_kernel_fields_leave_samples_out() {
        let mut s = snap();
        for r in &mut s.regions {
            r.fields = Default::default();
            r.fields.set(Field::Rss, 4096);
        }
        let t = text(
            &Scrape {
                processes: vec![ProcessMetrics::of(&s)],
                ..Scrape::default()
            },
            None,
        );
        assert!(!t.contains("vmmap_pss_bytes{"), "{t}");
        assert!(!t.contains("vmmap_private_bytes{"));
        assert!(t.contains("vmmap_working_set_bytes{pid=\"42\""));
    }

    #[test]
    fn every_skip_reason_is_a_series_and_lifetime_totals_are_a_counter() {
        let mut skipped = Skipped::default();
        skipped.add(SkipReason::Budget, 3);
        skipped.add(SkipReason::Gone, 1);
        let mut life = Skipped::default();
        life.add_all(&skipped);
        life.add_all(&skipped);
        let t = text(
            &Scrape {
                skipped,
                ..Scrape::default()
            },
            Some(&life),
        );
        for r in SkipReason::ALL {
            assert!(t.contains(&format!(
                "vmmap_scrape_skipped_processes{{reason=\"{}\"}} {}\n",
                r.label(),
                skipped.get(r)
            )));
        }
        assert!(t.contains("vmmap_skipped_processes_total{reason=\"budget\"} 6\n"));
        assert!(t.contains("# TYPE vmmap_skipped_processes counter\n"));
        let mut text = Vec::new();
        render_as(
            &Scrape::default(),
            Some(&life),
            Format::PrometheusText,
            &mut text,
        )
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("# TYPE vmmap_skipped_processes_total counter\n"));
        assert!(text.contains("vmmap_skipped_processes_total{reason=\"budget\"} 6\n"));
        assert!(t.contains("vmmap_scrape_processes 0\n"));
        assert_eq!(skipped.total(), 4);
    }

    #[test]
    fn limits_and_failures_are_counted_not_fatal() {
        let me = std::process::id();
        let opts = ScrapeOptions {
            collect: Options::default(),
            max_processes: 1,
            budget: None,
        };
        // A duplicate counts once; the PID after it is over the limit; an
        // unknown name is gone.
        let s = scrape(
            &[
                Target::Pid(me),
                Target::Pid(me),
                Target::Pid(u32::MAX),
                Target::Name("no-such-process-name-xyz".into()),
            ],
            &opts,
        );
        assert_eq!(s.processes.len(), 1);
        assert_eq!(s.processes[0].pid, me);
        assert_eq!(s.skipped.get(SkipReason::Limit), 1);
        assert_eq!(s.skipped.get(SkipReason::Gone), 1);
        let none = scrape(
            &[Target::Pid(me)],
            &ScrapeOptions {
                budget: Some(Duration::ZERO),
                ..opts.clone()
            },
        );
        assert!(none.processes.is_empty());
        assert_eq!(none.skipped.get(SkipReason::Budget), 1);
        assert!(none.truncated);
        assert!(!s.truncated);
        // A budget that suffices: the same as none.
        let within = scrape(
            &[Target::Pid(me)],
            &ScrapeOptions {
                budget: Some(Duration::from_secs(60)),
                ..opts
            },
        );
        assert_eq!(within.processes.len(), 1);
        assert!(!within.truncated);
        assert_eq!(within.skipped.total(), 0);
    }
}
