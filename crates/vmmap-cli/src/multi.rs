//! Sharing across processes: exact sharing and image sections for one
//! snapshot, the combined report of several processes (`vmmap PID PID…`,
//! `--children`, `--cgroup`) and `--shared-with`.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::collect::{self, pages, sections, Options};
use vmmap_core::multi::{self, Combined};
use vmmap_core::Snapshot;

use crate::cli::{SharingMode, SnapshotArgs};
use crate::{output_error, resolve, Failure};

/// Adds what the options ask for beyond smaps: exact sharing figures and
/// image sections.
pub fn enrich(snap: &mut Snapshot, a: &SnapshotArgs, opts: &Options) -> Result<(), Failure> {
    if a.sharing != SharingMode::Fast {
        let how = pages::PageOptions {
            kpagecount: a.sharing == SharingMode::Kpagecount,
            keep_frames: false,
        };
        pages::exact_sharing(snap, opts, how)?;
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
    let opts = a.read.options(proc_root);
    // With a tree or a cgroup, a member may exit or be a kernel thread
    // meanwhile; a PID the user named must work.
    let tolerate = a.children || a.cgroup.is_some();
    let (c, skipped) = multi::collect(&pids, &opts, a.sharing != SharingMode::Fast, tolerate)?;
    let out = io::stdout();
    let width = if a.display.json {
        None
    } else {
        crate::width::fit_width(a.display.wide)
    };
    let mut w = crate::width::FitLines::new(io::BufWriter::new(out.lock()), width);
    let r = if a.display.json {
        let v = serde_json::json!({
            "schema": "vmmap.combined",
            "version": 1,
            "combined": c,
            "skipped": skipped,
        });
        vmmap_core::export::to_writer_pretty(&mut w, &v).and_then(|()| writeln!(w))
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
    for line in c.to_lines(skipped, exact) {
        writeln!(w, "{line}")?;
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
        vmmap_core::export::to_writer_pretty(&mut w, &v).and_then(|()| writeln!(w))
    } else {
        pages::shared_with_lines(snap, region, own, &others, exact)
            .iter()
            .try_for_each(|l| writeln!(w, "{l}"))
    };
    r.map_err(|e| output_error(e, "standard output"))
}
