//! The application: screens, input modes, key and mouse handling, and the
//! event loop that ties the collection thread to drawing.

mod state;

pub use state::*;
