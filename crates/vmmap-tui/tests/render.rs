//! Render tests: the picker, the main view and the overlays drawn at fixed
//! sizes on ratatui's `TestBackend`, over snapshots captured from real
//! processes (`tests/fixtures/`, made by `tests/capture.rs`), compared with
//! insta snapshots in `tests/snapshots/`. The snapshots hold the text of
//! the screen only, not colours or styles.
//!
//! Settings are always `Settings::default()`, never the user's file.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use vmmap_core::collect::{Access, ProcessEntry};
use vmmap_core::model::{MemoryType, Snapshot};
use vmmap_tui::app::{App, Mode, Screen};
use vmmap_tui::collector::{Request, Response};
use vmmap_tui::details::{row_region, Row};
use vmmap_tui::main_view::MainView;
use vmmap_tui::picker::{PickColumn, PickerTab};
use vmmap_tui::Settings;

mod screen;
use screen::{click, coloured_cells, draw};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn target() -> Snapshot {
    serde_json::from_str(&fixture("target.json")).expect("target.json is a Snapshot")
}

fn processes() -> Vec<ProcessEntry> {
    serde_json::from_str(&fixture("processes.json")).expect("processes.json is a process list")
}

/// The main view of the target, as `vmmap PID` opens it.
fn main_app() -> App {
    App::new(
        Settings::default(),
        Some((Arc::new(target()), Duration::from_millis(12))),
    )
}

/// The picker over the captured process list.
fn picker_app() -> App {
    let mut app = App::new(Settings::default(), None);
    app.picker.set(processes());
    app.screen = Screen::Picker;
    app
}

fn main_view(app: &mut App) -> &mut MainView {
    app.main.as_mut().expect("a snapshot is open")
}

/// Selects the Summary row of type `t`, which filters the Details by it.
fn select_type(app: &mut App, t: MemoryType) {
    let m = main_view(app);
    let i = m
        .summary_rows
        .iter()
        .position(|r| *r == Some(t))
        .unwrap_or_else(|| panic!("no {t:?} row in the Summary"));
    m.select_summary(i);
}

/// Selects the Details row of the executable's image group and expands it.
fn expand_executable(app: &mut App) {
    let m = main_view(app);
    let exe = m.snap.process.exe.clone().expect("the fixture has its exe");
    let i = m
        .details
        .rows
        .iter()
        .position(|&r| {
            matches!(r, Row::Region(_))
                && row_region(&m.snap, r)
                    .is_some_and(|g| g.memory_type == MemoryType::Image && *g.path == *exe)
        })
        .expect("the executable's image is a Details row");
    m.details.cursor.selected = i;
    m.details.set_expanded(&m.snap, &m.data, Some(true));
    assert!(
        matches!(m.details.rows[i + 1], Row::Sub(..)),
        "expanding shows the sub-blocks"
    );
}

fn key(app: &mut App, code: KeyCode) {
    let requests = app.on_event(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    assert!(requests.is_empty(), "no collection expected from {code:?}");
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// The screen as text (quoted lines, as in the snapshots).
fn screen_text(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

#[test]
fn fixtures_load() {
    let snap = target();
    assert_eq!(snap.process.name, "target");
    assert!(snap.process.threads.len() >= 6);
    let list = processes();
    assert!((8..=12).contains(&list.len()));
    assert_eq!(
        list.iter()
            .filter(|p| matches!(p.access, Access::Denied(_)))
            .count(),
        1
    );
}

#[test]
fn picker_100x30() {
    let mut app = picker_app();
    let t = draw(&mut app, 100, 30);
    let text = screen_text(&t);
    assert!(text.contains("(9 of 9)"));
    assert!(text.contains("(no access)"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn picker_100x30_filtered() {
    let mut app = picker_app();
    type_text(&mut app, "sleep");
    assert_eq!(app.picker.filter, "sleep");
    let t = draw(&mut app, 100, 30);
    let text = screen_text(&t);
    assert!(text.contains("(3 of 9)"));
    assert!(text.contains("Filter: sleep"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn picker_100x30_denied_selected() {
    let mut app = picker_app();
    let i = app
        .picker
        .rows
        .iter()
        .position(|&i| matches!(app.picker.all[i].access, Access::Denied(_)))
        .unwrap();
    for _ in 0..i {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    assert!(app.message.as_deref().unwrap().starts_with("Cannot open"));
    let t = draw(&mut app, 100, 30);
    assert!(screen_text(&t).contains("security module"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn picker_at_every_size_with_and_without_colour() {
    for colour in [true, false] {
        for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
            let mut app = picker_app();
            if !colour {
                app = {
                    let mut a = App::new(
                        Settings {
                            depth: vmmap_tui::palette::Depth::Off,
                            ..Settings::default()
                        },
                        None,
                    );
                    a.picker.set(processes());
                    a.screen = Screen::Picker;
                    a
                };
            }
            let t = draw(&mut app, w, h);
            let text = screen_text(&t);
            // The sorted column shows its arrow at every size.
            assert!(text.contains("Private \u{25bc}"), "{w}x{h}:\n{text}");
            if w >= 80 {
                assert!(text.contains("Command line"), "{w}x{h}:\n{text}");
            }
            let name = format!("picker_{w}x{h}{}", if colour { "" } else { "_no_colour" });
            insta::assert_snapshot!(name, t.backend());
        }
    }
}

#[test]
fn picker_says_which_rows_it_shows_when_they_do_not_fit() {
    let mut app = picker_app();
    let text = screen_text(&draw(&mut app, 80, 12));
    assert!(text.contains("(9 of 9, rows 1-5)"), "{text}");
    key(&mut app, KeyCode::End);
    let text = screen_text(&draw(&mut app, 80, 12));
    assert!(text.contains("(9 of 9, rows 5-9)"), "{text}");
}

#[test]
fn picker_sort_arrow_on_every_column() {
    let mut app = picker_app();
    for c in PickColumn::ALL {
        app.picker.sort_by(c);
        let text = screen_text(&draw(&mut app, 80, 24));
        assert!(
            text.contains('\u{25bc}') || text.contains('\u{25b2}'),
            "{c:?}: no arrow\n{text}"
        );
    }
}

#[test]
fn picker_filter_takes_spaces_and_marks_survive_it() {
    let mut app = picker_app();
    // Mark two processes with Insert, then filter with a space in it.
    key(&mut app, KeyCode::Insert);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Insert);
    assert_eq!(app.picker.marked.len(), 2);
    type_text(&mut app, "sleep i");
    assert_eq!(app.picker.filter, "sleep i");
    assert_eq!(app.picker.rows.len(), 1, "only `sleep infinity` matches");
    let text = screen_text(&draw(&mut app, 100, 30));
    assert!(text.contains("Filter: sleep i"), "{text}");
    assert!(
        text.contains("sleep infinity"),
        "the command line shows why it matches: {text}"
    );
    assert!(text.contains("2 marked (2 hidden)"), "{text}");
    assert!(text.contains("Enter:combine the 2 marked"), "{text}");
    // Ctrl+U clears the filter.
    let requests = app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    assert!(requests.is_empty());
    assert_eq!(app.picker.filter, "");
    assert_eq!(app.picker.rows.len(), 9);
    insta::assert_snapshot!(draw(&mut app, 100, 30).backend());
}

#[test]
fn main_80x24() {
    let mut app = main_app();
    let t = draw(&mut app, 80, 24);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn main_160x48() {
    let mut app = main_app();
    let t = draw(&mut app, 160, 48);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn main_60x16() {
    let mut app = main_app();
    let t = draw(&mut app, 60, 16);
    let text = screen_text(&t);
    // The Details stay, with their header, rows and the row count.
    assert!(text.contains("Address"), "{text}");
    assert!(text.contains("300010000000"), "{text}");
    assert!(text.contains("rows 1-"), "{text}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn main_220x60() {
    let mut app = main_app();
    let t = draw(&mut app, 220, 60);
    insta::assert_snapshot!(t.backend());
}

/// The main view of `main_app` without colour, as with `NO_COLOR`.
fn colourless_app() -> App {
    let settings = Settings {
        depth: vmmap_tui::palette::Depth::Off,
        ..Settings::default()
    };
    App::new(
        settings,
        Some((Arc::new(target()), Duration::from_millis(12))),
    )
}

#[test]
fn main_without_colour_at_every_size() {
    for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
        let mut app = colourless_app();
        let t = draw(&mut app, w, h);
        let text = screen_text(&t);
        let lines: Vec<&str> = text.lines().collect();
        // The bars are drawn with each type's character, not blanks.
        let committed = lines.iter().find(|l| l.contains("Committed ")).unwrap();
        for t in [MemoryType::Image, MemoryType::Heap, MemoryType::PrivateData] {
            let g = vmmap_tui::palette::glyph(t);
            if w >= 80 {
                assert!(committed.contains(g), "{t:?} {g} in the bar: {committed}");
            }
        }
        // Every Summary key is its type's own.
        let keys: &[MemoryType] = if h >= 24 {
            &[MemoryType::Image, MemoryType::Heap, MemoryType::Stack]
        } else {
            // A low window shows the Summary's end, where the selection is.
            &[MemoryType::PrivateData, MemoryType::PageTable]
        };
        for &t in keys {
            let g = vmmap_tui::palette::glyph(t);
            assert!(
                text.contains(&format!("{g}{g} {}", t.name())),
                "the key of {t:?}:\n{text}"
            );
        }
        insta::assert_snapshot!(format!("main_without_colour_{w}x{h}"), t.backend());
    }
}

#[test]
fn sorting_returns_to_the_top_where_the_largest_row_is() {
    let mut app = main_app();
    let m = main_view(&mut app);
    m.details.cursor.selected = m.details.rows.len() - 1;
    let _ = draw(&mut app, 80, 24);
    assert!(
        main_view(&mut app).details.cursor.offset > 0,
        "scrolled down first"
    );
    main_view(&mut app).sort_details(vmmap_tui::details::SortKey::Figure(
        vmmap_core::figures::Column::Size,
    ));
    let t = draw(&mut app, 80, 24);
    let m = main_view(&mut app);
    assert_eq!((m.details.cursor.selected, m.details.cursor.offset), (0, 0));
    let text = screen_text(&t);
    assert!(text.contains("rows 1-"), "{text}");
    // The largest region (the 64M arena) is the first row.
    let first = text.lines().find(|l| l.contains("▼Size")).unwrap();
    let after: Vec<&str> = text.lines().skip_while(|l| !l.contains("▼Size")).collect();
    assert!(after[1].contains("64M"), "{first}\n{}", after[1]);
}

#[test]
fn columns_that_do_not_fit_scroll_sideways() {
    let mut app = main_app();
    let before = screen_text(&draw(&mut app, 80, 24));
    assert!(before.contains("of 10 columns"), "{before}");
    key(&mut app, KeyCode::Char('>'));
    key(&mut app, KeyCode::Char('>'));
    let after = screen_text(&draw(&mut app, 80, 24));
    assert_ne!(before, after);
    assert!(
        after.contains('\u{25c2}'),
        "a mark says columns are off to the left: {after}"
    );
    key(&mut app, KeyCode::Char('<'));
    key(&mut app, KeyCode::Char('<'));
    assert_eq!(screen_text(&draw(&mut app, 80, 24)), before);
}

/// The main view with the Stack row of the Summary selected: the Details
/// list only the thread stacks, one per thread, each with its thread id
/// (and, when `names`, the thread's name).
fn stack_filter(w: u16, h: u16, names: bool) -> Terminal<TestBackend> {
    let mut app = main_app();
    select_type(&mut app, MemoryType::Stack);
    let m = main_view(&mut app);
    assert_eq!(
        m.details.rows.len(),
        m.snap.process.threads.len(),
        "one stack per thread"
    );
    assert!(m.details.rows.iter().all(|&r| {
        matches!(r, Row::Region(_))
            && row_region(&m.snap, r).unwrap().memory_type == MemoryType::Stack
    }));
    let t = draw(&mut app, w, h);
    let text = screen_text(&t);
    for th in &main_view(&mut app).snap.process.threads {
        let want = if names {
            format!("Thread {} ({})", th.tid, th.name)
        } else {
            format!("Thread {}", th.tid)
        };
        assert!(text.contains(&want), "{want:?} at {w}x{h}");
    }
    t
}

#[test]
fn details_stack_filter_160x40() {
    let t = stack_filter(160, 40, true);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn details_stack_filter_120x32() {
    let t = stack_filter(120, 32, false);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn details_stack_filter_80x24() {
    let t = stack_filter(80, 24, false);
    insta::assert_snapshot!(t.backend());
}

/// Parts (here two made-up goroutine stacks inside the executable's
/// second mapping) show under their sub-block, marked `·`, with their size
/// and name, and can be searched for.
#[test]
fn details_parts_under_their_sub_block_120x40() {
    let mut snap = target();
    let exe = snap.process.exe.clone().expect("the fixture has its exe");
    let g = snap
        .regions
        .iter_mut()
        .find(|g| g.memory_type == MemoryType::Image && *g.path == *exe)
        .unwrap();
    let s = &mut g.sub_blocks[1];
    let (a, b) = (s.start, s.start + 0x800);
    s.parts = vec![
        vmmap_core::model::Part {
            start: a,
            end: a + 0x800,
            details: "goroutine 1 stack (running)".into(),
            tid: None,
        },
        vmmap_core::model::Part {
            start: b,
            end: b + 0x2000.min(s.end - b),
            details: "goroutine 18 stack (waiting)".into(),
            tid: None,
        },
    ];
    let mut app = App::new(
        Settings::default(),
        Some((Arc::new(snap), Duration::from_millis(12))),
    );
    expand_executable(&mut app);
    let text = screen_text(&draw(&mut app, 120, 40));
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}:\n{text}"))
            .to_string()
    };
    let first = line("goroutine 1 stack (running)");
    assert!(first.contains(&format!("\u{b7} {a:x}")), "{first}");
    assert!(first.contains(" 2K "), "the part's size: {first}");
    assert!(line("goroutine 18 stack").contains(&format!("\u{b7} {b:x}")));
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "goroutine 18");
    key(&mut app, KeyCode::Enter);
    let m = main_view(&mut app);
    assert!(matches!(
        m.details.rows[m.details.cursor.selected],
        Row::Part(_, 1, 1)
    ));
    // Going to an address inside a part selects the part.
    m.goto_address(a + 0x10);
    assert!(matches!(
        m.details.rows[m.details.cursor.selected],
        Row::Part(_, 1, 0)
    ));
}

#[test]
fn details_image_expanded_120x40() {
    let mut app = main_app();
    expand_executable(&mut app);
    let t = draw(&mut app, 120, 40);
    let text = screen_text(&t);
    let m = main_view(&mut app);
    let g = row_region(&m.snap, m.details.rows[m.details.cursor.selected]).unwrap();
    // The group row carries "- " before its address; each sub-block is
    // indented by four columns; both show the Image type.
    let has_line = |prefix: String| {
        text.lines()
            .any(|l| l.contains(&prefix) && l.contains("Image"))
    };
    assert!(has_line(format!("\"- {:x} ", g.start)), "group row");
    assert!(g.sub_blocks.len() > 2);
    for s in &g.sub_blocks {
        assert!(
            has_line(format!("\"    {:x} ", s.start)),
            "sub-block {:x} indented",
            s.start
        );
    }
    insta::assert_snapshot!(t.backend());
}

#[test]
fn help_overlay_100x30() {
    let mut app = main_app();
    app.mode = Mode::Help(0);
    let t = draw(&mut app, 100, 30);
    let text = screen_text(&t);
    assert!(text.contains("KEYS"));
    assert!(text.contains("Process picker"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn help_overlay_scrolled_100x30() {
    let mut app = main_app();
    app.mode = Mode::Help(40);
    let t = draw(&mut app, 100, 30);
    insta::assert_snapshot!(t.backend());
}

/// The picker switched to its Launch tab (F2), with a fixed working
/// directory so that the screen does not depend on where tests run.
fn launch_app() -> App {
    let mut app = picker_app();
    key(&mut app, KeyCode::F(2));
    assert_eq!(app.picker.tab, PickerTab::Launch);
    app.picker.launch.cwd = "/srv/work".into();
    app
}

#[test]
fn launch_form_empty_100x30() {
    let mut app = launch_app();
    let t = draw(&mut app, 100, 30);
    let text = screen_text(&t);
    assert!(text.contains("Launch and trace a new process"));
    assert!(text.contains("Enter:launch"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn launch_form_filled_100x30() {
    let mut app = launch_app();
    type_text(&mut app, "/bin/sleep");
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "5 'two words'");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Backspace);
    type_text(&mut app, "/tmp");
    key(&mut app, KeyCode::Down);
    type_text(&mut app, "sleep.vmmap");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char(' '));
    let f = &app.picker.launch;
    assert_eq!(f.program, "/bin/sleep");
    assert_eq!(f.args, "5 'two words'");
    assert_eq!(f.cwd, "/srv/wor/tmp");
    assert_eq!(f.output, "sleep.vmmap");
    assert!(f.snapshot_only);
    assert!(app.picker.filter.is_empty(), "typing went to the form");
    let t = draw(&mut app, 100, 30);
    let text = screen_text(&t);
    assert!(text.contains("[x]"));
    insta::assert_snapshot!(t.backend());
    // Esc goes back to the process list, the form kept.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.picker.tab, PickerTab::Processes);
    assert_eq!(app.picker.launch.program, "/bin/sleep");
    assert!(!app.quit);
}

#[test]
fn launch_form_error_100x30() {
    let mut app = launch_app();
    type_text(&mut app, "/nonexistent/vmmap-test-program");
    key(&mut app, KeyCode::Enter);
    assert!(app.traces.is_empty());
    let t = draw(&mut app, 100, 30);
    let text = screen_text(&t);
    assert!(
        text.contains("/nonexistent/vmmap-test-program: no such program"),
        "{text}"
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn column_chooser_80x24() {
    let mut app = main_app();
    app.mode = Mode::Columns(0);
    let t = draw(&mut app, 80, 24);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn find_prompt_80x24() {
    let mut app = main_app();
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "stk512");
    let t = draw(&mut app, 80, 24);
    assert!(screen_text(&t).contains("Find: stk512"));
    key(&mut app, KeyCode::Enter);
    let m = main_view(&mut app);
    let r = row_region(&m.snap, m.details.rows[m.details.cursor.selected]).unwrap();
    assert_eq!(r.memory_type, MemoryType::Stack);
}

/// Every screen and overlay in every state above, drawn at sizes down to
/// nothing and resized in between: drawing must never panic.
#[test]
fn tiny_sizes_never_panic() {
    type Make = fn() -> App;
    type Setup = fn(&mut App);
    let states: [(&str, Make, Setup); 16] = [
        ("picker", picker_app, |_| {}),
        ("launch form", launch_app, |_| {}),
        ("launch form error", launch_app, |a| {
            a.picker.launch.error = Some("x ".repeat(200));
        }),
        ("picker filtered", picker_app, |a| type_text(a, "sleep")),
        ("picker no match", picker_app, |a| type_text(a, "zzz")),
        ("picker last", picker_app, |a| key(a, KeyCode::End)),
        (
            "picker empty",
            || App::new(Settings::default(), None),
            |_| {},
        ),
        ("picker help", picker_app, |a| a.mode = Mode::Help(0)),
        ("main", main_app, |_| {}),
        ("main stack", main_app, |a| {
            select_type(a, MemoryType::Stack)
        }),
        ("main expanded", main_app, expand_executable),
        ("main last row", main_app, |a| {
            let m = main_view(a);
            m.details.set_all_expanded(&m.snap, &m.data, true);
            m.toggle_free();
            m.details.cursor.selected = m.details.rows.len() - 1;
        }),
        ("main help", main_app, |a| a.mode = Mode::Help(0)),
        ("main help scrolled", main_app, |a| a.mode = Mode::Help(500)),
        ("main columns", main_app, |a| a.mode = Mode::Columns(21)),
        ("main find", main_app, |a| a.mode = Mode::Find("x".into())),
    ];
    let widths = [0, 1, 3, 10, 17, 20, 31, 45, 80];
    let heights = [0, 1, 2, 3, 5, 8, 9, 13, 24];
    let mut failures = Vec::new();
    for (name, make, setup) in states {
        let mut app = make();
        setup(&mut app);
        // One terminal, resized: offsets and areas carry over, as they do
        // when the user resizes the window.
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        for w in widths {
            for h in heights {
                if h == 0 && w > 0 && app.screen == Screen::Picker {
                    continue; // a known panic: zero_height_picker_status_line
                }
                let r = catch_unwind(AssertUnwindSafe(|| {
                    t.backend_mut().resize(w, h);
                    t.autoresize().unwrap();
                    t.draw(|f| app.draw(f)).unwrap();
                }));
                if let Err(e) = r {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{name} at {w}x{h}: {msg}"));
                    t = Terminal::new(TestBackend::new(80, 24)).unwrap();
                }
            }
        }
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}

// Known rendering problems, reported and left to be fixed in src/: each
// test states the behaviour wanted. Run them with `-- --ignored`.

#[test]

fn zero_height_picker_status_line() {
    let mut app = picker_app();
    draw(&mut app, 80, 0);
}

#[test]

fn vsyscall_address_is_whole() {
    let mut app = main_app();
    let text = screen_text(&draw(&mut app, 160, 48));
    assert!(
        text.contains("ffffffffff600000"),
        "[vsyscall] is shown as ffffffffff6000"
    );
}

#[test]

fn library_names_visible_at_160() {
    let mut app = main_app();
    let text = screen_text(&draw(&mut app, 160, 48));
    for name in ["libc.so.6", "ld-linux-x86-64.so.2"] {
        assert!(text.contains(name), "{name} not visible");
    }
}

#[test]

fn column_chooser_shows_selection_at_80x16() {
    let mut app = main_app();
    app.mode = Mode::Columns(21);
    let text = screen_text(&draw(&mut app, 80, 16));
    assert!(
        text.contains("Hugetlb"),
        "the selected column is off screen"
    );
}

#[test]

fn picker_sizes_keep_their_unit_at_60() {
    let mut app = picker_app();
    let text = screen_text(&draw(&mut app, 60, 12));
    assert!(text.contains("92M"), "perl's private bytes lost their unit");
}

#[test]

fn help_scroll_stops_at_the_end() {
    let mut app = main_app();
    app.mode = Mode::Help(500);
    let text = screen_text(&draw(&mut app, 60, 12));
    assert!(
        text.contains("Hugetlb"),
        "the last page of the help is empty"
    );
}

/// A history of two snapshots: the captured one, and the same with its
/// largest region removed and one region grown.
fn history_app() -> App {
    let a = target();
    let mut b = a.clone();
    b.taken_at_unix_ns += 2_000_000_000;
    let biggest = (0..b.regions.len())
        .max_by_key(|&i| b.regions[i].size())
        .unwrap();
    b.regions.remove(biggest);
    App::with_history(Settings::default(), vec![Arc::new(a), Arc::new(b)], 1)
}

#[test]
fn timeline_and_changes_of_a_history() {
    let mut app = history_app();
    app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('t'),
        KeyModifiers::NONE,
    )));
    assert!(matches!(app.mode, Mode::Timeline(_)));
    let text = screen_text(&draw(&mut app, 100, 30));
    assert!(text.contains("Working set over 2 snapshot(s)"), "{text}");
    assert!(text.contains("snapshot 2 of 2 at +2.0 s"), "{text}");
    // Left selects the first; d compares it with the second.
    for k in [
        KeyCode::Left,
        KeyCode::Char('m'),
        KeyCode::Right,
        KeyCode::Char('d'),
    ] {
        app.on_event(Event::Key(KeyEvent::new(k, KeyModifiers::NONE)));
    }
    assert!(matches!(app.mode, Mode::Diff(_)), "{:?}", app.mode);
    let text = screen_text(&draw(&mut app, 120, 40));
    assert!(text.contains("Changes from snapshot 1 to 2"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("│- 7")),
        "the removed region is listed:\n{text}"
    );
    // Tiny sizes never panic with the overlays open.
    for (w, h) in [(1, 1), (20, 5), (80, 3)] {
        draw(&mut app, w, h);
        app.mode = Mode::Timeline(vmmap_tui::timeline_view::TimelineState {
            selected: 0,
            mark: None,
            committed: true,
        });
        draw(&mut app, w, h);
    }
}

#[test]
fn compare_mode_shows_deltas_and_marks() {
    let mut app = history_app();
    app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('D'),
        KeyModifiers::SHIFT,
    )));
    let m = main_view(&mut app);
    assert!(m.compare.is_some());
    let text = screen_text(&draw(&mut app, 160, 48));
    // The second snapshot lost a 64M arena: the Heap row shows -64M.
    assert!(
        text.lines()
            .any(|l| l.contains("Heap") && l.contains("-64M")),
        "{text}"
    );
    // Stepping back to the first snapshot: nothing earlier, compare ends.
    app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('['),
        KeyModifiers::NONE,
    )));
    assert!(main_view(&mut app).compare.is_none());
}

/// `w` saves the shown snapshot or, in the changes overlay, the diff, in
/// the format of the extension typed.
#[test]
fn save_snapshot_and_changes_by_extension() {
    let dir = std::env::temp_dir().join(format!("vmmap-tui-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key =
        |app: &mut App, k: KeyCode| app.on_event(Event::Key(KeyEvent::new(k, KeyModifiers::NONE)));
    let mut app = history_app();
    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Char('w'));
    assert!(matches!(app.mode, Mode::Save(true, _)), "{:?}", app.mode);
    let diff_path = dir.join("changes.json");
    app.mode = Mode::Save(true, diff_path.to_str().unwrap().to_string());
    key(&mut app, KeyCode::Enter);
    let text = std::fs::read_to_string(&diff_path).unwrap();
    assert!(text.starts_with("{\"schema\":\"vmmap.diff\""), "{text}");
    for (name, starts) in [
        ("snap.csv", "depth,start,end"),
        ("snap.json", "{\"schema\":\"vmmap.snapshot\""),
        ("snap.txt", "address\ttype"),
    ] {
        let p = dir.join(name);
        app.mode = Mode::Save(false, p.to_str().unwrap().to_string());
        key(&mut app, KeyCode::Enter);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(starts),
            "{name}: {}",
            &text[..text.len().min(80)]
        );
    }
    let p = dir.join("snap.vmmap");
    app.mode = Mode::Save(false, p.to_str().unwrap().to_string());
    key(&mut app, KeyCode::Enter);
    let loaded = vmmap_core::format::load_file(&p).unwrap();
    assert_eq!(loaded.snapshots.len(), 1);
    assert!(loaded.complete);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn goto_address_selects_the_sub_block_or_the_gap() {
    let mut app = main_app();
    // Filtered to stacks first: the jump must show every type again.
    select_type(&mut app, MemoryType::Stack);
    let (group_start, vma) = {
        let m = main_view(&mut app);
        let exe = m.snap.process.exe.clone().expect("exe");
        let g = m
            .snap
            .regions
            .iter()
            .find(|r| *r.path == *exe && r.sub_blocks.len() > 1)
            .expect("the executable is a group");
        (g.start, g.sub_blocks[1].clone())
    };
    let addr = vma.start + 0x10;
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, &format!("{addr:x}"));
    let t = draw(&mut app, 100, 30);
    assert!(screen_text(&t).contains(&format!("Go to address: {addr:x}")));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    let m = main_view(&mut app);
    assert_eq!(m.details.filter, None);
    let row = m.details.rows[m.details.cursor.selected];
    assert!(matches!(row, Row::Sub(_, 1)), "{row:?}");
    let r = row_region(&m.snap, row).expect("a region row");
    assert_eq!((r.start, r.end), (vma.start, vma.end));
    assert!(m.details.expanded.contains(&group_start));
    let msg = app.message.clone().expect("a status message");
    assert!(
        msg.starts_with(&format!("{addr:#x}: Image {group_start:#x}-")),
        "{msg}"
    );

    // An address in a gap turns on the free regions and selects the gap.
    let gap_addr = {
        let m = main_view(&mut app);
        let last = m
            .snap
            .regions
            .iter()
            .rfind(|r| r.end < 1 << 47)
            .expect("regions");
        last.end + 0x1000
    };
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, &format!("0x{gap_addr:x}"));
    key(&mut app, KeyCode::Enter);
    let m = main_view(&mut app);
    assert!(m.details.show_free);
    assert!(matches!(
        m.details.rows[m.details.cursor.selected],
        Row::Free(_)
    ));
    assert!(app
        .message
        .as_deref()
        .unwrap_or("")
        .contains("is free: gap"));

    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, "zz");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.message.as_deref(), Some("\"zz\" is not a hex address"));
}

#[test]
fn strings_view_100x20() {
    use vmmap_tui::memory_view::{Item, MemoryList};
    let mut app = main_app();
    let items = [
        (0x55d0c0a012a0, "ascii", "GLIBC_2.34"),
        (0x55d0c0a012c0, "utf16le", "C:\\Windows\\wide"),
        (0x55d0c0a01300, "utf8", "naïve café"),
        (0x55d0c0a01340, "ascii", "PATH=/usr/bin:/bin"),
    ]
    .into_iter()
    .map(|(a, t, s)| Item {
        address: a,
        tag: t.into(),
        text: s.into(),
    })
    .collect();
    app.memory_list = Some(MemoryList::new(
        "Strings in Heap 0x55d0c0a00000-0x55d0c0a21000 Heap ID: 0 (brk heap)".into(),
        "read 132K".into(),
        items,
    ));
    app.mode = Mode::MemoryList;
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(draw(&mut app, 100, 20).backend());
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "BIN");
    insta::assert_snapshot!(
        "strings_view_filtered_100x20",
        draw(&mut app, 100, 20).backend()
    );
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.memory_list.is_none());
}

#[test]
fn fragmentation_map_100x30() {
    let mut app = main_app();
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(app.mode, Mode::Map);
    // The first draw lays out the cells; then the cursor moves to the
    // third segment shown.
    draw(&mut app, 100, 30);
    key(&mut app, KeyCode::Char('n'));
    key(&mut app, KeyCode::Char('n'));
    let t = draw(&mut app, 100, 30);
    let screen = screen_text(&t);
    let (seg_start, title) = {
        let v = app.map.as_ref().expect("the map is open");
        let seg = v.segment().expect("a segment under the cursor").clone();
        let snap = &app.main.as_ref().unwrap().snap;
        (seg.start, v.layout.title(snap, &seg))
    };
    assert!(screen.contains(&title), "{title}\n{screen}");
    insta::assert_snapshot!(t.backend());
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.map.is_none());
    let m = main_view(&mut app);
    assert_eq!(
        vmmap_tui::details::row_start(&m.snap, &m.data, m.details.rows[m.details.cursor.selected]),
        seg_start
    );
}

/// The fragmentation map at the sizes terminals have, with and without
/// colour: each type has its letter either way (reserved parts in lower
/// case), and without colour no cell has one.
#[test]
fn fragmentation_map_at_every_size_with_and_without_colour() {
    for colour in [true, false] {
        for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
            let mut app = if colour { main_app() } else { colourless_app() };
            key(&mut app, KeyCode::Char('m'));
            assert_eq!(app.mode, Mode::Map);
            let t = draw(&mut app, w, h);
            let text = screen_text(&t);
            let at = format!("{w}x{h} colour {colour}");
            assert!(text.contains("Fragmentation map of"), "{at}:\n{text}");
            // Image, heap and private data have their letters on the map.
            let grid: String = text.lines().skip(1).take(h as usize - 3).collect();
            for letter in ['I', 'H', 'P'] {
                assert!(grid.contains(letter), "{at}: {letter} on the map:\n{text}");
            }
            assert_eq!(coloured_cells(&t) > 0, colour, "{at}");
            let name = format!(
                "fragmentation_map_{w}x{h}{}",
                if colour { "" } else { "_no_colour" }
            );
            insta::assert_snapshot!(name, t.backend());
        }
    }
}

#[test]
fn picker_marks_processes_for_a_combined_view() {
    let mut app = picker_app();
    key(&mut app, KeyCode::Insert);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Insert);
    assert_eq!(app.picker.marked.len(), 2);
    assert!(
        app.picker.filter.is_empty(),
        "Insert marks, it does not filter"
    );
    let text = screen_text(&draw(&mut app, 100, 30));
    assert!(text.contains("2 marked "), "{text}");
    assert!(text.contains("Enter:combine the 2 marked"), "{text}");
    assert_eq!(text.matches('*').count(), 2, "{text}");
    // Enter with two marked asks for the combined figures, and the answer
    // opens the combined view (tests/combined_render.rs); Esc comes back.
    let reqs = app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(
        matches!(reqs.as_slice(), [Request::Combined(p)] if p.len() == 2),
        "{reqs:?}"
    );
    let snaps = vec![target()];
    let c = vmmap_core::multi::Combined::of_snapshots(&snaps);
    let pids = vec![snaps[0].process.pid];
    let snaps = snaps.into_iter().map(Arc::new).collect();
    app.on_response(Response::Combined(pids, Ok((c, snaps, Vec::new()))));
    assert_eq!(app.screen, Screen::Combined);
    let text = screen_text(&draw(&mut app, 100, 30));
    assert!(text.contains("Combined: 1 processes"), "{text}");
    let reqs = app.on_event(Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert!(matches!(reqs.as_slice(), [Request::Processes]), "{reqs:?}");
    assert_eq!(app.screen, Screen::Picker);
    // Insert again unmarks.
    key(&mut app, KeyCode::Insert);
    assert_eq!(app.picker.marked.len(), 1);
}

/// The mouse on the picker: a header click sorts by the column under it
/// (again reverses), a click on a row selects it, a second click on the
/// selected row opens it; a click below the last row does nothing.
#[test]
fn picker_clicks_sort_select_and_open() {
    let mut app = picker_app();
    draw(&mut app, 100, 30);
    let header = app.picker.header_area;
    let body = app.picker.body_area;
    // The first column's header (PID).
    click(&mut app, header.x, header.y);
    assert_eq!(app.picker.sort.column, PickColumn::ALL[0]);
    let reversed = app.picker.sort.reverse;
    click(&mut app, header.x + 1, header.y);
    assert_ne!(
        app.picker.sort.reverse, reversed,
        "the same header again reverses"
    );
    assert!(
        click(&mut app, body.x, body.y + 2).is_empty(),
        "a first click selects"
    );
    assert_eq!(app.picker.cursor.selected, app.picker.cursor.offset + 2);
    let pid = app.picker.selected_entry().map(|e| e.pid);
    let opened = click(&mut app, body.x, body.y + 2);
    assert!(
        matches!(opened[..], [Request::Snapshot(p)] if Some(p) == pid),
        "a second click opens: {opened:?}"
    );
    let rows = app.picker.rows.len() as u16;
    assert!(body.height > rows, "the list fits with room below");
    let before = app.picker.cursor.selected;
    assert!(click(&mut app, body.x, body.y + rows).is_empty());
    assert_eq!(app.picker.cursor.selected, before, "below the last row");
}
