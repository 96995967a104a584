//! The timeline of a recording: process totals at every snapshot and
//! sample, in time order, with the per-type breakdown where a full
//! snapshot has it.

use serde::Serialize;

use crate::figures::Column;
use crate::format::{Loaded, Sample};
use crate::model::{MemoryType, Snapshot};
use crate::proc::smaps::{Field, SmapsFields};
use crate::summary::Summary;

/// One point of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// When, nanoseconds since the Unix epoch.
    pub taken_at_unix_ns: u64,
    /// The snapshot's index in the file (from 1), or None for a
    /// totals-only sample.
    pub snapshot: Option<usize>,
    /// Rss from smaps_rollup.
    pub rss: Option<u64>,
    /// Pss from smaps_rollup.
    pub pss: Option<u64>,
    /// Swap from smaps_rollup.
    pub swap: Option<u64>,
    /// Anonymous from smaps_rollup.
    pub anonymous: Option<u64>,
    /// VmPTE.
    pub page_table: Option<u64>,
    /// For full snapshots: per type, (committed, working set, private).
    pub by_type: Option<Vec<TypeTotals>>,
    /// In a traced run: bytes the program had allocated and not freed at
    /// this time (from the trace), next to what the kernel counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_heap: Option<u64>,
}

/// A type's totals at one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TypeTotals {
    /// The type.
    #[serde(rename = "type", serialize_with = "type_id")]
    pub(crate) memory_type: MemoryType,
    /// Committed bytes.
    pub committed: u64,
    /// Working set (Rss) bytes.
    pub working_set: u64,
    /// Private bytes.
    pub private: u64,
}

fn type_id<S: serde::Serializer>(t: &MemoryType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.id())
}

/// The types a timeline breaks totals down by: all but Free, which is not
/// memory.
pub const TYPES: &[MemoryType] = MemoryType::ALL.split_at(8).0;

fn totals(r: &SmapsFields) -> [Option<u64>; 4] {
    [
        r.get(Field::Rss),
        r.get(Field::Pss),
        r.get(Field::Swap),
        r.get(Field::Anonymous),
    ]
}

/// Builds the timeline of a loaded recording, ordered by time.
pub fn timeline(loaded: &Loaded) -> Vec<Point> {
    points(&loaded.snapshots, &loaded.samples)
}

/// Builds the timeline of snapshots and samples, ordered by time.
pub fn points(snapshots: &[Snapshot], samples: &[Sample]) -> Vec<Point> {
    let mut points = Vec::with_capacity(snapshots.len() + samples.len());
    for (i, s) in snapshots.iter().enumerate() {
        let summary = Summary::of(s);
        // Totals from the kernel's own rollup; before Linux 4.14, from the
        // sum of the regions.
        let [rss, pss, swap, anonymous] = match &s.rollup {
            Some(r) => totals(r),
            None => {
                let t = &summary.total.figures;
                [
                    t.get(Column::TotalWs),
                    t.get(Column::Pss),
                    t.get(Column::Swap),
                    t.get(Column::Anonymous),
                ]
            }
        };
        let by_type = TYPES
            .iter()
            .map(|&t| {
                let f = &summary.row(t).figures;
                TypeTotals {
                    memory_type: t,
                    committed: f.value(Column::Committed),
                    working_set: f.value(Column::TotalWs),
                    private: f.value(Column::Private),
                }
            })
            .collect();
        points.push(Point {
            taken_at_unix_ns: s.taken_at_unix_ns,
            snapshot: Some(i + 1),
            rss,
            pss,
            swap,
            anonymous,
            page_table: s.page_table_bytes(),
            by_type: Some(by_type),
            live_heap: None,
        });
    }
    for s in samples {
        let [rss, pss, swap, anonymous] = totals(&s.rollup);
        points.push(Point {
            taken_at_unix_ns: s.taken_at_unix_ns,
            snapshot: None,
            rss,
            pss,
            swap,
            anonymous,
            page_table: s.page_table_bytes,
            by_type: None,
            live_heap: None,
        });
    }
    points.sort_by_key(|p| p.taken_at_unix_ns);
    points
}
