//! The Trace view's work off the UI thread: the whole-trace analysis
//! (totals, per-stack costs, symbols) and the operation history, which is
//! read a window at a time so that a trace of ten million operations
//! never sits in memory whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use vmmap_trace::analysis::{self as analysis, describe, open, AnalysisError, Options};
pub use vmmap_trace::analysis::{Analysis, RegionCosts};
use vmmap_trace::decode::{Decoder, ImageInfo, Record};
use vmmap_trace::symbols::SymbolOptions;
use vmmap_trace::TraceInfo;

/// A trace file as the Trace view reads it.
#[derive(Clone, Debug)]
pub struct TraceSource {
    /// Its name: shown, and what tells one trace from another.
    pub path: PathBuf,
    /// For a file a session of this UI writes, the descriptor the UI
    /// holds on it. The file is read through that (`/proc/self/fd/N`),
    /// never by its name, which the program or another user may have
    /// pointed elsewhere since (a FIFO there held the reader for ever; a
    /// device acts on being opened).
    pub held: Option<Arc<std::fs::File>>,
}

impl TraceSource {
    /// A file the user named: read by that name.
    pub fn named(path: PathBuf) -> TraceSource {
        TraceSource { path, held: None }
    }

    /// Where the file is opened from.
    pub fn read_at(&self) -> PathBuf {
        self.held
            .as_deref()
            .map_or_else(|| self.path.clone(), vmmap_core::regular::by_fd)
    }
}

/// An analysis running on its own thread.
pub struct AnalysisJob {
    /// Operations read so far.
    pub progress: Arc<AtomicU64>,
    job: crate::job::Job<Analysis>,
}

impl AnalysisJob {
    /// Starts analysing `source`; with `region`, also the allocations
    /// inside that address range (one pass does both).
    pub fn start(source: TraceSource, region: Option<(u64, u64)>) -> AnalysisJob {
        let progress = Arc::new(AtomicU64::new(0));
        let p = Arc::clone(&progress);
        let job = crate::job::Job::start("vmmap-trace-analysis", "analysis", move |cancel| {
            analyse(&source, region, &p, cancel)
        });
        AnalysisJob { progress, job }
    }

    /// The result, once there is one; dropping the job stops the analysis.
    pub fn poll(&self) -> Option<Result<Analysis, String>> {
        self.job.poll()
    }
}

/// The analysis itself (on the job's thread): the whole run and, with
/// `region`, the allocations inside it. Every stack is symbolised, not only
/// the costed ones the command line names: the history shows the stack of
/// any operation (a mapping call, a `dlopen`).
pub fn analyse(
    source: &TraceSource,
    region: Option<(u64, u64)>,
    progress: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<Analysis, String> {
    let opts = Options {
        region: region.map(|(a, b)| a..b),
        every_stack: true,
        // Where to look for debug files: `VMMAP_SYMBOL_PATH`, as the
        // command line.
        symbols: SymbolOptions::with_env(Vec::new()),
        // As the command line does: the next open of the file needs
        // neither the binaries nor their debug files.
        cache: true,
        ..Options::default()
    };
    let path = &source.path;
    analysis::analyse(&source.read_at(), &opts, progress, cancel).map_err(|e| match e {
        AnalysisError::Open(e) => format!("{}: {e}", path.display()),
        AnalysisError::NoTrace(_) => format!(
            "{}: no trace in this file (it was not written by `vmmap run` or the Launch tab, or the agent never started)",
            path.display()
        ),
        AnalysisError::Unreadable(e) => format!("{}: {e}", path.display()),
        AnalysisError::Cancelled => "cancelled".into(),
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
    /// Starts the thread over `source`; `images` gives ticks their times.
    pub fn start(source: TraceSource, images: Vec<ImageInfo>) -> std::io::Result<HistoryReader> {
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
                    let at = source.read_at();
                    next = read_window(&at, &clocks, req, &req_rx, &reply_tx, &progress);
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
            let d = describe(&r.event);
            self.rows.push(OpRow {
                ns: ns.saturating_sub(t0),
                tid: r.tid,
                op: r.event.name(),
                address: d.address,
                size: d.size,
                detail: d.detail_with_origin(),
                stack: r.event.stack(),
                image: r.image,
            });
        }
        self.matched += 1;
    }
}
