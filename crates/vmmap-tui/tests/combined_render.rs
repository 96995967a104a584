//! The combined view of marked processes drawn on ratatui's `TestBackend`
//! at the sizes terminals have (60x16, 80x24, 160x48, 220x60), with and
//! without colour, over three processes made from the captured target
//! (`tests/fixtures/target.json`): the target, a copy with every other
//! region, and one with its first third. The figures are core's
//! `Combined` of those snapshots; Enter opens a process, Esc comes back.

use std::path::Path;
use std::sync::Arc;

use ratatui::crossterm::event::KeyCode;
use vmmap_core::model::{MemoryType, Snapshot};
use vmmap_core::multi::Combined;
use vmmap_tui::app::{App, Screen};
use vmmap_tui::collector::{Request, Response};
use vmmap_tui::palette::Depth;
use vmmap_tui::Settings;

mod screen;
use screen::{click, coloured_cells, draw, key};

fn target() -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).expect("target.json is a Snapshot")
}

/// The three processes: the target, `worker` (every other region) and
/// `helper` (the first third of them).
fn snapshots() -> Vec<Snapshot> {
    let t = target();
    let variant = |pid: u32, name: &str, keep: &dyn Fn(usize) -> bool| {
        let mut s = t.clone();
        s.process.pid = pid;
        s.process.name = name.into();
        s.regions = s
            .regions
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, r)| r.clone())
            .collect();
        s
    };
    let n = t.regions.len();
    vec![
        t.clone(),
        variant(4243, "worker", &|i| i % 2 == 0),
        variant(4244, "helper", &|i| i < n / 3),
    ]
}

/// An app showing the combined view of the three, as the collector's
/// answer to Enter on three marked processes leaves it.
fn combined_app(depth: Depth) -> App {
    let snaps = snapshots();
    let c = Combined::of_snapshots(&snaps);
    let pids = snaps.iter().map(|s| s.process.pid).collect();
    let mut app = App::new(
        Settings {
            depth,
            ..Settings::default()
        },
        None,
    );
    app.on_response(Response::Combined(
        pids,
        Ok((c, snaps.into_iter().map(Arc::new).collect(), Vec::new())),
    ));
    assert_eq!(app.screen, Screen::Combined);
    app
}

#[test]
fn combined_view_at_every_size_with_and_without_colour() {
    for depth in [Depth::TrueColour, Depth::Off] {
        for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
            let mut app = combined_app(depth);
            let t = draw(&mut app, w, h);
            let text = t.backend().to_string();
            let lines: Vec<&str> = text.lines().collect();
            let at = format!("{w}x{h} {depth:?}");
            assert!(text.contains("Combined: 3 processes"), "{at}:\n{text}");
            for bar in ["Committed", "Private Bytes", "Working Set"] {
                assert!(
                    lines.iter().any(|l| l.starts_with(&format!("\"{bar}"))),
                    "{at}: the {bar} bar:\n{text}"
                );
            }
            assert!(text.contains("Total"), "{at}: the Summary's Total");
            // Every process has its row, the largest Private first.
            for name in ["target", "worker", "helper"] {
                assert!(text.contains(name), "{at}: {name}:\n{text}");
            }
            assert!(text.contains("\u{25bc}Private"), "{at}: sort arrow");
            assert!(
                text.find("target").unwrap() < text.find("helper").unwrap(),
                "{at}: sorted by Private:\n{text}"
            );
            if depth == Depth::Off {
                assert!(coloured_cells(&t) == 0, "{at}: no colour at all");
                // The bars are drawn in each type's own character.
                let bar = lines.iter().find(|l| l.contains("Committed  ")).unwrap();
                let glyphs = [MemoryType::Image, MemoryType::Heap, MemoryType::PrivateData]
                    .map(vmmap_tui::palette::glyph);
                for g in glyphs {
                    assert!(bar.contains(g), "{at}: {g:?} in the bar {bar}");
                }
            } else {
                assert!(coloured_cells(&t) > 0, "{at}: the bars are coloured");
            }
            let name = format!(
                "combined_{w}x{h}{}",
                if depth == Depth::Off {
                    "_no_colour"
                } else {
                    ""
                }
            );
            insta::assert_snapshot!(name, t.backend());
        }
    }
}

#[test]
fn combined_figures_are_cores_sum_of_the_processes() {
    let snaps = snapshots();
    let c = Combined::of_snapshots(&snaps);
    let private: u64 = snaps
        .iter()
        .map(|s| {
            vmmap_core::Summary::of(s)
                .total
                .figures
                .value(vmmap_core::figures::Column::Private)
        })
        .sum();
    assert_eq!(c.total.private, private);
    let mut app = combined_app(Depth::TrueColour);
    let t = draw(&mut app, 160, 48);
    let text = t.backend().to_string();
    let shown = vmmap_core::units::size(private, false);
    let bar = text
        .lines()
        .find(|l| l.starts_with("\"Private Bytes"))
        .unwrap();
    assert!(bar.contains(&shown), "{shown} in {bar}");
}

#[test]
fn enter_drills_into_a_process_and_esc_comes_back() {
    let mut app = combined_app(Depth::TrueColour);
    draw(&mut app, 100, 30);
    // Sort by PID: worker (4243), helper (4244), then the target.
    while app.combined_view.as_ref().unwrap().sort.column != vmmap_tui::combined_view::ProcCol::Pid
    {
        key(&mut app, KeyCode::Char('S'));
    }
    let t = draw(&mut app, 100, 30);
    assert!(t.backend().to_string().contains("\u{25bc}PID"));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Up);
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "no collection");
    assert_eq!(app.screen, Screen::Main);
    let m = app.main.as_ref().unwrap();
    assert_eq!(m.snap.process.pid, 4244);
    let t = draw(&mut app, 100, 30);
    let text = t.backend().to_string();
    assert!(text.contains("4244 (helper)"), "{text}");
    assert!(text.contains("from the combined view, taken"), "{text}");
    assert!(text.contains("Esc: back to the combined view"), "{text}");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::Combined);
    // The selection and the sort are where they were.
    let v = app.combined_view.as_ref().unwrap();
    assert_eq!(v.selected_pid(), Some(4244));
    // Esc again: the picker, whose marks stay.
    assert_eq!(key(&mut app, KeyCode::Esc).len(), 1, "the list is read");
    assert_eq!(app.screen, Screen::Picker);
}

#[test]
fn f5_combines_the_same_processes_again_keeping_the_sort() {
    let mut app = combined_app(Depth::TrueColour);
    key(&mut app, KeyCode::Char('r'));
    let req = key(&mut app, KeyCode::F(5));
    assert!(
        matches!(&req[..], [Request::Combined(p)] if p.len() == 3),
        "{req:?}"
    );
    let snaps = snapshots();
    let c = Combined::of_snapshots(&snaps);
    let pids = snaps.iter().map(|s| s.process.pid).collect();
    app.on_response(Response::Combined(
        pids,
        Ok((c, snaps.into_iter().map(Arc::new).collect(), Vec::new())),
    ));
    assert!(app.combined_view.as_ref().unwrap().sort.reverse);
}

#[test]
fn tiny_sizes_never_panic() {
    let mut app = combined_app(Depth::Off);
    for w in 0..70 {
        for h in 0..20 {
            draw(&mut app, w, h);
        }
    }
}

/// The mouse on the combined view's process table: a header click sorts by
/// the column under it, a click on a row selects it, a second click on the
/// selected row opens that process.
#[test]
fn clicks_sort_select_and_open_a_process() {
    use vmmap_tui::combined_view::ProcCol;
    let mut app = combined_app(Depth::TrueColour);
    draw(&mut app, 100, 30);
    let v = app.combined_view.as_ref().unwrap();
    let (header, body) = (v.header_area, v.body_area);
    let &(x, _, _) = v.cols.iter().find(|c| c.2 == ProcCol::Pid).unwrap();
    click(&mut app, x, header.y);
    assert_eq!(
        app.combined_view.as_ref().unwrap().sort.column,
        ProcCol::Pid
    );
    draw(&mut app, 100, 30);
    // By PID: worker (4243), helper (4244), then the target.
    assert!(click(&mut app, body.x + 1, body.y + 1).is_empty());
    assert_eq!(app.screen, Screen::Combined, "a first click selects");
    assert_eq!(
        app.combined_view.as_ref().unwrap().selected_pid(),
        Some(4244)
    );
    assert!(
        click(&mut app, body.x + 1, body.y + 1).is_empty(),
        "no collection"
    );
    assert_eq!(app.screen, Screen::Main, "a second click opens");
    assert_eq!(app.main.as_ref().unwrap().snap.process.pid, 4244);
}
