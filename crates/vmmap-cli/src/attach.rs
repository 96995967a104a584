//! `vmmap attach PID`: trace a running process from now on
//! (`vmmap_trace::attach`), into the native format of `vmmap run`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vmmap_core::collect::{self, Options};
use vmmap_core::format::Writer;
use vmmap_core::Error;
use vmmap_trace::attach::{self, AttachError};
use vmmap_trace::launch;

use crate::cli::{AttachArgs, Unwind};
use crate::{exit, Failure};

fn failure(e: AttachError) -> Failure {
    let code = match &e {
        AttachError::Gone(_) => exit::NO_PROCESS,
        AttachError::Permission(_) => exit::PERMISSION,
        AttachError::Refused(_) => exit::CANNOT_TRACE,
        AttachError::Other(_) => exit::OTHER,
    };
    Failure {
        code,
        message: e.to_string(),
    }
}

/// How often vmmap takes what the agent wrote (and bumps its heartbeat).
const DRAIN: Duration = Duration::from_millis(20);

/// `vmmap attach PID [-o FILE] [--duration D] [--interval D]`
pub fn attach(a: &AttachArgs, proc_root: &Path) -> Result<(), Failure> {
    let pid = a.pid;
    attach::check(pid).map_err(failure)?;
    let agent = launch::find_agent(a.agent.as_deref()).map_err(|message| Failure {
        code: exit::CANNOT_TRACE,
        message,
    })?;
    let name = std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "process".into());
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| launch::default_output(Path::new(&format!("{name}.{pid}"))));
    if crate::is_stdout(&output) {
        return Err(Failure::usage(
            "-o - is not possible for vmmap attach: give a file name",
        ));
    }
    let what = crate::shown(&output).into_owned();
    let out_err = |e: std::io::Error| Failure {
        code: exit::OUTPUT,
        message: format!("cannot write {what}: {e}"),
    };
    let file = vmmap_core::output::create(&output).map_err(out_err)?;
    let mut w = Writer::new(file).map_err(out_err)?;
    let opts = Options::default()
        .proc_root(proc_root)
        .ptrace(false)
        .read_memory(true);
    let interrupted = crate::stop::on_stop_signals();
    let config = match a.unwind {
        Unwind::Fp => "unwind=fp",
        Unwind::Dwarf => "unwind=dwarf",
    };
    let started = Instant::now();
    let mut s = match attach::inject(pid, &agent, config) {
        Ok(s) => s,
        Err(e) => {
            drop(w);
            let _ = std::fs::remove_file(&output);
            return Err(failure(e));
        }
    };
    let attach_took = started.elapsed();
    let mut snapshots = 0u64;
    let mut write_err = None;
    let mut snapshot = |w: &mut Writer<std::fs::File>| -> Result<(), Failure> {
        match collect::snapshot(pid as u32, &opts) {
            Ok(snap) => {
                w.append(&snap).map_err(out_err)?;
                snapshots += 1;
                Ok(())
            }
            Err(
                Error::ProcessExited { .. }
                | Error::Zombie { .. }
                | Error::NoSuchProcess { .. }
                | Error::Parse { .. },
            ) => Ok(()),
            Err(e) => Err(Failure::from(e)),
        }
    };
    // What the agent wrote first (HELLO, modules, maps) comes before the
    // snapshot at attach, so that the snapshot has the trace's clock.
    let mut take = |w: &mut Writer<std::fs::File>, msg: &[u8]| {
        if let Err(e) = w.append_trace(msg) {
            write_err.get_or_insert(e);
        }
        Ok(())
    };
    let _ = s.drain(|m| take(&mut w, m));
    snapshot(&mut w)?;
    let mut next = Instant::now() + a.interval;
    let deadline = a.duration.map(|d| Instant::now() + d);
    let mut ended = false;
    loop {
        std::thread::sleep(DRAIN);
        match s.drain(|m| take(&mut w, m)) {
            Ok(state) if state == vmmap_wire_finished() => {
                // The agent detached by itself (the process exec'd, or
                // missed the heartbeat).
                ended = true;
                break;
            }
            Ok(_) => {}
            Err(_) => {
                // ESRCH: the process is gone.
                ended = true;
                break;
            }
        }
        if interrupted.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if !a.interval.is_zero() && Instant::now() >= next {
            next += a.interval;
            snapshot(&mut w)?;
        }
    }
    let mut finished = ended;
    if !ended {
        finished = s
            .detach(Duration::from_secs(10), |m| take(&mut w, m))
            .unwrap_or(false);
        snapshot(&mut w)?;
    }
    if let Some(e) = write_err {
        return Err(out_err(e));
    }
    w.finish().map_err(out_err)?;
    let lost = if ended { 0 } else { s.lost() };
    eprintln!(
        "vmmap: attached to process {pid} ({name}) in {:.1} ms, one thread stopped {:.1} ms; {} snapshots; {}{} -> {what}",
        attach_took.as_secs_f64() * 1e3,
        s.stopped.as_secs_f64() * 1e3,
        snapshots,
        if ended {
            "the process ended or the agent detached by itself"
        } else if finished {
            "detached"
        } else {
            "the agent did not finish detaching within 10 s"
        },
        if lost > 0 {
            format!(" ({lost} bytes of events dropped: vmmap did not keep up)")
        } else {
            String::new()
        },
    );
    Ok(())
}

fn vmmap_wire_finished() -> u64 {
    vmmap_trace::wire::attach::FINISHED
}
