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
        write_ps(&list, a.bytes, &mut w)
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))
}

pub(crate) fn write_ps(list: &[ProcessEntry], exact: bool, w: &mut impl Write) -> io::Result<()> {
    let width = if exact { 13 } else { 8 };
    writeln!(
        w,
        "{:>7}  {:<10}  {:<16}  {:>width$}  {:>width$}  {:<16}  COMMAND",
        "PID", "USER", "NAME", "PRIVATE", "WS", "ARCH"
    )?;
    let mut denied = 0;
    for p in list {
        let size =
            |v: Option<u64>| v.map_or_else(|| "n/a".into(), |v| vmmap_core::units::size(v, exact));
        let arch = match (&p.arch, &p.access) {
            (_, Access::Denied(_)) => {
                denied += 1;
                "(no access)".to_string()
            }
            (Some(a), _) => a.clone(),
            (None, _) => "?".into(),
        };
        writeln!(
            w,
            "{:>7}  {:<10}  {:<16}  {:>width$}  {:>width$}  {:<16}  {}",
            p.pid,
            Escaped(&p.user),
            Escaped(&p.name),
            size(p.private_bytes),
            size(p.working_set),
            arch,
            Escaped(&p.cmdline)
        )?;
    }
    if denied > 0 {
        writeln!(
            w,
            "\n{denied} process(es) marked (no access) belong to other users: run vmmap as their owner, as root, or with CAP_SYS_PTRACE to inspect them."
        )?;
    }
    Ok(())
}

/// Orders figures for `ps`.
pub fn cmp_opt(a: Option<u64>, b: Option<u64>) -> Ordering {
    a.unwrap_or(0).cmp(&b.unwrap_or(0))
}
