//! Traced runs (`vmmap run`, `vmmap trace`): the decoder that turns the
//! trace chunks the preload agent wrote back into events, and what is
//! built from them (summaries, call trees, the owners of regions,
//! symbols, flame graph and pprof exports, the live heap over time), and
//! the launcher that starts a traced program.
//!
//! It sits on `vmmap-core` (files, snapshots, the model) and
//! `vmmap-wire` (the bytes the agent writes); the heavy dependencies of
//! symbolisation (blazesym) and flame graphs (inferno) are here, not in
//! the core. See `docs/architecture.md`.

pub mod address;
pub mod analysis;
pub mod attach;
pub mod attach_record;
pub mod calltree;
mod debug_file;
pub mod decode;
pub mod export;
pub mod frees;
pub mod handover;
pub mod heap;
pub mod launch;
pub mod owners;
pub mod region_owners;
pub mod scan;
pub mod summary;
pub mod supervise;
pub mod symbol_cache;
pub mod symbols;
#[cfg(test)]
mod test_records;
pub mod timeline;

/// The wire format the agent writes, from its own crate (the agent
/// depends on it alone).
pub use vmmap_wire as wire;

pub use decode::{Decoder, Event, Record, TraceError, TraceInfo};
pub use summary::{summarize, Summary};
