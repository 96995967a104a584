use serde_json::Value;

use super::*;
use vmmap_core::model::{MemoryType, Region};
use vmmap_core::proc::smaps::{Field, Mapping};

const K: u64 = 1024;
const BASE: u64 = 0x7f00_0000_0000;

fn region(start: u64, len: u64, perms: &[u8; 4], t: MemoryType, details: &str, rss: u64) -> Region {
    let mut m = Mapping {
        start,
        end: start + len,
        perms: *perms,
        ..Mapping::default()
    };
    for f in [
        Field::Rss,
        Field::Anonymous,
        Field::Swap,
        Field::SharedClean,
        Field::SharedDirty,
        Field::Locked,
    ] {
        m.fields.set(f, 0);
    }
    m.fields.set(Field::Rss, rss);
    if t != MemoryType::Image {
        m.fields.set(Field::Anonymous, rss);
    }
    let mut r = Region::from_mapping(m);
    r.memory_type = t;
    r.details = details.into();
    r
}

fn image(start: u64) -> Region {
    let subs = vec![
        region(start, 8 * K, b"r--p", MemoryType::Image, "", 8 * K),
        region(
            start + 8 * K,
            64 * K,
            b"r-xp",
            MemoryType::Image,
            "",
            40 * K,
        ),
        region(start + 72 * K, 16 * K, b"---p", MemoryType::Image, "", 0),
        region(start + 88 * K, 4 * K, b"rw-p", MemoryType::Image, "", 4 * K),
    ];
    Region::group(
        subs,
        MemoryType::Image,
        "/usr/lib/libdemo.so".into(),
        "ELF".into(),
    )
}

fn sample_snapshot(t: u64) -> Snapshot {
    Snapshot::from_regions(
        7,
        t,
        vec![
            region(
                0x5555_0000_0000,
                132 * K,
                b"rw-p",
                MemoryType::Heap,
                "Heap ID: 0",
                20 * K,
            ),
            image(BASE),
            region(
                BASE + 0x10_0000,
                2048 * K,
                b"---p",
                MemoryType::PrivateData,
                "",
                0,
            ),
            region(
                BASE + 0x40_0000,
                8 * K,
                b"rw-p",
                MemoryType::Stack,
                "Thread 7",
                8 * K,
            ),
        ],
    )
}

fn html(input: &ReportInput<'_>) -> (String, ReportStats) {
    let mut out = Vec::new();
    let stats = write_html(input, &mut out).expect("write");
    (String::from_utf8(out).expect("utf-8"), stats)
}

fn embedded(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"vmmap-data\">";
    let from = html.find(open).expect("data element") + open.len();
    let len = html[from..].find("</script>").expect("end of data");
    serde_json::from_str(&html[from..from + len]).expect("data is JSON")
}

fn input<'a>(snaps: &'a [Snapshot], tree: Option<&'a CallTreeNode>) -> ReportInput<'a> {
    ReportInput {
        snapshots: snaps,
        samples: &[],
        call_tree: tree,
        agent: &[],
        source: "test",
    }
}

/// Starts of a table, decoded as the page decodes them.
fn starts(snap: &Value, au: u64) -> (Vec<u64>, Vec<u64>) {
    let (r, s) = (&snap["r"], &snap["s"]);
    let (mut top, mut sub) = (Vec::new(), Vec::new());
    let mut cur: i64 = 0;
    let mut off = 0;
    for i in 0..r["z"].as_array().unwrap().len() {
        let st = cur + r["a"][i].as_i64().unwrap();
        top.push(st as u64 * au);
        cur = st + r["z"][i].as_i64().unwrap();
        let mut c = st;
        for j in off..off + r["k"][i].as_u64().unwrap() as usize {
            let ss = c + s["a"][j].as_i64().unwrap();
            sub.push(ss as u64 * au);
            c = ss + s["z"][j].as_i64().unwrap();
        }
        off += r["k"][i].as_u64().unwrap() as usize;
    }
    (top, sub)
}

/// Every snapshot's top-level rows as (start, size, track), decoded as the
/// page decodes them, copies from the previous snapshot included.
fn decode(d: &Value) -> Vec<Vec<(u64, u64, u64)>> {
    let au = d["au"].as_u64().unwrap();
    let mut out: Vec<Vec<(u64, u64, u64)>> = Vec::new();
    for snap in d["snaps"].as_array().unwrap() {
        let r = &snap["r"];
        let n = r["z"].as_array().unwrap().len();
        let runs: Vec<i64> = match snap.get("x") {
            Some(x) => x
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect(),
            None => vec![n as i64],
        };
        let mut rows = Vec::new();
        let (mut cur, mut li, mut q) = (0u64, 0usize, 0usize);
        while q < runs.len() {
            if runs[q] > 0 {
                for _ in 0..runs[q] {
                    let st = (cur as i64 + r["a"][li].as_i64().unwrap()) as u64;
                    let z = r["z"][li].as_u64().unwrap();
                    rows.push((st * au, z * au, r["m"][li].as_u64().unwrap()));
                    cur = st + z;
                    li += 1;
                }
                q += 1;
            } else {
                let prev = out.last().expect("a copy needs a previous snapshot");
                let from = runs[q + 1] as usize;
                for &row in &prev[from..from + (-runs[q]) as usize] {
                    rows.push(row);
                    cur = (row.0 + row.1) / au;
                }
                q += 2;
            }
        }
        assert_eq!(li, n, "every literal row is used");
        out.push(rows);
    }
    out
}

#[test]
fn embedded_data_decodes_to_the_snapshot() {
    let snaps = [sample_snapshot(1_700_000_000_000_000_000)];
    let (page, stats) = html(&input(&snaps, None));
    let d = embedded(&page);
    assert_eq!(d["v"], 1);
    assert_eq!(d["au"], 4096);
    assert_eq!(d["fu"], 1024);
    let s = &d["snaps"][0];
    assert_eq!(s["t"], 1_700_000_000_000u64);
    let (top, sub) = starts(s, 4096);
    let want: Vec<u64> = snaps[0].regions.iter().map(|r| r.start).collect();
    assert_eq!(top, want);
    let want_sub: Vec<u64> = snaps[0].regions[1]
        .sub_blocks
        .iter()
        .map(|r| r.start)
        .collect();
    assert_eq!(sub, want_sub);
    assert_eq!(s["r"]["k"], serde_json::json!([0, 4, 0, 0]));
    // Total WS of the image group is the sum of its segments' Rss, in KiB.
    let ws = d["det_cols"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "total_ws")
        .unwrap();
    assert_eq!(s["r"]["f"][ws], serde_json::json!([20, 52, 0, 8]));
    // Committed of the image leaves out its PROT_NONE gap: 92K - 16K.
    assert_eq!(s["r"]["f"][0][1], 76);
    let strings = d["strings"].as_array().unwrap();
    assert_eq!(
        strings[s["r"]["d"][1].as_u64().unwrap() as usize],
        "/usr/lib/libdemo.so"
    );
    // Summary Total row: Committed = everything but the reservation and the
    // image's gap: 132K + 76K + 8K.
    assert_eq!(s["sum"][9][1], (132 + 76 + 8) * K);
    // Reserved is Size minus Committed: the reservation and the image's
    // PROT_NONE gap.
    assert_eq!(s["frag"]["reserved"], (2048 + 16) * K);
    assert_eq!(stats.rows, 8);
    assert_eq!(stats.bytes, page.len() as u64);
    assert!(d["tree"].is_null());
}

#[test]
fn script_end_in_data_cannot_end_the_script() {
    let mut snap = sample_snapshot(0);
    let evil = "</script><script>alert(1)</script><!-- \u{2028}";
    snap.regions[0].details = evil.into();
    let (page, _) = html(&input(std::slice::from_ref(&snap), None));
    // Only the two real end tags.
    assert_eq!(page.matches("</script").count(), 2);
    assert!(!page.contains("<!-- "));
    let d = embedded(&page);
    let i = d["snaps"][0]["r"]["d"][0].as_u64().unwrap() as usize;
    assert_eq!(d["strings"][i], evil);
}

#[test]
fn the_page_names_no_outside_resource() {
    let snaps = [sample_snapshot(0)];
    let (page, _) = html(&input(&snaps, None));
    for bad in ["http://", "https://", "src=", "<link", "@import", "url("] {
        let hits: Vec<_> = page.match_indices(bad).collect();
        // The SVG namespace is an identifier, not a load.
        let real = hits
            .iter()
            .filter(|(i, _)| !page[*i..].starts_with("http://www.w3.org/2000/svg"))
            .count();
        assert_eq!(real, 0, "the page contains {bad}");
    }
    assert!(page.contains("default-src 'none'"));
}

#[test]
fn tracks_follow_a_region_across_snapshots() {
    let a = sample_snapshot(1);
    let mut b = sample_snapshot(2);
    // The stack is gone, a new region appears, the heap grows.
    b.regions.pop();
    b.regions.push(region(
        BASE + 0x80_0000,
        64 * K,
        b"rw-p",
        MemoryType::PrivateData,
        "",
        0,
    ));
    b.regions[0].end += 64 * K;
    let mut c = b.clone();
    c.taken_at_unix_ns = 3;
    let snaps = [a, b, c];
    let d = data(&input(&snaps, None));
    let v = serde_json::to_value(&d).unwrap();
    let rows = decode(&v);
    let m = |s: usize| rows[s].iter().map(|r| r.2).collect::<Vec<_>>();
    assert_eq!(m(0), [0, 1, 2, 3]);
    assert_eq!(m(1), [0, 1, 2, 4]);
    assert_eq!(m(2), m(1));
    for (s, snap) in snaps.iter().enumerate() {
        let want: Vec<(u64, u64)> = snap.regions.iter().map(|r| (r.start, r.size())).collect();
        let got: Vec<(u64, u64)> = rows[s].iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, want, "snapshot {s}");
    }
    // The second snapshot writes only the grown heap and the new region;
    // the image and the reservation are copied. The third copies all.
    assert_eq!(v["snaps"][1]["x"], serde_json::json!([1, -2, 1, 1]));
    assert_eq!(v["snaps"][1]["r"]["z"].as_array().unwrap().len(), 2);
    assert_eq!(v["snaps"][1]["s"]["z"].as_array().unwrap().len(), 0);
    assert_eq!(v["snaps"][2]["x"], serde_json::json!([-4, 0]));
    assert_eq!(d.rows(), 24);
}

#[test]
fn a_recording_writes_unchanged_regions_once() {
    let regions: Vec<Region> = (0..20_000u64)
        .map(|i| {
            region(
                BASE + i * 8192,
                4096,
                b"rw-p",
                MemoryType::PrivateData,
                "",
                4 * K,
            )
        })
        .collect();
    let first = Snapshot::from_regions(1, 0, regions);
    let mut second = first.clone();
    second.taken_at_unix_ns = 1;
    // One region in the middle grows a page.
    second.regions[10_000].end += 4096;
    let snaps = [first, second];
    let (page, stats) = html(&input(&snaps, None));
    let d = embedded(&page);
    assert_eq!(stats.rows, 40_000);
    assert_eq!(
        d["snaps"][1]["x"],
        serde_json::json!([-10_000, 0, 1, -9_999, 10_001])
    );
    let rows = decode(&d);
    assert_eq!(rows[1][10_000].1, 8192);
    assert_eq!(rows[1][19_999].0, BASE + 19_999 * 8192);
    let per = stats.bytes_per_row();
    assert!(per < 25.0, "{per} bytes per region");
}

#[test]
fn call_tree_is_embedded_with_interned_names() {
    let tree = CallTreeNode {
        name: "all".into(),
        location: None,
        bytes: 3000,
        count: 3,
        live_bytes: 1000,
        children: vec![CallTreeNode {
            name: "main".into(),
            location: Some("demo.c:10".into()),
            bytes: 3000,
            count: 3,
            live_bytes: 1000,
            children: vec![CallTreeNode {
                name: "malloc".into(),
                location: None,
                bytes: 2000,
                count: 2,
                live_bytes: 0,
                children: Vec::new(),
            }],
        }],
    };
    let snaps = [sample_snapshot(0)];
    let (page, _) = html(&input(&snaps, Some(&tree)));
    let d = embedded(&page);
    let s = |v: &Value| d["strings"][v.as_u64().unwrap() as usize].clone();
    let t = &d["tree"];
    assert_eq!(s(&t[0]), "all");
    assert_eq!(t[1], -1);
    let main = &t[5][0];
    assert_eq!(s(&main[0]), "main");
    assert_eq!(s(&main[1]), "demo.c:10");
    assert_eq!(main[2], 3000);
    assert_eq!(s(&main[5][0][0]), "malloc");
    assert_eq!(main[5][0][3], 2);
    assert_eq!(main[5][0][4], 0);
}

#[test]
fn odd_addresses_fall_back_to_bytes() {
    let mut snap = sample_snapshot(0);
    snap.regions[0].start += 2;
    let d = serde_json::to_value(data(&input(std::slice::from_ref(&snap), None))).unwrap();
    assert_eq!(d["au"], 2);
    let (top, _) = starts(&d["snaps"][0], 2);
    assert_eq!(top[0], snap.regions[0].start);
    assert_eq!(top[3], snap.regions[3].start);
}

#[test]
fn sixty_thousand_regions_weigh_little() {
    let regions: Vec<Region> = (0..60_000u64)
        .map(|i| {
            let perms = if i % 2 == 0 { b"rw-p" } else { b"---p" };
            let rss = if i % 2 == 0 { 4 * K } else { 0 };
            region(
                BASE + i * 4096,
                4096,
                perms,
                MemoryType::PrivateData,
                "",
                rss,
            )
        })
        .collect();
    let snaps = [Snapshot::from_regions(1, 0, regions)];
    let (page, stats) = html(&input(&snaps, None));
    assert_eq!(stats.rows, 60_000);
    let per = stats.bytes_per_row();
    eprintln!("{per:.1} bytes per region ({} bytes)", stats.bytes);
    assert!(per < 40.0, "{per} bytes per region");
    assert_eq!(embedded(&page)["snaps"][0]["r"]["z"][59_999], 1);
}
