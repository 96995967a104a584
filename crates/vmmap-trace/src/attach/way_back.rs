//! The way back for the thread that runs the attach calls, if vmmap dies
//! while the thread runs them.
//!
//! A call set up by hand needs a return address. Returning to 0 (a fault
//! that stops the thread for vmmap) is fatal if vmmap is gone by then: the
//! kernel lets a tracer's threads go when it dies, even by SIGKILL, and the
//! thread then faults with no one to catch it, killing the program. Killed
//! at random moments of an attach, one vmmap in twenty took its target
//! with it that way.
//!
//! So calls return to a few instructions vmmap writes in the padding after
//! the end of the C library's code segment (bytes of the page past the
//! segment, never executed, written with ptrace as a debugger writes a
//! breakpoint). They first make a system call (`getpid`), the marker:
//! while vmmap traces the thread with `PTRACE_SYSCALL` it stops there,
//! takes the result and decides what the thread does next. If vmmap is
//! gone, the marker is harmless and the instructions after it put every
//! register back from a save area vmmap wrote on the thread's stack: the
//! extended state (x87, SSE, AVX: `xrstor`, or `fxrstor` without XSAVE),
//! the general registers, the flags, and last the stack pointer and the
//! instruction pointer, with the kernel's restart of an interrupted system
//! call done by hand (`resume`). The thread carries on where it was
//! stopped, as if nothing happened; the agent, loaded or not, stays idle
//! or detaches itself when vmmap's heartbeat stops.

use std::io;

use super::{other, ptrace, AttachError};

/// Bytes of code and data written in the padding.
pub(super) const LEN: usize = 96;

/// `PTRACE_GETREGSET` notes for the extended state.
const NT_PRFPREG: usize = 2;
const NT_X86_XSTATE: usize = 0x202;

/// The thread's extended register state, as the kernel gives it out and
/// takes it back (`PTRACE_GETREGSET`): the standard XSAVE image, or the
/// 512-byte FXSAVE one on a processor without XSAVE.
pub(super) struct Extended {
    image: Vec<u8>,
    xsave: bool,
}

impl Extended {
    /// Reads `tid`'s extended state (stopped, ours).
    pub(super) fn read(tid: i32) -> io::Result<Extended> {
        for (note, xsave) in [(NT_X86_XSTATE, true), (NT_PRFPREG, false)] {
            let mut image = vec![0u8; 64 << 10];
            let mut iov = libc::iovec {
                iov_base: image.as_mut_ptr().cast(),
                iov_len: image.len(),
            };
            if ptrace(
                libc::PTRACE_GETREGSET,
                tid,
                note,
                &mut iov as *mut _ as usize,
            )
            .is_ok()
            {
                image.truncate(iov.iov_len);
                return Ok(Extended { image, xsave });
            }
        }
        Err(io::Error::last_os_error())
    }

    /// Gives `tid` this state back.
    pub(super) fn write(&self, tid: i32) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: self.image.as_ptr() as *mut libc::c_void,
            iov_len: self.image.len(),
        };
        let note = if self.xsave {
            NT_X86_XSTATE
        } else {
            NT_PRFPREG
        };
        ptrace(
            libc::PTRACE_SETREGSET,
            tid,
            note,
            &mut iov as *mut _ as usize,
        )
        .map(|_| ())
    }
}

/// Where the thread resumes and what its rax holds: the kernel's restart
/// of a system call the stop interrupted (the `syscall` instruction again,
/// with its number; `restart_syscall` for a sleep the kernel resumes
/// itself), done by hand because the thread will not pass through the
/// kernel's signal path on its way back.
pub(super) fn resume(r: &libc::user_regs_struct) -> (u64, u64) {
    const ERESTARTSYS: i64 = -512;
    const ERESTARTNOINTR: i64 = -513;
    const ERESTARTNOHAND: i64 = -514;
    const ERESTART_RESTARTBLOCK: i64 = -516;
    if (r.orig_rax as i64) < 0 {
        return (r.rip, r.rax);
    }
    match r.rax as i64 {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => (r.rip - 2, r.orig_rax),
        ERESTART_RESTARTBLOCK => (r.rip - 2, libc::SYS_restart_syscall as u64),
        _ => (r.rip, r.rax),
    }
}

/// The save area the code restores from: the extended image (at the
/// area's 64-byte aligned start), then the general registers in the order
/// the code pops them, then the flags.
pub(super) fn area(saved: &libc::user_regs_struct, ext: &Extended) -> Vec<u8> {
    let (_, rax) = resume(saved);
    let mut a = ext.image.clone();
    for v in [
        saved.r15,
        saved.r14,
        saved.r13,
        saved.r12,
        saved.r11,
        saved.r10,
        saved.r9,
        saved.r8,
        saved.rdi,
        saved.rsi,
        saved.rbp,
        saved.rbx,
        saved.rdx,
        saved.rcx,
        rax,
        saved.eflags,
    ] {
        a.extend_from_slice(&v.to_le_bytes());
    }
    a
}

/// The code, for an area whose extended image is `image_len` bytes, and
/// the stack pointer and instruction pointer to end with. Entered by the
/// called function's `ret`, with rsp at the area.
pub(super) fn code(ext: &Extended, rsp: u64, rip: u64) -> Vec<u8> {
    let mut c: Vec<u8> = Vec::with_capacity(LEN);
    c.extend_from_slice(&[0x48, 0x89, 0xc7]); // mov rdi, rax (the result)
    c.extend_from_slice(&[0xb8, 39, 0, 0, 0]); // mov eax, SYS_getpid
    c.extend_from_slice(&[0x0f, 0x05]); // syscall: the marker
    c.extend_from_slice(&[0xb8, 0xff, 0xff, 0xff, 0xff]); // mov eax, -1
    c.extend_from_slice(&[0xba, 0xff, 0xff, 0xff, 0xff]); // mov edx, -1
    if ext.xsave {
        c.extend_from_slice(&[0x48, 0x0f, 0xae, 0x2c, 0x24]); // xrstor64 [rsp]
    } else {
        c.extend_from_slice(&[0x48, 0x0f, 0xae, 0x0c, 0x24]); // fxrstor64 [rsp]
    }
    c.extend_from_slice(&[0x48, 0x81, 0xc4]); // add rsp, image length
    c.extend_from_slice(&(ext.image.len() as u32).to_le_bytes());
    // pop r15 … r8, rdi, rsi, rbp, rbx, rdx, rcx, rax; popfq
    c.extend_from_slice(&[
        0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41,
        0x58, 0x5f, 0x5e, 0x5d, 0x5b, 0x5a, 0x59, 0x58, 0x9d,
    ]);
    // mov rsp, [rip + to the first slot]; jmp [rip + to the second]
    let slots = c.len() + 7 + 6;
    c.extend_from_slice(&[0x48, 0x8b, 0x25]);
    c.extend_from_slice(&((slots - (c.len() + 4)) as u32).to_le_bytes());
    c.extend_from_slice(&[0xff, 0x25]);
    c.extend_from_slice(&((slots + 8 - (c.len() + 4)) as u32).to_le_bytes());
    debug_assert_eq!(c.len(), slots);
    c.extend_from_slice(&rsp.to_le_bytes());
    c.extend_from_slice(&rip.to_le_bytes());
    debug_assert!(c.len() <= LEN);
    c
}

/// Where the marker's system call leaves the thread: the address after
/// its `syscall` instruction, which a syscall stop reports as rip.
pub(super) fn marker(at: u64) -> u64 {
    at + 10
}

/// Padding of at least [`LEN`] bytes after the end of an executable
/// segment of the C library (or, failing that, of another module), as an
/// address in `pid`; None if no module has that much.
pub(super) fn padding(pid: i32, maps: &[(u64, u64, String)]) -> Option<u64> {
    let mut modules: Vec<&(u64, u64, String)> = maps
        .iter()
        .filter(|(_, off, p)| *off == 0 && p.starts_with('/'))
        .collect();
    // The C library first: every process here has one.
    modules.sort_by_key(|(_, _, p)| !super::is_libc(p));
    modules.into_iter().find_map(|(start, _, path)| {
        let bytes = super::read_module(pid, path)?;
        let (first, end) = vmmap_core::elf::exec_segment_end(&bytes)?;
        let end = start - (first & !0xfff) + end;
        let room = end.next_multiple_of(4096) - end;
        // Aligned to 16 bytes: the code never straddles a page.
        let at = end.next_multiple_of(16);
        (room >= (LEN + 16) as u64).then_some(at)
    })
}

/// Reads `len` bytes of `tid`'s memory with ptrace (any protection).
pub(super) fn peek(tid: i32, at: u64, len: usize) -> Result<Vec<u8>, AttachError> {
    let mut out = Vec::with_capacity(len + 8);
    let mut a = at;
    while out.len() < len {
        // SAFETY: PTRACE_PEEKDATA reads a word of the tracee; errno tells
        // a failure from a word of -1.
        let w = unsafe {
            *libc::__errno_location() = 0;
            libc::ptrace(libc::PTRACE_PEEKDATA, tid, a as usize, 0usize)
        };
        // SAFETY: reading errno.
        if w == -1 && unsafe { *libc::__errno_location() } != 0 {
            return Err(other("PTRACE_PEEKDATA", io::Error::last_os_error()));
        }
        out.extend_from_slice(&w.to_le_bytes());
        a += 8;
    }
    out.truncate(len);
    Ok(out)
}

/// Writes `data` into `tid`'s memory with ptrace, read-only code pages
/// included (the kernel gives the process its own copy of the page).
pub(super) fn poke(tid: i32, at: u64, data: &[u8]) -> Result<(), AttachError> {
    let mut whole = peek(tid, at, data.len().next_multiple_of(8))?;
    whole[..data.len()].copy_from_slice(data);
    for (i, w) in whole.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(w.try_into().unwrap_or_default());
        ptrace(
            libc::PTRACE_POKEDATA,
            tid,
            (at + 8 * i as u64) as usize,
            word as usize,
        )
        .map_err(|e| other("PTRACE_POKEDATA", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> libc::user_regs_struct {
        // SAFETY: all-zero is a valid user_regs_struct.
        unsafe { std::mem::zeroed() }
    }

    #[test]
    fn an_interrupted_system_call_is_restarted_as_the_kernel_would() {
        let mut r = regs();
        r.rip = 0x1002;
        r.orig_rax = 202; // futex
        r.rax = (-512i64) as u64;
        assert_eq!(resume(&r), (0x1000, 202));
        r.rax = (-516i64) as u64;
        assert_eq!(resume(&r), (0x1000, libc::SYS_restart_syscall as u64));
        // Finished (a result, or EINTR): left as it is.
        r.rax = (-4i64) as u64;
        assert_eq!(resume(&r), (0x1002, (-4i64) as u64));
        // Not in a system call at all.
        r.orig_rax = u64::MAX;
        r.rax = (-512i64) as u64;
        assert_eq!(resume(&r), (0x1002, (-512i64) as u64));
    }

    #[test]
    fn the_code_fits_and_ends_with_its_two_slots() {
        for xsave in [true, false] {
            let ext = Extended {
                image: vec![0; if xsave { 2696 } else { 512 }],
                xsave,
            };
            let c = code(&ext, 0x7fff_0000_1000, 0x5555_0000_2002);
            assert!(c.len() <= LEN);
            assert_eq!(
                &c[c.len() - 16..c.len() - 8],
                &0x7fff_0000_1000u64.to_le_bytes()
            );
            assert_eq!(&c[c.len() - 8..], &0x5555_0000_2002u64.to_le_bytes());
            // The marker's syscall ends where `marker` says.
            assert_eq!(&c[8..10], &[0x0f, 0x05]);
            assert_eq!(marker(0), 10);
            // The two RIP-relative loads point at the slots.
            let slots = c.len() - 16;
            let mov = slots - 13;
            let rel = i32::from_le_bytes(c[mov + 3..mov + 7].try_into().unwrap()) as usize;
            assert_eq!(mov + 7 + rel, slots);
            let jmp = slots - 6;
            let rel = i32::from_le_bytes(c[jmp + 2..jmp + 6].try_into().unwrap()) as usize;
            assert_eq!(jmp + 6 + rel, slots + 8);
        }
    }
}
