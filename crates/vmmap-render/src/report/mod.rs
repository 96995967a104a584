/*!
The single-file HTML report: everything vmmap knows about one process (or
a recording of it, or a traced run) in one `.html` file that opens in any
browser without a network.

The file is a static page whose data sits in a
`<script type="application/json">` element and whose hand-written script
(`report.js`, no framework) draws it: the three bar graphs, the Summary
table filtering the Details table (sortable, groups expandable, virtual
scrolling so that 60,000 regions stay fluid), the timeline and the diff of
any two snapshots when there are several, the fragmentation map, and for a
traced run a flame graph and a call tree.

# The embedded data

The data is compact rather than readable, because a 60,000-region snapshot
must weigh little: [`data`] builds it. Region tables are *columnar* (one
array per column, short keys), addresses and sizes are counted in
`addr_unit` (the page, normally) with each start written as the distance
from the previous row's end (0 for touching regions), figures are counted
in `fig_unit` (1 KiB, the unit of smaps), and details strings are indices
into one string table; in a recording, the regions a snapshot shares
unchanged with the one before are not written again but copied by
reference. `docs/report.md` describes every key.

Regions are matched across snapshots once, here, by
[`vmmap_core::diff::match_regions`] between neighbouring snapshots: each region
carries a *track* number shared with its match in the previous snapshot.
The page compares any two snapshots by track, so two neighbouring
snapshots compare exactly as `vmmap diff` compares them; snapshots further
apart compare the regions that can be followed through every snapshot in
between.
*/

mod data;

use std::io::{self, Write};

pub use data::data;

use vmmap_core::format::Sample;
use vmmap_core::model::Snapshot;

/// One frame of a traced run's call tree: the bytes allocated by this
/// function and its callees, as the flame graph and the call tree show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallTreeNode {
    /// Function name (or address when it has no symbol).
    pub name: String,
    /// Source file and line, or object file and offset, when known.
    pub location: Option<String>,
    /// Bytes allocated through this frame and its callees.
    pub bytes: u64,
    /// Number of allocations through this frame and its callees.
    pub count: u64,
    /// Bytes still allocated at the end of the run.
    pub live_bytes: u64,
    /// Callees.
    pub children: Vec<CallTreeNode>,
}

/// What a report shows.
#[derive(Clone, Copy, Debug)]
pub struct ReportInput<'a> {
    /// Full snapshots in time order (at least one).
    pub snapshots: &'a [Snapshot],
    /// Totals-only samples of a recording (`vmmap watch`), for the
    /// timeline.
    pub samples: &'a [Sample],
    /// The call tree of a traced run.
    pub call_tree: Option<&'a CallTreeNode>,
    /// For a traced run, per snapshot, which top-level regions are the
    /// tracing agent's own: their figures are shown apart from the
    /// program's (`vmmap_core::Summary::with_agent`). Empty: none.
    pub agent: &'a [Vec<bool>],
    /// Where the data came from (a file name, "live"), for the title.
    pub source: &'a str,
}

/// What [`write_html`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportStats {
    /// Bytes of the whole file.
    pub bytes: u64,
    /// Bytes of the embedded data alone.
    pub data_bytes: u64,
    /// Top-level regions and sub-blocks shown, over every snapshot
    /// (copied ones included).
    pub rows: u64,
}

impl ReportStats {
    /// Bytes of the file per region row (0 without rows).
    pub fn bytes_per_row(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.bytes as f64 / self.rows as f64
        }
    }
}

const TEMPLATE: &str = include_str!("template.html");
const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Writes the report. The page needs nothing but itself: no script, style,
/// font or image is loaded from anywhere.
pub fn write_html(input: &ReportInput<'_>, w: &mut dyn Write) -> io::Result<ReportStats> {
    let d = data(input);
    let json = serde_json::to_string(&d).map_err(io::Error::other)?;
    let json = script_safe(&json);
    let title = title(input);
    let title = vmmap_core::xml::escape(&title);
    let mut out = CountingWriter { w, n: 0 };
    // The template has one marker per insertion, in this order.
    let mut rest = TEMPLATE;
    let parts: [&str; 4] = [&title, CSS, &json, JS];
    for (marker, part) in ["{{TITLE}}", "{{CSS}}", "{{DATA}}", "{{JS}}"]
        .iter()
        .zip(parts)
    {
        let (before, after) = rest
            .split_once(marker)
            .ok_or_else(|| io::Error::other(format!("report template lacks {marker}")))?;
        out.write_all(before.as_bytes())?;
        out.write_all(part.as_bytes())?;
        rest = after;
    }
    out.write_all(rest.as_bytes())?;
    out.flush()?;
    Ok(ReportStats {
        bytes: out.n,
        data_bytes: json.len() as u64,
        rows: d.rows(),
    })
}

/// The page title: process, pid and source.
fn title(input: &ReportInput<'_>) -> String {
    match input.snapshots.last() {
        Some(s) => format!(
            "vmmap: {} ({}) - {}",
            if s.process.name.is_empty() {
                "process"
            } else {
                &s.process.name
            },
            s.process.pid,
            input.source
        ),
        None => format!("vmmap: {}", input.source),
    }
}

/// JSON made safe inside `<script>`: the HTML parser ends a script element
/// at `</script` whatever JSON thinks, and `<!--` changes its state, so
/// every `<` is written as the JSON escape `\u003c` (the same string to
/// JSON.parse). U+2028 and U+2029 are escaped too, for old parsers.
fn script_safe(json: &str) -> String {
    let mut o = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => o.push_str("\\u003c"),
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c => o.push(c),
        }
    }
    o
}

struct CountingWriter<'a> {
    w: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests;
