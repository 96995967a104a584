//! The tracing agent under torture: small C, C++ and Rust programs, each
//! run plain and under `vmmap run`, with exact counts of what they did.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::util::{require_tool, starting_processes, VMMAP};

pub(crate) fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/trace")
        .join(name)
}

/// Builds once per test run with `cmd` (the output path is appended after
/// `-o`), returning the output path.
pub(crate) fn build(out_name: &str, cmd: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(out_name) {
        return p.clone();
    }
    let out = tmp().join(out_name);
    let st = Command::new(cmd[0])
        .args(&cmd[1..])
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd[0]));
    assert!(st.success(), "building {out_name} with {cmd:?} failed");
    built.insert(out_name.to_string(), out.clone());
    out
}

pub(crate) fn torture() -> PathBuf {
    let src = fixture("torture.c");
    build(
        "torture",
        &["cc", "-O1", "-g", "-pthread", src.to_str().unwrap(), "-ldl"],
    )
}

/// The agent library, built next to the vmmap binary under test (cargo test
/// does not build cdylib targets by itself).
pub(crate) fn agent() -> PathBuf {
    static AGENT: OnceLock<PathBuf> = OnceLock::new();
    AGENT
        .get_or_init(|| {
            let dir = Path::new(VMMAP).parent().unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "vmmap-agent"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("run cargo to build the agent");
            assert!(st.success(), "building the agent failed");
            let so = dir.join("libvmmap_agent.so");
            assert!(so.is_file(), "{} missing after the build", so.display());
            so
        })
        .clone()
}

/// `vmmap run -q --agent AGENT -o OUT -- PROG`, not started: PROG's
/// arguments go after.
pub(crate) fn run_command(out: &Path, prog: &Path) -> Command {
    let mut c = Command::new(VMMAP);
    c.args(["run", "-q", "--agent"])
        .arg(agent())
        .arg("-o")
        .arg(out)
        .arg("--")
        .arg(prog);
    c
}

pub(crate) fn trace_path(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    tmp().join(format!(
        "trace-{tag}-{}-{}.vmmap",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `vmmap run -q -i 0 [extra] -o FILE -- prog args`.
pub(crate) fn run_traced(extra: &[&str], prog: &Path, args: &[&str]) -> (Output, PathBuf) {
    let out = trace_path(prog.file_name().unwrap().to_str().unwrap());
    let _g = starting_processes();
    let o = crate::util::output_within(
        Command::new(VMMAP)
            .arg("run")
            .args(if extra.contains(&"-i") {
                &["-q"][..]
            } else {
                &["-q", "-i", "0"][..]
            })
            .arg("--agent")
            .arg(agent())
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg("--")
            .arg(prog)
            .args(args)
            .stdin(Stdio::null()),
        180,
    );
    (o, out)
}

pub(crate) fn run_plain(prog: &Path, args: &[&str]) -> Output {
    let _g = starting_processes();
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the fixture")
}

/// A program's output with every `0x…` word (an address, which ASLR
/// changes from run to run) replaced by `ADDR`.
pub(crate) fn without_addresses(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .split_whitespace()
        .map(|w| if w.starts_with("0x") { "ADDR" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The program behaves the same traced and plain: same stdout (after
/// dropping addresses, which ASLR changes) and same exit status.
pub(crate) fn same_behaviour(plain: &Output, traced: &Output) {
    assert_eq!(
        without_addresses(&plain.stdout),
        without_addresses(&traced.stdout),
        "stdout differs under the agent"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        (plain.status.code(), plain.status.signal()),
        (traced.status.code(), traced.status.signal()),
        "exit status differs under the agent: {:?}",
        String::from_utf8_lossy(&traced.stderr)
    );
}

/// `vmmap SUB FILE ARGS…`, which must succeed; its output.
pub(crate) fn on_file(sub: &str, file: &Path, args: &[&str]) -> Vec<u8> {
    let o = Command::new(VMMAP)
        .arg(sub)
        .arg(file)
        .args(args)
        .output()
        .expect("run vmmap");
    assert!(
        o.status.success(),
        "vmmap {sub} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// One JSON object per line.
fn json_lines(out: Vec<u8>) -> Vec<Value> {
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

pub(crate) fn history(file: &Path) -> Vec<Value> {
    json_lines(on_file("trace", file, &["history", "--json"]))
}

pub(crate) fn summary(file: &Path) -> Value {
    serde_json::from_slice(&on_file("trace", file, &["summary", "--json"])).unwrap()
}

pub(crate) fn ops<'a>(h: &'a [Value], op: &str, size: u64) -> Vec<&'a Value> {
    h.iter()
        .filter(|e| e["op"] == op && e["size"] == size)
        .collect()
}

fn hexv(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// How many times the block made by `alloc` was released (by free, or by
/// realloc moving it) before its address was handed out again.
fn freed(h: &[Value], alloc: &Value) -> usize {
    let ptr = alloc.get("ptr").or_else(|| alloc.get("new")).unwrap();
    let start = h.iter().position(|e| std::ptr::eq(e, alloc)).unwrap();
    let mut n = 0;
    for e in &h[start + 1..] {
        let op = e["op"].as_str().unwrap();
        if (op == "free" && e["ptr"] == *ptr) || (op == "realloc" && e["old"] == *ptr) {
            n += 1;
        }
        let reuses = (matches!(op, "malloc" | "calloc" | "memalign") && e["ptr"] == *ptr)
            || (op == "realloc" && e["new"] == *ptr);
        if reuses {
            break;
        }
    }
    n
}

#[test]
fn basic_allocations_are_counted_exactly() {
    let prog = torture();
    let plain = run_plain(&prog, &["basic"]);
    let (o, file) = run_traced(&[], &prog, &["basic"]);
    same_behaviour(&plain, &o);
    assert_eq!(o.status.code(), Some(3));
    let h = history(&file);
    for size in 1001..=1010u64 {
        let m = ops(&h, "malloc", size);
        assert_eq!(m.len(), 1, "malloc({size})");
        assert_eq!(
            freed(&h, m[0]),
            usize::from(size <= 1005),
            "free of malloc({size})"
        );
        assert!(
            m[0]["stack"].as_array().is_some_and(|s| s.len() >= 3),
            "a stack for malloc({size})"
        );
    }
    assert_eq!(ops(&h, "calloc", 1012).len(), 1);
    let re = ops(&h, "realloc", 1013);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0]["old"], ops(&h, "calloc", 1012)[0]["ptr"]);
    let ra = ops(&h, "realloc", 1015);
    assert_eq!(
        (ra.len(), ra[0]["old"].as_str()),
        (1, Some("0x0")),
        "reallocarray(NULL, 7, 145)"
    );
    for (size, align) in [
        (1016, 64),
        (1024, 256),
        (1017, 32),
        (1018, 4096),
        (1019, 4096),
    ] {
        let m = ops(&h, "memalign", size);
        assert_eq!(m.len(), 1, "aligned allocation of {size}");
        assert_eq!(m[0]["align"], align);
        assert_eq!(hexv(&m[0]["ptr"]) % align, 0);
        assert_eq!(freed(&h, m[0]), 1);
    }
    // Address lookup in the trace: the block holding an address inside
    // malloc(1010), with its stack.
    let p9 = hexv(&ops(&h, "malloc", 1010)[0]["ptr"]);
    let at = format!("{:#x}", p9 + 1009);
    let hits = json_lines(on_file(
        "trace",
        &file,
        &["history", "--json", "--address", &at],
    ));
    assert!(
        !hits.is_empty() && hits[0]["op"] == "malloc" && hits[0]["size"] == 1010,
        "{hits:?}"
    );
    assert!(hits[0]["stack"].is_array());
    assert!(
        hits.iter()
            .all(|e| e["op"] != "malloc" || hexv(&e["ptr"]) <= p9 + 1009),
        "{hits:?}"
    );
    let s = summary(&file);
    assert_eq!(s["images"][0]["ended"], true, "the agent stopped cleanly");
    assert!(
        s["threads"].as_u64() == Some(1),
        "only the main thread: the agent's writer is hidden: {s}"
    );
}

#[test]
fn mapping_calls_are_recorded_with_their_addresses() {
    let prog = torture();
    let (o, file) = run_traced(&[], &prog, &["mmap"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let w: Vec<&str> = out.split_whitespace().collect();
    let addr = |i: usize| u64::from_str_radix(w[i].trim_start_matches("0x"), 16).unwrap();
    let (m, r, b0, b1) = (addr(1), addr(3), addr(5), addr(6));
    let h = history(&file);
    let find = |op: &str| h.iter().filter(|e| e["op"] == op).collect::<Vec<_>>();
    let pg = 4096u64;
    let mm: Vec<_> = find("mmap")
        .into_iter()
        .filter(|e| hexv(&e["addr"]) == m)
        .collect();
    assert_eq!(mm.len(), 1);
    assert_eq!(mm[0]["len"], 3 * pg);
    assert_eq!(mm[0]["prot"], 3);
    assert!(find("mprotect")
        .iter()
        .any(|e| hexv(&e["addr"]) == m && e["len"] == pg && e["prot"] == 1));
    assert!(find("mprotect")
        .iter()
        .any(|e| hexv(&e["addr"]) == m && e["len"] == pg && e["prot"] == 3));
    assert!(find("madvise")
        .iter()
        .any(|e| hexv(&e["addr"]) == m + pg && e["advice"] == 4));
    assert!(find("mremap")
        .iter()
        .any(|e| hexv(&e["old"]) == m && hexv(&e["new"]) == r && e["new_len"] == 5 * pg));
    assert!(find("munmap")
        .iter()
        .any(|e| hexv(&e["addr"]) == r && e["len"] == 5 * pg));
    let sb: Vec<_> = find("sbrk");
    assert!(
        sb.iter()
            .any(|e| hexv(&e["old"]) == b0 && hexv(&e["new"]) == b0 + 3 * pg),
        "sbrk(+3 pages)"
    );
    assert!(
        sb.iter()
            .any(|e| hexv(&e["old"]) == b0 + 3 * pg && hexv(&e["new"]) == b1),
        "sbrk(-1 page)"
    );
    assert!(
        find("brk")
            .iter()
            .any(|e| hexv(&e["old"]) == b1 && hexv(&e["new"]) == b1 + pg),
        "brk"
    );
    assert!(
        h.iter().all(|e| e["op"] != "mmap" || e["stack"].is_array()),
        "every mmap has a stack"
    );
}

#[test]
fn threads_allocating_and_freeing_across_threads() {
    let prog = torture();
    let (o, file) = run_traced(&[], &prog, &["threads"]);
    assert!(o.status.success());
    let h = history(&file);
    let main_tid = h[0]["tid"].clone();
    for t in 0..4u64 {
        let m = ops(&h, "malloc", 2000 + t);
        assert_eq!(m.len(), 100, "thread {t}'s allocations");
        let tid = &m[0]["tid"];
        assert!(m.iter().all(|e| e["tid"] == *tid) && *tid != main_tid);
        for (i, e) in m.iter().enumerate() {
            assert_eq!(freed(&h, e), 1, "block {i} of thread {t} is freed once");
        }
    }
    let s = summary(&file);
    assert_eq!(s["threads"], 5);
    assert_eq!(s["calls"]["pthread_create"], 4);
    assert_eq!(s["calls"]["thread-exit"], 4);
    // The decoder orders by time: no block is freed before it is
    // allocated. (A free of a block allocated before the agent started is
    // unknown, and allowed.)
    for (i, e) in h.iter().enumerate() {
        if e["op"] == "free" {
            let earlier = h[..i]
                .iter()
                .any(|a| a["op"] == "malloc" && a["ptr"] == e["ptr"]);
            let later = h[i + 1..]
                .iter()
                .any(|a| a["op"] == "malloc" && a["ptr"] == e["ptr"]);
            assert!(
                earlier || !later,
                "free of {} comes before its malloc",
                e["ptr"]
            );
        }
    }
}

#[test]
fn fork_children_are_untraced_unless_followed() {
    let prog = torture();
    let plain = run_plain(&prog, &["fork"]);
    let (o, file) = run_traced(&[], &prog, &["fork"]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    assert_eq!(ops(&h, "malloc", 3001).len(), 3);
    assert_eq!(
        ops(&h, "malloc", 3002).len(),
        0,
        "the child is not in the parent's trace"
    );
    assert_eq!(ops(&h, "malloc", 3003).len(), 1);
    let forks: Vec<_> = h.iter().filter(|e| e["op"] == "fork").collect();
    assert_eq!(forks.len(), 1);

    let (o, file) = run_traced(&["--follow-forks"], &prog, &["fork"]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    let child_pid = h.iter().find(|e| e["op"] == "fork").unwrap()["child"]
        .as_u64()
        .unwrap();
    assert_eq!(ops(&h, "malloc", 3002).len(), 0);
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let child = file.with_file_name(format!("{stem}.{child_pid}.vmmap"));
    let ch = history(&child);
    assert_eq!(
        ops(&ch, "malloc", 3002).len(),
        5,
        "the followed child's own file"
    );
    assert_eq!(
        ops(&ch, "malloc", 3001).len(),
        0,
        "the child file starts at the fork"
    );
}

#[test]
fn vfork_exec_and_posix_spawn_leave_the_parent_trace_intact() {
    let prog = torture();
    let plain = run_plain(&prog, &["vfork"]);
    let (o, file) = run_traced(&[], &prog, &["vfork"]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    assert_eq!(ops(&h, "malloc", 3004).len(), 1);
    let s = summary(&file);
    assert_eq!(
        s["images"].as_array().unwrap().len(),
        1,
        "children are not traced: {s}"
    );
    assert_eq!(s["images"][0]["ended"], true);
}

/// A program that defines its own `malloc` is refused by `vmmap run`, but
/// one started by a traced program's exec is traced: its allocations never
/// reach the agent, and the trace said nothing of it, as though the
/// program allocated nothing. Its image now says so.
#[test]
fn an_image_with_its_own_malloc_is_named_so() {
    let src = fixture("ownmalloc.c");
    let prog = build("ownmalloc", &["cc", "-O1", src.to_str().unwrap()]);
    let sh = Path::new("/bin/sh");
    let script = format!("exec {}", prog.display());
    let plain = run_plain(sh, &["-c", &script]);
    let (o, file) = run_traced(&[], sh, &["-c", &script]);
    same_behaviour(&plain, &o);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "own\n");
    let s = summary(&file);
    assert_eq!(s["images"][0]["own_malloc"], false, "{s}");
    assert_eq!(s["images"][1]["own_malloc"], true, "{s}");
    assert!(ops(&history(&file), "malloc", 7001).is_empty());
    let t = Command::new(VMMAP)
        .arg("trace")
        .arg(&file)
        .output()
        .unwrap();
    assert!(t.status.success(), "{t:?}");
    let text =
        String::from_utf8_lossy(&t.stdout).into_owned() + &String::from_utf8_lossy(&t.stderr);
    assert!(
        text.contains(&format!(
            "image 1 ({}) defines its own malloc",
            prog.display()
        )),
        "{text}"
    );
    assert_eq!(text.matches("defines its own malloc").count(), 1, "{text}");
}

#[test]
fn exec_flushes_and_the_new_image_continues_the_trace() {
    let prog = torture();
    let plain = run_plain(&prog, &["exec"]);
    let (o, file) = run_traced(&[], &prog, &["exec"]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    let a = ops(&h, "malloc", 3005);
    let b = ops(&h, "malloc", 3006);
    assert_eq!((a.len(), b.len()), (2, 2));
    assert!(a.iter().all(|e| e["image"] == 0) && b.iter().all(|e| e["image"] == 1));
    assert_eq!(h.iter().filter(|e| e["op"] == "exec").count(), 1);
    let s = summary(&file);
    let imgs = s["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(imgs[0]["pid"], imgs[1]["pid"]);
    // The first image wrote everything before its exec: no END, but
    // nothing missing, so no warning about a killed process.
    assert_eq!(
        (&imgs[0]["ended"], &imgs[0]["exec_replaced"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(
        (&imgs[1]["ended"], &imgs[1]["exec_replaced"]),
        (&json!(true), &json!(false))
    );
    let text = String::from_utf8(on_file("trace", &file, &["summary"])).unwrap();
    assert!(text.contains("operations recorded"), "{text}");
    assert!(!text.contains("did not stop cleanly"), "{text}");
    // The first image's blocks live at the exec (stdio's buffer at least)
    // went with it: released, not leaked. Replay each image's history.
    let mut live = [HashMap::new(), HashMap::new()];
    for e in &h {
        let Some(img) = e["image"].as_u64().filter(|&i| i < 2) else {
            continue;
        };
        let live = &mut live[img as usize];
        match e["op"].as_str().unwrap() {
            "malloc" | "calloc" | "memalign" => {
                live.insert(hexv(&e["ptr"]), e["size"].as_u64().unwrap());
            }
            "realloc" => {
                live.remove(&hexv(&e["old"]));
                if hexv(&e["new"]) != 0 {
                    live.insert(hexv(&e["new"]), e["size"].as_u64().unwrap());
                }
            }
            "free" => {
                live.remove(&hexv(&e["ptr"]));
            }
            _ => {}
        }
    }
    let bytes = |m: &HashMap<u64, u64>| m.values().sum::<u64>();
    assert!(!live[0].is_empty(), "stdout's buffer was live at the exec");
    assert_eq!(s["exec_released_blocks"], live[0].len() as u64);
    assert_eq!(s["exec_released_bytes"], bytes(&live[0]));
    assert_eq!(s["live_blocks"], live[1].len() as u64);
    assert_eq!(s["live_bytes"], bytes(&live[1]));
}

/// Every exec call the agent hooks carries it into the new image, with
/// or without an environment of the caller's.
#[test]
fn every_exec_call_continues_the_trace() {
    let prog = torture();
    for via in ["execv", "execvp", "execve", "execvpe", "fexecve"] {
        let plain = run_plain(&prog, &["exec", via]);
        let (o, file) = run_traced(&[], &prog, &["exec", via]);
        same_behaviour(&plain, &o);
        let h = history(&file);
        let a = ops(&h, "malloc", 3005);
        let b = ops(&h, "malloc", 3006);
        assert_eq!((a.len(), b.len()), (2, 2), "{via}");
        assert!(
            a.iter().all(|e| e["image"] == 0) && b.iter().all(|e| e["image"] == 1),
            "{via}"
        );
        assert_eq!(h.iter().filter(|e| e["op"] == "exec").count(), 1, "{via}");
    }
}

#[test]
fn dlopen_of_a_tls_library_in_a_new_thread() {
    let prog = torture();
    let src = fixture("libtls.c");
    let lib = build(
        "libtls.so",
        &["cc", "-O1", "-g", "-shared", "-fPIC", src.to_str().unwrap()],
    );
    let lib = lib.to_str().unwrap();
    let plain = run_plain(&prog, &["dlopen", lib]);
    let (o, file) = run_traced(&[], &prog, &["dlopen", lib]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    assert_eq!(
        ops(&h, "malloc", 3007).len(),
        1,
        "the library's own allocation"
    );
    let d: Vec<_> = h.iter().filter(|e| e["op"] == "dlopen").collect();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0]["flags"].as_u64().unwrap() & 0x8,
        0,
        "RTLD_DEEPBIND is dropped"
    );
    assert_eq!(h.iter().filter(|e| e["op"] == "dlclose").count(), 1);
}

#[test]
fn cxx_exceptions_through_allocating_frames() {
    let src = fixture("cxx.cpp");
    let prog = build("cxx", &["c++", "-O1", "-g", src.to_str().unwrap()]);
    let plain = run_plain(&prog, &[]);
    let (o, file) = run_traced(&[], &prog, &[]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    let v = ops(&h, "malloc", 4101);
    assert_eq!(v.len(), 40, "4 frames x 10 throws");
    assert!(
        v.iter().all(|e| freed(&h, e) == 1),
        "unwinding ran every destructor"
    );
    assert_eq!(ops(&h, "malloc", 4102).len(), 1);
}

#[test]
fn longjmp_out_of_an_allocating_frame() {
    let prog = torture();
    let plain = run_plain(&prog, &["longjmp"]);
    let (o, file) = run_traced(&[], &prog, &["longjmp"]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    assert_eq!(ops(&h, "malloc", 4002).len(), 3);
    assert_eq!(
        ops(&h, "malloc", 4003).len(),
        3,
        "recording goes on after the jumps"
    );
}

#[test]
fn a_signal_handler_that_allocates() {
    let prog = torture();
    let (o, file) = run_traced(&[], &prog, &["signal"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let w: Vec<usize> = out
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let (handled, handler_mallocs) = (w[0], w[1]);
    assert!(handled > 0, "the timer fired");
    let h = history(&file);
    assert_eq!(
        ops(&h, "malloc", 4005).len(),
        50000,
        "every allocation of the main loop"
    );
    // The handler allocates only outside the allocator (and so outside
    // the hooks): each of those is recorded.
    assert_eq!(ops(&h, "malloc", 4004).len(), handler_mallocs);
    // Its mmap runs anywhere; one that lands inside a hook passes through
    // untraced, so the trace has at most one per signal, with its munmap.
    let mmaps = h
        .iter()
        .filter(|e| e["op"] == "mmap" && e["len"] == 4096)
        .count();
    let munmaps = h
        .iter()
        .filter(|e| e["op"] == "munmap" && e["len"] == 4096)
        .count();
    assert!(
        mmaps <= handled && munmaps <= handled,
        "{mmaps} {munmaps} {handled}"
    );
}

#[test]
fn every_exit_path_keeps_the_events() {
    let prog = torture();
    for (how, code, signal) in [
        ("return", Some(5), None),
        ("exit", Some(6), None),
        ("_exit", Some(7), None),
        ("abort", None, Some(6)),
        ("kill", None, Some(9)),
    ] {
        let plain = run_plain(&prog, &["exit", how]);
        let (o, file) = run_traced(&[], &prog, &["exit", how]);
        assert_eq!(
            String::from_utf8_lossy(&plain.stdout),
            String::from_utf8_lossy(&o.stdout),
            "{how}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(plain.status.code(), code, "{how}");
        assert_eq!(plain.status.signal(), signal, "{how}");
        // vmmap run ends as the program did: its code, or its signal.
        assert_eq!(o.status.code(), code, "{how}");
        assert_eq!(o.status.signal(), signal, "{how}");
        let h = history(&file);
        assert_eq!(
            ops(&h, "malloc", 5001).len(),
            7,
            "{how}: the blocks allocated before the end"
        );
        let s = summary(&file);
        assert_eq!(s["images"][0]["ended"], signal.is_none(), "{how}");
    }
}

/// Function ranges from `nm -S` (address, size) by name.
fn symbols(prog: &Path) -> HashMap<String, (u64, u64)> {
    let o = Command::new(require_tool("nm", "binutils"))
        .args(["-S", "--defined-only"])
        .arg(prog)
        .output()
        .expect("nm");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() != 4 {
                return None;
            }
            Some((
                w[3].to_string(),
                (
                    u64::from_str_radix(w[0], 16).ok()?,
                    u64::from_str_radix(w[1], 16).ok()?,
                ),
            ))
        })
        .collect()
}

/// The first three frames are inner, outer and frames (main's helper),
/// checked against the symbol table and the load address the program
/// printed.
fn check_frames(prog: &Path, extra: &[&str]) {
    let (o, file) = run_traced(extra, prog, &["frames"]);
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let w: Vec<&str> = out.split_whitespace().collect();
    let runtime_inner = u64::from_str_radix(w[1].trim_start_matches("0x"), 16).unwrap();
    let syms = symbols(prog);
    let bias = runtime_inner - syms["inner"].0;
    let h = history(&file);
    let m = ops(&h, "malloc", 6001);
    assert_eq!(m.len(), 1);
    let stack: Vec<u64> = m[0]["stack"].as_array().unwrap().iter().map(hexv).collect();
    for (i, f) in ["inner", "outer", "frames"].iter().enumerate() {
        let (lo, len) = syms[*f];
        let pc = stack[i] - bias - 1;
        assert!(
            pc >= lo && pc < lo + len,
            "{extra:?} frame {i} is {pc:#x}, not in {f} {lo:#x}+{len:#x}: {stack:x?}"
        );
    }
    assert_eq!(
        m[0]["truncated"], false,
        "{extra:?}: the walk reached _start"
    );
}

#[test]
fn stacks_with_and_without_frame_pointers() {
    let src = fixture("torture.c");
    let src = src.to_str().unwrap();
    let fp = build(
        "torture-fp",
        &[
            "cc",
            "-O2",
            "-g",
            "-fno-omit-frame-pointer",
            "-pthread",
            src,
            "-ldl",
        ],
    );
    let nofp = build(
        "torture-nofp",
        &[
            "cc",
            "-O2",
            "-g",
            "-fomit-frame-pointer",
            "-pthread",
            src,
            "-ldl",
        ],
    );
    check_frames(&nofp, &[]);
    check_frames(&fp, &[]);
    // Frame-pointer mode: right for the program built with them (libc's
    // start code has none, so the walk ends early there).
    let (o, file) = run_traced(&["--unwind", "fp"], &fp, &["frames"]);
    assert!(o.status.success());
    let syms = symbols(&fp);
    let out = String::from_utf8(o.stdout).unwrap();
    let inner = u64::from_str_radix(
        out.split_whitespace()
            .nth(1)
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let bias = inner - syms["inner"].0;
    let h = history(&file);
    let stack: Vec<u64> = ops(&h, "malloc", 6001)[0]["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(hexv)
        .collect();
    for (i, f) in ["inner", "outer", "frames"].iter().enumerate() {
        let (lo, len) = syms[*f];
        let pc = stack[i] - bias - 1;
        assert!(pc >= lo && pc < lo + len, "fp frame {i} {pc:#x} not in {f}");
    }
}

/// Every allocation of `paths` (thousands of stacks that meet at the same
/// frames with different callers further out, some through a frame of
/// variable size) has exactly the stack the program says it took: a walk
/// that stops at a remembered stack must never take a wrong one. With and
/// without frame pointers (then rbp is live across frames), and with the
/// second walker a later thread of the program, which has the agent's
/// smaller caches (stack ids, rules, walks, address ages).
#[test]
fn remembered_stacks_are_exact() {
    let src = fixture("paths.c");
    let src = src.to_str().unwrap();
    for (name, flags, idle) in [
        ("paths-nofp", "-fomit-frame-pointer", "0"),
        ("paths-fp", "-fno-omit-frame-pointer", "0"),
        ("paths-nofp", "-fomit-frame-pointer", "12"),
    ] {
        let prog = build(name, &["cc", "-O2", "-g", flags, "-pthread", src]);
        let (o, file) = run_traced(&[], &prog, &["3000", idle]);
        assert!(o.status.success(), "{name}: {o:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        let mut lines = out.lines();
        let leaf = lines.next().unwrap().split_whitespace().nth(1).unwrap();
        let leaf = u64::from_str_radix(leaf.trim_start_matches("0x"), 16).unwrap();
        let syms = symbols(&prog);
        let bias = leaf - syms["leaf"].0;
        let name_of = |pc: u64| {
            syms.iter()
                .find(|(_, &(lo, len))| pc >= lo && pc < lo + len)
                .map(|(n, _)| n.as_str())
        };
        let expected: HashMap<u64, Vec<&str>> = lines
            .map(|l| {
                let mut w = l.split_whitespace();
                let size = w.next().unwrap().parse().unwrap();
                (size, w.collect())
            })
            .collect();
        assert_eq!(expected.len(), 6000, "{name}");
        let mut seen = 0;
        let h = history(&file);
        // Each block is freed by its thread right after its line is
        // written: the address read back for that free (an age reference
        // into the thread's recent addresses, or a difference) must be the
        // block's.
        let freed: std::collections::HashSet<(String, String)> = h
            .iter()
            .filter(|e| e["op"] == "free")
            .map(|e| (e["tid"].to_string(), e["ptr"].to_string()))
            .collect();
        for m in h.iter().filter(|e| e["op"] == "malloc") {
            let Some(want) = expected.get(&m["size"].as_u64().unwrap()) else {
                continue;
            };
            assert!(
                freed.contains(&(m["tid"].to_string(), m["ptr"].to_string())),
                "{name}: the block of {} is never freed by its thread: {m}",
                m["size"]
            );
            let got: Vec<&str> = m["stack"]
                .as_array()
                .unwrap()
                .iter()
                .take(want.len())
                .map(|f| name_of(hexv(f).wrapping_sub(bias + 1)).unwrap_or("?"))
                .collect();
            assert_eq!(&got, want, "{name}: allocation of {}", m["size"]);
            seen += 1;
        }
        assert_eq!(seen, 6000, "{name}: every allocation was recorded");
    }
}

#[test]
fn rust_program_allocations() {
    let src = fixture("rust_alloc.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let prog = build(
        "rust_alloc",
        &[&rustc, "-O", "--edition", "2021", src.to_str().unwrap()],
    );
    let plain = run_plain(&prog, &[]);
    let (o, file) = run_traced(&[], &prog, &[]);
    same_behaviour(&plain, &o);
    let h = history(&file);
    assert_eq!(ops(&h, "malloc", 6101).len(), 3);
    // Box::new of a zeroed array is a calloc.
    assert_eq!(
        ops(&h, "malloc", 6102).len() + ops(&h, "calloc", 6102).len(),
        3
    );
}

#[test]
fn untraceable_programs_are_refused_with_a_way_out() {
    let src = fixture("torture.c");
    let stat = build(
        "torture-static",
        &[
            "cc",
            "-O1",
            "-static",
            "-pthread",
            src.to_str().unwrap(),
            "-ldl",
        ],
    );
    let (o, _) = run_traced(&[], &stat, &["basic"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(12), "{err}");
    assert!(
        err.contains("statically linked") && err.contains("--snapshot-only"),
        "{err}"
    );
    let (o, file) = run_traced(&["--snapshot-only", "-i", "10ms"], &stat, &["exit", "kill"]);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        o.status.signal(),
        Some(9),
        "snapshot-only runs it: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let loaded = vmmap_core_load(&file);
    assert!(loaded > 0, "snapshots were taken");

    let own = fixture("ownmalloc.c");
    let own = build("ownmalloc", &["cc", "-O1", own.to_str().unwrap()]);
    let (o, _) = run_traced(&[], &own, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(12), "{err}");
    assert!(err.contains("its own malloc"), "{err}");

    // Set-user-ID to another user: the loader's secure mode.
    let suid = tmp().join(format!("torture-suid-{}", std::process::id()));
    std::fs::copy(torture(), &suid).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(&suid, Some(65534), None).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (o, _) = run_traced(&[], &suid, &["basic"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(12), "{err}");
    assert!(err.contains("set-user-ID to another user"), "{err}");
    // Set-user-ID to the user running it (root here): no secure mode, so
    // it is traced (it was refused, and so were su and sudo for root).
    std::os::unix::fs::chown(&suid, Some(0), None).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (o, file) = run_traced(&[], &suid, &["basic"]);
    // basic's exit status is 3 (it ends with `return 3`).
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let s = summary(&file);
    assert!(s["allocations"].as_u64() > Some(0), "{s}");
    let _ = std::fs::remove_file(&suid);
}

/// Root's `su`: set-user-ID root, run by root, loads the agent; its
/// output is its own.
#[test]
fn root_traces_su() {
    let su = Path::new("/usr/bin/su");
    assert!(su.exists(), "su is missing: apt-get install util-linux");
    let args = ["nobody", "-s", "/bin/sh", "-c", "echo $((6*7)); id -u"];
    let plain = run_plain(su, &args);
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "42\n65534\n",
        "{plain:?}"
    );
    let file = tmp().join(format!("su-{}.vmmap", std::process::id()));
    let traced = crate::trace_harm::run_with(&["-q", "-o", file.to_str().unwrap()], su, &args, &[]);
    same_behaviour(&plain, &traced);
    assert!(traced.stderr.is_empty(), "{traced:?}");
    let s = summary(&file);
    assert!(s["allocations"].as_u64() > Some(100), "{s}");
    assert_eq!(s["images"][0]["ended"], true, "{s}");
}

#[test]
fn programs_that_cannot_start_say_why() {
    use std::os::unix::fs::PermissionsExt;
    // (file name, contents, mode, exit code, what the message must say)
    let cases = [
        (
            "not-executable",
            "#!/bin/sh\necho hi\n",
            0o644,
            4,
            "chmod +x",
        ),
        ("no-shebang", "echo hi\n", 0o755, 1, "no #! line"),
    ];
    for (name, text, mode, code, says) in cases {
        let prog = tmp().join(format!("{name}-{}", std::process::id()));
        std::fs::write(&prog, text).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(mode)).unwrap();
        let (o, file) = run_traced(&[], &prog, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!file.exists(), "{name}: no file is left behind");
        let _ = std::fs::remove_file(prog);
    }
}

/// Snapshots in a file, counted through `vmmap timeline --json`.
fn vmmap_core_load(file: &Path) -> usize {
    let v: Value = serde_json::from_slice(&on_file("timeline", file, &["--json"])).unwrap();
    v["points"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn every_region_has_an_owner() {
    let prog = torture();
    let (o, file) = run_traced(&[], &prog, &["regions"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let w: Vec<&str> = out.split_whitespace().collect();
    let addr = |i: usize| u64::from_str_radix(w[i].trim_start_matches("0x"), 16).unwrap();
    let (big, m, arena) = (addr(1), addr(3), addr(5));
    let regions: Value =
        serde_json::from_slice(&on_file("trace", &file, &["regions", "--json"])).unwrap();
    let regions = regions.as_array().unwrap();
    for r in regions {
        assert_ne!(r["owner"], "unobserved", "a region without an owner: {r}");
    }
    let holding = |a: u64| {
        regions
            .iter()
            .find(|r| hexv(&r["start"]) <= a && a < hexv(&r["end"]))
            .unwrap_or_else(|| panic!("no region holds {a:#x}"))
    };
    // glibc mapped the 1 MiB block itself: tied to the malloc that caused it.
    let b = holding(big);
    assert_eq!(b["owner"], "glibc-internal", "{b}");
    assert_eq!(
        (
            b["first_use"]["op"].as_str(),
            b["first_use"]["size"].as_u64()
        ),
        (Some("malloc"), Some(1 << 20))
    );
    assert!(b["stack"].as_array().is_some_and(|s| !s.is_empty()));
    let r = holding(m);
    assert_eq!(r["owner"], "call", "{r}");
    assert!(r["description"].as_str().unwrap().starts_with("mmap"));
    // The thread's arena is tied to its first allocation, in that thread.
    let a = holding(arena);
    assert_eq!(a["owner"], "glibc-internal", "{a}");
    let tid = a["first_use"]["tid"].as_i64().unwrap();
    assert!(regions
        .iter()
        .any(|r| r["owner"] == "thread-stack"
            && r["description"] == format!("stack of thread {tid}")));
    assert!(
        regions.iter().any(|r| r["owner"] == "agent"),
        "the agent's own memory is told apart"
    );
}
