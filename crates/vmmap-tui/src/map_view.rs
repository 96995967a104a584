//! The full-screen fragmentation map (`m`): the whole address space on
//! `vmmap_render::layout`'s compressed axis, one character cell per stretch
//! of the axis, a letter per type, and a cursor that names the region (or
//! gap) under it.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use vmmap_core::model::{MemoryType, Snapshot};
use vmmap_render::layout::Layout;

use crate::settings::Settings;

/// The map's state: the layout of the shown snapshot and the cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapView {
    /// The layout.
    pub layout: Layout,
    /// The cursor, a cell index (row-major).
    pub cursor: usize,
    /// Cells per row at the last draw (for Up/Down).
    pub width: usize,
    /// Segment shown in each cell at the last draw.
    pub cells: Vec<usize>,
}

/// The letter of a type on the map (lower case for a PROT_NONE region).
pub fn letter(t: MemoryType, reserved: bool) -> char {
    let c = match t {
        MemoryType::Image => 'I',
        MemoryType::MappedFile => 'F',
        MemoryType::Shareable => 'S',
        MemoryType::Heap => 'H',
        MemoryType::ManagedHeap => 'M',
        MemoryType::Stack => 'T',
        MemoryType::PrivateData => 'P',
        MemoryType::PageTable => 'G',
        MemoryType::Free => return '·',
    };
    if reserved {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

impl MapView {
    /// The map of a snapshot, the cursor on the first cell.
    pub fn new(snap: &Snapshot) -> MapView {
        MapView {
            layout: Layout::of(snap),
            cursor: 0,
            width: 1,
            cells: Vec::new(),
        }
    }

    /// The segment under the cursor.
    pub fn segment(&self) -> Option<&vmmap_render::layout::Segment> {
        self.cells
            .get(self.cursor)
            .and_then(|&i| self.layout.segments.get(i))
    }

    /// Moves the cursor by `delta` cells, clamped.
    pub fn move_by(&mut self, delta: isize) {
        let last = self.cells.len().saturating_sub(1) as isize;
        self.cursor = (self.cursor as isize + delta).clamp(0, last.max(0)) as usize;
    }

    /// Moves the cursor to the next (or previous) cell that shows another
    /// segment.
    pub fn jump(&mut self, forward: bool) {
        let Some(&here) = self.cells.get(self.cursor) else {
            return;
        };
        let found = if forward {
            (self.cursor + 1..self.cells.len()).find(|&c| self.cells[c] != here)
        } else {
            // The first cell of the previous segment.
            (0..self.cursor)
                .rev()
                .find(|&c| self.cells[c] != here)
                .map(|c| {
                    let prev = self.cells[c];
                    (0..=c)
                        .rev()
                        .take_while(|&k| self.cells[k] == prev)
                        .last()
                        .unwrap_or(c)
                })
        };
        if let Some(c) = found {
            self.cursor = c;
        }
    }

    /// Draws the map over `area`.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect, snap: &Snapshot, settings: &Settings) {
        f.render_widget(Clear, area);
        if area.height < 4 || area.width < 10 {
            return;
        }
        let l = &self.layout;
        let largest = l.largest_free.map_or_else(
            || "none".to_string(),
            |b| {
                format!(
                    "{} at {:#x}",
                    vmmap_core::units::size(b.size(), false),
                    b.start
                )
            },
        );
        let head = format!(
            " Fragmentation map of {}: {} regions, {} gaps, {} free, largest {largest}, {} reserved",
            snap.process.pid,
            l.region_count,
            l.gap_count,
            vmmap_render::layout::figure(l.free_bytes),
            vmmap_render::layout::figure(l.reserved_bytes),
        );
        f.render_widget(
            Paragraph::new(head).style(Style::default().add_modifier(Modifier::BOLD)),
            Rect { height: 1, ..area },
        );
        let grid = Rect {
            y: area.y + 1,
            height: area.height - 3,
            ..area
        };
        let width = grid.width as usize;
        let n = width * grid.height as usize;
        self.width = width;
        self.cells = l.cells(n);
        self.cursor = self.cursor.min(n.saturating_sub(1));
        let lines: Vec<Line<'_>> = self
            .cells
            .chunks(width)
            .enumerate()
            .map(|(row, cells)| {
                Line::from(
                    cells
                        .iter()
                        .enumerate()
                        .map(|(col, &i)| {
                            let s = &l.segments[i];
                            let mut style = if s.region.is_some() {
                                Style::default().fg(settings.colour(s.memory_type))
                            } else {
                                Style::default().fg(Color::DarkGray)
                            };
                            if row * width + col == self.cursor {
                                style = style.add_modifier(Modifier::REVERSED);
                            }
                            Span::styled(letter(s.memory_type, s.reserved).to_string(), style)
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        f.render_widget(Paragraph::new(lines), grid);
        let legend = " I Image  F Mapped File  S Shareable  H Heap  M Managed  T Stack  P Private  lower case: reserved  · free  (16 units per doubling of size)";
        f.render_widget(
            Paragraph::new(legend),
            Rect {
                y: area.y + area.height - 2,
                height: 1,
                ..area
            },
        );
        let status = match self.segment() {
            Some(s) => format!(
                " {}  ←→↑↓ n/N move  Enter go to it  Esc close",
                vmmap_core::text::Escaped(&l.title(snap, s))
            ),
            None => " Esc close".to_string(),
        };
        f.render_widget(
            Paragraph::new(status).style(Style::default().add_modifier(Modifier::REVERSED)),
            Rect {
                y: area.y + area.height - 1,
                height: 1,
                ..area
            },
        );
    }
}
