//! The data model: a [`Snapshot`] of one process, made of typed
//! [`Region`]s. Everything a front end shows is derived from these values;
//! nothing here does I/O.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::elf::ElfInfo;
use crate::proc::smaps::{Field, Mapping, SmapsFields, UnknownField};
use crate::proc::status::Status;

/// VMMap's memory types, with Linux meanings (see `docs/metrics.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryType {
    /// ELF executables and shared objects, grouped per object.
    Image,
    /// File mappings that are not images.
    MappedFile,
    /// Memory that can be shared with other processes: shared anonymous,
    /// SysV shm, memfd, tmpfs files mapped shared.
    Shareable,
    /// The brk heap and glibc malloc arenas.
    Heap,
    /// Heaps of managed runtimes (Go, JVM, V8, .NET, CPython).
    ManagedHeap,
    /// Thread stacks, main and others.
    Stack,
    /// Remaining private anonymous memory.
    PrivateData,
    /// Kernel page tables charged to the process (`VmPTE`).
    PageTable,
    /// Unmapped address space between regions.
    Free,
}

impl MemoryType {
    /// Every type, in VMMap's Summary order.
    pub const ALL: [MemoryType; 9] = [
        MemoryType::Image,
        MemoryType::MappedFile,
        MemoryType::Shareable,
        MemoryType::Heap,
        MemoryType::ManagedHeap,
        MemoryType::Stack,
        MemoryType::PrivateData,
        MemoryType::PageTable,
        MemoryType::Free,
    ];

    /// The display name, as VMMap spells it.
    pub fn name(self) -> &'static str {
        match self {
            MemoryType::Image => "Image",
            MemoryType::MappedFile => "Mapped File",
            MemoryType::Shareable => "Shareable",
            MemoryType::Heap => "Heap",
            MemoryType::ManagedHeap => "Managed Heap",
            MemoryType::Stack => "Stack",
            MemoryType::PrivateData => "Private Data",
            MemoryType::PageTable => "Page Table",
            MemoryType::Free => "Free",
        }
    }

    /// The `snake_case` identifier used in JSON, CSV and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            MemoryType::Image => "image",
            MemoryType::MappedFile => "mapped_file",
            MemoryType::Shareable => "shareable",
            MemoryType::Heap => "heap",
            MemoryType::ManagedHeap => "managed_heap",
            MemoryType::Stack => "stack",
            MemoryType::PrivateData => "private_data",
            MemoryType::PageTable => "page_table",
            MemoryType::Free => "free",
        }
    }

    /// Parses a type from its id or display name, case-insensitively, with
    /// `-`, `_` and spaces interchangeable.
    pub fn parse(s: &str) -> Option<MemoryType> {
        let norm: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        MemoryType::ALL.into_iter().find(|t| {
            let id: String = t.id().chars().filter(|&c| c != '_').collect();
            id == norm || (norm == "private" && *t == MemoryType::PrivateData)
        })
    }

    /// What the type means on Linux, for `vmmap explain`.
    pub fn definition(self) -> &'static str {
        match self {
            MemoryType::Image => "ELF executables and shared objects mapped by the kernel or the dynamic loader, recognised by the ELF header of the mapped file (never by its name). All segments of one object, the PROT_NONE gaps between them and the anonymous .bss mapping after the last segment form one block; the segments are its sub-blocks. The vDSO and vsyscall pages count here too.",
            MemoryType::MappedFile => "File mappings that are not images: data files, fonts, locale archives, devices, anon_inode mappings, and ELF files mapped as plain data.",
            MemoryType::Shareable => "Memory that can be shared with other processes and is not a file on disk: MAP_SHARED|MAP_ANONYMOUS (/dev/zero (deleted)), [anon_shmem:NAME], System V shared memory (/SYSV…), memfd files, tmpfs/hugetlbfs files mapped shared (/dev/shm), and the kernel's vvar data pages.",
            MemoryType::Heap => "Native heap memory: the brk heap ([heap], Heap ID 0) and every glibc non-main arena (a HEAP_MAX_SIZE-aligned reservation whose heap_info header is read from the process to confirm it; each arena gets its own Heap ID), malloc's mmapped chunks (a chain of chunk headers with IS_MMAPPED covering the mapping), the memory of jemalloc, tcmalloc and mimalloc when one of them is loaded (a Heap ID of its own; mimalloc's segments by their 2-6 TiB hint addresses), plus regions glibc or other allocators name ([anon: glibc: malloc…], [anon:libc_malloc], [anon:scudo:…]).",
            MemoryType::ManagedHeap => "Heaps of managed runtimes, found from outside the process: mappings runtimes name (Go 1.25+ [anon: Go: …], Android ART/dalvik); the JVM's Java heap (the range of exactly the maximum heap size its hsperfdata counters give, with generation sizes), compressed class space, metaspace nodes, JIT code cache and, with low confidence, its other anonymous memory (GC card tables and bitmaps); Go's 64 MiB heap arenas at their hint addresses (0xc000000000) and its runtime metadata; V8's 256 KiB-aligned heap pages, code range and Wasm reservations; CPython's pymalloc arenas, each confirmed by a pool header read from the process. Every region says how sure its rule is (certain, high, medium, low): `vmmap explain PID ADDRESS` shows it.",
            MemoryType::Stack => "Thread stacks. The main thread's [stack], and every other thread's stack found from its stack pointer (task/TID/syscall) or, for a running thread, from glibc's thread control block at the top of the stack, which names the thread (a short ptrace interrupt, within a budget, only when neither works), with the PROT_NONE guard page below it. Details show the thread id and name; a stack with a glibc stack's shape whose thread is not known is typed with lower confidence, as TID unknown.",
            MemoryType::PrivateData => "Private anonymous memory that is no heap, stack or runtime heap: mmap(MAP_PRIVATE|MAP_ANONYMOUS) allocations no allocator or runtime owns, PROT_NONE reservations (counted in Size but not in Committed).",
            MemoryType::PageTable => "Kernel memory for the process's page tables: VmPTE from /proc/PID/status. Summary only.",
            MemoryType::Free => "Unmapped address space between regions, from mmap_min_addr to the top of the user address space (47-bit or 57-bit on x86-64, 48-bit on arm64). Shown on request; Largest is the largest free block.",
        }
    }
}

/// How sure a classification rule is of the type it gave.
///
/// `Certain` rules read a fact the kernel or the runtime states (a kernel
/// name, an ELF header, a header read from the process); `High` rules match
/// a runtime's documented layout exactly; `Medium` rules match a layout
/// that other memory could share by chance; `Low` rules only know that the
/// runtime owns most memory of that kind.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Owned by the runtime in all likelihood, not proven.
    Low,
    /// A layout match that could be chance.
    Medium,
    /// An exact match with the runtime's layout or counters.
    High,
    /// A stated fact.
    #[default]
    Certain,
}

impl Confidence {
    /// The identifier used in JSON and text.
    pub fn id(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
            Confidence::Certain => "certain",
        }
    }
}

/// The page permissions of a mapping, `rwxp` / `rwxs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perms(pub [u8; 4]);

impl Perms {
    /// Readable.
    pub fn read(self) -> bool {
        self.0[0] == b'r'
    }
    /// Writable.
    pub fn write(self) -> bool {
        self.0[1] == b'w'
    }
    /// Executable.
    pub fn exec(self) -> bool {
        self.0[2] == b'x'
    }
    /// MAP_SHARED.
    pub fn shared(self) -> bool {
        self.0[3] == b's'
    }
    /// PROT_NONE: no access at all (a reservation or guard).
    pub fn none(self) -> bool {
        !self.read() && !self.write() && !self.exec()
    }
    /// As printed, e.g. `r-xp`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl Serialize for Perms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Perms {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let b: [u8; 4] = s
            .as_bytes()
            .try_into()
            .map_err(|_| serde::de::Error::custom("perms must be 4 characters"))?;
        Ok(Perms(b))
    }
}

/// One region of the address space: a kernel VMA, or a group of VMAs that
/// form one allocation (an image's segments, a stack and its guard page, a
/// glibc arena's committed and reserved parts). A group's figures are the
/// sums of its sub-blocks'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permissions; for a group, the union of its sub-blocks' (`rwx` set if
    /// any sub-block has it).
    pub perms: Perms,
    /// File offset.
    pub offset: u64,
    /// Device as `major:minor`, hex, as in maps.
    pub dev_major: u32,
    /// Device minor number.
    pub dev_minor: u32,
    /// Inode, 0 for anonymous memory.
    pub inode: u64,
    /// Path or pseudo-name as printed by the kernel.
    pub path: Box<str>,
    /// The smaps figures in bytes (sums for a group).
    pub fields: SmapsFields,
    /// `THPeligible`.
    pub thp_eligible: Option<bool>,
    /// `ProtectionKey`.
    pub protection_key: Option<u32>,
    /// `VmFlags` as printed (empty for a group).
    pub vm_flags: Box<str>,
    /// smaps lines the parser did not know, kept verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<UnknownField>,
    /// The memory type.
    pub memory_type: MemoryType,
    /// What VMMap shows in its Details column: path, Heap ID, thread id…
    pub details: String,
    /// Why the region got its type, in words.
    pub evidence: Cow<'static, str>,
    /// How sure the rule that gave the type is (files written before
    /// confidences existed load as certain, as their rules all were).
    #[serde(default)]
    pub confidence: Confidence,
    /// Heap ID for Heap regions (0 is the brk heap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_id: Option<u32>,
    /// Thread id for Stack regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// The VMAs this region groups, in address order; empty for a plain VMA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_blocks: Vec<Region>,
    /// Per-page residency and sharing from pagemap, when exact sharing was
    /// asked for (`--sharing exact`); replaces the smaps-based Shareable
    /// and Shared WS of this VMA. Boxed: only `--sharing exact` fills it,
    /// and inline it was 48 of every region's 504 bytes (at 60,000
    /// mappings the region list's first touches are most of a snapshot's
    /// page faults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Box<crate::sharing::PageSharing>>,
    /// An image's ELF sections with their per-page figures (`--sections`):
    /// derived rows, not kernel VMAs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<crate::sharing::SectionFigures>,
    /// Ranges inside this VMA that a runtime names (a goroutine's stack in
    /// a Go heap arena): derived rows without figures of their own, since
    /// the kernel accounts for whole VMAs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

/// A named range inside one VMA ([`Region::parts`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// What it is, e.g. `goroutine 18 stack (status waiting)`.
    pub details: String,
    /// The thread whose own stack this range is (a Go thread's system
    /// stack inside the arenas, without cgo): such a part is a Stack with
    /// that TID, though its bytes are counted in the VMA's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
}

impl Default for Region {
    /// An empty region: what is left behind when regions move into groups.
    fn default() -> Region {
        Region::from_mapping(Mapping::default())
    }
}

impl Region {
    /// A region for one kernel mapping, typed Private Data until the
    /// classifier says otherwise.
    pub fn from_mapping(m: Mapping) -> Region {
        Region {
            start: m.start,
            end: m.end,
            perms: Perms(m.perms),
            offset: m.offset,
            dev_major: m.dev_major,
            dev_minor: m.dev_minor,
            inode: m.inode,
            path: m.path,
            fields: m.fields,
            thp_eligible: m.thp_eligible,
            protection_key: m.protection_key,
            vm_flags: m.vm_flags,
            unknown_fields: m.unknown,
            memory_type: MemoryType::PrivateData,
            details: String::new(),
            evidence: Cow::Borrowed(""),
            confidence: Confidence::Certain,
            heap_id: None,
            tid: None,
            sub_blocks: Vec::new(),
            pages: None,
            sections: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Builds a group from consecutive regions; figures are summed and the
    /// identity (path, device, inode, offset) is the first sub-block's.
    pub fn group(
        sub_blocks: Vec<Region>,
        memory_type: MemoryType,
        details: String,
        evidence: Cow<'static, str>,
    ) -> Region {
        let first = &sub_blocks[0];
        let mut fields = SmapsFields::default();
        let mut perms = *b"---p";
        for s in &sub_blocks {
            fields.add(&s.fields);
            for (p, &c) in perms.iter_mut().zip(&s.perms.0[..3]) {
                if c != b'-' {
                    *p = c;
                }
            }
            if s.perms.shared() {
                perms[3] = b's';
            }
        }
        // Page sizes are properties, not amounts: a group has its parts'
        // largest rather than their sum.
        for f in [Field::KernelPageSize, Field::MmuPageSize] {
            if let Some(max) = sub_blocks.iter().filter_map(|s| s.fields.get(f)).max() {
                fields.set(f, max);
            }
        }
        Region {
            start: first.start,
            end: sub_blocks.last().map_or(first.end, |l| l.end),
            perms: Perms(perms),
            offset: first.offset,
            dev_major: first.dev_major,
            dev_minor: first.dev_minor,
            inode: first.inode,
            path: first.path.clone(),
            fields,
            thp_eligible: None,
            protection_key: None,
            vm_flags: Box::from(""),
            unknown_fields: Vec::new(),
            memory_type,
            details,
            evidence,
            confidence: Confidence::Certain,
            heap_id: None,
            tid: None,
            sub_blocks,
            pages: None,
            sections: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether `addr` lies inside.
    pub(crate) fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The kernel VMAs of this region: itself, or its sub-blocks.
    pub fn vmas(&self) -> &[Region] {
        if self.sub_blocks.is_empty() {
            std::slice::from_ref(self)
        } else {
            &self.sub_blocks
        }
    }

    /// Whether `VmFlags` holds a two-letter flag.
    pub fn has_vm_flag(&self, flag: &str) -> bool {
        self.vm_flags.split_ascii_whitespace().any(|f| f == flag)
    }

    /// The maximum protection the mapping may ever get, from the `mr`, `mw`,
    /// `me` and `ms` VmFlags (what mprotect could still grant), as `rwxs`.
    /// `None` for a group or a kernel without VmFlags.
    pub fn max_protection(&self) -> Option<[u8; 4]> {
        if self.vm_flags.is_empty() {
            return None;
        }
        let mut out = *b"---p";
        // One pass over the flags: this runs for every row of a table.
        for f in self.vm_flags.as_bytes().split(|&c| c == b' ') {
            match f {
                b"mr" => out[0] = b'r',
                b"mw" => out[1] = b'w',
                b"me" => out[2] = b'x',
                b"ms" => out[3] = b's',
                _ => {}
            }
        }
        Some(out)
    }

    /// [`Region::max_protection`] as text.
    pub(crate) fn max_protection_str(&self) -> Option<String> {
        self.max_protection()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// One thread of the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// Thread id.
    pub tid: u32,
    /// Thread name (`comm`).
    pub name: String,
    /// User stack pointer, when it could be read (a hex string in JSON,
    /// like every address).
    #[serde(with = "crate::hex::option")]
    pub stack_pointer: Option<u64>,
    /// How the stack pointer was found, or why it was not.
    pub stack_pointer_source: StackPointerSource,
    /// Where glibc's thread control block (`struct pthread`) of a running
    /// thread was found, at the top of its stack mapping: how its stack is
    /// known without stopping it (source `tcb`). Absent in recordings
    /// made before it existed.
    #[serde(default, with = "crate::hex::option")]
    pub tcb: Option<u64>,
}

/// Where a thread's stack pointer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackPointerSource {
    /// `/proc/PID/task/TID/syscall` of a blocked or stopped thread.
    Syscall,
    /// A ptrace interrupt of a running thread (PTRACE_SEIZE, INTERRUPT,
    /// GETREGSET, DETACH).
    Ptrace,
    /// The thread was running; its stack was found, without stopping it,
    /// by its glibc thread control block at the top of the stack mapping,
    /// which holds its TID (no stack pointer then).
    Tcb,
    /// The thread kept running, its TCB was not found, and the snapshot's
    /// ptrace budget ran out before it was reached.
    Deadline,
    /// The thread kept running, its TCB was not found, and ptrace was
    /// refused or disabled.
    Unavailable,
    /// The thread exited during collection.
    Exited,
    /// No longer listed by the kernel, but alive at the end of a traced
    /// run's trace (killed by the `exit` the snapshot was taken at): the
    /// stack is the range the tracing agent recorded (the stack pointer
    /// given is the top of that range).
    Trace,
}

/// Who the process is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Command name (`comm`).
    pub name: String,
    /// Arguments.
    pub cmdline: Vec<String>,
    /// Executable path (`/proc/PID/exe`), if readable.
    pub exe: Option<String>,
    /// Real uid.
    pub uid: u32,
    /// User name for the uid, if it has one.
    pub user: Option<String>,
    /// ELF header of the executable: class and machine.
    pub elf: Option<ElfInfo>,
    /// Start time in clock ticks after boot, which with the PID identifies
    /// the process across PID reuse.
    pub start_time_ticks: u64,
    /// The threads, main thread first.
    pub threads: Vec<ThreadInfo>,
    /// The PID in the process's own PID namespace, when that differs (a
    /// container's processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
    /// The container or pod it runs in, from its cgroup path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::container::Container>,
}

impl ProcessInfo {
    /// `x86-64 (ELF64)`, or `unknown`.
    pub fn arch(&self) -> String {
        self.elf
            .as_ref()
            .map_or_else(|| "unknown".into(), ElfInfo::arch)
    }

    /// Pointer width in bytes, from the ELF class (8 when unknown).
    pub(crate) fn pointer_width(&self) -> usize {
        match self.elf.as_ref().map(|e| e.class) {
            Some(32) => 4,
            _ => 8,
        }
    }
}

/// Facts about the kernel that shape the figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    /// `uname -r`.
    pub release: String,
    /// Base page size in bytes.
    pub page_size: u64,
    /// `vm.mmap_min_addr`: the lowest address a mapping may have.
    pub mmap_min_addr: u64,
    /// One past the highest user address, for Free space.
    pub user_address_limit: u64,
    /// smaps fields this kernel does not print (figures shown as n/a).
    pub missing_fields: Vec<String>,
    /// The kernel has `smaps_rollup` but it was not read, because the
    /// output shows no rollup figure (`Snapshot::rollup` is `None` then).
    /// Never saved: a snapshot that is saved or exported reads it.
    #[serde(skip)]
    pub rollup_unread: bool,
}

/// One snapshot of one process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The process.
    pub process: ProcessInfo,
    /// When it was taken, nanoseconds since the Unix epoch: when its map
    /// had been read (the end of the smaps read), not when it was done.
    pub taken_at_unix_ns: u64,
    /// The kernel.
    pub kernel: KernelInfo,
    /// Top-level regions in address order; groups carry their sub-blocks.
    pub regions: Vec<Region>,
    /// The kernel's own totals from `smaps_rollup`, when the kernel has it
    /// (4.14+); the reconciliation reference.
    pub rollup: Option<SmapsFields>,
    /// `/proc/PID/status`, every line.
    pub status: Status,
    /// Things the user should know about this snapshot: a thread whose
    /// stack could not be located, a file that could not be read.
    pub warnings: Vec<String>,
    /// How the exact (pagemap) sharing figures were computed, when they
    /// were; `None` means Shareable and Shared WS come from smaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<crate::sharing::SharingMethod>,
}

impl Snapshot {
    /// A snapshot of the given regions with a minimal identity (pid, an
    /// x86-64 kernel with 4 KiB pages, no threads, no rollup), for tests
    /// and for tools that build snapshots from other sources.
    pub fn from_regions(pid: u32, taken_at_unix_ns: u64, regions: Vec<Region>) -> Snapshot {
        Snapshot {
            process: ProcessInfo {
                pid,
                name: String::new(),
                cmdline: Vec::new(),
                exe: None,
                uid: 0,
                user: None,
                elf: None,
                start_time_ticks: 0,
                threads: Vec::new(),
                ns_pid: None,
                container: None,
            },
            taken_at_unix_ns,
            kernel: KernelInfo {
                release: String::new(),
                page_size: 4096,
                mmap_min_addr: 0x1000,
                user_address_limit: (1 << 47) - 4096,
                missing_fields: Vec::new(),
                rollup_unread: false,
            },
            regions,
            rollup: None,
            status: Status::default(),
            warnings: Vec::new(),
            sharing: None,
        }
    }

    /// Page table bytes (`VmPTE`), when the kernel reports it.
    pub fn page_table_bytes(&self) -> Option<u64> {
        self.status.bytes("VmPTE")
    }

    /// Every kernel VMA, in address order, flattening groups.
    pub fn vmas(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter().flat_map(Region::vmas)
    }

    /// The top-level region holding `addr`.
    pub fn region_at(&self, addr: u64) -> Option<&Region> {
        let i = self.regions.partition_point(|r| r.end <= addr);
        self.regions.get(i).filter(|r| r.contains(addr))
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// A plain private read-write region from `start` to `end`, the
    /// unit tests' building block.
    pub(crate) fn rw_region(start: u64, end: u64) -> Region {
        Region::from_mapping(Mapping {
            start,
            end,
            perms: *b"rw-p",
            ..Mapping::default()
        })
    }
}
