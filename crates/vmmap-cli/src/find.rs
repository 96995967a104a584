//! `vmmap find`: text, a regular expression or bytes in a process's memory.

use std::ops::ControlFlow;
use std::path::Path;

use vmmap_core::memory as mem;
use vmmap_core::text;

use crate::cli::FindArgs;
use crate::{memory, Failure};

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
    memory::scan(
        &a.target,
        a.region.as_deref(),
        proc_root,
        "matches",
        |m, ranges, page_size, (progress, out)| {
            mem::search(
                m,
                ranges,
                &mut searcher,
                mem::CHUNK,
                page_size,
                progress,
                out,
            )
        },
        |snap, hit: &mem::MatchHit, count, w| {
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
                writeln!(
                    w,
                    "{:#014x}  {:<12}  {:#x}-{:#x}  \"{}\"{more}{}{details}",
                    hit.found.address,
                    r.memory_type.name(),
                    r.start,
                    r.end,
                    escape(&hit.found.bytes),
                    if details.is_empty() { "" } else { "  " },
                )?;
            }
            Ok(if a.max.is_some_and(|m| count >= m) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
        |count, w| {
            if a.count {
                writeln!(w, "{count}")?;
            }
            Ok(())
        },
    )
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
