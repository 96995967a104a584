//! Sans-IO decoding of `/proc/PID/pagemap`: one little-endian u64 per
//! virtual page (Documentation/admin-guide/mm/pagemap.rst).

/// Bit 55: the page was written since the soft-dirty bits were cleared
/// (`echo 4 > /proc/PID/clear_refs`), or belongs to a VMA created since.
pub(crate) const SOFT_DIRTY: u64 = 1 << 55;
/// Bit 56: the page is mapped exclusively (by this process alone).
pub(crate) const EXCLUSIVE: u64 = 1 << 56;
/// Bit 61: a file page or shared anonymous page.
pub(crate) const FILE_OR_SHARED: u64 = 1 << 61;
/// Bit 62: the page is swapped out.
pub(crate) const SWAPPED: u64 = 1 << 62;
/// Bit 63: the page is present in RAM.
pub(crate) const PRESENT: u64 = 1 << 63;

/// Bits 0-54: the page frame number of a present page (zero unless the
/// reader has CAP_SYS_ADMIN, since Linux 4.2).
pub(crate) const PFN_MASK: u64 = (1 << 55) - 1;

/// The entries in `bytes`, whole 8-byte entries only.
pub(crate) fn entries(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|e| u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]))
}

/// The page frame number of a present entry, `None` for a page that is
/// not in RAM or whose frame number the kernel hid (0).
pub(crate) fn pfn(entry: u64) -> Option<u64> {
    let pfn = entry & PFN_MASK;
    (entry & PRESENT != 0 && entry & SWAPPED == 0 && pfn != 0).then_some(pfn)
}

/// Counts the entries in `bytes` (whole 8-byte entries only) that have
/// every bit of `mask` set.
pub(crate) fn count(bytes: &[u8], mask: u64) -> u64 {
    bytes
        .chunks_exact(8)
        .filter(|e| {
            u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]) & mask == mask
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_soft_dirty_entries() {
        let mut b = Vec::new();
        for e in [PRESENT | SOFT_DIRTY, PRESENT, SOFT_DIRTY | SWAPPED, 0] {
            b.extend_from_slice(&e.to_le_bytes());
        }
        b.push(0xff); // a partial entry is ignored
        assert_eq!(count(&b, SOFT_DIRTY), 2);
        assert_eq!(count(&b, PRESENT), 2);
        assert_eq!(count(&b, PRESENT | SOFT_DIRTY), 1);
        let e: Vec<u64> = entries(&b).collect();
        assert_eq!(e.len(), 4);
        assert_eq!(pfn(e[0]), None, "PFN hidden: reads as 0");
        assert_eq!(pfn(PRESENT | FILE_OR_SHARED | 0x1234), Some(0x1234));
        assert_eq!(pfn(SWAPPED | 0x1234), None, "a swap entry, not a frame");
    }
}
