//! Chromium (and the browsers and Electron apps built from it), whose
//! allocators are linked into the one executable, so they are found by the
//! layout they document rather than by a library name.
//!
//! PartitionAlloc, Chromium's malloc, reserves its pools at start, each one
//! `PROT_NONE` range of 16 GiB (`kPoolMaxSize` on 64-bit) aligned to its
//! size; the regular and BackupRefPtr pools are one reservation of 32 GiB
//! ("glued core pools"), the regular pool first. Inside a pool memory is
//! handed out in super pages of 2 MiB aligned to 2 MiB. A super page's first
//! partition page (16 KiB) is its metadata: a guard system page, the page of
//! metadata, then guard; its slot spans begin right after it. So the
//! committed memory of a pool is never a super page's first system page,
//! and super page payload starts 16 KiB past a 2 MiB boundary. Recent
//! builds also keep a copy of each super page's metadata outside the pools
//! ("shadow metadata"): a reservation the size of a pool that commits
//! single system pages near the start of each 2 MiB, one for each pool
//! that has a super page at that offset.
//!
//! V8 inside Chrome runs with pointer compression and its sandbox: the
//! main heap is a cage of 4 GiB aligned to 4 GiB, whose base holds the
//! read-only space (V8 maps it read-only there), with heap pages of 256 KiB
//! after it; trusted objects live in a separate range of 1 GiB, also
//! aligned to 4 GiB (pointers into it are compressed too), committed in the
//! same 256 KiB pages. Its code range is one reservation of 128 or 512 MiB
//! (`kMaximalCodeRangeSize`) whose committed part is executable.
//!
//! Oilpan, Blink's garbage-collected heap (cppgc), reserves its cage of
//! 16 GiB aligned to 16 GiB and commits it in its pages of 128 KiB; the
//! PartitionAlloc pools, the other 16 GiB-aligned reservations, commit
//! super page payload 16 KiB past a 2 MiB boundary, which no 128 KiB-page
//! heap does, and are claimed first.

use super::{mib, Claim, Claimer};
use crate::model::{Confidence, MemoryType, Region};

const POOL: u64 = 16 << 30;
const SUPER_PAGE: u64 = 2 << 20;
const PARTITION_PAGE: u64 = 16 << 10;
/// How far into each 2 MiB the shadow metadata's pages lie.
const SHADOW_SPREAD: u64 = 4 * PARTITION_PAGE;
const CAGE: u64 = 4 << 30;
const TRUSTED_RANGE: u64 = 1 << 30;
const V8_PAGE: u64 = 256 << 10;
const CODE_RANGES: [u64; 2] = [128 << 20, 512 << 20];
/// cppgc's `kPageSize`.
const OILPAN_PAGE: u64 = 128 << 10;

/// Whether an executable's file name is a Chromium build's.
pub(super) fn is_chromium_exe(name: &str) -> bool {
    matches!(
        name,
        "chrome"
            | "chromium"
            | "chromium-browser"
            | "chrome-headless-shell"
            | "headless_shell"
            | "electron"
            | "msedge"
    )
}

pub(super) fn plan(c: &mut Claimer<'_>) {
    let pools = plan_pools(c);
    if pools > 0 {
        plan_shadow_metadata(c);
    }
    plan_v8(c);
    plan_code_range(c);
    plan_oilpan(c);
}

/// Offset of `addr` inside its super page.
fn in_super_page(addr: u64) -> u64 {
    addr % SUPER_PAGE
}

/// Whether the committed VMAs of `start..start + len` have a pool's layout:
/// none on a super page's first system page (its guard), at least one
/// beginning where a super page's slot spans begin, and any other that
/// starts inside a first partition page no longer than the metadata page.
fn super_page_layout(c: &Claimer<'_>, start: usize, len: usize) -> bool {
    let mut payload = false;
    for r in &c.regions[start..start + len] {
        if r.perms.none() {
            continue;
        }
        let off = in_super_page(r.start);
        if off < c.page {
            return false;
        }
        if off == PARTITION_PAGE {
            payload = true;
        } else if off < PARTITION_PAGE && (r.size() > c.page || r.end % SUPER_PAGE > PARTITION_PAGE)
        {
            return false;
        }
    }
    payload
}

/// What a committed VMA of a pool is, by where it starts in its super page.
fn pool_part(r: &Region, pool: &str) -> String {
    if r.perms.none() {
        return format!("{pool}: reserved");
    }
    if in_super_page(r.start) < PARTITION_PAGE {
        format!("{pool}: super page metadata")
    } else {
        format!("{pool}: super page slot spans")
    }
}

/// The pools: free runs from a 16 GiB boundary, a whole number of pools
/// long, with the super page layout. Returns how many were claimed.
fn plan_pools(c: &mut Claimer<'_>) -> usize {
    let mut found = 0;
    c.scan_free_runs(
        |r| r.start % POOL == 0,
        |_| true,
        |c, i, len| {
            let span = c.span(i, len);
            let base = c.regions[i].start;
            if span % POOL != 0 || span > 4 * POOL || !super_page_layout(c, i, len) {
                return len;
            }
            // The core pools are one reservation aligned to its 32 GiB.
            let glued = span == 2 * POOL && base % (2 * POOL) == 0;
            let mut super_pages = std::collections::BTreeSet::new();
            let mut committed = 0;
            for r in &mut c.regions[i..i + len] {
                let pool = if glued {
                    if r.start < base + POOL {
                        "regular pool"
                    } else {
                        "BackupRefPtr pool"
                    }
                } else {
                    "pool"
                };
                if !r.perms.none() {
                    committed += r.size();
                    let mut a = r.start - r.start % SUPER_PAGE;
                    while a < r.end {
                        super_pages.insert(a);
                        a += SUPER_PAGE;
                    }
                }
                r.details = pool_part(r, pool);
            }
            let what = if glued {
                "PartitionAlloc core pools (regular, then BackupRefPtr)".to_string()
            } else {
                format!("PartitionAlloc pool ({} GiB)", span >> 30)
            };
            let details = format!(
                "{what}: {} super pages, {} committed of {} GiB reserved",
                super_pages.len(),
                mib(committed),
                span >> 30
            );
            let evidence = "Chromium is loaded and this is a reservation of whole 16 GiB pools aligned to 16 GiB, committed only in PartitionAlloc's super page layout: 2 MiB super pages whose slot spans begin after the 16 KiB partition page of metadata, never on its guard page";
            c.claim(i, len, Claim::new(MemoryType::Heap, details, evidence));
            found += 1;
            len
        },
    );
    found
}

/// The shadow copy of the super pages' metadata: a run exactly one pool
/// long whose committed VMAs are single system pages, each near the start
/// of a 2 MiB stride from the run's start (seen: one page each at 4, 12
/// and 20 KiB, one for each pool with a super page at that offset).
fn plan_shadow_metadata(c: &mut Claimer<'_>) {
    c.scan_free_runs(
        |r| r.perms.none(),
        |_| true,
        |c, i, len| {
            if c.span(i, len) != POOL {
                return len;
            }
            let base = c.regions[i].start;
            let mut pages = 0;
            for r in &c.regions[i..i + len] {
                if r.perms.none() {
                    continue;
                }
                if r.size() != c.page || (r.start - base) % SUPER_PAGE >= SHADOW_SPREAD {
                    return len;
                }
                pages += 1;
            }
            if pages == 0 {
                return len;
            }
            c.name_parts(i, len, "metadata of one super page");
            let evidence = "Chromium is loaded, its PartitionAlloc pools were found, and this reservation of one pool's size commits only single system pages near the start of each 2 MiB, as PartitionAlloc's shadow copy of its super pages' metadata does";
            c.claim(
                i,
                len,
                Claim::new(
                    MemoryType::Heap,
                    format!("PartitionAlloc shadow metadata ({pages} pages)"),
                    evidence,
                )
                .confidence(Confidence::Medium),
            );
            len
        },
    );
}

/// The VMAs from `i` that lie wholly inside `limit` bytes of its start,
/// all free and contiguous.
fn run_within(c: &Claimer<'_>, i: usize, limit: u64) -> usize {
    let end = c.regions[i].start + limit;
    let mut j = i;
    while j < c.regions.len()
        && c.free(j)
        && c.regions[j].end <= end
        && (j == i || c.regions[j].start == c.regions[j - 1].end)
    {
        j += 1;
    }
    j - i
}

/// Whether every stretch of committed memory in `i..i + len` begins on a
/// V8 page boundary; returns the committed bytes if so.
fn v8_pages(c: &Claimer<'_>, i: usize, len: usize) -> Option<u64> {
    let mut committed = 0;
    for k in i..i + len {
        let r = &c.regions[k];
        if r.perms.exec() {
            return None;
        }
        if r.perms.none() {
            continue;
        }
        // The read-only space is mapped in smaller pieces; heap pages are
        // the writable stretches.
        let starts_stretch = k == i || !c.regions[k - 1].perms.write();
        if r.perms.write() && starts_stretch && r.start % V8_PAGE != 0 {
            return None;
        }
        committed += r.size();
    }
    Some(committed)
}

/// V8's cage (4 GiB aligned, read-only space at its base) and its trusted
/// range (1 GiB from a 4 GiB boundary).
fn plan_v8(c: &mut Claimer<'_>) {
    for i in 0..c.regions.len() {
        let r = &c.regions[i];
        if !c.free(i) || r.start % CAGE != 0 {
            continue;
        }
        let cage = !r.perms.none() && !r.perms.write();
        let (limit, what, evidence) = if cage {
            (
                CAGE,
                "V8 pointer-compression cage",
                "Chromium is loaded and this range starts on a 4 GiB boundary with read-only memory, as V8's cage does (its read-only space sits at the cage base), and its committed memory is in 256 KiB V8 pages",
            )
        } else {
            (
                TRUSTED_RANGE,
                "V8 trusted range",
                "Chromium is loaded and this reservation of exactly 1 GiB from a 4 GiB boundary, committed only in 256 KiB V8 pages, is V8's trusted space range",
            )
        };
        let len = run_within(c, i, limit);
        if len == 0 || (!cage && c.span(i, len) != TRUSTED_RANGE) {
            continue;
        }
        let Some(committed) = v8_pages(c, i, len) else {
            continue;
        };
        if committed == 0 {
            continue;
        }
        for r in &mut c.regions[i..i + len] {
            r.details = if r.perms.none() {
                "reserved".into()
            } else if !r.perms.write() {
                "read-only space".into()
            } else {
                "V8 heap pages".into()
            };
        }
        c.claim(
            i,
            len,
            Claim::managed_heap(format!("{what} ({} committed)", mib(committed)), evidence),
        );
    }
}

/// V8's code range: free VMAs from a 256 KiB boundary spanning exactly one
/// of the code range sizes, with executable memory among them.
fn plan_code_range(c: &mut Claimer<'_>) {
    c.scan_free_runs(
        |r| r.start % V8_PAGE == 0,
        |_| true,
        |c, i, len| {
            let start = c.regions[i].start;
            // Stops past the largest size: a long run costs no more than
            // the VMAs inside 512 MiB of each start.
            let mut j = i;
            while j < i + len
                && !CODE_RANGES.contains(&(c.regions[j].end - start))
                && c.regions[j].end - start < CODE_RANGES[1]
            {
                j += 1;
            }
            if j == i + len
                || !CODE_RANGES.contains(&(c.regions[j].end - start))
                || !(i..=j).any(|k| c.regions[k].perms.exec())
            {
                return 1;
            }
            let n = j + 1 - i;
            let span = c.span(i, n);
            c.name_parts(i, n, "code");
            c.claim(
                i,
                n,
                Claim::managed_heap(
                    format!("V8 code range ({})", mib(span)),
                    "Chromium is loaded and this anonymous range from a 256 KiB boundary, with executable memory in it, has the size of V8's code range reservation",
                ),
            );
            n
        },
    );
}

/// Oilpan's cage: a free run of exactly 16 GiB from a 16 GiB boundary
/// whose committed memory begins and ends on 128 KiB page boundaries.
fn plan_oilpan(c: &mut Claimer<'_>) {
    c.scan_free_runs(
        |r| r.start % POOL == 0,
        |_| true,
        |c, i, len| {
            if c.span(i, len) != POOL {
                return len;
            }
            let mut committed = 0;
            for r in &c.regions[i..i + len] {
                if r.perms.none() {
                    continue;
                }
                if r.perms.exec() || r.start % OILPAN_PAGE != 0 || r.end % OILPAN_PAGE != 0 {
                    return len;
                }
                committed += r.size();
            }
            if committed == 0 {
                return len;
            }
            c.name_parts(i, len, "Oilpan pages");
            let evidence = "Chromium is loaded and this reservation of exactly 16 GiB from a 16 GiB boundary, committed only in whole 128 KiB pages, is Oilpan's (cppgc's) cage; PartitionAlloc's pools, the other such reservations, were told apart by their super page layout";
            c.claim(
                i,
                len,
                Claim::managed_heap(
                    format!("Oilpan (cppgc) caged heap ({} committed)", mib(committed)),
                    evidence,
                )
                .confidence(Confidence::Medium),
            );
            len
        },
    );
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::FakeInspector;
    use crate::model::{Confidence, MemoryType, Region};
    use crate::proc::smaps::Mapping;

    const EXE: &str = "/usr/lib/chromium/chromium";

    fn classify_exe(exe: &str, mut maps: Vec<Mapping>) -> Vec<Region> {
        maps.insert(0, file(0x5600_0000_0000, 0x5600_0100_0000, b"r-xp", 3, exe));
        let mut fake = FakeInspector::default();
        fake.files
            .insert(exe.into(), crate::classify::testutil::shared_object());
        let ctx = crate::classify::testutil::context();
        classify(maps, &ctx, &mut fake).0
    }

    /// Shortened from chromium 156's renderer: the core pools with two
    /// super pages (one in each pool), the shadow metadata, V8's cage and
    /// trusted range, and Oilpan's cage.
    fn renderer() -> Vec<Mapping> {
        let shadow = 0x0ea6_9053_4000u64;
        let pools = 0x13f0_0000_0000u64;
        let brp = pools + (16 << 30);
        let cage = 0x2afc_0000_0000u64;
        let trusted = 0x31a3_0000_0000u64;
        let oilpan = 0x3a04_0000_0000u64;
        vec![
            anon(shadow, shadow + 0x1000, b"---p", 0),
            anon(shadow + 0x1000, shadow + 0x2000, b"rw-p", 0x1000),
            anon(shadow + 0x2000, shadow + 0x3000, b"---p", 0),
            anon(shadow + 0x3000, shadow + 0x4000, b"rw-p", 0x1000),
            anon(shadow + 0x4000, shadow + (16 << 30), b"---p", 0),
            anon(pools, pools + 0x4000, b"---p", 0),
            anon(pools + 0x4000, pools + 0x10_8000, b"rw-p", 0x10_4000),
            anon(pools + 0x10_8000, brp + 0x2000, b"---p", 0),
            anon(brp + 0x2000, brp + 0x3000, b"rw-p", 0x1000),
            anon(brp + 0x3000, brp + 0x4000, b"---p", 0),
            anon(brp + 0x4000, brp + 0x1f_4000, b"rw-p", 0x1f_0000),
            anon(brp + 0x1f_4000, brp + (16 << 30), b"---p", 0),
            anon(cage - (64 << 30), cage, b"---p", 0),
            anon(cage, cage + 0x1_0000, b"r--p", 0x1_0000),
            anon(cage + 0x1_0000, cage + 0x100_0000, b"---p", 0),
            anon(cage + 0x100_0000, cage + 0x11a_2000, b"rw-p", 0x1a_2000),
            anon(cage + 0x11a_2000, cage + 0x11c_0000, b"rw-p", 0x1_e000),
            anon(cage + 0x11c_0000, cage + (1 << 40), b"---p", 0),
            anon(trusted, trusted + 0x100_0000, b"---p", 0),
            anon(
                trusted + 0x100_0000,
                trusted + 0x104_0000,
                b"rw-p",
                0x4_0000,
            ),
            anon(trusted + 0x104_0000, trusted + (1 << 30), b"---p", 0),
            anon(oilpan, oilpan + 0x200_0000, b"---p", 0),
            anon(oilpan + 0x200_0000, oilpan + 0x24e_0000, b"rw-p", 0x4e_0000),
            anon(oilpan + 0x24e_0000, oilpan + (16 << 30), b"---p", 0),
            anon(0x555c_6c7c_0000, 0x555c_8c7c_0000, b"rwxp", 0x2_8000),
        ]
    }

    fn find<'a>(r: &'a [Region], prefix: &str) -> &'a Region {
        r.iter()
            .find(|r| r.details.starts_with(prefix))
            .unwrap_or_else(|| panic!("no region {prefix}: {r:#?}"))
    }

    #[test]
    fn renderer_layout() {
        let r = classify_exe(EXE, renderer());
        let pools = find(&r, "PartitionAlloc core pools");
        assert_eq!(
            (pools.memory_type, pools.confidence, pools.details.as_str()),
            (
                MemoryType::Heap,
                Confidence::High,
                "PartitionAlloc core pools (regular, then BackupRefPtr): 2 super pages, 3.0 MiB committed of 32 GiB reserved"
            )
        );
        let parts: Vec<&str> = pools
            .sub_blocks
            .iter()
            .map(|s| s.details.as_str())
            .collect();
        assert_eq!(
            parts,
            [
                "regular pool: reserved",
                "regular pool: super page slot spans",
                "regular pool: reserved",
                "BackupRefPtr pool: super page metadata",
                "BackupRefPtr pool: reserved",
                "BackupRefPtr pool: super page slot spans",
                "BackupRefPtr pool: reserved",
            ]
        );
        let shadow = find(&r, "PartitionAlloc shadow metadata");
        assert_eq!(shadow.details, "PartitionAlloc shadow metadata (2 pages)");
        let cage = find(&r, "V8 pointer-compression cage");
        assert_eq!(cage.memory_type, MemoryType::ManagedHeap);
        // The VMAs wholly inside the 4 GiB: the sandbox's reservation
        // after it reaches further and is left alone.
        assert_eq!(cage.sub_blocks.len(), 4);
        assert_eq!(cage.sub_blocks[0].details, "read-only space");
        assert_eq!(
            find(&r, "V8 trusted range").details,
            "V8 trusted range (256 KiB committed)"
        );
        let code = find(&r, "V8 code range");
        assert_eq!(
            (code.memory_type, code.details.as_str()),
            (MemoryType::ManagedHeap, "V8 code range (512 MiB)")
        );
        let oilpan = find(&r, "Oilpan (cppgc) caged heap");
        assert_eq!(
            (oilpan.memory_type, oilpan.details.as_str()),
            (
                MemoryType::ManagedHeap,
                "Oilpan (cppgc) caged heap (4.9 MiB committed)"
            )
        );
    }

    /// The same layout in a process that is not Chromium is left alone:
    /// the rules run only where Chromium's allocators are linked in.
    #[test]
    fn not_chromium() {
        let r = classify_exe("/usr/bin/other", renderer());
        assert!(r
            .iter()
            .all(|r| r.memory_type == MemoryType::PrivateData || &*r.path == "/usr/bin/other"));
    }

    /// A 16 GiB-aligned pool whose committed memory starts on a super
    /// page's guard page is not PartitionAlloc's, and, not in whole
    /// 128 KiB pages, not Oilpan's either.
    #[test]
    fn broken_layout_is_left_alone() {
        let base = 0x13f0_0000_0000u64;
        let maps = vec![
            anon(base, base + 0x1000, b"rw-p", 0x1000),
            anon(base + 0x1000, base + (16 << 30), b"---p", 0),
        ];
        let r = classify_exe(EXE, maps);
        assert!(r[1..]
            .iter()
            .all(|r| r.memory_type == MemoryType::PrivateData));
    }
}
