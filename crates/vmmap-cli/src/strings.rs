//! `vmmap strings`: the text in a process's memory.

use std::ops::ControlFlow;
use std::path::Path;

use vmmap_core::memory as mem;
use vmmap_core::text::Escaped;

use crate::cli::StringsArgs;
use crate::{memory, Failure};

/// `vmmap strings PID`.
pub fn strings(a: &StringsArgs, proc_root: &Path) -> Result<(), Failure> {
    let encodings = a.encoding.encodings();
    if a.min == 0 {
        return Err(Failure::usage("--min must be at least 1"));
    }
    memory::scan(
        &a.target,
        a.region.as_deref(),
        proc_root,
        "strings",
        |m, ranges, page_size, (progress, out)| {
            mem::strings(
                m,
                ranges,
                a.min,
                encodings,
                mem::CHUNK,
                page_size,
                progress,
                out,
            )
        },
        |snap, hit: &mem::StringHit, _, w| {
            let r = &snap.regions[hit.region];
            writeln!(
                w,
                "{:#014x}  {:<12}  {:<7}  {}",
                hit.found.address,
                r.memory_type.name(),
                hit.found.encoding.id(),
                Escaped(&hit.found.text)
            )?;
            Ok(ControlFlow::Continue(()))
        },
        |_, _| Ok(()),
    )
}
