//! The report's embedded data: compact, columnar, short keys (see the
//! module documentation of [`super`] and `docs/report.md`).

use indexmap::IndexSet;

use serde::Serialize;

use super::{CallTreeNode, ReportInput};
use crate::layout::Layout;
use vmmap_core::diff::match_regions;
use vmmap_core::figures::{Column, Figures};
use vmmap_core::model::{MemoryType, Region, Snapshot};
use vmmap_core::palette::rgb as colour;
use vmmap_core::summary::Summary;
use vmmap_core::timeline;

/// Version of the embedded data layout; the page checks it.
pub(crate) const DATA_VERSION: u32 = 1;

/// The figure columns of a Details row after Size (which is `z`), in the
/// order of the `f` arrays.
pub(crate) const DETAIL_COLUMNS: [Column; 8] = [
    Column::Committed,
    Column::Private,
    Column::TotalWs,
    Column::PrivateWs,
    Column::ShareableWs,
    Column::SharedWs,
    Column::LockedWs,
    Column::Swap,
];

/// Everything the page shows.
#[derive(Debug, Serialize)]
pub struct ReportData {
    /// [`DATA_VERSION`].
    v: u32,
    /// `vmmap VERSION`.
    generator: String,
    /// Where the data came from.
    source: String,
    /// The process (of the last snapshot).
    process: Process,
    /// Bytes per address unit: starts, sizes and bounds are in these.
    au: u64,
    /// Bytes per figure unit: Details figures are in these.
    fu: u64,
    /// The memory types, in [`MemoryType::ALL`] order (`y` indexes them).
    types: Vec<TypeInfo>,
    /// Column ids of the Summary rows' arrays.
    sum_cols: Vec<&'static str>,
    /// Column ids of the `f` arrays.
    det_cols: Vec<&'static str>,
    /// Details texts; `d` indexes them.
    strings: Vec<String>,
    /// The full snapshots.
    snaps: Vec<Snap>,
    /// Totals at every snapshot and sample, in time order.
    timeline: Vec<TimePoint>,
    /// A traced run's call tree: `[name, location, bytes, count, live,
    /// children]` with name and location as string indices (-1: none).
    tree: Option<serde_json::Value>,
}

impl ReportData {
    /// Region rows (top-level and sub-blocks) over all snapshots.
    pub(crate) fn rows(&self) -> u64 {
        self.snaps.iter().map(|s| s.rows).sum()
    }
}

#[derive(Debug, Serialize)]
struct Process {
    pid: u32,
    name: String,
    cmdline: Vec<String>,
    exe: Option<String>,
    user: Option<String>,
    kernel: String,
    page: u64,
}

#[derive(Debug, Serialize)]
struct TypeInfo {
    id: &'static str,
    name: &'static str,
    colour: &'static str,
}

#[derive(Debug, Serialize)]
struct Snap {
    /// Taken at, milliseconds since the Unix epoch.
    t: u64,
    /// The user address space, [lo, hi), in address units.
    lo: u64,
    hi: u64,
    /// Summary: a row per type then Total, each the [`Column::VMMAP`]
    /// values in bytes (null: unavailable on this kernel).
    sum: Vec<Vec<Option<u64>>>,
    /// A traced run's agent: the row of its own regions, in no row of
    /// `sum` (absent: no region is the agent's).
    #[serde(skip_serializing_if = "Option::is_none")]
    ag: Option<Vec<Option<u64>>>,
    /// Bit i set: `det_cols[i]` is unavailable on this kernel.
    na: u32,
    /// The fragmentation figures.
    frag: Frag,
    /// Top-level regions.
    r: Table,
    /// Sub-blocks, group after group (`r.k` says how many each has).
    s: Table,
    /// When some regions are unchanged since the previous snapshot: how
    /// the rows are made, as runs (n > 0: the next n rows of `r`; -n, j:
    /// n rows of the previous snapshot from its row j). `r` then holds only
    /// the other rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<Vec<i64>>,
    /// Regions and sub-blocks shown (copied or not).
    #[serde(skip)]
    rows: u64,
    /// Collection warnings.
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Frag {
    gaps: usize,
    free: u64,
    largest: u64,
    largest_at: Option<String>,
    reserved: u64,
}

/// A columnar region table.
#[derive(Debug, Default, Serialize)]
struct Table {
    /// Start minus the previous row's end (for a group's first sub-block:
    /// minus the group's start), in address units.
    a: Vec<i64>,
    /// Size in address units.
    z: Vec<u64>,
    /// Type index.
    y: Vec<u8>,
    /// Permissions: r 1, w 2, x 4, shared 8.
    p: Vec<u8>,
    /// Details string index.
    d: Vec<u32>,
    /// The [`DETAIL_COLUMNS`] figures, in figure units.
    f: Vec<Vec<u64>>,
    /// Sub-block count (top-level table only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    k: Vec<u32>,
    /// Track: the same number as the region's match in the previous
    /// snapshot (top-level table only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    m: Vec<u32>,
}

#[derive(Debug, Serialize)]
struct TimePoint {
    /// Milliseconds since the Unix epoch.
    t: u64,
    /// Index into `snaps` for a full snapshot.
    s: Option<usize>,
    rss: Option<u64>,
    pss: Option<u64>,
    swap: Option<u64>,
    pt: Option<u64>,
    /// Per type but Free: [committed, working set, private] bytes.
    b: Option<Vec<[u64; 3]>>,
}

/// Interns details strings: each once, in order of first use, the empty
/// string first.
struct Strings(IndexSet<String>);

impl Strings {
    fn new() -> Strings {
        Strings(IndexSet::from([String::new()]))
    }

    fn get(&mut self, text: &str) -> u32 {
        let i = match self.0.get_index_of(text) {
            Some(i) => i,
            None => self.0.insert_full(text.to_string()).0,
        };
        i as u32
    }
}

/// The largest power of two up to `max` that divides every value whose
/// bits are OR-ed into `bits`.
fn unit(bits: u64, max: u64) -> u64 {
    let max = if max.is_power_of_two() { max } else { 1 };
    if bits == 0 {
        max
    } else {
        (1u64 << bits.trailing_zeros()).min(max)
    }
}

fn perms_bits(r: &Region) -> u8 {
    u8::from(r.perms.read())
        | u8::from(r.perms.write()) << 1
        | u8::from(r.perms.exec()) << 2
        | u8::from(r.perms.shared()) << 3
}

/// The text of the Details column: what the classifier said, else the path.
fn details_text(r: &Region) -> &str {
    if r.details.is_empty() {
        &r.path
    } else {
        &r.details
    }
}

/// Tracks of every snapshot's top-level regions (see the module docs), and
/// for each region its match in the previous snapshot.
fn tracks(snaps: &[Snapshot]) -> (Vec<Vec<u32>>, Vec<Vec<Option<usize>>>) {
    let mut out: Vec<Vec<u32>> = Vec::with_capacity(snaps.len());
    let mut prevs = Vec::with_capacity(snaps.len());
    let mut next = 0u32;
    for (i, s) in snaps.iter().enumerate() {
        let mut m = vec![u32::MAX; s.regions.len()];
        let mut prev = vec![None; s.regions.len()];
        if i > 0 {
            for p in match_regions(&snaps[i - 1].regions, &s.regions) {
                if let (Some(b), Some(a)) = (p.before, p.after) {
                    m[a] = out[i - 1][b];
                    prev[a] = Some(b);
                }
            }
        }
        for t in &mut m {
            if *t == u32::MAX {
                *t = next;
                next += 1;
            }
        }
        out.push(m);
        prevs.push(prev);
    }
    (out, prevs)
}

/// Whether two regions write the same row (and sub-blocks): an unchanged
/// region of a recording is then copied from the previous snapshot rather
/// than written again.
fn same_row(a: &Region, b: &Region) -> bool {
    let one = |a: &Region, b: &Region, fa: &Figures, fb: &Figures| {
        a.start == b.start
            && a.end == b.end
            && a.memory_type == b.memory_type
            && perms_bits(a) == perms_bits(b)
            && details_text(a) == details_text(b)
            && DETAIL_COLUMNS.iter().all(|&c| fa.value(c) == fb.value(c))
    };
    one(a, b, &Figures::of_region(a), &Figures::of_region(b))
        && a.sub_blocks.len() == b.sub_blocks.len()
        && a.sub_blocks
            .iter()
            .zip(&b.sub_blocks)
            .all(|(x, y)| one(x, y, &Figures::of_vma(x), &Figures::of_vma(y)))
}

struct Units {
    au: u64,
    fu: u64,
}

impl Table {
    fn push(&mut self, r: &Region, prev_end: u64, u: &Units, strings: &mut Strings, f: &Figures) {
        // Distances fit i64: both ends are u64 addresses in units ≥ 1.
        let delta = (i128::from(r.start) - i128::from(prev_end)) / i128::from(u.au);
        self.a.push(i64::try_from(delta).unwrap_or(0));
        self.z.push(r.size() / u.au);
        self.y.push(r.memory_type as u8);
        self.p.push(perms_bits(r));
        self.d.push(strings.get(details_text(r)));
        if self.f.is_empty() {
            self.f = vec![Vec::new(); DETAIL_COLUMNS.len()];
        }
        for (col, c) in self.f.iter_mut().zip(DETAIL_COLUMNS) {
            col.push(f.value(c) / u.fu);
        }
    }
}

/// One snapshot; with `prev` (the previous snapshot and each region's
/// match in it), unchanged regions are copied from it (`x`).
fn snap(
    s: &Snapshot,
    agent: &[bool],
    track: &[u32],
    prev: Option<(&Snapshot, &[Option<usize>])>,
    u: &Units,
    strings: &mut Strings,
) -> Snap {
    let summary = Summary::with_agent(s, agent);
    let row = |row: &vmmap_core::summary::SummaryRow| {
        Column::VMMAP.iter().map(|&c| row.figures.get(c)).collect()
    };
    let sum = summary
        .rows
        .iter()
        .chain(std::iter::once(&summary.total))
        .map(row)
        .collect();
    let ag = summary.agent.as_ref().map(row);
    let mut na = 0u32;
    let mut r = Table::default();
    let mut sub = Table::default();
    let mut cursor = 0;
    // Runs: n > 0 takes n rows of `r`; -n, j copies n rows of the previous
    // snapshot from its row j.
    let mut runs: Vec<i64> = Vec::new();
    let mut copied = 0usize;
    // The last run: literal, or copying and the previous row it would
    // copy next.
    let mut last: Option<Option<usize>> = None;
    for (i, reg) in s.regions.iter().enumerate() {
        let f = Figures::of_region(reg);
        for (bit, c) in DETAIL_COLUMNS.iter().enumerate() {
            if f.get(*c).is_none() {
                na |= 1 << bit;
            }
        }
        let copy = prev.and_then(|(p, m)| m[i].filter(|&j| same_row(&p.regions[j], reg)));
        match copy {
            Some(j) => {
                copied += 1;
                let n = runs.len();
                if last == Some(Some(j)) {
                    runs[n - 2] -= 1;
                } else {
                    runs.extend([-1, j as i64]);
                }
                last = Some(Some(j + 1));
            }
            None => {
                match (last, runs.last_mut()) {
                    (Some(None), Some(l)) => *l += 1,
                    _ => runs.push(1),
                }
                last = Some(None);
                r.push(reg, cursor, u, strings, &f);
                r.m.push(track[i]);
                r.k.push(reg.sub_blocks.len() as u32);
                let mut sc = reg.start;
                for b in &reg.sub_blocks {
                    sub.push(b, sc, u, strings, &Figures::of_vma(b));
                    sc = b.end;
                }
            }
        }
        cursor = reg.end;
    }
    let layout = Layout::of(s);
    Snap {
        t: s.taken_at_unix_ns / 1_000_000,
        lo: s.kernel.mmap_min_addr / u.au,
        hi: s.kernel.user_address_limit / u.au,
        sum,
        ag,
        na,
        frag: Frag {
            gaps: layout.gap_count,
            free: layout.free_bytes,
            largest: layout.largest_free.map_or(0, |b| b.size()),
            largest_at: layout.largest_free.map(|b| format!("{:#x}", b.start)),
            reserved: layout.reserved_bytes,
        },
        r,
        s: sub,
        x: if copied > 0 { Some(runs) } else { None },
        rows: s
            .regions
            .iter()
            .map(|r| 1 + r.sub_blocks.len() as u64)
            .sum(),
        warnings: s.warnings.clone(),
    }
}

/// The address and figure units: the page and 1 KiB, unless some value
/// is not a multiple of them (a hand-made or imported snapshot).
fn units_of(input: &ReportInput<'_>) -> Units {
    let page = input
        .snapshots
        .last()
        .map_or(4096, |s| s.kernel.page_size.max(1));
    let mut abits = 0u64;
    let mut fbits = 0u64;
    for s in input.snapshots {
        abits |= s.kernel.mmap_min_addr | s.kernel.user_address_limit;
        for r in &s.regions {
            for v in std::iter::once(r).chain(&r.sub_blocks) {
                abits |= v.start | v.end;
                let f = Figures::of_region(v);
                for c in DETAIL_COLUMNS {
                    fbits |= f.value(c);
                }
            }
        }
    }
    Units {
        au: unit(abits, page),
        fu: unit(fbits, 1024),
    }
}

fn tree(n: &CallTreeNode, strings: &mut Strings) -> serde_json::Value {
    let loc = n
        .location
        .as_deref()
        .map_or(-1, |l| i64::from(strings.get(l)));
    serde_json::json!([
        strings.get(&n.name),
        loc,
        n.bytes,
        n.count,
        n.live_bytes,
        n.children
            .iter()
            .map(|c| tree(c, strings))
            .collect::<Vec<_>>()
    ])
}

/// Builds the embedded data.
pub fn data(input: &ReportInput<'_>) -> ReportData {
    let u = units_of(input);
    let mut strings = Strings::new();
    let (tracks, prevs) = tracks(input.snapshots);
    let snaps = input
        .snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let prev = i
                .checked_sub(1)
                .map(|p| (&input.snapshots[p], prevs[i].as_slice()));
            let agent = input.agent.get(i).map_or(&[][..], Vec::as_slice);
            snap(s, agent, &tracks[i], prev, &u, &mut strings)
        })
        .collect();
    // The agent's regions are out of the timeline's figures too, as they
    // are out of each snapshot's Summary.
    let points = timeline::points(input.snapshots, input.samples, input.agent)
        .into_iter()
        .map(|p| TimePoint {
            t: p.taken_at_unix_ns / 1_000_000,
            s: p.snapshot.map(|i| i - 1),
            rss: p.rss,
            pss: p.pss,
            swap: p.swap,
            pt: p.page_table,
            b: p.by_type.map(|b| {
                b.iter()
                    .map(|t| [t.committed, t.working_set, t.private])
                    .collect()
            }),
        })
        .collect();
    let process = match input.snapshots.last() {
        Some(s) => Process {
            pid: s.process.pid,
            name: s.process.name.clone(),
            cmdline: s.process.cmdline.clone(),
            exe: s.process.exe.clone(),
            user: s.process.user.clone(),
            kernel: s.kernel.release.clone(),
            page: s.kernel.page_size,
        },
        None => Process {
            pid: 0,
            name: String::new(),
            cmdline: Vec::new(),
            exe: None,
            user: None,
            kernel: String::new(),
            page: 4096,
        },
    };
    let tree = input.call_tree.map(|t| tree(t, &mut strings));
    ReportData {
        v: DATA_VERSION,
        generator: format!("vmmap {}", env!("CARGO_PKG_VERSION")),
        source: input.source.to_string(),
        process,
        au: u.au,
        fu: u.fu,
        types: MemoryType::ALL
            .iter()
            .map(|&t| TypeInfo {
                id: t.id(),
                name: t.name(),
                colour: colour(t),
            })
            .collect(),
        sum_cols: Column::VMMAP.iter().map(|c| c.id()).collect(),
        det_cols: DETAIL_COLUMNS.iter().map(|c| c.id()).collect(),
        strings: strings.0.into_iter().collect(),
        snaps,
        timeline: points,
        tree,
    }
}
