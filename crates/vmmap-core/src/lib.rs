/*!
The engine of vmmap: how a Linux process uses its address space, by type,
in figures that reconcile with the kernel's own accounting.

# Overview

- [`proc`]: sans-IO parsers, one module per `/proc` file (bytes in, typed
  values out).
- [`collect`]: the thin reader on top: [`collect::snapshot`] reads a
  process's files once each and returns a [`Snapshot`];
  [`collect::list_processes`] and [`collect::find_by_name`] serve `ps` and
  name lookup.
- [`classify`]: the rules that give each region a [`MemoryType`], with the
  evidence that decided it. I/O goes through the [`classify::Inspector`]
  trait.
- [`figures`] and [`summary`]: VMMap's columns (and the Linux ones it
  lacks) derived from smaps fields, and the per-type Summary.
- [`diff`]: the changes between two snapshots of one process, by type and
  by region (VMMap's Show Changes).
- [`export`]: JSON and CSV with versioned schemas; [`metrics`]: OpenMetrics
  text for Prometheus.
- [`format`]: the native file format (append-only, self-checking chunks);
  [`mmp`]: Sysinternals VMMap's `.mmp` XML, both ways;
  and [`timeline`]: totals over time from a recording.
- Traced runs (`vmmap run`) are read by the `vmmap-trace` crate, on top of
  this one; the bytes the agent writes are `vmmap-wire`'s, which
  [`format`] shares.
- [`lookup`]: which region holds an address, and its neighbours.
- The fragmentation map and the HTML report are drawn by the
  `vmmap-render` crate, on top of this one, in the type colours of
  [`palette`], which the terminal UI uses too.
- [`output`]: writing an output file without harm (atomic replacement,
  devices and FIFOs written in place, no planted links followed).
- [`memory`]: strings and pattern search in the target's memory, read in
  bounded chunks (only on explicit request: it exposes secrets).
- [`text`]: untrusted text (names, paths, strings from memory) escaped
  for showing, so that no control character reaches a terminal.

This crate knows nothing of terminals or argument parsing; front ends sit on
top of it.
*/

#![warn(missing_docs)]

pub mod classify;
pub mod collect;
pub mod container;
pub mod diff;
pub mod elf;
pub mod elf_debug;
mod endian;
mod error;
pub mod export;
pub mod figures;
pub mod format;
pub mod hex;
pub mod hsperfdata;
pub mod lookup;
pub mod memory;
pub mod metrics;
pub mod mmp;
pub mod model;
pub mod multi;
pub mod output;
pub mod palette;
pub mod proc;
pub mod regular;
pub mod sharing;
pub mod summary;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod text;
pub mod timeline;
pub mod top;
pub mod units;
pub mod validate;
pub mod xml;

pub use error::{Error, Result};
pub use figures::{Column, Figures};
pub use model::{MemoryType, Region, Snapshot};
pub use summary::Summary;
