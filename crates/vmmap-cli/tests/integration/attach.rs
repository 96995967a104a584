//! `vmmap attach PID`: the agent loaded into a running process through
//! ptrace, its hooks installed in the relocation slots, then removed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::trace::history;
use crate::util::{compile, compile_static, output_within, require_tool, Killed, VMMAP};

/// `tests/fixtures/attach_workers.c` started, once its threads run.
pub(crate) struct Workers {
    pub(crate) child: Child,
    pub(crate) out: BufReader<std::process::ChildStdout>,
    pub(crate) pid: i32,
}

fn workers(bin: &PathBuf, iterations: &str) -> Workers {
    // vmmap attach loads the agent from beside itself: build it first.
    crate::trace::agent();
    let mut child = Command::new(bin)
        .arg(iterations)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let (out, pid) = ready(&mut child);
    Workers { child, out, pid }
}

/// A started fixture's output, and its pid from its "ready PID" line.
pub(crate) fn ready(child: &mut Child) -> (BufReader<std::process::ChildStdout>, i32) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("fixture said {line:?}"));
    (out, pid)
}

impl Workers {
    /// Waits for the end and returns the checksum line.
    /// Waits for the fixture's end: its status and the rest of its output.
    pub(crate) fn rest(mut self) -> (std::process::ExitStatus, String) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.out, &mut rest).unwrap();
        (self.child.wait().unwrap(), rest)
    }

    pub(crate) fn finish(self) -> String {
        let (st, rest) = self.rest();
        assert!(st.success(), "the fixture ended with {st:?}: {rest}");
        rest.lines()
            .find(|l| l.starts_with("checksum "))
            .unwrap_or_else(|| panic!("no checksum in {rest:?}"))
            .to_string()
    }
}

/// Waits until an attach to `pid` (under way) has loaded the agent and
/// let ptrace go: a loaded machine can take longer than any fixed pause
/// to get there.
pub(crate) fn wait_attached(pid: i32) {
    let start = Instant::now();
    loop {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        if maps.contains("libvmmap_agent.so") && status.contains("TracerPid:\t0\n") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "vmmap attach did not attach within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn tmp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&p);
    p
}

pub(crate) fn attach(pid: i32, file: &PathBuf, extra: &[&str]) -> std::process::Output {
    crate::trace::agent();
    let mut cmd = Command::new(VMMAP);
    cmd.arg("attach")
        .arg(pid.to_string())
        .arg("-o")
        .arg(file)
        .args(extra);
    output_within(&mut cmd, 60)
}

/// Per thread, every malloc the trace holds must be the fixture's next
/// one (its size encodes its index) and be freed right after: no call
/// lost, none counted twice. Returns the allocations per thread.
pub(crate) fn check_window(h: &[Value]) -> HashMap<u64, u64> {
    let mut last: HashMap<u64, (u64, Option<String>)> = HashMap::new();
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for e in h {
        let tid = e["tid"].as_u64().unwrap();
        match e["op"].as_str().unwrap() {
            "malloc" => {
                let size = e["size"].as_u64().unwrap();
                let k = (size - 16) / 4;
                if let Some((prev, open)) = last.get(&tid) {
                    assert_eq!(
                        (prev + 1) % 4000,
                        k,
                        "thread {tid}: allocation {k} after {prev}: a call was lost"
                    );
                    assert!(open.is_none(), "thread {tid}: a free was lost");
                }
                last.insert(tid, (k, e["ptr"].as_str().map(str::to_string)));
                *counts.entry(tid).or_default() += 1;
            }
            "free" => {
                if let Some((_, open)) = last.get_mut(&tid) {
                    if open.is_some() {
                        assert_eq!(open.as_deref(), e["ptr"].as_str(), "thread {tid}");
                        *open = None;
                    }
                }
            }
            _ => {}
        }
    }
    counts
}

#[test]
fn attaching_records_every_call_of_the_window_and_leaves_the_program_as_it_was() {
    let bin = compile("attach_workers");
    let plain = workers(&bin, "600000").finish();
    let w = workers(&bin, "600000");
    let (first, second) = (tmp("attach-1.vmmap"), tmp("attach-2.vmmap"));
    // Twice in a row: the second attach finds the agent loaded already.
    for file in [&first, &second] {
        let o = attach(w.pid, file, &["--duration", "1s", "--interval", "300ms"]);
        assert!(
            o.status.success(),
            "vmmap attach failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let checksum = w.finish();
    assert_eq!(
        checksum, plain,
        "the checksum differs from the untraced run's"
    );
    for file in [&first, &second] {
        let h = history(file);
        let counts = check_window(&h);
        assert_eq!(counts.len(), 4, "allocations of the 4 workers: {counts:?}");
        assert!(counts.values().all(|&n| n > 100), "{counts:?}");
        // The snapshots at attach, in between and at detach.
        let o = Command::new(VMMAP)
            .args(["timeline", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// After a detach the agent stays loaded, but its 8 MiB ring, filled by a
/// busy process, stayed resident in it for good: 13 MB of the program's
/// memory after one attach of the stress workload. The ring's pages go
/// back once vmmap has taken the END message, and the heap's free end
/// with them; the snapshot at detach shows what stays (2.8 MB of the
/// debug build's, against 16.3 MB before).
#[test]
fn a_detached_process_keeps_no_ring_of_the_agents() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/alloc_bench.c");
    let bin = crate::trace::build(
        "alloc_bench",
        &["cc", "-O2", "-pthread", src.to_str().unwrap()],
    );
    crate::trace::agent();
    // bench/trace.sh's stress workload, long enough to outlast the attach.
    let mut busy = Command::new(&bin)
        .args(["200000000", "2", "4096", "c"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = busy.id() as i32;
    let _reaped = Killed(&mut busy);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let file = tmp("attach-release.vmmap");
    let o = attach(pid, &file, &["--duration", "4s", "--interval", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The ring was used whole: more than it holds went through it (the
    // file is almost all trace; a loaded machine records less in 4 s).
    let written = std::fs::metadata(&file).unwrap().len();
    assert!(
        written > 9 << 20,
        "{written} bytes of trace do not fill the 8 MiB ring"
    );
    // And it reads back whole, across the ring's turns.
    let file = file.to_str().unwrap();
    crate::util::vmmap_ok(&["trace", file]);
    let at_detach: Value =
        serde_json::from_str(&crate::util::vmmap_ok(&["open", file, "--json"])).unwrap();
    let private = at_detach["agent"]["private_ws"].as_u64().unwrap();
    // Less than the ring alone: what stays is the threads' buffer lanes
    // (at most 8, about 2.5 MiB) and the agent's image.
    assert!(
        private < 6 << 20,
        "the agent keeps {private} bytes of the program's memory after the detach"
    );
}

/// A process that runs a new program while attached: vmmap said "the
/// process ended or the agent detached by itself", and the trace said the
/// program "did not stop cleanly (killed or crashed)", its exec lost with
/// the agent's ring. The exec now waits (at most 250 ms) for vmmap to take
/// the ring, and both say what happened; the new program runs on as
/// without vmmap.
#[test]
fn an_exec_while_attached_is_told_as_an_exec() {
    let w = workers(&compile("attach_exec"), "1500");
    let file = tmp("attach-exec.vmmap");
    let o = attach(w.pid, &file, &["--duration", "20s", "--interval", "0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("the process ran a new program (exec)"),
        "{err}"
    );
    let (st, rest) = w.rest();
    assert!(st.success(), "{st:?} {rest}");
    assert_eq!(rest, "after-exec\n");
    let o = Command::new(VMMAP)
        .args(["trace", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(text.contains("ended with an exec of /bin/sh"), "{text}");
    assert!(!text.contains("did not stop cleanly"), "{text}");
}

#[test]
fn a_killed_vmmap_leaves_the_program_unhooked_and_running() {
    let bin = compile("attach_workers");
    let plain = workers(&bin, "300000").finish();
    let w = workers(&bin, "300000");
    let file = tmp("attach-killed.vmmap");
    let mut v = Command::new(VMMAP)
        .arg("attach")
        .arg(w.pid.to_string())
        .arg("-o")
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed while attached: once the agent is loaded and ptrace let go,
    // and some of its output taken.
    wait_attached(w.pid);
    std::thread::sleep(Duration::from_millis(500));
    v.kill().unwrap();
    v.wait().unwrap();
    // The agent notices two seconds after the heartbeat stops (waited for up
    // to 30 s: a loaded machine starves its writer): its ring is no longer read
    // and its slots are the program's again.
    let start = Instant::now();
    let agent_ranges = loop {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", w.pid)).unwrap();
        let task = std::fs::read_dir(format!("/proc/{}/task", w.pid))
            .unwrap()
            .count();
        // The writer thread is gone: main and the four workers.
        if task <= 5 || start.elapsed() > Duration::from_secs(30) {
            break maps;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(agent_ranges.contains("libvmmap_agent.so"));
    let task = std::fs::read_dir(format!("/proc/{}/task", w.pid))
        .unwrap()
        .count();
    assert!(
        task <= 5,
        "the agent's writer still runs {:?} after vmmap died",
        start.elapsed()
    );
    // The file loads up to the kill.
    let h = history(&file);
    assert!(!check_window(&h).is_empty());
    assert_eq!(w.finish(), plain);
}

/// Kills `vmmap` (an attach to `pid` under way) with SIGKILL while it
/// holds the thread it borrowed, once the agent is mapped: inside the
/// calls. vmmap is frozen (SIGSTOP) to look, so that a loaded machine
/// cannot let the moment pass between two looks: the thread then waits
/// for it at its next stop. Whether that moment came.
fn kill_inside_the_calls(v: &mut Child, pid: i32) -> bool {
    let vpid = v.id() as i32;
    let held = || {
        !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .contains("TracerPid:\t0\n")
    };
    let frozen = || {
        std::fs::read_to_string(format!("/proc/{vpid}/stat"))
            .map(|s| s.rsplit(") ").next().unwrap_or_default().starts_with('T'))
            .unwrap_or(false)
    };
    let begun = Instant::now();
    while v.try_wait().unwrap().is_none() && begun.elapsed() < Duration::from_secs(30) {
        if !held() {
            continue;
        }
        // SAFETY: signals to our own child.
        unsafe { libc::kill(vpid, libc::SIGSTOP) };
        while !frozen() && v.try_wait().unwrap().is_none() {
            std::thread::yield_now();
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        if held() && maps.contains("libvmmap_agent.so") {
            v.kill().unwrap();
            return true;
        }
        // SAFETY: as above.
        unsafe { libc::kill(vpid, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// vmmap killed with SIGKILL in the middle of attaching, while the thread
/// it borrowed runs `dlopen` or the agent's attach entry: the thread finds
/// its way back alone (docs/tracing.md, "Attach"), and the program runs on
/// to the same checksum as an untraced run. Before, the thread returned
/// to address 0 with no tracer to catch the fault, and the program died
/// of SIGSEGV.
#[test]
fn a_vmmap_killed_while_attaching_leaves_the_program_running() {
    let bin = compile("attach_workers");
    // About 55 s of work (mostly sleeps), longer than the rounds.
    let plain = workers(&bin, "5000000");
    let w = workers(&bin, "5000000");
    let tasks = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    // On a loaded machine the moment can pass between two looks: rounds
    // go on until three of them killed vmmap inside the calls.
    let mut hits = 0;
    for round in 0..6 {
        if hits == 3 {
            break;
        }
        let file = tmp(&format!("attach-killed-early-{round}.vmmap"));
        let mut v = Command::new(VMMAP)
            .arg("attach")
            .arg(w.pid.to_string())
            .args(["--duration", "1s", "-o"])
            .arg(&file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kill_inside_the_calls(&mut v, w.pid) {
            hits += 1;
        }
        let _ = v.kill();
        v.wait().unwrap();
        // An agent that started detaches itself when vmmap's heartbeat
        // stops: main and the four workers are left. The borrowed thread
        // may still be on its way through `dlopen` and the attach entry,
        // which start the agent's thread: one look at the task list right
        // after the kill can come before that thread exists. So the agent
        // counts as gone when no thread of it has been seen for 3 s (its
        // thread lives at least the 2 s the heartbeat may stand still),
        // within 30 s on a machine that may be running every other test.
        let start = Instant::now();
        let mut last_seen = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if tasks(w.pid) > 5 {
                last_seen = Instant::now();
            } else if last_seen.elapsed() >= Duration::from_secs(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", w.pid)).unwrap();
        let state = stat.rsplit(") ").next().unwrap_or_default();
        assert!(
            !state.starts_with('Z'),
            "round {round}: the program died when vmmap was killed while attaching"
        );
        let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", w.pid))
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path().join("comm")).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            tasks(w.pid) <= 5,
            "round {round} (killed inside the calls: {}): the agent still runs 30 s later: {names:?}",
            hits > 0
        );
    }
    assert_eq!(
        hits, 3,
        "vmmap was killed inside the calls in {hits} of 6 rounds"
    );
    assert_eq!(w.finish(), plain.finish());
}

/// The thread vmmap borrows gets every register back, the vector ones
/// included (`tests/fixtures/vector_spin.c` checks all sixteen SSE
/// registers while it spins, and is the process's only thread): attached
/// and detached, and with vmmap killed inside the calls, when the thread
/// finds its way back alone. The loader's and the agent's code use those
/// registers; before the extended state was saved and put back, the
/// fixture found one changed on every attach.
#[test]
fn the_borrowed_thread_gets_its_vector_registers_back() {
    let bin = compile("vector_spin");
    let start = |seconds: &str| {
        let w = workers(&bin, seconds);
        // Inside its checks by now.
        std::thread::sleep(Duration::from_millis(300));
        w
    };
    let end = |w: Workers, what: &str| {
        let (st, rest) = w.rest();
        assert!(st.success(), "{what}: the fixture ended with {st:?}");
        assert!(
            rest.starts_with("blocks ") && rest.trim_end().ends_with(" bad 0"),
            "{what}: {rest}"
        );
    };
    // Attached and detached.
    let w = start("3");
    let o = attach(w.pid, &tmp("attach-vector.vmmap"), &["--duration", "500ms"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    end(w, "attached");
    // vmmap killed inside the calls; on a loaded machine the moment can
    // pass between two looks, so up to four tries.
    let mut hit = false;
    for _ in 0..4 {
        let w = start("5");
        let pid = w.pid;
        let mut v = Command::new(VMMAP)
            .arg("attach")
            .arg(pid.to_string())
            .args(["--duration", "1s", "-o"])
            .arg(tmp("attach-vector-killed.vmmap"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        hit = kill_inside_the_calls(&mut v, pid);
        let _ = v.kill();
        v.wait().unwrap();
        end(w, "vmmap killed while attaching");
        if hit {
            break;
        }
    }
    assert!(hit, "vmmap was not caught inside the calls in four tries");
}

/// A thread vmmap borrows while it is inside an rseq critical section
/// (`tests/fixtures/rseq_spin.c`: the process's only thread, in one almost
/// all the time, which checks 8 KiB of its stack below itself) starts the
/// section over at its abort handler afterwards, as the kernel's rseq
/// contract demands, and never carries on in the middle of it after the
/// loader's code ran on its stack. Before, the fixture found its pattern
/// broken on every attach.
#[test]
fn a_thread_borrowed_inside_an_rseq_section_restarts_it() {
    let bin = compile("rseq_spin");
    for round in 0..2 {
        let w = workers(&bin, "2");
        std::thread::sleep(Duration::from_millis(200));
        let o = attach(
            w.pid,
            &tmp(&format!("attach-rseq-{round}.vmmap")),
            &["--duration", "300ms"],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (st, rest) = w.rest();
        assert!(
            st.success() && rest.contains(" broken 0"),
            "round {round}: the section went on after the attach: {rest} ({st:?})"
        );
    }
}

#[test]
fn attach_refuses_what_it_cannot_trace() {
    // A static binary.
    let bin = compile_static("attach_workers");
    let w = workers(&bin, "300000");
    let o = attach(w.pid, &tmp("attach-static.vmmap"), &["--duration", "1s"]);
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("statically linked"));
    w.finish();
    // Another user's process.
    let bin = compile("attach_workers");
    let w = workers(&bin, "300000");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        VMMAP,
        "attach",
    ])
    .arg(w.pid.to_string())
    .args(["-o", "/tmp/vmmap-attach-nobody.vmmap", "--duration", "1s"]);
    let o = output_within(&mut cmd, 30);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("another user") || err.contains("permission") || err.contains("cannot"),
        "{err}"
    );
    w.finish();
    // No such process.
    let o = attach(999_999_999, &tmp("attach-none.vmmap"), &[]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    // A program with its own malloc.
    let bin = compile("attach_own_malloc");
    let mut own = workers(&bin, "0");
    let o = attach(own.pid, &tmp("attach-own.vmmap"), &["--duration", "1s"]);
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("defines its own malloc"));
    own.child.kill().unwrap();
    own.child.wait().unwrap();
}

/// A stopped process (SIGSTOP, Ctrl+Z): the agent's writer, a new thread
/// of the process, stopped with it, and vmmap said "the agent could not
/// start in process N (code -2)" (exit 1) after two seconds, leaving a
/// thread behind until the process was continued. Now it refuses at
/// once, says what to do, and the process stays stopped and as it was.
#[test]
fn attach_refuses_a_stopped_process_and_leaves_it_stopped() {
    let bin = compile("attach_workers");
    let w = workers(&bin, "300000");
    let task = format!("/proc/{}/task", w.pid);
    let threads = std::fs::read_dir(&task).unwrap().count();
    /// Continues the fixture however the test ends: a stopped one would
    /// hold the test's output open for ever.
    struct Continue(i32);
    impl Drop for Continue {
        fn drop(&mut self) {
            // SAFETY: kill takes a pid and a signal number.
            unsafe { libc::kill(self.0, libc::SIGCONT) };
        }
    }
    let resume = Continue(w.pid);
    crate::util::signal(w.pid as u32, libc::SIGSTOP);
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", w.pid)).unwrap();
        stat.rsplit(") ").next().unwrap().chars().next().unwrap()
    };
    let start = Instant::now();
    while state() != 'T' {
        assert!(start.elapsed() < Duration::from_secs(10), "never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = attach(w.pid, &tmp("attach-stopped.vmmap"), &["--duration", "1s"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(12), "{err}");
    assert!(
        err.contains("is stopped") && err.contains("kill -CONT"),
        "{err}"
    );
    assert_eq!(state(), 'T', "the process was continued");
    assert_eq!(std::fs::read_dir(&task).unwrap().count(), threads);
    drop(resume);
    w.finish();
}

/// A process that covered the name of its C library, in a mount
/// namespace of its own, with a FIFO (an unprivileged user can): attach
/// read the library through /proc/PID/root and waited in open() for ever,
/// SIGTERM or not. Now it refuses at once, says why, and the process runs
/// on, never stopped.
#[test]
fn attach_refuses_a_process_whose_library_name_is_covered() {
    let covered = crate::util::Covered::start("libc");
    let o = attach(
        covered.pid as i32,
        &tmp("attach-covered.vmmap"),
        &["--duration", "1s"],
    );
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a regular file at that name"), "{err}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", covered.pid)).unwrap();
    assert!(status.contains("State:\tS"), "{status}");
}

#[test]
fn attach_refuses_a_process_traced_already_and_names_the_tracer() {
    let strace = require_tool("strace", "strace");
    let bin = compile("attach_workers");
    let w = workers(&bin, "600000");
    let mut tracer = Command::new(strace)
        .args(["-o", "/dev/null", "-p", &w.pid.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let traced = || {
        std::fs::read_to_string(format!("/proc/{}/status", w.pid))
            .unwrap()
            .lines()
            .any(|l| l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0"))
    };
    while !traced() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "strace did not attach"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = attach(w.pid, &tmp("attach-traced.vmmap"), &["--duration", "1s"]);
    tracer.kill().unwrap();
    tracer.wait().unwrap();
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already traced by process") && err.contains("strace"),
        "{err}"
    );
    w.finish();
}

#[test]
fn what_was_there_before_the_attach_is_counted_apart() {
    let bin = compile("attach_workers");
    let mut w = workers(&bin, "600000");
    let file = tmp("attach-before.vmmap");
    let v = Command::new(VMMAP)
        .arg("attach")
        .arg(w.pid.to_string())
        .arg("-o")
        .arg(&file)
        .args(["--duration", "2s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Attached once the snapshot at attach is in the file.
    let start = Instant::now();
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 10_000 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no snapshot at attach"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::util::signal(w.pid as u32, crate::util::libc_sig::SIGUSR1);
    let mut line = String::new();
    w.out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "freed");
    let o = v.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    w.finish();
    // The fixture's 100 old blocks, and at most one block per worker
    // allocated right before the hooks went in.
    let s = crate::trace::summary(&file);
    let before = s["frees_allocated_before_attach"].as_u64().unwrap();
    assert!(
        (100..=104).contains(&before),
        "{before} frees of older blocks"
    );
    assert_eq!(s["images"][0]["attached"], true);
    // Every region of the map at attach that no call made: "before attach".
    let regions: Value = serde_json::from_slice(&crate::trace::on_file(
        "trace",
        &file,
        &["regions", "--json"],
    ))
    .unwrap();
    let heap = regions
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "[heap]")
        .expect("a [heap] region");
    assert_eq!(heap["owner"], "before-attach", "{heap}");
}

#[test]
fn a_process_that_exits_while_attached_leaves_a_complete_file() {
    let bin = compile("attach_workers");
    let w = workers(&bin, "150000");
    let file = tmp("attach-exit.vmmap");
    // No --duration: vmmap ends with the process.
    let o = attach(w.pid, &file, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    w.finish();
    let s = crate::trace::summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "no END record: {s}");
    assert_eq!(check_window(&history(&file)).len(), 4);
}

/// Starts `cmd` (which prints "ready" first), attaches for a second once
/// it has, and returns what it printed after, with the trace file.
fn attach_to_program(mut cmd: Command, name: &str) -> (String, PathBuf) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{name} said {line:?}");
    let file = tmp(&format!("attach-{name}.vmmap"));
    let o = attach(child.id() as i32, &file, &["--duration", "1s"]);
    assert!(
        o.status.success(),
        "attaching to {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{name} ended with {st:?} after the attach");
    let s = crate::trace::summary(&file);
    assert!(s["allocations"].as_u64().unwrap() > 0, "{name}: {s}");
    (rest, file)
}

#[test]
fn real_programs_keep_running_and_answering_after_an_attach() {
    // python3: a loop building dicts; its result after the detach.
    let py = require_tool("/usr/bin/python3", "python3");
    let mut cmd = Command::new(py);
    cmd.args([
        "-c",
        "import time\nprint('ready', flush=True)\nt = 0\nfor i in range(50):\n    d = {str(k): [k] * 10 for k in range(3000)}\n    t += sum(len(v) for v in d.values())\n    time.sleep(0.05)\nprint('total', t)",
    ]);
    let (rest, _) = attach_to_program(cmd, "python3");
    assert_eq!(rest.trim(), "total 1500000");
    // node (a non-PIE executable whose malloc is a canonical PLT entry):
    // objects and Buffers.
    let node = require_tool("/usr/bin/node", "nodejs");
    let mut cmd = Command::new(node);
    cmd.args([
        "-e",
        "console.log('ready'); let t = 0, n = 0; const i = setInterval(() => { const a = []; for (let k = 0; k < 20000; k++) a.push({k, s: 'x' + k}); t += a.length + Buffer.alloc(1 << 20).length; if (++n == 50) { clearInterval(i); console.log('total', t); } }, 50);",
    ]);
    let (rest, _) = attach_to_program(cmd, "node");
    assert_eq!(rest.trim(), format!("total {}", 50 * (20000 + (1 << 20))));
}

#[test]
fn redis_under_load_keeps_answering_after_an_attach() {
    let server = require_tool("/usr/bin/redis-server", "redis-server");
    let bench = require_tool("/usr/bin/redis-benchmark", "redis-tools");
    let cli = require_tool("/usr/bin/redis-cli", "redis-tools");
    // A port of its own: a fixed one meets another run's server.
    let port = crate::real_programs::free_port().to_string();
    let port = port.as_str();
    let mut srv = Command::new(server)
        .args([
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The server must not outlive a failed assertion.
    let srv = Killed(&mut srv);
    let start = Instant::now();
    while !Command::new(&cli)
        .args(["-p", port, "ping"])
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "redis did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut load = Command::new(bench)
        .args(["-p", port, "-n", "200000", "-q", "-t", "set,get"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let file = tmp("attach-redis.vmmap");
    let o = attach(srv.0.id() as i32, &file, &["--duration", "1s"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(load.wait().unwrap().success());
    let set = Command::new(&cli)
        .args(["-p", port, "set", "k", "v"])
        .output()
        .unwrap();
    let get = Command::new(&cli)
        .args(["-p", port, "get", "k"])
        .output()
        .unwrap();
    let _ = Command::new(&cli)
        .args(["-p", port, "shutdown", "nosave"])
        .output();
    drop(srv);
    assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "OK");
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v");
    // jemalloc's allocations went through the hooks.
    let s = crate::trace::summary(&file);
    assert!(s["allocations"].as_u64().unwrap() > 1000, "{s}");
}

/// `tests/fixtures/attach_workers.c` started in a mount namespace of its
/// own where the agent's directory is an empty tmpfs, after `mounts`
/// (more shell commands run in that namespace first), for long enough to
/// be killed.
fn workers_hidden_from_the_agent(mounts: &str) -> Workers {
    let unshare = require_tool("unshare", "util-linux");
    let bin = compile("attach_workers");
    let agent = crate::trace::agent();
    let dir = agent.parent().unwrap().to_str().unwrap().to_string();
    let mut child = Command::new(unshare)
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs none {dir} {mounts} && exec {} 100000000",
            bin.display()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, pid) = ready(&mut child);
    Workers { child, out, pid }
}

/// The process's descriptors: number and what each one is.
fn descriptors(pid: i32) -> Vec<(String, String)> {
    let mut fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let to = std::fs::read_link(e.path()).unwrap();
            (
                e.file_name().into_string().unwrap(),
                to.display().to_string(),
            )
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn a_process_that_cannot_see_the_agent_gets_it_from_memory_and_keeps_its_descriptors() {
    let w = workers_hidden_from_the_agent("");
    let pid = w.pid;
    let mut child = w.child;
    let _killed = Killed(&mut child);
    let agent = crate::trace::agent();
    let inside = PathBuf::from(format!("/proc/{pid}/root{}", agent.display()));
    let inside_dir = inside.parent().unwrap().to_path_buf();
    assert!(!inside.exists(), "the namespace sees the agent: no test");
    let before = descriptors(pid);
    // Twice: the second attach finds the agent the first one loaded.
    for round in 0..2 {
        let file = tmp(&format!("attach-ns-{round}.vmmap"));
        let o = attach(pid, &file, &["--duration", "1s"]);
        assert!(
            o.status.success(),
            "attach {round}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(check_window(&history(&file)).len(), 4, "attach {round}");
        assert_eq!(descriptors(pid), before, "after attach {round}");
        memfd_agent_apart(&file);
        // Nothing was copied into the namespace's files.
        assert_eq!(std::fs::read_dir(&inside_dir).unwrap().count(), 0);
    }
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let copies = maps
        .lines()
        .filter(|l| l.ends_with("/memfd:libvmmap_agent.so (deleted)") && l.contains(" 00000000 "))
        .count();
    assert_eq!(copies, 1, "the agent is loaded once: {maps}");
    // Still running (its descriptors are those of a live process).
    assert_eq!(descriptors(pid), before);
}

/// A recording whose agent was loaded from a memfd: the views read it,
/// the agent's image (named by the memfd, a path that means another file
/// in vmmap's own process) is shown as the agent's, and no stack of the
/// program's names it.
fn memfd_agent_apart(file: &std::path::Path) {
    use crate::trace::on_file;
    let snap: Value = serde_json::from_slice(&on_file("open", file, &["--json"])).unwrap();
    let mut images = Vec::new();
    fn walk<'v>(r: &'v Value, out: &mut Vec<&'v Value>) {
        if r["path"]
            .as_str()
            .is_some_and(|p| p.contains("memfd:libvmmap_agent"))
        {
            out.push(r);
        }
        for c in r["children"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    for r in snap["regions"].as_array().expect("regions") {
        walk(r, &mut images);
    }
    assert!(!images.is_empty(), "the memfd agent is not in the snapshot");
    for r in images {
        assert_eq!(r["owner"]["kind"], "agent", "{r}");
    }
    let tree =
        String::from_utf8(on_file("trace", file, &["calltree", "--min-percent", "0"])).unwrap();
    assert!(tree.contains("work"), "{tree}");
    assert!(
        !tree.contains("vmmap_agent") && !tree.contains("/proc/self/fd"),
        "the agent in the program's stacks: {tree}"
    );
    let report = tmp("attach-ns-report.html");
    let o = Command::new(VMMAP)
        .args(["report"])
        .arg(file)
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_process_that_cannot_see_the_agent_nor_a_proc_is_refused() {
    let w = workers_hidden_from_the_agent("&& mount -t tmpfs none /proc");
    let pid = w.pid;
    let mut child = w.child;
    let _killed = Killed(&mut child);
    let o = attach(pid, &tmp("attach-ns-noproc.vmmap"), &["--duration", "1s"]);
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("another mount namespace") && err.contains("no /proc mounted"),
        "{err}"
    );
    // Refused before anything was done to it.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(!maps.contains("libvmmap_agent"), "{maps}");
}

/// What `tests/fixtures/AttachEcho.java` answers to `n`.
fn echo_answer(n: u64) -> String {
    let strings: u64 = (0..n).map(|k| 1 + k.to_string().len() as u64).sum();
    format!("{n} {}", strings + (1 << 16))
}

#[test]
fn a_jvm_keeps_answering_through_an_attach_and_after() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let javac = require_tool("javac", "default-jdk-headless");
    let java = require_tool("java", "default-jdk-headless");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("attach-jvm");
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/AttachEcho.java");
    let o = Command::new(javac)
        .arg("-d")
        .arg(&dir)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut child = Command::new(java)
        .arg("-cp")
        .arg(&dir)
        .arg("AttachEcho")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let input = child.stdin.take().unwrap();
    let output = BufReader::new(child.stdout.take().unwrap());
    let jvm = Killed(&mut child);
    let talk = Mutex::new((input, output));
    let ask = |n: u64| {
        let mut t = talk.lock().unwrap();
        writeln!(t.0, "{n}").unwrap();
        t.0.flush().unwrap();
        let mut line = String::new();
        t.1.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), echo_answer(n), "the JVM answered {n} wrongly");
    };
    {
        let mut line = String::new();
        talk.lock().unwrap().1.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    ask(1000);
    // Questions all through the attach, each answer checked.
    let done = AtomicBool::new(false);
    let asked = std::thread::scope(|s| {
        let asking = s.spawn(|| {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                ask(1000 + n % 50);
                n += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        });
        let file = tmp("attach-jvm.vmmap");
        let o = attach(pid, &file, &["--duration", "2s"]);
        done.store(true, Ordering::Relaxed);
        let asked = asking.join().unwrap();
        assert!(
            o.status.success(),
            "attaching to the JVM: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("; detached ->"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // The file loads; the direct buffers' mallocs of the window are
        // in it, through the JVM's own allocation path.
        let s = crate::trace::summary(&file);
        assert!(s["allocations"].as_u64().unwrap() > 0, "{s}");
        let buffers = crate::trace::ops(&history(&file), "malloc", 1 << 16).len();
        assert!(buffers > 0, "no 64 KiB malloc of a direct buffer: {s}");
        asked
    });
    assert!(asked > 10, "only {asked} questions answered while attached");
    // After the detach: it runs on and answers as before.
    for n in [0, 1, 999, 5000, 20000] {
        ask(n);
    }
    // The end of its input ends it, as it would have.
    let (input, _output) = talk.into_inner().unwrap();
    drop(input);
    let st = jvm.0.wait().unwrap();
    assert!(st.success(), "the JVM ended with {st:?}");
}
