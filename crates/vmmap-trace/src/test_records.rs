//! Decoded records for the unit tests of what reads them (the summary, the
//! frees chunk, the address filter), so that each test states only the
//! events it is about. Test-only: not part of the crate's API.

use crate::decode::{Event, Record};
use crate::wire::EventKind;

/// `event` at `tick` in module image `image`, on stream `stream` (thread
/// `1 + stream`).
pub(crate) fn record(tick: u64, image: u32, stream: u32, event: Event) -> Record {
    Record {
        tick,
        image,
        tid: 1 + stream as i32,
        stream,
        event,
    }
}

/// A `malloc` of `size` bytes at `ptr` from stack `stack`.
pub(crate) fn malloc(ptr: u64, size: u64, stack: u32) -> Event {
    Event::Alloc {
        kind: EventKind::Malloc,
        ptr,
        size,
        align: 0,
        stack,
    }
}
