//! The native container as its writers need it (the reader is
//! `vmmap_core::format`, with the specification in `docs/format.md`):
//!
//! ```text
//! file   = header chunk*
//! header = magic "VMMAPSNP" (8) | version u16 | flags u16 | reserved u32
//! chunk  = kind u32 | stored_len u32 | raw_len u32 | crc32 u32 | payload
//! ```
//!
//! `crc32` (IEEE) covers `kind`, `stored_len`, `raw_len` and the payload.

use std::io;

/// The 8 magic bytes at the start of every file.
pub const MAGIC: [u8; 8] = *b"VMMAPSNP";
/// The format version this code writes and the newest it reads.
pub const VERSION: u16 = 1;

/// Chunk kind: one snapshot.
pub const CHUNK_SNAPSHOT: u32 = 1;
/// Chunk kind: the writer closed the file cleanly (empty payload).
pub const CHUNK_END: u32 = 2;
/// Chunk kind: a totals-only sample (smaps_rollup and VmPTE) taken by
/// `vmmap watch` between full snapshots.
pub const CHUNK_SAMPLE: u32 = 3;
/// Chunk kind: one message of a traced run (see [the crate root](crate)),
/// written by the preload agent; optional, so snapshot readers skip it.
pub const CHUNK_TRACE: u32 = 4;
/// Chunk kind: symbols resolved for a traced run's return addresses,
/// appended by `vmmap trace` so that the next open needs no debug files
/// (zstd-compressed MessagePack of `[CachedModule]`, see
/// `vmmap_trace::symbols`); optional.
pub const CHUNK_SYMBOLS: u32 = 5;
/// Chunk kind: every free of a traced run tied to the block it released,
/// appended by `vmmap run` at the program's exit so that an analysis
/// needs no map of live blocks (`vmmap_trace::frees`); optional.
pub const CHUNK_FREES: u32 = 6;
/// Chunk kinds with this bit set must be understood to load the file.
pub const CHUNK_REQUIRED: u32 = 0x8000_0000;

/// The 16-byte file header.
pub fn file_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// One chunk, header and payload, ready for a single `write`: the agent
/// appends these to a file the launcher also appends to (`O_APPEND` keeps
/// whole writes apart).
pub fn chunk_bytes(kind: u32, payload: &[u8], raw_len: usize) -> io::Result<Vec<u8>> {
    let h = chunk_header(kind, &[payload], raw_len)?;
    let mut buf = Vec::with_capacity(16 + payload.len());
    buf.extend_from_slice(&h);
    buf.extend_from_slice(payload);
    Ok(buf)
}

/// The 16-byte header of a chunk whose payload is `parts` concatenated,
/// for writers that send header and parts in one `writev` without copying.
pub fn chunk_header(kind: u32, parts: &[&[u8]], raw_len: usize) -> io::Result<[u8; 16]> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let stored = u32::try_from(len).map_err(|_| io::Error::other("chunk larger than 4 GiB"))?;
    let raw = u32::try_from(raw_len).map_err(|_| io::Error::other("chunk larger than 4 GiB"))?;
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&kind.to_le_bytes());
    h[4..8].copy_from_slice(&stored.to_le_bytes());
    h[8..12].copy_from_slice(&raw.to_le_bytes());
    let mut c = crc32fast::Hasher::new();
    c.update(&h[..12]);
    for p in parts {
        c.update(p);
    }
    h[12..16].copy_from_slice(&c.finalize().to_le_bytes());
    Ok(h)
}
