//! How a snapshot is printed or saved, live or loaded: the output format
//! and the text options the display flags choose.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::export::{self, ExportOptions};
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;
use vmmap_core::{Snapshot, Summary};
use vmmap_render::text::{write_text_owned, SortKey, TextOptions};

use crate::cli::DisplayArgs;
use crate::{is_stdout, output_error, write_file, Failure};

#[derive(Clone, Copy)]
pub(crate) enum Format {
    Text,
    Json,
    Csv,
    Native,
    Mmp,
}

/// The format an output file's extension names.
pub(crate) fn format_of(path: &Path) -> Option<Format> {
    Some(
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some("txt" | "text") => Format::Text,
            Some("vmmap") => Format::Native,
            Some("mmp") => Format::Mmp,
            _ => return None,
        },
    )
}

pub(crate) fn output_format(d: &DisplayArgs) -> Result<Format, Failure> {
    Ok(match (d.json, d.csv, &d.output) {
        (true, _, _) => Format::Json,
        (_, true, _) => Format::Csv,
        (_, _, Some(path)) if is_stdout(path) => Format::Text,
        (_, _, Some(path)) => match format_of(path) {
            Some(f) => f,
            None => {
                return Err(Failure::usage(format!(
                    "cannot tell the format of {} from its extension: use .vmmap, .mmp, .json, .csv or .txt, or give --json or --csv",
                    path.display()
                )))
            }
        },
        _ => Format::Text,
    })
}

/// Prints or saves one snapshot, live or loaded.
pub(crate) fn show(
    snap: Snapshot,
    d: &DisplayArgs,
    format: Format,
    text: TextOptions,
) -> Result<(), Failure> {
    show_owned(snap, d, format, text, None, &[])
}

/// [`show`], with the Owner of each region when the snapshot is of a
/// traced run (text, JSON and CSV), and the regions flagged in `agent`
/// (the tracing agent's) counted apart from the program's figures.
pub(crate) fn show_owned(
    snap: Snapshot,
    d: &DisplayArgs,
    format: Format,
    text: TextOptions,
    owners: Option<vmmap_trace::region_owners::SnapshotOwners>,
    agent: &[bool],
) -> Result<(), Failure> {
    let owners = owners.as_ref();
    let summary = Summary::with_agent(&snap, agent);
    let export_opts = ExportOptions {
        free: d.free,
        summary_only: d.summary,
    };
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match format {
            Format::Json => export::write_json_owned(&snap, &summary, export_opts, owners, w),
            Format::Csv => export::write_csv_owned(&snap, &summary, export_opts, owners, w),
            Format::Native => {
                let mut f = vmmap_core::format::Writer::new(io::BufWriter::new(w))?;
                f.append(&snap)?;
                f.finish()?.flush()
            }
            Format::Mmp => vmmap_core::mmp::write(&[&snap], w),
            Format::Text => {
                let mut w = io::BufWriter::with_capacity(1 << 16, w);
                let owners = owners.map(crate::owners::column);
                write_text_owned(&snap, &summary, &text, owners, &mut w)?;
                w.flush()
            }
        }
    };
    let result = match &d.output {
        Some(path) => write_file(path, write),
        None => {
            let out = io::stdout();
            let mut lock = out.lock();
            write(&mut lock).map_err(|e| output_error(e, "standard output"))
        }
    };
    // The process exits next and the kernel takes the memory back at once;
    // freeing 60,000 regions one by one first would only cost time.
    std::mem::forget(summary);
    std::mem::forget(snap);
    result
}

/// The ids of `all`, comma-separated: the choices an error about an
/// unknown name lists.
fn ids<T>(all: &[T], id: impl Fn(&T) -> &'static str) -> String {
    all.iter().map(id).collect::<Vec<_>>().join(", ")
}

pub(crate) fn text_options(a: &DisplayArgs) -> Result<TextOptions, Failure> {
    let mut types = Vec::new();
    for t in a.r#type.iter().filter(|t| !t.is_empty()) {
        let parsed = MemoryType::parse(t).ok_or_else(|| {
            Failure::usage(format!(
                "unknown memory type {t:?}; types are: {}",
                ids(&MemoryType::ALL, |t| t.id())
            ))
        })?;
        types.push(parsed);
    }
    let sort = SortKey::parse(&a.sort).ok_or_else(|| {
        Failure::usage(format!(
            "cannot sort by {:?}; use address, type, details, protection or a column: {}",
            a.sort,
            ids(&Column::ALL, |c| c.id())
        ))
    })?;
    Ok(TextOptions {
        summary_only: a.summary,
        free: a.free,
        types,
        sort,
        reverse: a.reverse,
        columns: parse_columns(&a.columns)?,
        sub_blocks: !a.no_sub_blocks,
        exact: a.bytes,
        // Fitted to a terminal only when the text goes to it.
        width: match &a.output {
            Some(p) if !is_stdout(p) => None,
            _ => crate::width::fit_width(a.wide),
        },
    })
}

pub(crate) fn parse_columns(spec: &str) -> Result<Vec<Column>, Failure> {
    let linux = [
        Column::Pss,
        Column::Swap,
        Column::SwapPss,
        Column::Dirty,
        Column::Uss,
        Column::Thp,
        Column::Ksm,
        Column::LazyFree,
    ];
    let mut out: Vec<Column> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "default" => out.extend(Column::default_set()),
            "vmmap" => out.extend(Column::VMMAP),
            "linux" => out.extend(linux),
            "all" => out.extend(Column::ALL),
            _ => out.push(Column::parse(part).ok_or_else(|| {
                Failure::usage(format!(
                    "unknown column {part:?}; use default, vmmap, linux, all or: {}",
                    ids(&Column::ALL, |c| c.id())
                ))
            })?),
        }
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    });
    if out.is_empty() {
        return Err(Failure::usage("no columns chosen"));
    }
    Ok(out)
}
