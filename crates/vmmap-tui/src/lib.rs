/*!
The terminal UI of vmmap: a process picker and VMMap's main window (three
bar graphs, the Summary table and the Details table) over
[`vmmap_core`] snapshots.

The UI owns only view state: selection, sort, filter, expansion. Snapshots
are taken on a collection thread ([`collector`]) and arrive as immutable
`Arc<Snapshot>`s, so drawing never waits for `/proc`. Drawing touches only
the visible rows, so 60,000 regions scroll as smoothly as 60.
*/

#![warn(missing_docs)]

pub mod app;
pub mod attach_session;
pub mod clipboard;
pub mod collector;
pub mod combined_view;
pub mod details;
pub mod help;
mod job;
pub mod launch_form;
pub mod list;
pub mod main_view;
pub mod map_view;
pub mod memory_view;
pub mod owners_job;
pub mod palette;
pub mod picker;
pub mod settings;
pub mod terminal;
pub mod timeline_view;
pub mod top_view;
pub mod trace_jobs;
pub mod trace_session;
pub mod trace_view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vmmap_core::model::Snapshot;

pub use settings::Settings;
pub use top_view::TopStart;

/// Where the UI starts.
pub enum Start {
    /// The process picker.
    Picker,
    /// The main view of a snapshot already taken (so that errors such as
    /// permission denied are reported before the terminal is taken over).
    Snapshot(Arc<Snapshot>, Duration),
    /// Snapshots loaded from a file, showing the one at the index: F5
    /// cannot refresh them (their PID may belong to another process by
    /// now), but `[` and `]` step through them. The file's path lets `T`
    /// analyse the trace it may hold.
    File(Vec<Arc<Snapshot>>, usize, PathBuf),
    /// `vmmap top`: the processes whose memory grows; Enter opens one in
    /// the main view.
    Top(TopStart),
}

/// Runs the UI until the user quits. The terminal is restored on every
/// way out, including panics and SIGTERM.
pub fn run(start: Start, proc_root: PathBuf) -> std::io::Result<()> {
    let (mut settings, warning) = Settings::load();
    settings.depth = palette::Depth::detect(palette::choice(), |k| std::env::var(k).ok());
    let mut collector = collector::Collector::start(proc_root.clone());
    let mut app = match start {
        Start::Top(t) => app::App::top(settings, t),
        Start::Picker => app::App::new(settings, None),
        Start::Snapshot(s, t) => app::App::new(settings, Some((s, t))),
        Start::File(snaps, index, path) => {
            let mut a = app::App::with_history(settings, snaps, index);
            a.file = Some(path);
            a.count_agent_apart();
            a
        }
    };
    if app.top.is_none() {
        collector.request(collector::Request::Processes);
    }
    app.message = warning;
    app.proc_root = proc_root;
    let (mut term, stop) = terminal::init()?;
    let result = app::run_loop(&mut term, &mut app, &mut collector, &stop);
    terminal::restore();
    // Programs launched from the Launch tab keep running; their files are
    // finished now, and the user is told where they are.
    for t in app.traces.drain(..) {
        eprintln!("vmmap: {}", t.stop());
    }
    // Attached processes are detached, unhooked, and run on.
    for s in app.attaches.drain(..) {
        eprintln!("vmmap: {}", s.stop());
    }
    result
}

/// Full-width strips taken off the top of an area in turn, each cut to
/// what is left: how the main and the combined views stack their header,
/// bars, tables and status line.
pub(crate) struct Strips {
    area: ratatui::layout::Rect,
    y: u16,
}

impl Strips {
    pub(crate) fn new(area: ratatui::layout::Rect) -> Strips {
        Strips { area, y: area.y }
    }

    /// The next `h` rows, fewer at the bottom.
    pub(crate) fn take(&mut self, h: u16) -> ratatui::layout::Rect {
        let bottom = self.area.y + self.area.height;
        let r = ratatui::layout::Rect {
            y: self.y,
            height: h.min(bottom - self.y),
            ..self.area
        };
        self.y = (self.y + h).min(bottom);
        r
    }

    /// How both views begin: the header line and the three lines of bars,
    /// then a blank line.
    pub(crate) fn head(&mut self) -> (ratatui::layout::Rect, ratatui::layout::Rect) {
        let header = self.take(1);
        let bars = self.take(3);
        self.take(1);
        (header, bars)
    }

    /// The rows below the strips taken.
    pub(crate) fn left(&self) -> u16 {
        self.area.y + self.area.height - self.y
    }
}

/// The rows of a list that are on screen, with their index in the list:
/// `height` rows from row `offset` (see [`list::ListCursor`]).
pub(crate) fn on_screen<T>(
    rows: &[T],
    offset: usize,
    height: usize,
) -> impl Iterator<Item = (usize, &T)> {
    rows.iter().enumerate().skip(offset).take(height)
}
