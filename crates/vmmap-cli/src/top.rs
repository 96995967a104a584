//! `vmmap top`: the live view of which processes' memory grows, or with
//! `--once`/`--json` one table from two samples for scripts. The samples
//! and the growth are core's (`collect::top`, `top`); this picks the
//! processes and writes them.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use serde::Serialize;
use vmmap_core::collect::top::{Sampler, Select};
use vmmap_core::text::Escaped;
use vmmap_core::top::{self, Amount, Field, Metric, Proc, Row, Tracker};

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

/// A field's cell in the text table: sizes as `vmmap ps` writes them
/// (`--bytes` exact), `-` where a process has no namespace PID or
/// container, `n/a` for a figure that was not read.
fn cell(f: Field, r: &Row, exact: bool) -> String {
    let p: &Proc = &r.proc;
    match f {
        Field::Pid => p.pid.to_string(),
        Field::NsPid => p.ns_pid.map_or_else(|| "-".into(), |n| n.to_string()),
        Field::User => Escaped(&p.user).to_string(),
        Field::Name => Escaped(&p.name).to_string(),
        Field::Figure(c) => match c.amount(r) {
            Some(Amount::Size(v)) => vmmap_core::units::size(v, exact),
            Some(Amount::Change(v)) => signed(v, exact),
            None => "n/a".into(),
        },
        Field::Container => {
            let c = p
                .container
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.label());
            Escaped(&c).to_string()
        }
        Field::Command => Escaped(&p.cmdline).to_string(),
    }
}

/// The table. With a `width` (a terminal's, unless `--wide`), the text
/// columns are as wide as their longest cell, the columns that fit are
/// chosen by importance as the live view's (identity, then Private and its
/// growth, then WS...), and COMMAND takes what is left, cut at the edge
/// with `…`, as `vmmap ps` does. Without one (a file, a pipe), every
/// column is there and nothing is cut.
fn write_table(rows: &[Row], a: &TopArgs, w: &mut impl Write) -> io::Result<()> {
    let width = crate::width::fit_width(a.wide);
    let fw = if a.bytes { 14 } else { 8 };
    let ns = rows.iter().any(|r| r.proc.ns_pid.is_some());
    let containers = rows.iter().any(|r| r.proc.container.is_some());
    let title = format!(
        "{} processes; + is the growth over {:.1}s; sorted by {}{}",
        rows.len(),
        a.delay.as_secs_f64(),
        a.sort.key(),
        if a.reverse { ", reversed" } else { "" }
    );
    // Table order; the growth since the start is the growth over the
    // interval here (two samples), so it is not shown.
    let importance = Field::by_importance(ns, containers, a.pss, false);
    let mut all: Vec<Field> = importance
        .iter()
        .copied()
        .filter(|&f| f != Field::Command)
        .collect();
    all.sort_by_key(|f| f.position());
    let text_w = |c: Field, full: usize| match width {
        None => full,
        Some(_) => rows
            .iter()
            .map(|r| cell(c, r, a.bytes).chars().count())
            .max()
            .unwrap_or(0)
            .clamp(c.header().len(), full),
    };
    let col_w = |c: Field| match c {
        Field::Pid | Field::NsPid => 7,
        Field::User => text_w(Field::User, 10),
        Field::Name => text_w(Field::Name, 16),
        Field::Figure(_) => fw,
        Field::Container => 24,
        // What COMMAND needs to be worth showing on a terminal; it then
        // takes the rest of the line.
        Field::Command => 12,
    };
    let (shown, command) = match width {
        None => (all, true),
        Some(limit) => {
            let mut used = 0;
            let mut kept = Vec::new();
            for c in importance {
                let need = col_w(c) + if kept.is_empty() { 0 } else { 2 };
                if used + need <= limit {
                    used += need;
                    kept.push(c);
                }
            }
            (
                all.into_iter().filter(|c| kept.contains(c)).collect(),
                kept.contains(&Field::Command),
            )
        }
    };
    let line = |cells: Vec<String>| -> String {
        let mut out = String::new();
        for (i, (&c, text)) in shown.iter().zip(&cells).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let cw = col_w(c);
            if c.right() {
                out.push_str(&format!("{text:>cw$}"));
            } else {
                out.push_str(&format!("{text:<cw$}"));
            }
        }
        if command {
            out.push_str("  ");
            out.push_str(&cells[shown.len()]);
        }
        let out = out.trim_end().to_string();
        match width {
            Some(limit) => vmmap_render::text::cut_end(&out, limit).into_owned(),
            None => out,
        }
    };
    let cut = |s: String| match width {
        Some(limit) => vmmap_render::text::cut_end(&s, limit).into_owned(),
        None => s,
    };
    writeln!(w, "{}", cut(title))?;
    let head: Vec<String> = shown
        .iter()
        .chain(std::iter::once(&Field::Command))
        .map(|c| c.header())
        .collect();
    writeln!(w, "{}", line(head))?;
    for r in rows {
        let cells: Vec<String> = shown
            .iter()
            .chain(std::iter::once(&Field::Command))
            .map(|&c| cell(c, r, a.bytes))
            .collect();
        writeln!(w, "{}", line(cells))?;
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
