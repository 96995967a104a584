//! What a command-line target names: a process, a file, an address.

use std::path::Path;

use vmmap_core::collect;

use crate::Failure;

/// A PID, or the name of exactly one process.
pub(crate) fn resolve(target: &str, proc_root: &Path) -> Result<u32, Failure> {
    match target.parse::<u32>() {
        Ok(p) => Ok(p),
        Err(_) => Ok(collect::find_by_name(proc_root, target)?),
    }
}

/// Whether a command-line target names a file to read rather than a
/// process: anything but a directory, so that a device or FIFO is read
/// (and refused at its first bytes) instead of looked up as a name.
pub(crate) fn names_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| !m.is_dir())
}

/// An address as vmmap prints it (hex, `0x` optional).
pub(crate) fn parse_address(text: &str) -> Result<u64, Failure> {
    vmmap_core::lookup::parse_address(text).ok_or_else(|| {
        Failure::usage(format!(
            "{text:?} is not an address: give it in hex, as vmmap prints it (0x7f12ab340000)"
        ))
    })
}
