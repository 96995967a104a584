//! Human-readable sizes, written straight into a buffer: the Details table
//! of a 60,000-region process formats 800,000 numbers, so this avoids
//! `format!` and its allocations.

use std::fmt::Write;

/// Appends `v` bytes as `4K`, `132K`, `1.2M`, `8.0G` (binary units; one
/// decimal below 10), or as exact bytes when `exact`. Zero is blank, as in
/// VMMap.
pub fn push_size(out: &mut String, v: u64, exact: bool) {
    if v == 0 {
        return;
    }
    if exact {
        let _ = write!(out, "{v}");
        return;
    }
    const UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    if v < 1024 {
        let _ = write!(out, "{v}B");
        return;
    }
    let mut unit = 0;
    let mut scaled = v as f64 / 1024.0;
    while scaled >= 1023.95 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if scaled < 9.95 && (v % (1u64 << (10 * (unit + 1)))) != 0 {
        let _ = write!(out, "{scaled:.1}{}", UNITS[unit]);
    } else {
        let _ = write!(out, "{:.0}{}", scaled, UNITS[unit]);
    }
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
        assert_eq!(size(4096, true), "4096");
    }
}
