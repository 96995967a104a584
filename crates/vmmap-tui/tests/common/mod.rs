//! The traced run the TUI's trace tests draw, built message by message in
//! the agent's wire format, with its symbols in the file's cache so no
//! binary is read. One thread (tid 100 of pid 42) allocates from two call
//! stacks, 1: leaf:30 <- work:20 <- main:10 and 2: leaf:31 <- main:11:
//!
//! | tick | operation                       | stack |
//! |------|---------------------------------|-------|
//! | 0    | thread-start (tid 100)          |       |
//! | 10   | malloc 0x10000, 300 bytes       | 1     |
//! | 20   | malloc 0x10200, 50 bytes        | 2     |
//! | 30   | free 0x10000                    |       |
//! | 40   | malloc 0x10400, 100 bytes       | 1     |
//! | 50   | mmap 0x70000000, 64 KiB         | 2     |
//!
//! then `extra` more mallocs from stack 1 (the `i`th: `i + 1` bytes at
//! 0x100000 + 16 i, tick 60 + i). A tick is a microsecond.

use std::io::Write;
use std::path::{Path, PathBuf};

use vmmap_core::format::{chunk_bytes, Writer, CHUNK_SYMBOLS};
use vmmap_core::model::Snapshot;
use vmmap_trace::scan::encode_symbols;
use vmmap_trace::symbols::{CachedModule, Frame};
use vmmap_wire::synthetic::*;

/// Where the program is loaded.
pub const BASE: u64 = 0x400000;

/// A fresh directory for one test's file.
pub fn temp_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vmmap-tui-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn frame(function: &str, line: u32) -> Vec<Frame> {
    vec![Frame {
        function: function.into(),
        file: Some("/src/app/a.c".into()),
        line: Some(line),
        inlined: false,
    }]
}

/// Writes a run whose two call stacks end in the same frame (`leaf` at
/// a.c:30), one called from `work`, the other straight from `main`: two
/// live blocks each from the first, one from the second.
#[allow(dead_code)]
pub fn write_twin_stacks(path: &Path) {
    let mut s = StreamBuilder::new(100, 0x7f00_0000_0000, 0x7ffd_0000_0000, 0x7ffd_0080_0000);
    s.stack(1, &[BASE + 0x301, BASE + 0x201, BASE + 0x101]);
    s.stack(2, &[BASE + 0x301, BASE + 0x111]);
    s.malloc(10, 0x10000, 300, 1);
    s.malloc(20, 0x10200, 100, 1);
    s.malloc(30, 0x10400, 50, 2);
    let mut w = Writer::new(std::fs::File::create(path).unwrap()).unwrap();
    for m in [
        hello(42, "/bin/app", b"app\0"),
        one_module(BASE, "/bin/app", &[0xab, 0xcd], 0x10000),
        events(40, &s),
        end(),
    ] {
        w.append_trace(&m).unwrap();
    }
    let mut f = w.finish().unwrap();
    let cache = [CachedModule {
        key: "abcd".into(),
        entries: vec![
            (0x100, frame("main", 10)),
            (0x110, frame("main", 11)),
            (0x200, frame("work", 20)),
            (0x300, frame("leaf", 30)),
        ],
    }];
    let (payload, raw) = encode_symbols(&cache).unwrap();
    f.write_all(&chunk_bytes(CHUNK_SYMBOLS, &payload, raw).unwrap())
        .unwrap();
}

/// Writes the run described at the top to `path`, then `snapshot` if
/// given, then the symbol cache.
pub fn write_traced_run(path: &Path, extra: u64, snapshot: Option<&Snapshot>) {
    let mut s = StreamBuilder::new(100, 0x7f00_0000_0000, 0x7ffd_0000_0000, 0x7ffd_0080_0000);
    // Return addresses, innermost first.
    s.stack(1, &[BASE + 0x301, BASE + 0x201, BASE + 0x101]);
    s.stack(2, &[BASE + 0x311, BASE + 0x111]);
    s.malloc(10, 0x10000, 300, 1);
    s.malloc(20, 0x10200, 50, 2);
    s.free(30, 0x10000);
    s.malloc(40, 0x10400, 100, 1);
    s.mmap_anon(50, 0x7000_0000, 65536, 2);
    for i in 0..extra {
        s.malloc(60 + i, 0x100000 + 16 * i, i + 1, 1);
    }
    let mut w = Writer::new(std::fs::File::create(path).unwrap()).unwrap();
    for m in [
        hello(42, "/bin/app", b"app\0"),
        one_module(BASE, "/bin/app", &[0xab, 0xcd], 0x10000),
        events(60 + extra, &s),
        end(),
    ] {
        w.append_trace(&m).unwrap();
    }
    if let Some(snap) = snapshot {
        w.append(snap).unwrap();
    }
    let mut f = w.finish().unwrap();
    let cache = [CachedModule {
        key: "abcd".into(),
        entries: vec![
            (0x100, frame("main", 10)),
            (0x110, frame("main", 11)),
            (0x200, frame("work", 20)),
            (0x300, frame("leaf", 30)),
            (0x310, frame("leaf", 31)),
        ],
    }];
    let (payload, raw) = encode_symbols(&cache).unwrap();
    f.write_all(&chunk_bytes(CHUNK_SYMBOLS, &payload, raw).unwrap())
        .unwrap();
}
