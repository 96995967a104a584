//! `vmmap strings`: the text in a process's memory.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::Path;

use vmmap_core::memory as mem;
use vmmap_core::text::Escaped;

use crate::cli::StringsArgs;
use crate::memory::{prepare, report, Progress};
use crate::{output_error, Failure};

/// `vmmap strings PID`.
pub fn strings(a: &StringsArgs, proc_root: &Path) -> Result<(), Failure> {
    let encodings = a.encoding.encodings();
    if a.min == 0 {
        return Err(Failure::usage("--min must be at least 1"));
    }
    let (snap, ranges, mut memory) = prepare(&a.target, a.region.as_deref(), proc_root)?;
    let out = io::stdout();
    let mut w = io::BufWriter::with_capacity(1 << 16, out.lock());
    let mut write_error = None;
    let mut count = 0u64;
    let mut progress = Progress::new(&ranges);
    let stats = mem::strings(
        &mut memory,
        &ranges,
        a.min,
        encodings,
        mem::CHUNK,
        snap.kernel.page_size,
        &mut |d| {
            progress.update(d);
            ControlFlow::Continue(())
        },
        &mut |hit| {
            count += 1;
            let r = &snap.regions[hit.region];
            match writeln!(
                w,
                "{:#014x}  {:<12}  {:<7}  {}",
                hit.found.address,
                r.memory_type.name(),
                hit.found.encoding.id(),
                Escaped(&hit.found.text)
            ) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    write_error = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    );
    progress.done();
    let stats = stats?;
    if let Some(e) = write_error {
        return Err(output_error(e, "standard output"));
    }
    w.flush().map_err(|e| output_error(e, "standard output"))?;
    report(&stats, "strings", count);
    Ok(())
}
