//! V8's sandbox handle tables inside Chromium: the external, trusted and
//! code pointer tables and the JS dispatch table (`ExternalEntityTable`).
//! Each reserves a fixed power-of-two range at start
//! (`kExternalPointerTableReservationSize` 512 MiB, or 1 GiB in newer
//! builds and 128 MiB in older ones, the trusted pointer table 64 MiB, the
//! code pointer table 128 MiB, the JS dispatch table 256 MiB) and commits
//! it in segments of 64 KiB (`kSegmentSize`). The first segment holds the
//! null entry and is sealed read-only, so each table shows as a `r--p`
//! mapping of exactly 64 KiB at the start of its reservation, followed by
//! `rw-p` segments and the `---p` rest. A renderer has several (one set per
//! isolate and for the shared space); each is a few 64 KiB segments
//! resident.

use super::{mib, Claim, Claimer};
use crate::model::{Confidence, Region};

/// `kSegmentSize`.
const SEGMENT: u64 = 64 << 10;
/// The reservation sizes of the tables, in every build seen.
const RESERVATIONS: [u64; 5] = [64 << 20, 128 << 20, 256 << 20, 512 << 20, 1 << 30];

/// Claims every table: a run of free anonymous VMAs from a read-only
/// segment of exactly 64 KiB, the rest `rw-p` or `---p` on segment
/// boundaries, spanning exactly one of [`RESERVATIONS`].
pub(super) fn plan(c: &mut Claimer<'_>) {
    let sealed =
        |r: &Region| &r.perms.0 == b"r--p" && r.size() == SEGMENT && r.start % SEGMENT == 0;
    let segments = |r: &Region| {
        (&r.perms.0 == b"rw-p" || r.perms.none()) && r.start % SEGMENT == 0 && r.end % SEGMENT == 0
    };
    c.scan_free_runs(
        sealed,
        |r| sealed(r) || segments(r),
        |c, i, len| {
            let start = c.regions[i].start;
            // The table is the first VMA and the segments after it, up to
            // the next sealed segment (where the next table begins).
            let mut k = 1;
            while k < len && !sealed(&c.regions[i + k]) {
                k += 1;
            }
            // The reservation ends at a VMA's end. (When the kernel has
            // merged its unused rest with a PROT_NONE neighbour, where it
            // ends is not known, and nothing is claimed.)
            let Some(take) = (1..=k)
                .rev()
                .find(|&n| RESERVATIONS.contains(&c.span(i, n)))
            else {
                return 1;
            };
            let span = c.span(i, take);
            let committed = c.committed(i, take);
            c.claim(
                i,
                take,
                Claim::managed_heap(
                    format!(
                        "V8 pointer table ({} reserved, {} committed)",
                        mib(span),
                        mib(committed)
                    ),
                    format!("Chromium executable (V8 with its sandbox); anonymous reservation from {start:#x} of exactly {} (the size of one of V8's handle tables: external, trusted or code pointer table, JS dispatch table) that begins with a read-only segment of 64 KiB (the table's sealed null entry) and is committed in 64 KiB segments", mib(span)),
                )
                .confidence(Confidence::Medium),
            );
            take
        },
    );
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::{context, shared_object, FakeInspector};
    use crate::model::MemoryType;

    const MB: u64 = 1 << 20;

    #[test]
    fn tables_are_read_only_segment_then_segments_of_their_reservation() {
        let exe = "/usr/lib/chromium/chromium";
        let t = 0x7f80_003e_0000u64;
        let maps = vec![
            file(0x5000_0000, 0x5100_0000, b"r-xp", 9, exe),
            // A 512 MiB table with two segments committed, a 64 MiB one
            // right after it, then, past a gap, 64 MiB that does not start
            // sealed.
            anon(t, t + 0x1_0000, b"r--p", 64 << 10),
            anon(t + 0x1_0000, t + 0x3_0000, b"rw-p", 128 << 10),
            anon(t + 0x3_0000, t + 512 * MB, b"---p", 0),
            anon(t + 512 * MB, t + 512 * MB + 0x1_0000, b"r--p", 64 << 10),
            anon(t + 512 * MB + 0x1_0000, t + 576 * MB, b"---p", 0),
            anon(t + 600 * MB, t + 664 * MB, b"---p", 0),
            // A 256 MiB table whose rest the kernel merged with the next
            // reservation of 128 MiB: where it ends is not known.
            anon(t + 2048 * MB, t + 2048 * MB + 0x1_0000, b"r--p", 64 << 10),
            anon(t + 2048 * MB + 0x1_0000, t + 2432 * MB, b"---p", 0),
            // Sealed, but 100 MiB: no table's size.
            anon(t + 700 * MB, t + 700 * MB + 0x1_0000, b"r--p", 64 << 10),
            anon(t + 700 * MB + 0x1_0000, t + 800 * MB, b"---p", 0),
        ];
        let mut fake = FakeInspector::default();
        fake.files.insert(exe.into(), shared_object());
        let (r, _) = classify(maps, &context(), &mut fake);
        let tables: Vec<(&str, u64)> = r
            .iter()
            .filter(|g| g.details.starts_with("V8 pointer table"))
            .map(|g| (g.details.as_str(), g.end - g.start))
            .collect();
        assert_eq!(
            tables,
            [
                (
                    "V8 pointer table (512 MiB reserved, 192 KiB committed)",
                    512 * MB
                ),
                (
                    "V8 pointer table (64 MiB reserved, 64 KiB committed)",
                    64 * MB
                ),
            ]
        );
        assert!(r
            .iter()
            .filter(|g| g.start >= t + 576 * MB)
            .all(|g| g.memory_type == MemoryType::PrivateData));
    }
}
