//! One integration binary: real fixture processes, the real `vmmap`.

mod address;
mod bounds;
mod errors;
mod hostile_text;
mod memory;
mod metrics;
mod mmp;
mod output;
mod owners;
mod real_programs;
mod reclaim;
mod record;
mod report;
mod run_snapshots;
mod runtimes;
mod serve;
mod sharing;
mod shell;
mod snapshot;
mod stacks;
mod trace;
mod trace_analysis;
mod trace_harm;
mod trace_views;
mod tui;
mod util;
