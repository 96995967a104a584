//! Address lookup: which region of a snapshot holds an address, where in
//! it, and what lies around it (macOS `vmmap`'s address mode). Pure: a
//! snapshot in, references into it out.

use crate::model::{Region, Snapshot};
use crate::summary::FreeBlock;

/// What an address falls in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hit<'a> {
    /// A region holds it; `vma` is the kernel mapping (the sub-block of a
    /// group, or the region itself).
    Region {
        /// The top-level region.
        region: &'a Region,
        /// The VMA inside it that holds the address.
        vma: &'a Region,
    },
    /// No region holds it: the free gap it lies in.
    Gap(FreeBlock),
    /// Below `mmap_min_addr` or above the user address limit, where
    /// nothing can be mapped.
    Outside,
}

/// The answer for one address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lookup<'a> {
    /// The address asked for.
    pub(crate) address: u64,
    /// What holds it.
    pub hit: Hit<'a>,
    /// The last region that ends at or below the address (or below the
    /// holding region).
    pub previous: Option<&'a Region>,
    /// The first region that starts above the address (or after the
    /// holding region).
    pub next: Option<&'a Region>,
}

/// Looks `addr` up in `snap`. Regions are in address order and do not
/// overlap, so this is a binary search.
pub fn lookup(snap: &Snapshot, addr: u64) -> Lookup<'_> {
    let regions = &snap.regions;
    // Index of the first region that ends above addr.
    let i = regions.partition_point(|r| r.end <= addr);
    let previous = i.checked_sub(1).and_then(|p| regions.get(p));
    match regions.get(i).filter(|r| r.contains(addr)) {
        Some(region) => {
            let vma = region
                .vmas()
                .iter()
                .find(|v| v.contains(addr))
                .unwrap_or(region);
            Lookup {
                address: addr,
                hit: Hit::Region { region, vma },
                previous,
                next: regions.get(i + 1),
            }
        }
        None => {
            let next = regions.get(i);
            let lo = snap.kernel.mmap_min_addr;
            let hi = snap.kernel.user_address_limit;
            let hit = if addr < lo || addr >= hi {
                Hit::Outside
            } else {
                Hit::Gap(FreeBlock {
                    start: previous.map_or(lo, |p| p.end.max(lo)),
                    end: next.map_or(hi, |n| n.start.min(hi)),
                })
            };
            Lookup {
                address: addr,
                hit,
                previous,
                next,
            }
        }
    }
}

/// Parses an address as the user types it: hexadecimal with or without
/// `0x` (addresses are always shown in hex), underscores and an optional
/// trailing `h` ignored.
pub fn parse_address(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: String = t.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(&digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testutil::rw_region as region;

    fn snap() -> Snapshot {
        let group = Region::group(
            vec![region(0x20000, 0x21000), region(0x21000, 0x24000)],
            crate::model::MemoryType::Image,
            "lib".into(),
            "test".into(),
        );
        Snapshot::from_regions(
            1,
            0,
            vec![region(0x10000, 0x12000), group, region(0x30000, 0x31000)],
        )
    }

    #[test]
    fn inside_a_group_finds_the_vma() {
        let s = snap();
        let l = lookup(&s, 0x22010);
        match l.hit {
            Hit::Region { region, vma } => {
                assert_eq!((region.start, region.end), (0x20000, 0x24000));
                assert_eq!((vma.start, vma.end), (0x21000, 0x24000));
            }
            h => panic!("{h:?}"),
        }
        assert_eq!(l.previous.map(|r| r.start), Some(0x10000));
        assert_eq!(l.next.map(|r| r.start), Some(0x30000));
    }

    #[test]
    fn first_and_last_byte() {
        let s = snap();
        assert!(
            matches!(lookup(&s, 0x10000).hit, Hit::Region { region, .. } if region.start == 0x10000)
        );
        assert!(
            matches!(lookup(&s, 0x11fff).hit, Hit::Region { region, .. } if region.start == 0x10000)
        );
        assert!(
            matches!(lookup(&s, 0x12000).hit, Hit::Gap(g) if g == FreeBlock { start: 0x12000, end: 0x20000 })
        );
    }

    #[test]
    fn gaps_and_outside() {
        let s = snap();
        let l = lookup(&s, 0x2f000);
        assert_eq!(
            l.hit,
            Hit::Gap(FreeBlock {
                start: 0x24000,
                end: 0x30000
            })
        );
        assert_eq!(l.previous.map(|r| r.start), Some(0x20000));
        assert_eq!(l.next.map(|r| r.start), Some(0x30000));
        // Below the first region: the gap starts at mmap_min_addr.
        assert_eq!(
            lookup(&s, 0x5000).hit,
            Hit::Gap(FreeBlock {
                start: 0x1000,
                end: 0x10000
            })
        );
        assert!(lookup(&s, 0x5000).previous.is_none());
        // Above the last: up to the user address limit.
        let top = lookup(&s, 0x40000);
        assert_eq!(
            top.hit,
            Hit::Gap(FreeBlock {
                start: 0x31000,
                end: s.kernel.user_address_limit
            })
        );
        assert!(top.next.is_none());
        assert_eq!(lookup(&s, 0x10).hit, Hit::Outside);
        assert_eq!(lookup(&s, u64::MAX).hit, Hit::Outside);
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(parse_address("0x7ffd_1000"), Some(0x7ffd1000));
        assert_eq!(parse_address("7ffd1000"), Some(0x7ffd1000));
        assert_eq!(parse_address(" 0X10 "), Some(0x10));
        assert_eq!(parse_address("0x"), None);
        assert_eq!(parse_address("xyz"), None);
        assert_eq!(parse_address("0x1_0000_0000_0000_0000"), None);
    }
}
