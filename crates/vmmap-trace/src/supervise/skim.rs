//! What the follower needs of a trace, read without decoding it: the
//! threads alive (their kernel ids, pthread handles, stack tops and
//! names) and the agent's writer thread.
//!
//! The follower reads the whole trace while the program runs, on the same
//! two cores. Through [`crate::Decoder`] it took as much CPU as the
//! agent's writer (about 3% of `typical_mix`'s): it decompressed every
//! part of every EVENTS message, decoded every record (heap addresses,
//! stack ids) and merged the streams in time order, to keep the few
//! thread records. The skim decompresses only the heads of each message
//! (tags and ticks, which come first), and its fields only when the heads
//! hold a thread record (the addresses, last, never); it steps over each
//! record's fields by the layout the wire crate gives its kind
//! (`EventKind::fields`, which the encoder is held to), and orders the
//! thread records by their ticks instead of merging the streams.
//! `the_skim_finds_the_threads_the_decoder_does` holds it to the decoder
//! on the same messages.

use std::collections::HashMap;

use vmmap_wire::{Cursor, EventKind, MessageKind, OLDEST_TRACE_VERSION, TRACE_VERSION};
use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer, ResetDirective};

/// The most an EVENTS message may hold decompressed, as the decoder has it.
const MAX_EVENTS_RAW: u64 = 64 << 20;

/// A stream's state: its last tick and whose records it holds now.
#[derive(Default, Clone, Copy)]
struct Stream {
    tick: u64,
    tid: i32,
}

/// A thread of the last process image, as skimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Alive {
    pub tid: i32,
    pub pthread: u64,
    pub stack_hi: u64,
}

/// The skimmer: fed the trace's messages in file order.
pub(super) struct Skim {
    /// HELLOs seen: the process image whose threads are kept.
    images: u32,
    streams: HashMap<u32, Stream>,
    /// Thread id -> its latest start: (tick, pthread handle, stack top).
    /// Streams reach the file out of order, so each fact is kept with its
    /// tick and the latest wins.
    started: HashMap<i32, (u64, u64, u64)>,
    /// Thread id -> the tick of its latest exit.
    exited: HashMap<i32, u64>,
    /// pthread handle -> (tick, name).
    names: HashMap<u64, (u64, String)>,
    /// The writer thread's id and an address in its stack (the first
    /// AGENT_MEMORY message of the image that carries them).
    pub agent: Option<(i32, u64)>,
    dctx: DCtx<'static>,
    buf: Vec<u8>,
}

impl Default for Skim {
    fn default() -> Self {
        Skim {
            images: 0,
            streams: HashMap::new(),
            started: HashMap::new(),
            exited: HashMap::new(),
            names: HashMap::new(),
            agent: None,
            dctx: DCtx::create(),
            buf: Vec::new(),
        }
    }
}

impl Skim {
    /// Takes in one trace message; an error says where it is damaged.
    pub fn feed(&mut self, msg: &[u8]) -> Result<(), &'static str> {
        let mut c = Cursor::new(msg);
        let kind = c.u8().ok_or("empty message")?;
        match MessageKind::try_from(kind) {
            Ok(MessageKind::Hello) => {
                let version = c.uvarint().ok_or("HELLO cut short")?;
                if !(u64::from(OLDEST_TRACE_VERSION)..=u64::from(TRACE_VERSION)).contains(&version)
                {
                    return Err("a trace version this vmmap does not read");
                }
                // An exec: the threads of the old image went with it.
                self.images += 1;
                self.streams.clear();
                self.started.clear();
                self.exited.clear();
                self.names.clear();
                self.agent = None;
            }
            Ok(MessageKind::AgentMemory) if self.agent.is_none() => {
                let _tick = c.uvarint().ok_or("AGENT_MEMORY cut short")?;
                let n = c.uvarint().ok_or("AGENT_MEMORY cut short")?;
                for _ in 0..n.saturating_mul(2) {
                    c.uvarint().ok_or("AGENT_MEMORY cut short")?;
                }
                if let (Some(tid), Some(sp)) = (c.uvarint(), c.uvarint()) {
                    if tid > 0 {
                        self.agent = Some((tid as i32, sp));
                    }
                }
            }
            Ok(MessageKind::Events) => self.events(&mut c).ok_or("EVENTS damaged")?,
            _ => {}
        }
        Ok(())
    }

    /// The threads alive at the end of what was fed, with their names
    /// (None: the thread never named itself).
    pub fn threads(&self) -> Vec<(Alive, Option<&str>)> {
        self.started
            .iter()
            .filter(|&(tid, &(tick, ..))| self.exited.get(tid).is_none_or(|&e| e < tick))
            .map(|(&tid, &(_, pthread, stack_hi))| {
                let name = self.names.get(&pthread).map(|(_, n)| n.as_str());
                (
                    Alive {
                        tid,
                        pthread,
                        stack_hi,
                    },
                    name,
                )
            })
            .collect()
    }

    /// An EVENTS message after its type byte: the directory, then the
    /// heads and fields of its segments, inflated and no further.
    fn events(&mut self, c: &mut Cursor<'_>) -> Option<()> {
        let _pass_tick = c.uvarint()?;
        let raw = c.uvarint()?;
        if raw > MAX_EVENTS_RAW {
            return None;
        }
        let mut input = InBuffer::around(c.take(c.remaining())?);
        self.dctx.reset(ResetDirective::SessionOnly).ok()?;
        let mut count = [0u8; 4];
        inflate(&mut self.dctx, &mut input, &mut count)?;
        let n = u32::from_le_bytes(count) as usize;
        let dir = n.checked_mul(16).filter(|&d| d as u64 + 4 <= raw)?;
        self.buf.resize(dir, 0);
        inflate(&mut self.dctx, &mut input, &mut self.buf)?;
        let mut sums = [0u64; 3];
        let mut d = Cursor::new(&self.buf);
        for _ in 0..n {
            d.u32()?;
            for s in &mut sums {
                *s += u64::from(d.u32()?);
            }
        }
        if 4 + dir as u64 + sums.iter().sum::<u64>() != raw {
            return None;
        }
        let (heads, fields) = (sums[0] as usize, sums[1] as usize);
        self.buf.resize(dir + heads, 0);
        inflate(&mut self.dctx, &mut input, &mut self.buf[dir..])?;
        // Most messages hold no thread record: their heads give each
        // stream's last tick, and their fields are not inflated.
        let mut ticks = Vec::with_capacity(n);
        let mut d = Cursor::new(&self.buf[..dir]);
        let mut h = dir;
        let mut threads = false;
        for _ in 0..n {
            let stream = d.u32()?;
            let hl = d.u32()? as usize;
            d.u32()?;
            d.u32()?;
            let (thread, delta) = scan_heads(&self.buf[h..h + hl])?;
            threads |= thread;
            ticks.push((stream, delta));
            h += hl;
        }
        if !threads {
            for (stream, delta) in ticks {
                let st = self.streams.entry(stream).or_default();
                st.tick = st.tick.wrapping_add(delta);
            }
            return Some(());
        }
        self.buf.resize(dir + heads + fields, 0);
        inflate(&mut self.dctx, &mut input, &mut self.buf[dir + heads..])?;
        let (directory, parts) = self.buf.split_at(dir);
        let (mut h, mut f) = (0, heads);
        let mut d = Cursor::new(directory);
        for _ in 0..n {
            let stream = d.u32()?;
            let (hl, fl) = (d.u32()? as usize, d.u32()? as usize);
            d.u32()?;
            let st = self.streams.entry(stream).or_default();
            let facts = Facts {
                started: &mut self.started,
                exited: &mut self.exited,
                names: &mut self.names,
            };
            segment(st, facts, &parts[h..h + hl], &parts[f..f + fl])?;
            (h, f) = (h + hl, f + fl);
        }
        Some(())
    }
}

/// Decompresses exactly `out.len()` more bytes of the frame.
fn inflate(dctx: &mut DCtx<'_>, input: &mut InBuffer<'_>, out: &mut [u8]) -> Option<()> {
    let mut o = OutBuffer::around(out);
    while o.pos() < o.capacity() {
        let before = (input.pos, o.pos());
        dctx.decompress_stream(&mut o, input).ok()?;
        if (input.pos, o.pos()) == before {
            return None; // the frame ends before the sizes it declared
        }
    }
    Some(())
}

/// Whether a segment's heads hold a record the follower keeps (or one
/// that says whose records follow), and the sum of their tick
/// differences (what they move the stream's tick by when they hold none).
fn scan_heads(heads: &[u8]) -> Option<(bool, u64)> {
    use EventKind as K;
    let mut h = Cursor::new(heads);
    let mut delta = 0u64;
    while let Some(tag) = h.u8() {
        match K::try_from(tag).ok()? {
            K::Stack => {}
            K::Thread | K::ThreadStart | K::ThreadExit | K::ThreadName => return Some((true, 0)),
            _ => delta = delta.wrapping_add(h.ivarint()? as u64),
        }
    }
    Some((false, delta))
}

/// Where [`segment`] puts what it finds.
struct Facts<'a> {
    started: &'a mut HashMap<i32, (u64, u64, u64)>,
    exited: &'a mut HashMap<i32, u64>,
    names: &'a mut HashMap<u64, (u64, String)>,
}

/// Steps through one segment's records (their heads and fields; the
/// addresses are not needed), keeping the thread records.
fn segment(st: &mut Stream, out: Facts<'_>, heads: &[u8], fields: &[u8]) -> Option<()> {
    use EventKind as K;
    let (mut h, mut f) = (Cursor::new(heads), Cursor::new(fields));
    while let Some(tag) = h.u8() {
        let kind = K::try_from(tag).ok()?;
        // Records without a tick difference.
        match kind {
            K::Stack => {
                f.uvarint()?;
                f.u8()?;
                for _ in 0..f.uvarint()? {
                    f.uvarint()?;
                }
                continue;
            }
            K::Thread => {
                f.uvarint()?;
                st.tid = i32::try_from(f.uvarint()?).ok()?;
                continue;
            }
            K::ThreadStart => {
                st.tick = h.u64()?;
                st.tid = f.uvarint()? as i32;
                let pthread = f.uvarint()?;
                let _stack_lo = f.uvarint()?;
                let stack_hi = f.uvarint()?;
                let e = out.started.entry(st.tid).or_insert((0, 0, 0));
                if st.tick >= e.0 {
                    *e = (st.tick, pthread, stack_hi);
                }
                continue;
            }
            _ => {}
        }
        st.tick = st.tick.wrapping_add(h.ivarint()? as u64);
        // The thread records' fields are read; every other record's are
        // stepped over by the layout the encoder writes.
        match kind {
            K::ThreadExit => {
                f.bytes()?;
                let e = out.exited.entry(st.tid).or_insert(0);
                *e = (*e).max(st.tick);
            }
            K::ThreadName => {
                let pthread = f.uvarint()?;
                let name = String::from_utf8_lossy(f.bytes()?).into_owned();
                let e = out.names.entry(pthread).or_insert((0, String::new()));
                if st.tick >= e.0 {
                    *e = (st.tick, name);
                }
            }
            _ => kind.fields()?.skip(&mut f)?,
        }
    }
    // A segment is cut at record boundaries: both parts end together.
    (f.remaining() == 0).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Event};
    use vmmap_wire::synthetic::{self, StreamBuilder};

    /// The threads as the follower used to find them: every record
    /// decoded and merged, thread starts and exits applied in order.
    fn decoded(msgs: &[Vec<u8>]) -> Vec<(i32, u64, u64, Option<String>)> {
        let mut d = Decoder::new();
        let mut alive: HashMap<i32, (u64, u64)> = HashMap::new();
        let mut names: HashMap<u64, String> = HashMap::new();
        let mut book = |r: &crate::Record, _: &crate::TraceInfo| match &r.event {
            Event::ThreadStart {
                pthread, stack_hi, ..
            } => {
                alive.insert(r.tid, (*pthread, *stack_hi));
            }
            Event::ThreadExit => {
                alive.remove(&r.tid);
            }
            Event::ThreadName { pthread, name } => {
                names.insert(*pthread, name.clone());
            }
            _ => {}
        };
        for m in msgs {
            d.feed(m, &mut book).unwrap();
        }
        d.finish(&mut book).unwrap();
        let mut v: Vec<_> = alive
            .into_iter()
            .map(|(tid, (p, hi))| (tid, p, hi, names.get(&p).cloned()))
            .collect();
        v.sort();
        v
    }

    fn skimmed(msgs: &[Vec<u8>]) -> Vec<(i32, u64, u64, Option<String>)> {
        let mut s = Skim::default();
        for m in msgs {
            s.feed(m).unwrap();
        }
        let mut v: Vec<_> = s
            .threads()
            .into_iter()
            .map(|(a, n)| (a.tid, a.pthread, a.stack_hi, n.map(str::to_string)))
            .collect();
        v.sort();
        v
    }

    /// A text field as the encoder writes it: its length, then its bytes
    /// (ASCII bytes are one-byte varints).
    fn text(t: &str) -> impl Iterator<Item = u64> + '_ {
        std::iter::once(t.len() as u64).chain(t.bytes().map(u64::from))
    }

    /// Every kind of record, in a lane and in threads' own streams, a
    /// thread's start and its exit in different streams and messages (the
    /// exit's message first), names, a message with no thread record
    /// between two that have some: the skim finds the threads the
    /// decoder finds, and steps over everything else without losing its
    /// place.
    #[test]
    fn the_skim_finds_the_threads_the_decoder_does() {
        use EventKind as K;
        let mut main = StreamBuilder::new(100, 0x7000, 0x1000, 0x9000);
        main.stack(1, &[0x401000, 0x402000, 0x403000]);
        main.malloc(5, 0x5000_0010, 24, 1);
        main.free(6, 0x5000_0010);
        main.mmap_anon(7, 0x7f00_0000_0000, 1 << 20, 1);
        let records: Vec<(K, usize, Vec<u64>)> = vec![
            (K::Calloc, 1, vec![48, 1]),
            (K::Memalign, 1, vec![64, 1, 4096]),
            (K::Realloc, 2, vec![96, 1]),
            (K::Munmap, 1, vec![4096, 1]),
            (K::Mremap, 1, vec![8192, 0x7f00_0010_0000, 16384, 1, 1]),
            (K::Mprotect, 1, vec![4096, 1, 1]),
            (K::Madvise, 1, vec![4096, 4, 1]),
            (K::Brk, 1, vec![0x60_0000, 1, 1]),
            (
                K::ThreadCreate,
                0,
                [0x7100].into_iter().chain(text("")).chain([1]).collect(),
            ),
            (
                K::Dlopen,
                0,
                [0xabc, 2]
                    .into_iter()
                    .chain(text("/lib/x.so"))
                    .chain([1])
                    .collect(),
            ),
            (
                K::Dlclose,
                0,
                [0xabc].into_iter().chain(text("")).chain([1]).collect(),
            ),
            (
                K::Fork,
                0,
                [4242].into_iter().chain(text("")).chain([1]).collect(),
            ),
            (K::Exec, 0, text("/bin/y").chain([1]).collect()),
            (
                K::ThreadName,
                0,
                [0x7000].into_iter().chain(text("main-loop")).collect(),
            ),
            (
                K::ThreadName,
                0,
                [0x7300].into_iter().chain(text("early")).collect(),
            ),
        ];
        for (kind, addrs, ints) in records {
            main.head(kind, 8);
            for i in 0..addrs {
                main.addr(0x5000_1000 + i as u64 * 64);
            }
            main.ints(&ints);
        }
        // Thread 101 starts in a stream of its own and exits in a lane
        // whose message comes first in the file; 102 exits in its own
        // stream; 103 stays, named by main before it started.
        let mut t101 = StreamBuilder::new(101, 0x7100, 0x2000, 0xa000);
        t101.malloc(10, 0x5100_0000, 8, 0);
        let mut lane = StreamBuilder::lane();
        lane.thread(2, 101);
        lane.head(K::ThreadExit, 30);
        lane.ints(&[0]);
        lane.thread(1, 100);
        lane.free(31, 0x5100_0000);
        let mut t102 = StreamBuilder::new(102, 0x7200, 0x3000, 0xb000);
        t102.head(K::ThreadExit, 12);
        t102.ints(&[0]);
        let t103 = StreamBuilder::new(103, 0x7300, 0x4000, 0xc000);
        // A message without a thread record (the lane's next records:
        // only its heads are read), then 103's exit in the same lane.
        let mut quiet = StreamBuilder::lane();
        quiet.stack(2, &[0x404000]);
        quiet.malloc(80, 0x5200_0000, 16, 2);
        quiet.free(81, 0x5200_0000);
        let mut late = StreamBuilder::lane();
        late.thread(3, 103);
        late.head(K::ThreadExit, 90);
        late.ints(&[0]);
        let msgs = vec![
            synthetic::hello(100, "/bin/x", b"x\0"),
            synthetic::events_of(50, &[(1, &main), (3, &lane)]),
            synthetic::events_of(60, &[(2, &t101), (4, &t102)]),
            synthetic::events_of(70, &[(5, &t103)]),
            synthetic::events_of(85, &[(3, &quiet)]),
            synthetic::events_of(95, &[(3, &late)]),
            synthetic::end(),
        ];
        let want = decoded(&msgs);
        assert_eq!(want.len(), 1, "{want:?}");
        assert_eq!(skimmed(&msgs), want);
    }
}
