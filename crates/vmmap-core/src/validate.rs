//! Content no process can have, refused the same way whatever it was read
//! from: a region that ends before it starts or holds nothing, regions
//! that overlap or are out of address order, a sub-block outside its
//! region, figures whose totals do not fit in 64 bits. Everything
//! downstream (sizes, free gaps, totals) assumes these never happen, so a
//! crafted `.vmmap` or `.mmp` file or a captured `/proc` tree must be
//! stopped here rather than shown as "Largest 16E".
//!
//! [`range`] checks one address range against the one before it: the smaps
//! parser calls it per header line (it knows the line), [`snapshot`] per
//! region of a decoded snapshot (the file readers know the byte offset).

use std::fmt;

use crate::model::{Region, Snapshot};
use crate::proc::smaps::Field;

/// Why a range cannot follow the one before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RangeError {
    /// `end < start`.
    Backwards {
        /// First address.
        start: u64,
        /// The end given.
        end: u64,
    },
    /// `end == start`.
    Empty {
        /// Where.
        start: u64,
    },
    /// Starts inside the previous range.
    Overlaps {
        /// This range.
        this: (u64, u64),
        /// The one before it.
        prev: (u64, u64),
    },
    /// Starts before the previous range.
    OutOfOrder {
        /// This range.
        this: (u64, u64),
        /// The one before it.
        prev: (u64, u64),
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RangeError::Backwards { start, end } => {
                write!(f, "{start:#x}-{end:#x} ends before it starts")
            }
            RangeError::Empty { start } => write!(f, "{start:#x}-{start:#x} is empty"),
            RangeError::Overlaps { this, prev } => write!(
                f,
                "{:#x}-{:#x} overlaps the range before it, {:#x}-{:#x}",
                this.0, this.1, prev.0, prev.1
            ),
            RangeError::OutOfOrder { this, prev } => write!(
                f,
                "{:#x}-{:#x} is out of address order (it comes after {:#x}-{:#x})",
                this.0, this.1, prev.0, prev.1
            ),
        }
    }
}

/// Checks that `start..end` holds something and lies wholly after `prev`
/// (the range before it in the same list, if any).
pub(crate) fn range(prev: Option<(u64, u64)>, start: u64, end: u64) -> Result<(), RangeError> {
    if end < start {
        return Err(RangeError::Backwards { start, end });
    }
    if end == start {
        return Err(RangeError::Empty { start });
    }
    match prev {
        Some(p) if start < p.0 => Err(RangeError::OutOfOrder {
            this: (start, end),
            prev: p,
        }),
        Some(p) if start < p.1 => Err(RangeError::Overlaps {
            this: (start, end),
            prev: p,
        }),
        _ => Ok(()),
    }
}

/// What is impossible in a snapshot, and which region holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Impossible(pub String);

impl fmt::Display for Impossible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Impossible {}

/// Checks a decoded snapshot: its regions in address order without
/// overlap, none empty or backwards, each sub-block inside its region and
/// in order, and every figure summable in 64 bits at each level.
pub fn snapshot(s: &Snapshot) -> Result<(), Impossible> {
    list(&s.regions, None).map_err(|(path, why)| Impossible(format!("region {path}: {why}")))
}

/// Checks one list of regions (the top level, or a region's sub-blocks
/// inside `parent`); the error names the region by its 1-based position
/// (`3`, or `3.2` for the second sub-block of the third region).
fn list(regions: &[Region], parent: Option<(u64, u64)>) -> Result<(), (String, String)> {
    let mut prev = None;
    let mut sums = [0u64; Field::ALL.len()];
    for (i, r) in regions.iter().enumerate() {
        let at = |why: String| (format!("{}", i + 1), why);
        range(prev, r.start, r.end).map_err(|e| at(e.to_string()))?;
        if let Some((lo, hi)) = parent {
            if r.start < lo || r.end > hi {
                return Err(at(format!(
                    "sub-block {:#x}-{:#x} lies outside its region {lo:#x}-{hi:#x}",
                    r.start, r.end
                )));
            }
        }
        for f in Field::ALL {
            let slot = &mut sums[f as usize];
            *slot = slot.checked_add(r.fields.bytes(f)).ok_or_else(|| {
                at(format!(
                    "the {} figures add up past 64 bits",
                    f.kernel_name()
                ))
            })?;
        }
        list(&r.sub_blocks, Some((r.start, r.end)))
            .map_err(|(path, why)| (format!("{}.{path}", i + 1), why))?;
        prev = Some((r.start, r.end));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testutil::rw_region as r;

    fn check(regions: Vec<Region>) -> Result<(), Impossible> {
        snapshot(&Snapshot::from_regions(1, 0, regions))
    }

    #[test]
    fn refuses_what_no_process_has() {
        assert!(check(vec![r(0x1000, 0x2000), r(0x2000, 0x3000)]).is_ok());
        let e = check(vec![r(0x2000, 0x1000)]).unwrap_err();
        assert_eq!(e.0, "region 1: 0x2000-0x1000 ends before it starts");
        let e = check(vec![r(0x1000, 0x1000)]).unwrap_err();
        assert!(e.0.contains("empty"), "{e}");
        let e = check(vec![r(0x1000, 0x3000), r(0x2000, 0x4000)]).unwrap_err();
        assert!(
            e.0.starts_with("region 2:") && e.0.contains("overlaps"),
            "{e}"
        );
        let e = check(vec![r(0x5000, 0x6000), r(0x1000, 0x2000)]).unwrap_err();
        assert!(e.0.contains("address order"), "{e}");
        let mut g = r(0x1000, 0x3000);
        g.sub_blocks = vec![r(0x1000, 0x2000), r(0x2000, 0x4000)];
        let e = check(vec![g]).unwrap_err();
        assert!(
            e.0.starts_with("region 1.2:") && e.0.contains("outside"),
            "{e}"
        );
        let (mut a, mut b) = (r(0x1000, 0x2000), r(0x2000, 0x3000));
        a.fields.set(Field::Swap, u64::MAX);
        b.fields.set(Field::Swap, 1);
        let e = check(vec![a, b]).unwrap_err();
        assert!(e.0.contains("Swap figures add up past 64 bits"), "{e}");
    }
}
