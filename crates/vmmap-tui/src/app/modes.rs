//! Input modes: the overlays and prompts that take the keys, and their
//! handlers.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vmmap_core::figures::Column;

use super::state::{save_note, App};
use crate::collector::Request;

/// An overlay or prompt that takes the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plain navigation.
    Normal,
    /// Typing a search.
    Find(String),
    /// The help screen, scrolled.
    Help(u16),
    /// The column chooser, with its selection.
    Columns(usize),
    /// The changes from the previous snapshot of the history, scrolled.
    Diff(u16),
    /// Typing the path of a file to open.
    Open(String),
    /// Typing the file to save the shown snapshot (`false`) or the changes
    /// (`true`) to; the extension picks the format.
    Save(bool, String),
    /// The timeline of the history.
    Timeline(crate::timeline_view::TimelineState),
    /// Typing an address to jump to.
    Goto(String),
    /// The Strings view or memory search results ([`App::memory_list`]).
    MemoryList,
    /// Typing what to search the process's memory for.
    MemSearch(String),
    /// The fragmentation map ([`App::map`]).
    Map,
    /// Asking whether to empty the process's working set.
    ConfirmEmpty,
    /// The processes mapping the selected region's pages (`H`,
    /// `App::combined`), scrolled.
    Combined(u16),
    /// The Trace view (`App::trace`).
    Trace,
}

impl App {
    /// A key: the keys that work everywhere (Ctrl+C), then the mode's, then
    /// the screen's ([`super::actions::TABLE`]).
    pub(super) fn on_key(&mut self, k: KeyEvent) -> Vec<Request> {
        if let Some(a) = super::actions::lookup_any_mode(&k) {
            return self.perform(a, k);
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match self.mode.clone() {
            Mode::Help(s) => {
                self.mode = match k.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::F(1) => {
                        if std::mem::take(&mut self.help_over_trace) && self.trace.is_some() {
                            Mode::Trace
                        } else {
                            Mode::Normal
                        }
                    }
                    code => Mode::Help(scrolled(s, code)),
                };
                return Vec::new();
            }
            Mode::Find(q) => {
                if let Some(q) = self.prompt(q, k, Mode::Find) {
                    self.last_find = q;
                    self.find_next(false);
                }
                return Vec::new();
            }
            Mode::Columns(sel) => {
                self.on_columns_key(k, sel);
                return Vec::new();
            }
            Mode::Combined(s) => {
                self.mode = match k.code {
                    KeyCode::Esc | KeyCode::Char('q') => Mode::Normal,
                    code => Mode::Combined(scrolled(s, code)),
                };
                return Vec::new();
            }
            Mode::Diff(s) => {
                self.mode = match k.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('d') => Mode::Normal,
                    KeyCode::Char('w') => {
                        let pid = self.main.as_ref().map_or(0, |m| m.snap.process.pid);
                        Mode::Save(true, format!("vmmap-{pid}-changes.txt"))
                    }
                    code => Mode::Diff(scrolled(s, code)),
                };
                return Vec::new();
            }
            Mode::Timeline(mut st) => {
                let n = self.history.len();
                match k.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('t') => {
                        self.mode = Mode::Normal
                    }
                    KeyCode::Left | KeyCode::Char('h') => {
                        st.selected = st.selected.saturating_sub(1)
                    }
                    KeyCode::Right | KeyCode::Char('l') => {
                        st.selected = (st.selected + 1).min(n.saturating_sub(1))
                    }
                    KeyCode::Home => st.selected = 0,
                    KeyCode::End => st.selected = n.saturating_sub(1),
                    KeyCode::Char('m') => {
                        st.mark = if st.mark == Some(st.selected) {
                            None
                        } else {
                            Some(st.selected)
                        }
                    }
                    KeyCode::Char('c') => st.committed = !st.committed,
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        self.show_history(st.selected);
                        return Vec::new();
                    }
                    KeyCode::Char('d') => {
                        let from = st.mark.unwrap_or(st.selected.saturating_sub(1));
                        let (a, b) = (from.min(st.selected), from.max(st.selected));
                        if a == b {
                            self.message = Some("Mark another snapshot with m to compare".into());
                        } else {
                            self.show_history(b);
                            self.open_diff_between(a, b);
                            return Vec::new();
                        }
                    }
                    _ => {}
                }
                if matches!(self.mode, Mode::Timeline(_)) {
                    self.mode = Mode::Timeline(st);
                }
                return Vec::new();
            }
            Mode::Save(changes, path) => {
                if let Some(path) = self.prompt(path, k, |p| Mode::Save(changes, p)) {
                    self.message = Some(match self.save_as(changes, path.trim()) {
                        Ok(()) => format!("Saved to {}", path.trim()),
                        Err(e) => format!("Cannot save {}: {e}", path.trim()),
                    });
                }
                return Vec::new();
            }
            Mode::MemoryList => {
                self.on_memory_list_key(k, ctrl);
                return Vec::new();
            }
            Mode::Map => {
                self.on_map_key(k);
                return Vec::new();
            }
            Mode::ConfirmEmpty => {
                self.mode = Mode::Normal;
                if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    return self.empty_working_set();
                }
                self.message = Some("Working set left alone".into());
                return Vec::new();
            }
            Mode::MemSearch(mut text) => {
                match edit_line(&mut text, k.code, ctrl) {
                    Edit::Cancel => {
                        self.mode = if self.memory_list.is_some() {
                            Mode::MemoryList
                        } else {
                            Mode::Normal
                        }
                    }
                    Edit::Done => self.search_memory(&text),
                    Edit::Typing => self.mode = Mode::MemSearch(text),
                }
                return Vec::new();
            }
            Mode::Goto(text) => {
                if let Some(text) = self.prompt(text, k, Mode::Goto) {
                    self.message = Some(
                        match (vmmap_core::lookup::parse_address(&text), self.main.as_mut()) {
                            (Some(a), Some(m)) => m.goto_address(a),
                            (None, _) => format!("{text:?} is not a hex address"),
                            (_, None) => "No process is open".into(),
                        },
                    );
                }
                return Vec::new();
            }
            Mode::Open(path) => {
                if let Some(path) = self.prompt(path, k, Mode::Open) {
                    self.open_file(&path);
                }
                return Vec::new();
            }
            Mode::Trace => {
                use crate::trace_view::Action;
                match self.trace.as_mut().map(|t| t.on_key(k)) {
                    Some(Action::None) => {}
                    Some(Action::Help) => {
                        self.help_over_trace = true;
                        self.mode = Mode::Help(0);
                    }
                    Some(Action::Attach) => self.toggle_attach(),
                    Some(Action::Close) | None => self.mode = Mode::Normal,
                }
                return Vec::new();
            }
            Mode::Normal => {}
        }
        self.on_screen_key(k)
    }

    /// A key in a prompt holding `text`: the text when Enter ends it, None
    /// while typing (the mode is `again` of the edited text) or when Esc
    /// leaves it. Ending either way goes back to [`Mode::Normal`].
    fn prompt(
        &mut self,
        mut text: String,
        k: KeyEvent,
        again: impl FnOnce(String) -> Mode,
    ) -> Option<String> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match edit_line(&mut text, k.code, ctrl) {
            Edit::Cancel => self.mode = Mode::Normal,
            Edit::Done => {
                self.mode = Mode::Normal;
                return Some(text);
            }
            Edit::Typing => self.mode = again(text),
        }
        None
    }

    pub(super) fn on_map_key(&mut self, k: KeyEvent) {
        let Some(v) = self.map.as_mut() else {
            self.mode = Mode::Normal;
            return;
        };
        let w = v.width.max(1) as isize;
        match k.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('m') => {
                self.mode = Mode::Normal;
                self.map = None;
            }
            KeyCode::Right | KeyCode::Char('l') => v.move_by(1),
            KeyCode::Left | KeyCode::Char('h') => v.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => v.move_by(w),
            KeyCode::Up | KeyCode::Char('k') => v.move_by(-w),
            KeyCode::Home => v.cursor = 0,
            KeyCode::End => v.move_by(isize::MAX / 2),
            KeyCode::Char('n') | KeyCode::Tab => v.jump(true),
            KeyCode::Char('N') | KeyCode::BackTab => v.jump(false),
            KeyCode::Enter => {
                let start = v.segment().map(|s| s.start);
                if let (Some(a), Some(m)) = (start, self.main.as_mut()) {
                    self.message = Some(m.goto_address(a));
                    self.mode = Mode::Normal;
                    self.map = None;
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_memory_list_key(&mut self, k: KeyEvent, ctrl: bool) {
        let Some(l) = self.memory_list.as_mut() else {
            self.mode = Mode::Normal;
            return;
        };
        if l.editing {
            match edit_line(&mut l.filter, k.code, ctrl) {
                Edit::Cancel => {
                    l.filter.clear();
                    l.editing = false;
                }
                Edit::Done => l.editing = false,
                Edit::Typing => {}
            }
            l.refilter();
            return;
        }
        match k.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                self.memory_list = None;
            }
            KeyCode::Char('t') if ctrl => {
                self.mode = Mode::Normal;
                self.memory_list = None;
            }
            KeyCode::Char('/') => {
                l.editing = true;
            }
            KeyCode::Char('F') => self.mode = Mode::MemSearch(String::new()),
            // Space pages down, as in a pager.
            KeyCode::Char(' ') => {
                l.move_key(KeyCode::PageDown);
            }
            KeyCode::Char('y') => {
                if let Some(it) = l.selected_item() {
                    self.message = Some(format!("Copied the text at {:#x} (OSC 52)", it.address));
                    self.clipboard = Some(it.text.clone());
                }
            }
            KeyCode::Enter => {
                if let (Some(it), Some(m)) = (l.selected_item(), self.main.as_mut()) {
                    self.message = Some(m.goto_address(it.address));
                    self.mode = Mode::Normal;
                    self.memory_list = None;
                }
            }
            code => {
                l.move_key(code);
            }
        }
    }

    pub(super) fn on_columns_key(&mut self, k: KeyEvent, sel: usize) {
        let n = Column::ALL.len();
        match k.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('c') | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                self.message = Some(format!("Columns saved{}", save_note(&self.settings)));
            }
            KeyCode::Down | KeyCode::Char('j') => self.mode = Mode::Columns((sel + 1) % n),
            KeyCode::Up | KeyCode::Char('k') => self.mode = Mode::Columns((sel + n - 1) % n),
            KeyCode::Char(' ') => {
                let id = Column::ALL[sel].id().to_string();
                let mut cols: Vec<String> = self
                    .settings
                    .visible_columns()
                    .iter()
                    .map(|c| c.id().to_string())
                    .collect();
                if let Some(p) = cols.iter().position(|c| *c == id) {
                    if cols.len() > 1 {
                        cols.remove(p);
                    }
                } else {
                    // Keep the canonical column order.
                    cols.push(id);
                    cols.sort_by_key(|c| Column::ALL.iter().position(|x| x.id() == c));
                }
                self.settings.columns = cols;
            }
            _ => {}
        }
    }
}

/// The scroll of a text overlay (the help, the changes, the combined
/// report) after a key: the keys that scroll them all.
fn scrolled(s: u16, code: KeyCode) -> u16 {
    match code {
        KeyCode::Down | KeyCode::Char('j') => s.saturating_add(1),
        KeyCode::Up | KeyCode::Char('k') => s.saturating_sub(1),
        KeyCode::PageDown | KeyCode::Char(' ') => s.saturating_add(20),
        KeyCode::PageUp => s.saturating_sub(20),
        KeyCode::Home => 0,
        _ => s,
    }
}

/// What a key did to a one-line prompt.
pub(super) enum Edit {
    /// Esc: give up.
    Cancel,
    /// Enter: use the text.
    Done,
    /// The text changed, or the key meant nothing here.
    Typing,
}

/// The line editing shared by the find, open and save prompts.
pub(super) fn edit_line(text: &mut String, code: KeyCode, ctrl: bool) -> Edit {
    match code {
        KeyCode::Esc => return Edit::Cancel,
        KeyCode::Enter => return Edit::Done,
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char(c) if !ctrl => text.push(c),
        _ => {}
    }
    Edit::Typing
}
