//! The standard descriptors vmmap was started without. Rust's runtime
//! opens /dev/null on a closed stdin, stdout or stderr before `main`, so
//! that vmmap never writes its own output into a file it opened itself.
//! The program `vmmap run` starts inherits those, where without vmmap it
//! would find them closed: `prog >&-` then wrote into /dev/null and
//! succeeded instead of failing, and its first `open` got 3 instead of 1.
//! So they are noted before the runtime starts and closed again in the
//! program (`vmmap_trace::launch::Launch::closed_stdio`).

use std::sync::atomic::{AtomicU8, Ordering};

/// Bit `fd` set: descriptor `fd` (0, 1 or 2) was closed at start.
static CLOSED: AtomicU8 = AtomicU8::new(0);

/// Notes which standard descriptors are closed. Run by the loader from
/// `.init_array`, before `main` and so before Rust's runtime fills them.
extern "C" fn note() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            CLOSED.fetch_or(1 << fd, Ordering::Relaxed);
        }
    }
}

/// The loader's list of functions to run before `main`: a plain
/// `extern "C" fn()` that touches only an atomic, which needs nothing of
/// the Rust runtime.
#[used]
#[link_section = ".init_array"]
static NOTE: extern "C" fn() = note;

/// The standard descriptors closed when vmmap started (bit `fd`).
pub(crate) fn at_start() -> u8 {
    CLOSED.load(Ordering::Relaxed)
}
