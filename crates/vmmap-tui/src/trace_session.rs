//! A program started from the Launch tab, watched on a thread of its own:
//! a snapshot of it goes to the trace file every interval while it runs;
//! when it exits the thread reaps it and finishes the file. Ending the
//! session early (vmmap quits) finishes the file and leaves the program
//! running: the agent keeps appending its events to the file until the
//! program ends (the file loads the same either way).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmmap_trace::supervise::{describe_status, SnapshotError, Supervised};

/// How a session ended.
enum Ended {
    /// The program exited (and was reaped).
    Exited(ExitStatus),
    /// vmmap stopped watching; the program still runs.
    Left,
    /// Waiting for the program failed.
    WaitFailed(String),
}

struct Outcome {
    ended: Ended,
    snapshots: u64,
    /// The first write error, if any (snapshots stop at it).
    write_error: Option<String>,
}

/// One traced program.
pub struct TraceSession {
    /// Its PID.
    pub pid: u32,
    /// The program as typed.
    pub program: String,
    /// The trace file (absolute).
    pub output: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Outcome>>,
}

impl TraceSession {
    /// Starts watching `run` (its snapshots at start and exit are the
    /// supervisor's), appending a snapshot every `interval`.
    pub fn start(
        mut run: Supervised,
        program: String,
        output: PathBuf,
        interval: Duration,
    ) -> std::io::Result<TraceSession> {
        let pid = run.pid;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(format!("vmmap-trace-{pid}"))
            .spawn(move || {
                let mut write_error: Option<String> = None;
                let mut next = Instant::now() + interval;
                // A snapshot once the agent runs (the one at exec precedes
                // the loader), unless an interval's comes first.
                let mut loaded_taken = false;
                let ended = loop {
                    match run.try_wait() {
                        Some(Ok(st)) => break Ended::Exited(st),
                        None => {}
                        Some(Err(e)) => break Ended::WaitFailed(e.to_string()),
                    }
                    if flag.load(Ordering::Relaxed) {
                        break Ended::Left;
                    }
                    let loaded = !loaded_taken && run.agent_started();
                    if write_error.is_none() && (loaded || Instant::now() >= next) {
                        loaded_taken = true;
                        next = Instant::now() + interval;
                        // A snapshot can fail as the process exits: the
                        // next try_wait sees that.
                        if let Err(SnapshotError::Write(e)) = run.snapshot() {
                            write_error = Some(e.to_string());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                let snapshots = run.snapshots();
                if let Err(e) = run.finish().and_then(|(f, _)| f.sync_all()) {
                    write_error.get_or_insert(e.to_string());
                }
                Outcome {
                    ended,
                    snapshots,
                    write_error,
                }
            })?;
        Ok(TraceSession {
            pid,
            program,
            output,
            stop,
            handle: Some(handle),
        })
    }

    /// Once the program has exited: the message saying so (the session
    /// is over). None while it runs.
    pub fn poll(&mut self) -> Option<String> {
        if !self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            return None;
        }
        Some(self.join())
    }

    /// Stops watching (the program keeps running), finishes the file and
    /// says what happened.
    pub fn stop(mut self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    fn join(&mut self) -> String {
        let what = format!("traced {} (pid {})", self.program, self.pid);
        let file = self.output.display();
        let Some(h) = self.handle.take() else {
            return format!("{what}: already ended");
        };
        let o = match h.join() {
            Ok(o) => o,
            Err(_) => {
                return format!("{what}: the tracing thread failed; {file} may be incomplete")
            }
        };
        let snaps = format!("{} snapshot(s)", o.snapshots);
        let mut msg = match &o.ended {
            Ended::Exited(st) => format!(
                "{what} {}; trace written to {file} ({snaps}) — `vmmap trace {file}`",
                describe_status(st)
            ),
            Ended::Left => format!(
                "{what} is still running, no longer watched by vmmap; {file} is finished ({snaps}) and the agent keeps adding its events until the program ends — `vmmap trace {file}`"
            ),
            Ended::WaitFailed(e) => format!(
                "{what}: waiting for it failed ({e}); {file} is finished ({snaps})"
            ),
        };
        if let Some(e) = o.write_error {
            msg.push_str(&format!(" (writing the file failed: {e})"));
        }
        msg
    }
}

impl Drop for TraceSession {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.join();
        }
    }
}
