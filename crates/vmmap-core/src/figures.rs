//! VMMap's columns and the Linux figures VMMap lacks, derived from the
//! kernel's smaps fields. The exact definitions live here, once, and
//! `docs/metrics.md` and `vmmap explain` quote them.

use serde::{Deserialize, Serialize};

use crate::model::Region;
use crate::proc::smaps::Field;

/// A numeric column of the Summary and Details tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Column {
    Size,
    Committed,
    Private,
    TotalWs,
    PrivateWs,
    ShareableWs,
    SharedWs,
    LockedWs,
    Blocks,
    Largest,
    Pss,
    PssDirty,
    Swap,
    SwapPss,
    Dirty,
    Uss,
    Anonymous,
    Thp,
    Ksm,
    LazyFree,
    Referenced,
    Hugetlb,
}

/// Number of columns.
pub(crate) const NCOLUMNS: usize = 22;

impl Column {
    /// Every column, in table order.
    pub const ALL: [Column; NCOLUMNS] = [
        Column::Size,
        Column::Committed,
        Column::Private,
        Column::TotalWs,
        Column::PrivateWs,
        Column::ShareableWs,
        Column::SharedWs,
        Column::LockedWs,
        Column::Blocks,
        Column::Largest,
        Column::Pss,
        Column::PssDirty,
        Column::Swap,
        Column::SwapPss,
        Column::Dirty,
        Column::Uss,
        Column::Anonymous,
        Column::Thp,
        Column::Ksm,
        Column::LazyFree,
        Column::Referenced,
        Column::Hugetlb,
    ];

    /// VMMap's own columns, the default Summary set: the first ten of the
    /// table (the others are smaps figures VMMap has no column for).
    pub const VMMAP: [Column; 10] = *Column::ALL.first_chunk().unwrap();

    /// The columns shown when none are chosen (`--columns default`, the
    /// terminal UI's first settings, `vmmap address`): VMMap's, then the
    /// three Linux figures asked about most.
    pub fn default_set() -> impl Iterator<Item = Column> {
        Column::VMMAP
            .into_iter()
            .chain([Column::Pss, Column::Swap, Column::Dirty])
    }

    /// Identifier for the command line, JSON and CSV.
    pub fn id(self) -> &'static str {
        match self {
            Column::Size => "size",
            Column::Committed => "committed",
            Column::Private => "private",
            Column::TotalWs => "total_ws",
            Column::PrivateWs => "private_ws",
            Column::ShareableWs => "shareable_ws",
            Column::SharedWs => "shared_ws",
            Column::LockedWs => "locked_ws",
            Column::Blocks => "blocks",
            Column::Largest => "largest",
            Column::Pss => "pss",
            Column::PssDirty => "pss_dirty",
            Column::Swap => "swap",
            Column::SwapPss => "swap_pss",
            Column::Dirty => "dirty",
            Column::Uss => "uss",
            Column::Anonymous => "anonymous",
            Column::Thp => "thp",
            Column::Ksm => "ksm",
            Column::LazyFree => "lazy_free",
            Column::Referenced => "referenced",
            Column::Hugetlb => "hugetlb",
        }
    }

    /// Table header.
    pub fn header(self) -> &'static str {
        match self {
            Column::Size => "Size",
            Column::Committed => "Committed",
            Column::Private => "Private",
            Column::TotalWs => "Total WS",
            Column::PrivateWs => "Private WS",
            Column::ShareableWs => "Shareable WS",
            Column::SharedWs => "Shared WS",
            Column::LockedWs => "Locked WS",
            Column::Blocks => "Blocks",
            Column::Largest => "Largest",
            Column::Pss => "PSS",
            Column::PssDirty => "PSS Dirty",
            Column::Swap => "Swap",
            Column::SwapPss => "SwapPSS",
            Column::Dirty => "Dirty",
            Column::Uss => "USS",
            Column::Anonymous => "Anonymous",
            Column::Thp => "THP",
            Column::Ksm => "KSM",
            Column::LazyFree => "LazyFree",
            Column::Referenced => "Referenced",
            Column::Hugetlb => "Hugetlb",
        }
    }

    /// A header of at most 8 characters, for narrow tables (the terminal
    /// UI at 80 columns).
    pub fn short_header(self) -> &'static str {
        match self {
            Column::Size => "Size",
            Column::Committed => "Commit",
            Column::Private => "Private",
            Column::TotalWs => "Total WS",
            Column::PrivateWs => "Priv WS",
            Column::ShareableWs => "Shrbl WS",
            Column::SharedWs => "Shrd WS",
            Column::LockedWs => "Lock WS",
            Column::Blocks => "Blocks",
            Column::Largest => "Largest",
            Column::Pss => "PSS",
            Column::PssDirty => "PSS Drty",
            Column::Swap => "Swap",
            Column::SwapPss => "SwapPSS",
            Column::Dirty => "Dirty",
            Column::Uss => "USS",
            Column::Anonymous => "Anon",
            Column::Thp => "THP",
            Column::Ksm => "KSM",
            Column::LazyFree => "LazyFree",
            Column::Referenced => "Refd",
            Column::Hugetlb => "Hugetlb",
        }
    }

    /// Parses an id or header, case-insensitively, ignoring `-`, `_` and
    /// spaces (`total-ws`, `TotalWS` and `Total WS` all work).
    pub fn parse(s: &str) -> Option<Column> {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, '-' | '_' | ' '))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let n = norm(s);
        Column::ALL
            .into_iter()
            .find(|c| norm(c.id()) == n || norm(c.header()) == n)
    }

    /// Whether the column is a count rather than bytes.
    pub fn is_count(self) -> bool {
        self == Column::Blocks
    }

    /// Whether the column only has meaning in the Summary (per type).
    pub fn summary_only(self) -> bool {
        matches!(self, Column::Blocks | Column::Largest)
    }

    /// The kernel fields the column needs; if any is missing on this
    /// kernel, the column reads "n/a".
    pub const fn needs(self) -> &'static [Field] {
        match self {
            Column::Size | Column::Committed | Column::Blocks | Column::Largest => &[],
            Column::Private => &[Field::Anonymous, Field::Swap],
            Column::TotalWs => &[Field::Rss],
            Column::PrivateWs => &[Field::Anonymous],
            Column::ShareableWs => &[Field::Rss, Field::Anonymous],
            Column::SharedWs => &[Field::SharedClean, Field::SharedDirty],
            Column::LockedWs => &[Field::Locked],
            Column::Pss => &[Field::Pss],
            Column::PssDirty => &[Field::PssDirty],
            Column::Swap => &[Field::Swap],
            Column::SwapPss => &[Field::SwapPss],
            Column::Dirty => &[Field::PrivateDirty, Field::SharedDirty],
            Column::Uss => &[Field::PrivateClean, Field::PrivateDirty],
            Column::Anonymous => &[Field::Anonymous],
            Column::Thp => &[Field::AnonHugePages],
            Column::Ksm => &[Field::Ksm],
            Column::LazyFree => &[Field::LazyFree],
            Column::Referenced => &[Field::Referenced],
            Column::Hugetlb => &[Field::SharedHugetlb, Field::PrivateHugetlb],
        }
    }

    /// The exact definition, for `vmmap explain` and `docs/metrics.md`.
    pub fn definition(self) -> &'static str {
        match self {
            Column::Size => "end - start of every VMA (smaps Size). Includes PROT_NONE reservations and guard pages.",
            Column::Committed => "Size of every VMA that allows any access (r, w or x). PROT_NONE VMAs are reservations and count 0, as reserved memory does in VMMap. Linux overcommits, so this is address space the process may touch, not memory it has; the kernel's own charge is the `ac` VmFlag (Committed_AS).",
            Column::Private => "Anonymous + Swap of MAP_PRIVATE VMAs: private memory the process has materialised, in RAM or in swap. Windows counts committed private pages whether touched or not; Linux allocates on first touch, so untouched private memory counts 0 here.",
            Column::TotalWs => "Rss: resident pages mapped by this process (hugetlb pages excluded, as the kernel does).",
            Column::PrivateWs => "Anonymous: resident anonymous pages (including copy-on-write copies inside file mappings). Apart from KSM-merged pages, these belong to this process alone or to its fork family.",
            Column::ShareableWs => "Rss - Anonymous: resident file and shmem pages, which another process could map. Total WS = Private WS + Shareable WS, as in VMMap.",
            Column::SharedWs => "Shared_Clean + Shared_Dirty: resident pages mapped by more than one process right now (kernel mapcount > 1).",
            Column::LockedWs => "Locked: resident pages of mlock()ed VMAs (VmFlags lo). The kernel counts them proportionally, like Pss: a locked page mapped by two processes counts half in each, so only private locked pages count in full.",
            Column::Blocks => "Summary only: number of top-level regions of the type (an image, a stack with its guard, an arena counts once); for Free, the number of gaps.",
            Column::Largest => "Summary only: size of the largest top-level region of the type; for Free, the largest free block.",
            Column::Pss => "Pss: proportional set size, each resident page divided by the number of processes mapping it. The kernel prints it truncated to whole kB per VMA.",
            Column::PssDirty => "Pss_Dirty (Linux 6.0+): the dirty part of Pss.",
            Column::Swap => "Swap: anonymous and shmem pages of the VMA that are in swap.",
            Column::SwapPss => "SwapPss (Linux 4.3+): Swap divided among the processes sharing each swap entry.",
            Column::Dirty => "Private_Dirty + Shared_Dirty: resident pages modified since they were read.",
            Column::Uss => "Private_Clean + Private_Dirty: resident pages mapped by this process alone (mapcount 1), what smem calls USS: what exiting would free.",
            Column::Anonymous => "Anonymous: resident anonymous pages.",
            Column::Thp => "AnonHugePages: anonymous memory backed by transparent huge pages.",
            Column::Ksm => "KSM (Linux 6.x): pages merged by the kernel samepage merging daemon.",
            Column::LazyFree => "LazyFree (Linux 4.12+): pages freed with MADV_FREE that the kernel may reclaim without swapping.",
            Column::Referenced => "Referenced: pages marked accessed (reset by writing to clear_refs).",
            Column::Hugetlb => "Shared_Hugetlb + Private_Hugetlb: hugetlbfs pages, which the kernel does not count in Rss.",
        }
    }
}

/// Every column's value for one region or one type, in bytes (Blocks is a
/// count). A column is unavailable when the kernel lacks a field it needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Values indexed by `Column as usize`.
    pub(crate) values: [u64; NCOLUMNS],
    /// Bit `Column as u32` set when the value is unavailable.
    pub unavailable: u32,
}

impl Figures {
    /// The value, `None` when the kernel cannot give it.
    pub fn get(&self, c: Column) -> Option<u64> {
        (self.unavailable & (1 << c as u32) == 0).then(|| self.values[c as usize])
    }

    /// The value, 0 when unavailable.
    pub fn value(&self, c: Column) -> u64 {
        self.values[c as usize]
    }

    /// Sets a value.
    pub fn set(&mut self, c: Column, v: u64) {
        self.values[c as usize] = v;
    }

    /// Adds another set column by column (Blocks adds, Largest takes the
    /// maximum); unavailability spreads.
    pub fn add(&mut self, o: &Figures) {
        for c in Column::ALL {
            let i = c as usize;
            self.values[i] = if c == Column::Largest {
                self.values[i].max(o.values[i])
            } else {
                self.values[i].saturating_add(o.values[i])
            };
        }
        self.unavailable |= o.unavailable;
    }

    /// The figures of one region: summed over its kernel VMAs. Blocks is 1
    /// and Largest is the region's size, so that adding regions gives a
    /// type's Summary row.
    pub fn of_region(r: &Region) -> Figures {
        let mut f = Figures::default();
        for vma in r.vmas() {
            f.add(&Figures::of_vma(vma));
        }
        f.set(Column::Blocks, 1);
        f.set(Column::Largest, r.size());
        f
    }

    /// The figures of one kernel VMA (Blocks and Largest left 0).
    pub fn of_vma(r: &Region) -> Figures {
        let k = &r.fields;
        let b = |field| k.bytes(field);
        // smaps values come from outside: add without overflow.
        let mut f = Figures::default();
        let size = r.size();
        let anon = b(Field::Anonymous);
        let rss = b(Field::Rss);
        f.set(Column::Size, size);
        f.set(Column::Committed, if r.perms.none() { 0 } else { size });
        f.set(
            Column::Private,
            if r.perms.shared() {
                anon
            } else {
                anon.saturating_add(b(Field::Swap))
            },
        );
        f.set(Column::TotalWs, rss);
        f.set(Column::PrivateWs, anon);
        f.set(Column::ShareableWs, rss.saturating_sub(anon));
        f.set(
            Column::SharedWs,
            b(Field::SharedClean).saturating_add(b(Field::SharedDirty)),
        );
        f.set(Column::LockedWs, b(Field::Locked));
        f.set(Column::Pss, b(Field::Pss));
        f.set(Column::PssDirty, b(Field::PssDirty));
        f.set(Column::Swap, b(Field::Swap));
        f.set(Column::SwapPss, b(Field::SwapPss));
        f.set(
            Column::Dirty,
            b(Field::PrivateDirty).saturating_add(b(Field::SharedDirty)),
        );
        f.set(
            Column::Uss,
            b(Field::PrivateClean).saturating_add(b(Field::PrivateDirty)),
        );
        f.set(Column::Anonymous, anon);
        f.set(Column::Thp, b(Field::AnonHugePages));
        f.set(Column::Ksm, b(Field::Ksm));
        f.set(Column::LazyFree, b(Field::LazyFree));
        f.set(Column::Referenced, b(Field::Referenced));
        f.set(
            Column::Hugetlb,
            b(Field::SharedHugetlb).saturating_add(b(Field::PrivateHugetlb)),
        );
        f.unavailable = unavailable_columns(k.present);
        if let Some(p) = &r.pages {
            // Exact sharing (`--sharing exact`): the page tables say which
            // resident pages are file or shmem pages and which of those
            // are mapped more than once. Private WS is what is left of Rss,
            // so Total WS = Private WS + Shareable WS still holds.
            f.set(Column::ShareableWs, p.shareable);
            f.set(Column::SharedWs, p.shared);
            f.set(Column::PrivateWs, rss.saturating_sub(p.shareable));
            f.unavailable &= !(1 << Column::SharedWs as u32 | 1 << Column::PrivateWs as u32);
        }
        f
    }
}

/// The columns that cannot be computed from the smaps fields in `present`
/// (a bit mask by `Field`), as a bit mask by `Column`.
pub(crate) fn unavailable_columns(present: u32) -> u32 {
    let mut out = 0;
    for (c, needs) in Column::ALL.iter().zip(NEEDS_MASKS.iter()) {
        if needs & !present != 0 {
            out |= 1 << *c as u32;
        }
    }
    out
}

/// `Column::needs` as field bit masks, computed at compile time: this runs
/// for every VMA.
const NEEDS_MASKS: [u32; NCOLUMNS] = {
    let mut m = [0u32; NCOLUMNS];
    let mut i = 0;
    while i < NCOLUMNS {
        let needs = Column::ALL[i].needs();
        let mut j = 0;
        while j < needs.len() {
            m[i] |= 1 << needs[j] as u32;
            j += 1;
        }
        i += 1;
    }
    m
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::smaps::Mapping;

    fn vma(perms: &[u8; 4], fields: &[(Field, u64)]) -> Region {
        let mut m = Mapping {
            start: 0x1000,
            end: 0x5000,
            perms: *perms,
            ..Mapping::default()
        };
        for &(f, kb) in fields {
            m.fields.set(f, kb * 1024);
        }
        Region::from_mapping(m)
    }

    #[test]
    fn prot_none_is_not_committed() {
        let f = Figures::of_vma(&vma(b"---p", &[(Field::Rss, 0)]));
        assert_eq!(f.get(Column::Size), Some(0x4000));
        assert_eq!(f.get(Column::Committed), Some(0));
    }

    #[test]
    fn ws_split_adds_up_and_missing_fields_are_unavailable() {
        let all: Vec<(Field, u64)> = Field::ALL.iter().map(|&f| (f, 0)).collect();
        let mut r = vma(b"rw-p", &all);
        r.fields.set(Field::Rss, 12 * 1024);
        r.fields.set(Field::Anonymous, 8 * 1024);
        r.fields.set(Field::Swap, 4 * 1024);
        let f = Figures::of_vma(&r);
        assert_eq!(
            f.value(Column::PrivateWs) + f.value(Column::ShareableWs),
            f.value(Column::TotalWs)
        );
        assert_eq!(f.value(Column::Private), 12 * 1024);
        assert_eq!(f.get(Column::PssDirty), Some(0));
        let old = Figures::of_vma(&vma(b"rw-p", &[(Field::Rss, 4)]));
        assert_eq!(old.get(Column::PssDirty), None);
        assert_eq!(old.get(Column::TotalWs), Some(4096));
    }

    #[test]
    fn column_names_parse() {
        for c in Column::ALL {
            assert_eq!(Column::parse(c.id()), Some(c));
            assert_eq!(Column::parse(c.header()), Some(c));
        }
        assert_eq!(Column::parse("Total-WS"), Some(Column::TotalWs));
        assert_eq!(Column::parse("nope"), None);
    }
}
