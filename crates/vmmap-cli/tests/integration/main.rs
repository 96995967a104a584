//! One integration binary: real fixture processes, the real `vmmap`.

mod address;
mod errors;
mod memory;
mod metrics;
mod mmp;
mod owners;
mod reclaim;
mod record;
mod report;
mod runtimes;
mod sharing;
mod shell;
mod snapshot;
mod stacks;
mod trace;
mod trace_analysis;
mod tui;
mod util;
