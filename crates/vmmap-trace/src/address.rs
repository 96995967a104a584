//! Which recorded operations touched one address: the allocation that
//! covers it (and its free), the mapping calls on its range. This is
//! address lookup for a traced run.

use std::collections::HashMap;

use super::decode::{Event, Record};

/// Feeds on records in time order and tells which concern an address.
#[derive(Debug)]
pub struct AddressFilter {
    addr: u64,
    live: HashMap<u64, u64>,
}

impl AddressFilter {
    /// A filter for `addr`.
    pub fn new(addr: u64) -> AddressFilter {
        AddressFilter {
            addr,
            live: HashMap::new(),
        }
    }

    fn inside(&self, start: u64, len: u64) -> bool {
        start <= self.addr && self.addr - start < len
    }

    /// Whether `r` made, released or changed memory holding the address.
    /// Blocks are remembered while live, so a free is matched by the size
    /// its allocation had.
    pub fn matches(&mut self, r: &Record) -> bool {
        match &r.event {
            Event::Alloc { ptr, size, .. } => {
                self.live.insert(*ptr, *size);
                self.inside(*ptr, (*size).max(1))
            }
            Event::Realloc { old, new, size, .. } => {
                let was = self
                    .live
                    .remove(old)
                    .is_some_and(|s| self.inside(*old, s.max(1)));
                if *new != 0 {
                    self.live.insert(*new, *size);
                }
                was || (*new != 0 && self.inside(*new, (*size).max(1)))
            }
            Event::Free { ptr } => self
                .live
                .remove(ptr)
                .is_some_and(|s| self.inside(*ptr, s.max(1))),
            Event::Mmap { addr, len, .. }
            | Event::Munmap { addr, len, .. }
            | Event::Mprotect { addr, len, .. }
            | Event::Madvise { addr, len, .. } => self.inside(*addr, *len),
            Event::Mremap {
                old,
                old_len,
                new,
                new_len,
                ..
            } => self.inside(*old, *old_len) || self.inside(*new, *new_len),
            Event::Brk { old, new, .. } => self.inside((*old).min(*new), old.abs_diff(*new)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::{malloc, record};

    fn rec(event: Event) -> Record {
        record(0, 0, 0, event)
    }

    #[test]
    fn the_block_holding_the_address_and_its_free() {
        let mut f = AddressFilter::new(0x1010);
        let alloc = |ptr, size| rec(malloc(ptr, size, 1));
        assert!(!f.matches(&alloc(0x1000, 16)), "ends just before");
        assert!(!f.matches(&rec(Event::Free { ptr: 0x1000 })));
        assert!(f.matches(&alloc(0x1000, 17)));
        assert!(
            !f.matches(&rec(Event::Free { ptr: 0x2000 })),
            "unknown block"
        );
        assert!(f.matches(&rec(Event::Free { ptr: 0x1000 })));
        assert!(f.matches(&rec(Event::Mmap {
            addr: 0x1000,
            len: 4096,
            prot: 3,
            flags: 0x22,
            fd: -1,
            offset: 0,
            stack: 2
        })));
        assert!(f.matches(&rec(Event::Brk {
            old: 0x2000,
            new: 0x1000,
            sbrk: true,
            stack: 0
        })));
    }
}
