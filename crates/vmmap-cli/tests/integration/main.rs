//! One integration binary: real fixture processes, the real `vmmap`.

mod address;
mod errors;
mod memory;
mod reclaim;
mod record;
mod snapshot;
mod tui;
mod util;
