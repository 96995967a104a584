//! Sans-IO planning and decoding for `/proc/kpagecount` and
//! `/proc/kpageflags` (root only): one little-endian u64 per page frame,
//! at byte offset `8 × PFN` (Documentation/admin-guide/mm/pagemap.rst).
//!
//! Reading them one pread per page costs about 19 times a `cat smaps` of
//! the same process; here the frames a scan needs are gathered as runs of
//! consecutive PFNs, sorted, and read a window at a time, so that one
//! pread covers many frames.

/// `kpageflags` bit 15: the head page of a compound page (large folio).
pub(crate) const COMPOUND_HEAD: u64 = 1 << 15;
/// `kpageflags` bit 16: a tail page of a compound page.
pub(crate) const COMPOUND_TAIL: u64 = 1 << 16;
/// `kpageflags` bit 22: part of a transparent huge page.
pub(crate) const THP: u64 = 1 << 22;
/// `kpageflags` bit 24: the shared zero page.
pub(crate) const ZERO_PAGE: u64 = 1 << 24;

/// Consecutive page frames `first..first + len` that one scan needs, with
/// a tag saying where they belong (a VMA index, a memory type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run<T> {
    /// First page frame number.
    pub(crate) first: u64,
    /// Number of frames.
    pub(crate) len: u64,
    /// Where the frames belong.
    pub(crate) tag: T,
}

impl<T> Run<T> {
    /// One past the last frame.
    pub(crate) fn end(&self) -> u64 {
        self.first.saturating_add(self.len)
    }
}

/// Gathers frames into runs as a page walk meets them: a frame that
/// follows the previous one with the same tag extends its run. Memory
/// faulted in order, transparent huge pages and large folios give long
/// runs, so the runs are far fewer than the pages.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunBuilder<T> {
    runs: Vec<Run<T>>,
}

impl<T: Copy + PartialEq> RunBuilder<T> {
    /// An empty builder.
    pub(crate) fn new() -> Self {
        RunBuilder { runs: Vec::new() }
    }

    /// Adds one frame.
    pub(crate) fn push(&mut self, pfn: u64, tag: T) {
        if let Some(last) = self.runs.last_mut() {
            if last.tag == tag && last.end() == pfn {
                last.len += 1;
                return;
            }
        }
        self.runs.push(Run {
            first: pfn,
            len: 1,
            tag,
        });
    }

    /// The runs in the order met.
    pub(crate) fn finish(self) -> Vec<Run<T>> {
        self.runs
    }
}

/// One pread: frames `first..first + len` of kpagecount or kpageflags,
/// serving the runs `runs` (indices into the sorted run list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// First frame read.
    pub(crate) first: u64,
    /// Frames read.
    pub(crate) len: u64,
    /// The runs it serves, as a range of indices into the sorted runs.
    pub(crate) runs: std::ops::Range<usize>,
}

/// Sorts `runs` by first frame and plans the reads: runs closer than
/// `max_gap` frames share a window (reading a few unneeded frames is
/// cheaper than another system call), and no window exceeds `max_len`
/// frames, which bounds the buffer. A run longer than `max_len` is split
/// into several runs first.
pub(crate) fn plan<T: Copy>(runs: &mut Vec<Run<T>>, max_gap: u64, max_len: u64) -> Vec<Window> {
    let max_len = max_len.max(1);
    if runs.iter().any(|r| r.len > max_len) {
        let mut split = Vec::with_capacity(runs.len());
        for r in runs.iter() {
            let mut at = r.first;
            while at < r.end() {
                let len = (r.end() - at).min(max_len);
                split.push(Run {
                    first: at,
                    len,
                    tag: r.tag,
                });
                at += len;
            }
        }
        *runs = split;
    }
    runs.sort_unstable_by_key(|r| r.first);
    let mut out: Vec<Window> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(w) = out.last_mut() {
            let w_end = w.first + w.len;
            let end = w_end.max(r.end());
            if r.first <= w_end.saturating_add(max_gap) && end - w.first <= max_len {
                w.len = end - w.first;
                w.runs.end = i + 1;
                continue;
            }
        }
        out.push(Window {
            first: r.first,
            len: r.len,
            runs: i..i + 1,
        });
    }
    out
}

/// The value for frame `pfn` in the bytes read for window `w`, if the
/// read reached it (a short read at the end of memory leaves it out).
pub(crate) fn value_at(w: &Window, bytes: &[u8], pfn: u64) -> Option<u64> {
    let i = usize::try_from(pfn.checked_sub(w.first)?)
        .ok()?
        .checked_mul(8)?;
    let b = bytes.get(i..i.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Reads the value of every frame of `runs` through the planned
/// `windows`: `read(window, buf)` fills `buf` with the window's 8-byte
/// values and returns how many bytes it read (a short read leaves the
/// frames past it out), then `each(tag, value)` is called once per frame,
/// in frame order. `buf` must hold the largest window.
pub(crate) fn lookup<T: Copy>(
    runs: &[Run<T>],
    windows: &[Window],
    buf: &mut [u8],
    read: &mut dyn FnMut(&Window, &mut [u8]) -> std::io::Result<usize>,
    each: &mut dyn FnMut(T, u64),
) -> std::io::Result<()> {
    for w in windows {
        let want = usize::try_from(w.len.saturating_mul(8))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let got = read(w, &mut buf[..want])?;
        for run in &runs[w.runs.clone()] {
            for pfn in run.first..run.end() {
                if let Some(v) = value_at(w, &buf[..got], pfn) {
                    each(run.tag, v);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_extends_runs_of_the_same_tag() {
        let mut b = RunBuilder::new();
        for (pfn, tag) in [(10, 0), (11, 0), (12, 1), (13, 1), (20, 1), (21, 1), (5, 1)] {
            b.push(pfn, tag);
        }
        let runs = b.finish();
        let got: Vec<(u64, u64, i32)> = runs.iter().map(|r| (r.first, r.len, r.tag)).collect();
        assert_eq!(got, [(10, 2, 0), (12, 2, 1), (20, 2, 1), (5, 1, 1)]);
    }

    #[test]
    fn plan_merges_near_runs_and_caps_windows() {
        let mut runs = vec![
            Run {
                first: 100,
                len: 4,
                tag: 'a',
            },
            Run {
                first: 0,
                len: 2,
                tag: 'b',
            },
            Run {
                first: 106,
                len: 2,
                tag: 'c',
            },
            Run {
                first: 1000,
                len: 25,
                tag: 'd',
            },
        ];
        let w = plan(&mut runs, 8, 10);
        // Sorted; the 25-frame run split into 10 + 10 + 5.
        assert_eq!(runs[0].tag, 'b');
        assert_eq!(runs.len(), 6);
        let spans: Vec<(u64, u64)> = w.iter().map(|w| (w.first, w.len)).collect();
        assert_eq!(spans, [(0, 2), (100, 8), (1000, 10), (1010, 10), (1020, 5)]);
        assert_eq!(w[1].runs, 1..3, "100..104 and 106..108 share one read");
        assert!(w.iter().all(|w| w.len <= 10));
    }

    /// A kpagecount file image: frame i has count `counts[i]`.
    fn file(counts: &[u64]) -> Vec<u8> {
        counts.iter().flat_map(|c| c.to_le_bytes()).collect()
    }

    #[test]
    fn lookup_reads_windows_from_a_file_image() {
        // Frames 0..40 with count = frame % 3.
        let image = file(&(0..40).map(|i| i % 3).collect::<Vec<u64>>());
        // Two "VMAs" (tags 0 and 1) met in a page walk in this order.
        let mut b = RunBuilder::new();
        for (pfn, tag) in [
            (30, 0),
            (31, 0),
            (32, 0),
            (2, 1),
            (3, 1),
            (4, 1),
            (38, 1),
            (39, 1),
        ] {
            b.push(pfn, tag);
        }
        let mut runs = b.finish();
        let windows = plan(&mut runs, 8, 16);
        let mut reads = 0;
        let mut shared = [0u64; 2];
        let mut buf = vec![0u8; 16 * 8];
        lookup(
            &runs,
            &windows,
            &mut buf,
            &mut |w, out| {
                reads += 1;
                let from = (w.first * 8) as usize;
                let n = out.len().min(image.len().saturating_sub(from));
                out[..n].copy_from_slice(&image[from..from + n]);
                Ok(n)
            },
            &mut |tag, count| {
                if count > 1 {
                    shared[tag as usize] += 1;
                }
            },
        )
        .unwrap();
        // 30..33 has counts 0,1,2 (one > 1); 2..5 has 2,0,1; 38,39 have 2,0.
        assert_eq!(shared, [1, 2]);
        assert_eq!(reads, 2, "2..5 alone, 30..33 and 38..40 in one read");
    }

    #[test]
    fn lookup_survives_a_short_read() {
        let image = file(&[5, 5, 5]);
        let mut runs = vec![Run {
            first: 1,
            len: 4,
            tag: (),
        }];
        let windows = plan(&mut runs, 0, 8);
        let mut seen = 0;
        let mut buf = vec![0u8; 64];
        lookup(
            &runs,
            &windows,
            &mut buf,
            &mut |_, out| {
                out[..16].copy_from_slice(&image[8..24]);
                Ok(16)
            },
            &mut |_, v| {
                assert_eq!(v, 5);
                seen += 1;
            },
        )
        .unwrap();
        assert_eq!(seen, 2, "frames 3 and 4 lie past the end of memory");
    }

    #[test]
    fn values_decode_from_window_bytes() {
        let w = Window {
            first: 50,
            len: 3,
            runs: 0..1,
        };
        let mut bytes = Vec::new();
        for v in [1u64, 2, 7] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(value_at(&w, &bytes, 52), Some(7));
        assert_eq!(value_at(&w, &bytes, 53), None, "past the read");
        assert_eq!(value_at(&w, &bytes, 49), None);
        assert_eq!(value_at(&w, &bytes[..12], 51), None, "short read");
    }
}
