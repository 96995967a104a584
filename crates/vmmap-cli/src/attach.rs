//! `vmmap attach PID`: trace a running process from now on, into the
//! native format of `vmmap run` (`vmmap_trace::attach_record`, which the
//! UI's attach key runs too).

use std::path::Path;

use vmmap_core::collect::Options;
use vmmap_core::format::Writer;
use vmmap_trace::attach::{self, AttachError};
use vmmap_trace::attach_record::{record, End, Progress, RecordError, Settings};
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
    let interrupted = crate::stop::on_stop_signals();
    let config = match a.unwind {
        Unwind::Fp => "unwind=fp",
        Unwind::Dwarf => "unwind=dwarf",
    };
    let settings = Settings {
        agent: &agent,
        config,
        interval: a.interval,
        duration: a.duration,
        snapshots: Options::default()
            .proc_root(proc_root)
            .ptrace(false)
            .read_memory(true),
        count_events: false,
    };
    let report = match record(pid, &mut w, &settings, &interrupted, &Progress::default()) {
        Ok(r) => r,
        Err(RecordError::Attach(e)) => {
            drop(w);
            let _ = std::fs::remove_file(&output);
            return Err(failure(e));
        }
        Err(RecordError::Write(e)) => return Err(out_err(e)),
        Err(RecordError::Snapshot(e)) => return Err(Failure::from(e)),
    };
    w.finish().map_err(out_err)?;
    eprintln!(
        "vmmap: attached to process {pid} ({name}) in {:.1} ms, one thread stopped {:.1} ms; {} snapshots; {}{} -> {what}",
        report.attach_took.as_secs_f64() * 1e3,
        report.stopped.as_secs_f64() * 1e3,
        report.snapshots,
        match report.end {
            End::Ended => "the process ended or the agent detached by itself",
            End::Exec => "the process ran a new program (exec), which runs on untraced: an attach traces the program it found",
            End::Sandboxed => "the process put itself under seccomp, and the agent detached before it did",
            End::Detached => "detached",
            End::Unfinished => "the agent did not finish detaching within 10 s",
        },
        if report.lost > 0 {
            format!(
                " ({} bytes of events dropped: vmmap did not keep up)",
                report.lost
            )
        } else {
            String::new()
        },
    );
    Ok(())
}
