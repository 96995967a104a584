//! Sans-IO parser for `/proc/PID/stat`, for the few fields a snapshot
//! needs: state, parent, flags (to recognise kernel threads) and start time
//! (to tell a reused PID from the process we started with).

use super::ParseError;

/// `PF_KTHREAD` from the kernel's `sched.h`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Selected fields of `stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The command name between the parentheses.
    pub comm: String,
    /// One-letter state (`R`, `S`, `Z`, …).
    pub(crate) state: char,
    /// Parent PID.
    pub ppid: u32,
    /// Kernel `task->flags`.
    pub flags: u64,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl Stat {
    /// Whether this is a kernel thread, which has no user address space.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses `pid (comm) state ppid …`. The command name may itself contain
/// spaces and parentheses, so it is delimited by the *last* `)`.
pub fn parse(text: &[u8]) -> Result<Stat, ParseError> {
    let text = String::from_utf8_lossy(text);
    let bad = |m: &str| ParseError::new("stat", 1, m.to_string());
    let open = text.find('(').ok_or_else(|| bad("no '('"))?;
    let close = text.rfind(')').ok_or_else(|| bad("no ')'"))?;
    if close < open {
        return Err(bad("')' before '('"));
    }
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| {
        rest.get(n - 3)
            .copied()
            .ok_or_else(|| bad("too few fields"))
    };
    let num = |n: usize| -> Result<u64, ParseError> {
        field(n)?.parse().map_err(|_| bad("non-numeric field"))
    };
    Ok(Stat {
        comm,
        state: field(3)?.chars().next().unwrap_or('?'),
        ppid: u32::try_from(num(4)?).map_err(|_| bad("ppid out of range"))?,
        flags: num(9)?,
        start_time: num(22)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_parens_and_kthread_flag() {
        let s = parse(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0").unwrap();
        assert!(s.is_kernel_thread());
        assert_eq!(s.start_time, 5);
        let s = parse(b"77 (a) b) (c) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 1 2")
            .unwrap();
        assert_eq!(s.comm, "a) b) (c");
        assert_eq!((s.state, s.ppid), ('R', 1));
        assert!(!s.is_kernel_thread());
        assert!(parse(b"1 (x) S 0").is_err());
    }
}
