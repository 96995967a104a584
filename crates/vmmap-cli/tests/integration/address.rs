//! `vmmap PID --address ADDR` on the target fixture, whose regions sit at
//! fixed addresses with nothing mapped between them.

use serde_json::Value;

use crate::util::*;

const KB: u64 = 1024;

fn lookup(pid: u32, addr: u64) -> Value {
    let a = format!("{addr:#x}");
    serde_json::from_str(&vmmap_ok(&[&pid.to_string(), "--address", &a, "--json"]))
        .expect("valid JSON")
}

#[test]
fn address_in_a_region_gives_offset_and_neighbours() {
    let fx = Fixture::start(false);
    let data = fx.addr("data");
    let v = lookup(fx.pid, data + 0x1234);
    assert_eq!(v["schema"], "vmmap.address");
    assert_eq!(v["status"], "mapped");
    assert_eq!(v["region"]["type"], "mapped_file");
    assert_eq!(hex(&v["region"]["start"]), data);
    assert_eq!(hex(&v["region"]["end"]), data + 64 * KB);
    assert_eq!(v["region"]["perms"], "r--p");
    assert_eq!(hex(&v["offset_in_region"]), 0x1234);
    assert_eq!(hex(&v["mapping"]["file_offset"]), 0x1234);
    assert_eq!(v["region"]["figures"]["size"], 64 * KB);
    // The next region is the shared one, 256 MiB up; the previous one (if
    // any: the executable and libraries sit higher) ends below the data file.
    assert_eq!(hex(&v["next"]["start"]), fx.addr("shared"));
    assert_eq!(v["next"]["type"], "shareable");
    assert!(v["previous"].is_null() || hex(&v["previous"]["end"]) <= data);

    let text = vmmap_ok(&[&fx.pid.to_string(), "-a", &format!("{:x}", data + 0x1234)]);
    assert!(
        text.contains(&format!(
            "In:          Mapped File region {data:#x}-{:#x} (64K), 0x1234 (4660) bytes past its start",
            data + 64 * KB
        )),
        "{text}"
    );
    assert!(text.contains("vmmap-test-data.bin"), "{text}");
    assert!(
        text.contains(&format!("Next:        {:#x}-", fx.addr("shared"))),
        "{text}"
    );
}

#[test]
fn address_in_a_gap_gives_the_gap() {
    let fx = Fixture::start(false);
    let data = fx.addr("data");
    let v = lookup(fx.pid, data + 64 * KB + 0x100);
    assert_eq!(v["status"], "free");
    assert!(v.get("region").is_none());
    assert_eq!(hex(&v["gap"]["start"]), data + 64 * KB);
    assert_eq!(hex(&v["gap"]["end"]), fx.addr("shared"));
    assert_eq!(hex(&v["previous"]["start"]), data);
    assert_eq!(hex(&v["next"]["start"]), fx.addr("shared"));

    let outside = lookup(fx.pid, 0x10);
    assert_eq!(outside["status"], "outside");
}

#[test]
fn address_that_is_not_hex_is_bad_usage() {
    let fx = Fixture::start(false);
    let o = vmmap(&[&fx.pid.to_string(), "--address", "0xnothex"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is not an address"), "{err}");
}
