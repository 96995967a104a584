//! Property tests: random smaps text parses back exactly however it is cut
//! into chunks; the figures of the regions add up to the Summary; and no
//! input of any kind makes a parser panic.

use std::borrow::Cow;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use vmmap_core::classify::{self, Context, FileProbe, Inspector};
use vmmap_core::elf::{self, ElfInfo};
use vmmap_core::model::{KernelInfo, ProcessInfo, StackPointerSource, ThreadInfo};
use vmmap_core::proc::smaps::{self, Field, Mapping, SmapsParser, UnknownField};
use vmmap_core::proc::status::Status;
use vmmap_core::proc::{cmdline, mountinfo, rollup, stat, status, syscall, ParseError};
use vmmap_core::{Column, Figures, MemoryType, Region, Snapshot, Summary};

/// The per-VMA smaps fields (everything but the rollup-only Pss split).
fn vma_fields() -> Vec<Field> {
    Field::PER_VMA.to_vec()
}

/// Names the parser treats specially besides the kB fields.
const SPECIAL: [&str; 3] = ["VmFlags", "THPeligible", "ProtectionKey"];

const VM_FLAGS: [&str; 24] = [
    "rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf", "lo", "io", "sr", "rr", "dc", "de",
    "ac", "nr", "ht", "sd", "hg", "nh", "mg", "dd",
];

/// One generated VMA, with everything needed both to print it and to say
/// what the parser must give back.
#[derive(Clone, Debug)]
struct Gen {
    start: u64,
    end: u64,
    perms: [u8; 4],
    offset: u64,
    major: u32,
    minor: u32,
    inode: u64,
    path: String,
    /// Fields in print order, values in kB.
    fields: Vec<(Field, u64)>,
    thp: Option<bool>,
    pkey: Option<u32>,
    vm_flags: Option<String>,
    unknown: Vec<(String, String)>,
    /// How the lines are laid out: kernel padding, other widths, no unit,
    /// trailing blanks. (The kernel pads kB figures with spaces only.)
    style: u8,
    /// Kernel-style padding of the path column, or a single space.
    pad_path: bool,
}

impl Gen {
    fn write(&self, out: &mut String) {
        let mut h = format!(
            "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {}",
            self.start,
            self.end,
            std::str::from_utf8(&self.perms).unwrap(),
            self.offset,
            self.major,
            self.minor,
            self.inode
        );
        if self.pad_path {
            while h.len() < 72 {
                h.push(' ');
            }
        }
        h.push(' ');
        h.push_str(&self.path);
        out.push_str(&h);
        out.push('\n');
        for &(f, kb) in &self.fields {
            let name = format!("{}:", f.kernel_name());
            match self.style % 5 {
                0 => writeln!(out, "{name:<16}{kb:>8} kB"),
                1 => writeln!(
                    out,
                    "{name}{:>w$} kB",
                    kb,
                    w = 1 + usize::from(self.style) % 24
                ),
                2 => writeln!(out, "{name} {kb} kB"),
                3 => writeln!(out, "{name}{kb}"),
                _ => writeln!(out, "{name}   {kb} kB  \t"),
            }
            .unwrap();
        }
        for (name, value) in &self.unknown {
            writeln!(out, "{name}:{value}").unwrap();
        }
        if let Some(t) = self.thp {
            if self.style % 2 == 0 {
                writeln!(out, "THPeligible:    {:>8}", u8::from(t)).unwrap();
            } else {
                writeln!(out, "THPeligible:\t\t{}", u8::from(t)).unwrap();
            }
        }
        if let Some(k) = self.pkey {
            writeln!(out, "ProtectionKey:  {k:>8}").unwrap();
        }
        if let Some(v) = &self.vm_flags {
            writeln!(out, "VmFlags: {v} ").unwrap();
        }
    }

    /// What the parser must return for this VMA.
    fn expected(&self) -> Mapping {
        let mut m = Mapping {
            start: self.start,
            end: self.end,
            perms: self.perms,
            offset: self.offset,
            dev_major: self.major,
            dev_minor: self.minor,
            inode: self.inode,
            path: self.path.as_str().into(),
            thp_eligible: self.thp,
            protection_key: self.pkey,
            vm_flags: self.vm_flags.as_deref().unwrap_or("").trim().into(),
            unknown: self
                .unknown
                .iter()
                .map(|(n, v)| UnknownField {
                    name: n.as_str().into(),
                    value: v.trim().into(),
                })
                .collect(),
            ..Mapping::default()
        };
        for &(f, kb) in &self.fields {
            m.fields.set(f, kb * 1024);
        }
        m
    }

    fn kb(&self, f: Field) -> Option<u64> {
        self.fields.iter().find(|(g, _)| *g == f).map(|&(_, v)| v)
    }
}

fn text_of(gens: &[Gen]) -> String {
    let mut s = String::new();
    for g in gens {
        g.write(&mut s);
    }
    s
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => select(vec![
            "[heap]",
            "[stack]",
            "[vdso]",
            "[vvar]",
            "[vsyscall]",
            "/dev/zero (deleted)",
            "/SYSV00000000 (deleted)",
            "/memfd:pool (deleted)",
            "[anon_shmem:ring]",
            "[anon:libc_malloc]",
            "[anon: Go: heap reservation]",
        ])
        .prop_map(String::from),
        2 => "/[a-z]{1,8}(/[a-z0-9._-]{1,12}){0,3}",
        1 => "/tmp/[a-z][a-z ()]{0,12}[a-z]( \\(deleted\\))?",
    ]
}

fn unknown_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            "[A-Z][A-Za-z_]{1,14}".prop_filter("a name the parser knows", |n| {
                Field::from_kernel_name(n.as_bytes()).is_none() && !SPECIAL.contains(&n.as_str())
            }),
            "[ -~]{0,20}",
        ),
        0..3,
    )
}

/// kB values: mostly realistic, sometimes huge but still exact in bytes.
fn kb_strategy(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..64u64,
        4 => 0..(1u64 << 21),
        1 => 0..=max,
    ]
}

/// A run of VMAs at increasing page-aligned addresses. `max_kb` bounds the
/// values: `u64::MAX / 1024` is the largest that survives `* 1024`.
fn gens_strategy(max_kb: u64, n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Gen>> {
    let one = (
        (0u64..64, 1u64..2048),
        (
            select(vec![b'r', b'-']),
            select(vec![b'w', b'-']),
            select(vec![b'x', b'-']),
            select(vec![b'p', b's']),
        ),
        (0u64..1 << 36, any::<u16>(), any::<u8>(), 0u64..1 << 40),
        path_strategy(),
        subsequence(vma_fields(), 0..=22)
            .prop_shuffle()
            .prop_flat_map(move |fs| {
                let n = fs.len();
                (Just(fs), proptest::collection::vec(kb_strategy(max_kb), n))
            }),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(0u32..16),
            proptest::option::of(subsequence(VM_FLAGS.to_vec(), 0..8)),
            unknown_strategy(),
            any::<u8>(),
            any::<bool>(),
        ),
    );
    proptest::collection::vec(one, n).prop_map(|raw| {
        let mut addr = 0x10_0000u64;
        let mut out = Vec::with_capacity(raw.len());
        for (
            (gap, pages),
            (r, w, x, s),
            (offset_pages, major, minor, inode),
            path,
            (fields, values),
            (thp, pkey, flags, unknown, style, pad_path),
        ) in raw
        {
            let start = addr + gap * 4096;
            let end = start + pages * 4096;
            addr = end;
            let mut fields: Vec<(Field, u64)> = fields.into_iter().zip(values).collect();
            // Keep the one invariant the figures rely on: Anonymous <= Rss.
            let rss = fields.iter().find(|(f, _)| *f == Field::Rss).map(|f| f.1);
            if let Some(rss) = rss {
                for (f, v) in &mut fields {
                    if *f == Field::Anonymous {
                        *v %= rss + 1;
                    }
                }
            }
            out.push(Gen {
                start,
                end,
                perms: [r, w, x, s],
                offset: offset_pages * 4096,
                major: u32::from(major),
                minor: u32::from(minor),
                inode: if path.starts_with('/') { inode } else { 0 },
                path,
                fields,
                thp,
                pkey,
                vm_flags: flags.map(|f| f.join(" ")),
                unknown,
                style,
                pad_path,
            });
        }
        out
    })
}

fn parse_in_chunks(text: &[u8], sizes: &[usize]) -> Result<Vec<Mapping>, ParseError> {
    let mut out = Vec::new();
    let mut p = SmapsParser::new();
    let mut rest = text;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        p.feed(&rest[..n], &mut out)?;
        rest = &rest[n..];
        i += 1;
    }
    p.finish(&mut out)?;
    Ok(out)
}

/// An inspector with made-up answers: files are ELF, not ELF or unreadable
/// by inode, memory is never readable.
struct Fake;

impl Inspector for Fake {
    fn probe_file(&mut self, m: &Region) -> FileProbe {
        match m.inode % 3 {
            0 => FileProbe::NotElf,
            1 => FileProbe::Unreadable("made up".into()),
            _ => FileProbe::Elf(ElfInfo {
                class: 64,
                little_endian: true,
                machine: 62,
                file_type: 3,
                loads: Vec::new(),
            }),
        }
    }
    fn read_memory(&mut self, _addr: u64, _buf: &mut [u8]) -> bool {
        false
    }
    fn fs_type(&self, major: u32, _minor: u32) -> Option<&str> {
        (major == 0).then_some("tmpfs")
    }
}

/// A snapshot of the generated VMAs, classified for real; one thread per
/// entry of `sps`, its stack pointer inside the VMA of that index.
fn snapshot_of(gens: &[Gen], sps: &[usize]) -> Snapshot {
    let maps = smaps::parse(text_of(gens).as_bytes()).unwrap();
    let threads: Vec<ThreadInfo> = sps
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let g = &gens[k % gens.len()];
            ThreadInfo {
                tid: 100 + i as u32,
                name: format!("t{i}"),
                stack_pointer: Some(g.end - 8),
                stack_pointer_source: StackPointerSource::Syscall,
                tcb: None,
            }
        })
        .collect();
    let ctx = Context {
        pid: 100,
        pointer_width: 8,
        page_size: 4096,
        threads: &threads,
    };
    let (regions, warnings) = classify::classify(maps, &ctx, &mut Fake);
    Snapshot {
        process: ProcessInfo {
            pid: 100,
            name: "prop".into(),
            cmdline: vec!["prop".into()],
            exe: None,
            uid: 0,
            user: None,
            elf: None,
            start_time_ticks: 1,
            threads,
            ns_pid: None,
            container: None,
        },
        taken_at_unix_ns: 0,
        kernel: KernelInfo {
            release: "test".into(),
            page_size: 4096,
            mmap_min_addr: 4096,
            user_address_limit: 1 << 47,
            missing_fields: Vec::new(),
            rollup_unread: false,
        },
        regions,
        rollup: None,
        // No VmPTE: the Page Table row adds nothing to the total.
        status: Status::default(),
        warnings,
        sharing: None,
    }
}

/// The columns that are sums over VMAs (Blocks and Largest are not).
fn summed_columns() -> impl Iterator<Item = Column> {
    Column::ALL.into_iter().filter(|c| !c.summary_only())
}

/// Total WS = Private WS + Shareable WS wherever the kernel gave Rss (a
/// VMA without it has no working set to split; every kernel prints it).
fn ws_adds_up(f: &Figures) -> Result<(), TestCaseError> {
    if f.get(Column::TotalWs).is_some() {
        prop_assert_eq!(
            f.value(Column::TotalWs),
            f.value(Column::PrivateWs) + f.value(Column::ShareableWs)
        );
    }
    if let (Some(t), Some(p), Some(s)) = (
        f.get(Column::TotalWs),
        f.get(Column::PrivateWs),
        f.get(Column::ShareableWs),
    ) {
        prop_assert_eq!(t, p + s);
    }
    Ok(())
}

proptest! {
    /// Whatever the chunk sizes, incremental parsing equals parsing whole.
    #[test]
    fn chunked_equals_whole(
        gens in gens_strategy(u64::MAX / 1024, 0..40),
        sizes in proptest::collection::vec(1usize..300, 1..16),
    ) {
        let text = text_of(&gens);
        let whole = smaps::parse(text.as_bytes()).unwrap();
        let chunked = parse_in_chunks(text.as_bytes(), &sizes).unwrap();
        prop_assert_eq!(chunked, whole);
    }

    /// Every header value and every field comes back exactly (kB * 1024),
    /// absent fields stay absent, unknown lines are kept in order.
    #[test]
    fn every_value_parses_back(gens in gens_strategy(u64::MAX / 1024, 0..40)) {
        let got = smaps::parse(text_of(&gens).as_bytes()).unwrap();
        prop_assert_eq!(got.len(), gens.len());
        for (m, g) in got.iter().zip(&gens) {
            prop_assert_eq!(m, &g.expected());
            for f in Field::ALL {
                prop_assert_eq!(m.fields.get(f), g.kb(f).map(|kb| kb * 1024), "{:?}", f);
            }
        }
    }

    /// A kB figure too large for bytes is refused on its line, neither
    /// wrapped nor saturated.
    #[test]
    fn huge_values_are_refused(kb in (u64::MAX / 1024 + 1)..=u64::MAX) {
        let t = format!("00400000-00401000 r--p 00000000 08:01 1 /x\nRss: {kb} kB\n");
        let e = smaps::parse(t.as_bytes()).unwrap_err();
        prop_assert_eq!(e.line, 2);
        prop_assert!(e.message.contains("64 bits"), "{}", e);
    }

    /// Summing the per-VMA figures over every region gives the Summary's
    /// Total, column by column, and Total WS = Private WS + Shareable WS
    /// for every VMA, every region and the total.
    #[test]
    fn regions_add_up_to_the_summary(
        gens in gens_strategy(1 << 40, 1..40),
        sps in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let snap = snapshot_of(&gens, &sps);
        // Classification regroups VMAs but never loses or reorders one.
        let starts: Vec<u64> = snap.vmas().map(|r| r.start).collect();
        let want: Vec<u64> = gens.iter().map(|g| g.start).collect();
        prop_assert_eq!(starts, want);

        let summary = Summary::of(&snap);
        let total = &summary.total.figures;
        let mut sum = Figures::default();
        let mut unavailable = 0u32;
        for r in &snap.regions {
            let fr = Figures::of_region(r);
            ws_adds_up(&fr)?;
            for vma in r.vmas() {
                let fv = Figures::of_vma(vma);
                ws_adds_up(&fv)?;
                sum.add(&fv);
                unavailable |= fv.unavailable;
            }
        }
        for c in summed_columns() {
            prop_assert_eq!(total.value(c), sum.value(c), "{:?}", c);
            prop_assert_eq!(total.get(c).is_none(), unavailable & (1 << c as u32) != 0, "{:?}", c);
        }
        prop_assert_eq!(total.unavailable, unavailable);
        prop_assert_eq!(total.value(Column::Blocks), snap.regions.len() as u64);
        ws_adds_up(total)?;
        // The type rows add up to the total as well (Free is not in it).
        let mut rows = Figures::default();
        for row in &summary.rows {
            if row.memory_type != Some(MemoryType::Free) {
                rows.add(&row.figures);
            }
        }
        for c in summed_columns() {
            prop_assert_eq!(rows.value(c), total.value(c), "{:?}", c);
        }
    }

    /// Random bytes never make a parser panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024), cut in any::<usize>()) {
        no_panic(&bytes, cut);
    }

    /// Neither does text that is almost right: valid smaps and other /proc
    /// text with random bytes overwritten, inserted or removed.
    #[test]
    fn mutated_text_never_panics(
        gens in gens_strategy(u64::MAX / 1024, 1..6),
        other in prop_oneof![
            Just(String::new()),
            "[0-9]{1,5} \\([ -~]{0,16}\\) [RSDZTX]( -?[0-9]{1,20}){0,60}",
            "(running|-1|[0-9]{1,4})( 0x[0-9a-f]{0,17}){0,10}",
            "([A-Za-z_]{1,12}:\t[ -~]{0,24}\n){0,12}",
            "([0-9]{1,3} [0-9]{1,3} [0-9]{1,4}:[0-9]{1,4} /[a-z]{0,6} /[a-z/]{0,12} [a-z,]{0,12}( [a-z]+:[0-9]+)? - [a-z]{2,8} [a-z/]{1,10} [a-z,]{0,10}\n){0,6}",
        ],
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..12),
        cut in any::<usize>(),
    ) {
        for base in [text_of(&gens).into_bytes(), other.into_bytes()] {
            let mut b = base;
            for &(at, byte, op) in &edits {
                let at = if b.is_empty() { 0 } else { at % (b.len() + 1) };
                match op {
                    0 if at < b.len() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            no_panic(&b, cut);
        }
    }

    /// Headers that pass the ELF magic check, with program header tables
    /// anywhere and of any size, never make the ELF reader panic or read
    /// past the bytes it was given.
    #[test]
    fn elf_headers_never_panic(
        class in 0u8..4,
        endian in 0u8..4,
        phoff in prop_oneof![0u64..256, any::<u64>()],
        phentsize in prop_oneof![Just(56u16), Just(32u16), any::<u16>()],
        phnum in prop_oneof![0u16..8, any::<u16>()],
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
        len in 0usize..1100,
    ) {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = class;
        b[5] = endian;
        b[32..40].copy_from_slice(&phoff.to_le_bytes());
        b[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
        b[54..56].copy_from_slice(&phentsize.to_le_bytes());
        b[56..58].copy_from_slice(&phnum.to_le_bytes());
        b[42..44].copy_from_slice(&phentsize.to_le_bytes());
        b[44..46].copy_from_slice(&phnum.to_le_bytes());
        b.extend_from_slice(&tail);
        b.truncate(len);
        if let Ok(e) = elf::parse(&b) {
            prop_assert!(e.loads.len() <= usize::from(phnum));
            prop_assert!(matches!(e.class, 32 | 64));
        }
    }

    /// Section headers read through offsets, as from a file: any table
    /// offset, entry size, count and name index, any bytes; never a panic,
    /// never a read longer than the table cap.
    #[test]
    fn elf_sections_never_panic(
        class in 1u8..3,
        shoff in prop_oneof![64u64..512, any::<u64>()],
        shentsize in prop_oneof![Just(64u16), Just(40u16), any::<u16>()],
        shnum in prop_oneof![0u16..12, any::<u16>()],
        shstrndx in prop_oneof![0u16..12, any::<u16>()],
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = class;
        b[5] = 1;
        b[40..48].copy_from_slice(&shoff.to_le_bytes());
        b[32..36].copy_from_slice(&(shoff as u32).to_le_bytes());
        for (at, v) in [(58, shentsize), (60, shnum), (62, shstrndx), (46, shentsize), (48, shnum), (50, shstrndx)] {
            b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&tail);
        let mut read = |off: u64, len: usize| -> Option<Vec<u8>> {
            assert!(len <= 4 << 20);
            let off = usize::try_from(off).ok()?;
            let end = off.checked_add(len)?.min(b.len());
            Some(b.get(off..end)?.to_vec())
        };
        if let Ok(secs) = elf::sections(&mut read) {
            prop_assert!(secs.len() < usize::from(shnum).max(1));
        }
    }
}

/// Runs every parser on `b`; the smaps parser also incrementally, cut in
/// two at `cut`, where it must agree with the whole parse.
fn no_panic(b: &[u8], cut: usize) {
    let whole = smaps::parse(b);
    let at = if b.is_empty() { 0 } else { cut % (b.len() + 1) };
    assert_eq!(parse_in_chunks(b, &[at.max(1), usize::MAX]), whole);
    let mut out = Vec::new();
    let mut p = SmapsParser::new();
    let split = p
        .feed(&b[..at], &mut out)
        .and_then(|()| p.feed(&b[at..], &mut out))
        .and_then(|()| p.finish(&mut out))
        .map(|()| out);
    assert_eq!(split, whole);
    let _ = rollup::parse(b);
    let _ = status::parse(b).map(|s| (s.name().map(str::len), s.uids(), s.bytes("VmPTE")));
    let _ = stat::parse(b).map(|s| s.is_kernel_thread());
    let _ = syscall::parse(b).map(syscall::Syscall::sp);
    let _ = cmdline::parse(b);
    let _ = mountinfo::parse(b);
    let _ = elf::parse(b).map(|e| (e.arch(), e.type_name()));
}

/// Figures of one VMA whose fields are as large as the parser can return
/// (`u64::MAX / 1024` kB). `Figures::of_vma` once added fields with `+`
/// and overflowed here (a panic in debug builds, a wrapped value in
/// release); found by this test, fixed by saturating.
#[test]
fn figures_of_vma_saturate_on_huge_fields() {
    let kb = u64::MAX / 1024;
    let mut t = String::from("00400000-00401000 rw-p 00000000 00:00 0 \n");
    for f in Field::PER_VMA {
        writeln!(t, "{}: {kb} kB", f.kernel_name()).unwrap();
    }
    let m = smaps::parse(t.as_bytes()).unwrap().remove(0);
    let r = Region::group(
        vec![Region::from_mapping(m)],
        MemoryType::PrivateData,
        String::new(),
        Cow::Borrowed(""),
    );
    let f = Figures::of_region(&r);
    assert_eq!(f.get(Column::Private), Some(u64::MAX));
    assert_eq!(f.get(Column::SharedWs), Some(u64::MAX));
}
