//! The combined view of the processes marked in the picker, as VMMap's
//! main window for their sum: the three bar graphs, a Summary by type and
//! one row per process; Enter opens a process's own main view (Esc comes
//! back). The figures are core's [`vmmap_core::multi::Combined`], the same
//! as `vmmap PID PID…` prints, so that the two never disagree.

use std::sync::Arc;

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table};
use ratatui::Frame;
use vmmap_core::model::{MemoryType, Snapshot};
use vmmap_core::multi::{Combined, CombinedRow, CountedOnce, ProcessLine};
use vmmap_core::text::escape;

use crate::list::{ListCursor, TableSort};
use crate::main_view::{draw_bar_graphs, num_width, Bar};
use crate::settings::{Settings, Units};

/// A figure column of the Summary, in the order the table shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TypeCol {
    Size,
    Committed,
    Private,
    WsOnce,
    PrivateWs,
    ShareableWs,
    WsSum,
    Pss,
}

impl TypeCol {
    const ALL: [TypeCol; 8] = [
        TypeCol::Size,
        TypeCol::Committed,
        TypeCol::Private,
        TypeCol::WsOnce,
        TypeCol::PrivateWs,
        TypeCol::ShareableWs,
        TypeCol::WsSum,
        TypeCol::Pss,
    ];
    /// The order in which they give way when the window is narrow.
    const IMPORTANCE: [TypeCol; 8] = [
        TypeCol::Committed,
        TypeCol::Private,
        TypeCol::WsOnce,
        TypeCol::Size,
        TypeCol::Pss,
        TypeCol::WsSum,
        TypeCol::PrivateWs,
        TypeCol::ShareableWs,
    ];

    fn header(self) -> &'static str {
        match self {
            TypeCol::Size => "Size",
            TypeCol::Committed => "Commit",
            TypeCol::Private => "Private",
            TypeCol::WsOnce => "WS once",
            TypeCol::PrivateWs => "Priv WS",
            TypeCol::ShareableWs => "Shrbl WS",
            TypeCol::WsSum => "WS sum",
            TypeCol::Pss => "PSS",
        }
    }

    /// The figure, `None` where it is not known (the split of the working
    /// set needs page frames, so root).
    fn value(self, r: &CombinedRow) -> Option<u64> {
        Some(match self {
            TypeCol::Size => r.size,
            TypeCol::Committed => r.committed,
            TypeCol::Private => r.private,
            TypeCol::WsOnce => r.total_ws_once,
            TypeCol::PrivateWs => return r.private_ws_once,
            TypeCol::ShareableWs => return r.shareable_ws_once,
            TypeCol::WsSum => r.total_ws_sum,
            TypeCol::Pss => r.pss,
        })
    }
}

/// A column of the process table; the figures are sort keys too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcCol {
    /// PID.
    Pid,
    /// Command name.
    Name,
    /// Committed.
    Committed,
    /// Private.
    Private,
    /// Total WS.
    TotalWs,
    /// PSS.
    Pss,
    /// Shared WS.
    SharedWs,
    /// Size.
    Size,
}

impl ProcCol {
    /// Every column, in table order (also the order `s` steps through).
    pub const ALL: [ProcCol; 8] = [
        ProcCol::Pid,
        ProcCol::Name,
        ProcCol::Committed,
        ProcCol::Private,
        ProcCol::TotalWs,
        ProcCol::Pss,
        ProcCol::SharedWs,
        ProcCol::Size,
    ];

    fn header(self) -> &'static str {
        match self {
            ProcCol::Pid => "PID",
            ProcCol::Name => "Name",
            ProcCol::Committed => "Commit",
            ProcCol::Private => "Private",
            ProcCol::TotalWs => "Total WS",
            ProcCol::Pss => "PSS",
            ProcCol::SharedWs => "Shrd WS",
            ProcCol::Size => "Size",
        }
    }

    fn figure(self, p: &ProcessLine) -> Option<u64> {
        Some(match self {
            ProcCol::Committed => p.committed,
            ProcCol::Private => p.private,
            ProcCol::TotalWs => p.total_ws,
            ProcCol::Pss => p.pss,
            ProcCol::SharedWs => p.shared_ws,
            ProcCol::Size => p.size,
            ProcCol::Pid | ProcCol::Name => return None,
        })
    }
}

/// The combined view's state.
pub struct CombinedView {
    /// The figures.
    pub combined: Combined,
    /// Each process's snapshot, in the order of `combined.processes`:
    /// Enter opens it without reading the process again.
    pub snaps: Vec<Arc<Snapshot>>,
    /// Processes that could not be read, and why.
    pub skipped: Vec<String>,
    /// The PIDs asked for (F5 combines them again).
    pub pids: Vec<u32>,
    /// The process rows in display order (indices into
    /// `combined.processes`).
    pub rows: Vec<usize>,
    /// The selection in `rows` and the first row shown.
    pub cursor: ListCursor,
    /// Sort column of the process table, and whether ascending instead
    /// of the column's natural order (largest first, PID and name
    /// ascending).
    pub sort: TableSort<ProcCol>,
    /// The process table's header and body in the last draw, and its
    /// column spans (x, width, column), for the mouse.
    pub header_area: Rect,
    /// See `header_area`.
    pub body_area: Rect,
    /// See `header_area`.
    pub cols: Vec<(u16, u16, ProcCol)>,
}

impl CombinedView {
    /// A view of `combined`, sorted by Private, largest first.
    pub fn new(
        combined: Combined,
        snaps: Vec<Arc<Snapshot>>,
        skipped: Vec<String>,
        pids: Vec<u32>,
    ) -> CombinedView {
        let mut v = CombinedView {
            combined,
            snaps,
            skipped,
            pids,
            rows: Vec::new(),
            cursor: ListCursor::default(),
            sort: TableSort::new(ProcCol::Private),
            header_area: Rect::default(),
            body_area: Rect::default(),
            cols: Vec::new(),
        };
        v.resort();
        v
    }

    /// Takes a new combination of the same processes (F5), keeping the
    /// sort and the selected process.
    pub fn replace(&mut self, new: CombinedView) {
        let keep = self.selected_pid();
        let sort = self.sort;
        *self = new;
        self.sort = sort;
        self.resort();
        if let Some(i) = keep.and_then(|pid| {
            self.rows
                .iter()
                .position(|&i| self.combined.processes[i].pid == pid)
        }) {
            self.cursor.selected = i;
        }
    }

    /// Orders the rows by the sort column; sorting goes back to the top,
    /// where the largest row is.
    pub fn resort(&mut self) {
        let procs = &self.combined.processes;
        let mut rows: Vec<usize> = (0..procs.len()).collect();
        let sort = self.sort.column;
        rows.sort_by(|&a, &b| {
            let (pa, pb) = (&procs[a], &procs[b]);
            let o = match sort {
                ProcCol::Pid => pa.pid.cmp(&pb.pid),
                ProcCol::Name => pa.name.cmp(&pb.name),
                c => c.figure(pb).cmp(&c.figure(pa)),
            };
            o.then(pa.pid.cmp(&pb.pid))
        });
        if self.sort.reverse {
            rows.reverse();
        }
        self.rows = rows;
        self.cursor = ListCursor::default();
    }

    /// Sorts by `c`; the same column again reverses.
    pub fn sort_by(&mut self, c: ProcCol) {
        self.sort.choose(c);
        self.resort();
    }

    /// Sorts by the next (or previous) column.
    pub fn step_sort(&mut self, back: bool) {
        self.sort.step(&ProcCol::ALL, back);
        self.resort();
    }

    /// Moves the selection by `d` rows, within the table.
    pub fn move_by(&mut self, d: isize) {
        self.cursor.move_by(d, self.rows.len());
    }

    /// The selected process's PID.
    pub fn selected_pid(&self) -> Option<u32> {
        let &i = self.rows.get(self.cursor.selected)?;
        Some(self.combined.processes[i].pid)
    }

    /// The selected process's snapshot, to open in the main view.
    pub fn selected_snapshot(&self) -> Option<Arc<Snapshot>> {
        let &i = self.rows.get(self.cursor.selected)?;
        self.snaps.get(i).cloned()
    }

    /// Draws the view in `area`, `status` on its last line.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect, settings: &Settings, status: &str) {
        if area.height == 0 || area.width == 0 {
            return;
        }
        let mut s = crate::Strips::new(area);
        let (header, bars) = s.head();
        self.draw_header(f, header);
        self.draw_bars(f, bars, settings);
        // The process table keeps a header and up to three rows (and the
        // line above it); the Summary takes the rest it needs.
        let left = s.left().saturating_sub(1);
        let procs_min = (self.rows.len().min(3) as u16 + 1).min(left);
        let types = self.types();
        let summary_h = (types.len() as u16 + 2).min(left.saturating_sub(procs_min + 1));
        let summary = s.take(summary_h);
        self.draw_summary(f, summary, settings, &types);
        let position = s.take(1);
        let table = s.take(s.left().saturating_sub(1));
        self.draw_processes(f, table, settings.units);
        self.draw_position(f, position);
        let st = s.take(1);
        f.render_widget(
            Paragraph::new(status.to_string())
                .style(Style::default().add_modifier(Modifier::REVERSED)),
            st,
        );
    }

    fn draw_header(&self, f: &mut Frame<'_>, area: Rect) {
        let once = match self.combined.counted_once {
            CountedOnce::FrameUnion => "shared pages counted once: exact (page frames)",
            CountedOnce::PssSum => "shared pages counted once: sum of PSS (exact as root)",
        };
        let skipped = if self.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", self.skipped.len())
        };
        let text = format!(
            " Combined: {} processes{skipped}  {once}",
            self.combined.processes.len()
        );
        f.render_widget(
            Paragraph::new(text).style(Style::default().add_modifier(Modifier::BOLD)),
            area,
        );
    }

    /// The types with memory, in VMMap's order.
    fn types(&self) -> Vec<&CombinedRow> {
        self.combined.rows.iter().filter(|r| r.size > 0).collect()
    }

    /// The three bars of the sum: Committed and Private add up; the
    /// working set is counted once, as the Summary's `WS once`.
    fn draw_bars(&self, f: &mut Frame<'_>, area: Rect, settings: &Settings) {
        let total = &self.combined.total;
        let parts = |v: fn(&CombinedRow) -> u64| -> Vec<(MemoryType, u64)> {
            self.combined
                .rows
                .iter()
                .filter_map(|r| Some((r.memory_type?, v(r))))
                .collect()
        };
        let bars = [
            Bar {
                label: "Committed",
                total: total.committed,
                parts: parts(|r| r.committed),
            },
            Bar {
                label: "Private Bytes",
                total: total.private,
                parts: parts(|r| r.private),
            },
            Bar {
                label: "Working Set",
                total: total.total_ws_once,
                parts: parts(|r| r.total_ws_once),
            },
        ];
        draw_bar_graphs(f, area, settings, &bars);
    }

    /// The Summary by type (also the colour key), Total last. When not
    /// every type fits, those with the most committed memory stay.
    fn draw_summary(
        &self,
        f: &mut Frame<'_>,
        area: Rect,
        settings: &Settings,
        types: &[&CombinedRow],
    ) {
        if area.height < 2 {
            return;
        }
        let w = num_width(settings.units);
        // Columns not known (the working set's split without root) take
        // no width.
        let known: Vec<TypeCol> = TypeCol::ALL
            .into_iter()
            .filter(|c| c.value(&self.combined.total).is_some())
            .collect();
        let cols = fit(
            &known,
            &TypeCol::IMPORTANCE,
            area.width.saturating_sub(16),
            w + 1,
        );
        let room = area.height as usize - 2;
        let mut shown: Vec<&CombinedRow> = types.to_vec();
        if shown.len() > room {
            let mut by_size = shown.clone();
            by_size.sort_by_key(|r| std::cmp::Reverse(r.committed));
            by_size.truncate(room);
            shown.retain(|r| by_size.iter().any(|k| std::ptr::eq(*k, *r)));
        }
        let nw = w as usize;
        let header = TableRow::new(
            std::iter::once("Type".to_string())
                .chain(cols.iter().map(|c| format!("{:>nw$}", c.header())))
                .collect::<Vec<_>>(),
        )
        .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let rows = shown
            .into_iter()
            .chain(std::iter::once(&self.combined.total))
            .map(|r| {
                let key = match r.memory_type {
                    Some(t) => match settings.glyph(t) {
                        Some(g) => Span::raw(format!("{g}{g} ")),
                        None => Span::styled("██ ", Style::default().fg(settings.colour(t))),
                    },
                    None => Span::raw("   "),
                };
                let name = r.memory_type.map_or("Total", |t| t.name());
                let mut cells = vec![Cell::from(Line::from(vec![key, Span::raw(name)]))];
                for c in &cols {
                    let text = c
                        .value(r)
                        .map_or_else(|| "n/a".to_string(), |v| settings.units.format(v));
                    cells.push(Cell::from(format!("{text:>nw$}")));
                }
                let style = if r.memory_type.is_none() {
                    Style::default().add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                };
                TableRow::new(cells).style(style)
            });
        let widths: Vec<Constraint> = std::iter::once(Constraint::Length(15))
            .chain(cols.iter().map(|_| Constraint::Length(w)))
            .collect();
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            area,
        );
    }

    /// The line above the process table: which rows show of how many.
    fn draw_position(&self, f: &mut Frame<'_>, area: Rect) {
        let n = self.rows.len();
        let h = self.body_area.height as usize;
        let text = if n == 0 {
            "no process could be read".to_string()
        } else {
            let (first, last) = self.cursor.rows_on_screen(h, n);
            format!("processes {first}-{last} of {n}  (Enter opens one)")
        };
        f.render_widget(
            Paragraph::new(text)
                .alignment(ratatui::layout::Alignment::Right)
                .style(Style::default().add_modifier(Modifier::DIM)),
            area,
        );
    }

    fn draw_processes(&mut self, f: &mut Frame<'_>, area: Rect, units: Units) {
        self.header_area = Rect {
            height: area.height.min(1),
            ..area
        };
        self.body_area = Rect {
            y: area.y + area.height.min(1),
            height: area.height.saturating_sub(1),
            ..area
        };
        if area.height < 2 {
            self.cols.clear();
            return;
        }
        let w = num_width(units);
        let name_w = 16u16;
        let figures: Vec<ProcCol> = ProcCol::ALL[2..].to_vec();
        // The sorted column stays, so that its arrow is in sight.
        let mut importance = vec![self.sort.column];
        importance.extend(figures.iter().copied().filter(|&c| c != self.sort.column));
        let mut cols = vec![ProcCol::Pid, ProcCol::Name];
        cols.extend(fit(
            &figures,
            &importance,
            area.width.saturating_sub(7 + 1 + name_w + 1),
            w + 1,
        ));
        let height = self.body_area.height as usize;
        self.cursor.scroll_into_view(height);
        let width_of = |c: ProcCol| match c {
            ProcCol::Pid => 7,
            ProcCol::Name => name_w,
            _ => w,
        };
        let mut x = area.x;
        self.cols = cols
            .iter()
            .map(|&c| {
                let span = (x, width_of(c), c);
                x += width_of(c) + 1;
                span
            })
            .collect();
        let nw = w as usize;
        let header = TableRow::new(
            cols.iter()
                .map(|&c| {
                    let mark = self.sort.mark(c);
                    match c {
                        ProcCol::Pid => format!("{:>7}", format!("{mark}PID")),
                        ProcCol::Name => format!("Name{mark}"),
                        c => format!("{:>nw$}", format!("{mark}{}", c.header())),
                    }
                })
                .collect::<Vec<_>>(),
        )
        .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let procs = &self.combined.processes;
        let rows = self.cursor.on_screen(&self.rows, height).map(|(k, &i)| {
            let p = &procs[i];
            let cells: Vec<String> = cols
                .iter()
                .map(|&c| match c {
                    ProcCol::Pid => format!("{:>7}", p.pid),
                    ProcCol::Name => escape(&p.name).into_owned(),
                    c => format!("{:>nw$}", units.format(c.figure(p).unwrap_or(0))),
                })
                .collect();
            let style = if k == self.cursor.selected {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            TableRow::new(cells).style(style)
        });
        let widths: Vec<Constraint> = cols
            .iter()
            .map(|&c| Constraint::Length(width_of(c)))
            .collect();
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            area,
        );
    }
}

/// The columns of `all` (kept in its order) that fit in `budget` cells at
/// `room` each, taken by `importance`.
fn fit<T: Copy + PartialEq>(all: &[T], importance: &[T], budget: u16, room: u16) -> Vec<T> {
    let n = (budget / room.max(1)) as usize;
    let kept: Vec<T> = importance
        .iter()
        .copied()
        .filter(|c| all.contains(c))
        .take(n)
        .collect();
    all.iter().copied().filter(|c| kept.contains(c)).collect()
}
