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
//!   …" on its stderr, and its new image was not traced: it may not open
//!   root's trace file, which the launcher now hands over.

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

/// Runs `prog args` plain, then under `vmmap run -q [extra] -o FILE`:
/// the program must exit 0, behave the same and hear nothing of vmmap.
/// Returns the plain run.
fn plain_and_traced(extra: &[&str], prog: &Path, args: &[&str], file: &Path) -> Output {
    let plain = run_plain(prog, args);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let mut opts = vec!["-q"];
    opts.extend_from_slice(extra);
    opts.extend(["-o", file.to_str().unwrap()]);
    let traced = run_with(&opts, prog, args, &[]);
    same_behaviour(&plain, &traced);
    assert_eq!(
        String::from_utf8_lossy(&traced.stderr),
        String::from_utf8_lossy(&plain.stderr)
    );
    plain
}

/// `vmmap run OPTS --agent AGENT -o FILE -- PROG ARGS`, all as nobody.
fn run_as_nobody(opts: &[&str], file: &Path, prog: &Path, args: &[&str]) -> Output {
    let agent = crate::trace::agent();
    let mut all = vec![VMMAP, "run"];
    all.extend_from_slice(opts);
    all.extend([
        "--agent",
        agent.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
        "--",
        prog.to_str().unwrap(),
    ]);
    all.extend_from_slice(args);
    as_nobody(&all)
}

/// `creds hold` (or `hold-limit`), as nobody when `as_nobody`: started,
/// its descriptors as it listed them at the start kept.
struct Held {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
    pid: i32,
    listed: String,
}

impl Held {
    fn start(mode: &str, as_nobody: bool) -> Held {
        let prog = creds();
        crate::trace::agent();
        let mut cmd = if as_nobody {
            let mut c = Command::new(require_tool("setpriv", "util-linux"));
            c.args(NOBODY).arg(&prog);
            c
        } else {
            Command::new(&prog)
        };
        let mut child = cmd
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (mut out, pid) = ready(&mut child);
        let mut listed = String::new();
        if mode.starts_with("hold") {
            while !listed.ends_with("listed\n") {
                let n = std::io::BufRead::read_line(&mut out, &mut listed).unwrap();
                assert!(n > 0, "{listed}");
            }
        }
        Held {
            child,
            out,
            pid,
            listed,
        }
    }

    /// Ends its input: it must end well, its descriptors as at the start.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.out, &mut rest).unwrap();
        assert!(self.child.wait().unwrap().success(), "{rest}");
        assert_eq!(
            rest.strip_suffix("done\n"),
            self.listed.strip_suffix("listed\n"),
            "{}{rest}",
            self.listed
        );
    }
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
    let file = tmp("creds-keepcaps.vmmap");
    let plain = plain_and_traced(&[], &prog, &["keepcaps"], &file);
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "uid 65534 gid 65534 groups 0\n"
    );
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
    plain_and_traced(&[], &setpriv, &args, &tmp("creds-setpriv.vmmap"));
}

#[test]
fn where_no_thread_may_be_created_the_program_runs_untraced_with_its_own_descriptors() {
    let prog = creds();
    let plain = as_nobody(&[prog.to_str().unwrap(), "limit"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let dir = nobody_dir("limit");
    let file = dir.join("limit.vmmap");
    let traced = run_as_nobody(&["-q", "-i", "0"], &file, &prog, &["limit"]);
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
    let held = Held::start("hold-limit", true);
    let o = crate::attach::attach(
        held.pid,
        &tmp("creds-attach-limit.vmmap"),
        &["--duration", "1s"],
    );
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("could not start the agent's writer thread"),
        "{err}"
    );
    assert!(err.contains("RLIMIT_NPROC"), "{err}");
    // It runs on, with its own descriptors only.
    held.finish();
}

/// The new image of a program that gave up root before its exec may not
/// open root's trace file: the launcher hands it over, and the program
/// hears nothing of it.
#[test]
fn a_program_that_gives_up_root_and_execs_is_traced_on() {
    let prog = creds();
    let file = tmp("creds-drop-exec.vmmap");
    plain_and_traced(&[], &prog, &["drop-exec"], &file);
    allocated(&file, 1, "drop-exec");
    let s = summary(&file);
    assert_eq!(s["images"][0]["exec_replaced"], true, "{s}");
    assert_eq!(s["images"][1]["ended"], true, "{s}");
    // Followed children of such a program too: each file of its own.
    let file = tmp("creds-drop-follow.vmmap");
    let shell = format!("{} list; {} list", prog.display(), prog.display());
    let setpriv = require_tool("setpriv", "util-linux");
    let mut args = NOBODY.to_vec();
    args.extend(["/bin/sh", "-c", &shell]);
    plain_and_traced(&["--follow-forks"], &setpriv, &args, &file);
    let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
    let children: Vec<PathBuf> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&format!("{stem}.")) && n != format!("{stem}.vmmap")
        })
        .collect();
    assert_eq!(children.len(), 2, "{children:?}");
    for child in &children {
        allocated(child, 1, "a followed child as nobody");
        std::fs::remove_file(child).unwrap();
    }
}

/// An exec into a program the agent cannot be loaded into (a static one)
/// ends the trace with that exec, said as such, not as a crash.
#[test]
fn an_exec_into_an_untraceable_program_is_said_as_such() {
    let prog = creds();
    let src = fixture("creds.c");
    let stat = build(
        "creds-static",
        &["cc", "-static", "-O1", src.to_str().unwrap()],
    );
    let args = ["exec", stat.to_str().unwrap(), "list"];
    let file = tmp("creds-exec-static.vmmap");
    plain_and_traced(&[], &prog, &args, &file);
    let text =
        String::from_utf8_lossy(&crate::trace::on_file("trace", &file, &["summary"])).to_string();
    assert!(!text.contains("did not stop cleanly"), "{text}");
    assert!(
        text.contains(&format!("ended with an exec of {}", stat.display())),
        "{text}"
    );
    assert_eq!(
        summary(&file)["images"][0]["untraced_exec"],
        stat.to_str().unwrap()
    );
}

/// The launcher's socket is in the open (`/proc/net/unix` lists it): a
/// process it did not start, another user's or root's, asking for the
/// trace file is refused, and one that never finishes its request does
/// not hold the launcher up.
#[test]
fn the_launcher_hands_the_trace_to_no_stranger() {
    let prog = creds();
    // Debian's, which another user may run (not a per-user shim first
    // in PATH).
    let python = PathBuf::from("/usr/bin/python3");
    assert!(
        python.exists(),
        "python3 is missing: apt-get install python3"
    );
    let file = tmp("creds-stranger.vmmap");
    let mut run = Command::new(VMMAP)
        .args(["run", "-q", "-i", "0", "--agent"])
        .arg(crate::trace::agent())
        .arg("-o")
        .arg(&file)
        .arg("--")
        .arg(&prog)
        .arg("hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = run.id();
    let (mut out, _pid) = ready(&mut run);
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap();
    let prefix = format!("@vmmap-trace.{launcher}.");
    let name = unix
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}… in /proc/net/unix"))
        .trim_start_matches('@')
        .to_string();
    // Asks for the file; prints the answer byte and how many descriptors
    // came with it. "idle" connects and sends nothing.
    let client = r#"
import socket, sys, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect("\0" + sys.argv[1])
if sys.argv[2] == "idle":
    s.recv(1)
    print("answered")
    sys.exit(0)
try:
    s.sendall(sys.argv[2].encode() + b"\n")
except OSError:
    pass  # a stranger is answered before it is read
msg, anc, _, _ = s.recvmsg(1, socket.CMSG_SPACE(4))
print(msg[0] if msg else "none", sum(len(d) // 4 for (_, _, d) in anc))
"#;
    let ask = |who: &[&str], what: &str| -> String {
        let mut cmd = Command::new(who.first().copied().unwrap_or(python.to_str().unwrap()));
        if !who.is_empty() {
            cmd.args(&who[1..]).arg(&python);
        }
        cmd.args(["-c", client, &name, what]);
        let o = output_within(&mut cmd, 30);
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let setpriv = require_tool("setpriv", "util-linux");
    let nobody: Vec<&str> = [setpriv.to_str().unwrap()]
        .into_iter()
        .chain(NOBODY)
        .collect();
    let main = file.to_str().unwrap();
    // Refused, with no descriptor: another user, then root itself (not a
    // process vmmap started), then an idle client, answered at once.
    assert_eq!(ask(&nobody, main), "0 0");
    assert_eq!(ask(&[], main), "0 0");
    assert_eq!(ask(&[], "/etc/shadow"), "0 0");
    assert_eq!(ask(&nobody, "idle"), "answered");
    // The program runs on and ends as it would, its trace whole.
    drop(run.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(run.wait().unwrap().success());
    assert!(rest.ends_with("done\n"), "{rest}");
    assert_eq!(summary(&file)["images"][0]["ended"], true);
}

/// A program that makes itself undumpable refuses its own user's launcher
/// every snapshot: the reason is said once, not once a snapshot.
#[test]
fn a_snapshot_failure_that_repeats_is_said_once() {
    let src = fixture("undumpable.c");
    let prog = build("undumpable", &["cc", "-O1", src.to_str().unwrap()]);
    let dir = nobody_dir("undumpable");
    let file = dir.join("undumpable.vmmap");
    let o = run_as_nobody(&["-i", "100ms"], &file, &prog, &[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("vmmap: snapshot of").count(), 1, "{err}");
    assert!(err.contains("not dumpable"), "{err}");
    assert!(err.contains("the same failure"), "{err}");
}

/// An agent the program's new user may not read (built under root's
/// home, mode 700): after the program gave up root, its exec made the
/// loader say "cannot be preloaded ... ignored" on the program's stderr.
/// The exec now goes without the agent, following children too.
#[test]
fn an_agent_the_new_user_cannot_read_goes_unmentioned() {
    use std::os::unix::fs::PermissionsExt;
    let prog = creds();
    let dir = tmp(&format!("creds-private-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = dir.join("libvmmap_agent.so");
    std::fs::copy(crate::trace::agent(), &private).unwrap();
    let file = tmp("creds-private-agent.vmmap");
    let run = |extra: &[&str], prog: &Path, args: &[&str]| -> Output {
        let mut cmd = Command::new(VMMAP);
        cmd.args(["run", "-q", "-i", "0", "--agent"])
            .arg(&private)
            .args(extra)
            .arg("-o")
            .arg(&file)
            .arg("--")
            .arg(prog)
            .args(args)
            .stdin(Stdio::null());
        output_within(&mut cmd, 120)
    };
    let plain = run_plain(&prog, &["drop-exec"]);
    let traced = run(&[], &prog, &["drop-exec"]);
    same_behaviour(&plain, &traced);
    assert!(traced.stderr.is_empty(), "{traced:?}");
    let s = summary(&file);
    assert_eq!(s["images"][0]["untraced_exec"], "/proc/self/exe", "{s}");
    // Following children: the variables go too, not only the entry.
    let setpriv = require_tool("setpriv", "util-linux");
    let mut args = NOBODY.to_vec();
    args.extend([
        "/bin/sh",
        "-c",
        "env | grep -c 'VMMAP_TRACE\\|LD_PRELOAD'; true",
    ]);
    let plain = run_plain(&setpriv, &args);
    let traced = run(&["--follow-forks"], &setpriv, &args);
    same_behaviour(&plain, &traced);
    assert!(traced.stderr.is_empty(), "{traced:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Attaching to a daemon's process with an agent its user may not read
/// (under root's home): its `dlopen` failed with "Permission denied" and
/// the attach was refused. The agent is now loaded from memory there.
#[test]
fn attaching_to_another_users_process_loads_an_agent_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp(&format!("creds-attach-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = dir.join("libvmmap_agent.so");
    std::fs::copy(crate::trace::agent(), &private).unwrap();
    let held = Held::start("hold", true);
    let pid = held.pid;
    let file = tmp("creds-attach-private.vmmap");
    let mut cmd = Command::new(VMMAP);
    cmd.args(["attach", &pid.to_string(), "--duration", "1s", "-o"])
        .arg(&file)
        .env("VMMAP_AGENT", &private);
    let o = output_within(&mut cmd, 60);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // It allocated 9001..9004 every 10 ms while attached.
    let h = history(&file);
    assert!(ops(&h, "malloc", 9001).len() > 10, "{}", summary(&file));
    // Its descriptors are its own: nothing of the load from memory stays.
    held.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A process at its address-space limit has no room for the agent's
/// ring: the attach said "could not start (code -2)", exit 1.
#[test]
fn attaching_where_the_agent_has_no_room_says_so() {
    let held = Held::start("hold", false);
    let pid = held.pid;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let size_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    // Room for the agent's library, not for its 8 MiB ring.
    let limit = (size_kb + 5 * 1024) * 1024;
    let st = Command::new(require_tool("prlimit", "util-linux"))
        .args(["--pid", &pid.to_string(), &format!("--as={limit}")])
        .status()
        .unwrap();
    assert!(st.success());
    let o = crate::attach::attach(pid, &tmp("creds-attach-room.vmmap"), &["--duration", "1s"]);
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no room for the agent's memory") && err.contains("RLIMIT_AS"),
        "{err}"
    );
    held.finish();
}
/// Attached, the agent's writer got a 64 MiB malloc arena of its own:
/// Rust's start of a thread allocated before the thread was known as the
/// agent's. The process grows by the agent's ring, heap and library only.
#[test]
fn an_attached_agent_takes_no_malloc_arena() {
    let held = Held::start("hold", false);
    let pid = held.pid;
    let vm_size = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let before = vm_size();
    let mut cmd = Command::new(VMMAP);
    cmd.args(["attach", &pid.to_string(), "--duration", "2s", "-o"])
        .arg(tmp("creds-attach-arena.vmmap"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut attach = cmd.spawn().unwrap();
    crate::attach::wait_attached(pid);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let during = vm_size();
    assert!(attach.wait().unwrap().success());
    // The ring (8 MiB), the agent's heap (6 MiB), its library and the
    // writer's stack: about 18 MiB with a debug agent; an arena is 64.
    assert!(
        during - before < 32 * 1024,
        "the process grew by {} KiB while attached",
        during - before
    );
    held.finish();
}
