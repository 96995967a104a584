/*!
The changes between two snapshots of one process: VMMap's "Show Changes",
macOS `vmmap -d`.

[`diff`] compares two snapshots in two ways:

- **By type**: for every memory type and for Total, the signed change of
  every column between the two Summaries. A column is unavailable in the
  change when it is unavailable on either side.
- **By region**: the top-level regions of the first snapshot are matched to
  those of the second, and every region that appeared, disappeared or
  changed is reported.

# Matching regions

A region matches at most one region of the other snapshot. Matching runs in
three passes; a region matched by one pass takes no part in the next.

1. **File identity.** A file-backed region (inode not 0) matches a region
   with the same device, inode, file offset and path. A ` (deleted)` suffix
   on the path is ignored, so a file unlinked between the snapshots still
   matches. An image matches by the identity of its first segment. A
   file-backed region never matches by address: a different file at the
   same place is a removal and an addition.
2. **Name.** An anonymous region (inode 0) with an identity matches the
   region with the same identity: a thread stack by its thread id, a heap
   by its Heap ID (`[heap]` is Heap ID 0, a glibc arena its own), and any
   other named region (`[stack]`, `[vdso]`, `[vvar]`, `[anon:NAME]`,
   `[anon_shmem:NAME]`, …) by its name.
3. **Address.** The anonymous regions still unmatched, named or not, match
   by address overlap: the pairs that overlap are taken from the largest
   overlap down (on a tie, a pair whose regions start at the same address
   first, then the lower addresses first), each pair taken if neither
   region is matched yet. Regions that overlap nothing stay unmatched.

When several regions share one identity in passes 1 and 2 (one file mapped
twice at the same offset, two `[anon:NAME]` regions), they are first
paired by overlap as in pass 3, and those left over are paired in address
order.

An unmatched region of the first snapshot is **removed**, an unmatched
region of the second **new**. A matched pair is reported when something
changed, with every change that applies:

- **grown** / **shrunk**: the size changed;
- **moved**: the start address changed (a stack that grew downwards has
  moved as well as grown);
- **protection changed**: the permissions changed (for a group, the union
  of its sub-blocks');
- **type changed**: the memory type changed;
- **renamed**: the path changed, or the region belongs to another thread or
  heap (both sides have a thread id, or a Heap ID, and they differ); only
  pairs matched by address can be renamed;
- **figures changed**: Committed, Total WS, Private or Swap changed (a heap
  that committed more of its reservation, pages touched or swapped out).

A pair with none of these changes is not reported.

The JSON form (schema `vmmap.diff`) follows the export conventions:
addresses as `"0x…"` strings, type ids in `snake_case`, figures as
`{column_id: value}` with `null` for unavailable ones.
*/

use std::collections::HashMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::figures::{Column, Figures, NCOLUMNS};
use crate::model::{MemoryType, Perms, Region, Snapshot};
use crate::summary::Summary;

/// The changes from one snapshot to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The first snapshot.
    pub before: SnapshotId,
    /// The second snapshot.
    pub after: SnapshotId,
    /// One row per memory type in [`MemoryType::ALL`] order, then Total.
    pub by_type: Vec<TypeDelta>,
    /// The regions that appeared, disappeared or changed, by address (the
    /// second snapshot's address when the region is in both).
    pub regions: Vec<RegionChange>,
    /// With `--written`: the regions of the second snapshot with pages
    /// written (soft-dirty) since the first, by address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<Vec<Written>>,
}

/// Bytes written in one region between the two snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Written {
    /// The region (in the second snapshot).
    #[serde(flatten)]
    pub region: RegionSummary,
    /// Bytes of its pages that are soft-dirty.
    pub written_bytes: u64,
}

impl Diff {
    /// Records the written bytes of each top-level region of `after`
    /// (`bytes[i]` for `after.regions[i]`); regions with none are left out.
    pub fn set_written(&mut self, after: &Snapshot, bytes: &[u64]) {
        self.written = Some(
            after
                .regions
                .iter()
                .zip(bytes)
                .filter(|(_, &b)| b > 0)
                .map(|(r, &b)| Written {
                    region: RegionSummary::of(r),
                    written_bytes: b,
                })
                .collect(),
        );
    }

    #[cfg(test)]
    /// The change of one type, or of Total for `None`.
    pub(crate) fn row(&self, t: Option<MemoryType>) -> &TypeDelta {
        match t {
            Some(t) => &self.by_type[t as usize],
            None => &self.by_type[MemoryType::ALL.len()],
        }
    }
}

/// Which snapshot a side of a diff is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotId {
    /// Process id.
    pub pid: u32,
    /// When the snapshot was taken, nanoseconds since the Unix epoch.
    pub taken_at_unix_ns: u64,
}

impl SnapshotId {
    fn of(s: &Snapshot) -> SnapshotId {
        SnapshotId {
            pid: s.process.pid,
            taken_at_unix_ns: s.taken_at_unix_ns,
        }
    }
}

/// The change of one Summary row. In JSON: `{"type": id, column_id:
/// delta | null, …}`, with `"total"` for the Total row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TypeDelta {
    /// The type; `None` for Total.
    #[serde(rename = "type", serialize_with = "type_or_total")]
    pub memory_type: Option<MemoryType>,
    /// The change of every column.
    #[serde(flatten)]
    pub deltas: Deltas,
}

/// Signed changes of every column, after minus before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deltas {
    /// Values indexed by `Column as usize`.
    pub(crate) values: [i64; NCOLUMNS],
    /// Bit `Column as u32` set when the change is unavailable (the column
    /// is unavailable in either snapshot).
    pub(crate) unavailable: u32,
}

impl Deltas {
    /// `after - before`, column by column.
    pub(crate) fn between(before: &Figures, after: &Figures) -> Deltas {
        let mut d = Deltas {
            unavailable: before.unavailable | after.unavailable,
            ..Deltas::default()
        };
        for c in Column::ALL {
            d.values[c as usize] = signed_sub(after.value(c), before.value(c));
        }
        d
    }

    /// The change, `None` when unavailable.
    pub fn get(&self, c: Column) -> Option<i64> {
        (self.unavailable & (1 << c as u32) == 0).then(|| self.values[c as usize])
    }

    #[cfg(test)]
    /// Whether every available change is zero.
    pub(crate) fn is_zero(&self) -> bool {
        Column::ALL.iter().all(|&c| self.get(c).unwrap_or(0) == 0)
    }
}

impl Serialize for Deltas {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(NCOLUMNS))?;
        for c in Column::ALL {
            m.serialize_entry(c.id(), &self.get(c))?;
        }
        m.end()
    }
}

/// What happened to a region. One change can have several kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the second snapshot.
    New,
    /// Only in the first snapshot.
    Removed,
    /// Larger.
    Grown,
    /// Smaller.
    Shrunk,
    /// Starts at another address.
    Moved,
    /// Other permissions.
    ProtectionChanged,
    /// Another memory type.
    TypeChanged,
    /// Another path, thread or heap (regions matched by address only).
    Renamed,
    /// Committed, Total WS, Private or Swap changed.
    FiguresChanged,
}

/// Which matching pass paired two regions (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MatchRule {
    /// Same device, inode, offset and path.
    File,
    /// Same name, thread id or Heap ID.
    Name,
    /// Overlapping addresses.
    Overlap,
}

/// The identity of a region on one side of a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionSummary {
    /// First address.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub start: u64,
    /// One past the last address.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub end: u64,
    /// The memory type.
    #[serde(rename = "type")]
    pub memory_type: MemoryType,
    /// Permissions (for a group, the union of its sub-blocks').
    pub perms: Perms,
    /// The Details column.
    pub details: String,
    /// Path or pseudo-name, empty if none.
    pub path: String,
    /// Thread id of a stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// Heap ID of a heap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_id: Option<u32>,
}

impl RegionSummary {
    fn of(r: &Region) -> RegionSummary {
        RegionSummary {
            start: r.start,
            end: r.end,
            memory_type: r.memory_type,
            perms: r.perms,
            details: r.details.clone(),
            path: r.path.to_string(),
            tid: r.tid,
            heap_id: r.heap_id,
        }
    }
}

/// One region that appeared, disappeared or changed. Deltas are after minus
/// before, a missing side counting 0; a figure delta is `None` when the
/// figure is unavailable on either side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionChange {
    /// What happened, in [`ChangeKind`] order; never empty.
    pub kinds: Vec<ChangeKind>,
    /// How the two sides were paired; `None` for a new or removed region.
    pub(crate) matched_by: Option<MatchRule>,
    /// The region in the first snapshot.
    pub before: Option<RegionSummary>,
    /// The region in the second snapshot.
    pub after: Option<RegionSummary>,
    /// Change of Size.
    pub size_delta: i64,
    /// Change of Committed.
    pub committed_delta: i64,
    /// Change of Total WS.
    pub ws_delta: Option<i64>,
    /// Change of Private.
    pub private_delta: Option<i64>,
    /// Change of Swap.
    pub swap_delta: Option<i64>,
}

impl RegionChange {
    /// Whether the change has this kind.
    pub fn has(&self, k: ChangeKind) -> bool {
        self.kinds.contains(&k)
    }

    /// The side shown: the second snapshot's region, or the first's for a
    /// removed region.
    pub fn current(&self) -> &RegionSummary {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .expect("a change has at least one side")
    }

    /// The first character of its text line: `+` new, `-` removed, `>`
    /// grown, `<` shrunk, `~` any other change.
    pub fn marker(&self) -> char {
        match self.label() {
            "new" => '+',
            "removed" => '-',
            "grown" => '>',
            "shrunk" => '<',
            _ => '~',
        }
    }

    /// The main change in a word: `new`, `removed`, `grown`, `shrunk` or
    /// `changed` (the order decides when several apply).
    pub fn label(&self) -> &'static str {
        [
            ChangeKind::New,
            ChangeKind::Removed,
            ChangeKind::Grown,
            ChangeKind::Shrunk,
        ]
        .into_iter()
        .zip(["new", "removed", "grown", "shrunk"])
        .find(|(k, _)| self.has(*k))
        .map_or("changed", |(_, l)| l)
    }
}

/// One outcome of [`match_regions`]: a matched pair, or a region with no
/// counterpart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pairing {
    /// Index into the first region list.
    pub before: Option<usize>,
    /// Index into the second region list.
    pub after: Option<usize>,
    /// The pass that matched them; `None` when one side is missing.
    pub(crate) rule: Option<MatchRule>,
}

/// Compares two snapshots of one process.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Diff {
    let (sb, sa) = (Summary::of(before), Summary::of(after));
    let by_type = sb
        .rows
        .iter()
        .zip(&sa.rows)
        .chain(std::iter::once((&sb.total, &sa.total)))
        .map(|(b, a)| TypeDelta {
            memory_type: b.memory_type,
            deltas: Deltas::between(&b.figures, &a.figures),
        })
        .collect();
    let mut regions: Vec<RegionChange> = match_regions(&before.regions, &after.regions)
        .into_iter()
        .filter_map(|p| {
            region_change(
                p.before.map(|i| &before.regions[i]),
                p.after.map(|j| &after.regions[j]),
                p.rule,
            )
        })
        .collect();
    // By address; at one address the removed region before the new one.
    regions.sort_by_key(|c| (c.current().start, c.after.is_some(), c.current().end));
    Diff {
        before: SnapshotId::of(before),
        after: SnapshotId::of(after),
        by_type,
        regions,
        written: None,
    }
}

/// What identifies a region in passes 1 and 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    File {
        dev: (u32, u32),
        inode: u64,
        offset: u64,
        path: &'a str,
    },
    Thread(u32),
    Heap(u32),
    Name(&'a str),
}

fn key(r: &Region) -> Option<Key<'_>> {
    if r.inode != 0 {
        let path = r.path.strip_suffix(" (deleted)").unwrap_or(&r.path);
        return Some(Key::File {
            dev: (r.dev_major, r.dev_minor),
            inode: r.inode,
            offset: r.offset,
            path,
        });
    }
    if let Some(tid) = r.tid {
        Some(Key::Thread(tid))
    } else if let Some(id) = r.heap_id {
        Some(Key::Heap(id))
    } else if !r.path.is_empty() {
        Some(Key::Name(&r.path))
    } else {
        None
    }
}

/// Matches the regions of two snapshots by the rules of the module
/// documentation. Every index of `before` and of `after` appears in exactly
/// one pairing; matched pairs come first, in `before` order, then the
/// removed regions, then the new ones.
pub fn match_regions(before: &[Region], after: &[Region]) -> Vec<Pairing> {
    let mut m = Matcher {
        before,
        after,
        of_before: vec![None; before.len()],
        of_after: vec![false; after.len()],
    };

    // Passes 1 and 2: identities.
    let mut buckets: HashMap<Key<'_>, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (i, r) in before.iter().enumerate() {
        if let Some(k) = key(r) {
            buckets.entry(k).or_default().0.push(i);
        }
    }
    for (j, r) in after.iter().enumerate() {
        if let Some(k) = key(r) {
            if let Some(b) = buckets.get_mut(&k) {
                b.1.push(j);
            }
        }
    }
    // Buckets are disjoint, so the order they are visited in is irrelevant.
    for (k, (bs, as_)) in buckets {
        if as_.is_empty() {
            continue;
        }
        let rule = match k {
            Key::File { .. } => MatchRule::File,
            _ => MatchRule::Name,
        };
        m.by_overlap(bs.clone(), as_.clone(), rule);
        let mut left_b: Vec<usize> = bs
            .into_iter()
            .filter(|&i| m.of_before[i].is_none())
            .collect();
        let mut left_a: Vec<usize> = as_.into_iter().filter(|&j| !m.of_after[j]).collect();
        left_b.sort_by_key(|&i| before[i].start);
        left_a.sort_by_key(|&j| after[j].start);
        for (i, j) in left_b.into_iter().zip(left_a) {
            m.pair(i, j, rule);
        }
    }

    // Pass 3: anonymous regions still unmatched, by address.
    let bs = (0..before.len())
        .filter(|&i| before[i].inode == 0 && m.of_before[i].is_none())
        .collect();
    let as_ = (0..after.len())
        .filter(|&j| after[j].inode == 0 && !m.of_after[j])
        .collect();
    m.by_overlap(bs, as_, MatchRule::Overlap);

    let mut out = Vec::with_capacity(before.len().max(after.len()));
    let mut removed = Vec::new();
    for (i, p) in m.of_before.iter().enumerate() {
        match *p {
            Some((j, rule)) => out.push(Pairing {
                before: Some(i),
                after: Some(j),
                rule: Some(rule),
            }),
            None => removed.push(Pairing {
                before: Some(i),
                after: None,
                rule: None,
            }),
        }
    }
    out.append(&mut removed);
    out.extend(
        m.of_after
            .iter()
            .enumerate()
            .filter(|(_, &taken)| !taken)
            .map(|(j, _)| Pairing {
                before: None,
                after: Some(j),
                rule: None,
            }),
    );
    out
}

struct Matcher<'a> {
    before: &'a [Region],
    after: &'a [Region],
    /// The partner of each `before` region and how it was found.
    of_before: Vec<Option<(usize, MatchRule)>>,
    /// Whether each `after` region has a partner.
    of_after: Vec<bool>,
}

impl Matcher<'_> {
    fn pair(&mut self, i: usize, j: usize, rule: MatchRule) {
        self.of_before[i] = Some((j, rule));
        self.of_after[j] = true;
    }

    /// Pairs unmatched regions of `bs` and `as_` by overlap, largest first.
    fn by_overlap(&mut self, mut bs: Vec<usize>, mut as_: Vec<usize>, rule: MatchRule) {
        let (before, after) = (self.before, self.after);
        bs.sort_by_key(|&i| before[i].start);
        as_.sort_by_key(|&j| after[j].start);
        // Regions of one snapshot do not overlap, so a sweep finds every
        // overlapping pair in linear time.
        let mut cands: Vec<(u64, usize, usize)> = Vec::new();
        let mut first = 0;
        for &i in &bs {
            let b = &before[i];
            while first < as_.len() && after[as_[first]].end <= b.start {
                first += 1;
            }
            for &j in as_[first..].iter().take_while(|&&j| after[j].start < b.end) {
                let a = &after[j];
                let overlap = b.end.min(a.end).saturating_sub(b.start.max(a.start));
                if overlap > 0 {
                    cands.push((overlap, i, j));
                }
            }
        }
        cands.sort_by_key(|&(overlap, i, j)| {
            let (b, a) = (&before[i], &after[j]);
            (
                std::cmp::Reverse(overlap),
                b.start != a.start,
                b.start,
                a.start,
            )
        });
        for (_, i, j) in cands {
            if self.of_before[i].is_none() && !self.of_after[j] {
                self.pair(i, j, rule);
            }
        }
    }
}

fn signed_sub(a: u64, b: u64) -> i64 {
    i64::try_from(i128::from(a) - i128::from(b)).unwrap_or(if a > b { i64::MAX } else { i64::MIN })
}

fn region_change(
    before: Option<&Region>,
    after: Option<&Region>,
    rule: Option<MatchRule>,
) -> Option<RegionChange> {
    let fb = before.map(Figures::of_region).unwrap_or_default();
    let fa = after.map(Figures::of_region).unwrap_or_default();
    let d = Deltas::between(&fb, &fa);
    let mut kinds = Vec::new();
    match (before, after) {
        (None, None) => return None,
        (None, Some(_)) => kinds.push(ChangeKind::New),
        (Some(_), None) => kinds.push(ChangeKind::Removed),
        (Some(b), Some(a)) => {
            if a.size() > b.size() {
                kinds.push(ChangeKind::Grown);
            } else if a.size() < b.size() {
                kinds.push(ChangeKind::Shrunk);
            }
            if a.start != b.start {
                kinds.push(ChangeKind::Moved);
            }
            if a.perms != b.perms {
                kinds.push(ChangeKind::ProtectionChanged);
            }
            if a.memory_type != b.memory_type {
                kinds.push(ChangeKind::TypeChanged);
            }
            let differ = |x: Option<u32>, y: Option<u32>| x.is_some() && y.is_some() && x != y;
            if a.path != b.path || differ(b.tid, a.tid) || differ(b.heap_id, a.heap_id) {
                kinds.push(ChangeKind::Renamed);
            }
            let figures = [
                Column::Committed,
                Column::TotalWs,
                Column::Private,
                Column::Swap,
            ];
            if figures.iter().any(|&c| d.get(c).unwrap_or(0) != 0) {
                kinds.push(ChangeKind::FiguresChanged);
            }
            if kinds.is_empty() {
                return None;
            }
        }
    }
    Some(RegionChange {
        kinds,
        matched_by: rule,
        before: before.map(RegionSummary::of),
        after: after.map(RegionSummary::of),
        size_delta: d.values[Column::Size as usize],
        committed_delta: d.values[Column::Committed as usize],
        ws_delta: d.get(Column::TotalWs),
        private_delta: d.get(Column::Private),
        swap_delta: d.get(Column::Swap),
    })
}

fn type_or_total<S: Serializer>(t: &Option<MemoryType>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.map_or("total", MemoryType::id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::smaps::Field;
    use crate::testing::*;
    use proptest::prelude::*;

    fn find(d: &Diff, start: u64) -> &RegionChange {
        d.regions
            .iter()
            .find(|c| c.current().start == start)
            .unwrap_or_else(|| panic!("no change at {start:#x}"))
    }

    #[test]
    fn region_changes() {
        use ChangeKind::*;
        let (b, a) = pair();
        let d = diff(&b, &a);
        let kinds = |start| find(&d, start).kinds.clone();
        assert_eq!(kinds(0x680000), [Moved]);
        assert_eq!(find(&d, 0x680000).matched_by, Some(MatchRule::File));
        assert_eq!(kinds(0x100000), [Grown, FiguresChanged]);
        assert_eq!(find(&d, 0x100000).matched_by, Some(MatchRule::Name));
        assert_eq!(find(&d, 0x100000).size_delta, 0x20000);
        assert_eq!(kinds(0x200000), [Grown, FiguresChanged]);
        assert_eq!(find(&d, 0x200000).matched_by, Some(MatchRule::Overlap));
        assert_eq!(kinds(0x300000), [Shrunk, FiguresChanged]);
        assert_eq!(find(&d, 0x300000).size_delta, -0x10000);
        assert_eq!(kinds(0x400000), [ProtectionChanged, FiguresChanged]);
        assert_eq!(find(&d, 0x400000).committed_delta, -0x10000);
        assert_eq!(kinds(0x500000), [Removed]);
        assert_eq!(find(&d, 0x500000).size_delta, -0x10000);
        assert_eq!(kinds(0x600000), [TypeChanged]);
        assert_eq!(kinds(0x700000), [New]);
        assert_eq!(find(&d, 0x700000).ws_delta, Some(4096));
        assert_eq!(kinds(0xa00000), [FiguresChanged]);
        let t = find(&d, 0xa00000);
        assert_eq!(
            (t.ws_delta, t.private_delta, t.swap_delta),
            (Some(60 << 10), Some(68 << 10), Some(8 << 10))
        );
        // The image and the first stack did not change.
        assert_eq!(d.regions.len(), 9);
        assert!(d
            .regions
            .iter()
            .all(|c| ![0x10000, 0x900000].contains(&c.current().start)));
        let starts: Vec<u64> = d.regions.iter().map(|c| c.current().start).collect();
        assert!(starts.is_sorted());
    }

    #[test]
    fn type_deltas_are_summary_differences() {
        let (b, a) = pair();
        let d = diff(&b, &a);
        let (sb, sa) = (Summary::of(&b), Summary::of(&a));
        let rows = sb.rows.iter().zip(&sa.rows);
        for (rb, ra) in rows.chain(std::iter::once((&sb.total, &sa.total))) {
            let td = d.row(rb.memory_type);
            for c in Column::ALL {
                let want = match (rb.figures.get(c), ra.figures.get(c)) {
                    (Some(x), Some(y)) => Some(y as i64 - x as i64),
                    _ => None,
                };
                assert_eq!(td.deltas.get(c), want, "{:?} {c:?}", rb.memory_type);
            }
        }
        let heap = d.row(Some(MemoryType::Heap));
        assert_eq!(heap.deltas.get(Column::Size), Some(0x20000));
        assert_eq!(
            d.row(Some(MemoryType::Stack)).deltas.get(Column::Blocks),
            Some(1)
        );
        assert_eq!(
            d.row(None).deltas.get(Column::Size),
            Some(0x20000 + 0x10000 - 0x10000 - 0x10000 + 0x8000)
        );
    }

    #[test]
    fn overlap_prefers_largest_then_same_start_and_matches_once() {
        let before = [anon(0x2000, 0x6000)];
        let after = [anon(0x2000, 0x4000), anon(0x4000, 0x6000)];
        let p = match_regions(&before, &after);
        assert_eq!(
            p,
            [
                Pairing {
                    before: Some(0),
                    after: Some(0),
                    rule: Some(MatchRule::Overlap)
                },
                Pairing {
                    before: None,
                    after: Some(1),
                    rule: None
                }
            ]
        );
        let after = [anon(0x1000, 0x3000), anon(0x3000, 0x6000)];
        assert_eq!(match_regions(&before, &after)[0].after, Some(1));
        // A file region never matches by address.
        let after = [vma(0x2000, 0x6000, b"rw-p", "/f", 3)];
        assert!(match_regions(&before, &after)
            .iter()
            .all(|p| p.rule.is_none()));
    }

    #[test]
    fn shared_names_pair_by_overlap_then_order_and_deleted_files_match() {
        let named = |s, e| vma(s, e, b"rw-p", "[anon:x]", 0);
        let before = [named(0x1000, 0x2000), named(0x5000, 0x6000)];
        let after = [named(0x5000, 0x7000), named(0x9000, 0xa000)];
        let p = match_regions(&before, &after);
        assert_eq!((p[0].after, p[1].after), (Some(1), Some(0)));
        assert!(p.iter().all(|p| p.rule == Some(MatchRule::Name)));
        let before = [vma(0x1000, 0x2000, b"r--p", "/tmp/f", 5)];
        let after = [vma(0x1000, 0x2000, b"r--p", "/tmp/f (deleted)", 5)];
        let p = match_regions(&before, &after);
        assert_eq!(p[0].rule, Some(MatchRule::File));
        let d = diff(&snap(1, 0, before.to_vec()), &snap(1, 0, after.to_vec()));
        assert_eq!(d.regions[0].kinds, [ChangeKind::Renamed]);
    }

    /// Random sorted, disjoint regions in a small address range, from a
    /// handful of identities so that matches by every rule happen.
    fn regions() -> impl Strategy<Value = Vec<Region>> {
        prop::collection::vec((0u64..3, 1u64..6, 0u8..8, any::<bool>(), 0u64..8), 0..16).prop_map(
            |spec| {
                let mut at = 0x10000;
                let mut out = Vec::new();
                for (gap, pages, kind, write, rss) in spec {
                    let start = at + gap * 0x1000;
                    let end = start + pages * 0x1000;
                    at = end;
                    let perms = if write { b"rw-p" } else { b"r--p" };
                    let mut r = match kind {
                        0 | 1 => vma(start, end, perms, "", 0),
                        2 => heap(start, end),
                        3 => vma(start, end, perms, "[anon:a]", 0),
                        4 => vma(start, end, perms, "/f1", 1),
                        5 => {
                            let mut r = vma(start, end, perms, "/f2", 2);
                            r.offset = 0x1000;
                            r
                        }
                        6 => stack(start, end, 7),
                        _ => {
                            let mut r = typed(anon(start, end), MemoryType::Heap, "arena");
                            r.heap_id = Some(1);
                            r
                        }
                    };
                    r.fields.set(Field::Rss, rss * 4096);
                    out.push(r);
                }
                out
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_snapshot_does_not_differ_from_itself(rs in regions()) {
            let s = snap(1, 0, rs);
            let d = diff(&s, &s);
            prop_assert!(d.regions.is_empty(), "{:?}", d.regions);
            for r in &d.by_type {
                prop_assert!(r.deltas.is_zero());
            }
        }

        #[test]
        fn every_region_is_matched_or_reported_once(b in regions(), a in regions()) {
            let p = match_regions(&b, &a);
            let mut seen_b = vec![0; b.len()];
            let mut seen_a = vec![0; a.len()];
            for x in &p {
                prop_assert!(x.before.is_some() || x.after.is_some());
                prop_assert_eq!(x.rule.is_some(), x.before.is_some() && x.after.is_some());
                if let Some(i) = x.before { seen_b[i] += 1; }
                if let Some(j) = x.after { seen_a[j] += 1; }
            }
            prop_assert!(seen_b.iter().chain(&seen_a).all(|&n| n == 1));

            let (sb, sa) = (snap(1, 0, b.clone()), snap(1, 0, a.clone()));
            let d = diff(&sb, &sa);
            let removed: Vec<u64> = p.iter().filter(|x| x.after.is_none())
                .map(|x| b[x.before.unwrap()].start).collect();
            let new: Vec<u64> = p.iter().filter(|x| x.before.is_none())
                .map(|x| a[x.after.unwrap()].start).collect();
            let reported = |k| d.regions.iter().filter(|c| c.has(k))
                .map(|c| c.current().start).collect::<Vec<_>>();
            let mut want = removed.clone();
            want.sort_unstable();
            prop_assert_eq!(reported(ChangeKind::Removed), want);
            let mut want = new.clone();
            want.sort_unstable();
            prop_assert_eq!(reported(ChangeKind::New), want);
            let matched = p.iter().filter(|x| x.rule.is_some()).count();
            prop_assert!(d.regions.len() <= removed.len() + new.len() + matched);
            for c in &d.regions {
                prop_assert!(!c.kinds.is_empty());
                prop_assert_eq!(c.matched_by.is_some(), c.before.is_some() && c.after.is_some());
            }
            let total = d.row(None).deltas.get(Column::Size).unwrap();
            let sizes: i64 = d.regions.iter().map(|c| c.size_delta).sum();
            prop_assert_eq!(total, sizes);
        }
    }
}
