//! V8 (node). V8's heap is made of pages of 256 KiB (`kPageSize`), each
//! aligned to its size so that an object's page is `addr & ~(256K - 1)`;
//! large objects get a page of their own, of any size, with the same
//! alignment. Pages come from `mmap` at random hint addresses below
//! 2^46 on x64 (`GetRandomMmapAddr`), far from where glibc's mappings
//! grow down from 0x7f…, and freed pages are kept reserved (`---p`) for
//! reuse. The code range is one reservation of 128 MiB, or 512 MiB
//! without pointer compression, whose committed parts are executable.
//! When the code range lies too far from the executable for short calls,
//! V8 remaps the embedded builtins (a piece of the `node` file) into it,
//! so a file mapping may sit inside the range. With pointer compression
//! the whole heap lives in a 4 GiB cage aligned to 4 GiB (Debian's node is
//! built without it). A Wasm memory with guard regions is one reservation
//! of 10 GiB (`kFullGuardSize` on 64-bit): 2 GiB of negative guard, then
//! the memory's base, whose committed pages grow upwards, then the rest of
//! its 8 GiB.

use super::{gib, mib, Claim, Claimer, Context};
use crate::model::Confidence;

const PAGE: u64 = 256 << 10;
/// Above this V8 does not place its pages (x64 `kAllocationRandomAddressMax`).
const HINT_MAX: u64 = 1 << 46;
const CAGE: u64 = 4 << 30;
const CODE_RANGES: [u64; 2] = [128 << 20, 512 << 20];
const WASM_MIN: u64 = 8 << 30;
/// A Wasm memory's guard region below its base.
const WASM_NEGATIVE_GUARD: u64 = 2 << 30;
/// A Wasm memory's whole reservation, guards included.
const WASM_FULL: u64 = 10 << 30;

pub(super) fn plan_pages(c: &mut Claimer<'_>, ctx: &Context<'_>) {
    let hint_max = if ctx.pointer_width == 8 {
        HINT_MAX
    } else {
        u64::MAX
    };
    plan_reservations(c);
    for i in 0..c.regions.len() {
        if !c.free(i) {
            continue;
        }
        let r = &c.regions[i];
        if r.start % PAGE != 0 {
            continue;
        }
        let size = r.size();
        // Above the hint range a 256 KiB boundary is chance (1 in 64 for a
        // thread stack): those pages are left alone.
        let low = r.end <= hint_max;
        if !low {
            continue;
        }
        let (details, confidence) = match (r.perms.none(), size % PAGE == 0) {
            (true, true) => (
                format!("V8 pages reserved for reuse ({})", mib(size)),
                Confidence::High,
            ),
            (false, _) if size == PAGE => ("V8 heap page".to_string(), Confidence::High),
            (false, _) => (
                format!("V8 large object or read-only page ({})", mib(size)),
                Confidence::Medium,
            ),
            (true, false) => continue,
        };
        let evidence = "node (V8) is loaded and the mapping starts on a 256 KiB page boundary below 2^46, where V8 places its heap pages";
        c.claim(
            i,
            1,
            Claim::managed_heap(details, evidence).confidence(confidence),
        );
    }
}

/// Whether VMA `k` is the embedded builtins V8 remapped from the `node`
/// file into its code range: an executable file mapping of node, on its
/// own (the image pass made it an image of one mapping).
fn remapped_builtins(c: &Claimer<'_>, k: usize) -> bool {
    let r = &c.regions[k];
    let name = r.path.rsplit('/').next().unwrap_or_default();
    let alone = |j: usize| {
        c.regions
            .get(j)
            .is_none_or(|n| n.inode != r.inode || n.dev_major != r.dev_major)
    };
    r.inode != 0
        && r.perms.exec()
        && !r.perms.write()
        && (name == "node" || name == "nodejs" || name.starts_with("libnode.so"))
        && (k == 0 || alone(k - 1))
        && alone(k + 1)
}

/// The code range: a run of free VMAs (and remapped builtins) from a
/// 256 KiB boundary with executable anonymous memory, of exactly one of
/// the code range sizes.
fn plan_code_range(c: &mut Claimer<'_>) {
    let n = c.regions.len();
    let mut i = 0;
    while i < n {
        if !c.free(i) || c.regions[i].start % PAGE != 0 {
            i += 1;
            continue;
        }
        let start = c.regions[i].start;
        let mut j = i;
        let mut found = None;
        while j < n
            && (j == i || c.regions[j].start == c.regions[j - 1].end)
            && (c.free(j) || remapped_builtins(c, j))
        {
            let span = c.regions[j].end - start;
            if CODE_RANGES.contains(&span) {
                found = Some((j + 1 - i, span));
            }
            if span >= CODE_RANGES[1] {
                break;
            }
            j += 1;
        }
        let has_code = |len: usize| (i..i + len).any(|k| c.free(k) && c.regions[k].perms.exec());
        let Some((len, span)) = found.filter(|&(len, _)| has_code(len)) else {
            i += 1;
            continue;
        };
        let mut remapped = false;
        for k in i..i + len {
            if !c.free(k) {
                // The image pass made it an image of its own: it joins the
                // code range instead.
                c.plan.ungroup_single(k);
                c.regions[k].details = "embedded builtins remapped from the node executable".into();
                remapped = true;
            }
        }
        let evidence = if remapped {
            "node (V8) is loaded and this range, executable anonymous memory with the embedded builtins remapped from the node file inside, has the size of V8's code range reservation"
        } else {
            "node (V8) is loaded and this executable anonymous range has the size of V8's code range reservation"
        };
        c.claim(
            i,
            len,
            Claim::managed_heap(format!("V8 code range ({})", mib(span)), evidence),
        );
        i += len;
    }
}

/// Wasm memories with guard regions: a committed (`rw-p`) base that has
/// exactly 2 GiB of free `---p` memory below it and free memory up to
/// 8 GiB above it, committed from the base up and reserved after. The
/// VMAs wholly inside the 10 GiB are claimed (the kernel may have merged
/// an edge with a neighbouring reservation).
fn plan_wasm(c: &mut Claimer<'_>) {
    let n = c.regions.len();
    for b in 1..n {
        let base = c.regions[b].start;
        if !c.free(b) || c.regions[b].perms.none() || base < WASM_NEGATIVE_GUARD {
            continue;
        }
        let start = base - WASM_NEGATIVE_GUARD;
        let end = start + WASM_FULL;
        // Below the base: free reserved memory back to `start`.
        let mut first = b;
        while first > 0
            && c.regions[first - 1].end == c.regions[first].start
            && c.free(first - 1)
            && c.regions[first - 1].perms.none()
            && c.regions[first].start > start
        {
            first -= 1;
        }
        if c.regions[first].start > start {
            continue;
        }
        // Above it: committed, then reserved, up to `end`.
        let mut last = b;
        let mut reserved = false;
        let mut ok = true;
        while c.regions[last].end < end {
            let k = last + 1;
            if k >= n || c.regions[k].start != c.regions[last].end || !c.free(k) {
                ok = false;
                break;
            }
            let none = c.regions[k].perms.none();
            if reserved && !none {
                ok = false;
                break;
            }
            reserved |= none;
            last = k;
        }
        if !ok {
            continue;
        }
        let lo = first + usize::from(c.regions[first].start < start);
        let hi = last + usize::from(c.regions[last].end == end);
        if hi <= lo {
            continue;
        }
        let committed = c.committed(b, last + 1 - b);
        for k in lo..hi {
            let r = &mut c.regions[k];
            r.details = if r.end <= base {
                "guard region below the Wasm memory (2 GiB)".into()
            } else if r.perms.none() {
                "reserved (the Wasm memory's room to grow and its guard)".into()
            } else {
                "the Wasm memory's committed pages".into()
            };
        }
        c.claim(
            lo,
            hi - lo,
            Claim::managed_heap(
                format!(
                    "Wasm memory at {base:#x} ({} committed, 10 GiB reserved with guards)",
                    mib(committed)
                ),
                "node (V8) is loaded and this is a committed base with exactly 2 GiB of reserved memory below it and reserved memory up to 8 GiB above: V8's 10 GiB reservation of a WebAssembly memory with guard regions",
            ),
        );
    }
}

/// The code range, the pointer compression cage and Wasm reservations.
fn plan_reservations(c: &mut Claimer<'_>) {
    plan_code_range(c);
    plan_wasm(c);
    c.scan_free_runs(|_| true, |_| true, |c, i, len| {
        let start = c.regions[i].start;
        let span = c.span(i, len);
        let all_reserved = c.regions[i..i + len].iter().all(|r| r.perms.none());
        let found = if span == CAGE && start % CAGE == 0 {
            Some((
                "V8 pointer compression cage (4 GiB)".to_string(),
                "node (V8) is loaded and this is a 4 GiB range aligned to 4 GiB: V8's pointer compression cage",
                Confidence::High,
            ))
        } else if all_reserved && span >= WASM_MIN {
            Some((
                format!("Wasm memory reservation ({})", gib(span)),
                "node (V8) is loaded and this PROT_NONE reservation of 8 GiB or more is the guard region V8 reserves around a WebAssembly memory",
                Confidence::Medium,
            ))
        } else {
            None
        };
        if let Some((details, evidence, confidence)) = found {
            c.claim(i, len, Claim::managed_heap(details, evidence).confidence(confidence));
        }
        len
    });
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::FakeInspector;

    /// Classifies `maps` of a process whose executable is `/usr/bin/node`.
    fn classify_node(maps: Vec<crate::proc::smaps::Mapping>) -> Vec<crate::model::Region> {
        let mut fake = FakeInspector::default();
        fake.files.insert(
            "/usr/bin/node".into(),
            crate::classify::testutil::shared_object(),
        );
        let ctx = crate::classify::testutil::context();
        classify(maps, &ctx, &mut fake).0
    }

    use crate::model::{Confidence, MemoryType};

    /// Shortened from `node --max-old-space-size=128` (Debian's node 20,
    /// without pointer compression).
    #[test]
    fn node_20_pages_and_code_range() {
        let code = 0x7efc_fefc_0000u64;
        let maps = vec![
            file(0x40_0000, 0xb6_f000, b"r-xp", 3, "/usr/bin/node"),
            anon(0x0040_f488_0000, 0x0040_f48c_0000, b"rw-p", 0x4_0000),
            anon(0x0083_218c_0000, 0x0083_2190_0000, b"---p", 0),
            anon(0xfe0_174c_0000, 0xfe0_176b_9000, b"rw-p", 0x1f_9000),
            anon(0x7efc_e800_0000, 0x7efc_e800_1000, b"rw-p", 0x1000),
            anon(code, code + 0x2000, b"rw-p", 0x2000),
            anon(code + 0x2000, code + 0x3000, b"---p", 0),
            anon(code + 0x3000, code + 0x3f000, b"rwxp", 0x4000),
            anon(code + 0x3f000, code + (512 << 20), b"---p", 0),
        ];
        let r = classify_node(maps);
        assert_eq!(r[1].details, "V8 heap page");
        assert_eq!(r[1].confidence, Confidence::High);
        assert_eq!(r[2].details, "V8 pages reserved for reuse (256 KiB)");
        assert!(r[3].details.starts_with("V8 large object"));
        assert_eq!(
            r[4].memory_type,
            MemoryType::PrivateData,
            "not page-aligned"
        );
        assert_eq!(
            (r[5].details.as_str(), r[5].sub_blocks.len()),
            ("V8 code range (512 MiB)", 4)
        );
    }

    /// A pointer compression cage (not in Debian's node: a fixture), a
    /// Wasm memory as node 20 reserves it, and a code range with the
    /// embedded builtins remapped from the node file inside it.
    #[test]
    fn cage_wasm_and_remapped_builtins() {
        const G: u64 = 1 << 30;
        let cage = 0x3e00_0000_0000u64;
        let wasm = 0x7fa0_2c00_0000u64;
        let code = 0x7fa2_ac00_0000u64;
        let maps = vec![
            file(0x40_0000, 0xb6_f000, b"r-xp", 3, "/usr/bin/node"),
            anon(cage, cage + (1 << 20), b"rw-p", 1 << 20),
            anon(cage + (1 << 20), cage + 4 * G, b"---p", 0),
            anon(wasm, wasm + 2 * G, b"---p", 0),
            anon(wasm + 2 * G, wasm + 2 * G + 0x1_0000, b"rw-p", 0x1000),
            anon(wasm + 2 * G + 0x1_0000, wasm + 10 * G, b"---p", 0),
            anon(code, code + 0x2000, b"rw-p", 0x2000),
            anon(code + 0x2000, code + 0x3000, b"---p", 0),
            anon(code + 0x3000, code + 0x3f000, b"rwxp", 0x4000),
            anon(code + 0x3f000, code + 0x1fe4_0000, b"---p", 0),
            file(
                code + 0x1fe4_0000,
                code + 0x1ffd_2000,
                b"r-xp",
                3,
                "/usr/bin/node",
            ),
            anon(code + 0x1ffd_2000, code + (512 << 20), b"---p", 0),
        ];
        let r = classify_node(maps);
        assert_eq!(r[1].details, "V8 pointer compression cage (4 GiB)");
        assert_eq!(r[1].size(), 4 * G);
        assert_eq!(
            (r[2].details.as_str(), r[2].size(), r[2].confidence),
            (
                "Wasm memory at 0x7fa0ac000000 (64 KiB committed, 10 GiB reserved with guards)",
                10 * G,
                Confidence::High
            )
        );
        assert_eq!(
            (r[3].details.as_str(), r[3].sub_blocks.len()),
            ("V8 code range (512 MiB)", 6)
        );
        assert_eq!(
            r[3].sub_blocks[4].details,
            "embedded builtins remapped from the node executable"
        );
        assert_eq!(r.len(), 4);
    }
}
