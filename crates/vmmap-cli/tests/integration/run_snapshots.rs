//! `vmmap run` records the program's map right after exec and at exit,
//! however short the run, without changing what the program does; and
//! its snapshots type memory with what the trace knows.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::trace::{build, fixture, on_file, run_plain, run_traced, tmp, without_addresses};
use crate::util::{hex, region_at, require_tool};

/// The size `brief` maps right before it ends (LAST_BYTES).
const LAST_BYTES: u64 = 3 * 1024 * 1024 + 5 * 4096;

fn brief() -> PathBuf {
    let src = fixture("brief.c");
    build(
        "brief",
        &[
            "cc",
            "-O1",
            "-g",
            "-Wall",
            "-pthread",
            src.to_str().unwrap(),
        ],
    )
}

/// The snapshots of a file, each as `vmmap open FILE --snapshot N --json`
/// gives it.
fn snapshots(file: &Path) -> Vec<Value> {
    let t: Value = serde_json::from_slice(&on_file("timeline", file, &["--json"])).unwrap();
    let n = t["points"].as_array().map_or(0, Vec::len);
    (1..=n)
        .map(|i| {
            serde_json::from_slice(&on_file(
                "open",
                file,
                &["--snapshot", &i.to_string(), "--json"],
            ))
            .unwrap()
        })
        .collect()
}

/// The address the program printed after `key`.
fn printed(o: &Output, key: &str) -> u64 {
    let out = String::from_utf8_lossy(&o.stdout);
    let v = out
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} line in {out:?}"));
    u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).unwrap()
}

/// The file is usable by every view: open (text), report, timeline with
/// at least two rows.
fn usable(file: &Path) {
    let text = String::from_utf8(on_file("open", file, &[])).unwrap();
    assert!(text.contains("Process:"), "{text}");
    let html = tmp().join(format!(
        "{}.html",
        file.file_name().unwrap().to_string_lossy()
    ));
    on_file("report", file, &["-o", html.to_str().unwrap()]);
    assert!(std::fs::metadata(&html).unwrap().len() > 0);
    let timeline = String::from_utf8(on_file("timeline", file, &[])).unwrap();
    let rows = timeline
        .lines()
        // The snapshot at exec comes a little before the agent's clock
        // starts: its time is just below 0 (docs/tracing.md).
        .filter(|l| {
            l.trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || c == '-')
        })
        .count();
    assert!(rows >= 2, "timeline has {rows} rows:\n{timeline}");
}

#[test]
fn a_short_run_has_its_map_at_start_and_at_exit() {
    let prog = brief();
    // No interval snapshot at all: only start and exit.
    let (o, file) = run_traced(&[], &prog, &["exit", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snaps = snapshots(&file);
    assert!(snaps.len() >= 2, "{} snapshot(s)", snaps.len());
    usable(&file);
    // The exit snapshot holds the region mapped right before the end,
    // with its exact size; the start one does not.
    let last = printed(&o, "last ");
    let at_exit = snaps.last().unwrap();
    let r = at_exit["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| hex(&r["start"]) == last)
        .unwrap_or_else(|| panic!("no region at {last:#x} in the exit snapshot"));
    assert_eq!(hex(&r["end"]) - hex(&r["start"]), LAST_BYTES);
    assert!(!snaps[0]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| hex(&r["start"]) <= last && last < hex(&r["end"])));
}

#[test]
fn java_version_has_its_map_at_start_and_at_exit() {
    let (o, file) = run_traced(&[], Path::new("java"), &["-version"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("version"),
        "java printed no version: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let snaps = snapshots(&file);
    assert!(snaps.len() >= 3, "{} snapshot(s)", snaps.len());
    usable(&file);
    // Between the one at exec and the one at exit, one taken once the
    // agent ran.
    assert!(snaps[1..snaps.len() - 1]
        .iter()
        .any(
            |s| s["regions"].as_array().unwrap().iter().any(|r| r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("libvmmap_agent.so")))
        ));
    // The exit snapshot is java's whole map (the JVM's images), not just
    // the loader's.
    let exe = snaps.last().unwrap()["process"]["exe"]
        .as_str()
        .unwrap_or("");
    assert!(exe.contains("java"), "{exe}");
    assert!(snaps.last().unwrap()["regions"].as_array().unwrap().len() > 50);
}

#[test]
fn the_program_runs_unchanged_with_its_exit_watched() {
    let prog = brief();
    let cases: &[&[&str]] = &[
        &["exit", "0"],
        &["exit", "3"],
        &["segv"],
        &["abort"],
        // A program that is itself a ptrace user.
        &["tracer"],
    ];
    for args in cases {
        let plain = run_plain(&prog, args);
        let (traced, file) = run_traced(&[], &prog, args);
        assert_eq!(
            without_addresses(&plain.stdout),
            without_addresses(&traced.stdout),
            "{args:?}"
        );
        // vmmap ends as the program did: the same code, or killed by the
        // same signal.
        assert_eq!(
            (traced.status.code(), traced.status.signal()),
            (plain.status.code(), plain.status.signal()),
            "{args:?}: plain {:?}, traced: {}",
            plain.status,
            String::from_utf8_lossy(&traced.stderr)
        );
        let n = snapshots(&file).len();
        assert!(n >= 2, "{args:?}: {n} snapshot(s)");
    }
    let st = std::process::Command::new(require_tool("strace", "strace"))
        .args(["-o", "/dev/null", "true"])
        .status()
        .expect("strace is installed (./test.sh installs it)");
    assert!(st.success());
    let (traced, file) = run_traced(&[], Path::new("strace"), &["-o", "/dev/null", "true"]);
    assert!(
        traced.status.success(),
        "strace under vmmap run: {}",
        String::from_utf8_lossy(&traced.stderr)
    );
    assert!(snapshots(&file).len() >= 2);
}

/// The regions of a snapshot, with their sub-blocks.
fn all_regions(snap: &Value) -> Vec<&Value> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        for r in v.as_array().into_iter().flatten() {
            out.push(r);
            walk(&r["sub_blocks"], out);
        }
    }
    let mut out = Vec::new();
    walk(&snap["regions"], &mut out);
    out
}

/// The thread ids the fixture prints, one `tid N ...` line each.
fn printed_tids(out: &str) -> Vec<u64> {
    out.lines()
        .filter_map(|l| l.strip_prefix("tid "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn traced_snapshots_type_thread_stacks_and_arenas() {
    let prog = brief();
    let (o, file) = run_traced(&["-i", "300ms"], &prog, &["threads", "4", "1500"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let tids = printed_tids(&out);
    assert_eq!(tids.len(), 5, "{out}");
    let snaps = snapshots(&file);
    assert!(snaps.len() >= 3, "{} snapshot(s)", snaps.len());
    // The last is the one at exit: it holds the region mapped right
    // before the end.
    let last = printed(&o, "last ");
    let at_exit = snaps.last().unwrap();
    assert!(all_regions(at_exit)
        .iter()
        .any(|r| hex(&r["start"]) == last && hex(&r["end"]) - last == LAST_BYTES));
    // Every snapshot taken once every worker had its arena (an interval's,
    // and the one at exit, where the kernel lists the other threads no
    // more): each thread's stack is Stack with its TID, no warning about
    // ptrace, and the workers' arenas are Heap.
    let ready = ready_ns(&out);
    let blocks: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("block 0x"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .collect();
    assert_eq!(blocks.len(), 4, "{out}");
    let mut checked = 0;
    for (i, s) in snaps.iter().enumerate() {
        if !read_after(s, ready) {
            continue;
        }
        let listed: Vec<u64> = s["process"]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tid"].as_u64().unwrap())
            .collect();
        if !tids.iter().all(|t| listed.contains(t)) {
            continue;
        }
        checked += 1;
        let regions = all_regions(s);
        for tid in &tids {
            let name = format!("Thread {tid} ");
            let r = regions
                .iter()
                .find(|r| r["details"].as_str().unwrap_or("").starts_with(&name))
                .unwrap_or_else(|| {
                    panic!(
                        "snapshot {} of {}: no stack of thread {tid}; threads {}, warnings {}",
                        i + 1,
                        snaps.len(),
                        s["process"]["threads"],
                        s["warnings"]
                    )
                });
            assert_eq!(r["type"], "stack", "snapshot {}: {r}", i + 1);
            assert!(
                !r["details"].as_str().unwrap().ends_with("()"),
                "snapshot {}: {}",
                i + 1,
                r["details"]
            );
        }
        let warnings = s["warnings"].to_string();
        assert!(
            !warnings.contains("ptrace"),
            "snapshot {}: {warnings}",
            i + 1
        );
        // Each worker's last block lies in memory typed Heap (its arena;
        // glibc may hand an arena a thread of the agent's gave back, so
        // the test counts blocks, not arenas).
        for &block in &blocks {
            let r = regions
                .iter()
                .rfind(|r| hex(&r["start"]) <= block && block < hex(&r["end"]))
                .unwrap_or_else(|| panic!("snapshot {}: no region holds {block:#x}", i + 1));
            assert_eq!(
                r["type"],
                "heap",
                "snapshot {}: the region holding a worker's block {block:#x}: {r}",
                i + 1
            );
        }
    }
    // The one at exit and at least one interval's.
    assert!(checked >= 2, "{checked} snapshot(s) with every thread");
}

#[test]
fn no_exit_snapshot_leaves_the_program_untraced() {
    let prog = brief();
    let (o, file) = run_traced(&["--no-exit-snapshot"], &prog, &["tracerpid"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("tracerpid 0"), "{out}");
    assert!(!snapshots(&file).is_empty());
    // Without it, the launcher is its tracer until it exits.
    let (o, _) = run_traced(&[], &prog, &["tracerpid"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("tracerpid 0"), "{out}");
}

#[test]
fn arenas_growing_under_the_snapshots_are_heap() {
    let prog = brief();
    let (o, file) = run_traced(&["-i", "100ms"], &prog, &["grow", "4", "1500"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let tids = printed_tids(&out);
    let ready = ready_ns(&out);
    let mut checked = 0;
    for (i, s) in all_snapshots_with(&file, &tids) {
        // A worker is listed before its first malloc makes its arena: only
        // snapshots from when every worker had one (the fixture prints
        // that time) must show four.
        if !read_after(&s, ready) {
            continue;
        }
        checked += 1;
        let arenas: Vec<String> = all_regions(&s)
            .iter()
            .filter(|r| {
                r["details"].as_str().unwrap_or("").contains("glibc arena")
                    && r["owner"]["kind"] != "agent"
            })
            .map(|r| format!("{} {}", r["start"], r["type"]))
            .collect();
        // Each worker's arena, while it grows under the snapshot, typed
        // Heap. At least four: the agent's writer thread may have an arena
        // of its own, not always attributed to the agent yet.
        assert!(
            arenas.len() >= 4 && arenas.iter().all(|a| a.ends_with("\"heap\"")),
            "snapshot {i}: {arenas:?}"
        );
        let private: Vec<String> = all_regions(&s)
            .iter()
            .filter(|r| {
                r["type"] == "private_data"
                    && hex(&r["start"]) % (64 << 20) == 0
                    && r["owner"]["kind"] != "agent"
            })
            .map(|r| format!("{} {}", r["start"], r["owner"]["text"]))
            .collect();
        assert!(private.is_empty(), "snapshot {i}: {private:?}");
    }
    assert!(checked >= 5, "{checked} snapshot(s) with every thread");
}

/// How long after a moment a snapshot must be stamped to have read the
/// maps after it: a snapshot is stamped when it ends, after the maps were
/// read and the regions classified, so one stamped just after the
/// fixture's `ready` line may hold a map read before its last arena
/// existed (seen once in CI). A snapshot of these small fixtures takes a
/// few milliseconds, tens under CI's load.
const SNAPSHOT_SLACK_NS: u64 = 250_000_000;

/// Whether snapshot `s` read the maps after `ready` (Unix nanoseconds).
fn read_after(s: &Value, ready: u64) -> bool {
    s["taken_at_unix_ns"].as_u64().unwrap() >= ready + SNAPSHOT_SLACK_NS
}

/// When the `brief threads`/`grow` fixture's workers all had their arenas
/// (its `ready` line, in Unix nanoseconds).
fn ready_ns(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("ready "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ready line: {out}"))
}

/// The snapshots (numbered from 1) that list every one of `tids`.
fn all_snapshots_with(file: &Path, tids: &[u64]) -> Vec<(usize, Value)> {
    snapshots(file)
        .into_iter()
        .enumerate()
        .filter(|(_, s)| {
            let listed: Vec<u64> = s["process"]["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["tid"].as_u64().unwrap())
                .collect();
            tids.iter().all(|t| listed.contains(t))
        })
        .map(|(i, s)| (i + 1, s))
        .collect()
}

/// The summary row of type `t` of a snapshot's JSON (`vmmap-agent`: the
/// agent's row, apart).
fn summary_row<'a>(snap: &'a Value, t: &str) -> &'a Value {
    if t == "vmmap-agent" {
        return &snap["agent"];
    }
    snap["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == t)
        .unwrap_or_else(|| panic!("no {t} row in {}", snap["summary"]))
}

#[test]
fn the_agents_memory_is_counted_apart_from_the_programs() {
    let prog = brief();
    let (o, file) = run_traced(&[], &prog, &["exit", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same program without the agent: its exit snapshot is the
    // program's memory alone.
    let (plain, plain_file) = run_traced(&["--snapshot-only"], &prog, &["exit", "0"]);
    assert!(plain.status.success());
    let snap = snapshots(&file).pop().unwrap();
    let alone = snapshots(&plain_file).pop().unwrap();
    let agent = &snap["agent"];
    assert!(
        agent.is_object(),
        "no vmmap agent row in the traced snapshot: {}",
        snap["summary"]
    );
    assert_eq!(agent["type"], "vmmap-agent");
    assert!(alone.get("agent").is_none(), "{}", alone["agent"]);
    let regions = snap["regions"].as_array().unwrap();
    let page_table = summary_row(&snap, "page_table");
    for col in [
        "size",
        "committed",
        "private",
        "total_ws",
        "private_ws",
        "pss",
    ] {
        let f = |r: &Value| r[col].as_u64().unwrap();
        let g = |r: &Value| r["figures"][col].as_u64().unwrap();
        // The agent's row is the regions the Owner column gives the agent.
        let owned: u64 = regions
            .iter()
            .filter(|r| r["owner"]["kind"] == "agent")
            .map(g)
            .sum();
        assert_eq!(f(agent), owned, "{col}: agent row against its regions");
        // The program's Total and the agent's row are the process's whole
        // figures (the page tables are the process's, in the program's).
        let whole: u64 = regions.iter().map(g).sum();
        assert_eq!(
            f(summary_row(&snap, "total")) + f(agent),
            whole + f(page_table),
            "{col}: program plus agent against every region"
        );
    }
    // Against the kernel's own sum of smaps.
    assert_eq!(
        summary_row(&snap, "total")["total_ws"].as_u64().unwrap()
            + agent["total_ws"].as_u64().unwrap(),
        snap["rollup"]["Rss"].as_u64().unwrap()
    );
    // Every region that is plainly the agent's is in its row: its
    // library, its named memory, its writer's stack.
    let agent_lib = crate::trace::agent();
    let agent_lib = agent_lib.to_str().unwrap();
    let plainly: Vec<&Value> = regions
        .iter()
        .filter(|r| {
            r["path"] == agent_lib
                || r["path"].as_str().unwrap().starts_with("[anon:vmmap-agent")
                || r["details"].as_str().unwrap().contains("(vmmap-agent)")
        })
        .collect();
    assert_eq!(plainly.len(), 2, "the agent's library and writer's stack");
    assert!(
        regions
            .iter()
            .any(|r| r["owner"]["kind"] == "agent" && r["type"] == "private_data"),
        "none of the agent's buffers is in its row"
    );
    for r in plainly {
        assert_eq!(
            r["owner"]["kind"], "agent",
            "{} {} is not counted as the agent's",
            r["start"], r["path"]
        );
    }
    // The program's own allocations give the same figures as without
    // the agent: its brk heap (every malloc it made) and its shared
    // mapping of LAST_BYTES.
    for t in ["heap", "shareable"] {
        for col in ["size", "total_ws", "private", "blocks"] {
            assert_eq!(
                summary_row(&snap, t)[col],
                summary_row(&alone, t)[col],
                "{t} {col}: the program's own memory differs under the agent"
            );
        }
    }
    assert!(summary_row(&snap, "shareable")["size"].as_u64().unwrap() >= LAST_BYTES);
    // The text shows the agent's line after the program's Total.
    let text = String::from_utf8(on_file("open", &file, &["--summary", "--bytes"])).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.iter().position(|l| l.starts_with("Total ")).unwrap();
    let line = lines[total + 1];
    assert!(line.starts_with("vmmap agent "), "{text}");
    let size = agent["size"].as_u64().unwrap().to_string();
    assert!(
        line.split_whitespace().any(|w| w.replace(',', "") == size),
        "{line} against {size}"
    );
    let text = String::from_utf8(on_file("open", &plain_file, &["--summary"])).unwrap();
    assert!(!text.contains("vmmap agent"), "{text}");
    // The HTML report: the same program Total, the agent's row apart.
    let html = std::env::temp_dir().join(format!("agent-apart-{}.html", std::process::id()));
    on_file("report", &file, &["-o", html.to_str().unwrap()]);
    let data = crate::report::embedded(&std::fs::read_to_string(&html).unwrap());
    std::fs::remove_file(&html).unwrap();
    let last = data["snaps"].as_array().unwrap().last().unwrap();
    let cols: Vec<&str> = data["sum_cols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let sums = last["sum"].as_array().unwrap();
    let total = sums.last().unwrap();
    for (k, col) in cols.iter().enumerate() {
        assert_eq!(last["ag"][k], agent[*col], "report: agent {col}");
        assert_eq!(
            total[k],
            summary_row(&snap, "total")[*col],
            "report: total {col}"
        );
    }
}

/// Every timeline of a traced run leaves the agent's memory out, as the
/// snapshots' Summary does: at each snapshot, `vmmap timeline --json` and
/// the HTML report's timeline give the program's own totals and types,
/// the figures `vmmap open --snapshot N --json` gives.
/// The size `brief first` maps as the first thing `main` does.
const FIRST_BYTES: u64 = 256 * 1024 * 1024 + 7 * 4096;

/// A mapping the program makes at once is the program's, never counted
/// in the agent's row: the agent's own ranges are the ones new while the
/// program is still held back. Read once the program ran, they took xz's
/// dictionary for the agent's now and then; `brief first` crowds its map
/// so that the race is lost at every run (a few runs all the same).
#[test]
fn a_mapping_made_at_once_is_never_the_agents() {
    let prog = brief();
    for run in 0..4 {
        let (o, file) = run_traced(&[], &prog, &["first"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let first = printed(&o, "first ");
        let snap = snapshots(&file).pop().unwrap();
        let size = snap["agent"]["size"].as_u64().unwrap();
        assert!(
            size < FIRST_BYTES,
            "run {run}: the agent's row has {size} bytes, the program's mapping among them"
        );
        let r = region_at(&snap, first);
        assert_ne!(r["owner"]["kind"], "agent", "run {run}: {r}");
    }
}

#[test]
fn timelines_leave_the_agents_memory_out() {
    let prog = brief();
    let (o, file) = run_traced(&[], &prog, &["exit", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snaps = snapshots(&file);
    let timeline: Value = serde_json::from_slice(&on_file("timeline", &file, &["--json"])).unwrap();
    let points = timeline["points"].as_array().unwrap();
    let html = tmp().join(format!("agent-timeline-{}.html", std::process::id()));
    on_file("report", &file, &["-o", html.to_str().unwrap()]);
    let data = crate::report::embedded(&std::fs::read_to_string(&html).unwrap());
    std::fs::remove_file(&html).unwrap();
    let in_report = data["timeline"].as_array().unwrap();
    assert_eq!(points.len(), snaps.len());
    assert_eq!(in_report.len(), snaps.len());
    // The agent holds memory at exit: the test would prove nothing if no
    // snapshot had an agent row.
    assert!(
        snaps.last().unwrap()["agent"]["total_ws"].as_u64().unwrap() > 0,
        "{}",
        snaps.last().unwrap()["agent"]
    );
    for (i, ((p, r), snap)) in points.iter().zip(in_report).zip(&snaps).enumerate() {
        let total = summary_row(snap, "total");
        for (col, key) in [("total_ws", "rss"), ("pss", "pss"), ("swap", "swap")] {
            assert_eq!(p[key], total[col], "snapshot {}: timeline {key}", i + 1);
            assert_eq!(r[key], total[col], "snapshot {}: report {key}", i + 1);
        }
        assert_eq!(p["anonymous"], total["anonymous"], "snapshot {}", i + 1);
        for (k, t) in p["by_type"].as_array().unwrap().iter().enumerate() {
            let row = summary_row(snap, t["type"].as_str().unwrap());
            let want = [&row["committed"], &row["total_ws"], &row["private"]];
            assert_eq!(
                [&t["committed"], &t["working_set"], &t["private"]],
                want,
                "snapshot {}: timeline {}",
                i + 1,
                t["type"]
            );
            assert_eq!(
                r["b"][k].as_array().unwrap().iter().collect::<Vec<_>>(),
                want,
                "snapshot {}: report {}",
                i + 1,
                t["type"]
            );
        }
    }
}

/// The paths of the images a snapshot maps (libraries, the executable).
/// Not other files: the fixture's last shared mapping (`/dev/zero
/// (deleted)`) is there or not in a traced run's launcher snapshot
/// depending on whether it was read before the fixture's last `mmap`.
fn mapped_files(snap: &Value) -> std::collections::BTreeSet<String> {
    all_regions(snap)
        .iter()
        .filter(|r| r["type"] == "image")
        .filter_map(|r| r["path"].as_str())
        .filter(|p| p.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// The agent brings no library into the program but itself: it carries
/// its own unwinder (libgcc_eh, linked in) instead of needing
/// libgcc_s.so.1, which a C program traced used to map and count as its
/// own. A C++ program loads libgcc_s itself and keeps it as its own.
#[test]
fn the_agent_maps_no_library_but_itself() {
    let agent_lib = crate::trace::agent();
    let agent_lib = agent_lib.to_str().unwrap();
    let prog = brief();
    let (o, file) = run_traced(&[], &prog, &["exit", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (plain, plain_file) = run_traced(&["--snapshot-only"], &prog, &["exit", "0"]);
    assert!(plain.status.success());
    let mut want = mapped_files(&snapshots(&plain_file).pop().unwrap());
    want.insert(agent_lib.to_string());
    for (i, snap) in snapshots(&file).iter().enumerate().skip(1) {
        assert_eq!(mapped_files(snap), want, "snapshot {}", i + 1);
    }
    // A C++ program's own libgcc_s: there, and the program's.
    let src = crate::trace::fixture("cxx.cpp");
    let cxx = build("cxx", &["c++", "-O1", "-g", src.to_str().unwrap()]);
    let (o, file) = run_traced(&[], &cxx, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snap = snapshots(&file).pop().unwrap();
    let gcc_s: Vec<&Value> = snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/libgcc_s.so.1"))
        .collect();
    assert!(!gcc_s.is_empty(), "the C++ program maps no libgcc_s");
    for r in gcc_s {
        assert_ne!(r["owner"]["kind"], "agent", "{r}");
        assert_eq!(r["type"], "image", "{r}");
    }
}
