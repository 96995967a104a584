//! One integration binary: real fixture processes, the real `vmmap`.

mod errors;
mod snapshot;
mod tui;
mod util;
