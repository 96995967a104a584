//! `vmmap metrics`: one scrape of OpenMetrics text, printed or written
//! atomically; what `serve` collects is chosen the same way.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use vmmap_core::collect::Options;
use vmmap_core::metrics::{self, ScrapeOptions, Target};

use crate::cli::{MetricsArgs, SelectArgs};
use crate::{output_error, write_file, Failure};

pub(crate) fn targets(a: &SelectArgs) -> Vec<Target> {
    if a.all {
        return vec![Target::All];
    }
    a.targets
        .iter()
        .map(|t| match t.parse::<u32>() {
            Ok(p) => Target::Pid(p),
            Err(_) => Target::Name(t.clone()),
        })
        .collect()
}

/// Metrics never stop a thread: a monitoring agent scraping every few
/// seconds must not pause production processes (`--no-ptrace` is
/// accepted and changes nothing).
pub(crate) fn scrape_options(
    a: &SelectArgs,
    proc_root: &Path,
    default_budget: Option<u64>,
) -> ScrapeOptions {
    ScrapeOptions {
        collect: Options::default()
            .proc_root(proc_root)
            .ptrace(false)
            .read_memory(!a.no_read_memory),
        max_processes: a.max_processes,
        budget: a.budget_ms.or(default_budget).map(Duration::from_millis),
    }
}

/// `vmmap metrics`: one scrape, printed or written atomically.
pub(crate) fn metrics(a: &MetricsArgs, proc_root: &Path) -> Result<(), Failure> {
    let scrape = metrics::scrape(
        &targets(&a.select),
        &scrape_options(&a.select, proc_root, None),
    );
    let write = |w: &mut dyn Write| -> io::Result<()> {
        let mut w = io::BufWriter::new(w);
        metrics::render(&scrape, None, &mut w)?;
        w.flush()
    };
    match &a.output {
        Some(path) => write_file(path, write),
        None => write(&mut io::stdout().lock()).map_err(|e| output_error(e, "standard output")),
    }
}
