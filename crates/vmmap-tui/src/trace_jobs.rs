//! The Trace view's work off the UI thread: the whole-trace analysis
//! (totals, per-stack costs, symbols) and the operation history, which is
//! read a window at a time so that a trace of ten million operations
//! never sits in memory whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use vmmap_core::format::{ChunkStream, CHUNK_TRACE};
use vmmap_trace::decode::{Decoder, Event, ImageInfo, Record};
use vmmap_trace::scan;
use vmmap_trace::summary::{StackCost, Summarizer, Summary};
use vmmap_trace::symbol_cache::{self, CacheWrite};
use vmmap_trace::symbols::{SymbolOptions, Symbols};
use vmmap_trace::TraceInfo;

/// A whole-trace analysis, ready to draw.
pub struct Analysis {
    /// Totals of the run.
    pub summary: Summary,
    /// What each stack allocated, by stack id.
    pub costs: Vec<StackCost>,
    /// The process image of each stack id (every stack seen, not only the
    /// allocating ones, so the history can show any operation's stack).
    pub images: Vec<u32>,
    /// Stacks, modules and clock anchors.
    pub info: TraceInfo,
    /// Frames of every recorded return address.
    pub syms: Symbols,
    /// The blocks allocated inside the region the user came from.
    pub region: Option<RegionCosts>,
    /// Operations read.
    pub operations: u64,
    /// What went wrong on the way (damage, truncation, missing symbols):
    /// the analysis covers what could be read.
    pub notes: Vec<String>,
    /// What writing the newly resolved symbols back into the file did.
    pub cache: CacheWrite,
}

/// The allocations inside one region (`Summarizer::with_range`).
pub struct RegionCosts {
    /// First address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Totals of the blocks inside it.
    pub summary: Summary,
    /// Per stack.
    pub costs: Vec<StackCost>,
}

/// An analysis running on its own thread.
pub struct AnalysisJob {
    /// Operations read so far.
    pub progress: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    rx: Receiver<Result<Analysis, String>>,
}

impl AnalysisJob {
    /// Starts analysing `path`; with `region`, also the allocations inside
    /// that address range (one pass does both).
    pub fn start(path: PathBuf, region: Option<(u64, u64)>) -> AnalysisJob {
        let progress = Arc::new(AtomicU64::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let (p, c) = (Arc::clone(&progress), Arc::clone(&cancel));
        let spawned = std::thread::Builder::new()
            .name("vmmap-trace-analysis".into())
            .spawn(move || {
                let _ = tx.send(analyse(&path, region, &p, &c));
            });
        if let Err(e) = spawned {
            let (tx, rx2) = channel();
            let _ = tx.send(Err(format!("cannot start the analysis: {e}")));
            return AnalysisJob {
                progress,
                cancel,
                rx: rx2,
            };
        }
        AnalysisJob {
            progress,
            cancel,
            rx,
        }
    }

    /// The result, once there is one.
    pub fn poll(&self) -> Option<Result<Analysis, String>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the analysis thread failed".into())),
        }
    }
}

impl Drop for AnalysisJob {
    fn drop(&mut self) {
        // The thread reads on to the end of the file but stops analysing.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Where to look for debug files: `VMMAP_SYMBOL_PATH`, as the command line.
fn symbol_options() -> SymbolOptions {
    SymbolOptions::with_env(Vec::new())
}

fn open(path: &Path) -> Result<ChunkStream<std::io::BufReader<std::fs::File>>, String> {
    ChunkStream::open(path, CHUNK_TRACE).map_err(|e| format!("{}: {e}", path.display()))
}

/// The analysis itself (on the job's thread).
pub fn analyse(
    path: &Path,
    region: Option<(u64, u64)>,
    progress: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<Analysis, String> {
    let mut all = Summarizer::default();
    let mut inside = region.map(|(a, b)| Summarizer::with_range(a, b));
    let mut stack_images: Vec<u32> = Vec::new();
    let mut n = 0u64;
    let s = scan::scan(open(path)?, |r: &Record| {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        all.add(r);
        if let Some(g) = inside.as_mut() {
            g.add(r);
        }
        let st = r.event.stack() as usize;
        if st != 0 {
            if st >= stack_images.len() {
                stack_images.resize(st + 1, 0);
            }
            stack_images[st] = r.image;
        }
        n += 1;
        if n % 16384 == 0 {
            progress.store(n, Ordering::Relaxed);
        }
    });
    if cancel.load(Ordering::Relaxed) {
        return Err("cancelled".into());
    }
    progress.store(n, Ordering::Relaxed);
    if s.messages == 0 {
        return Err(format!(
            "{}: no trace in this file (it was not written by `vmmap run` or the Launch tab, or the agent never started)",
            path.display()
        ));
    }
    let mut notes = Vec::new();
    if let Some(p) = &s.file_problem {
        notes.push(format!("{p}; the trace before it is used"));
    }
    if let Some(d) = &s.damage {
        notes.push(format!("{d}; the analysis covers what came before it"));
    }
    let (summary, costs, _) = all.finish_costs(&s.info);
    let region = match (region, inside) {
        (Some((start, end)), Some(g)) => {
            let (summary, costs, _) = g.finish_costs(&s.info);
            Some(RegionCosts {
                start,
                end,
                summary,
                costs,
            })
        }
        _ => None,
    };
    stack_images.resize(s.info.stacks.len(), 0);
    let mut syms = Symbols::from_cache(s.symbol_cache);
    let mut addrs: Vec<(u32, u64)> = s
        .info
        .stacks
        .iter()
        .enumerate()
        .flat_map(|(id, st)| st.frames.iter().map(move |a| (id, *a)))
        .map(|(id, a)| (stack_images[id], a))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    syms.resolve(&s.info, &addrs, &symbol_options());
    notes.extend(
        syms.notes
            .iter()
            .map(|n| format!("no symbols for {n}; its frames show as module+offset")),
    );
    // As the command line does: the next open of the file needs neither
    // the binaries nor their debug files.
    let cache = symbol_cache::append(path, &syms);
    if let CacheWrite::Failed(e) = &cache {
        notes.push(cache_note(path, e));
    }
    Ok(Analysis {
        summary,
        costs,
        images: stack_images,
        info: s.info,
        syms,
        region,
        operations: n,
        notes,
        cache,
    })
}

/// Why resolved symbols are not in the file, for the status line.
pub fn cache_note(path: &Path, e: &str) -> String {
    format!(
        "symbols not cached in {} ({e}): the next open resolves them again",
        path.display()
    )
}

/// Operations kept in memory at a time.
pub const WINDOW: usize = 2048;

/// One operation of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRow {
    /// Nanoseconds since the first operation.
    pub ns: u64,
    /// The thread.
    pub tid: i32,
    /// `malloc`, `free`, `mmap`...
    pub op: &'static str,
    /// The address it returned or took.
    pub address: Option<u64>,
    /// Bytes requested, mapped, unmapped...
    pub size: Option<u64>,
    /// The rest (old pointer of a realloc, protection, path...).
    pub detail: String,
    /// Its call stack (0: none).
    pub stack: u32,
    /// Its process image.
    pub image: u32,
}

/// Address, size and the other fields of an operation.
pub fn describe(e: &Event) -> (Option<u64>, Option<u64>, String) {
    let prot = |p: u32| -> String {
        let f = |bit: u32, c: char| if p & bit != 0 { c } else { '-' };
        [f(1, 'r'), f(2, 'w'), f(4, 'x')].iter().collect()
    };
    match e {
        Event::Alloc {
            ptr, size, align, ..
        } => (
            Some(*ptr),
            Some(*size),
            if *align != 0 {
                format!("align {align}")
            } else {
                String::new()
            },
        ),
        Event::Realloc { old, new, size, .. } => {
            (Some(*new), Some(*size), format!("from {old:#x}"))
        }
        Event::Free { ptr } => (Some(*ptr), None, String::new()),
        Event::Mmap {
            addr,
            len,
            prot: p,
            flags,
            fd,
            offset,
            ..
        } => (
            Some(*addr),
            Some(*len),
            format!("{} flags {flags:#x} fd {fd} off {offset}", prot(*p)),
        ),
        Event::Munmap { addr, len, .. } => (Some(*addr), Some(*len), String::new()),
        Event::Mremap {
            old,
            old_len,
            new,
            new_len,
            ..
        } => (
            Some(*new),
            Some(*new_len),
            format!("from {old:#x} len {old_len}"),
        ),
        Event::Mprotect {
            addr, len, prot: p, ..
        } => (Some(*addr), Some(*len), prot(*p)),
        Event::Madvise {
            addr, len, advice, ..
        } => (Some(*addr), Some(*len), format!("advice {advice}")),
        Event::Brk { old, new, .. } => (Some(*new), None, format!("from {old:#x}")),
        Event::ThreadStart {
            pthread,
            stack_lo,
            stack_hi,
        } => (
            None,
            None,
            format!("pthread {pthread:#x} stack {stack_lo:#x}-{stack_hi:#x}"),
        ),
        Event::ThreadExit => (None, None, String::new()),
        Event::ThreadName { pthread, name } => {
            (None, None, format!("pthread {pthread:#x} {name:?}"))
        }
        Event::ThreadCreate { pthread, .. } => (None, None, format!("pthread {pthread:#x}")),
        Event::Dlopen { handle, path, .. } => (None, None, format!("{path} handle {handle:#x}")),
        Event::Dlclose { handle, .. } => (None, None, format!("handle {handle:#x}")),
        Event::Fork { pid, .. } => (None, None, format!("child {pid}")),
        Event::Exec { path, .. } => (None, None, path.clone()),
    }
}

/// A window of the history to read: the operations matching `ops` (all
/// when empty), from the `start`th match on.
#[derive(Clone, Debug)]
struct Request {
    generation: u64,
    start: u64,
    ops: Vec<String>,
}

/// What the history thread sends back.
#[derive(Debug)]
pub enum Reply {
    /// Up to [`WINDOW`] matching operations from the `start`th on.
    Rows {
        /// Which request this answers.
        generation: u64,
        /// Index of the first row among the matches.
        start: u64,
        /// The rows.
        rows: Vec<OpRow>,
    },
    /// The number of matching operations in the whole trace (the read
    /// went on to the end to count them).
    Total {
        /// Which request this answers.
        generation: u64,
        /// Matches.
        total: u64,
    },
}

/// The history reader: a thread that reads the trace from its start for
/// each request, keeps only the requested window, and counts the rest.
/// A newer request interrupts the read in progress.
pub struct HistoryReader {
    tx: Sender<Request>,
    /// Replies, oldest first.
    pub rx: Receiver<Reply>,
    /// Operations read by the current request.
    pub scanned: Arc<AtomicU64>,
    generation: u64,
}

impl HistoryReader {
    /// Starts the thread over `path`; `images` gives ticks their times.
    pub fn start(path: PathBuf, images: Vec<ImageInfo>) -> std::io::Result<HistoryReader> {
        let (tx, req_rx) = channel::<Request>();
        let (reply_tx, rx) = channel::<Reply>();
        let scanned = Arc::new(AtomicU64::new(0));
        let progress = Arc::clone(&scanned);
        let clocks = TraceInfo {
            images,
            ..TraceInfo::default()
        };
        std::thread::Builder::new()
            .name("vmmap-trace-history".into())
            .spawn(move || {
                let mut next = req_rx.recv().ok();
                while let Some(req) = next.take() {
                    next = read_window(&path, &clocks, req, &req_rx, &reply_tx, &progress);
                    if next.is_none() {
                        next = req_rx.recv().ok();
                    }
                }
            })?;
        Ok(HistoryReader {
            tx,
            rx,
            scanned,
            generation: 0,
        })
    }

    /// Asks for the window from the `start`th match of `ops`; replies to
    /// earlier requests are stale from now on. Returns the generation the
    /// replies will carry.
    pub fn request(&mut self, start: u64, ops: &[String]) -> u64 {
        self.generation += 1;
        self.scanned.store(0, Ordering::Relaxed);
        let _ = self.tx.send(Request {
            generation: self.generation,
            start,
            ops: ops.to_vec(),
        });
        self.generation
    }
}

/// Reads one window; returns a newer request if one interrupted it.
fn read_window(
    path: &Path,
    clocks: &TraceInfo,
    req: Request,
    req_rx: &Receiver<Request>,
    out: &Sender<Reply>,
    progress: &AtomicU64,
) -> Option<Request> {
    let Ok(mut stream) = open(path) else {
        let _ = out.send(Reply::Rows {
            generation: req.generation,
            start: req.start,
            rows: Vec::new(),
        });
        let _ = out.send(Reply::Total {
            generation: req.generation,
            total: 0,
        });
        return None;
    };
    let mut d = Decoder::new();
    let mut w = Window {
        clocks,
        req: &req,
        rows: Vec::new(),
        matched: 0,
        seen: 0,
        t0: None,
    };
    let mut sent = false;
    while let Some(m) = stream.next_payload() {
        if d.feed(m, &mut |r, _| w.add(r)).is_err() {
            break;
        }
        progress.store(w.seen, Ordering::Relaxed);
        if !sent && w.rows.len() >= WINDOW {
            sent = true;
            let _ = out.send(Reply::Rows {
                generation: req.generation,
                start: req.start,
                rows: std::mem::take(&mut w.rows),
            });
        }
        // A newer request (the user moved on) makes this read moot.
        match req_rx.try_recv() {
            Ok(newer) => {
                let mut newer = newer;
                while let Ok(n) = req_rx.try_recv() {
                    newer = n;
                }
                return Some(newer);
            }
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
    }
    let _ = d.finish(&mut |r, _| w.add(r));
    progress.store(w.seen, Ordering::Relaxed);
    if !sent {
        let _ = out.send(Reply::Rows {
            generation: req.generation,
            start: req.start,
            rows: w.rows,
        });
    }
    let _ = out.send(Reply::Total {
        generation: req.generation,
        total: w.matched,
    });
    None
}

/// The state of one window's read.
struct Window<'a> {
    clocks: &'a TraceInfo,
    req: &'a Request,
    rows: Vec<OpRow>,
    /// Matching operations so far.
    matched: u64,
    /// Operations so far.
    seen: u64,
    /// Time of the first operation.
    t0: Option<u64>,
}

impl Window<'_> {
    fn add(&mut self, r: &Record) {
        self.seen += 1;
        let ns = self.clocks.tick_ns(r.image, r.tick);
        let t0 = *self.t0.get_or_insert(ns);
        let ops = &self.req.ops;
        if !ops.is_empty() && !ops.iter().any(|o| o == r.event.name()) {
            return;
        }
        let start = self.req.start;
        if self.matched >= start && self.matched < start + WINDOW as u64 {
            let (address, size, detail) = describe(&r.event);
            self.rows.push(OpRow {
                ns: ns.saturating_sub(t0),
                tid: r.tid,
                op: r.event.name(),
                address,
                size,
                detail,
                stack: r.event.stack(),
                image: r.image,
            });
        }
        self.matched += 1;
    }
}
