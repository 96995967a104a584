//! Aggregation: the Summary table (one row per memory type plus Total) and
//! the free gaps of the address space.

use serde::{Deserialize, Serialize};

use crate::figures::{Column, Figures};
use crate::model::{MemoryType, Snapshot};

/// One row of the Summary table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The type; `None` for the Total row.
    pub memory_type: Option<MemoryType>,
    /// The figures (Blocks and Largest included).
    pub figures: Figures,
}

/// The Summary table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// One row per type, in [`MemoryType::ALL`] order, zero rows included.
    pub rows: Vec<SummaryRow>,
    /// Every type but Free, added up.
    pub total: SummaryRow,
    /// The regions of the tracing agent loaded into a traced program (see
    /// [`Summary::with_agent`]), added up apart: in no row and not in
    /// `total`. None when no region is the agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<SummaryRow>,
}

impl Summary {
    /// Aggregates a snapshot. Page Table comes from `VmPTE` and counts in
    /// Size, Committed and Private as VMMap counts it; Free from the gaps.
    pub fn of(snap: &Snapshot) -> Summary {
        Summary::with_agent(snap, &[])
    }

    /// [`Summary::of`], the top-level regions flagged in `agent` (by index)
    /// counted apart in [`Summary::agent`]: a traced program's figures are
    /// its own, without the memory the tracing agent took in it. The page
    /// tables (`VmPTE`) are the process's and stay in the program's rows.
    pub fn with_agent(snap: &Snapshot, agent: &[bool]) -> Summary {
        let mut by_type = [Figures::default(); MemoryType::ALL.len()];
        let mut apart: Option<Figures> = None;
        // Columns the kernel cannot give stay unavailable in every row, even
        // rows with no regions, so that "n/a" is never mistaken for zero:
        // gathered from each region's figures as they are summed.
        let mut missing = 0u32;
        for (i, r) in snap.regions.iter().enumerate() {
            let f = Figures::of_region(r);
            missing |= f.unavailable;
            if agent.get(i).copied().unwrap_or(false) {
                apart.get_or_insert_with(Figures::default).add(&f);
            } else {
                by_type[r.memory_type as usize].add(&f);
            }
        }
        let pt = &mut by_type[MemoryType::PageTable as usize];
        match snap.page_table_bytes() {
            Some(b) => {
                for c in [Column::Size, Column::Committed, Column::Private] {
                    pt.set(c, b);
                }
                pt.set(Column::Largest, b);
                pt.set(Column::Blocks, u64::from(b > 0));
            }
            None => pt.unavailable = !0,
        }
        let free = free_blocks(snap);
        let fr = &mut by_type[MemoryType::Free as usize];
        fr.set(Column::Size, free.iter().map(|f| f.size()).sum());
        fr.set(Column::Blocks, free.len() as u64);
        fr.set(
            Column::Largest,
            free.iter().map(|f| f.size()).max().unwrap_or(0),
        );

        let mut total = Figures::default();
        let mut rows = Vec::with_capacity(by_type.len());
        for t in MemoryType::ALL {
            let mut f = by_type[t as usize];
            if t != MemoryType::PageTable {
                f.unavailable |= missing;
            }
            if t != MemoryType::Free {
                let mut counted = f;
                if t == MemoryType::PageTable && snap.page_table_bytes().is_none() {
                    counted = Figures::default();
                }
                total.add(&counted);
            }
            rows.push(SummaryRow {
                memory_type: Some(t),
                figures: f,
            });
        }
        total.unavailable = missing;
        Summary {
            rows,
            total: SummaryRow {
                memory_type: None,
                figures: total,
            },
            agent: apart.map(|mut f| {
                f.unavailable |= missing;
                SummaryRow {
                    memory_type: None,
                    figures: f,
                }
            }),
        }
    }

    /// The row of one type.
    pub fn row(&self, t: MemoryType) -> &SummaryRow {
        &self.rows[t as usize]
    }
}

/// A gap of unmapped address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeBlock {
    /// First free address.
    pub start: u64,
    /// One past the last free address.
    pub end: u64,
}

impl FreeBlock {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The gaps between regions within `[mmap_min_addr, user_address_limit)`.
/// Mappings above the limit (the x86-64 vsyscall page) are outside the
/// user address space and bound nothing.
pub fn free_blocks(snap: &Snapshot) -> Vec<FreeBlock> {
    let lo = snap.kernel.mmap_min_addr;
    let hi = snap.kernel.user_address_limit;
    let mut out = Vec::new();
    let mut cursor = lo;
    for r in &snap.regions {
        if r.start >= hi {
            break;
        }
        if r.start > cursor {
            out.push(FreeBlock {
                start: cursor,
                end: r.start,
            });
        }
        cursor = cursor.max(r.end);
    }
    if hi > cursor {
        out.push(FreeBlock {
            start: cursor,
            end: hi,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bare as region;

    #[test]
    fn regions_set_apart_are_in_no_row_and_not_in_the_total() {
        let snap = Snapshot::from_regions(
            1,
            0,
            vec![
                region(0x1000, 0x3000, MemoryType::PrivateData),
                region(0x3000, 0x4000, MemoryType::PrivateData),
                region(0x8000, 0xc000, MemoryType::Image),
            ],
        );
        let whole = Summary::of(&snap);
        assert!(whole.agent.is_none());
        let s = Summary::with_agent(&snap, &[false, true, true]);
        let size = |r: &SummaryRow| r.figures.value(Column::Size);
        assert_eq!(size(s.row(MemoryType::PrivateData)), 0x2000);
        assert_eq!(size(s.row(MemoryType::Image)), 0);
        assert_eq!(size(&s.total), 0x2000);
        let agent = s.agent.as_ref().unwrap();
        assert_eq!(
            (size(agent), agent.figures.value(Column::Blocks)),
            (0x5000, 2)
        );
        assert_eq!(size(&s.total) + size(agent), size(&whole.total));
        // Free space is the same: the agent's regions are not free.
        assert_eq!(s.row(MemoryType::Free), whole.row(MemoryType::Free));
    }
}
