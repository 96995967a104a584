//! Test helpers: the fixture program, compiled from C at test time, and a
//! runner for the real `vmmap` binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

pub const VMMAP: &str = env!("CARGO_BIN_EXE_vmmap");

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Compiles `tests/fixtures/NAME.c` once per test run and returns the
/// binary's path.
pub fn compile(name: &str) -> PathBuf {
    compile_with(name, &[])
}

/// Compiles `tests/fixtures/NAME.c` as a static executable, so that no page
/// it maps is shared with other processes (whose coming and going would
/// change its Pss).
pub fn compile_static(name: &str) -> PathBuf {
    compile_with(name, &["-static"])
}

fn compile_with(name: &str, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = format!("{name}{}", flags.concat());
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.c"));
    let out = tmp().join(format!("fixture-{key}"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-O1", "-g", "-Wall", "-pthread"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc} to build the test fixture: {e}"));
    assert!(st.success(), "compiling {} failed", src.display());
    built.insert(key, out.clone());
    out
}

/// The path of an external program a test needs: `name` looked up in
/// PATH, or an absolute path taken as it is. A missing one fails the test
/// with the Debian package to install; a test never passes without the
/// tool it checks against. `./test.sh` installs every such package.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let found = if Path::new(name).is_absolute() {
        Some(PathBuf::from(name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: this test needs it; install the Debian package {package} (./test.sh does)")
    })
}

/// A shared library of the distribution (the allocators a test preloads
/// or links), or a failure naming its Debian package, as [`require_tool`].
pub fn require_library(file: &str, package: &str) -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join(file))
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!("{file} is not installed: this test needs it; install the Debian package {package} (./test.sh does)")
    })
}

static PROCESSES: RwLock<()> = RwLock::new(());

thread_local! {
    /// 0: no guard; >0: this thread holds that many shared guards; -1: it
    /// holds the exclusive one. std's RwLock lets a waiting writer block
    /// new readers, so a thread must never take a second read guard.
    static HELD: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// Held while a test has processes of its own running.
pub struct Shared(#[allow(dead_code)] Option<RwLockReadGuard<'static, ()>>);

impl Drop for Shared {
    fn drop(&mut self) {
        if self.0.is_some() {
            HELD.with(|h| h.set(h.get() - 1));
        }
    }
}

/// Held by tests that start processes. Pss (and the shared/private split)
/// of a page depends on how many processes map it, so a test that compares
/// two reads of them takes [`quiet_system`] and runs alone.
pub fn starting_processes() -> Shared {
    if HELD.with(|h| h.get()) != 0 {
        return Shared(None);
    }
    let g = PROCESSES.read().unwrap_or_else(|e| e.into_inner());
    HELD.with(|h| h.set(1));
    Shared(Some(g))
}

/// Exclusive use of the machine's process table for one test.
pub struct Quiet(#[allow(dead_code)] RwLockWriteGuard<'static, ()>);

impl Drop for Quiet {
    fn drop(&mut self) {
        HELD.with(|h| h.set(0));
    }
}

/// Waits until no other test has processes running, and keeps it so.
pub fn quiet_system() -> Quiet {
    assert_eq!(
        HELD.with(|h| h.get()),
        0,
        "take quiet_system before anything else"
    );
    let g = PROCESSES.write().unwrap_or_else(|e| e.into_inner());
    HELD.with(|h| h.set(-1));
    Quiet(g)
}

/// A running fixture process, killed on drop.
pub struct Fixture {
    _guard: Option<Shared>,
    pub child: Child,
    pub pid: u32,
    /// The `key=value` pairs of its READY line.
    pub info: HashMap<String, String>,
    /// The rest of its stdout, for [`Fixture::next_line`].
    stdout: Option<BufReader<ChildStdout>>,
    _dir: tempdir::TempDir,
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            TempDir::under(Path::new(env!("CARGO_TARGET_TMPDIR")), tag)
        }
        /// In the system's temporary directory, outside the repository
        /// (CARGO_TARGET_TMPDIR is inside its target/).
        pub fn in_system_tmp(tag: &str) -> TempDir {
            TempDir::under(&std::env::temp_dir(), &format!("vmmap-{tag}"))
        }
        fn under(parent: &Path, tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = parent.join(format!(
                "{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub use tempdir::TempDir;

impl Fixture {
    /// Starts the `target` fixture and waits for its READY line.
    pub fn start(spin: bool) -> Fixture {
        let bin = compile("target");
        let guard = starting_processes();
        let mut f = Fixture::start_bin(bin, spin);
        f._guard = Some(guard);
        f
    }

    /// Starts another fixture, `tests/fixtures/NAME.c` (same protocol: a
    /// directory argument, then a READY line).
    pub fn start_named(name: &str) -> Fixture {
        let bin = compile(name);
        let guard = starting_processes();
        let mut f = Fixture::start_bin(bin, false);
        f._guard = Some(guard);
        f
    }

    /// Starts a fixture built static ([`compile_static`]).
    pub fn start_static(name: &str) -> Fixture {
        let bin = compile_static(name);
        let guard = starting_processes();
        let mut f = Fixture::start_bin(bin, false);
        f._guard = Some(guard);
        f
    }

    /// Starts the fixture in a test that holds [`quiet_system`].
    pub fn start_alone() -> Fixture {
        Fixture::start_bin(compile("target"), false)
    }

    /// Starts the fixture under another executable name (a copy in `dir`),
    /// for tests that look processes up by name.
    pub fn start_as(name: &str, dir: &Path) -> Fixture {
        let bin = dir.join(name);
        if !bin.exists() {
            std::fs::copy(compile("target"), &bin).expect("copy fixture");
        }
        let guard = starting_processes();
        let mut f = Fixture::start_bin(bin, false);
        f._guard = Some(guard);
        f
    }

    /// Starts `tests/fixtures/NAME.c` with `args` after its directory.
    pub fn start_named_with(name: &str, args: &[&str]) -> Fixture {
        let bin = compile(name);
        let guard = starting_processes();
        let mut f = Fixture::start_bin_with(bin, args);
        f._guard = Some(guard);
        f
    }

    /// [`Fixture::start_named`] in a session of its own, as a service
    /// runs: the scheduler's autogroups then share the CPUs between its
    /// busy threads and vmmap as between two programs, rather than giving
    /// vmmap one share in hundreds.
    pub fn start_named_in_session(name: &str) -> Fixture {
        let bin = compile(name);
        let guard = starting_processes();
        let mut f = Fixture::spawn(bin, &[], true);
        f._guard = Some(guard);
        f
    }

    fn start_bin(bin: PathBuf, spin: bool) -> Fixture {
        Fixture::spawn(bin, if spin { &["spin"] } else { &[] }, false)
    }

    fn start_bin_with(bin: PathBuf, args: &[&str]) -> Fixture {
        Fixture::spawn(bin, args, false)
    }

    fn spawn(bin: PathBuf, args: &[&str], session: bool) -> Fixture {
        let dir = TempDir::new("target");
        let mut cmd = Command::new(bin);
        cmd.arg(dir.path());
        cmd.args(args);
        if session {
            use std::os::unix::process::CommandExt;
            // SAFETY: setsid is async-signal-safe and touches no memory of
            // the parent; it runs in the child between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start fixture");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("read READY");
        assert!(line.starts_with("READY"), "fixture said {line:?}");
        let info: HashMap<String, String> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let pid = child.id();
        Fixture {
            _guard: None,
            child,
            pid,
            info,
            stdout: Some(stdout),
            _dir: dir,
        }
    }

    /// The next line the fixture prints after READY (such as its answer to
    /// SIGUSR1), waiting at most `timeout`.
    pub fn next_line(&mut self, timeout: std::time::Duration) -> String {
        let mut out = self
            .stdout
            .take()
            .expect("the fixture's stdout was lost to an earlier timeout");
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread, so that a fixture that never answers fails the test
        // instead of hanging it; it ends when the fixture is killed.
        std::thread::spawn(move || {
            let mut line = String::new();
            let r = out.read_line(&mut line).map(|_| line);
            let _ = tx.send((r, out));
        });
        let (line, out) = rx
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("the fixture printed nothing in {timeout:?}"));
        self.stdout = Some(out);
        let line = line.expect("read the fixture's stdout");
        assert!(!line.is_empty(), "the fixture exited");
        line
    }

    /// An address from the READY line.
    pub fn addr(&self, key: &str) -> u64 {
        let v = &self.info[key];
        u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("{key}={v}"))
    }

    /// A thread id from the READY line.
    pub fn tid(&self, name: &str) -> u64 {
        self.info[&format!("tid_{name}")].parse().expect("tid")
    }

    /// Stops the process (SIGSTOP) and waits until the kernel says so, so
    /// that its memory cannot change between two reads.
    pub fn stop(&self) {
        signal(self.pid, libc_sig::SIGSTOP);
        for _ in 0..200 {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            if state == "T" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("fixture did not stop");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod libc_sig {
    pub const SIGUSR1: i32 = 10;
    pub const SIGUSR2: i32 = 12;
    pub const SIGTERM: i32 = 15;
    pub const SIGCONT: i32 = 18;
    pub const SIGSTOP: i32 = 19;
}

pub fn signal(pid: u32, sig: i32) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success());
}

/// Runs vmmap with arguments.
pub fn vmmap(args: &[&str]) -> Output {
    let _g = starting_processes();
    Command::new(VMMAP)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vmmap")
}

/// Runs vmmap and expects success.
pub fn vmmap_ok(args: &[&str]) -> String {
    let o = vmmap(args);
    assert!(
        o.status.success(),
        "vmmap {args:?} failed: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

/// `vmmap PID --json`, parsed.
pub fn snapshot_json(pid: u32, extra: &[&str]) -> Value {
    let p = pid.to_string();
    let mut args = vec![p.as_str(), "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&vmmap_ok(&args)).expect("valid JSON")
}

pub fn hex(v: &Value) -> u64 {
    let s = v.as_str().expect("hex string");
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex")
}

/// The top-level region containing `addr`.
pub fn region_at(snap: &Value, addr: u64) -> &Value {
    snap["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .find(|r| hex(&r["start"]) <= addr && addr < hex(&r["end"]))
        .unwrap_or_else(|| panic!("no region holds {addr:#x}"))
}

/// Every kernel VMA: sub-blocks of groups, and plain regions.
pub fn leaves(snap: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for r in snap["regions"].as_array().expect("regions") {
        match r.get("sub_blocks").and_then(Value::as_array) {
            Some(subs) => out.extend(subs.iter()),
            None => out.push(r),
        }
    }
    out
}

pub fn size(r: &Value) -> u64 {
    hex(&r["end"]) - hex(&r["start"])
}

pub fn fig(r: &Value, col: &str) -> u64 {
    r["figures"][col]
        .as_u64()
        .unwrap_or_else(|| panic!("figure {col} missing in {r}"))
}

/// A kB field of a /proc file, in bytes.
pub fn kb_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        * 1024
}

/// Runs `cmd` to the end like `Command::output`, but kills its whole
/// process group and fails the test after `secs` seconds: a hang (a
/// deadlocked traced program, say) must fail one test, not stall CI.
pub fn output_within(cmd: &mut Command, secs: u64) -> Output {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kill takes a process group id and a signal number.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("{cmd:?} did not finish within {secs} s (killed); stderr:\n{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Checks OpenMetrics or Prometheus text with `promtool check metrics`
/// (Debian package prometheus); a missing promtool fails the test.
pub fn promtool_check(text: &str) {
    let mut child = Command::new(require_tool("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("promtool");
    assert!(
        o.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The page-granular figures of `snap`, a snapshot of the stopped process
/// `pid` taken just now, equal smaps_rollup to the byte; Pss and SwapPss
/// within the kernel's per-VMA kB truncation (docs/metrics.md); Page Table
/// equal to VmPTE. The caller holds [`quiet_system`]: whether a page is
/// shared, and its Pss, depend on the other processes.
pub fn assert_reconciles(pid: u32, snap: &Value, what: &str) {
    const KB: u64 = 1024;
    // Rss, Swap, Locked and Anonymous do not depend on other processes:
    // read the rollup again here, independently of vmmap.
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", pid)).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid)).unwrap();
    let vmas = leaves(snap);
    let sum = |keys: &[&str]| -> u64 {
        vmas.iter()
            .map(|r| {
                keys.iter()
                    .map(|k| r["smaps"][*k].as_u64().unwrap_or(0))
                    .sum::<u64>()
            })
            .sum()
    };
    let ours = |keys: &[&str]| -> u64 {
        keys.iter()
            .map(|k| snap["rollup"][*k].as_u64().unwrap())
            .sum()
    };
    let independent = |keys: &[&str]| -> u64 { keys.iter().map(|k| kb_field(&rollup, k)).sum() };
    for keys in [&["Rss"][..], &["Swap"], &["Anonymous"]] {
        assert_eq!(sum(keys), independent(keys), "{what}: {keys:?}");
        assert_eq!(sum(keys), ours(keys), "{what}: {keys:?}");
    }
    // Whether a page counts as shared or private, and its Pss, depend on
    // which other processes map it at the instant of reading: vmmap itself
    // maps libc while it reads, and is gone by the time this test reads. So
    // these compare with the rollup vmmap read right after smaps.
    for keys in [
        &["Private_Clean", "Private_Dirty"][..],
        &["Shared_Clean", "Shared_Dirty"],
    ] {
        assert_eq!(sum(keys), ours(keys), "{what}: {keys:?}");
    }
    // Pss: each VMA's value is truncated to whole kB; the rollup truncates
    // once. Only VMAs with pages shared with other processes have a
    // fractional part (docs/metrics.md).
    let shared_vmas = vmas
        .iter()
        // Printed Pss < Rss: some page is shared, so the exact value may
        // have a fraction (counting Shared_* > 0 instead misses large
        // folios mapped twice on CONFIG_NO_PAGE_MAPCOUNT kernels).
        .filter(|r| {
            r["smaps"]["Pss"].as_u64().unwrap_or(0) < r["smaps"]["Rss"].as_u64().unwrap_or(0)
        })
        .count() as u64;
    let slack = shared_vmas.saturating_sub(1) * KB;
    let (pss, pss_rollup) = (sum(&["Pss"]), ours(&["Pss"]));
    assert!(
        pss <= pss_rollup && pss_rollup - pss <= slack,
        "{what}: Pss {pss} vs rollup {pss_rollup}, bound {slack}"
    );
    let (locked, locked_rollup) = (sum(&["Locked"]), independent(&["Locked"]));
    assert!(
        locked <= locked_rollup && locked_rollup - locked <= slack,
        "{what}: Locked {locked} vs {locked_rollup}"
    );
    let swap_vmas = vmas
        .iter()
        .filter(|r| r["smaps"]["Swap"].as_u64().unwrap_or(0) > 0)
        .count() as u64;
    let (spss, spss_rollup) = (sum(&["SwapPss"]), ours(&["SwapPss"]));
    assert!(spss <= spss_rollup && spss_rollup - spss <= swap_vmas.saturating_sub(1) * KB);
    eprintln!(
        "{what} reconciliation: {} VMAs, Rss {} bytes exact; Pss {pss} vs rollup {pss_rollup} (difference {} bytes, bound {slack} from {shared_vmas} shared VMAs)",
        vmas.len(),
        sum(&["Rss"]),
        pss_rollup - pss
    );

    let summary = snap["summary"].as_array().unwrap();
    let row = |t: &str| summary.iter().find(|r| r["type"] == t).unwrap();
    assert_eq!(
        row("page_table")["size"].as_u64(),
        Some(kb_field(&status, "VmPTE"))
    );
    let total = row("total");
    assert_eq!(total["total_ws"].as_u64(), Some(kb_field(&rollup, "Rss")));
    assert_eq!(total["locked_ws"].as_u64(), Some(locked));
    assert_eq!(total["pss"].as_u64(), Some(pss));
    assert_eq!(
        total["total_ws"].as_u64().unwrap(),
        total["private_ws"].as_u64().unwrap() + total["shareable_ws"].as_u64().unwrap()
    );
}

/// Kills and reaps the child when dropped, so a failed assertion leaves
/// no process behind.
pub struct Killed<'a>(pub &'a mut Child);

impl Drop for Killed<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `overmount` fixture run by nobody in a user and mount namespace of
/// its own (`unshare -rm`): a name it maps now leads, in its namespace,
/// to a FIFO nobody writes (fixtures/overmount.c).
pub struct Covered {
    pub child: Child,
    pub pid: u32,
    /// The address of the mapping whose name is covered.
    pub addr: u64,
}

impl Covered {
    /// `what`: a directory (a file `x` made there) or `libc`.
    pub fn start(what: &str) -> Covered {
        let prog = compile("overmount");
        let mut child = Command::new(require_tool("setpriv", "util-linux"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(require_tool("unshare", "util-linux"))
            .arg("-rm")
            .arg(&prog)
            .arg(what)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the overmount fixture");
        let killed = Killed(&mut child);
        let mut out = BufReader::new(killed.0.stdout.take().unwrap());
        let mut line = String::new();
        while !line.starts_with("ready") {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            assert!(n > 0, "the overmount fixture ended without covering");
        }
        let addr = u64::from_str_radix(line.trim().trim_start_matches("ready 0x"), 16)
            .unwrap_or_else(|_| panic!("the fixture said {line:?}"));
        // Kept alive past here: the Covered is killed when dropped.
        std::mem::forget(killed);
        // setpriv and unshare exec: the pid is the fixture's.
        let pid = child.id();
        Covered { child, pid, addr }
    }
}

impl Drop for Covered {
    fn drop(&mut self) {
        drop(Killed(&mut self.child));
    }
}

/// A tmpfs of `size` mounted on a directory while held (a disk that
/// fills), lazily unmounted on drop.
pub struct SmallFs(pub std::path::PathBuf);

impl SmallFs {
    pub fn mount(dir: std::path::PathBuf, size: &str) -> SmallFs {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "cannot mount a tmpfs on {}", dir.display());
        SmallFs(dir)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
