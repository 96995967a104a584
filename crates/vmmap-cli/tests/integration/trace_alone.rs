//! Calls the kernel refuses to a process with a second thread in it
//! (`unshare` of a user namespace, `setns` into a user or mount
//! namespace): under the agent, whose writer is such a thread, they
//! failed with EINVAL, so `unshare -U`, `nsenter` and sandboxes failed.
//! Each runs plain and traced, launched and attached, and must behave
//! the same, with the trace going on across the call.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::attach::{ready, tmp, wait_attached};
use crate::trace::{agent, build, fixture, history, ops, run_plain, same_behaviour, summary};
use crate::trace_harm::run_with;
use crate::util::{require_tool, TempDir, VMMAP};

fn alone() -> PathBuf {
    let src = fixture("alone.c");
    build("alone", &["cc", "-O1", "-g", src.to_str().unwrap()])
}

/// `vmmap run -q -i 0 -o FILE -- prog args`.
fn run_traced(prog: &Path, args: &[&str], file: &Path) -> Output {
    run_with(&["-q", "-o", file.to_str().unwrap()], prog, args, &[])
}

/// Each of `sizes` was allocated once in the trace.
fn allocated_once(file: &Path, sizes: std::ops::Range<u64>, what: &str) {
    let h = history(file);
    for size in sizes {
        assert_eq!(
            ops(&h, "malloc", size).len(),
            1,
            "{what}: malloc({size}) in {}",
            summary(file)
        );
    }
}

#[test]
fn calls_that_need_the_process_alone_succeed_under_the_agent() {
    let prog = alone();
    for mode in ["unshare", "syscall", "setns", "both"] {
        let plain = run_plain(&prog, &[mode]);
        assert_eq!(plain.status.code(), Some(0), "{mode}: {plain:?}");
        let out = String::from_utf8_lossy(&plain.stdout);
        assert!(!out.contains("Invalid argument"), "{mode}, plain: {out}");
        let file = tmp(&format!("alone-{mode}.vmmap"));
        let traced = run_traced(&prog, &[mode], &file);
        same_behaviour(&plain, &traced);
        // Every allocation, before and after the call, with the trace
        // ending cleanly: the writer came back.
        allocated_once(&file, 9001..9009, mode);
        let s = summary(&file);
        assert_eq!(s["images"][0]["ended"], true, "{mode}: {s}");
        assert_eq!(s["images"][0]["alone_stop"], false, "{mode}: {s}");
        // Nothing of the writer's leaving and coming back is the
        // program's: one thread, no thread created.
        assert_eq!(s["threads"], 1, "{mode}: {s}");
        assert!(s["calls"].get("pthread_create").is_none(), "{mode}: {s}");
    }
}

/// A program that gives up its rights to the trace file (root's) before
/// the call: the launcher hands the file to the next writer, and the
/// trace goes on across the call.
#[test]
fn a_program_without_rights_to_the_trace_makes_the_call_and_the_trace_goes_on() {
    let prog = alone();
    let plain = run_plain(&prog, &["drop"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("unshare(CLONE_NEWUSER): ok"),
        "{plain:?}"
    );
    let file = tmp("alone-drop.vmmap");
    let traced = run_traced(&prog, &["drop"], &file);
    same_behaviour(&plain, &traced);
    allocated_once(&file, 9001..9009, "drop");
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
    assert_eq!(s["images"][0]["alone_stop"], false, "{s}");
}

/// A program that moved its root away from the trace file before the
/// call: the writer cannot come back, so the trace ends cleanly before
/// the call, says why, and the call behaves as without the agent.
#[test]
fn a_program_that_cannot_reach_the_trace_makes_the_call_and_the_trace_says_why_it_ends() {
    let prog = alone();
    // The empty roots are made here, and go with it.
    let roots = TempDir::new("alone-roots");
    let at = roots.path().to_str().unwrap();
    let plain = run_plain(&prog, &["chroot", at]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("chroot: ok"),
        "{plain:?}"
    );
    let file = tmp("alone-chroot.vmmap");
    let traced = run_traced(&prog, &["chroot", at], &file);
    same_behaviour(&plain, &traced);
    allocated_once(&file, 9001..9005, "chroot");
    let h = history(&file);
    assert!(ops(&h, "malloc", 9005).is_empty(), "recorded past the end");
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
    assert_eq!(s["images"][0]["alone_stop"], true, "{s}");
    let o = Command::new(VMMAP)
        .arg("trace")
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("entered a namespace"), "{said}");
}

/// util-linux's `unshare -U -r` and `nsenter --mount`, as users run them.
#[test]
fn unshare_and_nsenter_run_unchanged() {
    let unshare = require_tool("unshare", "util-linux");
    let nsenter = require_tool("nsenter", "util-linux");
    let cases: [(&Path, &[&str]); 2] = [
        (&unshare, &["-U", "-r", "id", "-u"]),
        (&nsenter, &["--mount=/proc/self/ns/mnt", "--", "id", "-u"]),
    ];
    for (prog, args) in cases {
        let plain = run_plain(prog, args);
        assert_eq!(plain.status.code(), Some(0), "{prog:?}: {plain:?}");
        // Not alone-unshare.vmmap, which the test above writes meanwhile.
        let file = tmp(&format!(
            "alone-tool-{}.vmmap",
            prog.file_name().unwrap().to_str().unwrap()
        ));
        let traced = run_traced(prog, args, &file);
        same_behaviour(&plain, &traced);
        assert_eq!(String::from_utf8_lossy(&traced.stdout), "0\n");
        assert!(
            traced.stderr.is_empty()
                || !String::from_utf8_lossy(&traced.stderr).contains("Invalid argument")
        );
    }
}

/// Attached, the same: the call succeeds and the calls after it are
/// recorded.
#[test]
fn an_attached_process_makes_the_call_as_without_the_agent() {
    let prog = alone();
    let plain = run_plain(&prog, &["both"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    agent();
    let mut child = Command::new(&prog)
        .arg("both")
        .env("ALONE_HOLD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, pid) = ready(&mut child);
    let file = tmp("alone-attached.vmmap");
    let v = Command::new(VMMAP)
        .args(["attach", &pid.to_string(), "-o"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_attached(pid);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert_eq!(rest, String::from_utf8_lossy(&plain.stdout));
    let o = v.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "vmmap attach: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    allocated_once(&file, 9001..9009, "attached");
}

fn forked() -> PathBuf {
    let src = fixture("forked.c");
    build("forked", &["cc", "-O1", "-g", src.to_str().unwrap()])
}

/// A program that counts its threads right after `fork` (CPython 3.12
/// and later do, and warn when there is more than one): under the agent
/// it counted the writer too. The writer now leaves before a fork from
/// the program's only thread and comes back later, the trace whole.
#[test]
fn a_fork_from_the_only_thread_leaves_the_parent_with_one_thread() {
    let prog = forked();
    for (args, what) in [
        (&["3"][..], "three forks"),
        // The writer comes back while the program sleeps, on the
        // program's next call.
        (&["2", "300"][..], "forks, then a pause"),
    ] {
        let plain = run_plain(&prog, args);
        assert_eq!(plain.status.code(), Some(0), "{what}: {plain:?}");
        assert!(
            String::from_utf8_lossy(&plain.stdout).contains("fork 0: 1 thread\n"),
            "{what}, plain: {plain:?}"
        );
        let file = tmp(&format!("forked-{}.vmmap", args.len()));
        let traced = run_traced(&prog, args, &file);
        same_behaviour(&plain, &traced);
        allocated_once(&file, 8001..8005, what);
        let forks: u64 = args[0].parse().unwrap();
        allocated_once(&file, 8200..8200 + forks, what);
        allocated_once(&file, 8301..8305, what);
        let h = history(&file);
        assert_eq!(
            h.iter().filter(|e| e["op"] == "fork").count() as u64,
            forks,
            "{what}: {}",
            summary(&file)
        );
        assert!(ops(&h, "malloc", 8100).is_empty(), "{what}: a child's call");
        let s = summary(&file);
        assert_eq!(s["images"][0]["ended"], true, "{what}: {s}");
        assert_eq!(s["threads"], 1, "{what}: {s}");
        assert!(s["calls"].get("pthread_create").is_none(), "{what}: {s}");
    }
}

/// The same with `--follow-forks`: each child has its own file, which
/// holds its own call and nothing of the parent's.
#[test]
fn a_followed_child_of_a_fork_from_the_only_thread_has_its_own_trace() {
    let prog = forked();
    let plain = run_plain(&prog, &["2"]);
    let file = tmp("forked-follow.vmmap");
    let traced = run_with(
        &["-q", "--follow-forks", "-o", file.to_str().unwrap()],
        &prog,
        &["2"],
        &[],
    );
    same_behaviour(&plain, &traced);
    allocated_once(&file, 8200..8202, "parent");
    let h = history(&file);
    let children: Vec<u64> = h
        .iter()
        .filter(|e| e["op"] == "fork")
        .map(|e| e["child"].as_u64().unwrap())
        .collect();
    assert_eq!(children.len(), 2, "{}", summary(&file));
    let stem = file.file_stem().unwrap().to_str().unwrap();
    for (i, pid) in children.into_iter().enumerate() {
        let child = file.with_file_name(format!("{stem}.{pid}.vmmap"));
        let ch = history(&child);
        assert_eq!(ops(&ch, "malloc", 8100 + i as u64).len(), 1, "child {pid}");
        assert!(ops(&ch, "malloc", 8001).is_empty(), "child {pid}");
        assert!(ops(&ch, "malloc", 8200).is_empty(), "child {pid}");
        assert_eq!(summary(&child)["images"][0]["ended"], true, "child {pid}");
    }
}

/// A program that asks whether it has one thread by the links of
/// `/proc/self/task`, as Chromium's zygote does before it forks (a failed
/// check stops it with SIGTRAP), or by its entries (Rust's
/// `num_threads` crate): under the agent it counted the writer.
#[test]
fn a_look_at_the_task_directory_from_the_only_thread_sees_one_thread() {
    let prog = forked();
    let plain = run_plain(&prog, &["task"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "fstatat: 3\nstat: 3\nlstat: 3\nstatx: 3\nopendir: 3\n",
        "{plain:?}"
    );
    let file = tmp("forked-task.vmmap");
    let traced = run_traced(&prog, &["task"], &file);
    same_behaviour(&plain, &traced);
    let h = history(&file);
    for size in 8400..8405 {
        assert_eq!(ops(&h, "malloc", size).len(), 128, "malloc({size})");
    }
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
    assert_eq!(s["threads"], 1, "{s}");
}

/// Chromium with its children followed: its zygote checks that it has
/// one thread (the links of `/proc/self/task`) before it forks, and under
/// the agent stopped with SIGTRAP, so the browser gave up ("GPU process
/// isn't usable") and printed no page.
#[test]
fn chromium_runs_with_its_children_followed() {
    let chromium = require_tool("chromium", "chromium");
    let dir = TempDir::in_system_tmp("chromium-follow");
    let page = dir.path().join("page.html");
    std::fs::write(&page, "<!doctype html><p id=x>followed</p>\n").unwrap();
    let url = format!("file://{}", page.display());
    let args = |profile: &str| -> Vec<String> {
        [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", dir.path().join(profile).display()),
            "--dump-dom",
            &url,
        ]
        .map(String::from)
        .to_vec()
    };
    let plain_args = args("plain");
    let plain_args: Vec<&str> = plain_args.iter().map(String::as_str).collect();
    let plain = run_plain(&chromium, &plain_args);
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("followed"),
        "{plain:?}"
    );
    let file = dir.path().join("chromium.vmmap");
    let traced_args = args("traced");
    let traced_args: Vec<&str> = traced_args.iter().map(String::as_str).collect();
    let traced = run_with(
        &["-q", "--follow-forks", "-o", file.to_str().unwrap()],
        &chromium,
        &traced_args,
        &[],
    );
    same_behaviour(&plain, &traced);
    // Its zygotes and their children were followed, each into a file.
    let followed = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("chromium.") && n.ends_with(".vmmap") && n != "chromium.vmmap"
        })
        .count();
    assert!(followed >= 3, "{followed} followed processes");
}

/// CPython 3.12 and later warn on `os.fork()` in a process with more
/// than one thread: under the agent, a script with one thread got the
/// warning on its stderr.
#[test]
fn python_forks_without_a_multithreading_warning() {
    let python = python_3_12();
    let script = "import os, sys, threading\n\
                  if sys.argv[1] == 'thread':\n\
                  \x20   threading.Thread(target=threading.Event().wait, daemon=True).start()\n\
                  pid = os.fork()\n\
                  if pid == 0:\n\
                  \x20   os._exit(0)\n\
                  os.waitpid(pid, 0)\n\
                  print('forked')\n";
    let run = |traced: bool, mode: &str| {
        let args = ["-c", script, mode];
        if traced {
            let file = tmp(&format!("python-fork-{mode}.vmmap"));
            run_traced(&python, &args, &file)
        } else {
            run_plain(&python, &args)
        }
    };
    // The check is there: with a thread of its own, the script is warned.
    let threaded = run(false, "thread");
    assert!(
        String::from_utf8_lossy(&threaded.stderr).contains("multi-threaded"),
        "python3 3.12 or later warns on a fork with a second thread: {threaded:?}"
    );
    let plain = run(false, "alone");
    assert_eq!(String::from_utf8_lossy(&plain.stderr), "", "{plain:?}");
    let traced = run(true, "alone");
    same_behaviour(&plain, &traced);
    assert_eq!(
        String::from_utf8_lossy(&traced.stderr),
        "",
        "python3's stderr under the agent"
    );
}

/// A CPython of 3.12 or later: `python3.13`, `python3.12` or `python3`
/// on the PATH, or one of pyenv's versions (this machine's Debian has
/// 3.11).
fn python_3_12() -> PathBuf {
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.pyenv"))
        .join("versions");
    let mut candidates: Vec<PathBuf> = ["python3.13", "python3.12", "python3"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(dirs) = std::fs::read_dir(&pyenv) {
        let mut versions: Vec<PathBuf> = dirs
            .flatten()
            .map(|d| d.path().join("bin/python3"))
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import sys; sys.exit(sys.version_info < (3, 12))"])
                .env_remove("PYENV_VERSION")
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "this test needs CPython 3.12 or later (its fork check is new in 3.12): \
                 python3.12 or python3.13 on the PATH, or a version under {}",
                pyenv.display()
            )
        })
}
