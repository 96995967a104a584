//! `vmmap top`: every process's Private, WS, PSS and Swap with their growth
//! over the last interval (`+`) and since top started (`Σ`), refreshed
//! every delay. The samples come from the collection thread
//! ([`crate::collector::Request::Top`]); the growth is core's
//! ([`vmmap_core::top::Tracker`]). The keys are in the table
//! ([`crate::app::actions`], scope Top); the filter prompt takes its own
//! keys while it is open, as the Trace view's does.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use vmmap_core::collect::top::Select;
use vmmap_core::text::escape;
use vmmap_core::top::{self, Amount, Column, Field, Metric, Proc, Row, Tracker};

use crate::list::{ListCursor, TableSort};
use crate::settings::Units;

/// What `vmmap top` starts with.
#[derive(Debug)]
pub struct TopStart {
    /// Which processes.
    pub select: Select,
    /// The first sample, taken before the terminal was taken over (so that
    /// an empty selection is an error on the command line).
    pub first: Vec<Proc>,
    /// Time between refreshes.
    pub delay: Duration,
    /// Sort column.
    pub sort: Column,
    /// Reversed.
    pub reverse: bool,
    /// The filter.
    pub filter: String,
    /// Read PSS (smaps_rollup) too.
    pub pss: bool,
}

/// A field's width on screen, in cells (a space between two).
fn field_width(f: Field) -> u16 {
    match f {
        Field::Pid | Field::NsPid => 7,
        Field::User => 8,
        Field::Name => 15,
        Field::Figure(_) => 10,
        Field::Container => 23,
        Field::Command => 20,
    }
}

/// The fields in the order they give way when the terminal is narrow:
/// core's, but the command line comes last: the figures are what this view
/// is for, and the command takes what they leave.
fn by_importance(ns: bool, containers: bool, pss: bool) -> Vec<Field> {
    let mut v = Field::by_importance(ns, containers, pss, true);
    v.retain(|f| *f != Field::Command);
    v.push(Field::Command);
    v
}

/// The top view's state.
pub struct TopView {
    /// Which processes are sampled.
    pub select: Select,
    /// Whether PSS is read.
    pub pss: bool,
    tracker: Tracker,
    /// Every row of the last sample, sorted.
    rows: Vec<Row>,
    /// The rows the filter keeps (indices into `rows`).
    shown: Vec<usize>,
    /// Sort column and direction.
    pub sort: TableSort<Column>,
    /// The filter (`/`).
    pub filter: String,
    /// The filter prompt is open (typing edits the filter).
    pub editing: bool,
    /// Refreshes are paused.
    pub paused: bool,
    /// Time between refreshes.
    pub delay: Duration,
    /// When the next sample is due.
    pub due: Instant,
    /// The selected row (of the shown ones), followed by PID across
    /// refreshes, and the first row drawn.
    cursor: ListCursor,
    selected_pid: Option<(u32, u64)>,
    /// The table's rows on screen (for clicks and paging).
    pub body: Rect,
}

impl TopView {
    /// The view over its first sample.
    pub fn new(start: TopStart) -> TopView {
        let mut v = TopView {
            select: start.select,
            pss: start.pss,
            tracker: Tracker::new(),
            rows: Vec::new(),
            shown: Vec::new(),
            sort: TableSort {
                column: start.sort,
                reverse: start.reverse,
            },
            filter: start.filter,
            editing: false,
            paused: false,
            delay: start.delay,
            due: Instant::now() + start.delay,
            cursor: ListCursor::default(),
            selected_pid: None,
            body: Rect::default(),
        };
        v.take(start.first);
        v
    }

    /// Takes in a new sample.
    pub fn take(&mut self, procs: Vec<Proc>) {
        self.rows = self.tracker.update(procs);
        self.resort();
    }

    /// How many samples were taken.
    pub fn samples(&self) -> u64 {
        self.tracker.samples()
    }

    /// Sorts and filters again, keeping the selected process selected.
    pub fn resort(&mut self) {
        top::sort(&mut self.rows, self.sort.column, self.sort.reverse);
        self.shown = (0..self.rows.len())
            .filter(|&i| self.rows[i].proc.matches(&self.filter))
            .collect();
        if let Some(key) = self.selected_pid {
            if let Some(i) = self
                .shown
                .iter()
                .position(|&i| (self.rows[i].proc.pid, self.rows[i].proc.start_time) == key)
            {
                self.cursor.selected = i;
            }
        }
        self.cursor.selected = self.cursor.selected.min(self.shown.len().saturating_sub(1));
    }

    /// The selected row.
    pub fn selected_row(&self) -> Option<&Row> {
        self.shown.get(self.cursor.selected).map(|&i| &self.rows[i])
    }

    /// The rows shown, in order.
    pub fn shown_rows(&self) -> impl Iterator<Item = &Row> {
        self.shown.iter().map(|&i| &self.rows[i])
    }

    /// Whether a refresh is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        !self.paused && now >= self.due
    }

    /// Moves the selection by a key (Up, Down, a page, the ends).
    pub fn move_key(&mut self, code: KeyCode) {
        let page = self.body.height as usize;
        self.cursor.move_key(code, self.shown.len(), page);
        self.remember();
    }

    /// The first row on screen.
    pub fn offset(&self) -> usize {
        self.cursor.offset
    }

    /// Moves the selection by `delta` rows (the mouse wheel).
    pub fn move_by(&mut self, delta: isize) {
        self.cursor.move_by(delta, self.shown.len());
        self.remember();
    }

    fn remember(&mut self) {
        self.selected_pid = self.selected_row().map(|r| (r.proc.pid, r.proc.start_time));
    }

    /// Sorts by the next (or previous) column; sorting goes back to the top.
    pub fn step_sort(&mut self, back: bool) {
        let mut next = self.sort.column.step(back);
        // PSS columns are not shown without --pss.
        while !self.pss && next.metric() == Some(Metric::Pss) {
            next = next.step(back);
        }
        self.sort = TableSort::new(next);
        self.back_to_first_row();
    }

    /// Reverses the sort.
    pub fn flip(&mut self) {
        self.sort.flip();
        self.back_to_first_row();
    }

    fn back_to_first_row(&mut self) {
        self.selected_pid = None;
        self.cursor = ListCursor::default();
        self.resort();
    }

    /// A key while the filter prompt is open: typing edits the filter (it
    /// applies as it is typed), Enter keeps it, Esc clears it, Ctrl+U
    /// empties the line.
    pub fn on_filter_key(&mut self, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Enter => self.editing = false,
            KeyCode::Esc => {
                self.editing = false;
                self.filter.clear();
            }
            KeyCode::Char('u') if ctrl => self.filter.clear(),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !ctrl => self.filter.push(c),
            _ => return,
        }
        self.back_to_first_row();
    }

    /// The status line's text when no message is shown.
    pub fn status(&self) -> String {
        if self.editing {
            format!(
                " Filter: {}▏  (name, command, user, container or PID; Enter keeps, Esc clears)",
                self.filter
            )
        } else {
            " ?:help <>:sort r:reverse /:filter Space:pause Enter:open q:quit".to_string()
        }
    }

    /// Draws the view over `area` (the status line below is the app's).
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect, units: Units) {
        if area.height < 3 || area.width < 10 {
            return;
        }
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let what = match &self.select {
            Select::All => "every process".to_string(),
            Select::Cgroup(c) => format!("cgroup {}", escape(c)),
            Select::Container(n) => format!("container {}", escape(n)),
        };
        let state = if self.paused {
            "PAUSED".to_string()
        } else if self.samples() < 2 {
            "first sample: growth shows at the next refresh".to_string()
        } else {
            format!("every {}", secs(self.delay))
        };
        let mut title = vec![
            Span::styled("vmmap top", bold),
            Span::raw(format!(
                " — {what}: {} of {} processes, {state}",
                self.shown.len(),
                self.rows.len()
            )),
        ];
        if !self.filter.is_empty() {
            title.push(Span::raw(format!(", filter “{}”", escape(&self.filter))));
        }
        f.render_widget(
            Paragraph::new(Line::from(title)),
            Rect { height: 1, ..area },
        );
        let dir = self.sort.mark(self.sort.column);
        // The interval the growth is over, as it was (the first may be
        // longer than the delay, a loaded machine's too).
        let over = self
            .rows
            .iter()
            .map(|r| r.interval)
            .find(|&i| i > 0.0)
            .map_or_else(|| secs(self.delay), |i| format!("{i:.1}s"));
        let legend = format!(
            "Sort: {} {dir}   + growth in the last {over}, Σ since start",
            self.sort.column.label(),
        );
        f.render_widget(
            Paragraph::new(legend),
            Rect {
                y: area.y + 1,
                height: 1,
                ..area
            },
        );
        let ns = self.shown_rows().any(|r| r.proc.ns_pid.is_some());
        let containers = self.shown_rows().any(|r| r.proc.container.is_some());
        // The columns that fit, by importance, then in screen order.
        let mut cols = Vec::new();
        let mut used = 0u16;
        for c in by_importance(ns, containers, self.pss) {
            if used + field_width(c) < area.width {
                used += field_width(c) + 1;
                cols.push(c);
            }
        }
        cols.sort_by_key(|c| c.position());
        let spare = area.width.saturating_sub(used);
        let width = |c: Field| {
            if c == Field::Command {
                field_width(c) + spare
            } else {
                field_width(c)
            }
        };
        let mut head = String::new();
        for &c in &cols {
            let mut h = c.header();
            // The arrow goes on the side away from the figures, so that a
            // header stays over its column.
            if c.sort() == Some(self.sort.column) {
                h = if c.right() {
                    format!("{dir}{h}")
                } else {
                    format!("{h}{dir}")
                };
            }
            head.push_str(&cell(&h, width(c), c.right()));
            head.push(' ');
        }
        let table = Rect {
            y: area.y + 2,
            height: area.height - 2,
            ..area
        };
        f.render_widget(
            Paragraph::new(head).style(bold.add_modifier(Modifier::REVERSED)),
            Rect { height: 1, ..table },
        );
        self.body = Rect {
            y: table.y + 1,
            height: table.height - 1,
            ..table
        };
        let h = self.body.height as usize;
        self.cursor.scroll_into_view(h);
        if self.shown.is_empty() {
            let why = if self.rows.is_empty() {
                "No process is selected".to_string()
            } else {
                format!(
                    "No process matches “{}” (Esc clears it)",
                    escape(&self.filter)
                )
            };
            f.render_widget(
                Paragraph::new(why),
                Rect {
                    height: 1,
                    ..self.body
                },
            );
            return;
        }
        let lines: Vec<Line<'_>> = self
            .cursor
            .on_screen(&self.shown, h)
            .map(|(k, &i)| {
                let r = &self.rows[i];
                let mut text = String::new();
                for &c in &cols {
                    text.push_str(&cell(&value(r, c, units), width(c), c.right()));
                    text.push(' ');
                }
                let style = if k == self.cursor.selected {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                Line::styled(text, style)
            })
            .collect();
        f.render_widget(Paragraph::new(lines), self.body);
    }
}

/// `1s`, `0.5s`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// `text` in `width` cells: cut with `…` when longer, padded otherwise.
fn cell(text: &str, width: u16, right: bool) -> String {
    let w = width as usize;
    let n = text.chars().count();
    if n > w {
        let mut s: String = text.chars().take(w.saturating_sub(1)).collect();
        s.push('…');
        s
    } else if right {
        format!("{text:>w$}")
    } else {
        format!("{text:<w$}")
    }
}

/// A signed size in the chosen units: `+1.0M`, `-4K`, blank for zero.
fn signed(v: i64, units: Units) -> String {
    let s = units.format(v.unsigned_abs());
    match v {
        0 => String::new(),
        v if v > 0 => format!("+{s}"),
        _ => format!("-{s}"),
    }
}

fn value(r: &Row, c: Field, units: Units) -> String {
    let p = &r.proc;
    match c {
        Field::Pid => p.pid.to_string(),
        Field::NsPid => p.ns_pid.map_or_else(String::new, |n| n.to_string()),
        Field::User => escape(&p.user).into_owned(),
        Field::Name => escape(&p.name).into_owned(),
        Field::Container => p
            .container
            .as_ref()
            .map_or_else(String::new, |c| escape(&c.label()).into_owned()),
        Field::Command => escape(&p.cmdline).into_owned(),
        Field::Figure(c) => match c.amount(r) {
            Some(Amount::Size(v)) => units.format(v),
            Some(Amount::Change(v)) => signed(v, units),
            None => "n/a".into(),
        },
    }
}
