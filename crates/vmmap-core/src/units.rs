//! Human-readable sizes, written straight into a buffer: a Details table
//! of a 60,000-region process formats 800,000 numbers, so this avoids
//! `format!` and its allocations. Shared by every front end.

use std::fmt::Write;

/// Appends `v` bytes as `4K`, `132K`, `1.2M`, `8.0G` (binary units; one
/// decimal below 10 unless exact), or as exact bytes when `exact`. Zero is
/// blank, as in VMMap. Integer arithmetic only: float formatting was a
/// third of the cost of printing a 60,000-region Details table. Into any
/// [`Write`], so that a table cell can be formatted on the stack; the
/// integers go through `itoa`, without `fmt`'s machinery.
pub fn push_size<W: Write + ?Sized>(out: &mut W, v: u64, exact: bool) {
    if v == 0 {
        return;
    }
    let mut digits = itoa::Buffer::new();
    if exact || v < 1024 {
        let _ = out.write_str(digits.format(v));
        if !exact {
            let _ = out.write_char('B');
        }
        return;
    }
    const UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    let v = u128::from(v);
    let mut unit = 0;
    // Smallest unit in which the rounded value stays below 1024.
    while unit < UNITS.len() - 1 && (v + (1 << (10 * (unit + 1) - 1))) >> (10 * (unit + 1)) >= 1024
    {
        unit += 1;
    }
    let shift = 10 * (unit + 1);
    let div = 1u128 << shift;
    // Both quotients are below 10,240 here, so u64 formatting suffices
    // (u128's is several times slower).
    let tenths = ((v * 10 + div / 2) / div) as u64;
    if tenths < 100 && v % div != 0 {
        let _ = out.write_str(digits.format(tenths / 10));
        let _ = out.write_char('.');
        let _ = out.write_str(digits.format(tenths % 10));
    } else {
        let _ = out.write_str(digits.format(((v + div / 2) / div) as u64));
    }
    let _ = out.write_char(UNITS[unit]);
}

/// `push_size` into a new string.
pub fn size(v: u64, exact: bool) -> String {
    let mut s = String::new();
    push_size(&mut s, v, exact);
    s
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes() {
        assert_eq!(size(0, false), "");
        assert_eq!(size(512, false), "512B");
        assert_eq!(size(4096, false), "4K");
        assert_eq!(size(135168, false), "132K");
        assert_eq!(size(1_258_291, false), "1.2M");
        assert_eq!(size(8 << 20, false), "8M");
        assert_eq!(size(1023 * 1024 + 1000, false), "1.0M");
        assert_eq!(size((8 << 20) + 4096, false), "8.0M");
        assert_eq!(size(1023 * 1024, false), "1023K");
        assert_eq!(size(u64::MAX, false), "16E");
        assert_eq!(size(4096, true), "4096");
    }
}
