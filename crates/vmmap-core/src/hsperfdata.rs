//! Sans-IO reader of HotSpot's performance-counter file,
//! `/tmp/hsperfdata_USER/PID`, which the JVM maps shared into itself and
//! keeps up to date (unless `-XX:-UsePerfData`).
//!
//! The layout is HotSpot's `perfMemory.hpp`: a prologue
//!
//! ```c
//! jint magic;            // 0xcafec0c0, always stored big-endian
//! jbyte byte_order;      // 0 big-endian, 1 little-endian (for what follows)
//! jbyte major_version, minor_version, accessible;
//! jint used, overflow;
//! jlong mod_time_stamp;
//! jint entry_offset, num_entries;
//! ```
//!
//! then `num_entries` entries from `entry_offset`, each
//!
//! ```c
//! jint entry_length, name_offset, vector_length;
//! jbyte data_type, flags, data_units, data_variability;
//! jint data_offset;
//! ```
//!
//! with a NUL-terminated name and the data at offsets from the entry's
//! start. Scalars are `'J'` (jlong); strings are `'B'` byte vectors.
//! Everything is bounds-checked: the file is written by another process.

use thiserror::Error;

const MAGIC: [u8; 4] = [0xca, 0xfe, 0xc0, 0xc0];
const PROLOGUE: usize = 32;
const ENTRY_HEADER: usize = 20;

/// Why a buffer is not a readable hsperfdata file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HsperfError {
    /// Shorter than the prologue.
    #[error("hsperfdata is {0} bytes, shorter than its 32-byte prologue")]
    Short(usize),
    /// The magic number is wrong.
    #[error("not hsperfdata: magic {0:02x?}")]
    Magic([u8; 4]),
    /// The byte-order byte is neither 0 nor 1.
    #[error("hsperfdata byte order {0} is neither 0 nor 1")]
    ByteOrder(u8),
    /// An entry points outside the buffer.
    #[error("hsperfdata entry {0} lies outside the file")]
    Entry(usize),
}

/// A counter's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// A `jlong` scalar.
    Long(i64),
    /// A byte vector, read as text up to its first NUL.
    Text(String),
    /// Another type or vector, kept as its type code.
    Other(u8),
}

/// One named counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Counter {
    /// Its name, e.g. `sun.gc.generation.0.capacity`.
    pub(crate) name: String,
    /// Its value.
    pub(crate) value: Value,
}

/// The counters of one JVM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerfData {
    /// The counters in file order.
    pub(crate) counters: Vec<Counter>,
}

impl PerfData {
    /// A scalar counter.
    pub(crate) fn long(&self, name: &str) -> Option<i64> {
        self.counters.iter().find_map(|c| match &c.value {
            Value::Long(v) if c.name == name => Some(*v),
            _ => None,
        })
    }

    /// A text counter.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.counters.iter().find_map(|c| match &c.value {
            Value::Text(v) if c.name == name => Some(v.as_str()),
            _ => None,
        })
    }

    /// A scalar counter as a byte count: negative values are no size.
    pub(crate) fn bytes(&self, name: &str) -> Option<u64> {
        self.long(name).and_then(|v| u64::try_from(v).ok())
    }
}

/// Parses an hsperfdata file (or the memory it is mapped at). Entries
/// past the `used` mark or cut off by the end of the buffer end the list:
/// the JVM may be adding one while it is read.
pub fn parse(b: &[u8]) -> Result<PerfData, HsperfError> {
    if b.len() < PROLOGUE {
        return Err(HsperfError::Short(b.len()));
    }
    let magic = [b[0], b[1], b[2], b[3]];
    if magic != MAGIC {
        return Err(HsperfError::Magic(magic));
    }
    let little = match b[4] {
        0 => false,
        1 => true,
        o => return Err(HsperfError::ByteOrder(o)),
    };
    let r = crate::endian::Reader { b, le: little };
    let used = r
        .i32(8)
        .and_then(|u| usize::try_from(u).ok())
        .map_or(b.len(), |u| u.min(b.len()));
    let entry_offset = r.i32(24).and_then(|v| usize::try_from(v).ok());
    let num_entries = r.i32(28).and_then(|v| usize::try_from(v).ok());
    let (Some(mut off), Some(n)) = (entry_offset, num_entries) else {
        return Err(HsperfError::Entry(0));
    };
    let mut counters = Vec::new();
    for i in 0..n {
        if off.checked_add(ENTRY_HEADER).is_none_or(|e| e > used) {
            break;
        }
        let field = |k: usize| r.i32(off + k).and_then(|v| usize::try_from(v).ok());
        let (Some(len), Some(name_off), Some(vlen), Some(data_off)) =
            (field(0), field(4), field(8), field(16))
        else {
            return Err(HsperfError::Entry(i));
        };
        if len < ENTRY_HEADER || off.checked_add(len).is_none_or(|e| e > used) {
            return Err(HsperfError::Entry(i));
        }
        let entry = &b[off..off + len];
        let data_type = entry[12];
        let name = entry
            .get(name_off..)
            .and_then(|s| s.split(|&c| c == 0).next())
            .ok_or(HsperfError::Entry(i))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let value = match (data_type, vlen) {
            (b'J', 0) => Value::Long(
                r.i64(off + data_off)
                    .filter(|_| data_off + 8 <= len)
                    .ok_or(HsperfError::Entry(i))?,
            ),
            (b'B', n) if n > 0 => {
                let raw = entry
                    .get(data_off..data_off.saturating_add(n).min(len))
                    .ok_or(HsperfError::Entry(i))?;
                let text = raw.split(|&c| c == 0).next().unwrap_or_default();
                Value::Text(String::from_utf8_lossy(text).into_owned())
            }
            (t, _) => Value::Other(t),
        };
        counters.push(Counter { name, value });
        off += len;
    }
    Ok(PerfData { counters })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a little-endian hsperfdata buffer, as HotSpot lays it out.
    pub(crate) fn build(counters: &[(&str, Value)]) -> Vec<u8> {
        let mut entries = Vec::new();
        for (name, v) in counters {
            let mut e = vec![0u8; ENTRY_HEADER];
            let name_off = ENTRY_HEADER;
            e.extend_from_slice(name.as_bytes());
            e.push(0);
            while e.len() % 8 != 0 {
                e.push(0);
            }
            let data_off = e.len();
            let (t, vlen) = match v {
                Value::Long(x) => {
                    e.extend_from_slice(&x.to_le_bytes());
                    (b'J', 0)
                }
                Value::Text(s) => {
                    e.extend_from_slice(s.as_bytes());
                    e.push(0);
                    (b'B', s.len() + 1)
                }
                Value::Other(t) => (*t, 0),
            };
            while e.len() % 8 != 0 {
                e.push(0);
            }
            let len = e.len() as i32;
            e[0..4].copy_from_slice(&len.to_le_bytes());
            e[4..8].copy_from_slice(&(name_off as i32).to_le_bytes());
            e[8..12].copy_from_slice(&(vlen as i32).to_le_bytes());
            e[12] = t;
            e[16..20].copy_from_slice(&(data_off as i32).to_le_bytes());
            entries.extend(e);
        }
        let mut b = vec![0u8; PROLOGUE];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = 1;
        b[5] = 2;
        let used = (PROLOGUE + entries.len()) as i32;
        b[8..12].copy_from_slice(&used.to_le_bytes());
        b[24..28].copy_from_slice(&(PROLOGUE as i32).to_le_bytes());
        b[28..32].copy_from_slice(&(counters.len() as i32).to_le_bytes());
        b.extend(entries);
        b.resize(b.len() + 64, 0);
        b
    }

    #[test]
    fn reads_longs_and_strings() {
        let b = build(&[
            ("sun.gc.policy.name", Value::Text("GarbageFirst".into())),
            ("sun.gc.generation.1.maxCapacity", Value::Long(268_435_464)),
            ("java.rt.vmArgs", Value::Text("-Xms64m -Xmx256m".into())),
        ]);
        let p = parse(&b).unwrap();
        assert_eq!(p.text("sun.gc.policy.name"), Some("GarbageFirst"));
        assert_eq!(p.long("sun.gc.generation.1.maxCapacity"), Some(268_435_464));
        assert_eq!(p.text("java.rt.vmArgs"), Some("-Xms64m -Xmx256m"));
        assert_eq!(p.long("missing"), None);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let b = build(&[("a", Value::Long(1)), ("b", Value::Text("x".into()))]);
        for cut in 0..b.len() {
            let _ = parse(&b[..cut]);
        }
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0xa5;
            let _ = parse(&d);
        }
        assert_eq!(parse(&b[..10]), Err(HsperfError::Short(10)));
        let mut bad = b.clone();
        bad[0] = 0;
        assert!(matches!(parse(&bad), Err(HsperfError::Magic(_))));
    }
}
