//! Render tests of the timeline (`t`), over a recording written to a file
//! and read back as `vmmap open FILE -i` reads it: six snapshots taken at
//! uneven times (0, 1, 2 and 3 s, then a pause, then 30 and 31.5 s), drawn
//! at 60x16, 80x24, 160x48 and 220x60, with and without colour, compared
//! with insta snapshots (text only: the colour snapshots show the axes,
//! the key and the figures; the bars are coloured blanks).

use std::sync::Arc;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use vmmap_core::format::{load_file, Writer};
use vmmap_core::model::{MemoryType, Region, Snapshot};
use vmmap_core::proc::smaps::Mapping;
use vmmap_core::testing::fields;
use vmmap_tui::app::App;
use vmmap_tui::palette::{glyph, Depth};
use vmmap_tui::timeline_view::{cell_size, cells};
use vmmap_tui::Settings;

const K: u64 = 1024;
const M: u64 = 1024 * 1024;

/// A region of `bytes`, all resident, typed `t`.
fn region(start: u64, bytes: u64, t: MemoryType) -> Region {
    let mut r = Region::from_mapping(Mapping {
        start,
        end: start + bytes,
        perms: *b"rw-p",
        fields: fields(bytes / K, bytes / K, 0),
        ..Mapping::default()
    });
    r.memory_type = t;
    r
}

/// Image, Heap, Stack and Private Data of the given sizes at `secs`.
fn snapshot(secs: f64, image: u64, heap: u64, stack: u64, data: u64) -> Snapshot {
    let base = 1_796_557_339_000_000_000u64;
    let regions = vec![
        region(0x1000_0000, image, MemoryType::Image),
        region(0x2000_0000, heap, MemoryType::Heap),
        region(0x3000_0000, data, MemoryType::PrivateData),
        region(0x7000_0000, stack, MemoryType::Stack),
    ];
    Snapshot::from_regions(42, base + (secs * 1e9) as u64, regions)
}

/// Snapshot 4 (at 3 s) is the tallest, 32M: Image 1104K, Heap 2968K
/// (2.9M), Stack 36K and Private Data the rest. Stacked in type order at
/// 4M a row, the Heap's 2.9M ends inside the row the Image started and the
/// Stack's 36K crosses into the next: cumulative rounding drew a Stack
/// cell and no Heap.
fn recording() -> Vec<Arc<Snapshot>> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vmmap-tui-timeline-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rec.vmmap");
    let (image, heap, stack) = (1104 * K, 2968 * K, 36 * K);
    let mut w = Writer::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (secs, heap, data) in [
        (0.0, 200 * K, 4 * M),
        (1.0, M, 8 * M),
        (2.0, 2 * M, 12 * M),
        (3.0, heap, 32 * M - image - heap - stack),
        (30.0, heap, 20 * M),
        (31.5, heap, 24 * M),
    ] {
        w.append(&snapshot(secs, image, heap, stack, data)).unwrap();
    }
    w.finish().unwrap();
    let loaded = load_file(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.snapshots.len(), 6);
    loaded.snapshots.into_iter().map(Arc::new).collect()
}

fn key(app: &mut App, code: KeyCode) {
    let requests = app.on_event(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    assert!(requests.is_empty(), "no collection expected from {code:?}");
}

/// The timeline over the recording, snapshot 3 marked and 4 selected.
fn timeline(colour: bool, w: u16, h: u16) -> Terminal<TestBackend> {
    let settings = Settings {
        depth: if colour {
            Depth::TrueColour
        } else {
            Depth::Off
        },
        ..Settings::default()
    };
    let mut app = App::with_history(settings, recording(), 2);
    key(&mut app, KeyCode::Char('t'));
    key(&mut app, KeyCode::Char('m'));
    key(&mut app, KeyCode::Right);
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    terminal
}

/// The screen's rows as strings.
fn rows(t: &Terminal<TestBackend>) -> Vec<Vec<char>> {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().chars().next().unwrap_or(' '))
                .collect()
        })
        .collect()
}

const SIZES: [(u16, u16); 4] = [(60, 16), (80, 24), (160, 48), (220, 60)];

#[test]
fn timeline_at_every_size() {
    for (w, h) in SIZES {
        let t = timeline(true, w, h);
        insta::assert_snapshot!(format!("timeline_{w}x{h}"), t.backend().to_string());
    }
}

#[test]
fn timeline_without_colour_at_every_size() {
    for (w, h) in SIZES {
        let t = timeline(false, w, h);
        insta::assert_snapshot!(
            format!("timeline_without_colour_{w}x{h}"),
            t.backend().to_string()
        );
    }
}

/// Without colour, at every size: the selected bar (▲ under it on the
/// axis) has the cells the largest remainder gives, a Heap cell for its
/// 2.9M and no Stack cell for its 36K at 4M a cell; the
/// bars stand where their times put them, the 27 s pause a gap; the time
/// axis is in seconds; the key says what a cell is worth.
#[test]
fn timeline_places_by_time_and_rounds_by_largest_remainder() {
    let (heap, stack) = (glyph(MemoryType::Heap), glyph(MemoryType::Stack));
    let data = glyph(MemoryType::PrivateData);
    for (w, h) in SIZES {
        let t = timeline(false, w, h);
        let screen = t.backend().to_string();
        let rows = rows(&t);
        let axis = rows
            .iter()
            .position(|r| r.contains(&'└'))
            .unwrap_or_else(|| panic!("{w}x{h}: no time axis\n{screen}"));
        let at =
            |c: char| -> Vec<usize> { (0..w as usize).filter(|&x| rows[axis][x] == c).collect() };
        let selected = at('▲');
        let marked = at('M');
        assert!(!selected.is_empty(), "{w}x{h}: no cursor\n{screen}");
        assert!(!marked.is_empty(), "{w}x{h}: no mark\n{screen}");
        // The bars' rows: below the block's title and its key.
        let title = rows
            .iter()
            .position(|r| r.iter().collect::<String>().contains("Working set over"))
            .unwrap();
        let column = |x: usize| -> Vec<char> { (title + 2..axis).map(|y| rows[y][x]).collect() };
        // The selected bar has the cells the largest remainder gives at
        // the key's value of a cell: at 4M a cell (80x24), one for the
        // Heap's 2.9M and none for the Stack's 36K; never one for the
        // Stack.
        let bar = column(selected[0]);
        let count = |c: char| bar.iter().filter(|&&b| b == c).count() as u16;
        let cell = cell_size(32 * M, (axis - title - 2) as u16);
        assert!(
            screen.contains(&format!(
                "1 cell = {}  ",
                vmmap_core::units::size(cell, false)
            )),
            "{w}x{h}: the key does not say {cell}\n{screen}"
        );
        let (image, heap_b, stack_b) = (1104 * K, 2968 * K, 36 * K);
        let want = cells(
            &[image, heap_b, stack_b, 32 * M - image - heap_b - stack_b],
            cell,
        );
        let got = [glyph(MemoryType::Image), heap, stack, data].map(count);
        assert_eq!(got.to_vec(), want, "{w}x{h}: at {cell} a cell\n{screen}");
        assert_eq!(got[2], 0, "{w}x{h}: the 36K Stack got a cell\n{screen}");
        if (w, h) == (80, 24) {
            assert_eq!(
                (cell, got[1]),
                (4 * M, 1),
                "{w}x{h}: the 2.9M Heap\n{screen}"
            );
        }
        // The columns a bar is drawn in (every bar has Private Data).
        let left = rows[axis].iter().position(|&c| c == '└').unwrap() + 1;
        let right = w as usize - 2; // the last column inside the border
        let bars: Vec<usize> = (left..=right)
            .filter(|&x| column(x).contains(&data))
            .collect();
        assert_eq!(
            bars.first(),
            Some(&left),
            "{w}x{h}: the first bar at the left\n{screen}"
        );
        assert_eq!(
            bars.last(),
            Some(&right),
            "{w}x{h}: the last bar at the right\n{screen}"
        );
        // The 27 s pause of the 31.5 s is a gap of about 27/31.5 of the
        // width; the first four bars, 3 s apart, stand within a tenth.
        let room = (right - left) as f64;
        let pause = bars.windows(2).map(|p| p[1] - p[0]).max().unwrap() as f64;
        assert!(
            pause > room * 0.75 && pause < room * 0.9,
            "{w}x{h}: bars at {bars:?}\n{screen}"
        );
        let fourth = selected[0] - left;
        assert!(
            (fourth as f64) < room * 0.12,
            "{w}x{h}: the fourth bar at {fourth}"
        );
        let labels: String = rows[axis + 1].iter().collect();
        assert!(
            labels.contains("+10s") || labels.contains("+20s"),
            "{w}x{h}: {labels}"
        );
        assert!(screen.contains("1 cell = "), "{w}x{h}: no key\n{screen}");
        assert!(
            screen.contains("snapshot 4 of 6 at +3.0 s"),
            "{w}x{h}: no figures\n{screen}"
        );
    }
}

#[test]
fn the_largest_remainder_gives_the_cell_to_the_type_that_earns_it() {
    // 1104K, 2.9M, 36K and the rest of 32M at 4M a cell: 8 cells, the
    // Heap's 0.72 of a cell wins one, the Stack's 0.009 none (stacked and
    // rounded at each boundary, the Stack crossed into a cell and the
    // Heap, ending inside the Image's, had none).
    let (image, heap, stack) = (1104 * K, 2968 * K, 36 * K);
    let data = 32 * M - image - heap - stack;
    assert_eq!(cells(&[image, heap, stack, data], 4 * M), vec![0, 1, 0, 7]);
    // Nothing is drawn for nothing, and the bar's height is its total
    // rounded to whole cells.
    assert_eq!(cells(&[0, 0], M), vec![0, 0]);
    assert_eq!(cells(&[M / 2, M / 4, M / 4], M), vec![1, 0, 0]);
    assert_eq!(cells(&[3 * M / 2, 3 * M / 2], M), vec![2, 1]);
    // A cell is a round size in binary units.
    assert_eq!(cell_size(32 * M, 10), 4 * M);
    assert_eq!(cell_size(28 * M, 7), 4 * M);
    assert_eq!(cell_size(27 * M, 9), 3 * M);
    assert_eq!(cell_size(1, 9), 1);
}

#[test]
fn the_time_axis_unit_follows_the_span() {
    use vmmap_tui::timeline_view::TimeAxis;
    // 13 ms over 70 columns, a tick every 10: ms, every 2 ms.
    let a = TimeAxis::of(13_000_000, 70, 10);
    assert_eq!((a.suffix, a.step), ("ms", 2.0));
    assert_eq!((a.label(0.0), a.label(4.0)), ("0".into(), "+4ms".into()));
    // 31.5 s: seconds, every 5 s; 90 min: minutes; 3 h: hours.
    assert_eq!(TimeAxis::of(31_500_000_000, 70, 10).step, 5.0);
    assert_eq!(TimeAxis::of(5_400_000_000_000, 70, 10).suffix, "min");
    let h = TimeAxis::of(10_800_000_000_000, 200, 10);
    assert_eq!((h.suffix, h.step), ("h", 0.2));
    assert_eq!(h.label(0.4), "+0.4h");
}
