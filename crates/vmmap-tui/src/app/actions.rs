//! The keys of the picker, the Launch tab and the main view.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use vmmap_core::figures::Column;

use super::modes::{edit_line, Mode};
use super::state::{save_note, table_text, App, Screen};
use crate::clipboard;
use crate::collector::Request;
use crate::details::SortKey;
use crate::launch_form::Field;
use crate::main_view::{Focus, MainView};
use crate::picker::{PickColumn, Picker, PickerTab};

impl App {
    pub(super) fn on_picker_key(&mut self, k: KeyEvent, ctrl: bool) -> Vec<Request> {
        if self.picker.tab == PickerTab::Launch {
            return self.on_launch_key(k, ctrl);
        }
        let p = &mut self.picker;
        let page = p.body_area.height.max(1) as isize;
        let mv = |p: &mut Picker, d: isize| {
            let last = p.rows.len().saturating_sub(1) as isize;
            p.selected = (p.selected as isize + d).clamp(0, last.max(0)) as usize;
        };
        match k.code {
            KeyCode::Char('r') if ctrl => return vec![Request::Processes],
            KeyCode::F(5) => return vec![Request::Processes],
            KeyCode::F(2) => p.toggle_tab(),
            KeyCode::Char(c) if !ctrl && c != ' ' => {
                p.filter.push(c);
                p.refilter(p.selected_pid());
            }
            KeyCode::Backspace => {
                p.filter.pop();
                p.refilter(p.selected_pid());
            }
            KeyCode::Esc if !p.filter.is_empty() => {
                p.filter.clear();
                p.refilter(p.selected_pid());
            }
            KeyCode::Esc if self.main.is_some() => self.screen = Screen::Main,
            KeyCode::Esc => self.quit = true,
            KeyCode::Down => mv(p, 1),
            KeyCode::Up => mv(p, -1),
            KeyCode::PageDown => mv(p, page),
            KeyCode::PageUp => mv(p, -page),
            KeyCode::Home => p.selected = 0,
            KeyCode::End => p.selected = p.rows.len().saturating_sub(1),
            KeyCode::Tab => {
                let i = PickColumn::ALL
                    .iter()
                    .position(|c| *c == p.sort)
                    .unwrap_or(0);
                p.sort = PickColumn::ALL[(i + 1) % PickColumn::ALL.len()];
                p.reverse = false;
                p.refilter(p.selected_pid());
            }
            KeyCode::BackTab => {
                p.reverse = !p.reverse;
                p.refilter(p.selected_pid());
            }
            // Space marks processes for a combined view (a filter has no
            // use for spaces: names and PIDs have none).
            KeyCode::Char(' ') => p.toggle_mark(),
            KeyCode::Enter if p.marked.len() > 1 => {
                let pids = p.marked.clone();
                self.message = Some(format!("Combining {} processes…", pids.len()));
                return vec![Request::Combined(pids)];
            }
            KeyCode::Enter => return self.open_selected(),
            _ => {}
        }
        Vec::new()
    }

    /// Keys of the Launch tab: Tab/Down and Shift+Tab/Up move between the
    /// fields, Space toggles "Snapshot only", Enter launches, Esc or F2
    /// goes back to the process list.
    pub(super) fn on_launch_key(&mut self, k: KeyEvent, ctrl: bool) -> Vec<Request> {
        let form = &mut self.picker.launch;
        match k.code {
            KeyCode::F(2) | KeyCode::Esc => self.picker.tab = PickerTab::Processes,
            KeyCode::Tab | KeyCode::Down => form.move_field(false),
            KeyCode::BackTab | KeyCode::Up => form.move_field(true),
            KeyCode::Enter => return self.launch(),
            KeyCode::Char(' ') if form.field == Field::SnapshotOnly => {
                form.snapshot_only = !form.snapshot_only;
                form.error = None;
            }
            KeyCode::Char('u') if ctrl => {
                if let Some(t) = form.text_mut(form.field) {
                    t.clear();
                }
            }
            code => {
                if let Some(t) = form.text_mut(form.field) {
                    // Esc and Enter were handled above.
                    let _ = edit_line(t, code, ctrl);
                }
            }
        }
        Vec::new()
    }

    pub(super) fn on_main_key(&mut self, k: KeyEvent, ctrl: bool) -> Vec<Request> {
        let Some(m) = self.main.as_mut() else {
            self.screen = Screen::Picker;
            return Vec::new();
        };
        let page = m.areas.details_body.height.max(1) as isize;
        match k.code {
            KeyCode::Esc if self.search_job.is_some() => {
                if let Some(j) = self.search_job.as_ref() {
                    j.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('p') if ctrl => {
                self.screen = Screen::Picker;
                return vec![Request::Processes];
            }
            KeyCode::Char('f') if ctrl => self.mode = Mode::Find(String::new()),
            KeyCode::Char('/') => self.mode = Mode::Find(String::new()),
            KeyCode::Char('g') => self.mode = Mode::Goto(String::new()),
            KeyCode::Char('t') if ctrl => self.open_strings(),
            KeyCode::Char('T') => self.open_trace(),
            KeyCode::Char('F') => self.mode = Mode::MemSearch(String::new()),
            KeyCode::Char('H') => self.open_shared_with(),
            KeyCode::Char('m') => {
                self.map = Some(crate::map_view::MapView::new(&m.snap));
                self.mode = Mode::Map;
            }
            KeyCode::Char('W') if self.from_file => {
                self.message = Some("Emptying the working set needs a live process".into());
            }
            KeyCode::Char('W') => self.mode = Mode::ConfirmEmpty,
            KeyCode::Char('n') => self.find_next(false),
            KeyCode::Char('N') => self.find_next(true),
            KeyCode::Char('?') => self.mode = Mode::Help(0),
            KeyCode::Char('[') => {
                if self.history_index > 0 {
                    let i = self.history_index - 1;
                    self.show_history(i);
                } else {
                    self.message = Some(format!(
                        "This is the first snapshot of {}",
                        self.history.len()
                    ));
                }
            }
            KeyCode::Char(']') => {
                if self.history_index + 1 < self.history.len() {
                    let i = self.history_index + 1;
                    self.show_history(i);
                } else {
                    self.message = Some(format!(
                        "This is the last snapshot of {}; F5 takes a new one",
                        self.history.len()
                    ));
                }
            }
            KeyCode::Char('d') => self.open_diff(),
            KeyCode::Char('D') => {
                if m.compare.take().is_some() {
                    self.message = Some("Compare mode off".into());
                } else if self.history_index == 0 {
                    self.message = Some(
                        "No earlier snapshot to compare with: press F5 to take another".into(),
                    );
                } else {
                    let base = self.history_index - 1;
                    m.compare = Some(crate::main_view::Compare::new(
                        &self.history[base],
                        &m.snap,
                        base + 1,
                    ));
                    self.message = Some(format!(
                        "Compare mode: the Summary shows changes since snapshot {}, the Details mark changed regions (D turns it off)",
                        base + 1
                    ));
                }
            }
            KeyCode::Char('t') => {
                self.mode = Mode::Timeline(crate::timeline_view::TimelineState {
                    selected: self.history_index,
                    mark: None,
                    committed: false,
                })
            }
            KeyCode::Char('s') if ctrl => self.save_history(),
            KeyCode::Char('o') if ctrl => self.mode = Mode::Open(String::new()),
            KeyCode::Char(' ') | KeyCode::Null if ctrl || k.code == KeyCode::Null => {
                if self.from_file {
                    self.message = Some("Automatic snapshots need a live process".into());
                } else if self.auto.take().is_some() {
                    self.message = Some("Automatic snapshots paused".into());
                } else {
                    let every = Duration::from_secs(1);
                    self.auto = Some((every, std::time::Instant::now() + every));
                    self.message = Some("A snapshot every second (Ctrl+Space pauses)".into());
                }
            }
            KeyCode::F(5) if self.from_file => {
                self.message = Some("This snapshot was loaded from a file; F5 takes new snapshots of live processes only (Ctrl+P to pick one)".into());
            }
            KeyCode::F(5) => {
                let pid = m.snap.process.pid;
                self.loading = Some(pid);
                self.message = Some(format!("Collecting {pid}…"));
                return vec![Request::Snapshot(pid)];
            }
            KeyCode::Tab | KeyCode::BackTab => {
                m.focus = if m.focus == Focus::Summary {
                    Focus::Details
                } else {
                    Focus::Summary
                }
            }
            KeyCode::Char('f') => m.toggle_free(),
            KeyCode::Char('E') => {
                m.details.set_all_expanded(&m.snap, &m.data, true);
            }
            KeyCode::Char('C') => {
                m.details.set_all_expanded(&m.snap, &m.data, false);
            }
            KeyCode::Char('s') | KeyCode::Char('S') => {
                let back = k.code == KeyCode::Char('S');
                let cols = self.settings.visible_columns();
                match m.focus {
                    Focus::Summary => {
                        let keys: Vec<Option<Column>> = std::iter::once(None)
                            .chain(cols.into_iter().map(Some))
                            .collect();
                        let i = keys.iter().position(|c| *c == m.summary_sort).unwrap_or(0);
                        let next = keys[(i + if back { keys.len() - 1 } else { 1 }) % keys.len()];
                        m.summary_sort = next;
                        m.summary_reverse = false;
                        m.resort_summary();
                    }
                    Focus::Details => {
                        let mut keys = vec![SortKey::Address, SortKey::Type];
                        keys.extend(
                            cols.into_iter()
                                .filter(|c| !c.summary_only())
                                .map(SortKey::Figure),
                        );
                        keys.extend([SortKey::Protection, SortKey::Details]);
                        let i = keys.iter().position(|c| *c == m.details.sort).unwrap_or(0);
                        m.details.sort =
                            keys[(i + if back { keys.len() - 1 } else { 1 }) % keys.len()];
                        m.details.reverse = false;
                        m.details.rebuild(&m.snap, &m.data);
                    }
                }
            }
            KeyCode::Char('r') => match m.focus {
                Focus::Summary => {
                    m.summary_reverse = !m.summary_reverse;
                    m.resort_summary();
                }
                Focus::Details => {
                    m.details.reverse = !m.details.reverse;
                    m.details.rebuild(&m.snap, &m.data);
                }
            },
            KeyCode::Char('y') => {
                let addr = m
                    .details
                    .rows
                    .get(m.details.selected)
                    .map(|&r| crate::details::row_start(&m.snap, &m.data, r));
                if let Some(a) = addr {
                    self.clipboard = Some(format!("{a:#x}"));
                    self.message = Some(format!("Copied {a:#x} (OSC 52)"));
                }
            }
            KeyCode::Char('Y') => {
                let text = table_text(m);
                if text.len() <= clipboard::OSC52_LIMIT {
                    self.message = Some(format!(
                        "Copied the Details table, {} rows (OSC 52)",
                        m.details.rows.len()
                    ));
                    self.clipboard = Some(text);
                } else {
                    self.message = Some(match clipboard::save(&text, m.snap.process.pid) {
                        Ok(p) => format!(
                            "Table too large for the clipboard; saved to {}",
                            p.display()
                        ),
                        Err(e) => {
                            format!("Table too large for the clipboard, and saving failed: {e}")
                        }
                    });
                }
            }
            KeyCode::Char('w') => {
                self.mode = Mode::Save(false, format!("vmmap-{}.txt", m.snap.process.pid));
            }
            KeyCode::Char('c') => self.mode = Mode::Columns(0),
            KeyCode::Char('u') => {
                self.settings.units = self.settings.units.next();
                self.message = Some(format!(
                    "Units: {}{}",
                    self.settings.units.name(),
                    save_note(&self.settings)
                ));
            }
            code => move_key(m, code, page),
        }
        Vec::new()
    }
}

pub(super) fn move_key(m: &mut MainView, code: KeyCode, page: isize) {
    match m.focus {
        Focus::Summary => {
            let last = m.summary_rows.len() - 1;
            let i = match code {
                KeyCode::Down | KeyCode::Char('j') => (m.summary_selected + 1).min(last),
                KeyCode::Up | KeyCode::Char('k') => m.summary_selected.saturating_sub(1),
                KeyCode::Home => 0,
                KeyCode::End => last,
                KeyCode::Enter => {
                    m.focus = Focus::Details;
                    m.summary_selected
                }
                _ => return,
            };
            if i != m.summary_selected {
                m.select_summary(i);
            }
        }
        Focus::Details => match code {
            KeyCode::Down | KeyCode::Char('j') => m.details.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => m.details.move_by(-1),
            KeyCode::PageDown => m.details.move_by(page),
            KeyCode::PageUp => m.details.move_by(-page),
            KeyCode::Home => m.details.selected = 0,
            KeyCode::End => m.details.selected = m.details.rows.len().saturating_sub(1),
            KeyCode::Enter => m.details.set_expanded(&m.snap, &m.data, None),
            KeyCode::Char('+') | KeyCode::Right => {
                m.details.set_expanded(&m.snap, &m.data, Some(true))
            }
            KeyCode::Char('-') | KeyCode::Left => {
                m.details.set_expanded(&m.snap, &m.data, Some(false))
            }
            _ => {}
        },
    }
}
