//! Go. The linker writes `.go.buildinfo` at the start of the data segment:
//! the 14-byte magic `\xff Go buildinf:`, the pointer size, a flags byte
//! (bit 1: strings inline, Go 1.18+), and from byte 32 the version as a
//! varint-prefixed string.
//!
//! The heap is made of 64 MiB arenas (`heapArenaBytes` on 64-bit) that
//! `mallocinit` asks for at hint addresses `i<<40 | 0x00c0<<32` (amd64,
//! arm64 and the other 64-bit ports but ios), growing upwards: the
//! committed arenas are `rw-p`, the reserved rest `---p`. Goroutine stacks
//! live in spans inside the arenas. Everything else the runtime maps
//! (arena metadata and heap bitmaps, span tables, the page allocator's
//! summaries and scavenger index, persistentalloc chunks) comes from
//! `sysAlloc`/`sysReserve` anywhere; Go 1.25+ names them
//! (`[anon: Go: …]`), older runtimes leave them plain.

use std::borrow::Cow;

use super::{mib, Claimer};
use crate::model::{Confidence, MemoryType};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const ARENA: u64 = 64 << 20;
/// The low 40 bits of every arena hint.
const HINT_LOW: u64 = 0x00c0 << 32;

/// The Go version in a buffer that starts with `.go.buildinfo`.
pub(super) fn buildinfo_version(b: &[u8]) -> Option<String> {
    if !b.starts_with(MAGIC) || b.len() < 33 {
        return None;
    }
    let flags = b[15];
    if flags & 2 == 0 {
        // Before Go 1.18 the version is behind a pointer: Go, version unknown.
        return Some("go (before 1.18)".into());
    }
    let (len, n) = uvarint(&b[32..])?;
    let from = 32 + n;
    let s = b.get(from..from.checked_add(usize::try_from(len).ok()?)?)?;
    let v = std::str::from_utf8(s).ok()?;
    v.starts_with("go").then(|| v.to_string())
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

pub(super) fn plan_arenas(c: &mut Claimer<'_>, version: &str) {
    let mut i = 0;
    while i < c.regions.len() {
        let start = c.regions[i].start;
        let at_hint = start & ((1 << 40) - 1) == HINT_LOW;
        let run = at_hint.then(|| c.free_run(i, |_| true)).flatten();
        let Some(len) = run else {
            i += 1;
            continue;
        };
        // The kernel may have merged the last arena with a neighbour:
        // claim whole arenas only.
        let mut len = len;
        while len > 0 && (c.regions[i + len - 1].end - start) % ARENA != 0 {
            len -= 1;
        }
        if len == 0 {
            i += 1;
            continue;
        }
        let span = c.span(i, len);
        let committed: u64 = c.regions[i..i + len]
            .iter()
            .filter(|r| !r.perms.none())
            .map(|r| r.size())
            .sum();
        c.claim(
            i,
            len,
            MemoryType::ManagedHeap,
            format!(
                "Go heap arenas ({} x 64 MiB, {} committed; {version})",
                span / ARENA,
                mib(committed)
            ),
            Cow::Owned(format!("{version} executable (.go.buildinfo); anonymous memory from the arena hint address {start:#x} in whole 64 MiB heap arenas")),
            Confidence::High,
            None,
        );
        i += len;
    }
}

pub(super) fn plan_rest(c: &mut Claimer<'_>, version: &str, cgo: bool) {
    let (evidence, confidence): (Cow<'static, str>, _) = if cgo {
        (Cow::Owned(format!("{version} executable linked with libc (cgo): anonymous memory that is no stack, arena or malloc memory is presumed the Go runtime's")), Confidence::Low)
    } else {
        (Cow::Owned(format!("{version} executable without libc: only the Go runtime maps anonymous memory, and this is not in the arenas, so it is runtime metadata")), Confidence::Medium)
    };
    c.claim_free_runs(
        MemoryType::ManagedHeap,
        "Go runtime metadata (heap bitmaps, spans, page summaries)",
        evidence,
        confidence,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_go_1_19_buildinfo() {
        let mut b = b"\xff Go buildinf:\x08\x02".to_vec();
        b.resize(32, 0);
        b.push(8);
        b.extend_from_slice(b"go1.19.8\xe9\x01");
        assert_eq!(buildinfo_version(&b).as_deref(), Some("go1.19.8"));
        assert_eq!(buildinfo_version(&b[..20]), None);
        assert_eq!(buildinfo_version(b"\x7fELF"), None);
    }
}
