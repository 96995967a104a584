//! Link options of the `vmmap` binary.
//!
//! `vmmap PID` is a short-lived process, so its start-up counts: the
//! binary carries about 25,000 relative relocations (vtables, panic
//! locations, static tables), which as RELA entries are 600 KB that the
//! dynamic loader reads and applies at every start. Packed (`DT_RELR`,
//! GNU ld 2.38+ with glibc 2.36+, or lld) they are a few KB, and a
//! snapshot of a small process starts about 0.1 ms sooner. The binary
//! stays position-independent (ASLR). A linker without the option warns
//! and ignores it.
//!
//! GCC's unwinder is linked in from its static copy (`libgcc_eh.a`, as
//! the agent does), so that the linker (`--as-needed`) drops
//! `libgcc_s.so.1`: loading that library costs a start a file to map and
//! relocate, and its constructor asks the CPU for its features with a
//! dozen CPUID instructions, each of which traps under a hypervisor
//! (7 µs each here). std's panics and backtraces unwind the same way.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        println!("cargo:rustc-link-lib=static:+whole-archive=gcc_eh");
    }
}
