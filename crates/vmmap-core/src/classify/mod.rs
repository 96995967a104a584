//! Classification of kernel mappings into VMMap's memory types.
//!
//! Classification needs a few facts that only the live system has: the ELF
//! header of a mapped file, a glibc arena header in the target's memory,
//! the filesystem type behind a device. It asks for them through the
//! [`Inspector`] trait, so that the rules here stay free of I/O and are
//! tested with a fake inspector.
//!
//! The passes, in order:
//! 1. each mapping on its own, by name, device and sharing ([`basic`]);
//! 2. ELF objects grouped into images with their `.bss` ([`image`]);
//! 3. glibc arenas confirmed from their `heap_info` ([`heap`]);
//! 4. thread stacks found from stack pointers ([`stack`]).

mod basic;
mod heap;
mod image;
mod stack;

use crate::elf::ElfInfo;
use crate::model::{Region, ThreadInfo};
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
    /// The filesystem type of a device, from the target's mountinfo.
    fn fs_type(&self, major: u32, minor: u32) -> Option<&str>;
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
    let mut warnings = Vec::new();
    let mut regions: Vec<Region> = mappings.into_iter().map(Region::from_mapping).collect();
    let probes = basic::classify_each(&mut regions, ctx, inspector, &mut warnings);
    let regions = image::group_images(regions, &probes);
    let regions = heap::find_arenas(regions, ctx, inspector);
    let regions = stack::find_stacks(regions, ctx, &mut warnings);
    (regions, warnings)
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
    pub struct FakeInspector {
        pub files: HashMap<String, FileProbe>,
        pub memory: Vec<(u64, Vec<u8>)>,
        pub fs: HashMap<(u32, u32), String>,
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
    }
}
