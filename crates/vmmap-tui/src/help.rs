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
