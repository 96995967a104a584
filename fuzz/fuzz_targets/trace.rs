#![no_main]
//! The trace decoder (`vmmap trace`), the region owners, the summary and
//! the resolved frees' reader on arbitrary messages: none of them may
//! panic. Event and maps bodies are compressed here, so the fuzzer reaches
//! the record parser instead of fighting zstd.

use libfuzzer_sys::fuzz_target;
use vmmap_trace::calltree::{CallTree, Metric, TreeOptions};
use vmmap_trace::summary::Summarizer;
use vmmap_trace::symbols::Symbols;
use vmmap_trace::{export, scan};
use vmmap_trace::{owners::owners, summarize, Decoder, Record};
use vmmap_wire::*;

/// A HELLO of a format the decoder reads ([`OLDEST_TRACE_VERSION`] to
/// [`TRACE_VERSION`], picked by `pick`; older and newer ones stop at the
/// HELLO).
fn hello(pick: u8) -> Vec<u8> {
    let versions = TRACE_VERSION - OLDEST_TRACE_VERSION + 1;
    let version = OLDEST_TRACE_VERSION + u32::from(pick) % versions;
    let mut m = vec![MessageKind::Hello as u8];
    for v in [u64::from(version), 1, 0, 4096, 0, 1000, 5_000, 7_000] {
        push_uvarint(&mut m, v);
    }
    push_bytes(&mut m, b"/bin/x");
    push_bytes(&mut m, b"x\0");
    m
}

fuzz_target!(|data: &[u8]| {
    // The first byte is the framing's: it picks the format version; the
    // messages follow it.
    if data.is_empty() {
        return;
    }
    let mut msgs = vec![hello(data[0])];
    let mut i = 1;
    while i + 3 <= data.len() {
        let kind = data[i];
        let len = u16::from_le_bytes([data[i + 1], data[i + 2]]) as usize;
        let body = &data[i + 3..(i + 3 + len).min(data.len())];
        i += 3 + len;
        let msg = match kind % 9 {
            k @ (3 | 4) => {
                let kind = if k == 3 {
                    MessageKind::Events
                } else {
                    MessageKind::Maps
                };
                let mut m = vec![kind as u8];
                push_uvarint(&mut m, (i as u64) << 4);
                push_uvarint(&mut m, body.len() as u64);
                m.extend_from_slice(&zstd::bulk::compress(body, 1).unwrap_or_default());
                m
            }
            k => {
                let mut m = vec![k];
                m.extend_from_slice(body);
                m
            }
        };
        msgs.push(msg);
    }
    let mut d = Decoder::new();
    let mut records: Vec<Record> = Vec::new();
    for m in &msgs {
        if d.feed(m, &mut |r, _| records.push(r.clone())).is_err() {
            break;
        }
    }
    let _ = d.finish(&mut |r, _| records.push(r.clone()));
    for r in &records {
        let _ = d.info.tick_ns(r.image, r.tick);
        let _ = r.event.name();
    }
    if !d.info.maps.is_empty() {
        let _ = owners(&records, &d.info, d.info.maps.len() - 1);
    }
    let _ = summarize(msgs.iter().map(Vec::as_slice));
    // The costs per stack, the call tree and the exports built on them
    // (symbols from an empty cache: no file named by the data is read).
    let mut acc = Summarizer::default();
    for r in &records {
        acc.add(r);
    }
    let (_, costs, images) = acc.finish_costs(&d.info);
    let syms = Symbols::default();
    let mut t = CallTree::build(&d.info, &syms, &costs, &images, TreeOptions::default());
    t.sort(Metric::Peak);
    let _ = t.folded(true);
    let _ = export::Profile::new(&d.info, &syms, &costs, &images).speedscope(false);
    let _ = export::pprof(&d.info, &syms, &costs, &images, 0, std::io::sink());
    // The resolved frees: the chunk `vmmap run` would write for these
    // records, and the raw data as one, read in step with the records.
    if let Some(payload) = vmmap_trace::frees::Recorder::new().and_then(|mut rec| {
        records.iter().for_each(|r| rec.add(r));
        rec.finish(&d.info)
    }) {
        for payload in [payload, data.to_vec()] {
            if let Some(mut acc) = Summarizer::with_frees_chunk(payload) {
                for r in &records {
                    acc.add(r);
                }
                let _ = acc.resolution_agrees(&d.info);
                let _ = acc.finish_costs(&d.info);
            }
        }
    }
    // The symbol cache chunk's decoder on the raw data.
    let _ = scan::decode_symbols(data);
});
