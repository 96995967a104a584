//! The symbolised views of a trace (call tree, leaks, allocations of a
//! region, region owners, exports) on fixture programs with known call
//! paths: exact bytes per function and line, cross-checked with heaptrack.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::trace::{build, fixture, on_file, run_plain, run_traced, same_behaviour, tmp};
use crate::util::{require_tool, VMMAP};

/// The line of `marker` in a fixture's source.
fn line_of(src: &str, marker: &str) -> u64 {
    let text = std::fs::read_to_string(fixture(src)).unwrap();
    text.lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in {src}")) as u64
        + 1
}

fn calls_program() -> PathBuf {
    let src = fixture("calls.c");
    // -O0: no tail calls, so every function keeps its frame.
    build("calls", &["cc", "-O0", "-g", src.to_str().unwrap()])
}

fn traced_calls() -> PathBuf {
    let prog = calls_program();
    let plain = run_plain(&prog, &[]);
    let (o, file) = run_traced(&[], &prog, &[]);
    same_behaviour(&plain, &o);
    file
}

fn json(file: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&on_file("trace", file, args)).expect("JSON output")
}

/// The whole call tree, allocation sites first, one node per line.
fn bottom_up_by_line(file: &Path) -> Value {
    let args = ["calltree", "--json", "--bottom-up", "--lines"];
    json(file, &[&args[..], &["--min-percent", "0"]].concat())
}

/// Sum of a figure over every node named `function` with no ancestor of
/// that name.
fn total(node: &Value, function: &str, key: &str) -> u64 {
    node["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            if c["function"] == function {
                c[key].as_u64().unwrap()
            } else {
                total(c, function, key)
            }
        })
        .sum()
}

/// Nodes named `function` at `line`, anywhere in the tree.
fn find<'a>(node: &'a Value, function: &str, line: u64, out: &mut Vec<&'a Value>) {
    for c in node["children"].as_array().unwrap() {
        if c["function"] == function && c["line"] == line {
            out.push(c);
        }
        find(c, function, line, out);
    }
}

#[test]
fn call_tree_attributes_exact_bytes_to_functions_and_lines() {
    let file = traced_calls();
    let t = json(&file, &["calltree", "--json", "--min-percent", "0"]);
    let root = &t["tree"];
    // 3 x 100 from make_small, 10 x 3000 + 5000 from make_big.
    assert_eq!(root["allocated"], 35_300, "{root:#}");
    assert_eq!(root["calls"], 14);
    assert_eq!(root["live_bytes"], 5_200);
    assert_eq!(root["live_blocks"], 3);
    // The heap peaked with the 2 leaks, `keep` and `tmp` live.
    assert_eq!(root["peak"], 5_300);
    // Ten make_big blocks freed at once, and `tmp`.
    assert_eq!(root["temporary"], 11);
    assert_eq!(total(root, "main", "allocated"), 35_300);
    assert_eq!(total(root, "churn", "allocated"), 30_000);
    assert_eq!(total(root, "churn", "calls"), 10);
    assert_eq!(total(root, "churn", "live_bytes"), 0);
    assert_eq!(total(root, "leak_twice", "allocated"), 200);
    assert_eq!(total(root, "leak_twice", "live_bytes"), 200);
    assert_eq!(total(root, "make_big", "allocated"), 35_000);
    assert_eq!(total(root, "make_small", "allocated"), 300);

    // Bottom-up by line: the allocation sites are the lines that call the
    // allocator.
    let t = bottom_up_by_line(&file);
    let sites: Vec<(String, u64, u64)> = t["tree"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["function"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap_or(0),
                c["allocated"].as_u64().unwrap(),
            )
        })
        .collect();
    let big = line_of("calls.c", "MAKE_BIG_LINE");
    let small = line_of("calls.c", "MAKE_SMALL_LINE");
    assert_eq!(
        sites,
        vec![
            ("make_big".into(), big, 35_000),
            ("make_small".into(), small, 300)
        ]
    );
    // Under make_big, the two call sites in main and churn.
    let mut n = Vec::new();
    find(
        &t["tree"],
        "churn",
        line_of("calls.c", "free(make_big(3))"),
        &mut n,
    );
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["allocated"], 30_000);
}

#[test]
fn leaks_are_found_exactly_and_grouped_by_stack() {
    let file = traced_calls();
    let l = json(&file, &["leaks", "--json"]);
    assert_eq!(l["program_exited"], true);
    assert_eq!(
        (l["blocks"].as_u64(), l["bytes"].as_u64()),
        (Some(3), Some(5_200))
    );
    // make_big from main (5000), make_small from each of the two lines of
    // leak_twice (100 each): three stacks.
    let leaks = l["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 3, "{l:#}");
    let top: Vec<(u64, String, String)> = leaks
        .iter()
        .map(|k| {
            (
                k["bytes"].as_u64().unwrap(),
                k["frames"][0]["function"].as_str().unwrap().to_string(),
                k["frames"][1]["function"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![
            (5_000, "make_big".into(), "main".into()),
            (100, "make_small".into(), "leak_twice".into()),
            (100, "make_small".into(), "leak_twice".into()),
        ]
    );
    assert_ne!(leaks[1]["frames"][1]["line"], leaks[2]["frames"][1]["line"]);
    let text = String::from_utf8(on_file("trace", &file, &["leaks"])).unwrap();
    assert!(
        text.starts_with("3 blocks (5.1K) never freed, from 3 call stacks"),
        "{text}"
    );
}

#[test]
fn a_mapping_is_owned_by_the_line_that_made_it() {
    let file = traced_calls();
    let r = json(&file, &["regions", "--json"]);
    let map_line = line_of("calls.c", "MAP_LINE");
    let owned: Vec<&Value> = r
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["owner"] == "call" && m["frames"][0]["function"] == "map_pages")
        .collect();
    assert_eq!(owned.len(), 1, "{r:#}");
    assert_eq!(owned[0]["size"], 5 * 65536);
    assert_eq!(owned[0]["frames"][0]["line"], map_line);
    assert_eq!(owned[0]["frames"][1]["function"], "main");
}

#[test]
fn allocations_of_one_region_with_their_stacks() {
    let file = traced_calls();
    // The heap: the region holding the first block make_big returned.
    let h: Vec<Value> = String::from_utf8(on_file(
        "trace",
        &file,
        &["history", "--json", "--op", "calloc"],
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let addr = h[0]["ptr"].as_str().unwrap().to_string();
    let a = json(&file, &["allocations", "--region", &addr, "--json"]);
    assert_eq!(a["allocations"], 14, "{a:#}");
    assert_eq!(a["bytes_allocated"], 35_300);
    assert_eq!(a["live_bytes"], 5_200);
    let first = &a["stacks"][0];
    assert_eq!(first["cost"]["allocated"], 30_000);
    assert_eq!(first["frames"][1]["function"], "churn");
    // The mapping made by map_pages holds no malloc block.
    let r = json(&file, &["regions", "--json"]);
    let m = r
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["frames"][0]["function"] == "map_pages")
        .unwrap();
    let a = json(
        &file,
        &[
            "allocations",
            "--region",
            m["start"].as_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(a["allocations"], 0);
    // An address no mapping holds is refused with a clear message.
    let o = Command::new(VMMAP)
        .args(["trace"])
        .arg(&file)
        .args(["allocations", "--region", "0x10"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no recorded mapping holds 0x10"));
}

#[test]
fn cxx_inlined_frames_are_expanded_with_their_lines() {
    let src = fixture("inline.cpp");
    let prog = build("inline", &["c++", "-O2", "-g", src.to_str().unwrap()]);
    let (o, file) = run_traced(&[], &prog, &[]);
    assert!(o.status.success());
    let t = bottom_up_by_line(&file);
    let mut grow = Vec::new();
    find(
        &t["tree"],
        "grow",
        line_of("inline.cpp", "GROW_LINE"),
        &mut grow,
    );
    assert_eq!(grow.len(), 1, "{t:#}");
    assert_eq!(grow[0]["inlined"], true);
    assert_eq!(grow[0]["allocated"], 240);
    assert_eq!(grow[0]["calls"], 2);
    let caller = &grow[0]["children"][0];
    assert_eq!(caller["function"], "outer(unsigned long)");
    assert_eq!(caller["line"], line_of("inline.cpp", "OUTER_LINE"));
    assert_eq!(caller["inlined"], false);
    // std::vector<int>(1000) allocates through operator new from main.
    let mut v = Vec::new();
    find(
        &t["tree"],
        "main",
        line_of("inline.cpp", "std::vector<int> v(1000)"),
        &mut v,
    );
    assert_eq!(
        v.iter()
            .map(|n| n["allocated"].as_u64().unwrap())
            .sum::<u64>(),
        4000
    );
}

#[test]
fn rust_allocations_are_attributed_to_their_lines() {
    let src = fixture("rust_alloc.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let prog = build(
        "rust_alloc_g",
        &[
            &rustc,
            "-O",
            "-g",
            "--edition",
            "2021",
            src.to_str().unwrap(),
        ],
    );
    let (o, file) = run_traced(&[], &prog, &[]);
    assert!(o.status.success());
    let folded =
        String::from_utf8(on_file("trace", &file, &["folded", "--lines", "-o", "-"])).unwrap();
    let bytes_at = |line: u64| -> u64 {
        let tag = format!("rust_alloc::main (trace/rust_alloc.rs:{line})");
        folded
            .lines()
            .filter(|l| l.contains(&tag))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        bytes_at(line_of("rust_alloc.rs", "with_capacity(6101)")),
        3 * 6101,
        "{folded}"
    );
    assert_eq!(
        bytes_at(line_of("rust_alloc.rs", "Box::new")),
        3 * 6102,
        "{folded}"
    );
}

#[test]
fn exports_feed_flame_graphs_pprof_and_speedscope() {
    let file = traced_calls();
    let dir = tmp().join(format!("exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = |name: &str| dir.join(name);
    // Folded stacks: outermost first, exact values.
    on_file(
        "trace",
        &file,
        &["folded", "-o", out("a.folded").to_str().unwrap()],
    );
    let folded = std::fs::read_to_string(out("a.folded")).unwrap();
    let mut lines: Vec<(String, u64)> = folded
        .lines()
        .map(|l| {
            let (p, v) = l.rsplit_once(' ').unwrap();
            let tail: Vec<&str> = p.rsplit(';').take(2).collect();
            (tail.join("<"), v.parse().unwrap())
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            ("make_big<churn".into(), 30_000),
            ("make_big<main".into(), 5_000),
            ("make_small<leak_twice".into(), 200),
            ("make_small<main".into(), 100),
        ]
    );
    assert!(folded.lines().all(|l| l.contains("main;")), "{folded}");
    // Live bytes instead.
    let live = String::from_utf8(on_file(
        "trace",
        &file,
        &["folded", "--metric", "live", "-o", "-"],
    ))
    .unwrap();
    let live_total: u64 = live
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(live_total, 5_200);
    // The flame graph is an SVG naming the functions.
    on_file(
        "trace",
        &file,
        &["flamegraph", "-o", out("a.svg").to_str().unwrap()],
    );
    let svg = std::fs::read_to_string(out("a.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("make_big") && svg.contains("churn"));
    // speedscope: frames shared, weights per sample.
    on_file(
        "trace",
        &file,
        &["speedscope", "-o", out("a.json").to_str().unwrap()],
    );
    let s: Value = serde_json::from_slice(&std::fs::read(out("a.json")).unwrap()).unwrap();
    assert_eq!(
        s["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let p = &s["profiles"][0];
    assert_eq!(p["type"], "sampled");
    assert_eq!(p["endValue"], 35_300);
    let frames = s["shared"]["frames"].as_array().unwrap();
    for sample in p["samples"].as_array().unwrap() {
        let names: Vec<&str> = sample
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                frames[i.as_u64().unwrap() as usize]["name"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert!(names.last().unwrap().starts_with("make_"), "{names:?}");
    }
    // pprof: gzip'd protobuf, which `go tool pprof` reads.
    on_file(
        "trace",
        &file,
        &["pprof", "-o", out("a.pb.gz").to_str().unwrap()],
    );
    let pb = std::fs::read(out("a.pb.gz")).unwrap();
    assert_eq!(pb[..2], [0x1f, 0x8b], "gzip magic");
    let o = Command::new(require_tool("go", "golang-go"))
        .args(["tool", "pprof", "-raw"])
        .arg(out("a.pb.gz"))
        .env("GOCACHE", dir.join("gocache"))
        .env("HOME", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("alloc_space/bytes") && text.contains("make_big"),
        "{text}"
    );
    // alloc_objects alloc_space inuse_objects inuse_space per sample.
    assert!(
        text.contains("10      30000          0          0"),
        "{text}"
    );
}

#[test]
fn symbols_are_cached_in_the_file_and_missing_debug_info_degrades() {
    let prog = calls_program();
    // A copy of the program that is deleted after the run: its symbols can
    // only come from the cache.
    let copy = tmp().join(format!("calls-copy-{}", std::process::id()));
    std::fs::copy(&prog, &copy).unwrap();
    let (_, file) = run_traced(&[], &copy, &[]);
    let first = json(&file, &["leaks", "--json"]);
    std::fs::remove_file(&copy).unwrap();
    let second = json(&file, &["leaks", "--json"]);
    assert_eq!(first, second);
    assert_eq!(second["leaks"][0]["frames"][0]["function"], "make_big");
    // Without the cache and without the file: module+offset, no failure.
    let (_, file2) = {
        std::fs::copy(&prog, &copy).unwrap();
        let r = run_traced(&[], &copy, &[]);
        std::fs::remove_file(&copy).unwrap();
        r
    };
    let o = Command::new(VMMAP)
        .arg("trace")
        .arg(&file2)
        .args(["leaks", "--json", "--no-symbol-cache"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let l: Value = serde_json::from_slice(&o.stdout).unwrap();
    let name = copy.file_name().unwrap().to_str().unwrap();
    let f0 = l["leaks"][0]["frames"][0]["function"].as_str().unwrap();
    assert!(f0.starts_with(&format!("{name}+0x")), "{f0}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no symbols for"));
    // --symbols DIR finds the file again by name (same build id).
    let dir = tmp().join(format!("symdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&prog, dir.join(name)).unwrap();
    let l = json(
        &file2,
        &["leaks", "--json", "--symbols", dir.to_str().unwrap()],
    );
    assert_eq!(l["leaks"][0]["frames"][0]["function"], "make_big");
}

/// An analysis reads: root looking at another user's trace leaves it as
/// it was, byte for byte (the symbol cache goes only into the user's own
/// files), where its own copy of the same trace gains the cache.
#[test]
fn analysing_another_users_trace_leaves_it_unchanged() {
    let prog = calls_program();
    let (_, file) = run_traced(&["--no-exit-snapshot"], &prog, &[]);
    let theirs = tmp().join(format!("theirs-{}.vmmap", std::process::id()));
    let mine = tmp().join(format!("mine-{}.vmmap", std::process::id()));
    std::fs::copy(&file, &theirs).unwrap();
    std::fs::copy(&file, &mine).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let before = std::fs::read(&theirs).unwrap();
    for f in [&theirs, &mine] {
        on_file("trace", f, &["calltree"]);
        on_file("open", f, &[]);
    }
    assert!(
        std::fs::read(&theirs).unwrap() == before,
        "another user's trace was changed by reading it"
    );
    assert!(
        std::fs::metadata(&mine).unwrap().len() > before.len() as u64,
        "the user's own copy did not gain the symbol cache"
    );
}

/// heaptrack's totals for a program, from `heaptrack_print`: (calls,
/// bytes allocated, peak, leaked, temporary). Peak and leaked come rounded
/// to units of 1000 with two decimals.
pub(crate) fn heaptrack_totals(prog: &Path, tag: &str) -> [f64; 5] {
    heaptrack_totals_with(prog, &[], tag)
}

/// [`heaptrack_totals`] of `prog args…` (standard input empty).
pub(crate) fn heaptrack_totals_with(prog: &Path, args: &[&str], tag: &str) -> [f64; 5] {
    let dir = tmp().join(format!("heaptrack-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new(require_tool("heaptrack", "heaptrack"))
        .arg("-o")
        .arg(dir.join("ht"))
        .arg(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("heaptrack is needed for this cross-check (apt-get install heaptrack)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let data = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("ht"))
        .unwrap();
    let hist = dir.join("hist.txt");
    let o = Command::new(require_tool("heaptrack_print", "heaptrack"))
        .arg(&data)
        .arg("-H")
        .arg(&hist)
        .args(["--print-peaks", "0", "--print-allocators", "0"])
        .args(["--print-temporary", "0", "--print-leaks", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let field = |label: &str| -> f64 {
        let s = text
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("{label} not in heaptrack_print output:\n{text}"))
            .trim()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let (n, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
        let k = match unit {
            "K" => 1e3,
            "M" => 1e6,
            _ => 1.0,
        };
        n.parse::<f64>().unwrap() * k
    };
    [
        field("calls to allocation functions:"),
        // This heaptrack prints no byte total: sum its size histogram
        // (size, count per line), which is exact.
        std::fs::read_to_string(&hist)
            .unwrap()
            .lines()
            .map(|l| {
                let (size, n) = l.split_once('\t').unwrap();
                size.parse::<f64>().unwrap() * n.parse::<f64>().unwrap()
            })
            .sum(),
        field("peak heap memory consumption:"),
        field("total memory leaked:"),
        field("temporary memory allocations:"),
    ]
}

/// heaptrack, run on the same program, agrees on the totals once its own
/// cost is taken off: heaptrack's preloaded library links libstdc++, whose
/// constructor allocates a 72 KiB emergency pool inside the traced
/// process; heaptrack records that (an empty program shows it), vmmap's
/// agent brings no libstdc++ and has nothing to record.
#[test]
fn totals_agree_with_heaptrack() {
    let prog = calls_program();
    let empty_src = tmp().join("empty.c");
    std::fs::write(&empty_src, "int main(void) { return 0; }\n").unwrap();
    let empty = build("empty", &["cc", "-O0", empty_src.to_str().unwrap()]);
    let file = traced_calls();
    let t = json(&file, &["calltree", "--json", "--min-percent", "0"]);
    let root = &t["tree"];
    let ht = heaptrack_totals(&prog, "calls");
    let base = heaptrack_totals(&empty, "empty");
    let ours = [
        root["calls"].as_f64().unwrap(),
        root["allocated"].as_f64().unwrap(),
        root["peak"].as_f64().unwrap(),
        root["live_bytes"].as_f64().unwrap(),
        root["temporary"].as_f64().unwrap(),
    ];
    let names = ["calls", "allocated", "peak", "leaked", "temporary"];
    for i in 0..5 {
        // Two roundings of at most 5 bytes each.
        assert!(
            (ht[i] - base[i] - ours[i]).abs() <= 10.0,
            "{}: heaptrack {} minus its baseline {} vs vmmap {}",
            names[i],
            ht[i],
            base[i],
            ours[i]
        );
    }
}

#[test]
fn heap_bytes_against_pages_add_up() {
    let src = fixture("heapfill.c");
    let prog = build("heapfill", &["cc", "-O0", "-g", src.to_str().unwrap()]);
    let (o, file) = run_traced(&["-i", "100ms"], &prog, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h = json(&file, &["heap", "--json"]);
    let rows = h["regions"].as_array().unwrap();
    let arena = rows
        .iter()
        .find(|r| r["type"] == "Heap" && r["path"] == "[heap]")
        .unwrap_or_else(|| panic!("no brk heap: {h:#}"));
    // 250 blocks of 1000 bytes, 50 freed: 200 live, 8 bytes of chunk
    // header and rounding each.
    assert_eq!(arena["blocks"], 200, "{h:#}");
    assert_eq!(arena["live"], 200_000);
    assert_eq!(arena["overhead"], 1_600);
    // The 300,000-byte block has its own mmap: a 16-byte header, pages.
    let big = rows
        .iter()
        .find(|r| r["live"] == 300_000)
        .unwrap_or_else(|| panic!("no mmapped block: {h:#}"));
    assert_eq!(big["blocks"], 1);
    let page = 4096;
    assert_eq!(
        big["overhead"],
        (300_016u64).div_ceil(page) * page - 300_000
    );
    for r in rows {
        let f = |k: &str| r[k].as_i64().unwrap();
        assert_eq!(f("size"), f("live") + f("overhead") + f("free"), "{r:#}");
        assert_eq!(f("untouched"), f("size") - f("rss"));
        assert_eq!(f("resident_not_live"), f("rss") - f("live") - f("overhead"));
        let frag = r["frag_percent"].as_f64().unwrap();
        let want = (100.0
            - 100.0 * (f("live") + f("overhead")) as f64 / (f("rss") + f("swap")) as f64)
            .max(0.0);
        assert!((frag - want).abs() < 1e-9, "{r:#}");
    }
    // The timeline puts the live heap next to the kernel's totals: the
    // pause comes after every allocation, so the last point has them all.
    let t: Value = serde_json::from_slice(&on_file("timeline", &file, &["--json"])).unwrap();
    let last = t["points"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["live_heap"], 500_000, "{t:#}");
    assert_eq!(h["live_bytes_total"], 500_000);
    // The history's time filter: every malloc came before the pause.
    let mallocs = |args: &[&str]| {
        let mut v = vec!["history", "--json", "--op", "malloc"];
        v.extend_from_slice(args);
        String::from_utf8(on_file("trace", &file, &v))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(mallocs(&["--to", "0.3"]), 251);
    assert_eq!(mallocs(&["--from", "0.3"]), 0);
    // The same times as durations.
    assert_eq!(mallocs(&["--to", "300ms"]), 251);
    assert_eq!(mallocs(&["--from", "0.3s"]), 0);
    // Owners of the map as recorded at a chosen time: at 4.5 s the big
    // block's mapping exists and is tied to its malloc; at 0 no map was
    // recorded yet. (The agent's writer records the map after a mapping
    // changes, on its next pass, and every second: 4.5 s into the 5 s
    // pause leaves a loaded machine time for that pass, where 0.3 s did
    // not, and 1 s and 2.5 s into a 3 s pause once did not either, in CI
    // runs with every other test beside them.)
    let r = json(&file, &["regions", "--json", "--at", "4.5"]);
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .any(|m| m["first_use"]["size"] == 300_000),
        "{r:#}"
    );
    assert_eq!(json(&file, &["regions", "--json", "--at", "4500ms"]), r);
    let none = String::from_utf8(on_file("trace", &file, &["regions", "--at", "0"])).unwrap();
    assert!(none.starts_with("no map was recorded by then"), "{none}");
    // The HTML report of a traced run carries its call tree.
    let html = tmp().join(format!("heapfill-{}.html", std::process::id()));
    let o = Command::new(VMMAP)
        .arg("report")
        .arg(&file)
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("\"main\"") && page.contains("trace/heapfill.c"),
        "no call tree in the report"
    );
    // Every live block was written, so its pages are resident.
    assert!(
        arena["resident_not_live"].as_i64().unwrap() >= 0,
        "{arena:#}"
    );
    assert!(big["resident_not_live"].as_i64().unwrap() >= 0, "{big:#}");
}

/// The chunks of a native file: (kind, offset of the header, stored length).
fn chunks(file: &Path) -> Vec<(u32, usize, usize)> {
    let b = std::fs::read(file).unwrap();
    let word = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let (mut at, mut v) = (16, Vec::new());
    while at + 16 <= b.len() {
        let stored = word(at + 4) as usize;
        v.push((word(at), at, stored));
        at += 16 + stored;
    }
    assert_eq!(at, b.len(), "{}: chunks end with the file", file.display());
    v
}

/// `vmmap run --resolve-frees` ties every free to its block (the resolved-frees chunk,
/// kind 6) once the program has ended, and every whole-run view gives the
/// same output from it as from the live-block map (the chunk stripped):
/// on a program whose frees all happen on other threads, and on one with
/// realloc in every form, frees of blocks the trace never saw allocated
/// and blocks whose free it never saw. The chunk also answers for exactly
/// the records (read through the library: the views fall back silently
/// when it does not).
#[test]
fn vmmap_run_resolve_frees_ties_frees_and_the_views_agree_without_them() {
    const FREES: u32 = 6;
    let xthread = build(
        "xthread",
        &[
            "g++",
            "-O2",
            "-g",
            "-pthread",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/xthread.cpp")
                .to_str()
                .unwrap(),
        ],
    );
    let frees_src = fixture("frees.c");
    let frees = build("frees", &["cc", "-O1", "-g", frees_src.to_str().unwrap()]);
    for prog in [xthread, frees] {
        let name = prog.file_name().unwrap().to_str().unwrap().to_string();
        let plain = run_plain(&prog, &[]);
        // Not by default: the pass costs the user a wait after the end.
        let (o, file) = run_traced(&[], &prog, &[]);
        same_behaviour(&plain, &o);
        assert!(
            chunks(&file).iter().all(|c| c.0 != FREES),
            "{name}: a resolved-frees chunk without --resolve-frees"
        );
        let (o, file) = run_traced(&["--resolve-frees"], &prog, &[]);
        same_behaviour(&plain, &o);
        let kinds: Vec<u32> = chunks(&file).iter().map(|c| c.0).collect();
        assert_eq!(
            kinds.iter().filter(|&&k| k == FREES).count(),
            1,
            "{name}: one resolved-frees chunk in {kinds:?}"
        );
        // The library's own check: the chunk's answers agree with the
        // records, and count what the map counts.
        let payload = {
            let b = std::fs::read(&file).unwrap();
            let &(_, at, len) = chunks(&file).iter().find(|c| c.0 == FREES).unwrap();
            b[at + 16..at + 16 + len].to_vec()
        };
        let mut with =
            vmmap_trace::summary::Summarizer::with_frees_chunk(payload).expect("the chunk parses");
        let mut map = vmmap_trace::summary::Summarizer::default();
        let open = |f: &Path| vmmap_trace::analysis::open(f).expect("open the trace");
        let s = vmmap_trace::scan::scan(open(&file), |r| {
            with.add(r);
            map.add(r);
        });
        assert!(
            with.resolution_agrees(&s.info),
            "{name}: the chunk answers for the records"
        );
        let (sum_with, costs_with, _) = with.finish_costs(&s.info);
        let (sum_map, costs_map, _) = map.finish_costs(&s.info);
        assert_eq!(sum_with, sum_map, "{name}: summary");
        assert_eq!(costs_with, costs_map, "{name}: per-stack costs");
        assert!(sum_map.frees > 1000, "{name}: {} frees", sum_map.frees);
        if name == "frees" {
            assert!(
                sum_map.unknown_frees >= 600,
                "{name}: frees of unknown blocks: {}",
                sum_map.unknown_frees
            );
        }
        // The same file without the chunk.
        let stripped = tmp().join(format!("{name}-stripped-{}.vmmap", std::process::id()));
        let b = std::fs::read(&file).unwrap();
        let mut out = b[..16].to_vec();
        for (kind, at, len) in chunks(&file) {
            if kind != FREES {
                out.extend_from_slice(&b[at..at + 16 + len]);
            }
        }
        std::fs::write(&stripped, out).unwrap();
        assert!(!chunks(&stripped).iter().any(|c| c.0 == FREES));
        for args in [
            &["calltree", "--no-symbol-cache", "--min-percent", "0"][..],
            &[
                "calltree",
                "--no-symbol-cache",
                "--bottom-up",
                "--lines",
                "--json",
                "--min-percent",
                "0",
            ],
            &["leaks", "--no-symbol-cache", "--top", "0"],
            &["summary", "--json"],
        ] {
            let a = on_file("trace", &file, args);
            let b = on_file("trace", &stripped, args);
            assert!(
                a == b,
                "{name}: `vmmap trace FILE {}` differs without the chunk:\n--- with\n{}\n--- without\n{}",
                args.join(" "),
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
        }
        let _ = std::fs::remove_file(&stripped);
        let _ = std::fs::remove_file(&file);
    }
}
