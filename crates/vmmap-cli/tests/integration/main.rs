//! One integration binary: real fixture processes, the real `vmmap`.

mod address;
mod attach;

mod bounds;
mod chromium;
mod errors;
mod golden;
mod hostile_text;
mod install;
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
mod seccomp;
mod serve;
mod sharing;
mod shell;
mod snapshot;
mod stacks;
mod top;
mod trace;
mod trace_alone;
mod trace_analysis;
mod trace_creds;
mod trace_harm;
mod trace_views;
mod tui;
mod util;
mod width;
