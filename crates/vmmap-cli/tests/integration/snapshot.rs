//! A real process with known mappings, threads and allocations: every
//! region must get its type and exact figures, and the sums must reconcile
//! with the kernel's own totals.

use serde_json::Value;

use crate::util::*;

const KB: u64 = 1024;
const MB: u64 = 1024 * 1024;

fn typ(r: &Value) -> &str {
    r["type"].as_str().expect("type")
}

#[test]
fn known_regions_get_their_types_and_exact_figures() {
    let fx = Fixture::start(false);
    fx.stop();
    let snap = snapshot_json(fx.pid, &[]);

    let data = region_at(&snap, fx.addr("data"));
    assert_eq!((typ(data), size(data)), ("mapped_file", 64 * KB));
    assert_eq!(fig(data, "total_ws"), 64 * KB, "every page was read");
    assert_eq!(fig(data, "private"), 0);
    assert!(data["path"]
        .as_str()
        .unwrap()
        .ends_with("vmmap-test-data.bin"));

    let shared = region_at(&snap, fx.addr("shared"));
    assert_eq!((typ(shared), size(shared)), ("shareable", 256 * KB));
    assert_eq!(fig(shared, "total_ws"), 256 * KB);
    assert_eq!(fig(shared, "shareable_ws"), 256 * KB);
    assert_eq!(
        fig(shared, "private"),
        0,
        "shared memory is not private bytes"
    );

    let memfd = region_at(&snap, fx.addr("memfd"));
    assert_eq!((typ(memfd), size(memfd)), ("shareable", 128 * KB));
    assert_eq!(memfd["details"], "memfd: vmmap-test");
    assert_eq!(fig(memfd, "total_ws"), 128 * KB);

    let sysv = region_at(&snap, fx.addr("sysv"));
    assert_eq!((typ(sysv), size(sysv)), ("shareable", 192 * KB));
    assert!(sysv["details"]
        .as_str()
        .unwrap()
        .starts_with("System V shm"));
    assert_eq!(fig(sysv, "total_ws"), 192 * KB);

    let locked = region_at(&snap, fx.addr("locked"));
    assert_eq!((typ(locked), size(locked)), ("private_data", 64 * KB));
    assert_eq!(
        fig(locked, "locked_ws"),
        64 * KB,
        "Locked WS equals the mlock()ed size"
    );
    assert_eq!(fig(locked, "total_ws"), 64 * KB);

    let reserve = region_at(&snap, fx.addr("reserve"));
    assert_eq!((typ(reserve), size(reserve)), ("private_data", 16 * MB));
    assert_eq!(fig(reserve, "size"), 16 * MB);
    assert_eq!(
        fig(reserve, "committed"),
        0,
        "a PROT_NONE reservation is not committed"
    );

    let big = region_at(&snap, fx.addr("big"));
    assert_eq!((typ(big), size(big)), ("private_data", 32 * MB));
    for col in [
        "committed",
        "private",
        "total_ws",
        "private_ws",
        "anonymous",
    ] {
        assert_eq!(fig(big, col), 32 * MB, "{col}");
    }
    assert_eq!(fig(big, "shareable_ws"), 0);

    // The executable is one Image block with its .bss as a sub-block.
    let exe = region_at(&snap, fx.addr("bss"));
    assert_eq!(typ(exe), "image");
    let subs = exe["sub_blocks"].as_array().expect("image has segments");
    let bss = subs
        .iter()
        .find(|s| s["details"] == ".bss (anonymous)")
        .expect(".bss sub-block");
    // The first bytes of .bss share the last file-backed page; the rest of
    // the 1 MiB array is in the anonymous mapping.
    assert!(hex(&bss["start"]) <= fx.addr("bss") + 4096 && fx.addr("bss") + MB <= hex(&bss["end"]));
    assert!(subs.iter().any(|s| s["perms"] == "r-xp"), "code segment");
    let exe_path = exe["path"].as_str().unwrap();
    assert!(exe_path.ends_with("fixture-target"), "{exe_path}");

    // libc is an Image too, found by its ELF header.
    let regions = snap["regions"].as_array().unwrap();
    assert!(regions
        .iter()
        .any(|r| typ(r) == "image" && r["path"].as_str().unwrap().contains("libc.so")));
}

#[test]
fn every_thread_stack_is_found_with_its_tid() {
    let fx = Fixture::start(false);
    fx.stop();
    let snap = snapshot_json(fx.pid, &[]);
    let regions = snap["regions"].as_array().unwrap();
    let stack_of = |tid: u64| {
        regions
            .iter()
            .find(|r| typ(r) == "stack" && r["tid"].as_u64() == Some(tid))
            .unwrap_or_else(|| panic!("no stack for thread {tid}"))
    };
    for (name, want) in [
        ("stk256", 256 * KB),
        ("stk512", 512 * KB),
        ("stk1024", 1024 * KB),
    ] {
        let s = stack_of(fx.tid(name));
        let subs = s["sub_blocks"].as_array().expect("stack with guard");
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0]["details"], "guard page");
        assert_eq!(subs[0]["perms"], "---p");
        assert_eq!(size(&subs[0]), 4096, "glibc's default guard is one page");
        assert_eq!(
            size(&subs[1]),
            want,
            "{name}: pthread_attr_setstacksize size"
        );
        assert!(
            s["details"].as_str().unwrap().contains(name),
            "thread name shown"
        );
    }
    let user = stack_of(fx.tid("userstk"));
    assert_eq!(hex(&user["start"]), fx.addr("ustack"));
    assert_eq!(size(user), 384 * KB, "pthread_attr_setstack buffer");
    assert!(
        user.get("sub_blocks").is_none(),
        "a user stack has no glibc guard"
    );

    let spinner = stack_of(fx.tid("spinner"));
    assert_eq!(
        size(&spinner["sub_blocks"][1]),
        8 * MB,
        "default stack size"
    );

    let main = stack_of(u64::from(fx.pid));
    assert_eq!(main["path"], "[stack]");

    let threads = snap["process"]["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 6);
    assert!(
        threads
            .iter()
            .all(|t| t["stack_pointer_source"] == "syscall"),
        "stopped threads give their SP"
    );
}

#[test]
fn a_running_thread_is_found_by_its_tcb_or_through_ptrace() {
    let fx = Fixture::start(true);
    // Let the spinner get going.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let source = |snap: &Value| {
        let threads = snap["process"]["threads"].as_array().unwrap();
        let spinner = threads
            .iter()
            .find(|t| t["tid"].as_u64() == Some(fx.tid("spinner")))
            .unwrap();
        spinner["stack_pointer_source"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let has_stack = |snap: &Value| {
        snap["regions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| typ(r) == "stack" && r["tid"].as_u64() == Some(fx.tid("spinner")))
    };
    // Its glibc TCB, at the top of its stack, names it: nothing is stopped.
    let snap = snapshot_json(fx.pid, &[]);
    assert_eq!(source(&snap), "tcb");
    assert!(has_stack(&snap));

    // Without reading memory, a ptrace interrupt (with a budget long
    // enough for a loaded machine).
    let snap = snapshot_json(fx.pid, &["--no-read-memory", "--ptrace-budget-ms", "5000"]);
    assert_eq!(source(&snap), "ptrace");
    assert!(has_stack(&snap));

    // With neither, the user is told why.
    let snap = snapshot_json(fx.pid, &["--no-ptrace", "--no-read-memory"]);
    assert_eq!(source(&snap), "unavailable");
    let warnings = snap["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("spinner")),
        "{warnings:?}"
    );
}

#[test]
fn each_glibc_arena_is_a_heap_with_its_own_id() {
    let fx = Fixture::start(false);
    fx.stop();
    let snap = snapshot_json(fx.pid, &[]);
    let heaps: Vec<&Value> = snap["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| typ(r) == "heap")
        .collect();
    let mut ids: Vec<u64> = heaps
        .iter()
        .map(|h| h["heap_id"].as_u64().expect("heap id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [0, 1, 2],
        "brk heap plus the two arenas of the threads that malloc"
    );
    for h in heaps.iter().filter(|h| h["heap_id"] != 0) {
        assert_eq!(size(h), 64 * MB, "a HEAP_MAX_SIZE reservation");
        assert_eq!(hex(&h["start"]) % (64 * MB), 0);
        assert!(h["evidence"].as_str().unwrap().contains("heap_info"));
        // Each thread wrote 8 x 48K into its arena.
        assert!(fig(h, "private_ws") >= 8 * 48 * KB);
        assert!(
            fig(h, "committed") < 64 * MB,
            "the reserved tail is not committed"
        );
    }
    let brk = heaps.iter().find(|h| h["heap_id"] == 0).unwrap();
    assert_eq!(brk["path"], "[heap]");
}

/// The page-granular figures must equal smaps_rollup to the byte for a
/// stopped process; Pss and SwapPss within the kernel's per-VMA kB
/// truncation (docs/metrics.md); Page Table equal to VmPTE.
#[test]
fn reconciles_with_smaps_rollup() {
    let _alone = quiet_system();
    let fx = Fixture::start_alone();
    fx.stop();
    let snap = snapshot_json(fx.pid, &[]);
    assert_reconciles(fx.pid, &snap, "the fixture");
}

/// pmap -XX prints the same smaps fields; for a stopped process every
/// mapping must agree with ours exactly.
#[test]
fn agrees_with_pmap() {
    let pmap = require_tool("pmap", "procps");
    let _alone = quiet_system();
    let fx = Fixture::start_alone();
    fx.stop();
    let snap = snapshot_json(fx.pid, &[]);
    let out = std::process::Command::new(pmap)
        .args(["-XX", &fx.pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().skip(1);
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("pmap has no {name}"))
    };
    let ours: std::collections::HashMap<u64, &Value> = leaves(&snap)
        .into_iter()
        .map(|r| (hex(&r["start"]), r))
        .collect();
    let mut compared = 0;
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(addr) = f.first().and_then(|a| u64::from_str_radix(a, 16).ok()) else {
            continue;
        };
        if f.len() < header.len() - 2 {
            continue;
        }
        let r = ours
            .get(&addr)
            .unwrap_or_else(|| panic!("pmap shows {addr:x}, vmmap does not"));
        // Pss and the shared/private split change when vmmap, which maps
        // libc too, exits before pmap runs; their sums do not.
        let kb = |names: &[&str]| -> u64 {
            names
                .iter()
                .map(|n| f[col(n)].parse::<u64>().unwrap() * 1024)
                .sum()
        };
        let ours = |names: &[&str]| -> u64 {
            names.iter().map(|n| r["smaps"][*n].as_u64().unwrap()).sum()
        };
        for names in [
            &["Size"][..],
            &["KernelPageSize"],
            &["Rss"],
            &["Anonymous"],
            &["Swap"],
            &["Locked"],
            &["Private_Clean", "Shared_Clean"],
            &["Private_Dirty", "Shared_Dirty"],
            &["AnonHugePages"],
        ] {
            assert_eq!(ours(names), kb(names), "{names:?} at {addr:x}");
        }
        assert_eq!(
            r["perms"].as_str().unwrap(),
            f[col("Perm")],
            "perms at {addr:x}"
        );
        compared += 1;
    }
    assert_eq!(
        compared,
        leaves(&snap).len(),
        "pmap and vmmap list the same mappings"
    );
}

#[test]
fn text_report_has_header_summary_and_details() {
    let fx = Fixture::start(false);
    fx.stop();
    let out = vmmap_ok(&[&fx.pid.to_string()]);
    assert!(
        out.starts_with(&format!("Process:       {} (fixture-target)", fx.pid)),
        "{out}"
    );
    for needle in [
        "Architecture:  x86-64",
        "Kernel:",
        "Type ",
        "Total",
        "Address",
        "Thread",
        "Heap ID: 1",
        "memfd: vmmap-test",
    ] {
        if needle.starts_with("Architecture") && !cfg!(target_arch = "x86_64") {
            continue;
        }
        assert!(out.contains(needle), "missing {needle:?}");
    }
    // Summary only: no Details header.
    let s = vmmap_ok(&[&fx.pid.to_string(), "--summary"]);
    assert!(!s.contains("Address"));
    assert!(s.contains("Private Data"));
    // A type filter keeps only those regions.
    let h = vmmap_ok(&[&fx.pid.to_string(), "-t", "heap"]);
    let details = h.split("Address").nth(1).unwrap();
    assert!(
        details
            .lines()
            .skip(1)
            .all(|l| l.trim().is_empty() || l.contains("Heap")),
        "{details}"
    );
    // Free regions on request, with the largest free block in the Summary.
    let f = vmmap_ok(&[&fx.pid.to_string(), "--free", "-s"]);
    assert!(f.lines().any(|l| l.starts_with("Free")));
    // Sorting by a figure puts the largest first.
    let sorted = vmmap_ok(&[&fx.pid.to_string(), "--sort", "total_ws", "-c", "total_ws"]);
    let first = sorted
        .split("Address")
        .nth(1)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap();
    assert!(
        first.contains("32M"),
        "the 32M touched region comes first: {first}"
    );
}

#[test]
fn csv_and_output_files() {
    let fx = Fixture::start(false);
    fx.stop();
    let pid = fx.pid.to_string();
    let csv = vmmap_ok(&[&pid, "--csv"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..4], ["depth", "start", "end", "type"]);
    let big = format!("{:#x}", fx.addr("big"));
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with(&format!("0,{big},")))
        .unwrap()
        .split(',')
        .collect();
    let at = |c: &str| row[header.iter().position(|h| *h == c).unwrap()];
    assert_eq!(at("type"), "private_data");
    assert_eq!(at("total_ws"), (32 * MB).to_string());

    let dir = TempDir::new("out");
    for (name, check) in [
        ("s.json", "\"schema\":\"vmmap.snapshot\""),
        ("s.csv", "depth,start,end"),
        ("s.txt", "Process:"),
    ] {
        let p = dir.path().join(name);
        vmmap_ok(&[&pid, "-o", p.to_str().unwrap()]);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(check), "{name}");
    }
}

#[test]
fn ps_lists_processes_cheaply() {
    let fx = Fixture::start(false);
    let out = vmmap_ok(&["ps"]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&fx.pid.to_string()))
        .expect("fixture listed");
    assert!(line.contains("fixture-target"));
    let json: Value = serde_json::from_str(&vmmap_ok(&["ps", "--json", "--sort", "ws"])).unwrap();
    let me = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"].as_u64() == Some(u64::from(fx.pid)))
        .unwrap();
    assert!(me["working_set"].as_u64().unwrap() >= 32 * MB);
    assert!(me["private_bytes"].as_u64().unwrap() >= 32 * MB);
    assert_eq!(me["access"]["status"], "ok");
    // By name, when exactly one process has it.
    let dir = TempDir::new("byname");
    let name = format!("vmm{}", std::process::id() % 100_000);
    let named = Fixture::start_as(&name, dir.path());
    let by_name = vmmap_ok(&["-s", &name]);
    assert!(
        by_name.contains(&format!("Process:       {} ({name})", named.pid)),
        "{by_name}"
    );
}

#[test]
fn explain_defines_types_and_columns() {
    let all = vmmap_ok(&["explain"]);
    assert!(all.contains("Shareable WS") && all.contains("Managed Heap"));
    let one = vmmap_ok(&["explain", "private ws"]);
    assert!(one.contains("Anonymous"), "{one}");
}

#[test]
fn no_argument_prints_usage_and_the_process_list() {
    let fx = Fixture::start(false);
    let out = vmmap_ok(&[]);
    assert!(out.starts_with("usage: vmmap <PID|NAME>"), "{out}");
    assert!(out
        .lines()
        .any(|l| l.split_whitespace().next() == Some(&fx.pid.to_string())));
}

/// The text view shows no rollup figure, so `vmmap PID` spares the kernel
/// a second walk of every page table of the process (`smaps_rollup`), and
/// says nothing of a missing rollup; `--json` carries the rollup and reads
/// it. strace watches which files are opened.
#[test]
fn text_output_does_not_read_smaps_rollup() {
    let fx = Fixture::start(false);
    let dir = TempDir::new("rollup-strace");
    let pid = fx.pid.to_string();
    let strace = require_tool("strace", "strace");
    let run = |extra: &[&str]| -> (String, String) {
        let log = dir.path().join("strace.log");
        let _g = starting_processes();
        let out = output_within(
            std::process::Command::new(&strace)
                .args(["-f", "-qq", "-e", "trace=openat", "-o"])
                .arg(&log)
                .arg(VMMAP)
                .arg(&pid)
                .args(extra)
                .stdin(std::process::Stdio::null()),
            60,
        );
        assert!(
            out.status.success(),
            "strace vmmap {pid} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            std::fs::read_to_string(&log).expect("strace log"),
        )
    };
    let rollup = format!("\"/proc/{pid}/smaps_rollup\"");
    let (text, calls) = run(&[]);
    assert!(
        calls.contains(&format!("\"/proc/{pid}/smaps\"")),
        "strace saw the snapshot: {calls}"
    );
    assert!(
        !calls.contains(&rollup),
        "text output read the rollup: {calls}"
    );
    assert!(
        !text.contains("smaps_rollup"),
        "no note of a missing rollup on a kernel that has one:\n{text}"
    );
    let (json, calls) = run(&["--json"]);
    assert!(
        calls.contains(&rollup),
        "JSON output carries the rollup: {calls}"
    );
    let doc: Value = serde_json::from_str(&json).expect("JSON");
    assert!(doc["rollup"]["Rss"].as_u64().is_some(), "{}", doc["rollup"]);
}

/// vmmap itself maps no library it does not need: GCC's unwinder is
/// linked in, so libgcc_s.so.1 (a file to map and relocate, and a
/// constructor that asks the CPU for its features) is not loaded at each
/// start of a snapshot. Seen the way a user would see it: in the map of a
/// running vmmap.
#[test]
fn vmmap_starts_without_libgcc_s() {
    let me = std::process::id().to_string();
    let mut child = std::process::Command::new(VMMAP)
        .args(["watch", &me, "--interval", "60s", "--duration", "120s"])
        .args(["-o", "/dev/null"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start vmmap watch");
    let pid = child.id();
    // Until the dynamic loader has mapped the C library (a map read
    // before that would lack every library).
    let t0 = std::time::Instant::now();
    let paths = loop {
        let snap = snapshot_json(pid, &[]);
        let paths: Vec<String> = leaves(&snap)
            .iter()
            .filter_map(|r| r["path"].as_str())
            .map(str::to_string)
            .collect();
        if paths.iter().any(|p| p.contains("/libc.so")) {
            break paths;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "vmmap watch never mapped libc: {paths:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let gcc_s: Vec<&String> = paths.iter().filter(|p| p.contains("libgcc_s")).collect();
    assert!(gcc_s.is_empty(), "vmmap maps {gcc_s:?}");
}

/// A process may change its mount namespace after it mapped a file, so
/// that the name in its maps leads, where it lives, to something else: an
/// unprivileged user (`unshare -rm`) mounted a tmpfs over the directory
/// and left a FIFO at that name, and root's `vmmap PID` waited for ever in
/// open(). Files named by a process are opened only if regular.
#[test]
fn a_fifo_mounted_over_a_mapped_name_never_holds_vmmap() {
    let dir = TempDir::new("overmount");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let covered = Covered::start(dir.path().to_str().unwrap());
    let o = output_within(
        std::process::Command::new(VMMAP).args([&covered.pid.to_string(), "--json"]),
        30,
    );
    let addr = covered.addr;
    drop(covered);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snap: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = region_at(&snap, addr);
    assert_eq!(typ(r), "mapped_file", "{r}");
    assert!(r["path"].as_str().unwrap().ends_with("/x"), "{}", r["path"]);
}
