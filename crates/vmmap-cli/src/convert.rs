//! `vmmap convert`: a saved file in another format.

use std::io::{self, Write};

use vmmap_core::export::{self, ExportOptions};
use vmmap_core::Summary;
use vmmap_render::text::{write_text_owned, SortKey, TextOptions};

use crate::cli::ConvertArgs;
use crate::show::{format_of, parse_columns, Format};
use crate::{files, load, owners, shown, write_file, Failure};

/// `vmmap convert IN OUT`: a saved file in another format.
pub(crate) fn convert(a: &ConvertArgs) -> Result<(), Failure> {
    let format = format_of(&a.output).ok_or_else(|| {
        Failure::usage(format!(
            "cannot tell the format of {} from its extension: use .vmmap, .mmp, .json, .csv or .txt",
            a.output.display()
        ))
    })?;
    let what = shown(&a.input).into_owned();
    if matches!(
        format_of(&a.input),
        Some(Format::Json | Format::Csv | Format::Text)
    ) {
        return Err(Failure::usage(format!(
            "{what}: JSON, CSV and text are export formats that vmmap cannot read back; convert a .vmmap or .mmp file"
        )));
    }
    let loaded = load(&a.input)?;
    files::require_snapshots(&loaded, &what)?;
    let traced = loaded.traced;
    let mut snaps = loaded.snapshots;
    let n = snaps.len();
    if let Some(k) = a.snapshot {
        if !(1..=n).contains(&k) {
            return Err(Failure::usage(format!(
                "{what} has snapshots 1 to {n}; there is no snapshot {k}"
            )));
        }
        snaps = vec![snaps.swap_remove(k - 1)];
    }
    let last = snaps
        .last()
        .unwrap_or_else(|| unreachable!("checked above"));
    // A traced run's snapshot exported as a table carries its owners.
    let owners = (traced && matches!(format, Format::Json | Format::Csv | Format::Text))
        .then(|| owners::of_snapshot(&a.input, last))
        .flatten();
    let owners = owners.as_ref();
    let agent = if traced && matches!(format, Format::Json | Format::Csv | Format::Text) {
        owners::agent_of(&a.input, last)
    } else {
        Vec::new()
    };
    let summary = Summary::with_agent(last, &agent);
    write_file(&a.output, |w| match format {
        Format::Native => {
            let mut f = vmmap_core::format::Writer::new(io::BufWriter::new(w))?;
            for s in &snaps {
                f.append(s)?;
            }
            f.finish()?.flush()
        }
        Format::Mmp => vmmap_core::mmp::write(&snaps.iter().collect::<Vec<_>>(), w),
        Format::Json => {
            export::write_json_owned(last, &summary, ExportOptions::default(), owners, w)
        }
        Format::Csv => export::write_csv_owned(last, &summary, ExportOptions::default(), owners, w),
        Format::Text => {
            let text = TextOptions {
                summary_only: false,
                free: false,
                types: Vec::new(),
                sort: SortKey::parse("address").unwrap_or_else(|| unreachable!("a sort key")),
                reverse: false,
                columns: parse_columns("default").map_err(|f| io::Error::other(f.message))?,
                sub_blocks: true,
                exact: false,
                width: None,
            };
            let mut w = io::BufWriter::new(w);
            let owners = owners.map(owners::column);
            write_text_owned(last, &summary, &text, owners, &mut w)?;
            w.flush()
        }
    })
}
