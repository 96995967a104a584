//! Exact sharing from the page tables: per-page residency and sharing of
//! each VMA from `/proc/PID/pagemap` (and, with root, `/proc/kpagecount`),
//! the figures an image's ELF sections get, and the multi-process
//! accounting that counts a page mapped by several processes once.
//!
//! Everything here is pure: [`crate::collect::pages`] reads the files.

use serde::{Deserialize, Serialize};

use crate::model::MemoryType;
use crate::proc::kpage::Run;
use crate::proc::pagemap;

/// What a page frame belongs to, for counting pages of several processes
/// once ([`union`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FrameTag {
    /// The type of the region that maps it.
    pub(crate) memory_type: MemoryType,
    /// A file or shmem page (pagemap bit 61), rather than anonymous.
    pub(crate) shareable: bool,
}

/// Pages of several processes with every frame counted once, per memory
/// type (indexed by `MemoryType as usize`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Union {
    /// Distinct resident frames.
    pub(crate) total: [u64; MemoryType::ALL.len()],
    /// Of those, file and shmem frames.
    pub(crate) shareable: [u64; MemoryType::ALL.len()],
}

/// Counts the distinct frames in the runs of every process. A frame that
/// several runs hold (a page mapped by two processes, or twice by one)
/// counts once, for the run that starts lowest (ties: the first given),
/// so a frame mapped under two types (an ELF file mapped as an image in
/// one process and as data in another) is counted under one of them.
pub(crate) fn union(mut runs: Vec<Run<FrameTag>>) -> Union {
    runs.sort_by_key(|r| r.first);
    let mut u = Union::default();
    let mut covered = 0u64;
    for r in &runs {
        let from = r.first.max(covered);
        let new = r.end().saturating_sub(from);
        if new == 0 {
            continue;
        }
        let t = r.tag.memory_type as usize;
        u.total[t] += new;
        if r.tag.shareable {
            u.shareable[t] += new;
        }
        covered = r.end();
    }
    u
}

/// Per-page figures of one VMA, in bytes, from its pagemap entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSharing {
    /// Present pages (bit 63). Unlike smaps `Rss` this includes pages that
    /// map the shared zero page.
    pub(crate) resident: u64,
    /// Present file or shmem pages (bit 61): Shareable WS.
    pub(crate) shareable: u64,
    /// Shareable pages mapped more than once right now: Shared WS.
    pub(crate) shared: u64,
    /// Present anonymous pages (bit 61 clear) inside a file mapping: the
    /// private copies copy-on-write made of file pages.
    pub(crate) cow: u64,
    /// Swapped-out pages (bit 62).
    pub(crate) swapped: u64,
}

impl PageSharing {
    /// Counts one pagemap entry of a VMA (`file_vma`: it maps a file or
    /// shmem object, so an anonymous page in it is a copy-on-write copy).
    /// `shared` says whether a shareable page is mapped more than once;
    /// `None` leaves the decision to a later kpagecount lookup
    /// ([`PageSharing::shared`] is then filled in by the caller).
    pub(crate) fn tally(&mut self, entry: u64, file_vma: bool, shared: Option<bool>, page: u64) {
        if entry & pagemap::SWAPPED != 0 {
            self.swapped += page;
            return;
        }
        if entry & pagemap::PRESENT == 0 {
            return;
        }
        self.resident += page;
        if entry & pagemap::FILE_OR_SHARED != 0 {
            self.shareable += page;
            if shared == Some(true) {
                self.shared += page;
            }
        } else if file_vma {
            self.cow += page;
        }
    }
}

/// Without root, a page is taken as shared when pagemap does not mark it
/// exclusively mapped (bit 56, Linux 4.2+).
pub(crate) fn shared_by_exclusive_bit(entry: u64) -> bool {
    entry & pagemap::EXCLUSIVE == 0
}

/// Where Shared WS came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SharingSource {
    /// `/proc/kpagecount` > 1 for the page's frame (root).
    Kpagecount,
    /// pagemap bit 56 clear (`PM_MMAP_EXCLUSIVE`, no privilege needed).
    ExclusiveBit,
}

/// Whether the kernel keeps exact per-page mapcounts for large folios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MapcountPrecision {
    /// `CONFIG_PAGE_MAPCOUNT=y`, or a kernel older than the option (6.15).
    Exact,
    /// `CONFIG_NO_PAGE_MAPCOUNT=y`: large folios have no per-page
    /// mapcount; the kernel answers "maybe shared" for the whole folio.
    Approximate,
    /// A 6.15+ kernel whose configuration could not be read.
    Unknown,
}

/// How a snapshot's exact sharing figures were computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingMethod {
    /// Where Shared WS came from.
    pub(crate) source: SharingSource,
    /// Whether the kernel's mapcounts are exact for large folios.
    pub(crate) mapcount: MapcountPrecision,
    /// Bytes of shareable pages that lie in large folios (THP, mTHP,
    /// large page-cache folios), from kpageflags; `None` without root.
    pub(crate) large_folio_bytes: Option<u64>,
}

impl SharingMethod {
    /// Whether some figure may be approximate: large folios were seen (or
    /// could not be ruled out) on a kernel without per-page mapcounts.
    pub(crate) fn approximate(&self) -> bool {
        self.mapcount != MapcountPrecision::Exact && self.large_folio_bytes != Some(0)
    }

    /// One line for the report header.
    pub fn describe(&self) -> String {
        let mut s = match self.source {
            SharingSource::Kpagecount => {
                "from the page tables: Shareable = file/shmem pages (pagemap bit 61), Shared = those with kpagecount > 1"
                    .to_string()
            }
            SharingSource::ExclusiveBit => "from the page tables: Shareable = file/shmem pages (pagemap bit 61), Shared = those not mapped exclusively (bit 56: mapcount > 1)".to_string(),
        };
        if self.approximate() {
            s.push_str(match self.mapcount {
                MapcountPrecision::Approximate => "; APPROXIMATE for large folios: this kernel has CONFIG_NO_PAGE_MAPCOUNT",
                _ => "; may be approximate for large folios: this 6.15+ kernel may have CONFIG_NO_PAGE_MAPCOUNT (configuration unreadable)",
            });
        }
        s
    }
}

/// Whether a kernel release (`uname -r`) is older than 6.15, the first
/// with `CONFIG_NO_PAGE_MAPCOUNT`.
pub(crate) fn release_predates_no_page_mapcount(release: &str) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) < (6, 15) && major > 0
}

/// The mapcount precision a kernel configuration text (`.config` format)
/// states, if it says.
pub(crate) fn precision_from_config(config: &str) -> Option<MapcountPrecision> {
    for line in config.lines() {
        match line.trim() {
            "CONFIG_NO_PAGE_MAPCOUNT=y" => return Some(MapcountPrecision::Approximate),
            "CONFIG_PAGE_MAPCOUNT=y" | "# CONFIG_NO_PAGE_MAPCOUNT is not set" => {
                return Some(MapcountPrecision::Exact)
            }
            _ => {}
        }
    }
    None
}

/// One ELF section of a loaded image with its per-page figures: a derived
/// row (the kernel knows nothing of sections), in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionFigures {
    /// Section name (`.text`, `.data`, `.bss`, …).
    pub name: String,
    /// Where the section starts in this process (a `"0x…"` string in
    /// JSON, like every address).
    #[serde(with = "crate::hex")]
    pub start: u64,
    /// One past its end.
    #[serde(with = "crate::hex")]
    pub end: u64,
    /// Present pages that hold part of the section.
    pub resident: u64,
    /// Present private pages: copy-on-write copies in the file mapping,
    /// and the anonymous pages of `.bss` past the file.
    pub private: u64,
    /// Present file pages (not yet copied).
    pub shareable: u64,
    /// Of those, pages mapped more than once.
    pub shared: u64,
    /// Pages the section shares with a neighbouring section (a page that
    /// holds the end of one and the start of the next): counted in both.
    pub boundary_pages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::kpage::Run;
    use crate::proc::pagemap::{EXCLUSIVE, FILE_OR_SHARED, PRESENT, SWAPPED};

    #[test]
    fn tally_splits_file_anon_and_shared() {
        let mut p = PageSharing::default();
        let page = 4096;
        for e in [
            PRESENT | FILE_OR_SHARED,             // shared file page
            PRESENT | FILE_OR_SHARED | EXCLUSIVE, // private file page
            PRESENT | EXCLUSIVE,                  // COW copy
            SWAPPED,
            0,
        ] {
            p.tally(e, true, Some(shared_by_exclusive_bit(e)), page);
        }
        assert_eq!(
            p,
            PageSharing {
                resident: 3 * page,
                shareable: 2 * page,
                shared: page,
                cow: page,
                swapped: page,
            }
        );
        let mut anon = PageSharing::default();
        anon.tally(PRESENT, false, Some(true), page);
        assert_eq!(
            (anon.cow, anon.shared),
            (0, 0),
            "anon pages are not Shared WS"
        );
    }

    #[test]
    fn union_counts_each_frame_once() {
        let tag = |t, shareable| FrameTag {
            memory_type: t,
            shareable,
        };
        let file = tag(MemoryType::MappedFile, true);
        let anon = tag(MemoryType::Heap, false);
        let runs = vec![
            // process A: frames 100..110 of a file, 500..504 of heap
            Run {
                first: 100,
                len: 10,
                tag: file,
            },
            Run {
                first: 500,
                len: 4,
                tag: anon,
            },
            // process B maps 105..115 of the same file, and 502..503 (a
            // page still shared copy-on-write after fork)
            Run {
                first: 105,
                len: 10,
                tag: file,
            },
            Run {
                first: 502,
                len: 1,
                tag: anon,
            },
            // inside an earlier run entirely
            Run {
                first: 101,
                len: 2,
                tag: tag(MemoryType::Image, true),
            },
        ];
        let u = union(runs);
        assert_eq!(u.total[MemoryType::MappedFile as usize], 15);
        assert_eq!(u.shareable[MemoryType::MappedFile as usize], 15);
        assert_eq!(u.total[MemoryType::Heap as usize], 4);
        assert_eq!(u.shareable[MemoryType::Heap as usize], 0);
        assert_eq!(u.total[MemoryType::Image as usize], 0, "already counted");
    }

    #[test]
    fn kernel_mapcount_precision() {
        assert!(release_predates_no_page_mapcount("6.8.0-45-generic"));
        assert!(!release_predates_no_page_mapcount("6.18.44-fc-v595"));
        assert!(!release_predates_no_page_mapcount("7.0"));
        assert!(!release_predates_no_page_mapcount("garbage"));
        assert_eq!(
            precision_from_config(
                "CONFIG_X=y\n# CONFIG_NO_PAGE_MAPCOUNT is not set\nCONFIG_PAGE_MAPCOUNT=y\n"
            ),
            Some(MapcountPrecision::Exact)
        );
        assert_eq!(
            precision_from_config("CONFIG_NO_PAGE_MAPCOUNT=y\n"),
            Some(MapcountPrecision::Approximate)
        );
        assert_eq!(precision_from_config("CONFIG_X=y\n"), None);
        let m = SharingMethod {
            source: SharingSource::Kpagecount,
            mapcount: MapcountPrecision::Approximate,
            large_folio_bytes: Some(0),
        };
        assert!(!m.approximate(), "no large folio seen: exact");
        let m = SharingMethod {
            large_folio_bytes: Some(4096),
            ..m
        };
        assert!(m.describe().contains("APPROXIMATE"));
    }
}
