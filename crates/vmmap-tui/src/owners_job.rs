//! The Owner column of a traced run's snapshot, computed off the UI
//! thread: two streaming reads of the trace (see
//! [`vmmap_trace::region_owners`]) and the symbols of the stacks
//! shown, which are written back into the file's symbol cache.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
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
    job: crate::job::Job<Option<Arc<SnapshotOwners>>>,
}

impl OwnersJob {
    /// Starts computing the owners of `snap` from the trace in `path`.
    pub fn start(path: PathBuf, snap: Arc<Snapshot>) -> OwnersJob {
        let key = key(&path, &snap);
        let job = crate::job::Job::start("vmmap-owners", "owners", move |cancel| {
            compute(&path, &snap, cancel)
        });
        OwnersJob { key, job }
    }

    /// The result, once there is one; dropping the job stops the work.
    pub fn poll(&self) -> Option<OwnersResult> {
        self.job.poll()
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
