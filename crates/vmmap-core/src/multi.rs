//! Several processes at once (`vmmap PID PID…`, `--children`,
//! `--cgroup`): a combined Summary in which a page that several of the
//! processes map counts once, plus each process's own totals, as macOS
//! `footprint` does for several targets.
//!
//! With root, "once" is exact: the union of the page frames every process
//! maps ([`crate::sharing::union`]). Without root the frame numbers are
//! hidden, and the sum of PSS stands in for it: PSS divides each page
//! among *all* the processes that map it, so it equals the union when the
//! shared pages are shared only within the set, and is lower when
//! processes outside the set map them too.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::figures::Column;
use crate::model::{MemoryType, Snapshot};
use crate::proc::kpage::Run;
use crate::proc::stat;
use crate::sharing::{union, FrameTag};
use crate::summary::Summary;

/// How the combined working set counts a page mapped by several processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedOnce {
    /// Distinct page frames (root): exact.
    FrameUnion,
    /// The sum of PSS: an estimate (frame numbers need root).
    PssSum,
}

/// One type's (or the total's) combined figures, in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombinedRow {
    /// The type; `None` for the Total row.
    pub memory_type: Option<MemoryType>,
    /// Sum of Size.
    pub size: u64,
    /// Sum of Committed.
    pub committed: u64,
    /// Sum of Private.
    pub private: u64,
    /// Sum of every process's Total WS: shared pages counted once per
    /// process that maps them.
    pub total_ws_sum: u64,
    /// Sum of PSS.
    pub pss: u64,
    /// The working set with every page counted once.
    pub total_ws_once: u64,
    /// Of that, anonymous pages (root only).
    pub private_ws_once: Option<u64>,
    /// Of that, file and shmem pages (root only).
    pub shareable_ws_once: Option<u64>,
}

impl CombinedRow {
    /// Adds `o`'s figures (the Total row sums the types'); a root-only
    /// figure is added where both rows have it.
    fn add(&mut self, o: &CombinedRow) {
        self.size += o.size;
        self.committed += o.committed;
        self.private += o.private;
        self.total_ws_sum += o.total_ws_sum;
        self.pss += o.pss;
        self.total_ws_once += o.total_ws_once;
        if let (Some(a), Some(b)) = (&mut self.private_ws_once, o.private_ws_once) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (&mut self.shareable_ws_once, o.shareable_ws_once) {
            *a += b;
        }
    }
}

/// One process's own totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLine {
    /// PID.
    pub pid: u32,
    /// Command name.
    pub name: String,
    /// Size.
    pub size: u64,
    /// Committed.
    pub committed: u64,
    /// Private.
    pub private: u64,
    /// Total WS.
    pub total_ws: u64,
    /// Shared WS.
    pub shared_ws: u64,
    /// PSS.
    pub pss: u64,
}

/// The combined report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combined {
    /// How pages mapped by several processes are counted once.
    pub counted_once: CountedOnce,
    /// One row per type (Free left out: address space is per process).
    pub rows: Vec<CombinedRow>,
    /// Every type added up.
    pub total: CombinedRow,
    /// Each process's own totals, in the order given.
    pub processes: Vec<ProcessLine>,
}

impl Combined {
    /// Combines snapshots taken earlier (loaded from files, say), whose
    /// page frames are no longer there to read: the once-counted working
    /// set is the sum of PSS.
    pub fn of_snapshots(snaps: &[Snapshot]) -> Combined {
        let page = snaps.first().map_or(4096, |s| s.kernel.page_size);
        Combined::of(snaps, None, page)
    }

    /// Combines the snapshots; `frames` is every process's present frames
    /// (from [`crate::collect::pages::exact_sharing`] with root), or `None`
    /// to estimate with PSS.
    pub(crate) fn of(
        snaps: &[Snapshot],
        frames: Option<Vec<Run<FrameTag>>>,
        page_size: u64,
    ) -> Combined {
        let counted_once = if frames.is_some() {
            CountedOnce::FrameUnion
        } else {
            CountedOnce::PssSum
        };
        let u = frames.map(union);
        let summaries: Vec<Summary> = snaps.iter().map(Summary::of).collect();
        let mut rows = Vec::new();
        let mut total = CombinedRow {
            memory_type: None,
            size: 0,
            committed: 0,
            private: 0,
            total_ws_sum: 0,
            pss: 0,
            total_ws_once: 0,
            private_ws_once: u.as_ref().map(|_| 0),
            shareable_ws_once: u.as_ref().map(|_| 0),
        };
        for t in MemoryType::ALL {
            if t == MemoryType::Free {
                continue;
            }
            let sum = |c: Column| -> u64 {
                summaries
                    .iter()
                    .map(|s| s.rows[t as usize].figures.value(c))
                    .sum()
            };
            let pss = sum(Column::Pss);
            let (once, private, shareable) = match &u {
                Some(u) => {
                    let all = u.total[t as usize] * page_size;
                    let sh = u.shareable[t as usize] * page_size;
                    (all, Some(all - sh), Some(sh))
                }
                None => (pss, None, None),
            };
            let row = CombinedRow {
                memory_type: Some(t),
                size: sum(Column::Size),
                committed: sum(Column::Committed),
                private: sum(Column::Private),
                total_ws_sum: sum(Column::TotalWs),
                pss,
                total_ws_once: once,
                private_ws_once: private,
                shareable_ws_once: shareable,
            };
            total.add(&row);
            rows.push(row);
        }
        let processes = snaps
            .iter()
            .zip(&summaries)
            .map(|(s, sum)| {
                let f = &sum.total.figures;
                ProcessLine {
                    pid: s.process.pid,
                    name: s.process.name.clone(),
                    size: f.value(Column::Size),
                    committed: f.value(Column::Committed),
                    private: f.value(Column::Private),
                    total_ws: f.value(Column::TotalWs),
                    shared_ws: f.value(Column::SharedWs),
                    pss: f.value(Column::Pss),
                }
            })
            .collect();
        Combined {
            counted_once,
            rows,
            total,
            processes,
        }
    }
}

/// Snapshots every process of `pids` and combines them. As root each
/// snapshot's page tables are read for the frame union (which also gives
/// exact sharing figures); otherwise only when `exact` asks for them.
/// With `tolerate`, processes that cannot be read (exited, kernel
/// threads, denied) are skipped and listed; otherwise the first failure
/// is the result.
pub fn collect(
    pids: &[u32],
    opts: &crate::collect::Options,
    exact: bool,
    tolerate: bool,
) -> Result<(Combined, Vec<String>)> {
    collect_keeping(pids, opts, exact, tolerate).map(|(c, _, skipped)| (c, skipped))
}

/// [`collect`], keeping the snapshots (in the order of
/// [`Combined::processes`]): the UI's combined view opens one of them in
/// its main view without reading the process again.
pub fn collect_keeping(
    pids: &[u32],
    opts: &crate::collect::Options,
    exact: bool,
    tolerate: bool,
) -> Result<(Combined, Vec<Snapshot>, Vec<String>)> {
    use crate::collect::{pages, snapshot};
    let frames_readable = pages::can_read_frames(&opts.proc_root);
    let mut snaps = Vec::new();
    let mut frames = frames_readable.then(Vec::new);
    let mut skipped = Vec::new();
    for &pid in pids {
        let mut snap = match snapshot(pid, opts) {
            Ok(s) => s,
            Err(e) if tolerate => {
                skipped.push(format!("{pid}: {e}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if frames.is_some() || exact {
            let how = pages::PageOptions {
                kpagecount: false,
                keep_frames: frames.is_some(),
            };
            let scan = pages::exact_sharing(&mut snap, opts, how)?;
            if let (Some(all), Some(mine)) = (&mut frames, scan.frames) {
                all.extend(mine);
            }
        }
        snaps.push(snap);
    }
    let page = snaps.first().map_or(4096, |s| s.kernel.page_size);
    Ok((Combined::of(&snaps, frames, page), snaps, skipped))
}

impl Combined {
    /// The report as plain text lines (no terminal codes): how pages were
    /// counted once, the per-type table, then each process's totals.
    pub fn to_lines(&self, skipped: &[String], exact: bool) -> Vec<String> {
        let size = |v: u64| {
            if v == 0 {
                "0".to_string()
            } else {
                crate::units::size(v, exact)
            }
        };
        let opt = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), size);
        let mut out = vec![
            format!("Processes:     {}", self.processes.len()),
            format!(
                "Counted once:  {}",
                match self.counted_once {
                    CountedOnce::FrameUnion => "exact: distinct physical pages (page frame union over every process's pagemap)",
                    CountedOnce::PssSum => "estimated as the sum of PSS (page frames need root); lower than exact when processes outside the set share the pages",
                }
            ),
        ];
        for s in skipped {
            out.push(format!("Skipped:       {}", crate::text::Escaped(s)));
        }
        out.push(String::new());
        let nw = if exact { 14 } else { 10 };
        out.push(format!(
            "{:<14}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
            "Type",
            "Size",
            "Committed",
            "Private",
            "WS (once)",
            "Priv WS",
            "Shrbl WS",
            "Sum of WS",
            "PSS"
        ));
        for r in self.rows.iter().chain(std::iter::once(&self.total)) {
            out.push(format!(
                "{:<14}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
                r.memory_type.map_or("Total", |t| t.name()),
                size(r.size),
                size(r.committed),
                size(r.private),
                size(r.total_ws_once),
                opt(r.private_ws_once),
                opt(r.shareable_ws_once),
                size(r.total_ws_sum),
                size(r.pss),
            ));
        }
        out.push(String::new());
        out.push(format!(
            "{:>8}  {:<16}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
            "PID", "Name", "Size", "Committed", "Private", "Total WS", "Shared WS", "PSS"
        ));
        for p in &self.processes {
            out.push(format!(
                "{:>8}  {:<16}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}{:>nw$}",
                p.pid,
                crate::text::Escaped(&p.name),
                size(p.size),
                size(p.committed),
                size(p.private),
                size(p.total_ws),
                size(p.shared_ws),
                size(p.pss),
            ));
        }
        out
    }
}

/// `pid` and all its descendants, `pid` first, the rest by PID: every
/// process whose chain of parents (from `/proc/PID/stat`) reaches `pid`.
pub fn with_descendants(proc_root: &Path, pid: u32) -> Result<Vec<u32>> {
    let rd = std::fs::read_dir(proc_root).map_err(|e| Error::Io {
        path: proc_root.to_path_buf(),
        source: e,
    })?;
    let mut parent = std::collections::HashMap::new();
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(st) = std::fs::read(e.path().join("stat"))
            .ok()
            .and_then(|b| stat::parse(&b).ok())
        {
            if !st.is_kernel_thread() {
                parent.insert(p, st.ppid);
            }
        }
    }
    if !parent.contains_key(&pid) {
        return Err(Error::NoSuchProcess { pid });
    }
    let mut out: Vec<u32> = parent
        .keys()
        .copied()
        .filter(|&p| {
            let mut at = p;
            // A chain longer than the process count would be a loop.
            for _ in 0..=parent.len() {
                match parent.get(&at) {
                    Some(&pp) if pp == pid => return p != pid,
                    Some(&pp) if pp != 0 && pp != at => at = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect();
    out.sort_unstable();
    out.insert(0, pid);
    Ok(out)
}

/// The processes of a cgroup, from its `cgroup.procs` (cgroup v2, or a v1
/// hierarchy). `path` is a directory of a cgroup file system, or a path
/// relative to `/sys/fs/cgroup` (`system.slice/sshd.service`).
pub fn cgroup_members(path: &Path) -> Result<Vec<u32>> {
    let dir = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new("/sys/fs/cgroup").join(path)
    };
    let procs = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&procs).map_err(|e| Error::Io {
        path: procs.clone(),
        source: e,
    })?;
    let mut pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Region;
    use crate::proc::smaps::{Field, Mapping};

    /// A snapshot with one file VMA of `rss` and `pss` bytes.
    fn snap(pid: u32, rss: u64, pss: u64) -> Snapshot {
        let mut m = Mapping {
            start: 0x10000,
            end: 0x10000 + 64 * 4096,
            perms: *b"rw-s",
            inode: 7,
            path: "/data".into(),
            ..Mapping::default()
        };
        for &f in Field::PER_VMA {
            m.fields.set(f, 0);
        }
        m.fields.set(Field::Size, 64 * 4096);
        m.fields.set(Field::Rss, rss);
        m.fields.set(Field::Pss, pss);
        let mut r = Region::from_mapping(m);
        r.memory_type = MemoryType::MappedFile;
        Snapshot::from_regions(pid, 0, vec![r])
    }

    #[test]
    fn combined_rows_sum_per_process_and_count_frames_once() {
        let page = 4096;
        // A maps 64 pages, B 24 of the same: PSS 52 and 12 pages.
        let snaps = [snap(1, 64 * page, 52 * page), snap(2, 24 * page, 12 * page)];
        let tag = FrameTag {
            memory_type: MemoryType::MappedFile,
            shareable: true,
        };
        let frames = vec![
            Run {
                first: 1000,
                len: 64,
                tag,
            },
            Run {
                first: 1000,
                len: 24,
                tag,
            },
        ];
        let c = Combined::of(&snaps, Some(frames), page);
        let row = |c: &Combined| {
            c.rows
                .iter()
                .find(|r| r.memory_type == Some(MemoryType::MappedFile))
                .cloned()
                .unwrap()
        };
        let r = row(&c);
        assert_eq!(c.counted_once, CountedOnce::FrameUnion);
        assert_eq!(r.total_ws_sum, 88 * page);
        assert_eq!(r.total_ws_once, 64 * page);
        assert_eq!(r.pss, 64 * page);
        assert_eq!(
            (r.shareable_ws_once, r.private_ws_once),
            (Some(64 * page), Some(0))
        );
        assert_eq!(c.total.total_ws_once, 64 * page);
        assert_eq!(c.total.size, 2 * 64 * page);
        assert_eq!(c.processes.len(), 2);
        assert_eq!(c.processes[1].total_ws, 24 * page);
        assert!(c
            .rows
            .iter()
            .all(|r| r.memory_type != Some(MemoryType::Free)));
        // Without frames the sum of PSS stands in.
        let est = Combined::of(&snaps, None, page);
        let r = row(&est);
        assert_eq!(est.counted_once, CountedOnce::PssSum);
        assert_eq!(r.total_ws_once, 64 * page);
        assert_eq!(r.shareable_ws_once, None);
        let text = est.to_lines(&[], true).join("\n");
        assert!(text.contains("sum of PSS"), "{text}");
    }

    #[test]
    fn descendants_of_this_process_include_a_child() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let got = with_descendants(Path::new("/proc"), me).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got[0], me);
        assert!(got.contains(&child.id()), "{got:?}");
    }

    #[test]
    fn cgroup_of_a_missing_dir_is_an_error() {
        assert!(cgroup_members(Path::new("/nonexistent/cgroup")).is_err());
    }
}
