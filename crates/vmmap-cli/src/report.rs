//! `vmmap report TARGET -o FILE.html`: the single-file HTML report of a
//! live process or of a saved file (every snapshot and sample in it).

use std::path::Path;

use vmmap_core::collect::{self, Options};
use vmmap_core::format::Loaded;
use vmmap_render::report::{write_html, ReportInput};

use crate::cli::ReportArgs;
use crate::{exit, files, load, resolve, write_file, Failure};

pub fn report(a: &ReportArgs, proc_root: &Path) -> Result<(), Failure> {
    let ext = a
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !crate::is_stdout(&a.output) && !matches!(ext.as_deref(), Some("html" | "htm")) {
        return Err(Failure::usage(format!(
            "cannot write {}: the report is an HTML file (.html), or HTML on standard output with -o -",
            a.output.display()
        )));
    }
    let path = Path::new(&a.target);
    let (loaded, source) = if crate::names_file(path) {
        let loaded = load(path)?;
        files::require_snapshots(&loaded, &a.target)?;
        let name = path
            .file_name()
            .map_or_else(|| a.target.clone(), |n| n.to_string_lossy().into_owned());
        (loaded, name)
    } else {
        let pid = resolve(&a.target, proc_root)?;
        let snap = collect::snapshot(pid, &Options::default().proc_root(proc_root))?;
        let loaded = Loaded {
            snapshots: vec![snap],
            complete: true,
            ..Loaded::default()
        };
        (loaded, format!("live process {pid}"))
    };
    let tree = if !loaded.traced {
        None
    } else {
        crate::trace_views::report_call_tree(path)?
    };
    // The agent's memory is shown apart from the program's.
    let agent = if loaded.traced {
        crate::owners::agent_of_all(path, &loaded.snapshots)
    } else {
        Vec::new()
    };
    let input = ReportInput {
        snapshots: &loaded.snapshots,
        samples: &loaded.samples,
        call_tree: tree.as_ref(),
        agent: &agent,
        source: &source,
    };
    let stats = std::cell::Cell::new(None);
    write_file(&a.output, |w| {
        stats.set(Some(write_html(&input, w)?));
        Ok(())
    })?;
    let Some(s) = stats.get() else {
        return Err(Failure {
            code: exit::OTHER,
            message: "the report was not written".into(),
        });
    };
    let snaps = loaded.snapshots.len();
    let line = format!(
        "wrote {}: {} bytes, {:.1} bytes per region ({} region rows in {snaps} snapshot{}; embedded data {} bytes)",
        a.output.display(),
        s.bytes,
        s.bytes_per_row(),
        s.rows,
        if snaps == 1 { "" } else { "s" },
        s.data_bytes
    );
    // With `-o -` the report itself is on standard output.
    if crate::is_stdout(&a.output) {
        eprintln!("vmmap: {line}");
        Ok(())
    } else {
        // A reader that went away ends the output (exit 0), no panic.
        use std::io::Write;
        writeln!(std::io::stdout().lock(), "{line}")
            .map_err(|e| crate::output_error(e, "standard output"))
    }
}
