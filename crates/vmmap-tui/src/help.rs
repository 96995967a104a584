//! The help screen: keys, then the definition of every type and column
//! (the same text as `vmmap explain`).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;

const KEYS: &[(&str, &str)] = &[
    ("Process picker", ""),
    ("  type", "filter by name, command line, user or PID"),
    ("  Up/Down PgUp/PgDn Home/End", "move"),
    ("  Enter, click twice", "open the selected process"),
    (
        "  Space, then Enter",
        "mark processes; Enter combines them (shared pages once)",
    ),
    (
        "  Tab / Shift+Tab, click a header",
        "sort by the next column / reverse",
    ),
    ("  F5, Ctrl+R", "refresh the list"),
    (
        "  Esc",
        "clear the filter, then quit (or back to the process)",
    ),
    ("  F2", "switch to the Launch tab (launch and trace a new process)"),
    ("Launch tab (picker, F2)", ""),
    (
        "  type, Backspace, Ctrl+U",
        "edit the field (Arguments: '...' and \"...\" quote)",
    ),
    ("  Tab/Down, Shift+Tab/Up", "next / previous field"),
    ("  Space", "toggle Snapshot only (no agent, snapshots only)"),
    (
        "  Enter",
        "start it traced and open its live view; a snapshot a second goes to the file",
    ),
    (
        "  Esc, F2",
        "back to the process list (quitting leaves a traced program running)",
    ),
    ("Main view", ""),
    ("  Tab", "switch between Summary and Details"),
    (
        "  Up/Down j/k PgUp/PgDn Home/End",
        "move; in the Summary this filters the Details by type",
    ),
    (
        "  Enter, +/-, Right/Left",
        "expand or collapse a group (image, stack, arena)",
    ),
    ("  E / C", "expand all / collapse all"),
    (
        "  s / S, click a header",
        "sort by the next / previous column; again reverses",
    ),
    ("  r", "reverse the sort"),
    ("  f", "show or hide free regions"),
    (
        "  F5",
        "take a new snapshot, added to the history (selection and expansion are kept)",
    ),
    ("  Ctrl+Space", "take a snapshot every second / pause"),
    ("  [ / ]", "previous / next snapshot of the history"),
    ("  t", "timeline of the history: Left/Right select, Enter view, m mark, d compare"),
    ("  d", "changes from the previous snapshot (by type and by region)"),
    ("  D", "compare mode: Summary deltas, changed regions marked in the Details"),
    ("  Ctrl+S / Ctrl+O", "save the history to a .vmmap file / open one"),
    (
        "  g",
        "go to an address: selects the region (or free gap) holding it",
    ),
    (
        "  Ctrl+T",
        "strings in the selected region's memory (reads it: may show secrets); / filters, Enter goes to one",
    ),
    (
        "  F",
        "search the process's memory: text, re:REGEX or hex:de ad be ef (also from the Strings view)",
    ),
    (
        "  m",
        "fragmentation map: arrows and n/N move the cursor over regions and gaps, Enter goes to one",
    ),
    (
        "  W",
        "empty the working set (asks first), then a snapshot every second shows it come back",
    ),
    (
        "  H",
        "processes mapping the same pages as this region (root)",
    ),
    (
        "  / or Ctrl+F, then n / N",
        "find text in the Details; next / previous",
    ),
    (
        "  y / Y",
        "copy the selected address / the Details table (OSC 52)",
    ),
    ("  w", "save: the Details table (.txt), the snapshot (.json .csv .vmmap); in the changes, the diff (.txt .json .csv)"),
    ("  c", "choose columns (saved in the config file)"),
    ("  u", "units: human, KiB, bytes (saved)"),
    (
        "  T",
        "Trace view: call tree, leaks, history of the traced run",
    ),
    ("  Ctrl+P", "back to the process picker"),
    ("  ? or F1", "this help; Esc closes it"),
    ("  q, Ctrl+C", "quit"),
    ("Trace view (T)", ""),
    (
        "  Tab / Shift+Tab, 1-4",
        "Call tree, Leaks, History, Allocations of the region",
    ),
    ("  Up/Down j/k PgUp/PgDn Home/End", "move"),
    (
        "  Enter, Right / Left",
        "call tree: expand / collapse (Left: to the caller)",
    ),
    ("  b", "call tree: bottom-up (allocation sites first) / top-down"),
    ("  l", "call tree: one node per source line / per function"),
    (
        "  s",
        "call tree: sort by the next figure",
    ),
    (
        "  f or /",
        "history: only some operations (malloc,mmap...)",
    ),
    ("  Enter (history)", "the call stack of the selected operation"),
    ("  Esc, q, T", "back to the main view (T: back again)"),
];

/// All help lines.
pub fn lines() -> Vec<Line<'static>> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut out = vec![Line::styled("KEYS", bold), Line::raw("")];
    for (k, v) in KEYS {
        if v.is_empty() {
            out.push(Line::styled(k.to_string(), bold));
        } else {
            out.push(Line::raw(format!("{k:<36} {v}")));
        }
    }
    out.push(Line::raw(""));
    out.push(Line::styled("MEMORY TYPES", bold));
    for t in MemoryType::ALL {
        out.push(Line::raw(""));
        out.push(Line::styled(t.name().to_string(), bold));
        out.push(Line::raw(format!("  {}", t.definition())));
    }
    out.push(Line::raw(""));
    out.push(Line::styled("COLUMNS (bytes, from /proc/PID/smaps)", bold));
    for c in Column::ALL {
        out.push(Line::raw(""));
        out.push(Line::styled(c.header().to_string(), bold));
        out.push(Line::raw(format!("  {}", c.definition())));
    }
    out
}

/// Draws the help over `area`, scrolled by `scroll` lines but never past
/// the last page; returns the scroll used.
pub fn draw(f: &mut Frame<'_>, area: Rect, scroll: u16) -> u16 {
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Help — Up/Down/PgUp/PgDn scroll, Esc closes ");
    let text = Paragraph::new(lines()).wrap(Wrap { trim: false });
    let inner = block.inner(area);
    // Never past the last page.
    let total = u16::try_from(text.line_count(inner.width)).unwrap_or(u16::MAX);
    let scroll = scroll.min(total.saturating_sub(inner.height));
    f.render_widget(text.block(block).scroll((scroll, 0)), area);
    scroll
}
