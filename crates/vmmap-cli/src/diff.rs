//! `vmmap diff`: two snapshots compared, from files or live.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use vmmap_core::collect::{self, Options};
use vmmap_core::format;
use vmmap_core::Error;

use crate::cli::DiffArgs;
use crate::files::require_snapshots;
use crate::{resolve, Failure};

/// One side of a diff, as the user named it.
enum Side {
    /// A snapshot of a file (None: the last).
    File(std::path::PathBuf, Option<usize>),
    /// A live process.
    Live(u32),
}

fn side(arg: &str, proc_root: &Path) -> Result<Side, Failure> {
    let p = Path::new(arg);
    if crate::names_file(p) {
        return Ok(Side::File(p.to_path_buf(), None));
    }
    if let Some((file, n)) = arg.rsplit_once(':') {
        if crate::names_file(Path::new(file)) {
            let n = n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Failure::usage(format!(
                    "{arg:?}: after the colon comes a snapshot number from 1"
                ))
            })?;
            return Ok(Side::File(file.into(), Some(n)));
        }
    }
    Ok(Side::Live(resolve(arg, proc_root)?))
}

fn nth(
    loaded: &format::Loaded,
    n: Option<usize>,
    what: &str,
) -> Result<vmmap_core::Snapshot, Failure> {
    require_snapshots(loaded, what)?;
    let count = loaded.snapshots.len();
    let i = n.unwrap_or(count);
    loaded
        .snapshots
        .get(i.wrapping_sub(1))
        .cloned()
        .ok_or_else(|| {
            Failure::usage(format!(
                "{what} has snapshots 1 to {count}; there is no snapshot {i}"
            ))
        })
}

fn take(s: &Side, opts: &Options) -> Result<vmmap_core::Snapshot, Failure> {
    match s {
        Side::Live(pid) => Ok(collect::snapshot(*pid, opts)?),
        Side::File(path, n) => nth(&crate::load(path)?, *n, &path.display().to_string()),
    }
}

pub fn diff(a: &DiffArgs, proc_root: &Path) -> Result<(), Failure> {
    // 0 text, 1 JSON, 2 CSV.
    let ext = a
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str());
    let kind = match (a.json, a.csv, ext) {
        (true, _, _) | (_, _, Some("json")) => 1,
        (_, true, _) | (_, _, Some("csv")) => 2,
        (_, _, Some("txt" | "text") | None) => 0,
        (_, _, Some(other)) => {
            return Err(Failure::usage(format!(
                "cannot write a diff as .{other}: use .json, .csv or .txt"
            )))
        }
    };
    let opts = Options::default().proc_root(proc_root);
    let first = side(&a.a, proc_root)?;
    if a.written && (a.b.is_some() || !matches!(first, Side::Live(_))) {
        return Err(Failure::usage(
            "--written needs one live process: vmmap diff PID --after TIME --written",
        ));
    }
    let mut written: Option<Vec<u64>> = None;
    let (before, after) = match (&first, &a.b) {
        (_, Some(b)) => {
            let second = side(b, proc_root)?;
            (take(&first, &opts)?, take(&second, &opts)?)
        }
        (Side::File(path, None), None) => {
            let loaded = crate::load(path)?;
            let what = crate::shown(path).into_owned();
            (nth(&loaded, Some(1), &what)?, nth(&loaded, None, &what)?)
        }
        (Side::File(..), None) => {
            return Err(Failure::usage(
                "give a second snapshot to compare FILE:N with",
            ));
        }
        (Side::Live(pid), None) => {
            let wait = a.after;
            let before = collect::snapshot(*pid, &opts)?;
            if a.written {
                // The kernel marks new mappings soft-dirty (VmFlags "sd")
                // only when built with CONFIG_MEM_SOFT_DIRTY; without it
                // the bits never change and every region would read as
                // unwritten.
                if !before.vmas().any(|r| r.has_vm_flag("sd")) {
                    return Err(Error::Unsupported {
                        what: "soft-dirty page tracking (no mapping carries the \"sd\" VmFlag)".into(),
                        hint: "the kernel was built without CONFIG_MEM_SOFT_DIRTY, so vmmap cannot tell which pages were written; drop --written".into(),
                    }
                    .into());
                }
                collect::clear_soft_dirty(*pid, &opts)?;
            }
            if io::stderr().is_terminal() {
                eprintln!(
                    "vmmap: second snapshot of {pid} in {:.1} s…",
                    wait.as_secs_f64()
                );
            }
            std::thread::sleep(wait);
            let after = collect::snapshot(*pid, &opts)?;
            if a.written {
                written = Some(collect::soft_dirty_bytes(
                    *pid,
                    &opts,
                    &after.regions,
                    after.kernel.page_size,
                )?);
            }
            (before, after)
        }
    };
    let mut d = vmmap_core::diff::diff(&before, &after);
    if let Some(w) = &written {
        d.set_written(&after, w);
    }
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match kind {
            1 => vmmap_render::diff::write_json(&d, &mut *w),
            2 => vmmap_render::diff::write_csv(&d, &mut *w),
            _ => vmmap_render::diff::write_text(&d, &mut *w, a.bytes),
        }
    };
    match &a.output {
        Some(p) => crate::write_file(p, write),
        None => {
            let out = io::stdout();
            let width = match kind {
                0 => crate::width::terminal_width(),
                _ => None,
            };
            let mut lock = crate::width::FitLines::new(out.lock(), width);
            write(&mut lock)
                .and_then(|()| lock.flush())
                .map_err(|e| crate::output_error(e, "standard output"))
        }
    }
}
