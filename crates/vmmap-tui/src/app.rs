//! The application: screens, input modes, key and mouse handling, and the
//! event loop that ties the collection thread to drawing.

use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use vmmap_core::figures::Column;
use vmmap_core::model::Snapshot;
use vmmap_core::text::{escape, is_unsafe, Escaped};

use crate::collector::{Collector, Request, Response};

/// Snapshots kept in a session's history (a 60,000-region snapshot takes
/// about 25 MB, so the oldest go first).
pub const HISTORY_LIMIT: usize = 64;
use crate::details::{row_region, row_text, Row, SortKey};
use crate::launch_form::Field;
use crate::main_view::{Focus, MainView};
use crate::picker::{PickColumn, Picker, PickerTab};
use crate::settings::Settings;
use crate::trace_session::TraceSession;
use crate::{clipboard, help};

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The process picker.
    Picker,
    /// The main view of a process.
    Main,
}

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
    /// The combined report of the marked processes ([`App::combined`]),
    /// scrolled.
    Combined(u16),
    /// The Trace view ([`App::trace`]).
    Trace,
}

/// The whole UI state.
pub struct App {
    /// Current screen.
    pub screen: Screen,
    /// Picker state.
    pub picker: Picker,
    /// Main view, once a process is open.
    pub main: Option<MainView>,
    /// Persistent settings.
    pub settings: Settings,
    /// Input mode.
    pub mode: Mode,
    /// Last search.
    pub last_find: String,
    /// A message for the status line.
    pub message: Option<String>,
    /// A snapshot being collected.
    pub loading: Option<u32>,
    /// Set when the user quits.
    pub quit: bool,
    /// Text waiting to go to the terminal's clipboard (OSC 52).
    pub clipboard: Option<String>,
    /// The main view shows a snapshot loaded from a file, not a live
    /// process.
    pub from_file: bool,
    /// The snapshots of the current process taken (or loaded) this
    /// session, oldest first; F5 appends. At most [`HISTORY_LIMIT`].
    pub history: Vec<Arc<Snapshot>>,
    /// Which snapshot of the history the main view shows.
    pub history_index: usize,
    /// Automatic snapshots: the interval and when the next is due.
    pub auto: Option<(Duration, std::time::Instant)>,
    /// The text of the changes overlay, made when it opens.
    pub diff_text: Vec<String>,
    /// The combined report of the processes marked in the picker, or the
    /// processes sharing the selected region's pages (`H`).
    pub combined: Vec<String>,
    /// The title of that overlay.
    pub combined_title: String,
    /// The history indices the changes overlay compares.
    pub diff_pair: (usize, usize),
    /// Per-type totals of each snapshot of the history, for the timeline.
    pub history_totals: Vec<crate::timeline_view::Totals>,
    /// The Strings view or the memory search results, while open.
    pub memory_list: Option<crate::memory_view::MemoryList>,
    /// The working set before an Empty Working Set, while the snapshots
    /// that follow it show it coming back.
    pub emptied: Option<u64>,
    /// The fragmentation map, while open.
    pub map: Option<crate::map_view::MapView>,
    /// A memory search running in the background.
    pub search_job: Option<crate::memory_view::SearchJob>,
    /// Where `/proc` is, for reading process memory.
    pub proc_root: std::path::PathBuf,
    /// Programs started from the Launch tab that still run.
    pub traces: Vec<TraceSession>,
    /// The file the shown snapshots were loaded from (it may hold a
    /// trace: `T` analyses it).
    pub file: Option<std::path::PathBuf>,
    /// Trace files of programs started from the Launch tab, by PID (kept
    /// after they exit, for `T`).
    pub trace_files: Vec<(u32, std::path::PathBuf)>,
    /// The Trace view, kept when closed so that `T` shows it again at once.
    pub trace: Option<crate::trace_view::TraceView>,
    /// The Owner column of the shown snapshot of a traced file, being
    /// computed.
    pub owners_job: Option<crate::owners_job::OwnersJob>,
    /// Owner columns computed so far (None: the file holds no trace of
    /// that snapshot's process).
    pub owners: std::collections::HashMap<
        crate::owners_job::OwnersKey,
        Option<Arc<vmmap_trace::region_owners::SnapshotOwners>>,
    >,
    /// The help screen was opened from the Trace view (Esc goes back there).
    help_over_trace: bool,
    last_click: Option<(u16, u16)>,
}

impl App {
    /// A new app on the picker, or on a snapshot already taken.
    pub fn new(settings: Settings, first: Option<(Arc<Snapshot>, Duration)>) -> App {
        let mut app = App {
            screen: Screen::Picker,
            picker: Picker::default(),
            main: None,
            settings,
            mode: Mode::Normal,
            last_find: String::new(),
            message: None,
            loading: None,
            quit: false,
            clipboard: None,
            from_file: false,
            history: Vec::new(),
            history_index: 0,
            auto: None,
            diff_text: Vec::new(),
            combined: Vec::new(),
            combined_title: String::new(),
            history_totals: Vec::new(),
            diff_pair: (0, 0),
            memory_list: None,
            map: None,
            search_job: None,
            emptied: None,
            proc_root: std::path::PathBuf::from("/proc"),
            traces: Vec::new(),
            file: None,
            trace_files: Vec::new(),
            trace: None,
            owners_job: None,
            owners: std::collections::HashMap::new(),
            help_over_trace: false,
            last_click: None,
        };
        if let Some((snap, t)) = first {
            app.history_totals
                .push(crate::timeline_view::Totals::of(&snap));
            app.history.push(Arc::clone(&snap));
            app.main = Some(MainView::new(snap, t));
            app.screen = Screen::Main;
        }
        app
    }

    /// Starts on a loaded recording: every snapshot is in the history and
    /// snapshot `index` is shown.
    pub fn with_history(settings: Settings, snaps: Vec<Arc<Snapshot>>, index: usize) -> App {
        let index = index.min(snaps.len().saturating_sub(1));
        let mut app = App::new(
            settings,
            snaps.get(index).map(|s| (Arc::clone(s), Duration::ZERO)),
        );
        app.history_totals = snaps
            .iter()
            .map(|s| crate::timeline_view::Totals::of(s))
            .collect();
        app.history = snaps;
        app.history_index = index;
        app.from_file = true;
        app
    }

    /// Shows snapshot `i` of the history, keeping the view state.
    fn show_history(&mut self, i: usize) {
        let Some(snap) = self.history.get(i).cloned() else {
            return;
        };
        self.history_index = i;
        if let Some(m) = self.main.as_mut() {
            m.replace(snap, Duration::ZERO);
        }
        self.refresh_compare();
        self.message = Some(self.history_status());
    }

    /// Recomputes compare mode against the snapshot before the shown one.
    fn refresh_compare(&mut self) {
        let Some(m) = self.main.as_mut() else { return };
        if m.compare.is_some() {
            m.compare = (self.history_index > 0).then(|| {
                crate::main_view::Compare::new(
                    &self.history[self.history_index - 1],
                    &m.snap,
                    self.history_index,
                )
            });
        }
    }

    fn history_status(&self) -> String {
        let n = self.history.len();
        let i = self.history_index;
        let t0 = self.history.first().map_or(0, |s| s.taken_at_unix_ns);
        let at = self
            .history
            .get(i)
            .map_or(0.0, |s| s.taken_at_unix_ns.saturating_sub(t0) as f64 / 1e9);
        format!("Snapshot {} of {n} (+{at:.1} s)  [ ] step through the history, d shows the changes from the one before", i + 1)
    }

    /// Handles a collection result.
    pub fn on_response(&mut self, r: Response) {
        match r {
            Response::Processes(Ok(list)) => self.picker.set(list),
            Response::Processes(Err(e)) => self.picker.error = Some(e),
            Response::Combined(r) => {
                self.message = None;
                match r {
                    Ok(lines) => {
                        self.combined = lines;
                        self.combined_title = " Combined: pages mapped by several processes counted once — Up/Down scroll, Esc closes ".into();
                        self.mode = Mode::Combined(0);
                    }
                    Err(e) => self.message = Some(format!("Cannot combine: {e}")),
                }
            }
            Response::Snapshot(pid, result) => {
                if self.loading == Some(pid) {
                    self.loading = None;
                }
                match result {
                    Ok((snap, t)) => {
                        self.from_file = false;
                        match &mut self.main {
                            Some(m)
                                if m.snap.process.pid == pid
                                    && m.snap.process.start_time_ticks
                                        == snap.process.start_time_ticks =>
                            {
                                if self.history.len() >= HISTORY_LIMIT {
                                    self.history.remove(0);
                                    self.history_totals.remove(0);
                                }
                                self.history_totals
                                    .push(crate::timeline_view::Totals::of(&snap));
                                self.history.push(Arc::clone(&snap));
                                self.history_index = self.history.len() - 1;
                                m.replace(snap, t);
                                if m.compare.is_some() {
                                    m.compare = Some(crate::main_view::Compare::new(
                                        &self.history[self.history_index - 1],
                                        &m.snap,
                                        self.history_index,
                                    ));
                                }
                                if self.auto.is_none() {
                                    self.emptied = None;
                                }
                                self.message = Some(match self.emptied {
                                    Some(before) => format!(
                                        "After Empty Working Set: working set {} (was {}), snapshot {} of the history, one a second (Ctrl+Space stops, t: timeline)",
                                        vmmap_core::units::size(m.summary.total.figures.value(Column::TotalWs), false),
                                        vmmap_core::units::size(before, false),
                                        self.history.len()
                                    ),
                                    None => format!(
                                        "Snapshot {} of the history: {} regions in {} ms",
                                        self.history.len(),
                                        m.snap.regions.len(),
                                        t.as_millis()
                                    ),
                                });
                            }
                            _ => {
                                self.history_totals = vec![crate::timeline_view::Totals::of(&snap)];
                                self.history = vec![Arc::clone(&snap)];
                                self.history_index = 0;
                                self.auto = None;
                                self.main = Some(MainView::new(snap, t));
                                self.message = self.traces.iter().find(|s| s.pid == pid).map(|s| {
                                    format!(
                                        "Tracing {} (pid {pid}) into {}: a snapshot every second goes to the file; quitting vmmap leaves it running",
                                        s.program,
                                        s.output.display()
                                    )
                                });
                            }
                        }
                        self.screen = Screen::Main;
                    }
                    Err(e) => self.message = Some(e),
                }
            }
        }
    }

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

    fn on_key(&mut self, k: KeyEvent) -> Vec<Request> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && k.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
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
                    KeyCode::Down | KeyCode::Char('j') => Mode::Help(s.saturating_add(1)),
                    KeyCode::Up | KeyCode::Char('k') => Mode::Help(s.saturating_sub(1)),
                    KeyCode::PageDown | KeyCode::Char(' ') => Mode::Help(s.saturating_add(20)),
                    KeyCode::PageUp => Mode::Help(s.saturating_sub(20)),
                    KeyCode::Home => Mode::Help(0),
                    _ => Mode::Help(s),
                };
                return Vec::new();
            }
            Mode::Find(mut q) => {
                match edit_line(&mut q, k.code, ctrl) {
                    Edit::Cancel => self.mode = Mode::Normal,
                    Edit::Done => {
                        self.mode = Mode::Normal;
                        self.last_find = q;
                        self.find_next(false);
                    }
                    Edit::Typing => self.mode = Mode::Find(q),
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
                    KeyCode::Down | KeyCode::Char('j') => Mode::Combined(s.saturating_add(1)),
                    KeyCode::Up | KeyCode::Char('k') => Mode::Combined(s.saturating_sub(1)),
                    KeyCode::PageDown | KeyCode::Char(' ') => Mode::Combined(s.saturating_add(20)),
                    KeyCode::PageUp => Mode::Combined(s.saturating_sub(20)),
                    KeyCode::Home => Mode::Combined(0),
                    _ => Mode::Combined(s),
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
                    KeyCode::Down | KeyCode::Char('j') => Mode::Diff(s.saturating_add(1)),
                    KeyCode::Up | KeyCode::Char('k') => Mode::Diff(s.saturating_sub(1)),
                    KeyCode::PageDown | KeyCode::Char(' ') => Mode::Diff(s.saturating_add(20)),
                    KeyCode::PageUp => Mode::Diff(s.saturating_sub(20)),
                    KeyCode::Home => Mode::Diff(0),
                    _ => Mode::Diff(s),
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
            Mode::Save(changes, mut path) => {
                match edit_line(&mut path, k.code, ctrl) {
                    Edit::Cancel => self.mode = Mode::Normal,
                    Edit::Done => {
                        self.mode = Mode::Normal;
                        self.message = Some(match self.save_as(changes, path.trim()) {
                            Ok(()) => format!("Saved to {}", path.trim()),
                            Err(e) => format!("Cannot save {}: {e}", path.trim()),
                        });
                    }
                    Edit::Typing => self.mode = Mode::Save(changes, path),
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
            Mode::Goto(mut text) => {
                match edit_line(&mut text, k.code, ctrl) {
                    Edit::Cancel => self.mode = Mode::Normal,
                    Edit::Done => {
                        self.mode = Mode::Normal;
                        self.message = Some(
                            match (vmmap_core::lookup::parse_address(&text), self.main.as_mut()) {
                                (Some(a), Some(m)) => m.goto_address(a),
                                (None, _) => format!("{text:?} is not a hex address"),
                                (_, None) => "No process is open".into(),
                            },
                        );
                    }
                    Edit::Typing => self.mode = Mode::Goto(text),
                }
                return Vec::new();
            }
            Mode::Open(mut path) => {
                match edit_line(&mut path, k.code, ctrl) {
                    Edit::Cancel => self.mode = Mode::Normal,
                    Edit::Done => {
                        self.mode = Mode::Normal;
                        self.open_file(&path);
                    }
                    Edit::Typing => self.mode = Mode::Open(path),
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
                    Some(Action::Close) | None => self.mode = Mode::Normal,
                }
                return Vec::new();
            }
            Mode::Normal => {}
        }
        if k.code == KeyCode::F(1) {
            self.mode = Mode::Help(0);
            return Vec::new();
        }
        match self.screen {
            Screen::Picker => self.on_picker_key(k, ctrl),
            Screen::Main => self.on_main_key(k, ctrl),
        }
    }

    fn on_picker_key(&mut self, k: KeyEvent, ctrl: bool) -> Vec<Request> {
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
    fn on_launch_key(&mut self, k: KeyEvent, ctrl: bool) -> Vec<Request> {
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

    /// Enter in the Launch tab: starts the program under the agent (or
    /// for snapshots only), watches it on a thread that appends a
    /// snapshot every second, and opens its live view.
    fn launch(&mut self) -> Vec<Request> {
        let form = &mut self.picker.launch;
        let spec = match form.prepare() {
            Ok(s) => s,
            Err(e) => {
                form.error = Some(e);
                return Vec::new();
            }
        };
        let output = std::path::absolute(&spec.output).unwrap_or_else(|_| spec.output.clone());
        let opts = vmmap_core::collect::Options::default()
            .proc_root(&self.proc_root)
            .ptrace(false)
            .read_memory(true);
        let run = match vmmap_trace::supervise::start(&spec, opts, true) {
            Ok(r) => r,
            Err(vmmap_trace::launch::LaunchError::Output(e)) => {
                form.error = Some(format!("Cannot create {}: {e}", output.display()));
                return Vec::new();
            }
            Err(vmmap_trace::launch::LaunchError::Spawn(e)) => {
                let why = vmmap_trace::launch::spawn_advice(&e)
                    .map_or_else(|| e.to_string(), str::to_string);
                form.error = Some(format!("Cannot start {}: {why}", spec.program.display()));
                return Vec::new();
            }
        };
        let pid = run.pid;
        self.trace_files.push((pid, output.clone()));
        let program = form.program.trim().to_string();
        form.error = None;
        match TraceSession::start(run, program.clone(), output.clone(), Duration::from_secs(1)) {
            Ok(t) => self.traces.push(t),
            Err(e) => {
                // The child was moved into the failed thread's closure and
                // dropped: it runs on unwatched (reparented when vmmap
                // exits), and the file lacks its end marker.
                self.message = Some(format!(
                    "Started {program} (pid {pid}) but cannot watch it: {e}; {} is incomplete",
                    output.display()
                ));
                return Vec::new();
            }
        }
        self.picker.tab = PickerTab::Processes;
        self.loading = Some(pid);
        self.message = Some(format!(
            "Started {program} (pid {pid}), tracing into {}; collecting…",
            output.display()
        ));
        vec![Request::Snapshot(pid), Request::Processes]
    }

    /// Reports traced programs that have exited (and were reaped).
    pub fn poll_traces(&mut self) {
        let mut i = 0;
        while i < self.traces.len() {
            if let Some(msg) = self.traces[i].poll() {
                self.traces.remove(i);
                self.message = Some(msg);
            } else {
                i += 1;
            }
        }
    }

    fn open_selected(&mut self) -> Vec<Request> {
        match self.picker.selected_entry() {
            Some(e) if matches!(e.access, vmmap_core::collect::Access::Denied(_)) => {
                if let vmmap_core::collect::Access::Denied(r) = &e.access {
                    self.message =
                        Some(format!("Cannot open {} ({}): {r}", e.pid, Escaped(&e.name)));
                }
                Vec::new()
            }
            Some(e) => {
                self.loading = Some(e.pid);
                self.message = Some(format!("Collecting {} ({})…", e.pid, Escaped(&e.name)));
                vec![Request::Snapshot(e.pid)]
            }
            None => Vec::new(),
        }
    }

    fn on_main_key(&mut self, k: KeyEvent, ctrl: bool) -> Vec<Request> {
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

    /// `T`: the Trace view of the shown process's trace file (the file it
    /// was loaded from, or the one its Launch-tab session writes). With a
    /// region selected in the Details, it also lists the allocations
    /// inside that region.
    fn open_trace(&mut self) {
        let Some(m) = self.main.as_ref() else { return };
        let pid = m.snap.process.pid;
        let path = if self.from_file {
            self.file.clone()
        } else {
            self.trace_files
                .iter()
                .rev()
                .find(|(p, _)| *p == pid)
                .map(|(_, f)| f.clone())
        };
        let Some(path) = path else {
            self.message = Some(if self.from_file {
                "The trace of this snapshot's file is not known: open the file with `vmmap open FILE -i` or Ctrl+O".into()
            } else {
                format!("No trace of {pid}: start a program from the Launch tab (Ctrl+P, F2) or with `vmmap run`, then press T")
            });
            return;
        };
        let region = (m.focus == Focus::Details)
            .then(|| m.details.rows.get(m.details.selected))
            .flatten()
            .and_then(|&row| row_region(&m.snap, row))
            .map(|r| {
                let what = escape(if r.details.is_empty() {
                    &r.path
                } else {
                    &r.details
                });
                (
                    r.start,
                    r.end,
                    format!("{} {what}", r.memory_type.name())
                        .trim_end()
                        .to_string(),
                )
            });
        let same = self.trace.as_ref().is_some_and(|t| {
            t.path == path
                && t.region.as_ref().map(|r| (r.0, r.1)) == region.as_ref().map(|r| (r.0, r.1))
                && t.error.is_none()
                && std::fs::metadata(&t.path).is_ok_and(|m| m.len() == t.file_len)
        });
        if !same {
            self.trace = Some(crate::trace_view::TraceView::new(path, region));
        }
        self.mode = Mode::Trace;
    }

    /// Takes in the Trace view's background results; returns whether it
    /// still waits for some.
    pub fn poll_trace(&mut self) -> bool {
        match self.trace.as_mut() {
            Some(t) => {
                let waiting = t.analysis.is_none();
                t.poll();
                if let (true, Some(a)) = (waiting, t.analysis.as_ref()) {
                    if let vmmap_trace::symbol_cache::CacheWrite::Failed(e) = &a.cache {
                        self.message = Some(crate::trace_jobs::cache_note(&t.path, e));
                    }
                }
                t.busy()
            }
            None => false,
        }
    }

    /// Gives the shown snapshot of a traced file its Owner column: takes
    /// in a finished computation, and starts one (on its own thread) for a
    /// snapshot not computed yet. Returns whether one is running.
    pub fn poll_owners(&mut self) -> bool {
        use crate::owners_job::{key, OwnersJob};
        if let Some(r) = self.owners_job.as_ref().and_then(|j| j.poll()) {
            let Some(job) = self.owners_job.take() else {
                return false;
            };
            let owners = match r {
                Ok(o) => o,
                Err(e) => {
                    self.message = Some(format!("No Owner column: {e}"));
                    None
                }
            };
            if let Some(vmmap_trace::symbol_cache::CacheWrite::Failed(e)) =
                owners.as_ref().map(|o| &o.cache)
            {
                self.message = Some(crate::trace_jobs::cache_note(&job.key.0, e));
            }
            if self.message.as_deref() == Some(OWNERS_PENDING) {
                self.message = None;
            }
            self.owners.insert(job.key.clone(), owners);
        }
        let (true, Some(path), Some(m)) = (self.from_file, self.file.as_ref(), self.main.as_mut())
        else {
            return self.owners_job.is_some();
        };
        let k = key(path, &m.snap);
        match self.owners.get(&k) {
            Some(o) => {
                let same = match (&m.owners, o) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    m.owners = o.clone();
                }
            }
            None if self.owners_job.as_ref().is_none_or(|j| j.key != k) => {
                self.owners_job = Some(OwnersJob::start(path.clone(), Arc::clone(&m.snap)));
                if self.message.is_none() {
                    self.message = Some(OWNERS_PENDING.into());
                }
            }
            None => {}
        }
        self.owners_job.is_some()
    }

    /// The start of the selected region, for actions that read the live
    /// process: None, with the reason on the status line (`live` when the
    /// snapshot came from a file, `gap` when a free gap is selected), when
    /// there is none.
    fn live_selected_start(&mut self, live: &str, gap: &str) -> Option<u64> {
        let m = self.main.as_ref()?;
        if self.from_file {
            self.message = Some(format!("{live}; this snapshot was loaded from a file"));
            return None;
        }
        let &row = m.details.rows.get(m.details.selected)?;
        match row_region(&m.snap, row) {
            Some(region) => Some(region.start),
            None => {
                self.message = Some(format!("{gap}: select a region"));
                None
            }
        }
    }

    /// `H`: which other processes map the physical pages of the selected
    /// region (a frame join over every process's pagemap; root only).
    fn open_shared_with(&mut self) {
        let Some(start) = self.live_selected_start(
            "Sharing is read from live page tables",
            "A free gap maps no pages",
        ) else {
            return;
        };
        let Some(m) = self.main.as_ref() else { return };
        let Some(top) = m.snap.region_at(start) else {
            return;
        };
        let opts = vmmap_core::collect::Options::default().proc_root(&self.proc_root);
        match vmmap_core::collect::pages::shared_with(&m.snap, top, &opts) {
            Ok((own, others)) => {
                self.combined = vmmap_core::collect::pages::shared_with_lines(
                    &m.snap, top, own, &others, false,
                );
                self.combined_title =
                    " Processes mapping the same pages — Up/Down scroll, Esc closes ".into();
                self.mode = Mode::Combined(0);
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Ctrl+T: the strings of the selected region, read now.
    fn open_strings(&mut self) {
        let Some(start) = self.live_selected_start(
            "Strings are read from a live process's memory",
            "A free gap holds no strings",
        ) else {
            return;
        };
        let Some(m) = self.main.as_ref() else { return };
        match crate::memory_view::read_strings(&m.snap, &self.proc_root, start, 4) {
            Ok(list) => {
                self.memory_list = Some(list);
                self.mode = Mode::MemoryList;
            }
            Err(e) => self.message = Some(e),
        }
    }

    /// Starts searching the whole memory of the process (F) on a thread;
    /// [`App::poll_search`] shows the progress and then the matches.
    fn search_memory(&mut self, query: &str) {
        self.mode = Mode::Normal;
        self.memory_list = None;
        let Some(m) = self.main.as_ref() else { return };
        if self.from_file {
            self.message = Some(
                "Searching memory needs a live process; this snapshot was loaded from a file"
                    .into(),
            );
            return;
        }
        if let Some(j) = self.search_job.take() {
            j.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        match crate::memory_view::start_search(Arc::clone(&m.snap), self.proc_root.clone(), query) {
            Ok(job) => {
                self.message = Some(job.status());
                self.search_job = Some(job);
            }
            Err(e) => self.message = Some(e),
        }
    }

    /// Takes in the running search's progress, and its matches when it
    /// ends. Returns whether a search is still running.
    pub fn poll_search(&mut self) -> bool {
        use crate::memory_view::JobMessage;
        let Some(job) = self.search_job.as_mut() else {
            return false;
        };
        let mut result = None;
        while let Ok(msg) = job.rx.try_recv() {
            match msg {
                JobMessage::Progress(d) => job.done = d,
                JobMessage::Done(r) => result = Some(r),
            }
        }
        match result {
            None => {
                if self.mode == Mode::Normal {
                    self.message = Some(job.status());
                }
                true
            }
            Some(r) => {
                self.search_job = None;
                match r {
                    Ok(list) => {
                        self.message = None;
                        self.memory_list = Some(list);
                        self.mode = Mode::MemoryList;
                    }
                    Err(e) => self.message = Some(e),
                }
                false
            }
        }
    }

    /// Pages the process out (after the confirmation), then takes a
    /// snapshot every second so that the working set can be seen coming
    /// back (Ctrl+Space stops them, `t` shows the timeline).
    fn empty_working_set(&mut self) -> Vec<Request> {
        let Some(m) = self.main.as_ref() else {
            return Vec::new();
        };
        let before = m.summary.total.figures.value(Column::TotalWs);
        match vmmap_core::collect::reclaim::page_out(&m.snap) {
            Ok(r) => {
                let pid = m.snap.process.pid;
                self.message = Some(format!(
                    "Paged out {} mapping(s) ({} skipped); working set was {}: a snapshot every second shows it come back (Ctrl+Space stops, t: timeline)",
                    r.advised,
                    r.skipped,
                    vmmap_core::units::size(before, false)
                ));
                let every = Duration::from_secs(1);
                self.auto = Some((every, std::time::Instant::now() + every));
                self.emptied = Some(before);
                self.loading = Some(pid);
                vec![Request::Snapshot(pid)]
            }
            Err(e) => {
                self.message = Some(format!("Cannot empty the working set: {e}"));
                Vec::new()
            }
        }
    }

    fn on_map_key(&mut self, k: KeyEvent) {
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

    fn on_memory_list_key(&mut self, k: KeyEvent, ctrl: bool) {
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
            KeyCode::Down | KeyCode::Char('j') => l.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => l.move_by(-1),
            KeyCode::PageDown | KeyCode::Char(' ') => l.move_by(20),
            KeyCode::PageUp => l.move_by(-20),
            KeyCode::Home => l.selected = 0,
            KeyCode::End => l.move_by(isize::MAX / 2),
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
            _ => {}
        }
    }

    fn on_columns_key(&mut self, k: KeyEvent, sel: usize) {
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

    fn open_diff(&mut self) {
        if self.history_index == 0 {
            self.message =
                Some("No earlier snapshot to compare with: press F5 to take another".into());
            return;
        }
        self.open_diff_between(self.history_index - 1, self.history_index);
    }

    /// Opens the changes overlay for snapshots `a` and `b` of the history.
    fn open_diff_between(&mut self, a: usize, b: usize) {
        let (Some(sa), Some(sb)) = (self.history.get(a), self.history.get(b)) else {
            return;
        };
        let d = vmmap_core::diff::diff(sa, sb);
        let mut out = Vec::new();
        let units_exact = self.settings.units == crate::settings::Units::Bytes;
        if vmmap_render::diff::write_text(&d, &mut out, units_exact).is_ok() {
            self.diff_text = String::from_utf8_lossy(&out)
                .lines()
                .map(str::to_string)
                .collect();
            self.diff_pair = (a, b);
            self.mode = Mode::Diff(0);
        }
    }

    /// Saves the shown snapshot (Details table as text, or the whole
    /// snapshot as JSON, CSV or .vmmap) or the changes (text, JSON, CSV),
    /// by the file's extension.
    fn save_as(&self, changes: bool, path: &str) -> std::io::Result<()> {
        let Some(m) = self.main.as_ref() else {
            return Ok(());
        };
        let ext = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("txt");
        let exact = self.settings.units == crate::settings::Units::Bytes;
        if changes {
            let (a, b) = self.diff_pair;
            let (Some(sa), Some(sb)) = (self.history.get(a), self.history.get(b)) else {
                return Ok(());
            };
            let d = vmmap_core::diff::diff(sa, sb);
            return vmmap_core::output::write(std::path::Path::new(path), |out| match ext {
                "json" => vmmap_render::diff::write_json(&d, out),
                "csv" => vmmap_render::diff::write_csv(&d, out),
                _ => vmmap_render::diff::write_text(&d, out, exact),
            });
        }
        let summary = vmmap_core::Summary::of(&m.snap);
        let opts = vmmap_core::export::ExportOptions {
            free: m.details.show_free,
            summary_only: false,
        };
        vmmap_core::output::write(std::path::Path::new(path), |out| match ext {
            "json" => vmmap_core::export::write_json_owned(
                &m.snap,
                &summary,
                opts,
                m.owners.as_deref(),
                out,
            ),
            "csv" => vmmap_core::export::write_csv_owned(
                &m.snap,
                &summary,
                opts,
                m.owners.as_deref(),
                out,
            ),
            "vmmap" => {
                let mut w = vmmap_core::format::Writer::new(out)?;
                w.append(&m.snap)?;
                w.finish().map(drop)
            }
            _ => out.write_all(table_text(m).as_bytes()),
        })
    }

    fn save_history(&mut self) {
        let Some(first) = self.history.first() else {
            return;
        };
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("vmmap-{}-{secs}.vmmap", first.process.pid);
        let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
        let write = |path: &std::path::Path| -> std::io::Result<()> {
            vmmap_core::output::write(path, |out| {
                let mut w = vmmap_core::format::Writer::new(out)?;
                for s in &self.history {
                    w.append(s)?;
                }
                w.finish().map(drop)
            })
        };
        let target = cwd.join(&name);
        let result = write(&target).map(|()| target).or_else(|_| {
            let t = std::env::temp_dir().join(&name);
            write(&t).map(|()| t)
        });
        self.message = Some(match result {
            Ok(p) => format!(
                "Saved {} snapshot(s) to {} (vmmap open, Ctrl+O)",
                self.history.len(),
                p.display()
            ),
            Err(e) => format!("Cannot save the history: {e}"),
        });
    }

    fn open_file(&mut self, path: &str) {
        let loaded =
            match vmmap_core::format::load_file_snapshots(std::path::Path::new(path.trim())) {
                Ok(l) => l,
                Err(e) => {
                    self.message = Some(format!("Cannot open {path}: {e}"));
                    return;
                }
            };
        if loaded.snapshots.is_empty() {
            self.message = Some(format!("{path} holds no complete snapshot"));
            return;
        }
        let problem = loaded
            .problem
            .map(|p| format!(" ({p}; the intact part was loaded)"))
            .unwrap_or_default();
        self.history = loaded.snapshots.into_iter().map(Arc::new).collect();
        self.history_totals = self
            .history
            .iter()
            .map(|s| crate::timeline_view::Totals::of(s))
            .collect();
        self.history_index = self.history.len() - 1;
        self.main = Some(MainView::new(
            Arc::clone(&self.history[self.history_index]),
            Duration::ZERO,
        ));
        self.from_file = true;
        self.file = Some(std::path::PathBuf::from(path.trim()));
        self.trace = None;
        self.auto = None;
        self.screen = Screen::Main;
        self.message = Some(format!(
            "Opened {path}: {} snapshot(s){problem}",
            self.history.len()
        ));
    }

    fn find_next(&mut self, backwards: bool) {
        let Some(m) = self.main.as_mut() else { return };
        if self.last_find.is_empty() {
            return;
        }
        m.focus = Focus::Details;
        self.message = Some(
            if m.details.find(&m.snap, &m.data, &self.last_find, backwards) {
                format!("Found {:?} (n: next, N: previous)", self.last_find)
            } else {
                format!("{:?} not found in the Details", self.last_find)
            },
        );
    }

    fn scroll(&mut self, delta: isize) {
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
                let last = self.picker.rows.len().saturating_sub(1) as isize;
                self.picker.selected =
                    (self.picker.selected as isize + delta).clamp(0, last.max(0)) as usize;
            }
            Screen::Main => {
                if let Some(m) = self.main.as_mut() {
                    m.details.move_by(delta);
                }
            }
        }
    }

    fn on_click(&mut self, x: u16, y: u16) -> Vec<Request> {
        if self.mode == Mode::Trace {
            // The tables under the full-screen view are hidden.
            return Vec::new();
        }
        let double = self.last_click == Some((x, y));
        self.last_click = Some((x, y));
        let inside = |r: Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        match self.screen {
            Screen::Picker if self.picker.tab == PickerTab::Launch => {}
            Screen::Picker => {
                let p = &mut self.picker;
                if inside(p.header_area) {
                    if let Some(c) = p.column_at(x) {
                        p.sort_by(c);
                    }
                } else if inside(p.body_area) {
                    let i = p.offset + (y - p.body_area.y) as usize;
                    if i < p.rows.len() {
                        let again = p.selected == i;
                        p.selected = i;
                        if again && double {
                            return self.open_selected();
                        }
                    }
                }
            }
            Screen::Main => {
                let Some(m) = self.main.as_mut() else {
                    return Vec::new();
                };
                if inside(m.areas.summary_header) {
                    if let Some(&(_, _, c)) = m
                        .areas
                        .summary_cols
                        .iter()
                        .find(|(cx, w, _)| x >= *cx && x < cx + w)
                    {
                        m.sort_summary(c);
                    }
                } else if inside(m.areas.summary_body) {
                    m.focus = Focus::Summary;
                    let i = (y - m.areas.summary_body.y) as usize;
                    if i < m.summary_rows.len() {
                        m.select_summary(i);
                    }
                } else if inside(m.areas.details_header) {
                    if let Some(&(_, _, k)) = m
                        .areas
                        .details_cols
                        .iter()
                        .find(|(cx, w, _)| x >= *cx && x < cx + w)
                    {
                        m.sort_details(k);
                    }
                } else if inside(m.areas.details_body) {
                    m.focus = Focus::Details;
                    let i = m.details.offset + (y - m.areas.details_body.y) as usize;
                    if i < m.details.rows.len() {
                        let again = m.details.selected == i;
                        m.details.selected = i;
                        if again && double {
                            m.details.set_expanded(&m.snap, &m.data, None);
                        }
                    }
                }
            }
        }
        Vec::new()
    }

    /// Draws the current screen and overlays. Every view escapes the
    /// untrusted text it shows (vmmap_core::text); any cell that still
    /// holds a control character after them is blanked to U+FFFD, since
    /// crossterm would send it to the terminal as it is.
    pub fn draw(&mut self, f: &mut Frame<'_>) {
        self.draw_views(f);
        scrub(f.buffer_mut());
    }

    fn draw_views(&mut self, f: &mut Frame<'_>) {
        let area = f.area();
        if area.height == 0 || area.width == 0 {
            return;
        }
        match (self.screen, self.main.as_mut()) {
            (Screen::Main, Some(m)) => {
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
                    _ => " ?:help Tab:focus Enter:expand s:sort /:find f:free c:cols u:units F5:refresh q:quit"
                        .to_string(),
                };
                m.draw(f, area, &self.settings, &status);
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
                    _ => " F1:help  Enter:open  Tab:sort  F2:launch  F5:refresh  Esc:quit"
                        .to_string(),
                };
                f.render_widget(
                    Paragraph::new(status).style(Style::default().add_modifier(Modifier::REVERSED)),
                    Rect {
                        y: area.y + h,
                        height: 1,
                        ..area
                    },
                );
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
                let h = (area.height / 2).max(8).min(area.height);
                let r = Rect {
                    x: area.x,
                    y: area.y + area.height - h,
                    width: area.width,
                    height: h,
                };
                crate::timeline_view::draw(f, r, &self.history_totals, st, &self.settings);
            }
            Mode::Combined(s) => {
                let r = inset(area, 2, 1);
                f.render_widget(Clear, r);
                let block = Block::default()
                    .borders(Borders::ALL)
                    .title(self.combined_title.as_str());
                let max = (self.combined.len() as u16).saturating_sub(r.height.saturating_sub(2));
                let s = s.min(max);
                self.mode = Mode::Combined(s);
                let lines: Vec<ratatui::text::Line<'_>> = self
                    .combined
                    .iter()
                    .map(|l| ratatui::text::Line::raw(l.as_str()))
                    .collect();
                f.render_widget(Paragraph::new(lines).block(block).scroll((s, 0)), r);
            }
            Mode::Diff(s) => {
                let r = inset(area, 2, 1);
                f.render_widget(Clear, r);
                let block = Block::default().borders(Borders::ALL).title(format!(
                    " Changes from snapshot {} to {} — Up/Down scroll, w saves, Esc closes ",
                    self.diff_pair.0 + 1,
                    self.diff_pair.1 + 1
                ));
                let max = (self.diff_text.len() as u16).saturating_sub(r.height.saturating_sub(2));
                let s = s.min(max);
                self.mode = Mode::Diff(s);
                let lines: Vec<ratatui::text::Line<'_>> = self
                    .diff_text
                    .iter()
                    .map(|l| ratatui::text::Line::raw(l.as_str()))
                    .collect();
                f.render_widget(Paragraph::new(lines).block(block).scroll((s, 0)), r);
            }
            _ => {}
        }
    }

    fn draw_columns(&self, f: &mut Frame<'_>, area: Rect, sel: usize) {
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

/// What a key did to a one-line prompt.
enum Edit {
    /// Esc: give up.
    Cancel,
    /// Enter: use the text.
    Done,
    /// The text changed, or the key meant nothing here.
    Typing,
}

/// The line editing shared by the find, open and save prompts.
fn edit_line(text: &mut String, code: KeyCode, ctrl: bool) -> Edit {
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

fn inset(a: Rect, dx: u16, dy: u16) -> Rect {
    Rect {
        x: a.x + dx.min(a.width / 4),
        y: a.y + dy.min(a.height / 4),
        width: a.width.saturating_sub(2 * dx.min(a.width / 4)),
        height: a.height.saturating_sub(2 * dy.min(a.height / 4)),
    }
}

fn save_note(s: &Settings) -> String {
    match s.save() {
        Ok(p) => format!(" (saved in {})", p.display()),
        Err(e) => format!(" (not saved: {e})"),
    }
}

fn move_key(m: &mut MainView, code: KeyCode, page: isize) {
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

/// The Details table as tab-separated text, for copying and saving; names
/// and paths escaped (vmmap_core::text), so that none holds a tab or a
/// line break of its own.
fn table_text(m: &MainView) -> String {
    let cols: Vec<Column> = Column::ALL
        .iter()
        .copied()
        .filter(|c| !c.summary_only())
        .collect();
    let mut out = String::from("address\ttype");
    for c in &cols {
        out.push('\t');
        out.push_str(c.id());
    }
    out.push_str("\tperms");
    if m.owners.is_some() {
        out.push_str("\towner");
    }
    out.push_str("\tdetails\n");
    for &row in &m.details.rows {
        if let Some(p) = crate::details::row_part(&m.snap, row) {
            // A part: its address, its size and its name.
            out.push_str(&format!("    {:#x}\t", p.start));
            for &c in &cols {
                out.push('\t');
                if c == Column::Size {
                    out.push_str(&(p.end - p.start).to_string());
                }
            }
            out.push('\t');
            if m.owners.is_some() {
                out.push('\t');
            }
            out.push_str(&format!("\t{}\n", Escaped(&p.details)));
            continue;
        }
        match row_region(&m.snap, row) {
            Some(r) => {
                let f = match row {
                    Row::Region(i) => m.data.figures[i],
                    _ => vmmap_core::figures::Figures::of_vma(r),
                };
                let indent = if matches!(row, Row::Sub(..)) {
                    "  "
                } else {
                    ""
                };
                out.push_str(&format!("{indent}{:#x}\t{}", r.start, r.memory_type.name()));
                for &c in &cols {
                    out.push('\t');
                    if let Some(v) = f.get(c) {
                        out.push_str(&v.to_string());
                    }
                }
                out.push('\t');
                out.push_str(r.perms.as_str());
                if m.owners.is_some() {
                    out.push('\t');
                    out.push_str(&escape(m.owner_of(row).map_or("", |c| c.text.as_str())));
                }
                out.push_str(&format!(
                    "\t{}\n",
                    Escaped(if r.details.is_empty() {
                        &r.path
                    } else {
                        &r.details
                    })
                ));
            }
            None => {
                out.push_str(&row_text(&m.snap, &m.data, row));
                out.push('\n');
            }
        }
    }
    out
}

/// The status line while the Owner column is computed.
const OWNERS_PENDING: &str =
    "Reading the trace for the Owner column (who made each region); the view stays usable";

/// Runs the event loop until the user quits or a stop signal arrives.
pub fn run_loop(
    term: &mut crate::terminal::Term,
    app: &mut App,
    collector: &mut Collector,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    loop {
        while let Ok(r) = collector.rx.try_recv() {
            collector.pending = collector.pending.saturating_sub(1);
            app.on_response(r);
        }
        let searching = app.poll_search() | app.poll_trace() | app.poll_owners();
        app.poll_traces();
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
        if let (Some((every, due)), Some(m)) = (app.auto, app.main.as_ref()) {
            if std::time::Instant::now() >= due && collector.pending == 0 {
                collector.request(Request::Snapshot(m.snap.process.pid));
                app.auto = Some((every, std::time::Instant::now() + every));
            }
        }
        // Wake often while collection runs, to show its result at once.
        let wait = match app.auto {
            _ if collector.pending > 0 || searching => Duration::from_millis(20),
            Some((_, due)) => due
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

/// Replaces every cell whose symbol holds a character a terminal would act
/// on (see [`vmmap_core::text::is_unsafe`]) with U+FFFD: the last guard
/// before crossterm, for text a view forgot to escape.
fn scrub(buf: &mut ratatui::buffer::Buffer) {
    for cell in &mut buf.content {
        if cell.symbol().chars().any(is_unsafe) {
            cell.set_symbol("\u{fffd}");
        }
    }
}
