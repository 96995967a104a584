//! Hostile inputs: every reader's memory is bounded by its input (checked
//! under a memory limit), input that never ends is refused at its first
//! bytes, and impossible content (regions ending before they start,
//! overlapping, out of order, numbers past 64 bits) is refused the same
//! way in `.vmmap`, `.mmp` and a captured `/proc` tree, naming where.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vmmap_core::format::{chunk_bytes, file_header, Writer, CHUNK_SNAPSHOT};
use vmmap_core::model::{Region, Snapshot};
use vmmap_core::proc::smaps::{Field, Mapping};

use crate::util::*;

/// The address space `vmmap` gets under `ulimit -v` (KiB): the debug
/// binary opens a 60,000-region file in well under this, so only reading
/// a hostile input whole can hit it.
const LIMIT_KIB: u64 = 256 * 1024;

/// Runs the real binary under `ulimit -v LIMIT_KIB`, killed after a
/// minute (exit 124) so that a reader stuck on hostile input fails the
/// test instead of hanging it.
fn limited(args: &[&str]) -> (Output, Duration) {
    let _g = starting_processes();
    let script = format!("ulimit -v {LIMIT_KIB} && exec timeout 60 \"$0\" \"$@\"");
    let t = Instant::now();
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(VMMAP)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    (o, t.elapsed())
}

/// The command fails with `code` under the memory limit, in one message
/// that holds every needle, and without a panic or an abort.
fn refused(args: &[&str], code: i32, needles: &[&str]) -> String {
    let (o, took) = limited(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "vmmap {args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "vmmap {args:?}: {err:?} lacks {n:?}");
    }
    assert!(!err.contains("panicked") && !err.contains("memory allocation"));
    assert!(
        took < Duration::from_secs(20),
        "vmmap {args:?} took {took:?}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("16E") && !err.contains("16E"), "{out}");
    err
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A zstd frame (RFC 8878) that inflates to `size` zero bytes from a few
/// bytes per 128 KiB: RLE blocks, the frame content size in its header,
/// a 128 KiB window so a streaming decoder needs no more.
fn zstd_bomb(size: u64) -> Vec<u8> {
    let mut z = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: 8-byte content size, no single segment,
    // no checksum, no dictionary; window descriptor 2^17.
    z.push(0xc0);
    z.push(7 << 3);
    z.extend_from_slice(&size.to_le_bytes());
    let mut left = size;
    while left > 0 {
        let n = left.min(128 * 1024);
        left -= n;
        let last = u32::from(left == 0);
        // Block header: last flag, type 1 (RLE), size; then the byte.
        let h = last | (1 << 1) | ((n as u32) << 3);
        z.extend_from_slice(&h.to_le_bytes()[..3]);
        z.push(0);
    }
    z
}

/// A native file of one snapshot chunk holding `payload` with the raw
/// size `raw_len` in its header (checksum correct).
fn native_file(dir: &Path, name: &str, payload: &[u8], raw_len: usize) -> String {
    let p = dir.join(name);
    let mut bytes = file_header().to_vec();
    bytes.extend(chunk_bytes(CHUNK_SNAPSHOT, payload, raw_len).expect("chunk"));
    std::fs::write(&p, bytes).expect("write");
    path(&p).to_string()
}

#[test]
fn a_decompression_bomb_is_refused_under_a_memory_limit() {
    let dir = TempDir::new("bomb");
    let declared = 1_900_000_000u64;
    let bomb = zstd_bomb(declared);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let f = native_file(dir.path(), "bomb.vmmap", &bomb, declared as usize);
    for cmd in [
        vec!["open", f.as_str()],
        vec!["timeline", f.as_str()],
        vec!["diff", f.as_str()],
    ] {
        refused(&cmd, 11, &["byte 16", "declared size"]);
    }
    // The same frame without its content size: nothing to check the
    // declared size against but the documented caps.
    let mut bare = bomb.clone();
    bare[4] = 0x00;
    bare.drain(6..14);
    let f = native_file(dir.path(), "bare.vmmap", &bare, declared as usize);
    refused(&["open", &f], 11, &["byte 16", "declared size"]);
    // An ordinary file opens under the same limit.
    let fx = Fixture::start(false);
    let good = dir.path().join("good.vmmap");
    vmmap_ok(&[&fx.pid.to_string(), "-o", path(&good)]);
    let (o, _) = limited(&["open", path(&good)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn endless_or_huge_input_is_refused_at_its_first_bytes() {
    let dir = TempDir::new("zeros");
    let big = dir.path().join("zeros.vmmap");
    let st = Command::new("truncate")
        .args(["-s", "3G", path(&big)])
        .status()
        .expect("truncate (coreutils)");
    assert!(st.success());
    let html = dir.path().join("r.html");
    let json = dir.path().join("c.json");
    for input in ["/dev/zero", path(&big)] {
        for cmd in [
            vec!["open", input],
            vec!["convert", input, path(&json)],
            vec!["diff", input],
            vec!["timeline", input],
            vec!["report", input, "-o", path(&html)],
            vec!["trace", input],
        ] {
            let (o, took) = limited(&cmd);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(11), "{cmd:?}: {err}");
            assert!(err.contains("not a vmmap file"), "{cmd:?}: {err}");
            // A device is not even opened (one may act on being opened).
            if input == "/dev/zero" {
                assert!(err.contains("a device, which vmmap does not open"), "{err}");
            }
            assert!(took < Duration::from_secs(5), "{cmd:?} took {took:?}");
        }
    }
    // XML that never ends (a device or FIFO) stops at the documented cap.
    let fifo = dir.path().join("endless.mmp");
    let c = std::ffi::CString::new(path(&fifo)).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(writer_path) else {
            return;
        };
        let _ = f.write_all(b"<root><Snapshot>");
        let chunk = vec![b' '; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
    });
    refused(&["open", path(&fifo)], 11, &["larger than", "MiB"]);
    writer.join().unwrap();
}

/// A captured proc tree with one process, 4242, whose smaps is written
/// by `smaps`.
fn proc_tree(smaps: impl FnOnce(&mut dyn Write)) -> TempDir {
    let dir = TempDir::new("proc");
    let p = dir.path().join("4242");
    std::fs::create_dir_all(p.join("task/4242")).unwrap();
    std::fs::write(
        p.join("stat"),
        "4242 (cap) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n",
    )
    .unwrap();
    std::fs::write(p.join("status"), "Name:\tcap\nUid:\t0\t0\t0\t0\n").unwrap();
    std::fs::write(p.join("cmdline"), "cap\0").unwrap();
    std::fs::write(p.join("task/4242/comm"), "cap\n").unwrap();
    std::fs::write(p.join("task/4242/syscall"), "running\n").unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(p.join("smaps")).unwrap());
    smaps(&mut f);
    f.flush().unwrap();
    dir
}

const HEADER: &str = "00400000-00401000 r-xp 00000000 08:01 12 /bin/cap\n";
const FIELDS: &str = "Size:                  4 kB\nRss:                   4 kB\n";

fn proc_refused(smaps: &str, needles: &[&str]) {
    let dir = proc_tree(|w| w.write_all(smaps.as_bytes()).unwrap());
    refused(&["--proc-root", path(dir.path()), "4242"], 9, needles);
}

#[test]
fn a_huge_smaps_line_or_endless_unknown_fields_are_refused_under_a_memory_limit() {
    // One 400 MB line: a path is at most PATH_MAX plus escapes.
    let dir = proc_tree(|w| {
        w.write_all(b"00400000-00401000 r-xp 00000000 08:01 12 /")
            .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..400 {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\n").unwrap();
        w.write_all(FIELDS.as_bytes()).unwrap();
    });
    refused(
        &["--proc-root", path(dir.path()), "4242"],
        9,
        &["smaps line 1", "longer than"],
    );
    drop(dir);
    // 400 MB of field lines no kernel prints.
    let dir = proc_tree(|w| {
        w.write_all(HEADER.as_bytes()).unwrap();
        w.write_all(FIELDS.as_bytes()).unwrap();
        let mut chunk = Vec::new();
        for i in 0..50_000u32 {
            writeln!(chunk, "Future{i}:   {i} kB").unwrap();
        }
        let mut written = 0;
        while written < 400 << 20 {
            w.write_all(&chunk).unwrap();
            written += chunk.len();
        }
    });
    refused(
        &["--proc-root", path(dir.path()), "4242"],
        9,
        &["unknown field"],
    );
    drop(dir);
    // The same tree with its few real fields reads under the same limit.
    let dir = proc_tree(|w| {
        w.write_all(HEADER.as_bytes()).unwrap();
        w.write_all(FIELDS.as_bytes()).unwrap();
        w.write_all(b"Future_Field:   4 kB\n").unwrap();
    });
    let (o, _) = limited(&["--proc-root", path(dir.path()), "4242"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn region(start: u64, end: u64) -> Region {
    let mut fields = vmmap_core::proc::smaps::SmapsFields::default();
    fields.set(Field::Size, end.wrapping_sub(start));
    fields.set(Field::Rss, 4096);
    Region::from_mapping(Mapping {
        start,
        end,
        perms: *b"rw-p",
        fields,
        ..Mapping::default()
    })
}

fn native_snapshot(dir: &Path, name: &str, regions: Vec<Region>) -> String {
    let p = dir.join(name);
    let mut w = Writer::new(std::fs::File::create(&p).unwrap()).unwrap();
    w.append(&Snapshot::from_regions(4242, 1, regions)).unwrap();
    w.finish().unwrap();
    path(&p).to_string()
}

fn mmp_file(dir: &Path, name: &str, regions: &[(u64, &str)]) -> String {
    let p = dir.join(name);
    let mut xml = String::from("<root>\n<Snapshot Pid=\"4242\">\n");
    for (addr, size) in regions {
        xml += &format!(
            "<Region Address=\"{addr}\" Size=\"{size}\" Protection=\"4\" UseType=\"4\" PrivateWS=\"4096\"/>\n"
        );
    }
    xml += "</Snapshot>\n</root>\n";
    std::fs::write(&p, xml).unwrap();
    path(&p).to_string()
}

#[test]
fn impossible_regions_are_refused_in_every_input_naming_where() {
    let dir = TempDir::new("impossible");
    let d = dir.path();
    const A: u64 = 0x10_0000;
    // End before start, overlapping, out of order, empty.
    type Case = (&'static str, Vec<(u64, u64)>, &'static str);
    let cases: [Case; 4] = [
        ("backwards", vec![(A + 0x2000, A)], "ends before it starts"),
        (
            "overlap",
            vec![(A, A + 0x3000), (A + 0x2000, A + 0x4000)],
            "overlaps",
        ),
        (
            "unsorted",
            vec![(A + 0x8000, A + 0x9000), (A, A + 0x1000)],
            "address order",
        ),
        ("empty", vec![(A, A)], "empty"),
    ];
    for (name, ranges, why) in &cases {
        let regions = ranges.iter().map(|&(s, e)| region(s, e)).collect();
        let f = native_snapshot(d, &format!("{name}.vmmap"), regions);
        refused(&["open", &f], 11, &["byte 16", why]);
        let out = d.join(format!("{name}.json"));
        refused(&["convert", &f, path(&out)], 11, &["byte 16", why]);

        let mut smaps = String::new();
        for (s, e) in ranges {
            smaps += &format!("{s:08x}-{e:08x} rw-p 00000000 00:00 0\n{FIELDS}");
        }
        let line = ranges.len() * 3 - 2;
        proc_refused(&smaps, &[&format!("smaps line {line}"), why]);
    }
    // A sub-block outside its region (.vmmap; an .mmp region nests by its
    // address, so it cannot be outside).
    let mut group = region(A, A + 0x2000);
    group.sub_blocks = vec![region(A, A + 0x1000), region(A + 0x1000, A + 0x3000)];
    let f = native_snapshot(d, "sub.vmmap", vec![group]);
    refused(&["open", &f], 11, &["byte 16", "region 1.2", "outside"]);
    // .mmp: a size cannot be negative, and out-of-order or overlapping
    // regions are refused with the byte where the element starts.
    let f = mmp_file(d, "neg.mmp", &[(A, "-8192")]);
    refused(&["open", &f], 11, &["byte", "Size"]);
    let f = mmp_file(d, "overlap.mmp", &[(A, "12288"), (A + 0x2000, "8192")]);
    refused(&["open", &f], 11, &["byte", "overlaps"]);
    let f = mmp_file(d, "unsorted.mmp", &[(A + 0x8000, "4096"), (A, "4096")]);
    refused(&["open", &f], 11, &["byte", "address order"]);
}

#[test]
fn numbers_past_64_bits_are_refused() {
    // smaps: a kB figure whose bytes do not fit in 64 bits.
    proc_refused(
        &format!("{HEADER}Size: 4 kB\nRss: 18014398509481984 kB\n"),
        &["smaps line 3", "64 bits"],
    );
    // A number with more digits than any u64.
    proc_refused(
        &format!("{HEADER}Size: 4 kB\nRss: 99999999999999999999999 kB\n"),
        &["smaps line 3"],
    );
    // status: VmPTE in kB past 64 bits (it saturated to 16E).
    let tree = proc_tree(|w| w.write_all(format!("{HEADER}{FIELDS}").as_bytes()).unwrap());
    std::fs::write(
        tree.path().join("4242/status"),
        "Name:\tcap\nUid:\t0\t0\t0\t0\nVmPTE:\t18014398509481984 kB\n",
    )
    .unwrap();
    refused(
        &["--proc-root", path(tree.path()), "4242"],
        9,
        &["status line 3", "64 bits"],
    );
    let dir = TempDir::new("overflow");
    let d = dir.path();
    // .vmmap: two regions whose figures cannot be summed in 64 bits.
    let mut a = region(0x10_0000, 0x10_1000);
    let mut b = region(0x20_0000, 0x20_1000);
    a.fields.set(Field::Rss, u64::MAX);
    b.fields.set(Field::Rss, u64::MAX);
    let f = native_snapshot(d, "sum.vmmap", vec![a, b]);
    refused(&["open", &f], 11, &["byte 16", "64 bits"]);
    // .mmp: an attribute past 64 bits.
    let f = mmp_file(d, "big.mmp", &[(0x10_0000, "18446744073709551616")]);
    refused(&["open", &f], 11, &["byte", "Size"]);
}

#[test]
fn a_nul_in_a_smaps_field_name_is_unexpected_content() {
    proc_refused(
        &format!("{HEADER}{FIELDS}Fu\0ture: 4 kB\n"),
        &["unexpected content", "smaps line 4"],
    );
}

#[test]
fn mmp_out_of_range_snapshot_attributes_and_two_roots_are_refused() {
    let dir = TempDir::new("mmpattrs");
    let d = dir.path();
    let region = "<Region Address=\"1048576\" Size=\"4096\" Protection=\"4\" UseType=\"4\"/>";
    for (name, xml, needle) in [
        (
            "pid",
            format!("<root><Snapshot Pid=\"4294967296\">{region}</Snapshot></root>"),
            "Pid",
        ),
        (
            "time",
            format!("<root><Snapshot Time=\"-1\">{region}</Snapshot></root>"),
            "Time",
        ),
        (
            "roots",
            format!("<root><Snapshot>{region}</Snapshot></root>\n<root><Snapshot>{region}</Snapshot></root>"),
            "root",
        ),
    ] {
        let p = d.join(format!("{name}.mmp"));
        std::fs::write(&p, xml).unwrap();
        refused(&["open", path(&p)], 11, &["byte", needle]);
    }
}
