//! The flag that Ctrl+C and `kill` raise, for the commands that must
//! finish their file before they end instead of dying mid-write, and what
//! `vmmap run` passes on to the program it runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// Whether `sig` is ignored now (as `nohup`, or a shell's background job,
/// leaves SIGHUP, SIGINT and SIGQUIT). A handler would undo that for the
/// commands started after it: their exec resets a handled signal to its
/// default action, where an ignored one stays ignored.
fn ignored(sig: i32) -> bool {
    // SAFETY: reads the disposition into a zeroed struct; changes nothing.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// A flag raised by SIGINT, SIGTERM or SIGQUIT. A signal whose handler
/// cannot be installed keeps its default action (the command then ends
/// as it would have without this); an ignored one stays ignored.
pub(crate) fn on_stop_signals() -> Arc<AtomicBool> {
    let raised = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGQUIT] {
        if !ignored(sig) {
            let _ = signal_hook::flag::register(sig, Arc::clone(&raised));
        }
    }
    raised
}

/// The stop signals `vmmap run` received, by who sent them: the terminal
/// (Ctrl+C, Ctrl+\, a hang-up), which sends them to the whole foreground
/// process group, the program included; or a process (`kill`), which
/// sent them to vmmap alone. Bit `sig` of each mask is set.
#[derive(Default)]
pub(crate) struct Received {
    from_terminal: AtomicU64,
    from_process: AtomicU64,
}

impl Received {
    /// The signals received since the last call, as (from the terminal,
    /// from a process), each a list of signal numbers.
    pub(crate) fn take(&self) -> (Vec<i32>, Vec<i32>) {
        let list = |mask: u64| (1..64).filter(|s| mask & 1 << s != 0).collect();
        (
            list(self.from_terminal.swap(0, Ordering::Relaxed)),
            list(self.from_process.swap(0, Ordering::Relaxed)),
        )
    }
}

/// Handles SIGINT, SIGQUIT, SIGTERM and SIGHUP for `vmmap run`, which must
/// outlive its program to close the file and take the last snapshot, and
/// must not change what the program receives. Ignored signals stay
/// ignored (the program inherits that, as it would without vmmap).
pub(crate) fn on_run_signals() -> Arc<Received> {
    let got = Arc::new(Received::default());
    for sig in [SIGINT, SIGQUIT, SIGTERM, SIGHUP] {
        if ignored(sig) {
            continue;
        }
        let g = Arc::clone(&got);
        // SAFETY: the action only reads the siginfo and sets bits in
        // atomics, which is async-signal-safe.
        let _ = unsafe {
            signal_hook_registry::register_sigaction(sig, move |info: &libc::siginfo_t| {
                // A positive si_code is the kernel's own (SI_KERNEL for the
                // terminal's); kill, tgkill and sigqueue give 0 or less.
                let mask = if info.si_code > 0 {
                    &g.from_terminal
                } else {
                    &g.from_process
                };
                mask.fetch_or(1 << sig, Ordering::Relaxed);
            })
        };
    }
    got
}
