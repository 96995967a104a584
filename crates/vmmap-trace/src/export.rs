//! Exports of a traced run's call stacks for the tools people already
//! use: folded stacks (Brendan Gregg's format, read by flamegraph.pl,
//! inferno and speedscope), an SVG flame graph (inferno), pprof (`go tool
//! pprof`, Pyroscope, Grafana) and speedscope's JSON.

use std::collections::HashMap;
use std::io::{self, Write};

use super::calltree::{stack_frames, Metric};
use super::decode::TraceInfo;
use super::summary::StackCost;
use super::symbols::{Frame, Symbols};
use super::wire::push_uvarint; // protobuf varints are LEB128: the one codec

/// The costed stacks of a run, symbolised, outermost frame first.
pub struct Profile<'a> {
    /// (frames outermost first, cost) per stack with any cost.
    pub stacks: Vec<(Vec<&'a Frame>, StackCost)>,
    /// A name for the profile (the program).
    pub name: String,
}

impl<'a> Profile<'a> {
    /// Collects the stacks with a cost.
    pub fn new(
        info: &TraceInfo,
        syms: &'a Symbols,
        costs: &[StackCost],
        images: &[u32],
    ) -> Profile<'a> {
        let stacks = costs
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != StackCost::default())
            .map(|(id, c)| {
                let image = images.get(id).copied().unwrap_or(0);
                let mut f = stack_frames(info, syms, image, id as u32);
                f.reverse();
                (f, *c)
            })
            .collect();
        let name = info
            .images
            .first()
            .map(|i| i.cmdline.clone())
            .unwrap_or_default();
        Profile { stacks, name }
    }

    /// Folded stacks: `outer;...;inner VALUE` per stack with a non-zero
    /// value of `metric`, identical stacks merged, in a stable order.
    pub fn folded(&self, metric: Metric, lines: bool) -> Vec<String> {
        let mut merged: HashMap<String, u64> = HashMap::new();
        for (frames, cost) in &self.stacks {
            let v = metric.of(cost);
            if v == 0 {
                continue;
            }
            let path = if frames.is_empty() {
                "[unknown]".to_string()
            } else {
                frames
                    .iter()
                    .map(|f| f.label(lines).replace(';', ":"))
                    .collect::<Vec<_>>()
                    .join(";")
            };
            *merged.entry(path).or_default() += v;
        }
        let mut v: Vec<String> = merged
            .into_iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        v.sort();
        v
    }

    /// An SVG flame graph of `metric`.
    pub fn flamegraph(&self, metric: Metric, lines: bool, out: impl Write) -> io::Result<()> {
        let folded = self.folded(metric, lines);
        let mut opts = inferno::flamegraph::Options::default();
        opts.title = format!("{} by call stack: {}", metric_title(metric), self.name);
        opts.count_name = if metric.is_bytes() { "bytes" } else { "calls" }.into();
        opts.colors = inferno::flamegraph::color::Palette::Basic(
            inferno::flamegraph::color::BasicPalette::Mem,
        );
        if folded.is_empty() {
            return Err(io::Error::other(format!(
                "no allocation has a non-zero {} figure: nothing to draw",
                metric_title(metric)
            )));
        }
        inferno::flamegraph::from_lines(&mut opts, folded.iter().map(String::as_str), out)
    }

    /// speedscope's file format: one sampled profile per figure.
    pub fn speedscope(&self, lines: bool) -> serde_json::Value {
        let mut frames: Vec<serde_json::Value> = Vec::new();
        let mut index: HashMap<(String, Option<&str>, Option<u32>), usize> = HashMap::new();
        let mut samples = Vec::new();
        for (fs, _) in &self.stacks {
            let s: Vec<usize> = fs
                .iter()
                .map(|f| {
                    let line = if lines { f.line } else { None };
                    let key = (f.function.clone(), f.file.as_deref(), line);
                    *index.entry(key).or_insert_with(|| {
                        let mut o = serde_json::json!({ "name": f.function });
                        if let Some(file) = &f.file {
                            o["file"] = file.clone().into();
                        }
                        if let Some(l) = line {
                            o["line"] = l.into();
                        }
                        frames.push(o);
                        frames.len() - 1
                    })
                })
                .collect();
            samples.push(s);
        }
        let profiles: Vec<_> = [Metric::Allocated, Metric::Count, Metric::Live, Metric::Peak]
            .into_iter()
            .map(|m| {
                let weights: Vec<u64> = self.stacks.iter().map(|(_, c)| m.of(c)).collect();
                let total: u64 = weights.iter().sum();
                serde_json::json!({
                    "type": "sampled",
                    "name": metric_title(m),
                    "unit": if m.is_bytes() { "bytes" } else { "none" },
                    "startValue": 0,
                    "endValue": total,
                    "samples": samples,
                    "weights": weights,
                })
            })
            .collect();
        serde_json::json!({
            "$schema": "https://www.speedscope.app/file-format-schema.json",
            "exporter": concat!("vmmap ", env!("CARGO_PKG_VERSION")),
            "name": self.name,
            "activeProfileIndex": 0,
            "shared": { "frames": frames },
            "profiles": profiles,
        })
    }
}

/// A figure's title.
pub fn metric_title(m: Metric) -> &'static str {
    match m {
        Metric::Allocated => "bytes allocated",
        Metric::Count => "allocations",
        Metric::Live => "bytes live",
        Metric::Peak => "bytes at the heap's peak",
        Metric::Temporary => "temporary allocations",
        Metric::LiveBlocks => "blocks live",
    }
}

/// Writes a pprof profile (gzip-compressed `profile.proto`) with four
/// sample values per stack, as Go's heap profiles have: alloc_objects,
/// alloc_space, inuse_objects, inuse_space.
///
/// The protobuf is written by hand: the message is six small types, and
/// a protobuf code generator would need `protoc` at build time.
pub fn pprof(
    info: &TraceInfo,
    syms: &Symbols,
    costs: &[StackCost],
    images: &[u32],
    duration_ns: u64,
    out: impl Write,
) -> io::Result<()> {
    let mut p = PprofBuilder::default();
    p.string("");
    let types = [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ];
    let mut body = Vec::new();
    for (t, u) in types {
        let mut vt = Vec::new();
        field_varint(&mut vt, 1, p.string(t));
        field_varint(&mut vt, 2, p.string(u));
        field_bytes(&mut body, 1, &vt);
    }
    // Mappings: the modules of each image's last module list (it holds
    // every library loaded by then).
    let mut mappings = Vec::new();
    for (n, (image, _, mods)) in info.modules.iter().enumerate() {
        if info.modules[n + 1..].iter().any(|m| m.0 == *image) {
            continue;
        }
        for m in mods {
            let lo = m.segments.iter().map(|s| s.0).min().unwrap_or(0);
            let hi = m.segments.iter().map(|s| s.0 + s.1).max().unwrap_or(0);
            mappings.push((*image, m.base + lo, m.base + hi, m));
        }
    }
    for (i, (_, lo, hi, m)) in mappings.iter().enumerate() {
        let mut mm = Vec::new();
        field_varint(&mut mm, 1, i as u64 + 1);
        field_varint(&mut mm, 2, *lo);
        field_varint(&mut mm, 3, *hi);
        field_varint(&mut mm, 5, p.string(&m.path));
        let id: String = m.build_id.iter().map(|b| format!("{b:02x}")).collect();
        field_varint(&mut mm, 6, p.string(&id));
        field_varint(&mut mm, 7, 1);
        field_varint(&mut mm, 8, 1);
        field_varint(&mut mm, 9, 1);
        field_bytes(&mut body, 3, &mm);
    }
    let mut locations: HashMap<(u32, u64), u64> = HashMap::new();
    let mut functions: HashMap<(String, Option<String>), u64> = HashMap::new();
    let mut loc_msgs = Vec::new();
    let mut fn_msgs = Vec::new();
    for (id, c) in costs.iter().enumerate() {
        if *c == StackCost::default() {
            continue;
        }
        let image = images.get(id).copied().unwrap_or(0);
        let Some(stack) = info.stacks.get(id) else {
            continue;
        };
        let mut loc_ids = Vec::new();
        for &addr in &stack.frames {
            let next = locations.len() as u64 + 1;
            let lid = *locations.entry((image, addr)).or_insert(next);
            if lid == next {
                let mut l = Vec::new();
                field_varint(&mut l, 1, lid);
                if let Some(mi) = mappings
                    .iter()
                    .position(|(i, lo, hi, _)| *i == image && addr >= *lo && addr < *hi)
                {
                    field_varint(&mut l, 2, mi as u64 + 1);
                }
                field_varint(&mut l, 3, addr);
                // Innermost inlined function first, the caller last.
                for f in syms.frames(image, addr) {
                    let key = (f.function.clone(), f.file.clone());
                    let next_f = functions.len() as u64 + 1;
                    let fid = *functions.entry(key).or_insert(next_f);
                    if fid == next_f {
                        let mut fm = Vec::new();
                        field_varint(&mut fm, 1, fid);
                        field_varint(&mut fm, 2, p.string(&f.function));
                        field_varint(&mut fm, 3, p.string(&f.function));
                        field_varint(&mut fm, 4, p.string(f.file.as_deref().unwrap_or("")));
                        fn_msgs.push(fm);
                    }
                    let mut line = Vec::new();
                    field_varint(&mut line, 1, fid);
                    field_varint(&mut line, 2, u64::from(f.line.unwrap_or(0)));
                    field_bytes(&mut l, 4, &line);
                }
                loc_msgs.push(l);
            }
            loc_ids.push(lid);
        }
        let mut s = Vec::new();
        field_bytes(&mut s, 1, &packed(&loc_ids));
        field_bytes(
            &mut s,
            2,
            &packed(&[c.allocations, c.bytes, c.live_blocks, c.live_bytes]),
        );
        field_bytes(&mut body, 2, &s);
    }
    for l in &loc_msgs {
        field_bytes(&mut body, 4, l);
    }
    for f in &fn_msgs {
        field_bytes(&mut body, 5, f);
    }
    let start_ns = info
        .images
        .first()
        .and_then(|i| i.clocks.first())
        .map_or(0, |c| c.2);
    let default_type = p.string("inuse_space");
    for s in &p.strings {
        field_bytes(&mut body, 6, s.as_bytes());
    }
    field_varint(&mut body, 9, start_ns);
    field_varint(&mut body, 10, duration_ns);
    field_varint(&mut body, 14, default_type);
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&body)?;
    gz.finish()?;
    Ok(())
}

#[derive(Default)]
struct PprofBuilder {
    strings: Vec<String>,
    index: HashMap<String, u64>,
}

impl PprofBuilder {
    fn string(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u64;
        self.strings.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

fn field_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    push_uvarint(out, u64::from(field) << 3);
    push_uvarint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    push_uvarint(out, (u64::from(field) << 3) | 2);
    push_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn packed(vals: &[u64]) -> Vec<u8> {
    let mut v = Vec::new();
    for &x in vals {
        push_uvarint(&mut v, x);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_encoding_matches_the_wire_format() {
        let mut v = Vec::new();
        field_varint(&mut v, 1, 150);
        assert_eq!(v, [0x08, 0x96, 0x01]);
        let mut b = Vec::new();
        field_bytes(&mut b, 2, b"testing");
        assert_eq!(b[..2], [0x12, 0x07]);
        assert_eq!(packed(&[3, 270]), [0x03, 0x8e, 0x02]);
    }
}
