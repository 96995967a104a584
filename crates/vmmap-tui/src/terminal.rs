//! Terminal setup and the promise that it is restored on every way out:
//! normal quit, error return, panic (a hook restores before the message is
//! printed), and SIGTERM/SIGHUP/SIGINT (flags the event loop checks).
//! Ctrl+C arrives as a key in raw mode and quits like `q`.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

/// The terminal type the app draws on.
pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Puts the terminal back as it was. Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// Enters raw mode and the alternate screen, installs the panic hook and
/// the watchdog. Returns the terminal and the "stop now" flag.
pub fn init() -> io::Result<(Term, Arc<AtomicBool>)> {
    let stop = Arc::new(AtomicBool::new(false));
    watchdog(Arc::clone(&stop))?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture) {
        restore();
        return Err(e);
    }
    match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(t) => Ok((t, stop)),
        Err(e) => {
            restore();
            Err(e)
        }
    }
}

/// A thread that ends the UI on SIGTERM, SIGHUP or SIGINT, or when the
/// terminal hangs up. It sets `stop` for the event loop; if the loop does
/// not exit within half a second it restores the terminal and exits the
/// process itself. That second step is needed: when the terminal goes
/// away, crossterm's event reader spins on end-of-file and never returns
/// to the loop (crossterm issue 793).
fn watchdog(stop: Arc<AtomicBool>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])?;
    std::thread::Builder::new()
        .name("vmmap-watchdog".into())
        .spawn(move || loop {
            let signalled = signals.pending().next().is_some();
            if signalled || hung_up() {
                stop.store(true, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(500));
                restore();
                std::process::exit(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        })?;
    Ok(())
}

/// Whether the terminal on standard input has hung up.
fn hung_up() -> bool {
    let mut fd = libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    };
    // SAFETY: `fd` is a valid pollfd for the duration of the call, and a
    // zero timeout makes poll return at once.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents & (libc::POLLHUP | libc::POLLNVAL) != 0
}

/// Whether a stop signal arrived.
pub fn stopped(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
