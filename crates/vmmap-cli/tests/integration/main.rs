//! One integration binary: real fixture processes, the real `vmmap`.

mod errors;
mod record;
mod snapshot;
mod trace;
mod tui;
mod util;
