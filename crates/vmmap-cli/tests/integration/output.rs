//! Writing outputs (`-o`) without harm: devices and FIFOs are written in
//! place, symlinks planted beside the output or at it are not followed
//! where the kernel forbids it, and a replaced file keeps its mode and
//! owner. Every writer is checked through the real binary.

use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::util::*;

/// One command that writes a file: its arguments with `OUT` where the
/// output goes, the extension that picks the format, and a piece of text
/// its output always holds.
struct Writer {
    name: &'static str,
    ext: &'static str,
    args: Vec<String>,
    looks: &'static [u8],
    /// Whether `-o -` applies (a format picked by extension has none).
    stdout: bool,
}

/// A trace file of a small traced program, made once.
fn trace_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        use crate::trace::{build, fixture, run_traced};
        let src = fixture("calls.c");
        let prog = build("calls", &["cc", "-O0", "-g", src.to_str().unwrap()]);
        let (o, file) = run_traced(&[], &prog, &[]);
        assert!(
            o.status.success(),
            "vmmap run failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        file
    })
    .clone()
}

/// Every command that takes `-o`, on the live process `pid`.
fn writers(pid: u32) -> Vec<Writer> {
    let pid = pid.to_string();
    let trace = trace_file().to_str().unwrap().to_string();
    let w = |name, ext, args: &[&str], looks, stdout| Writer {
        name,
        ext,
        args: args.iter().map(|s| s.to_string()).collect(),
        looks,
        stdout,
    };
    vec![
        w(
            "json",
            "",
            &[&pid, "--json", "-o", "OUT"],
            b"\"schema\"",
            true,
        ),
        w(
            "csv",
            ".csv",
            &[&pid, "-o", "OUT"],
            b"depth,start,end",
            false,
        ),
        w("text", ".txt", &[&pid, "-o", "OUT"], b"Process:", false),
        w("native", ".vmmap", &[&pid, "-o", "OUT"], b"VMMAPSNP", false),
        w("mmp", ".mmp", &[&pid, "-o", "OUT"], b"<VMMap", false),
        w(
            "metrics",
            "",
            &["metrics", &pid, "-o", "OUT"],
            b"vmmap_size_bytes",
            true,
        ),
        w("map", ".svg", &["map", &pid, "-o", "OUT"], b"<svg", true),
        w(
            "report",
            ".html",
            &["report", &pid, "-o", "OUT"],
            b"<!DOCTYPE html>",
            true,
        ),
        w(
            "diff",
            ".json",
            &["diff", &pid, "--after", "10ms", "-o", "OUT"],
            b"vmmap.diff",
            false,
        ),
        w(
            "watch",
            "",
            &[
                "watch",
                &pid,
                "--interval",
                "50ms",
                "--count",
                "2",
                "-o",
                "OUT",
            ],
            b"VMMAPSNP",
            true,
        ),
        w(
            "flamegraph",
            "",
            &["trace", &trace, "flamegraph", "-o", "OUT"],
            b"<svg",
            true,
        ),
    ]
}

fn run_writer(w: &Writer, out: &Path, cwd: &Path) -> Output {
    let _g = starting_processes();
    let args: Vec<&std::ffi::OsStr> = w
        .args
        .iter()
        .map(|a| {
            if a == "OUT" {
                out.as_os_str()
            } else {
                a.as_ref()
            }
        })
        .collect();
    output_within(
        Command::new(VMMAP)
            .args(&args)
            .current_dir(cwd)
            .stdin(Stdio::null()),
        120,
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn mknod(path: &Path, kind: &str, major_minor: &[&str]) {
    let st = Command::new("mknod")
        .arg(path)
        .arg(kind)
        .args(major_minor)
        .status()
        .expect("run mknod");
    assert!(st.success(), "mknod {} failed", path.display());
}

fn rdev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_writer_writes_devices_in_place_and_fails_on_a_full_one() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("out-dev");
    for w in writers(fx.pid) {
        let null = dir.path().join(format!("null-{}{}", w.name, w.ext));
        mknod(&null, "c", &["1", "3"]);
        let o = run_writer(&w, &null, dir.path());
        assert!(
            o.status.success(),
            "{}: writing to a null device failed: {}",
            w.name,
            stderr(&o)
        );
        let m = fs::symlink_metadata(&null).unwrap();
        assert!(
            m.file_type().is_char_device() && m.rdev() == rdev(1, 3),
            "{}: the device node was replaced ({:?})",
            w.name,
            m.file_type()
        );

        let full = dir.path().join(format!("full-{}{}", w.name, w.ext));
        mknod(&full, "c", &["1", "7"]);
        let o = run_writer(&w, &full, dir.path());
        assert_eq!(
            o.status.code(),
            Some(10),
            "{}: writing to a full device must exit 10: {}",
            w.name,
            stderr(&o)
        );
        let e = stderr(&o);
        assert!(
            e.contains("cannot write")
                && e.contains(full.to_str().unwrap())
                && e.contains("No space left"),
            "{}: unclear message: {e}",
            w.name
        );
        let m = fs::symlink_metadata(&full).unwrap();
        assert!(
            m.file_type().is_char_device() && m.rdev() == rdev(1, 7),
            "{}: the device node was replaced",
            w.name
        );
        // Nothing left beside it.
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{}: temporaries left: {left:?}", w.name);
    }
}

#[test]
fn every_writer_writes_into_a_fifo_and_leaves_it_a_fifo() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("out-fifo");
    for w in writers(fx.pid) {
        let fifo = dir.path().join(format!("fifo-{}{}", w.name, w.ext));
        mknod(&fifo, "p", &[]);
        // Held open so the FIFO can be reached after a writer replaced
        // its name.
        let keep = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                fs::File::open(&fifo).unwrap().read_to_end(&mut v).unwrap();
                v
            })
        };
        let o = run_writer(&w, &fifo, dir.path());
        // A reader still waiting (the writer never opened the FIFO) gets
        // an end of file instead of blocking the test forever.
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(format!("/proc/self/fd/{}", keep.as_raw_fd()));
        let got = reader.join().unwrap();
        drop(keep);
        assert!(o.status.success(), "{}: {}", w.name, stderr(&o));
        assert!(
            fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(),
            "{}: the FIFO was replaced",
            w.name
        );
        assert!(
            contains(&got, w.looks),
            "{}: the reader got {} bytes without {:?}",
            w.name,
            got.len(),
            String::from_utf8_lossy(w.looks)
        );
    }
}

#[test]
fn planted_temporary_names_do_not_redirect_any_writer() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("out-plant");
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    for w in writers(fx.pid) {
        let name = format!("out-{}{}", w.name, w.ext);
        let out = dir.path().join(&name);
        // The name the writers used to create without O_EXCL.
        let planted = dir.path().join(format!(".{name}.vmmap-tmp"));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let o = run_writer(&w, &out, dir.path());
        assert!(o.status.success(), "{}: {}", w.name, stderr(&o));
        assert!(
            fs::read(&victim).unwrap() == b"precious\n",
            "{}: the victim was overwritten through the planted link",
            w.name
        );
        assert!(fs::symlink_metadata(&planted).unwrap().is_symlink());
        let m = fs::symlink_metadata(&out).unwrap();
        assert!(m.is_file(), "{}", w.name);
        assert!(contains(&fs::read(&out).unwrap(), w.looks), "{}", w.name);
    }
}

#[test]
fn every_writer_takes_dash_for_standard_output() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("out-dash");
    for w in writers(fx.pid).into_iter().filter(|w| w.stdout) {
        let o = run_writer(&w, Path::new("-"), dir.path());
        assert!(o.status.success(), "{}: {}", w.name, stderr(&o));
        assert!(
            contains(&o.stdout, w.looks),
            "{}: standard output has no {:?}",
            w.name,
            String::from_utf8_lossy(w.looks)
        );
        assert!(
            !dir.path().join("-").exists(),
            "{}: wrote a file named '-'",
            w.name
        );
    }
}

#[test]
fn writing_to_a_symlink_writes_the_file_it_points_to() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("out-link");
    let real = dir.path().join("real.json");
    fs::write(&real, "old\n").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("real.json", &link).unwrap();
    let pid = fx.pid.to_string();
    vmmap_ok(&[&pid, "--json", "-o", link.to_str().unwrap()]);
    let m = fs::symlink_metadata(&link).unwrap();
    assert!(m.is_symlink(), "the link was replaced");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("real.json"));
    let text = fs::read_to_string(&real).unwrap();
    assert!(text.contains("\"schema\""), "{text}");
    // Every writer, the growing recording included.
    for w in writers(fx.pid) {
        let real = dir.path().join(format!("real-{}{}", w.name, w.ext));
        fs::write(&real, "old\n").unwrap();
        let link = dir.path().join(format!("link-{}{}", w.name, w.ext));
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let o = run_writer(&w, &link, dir.path());
        assert!(o.status.success(), "{}: {}", w.name, stderr(&o));
        assert!(
            fs::symlink_metadata(&link).unwrap().is_symlink(),
            "{}: the link was replaced",
            w.name
        );
        assert!(
            contains(&fs::read(&real).unwrap(), w.looks),
            "{}: the file the link points to does not hold the output",
            w.name
        );
    }

    // A link to nothing is refused: following it by hand would bypass the
    // kernel's protection of planted links.
    let dangling = dir.path().join("dangling.json");
    std::os::unix::fs::symlink("nothing-here.json", &dangling).unwrap();
    let o = vmmap(&[&pid, "--json", "-o", dangling.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert!(fs::symlink_metadata(&dangling).unwrap().is_symlink());
    assert!(!dir.path().join("nothing-here.json").exists());
}

#[test]
fn a_replaced_file_keeps_its_mode_and_owner() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("out-owner");
    let file = dir.path().join("theirs.json");
    fs::write(&file, "old\n").unwrap();
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    vmmap_ok(&[&fx.pid.to_string(), "--json", "-o", file.to_str().unwrap()]);
    let m = fs::metadata(&file).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600, "mode changed");
    assert_eq!((m.uid(), m.gid()), (65534, 65534), "owner changed");
    assert!(fs::read_to_string(&file).unwrap().contains("\"schema\""));

    // A new file gets the usual 0666 less the umask (022 here).
    let new = dir.path().join("new.json");
    let o = output_within(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 022 && exec {VMMAP} {} --json -o {}",
                fx.pid,
                new.display()
            ))
            .stdin(Stdio::null()),
        60,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::metadata(&new).unwrap().mode() & 0o7777, 0o644);
}

/// Sets `fs.protected_symlinks` while held, restoring the old value.
struct ProtectedSymlinks(String);

impl ProtectedSymlinks {
    const PATH: &'static str = "/proc/sys/fs/protected_symlinks";

    fn set(v: &str) -> ProtectedSymlinks {
        let old = fs::read_to_string(Self::PATH).expect("read fs.protected_symlinks");
        fs::write(Self::PATH, v).expect("set fs.protected_symlinks");
        ProtectedSymlinks(old)
    }
}

impl Drop for ProtectedSymlinks {
    fn drop(&mut self) {
        let _ = fs::write(Self::PATH, self.0.trim());
    }
}

/// A link nobody (65534) makes at `link`, to `to`.
fn plant(to: &Path, link: &Path) {
    let st = Command::new(require_tool("setpriv", "util-linux"))
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(to)
        .arg(link)
        .status()
        .expect("run setpriv");
    assert!(st.success(), "nobody could not plant {}", link.display());
    assert_eq!(fs::symlink_metadata(link).unwrap().uid(), 65534);
}

/// Root never writes through a link another user planted in a sticky
/// world-writable directory, whether the kernel's fs.protected_symlinks
/// is on (Debian's default) or off (as on some systems, this test
/// machine among them, where root followed the link and overwrote the
/// file it named): every writer, `vmmap run -o`, and a planted link to a
/// directory on the way.
#[test]
fn root_does_not_follow_a_link_planted_in_a_sticky_directory() {
    static ONE: Mutex<()> = Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::start(false);
    // A private /tmp: world-writable and sticky, in a directory every user
    // can search.
    let sticky = std::env::temp_dir().join(format!("vmmap-sticky-{}", std::process::id()));
    let _ = fs::remove_dir_all(&sticky);
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let dir = TempDir::new("out-sticky");
    let victims = TempDir::new("out-victim");
    let victim = victims.path().join("root-owned");
    fs::write(&victim, "root's\n").unwrap();
    let link = |name: &str, ext: &str| sticky.join(format!("{name}{ext}"));
    let links: Vec<(Writer, PathBuf)> = writers(fx.pid)
        .into_iter()
        .map(|w| {
            let l = link(w.name, w.ext);
            plant(&victim, &l);
            (w, l)
        })
        .collect();
    let run_link = link("run", ".vmmap");
    plant(&victim, &run_link);
    let via_dir = sticky.join("dir");
    plant(dir.path(), &via_dir);
    let calls = crate::trace::build(
        "calls",
        &[
            "cc",
            "-O0",
            "-g",
            crate::trace::fixture("calls.c").to_str().unwrap(),
        ],
    );
    for setting in ["1", "0"] {
        let _protect = ProtectedSymlinks::set(setting);
        let mut runs: Vec<(String, Output)> = Vec::new();
        for (w, l) in &links {
            runs.push((w.name.to_string(), run_writer(w, l, dir.path())));
            let inside = via_dir.join(format!("new{}", w.ext));
            runs.push((
                format!("{} via a linked directory", w.name),
                run_writer(w, &inside, dir.path()),
            ));
        }
        for out in [run_link.clone(), via_dir.join("new.vmmap")] {
            let _g = starting_processes();
            let o = crate::trace::run_command(&out, &calls)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            runs.push((format!("run -o {}", out.display()), o));
        }
        for (name, o) in runs {
            let e = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(10),
                "protected_symlinks={setting}, {name}: root followed or replaced the link: {e}"
            );
            assert!(
                e.contains("protected_symlinks"),
                "{name}: unclear message: {e}"
            );
            assert_eq!(
                fs::read_to_string(&victim).unwrap(),
                "root's\n",
                "protected_symlinks={setting}, {name}: the victim was written"
            );
            assert_eq!(
                fs::read_dir(dir.path()).unwrap().count(),
                0,
                "protected_symlinks={setting}, {name}: a file was made in the linked directory"
            );
        }
    }
    let _ = fs::remove_dir_all(&sticky);
}

#[test]
fn run_writes_a_device_in_place_and_never_removes_it() {
    let dir = TempDir::new("out-run");
    let null = dir.path().join("null");
    mknod(&null, "c", &["1", "3"]);
    let run = |prog: &Path| {
        let _g = starting_processes();
        output_within(
            Command::new(VMMAP)
                .args(["run", "--snapshot-only", "-q", "-i", "0", "-o"])
                .arg(&null)
                .arg("--")
                .arg(prog)
                .stdin(Stdio::null()),
            60,
        )
    };
    let o = run(Path::new("/bin/true"));
    assert!(o.status.success(), "{}", stderr(&o));
    let is_null = || {
        fs::symlink_metadata(&null)
            .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == rdev(1, 3))
    };
    assert!(is_null(), "the device node was replaced");
    // A program that passes the access check but cannot start: the
    // header-only trace is removed when it is a file, never a device.
    let prog = dir.path().join("no-shebang");
    fs::write(&prog, "echo hi\n").unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(&prog);
    assert!(!o.status.success());
    assert!(is_null(), "the device node was removed");
}
