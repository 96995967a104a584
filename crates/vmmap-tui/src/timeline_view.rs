//! The timeline of the session's snapshots, drawn as the HTML report's
//! is: one stacked bar per snapshot, split by memory type in the type
//! colours (or fill characters without colour), for the working set or
//! the committed total; placed by the time it was taken, so that a pause
//! between snapshots shows as a gap; with a size axis, a time axis in
//! units chosen by the span, and a key that says what a cell is worth.
//! The user picks one snapshot to view, or marks one and picks another to
//! compare them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Clear, Widget};
use ratatui::Frame;
use vmmap_core::model::{MemoryType, Snapshot};
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

/// Cells per type of one bar, bytes `values` at `cell` bytes a cell, by
/// the largest remainder: the bar gets its total rounded to whole cells,
/// each type the whole cells it fills, and the cells left go to the types
/// with the largest parts of a cell left over (the larger value first on
/// a tie). So a type's height never depends on where it sits in the
/// stack, and a type gets a cell only when it earns one: 2.9M beside 36K
/// at 4M a cell gives the 2.9M a cell and the 36K none. Hand-written:
/// a dozen lines, not worth a dependency.
pub fn cells(values: &[u64], cell: u64) -> Vec<u16> {
    let cell = u128::from(cell.max(1));
    let total: u128 = values.iter().map(|&v| u128::from(v)).sum();
    let whole = (total + cell / 2) / cell;
    let mut out: Vec<u16> = values
        .iter()
        .map(|&v| (u128::from(v) / cell).min(u128::from(u16::MAX)) as u16)
        .collect();
    let given: u128 = out.iter().map(|&c| u128::from(c)).sum();
    let mut order: Vec<usize> = (0..values.len())
        .filter(|&i| u128::from(values[i]) % cell > 0)
        .collect();
    order.sort_by(|&a, &b| {
        let rem = |i: usize| u128::from(values[i]) % cell;
        rem(b)
            .cmp(&rem(a))
            .then(values[b].cmp(&values[a]))
            .then(a.cmp(&b))
    });
    for &i in order.iter().take(whole.saturating_sub(given) as usize) {
        out[i] = out[i].saturating_add(1);
    }
    out
}

/// The value of a cell: the smallest of 1, 1.5, 2, 3, 4, 6... times a
/// power of two at which `max` fits in `rows` cells; round figures in
/// binary units (512K, 768K, 1M, 1.5M), so the size axis reads easily.
pub fn cell_size(max: u64, rows: u16) -> u64 {
    let need = max.div_ceil(u64::from(rows.max(1))).max(1);
    let mut p: u64 = 1;
    loop {
        if p >= need {
            return p;
        }
        if p >= 2 && p + p / 2 >= need {
            return p + p / 2;
        }
        p = p.saturating_mul(2);
    }
}

/// A time axis: a unit for the span and a tick step in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeAxis {
    /// Nanoseconds per unit.
    pub unit_ns: u64,
    /// The unit's suffix (`ms`, `s`, `min`, `h`).
    pub suffix: &'static str,
    /// Between ticks, in units (1, 2 or 5 times a power of ten).
    pub step: f64,
}

impl TimeAxis {
    /// The axis of a span of `span_ns` over `columns`, a tick about every
    /// `spacing` columns: milliseconds under 2 s, seconds under 2 min,
    /// minutes under 2 h, then hours.
    pub fn of(span_ns: u64, columns: u16, spacing: u16) -> TimeAxis {
        let (unit_ns, suffix) = match span_ns {
            s if s < 2_000_000_000 => (1_000_000, "ms"),
            s if s < 120_000_000_000 => (1_000_000_000, "s"),
            s if s < 7_200_000_000_000 => (60_000_000_000, "min"),
            _ => (3_600_000_000_000, "h"),
        };
        let span = span_ns as f64 / unit_ns as f64;
        let ticks = f64::from((columns / spacing.max(1)).max(1));
        let raw = (span / ticks).max(f64::MIN_POSITIVE);
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * mag);
        TimeAxis {
            unit_ns,
            suffix,
            step,
        }
    }

    /// A tick's label: `0`, `+5s`, `+1.5min`.
    pub fn label(&self, units: f64) -> String {
        if units == 0.0 {
            return "0".into();
        }
        let digits = if self.step >= 1.0 {
            0
        } else {
            (-self.step.log10().floor()) as usize
        };
        format!("+{units:.digits$}{}", self.suffix)
    }
}

/// Width of the size axis: a label (`1.5G`, `768K`) and its rule.
const AXIS_W: u16 = 6;

struct Chart<'a> {
    totals: &'a [Totals],
    st: TimelineState,
    settings: &'a Settings,
}

impl Chart<'_> {
    fn values<'t>(&self, t: &'t Totals) -> &'t [u64] {
        if self.st.committed {
            &t.committed
        } else {
            &t.ws
        }
    }

    /// One type's cell: its colour, or its character without colour.
    fn paint(&self, cell: &mut ratatui::buffer::Cell, t: MemoryType) {
        match self.settings.glyph(t) {
            Some(g) => cell.set_char(g),
            None => cell.set_char(' ').set_bg(self.settings.colour(t)),
        };
    }

    /// The key: what a cell is worth, then each type drawn, as drawn.
    fn key(&self, area: Rect, buf: &mut Buffer, cell: u64, shown: &[bool]) {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let head = format!("1 cell = {}  ", self.settings.units.format(cell));
        let (mut x, _) = buf.set_stringn(area.x, area.y, &head, area.width as usize, bold);
        let end = area.x + area.width;
        for (ti, &t) in TYPES.iter().enumerate() {
            if !shown[ti] {
                continue;
            }
            let name = t.name();
            if x + 2 + name.len() as u16 > end {
                break;
            }
            self.paint(&mut buf[(x, area.y)], t);
            x = buf
                .set_stringn(
                    x + 2,
                    area.y,
                    format!("{name}  "),
                    (end - x - 2) as usize,
                    Style::default(),
                )
                .0;
        }
    }
}

impl Widget for Chart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let n = self.totals.len();
        // The key, at least two rows of bars, the axis, its labels and
        // the selected snapshot's figures.
        if n == 0 || area.height < 6 || area.width < AXIS_W + 8 {
            return;
        }
        let chart_h = area.height - 4;
        let top = area.y + 1;
        let axis_y = top + chart_h;
        let plot_x = area.x + AXIS_W;
        let plot_w = area.width - AXIS_W;
        let sums: Vec<u64> = self
            .totals
            .iter()
            .map(|t| self.values(t).iter().sum())
            .collect();
        let max = sums.iter().copied().max().unwrap_or(0).max(1);
        let cell = cell_size(max, chart_h);
        let shown: Vec<bool> = (0..TYPES.len())
            .map(|ti| {
                self.totals
                    .iter()
                    .any(|t| self.values(t).get(ti).is_some_and(|&v| v > 0))
            })
            .collect();
        self.key(Rect { height: 1, ..area }, buf, cell, &shown);

        // The size axis: a label every few rows, from the cell's value,
        // always in short units (byte counts would not fit its width).
        let muted = Style::default().add_modifier(Modifier::DIM);
        let every = if chart_h >= 12 { 4 } else { 2 };
        for r in 0..chart_h {
            let y = axis_y - 1 - r;
            let rows = r + 1;
            // The top row is labelled too, unless a label is just below.
            let label = if rows % every == 0 || (rows == chart_h && rows % every > 1) {
                vmmap_core::units::size(cell * u64::from(rows), false)
            } else {
                String::new()
            };
            let rule = if label.is_empty() { "│" } else { "┤" };
            let text = format!("{label:>w$}{rule}", w = (AXIS_W - 1) as usize);
            buf.set_stringn(area.x, y, text, AXIS_W as usize, muted);
        }
        buf.set_stringn(
            area.x,
            axis_y,
            format!(
                "{:>w$}└{}",
                "0",
                "─".repeat(plot_w as usize),
                w = (AXIS_W - 1) as usize
            ),
            area.width as usize,
            muted,
        );

        // Where each snapshot goes: by its time, the first at the left
        // edge and the last at the right.
        let t0 = self.totals[0].taken_at_unix_ns;
        let span = self
            .totals
            .iter()
            .map(|t| t.taken_at_unix_ns.saturating_sub(t0))
            .max()
            .unwrap_or(0);
        // Where each snapshot's bar starts, of `room` columns: by its
        // time, or evenly when all were taken at once.
        let place = |i: usize, room: u64| -> u64 {
            if span == 0 {
                (i as u64 * room) / (n as u64 - 1).max(1)
            } else {
                let dt = self.totals[i].taken_at_unix_ns.saturating_sub(t0);
                ((u128::from(dt) * u128::from(room) + u128::from(span) / 2) / u128::from(span))
                    as u64
            }
        };
        // Bars as wide as the closest two allow (1 to 3 columns), so that
        // neighbours do not cover each other where there is room.
        let closest = (1..n)
            .map(|i| place(i, u64::from(plot_w - 1)).abs_diff(place(i - 1, u64::from(plot_w - 1))))
            .min()
            .unwrap_or(u64::from(plot_w));
        let bar_w = closest.clamp(1, 3) as u16;
        let room = u64::from(plot_w - bar_w);
        let x_of = |i: usize| plot_x + place(i, room).min(room) as u16;

        // The bars, the selected one last so that it is never hidden by a
        // neighbour taken in the same column.
        let order = (0..n)
            .filter(|&i| i != self.st.selected)
            .chain([self.st.selected]);
        for i in order {
            let x = x_of(i);
            let per_type = cells(self.values(&self.totals[i]), cell);
            let mut y = axis_y;
            for (ti, &h) in per_type.iter().enumerate() {
                for _ in 0..h {
                    if y == top {
                        break;
                    }
                    y -= 1;
                    for dx in 0..bar_w {
                        self.paint(&mut buf[(x + dx, y)], TYPES[ti]);
                    }
                }
            }
            // What was under the bar before (a neighbour) is cleared above it.
            for yy in top..y {
                for dx in 0..bar_w {
                    buf[(x + dx, yy)].reset();
                }
            }
            let marker = match (i == self.st.selected, Some(i) == self.st.mark) {
                (true, _) => Some('▲'),
                (false, true) => Some('M'),
                _ => None,
            };
            if let Some(m) = marker {
                for dx in 0..bar_w {
                    buf[(x + dx, axis_y)]
                        .set_char(m)
                        .set_style(Style::default().add_modifier(Modifier::BOLD));
                }
            }
        }

        // The time axis: ticks at round times, labels that do not collide.
        let ta = TimeAxis::of(span, plot_w, 10);
        let span_units = span as f64 / ta.unit_ns as f64;
        let mut free_from = area.x;
        let mut k = 0u32;
        loop {
            let units = f64::from(k) * ta.step;
            if units > span_units + ta.step * 1e-9 {
                break;
            }
            let x = if span == 0 {
                plot_x
            } else {
                plot_x + ((units / span_units) * room as f64).round() as u16
            };
            let label = ta.label(units);
            let w = label.chars().count() as u16;
            if x >= free_from && x + w <= area.x + area.width {
                buf.set_stringn(x, axis_y + 1, &label, w as usize, muted);
                free_from = x + w + 1;
            }
            k += 1;
        }

        // The selected snapshot's figures, its largest types first.
        let sel = self.st.selected.min(n - 1);
        let vals = self.values(&self.totals[sel]);
        let dt = self.totals[sel].taken_at_unix_ns.saturating_sub(t0);
        let mut parts: Vec<(u64, MemoryType)> = vals
            .iter()
            .zip(TYPES)
            .filter(|(&v, _)| v > 0)
            .map(|(&v, &t)| (v, t))
            .collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.0));
        let units = self.settings.units;
        let mut label = format!(
            "snapshot {} of {n} at +{:.1} {}: {} {}",
            sel + 1,
            dt as f64 / ta.unit_ns as f64,
            ta.suffix,
            if self.st.committed {
                "committed"
            } else {
                "working set"
            },
            units.format(sums[sel]),
        );
        if let Some(m) = self.st.mark.filter(|&m| m != sel && m < n) {
            let d = sums[sel] as i128 - sums[m] as i128;
            let sign = if d < 0 { "-" } else { "+" };
            label += &format!(
                " ({sign}{} since marked #{})",
                units.format(d.unsigned_abs() as u64),
                m + 1
            );
        }
        // The figure stands alone (a space after it, never a colon), for
        // whoever reads it off the screen.
        label += " = ";
        label += &parts
            .iter()
            .map(|(v, t)| format!("{} {}", t.name(), units.format(*v)))
            .collect::<Vec<_>>()
            .join(" + ");
        buf.set_stringn(
            area.x,
            axis_y + 2,
            label,
            area.width as usize,
            Style::default(),
        );
    }
}
