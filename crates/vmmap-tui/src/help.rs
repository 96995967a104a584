//! The help screen: keys (drawn from [`crate::app::actions::TABLE`]), then
//! the definition of every type and column (the same text as `vmmap
//! explain`).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;

use crate::app::actions::{SECTIONS, TABLE};

/// All help lines.
pub fn lines() -> Vec<Line<'static>> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut out = vec![Line::styled("KEYS", bold), Line::raw("")];
    for &(scope, title) in SECTIONS {
        out.push(Line::styled(title, bold));
        for e in TABLE.iter().filter(|e| e.scope == scope) {
            out.push(Line::raw(key_line(e.keys, e.what)));
        }
    }
    glossary(
        &mut out,
        "MEMORY TYPES",
        MemoryType::ALL.map(|t| (t.name(), t.definition())),
    );
    glossary(
        &mut out,
        "COLUMNS (bytes, from /proc/PID/smaps)",
        Column::ALL.map(|c| (c.header(), c.definition())),
    );
    out
}

/// A titled list of terms, each in bold over its indented definition.
fn glossary<'a>(
    out: &mut Vec<Line<'static>>,
    title: &'static str,
    terms: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    out.push(Line::raw(""));
    out.push(Line::styled(title, bold));
    for (term, definition) in terms {
        out.push(Line::raw(""));
        out.push(Line::styled(term.to_string(), bold));
        out.push(Line::raw(format!("  {definition}")));
    }
}

/// One line of keys: the keys indented under their section, then what
/// they do.
fn key_line(keys: &str, what: &str) -> String {
    format!("{:<36} {what}", format!("  {keys}"))
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
