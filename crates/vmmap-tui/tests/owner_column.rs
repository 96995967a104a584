//! The Owner column of the Details, drawn on ratatui's `TestBackend` over
//! a file built here: a trace in the agent's wire format, a snapshot of
//! the traced process taken after it, and the symbols in the file's cache
//! (so no binary is read). One thread (tid 100 of pid 42):
//!
//! | tick | operation                 | stack                |
//! |------|---------------------------|----------------------|
//! | 10   | malloc 0x10000, 300 bytes | 1: leaf:30 work main |
//! | 20   | malloc 0x10200, 50 bytes  | 2: leaf:31 main      |
//! | 30   | free 0x10000              |                      |
//! | 40   | malloc 0x10400, 100 bytes | 1                    |
//! | 50   | mmap 0x70000000, 64 KiB   | 2                    |
//!
//! A tick is a microsecond; the snapshot is taken 500 µs after the start.
//! Its heap region 0x10000-0x11000 holds 100 live bytes from stack 1 and
//! 50 from stack 2, so stack 1 (leaf, line 30) owns it with 100 bytes;
//! the mapping was made by stack 2 (leaf, line 31).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use vmmap_core::model::{MemoryType, Perms, Region, Snapshot};
use vmmap_tui::app::App;
use vmmap_tui::Settings;

mod common;

mod screen;
use screen::draw;

fn region(start: u64, end: u64, t: MemoryType, path: &str, details: &str) -> Region {
    Region {
        start,
        end,
        perms: Perms(*b"rw-p"),
        memory_type: t,
        path: path.into(),
        details: details.into(),
        ..Region::default()
    }
}

/// The snapshot of pid `pid` in the file: a heap and the mapping.
fn snapshot(pid: u32) -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target.json");
    let mut s: Snapshot = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    s.process.pid = pid;
    s.taken_at_unix_ns = 2_500_000;
    s.rollup = None;
    s.regions = vec![
        region(
            0x10000,
            0x11000,
            MemoryType::Heap,
            "[heap]",
            "Heap ID: 0 (brk heap)",
        ),
        region(0x7000_0000, 0x7001_0000, MemoryType::PrivateData, "", ""),
    ];
    s
}

/// Writes the trace (see `common`), a snapshot of pid `pid` and the
/// symbol cache to a file of its own.
fn traced_file(pid: u32) -> PathBuf {
    let path = common::temp_dir("owners").join("owned.vmmap");
    common::write_traced_run(&path, 0, Some(&snapshot(pid)));
    path
}

/// The app on the file's snapshot, as `vmmap open FILE -i` starts it,
/// once its owners are computed (or known to be absent).
fn opened(pid: u32) -> App {
    let path = traced_file(pid);
    let snap = vmmap_core::format::load_file(&path)
        .unwrap()
        .snapshots
        .remove(0);
    let mut app = App::with_history(Settings::default(), vec![Arc::new(snap)], 0);
    app.file = Some(path);
    let t0 = std::time::Instant::now();
    while app.poll_owners() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // One more poll gives the view the result.
    app.poll_owners();
    app
}

/// The screen line holding `needle`.
fn line_with(t: &Terminal<TestBackend>, needle: &str) -> String {
    let s = t.backend().to_string();
    s.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{s}"))
        .to_string()
}

#[test]
fn the_details_of_a_traced_file_have_an_owner_column_120x20() {
    let mut app = opened(42);
    let o = app.main.as_ref().unwrap().owners.clone().expect("owners");
    let heap = o.region(0).unwrap();
    assert_eq!((heap.kind, heap.live_bytes), ("live-heap", Some(100)));
    assert_eq!(heap.frame.as_ref().unwrap().line, Some(30));
    let map = o.region(1).unwrap();
    assert_eq!((map.kind, map.op), ("call", Some("mmap")));
    let t = draw(&mut app, 120, 20);
    assert!(line_with(&t, "Address").contains("Owner"));
    let h = line_with(&t, "10000");
    assert!(
        h.contains("leaf (app/a.c:30) +100B live") && h.contains("Heap ID: 0"),
        "{h}"
    );
    assert!(line_with(&t, "70000000").contains("leaf (app/a.c:31)"));
    insta::assert_snapshot!(t.backend());
    // `Y` copies the table with the column.
    let r = app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('Y'),
        KeyModifiers::NONE,
    )));
    assert!(r.is_empty());
    let copied = app.clipboard.take().unwrap();
    let mut lines = copied.lines();
    assert!(lines.next().unwrap().ends_with("\tperms\towner\tdetails"));
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with("\trw-p\tleaf (app/a.c:30) +100B live\tHeap ID: 0 (brk heap)"),
        "{copied}"
    );
}

#[test]
fn no_owner_column_without_a_trace_of_the_process() {
    // The trace is of pid 42; this snapshot is of another process.
    let mut app = opened(7);
    assert!(app.owners_job.is_none());
    assert!(app.main.as_ref().unwrap().owners.is_none());
    assert!(!line_with(&draw(&mut app, 120, 20), "Address").contains("Owner"));
}
