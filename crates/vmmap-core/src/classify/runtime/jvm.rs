//! HotSpot (libjvm.so). The JVM reserves each of its spaces as one
//! anonymous range of a size it knows and publishes in its performance
//! counters (hsperfdata, a file it maps shared into itself):
//! - the Java heap: `MaxHeapSize` bytes, committed in regions or
//!   generations inside (`sun.gc.generation.*` give their sizes); with CDS
//!   the archived heap objects are file mappings of `classes.jsa` inside it;
//! - the compressed class space: `CompressedClassSpaceSize` (1 GiB),
//!   `sun.gc.compressedclassspace.maxCapacity`;
//! - metaspace: nodes of 64 MiB (`sun.gc.metaspace.maxCapacity` is the
//!   class space plus the nodes reserved);
//! - the code cache: `ReservedCodeCacheSize` (240 MiB tiered), the only
//!   anonymous memory a JVM makes executable.
//!
//! The GC's card tables, block offset tables and mark bitmaps mirror the
//! heap's commit pattern at a fixed ratio (`jvm_gc`). Without counters
//! (`-XX:-UsePerfData`) the heap is the range of exactly the `-Xmx` of the
//! command line. What remains (the G1 mark stack, HotSpot's arenas and
//! other reservations) is the VM's own memory; it is claimed last, with a
//! low confidence, after glibc's chunks have been told apart.

use std::borrow::Cow;

use super::jvm_gc::{self, Gc, Heap};
use super::{gib, mib, Claim, Claimer};
use crate::classify::Inspector;
use crate::hsperfdata::{self, PerfData};
use crate::model::{Confidence, MemoryType, Region};

/// The most of the hsperfdata mapping read (HotSpot's default is 32 KiB).
const PERF_MAX: u64 = 1 << 20;
/// Metaspace's virtual space node size on 64-bit (16 root chunks of 4 MiB).
const METASPACE_NODE: u64 = 64 << 20;

/// What the exact round learnt, for the rest round.
#[derive(Debug, Default)]
pub(super) struct Jvm {
    perf: Option<PerfData>,
}

pub(super) fn plan_exact(c: &mut Claimer<'_>, inspector: &mut dyn Inspector) -> Jvm {
    let perf = read_perf(c, inspector);
    plan_code_cache(c);
    let zgc = plan_zgc_views(c);
    let args = command_line(inspector);
    let Some(p) = &perf else {
        // Without counters: the -Xmx of the command line, if it has one.
        let options = jvm_options(&args);
        let gc = Gc::from_args(options.iter().copied());
        let xmx = last_xmx(&options);
        if zgc || gc == Gc::Other {
            return Jvm { perf };
        }
        let found = match xmx {
            Some(x) => find_heap(c, &rounded_sizes(x)).map(|(i, len, size)| {
                (i, len, size, format!("this range spans exactly the maximum heap size ({size} bytes) that -Xmx ({x} bytes) on its command line gives, rounded as HotSpot aligns the heap"))
            }),
            None => find_low_heap(c).map(|(i, len, size)| {
                (i, len, size, format!("no -Xmx on its command line, and this is the reservation of {size} bytes below 32 GiB where HotSpot places a heap for compressed oops (nothing else maps anonymous memory that low in a JVM)"))
            }),
        };
        if let Some((i, len, size, why)) = found {
            let gc_name = match gc {
                Gc::Unknown => "collector unknown".to_string(),
                g => format!("{g:?}"),
            };
            c.claim(
                i,
                len,
                Claim::managed_heap(
                    format!("Java heap ({gc_name}, max {})", gib(size)),
                    format!(
                        "libjvm.so is loaded without hsperfdata counters (-XX:-UsePerfData); {why}"
                    ),
                )
                .confidence(Confidence::Medium),
            );
            plan_gc_tables(c, inspector, i, len, gc, None);
        }
        return Jvm { perf };
    };
    // Shenandoah and ZGC publish no policy name, only their collectors'.
    let gc = p
        .text("sun.gc.policy.name")
        .or_else(|| {
            p.text("sun.gc.collector.0.name")
                .and_then(|c| c.split_whitespace().next())
        })
        .unwrap_or("unknown GC")
        .to_string();
    let sizes: Vec<u64> = if zgc {
        Vec::new()
    } else {
        heap_sizes(p, &gc, c.page)
    };
    let heap = find_heap(c, &sizes);
    if let Some((i, len, size)) = heap {
        c.claim(
            i,
            len,
            Claim::managed_heap(
                format!("Java heap ({gc}, max {}){}", gib(size), generations(p)),
                format!("libjvm.so is loaded and this range spans exactly the maximum heap size ({size} bytes) its hsperfdata counters give"),
            ),
        );
    }
    if let Some(ccs) = p
        .bytes("sun.gc.compressedclassspace.maxCapacity")
        .filter(|&v| v > 0)
    {
        if let Some((i, len)) = c.exact_run(ccs, 64 << 10, |_| false) {
            let used = p.bytes("sun.gc.compressedclassspace.capacity").unwrap_or(0);
            c.claim(
                i,
                len,
                Claim::managed_heap(
                    format!("compressed class space ({} reserved, {} committed)", gib(ccs), mib(used)),
                    format!("libjvm.so is loaded and this range spans exactly the compressed class space size ({ccs} bytes) of sun.gc.compressedclassspace.maxCapacity"),
                ),
            );
        }
    }
    plan_metaspace(c, p);
    // Last: the tables' patterns are searched in what no other rule took.
    if let Some((i, len, _)) = heap {
        let old = p
            .bytes("sun.gc.generation.1.maxCapacity")
            .map(|v| v / c.page * c.page);
        plan_gc_tables(c, inspector, i, len, Gc::from_policy(&gc), old);
    }
    Jvm { perf }
}

/// ZGC maps its heap through a memfd named `java_heap`, once per colour
/// view (three on JDK 17), each followed by the reserved rest of that
/// view's range. Returns whether it found any.
fn plan_zgc_views(c: &mut Claimer<'_>) -> bool {
    let is_view = |r: &Region| r.path.starts_with("/memfd:java_heap") && r.perms.shared();
    let mut found = false;
    let mut i = 0;
    while i < c.regions.len() {
        if !is_view(&c.regions[i]) || c.plan.is_grouped(i) {
            i += 1;
            continue;
        }
        // ZGC maps the memfd page by page: a view is the run of its
        // mappings and the reserved gaps between and after them.
        let mut j = i + 1;
        while j < c.regions.len()
            && c.regions[j].start == c.regions[j - 1].end
            && !c.plan.is_grouped(j)
            && (is_view(&c.regions[j]) || (c.free(j) && c.regions[j].perms.none()))
        {
            j += 1;
        }
        let (start, span) = (c.regions[i].start, c.span(i, j - i));
        for r in &mut c.regions[i..j] {
            if is_view(r) {
                r.details = "committed (memfd java_heap)".into();
            }
        }
        c.claim(
            i,
            j - i,
            Claim::managed_heap(
                format!("Java heap (ZGC view at {start:#x}, {} reserved)", gib(span)),
                "libjvm.so is loaded and this is a view of the memfd ZGC names java_heap, with the reserved rest of the view's range",
            ),
        );
        found = true;
        i = j;
    }
    found
}

/// The first run of free VMAs (with CDS archive mappings) that spans one
/// of `sizes` exactly from a 64 KiB boundary; archive mappings are named.
fn find_heap(c: &mut Claimer<'_>, sizes: &[u64]) -> Option<(usize, usize, u64)> {
    let jsa = |r: &Region| r.inode != 0 && r.path.ends_with(".jsa") && !r.perms.shared();
    let (i, len, size) = sizes
        .iter()
        .find_map(|&s| c.exact_run(s, 64 << 10, jsa).map(|(i, len)| (i, len, s)))?;
    for r in &mut c.regions[i..i + len] {
        if r.inode != 0 {
            r.details = "archived heap objects (CDS, classes.jsa)".into();
        }
    }
    Some((i, len, size))
}

/// Compressed oops' limit: a heap that ends at or below 32 GiB can use
/// zero-based compressed pointers, and HotSpot places it there if it can.
const COMPRESSED_OOPS_END: u64 = 32 << 30;

/// The heap without its size: the largest run of free VMAs (with CDS
/// archive mappings) that ends at or below 32 GiB, from a 64 KiB
/// boundary, of at least 2 MiB. The launcher is position-independent, so
/// only the heap is mapped that low.
fn find_low_heap(c: &mut Claimer<'_>) -> Option<(usize, usize, u64)> {
    let jsa = |r: &Region| r.inode != 0 && r.path.ends_with(".jsa") && !r.perms.shared();
    let usable = |c: &Claimer<'_>, k: usize| {
        let r = &c.regions[k];
        !r.perms.exec() && (c.free(k) || (!c.plan.is_grouped(k) && jsa(r)))
    };
    let mut best: Option<(usize, usize, u64)> = None;
    let mut i = 0;
    while i < c.regions.len() && c.regions[i].end <= COMPRESSED_OOPS_END {
        if !usable(c, i) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < c.regions.len()
            && c.regions[j].end <= COMPRESSED_OOPS_END
            && c.regions[j].start == c.regions[j - 1].end
            && usable(c, j)
        {
            j += 1;
        }
        let span = c.span(i, j - i);
        if c.regions[i].start % (64 << 10) == 0
            && span >= 2 << 20
            && best.is_none_or(|b| span > b.2)
        {
            best = Some((i, j - i, span));
        }
        i = j;
    }
    let (i, len, size) = best?;
    for r in &mut c.regions[i..i + len] {
        if r.inode != 0 {
            r.details = "archived heap objects (CDS, classes.jsa)".into();
        }
    }
    Some((i, len, size))
}

/// The GC's side tables of the heap claimed at VMAs `i..i + len`.
fn plan_gc_tables(
    c: &mut Claimer<'_>,
    inspector: &mut dyn Inspector,
    i: usize,
    len: usize,
    gc: Gc,
    old: Option<u64>,
) {
    let base = c.regions[i].start;
    let mut committed: Vec<(u64, u64)> = Vec::new();
    for r in c.regions[i..i + len].iter().filter(|r| !r.perms.none()) {
        match committed.last_mut() {
            Some(last) if last.1 == r.start - base => last.1 = r.end - base,
            _ => committed.push((r.start - base, r.end - base)),
        }
    }
    let heap = Heap {
        size: c.span(i, len),
        committed,
        old,
    };
    jvm_gc::plan_tables(c, inspector, gc, &heap);
}

/// The JVM's arguments from `/proc/PID/cmdline`.
fn command_line(inspector: &mut dyn Inspector) -> Vec<String> {
    inspector
        .proc_file("cmdline")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The launcher's options that take their value as the next argument.
const TAKES_VALUE: [&str; 13] = [
    "-cp",
    "-classpath",
    "--class-path",
    "-p",
    "--module-path",
    "--upgrade-module-path",
    "--add-modules",
    "--add-exports",
    "--add-opens",
    "--add-reads",
    "--patch-module",
    "--limit-modules",
    "--source",
];

/// The JVM's own options among the launcher's arguments: those before the
/// main class, the `-jar` file or the `-m` module (the rest are the
/// program's).
fn jvm_options(args: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut value_next = false;
    for a in args.iter().skip(1).map(String::as_str) {
        if std::mem::take(&mut value_next) {
            continue;
        }
        if !a.starts_with('-') || matches!(a, "-jar" | "-m" | "--module") {
            break;
        }
        value_next = TAKES_VALUE.contains(&a);
        out.push(a);
    }
    out
}

/// The maximum heap size the options set: the last `-Xmx` or
/// `-XX:MaxHeapSize=` wins, as in HotSpot.
fn last_xmx(options: &[&str]) -> Option<u64> {
    options
        .iter()
        .filter_map(|a| {
            a.strip_prefix("-Xmx")
                .or_else(|| a.strip_prefix("-XX:MaxHeapSize="))
                .and_then(parse_size)
        })
        .next_back()
}

/// `-Xmx` and the sizes HotSpot may have rounded it up to: the heap is
/// aligned to the G1 region size or the generations' alignment, a power
/// of two from 64 KiB to 32 MiB.
fn rounded_sizes(x: u64) -> Vec<u64> {
    let mut out = vec![x];
    for shift in 16..=25 {
        let a = 1u64 << shift;
        let r = x.div_ceil(a) * a;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// The hsperfdata file, read through the mapping the JVM keeps of it.
fn read_perf(c: &mut Claimer<'_>, inspector: &mut dyn Inspector) -> Option<PerfData> {
    let i = c
        .regions
        .iter()
        .position(|r| r.path.contains("/hsperfdata_") && r.perms.shared())?;
    let r = &c.regions[i];
    let mut buf = vec![0u8; r.size().min(PERF_MAX) as usize];
    // The mapping is the file, shared: without memory access (or with
    // --no-read-memory) the file itself says the same.
    if !inspector.read_memory(r.start, &mut buf) && !inspector.read_file_at(r, r.offset, &mut buf) {
        return None;
    }
    let p = hsperfdata::parse(&buf).ok()?;
    c.regions[i].details = "JVM performance counters (hsperfdata)".into();
    Some(p)
}

/// The sizes the heap reservation could have: G1 gives every generation
/// the whole heap as its maximum, the generational collectors split it;
/// `-Xmx` in the VM arguments is the fallback. Counters carry a few bytes
/// of padding, hence the rounding down to pages.
fn heap_sizes(p: &PerfData, gc: &str, page: u64) -> Vec<u64> {
    let gens: Vec<u64> = (0..4)
        .filter_map(|g| p.bytes(&format!("sun.gc.generation.{g}.maxCapacity")))
        .map(|v| v / page * page)
        .collect();
    let mut sizes = Vec::new();
    if gc == "GarbageFirst" {
        sizes.extend(gens.iter().max());
    } else if !gens.is_empty() {
        sizes.push(gens.iter().fold(0u64, |a, &g| a.saturating_add(g)));
    }
    if let Some(x) = p
        .text("java.rt.vmArgs")
        .and_then(|a| {
            a.split_whitespace()
                .rev()
                .find_map(|w| w.strip_prefix("-Xmx"))
        })
        .and_then(parse_size)
    {
        sizes.push(x);
    }
    sizes.retain(|&s| s > 0);
    sizes.dedup();
    sizes
}

/// `-Xmx` syntax: a number with an optional k/m/g/t suffix.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()?.to_ascii_lowercase() {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// `: eden 26 MiB, s1 2 MiB, old 39 MiB committed` from the counters.
fn generations(p: &PerfData) -> String {
    let mut parts = Vec::new();
    for g in 0..4 {
        for s in 0..4 {
            let key = format!("sun.gc.generation.{g}.space.{s}");
            let (Some(name), Some(cap)) = (
                p.text(&format!("{key}.name")),
                p.bytes(&format!("{key}.capacity")),
            ) else {
                continue;
            };
            // G1 reports 8 bytes of padding for spaces it does not have.
            if cap >= 4096 {
                let name = if name == "space" {
                    p.text(&format!("sun.gc.generation.{g}.name"))
                        .unwrap_or(name)
                } else {
                    name
                };
                parts.push(format!("{name} {}", mib(cap / 4096 * 4096)));
            }
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {} committed", parts.join(", "))
    }
}

/// Metaspace nodes: the non-class part of `sun.gc.metaspace.maxCapacity`,
/// found as 64 MiB ranges aligned to the 4 MiB root chunk.
fn plan_metaspace(c: &mut Claimer<'_>, p: &PerfData) {
    let Some(total) = p.bytes("sun.gc.metaspace.maxCapacity") else {
        return;
    };
    let class = p
        .bytes("sun.gc.compressedclassspace.maxCapacity")
        .unwrap_or(0);
    let mut left = total.saturating_sub(class);
    while left >= METASPACE_NODE {
        let Some((i, len)) = c.exact_run(METASPACE_NODE, 4 << 20, |_| false) else {
            break;
        };
        c.claim(
            i,
            len,
            Claim::managed_heap(
                "metaspace (64 MiB node)",
                format!("libjvm.so is loaded; a 64 MiB range aligned to metaspace's 4 MiB root chunks, within the {total} bytes sun.gc.metaspace.maxCapacity reports"),
            ),
        );
        left -= METASPACE_NODE;
    }
}

/// The code cache: a range whose committed parts are executable.
fn plan_code_cache(c: &mut Claimer<'_>) {
    let rwx = |r: &Region| r.perms.exec() && r.perms.write();
    c.scan_free_runs(rwx, |r| r.perms.none() || rwx(r), |c, i, len| {
        let span = c.span(i, len);
        c.claim(
            i,
            len,
            Claim::managed_heap(
                format!("code cache ({} reserved)", mib(span)),
                "libjvm.so is loaded and the range is anonymous memory made executable and writable: HotSpot's JIT code cache",
            ),
        );
        len
    });
}

pub(super) fn plan_rest(c: &mut Claimer<'_>, jvm: &Jvm) {
    let evidence = if jvm.perf.is_some() {
        "libjvm.so is loaded and this anonymous memory is none of the heap, class space, metaspace, code cache, GC tables, stacks or malloc memory found: HotSpot's own (the GC's other structures, arenas, other reservations)"
    } else {
        "libjvm.so is loaded but its hsperfdata counters could not be read (-XX:-UsePerfData, or no memory access): anonymous memory that is no stack or malloc memory is presumed HotSpot's"
    };
    c.claim_free_runs(
        MemoryType::ManagedHeap,
        "JVM internal (GC data structures, VM reservations)",
        Cow::Borrowed(evidence),
        Confidence::Low,
    );
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::FakeInspector;
    use crate::hsperfdata::tests::build;
    use crate::hsperfdata::Value;
    use crate::model::{Confidence, MemoryType};

    const MB: u64 = 1 << 20;

    /// The layout of `java -Xms64m -Xmx256m` (JDK 17, G1, CDS) as seen in
    /// /proc/PID/smaps, shortened.
    #[test]
    fn jdk17_g1_layout() {
        let jvm = 0x7f00_0000_0000u64;
        let perf_at = 0x7f10_0000_0000u64;
        let meta = 0x7efe_3f00_0000u64;
        let ccs = 0x7efe_4400_0000u64;
        let code = 0x7efe_a140_0000u64;
        let maps = vec![
            anon(0xf000_0000, 0xf400_0000, b"rw-p", 26 * MB),
            anon(0xf400_0000, 0xffe0_0000, b"---p", 0),
            file(
                0xffe0_0000,
                0xffe7_5000,
                b"rw-p",
                5,
                "/jdk/lib/server/classes.jsa",
            ),
            anon(0xffe7_5000, 0x1_0000_0000, b"rw-p", 0),
            anon(meta, meta + 0x1b_0000, b"rw-p", 0x1b_0000),
            anon(meta + 0x1b_0000, meta + 0x40_0000, b"---p", 0),
            anon(meta + 0x40_0000, meta + 64 * MB, b"---p", 0),
            anon(ccs, ccs + 0x4_0000, b"rw-p", 0x4_0000),
            anon(ccs + 0x4_0000, ccs + 1024 * MB, b"---p", 0),
            anon(code, code + 0x27_0000, b"rwxp", 0x20_0000),
            anon(code + 0x27_0000, code + 240 * MB, b"---p", 0),
            anon(code + 250 * MB, code + 251 * MB, b"rw-p", 0x1000),
            file(
                jvm,
                jvm + 0x10_0000,
                b"r-xp",
                9,
                "/jdk/lib/server/libjvm.so",
            ),
            file(
                perf_at,
                perf_at + 0x8000,
                b"rw-s",
                11,
                "/tmp/hsperfdata_u/42",
            ),
        ];
        let perf = build(&[
            ("sun.gc.policy.name", Value::Text("GarbageFirst".into())),
            ("sun.gc.generation.0.name", Value::Text("young".into())),
            ("sun.gc.generation.0.maxCapacity", Value::Long(268_435_480)),
            (
                "sun.gc.generation.0.space.0.name",
                Value::Text("eden".into()),
            ),
            (
                "sun.gc.generation.0.space.0.capacity",
                Value::Long(26_214_408),
            ),
            ("sun.gc.generation.1.name", Value::Text("old".into())),
            ("sun.gc.generation.1.maxCapacity", Value::Long(268_435_464)),
            (
                "sun.gc.generation.1.space.0.name",
                Value::Text("space".into()),
            ),
            (
                "sun.gc.generation.1.space.0.capacity",
                Value::Long(40_894_472),
            ),
            ("sun.gc.metaspace.maxCapacity", Value::Long(1_140_850_688)),
            (
                "sun.gc.compressedclassspace.maxCapacity",
                Value::Long(1_073_741_824),
            ),
            (
                "sun.gc.compressedclassspace.capacity",
                Value::Long(1_245_184),
            ),
        ]);
        let mut fake = FakeInspector::default();
        let elf = crate::classify::testutil::shared_object();
        fake.files.insert("/jdk/lib/server/libjvm.so".into(), elf);
        let mut perf = perf;
        perf.resize(0x8000, 0);
        fake.memory.push((perf_at, perf));
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        let heap = &r[0];
        assert_eq!(
            (heap.memory_type, heap.size()),
            (MemoryType::ManagedHeap, 256 * MB)
        );
        assert_eq!(heap.sub_blocks.len(), 4);
        assert_eq!(heap.confidence, Confidence::High);
        assert!(
            heap.details
                .starts_with("Java heap (GarbageFirst, max 256 MiB): eden 25 MiB, old 39 MiB"),
            "{}",
            heap.details
        );
        assert_eq!(
            heap.sub_blocks[2].details,
            "archived heap objects (CDS, classes.jsa)"
        );
        let meta_r = &r[1];
        assert_eq!(
            (meta_r.size(), meta_r.details.as_str()),
            (64 * MB, "metaspace (64 MiB node)")
        );
        assert_eq!(r[2].size(), 1024 * MB);
        assert!(r[2]
            .details
            .starts_with("compressed class space (1 GiB reserved"));
        assert_eq!(r[3].details, "code cache (240 MiB reserved)");
        assert_eq!(
            (r[4].memory_type, r[4].confidence),
            (MemoryType::ManagedHeap, Confidence::Low)
        );
        assert_eq!(r[6].details, "JVM performance counters (hsperfdata)");
    }

    #[test]
    fn xmx_of_the_command_line() {
        let x = |line: &str| {
            let args: Vec<String> = line.split(' ').map(String::from).collect();
            super::last_xmx(&super::jvm_options(&args))
        };
        assert_eq!(x("java -Xmx1g -cp . -Xmx256m Main -Xmx4g"), Some(256 * MB));
        assert_eq!(
            x("java -XX:MaxHeapSize=512m -jar app.jar -Xmx1g"),
            Some(512 * MB)
        );
        assert_eq!(x("java -m mod/Main -Xmx1g"), None);
        assert_eq!(x("java Main"), None);
        assert_eq!(
            super::rounded_sizes(255 * MB + 1)[..2],
            [255 * MB + 1, 255 * MB + (64 << 10)]
        );
    }

    #[test]
    fn xmx_suffixes() {
        assert_eq!(super::parse_size("256m"), Some(256 * MB));
        assert_eq!(super::parse_size("2G"), Some(2048 * MB));
        assert_eq!(super::parse_size("1048576"), Some(MB));
        assert_eq!(super::parse_size("x"), None);
    }
}
