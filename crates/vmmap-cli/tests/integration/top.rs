//! `vmmap top` as scripts use it (`--once`, `--json`), and the containers
//! of `ps` and `top`: processes in a PID namespace of their own and in a
//! cgroup named as a runtime names its containers' (the tmux test of the
//! live view is in `tui.rs`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// A running `grower` fixture under a name of its own (so that tests
/// running at once tell theirs apart), killed on drop.
pub struct Grower {
    child: Child,
    pub pid: u32,
    /// Bytes a second it grows by.
    pub rate: u64,
    _dir: TempDir,
    _guard: Shared,
}

impl Grower {
    /// Starts `grower` as `name`, writing `pages` pages a second; `wrap`
    /// runs it through another program (`unshare ...`).
    pub fn start(name: &str, pages: u32, wrap: &[&str]) -> Grower {
        let guard = starting_processes();
        let dir = TempDir::new("grower");
        let bin: PathBuf = dir.path().join(name);
        std::fs::copy(compile("grower"), &bin).expect("copy the grower fixture");
        let mut cmd = match wrap {
            [first, rest @ ..] => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            [] => Command::new(&bin),
        };
        cmd.arg(dir.path())
            .arg(pages.to_string())
            .stdout(Stdio::piped());
        // A process another test forks while the copy's descriptor is open
        // holds it until it execs: the copy is then "busy" for a moment.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.expect("start the grower fixture"),
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read READY");
        let rate = line
            .strip_prefix("READY rate=")
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or_else(|| panic!("grower said {line:?}"));
        // Through a wrapper, the fixture is the wrapper's descendant.
        let pid = if wrap.is_empty() {
            child.id()
        } else {
            find_descendant(child.id(), name)
        };
        Grower {
            child,
            pid,
            rate,
            _dir: dir,
            _guard: guard,
        }
    }
}

impl Drop for Grower {
    fn drop(&mut self) {
        // The fixture itself first: a wrapper's child may outlive it.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The descendant of `pid` whose command name is `name`.
fn find_descendant(pid: u32, name: &str) -> u32 {
    let children = |p: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect()
    };
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if comm.trim() == name {
            return p;
        }
        todo.extend(children(p));
    }
    panic!("no process {name} under {pid}");
}

/// The processes of a `top --json` document, but vmmap itself (whose
/// command line holds the --filter text).
fn rows(doc: &Value) -> Vec<&Value> {
    assert_eq!(doc["schema"], "vmmap.top");
    assert_eq!(doc["version"], 1);
    doc["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|r| r["name"] != "vmmap")
        .collect()
}

#[test]
fn top_once_json_puts_the_fastest_grower_first_with_its_growth_right_to_a_page_a_second() {
    let fast = Grower::start("growjsonfast", 128, &[]);
    let slow = Grower::start("growjsonslow", 32, &[]);
    let out = vmmap_ok(&[
        "top", "--once", "--json", "-d", "3s", "--filter", "growjson", "--pss",
    ]);
    let doc: Value = serde_json::from_str(&out).expect("JSON");
    let list = rows(&doc);
    let pids: Vec<u64> = list.iter().map(|r| r["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids, [fast.pid as u64, slow.pid as u64], "{out}");
    for (r, g) in list.iter().zip([&fast, &slow]) {
        let per_second = r["per_second"]["private"].as_i64().expect("a rate");
        let interval = r["interval"].as_f64().unwrap();
        assert!(
            (2.9..4.0).contains(&interval),
            "the two reads are --delay apart: {interval}"
        );
        assert!(
            (per_second - g.rate as i64).abs() <= 4096,
            "{} grows {} bytes a second; top says {per_second}",
            r["name"],
            g.rate
        );
        // Over the interval, and since the start (the same here).
        let grown = r["growth"]["private"].as_i64().unwrap();
        assert!((grown as f64 - g.rate as f64 * interval).abs() <= 4096.0 * 4.0);
        assert_eq!(r["since_start"]["private"], r["growth"]["private"]);
        assert!(r["figures"]["pss"].as_u64().is_some());
        let pss = r["per_second"]["pss"].as_i64().expect("PSS growth");
        // PSS also moves when other processes start or end sharing the
        // fixture's libraries (the other tests run beside this one): a
        // looser bound than Private's, still far below the rate.
        assert!((pss - g.rate as i64).abs() <= 4096 * 8, "PSS grows {pss}");
    }
    // The text table: same order, the growth column signed.
    let text = vmmap_ok(&["top", "--once", "-d", "1s", "--filter", "growjson"]);
    // vmmap lists itself too (its command line holds the filter).
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" vmmap ")).collect();
    assert!(
        lines[0].starts_with("3 processes; + is the growth over 1.0s; sorted by private-growth"),
        "{text}"
    );
    assert!(lines[1].contains("+PRIVATE"), "{text}");
    assert!(!lines[1].contains("PSS"), "PSS only with --pss: {text}");
    assert!(
        lines[2].trim_start().starts_with(&fast.pid.to_string()),
        "{text}"
    );
    assert!(lines[2].contains(" +"), "{text}");
    // --sort and --reverse.
    let out = vmmap_ok(&[
        "top", "--json", "-d", "0.5", "--filter", "growjson", "--sort", "pid", "-r",
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let mut want = [fast.pid as u64, slow.pid as u64];
    want.sort_unstable_by(|a, b| b.cmp(a));
    let got: Vec<u64> = rows(&doc)
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn top_refuses_bad_arguments_and_a_pipe_without_once() {
    let o = vmmap(&["top", "--sort", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("private-growth"));
    let o = vmmap(&["top", "--once", "--sort", "pss-growth"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --pss"));
    let o = vmmap(&["top", "-d", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = vmmap(&["top"]);
    assert_eq!(o.status.code(), Some(2), "stdout is a pipe here");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--once"));
    let o = vmmap(&["top", "--once", "--container", "no-such-container-zz"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no container matches"));
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("cgroup2 "))
        })
        .and_then(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .expect("a cgroup v2 hierarchy is mounted")
}

/// A cgroup named as Docker names a container's, removed on drop (after
/// the processes moved into it are gone).
struct FakeContainer {
    dir: PathBuf,
    id: String,
}

impl FakeContainer {
    fn new() -> FakeContainer {
        // 64 hex digits, different for every run.
        let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
        let mut id = String::new();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        while id.len() < 64 {
            for b in seed.bytes().chain(id.clone().into_bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
            id.push_str(&format!("{h:016x}"));
        }
        id.truncate(64);
        let dir = cgroup2_mount().join(format!("docker-{id}.scope"));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        FakeContainer { dir, id }
    }

    fn enter(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", self.dir.display()));
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        // Its processes are gone, but the kernel may take a moment to see
        // the cgroup empty.
        for _ in 0..500 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

fn ps_entry(list: &[Value], pid: u32) -> &Value {
    list.iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("{pid} not listed"))
}

#[test]
fn a_pid_namespace_and_a_docker_named_cgroup_show_in_ps_and_top_and_select_with_container() {
    let unshare = require_tool("unshare", "util-linux");
    let unshare = unshare.to_str().unwrap();
    // PID 1 of a namespace of its own (its /proc is its own; vmmap reads
    // the host's).
    let inside = Grower::start(
        "grownspid",
        0,
        &[unshare, "--pid", "--fork", "--mount-proc", "--kill-child"],
    );
    // Made first, so dropped last: a cgroup is removed once empty.
    let c = FakeContainer::new();
    let boxed = Grower::start("growdocker", 0, &[]);
    c.enter(boxed.pid);
    let short = &c.id[..12];

    let list: Value = serde_json::from_str(&vmmap_ok(&["ps", "--json"])).unwrap();
    let list = list.as_array().unwrap();
    let ns = ps_entry(list, inside.pid);
    assert_eq!(ns["ns_pid"], 1, "{ns}");
    let d = ps_entry(list, boxed.pid);
    assert_eq!(d["container"]["runtime"], "docker", "{d}");
    assert_eq!(d["container"]["id"], c.id.as_str());
    assert!(d.get("ns_pid").is_none());

    // The table has the two columns.
    let text = vmmap_ok(&["ps"]);
    let head = text.lines().next().unwrap();
    assert!(
        head.contains("NSPID") && head.contains("CONTAINER"),
        "{head}"
    );
    let line = |pid: u32| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("{pid} not in\n{text}"))
            .to_string()
    };
    assert!(
        line(boxed.pid).contains(&format!("docker:{short}")),
        "{text}"
    );
    let fields: Vec<String> = line(inside.pid)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(fields.iter().any(|f| f == "1"), "{fields:?}");

    // The snapshot's header says it too.
    let head = vmmap_ok(&[&boxed.pid.to_string(), "-s"]);
    assert!(
        head.lines()
            .any(|l| l == format!("Container:     docker:{short}")),
        "{head}"
    );
    let head = vmmap_ok(&[&inside.pid.to_string(), "-s"]);
    assert!(
        head.lines().any(|l| l == "PID namespace: PID 1 inside"),
        "{head}"
    );
    let snap = snapshot_json(boxed.pid, &[]);
    assert_eq!(
        snap["process"]["container"]["id"],
        c.id.as_str(),
        "{}",
        snap["process"]
    );

    // --container selects by a prefix of the id, or the label.
    for name in [&c.id[..8], &format!("docker:{}", &c.id[..5])] {
        let sel: Value =
            serde_json::from_str(&vmmap_ok(&["ps", "--json", "--container", name])).unwrap();
        let pids: Vec<u64> = sel
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pid"].as_u64().unwrap())
            .collect();
        assert_eq!(pids, [boxed.pid as u64], "--container {name}");
    }
    let top: Value = serde_json::from_str(&vmmap_ok(&[
        "top",
        "--json",
        "-d",
        "0.2",
        "--container",
        &c.id[..10],
    ]))
    .unwrap();
    let sel = rows(&top);
    assert_eq!(sel.len(), 1, "{top}");
    assert_eq!(sel[0]["pid"], boxed.pid);
    assert_eq!(sel[0]["container"]["id"], c.id.as_str());
    // --cgroup takes the path as /proc writes it or under the mount point.
    let path = c.dir.to_str().unwrap();
    for cg in [path.to_string(), format!("/docker-{}.scope", c.id)] {
        let top: Value =
            serde_json::from_str(&vmmap_ok(&["top", "--json", "-d", "0.2", "--cgroup", &cg]))
                .unwrap();
        let pids: Vec<u64> = rows(&top)
            .iter()
            .map(|r| r["pid"].as_u64().unwrap())
            .collect();
        assert_eq!(pids, [boxed.pid as u64], "--cgroup {cg}");
    }

    // top's table: both, with their namespace PID and container.
    let text = vmmap_ok(&["top", "--once", "-d", "0.2", "--filter", "grow"]);
    let head = text.lines().nth(1).unwrap();
    assert!(
        head.contains("NSPID") && head.contains("CONTAINER"),
        "{text}"
    );
    let row = |pid: u32| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("{pid} not in\n{text}"))
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(row(inside.pid)[1], "1", "{text}");
    assert!(
        row(boxed.pid).contains(&format!("docker:{short}")),
        "{text}"
    );
    let top: Value = serde_json::from_str(&vmmap_ok(&[
        "top",
        "--json",
        "-d",
        "0.2",
        "--filter",
        "grownspid",
    ]))
    .unwrap();
    let r = rows(&top)
        .into_iter()
        .find(|r| r["pid"] == inside.pid)
        .expect("listed");
    assert_eq!(r["ns_pid"], 1);
}
