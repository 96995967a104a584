//! Drawing the screens and overlays.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use vmmap_core::figures::Column;
use vmmap_core::text::{is_unsafe, Escaped};

use super::modes::Mode;
use super::state::{App, Screen};
use crate::help;
use crate::picker::PickerTab;

impl App {
    /// Draws the current screen and overlays. Every view escapes the
    /// untrusted text it shows (vmmap_core::text); any cell that still
    /// holds a control character after them is blanked to U+FFFD, since
    /// crossterm would send it to the terminal as it is.
    pub fn draw(&mut self, f: &mut Frame<'_>) {
        self.draw_views(f);
        scrub(f.buffer_mut());
        if !self.settings.coloured() {
            uncolour(f.buffer_mut());
        }
    }

    pub(super) fn draw_views(&mut self, f: &mut Frame<'_>) {
        let area = f.area();
        if area.height == 0 || area.width == 0 {
            return;
        }
        let attach = self.attach_line();
        match (self.screen, self.main.as_mut()) {
            (Screen::Main, Some(m)) => {
                m.source = match (&self.file, self.from_file) {
                    (Some(path), true) => Some(format!(
                        "{} (snapshot {} of {})",
                        vmmap_core::text::escape(
                            &path
                                .file_name()
                                .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
                        ),
                        self.history_index + 1,
                        self.history.len()
                    )),
                    // Its snapshot is the one the combined figures were
                    // made of: when it was taken, not a collection time.
                    _ if self.from_combined && self.history.len() == 1 => {
                        Some("from the combined view".into())
                    }
                    _ => None,
                };
                let status = match (&self.mode, &self.message) {
                    (Mode::Find(q), _) => format!(" Find: {q}▏  (Enter searches, Esc cancels)"),
                    (Mode::Open(p), _) => format!(" Open file: {p}▏  (Enter opens, Esc cancels)"),
                    (Mode::Goto(a), _) => format!(" Go to address: {a}▏  (hex; Enter jumps, Esc cancels)"),
                    (Mode::ConfirmEmpty, _) => format!(" Empty the working set of {} (page out all it can; it slows down while it faults pages back)? y/n", m.snap.process.pid),
                    (Mode::MemSearch(q), _) => format!(" Search memory for: {q}▏  (text, re:REGEX or hex:de ad; Enter searches, Esc cancels)"),
                    (Mode::Save(_, p), _) => {
                        format!(" Save as: {p}▏  (.txt .json .csv{}; Enter saves, Esc cancels)", if matches!(self.mode, Mode::Save(false, _)) { " .vmmap" } else { "" })
                    }
                    (_, Some(msg)) => format!(" {}", Escaped(msg)),
                    (_, None) if attach.is_some() => {
                        format!(" {}  T:trace", attach.unwrap_or_default())
                    }
                    _ => " ?:help Tab:focus Enter:expand s:sort /:find f:free c:cols u:units F5:refresh q:quit"
                        .to_string(),
                };
                m.draw(f, area, &self.settings, &status);
            }
            (Screen::Combined, _) if self.combined_view.is_some() => {
                let Some(v) = self.combined_view.as_mut() else {
                    return;
                };
                let status = match &self.message {
                    Some(m) => format!(" {}", Escaped(m)),
                    None => {
                        " ?:help Enter:open the process s:sort r:reverse F5:again Esc:picker q:quit"
                            .to_string()
                    }
                };
                v.draw(f, area, &self.settings, &status);
            }
            (Screen::Top, _) if self.top.is_some() => {
                let Some(t) = self.top.as_mut() else { return };
                let h = area.height.saturating_sub(1);
                t.draw(f, Rect { height: h, ..area }, self.settings.units);
                let status = match &self.message {
                    Some(m) if !t.editing => format!(" {}", Escaped(m)),
                    _ => t.status(),
                };
                status_line(f, area, status);
            }
            _ => {
                let h = area.height.saturating_sub(1);
                self.picker
                    .draw(f, Rect { height: h, ..area }, self.settings.units);
                let status = match (&self.loading, &self.message, self.picker.tab) {
                    (_, Some(m), _) => format!(" {}", Escaped(m)),
                    (_, None, PickerTab::Launch) => {
                        " F1:help  Tab/Up/Down:field  Space:toggle  Enter:launch  F2/Esc:processes"
                            .to_string()
                    }
                    _ if self.picker.marked.len() > 1 => format!(
                        " F1:help  Enter:combine the {} marked  Ins:mark  Ctrl+U:clear filter  Esc:quit",
                        self.picker.marked.len()
                    ),
                    _ => " F1:help  Enter:open  Ins:mark  Tab:sort  Ctrl+U:clear filter  F2:launch  F5:refresh  Esc:quit"
                        .to_string(),
                };
                status_line(f, area, status);
            }
        }
        if matches!(self.mode, Mode::Trace)
            || (matches!(self.mode, Mode::Help(_)) && self.help_over_trace)
        {
            if let Some(t) = self.trace.as_mut() {
                t.draw(f, area, self.settings.units);
            }
        }
        match self.mode {
            Mode::Help(s) => self.mode = Mode::Help(help::draw(f, inset(area, 2, 1), s)),
            Mode::Columns(sel) => self.draw_columns(f, area, sel),
            Mode::MemoryList => {
                if let Some(l) = self.memory_list.as_mut() {
                    l.draw(f, inset(area, 2, 1));
                }
            }
            Mode::Map => {
                if let (Some(v), Some(m)) = (self.map.as_mut(), self.main.as_ref()) {
                    v.draw(f, area, &m.snap, &self.settings);
                }
            }
            Mode::MemSearch(ref q) => {
                if let Some(l) = self.memory_list.as_mut() {
                    l.draw(f, inset(area, 2, 1));
                    let y = area.y + area.height.saturating_sub(1);
                    f.render_widget(
                        Paragraph::new(format!(" Search memory for: {q}▏  (text, re:REGEX or hex:de ad; Enter searches, Esc cancels)"))
                            .style(Style::default().add_modifier(Modifier::REVERSED)),
                        Rect { y, height: 1, ..area },
                    );
                }
            }
            Mode::Timeline(st) => {
                // Two thirds of the screen: the key, the axes and the
                // figures take five rows of it.
                let h = (area.height * 2 / 3).max(10).min(area.height);
                let r = Rect {
                    x: area.x,
                    y: area.y + area.height - h,
                    width: area.width,
                    height: h,
                };
                crate::timeline_view::draw(f, r, &self.history_totals, st, &self.settings);
            }
            Mode::Combined(s) => {
                let s = draw_text(f, area, &self.combined_title, &self.combined, s);
                self.mode = Mode::Combined(s);
            }
            Mode::Diff(s) => {
                let title = format!(
                    " Changes from snapshot {} to {} — Up/Down scroll, w saves, Esc closes ",
                    self.diff_pair.0 + 1,
                    self.diff_pair.1 + 1
                );
                let s = draw_text(f, area, &title, &self.diff_text, s);
                self.mode = Mode::Diff(s);
            }
            _ => {}
        }
    }

    pub(super) fn draw_columns(&self, f: &mut Frame<'_>, area: Rect, sel: usize) {
        let w = 44.min(area.width);
        let h = (Column::ALL.len() as u16 + 2).min(area.height);
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        let visible = self.settings.visible_columns();
        let items: Vec<ListItem<'_>> = Column::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mark = if visible.contains(c) { "[x]" } else { "[ ]" };
                let style = if i == sel {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                ListItem::new(format!("{mark} {}", c.header())).style(style)
            })
            .collect();
        f.render_widget(Clear, r);
        // A stateful list scrolls to keep the selection visible.
        let mut state = ListState::default().with_selected(Some(sel));
        let list = List::new(items).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Columns: Space toggles, Esc done "),
        );
        f.render_stateful_widget(list, r, &mut state);
    }
}

/// Draws a text overlay (the changes, the processes sharing a region's pages) scrolled by
/// `s` lines but never past the last page; returns the scroll used.
/// The reversed line at the foot of `area`: the screen's keys or its
/// message (the screen itself is drawn above it).
fn status_line(f: &mut Frame<'_>, area: Rect, text: String) {
    let line = Rect {
        y: area.y + area.height.saturating_sub(1),
        height: area.height.min(1),
        ..area
    };
    f.render_widget(
        Paragraph::new(text).style(Style::default().add_modifier(Modifier::REVERSED)),
        line,
    );
}

fn draw_text(f: &mut Frame<'_>, area: Rect, title: &str, text: &[String], s: u16) -> u16 {
    let r = inset(area, 2, 1);
    f.render_widget(Clear, r);
    let block = Block::default().borders(Borders::ALL).title(title);
    let max = (text.len() as u16).saturating_sub(r.height.saturating_sub(2));
    let s = s.min(max);
    let lines: Vec<ratatui::text::Line<'_>> = text
        .iter()
        .map(|l| ratatui::text::Line::raw(l.as_str()))
        .collect();
    f.render_widget(Paragraph::new(lines).block(block).scroll((s, 0)), r);
    s
}

pub(super) fn inset(a: Rect, dx: u16, dy: u16) -> Rect {
    Rect {
        x: a.x + dx.min(a.width / 4),
        y: a.y + dy.min(a.height / 4),
        width: a.width.saturating_sub(2 * dx.min(a.width / 4)),
        height: a.height.saturating_sub(2 * dy.min(a.height / 4)),
    }
}

/// Without colour (`NO_COLOR`, `TERM=dumb`, `--color never`), resets
/// every cell's colours after drawing: the types already show as their
/// characters, and the few fixed colours of emphasis (the picker's cursor
/// and denied rows, the map's gaps) must not reach a terminal that asked
/// for none. Bold, reverse and underline stay.
pub(super) fn uncolour(buf: &mut ratatui::buffer::Buffer) {
    use ratatui::style::Color;
    for cell in &mut buf.content {
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
        cell.underline_color = Color::Reset;
    }
}

/// Replaces every cell whose symbol holds a character a terminal would act
/// on (see [`vmmap_core::text::is_unsafe`]) with U+FFFD: the last guard
/// before crossterm, for text a view forgot to escape.
pub(super) fn scrub(buf: &mut ratatui::buffer::Buffer) {
    for cell in &mut buf.content {
        if cell.symbol().chars().any(is_unsafe) {
            cell.set_symbol("\u{fffd}");
        }
    }
}
