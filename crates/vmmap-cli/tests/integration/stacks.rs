//! Stacks of running threads are found without stopping them, any ptrace
//! step is bounded by one budget for the whole snapshot, and no thread of
//! the target is ever left stopped, even when vmmap is killed mid-way.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// The `spinners` fixture: 256 threads spinning in user space, three
/// blocked ones, the main thread in pause().
fn spinners() -> Fixture {
    let fx = Fixture::start_named_in_session("spinners");
    assert_eq!(fx.info["spinners"], "256");
    // READY comes once every thread has started, not once main and the
    // three blocked ones are inside their system calls: with 256 spinners
    // on the CPUs they can still be on their way there (runnable, so read
    // as running) when the snapshot comes. Wait until they sleep.
    let pid = fx.pid.to_string();
    let waiting = ["tid_read", "tid_sleep", "tid_cond"]
        .map(|k| fx.info[k].clone())
        .into_iter()
        .chain([pid]);
    for tid in waiting {
        let start = Instant::now();
        while task_stat(fx.pid, &tid).first().map(String::as_str) != Some("S") {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "thread {tid} never sleeps: {:?}",
                task_stat(fx.pid, &tid)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    fx
}

/// Fields after the command name of `/proc/PID/task/TID/stat`.
fn task_stat(pid: u32, tid: &str) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap_or_default();
    s.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn tids(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn tracer_of(pid: u32, tid: &str) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Run time of a thread in ns (`schedstat`'s first field).
fn run_ns(pid: u32, tid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
        .unwrap_or_else(|e| panic!("schedstat of {tid}: {e}"))
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat run time")
}

/// Fails unless every thread of `pid` is untraced, not in a tracing stop,
/// and (for the spinners) keeps using CPU time.
fn assert_all_running(pid: u32) {
    let all = tids(pid);
    assert_eq!(all.len(), 260, "main + 256 spinners + 3 blocked");
    for t in &all {
        let st = task_stat(pid, t);
        assert_ne!(
            st.first().map(String::as_str),
            Some("t"),
            "thread {t} left in a tracing stop"
        );
        assert_eq!(tracer_of(pid, t), 0, "thread {t} still traced");
    }
    let spinning: Vec<&String> = all
        .iter()
        .filter(|t| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{t}/comm"))
                .unwrap_or_default()
                .trim()
                == "spin"
        })
        .collect();
    assert_eq!(spinning.len(), 256);
    let before: HashMap<&String, u64> = spinning.iter().map(|t| (*t, run_ns(pid, t))).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stuck: Vec<&&String> = spinning
            .iter()
            .filter(|t| run_ns(pid, t) == before[*t])
            .collect();
        if stuck.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} spinning threads used no CPU time in 20 s (first: {})",
            stuck.len(),
            stuck[0]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn snapshot_within(pid: u32, extra: &[&str]) -> Value {
    let _g = starting_processes();
    let started = Instant::now();
    let out = output_within(
        Command::new(VMMAP)
            .arg(pid.to_string())
            .arg("--json")
            .args(extra)
            .stdin(Stdio::null()),
        60,
    );
    // A failure guard, not a benchmark (bench/snapshot.sh measures).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn stacks_by_tid(snap: &Value) -> HashMap<u64, &Value> {
    snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "stack")
        .filter_map(|r| Some((r["tid"].as_u64()?, r)))
        .collect()
}

fn source_counts(snap: &Value) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for t in snap["process"]["threads"].as_array().unwrap() {
        *n.entry(t["stack_pointer_source"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    n
}

#[test]
fn stacks_of_spinning_threads_are_found_without_stopping_them() {
    let fx = spinners();
    let snap = snapshot_within(fx.pid, &[]);
    let threads = snap["process"]["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 260);
    let counts = source_counts(&snap);
    assert_eq!(
        counts.get("syscall"),
        Some(&4),
        "main and the blocked threads: {counts:?}"
    );
    assert_eq!(
        counts.get("tcb"),
        Some(&256),
        "every spinner by its TCB: {counts:?}"
    );
    let stacks = stacks_by_tid(&snap);
    for t in threads {
        let tid = t["tid"].as_u64().unwrap();
        let s = stacks
            .get(&tid)
            .unwrap_or_else(|| panic!("no stack for {t}"));
        if tid == u64::from(fx.pid) {
            assert_eq!(s["path"], "[stack]");
        } else {
            assert!(
                s["details"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Thread {tid} (")),
                "{s}"
            );
            assert_eq!(s["sub_blocks"][0]["details"], "guard page", "{s}");
        }
    }
    for name in ["read", "sleep", "cond"] {
        let tid = fx.tid(name);
        let t = threads
            .iter()
            .find(|t| t["tid"].as_u64() == Some(tid))
            .unwrap();
        assert_eq!(t["stack_pointer_source"], "syscall", "{t}");
    }
    assert!(
        !snap["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("spin")),
        "{}",
        snap["warnings"]
    );
    assert_all_running(fx.pid);
}

#[test]
fn a_zero_ptrace_budget_says_which_threads_it_did_not_reach() {
    let fx = spinners();
    // Without reading memory there is no TCB to find: ptrace would be
    // next, and a budget of 0 ms reaches no thread.
    let snap = snapshot_within(fx.pid, &["--no-read-memory", "--ptrace-budget-ms", "0"]);
    let counts = source_counts(&snap);
    assert_eq!(counts.get("syscall"), Some(&4), "{counts:?}");
    assert_eq!(counts.get("deadline"), Some(&256), "{counts:?}");
    let warnings = snap["warnings"].as_array().unwrap();
    let budget: Vec<&str> = warnings
        .iter()
        .filter_map(Value::as_str)
        .filter(|w| w.contains("ptrace budget"))
        .collect();
    assert!(!budget.is_empty(), "{warnings:?}");
    assert!(
        budget.iter().any(|w| w.contains("256 running threads")),
        "{budget:?}"
    );
    // Their stacks are still Stack, by shape, with a lower confidence.
    let by_shape: Vec<&Value> = snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "stack" && r["tid"].is_null())
        .collect();
    assert_eq!(by_shape.len(), 256);
    for r in by_shape {
        assert!(
            r["details"].as_str().unwrap().contains("TID unknown"),
            "{r}"
        );
        assert_eq!(r["confidence"], "low", "{r}");
    }
    assert_all_running(fx.pid);

    // A short budget: threads seized but not yet stopped when it runs out
    // are let go (by the kernel, as the tracer thread exits), not waited for.
    let snap = snapshot_within(fx.pid, &["--no-read-memory", "--ptrace-budget-ms", "20"]);
    let counts = source_counts(&snap);
    assert_eq!(
        counts.get("ptrace").unwrap_or(&0) + counts.get("deadline").unwrap_or(&0),
        256,
        "{counts:?}"
    );
    assert_all_running(fx.pid);
}

#[test]
fn killing_vmmap_while_it_interrupts_threads_leaves_none_stopped() {
    let fx = spinners();
    let _g = starting_processes();
    let all = tids(fx.pid);
    let mut caught = 0;
    for _attempt in 0..10 {
        // No memory reading: every spinner goes to ptrace, with a budget
        // far longer than the test.
        let mut child = Command::new(VMMAP)
            .arg(fx.pid.to_string())
            .args(["--json", "--no-read-memory", "--ptrace-budget-ms", "60000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vmmap");
        let me = child.id();
        let traced = loop {
            if child.try_wait().expect("wait").is_some() {
                break false;
            }
            // TracerPid names the tracing thread, one of vmmap's.
            if all.iter().any(|t| {
                let tracer = tracer_of(fx.pid, t);
                tracer != 0 && std::path::Path::new(&format!("/proc/{me}/task/{tracer}")).exists()
            }) {
                break true;
            }
        };
        if traced {
            child.kill().expect("SIGKILL vmmap");
            let st = child.wait().expect("wait");
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&st),
                Some(9),
                "vmmap was killed mid-collection"
            );
            caught += 1;
            break;
        }
    }
    assert!(
        caught > 0,
        "vmmap never had a thread of the target traced while we watched"
    );
    assert_all_running(fx.pid);
}

/// `vmmap ps` lists processes from their status files: it never stops a
/// thread nor reads a process's memory, whatever runs (strace watches).
#[test]
fn ps_never_ptraces() {
    let fx = spinners();
    let _g = starting_processes();
    let dir = TempDir::new("ps-strace");
    let log = dir.path().join("strace.log");
    let out = output_within(
        Command::new(require_tool("strace", "strace"))
            .args(["-f", "-qq", "-e", "trace=ptrace,process_vm_readv", "-o"])
            .arg(&log)
            .args([VMMAP, "ps"])
            .stdin(Stdio::null()),
        60,
    );
    assert!(
        out.status.success(),
        "strace vmmap ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {} ", fx.pid)),
        "the spinning fixture is listed"
    );
    let calls = std::fs::read_to_string(&log).expect("strace log");
    assert!(
        !calls.contains("ptrace(") && !calls.contains("process_vm_readv("),
        "{calls}"
    );
}
