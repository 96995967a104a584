//! The tracer must never change what the program does: programs on
//! another allocator, programs that close every descriptor, and what the
//! program sees of its environment, each run plain and under `vmmap run`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::trace::{
    agent, build, fixture, history, on_file, ops, run_plain, same_behaviour, summary, tmp, torture,
    trace_path,
};
use crate::util::{output_within, require_library, require_tool, starting_processes, VMMAP};

/// `vmmap run -q -i 0 -o FILE -- prog args` with `env` set for vmmap (and
/// so for the program, as the user's own settings).
fn run_traced_env(env: &[(&str, &str)], prog: &Path, args: &[&str]) -> (Output, PathBuf) {
    let out = trace_path(prog.file_name().unwrap().to_str().unwrap());
    let o = run_with(&["-q", "-o", out.to_str().unwrap()], prog, args, env);
    (o, out)
}

fn run_plain_env(env: &[(&str, &str)], prog: &Path, args: &[&str]) -> Output {
    let _g = starting_processes();
    Command::new(prog)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the program")
}

fn allocators_fixture(name: &str, libs: &[&str]) -> PathBuf {
    let src = fixture("allocators.c");
    let mut cmd = vec!["cc", "-O1", "-g", src.to_str().unwrap()];
    cmd.extend_from_slice(libs);
    cmd.push("-ldl");
    build(name, &cmd)
}

/// Every call of the allocators fixture is in the trace, once, with its
/// size.
fn check_allocator_trace(file: &Path, what: &str) {
    let h = history(file);
    for (op, size, n) in [
        ("malloc", 7001, 1),
        ("calloc", 7002, 1),
        ("realloc", 7003, 1),
        ("memalign", 7004, 1),
        ("memalign", 7005, 1),
        ("memalign", 7168, 1),
        ("memalign", 7006, 1),
        ("realloc", 7008, 1),
        ("malloc", 7010, 1000),
        ("realloc", 7009, 1000),
    ] {
        assert_eq!(ops(&h, op, size).len(), n, "{what}: {op}({size})");
    }
    let s = summary(file);
    assert_eq!(s["images"][0]["ended"], true, "{what}: {s}");
}

#[test]
fn a_program_linked_with_jemalloc_runs_on_jemalloc_and_is_traced() {
    require_library("libjemalloc.so", "libjemalloc-dev");
    let prog = allocators_fixture("allocators-jemalloc", &["-ljemalloc"]);
    let plain = run_plain(&prog, &["jemalloc"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let (o, file) = run_traced_env(&[], &prog, &["jemalloc"]);
    same_behaviour(&plain, &o);
    check_allocator_trace(&file, "jemalloc");
}

#[test]
fn programs_with_a_preloaded_allocator_run_on_it_and_are_traced() {
    let prog = allocators_fixture("allocators", &[]);
    for (name, lib, package) in [
        ("tcmalloc", "libtcmalloc.so.4", "libgoogle-perftools4"),
        ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
        ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ] {
        let lib = require_library(lib, package);
        let env = [("LD_PRELOAD", lib.to_str().unwrap())];
        let plain = run_plain_env(&env, &prog, &[name]);
        assert_eq!(plain.status.code(), Some(0), "{name}: {plain:?}");
        let (o, file) = run_traced_env(&env, &prog, &[name]);
        same_behaviour(&plain, &o);
        check_allocator_trace(&file, name);
    }
}

/// Sends one command in RESP and reads the reply (one line is enough for
/// the commands used here).
fn redis(stream: &mut TcpStream, args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8];
    while !reply.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => reply.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// Starts redis-server with `cmd` on a free loopback port, stores a few
/// values, shuts it down and returns its exit status and the replies.
fn drive_redis(mut cmd: Command) -> (ExitStatus, Vec<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let dir = tmp().join(format!("redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _g = starting_processes();
    let mut child = cmd
        .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())) {
            break s;
        }
        if let Some(st) = child.try_wait().unwrap() {
            return (st, Vec::new());
        }
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let big = "v".repeat(100_000);
    let mut replies = vec![redis(&mut stream, &["PING"])];
    for i in 0..50 {
        replies.push(redis(&mut stream, &["SET", &format!("key{i}"), &big]));
    }
    replies.push(redis(&mut stream, &["DBSIZE"]));
    let _ = redis(&mut stream, &["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redis-server did not exit after SHUTDOWN");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, replies)
}

#[test]
fn debians_redis_server_runs_and_is_traced() {
    let server = require_tool("redis-server", "redis-server");
    let (plain, plain_replies) = drive_redis(Command::new(&server));
    assert_eq!(plain.code(), Some(0), "plain redis-server");
    assert_eq!(plain_replies.len(), 52);
    let file = trace_path("redis");
    let mut cmd = Command::new(VMMAP);
    cmd.args(["run", "-q", "-i", "0", "--agent"])
        .arg(agent())
        .arg("-o")
        .arg(&file)
        .arg("--")
        .arg(&server);
    let (traced, replies) = drive_redis(cmd);
    assert_eq!(traced.code(), plain.code(), "redis-server under vmmap run");
    assert_eq!(replies, plain_replies);
    let s = summary(&file);
    assert!(
        s["calls"]["malloc"].as_u64().unwrap_or(0) >= 50,
        "redis-server's allocations are in the trace: {s}"
    );
    let h = history(&file);
    assert!(
        h.iter()
            .any(|e| e["op"] == "malloc" && e["size"].as_u64().unwrap_or(0) >= 100_000),
        "the stored values were allocated through the hooks"
    );
}

#[test]
fn a_program_that_closes_every_descriptor_keeps_its_file_and_its_trace() {
    let src = fixture("closefds.c");
    let prog = build("closefds", &["cc", "-O1", "-g", src.to_str().unwrap()]);
    let expected: String = (0..4)
        .map(|i| format!("line {i} of the program's own file\n"))
        .collect();
    let plain_file = tmp().join(format!("closefds-plain-{}", std::process::id()));
    let plain = run_plain(&prog, &[plain_file.to_str().unwrap()]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    assert_eq!(std::fs::read_to_string(&plain_file).unwrap(), expected);
    let own = tmp().join(format!("closefds-traced-{}", std::process::id()));
    let (o, file) = run_traced_env(&[], &prog, &[own.to_str().unwrap()]);
    same_behaviour(&plain, &o);
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&own).unwrap()),
        expected,
        "the program's own file holds exactly what it wrote"
    );
    let h = history(&file);
    for size in 8001..8018u64 {
        assert_eq!(ops(&h, "malloc", size).len(), 1, "malloc({size})");
    }
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
}

/// A program under a seccomp filter that kills the process on a call it
/// never makes (`membarrier`, which the agent's biased lanes need) runs
/// as it does plain: the filter is in place when the agent starts in the
/// exec'd image, which sees it and does without the call. The child's
/// allocations are all in the trace.
#[test]
fn a_program_under_a_killing_seccomp_filter_runs_unchanged() {
    let prog = build(
        "seccomp_kill",
        &[
            "cc",
            "-O1",
            "-g",
            fixture("seccomp_kill.c").to_str().unwrap(),
        ],
    );
    let plain = run_plain(&prog, &[]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let (o, file) = run_traced_env(&[], &prog, &[]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    for size in 7001..7017u64 {
        assert_eq!(ops(&h, "malloc", size).len(), 1, "malloc({size})");
    }
}

/// `env` under `vmmap run` prints what it prints plain: the same
/// variables in the same order, the user's LD_PRELOAD kept.
#[test]
fn the_program_sees_its_own_environment() {
    let env = require_tool("env", "coreutils");
    let lib = require_library("libmimalloc.so.2", "libmimalloc2.0");
    for set in [
        vec![],
        vec![("LD_PRELOAD", lib.to_str().unwrap())],
        vec![("LD_PRELOAD", "")],
    ] {
        let plain = run_plain_env(&set, &env, &[]);
        let (o, _) = run_traced_env(&set, &env, &[]);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&plain.stdout),
            "with {set:?}"
        );
    }
    // A descendant that is not traced sees no trace of the tracer either.
    let sh = require_tool("sh", "dash");
    let args = ["-c", "env; true"];
    let plain = run_plain_env(&[], &sh, &args);
    let (o, _) = run_traced_env(&[], &sh, &args);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&plain.stdout)
    );
}

/// A vfork child that execs, then one that calls `_exit`: the parent's
/// events after them are recorded and its trace ends cleanly.
#[test]
fn a_vfork_child_that_exits_leaves_the_parent_traced() {
    let prog = torture();
    let plain = run_plain(&prog, &["vfork_exit"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let (o, file) = run_traced_env(&[], &prog, &["vfork_exit"]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    for (size, n) in [(3008, 1), (3009, 1), (3010, 3)] {
        assert_eq!(ops(&h, "malloc", size).len(), n, "malloc({size})");
    }
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
}

/// A preloaded wrapper that defines only malloc, calloc, realloc and free:
/// the aligned calls, which it lacks, still work and are recorded.
#[test]
fn a_wrapper_without_aligned_calls_keeps_them_working() {
    let wrapper = build(
        "libwrapmalloc.so",
        &[
            "cc",
            "-O1",
            "-shared",
            "-fPIC",
            fixture("wrapmalloc.c").to_str().unwrap(),
        ],
    );
    let prog = build(
        "aligned",
        &["cc", "-O1", "-g", fixture("aligned.c").to_str().unwrap()],
    );
    let env = [("LD_PRELOAD", wrapper.to_str().unwrap())];
    let plain = run_plain_env(&env, &prog, &[]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let (o, file) = run_traced_env(&env, &prog, &[]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    for size in 7101..=7105u64 {
        assert_eq!(ops(&h, "memalign", size).len(), 1, "aligned({size})");
    }
}

/// A library whose constructor and destructor allocate, opened and closed
/// by the program: those calls are the program's, recorded with the
/// `dlopen` (or `dlclose`) call and the program's own caller in their
/// stacks.
#[test]
fn allocations_inside_dlopen_and_dlclose_are_recorded_with_their_call() {
    let src = fixture("dlopen_ctor.c");
    let src = src.to_str().unwrap();
    let lib = build(
        "libdlopen_ctor.so",
        &["cc", "-O1", "-g", "-DLIB", "-shared", "-fPIC", src],
    );
    let prog = build("dlopen_ctor", &["cc", "-O1", "-g", src, "-ldl"]);
    let lib = lib.to_str().unwrap();
    let plain = run_plain(&prog, &[lib]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let (o, file) = run_traced_env(&[], &prog, &[lib]);
    same_behaviour(&plain, &o);
    let v: serde_json::Value =
        serde_json::from_slice(&on_file("trace", &file, &["leaks", "--top", "0", "--json"]))
            .unwrap();
    let leaks = v["leaks"].as_array().expect("leaks");
    let stack_of = |bytes: u64| -> Vec<String> {
        let l: Vec<_> = leaks.iter().filter(|l| l["bytes"] == bytes).collect();
        assert_eq!(l.len(), 1, "one leak of {bytes} bytes wanted: {v}");
        l[0]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // The constructor's malloc(4241) and calloc(3, 1414), the destructor's
    // malloc(2929).
    for (bytes, call) in [(4241, "dlopen"), (4242, "dlopen"), (2929, "dlclose")] {
        let frames = stack_of(bytes);
        assert!(
            frames.iter().any(|f| f.contains(call)),
            "{bytes} bytes: no {call} in the stack {frames:?}"
        );
        let want = if call == "dlopen" {
            "open_library"
        } else {
            "main"
        };
        assert!(
            frames.iter().any(|f| f == want),
            "{bytes} bytes: the stack {frames:?} does not reach {want}"
        );
    }
}

/// Sums of the `Size` and `Rss` lines (KiB) of `/proc/PID/smaps`, over the
/// mappings `keep` selects by their header line.
fn smaps_kib(pid: &str, keep: impl Fn(&str) -> bool) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    let (mut size, mut rss, mut on) = (0, 0, false);
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("Size:") if on => size += w.next().unwrap().parse::<u64>().unwrap(),
            Some("Rss:") if on => rss += w.next().unwrap().parse::<u64>().unwrap(),
            Some(first) if first.contains('-') && !first.ends_with(':') => on = keep(line),
            _ => {}
        }
    }
    (size, rss)
}

/// Starts `footprint sleep` (under `vmmap run` if `traced`), waits for its
/// READY line, measures it with `measure`, then lets it finish.
fn measure_sleeper<T>(traced: bool, measure: impl Fn(&str) -> T) -> T {
    let prog = build(
        "footprint",
        &["cc", "-O1", "-g", fixture("footprint.c").to_str().unwrap()],
    );
    measure_ready(&prog, &["sleep"], traced, measure)
}

/// Starts `prog ARGS` (under `vmmap run` if `traced`), which prints
/// `READY pid=N` then waits for its stdin to close; measures it with
/// `measure` meanwhile, then lets it finish.
fn measure_ready<T>(prog: &Path, args: &[&str], traced: bool, measure: impl Fn(&str) -> T) -> T {
    measure_ready_file(prog, args, traced, measure).0
}

/// [`measure_ready`], and the recording's path when `traced`.
fn measure_ready_file<T>(
    prog: &Path,
    args: &[&str],
    traced: bool,
    measure: impl Fn(&str) -> T,
) -> (T, PathBuf) {
    use std::io::BufRead;
    let file = trace_path(prog.file_name().unwrap().to_str().unwrap());
    let _g = starting_processes();
    let mut cmd = if traced {
        crate::trace::run_command(&file, prog)
    } else {
        Command::new(prog)
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read READY");
    let pid = line
        .trim()
        .strip_prefix("READY pid=")
        .unwrap_or_else(|| panic!("no READY line: {line:?}"))
        .to_string();
    // The agent's writer has written its first chunks by now.
    std::thread::sleep(Duration::from_millis(500));
    let m = measure(&pid);
    drop(child.stdin.take());
    let st = child.wait().expect("wait for the fixture");
    assert!(st.success(), "the fixture failed: {st}");
    (m, file)
}

/// The agent's own memory, at default settings, as the kernel counts it
/// in the traced process: at most 16 MiB of address space and 8 MiB
/// resident, its library image included (the difference with the same
/// program run plain; and the image by its path).
#[test]
fn the_agent_takes_little_of_the_programs_memory() {
    let all = |_: &str| true;
    let plain = measure_sleeper(false, |pid| smaps_kib(pid, all));
    let agent_path = agent();
    let agent_path = agent_path.to_str().unwrap().to_string();
    let (traced, image) = measure_sleeper(true, |pid| {
        (
            smaps_kib(pid, all),
            smaps_kib(pid, |l| l.ends_with(agent_path.as_str())),
        )
    });
    let (size, rss) = (traced.0 - plain.0, traced.1.saturating_sub(plain.1));
    eprintln!(
        "agent footprint: {size} KiB of address space, {rss} KiB resident (image {} KiB, {} KiB resident)",
        image.0, image.1
    );
    assert!(image.0 > 0, "the agent's library is not mapped");
    assert!(
        size <= 16 << 10,
        "the agent takes {size} KiB of the program's address space (at most 16 MiB)"
    );
    assert!(
        rss <= 8 << 10,
        "the agent keeps {rss} KiB of the program's memory resident (at most 8 MiB)"
    );
}

/// What the agent holds for each thread of a program, from `threads N`
/// (N threads alive at once, each having allocated): the difference with
/// the same program run plain, at 1 and at 500 threads. A lane's caches
/// are the kernel's zero pages until entries land in them: the agent used
/// to clear each thread's at once, which made about 410 KiB a thread
/// resident.
#[test]
fn the_agent_touches_a_new_threads_caches_only_as_it_uses_them() {
    let prog = build(
        "threads",
        &[
            "cc",
            "-O1",
            "-g",
            "-pthread",
            fixture("threads.c").to_str().unwrap(),
        ],
    );
    let all = |_: &str| true;
    let agent = |n: &str| {
        let plain = measure_ready(&prog, &[n], false, |pid| smaps_kib(pid, all));
        let traced = measure_ready(&prog, &[n], true, |pid| smaps_kib(pid, all));
        (
            traced.0.saturating_sub(plain.0),
            traced.1.saturating_sub(plain.1),
        )
    };
    let one = agent("1");
    let many = agent("500");
    let per_thread = (
        many.0.saturating_sub(one.0) / 499,
        many.1.saturating_sub(one.1) / 499,
    );
    eprintln!(
        "agent footprint: 1 thread {} KiB of address space, {} KiB resident; 500 threads {} KiB, {} KiB; a thread {} KiB, {} KiB",
        one.0, one.1, many.0, many.1, per_thread.0, per_thread.1
    );
    assert!(
        per_thread.1 <= 320,
        "the agent keeps {} KiB resident for each thread",
        per_thread.1
    );
}

/// The agent's footprint with 1, 50 and 500 threads alive at once, each
/// having allocated (`threads N`): its own memory, as the recording's exit
/// snapshot counts it apart ("vmmap agent": its image, heap, lanes, thread
/// records, writer stack), holds at most 16 MiB of address space and
/// 8 MiB resident, whatever the number of threads. A thread holds a
/// 64-byte record; the caches and buffers are in lanes threads lease for
/// each record, as many as record at the same moment (docs/tracing.md,
/// "Footprint"). With a buffer and caches per thread it was 56 MiB and
/// 42 MiB at 500 threads (291 and 119 MiB before the caches were cut).
///
/// The whole process traced minus untraced (`/proc/PID/smaps`) is bounded
/// too, at 16 MiB either way: it also holds what the program does
/// differently under the agent (more glibc arenas when its 500 threads
/// contend, deeper stacks in the hooks), which read 5.6 to 11.3 MiB
/// resident from run to run.
#[test]
fn the_agent_holds_500_threads_within_a_bounded_footprint() {
    let prog = build(
        "threads",
        &[
            "cc",
            "-O1",
            "-g",
            "-pthread",
            fixture("threads.c").to_str().unwrap(),
        ],
    );
    let all = |_: &str| true;
    let agent = |n: &str| {
        let plain = measure_ready(&prog, &[n], false, |pid| smaps_kib(pid, all));
        let (traced, file) = measure_ready_file(&prog, &[n], true, |pid| smaps_kib(pid, all));
        let snap: serde_json::Value =
            serde_json::from_slice(&on_file("open", &file, &["--json"])).unwrap();
        let kib = |col: &str| {
            snap["agent"][col]
                .as_u64()
                .unwrap_or_else(|| panic!("no agent {col} in the snapshot: {}", snap["agent"]))
                >> 10
        };
        let own = (kib("size"), kib("total_ws"));
        let more = (
            traced.0.saturating_sub(plain.0),
            traced.1.saturating_sub(plain.1),
        );
        (own, more)
    };
    let figures = ["1", "50", "500"].map(|n| (n, agent(n)));
    for (n, (own, more)) in figures {
        eprintln!(
            "agent footprint at {n} threads: its own memory {} KiB of address space, {} KiB \
             resident; the process traced minus plain {} KiB, {} KiB",
            own.0, own.1, more.0, more.1
        );
    }
    for (n, (own, more)) in figures {
        assert!(own.0 > 0, "no memory of the agent's counted at {n} threads");
        assert!(
            own.0 <= 16 << 10 && own.1 <= 8 << 10,
            "with {n} threads the agent's own memory takes {} KiB of address space and {} KiB \
             resident (at most 16 and 8 MiB)",
            own.0,
            own.1
        );
        assert!(
            more.0 <= 16 << 10 && more.1 <= 16 << 10,
            "with {n} threads the process takes {} KiB more address space and {} KiB more \
             resident traced than plain (at most 16 MiB each)",
            more.0,
            more.1
        );
    }
}

/// A program limited to 64 MiB of address space (`RLIMIT_AS`) allocates
/// nearly as much under the agent as without it: it loses at most 12 MiB
/// (the agent's heap, buffers, writer stack and image), and runs to the
/// end with every malloc recorded.
#[test]
fn a_program_under_a_64_mib_address_space_limit_still_allocates() {
    let prog = build(
        "footprint",
        &["cc", "-O1", "-g", fixture("footprint.c").to_str().unwrap()],
    );
    let mib = |o: &Output| -> u64 {
        let s = String::from_utf8_lossy(&o.stdout);
        s.trim()
            .strip_prefix("ALLOCATED ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no ALLOCATED line: {o:?}"))
    };
    let plain = run_plain(&prog, &["rlimit"]);
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    let (o, file) = run_traced_env(&[], &prog, &["rlimit"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let (p, t) = (mib(&plain), mib(&o));
    eprintln!("allocated under RLIMIT_AS 64 MiB: {p} MiB plain, {t} MiB traced");
    assert!(p >= 48, "plain: only {p} MiB under the limit");
    assert!(
        t + 12 >= p,
        "under the agent the program allocated {t} MiB, {p} MiB without it"
    );
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "{s}");
    assert!(
        s["calls"]["malloc"].as_u64().unwrap_or(0) >= t,
        "the trace lost mallocs: {s}"
    );
}

/// Children given an environment of their own (`posix_spawn` and
/// `posix_spawnp` with an `envp`, `vfork` then `execve` with one) hold no
/// trace of the tracer's variables: under `--follow-forks` they are
/// traced all the same, each into a file of its own that the run names
/// at its end and that holds the child's allocations exactly. Without
/// it, such a child sees nothing of the tracer and writes no file.
#[test]
fn children_with_an_environment_of_their_own_are_followed() {
    let src = fixture("spawn_env.c");
    let prog = build("spawn_env", &["cc", "-O0", "-g", src.to_str().unwrap()]);
    for (mode, follow) in [
        ("spawn", true),
        ("spawnp", true),
        ("vfork", true),
        ("spawn", false),
        ("vfork", false),
    ] {
        let what = format!("{mode}, follow {follow}");
        let dir = tmp().join(format!("spawn-env-{}-{mode}-{follow}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("s.vmmap");
        let o = {
            let _g = starting_processes();
            output_within(
                Command::new(VMMAP)
                    .args(["run", "-i", "0"])
                    .args(follow.then_some("--follow-forks"))
                    .arg("--agent")
                    .arg(agent())
                    .arg("-o")
                    .arg(&main)
                    .arg("--")
                    .arg(&prog)
                    .arg(mode)
                    .stdin(Stdio::null()),
                120,
            )
        };
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(o.status.success(), "{what}: {out}\n{err}");
        let pid: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("child "))
            .unwrap_or_else(|| panic!("{what}: no child line: {out}"))
            .parse()
            .unwrap();
        let child = dir.join(format!("s.{pid}.vmmap"));
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        if !follow {
            assert!(out.contains("preload no"), "{what}: {out}");
            assert_eq!(files, vec![main.clone()], "{what}");
            continue;
        }
        assert!(out.contains("preload yes"), "{what}: {out}");
        assert_eq!(files.len(), 2, "{what}: {files:?}");
        assert!(child.is_file(), "{what}: no {}: {files:?}", child.display());
        for f in [&main, &child] {
            assert!(
                err.contains(&format!("wrote {}", f.display())),
                "{what}: {} not named at the end:\n{err}",
                f.display()
            );
        }
        let s = summary(&child);
        assert_eq!(s["images"][0]["pid"].as_u64(), Some(pid), "{what}: {s}");
        assert_eq!(s["images"][0]["ended"], true, "{what}: {s}");
        let h = history(&child);
        let made = ops(&h, "malloc", 4321);
        assert_eq!(made.len(), 37, "{what}: the child's mallocs");
        for m in &made {
            assert_eq!(
                h.iter()
                    .filter(|e| e["op"] == "free" && e["ptr"] == m["ptr"])
                    .count(),
                1,
                "{what}: {m}"
            );
        }
    }
}

/// Followed processes in pid namespaces of their own (sandboxes, `unshare
/// -p`) are each pid 1 there: each keeps a file of its own (named by the
/// namespace too), with its images before and after its exec together,
/// and vmmap names each at the end.
#[test]
fn followed_processes_in_pid_namespaces_keep_files_of_their_own() {
    require_tool("unshare", "util-linux");
    let sh = require_tool("sh", "dash");
    let dir = tmp().join(format!("pidns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("t.vmmap");
    let script = "unshare -pf sh -c 'echo a $$; ls /' & \
                  unshare -pf sh -c 'echo b $$; ls /usr'; wait";
    let main_arg = main.to_str().unwrap();
    let o = run_with(
        &["--follow-forks", "-o", main_arg],
        &sh,
        &["-c", script],
        &[],
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("a 1\n") && out.contains("b 1\n"), "{out}");
    // Which file holds each `sh -c 'echo X $$; ...'`: one each, and in
    // it the image before the exec (unshare's child) and the shell.
    let mut shells = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let f = e.unwrap().path();
        let s = summary(&f);
        let images = s["images"].as_array().unwrap();
        let pids: std::collections::BTreeSet<_> =
            images.iter().map(|i| i["pid"].as_u64().unwrap()).collect();
        assert_eq!(
            pids.len(),
            1,
            "{}: two processes in one file: {s}",
            f.display()
        );
        let cmds: Vec<&str> = images
            .iter()
            .map(|i| i["cmdline"].as_str().unwrap())
            .collect();
        if cmds.iter().any(|c| c.starts_with("sh -c echo")) {
            assert_eq!(pids.iter().next(), Some(&1), "{cmds:?}");
            assert!(cmds[0].starts_with("unshare -pf"), "{cmds:?}");
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            assert!(name.starts_with("t.1-"), "{name}");
            assert!(
                err.contains(&format!("wrote {}", f.display()))
                    && err.contains("(pid 1 in pid namespace "),
                "{} not named at the end:\n{err}",
                f.display()
            );
            shells.push(cmds.last().unwrap().to_string());
        }
    }
    shells.sort();
    assert_eq!(
        shells,
        vec!["sh -c echo a $$; ls /", "sh -c echo b $$; ls /usr"],
        "{err}"
    );
}

/// `vmmap run -i 0 --agent AGENT ARGS -- PROG PROG_ARGS` with `env` set
/// (for vmmap, and so for the program, as the user's own settings).
pub(crate) fn run_with(
    args: &[&str],
    prog: &Path,
    prog_args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let _g = starting_processes();
    output_within(
        Command::new(VMMAP)
            .args(["run", "-i", "0", "--agent"])
            .arg(agent())
            .args(args)
            .arg("--")
            .arg(prog)
            .args(prog_args)
            .envs(env.iter().copied())
            .stdin(Stdio::null()),
        180,
    )
}

/// A program built with AddressSanitizer stopped at start under the agent
/// ("ASan runtime does not come first", exit 1) and, with snapshots only,
/// at exit ("LeakSanitizer does not work under ptrace", exit 1): the
/// first is refused with the reason, the second runs with no exit
/// snapshot, unless the leak check is off. Attaching is refused.
#[test]
fn programs_built_with_address_sanitizer_are_refused_or_run_unchanged() {
    let src = fixture("sanitized.c");
    let prog = build(
        "sanitized",
        &[
            "cc",
            "-fsanitize=address",
            "-g",
            "-O0",
            src.to_str().unwrap(),
        ],
    );
    let file = tmp().join(format!("sanitized-{}.vmmap", std::process::id()));
    let f = file.to_str().unwrap();
    // With the agent: refused, the program not started.
    let o = run_with(&["-q", "-o", f], &prog, &[], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(
        err.contains("AddressSanitizer") && err.contains("--snapshot-only"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "{o:?}");
    // Snapshots only: as plain, a leak reported as plain, no exit snapshot.
    for mode in [&[][..], &["leak"][..]] {
        let plain = run_plain(&prog, mode);
        let o = run_with(&["-q", "--snapshot-only", "-o", f], &prog, mode, &[]);
        same_behaviour(&plain, &o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no snapshot at exit"), "{mode:?}: {err}");
        if mode == ["leak"] {
            assert_ne!(plain.status.code(), Some(0), "{plain:?}");
            assert!(
                err.contains("SUMMARY: AddressSanitizer: 100 byte(s) leaked"),
                "{err}"
            );
        }
    }
    // The leak check turned off: the exit snapshot is taken again.
    let off = [("ASAN_OPTIONS", "detect_leaks=0")];
    let o = run_with(&["-q", "--snapshot-only", "-o", f], &prog, &[], &off);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("no snapshot at exit"));
    let t: serde_json::Value =
        serde_json::from_slice(&on_file("timeline", &file, &["--json"])).unwrap();
    assert_eq!(t["points"].as_array().map(Vec::len), Some(2), "{t}");
    // Attaching: refused, the process untouched.
    agent();
    let mut child = Command::new(&prog)
        .arg("hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, pid) = crate::attach::ready(&mut child);
    let o = output_within(
        Command::new(VMMAP).args(["attach", &pid.to_string(), "-o", f]),
        60,
    );
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("AddressSanitizer"));
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "sanitized 7\n");
    assert!(child.wait().unwrap().success());
}

/// A followed child's trace file has a name anyone can foresee
/// (`STEM.PID.vmmap`), often in a directory others may write to. Another
/// user put links there to a file of root's: root's traced children
/// appended their traces to it. A FIFO there would have held the program
/// in `open`. In a pid namespace of its own (pids from 1, nothing else
/// there), every name a child can take is planted first.
#[test]
fn planted_links_and_fifos_never_receive_a_followed_childs_trace() {
    let unshare = require_tool("unshare", "util-linux");
    let setpriv = require_tool("setpriv", "util-linux");
    let dir = tmp().join(format!("planted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = tmp().join(format!("planted-victim-{}", std::process::id()));
    std::fs::write(&victim, "root's own\n").unwrap();
    for pid in 1..=64 {
        let name = dir.join(format!("x.{pid}.vmmap"));
        let (tool, args): (&str, Vec<String>) = if pid % 2 == 1 {
            (
                "ln",
                vec![
                    "-s".into(),
                    victim.display().to_string(),
                    name.display().to_string(),
                ],
            )
        } else {
            ("mkfifo", vec![name.display().to_string()])
        };
        let st = Command::new(&setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", tool])
            .args(&args)
            .status()
            .unwrap();
        assert!(st.success(), "{tool} {args:?} as nobody");
    }
    let script = "/bin/true; /bin/echo one; /bin/echo two";
    let mut cmd = Command::new(&unshare);
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        VMMAP,
        "run",
        "-q",
        "--follow-forks",
        "--agent",
    ])
    .arg(agent())
    .arg("-o")
    .arg(dir.join("x.vmmap"))
    .args(["--", "/bin/sh", "-c", script])
    .stdin(Stdio::null());
    let o = output_within(&mut cmd, 120);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\ntwo\n");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's own\n");
    // The main file, made by vmmap, holds the shell.
    let s = summary(&dir.join("x.vmmap"));
    assert!(s["allocations"].as_u64() > Some(0), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&victim);
}

/// A FIFO as the trace file of a traced run: vmmap read back what it had
/// written (taking it from the FIFO's reader) and, at the end, waited for
/// ever. It is refused before anything starts, and left a FIFO.
#[test]
fn a_fifo_as_a_traced_runs_file_is_refused() {
    let fifo = tmp().join(format!("trace-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let st = Command::new(require_tool("mkfifo", "coreutils"))
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let o = run_with(
        &["-o", fifo.to_str().unwrap()],
        Path::new("/bin/true"),
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not a regular file") && err.contains("--snapshot-only"),
        "{err}"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let _ = std::fs::remove_file(&fifo);
}

/// The trace file removed while the program ran (a cleaner, the user):
/// vmmap said "wrote FILE" of a file that was not there.
#[test]
fn a_trace_file_removed_during_the_run_is_said_to_be_gone() {
    let file = tmp().join(format!("removed-{}.vmmap", std::process::id()));
    let script = format!("sleep 0.3; rm {}; sleep 0.3", file.display());
    let o = run_with(
        &["-o", file.to_str().unwrap()],
        Path::new("/bin/sh"),
        &["-c", &script],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("was removed or replaced while the program ran"),
        "{err}"
    );
    assert!(!err.contains("vmmap: wrote"), "{err}");
    assert!(!file.exists());
}

/// A program started with stdin, stdout or stderr closed finds it closed
/// under `vmmap run` too. Rust's runtime had opened /dev/null on it in
/// vmmap, and the program inherited that: `prog >&-` wrote into /dev/null
/// and succeeded, and its first `open` got 3 instead of the closed one.
#[test]
fn closed_standard_descriptors_stay_closed() {
    let sh = require_tool("/bin/sh", "dash");
    let dir = tmp().join("closed-stdio");
    std::fs::create_dir_all(&dir).unwrap();
    // Which of 0, 1 and 2 are open (each redirection is the builtin's
    // own, after the test).
    let script = r#"for fd in 0 1 2; do if [ -e /proc/$$/fd/$fd ]; then printf "$fd " >> "$1"; fi; done; echo >> "$1""#;
    let report = |closed: i32, traced: bool| -> (String, Option<i32>) {
        let file = dir.join(format!("fd{closed}-{traced}"));
        let _ = std::fs::remove_file(&file);
        let mut cmd = if traced {
            crate::trace::run_command(&trace_path("closed-stdio"), &sh)
        } else {
            Command::new(&sh)
        };
        cmd.args(["-c", script, "sh"]).arg(&file);
        // SAFETY: close() in the child before exec, async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                libc::close(closed);
                Ok(())
            });
        }
        let _g = starting_processes();
        let st = cmd.status().expect("start");
        (std::fs::read_to_string(&file).unwrap(), st.code())
    };
    for fd in 0..3 {
        let plain = report(fd, false);
        assert!(
            !plain.0.contains(&fd.to_string()) && plain.0.len() == 5,
            "plain, {fd} closed: {plain:?}"
        );
        assert_eq!(report(fd, true), plain, "descriptor {fd} closed");
    }
}

/// What the program inherits from whoever starts it is the same under
/// `vmmap run`: signal mask and dispositions, capabilities, limits,
/// scheduling, CPUs, namespaces, cgroup, umask, personality. Started here
/// with SIGUSR1 and SIGTERM blocked and SIGPIPE ignored: std's spawn had
/// unblocked every signal and given SIGPIPE its default action, so a
/// write to a closed pipe killed the program where it fails with EPIPE
/// plain. glibc's own two signals (32 and 33, SIGCANCEL and SIGSETXID)
/// are left out: glibc sets them up in any process once a second thread
/// exists (the agent's writer), whatever it started with.
#[test]
fn the_programs_process_attributes_are_unchanged() {
    let sh = require_tool("/bin/sh", "dash");
    let grep = require_tool("/usr/bin/grep", "grep");
    // grep reads its own status: a shell would clear its signal mask.
    let status = [
        "-E",
        "^(Umask|SigBlk|SigIgn|SigCgt|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Cpus_allowed_list|Mems_allowed_list)",
        "/proc/self/status",
    ];
    let script = r#"cat /proc/$$/limits /proc/$$/cgroup /proc/$$/oom_score_adj /proc/$$/timerslack_ns /proc/$$/personality
awk '{print "nice", $19, "prio", $18, "rt", $40, "policy", $41}' /proc/$$/stat
for n in /proc/$$/ns/*; do echo "$n $(readlink $n)"; done | sed "s|/proc/$$/||""#;
    let start = |cmd: &mut Command| -> String {
        // SAFETY: signal-mask and disposition calls in the child before
        // exec, async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(cmd, || {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                Ok(())
            });
        }
        let _g = starting_processes();
        let o = cmd.stdin(Stdio::null()).output().expect("start");
        assert!(o.status.success(), "{o:?}");
        // Without glibc's own signals.
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| match l.split_once(":\t") {
                Some((k @ ("SigIgn" | "SigCgt" | "SigBlk"), m)) => {
                    let m = u64::from_str_radix(m, 16).unwrap() & !(3 << 31);
                    format!("{k}:\t{m:016x}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect()
    };
    let plain =
        start(Command::new(&grep).args(status)) + &start(Command::new(&sh).args(["-c", script]));
    assert!(
        plain.contains("SigBlk:\t0000000000004200") && plain.contains("SigIgn:\t0000000000001000"),
        "{plain}"
    );
    assert!(
        plain.contains("Max open files") && plain.contains("ns/pid"),
        "{plain}"
    );
    let traced = |prog: &Path, args: &[&str]| {
        start(crate::trace::run_command(&trace_path("attributes"), prog).args(args))
    };
    let traced = traced(&grep, &status) + &traced(&sh, &["-c", script]);
    assert_eq!(traced, plain);
}

/// A disk that fills while the program runs: vmmap said "cannot write",
/// exited at once with 10 and left the program running on unwatched (its
/// output came after the shell's prompt), and its summary called the
/// program killed or crashed. Now it says so, takes no more snapshots,
/// ends as the program does, and the summary gives the cause.
#[test]
fn a_full_disk_leaves_the_program_running_to_its_end_under_watch() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/alloc_bench.c");
    let prog = build(
        "alloc_bench",
        &["cc", "-O2", "-pthread", src.to_str().unwrap()],
    );
    let args = ["1000000", "1", "4096", "c"];
    let plain = run_plain(&prog, &args);
    assert!(plain.status.success());
    let disk = crate::util::SmallFs::mount(tmp().join("full-disk"), "1m");
    let out = disk.0.join("run.vmmap");
    let traced = {
        let _g = starting_processes();
        output_within(
            Command::new(VMMAP)
                .args(["run", "-i", "50ms", "--agent"])
                .arg(agent())
                .arg("-o")
                .arg(&out)
                .arg("--")
                .arg(&prog)
                .args(args)
                .stdin(Stdio::null()),
            180,
        )
    };
    let err = String::from_utf8_lossy(&traced.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(traced.status.code(), Some(0), "{err}");
    // The summary gives that cause, not a crash.
    assert!(
        err.contains("is recorded up to where the file could not be written any more"),
        "{err}"
    );
    assert!(!err.contains("killed or crashed"), "{err}");
    // The same work done (the line ends with the time it took).
    let line = |o: &Output| {
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.split(" wall=").next().unwrap().to_string()
    };
    assert_eq!(line(&traced), line(&plain));
}

#[test]
fn a_recording_whose_name_now_leads_elsewhere_is_read_through_its_descriptor() {
    // The program (or another user, in a directory of theirs) puts a FIFO
    // under the trace's name while it runs. vmmap read its recording back
    // by that name, during the run and after it: it waited on the FIFO
    // for ever, deaf to SIGTERM, and a device there would have been
    // opened as root.
    let dir = crate::util::TempDir::new("renamed-trace");
    let out = dir.path().join("t.vmmap");
    let q = format!("'{}'", out.display());
    let script = format!("rm {q}; mkfifo {q}; sleep 0.6; echo done");
    let o = output_within(
        Command::new(VMMAP)
            .args(["run", "--agent"])
            .arg(agent())
            .arg("-o")
            .arg(&out)
            .args(["--", "/bin/sh", "-c", &script])
            .stdin(Stdio::null()),
        60,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(o.stdout, b"done\n");
    assert!(
        err.contains("removed or replaced while the program ran"),
        "{err}"
    );
    // The summary comes from the recording itself.
    assert!(err.contains("operations recorded"), "{err}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&out).unwrap().file_type().is_fifo());
}
