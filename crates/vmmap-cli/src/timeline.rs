//! `vmmap timeline`: the totals of every record of a recording.

use std::io::{self, Write};

use vmmap_core::timeline::{self, Point, TYPES};
use vmmap_core::units::size;

use crate::cli::TimelineArgs;
use crate::{exit, Failure};

pub fn timeline(a: &TimelineArgs) -> Result<(), Failure> {
    let loaded = crate::load_with_trace(&a.file)?;
    if loaded.snapshots.is_empty() && loaded.samples.is_empty() && loaded.trace.is_empty() {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!(
                "{} holds no complete snapshot, sample or trace to draw a timeline from",
                a.file.display()
            ),
        });
    }
    // A traced run's agent is out of its figures, as in its snapshots.
    let agent = if loaded.traced {
        crate::owners::agent_of_all(&a.file, &loaded.snapshots)
    } else {
        Vec::new()
    };
    let mut points = timeline::points(&loaded.snapshots, &loaded.samples, &agent);
    vmmap_trace::timeline::add_live_heap(&mut points, &loaded.trace);
    // A traced run's times count from its start, as `vmmap trace --at`
    // does; a recording's from its first point.
    let t0 = vmmap_trace::timeline::run_start_unix_ns(&loaded.trace)
        .or_else(|| points.first().map(|p| p.taken_at_unix_ns))
        .unwrap_or(0);
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        write_json(&points, &mut w)
    } else if a.csv {
        write_csv(&points, t0, &mut w)
    } else {
        write_text(&points, t0, &mut w)
    };
    r.and_then(|()| w.flush())
        .map_err(|e| crate::output_error(e, "standard output"))
}

/// Seconds from `t0`; negative for the snapshot a traced run takes at
/// exec, before the agent's clock (the run's start) begins.
fn secs(p: &Point, t0: u64) -> f64 {
    (i128::from(p.taken_at_unix_ns) - i128::from(t0)) as f64 / 1e9
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_csv(points: &[Point], t0: u64, w: &mut impl Write) -> io::Result<()> {
    write!(
        w,
        "time_s,taken_at_unix_ns,snapshot,rss,pss,swap,anonymous,page_table,live_heap"
    )?;
    for what in ["committed", "ws", "private"] {
        for t in TYPES {
            write!(w, ",{what}_{}", t.id())?;
        }
    }
    writeln!(w)?;
    for p in points {
        write!(
            w,
            "{:.3},{},{},{},{},{},{},{},{}",
            secs(p, t0),
            p.taken_at_unix_ns,
            p.snapshot.map(|s| s.to_string()).unwrap_or_default(),
            opt(p.rss),
            opt(p.pss),
            opt(p.swap),
            opt(p.anonymous),
            opt(p.page_table),
            opt(p.live_heap)
        )?;
        for pick in [0, 1, 2] {
            for (i, _) in TYPES.iter().enumerate() {
                let v = p
                    .by_type
                    .as_ref()
                    .map(|b| [b[i].committed, b[i].working_set, b[i].private][pick]);
                write!(w, ",{}", opt(v))?;
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

fn write_json(points: &[Point], w: &mut impl Write) -> io::Result<()> {
    let doc = serde_json::json!({ "schema": "vmmap.timeline", "version": 1, "points": points });
    vmmap_core::export::to_writer(&mut *w, &doc)?;
    writeln!(w)
}

fn write_text(points: &[Point], t0: u64, w: &mut impl Write) -> io::Result<()> {
    let cell = |v: Option<u64>| v.map(|v| size(v, false)).unwrap_or_else(|| "-".into());
    write!(
        w,
        "{:>9}  {:>5}  {:>7} {:>7} {:>7}",
        "Time (s)", "Snap", "Rss", "PSS", "Swap"
    )?;
    for t in TYPES {
        let name = t.name();
        write!(w, " {:>8}", &name[..name.len().min(8)])?;
    }
    let traced = points.iter().any(|p| p.live_heap.is_some());
    if traced {
        write!(w, " {:>9}", "Live heap")?;
    }
    writeln!(w, "   (per type: working set; full snapshots only)")?;
    for p in points {
        write!(
            w,
            "{:>9.1}  {:>5}  {:>7} {:>7} {:>7}",
            secs(p, t0),
            p.snapshot
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            cell(p.rss),
            cell(p.pss),
            cell(p.swap)
        )?;
        for i in 0..TYPES.len() {
            write!(
                w,
                " {:>8}",
                cell(p.by_type.as_ref().map(|b| b[i].working_set))
            )?;
        }
        if traced {
            write!(w, " {:>9}", cell(p.live_heap))?;
        }
        writeln!(w)?;
    }
    Ok(())
}
