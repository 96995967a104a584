//! One integration binary: real fixture processes, the real `vmmap`.

mod address;
mod errors;
mod memory;
mod metrics;
mod mmp;
mod output;
mod owners;
mod reclaim;
mod record;
mod report;
mod runtimes;
mod sharing;
mod shell;
mod snapshot;
mod trace;
mod trace_analysis;
mod trace_harm;
mod tui;
mod util;
