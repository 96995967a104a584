//! The whole-trace analysis behind `vmmap trace` and the UI's Trace view:
//! one pass over a file's trace that counts what each call stack
//! allocated (in the whole run and, optionally, inside one address range),
//! then symbolises the stacks the views show and writes new symbols back
//! into the file. Written once so that both front ends agree on figures,
//! on which stacks get names, and on what went wrong.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::decode::{Event, Record, TraceError, TraceInfo};
use super::scan;
use super::summary::{StackCost, Summarizer, Summary};
use super::symbol_cache::{self, CacheWrite};
use super::symbols::{SymbolOptions, Symbols};
use vmmap_core::format::{ChunkStream, FormatError, CHUNK_TRACE};
use vmmap_core::text::Escaped;

/// Opens a file's trace chunks.
pub fn open(path: &Path) -> Result<ChunkStream<BufReader<File>>, FormatError> {
    ChunkStream::open(path, CHUNK_TRACE)
}

/// What to analyse and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Stop each process image at this tick (see [`scan::scan_until`];
    /// empty: the whole run).
    pub until: Vec<u64>,
    /// Also count the blocks allocated inside this address range, in the
    /// same pass ([`Analysis::region`]).
    pub region: Option<Range<u64>>,
    /// Count only inside `region`: [`Analysis::summary`] and
    /// [`Analysis::costs`] are then the region's, and the whole run is
    /// not counted (half the work when nothing else is shown).
    pub only_region: bool,
    /// Symbolise every recorded stack, not only the ones that allocated:
    /// for a view that lists any operation with its stack (a mapping
    /// call, a `dlopen`). The stacks that cost nothing are few (they
    /// belong to the calls other than malloc's family), but resolving
    /// them can load more modules' debug information.
    pub every_stack: bool,
    /// Where to look for debug files.
    pub symbols: SymbolOptions,
    /// Append newly resolved symbols to the file, so that the next
    /// analysis needs neither the binaries nor their debug files.
    pub cache: bool,
}

/// A whole-trace analysis, ready to show.
pub struct Analysis {
    /// Totals of the run (of the region with [`Options::only_region`]).
    pub summary: Summary,
    /// What each stack allocated, by stack id.
    pub costs: Vec<StackCost>,
    /// The process image of each stack id.
    pub images: Vec<u32>,
    /// Stacks, modules and clock anchors.
    pub info: TraceInfo,
    /// Frames of the return addresses of the stacks that cost something
    /// (of every stack with [`Options::every_stack`]).
    pub syms: Symbols,
    /// The blocks allocated inside [`Options::region`] (unless
    /// [`Options::only_region`] made them the whole analysis).
    pub region: Option<RegionCosts>,
    /// Operations read.
    pub operations: u64,
    /// What went wrong on the way, in the order it was found: the
    /// analysis covers what could be read.
    pub notes: Vec<Note>,
    /// What writing the newly resolved symbols back into the file did.
    pub cache: CacheWrite,
}

/// The allocations inside one address range.
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

/// Something the analysis could not do in full. Its text (`Display`) is
/// raw: a module path is the program's, to be escaped where it is shown.
#[derive(Debug)]
pub enum Note {
    /// The file ends badly (cut short, a damaged chunk): the trace before
    /// the problem is used.
    FileProblem(FormatError),
    /// The trace itself is damaged: the analysis covers what came before.
    Damage(TraceError),
    /// A module's symbols could not be read (its line from
    /// [`Symbols::notes`]): its frames show as module+offset.
    NoSymbols(String),
    /// The resolved symbols could not be written back into the file.
    NotCached {
        /// The trace file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::FileProblem(p) => write!(f, "{p}; the trace before it is used"),
            Note::Damage(d) => write!(f, "{d}; the analysis covers what came before it"),
            Note::NoSymbols(m) => write!(f, "no symbols for {m}; its frames show as module+offset"),
            Note::NotCached { path, error } => write!(
                f,
                "symbols not cached in {} ({error}): the next open resolves them again",
                path.display()
            ),
        }
    }
}

/// Why there is no analysis.
#[derive(Debug)]
pub enum AnalysisError {
    /// The file could not be opened or is not a trace file.
    Open(FormatError),
    /// The file holds no trace message (not written by a traced run, or
    /// the agent never started); with the problem that ended the file,
    /// if one did.
    NoTrace(Option<FormatError>),
    /// The trace is in a format version this vmmap does not read
    /// ([`scan::Scan::unreadable`]).
    Unreadable(TraceError),
    /// [`analyse`]'s `cancel` was set.
    Cancelled,
}

/// Reads the whole trace once and symbolises what the views show.
/// `progress` counts the operations read; setting `cancel` (from another
/// thread) stops the counting, and the result is then
/// [`AnalysisError::Cancelled`].
pub fn analyse(
    path: &Path,
    opts: &Options,
    progress: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<Analysis, AnalysisError> {
    // The frees `vmmap run` tied to their blocks, for a count of the whole
    // run (a cut at a tick drops records the chunk answers for).
    let whole_run = !(opts.region.is_some() && opts.only_region);
    let resolved = if opts.until.is_empty() && whole_run {
        super::frees::read(path)
    } else {
        None
    };
    if resolved.is_some() {
        let mut disagreed = false;
        let a = analyse_with(path, opts, resolved, &mut disagreed, progress, cancel);
        if !disagreed {
            return a;
        }
    }
    analyse_with(path, opts, None, &mut false, progress, cancel)
}

/// [`analyse`], with the frees resolved or not; sets `disagreed` (and
/// returns nothing useful) when the resolved frees did not answer for
/// exactly the records read.
fn analyse_with(
    path: &Path,
    opts: &Options,
    resolved: Option<super::frees::Resolved>,
    disagreed: &mut bool,
    progress: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<Analysis, AnalysisError> {
    let stream = open(path).map_err(AnalysisError::Open)?;
    let identity = stream.file_identity();
    let ranged = |r: &Range<u64>| Summarizer::with_range(r.start, r.end);
    let mut inside = opts.region.as_ref().map(ranged);
    let mut all = match (&inside, opts.only_region, resolved) {
        (Some(_), true, _) => inside.take(),
        (_, _, Some(r)) => Some(Summarizer::with_resolved(r)),
        _ => Some(Summarizer::default()),
    };
    // The image each stack was last seen in, for the stacks that cost
    // nothing (the counters know the image of those that do).
    let mut seen_images: Vec<u32> = Vec::new();
    let mut n = 0u64;
    let s = scan::scan_batches(stream, opts.until.clone(), |batch: &[Record]| {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        if let Some(a) = all.as_mut() {
            a.add_batch(batch);
        }
        if let Some(g) = inside.as_mut() {
            g.add_batch(batch);
        }
        if opts.every_stack {
            for r in batch {
                let st = r.event.stack() as usize;
                if st != 0 {
                    if st >= seen_images.len() {
                        seen_images.resize(st + 1, 0);
                    }
                    seen_images[st] = r.image;
                }
            }
        }
        n += batch.len() as u64;
        progress.store(n, Ordering::Relaxed);
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(AnalysisError::Cancelled);
    }
    progress.store(n, Ordering::Relaxed);
    if s.messages == 0 {
        return Err(AnalysisError::NoTrace(s.file_problem));
    }
    if let Some(e) = s.unreadable() {
        return Err(AnalysisError::Unreadable(e.clone()));
    }
    if !all.as_ref().is_none_or(|a| a.resolution_agrees(&s.info)) {
        *disagreed = true;
        return Err(AnalysisError::Cancelled);
    }
    let mut notes = Vec::new();
    if let Some(p) = s.file_problem {
        notes.push(Note::FileProblem(p));
    }
    if let Some(d) = s.damage {
        notes.push(Note::Damage(d));
    }
    let (summary, costs, mut images) = all.unwrap_or_default().finish_costs(&s.info);
    let region = match (&opts.region, inside) {
        (Some(range), Some(g)) => {
            let (summary, costs, _) = g.finish_costs(&s.info);
            Some(RegionCosts {
                start: range.start,
                end: range.end,
                summary,
                costs,
            })
        }
        _ => None,
    };
    let mut addrs = super::calltree::addresses(&s.info, &costs, &images);
    if opts.every_stack {
        images.resize(s.info.stacks.len(), 0);
        for (id, c) in costs.iter().enumerate() {
            if *c == StackCost::default() {
                images[id] = seen_images.get(id).copied().unwrap_or(0);
            }
        }
        addrs = s
            .info
            .stacks
            .iter()
            .enumerate()
            .flat_map(|(id, st)| st.frames.iter().map(move |a| (id, *a)))
            .map(|(id, a)| (images[id], a))
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
    }
    let mut syms = Symbols::from_cache(s.symbol_cache);
    syms.resolve(&s.info, &addrs, &opts.symbols);
    notes.extend(syms.notes.iter().cloned().map(Note::NoSymbols));
    let cache = if opts.cache {
        symbol_cache::append(path, identity, &syms)
    } else {
        CacheWrite::UpToDate
    };
    if let CacheWrite::Failed(error) = &cache {
        notes.push(Note::NotCached {
            path: path.to_path_buf(),
            error: error.clone(),
        });
    }
    Ok(Analysis {
        summary,
        costs,
        images,
        info: s.info,
        syms,
        region,
        operations: n,
        notes,
        cache,
    })
}

/// One operation in words: its address and size, where it came from,
/// and the rest of its fields. The history of both front ends shows
/// operations through it: the UI in columns, the command line as one
/// line ([`Description`]'s `Display`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description {
    /// Where a move came from: the old block of a realloc, the old
    /// mapping of an mremap, the old break of a brk.
    pub(crate) from: Option<Origin>,
    /// The address the operation returned or acted on.
    pub address: Option<u64>,
    /// Bytes requested (`size`) or mapped (`len`, see
    /// [`Description::length`]).
    pub size: Option<u64>,
    /// The size is a mapping's length rather than a block's size.
    pub(crate) length: bool,
    /// The protection asked for (mmap, mprotect): `PROT_*` bits.
    pub(crate) protection: Option<u32>,
    /// The remaining fields (protection, flags, advice, thread, path...),
    /// raw: a path or thread name is the program's, to be escaped where
    /// it is shown.
    pub(crate) detail: String,
    /// Where in `detail` the program's own text (a path or thread name)
    /// lies.
    pub(crate) untrusted: Option<Range<usize>>,
}

/// Where a moved block, mapping or break was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// Its old address.
    pub(crate) address: u64,
    /// Its old length (mremap only).
    pub(crate) len: Option<u64>,
}

impl Description {
    /// The detail with the move's origin in front (`from 0x… len N`), for
    /// a view that shows the address and size in columns of their own.
    /// Untrusted text is left raw.
    pub fn detail_with_origin(&self) -> String {
        let mut words = Vec::new();
        if let Some(o) = &self.from {
            words.push(format!("from {:#x}", o.address));
            if let Some(l) = o.len {
                words.push(format!("len {l}"));
            }
        }
        words.extend(self.protection.map(prot));
        if !self.detail.is_empty() {
            words.push(self.detail.clone());
        }
        words.join(" ")
    }
}

/// The one-line form: `OLD -> NEW size N detail`, with untrusted text
/// escaped.
impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(o) = &self.from {
            write!(f, "{:#x}", o.address)?;
            if let Some(l) = o.len {
                write!(f, " len {l}")?;
            }
            f.write_str(" ->")?;
            sep = " ";
        }
        if let Some(a) = self.address {
            write!(f, "{sep}{a:#x}")?;
            sep = " ";
        }
        if let Some(s) = self.size {
            let word = if self.length { "len" } else { "size" };
            write!(f, "{sep}{word} {s}")?;
            sep = " ";
        }
        if let Some(p) = self.protection {
            write!(f, "{sep}prot {}", prot(p))?;
            sep = " ";
        }
        if !self.detail.is_empty() {
            f.write_str(sep)?;
            match &self.untrusted {
                Some(r) => write!(
                    f,
                    "{}{}{}",
                    &self.detail[..r.start],
                    Escaped(&self.detail[r.clone()]),
                    &self.detail[r.end..]
                )?,
                None => f.write_str(&self.detail)?,
            }
        }
        Ok(())
    }
}

/// `rwx` letters of a protection.
fn prot(p: u32) -> String {
    let f = |bit: u32, c: char| if p & bit != 0 { c } else { '-' };
    [f(1, 'r'), f(2, 'w'), f(4, 'x')].iter().collect()
}

/// Describes an operation.
pub fn describe(e: &Event) -> Description {
    let block = |address: u64, size: Option<u64>, detail: String| Description {
        address: Some(address),
        size,
        detail,
        ..Description::default()
    };
    let mapping = |address: u64, len: u64, detail: String| Description {
        address: Some(address),
        size: Some(len),
        length: true,
        detail,
        ..Description::default()
    };
    let other = |detail: String| Description {
        detail,
        ..Description::default()
    };
    // Fixed text, the program's own (a path or name), fixed text.
    let untrusted = |before: String, raw: &str, after: String| Description {
        untrusted: Some(before.len()..before.len() + raw.len()),
        detail: before + raw + &after,
        ..Description::default()
    };
    match e {
        Event::Alloc {
            ptr, size, align, ..
        } => block(
            *ptr,
            Some(*size),
            if *align != 0 {
                format!("align {align}")
            } else {
                String::new()
            },
        ),
        Event::Realloc { old, new, size, .. } => Description {
            from: Some(Origin {
                address: *old,
                len: None,
            }),
            ..block(*new, Some(*size), String::new())
        },
        Event::Free { ptr } => block(*ptr, None, String::new()),
        Event::Mmap {
            addr,
            len,
            prot: p,
            flags,
            fd,
            offset,
            ..
        } => Description {
            protection: Some(*p),
            ..mapping(
                *addr,
                *len,
                format!("flags {flags:#x} fd {fd} off {offset}"),
            )
        },
        Event::Munmap { addr, len, .. } => mapping(*addr, *len, String::new()),
        Event::Mremap {
            old,
            old_len,
            new,
            new_len,
            ..
        } => Description {
            from: Some(Origin {
                address: *old,
                len: Some(*old_len),
            }),
            ..mapping(*new, *new_len, String::new())
        },
        Event::Mprotect {
            addr, len, prot: p, ..
        } => Description {
            protection: Some(*p),
            ..mapping(*addr, *len, String::new())
        },
        Event::Madvise {
            addr, len, advice, ..
        } => mapping(*addr, *len, format!("advice {advice}")),
        Event::Brk { old, new, .. } => Description {
            from: Some(Origin {
                address: *old,
                len: None,
            }),
            ..block(*new, None, String::new())
        },
        Event::ThreadStart {
            pthread,
            stack_lo,
            stack_hi,
        } => other(format!(
            "pthread {pthread:#x} stack {stack_lo:#x}-{stack_hi:#x}"
        )),
        Event::ThreadExit => other(String::new()),
        Event::ThreadName { pthread, name } => {
            untrusted(format!("pthread {pthread:#x} "), name, String::new())
        }
        Event::ThreadCreate { pthread, .. } => other(format!("pthread {pthread:#x}")),
        Event::Dlopen { handle, path, .. } => {
            untrusted(String::new(), path, format!(" handle {handle:#x}"))
        }
        Event::Dlclose { handle, .. } => other(format!("handle {handle:#x}")),
        Event::Fork { pid, .. } => other(format!("child {pid}")),
        Event::Exec { path, .. } => untrusted(String::new(), path, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_description_gives_the_line_and_the_columns() {
        let e = Event::Mremap {
            old: 0x1000,
            old_len: 4096,
            new: 0x8000,
            new_len: 8192,
            flags: 1,
            stack: 0,
        };
        let d = describe(&e);
        assert_eq!(d.to_string(), "0x1000 len 4096 -> 0x8000 len 8192");
        assert_eq!((d.address, d.size), (Some(0x8000), Some(8192)));
        assert_eq!(d.detail_with_origin(), "from 0x1000 len 4096");
        let e = Event::Mprotect {
            addr: 0x1000,
            len: 4096,
            prot: 3,
            stack: 0,
        };
        assert_eq!(describe(&e).to_string(), "0x1000 len 4096 prot rw-");
        assert_eq!(describe(&e).detail_with_origin(), "rw-");
        let e = Event::Dlopen {
            handle: 0x10,
            flags: 0,
            path: "/tmp/a\nb.so".into(),
            stack: 0,
        };
        assert_eq!(describe(&e).to_string(), "\"/tmp/a\\nb.so\" handle 0x10");
        assert_eq!(
            describe(&e).detail_with_origin(),
            "/tmp/a\nb.so handle 0x10"
        );
    }
}
