//! `vmmap PID --address ADDR`: the region holding an address, where in it,
//! and its neighbours, as text or JSON.

use std::borrow::Cow;
use std::io::{self, Write};

use serde_json::{json, Value};
use vmmap_core::figures::{Column, Figures};
use vmmap_core::lookup::{lookup, Hit, Lookup};
use vmmap_core::model::Region;
use vmmap_core::text::{escape, Escaped};
use vmmap_core::units::size;
use vmmap_core::Snapshot;

/// Writes the lookup of `addr` as text.
pub fn write_text(snap: &Snapshot, addr: u64, exact: bool, w: &mut dyn Write) -> io::Result<()> {
    let l = lookup(snap, addr);
    writeln!(
        w,
        "Process {} ({}), address {addr:#x}",
        snap.process.pid,
        Escaped(&snap.process.name)
    )?;
    writeln!(w)?;
    match l.hit {
        Hit::Region { region, vma } => {
            let off = addr - region.start;
            writeln!(
                w,
                "In:          {} region {:#x}-{:#x} ({}), {}",
                region.memory_type.name(),
                region.start,
                region.end,
                size(region.size(), exact),
                if off == 0 {
                    "at its first byte".to_string()
                } else {
                    format!("{off:#x} ({off}) bytes past its start")
                }
            )?;
            writeln!(w, "Protection:  {}", region.perms.as_str())?;
            if !region.details.is_empty() {
                writeln!(w, "Details:     {}", Escaped(&region.details))?;
            }
            if !region.path.is_empty() {
                writeln!(w, "Path:        {}", Escaped(&region.path))?;
            }
            if !std::ptr::eq(region, vma) {
                writeln!(
                    w,
                    "Mapping:     {}, sub-block {} of {}",
                    span(vma, exact),
                    region
                        .sub_blocks
                        .iter()
                        .position(|s| std::ptr::eq(s, vma))
                        .map_or(0, |i| i + 1),
                    region.sub_blocks.len()
                )?;
            }
            if vma.inode != 0 {
                writeln!(
                    w,
                    "File offset: {:#x}",
                    vma.offset.saturating_add(addr - vma.start)
                )?;
            }
            let f = Figures::of_region(region);
            let mut line = String::from("Figures:    ");
            for c in Column::default_set().filter(|c| !c.summary_only() && !c.is_count()) {
                match f.get(c) {
                    Some(v) => line.push_str(&format!(" {} {},", c.header(), value(v, exact))),
                    None => line.push_str(&format!(" {} n/a,", c.header())),
                }
            }
            line.pop();
            writeln!(w, "{line}")?;
            if !region.evidence.is_empty() {
                writeln!(w, "Evidence:    {}", Escaped(&region.evidence))?;
                writeln!(w, "Confidence:  {}", region.confidence.id())?;
            }
        }
        Hit::Gap(g) => {
            writeln!(
                w,
                "Free:        no region holds it; it lies in a free gap {:#x}-{:#x} ({}), {:#x} past its start",
                g.start,
                g.end,
                size(g.size(), exact),
                addr - g.start
            )?;
        }
        Hit::Outside => {
            writeln!(
                w,
                "Outside:     the user address space is {:#x}-{:#x} (vm.mmap_min_addr to the top); nothing can be mapped at {addr:#x}",
                snap.kernel.mmap_min_addr, snap.kernel.user_address_limit
            )?;
        }
    }
    writeln!(w)?;
    neighbour(w, "Previous:", l.previous, exact)?;
    neighbour(w, "Next:", l.next, exact)
}

/// Writes why the region holding `addr` has its type: the region's rule
/// and, for a group, the rule of the mapping inside it, each with its
/// evidence and confidence, then what the type means.
pub fn write_why(snap: &Snapshot, addr: u64, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "Process {} ({}), address {addr:#x}",
        snap.process.pid,
        Escaped(&snap.process.name)
    )?;
    let (region, vma) = match lookup(snap, addr).hit {
        Hit::Region { region, vma } => (region, vma),
        Hit::Gap(g) => {
            return writeln!(
                w,
                "Free: no region holds it (free gap {:#x}-{:#x}); nothing was classified there",
                g.start, g.end
            )
        }
        Hit::Outside => {
            return writeln!(
                w,
                "Outside the user address space: nothing can be mapped there"
            )
        }
    };
    writeln!(
        w,
        "Region:      {}{}",
        span(region, false),
        if region.path.is_empty() {
            String::new()
        } else {
            format!(" {}", Escaped(&region.path))
        }
    )?;
    writeln!(w, "Type:        {}", region.memory_type.name())?;
    if !region.details.is_empty() {
        writeln!(w, "Details:     {}", Escaped(&region.details))?;
    }
    writeln!(w, "Rule:        {}", or_none(&region.evidence))?;
    writeln!(w, "Confidence:  {}", region.confidence.id())?;
    if !std::ptr::eq(region, vma) {
        writeln!(
            w,
            "Mapping:     {}, a sub-block typed {}{}",
            span(vma, false),
            vma.memory_type.name(),
            if vma.details.is_empty() {
                String::new()
            } else {
                format!(": {}", Escaped(&vma.details))
            }
        )?;
        if vma.evidence != region.evidence || vma.confidence != region.confidence {
            writeln!(w, "  its rule:  {}", or_none(&vma.evidence))?;
            writeln!(w, "  confidence: {}", vma.confidence.id())?;
        }
    }
    if let Some(p) = vma.parts.iter().find(|p| (p.start..p.end).contains(&addr)) {
        writeln!(
            w,
            "Part:        {:#x}-{:#x} ({}): {}",
            p.start,
            p.end,
            size(p.end - p.start, false),
            Escaped(&p.details)
        )?;
    }
    writeln!(w, "Meaning:     {}", region.memory_type.definition())
}

/// `0x1000-0x3000 rw-p (8 KiB)`: how the lines naming a region or its
/// mapping give it.
fn span(r: &Region, exact: bool) -> String {
    format!(
        "{:#x}-{:#x} {} ({})",
        r.start,
        r.end,
        r.perms.as_str(),
        size(r.size(), exact)
    )
}

fn or_none(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        Cow::Borrowed("(none recorded)")
    } else {
        escape(s)
    }
}

fn value(v: u64, exact: bool) -> String {
    if v == 0 {
        "0".into()
    } else {
        size(v, exact)
    }
}

fn neighbour(w: &mut dyn Write, label: &str, r: Option<&Region>, exact: bool) -> io::Result<()> {
    match r {
        Some(r) => writeln!(
            w,
            "{label:<12} {:#x}-{:#x} {:>6} {} {} {}",
            r.start,
            r.end,
            size(r.size(), exact),
            r.perms.as_str(),
            r.memory_type.name(),
            Escaped(if r.details.is_empty() {
                &r.path
            } else {
                &r.details
            })
        ),
        None => writeln!(w, "{label:<12} (none)"),
    }
}

fn region_json(r: &Region) -> Value {
    let f = Figures::of_region(r);
    let figures: serde_json::Map<String, Value> = Column::ALL
        .iter()
        .filter(|c| !c.summary_only() && !c.is_count())
        .map(|c| {
            (
                c.id().to_string(),
                f.get(*c).map_or(Value::Null, Value::from),
            )
        })
        .collect();
    json!({
        "start": format!("{:#x}", r.start),
        "end": format!("{:#x}", r.end),
        "type": r.memory_type.id(),
        "perms": r.perms.as_str(),
        "details": r.details,
        "path": &*r.path,
        "evidence": &*r.evidence,
        "confidence": r.confidence.id(),
        "figures": figures,
    })
}

/// The lookup as JSON (schema `vmmap.address`, version 1).
pub fn to_json(snap: &Snapshot, addr: u64) -> Value {
    let l: Lookup<'_> = lookup(snap, addr);
    let mut v = json!({
        "schema": "vmmap.address",
        "version": 1,
        "pid": snap.process.pid,
        "address": format!("{addr:#x}"),
        "previous": l.previous.map(region_json),
        "next": l.next.map(region_json),
    });
    match l.hit {
        Hit::Region { region, vma } => {
            v["status"] = "mapped".into();
            v["offset_in_region"] = format!("{:#x}", addr - region.start).into();
            v["region"] = region_json(region);
            v["mapping"] = json!({
                "start": format!("{:#x}", vma.start),
                "end": format!("{:#x}", vma.end),
                "perms": vma.perms.as_str(),
                "file_offset": (vma.inode != 0)
                    .then(|| format!("{:#x}", vma.offset.saturating_add(addr - vma.start))),
            });
        }
        Hit::Gap(g) => {
            v["status"] = "free".into();
            v["gap"] = json!({
                "start": format!("{:#x}", g.start),
                "end": format!("{:#x}", g.end),
                "size": g.size(),
            });
        }
        Hit::Outside => v["status"] = "outside".into(),
    }
    v
}
