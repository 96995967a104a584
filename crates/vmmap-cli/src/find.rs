//! `vmmap find`: text, a regular expression or bytes in a process's memory.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::Path;

use vmmap_core::memory as mem;
use vmmap_core::text;

use crate::cli::FindArgs;
use crate::memory::{prepare, report, Progress};
use crate::{output_error, Failure};

/// `vmmap find PID PATTERN`.
pub fn find(a: &FindArgs, proc_root: &Path) -> Result<(), Failure> {
    use vmmap_core::memory::search::{escape, parse_hex, Searcher};
    let mut searcher = match (&a.hex, &a.pattern) {
        (Some(h), _) => parse_hex(h).and_then(|b| Searcher::literal(&b)),
        (None, Some(p)) if a.regex => Searcher::regex(p, a.ignore_case),
        (None, Some(p)) if a.ignore_case => Searcher::regex(&regex_escape(p), true),
        (None, Some(p)) => Searcher::literal(p.as_bytes()),
        (None, None) => Err("give a PATTERN or --hex BYTES".to_string()),
    }
    .map_err(|e| Failure::usage(format!("bad pattern: {e}")))?;
    if a.max == Some(0) {
        return Err(Failure::usage("--max must be at least 1"));
    }
    let (snap, ranges, mut memory) = prepare(&a.target, a.region.as_deref(), proc_root)?;
    let out = io::stdout();
    let mut w = io::BufWriter::with_capacity(1 << 16, out.lock());
    let mut write_error = None;
    let mut count = 0u64;
    let mut progress = Progress::new(&ranges);
    let stats = mem::search(
        &mut memory,
        &ranges,
        &mut searcher,
        mem::CHUNK,
        snap.kernel.page_size,
        &mut |d| {
            progress.update(d);
            ControlFlow::Continue(())
        },
        &mut |hit| {
            count += 1;
            if !a.count {
                let r = &snap.regions[hit.region];
                let more = if hit.found.len > hit.found.bytes.len() {
                    format!("… ({} bytes)", hit.found.len)
                } else {
                    String::new()
                };
                let details = text::escape(if r.details.is_empty() {
                    &r.path
                } else {
                    &r.details
                });
                let line = writeln!(
                    w,
                    "{:#014x}  {:<12}  {:#x}-{:#x}  \"{}\"{more}{}{details}",
                    hit.found.address,
                    r.memory_type.name(),
                    r.start,
                    r.end,
                    escape(&hit.found.bytes),
                    if details.is_empty() { "" } else { "  " },
                );
                if let Err(e) = line {
                    write_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
            if a.max.is_some_and(|m| count >= m) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    progress.done();
    let stats = stats?;
    if let Some(e) = write_error {
        return Err(output_error(e, "standard output"));
    }
    if a.count {
        writeln!(w, "{count}").map_err(|e| output_error(e, "standard output"))?;
    }
    w.flush().map_err(|e| output_error(e, "standard output"))?;
    report(&stats, "matches", count);
    Ok(())
}

/// Escapes text for use as a literal inside a regular expression.
fn regex_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}
