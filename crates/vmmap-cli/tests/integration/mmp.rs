//! Sysinternals VMMap `.mmp` files: `-o FILE.mmp`, `vmmap open FILE.mmp`,
//! `vmmap convert`, hand-written files to the schema, and malformed ones.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mmp")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn open_json(path: &str) -> Value {
    serde_json::from_str(&vmmap_ok(&["open", path, "--json"])).expect("JSON")
}

/// What the .mmp schema holds of a region, from vmmap's JSON.
fn schema_view(r: &Value) -> Value {
    let f = &r["figures"];
    serde_json::json!({
        "start": r["start"], "end": r["end"], "type": r["type"], "perms": r["perms"],
        "details": r["details"], "heap_id": r["heap_id"], "tid": r["tid"],
        "size": f["size"], "committed": f["committed"], "private": f["private"],
        "total_ws": f["total_ws"], "private_ws": f["private_ws"],
        "shareable_ws": f["shareable_ws"], "shared_ws": f["shared_ws"],
        "sub_blocks": r["sub_blocks"].as_array().map(|s| s.iter().map(schema_view).collect::<Vec<_>>()),
    })
}

#[test]
fn a_snapshot_survives_mmp_export_and_import_in_what_the_schema_holds() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("mmp");
    let native = dir.path().join("snap.vmmap");
    let native = native.to_str().expect("utf-8");
    vmmap_ok(&[&fx.pid.to_string(), "-o", native]);
    // The same snapshot three ways: native, converted to .mmp, and written
    // directly with -o (a second snapshot of the same process).
    let mmp = dir.path().join("snap.mmp");
    let mmp = mmp.to_str().expect("utf-8");
    vmmap_ok(&["convert", native, mmp]);
    let before = open_json(native);
    let after = open_json(mmp);
    let view = |s: &Value| -> Vec<Value> {
        s["regions"]
            .as_array()
            .expect("regions")
            .iter()
            .map(schema_view)
            .collect()
    };
    assert_eq!(view(&before), view(&after));
    // The Summary's VMMap columns agree too (Page Table from VmPTE).
    for (a, b) in before["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .zip(after["summary"].as_array().expect("summary"))
    {
        for col in [
            "size",
            "committed",
            "private",
            "total_ws",
            "private_ws",
            "shareable_ws",
            "shared_ws",
            "blocks",
            "largest",
        ] {
            assert_eq!(a[col], b[col], "{} {col}", a["type"]);
        }
    }
    // Linux-only figures are not in the schema: n/a, never a made-up 0.
    let total = after["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .find(|r| r["type"] == "total")
        .expect("total");
    assert!(total["pss"].is_null() && total["locked_ws"].is_null());
    assert_eq!(after["process"]["pid"], fx.pid);
    assert_eq!(after["process"]["name"], before["process"]["name"]);
    // -o FILE.mmp writes the same schema.
    let direct = dir.path().join("direct.mmp");
    let direct = direct.to_str().expect("utf-8");
    vmmap_ok(&[&fx.pid.to_string(), "-o", direct]);
    let text = std::fs::read_to_string(direct).expect("read");
    assert!(text.starts_with("<?xml"));
    assert!(text.contains("<Snapshot Pid=\""));
    assert!(text.contains("UseType=\"2\""), "images");
    // And back to every other format.
    for ext in ["json", "csv", "txt", "vmmap"] {
        let out = dir.path().join(format!("back.{ext}"));
        vmmap_ok(&["convert", direct, out.to_str().expect("utf-8")]);
        assert!(std::fs::metadata(&out).expect("written").len() > 0);
    }
}

#[test]
fn a_hand_written_file_with_nesting_and_every_use_type_opens() {
    let s = open_json(&fixture("nested.mmp"));
    let regions = s["regions"].as_array().expect("regions");
    let brief: Vec<(String, &str, &str, usize)> = regions
        .iter()
        .map(|r| {
            (
                r["start"].as_str().expect("start").to_string(),
                r["type"].as_str().expect("type"),
                r["perms"].as_str().expect("perms"),
                r["sub_blocks"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    let want: Vec<(String, &str, &str, usize)> = [
        (0x4000_0000u64, "image", "rwxp", 3), // UseType 2, sections nested in the XML
        (0x5000_0000, "heap", "rw-p", 2),     // 0, parts nested by address only
        (0x6000_0000, "stack", "rw-p", 3),    // 1, nested three deep: flattened
        (0x7000_0000, "mapped_file", "r--s", 0), // 3
        (0x7100_0000, "private_data", "rw-p", 0), // 4
        (0x7200_0000, "shareable", "rw-s", 0), // 5
        // 6 (Free) and 10 (Unusable) are gaps, not regions.
        (0x7400_0000, "private_data", "rw-p", 0), // 7, unnamed by VMMap
        (0x7500_0000, "managed_heap", "rw-p", 0), // 8
        (0x7600_0000, "private_data", "rw-p", 0), // 9, unnamed by VMMap
    ]
    .iter()
    .map(|&(a, t, p, n)| (format!("{a:#x}"), t, p, n))
    .collect();
    assert_eq!(brief, want);
    let image = &regions[0];
    assert_eq!(image["details"], "C:\\Windows\\System32\\ntdll.dll");
    let perms: Vec<&str> = image["sub_blocks"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|b| b["perms"].as_str().expect("perms"))
        .collect();
    // PAGE_READONLY, PAGE_EXECUTE_READ, PAGE_WRITECOPY.
    assert_eq!(perms, ["r--p", "r-xp", "rw-p"]);
    assert_eq!(fig(image, "private_ws"), 4096);
    assert_eq!(fig(image, "shareable_ws"), 8192);
    assert_eq!(fig(image, "total_ws"), 12288);
    let heap = &regions[1];
    assert_eq!(heap["heap_id"], 2);
    assert_eq!(fig(heap, "committed"), 8192, "the reserved part counts 0");
    let stack = &regions[2];
    assert_eq!(stack["tid"], 4242);
    let parts: Vec<(u64, u64)> = stack["sub_blocks"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|b| (size(b), fig(b, "committed")))
        .collect();
    assert_eq!(parts, [(983040, 0), (4096, 4096), (61440, 61440)]);
    // Private bytes not in the working set show as Swap (docs/mmp.md).
    assert_eq!(fig(stack, "private"), 61440);
    assert_eq!(fig(stack, "swap"), 61440 - 12288);
    assert_eq!(
        s["warnings"],
        serde_json::json!([
            "2 region(s) have a UseType VMMap leaves unnamed (7, 9 or unknown): shown as Private Data"
        ])
    );
}

#[test]
fn missing_attributes_are_not_made_up() {
    let s = open_json(&fixture("missing.mmp"));
    let regions = s["regions"].as_array().expect("regions");
    assert_eq!(regions.len(), 3);
    // No PrivateWS: the working-set figures are unknown, not 0.
    assert!(regions[0]["figures"]["private_ws"].is_null());
    assert!(regions[0]["figures"]["total_ws"].is_null());
    assert_eq!(fig(&regions[0], "size"), 8192);
    // No Protection: no access, so nothing committed.
    assert_eq!(regions[1]["perms"], "---p");
    assert_eq!(fig(&regions[1], "committed"), 0);
    // No UseType: Private Data.
    assert_eq!(regions[2]["type"], "private_data");
    let warnings: Vec<&str> = s["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().expect("text"))
        .collect();
    assert_eq!(
        warnings,
        [
            "1 region(s) have no UseType: shown as Private Data",
            "1 region(s) have neither Protection nor Perms: shown as ---p (no access)",
            "1 region(s) are partly committed (Commit differs from Size): Committed shows the whole region",
        ]
    );
}

#[test]
fn malformed_files_are_a_clear_error() {
    let dir = TempDir::new("mmp-bad");
    let cases: [(&str, &str, &str); 7] = [
        ("cut.mmp", "<root><Snapshot><Region Address=\"4096\" Size=\"4096\"/>", "ends inside 2 unclosed element(s)"),
        ("tags.mmp", "<root><Snapshot></root>", "malformed .mmp XML at byte"),
        ("noaddr.mmp", "<root><Snapshot><Region Size=\"4096\"/></Snapshot></root>", "no Address attribute"),
        ("nan.mmp", "<Snapshot><Region Address=\"4096\" Size=\"big\"/></Snapshot>", "Size=\"big\" is not a number"),
        (
            "overlap.mmp",
            "<Snapshot><Region Address=\"4096\" Size=\"8192\"/><Region Address=\"8192\" Size=\"8192\"/></Snapshot>",
            "0x2000-0x4000 overlaps the region at 0x1000-0x3000",
        ),
        ("empty.mmp", "<root><Other/></root>", "no <Snapshot> or <Region> element"),
        ("text.mmp", "just text", "not a vmmap file"),
    ];
    for (name, body, message) in cases {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, body).expect("write");
        let o = vmmap(&["open", path.to_str().expect("utf-8")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(11), "{name}: {err}");
        assert!(err.contains(message), "{name}: {err}");
        assert!(
            err.starts_with(&format!("vmmap: {}", path.display())),
            "{err}"
        );
    }
    let json = dir.path().join("x.json");
    std::fs::write(&json, "{}").expect("write");
    let o = vmmap(&["convert", json.to_str().expect("utf-8"), "out.mmp"]);
    assert_eq!(o.status.code(), Some(2), "JSON cannot be read back");
    let o = vmmap(&["convert", &fixture("nested.mmp"), "out.xyz"]);
    assert_eq!(o.status.code(), Some(2), "unknown output extension");
}
