//! Restartable sequences: the borrowed thread is never sent back into the
//! middle of an rseq critical section.
//!
//! A thread registers a `struct rseq` area with the kernel (glibc does so
//! for every thread since 2.35); while the thread runs a critical section,
//! the area's `rseq_cs` field points at the section's descriptor. The
//! kernel promises that a section preempted, migrated or interrupted by a
//! signal never carries on where it was: on its way back to user space
//! the thread goes to the section's abort handler instead. The calls vmmap
//! makes on the borrowed thread interrupt it too, but the kernel only looks
//! at the instruction pointer the thread returns to, the calls' and not the
//! section's: put back as it was, the thread would go on inside the
//! section after other code ran on it (tcmalloc's per-CPU caches, for one,
//! rely on that never happening). So the abort is done by hand when the
//! thread is seized, as the kernel would do it: the saved instruction
//! pointer becomes the abort handler's, and `rseq_cs` is cleared.

use std::io;

use super::{ptrace, read_mem, write_mem};

/// `PTRACE_GET_RSEQ_CONFIGURATION` (Linux 5.13).
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;

/// `struct ptrace_rseq_configuration`.
#[repr(C)]
#[derive(Default)]
struct Configuration {
    rseq_abi_pointer: u64,
    rseq_abi_size: u32,
    signature: u32,
    flags: u32,
    pad: u32,
}

/// Offset of `rseq_cs` in `struct rseq`.
const RSEQ_CS: u64 = 8;

/// A critical section's descriptor (`struct rseq_cs`).
struct Section {
    version: u32,
    flags: u32,
    start_ip: u64,
    post_commit_offset: u64,
    abort_ip: u64,
}

impl Section {
    fn parse(b: &[u8]) -> Option<Section> {
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        Some(Section {
            version: u32_at(0)?,
            flags: u32_at(4)?,
            start_ip: u64_at(8)?,
            post_commit_offset: u64_at(16)?,
            abort_ip: u64_at(24)?,
        })
    }

    /// Where the kernel would send a thread stopped at `ip`: the abort
    /// handler if `ip` is inside the section and the section is one the
    /// kernel accepts (version 0, no flags, the handler outside the
    /// section and preceded by the thread's signature, `sig_before`).
    fn abort_from(
        &self,
        ip: u64,
        signature: u32,
        sig_before: impl Fn(u64) -> Option<u32>,
    ) -> Option<u64> {
        let inside = ip.wrapping_sub(self.start_ip) < self.post_commit_offset;
        let valid = self.version == 0
            && self.flags == 0
            && self.abort_ip.wrapping_sub(self.start_ip) >= self.post_commit_offset
            && sig_before(self.abort_ip) == Some(signature);
        (inside && valid).then_some(self.abort_ip)
    }
}

/// If thread `tid` of `pid` (stopped, ours) is inside an rseq critical
/// section at `regs.rip`, aborts the section as the kernel would: `regs`
/// then resume at its abort handler, and the thread's `rseq_cs` is
/// cleared. Whether it did. A kernel without the request (before 5.13)
/// or a thread without an rseq area has nothing to abort.
pub(super) fn abort_section(
    pid: i32,
    tid: i32,
    regs: &mut libc::user_regs_struct,
) -> io::Result<bool> {
    let mut conf = Configuration::default();
    if ptrace(
        PTRACE_GET_RSEQ_CONFIGURATION,
        tid,
        std::mem::size_of::<Configuration>(),
        &mut conf as *mut _ as usize,
    )
    .is_err()
        || conf.rseq_abi_pointer == 0
    {
        return Ok(false);
    }
    let field = conf.rseq_abi_pointer + RSEQ_CS;
    let cs = u64::from_ne_bytes(read_mem(pid, field, 8)?.try_into().unwrap_or_default());
    if cs == 0 {
        return Ok(false);
    }
    let Some(section) = Section::parse(&read_mem(pid, cs, 32)?) else {
        return Ok(false);
    };
    let sig_before = |at: u64| {
        let b = read_mem(pid, at.checked_sub(4)?, 4).ok()?;
        Some(u32::from_ne_bytes(b.try_into().ok()?))
    };
    let Some(abort) = section.abort_from(regs.rip, conf.signature, sig_before) else {
        return Ok(false);
    };
    write_mem(pid, field, &0u64.to_ne_bytes())?;
    regs.rip = abort;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section() -> Section {
        Section {
            version: 0,
            flags: 0,
            start_ip: 0x1000,
            post_commit_offset: 0x40,
            abort_ip: 0x1080,
        }
    }

    #[test]
    fn inside_the_section_goes_to_the_abort_handler() {
        let sig = |_| Some(0x5305_3053);
        assert_eq!(section().abort_from(0x1000, 0x5305_3053, sig), Some(0x1080));
        assert_eq!(section().abort_from(0x103f, 0x5305_3053, sig), Some(0x1080));
    }

    #[test]
    fn outside_the_section_or_after_its_commit_stays() {
        let sig = |_| Some(0x5305_3053);
        assert_eq!(section().abort_from(0xfff, 0x5305_3053, sig), None);
        assert_eq!(section().abort_from(0x1040, 0x5305_3053, sig), None);
    }

    #[test]
    fn a_section_the_kernel_would_refuse_is_left_alone() {
        let sig = |_| Some(0x5305_3053);
        assert_eq!(section().abort_from(0x1000, 0x1234, sig), None);
        let mut s = section();
        s.abort_ip = 0x1010;
        assert_eq!(s.abort_from(0x1000, 0x5305_3053, sig), None);
        let mut s = section();
        s.flags = 1;
        assert_eq!(s.abort_from(0x1000, 0x5305_3053, sig), None);
        assert_eq!(section().abort_from(0x1000, 0x5305_3053, |_| None), None);
    }
}
