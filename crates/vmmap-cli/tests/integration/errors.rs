//! Every failure gets a one-line message that says what to do, and its own
//! exit code; nothing panics; a closed pipe is not an error.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

fn fails(args: &[&str], code: i32, needle: &str) -> String {
    let o = vmmap(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "vmmap {args:?}: {err}");
    assert!(
        err.contains(needle),
        "vmmap {args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn free_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .map_or(32768, |s| s.trim().parse().unwrap_or(32768));
    (300..max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid")
}

#[test]
fn no_such_process() {
    fails(&[&free_pid().to_string()], 3, "no process with PID");
    fails(&["no-such-process-name-xyz"], 3, "no process named");
}

#[test]
fn name_matching_several_processes() {
    let dir = TempDir::new("amb");
    let name = format!("amb{}", std::process::id() % 100_000);
    let a = Fixture::start_as(&name, dir.path());
    let b = Fixture::start_as(&name, dir.path());
    let o = vmmap(&[&name]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(8), "{err}");
    assert!(err.contains("matches 2 processes"), "{err}");
    assert!(
        err.contains(&a.pid.to_string()) && err.contains(&b.pid.to_string()),
        "lists both: {err}"
    );
}

#[test]
fn kernel_thread() {
    // kthreadd is PID 2 wherever the kernel's threads are visible; by PID
    // and by name, a kernel thread is said to be one.
    let comm = std::fs::read_to_string("/proc/2/comm").expect("PID 2 (kthreadd) is visible");
    assert_eq!(comm.trim(), "kthreadd");
    fails(&["2"], 6, "kernel thread");
    fails(&["kthreadd"], 6, "kernel thread");
}

#[test]
fn zombie_process() {
    // A zombie has exited and has no address space left; its parent (this
    // test) has not reaped it yet.
    let _g = starting_processes();
    let mut child = Command::new("sh").args(["-c", "exit 0"]).spawn().unwrap();
    let pid = child.id();
    for _ in 0..200 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            == Some("Z")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = fails(&[&pid.to_string()], 5, "is a zombie");
    assert!(
        err.contains("no address space") && err.contains(&std::process::id().to_string()),
        "names the parent that has not reaped it: {err}"
    );
    child.wait().unwrap();
}

#[test]
fn permission_denied_names_the_missing_privilege() {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // Run vmmap as nobody against a root-owned process.
        let fx = Fixture::start(false);
        let o = Command::new(require_tool("setpriv", "util-linux"))
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                VMMAP,
                &fx.pid.to_string(),
            ])
            .output()
            .expect("setpriv (util-linux)");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{err}");
        assert!(
            err.contains("permission denied")
                && err.contains("CAP_SYS_PTRACE")
                && err.contains("uid 0"),
            "{err}"
        );
    } else {
        fails(&["1"], 4, "CAP_SYS_PTRACE");
    }
}

/// Lays out a fake proc root with one process whose smaps is `smaps`
/// (or absent), to play kernels this machine does not run.
fn fake_proc(smaps: Option<&str>) -> TempDir {
    let dir = TempDir::new("proc");
    let p = dir.path().join("4242");
    std::fs::create_dir_all(p.join("task/4242")).unwrap();
    std::fs::write(
        p.join("stat"),
        "4242 (old) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n",
    )
    .unwrap();
    std::fs::write(
        p.join("status"),
        "Name:\told\nUid:\t0\t0\t0\t0\nVmPTE:\t      8 kB\n",
    )
    .unwrap();
    std::fs::write(p.join("cmdline"), "old\0").unwrap();
    std::fs::write(p.join("task/4242/comm"), "old\n").unwrap();
    std::fs::write(p.join("task/4242/syscall"), "running\n").unwrap();
    if let Some(s) = smaps {
        std::fs::write(p.join("smaps"), s).unwrap();
    }
    dir
}

#[test]
fn kernel_without_smaps_or_needed_fields() {
    let no_smaps = fake_proc(None);
    fails(
        &["--proc-root", no_smaps.path().to_str().unwrap(), "4242"],
        7,
        "CONFIG_PROC_PAGE_MONITOR",
    );
    // A smaps from before Rss was printed per mapping (hypothetical, but
    // what a stripped-down kernel or a foreign format gives).
    let no_rss = fake_proc(Some(
        "00400000-00401000 r-xp 00000000 08:01 12 /bin/old\nSize:                  4 kB\n",
    ));
    fails(
        &["--proc-root", no_rss.path().to_str().unwrap(), "4242"],
        7,
        "Rss",
    );
}

#[test]
fn old_kernel_fields_read_as_unavailable() {
    // 4.4-era smaps: no Pss_Dirty, KSM, LazyFree, THPeligible, no rollup.
    let smaps = "00400000-00402000 r-xp 00000000 08:01 12 /bin/old\nSize:                  8 kB\nRss:                   8 kB\nPss:                   8 kB\nShared_Clean:          0 kB\nShared_Dirty:          0 kB\nPrivate_Clean:         8 kB\nPrivate_Dirty:         0 kB\nReferenced:            8 kB\nAnonymous:             0 kB\nAnonHugePages:         0 kB\nSwap:                  0 kB\nSwapPss:               0 kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\nLocked:                0 kB\nVmFlags: rd ex mr mw me dw\n";
    let dir = fake_proc(Some(smaps));
    let root = dir.path().to_str().unwrap();
    let text = vmmap_ok(&["--proc-root", root, "4242", "-c", "all"]);
    assert!(
        text.contains("does not print") && text.contains("Pss_Dirty"),
        "{text}"
    );
    assert!(text.contains("n/a"));
    assert!(text.contains("no smaps_rollup"));
    let json: serde_json::Value =
        serde_json::from_str(&vmmap_ok(&["--proc-root", root, "4242", "--json"])).unwrap();
    let r = &json["regions"][0];
    assert!(r["figures"]["pss_dirty"].is_null(), "unavailable, not zero");
    assert_eq!(r["figures"]["total_ws"], 8192);
    assert!(r["smaps"].get("KSM").is_none());
}

#[test]
fn corrupt_proc_content() {
    let dir = fake_proc(Some(
        "00400000-00401000 r-xp 00000000 08:01 12 /bin/old\nRss: many kB\n",
    ));
    fails(
        &["--proc-root", dir.path().to_str().unwrap(), "4242"],
        9,
        "smaps line 2",
    );
}

#[test]
fn usage_errors() {
    fails(&["1", "-c", "bogus"], 2, "unknown column");
    fails(&["1", "--sort", "bogus"], 2, "cannot sort by");
    fails(&["1", "-t", "bogus"], 2, "unknown memory type");
    fails(&["1", "-o", "/tmp/x.weird"], 2, "extension");
    fails(&["explain", "bogus"], 2, "nothing called");
}

/// Options with a fixed set of values list them in `--help` and refuse
/// anything else with the list (exit 2); the other spellings they always
/// took (any case, `utf-8`, `rss`) still work.
#[test]
fn option_choices_are_listed_and_checked() {
    for (args, choices) in [
        (
            &["ps", "--help"][..],
            "[possible values: pid, user, name, private, ws, arch]",
        ),
        (
            &["strings", "--help"][..],
            "[possible values: ascii, utf8, utf16le, all]",
        ),
        (&["config", "--help"][..], "values: show, path, reset]"),
        (&["run", "--help"][..], "[possible values: dwarf, fp]"),
        (&["--help"][..], "[possible values: madvise, cgroup]"),
    ] {
        let o = vmmap(args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "vmmap {args:?}");
        assert!(
            out.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(choices),
            "vmmap {args:?} lacks {choices:?}:\n{out}"
        );
    }
    for args in [
        &["ps", "--sort", "bogus"][..],
        &["strings", "1", "--encoding", "ebcdic"][..],
        &["config", "bogus"][..],
        &["run", "--unwind", "bogus", "--", "true"][..],
        &["1", "--empty-working-set", "--reclaim", "bogus"][..],
    ] {
        let o = vmmap(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "vmmap {args:?}: {err}");
        assert!(err.contains("possible values"), "vmmap {args:?}: {err}");
    }
    for sort in ["WS", "rss", "private_bytes", "Architecture"] {
        let o = vmmap(&["ps", "--sort", sort]);
        assert!(o.status.success(), "ps --sort {sort}");
    }
    let me = std::process::id().to_string();
    for enc in ["UTF-8", "utf-16le", "unicode", "Ascii"] {
        let o = vmmap(&["strings", &me, "--encoding", enc, "--min", "64"]);
        assert!(o.status.success(), "strings --encoding {enc}");
    }
}

/// Times are a bare number of seconds or a duration (`1.5s`, `1m 30s`,
/// ISO 8601 `PT0.01S`); anything else, negative times included, is a
/// usage error that says what a time looks like.
#[test]
fn times_are_seconds_or_durations() {
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    for after in ["0.01", "10ms", "PT0.01S", "0 s"] {
        let o = vmmap(&["diff", &pid, "--after", after, "--json"]);
        assert!(
            o.status.success(),
            "--after {after:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for bad in ["soon", "1 parsec", "-1s", "inf", "3 weeks"] {
        let o = vmmap(&["diff", &pid, &format!("--after={bad}")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--after {bad:?}: {err}");
        assert!(
            err.contains("not a time such as 500ms"),
            "--after {bad:?}: {err}"
        );
    }
    fails(
        &["watch", &pid, "--interval", "0", "-o", "/dev/null"],
        2,
        "--interval must be longer than 0",
    );
}

#[test]
fn unwritable_output_file() {
    let fx = Fixture::start(false);
    fails(
        &[&fx.pid.to_string(), "-o", "/nonexistent-dir/x.json"],
        10,
        "cannot write",
    );
}

#[test]
fn closed_pipe_exits_quietly() {
    let fx = Fixture::start(false);
    let mut child = Command::new(VMMAP)
        .args([&fx.pid.to_string(), "-c", "all", "--bytes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The process vanishes while its smaps is being read. A FIFO stands in
/// for smaps so the test decides when: vmmap gets the first mapping, the
/// process directory loses its files (as /proc does when a process is
/// reaped), then the read ends.
#[test]
fn process_exits_while_smaps_is_read() {
    let dir = fake_proc(None);
    let p = dir.path().join("4242");
    let fifo = p.join("smaps");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let _g = starting_processes();
    let child = Command::new(VMMAP)
        .args(["--proc-root", dir.path().to_str().unwrap(), "4242"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the writer end waits for vmmap to open the reader end.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    use std::io::Write as _;
    w.write_all(b"00400000-00401000 r-xp 00000000 08:01 12 /bin/old\nSize: 4 kB\nRss: 4 kB\n")
        .unwrap();
    for f in ["stat", "status", "cmdline"] {
        std::fs::remove_file(p.join(f)).unwrap();
    }
    drop(w);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("exited while vmmap was reading"), "{err}");
}

/// A trace file whose one trace message is a HELLO of format `version`.
fn trace_of_version(dir: &TempDir, version: u64) -> String {
    use vmmap_trace::wire::{push_bytes, push_uvarint, MessageKind};
    let mut hello = vec![MessageKind::Hello as u8];
    // version, pid, ppid, page size, flags, clock anchor (tick, ns, unix ns)
    for v in [version, 42, 1, 4096, 1, 0, 1_000_000, 2_000_000] {
        push_uvarint(&mut hello, v);
    }
    push_bytes(&mut hello, b"/bin/x");
    push_bytes(&mut hello, b"x\0");
    let path = dir.path().join(format!("v{version}.vmmap"));
    let file = std::fs::File::create(&path).unwrap();
    let mut w = vmmap_core::format::Writer::new(file).unwrap();
    w.append_trace(&hello).unwrap();
    w.finish().unwrap();
    path.to_str().unwrap().to_string()
}

/// Trace formats 1 to 3 were written only by development builds before
/// the first release; such a file, like one from a newer vmmap, is
/// refused with the file-format exit code and a message that says what
/// to do, by the summary and by the whole-trace views alike.
#[test]
fn a_trace_of_an_unread_format_version_is_refused() {
    let dir = TempDir::new("trace-version");
    for (version, needle) in [
        (1, "record the program again"),
        (3, "record the program again"),
        (99, "upgrade vmmap"),
    ] {
        let f = trace_of_version(&dir, version);
        for args in [
            vec!["trace", f.as_str()],
            vec!["trace", f.as_str(), "calltree"],
        ] {
            let err = fails(&args, 11, needle);
            assert!(err.contains(&format!("trace version {version}")), "{err}");
        }
    }
}
