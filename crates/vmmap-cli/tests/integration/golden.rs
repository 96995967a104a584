//! Recorded files and what vmmap printed for them, compared byte for byte:
//! a change of layout or code must not change an output. The inputs and
//! outputs live in `tests/golden/` (its README says how they were made);
//! `VMMAP_BLESS=1` rewrites the outputs after an intended change, to be
//! reviewed in the diff like code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::VMMAP;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The recorded inputs, copied to a fresh directory each time so that no
/// command can change the stored ones (trace analysis appends resolved
/// symbols to its file unless told not to).
fn workdir(tag: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("golden-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the golden work directory");
    for name in ["snap.vmmap", "snap2.vmmap", "calls.vmmap"] {
        std::fs::copy(golden().join(name), dir.join(name))
            .unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mmp/nested.mmp"),
        dir.join("nested.mmp"),
    )
    .expect("copy nested.mmp");
    dir
}

/// Runs vmmap in `dir` with an environment that does not vary between
/// machines, and returns its standard output.
fn run(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(VMMAP)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .expect("run vmmap");
    assert!(
        out.status.success(),
        "vmmap {args:?} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compares `got` with `tests/golden/out/NAME`, or rewrites it under
/// `VMMAP_BLESS=1`. Returns a description of the mismatch, if any.
fn check(name: &str, got: &[u8]) -> Option<String> {
    let path = golden().join("out").join(name);
    if std::env::var_os("VMMAP_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, got).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return None;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (VMMAP_BLESS=1 records it from the current binary)",
            path.display()
        )
    });
    if want == got {
        return None;
    }
    let line = want
        .split(|&b| b == b'\n')
        .zip(got.split(|&b| b == b'\n'))
        .position(|(a, b)| a != b)
        .map_or_else(|| "the length".to_string(), |i| format!("line {}", i + 1));
    Some(format!(
        "{name}: differs from the recorded output at {line} ({} bytes recorded, {} now)",
        want.len(),
        got.len()
    ))
}

/// Every command and the file its output is recorded in. `@FILE` names
/// an output file the command writes (compared instead of stdout).
const CASES: &[(&str, &[&str])] = &[
    ("open.txt", &["open", "snap.vmmap"]),
    ("open.json", &["open", "snap.vmmap", "--json"]),
    (
        "open-all.txt",
        &["open", "snap.vmmap", "-c", "all", "--bytes", "--free"],
    ),
    ("convert.json", &["convert", "snap.vmmap", "@snap.json"]),
    ("convert.csv", &["convert", "snap.vmmap", "@snap.csv"]),
    (
        "report.html",
        &["report", "snap.vmmap", "-o", "@report.html"],
    ),
    ("diff.txt", &["diff", "snap.vmmap", "snap2.vmmap"]),
    (
        "diff.json",
        &["diff", "snap.vmmap", "snap2.vmmap", "--json"],
    ),
    ("mmp.txt", &["open", "nested.mmp"]),
    (
        "trace-open.txt",
        &["open", "calls.vmmap", "--snapshot", "3"],
    ),
    (
        "trace-summary.txt",
        &["trace", "calls.vmmap", "--no-symbol-cache"],
    ),
    (
        "trace-calltree.txt",
        &["trace", "calls.vmmap", "calltree", "--no-symbol-cache"],
    ),
    (
        "trace-calltree.json",
        &[
            "trace",
            "calls.vmmap",
            "calltree",
            "--json",
            "--no-symbol-cache",
        ],
    ),
    (
        "trace-calltree-bottom-up-lines.txt",
        &[
            "trace",
            "calls.vmmap",
            "calltree",
            "--bottom-up",
            "--lines",
            "--no-symbol-cache",
        ],
    ),
    (
        "trace-leaks.txt",
        &["trace", "calls.vmmap", "leaks", "--no-symbol-cache"],
    ),
    (
        "trace-regions.txt",
        &["trace", "calls.vmmap", "regions", "--no-symbol-cache"],
    ),
    (
        "trace-history.txt",
        &["trace", "calls.vmmap", "history", "--no-symbol-cache"],
    ),
    ("trace-diff.txt", &["diff", "calls.vmmap"]),
    (
        "trace-report.html",
        &["report", "calls.vmmap", "-o", "@trace-report.html"],
    ),
    (
        "trace-folded.txt",
        &[
            "trace",
            "calls.vmmap",
            "folded",
            "--no-symbol-cache",
            "-o",
            "-",
        ],
    ),
];

#[test]
fn recorded_files_print_as_recorded() {
    let dir = workdir("outputs");
    let mut wrong = Vec::new();
    for (name, args) in CASES {
        let file = args.iter().find_map(|a| a.strip_prefix('@'));
        let args: Vec<&str> = args.iter().map(|a| a.trim_start_matches('@')).collect();
        let stdout = run(&dir, &args);
        let got = match file {
            Some(f) => std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
            None => stdout,
        };
        wrong.extend(check(name, &got));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The recorded trace carries its own symbols (appended when it was
/// recorded), so its outputs do not depend on the binaries of this machine.
/// Analysing it again must not need to add any.
#[test]
fn the_recorded_trace_needs_no_symbols_from_this_machine() {
    let dir = workdir("symbols");
    let before = std::fs::read(dir.join("calls.vmmap")).unwrap();
    run(
        &dir,
        &["trace", "calls.vmmap", "calltree", "--lines", "--bottom-up"],
    );
    run(&dir, &["trace", "calls.vmmap", "leaks"]);
    let after = std::fs::read(dir.join("calls.vmmap")).unwrap();
    assert!(
        before == after,
        "analysing calls.vmmap appended symbols: re-record it as tests/golden/README.md says"
    );
}
