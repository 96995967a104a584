//! Sans-IO parser for `/proc/PID/status`: `Key:\tvalue` lines. Every line
//! is kept; accessors give the typed values a snapshot needs.

use serde::{Deserialize, Serialize};

use super::ParseError;

/// The lines of a status file, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `(key, value)` pairs, value trimmed.
    pub entries: Vec<(Box<str>, Box<str>)>,
}

impl Status {
    /// The raw value of a key.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// A `N kB` value, in bytes; `None` when absent or past 64 bits
    /// (never saturated: [`parse`] refuses such a line from `/proc`).
    pub fn bytes(&self, key: &str) -> Option<u64> {
        kb_bytes(self.get(key)?)
    }

    /// A plain number.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.split_whitespace().next()?.parse().ok()
    }

    /// `Name:`, the command name (comm), as the kernel escapes it.
    pub fn name(&self) -> Option<&str> {
        self.get("Name")
    }

    /// Real, effective, saved and filesystem uids.
    pub fn uids(&self) -> Option<[u32; 4]> {
        Self::four(self.get("Uid")?)
    }

    /// Real, effective, saved and filesystem gids.
    pub fn gids(&self) -> Option<[u32; 4]> {
        Self::four(self.get("Gid")?)
    }

    /// `Groups:`, the supplementary group ids.
    pub fn groups(&self) -> Vec<u32> {
        self.numbers("Groups")
    }

    /// `CapEff:`, the effective capabilities as a bit set.
    pub fn effective_capabilities(&self) -> Option<u64> {
        u64::from_str_radix(self.get("CapEff")?, 16).ok()
    }

    /// `NSpid:`, the PID in each PID namespace the process is in, the
    /// outermost first; the last is the PID the process sees for itself.
    pub fn ns_pids(&self) -> Vec<u32> {
        self.numbers("NSpid")
    }

    /// A list of numbers separated by white space (none when absent).
    fn numbers(&self, key: &str) -> Vec<u32> {
        self.get(key).map_or_else(Vec::new, |v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
    }

    /// The PID in the process's own PID namespace, when that is not the
    /// namespace `/proc` was mounted from (a container's PID 1 is 1).
    pub fn ns_pid(&self) -> Option<u32> {
        match self.ns_pids().as_slice() {
            [_, .., last] => Some(*last),
            _ => None,
        }
    }

    fn four(v: &str) -> Option<[u32; 4]> {
        let mut out = [0u32; 4];
        let mut it = v.split_whitespace();
        for o in &mut out {
            *o = it.next()?.parse().ok()?;
        }
        Some(out)
    }
}

fn kb_bytes(v: &str) -> Option<u64> {
    let n = v.strip_suffix("kB").unwrap_or(v).trim();
    n.parse::<u64>().ok()?.checked_mul(1024)
}

/// Parses status text. A `N kB` line whose bytes do not fit in 64 bits is
/// refused with its line, as smaps's are.
pub fn parse(text: &[u8]) -> Result<Status, ParseError> {
    let text = String::from_utf8_lossy(text);
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| ParseError::new("status", i as u64 + 1, "line has no ':'"))?;
        let v = v.trim();
        if v.ends_with("kB") && kb_bytes(v).is_none() {
            return Err(ParseError::new(
                "status",
                i as u64 + 1,
                format!("{k}: {v:?} is not a number of kB whose bytes fit in 64 bits"),
            ));
        }
        entries.push((k.into(), v.into()));
    }
    Ok(Status { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_accessors() {
        let s =
            parse(b"Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nVmPTE:\t      52 kB\nThreads:\t1\n")
                .unwrap();
        assert_eq!(s.name(), Some("bash"));
        assert_eq!(s.uids(), Some([1000; 4]));
        assert_eq!(s.bytes("VmPTE"), Some(52 * 1024));
        assert_eq!(s.number("Threads"), Some(1));
        assert_eq!(s.bytes("VmSwap"), None);
        assert!(parse(b"garbage\n").is_err());
        assert_eq!(s.ns_pid(), None);
        let c = parse(b"Name:\tsh\nNSpid:\t4242\t17\t1\n").unwrap();
        assert_eq!(c.ns_pids(), [4242, 17, 1]);
        assert_eq!(c.ns_pid(), Some(1));
        assert_eq!(parse(b"NSpid:\t4242\n").unwrap().ns_pid(), None);
        let e = parse(b"Name:\tx\nVmPTE:\t18014398509481984 kB\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("64 bits"), "{e}");
    }
}
