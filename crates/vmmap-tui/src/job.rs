//! Work on a thread of its own that the UI polls without waiting and stops
//! by dropping: the Trace view's analysis and the Owner column's reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;

/// A running piece of work and its one result.
pub(crate) struct Job<T> {
    cancel: Arc<AtomicBool>,
    rx: Receiver<Result<T, String>>,
    /// What the work is, for the message when its thread dies.
    what: &'static str,
}

impl<T: Send + 'static> Job<T> {
    /// Runs `work` on a thread named `name`; `work` reads the flag and
    /// stops early once the job is dropped. A thread that cannot start is
    /// a result too, so the UI says why instead of waiting.
    pub(crate) fn start(
        name: &str,
        what: &'static str,
        work: impl FnOnce(&AtomicBool) -> Result<T, String> + Send + 'static,
    ) -> Job<T> {
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let c = Arc::clone(&cancel);
        let spawned = std::thread::Builder::new().name(name.into()).spawn({
            let tx = tx.clone();
            move || {
                let _ = tx.send(work(&c));
            }
        });
        if let Err(e) = spawned {
            let _ = tx.send(Err(format!("cannot start the {what} thread: {e}")));
        }
        Job { cancel, rx, what }
    }

    /// The result, once there is one.
    pub(crate) fn poll(&self) -> Option<Result<T, String>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err(format!("the {} thread failed", self.what)))
            }
        }
    }
}

impl<T> Drop for Job<T> {
    fn drop(&mut self) {
        // The thread reads on to the end of its file but stops working.
        self.cancel.store(true, Ordering::Relaxed);
    }
}
