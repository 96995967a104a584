//! `vmmap strings` and `vmmap find` on the memtext fixture, which puts
//! known text at known addresses (heap, stack, a mapped file, across a page
//! boundary and across vmmap's 1 MiB read chunks) and hides one string in a
//! PROT_NONE page.

use crate::util::*;

/// One line of `vmmap strings`: address, type, encoding, text.
fn parse_strings(out: &str) -> Vec<(u64, String, String, String)> {
    out.lines()
        .map(|l| {
            let (addr, rest) = l.split_once("  ").expect("address column");
            let rest = rest.trim_start();
            // The type is one or two words, padded to 12 columns.
            let (typ, rest) = rest.split_at(12);
            let (enc, text) = rest.trim_start().split_at(7);
            (
                u64::from_str_radix(addr.trim_start_matches("0x"), 16).expect("hex address"),
                typ.trim().to_string(),
                enc.trim().to_string(),
                text[2..].to_string(),
            )
        })
        .collect()
}

/// The readable mappings of a process, from /proc/PID/maps.
fn readable(pid: u32) -> Vec<(u64, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .expect("maps")
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let perms = f.next()?;
            perms.starts_with('r').then(|| {
                (
                    u64::from_str_radix(a, 16).unwrap(),
                    u64::from_str_radix(b, 16).unwrap(),
                )
            })
        })
        .collect()
}

const KNOWN: [(&str, &str, &str, &str); 9] = [
    ("heap_ascii", "Heap", "ascii", "VMMAP-HEAP-ASCII-7f3a"),
    ("heap_utf16", "Heap", "utf16le", "VMMAP-HEAP-UTF16-7f3a"),
    ("stack_ascii", "Stack", "ascii", "VMMAP-STACK-ASCII-91c2"),
    ("stack_utf16", "Stack", "utf16le", "VMMAP-STACK-UTF16-91c2"),
    (
        "file_ascii",
        "Mapped File",
        "ascii",
        "VMMAP-FILE-ASCII-d00d",
    ),
    (
        "file_utf16",
        "Mapped File",
        "utf16le",
        "VMMAP-FILE-UTF16-d00d",
    ),
    ("span", "Private Data", "ascii", "VMMAP-SPAN-0123456789-END"),
    (
        "chunk_ascii",
        "Private Data",
        "ascii",
        "VMMAP-CHUNK-BOUNDARY-LITERAL",
    ),
    (
        "chunk_utf16",
        "Private Data",
        "utf16le",
        "VMMAP-CHUNK-UTF16-ODD",
    ),
];

#[test]
fn strings_are_found_at_their_addresses_and_only_in_readable_memory() {
    let fx = Fixture::start_named("memtext");
    let out = vmmap_ok(&["strings", &fx.pid.to_string(), "--min", "6"]);
    let found = parse_strings(&out);
    for (key, typ, enc, text) in KNOWN {
        let addr = fx.addr(key);
        assert!(
            found
                .iter()
                .any(|f| f.0 == addr && f.1 == typ && f.2 == enc && f.3 == text),
            "{text} ({enc}, {typ}) not reported at {addr:#x}"
        );
    }
    assert!(
        !out.contains("VMMAP-HIDDEN"),
        "a string in a PROT_NONE page was reported"
    );
    let maps = readable(fx.pid);
    for (addr, _, enc, text) in &found {
        let len = if enc == "utf16le" {
            2 * text.chars().count() as u64
        } else {
            text.len() as u64
        };
        assert!(
            maps.iter().any(|&(s, e)| s <= *addr && addr + len <= e),
            "{text:?} at {addr:#x} is not inside one readable mapping"
        );
    }
}

#[test]
fn strings_of_one_region_and_one_encoding() {
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let file = fx.addr("file_ascii");
    let region = format!("{:#x}", file + 0x10);
    let found = parse_strings(&vmmap_ok(&["strings", &pid, "--region", &region]));
    let base = file - 100;
    assert!(!found.is_empty());
    assert!(found.iter().all(|f| base <= f.0 && f.0 < base + 8192));
    assert!(found
        .iter()
        .any(|f| f.0 == file && f.3 == "VMMAP-FILE-ASCII-d00d"));
    assert!(found
        .iter()
        .any(|f| f.0 == fx.addr("file_utf16") && f.3 == "VMMAP-FILE-UTF16-d00d"));

    let ascii = parse_strings(&vmmap_ok(&[
        "strings", &pid, "--region", &region, "-e", "ascii",
    ]));
    assert!(ascii.iter().all(|f| f.2 == "ascii"));
    assert!(!ascii.iter().any(|f| f.3.contains("UTF16")));

    let wide = parse_strings(&vmmap_ok(&[
        "strings", &pid, "--region", &region, "-e", "utf16le", "--min", "21",
    ]));
    assert_eq!(
        wide,
        vec![(
            fx.addr("file_utf16"),
            "Mapped File".to_string(),
            "utf16le".to_string(),
            "VMMAP-FILE-UTF16-d00d".to_string()
        )]
    );
}

#[test]
fn strings_refuses_unreadable_or_unmapped_regions() {
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let hidden = format!("{:#x}", fx.addr("hidden"));
    let o = vmmap(&["strings", &pid, "--region", &hidden]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot be read: not readable"), "{err}");
    let o = vmmap(&["strings", &pid, "--region", "0x10"]);
    assert_eq!(o.status.code(), Some(2));
    let o = vmmap(&["strings", &pid, "--encoding", "ebcdic"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `vmmap find` lines: address, type, region start and end, the match.
fn parse_find(out: &str) -> Vec<(u64, String, u64, u64, String)> {
    out.lines()
        .map(|l| {
            let (addr, rest) = l.split_once("  ").expect("address column");
            let (typ, rest) = rest.split_at(12);
            let rest = rest.trim_start();
            let (range, rest) = rest.split_once("  ").expect("region column");
            let (s, e) = range.split_once('-').expect("start-end");
            let text = rest.split('"').nth(1).expect("quoted match").to_string();
            let h = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).expect("hex");
            (h(addr), typ.trim().to_string(), h(s), h(e), text)
        })
        .collect()
}

#[test]
fn find_regex_across_a_page_boundary() {
    let fx = Fixture::start_named("memtext");
    let span = fx.addr("span");
    let out = vmmap_ok(&[
        "find",
        &fx.pid.to_string(),
        "--regex",
        "VMMAP-SPAN-[0-9]+-END",
    ]);
    let found = parse_find(&out);
    // Only the copy in the anonymous mapping: the program builds the text
    // with immediate stores, so no other copy exists.
    assert_eq!(
        found,
        vec![(
            span,
            "Private Data".to_string(),
            0x3100_1000_0000,
            0x3100_1000_2000,
            "VMMAP-SPAN-0123456789-END".to_string()
        )],
        "{out}"
    );
    assert_eq!((span + 12) % 4096, 0, "the match crosses the page boundary");
}

#[test]
fn find_literal_and_hex_across_read_chunks() {
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let chunk = fx.addr("chunk_ascii");
    let found = parse_find(&vmmap_ok(&["find", &pid, "VMMAP-CHUNK-BOUNDARY-LITERAL"]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, chunk);
    assert_eq!(found[0].2, 0x3100_2000_0000);
    // The UTF-16 text across the 2 MiB boundary, as bytes.
    let wide: Vec<String> = "VMMAP-CHUNK-UTF16-ODD"
        .bytes()
        .flat_map(|b| [format!("{b:02x}"), "00".to_string()])
        .collect();
    let found = parse_find(&vmmap_ok(&["find", &pid, "--hex", &wide.join(" ")]));
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![fx.addr("chunk_utf16")]
    );
    // Case-insensitive text, the heap and the stack copy of the file's
    // text, and --count.
    let found = parse_find(&vmmap_ok(&["find", &pid, "-i", "vmmap-heap-ascii-7F3A"]));
    assert!(found
        .iter()
        .any(|f| f.0 == fx.addr("heap_ascii") && f.1 == "Heap"));
    let n = vmmap_ok(&["find", &pid, "--count", "VMMAP-STACK-ASCII-91c2"]);
    let stack = parse_find(&vmmap_ok(&["find", &pid, "VMMAP-STACK-ASCII-91c2"]));
    assert_eq!(n.trim(), stack.len().to_string());
    assert!(stack
        .iter()
        .any(|f| f.0 == fx.addr("stack_ascii") && f.1 == "Stack"));
    // --max stops early; --region limits to one region.
    assert_eq!(
        vmmap_ok(&["find", &pid, "--max", "1", "VMMAP"])
            .lines()
            .count(),
        1
    );
    let region = format!("{:#x}", fx.addr("file_ascii"));
    let found = parse_find(&vmmap_ok(&["find", &pid, "--region", &region, "VMMAP"]));
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![fx.addr("file_ascii")]
    );
}

#[test]
fn find_never_reads_unreadable_memory_and_rejects_bad_patterns() {
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let hidden = fx.addr("hidden");
    let found = parse_find(&vmmap_ok(&["find", &pid, "HIDDEN-SECRET"]));
    assert!(
        found
            .iter()
            .all(|f| f.0 < hidden - 64 || f.0 >= hidden + 4096),
        "{found:?}"
    );
    for args in [
        vec!["find", &pid, "--regex", "("],
        vec!["find", &pid, "--hex", "abc"],
        vec!["find", &pid, ""],
    ] {
        let o = vmmap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("bad pattern"));
    }
}

/// Every mapping of a process, from /proc/PID/maps.
fn mappings(pid: u32) -> Vec<(u64, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .expect("maps")
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

#[test]
fn map_gaps_and_largest_free_block_are_exact() {
    const K: u64 = 1024;
    let fx = Fixture::start_named("memtext");
    let base = fx.addr("map_base");
    let v: serde_json::Value =
        serde_json::from_str(&vmmap_ok(&["map", &fx.pid.to_string(), "--json"])).unwrap();
    assert_eq!(v["schema"], "vmmap.layout");
    let l = &v["layout"];
    let segs = l["segments"].as_array().unwrap();
    // The fixture's window: regions and holes exactly as it maps them.
    let window: Vec<(u64, u64, &str, bool)> = segs
        .iter()
        .filter(|s| hex(&s["start"]) >= base && hex(&s["end"]) <= base + 1132 * K)
        .map(|s| {
            (
                hex(&s["start"]) - base,
                hex(&s["end"]) - hex(&s["start"]),
                s["type"].as_str().unwrap(),
                s["reserved"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        window,
        vec![
            (0, 4 * K, "private_data", false),
            (4 * K, 12 * K, "free", false),
            (16 * K, 64 * K, "private_data", false),
            (80 * K, 1024 * K, "free", false),
            (1104 * K, 8 * K, "private_data", true),
            (1112 * K, 4 * K, "free", false),
            (1116 * K, 16 * K, "shareable", false),
        ]
    );
    // Segments tile the axis in order.
    let mut pos = 0;
    for s in segs {
        assert_eq!(s["pos"].as_u64().unwrap(), pos);
        pos += s["units"].as_u64().unwrap();
    }
    assert_eq!(l["total_units"].as_u64().unwrap(), pos);

    // Gaps and the largest free block, from /proc/PID/maps independently.
    let lo: u64 = std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if cfg!(target_arch = "x86_64") {
        let hi = (1u64 << 47) - 4096;
        let mut gaps = Vec::new();
        let mut cursor = lo;
        for (s, e) in mappings(fx.pid).into_iter().filter(|m| m.0 < hi) {
            if s > cursor {
                gaps.push((cursor, s));
            }
            cursor = cursor.max(e);
        }
        if hi > cursor {
            gaps.push((cursor, hi));
        }
        assert_eq!(l["gap_count"].as_u64().unwrap(), gaps.len() as u64);
        let largest = gaps
            .iter()
            .max_by_key(|g| (g.1 - g.0, std::cmp::Reverse(g.0)))
            .unwrap();
        assert_eq!(hex(&l["largest_free"]["start"]), largest.0);
        assert_eq!(hex(&l["largest_free"]["end"]), largest.1);
        assert_eq!(
            l["free_bytes"].as_u64().unwrap(),
            gaps.iter().map(|g| g.1 - g.0).sum::<u64>()
        );
    }
}

#[test]
fn map_svg_file_and_bad_extension() {
    let fx = Fixture::start_named("memtext");
    let dir = TempDir::new("map");
    let svg = dir.path().join("map.svg");
    vmmap_ok(&["map", &fx.pid.to_string(), "-o", svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(text.trim_end().ends_with("</svg>"));
    let base = fx.addr("map_base");
    assert!(text.contains(&format!(
        "<title>{:#x}-{:#x} Free 1M</title>",
        base + 80 * 1024,
        base + 1104 * 1024
    )));
    // The same picture as PNG.
    let png = svg.with_extension("png");
    vmmap_ok(&["map", &fx.pid.to_string(), "-o", png.to_str().unwrap()]);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(bytes[..8], *b"\x89PNG\r\n\x1a\n");
    let o = vmmap(&["map", &fx.pid.to_string(), "-o", "map.gif"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SVG (.svg) or PNG (.png)"));
}

/// Every PROT_NONE mapping of a process, from /proc/PID/maps.
fn reservations(pid: u32) -> Vec<(u64, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .expect("maps")
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("---p"))
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

#[test]
fn map_reserved_is_zero_not_blank() {
    // Static and single-threaded: nothing PROT_NONE.
    let fx = Fixture::start_static("untouched");
    assert_eq!(reservations(fx.pid), vec![]);
    let pid = fx.pid.to_string();
    let text = vmmap_ok(&["map", &pid]);
    assert!(
        text.contains("\nReserved:        0 (PROT_NONE, Size minus Committed)\n"),
        "{text}"
    );
    let svg = vmmap_ok(&["map", &pid, "-o", "-"]);
    assert!(svg.contains(", 0 reserved (PROT_NONE)"), "{svg}");
}

#[test]
fn map_draws_arena_tails_reserved_and_counts_size_minus_committed() {
    // Two threads' arenas: each one Heap region, committed at its start,
    // PROT_NONE up to 64 MiB.
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let reserved = reservations(fx.pid);
    let v: serde_json::Value = serde_json::from_str(&vmmap_ok(&["map", &pid, "--json"])).unwrap();
    let l = &v["layout"];
    let segs = l["segments"].as_array().unwrap();
    // Reserved is Size minus Committed, as the Summary counts them.
    let bytes: u64 = reserved.iter().map(|r| r.1 - r.0).sum();
    assert!(bytes >= (2 * 60) << 20, "two arena tails: {reserved:x?}");
    assert_eq!(l["reserved_bytes"].as_u64().unwrap(), bytes);
    let snap = snapshot_json(fx.pid, &[]);
    let total = snap["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "total")
        .unwrap();
    assert_eq!(
        total["size"].as_u64().unwrap() - total["committed"].as_u64().unwrap(),
        bytes
    );
    let text = vmmap_ok(&["map", &pid, "--bytes"]);
    assert!(
        text.contains(&format!(
            "\nReserved:        {bytes} (PROT_NONE, Size minus Committed)\n"
        )),
        "{text}"
    );
    // Every PROT_NONE byte lies in a reserved segment, every other mapped
    // byte in an unreserved one; the arenas' tails are reserved Heap.
    let seg_at = |a: u64| {
        segs.iter()
            .find(|s| hex(&s["start"]) <= a && a < hex(&s["end"]))
            .unwrap_or_else(|| panic!("no segment at {a:#x}"))
    };
    for (a, b) in mappings(fx.pid) {
        let none = reserved.contains(&(a, b));
        for at in [a, b - 1] {
            let s = seg_at(at);
            assert_eq!(s["reserved"], none, "{a:#x}-{b:#x}: {s}");
        }
    }
    let tails = segs
        .iter()
        .filter(|s| s["type"] == "heap" && s["reserved"] == true)
        .count();
    assert!(tails >= 2, "arena tails drawn reserved: {segs:?}");
    assert!(
        text.lines()
            .filter(|l| l.contains(" Heap ") && l.ends_with("  reserved"))
            .count()
            >= 2,
        "{text}"
    );
    // The SVG draws them translucent (class r), as its legend says.
    let svg = vmmap_ok(&["map", &pid, "-o", "-"]);
    assert!(
        svg.lines()
            .filter(|l| l.starts_with("<rect class=\"r\"") && l.contains(" Heap "))
            .count()
            >= 2,
        "{svg}"
    );
}

#[test]
fn heap_fragmentation_of_the_brk_heap() {
    let fx = Fixture::start_named("memtext");
    let v: serde_json::Value = serde_json::from_str(&vmmap_ok(&[
        "map",
        &fx.pid.to_string(),
        "--heaps",
        "--json",
    ]))
    .unwrap();
    let heaps = v["heaps"].as_array().expect("heaps");
    assert_eq!(heaps.len(), 1, "{heaps:?}");
    let h = &heaps[0];
    assert_eq!(h["heap_id"], 0);
    let c = &h["chunks"];
    assert_eq!(c["free_chunks"], 5, "{h}");
    assert_eq!(c["free_bytes"], 5 * 4016, "{h}");
    assert_eq!(c["largest_free"], 4016, "{h}");
    // Every chunk from the heap's start to its end is counted once.
    let total = c["in_use_bytes"].as_u64().unwrap()
        + c["free_bytes"].as_u64().unwrap()
        + c["top_bytes"].as_u64().unwrap();
    assert_eq!(total, hex(&h["end"]) - hex(&h["start"]));
    let region = region_at(&snapshot_json(fx.pid, &[]), fx.addr("heap_ascii")).clone();
    assert_eq!(hex(&h["start"]), hex(&region["start"]));
    assert!(h["frag_percent"].as_f64().is_some());

    let text = vmmap_ok(&["map", &fx.pid.to_string(), "--heaps"]);
    assert!(
        text.contains("free     20K in 5 chunks (largest 3.9K)"),
        "{text}"
    );
}

#[test]
fn heap_fragmentation_of_arena_heaps() {
    let fx = Fixture::start(false);
    let v: serde_json::Value = serde_json::from_str(&vmmap_ok(&[
        "map",
        &fx.pid.to_string(),
        "--heaps",
        "--json",
    ]))
    .unwrap();
    let heaps = v["heaps"].as_array().expect("heaps");
    let arenas: Vec<&serde_json::Value> = heaps.iter().filter(|h| h["heap_id"] != 0).collect();
    assert_eq!(arenas.len(), 2, "two threads' arenas: {heaps:?}");
    for h in arenas {
        // Each thread allocated eight 48 KiB blocks (49,168-byte chunks)
        // and freed none.
        let c = &h["chunks"];
        assert!(!c.is_null(), "arena heap not walkable: {h}");
        assert_eq!(c["free_chunks"], 0, "{h}");
        let big = 8 * (48 * 1024 + 16);
        let in_use = c["in_use_bytes"].as_u64().unwrap();
        assert!(in_use >= big && in_use < big + 4096, "{h}");
        assert!(hex(&h["start"]) % (64 << 20) == 0, "{h}");
    }
}

#[test]
fn pages_past_the_end_of_a_file_are_skipped_not_fatal() {
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let at = fx.addr("short_file");
    let region = format!("{:#x}", at - 4000);
    let found = parse_strings(&vmmap_ok(&["strings", &pid, "--region", &region]));
    assert_eq!(
        found,
        vec![(
            at,
            "Mapped File".to_string(),
            "ascii".to_string(),
            "VMMAP-SHORT-FILE-ASCII".to_string()
        )]
    );
    let found = parse_find(&vmmap_ok(&[
        "find",
        &pid,
        "--region",
        &region,
        "SHORT-FILE",
    ]));
    assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![at + 6]);
}

/// What the kernel says about a process's memory: every line of
/// /proc/PID/smaps (every field of every mapping), and the VmRSS, RssAnon,
/// RssFile, RssShmem and VmPTE lines of /proc/PID/status (VmPTE grows when
/// a read faults a page in under a page table not allocated yet).
pub(crate) fn memory_use(pid: u32) -> Vec<String> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    smaps
        .lines()
        .map(str::to_string)
        .chain(
            status
                .lines()
                .filter(|l| {
                    ["VmRSS:", "RssAnon:", "RssFile:", "RssShmem:", "VmPTE:"]
                        .iter()
                        .any(|k| l.starts_with(k))
                })
                .map(str::to_string),
        )
        .collect()
}

/// Fails, naming the mapping and the field, unless two [`memory_use`]
/// records are the same to the page.
pub(crate) fn assert_memory_unchanged(before: &[String], after: &[String], what: &str) {
    assert_eq!(before.len(), after.len(), "{what}: mappings came or went");
    let mut mapping = "";
    let mut diffs = Vec::new();
    for (b, a) in before.iter().zip(after) {
        // A mapping's header line: "start-end perms offset dev inode path".
        if b.split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            mapping = b;
        } else if b.contains(":\t") {
            mapping = "/proc/PID/status";
        }
        if a != b {
            diffs.push(format!("{mapping}\n    before: {b}\n    after:  {a}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what} changed the target's memory:\n{}",
        diffs.join("\n")
    );
}

/// Which of the `n` pages from `addr` are in the process's page tables
/// (bit 63 of each /proc/PID/pagemap entry).
fn present_pages(pid: u32, addr: u64, n: u64) -> Vec<u64> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/proc/{pid}/pagemap")).expect("pagemap");
    let mut buf = vec![0u8; 8 * n as usize];
    f.read_exact_at(&mut buf, addr / 4096 * 8)
        .expect("read pagemap");
    (0..n)
        .filter(|&i| {
            let e = u64::from_le_bytes(buf[8 * i as usize..8 * i as usize + 8].try_into().unwrap());
            e >> 63 == 1
        })
        .collect()
}

/// A size as vmmap prints it (`96M`, `101.3M`, `4K`), in bytes.
fn parse_size(text: &str) -> u64 {
    let (num, unit) = text.split_at(text.len() - 1);
    let mult = match unit {
        "K" => 1u64 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => panic!("size {text:?}"),
    };
    (num.parse::<f64>()
        .unwrap_or_else(|_| panic!("size {text:?}"))
        * mult as f64) as u64
}

/// The figure of vmmap's "skipped SIZE not resident in the target" note.
pub(crate) fn skipped_figure(text: &str) -> u64 {
    let at = text
        .find("skipped ")
        .unwrap_or_else(|| panic!("no \"skipped\" note in {text:?}"));
    let rest = &text[at + 8..];
    let (size, tail) = rest.split_once(' ').expect("a size");
    assert!(
        tail.starts_with("not resident in the target"),
        "note {rest:?}"
    );
    parse_size(size)
}

#[test]
fn reading_memory_never_changes_the_target() {
    let fx = Fixture::start_static("untouched");
    fx.stop();
    let pid = fx.pid.to_string();
    let partial = fx.addr("partial");
    let partial_present = present_pages(fx.pid, partial, 256);
    assert!(
        partial_present.contains(&0) && partial_present.contains(&128),
        "the fixture's touched file pages: {partial_present:?}"
    );
    assert!(partial_present.len() < 256, "{partial_present:?}");
    let before = memory_use(fx.pid);
    let rss = |addr: u64| {
        let head = format!("{addr:x}-");
        let at = before.iter().position(|l| l.starts_with(&head)).unwrap();
        before[at + 1..]
            .iter()
            .find(|l| l.starts_with("Rss:"))
            .unwrap()
            .clone()
    };
    for key in ["shared_anon", "memfd", "file"] {
        assert!(
            rss(fx.addr(key)).ends_with(" 0 kB"),
            "{key} is untouched: {}",
            rss(fx.addr(key))
        );
    }

    let strings = vmmap(&["strings", &pid]);
    assert!(strings.status.success(), "{strings:?}");
    let marker = fx.addr("marker");
    let hex: Vec<String> = b"VMMAP-RESIDENT-MARKER"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let find = vmmap(&["find", &pid, "VMMAP-RESIDENT-MARKER"]);
    let find_hex = vmmap(&["find", &pid, "--hex", &hex.join(" ")]);
    let heaps = vmmap(&["map", &pid, "--heaps"]);
    let heaps_json = vmmap_ok(&["map", &pid, "--heaps", "--json"]);
    vmmap_ok(&[&pid]);
    let after = memory_use(fx.pid);
    assert_memory_unchanged(
        &before,
        &after,
        "vmmap strings, find, map --heaps and a snapshot",
    );

    // The reads happened: the text in a touched page is found.
    let out = String::from_utf8_lossy(&strings.stdout);
    let found = parse_strings(&out);
    assert!(
        found
            .iter()
            .any(|f| f.0 == marker && f.3 == "VMMAP-RESIDENT-MARKER"),
        "the marker at {marker:#x} was not read"
    );
    for o in [&find, &find_hex] {
        assert!(o.status.success(), "{o:?}");
        let hits = parse_find(&String::from_utf8_lossy(&o.stdout));
        assert!(hits.iter().any(|h| h.0 == marker), "{hits:?}");
    }
    // Nothing of the untouched mappings was read; of the partly touched
    // file, exactly the pages that were present.
    for (key, len) in [
        ("shared_anon", 64u64 << 20),
        ("memfd", 16 << 20),
        ("file", 16 << 20),
    ] {
        let start = fx.addr(key);
        let inside: Vec<_> = found
            .iter()
            .filter(|f| start <= f.0 && f.0 < start + len)
            .collect();
        assert!(inside.is_empty(), "{key} was read: {inside:?}");
    }
    let mut partial_read: Vec<u64> = found
        .iter()
        .filter(|f| partial <= f.0 && f.0 < partial + (1 << 20))
        .map(|f| {
            assert_eq!((f.0 - partial) % 4096, 0, "{f:?}");
            assert_eq!(f.3, format!("VMMAP-PARTIAL-{:06}", (f.0 - partial) / 4096));
            (f.0 - partial) / 4096
        })
        .collect();
    partial_read.sort_unstable();
    assert_eq!(partial_read, partial_present);

    // Each says what it left out.
    let untouched = (64 + 16 + 16) << 20;
    for (what, o) in [
        ("strings", &strings),
        ("find", &find),
        ("find --hex", &find_hex),
    ] {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(skipped_figure(&err) >= untouched, "{what}: {err}");
        assert!(
            err.contains("(reading it would fault it in)"),
            "{what}: {err}"
        );
    }
    assert!(heaps.status.success(), "{heaps:?}");
    let v: serde_json::Value = serde_json::from_str(&heaps_json).unwrap();
    // (A static program's brk heap starts with its TLS block, not a
    // chunk, so it is not walkable: only the figure is checked here.)
    let h = &v["heaps"][0];
    assert!(h["not_resident"].as_u64().is_some(), "{h}");
}
