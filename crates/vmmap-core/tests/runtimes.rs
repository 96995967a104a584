//! The runtime rules against smaps captured from real processes
//! (`tests/fixtures/runtimes/`, see its README), with the memory they read
//! (hsperfdata, Go's build info) served from captured bytes.

use std::path::{Path, PathBuf};

use vmmap_core::classify::{classify, Context, FileProbe, Inspector};
use vmmap_core::elf::ElfInfo;
use vmmap_core::model::{Confidence, MemoryType, Region};
use vmmap_core::proc::smaps;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runtimes")
        .join(name)
}

/// Files named like shared objects or listed as executables are ELF; target
/// memory is the captured bytes at their addresses, nothing else.
struct Captured {
    exes: Vec<&'static str>,
    memory: Vec<(u64, Vec<u8>)>,
}

impl Inspector for Captured {
    fn probe_file(&mut self, r: &Region) -> FileProbe {
        let name = r.path.rsplit('/').next().unwrap_or_default();
        if name.ends_with(".so") || name.contains(".so.") || self.exes.contains(&&*r.path) {
            FileProbe::Elf(ElfInfo {
                class: 64,
                little_endian: true,
                machine: 62,
                file_type: 3,
                loads: Vec::new(),
            })
        } else {
            FileProbe::NotElf
        }
    }
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.memory.iter().any(|(base, bytes)| {
            let Some(o) = addr.checked_sub(*base).map(|o| o as usize) else {
                return false;
            };
            match bytes.get(o..o + buf.len()) {
                Some(src) => {
                    buf.copy_from_slice(src);
                    true
                }
                None => false,
            }
        })
    }
    fn fs_type(&self, _: u32, _: u32) -> Option<&str> {
        None
    }
}

fn classified(smaps_file: &str, mut inspector: Captured) -> Vec<Region> {
    let text = std::fs::read(fixture(smaps_file)).expect("fixture");
    let maps = smaps::parse(&text).expect("captured smaps parse");
    let ctx = Context {
        pid: 1,
        pointer_width: 8,
        page_size: 4096,
        threads: &[],
    };
    classify(maps, &ctx, &mut inspector).0
}

fn find<'a>(regions: &'a [Region], prefix: &str) -> Vec<&'a Region> {
    regions
        .iter()
        .filter(|r| r.details.starts_with(prefix))
        .collect()
}

const MB: u64 = 1 << 20;

#[test]
fn jdk17_g1_from_its_smaps_and_hsperfdata() {
    let perf = std::fs::read(fixture("java-17-g1.hsperfdata")).unwrap();
    let regions = classified(
        "java-17-g1.smaps",
        Captured {
            exes: vec!["/usr/lib/jvm/java-17-openjdk-amd64/bin/java"],
            memory: vec![(0x7efe_be41_f000, perf)],
        },
    );
    let heap = find(&regions, "Java heap (GarbageFirst, max 256 MiB)");
    assert_eq!(heap.len(), 1, "{:#?}", find(&regions, "Java"));
    assert_eq!((heap[0].start, heap[0].end), (0xf000_0000, 0x1_0000_0000));
    assert_eq!(heap[0].memory_type, MemoryType::ManagedHeap);
    assert_eq!(heap[0].confidence, Confidence::High);
    assert!(
        heap[0]
            .sub_blocks
            .iter()
            .any(|s| s.details.starts_with("archived heap objects")),
        "the CDS heap regions inside the reservation"
    );
    let class = find(&regions, "compressed class space");
    assert_eq!(
        class.iter().map(|r| r.size()).collect::<Vec<_>>(),
        [1024 * MB]
    );
    let meta = find(&regions, "metaspace");
    assert_eq!(meta.iter().map(|r| r.size()).collect::<Vec<_>>(), [64 * MB]);
    let code = find(&regions, "code cache");
    assert_eq!(
        code.iter().map(|r| r.size()).collect::<Vec<_>>(),
        [240 * MB]
    );
    assert_eq!(
        find(&regions, "JVM performance counters").len(),
        1,
        "the hsperfdata mapping is named"
    );
}

#[test]
fn go_119_arenas_from_its_smaps_and_buildinfo() {
    let info = std::fs::read(fixture("go-1.19.buildinfo")).unwrap();
    let regions = classified(
        "go-1.19.smaps",
        Captured {
            exes: vec!["/tmp/rt/gohold/gohold"],
            memory: vec![(0x51_1000, info)],
        },
    );
    let arenas = find(&regions, "Go heap arenas (2 x 64 MiB");
    assert_eq!(arenas.len(), 1);
    assert_eq!(arenas[0].start, 0xc0_0000_0000);
    assert!(
        arenas[0].details.ends_with("go1.19.8)"),
        "{}",
        arenas[0].details
    );
    let rest: Vec<_> = regions
        .iter()
        .filter(|r| r.memory_type == MemoryType::PrivateData)
        .collect();
    assert!(
        rest.is_empty(),
        "a Go program without libc leaves no Private Data: {rest:#?}"
    );
}

#[test]
fn node_20_pages_from_its_smaps() {
    let regions = classified(
        "node-20.smaps",
        Captured {
            exes: vec!["/usr/bin/node"],
            memory: Vec::new(),
        },
    );
    let pages = find(&regions, "V8 heap page");
    assert!(pages.len() >= 40, "{} pages", pages.len());
    assert!(pages
        .iter()
        .all(|p| p.size() == 256 << 10 && p.start < 1 << 46));
    assert_eq!(find(&regions, "V8 code range (512 MiB)").len(), 1);
    // The 8 MiB thread stacks near 0x7f… stay untouched here (no stack
    // pointers in this capture), whatever their alignment.
    assert!(regions
        .iter()
        .filter(|r| r.size() == 8 * MB && r.start >= 1 << 46)
        .all(|r| r.memory_type == MemoryType::PrivateData));
}

/// Files written before regions had a confidence load, as certain.
#[test]
fn regions_without_a_confidence_load_as_certain() {
    let r = Region {
        confidence: Confidence::Low,
        ..Region::default()
    };
    let mut v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["confidence"], "low");
    v.as_object_mut().unwrap().remove("confidence");
    let old = rmp_serde::to_vec_named(&v).unwrap();
    let back: Region = rmp_serde::from_slice(&old).unwrap();
    assert_eq!(back.confidence, Confidence::Certain);
    let new = rmp_serde::to_vec_named(&r).unwrap();
    let back: Region = rmp_serde::from_slice(&new).unwrap();
    assert_eq!(back.confidence, Confidence::Low);
}
