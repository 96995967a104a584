//! Passes 4 and 6: heaps of managed runtimes and of native allocators
//! other than glibc's, found from outside the process: which runtime is
//! loaded (its images, Go's build info), then the layout of the anonymous
//! memory it reserves (sizes, alignment, hint addresses) and the counters
//! or headers it leaves readable (hsperfdata, pymalloc pool headers, glibc
//! chunk headers).
//!
//! It runs in two rounds around the stack pass. The first claims what a
//! runtime's layout identifies exactly (a Java heap of exactly `-Xmx`, Go's
//! arenas at their hint addresses, V8 pages, pymalloc arenas). The second
//! finds glibc's mmapped chunks by their headers, then gives the runtime
//! (or allocator) what is left of plain anonymous memory, with a lower
//! confidence, since in such a process almost nothing else maps anonymous
//! memory. `docs/runtimes.md` lists every rule.

mod allocator;
mod chromium;
mod chunks;
mod cpython;
mod go;
mod go_threads;
mod jvm;
mod jvm_gc;
mod symbols;
mod v8;
mod v8_tables;

use std::borrow::Cow;

use super::{is_plain_anon, Claim, Context, Inspector, Plan};
use crate::model::{Confidence, MemoryType, Region};

/// The runtimes and allocators a process has loaded.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    jvm: bool,
    node: bool,
    /// Chromium's executable (PartitionAlloc and V8 linked in).
    chromium: bool,
    python: bool,
    go: Option<String>,
    /// The index of the executable's first mapping.
    exe: Option<usize>,
    dotnet: bool,
    allocator: Option<allocator::Kind>,
    /// How the allocator was found, for the evidence.
    allocator_source: String,
}

/// What the exact round found, for the rest round.
pub(super) struct Found {
    loaded: Loaded,
    jvm: Option<jvm::Jvm>,
    next_heap_id: u32,
}

/// The first round: what a runtime's layout identifies exactly. It runs
/// before the stack pass, because Go's threads run on stacks inside its
/// arenas, which must not become one huge Stack region.
pub(super) fn plan_exact(
    regions: &mut [Region],
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
    plan: &mut Plan,
) -> Found {
    let loaded = detect(regions, inspector);
    // Arena ids are only on the planned groups, the brk heap's on its VMA.
    let next_heap_id = regions
        .iter()
        .filter_map(|r| r.heap_id)
        .chain(plan.max_heap_id())
        .max()
        .map_or(1, |m| m + 1);
    let mut c = Claimer::new(regions, plan, ctx);
    let mut jvm = None;
    if loaded.jvm {
        jvm = Some(jvm::plan_exact(&mut c, inspector));
    }
    if let (Some(version), Some(exe)) = (&loaded.go, loaded.exe) {
        let vars = go::runtime_vars(&c, exe, inspector);
        // With cgo every M runs on a stack pthread_create mapped, which
        // the stack pass finds by its TCB.
        let threads = if loaded_libc(c.regions) {
            Ok(Vec::new())
        } else {
            go_threads::read_ms(&vars.ms, c.regions, ctx, inspector)
        };
        let goroutines = go::read_goroutines(&vars, c.regions, &threads, inspector);
        go::plan_arenas(&mut c, version, &goroutines, &threads);
    }
    if loaded.node {
        v8::plan_pages(&mut c, ctx);
    }
    if loaded.chromium {
        chromium::plan(&mut c);
        v8_tables::plan(&mut c);
    }
    if let Some(kind) = loaded.allocator {
        allocator::plan_exact(&mut c, kind, &loaded.allocator_source, next_heap_id);
    }
    if loaded.python {
        cpython::plan_arenas(&mut c, inspector);
    }
    Found {
        loaded,
        jvm,
        next_heap_id,
    }
}

/// The second round, after the stack pass: glibc's mmapped chunks, then
/// what is left to the runtime or allocator that owns most of it.
pub(super) fn plan_rest(
    found: Found,
    regions: &mut [Region],
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
    plan: &mut Plan,
) {
    let libc = loaded_libc(regions);
    let mut c = Claimer::new(regions, plan, ctx);
    let l = &found.loaded;
    // glibc's chunks exist where glibc's malloc is the one in use.
    if libc && l.allocator.is_none() {
        chunks::plan_chunks(&mut c, inspector);
    }
    if let Some(j) = &found.jvm {
        jvm::plan_rest(&mut c, j);
    }
    if let Some(version) = &l.go {
        go::plan_rest(&mut c, version, libc);
    }
    if let Some(kind) = l.allocator {
        allocator::plan_rest(&mut c, kind, &l.allocator_source, found.next_heap_id);
    }
    if l.dotnet {
        dotnet_rest(&mut c);
    }
}

/// Finds the runtimes from the images mapped (by file name: the image pass
/// has already proven them ELF objects) and Go's build info.
fn detect(regions: &[Region], inspector: &mut dyn Inspector) -> Loaded {
    let mut l = Loaded::default();
    let mut first_image: Option<&Region> = None;
    for (i, r) in regions.iter().enumerate() {
        if r.memory_type != MemoryType::Image || !r.path.starts_with('/') {
            continue;
        }
        let name = r.path.rsplit('/').next().unwrap_or_default();
        if first_image.is_none() {
            first_image = Some(r);
            l.exe = Some(i);
            l.chromium = chromium::is_chromium_exe(name);
        }
        match name {
            "libjvm.so" => l.jvm = true,
            "node" | "nodejs" => l.node = true,
            "libcoreclr.so" => l.dotnet = true,
            _ if name.starts_with("libnode.so") => l.node = true,
            _ if name.starts_with("libpython3") || is_python_exe(name) => l.python = true,
            _ => {}
        }
        if l.allocator.is_none() {
            l.allocator = allocator::Kind::from_image(name);
            if let Some(k) = l.allocator {
                l.allocator_source = format!("{} is loaded", k.library());
            }
        }
    }
    // Go writes `.go.buildinfo` at the start of the executable's data
    // segment: read the first writable file mapping of the first image.
    if let (None, Some(exe)) = (l.allocator, first_image) {
        let mut read = |offset: u64, buf: &mut [u8]| inspector.read_file_at(exe, offset, buf);
        if let Some((kind, symbol)) = symbols::linked_allocator(&mut read) {
            l.allocator = Some(kind);
            l.allocator_source = format!(
                "{} is linked into the executable (it defines {symbol})",
                kind.name()
            );
        }
    }
    // Go names the section; the file says where it is without touching
    // the target's memory.
    if let Some(exe) = first_image {
        let mut read = |offset: u64, buf: &mut [u8]| inspector.read_file_at(exe, offset, buf);
        if let Some((offset, _)) = symbols::section_named(&mut read, b".go.buildinfo") {
            let mut buf = [0u8; 64];
            if read(offset, &mut buf) {
                l.go = go::buildinfo_version(&buf);
            }
        }
    }
    // Without the file (a captured /proc): Go's internal linker puts it at
    // the start of the data segment.
    if let (None, Some(exe)) = (&l.go, first_image) {
        let data = regions.iter().find(|r| {
            r.inode == exe.inode
                && r.dev_major == exe.dev_major
                && r.dev_minor == exe.dev_minor
                && r.perms.write()
        });
        if let Some(d) = data {
            let mut buf = [0u8; 64];
            if inspector.read_memory(d.start, &mut buf) {
                l.go = go::buildinfo_version(&buf);
            }
        }
    }
    l
}

fn is_python_exe(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

fn loaded_libc(regions: &[Region]) -> bool {
    regions.iter().any(|r| {
        r.memory_type == MemoryType::Image
            && r.path
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
    })
}

/// .NET CoreCLR, from its documented layout (no runtime to test against
/// here, so from fixtures only): the regions GC reserves one range of at
/// least 256 GiB (`GCRegionRange`) at start and commits regions inside it;
/// the JIT writes code through a second, writable view of a memfd named
/// `doublemapper` and runs it from an executable one.
fn dotnet_rest(c: &mut Claimer<'_>) {
    for r in c.regions.iter_mut() {
        if r.path.starts_with("/memfd:doublemapper") && r.memory_type == MemoryType::Shareable {
            r.memory_type = MemoryType::ManagedHeap;
            r.details = if r.perms.exec() {
                ".NET JIT code (doublemapper, executable view)".into()
            } else {
                ".NET JIT code (doublemapper, writable view)".into()
            };
            r.evidence = Cow::Borrowed("libcoreclr.so is loaded and this is a view of the memfd its JIT double-maps executable code through");
            r.confidence = Confidence::High;
        }
    }
    c.scan_free_runs(
        |_| true,
        |_| true,
        |c, i, len| {
            let span = c.span(i, len);
            if span >= 256 << 30 {
                c.claim(
                    i,
                    len,
                    Claim::managed_heap(
                        format!(".NET GC regions reservation ({})", gib(span)),
                        "libcoreclr.so is loaded and this is the range of 256 GiB or more the regions GC reserves at start",
                    )
                    .confidence(Confidence::Medium),
                );
            }
            len
        },
    );
}

/// Claims regions for a runtime and reads the layout of the flat list.
pub(super) struct Claimer<'a> {
    regions: &'a mut [Region],
    plan: &'a mut Plan,
    page: u64,
}

impl<'a> Claimer<'a> {
    fn new(regions: &'a mut [Region], plan: &'a mut Plan, ctx: &Context<'_>) -> Claimer<'a> {
        Claimer {
            regions,
            plan,
            page: ctx.page_size.max(1),
        }
    }

    /// Whether VMA `i` is plain private anonymous memory nobody claimed.
    fn free(&self, i: usize) -> bool {
        let r = &self.regions[i];
        r.memory_type == MemoryType::PrivateData
            && !self.plan.is_grouped(i)
            && is_plain_anon(r)
            && !r.perms.shared()
    }

    /// The length of the run of free, contiguous VMAs from `i` that `ok`
    /// accepts; `None` if `i` itself is not one.
    fn free_run(&self, i: usize, ok: impl Fn(&Region) -> bool) -> Option<usize> {
        if !self.free(i) || !ok(&self.regions[i]) {
            return None;
        }
        let mut j = i + 1;
        while j < self.regions.len()
            && self.free(j)
            && self.regions[j].start == self.regions[j - 1].end
            && ok(&self.regions[j])
        {
            j += 1;
        }
        Some(j - i)
    }

    /// Claims every run of free VMAs left, each the same way: what a
    /// runtime that owns all other anonymous memory does last.
    fn claim_free_runs(
        &mut self,
        memory_type: MemoryType,
        details: &str,
        evidence: Cow<'static, str>,
        confidence: Confidence,
    ) {
        self.scan_free_runs(
            |_| true,
            |_| true,
            |c, i, len| {
                let ev = evidence.clone();
                c.claim(
                    i,
                    len,
                    Claim::new(memory_type, details, ev).confidence(confidence),
                );
                len
            },
        );
    }

    /// Visits every run of free VMAs, each accepted by `member`, that starts
    /// at a VMA accepted by `starts`, in address order: `each(self, i,
    /// len)` claims what it recognises there and returns how many VMAs to
    /// move on by (the whole run, unless it took less).
    fn scan_free_runs(
        &mut self,
        starts: impl Fn(&Region) -> bool,
        member: impl Fn(&Region) -> bool,
        mut each: impl FnMut(&mut Self, usize, usize) -> usize,
    ) {
        let mut i = 0;
        while i < self.regions.len() {
            let run = if starts(&self.regions[i]) {
                self.free_run(i, &member)
            } else {
                None
            };
            i += match run {
                Some(len) => each(self, i, len).max(1),
                None => 1,
            };
        }
    }

    /// Bytes from the start of VMA `i` to the end of VMA `i + len - 1`.
    fn span(&self, i: usize, len: usize) -> u64 {
        self.regions[i + len - 1].end - self.regions[i].start
    }

    /// Bytes of VMAs `i..i + len` that are accessible: what a runtime
    /// committed of its reservation.
    fn committed(&self, i: usize, len: usize) -> u64 {
        self.regions[i..i + len]
            .iter()
            .filter(|r| !r.perms.none())
            .map(|r| r.size())
            .sum()
    }

    /// Names the sub-blocks of VMAs `i..i + len` of a runtime's
    /// reservation: `reserved` where nothing is accessible, `used` (what
    /// the runtime commits there) elsewhere.
    fn name_parts(&mut self, i: usize, len: usize, used: &str) {
        for r in &mut self.regions[i..i + len] {
            r.details = if r.perms.none() {
                "reserved".into()
            } else {
                used.into()
            };
        }
    }

    /// Finds the first run of contiguous VMAs, each free or accepted by
    /// `extra`, that spans exactly `size` bytes from a start aligned to
    /// `align`; returns its start index and length.
    fn exact_run(
        &self,
        size: u64,
        align: u64,
        extra: impl Fn(&Region) -> bool,
    ) -> Option<(usize, usize)> {
        let n = self.regions.len();
        // No heap is executable: a window over code is never a match.
        let usable = |k: usize| {
            !self.regions[k].perms.exec()
                && (self.free(k) || (!self.plan.is_grouped(k) && extra(&self.regions[k])))
        };
        for i in 0..n {
            if !usable(i) || self.regions[i].start % align.max(1) != 0 {
                continue;
            }
            let start = self.regions[i].start;
            let mut j = i;
            while j < n && usable(j) && (j == i || self.regions[j].start == self.regions[j - 1].end)
            {
                let span = self.regions[j].end - start;
                if span == size {
                    return Some((i, j - i + 1));
                }
                if span > size {
                    break;
                }
                j += 1;
            }
        }
        None
    }

    /// Gives VMAs `start..start + len` a type; more than one become a group.
    /// Sub-blocks say whether they are committed or only reserved.
    fn claim(&mut self, start: usize, len: usize, claim: Claim) {
        for r in &mut self.regions[start..start + len] {
            r.memory_type = claim.memory_type;
            r.evidence = claim.evidence.clone();
            r.confidence = claim.confidence;
            if len > 1 && r.details.is_empty() {
                r.details = if r.perms.none() {
                    "reserved".into()
                } else {
                    "committed".into()
                };
            }
        }
        if len == 1 {
            let r = &mut self.regions[start];
            r.details = claim.details;
            r.heap_id = claim.heap_id;
        } else {
            self.plan.add(start, len, claim, None);
        }
    }
}

/// `12.5 MiB` style sizes for details.
fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        return format!("{} KiB", bytes >> 10);
    }
    let m = bytes as f64 / f64::from(1u32 << 20);
    if m.fract() == 0.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}

fn gib(bytes: u64) -> String {
    if bytes % (1 << 30) == 0 {
        format!("{} GiB", bytes >> 30)
    } else {
        mib(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{anon, file};
    use crate::classify::classify;
    use crate::classify::testutil::FakeInspector;

    use crate::model::{Confidence, MemoryType};

    /// The layout .NET 8 documents for its regions GC and W^X JIT, as a
    /// fixture: no .NET runtime is installed on the test machines.
    #[test]
    fn dotnet_gc_range_and_doublemapper() {
        let gc = 0x7e00_0000_0000u64;
        let maps = vec![
            file(
                0x7f00_0000_0000,
                0x7f00_0040_0000,
                b"r-xp",
                4,
                "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/libcoreclr.so",
            ),
            anon(gc, gc + (4 << 20), b"rw-p", 3 << 20),
            anon(gc + (4 << 20), gc + (256 << 30), b"---p", 0),
            file(
                0x7f10_0000_0000,
                0x7f10_0001_0000,
                b"rw-s",
                5,
                "/memfd:doublemapper (deleted)",
            ),
            file(
                0x7f10_0010_0000,
                0x7f10_0011_0000,
                b"r-xs",
                5,
                "/memfd:doublemapper (deleted)",
            ),
        ];
        let mut fake = FakeInspector::default();
        fake.files.insert(
            "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/libcoreclr.so".into(),
            crate::classify::testutil::shared_object(),
        );
        let ctx = crate::classify::testutil::context();
        let (r, _) = classify(maps, &ctx, &mut fake);
        assert_eq!(r[0].memory_type, MemoryType::Image);
        assert_eq!(
            (r[1].memory_type, r[1].details.as_str(), r[1].confidence),
            (
                MemoryType::ManagedHeap,
                ".NET GC regions reservation (256 GiB)",
                Confidence::Medium
            )
        );
        assert_eq!(r[2].memory_type, MemoryType::ManagedHeap);
        assert!(r[2].details.contains("writable view"));
        assert!(r[3].details.contains("executable view"));
    }
}

#[cfg(test)]
pub(super) mod testutil {
    use crate::proc::smaps::{Field, Mapping};

    /// An anonymous mapping with `rss` resident bytes.
    pub(crate) fn anon(start: u64, end: u64, perms: &[u8; 4], rss: u64) -> Mapping {
        let mut m = Mapping {
            start,
            end,
            perms: *perms,
            ..Mapping::default()
        };
        m.fields.set(Field::Rss, rss);
        m
    }

    /// A file mapping.
    pub(crate) fn file(start: u64, end: u64, perms: &[u8; 4], inode: u64, path: &str) -> Mapping {
        Mapping {
            start,
            end,
            perms: *perms,
            inode,
            dev_major: 8,
            path: path.into(),
            ..Mapping::default()
        }
    }
}
