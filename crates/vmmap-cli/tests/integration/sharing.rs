//! Exact sharing, multi-process totals and image sections, on a fixture
//! whose parent and child share known pages (tests/fixtures/sharing.c).

use std::os::unix::fs::FileExt;

use serde_json::Value;

use crate::util::*;

const PAGE: u64 = 4096;

fn is_root() -> bool {
    std::fs::File::open("/proc/kpagecount").is_ok()
}

fn start() -> (Fixture, u32) {
    let f = Fixture::start_named("sharing");
    let child: u32 = f.info["child"].parse().expect("child pid");
    (f, child)
}

fn n(f: &Fixture, key: &str) -> u64 {
    f.info[key].parse().expect("count")
}

#[test]
fn exact_shared_ws_is_the_pages_both_processes_map() {
    let (f, child) = start();
    let (file, shm) = (f.addr("file"), f.addr("shm"));
    let (fp, sp, cf, cs) = (
        n(&f, "file_pages"),
        n(&f, "shm_pages"),
        n(&f, "child_file"),
        n(&f, "child_shm"),
    );
    let parent = snapshot_json(f.pid, &["--sharing", "exact"]);
    let kid = snapshot_json(child, &["--sharing", "exact"]);
    assert_eq!(parent["sharing"]["source"], "exclusive_bit");
    let mut snaps = vec![(parent.clone(), fp, sp), (kid, cf, cs)];
    if is_root() {
        // The cross-check: each shared page's mapcount from kpagecount.
        let parent = snapshot_json(f.pid, &["--sharing", "kpagecount"]);
        assert_eq!(parent["sharing"]["source"], "kpagecount");
        let kid = snapshot_json(child, &["--sharing", "kpagecount"]);
        snaps.push((parent, fp, sp));
        snaps.push((kid, cf, cs));
    }
    for (snap, file_ws, shm_ws) in &snaps {
        let (snap, file_ws, shm_ws) = (snap, *file_ws, *shm_ws);
        let r = region_at(snap, file);
        assert_eq!(fig(r, "shareable_ws"), file_ws * PAGE, "{r}");
        assert_eq!(fig(r, "shared_ws"), cf * PAGE, "{r}");
        assert_eq!(fig(r, "total_ws"), file_ws * PAGE);
        assert_eq!(fig(r, "private_ws"), 0);
        let r = region_at(snap, shm);
        assert_eq!(fig(r, "shareable_ws"), shm_ws * PAGE, "{r}");
        assert_eq!(fig(r, "shared_ws"), cs * PAGE, "{r}");
        assert_eq!(r["pages"]["resident"].as_u64(), Some(shm_ws * PAGE));
    }
    // The per-type Summary adds the regions' exact figures.
    let row = |snap: &Value, t: &str| -> Value {
        snap["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == t)
            .unwrap_or_else(|| panic!("no {t} row"))
            .clone()
    };
    assert_eq!(
        row(&parent, "mapped_file")["shared_ws"].as_u64(),
        Some(cf * PAGE),
        "only the data file is a Mapped File"
    );
}

#[test]
fn combined_report_counts_shared_pages_once() {
    let (f, child) = start();
    let (fp, sp, cf, cs) = (
        n(&f, "file_pages"),
        n(&f, "shm_pages"),
        n(&f, "child_file"),
        n(&f, "child_shm"),
    );
    f.stop();
    let out = vmmap_ok(&[&f.pid.to_string(), &child.to_string(), "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "vmmap.combined");
    let c = &v["combined"];
    let expect = if is_root() { "frame_union" } else { "pss_sum" };
    assert_eq!(c["counted_once"], expect);
    let row = |t: &str| -> &Value {
        c["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["memory_type"] == t)
            .unwrap()
    };
    let u = |r: &Value, k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    for (t, all, both) in [("mapped_file", fp, cf), ("shareable", sp, cs)] {
        let r = row(t);
        // Each process counts the pages it maps; together the shared
        // ones count twice, once only in the combined working set.
        assert_eq!(u(r, "total_ws_sum"), (all + both) * PAGE, "{t}: {r}");
        assert_eq!(u(r, "total_ws_once"), all * PAGE, "{t}: {r}");
        // These pages are mapped by these two processes alone, so the sum
        // of PSS is the same count.
        assert_eq!(u(r, "pss"), all * PAGE, "{t}: {r}");
        if is_root() {
            assert_eq!(u(r, "shareable_ws_once"), all * PAGE);
            assert_eq!(u(r, "private_ws_once"), 0);
        }
    }
    let pids: Vec<u64> = c["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, [u64::from(f.pid), u64::from(child)]);
    // The text report says how it counted.
    let text = vmmap_ok(&[&f.pid.to_string(), &child.to_string()]);
    assert!(text.contains("Counted once:"), "{text}");
    assert!(text.contains("Mapped File"), "{text}");
}

/// Resident shared pages behind PROT_NONE: smaps counts them in Rss (Linux
/// 6.x), so exact sharing counts them as shareable (and shared where both
/// processes map them), not as Private WS, and the combined report counts
/// them once rather than dropping them.
#[test]
fn prot_none_shared_pages_are_counted() {
    let f = Fixture::start_named("prot_none_shared");
    let child: u32 = f.info["child"].parse().expect("child pid");
    let (none, all, both) = (f.addr("none"), n(&f, "pages"), n(&f, "child_pages"));
    f.stop();
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", f.pid)).unwrap();
    let rss = smaps
        .split_once(&format!("{none:x}-"))
        .map(|(_, rest)| kb_field(rest, "Rss"))
        .expect("the mapping in smaps");
    assert_eq!(rss, all * PAGE, "this kernel counts PROT_NONE pages in Rss");
    let snap = snapshot_json(f.pid, &["--sharing", "exact"]);
    let r = region_at(&snap, none);
    assert_eq!(r["perms"], "---s", "{r}");
    assert_eq!(fig(r, "total_ws"), all * PAGE, "{r}");
    assert_eq!(fig(r, "shareable_ws"), all * PAGE, "{r}");
    assert_eq!(fig(r, "shared_ws"), both * PAGE, "{r}");
    assert_eq!(fig(r, "private_ws"), 0, "{r}");
    let out = vmmap_ok(&[&f.pid.to_string(), &child.to_string(), "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let c = &v["combined"];
    let expect = if is_root() { "frame_union" } else { "pss_sum" };
    assert_eq!(c["counted_once"], expect);
    let row = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["memory_type"] == "shareable")
        .expect("a Shareable row");
    assert_eq!(row["total_ws_sum"], (all + both) * PAGE, "{row}");
    assert_eq!(row["total_ws_once"], all * PAGE, "{row}");
    if is_root() {
        assert_eq!(row["shareable_ws_once"], all * PAGE, "{row}");
        assert_eq!(row["private_ws_once"], 0, "{row}");
    }
}

#[test]
fn children_option_adds_the_forked_child() {
    let (f, child) = start();
    let out = vmmap_ok(&[&f.pid.to_string(), "--children", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let pids: Vec<u64> = v["combined"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, [u64::from(f.pid), u64::from(child)]);
}

/// The cgroup v2 mount point, from mountinfo.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(Into::into))?
    })
}

#[test]
fn cgroup_option_reads_the_members() {
    let (f, child) = start();
    let o = vmmap(&["--cgroup", "/nonexistent/cg"]);
    assert!(
        !o.status.success(),
        "a cgroup that does not exist is refused"
    );
    // Creating a cgroup needs root and a writable cgroup2 mount: without
    // them the test fails rather than passing untested.
    assert!(
        is_root(),
        "this test creates a cgroup: run the tests as root"
    );
    let root = cgroup2_mount().expect("this test needs a cgroup2 file system mounted");
    let dir = root.join(format!("vmmap-test-{}", f.pid));
    if let Err(e) = std::fs::create_dir(&dir) {
        panic!(
            "cannot create the cgroup {} ({e}): the tests need a writable cgroup2 file system",
            dir.display()
        );
    }
    let home = std::fs::read_to_string(format!("/proc/{}/cgroup", f.pid)).unwrap();
    let home = home
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .to_string();
    let procs = dir.join("cgroup.procs");
    let moved = [f.pid, child]
        .iter()
        .all(|p| std::fs::write(&procs, p.to_string()).is_ok());
    let out = moved.then(|| vmmap(&["--cgroup", dir.to_str().unwrap(), "--json"]));
    // Put them back before asserting, so that the cgroup can go.
    for p in [f.pid, child] {
        let _ = std::fs::write(
            root.join(home.trim_start_matches('/')).join("cgroup.procs"),
            p.to_string(),
        );
    }
    let _ = std::fs::remove_dir(&dir);
    assert!(
        moved,
        "cannot move processes into the cgroup {}: the tests need a writable cgroup2 file system",
        dir.display()
    );
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut pids: Vec<u64> = v["combined"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    let mut want = [u64::from(f.pid), u64::from(child)];
    want.sort_unstable();
    assert_eq!(pids, want);
}

/// Present and present-anonymous pages of `start..end`, read directly from
/// pagemap: the reference the section figures must match.
fn pagemap_counts(pid: u32, start: u64, end: u64) -> (u64, u64) {
    let f = std::fs::File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let (first, last) = (start / PAGE, end.div_ceil(PAGE));
    let mut b = vec![0u8; ((last - first) * 8) as usize];
    f.read_exact_at(&mut b, first * 8).unwrap();
    let (mut present, mut anon) = (0, 0);
    for e in b.chunks_exact(8) {
        let e = u64::from_le_bytes(e.try_into().unwrap());
        if e >> 63 & 1 == 1 {
            present += 1;
            if e >> 61 & 1 == 0 {
                anon += 1;
            }
        }
    }
    (present * PAGE, anon * PAGE)
}

#[test]
fn image_sections_have_per_section_figures() {
    let (f, _child) = start();
    f.stop();
    let (data, bss) = (f.addr("data"), f.addr("bss"));
    let snap = snapshot_json(f.pid, &["--sections"]);
    let image = region_at(&snap, data);
    assert_eq!(image["type"], "image");
    let sections = image["sections"].as_array().expect("sections");
    let sec = |name: &str| -> &Value {
        sections
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {sections:?}"))
    };
    for (name, arr, pages, touched) in [
        (".data", data, 64, n(&f, "data_touched")),
        (".bss", bss, 256, n(&f, "bss_touched")),
    ] {
        let s = sec(name);
        let (start, end) = (hex(&s["start"]), hex(&s["end"]));
        // Placed where the program's own symbol lies.
        assert!(start <= arr && arr + pages * PAGE <= end, "{name}: {s}");
        assert!(end - start <= (pages + 1) * PAGE, "{name}: {s}");
        let (present, anon) = pagemap_counts(f.pid, start, end);
        assert_eq!(s["resident"].as_u64(), Some(present), "{name}: {s}");
        assert_eq!(s["private"].as_u64(), Some(anon), "{name}: {s}");
        // The written pages are private copies; at most the two edge
        // pages, which hold other variables, add to them.
        let private = s["private"].as_u64().unwrap() / PAGE;
        assert!(
            (touched..=touched + 2).contains(&private),
            "{name}: {private} private pages, {touched} written"
        );
    }
    assert!(sections.iter().any(|s| s["name"] == ".text"));
    // The text report marks the derived rows.
    let text = vmmap_ok(&[&f.pid.to_string(), "--sections", "-t", "image"]);
    assert!(
        text.lines()
            .any(|l| l.contains("\u{a7} .data") && l.contains("private")),
        "{text}"
    );
    // Sections are derived rows: the image's own figures are unchanged.
    // (Figures that other processes cannot change: PSS and Shared WS of the
    // fixture binary move when other tests start it.)
    let plain = snapshot_json(f.pid, &[]);
    for c in ["size", "committed", "private", "private_ws", "total_ws"] {
        assert_eq!(fig(region_at(&plain, data), c), fig(image, c), "{c}");
    }
}

#[test]
fn shared_with_names_the_child_and_its_page_count() {
    let (f, child) = start();
    let file = f.addr("file");
    let o = vmmap(&[
        &f.pid.to_string(),
        "-a",
        &format!("{file:#x}"),
        "--shared-with",
        "--json",
    ]);
    if !is_root() {
        assert_eq!(o.status.code(), Some(4), "needs root: permission denied");
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["resident_pages"].as_u64(), Some(n(&f, "file_pages")));
    let others = v["shared_with"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others[0]["pid"].as_u64(), Some(u64::from(child)));
    assert_eq!(others[0]["pages"].as_u64(), Some(n(&f, "child_file")));
    assert!(others[0]["mappings"][0]
        .as_str()
        .unwrap()
        .ends_with("shared.dat"));
}

/// A process started as `nobody` (uid 65534), killed on drop.
struct Nobody {
    child: std::process::Child,
    info: std::collections::HashMap<String, String>,
    dir: std::path::PathBuf,
}

impl Drop for Nobody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const AS_NOBODY: [&str; 4] = [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
];

/// Runs vmmap as nobody.
fn vmmap_as_nobody(args: &[&str]) -> std::process::Output {
    std::process::Command::new(require_tool("setpriv", "util-linux"))
        .args(AS_NOBODY)
        .arg(VMMAP)
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn without_root_sharing_uses_the_exclusive_bit_and_pss() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    // The test drops to nobody itself, so it must start as root.
    assert!(
        is_root(),
        "this test drops to an unprivileged user: run the tests as root"
    );
    let _g = starting_processes();
    let dir = std::env::temp_dir().join(format!("vmmap-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut child = std::process::Command::new(require_tool("setpriv", "util-linux"))
        .args(AS_NOBODY)
        .arg(compile("sharing"))
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = Nobody { child, info, dir };
    assert!(line.starts_with("READY"), "{line:?}");
    let num = |k: &str| -> u64 { p.info[k].parse().unwrap() };
    let file = u64::from_str_radix(p.info["file"].trim_start_matches("0x"), 16).unwrap();
    let (pid, kid) = (p.child.id().to_string(), p.info["child"].clone());

    let o = vmmap_as_nobody(&[&pid, "--json", "--sharing", "exact"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snap: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(snap["sharing"]["source"], "exclusive_bit");
    let r = region_at(&snap, file);
    assert_eq!(fig(r, "shareable_ws"), num("file_pages") * PAGE);
    assert_eq!(fig(r, "shared_ws"), num("child_file") * PAGE);

    let o = vmmap_as_nobody(&[&pid, &kid, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["combined"];
    assert_eq!(c["counted_once"], "pss_sum");
    let row = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["memory_type"] == "mapped_file")
        .unwrap();
    assert_eq!(
        row["total_ws_once"].as_u64(),
        Some(num("file_pages") * PAGE)
    );
    assert_eq!(row["shareable_ws_once"], Value::Null, "needs frames");

    // kpagecount is root's: asking for it is refused (exit 4).
    let o = vmmap_as_nobody(&[&pid, "--sharing", "kpagecount"]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Frame numbers are root's: --shared-with says so (exit 4).
    let o = vmmap_as_nobody(&[&pid, "-a", &format!("{file:#x}"), "--shared-with"]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
