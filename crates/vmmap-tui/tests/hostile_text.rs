//! Names, command lines and paths are chosen by whoever runs the process
//! being looked at. A ratatui cell holding ESC would be sent to the
//! terminal as it is by crossterm: every view shows such text escaped
//! (vmmap_core::text), and no cell holds a control character.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use vmmap_core::collect::ProcessEntry;
use vmmap_core::model::Snapshot;
use vmmap_tui::app::{App, Mode, Screen};
use vmmap_tui::Settings;

mod screen;
use screen::draw;

const NAME: &str = "\x1b]0;PWN\x07x";
const PATH: &str = "/tmp/map\x1b]0;T\x07\r\nFORGED\u{9b}2J\u{202e}";
const ARG: &str = "\x1b]52;c;aGk=\x07";

const SHOWN_NAME: &str = r#""\x1b]0;PWN\x07x""#;
const SHOWN_PATH: &str = r#""/tmp/map\x1b]0;T\x07\r\nFORGED\u{9b}2J\u{202e}""#;
const SHOWN_ARG: &str = r"\x1b]52;c;aGk=\x07";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The captured target, renamed and with its first region's path hostile.
fn hostile_snapshot() -> Snapshot {
    let mut s: Snapshot =
        serde_json::from_str(&fixture("target.json")).expect("target.json is a Snapshot");
    s.process.name = NAME.into();
    s.process.cmdline = vec!["target".into(), ARG.into()];
    for t in &mut s.process.threads {
        t.name = NAME.into();
    }
    let r = &mut s.regions[0];
    r.path = PATH.into();
    r.details = PATH.into();
    s
}

/// Every cell's symbol: none may hold a control character (C0, DEL, C1)
/// or a bidirectional override.
#[track_caller]
fn assert_clean(what: &str, t: &Terminal<TestBackend>) {
    for (i, cell) in t.backend().buffer().content.iter().enumerate() {
        assert!(
            !cell.symbol().chars().any(vmmap_core::text::is_unsafe),
            "{what}: cell {i} holds {:?}",
            cell.symbol()
        );
    }
}

/// The screen as one line per row.
fn screen(t: &Terminal<TestBackend>) -> String {
    let b = t.backend().buffer();
    let w = b.area.width as usize;
    b.content
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_main_view_shows_hostile_names_escaped() {
    let mut app = App::new(
        Settings::default(),
        Some((Arc::new(hostile_snapshot()), Duration::from_millis(1))),
    );
    let t = draw(&mut app, 200, 48);
    assert_clean("main view", &t);
    let text = screen(&t);
    assert!(text.contains(SHOWN_NAME), "no {SHOWN_NAME} in:\n{text}");
    assert!(text.contains(SHOWN_PATH), "no {SHOWN_PATH} in:\n{text}");
    assert!(text.contains(SHOWN_ARG), "no {SHOWN_ARG} in:\n{text}");
    // The status line names the selected region.
    let _ = app.on_event(Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    app.mode = Mode::Normal;
    assert_clean("main view, Details focused", &draw(&mut app, 120, 40));
}

#[test]
fn the_picker_shows_hostile_processes_escaped() {
    let mut list: Vec<ProcessEntry> =
        serde_json::from_str(&fixture("processes.json")).expect("processes.json");
    list[0].name = NAME.into();
    list[0].user = NAME.into();
    list[0].cmdline = format!("target {ARG} {PATH}");
    let mut app = App::new(Settings::default(), None);
    app.picker.set(list);
    app.screen = Screen::Picker;
    let t = draw(&mut app, 200, 30);
    assert_clean("picker", &t);
    // The Name column is 16 wide: the escaped name is cut, not its escapes.
    let text = screen(&t);
    let cut: String = SHOWN_NAME.chars().take(16).collect();
    assert!(text.contains(&cut), "no {cut} in:\n{text}");
}

#[test]
fn the_strings_view_and_the_status_line_show_hostile_text_escaped() {
    use vmmap_tui::memory_view::{Item, MemoryList};
    let mut app = App::new(
        Settings::default(),
        Some((Arc::new(hostile_snapshot()), Duration::from_millis(1))),
    );
    // A string from memory (a tab is the only control the scanner keeps;
    // a search match may be anything) and a message quoting a name.
    let items = ["key\tvalue", "\"quoted\"", "\x1b]0;x\x07"]
        .iter()
        .enumerate()
        .map(|(i, s)| Item {
            address: 0x1000 + i as u64,
            tag: "ascii".into(),
            text: (*s).into(),
        })
        .collect();
    app.memory_list = Some(MemoryList::new(
        format!("Strings in {PATH}"),
        String::new(),
        items,
    ));
    app.mode = Mode::MemoryList;
    app.message = Some(format!("Cannot open 1 ({NAME})"));
    let t = draw(&mut app, 200, 30);
    assert_clean("strings view", &t);
    let text = screen(&t);
    for want in [
        "key value",
        r#""\"quoted\"""#,
        r#""\x1b]0;x\x07""#,
        r#""Cannot open 1 (\x1b]0;PWN\x07x)""#,
    ] {
        assert!(text.contains(want), "no {want} in:\n{text}");
    }
}

/// `w` saves the Details as tab-separated text: a path's own tab, CR or
/// line feed must neither reach the file raw nor break its rows.
#[test]
fn the_saved_table_escapes_hostile_paths() {
    let mut snap = hostile_snapshot();
    snap.regions[1].details = "tab\there".into();
    let mut app = App::new(
        Settings::default(),
        Some((Arc::new(snap), Duration::from_millis(1))),
    );
    let file = std::env::temp_dir().join(format!("vmmap-hostile-{}.txt", std::process::id()));
    app.mode = Mode::Save(false, file.to_str().expect("utf-8").into());
    let _ = app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let text = std::fs::read_to_string(&file).expect("the table was saved");
    let _ = std::fs::remove_file(&file);
    let columns = text.lines().next().expect("a header").split('\t').count();
    for line in text.lines() {
        assert_eq!(line.split('\t').count(), columns, "a broken row: {line:?}");
        assert!(
            !line
                .split('\t')
                .any(|f| f.chars().any(vmmap_core::text::is_unsafe)),
            "{line:?}"
        );
    }
    assert!(text.contains(SHOWN_PATH), "{text}");
    assert!(text.contains(r#""tab\there""#), "{text}");
}

/// A traced run whose symbols (from the traced binary, so its author's
/// choice) hold escape sequences: stack 1 is leaf <- work <- main, stack 2
/// leaf <- main, as in `common`, with hostile names.
fn hostile_trace() -> std::path::PathBuf {
    use std::io::Write;
    use vmmap_core::format::{chunk_bytes, Writer, CHUNK_SYMBOLS};
    use vmmap_trace::scan::encode_symbols;
    use vmmap_trace::symbols::{CachedModule, Frame};
    use vmmap_wire::synthetic::*;
    const BASE: u64 = 0x400000;
    let dir = std::env::temp_dir().join(format!("vmmap-tui-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hostile.vmmap");
    let mut s = StreamBuilder::new(100, 0x7f00_0000_0000, 0x7ffd_0000_0000, 0x7ffd_0080_0000);
    s.stack(1, &[BASE + 0x301, BASE + 0x201, BASE + 0x101]);
    s.stack(2, &[BASE + 0x311, BASE + 0x111]);
    s.malloc(10, 0x10000, 300, 1);
    s.malloc(20, 0x10200, 50, 2);
    s.mmap_anon(50, 0x7000_0000, 65536, 2);
    let mut w = Writer::new(std::fs::File::create(&path).unwrap()).unwrap();
    for m in [
        hello(42, "/bin/app", b"app\0"),
        one_module(BASE, "/bin/app", &[0xab, 0xcd], 0x10000),
        events(60, &s),
        end(),
    ] {
        w.append_trace(&m).unwrap();
    }
    let mut f = w.finish().unwrap();
    let frame = |function: &str, line: u32| {
        vec![Frame {
            function: function.into(),
            file: Some(FILE.into()),
            line: Some(line),
            inlined: false,
        }]
    };
    let cache = [CachedModule {
        key: "abcd".into(),
        entries: vec![
            (0x100, frame("main", 10)),
            (0x110, frame("main", 11)),
            (0x200, frame(FUNCTION, 20)),
            (0x300, frame(FUNCTION, 30)),
            (0x310, frame(FUNCTION, 31)),
        ],
    }];
    let (payload, raw) = encode_symbols(&cache).unwrap();
    f.write_all(&chunk_bytes(CHUNK_SYMBOLS, &payload, raw).unwrap())
        .unwrap();
    path
}

const FUNCTION: &str = "work\x1b]0;x\x07";
const FILE: &str = "/src/ev\x1b[2J.c";

#[test]
fn the_trace_view_shows_hostile_symbols_escaped() {
    use vmmap_tui::settings::Units;
    use vmmap_tui::trace_view::{Tab, TraceView};
    let mut v = TraceView::new(hostile_trace(), None);
    v.wait();
    assert!(v.error.is_none(), "{:?}", v.error);
    let draw_view = |v: &mut TraceView, what: &str| {
        let mut t = Terminal::new(TestBackend::new(140, 24)).unwrap();
        t.draw(|f| v.draw(f, f.area(), Units::Human)).unwrap();
        assert_clean(what, &t);
        screen(&t)
    };
    let key = |v: &mut TraceView, code| v.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    let text = draw_view(&mut v, "call tree");
    assert!(text.contains(r"work\x1b]0;x\x07"), "{text}");
    key(&mut v, KeyCode::Char('2'));
    assert_eq!(v.tab, Tab::Leaks);
    let text = draw_view(&mut v, "leaks");
    assert!(text.contains(r"work\x1b]0;x\x07"), "{text}");
    assert!(text.contains(r"ev\x1b[2J.c:"), "{text}");
    key(&mut v, KeyCode::Char('3'));
    v.wait_history();
    key(&mut v, KeyCode::End);
    key(&mut v, KeyCode::Enter);
    let text = draw_view(&mut v, "history, a call stack");
    assert!(text.contains(r"work\x1b]0;x\x07"), "{text}");
}
