//! The trace's part of a recording's timeline: when the traced run
//! started, and the live heap at each point (`vmmap_core::timeline` holds
//! the points; it does not read traces).

use vmmap_core::timeline::Point;

/// When a traced run started (the agent's first clock anchor), in
/// nanoseconds since the Unix epoch; None for a file with no trace. Times
/// in a traced file count from it, as `vmmap trace --at` does.
pub fn run_start_unix_ns(trace: &[Vec<u8>]) -> Option<u64> {
    use crate::decode::Decoder;
    let mut facts = Decoder::new();
    for m in trace {
        if m.first() != Some(&(crate::wire::MessageKind::Events as u8)) {
            let _ = facts.feed(m, &mut |_, _| {});
        }
        if let Some(c) = facts.info.images.first().and_then(|i| i.clocks.first()) {
            return Some(c.2);
        }
    }
    None
}

/// Fills [`Point::live_heap`] from the trace messages of a traced run
/// (`points` in time order): the live requested bytes at each point's
/// time, from one pass over the events.
pub fn add_live_heap(points: &mut [Point], trace: &[Vec<u8>]) {
    use crate::decode::Decoder;
    use crate::scan::{seconds_at_unix, ticks_at};
    use crate::summary::Summarizer;
    if trace.is_empty() || points.is_empty() {
        return;
    }
    let mut facts = Decoder::new();
    for m in trace {
        if m.first() != Some(&(crate::wire::MessageKind::Events as u8)) {
            let _ = facts.feed(m, &mut |_, _| {});
        }
    }
    let cuts: Vec<Vec<u64>> = points
        .iter()
        .map(|p| {
            seconds_at_unix(&facts.info, p.taken_at_unix_ns)
                .map(|s| ticks_at(&facts.info, s))
                .unwrap_or_default()
        })
        .collect();
    let mut acc = Summarizer::default();
    let mut next = 0;
    let mut d = Decoder::new();
    let mut step = |r: &crate::Record, points: &mut [Point]| {
        while next < points.len()
            && cuts[next]
                .get(r.image as usize)
                .is_some_and(|&cut| r.tick > cut)
        {
            points[next].live_heap = Some(acc.live_bytes());
            next += 1;
        }
        acc.add(r);
    };
    for m in trace {
        if d.feed(m, &mut |r, _| step(r, points)).is_err() {
            return;
        }
    }
    let _ = d.finish(&mut |r, _| step(r, points));
    // Points after the last event see the final state.
    for p in &mut points[next..] {
        p.live_heap = Some(acc.live_bytes());
    }
}
