//! The Trace view (`T`): the analysis of a traced run, full screen, in
//! tabs — the call tree (top-down or bottom-up, by function or by line),
//! the leaks, the operation history and, when the user came from a region
//! of the Details, the allocations inside that region. As heaptrack's GUI
//! and VMMap's Trace window show them.
//!
//! The analysis runs on a thread ([`crate::trace_jobs`]); until it ends the
//! view says how far it got. The history is read a window at a time.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use vmmap_core::text::{escape, Escaped};
use vmmap_trace::calltree::{self, CallTree, Metric, TreeOptions};
use vmmap_trace::summary::StackCost;
use vmmap_trace::symbols::short_path;

use crate::app::actions::{self, Scope, Trace};
use crate::attach_session::Live;
use crate::list::ListCursor;
use crate::settings::Units;
use crate::trace_jobs::{Analysis, AnalysisJob, HistoryReader, OpRow, Reply, TraceSource, WINDOW};

/// The tabs of the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// The call tree.
    CallTree,
    /// Stacks with live blocks.
    Leaks,
    /// Operations in time order.
    History,
    /// Allocations inside the region the user came from.
    Region,
}

/// What a key asks of the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the view.
    None,
    /// Close the view.
    Close,
    /// Show the help screen.
    Help,
    /// Attach to the process of the main view, or detach.
    Attach,
}

/// Metrics `s` cycles through in the call tree.
const METRICS: [Metric; 5] = [
    Metric::Allocated,
    Metric::Count,
    Metric::Live,
    Metric::Peak,
    Metric::Temporary,
];

/// A list of stacks with their costs and a selection (leaks, region).
#[derive(Default)]
struct StackList {
    items: Vec<(usize, StackCost)>,
    /// What each row says of its stack: its innermost frame, and when
    /// another row has the same one, the first caller that tells them
    /// apart (`leaf (a.c:30) ← work (a.c:20)`).
    labels: Vec<String>,
    cursor: ListCursor,
}

impl StackList {
    /// The list of `items`, each labelled so that no two rows read alike
    /// unless their symbolised stacks are the same (the stack id, shown
    /// beside, still tells those apart).
    fn new(items: Vec<(usize, StackCost)>, a: &Analysis) -> StackList {
        let frames: Vec<Vec<String>> = items
            .iter()
            .map(|(id, _)| {
                let image = a.images.get(*id).copied().unwrap_or(0);
                calltree::stack_frames(&a.info, &a.syms, image, *id as u32)
                    .iter()
                    .map(|f| escape(&f.label(true)).into_owned())
                    .collect()
            })
            .collect();
        let labels = distinguishing_labels(&frames);
        StackList {
            items,
            labels,
            cursor: ListCursor::default(),
        }
    }
}

/// For each stack (its frames' labels, innermost first), its innermost
/// frame, followed by the shallowest caller that no other stack with the
/// same innermost frame has at that depth, when there are such stacks.
fn distinguishing_labels(stacks: &[Vec<String>]) -> Vec<String> {
    use std::collections::HashMap;
    const NONE: &str = "(no call stack)";
    let top = |f: &Vec<String>| f.first().map_or(NONE, String::as_str).to_string();
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in stacks.iter().enumerate() {
        groups.entry(top(f)).or_default().push(i);
    }
    let mut labels: Vec<String> = stacks.iter().map(top).collect();
    for members in groups.values().filter(|m| m.len() > 1) {
        let mut open: Vec<usize> = members.clone();
        let depth = members.iter().map(|&i| stacks[i].len()).max().unwrap_or(0);
        for d in 1..depth {
            let mut count: HashMap<Option<&str>, usize> = HashMap::new();
            for &i in members {
                *count
                    .entry(stacks[i].get(d).map(String::as_str))
                    .or_default() += 1;
            }
            open.retain(|&i| match stacks[i].get(d) {
                Some(f) if count[&Some(f.as_str())] == 1 => {
                    let via = if d > 1 { " \u{2190} \u{2026}" } else { "" };
                    labels[i] = format!("{}{via} \u{2190} {f}", labels[i]);
                    false
                }
                _ => true,
            });
            if open.is_empty() {
                break;
            }
        }
    }
    labels
}

/// The history tab: a window of operations around the selection.
#[derive(Default)]
struct History {
    reader: Option<HistoryReader>,
    /// Operation names shown (all when empty).
    ops: Vec<String>,
    rows: Vec<OpRow>,
    /// Index (among the matches) of `rows[0]`.
    first: u64,
    /// Matching operations in the whole trace, once counted.
    total: Option<u64>,
    selected: u64,
    offset: u64,
    /// The request whose rows are awaited.
    pending: Option<(u64, u64)>,
    /// The first generation of the current filter: totals of older ones
    /// count other operations.
    filter_generation: u64,
    /// Why the history cannot be read.
    error: Option<String>,
}

/// The view's state.
pub struct TraceView {
    /// The trace file: its name, and how it is read.
    pub source: TraceSource,
    /// The file's length when the analysis started (a running program's
    /// file grows: a longer one is analysed again).
    pub file_len: u64,
    /// The region the user came from: start, end, description.
    pub region: Option<(u64, u64, String)>,
    /// The tab shown.
    pub tab: Tab,
    job: Option<AnalysisJob>,
    /// The analysis, once done.
    pub analysis: Option<Analysis>,
    /// Why there is none.
    pub error: Option<String>,
    /// Call tree: allocation sites first.
    pub bottom_up: bool,
    /// Call tree: one node per line.
    pub lines: bool,
    /// Call tree: the sort figure.
    pub metric: Metric,
    tree: Option<CallTree>,
    parent: Vec<usize>,
    expanded: Vec<bool>,
    /// Visible nodes with their depth.
    rows: Vec<(usize, usize)>,
    /// The selection in `rows` and the first row drawn.
    tree_cursor: ListCursor,
    leaks: StackList,
    allocations: StackList,
    history: History,
    /// Typing the operations the history shows.
    pub prompt: Option<String>,
    /// The call stack of an operation: title, lines, scroll.
    pub popup: Option<(String, Vec<String>, u16)>,
    body_height: u16,
    /// The recording of the file in progress (the view follows it).
    pub live: Option<Live>,
    /// What the recording's end said, once it ended.
    pub note: Option<String>,
    /// When the analysis shown (or running) started.
    analysed_at: std::time::Instant,
    /// When a growing file is analysed again: a second after the last
    /// analysis ended, or as long as it took if longer, so that following
    /// a long recording takes at most half of a core.
    next_follow: std::time::Instant,
    /// The recording ended after the analysis started: one more is due.
    stale: bool,
}

/// How often a recording file is analysed again while it grows.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl TraceView {
    /// Starts analysing the file at `path` (and the allocations inside
    /// `region`).
    pub fn new(path: PathBuf, region: Option<(u64, u64, String)>) -> TraceView {
        TraceView::of_source(TraceSource::named(path), region)
    }

    /// [`TraceView::new`] of a file as `source` says to read it.
    pub fn of_source(source: TraceSource, region: Option<(u64, u64, String)>) -> TraceView {
        let file_len = std::fs::metadata(source.read_at()).map_or(0, |m| m.len());
        let job = AnalysisJob::start(source.clone(), region.as_ref().map(|r| (r.0, r.1)));
        TraceView {
            source,
            file_len,
            tab: if region.is_some() {
                Tab::Region
            } else {
                Tab::CallTree
            },
            region,
            job: Some(job),
            analysis: None,
            error: None,
            bottom_up: false,
            lines: false,
            metric: Metric::Allocated,
            tree: None,
            parent: Vec::new(),
            expanded: Vec::new(),
            rows: Vec::new(),
            tree_cursor: ListCursor::default(),
            leaks: StackList::default(),
            allocations: StackList::default(),
            history: History::default(),
            prompt: None,
            popup: None,
            body_height: 10,
            live: None,
            note: None,
            analysed_at: std::time::Instant::now(),
            next_follow: std::time::Instant::now(),
            stale: false,
        }
    }

    /// Follows a file being recorded: `live` says how the recording goes
    /// (None once it ended). While `shown`, the file is analysed again a
    /// second after the last analysis when it has grown, and once more
    /// after the recording ends; the figures shown stay until the new
    /// ones replace them.
    pub fn follow(&mut self, live: Option<Live>, shown: bool) {
        if self.live.is_some() && live.is_none() {
            self.stale = true;
        }
        self.live = live;
        let due =
            self.stale || (self.live.is_some() && std::time::Instant::now() >= self.next_follow);
        if !shown || self.job.is_some() || !due {
            return;
        }
        let len = std::fs::metadata(self.source.read_at()).map_or(0, |m| m.len());
        if len == self.file_len {
            return;
        }
        self.stale = false;
        self.file_len = len;
        self.analysed_at = std::time::Instant::now();
        self.job = Some(AnalysisJob::start(
            self.source.clone(),
            self.region.as_ref().map(|r| (r.0, r.1)),
        ));
    }

    /// Whether the analysis or a history read is still running.
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.history.pending.is_some()
    }

    /// Takes in the analysis when it ends, and history windows as they
    /// come.
    pub fn poll(&mut self) {
        if let Some(r) = self.job.as_ref().and_then(|j| j.poll()) {
            self.job = None;
            let took = self.analysed_at.elapsed();
            self.next_follow = std::time::Instant::now() + took.max(FOLLOW_EVERY);
            match r {
                Ok(a) => {
                    self.error = None;
                    self.set_analysis(a);
                }
                // A later analysis of a growing file that fails keeps the
                // figures of the one before.
                Err(e) if self.analysis.is_none() => self.error = Some(e),
                Err(_) => {}
            }
        }
        self.poll_history();
    }

    /// Waits (a minute at most) for the analysis to end (tests, which
    /// need a settled view).
    #[cfg(any(test, feature = "test-support"))]
    pub fn wait(&mut self) {
        let t0 = std::time::Instant::now();
        while self.job.is_some() && t0.elapsed().as_secs() < 60 {
            self.poll();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits (a minute at most) for the history window asked for and the
    /// count of operations (tests).
    #[cfg(any(test, feature = "test-support"))]
    pub fn wait_history(&mut self) {
        let t0 = std::time::Instant::now();
        while (self.history.pending.is_some() || self.history.total.is_none())
            && self.history.reader.is_some()
            && t0.elapsed().as_secs() < 60
        {
            self.poll_history();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The history window in memory: the index of its first operation
    /// among the matches, and its length (never more than [`WINDOW`]).
    pub fn history_window(&self) -> (u64, usize) {
        (self.history.first, self.history.rows.len())
    }

    /// The selected operation of the history, if its window is loaded.
    pub fn selected_operation(&self) -> Option<&OpRow> {
        self.selected_op()
    }

    fn set_analysis(&mut self, a: Analysis) {
        // A new analysis of a growing file keeps the rows selected where
        // they were.
        let again = self.analysis.is_some();
        let kept = (
            self.tree_cursor.selected,
            self.leaks.cursor.selected,
            self.allocations.cursor.selected,
        );
        let ranked = vmmap_trace::calltree::ranked_stacks;
        self.leaks = StackList::new(ranked(&a.costs, Metric::Live), &a);
        if let Some(r) = &a.region {
            self.allocations = StackList::new(ranked(&r.costs, Metric::Allocated), &a);
            // The selection was where the cursor happened to be, not a
            // heap: start on the call tree.
            if !again && self.tab == Tab::Region && r.summary.allocations == 0 {
                self.tab = Tab::CallTree;
            }
        }
        self.analysis = Some(a);
        self.rebuild_tree();
        if again {
            let last = |n: usize| n.saturating_sub(1);
            self.tree_cursor.selected = kept.0.min(last(self.rows.len()));
            self.leaks.cursor.selected = kept.1.min(last(self.leaks.items.len()));
            self.allocations.cursor.selected = kept.2.min(last(self.allocations.items.len()));
        }
        if self.tab == Tab::History {
            self.start_history();
        }
    }

    /// Builds the call tree for the current direction and granularity,
    /// expanded along its heaviest path.
    fn rebuild_tree(&mut self) {
        let Some(a) = &self.analysis else { return };
        let mut t = CallTree::build(
            &a.info,
            &a.syms,
            &a.costs,
            &a.images,
            TreeOptions {
                bottom_up: self.bottom_up,
                lines: self.lines,
            },
        );
        t.sort(self.metric);
        self.parent = vec![0; t.nodes.len()];
        for (i, n) in t.nodes.iter().enumerate() {
            for &c in &n.children {
                self.parent[c] = i;
            }
        }
        self.expanded = vec![false; t.nodes.len()];
        let mut at = 0;
        loop {
            self.expanded[at] = true;
            match t.nodes[at].children.first() {
                Some(&c) => at = c,
                None => break,
            }
        }
        self.tree = Some(t);
        self.tree_cursor = ListCursor::default();
        self.flatten(None);
    }

    /// Lists the visible nodes; keeps `keep` selected if it is visible.
    fn flatten(&mut self, keep: Option<usize>) {
        self.rows.clear();
        let Some(t) = &self.tree else { return };
        let mut stack = vec![(0usize, 0usize)];
        while let Some((n, depth)) = stack.pop() {
            self.rows.push((n, depth));
            if self.expanded[n] {
                for &c in t.nodes[n].children.iter().rev() {
                    stack.push((c, depth + 1));
                }
            }
        }
        if let Some(k) = keep {
            if let Some(i) = self.rows.iter().position(|r| r.0 == k) {
                self.tree_cursor.selected = i;
            }
        }
        self.tree_cursor.selected = self
            .tree_cursor
            .selected
            .min(self.rows.len().saturating_sub(1));
    }

    fn tabs(&self) -> Vec<Tab> {
        let mut v = vec![Tab::CallTree, Tab::Leaks, Tab::History];
        if self.region.is_some() {
            v.push(Tab::Region);
        }
        v
    }

    fn show_tab(&mut self, t: Tab) {
        self.tab = t;
        if t == Tab::History && self.history.reader.is_none() && self.analysis.is_some() {
            self.start_history();
        }
    }

    fn start_history(&mut self) {
        let Some(a) = &self.analysis else { return };
        match HistoryReader::start(self.source.clone(), a.info.images.clone()) {
            Ok(r) => {
                self.history.reader = Some(r);
                self.request_history(0);
                self.history.filter_generation = self.history.pending.map_or(0, |p| p.0);
            }
            Err(e) => self.history.error = Some(format!("cannot read the history: {e}")),
        }
    }

    fn request_history(&mut self, start: u64) {
        let h = &mut self.history;
        if let Some(r) = h.reader.as_mut() {
            let g = r.request(start, &h.ops);
            h.pending = Some((g, start));
        }
    }

    fn poll_history(&mut self) {
        let h = &mut self.history;
        let Some(r) = h.reader.as_ref() else { return };
        loop {
            let reply = match r.rx.try_recv() {
                Ok(reply) => reply,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    h.error = Some("the history reader stopped".into());
                    h.pending = None;
                    h.reader = None;
                    break;
                }
            };
            match reply {
                Reply::Rows {
                    generation,
                    start,
                    rows,
                } => {
                    if h.pending.is_some_and(|p| p.0 == generation) {
                        h.pending = None;
                        h.first = start;
                        h.rows = rows;
                    }
                }
                Reply::Total { generation, total } => {
                    if generation >= h.filter_generation {
                        h.total = Some(total);
                        h.selected = h.selected.min(total.saturating_sub(1));
                    }
                }
            }
        }
    }

    /// The history's length as far as known: the count once there is
    /// one, else what is loaded plus a window if more may follow.
    fn history_len(&self) -> u64 {
        let h = &self.history;
        h.total.unwrap_or_else(|| {
            let loaded = h.first + h.rows.len() as u64;
            if h.rows.len() == WINDOW || h.pending.is_some() {
                loaded + WINDOW as u64
            } else {
                loaded
            }
        })
    }

    /// Asks for the window around the selection when it left the one
    /// loaded.
    fn follow_history(&mut self) {
        let h = &self.history;
        let sel = h.selected;
        let loaded = sel >= h.first && sel < h.first + h.rows.len() as u64;
        let asked = h
            .pending
            .is_some_and(|(_, s)| sel >= s && sel < s + WINDOW as u64);
        if !loaded && !asked {
            self.request_history(sel.saturating_sub(WINDOW as u64 / 2));
        }
    }

    fn selected_op(&self) -> Option<&OpRow> {
        let h = &self.history;
        let i = h.selected.checked_sub(h.first)?;
        h.rows.get(usize::try_from(i).ok()?)
    }

    /// Frames of a stack, one line each.
    fn frame_lines(&self, image: u32, stack: u32) -> Vec<String> {
        let Some(a) = &self.analysis else {
            return Vec::new();
        };
        let frames = calltree::stack_frames(&a.info, &a.syms, image, stack);
        let mut out: Vec<String> = frames
            .iter()
            .map(|f| {
                let at = match (&f.file, f.line) {
                    (Some(file), Some(l)) => format!("  {}:{l}", Escaped(short_path(file))),
                    _ => String::new(),
                };
                let inl = if f.inlined { " [inlined]" } else { "" };
                format!("{}{inl}{at}", Escaped(&f.function))
            })
            .collect();
        if out.is_empty() {
            out.push("(no call stack recorded)".into());
        }
        if a.info
            .stacks
            .get(stack as usize)
            .is_some_and(|s| s.truncated)
        {
            out.push("(truncated: the unwinder stopped here)".into());
        }
        out
    }

    /// Handles a key.
    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if let Some(p) = self.prompt.as_mut() {
            match k.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    let ops: Vec<String> = p
                        .split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    self.prompt = None;
                    self.set_filter(ops);
                }
                KeyCode::Backspace => {
                    p.pop();
                }
                KeyCode::Char('u') if ctrl => p.clear(),
                KeyCode::Char(c) if !ctrl => p.push(c),
                _ => {}
            }
            return Action::None;
        }
        if let Some((_, lines, s)) = self.popup.as_mut() {
            match k.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => self.popup = None,
                KeyCode::Down | KeyCode::Char('j') => {
                    *s = (*s + 1).min(lines.len().saturating_sub(1) as u16)
                }
                KeyCode::Up | KeyCode::Char('k') => *s = s.saturating_sub(1),
                _ => {}
            }
            return Action::None;
        }
        match actions::lookup(Scope::Trace, &k) {
            Some(actions::Action::Trace(a)) => self.perform(a, k.code),
            Some(actions::Action::Help) => Action::Help,
            _ => Action::None,
        }
    }

    /// Does what `a` ([`actions::TABLE`]), bound to the key `code`, does
    /// on the tab shown.
    pub fn perform(&mut self, a: Trace, code: KeyCode) -> Action {
        let tabs = self.tabs();
        let at = tabs.iter().position(|t| *t == self.tab).unwrap_or(0);
        match a {
            Trace::Close => return Action::Close,
            Trace::Attach => return Action::Attach,
            Trace::NextTab => self.show_tab(tabs[(at + 1) % tabs.len()]),
            Trace::PreviousTab => self.show_tab(tabs[(at + tabs.len() - 1) % tabs.len()]),
            Trace::Tab => {
                let digit = match code {
                    KeyCode::Char(c) => c.to_digit(10),
                    _ => None,
                };
                let t = digit.and_then(|d| tabs.get((d as usize).checked_sub(1)?));
                if let Some(&t) = t {
                    self.show_tab(t);
                }
            }
            _ if self.analysis.is_none() => {}
            _ => match self.tab {
                Tab::CallTree => self.tree_key(a, code),
                Tab::Leaks if a == Trace::Move => list_key(&mut self.leaks, code, self.body_height),
                Tab::Region if a == Trace::Move => {
                    list_key(&mut self.allocations, code, self.body_height)
                }
                Tab::History => self.history_key(a, code),
                Tab::Leaks | Tab::Region => {}
            },
        }
        Action::None
    }

    /// Shows only the operations named (all when empty).
    pub fn set_filter(&mut self, ops: Vec<String>) {
        let h = &mut self.history;
        h.ops = ops;
        h.total = None;
        h.rows.clear();
        h.first = 0;
        h.selected = 0;
        h.offset = 0;
        self.request_history(0);
        self.history.filter_generation = self.history.pending.map_or(0, |p| p.0);
    }

    fn tree_key(&mut self, a: Trace, code: KeyCode) {
        let Some(&(node, _)) = self.rows.get(self.tree_cursor.selected) else {
            return;
        };
        let has_children = self
            .tree
            .as_ref()
            .is_some_and(|t| !t.nodes[node].children.is_empty());
        match a {
            Trace::Move => {
                let page = self.body_height as usize;
                self.tree_cursor.move_key(code, self.rows.len(), page);
            }
            Trace::Open | Trace::Toggle if has_children => {
                self.expanded[node] = !self.expanded[node];
                self.flatten(Some(node));
            }
            Trace::Expand if has_children => {
                if self.expanded[node] {
                    self.move_tree(1);
                } else {
                    self.expanded[node] = true;
                    self.flatten(Some(node));
                }
            }
            Trace::Collapse => {
                if self.expanded[node] && has_children && node != 0 {
                    self.expanded[node] = false;
                    self.flatten(Some(node));
                } else if node != 0 {
                    self.flatten(Some(self.parent[node]));
                }
            }
            Trace::BottomUp => {
                self.bottom_up = !self.bottom_up;
                self.rebuild_tree();
            }
            Trace::Lines => {
                self.lines = !self.lines;
                self.rebuild_tree();
            }
            Trace::Metric => {
                let i = METRICS.iter().position(|m| *m == self.metric).unwrap_or(0);
                self.metric = METRICS[(i + 1) % METRICS.len()];
                if let Some(t) = self.tree.as_mut() {
                    t.sort(self.metric);
                }
                self.flatten(Some(node));
            }
            _ => {}
        }
    }

    fn move_tree(&mut self, d: isize) {
        self.tree_cursor.move_by(d, self.rows.len());
    }

    fn history_key(&mut self, a: Trace, code: KeyCode) {
        let page = i64::from(self.body_height.max(1));
        let mv = |v: &mut TraceView, d: i64| {
            let last = v.history_len().saturating_sub(1) as i64;
            v.history.selected = (v.history.selected as i64 + d).clamp(0, last.max(0)) as u64;
        };
        match a {
            Trace::Move => match code {
                KeyCode::Down | KeyCode::Char('j') => mv(self, 1),
                KeyCode::Up | KeyCode::Char('k') => mv(self, -1),
                KeyCode::PageDown => mv(self, page),
                KeyCode::PageUp => mv(self, -page),
                KeyCode::Home => self.history.selected = 0,
                KeyCode::End => mv(self, i64::MAX / 2),
                _ => return,
            },
            Trace::Filter => {
                self.prompt = Some(self.history.ops.join(","));
                return;
            }
            Trace::Open => {
                if let Some(op) = self.selected_op().cloned() {
                    let title = format!(
                        " {} {} at +{:.6} s, thread {} — Esc closes ",
                        op.op,
                        op.address.map(|a| format!("{a:#x}")).unwrap_or_default(),
                        op.ns as f64 / 1e9,
                        op.tid
                    );
                    let lines = if op.stack == 0 {
                        vec![format!("({} records no call stack)", op.op)]
                    } else {
                        self.frame_lines(op.image, op.stack)
                    };
                    self.popup = Some((title, lines, 0));
                }
                return;
            }
            _ => return,
        }
        self.follow_history();
    }

    /// Draws the view over `area`.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect, units: Units) {
        if area.height < 4 || area.width < 20 {
            return;
        }
        f.render_widget(Clear, area);
        let rev = Style::default().add_modifier(Modifier::REVERSED);
        let bold = Style::default().add_modifier(Modifier::BOLD);
        // Line 1: file and tabs.
        let name = escape(&self.source.path.file_name().map_or_else(
            || self.source.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ))
        .into_owned();
        let mut spans = vec![ratatui::text::Span::styled(format!(" Trace {name} "), bold)];
        for (i, t) in self.tabs().into_iter().enumerate() {
            let label = match t {
                Tab::CallTree => "Call tree".to_string(),
                Tab::Leaks => "Leaks".to_string(),
                Tab::History => "History".to_string(),
                Tab::Region => "Allocations of the region".to_string(),
            };
            let text = format!(" {} {label} ", i + 1);
            spans.push(if t == self.tab {
                ratatui::text::Span::styled(text, rev)
            } else {
                ratatui::text::Span::raw(text)
            });
            spans.push(ratatui::text::Span::raw("│"));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), row(area, 0));
        // Line 2: totals.
        let totals = match (&self.analysis, &self.error) {
            (Some(a), _) => {
                let s = &a.summary;
                // What went wrong (damage, missing symbols) follows the
                // figures it qualifies.
                let notes: String = a
                    .notes
                    .iter()
                    .map(|n| format!("; {}", Escaped(&n.to_string())))
                    .collect();
                format!(
                    " {} operations: {} allocated in {} calls, peak {}, {} live in {} blocks, {} temporary{notes}",
                    a.operations,
                    amount(units, s.bytes_allocated),
                    s.allocations,
                    amount(units, s.peak_bytes),
                    amount(units, s.live_bytes),
                    s.live_blocks,
                    a.costs.iter().map(|c| c.temporary).sum::<u64>()
                )
            }
            (None, Some(e)) => format!(" {}", Escaped(e)),
            (None, None) => format!(
                " Analysing {}… {} operations read",
                escape(&self.source.path.display().to_string()),
                self.job
                    .as_ref()
                    .map_or(0, |j| j.progress.load(Ordering::Relaxed))
            ),
        };
        f.render_widget(Paragraph::new(totals), row(area, 1));
        // Line 3, while the file is recorded (and after): how it goes.
        let recording = match (&self.live, &self.note) {
            (Some(l), _) => Some(format!(" {}", l.line())),
            (None, Some(n)) => Some(format!(" {}", Escaped(n))),
            (None, None) => None,
        };
        let top = match recording {
            Some(text) if area.height > 4 => {
                f.render_widget(Paragraph::new(text).style(bold), row(area, 2));
                3
            }
            _ => 2,
        };
        let body = Rect {
            y: area.y + top,
            height: area.height - top - 1,
            ..area
        };
        self.body_height = body.height.saturating_sub(1);
        if self.analysis.is_some() {
            match self.tab {
                Tab::CallTree => self.draw_tree(f, body, units),
                Tab::Leaks => self.draw_stacks(f, body, units, false),
                Tab::Region => self.draw_stacks(f, body, units, true),
                Tab::History => self.draw_history(f, body, units),
            }
        }
        // Last line: the prompt, the notes or the keys.
        let status = match &self.prompt {
            Some(p) => format!(
                " Show operations: {p}▏  (names such as malloc,free,mmap; empty shows all; Enter applies, Esc cancels)"
            ),
            None => match self.tab {
                Tab::CallTree => format!(
                    " Enter/→/←:expand  b:{}  l:{}  s:sort ({})  Tab:next tab  ?:help  Esc:back",
                    if self.bottom_up { "top-down" } else { "bottom-up" },
                    if self.lines { "by function" } else { "by line" },
                    metric_name(self.metric)
                ),
                Tab::History => {
                    " ↑/↓ PgUp/PgDn Home/End:move  Enter:call stack  f:filter by operation  Tab:next tab  Esc:back"
                        .to_string()
                }
                _ => " ↑/↓:move (the frames of the selected stack are shown below)  Tab:next tab  ?:help  Esc:back"
                    .to_string(),
            },
        };
        f.render_widget(
            Paragraph::new(status).style(rev),
            row(area, area.height - 1),
        );
        if let Some((title, lines, s)) = &self.popup {
            let w = (lines
                .iter()
                .map(|l| l.len())
                .max()
                .unwrap_or(0)
                .max(title.len()) as u16
                + 4)
            .min(area.width);
            let h = (lines.len() as u16 + 2).min(area.height);
            let r = Rect {
                x: area.x + (area.width - w) / 2,
                y: area.y + (area.height - h) / 2,
                width: w,
                height: h,
            };
            f.render_widget(Clear, r);
            let text: Vec<Line<'_>> = lines.iter().map(|l| Line::raw(l.as_str())).collect();
            f.render_widget(
                Paragraph::new(text)
                    .block(Block::default().borders(Borders::ALL).title(title.as_str()))
                    .scroll((*s, 0)),
                r,
            );
        }
    }

    fn draw_tree(&mut self, f: &mut Frame<'_>, body: Rect, units: Units) {
        let Some(t) = &self.tree else { return };
        let title = format!(
            " Call tree, {}{}, sorted by {}",
            if self.bottom_up {
                "bottom-up (allocation sites first)"
            } else {
                "top-down (callers first)"
            },
            if self.lines { ", by line" } else { "" },
            metric_name(self.metric)
        );
        let mark = |m: Metric| if m == self.metric { "▼" } else { " " };
        let columns = tree_columns(self.metric, body.width as usize);
        let mut header: String = columns
            .iter()
            .map(|&(m, name, w)| format!("{name:>w$}{} ", mark(m)))
            .collect();
        header.push_str(" FUNCTION");
        let h = body.height.saturating_sub(2) as usize;
        self.tree_cursor.scroll_into_view(h);
        let title = title + &rows_shown(&self.tree_cursor, h, self.rows.len());
        let mut lines = vec![
            Line::styled(title, Style::default().add_modifier(Modifier::BOLD)),
            Line::styled(header, Style::default().add_modifier(Modifier::UNDERLINED)),
        ];
        for (i, &(n, depth)) in self.tree_cursor.on_screen(&self.rows, h) {
            let node = &t.nodes[n];
            let c = &node.total;
            let sign = if node.children.is_empty() {
                "  "
            } else if self.expanded[n] {
                "▾ "
            } else {
                "▸ "
            };
            let inl = if node.frame.inlined { " [inlined]" } else { "" };
            let mut text: String = columns
                .iter()
                .map(|&(m, _, w)| {
                    let v = match m {
                        Metric::Allocated => units.format(c.bytes),
                        Metric::Count => c.allocations.to_string(),
                        Metric::Live => units.format(c.live_bytes),
                        Metric::Peak => units.format(c.peak_bytes),
                        _ => c.temporary.to_string(),
                    };
                    format!("{v:>w$}  ")
                })
                .collect();
            text.push_str(&format!(
                " {}{sign}{}{inl}",
                "  ".repeat(depth.min(40)),
                Escaped(&node.frame.label(self.lines)),
            ));
            lines.push(styled_row(text, i == self.tree_cursor.selected));
        }
        f.render_widget(Paragraph::new(lines), body);
    }

    fn draw_stacks(&mut self, f: &mut Frame<'_>, body: Rect, units: Units, region: bool) {
        let Some(a) = &self.analysis else { return };
        let title = if region {
            match (&a.region, &self.region) {
                (Some(r), Some((_, _, what))) => {
                    let s = &r.summary;
                    format!(
                        " Region {:#x}-{:#x} ({}) {what}: {} blocks allocated inside it ({}), {} still live ({}); peak {}",
                        r.start,
                        r.end,
                        amount(units, r.end - r.start),
                        s.allocations,
                        amount(units, s.bytes_allocated),
                        s.live_blocks,
                        amount(units, s.live_bytes),
                        amount(units, s.peak_bytes)
                    )
                }
                _ => " No region".into(),
            }
        } else {
            let exited = a.info.images.iter().all(|i| i.complete());
            format!(
                " {} blocks ({}) {}, from {} call stacks",
                a.summary.live_blocks,
                amount(units, a.summary.live_bytes),
                if exited {
                    "never freed"
                } else {
                    "still allocated (the program had not exited: not all are leaks)"
                },
                self.leaks.items.len()
            )
        };
        // Each row's share of the list's figure: of the bytes allocated
        // in the region, of the bytes still live.
        let whole = if region {
            a.region.as_ref().map_or(0, |r| r.summary.bytes_allocated)
        } else {
            a.summary.live_bytes
        };
        let columns = StackColumn::of(region, body.width < 100);
        let mut header: Vec<String> = columns
            .iter()
            .map(|c| format!("{:>w$}", c.heading(), w = c.width()))
            .collect();
        header.push(format!("{:>7}  ALLOCATED AT", "STACK"));
        let header = header.join(" ");
        let list = if region {
            &mut self.allocations
        } else {
            &mut self.leaks
        };
        // The list above, the selected stack's frames below.
        let list_h = (body.height.saturating_sub(2) / 2).max(1) as usize;
        list.cursor.scroll_into_view(list_h);
        let title = title + &rows_shown(&list.cursor, list_h, list.items.len());
        let mut lines = vec![
            Line::styled(title, Style::default().add_modifier(Modifier::BOLD)),
            Line::styled(header, Style::default().add_modifier(Modifier::UNDERLINED)),
        ];
        for (i, (id, c)) in list.cursor.on_screen(&list.items, list_h) {
            let top = list.labels.get(i).map_or("", String::as_str);
            let mut text: Vec<String> = columns
                .iter()
                .map(|col| format!("{:>w$}", col.cell(c, units, whole), w = col.width()))
                .collect();
            text.push(format!("{:>7}  {top}", format!("#{id}")));
            let text = text.join(" ");
            lines.push(styled_row(text, i == list.cursor.selected));
        }
        if list.items.is_empty() {
            lines.push(Line::raw(if region {
                "  (no block was allocated inside this region)"
            } else {
                "  (no block is still allocated)"
            }));
        }
        let selected = list.items.get(list.cursor.selected).map(|x| x.0);
        f.render_widget(
            Paragraph::new(lines),
            Rect {
                height: (list_h as u16 + 2).min(body.height),
                ..body
            },
        );
        let below = Rect {
            y: body.y + (list_h as u16 + 2).min(body.height),
            height: body.height.saturating_sub(list_h as u16 + 2),
            ..body
        };
        if let (Some(id), true) = (selected, below.height > 0) {
            let image = a.images.get(id).copied().unwrap_or(0);
            let frames = self.frame_lines(image, id as u32);
            let block = Block::default()
                .borders(Borders::TOP)
                .title(" Call stack, innermost first ");
            let text: Vec<Line<'_>> = frames
                .into_iter()
                .map(|l| Line::raw(format!("  {l}")))
                .collect();
            f.render_widget(Paragraph::new(text).block(block), below);
        }
    }

    fn draw_history(&mut self, f: &mut Frame<'_>, body: Rect, units: Units) {
        let h = &mut self.history;
        let title = match (&h.error, h.total) {
            (Some(e), _) => format!(" {e}"),
            (None, Some(t)) => {
                let unknown: Vec<&str> = h
                    .ops
                    .iter()
                    .map(String::as_str)
                    .filter(|o| !vmmap_trace::summary::OPERATIONS.contains(o))
                    .collect();
                format!(
                    " {t} operations{}, in time order{}",
                    if h.ops.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", h.ops.join(", "))
                    },
                    if unknown.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; no operation is called {}: the names are {}",
                            unknown.join(", "),
                            vmmap_trace::summary::OPERATIONS.join(" ")
                        )
                    }
                )
            }
            (None, None) => format!(
                " Reading the history… {} operations read",
                h.reader
                    .as_ref()
                    .map_or(0, |r| r.scanned.load(Ordering::Relaxed))
            ),
        };
        let header = format!(
            "{:>12} {:>8}  {:<14} {:>18} {:>10}  DETAIL",
            "TIME (s)", "TID", "OPERATION", "ADDRESS", "SIZE"
        );
        let rows_h = body.height.saturating_sub(2) as u64;
        if h.selected < h.offset {
            h.offset = h.selected;
        } else if rows_h > 0 && h.selected >= h.offset + rows_h {
            h.offset = h.selected + 1 - rows_h;
        }
        let mut lines = vec![
            Line::styled(title, Style::default().add_modifier(Modifier::BOLD)),
            Line::styled(header, Style::default().add_modifier(Modifier::UNDERLINED)),
        ];
        let end = h.total.map_or(u64::MAX, |t| t);
        for i in h.offset..(h.offset + rows_h).min(end) {
            let r = i
                .checked_sub(h.first)
                .and_then(|k| h.rows.get(usize::try_from(k).ok()?));
            let text = match r {
                Some(r) => format!(
                    "{:>12.6} {:>8}  {:<14} {:>18} {:>10}  {}",
                    r.ns as f64 / 1e9,
                    r.tid,
                    r.op,
                    r.address.map(|a| format!("{a:#x}")).unwrap_or_default(),
                    r.size.map(|s| units.format(s)).unwrap_or_default(),
                    Escaped(&r.detail)
                ),
                None if h.pending.is_some() => format!("{:>12}", "…"),
                None => break,
            };
            lines.push(styled_row(text, i == h.selected));
        }
        f.render_widget(Paragraph::new(lines), body);
    }
}

/// A size in a sentence: zero is "0 B", not blank as in the tables.
fn amount(units: Units, v: u64) -> String {
    if v == 0 {
        "0 B".into()
    } else {
        units.format(v)
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Allocated => "allocated",
        Metric::Count => "calls",
        Metric::Live => "live",
        Metric::Peak => "peak",
        Metric::Temporary => "temporary",
        Metric::LiveBlocks => "live blocks",
    }
}

/// Moves a stack list's selection by a key; a page is half the body,
/// which the list shares with the selected stack's frames.
fn list_key(l: &mut StackList, code: KeyCode, body_height: u16) {
    l.cursor
        .move_key(code, l.items.len(), usize::from(body_height / 2));
}

/// The call tree's figure columns (metric, heading, width) that fit
/// `width` with room for the function names: the column sorted by always
/// stays, then allocated, live, calls, peak and temporary, in that order
/// of importance; they are shown in their usual order.
fn tree_columns(sorted: Metric, width: usize) -> Vec<(Metric, &'static str, usize)> {
    const ALL: [(Metric, &str, usize); 5] = [
        (Metric::Allocated, "ALLOCATED", 10),
        (Metric::Count, "CALLS", 8),
        (Metric::Live, "LIVE", 10),
        (Metric::Peak, "PEAK", 10),
        (Metric::Temporary, "TEMPORARY", 9),
    ];
    /// Room kept for the tree's indentation and function names.
    const NAMES: usize = 21;
    let importance = [
        sorted,
        Metric::Allocated,
        Metric::Live,
        Metric::Count,
        Metric::Peak,
        Metric::Temporary,
    ];
    let mut used = 0;
    let mut kept = Vec::new();
    for m in importance {
        let Some(&(_, _, w)) = ALL.iter().find(|c| c.0 == m) else {
            continue;
        };
        if kept.contains(&m) || (used > 0 && used + w + 2 + NAMES > width) {
            continue;
        }
        used += w + 2;
        kept.push(m);
    }
    ALL.into_iter().filter(|c| kept.contains(&c.0)).collect()
}

/// `; rows 11-20 of 312` when a list of `n` rows shows `h` of them from
/// the cursor's first row; nothing when all show.
fn rows_shown(cursor: &ListCursor, h: usize, n: usize) -> String {
    if n <= h || h == 0 {
        String::new()
    } else {
        let (first, last) = cursor.rows_on_screen(h, n);
        format!("; rows {first}-{last} of {n}")
    }
}

fn styled_row(text: String, selected: bool) -> Line<'static> {
    if selected {
        Line::styled(text, Style::default().add_modifier(Modifier::REVERSED))
    } else {
        Line::raw(text)
    }
}

fn row(area: Rect, dy: u16) -> Rect {
    Rect {
        y: area.y + dy,
        height: 1,
        ..area
    }
}

/// A figure column of the Trace view's stack lists.
#[derive(Clone, Copy)]
enum StackColumn {
    /// Bytes allocated at the stack.
    Allocated,
    /// Those bytes as a share of the list's whole.
    AllocatedShare,
    /// Allocation calls at the stack.
    Calls,
    /// Bytes still live.
    Live,
    /// Those bytes as a share of the list's whole.
    LiveShare,
    /// Blocks still live.
    LiveBlocks,
}

impl StackColumn {
    /// The columns of a list: a region's list leads with what was
    /// allocated, the leaks with what is still live; below 100 columns
    /// (`narrow`) the two figures of the other kind give way, so that the
    /// frames keep room.
    fn of(region: bool, narrow: bool) -> &'static [StackColumn] {
        use StackColumn::*;
        match (region, narrow) {
            (true, false) => &[Allocated, AllocatedShare, Calls, Live, LiveBlocks],
            (false, false) => &[Live, LiveShare, LiveBlocks, Allocated, Calls],
            (true, true) => &[Allocated, AllocatedShare, Calls],
            (false, true) => &[Live, LiveShare, LiveBlocks],
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Self::Allocated => "ALLOCATED",
            Self::AllocatedShare | Self::LiveShare => "%",
            Self::Calls => "CALLS",
            Self::Live => "LIVE",
            Self::LiveBlocks => "LIVE BLOCKS",
        }
    }

    fn width(self) -> usize {
        match self {
            Self::Allocated | Self::Live => 10,
            Self::AllocatedShare | Self::LiveShare => 6,
            Self::Calls => 8,
            Self::LiveBlocks => 11,
        }
    }

    /// The cell of stack `c`; a share is of `whole` bytes (blank when
    /// there are none).
    fn cell(self, c: &StackCost, units: Units, whole: u64) -> String {
        let share = |v: u64| {
            if whole == 0 {
                String::new()
            } else {
                format!("{:.1}%", v as f64 * 100.0 / whole as f64)
            }
        };
        match self {
            Self::Allocated => units.format(c.bytes),
            Self::AllocatedShare => share(c.bytes),
            Self::Calls => c.allocations.to_string(),
            Self::Live => units.format(c.live_bytes),
            Self::LiveShare => share(c.live_bytes),
            Self::LiveBlocks => c.live_blocks.to_string(),
        }
    }
}
