//! The process on screen, attached to (`a`): the recording of
//! `vmmap attach` ([`vmmap_trace::attach_record`]) on a thread of its own,
//! into a file the Trace view reads as it grows. `a` again, quitting, or
//! the process's end detaches; the program runs on unhooked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmmap_core::collect::Options;
use vmmap_core::format::Writer;
use vmmap_core::text::Escaped;
use vmmap_trace::attach_record::{self, End, Progress, RecordError, Report, Settings};

/// What an attach session is doing, as the screens say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// The process.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// The trace file.
    pub output: PathBuf,
    /// Seconds since the key was pressed.
    pub secs: u64,
    /// Whether the agent runs (else it is being loaded).
    pub attached: bool,
    /// Detaching was asked for.
    pub detaching: bool,
    /// Events recorded so far.
    pub events: u64,
    /// `events` is a lower bound (the count fell behind and stopped).
    pub partial: bool,
    /// Bytes of trace written so far.
    pub bytes: u64,
}

impl Live {
    /// One line: what happens, the key that stops it, and where the file
    /// goes (last, where a narrow screen cuts it).
    pub fn line(&self) -> String {
        let who = format!("{} ({})", self.pid, Escaped(&self.name));
        let file = Escaped(&self.output.display().to_string()).to_string();
        if self.detaching {
            format!("Detaching from {who}… the trace goes to {file}")
        } else if self.attached {
            format!(
                "● Attached to {who} for {} s: {}{} events ({}) — a detaches — trace: {file}",
                self.secs,
                if self.partial { "at least " } else { "" },
                self.events,
                vmmap_core::units::size(self.bytes, false)
            )
        } else {
            format!("Attaching to {who}… the trace goes to {file}")
        }
    }
}

/// One attached process.
pub struct AttachSession {
    /// Its PID.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// The trace file (absolute).
    pub output: PathBuf,
    started: Instant,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Report, RecordError>>>,
    /// Whether the app was told the agent runs.
    pub announced: bool,
}

/// Where the UI writes the trace of `name` (`pid`): as `vmmap attach`
/// names it, in the working directory, or the temporary directory when
/// that cannot be written; the file is created (and the name returned)
/// at once so that the screen can say where it is.
pub fn create_output(name: &str, pid: u32) -> Result<(PathBuf, std::fs::File), String> {
    let stem = format!("{name}.{pid}");
    let here = vmmap_trace::launch::default_output(Path::new(&stem));
    let here = std::path::absolute(&here).unwrap_or(here);
    match vmmap_core::output::create(&here) {
        Ok(f) => Ok((here, f)),
        Err(first) => {
            let tmp = std::env::temp_dir().join(here.file_name().unwrap_or_default());
            vmmap_core::output::create(&tmp)
                .map(|f| (tmp.clone(), f))
                .map_err(|e| {
                    format!(
                        "cannot create {} ({first}) nor {} ({e})",
                        here.display(),
                        tmp.display()
                    )
                })
        }
    }
}

impl AttachSession {
    /// Starts attaching to `pid` on a thread, recording into `output`
    /// (`file`, just created) with a snapshot every second.
    pub fn start(
        pid: u32,
        name: String,
        output: PathBuf,
        file: std::fs::File,
        agent: PathBuf,
        proc_root: PathBuf,
    ) -> std::io::Result<AttachSession> {
        let progress = Arc::new(Progress::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (p, flag, path) = (Arc::clone(&progress), Arc::clone(&stop), output.clone());
        let handle = std::thread::Builder::new()
            .name(format!("vmmap-attach-{pid}"))
            .spawn(move || {
                let mut w = Writer::new(file).map_err(RecordError::Write)?;
                let settings = Settings {
                    agent: &agent,
                    config: "unwind=dwarf",
                    interval: Duration::from_secs(1),
                    duration: None,
                    snapshots: Options::default()
                        .proc_root(&proc_root)
                        .ptrace(false)
                        .read_memory(true),
                    count_events: true,
                };
                match attach_record::record(pid as i32, &mut w, &settings, &flag, &p) {
                    Ok(r) => {
                        w.finish().map_err(RecordError::Write)?;
                        Ok(r)
                    }
                    Err(e) => {
                        if matches!(e, RecordError::Attach(_)) {
                            // Nothing was recorded: no file is left behind.
                            drop(w);
                            let _ = std::fs::remove_file(&path);
                        }
                        Err(e)
                    }
                }
            })?;
        Ok(AttachSession {
            pid,
            name,
            output,
            started: Instant::now(),
            progress,
            stop,
            handle: Some(handle),
            announced: false,
        })
    }

    /// What it is doing now.
    pub fn live(&self) -> Live {
        Live {
            pid: self.pid,
            name: self.name.clone(),
            output: self.output.clone(),
            secs: self.started.elapsed().as_secs(),
            attached: self.attached(),
            detaching: self.detaching(),
            events: self.progress.events.load(Ordering::Relaxed),
            partial: self.progress.events_partial.load(Ordering::Relaxed),
            bytes: self.progress.bytes.load(Ordering::Relaxed),
        }
    }

    /// Whether the agent runs in the process.
    pub fn attached(&self) -> bool {
        self.progress.attached.load(Ordering::Relaxed)
    }

    /// Asks the recording to detach; [`AttachSession::poll`] says when it
    /// has (the UI does not wait for the agent to finish).
    pub fn detach(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether detaching was asked for.
    pub fn detaching(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Once the recording has ended (detached, refused, or the process
    /// ended): the message saying so, and whether a file was written.
    /// None while it runs.
    pub fn poll(&mut self) -> Option<(String, bool)> {
        if !self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            return None;
        }
        Some(self.join())
    }

    /// Detaches (the program runs on unhooked), finishes the file and
    /// says what happened.
    pub fn stop(mut self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        self.join().0
    }

    /// The message, and whether a trace file was written.
    fn join(&mut self) -> (String, bool) {
        let who = format!("{} ({})", self.pid, Escaped(&self.name));
        let file = Escaped(&self.output.display().to_string()).to_string();
        let Some(h) = self.handle.take() else {
            return (format!("{who}: already detached"), true);
        };
        let r = match h.join() {
            Ok(r) => r,
            Err(_) => {
                return (
                    format!(
                        "Attached to {who}: the recording thread failed; {file} may be incomplete"
                    ),
                    true,
                )
            }
        };
        match r {
            Ok(r) => {
                let events = self.progress.events.load(Ordering::Relaxed);
                let how = match r.end {
                    End::Detached => "detached, the process runs on unhooked",
                    End::Unfinished => {
                        "the agent did not finish detaching within 10 s (it unhooks itself once vmmap stops answering)"
                    }
                    End::Ended => "the process ended (or the agent detached by itself)",
                    End::Exec => "the process ran a new program (exec), untraced",
                    End::Sandboxed => {
                        "the process put itself under seccomp; the agent detached before it did"
                    }
                };
                let lost = if r.lost > 0 {
                    format!(
                        "; {} bytes of events dropped: vmmap did not keep up",
                        r.lost
                    )
                } else {
                    String::new()
                };
                (
                    format!(
                        "Traced {who} for {} s, {how}: {events} events, {} snapshot(s) in {file}{lost} — T shows them, `vmmap trace {file}`",
                        self.started.elapsed().as_secs(),
                        r.snapshots
                    ),
                    true,
                )
            }
            Err(RecordError::Attach(e)) => (format!("Cannot attach to {who}: {e}"), false),
            Err(e) => (
                format!(
                    "Attached to {who}, then: {e}; the agent was detached and {file} is incomplete"
                ),
                true,
            ),
        }
    }
}

impl Drop for AttachSession {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.join();
        }
    }
}
