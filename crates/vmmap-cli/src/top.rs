//! `vmmap top`: the live view of which processes' memory grows, or with
//! `--once`/`--json` one table from two samples for scripts. The samples
//! and the growth are core's (`collect::top`, `top`); this picks the
//! processes and writes them.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use serde::Serialize;
use vmmap_core::collect::top::{Sampler, Select};
use vmmap_core::text::Escaped;
use vmmap_core::top::{self, Metric, Proc, Row, Tracker};

use crate::cli::TopArgs;
use crate::exit;
use crate::{output_error, Failure};

/// The JSON schema of `top --json`.
const SCHEMA: &str = "vmmap.top";

fn select(a: &TopArgs) -> Select {
    match (&a.cgroup, &a.container) {
        (Some(c), _) => Select::cgroup(c),
        (_, Some(n)) => Select::Container(n.clone()),
        _ => Select::All,
    }
}

pub(crate) fn top(a: &TopArgs, proc_root: &Path) -> Result<(), Failure> {
    if a.sort.metric() == Some(Metric::Pss) && !a.pss {
        return Err(Failure {
            code: exit::USAGE,
            message: format!("--sort {} needs --pss", a.sort.key()),
        });
    }
    let mut sampler = Sampler::new(proc_root, select(a)).pss(a.pss);
    let first = sampler.sample()?;
    if first.is_empty() {
        return Err(nothing_selected(a, proc_root));
    }
    if !(a.once || a.json || a.iterations.is_some()) {
        if !io::stdout().is_terminal() {
            return Err(Failure {
                code: exit::USAGE,
                message:
                    "vmmap top needs a terminal; --once prints one table, --json one JSON document"
                        .into(),
            });
        }
        let start = vmmap_tui::Start::Top(vmmap_tui::TopStart {
            select: select(a),
            first,
            delay: a.delay,
            sort: a.sort,
            reverse: a.reverse,
            filter: a.filter.clone().unwrap_or_default(),
            pss: a.pss,
        });
        return crate::snapshot::tui(start, proc_root);
    }
    let mut tracker = Tracker::new();
    tracker.update(first);
    let n = a.iterations.unwrap_or(1);
    for i in 0..n {
        std::thread::sleep(a.delay);
        let mut rows = tracker.update(sampler.sample()?);
        if let Some(f) = &a.filter {
            rows.retain(|r| r.proc.matches(f));
        }
        top::sort(&mut rows, a.sort, a.reverse);
        // Several documents go one per line (JSON Lines); one is pretty.
        let lines = n > 1;
        write_once(a, &rows, lines, i > 0)?;
    }
    Ok(())
}

/// Writes one table or JSON document; `gap` puts a blank line before a
/// table that follows another.
fn write_once(a: &TopArgs, rows: &[Row], lines: bool, gap: bool) -> Result<(), Failure> {
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        #[derive(Serialize)]
        struct Doc<'a> {
            schema: &'static str,
            version: u32,
            /// Seconds between the two samples asked for.
            delay: f64,
            sort: String,
            processes: &'a [Row],
        }
        let doc = Doc {
            schema: SCHEMA,
            version: 1,
            delay: a.delay.as_secs_f64(),
            sort: a.sort.key(),
            processes: rows,
        };
        if lines {
            vmmap_core::export::to_writer(&mut w, &doc).and_then(|()| writeln!(w))
        } else {
            vmmap_core::export::to_writer_pretty(&mut w, &doc).and_then(|()| writeln!(w))
        }
    } else {
        (if gap { writeln!(w) } else { Ok(()) }).and_then(|()| write_table(rows, a, &mut w))
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))
}

/// Why a selection is empty, with the containers there are.
fn nothing_selected(a: &TopArgs, proc_root: &Path) -> Failure {
    let message = match (&a.cgroup, &a.container) {
        (Some(c), _) => format!("no process in cgroup {}", Escaped(c)),
        (_, Some(n)) => {
            let mut known: Vec<String> = Sampler::new(proc_root, Select::All)
                .sample()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.container.as_ref().map(|c| c.label()))
                .collect();
            known.sort();
            known.dedup();
            if known.is_empty() {
                format!(
                    "no container matches {}: no process runs in a container",
                    Escaped(n)
                )
            } else {
                format!(
                    "no container matches {}; running: {}",
                    Escaped(n),
                    Escaped(&known.join(", "))
                )
            }
        }
        _ => "no process with an address space".into(),
    };
    Failure {
        code: exit::NO_PROCESS,
        message,
    }
}

/// A signed size: `+1.0M`, `-4K`, `0`.
pub(crate) fn signed(v: i64, exact: bool) -> String {
    match v {
        0 => "0".into(),
        v if v > 0 => format!("+{}", vmmap_core::units::size(v as u64, exact)),
        v => format!("-{}", vmmap_core::units::size(v.unsigned_abs(), exact)),
    }
}

fn write_table(rows: &[Row], a: &TopArgs, w: &mut impl Write) -> io::Result<()> {
    let width = if a.bytes { 14 } else { 8 };
    let ns = rows.iter().any(|r| r.proc.ns_pid.is_some());
    let containers = rows.iter().any(|r| r.proc.container.is_some());
    writeln!(
        w,
        "{} processes; + is the growth over {:.1}s; sorted by {}{}",
        rows.len(),
        a.delay.as_secs_f64(),
        a.sort.key(),
        if a.reverse { ", reversed" } else { "" }
    )?;
    let mut head = format!("{:>7}  ", "PID");
    if ns {
        head.push_str(&format!("{:>7}  ", "NSPID"));
    }
    head.push_str(&format!("{:<10}  {:<16}", "USER", "NAME"));
    let metrics: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| a.pss || *m != Metric::Pss)
        .collect();
    for &m in &metrics {
        head.push_str(&format!(
            "  {:>width$}  {:>width$}",
            m.name(),
            format!("+{}", m.name())
        ));
    }
    if containers {
        head.push_str(&format!("  {:<24}", "CONTAINER"));
    }
    head.push_str("  COMMAND");
    writeln!(w, "{head}")?;
    for r in rows {
        let p: &Proc = &r.proc;
        let mut line = format!("{:>7}  ", p.pid);
        if ns {
            let n = p.ns_pid.map_or_else(|| "-".into(), |n| n.to_string());
            line.push_str(&format!("{n:>7}  "));
        }
        line.push_str(&format!(
            "{:<10}  {:<16}",
            Escaped(&p.user).to_string(),
            Escaped(&p.name).to_string()
        ));
        for &m in &metrics {
            let now = match m {
                Metric::Private => Some(p.figures.private),
                Metric::Ws => Some(p.figures.ws),
                Metric::Pss => p.figures.pss,
                Metric::Swap => Some(p.figures.swap),
            };
            let now = now.map_or_else(|| "n/a".into(), |v| vmmap_core::units::size(v, a.bytes));
            let grown = r
                .growth
                .of(m)
                .map_or_else(|| "n/a".into(), |v| signed(v, a.bytes));
            line.push_str(&format!("  {now:>width$}  {grown:>width$}"));
        }
        if containers {
            let c = p
                .container
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.label());
            line.push_str(&format!("  {:<24}", Escaped(&c).to_string()));
        }
        line.push_str(&format!("  {}", Escaped(&p.cmdline)));
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signed_sizes() {
        assert_eq!(super::signed(0, false), "0");
        assert_eq!(super::signed(4096, false), "+4K");
        assert_eq!(super::signed(-4096, true), "-4096");
    }
}
