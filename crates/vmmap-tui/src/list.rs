//! The selection and scroll position of a list drawn a window at a time,
//! the sort of a table, and the moves every list view makes with them.
//!
//! The picker, the Details table, the combined and `top` tables, the
//! strings list and the trace view's lists each keep a cursor of their own
//! over rows they own, and the tables a sort: one type each, so that the
//! keys, the wheel, the clicks and the headers work in every list alike.

use ratatui::crossterm::event::KeyCode;

/// Which row of a list is selected and which is drawn first. The rows
/// live beside it in each view (of a different type in each), so the
/// moves take their count and clamp to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListCursor {
    /// Selected index into the list's rows.
    pub selected: usize,
    /// First row drawn.
    pub offset: usize,
}

impl ListCursor {
    /// Moves the selection by `delta` rows within a list of `len` rows.
    pub fn move_by(&mut self, delta: isize, len: usize) {
        let last = len.saturating_sub(1) as isize;
        self.selected = (self.selected as isize)
            .saturating_add(delta)
            .clamp(0, last.max(0)) as usize;
    }

    /// Moves the selection by a key: Up and Down (and `k`, `j`) a row,
    /// PgUp and PgDn `page` rows, Home and End to the ends. Whether `code`
    /// was one of them.
    pub fn move_key(&mut self, code: KeyCode, len: usize, page: usize) -> bool {
        let page = page.max(1) as isize;
        let delta = match code {
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::PageDown => page,
            KeyCode::PageUp => -page,
            KeyCode::Home => isize::MIN,
            KeyCode::End => isize::MAX,
            _ => return false,
        };
        self.move_by(delta, len);
        true
    }

    /// Selects row `i` (a click on it); whether it was selected already,
    /// which makes the click a second one that opens the row.
    pub fn click(&mut self, i: usize) -> bool {
        std::mem::replace(&mut self.selected, i) == i
    }

    /// Keeps the selected row inside the window of `height` rows, moving
    /// the window as little as it can (a list not drawn yet, `height` 0,
    /// keeps its window).
    pub fn scroll_into_view(&mut self, height: usize) {
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if height > 0 && self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
    }

    /// The first and the last row on screen of a list of `len` rows,
    /// counted from 1, for the lines that say `rows 11-20 of 312`.
    pub fn rows_on_screen(&self, height: usize, len: usize) -> (usize, usize) {
        (self.offset + 1, (self.offset + height).min(len))
    }

    /// The rows of `rows` in the window of `height` rows, with their index.
    pub fn on_screen<'a, T>(
        &self,
        rows: &'a [T],
        height: usize,
    ) -> impl Iterator<Item = (usize, &'a T)> {
        crate::on_screen(rows, self.offset, height)
    }
}

/// How a table is sorted: by which column, and whether against the
/// column's natural order (largest first for figures, ascending for names
/// and addresses), which each view's sort applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSort<C> {
    /// The column sorted by.
    pub column: C,
    /// Against the column's natural order.
    pub reverse: bool,
}

impl<C: Copy + PartialEq> TableSort<C> {
    /// By `column`, in its natural order.
    pub fn new(column: C) -> TableSort<C> {
        TableSort {
            column,
            reverse: false,
        }
    }

    /// Sorts by `by`: a new column in its natural order, the same column
    /// again reversed (a click on a header, a sort key).
    pub fn choose(&mut self, by: C) {
        if self.column == by {
            self.flip();
        } else {
            *self = TableSort::new(by);
        }
    }

    /// Sorts by the column after (`back`: before) the current one in
    /// `order`, wrapping, in its natural order; by the first when the
    /// current one is not in `order`.
    pub fn step(&mut self, order: &[C], back: bool) {
        let n = order.len();
        if n == 0 {
            return;
        }
        let i = order.iter().position(|&c| c == self.column).unwrap_or(0);
        *self = TableSort::new(order[if back { (i + n - 1) % n } else { (i + 1) % n }]);
    }

    /// Reverses the order.
    pub fn flip(&mut self) {
        self.reverse = !self.reverse;
    }

    /// The arrow a header shows: on the column sorted by, the direction;
    /// on the others nothing.
    pub fn mark(&self, c: C) -> &'static str {
        match (c == self.column, self.reverse) {
            (false, _) => "",
            (true, false) => "▼",
            (true, true) => "▲",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_within_the_list() {
        let mut c = ListCursor::default();
        assert!(c.move_key(KeyCode::Down, 5, 2));
        assert_eq!(c.selected, 1);
        c.move_key(KeyCode::PageDown, 5, 2);
        assert_eq!(c.selected, 3);
        c.move_key(KeyCode::PageDown, 5, 2);
        assert_eq!(c.selected, 4, "stops at the last row");
        c.move_key(KeyCode::Home, 5, 2);
        assert_eq!(c.selected, 0);
        c.move_key(KeyCode::Up, 5, 2);
        assert_eq!(c.selected, 0, "stops at the first row");
        c.move_key(KeyCode::End, 5, 2);
        assert_eq!(c.selected, 4);
        assert!(!c.move_key(KeyCode::Enter, 5, 2));
        c.move_key(KeyCode::End, 0, 2);
        assert_eq!(c.selected, 0, "an empty list selects its first row");
    }

    #[test]
    fn the_window_follows_the_selection() {
        let mut c = ListCursor {
            selected: 7,
            offset: 0,
        };
        c.scroll_into_view(0);
        assert_eq!(c.offset, 0, "not drawn yet");
        c.scroll_into_view(5);
        assert_eq!(c.offset, 3);
        c.selected = 1;
        c.scroll_into_view(5);
        assert_eq!(c.offset, 1);
        assert!(!c.click(2));
        assert!(c.click(2));
    }

    #[test]
    fn a_sort_steps_chooses_and_marks() {
        let mut s = TableSort::new('b');
        s.step(&['a', 'b', 'c'], false);
        assert_eq!(s, TableSort::new('c'));
        s.step(&['a', 'b', 'c'], false);
        assert_eq!(s.column, 'a', "wraps");
        s.step(&['a', 'b', 'c'], true);
        assert_eq!(s.column, 'c');
        s.choose('c');
        assert!(s.reverse, "the same column again reverses");
        assert_eq!((s.mark('c'), s.mark('a')), ("▲", ""));
        s.choose('a');
        assert_eq!(s, TableSort::new('a'), "a new column in its natural order");
        assert_eq!(s.mark('a'), "▼");
    }
}
