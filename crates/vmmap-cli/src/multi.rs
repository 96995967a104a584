//! Sharing across processes: exact sharing and image sections for one
//! snapshot, the combined report of several processes (`vmmap PID PID…`,
//! `--children`, `--cgroup`) and `--shared-with`.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::collect::{self, pages, sections, Options};
use vmmap_core::multi::{self, Combined, CombinedRow, CountedOnce};
use vmmap_core::Snapshot;

use crate::cli::{SharingMode, SnapshotArgs};
use crate::{output_error, resolve, Failure};

/// Adds what the options ask for beyond smaps: exact sharing figures and
/// image sections.
pub fn enrich(snap: &mut Snapshot, a: &SnapshotArgs, opts: &Options) -> Result<(), Failure> {
    if a.sharing == SharingMode::Exact {
        pages::exact_sharing(snap, opts, false)?;
    }
    if a.sections {
        sections::image_sections(snap, opts)?;
    }
    Ok(())
}

/// Whether the arguments name several processes.
pub fn is_multi(a: &SnapshotArgs) -> bool {
    !a.more.is_empty() || a.children || a.cgroup.is_some()
}

/// `vmmap PID PID…`, `--children`, `--cgroup PATH`.
pub fn combined(a: &SnapshotArgs, proc_root: &Path) -> Result<(), Failure> {
    let mut pids: Vec<u32> = Vec::new();
    let first = match (a.pid, &a.name, &a.target) {
        (Some(p), _, _) => Some(p),
        (None, Some(n), _) => Some(collect::find_by_name(proc_root, n)?),
        (None, None, Some(t)) => Some(resolve(t, proc_root)?),
        _ => None,
    };
    if a.children {
        let Some(p) = first else {
            return Err(Failure::usage(
                "--children needs a process: vmmap PID --children",
            ));
        };
        pids.extend(multi::with_descendants(proc_root, p)?);
    } else if let Some(p) = first {
        pids.push(p);
    }
    for t in &a.more {
        pids.push(resolve(t, proc_root)?);
    }
    if let Some(cg) = &a.cgroup {
        pids.extend(multi::cgroup_members(cg)?);
    }
    let mut seen = std::collections::HashSet::new();
    pids.retain(|p| seen.insert(*p));
    if pids.is_empty() {
        return Err(Failure::usage("no process to show: the cgroup is empty"));
    }
    let opts = Options::default()
        .proc_root(proc_root)
        .ptrace(!a.no_ptrace)
        .read_memory(!a.no_read_memory);
    // Frames are only visible to root; without them PSS stands in.
    let frames_readable = pages::can_read_frames(proc_root);
    let mut snaps = Vec::new();
    let mut frames = frames_readable.then(Vec::new);
    let mut skipped = Vec::new();
    for &pid in &pids {
        let mut snap = match collect::snapshot(pid, &opts) {
            Ok(s) => s,
            // With a tree or a cgroup, a member may exit or be a kernel
            // thread; a PID the user named must work.
            Err(e) if a.children || a.cgroup.is_some() => {
                skipped.push(format!("{pid}: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if frames.is_some() || a.sharing == SharingMode::Exact {
            let scan = pages::exact_sharing(&mut snap, &opts, frames.is_some())?;
            if let (Some(all), Some(mine)) = (&mut frames, scan.frames) {
                all.extend(mine);
            }
        }
        snaps.push(snap);
    }
    let page = snaps.first().map_or(4096, |s| s.kernel.page_size);
    let c = Combined::of(&snaps, frames, page);
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.display.json {
        let v = serde_json::json!({
            "schema": "vmmap.combined",
            "version": 1,
            "combined": c,
            "skipped": skipped,
        });
        serde_json::to_writer_pretty(&mut w, &v)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(w))
    } else {
        write_combined(&c, &skipped, a.display.bytes, &mut w)
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))
}

fn write_combined(
    c: &Combined,
    skipped: &[String],
    exact: bool,
    w: &mut impl Write,
) -> io::Result<()> {
    let size = |v: u64| vmmap_core::units::size(v, exact);
    let opt = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), size);
    writeln!(w, "Processes:     {}", c.processes.len())?;
    writeln!(
        w,
        "Counted once:  {}",
        match c.counted_once {
            CountedOnce::FrameUnion =>
                "exact: distinct physical pages (page frame union over every process's pagemap)",
            CountedOnce::PssSum =>
                "estimated as the sum of PSS (page frames need root); lower than exact when processes outside the set share the pages",
        }
    )?;
    for s in skipped {
        writeln!(w, "Skipped:       {s}")?;
    }
    writeln!(w)?;
    let nw = if exact { 14 } else { 9 };
    writeln!(
        w,
        "{:<14}{:>nw$}{:>nw$}{:>nw$}{:>13}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
        "Type",
        "Size",
        "Committed",
        "Private",
        "WS (once)",
        "Priv WS",
        "Shrbl WS",
        "Sum of WS",
        "PSS",
        nw = nw.max(10)
    )?;
    let nw = nw.max(10);
    let row = |r: &CombinedRow, w: &mut dyn Write| -> io::Result<()> {
        writeln!(
            w,
            "{:<14}{:>nw$}{:>nw$}{:>nw$}{:>13}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
            r.memory_type.map_or("Total", |t| t.name()),
            size(r.size),
            size(r.committed),
            size(r.private),
            size(r.total_ws_once),
            opt(r.private_ws_once),
            opt(r.shareable_ws_once),
            size(r.total_ws_sum),
            size(r.pss),
        )
    };
    for r in &c.rows {
        row(r, w)?;
    }
    row(&c.total, w)?;
    writeln!(w)?;
    writeln!(
        w,
        "{:>8}  {:<16}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
        "PID", "Name", "Size", "Committed", "Private", "Total WS", "Shared WS", "PSS"
    )?;
    for p in &c.processes {
        writeln!(
            w,
            "{:>8}  {:<16}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
            p.pid,
            p.name,
            size(p.size),
            size(p.committed),
            size(p.private),
            size(p.total_ws),
            size(p.shared_ws),
            size(p.pss),
        )?;
    }
    Ok(())
}

/// `vmmap PID -a ADDR --shared-with`.
pub fn shared_with(
    snap: &Snapshot,
    addr: u64,
    opts: &Options,
    json: bool,
    exact: bool,
) -> Result<(), Failure> {
    let Some(region) = snap.region_at(addr) else {
        return Err(Failure::usage(format!(
            "no region of process {} holds {addr:#x}",
            snap.process.pid
        )));
    };
    let (own, others) = pages::shared_with(snap, region, opts)?;
    let page = snap.kernel.page_size;
    let out = io::stdout();
    let mut w = out.lock();
    let r = if json {
        let v = serde_json::json!({
            "schema": "vmmap.shared_with",
            "version": 1,
            "pid": snap.process.pid,
            "region": { "start": format!("{:#x}", region.start), "end": format!("{:#x}", region.end),
                        "type": region.memory_type.id(), "details": region.details },
            "page_size": page,
            "resident_pages": own,
            "shared_with": others,
        });
        serde_json::to_writer_pretty(&mut w, &v)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(w))
    } else {
        (|| -> io::Result<()> {
            writeln!(
                w,
                "Region {:#x}-{:#x} ({}, {}) of process {}: {} resident page(s), not counting the zero page",
                region.start,
                region.end,
                region.memory_type.name(),
                region.details,
                snap.process.pid,
                own
            )?;
            if others.is_empty() {
                writeln!(w, "No other process maps any of these pages.")?;
            }
            for o in &others {
                writeln!(
                    w,
                    "{:>8}  {:<16}{:>8} page(s) {:>9}  {}",
                    o.pid,
                    o.name,
                    o.pages,
                    vmmap_core::units::size(o.pages * page, exact),
                    o.mappings.join(", ")
                )?;
            }
            Ok(())
        })()
    };
    r.map_err(|e| output_error(e, "standard output"))
}
