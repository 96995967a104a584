//! What vmmap was started with that Rust's runtime changes before `main`
//! and std's spawn changes again in a child, for `vmmap run` and the
//! interactive view's Launch to hand the program exactly what it would
//! have had without vmmap ([`vmmap_trace::launch::Inherited`], recorded
//! at the start of `main`):
//!
//! - a closed stdin, stdout or stderr: the runtime opens /dev/null on it
//!   (so that vmmap never writes its output into a file it opened). The
//!   program inherited that: `prog >&-` wrote into /dev/null and
//!   succeeded, and its first `open` got 3 instead of the closed one;
//! - SIGPIPE ignored (a Python `os.exec*`, `nohup`-style wrappers): the
//!   runtime ignores it in vmmap and std's spawn sets the default action
//!   in the child, so a write to a closed pipe killed the program where it
//!   would have failed with EPIPE;
//! - the signal mask: std's spawn unblocks every signal in the child.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use vmmap_trace::launch::Inherited;

/// Bit `fd` set: descriptor `fd` (0, 1 or 2) was closed at start.
static CLOSED: AtomicU8 = AtomicU8::new(0);
static SIGPIPE_IGNORED: AtomicBool = AtomicBool::new(false);
/// Bit `n - 1` set: signal `n` was blocked at start.
static BLOCKED: AtomicU64 = AtomicU64::new(0);

/// Notes the above. Run by the loader from `.init_array`, before `main`
/// and so before Rust's runtime changes any of it.
extern "C" fn note() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            CLOSED.fetch_or(1 << fd, Ordering::Relaxed);
        }
    }
    // SAFETY: queries into zeroed structs; nothing is changed.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0 {
            SIGPIPE_IGNORED.store(old.sa_sigaction == libc::SIG_IGN, Ordering::Relaxed);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) == 0 {
            let mask = (1..=64).filter(|&s| libc::sigismember(&set, s) == 1);
            BLOCKED.store(mask.fold(0, |m, s| m | 1 << (s - 1)), Ordering::Relaxed);
        }
    }
}

/// The loader's list of functions to run before `main`: a plain
/// `extern "C" fn()` that makes system calls and stores to atomics,
/// which needs nothing of the Rust runtime.
#[used]
#[link_section = ".init_array"]
static NOTE: extern "C" fn() = note;

/// What vmmap was started with, as noted before the runtime.
pub(crate) fn at_start() -> Inherited {
    Inherited {
        closed_stdio: CLOSED.load(Ordering::Relaxed),
        sigpipe_ignored: SIGPIPE_IGNORED.load(Ordering::Relaxed),
        blocked: BLOCKED.load(Ordering::Relaxed),
    }
}
