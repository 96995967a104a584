//! The Owner column of a traced run's snapshot, computed off the UI
//! thread: two streaming reads of the trace (see
//! [`vmmap_trace::region_owners`]) and the symbols of the stacks
//! shown, which are written back into the file's symbol cache.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;

use vmmap_core::model::Snapshot;
use vmmap_trace::region_owners::{snapshot_owners, OwnerOptions, SnapshotOwners};
use vmmap_trace::symbols::SymbolOptions;

/// Which snapshot owners are for: the file, and the snapshot's process
/// and time (unique within a file).
pub type OwnersKey = (PathBuf, u32, u64);

/// The key of `snap` in the file at `path`.
pub fn key(path: &std::path::Path, snap: &Snapshot) -> OwnersKey {
    (path.to_path_buf(), snap.process.pid, snap.taken_at_unix_ns)
}

/// What a job ends with: the owners, None when the file holds no trace
/// of the snapshot's process, or why it could not be read.
pub type OwnersResult = Result<Option<Arc<SnapshotOwners>>, String>;

/// Owners being computed on a thread of their own.
pub struct OwnersJob {
    /// The snapshot they are for.
    pub key: OwnersKey,
    cancel: Arc<AtomicBool>,
    rx: Receiver<OwnersResult>,
}

impl OwnersJob {
    /// Starts computing the owners of `snap` from the trace in `path`.
    pub fn start(path: PathBuf, snap: Arc<Snapshot>) -> OwnersJob {
        let key = key(&path, &snap);
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let c = Arc::clone(&cancel);
        let spawned = std::thread::Builder::new()
            .name("vmmap-owners".into())
            .spawn({
                let tx = tx.clone();
                move || {
                    let _ = tx.send(compute(&path, &snap, &c));
                }
            });
        if let Err(e) = spawned {
            let _ = tx.send(Err(format!("cannot start the owners thread: {e}")));
        }
        OwnersJob { key, cancel, rx }
    }

    /// The result, once there is one.
    pub fn poll(&self) -> Option<OwnersResult> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the owners thread failed".into())),
        }
    }
}

impl Drop for OwnersJob {
    fn drop(&mut self) {
        // The thread reads on to the end of the file but stops working.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The job itself: the owners of `snap`, symbols cached in the file.
pub fn compute(path: &std::path::Path, snap: &Snapshot, cancel: &AtomicBool) -> OwnersResult {
    let opts = OwnerOptions {
        symbols: SymbolOptions::with_env(Vec::new()),
        write_cache: true,
    };
    snapshot_owners(path, snap, &opts, cancel)
        .map(|o| o.map(Arc::new))
        .map_err(|e| format!("{}: {e}", path.display()))
}
