//! V8 (node). V8's heap is made of pages of 256 KiB (`kPageSize`), each
//! aligned to its size so that an object's page is `addr & ~(256K - 1)`;
//! large objects get a page of their own, of any size, with the same
//! alignment. Pages come from `mmap` at random hint addresses below
//! 2^46 on x64 (`GetRandomMmapAddr`), far from where glibc's mappings
//! grow down from 0x7f…, and freed pages are kept reserved (`---p`) for
//! reuse. The code range is one reservation of 128 MiB, or 512 MiB
//! without pointer compression, whose committed parts are executable.
//! With pointer compression the whole heap lives in a 4 GiB cage aligned
//! to 4 GiB; Wasm memories reserve 8 GiB or more of guard regions.

use std::borrow::Cow;

use super::{gib, mib, Claimer, Context};
use crate::model::{Confidence, MemoryType};

const PAGE: u64 = 256 << 10;
/// Above this V8 does not place its pages (x64 `kAllocationRandomAddressMax`).
const HINT_MAX: u64 = 1 << 46;
const CAGE: u64 = 4 << 30;
const CODE_RANGES: [u64; 2] = [128 << 20, 512 << 20];
const WASM_MIN: u64 = 8 << 30;

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
            MemoryType::ManagedHeap,
            details,
            Cow::Borrowed(evidence),
            confidence,
            None,
        );
    }
}

/// The code range, the pointer compression cage and Wasm reservations.
fn plan_reservations(c: &mut Claimer<'_>) {
    let mut i = 0;
    while i < c.regions.len() {
        let Some(len) = c.free_run(i, |_| true) else {
            i += 1;
            continue;
        };
        let start = c.regions[i].start;
        let span = c.span(i, len);
        let has_code = c.regions[i..i + len].iter().any(|r| r.perms.exec());
        let all_reserved = c.regions[i..i + len].iter().all(|r| r.perms.none());
        let found = if has_code && start % PAGE == 0 && CODE_RANGES.contains(&span) {
            Some((
                format!("V8 code range ({})", mib(span)),
                "node (V8) is loaded and this executable anonymous range has the size of V8's code range reservation",
                Confidence::High,
            ))
        } else if span == CAGE && start % CAGE == 0 {
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
            c.claim(
                i,
                len,
                MemoryType::ManagedHeap,
                details,
                Cow::Borrowed(evidence),
                confidence,
                None,
            );
        }
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::FakeInspector;

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
        let mut fake = FakeInspector::default();
        fake.files.insert(
            "/usr/bin/node".into(),
            crate::classify::testutil::shared_object(),
        );
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
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
}
