//! Driving the app as a terminal would in the render tests: drawing it on
//! a test backend, pressing keys and clicking.

// Each test binary uses some of these.
#![allow(dead_code)]

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::style::Color;
use ratatui::Terminal;
use vmmap_tui::app::App;
use vmmap_tui::collector::Request;

/// The app drawn once on a `w` x `h` screen.
pub fn draw(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    t
}

/// A key pressed without modifiers; what the app asks to collect.
pub fn key(app: &mut App, code: KeyCode) -> Vec<Request> {
    app.on_event(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// A left click at column `x`, row `y`; what the app asks to collect.
pub fn click(app: &mut App, x: u16, y: u16) -> Vec<Request> {
    app.on_event(Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    }))
}

/// How many cells of the screen have a colour of their own.
pub fn coloured_cells(t: &Terminal<TestBackend>) -> usize {
    t.backend()
        .buffer()
        .content
        .iter()
        .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
        .count()
}
