//! Exports of a traced run's call stacks for the tools people already
//! use: folded stacks (Brendan Gregg's format, read by flamegraph.pl,
//! inferno and speedscope), an SVG flame graph (inferno), pprof (`go tool
//! pprof`, Pyroscope, Grafana) and speedscope's JSON.

use std::collections::HashMap;
use std::io::{self, Write};

use indexmap::IndexSet;
use prost::Message;

use super::calltree::{stack_frames, Metric};
use super::decode::TraceInfo;
use super::summary::StackCost;
use super::symbols::{Frame, Symbols};

/// The costed stacks of a run, symbolised, outermost frame first.
pub struct Profile<'a> {
    /// Every stack with any cost.
    pub(crate) stacks: Vec<CostedStack<'a>>,
    /// A name for the profile (the program).
    pub(crate) name: String,
}

/// One call stack and what it cost.
pub(crate) struct CostedStack<'a> {
    /// Its frames, outermost first.
    pub(crate) frames: Vec<&'a Frame>,
    /// What it allocated.
    pub(crate) cost: StackCost,
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
                let mut frames = stack_frames(info, syms, image, id as u32);
                frames.reverse();
                CostedStack { frames, cost: *c }
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
        for CostedStack { frames, cost } in &self.stacks {
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
        for stack in &self.stacks {
            let s: Vec<usize> = stack
                .frames
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
                let weights: Vec<u64> = self.stacks.iter().map(|s| m.of(&s.cost)).collect();
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
pub fn pprof(
    info: &TraceInfo,
    syms: &Symbols,
    costs: &[StackCost],
    images: &[u32],
    duration_ns: u64,
    out: impl Write,
) -> io::Result<()> {
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&pprof_profile(info, syms, costs, images, duration_ns).encode_to_vec())?;
    gz.finish()?;
    Ok(())
}

/// A module of a process image, as a pprof mapping: where it lies.
struct ModuleSpan<'a> {
    image: u32,
    start: u64,
    end: u64,
    module: &'a super::decode::ModuleInfo,
}

/// The profile message of [`pprof`], before encoding.
fn pprof_profile(
    info: &TraceInfo,
    syms: &Symbols,
    costs: &[StackCost],
    images: &[u32],
    duration_ns: u64,
) -> pprof_proto::Profile {
    use pprof_proto::{Function, Line, Location, Mapping, Sample, ValueType};
    let mut strings = StringTable::default();
    strings.index("");
    let sample_type = [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ]
    .into_iter()
    .map(|(t, u)| ValueType {
        r#type: strings.index(t),
        unit: strings.index(u),
    })
    .collect();
    // Mappings: the modules of each image's last module list (it holds
    // every library loaded by then).
    let mut spans = Vec::new();
    for (n, (image, _, mods)) in info.modules.iter().enumerate() {
        if info.modules[n + 1..].iter().any(|m| m.0 == *image) {
            continue;
        }
        for m in mods {
            spans.push(ModuleSpan {
                image: *image,
                start: m.base + m.segments.iter().map(|s| s.0).min().unwrap_or(0),
                end: m.base + m.segments.iter().map(|s| s.0 + s.1).max().unwrap_or(0),
                module: m,
            });
        }
    }
    let mapping = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let id: String = s
                .module
                .build_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Mapping {
                id: i as u64 + 1,
                memory_start: s.start,
                memory_limit: s.end,
                filename: strings.index(&s.module.path),
                build_id: strings.index(&id),
                has_functions: true,
                has_filenames: true,
                has_line_numbers: true,
            }
        })
        .collect();
    let mut location_ids: HashMap<(u32, u64), u64> = HashMap::new();
    let mut function_ids: HashMap<(&str, Option<&str>), u64> = HashMap::new();
    let mut location = Vec::new();
    let mut function = Vec::new();
    let mut sample = Vec::new();
    for (id, c) in costs.iter().enumerate() {
        if *c == StackCost::default() {
            continue;
        }
        let image = images.get(id).copied().unwrap_or(0);
        let Some(stack) = info.stacks.get(id) else {
            continue;
        };
        let mut location_id = Vec::new();
        for &addr in &stack.frames {
            let next = location_ids.len() as u64 + 1;
            let lid = *location_ids.entry((image, addr)).or_insert(next);
            if lid == next {
                let mapping_id = spans
                    .iter()
                    .position(|s| s.image == image && addr >= s.start && addr < s.end)
                    .map_or(0, |i| i as u64 + 1);
                // Innermost inlined function first, the caller last.
                let line = syms
                    .frames(image, addr)
                    .iter()
                    .map(|f| {
                        let key = (f.function.as_str(), f.file.as_deref());
                        let next_f = function_ids.len() as u64 + 1;
                        let fid = *function_ids.entry(key).or_insert(next_f);
                        if fid == next_f {
                            let name = strings.index(&f.function);
                            function.push(Function {
                                id: fid,
                                name,
                                system_name: name,
                                filename: strings.index(f.file.as_deref().unwrap_or("")),
                            });
                        }
                        Line {
                            function_id: fid,
                            line: i64::from(f.line.unwrap_or(0)),
                        }
                    })
                    .collect();
                location.push(Location {
                    id: lid,
                    mapping_id,
                    address: addr,
                    line,
                });
            }
            location_id.push(lid);
        }
        sample.push(Sample {
            location_id,
            value: [c.allocations, c.bytes, c.live_blocks, c.live_bytes]
                .into_iter()
                .map(int64)
                .collect(),
        });
    }
    let time_nanos = info
        .images
        .first()
        .and_then(|i| i.clocks.first())
        .map_or(0, |c| c.2);
    let default_sample_type = strings.index("inuse_space");
    pprof_proto::Profile {
        sample_type,
        sample,
        mapping,
        location,
        function,
        string_table: strings.0.into_iter().collect(),
        time_nanos: int64(time_nanos),
        duration_nanos: int64(duration_ns),
        default_sample_type,
    }
}

/// profile.proto's int64 fields hold counts and times that never reach
/// 2^63; saturate rather than wrap if one did.
fn int64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// pprof's string table: each string once, referred to by index (0 is
/// the empty string).
#[derive(Default)]
struct StringTable(IndexSet<String>);

impl StringTable {
    fn index(&mut self, s: &str) -> i64 {
        let i = match self.0.get_index_of(s) {
            Some(i) => i,
            None => self.0.insert_full(s.to_string()).0,
        };
        i as i64
    }
}

/// The messages of pprof's `profile.proto`
/// (github.com/google/pprof/blob/main/proto/profile.proto), with the
/// fields this export writes, encoded by prost's derive (no `protoc`
/// needed at build time). Tags are profile.proto's.
mod pprof_proto {
    /// A whole profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub(crate) sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub(crate) sample: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub(crate) mapping: Vec<Mapping>,
        #[prost(message, repeated, tag = "4")]
        pub(crate) location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub(crate) function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub(crate) string_table: Vec<String>,
        #[prost(int64, tag = "9")]
        pub(crate) time_nanos: i64,
        #[prost(int64, tag = "10")]
        pub(crate) duration_nanos: i64,
        #[prost(int64, tag = "14")]
        pub(crate) default_sample_type: i64,
    }

    /// A sample value's kind and unit (string table indices).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ValueType {
        #[prost(int64, tag = "1")]
        pub(crate) r#type: i64,
        #[prost(int64, tag = "2")]
        pub(crate) unit: i64,
    }

    /// One stack (location ids, innermost first) and its values.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub(crate) location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub(crate) value: Vec<i64>,
    }

    /// A module's address range.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Mapping {
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        #[prost(uint64, tag = "2")]
        pub(crate) memory_start: u64,
        #[prost(uint64, tag = "3")]
        pub(crate) memory_limit: u64,
        #[prost(int64, tag = "5")]
        pub(crate) filename: i64,
        #[prost(int64, tag = "6")]
        pub(crate) build_id: i64,
        #[prost(bool, tag = "7")]
        pub(crate) has_functions: bool,
        #[prost(bool, tag = "8")]
        pub(crate) has_filenames: bool,
        #[prost(bool, tag = "9")]
        pub(crate) has_line_numbers: bool,
    }

    /// A return address and the functions (inlined first) at it.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Location {
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        #[prost(uint64, tag = "2")]
        pub(crate) mapping_id: u64,
        #[prost(uint64, tag = "3")]
        pub(crate) address: u64,
        #[prost(message, repeated, tag = "4")]
        pub(crate) line: Vec<Line>,
    }

    /// A function at a source line.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Line {
        #[prost(uint64, tag = "1")]
        pub(crate) function_id: u64,
        #[prost(int64, tag = "2")]
        pub(crate) line: i64,
    }

    /// A function's names and file (string table indices).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Function {
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        #[prost(int64, tag = "2")]
        pub(crate) name: i64,
        #[prost(int64, tag = "3")]
        pub(crate) system_name: i64,
        #[prost(int64, tag = "4")]
        pub(crate) filename: i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn pprof_decodes_to_what_was_built() {
        let info = TraceInfo::default();
        let costs = [StackCost::default()];
        let mut gz = Vec::new();
        pprof(&info, &Symbols::default(), &costs, &[0], 5, &mut gz).unwrap();
        let mut raw = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        let p = pprof_proto::Profile::decode(&raw[..]).unwrap();
        assert_eq!(
            p,
            pprof_profile(&info, &Symbols::default(), &costs, &[0], 5)
        );
        let names: Vec<_> = p
            .sample_type
            .iter()
            .map(|t| p.string_table[t.r#type as usize].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "alloc_objects",
                "alloc_space",
                "inuse_objects",
                "inuse_space"
            ]
        );
        assert_eq!(
            p.string_table[p.default_sample_type as usize],
            "inuse_space"
        );
        assert_eq!(p.duration_nanos, 5);
    }
}
