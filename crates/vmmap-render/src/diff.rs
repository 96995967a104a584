//! The three renderings of a [`Diff`] (text, JSON, CSV); the comparison
//! itself is `vmmap_core::diff`. `docs/diff.md` describes the outputs.

use std::io::{self, Write};

use serde::Serialize;

use vmmap_core::diff::{ChangeKind, Diff, RegionChange, RegionSummary, TypeDelta};
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;
use vmmap_core::text::{escape, Escaped};
use vmmap_core::units;

/// The JSON schema name.
pub(crate) const JSON_SCHEMA: &str = "vmmap.diff";
/// The JSON schema version; bumped on any incompatible change.
pub(crate) const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonDiff<'a> {
    schema: &'static str,
    version: u32,
    #[serde(flatten)]
    diff: &'a Diff,
}

/// Writes the diff as one JSON document, schema `vmmap.diff`:
/// `{"schema", "version", "before": {pid, taken_at_unix_ns}, "after",
/// "by_type": […], "regions": […]}`, on one line.
pub fn write_json(diff: &Diff, w: impl Write) -> io::Result<()> {
    let doc = JsonDiff {
        schema: JSON_SCHEMA,
        version: JSON_VERSION,
        diff,
    };
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    vmmap_core::export::to_writer(&mut w, &doc)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Writes the diff as CSV (version 1): a `type` row per memory type and
/// Total with the deltas of Size, Committed, Private, Total WS and Swap,
/// then a `region` row per region change. Empty cells: not applicable or
/// unavailable.
pub fn write_csv(diff: &Diff, w: impl Write) -> io::Result<()> {
    let mut w = io::BufWriter::new(w);
    writeln!(
        w,
        "row,type,kinds,before_start,before_end,after_start,after_end,perms,size_delta,committed_delta,private_delta,total_ws_delta,swap_delta,details"
    )?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for t in &diff.by_type {
        let d = &t.deltas;
        writeln!(
            w,
            "type,{},,,,,,,{},{},{},{},{},",
            t.memory_type.map_or("total", |t| t.id()),
            opt(d.get(Column::Size)),
            opt(d.get(Column::Committed)),
            opt(d.get(Column::Private)),
            opt(d.get(Column::TotalWs)),
            opt(d.get(Column::Swap)),
        )?;
    }
    let hex = |r: Option<&RegionSummary>, end: bool| {
        r.map(|r| format!("{:#x}", if end { r.end } else { r.start }))
            .unwrap_or_default()
    };
    for c in &diff.regions {
        let kinds: Vec<String> = c
            .kinds
            .iter()
            .map(|k| {
                serde_json::to_string(k)
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string()
            })
            .collect();
        let cur = c.current();
        let details = if cur.details.is_empty() {
            &cur.path
        } else {
            &cur.details
        };
        // RFC 4180, as export.rs quotes: a CR needs quoting as much as a LF.
        let details = if details.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", details.replace('"', "\"\""))
        } else {
            details.to_string()
        };
        writeln!(
            w,
            "region,{},{},{},{},{},{},{},{},{},{},{},{},{details}",
            cur.memory_type.id(),
            kinds.join("|"),
            hex(c.before.as_ref(), false),
            hex(c.before.as_ref(), true),
            hex(c.after.as_ref(), false),
            hex(c.after.as_ref(), true),
            cur.perms.as_str(),
            c.size_delta,
            c.committed_delta,
            opt(c.private_delta),
            opt(c.ws_delta),
            opt(c.swap_delta),
        )?;
    }
    w.flush()
}

/// `+1.2M`, `-64K`, `+3` (a count), blank for 0, `n/a` when unavailable.
fn signed(d: Option<i64>, count: bool, exact: bool) -> String {
    let Some(d) = d else {
        return "n/a".into();
    };
    if d == 0 {
        return String::new();
    }
    let sign = if d > 0 { '+' } else { '-' };
    let v = d.unsigned_abs();
    if count {
        format!("{sign}{v}")
    } else {
        format!("{sign}{}", units::size(v, exact))
    }
}

fn width(header: &str, exact: bool) -> usize {
    header.len().max(if exact { 14 } else { 7 })
}

/// The figures of a region line.
const REGION_COLUMNS: [Column; 5] = [
    Column::Size,
    Column::Committed,
    Column::TotalWs,
    Column::Private,
    Column::Swap,
];

/// Writes the diff as text: a Summary-style table of the changes by type
/// (types that did not change left out, Total always shown), then one line
/// per region change in address order, marked `+` new, `-` removed, `>`
/// grown, `<` shrunk, `~` otherwise changed. Sizes are signed and human
/// (`+1.2M`), or exact bytes with `exact`; an unchanged figure is blank.
pub fn write_text(diff: &Diff, w: impl Write, exact: bool) -> io::Result<()> {
    let mut w = io::BufWriter::new(w);
    let (b, a) = (diff.before, diff.after);
    let ns = i128::from(a.taken_at_unix_ns) - i128::from(b.taken_at_unix_ns);
    let ms = ns.unsigned_abs() / 1_000_000;
    let sign = if ns < 0 { "-" } else { "" };
    let span = format!("{sign}{}.{:03}s", ms / 1000, ms % 1000);
    if a.pid == b.pid {
        writeln!(w, "Changes in process {} over {span}", a.pid)?;
    } else {
        writeln!(
            w,
            "Changes from process {} to process {} over {span}",
            b.pid, a.pid
        )?;
    }
    writeln!(w)?;

    let mut line = format!("{:<13}", "Type");
    for c in Column::VMMAP {
        line.push_str(&format!(
            "  {:>width$}",
            c.header(),
            width = width(c.header(), exact)
        ));
    }
    writeln!(w, "{}", line.trim_end())?;
    let changed = |r: &&TypeDelta| {
        r.memory_type.is_none()
            || (r.memory_type != Some(MemoryType::Free)
                && Column::VMMAP
                    .iter()
                    .any(|&c| r.deltas.get(c).unwrap_or(0) != 0))
    };
    for r in diff.by_type.iter().filter(changed) {
        line.clear();
        let name = r.memory_type.map_or("Total", MemoryType::name);
        line.push_str(&format!("{name:<13}"));
        for c in Column::VMMAP {
            let cell = signed(r.deltas.get(c), c.is_count(), exact);
            line.push_str(&format!(
                "  {cell:>width$}",
                width = width(c.header(), exact)
            ));
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    writeln!(w)?;

    if let Some(written) = &diff.written {
        let total: u64 = written.iter().map(|x| x.written_bytes).sum();
        writeln!(
            w,
            "Written since the first snapshot (soft-dirty pages): {} in {} region(s)",
            if total == 0 {
                "0 bytes".to_string()
            } else {
                units::size(total, exact)
            },
            written.len()
        )?;
        for x in written {
            let r = &x.region;
            let d = if r.details.is_empty() {
                &r.path
            } else {
                &r.details
            };
            writeln!(
                w,
                "  {:x}-{:x}  {:<12} {:>9}  {}",
                r.start,
                r.end,
                r.memory_type.name(),
                units::size(x.written_bytes, exact),
                Escaped(d)
            )?;
        }
        writeln!(w)?;
    }
    if diff.regions.is_empty() {
        writeln!(w, "No region changed.")?;
        return w.flush();
    }
    let aw = diff
        .regions
        .iter()
        .map(|c| format!("{:x}", c.current().end).len())
        .max()
        .unwrap_or(12)
        .max(12);
    line.clear();
    line.push_str(&format!(
        "  {:<rw$}  {:<12}",
        "Address",
        "Type",
        rw = 2 * aw + 1
    ));
    for c in REGION_COLUMNS {
        line.push_str(&format!(
            "  {:>width$}",
            c.header(),
            width = width(c.header(), exact)
        ));
    }
    line.push_str("  Prot  Details");
    writeln!(w, "{line}")?;
    for c in &diff.regions {
        let r = c.current();
        line.clear();
        line.push(c.marker());
        line.push(' ');
        let range = format!("{:x}-{:x}", r.start, r.end);
        line.push_str(&format!("{range:<rw$}", rw = 2 * aw + 1));
        line.push_str(&format!("  {:<12}", r.memory_type.name()));
        let cells = [
            Some(c.size_delta),
            Some(c.committed_delta),
            c.ws_delta,
            c.private_delta,
            c.swap_delta,
        ];
        for (col, d) in REGION_COLUMNS.into_iter().zip(cells) {
            let cell = signed(d, false, exact);
            line.push_str(&format!(
                "  {cell:>width$}",
                width = width(col.header(), exact)
            ));
        }
        line.push_str("  ");
        line.push_str(r.perms.as_str());
        line.push_str("  ");
        line.push_str(&escape(&r.details));
        let notes = notes(c);
        if !notes.is_empty() {
            if !r.details.is_empty() {
                line.push(' ');
            }
            line.push_str(&format!("({})", escape(&notes.join("; "))));
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    w.flush()
}

/// What a region line says about the first snapshot's side.
fn notes(c: &RegionChange) -> Vec<String> {
    let (Some(b), Some(a)) = (&c.before, &c.after) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if c.has(ChangeKind::Moved) {
        out.push(format!("moved from {:x}-{:x}", b.start, b.end));
    } else if c.has(ChangeKind::Grown) || c.has(ChangeKind::Shrunk) {
        out.push(format!("was {:x}-{:x}", b.start, b.end));
    }
    if c.has(ChangeKind::ProtectionChanged) {
        out.push(format!("was {}", b.perms.as_str()));
    }
    if c.has(ChangeKind::TypeChanged) {
        out.push(format!("was {}", b.memory_type.name()));
    }
    if c.has(ChangeKind::Renamed) {
        if a.path != b.path {
            let name = if b.path.is_empty() {
                "unnamed"
            } else {
                &b.path
            };
            out.push(format!("was {name}"));
        }
        if let (Some(x), Some(y)) = (b.tid, a.tid) {
            if x != y {
                out.push(format!("was thread {x}"));
            }
        }
        if let (Some(x), Some(y)) = (b.heap_id, a.heap_id) {
            if x != y {
                out.push(format!("was Heap ID {x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmmap_core::diff::diff;
    use vmmap_core::proc::status::Status;
    // The two snapshots of `vmmap_core::diff`'s tests, one change of each
    // kind, so the renderings are checked on the same comparison.
    use vmmap_core::testing::pair;

    #[test]
    fn json_follows_export_conventions() {
        let (b, mut a) = pair();
        a.status = Status::default(); // no VmPTE: Page Table unavailable
        let mut out = Vec::new();
        write_json(&diff(&b, &a), &mut out).unwrap();
        assert!(out.starts_with(br#"{"schema":"vmmap.diff","version":1,"before":{"pid":1,"taken_at_unix_ns":1000000000},"after":{"#));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let by_type = v["by_type"].as_array().unwrap();
        assert_eq!(by_type.len(), 10);
        assert_eq!(by_type[3]["type"], "heap");
        assert_eq!(by_type[3]["size"], 0x20000);
        assert_eq!(by_type[7]["type"], "page_table");
        assert!(by_type[7]["size"].is_null());
        assert_eq!(by_type[9]["type"], "total");
        let moved = v["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kinds"] == serde_json::json!(["moved"]))
            .unwrap();
        assert_eq!(moved["before"]["start"], "0x20000");
        assert_eq!(moved["after"]["start"], "0x680000");
        assert_eq!(moved["after"]["type"], "mapped_file");
        assert_eq!(moved["after"]["perms"], "r--p");
        assert_eq!(moved["matched_by"], "file");
        let new = &v["regions"][7];
        assert_eq!(new["kinds"], serde_json::json!(["new"]));
        assert!(new["before"].is_null());
    }

    #[test]
    fn text_report() {
        let (b, a) = pair();
        let mut out = Vec::new();
        write_text(&diff(&b, &a), &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Changes in process 1 over 2.500s");
        assert!(lines[2].starts_with("Type"));
        let heap = lines.iter().find(|l| l.starts_with("Heap ")).unwrap();
        assert!(heap.contains("+128K"), "{heap}");
        assert!(!lines.iter().any(|l| l.starts_with("Image")), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("Total")));
        let marks: String = lines
            .iter()
            .skip_while(|l| !l.starts_with("  Address"))
            .skip(1)
            .map(|l| l.chars().next().unwrap())
            .collect();
        assert_eq!(marks, ">><~-~~+~", "{text}");
        let shrunk = lines
            .iter()
            .find(|l| l.starts_with("< 300000-310000"))
            .unwrap();
        assert!(shrunk.contains("-64K"), "{shrunk}");
        assert!(shrunk.ends_with("(was 300000-320000)"), "{shrunk}");
        let mprot = lines.iter().find(|l| l.starts_with("~ 400000")).unwrap();
        assert!(
            mprot.contains("---p") && mprot.ends_with("(was rw-p)"),
            "{mprot}"
        );
        let moved = lines.iter().find(|l| l.starts_with("~ 680000")).unwrap();
        assert!(moved.ends_with("(moved from 20000-22000)"), "{moved}");

        let mut out = Vec::new();
        write_text(&diff(&b, &b), &mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("No region changed.\n"), "{text}");
    }
}
