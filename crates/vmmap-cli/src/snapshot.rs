//! `vmmap PID`: one process's map, the interactive view, `--address`
//! and `--empty-working-set`.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::collect::{self, Options};
use vmmap_core::text::Escaped;

use crate::cli::{Reclaim, SnapshotArgs};
use crate::ps::write_ps;
use crate::show::{output_format, show, text_options, Format};
use crate::target::parse_address;
use crate::{address, exit, multi, output_error, resolve, Failure};

pub(crate) fn snapshot(a: &SnapshotArgs, proc_root: &Path) -> Result<(), Failure> {
    if multi::is_multi(a) {
        return multi::combined(a, proc_root);
    }
    let pid = match (a.pid, &a.name, &a.target) {
        (Some(p), _, _) => p,
        (None, Some(n), _) => collect::find_by_name(proc_root, n)?,
        (None, None, Some(t)) => resolve(t, proc_root)?,
        (None, None, None) if a.interactive || interactive_terminal() => {
            return tui(vmmap_tui::Start::Picker, proc_root)
        }
        (None, None, None) => return no_target(proc_root),
    };
    if a.interactive {
        let opts = a.read.options(proc_root);
        let t = std::time::Instant::now();
        let snap = collect::snapshot(pid, &opts)?;
        return tui(
            vmmap_tui::Start::Snapshot(std::sync::Arc::new(snap), t.elapsed()),
            proc_root,
        );
    }
    if a.empty_working_set {
        return empty_working_set(
            pid,
            a.samples,
            a.display.bytes,
            a.reclaim == Reclaim::Cgroup,
            proc_root,
        );
    }
    if let Some(text) = &a.address {
        let addr = parse_address(text)?;
        let opts = a.read.options(proc_root);
        let mut snap = collect::snapshot(pid, &opts)?;
        if a.shared_with {
            return multi::shared_with(&snap, addr, &opts, a.display.json, a.display.bytes);
        }
        multi::enrich(&mut snap, a, &opts)?;
        let out = io::stdout();
        let width = if a.display.json {
            None
        } else {
            crate::width::fit_width(a.display.wide)
        };
        let mut w = crate::width::FitLines::new(out.lock(), width);
        let r = if a.display.json {
            vmmap_core::export::to_writer_pretty(&mut w, &address::to_json(&snap, addr))
                .and_then(|()| writeln!(w))
        } else {
            address::write_text(&snap, addr, a.display.bytes, &mut w)
        };
        return r
            .and_then(|()| w.flush())
            .map_err(|e| output_error(e, "standard output"));
    }
    // Check the display options before the (possibly long) collection.
    let format = output_format(&a.display)?;
    let text = text_options(&a.display)?;
    // Only JSON and the native format carry the kernel's rollup; the other
    // outputs are spared its second walk of every page table.
    let rollup = matches!(format, Format::Json | Format::Native);
    let opts = a.read.options(proc_root).rollup(rollup);
    let mut snap = collect::snapshot(pid, &opts)?;
    multi::enrich(&mut snap, a, &opts)?;
    show(snap, &a.display, format, text)
}

/// `vmmap PID --empty-working-set`: page out, then watch Rss come back.
fn empty_working_set(
    pid: u32,
    samples: u32,
    exact: bool,
    by_cgroup: bool,
    proc_root: &Path,
) -> Result<(), Failure> {
    use vmmap_core::proc::smaps::Field;
    if proc_root != Path::new("/proc") {
        return Err(Failure::usage(
            "--empty-working-set acts on a live process; it cannot use --proc-root",
        ));
    }
    let opts = Options::default().proc_root(proc_root);
    let snap = collect::snapshot(pid, &opts)?;
    let rss = |pid| -> Result<u64, Failure> {
        let s = collect::sample(pid, &opts)?;
        Ok(s.rollup.get(Field::Rss).unwrap_or(0))
    };
    let size = |v: u64| {
        if v == 0 {
            "0".to_string()
        } else {
            vmmap_core::units::size(v, exact)
        }
    };
    let before = rss(pid)?;
    let done = if by_cgroup {
        let c = collect::reclaim::reclaim_cgroup(pid, proc_root)?;
        format!(
            "Reclaimed from cgroup {} (every process in it, and its page cache): charged memory {} -> {}{}",
            c.cgroup.display(),
            size(c.before),
            size(c.after),
            if c.partial {
                " (the kernel could not reclaim all it was asked for)"
            } else {
                ""
            }
        )
    } else {
        let r = collect::reclaim::page_out(&snap)?;
        format!(
            "Paged out {} mapping(s) ({}); {} skipped (locked, PFN, hugetlb, or unmapped since)",
            r.advised,
            size(r.advised_bytes),
            r.skipped
        )
    };
    let after = rss(pid)?;
    let out = io::stdout();
    let mut w = out.lock();
    let mut print = |text: String| -> Result<(), Failure> {
        writeln!(w, "{text}")
            .and_then(|()| w.flush())
            .map_err(|e| output_error(e, "standard output"))
    };
    print(format!(
        "Process {pid} ({}): working set {} before",
        Escaped(&snap.process.name),
        size(before)
    ))?;
    print(done)?;
    print(format!(
        "Working set after: {} ({} paged out)",
        size(after),
        size(before.saturating_sub(after))
    ))?;
    let t0 = std::time::Instant::now();
    for i in 1..=samples {
        let due = std::time::Duration::from_secs(u64::from(i));
        std::thread::sleep(due.saturating_sub(t0.elapsed()));
        let now = match rss(pid) {
            Ok(v) => v,
            Err(f) if f.code == exit::EXITED || f.code == exit::NO_PROCESS => {
                print(format!(
                    "+{:.1}s  the process exited",
                    t0.elapsed().as_secs_f64()
                ))?;
                return Ok(());
            }
            Err(f) => return Err(f),
        };
        print(format!(
            "+{:.1}s  working set {} ({} back)",
            t0.elapsed().as_secs_f64(),
            size(now),
            size(now.saturating_sub(after))
        ))?;
    }
    Ok(())
}

/// Whether both ends are a terminal, so that `vmmap` alone may take it over.
fn interactive_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

pub(crate) fn tui(start: vmmap_tui::Start, proc_root: &Path) -> Result<(), Failure> {
    vmmap_tui::run(start, proc_root.to_path_buf()).map_err(|e| Failure {
        code: exit::OTHER,
        message: format!("terminal UI: {e}"),
    })
}

/// `vmmap` alone without a terminal: teach the usage and show what there
/// is to look at.
fn no_target(root: &Path) -> Result<(), Failure> {
    let out = io::stdout();
    let mut w = out.lock();
    let r = (|| -> io::Result<()> {
        writeln!(
            w,
            "usage: vmmap <PID|NAME> [options]   (vmmap --help for all options)\n"
        )?;
        let list = collect::list_processes(root).map_err(|e| io::Error::other(e.to_string()))?;
        write_ps(&list, false, crate::width::terminal_width(), &mut w)
    })();
    r.map_err(|e| output_error(e, "standard output"))
}
