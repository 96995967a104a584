//! JSON and CSV exports of a snapshot, with a versioned schema documented
//! in `docs/output-formats.md`. Addresses are hex strings (JSON numbers
//! lose precision above 2^53); sizes are numbers of bytes; a figure the
//! kernel cannot give is `null` in JSON and empty in CSV.

use std::io::{self, Write};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::figures::{Column, Figures};
use crate::hex::Hex;
use crate::model::{KernelInfo, MemoryType, ProcessInfo, Region, Snapshot};
use crate::proc::smaps::Field;
use crate::summary::{free_blocks, FreeBlock, Summary};

/// The JSON schema name.
pub(crate) const JSON_SCHEMA: &str = "vmmap.snapshot";
/// The JSON schema version; bumped on any incompatible change.
pub(crate) const JSON_VERSION: u32 = 1;

/// What to include in an export.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExportOptions {
    /// Include the free gaps.
    pub free: bool,
    /// Leave out the region list.
    pub summary_only: bool,
}

#[derive(Serialize)]
struct JsonSnapshot<'a> {
    schema: &'static str,
    version: u32,
    taken_at_unix_ns: u64,
    process: &'a ProcessInfo,
    kernel: &'a KernelInfo,
    summary: Vec<JsonSummaryRow>,
    /// The tracing agent's own regions in a traced run, added up apart:
    /// in no `summary` row and not in its `total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<JsonSummaryRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regions: Option<Vec<JsonRegion<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free: Option<Vec<JsonFree>>,
    rollup: Option<FieldsView>,
    page_table_bytes: Option<u64>,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sharing: Option<&'a crate::sharing::SharingMethod>,
}

#[derive(Serialize)]
struct JsonSummaryRow {
    #[serde(rename = "type")]
    memory_type: &'static str,
    #[serde(flatten)]
    figures: FiguresView,
}

#[derive(Serialize)]
struct JsonFree {
    start: Hex,
    end: Hex,
    size: u64,
}

#[derive(Serialize)]
struct JsonRegion<'a> {
    start: Hex,
    end: Hex,
    #[serde(rename = "type")]
    memory_type: &'static str,
    perms: &'a str,
    max_protection: Option<String>,
    offset: Hex,
    device: String,
    inode: u64,
    path: &'a str,
    details: &'a str,
    evidence: &'a str,
    confidence: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    heap_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    figures: FiguresView,
    smaps: FieldsView,
    vm_flags: &'a str,
    thp_eligible: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protection_key: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unknown_fields: Vec<(&'a str, &'a str)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sub_blocks: Vec<JsonRegion<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<&'a crate::sharing::PageSharing>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    sections: &'a [crate::sharing::SectionFigures],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parts: Vec<JsonPart<'a>>,
    /// Only in snapshots of a traced run.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<OwnerView<'a>>,
}

/// A named range inside a VMA, addresses as `"0x…"` like every address.
#[derive(Serialize)]
struct JsonPart<'a> {
    start: Hex,
    end: Hex,
    details: &'a str,
    /// `stack` for a part that is a thread's own stack.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    memory_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
}

/// Who made a region (and for a heap region, who holds most of it), as
/// the exports write it: the Owner column of a traced run's snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OwnerView<'a> {
    /// What kind of owner (`call`, `image`, `live-heap`...).
    pub kind: &'static str,
    /// The recorded operation behind it (`mmap`, `brk`, `malloc`...).
    pub op: Option<&'static str>,
    /// The top symbolised frame's function.
    pub function: Option<&'a str>,
    /// Its source file.
    pub file: Option<&'a str>,
    /// Its line.
    pub line: Option<u32>,
    /// For a heap region: the bytes live inside it from that stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_bytes: Option<u64>,
    /// For a heap region: who created it, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_by: Option<&'a str>,
    /// The cell as shown.
    pub text: &'a str,
}

/// The owners of one snapshot's regions, by index. `vmmap-trace` computes
/// them from a traced run and implements this; the core reads no traces.
pub trait Owners {
    /// The owner of region `i`.
    fn region(&self, i: usize) -> Option<OwnerView<'_>>;
    /// The owner of sub-block `j` of region `i`.
    fn sub_block(&self, i: usize, j: usize) -> Option<OwnerView<'_>>;
}

/// Figures as `{column_id: value | null}`.
struct FiguresView {
    f: Figures,
    summary: bool,
}

impl Serialize for FiguresView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for c in Column::ALL {
            if !self.summary && c.summary_only() {
                continue;
            }
            m.serialize_entry(c.id(), &self.f.get(c))?;
        }
        m.end()
    }
}

/// Raw smaps fields as `{KernelName: bytes}`, present fields only.
struct FieldsView(crate::proc::smaps::SmapsFields);

impl Serialize for FieldsView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for f in Field::ALL {
            if let Some(v) = self.0.get(f) {
                m.serialize_entry(f.kernel_name(), &v)?;
            }
        }
        m.end()
    }
}

/// A region and its sub-blocks, with their owners when the snapshot is of
/// a traced run.
fn json_region<'a>(
    r: &'a Region,
    owner: Option<OwnerView<'a>>,
    sub_owner: &dyn Fn(usize) -> Option<OwnerView<'a>>,
) -> JsonRegion<'a> {
    let is_group = !r.sub_blocks.is_empty();
    JsonRegion {
        start: Hex(r.start),
        end: Hex(r.end),
        memory_type: r.memory_type.id(),
        perms: r.perms.as_str(),
        max_protection: r.max_protection_str(),
        offset: Hex(r.offset),
        device: format!("{:02x}:{:02x}", r.dev_major, r.dev_minor),
        inode: r.inode,
        path: &r.path,
        details: &r.details,
        evidence: &r.evidence,
        confidence: r.confidence.id(),
        heap_id: r.heap_id,
        tid: r.tid,
        figures: FiguresView {
            f: if is_group {
                Figures::of_region(r)
            } else {
                Figures::of_vma(r)
            },
            summary: false,
        },
        smaps: FieldsView(r.fields),
        vm_flags: &r.vm_flags,
        thp_eligible: r.thp_eligible,
        protection_key: r.protection_key,
        unknown_fields: r
            .unknown_fields
            .iter()
            .map(|u| (&*u.name, &*u.value))
            .collect(),
        sub_blocks: r
            .sub_blocks
            .iter()
            .enumerate()
            .map(|(j, s)| json_region(s, sub_owner(j), &|_| None))
            .collect(),
        pages: r.pages.as_deref(),
        sections: &r.sections,
        parts: r
            .parts
            .iter()
            .map(|p| JsonPart {
                start: Hex(p.start),
                end: Hex(p.end),
                details: &p.details,
                memory_type: p.tid.map(|_| MemoryType::Stack.id()),
                tid: p.tid,
            })
            .collect(),
        owner,
    }
}

/// Writes the snapshot as one JSON document, each region with an `owner`
/// object when `owners` (of this snapshot of a traced run) are given.
pub fn write_json_owned<W: Write, O: Owners + ?Sized>(
    snap: &Snapshot,
    summary: &Summary,
    opts: ExportOptions,
    owners: Option<&O>,
    w: W,
) -> io::Result<()> {
    let mut rows: Vec<JsonSummaryRow> = summary
        .rows
        .iter()
        .map(|r| JsonSummaryRow {
            memory_type: r.memory_type.map_or("total", |t| t.id()),
            figures: FiguresView {
                f: r.figures,
                summary: true,
            },
        })
        .collect();
    rows.push(JsonSummaryRow {
        memory_type: "total",
        figures: FiguresView {
            f: summary.total.figures,
            summary: true,
        },
    });
    let doc = JsonSnapshot {
        schema: JSON_SCHEMA,
        version: JSON_VERSION,
        taken_at_unix_ns: snap.taken_at_unix_ns,
        process: &snap.process,
        kernel: &snap.kernel,
        summary: rows,
        agent: summary.agent.as_ref().map(|r| JsonSummaryRow {
            memory_type: AGENT_ROW,
            figures: FiguresView {
                f: r.figures,
                summary: true,
            },
        }),
        regions: (!opts.summary_only).then(|| {
            snap.regions
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json_region(r, owners.and_then(|o| o.region(i)), &|j| {
                        owners.and_then(|o| o.sub_block(i, j))
                    })
                })
                .collect()
        }),
        free: opts.free.then(|| {
            free_blocks(snap)
                .iter()
                .map(|f: &FreeBlock| JsonFree {
                    start: Hex(f.start),
                    end: Hex(f.end),
                    size: f.size(),
                })
                .collect()
        }),
        rollup: snap.rollup.map(FieldsView),
        page_table_bytes: snap.page_table_bytes(),
        warnings: &snap.warnings,
        sharing: snap.sharing.as_ref(),
    };
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    to_writer(&mut w, &doc)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// The name of the row of the tracing agent's own regions
/// ([`Summary::agent`]) in the JSON and CSV summaries.
pub const AGENT_ROW: &str = "vmmap-agent";

/// The CSV region columns before the figures.
const CSV_LEAD: [&str; 12] = [
    "depth",
    "start",
    "end",
    "type",
    "perms",
    "max_protection",
    "offset",
    "device",
    "inode",
    "heap_id",
    "tid",
    "thp_eligible",
];

/// Writes one CSV row per region and sub-block (`depth` 0 and 1), or with
/// `summary_only`, one row per memory type plus `total`; with a last
/// `owner` column (the Owner cell's text) when `owners` (of this snapshot
/// of a traced run) are given.
pub fn write_csv_owned<W: Write, O: Owners + ?Sized>(
    snap: &Snapshot,
    summary: &Summary,
    opts: ExportOptions,
    owners: Option<&O>,
    w: W,
) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    if opts.summary_only {
        write!(w, "type")?;
        for c in Column::ALL {
            write!(w, ",{}", c.id())?;
        }
        writeln!(w)?;
        let rows = summary
            .rows
            .iter()
            .map(|r| (r, r.memory_type.map_or("total", |t| t.id())))
            .chain(std::iter::once((&summary.total, "total")))
            .chain(summary.agent.iter().map(|r| (r, AGENT_ROW)));
        for (r, name) in rows {
            write!(w, "{name}")?;
            csv_figures(&mut w, &r.figures, true)?;
            writeln!(w)?;
        }
        return w.flush();
    }
    w.write_all(CSV_LEAD.join(",").as_bytes())?;
    for c in Column::ALL.iter().filter(|c| !c.summary_only()) {
        write!(w, ",{}", c.id())?;
    }
    write!(w, ",path,details")?;
    if owners.is_some() {
        write!(w, ",owner")?;
    }
    writeln!(w)?;
    fn cell<O: Owners + ?Sized>(owners: Option<&O>, c: Option<OwnerView<'_>>) -> Option<String> {
        owners.map(|_| c.map_or(String::new(), |c| c.text.to_string()))
    }
    for (i, r) in snap.regions.iter().enumerate() {
        csv_region(
            &mut w,
            r,
            0,
            cell(owners, owners.and_then(|o| o.region(i))).as_deref(),
        )?;
        for (j, s) in r.sub_blocks.iter().enumerate() {
            csv_region(
                &mut w,
                s,
                1,
                cell(owners, owners.and_then(|o| o.sub_block(i, j))).as_deref(),
            )?;
        }
    }
    if opts.free {
        for f in free_blocks(snap) {
            write!(w, "0,{:#x},{:#x},free,,,,,,,,", f.start, f.end)?;
            // Free space has a size and nothing else: the figures are 0,
            // not unavailable (empty).
            write!(w, ",{}", f.size())?;
            for _ in Column::ALL.iter().filter(|c| !c.summary_only()).skip(1) {
                write!(w, ",0")?;
            }
            write!(w, ",,")?;
            if owners.is_some() {
                write!(w, ",")?;
            }
            writeln!(w)?;
        }
    }
    w.flush()
}

fn csv_region<W: Write>(w: &mut W, r: &Region, depth: u8, owner: Option<&str>) -> io::Result<()> {
    let opt = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
    write!(
        w,
        "{depth},{:#x},{:#x},{},{},{},{:#x},{:02x}:{:02x},{},{},{},{}",
        r.start,
        r.end,
        r.memory_type.id(),
        r.perms.as_str(),
        r.max_protection_str().unwrap_or_default(),
        r.offset,
        r.dev_major,
        r.dev_minor,
        r.inode,
        opt(r.heap_id),
        opt(r.tid),
        r.thp_eligible
            .map(|b| if b { "1" } else { "0" })
            .unwrap_or("")
    )?;
    let f = if r.sub_blocks.is_empty() {
        Figures::of_vma(r)
    } else {
        Figures::of_region(r)
    };
    csv_figures(w, &f, false)?;
    write!(w, ",")?;
    csv_text(w, &r.path)?;
    write!(w, ",")?;
    csv_text(w, &r.details)?;
    if let Some(o) = owner {
        write!(w, ",")?;
        csv_text(w, o)?;
    }
    writeln!(w)
}

fn csv_figures<W: Write>(w: &mut W, f: &Figures, summary: bool) -> io::Result<()> {
    for c in Column::ALL {
        if !summary && c.summary_only() {
            continue;
        }
        match f.get(c) {
            Some(v) => write!(w, ",{v}")?,
            None => write!(w, ",")?,
        }
    }
    Ok(())
}

/// RFC 4180 quoting: quote when needed, double inner quotes.
fn csv_text<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) {
        write!(w, "\"{}\"", s.replace('"', "\"\""))
    } else {
        w.write_all(s.as_bytes())
    }
}

/// A JSON formatter that writes every character a terminal would act on
/// but serde_json leaves raw (DEL, the C1 controls, bidirectional
/// controls, U+2028 and U+2029: [`crate::text::is_unsafe`]) as a `\uXXXX`
/// escape. The document decodes to exactly the same strings; only its
/// bytes change, so that `vmmap PID --json` on a terminal cannot be turned
/// into terminal commands by a process's names or paths. serde_json
/// already escapes the C0 controls itself.
pub(crate) struct TerminalSafe<F>(pub F);

macro_rules! forward {
    ($($name:ident($($arg:ident: $t:ty),*);)*) => {$(
        fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $t)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        }
    )*};
}

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    forward! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest
            .char_indices()
            .find(|&(_, c)| crate::text::is_unsafe(c))
        {
            self.0.write_string_fragment(w, &rest[..i])?;
            // Every such character is in the Basic Multilingual Plane.
            write!(w, "\\u{:04x}", u32::from(c))?;
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_string_fragment(w, rest)
    }
}

/// `serde_json::to_writer` with [`TerminalSafe`] escapes.
pub fn to_writer<W: Write, T: ?Sized + Serialize>(w: W, value: &T) -> io::Result<()> {
    let mut s =
        serde_json::Serializer::with_formatter(w, TerminalSafe(serde_json::ser::CompactFormatter));
    value.serialize(&mut s).map_err(io::Error::from)
}

/// `serde_json::to_writer_pretty` with [`TerminalSafe`] escapes.
pub fn to_writer_pretty<W: Write, T: ?Sized + Serialize>(w: W, value: &T) -> io::Result<()> {
    let mut s = serde_json::Serializer::with_formatter(
        w,
        TerminalSafe(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut s).map_err(io::Error::from)
}

#[cfg(test)]
mod terminal_safe_tests {
    #[test]
    fn json_escapes_what_a_terminal_acts_on_and_decodes_the_same() {
        let s = "a\x1b]0;x\x07\r\n\u{9b}2J\u{202e}\u{7f}é\"\\";
        let mut out = Vec::new();
        super::to_writer(&mut out, &serde_json::json!({ s: [s] })).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.chars().any(crate::text::is_unsafe), "{text}");
        assert!(text.contains("\\u009b") && text.contains("\\u202e") && text.contains('é'));
        let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back[s][0], s);
        let mut pretty = Vec::new();
        super::to_writer_pretty(&mut pretty, &serde_json::json!({ "k": [s, 1] })).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&pretty).unwrap();
        assert_eq!(back["k"][0], s);
        assert!(String::from_utf8(pretty)
            .unwrap()
            .contains("\n  \"k\": [\n"));
    }
}
