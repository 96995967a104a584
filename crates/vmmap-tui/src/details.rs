//! The Details table as view state over a snapshot: which rows are
//! visible (type filter, free regions, expanded groups), in which order,
//! and text search over them. Pure logic, no drawing, so it is tested
//! directly; drawing only ever touches the visible window of the rows.

use std::collections::HashSet;

use vmmap_core::figures::{Column, Figures};
use vmmap_core::model::{MemoryType, Part, Region, Snapshot};
use vmmap_core::summary::{free_blocks, FreeBlock};

use crate::list::{ListCursor, TableSort};

/// One row of the Details table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// A top-level region, by index into `Snapshot::regions`.
    Region(usize),
    /// A sub-block: (region index, sub-block index).
    Sub(usize, usize),
    /// A named range inside a sub-block, such as a goroutine's stack:
    /// (region index, sub-block index, part index). It has a size but no
    /// figures of its own (the kernel accounts for whole mappings).
    Part(usize, usize, usize),
    /// A free gap, by index into the free list.
    Free(usize),
}

/// What the Details table is ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Start address.
    Address,
    /// Memory type, then address.
    Type,
    /// A figure, largest first.
    Figure(Column),
    /// Protection text.
    Protection,
    /// Details text.
    Details,
}

/// Precomputed per-snapshot data the table needs.
pub struct DetailsData {
    /// Figures of each top-level region.
    pub figures: Vec<Figures>,
    /// The free gaps.
    pub free: Vec<FreeBlock>,
}

impl DetailsData {
    /// Computes figures and gaps once per snapshot.
    pub fn new(snap: &Snapshot) -> DetailsData {
        DetailsData {
            figures: snap.regions.iter().map(Figures::of_region).collect(),
            free: free_blocks(snap),
        }
    }
}

/// The view state of the Details table.
#[derive(Clone, Debug)]
pub struct DetailsView {
    /// Show only this type (None: all, as VMMap's Total row).
    pub filter: Option<MemoryType>,
    /// Show free gaps.
    pub show_free: bool,
    /// Sort key and direction.
    pub sort: TableSort<SortKey>,
    /// Expanded groups, by start address (survives a refresh).
    pub expanded: HashSet<u64>,
    /// The visible rows.
    pub rows: Vec<Row>,
    /// The selection in `rows` and the first row drawn.
    pub cursor: ListCursor,
}

impl Default for DetailsView {
    fn default() -> Self {
        DetailsView {
            filter: None,
            show_free: false,
            sort: TableSort::new(SortKey::Address),
            expanded: HashSet::new(),
            rows: Vec::new(),
            cursor: ListCursor::default(),
        }
    }
}

/// The start address of a row (for keeping the selection across changes).
pub fn row_start(snap: &Snapshot, data: &DetailsData, row: Row) -> u64 {
    match row {
        Row::Region(i) => snap.regions[i].start,
        Row::Sub(i, j) => snap.regions[i].sub_blocks[j].start,
        Row::Part(i, j, k) => snap.regions[i].sub_blocks[j].parts[k].start,
        Row::Free(i) => data.free[i].start,
    }
}

/// The region of a row (None for free gaps; a part's is the sub-block
/// holding it, which actions such as strings work on).
pub fn row_region(snap: &Snapshot, row: Row) -> Option<&Region> {
    match row {
        Row::Region(i) => snap.regions.get(i),
        Row::Sub(i, j) | Row::Part(i, j, _) => snap.regions.get(i)?.sub_blocks.get(j),
        Row::Free(_) => None,
    }
}

impl DetailsView {
    /// Recomputes the visible rows, keeping the selection on the same
    /// address where it still exists.
    pub fn rebuild(&mut self, snap: &Snapshot, data: &DetailsData) {
        let keep = self.selected_key(snap, data);
        self.rebuild_keeping(snap, data, keep);
    }

    /// Recomputes the rows in a new order and goes back to the top, where
    /// the largest (or first) rows of that order are: keeping the old
    /// selection would leave the view in the middle of a list whose top
    /// the user asked to see.
    pub fn resort(&mut self, snap: &Snapshot, data: &DetailsData) {
        self.rebuild_keeping(snap, data, None);
        self.cursor = ListCursor::default();
    }

    /// The selected row's identity, to find it again in another snapshot.
    pub fn selected_key(&self, snap: &Snapshot, data: &DetailsData) -> Option<(u64, u8)> {
        self.rows
            .get(self.cursor.selected)
            .and_then(|&r| row_key(snap, data, r))
    }

    /// Recomputes the rows for a (possibly new) snapshot and selects the
    /// row with identity `keep` if it still exists.
    pub fn rebuild_keeping(
        &mut self,
        snap: &Snapshot,
        data: &DetailsData,
        keep: Option<(u64, u8)>,
    ) {
        let mut top: Vec<Row> = (0..snap.regions.len())
            .filter(|&i| self.filter.is_none_or(|t| snap.regions[i].memory_type == t))
            .map(Row::Region)
            .collect();
        if self.show_free && self.filter.is_none_or(|t| t == MemoryType::Free) {
            top.extend((0..data.free.len()).map(Row::Free));
        }
        let start = |r: &Row| row_start(snap, data, *r);
        let figure = |r: &Row, c: Column| match *r {
            Row::Region(i) => data.figures[i].value(c),
            Row::Free(i) if c == Column::Size => data.free[i].size(),
            _ => 0,
        };
        let text =
            |r: &Row, f: fn(&Region) -> String| row_region(snap, *r).map(f).unwrap_or_default();
        match self.sort.column {
            SortKey::Address => top.sort_by_key(start),
            SortKey::Type => top.sort_by_key(|r| (row_type(snap, *r), start(r))),
            SortKey::Figure(c) => top.sort_by(|a, b| {
                figure(b, c)
                    .cmp(&figure(a, c))
                    .then(start(a).cmp(&start(b)))
            }),
            SortKey::Protection => {
                top.sort_by_cached_key(|r| (text(r, |g| g.perms.as_str().to_string()), start(r)))
            }
            SortKey::Details => {
                top.sort_by_cached_key(|r| (text(r, |g| g.details.clone()), start(r)))
            }
        }
        if self.sort.reverse {
            top.reverse();
        }
        let mut rows = Vec::with_capacity(top.len());
        for r in top {
            rows.push(r);
            if let Row::Region(i) = r {
                let g = &snap.regions[i];
                if !g.sub_blocks.is_empty() && self.expanded.contains(&g.start) {
                    for (j, sub) in g.sub_blocks.iter().enumerate() {
                        rows.push(Row::Sub(i, j));
                        rows.extend((0..sub.parts.len()).map(|k| Row::Part(i, j, k)));
                    }
                }
            }
        }
        self.rows = rows;
        self.cursor.selected = match keep {
            Some(k) => self
                .rows
                .iter()
                .position(|&r| row_key(snap, data, r) == Some(k))
                .unwrap_or(0),
            None => 0,
        }
        .min(self.rows.len().saturating_sub(1));
    }

    /// Expands or collapses the selected group (or the group of the
    /// selected sub-block). `Some(true)` expands, `Some(false)` collapses,
    /// `None` toggles.
    pub fn set_expanded(&mut self, snap: &Snapshot, data: &DetailsData, expand: Option<bool>) {
        let Some(&row) = self.rows.get(self.cursor.selected) else {
            return;
        };
        let i = match row {
            Row::Region(i) | Row::Sub(i, _) | Row::Part(i, ..) => i,
            Row::Free(_) => return,
        };
        let g = &snap.regions[i];
        if g.sub_blocks.is_empty() {
            return;
        }
        let now = self.expanded.contains(&g.start);
        let want = expand.unwrap_or(!now);
        if want == now {
            return;
        }
        if want {
            self.expanded.insert(g.start);
        } else {
            self.expanded.remove(&g.start);
            // Collapsing from a sub-block moves the selection to its group.
            if let Row::Sub(..) | Row::Part(..) = row {
                if let Some(p) = self.rows.iter().position(|&r| r == Row::Region(i)) {
                    self.cursor.selected = p;
                }
            }
        }
        self.rebuild(snap, data);
    }

    /// Expands every group, or collapses them all.
    pub fn set_all_expanded(&mut self, snap: &Snapshot, data: &DetailsData, expand: bool) {
        self.expanded.clear();
        if expand {
            self.expanded.extend(
                snap.regions
                    .iter()
                    .filter(|r| !r.sub_blocks.is_empty())
                    .map(|r| r.start),
            );
        }
        self.rebuild(snap, data);
    }

    /// Searches the rows' text (address, type, protection, details, path)
    /// for `needle`, case-insensitively, from the row after the selection
    /// (before it when `backwards`), wrapping. Collapsed sub-blocks are not
    /// searched. Returns whether a row matched.
    pub fn find(
        &mut self,
        snap: &Snapshot,
        data: &DetailsData,
        needle: &str,
        backwards: bool,
    ) -> bool {
        if needle.is_empty() || self.rows.is_empty() {
            return false;
        }
        let needle = needle.to_lowercase();
        let n = self.rows.len();
        for k in 1..=n {
            let idx = if backwards {
                (self.cursor.selected + n * 2 - k) % n
            } else {
                (self.cursor.selected + k) % n
            };
            if row_text(snap, data, self.rows[idx])
                .to_lowercase()
                .contains(&needle)
            {
                self.cursor.selected = idx;
                return true;
            }
        }
        false
    }

    /// Keeps the selection inside the window of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        self.cursor.scroll_into_view(height.max(1));
        self.cursor.offset = self.cursor.offset.min(self.rows.len().saturating_sub(1));
    }

    /// Moves the selection by `delta` rows, clamped.
    pub fn move_by(&mut self, delta: isize) {
        self.cursor.move_by(delta, self.rows.len());
    }
}

/// Identifies a row across snapshots: its start address and its kind (a
/// group and its first sub-block start at the same address).
fn row_key(snap: &Snapshot, data: &DetailsData, r: Row) -> Option<(u64, u8)> {
    match r {
        Row::Region(i) => snap.regions.get(i).map(|g| (g.start, 0)),
        Row::Sub(i, j) => snap.regions.get(i)?.sub_blocks.get(j).map(|s| (s.start, 1)),
        Row::Free(i) => data.free.get(i).map(|f| (f.start, 2)),
        Row::Part(..) => row_part(snap, r).map(|p| (p.start, 3)),
    }
}

fn row_type(snap: &Snapshot, r: Row) -> MemoryType {
    match r {
        Row::Region(i) => snap.regions[i].memory_type,
        Row::Sub(i, j) | Row::Part(i, j, _) => snap.regions[i].sub_blocks[j].memory_type,
        Row::Free(_) => MemoryType::Free,
    }
}

/// The part a `Row::Part` names.
pub fn row_part(snap: &Snapshot, row: Row) -> Option<&Part> {
    match row {
        Row::Part(i, j, k) => snap.regions.get(i)?.sub_blocks.get(j)?.parts.get(k),
        _ => None,
    }
}

/// The searchable and copyable text of a row.
pub fn row_text(snap: &Snapshot, data: &DetailsData, row: Row) -> String {
    if let Some(p) = row_part(snap, row) {
        return format!("{:x} {}", p.start, p.details);
    }
    match row_region(snap, row) {
        Some(r) => format!(
            "{:x} {} {} {} {}",
            r.start,
            r.memory_type.name(),
            r.perms.as_str(),
            r.details,
            r.path
        ),
        None => match row {
            Row::Free(i) => format!("{:x} Free", data.free[i].start),
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmmap_core::model::Perms;
    use vmmap_core::proc::smaps::Mapping;

    pub(crate) fn snapshot() -> Snapshot {
        let m = |start: u64, end: u64, path: &str| {
            Region::from_mapping(Mapping {
                start,
                end,
                perms: *b"rw-p",
                path: path.into(),
                ..Mapping::default()
            })
        };
        let mut img = Region::group(
            vec![
                m(0x1000, 0x2000, "/lib/a.so"),
                m(0x2000, 0x4000, "/lib/a.so"),
            ],
            MemoryType::Image,
            "/lib/a.so".into(),
            "test".into(),
        );
        img.perms = Perms(*b"r-xp");
        let mut heap = m(0x10000, 0x30000, "[heap]");
        heap.memory_type = MemoryType::Heap;
        heap.details = "Heap ID: 0".into();
        let anon = m(0x40000, 0x41000, "");
        let mut s = Snapshot::from_regions(1, 0, vec![img, heap, anon]);
        s.kernel.user_address_limit = 0x100000;
        s
    }

    #[test]
    fn filter_sort_expand_keep_selection_and_find() {
        let snap = snapshot();
        let data = DetailsData::new(&snap);
        let mut v = DetailsView::default();
        v.rebuild(&snap, &data);
        assert_eq!(v.rows, [Row::Region(0), Row::Region(1), Row::Region(2)]);
        v.set_expanded(&snap, &data, Some(true));
        assert_eq!(v.rows.len(), 5);
        assert_eq!(v.rows[1], Row::Sub(0, 0));
        v.cursor.selected = 3; // the heap: after the image and its two parts
        v.sort = TableSort::new(SortKey::Figure(Column::Size));
        v.rebuild(&snap, &data);
        assert_eq!(v.rows[0], Row::Region(1), "largest first");
        assert_eq!(
            v.rows[v.cursor.selected],
            Row::Region(1),
            "selection follows the region"
        );
        assert_eq!(
            &v.rows[2..4],
            [Row::Sub(0, 0), Row::Sub(0, 1)],
            "sub-blocks stay under their group"
        );
        v.filter = Some(MemoryType::Heap);
        v.rebuild(&snap, &data);
        assert_eq!(v.rows, [Row::Region(1)]);
        v.filter = None;
        v.show_free = true;
        v.rebuild(&snap, &data);
        assert!(v.rows.iter().any(|r| matches!(r, Row::Free(_))));
        assert!(v.find(&snap, &data, "HEAP id", false));
        assert_eq!(v.rows[v.cursor.selected], Row::Region(1));
        assert!(!v.find(&snap, &data, "nothing like this", false));
        v.set_all_expanded(&snap, &data, false);
        assert!(!v.rows.iter().any(|r| matches!(r, Row::Sub(..))));
    }

    #[test]
    fn parts_follow_their_sub_block_and_are_found_and_collapsed() {
        let mut snap = snapshot();
        let part = |start: u64, end: u64, details: &str| Part {
            start,
            end,
            details: details.into(),
            tid: None,
        };
        snap.regions[0].sub_blocks[1].parts = vec![
            part(0x2000, 0x2800, "goroutine 1 stack (running)"),
            part(0x3000, 0x4000, "goroutine 18 stack (waiting)"),
        ];
        let data = DetailsData::new(&snap);
        let mut v = DetailsView::default();
        v.rebuild(&snap, &data);
        v.set_expanded(&snap, &data, Some(true));
        assert_eq!(
            &v.rows[..5],
            [
                Row::Region(0),
                Row::Sub(0, 0),
                Row::Sub(0, 1),
                Row::Part(0, 1, 0),
                Row::Part(0, 1, 1)
            ]
        );
        assert_eq!(row_start(&snap, &data, Row::Part(0, 1, 1)), 0x3000);
        assert_eq!(
            row_type(&snap, Row::Part(0, 1, 1)),
            snap.regions[0].sub_blocks[1].memory_type
        );
        assert_eq!(
            row_region(&snap, Row::Part(0, 1, 1)).map(|r| r.start),
            Some(0x2000),
            "actions on a part work on its mapping"
        );
        assert!(v.find(&snap, &data, "goroutine 18", false));
        assert_eq!(v.rows[v.cursor.selected], Row::Part(0, 1, 1));
        // The selection stays on the part across a rebuild.
        v.rebuild(&snap, &data);
        assert_eq!(v.rows[v.cursor.selected], Row::Part(0, 1, 1));
        v.set_expanded(&snap, &data, Some(false));
        assert_eq!(v.rows[v.cursor.selected], Row::Region(0));
        assert!(!v.rows.iter().any(|r| matches!(r, Row::Part(..))));
    }
}
