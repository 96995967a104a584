//! Native allocators that replace glibc malloc (preloaded or linked):
//! their memory is Heap, with a Heap ID of its own.
//! - mimalloc maps its segments (32 MiB in v2, 4 MiB in v1) aligned to
//!   their size at hint addresses from 2 TiB to 6 TiB (`MI_HINT_BASE`,
//!   `MI_HINT_AREA`), an address signature nothing else has.
//! - jemalloc maps extents and its base blocks in multiples of 2 MiB
//!   (huge-page aligned) and keeps them (`retain`).
//! - tcmalloc (gperftools) grows the brk heap first (`TCMalloc_SystemAlloc`
//!   tries `sbrk` before `mmap`) and maps spans page-aligned beyond it.
//!
//! They are found by their shared object among the images; once glibc's
//! own chunks and arenas are told apart by their headers, the anonymous
//! memory left is the allocator's.

use std::borrow::Cow;

use super::{mib, Claim, Claimer};
use crate::model::{Confidence, MemoryType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Jemalloc,
    Tcmalloc,
    Mimalloc,
}

const MI_HINT: std::ops::Range<u64> = (2 << 40)..(6 << 40);
const MI_SEGMENT_ALIGN: u64 = 4 << 20;
const HUGE_PAGE: u64 = 2 << 20;

impl Kind {
    pub(super) fn from_image(file_name: &str) -> Option<Kind> {
        if file_name.starts_with("libjemalloc.so") {
            Some(Kind::Jemalloc)
        } else if file_name.starts_with("libtcmalloc") {
            Some(Kind::Tcmalloc)
        } else if file_name.starts_with("libmimalloc") {
            Some(Kind::Mimalloc)
        } else {
            None
        }
    }

    /// Its shared object, as named in the evidence.
    pub(super) fn library(self) -> &'static str {
        match self {
            Kind::Jemalloc => "libjemalloc",
            Kind::Tcmalloc => "libtcmalloc",
            Kind::Mimalloc => "libmimalloc",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Jemalloc => "jemalloc",
            Kind::Tcmalloc => "tcmalloc",
            Kind::Mimalloc => "mimalloc",
        }
    }
}

pub(super) fn plan_exact(c: &mut Claimer<'_>, kind: Kind, source: &str, id: u32) {
    if kind == Kind::Tcmalloc {
        if let Some(h) = c.regions.iter_mut().find(|r| &*r.path == "[heap]") {
            h.details = "Heap ID: 0 (brk heap, grown by tcmalloc)".into();
            h.evidence = Cow::Owned(format!(
                "kernel-named [heap]; {source} and takes its memory from sbrk first"
            ));
        }
    }
    if kind != Kind::Mimalloc {
        return;
    }
    c.scan_free_runs(
        |r| MI_HINT.contains(&r.start) && r.start % MI_SEGMENT_ALIGN == 0,
        |_| true,
        |c, i, len| {
            let span = c.span(i, len);
            c.claim(
                i,
                len,
                Claim::new(
                    MemoryType::Heap,
                    format!("Heap ID: {id} (mimalloc segments, {})", mib(span)),
                    format!(
                        "{source} and the mapping starts segment-aligned in mimalloc's 2-6 TiB hint area"
                    ),
                )
                .heap_id(id),
            );
            len
        },
    );
}

pub(super) fn plan_rest(c: &mut Claimer<'_>, kind: Kind, source: &str, id: u32) {
    c.scan_free_runs(|_| true, |_| true, |c, i, len| {
        let start = c.regions[i].start;
        let span = c.span(i, len);
        let aligned = kind == Kind::Jemalloc && start % HUGE_PAGE == 0 && span % HUGE_PAGE == 0;
        let (confidence, evidence) = if aligned {
            (Confidence::Medium, Cow::Owned(format!("{source} and the mapping is huge-page aligned and sized, as jemalloc maps its extents; glibc's chunks and arenas were ruled out by their headers")))
        } else {
            (Confidence::Low, Cow::Owned(format!("{source} and replaces malloc: anonymous memory that is no stack, runtime heap or glibc chunk is presumed the allocator's")))
        };
        c.claim(
            i,
            len,
            Claim::new(
                MemoryType::Heap,
                format!("Heap ID: {id} ({} memory, {})", kind.name(), mib(span)),
                evidence,
            )
            .confidence(confidence)
            .heap_id(id),
        );
        len
    });
}
