//! The Strings view (Ctrl+T) and the memory search results: a list of
//! addresses with a tag and a text, filtered as the user types. The
//! reading is done by `vmmap_core::memory` when the view opens; this is
//! view state and drawing only.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use ratatui::crossterm::event::KeyCode;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use vmmap_core::collect::ProcDir;
use vmmap_core::memory::{self, ProcessMemory, ScanRange};
use vmmap_core::model::Snapshot;
use vmmap_core::text::Escaped;

use crate::list::ListCursor;

/// The most bytes the Strings view reads from one region, so that it
/// opens quickly on a huge heap (the command line has no limit).
pub const READ_LIMIT: u64 = 256 << 20;
/// The most items the view holds.
pub const ITEM_LIMIT: usize = 200_000;

/// One line of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Address.
    pub address: u64,
    /// Encoding (strings) or region type (search results).
    pub tag: String,
    /// The string, or the matched text.
    pub text: String,
}

/// The list's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryList {
    /// The title: what was read.
    pub title: String,
    /// A note for the bottom line: how much was read, what was cut.
    pub note: String,
    /// Every item.
    pub items: Vec<Item>,
    /// Indices of the items that match the filter.
    pub visible: Vec<usize>,
    /// The filter text (case-insensitive substring of the text).
    pub filter: String,
    /// The filter prompt has the keys.
    pub editing: bool,
    /// The selection in `visible` and the first line drawn.
    pub cursor: ListCursor,
}

impl MemoryList {
    /// A list of items, all visible.
    pub fn new(title: String, note: String, items: Vec<Item>) -> MemoryList {
        let visible = (0..items.len()).collect();
        MemoryList {
            title,
            note,
            items,
            visible,
            filter: String::new(),
            editing: false,
            cursor: ListCursor::default(),
        }
    }

    /// Applies the filter again after it changed.
    pub fn refilter(&mut self) {
        let f = self.filter.to_lowercase();
        self.visible = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| f.is_empty() || it.text.to_lowercase().contains(&f))
            .map(|(i, _)| i)
            .collect();
        self.cursor = ListCursor::default();
    }

    /// The selected item.
    pub fn selected_item(&self) -> Option<&Item> {
        self.visible
            .get(self.cursor.selected)
            .map(|&i| &self.items[i])
    }

    /// Moves the selection by `delta` lines.
    pub fn move_by(&mut self, delta: isize) {
        self.cursor.move_by(delta, self.visible.len());
    }

    /// Moves the selection by a key (see [`ListCursor::move_key`]; a page
    /// is 20 lines); whether `code` moves it.
    pub fn move_key(&mut self, code: KeyCode) -> bool {
        self.cursor.move_key(code, self.visible.len(), 20)
    }

    /// Draws the list over `area`.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        if area.height < 3 || area.width < 4 {
            return;
        }
        f.render_widget(Clear, area);
        let block = Block::default().borders(Borders::ALL).title(format!(
            " {} — {} of {} shown ",
            self.title,
            self.visible.len(),
            self.items.len()
        ));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let body_h = inner.height.saturating_sub(1) as usize;
        self.cursor.scroll_into_view(body_h);
        let lines: Vec<Line<'_>> = self
            .cursor
            .on_screen(&self.visible, body_h)
            .map(|(k, &i)| {
                let it = &self.items[i];
                let text = format!(
                    "{:#014x}  {:<12}  {}",
                    it.address,
                    it.tag,
                    // Tabs as spaces, as always here; anything else a
                    // terminal would act on, escaped.
                    Escaped(&it.text.replace('\t', " "))
                );
                if k == self.cursor.selected {
                    Line::styled(text, Style::default().add_modifier(Modifier::REVERSED))
                } else {
                    Line::raw(text)
                }
            })
            .collect();
        f.render_widget(
            Paragraph::new(lines),
            Rect {
                height: body_h as u16,
                ..inner
            },
        );
        let bottom = if self.editing {
            format!("Filter: {}▏  (Enter keeps it, Esc clears)", self.filter)
        } else if self.filter.is_empty() {
            format!(
                "{}  / filter  Enter go to address  y copy  Esc close",
                self.note
            )
        } else {
            format!(
                "Filter {:?}  {}  / edit  Enter go to address  Esc close",
                self.filter, self.note
            )
        };
        f.render_widget(
            Paragraph::new(bottom).style(Style::default().add_modifier(Modifier::REVERSED)),
            Rect {
                y: inner.y + inner.height.saturating_sub(1),
                height: 1,
                ..inner
            },
        );
    }
}

/// The start of a list's bottom line: what was read, and what was left out
/// because it was not resident in the target (never read: reading it would
/// fault it in).
fn read_note(stats: &memory::ReadStats) -> String {
    let size = |v: u64| match v {
        0 => "nothing".to_string(),
        v => vmmap_core::units::size(v, false),
    };
    let mut note = format!("read {}", size(stats.read));
    if stats.not_resident > 0 {
        note.push_str(&format!(
            ", skipped {} not resident in the target",
            size(stats.not_resident)
        ));
    }
    note
}

/// Limits `ranges` to `limit` bytes in total, cutting the last one.
fn limit_ranges(ranges: &mut Vec<ScanRange>, limit: u64) -> bool {
    let mut left = limit;
    let mut cut = false;
    ranges.retain_mut(|r| {
        if left == 0 {
            cut = true;
            return false;
        }
        let len = r.end - r.start;
        if len > left {
            r.end = r.start + left;
            cut = true;
        }
        left -= r.end - r.start;
        true
    });
    cut
}

/// Reads the strings of the region holding `addr` (at most
/// [`READ_LIMIT`] bytes and [`ITEM_LIMIT`] strings).
pub fn read_strings(
    snap: &Snapshot,
    proc_root: &std::path::Path,
    addr: u64,
    min: usize,
) -> Result<MemoryList, String> {
    let Some(mut ranges) = memory::scan_ranges(snap, Some(addr)) else {
        return Err(format!("No region holds {addr:#x}"));
    };
    let i = snap.regions.partition_point(|r| r.end <= addr);
    let region = &snap.regions[i];
    if ranges.is_empty() {
        let why = region
            .vmas()
            .iter()
            .find_map(|v| memory::skip_reason(v))
            .unwrap_or("nothing to read");
        return Err(format!(
            "The {} region at {:#x} cannot be read: {why}",
            region.memory_type.name(),
            region.start
        ));
    }
    let cut = limit_ranges(&mut ranges, READ_LIMIT);
    let dir = ProcDir::open(proc_root, snap.process.pid).map_err(|e| e.to_string())?;
    let mut mem = ProcessMemory::new(dir);
    let mut items = Vec::new();
    let stats = memory::strings(
        &mut mem,
        &ranges,
        min,
        memory::strings::Encodings::ALL,
        memory::CHUNK,
        snap.kernel.page_size,
        &mut |_| ControlFlow::Continue(()),
        &mut |hit| {
            items.push(Item {
                address: hit.found.address,
                tag: hit.found.encoding.id().to_string(),
                text: hit.found.text,
            });
            if items.len() >= ITEM_LIMIT {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .map_err(|e| e.to_string())?;
    items.sort_by_key(|it| it.address);
    let mut note = read_note(&stats);
    if stats.unreadable > 0 {
        note.push_str(&format!(
            ", {} unreadable",
            vmmap_core::units::size(stats.unreadable, false)
        ));
    }
    if cut {
        note.push_str(&format!(
            ", first {} only",
            vmmap_core::units::size(READ_LIMIT, false)
        ));
    }
    if items.len() >= ITEM_LIMIT {
        note.push_str(&format!(", first {ITEM_LIMIT} strings"));
    }
    let title = format!(
        "Strings in {} {:#x}-{:#x} {}",
        region.memory_type.name(),
        region.start,
        region.end,
        Escaped(if region.details.is_empty() {
            &region.path
        } else {
            &region.details
        })
    );
    Ok(MemoryList::new(title.trim_end().to_string(), note, items))
}

/// The most matches a search in the view collects.
pub const MATCH_LIMIT: usize = 10_000;

/// A memory search running on its own thread, so that the view keeps
/// drawing (and can be cancelled) while gigabytes are read.
pub struct SearchJob {
    /// What is searched for.
    pub query: String,
    /// Bytes read so far and in all.
    pub done: u64,
    /// Bytes to read.
    pub total: u64,
    /// Set to stop the search.
    pub cancel: Arc<AtomicBool>,
    /// Progress and the result.
    pub rx: Receiver<JobMessage>,
}

/// What the search thread reports.
pub enum JobMessage {
    /// Bytes read so far.
    Progress(u64),
    /// The matches, or why there are none.
    Done(Result<MemoryList, String>),
}

/// Compiles `query` (literal text, `re:REGEX` or `hex:de ad be ef`) and
/// starts searching every readable region of `snap` on a new thread.
pub fn start_search(
    snap: Arc<Snapshot>,
    proc_root: std::path::PathBuf,
    query: &str,
) -> Result<SearchJob, String> {
    use memory::search::{escape, parse_hex, Searcher};
    let mut searcher = if let Some(re) = query.strip_prefix("re:") {
        Searcher::regex(re, false)
    } else if let Some(h) = query.strip_prefix("hex:") {
        parse_hex(h).and_then(|b| Searcher::literal(&b))
    } else {
        Searcher::literal(query.as_bytes())
    }
    .map_err(|e| format!("Bad pattern: {e}"))?;
    let ranges = memory::scan_ranges(&snap, None).unwrap_or_default();
    let total = ranges.iter().map(|r| r.end - r.start).sum();
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let stop = Arc::clone(&cancel);
    let q = query.to_string();
    std::thread::spawn(move || {
        let mut run = || -> Result<MemoryList, String> {
            let dir = ProcDir::open(&proc_root, snap.process.pid).map_err(|e| e.to_string())?;
            let mut mem = ProcessMemory::new(dir);
            let mut items = Vec::new();
            let mut last = 0u64;
            let stats = memory::search(
                &mut mem,
                &ranges,
                &mut searcher,
                memory::CHUNK,
                snap.kernel.page_size,
                &mut |d| {
                    if d >= last + (16 << 20) {
                        last = d;
                        let _ = tx.send(JobMessage::Progress(d));
                    }
                    if stop.load(Ordering::Relaxed) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
                &mut |hit| {
                    items.push(Item {
                        address: hit.found.address,
                        tag: snap.regions[hit.region].memory_type.name().to_string(),
                        text: escape(&hit.found.bytes),
                    });
                    if items.len() >= MATCH_LIMIT {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .map_err(|e| e.to_string())?;
            if stop.load(Ordering::Relaxed) {
                return Err(format!("Search for {q:?} cancelled"));
            }
            let mut note = read_note(&stats);
            if items.len() >= MATCH_LIMIT {
                note.push_str(&format!(", first {MATCH_LIMIT} matches"));
            }
            Ok(MemoryList::new(
                format!("Matches of {q:?} in memory"),
                note,
                items,
            ))
        };
        let _ = tx.send(JobMessage::Done(run()));
    });
    Ok(SearchJob {
        query: query.to_string(),
        done: 0,
        total,
        cancel,
        rx,
    })
}

impl SearchJob {
    /// The status line while it runs.
    pub fn status(&self) -> String {
        let pct = (self.done.saturating_mul(100))
            .checked_div(self.total)
            .unwrap_or(0);
        format!(
            "Searching memory for {:?}: {} of {} ({pct}%), Esc cancels",
            self.query,
            vmmap_core::units::size(self.done, false),
            vmmap_core::units::size(self.total, false)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_selection() {
        let items = ["alpha", "Beta", "alphabet", "gamma"]
            .iter()
            .enumerate()
            .map(|(i, t)| Item {
                address: 0x1000 + i as u64 * 16,
                tag: "ascii".into(),
                text: t.to_string(),
            })
            .collect();
        let mut l = MemoryList::new("t".into(), String::new(), items);
        l.move_by(10);
        assert_eq!(l.cursor.selected, 3);
        l.filter = "ALPHA".into();
        l.refilter();
        assert_eq!(l.visible, vec![0, 2]);
        assert_eq!(l.cursor.selected, 0);
        l.move_by(1);
        assert_eq!(l.selected_item().map(|i| i.address), Some(0x1020));
        l.filter = "zzz".into();
        l.refilter();
        assert!(l.selected_item().is_none());
    }

    #[test]
    fn ranges_are_cut_at_the_limit() {
        let mut r = vec![
            ScanRange {
                start: 0,
                end: 100,
                region: 0,
            },
            ScanRange {
                start: 200,
                end: 300,
                region: 0,
            },
            ScanRange {
                start: 400,
                end: 500,
                region: 0,
            },
        ];
        assert!(limit_ranges(&mut r, 150));
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].start, r[1].end), (200, 250));
        let mut r2 = r.clone();
        assert!(!limit_ranges(&mut r2, 1000));
    }
}
