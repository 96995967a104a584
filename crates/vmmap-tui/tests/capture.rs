//! Captures the fixtures the render tests draw: a snapshot of the C test
//! program `crates/vmmap-cli/tests/fixtures/target.c` (threads with custom
//! stacks, glibc arenas, a memfd, SysV shared memory, …) and a short
//! process list. Not part of the normal test run; regenerate with
//!
//! ```text
//! cargo test -p vmmap-tui --test capture -- --ignored --nocapture
//! ```
//!
//! then review the changes to `tests/snapshots/` with
//! `cargo insta test -p vmmap-tui --test render --review` (or
//! `INSTA_UPDATE=always cargo test -p vmmap-tui --test render` and a diff).
//!
//! The program runs as a child of the test thread: it asks for
//! `PR_SET_PDEATHSIG`, so it must have a live parent while it is read.
//! It is built and run in a fixed directory, `/tmp/vmmap-tui-fixture`, so
//! that its paths (which the views show) do not depend on the checkout.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vmmap_core::collect::{list_processes, snapshot, Access, Options, ProcessEntry};

const DIR: &str = "/tmp/vmmap-tui-fixture";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Kills the child on every way out.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "captures fixtures from live processes; run by hand"]
fn capture_fixtures() {
    let dir = Path::new(DIR);
    std::fs::create_dir_all(dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vmmap-cli/tests/fixtures/target.c");
    let bin = dir.join("target");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-O1", "-pthread", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(st.success(), "compiling {} failed", src.display());

    let mut child = Kill(
        Command::new(&bin)
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("READY "), "unexpected output: {line:?}");
    let pid = child.0.id();
    println!("{}", line.trim_end());

    let snap = snapshot(pid, &Options::default()).unwrap();
    let out = fixtures();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("target.json"),
        serde_json::to_string_pretty(&snap).unwrap() + "\n",
    )
    .unwrap();

    // A short list that does not depend on the machine: the target and a
    // few idle programs started here, each waiting on its open stdin.
    let mut helpers = Vec::new();
    for args in [
        &["sleep", "600"][..],
        &["cat"],
        &["tail", "-f", "/dev/null"],
        &["sort", "-n"],
        &["awk", "{ n += $1 } END { print n }"],
        &["sh", "-c", "read line"],
        &["perl", "-e", "my @a = (1) x 2_000_000; sleep 600"],
        &["sleep", "infinity"],
    ] {
        let c = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", args[0]));
        helpers.push(Kill(c));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mine: Vec<u32> = std::iter::once(pid)
        .chain(helpers.iter().map(|h| h.0.id()))
        .collect();
    let mut list: Vec<ProcessEntry> = list_processes(Path::new("/proc"))
        .unwrap()
        .into_iter()
        .filter(|p| mine.contains(&p.pid))
        .collect();
    // Captured as root, nothing is refused: mark one entry as refused the
    // way a process in another container would be.
    if !list.iter().any(|p| matches!(p.access, Access::Denied(_))) {
        let p = list
            .iter_mut()
            .find(|p| p.name == "sort")
            .expect("sort is running");
        p.arch = None;
        p.access = Access::Denied(
            "access refused even with CAP_SYS_PTRACE: a security module (SELinux, AppArmor, \
             lockdown) or a container boundary stops it; check the audit log"
                .into(),
        );
    }
    std::fs::write(
        out.join("processes.json"),
        serde_json::to_string_pretty(&list).unwrap() + "\n",
    )
    .unwrap();
    println!(
        "wrote {} regions and {} processes to {}",
        snap.regions.len(),
        list.len(),
        out.display()
    );
}
