//! Snapshots built by hand for tests, here and in the crates that render
//! them (behind the `test-support` feature, never in a release build's API).

use crate::model::{MemoryType, Perms, Region, Snapshot};
use crate::proc::smaps::{Field, Mapping, SmapsFields};

/// Every field present; Rss, Anonymous and Swap as given, in KiB.
pub fn fields(rss: u64, anon: u64, swap: u64) -> SmapsFields {
    let mut f = SmapsFields::default();
    for field in Field::ALL {
        f.set(field, 0);
    }
    f.set(Field::Rss, rss * 1024);
    f.set(Field::Anonymous, anon * 1024);
    f.set(Field::Swap, swap * 1024);
    f
}

/// One mapping of `perms` (file-backed when `inode` is not 0), 4 KiB resident.
pub fn vma(start: u64, end: u64, perms: &[u8; 4], path: &str, inode: u64) -> Region {
    Region::from_mapping(Mapping {
        start,
        end,
        perms: *perms,
        dev_major: if inode != 0 { 8 } else { 0 },
        dev_minor: if inode != 0 { 1 } else { 0 },
        inode,
        path: path.into(),
        fields: fields(4, if inode == 0 { 4 } else { 0 }, 0),
        ..Mapping::default()
    })
}

/// A bare region of type `t`: addresses and type, every figure absent.
pub fn bare(start: u64, end: u64, t: MemoryType) -> Region {
    Region {
        start,
        end,
        memory_type: t,
        ..Region::default()
    }
}

/// An anonymous read-write mapping.
pub fn anon(start: u64, end: u64) -> Region {
    vma(start, end, b"rw-p", "", 0)
}

/// `r` typed `t` with `details`.
pub fn typed(mut r: Region, t: MemoryType, details: &str) -> Region {
    r.memory_type = t;
    r.details = details.into();
    r
}

/// The brk heap, Heap ID 0.
pub fn heap(start: u64, end: u64) -> Region {
    let mut r = typed(
        vma(start, end, b"rw-p", "[heap]", 0),
        MemoryType::Heap,
        "Heap ID: 0",
    );
    r.heap_id = Some(0);
    r
}

/// A thread's stack.
pub fn stack(start: u64, end: u64, tid: u32) -> Region {
    let mut r = typed(anon(start, end), MemoryType::Stack, "Thread");
    r.tid = Some(tid);
    r
}

/// An image of two mappings (headers, code) under one region.
pub fn image(start: u64, path: &str, inode: u64) -> Region {
    Region::group(
        vec![
            vma(start, start + 0x1000, b"r--p", path, inode),
            vma(start + 0x1000, start + 0x3000, b"r-xp", path, inode),
        ],
        MemoryType::Image,
        path.into(),
        "test".into(),
    )
}

/// A snapshot of `regions` with a VmPTE line and a 4 GiB address limit.
pub fn snap(pid: u32, ns: u64, regions: Vec<Region>) -> Snapshot {
    let mut s = Snapshot::from_regions(pid, ns, regions);
    s.kernel.user_address_limit = 0x1_0000_0000;
    s.status.entries.push(("VmPTE".into(), "8 kB".into()));
    s
}

/// Two snapshots of one process with one change of each kind between them
/// (unchanged, moved, grown, shrunk, mprotected, removed, retyped, new).
pub fn pair() -> (Snapshot, Snapshot) {
    let mapped = |s| {
        typed(
            vma(s, s + 0x2000, b"r--p", "/data/x", 11),
            MemoryType::MappedFile,
            "/data/x",
        )
    };
    let before = vec![
        image(0x10000, "/lib/a.so", 10), // unchanged
        mapped(0x20000),                 // moves
        heap(0x100000, 0x120000),        // grows
        anon(0x200000, 0x210000),        // grows in place
        anon(0x300000, 0x320000),        // shrinks
        anon(0x400000, 0x410000),        // mprotected
        anon(0x500000, 0x510000),        // removed
        anon(0x600000, 0x610000),        // becomes a stack
        stack(0x900000, 0x920000, 7),    // unchanged
        stack(0xa00000, 0xa20000, 8),    // touched more
    ];
    let mut mprotected = anon(0x400000, 0x410000);
    mprotected.perms = Perms(*b"---p");
    let mut touched = stack(0xa00000, 0xa20000, 8);
    touched.fields = fields(64, 64, 8);
    let after = vec![
        image(0x10000, "/lib/a.so", 10),
        heap(0x100000, 0x140000),
        anon(0x200000, 0x220000),
        anon(0x300000, 0x310000),
        mprotected,
        stack(0x600000, 0x610000, 9),
        mapped(0x680000),
        anon(0x700000, 0x708000), // new
        stack(0x900000, 0x920000, 7),
        touched,
    ];
    (
        snap(1, 1_000_000_000, before),
        snap(1, 3_500_000_000, after),
    )
}
