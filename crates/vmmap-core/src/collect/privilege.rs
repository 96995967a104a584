//! Explains a permission error: which privilege the kernel wanted and how
//! to get it. Reading smaps needs `PTRACE_MODE_READ` access to the target:
//! the same uid (and a dumpable target), or `CAP_SYS_PTRACE`.

use super::procdir::ProcDir;
use crate::proc::status;

/// `CAP_SYS_PTRACE` from `capability.h`.
const CAP_SYS_PTRACE: u32 = 19;

/// Whether this process holds an effective capability.
pub(crate) fn has_capability(cap: u32) -> bool {
    let Ok(s) = std::fs::read("/proc/self/status") else {
        return false;
    };
    let Ok(s) = status::parse(&s) else {
        return false;
    };
    s.get("CapEff")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .is_some_and(|bits| bits & (1 << cap) != 0)
}

/// The user name for a uid, from the password database.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let pw = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    Some(pw.name)
}

/// A uid as people read it: `uid 1000 (alice)`, or `uid 1000` when the
/// password database has no name for it.
pub fn who(uid: u32) -> String {
    match user_name(uid) {
        Some(n) => format!("uid {uid} ({n})"),
        None => format!("uid {uid}"),
    }
}

/// A one-line explanation of why access to `dir`'s process was refused.
pub(crate) fn hint(dir: &ProcDir) -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let target = std::fs::read(dir.path("status"))
        .ok()
        .and_then(|b| status::parse(&b).ok())
        .and_then(|s| s.uids());
    let cap = has_capability(CAP_SYS_PTRACE);
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match target {
        Some(uids) if uids[0] != me && !cap => format!(
            "process {} belongs to {} and vmmap runs as {} without CAP_SYS_PTRACE; run vmmap as that user, as root (sudo), or with CAP_SYS_PTRACE",
            dir.pid,
            who(uids[0]),
            who(me)
        ),
        Some(_) if !cap && yama == Some(3) => "kernel.yama.ptrace_scope is 3, which forbids inspecting other processes even as their owner; only a reboot lowers it".to_string(),
        Some(_) if !cap => format!(
            "process {} is yours but refuses inspection: it is probably not dumpable (setuid or setcap binary, or prctl(PR_SET_DUMPABLE, 0)); run vmmap as root or with CAP_SYS_PTRACE",
            dir.pid
        ),
        _ if cap => "access refused even with CAP_SYS_PTRACE: a security module (SELinux, AppArmor, lockdown) or a container boundary stops it; check the audit log".to_string(),
        _ => "run vmmap as the process's owner, as root (sudo), or with CAP_SYS_PTRACE".to_string(),
    }
}
