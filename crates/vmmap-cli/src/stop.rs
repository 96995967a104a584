//! The flag that Ctrl+C and `kill` raise, for the commands that must
//! finish their file before they end instead of dying mid-write.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A flag raised by SIGINT, SIGTERM or SIGQUIT. A signal whose handler
/// cannot be installed keeps its default action (the command then ends
/// as it would have without this).
pub(crate) fn on_stop_signals() -> Arc<AtomicBool> {
    let raised = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGQUIT,
    ] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&raised));
    }
    raised
}
