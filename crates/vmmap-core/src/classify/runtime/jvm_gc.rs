//! HotSpot's GC side tables: card tables, block offset tables and mark
//! bitmaps. Each describes the Java heap at a fixed ratio (a card byte per
//! 512 heap bytes, a bitmap bit per 8-byte word) and HotSpot commits it
//! exactly where the heap is committed: the committed pages of a table are
//! the heap's committed ranges divided by its ratio, rounded out to pages.
//! That mirror of the heap is the signature, not the size alone (a size
//! such as 512 KiB is common; a run of reserved memory that repeats the
//! heap's commit pattern at 1/512 is not).
//!
//! Tables reserved one after the other lie next to each other (mmap hands
//! out addresses downwards), and the kernel merges the last committed page
//! of one with the first of the next into one VMA, so a table's edges are
//! often inside a VMA: the search works on addresses, anchored on the
//! VMA edge where the expected pattern first changes state.
//!
//! Layouts (JDK 17; the tables of one line are adjacent, lowest first):
//! - G1: card counts, card table, block offset table (heap/512 each; JDK
//!   20+ has no card counts); next and previous mark bitmaps (heap/64
//!   each; JDK 20+ one bitmap).
//! - Serial: the old generation's block offset table (old/512, old at the
//!   top of the heap), then the card table (heap/512 plus a guard page,
//!   always committed).
//! - Parallel: the old generation's object start array (old/512, old at
//!   the bottom), then the card table as Serial's.

use super::{mib, Claim, Claimer};
use crate::classify::Inspector;
use crate::model::Confidence;

/// A card covers 512 heap bytes.
const CARD: u64 = 512;
/// A mark bitmap has one bit per 8-byte heap word.
const BITMAP: u64 = 64;

/// The collector, from its counters or its command-line flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gc {
    G1,
    Serial,
    Parallel,
    /// No counters and no flag: G1 is the default on server-class
    /// machines, Serial on small ones; both layouts are tried.
    Unknown,
    /// ZGC, Shenandoah, Epsilon: no table rule.
    Other,
}

impl Gc {
    /// From `sun.gc.policy.name` (or the first collector's name).
    pub(super) fn from_policy(name: &str) -> Gc {
        match name {
            "GarbageFirst" => Gc::G1,
            "Copy:MSC" => Gc::Serial,
            "ParScav:MSC" => Gc::Parallel,
            _ => Gc::Other,
        }
    }

    /// From the JVM's arguments: the last `-XX:+UseXGC` wins.
    pub(super) fn from_args<'a>(args: impl Iterator<Item = &'a str>) -> Gc {
        let mut gc = Gc::Unknown;
        for a in args {
            gc = match a {
                "-XX:+UseG1GC" => Gc::G1,
                "-XX:+UseSerialGC" => Gc::Serial,
                "-XX:+UseParallelGC" => Gc::Parallel,
                "-XX:+UseZGC" | "-XX:+UseShenandoahGC" | "-XX:+UseEpsilonGC" => Gc::Other,
                _ => gc,
            };
        }
        gc
    }
}

/// The Java heap the tables describe.
pub(super) struct Heap {
    /// Bytes reserved.
    pub(crate) size: u64,
    /// Committed ranges, as offsets from the heap's start.
    pub(crate) committed: Vec<(u64, u64)>,
    /// The old generation's maximum size, when the counters give it.
    pub(crate) old: Option<u64>,
}

/// One table: its name, size and the part of the heap it mirrors.
struct Table {
    name: &'static str,
    size: u64,
    /// Heap bytes per table byte.
    ratio: u64,
    /// The heap range it covers, as offsets from the heap's start.
    covers: (u64, u64),
    /// A last page always committed (the card table's guard card).
    guard: bool,
}

impl Table {
    /// The committed ranges the table must have, as offsets into it.
    fn expected(&self, heap: &Heap, page: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &(a, b) in &heap.committed {
            let (a, b) = (a.max(self.covers.0), b.min(self.covers.1));
            if a >= b {
                continue;
            }
            let from = (a - self.covers.0) / self.ratio / page * page;
            let to = ((b - self.covers.0).div_ceil(self.ratio)).div_ceil(page) * page;
            push_range(&mut out, from, to.min(self.size));
        }
        if self.guard {
            push_range(&mut out, self.size - page, self.size);
        }
        out
    }
}

/// A block's length and its committed ranges, as offsets from its start.
type Pattern = (u64, Vec<(u64, u64)>);

/// Adds `[a, b)` to sorted, merged ranges (ranges come in address order).
fn push_range(out: &mut Vec<(u64, u64)>, a: u64, b: u64) {
    match out.last_mut() {
        Some(last) if a <= last.1 => last.1 = last.1.max(b),
        _ => out.push((a, b)),
    }
}

/// Tables reserved one after the other: one pattern, found as a whole.
struct Block {
    what: &'static str,
    tables: Vec<Table>,
    confidence: Confidence,
}

/// The tables one collector reserves for a heap: groups of tables that
/// are normally adjacent (tried as a whole first, then each table on its
/// own, since mmap may place each in a different hole).
struct Group {
    what: &'static str,
    /// The tables in address order when adjacent (JDK 17's layout).
    tables: Vec<Table>,
}

/// Finds the GC's tables of the heap and claims them. Returns how many
/// tables were found.
pub(super) fn plan_tables(
    c: &mut Claimer<'_>,
    inspector: &mut dyn Inspector,
    gc: Gc,
    heap: &Heap,
) -> usize {
    let page = c.page;
    let h = heap.size;
    let sized = |name, size: u64, ratio, covers, guard| Table {
        name,
        size: size.div_ceil(page) * page,
        ratio,
        covers,
        guard,
    };
    // HotSpot's card table has one card more than the heap needs (the
    // guard card), on a page of its own.
    let card_table = || sized("card table", h / CARD + 1, CARD, (0, h), true);
    let whole = |name, ratio: u64| sized(name, h / ratio, ratio, (0, h), false);
    let old_table =
        |name, covers: (u64, u64)| sized(name, (covers.1 - covers.0) / CARD, CARD, covers, false);
    let mut groups: Vec<Group> = Vec::new();
    if matches!(gc, Gc::G1 | Gc::Unknown) {
        groups.push(Group {
            what: "G1",
            tables: vec![
                whole("card counts table", CARD),
                whole("card table", CARD),
                whole("block offset table", CARD),
            ],
        });
        groups.push(Group {
            what: "G1",
            tables: vec![
                whole("next mark bitmap", BITMAP),
                whole("previous mark bitmap", BITMAP),
            ],
        });
    }
    let generational = |what, table: Table| Group {
        what,
        tables: vec![table, card_table()],
    };
    match (gc, heap.old.filter(|&o| o > 0 && o < h)) {
        (Gc::Serial, Some(o)) => groups.push(generational(
            "Serial",
            old_table("block offset table (old generation)", (h - o, h)),
        )),
        (Gc::Parallel, Some(o)) => groups.push(generational(
            "Parallel",
            old_table("object start array (old generation)", (0, o)),
        )),
        (Gc::Serial | Gc::Parallel | Gc::Unknown, _) => groups.push(Group {
            what: match gc {
                Gc::Serial => "Serial",
                Gc::Parallel => "Parallel",
                _ => "Serial or Parallel",
            },
            tables: vec![card_table()],
        }),
        _ => {}
    }
    let mut found = 0;
    for g in groups {
        found += plan_group(c, inspector, heap, g);
    }
    found
}

/// One group: its full layout found in exactly one place, else each table
/// on its own (JDK 20+ has fewer tables; mmap may place each table in a
/// different hole). Tables found on their own that turn out adjacent are
/// claimed together, so that a VMA the kernel merged across their common
/// edge is claimed too.
fn plan_group(c: &mut Claimer<'_>, inspector: &mut dyn Inspector, heap: &Heap, g: Group) -> usize {
    let tables = &g.tables;
    if tables.len() > 1 {
        let pattern = block_pattern(tables, heap, c.page);
        if let [start] = find_all(c, &pattern, false)[..] {
            let block = Block {
                what: g.what,
                tables: tables.iter().map(Table::copy).collect(),
                confidence: Confidence::High,
            };
            claim_block(c, &block, start);
            return tables.len();
        }
    }
    // Tables of one size and ratio look alike: their names can only come
    // from their contents. The strongest patterns go first, and a later
    // table may not overlap an earlier one: the old generation's part of
    // a card table repeats the old generation's block offset table.
    let mut kinds: Vec<(usize, Pattern, &Table)> = Vec::new();
    for t in tables {
        if kinds.iter().any(|k| same_kind(k.2, t)) {
            continue;
        }
        let pattern = block_pattern(&[t.copy()], heap, c.page);
        kinds.push((changes(&pattern), pattern, t));
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.0));
    let mut hits: Vec<(u64, Table)> = Vec::new();
    for (_, pattern, t) in &kinds {
        let alike: Vec<&Table> = tables.iter().filter(|u| same_kind(u, t)).collect();
        let starts: Vec<u64> = find_all(c, pattern, true)
            .into_iter()
            .filter(|&s| {
                !hits
                    .iter()
                    .any(|(h, ht)| s < h + ht.size && *h < s + t.size)
            })
            .collect();
        if starts.is_empty() || starts.len() > alike.len() {
            continue;
        }
        for start in starts {
            let name = if alike.len() == 1 {
                t.name
            } else {
                name_by_contents(c, inspector, start, &pattern.1, &alike)
            };
            hits.push((start, Table { name, ..t.copy() }));
        }
    }
    hits.sort_by_key(|h| h.0);
    let found = hits.len();
    let mut k = 0;
    while k < hits.len() {
        let start = hits[k].0;
        let mut end = start + hits[k].1.size;
        let mut block = Block {
            what: g.what,
            tables: vec![hits[k].1.copy()],
            confidence: Confidence::Medium,
        };
        k += 1;
        while k < hits.len() && hits[k].0 == end {
            end += hits[k].1.size;
            block.tables.push(hits[k].1.copy());
            k += 1;
        }
        claim_block(c, &block, start);
    }
    found
}

/// Which of several tables of one size this is, from its first committed
/// bytes: HotSpot clears a card table to clean cards (0xff) as it commits
/// it, while block offset tables, card counts and bitmaps start zeroed.
fn name_by_contents(
    c: &Claimer<'_>,
    inspector: &mut dyn Inspector,
    start: u64,
    pattern: &[(u64, u64)],
    alike: &[&Table],
) -> &'static str {
    let has_card_table = alike.iter().any(|t| t.name == "card table");
    let mut buf = vec![0u8; c.page as usize];
    let first = pattern.first().map_or(0, |r| r.0);
    if has_card_table && inspector.read_memory(start + first, &mut buf) {
        if buf.contains(&0xff) {
            return "card table";
        }
        return "block offset table or card counts table";
    }
    if alike.iter().all(|t| t.ratio == BITMAP) {
        return "mark bitmap";
    }
    "card table, block offset table or card counts table"
}

impl Table {
    fn copy(&self) -> Table {
        Table { ..*self }
    }
}

/// Tables of one size, ratio and coverage: alike in every pattern.
fn same_kind(a: &Table, b: &Table) -> bool {
    (a.size, a.ratio, a.covers, a.guard) == (b.size, b.ratio, b.covers, b.guard)
}

/// How often a pattern changes between committed and reserved inside.
fn changes((len, pattern): &Pattern) -> usize {
    pattern
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|&x| x > 0 && x < *len)
        .count()
}

/// The concatenated expected pattern of adjacent tables: their total size
/// and committed ranges, as offsets from the first one's start.
fn block_pattern(tables: &[Table], heap: &Heap, page: u64) -> Pattern {
    let mut at = 0;
    let mut out = Vec::new();
    for t in tables {
        for (a, b) in t.expected(heap, page) {
            push_range(&mut out, at + a, at + b);
        }
        at += t.size;
    }
    (at, out)
}

/// Every start where the pattern matches. With `edge`, a pattern with a
/// single change of state (a committed prefix, the rest reserved) must
/// also begin or end where a VMA does: it fits inside many a larger
/// reservation (a glibc arena, say), but there its edges fall inside VMAs.
fn find_all(c: &Claimer<'_>, (len, pattern): &Pattern, edge: bool) -> Vec<u64> {
    let edge = edge && changes(&(*len, pattern.clone())) < 2;
    let len = *len;
    // The first place inside the block where committed and reserved meet;
    // a pattern without one (all committed or all reserved) says nothing.
    let (anchor, rising) = match pattern.first() {
        Some(&(0, b)) if b < len => (b, false),
        Some(&(a, _)) if a > 0 => (a, true),
        _ => return Vec::new(),
    };
    let mut hits = Vec::new();
    for k in 1..c.regions.len() {
        let (lo, hi) = (&c.regions[k - 1], &c.regions[k]);
        if lo.end != hi.start || lo.perms.none() == hi.perms.none() {
            continue;
        }
        // Rising: reserved below the edge, committed above.
        if lo.perms.none() != rising {
            continue;
        }
        let Some(start) = hi.start.checked_sub(anchor) else {
            continue;
        };
        let at_edge = || {
            let first = c.regions.partition_point(|r| r.end <= start);
            let last = c.regions.partition_point(|r| r.end < start + len);
            c.regions.get(first).is_some_and(|r| r.start == start)
                || c.regions.get(last).is_some_and(|r| r.end == start + len)
        };
        if matches(c, start, len, pattern) && !hits.contains(&start) && (!edge || at_edge()) {
            hits.push(start);
        }
    }
    hits
}

/// Whether `[start, start + len)` is free anonymous memory committed
/// exactly on `pattern` (offsets from `start`).
fn matches(c: &Claimer<'_>, start: u64, len: u64, pattern: &[(u64, u64)]) -> bool {
    let end = start + len;
    let mut k = c.regions.partition_point(|r| r.end <= start);
    let mut at = start;
    // The committed ranges seen, as offsets.
    let mut seen: Vec<(u64, u64)> = Vec::new();
    while at < end {
        let Some(r) = c.regions.get(k) else {
            return false;
        };
        if r.start > at || !c.free(k) || r.perms.exec() {
            return false;
        }
        let to = r.end.min(end);
        if !r.perms.none() {
            if !(r.perms.read() && r.perms.write()) {
                return false;
            }
            push_range(&mut seen, at - start, to - start);
        }
        at = to;
        k += 1;
    }
    seen == pattern
}

/// Claims the VMAs that lie wholly inside the block as one region whose
/// sub-blocks name the tables they hold.
fn claim_block(c: &mut Claimer<'_>, block: &Block, start: u64) {
    let len: u64 = block.tables.iter().map(|t| t.size).sum();
    let end = start + len;
    let first = c.regions.partition_point(|r| r.start < start);
    let mut last = first;
    while last < c.regions.len() && c.regions[last].end <= end {
        last += 1;
    }
    if last == first {
        return;
    }
    // Where each table starts.
    let mut bounds = Vec::new();
    let mut at = start;
    for t in &block.tables {
        bounds.push((at, at + t.size, t.name));
        at += t.size;
    }
    for r in &mut c.regions[first..last] {
        let names: Vec<&str> = bounds
            .iter()
            .filter(|(a, b, _)| r.start < *b && r.end > *a)
            .map(|(_, _, n)| *n)
            .collect();
        let state = if r.perms.none() {
            "reserved"
        } else {
            "committed"
        };
        r.details = format!("{state}: {}", names.join(" + "));
    }
    let tables: Vec<String> = bounds
        .iter()
        .map(|(a, b, n)| format!("{n} at {a:#x} ({})", mib(b - a)))
        .collect();
    let what = block.what;
    let ratios: Vec<String> = block
        .tables
        .iter()
        .map(|t| format!("1/{}", t.ratio))
        .collect();
    let ratios = ratios.join(", ");
    c.claim(
        first,
        last - first,
        Claim::managed_heap(
            format!("{what} GC tables: {}", tables.join(", ")),
            format!("libjvm.so is loaded and this range is committed exactly where the Java heap is committed, scaled by {ratios} and rounded to pages: the {what} collector's side {} of that heap{}", if block.tables.len() > 1 { "tables" } else { "table" }, if block.tables.len() > 1 { ", reserved next to each other" } else { "" }),
        )
        .confidence(block.confidence),
    );
}

#[cfg(test)]
mod tests {
    use super::super::testutil::anon;
    use super::*;
    use crate::classify::testutil::{context, FakeInspector};
    use crate::classify::Plan;
    use crate::model::{MemoryType, Region};

    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;

    /// `java -Xms64m -Xmx256m` with CDS: the first 64 MiB and the last
    /// 2 MiB of the heap committed.
    fn g1_heap() -> Heap {
        Heap {
            size: 256 * M,
            committed: vec![(0, 64 * M), (254 * M, 256 * M)],
            old: None,
        }
    }

    /// VMAs from `(start, end, committed)` triples.
    fn vmas(spec: &[(u64, u64, bool)]) -> Vec<Region> {
        spec.iter()
            .map(|&(a, b, rw)| {
                Region::from_mapping(anon(a, b, if rw { b"rw-p" } else { b"---p" }, 0))
            })
            .collect()
    }

    fn run(regions: &mut [Region], inspector: &mut FakeInspector) -> Vec<Region> {
        let mut plan = Plan::new(regions.len());
        let ctx = context();
        let mut c = Claimer::new(regions, &mut plan, &ctx);
        plan_tables(&mut c, inspector, Gc::G1, &g1_heap());
        plan.build(regions.to_vec())
    }

    /// G1's three 512 KiB tables side by side, the kernel having merged
    /// each table's last page with the next one's first, and the last with
    /// 2 MiB of something else; the bitmaps elsewhere.
    #[test]
    fn adjacent_g1_tables_named_by_position() {
        let t = 0x7f00_0000_0000u64;
        let b = 0x7f10_0000_0000u64;
        let mut regions = vmas(&[
            (t, t + 128 * K, true),
            (t + 128 * K, t + 508 * K, false),
            (t + 508 * K, t + 640 * K, true),
            (t + 640 * K, t + 1020 * K, false),
            (t + 1020 * K, t + 1152 * K, true),
            (t + 1152 * K, t + 1532 * K, false),
            (t + 1532 * K, t + 1536 * K + 2 * M, true),
            (b, b + M, true),
            (b + M, b + 4 * M - 32 * K, false),
            (b + 4 * M - 32 * K, b + 5 * M, true),
            (b + 5 * M, b + 8 * M - 32 * K, false),
            (b + 8 * M - 32 * K, b + 8 * M, true),
        ]);
        let r = run(&mut regions, &mut FakeInspector::default());
        assert_eq!(r[0].details, "G1 GC tables: card counts table at 0x7f0000000000 (512 KiB), card table at 0x7f0000080000 (512 KiB), block offset table at 0x7f0000100000 (512 KiB)");
        assert_eq!(r[0].confidence, Confidence::High);
        assert_eq!(
            r[0].sub_blocks.len(),
            6,
            "the VMA reaching past the tables is left out"
        );
        assert_eq!(
            r[0].sub_blocks[2].details,
            "committed: card counts table + card table"
        );
        assert_eq!(r[1].memory_type, MemoryType::PrivateData);
        assert_eq!(
            r[2].details,
            "G1 GC tables: next mark bitmap at 0x7f1000000000 (4 MiB), previous mark bitmap at 0x7f1000400000 (4 MiB)"
        );
        assert_eq!(
            r[2].sub_blocks[2].details,
            "committed: next mark bitmap + previous mark bitmap"
        );
    }

    /// The tables in three holes: each found alone; the card table by its
    /// clean cards, the other two only as "one of".
    #[test]
    fn scattered_g1_tables_named_by_contents() {
        let bases = [0x7f00_0000_0000u64, 0x7f01_0000_0000, 0x7f02_0000_0000];
        let mut spec = Vec::new();
        for t in bases {
            spec.extend([
                (t, t + 128 * K, true),
                (t + 128 * K, t + 508 * K, false),
                (t + 508 * K, t + 512 * K, true),
            ]);
        }
        // A reservation with a committed prefix only is no G1 table.
        let d = 0x7f03_0000_0000u64;
        spec.extend([(d, d + 128 * K, true), (d + 128 * K, d + 64 * M, false)]);
        let mut regions = vmas(&spec);
        let mut fake = FakeInspector::default();
        fake.memory.push((bases[1], vec![0xff; 4096]));
        fake.memory.push((bases[0], vec![0; 4096]));
        fake.memory.push((bases[2], vec![0; 4096]));
        let r = run(&mut regions, &mut fake);
        let names: Vec<&str> = r.iter().map(|r| r.details.as_str()).collect();
        assert_eq!(
            names[..3],
            [
                "G1 GC tables: block offset table or card counts table at 0x7f0000000000 (512 KiB)",
                "G1 GC tables: card table at 0x7f0100000000 (512 KiB)",
                "G1 GC tables: block offset table or card counts table at 0x7f0200000000 (512 KiB)",
            ]
        );
        assert!(r[..3].iter().all(|r| r.confidence == Confidence::Medium));
        assert!(r[3..]
            .iter()
            .all(|r| r.memory_type == MemoryType::PrivateData));
    }

    /// A table covering the whole of the tests' 256 MiB heap.
    fn whole_heap_table(name: &'static str, size: u64, ratio: u64, guard: bool) -> Table {
        Table {
            name,
            size,
            ratio,
            covers: (0, 256 * M),
            guard,
        }
    }

    #[test]
    fn g1_tables_mirror_the_heap() {
        // java -Xms64m -Xmx256m with CDS: the first 64 MiB and the last
        // 2 MiB of the heap committed.
        let heap = Heap {
            size: 256 * M,
            committed: vec![(0, 64 * M), (254 * M, 256 * M)],
            old: None,
        };
        let t = whole_heap_table("card table", 512 * K, CARD, false);
        assert_eq!(t.expected(&heap, 4096), [(0, 128 * K), (508 * K, 512 * K)]);
        let bitmap = whole_heap_table("mark bitmap", 4 * M, BITMAP, false);
        assert_eq!(
            bitmap.expected(&heap, 4096),
            [(0, M), (4 * M - 32 * K, 4 * M)]
        );
    }

    #[test]
    fn parallel_card_table_has_its_guard_page() {
        // From a real -XX:+UseParallelGC -Xmx256m: old [0, 43 MiB) and
        // young [171 MiB, 208 MiB) committed.
        let heap = Heap {
            size: 256 * M,
            committed: vec![(0, 43 * M), (171 * M, 208 * M)],
            old: Some(171 * M),
        };
        let t = whole_heap_table("card table", 516 * K, CARD, true);
        assert_eq!(
            t.expected(&heap, 4096),
            [(0, 88 * K), (0x55000, 0x68000), (512 * K, 516 * K)]
        );
    }

    #[test]
    fn collector_flags() {
        let args = ["-Xmx1g", "-XX:+UseSerialGC", "-XX:+UseParallelGC"];
        assert_eq!(Gc::from_args(args.into_iter()), Gc::Parallel);
        assert_eq!(Gc::from_args(["-Xmx1g"].into_iter()), Gc::Unknown);
        assert_eq!(Gc::from_policy("GarbageFirst"), Gc::G1);
        assert_eq!(Gc::from_policy("Shenandoah"), Gc::Other);
    }
}
