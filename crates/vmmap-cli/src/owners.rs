//! The Owner column of `vmmap open` on a traced run's file: who made each
//! region of the snapshot shown, as of the time it was taken.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use vmmap_trace::region_owners::{snapshot_owners, OwnerOptions, SnapshotOwners};
use vmmap_trace::symbol_cache::CacheWrite;
use vmmap_trace::symbols::SymbolOptions;

/// The owners of `snap` (a snapshot of the file at `path`), or None when
/// the trace does not cover its process. Problems are notes on stderr,
/// never a failure: the snapshot is shown either way.
pub fn of_snapshot(path: &Path, snap: &vmmap_core::model::Snapshot) -> Option<SnapshotOwners> {
    let opts = OwnerOptions {
        symbols: SymbolOptions::with_env(Vec::new()),
        write_cache: true,
    };
    match snapshot_owners(path, snap, &opts, &AtomicBool::new(false)) {
        Ok(Some(o)) => {
            for n in &o.notes {
                eprintln!("vmmap: note: {}", vmmap_core::text::Escaped(n));
            }
            if let CacheWrite::Failed(e) = &o.cache {
                eprintln!(
                    "vmmap: note: could not cache symbols in {}: {e}",
                    crate::shown(path)
                );
            }
            Some(o)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!(
                "vmmap: note: {}: {e}; the Owner column is left out",
                crate::shown(path)
            );
            None
        }
    }
}

/// Which top-level regions of `snap` (a snapshot of the traced run in the
/// file at `path`) are the tracing agent's own, for counting them apart
/// from the program's figures. A trace that cannot be read is a note: its
/// figures are then shown whole.
pub fn agent_of(path: &Path, snap: &vmmap_core::model::Snapshot) -> Vec<bool> {
    vmmap_trace::region_owners::agent_regions(path, snap).unwrap_or_else(|e| {
        agent_note(path, &e);
        Vec::new()
    })
}

/// [`agent_of`] for each of `snaps` (the snapshots of the file at
/// `path`), the file read once: for the views of every snapshot (the
/// report, the timeline).
pub fn agent_of_all(path: &Path, snaps: &[vmmap_core::model::Snapshot]) -> Vec<Vec<bool>> {
    vmmap_trace::region_owners::agent_regions_all(path, snaps).unwrap_or_else(|e| {
        agent_note(path, &e);
        Vec::new()
    })
}

fn agent_note(path: &Path, e: &dyn std::fmt::Display) {
    eprintln!(
        "vmmap: note: {}: {e}; the tracing agent's memory is counted with the program's",
        crate::shown(path)
    );
}

/// The text report's Owner column from `owners`.
pub fn column(owners: &SnapshotOwners) -> vmmap_render::text::OwnerColumn<'_> {
    vmmap_render::text::OwnerColumn {
        seconds: owners.seconds,
        owners,
    }
}
