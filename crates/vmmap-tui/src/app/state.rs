//! The application's data ([`App`]) and the operations on it.

use std::sync::Arc;
use std::time::Duration;

use vmmap_core::figures::Column;
use vmmap_core::model::Snapshot;
use vmmap_core::text::{escape, Escaped};

use super::modes::Mode;
use crate::attach_session::AttachSession;
use crate::collector::{Request, Response};
use crate::details::{row_region, row_text, Row};
use crate::main_view::{Focus, MainView};
use crate::picker::{Picker, PickerTab};
use crate::settings::Settings;
use crate::trace_session::TraceSession;

/// Snapshots kept in a session's history (a 60,000-region snapshot takes
/// about 25 MB, so the oldest go first).
pub const HISTORY_LIMIT: usize = 64;

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The process picker.
    Picker,
    /// The main view of a process.
    Main,
    /// `vmmap top`.
    Top,
    /// The combined view of the processes marked in the picker.
    Combined,
}

/// The whole UI state. The public fields are those the front end
/// ([`crate::run`]) and the tests set or read; the rest is the app's own.
pub struct App {
    /// Current screen.
    pub screen: Screen,
    /// Picker state.
    pub picker: Picker,
    /// Main view, once a process is open.
    pub main: Option<MainView>,
    /// Persistent settings.
    pub(super) settings: Settings,
    /// Input mode.
    pub mode: Mode,
    /// Last search.
    pub(super) last_find: String,
    /// A message for the status line.
    pub message: Option<String>,
    /// A snapshot being collected.
    pub(super) loading: Option<u32>,
    /// Set when the user quits.
    pub quit: bool,
    /// Text waiting to go to the terminal's clipboard (OSC 52).
    pub clipboard: Option<String>,
    /// The main view shows a snapshot loaded from a file, not a live
    /// process.
    pub(super) from_file: bool,
    /// The snapshots of the current process taken (or loaded) this
    /// session, oldest first; F5 appends. At most [`HISTORY_LIMIT`].
    pub(super) history: Vec<Arc<Snapshot>>,
    /// Which snapshot of the history the main view shows.
    pub(super) history_index: usize,
    /// Automatic snapshots: the interval and when the next is due.
    pub(super) auto: Option<(Duration, std::time::Instant)>,
    /// The text of the changes overlay, made when it opens.
    pub(super) diff_text: Vec<String>,
    /// The processes sharing the selected region's pages (`H`).
    pub(super) combined: Vec<String>,
    /// The title of that overlay.
    pub(super) combined_title: String,
    /// The history indices the changes overlay compares.
    pub(super) diff_pair: (usize, usize),
    /// Per-type totals of each snapshot of the history, for the timeline.
    pub(super) history_totals: Vec<crate::timeline_view::Totals>,
    /// The Strings view or the memory search results, while open.
    pub memory_list: Option<crate::memory_view::MemoryList>,
    /// The working set before an Empty Working Set, while the snapshots
    /// that follow it show it coming back.
    pub(super) emptied: Option<u64>,
    /// The fragmentation map, while open.
    pub map: Option<crate::map_view::MapView>,
    /// A memory search running in the background.
    pub(super) search_job: Option<crate::memory_view::SearchJob>,
    /// Where `/proc` is, for reading process memory.
    pub(crate) proc_root: std::path::PathBuf,
    /// Programs started from the Launch tab that still run.
    pub traces: Vec<TraceSession>,
    /// Processes attached to with `a`, being recorded.
    pub attaches: Vec<AttachSession>,
    /// The file the shown snapshots were loaded from (it may hold a
    /// trace: `T` analyses it).
    pub file: Option<std::path::PathBuf>,
    /// Trace files of programs started from the Launch tab, by PID (kept
    /// after they exit, for `T`).
    pub(super) trace_files: Vec<(u32, crate::trace_jobs::TraceSource)>,
    /// The Trace view, kept when closed so that `T` shows it again at once.
    pub(super) trace: Option<crate::trace_view::TraceView>,
    /// The Owner column of the shown snapshot of a traced file, being
    /// computed.
    pub owners_job: Option<crate::owners_job::OwnersJob>,
    /// Owner columns computed so far (None: the file holds no trace of
    /// that snapshot's process).
    pub(super) owners: std::collections::HashMap<
        crate::owners_job::OwnersKey,
        Option<Arc<vmmap_trace::region_owners::SnapshotOwners>>,
    >,
    /// `vmmap top`, when started so (Ctrl+P in the main view goes back).
    pub top: Option<crate::top_view::TopView>,
    /// The help screen was opened from the Trace view (Esc goes back there).
    pub(super) help_over_trace: bool,
    pub(super) last_click: Option<(u16, u16)>,
    /// The combined view of the processes marked in the picker, once
    /// made.
    pub combined_view: Option<crate::combined_view::CombinedView>,
    /// The main view was opened from the combined view (Esc goes back).
    pub(super) from_combined: bool,
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
            attaches: Vec::new(),
            file: None,
            trace_files: Vec::new(),
            trace: None,
            owners_job: None,
            owners: std::collections::HashMap::new(),
            help_over_trace: false,
            last_click: None,
            top: None,
            combined_view: None,
            from_combined: false,
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

    /// Starts on `vmmap top`.
    pub fn top(settings: Settings, start: crate::top_view::TopStart) -> App {
        let mut app = App::new(settings, None);
        app.top = Some(crate::top_view::TopView::new(start));
        app.screen = Screen::Top;
        app
    }

    /// Enter in `top`: opens the selected process in the main view.
    pub(super) fn open_top_selected(&mut self) -> Vec<Request> {
        let Some(r) = self.top.as_ref().and_then(|t| t.selected_row()) else {
            return Vec::new();
        };
        let (pid, name) = (r.proc.pid, r.proc.name.clone());
        self.loading = Some(pid);
        self.message = Some(format!("Collecting {pid} ({})…", Escaped(&name)));
        vec![Request::Snapshot(pid)]
    }

    /// Enter in the combined view: the selected process's main view, from
    /// the snapshot the combination was made of (F5 reads it again); Esc
    /// comes back.
    pub(super) fn open_combined_selected(&mut self) {
        let Some(snap) = self
            .combined_view
            .as_ref()
            .and_then(|v| v.selected_snapshot())
        else {
            return;
        };
        self.history_totals = vec![crate::timeline_view::Totals::of(&snap)];
        self.history = vec![Arc::clone(&snap)];
        self.history_index = 0;
        self.auto = None;
        self.from_file = false;
        self.main = Some(MainView::new(snap, Duration::ZERO));
        self.from_combined = true;
        self.screen = Screen::Main;
        self.message = Some("Esc: back to the combined view".into());
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

    /// For a history loaded from a traced run's file: the timeline's
    /// totals without the tracing agent's regions, as the Summary counts
    /// them (only the trace's facts are read, no event). A trace that
    /// cannot be read leaves the totals whole, and says so.
    pub fn count_agent_apart(&mut self) {
        let Some(path) = self.file.as_ref() else {
            return;
        };
        let snaps = self.history.iter().map(|s| &**s);
        match vmmap_trace::region_owners::agent_regions_all(path, snaps) {
            Ok(agent) => {
                self.history_totals = self
                    .history
                    .iter()
                    .zip(&agent)
                    .map(|(s, a)| crate::timeline_view::Totals::without_agent(s, a))
                    .collect();
            }
            Err(e) => {
                self.message = Some(format!(
                    "{}: {e}; the timeline counts the tracing agent's memory with the program's",
                    path.display()
                ));
            }
        }
    }

    /// Shows snapshot `i` of the history, keeping the view state.
    pub(super) fn show_history(&mut self, i: usize) {
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
    pub(super) fn refresh_compare(&mut self) {
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

    pub(super) fn history_status(&self) -> String {
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
            Response::Top(Ok(procs)) => {
                if let Some(t) = self.top.as_mut() {
                    t.take(procs);
                }
            }
            Response::Top(Err(e)) => self.message = Some(format!("Cannot sample: {e}")),
            Response::Combined(pids, r) => {
                self.message = None;
                match r {
                    Ok((c, snaps, skipped)) => {
                        self.message = (!skipped.is_empty()).then(|| {
                            format!(
                                "Skipped {}",
                                skipped
                                    .iter()
                                    .map(|s| Escaped(s).to_string())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )
                        });
                        let new = crate::combined_view::CombinedView::new(c, snaps, skipped, pids);
                        match self.combined_view.as_mut() {
                            Some(v) if v.pids == new.pids => v.replace(new),
                            _ => self.combined_view = Some(new),
                        }
                        self.screen = Screen::Combined;
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
                                self.from_combined = false;
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

    /// Enter in the Launch tab: starts the program under the agent (or
    /// for snapshots only), watches it on a thread that appends a
    /// snapshot every second, and opens its live view.
    pub(super) fn launch(&mut self) -> Vec<Request> {
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
        let warning = run.warning.clone();
        let held = run.recording().ok().map(Arc::new);
        self.trace_files.push((
            pid,
            crate::trace_jobs::TraceSource {
                path: output.clone(),
                held,
            },
        ));
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
        self.message = Some(match warning {
            Some(w) => format!("Started {program} (pid {pid}): {w}"),
            None => format!(
                "Started {program} (pid {pid}), tracing into {}; collecting…",
                output.display()
            ),
        });
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

    /// `a`: attaches to the process on screen and records its
    /// allocations from now on (the Trace view opens once the agent runs
    /// and follows the file); on a process attached to, detaches.
    pub(super) fn toggle_attach(&mut self) {
        let Some(m) = self.main.as_ref() else { return };
        if self.from_file {
            self.message =
                Some("Attaching needs a live process; this snapshot was loaded from a file".into());
            return;
        }
        let pid = m.snap.process.pid;
        if let Some(s) = self.attaches.iter().find(|s| s.pid == pid) {
            // The session says when the agent has finished (poll_attaches).
            s.detach();
            self.message = None;
            return;
        }
        if let Some(t) = self.traces.iter().find(|t| t.pid == pid) {
            self.message = Some(format!(
                "{pid} is traced already: it was started from the Launch tab into {} (T shows it)",
                t.output.display()
            ));
            return;
        }
        let name = m.snap.process.name.clone();
        let agent = match vmmap_trace::launch::find_agent(None) {
            Ok(a) => a,
            Err(e) => {
                self.message = Some(format!("Cannot attach to {pid}: {e}"));
                return;
            }
        };
        let (output, file) = match crate::attach_session::create_output(&name, pid) {
            Ok(o) => o,
            Err(e) => {
                self.message = Some(format!("Cannot attach to {pid}: {e}"));
                return;
            }
        };
        // Read back through this descriptor, never by the name.
        let held = std::fs::File::open(vmmap_core::regular::by_fd(&file))
            .ok()
            .map(Arc::new);
        match AttachSession::start(
            pid,
            name,
            output.clone(),
            file,
            agent,
            self.proc_root.clone(),
        ) {
            Ok(s) => {
                self.trace_files
                    .push((pid, crate::trace_jobs::TraceSource { path: output, held }));
                self.message = None;
                self.attaches.push(s);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&output);
                self.message = Some(format!("Cannot attach to {pid}: {e}"));
            }
        }
    }

    /// Takes in the attach sessions' news: a refusal or the process's end
    /// goes to the status line; once the agent runs, the Trace view of
    /// the process on screen opens; the Trace view follows the file of a
    /// session while it records.
    pub fn poll_attaches(&mut self) {
        let mut i = 0;
        while i < self.attaches.len() {
            if let Some((msg, wrote)) = self.attaches[i].poll() {
                let s = self.attaches.remove(i);
                if !wrote {
                    self.trace_files
                        .retain(|(p, f)| !(*p == s.pid && f.path == s.output));
                }
                if let Some(t) = self.trace.as_mut().filter(|t| t.source.path == s.output) {
                    t.note = Some(msg.clone());
                }
                self.message = Some(msg);
                continue;
            }
            let s = &mut self.attaches[i];
            i += 1;
            if !s.attached() || s.announced {
                continue;
            }
            s.announced = true;
            let pid = s.pid;
            let shown = self
                .main
                .as_ref()
                .is_some_and(|m| m.snap.process.pid == pid);
            if shown && self.screen == Screen::Main && self.mode == Mode::Normal {
                self.open_trace_with(false);
            }
        }
        let trace_shown = self.mode == Mode::Trace;
        if let Some(t) = self.trace.as_mut() {
            let live = self
                .attaches
                .iter()
                .find(|s| s.output == t.source.path)
                .map(|s| s.live());
            t.follow(live, trace_shown);
        }
    }

    /// The line saying what the attach session of the process on screen
    /// does, if there is one.
    pub(super) fn attach_line(&self) -> Option<String> {
        let pid = self.main.as_ref()?.snap.process.pid;
        let s = self.attaches.iter().find(|s| s.pid == pid)?;
        Some(s.live().line())
    }

    pub(super) fn open_selected(&mut self) -> Vec<Request> {
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

    /// `T`: the Trace view of the shown process's trace file (the file it
    /// was loaded from, or the one its Launch-tab session writes). With a
    /// region selected in the Details, it also lists the allocations
    /// inside that region.
    pub(super) fn open_trace(&mut self) {
        self.open_trace_with(true);
    }

    /// [`App::open_trace`]; without `region`, whatever is selected.
    fn open_trace_with(&mut self, region: bool) {
        let Some(m) = self.main.as_ref() else { return };
        let pid = m.snap.process.pid;
        let source = if self.from_file {
            self.file.clone().map(crate::trace_jobs::TraceSource::named)
        } else {
            self.trace_files
                .iter()
                .rev()
                .find(|(p, _)| *p == pid)
                .map(|(_, f)| f.clone())
        };
        let Some(source) = source else {
            self.message = Some(if self.from_file {
                "The trace of this snapshot's file is not known: open the file with `vmmap open FILE -i` or Ctrl+O".into()
            } else {
                format!("No trace of {pid}: start a program from the Launch tab (Ctrl+P, F2) or with `vmmap run`, then press T")
            });
            return;
        };
        let region = (region && m.focus == Focus::Details)
            .then(|| m.details.rows.get(m.details.cursor.selected))
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
            t.source.path == source.path
                && t.region.as_ref().map(|r| (r.0, r.1)) == region.as_ref().map(|r| (r.0, r.1))
                && t.error.is_none()
                && std::fs::metadata(t.source.read_at()).is_ok_and(|m| m.len() == t.file_len)
        });
        if !same {
            self.trace = Some(crate::trace_view::TraceView::of_source(source, region));
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
                        self.message = Some(crate::trace_jobs::cache_note(&t.source.path, e));
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
                    m.set_owners(o.clone());
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
    pub(super) fn live_selected_start(&mut self, live: &str, gap: &str) -> Option<u64> {
        let m = self.main.as_ref()?;
        if self.from_file {
            self.message = Some(format!("{live}; this snapshot was loaded from a file"));
            return None;
        }
        let &row = m.details.rows.get(m.details.cursor.selected)?;
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
    pub(super) fn open_shared_with(&mut self) {
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
    pub(super) fn open_strings(&mut self) {
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
    pub(super) fn search_memory(&mut self, query: &str) {
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
    pub(super) fn empty_working_set(&mut self) -> Vec<Request> {
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

    pub(super) fn open_diff(&mut self) {
        if self.history_index == 0 {
            self.message =
                Some("No earlier snapshot to compare with: press F5 to take another".into());
            return;
        }
        self.open_diff_between(self.history_index - 1, self.history_index);
    }

    /// Opens the changes overlay for snapshots `a` and `b` of the history.
    pub(super) fn open_diff_between(&mut self, a: usize, b: usize) {
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
    pub(super) fn save_as(&self, changes: bool, path: &str) -> std::io::Result<()> {
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

    pub(super) fn save_history(&mut self) {
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

    pub(super) fn open_file(&mut self, path: &str) {
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
        self.count_agent_apart();
        self.trace = None;
        self.auto = None;
        self.screen = Screen::Main;
        self.message = Some(format!(
            "Opened {path}: {} snapshot(s){problem}",
            self.history.len()
        ));
    }

    pub(super) fn find_next(&mut self, backwards: bool) {
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
}

pub(super) fn save_note(s: &Settings) -> String {
    match s.save() {
        Ok(p) => format!(" (saved in {})", p.display()),
        Err(e) => format!(" (not saved: {e})"),
    }
}

/// The Details table as tab-separated text, for copying and saving; names
/// and paths escaped (vmmap_core::text), so that none holds a tab or a
/// line break of its own.
pub(super) fn table_text(m: &MainView) -> String {
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
pub(super) const OWNERS_PENDING: &str =
    "Reading the trace for the Owner column (who made each region); the view stays usable";
