//! Credentials and task limits under the agent, whose writer is one more
//! thread of the program:
//! - a program that keeps its capabilities on its own thread across a
//!   change of user, then changes group (as `setpriv --reuid` does), died
//!   of SIGABRT: glibc makes every thread repeat the change and aborts
//!   when one cannot;
//! - where no thread may be created (RLIMIT_NPROC, a cgroup's pids.max),
//!   the trace's descriptor stayed open in the program's table and the
//!   trace said "killed or crashed"; attaching said "code -2";
//! - a program that gave up root and exec'd got "vmmap agent: cannot open
//!   …" on its stderr.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::attach::{ready, tmp};
use crate::trace::{build, fixture, history, ops, run_plain, same_behaviour, summary};
use crate::trace_harm::run_with;
use crate::util::{output_within, require_tool, VMMAP};

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

fn creds() -> PathBuf {
    let src = fixture("creds.c");
    build("creds", &["cc", "-O1", "-g", src.to_str().unwrap()])
}

/// A directory nobody may write in, for a launcher run as nobody.
fn nobody_dir(tag: &str) -> PathBuf {
    let dir = tmp(&format!("creds-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn as_nobody(args: &[&str]) -> Output {
    let mut cmd = Command::new(require_tool("setpriv", "util-linux"));
    cmd.args(NOBODY).args(args).stdin(Stdio::null());
    output_within(&mut cmd, 120)
}

/// Each of 9001..9004 bytes was allocated `times` times in the trace.
fn allocated(file: &Path, times: usize, what: &str) {
    let h = history(file);
    for size in 9001..=9004 {
        assert_eq!(
            ops(&h, "malloc", size).len(),
            times,
            "{what}: malloc({size}) in {}",
            summary(file)
        );
    }
}

#[test]
fn a_program_keeping_its_capabilities_across_a_change_of_user_runs_and_is_traced() {
    let prog = creds();
    let plain = run_plain(&prog, &["keepcaps"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "uid 65534 gid 65534 groups 0\n"
    );
    let file = tmp("creds-keepcaps.vmmap");
    let traced = run_with(
        &["-q", "-o", file.to_str().unwrap()],
        &prog,
        &["keepcaps"],
        &[],
    );
    same_behaviour(&plain, &traced);
    assert!(traced.stderr.is_empty(), "{traced:?}");
    // The allocations after the changes are recorded: the writer came
    // back after each, as the program's user.
    allocated(&file, 1, "keepcaps");
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
    assert_eq!(s["threads"], 1, "{s}");
    // setpriv itself, which does the same.
    let setpriv = require_tool("setpriv", "util-linux");
    let mut args = NOBODY.to_vec();
    args.extend(["/bin/echo", "hi"]);
    let plain = run_plain(&setpriv, &args);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let file = tmp("creds-setpriv.vmmap");
    let traced = run_with(&["-q", "-o", file.to_str().unwrap()], &setpriv, &args, &[]);
    same_behaviour(&plain, &traced);
    assert!(traced.stderr.is_empty(), "{traced:?}");
}

#[test]
fn where_no_thread_may_be_created_the_program_runs_untraced_with_its_own_descriptors() {
    let prog = creds();
    let plain = as_nobody(&[prog.to_str().unwrap(), "limit"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let dir = nobody_dir("limit");
    let file = dir.join("limit.vmmap");
    crate::trace::agent();
    let traced = as_nobody(&[
        VMMAP,
        "run",
        "-q",
        "-i",
        "0",
        "--agent",
        crate::trace::agent().to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
        "--",
        prog.to_str().unwrap(),
        "limit",
    ]);
    // The same descriptors: the trace's is not left in the program's
    // table (it was).
    same_behaviour(&plain, &traced);
    assert!(traced.stderr.is_empty(), "{traced:?}");
    let s = summary(&file);
    let img = &s["images"][1];
    assert_eq!(img["no_writer_errno"], libc::EAGAIN, "{s}");
    assert_eq!(img["ended"], true, "{s}");
    let text =
        String::from_utf8_lossy(&crate::trace::on_file("trace", &file, &["summary"])).to_string();
    assert!(text.contains("could not start its writer thread"), "{text}");
    assert!(text.contains("RLIMIT_NPROC"), "{text}");
    assert!(!text.contains("did not stop cleanly"), "{text}");
}

#[test]
fn attaching_where_no_thread_may_be_created_is_refused_and_changes_nothing() {
    let prog = creds();
    crate::trace::agent();
    let mut child = Command::new(require_tool("setpriv", "util-linux"))
        .args(NOBODY)
        .arg(&prog)
        .arg("hold-limit")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, pid) = ready(&mut child);
    let mut before = String::new();
    while !before.ends_with("listed\n") {
        let n = std::io::BufRead::read_line(&mut out, &mut before).unwrap();
        assert!(n > 0, "{before}");
    }
    let o = crate::attach::attach(pid, &tmp("creds-attach-limit.vmmap"), &["--duration", "1s"]);
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("could not start the agent's writer thread"),
        "{err}"
    );
    assert!(err.contains("RLIMIT_NPROC"), "{err}");
    // It runs on, with its own descriptors only.
    drop(child.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        rest.strip_suffix("done\n"),
        before.strip_suffix("listed\n"),
        "{before}{rest}"
    );
}

#[test]
fn a_program_that_gives_up_root_and_execs_hears_nothing_from_the_agent() {
    let prog = creds();
    let plain = run_plain(&prog, &["drop-exec"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let file = tmp("creds-drop-exec.vmmap");
    let traced = run_with(
        &["-q", "-o", file.to_str().unwrap()],
        &prog,
        &["drop-exec"],
        &[],
    );
    same_behaviour(&plain, &traced);
    assert_eq!(
        String::from_utf8_lossy(&traced.stderr),
        String::from_utf8_lossy(&plain.stderr)
    );
    let text =
        String::from_utf8_lossy(&crate::trace::on_file("trace", &file, &["summary"])).to_string();
    assert!(!text.contains("did not stop cleanly"), "{text}");
    assert!(
        text.contains("ended with an exec of /proc/self/exe"),
        "{text}"
    );
}
