//! The contents of a process's memory: text strings ([`mod@strings`]) and
//! pattern search ([`mod@search`]), over a bounded-memory chunked reader
//! ([`reader`]). The scanners are sans-IO; only [`reader`] touches the
//! process.
//!
//! Reading another process's memory exposes whatever it holds (keys,
//! passwords, tokens). vmmap does it only when asked: `vmmap strings`,
//! `vmmap find`, the interactive Strings view, and the few bytes of glibc
//! arena headers read during classification (`--no-read-memory` stops
//! those). It reads only pages resident in the process: reading any other
//! would fault it in ([`reader`]).

pub mod malloc;
pub(crate) mod reader;
pub(crate) mod residency;
pub mod search;
pub mod strings;

use std::ops::ControlFlow;

pub use reader::{scan_ranges, skip_reason, vm_readv, ProcessMemory, ReadStats, ScanRange};
use strings::{Encodings, Found, StringScanner};

use crate::error::Result;

/// Bytes read at a time: the buffer is this plus the overlap, whatever the
/// size of the process.
pub const CHUNK: usize = 1 << 20;

/// A string found in a process, with the top-level region that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringHit {
    /// The string.
    pub found: Found,
    /// Index of its region in `Snapshot::regions`.
    pub region: usize,
}

/// Finds the strings in `ranges`, reading `chunk` bytes at a time. Each
/// range is scanned on its own (a string never spans two mappings).
#[allow(clippy::too_many_arguments)]
pub fn strings(
    mem: &mut ProcessMemory,
    ranges: &[ScanRange],
    min: usize,
    encodings: Encodings,
    chunk: usize,
    page_size: u64,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
    out: &mut dyn FnMut(StringHit) -> ControlFlow<()>,
) -> Result<ReadStats> {
    let mut scanner = StringScanner::new(min, encodings);
    // The range being scanned (its start) and its region.
    let mut current: Option<(u64, usize)> = None;
    let mut flow = ControlFlow::Continue(());
    // The strings whose runs ended in one read, sent in address order (the
    // UTF-8 and UTF-16 lanes end their runs independently).
    let mut batch: Vec<Found> = Vec::new();
    let mut send = |flow: &mut ControlFlow<()>, batch: &mut Vec<Found>, region: usize| {
        batch.sort_by_key(|f| f.address);
        for f in batch.drain(..) {
            if flow.is_continue() {
                *flow = out(StringHit { found: f, region });
            }
        }
    };
    let stats = reader::walk(mem, ranges, chunk, 0, page_size, progress, &mut |c| {
        if current.map(|(s, _)| s) != Some(c.range.start) {
            if let Some((_, region)) = current {
                scanner.finish(&mut |f| batch.push(f));
                send(&mut flow, &mut batch, region);
            }
            current = Some((c.range.start, c.range.region));
        }
        scanner.feed(c.address, c.data, &mut |f| batch.push(f));
        send(&mut flow, &mut batch, c.range.region);
        flow
    })?;
    if let Some((_, region)) = current {
        scanner.finish(&mut |f| batch.push(f));
        send(&mut flow, &mut batch, region);
    }
    Ok(stats)
}

/// A match in a process, with the top-level region that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchHit {
    /// The match.
    pub found: search::Match,
    /// Index of its region in `Snapshot::regions`.
    pub region: usize,
}

/// Searches `ranges` with `searcher`, reading `chunk` new bytes at a time
/// into one buffer of `chunk + searcher.overlap()` bytes. A match never
/// spans two mappings.
pub fn search(
    mem: &mut ProcessMemory,
    ranges: &[ScanRange],
    searcher: &mut search::Searcher,
    chunk: usize,
    page_size: u64,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
    out: &mut dyn FnMut(MatchHit) -> ControlFlow<()>,
) -> Result<ReadStats> {
    let overlap = searcher.overlap();
    let mut current: Option<(u64, usize)> = None;
    let mut flow = ControlFlow::Continue(());
    let mut send = |flow: &mut ControlFlow<()>, m: search::Match, region: usize| {
        if flow.is_continue() {
            *flow = out(MatchHit { found: m, region });
        }
    };
    let stats = reader::walk(mem, ranges, chunk, overlap, page_size, progress, &mut |c| {
        if current.map(|(s, _)| s) != Some(c.range.start) {
            if let Some((_, region)) = current {
                searcher.finish(&mut |m| send(&mut flow, m, region));
            }
            current = Some((c.range.start, c.range.region));
        }
        let region = c.range.region;
        searcher.feed(c.address, c.data, c.new_from, &mut |m| {
            send(&mut flow, m, region)
        });
        flow
    })?;
    if let Some((_, region)) = current {
        searcher.finish(&mut |m| send(&mut flow, m, region));
    }
    Ok(stats)
}
