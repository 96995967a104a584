//! The parsers and collection against captured `/proc` trees of several
//! kernel generations (`tests/fixtures/proc/<case>/`).
//!
//! `kernel-6.18` is a real capture of `sleep 1000` (smaps and smaps_rollup
//! read back to back by one process, so the two agree) plus the real
//! `kthreadd`. The older cases are the same kind of process written in the
//! field set, field order and layout of their kernel:
//!
//! | case               | smaps lacks                                             | rollup |
//! |--------------------|---------------------------------------------------------|--------|
//! | `kernel-5.4`       | Pss_Dirty, KSM                                          | yes    |
//! | `kernel-4.19`      | + FilePmdMapped, THPeligible                             | yes, no Pss_Anon/File/Shmem |
//! | `kernel-4.9-pkeys` | + LazyFree; has ProtectionKey                            | no     |
//! | `kernel-3.10`      | + SwapPss, Shared/Private_Hugetlb, ShmemPmdMapped       | no     |
//!
//! `no-page-monitor` is a kernel without `CONFIG_PROC_PAGE_MONITOR`: maps
//! but no smaps.

use std::path::{Path, PathBuf};

use vmmap_core::collect::{self, Options};
use vmmap_core::proc::smaps::{self, Field, Mapping, SmapsFields, SmapsParser};
use vmmap_core::proc::syscall::Syscall;
use vmmap_core::proc::{cmdline, mountinfo, rollup, stat, status, syscall};
use vmmap_core::{Column, Error, Figures, MemoryType, Snapshot, Summary};

/// The per-VMA fields, in slot order (the last three are rollup-only).
const VMA_FIELDS: &[Field] = Field::PER_VMA;

const ROLLUP_ONLY: [Field; 3] = [Field::PssAnon, Field::PssFile, Field::PssShmem];

/// One captured tree and what its kernel prints.
struct Case {
    dir: &'static str,
    pid: u32,
    release: &'static str,
    mmap_min_addr: u64,
    /// smaps fields this kernel does not print, in [`Field::ALL`] order.
    missing: &'static [Field],
    /// Whether the kernel has smaps_rollup (4.14+).
    rollup: bool,
    /// Whether smaps_rollup splits Pss into Anon/File/Shmem (5.1+).
    pss_split: bool,
    /// Whether smaps prints THPeligible (5.0+).
    thp_eligible: bool,
    /// Whether smaps prints ProtectionKey (x86 with OSPKE).
    pkeys: bool,
    mappings: usize,
    threads: usize,
}

const CASES: &[Case] = &[
    Case {
        dir: "kernel-6.18",
        pid: 8752,
        release: "6.18.44-fc-v595",
        mmap_min_addr: 4096,
        missing: &[],
        rollup: true,
        pss_split: true,
        thp_eligible: true,
        pkeys: false,
        mappings: 37,
        threads: 1,
    },
    Case {
        dir: "kernel-5.4",
        pid: 1432,
        release: "5.4.0-150-generic",
        mmap_min_addr: 65536,
        missing: &[Field::PssDirty, Field::Ksm],
        rollup: true,
        pss_split: true,
        thp_eligible: true,
        pkeys: false,
        mappings: 23,
        threads: 1,
    },
    Case {
        dir: "kernel-4.19",
        pid: 2981,
        release: "4.19.0-25-amd64",
        mmap_min_addr: 65536,
        missing: &[Field::PssDirty, Field::Ksm, Field::FilePmdMapped],
        rollup: true,
        pss_split: false,
        thp_eligible: false,
        pkeys: false,
        mappings: 39,
        threads: 2,
    },
    Case {
        dir: "kernel-4.9-pkeys",
        pid: 3307,
        release: "4.9.0-19-amd64",
        mmap_min_addr: 65536,
        missing: &[
            Field::PssDirty,
            Field::Ksm,
            Field::LazyFree,
            Field::FilePmdMapped,
        ],
        rollup: false,
        pss_split: false,
        thp_eligible: false,
        pkeys: true,
        mappings: 20,
        threads: 1,
    },
    Case {
        dir: "kernel-3.10",
        pid: 2214,
        release: "3.10.108",
        mmap_min_addr: 4096,
        missing: &[
            Field::PssDirty,
            Field::Ksm,
            Field::LazyFree,
            Field::ShmemPmdMapped,
            Field::FilePmdMapped,
            Field::SharedHugetlb,
            Field::PrivateHugetlb,
            Field::SwapPss,
        ],
        rollup: false,
        pss_split: false,
        thp_eligible: false,
        pkeys: false,
        mappings: 19,
        threads: 1,
    },
];

const KIB: u64 = 1024;

fn root(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proc")
        .join(case)
}

fn read(c: &Case, file: &str) -> Vec<u8> {
    let p = root(c.dir).join(c.pid.to_string()).join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn smaps_of(c: &Case) -> Vec<Mapping> {
    smaps::parse(&read(c, "smaps")).unwrap_or_else(|e| panic!("{}: {e}", c.dir))
}

fn rollup_of(c: &Case) -> SmapsFields {
    rollup::parse(&read(c, "smaps_rollup"))
        .unwrap_or_else(|e| panic!("{}: {e}", c.dir))
        .unwrap_or_else(|| panic!("{}: empty smaps_rollup", c.dir))
}

fn sum(maps: &[Mapping]) -> SmapsFields {
    let mut s = SmapsFields::default();
    for m in maps {
        s.add(&m.fields);
    }
    s
}

fn take(c: &Case) -> Snapshot {
    collect::snapshot(c.pid, &Options::default().proc_root(root(c.dir)))
        .unwrap_or_else(|e| panic!("{}: {e}", c.dir))
}

/// Whether a column needs a field this kernel lacks.
fn needs_missing(col: Column, missing: &[Field]) -> bool {
    col.needs().iter().any(|f| missing.contains(f))
}

#[test]
fn vma_fields_cover_every_smaps_field() {
    assert_eq!(VMA_FIELDS, &Field::ALL[..22]);
    assert_eq!(ROLLUP_ONLY, Field::ALL[22..]);
}

#[test]
fn smaps_fields_are_present_exactly_per_kernel() {
    for c in CASES {
        let maps = smaps_of(c);
        assert_eq!(maps.len(), c.mappings, "{}: mapping count", c.dir);
        for m in &maps {
            let at = format!("{} {:x} {}", c.dir, m.start, m.path);
            for &f in VMA_FIELDS {
                let absent = c.missing.contains(&f);
                assert_eq!(m.fields.has(f), !absent, "{at}: {f:?}");
                if absent {
                    assert_eq!(m.fields.get(f), None, "{at}: {f:?} must be None");
                    assert_eq!(m.fields.bytes(f), 0, "{at}: {f:?} slot");
                }
            }
            for f in ROLLUP_ONLY {
                assert_eq!(m.fields.get(f), None, "{at}: {f:?} is rollup-only");
            }
            assert_eq!(m.fields.get(Field::Size), Some(m.size()), "{at}: Size");
            assert!(m.unknown.is_empty(), "{at}: unknown {:?}", m.unknown);
            assert!(!m.vm_flags.is_empty(), "{at}: VmFlags (3.8+)");
            assert_eq!(
                m.thp_eligible.is_some(),
                c.thp_eligible,
                "{at}: THPeligible"
            );
            assert_eq!(m.protection_key.is_some(), c.pkeys, "{at}: ProtectionKey");
            // The kernel's own invariants, which the fixtures keep.
            let b = |f| m.fields.bytes(f);
            assert_eq!(
                b(Field::Rss),
                b(Field::SharedClean)
                    + b(Field::SharedDirty)
                    + b(Field::PrivateClean)
                    + b(Field::PrivateDirty),
                "{at}: Rss"
            );
            assert!(b(Field::Anonymous) <= b(Field::Rss), "{at}: Anonymous");
            assert!(b(Field::Pss) <= b(Field::Rss), "{at}: Pss");
        }
    }
}

#[test]
fn values_are_bytes() {
    // The first mapping of each case, read off the text by hand.
    let c = &CASES[0];
    let m = &smaps_of(c)[0];
    assert_eq!(
        (m.start, m.end, &m.perms, m.offset),
        (0x563cbae0c000, 0x563cbae0e000, b"r--p", 0)
    );
    assert_eq!((m.dev_major, m.dev_minor, m.inode), (0xfe, 0, 247774));
    assert_eq!(&*m.path, "/usr/bin/sleep");
    assert_eq!(m.fields.get(Field::Rss), Some(8 * KIB));
    assert_eq!(m.fields.get(Field::KernelPageSize), Some(4 * KIB));
    assert_eq!(m.fields.get(Field::PssDirty), Some(0));
    assert_eq!(m.thp_eligible, Some(false));
    assert_eq!(&*m.vm_flags, "rd mr mw me");

    // 4.19's hugetlbfs mapping: 2 MB pages, counted in Private_Hugetlb and
    // not in Rss.
    let c = case("kernel-4.19");
    let maps = smaps_of(c);
    let h = maps
        .iter()
        .find(|m| m.path.starts_with("/dev/hugepages/"))
        .unwrap();
    assert_eq!(h.fields.get(Field::KernelPageSize), Some(2048 * KIB));
    assert_eq!(h.fields.get(Field::PrivateHugetlb), Some(2048 * KIB));
    assert_eq!(h.fields.get(Field::Rss), Some(0));
    let sysv = maps.iter().find(|m| m.path.starts_with("/SYSV")).unwrap();
    assert_eq!(&*sysv.path, "/SYSV00001e61 (deleted)");
    assert_eq!(sysv.fields.get(Field::SwapPss), Some(32 * KIB));
    let locked = maps
        .iter()
        .find(|m| m.vm_flags.split(' ').any(|f| f == "lo"))
        .unwrap();
    assert_eq!(locked.fields.get(Field::Locked), Some(64 * KIB));

    // 5.4 printed THPeligible with tabs.
    let maps = smaps_of(case("kernel-5.4"));
    let heap = maps.iter().find(|m| &*m.path == "[heap]").unwrap();
    assert_eq!(heap.thp_eligible, Some(true));
    assert_eq!(maps[0].thp_eligible, Some(false));

    // 3.10: eight-digit addresses of a non-PIE executable, and
    // KernelPageSize printed after Swap.
    let maps = smaps_of(case("kernel-3.10"));
    assert_eq!((maps[0].start, maps[0].end), (0x400000, 0x406000));
    assert_eq!((maps[0].dev_major, maps[0].dev_minor), (0xfd, 0));
    assert_eq!(maps[0].fields.get(Field::KernelPageSize), Some(4 * KIB));
    assert!(maps.iter().all(|m| &*m.path != "[vvar]"));
}

fn case(dir: &str) -> &'static Case {
    CASES.iter().find(|c| c.dir == dir).unwrap()
}

#[test]
fn protection_key_is_captured() {
    let c = case("kernel-4.9-pkeys");
    let maps = smaps_of(c);
    let keyed: Vec<_> = maps
        .iter()
        .filter(|m| m.protection_key != Some(0))
        .map(|m| (m.start, m.protection_key))
        .collect();
    assert_eq!(keyed, [(0x7f9c1ca64000, Some(1))]);
    // ProtectionKey is no kB field and is not left in `unknown`.
    assert!(maps.iter().all(|m| m.unknown.is_empty()));
    let snap = take(c);
    let r = snap.vmas().find(|r| r.start == 0x7f9c1ca64000).unwrap();
    assert_eq!(r.protection_key, Some(1));
}

#[test]
fn unknown_fields_are_kept() {
    // A future kernel adds lines: they are kept verbatim, in order, and the
    // known fields around them parse as before.
    let c = &CASES[0];
    let text = String::from_utf8(read(c, "smaps")).unwrap();
    let future = text
        .replace(
            "Locked:                0 kB\n",
            "Locked:                0 kB\nPss_Future:           12 kB\nMystery_Flags:\tab cd\n",
        )
        .replace("VmFlags:", "Zeta:  \nVmFlags:");
    let plain = smaps::parse(text.as_bytes()).unwrap();
    let got = smaps::parse(future.as_bytes()).unwrap();
    assert_eq!(got.len(), plain.len());
    for (g, p) in got.iter().zip(&plain) {
        let names: Vec<(&str, &str)> = g.unknown.iter().map(|u| (&*u.name, &*u.value)).collect();
        assert_eq!(
            names,
            [
                ("Pss_Future", "12 kB"),
                ("Mystery_Flags", "ab cd"),
                ("Zeta", "")
            ]
        );
        let mut g = g.clone();
        g.unknown.clear();
        assert_eq!(&g, p);
    }
    // And a collected region keeps them too.
    let r = vmmap_core::Region::from_mapping(got[0].clone());
    assert_eq!(r.unknown_fields.len(), 3);
}

#[test]
fn any_chunking_of_a_fixture_gives_the_same_mappings() {
    for c in CASES {
        let text = read(c, "smaps");
        let whole = smaps::parse(&text).unwrap();
        for size in [1, 2, 5, 13, 64, 4095, 4096, 1 << 18] {
            let mut out = Vec::new();
            let mut p = SmapsParser::new();
            for chunk in text.chunks(size) {
                p.feed(chunk, &mut out).unwrap();
            }
            p.finish(&mut out).unwrap();
            assert_eq!(out, whole, "{} chunk size {size}", c.dir);
        }
    }
}

#[test]
fn maps_has_the_same_headers_and_no_fields() {
    for c in CASES {
        let from_smaps = smaps_of(c);
        let from_maps = smaps::parse(&read(c, "maps")).unwrap();
        assert_eq!(from_maps.len(), from_smaps.len(), "{}", c.dir);
        for (a, b) in from_maps.iter().zip(&from_smaps) {
            assert_eq!(
                (
                    a.start,
                    a.end,
                    a.perms,
                    a.offset,
                    a.dev_major,
                    a.dev_minor,
                    a.inode,
                    &a.path
                ),
                (
                    b.start,
                    b.end,
                    b.perms,
                    b.offset,
                    b.dev_major,
                    b.dev_minor,
                    b.inode,
                    &b.path
                ),
                "{}",
                c.dir
            );
            assert_eq!(a.fields, SmapsFields::default());
            assert!(a.vm_flags.is_empty());
        }
    }
    // The kernel without PROC_PAGE_MONITOR still has maps.
    let nopm = root("no-page-monitor").join("61/maps");
    let m = smaps::parse(&std::fs::read(nopm).unwrap()).unwrap();
    assert_eq!(m.len(), 8);
    assert_eq!(&*m[0].path, "/bin/busybox");
}

#[test]
fn rollup_fields_per_kernel_and_sums() {
    for c in CASES {
        let p = root(c.dir).join(c.pid.to_string()).join("smaps_rollup");
        assert_eq!(p.exists(), c.rollup, "{}: smaps_rollup (4.14+)", c.dir);
        if !c.rollup {
            continue;
        }
        let r = rollup_of(c);
        let maps = smaps_of(c);
        let s = sum(&maps);
        // Size and the page sizes are per VMA; the Pss split is rollup-only.
        for &f in VMA_FIELDS {
            let expect = !c.missing.contains(&f)
                && !matches!(f, Field::Size | Field::KernelPageSize | Field::MmuPageSize);
            assert_eq!(r.has(f), expect, "{}: rollup {f:?}", c.dir);
        }
        for f in ROLLUP_ONLY {
            assert_eq!(r.has(f), c.pss_split, "{}: rollup {f:?}", c.dir);
        }
        // The kernel sums exact page counts, so everything but the
        // proportional figures is the plain sum of the smaps lines.
        for &f in VMA_FIELDS {
            if !r.has(f) || matches!(f, Field::Pss | Field::PssDirty | Field::SwapPss) {
                continue;
            }
            assert_eq!(r.get(f), s.get(f), "{}: rollup {f:?} = sum", c.dir);
        }
        // PSS is accumulated with fractional pages and truncated once in
        // the rollup but once per VMA in smaps: the sum of smaps is at most
        // the rollup, and less than one kB per VMA below it.
        for f in [Field::Pss, Field::PssDirty, Field::SwapPss] {
            let (Some(rv), Some(sv)) = (r.get(f), s.get(f)) else {
                continue;
            };
            assert!(
                sv <= rv && rv < sv + maps.len() as u64 * KIB,
                "{}: {f:?} rollup {rv} vs sum {sv}",
                c.dir
            );
        }
        if c.pss_split {
            let parts =
                r.bytes(Field::PssAnon) + r.bytes(Field::PssFile) + r.bytes(Field::PssShmem);
            let pss = r.bytes(Field::Pss);
            assert!(
                parts <= pss && pss < parts + 3 * KIB,
                "{}: Pss split",
                c.dir
            );
        }
    }
}

#[test]
fn status_stat_syscall_cmdline_mountinfo() {
    for c in CASES {
        let maps = smaps_of(c);
        let s = sum(&maps);

        let st = status::parse(&read(c, "status")).unwrap();
        assert_eq!(
            st.number("Pid").map(|p| p as u32),
            Some(c.pid),
            "{}: Pid",
            c.dir
        );
        assert!(st.bytes("VmPTE").is_some(), "{}: VmPTE", c.dir);
        assert!(st.uids().is_some(), "{}: Uid", c.dir);
        // The kernel's RSS counter agrees with the smaps sum.
        assert_eq!(st.bytes("VmRSS"), s.get(Field::Rss), "{}: VmRSS", c.dir);
        assert_eq!(st.number("Threads"), Some(c.threads as u64), "{}", c.dir);

        let sp = stat::parse(&read(c, "stat")).unwrap();
        assert_eq!(Some(sp.comm.as_str()), st.name(), "{}: comm", c.dir);
        assert!(!sp.is_kernel_thread(), "{}", c.dir);
        assert!(sp.start_time > 0);

        let args = cmdline::parse(&read(c, "cmdline"));
        assert!(!args.is_empty(), "{}: cmdline", c.dir);

        let mounts = mountinfo::parse(&read(c, "mountinfo"));
        let root_fs = mounts.iter().find(|m| m.mount_point == "/").unwrap();
        assert!(
            ["ext4", "xfs"].contains(&root_fs.fs_type.as_str()),
            "{}: / is {}",
            c.dir,
            root_fs.fs_type
        );

        let task = root(c.dir).join(c.pid.to_string()).join("task");
        let mut tids: Vec<u32> = std::fs::read_dir(&task)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        tids.sort_unstable();
        assert_eq!(tids.len(), c.threads, "{}: task/", c.dir);
        for tid in tids {
            let sc = syscall::parse(&read(c, &format!("task/{tid}/syscall"))).unwrap();
            if let Some(sp) = sc.sp() {
                assert!(
                    maps.iter().any(|m| m.start <= sp && sp < m.end),
                    "{}: thread {tid} sp {sp:#x} in no mapping",
                    c.dir
                );
            } else {
                assert_eq!(sc, Syscall::Running);
            }
        }
    }
    // 4.19: the tmpfs and hugetlbfs devices of the shared mappings are in
    // mountinfo, in decimal where maps prints hex.
    let c = case("kernel-4.19");
    let mounts = mountinfo::parse(&read(c, "mountinfo"));
    let fs = |ma: u32, mi: u32| {
        mounts
            .iter()
            .find(|m| (m.major, m.minor) == (ma, mi))
            .map(|m| m.fs_type.as_str())
    };
    assert_eq!(fs(0, 0x17), Some("tmpfs"));
    assert_eq!(fs(0, 0x0f), Some("hugetlbfs"));
}

#[test]
fn snapshot_of_each_kernel() {
    for c in CASES {
        let snap = take(c);
        let maps = smaps_of(c);
        let at = c.dir;

        assert_eq!(snap.process.pid, c.pid);
        assert_eq!(snap.kernel.release, c.release, "{at}");
        assert_eq!(snap.kernel.mmap_min_addr, c.mmap_min_addr, "{at}");
        let missing: Vec<&str> = c.missing.iter().map(|f| f.kernel_name()).collect();
        assert_eq!(snap.kernel.missing_fields, missing, "{at}: missing_fields");
        assert_eq!(snap.rollup.is_some(), c.rollup, "{at}: rollup");
        assert_eq!(snap.process.threads.len(), c.threads, "{at}: threads");

        // Every VMA is in the snapshot once, in order, figures untouched.
        let vmas: Vec<_> = snap.vmas().collect();
        assert_eq!(vmas.len(), maps.len(), "{at}: VMAs");
        for (r, m) in vmas.iter().zip(&maps) {
            assert_eq!((r.start, r.end), (m.start, m.end), "{at}");
            assert_eq!(r.fields, m.fields, "{at} {:x}", m.start);
        }
        assert!(snap.regions.windows(2).all(|w| w[0].end <= w[1].start));

        let summary = Summary::of(&snap);
        let total = &summary.total.figures;
        for col in Column::ALL {
            let gone = needs_missing(col, c.missing);
            assert_eq!(
                total.get(col).is_none(),
                gone,
                "{at}: Total {col:?} availability"
            );
            for row in &summary.rows {
                if row.memory_type == Some(MemoryType::PageTable) {
                    continue;
                }
                assert_eq!(
                    row.figures.get(col).is_none(),
                    gone,
                    "{at}: {:?} {col:?}",
                    row.memory_type
                );
            }
            for r in &snap.regions {
                assert_eq!(
                    Figures::of_region(r).get(col).is_none(),
                    gone,
                    "{at}: region {:x} {col:?}",
                    r.start
                );
            }
        }

        // The columns against the kernel's own totals (smaps_rollup), or
        // against the smaps sums on kernels before 4.14.
        let k = snap.rollup.unwrap_or_else(|| sum(&maps));
        let s = sum(&maps);
        let f = |field| k.bytes(field);
        let exact = [
            (Column::TotalWs, f(Field::Rss)),
            (Column::PrivateWs, f(Field::Anonymous)),
            (Column::ShareableWs, f(Field::Rss) - f(Field::Anonymous)),
            (
                Column::SharedWs,
                f(Field::SharedClean) + f(Field::SharedDirty),
            ),
            (Column::LockedWs, f(Field::Locked)),
            (Column::Swap, f(Field::Swap)),
            (
                Column::Dirty,
                f(Field::PrivateDirty) + f(Field::SharedDirty),
            ),
            (Column::Uss, f(Field::PrivateClean) + f(Field::PrivateDirty)),
            (Column::Anonymous, f(Field::Anonymous)),
            (Column::Thp, f(Field::AnonHugePages)),
            (Column::Ksm, f(Field::Ksm)),
            (Column::LazyFree, f(Field::LazyFree)),
            (Column::Referenced, f(Field::Referenced)),
            (
                Column::Hugetlb,
                f(Field::SharedHugetlb) + f(Field::PrivateHugetlb),
            ),
        ];
        for (col, want) in exact {
            if needs_missing(col, c.missing) {
                continue;
            }
            assert_eq!(total.get(col), Some(want), "{at}: Total {col:?}");
        }
        for (col, field) in [
            (Column::Pss, Field::Pss),
            (Column::PssDirty, Field::PssDirty),
            (Column::SwapPss, Field::SwapPss),
        ] {
            let Some(got) = total.get(col) else { continue };
            assert_eq!(Some(got), s.get(field), "{at}: {col:?} is the smaps sum");
            let want = f(field);
            assert!(
                got <= want && want < got + maps.len() as u64 * KIB,
                "{at}: {col:?} {got} vs kernel {want}"
            );
        }
        // Total WS splits into Private WS and Shareable WS.
        assert_eq!(
            total.value(Column::TotalWs),
            total.value(Column::PrivateWs) + total.value(Column::ShareableWs),
            "{at}"
        );
        // Size counts every VMA plus the page tables (VmPTE).
        let pte = snap.page_table_bytes().unwrap();
        let vma_bytes: u64 = maps.iter().map(Mapping::size).sum();
        assert_eq!(total.get(Column::Size), Some(vma_bytes + pte), "{at}: Size");
        let committed: u64 = maps
            .iter()
            .filter(|m| &m.perms[..3] != b"---")
            .map(Mapping::size)
            .sum();
        assert_eq!(
            total.get(Column::Committed),
            Some(committed + pte),
            "{at}: Committed"
        );
        // Private: anonymous + swap of private VMAs, anonymous of shared.
        let private: u64 = maps
            .iter()
            .map(|m| {
                let anon = m.fields.bytes(Field::Anonymous);
                if m.perms[3] == b's' {
                    anon
                } else {
                    anon + m.fields.bytes(Field::Swap)
                }
            })
            .sum();
        assert_eq!(
            total.get(Column::Private),
            Some(private + pte),
            "{at}: Private"
        );
        assert_eq!(
            summary.row(MemoryType::PageTable).figures.get(Column::Size),
            Some(pte)
        );
    }
}

#[test]
fn snapshot_finds_thread_stacks_and_shared_memory() {
    // 4.19: the worker's stack is found from its stack pointer in
    // task/2983/syscall and takes its guard page along.
    let snap = take(case("kernel-4.19"));
    let stack = snap.region_at(0x7f2cbe8b2e68).unwrap();
    assert_eq!(stack.memory_type, MemoryType::Stack);
    assert_eq!(stack.tid, Some(2983));
    assert_eq!(
        stack.start, 0x7f2cbe0b3000,
        "the guard page joins the stack"
    );
    for path in [
        "/dev/shm/shm-worker.ring",
        "/SYSV00001e61 (deleted)",
        "/dev/zero (deleted)",
    ] {
        let r = snap.regions.iter().find(|r| &*r.path == path).unwrap();
        assert_eq!(r.memory_type, MemoryType::Shareable, "{path}");
    }
    // 4.9: the only thread is running and cannot be interrupted in a
    // captured tree: a warning, and the kernel-named [stack] stays Stack.
    let snap = take(case("kernel-4.9-pkeys"));
    assert_eq!(snap.process.threads[0].stack_pointer, None);
    assert!(
        snap.warnings
            .iter()
            .any(|w| w.contains("running thread not placed")),
        "{:?}",
        snap.warnings
    );
    let main = snap.regions.iter().find(|r| &*r.path == "[stack]").unwrap();
    assert_eq!(main.memory_type, MemoryType::Stack);
}

#[test]
fn kernel_thread_is_refused() {
    let stat_text = std::fs::read(root("kernel-6.18").join("2/stat")).unwrap();
    let st = stat::parse(&stat_text).unwrap();
    assert!(st.flags & 0x0020_0000 != 0, "PF_KTHREAD in field 9");
    assert!(st.is_kernel_thread());
    match collect::snapshot(2, &Options::default().proc_root(root("kernel-6.18"))) {
        Err(Error::KernelThread { pid, name }) => {
            assert_eq!((pid, name.as_str()), (2, "kthreadd"));
        }
        other => panic!("expected KernelThread, got {other:?}"),
    }
}

#[test]
fn missing_smaps_is_unsupported() {
    let dir = root("no-page-monitor");
    assert!(dir.join("61/maps").exists() && !dir.join("61/smaps").exists());
    match collect::snapshot(61, &Options::default().proc_root(&dir)) {
        Err(Error::Unsupported { what, hint }) => {
            assert!(what.contains("smaps"), "{what}");
            assert!(hint.contains("CONFIG_PROC_PAGE_MONITOR"), "{hint}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn absent_pid_is_no_such_process() {
    match collect::snapshot(4_000_000, &Options::default().proc_root(root("kernel-5.4"))) {
        Err(Error::NoSuchProcess { pid }) => assert_eq!(pid, 4_000_000),
        other => panic!("expected NoSuchProcess, got {other:?}"),
    }
}
