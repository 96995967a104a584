//! `vmmap open`: a saved file shown as a live process is shown.

use std::path::Path;

use crate::cli::OpenArgs;
use crate::show::{output_format, show_owned, text_options, Format};
use crate::snapshot::tui;
use crate::{exit, files, load, owners, shown, Failure};

/// `vmmap open FILE`: a saved snapshot, shown as a live one.
pub(crate) fn open(a: &OpenArgs, proc_root: &Path) -> Result<(), Failure> {
    let format = output_format(&a.display)?;
    let text = text_options(&a.display)?;
    let what = shown(&a.file);
    let loaded = load(&a.file)?;
    files::require_snapshots(&loaded, &what)?;
    let n = loaded.snapshots.len();
    if n == 0 {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!("{what} holds no complete snapshot"),
        });
    }
    let i = match a.snapshot {
        None => n,
        Some(k) if (1..=n).contains(&k) => k,
        Some(k) => {
            return Err(Failure::usage(format!(
                "{what} has snapshots 1 to {n}; there is no snapshot {k}"
            )));
        }
    };
    if a.interactive {
        // The trace messages are not kept: the Trace view (`T`) streams
        // them from the file, and a long run's trace is large.
        let snaps = { loaded }
            .snapshots
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        return tui(
            vmmap_tui::Start::File(snaps, i - 1, a.file.clone()),
            proc_root,
        );
    }
    // The owners stream the trace from the file again.
    let traced = loaded.traced;
    let snap = loaded
        .snapshots
        .into_iter()
        .nth(i - 1)
        .unwrap_or_else(|| unreachable!("index checked"));
    let wants_owners = traced
        && !a.no_owners
        && !a.display.summary
        && matches!(format, Format::Text | Format::Json | Format::Csv);
    let owners = if wants_owners {
        owners::of_snapshot(&a.file, &snap)
    } else {
        None
    };
    // The agent's memory is counted apart from the program's in every
    // format that shows the Summary.
    let agent = if traced && matches!(format, Format::Text | Format::Json | Format::Csv) {
        owners::agent_of(&a.file, &snap)
    } else {
        Vec::new()
    };
    show_owned(snap, &a.display, format, text, owners, &agent)
}
