//! The timeline of the session's snapshots: one stacked bar per snapshot,
//! split by memory type in the type colours, for the working set or the
//! committed total. The user picks one snapshot to view, or marks one and
//! picks another to compare them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Clear, Widget};
use ratatui::Frame;
use vmmap_core::model::Snapshot;
use vmmap_core::timeline::TYPES;

use crate::settings::Settings;

/// Per-type totals of one snapshot, computed once when it joins the
/// history (a Summary of 60,000 regions is too slow to redo every frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Working set per type, in `TYPES` order.
    pub ws: Vec<u64>,
    /// Committed per type, in `TYPES` order.
    pub committed: Vec<u64>,
    /// When the snapshot was taken.
    pub taken_at_unix_ns: u64,
}

impl Totals {
    /// The totals of a snapshot, every region the program's.
    pub fn of(snap: &Snapshot) -> Totals {
        Totals::without_agent(snap, &[])
    }

    /// The totals of a traced run's snapshot without the tracing agent's
    /// regions (flagged by index, as [`vmmap_core::summary::Summary::with_agent`]
    /// takes them): the figures of `vmmap timeline` and of the report's
    /// timeline, from the same function.
    pub fn without_agent(snap: &Snapshot, agent: &[bool]) -> Totals {
        let p = vmmap_core::timeline::snapshot_point(snap, 1, agent);
        let by_type = p.by_type.unwrap_or_default();
        Totals {
            ws: by_type.iter().map(|t| t.working_set).collect(),
            committed: by_type.iter().map(|t| t.committed).collect(),
            taken_at_unix_ns: snap.taken_at_unix_ns,
        }
    }
}

/// What the timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineState {
    /// The selected snapshot.
    pub selected: usize,
    /// A snapshot marked for comparison.
    pub mark: Option<usize>,
    /// Committed instead of working set.
    pub committed: bool,
}

/// Draws the timeline over `area`.
pub fn draw(
    f: &mut Frame<'_>,
    area: Rect,
    totals: &[Totals],
    st: TimelineState,
    settings: &Settings,
) {
    f.render_widget(Clear, area);
    let what = if st.committed {
        "Committed"
    } else {
        "Working set"
    };
    let block = Block::default().borders(Borders::ALL).title(format!(
        " {what} over {} snapshot(s) — ←/→ select, Enter view, m mark, d compare, c committed/WS, Esc closes ",
        totals.len()
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    Chart {
        totals,
        st,
        settings,
    }
    .render(inner, f.buffer_mut());
}

struct Chart<'a> {
    totals: &'a [Totals],
    st: TimelineState,
    settings: &'a Settings,
}

impl Widget for Chart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let n = self.totals.len();
        if n == 0 || area.height < 4 || area.width < 4 {
            return;
        }
        let values = |t: &Totals| {
            if self.st.committed {
                t.committed.clone()
            } else {
                t.ws.clone()
            }
        };
        let max = self
            .totals
            .iter()
            .map(|t| values(t).iter().sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1);
        // Two lines below the bars: the cursor and mark, and the label.
        let chart_h = area.height - 2;
        let col_w = (area.width / n as u16).clamp(1, 6);
        // With more snapshots than columns, show the ones around the
        // selection.
        let fit = (area.width / col_w) as usize;
        let first = self
            .st
            .selected
            .saturating_sub(fit.saturating_sub(1))
            .min(n.saturating_sub(fit));
        for (k, i) in (first..n).take(fit).enumerate() {
            let x = area.x + k as u16 * col_w;
            let vals = values(&self.totals[i]);
            // Cumulative rounding keeps the stack's height exact.
            let mut acc = 0u128;
            let mut prev_h = 0u16;
            for (ti, &v) in vals.iter().enumerate() {
                acc += u128::from(v);
                let h = ((acc * u128::from(chart_h)) / u128::from(max)) as u16;
                let colour = self.settings.colour(TYPES[ti]);
                let glyph = self.settings.glyph(TYPES[ti]);
                for y in prev_h..h {
                    for dx in 0..col_w.saturating_sub(u16::from(col_w > 1)) {
                        let cell = &mut buf[(x + dx, area.y + chart_h - 1 - y)];
                        match glyph {
                            Some(g) => cell.set_char(g),
                            None => cell.set_char(' ').set_bg(colour),
                        };
                    }
                }
                prev_h = h.max(prev_h);
            }
            let marker = match (i == self.st.selected, Some(i) == self.st.mark) {
                (true, true) => "^M",
                (true, false) => "^",
                (false, true) => "M",
                _ => "",
            };
            buf.set_stringn(
                x,
                area.y + chart_h,
                marker,
                col_w as usize,
                Style::default().add_modifier(Modifier::BOLD),
            );
        }
        let sel = &self.totals[self.st.selected];
        let t0 = self.totals[0].taken_at_unix_ns;
        let v: u64 = values(sel).iter().sum();
        let label = format!(
            "snapshot {} of {n} at +{:.1} s: {} {}{}",
            self.st.selected + 1,
            sel.taken_at_unix_ns.saturating_sub(t0) as f64 / 1e9,
            if self.st.committed {
                "committed"
            } else {
                "working set"
            },
            self.settings.units.format(v),
            self.st
                .mark
                .map(|m| format!("  (marked: {})", m + 1))
                .unwrap_or_default()
        );
        buf.set_stringn(
            area.x,
            area.y + chart_h + 1,
            label,
            area.width as usize,
            Style::default(),
        );
    }
}
