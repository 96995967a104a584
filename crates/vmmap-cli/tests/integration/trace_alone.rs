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
