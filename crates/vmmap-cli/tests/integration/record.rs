//! Recording over time (`vmmap watch`), reading it back (`vmmap open`,
//! `vmmap timeline`), and what survives a recorder killed mid-write.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn timeline_json(path: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&vmmap_ok(&["timeline", path, "--json"])).unwrap();
    assert_eq!(v["schema"], "vmmap.timeline");
    v["points"].as_array().unwrap().clone()
}

#[test]
fn watch_records_full_snapshots_when_the_mappings_change() {
    let mut fx = Fixture::start(false);
    let dir = TempDir::new("watch");
    let file = dir.path().join("rec.vmmap");
    let file = file.to_str().unwrap();
    let pid = fx.pid.to_string();
    // Four records, a full snapshot every second one at the latest.
    vmmap_ok(&[
        "watch",
        &pid,
        "--interval",
        "100ms",
        "--count",
        "4",
        "--full-every",
        "2",
        "-o",
        file,
    ]);
    let points = timeline_json(file);
    assert_eq!(points.len(), 4);
    let kinds: Vec<bool> = points.iter().map(|p| p["snapshot"].is_u64()).collect();
    assert_eq!(
        kinds,
        [true, false, true, false],
        "full, totals, full (every 2nd), totals"
    );
    // The same, but the process maps a new region during the recording:
    // that record is a full snapshot although --full-every would not ask
    // for one yet.
    let file2 = dir.path().join("rec2.vmmap");
    let file2 = file2.to_str().unwrap();
    let mut rec = Command::new(VMMAP)
        .args([
            "watch",
            &pid,
            "--interval",
            "300ms",
            "--count",
            "4",
            "--full-every",
            "100",
            "-o",
            file2,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(450));
    signal(fx.pid, libc_sig::SIGUSR1);
    assert!(fx.next_line(Duration::from_secs(10)).starts_with("MAPPED"));
    assert!(rec.wait().unwrap().success());
    let points = timeline_json(file2);
    let full: Vec<usize> = points
        .iter()
        .filter_map(|p| p["snapshot"].as_u64())
        .map(|s| s as usize)
        .collect();
    assert_eq!(
        full.len(),
        2,
        "the first record and the one after the new mapping: {points:?}"
    );
    // The second full snapshot has the new region; `open --snapshot` picks it.
    let snap: Value =
        serde_json::from_str(&vmmap_ok(&["open", file2, "--snapshot", "2", "--json"])).unwrap();
    assert!(snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["start"] == "0x300090000000"));
    let first: Value =
        serde_json::from_str(&vmmap_ok(&["open", file2, "--snapshot", "1", "--json"])).unwrap();
    assert!(!first["regions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["start"] == "0x300090000000"));
}

/// The timeline's totals are the kernel's: each full snapshot's Rss is its
/// smaps_rollup Rss, and the per-type working sets add up to it exactly.
#[test]
fn timeline_totals_equal_the_rollup() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("tl");
    let file = dir.path().join("t.vmmap");
    let file = file.to_str().unwrap();
    vmmap_ok(&[
        "watch",
        &fx.pid.to_string(),
        "--interval",
        "50ms",
        "--count",
        "3",
        "--full-every",
        "1",
        "-o",
        file,
    ]);
    let points = timeline_json(file);
    assert_eq!(points.len(), 3);
    for (i, p) in points.iter().enumerate() {
        let snap: Value = serde_json::from_str(&vmmap_ok(&[
            "open",
            file,
            "--snapshot",
            &(i + 1).to_string(),
            "--json",
        ]))
        .unwrap();
        assert_eq!(p["rss"], snap["rollup"]["Rss"], "point {i}");
        let ws: u64 = p["by_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["working_set"].as_u64().unwrap())
            .sum();
        assert_eq!(
            Some(ws),
            p["rss"].as_u64(),
            "per-type working sets add up to Rss at point {i}"
        );
    }
    let csv = vmmap_ok(&["timeline", file, "--csv"]);
    assert_eq!(csv.lines().count(), 4, "header and three rows");
    assert!(csv.starts_with("time_s,taken_at_unix_ns,snapshot,rss,pss"));
}

/// SIGKILL the recorder while it writes: every snapshot it completed loads.
#[test]
fn a_killed_recorder_leaves_a_loadable_file() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("kill");
    let file = dir.path().join("k.vmmap");
    let path = file.to_str().unwrap();
    let mut rec = Command::new(VMMAP)
        .args([
            "watch",
            &fx.pid.to_string(),
            "--interval",
            "20ms",
            "--full-every",
            "1",
            "-o",
            path,
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 40_000
        && t.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    rec.kill().unwrap();
    rec.wait().unwrap();
    let o = vmmap(&["open", path, "-s"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("Process:       {}", fx.pid)));
    assert!(timeline_json(path).len() >= 2);
}

#[test]
fn open_rejects_what_is_not_a_recording() {
    let dir = TempDir::new("bad");
    let p = dir.path().join("x.vmmap");
    std::fs::write(&p, b"hello").unwrap();
    let o = vmmap(&["open", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a vmmap file"));
    let mut future = b"VMMAPSNP".to_vec();
    future.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&p, future).unwrap();
    let o = vmmap(&["open", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&o.stderr).contains("newer than this vmmap reads"));
}

/// The fixture grows, unmaps, mprotects and shrinks known regions between
/// two snapshots: the diff reports exactly those changes and nothing else.
#[test]
fn diff_reports_exactly_the_changes() {
    let mut fx = Fixture::start(false);
    let dir = TempDir::new("diff");
    let (a, b) = (dir.path().join("a.vmmap"), dir.path().join("b.vmmap"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let pid = fx.pid.to_string();
    // Warm the fixture's output path (stdio buffers, stack) first.
    signal(fx.pid, libc_sig::SIGUSR1);
    assert!(fx.next_line(Duration::from_secs(10)).starts_with("MAPPED"));
    fx.stop();
    vmmap_ok(&[&pid, "-o", a]);
    signal(fx.pid, libc_sig::SIGUSR2);
    signal(fx.pid, 18); // SIGCONT
    assert_eq!(fx.next_line(Duration::from_secs(10)).trim(), "CHANGED");
    fx.stop();
    vmmap_ok(&[&pid, "-o", b]);
    let d: Value = serde_json::from_str(&vmmap_ok(&["diff", a, b, "--json"])).unwrap();
    assert_eq!(d["schema"], "vmmap.diff");
    let mut got: Vec<(String, Vec<String>)> = d["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let side = if c["after"].is_null() {
                &c["before"]
            } else {
                &c["after"]
            };
            let kinds = c["kinds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            (side["start"].as_str().unwrap().to_string(), kinds)
        })
        .collect();
    got.sort();
    let want: Vec<(String, Vec<String>)> = vec![
        ("0x300010000000".into(), vec!["removed".into()]),
        ("0x300030000000".into(), vec!["protection_changed".into()]),
        ("0x300060000000".into(), vec!["shrunk".into()]),
        (
            "0x300070000000".into(),
            vec!["grown".into(), "figures_changed".into()],
        ),
    ];
    assert_eq!(
        got,
        want,
        "{}",
        serde_json::to_string_pretty(&d["regions"]).unwrap()
    );
    let total = d["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "total")
        .unwrap();
    let mb = 1024 * 1024;
    let pt = d["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page_table")
        .unwrap();
    // +16M grown, -64K file, -8M reservation; the Total also counts the
    // page tables (VmPTE), which changed with the mappings.
    assert_eq!(
        total["size"].as_i64().unwrap() - pt["size"].as_i64().unwrap(),
        16 * mb - 64 * 1024 - 8 * mb
    );
    let csv = vmmap_ok(&["diff", a, b, "--csv"]);
    assert!(csv.starts_with("row,type,kinds,before_start"));
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("region,")).count(),
        4,
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("region,private_data,grown|figures_changed,0x300070000000,")),
        "{csv}"
    );
    let text = vmmap_ok(&["diff", a, b]);
    assert!(
        text.lines()
            .any(|l| l.starts_with('-') && l.contains("300010000000")),
        "{text}"
    );
}

/// `--written` reports the region the fixture maps and writes between the
/// two snapshots, with exactly its size, and not the idle regions. On a
/// kernel without soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY, as this
/// project's development machines) it must refuse, saying why.
#[test]
fn written_since_reports_the_written_region() {
    let soft_dirty = std::fs::read_to_string("/proc/self/smaps")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("VmFlags:") && l.split_whitespace().any(|f| f == "sd"));
    let mut fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    if !soft_dirty {
        let o = vmmap(&["diff", &pid, "--after", "10ms", "--written"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(7), "{err}");
        assert!(err.contains("CONFIG_MEM_SOFT_DIRTY"), "{err}");
        eprintln!("this kernel has no soft-dirty tracking: checked the refusal only");
        return;
    }
    let child = Command::new(VMMAP)
        .args(["diff", &pid, "--after", "1500ms", "--written", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first snapshot and the clearing take milliseconds.
    std::thread::sleep(Duration::from_millis(500));
    signal(fx.pid, libc_sig::SIGUSR1);
    assert!(fx.next_line(Duration::from_secs(10)).starts_with("MAPPED"));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let written = d["written"].as_array().expect("a written list");
    let at = |a: &str| written.iter().find(|w| w["start"] == a);
    assert_eq!(
        at("0x300090000000").map(|w| w["written_bytes"].as_u64()),
        Some(Some(512 * 1024))
    );
    for idle in [
        "0x300010000000",
        "0x300050000000",
        "0x300070000000",
        "0x300080000000",
    ] {
        assert!(at(idle).is_none(), "{idle} was not written: {written:?}");
    }
}
