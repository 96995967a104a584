//! Seccomp filters judged against the system calls the agent makes in a
//! traced process.
//!
//! A process under a seccomp filter (systemd's `SystemCallFilter=`, a
//! browser's or a container's sandbox) has each of its system calls
//! checked by the kernel, the ones its threads make for vmmap included:
//! the loader's while it loads the agent, the agent's thread, the hooks.
//! A call the filter does not allow can kill the whole process (SIGSYS):
//! attaching to a sandboxed daemon with a plain injection killed it, and
//! so did a program that filtered itself under `vmmap run`. So the
//! filters are run here on each call of [`NEEDED`] before the agent makes
//! one: by `vmmap attach` on the filters of every thread of the process
//! (read with ptrace) before anything runs in it, and by the agent on the
//! filter a program is about to install on itself. A call the filters
//! would answer with anything but "allow" or "log" is named by
//! [`first_refused`]; a call that fails with an error code where the code
//! has another way ([`Need::or`]) or does without ([`Need::may_fail`]) is
//! not.
//!
//! The filters are classic BPF as the kernel checks them when they are
//! installed (`seccomp_check_filter`): loads from the call's data, a
//! scratch memory, 32-bit arithmetic, forward jumps, returns. [`run`]
//! interprets that subset; written here because the maintained seccomp
//! crates (seccompiler, libseccomp) compile filters but do not run them.
//! Anything outside the subset (the kernel would not take it) is answered
//! as "kill", so that an unreadable filter refuses.

/// One instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

impl Insn {
    /// The instructions in `bytes` (8 each, native order, as ptrace gives
    /// them out); a trailing piece is ignored.
    pub fn parse(bytes: &[u8]) -> Vec<Insn> {
        bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

/// `AUDIT_ARCH_X86_64`: the `arch` of a 64-bit x86 call.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// What a filter is run on (`struct seccomp_data`).
#[derive(Clone, Copy, Debug)]
pub struct Data {
    /// System call number.
    pub nr: i32,
    /// [`AUDIT_ARCH_X86_64`].
    pub arch: u32,
    /// Where the call is made from (no filter vmmap knows of looks).
    pub ip: u64,
    /// The arguments.
    pub args: [u64; 6],
}

impl Data {
    /// The 32-bit word at byte `off` (`BPF_LD | BPF_W | BPF_ABS`), if the
    /// kernel would allow the load (aligned, inside the 64 bytes).
    fn word(&self, off: u32) -> Option<u32> {
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        Some(match off {
            0 => self.nr as u32,
            4 => self.arch,
            8 => lo(self.ip),
            12 => hi(self.ip),
            16..=60 if off % 4 == 0 => {
                let a = self.args[(off as usize - 16) / 8];
                if off % 8 == 0 {
                    lo(a)
                } else {
                    hi(a)
                }
            }
            _ => return None,
        })
    }
}

/// The action part of a filter's answer (`SECCOMP_RET_ACTION_FULL`).
pub const ACTION: u32 = 0xffff_0000;
/// Kill the process.
pub const KILL_PROCESS: u32 = 0x8000_0000;
/// Kill the thread (0: also a filter's answer to a division by zero).
pub const KILL_THREAD: u32 = 0;
/// Send SIGSYS.
pub const TRAP: u32 = 0x0003_0000;
/// Fail with the error number in the low 16 bits.
pub const ERRNO: u32 = 0x0005_0000;
/// Hand the call to the supervising process.
pub const USER_NOTIF: u32 = 0x7fc0_0000;
/// Hand the call to a ptrace tracer.
pub const TRACE: u32 = 0x7ff0_0000;
/// Allow and log.
pub const LOG: u32 = 0x7ffc_0000;
/// Allow.
pub const ALLOW: u32 = 0x7fff_0000;

/// Runs one filter on `d`; its answer (action and data). A program the
/// kernel would not have accepted answers [`KILL_PROCESS`].
pub fn run(prog: &[Insn], d: &Data) -> u32 {
    // 32-bit registers and a 16-word scratch memory, as in classic BPF.
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    // Jumps only go forward, so the loop ends within prog.len() steps.
    // The opcodes are the ones seccomp_check_filter lets through.
    while let Some(&Insn { code, jt, jf, k }) = prog.get(pc) {
        pc += 1;
        // The second operand: X for the `| BPF_X` forms, else k.
        let src = if code & 0x08 != 0 { x } else { k };
        let slot = k as usize;
        match code {
            0x00 => a = k,  // LD IMM
            0x01 => x = k,  // LDX IMM
            0x80 => a = 64, // LD W LEN
            0x81 => x = 64, // LDX W LEN
            0x20 => match d.word(k) {
                // LD W ABS
                Some(w) => a = w,
                None => return KILL_PROCESS,
            },
            0x60 | 0x61 => match mem.get(slot) {
                // LD MEM, LDX MEM
                Some(&m) if code == 0x60 => a = m,
                Some(&m) => x = m,
                None => return KILL_PROCESS,
            },
            0x02 | 0x03 => match mem.get_mut(slot) {
                // ST, STX
                Some(m) => *m = if code == 0x02 { a } else { x },
                None => return KILL_PROCESS,
            },
            0x07 => x = a,                // TAX
            0x87 => a = x,                // TXA
            0x84 => a = a.wrapping_neg(), // ALU NEG
            // ALU op K or X: ADD SUB MUL DIV OR AND LSH RSH XOR.
            0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c | 0x44 | 0x4c | 0x54 | 0x5c
            | 0x64 | 0x6c | 0x74 | 0x7c | 0xa4 | 0xac => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    // The kernel ends a filter that divides by zero with 0.
                    0x30 if src == 0 => return KILL_THREAD,
                    0x30 => a / src,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    _ => a ^ src,
                }
            }
            0x05 => pc = pc.saturating_add(slot), // JA
            // JEQ JGT JGE JSET, K or X.
            0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d => {
                let taken = match code & 0xf0 {
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    _ => a & src != 0,
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            0x06 => return k, // RET K
            0x16 => return a, // RET A
            _ => return KILL_PROCESS,
        }
    }
    // Ran off the end: the kernel requires a return last.
    KILL_PROCESS
}

/// The answer of a thread's filters together: the kernel runs them all
/// and takes the action that comes first in its order of precedence (kill
/// the process, kill the thread, trap, errno, notify, trace, log, allow),
/// which is the lowest as a signed number. No filter: allow.
pub fn verdict(filters: &[Vec<Insn>], d: &Data) -> u32 {
    filters
        .iter()
        .map(|f| run(f, d))
        .min_by_key(|r| (r & ACTION) as i32)
        .unwrap_or(ALLOW)
}

/// What an answer does to the call, in words, if it is not allowed.
fn refusal(r: u32) -> Option<String> {
    match r & ACTION {
        ALLOW | LOG => None,
        ERRNO => {
            let e = (r & 0xffff) as i32;
            Some(format!(
                "fail with error {e} ({})",
                std::io::Error::from_raw_os_error(e).kind()
            ))
        }
        TRAP => Some("send it SIGSYS".into()),
        USER_NOTIF => Some("hand it to the process's supervisor".into()),
        TRACE => Some("hand it to a tracer".into()),
        KILL_THREAD => Some("kill the thread making it".into()),
        _ => Some("kill the process".into()),
    }
}

/// A system call the attach makes in the process, with arguments like
/// those it passes (a filter may look at them).
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// As shown in messages: the call and what its arguments say.
    pub shown: &'static str,
    /// Its number.
    pub nr: i64,
    /// Its arguments, as far as a filter could tell them apart.
    pub args: [u64; 6],
}

/// A call the attach needs, or ways to the same end, tried in order.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// The call.
    pub call: Call,
    /// Another way, taken when `call` fails with an error code (glibc's
    /// `clone` when `clone3` is refused with ENOSYS, `unshare` when
    /// `close_range` is refused).
    pub or: Option<&'static Need>,
    /// The one error code that leads to `or` (None: any).
    pub or_on: Option<u32>,
    /// What it is for, in the message.
    pub why: &'static str,
    /// Failing with an error code is harmless (the code does without).
    pub may_fail: bool,
    /// Only when the agent is loaded from memory (a process in another
    /// mount namespace).
    pub from_memory: bool,
    /// Only under `vmmap run` (the trace file opened again after a call
    /// that needs the process alone); an attach never makes it.
    pub launched: bool,
}

/// `O_RDONLY | O_CLOEXEC`.
const READ_ONLY: u64 = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
const AT_FDCWD: u64 = libc::AT_FDCWD as i64 as u64;
const R: u64 = libc::PROT_READ as u64;
const W: u64 = libc::PROT_WRITE as u64;
const X: u64 = libc::PROT_EXEC as u64;
const PRIVATE: u64 = libc::MAP_PRIVATE as u64;
const FIXED: u64 = libc::MAP_FIXED as u64;
const ANON: u64 = libc::MAP_ANONYMOUS as u64;
const DENYWRITE: u64 = libc::MAP_DENYWRITE as u64;
const NORESERVE: u64 = libc::MAP_NORESERVE as u64;
const NO_FD: u64 = u64::MAX;
/// Placeholders for pointers, descriptors and lengths (no filter vmmap
/// knows of compares them).
const P: u64 = 0x7f00_0000_0000;
const FD: u64 = 3;
const LEN: u64 = 0x10_0000;
/// glibc's flags for a thread's `clone`.
const THREAD_CLONE: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;
const FUTEX_PRIVATE: u64 = libc::FUTEX_PRIVATE_FLAG as u64;

const fn call(shown: &'static str, nr: i64, args: [u64; 6]) -> Call {
    Call { shown, nr, args }
}

const fn need(call: Call, why: &'static str) -> Need {
    Need {
        call,
        or: None,
        or_on: None,
        why,
        may_fail: false,
        from_memory: false,
        launched: false,
    }
}

const fn optional(call: Call, why: &'static str) -> Need {
    Need {
        may_fail: true,
        ..need(call, why)
    }
}

const LOAD: &str = "loading the agent";
const HOOK: &str = "hooking the program's relocation slots";
const THREAD: &str = "starting the agent's thread";
const AGENT: &str = "the agent's work";
const TABLE: &str = "giving the agent's thread a descriptor table of its own";

static CLONE: Need = need(
    call(
        "clone(thread)",
        libc::SYS_clone,
        [THREAD_CLONE, P, P, P, P, 0],
    ),
    THREAD,
);
static UNSHARE: Need = need(
    call(
        "unshare(CLONE_FILES)",
        libc::SYS_unshare,
        [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0],
    ),
    TABLE,
);

/// The system calls an attach makes in the process: the way back's
/// marker and the restart of the call the borrowed thread was in, the
/// loader's while it maps the agent, the agent's while it hooks the
/// program, starts its thread and records, and glibc's for that thread.
/// Found by tracing attaches (`perf trace`) and reading the agent; the
/// integration test `attach_under_a_seccomp_filter_...` runs an attach
/// in a process whose filter kills every other call, so a call missing
/// here fails it. `membarrier` is absent: the agent makes none in a
/// filtered process.
pub static NEEDED: &[Need] = &[
    need(
        call("getpid", libc::SYS_getpid, [0; 6]),
        "the way back's marker",
    ),
    need(
        call("restart_syscall", libc::SYS_restart_syscall, [0; 6]),
        "resuming the borrowed thread's sleep",
    ),
    need(
        call(
            "openat(O_RDONLY)",
            libc::SYS_openat,
            [AT_FDCWD, P, READ_ONLY, 0, 0, 0],
        ),
        LOAD,
    ),
    need(call("read", libc::SYS_read, [FD, P, 832, 0, 0, 0]), LOAD),
    need(
        call(
            "newfstatat",
            libc::SYS_newfstatat,
            [FD, P, P, libc::AT_EMPTY_PATH as u64, 0, 0],
        ),
        LOAD,
    ),
    need(call("fstat", libc::SYS_fstat, [FD, P, 0, 0, 0, 0]), LOAD),
    need(
        call(
            "mmap(PROT_READ, file)",
            libc::SYS_mmap,
            [0, LEN, R, PRIVATE | DENYWRITE, FD, 0],
        ),
        LOAD,
    ),
    need(
        call(
            "mmap(PROT_READ|PROT_EXEC, file)",
            libc::SYS_mmap,
            [P, LEN, R | X, PRIVATE | FIXED | DENYWRITE, FD, 0x1000],
        ),
        LOAD,
    ),
    need(
        call(
            "mmap(PROT_READ|PROT_WRITE, file)",
            libc::SYS_mmap,
            [P, LEN, R | W, PRIVATE | FIXED | DENYWRITE, FD, 0x2000],
        ),
        LOAD,
    ),
    need(
        call(
            "mmap(PROT_READ|PROT_WRITE, anonymous, fixed)",
            libc::SYS_mmap,
            [P, LEN, R | W, PRIVATE | FIXED | ANON, NO_FD, 0],
        ),
        LOAD,
    ),
    need(
        call(
            "mmap(PROT_READ|PROT_WRITE, anonymous)",
            libc::SYS_mmap,
            [0, LEN, R | W, PRIVATE | ANON, NO_FD, 0],
        ),
        AGENT,
    ),
    need(
        call(
            "mmap(PROT_READ|PROT_WRITE, anonymous, MAP_NORESERVE)",
            libc::SYS_mmap,
            [0, LEN, R | W, PRIVATE | ANON | NORESERVE, NO_FD, 0],
        ),
        AGENT,
    ),
    need(
        call(
            "mprotect(PROT_NONE)",
            libc::SYS_mprotect,
            [P, LEN, 0, 0, 0, 0],
        ),
        LOAD,
    ),
    need(
        call(
            "mprotect(PROT_READ)",
            libc::SYS_mprotect,
            [P, LEN, R, 0, 0, 0],
        ),
        LOAD,
    ),
    need(
        call(
            "mprotect(PROT_READ|PROT_WRITE)",
            libc::SYS_mprotect,
            [P, LEN, R | W, 0, 0, 0],
        ),
        HOOK,
    ),
    need(call("munmap", libc::SYS_munmap, [P, LEN, 0, 0, 0, 0]), LOAD),
    need(call("close", libc::SYS_close, [FD, 0, 0, 0, 0, 0]), LOAD),
    Need {
        from_memory: true,
        ..need(
            call(
                "memfd_create",
                libc::SYS_memfd_create,
                [
                    P,
                    (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as u64,
                    0,
                    0,
                    0,
                    0,
                ],
            ),
            "loading the agent from memory",
        )
    },
    optional(
        call(
            "prctl(PR_SET_VMA)",
            libc::SYS_prctl,
            [0x5356_4d41, 0, P, LEN, P, 0],
        ),
        "naming the agent's memory",
    ),
    need(call("gettid", libc::SYS_gettid, [0; 6]), AGENT),
    need(
        call(
            "rt_sigprocmask",
            libc::SYS_rt_sigprocmask,
            [libc::SIG_SETMASK as u64, P, P, 8, 0, 0],
        ),
        THREAD,
    ),
    need(
        call(
            "rt_sigprocmask(SIG_BLOCK)",
            libc::SYS_rt_sigprocmask,
            [libc::SIG_BLOCK as u64, P, P, 8, 0, 0],
        ),
        THREAD,
    ),
    Need {
        or: Some(&CLONE),
        or_on: Some(libc::ENOSYS as u32),
        ..need(
            call("clone3", libc::SYS_clone3, [P, 88, 0, 0, 0, 0]),
            THREAD,
        )
    },
    optional(
        call(
            "set_robust_list",
            libc::SYS_set_robust_list,
            [P, 24, 0, 0, 0, 0],
        ),
        THREAD,
    ),
    optional(
        call("rseq", libc::SYS_rseq, [P, 32, 0, 0x5305_3053, 0, 0]),
        THREAD,
    ),
    optional(
        call(
            "getrandom",
            libc::SYS_getrandom,
            [P, 8, libc::GRND_NONBLOCK as u64, 0, 0, 0],
        ),
        THREAD,
    ),
    Need {
        or: Some(&UNSHARE),
        ..need(
            call(
                "close_range(CLOSE_RANGE_UNSHARE)",
                libc::SYS_close_range,
                [0, FD - 1, 2, 0, 0, 0],
            ),
            TABLE,
        )
    },
    Need {
        or: Some(&UNSHARE),
        ..need(
            call(
                "close_range",
                libc::SYS_close_range,
                [FD + 1, u32::MAX as u64, 0, 0, 0, 0],
            ),
            TABLE,
        )
    },
    need(
        call(
            "prlimit64",
            libc::SYS_prlimit64,
            [0, libc::RLIMIT_NOFILE as u64, 0, P, 0, 0],
        ),
        AGENT,
    ),
    need(
        call(
            "futex(FUTEX_WAIT_PRIVATE)",
            libc::SYS_futex,
            [P, libc::FUTEX_WAIT as u64 | FUTEX_PRIVATE, 0, P, 0, 0],
        ),
        AGENT,
    ),
    need(
        call(
            "futex(FUTEX_WAKE_PRIVATE)",
            libc::SYS_futex,
            [P, libc::FUTEX_WAKE as u64 | FUTEX_PRIVATE, 1, 0, 0, 0],
        ),
        AGENT,
    ),
    need(
        call(
            "futex(FUTEX_WAIT_BITSET_PRIVATE)",
            libc::SYS_futex,
            [
                P,
                libc::FUTEX_WAIT_BITSET as u64 | FUTEX_PRIVATE | libc::FUTEX_CLOCK_REALTIME as u64,
                0,
                P,
                0,
                u32::MAX as u64,
            ],
        ),
        AGENT,
    ),
    need(
        call(
            "statx",
            libc::SYS_statx,
            [AT_FDCWD, P, libc::AT_STATX_SYNC_AS_STAT as u64, 0xfff, P, 0],
        ),
        AGENT,
    ),
    need(
        call("readlink", libc::SYS_readlink, [P, P, 4096, 0, 0, 0]),
        AGENT,
    ),
    need(
        call("getcwd", libc::SYS_getcwd, [P, 4096, 0, 0, 0, 0]),
        AGENT,
    ),
    need(call("getppid", libc::SYS_getppid, [0; 6]), AGENT),
    optional(
        call(
            "sched_getaffinity",
            libc::SYS_sched_getaffinity,
            [0, 128, P, 0, 0, 0],
        ),
        "placing the agent's thread",
    ),
    optional(
        call(
            "sched_setaffinity",
            libc::SYS_sched_setaffinity,
            [0, 128, P, 0, 0, 0],
        ),
        "placing the agent's thread",
    ),
    need(
        call("tgkill(signal 0)", libc::SYS_tgkill, [1, 1, 0, 0, 0, 0]),
        AGENT,
    ),
    need(call("sched_yield", libc::SYS_sched_yield, [0; 6]), AGENT),
    need(
        call(
            "madvise(MADV_DONTNEED)",
            libc::SYS_madvise,
            [P, LEN, libc::MADV_DONTNEED as u64, 0, 0, 0],
        ),
        AGENT,
    ),
    need(
        call(
            "clock_nanosleep",
            libc::SYS_clock_nanosleep,
            [libc::CLOCK_REALTIME as u64, 0, P, P, 0, 0],
        ),
        AGENT,
    ),
    need(
        call("nanosleep", libc::SYS_nanosleep, [P, P, 0, 0, 0, 0]),
        AGENT,
    ),
    need(
        call("exit", libc::SYS_exit, [0; 6]),
        "ending the agent's thread at detach",
    ),
    optional(
        call("pread64", libc::SYS_pread64, [FD, P, 1024, 0, 0, 0]),
        "counting the process's threads before a call that needs it alone",
    ),
    optional(
        call(
            "faccessat(R_OK)",
            libc::SYS_faccessat,
            [AT_FDCWD, P, libc::R_OK as u64, 0, 0, 0],
        ),
        "whether an exec's new image may read the agent",
    ),
    Need {
        launched: true,
        ..optional(
            call(
                "openat(O_WRONLY|O_APPEND)",
                libc::SYS_openat,
                [AT_FDCWD, P, REOPEN, 0, 0, 0],
            ),
            "opening the trace again after a call that needs the process alone",
        )
    },
];

/// How the agent opens the trace file again (`writer::reopen`).
const REOPEN: u64 = (libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;

/// The first needed call that `filters` (one thread's) do not let
/// through, with what they would do instead; None if every one passes.
/// `from_memory`: the agent is loaded from memory; `launched`: under
/// `vmmap run` rather than attached.
pub fn first_refused(
    filters: &[Vec<Insn>],
    from_memory: bool,
    launched: bool,
) -> Option<(&'static Need, String)> {
    NEEDED
        .iter()
        .filter(|n| from_memory || !n.from_memory)
        .filter(|n| launched || !n.launched)
        .find_map(|n| refused(filters, n))
}

fn refused(filters: &[Vec<Insn>], mut n: &'static Need) -> Option<(&'static Need, String)> {
    loop {
        let d = Data {
            nr: n.call.nr as i32,
            arch: AUDIT_ARCH_X86_64,
            ip: 0,
            args: n.call.args,
        };
        let r = verdict(filters, &d);
        let why = refusal(r)?;
        if r & ACTION != ERRNO {
            return Some((n, why));
        }
        let errno = r & 0xffff;
        match n.or.filter(|_| n.or_on.is_none_or(|e| e == errno)) {
            Some(next) => n = next,
            None if n.may_fail => return None,
            None => return Some((n, why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// Allows everything but `nr`, which gets `action`.
    fn deny(nr: i64, action: u32) -> Vec<Insn> {
        vec![
            i(LD_NR, 0, 0, 4),
            i(JEQ, 1, 0, AUDIT_ARCH_X86_64),
            i(RET, 0, 0, KILL_PROCESS),
            i(LD_NR, 0, 0, 0),
            i(JEQ, 0, 1, nr as u32),
            i(RET, 0, 0, action),
            i(RET, 0, 0, ALLOW),
        ]
    }

    fn data(nr: i64, args: [u64; 6]) -> Data {
        Data {
            nr: nr as i32,
            arch: AUDIT_ARCH_X86_64,
            ip: 0,
            args,
        }
    }

    #[test]
    fn a_filter_answers_by_number_and_architecture() {
        let f = deny(libc::SYS_openat, KILL_PROCESS);
        assert_eq!(run(&f, &data(libc::SYS_openat, [0; 6])), KILL_PROCESS);
        assert_eq!(run(&f, &data(libc::SYS_read, [0; 6])), ALLOW);
        let mut d = data(libc::SYS_read, [0; 6]);
        d.arch = 0x4000_0003; // i386
        assert_eq!(run(&f, &d), KILL_PROCESS);
    }

    #[test]
    fn the_strictest_answer_of_all_filters_wins() {
        let errno = deny(libc::SYS_mmap, ERRNO | 1);
        let trap = deny(libc::SYS_mmap, TRAP);
        let d = data(libc::SYS_mmap, [0; 6]);
        assert_eq!(verdict(&[errno.clone(), trap.clone()], &d), TRAP);
        assert_eq!(verdict(&[trap, errno.clone()], &d), TRAP);
        let kill = deny(libc::SYS_mmap, KILL_PROCESS);
        assert_eq!(verdict(&[errno, kill], &d), KILL_PROCESS);
        assert_eq!(verdict(&[], &d), ALLOW);
    }

    #[test]
    fn arguments_scratch_memory_and_arithmetic_are_read_as_the_kernel_does() {
        // Kill an mprotect whose third argument has PROT_EXEC, through the
        // scratch memory, JSET and an ALU AND, and the high half of args[2].
        let f = vec![
            i(LD_NR, 0, 0, 0),
            i(JEQ, 0, 7, libc::SYS_mprotect as u32),
            i(LD_NR, 0, 0, 16 + 2 * 8 + 4), // args[2] high half
            i(JEQ, 0, 5, 0),
            i(LD_NR, 0, 0, 16 + 2 * 8),            // args[2] low half
            i(0x02, 0, 0, 3),                      // ST M[3]
            i(0x61, 0, 0, 3),                      // LDX MEM M[3]
            i(0x87, 0, 0, 0),                      // TXA
            i(0x45, 1, 0, libc::PROT_EXEC as u32), // JSET
            i(RET, 0, 0, ALLOW),
            i(RET, 0, 0, KILL_PROCESS),
        ];
        let rw = data(libc::SYS_mprotect, [0, 0, 3, 0, 0, 0]);
        let rx = data(libc::SYS_mprotect, [0, 0, 5, 0, 0, 0]);
        let high = data(libc::SYS_mprotect, [0, 0, 1 << 32 | 5, 0, 0, 0]);
        assert_eq!(run(&f, &rw), ALLOW);
        assert_eq!(run(&f, &rx), KILL_PROCESS);
        assert_eq!(run(&f, &high), ALLOW);
    }

    #[test]
    fn what_the_kernel_would_not_take_answers_kill() {
        let d = data(0, [0; 6]);
        assert_eq!(run(&[], &d), KILL_PROCESS);
        // A load past seccomp_data, an unaligned one, a jump off the end,
        // a scratch slot that does not exist, an unknown class.
        for bad in [
            vec![i(LD_NR, 0, 0, 64), i(RET, 0, 0, ALLOW)],
            vec![i(LD_NR, 0, 0, 2), i(RET, 0, 0, ALLOW)],
            vec![i(0x05, 0, 0, 5), i(RET, 0, 0, ALLOW)],
            vec![i(0x02, 0, 0, 16), i(RET, 0, 0, ALLOW)],
            vec![i(0x28, 0, 0, 0), i(RET, 0, 0, ALLOW)], // LD H ABS
        ] {
            assert_eq!(run(&bad, &d), KILL_PROCESS, "{bad:?}");
        }
        // Division by zero ends the filter with 0.
        let div = vec![i(0x3c, 0, 0, 0), i(RET, 0, 0, ALLOW)]; // DIV X
        assert_eq!(run(&div, &d), KILL_THREAD);
    }

    #[test]
    fn instructions_are_read_from_ptrace_bytes() {
        let mut b = Vec::new();
        for x in deny(libc::SYS_read, TRAP) {
            b.extend_from_slice(&x.code.to_ne_bytes());
            b.extend_from_slice(&[x.jt, x.jf]);
            b.extend_from_slice(&x.k.to_ne_bytes());
        }
        b.push(0);
        assert_eq!(Insn::parse(&b), deny(libc::SYS_read, TRAP));
    }

    #[test]
    fn a_needed_call_refused_is_named_and_a_way_around_is_taken() {
        assert!(first_refused(&[], true, false).is_none());
        let (n, why) =
            first_refused(&[deny(libc::SYS_openat, KILL_PROCESS)], false, false).unwrap();
        assert_eq!(n.call.shown, "openat(O_RDONLY)");
        assert_eq!(why, "kill the process");
        // clone3 refused with ENOSYS: glibc's clone is the way.
        let enosys = deny(libc::SYS_clone3, ERRNO | libc::ENOSYS as u32);
        assert!(first_refused(std::slice::from_ref(&enosys), false, false).is_none());
        let (n, why) = first_refused(&[enosys, deny(libc::SYS_clone, TRAP)], false, false).unwrap();
        assert_eq!(
            (n.call.shown, why.as_str()),
            ("clone(thread)", "send it SIGSYS")
        );
        // An error where nothing else would do.
        let (n, why) = first_refused(&[deny(libc::SYS_mmap, ERRNO | 1)], false, false).unwrap();
        assert!(n.call.shown.starts_with("mmap"), "{}", n.call.shown);
        assert!(why.starts_with("fail with error 1 ("), "{why}");
        // glibc goes from clone3 to clone on ENOSYS only.
        let (n, _) = first_refused(&[deny(libc::SYS_clone3, ERRNO | 1)], false, false).unwrap();
        assert_eq!(n.call.shown, "clone3");
        // An error where the agent does without; a kill where it would not.
        assert!(first_refused(&[deny(libc::SYS_rseq, ERRNO | 1)], false, false).is_none());
        assert!(first_refused(&[deny(libc::SYS_rseq, KILL_THREAD)], false, false).is_some());
        // memfd_create only matters when loading from memory.
        let memfd = deny(libc::SYS_memfd_create, KILL_PROCESS);
        assert!(first_refused(std::slice::from_ref(&memfd), false, false).is_none());
        assert!(first_refused(&[memfd], true, false).is_some());
    }
}
