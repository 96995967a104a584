//! `vmmap map`: the fragmentation map as text, JSON, SVG or PNG.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::collect::{self, Options};
use vmmap_core::text::Escaped;
use vmmap_core::Snapshot;

use crate::cli;
use crate::{exit, is_stdout, memory, output_error, resolve, write_file, Failure};

/// `vmmap map PID`: the fragmentation map as text, JSON or SVG.
pub(crate) fn map(a: &cli::MapArgs, proc_root: &Path) -> Result<(), Failure> {
    use vmmap_render::layout::Layout;
    if let Some(p) = &a.output {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        // `-o -`: SVG on standard output.
        if !is_stdout(p) && !matches!(ext.as_deref(), Some("svg" | "png")) {
            return Err(Failure::usage(format!(
                "cannot draw {}: the map is written as SVG (.svg) or PNG (.png), or as SVG to standard output with -o -",
                p.display()
            )));
        }
    }
    let pid = resolve(&a.target, proc_root)?;
    let snap = collect::snapshot(pid, &Options::default().proc_root(proc_root))?;
    let layout = Layout::of(&snap);
    let heaps = if a.heaps {
        let dir = collect::ProcDir::open(proc_root, pid)?;
        let mut mem = vmmap_core::memory::ProcessMemory::new(dir);
        Some(vmmap_core::memory::malloc::heaps(&mut mem, &snap)?)
    } else {
        None
    };
    if let Some(p) = &a.output {
        let png = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if png {
            let bytes = layout.to_png(&snap).map_err(|e| Failure {
                code: exit::OTHER,
                message: format!("cannot draw {}: {e}", p.display()),
            })?;
            return write_file(p, |w| w.write_all(&bytes));
        }
        let svg = layout.to_svg(&snap);
        return write_file(p, |w| w.write_all(svg.as_bytes()));
    }
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let r = if a.json {
        let v = serde_json::json!({
            "schema": "vmmap.layout",
            "version": 1,
            "pid": pid,
            "layout": layout,
            "heaps": heaps.as_ref().map(|hs| hs.iter().map(|h| {
                let mut v = serde_json::to_value(h).unwrap_or_default();
                match &h.chunks {
                    Ok(c) => v["chunks"] = serde_json::to_value(c).unwrap_or_default(),
                    Err(e) => {
                        v["chunks"] = serde_json::Value::Null;
                        v["error"] = e.as_str().into();
                    }
                }
                v["frag_percent"] = h.frag_percent().into();
                v
            }).collect::<Vec<_>>()),
        });
        vmmap_core::export::to_writer_pretty(&mut w, &v).and_then(|()| writeln!(w))
    } else {
        write_layout(&snap, &layout, a.bytes, &mut w).and_then(|()| match &heaps {
            Some(hs) => write_heaps(hs, a.bytes, &mut w),
            None => Ok(()),
        })
    };
    r.and_then(|()| w.flush())
        .map_err(|e| output_error(e, "standard output"))?;
    if let Some(hs) = &heaps {
        memory::not_resident_note(hs.iter().map(|h| h.not_resident).sum());
    }
    Ok(())
}

fn write_layout(
    snap: &Snapshot,
    l: &vmmap_render::layout::Layout,
    exact: bool,
    w: &mut impl Write,
) -> io::Result<()> {
    let size = |v| vmmap_core::units::size(v, exact);
    // The header's figures are never blank: a process with nothing
    // reserved says 0 (units::size leaves zero blank, as table cells do).
    let figure = |v| if v == 0 { "0".to_string() } else { size(v) };
    writeln!(
        w,
        "Process:         {} ({})",
        snap.process.pid,
        Escaped(&snap.process.name)
    )?;
    writeln!(w, "Regions:         {}", l.region_count)?;
    writeln!(w, "Free gaps:       {}", l.gap_count)?;
    writeln!(w, "Free:            {}", figure(l.free_bytes))?;
    match l.largest_free {
        Some(f) => writeln!(
            w,
            "Largest free:    {} at {:#x}-{:#x}",
            size(f.size()),
            f.start,
            f.end
        )?,
        None => writeln!(w, "Largest free:    none")?,
    }
    writeln!(
        w,
        "Reserved:        {} (PROT_NONE, Size minus Committed)",
        figure(l.reserved_bytes)
    )?;
    writeln!(
        w,
        "Axis:            {} units (16 per doubling of size; a page is 16)\n",
        l.total_units
    )?;
    writeln!(
        w,
        "{:<29}  {:<12}  {:>8}  {:>7}  {:>5}",
        "Address", "Type", "Size", "At", "Units"
    )?;
    for s in &l.segments {
        writeln!(
            w,
            "{:#014x}-{:#014x}  {:<12}  {:>8}  {:>7}  {:>5}{}",
            s.start,
            s.end,
            s.memory_type.name(),
            size(s.end - s.start),
            s.pos,
            s.units,
            if s.reserved { "  reserved" } else { "" }
        )?;
    }
    Ok(())
}

fn write_heaps(
    hs: &[vmmap_core::memory::malloc::HeapFragmentation],
    exact: bool,
    w: &mut impl Write,
) -> io::Result<()> {
    let size = |v: u64| {
        if v == 0 {
            "0".to_string()
        } else {
            vmmap_core::units::size(v, exact)
        }
    };
    writeln!(
        w,
        "\nHeap fragmentation (glibc chunks; tcache and fastbin chunks count as in use)"
    )?;
    if hs.is_empty() {
        writeln!(w, "  no glibc heap")?;
    }
    for h in hs {
        let id = h.heap_id.map_or_else(|| "?".into(), |i| i.to_string());
        match &h.chunks {
            Ok(c) => writeln!(
                w,
                "  Heap ID {id:<3} {:#014x}  resident {:>7}  swap {:>5}  in use {:>7} in {} chunks  free {:>7} in {} chunks (largest {})  top {:>7}  %FRAG {:.1}",
                h.start,
                size(h.resident),
                size(h.swap),
                size(c.in_use_bytes),
                c.in_use_chunks,
                size(c.free_bytes),
                c.free_chunks,
                size(c.largest_free),
                size(c.top_bytes),
                h.frag_percent().unwrap_or(0.0)
            )?,
            Err(e) => writeln!(w, "  Heap ID {id:<3} {:#014x}  not walkable: {e}", h.start)?,
        }
    }
    Ok(())
}
