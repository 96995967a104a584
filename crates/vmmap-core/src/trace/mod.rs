//! Traced runs: what the preload agent of `vmmap run` records, and the
//! decoder that turns a file's trace chunks back into events.

pub mod address;
pub mod analysis;
pub mod calltree;
pub mod decode;
pub mod export;
pub mod heap;
pub mod launch;
pub mod owners;
pub mod region_owners;
pub mod scan;
pub mod summary;
pub mod supervise;
pub mod symbol_cache;
pub mod symbols;
pub mod synthetic;
pub mod wire;

pub use decode::{Decoder, Event, Record, TraceError, TraceInfo};
pub use summary::{summarize, Summary};
