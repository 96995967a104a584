//! The `vmmap trace` views through the real binary: a closed pipe, the
//! clock of a filtered history and of the timeline, the regions table,
//! the files of followed children, pymalloc arenas in the heap view, and
//! temporary allocations counted exactly as heaptrack counts them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::trace::{agent, build, fixture, on_file, run_traced, tmp};
use crate::trace_analysis::heaptrack_totals_with;
use crate::util::VMMAP;

fn views_program() -> PathBuf {
    let src = fixture("views.c");
    build("views", &["cc", "-O0", "-g", src.to_str().unwrap()])
}

/// The views fixture traced, with snapshots every 100 ms.
fn traced_views() -> PathBuf {
    let (o, file) = run_traced(&["-i", "100ms"], &views_program(), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    file
}

fn json_lines(b: &[u8]) -> Vec<Value> {
    String::from_utf8(b.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
}

/// Each view's output read one byte at a time by a reader that then goes
/// away: vmmap ends with 0 and says nothing (README, "Exit status").
#[test]
fn json_views_end_quietly_when_the_reader_goes_away() {
    let file = traced_views();
    let views: [&[&str]; 8] = [
        &["trace", "summary", "--json"],
        &["trace", "history", "--json"],
        &["trace", "calltree", "--json", "--min-percent", "0"],
        &["trace", "leaks", "--json"],
        &["trace", "regions", "--json"],
        &["trace", "heap", "--json"],
        &["trace", "speedscope", "-o", "-"],
        &["timeline", "--json"],
    ];
    for args in views {
        let mut child = Command::new(VMMAP)
            .arg(args[0])
            .arg(&file)
            .args(&args[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        out.read_exact(&mut one).unwrap();
        drop(out);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

/// How vmmap is started for [`ends_quietly_when_the_reader_goes_away`]:
/// with SIGPIPE at its default, or ignored by the parent (as Python's
/// subprocess with `restore_signals=False`, nohup, and shells with `trap ''
/// PIPE` leave it), which an exec keeps.
#[derive(Clone, Copy, Debug)]
enum Sigpipe {
    Default,
    Ignored,
}

/// `vmmap` started with SIGPIPE as `sigpipe` says.
fn vmmap_cmd(sigpipe: Sigpipe) -> Command {
    match sigpipe {
        Sigpipe::Default => Command::new(VMMAP),
        Sigpipe::Ignored => {
            let mut c = Command::new("sh");
            c.args(["-c", "trap '' PIPE; exec \"$0\" \"$@\"", VMMAP]);
            c
        }
    }
}

/// `vmmap ARGS[0] FILE ARGS[1..]`.
fn vmmap_with(sigpipe: Sigpipe, args: &[&str], file: &Path) -> Command {
    let mut cmd = vmmap_cmd(sigpipe);
    cmd.arg(args[0]).arg(file).args(&args[1..]);
    cmd
}

/// `vmmap ARGS FILE` whose reader takes the first 100 bytes and goes away
/// (`| head -c 100`): vmmap ends with 0 and says nothing (README, "Exit
/// status"). Its whole output is checked first to overflow a pipe (64
/// KiB), so that the reader's going away reaches vmmap while it writes.
fn ends_quietly_when_the_reader_goes_away(file: &Path, args: &[&str]) {
    let whole = vmmap_with(Sigpipe::Default, args, file)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(whole.status.success(), "{args:?}: {:?}", whole.status);
    assert!(
        whole.stdout.len() > 128 * 1024,
        "{args:?}: {} bytes fit in a pipe",
        whole.stdout.len()
    );
    for sigpipe in [Sigpipe::Default, Sigpipe::Ignored] {
        let mut child = vmmap_with(sigpipe, args, file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut head = [0u8; 100];
        out.read_exact(&mut head).unwrap();
        drop(out);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?} ({sigpipe:?}): {:?} {err}",
            o.status
        );
        assert!(err.is_empty(), "{args:?} ({sigpipe:?}): {err}");
    }
}

/// A traced run whose every view is larger than a pipe holds.
fn traced_pipefill() -> PathBuf {
    let src = fixture("pipefill.c");
    let prog = build(
        "pipefill",
        &[
            "cc",
            "-O1",
            "-g",
            "-fno-omit-frame-pointer",
            src.to_str().unwrap(),
        ],
    );
    let (o, file) = run_traced(&[], &prog, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    file
}

/// Every view of a trace, in text and JSON, and the exports to standard
/// output, end with 0 and an empty stderr when their reader closes the
/// pipe early, whether SIGPIPE is ignored or not.
#[test]
fn every_trace_view_ends_quietly_when_the_reader_closes_early() {
    let file = traced_pipefill();
    let all = ["--min-percent", "0", "--top", "0", "--no-symbol-cache"];
    for view in ["history", "regions", "calltree", "leaks", "heap"] {
        for json in [false, true] {
            let mut args = vec!["trace", view];
            args.extend(all);
            if json {
                args.push("--json");
            }
            ends_quietly_when_the_reader_goes_away(&file, &args);
        }
    }
    // pprof (gzipped) and the flame graph (narrow frames merged) stay
    // under a pipe's size; the exports that can fill one:
    for export in ["folded", "speedscope"] {
        ends_quietly_when_the_reader_goes_away(
            &file,
            &["trace", export, "--no-symbol-cache", "-o", "-"],
        );
    }
    for args in [&["open"][..], &["open", "--json"], &["open", "--csv"]] {
        ends_quietly_when_the_reader_goes_away(&file, args);
    }
}

/// The same for `vmmap timeline`, of a recording with a thousand points.
#[test]
fn the_timeline_ends_quietly_when_the_reader_closes_early() {
    let fx = crate::util::Fixture::start(false);
    let dir = crate::util::TempDir::new("pipe-timeline");
    let file = dir.path().join("t.vmmap");
    crate::util::vmmap_ok(&[
        "watch",
        &fx.pid.to_string(),
        "--interval",
        "2ms",
        "--count",
        "2500",
        "-o",
        file.to_str().unwrap(),
    ]);
    for args in [
        &["timeline"][..],
        &["timeline", "--json"],
        &["timeline", "--csv"],
    ] {
        ends_quietly_when_the_reader_goes_away(&file, args);
    }
}

/// Standard output whose reader is gone before vmmap writes a byte (the
/// pipe's read end already closed): the commands that print one line or
/// a short document end with 0 and say nothing too. `config` and
/// `report`'s closing line printed with `println!`, which panicked there
/// (exit 101, "failed printing to stdout").
#[test]
fn commands_end_quietly_when_the_reader_is_gone_before_they_write() {
    use std::os::fd::FromRawFd;
    let file = traced_views();
    let file = file.to_str().unwrap();
    let home = crate::util::TempDir::new("gone-home");
    let html = home.path().join("r.html");
    let cases: [&[&str]; 7] = [
        &["config", "path"],
        &["config", "show"],
        &["report", file, "-o", html.to_str().unwrap()],
        &["trace", file, "--json"],
        &["trace", file, "calltree"],
        &["timeline", file],
        &["open", file, "--summary"],
    ];
    for args in cases {
        for sigpipe in [Sigpipe::Default, Sigpipe::Ignored] {
            let mut fds = [0; 2];
            // SAFETY: fds is a valid array for the two descriptors.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: the read end is ours and closed once, here.
            unsafe { libc::close(fds[0]) };
            // SAFETY: the write end is ours; the File owns it from here.
            let gone = unsafe { std::fs::File::from_raw_fd(fds[1]) };
            let o = vmmap_cmd(sigpipe)
                .args(args)
                .env("HOME", home.path())
                .env("XDG_CONFIG_HOME", home.path())
                .stdout(gone)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{args:?} ({sigpipe:?}): {:?} {err}",
                o.status
            );
            assert!(err.is_empty(), "{args:?} ({sigpipe:?}): {err}");
        }
    }
}

/// `history --op munmap` shows the same times as the whole history: both
/// count from the start of the run, not from the first line shown.
#[test]
fn a_filtered_history_keeps_the_run_clock() {
    let file = traced_views();
    let all = json_lines(&on_file("trace", &file, &["history", "--json"]));
    let want: Vec<u64> = all
        .iter()
        .filter(|r| r["op"] == "munmap")
        .map(|r| r["t_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(want.len(), 3, "the fixture unmaps three times");
    let some = json_lines(&on_file(
        "trace",
        &file,
        &["history", "--json", "--op", "munmap"],
    ));
    let got: Vec<u64> = some.iter().map(|r| r["t_ns"].as_u64().unwrap()).collect();
    assert_eq!(got, want);
    // The text form prints the same seconds.
    let text = String::from_utf8(on_file("trace", &file, &["history", "--op", "munmap"])).unwrap();
    let secs: Vec<f64> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    for (s, ns) in secs.iter().zip(&want) {
        assert!((s - *ns as f64 / 1e9).abs() < 1e-6, "{s} against {ns} ns");
    }
}

/// The regions table has a header; a mapping of 5000 bytes ends where the
/// kernel rounded it (two pages), and its line names the function that
/// made it, with its source line.
#[test]
fn regions_have_a_header_whole_pages_and_the_making_function() {
    let file = traced_views();
    let text = String::from_utf8(on_file("trace", &file, &["regions"])).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for col in ["START-END", "PERM", "SIZE", "PATH", "MADE BY"] {
        assert!(header.contains(col), "no {col} in the header: {header}");
    }
    let src = std::fs::read_to_string(fixture("views.c")).unwrap();
    let line = src
        .lines()
        .position(|l| l.contains("MAP_ODD_LINE"))
        .unwrap()
        + 1;
    let mut odd = Vec::new();
    for l in lines {
        let range = l.split_whitespace().next().unwrap();
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (hex(a), hex(b));
        assert!(a % 4096 == 0 && b % 4096 == 0, "not whole pages: {l}");
        if l.contains("map_odd (") {
            odd.push((b - a, l.to_string()));
        }
    }
    assert_eq!(odd.len(), 1, "{text}");
    let (len, l) = &odd[0];
    assert_eq!(*len, 8192, "{l}");
    assert!(
        l.contains(&format!("views.c:{line}): mmap in thread")),
        "{l}"
    );
    // JSON names the same function.
    let r: Value =
        serde_json::from_slice(&on_file("trace", &file, &["regions", "--json"])).unwrap();
    let made: Vec<&Value> = r
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["made_by"]
                .as_str()
                .is_some_and(|f| f.starts_with("map_odd ("))
        })
        .collect();
    assert_eq!(made.len(), 1, "{r:#}");
    assert_eq!(hex(made[0]["end"].as_str().unwrap()) % 4096, 0);
}

/// `--follow-forks` names every file written: one per child, whether it
/// came from fork, vfork+exec or posix_spawn.
#[test]
fn follow_forks_names_every_file() {
    let src = fixture("forks.c");
    let prog = build("forks", &["cc", "-O0", "-g", src.to_str().unwrap()]);
    let dir = tmp().join(format!("follow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("f.vmmap");
    let o = crate::util::output_within(
        Command::new(VMMAP)
            .args(["run", "-i", "0", "--follow-forks", "--agent"])
            .arg(agent())
            .arg("-o")
            .arg(&main)
            .arg("--")
            .arg(&prog)
            .stdin(Stdio::null()),
        120,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let children: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != &main)
        .collect();
    assert_eq!(children.len(), 3, "fork, vfork, posix_spawn: {children:?}");
    for c in children.iter().chain([&main]) {
        assert!(
            err.contains(&format!("wrote {}", c.display())),
            "{} not named:\n{err}",
            c.display()
        );
        // Each holds its child's allocations.
        let s: Value = serde_json::from_slice(&on_file("trace", c, &["--json"])).unwrap();
        assert!(s["allocations"].as_u64().unwrap() >= 1, "{s:#}");
    }
}

/// A Python program full of small objects: its pymalloc arenas (1 MiB
/// anonymous mmaps by obmalloc since 3.10) are shown apart, never as
/// malloc's free space or fragmentation.
#[test]
fn pymalloc_arenas_are_their_own_kind_in_the_heap_view() {
    // os._exit: no teardown frees the objects before the last snapshot.
    let script = "import os, time\n\
        keep = [str(i) * 3 for i in range(300000)]\n\
        big = bytearray(300000)\n\
        time.sleep(1.0)\n\
        os._exit(0)\n";
    let (o, file) = run_traced(&["-i", "300ms"], Path::new("python3"), &["-c", script]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h: Value = serde_json::from_slice(&on_file("trace", &file, &["heap", "--json"])).unwrap();
    let rows = h["regions"].as_array().unwrap();
    let with: Vec<&Value> = rows
        .iter()
        .filter(|r| r["pymalloc_arenas"].as_u64().unwrap() > 0)
        .collect();
    let bytes: u64 = with
        .iter()
        .map(|r| r["pymalloc_bytes"].as_u64().unwrap())
        .sum();
    // 300,000 strings of about 60 bytes each: over 10 MiB of arenas.
    assert!(bytes >= 10 << 20, "{h:#}");
    for r in &with {
        assert!(
            r["frag_percent"].is_null(),
            "arenas are no fragmentation: {r}"
        );
        let (size, live, overhead, free, py) = (
            r["size"].as_u64().unwrap(),
            r["live"].as_u64().unwrap(),
            r["overhead"].as_u64().unwrap(),
            r["free"].as_u64().unwrap(),
            r["pymalloc_bytes"].as_u64().unwrap(),
        );
        assert_eq!(
            size,
            live + overhead + free + py,
            "arenas are not free: {r}"
        );
    }
    let text = String::from_utf8(on_file("trace", &file, &["heap"])).unwrap();
    assert!(text.contains("PYMALLOC"), "{text}");
    assert!(text.contains("CPython pymalloc arenas"), "{text}");
}

/// `timeline` and `trace heap --at` count from the start of the run: the
/// time the timeline gives a snapshot picks that same snapshot.
#[test]
fn timeline_and_at_count_from_the_start_of_the_run() {
    let file = traced_views();
    let csv = String::from_utf8(on_file("timeline", &file, &["--csv"])).unwrap();
    let times: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(times.len() >= 3, "{csv}");
    for t in times {
        // The CSV rounds to milliseconds; snapshots are 100 ms apart. The
        // one taken at exec, before the agent's clock starts, is a little
        // below 0 s, and `--at 0` picks it.
        let at = format!("{:.4}", (t + 0.0006).max(0.0));
        let h: Value =
            serde_json::from_slice(&on_file("trace", &file, &["heap", "--json", "--at", &at]))
                .unwrap();
        let s = h["seconds"].as_f64().unwrap();
        assert!(
            (s - t).abs() <= 0.0005,
            "timeline {t} s, heap --at {at}: {s} s"
        );
    }
}

/// Temporary allocations are heaptrack's: a free of a block with the size
/// and call stack of the process's last allocation, no free in between.
/// sqlite3 building and querying a table: tens of thousands of them, and
/// the count is exactly heaptrack's once heaptrack's own block is taken
/// off (its emergency pool, allocated first and freed last, which
/// heaptrack counts as temporary: an empty program shows it).
#[test]
fn temporary_allocations_are_exactly_heaptracks() {
    let sql = tmp().join(format!("temporary-{}.sql", std::process::id()));
    std::fs::write(
        &sql,
        "create table t(a integer primary key, b text);\n\
         with recursive c(x) as (select 1 union all select x+1 from c where x<20000)\n\
           insert into t select x, printf('row %d', x) from c;\n\
         create index tb on t(b);\n\
         select count(*), sum(length(b)) from t where b like 'row 1%';\n",
    )
    .unwrap();
    let args = [":memory:", "-init", sql.to_str().unwrap(), ".quit"];
    let sqlite = Path::new("sqlite3");
    let (o, file) = run_traced(&[], sqlite, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t: Value = serde_json::from_slice(&on_file(
        "trace",
        &file,
        &["calltree", "--json", "--min-percent", "0", "--depth", "1"],
    ))
    .unwrap();
    let ours = (
        t["tree"]["calls"].as_u64().unwrap(),
        t["tree"]["temporary"].as_u64().unwrap(),
    );
    let empty_src = tmp().join("empty.c");
    std::fs::write(&empty_src, "int main(void) { return 0; }\n").unwrap();
    let empty = build("empty", &["cc", "-O0", empty_src.to_str().unwrap()]);
    let ht = heaptrack_totals_with(sqlite, &args, "sqlite");
    let base = heaptrack_totals_with(&empty, &[], "empty-t");
    let theirs = ((ht[0] - base[0]) as u64, (ht[4] - base[4]) as u64);
    assert!(ours.1 > 10_000, "{ours:?}");
    assert_eq!(ours, theirs, "(calls, temporary): vmmap against heaptrack");
}
