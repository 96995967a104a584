//! The native file format: one or more snapshots of one process, written
//! append-only in self-checking chunks, so that a recording cut off by a
//! crash, a full disk or SIGKILL still loads up to its last complete
//! snapshot. `docs/format.md` is the specification; this module is its
//! reference implementation.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! file   = header chunk*
//! header = magic "VMMAPSNP" (8) | version u16 | flags u16 | reserved u32
//! chunk  = kind u32 | stored_len u32 | raw_len u32 | crc32 u32 | payload
//! ```
//!
//! `crc32` (IEEE) covers `kind`, `stored_len`, `raw_len` and the payload,
//! so a torn or flipped chunk is detected. A snapshot chunk's payload is
//! the [`Snapshot`] in MessagePack with named fields, zstd-compressed.
//! Chunk kinds with the high bit clear can be skipped by a reader that does
//! not know them; an unknown kind with the high bit set stops the load.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::model::Snapshot;
use crate::proc::smaps::SmapsFields;

/// The container pieces the preload agent writes too; they live in the
/// wire crate so that the agent does not depend on this one.
pub use vmmap_wire::container::{
    chunk_bytes, chunk_header, file_header, CHUNK_END, CHUNK_FREES, CHUNK_REQUIRED, CHUNK_SAMPLE,
    CHUNK_SNAPSHOT, CHUNK_SYMBOLS, CHUNK_TRACE, MAGIC, VERSION,
};

/// The process-wide totals at one instant, without the region list: what
/// `vmmap watch` records between full snapshots, cheaply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When, in nanoseconds since the Unix epoch.
    pub(crate) taken_at_unix_ns: u64,
    /// `smaps_rollup`.
    pub rollup: SmapsFields,
    /// `VmPTE`, when the kernel gives it.
    pub(crate) page_table_bytes: Option<u64>,
}

/// Largest raw (decompressed) payload of a snapshot or sample chunk, and
/// largest stored chunk: a 60,000-region snapshot is 19 MB raw, so this is
/// fifty such snapshots at once. A declared size is checked against it
/// before anything is reserved (docs/format.md, "Limits").
pub(crate) const MAX_RAW: u32 = 1 << 30;

/// Largest ratio of a chunk's raw size to its stored size: the
/// 60,000-region fixture compresses 131 to 1, and a zstd frame of zeros
/// claims 30,000 to 1. With it, what a chunk decodes into is bounded by
/// the file's own size, whatever its header claims.
pub(crate) const MAX_RATIO: u64 = 1024;

/// Largest `.mmp` file read: VMMap writes about 300 bytes per region (a
/// 60,000-region export is 18 MB, twice that in UTF-16); the file is
/// parsed in memory, so input that never ends (a device, a FIFO) stops
/// here.
pub(crate) const MAX_MMP: u64 = 64 << 20;

/// Why a file could not be read, or where reading stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not a vmmap file at all.
    #[error("not a vmmap file (neither the native format's VMMAPSNP magic nor VMMap .mmp XML at the start)")]
    NotVmmap,
    /// A device: never opened (opening one may act on it).
    #[error(
        "not a vmmap file but a device, which vmmap does not open (opening one may act on it)"
    )]
    Device,
    /// A VMMap `.mmp` file that cannot be read.
    #[error(transparent)]
    Mmp(#[from] crate::mmp::MmpError),
    /// Written by a newer vmmap.
    #[error("file format version {found} is newer than this vmmap reads (up to {supported}); upgrade vmmap")]
    NewerVersion {
        /// Version in the file.
        found: u16,
        /// Newest version this build reads.
        supported: u16,
    },
    /// The file ends inside a chunk (a recording cut off).
    #[error("the file ends inside a chunk at byte {offset} (the recording was cut off)")]
    Truncated {
        /// Where the incomplete chunk starts.
        offset: u64,
    },
    /// A chunk fails its checksum or does not decode.
    #[error("chunk at byte {offset} is corrupt: {reason}")]
    Corrupt {
        /// Where the chunk starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A required chunk kind this build does not know.
    #[error(
        "chunk at byte {offset} has kind {kind:#x}, which this vmmap does not know; upgrade vmmap"
    )]
    UnknownRequired {
        /// Where the chunk starts.
        offset: u64,
        /// Its kind.
        kind: u32,
    },
    /// A snapshot whose content no process can have (regions that end
    /// before they start, overlap, or are out of order; figures past 64
    /// bits): the file was crafted or written by a broken tool.
    #[error("chunk at byte {offset} holds an impossible snapshot: {why}")]
    Impossible {
        /// Where the chunk starts.
        offset: u64,
        /// What is impossible, and in which region.
        why: crate::validate::Impossible,
    },
    /// An `.mmp` input larger than [`MAX_MMP`].
    #[error("the .mmp input is larger than {} MiB, the most vmmap reads (docs/mmp.md)", MAX_MMP >> 20)]
    TooLarge,
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a load recovered.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every intact snapshot, in file order.
    pub snapshots: Vec<Snapshot>,
    /// Every intact totals-only sample, in file order.
    pub samples: Vec<Sample>,
    /// The payloads of the trace chunks, in file order (empty when the
    /// loader was asked not to keep them: see [`Loaded::traced`]).
    pub trace: Vec<Vec<u8>>,
    /// The file holds trace chunks (a traced run), kept or not.
    pub traced: bool,
    /// Whether the writer closed the file cleanly.
    pub complete: bool,
    /// Where and why reading stopped early, if it did; the snapshots
    /// before that point are all there.
    pub problem: Option<FormatError>,
}

/// Writes snapshots to a file, one self-checking chunk each.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    /// One compression context for every chunk, made at the first: a
    /// fresh one per snapshot allocated and cleared its match tables each
    /// time (about 0.8 MiB at level 3, new pages every time), which was a
    /// fifth of `vmmap run`'s own CPU at one snapshot a second. A reused
    /// context keeps its tables and continues its window instead.
    packer: Option<zstd::bulk::Compressor<'static>>,
    /// The compressed chunk, reused likewise.
    packed: Vec<u8>,
}

/// zstd's level for snapshots and samples.
const SNAPSHOT_LEVEL: i32 = 3;

impl<W: Write> Writer<W> {
    /// Writes the header.
    pub fn new(mut out: W) -> io::Result<Writer<W>> {
        out.write_all(&file_header())?;
        out.flush()?;
        Ok(Writer {
            out,
            written: 16,
            packer: None,
            packed: Vec::new(),
        })
    }

    /// Appends one snapshot and flushes it, so that it survives a crash of
    /// the writer from here on.
    pub fn append(&mut self, snap: &Snapshot) -> io::Result<()> {
        let raw = rmp_serde::to_vec_named(snap).map_err(io::Error::other)?;
        self.append_packed(CHUNK_SNAPSHOT, &raw)
    }

    /// Appends a totals-only sample.
    pub fn append_sample(&mut self, sample: &Sample) -> io::Result<()> {
        let raw = rmp_serde::to_vec_named(sample).map_err(io::Error::other)?;
        self.append_packed(CHUNK_SAMPLE, &raw)
    }

    /// Compresses `raw` as one zstd frame and appends it as a `kind` chunk.
    fn append_packed(&mut self, kind: u32, raw: &[u8]) -> io::Result<()> {
        let packer = match &mut self.packer {
            Some(p) => p,
            None => self
                .packer
                .insert(zstd::bulk::Compressor::new(SNAPSHOT_LEVEL)?),
        };
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        packed.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        let done = packer.compress_to_buffer(raw, &mut packed);
        let result = done.and_then(|_| self.chunk(kind, &packed, raw.len()));
        self.packed = packed;
        result
    }

    /// Marks the file as cleanly closed and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.chunk(CHUNK_END, &[], 0)?;
        Ok(self.out)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Appends one trace message as a [`CHUNK_TRACE`] chunk.
    pub fn append_trace(&mut self, message: &[u8]) -> io::Result<()> {
        self.chunk(CHUNK_TRACE, message, message.len())
    }

    /// Appends a chunk of another kind (one that the writer of its
    /// payload defines, such as [`CHUNK_FREES`]).
    pub fn append_chunk(&mut self, kind: u32, payload: &[u8], raw_len: usize) -> io::Result<()> {
        self.chunk(kind, payload, raw_len)
    }

    fn chunk(&mut self, kind: u32, payload: &[u8], raw_len: usize) -> io::Result<()> {
        // One write of header and payload together, then flush: a reader
        // never sees a header without its payload unless the writer died.
        let buf = chunk_bytes(kind, payload, raw_len)?;
        self.out.write_all(&buf)?;
        self.out.flush()?;
        self.written += buf.len() as u64;
        Ok(())
    }
}

/// Reads a file's chunks of one kind one at a time, with memory for one
/// chunk: `vmmap trace` on a multi-gigabyte trace must not load it whole.
pub struct ChunkStream<R: Read> {
    r: R,
    kind: u32,
    /// A second kind to return (0: none).
    extra_kind: u32,
    buf: Vec<u8>,
    offset: u64,
    /// Why reading stopped early, if it did (everything before is good).
    pub problem: Option<FormatError>,
}

impl ChunkStream<std::io::BufReader<std::fs::File>> {
    /// Opens `path` ([`open_input`]: a file or a pipe, never a device)
    /// and checks its header.
    pub fn open(path: &std::path::Path, kind: u32) -> Result<Self, FormatError> {
        let f = open_input(path)?;
        ChunkStream::new(std::io::BufReader::with_capacity(1 << 20, f), kind)
    }

    /// The (device, inode) of the file being read: the very file, whatever
    /// happened to its name since it was opened.
    pub fn file_identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = self.r.get_ref().metadata().ok()?;
        Some((m.dev(), m.ino()))
    }
}

impl<R: Read> ChunkStream<R> {
    /// Reads and checks the file header from `r`.
    pub fn new(mut r: R, kind: u32) -> Result<Self, FormatError> {
        let mut h = [0u8; 16];
        let mut got = 0;
        while got < 16 {
            match r.read(&mut h[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if got < 8 || h[..8] != MAGIC {
            return Err(FormatError::NotVmmap);
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version > VERSION {
            return Err(FormatError::NewerVersion {
                found: version,
                supported: VERSION,
            });
        }
        let problem = (got < 16).then_some(FormatError::Truncated { offset: 0 });
        Ok(ChunkStream {
            r,
            kind,
            extra_kind: 0,
            buf: Vec::new(),
            offset: 16,
            problem,
        })
    }

    /// Also returns chunks of kind `kind` (see [`ChunkStream::next_chunk`]).
    pub fn with_extra_kind(mut self, kind: u32) -> Self {
        self.extra_kind = kind;
        self
    }

    /// The next payload of the chosen kind, or None at the end (or at the
    /// first damage, recorded in [`ChunkStream::problem`]).
    pub fn next_payload(&mut self) -> Option<&[u8]> {
        self.next_chunk().map(|c| c.1)
    }

    /// The next chunk of the chosen kind or the extra kind, with its kind.
    pub fn next_chunk(&mut self) -> Option<(u32, &[u8])> {
        loop {
            if self.problem.is_some() {
                return None;
            }
            let offset = self.offset;
            let mut h = [0u8; 16];
            match self.r.read(&mut h[..1]) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.problem = Some(FormatError::Io(e));
                    return None;
                }
            }
            if self.r.read_exact(&mut h[1..]).is_err() {
                self.problem = Some(FormatError::Truncated { offset });
                return None;
            }
            let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            let (kind, stored, crc) = (word(0), word(4) as usize, word(12));
            if stored > MAX_RAW as usize {
                self.problem = Some(FormatError::Corrupt {
                    offset,
                    reason: format!("declared size {stored} is implausible"),
                });
                return None;
            }
            // Read as it comes rather than reserved from the header: a
            // damaged length costs what the file holds, not what it claims.
            self.buf.clear();
            match (&mut self.r).take(stored as u64).read_to_end(&mut self.buf) {
                Ok(n) if n == stored => {}
                Ok(_) => {
                    self.problem = Some(FormatError::Truncated { offset });
                    return None;
                }
                Err(e) => {
                    self.problem = Some(FormatError::Io(e));
                    return None;
                }
            }
            self.offset += 16 + stored as u64;
            if checksum(&h[..12], &self.buf) != crc {
                self.problem = Some(FormatError::Corrupt {
                    offset,
                    reason: "checksum mismatch".into(),
                });
                return None;
            }
            if kind == self.kind || (kind == self.extra_kind && kind != 0) {
                return Some((kind, &self.buf));
            }
        }
    }
}

fn checksum(head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(payload);
    h.finalize()
}

/// Loads every intact snapshot from `bytes` (sans-IO: the caller reads the
/// file). Fails only if the file is not a vmmap file or is from a newer
/// version; any later problem is reported in [`Loaded::problem`] with all
/// snapshots before it.
pub fn load(bytes: &[u8]) -> Result<Loaded, FormatError> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(FormatError::NotVmmap);
    }
    if bytes.len() < 16 {
        return Ok(Loaded {
            problem: Some(FormatError::Truncated { offset: 0 }),
            ..Loaded::default()
        });
    }
    check_version(bytes)?;
    let mut out = Loaded::default();
    let mut pos = 16usize;
    while pos < bytes.len() {
        let offset = pos as u64;
        let Some(h) = bytes.get(pos..pos + 16) else {
            out.problem = Some(FormatError::Truncated { offset });
            break;
        };
        let stored = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let end = pos + 16 + stored;
        let Some(payload) = bytes.get(pos + 16..end) else {
            out.problem = Some(FormatError::Truncated { offset });
            break;
        };
        pos = end;
        if !take_chunk(&mut out, offset, h, payload, true)? {
            break;
        }
    }
    Ok(out)
}

fn check_version(head: &[u8]) -> Result<(), FormatError> {
    let version = u16::from_le_bytes([head[8], head[9]]);
    if version > VERSION {
        return Err(FormatError::NewerVersion {
            found: version,
            supported: VERSION,
        });
    }
    Ok(())
}

/// Checks one chunk (`head` is its 16-byte header) and adds what it holds
/// to `out`; false when reading must stop ([`Loaded::problem`] says why).
/// A snapshot with impossible content fails the whole load: no crash or
/// full disk writes one with a good checksum.
fn take_chunk(
    out: &mut Loaded,
    offset: u64,
    head: &[u8],
    payload: &[u8],
    keep_trace: bool,
) -> Result<bool, FormatError> {
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let (kind, raw, crc) = (word(0), word(8), word(12));
    if checksum(&head[..12], payload) != crc {
        out.problem = Some(FormatError::Corrupt {
            offset,
            reason: "checksum mismatch".into(),
        });
        return Ok(false);
    }
    let corrupt = |out: &mut Loaded, reason| {
        out.problem = Some(FormatError::Corrupt { offset, reason });
        Ok(false)
    };
    match kind {
        CHUNK_SAMPLE => match decode::<Sample>(payload, raw) {
            Ok(s) => out.samples.push(s),
            Err(reason) => return corrupt(out, reason),
        },
        CHUNK_SNAPSHOT => match decode::<Snapshot>(payload, raw) {
            Ok(s) => {
                crate::validate::snapshot(&s)
                    .map_err(|why| FormatError::Impossible { offset, why })?;
                out.snapshots.push(s)
            }
            Err(reason) => return corrupt(out, reason),
        },
        CHUNK_TRACE => {
            out.traced = true;
            if keep_trace {
                out.trace.push(payload.to_vec());
            }
        }
        CHUNK_END => out.complete = true,
        k if k & CHUNK_REQUIRED != 0 => {
            out.problem = Some(FormatError::UnknownRequired { offset, kind: k });
            return Ok(false);
        }
        _ => {} // an optional chunk from a newer writer
    }
    Ok(true)
}

/// Checks a zstd frame's own content size, where its writer recorded it,
/// against the size declared beside it: run before a buffer of the
/// declared size is reserved, so a damaged length cannot claim gigabytes.
pub fn frame_size_agrees(z: &[u8], declared: u64) -> Result<(), String> {
    match zstd::zstd_safe::get_frame_content_size(z) {
        Ok(Some(n)) if n != declared => {
            Err("decompressed size differs from the declared size".into())
        }
        Err(_) => Err("zstd: not a zstd frame".into()),
        _ => Ok(()),
    }
}

/// Checks a declared raw size against [`MAX_RAW`] and [`MAX_RATIO`] times
/// the stored size, before anything is reserved for it.
pub(crate) fn plausible_size(declared: u64, stored: usize) -> Result<(), String> {
    let by_ratio = (stored as u64).saturating_mul(MAX_RATIO);
    if declared > u64::from(MAX_RAW) || declared > by_ratio {
        return Err(format!(
            "declared size {declared} is implausible for {stored} stored bytes (at most {} MiB and {MAX_RATIO} times the stored size)",
            MAX_RAW >> 20
        ));
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(payload: &[u8], raw_len: u32) -> Result<T, String> {
    plausible_size(u64::from(raw_len), payload.len())?;
    frame_size_agrees(payload, u64::from(raw_len))?;
    let raw =
        zstd::bulk::decompress(payload, raw_len as usize).map_err(|e| format!("zstd: {e}"))?;
    if raw.len() != raw_len as usize {
        return Err("decompressed size differs from the declared size".into());
    }
    rmp_serde::from_slice(&raw).map_err(|e| format!("payload does not decode: {e}"))
}

/// Decodes one [`CHUNK_SNAPSHOT`] payload met by a [`ChunkStream`] (whose
/// raw length is not at hand: the zstd frame carries it). Streamed, and
/// stopped at the same caps as a declared size, so memory follows what
/// the frame really holds; an impossible snapshot is refused.
pub fn snapshot_from_payload(payload: &[u8]) -> Result<Snapshot, String> {
    let cap = u64::from(MAX_RAW).min((payload.len() as u64).saturating_mul(MAX_RATIO));
    if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(payload) {
        plausible_size(n, payload.len())?;
    }
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(payload)
        .and_then(|d| d.take(cap + 1).read_to_end(&mut raw))
        .map_err(|e| format!("zstd: {e}"))?;
    if raw.len() as u64 > cap {
        return Err(format!(
            "decompresses to more than {cap} bytes (at most {} MiB and {MAX_RATIO} times the stored size)",
            MAX_RAW >> 20
        ));
    }
    let snap: Snapshot =
        rmp_serde::from_slice(&raw).map_err(|e| format!("payload does not decode: {e}"))?;
    crate::validate::snapshot(&snap).map_err(|e| format!("impossible snapshot: {e}"))?;
    Ok(snap)
}

/// Loads the native format or, when the bytes are XML, a VMMap `.mmp`
/// file (every snapshot in it; an `.mmp` file has no samples and is
/// complete or an error).
pub(crate) fn load_any(bytes: &[u8]) -> Result<Loaded, FormatError> {
    if !bytes.starts_with(&MAGIC) && crate::mmp::sniff(bytes) {
        if bytes.len() as u64 > MAX_MMP {
            return Err(FormatError::TooLarge);
        }
        return Ok(Loaded {
            snapshots: crate::mmp::parse(bytes)?,
            complete: true,
            ..Loaded::default()
        });
    }
    load(bytes)
}

/// Loads a file: the native format or VMMap `.mmp` ([`load_any`]), with
/// its trace chunks.
pub fn load_file(path: &std::path::Path) -> Result<Loaded, FormatError> {
    read_file(path, true)
}

/// [`load_file`] without keeping the trace chunks ([`Loaded::traced`]
/// still tells whether there were some): what every view that streams the
/// trace from the file again wants, since a traced run's trace is most of
/// its file.
pub fn load_file_snapshots(path: &std::path::Path) -> Result<Loaded, FormatError> {
    read_file(path, false)
}

/// Opens a file named as input ([`crate::regular::open_input`]): a
/// device is [`FormatError::Device`], never opened.
pub fn open_input(path: &std::path::Path) -> Result<std::fs::File, FormatError> {
    crate::regular::open_input(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::Unsupported => FormatError::Device,
        _ => FormatError::Io(e),
    })
}

/// Reads a native file chunk by chunk (memory: what is kept, plus the
/// largest chunk), or a whole `.mmp` file of at most [`MAX_MMP`] bytes.
/// The first bytes decide before the rest is read, so a device or a huge
/// file of anything else is refused at once.
fn read_file(path: &std::path::Path, keep_trace: bool) -> Result<Loaded, FormatError> {
    let file = open_input(path)?;
    // A regular file's length bounds every chunk before it is read; a
    // pipe has none, and is read as it comes.
    let mut file_len = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    let mut head = [0u8; 64];
    let got = read_full(&mut r, &mut head)?;
    let head = &head[..got];
    if got < 16 || head[..8] != MAGIC {
        if head.starts_with(&MAGIC) || !crate::mmp::sniff(head) {
            // A cut-off native header, or neither format: load_any's own
            // errors.
            return load_any(head);
        }
        let mut bytes = head.to_vec();
        r.take(MAX_MMP + 1 - got as u64).read_to_end(&mut bytes)?;
        return load_any(&bytes);
    }
    check_version(head)?;
    let mut out = Loaded::default();
    let mut offset = 16u64;
    let mut payload = Vec::new();
    // The bytes read past the file header, then the rest of the file.
    let mut r = std::io::Read::chain(&head[16..], r);
    loop {
        let mut h = [0u8; 16];
        match read_full(&mut r, &mut h)? {
            0 => break,
            16 => {}
            _ => {
                out.problem = Some(FormatError::Truncated { offset });
                break;
            }
        }
        let stored = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if stored > MAX_RAW as usize {
            out.problem = Some(FormatError::Corrupt {
                offset,
                reason: format!("chunk length {stored} is implausible"),
            });
            break;
        }
        let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let end = offset + 16 + stored as u64;
        if file_len.is_some_and(|len| end > len) {
            // A file still being written (a traced run) may have grown.
            file_len = Some(r.get_ref().1.get_ref().metadata()?.len());
            if file_len.is_some_and(|len| end > len) {
                out.problem = Some(FormatError::Truncated { offset });
                break;
            }
        }
        // Reserved only when the file is known to hold it, else read as it
        // comes: a damaged length costs what the file holds, not what it
        // claims.
        payload.clear();
        if file_len.is_some() {
            payload.reserve_exact(stored);
        }
        if (&mut r).take(stored as u64).read_to_end(&mut payload)? < stored {
            out.problem = Some(FormatError::Truncated { offset });
            break;
        }
        let keep = keep_trace || kind != CHUNK_TRACE;
        if !take_chunk(&mut out, offset, &h, &payload, keep)? {
            break;
        }
        offset += 16 + stored as u64;
    }
    Ok(out)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::testutil::FakeInspector;
    use crate::classify::{classify, Context};
    use crate::collect::{self, Options};
    use crate::proc::smaps::{Field, Mapping};
    use proptest::prelude::*;

    fn own_snapshot() -> Snapshot {
        collect::snapshot(std::process::id(), &Options::default())
            .expect("snapshot of the test process")
    }

    fn file(snaps: &[&Snapshot], finish: bool) -> (Vec<u8>, Vec<usize>) {
        let mut w = Writer::new(Vec::new()).unwrap();
        let mut ends = Vec::new();
        for s in snaps {
            w.append(s).unwrap();
            ends.push(w.bytes_written() as usize);
        }
        let bytes = if finish { w.finish().unwrap() } else { w.out };
        (bytes, ends)
    }

    #[test]
    fn real_snapshot_round_trips() {
        let a = own_snapshot();
        let b = own_snapshot();
        let (bytes, _) = file(&[&a, &b], true);
        let l = load(&bytes).unwrap();
        assert!(l.complete && l.problem.is_none());
        assert_eq!(l.snapshots, vec![a, b]);
    }

    #[test]
    fn every_truncation_keeps_the_complete_snapshots() {
        let a = own_snapshot();
        let (bytes, ends) = file(&[&a, &a, &a], true);
        // Every byte near a chunk boundary, and a stride elsewhere.
        let near = |c: usize| {
            std::iter::once(16)
                .chain(ends.iter().copied())
                .any(|e| c.abs_diff(e) <= 24)
        };
        for cut in (0..bytes.len()).filter(|&c| c < 40 || near(c) || c % 97 == 0) {
            match load(&bytes[..cut]) {
                Err(FormatError::NotVmmap) => assert!(cut < 8),
                Err(e) => panic!("cut {cut}: {e}"),
                Ok(l) => {
                    let whole = ends.iter().filter(|&&e| e <= cut).count();
                    assert_eq!(l.snapshots.len(), whole, "cut at {cut}");
                    assert!(!l.complete);
                    assert_eq!(
                        l.problem.is_some(),
                        !ends.contains(&cut) && cut != 16,
                        "cut at {cut}"
                    );
                }
            }
        }
    }

    /// Reading from a file chunk by chunk recovers exactly what loading the
    /// same bytes does, at every cut and with trace chunks kept or not.
    #[test]
    fn reading_a_file_by_chunks_matches_loading_its_bytes() {
        let a = own_snapshot();
        let mut w = Writer::new(Vec::new()).unwrap();
        w.append(&a).unwrap();
        w.append_trace(b"trace message one").unwrap();
        w.append(&a).unwrap();
        w.append_trace(b"two").unwrap();
        let bytes = w.finish().unwrap();
        let path = std::env::temp_dir().join(format!("vmmap-read-{}.vmmap", std::process::id()));
        let step = (bytes.len() / 300).max(1);
        for cut in (0..=bytes.len()).filter(|&c| c < 48 || c % step == 0 || c == bytes.len()) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let whole = load_any(&bytes[..cut]);
            for keep in [true, false] {
                let read = read_file(&path, keep);
                match (&whole, &read) {
                    (Ok(x), Ok(y)) => {
                        assert_eq!(x.snapshots, y.snapshots, "cut {cut}");
                        assert_eq!(x.complete, y.complete, "cut {cut}");
                        assert_eq!(x.traced, y.traced, "cut {cut}");
                        assert_eq!(
                            x.problem.as_ref().map(|p| p.to_string()),
                            y.problem.as_ref().map(|p| p.to_string()),
                            "cut {cut}"
                        );
                        if keep {
                            assert_eq!(x.trace, y.trace, "cut {cut}");
                        } else {
                            assert!(y.trace.is_empty());
                        }
                    }
                    (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "cut {cut}"),
                    _ => panic!("cut {cut}: {whole:?} vs {read:?}"),
                }
            }
        }
        let full = load_file_snapshots(&path).unwrap();
        assert!(full.traced && full.trace.is_empty() && full.complete);
        assert_eq!(load_file(&path).unwrap().trace.len(), 2);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn flipped_bytes_are_caught_and_never_panic() {
        let a = own_snapshot();
        let (bytes, ends) = file(&[&a, &a], true);
        let step = (bytes.len() / 500).max(1);
        for i in (16..bytes.len()).step_by(step) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let l = load(&b).unwrap();
            let first_bad = ends.iter().filter(|&&e| e <= i).count();
            assert_eq!(l.snapshots.len(), first_bad, "flip at {i}");
            assert!(
                l.problem.is_some() || i >= *ends.last().unwrap(),
                "flip at {i} unnoticed"
            );
        }
    }

    /// A payload whose declared size disagrees with its zstd frame is
    /// refused before anything is reserved for it.
    #[test]
    fn a_declared_size_must_match_the_frame() {
        let raw = rmp_serde::to_vec(&7u32).unwrap();
        let z = zstd::bulk::compress(&raw, 1).unwrap();
        assert_eq!(decode::<u32>(&z, raw.len() as u32), Ok(7));
        let e = decode::<u32>(&z, z.len() as u32 * 2).unwrap_err();
        assert!(e.contains("differs"), "{e}");
        let e = decode::<u32>(&z, MAX_RAW).unwrap_err();
        assert!(e.contains("implausible"), "{e}");
        let e = decode::<u32>(b"plain bytes", 11).unwrap_err();
        assert!(e.contains("zstd"), "{e}");
    }

    #[test]
    fn header_errors() {
        assert!(matches!(load(b"#!/bin/sh\n"), Err(FormatError::NotVmmap)));
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&(VERSION + 1).to_le_bytes());
        h.extend_from_slice(&[0; 6]);
        assert!(
            matches!(load(&h), Err(FormatError::NewerVersion { found, .. }) if found == VERSION + 1)
        );
        // An unknown optional chunk is skipped; an unknown required one stops.
        let mut w = Writer::new(Vec::new()).unwrap();
        w.chunk(0x77, b"future", 6).unwrap();
        w.append(&own_snapshot()).unwrap();
        w.chunk(CHUNK_REQUIRED | 9, b"", 0).unwrap();
        let l = load(&w.out).unwrap();
        assert_eq!(l.snapshots.len(), 1);
        assert!(
            matches!(l.problem, Some(FormatError::UnknownRequired { kind, .. }) if kind == CHUNK_REQUIRED | 9)
        );
    }

    fn mapping() -> impl Strategy<Value = Mapping> {
        (
            0u64..1 << 20,
            1u64..64,
            prop::sample::select(vec![*b"rw-p", *b"r-xp", *b"---p", *b"rw-s", *b"r--p"]),
            prop::sample::select(vec![
                "",
                "[heap]",
                "[stack]",
                "/usr/lib/libx.so",
                "[anon:name]",
                "/memfd:m (deleted)",
            ]),
            prop::collection::vec(0u64..1 << 30, 22),
            "[a-z ]{0,12}",
        )
            .prop_map(|(page, pages, perms, path, vals, flags)| {
                let mut m = Mapping {
                    start: page << 12,
                    end: (page + pages) << 12,
                    perms,
                    inode: u64::from(path.starts_with('/')),
                    path: path.into(),
                    vm_flags: flags.trim().into(),
                    thp_eligible: Some(page % 2 == 0),
                    ..Mapping::default()
                };
                for (f, v) in Field::PER_VMA.iter().zip(vals) {
                    if v % 7 != 0 {
                        m.fields.set(*f, v * 1024);
                    }
                }
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn classified_snapshots_round_trip(mut maps in prop::collection::vec(mapping(), 0..40)) {
            maps.sort_by_key(|m| m.start);
            let mut cursor = 0;
            maps.retain(|m| { let ok = m.start >= cursor; if ok { cursor = m.end; } ok });
            let mut snap = own_snapshot();
            let ctx = Context { pid: 1, pointer_width: 8, page_size: 4096, threads: &snap.process.threads };
            let (regions, warnings) = classify(maps, &ctx, &mut FakeInspector::default());
            snap.regions = regions;
            snap.warnings = warnings;
            let (bytes, _) = file(&[&snap], true);
            let l = load(&bytes).unwrap();
            prop_assert_eq!(l.snapshots, vec![snap]);
        }
    }
}
