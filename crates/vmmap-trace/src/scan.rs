//! Reading a trace file's records on several cores: one thread reads the
//! file and decompresses the event messages, one decodes and merges the
//! threads' streams, and the caller's thread analyses the records.
//! Decoding and analysis cost about the same on an allocation-heavy
//! trace, so this halves the wall time of every whole-trace view
//! (summary, call tree, leaks, exports); decompressing apart takes a
//! sixth off the decoding thread, which sets the pace.

use std::io::Read;
use std::sync::mpsc;

use super::decode::{inflate_events, Decoder, Record, TraceError, TraceInfo};
use super::symbols::CachedModule;
use super::wire::MessageKind;
use vmmap_core::format::{ChunkStream, FormatError, CHUNK_SYMBOLS};

/// Records handed over at a time: large enough that the channel costs
/// nothing per record, small enough that memory stays a few megabytes.
const BATCH: usize = 8192;
/// Batches in flight.
const DEPTH: usize = 4;
/// Decompressed event messages in flight (a few megabytes each).
const INFLATED: usize = 2;

/// What the reading thread hands the decoding thread.
enum Chunk {
    /// A trace message to feed as it is.
    Message(Vec<u8>),
    /// An EVENTS message, decompressed (or why it could not be).
    Events(Result<(u64, Vec<u8>), String>),
    /// Symbols cached in the file.
    Symbols(Vec<CachedModule>),
}

/// What a scan found besides the records.
#[derive(Debug)]
pub struct Scan {
    /// Everything but the events (stacks, modules, images...).
    pub info: TraceInfo,
    /// Where decoding stopped on damaged trace data, if it did.
    pub damage: Option<TraceError>,
    /// Where reading the file stopped early (truncation, a bad chunk).
    pub file_problem: Option<FormatError>,
    /// Trace messages read.
    pub messages: usize,
    /// Symbols cached in the file by earlier analyses.
    pub symbol_cache: Vec<CachedModule>,
}

impl Scan {
    /// Why nothing of the trace could be read, when its first HELLO is
    /// of a format version this vmmap does not read (newer, or older than
    /// any release): a file to refuse, where damage further on only cuts
    /// the analysis short.
    pub fn unreadable(&self) -> Option<&TraceError> {
        self.damage.as_ref().filter(|d| {
            self.info.images.is_empty()
                && matches!(d, TraceError::NewerVersion(_) | TraceError::OlderVersion(_))
        })
    }
}

/// The largest symbol cache read back: far above any real one (a few
/// megabytes), low enough that a damaged frame cannot claim the memory.
const MAX_SYMBOLS_RAW: u64 = 1 << 28;

/// Decodes a [`vmmap_core::format::CHUNK_SYMBOLS`] payload. Streamed, so that
/// memory follows what the frame holds rather than the cap: a one-shot
/// decompression reserves the whole cap up front for every chunk.
pub fn decode_symbols(payload: &[u8]) -> Option<Vec<CachedModule>> {
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(payload)
        .ok()?
        .take(MAX_SYMBOLS_RAW + 1)
        .read_to_end(&mut raw)
        .ok()?;
    if raw.len() as u64 > MAX_SYMBOLS_RAW {
        return None;
    }
    rmp_serde::from_slice(&raw).ok()
}

/// Encodes symbols for a [`vmmap_core::format::CHUNK_SYMBOLS`] chunk: returns
/// (payload, raw length).
pub fn encode_symbols(modules: &[CachedModule]) -> std::io::Result<(Vec<u8>, usize)> {
    let raw = rmp_serde::to_vec_named(modules).map_err(std::io::Error::other)?;
    let z = zstd::bulk::compress(&raw, 3)?;
    Ok((z, raw.len()))
}

/// Calls `each` with every record of the trace chunks in `stream`, in time
/// order, decoding on a second thread.
pub fn scan<R: Read + Send + 'static>(stream: ChunkStream<R>, each: impl FnMut(&Record)) -> Scan {
    scan_until(stream, Vec::new(), each)
}

/// [`scan`], stopping each process image at a tick (`until[image]`; images
/// past the end of `until` are not cut).
pub fn scan_until<R: Read + Send + 'static>(
    stream: ChunkStream<R>,
    until: Vec<u64>,
    mut each: impl FnMut(&Record),
) -> Scan {
    scan_batches(stream, until, |batch| batch.iter().for_each(&mut each))
}

/// [`scan_until`], handing over the records a batch at a time (in time
/// order, as they cross from the decoding thread): an analysis that sees
/// the records ahead can fetch what they will touch before it needs it
/// ([`crate::summary::Summarizer::add_batch`]).
pub fn scan_batches<R: Read + Send + 'static>(
    stream: ChunkStream<R>,
    until: Vec<u64>,
    mut each: impl FnMut(&[Record]),
) -> Scan {
    let mut stream = stream.with_extra_kind(CHUNK_SYMBOLS);
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<Record>>(DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<Record>>();
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(INFLATED);
    let (buf_tx, buf_rx) = mpsc::channel::<Vec<u8>>();
    let file = std::thread::spawn(move || {
        while let Some((kind, m)) = stream.next_chunk() {
            let chunk = if kind == CHUNK_SYMBOLS {
                // A damaged cache is only a cache: resolve again.
                Chunk::Symbols(decode_symbols(m).unwrap_or_default())
            } else if m.first() == Some(&(MessageKind::Events as u8)) {
                let buf = buf_rx.try_recv().unwrap_or_default();
                Chunk::Events(inflate_events(m, buf))
            } else {
                Chunk::Message(m.to_vec())
            };
            // The decoder is gone only if it stopped at damage.
            if chunk_tx.send(chunk).is_err() {
                break;
            }
        }
        stream.problem.take()
    });
    let reader = std::thread::spawn(move || {
        let mut d = Decoder::new();
        let mut batch = Vec::with_capacity(BATCH);
        let mut damage = None;
        let mut messages = 0;
        let mut symbol_cache = Vec::new();
        let hand_over = |batch: &mut Vec<Record>| {
            let next = empty_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            let full = std::mem::replace(batch, next);
            // The receiver is gone only if the analysis panicked.
            full_tx.send(full).is_ok()
        };
        let mut alive = true;
        for chunk in chunk_rx.iter() {
            let mut each = |r: Record, _: &TraceInfo| {
                if until.get(r.image as usize).is_some_and(|&u| r.tick > u) {
                    return;
                }
                batch.push(r);
                if batch.len() == BATCH {
                    alive &= hand_over(&mut batch);
                }
            };
            let r = match chunk {
                Chunk::Symbols(s) => {
                    symbol_cache.extend(s);
                    continue;
                }
                Chunk::Message(m) => d.feed_owned(&m, &mut each),
                Chunk::Events(e) => d.feed_inflated(e, &mut each),
            };
            messages += 1;
            if let Some(buf) = d.spare_buffer() {
                let _ = buf_tx.send(buf);
            }
            if let Err(e) = r {
                damage = Some(e);
                break;
            }
            if !alive {
                break;
            }
        }
        // Stop the file thread if decoding stopped early.
        drop(chunk_rx);
        if damage.is_none() {
            let r = d.finish_owned(&mut |r, _| {
                if until.get(r.image as usize).is_some_and(|&u| r.tick > u) {
                    return;
                }
                batch.push(r);
                if batch.len() == BATCH {
                    alive &= hand_over(&mut batch);
                }
            });
            damage = r.err();
        }
        if !batch.is_empty() {
            hand_over(&mut batch);
        }
        (d.info, damage, messages, symbol_cache)
    });
    for batch in full_rx.iter() {
        each(&batch);
        let mut batch = batch;
        batch.clear();
        let _ = empty_tx.send(batch);
    }
    let (info, damage, messages, symbol_cache) = match reader.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let file_problem = match file.join() {
        Ok(p) => p,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    Scan {
        info,
        damage,
        file_problem,
        messages,
        symbol_cache,
    }
}

/// The trace's facts without its events: images with their clock
/// anchors, module lists, maps records (event chunks are skipped
/// undecoded, so this costs a read of the file).
pub fn facts<R: Read>(mut stream: ChunkStream<R>) -> TraceInfo {
    use super::wire::MessageKind;
    let mut d = Decoder::new();
    while let Some(m) = stream.next_payload() {
        if m.first() != Some(&(MessageKind::Events as u8)) && d.feed(m, &mut |_, _| {}).is_err() {
            break;
        }
    }
    d.info
}

/// The tick of each process image at `seconds` after the first image
/// started, from the clock anchors. An image that started later than that
/// gets tick 0; an image with a single anchor is not cut.
pub fn ticks_at(info: &TraceInfo, seconds: f64) -> Vec<u64> {
    let origin = info
        .images
        .first()
        .and_then(|i| i.clocks.first())
        .map_or(0, |c| c.1);
    let target = origin as f64 + seconds * 1e9;
    info.images
        .iter()
        .map(|img| {
            let (Some(a), Some(b)) = (img.clocks.first(), img.clocks.last()) else {
                return u64::MAX;
            };
            if b.1 <= a.1 || b.0 <= a.0 {
                return u64::MAX;
            }
            let ticks_per_ns = (b.0 - a.0) as f64 / (b.1 - a.1) as f64;
            let t = a.0 as f64 + (target - a.1 as f64) * ticks_per_ns;
            if t <= 0.0 {
                0
            } else {
                t as u64
            }
        })
        .collect()
}

/// Seconds since the first image started at wall-clock time `unix_ns`
/// (a snapshot's time), from the first clock anchor.
pub fn seconds_at_unix(info: &TraceInfo, unix_ns: u64) -> Option<f64> {
    let a = info.images.first()?.clocks.first()?;
    Some((unix_ns as f64 - a.2 as f64) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmmap_core::format::{Writer, CHUNK_TRACE};

    #[test]
    fn records_cross_threads_in_order_and_facts_come_back() {
        use vmmap_wire::synthetic::{self as syn, StreamBuilder};
        let hello = syn::hello(7, "/bin/x", b"x\0");
        // 20,000 mallocs in one stream: more than two batches.
        let mut s = StreamBuilder::new(99, 0, 0, 0);
        for i in 0..20_000u64 {
            s.malloc(1 + i, 16 * (i + 1), i, 0);
        }
        let ev = syn::events(1, &s);
        let mut w = Writer::new(Vec::new()).unwrap();
        w.append_trace(&hello).unwrap();
        w.append_trace(&ev).unwrap();
        let bytes = w.finish().unwrap();
        let stream = ChunkStream::new(std::io::Cursor::new(bytes), CHUNK_TRACE).unwrap();
        let mut sizes = Vec::new();
        let s = scan(stream, |r| {
            if let crate::Event::Alloc { size, .. } = r.event {
                sizes.push(size);
            }
        });
        assert_eq!(sizes, (0..20_000).collect::<Vec<_>>());
        assert_eq!((s.messages, s.info.images[0].pid), (2, 7));
        assert!(s.damage.is_none() && s.file_problem.is_none());
    }
}
