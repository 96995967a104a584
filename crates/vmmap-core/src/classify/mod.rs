//! Classification of kernel mappings into VMMap's memory types.
//!
//! Classification needs a few facts that only the live system has: the ELF
//! header of a mapped file, a glibc arena header in the target's memory,
//! the filesystem type behind a device. It asks for them through the
//! [`Inspector`] trait, so that the rules here stay free of I/O and are
//! tested with a fake inspector.
//!
//! The passes work in place on the flat list of kernel VMAs and record the
//! groups they find in a [`Plan`]; one last step builds the top-level list.
//! (Rebuilding the list after each pass cost more than the passes
//! themselves at 60,000 VMAs: 24 MB of fresh pages each time.)
//! 1. each mapping on its own, by name, device and sharing ([`basic`]);
//! 2. ELF objects grouped into images with their `.bss` ([`image`]);
//! 3. glibc arenas confirmed from their `heap_info` ([`heap`]);
//! 4. heaps of managed runtimes and other allocators that their layout
//!    identifies exactly ([`runtime`]);
//! 5. thread stacks found from stack pointers ([`stack`]);
//! 6. glibc's mmapped chunks, then the rest of a runtime's or allocator's
//!    anonymous memory ([`runtime`]).

mod basic;
mod heap;
mod image;
mod runtime;
pub(crate) mod stack;

use std::borrow::Cow;
use std::collections::HashMap;

use crate::elf::ElfInfo;
use crate::model::{Confidence, MemoryType, Region, ThreadInfo};
use crate::proc::smaps::Mapping;

/// What the file behind a mapping turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileProbe {
    /// It has an ELF header.
    Elf(ElfInfo),
    /// It was read and is not ELF.
    NotElf,
    /// It could not be read (the reason is given).
    Unreadable(String),
}

/// Access to the facts classification needs from the live system.
pub trait Inspector {
    /// Reads the start of the file behind a file mapping.
    fn probe_file(&mut self, mapping: &Region) -> FileProbe;
    /// Reads target memory at `addr` into `buf`; false if it cannot.
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool;
    /// Reads `len` bytes at each of `addrs` (ascending) into the
    /// consecutive `len`-byte pieces of `out`; says for each whether it
    /// could. The live inspector reads them all in one go (the default
    /// reads one at a time).
    fn read_memory_each(&mut self, addrs: &[u64], len: usize, out: &mut [u8]) -> Vec<bool> {
        addrs
            .iter()
            .zip(out.chunks_exact_mut(len.max(1)))
            .map(|(&a, piece)| self.read_memory(a, piece))
            .collect()
    }
    /// The filesystem type of a device, from the target's mountinfo.
    fn fs_type(&self, major: u32, minor: u32) -> Option<&str>;
    /// Reads `buf.len()` bytes at `offset` of the file behind a mapping;
    /// false if it cannot (the default: an inspector without files).
    fn read_file_at(&mut self, mapping: &Region, offset: u64, buf: &mut [u8]) -> bool {
        let _ = (mapping, offset, buf);
        false
    }
    /// A file of the target's `/proc/PID` directory (`cmdline`), for the
    /// rules that need the process's arguments; `None` if it cannot be
    /// read (the default: an inspector without a process).
    fn proc_file(&mut self, name: &str) -> Option<Vec<u8>> {
        let _ = name;
        None
    }
}

/// What the classifier knows about the process.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// Process id (the main thread's tid).
    pub pid: u32,
    /// Pointer width of the target in bytes (4 or 8).
    pub pointer_width: usize,
    /// Base page size.
    pub page_size: u64,
    /// The threads with their stack pointers.
    pub threads: &'a [ThreadInfo],
}

/// Classifies mappings (in address order) into top-level regions, grouping
/// images, stacks and arenas. Returns the regions and warnings for the
/// user (files that could not be read, for example).
pub fn classify(
    mappings: Vec<Mapping>,
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
) -> (Vec<Region>, Vec<String>) {
    classify_regions(
        mappings.into_iter().map(Region::from_mapping).collect(),
        ctx,
        inspector,
    )
}

/// [`classify`] for VMAs already turned into (untyped) regions.
pub(crate) fn classify_regions(
    mut regions: Vec<Region>,
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
) -> (Vec<Region>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut plan = Plan::new(regions.len());
    let probes = basic::classify_each(&mut regions, ctx, inspector, &mut warnings);
    image::plan_images(&mut regions, &probes, &mut plan);
    heap::plan_arenas(&mut regions, ctx, inspector, &mut plan);
    let runtimes = runtime::plan_exact(&mut regions, ctx, inspector, &mut plan);
    stack::plan_stacks(&mut regions, ctx, inspector, &mut plan, &mut warnings);
    runtime::plan_rest(runtimes, &mut regions, ctx, inspector, &mut plan);
    (plan.build(regions), warnings)
}

/// What a rule found a run of VMAs to be: the type, the words shown for
/// it, why the rule says so, how sure it is and the heap it belongs to.
/// One value, so that every pass and runtime rule hands the same five
/// facts over the same way.
pub(crate) struct Claim {
    memory_type: MemoryType,
    details: String,
    evidence: Cow<'static, str>,
    confidence: Confidence,
    heap_id: Option<u32>,
}

impl Claim {
    /// A claim with no heap ID, as sure as an exact match with a
    /// runtime's layout or counters (`High`), which is what most rules
    /// have; [`Claim::confidence`] says otherwise.
    pub(crate) fn new(
        memory_type: MemoryType,
        details: impl Into<String>,
        evidence: impl Into<Cow<'static, str>>,
    ) -> Claim {
        Claim {
            memory_type,
            details: details.into(),
            evidence: evidence.into(),
            confidence: Confidence::High,
            heap_id: None,
        }
    }

    /// A managed runtime's memory (the type most runtime rules claim).
    pub(crate) fn managed_heap(
        details: impl Into<String>,
        evidence: impl Into<Cow<'static, str>>,
    ) -> Claim {
        Claim::new(MemoryType::ManagedHeap, details, evidence)
    }

    /// How sure the rule is.
    pub(crate) fn confidence(mut self, confidence: Confidence) -> Claim {
        self.confidence = confidence;
        self
    }

    /// The Heap ID the run gets.
    pub(crate) fn heap_id(mut self, id: u32) -> Claim {
        self.heap_id = Some(id);
        self
    }
}

/// A group found by a pass: `len` consecutive VMAs from its start index.
pub(crate) struct Group {
    len: usize,
    claim: Claim,
    tid: Option<u32>,
}

/// The groups found so far, by start index.
pub(crate) struct Plan {
    groups: HashMap<usize, Group>,
    grouped: Vec<bool>,
}

impl Plan {
    fn new(n: usize) -> Plan {
        Plan {
            groups: HashMap::new(),
            grouped: vec![false; n],
        }
    }

    /// Whether VMA `i` already belongs to a group.
    fn is_grouped(&self, i: usize) -> bool {
        self.grouped.get(i).copied().unwrap_or(false)
    }

    /// Records a group of `len` VMAs starting at `start`.
    fn add(&mut self, start: usize, len: usize, claim: Claim, tid: Option<u32>) {
        for g in &mut self.grouped[start..start + len] {
            *g = true;
        }
        self.groups.insert(start, Group { len, claim, tid });
    }

    /// Undoes a group of one VMA at `i` (a later pass that knows better
    /// takes the VMA into a larger group); false if `i` starts no such group.
    fn ungroup_single(&mut self, i: usize) -> bool {
        if self.groups.get(&i).is_some_and(|g| g.len == 1) {
            self.groups.remove(&i);
            self.grouped[i] = false;
            return true;
        }
        false
    }

    /// The largest Heap ID given to a group so far.
    fn max_heap_id(&self) -> Option<u32> {
        self.groups.values().filter_map(|g| g.claim.heap_id).max()
    }

    /// Moves the VMAs into the top-level list, groups holding their parts.
    /// Compacts in place: a group only ever shrinks the list, and a new
    /// 24 MB vector (at 60,000 VMAs) would cost more in page faults than
    /// the whole classification.
    fn build(mut self, mut flat: Vec<Region>) -> Vec<Region> {
        if self.groups.is_empty() {
            return flat;
        }
        let n = flat.len();
        let (mut read, mut write) = (0, 0);
        while read < n {
            match self.groups.remove(&read) {
                None => {
                    flat.swap(write, read);
                    read += 1;
                }
                Some(g) => {
                    let subs: Vec<Region> = flat[read..read + g.len]
                        .iter_mut()
                        .map(std::mem::take)
                        .collect();
                    read += g.len;
                    let c = g.claim;
                    let mut region = Region::group(subs, c.memory_type, c.details, c.evidence);
                    region.heap_id = c.heap_id;
                    region.confidence = c.confidence;
                    region.tid = g.tid;
                    flat[write] = region;
                }
            }
            write += 1;
        }
        flat.truncate(write);
        flat
    }
}

/// Whether a region is plain anonymous memory: no file, no name.
fn is_plain_anon(r: &Region) -> bool {
    r.inode == 0 && r.path.is_empty() && r.sub_blocks.is_empty()
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::collections::HashMap;

    use super::*;

    /// An inspector over fixed answers.
    #[derive(Default)]
    pub(crate) struct FakeInspector {
        pub(crate) files: HashMap<String, FileProbe>,
        pub(crate) memory: Vec<(u64, Vec<u8>)>,
        pub(crate) fs: HashMap<(u32, u32), String>,
        pub(crate) proc_files: HashMap<String, Vec<u8>>,
    }

    /// What probing an x86-64 shared object gives (no segments needed).
    pub(crate) fn shared_object() -> FileProbe {
        FileProbe::Elf(ElfInfo {
            class: 64,
            little_endian: true,
            machine: 62,
            file_type: 3,
            loads: vec![],
        })
    }

    /// A 64-bit process with 4 KiB pages and no threads.
    pub(crate) fn context() -> Context<'static> {
        Context {
            pid: 1,
            pointer_width: 8,
            page_size: 4096,
            threads: &[],
        }
    }

    impl Inspector for FakeInspector {
        fn probe_file(&mut self, m: &Region) -> FileProbe {
            self.files
                .get(&*m.path)
                .cloned()
                .unwrap_or(FileProbe::NotElf)
        }
        fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool {
            for (base, bytes) in &self.memory {
                if addr >= *base && addr + buf.len() as u64 <= base + bytes.len() as u64 {
                    let o = (addr - base) as usize;
                    buf.copy_from_slice(&bytes[o..o + buf.len()]);
                    return true;
                }
            }
            false
        }
        fn fs_type(&self, major: u32, minor: u32) -> Option<&str> {
            self.fs.get(&(major, minor)).map(String::as_str)
        }
        fn proc_file(&mut self, name: &str) -> Option<Vec<u8>> {
            self.proc_files.get(name).cloned()
        }
    }
}
