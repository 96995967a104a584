//! Pass 1: each mapping on its own, from its name, its device and whether
//! it is shared. Files are probed once per (device, inode) for an ELF
//! header; the image pass uses the result.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Context, FileProbe, Inspector};
use crate::model::{Confidence, MemoryType, Region};

/// Identifies a mapped file.
pub(super) type FileKey = (u32, u32, u64);

/// The file probes made, by file.
pub(super) type Probes = HashMap<FileKey, FileProbe>;

pub(super) fn file_key(r: &Region) -> FileKey {
    (r.dev_major, r.dev_minor, r.inode)
}

/// Sets a first type, details and evidence on every region; returns the
/// ELF probes of the mapped files.
pub(super) fn classify_each(
    regions: &mut [Region],
    ctx: &Context<'_>,
    inspector: &mut dyn Inspector,
    warnings: &mut Vec<String>,
) -> Probes {
    let mut probes = Probes::new();
    for r in regions.iter_mut() {
        let (t, details, evidence) = rule(r, ctx, inspector);
        r.memory_type = t;
        r.details = details;
        r.confidence = confidence_of(&evidence);
        r.evidence = evidence;
        if t == MemoryType::MappedFile && r.inode != 0 && r.path.starts_with('/') {
            let key = file_key(r);
            probes.entry(key).or_insert_with(|| {
                let p = inspector.probe_file(r);
                if let FileProbe::Unreadable(why) = &p {
                    warnings.push(format!(
                        "could not read {} to check for an ELF header: {why}",
                        r.path
                    ));
                }
                p
            });
        }
        if t == MemoryType::Heap && &*r.path == "[heap]" {
            r.heap_id = Some(0);
        }
        if t == MemoryType::Stack && &*r.path == "[stack]" {
            r.tid = Some(ctx.pid);
        }
    }
    probes
}

type Rule = (MemoryType, String, Cow<'static, str>);

/// A rule's outcome whose evidence is a fixed sentence.
fn typed(t: MemoryType, details: impl Into<String>, evidence: &'static str) -> Rule {
    (t, details.into(), Cow::Borrowed(evidence))
}

/// Names chosen by a program are weaker than names the kernel or glibc
/// gives: a word in a name is only a hint of what the memory is.
const NAMED_RUNTIME: &str = "mapping named by a managed runtime";
const NAMED_ALLOCATOR: &str = "allocator-named mapping";
const NAMED_STACK: &str = "mapping named as a stack";

fn confidence_of(evidence: &str) -> Confidence {
    match evidence {
        NAMED_RUNTIME | NAMED_ALLOCATOR => Confidence::High,
        NAMED_STACK => Confidence::Medium,
        _ => Confidence::Certain,
    }
}

fn rule(r: &Region, _ctx: &Context<'_>, inspector: &mut dyn Inspector) -> Rule {
    use MemoryType::*;
    let path = &*r.path;
    let shared = r.perms.shared();
    if path.is_empty() {
        return if shared {
            typed(
                Shareable,
                "shared anonymous",
                "MAP_SHARED|MAP_ANONYMOUS mapping without a name",
            )
        } else if r.perms.none() {
            typed(
                PrivateData,
                "",
                "private anonymous PROT_NONE mapping: a reservation or guard",
            )
        } else {
            typed(PrivateData, "", "private anonymous mapping")
        };
    }
    match path {
        "[heap]" => {
            return typed(
                Heap,
                "Heap ID: 0 (brk heap)",
                "kernel-named [heap]: the brk area glibc's main arena grows",
            )
        }
        "[stack]" => {
            return typed(
                Stack,
                "main thread",
                "kernel-named [stack]: the main thread's stack",
            )
        }
        "[vdso]" => {
            return typed(
                Image,
                "[vdso]",
                "vDSO: an ELF object the kernel maps into every process",
            )
        }
        "[vsyscall]" => {
            return typed(
                Image,
                "[vsyscall]",
                "legacy vsyscall page: kernel code mapped at a fixed address",
            )
        }
        "[vvar]" | "[vvar_vclock]" => {
            return typed(
                Shareable,
                path,
                "vDSO data pages shared by the kernel with every process",
            )
        }
        _ => {}
    }
    if let Some(name) = path
        .strip_prefix("[anon_shmem:")
        .and_then(|s| s.strip_suffix(']'))
    {
        return typed(
            Shareable,
            format!("shared anonymous: {name}"),
            "[anon_shmem:NAME]: named shared anonymous memory",
        );
    }
    if let Some(name) = path
        .strip_prefix("[anon:")
        .and_then(|s| s.strip_suffix(']'))
    {
        return anon_name(name.trim(), shared);
    }
    if path.starts_with('[') {
        return typed(
            if shared { Shareable } else { PrivateData },
            path,
            "kernel pseudo-mapping",
        );
    }
    let (base, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    if base == "/dev/zero" && shared {
        return typed(
            Shareable,
            "shared anonymous (/dev/zero)",
            "MAP_SHARED|MAP_ANONYMOUS (shmem file /dev/zero)",
        );
    }
    if let Some(key) = base.strip_prefix("/SYSV") {
        return typed(
            Shareable,
            format!("System V shm key 0x{key}"),
            "System V shared memory segment (/SYSV<key>)",
        );
    }
    if let Some(name) = base.strip_prefix("/memfd:") {
        return typed(Shareable, format!("memfd: {name}"), "memfd_create() file");
    }
    if shared {
        let fs = inspector.fs_type(r.dev_major, r.dev_minor);
        if matches!(fs, Some("tmpfs" | "hugetlbfs" | "ramfs")) || base.starts_with("/dev/shm/") {
            let ev = match fs {
                Some("hugetlbfs") => "file on hugetlbfs mapped shared",
                Some("ramfs") => "file on ramfs mapped shared",
                _ => "file on tmpfs (/dev/shm, shm_open) mapped shared",
            };
            return typed(Shareable, path, ev);
        }
    }
    if r.inode == 0 || !base.starts_with('/') {
        return typed(MappedFile, path, "non-file mapping (anon_inode or device)");
    }
    let _ = deleted;
    typed(MappedFile, path, "file mapping without an ELF header")
}

/// Regions named with `PR_SET_VMA_ANON_NAME` (Linux 5.17+).
fn anon_name(name: &str, shared: bool) -> Rule {
    use MemoryType::*;
    let own = |t, e| typed(t, name, e);
    if let Some(rest) = name.strip_prefix("glibc:") {
        let rest = rest.trim();
        if let Some(tid) = rest
            .strip_prefix("pthread stack:")
            .or_else(|| rest.strip_prefix("pthread user stack:"))
        {
            return typed(
                Stack,
                format!("thread {}", tid.trim()),
                "glibc-named pthread stack (glibc.mem.decorate_maps)",
            );
        }
        if rest.starts_with("malloc") || rest.starts_with("loader malloc") {
            return own(Heap, "glibc-named malloc memory (glibc.mem.decorate_maps)");
        }
        return own(PrivateData, "glibc-named mapping");
    }
    if name.starts_with("Go:") {
        return own(
            ManagedHeap,
            "Go runtime-named mapping (Go 1.25+ decoratemappings)",
        );
    }
    if let Some(tid) = name.strip_prefix("stack_and_tls:") {
        return typed(Stack, format!("thread {tid}"), "bionic-named thread stack");
    }
    if name.starts_with("libc_malloc")
        || name.starts_with("scudo:")
        || name.contains("jemalloc")
        || name.contains("mimalloc")
        || name.contains("tcmalloc")
    {
        return own(Heap, NAMED_ALLOCATOR);
    }
    let lower = name.to_ascii_lowercase();
    let managed = [
        "dalvik", "art ", "java", "jvm", "v8", "wasm", ".net", "gc heap", "managed", "pymalloc",
    ];
    if managed.iter().any(|m| lower.contains(m)) {
        return own(ManagedHeap, NAMED_RUNTIME);
    }
    if lower.contains("stack") {
        return own(Stack, NAMED_STACK);
    }
    if shared {
        own(Shareable, "named shared anonymous mapping")
    } else {
        own(PrivateData, "named private anonymous mapping ([anon:NAME])")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::FakeInspector;
    use super::*;
    use crate::proc::smaps::Mapping;

    fn region(perms: &[u8; 4], inode: u64, path: &str) -> Region {
        Region::from_mapping(Mapping {
            start: 0x1000,
            end: 0x2000,
            perms: *perms,
            inode,
            path: path.into(),
            ..Mapping::default()
        })
    }

    fn type_of(perms: &[u8; 4], inode: u64, path: &str) -> MemoryType {
        let ctx = crate::classify::testutil::context();
        let mut fake = FakeInspector::default();
        fake.fs.insert((0, 26), "tmpfs".into());
        let mut r = region(perms, inode, path);
        r.dev_minor = 26;
        rule(&r, &ctx, &mut fake).0
    }

    #[test]
    fn names_decide_types() {
        use MemoryType::*;
        assert_eq!(type_of(b"rw-p", 0, ""), PrivateData);
        assert_eq!(type_of(b"rw-s", 0, ""), Shareable);
        assert_eq!(type_of(b"rw-s", 7, "/dev/zero (deleted)"), Shareable);
        assert_eq!(type_of(b"rw-s", 7, "/SYSV0000abcd (deleted)"), Shareable);
        assert_eq!(type_of(b"rw-s", 7, "/memfd:buf (deleted)"), Shareable);
        assert_eq!(type_of(b"rw-s", 7, "/dev/shm/x"), Shareable);
        assert_eq!(type_of(b"rw-s", 7, "/run/x"), Shareable, "tmpfs by device");
        assert_eq!(
            type_of(b"r--p", 7, "/run/x"),
            MappedFile,
            "tmpfs mapped private"
        );
        assert_eq!(type_of(b"rw-p", 0, "[heap]"), Heap);
        assert_eq!(type_of(b"rw-p", 0, "[stack]"), Stack);
        assert_eq!(type_of(b"rw-p", 0, "[anon: glibc: malloc arena]"), Heap);
        assert_eq!(
            type_of(b"rw-p", 0, "[anon: glibc: pthread stack: 42]"),
            Stack
        );
        assert_eq!(type_of(b"rw-p", 0, "[anon: Go: heap]"), ManagedHeap);
        assert_eq!(type_of(b"rw-p", 0, "[anon:dalvik-main space]"), ManagedHeap);
        assert_eq!(type_of(b"rw-p", 0, "[anon:my cache]"), PrivateData);
        assert_eq!(type_of(b"rw-s", 0, "[anon_shmem:ring]"), Shareable);
        assert_eq!(type_of(b"r-xp", 0, "[vdso]"), Image);
        assert_eq!(type_of(b"rw-p", 9, "anon_inode:[io_uring]"), MappedFile);
    }
}
