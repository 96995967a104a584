//! `vmmap run`: launch a program with the tracing agent preloaded.

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use vmmap_core::collect::Options;
use vmmap_core::format::CHUNK_FREES;
use vmmap_core::units::size;
use vmmap_trace::frees::Recorder;
use vmmap_trace::scan::Scan;
use vmmap_trace::summary::{Summarizer, Summary};
use vmmap_trace::{launch, supervise};

use crate::cli::{RunArgs, Unwind};
use crate::trace::print_summary;
use crate::{exit, Failure};

fn cannot_trace(message: String) -> Failure {
    Failure {
        code: exit::CANNOT_TRACE,
        message,
    }
}

/// Why `program` could not be started, with what to do about the usual
/// causes.
fn spawn_failure(program: &Path, e: &io::Error) -> Failure {
    let code = match e.raw_os_error() {
        Some(libc::EACCES) => exit::PERMISSION,
        _ => exit::OTHER,
    };
    let why = launch::spawn_advice(e).map_or_else(|| e.to_string(), str::to_string);
    Failure {
        code,
        message: format!("cannot start {}: {why}", program.display()),
    }
}

/// `vmmap run [OPTIONS] -- PROGRAM ARGS…`
pub fn run(a: &RunArgs, proc_root: &Path) -> Result<(), Failure> {
    let interval = a.interval;
    let name = &a.command[0];
    let program = launch::find_program(name).ok_or_else(|| Failure {
        code: exit::NO_PROCESS,
        message: format!(
            "{}: no such program (not a file, nor on $PATH)",
            Path::new(name).display()
        ),
    })?;
    let agent = if a.snapshot_only {
        None
    } else {
        if let Some(why) = launch::untraceable(&program) {
            return Err(cannot_trace(format!(
                "cannot trace: {why}. `vmmap run --snapshot-only -- …` records its snapshots without the agent"
            )));
        }
        Some(launch::find_agent(a.agent.as_deref()).map_err(cannot_trace)?)
    };
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| launch::default_output(&program));
    if crate::is_stdout(&output) {
        return Err(Failure::usage(
            "-o - is not possible for vmmap run: the traced program appends to the trace file by name; give a file name",
        ));
    }
    let what = crate::shown(&output).into_owned();
    if let Some(why) = agent
        .as_ref()
        .and_then(|_| launch::unfit_trace_file(&output))
    {
        return Err(Failure::usage(format!(
            "-o {why}; give a file name, or add --snapshot-only to write the snapshots alone into it"
        )));
    }
    let spec = launch::Launch {
        program: program.clone(),
        argv0: name.clone(),
        args: a.command[1..].to_vec(),
        cwd: a.cwd.clone(),
        output: output.clone(),
        agent: agent.clone(),
        frame_pointers: a.unwind == Unwind::Fp,
        follow_forks: a.follow_forks,
        quiet_stdio: false,
        inherited: launch::Inherited::of_this_process(),
        seccomp_unchecked: a.seccomp_unchecked,
    };
    // Ctrl+C reaches the program (same process group); vmmap waits for it
    // to end and closes the file. What only vmmap received is passed on.
    let received = crate::stop::on_run_signals();
    // Followed children write files of their own next to the main one:
    // what is there before the run is not theirs.
    let before = if a.follow_forks {
        child_files(&output)
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let opts = Options::default()
        .proc_root(proc_root)
        .ptrace(false)
        .read_memory(true);
    // Snapshots at start and at exit come from the supervisor itself.
    let mut run = supervise::start(&spec, opts, !a.no_exit_snapshot).map_err(|e| match e {
        launch::LaunchError::Output(e) => Failure {
            code: exit::OUTPUT,
            message: format!("cannot create {what}: {e}"),
        },
        launch::LaunchError::Spawn(e) => spawn_failure(&program, &e),
    })?;
    if let Some(w) = &run.warning {
        eprintln!("vmmap: warning: {w}");
    }
    let pid = run.pid;
    let mut next = start + interval;
    // A snapshot once the agent is loaded and running (the one at exec
    // precedes the loader), unless an interval's comes first.
    let mut loaded_taken = agent.is_none();
    let mut wait = Duration::ZERO;
    let mut failures = Repeats::default();
    // The file cannot be written (its disk is full): said once, no more
    // snapshots, and the program runs on to its end under watch, where
    // vmmap used to exit at once with 10 and leave it running unwatched.
    let mut unwritable = false;
    let status = loop {
        if let Some(st) = run.wait_timeout(wait) {
            break st.map_err(|e| Failure {
                code: exit::OTHER,
                message: format!("waiting for {}: {e}", program.display()),
            })?;
        }
        pass_on(pid, &received);
        let loaded = !loaded_taken && run.agent_started();
        let due = !interval.is_zero() && Instant::now() >= next;
        if (loaded || due) && !unwritable {
            loaded_taken = true;
            if due {
                next += interval;
            }
            match run.snapshot() {
                Ok(()) => {}
                Err(supervise::SnapshotError::Write(e)) => {
                    unwritable = true;
                    eprintln!(
                        "vmmap: cannot write {what}: {e}; no more snapshots are taken, the program runs on"
                    );
                }
                // Said once: a program that made itself undumpable
                // fails every snapshot the same way, once a second.
                Err(e) => failures.say(format!("vmmap: snapshot of {pid} failed: {e}")),
            }
        }
        // Until the next thing to do: the agent's start is polled for,
        // Ctrl+C is looked at every 50 ms, the program's end wakes it.
        // With no more snapshots to take, only signals are looked at (a
        // due time left behind would have had this loop spin).
        let until_due = if interval.is_zero() || unwritable {
            Duration::from_millis(50)
        } else {
            next.saturating_duration_since(Instant::now())
        };
        wait = if loaded_taken || unwritable {
            until_due.min(Duration::from_millis(50))
        } else {
            Duration::from_millis(10)
        };
    };
    failures.end();
    let elapsed = start.elapsed();
    let snapshots = run.snapshots();
    let read_back = (agent.is_some() && (a.resolve_frees || !a.quiet)).then(|| {
        let file = run.recording().map_err(|e| Failure {
            code: exit::OTHER,
            message: format!("cannot read {what} back: {e}"),
        })?;
        read_back(&output, file, a.resolve_frees, !a.quiet)
    });
    if let Some(Ok(ReadBack {
        frees: Some(payload),
        ..
    })) = &read_back
    {
        if let Err(e) = run.append_chunk(CHUNK_FREES, payload) {
            eprintln!("vmmap: cannot write {what}: {e}; its frees are not resolved");
        }
    }
    // A file that could not be written whole is said so, and vmmap still
    // ends as the program did: its status is not vmmap's to change.
    let finished = run
        .finish()
        .and_then(|(file, total)| vmmap_core::output::sync(&file).map(|()| (file, total)));
    let (file, total) = match finished {
        Ok(f) => (Some(f.0), f.1),
        Err(e) => {
            unwritable = true;
            eprintln!("vmmap: cannot write {what}: {e}; the recording is incomplete");
            (None, 0)
        }
    };
    // Removed (or replaced) while the program ran: what was recorded went
    // with the unlinked file, and saying "wrote" would be false.
    let still_there = file.as_ref().is_some_and(|f| same_file(f, &output));
    if file.is_some() && !still_there {
        eprintln!(
            "vmmap: warning: {what} was removed or replaced while the program ran: the trace recorded there is gone"
        );
    }
    if !a.quiet {
        for n in run.notes() {
            eprintln!("vmmap: note: {n}");
        }
    }
    if !a.quiet {
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "vmmap: {} (pid {pid}) ran {:.2} s and {}; {snapshots} snapshot(s)",
            crate::shown(&program),
            elapsed.as_secs_f64(),
            supervise::describe_status(&status)
        );
        match read_back {
            Some(Ok(ReadBack {
                summary: Some((s, scan)),
                ..
            })) => {
                let _ = print_summary(&mut err, &s, &scan.info, scan.damage, unwritable);
            }
            Some(Err(e)) => {
                let _ = writeln!(err, "vmmap: {}", e.message);
            }
            _ => {}
        }
        if still_there {
            let size_now = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(total);
            let _ = writeln!(
                err,
                "vmmap: wrote {what} ({}); `vmmap trace {what}` shows it",
                size(size_now, false)
            );
        }
        if a.follow_forks {
            let children: Vec<_> = child_files(&output)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            for c in &children {
                let who = match child_pid(&c.path) {
                    Some((pid, None)) => format!("pid {pid}"),
                    Some((pid, Some(ns))) => format!("pid {pid} in pid namespace {ns}"),
                    None => "pid unknown".to_string(),
                };
                let _ = writeln!(
                    err,
                    "vmmap: wrote {} ({}), the trace of a followed child ({who})",
                    crate::shown(&c.path),
                    size(c.len, false),
                );
            }
            if children.is_empty() {
                let _ = writeln!(err, "vmmap: no child was traced (none was started, or none kept the agent's environment)");
            }
        }
    }
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(Failure {
            code: c.clamp(0, 255) as u8,
            message: String::new(),
        }),
        (None, Some(s)) => {
            drop(file);
            Err(end_as_killed_by(s))
        }
        _ => Err(Failure {
            code: exit::OTHER,
            message: String::new(),
        }),
    }
}

/// Ends vmmap as the program ended, killed by `sig`, once the file is
/// complete: whoever waits for `vmmap run` then sees what it would have
/// seen of the program (a shell says "Segmentation fault", a parent's
/// WIFSIGNALED holds, Python's `returncode` is -11), where an exit status
/// of 128 + `sig` is only what a shell's `$?` shows. As strace does: no
/// core of vmmap's own (the program's, if any, is written already), the
/// signal's default action, the signal raised. If it does not end vmmap,
/// the exit status is 128 + `sig`.
fn end_as_killed_by(sig: i32) -> Failure {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: setrlimit, signal, sigprocmask and raise on plain values;
    // nothing of vmmap's is in use any more.
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    Failure {
        code: (128 + sig).clamp(0, 255) as u8,
        message: String::new(),
    }
}

/// Passes on to the program the stop signals it did not receive itself,
/// as they came: those a process sent to vmmap alone (`kill VMMAP`), and
/// the terminal's (Ctrl+C) when the program has left vmmap's process
/// group. The terminal's reach the program too while it shares the group:
/// sending them again made an interactive python, which takes Ctrl+C as
/// KeyboardInterrupt and goes on, end by SIGTERM.
fn pass_on(pid: u32, received: &crate::stop::Received) {
    let (terminal, process) = received.take();
    // SAFETY: getpgid and getpgrp only read; the pid is our own child's.
    let apart = !terminal.is_empty() && unsafe { libc::getpgid(pid as i32) != libc::getpgrp() };
    for sig in process
        .into_iter()
        .chain(terminal.into_iter().filter(|_| apart))
    {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, sig) };
    }
}

/// What one read of the finished recording gives.
struct ReadBack {
    /// The [`CHUNK_FREES`] payload; None when the trace was not read
    /// whole (damage, an image that did not end cleanly) or the program
    /// kept too many blocks alive (`vmmap_trace::frees`).
    frees: Option<Vec<u8>>,
    /// The summary `vmmap run` prints, when it prints one.
    summary: Option<(Summary, Scan)>,
}

/// Reads the recording (`file`, which messages call `path`: it is read
/// through the run's own descriptor, never by its name) once, after the
/// program has ended, tying each free to its block for every later
/// analysis (`vmmap_trace::frees`) when `frees` is set
/// (`--resolve-frees`), and counting the summary in the same pass when
/// `summary` is set. Done here
/// rather than while the program runs: the follower that decodes the trace
/// meanwhile runs at idle priority and falls behind on busy cores, and a
/// map of live blocks kept there would hold the exit stop or the
/// launcher's memory for the whole run (docs/tracing.md, "Analysis
/// cost"). The user waits for it after the program's end (about what one
/// count of the trace without the chunk costs: +1.4 s of CPU after a
/// 20-million-operation run); the program's own exit does not.
fn read_back(
    path: &Path,
    file: std::fs::File,
    frees: bool,
    summary: bool,
) -> Result<ReadBack, Failure> {
    let mut rec = frees.then(Recorder::new).flatten();
    let mut acc = summary.then(Summarizer::default);
    let scan = crate::trace_views::scan_open_unchecked(path, file, Vec::new(), |r| {
        if let Some(rec) = rec.as_mut() {
            rec.add(r);
        }
        if let Some(acc) = acc.as_mut() {
            acc.add(r);
        }
    })?;
    // Only a trace read to its end, every image of it whole.
    let whole = scan.damage.is_none()
        && scan.file_problem.is_none()
        && scan.messages > 0
        && scan.info.images.iter().all(|i| i.complete());
    let frees = rec.filter(|_| whole).and_then(|r| r.finish(&scan.info));
    let summary = match acc {
        Some(acc) => {
            let scan = crate::trace_views::check_scan(path, scan)?;
            Some((acc.finish(&scan.info), scan))
        }
        None => None,
    };
    Ok(ReadBack { frees, summary })
}

/// A followed child's trace file, as found after the run. A file that was
/// there before the run, unchanged, is not the child's.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ChildFile {
    path: std::path::PathBuf,
    modified: Option<std::time::SystemTime>,
    len: u64,
}

/// The files of followed children next to `main` (`STEM.PID.vmmap`, and
/// `STEM.PID-NSINODE.vmmap` for one in a pid namespace of its own; files
/// of vmmap before 2026-12-07 named grandchildren `STEM.PID.PID2.vmmap`),
/// in name order.
fn child_files(main: &Path) -> Vec<ChildFile> {
    let dir = match main.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(stem) = main.file_stem().and_then(|s| s.to_str()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let Some(pids) = name
                .to_str()
                .and_then(|n| n.strip_prefix(stem))
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".vmmap"))
            else {
                return false;
            };
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            pids.split('.').all(|p| {
                let (pid, ns) = p.split_once('-').unwrap_or((p, "0"));
                digits(pid) && digits(ns)
            })
        })
        .filter_map(|e| {
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some(ChildFile {
                path: main.with_file_name(e.file_name()),
                modified: m.modified().ok(),
                len: m.len(),
            })
        })
        .collect();
    v.sort();
    v
}

/// The pid in a child's file name (`STEM.PID.vmmap`), and its pid
/// namespace when not vmmap's (`STEM.PID-NSINODE.vmmap`).
fn child_pid(path: &Path) -> Option<(u32, Option<u64>)> {
    let last = path.file_stem()?.to_str()?.rsplit('.').next()?;
    match last.split_once('-') {
        Some((pid, ns)) => Some((pid.parse().ok()?, Some(ns.parse().ok()?))),
        None => Some((last.parse().ok()?, None)),
    }
}

/// Messages on stderr, each said once while it repeats; how many times
/// it came again is said when another comes or at the end.
#[derive(Default)]
struct Repeats {
    last: Option<String>,
    again: u64,
}

impl Repeats {
    fn say(&mut self, message: String) {
        if self.last.as_ref() == Some(&message) {
            self.again += 1;
            return;
        }
        self.end();
        eprintln!("{message}");
        self.last = Some(message);
    }

    fn end(&mut self) {
        if self.again > 0 {
            eprintln!("vmmap: (the same failure {} more time(s))", self.again);
        }
        self.again = 0;
    }
}

/// Whether `path` still names the file open as `file` (regular files: a
/// device or FIFO given as -o is written in place and stays).
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => !a.is_file() || (a.dev(), a.ino()) == (b.dev(), b.ino()),
        (Ok(a), Err(_)) => !a.is_file(),
        _ => true,
    }
}
