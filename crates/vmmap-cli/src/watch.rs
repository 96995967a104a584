//! `vmmap watch`: a process recorded over time into a .vmmap file.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmmap_core::collect;
use vmmap_core::format::Writer;
use vmmap_core::units::size;
use vmmap_core::Error;

use crate::cli::WatchArgs;
use crate::{exit, resolve, Failure};

pub fn watch(a: &WatchArgs, proc_root: &Path) -> Result<(), Failure> {
    let interval = a.interval;
    if interval.is_zero() {
        return Err(Failure::usage(
            "--interval must be longer than 0, such as 500ms, 1s or 2m",
        ));
    }
    let duration = a.duration;
    if a.full_every == 0 {
        return Err(Failure::usage("--full-every must be at least 1"));
    }
    let pid = resolve(&a.target, proc_root)?;
    let opts = a.read.options(proc_root);
    // The first snapshot before the file exists: a wrong PID or a
    // permission problem leaves nothing behind.
    let first = collect::snapshot(pid, &opts)?;
    let first_fp = collect::maps_fingerprint(pid, &opts).unwrap_or(0);
    let (file, what) = if crate::is_stdout(&a.output) {
        let out = io::stdout().as_fd().try_clone_to_owned().map(File::from);
        (out, "standard output".to_string())
    } else {
        let out = vmmap_core::output::create(&a.output);
        (out, crate::shown(&a.output).into_owned())
    };
    let file = file.map_err(|e| Failure {
        code: exit::OUTPUT,
        message: format!("cannot create {what}: {e}"),
    })?;
    let out_err = |e: io::Error| Failure {
        code: exit::OUTPUT,
        message: format!("cannot write {what}: {e}"),
    };
    let mut w = Writer::new(file).map_err(out_err)?;
    w.append(&first).map_err(out_err)?;
    drop(first);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| Failure {
            code: exit::OTHER,
            message: e.to_string(),
        })?;
    }
    let progress = io::stderr().is_terminal();
    let start = Instant::now();
    let (mut records, mut full, mut since_full, mut last_fp) = (1u64, 1u64, 0u64, first_fp);
    let mut ended = None;
    let mut next = start + interval;
    loop {
        if progress {
            eprint!(
                "\r\x1b[Krecording {pid}: {records} records ({full} full), {:.1} s, {}",
                start.elapsed().as_secs_f64(),
                size(w.bytes_written(), false)
            );
        }
        if a.count.is_some_and(|c| records >= c) || duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        // Sleep to the next tick in short steps, so Ctrl+C is prompt.
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
        if stop.load(Ordering::Relaxed) {
            ended = Some("stopped");
            break;
        }
        next += interval;
        let fp = match collect::maps_fingerprint(pid, &opts) {
            Ok(fp) => fp,
            Err(e) if exited(&e) => {
                ended = Some("the process exited");
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let result = if fp != last_fp || since_full + 1 >= a.full_every {
            collect::snapshot(pid, &opts).map(|s| {
                full += 1;
                since_full = 0;
                last_fp = fp;
                w.append(&s)
            })
        } else {
            collect::sample(pid, &opts).map(|s| {
                since_full += 1;
                w.append_sample(&s)
            })
        };
        match result {
            Ok(written) => written.map_err(out_err)?,
            Err(e) if exited(&e) => {
                ended = Some("the process exited");
                break;
            }
            Err(e) => return Err(e.into()),
        }
        records += 1;
    }
    let total = w.bytes_written();
    let file = w.finish().map_err(out_err)?;
    vmmap_core::output::sync(&file).map_err(out_err)?;
    if progress {
        eprint!("\r\x1b[K");
    }
    eprintln!(
        "recorded {records} records ({full} full snapshots, {} totals-only) of process {pid} in {:.1} s to {what} ({}){}",
        records - full,
        start.elapsed().as_secs_f64(),
        size(total, false),
        ended.map(|e| format!("; {e}")).unwrap_or_default()
    );
    Ok(())
}

/// Whether the recorded process is gone, which ends the recording.
fn exited(e: &Error) -> bool {
    matches!(
        e,
        Error::ProcessExited { .. } | Error::Zombie { .. } | Error::NoSuchProcess { .. }
    )
}
