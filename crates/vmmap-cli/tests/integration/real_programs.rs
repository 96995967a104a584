//! Real programs from Debian packages, each run plain and under `vmmap
//! run`: the same stdout, stderr and exit status; every allocation call the
//! trace counts equal to what an independent LD_PRELOAD counter
//! (`tests/fixtures/alloc_count.c`) counted in the same traced run; at least
//! two snapshots; the agent's own regions told apart in them.
//!
//! The counter sits after the agent in `LD_PRELOAD` (`vmmap run` puts the
//! agent first and keeps the user's entries after it), so every call the
//! program makes goes through the agent's hook and then the counter's. It
//! counts what docs/tracing.md says the agent records, per process, into a
//! file named by the pid; the trace's figures come from `vmmap trace FILE
//! --json`. Calls the agent makes for itself (its constructor, its writer,
//! libc functions it calls from inside a hook) must not reach the program's
//! allocator at all (they come from its private heap,
//! crates/vmmap-agent/src/heap.rs), so the comparison is exact: a
//! difference is either a call the trace lost or one the agent made
//! through the program's allocator.
//!
//! Every tool is required: a missing one fails its test (`./test.sh` installs
//! them all).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::trace::{agent, build, on_file};
use crate::util::{output_within, require_tool, starting_processes, TempDir, VMMAP};

/// The counter, built once per test run.
fn counter() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alloc_count.c");
    build(
        "alloc_count.so",
        &[
            "cc",
            "-O2",
            "-Wall",
            "-shared",
            "-fPIC",
            src.to_str().unwrap(),
            "-ldl",
        ],
    )
}

/// One program to run twice.
struct Prog<'a> {
    exe: PathBuf,
    args: Vec<String>,
    /// What goes on stdin (nothing: /dev/null).
    stdin: Option<&'a Path>,
    /// Working directory.
    cwd: Option<&'a Path>,
    /// `vmmap run` options besides the defaults.
    extra: &'a [&'a str],
}

impl<'a> Prog<'a> {
    fn new(exe: PathBuf, args: &[&str]) -> Prog<'a> {
        Prog {
            exe,
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            cwd: None,
            extra: &[],
        }
    }

    fn command(&self, cmd: &mut Command) {
        cmd.stdin(match self.stdin {
            Some(p) => Stdio::from(File::open(p).expect("open the input")),
            None => Stdio::null(),
        });
        if let Some(d) = self.cwd {
            cmd.current_dir(d);
        }
    }
}

/// A traced run: its output, the trace file and the counter's directory.
struct Traced {
    out: Output,
    file: PathBuf,
    counts: PathBuf,
    _dir: TempDir,
}

fn run_plain(p: &Prog<'_>) -> Output {
    let _g = starting_processes();
    let mut cmd = Command::new(&p.exe);
    cmd.args(&p.args);
    p.command(&mut cmd);
    output_within(&mut cmd, 120)
}

fn run_traced(p: &Prog<'_>) -> Traced {
    let _g = starting_processes();
    let dir = TempDir::new("realprog");
    let counts = dir.path().join("counts");
    std::fs::create_dir(&counts).unwrap();
    let file = dir.path().join(format!(
        "{}.vmmap",
        p.exe.file_name().unwrap().to_str().unwrap()
    ));
    let mut cmd = Command::new(VMMAP);
    cmd.args(["run", "-q", "--agent"])
        .arg(agent())
        .args(p.extra)
        .arg("-o")
        .arg(&file)
        .arg("--")
        .arg(&p.exe)
        .args(&p.args)
        .env("LD_PRELOAD", counter())
        .env("ALLOC_COUNT_DIR", &counts);
    p.command(&mut cmd);
    let out = output_within(&mut cmd, 180);
    Traced {
        out,
        file,
        counts,
        _dir: dir,
    }
}

/// Same stdout, stderr and exit status, byte for byte.
fn same_output(what: &str, plain: &Output, traced: &Output) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        plain.status.code(),
        traced.status.code(),
        "{what}: exit status differs under vmmap run; stderr traced:\n{}",
        text(&traced.stderr)
    );
    assert!(
        plain.stdout == traced.stdout,
        "{what}: stdout differs under vmmap run ({} bytes plain, {} traced):\n--- plain\n{}\n--- traced\n{}",
        plain.stdout.len(),
        traced.stdout.len(),
        text(&plain.stdout[..plain.stdout.len().min(2000)]),
        text(&traced.stdout[..traced.stdout.len().min(2000)])
    );
    assert_eq!(
        text(&plain.stderr),
        text(&traced.stderr),
        "{what}: stderr differs under vmmap run"
    );
}

/// The counter's figures for one process: malloc, calloc, realloc, free,
/// aligned, bytes.
fn counted(dir: &Path, pid: u64) -> [u64; 6] {
    let path = dir.join(pid.to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the counter wrote nothing for process {pid} ({}: {e})",
            path.display()
        )
    });
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse().expect("a count"))
        .collect();
    v.try_into().expect("six figures")
}

/// The same figures from `vmmap trace FILE --json`, and the process's pid.
fn traced_figures(file: &Path) -> ([u64; 6], u64) {
    let s: Value = serde_json::from_slice(&on_file("trace", file, &["--json"])).unwrap();
    let images = s["images"].as_array().expect("images");
    let pid = images[0]["pid"].as_u64().expect("pid");
    assert!(
        images.iter().all(|i| i["pid"].as_u64() == Some(pid)),
        "{}: one process per file: {s}",
        file.display()
    );
    let c = |op: &str| s["calls"][op].as_u64().unwrap_or(0);
    (
        [
            c("malloc"),
            c("calloc"),
            c("realloc"),
            c("free"),
            c("memalign"),
            s["bytes_allocated"].as_u64().expect("bytes_allocated"),
        ],
        pid,
    )
}

/// The trace files of a run: the main one, and with --follow-forks one per
/// traced child.
fn trace_files(t: &Traced) -> Vec<PathBuf> {
    let stem = t.file.file_stem().unwrap().to_str().unwrap().to_string();
    let mut files = vec![t.file.clone()];
    for e in std::fs::read_dir(t.file.parent().unwrap()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap();
        if p != t.file && name.starts_with(&format!("{stem}.")) && name.ends_with(".vmmap") {
            files.push(p);
        }
    }
    files
}

/// Every trace file of the run holds the allocations of its process.
fn holds_operations(what: &str, t: &Traced) -> usize {
    let files = trace_files(t);
    for f in &files {
        let (trace, pid) = traced_figures(f);
        assert!(
            trace[0] > 0,
            "{what}: process {pid}: no malloc in its trace"
        );
    }
    files.len()
}

/// Every trace file of the run (the main one, and with --follow-forks one
/// per traced child) counts what the counter counted in that process.
fn counts_agree(what: &str, t: &Traced) -> usize {
    let files = trace_files(t);
    for f in &files {
        let (trace, pid) = traced_figures(f);
        let count = counted(&t.counts, pid);
        assert!(
            count != [0; 6] || trace == [0; 6],
            "{what}: process {pid}: the counter after the agent in LD_PRELOAD saw none of the \
             {} calls the trace counts: the agent did not pass them on to the next allocator",
            trace[..5].iter().sum::<u64>()
        );
        assert_eq!(
            trace,
            count,
            "{what}: process {pid} ({}): the trace counts [malloc, calloc, realloc, free, \
             aligned, bytes] {trace:?}, the LD_PRELOAD counter {count:?}",
            f.file_name().unwrap().to_string_lossy()
        );
        assert!(trace[0] > 0, "{what}: process {pid} allocated nothing?");
    }
    files.len()
}

/// At least two snapshots (one at the start, one at the exit).
fn snapshots(what: &str, t: &Traced) {
    let v: Value = serde_json::from_slice(&on_file("timeline", &t.file, &["--json"])).unwrap();
    let n = v["points"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        n >= 2,
        "{what}: {n} snapshot(s) in the recording, at least two wanted (start and exit)"
    );
}

/// The agent's own regions are shown apart in the recording's snapshot:
/// its library's image, its buffers, its writer's stack all have the
/// agent for owner, and nothing else does.
fn agent_apart(what: &str, t: &Traced) {
    let snap: Value = serde_json::from_slice(&on_file("open", &t.file, &["--json"])).unwrap();
    let mut all = Vec::new();
    fn walk<'v>(r: &'v Value, out: &mut Vec<&'v Value>) {
        out.push(r);
        for c in r["children"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    for r in snap["regions"].as_array().expect("regions") {
        walk(r, &mut all);
    }
    let is_agent = |r: &Value| r["owner"]["kind"] == "agent";
    let agent_path = agent();
    let agent_path = agent_path.to_str().unwrap();
    let image: Vec<_> = all.iter().filter(|r| r["path"] == agent_path).collect();
    assert!(
        !image.is_empty(),
        "{what}: the agent's library is not in the snapshot"
    );
    for r in image {
        assert!(
            is_agent(r),
            "{what}: the agent's library image {} is not shown as the agent's: owner {}",
            r["start"],
            r["owner"]
        );
    }
    let writer: Vec<_> = all
        .iter()
        .filter(|r| {
            r["details"]
                .as_str()
                .is_some_and(|d| d.contains("(vmmap-agent)"))
        })
        .collect();
    assert!(
        !writer.is_empty(),
        "{what}: the agent's writer thread's stack is not named"
    );
    for r in writer {
        assert!(
            is_agent(r),
            "{what}: the writer's stack {}: {}",
            r["start"],
            r["owner"]
        );
    }
    assert!(
        all.iter()
            .any(|r| is_agent(r) && r["path"] == "" && r["type"] != "stack"),
        "{what}: none of the agent's buffers is shown as the agent's"
    );
    // Its figures are apart from the program's: the `agent` row is its
    // regions, the program's total the others.
    let top = snap["regions"].as_array().expect("regions");
    let total = snap["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "total")
        .unwrap();
    for col in ["size", "total_ws"] {
        let sum = |agent: bool| -> u64 {
            top.iter()
                .filter(|r| is_agent(r) == agent)
                .map(|r| r["figures"][col].as_u64().unwrap())
                .sum()
        };
        assert_eq!(
            snap["agent"][col].as_u64(),
            Some(sum(true)),
            "{what}: the vmmap agent row's {col}"
        );
        let page_table = if col == "size" {
            snap["page_table_bytes"].as_u64().unwrap_or(0)
        } else {
            0
        };
        assert_eq!(
            total[col].as_u64(),
            Some(sum(false) + page_table),
            "{what}: the program's total {col}"
        );
    }
}

/// Runs `p` plain and traced, compares their output with `check_output`,
/// then checks the trace.
fn suite(what: &str, p: &Prog<'_>, check_output: impl Fn(&Output, &Output)) -> Traced {
    let start = std::time::Instant::now();
    let plain = run_plain(p);
    let plain_time = start.elapsed();
    let t = run_traced(p);
    eprintln!(
        "{what}: plain {:.2} s, traced {:.2} s",
        plain_time.as_secs_f64(),
        (start.elapsed() - plain_time).as_secs_f64()
    );
    check_output(&plain, &t.out);
    holds_operations(what, &t);
    snapshots(what, &t);
    recorded_exactly(what, &t);
    t
}

/// Every call counted, and the agent's regions apart.
fn recorded_exactly(what: &str, t: &Traced) {
    counts_agree(what, t);
    agent_apart(what, t);
}

fn simple(what: &str, p: &Prog<'_>) -> Traced {
    suite(what, p, |plain, traced| {
        same_output(what, plain, traced);
        assert!(
            plain.status.success(),
            "{what} failed plain: {}",
            String::from_utf8_lossy(&plain.stderr)
        );
    })
}

/// A file of `words` words from a small vocabulary, in a fixed order.
fn words_file(path: &Path, words: usize) {
    use std::fmt::Write;
    let mut s = String::new();
    let mut x: u64 = 12345;
    for i in 0..words {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let _ = write!(s, "w{}", (x >> 33) % 5000);
        s.push(if i % 12 == 11 { '\n' } else { ' ' });
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn real_sqlite3_transaction_and_index() {
    let sqlite = require_tool("/usr/bin/sqlite3", "sqlite3");
    let dir = TempDir::new("sqlite");
    let sql = dir.path().join("load.sql");
    std::fs::write(
        &sql,
        "CREATE TABLE t(a INTEGER, b TEXT);\n\
         BEGIN;\n\
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)\n\
         INSERT INTO t SELECT x, printf('row%07d', (x * 7919) % 200000) FROM c;\n\
         CREATE INDEX tb ON t(b);\n\
         COMMIT;\n\
         SELECT count(*), sum(a), min(b), max(b) FROM t WHERE b >= 'row0100000';\n",
    )
    .unwrap();
    // Each run its own database file, created by the run.
    let run = |name: &str| {
        let db = dir.path().join(name);
        let mut p = Prog::new(sqlite.clone(), &[db.to_str().unwrap()]);
        p.stdin = Some(&sql);
        p
    };
    let (a, b) = (run("plain.db"), run("traced.db"));
    let plain = run_plain(&a);
    let t = run_traced(&b);
    same_output("sqlite3", &plain, &t.out);
    assert!(plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stdout).starts_with("100000|"),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
    holds_operations("sqlite3", &t);
    snapshots("sqlite3", &t);
    recorded_exactly("sqlite3", &t);
}

#[test]
fn real_python3_json_dump_and_load() {
    let py = require_tool("/usr/bin/python3", "python3");
    let p = Prog::new(
        py,
        &[
            "-c",
            "import json\n\
             d = [{'i': i, 's': str(i) * 3, 'l': list(range(i % 10))} for i in range(60000)]\n\
             s = json.dumps(d, sort_keys=True)\n\
             e = json.loads(s)\n\
             print(len(s), e == d, sum(x['i'] for x in e))\n",
        ],
    );
    simple("python3", &p);
}

#[test]
fn real_git_log_patches() {
    let git = require_tool("/usr/bin/git", "git");
    let dir = TempDir::new("gitrepo");
    let repo = dir.path();
    let g = |args: &[&str]| {
        let o = Command::new(&git)
            .args(args)
            .current_dir(repo)
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("HOME", repo)
            .output()
            .expect("run git");
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    g(&["init", "-q", "-b", "main"]);
    g(&["config", "user.name", "Test"]);
    g(&["config", "user.email", "test@example.invalid"]);
    for i in 0..60 {
        let mut text = String::new();
        for l in 0..200 {
            text.push_str(&format!(
                "line {l} of file {} rev {}\n",
                i % 7,
                (l * i) % 13
            ));
        }
        std::fs::write(repo.join(format!("f{}.txt", i % 7)), text).unwrap();
        g(&["add", "-A"]);
        g(&["commit", "-q", "-m", &format!("change {i}")]);
    }
    let mut p = Prog::new(git, &["--no-pager", "log", "-p"]);
    p.cwd = Some(repo);
    let t = simple("git log -p", &p);
    assert!(
        t.out.stdout.len() > 100_000,
        "git log -p printed the history"
    );
}

#[test]
fn real_gcc_compiles_with_its_children_followed() {
    let gcc = require_tool("/usr/bin/gcc", "gcc");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manymaps.c");
    let dir = TempDir::new("gcc");
    let run = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d
    };
    let (a, b) = (run("plain"), run("traced"));
    fn mk<'a>(gcc: &Path, src: &Path, d: &'a Path) -> Prog<'a> {
        let mut p = Prog::new(
            gcc.to_path_buf(),
            &["-O2", "-c", src.to_str().unwrap(), "-o", "out.o"],
        );
        p.cwd = Some(d);
        p.extra = &["--follow-forks"];
        p
    }
    let plain = run_plain(&mk(&gcc, &src, &a));
    let t = run_traced(&mk(&gcc, &src, &b));
    same_output("gcc -O2 -c", &plain, &t.out);
    assert!(plain.status.success());
    assert_eq!(
        std::fs::read(a.join("out.o")).unwrap(),
        std::fs::read(b.join("out.o")).unwrap(),
        "the same object file"
    );
    // The driver, cc1 and as each have a trace of their own.
    let files = holds_operations("gcc", &t);
    assert!(files >= 3, "gcc, cc1 and as traced: {files} file(s)");
    snapshots("gcc", &t);
    recorded_exactly("gcc", &t);
}

#[test]
fn real_node_objects_and_buffers() {
    let node = require_tool("/usr/bin/node", "nodejs");
    let p = Prog::new(
        node,
        &[
            "-e",
            "const a = []; for (let i = 0; i < 200000; i++) a.push({ i, s: 'x' + i, o: { k: i % 7 } });\n\
             const b = []; for (let i = 0; i < 3000; i++) b.push(Buffer.alloc(1024 + (i % 64) * 64, i % 256));\n\
             const c = Buffer.concat(b.slice(0, 500));\n\
             console.log(a.length, a[199999].s, b.reduce((s, x) => s + x.length, 0), c.length);",
        ],
    );
    simple("node", &p);
}

#[test]
fn real_perl_counts_words() {
    let perl = require_tool("/usr/bin/perl", "perl");
    let dir = TempDir::new("perl");
    let input = dir.path().join("words.txt");
    words_file(&input, 300_000);
    let mut p = Prog::new(
        perl,
        &[
            "-e",
            "my %c; while (<STDIN>) { $c{$_}++ for split } \
             print \"$_ $c{$_}\\n\" for sort { $c{$b} <=> $c{$a} || $a cmp $b } keys %c",
        ],
    );
    p.stdin = Some(&input);
    simple("perl", &p);
}

#[test]
fn real_xz_9() {
    let xz = require_tool("/usr/bin/xz", "xz-utils");
    let dir = TempDir::new("xz");
    let input = dir.path().join("words.txt");
    words_file(&input, 120_000);
    let mut p = Prog::new(xz, &["-9", "-c", "-T1"]);
    p.stdin = Some(&input);
    let t = simple("xz -9", &p);
    assert!(
        t.out.stdout.starts_with(b"\xfd7zXZ"),
        "xz wrote a .xz stream"
    );
}

#[test]
fn real_threaded_cxx_cross_thread_frees() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xthread.cpp");
    let bin = build(
        "xthread",
        &["g++", "-O2", "-g", "-pthread", src.to_str().unwrap()],
    );
    let t = simple("xthread", &Prog::new(bin, &[]));
    assert_eq!(
        String::from_utf8_lossy(&t.out.stdout),
        "items 120000 checksum 61231320000\n"
    );
}

#[test]
fn real_java_version() {
    let java = require_tool("/usr/bin/java", "default-jdk-headless");
    let t = simple("java -version", &Prog::new(java, &["-version"]));
    assert!(
        String::from_utf8_lossy(&t.out.stderr).contains("version"),
        "java -version says its version on stderr"
    );
}

/// A port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// redis-server under redis-benchmark: the server's log carries times and
/// pids, and the benchmark's output its throughput, so what is compared
/// instead is the server's log with those taken out, the data the
/// benchmark left (read back with redis-cli), and every exit status.
#[test]
fn real_redis_server_under_benchmark() {
    let server = require_tool("/usr/bin/redis-server", "redis-server");
    let bench = require_tool("/usr/bin/redis-benchmark", "redis-tools");
    let cli = require_tool("/usr/bin/redis-cli", "redis-tools");
    // One server run: started (plain or traced), loaded, read, shut down.
    let serve = |traced: bool| -> (Output, String, Option<Traced>) {
        let port = free_port().to_string();
        let args = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ];
        let handle = std::thread::spawn({
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let server = server.clone();
            move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                let p = Prog::new(server, &a);
                if traced {
                    let t = run_traced(&p);
                    (t.out.clone(), Some(t))
                } else {
                    (run_plain(&p), None)
                }
            }
        });
        let redis = |bin: &Path, args: &[&str]| {
            let o = Command::new(bin)
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run a redis client");
            assert!(
                o.status.success(),
                "{} {args:?}: {}",
                bin.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let ping = || {
            Command::new(&cli)
                .args(["-h", "127.0.0.1", "-p", &port, "ping"])
                .stdin(Stdio::null())
                .output()
                .expect("run redis-cli")
                .stdout
        };
        while ping() != b"PONG\n" {
            if handle.is_finished() {
                let (o, _) = handle.join().expect("the server thread");
                panic!(
                    "redis-server (traced: {traced}) ended before answering: {:?}\n{}{}",
                    o.status,
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server (traced: {traced}) did not answer within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        redis(
            &bench,
            &["-n", "20000", "-c", "8", "-t", "set,get,lpush,incr", "-q"],
        );
        let data = redis(&cli, &["eval", "return {redis.call('dbsize'), redis.call('llen', 'mylist'), redis.call('get', 'counter:__rand_int__')}", "0"]);
        let _ = Command::new(&cli)
            .args(["-h", "127.0.0.1", "-p", &port, "shutdown", "nosave"])
            .output();
        let (out, t) = handle.join().expect("the server thread");
        (out, data, t)
    };
    let (plain, plain_data, _) = serve(false);
    let (traced, traced_data, t) = serve(true);
    let t = t.unwrap();
    assert_eq!(
        plain_data, traced_data,
        "the data the benchmark left differs"
    );
    assert!(plain_data.contains("20000"), "{plain_data}");
    assert_eq!(plain.status.code(), traced.status.code(), "exit status");
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
    // "PID:M 06 Dec 2026 10:11:12.345 # message": the message, each run
    // of digits one 0 (pids of 4 and 5 digits alike).
    let log = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| {
                let msg = l
                    .split_once(" # ")
                    .or(l.split_once(" * "))
                    .map_or(l, |x| x.1);
                let mut out = String::new();
                let mut digits = false;
                for c in msg.chars() {
                    if !c.is_ascii_digit() {
                        out.push(c);
                    } else if !digits {
                        out.push('0');
                    }
                    digits = c.is_ascii_digit();
                }
                out
            })
            .collect()
    };
    assert_eq!(log(&plain.stdout), log(&traced.stdout), "the server's log");
    assert_eq!(
        log(&plain.stderr),
        log(&traced.stderr),
        "the server's stderr"
    );
    holds_operations("redis-server", &t);
    snapshots("redis-server", &t);
    recorded_exactly("redis-server", &t);
}
