//! Recording an attached process into a native file: the one loop behind
//! `vmmap attach` and the UI's attach key, so that both write the same
//! file the same way. It loads the agent ([`crate::attach::inject`]),
//! drains its ring into the file every 20 ms, appends a snapshot at
//! attach, at every interval and at detach, and detaches when asked, at
//! the deadline, or stops when the process ends.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use vmmap_core::collect::{self, Options};
use vmmap_core::format::Writer;
use vmmap_core::Error;
use vmmap_wire::attach::FINISHED;

use crate::attach::{self, AttachError};
use crate::decode::Decoder;

/// How often vmmap takes what the agent wrote (and bumps its heartbeat).
const DRAIN: Duration = Duration::from_millis(20);

/// How long the agent gets to finish detaching.
const DETACH_LIMIT: Duration = Duration::from_secs(10);

/// What to record and how.
pub struct Settings<'a> {
    /// The agent library.
    pub agent: &'a Path,
    /// The agent's settings (`unwind=fp`).
    pub config: &'a str,
    /// Between snapshots (zero: only at attach and detach).
    pub interval: Duration,
    /// Detach after this long.
    pub duration: Option<Duration>,
    /// How the snapshots are taken.
    pub snapshots: Options,
    /// Count the events as they come in [`Progress::events`] (the UI
    /// shows it; the command line does not spend the time). They are
    /// decoded on a thread of their own, so that the drain, which keeps
    /// the agent's heartbeat, never waits for the decoding.
    pub count_events: bool,
}

/// What the recording has done so far, for a front end that shows it
/// while it runs (read from another thread).
#[derive(Debug, Default)]
pub struct Progress {
    /// Set once the agent runs and its first messages and the snapshot at
    /// attach are in the file.
    pub attached: AtomicBool,
    /// Bytes of trace messages written.
    pub bytes: AtomicU64,
    /// Event records decoded (with [`Settings::count_events`]).
    pub events: AtomicU64,
    /// The count fell more than 64 MiB of messages behind and stopped:
    /// [`Progress::events`] is a lower bound.
    pub events_partial: AtomicBool,
    /// Snapshots written.
    pub snapshots: AtomicU64,
}

/// How the recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// vmmap detached; the agent finished and the program runs on
    /// unhooked.
    Detached,
    /// vmmap asked, but the agent did not finish within 10 s (it
    /// detaches by itself once the heartbeat stops).
    Unfinished,
    /// The process ended, or the agent detached by itself (it missed the
    /// heartbeat).
    Ended,
    /// The process runs on, but the agent's memory is gone: it ran a new
    /// program (exec), which an attach does not trace.
    Exec,
    /// The process put itself under seccomp, and the agent detached
    /// before it did (a filter may kill the process for a call of the
    /// agent's); the process runs on unhooked.
    Sandboxed,
}

/// What a finished recording did.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// From the start of the injection to the agent running.
    pub attach_took: Duration,
    /// How long the thread that loaded the agent was stopped.
    pub stopped: Duration,
    /// Snapshots written.
    pub snapshots: u64,
    /// How it ended.
    pub end: End,
    /// Bytes of events the agent dropped because vmmap did not keep up.
    pub lost: u64,
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The agent could not be loaded: nothing was done to the process.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// Writing the file failed (the agent was detached).
    #[error("{0}")]
    Write(io::Error),
    /// A snapshot failed for another reason than the process ending (the
    /// agent was detached).
    #[error(transparent)]
    Snapshot(Error),
}

/// Messages the count may fall behind by before it stops.
const COUNT_BACKLOG: u64 = 64 << 20;

/// The file being written and what went wrong writing it.
struct Out<'w> {
    w: &'w mut Writer<File>,
    /// The first write error: the loop stops at it.
    failed: Option<io::Error>,
    /// To the counting thread, with the bytes it has not taken yet.
    count: Option<(Sender<Vec<u8>>, &'w AtomicU64)>,
    progress: &'w Progress,
    /// The agent's END said it stopped for seccomp (the process was
    /// putting itself under a filter that might kill it for the agent's
    /// calls).
    seccomp_stop: bool,
}

/// Counts the events of the messages `rx` brings (on its own thread).
fn count(rx: Receiver<Vec<u8>>, backlog: &AtomicU64, progress: &Progress) {
    let mut d = Decoder::new();
    let mut n = 0;
    for msg in rx {
        backlog.fetch_sub(msg.len() as u64, Ordering::Relaxed);
        // A damaged message ends the count, not the recording.
        if d.feed(&msg, &mut |_, _| n += 1).is_err() {
            progress.events_partial.store(true, Ordering::Relaxed);
            return;
        }
        progress.events.store(n, Ordering::Relaxed);
    }
    let _ = d.finish(&mut |_, _| n += 1);
    progress.events.store(n, Ordering::Relaxed);
}

impl Out<'_> {
    fn take(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.failed.is_some() {
            return Ok(());
        }
        if let Some(why) = crate::decode::end_reason(msg) {
            self.seccomp_stop = why == vmmap_wire::END_SECCOMP;
        }
        if let Err(e) = self.w.append_trace(msg) {
            self.failed = Some(e);
            return Ok(());
        }
        self.progress
            .bytes
            .fetch_add(msg.len() as u64, Ordering::Relaxed);
        if let Some((tx, backlog)) = &self.count {
            let behind = backlog.fetch_add(msg.len() as u64, Ordering::Relaxed);
            if behind > COUNT_BACKLOG || tx.send(msg.to_vec()).is_err() {
                self.progress.events_partial.store(true, Ordering::Relaxed);
                self.count = None;
            }
        }
        Ok(())
    }

    /// Appends a snapshot of `pid`; one the process's end cut short is no
    /// error.
    fn snapshot(&mut self, pid: i32, opts: &Options) -> Result<(), RecordError> {
        if self.failed.is_some() {
            return Ok(());
        }
        match collect::snapshot(pid as u32, opts) {
            Ok(snap) => {
                if let Err(e) = self.w.append(&snap) {
                    self.failed = Some(e);
                } else {
                    self.progress.snapshots.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(
                Error::ProcessExited { .. }
                | Error::Zombie { .. }
                | Error::NoSuchProcess { .. }
                | Error::Parse { .. },
            ) => Ok(()),
            Err(e) => Err(RecordError::Snapshot(e)),
        }
    }
}

/// Attaches to `pid` and records it into `w` until `stop` is set, the
/// deadline passes or the process ends; then detaches and appends the
/// snapshot at detach. The file is left open for the caller to finish.
/// Whatever fails after the agent was loaded, it is asked to detach
/// before this returns.
pub fn record(
    pid: i32,
    w: &mut Writer<File>,
    s: &Settings<'_>,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<Report, RecordError> {
    let backlog = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let mut tx = None;
        if s.count_events {
            let (sender, rx) = channel();
            let counter = std::thread::Builder::new()
                .name("vmmap-attach-count".into())
                .spawn_scoped(scope, || count(rx, &backlog, progress));
            match counter {
                Ok(_) => tx = Some((sender, &backlog)),
                Err(_) => progress.events_partial.store(true, Ordering::Relaxed),
            }
        }
        record_into(pid, w, s, stop, progress, tx)
    })
}

fn record_into<'w>(
    pid: i32,
    w: &'w mut Writer<File>,
    s: &Settings<'_>,
    stop: &AtomicBool,
    progress: &'w Progress,
    count: Option<(Sender<Vec<u8>>, &'w AtomicU64)>,
) -> Result<Report, RecordError> {
    let started = Instant::now();
    let mut session = attach::inject(pid, s.agent, s.config)?;
    let attach_took = started.elapsed();
    let mut out = Out {
        w,
        failed: None,
        count,
        progress,
        seccomp_stop: false,
    };
    // What the agent wrote first (HELLO, modules, maps) comes before the
    // snapshot at attach, so that the snapshot has the trace's clock.
    let _ = session.drain(|m| out.take(m));
    let mut failed = out.snapshot(pid, &s.snapshots).err();
    progress.attached.store(true, Ordering::Relaxed);
    let mut next = Instant::now() + s.interval;
    let deadline = s.duration.map(|d| Instant::now() + d);
    let mut ended = false;
    let mut sandboxed = false;
    let mut replaced = false;
    while failed.is_none() && out.failed.is_none() {
        std::thread::sleep(DRAIN);
        match session.drain(|m| out.take(m)) {
            // The agent detached by itself.
            Ok(state) if state == FINISHED => {
                ended = true;
                sandboxed = out.seccomp_stop;
                break;
            }
            Ok(_) => {}
            // ESRCH: the process is gone; EFAULT with the process still
            // there: it ran a new program, and the agent went with the old.
            Err(_) => {
                ended = true;
                replaced = running(pid);
                break;
            }
        }
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if !s.interval.is_zero() && Instant::now() >= next {
            next += s.interval;
            failed = out.snapshot(pid, &s.snapshots).err();
        }
    }
    let mut end = if sandboxed {
        End::Sandboxed
    } else if replaced {
        End::Exec
    } else {
        End::Ended
    };
    if !ended {
        end = match session.detach(DETACH_LIMIT, |m| out.take(m)) {
            Ok(true) => End::Detached,
            _ => End::Unfinished,
        };
    }
    // At detach: the process runs on after vmmap's detach, or its own.
    if (!ended || sandboxed) && failed.is_none() {
        failed = out.snapshot(pid, &s.snapshots).err();
    }
    if let Some(e) = out.failed.take() {
        return Err(RecordError::Write(e));
    }
    if let Some(e) = failed {
        return Err(e);
    }
    // The counting thread ends with the channel, and the scope waits
    // for its last count.
    drop(out.count.take());
    Ok(Report {
        attach_took,
        stopped: session.stopped,
        snapshots: progress.snapshots.load(Ordering::Relaxed),
        end,
        lost: if ended { 0 } else { session.lost() },
    })
}

/// Whether process `pid` is still running (not gone, not a zombie).
fn running(pid: i32) -> bool {
    !matches!(crate::attach::state_of(pid), None | Some(b'Z' | b'X'))
}
