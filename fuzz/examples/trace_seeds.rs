//! Writes seed inputs for the `trace` target: the harness's own framing
//! (first byte the format version's pick, here the newest; then kind, little-endian u16 length, body per
//! message, EVENTS and MAPS bodies uncompressed) of small traces
//! built with `vmmap_wire::synthetic` in the format the decoder reads, and of
//! any real trace files named on the command line (`vmmap run` output).
//! Without seeds the fuzzer spends its time finding the framing and
//! rarely reaches the segment directory or the record parser.
//!
//! `cargo run --example trace_seeds -- corpus/trace [FILE.vmmap ...]`

use std::path::{Path, PathBuf};

use vmmap_core::format::{ChunkStream, CHUNK_TRACE};
use vmmap_wire::synthetic::{self as syn, StreamBuilder};
use vmmap_wire::*;

/// Turns whole wire messages into one harness input; messages whose body
/// does not fit the harness's 16-bit length are left out.
fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![(TRACE_VERSION - OLDEST_TRACE_VERSION) as u8];
    for m in msgs {
        let Some((&kind, rest)) = m.split_first() else {
            continue;
        };
        let body = match MessageKind::try_from(kind) {
            Ok(MessageKind::Hello) => continue, // the harness writes its own
            Ok(MessageKind::Events | MessageKind::Maps) => match inflate(rest) {
                Some(raw) => raw,
                None => continue,
            },
            _ => rest.to_vec(),
        };
        let Ok(len) = u16::try_from(body.len()) else {
            continue;
        };
        out.push(kind);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// An EVENTS or MAPS body after its tag: tick, raw length, zstd frame.
fn inflate(rest: &[u8]) -> Option<Vec<u8>> {
    let mut c = Cursor::new(rest);
    c.uvarint()?;
    c.uvarint()?;
    zstd::stream::decode_all(c.take(c.remaining())?).ok()
}

/// A thread that allocates, frees, maps and defines stacks.
fn stream(tid: u64) -> StreamBuilder {
    let mut s = StreamBuilder::new(
        tid,
        0x7f00_0000_0000 + tid,
        0x7ffd_0000_0000,
        0x7ffd_0010_0000,
    );
    s.stack(1, &[0x40_1000, 0x40_2000]);
    s.stack(2, &[0x40_1100, 0x40_2000, 0x40_3000]);
    let mut live = Vec::new();
    for i in 0..40u64 {
        let p = 0x5555_0000_0000 + i * 48;
        s.malloc(10 + i * 3, p, 16 + (i % 7) * 8, 1 + i % 2);
        live.push(p);
        if i % 3 == 2 {
            s.free(11 + i * 3, live.remove(0));
        }
    }
    s.mmap_anon(200, 0x7f10_0000_0000, 1 << 20, 2);
    s
}

/// A lane two threads take turns at (format 5), one freeing what the
/// other allocated.
fn lane() -> StreamBuilder {
    let mut s = StreamBuilder::lane();
    s.thread(1, 7);
    s.stack(1, &[0x40_1000, 0x40_2000]);
    for i in 0..20u64 {
        let p = 0x5555_0000_0000 + i * 48;
        s.thread(1 + (i % 2) as u32, 7 + i % 2);
        s.malloc(10 + i * 3, p, 16 + i * 8, 1);
        s.thread(2 - (i % 2) as u32, 8 - i % 2);
        s.free(11 + i * 3, p);
    }
    s
}

fn synthetic() -> Vec<(String, Vec<Vec<u8>>)> {
    let module = syn::one_module(0x40_0000, "/bin/x", b"\x12\x34", 0x10_000);
    let (a, b) = (stream(7), stream(8));
    let ev = |s: &StreamBuilder| syn::events(100, s);
    vec![
        (
            "synthetic".to_string(),
            vec![module.clone(), ev(&a), ev(&b), syn::end()],
        ),
        (
            "synthetic-lane".to_string(),
            vec![module.clone(), ev(&lane()), syn::end()],
        ),
        // Cut short, as after a SIGKILL: no END.
        ("synthetic-cut".to_string(), vec![module, ev(&a)]),
    ]
}

fn real(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let mut s = ChunkStream::open(path, CHUNK_TRACE).map_err(|e| e.to_string())?;
    let mut msgs = Vec::new();
    while let Some((_, m)) = s.next_chunk() {
        msgs.push(m.to_vec());
    }
    Ok(msgs)
}

fn main() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let Some(dir) = args.next() else {
        eprintln!("usage: trace_seeds CORPUS_DIR [TRACE.vmmap ...]");
        std::process::exit(2);
    };
    std::fs::create_dir_all(&dir).expect("corpus directory");
    let mut seeds = synthetic();
    for path in args {
        match real(&path) {
            Ok(msgs) => {
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                seeds.push((format!("real-{name}"), msgs));
            }
            Err(e) => eprintln!("{}: {e}", path.display()),
        }
    }
    for (name, msgs) in seeds {
        let input = framed(&msgs);
        std::fs::write(dir.join(&name), &input).expect("write seed");
        println!("{name}: {} bytes", input.len());
    }
}
