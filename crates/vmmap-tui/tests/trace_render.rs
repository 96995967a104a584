//! The Trace view drawn on ratatui's `TestBackend` over a trace file built
//! here, message by message, in the agent's wire format: one thread that
//! allocates from two call stacks (main → work → leaf, main → leaf), frees
//! one block and maps 64 KiB, with its symbols in the file's cache so no
//! binary is read. Every figure on the screens follows from those events:
//!
//! | tick | operation                       | stack |
//! |------|---------------------------------|-------|
//! | 0    | thread-start (tid 100)          |       |
//! | 10   | malloc 0x10000, 300 bytes       | 1     |
//! | 20   | malloc 0x10200, 50 bytes        | 2     |
//! | 30   | free 0x10000                    |       |
//! | 40   | malloc 0x10400, 100 bytes       | 1     |
//! | 50   | mmap 0x70000000, 64 KiB         | 2     |
//!
//! One tick is a microsecond (the clock anchors say so).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use vmmap_core::model::Snapshot;
use vmmap_tui::app::{App, Mode};
use vmmap_tui::settings::Units;
use vmmap_tui::trace_view::{Tab, TraceView};
use vmmap_tui::Settings;

mod common;
mod screen;

/// Writes the trace described at the top to a file of its own.
fn synthetic_trace() -> PathBuf {
    synthetic_trace_with(0)
}

/// The trace described at the top (see `common`), then `extra` more
/// mallocs from stack 1.
fn synthetic_trace_with(extra: u64) -> PathBuf {
    let path = common::temp_dir("trace").join("synthetic.vmmap");
    common::write_traced_run(&path, extra, None);
    path
}

fn key(v: &mut TraceView, code: KeyCode) {
    v.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn draw(v: &mut TraceView, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| v.draw(f, f.area(), Units::Human)).unwrap();
    t
}

fn text(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

fn ready(region: Option<(u64, u64, String)>) -> TraceView {
    let mut v = TraceView::new(synthetic_trace(), region);
    v.wait();
    assert!(v.error.is_none(), "{:?}", v.error);
    v
}

#[test]
fn analysis_figures_follow_from_the_events() {
    let v = ready(None);
    let a = v.analysis.as_ref().unwrap();
    assert_eq!(a.operations, 6);
    let s = &a.summary;
    assert_eq!(
        (s.allocations, s.bytes_allocated, s.peak_bytes),
        (3, 450, 350)
    );
    assert_eq!((s.live_blocks, s.live_bytes, s.frees), (1 + 1, 150, 1));
    assert_eq!(a.costs[1].bytes, 400);
    assert_eq!(a.costs[2].live_bytes, 50);
    assert!(a.notes.is_empty(), "{:?}", a.notes);
}

#[test]
fn call_tree_top_down_100x20() {
    let mut v = ready(None);
    assert_eq!(v.tab, Tab::CallTree);
    let t = draw(&mut v, 100, 20);
    let s = text(&t);
    assert!(s.contains("6 operations: 450B allocated in 3 calls, peak 350B"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn call_tree_keys_bottom_up_lines_sort_and_collapse() {
    let mut v = ready(None);
    // The heaviest path is open: [all], main, work, leaf; then main's
    // second child, leaf.
    let t = draw(&mut v, 100, 20);
    assert!(text(&t).contains("▾ work"), "{}", text(&t));
    // Down to main, Left collapses it: only [all] and main remain.
    key(&mut v, KeyCode::Down);
    key(&mut v, KeyCode::Left);
    let s = text(&draw(&mut v, 100, 20));
    assert!(s.contains("▸ main") && !s.contains("work"), "{s}");
    // Enter opens it again.
    key(&mut v, KeyCode::Enter);
    assert!(text(&draw(&mut v, 100, 20)).contains("▾ main"));
    // Bottom-up, by line: allocation sites with their lines first.
    key(&mut v, KeyCode::Char('b'));
    key(&mut v, KeyCode::Char('l'));
    assert!(v.bottom_up && v.lines);
    key(&mut v, KeyCode::Char('s'));
    key(&mut v, KeyCode::Char('s'));
    let t = draw(&mut v, 100, 20);
    assert!(text(&t).contains("sorted by live"));
    insta::assert_snapshot!("call_tree_bottom_up_by_line_live_100x20", t.backend());
}

#[test]
fn leaks_100x24() {
    let mut v = ready(None);
    key(&mut v, KeyCode::Tab);
    assert_eq!(v.tab, Tab::Leaks);
    let t = draw(&mut v, 100, 24);
    let s = text(&t);
    assert!(s.contains("2 blocks (150B) never freed, from 2 call stacks"));
    insta::assert_snapshot!(t.backend());
    // The second stack's frames below.
    key(&mut v, KeyCode::Down);
    let s = text(&draw(&mut v, 100, 24));
    assert!(s.contains("leaf  app/a.c:31"), "{s}");
}

#[test]
fn history_filter_and_call_stack_100x20() {
    let mut v = ready(None);
    key(&mut v, KeyCode::Char('3'));
    assert_eq!(v.tab, Tab::History);
    v.wait_history();
    let t = draw(&mut v, 100, 20);
    insta::assert_snapshot!("history_100x20", t.backend());
    // Only the mallocs and the mmap.
    key(&mut v, KeyCode::Char('f'));
    for c in "malloc,mmap".chars() {
        key(&mut v, KeyCode::Char(c));
    }
    key(&mut v, KeyCode::Enter);
    v.wait_history();
    let s = text(&draw(&mut v, 100, 20));
    assert!(s.contains("4 operations (malloc, mmap)"), "{s}");
    assert!(!s.contains("free "), "{s}");
    // The mmap's call stack.
    key(&mut v, KeyCode::End);
    key(&mut v, KeyCode::Enter);
    let t = draw(&mut v, 100, 20);
    insta::assert_snapshot!("history_filtered_stack_100x20", t.backend());
    let (title, lines, _) = v.popup.as_ref().unwrap();
    assert!(title.contains("mmap 0x70000000 at +0.000050 s, thread 100"));
    assert_eq!(lines, &["leaf  app/a.c:31", "main  app/a.c:11"]);
    key(&mut v, KeyCode::Esc);
    assert!(v.popup.is_none());
}

#[test]
fn history_names_unknown_operations() {
    let mut v = ready(None);
    key(&mut v, KeyCode::Char('3'));
    v.set_filter(vec!["mallco".into()]);
    v.wait_history();
    let s = text(&draw(&mut v, 200, 10));
    assert!(
        s.contains("0 operations (mallco), in time order; no operation is called mallco"),
        "{s}"
    );
}

#[test]
fn allocations_of_a_region_100x20() {
    let mut v = ready(Some((0x10000, 0x10300, "Heap".into())));
    assert_eq!(v.tab, Tab::Region);
    let r = v.analysis.as_ref().unwrap().region.as_ref().unwrap();
    assert_eq!(
        (
            r.summary.allocations,
            r.summary.bytes_allocated,
            r.summary.live_bytes
        ),
        (2, 350, 50)
    );
    let t = draw(&mut v, 100, 20);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn a_region_without_allocations_opens_on_the_call_tree() {
    let v = ready(Some((0x7000_0000, 0x7001_0000, "Private Data".into())));
    assert_eq!(v.tab, Tab::CallTree);
}

#[test]
fn not_a_trace_says_so() {
    let dir = std::env::temp_dir().join(format!("vmmap-tui-notrace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("empty.vmmap");
    let w = vmmap_core::format::Writer::new(std::fs::File::create(&path).unwrap()).unwrap();
    w.finish().unwrap();
    let mut v = TraceView::new(path, None);
    v.wait();
    assert!(
        v.error
            .as_deref()
            .unwrap()
            .contains("no trace in this file"),
        "{:?}",
        v.error
    );
    let s = text(&draw(&mut v, 200, 10));
    assert!(s.contains("no trace in this file"), "{s}");
}

/// `T` in the main view of a loaded file opens the view; `?` shows the
/// help over it and Esc comes back to it; Esc closes it.
#[test]
fn t_opens_the_trace_view_of_the_file() {
    let snap: Snapshot = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut app = App::with_history(Settings::default(), vec![Arc::new(snap)], 0);
    let press = |app: &mut App, c: KeyCode| {
        let r = app.on_event(Event::Key(KeyEvent::new(c, KeyModifiers::NONE)));
        assert!(r.is_empty());
    };
    // No file known: a message, no view.
    press(&mut app, KeyCode::Char('T'));
    assert_eq!(app.mode, Mode::Normal);
    assert!(app
        .message
        .as_deref()
        .unwrap()
        .contains("vmmap open FILE -i"));
    app.file = Some(synthetic_trace());
    press(&mut app, KeyCode::Char('T'));
    assert_eq!(app.mode, Mode::Trace);
    let t0 = std::time::Instant::now();
    while app.poll_trace() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut term = Terminal::new(TestBackend::new(100, 20)).unwrap();
    term.draw(|f| app.draw(f)).unwrap();
    assert!(text(&term).contains("▾ work"), "{}", text(&term));
    press(&mut app, KeyCode::Char('?'));
    assert!(matches!(app.mode, Mode::Help(_)));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Trace);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
}

/// A history longer than the window: only a window is in memory, End
/// reads the last one, Home the first again, and the operations are the
/// right ones at both ends.
#[test]
fn history_pages_through_more_than_a_window() {
    use vmmap_tui::trace_jobs::WINDOW;
    let extra = 3 * WINDOW as u64 + 7;
    let mut v = TraceView::new(synthetic_trace_with(extra), None);
    v.wait();
    assert_eq!(v.analysis.as_ref().unwrap().operations, 6 + extra);
    key(&mut v, KeyCode::Char('3'));
    v.wait_history();
    assert_eq!(v.history_window(), (0, WINDOW));
    key(&mut v, KeyCode::End);
    v.wait_history();
    let (first, len) = v.history_window();
    assert!(len <= WINDOW, "{len} rows in memory");
    let last = v.selected_operation().expect("the last window is loaded");
    assert_eq!((last.op, last.size), ("malloc", Some(extra)));
    assert_eq!(first + len as u64, 6 + extra);
    let s = text(&draw(&mut v, 100, 12));
    assert!(
        s.contains(&format!("{} operations, in time order", 6 + extra)),
        "{s}"
    );
    assert!(
        s.contains(&format!("{:#x}", 0x100000 + 16 * (extra - 1))),
        "{s}"
    );
    key(&mut v, KeyCode::Home);
    v.wait_history();
    assert_eq!(v.history_window().0, 0);
    assert_eq!(v.selected_operation().unwrap().op, "thread-start");
    // PageDown one screen at a time through the first window boundary.
    for _ in 0..(WINDOW / 5 + 1) {
        key(&mut v, KeyCode::PageDown);
    }
    v.wait_history();
    let op = v
        .selected_operation()
        .expect("the window around the selection");
    assert_eq!(op.op, "malloc");
}

/// Two stacks that end in the same frame: each Leaks row names the caller
/// that tells it from the other, its stack id, its live blocks and its
/// share of the live bytes.
#[test]
fn leaks_rows_with_the_same_frame_are_told_apart() {
    let path = common::temp_dir("trace-twins").join("twins.vmmap");
    common::write_twin_stacks(&path);
    let mut v = TraceView::new(path, None);
    v.wait();
    assert!(v.error.is_none(), "{:?}", v.error);
    key(&mut v, KeyCode::Char('2'));
    assert_eq!(v.tab, Tab::Leaks);
    let t = draw(&mut v, 100, 24);
    let s = text(&t);
    let rows: Vec<&str> = s
        .lines()
        .filter(|l| l.contains("leaf (app/a.c:30)"))
        .collect();
    assert_eq!(rows.len(), 2, "{s}");
    assert!(rows[0].contains("\u{2190} work (app/a.c:20)"), "{s}");
    assert!(rows[1].contains("\u{2190} main (app/a.c:11)"), "{s}");
    // 400 of 450 live bytes in two blocks, then 50 in one.
    let cells = |r: &str| {
        r.trim_matches('"')
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(cells(rows[0]), "400B 88.9% 2 400B 2 #1", "{s}");
    assert_eq!(cells(rows[1]), "50B 11.1% 1 50B 1 #2", "{s}");
    insta::assert_snapshot!(t.backend());
}

/// The Trace view's tabs at the sizes of the main view's tests (the view
/// uses no type colours: it reads the same without colour).
#[test]
fn trace_view_at_every_size() {
    for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
        let mut v = ready(None);
        for (tab, name) in [('1', "tree"), ('2', "leaks")] {
            key(&mut v, KeyCode::Char(tab));
            let t = draw(&mut v, w, h);
            insta::assert_snapshot!(format!("trace_{name}_{w}x{h}"), t.backend());
        }
    }
}

/// The Trace view of a loaded file, drawn by the app without colour
/// (`NO_COLOR`, `TERM=dumb`) at every size: no cell has a colour.
#[test]
fn trace_view_without_colour_at_every_size() {
    let snap: Snapshot = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let settings = Settings {
        depth: vmmap_tui::palette::Depth::Off,
        ..Settings::default()
    };
    let mut app = App::with_history(settings, vec![Arc::new(snap)], 0);
    app.file = Some(synthetic_trace());
    app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('T'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.mode, Mode::Trace);
    let t0 = std::time::Instant::now();
    while app.poll_trace() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
        let term = screen::draw(&mut app, w, h);
        assert_eq!(screen::coloured_cells(&term), 0, "{w}x{h}");
        assert!(
            text(&term).contains("Call tree"),
            "{w}x{h}:\n{}",
            text(&term)
        );
        insta::assert_snapshot!(format!("trace_without_colour_{w}x{h}"), term.backend());
    }
}

/// A Leaks list longer than its half of the screen says which rows show.
#[test]
fn a_long_leaks_list_says_which_rows_show() {
    let path = common::temp_dir("trace-twins-rows").join("twins.vmmap");
    common::write_twin_stacks(&path);
    let mut v = TraceView::new(path, None);
    v.wait();
    key(&mut v, KeyCode::Char('2'));
    // 8 lines: a body of 5, a list of one row of the two.
    let s = text(&draw(&mut v, 100, 8));
    assert!(s.contains("; rows 1-1 of 2"), "{s}");
    key(&mut v, KeyCode::Down);
    let s = text(&draw(&mut v, 100, 8));
    assert!(s.contains("; rows 2-2 of 2"), "{s}");
}

/// While `a` records the process on screen, the view says so on a line of
/// its own under the totals: attached for how long, events so far, the
/// file, and the key that detaches.
#[test]
fn attached_and_recording_100x20() {
    use vmmap_tui::attach_session::Live;
    let mut v = ready(None);
    v.live = Some(Live {
        pid: 4242,
        name: "worker".into(),
        output: PathBuf::from("/srv/traces/worker.4242.20260101-120000.vmmap"),
        secs: 12,
        attached: true,
        detaching: false,
        events: 6,
        partial: false,
        bytes: 1234,
    });
    let t = draw(&mut v, 100, 20);
    let s = text(&t);
    assert!(
        s.contains(
            "● Attached to 4242 (worker) for 12 s: 6 events (1.2K) — a detaches — trace: /srv/"
        ),
        "{s}"
    );
    insta::assert_snapshot!(t.backend());
    // Before the agent runs, it says where the trace will go.
    v.live.as_mut().unwrap().attached = false;
    let s = text(&draw(&mut v, 100, 20));
    assert!(
        s.contains("Attaching to 4242 (worker)… the trace goes to /srv/traces/"),
        "{s}"
    );
}
