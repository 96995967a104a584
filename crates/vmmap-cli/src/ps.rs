//! `vmmap ps`: the processes, with private bytes and working set.

use std::cmp::Ordering;
use std::io::{self, Write};
use std::path::Path;

use vmmap_core::collect::{self, Access, ProcessEntry};
use vmmap_core::text::Escaped;

use crate::cli::{PsArgs, PsSort};
use crate::{output_error, Failure};

pub(crate) fn ps(a: &PsArgs, proc_root: &Path) -> Result<(), Failure> {
    let mut list = collect::list_processes(proc_root)?;
    if let Some(name) = &a.container {
        list.retain(|p| p.container.as_ref().is_some_and(|c| c.matches(name)));
        if list.is_empty() {
            return Err(Failure {
                code: crate::exit::NO_PROCESS,
                message: format!("no container matches {}", vmmap_core::text::Escaped(name)),
            });
        }
    }
    match a.sort {
        PsSort::Pid => list.sort_by_key(|p| p.pid),
        PsSort::User => list.sort_by(|x, y| x.user.cmp(&y.user).then(x.pid.cmp(&y.pid))),
        PsSort::Name => list.sort_by(|x, y| x.name.cmp(&y.name).then(x.pid.cmp(&y.pid))),
        PsSort::Private => {
            list.sort_by(|x, y| cmp_opt(y.private_bytes, x.private_bytes).then(x.pid.cmp(&y.pid)))
        }
        PsSort::Ws => {
            list.sort_by(|x, y| cmp_opt(y.working_set, x.working_set).then(x.pid.cmp(&y.pid)))
        }
        PsSort::Arch => list.sort_by(|x, y| x.arch.cmp(&y.arch).then(x.pid.cmp(&y.pid))),
    }
    if a.reverse {
        list.reverse();
    }
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        vmmap_core::export::to_writer_pretty(&mut w, &list).and_then(|()| writeln!(w))
    } else {
        write_ps(&list, a.bytes, crate::width::fit_width(a.wide), &mut w)
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))
}

/// The table; with a `width` (a terminal's) the text columns are as wide
/// as their longest cell, ARCH drops its `(ELF64)` detail, and each row's
/// COMMAND is cut at the width, ending in `…`. Without one (a file or a
/// pipe), every row is whole.
pub(crate) fn write_ps(
    list: &[ProcessEntry],
    exact: bool,
    width: Option<usize>,
    w: &mut impl Write,
) -> io::Result<()> {
    let fw = if exact { 13 } else { 8 };
    let arch_of = |p: &ProcessEntry| -> String {
        match (&p.arch, &p.access) {
            (_, Access::Denied(_)) => "(no access)".to_string(),
            (Some(a), _) if width.is_some() => a.split(" (").next().unwrap_or(a).to_string(),
            (Some(a), _) => a.clone(),
            (None, _) => "?".into(),
        }
    };
    let text_w = |header: &str, full: usize, cell: &dyn Fn(&ProcessEntry) -> usize| match width {
        None => full,
        Some(_) => list
            .iter()
            .map(cell)
            .max()
            .unwrap_or(0)
            .clamp(header.len(), full),
    };
    let uw = text_w("USER", 10, &|p| {
        Escaped(&p.user).to_string().chars().count()
    });
    let nw = text_w("NAME", 16, &|p| {
        Escaped(&p.name).to_string().chars().count()
    });
    let aw = text_w("ARCH", 16, &|p| arch_of(p).len());
    // The container columns appear only where containers run, so that a
    // host without them keeps the table it always had.
    let containers = list
        .iter()
        .any(|p| p.container.is_some() || p.ns_pid.is_some());
    let extra = |ns: &str, c: &str| {
        if containers {
            format!("{ns:>7}  {c:<24}  ")
        } else {
            String::new()
        }
    };
    writeln!(
        w,
        "{:>7}  {:<uw$}  {:<nw$}  {:>fw$}  {:>fw$}  {:<aw$}  {}COMMAND",
        "PID",
        "USER",
        "NAME",
        "PRIVATE",
        "WS",
        "ARCH",
        extra("NSPID", "CONTAINER")
    )?;
    let mut denied = 0;
    for p in list {
        let size =
            |v: Option<u64>| v.map_or_else(|| "n/a".into(), |v| vmmap_core::units::size(v, exact));
        if matches!(p.access, Access::Denied(_)) {
            denied += 1;
        }
        let ns = p.ns_pid.map_or_else(|| "-".into(), |n| n.to_string());
        let c = p
            .container
            .as_ref()
            .map_or_else(|| "-".into(), |c| c.label());
        let row = format!(
            "{:>7}  {:<uw$}  {:<nw$}  {:>fw$}  {:>fw$}  {:<aw$}  {}{}",
            p.pid,
            Escaped(&p.user),
            Escaped(&p.name),
            size(p.private_bytes),
            size(p.working_set),
            arch_of(p),
            extra(&ns, &Escaped(&c).to_string()),
            Escaped(&p.cmdline)
        );
        match width {
            Some(c) => writeln!(w, "{}", vmmap_render::text::cut_end(&row, c))?,
            None => writeln!(w, "{row}")?,
        }
    }
    if denied > 0 {
        // On a terminal, on two lines that fit 80 columns.
        let sep = if width.is_some() { "\n" } else { " " };
        writeln!(
            w,
            "\n{denied} process(es) marked (no access) belong to other users:{sep}run vmmap as their owner, as root, or with CAP_SYS_PTRACE to inspect them."
        )?;
    }
    Ok(())
}

/// Orders figures for `ps`.
pub fn cmp_opt(a: Option<u64>, b: Option<u64>) -> Ordering {
    a.unwrap_or(0).cmp(&b.unwrap_or(0))
}
