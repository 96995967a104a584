//! The keys of the picker, the Launch tab, the main view and the Trace
//! view, in one table ([`TABLE`]): the key handling looks keys up in it and
//! the help screen is drawn from it, so the two cannot disagree. The
//! overlays and prompts ([`super::Mode`], the Trace view's filter prompt and
//! call stack) take their own keys, which their titles and status lines
//! name.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vmmap_core::figures::Column;

use super::modes::{edit_line, Mode};
use super::state::{save_note, table_text, App, Screen};
use crate::clipboard;
use crate::collector::Request;
use crate::details::SortKey;
use crate::launch_form::Field;
use crate::main_view::{Focus, MainView};
use crate::picker::{PickColumn, PickerTab};

/// Where a key is looked up: the screen (or tab) that takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The process list of the picker.
    Picker,
    /// The Launch tab of the picker.
    Launch,
    /// The main view of a process.
    Main,
    /// The Trace view (`T`), whichever tab it shows.
    Trace,
    /// `vmmap top`.
    Top,
    /// The combined view of marked processes.
    Combined,
}

/// A key as the table names it. Shift is part of the character (`S` is
/// Shift+S). A key pressed with Ctrl that has no `Ctrl` binding is looked
/// up without it (Ctrl+Q quits like `q`), as the terminal may add Ctrl to
/// keys the user did not mean it for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A key, with or without Ctrl.
    Plain(KeyCode),
    /// Ctrl and a character (`' '` for Ctrl+Space).
    Ctrl(char),
    /// Typing: any character without Ctrl but Space, and Backspace.
    Typing,
}

impl Key {
    /// Whether the key event `k` is this key (Ctrl fallback aside).
    fn matches(self, k: &KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Plain(code) => k.code == code,
            Key::Ctrl(c) => ctrl && k.code == KeyCode::Char(c),
            Key::Typing => match k.code {
                KeyCode::Char(c) => !ctrl && c != ' ',
                KeyCode::Backspace => true,
                _ => false,
            },
        }
    }

    /// The key's name as the help writes it.
    pub fn name(self) -> String {
        match self {
            Key::Typing => "type".into(),
            Key::Ctrl(' ') | Key::Plain(KeyCode::Null) => "Ctrl+Space".into(),
            Key::Ctrl(c) => format!("Ctrl+{}", c.to_ascii_uppercase()),
            Key::Plain(KeyCode::Char(' ')) => "Space".into(),
            Key::Plain(KeyCode::Char(c)) => c.to_string(),
            Key::Plain(KeyCode::BackTab) => "Shift+Tab".into(),
            Key::Plain(KeyCode::PageUp) => "PgUp".into(),
            Key::Plain(KeyCode::PageDown) => "PgDn".into(),
            Key::Plain(code) => code.to_string(),
        }
    }
}

/// What a key does, by the screen that takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Opens the help screen.
    Help,
    /// Quits vmmap.
    Quit,
    /// A key of the process list.
    Picker(Pick),
    /// A key of the Launch tab.
    Launch(Launch),
    /// A key of the main view.
    Main(Main),
    /// A key of the Trace view.
    Trace(Trace),
    /// A key of `vmmap top`.
    Top(Top),
    /// A key of the combined view.
    Combined(Comb),
}

/// The combined view's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comb {
    /// Moves the selection by the key.
    Move,
    /// Opens the selected process's main view.
    Open,
    /// Sorts by the next column.
    SortNext,
    /// Sorts by the previous column.
    SortPrevious,
    /// Reverses the sort.
    Reverse,
    /// Combines the processes again.
    Refresh,
    /// Goes back to the picker.
    Picker,
}

/// `vmmap top`'s actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Top {
    /// Moves the selection by the key.
    Move,
    /// Opens the selected process in the main view.
    Open,
    /// Sorts by the next column.
    SortNext,
    /// Sorts by the previous column.
    SortPrevious,
    /// Reverses the sort.
    Reverse,
    /// Opens the filter prompt.
    Filter,
    /// Clears the filter.
    ClearFilter,
    /// Pauses or resumes the refreshes.
    Pause,
    /// Refreshes now.
    Refresh,
}

/// The process list's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Adds the character to the filter (Backspace: removes the last).
    Filter,
    /// Moves the selection by the key (Up, Down, a page, the ends).
    Move,
    /// Opens the selected process, or combines the marked ones.
    Open,
    /// Marks or unmarks the selected process.
    Mark,
    /// Empties the filter.
    ClearFilter,
    /// Sorts by the next column.
    SortNext,
    /// Reverses the sort.
    Reverse,
    /// Reads the list of processes again.
    Refresh,
    /// Clears the filter, else goes back to the main view, else quits.
    Back,
    /// Shows the Launch tab.
    LaunchTab,
}

/// The Launch tab's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// Edits the field by the key (a character, Backspace).
    Edit,
    /// Empties the field.
    Clear,
    /// Goes to the next field.
    NextField,
    /// Goes to the previous field.
    PreviousField,
    /// Toggles Snapshot only on its field, types a space in the others.
    Space,
    /// Starts the program.
    Start,
    /// Goes back to the process list.
    Processes,
}

/// The main view's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Main {
    /// Switches the focus between the Summary and the Details.
    Focus,
    /// Moves the selection by the key.
    Move,
    /// Expands or collapses the selected group by the key.
    Expand,
    /// Scrolls the figure columns left or right (`<`/`>`, Left/Right in
    /// the Summary).
    ScrollColumns,
    /// Expands every group.
    ExpandAll,
    /// Collapses every group.
    CollapseAll,
    /// Sorts by the next column.
    SortNext,
    /// Sorts by the previous column.
    SortPrevious,
    /// Reverses the sort.
    Reverse,
    /// Shows or hides the free regions.
    Free,
    /// Takes a new snapshot.
    Snapshot,
    /// Starts or pauses a snapshot every second.
    Automatic,
    /// Shows the snapshot before in the history.
    Earlier,
    /// Shows the snapshot after in the history.
    Later,
    /// Opens the timeline of the history.
    Timeline,
    /// Opens the changes from the snapshot before.
    Changes,
    /// Turns compare mode on or off.
    Compare,
    /// Saves the history to a file.
    SaveHistory,
    /// Asks for a file to open.
    Open,
    /// Asks for an address to go to.
    Goto,
    /// Opens the strings of the selected region.
    Strings,
    /// Asks what to search the process's memory for.
    SearchMemory,
    /// Opens the fragmentation map.
    Map,
    /// Asks whether to empty the working set.
    EmptyWorkingSet,
    /// Lists the processes mapping the selected region's pages.
    SharedWith,
    /// Asks for text to find in the Details.
    Find,
    /// Finds the next match.
    FindNext,
    /// Finds the previous match.
    FindPrevious,
    /// Copies the selected address.
    CopyAddress,
    /// Copies the Details table.
    CopyTable,
    /// Asks for a file to save the shown snapshot to.
    Save,
    /// Opens the column chooser.
    Columns,
    /// Switches to the next units.
    Units,
    /// Opens the Trace view.
    Trace,
    /// Attaches to the process to trace it, or detaches.
    Attach,
    /// Goes back to the process picker.
    Picker,
    /// Goes back to the combined view, when the process was opened from it.
    Back,
}

/// The Trace view's actions; what one does may depend on the tab shown
/// ([`crate::trace_view::TraceView::perform`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// Shows the next tab.
    NextTab,
    /// Shows the previous tab.
    PreviousTab,
    /// Shows the tab of the digit pressed.
    Tab,
    /// Moves the selection by the key.
    Move,
    /// Call tree: expands or collapses; history: shows the call stack.
    Open,
    /// Call tree: expands or collapses.
    Toggle,
    /// Call tree: expands, or moves into an expanded node.
    Expand,
    /// Call tree: collapses, or goes to the caller.
    Collapse,
    /// Call tree: bottom-up or top-down.
    BottomUp,
    /// Call tree: a node per source line or per function.
    Lines,
    /// Call tree: sorts by the next figure.
    Metric,
    /// History: asks which operations to show.
    Filter,
    /// Attaches to the process of the main view, or detaches.
    Attach,
    /// Goes back to the main view.
    Close,
}

/// How far a binding reaches beyond the section that lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Only its section's screen.
    Screen,
    /// Every screen (not inside an overlay or a prompt).
    EveryScreen,
    /// Everywhere, overlays and prompts included.
    AnyMode,
}

/// One key and what it does.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The key.
    pub key: Key,
    /// What it does.
    pub action: Action,
    /// Where it works.
    pub reach: Reach,
}

/// One line of the help: its keys as written there, what they do, and the
/// bindings behind them.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The section (screen) that lists the line.
    pub scope: Scope,
    /// The keys, as the help writes them (it may add a mouse action).
    pub keys: &'static str,
    /// What they do.
    pub what: &'static str,
    /// The bindings behind the line.
    pub bindings: &'static [Binding],
}

/// The help's title of each section, in the order shown.
pub const SECTIONS: &[(Scope, &str)] = &[
    (Scope::Picker, "Process picker"),
    (Scope::Launch, "Launch tab (picker, F2)"),
    (Scope::Main, "Main view"),
    (Scope::Trace, "Trace view (T)"),
    (Scope::Top, "vmmap top"),
    (
        Scope::Combined,
        "Combined view (marked processes, Enter in the picker)",
    ),
];

const fn on(key: Key, action: Action) -> Binding {
    Binding {
        key,
        action,
        reach: Reach::Screen,
    }
}

const fn ch(c: char) -> Key {
    Key::Plain(KeyCode::Char(c))
}

const fn code(c: KeyCode) -> Key {
    Key::Plain(c)
}

const DOWN: Key = code(KeyCode::Down);
const UP: Key = code(KeyCode::Up);
const PG_DN: Key = code(KeyCode::PageDown);
const PG_UP: Key = code(KeyCode::PageUp);
const HOME: Key = code(KeyCode::Home);
const END: Key = code(KeyCode::End);
const ENTER: Key = code(KeyCode::Enter);
const TAB: Key = code(KeyCode::Tab);
const BACK_TAB: Key = code(KeyCode::BackTab);
const ESC: Key = code(KeyCode::Esc);

const fn pick(key: Key, a: Pick) -> Binding {
    on(key, Action::Picker(a))
}

const fn launch(key: Key, a: Launch) -> Binding {
    on(key, Action::Launch(a))
}

const fn main(key: Key, a: Main) -> Binding {
    on(key, Action::Main(a))
}

const fn trace(key: Key, a: Trace) -> Binding {
    on(key, Action::Trace(a))
}

const fn top(key: Key, a: Top) -> Binding {
    on(key, Action::Top(a))
}

const fn comb(key: Key, a: Comb) -> Binding {
    on(key, Action::Combined(a))
}

/// The keys `ListCursor::move_key` moves a list by, each bound to
/// `action`: one list for every screen whose rows they move.
const fn moves(action: Action) -> [Binding; 8] {
    [
        on(UP, action),
        on(DOWN, action),
        on(ch('j'), action),
        on(ch('k'), action),
        on(PG_UP, action),
        on(PG_DN, action),
        on(HOME, action),
        on(END, action),
    ]
}

const fn entry(
    scope: Scope,
    keys: &'static str,
    what: &'static str,
    bindings: &'static [Binding],
) -> Entry {
    Entry {
        scope,
        keys,
        what,
        bindings,
    }
}

/// Every key of the picker, the Launch tab, the main view and the Trace
/// view, in the order of the help.
#[rustfmt::skip]
pub const TABLE: &[Entry] = &[
    entry(Scope::Picker, "type, Space, Backspace", "filter by name, command line, user or PID",
        &[pick(Key::Typing, Pick::Filter), pick(ch(' '), Pick::Filter)]),
    entry(Scope::Picker, "Ctrl+U", "clear the filter",
        &[pick(Key::Ctrl('u'), Pick::ClearFilter)]),
    entry(Scope::Picker, "Up/Down PgUp/PgDn Home/End", "move",
        &[
            pick(UP, Pick::Move), pick(DOWN, Pick::Move), pick(PG_UP, Pick::Move),
            pick(PG_DN, Pick::Move), pick(HOME, Pick::Move), pick(END, Pick::Move),
        ]),
    entry(Scope::Picker, "Enter, click twice", "open the selected process; with two or more marked, combine those",
        &[pick(ENTER, Pick::Open)]),
    entry(Scope::Picker, "Insert, Ctrl+T", "mark or unmark the selected process (marks stay while the filter changes; the title counts them)",
        &[pick(code(KeyCode::Insert), Pick::Mark), pick(Key::Ctrl('t'), Pick::Mark)]),
    entry(Scope::Picker, "Tab / Shift+Tab, click a header", "sort by the next column / reverse",
        &[pick(TAB, Pick::SortNext), pick(BACK_TAB, Pick::Reverse)]),
    entry(Scope::Picker, "F5, Ctrl+R", "refresh the list now (it refreshes itself every 2 s)",
        &[pick(code(KeyCode::F(5)), Pick::Refresh), pick(Key::Ctrl('r'), Pick::Refresh)]),
    entry(Scope::Picker, "Esc", "clear the filter, then quit (or back to the process)",
        &[pick(ESC, Pick::Back)]),
    entry(Scope::Picker, "F2", "switch to the Launch tab (launch and trace a new process)",
        &[pick(code(KeyCode::F(2)), Pick::LaunchTab)]),
    entry(Scope::Launch, "type, Backspace, Ctrl+U", "edit the field (Arguments: '...' and \"...\" quote)",
        &[launch(Key::Typing, Launch::Edit), launch(Key::Ctrl('u'), Launch::Clear)]),
    entry(Scope::Launch, "Tab/Down, Shift+Tab/Up", "next / previous field",
        &[
            launch(TAB, Launch::NextField), launch(DOWN, Launch::NextField),
            launch(BACK_TAB, Launch::PreviousField), launch(UP, Launch::PreviousField),
        ]),
    entry(Scope::Launch, "Space", "toggle Snapshot only (no agent, snapshots only)",
        &[launch(ch(' '), Launch::Space)]),
    entry(Scope::Launch, "Enter", "start it traced and open its live view; a snapshot a second goes to the file",
        &[launch(ENTER, Launch::Start)]),
    entry(Scope::Launch, "Esc, F2", "back to the process list (quitting leaves a traced program running)",
        &[launch(ESC, Launch::Processes), launch(code(KeyCode::F(2)), Launch::Processes)]),
    entry(Scope::Main, "Tab / Shift+Tab", "switch between Summary and Details",
        &[main(TAB, Main::Focus), main(BACK_TAB, Main::Focus)]),
    entry(Scope::Main, "Up/Down j/k PgUp/PgDn Home/End", "move; in the Summary this filters the Details by type",
        &moves(Action::Main(Main::Move))),
    entry(Scope::Main, "Enter, +/-, Right/Left", "expand or collapse a group (image, stack, arena)",
        &[
            main(ENTER, Main::Expand), main(ch('+'), Main::Expand), main(ch('-'), Main::Expand),
            main(code(KeyCode::Right), Main::Expand), main(code(KeyCode::Left), Main::Expand),
        ]),
    entry(Scope::Main, "< / >", "scroll the figure columns when they do not all fit (Left/Right too, in the Summary)",
        &[main(ch('<'), Main::ScrollColumns), main(ch('>'), Main::ScrollColumns)]),
    entry(Scope::Main, "E / C", "expand all / collapse all",
        &[main(ch('E'), Main::ExpandAll), main(ch('C'), Main::CollapseAll)]),
    entry(Scope::Main, "s / S, click a header", "sort by the next / previous column; again reverses",
        &[main(ch('s'), Main::SortNext), main(ch('S'), Main::SortPrevious)]),
    entry(Scope::Main, "r", "reverse the sort",
        &[main(ch('r'), Main::Reverse)]),
    entry(Scope::Main, "f", "show or hide free regions",
        &[main(ch('f'), Main::Free)]),
    entry(Scope::Main, "F5", "take a new snapshot, added to the history (selection and expansion are kept)",
        &[main(code(KeyCode::F(5)), Main::Snapshot)]),
    // Terminals send Ctrl+Space as NUL, crossterm as Null.
    entry(Scope::Main, "Ctrl+Space", "take a snapshot every second / pause",
        &[main(Key::Ctrl(' '), Main::Automatic), main(code(KeyCode::Null), Main::Automatic)]),
    entry(Scope::Main, "[ / ]", "previous / next snapshot of the history",
        &[main(ch('['), Main::Earlier), main(ch(']'), Main::Later)]),
    entry(Scope::Main, "t", "timeline of the history: Left/Right select, Enter view, m mark, d compare",
        &[main(ch('t'), Main::Timeline)]),
    entry(Scope::Main, "d", "changes from the previous snapshot (by type and by region)",
        &[main(ch('d'), Main::Changes)]),
    entry(Scope::Main, "D", "compare mode: Summary deltas, changed regions marked in the Details",
        &[main(ch('D'), Main::Compare)]),
    entry(Scope::Main, "Ctrl+S / Ctrl+O", "save the history to a .vmmap file / open one",
        &[main(Key::Ctrl('s'), Main::SaveHistory), main(Key::Ctrl('o'), Main::Open)]),
    entry(Scope::Main, "g", "go to an address: selects the region (or free gap) holding it",
        &[main(ch('g'), Main::Goto)]),
    entry(Scope::Main, "Ctrl+T", "strings in the selected region's memory (reads it: may show secrets); / filters, Enter goes to one",
        &[main(Key::Ctrl('t'), Main::Strings)]),
    entry(Scope::Main, "F", "search the process's memory: text, re:REGEX or hex:de ad be ef (also from the Strings view)",
        &[main(ch('F'), Main::SearchMemory)]),
    entry(Scope::Main, "m", "fragmentation map: arrows and n/N move the cursor over regions and gaps, Enter goes to one",
        &[main(ch('m'), Main::Map)]),
    entry(Scope::Main, "W", "empty the working set (asks first), then a snapshot every second shows it come back",
        &[main(ch('W'), Main::EmptyWorkingSet)]),
    entry(Scope::Main, "H", "processes mapping the same pages as this region (root)",
        &[main(ch('H'), Main::SharedWith)]),
    entry(Scope::Main, "/ or Ctrl+F, then n / N", "find text in the Details; next / previous",
        &[
            main(ch('/'), Main::Find), main(Key::Ctrl('f'), Main::Find), main(ch('n'), Main::FindNext),
            main(ch('N'), Main::FindPrevious),
        ]),
    entry(Scope::Main, "y / Y", "copy the selected address / the Details table (OSC 52)",
        &[main(ch('y'), Main::CopyAddress), main(ch('Y'), Main::CopyTable)]),
    entry(Scope::Main, "w", "save: the Details table (.txt), the snapshot (.json .csv .vmmap); in the changes, the diff (.txt .json .csv)",
        &[main(ch('w'), Main::Save)]),
    entry(Scope::Main, "c", "choose columns (saved in the config file)",
        &[main(ch('c'), Main::Columns)]),
    entry(Scope::Main, "u", "units: human, KiB, bytes (saved)",
        &[main(ch('u'), Main::Units)]),
    entry(Scope::Main, "T", "Trace view: call tree, leaks, history of the traced run",
        &[main(ch('T'), Main::Trace)]),
    entry(Scope::Main, "a", "attach: trace allocations live (Trace view); a detaches",
        &[main(ch('a'), Main::Attach)]),
    entry(Scope::Main, "Ctrl+P", "back to the process picker",
        &[main(Key::Ctrl('p'), Main::Picker)]),
    entry(Scope::Main, "Esc", "back to the combined view (a process opened from it)",
        &[main(ESC, Main::Back)]),
    entry(Scope::Main, "? or F1", "this help; Esc closes it",
        &[
        on(ch('?'), Action::Help),
        Binding { key: code(KeyCode::F(1)), action: Action::Help, reach: Reach::EveryScreen, },
        ]),
    entry(Scope::Main, "q, Ctrl+C", "quit",
        &[
        on(ch('q'), Action::Quit),
        Binding { key: Key::Ctrl('c'), action: Action::Quit, reach: Reach::AnyMode, },
        ]),
    entry(Scope::Trace, "Tab / Shift+Tab, 1-4", "Call tree, Leaks, History, Allocations of the region",
        &[
            trace(TAB, Trace::NextTab), trace(BACK_TAB, Trace::PreviousTab),
            trace(ch('1'), Trace::Tab), trace(ch('2'), Trace::Tab),
            trace(ch('3'), Trace::Tab), trace(ch('4'), Trace::Tab),
        ]),
    entry(Scope::Trace, "Up/Down j/k PgUp/PgDn Home/End", "move",
        &moves(Action::Trace(Trace::Move))),
    entry(Scope::Trace, "Enter, Space", "call tree: expand or collapse",
        &[trace(ENTER, Trace::Open), trace(ch(' '), Trace::Toggle)]),
    entry(Scope::Trace, "Right/+ / Left/-", "call tree: expand / collapse (Left: to the caller)",
        &[
            trace(code(KeyCode::Right), Trace::Expand), trace(ch('+'), Trace::Expand),
            trace(code(KeyCode::Left), Trace::Collapse), trace(ch('-'), Trace::Collapse),
        ]),
    entry(Scope::Trace, "b", "call tree: bottom-up (allocation sites first) / top-down",
        &[trace(ch('b'), Trace::BottomUp)]),
    entry(Scope::Trace, "l", "call tree: one node per source line / per function",
        &[trace(ch('l'), Trace::Lines)]),
    entry(Scope::Trace, "s", "call tree: sort by the next figure",
        &[trace(ch('s'), Trace::Metric)]),
    entry(Scope::Trace, "f or /", "history: only some operations (malloc,mmap...)",
        &[trace(ch('f'), Trace::Filter), trace(ch('/'), Trace::Filter)]),
    entry(Scope::Trace, "Enter (history)", "the call stack of the selected operation",
        &[]),
    entry(Scope::Trace, "a", "attach to the process / detach (the view follows the trace)",
        &[trace(ch('a'), Trace::Attach)]),
    entry(Scope::Trace, "Esc, q, T", "back to the main view (T: back again)",
        &[trace(ESC, Trace::Close), trace(ch('q'), Trace::Close), trace(ch('T'), Trace::Close)]),
    entry(Scope::Trace, "? or F1", "this help",
        &[on(ch('?'), Action::Help)]),
    entry(Scope::Top, "Up/Down j/k PgUp/PgDn Home/End", "move",
        &moves(Action::Top(Top::Move))),
    entry(Scope::Top, "Enter", "open the selected process in the main view (Ctrl+P comes back)",
        &[top(ENTER, Top::Open)]),
    entry(Scope::Top, "< / >, F6", "sort by the previous / next column (the header shows which)",
        &[top(ch('<'), Top::SortPrevious), top(ch('>'), Top::SortNext), top(code(KeyCode::F(6)), Top::SortNext)]),
    entry(Scope::Top, "r, I", "reverse the sort",
        &[top(ch('r'), Top::Reverse), top(ch('I'), Top::Reverse)]),
    entry(Scope::Top, "/", "filter by name, command line, user, container or PID (Enter keeps, Esc clears)",
        &[top(ch('/'), Top::Filter)]),
    entry(Scope::Top, "Esc", "clear the filter",
        &[top(ESC, Top::ClearFilter)]),
    entry(Scope::Top, "Space, p", "pause / resume the refreshes",
        &[top(ch(' '), Top::Pause), top(ch('p'), Top::Pause)]),
    entry(Scope::Top, "F5", "refresh now",
        &[top(code(KeyCode::F(5)), Top::Refresh)]),
    entry(Scope::Top, "? or F1", "this help",
        &[on(ch('?'), Action::Help)]),
    entry(Scope::Top, "q", "quit",
        &[on(ch('q'), Action::Quit)]),
    entry(Scope::Combined, "Up/Down j/k PgUp/PgDn Home/End", "move in the process table",
        &moves(Action::Combined(Comb::Move))),
    entry(Scope::Combined, "Enter, click twice", "open the selected process's main view (Esc comes back)",
        &[comb(ENTER, Comb::Open)]),
    entry(Scope::Combined, "s / S, click a header", "sort the processes by the next / previous column; again reverses",
        &[comb(ch('s'), Comb::SortNext), comb(ch('S'), Comb::SortPrevious)]),
    entry(Scope::Combined, "r", "reverse the sort",
        &[comb(ch('r'), Comb::Reverse)]),
    entry(Scope::Combined, "F5", "combine the processes again",
        &[comb(code(KeyCode::F(5)), Comb::Refresh)]),
    entry(Scope::Combined, "Esc, Ctrl+P", "back to the process picker (the marks stay)",
        &[comb(ESC, Comb::Picker), comb(Key::Ctrl('p'), Comb::Picker)]),
    entry(Scope::Combined, "? or F1", "this help",
        &[on(ch('?'), Action::Help)]),
    entry(Scope::Combined, "q", "quit",
        &[on(ch('q'), Action::Quit)]),
];

/// The bindings that work in `scope`: its own and those that reach every
/// screen or every mode.
pub fn bindings(scope: Scope) -> impl Iterator<Item = &'static Binding> {
    TABLE.iter().flat_map(move |e| {
        e.bindings.iter().filter(move |b| {
            (e.scope == scope && b.reach == Reach::Screen) || b.reach != Reach::Screen
        })
    })
}

/// What `k` does in `scope`: a `Ctrl` binding first, then the key without
/// Ctrl.
pub fn lookup(scope: Scope, k: &KeyEvent) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let find = |want_ctrl: bool| {
        bindings(scope)
            .find(|b| matches!(b.key, Key::Ctrl(_)) == want_ctrl && b.key.matches(k))
            .map(|b| b.action)
    };
    if ctrl {
        find(true).or_else(|| find(false))
    } else {
        find(false)
    }
}

/// What `k` does inside an overlay or a prompt, before they see it.
pub fn lookup_any_mode(k: &KeyEvent) -> Option<Action> {
    TABLE
        .iter()
        .flat_map(|e| e.bindings)
        .find(|b| b.reach == Reach::AnyMode && b.key.matches(k))
        .map(|b| b.action)
}

impl App {
    /// The keys of the picker, the Launch tab and the main view, looked up
    /// in [`TABLE`].
    pub(super) fn on_screen_key(&mut self, k: KeyEvent) -> Vec<Request> {
        let scope = match self.screen {
            Screen::Picker if self.picker.tab == PickerTab::Launch => Scope::Launch,
            Screen::Picker => Scope::Picker,
            Screen::Main => Scope::Main,
            Screen::Top => Scope::Top,
            Screen::Combined => Scope::Combined,
        };
        if let Some(t) = self
            .top
            .as_mut()
            .filter(|t| t.editing && scope == Scope::Top)
        {
            t.on_filter_key(k);
            return Vec::new();
        }
        // Esc stops a running memory search (its status line says so).
        if scope == Scope::Main && k.code == KeyCode::Esc {
            if let Some(j) = self.search_job.as_ref() {
                j.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                return Vec::new();
            }
        }
        match lookup(scope, &k) {
            Some(a) => self.perform(a, k),
            None => Vec::new(),
        }
    }

    /// Does what `action` does, `k` being the key that asked for it.
    pub(super) fn perform(&mut self, action: Action, k: KeyEvent) -> Vec<Request> {
        match action {
            // From top and the combined view, the help opens at their keys.
            Action::Help if matches!(self.screen, Screen::Top | Screen::Combined) => {
                let scope = if self.screen == Screen::Top {
                    Scope::Top
                } else {
                    Scope::Combined
                };
                let title = SECTIONS
                    .iter()
                    .find(|(s, _)| *s == scope)
                    .map_or("", |(_, t)| t);
                let at = crate::help::lines()
                    .iter()
                    .position(|l| l.spans.iter().any(|s| s.content == title))
                    .unwrap_or(0);
                self.mode = Mode::Help(u16::try_from(at).unwrap_or(0));
            }
            Action::Help => self.mode = Mode::Help(0),
            Action::Quit => self.quit = true,
            Action::Picker(a) => return self.picker_action(a, k),
            Action::Launch(a) => return self.launch_action(a, k),
            Action::Main(a) => return self.main_action(a, k),
            // Looked up and done by the view itself (`TraceView::on_key`),
            // which no other scope reaches.
            Action::Trace(_) => {}
            Action::Top(a) => return self.top_action(a, k),
            Action::Combined(a) => return self.combined_action(a, k),
        }
        Vec::new()
    }

    /// Does what `action`, bound to `k` in the combined view, does.
    fn combined_action(&mut self, action: Comb, k: KeyEvent) -> Vec<Request> {
        if action == Comb::Open {
            self.open_combined_selected();
            return Vec::new();
        }
        if action == Comb::Picker {
            self.screen = Screen::Picker;
            return vec![Request::Processes];
        }
        let Some(v) = self.combined_view.as_mut() else {
            self.screen = Screen::Picker;
            return Vec::new();
        };
        match action {
            Comb::Move => {
                let page = v.body_area.height as usize;
                v.cursor.move_key(k.code, v.rows.len(), page);
            }
            Comb::SortNext => v.step_sort(false),
            Comb::SortPrevious => v.step_sort(true),
            Comb::Reverse => {
                v.sort.flip();
                v.resort();
            }
            Comb::Refresh => {
                self.message = Some(format!("Combining {} processes…", v.pids.len()));
                return vec![Request::Combined(v.pids.clone())];
            }
            Comb::Open | Comb::Picker => {}
        }
        Vec::new()
    }

    /// Does what `action`, bound to `k` in `vmmap top`, does.
    fn top_action(&mut self, action: Top, k: KeyEvent) -> Vec<Request> {
        if action == Top::Open {
            return self.open_top_selected();
        }
        let Some(t) = self.top.as_mut() else {
            return Vec::new();
        };
        match action {
            Top::Move => t.move_key(k.code),
            Top::SortNext => t.step_sort(false),
            Top::SortPrevious => t.step_sort(true),
            Top::Reverse => t.flip(),
            Top::Filter => t.editing = true,
            Top::ClearFilter => {
                t.filter.clear();
                t.resort();
            }
            Top::Pause => {
                t.paused = !t.paused;
                self.message = Some(if t.paused {
                    "Paused (Space or p resumes)".into()
                } else {
                    "Resumed".into()
                });
            }
            Top::Refresh => {
                t.due = std::time::Instant::now();
                return vec![Request::Top(t.select.clone(), t.pss)];
            }
            Top::Open => {}
        }
        Vec::new()
    }

    fn picker_action(&mut self, action: Pick, k: KeyEvent) -> Vec<Request> {
        let p = &mut self.picker;
        match action {
            Pick::Refresh => return vec![Request::Processes],
            Pick::LaunchTab => p.toggle_tab(),
            Pick::Filter => {
                match k.code {
                    KeyCode::Char(c) => p.filter.push(c),
                    _ => drop(p.filter.pop()),
                }
                p.refilter(p.selected_pid());
            }
            Pick::Back | Pick::ClearFilter if !p.filter.is_empty() => {
                p.filter.clear();
                p.refilter(p.selected_pid());
            }
            Pick::ClearFilter => {}
            Pick::Back if self.main.is_some() => self.screen = Screen::Main,
            Pick::Back => self.quit = true,
            Pick::Move => {
                let page = p.body_area.height as usize;
                p.cursor.move_key(k.code, p.rows.len(), page);
            }
            Pick::SortNext => {
                p.sort.step(&PickColumn::ALL, false);
                p.refilter(p.selected_pid());
            }
            Pick::Reverse => {
                p.sort.flip();
                p.refilter(p.selected_pid());
            }
            // Marks are kept when the filter changes: the title counts
            // them, and those the filter hides too.
            Pick::Mark => p.toggle_mark(),
            Pick::Open if p.marked.len() > 1 => {
                let pids = p.marked.clone();
                self.message = Some(format!("Combining {} processes…", pids.len()));
                return vec![Request::Combined(pids)];
            }
            Pick::Open => return self.open_selected(),
        }
        Vec::new()
    }

    fn launch_action(&mut self, action: Launch, k: KeyEvent) -> Vec<Request> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let form = &mut self.picker.launch;
        match action {
            Launch::Processes => self.picker.tab = PickerTab::Processes,
            Launch::NextField => form.move_field(false),
            Launch::PreviousField => form.move_field(true),
            Launch::Start => return self.launch(),
            Launch::Space if form.field == Field::SnapshotOnly => {
                form.snapshot_only = !form.snapshot_only;
                form.error = None;
            }
            Launch::Clear => {
                if let Some(t) = form.text_mut(form.field) {
                    t.clear();
                }
            }
            Launch::Space | Launch::Edit => {
                if let Some(t) = form.text_mut(form.field) {
                    // Neither Esc nor Enter is bound to these.
                    let _ = edit_line(t, k.code, ctrl);
                }
            }
        }
        Vec::new()
    }

    /// Does what `action`, bound to `k` in the main view, does.
    fn main_action(&mut self, action: Main, k: KeyEvent) -> Vec<Request> {
        let Some(m) = self.main.as_mut() else {
            self.screen = Screen::Picker;
            return Vec::new();
        };
        let page = m.areas.details_body.height as usize;
        match action {
            Main::Back if self.from_combined && self.combined_view.is_some() => {
                self.screen = Screen::Combined;
            }
            Main::Back => {}
            Main::Picker if self.top.is_some() => self.screen = Screen::Top,
            Main::Picker => {
                self.screen = Screen::Picker;
                return vec![Request::Processes];
            }
            Main::Find => self.mode = Mode::Find(String::new()),
            Main::Goto => self.mode = Mode::Goto(String::new()),
            Main::Strings => self.open_strings(),
            Main::Trace => self.open_trace(),
            Main::Attach => self.toggle_attach(),
            Main::SearchMemory => self.mode = Mode::MemSearch(String::new()),
            Main::SharedWith => self.open_shared_with(),
            Main::Map => {
                self.map = Some(crate::map_view::MapView::new(&m.snap));
                self.mode = Mode::Map;
            }
            Main::EmptyWorkingSet if self.from_file => {
                self.message = Some("Emptying the working set needs a live process".into());
            }
            Main::EmptyWorkingSet => self.mode = Mode::ConfirmEmpty,
            Main::FindNext => self.find_next(false),
            Main::FindPrevious => self.find_next(true),
            Main::Earlier => {
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
            Main::Later => {
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
            Main::Changes => self.open_diff(),
            Main::Compare => {
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
            Main::Timeline => {
                self.mode = Mode::Timeline(crate::timeline_view::TimelineState {
                    selected: self.history_index,
                    mark: None,
                    committed: false,
                })
            }
            Main::SaveHistory => self.save_history(),
            Main::Open => self.mode = Mode::Open(String::new()),
            Main::Automatic => {
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
            Main::Snapshot if self.from_file => {
                self.message = Some("This snapshot was loaded from a file; F5 takes new snapshots of live processes only (Ctrl+P to pick one)".into());
            }
            Main::Snapshot => {
                let pid = m.snap.process.pid;
                self.loading = Some(pid);
                self.message = Some(format!("Collecting {pid}…"));
                return vec![Request::Snapshot(pid)];
            }
            Main::Focus => {
                m.focus = if m.focus == Focus::Summary {
                    Focus::Details
                } else {
                    Focus::Summary
                }
            }
            Main::Free => m.toggle_free(),
            Main::ExpandAll => {
                m.details.set_all_expanded(&m.snap, &m.data, true);
            }
            Main::CollapseAll => {
                m.details.set_all_expanded(&m.snap, &m.data, false);
            }
            Main::SortNext | Main::SortPrevious => {
                let back = action == Main::SortPrevious;
                let cols = self.settings.visible_columns();
                match m.focus {
                    Focus::Summary => {
                        let keys: Vec<Option<Column>> = std::iter::once(None)
                            .chain(cols.into_iter().map(Some))
                            .collect();
                        m.summary_sort.step(&keys, back);
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
                        m.details.sort.step(&keys, back);
                        m.details.resort(&m.snap, &m.data);
                    }
                }
            }
            Main::Reverse => match m.focus {
                Focus::Summary => {
                    m.summary_sort.flip();
                    m.resort_summary();
                }
                Focus::Details => {
                    m.details.sort.flip();
                    m.details.resort(&m.snap, &m.data);
                }
            },
            Main::CopyAddress => {
                let addr = m
                    .details
                    .rows
                    .get(m.details.cursor.selected)
                    .map(|&r| crate::details::row_start(&m.snap, &m.data, r));
                if let Some(a) = addr {
                    self.clipboard = Some(format!("{a:#x}"));
                    self.message = Some(format!("Copied {a:#x} (OSC 52)"));
                }
            }
            Main::CopyTable => {
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
            Main::Save => {
                self.mode = Mode::Save(false, format!("vmmap-{}.txt", m.snap.process.pid));
            }
            Main::Columns => self.mode = Mode::Columns(0),
            Main::Units => {
                self.settings.units = self.settings.units.next();
                self.message = Some(format!(
                    "Units: {}{}",
                    self.settings.units.name(),
                    save_note(&self.settings)
                ));
            }
            Main::Expand
                if m.focus == Focus::Summary
                    && matches!(k.code, KeyCode::Left | KeyCode::Right) =>
            {
                let by = if k.code == KeyCode::Left { -1 } else { 1 };
                m.scroll_columns(by, &self.settings);
            }
            Main::ScrollColumns => {
                let by = if k.code == KeyCode::Char('<') { -1 } else { 1 };
                m.scroll_columns(by, &self.settings);
            }
            Main::Move | Main::Expand => move_key(m, k.code, page),
        }
        Vec::new()
    }
}

pub(super) fn move_key(m: &mut MainView, code: KeyCode, page: usize) {
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
            KeyCode::Enter => m.details.set_expanded(&m.snap, &m.data, None),
            KeyCode::Char('+') | KeyCode::Right => {
                m.details.set_expanded(&m.snap, &m.data, Some(true))
            }
            KeyCode::Char('-') | KeyCode::Left => {
                m.details.set_expanded(&m.snap, &m.data, Some(false))
            }
            _ => {
                let d = &mut m.details;
                d.cursor.move_key(code, d.rows.len(), page);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key names of a line of the help: its words, each cut at `/`
    /// (`Up/Down`, `+/-`), separators dropped.
    fn named(keys: &str) -> Vec<String> {
        keys.split([' ', ','])
            .filter(|w| !w.is_empty())
            .flat_map(|w| {
                if w == "/" {
                    vec![w.to_string()]
                } else {
                    w.split('/').flat_map(range).collect()
                }
            })
            .filter(|w| !w.is_empty())
            .collect()
    }

    /// A range of characters (`1-4`) as its keys, another word as itself.
    fn range(w: &str) -> Vec<String> {
        match w.as_bytes() {
            &[a, b'-', b] if a < b => (a..=b).map(|c| char::from(c).to_string()).collect(),
            _ => vec![w.to_string()],
        }
    }

    #[test]
    fn every_key_of_the_table_is_named_in_the_help() {
        let help: Vec<String> = crate::help::lines()
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        for e in TABLE {
            let line = format!("  {}", e.keys);
            assert!(
                help.iter()
                    .any(|h| h.starts_with(&line) && h.trim_end().ends_with(e.what)),
                "the help has no line for {:?}",
                e.keys
            );
            for b in e.bindings {
                assert!(
                    named(e.keys).contains(&b.key.name()),
                    "{:?} ({:?}) is not named in the help's {:?}",
                    b.key.name(),
                    b.action,
                    e.keys
                );
            }
        }
        // Every section is shown, under its title.
        for (_, title) in SECTIONS {
            assert!(help.iter().any(|h| h == title), "no section {title:?}");
        }
    }

    /// Whether a key event could match both keys.
    fn overlap(a: Key, b: Key) -> bool {
        match (a, b) {
            (Key::Typing, Key::Plain(KeyCode::Char(c)))
            | (Key::Plain(KeyCode::Char(c)), Key::Typing) => c != ' ',
            (Key::Typing, Key::Plain(KeyCode::Backspace))
            | (Key::Plain(KeyCode::Backspace), Key::Typing) => true,
            _ => a == b,
        }
    }

    #[test]
    fn no_two_actions_share_a_key_on_one_screen() {
        for &(scope, title) in SECTIONS {
            let all: Vec<&Binding> = bindings(scope).collect();
            for (i, a) in all.iter().enumerate() {
                for b in &all[i + 1..] {
                    assert!(
                        !overlap(a.key, b.key),
                        "{title}: {} is bound twice ({:?} and {:?})",
                        a.key.name(),
                        a.action,
                        b.action
                    );
                }
            }
        }
    }

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn ctrl_bindings_come_first_then_the_key_without_ctrl() {
        let ctrl = KeyModifiers::CONTROL;
        let none = KeyModifiers::NONE;
        let f = |c| KeyCode::Char(c);
        assert_eq!(
            lookup(Scope::Main, &key(f('f'), ctrl)),
            Some(Action::Main(Main::Find))
        );
        assert_eq!(
            lookup(Scope::Main, &key(f('f'), none)),
            Some(Action::Main(Main::Free))
        );
        // No Ctrl+Q binding: Ctrl+Q is q.
        assert_eq!(lookup(Scope::Main, &key(f('q'), ctrl)), Some(Action::Quit));
        // Typing never takes a Ctrl key; in the picker's filter Space is
        // a character, Insert marks and Ctrl+U clears.
        assert_eq!(lookup(Scope::Picker, &key(f('x'), ctrl)), None);
        assert_eq!(
            lookup(Scope::Picker, &key(f(' '), none)),
            Some(Action::Picker(Pick::Filter))
        );
        assert_eq!(
            lookup(Scope::Picker, &key(KeyCode::Insert, none)),
            Some(Action::Picker(Pick::Mark))
        );
        assert_eq!(
            lookup(Scope::Picker, &key(f('u'), ctrl)),
            Some(Action::Picker(Pick::ClearFilter))
        );
        // F1 works on every screen, Ctrl+C in every mode.
        for scope in [Scope::Picker, Scope::Launch, Scope::Main, Scope::Trace] {
            assert_eq!(lookup(scope, &key(KeyCode::F(1), none)), Some(Action::Help));
        }
        assert_eq!(lookup_any_mode(&key(f('c'), ctrl)), Some(Action::Quit));
        assert_eq!(lookup_any_mode(&key(f('c'), none)), None);
    }
}
