//! `vmmap report`: the single-file HTML report, checked as data (the
//! embedded JSON against `vmmap --json`) and in a real browser (headless
//! Chromium driven by `tests/browser/report.mjs`: clicks, expansion,
//! diff, 60,000 regions, no network, valid HTML, screenshots).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vmmap_render::report::{write_html, CallTreeNode, ReportInput};

use crate::util::*;

pub(crate) fn embedded(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"vmmap-data\">";
    let from = html.find(open).expect("data element") + open.len();
    let len = html[from..].find("</script>").expect("end of data");
    serde_json::from_str(&html[from..from + len]).expect("data is JSON")
}

fn addr(v: u64) -> String {
    format!("0x{v:012x}")
}

/// Top-level starts of an embedded snapshot, decoded as the page does.
fn starts(snap: &Value, au: u64) -> Vec<u64> {
    let mut cur = 0i64;
    let r = &snap["r"];
    (0..r["z"].as_array().unwrap().len())
        .map(|i| {
            let s = cur + r["a"][i].as_i64().unwrap();
            cur = s + r["z"][i].as_i64().unwrap();
            s as u64 * au
        })
        .collect()
}

#[test]
fn report_of_a_live_process_holds_its_snapshot() {
    let fx = Fixture::start(false);
    fx.stop();
    let dir = TempDir::new("report-live");
    let file = dir.path().join("live.html");
    let pid = fx.pid.to_string();
    let said = vmmap_ok(&["report", &pid, "-o", file.to_str().unwrap()]);
    assert!(said.contains("bytes per region"), "{said}");
    let snap = snapshot_json(fx.pid, &[]);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(said.contains(&format!("wrote {}: {} bytes", file.display(), html.len())));
    let d = embedded(&html);
    assert_eq!(d["process"]["pid"], fx.pid);
    let s = &d["snaps"][0];
    let want: Vec<u64> = snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| hex(&r["start"]))
        .collect();
    assert_eq!(starts(s, d["au"].as_u64().unwrap()), want);
    // Every Summary figure is the one `vmmap --json` gives (but Shared
    // WS, which moves with the other processes mapping the same pages).
    let cols: Vec<&str> = d["sum_cols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for (i, row) in snap["summary"].as_array().unwrap().iter().enumerate() {
        for (k, c) in cols.iter().enumerate() {
            if *c != "shared_ws" {
                assert_eq!(s["sum"][i][k], row[*c], "{} {c}", row["type"]);
            }
        }
    }
}

#[test]
fn report_wants_an_html_file_and_a_snapshot() {
    let dir = TempDir::new("report-bad");
    let out = dir.path().join("r.txt");
    let o = vmmap(&["report", "1", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let junk = dir.path().join("junk.vmmap");
    std::fs::write(&junk, b"not a recording").unwrap();
    let html = dir.path().join("r.html");
    let o = vmmap(&[
        "report",
        junk.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(11), "{o:?}");
    assert!(!html.exists());
}

#[test]
fn report_of_a_vmmap_mmp_file() {
    let dir = TempDir::new("report-mmp");
    let mmp = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mmp/nested.mmp");
    let html = dir.path().join("mmp.html");
    vmmap_ok(&[
        "report",
        mmp.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    let d = embedded(&std::fs::read_to_string(&html).unwrap());
    let snap: Value =
        serde_json::from_str(&vmmap_ok(&["open", mmp.to_str().unwrap(), "--json"])).unwrap();
    let want: Vec<u64> = snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| hex(&r["start"]))
        .collect();
    assert_eq!(want.len(), 9);
    assert_eq!(starts(&d["snaps"][0], d["au"].as_u64().unwrap()), want);
    assert_eq!(d["source"], "nested.mmp");
    let strings = d["strings"].as_array().unwrap();
    assert!(strings
        .iter()
        .any(|s| s == "C:\\Windows\\System32\\ntdll.dll"));
}

/// Node, Chromium and the browser test's npm packages, or a failure that
/// says what to install. The test never installs anything itself (a test
/// must not touch the network): `./test.sh` runs `npm ci` in tests/browser
/// when it installs the system packages.
fn browser_tools() -> (PathBuf, PathBuf) {
    let chromium = std::env::var("VMMAP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromium = require_tool(&chromium, "chromium");
    let node = Command::new(require_tool("node", "nodejs"))
        .arg("--version")
        .output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node does not run: the HTML report's browser test needs Node.js 18 or later"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    for package in ["playwright-core", "html-validate"] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{package} is not installed in {}: run `npm ci` there (./test.sh does)",
            dir.display()
        );
    }
    (dir, chromium)
}

/// Records the fixture with `vmmap watch` while it maps a region (SIGUSR1)
/// and then changes several (SIGUSR2), until the file holds a snapshot
/// with every change.
fn record(fx: &mut Fixture, file: &Path) {
    let pid = fx.pid.to_string();
    let mut rec = Command::new(VMMAP)
        .args([
            "watch",
            &pid,
            "--interval",
            "150ms",
            "--full-every",
            "3",
            "-o",
        ])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let has = |start: u64, present: bool| {
        let Ok(l) = vmmap_core::format::load_file(file) else {
            return false;
        };
        l.snapshots
            .last()
            .is_some_and(|s| s.regions.iter().any(|r| r.start == start) == present)
    };
    let wait = |what: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while !what() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the recording never caught up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(&|| has(0x3000_0000_0000 + 0x1000_0000, true));
    std::thread::sleep(Duration::from_millis(400));
    signal(fx.pid, libc_sig::SIGUSR1);
    assert!(fx.next_line(Duration::from_secs(10)).starts_with("MAPPED"));
    wait(&|| has(0x3000_9000_0000, true));
    std::thread::sleep(Duration::from_millis(400));
    signal(fx.pid, libc_sig::SIGUSR2);
    assert_eq!(fx.next_line(Duration::from_secs(10)).trim(), "CHANGED");
    // The data file at slot 1 is unmapped by SIGUSR2.
    wait(&|| has(0x3000_1000_0000, false));
    std::thread::sleep(Duration::from_millis(400));
    signal(rec.id(), libc_sig::SIGTERM);
    assert!(rec.wait().unwrap().success());
}

fn tree() -> CallTreeNode {
    let leaf = |name: &str, loc: &str, bytes, count, live| CallTreeNode {
        name: name.into(),
        location: Some(loc.into()),
        bytes,
        count,
        live_bytes: live,
        children: Vec::new(),
    };
    let node = |name: &str, children: Vec<CallTreeNode>| CallTreeNode {
        name: name.into(),
        location: None,
        bytes: children.iter().map(|c| c.bytes).sum(),
        count: children.iter().map(|c| c.count).sum(),
        live_bytes: children.iter().map(|c| c.live_bytes).sum(),
        children,
    };
    node(
        "all",
        vec![node(
            "main",
            vec![
                node(
                    "load_config",
                    vec![leaf("parse_line", "config.c:88", 40 << 10, 900, 0)],
                ),
                node(
                    "serve",
                    vec![
                        leaf("alloc_buffer", "net.c:120", 3 << 20, 12, 1 << 20),
                        leaf("new_session", "session.c:31", 512 << 10, 2048, 256 << 10),
                    ],
                ),
            ],
        )],
    )
}

#[test]
fn reports_work_in_a_browser() {
    let (browser_dir, chromium) = browser_tools();
    let dir = TempDir::new("report-browser");
    let p = |n: &str| dir.path().join(n);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/report-screenshots");
    let shots = std::fs::create_dir_all(&shots)
        .and_then(|()| shots.canonicalize())
        .unwrap();

    // A live process, frozen so that `vmmap --json` sees the same map.
    let mut fx = Fixture::start(false);
    fx.stop();
    let pid = fx.pid.to_string();
    vmmap_ok(&["report", &pid, "-o", p("live.html").to_str().unwrap()]);
    let live = snapshot_json(fx.pid, &[]);
    signal(fx.pid, 18); // SIGCONT

    // A recording with several snapshots and samples.
    let rec = p("rec.vmmap");
    record(&mut fx, &rec);
    vmmap_ok(&[
        "report",
        rec.to_str().unwrap(),
        "-o",
        p("rec.html").to_str().unwrap(),
    ]);
    let loaded = vmmap_core::format::load_file(&rec).unwrap();
    let n = loaded.snapshots.len();
    // The two neighbouring snapshots around the new region at slot 9.
    let k = loaded
        .snapshots
        .iter()
        .position(|s| s.regions.iter().any(|r| r.start == 0x3000_9000_0000))
        .expect("a snapshot with slot 9");
    assert!(k > 0, "the first snapshot was taken before SIGUSR1");

    // 60,000 mappings.
    let many = Fixture::start_named("manymaps");
    let said = vmmap_ok(&[
        "report",
        &many.pid.to_string(),
        "-o",
        p("big.html").to_str().unwrap(),
    ]);
    let big = snapshot_json(many.pid, &[]);
    drop(many);
    let big_regions = big["regions"].as_array().unwrap();
    assert!(big_regions.len() > 60_000);
    let per_region: f64 = said
        .split(" bytes per region")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no size per region in {said:?}"));
    eprintln!("60,000-region report: {said}");
    assert!(per_region < 40.0, "{per_region} bytes per region");

    // A traced run's call tree, hand-built (the CLI has none to give yet),
    // over the recording's last snapshot.
    let mut tree_html = Vec::new();
    write_html(
        &ReportInput {
            snapshots: &loaded.snapshots[n - 1..],
            samples: &[],
            call_tree: Some(&tree()),
            agent: &[],
            source: "hand-built tree",
        },
        &mut tree_html,
    )
    .unwrap();
    std::fs::write(p("tree.html"), tree_html).unwrap();

    let cfg = serde_json::json!({
        "chromium": chromium,
        "shots": shots,
        "out": p("observed.json"),
        "live": p("live.html"),
        "recording": p("rec.html"),
        "big": p("big.html"),
        "tree": p("tree.html"),
        "filter_type": "heap",
        "diff_pair": [k - 1, k],
        "zoom_frame": "serve",
    });
    std::fs::write(p("cfg.json"), cfg.to_string()).unwrap();
    let o = Command::new(require_tool("node", "nodejs"))
        .arg(browser_dir.join("report.mjs"))
        .arg(p("cfg.json"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&o.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("screenshots: {}", shots.display());
    assert!(o.status.success(), "the browser test failed");
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(p("observed.json")).unwrap()).unwrap();

    // Live: the Summary's cells are the CLI's figures, formatted alike
    // (Shared WS aside: it moves with the other processes).
    let cols = [
        "size",
        "committed",
        "private",
        "total_ws",
        "private_ws",
        "shareable_ws",
        "shared_ws",
        "locked_ws",
        "blocks",
        "largest",
    ];
    for row in live["summary"].as_array().unwrap() {
        let ty = row["type"].as_str().unwrap();
        let page = seen["live_summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == ty)
            .unwrap_or_else(|| panic!("no Summary row {ty}"));
        for (i, c) in cols.iter().enumerate() {
            if *c == "shared_ws" {
                continue; // moves with the other processes
            }
            let want = match row[*c].as_u64() {
                None => "n/a".to_string(),
                Some(0) => String::new(),
                Some(v) if *c == "blocks" => fmt_thousands(v as usize),
                Some(v) => vmmap_core::units::size(v, false),
            };
            assert_eq!(page["cells"][i + 1], want.as_str(), "Summary {ty} {c}");
        }
    }
    // The Heap filter shows exactly the heap regions.
    let heaps: Vec<String> = live["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "heap")
        .map(|r| addr(hex(&r["start"])))
        .collect();
    assert!(heaps.len() >= 3, "the brk heap and two arenas: {heaps:?}");
    assert_eq!(seen["live_filtered"], serde_json::json!(heaps));
    // The expanded group's sub-blocks are the image's segments.
    let g = &seen["live_group"];
    let region = region_at(&live, hex(&g["start"]));
    let subs: Vec<String> = region["sub_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| addr(hex(&s["start"])))
        .collect();
    assert_eq!(g["subs"], serde_json::json!(subs));
    assert_eq!(g["blocks"], subs.len().to_string());
    // Sorted by Size: the largest region (the lowest address on a tie).
    let largest = live["regions"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|r| (size(r), std::cmp::Reverse(hex(&r["start"]))))
        .unwrap();
    assert_eq!(seen["live_sorted_first"], addr(hex(&largest["start"])));

    // Recording: a dot per snapshot; the diff is `vmmap diff`'s.
    assert_eq!(
        seen["rec_dots"],
        serde_json::json!((0..n).collect::<Vec<_>>())
    );
    // Every snapshot's Details rows are its regions (the page rebuilds
    // later snapshots from the rows they share with the one before).
    for (i, s) in loaded.snapshots.iter().enumerate() {
        let want: Vec<String> = s.regions.iter().map(|r| addr(r.start)).collect();
        assert_eq!(
            seen["rec_rows"][i],
            serde_json::json!(want),
            "snapshot {}",
            i + 1
        );
    }
    let d: Value = serde_json::from_str(&vmmap_ok(&[
        "diff",
        &format!("{}:{k}", rec.display()),
        &format!("{}:{}", rec.display(), k + 1),
        "--json",
    ]))
    .unwrap();
    let page_types = seen["diff_types"].as_array().unwrap();
    for row in d["by_type"].as_array().unwrap() {
        let ty = row["type"].as_str().unwrap();
        let changed = cols
            .iter()
            .any(|c| row[*c].as_i64().is_some_and(|v| v != 0));
        let page = page_types.iter().find(|r| r["type"] == ty);
        if !changed && ty != "total" {
            assert!(page.is_none(), "{ty} did not change but is listed");
            continue;
        }
        let page = page.unwrap_or_else(|| panic!("{ty} changed but is not listed"));
        for c in cols {
            assert_eq!(page["deltas"][c], row[c], "diff {ty} {c}");
        }
    }
    let mut want: Vec<(String, String)> = d["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let side = if c["after"].is_null() {
                &c["before"]
            } else {
                &c["after"]
            };
            let kinds: Vec<&str> = c["kinds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let label = ["new", "removed", "grown", "shrunk"]
                .into_iter()
                .find(|l| kinds.contains(l))
                .unwrap_or("changed");
            (addr(hex(&side["start"])), label.to_string())
        })
        .collect();
    want.sort();
    let mut got: Vec<(String, String)> = seen["diff_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["start"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(got.contains(&(addr(0x3000_9000_0000), "new".into())));

    // 60,000 regions: the count, and the last region drawn at the end.
    let count = big_regions.len();
    let text = seen["big_count"].as_str().unwrap();
    let want_count = format!(
        "{} of {} regions",
        fmt_thousands(count),
        fmt_thousands(count)
    );
    assert_eq!(text, want_count);
    let last = big_regions.last().unwrap();
    assert_eq!(seen["big_last"], addr(hex(&last["start"])));

    // The call tree: every frame drawn, the zoom, the expanded rows.
    for f in [
        "all",
        "main",
        "serve",
        "alloc_buffer",
        "new_session",
        "parse_line",
    ] {
        assert!(
            seen["tree_frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().starts_with(f)),
            "frame {f} is not drawn"
        );
    }
    assert_eq!(seen["tree_zoom_path"], "Zoomed into serve");
    assert_eq!(seen["tree_callers"], serde_json::json!(["all", "main"]));
    let rows = seen["tree_rows"].as_array().unwrap();
    // all, main, load_config, serve: the root and main expanded.
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows[3][0].as_str().unwrap().contains("serve"));
    assert_eq!(
        rows[3][1],
        vmmap_core::units::size((3 << 20) + (512 << 10), false)
    );
    assert_eq!(rows[3][3], "2,060");
}

fn fmt_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report's fragmentation map hatches every stretch of PROT_NONE, as
/// the text map draws it in lower case: a glibc arena is one Heap region,
/// committed at its start and reserved beyond, and its tail is hatched
/// (the canvas's label counts the reserved stretches, which must be the
/// layout's, arena tails included), with a key that says so. Read from
/// the page as headless Chromium leaves it after the script ran.
#[test]
fn report_map_hatches_reserved_arena_tails() {
    let dir = TempDir::in_system_tmp("report-hatch");
    let html = dir.path().join("arenas.html");
    // Two threads' arenas; frozen so that the report and the map see the
    // same mappings.
    let fx = Fixture::start(false);
    fx.stop();
    let pid = fx.pid.to_string();
    vmmap_ok(&["report", &pid, "-o", html.to_str().unwrap()]);
    let map: Value = serde_json::from_str(&vmmap_ok(&["map", &pid, "--json"])).unwrap();
    signal(fx.pid, 18); // SIGCONT
    let segs = map["layout"]["segments"].as_array().unwrap();
    let reserved = segs.iter().filter(|s| s["reserved"] == true).count();
    let tails = segs
        .iter()
        .filter(|s| s["type"] == "heap" && s["reserved"] == true)
        .count();
    assert!(
        tails >= 2,
        "two arena tails reserved in the layout: {segs:?}"
    );

    let dom = dump_dom(&html, dir.path());
    let label = dom
        .split("id=\"frag-canvas\"")
        .nth(1)
        .and_then(|s| s.split("aria-label=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("the map has no label:\n{dom}"));
    assert_eq!(
        label,
        format!(
            "Fragmentation map of {} stretches, {reserved} of them reserved (PROT_NONE, hatched)",
            segs.len()
        )
    );
    assert!(
        dom.contains("hatched: reserved (PROT_NONE), in its type's colour"),
        "the map's key names the hatching"
    );
}

/// The page `html` as headless Chromium leaves it once its script has run
/// (`--dump-dom`), with a profile in `dir`.
fn dump_dom(html: &Path, dir: &Path) -> String {
    let chromium = std::env::var("VMMAP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromium = require_tool(&chromium, "chromium");
    let o = output_within(
        Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(format!("file://{}", html.display()))
            .stdin(Stdio::null()),
        120,
    );
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && !dom.is_empty(),
        "chromium --dump-dom: {o:?}"
    );
    dom
}

/// The report's timeline labels its time axis in a unit chosen by the
/// span: the golden trace report (three snapshots over 13 ms, written by
/// this binary: golden.rs checks it byte for byte) reads 0, +2.6ms...
/// +13.0ms, six distinct labels, not +0.0s six times.
#[test]
fn report_timeline_labels_a_short_run_in_milliseconds() {
    let dir = TempDir::in_system_tmp("report-timeline");
    let html = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/out/trace-report.html");
    let dom = dump_dom(&html, dir.path());
    let svg = dom
        .split("aria-label=\"Memory over time, stacked by type\"")
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .unwrap_or_else(|| panic!("no timeline:\n{dom}"));
    let labels: Vec<&str> = svg
        .split("text-anchor=\"middle\"")
        .skip(1)
        .filter_map(|s| s.split('>').nth(1)?.split('<').next())
        .collect();
    assert_eq!(
        labels,
        ["0", "+2.6ms", "+5.2ms", "+7.8ms", "+10.4ms", "+13.0ms"],
        "{svg}"
    );
}
