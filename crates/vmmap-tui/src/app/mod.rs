//! The application: screens, input modes, key and mouse handling, and the
//! event loop that ties the collection thread to drawing.
//!
//! - `state`: the [`App`] and the operations on its data;
//! - `modes`: the input modes (overlays and prompts) and their keys;
//! - [`actions`]: the table of the keys of the picker, the Launch tab and
//!   the main view, which the key handling and the help are drawn from;
//! - `draw`: drawing the screens and overlays.

pub mod actions;
mod draw;
mod modes;
mod state;

use std::time::Duration;

use ratatui::crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::layout::Rect;

use crate::clipboard;
use crate::collector::{Collector, Request};
use crate::main_view::Focus;
use crate::picker::PickerTab;
pub use modes::Mode;
pub use state::{App, Screen, HISTORY_LIMIT};

impl App {
    /// Handles one input event; returns requests for the collector.
    pub fn on_event(&mut self, ev: Event) -> Vec<Request> {
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.on_key(k),
            Event::Mouse(m) => {
                match m.kind {
                    MouseEventKind::Down(MouseButton::Left) => {
                        return self.on_click(m.column, m.row)
                    }
                    MouseEventKind::ScrollDown => self.scroll(3),
                    MouseEventKind::ScrollUp => self.scroll(-3),
                    _ => {}
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn scroll(&mut self, delta: isize) {
        if self.mode == Mode::Trace {
            if let Some(t) = self.trace.as_mut() {
                let code = if delta > 0 {
                    KeyCode::Down
                } else {
                    KeyCode::Up
                };
                for _ in 0..delta.unsigned_abs() {
                    t.on_key(KeyEvent::new(code, KeyModifiers::NONE));
                }
            }
            return;
        }
        match self.screen {
            Screen::Picker => {
                let p = &mut self.picker;
                p.cursor.move_by(delta, p.rows.len());
            }
            Screen::Main => {
                if let Some(m) = self.main.as_mut() {
                    m.details.move_by(delta);
                }
            }
            Screen::Top => {
                if let Some(t) = self.top.as_mut() {
                    t.move_by(delta);
                }
            }
            Screen::Combined => {
                if let Some(v) = self.combined_view.as_mut() {
                    v.move_by(delta);
                }
            }
        }
    }

    pub(super) fn on_click(&mut self, x: u16, y: u16) -> Vec<Request> {
        if self.mode == Mode::Trace {
            // The tables under the full-screen view are hidden.
            return Vec::new();
        }
        let double = self.last_click == Some((x, y));
        self.last_click = Some((x, y));
        match self.screen {
            Screen::Picker if self.picker.tab == PickerTab::Launch => {}
            Screen::Combined => {
                let Some(v) = self.combined_view.as_mut() else {
                    return Vec::new();
                };
                match hit(
                    x,
                    y,
                    v.header_area,
                    v.body_area,
                    v.cursor.offset,
                    v.rows.len(),
                ) {
                    Hit::Header => {
                        if let Some(c) = column_at(&v.cols, x) {
                            v.sort_by(c);
                        }
                    }
                    Hit::Row(i) => {
                        if v.cursor.click(i) && double {
                            self.open_combined_selected();
                        }
                    }
                    Hit::Elsewhere => {}
                }
            }
            Screen::Top => {
                let Some(t) = self.top.as_mut() else {
                    return Vec::new();
                };
                if inside(t.body, x, y) {
                    let before = t.selected_row().map(|r| r.proc.pid);
                    t.move_by(isize::MIN / 2);
                    t.move_by((y - t.body.y) as isize + t.offset() as isize);
                    if double && before == t.selected_row().map(|r| r.proc.pid) {
                        return self.open_top_selected();
                    }
                }
            }
            Screen::Picker => {
                let p = &mut self.picker;
                match hit(
                    x,
                    y,
                    p.header_area,
                    p.body_area,
                    p.cursor.offset,
                    p.rows.len(),
                ) {
                    Hit::Header => {
                        if let Some(c) = p.column_at(x) {
                            p.sort_by(c);
                        }
                    }
                    Hit::Row(i) => {
                        if p.cursor.click(i) && double {
                            return self.open_selected();
                        }
                    }
                    Hit::Elsewhere => {}
                }
            }
            Screen::Main => {
                let Some(m) = self.main.as_mut() else {
                    return Vec::new();
                };
                if inside(m.areas.summary_header, x, y) {
                    if let Some(c) = column_at(&m.areas.summary_cols, x) {
                        m.sort_summary(c);
                    }
                } else if inside(m.areas.summary_body, x, y) {
                    m.focus = Focus::Summary;
                    let i = (y - m.areas.summary_body.y) as usize;
                    if i < m.summary_rows.len() {
                        m.select_summary(i);
                    }
                } else {
                    let d = &mut m.details;
                    let (header, body) = (m.areas.details_header, m.areas.details_body);
                    match hit(x, y, header, body, d.cursor.offset, d.rows.len()) {
                        Hit::Header => {
                            if let Some(k) = column_at(&m.areas.details_cols, x) {
                                m.sort_details(k);
                            }
                        }
                        Hit::Row(i) => {
                            m.focus = Focus::Details;
                            if d.cursor.click(i) && double {
                                d.set_expanded(&m.snap, &m.data, None);
                            }
                        }
                        Hit::Elsewhere if inside(body, x, y) => m.focus = Focus::Details,
                        Hit::Elsewhere => {}
                    }
                }
            }
        }
        Vec::new()
    }
}

/// Whether the point is in `r`.
fn inside(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
}

/// Where a click landed on a table with a header.
enum Hit {
    /// On the header: sort by the column under it.
    Header,
    /// On this row (an index into the table's rows).
    Row(usize),
    /// Below the last row, or outside the table.
    Elsewhere,
}

/// Where `(x, y)` is on a table whose header is drawn in `header` and whose
/// `rows` rows are drawn in `body` from row `offset` on. One rule for every
/// table that takes clicks, so that they answer the mouse alike: a click
/// on a row selects it, a second click on the selected row opens it.
fn hit(x: u16, y: u16, header: Rect, body: Rect, offset: usize, rows: usize) -> Hit {
    if inside(header, x, y) {
        Hit::Header
    } else if inside(body, x, y) {
        let i = offset + (y - body.y) as usize;
        if i < rows {
            Hit::Row(i)
        } else {
            Hit::Elsewhere
        }
    } else {
        Hit::Elsewhere
    }
}

/// The column of a header drawn as `(x, width, column)` spans that holds
/// the point `x`.
fn column_at<T: Copy>(cols: &[(u16, u16, T)], x: u16) -> Option<T> {
    cols.iter()
        .find(|(cx, w, _)| x >= *cx && x < cx + w)
        .map(|&(_, _, c)| c)
}

/// How often the picker's process list is read again while shown.
const PICKER_REFRESH: Duration = Duration::from_secs(2);

/// Runs the event loop until the user quits or a stop signal arrives.
pub fn run_loop(
    term: &mut crate::terminal::Term,
    app: &mut App,
    collector: &mut Collector,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    // The process list refreshes itself while it is shown, as top's does
    // (it reads what `vmmap ps` reads: cheap).
    let mut list_due = std::time::Instant::now() + PICKER_REFRESH;
    loop {
        while let Ok(r) = collector.rx.try_recv() {
            collector.pending = collector.pending.saturating_sub(1);
            app.on_response(r);
        }
        let searching = app.poll_search() | app.poll_trace() | app.poll_owners();
        app.poll_traces();
        app.poll_attaches();
        term.draw(|f| app.draw(f))?;
        if let Some(text) = app.clipboard.take() {
            let out = term.backend_mut();
            if let Err(e) = clipboard::osc52(out, &text) {
                app.message = Some(format!("Copy failed: {e}"));
            }
        }
        if app.quit || crate::terminal::stopped(stop) {
            return Ok(());
        }
        let now = std::time::Instant::now();
        if now >= list_due {
            list_due = now + PICKER_REFRESH;
            if app.screen == Screen::Picker
                && app.picker.tab == PickerTab::Processes
                && app.mode == Mode::Normal
                && collector.pending == 0
            {
                collector.request(Request::Processes);
            }
        }
        if let Some(t) = app.top.as_mut().filter(|_| app.screen == Screen::Top) {
            let now = std::time::Instant::now();
            if t.is_due(now) && collector.pending == 0 {
                collector.request(Request::Top(t.select.clone(), t.pss));
                t.due = now + t.delay;
            }
        }
        if let (Some((every, due)), Some(m)) = (app.auto, app.main.as_ref()) {
            if std::time::Instant::now() >= due && collector.pending == 0 {
                collector.request(Request::Snapshot(m.snap.process.pid));
                app.auto = Some((every, std::time::Instant::now() + every));
            }
        }
        // Wake often while collection runs, to show its result at once.
        let top_due = app
            .top
            .as_ref()
            .filter(|t| app.screen == Screen::Top && !t.paused)
            .map(|t| t.due);
        let wait = match app.auto.map(|(_, due)| due).or(top_due) {
            _ if collector.pending > 0 || searching => Duration::from_millis(20),
            Some(due) => due
                .saturating_duration_since(std::time::Instant::now())
                .clamp(Duration::from_millis(10), Duration::from_millis(250)),
            None => Duration::from_millis(250),
        };
        if event::poll(wait)? {
            let ev = event::read()?;
            if matches!(ev, Event::Key(_)) && app.mode == Mode::Normal {
                app.message = None;
            }
            for req in app.on_event(ev) {
                collector.request(req);
            }
        }
    }
}
