//! Chromium, against the real browser: headless chromium on a local page
//! (a file, no network) that holds some 20 MiB of JavaScript objects. Its
//! allocators are linked into the one executable, so vmmap finds them by
//! their layout (docs/runtimes.md): PartitionAlloc's pools in every
//! process, V8's cage and Oilpan's cage in the renderer. Each process type
//! must have at least 99% of its resident bytes typed (not Private Data).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// The share of resident bytes that coverage must reach in every process
/// type (the target of docs/runtimes.md's Coverage section).
const COVERAGE: f64 = 0.99;

/// The browser and its children, in their own process group, killed
/// together on drop.
struct Browser {
    child: Child,
    _dir: TempDir,
    _guard: Shared,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group is the browser's pid (process_group(0)): its zygotes,
        // renderers and utility processes are in it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn start_browser() -> Browser {
    let chromium = require_tool("chromium", "chromium");
    let guard = starting_processes();
    let dir = TempDir::in_system_tmp("chromium");
    let page = dir.path().join("page.html");
    std::fs::write(
        &page,
        "<!doctype html><title>hold</title><p>hold</p><script>\n\
         window.held = [];\n\
         for (let i = 0; i < 400000; i++) window.held.push({ i, s: 'x' + i });\n\
         document.title = 'ready';\n\
         </script>\n",
    )
    .expect("write the page");
    let child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    Browser {
        child,
        _dir: dir,
        _guard: guard,
    }
}

/// Every live descendant of `root`, with its command line.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if let Some(ppid) = ppid {
            procs.push((pid, ppid, cmd));
        }
    }
    let mut out = Vec::new();
    let mut parents = vec![root];
    while let Some(p) = parents.pop() {
        for (pid, ppid, cmd) in &procs {
            if *ppid == p {
                out.push((*pid, cmd.clone()));
                parents.push(*pid);
            }
        }
    }
    out
}

fn typ(r: &Value) -> &str {
    r["type"].as_str().unwrap_or_default()
}

fn details(r: &Value) -> &str {
    r["details"].as_str().unwrap_or_default()
}

fn rss(r: &Value) -> u64 {
    r["smaps"]["Rss"].as_u64().unwrap_or(0)
}

/// The top-level region of type `t` whose details start with `prefix`.
fn region<'a>(snap: &'a Value, t: &str, prefix: &str) -> Option<&'a Value> {
    snap["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .find(|r| typ(r) == t && details(r).starts_with(prefix))
}

/// Resident bytes of a region, summed over its sub-blocks.
fn region_rss(r: &Value) -> u64 {
    match r.get("sub_blocks").and_then(Value::as_array) {
        Some(subs) => subs.iter().map(rss).sum(),
        None => rss(r),
    }
}

/// The share of resident bytes typed other than Private Data, and the
/// largest Private Data VMA left (for the failure message).
fn coverage(snap: &Value) -> (f64, String) {
    let (mut total, mut private) = (0u64, 0u64);
    let mut largest = (0, String::new());
    for l in leaves(snap) {
        total += rss(l);
        if typ(l) == "private_data" {
            private += rss(l);
            if rss(l) > largest.0 {
                largest = (
                    rss(l),
                    format!("{} {} rss {}", l["start"], l["perms"], rss(l)),
                );
            }
        }
    }
    (1.0 - private as f64 / total.max(1) as f64, largest.1)
}

/// Asserts that `prefix` names a region of type `t` with evidence and
/// resident bytes in `snap`.
fn assert_typed(snap: &Value, what: &str, t: &str, prefix: &str) -> u64 {
    let r = region(snap, t, prefix)
        .unwrap_or_else(|| panic!("{what}: no {t} region whose details start {prefix:?}"));
    assert!(
        r["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("Chromium")),
        "{what}: {prefix} has no evidence: {r}"
    );
    let resident = region_rss(r);
    assert!(resident > 0, "{what}: {prefix} has nothing resident: {r}");
    resident
}

fn assert_covered(snap: &Value, what: &str) {
    let (share, largest) = coverage(snap);
    eprintln!("{what}: {:.2}% of resident bytes typed", share * 100.0);
    assert!(
        share >= COVERAGE,
        "{what}: only {:.2}% of resident bytes have a specific type (largest Private Data: {largest})",
        share * 100.0
    );
}

#[test]
fn chromium_allocators_are_typed_in_browser_and_renderer() {
    let browser = start_browser();
    let root = browser.child.id();
    // The page renderer is the one whose V8 cage holds the page's objects.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (renderer, snap) = loop {
        let found = descendants(root)
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("--type=renderer"))
            .find_map(|(pid, _)| {
                let snap = snapshot_json(pid, &[]);
                let cage = region(&snap, "managed_heap", "V8 pointer-compression cage")?;
                (region_rss(cage) >= 8 << 20).then_some((pid, snap))
            });
        if let Some(f) = found {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no renderer of chromium ({root}) has a V8 cage of 8 MiB resident typed Managed Heap; its processes: {:?}",
            descendants(root)
                .iter()
                .map(|(pid, cmd)| (pid, cmd.split_whitespace().find(|a| a.starts_with("--type="))))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_typed(
        &snap,
        "renderer",
        "managed_heap",
        "V8 pointer-compression cage",
    );
    assert_typed(&snap, "renderer", "heap", "PartitionAlloc core pools");
    // V8's handle tables: a sealed 64 KiB segment, segments after it.
    let tables: Vec<&Value> = snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| typ(r) == "managed_heap" && details(r).starts_with("V8 pointer table"))
        .collect();
    let resident: u64 = tables.iter().map(|r| region_rss(r)).sum();
    assert!(
        tables.len() >= 2 && resident > 0,
        "renderer: V8's pointer tables ({} bytes resident): {tables:?}",
        resident
    );
    assert_covered(&snap, "renderer");

    let snap = snapshot_json(root, &[]);
    let pools = assert_typed(&snap, "browser", "heap", "PartitionAlloc core pools");
    assert!(
        pools >= 4 << 20,
        "browser: only {pools} bytes resident in the pools"
    );
    let pools = region(&snap, "heap", "PartitionAlloc core pools").unwrap();
    let subs = pools["sub_blocks"]
        .as_array()
        .expect("the pools are a group");
    for part in ["regular pool: ", "BackupRefPtr pool: super page slot spans"] {
        assert!(
            subs.iter().any(|s| details(s).starts_with(part)),
            "browser: no sub-block of the pools is {part:?}: {pools}"
        );
    }
    assert_covered(&snap, "browser");

    // The other process types: GPU and network service.
    for kind in ["--type=gpu-process", "network.mojom.NetworkService"] {
        let (pid, _) = descendants(root)
            .into_iter()
            .find(|(p, cmd)| cmd.contains(kind) && *p != renderer)
            .unwrap_or_else(|| panic!("chromium ({root}) has no {kind} process"));
        let snap = snapshot_json(pid, &[]);
        assert_typed(&snap, kind, "heap", "PartitionAlloc core pools");
        assert_covered(&snap, kind);
    }
}
