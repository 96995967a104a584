//! VMMap's main window: the three bar graphs, the Summary table (also the
//! colour key, and the filter of the Details) and the Details table.

use std::sync::Arc;
use std::time::Duration;

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row as TableRow, Table};
use ratatui::Frame;
use vmmap_core::figures::{Column, Figures};
use vmmap_core::model::{MemoryType, Snapshot};
use vmmap_core::summary::Summary;
use vmmap_core::text::{escape, escape_args, Escaped};

use crate::details::{row_part, row_region, DetailsData, DetailsView, Row, SortKey};
use crate::list::{ListCursor, TableSort};
use crate::settings::{Settings, Units};
use vmmap_render::text::{cut_details, cut_owner};

/// What compare mode shows: the earlier snapshot's Summary, and a mark
/// for every region of the shown snapshot that the diff reports.
pub struct Compare {
    /// Which history snapshot the view is compared with (from 1).
    pub base_number: usize,
    /// Its Summary.
    pub base: Summary,
    /// Start address of a changed region → its mark (`new`, `grown`, …).
    pub marks: std::collections::HashMap<u64, &'static str>,
}

impl Compare {
    /// Compares `after` with `before`.
    pub fn new(before: &Snapshot, after: &Snapshot, base_number: usize) -> Compare {
        let d = vmmap_core::diff::diff(before, after);
        let marks = d
            .regions
            .iter()
            .filter_map(|c| Some((c.after.as_ref()?.start, c.label())))
            .collect();
        Compare {
            base_number,
            base: Summary::of(before),
            marks,
        }
    }
}

/// Which table has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The Summary table.
    Summary,
    /// The Details table.
    Details,
}

/// Screen areas remembered from the last draw, for the mouse.
#[derive(Clone, Debug, Default)]
pub struct Areas {
    /// Summary header row.
    pub summary_header: Rect,
    /// Summary body.
    pub summary_body: Rect,
    /// Details header row.
    pub details_header: Rect,
    /// Details body.
    pub details_body: Rect,
    /// Summary column spans (x, width, column; None for the Type column).
    pub summary_cols: Vec<(u16, u16, Option<Column>)>,
    /// Details column spans (x, width, sort key).
    pub details_cols: Vec<(u16, u16, SortKey)>,
}

/// The main view of one process.
pub struct MainView {
    /// The snapshot shown.
    pub snap: Arc<Snapshot>,
    /// Its Summary.
    pub summary: Summary,
    /// Its per-region figures and gaps.
    pub data: DetailsData,
    /// Details view state.
    pub details: DetailsView,
    /// The Summary rows in display order (None = Total, always last).
    pub summary_rows: Vec<Option<MemoryType>>,
    /// Selected Summary row.
    pub summary_selected: usize,
    /// Summary sort column (None: VMMap's type order) and direction.
    pub summary_sort: TableSort<Option<Column>>,
    /// Keyboard focus.
    pub focus: Focus,
    /// How long the last snapshot took to collect.
    pub collect_time: Duration,
    /// Compare mode: the Summary shows changes from an earlier snapshot
    /// and the Details mark the regions that changed.
    pub compare: Option<Compare>,
    /// Areas of the last draw.
    pub areas: Areas,
    /// Who made each region, when the snapshot is of a traced run and
    /// they are known (the Details then have an Owner column).
    pub owners: Option<Arc<vmmap_trace::region_owners::SnapshotOwners>>,
    /// Where a loaded snapshot comes from (the file's name, which of its
    /// snapshots): the header shows it, and when it was taken, rather
    /// than a collection time that a file does not have.
    pub source: Option<String>,
    /// Horizontal scroll: how many of the figure columns (those not zero
    /// everywhere) are scrolled off to the left. At 0 the columns that fit
    /// are chosen by importance; scrolled, they follow in table order.
    pub hscroll: usize,
    /// The figure columns of the Details last drawn: how many are shown,
    /// and how many there are (for the line above the table).
    pub columns_shown: (usize, usize),
}

impl MainView {
    /// A view of a new snapshot with default state.
    pub fn new(snap: Arc<Snapshot>, collect_time: Duration) -> MainView {
        let summary = Summary::of(&snap);
        let data = DetailsData::new(&snap);
        let mut v = MainView {
            snap,
            summary,
            data,
            details: DetailsView::default(),
            summary_rows: Vec::new(),
            summary_selected: 0,
            summary_sort: TableSort::new(None),
            focus: Focus::Details,
            collect_time,
            compare: None,
            areas: Areas::default(),
            owners: None,
            hscroll: 0,
            columns_shown: (0, 0),
            source: None,
        };
        v.resort_summary();
        v.summary_selected = v.summary_rows.len() - 1; // Total
        v.details.rebuild(&v.snap, &v.data);
        v
    }

    /// Gives the snapshot its owners (of a traced run): the Owner column,
    /// and the tracing agent's regions counted apart from the program's
    /// in the Summary, on a `vmmap agent` line under Total.
    pub fn set_owners(&mut self, owners: Option<Arc<vmmap_trace::region_owners::SnapshotOwners>>) {
        let agent = owners.as_ref().map_or(&[][..], |o| o.agent.as_slice());
        self.summary = Summary::with_agent(&self.snap, agent);
        self.owners = owners;
        self.resort_summary();
    }

    /// The Owner cell of a Details row, when owners are known.
    pub fn owner_of(&self, row: Row) -> Option<&vmmap_trace::region_owners::OwnerCell> {
        let o = self.owners.as_ref()?;
        match row {
            Row::Region(i) => o.region(i),
            Row::Sub(i, j) => o.sub_block(i, j),
            Row::Part(..) | Row::Free(_) => None,
        }
    }

    /// Replaces the snapshot (F5), keeping filter, sort, expansion and the
    /// selected region where it still exists.
    pub fn replace(&mut self, snap: Arc<Snapshot>, collect_time: Duration) {
        let keep = self.details.selected_key(&self.snap, &self.data);
        let selected_type = self
            .summary_rows
            .get(self.summary_selected)
            .copied()
            .flatten();
        self.snap = snap;
        // Owners belong to one snapshot: the app gives the new one its own.
        self.owners = None;
        self.summary = Summary::of(&self.snap);
        self.data = DetailsData::new(&self.snap);
        self.collect_time = collect_time;
        self.resort_summary();
        self.summary_selected = self
            .summary_rows
            .iter()
            .position(|t| *t == selected_type)
            .unwrap_or(self.summary_rows.len() - 1);
        self.details.filter = self.summary_rows[self.summary_selected];
        self.details.rebuild_keeping(&self.snap, &self.data, keep);
    }

    /// Orders the Summary rows: types with a non-zero size (Free only when
    /// free regions are shown), by the sort column, Total last.
    pub fn resort_summary(&mut self) {
        let keep = self.summary_rows.get(self.summary_selected).copied();
        let mut types: Vec<MemoryType> = MemoryType::ALL
            .into_iter()
            .filter(|&t| self.summary.row(t).figures.value(Column::Size) > 0)
            .filter(|&t| t != MemoryType::Free || self.details.show_free)
            .collect();
        if let Some(c) = self.summary_sort.column {
            types.sort_by(|a, b| {
                self.summary
                    .row(*b)
                    .figures
                    .value(c)
                    .cmp(&self.summary.row(*a).figures.value(c))
                    .then(a.cmp(b))
            });
        }
        if self.summary_sort.reverse {
            types.reverse();
        }
        self.summary_rows = types
            .into_iter()
            .map(Some)
            .chain(std::iter::once(None))
            .collect();
        if let Some(k) = keep {
            self.summary_selected = self
                .summary_rows
                .iter()
                .position(|t| *t == k)
                .unwrap_or(self.summary_rows.len() - 1);
        }
    }

    /// Selects a Summary row and filters the Details by its type.
    pub fn select_summary(&mut self, i: usize) {
        self.summary_selected = i.min(self.summary_rows.len() - 1);
        self.details.filter = self.summary_rows[self.summary_selected];
        self.details.cursor = ListCursor::default();
        self.details.rebuild_keeping(&self.snap, &self.data, None);
    }

    /// Sorts the Summary by a column; again reverses; on the Type column
    /// goes back to VMMap's order.
    pub fn sort_summary(&mut self, c: Option<Column>) {
        self.summary_sort.choose(c);
        self.resort_summary();
    }

    /// Sorts the Details; the same key again reverses.
    pub fn sort_details(&mut self, k: SortKey) {
        self.details.sort.choose(k);
        self.details.resort(&self.snap, &self.data);
    }

    /// Scrolls the figure columns by `by` (Left/Right in the Summary,
    /// `<`/`>`), within those that are not zero everywhere.
    pub fn scroll_columns(&mut self, by: isize, settings: &Settings) {
        let n = self.useful_columns(&settings.visible_columns()).len();
        self.hscroll = (self.hscroll as isize + by).clamp(0, n.saturating_sub(1) as isize) as usize;
    }

    /// The columns of `cols` not zero in every row: the others take no
    /// width.
    fn useful_columns(&self, cols: &[Column]) -> Vec<Column> {
        let total = &self.summary.total.figures;
        cols.iter()
            .copied()
            .filter(|&c| total.get(c) != Some(0))
            .collect()
    }

    /// The figure columns to draw in `budget` cells, `room` each: by
    /// importance when not scrolled, else from the scroll position on.
    fn fit_columns(&self, cols: &[Column], budget: u16, room: u16) -> Vec<Column> {
        let useful = self.useful_columns(cols);
        if self.hscroll == 0 {
            return vmmap_render::text::choose_columns(
                &useful,
                |_| true,
                budget.into(),
                |_| room.into(),
            );
        }
        let fit = (budget / room.max(1)) as usize;
        useful.into_iter().skip(self.hscroll).take(fit).collect()
    }

    /// Shows or hides free regions.
    pub fn toggle_free(&mut self) {
        self.details.show_free = !self.details.show_free;
        self.resort_summary();
        self.details.filter = self.summary_rows[self.summary_selected];
        self.details.rebuild(&self.snap, &self.data);
    }

    /// Moves the Details selection to the row holding `addr` (the
    /// sub-block of an expanded group when a group holds it, the free gap
    /// when nothing does), showing every type. Returns what was found, for
    /// the status line.
    pub fn goto_address(&mut self, addr: u64) -> String {
        use crate::details::Row;
        use vmmap_core::lookup::{lookup, Hit};
        let l = lookup(&self.snap, addr);
        let (target, text) = match l.hit {
            Hit::Region { region, vma } => {
                let i = self.snap.regions.partition_point(|r| r.end <= addr);
                let row = match region.sub_blocks.iter().position(|s| std::ptr::eq(s, vma)) {
                    Some(j) => {
                        self.details.expanded.insert(region.start);
                        match vma
                            .parts
                            .iter()
                            .position(|p| (p.start..p.end).contains(&addr))
                        {
                            Some(k) => Row::Part(i, j, k),
                            None => Row::Sub(i, j),
                        }
                    }
                    None => Row::Region(i),
                };
                let text = format!(
                    "{addr:#x}: {} {:#x}-{:#x} +{:#x} {} {}",
                    region.memory_type.name(),
                    region.start,
                    region.end,
                    addr - region.start,
                    vma.perms.as_str(),
                    Escaped(if region.details.is_empty() {
                        &region.path
                    } else {
                        &region.details
                    })
                );
                (row, text)
            }
            Hit::Gap(g) => {
                if !self.details.show_free {
                    self.toggle_free();
                }
                let Some(k) = self.data.free.iter().position(|f| f.start == g.start) else {
                    return format!("{addr:#x} is free, in the gap {:#x}-{:#x}", g.start, g.end);
                };
                (
                    Row::Free(k),
                    format!(
                        "{addr:#x} is free: gap {:#x}-{:#x} ({}), {:#x} past its start",
                        g.start,
                        g.end,
                        vmmap_core::units::size(g.size(), false),
                        addr - g.start
                    ),
                )
            }
            Hit::Outside => {
                return format!(
                    "{addr:#x} is outside the user address space ({:#x}-{:#x})",
                    self.snap.kernel.mmap_min_addr, self.snap.kernel.user_address_limit
                )
            }
        };
        // Show every type, so that the row is in the table.
        if self.details.filter.is_some() {
            self.summary_selected = self.summary_rows.len() - 1;
            self.details.filter = None;
        }
        self.details.rebuild_keeping(&self.snap, &self.data, None);
        if let Some(p) = self.details.rows.iter().position(|&r| r == target) {
            self.details.cursor.selected = p;
        }
        self.focus = Focus::Details;
        text
    }

    /// Draws the whole view.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect, settings: &Settings, status: &str) {
        let cols = settings.visible_columns();
        let units = settings.units;
        let agent_row = u16::from(self.summary.agent.is_some());
        // The Details keep a header and four rows however low the window
        // (header, bars, two separating lines and the status take seven).
        let summary_h = (self.summary_rows.len() as u16 + 1 + agent_row)
            .min(area.height.saturating_sub(7 + 5))
            .max(2.min(area.height.saturating_sub(7)));
        let mut s = crate::Strips::new(area);
        let (header, bars) = s.head();
        self.draw_header(f, header);
        self.draw_bars(f, bars, settings);
        let summary = s.take(summary_h);
        self.draw_summary(f, summary, &cols, settings);
        let position = s.take(1);
        let status_h = 1;
        let details = s.take(s.left().saturating_sub(status_h));
        self.draw_details(f, details, &cols, units, settings);
        self.draw_position(f, position);
        let st = s.take(status_h);
        f.render_widget(
            Paragraph::new(status.to_string())
                .style(Style::default().add_modifier(Modifier::REVERSED)),
            st,
        );
    }

    /// The line above the Details: which rows are shown of how many, and
    /// which figure columns when some do not fit.
    fn draw_position(&self, f: &mut Frame<'_>, area: Rect) {
        let n = self.details.rows.len();
        let height = self.areas.details_body.height as usize;
        let mut text = if n == 0 {
            "no rows".to_string()
        } else {
            let (first, last) = self.details.cursor.rows_on_screen(height, n);
            format!("rows {first}-{last} of {n}")
        };
        let (shown, total) = self.columns_shown;
        if shown < total {
            let left = if self.hscroll > 0 { "\u{25c2}" } else { " " };
            text = format!("{left} {shown} of {total} columns \u{25b8} (< >)  {text}");
        }
        f.render_widget(
            Paragraph::new(text)
                .alignment(ratatui::layout::Alignment::Right)
                .style(Style::default().add_modifier(Modifier::DIM)),
            area,
        );
    }

    fn draw_header(&self, f: &mut Frame<'_>, area: Rect) {
        let p = &self.snap.process;
        let cmd = if p.cmdline.is_empty() {
            escape(&p.name).into_owned()
        } else {
            escape_args(&p.cmdline)
        };
        // A loaded snapshot says so first, with its file and time (a
        // narrow window must not make it look live); a live one says how
        // long it took.
        let (file, ms) = match &self.source {
            Some(src) => (
                format!(
                    "  {src}, taken {}",
                    vmmap_render::text::utc(self.snap.taken_at_unix_ns / 1_000_000_000)
                ),
                String::new(),
            ),
            None => (
                String::new(),
                format!("  {} ms", self.collect_time.as_millis()),
            ),
        };
        let container = match (&p.container, p.ns_pid) {
            (Some(c), n) => format!(
                "  {}{}",
                Escaped(&c.label()),
                n.map_or_else(String::new, |n| format!(" (PID {n} inside)"))
            ),
            (None, Some(n)) => format!("  PID {n} in its namespace"),
            (None, None) => String::new(),
        };
        // The command line last: it is the part that may be cut.
        let text = format!(
            " {} ({}){container}{file}  {}  {} threads  kernel {}{ms}  {}",
            p.pid,
            Escaped(&p.name),
            p.arch(),
            p.threads.len(),
            Escaped(&self.snap.kernel.release),
            cmd
        );
        f.render_widget(
            Paragraph::new(text).style(Style::default().add_modifier(Modifier::BOLD)),
            area,
        );
    }

    /// Three bars as VMMap draws them: Committed spans the width, Private
    /// and Working Set extend to their share of it; each is split by type
    /// in the Summary's order and colours.
    fn draw_bars(&self, f: &mut Frame<'_>, area: Rect, settings: &Settings) {
        let total = &self.summary.total.figures;
        let types: Vec<MemoryType> = self
            .summary_rows
            .iter()
            .flatten()
            .copied()
            .filter(|t| *t != MemoryType::Free)
            .collect();
        let bars = [
            ("Committed", Column::Committed),
            ("Private Bytes", Column::Private),
            ("Working Set", Column::TotalWs),
        ]
        .map(|(label, col)| Bar {
            label,
            total: total.value(col),
            parts: types
                .iter()
                .map(|&t| (t, self.summary.row(t).figures.value(col)))
                .collect(),
        });
        draw_bar_graphs(f, area, settings, &bars);
    }

    fn draw_summary(
        &mut self,
        f: &mut Frame<'_>,
        area: Rect,
        cols: &[Column],
        settings: &Settings,
    ) {
        if area.height == 0 {
            return;
        }
        let focus = self.focus == Focus::Summary;
        let w = num_width(settings.units);
        let fitted = self.fit_columns(cols, area.width.saturating_sub(16), w + 1);
        let cols = &fitted[..];
        let mut widths = vec![Constraint::Length(15)];
        let mut spans = vec![(area.x, 15u16, None)];
        let mut x = area.x + 16;
        for &c in cols {
            widths.push(Constraint::Length(w));
            spans.push((x, w, Some(c)));
            x += w + 1;
        }
        let nw = w as usize;
        self.areas.summary_cols = spans;
        (self.areas.summary_header, self.areas.summary_body) = header_and_body(area);
        let mark = |c: Option<Column>| self.summary_sort.mark(c);
        let header =
            TableRow::new(
                std::iter::once(format!("Type{}", mark(None)))
                    .chain(cols.iter().map(|&c| {
                        format!("{:>nw$}", format!("{}{}", mark(Some(c)), c.short_header()))
                    }))
                    .collect::<Vec<_>>(),
            )
            .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let height = area.height.saturating_sub(1) as usize;
        // Scrolled so that the selected row shows when the window is low.
        let skip = (self.summary_selected + 1).saturating_sub(height);
        let rows = crate::on_screen(&self.summary_rows, skip, height).map(|(i, t)| {
            let fig = match t {
                Some(t) => &self.summary.row(*t).figures,
                None => &self.summary.total.figures,
            };
            let name = t.map_or("Total", |t| t.name());
            let key = match t {
                Some(t) => match settings.glyph(*t) {
                    Some(g) => Span::raw(format!("{g}{g} ")),
                    None => Span::styled("██ ", Style::default().fg(settings.colour(*t))),
                },
                None => Span::raw("   "),
            };
            let mut cells = vec![ratatui::widgets::Cell::from(Line::from(vec![
                key,
                Span::raw(name),
            ]))];
            for &c in cols {
                let text = match &self.compare {
                    Some(cmp) => {
                        let base = match t {
                            Some(t) => &cmp.base.row(*t).figures,
                            None => &cmp.base.total.figures,
                        };
                        delta(fig, base, c, settings.units)
                    }
                    None => cell(fig, c, settings.units),
                };
                cells.push(ratatui::widgets::Cell::from(format!("{text:>nw$}")));
            }
            let mut style = Style::default();
            if i == self.summary_selected {
                style = style.add_modifier(if focus {
                    Modifier::REVERSED
                } else {
                    Modifier::BOLD | Modifier::UNDERLINED
                });
            }
            if t.is_none() {
                style = style.add_modifier(Modifier::BOLD);
            }
            TableRow::new(cells).style(style)
        });
        // A traced run's agent: its own regions, in no row above; shown,
        // not selectable.
        let agent = self
            .summary
            .agent
            .iter()
            .filter(|_| height > self.summary_rows.len())
            .map(|r| {
                let mut cells = vec![ratatui::widgets::Cell::from("   vmmap agent")];
                for &c in cols {
                    let text = cell(&r.figures, c, settings.units);
                    cells.push(ratatui::widgets::Cell::from(format!("{text:>nw$}")));
                }
                TableRow::new(cells).style(Style::default().add_modifier(Modifier::ITALIC))
            });
        let rows = rows.chain(agent);
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            area,
        );
    }

    fn draw_details(
        &mut self,
        f: &mut Frame<'_>,
        area: Rect,
        cols: &[Column],
        units: Units,
        settings: &Settings,
    ) {
        if area.height < 2 {
            return;
        }
        let focus = self.focus == Focus::Details;
        let num_w = num_width(units);
        let nw = num_w as usize;
        // The address column holds the widest address (12 hex digits, 16
        // for the vsyscall page) after a 4-column tree prefix.
        let hex = self
            .snap
            .regions
            .iter()
            .map(|r| hex_digits(r.start))
            .max()
            .unwrap_or(12)
            .max(12);
        let addr_w = hex + 4;
        // Details keep a quarter of the width (a sixth below 100 columns;
        // 10 to 48) for paths and thread names; figures take what is left,
        // by importance.
        let details_min = (area.width / if area.width < 100 { 6 } else { 4 }).clamp(10, 48);
        // The Owner column (a traced run's snapshot): as wide as its
        // longest cell, at most a quarter of the width.
        let owner_w: Option<u16> = self.owners.as_ref().map(|o| {
            let longest = o
                .regions
                .iter()
                .chain(o.sub_blocks.iter().flatten())
                .flatten()
                .map(|c| escape(&c.text).chars().count())
                .max()
                .unwrap_or(0);
            (longest.min(u16::MAX as usize) as u16).clamp(5, (area.width / 4).max(5))
        });
        let fixed = addr_w + 12 + 4 + details_min + 4 + owner_w.map_or(0, |w| w + 1);
        let detail_cols: Vec<Column> = cols.iter().copied().filter(|c| !c.summary_only()).collect();
        let cols = self.fit_columns(&detail_cols, area.width.saturating_sub(fixed), num_w + 1);
        self.columns_shown = (cols.len(), self.useful_columns(&detail_cols).len());
        let mut widths = vec![Constraint::Length(addr_w), Constraint::Length(12)];
        let mut spans = vec![
            (area.x, addr_w, SortKey::Address),
            (area.x + addr_w + 1, 12, SortKey::Type),
        ];
        let mut x = area.x + addr_w + 14;
        for &c in &cols {
            widths.push(Constraint::Length(num_w));
            spans.push((x, num_w, SortKey::Figure(c)));
            x += num_w + 1;
        }
        widths.push(Constraint::Length(4));
        spans.push((x, 4, SortKey::Protection));
        x += 5;
        if let Some(w) = owner_w {
            widths.push(Constraint::Length(w));
            x += w + 1;
        }
        widths.push(Constraint::Min(10));
        let details_w = area.width.saturating_sub(x - area.x) as usize;
        spans.push((x, details_w as u16, SortKey::Details));
        self.areas.details_cols = spans;
        (self.areas.details_header, self.areas.details_body) = header_and_body(area);
        let height = (area.height - 1) as usize;
        self.details.scroll_into_view(height);
        let sort = self.details.sort;
        let mark = |k: SortKey| sort.mark(k);
        let mut head = vec![
            format!("Address{}", mark(SortKey::Address)),
            format!("Type{}", mark(SortKey::Type)),
        ];
        head.extend(cols.iter().map(|&c| {
            format!(
                "{:>nw$}",
                format!("{}{}", mark(SortKey::Figure(c)), c.short_header())
            )
        }));
        head.push(format!("Prot{}", mark(SortKey::Protection)));
        if owner_w.is_some() {
            head.push("Owner".into());
        }
        head.push(format!("Details{}", mark(SortKey::Details)));
        let header = TableRow::new(head)
            .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let snap = Arc::clone(&self.snap);
        let rows = self
            .details
            .cursor
            .on_screen(&self.details.rows, height)
            .map(|(k, &row)| {
                let mut style = Style::default();
                if k == self.details.cursor.selected {
                    style = style.add_modifier(if focus {
                        Modifier::REVERSED
                    } else {
                        Modifier::UNDERLINED
                    });
                }
                let mut cells: Vec<ratatui::widgets::Cell<'_>> = Vec::with_capacity(cols.len() + 4);
                match row {
                    Row::Free(i) => {
                        let fb = self.data.free[i];
                        cells.push(format!("  {:x}", fb.start).into());
                        cells.push(type_cell(settings, MemoryType::Free));
                        size_only(&mut cells, &cols, fb.size(), units, nw, owner_w.is_some());
                        cells.push("".into());
                    }
                    Row::Part(..) => {
                        // A derived row, marked `·` as in the text view: its
                        // size and name only.
                        let (Some(r), Some(p)) = (row_region(&snap, row), row_part(&snap, row))
                        else {
                            return TableRow::new(cells);
                        };
                        cells.push(format!("    \u{b7} {:x}", p.start).into());
                        cells.push(type_cell(settings, r.memory_type));
                        size_only(
                            &mut cells,
                            &cols,
                            p.end - p.start,
                            units,
                            nw,
                            owner_w.is_some(),
                        );
                        cells.push(escape(&p.details).into_owned().into());
                    }
                    _ => {
                        let Some(r) = row_region(&snap, row) else {
                            return TableRow::new(cells);
                        };
                        let (prefix, fig) = match row {
                            Row::Region(i) if !r.sub_blocks.is_empty() => (
                                if self.details.expanded.contains(&r.start) {
                                    "- "
                                } else {
                                    "+ "
                                },
                                self.data.figures[i],
                            ),
                            Row::Region(i) => ("  ", self.data.figures[i]),
                            _ => ("    ", Figures::of_vma(r)),
                        };
                        cells.push(format!("{prefix}{:x}", r.start).into());
                        cells.push(type_cell(settings, r.memory_type));
                        for &c in &cols {
                            cells.push(format!("{:>nw$}", cell(&fig, c, units)).into());
                        }
                        cells.push(r.perms.as_str().to_string().into());
                        if let Some(w) = owner_w {
                            let cell = self.owner_of(row);
                            cells.push(
                                cell.map_or(String::new(), |c| {
                                    cut_owner(&escape(&c.text), w.into()).into_owned()
                                })
                                .into(),
                            );
                        }
                        let mark = match (&self.compare, row) {
                            (Some(cmp), Row::Region(_)) => cmp.marks.get(&r.start).copied(),
                            _ => None,
                        };
                        let room = details_w.saturating_sub(mark.map_or(0, |m| m.len() + 3));
                        let d = cut_details(
                            &escape(if r.details.is_empty() {
                                &r.path
                            } else {
                                &r.details
                            }),
                            room,
                        )
                        .into_owned();
                        match mark {
                            Some(m) => cells.push(
                                Line::from(vec![
                                    Span::styled(
                                        format!("[{m}] "),
                                        Style::default().add_modifier(Modifier::BOLD),
                                    ),
                                    Span::raw(d),
                                ])
                                .into(),
                            ),
                            None => cells.push(d.into()),
                        }
                    }
                }
                TableRow::new(cells).style(style)
            });
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            area,
        );
    }
}

/// One of the bar graphs: its label, its total, and its parts by type in
/// the order drawn.
pub struct Bar {
    /// `Committed`, `Private Bytes`, `Working Set`.
    pub label: &'static str,
    /// The whole bar's figure.
    pub total: u64,
    /// Each type's share of it.
    pub parts: Vec<(MemoryType, u64)>,
}

/// Draws VMMap's bar graphs, one a line: the first bar spans the width
/// after its label, the others extend to their share of it; each is split
/// among its types by largest remainders, in the types' colours, or in
/// each type's own character when colour is off. Shared by the main view
/// and the combined view, so that both read the same.
pub fn draw_bar_graphs(f: &mut Frame<'_>, area: Rect, settings: &Settings, bars: &[Bar]) {
    let basis = bars.first().map_or(0, |b| b.total).max(1);
    let label_w = 24u16;
    let bar_w = area.width.saturating_sub(label_w + 1);
    for (k, bar) in bars.iter().enumerate() {
        if k as u16 >= area.height {
            break;
        }
        let value = bar.total;
        let width = ((u128::from(value) * u128::from(bar_w)) / u128::from(basis))
            .min(u128::from(bar_w)) as u16;
        let mut spans = vec![Span::raw(format!(
            "{:<13}{:>10} ",
            bar.label,
            settings.units.format(value)
        ))];
        // Largest-remainder split of `width` cells among the types.
        let parts: Vec<(MemoryType, u64)> =
            bar.parts.iter().copied().filter(|(_, v)| *v > 0).collect();
        let sum: u64 = parts.iter().map(|p| p.1).sum::<u64>().max(1);
        let mut cells: Vec<(MemoryType, u16, u128)> = parts
            .iter()
            .map(|&(t, v)| {
                let exact = u128::from(v) * u128::from(width);
                (t, (exact / u128::from(sum)) as u16, exact % u128::from(sum))
            })
            .collect();
        let mut left = width.saturating_sub(cells.iter().map(|c| c.1).sum());
        let mut order: Vec<usize> = (0..cells.len()).collect();
        order.sort_by(|a, b| cells[*b].2.cmp(&cells[*a].2));
        for i in order {
            if left == 0 {
                break;
            }
            cells[i].1 += 1;
            left -= 1;
        }
        for (t, n, _) in cells {
            if n > 0 {
                // Without colour, each type's own character.
                spans.push(match settings.glyph(t) {
                    Some(g) => Span::raw(g.to_string().repeat(n as usize)),
                    None => Span::styled(
                        " ".repeat(n as usize),
                        Style::default().bg(settings.colour(t)),
                    ),
                });
            }
        }
        f.render_widget(
            Paragraph::new(Line::from(spans)),
            Rect {
                y: area.y + k as u16,
                height: 1,
                ..area
            },
        );
    }
}

fn hex_digits(v: u64) -> u16 {
    ((64 - v.leading_zeros()).div_ceil(4)).max(1) as u16
}

/// Splits a table's area into its header row and its body.
fn header_and_body(area: Rect) -> (Rect, Rect) {
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    (
        Rect {
            height: 1.min(area.height),
            ..area
        },
        body,
    )
}

/// A signed change of one figure: `+1.2M`, `-64K`, blank when none.
fn delta(now: &Figures, base: &Figures, c: Column, units: Units) -> String {
    match (now.get(c), base.get(c)) {
        (Some(a), Some(b)) if a == b => String::new(),
        (Some(a), Some(b)) => {
            let (sign, v) = if a > b { ('+', a - b) } else { ('-', b - a) };
            if c.is_count() {
                format!("{sign}{v}")
            } else {
                format!("{sign}{}", units.format(v))
            }
        }
        _ => "n/a".into(),
    }
}

/// Width of a figure cell: `1023K`, `32768 K` or 13 digits of bytes.
pub(crate) fn num_width(units: Units) -> u16 {
    if units == Units::Bytes {
        13
    } else {
        8
    }
}

fn cell(f: &Figures, c: Column, units: Units) -> String {
    match f.get(c) {
        None => "n/a".into(),
        Some(0) => String::new(),
        Some(v) if c.is_count() => v.to_string(),
        Some(v) => units.format(v),
    }
}

/// A type's name in its colour, as the Details' Type column shows it.
fn type_cell(settings: &Settings, t: MemoryType) -> ratatui::widgets::Cell<'static> {
    Span::styled(t.name(), Style::default().fg(settings.colour(t))).into()
}

/// The figure cells of a row that has only a size (a free gap, a part of
/// a region): the Size column, then empty Protection (and Owner) cells.
fn size_only(
    cells: &mut Vec<ratatui::widgets::Cell<'_>>,
    cols: &[Column],
    size: u64,
    units: Units,
    nw: usize,
    owner: bool,
) {
    for &c in cols {
        let v = if c == Column::Size {
            units.format(size)
        } else {
            String::new()
        };
        cells.push(format!("{v:>nw$}").into());
    }
    cells.push("".into());
    if owner {
        cells.push("".into());
    }
}
