//! The selection and scroll position of a list drawn a window at a time,
//! and the moves every list view makes with them.
//!
//! The picker, the Details table, the combined and `top` tables, the
//! strings list and the trace view's lists each keep a cursor of their own
//! over rows they own: one type, so that the keys, the wheel and the
//! clicks move every list alike.

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
}
