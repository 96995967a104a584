//! The Owner column of a traced run's snapshots (`vmmap open FILE`): the
//! line that made each region as of the snapshot's time, and for the heap
//! the stack holding most of its live bytes, with exactly those bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::trace::{build, fixture, on_file, run_traced, tmp};
use crate::util::VMMAP;

/// The line of `marker` in owned.c.
fn line_of(marker: &str) -> u64 {
    let text = std::fs::read_to_string(fixture("owned.c")).unwrap();
    text.lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in owned.c")) as u64
        + 1
}

fn owned_program() -> PathBuf {
    let src = fixture("owned.c");
    build("owned", &["cc", "-O0", "-g", src.to_str().unwrap()])
}

/// owned.c traced with a snapshot every 100 ms.
fn traced_owned() -> PathBuf {
    let (o, file) = run_traced(&["-i", "100ms"], &owned_program(), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    file
}

/// `vmmap open FILE ARGS… --json`.
fn open_json(file: &Path, args: &[&str]) -> Value {
    let mut v = args.to_vec();
    v.push("--json");
    serde_json::from_slice(&on_file("open", file, &v)).expect("JSON output")
}

/// Snapshots in the file.
fn snapshots(file: &Path) -> usize {
    let o = Command::new(VMMAP)
        .arg("open")
        .arg(file)
        .args(["--snapshot", "100000", "--no-owners"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let n = err
        .split("has snapshots 1 to ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap_or_else(|| panic!("{err}"));
    n.parse().unwrap()
}

fn regions(doc: &Value) -> &Vec<Value> {
    doc["regions"].as_array().unwrap()
}

/// The region map_area made, if the snapshot has it.
fn mapped(doc: &Value) -> Option<&Value> {
    let v: Vec<&Value> = regions(doc)
        .iter()
        .filter(|r| r["owner"]["function"] == "map_area")
        .collect();
    assert!(v.len() <= 1, "{v:#?}");
    v.first().copied()
}

fn brk_heap(doc: &Value) -> Option<&Value> {
    regions(doc).iter().find(|r| r["path"] == "[heap]")
}

#[test]
fn the_details_of_a_traced_snapshot_name_the_line_that_made_each_region() {
    let file = traced_owned();
    let (map_line, hold_line) = (line_of("MAP_AREA_LINE"), line_of("HOLD_LINE"));
    let last = open_json(&file, &[]);
    let m = mapped(&last).unwrap_or_else(|| panic!("no region owned by map_area: {last:#}"));
    assert_eq!(m["figures"]["size"], 3 * 65536);
    let o = &m["owner"];
    assert_eq!((&o["kind"], &o["op"]), (&"call".into(), &"mmap".into()));
    assert_eq!(o["line"], map_line);
    assert!(o["file"].as_str().unwrap().ends_with("trace/owned.c"));
    // The brk heap: 15 of hold's 1500-byte blocks are live in it, more than
    // note's 20 x 64.
    let h = brk_heap(&last).unwrap_or_else(|| panic!("no brk heap: {last:#}"));
    let o = &h["owner"];
    assert_eq!(o["kind"], "live-heap", "{h:#}");
    assert_eq!(
        (&o["function"], &o["line"]),
        (&"hold".into(), &hold_line.into())
    );
    assert_eq!(o["live_bytes"], 15 * 1500);

    // libm, which the program dlopen'ed: the line of that call, on the
    // image and each of its segments.
    let libm = regions(&last)
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("/libm.so.6"))
        .unwrap_or_else(|| panic!("libm not loaded: {last:#}"));
    for o in std::iter::once(&libm["owner"]).chain(
        libm["sub_blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["owner"]),
    ) {
        assert_eq!((&o["kind"], &o["op"]), (&"image".into(), &"dlopen".into()));
        assert_eq!(
            (&o["function"], &o["line"]),
            (&"load_libm".into(), &line_of("DLOPEN_LINE").into())
        );
    }

    // The text Details: the Owner column on those two rows.
    let text = String::from_utf8(on_file("open", &file, &[])).unwrap();
    let row = |start: &Value| {
        let hex = start.as_str().unwrap().trim_start_matches("0x").to_string();
        text.lines()
            .find(|l| l.starts_with(&hex))
            .unwrap_or_else(|| panic!("no row {hex}: {text}"))
            .to_string()
    };
    let head = text.lines().find(|l| l.starts_with("Address")).unwrap();
    assert!(head.contains("  Owner "), "{head}");
    assert!(
        row(&m["start"]).contains(&format!("map_area (trace/owned.c:{map_line})")),
        "{text}"
    );
    assert!(
        row(&h["start"]).contains(&format!("hold (trace/owned.c:{hold_line}) +22K live")),
        "{text}"
    );
    // --no-owners leaves the column out.
    let plain = String::from_utf8(on_file("open", &file, &["--no-owners"])).unwrap();
    assert!(!plain.contains("Owner"), "{plain}");

    // Each snapshot's owners are as of its own time: before the free, the
    // mmap and the dlopen, all 20 of hold's blocks were live and neither
    // map_area nor load_libm had made anything; every snapshot after has
    // 15, the mapping and libm.
    let n = snapshots(&file);
    let (mut before, mut after) = (0, 0);
    for k in 1..=n {
        let doc = open_json(&file, &["--snapshot", &k.to_string()]);
        let Some(h) = brk_heap(&doc) else { continue };
        let live = h["owner"]["live_bytes"].as_u64();
        let map = mapped(&doc).is_some();
        let libm = regions(&doc).iter().any(|r| r["owner"]["op"] == "dlopen");
        // In program order: frees, mmap, dlopen (a snapshot may fall
        // between two of them).
        let state = (live, map, libm);
        assert!(
            matches!(
                state,
                (Some(30_000), false, false)
                    | (Some(22_500), false, false)
                    | (Some(22_500), true, _)
            ),
            "snapshot {k} of {n}: {state:?}"
        );
        before += usize::from(state == (Some(30_000), false, false));
        after += usize::from(state == (Some(22_500), true, true));
    }
    assert!(before >= 1 && after >= 1, "{before} before, {after} after");
}

#[test]
fn exports_of_a_traced_snapshot_carry_the_owner() {
    let file = traced_owned();
    let hold_line = line_of("HOLD_LINE");
    let csv = String::from_utf8(on_file("open", &file, &["--csv"])).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",path,details,owner"));
    let heap = lines
        .find(|l| l.contains(",[heap],"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        heap.ends_with(&format!(",hold (trace/owned.c:{hold_line}) +22K live")),
        "{heap}"
    );
    // `convert` to JSON carries them too.
    let out = tmp().join(format!("owned-{}.json", std::process::id()));
    let o = Command::new(VMMAP)
        .arg("convert")
        .arg(&file)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let h = brk_heap(&doc).unwrap();
    assert_eq!(h["owner"]["function"], "hold");
    assert_eq!(h["owner"]["live_bytes"], 15 * 1500);
    // A file of the same program without the agent: no trace, so the
    // exports are those of any snapshot (no owner field, no column).
    let (o, plain) = run_traced(&["--snapshot-only", "-i", "100ms"], &owned_program(), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = open_json(&plain, &[]);
    assert!(regions(&doc).iter().all(|r| r.get("owner").is_none()));
    let csv = String::from_utf8(on_file("open", &plain, &["--csv"])).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",path,details"));
    // The symbols the first open resolved are cached in the file: with the
    // program gone, a copy of the trace still names the owners.
    let copy = tmp().join(format!("owned-copy-{}.vmmap", std::process::id()));
    let prog_copy = tmp().join(format!("owned-prog-{}", std::process::id()));
    std::fs::copy(owned_program(), &prog_copy).unwrap();
    let (o, traced) = run_traced(&["-i", "100ms"], &prog_copy, &[]);
    assert!(o.status.success());
    let first = open_json(&traced, &[]);
    std::fs::remove_file(&prog_copy).unwrap();
    std::fs::copy(&traced, &copy).unwrap();
    let second = open_json(&copy, &[]);
    let owner = |d: &Value| brk_heap(d).map(|h| h["owner"].clone());
    assert_eq!(owner(&first), owner(&second));
    assert_eq!(owner(&second).unwrap()["function"], "hold");
}

/// Symbols cached in a trace file (`CHUNK_SYMBOLS` chunks).
fn cached_functions(file: &Path) -> Vec<String> {
    use vmmap_core::format::{ChunkStream, CHUNK_TRACE};
    let s = vmmap_trace::scan::scan(ChunkStream::open(file, CHUNK_TRACE).unwrap(), |_| {});
    s.symbol_cache
        .iter()
        .flat_map(|m| m.entries.iter().flat_map(|(_, f)| f.iter()))
        .map(|f| f.function.clone())
        .collect()
}

/// What the TUI runs when it opens a traced file (the Owner column's job)
/// and when `T` opens the Trace view (the analysis) writes the symbols it
/// resolved into the file: a second open names the functions of a
/// program that no longer exists.
#[test]
fn the_tui_caches_the_symbols_it_resolves_in_the_file() {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use vmmap_trace::symbol_cache::CacheWrite;
    use vmmap_tui::{owners_job, trace_jobs};
    let prog = tmp().join(format!("owned-tui-{}", std::process::id()));
    std::fs::copy(owned_program(), &prog).unwrap();
    let (o, traced) = run_traced(&["-i", "100ms"], &prog, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let for_owners = tmp().join(format!("owned-tui-owners-{}.vmmap", std::process::id()));
    let for_trace = tmp().join(format!("owned-tui-trace-{}.vmmap", std::process::id()));
    std::fs::copy(&traced, &for_owners).unwrap();
    std::fs::copy(&traced, &for_trace).unwrap();
    assert!(cached_functions(&for_owners).is_empty());
    let snap = vmmap_core::format::load_file(&for_owners)
        .unwrap()
        .snapshots
        .pop()
        .unwrap();
    let heap = snap
        .regions
        .iter()
        .position(|r| &*r.path == "[heap]")
        .unwrap();
    let no = AtomicBool::new(false);
    let owner_of_heap = || {
        let o = owners_job::compute(&for_owners, &snap, &no)
            .unwrap()
            .expect("owners");
        (o.region(heap).cloned().unwrap(), o.cache.clone())
    };
    let (first, cache) = owner_of_heap();
    assert!(
        matches!(cache, CacheWrite::Appended(n) if n > 0),
        "{cache:?}"
    );
    assert!(cached_functions(&for_owners).contains(&"hold".to_string()));
    let analysis = || {
        trace_jobs::analyse(
            &trace_jobs::TraceSource::named(for_trace.clone()),
            None,
            &AtomicU64::new(0),
            &no,
        )
        .unwrap()
    };
    let a = analysis();
    assert!(
        matches!(a.cache, CacheWrite::Appended(n) if n > 0),
        "{:?}",
        a.cache
    );
    assert!(cached_functions(&for_trace).contains(&"hold".to_string()));

    std::fs::remove_file(&prog).unwrap();
    // Second opens: the program is gone, its names come from the cache.
    let (second, cache) = owner_of_heap();
    assert_eq!(cache, CacheWrite::UpToDate);
    assert_eq!(first, second);
    assert_eq!(second.frame.as_ref().unwrap().function, "hold");
    let a = analysis();
    assert_eq!(a.cache, CacheWrite::UpToDate);
    // The stack that allocated 20 x 1500 bytes is hold's.
    let id = a.costs.iter().position(|c| c.bytes == 30_000).unwrap();
    let frames = vmmap_trace::calltree::stack_frames(&a.info, &a.syms, a.images[id], id as u32);
    assert_eq!(frames[0].function, "hold", "{:?}", a.notes);
}
