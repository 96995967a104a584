//! The timeline of a recording: process totals at every snapshot and
//! sample, in time order, with the per-type breakdown where a full
//! snapshot has it.

use serde::Serialize;

use crate::figures::Column;
use crate::format::Sample;
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

/// The point of full snapshot `s` (number `index` in its file, from 1).
/// `agent` is empty for an untraced snapshot; in a traced run's, the
/// top-level regions flagged are the tracing agent's
/// ([`Summary::with_agent`]) and are left out of every figure, so that a
/// traced program's timeline shows the same figures as its snapshots'
/// Summary. Every view of a timeline
/// (CLI, HTML report, UI) takes its figures from here.
pub fn snapshot_point(s: &Snapshot, index: usize, agent: &[bool]) -> Point {
    let summary = Summary::with_agent(s, agent);
    // Totals from the kernel's own rollup; from the sum of the regions
    // before Linux 4.14, and in a traced run (`agent` given): the rollup
    // adds the agent's regions to the program's and cannot be split, and
    // every point of the run is counted the same way.
    let [rss, pss, swap, anonymous] = match &s.rollup {
        Some(r) if agent.is_empty() => totals(r),
        _ => {
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
    Point {
        taken_at_unix_ns: s.taken_at_unix_ns,
        snapshot: Some(index),
        rss,
        pss,
        swap,
        anonymous,
        page_table: s.page_table_bytes(),
        by_type: Some(by_type),
        live_heap: None,
    }
}

/// Builds the timeline of snapshots and samples, ordered by time.
/// `agent[i]` flags the tracing agent's regions of snapshot `i` (see
/// [`snapshot_point`]; empty or short: none). A sample has no regions to
/// tell apart; only untraced recordings have samples.
pub fn points(snapshots: &[Snapshot], samples: &[Sample], agent: &[Vec<bool>]) -> Vec<Point> {
    let mut points = Vec::with_capacity(snapshots.len() + samples.len());
    for (i, s) in snapshots.iter().enumerate() {
        let flags = agent.get(i).map_or(&[][..], Vec::as_slice);
        points.push(snapshot_point(s, i + 1, flags));
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
