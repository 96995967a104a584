//! Integers at an offset of a byte slice, in a byte order that the data
//! says in its header (ELF files, HotSpot's hsperfdata): the parsers read
//! either order with one code path. Written here rather than taken from a
//! crate (byteorder, zerocopy) because the order is only known at run
//! time, which those serve with the same branch as below.

/// A byte slice read as integers of the order `le` says.
pub(crate) struct Reader<'a> {
    /// The bytes.
    pub(crate) b: &'a [u8],
    /// Little-endian (else big-endian).
    pub(crate) le: bool,
}

impl Reader<'_> {
    /// The `N` bytes at `at`, as `from_le` or `from_be` reads them; None
    /// past the end.
    fn int<const N: usize, T>(
        &self,
        at: usize,
        from_le: fn([u8; N]) -> T,
        from_be: fn([u8; N]) -> T,
    ) -> Option<T> {
        let a: [u8; N] = self.b.get(at..at.checked_add(N)?)?.try_into().ok()?;
        Some(if self.le { from_le(a) } else { from_be(a) })
    }

    pub(crate) fn u16(&self, at: usize) -> Option<u16> {
        self.int(at, u16::from_le_bytes, u16::from_be_bytes)
    }

    pub(crate) fn u32(&self, at: usize) -> Option<u32> {
        self.int(at, u32::from_le_bytes, u32::from_be_bytes)
    }

    pub(crate) fn u64(&self, at: usize) -> Option<u64> {
        self.int(at, u64::from_le_bytes, u64::from_be_bytes)
    }

    pub(crate) fn i32(&self, at: usize) -> Option<i32> {
        self.int(at, i32::from_le_bytes, i32::from_be_bytes)
    }

    pub(crate) fn i64(&self, at: usize) -> Option<i64> {
        self.int(at, i64::from_le_bytes, i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

    #[test]
    fn either_order_and_nothing_past_the_end() {
        let b = [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe];
        let le = Reader { b: &b, le: true };
        let be = Reader { b: &b, le: false };
        assert_eq!(le.u16(0), Some(0x0201));
        assert_eq!(be.u16(0), Some(0x0102));
        assert_eq!(be.u32(0), Some(0x0102_0304));
        assert_eq!(be.i32(4), Some(-2));
        assert_eq!(le.u64(0), Some(0xfeff_ffff_0403_0201));
        assert_eq!(be.i64(0), Some(0x0102_0304_ffff_fffe));
        assert_eq!(le.u32(5), None);
        assert_eq!(le.u16(usize::MAX), None);
    }
}
