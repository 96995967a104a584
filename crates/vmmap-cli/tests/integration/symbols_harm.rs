//! Symbolising modules that another user can change: as root, `vmmap
//! trace` reads the files of the programs it traced, and their owner
//! chooses what those files say. Their link sections name files that the
//! symboliser opened by those names (a FIFO held it for ever, a device
//! would act on being opened), and their compressed sections declare
//! sizes it allocated (4 TiB aborted it; a stream that inflated beyond its
//! declared size took all it gave: here, more than the address space it
//! is given).

use std::ffi::OsStr;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::trace::{fixture, run_command, trace_path};
use crate::util::{output_within, require_tool, TempDir, VMMAP};

const NOBODY: u32 = 65534;

/// A directory of the test's, handed to the user nobody with
/// [`give_away`] once its files are made.
fn workdir(tag: &str) -> TempDir {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test gives files to another user: run it as root (CI does)"
    );
    let d = TempDir::new(&format!("symbols-{tag}"));
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Makes `dir` and everything in it nobody's.
fn give_away(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        chown(e.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
}

/// `tests/fixtures/trace/grab.c` built with debug information into `dir`.
fn build_grab(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(["-O1", "-g", "-o"])
        .arg(&out)
        .arg(fixture("grab.c"))
        .status()
        .expect("run cc");
    assert!(st.success(), "building grab.c failed");
    out
}

fn objcopy(dir: &Path, args: &[&OsStr]) {
    let st = Command::new(require_tool("objcopy", "binutils"))
        .current_dir(dir)
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "objcopy {args:?} failed");
}

/// [`build_grab`], its debug information then moved to `NAME.debug`
/// beside it, which its debug link names.
fn build_split_grab(dir: &Path, name: &str) {
    build_grab(dir, name);
    let debug = format!("{name}.debug");
    let link = format!("--add-gnu-debuglink={debug}");
    objcopy(
        dir,
        &["--only-keep-debug".as_ref(), name.as_ref(), debug.as_ref()],
    );
    objcopy(dir, &["--strip-debug".as_ref(), name.as_ref()]);
    objcopy(dir, &[link.as_ref(), name.as_ref()]);
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(r, 0, "mkfifo {p:?}");
}

/// Traces `prog` (as root) and returns the trace.
fn traced(prog: &Path) -> PathBuf {
    let out = trace_path("symbols");
    let o = run_command(&out, prog)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "vmmap run {prog:?}: {o:?}");
    assert_eq!(o.stdout, b"done\n");
    out
}

/// The address space `vmmap trace FILE calltree` runs in: several times
/// what it needs for these traces, half what the stream below inflates to.
/// (A peak resident size from `wait4` would not do: a child's counts the
/// test process's own peak, recorded when it exec'd.)
const ADDRESS_SPACE: u64 = 512 << 20;

/// `vmmap trace FILE calltree [ARGS]`, symbolising afresh, within 60 s
/// and [`ADDRESS_SPACE`]: its output and its exit code.
fn calltree(trace: &Path, args: &[&OsStr]) -> (String, Option<i32>) {
    let mut cmd = Command::new(VMMAP);
    cmd.arg("trace")
        .arg(trace)
        .args(["calltree", "--no-symbol-cache"])
        .args(args);
    // SAFETY: the closure makes one system call (async-signal-safe) in
    // the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output_within(&mut cmd, 60);
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (text, o.status.code())
}

#[test]
fn another_users_module_cannot_make_vmmap_open_what_its_links_name() {
    let d = workdir("links");
    let dir = d.path();
    // Its debug link names a file next to it: a FIFO.
    build_split_grab(dir, "beside");
    std::fs::remove_file(dir.join("beside.debug")).unwrap();
    mkfifo(&dir.join("beside.debug"));
    // Its debug link names a FIFO elsewhere by an absolute path (a device
    // would do as well), which a debug directory joined to it gives as is.
    build_grab(dir, "absolute");
    objcopy(dir, &["--strip-debug".as_ref(), "absolute".as_ref()]);
    let fifo = dir.join("elsewhere");
    mkfifo(&fifo);
    let mut link = fifo.to_str().unwrap().as_bytes().to_vec();
    link.push(0);
    link.resize(link.len().next_multiple_of(4) + 4, 0);
    std::fs::write(dir.join("link"), &link).unwrap();
    objcopy(
        dir,
        &[
            "--add-section".as_ref(),
            ".gnu_debuglink=link".as_ref(),
            "absolute".as_ref(),
        ],
    );
    // Its debug link names its real debug file, beside it.
    build_split_grab(dir, "split");
    give_away(dir);
    for name in ["beside", "absolute"] {
        let trace = traced(&dir.join(name));
        let (text, code) = calltree(&trace, &[]);
        assert_eq!(code, Some(0), "{name}: {text}");
        // The symbol table still names the function.
        assert!(text.contains("grab"), "{name}: {text}");
    }
    // vmmap follows a link itself, to a regular file with the link's
    // checksum: the lines are there.
    let trace = traced(&dir.join("split"));
    let (text, code) = calltree(&trace, &["--lines".as_ref()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("grab (trace/grab.c:"), "{text}");
}

/// `elf` (64-bit little-endian) with its `.debug_info` compressed: a
/// zlib compression header declaring `declared` bytes, then `stream`, at
/// the end of the file.
fn with_compressed_debug_info(elf: &[u8], declared: u64, stream: &[u8]) -> Vec<u8> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let shoff = u64_at(0x28) as usize;
    let (entsize, num, strndx) = (u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let names = u64_at(shoff + strndx * entsize + 24) as usize;
    let mut out = elf.to_vec();
    let at = out.len().next_multiple_of(8);
    out.resize(at, 0);
    out.extend_from_slice(&1u32.to_le_bytes()); // ELFCOMPRESS_ZLIB
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&declared.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(stream);
    let len = (out.len() - at) as u64;
    let h = (0..num)
        .map(|i| shoff + i * entsize)
        .find(|&h| elf[names + u32_at(h)..].starts_with(b".debug_info\0"))
        .expect("a .debug_info section");
    let flags = u64_at(h + 8) | 0x800; // SHF_COMPRESSED
    out[h + 8..h + 16].copy_from_slice(&flags.to_le_bytes());
    out[h + 24..h + 32].copy_from_slice(&(at as u64).to_le_bytes());
    out[h + 32..h + 40].copy_from_slice(&len.to_le_bytes());
    out
}

fn zlib(data: impl std::io::Read) -> Vec<u8> {
    let mut z = flate2::read::ZlibEncoder::new(data, flate2::Compression::fast());
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut z, &mut v).unwrap();
    v
}

#[test]
fn another_users_module_cannot_make_vmmap_allocate_what_it_declares() {
    let d = workdir("compressed");
    let dir = d.path();
    let plain = std::fs::read(build_grab(dir, "plain")).unwrap();
    // Declares 4 TiB: the allocation failed and aborted vmmap.
    let huge = with_compressed_debug_info(&plain, 1 << 42, &zlib(&b"tiny"[..]));
    // Declares 4 KiB, inflates to 1 GiB: all of it was read.
    let zeros = std::io::Read::take(std::io::repeat(0), 1 << 30);
    let bomb = with_compressed_debug_info(&plain, 4096, &zlib(zeros));
    for (name, bytes) in [("huge", &huge), ("bomb", &bomb)] {
        std::fs::write(dir.join(name), bytes).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    give_away(dir);
    for name in ["huge", "bomb"] {
        let trace = traced(&dir.join(name));
        let (text, code) = calltree(&trace, &[]);
        assert_eq!(code, Some(0), "{name}: {text}");
        assert!(text.contains("grab"), "{name}: {text}");
    }
}

#[test]
fn a_symbol_directory_others_can_write_is_not_searched_by_name() {
    let d = workdir("symdir");
    let dir = d.path();
    // root's program, in root's directory: its debug link is followed.
    build_split_grab(dir, "mine");
    std::fs::remove_file(dir.join("mine.debug")).unwrap();
    // A directory of debug files that anyone can write, given with
    // --symbols: someone put a FIFO there under the link's name.
    let shared = TempDir::new("symdir-shared");
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    mkfifo(&shared.path().join("mine.debug"));
    let trace = traced(&dir.join("mine"));
    let (text, code) = calltree(&trace, &["--symbols".as_ref(), shared.path().as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("grab"), "{text}");
}
