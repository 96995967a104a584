//! One integration binary: real fixture processes, the real `vmmap`.

mod errors;
mod metrics;
mod mmp;
mod record;
mod shell;
mod snapshot;
mod trace;
mod tui;
mod util;
