//! Render tests of `vmmap top` at the sizes terminals have (60x16, 80x24,
//! 160x48, 220x60), over two hand-made samples: which columns give way,
//! the sort arrow, the namespace PID and container columns, the filter and
//! pause states. Insta snapshots in `tests/snapshots/`, text only.

use std::time::Duration;

use ratatui::crossterm::event::KeyCode;
use vmmap_core::collect::top::Select;
use vmmap_core::container;
use vmmap_core::top::{Column, Figures, Proc};
use vmmap_tui::app::App;
use vmmap_tui::{Settings, TopStart};

mod screen;
use screen::{coloured_cells, draw, key};

const MB: u64 = 1 << 20;

fn proc(pid: u32, name: &str, private: u64, at_ms: u64) -> Proc {
    Proc {
        pid,
        start_time: u64::from(pid) * 10,
        ns_pid: None,
        user: if pid % 2 == 0 { "root" } else { "www-data" }.into(),
        name: name.into(),
        cmdline: format!("/usr/bin/{name} --serve --config /etc/{name}/{name}.conf"),
        container: None,
        figures: Figures {
            private,
            ws: private + 12 * MB,
            pss: Some(private + 3 * MB),
            swap: if pid == 400 { 2 * MB } else { 0 },
        },
        at: Duration::from_millis(at_ms),
    }
}

/// Five processes, then the same a second later: one grows 8M, one 1M, one
/// shrinks, one runs in a Docker container as PID 1 of its namespace.
fn samples() -> (Vec<Proc>, Vec<Proc>) {
    let boxed = |mut p: Proc| {
        p.ns_pid = Some(1);
        p.container = container::from_path(
            "/system.slice/docker-3f2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b.scope",
        );
        p
    };
    let first = vec![
        proc(100, "postgres", 300 * MB, 0),
        proc(200, "leaky-server", 40 * MB, 0),
        boxed(proc(300, "nginx", 20 * MB, 0)),
        proc(400, "python3", 90 * MB, 0),
        proc(500, "sshd", 4 * MB, 0),
    ];
    let second = vec![
        proc(100, "postgres", 300 * MB - 512 * 1024, 1000),
        proc(200, "leaky-server", 48 * MB, 1000),
        boxed(proc(300, "nginx", 21 * MB, 1000)),
        proc(400, "python3", 90 * MB, 1000),
        proc(500, "sshd", 4 * MB, 1000),
    ];
    (first, second)
}

fn app() -> App {
    app_with(Settings::default())
}

fn app_with(settings: Settings) -> App {
    let (first, second) = samples();
    let mut app = App::top(
        settings,
        TopStart {
            select: Select::All,
            first,
            delay: Duration::from_secs(1),
            sort: Column::DEFAULT,
            reverse: false,
            filter: String::new(),
            pss: true,
        },
    );
    app.top.as_mut().expect("top").take(second);
    app
}

#[test]
fn top_60x16() {
    insta::assert_snapshot!(draw(&mut app(), 60, 16).backend());
}

#[test]
fn top_80x24() {
    insta::assert_snapshot!(draw(&mut app(), 80, 24).backend());
}

#[test]
fn top_160x48() {
    insta::assert_snapshot!(draw(&mut app(), 160, 48).backend());
}

#[test]
fn top_220x60() {
    insta::assert_snapshot!(draw(&mut app(), 220, 60).backend());
}

/// Without colour (`NO_COLOR`, `TERM=dumb`): the same table, and no cell
/// has a colour.
#[test]
fn top_without_colour_at_every_size() {
    for (w, h) in [(60, 16), (80, 24), (160, 48), (220, 60)] {
        let mut a = app_with(Settings {
            depth: vmmap_tui::palette::Depth::Off,
            ..Settings::default()
        });
        let t = draw(&mut a, w, h);
        assert_eq!(coloured_cells(&t), 0, "{w}x{h}");
        assert!(t.backend().to_string().contains("leaky-server"));
        insta::assert_snapshot!(format!("top_without_colour_{w}x{h}"), t.backend());
    }
}

#[test]
fn top_fastest_grower_first_and_sort_keys() {
    let mut a = app();
    let names = |a: &App| -> Vec<String> {
        a.top
            .as_ref()
            .unwrap()
            .shown_rows()
            .map(|r| r.proc.name.clone())
            .collect()
    };
    assert_eq!(names(&a)[0], "leaky-server");
    assert_eq!(names(&a).last().unwrap(), "postgres");
    key(&mut a, KeyCode::Char('>'));
    assert_eq!(
        a.top.as_ref().unwrap().sort.column,
        Column::SinceStart(vmmap_core::top::Metric::Private)
    );
    key(&mut a, KeyCode::Char('<'));
    key(&mut a, KeyCode::Char('<'));
    assert_eq!(
        a.top.as_ref().unwrap().sort.column,
        Column::Value(vmmap_core::top::Metric::Private)
    );
    assert_eq!(names(&a)[0], "postgres");
    key(&mut a, KeyCode::Char('r'));
    assert_eq!(names(&a)[0], "sshd");
    insta::assert_snapshot!(draw(&mut a, 80, 24).backend());
}

#[test]
fn top_filter_and_pause_80x24() {
    let mut a = app();
    key(&mut a, KeyCode::Char('/'));
    for c in "ngin".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    // The filter applies as it is typed; the prompt is in the status line.
    insta::assert_snapshot!("top_filter_typing_80x24", draw(&mut a, 80, 24).backend());
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char(' '));
    assert!(a.top.as_ref().unwrap().paused);
    insta::assert_snapshot!("top_filtered_paused_80x24", draw(&mut a, 80, 24).backend());
    // Esc clears the filter.
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.top.as_ref().unwrap().shown_rows().count(), 5);
}
