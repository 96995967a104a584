//! Sans-IO parser for `/proc/PID/task/TID/syscall`, which gives a stopped
//! or blocked thread's stack pointer (the second-to-last field).

use super::ParseError;

/// What the kernel reports about a thread's current system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// The thread is on a CPU; no registers are available this way.
    Running,
    /// Blocked in system call `nr`.
    Blocked {
        /// System call number.
        nr: i64,
        /// User stack pointer.
        sp: u64,
        /// User program counter.
        pc: u64,
    },
    /// Stopped in user mode, outside any system call (`-1 sp pc`).
    User {
        /// User stack pointer.
        sp: u64,
        /// User program counter.
        pc: u64,
    },
}

impl Syscall {
    /// The stack pointer, when the kernel gave one.
    pub fn sp(self) -> Option<u64> {
        match self {
            Syscall::Running => None,
            Syscall::Blocked { sp, .. } | Syscall::User { sp, .. } => Some(sp),
        }
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// Parses the file's single line.
pub fn parse(text: &[u8]) -> Result<Syscall, ParseError> {
    let text = String::from_utf8_lossy(text);
    let t = text.trim();
    if t == "running" {
        return Ok(Syscall::Running);
    }
    let f: Vec<&str> = t.split_whitespace().collect();
    let bad = || ParseError::new("syscall", 1, format!("unexpected content {t:?}"));
    match f.as_slice() {
        [nr, sp, pc] if *nr == "-1" => Ok(Syscall::User {
            sp: hex(sp).ok_or_else(bad)?,
            pc: hex(pc).ok_or_else(bad)?,
        }),
        [nr, _, _, _, _, _, _, sp, pc] => Ok(Syscall::Blocked {
            nr: nr.parse().map_err(|_| bad())?,
            sp: hex(sp).ok_or_else(bad)?,
            pc: hex(pc).ok_or_else(bad)?,
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_forms() {
        assert_eq!(parse(b"running\n").unwrap(), Syscall::Running);
        assert_eq!(
            parse(b"-1 0x7ffc1000 0x401000\n").unwrap(),
            Syscall::User {
                sp: 0x7ffc1000,
                pc: 0x401000
            }
        );
        let b = parse(b"202 0x7f12 0x80 0x0 0x0 0x0 0x0 0x7ffd5a8 0x7f1234\n").unwrap();
        assert_eq!(
            b,
            Syscall::Blocked {
                nr: 202,
                sp: 0x7ffd5a8,
                pc: 0x7f1234
            }
        );
        assert_eq!(b.sp(), Some(0x7ffd5a8));
        assert!(parse(b"1 2\n").is_err());
    }
}
