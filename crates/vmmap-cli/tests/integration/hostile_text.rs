//! Names, command lines, paths and strings are chosen by whoever runs the
//! process vmmap looks at: none of their control characters may reach the
//! terminal (or a text file) raw. They are shown in vmmap's escaped
//! notation (docs/output-formats.md, "Untrusted text"); JSON keeps them.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// The fixture's command line after its directory.
const ARGS: [&str; 4] = [
    "\x1b]0;pwned\x07",
    "\x1b[2J",
    "\r\nFORGED: line",
    "\x1b]52;c;aGk=\x07",
];
/// Its name (prctl PR_SET_NAME), its named thread's, its file's.
const COMM: &str = "\x1b]0;PWN\x07x";
const THREAD: &str = "th\x1b[31mred";
const FILE: &str = "map\x1b]0;T\x07\r\nFORGED";

/// How each hostile string must be shown (inside a quoted, escaped value).
const SHOWN_ARGS: [&str; 4] = [
    r"\x1b]0;pwned\x07",
    r"\x1b[2J",
    r"\r\nFORGED: line",
    r"\x1b]52;c;aGk=\x07",
];
const SHOWN_COMM: &str = r"\x1b]0;PWN\x07x";
const SHOWN_THREAD: &str = r"th\x1b[31mred";
/// The kernel writes the newline of a mapped path as `\012`; the escaped
/// form doubles that backslash.
const SHOWN_FILE: &str = r"map\x1b]0;T\x07\r\\012FORGED";

/// No byte that a terminal acts on: C0 controls but the line feed, DEL,
/// and C1 controls; and no line that starts with the forged text.
#[track_caller]
fn assert_clean(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
        assert!(
            !bad,
            "{what}: raw {c:?} at byte {i}:\n{}",
            &text[i.saturating_sub(200)..(i + 40).min(text.len())]
        );
    }
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "{what}: a forged line:\n{text}"
    );
}

#[track_caller]
fn assert_shows(what: &str, out: &[u8], shown: &[&str]) {
    let text = String::from_utf8_lossy(out);
    for s in shown {
        assert!(text.contains(s), "{what}: no {s} in:\n{text}");
    }
}

/// Runs vmmap; its stdout and stderr must both be clean.
#[track_caller]
fn run(args: &[&str]) -> std::process::Output {
    let o = vmmap(args);
    assert_clean(&format!("stdout of vmmap {args:?}"), &o.stdout);
    assert_clean(&format!("stderr of vmmap {args:?}"), &o.stderr);
    o
}

#[track_caller]
fn run_ok(args: &[&str]) -> Vec<u8> {
    let o = run(args);
    assert!(
        o.status.success(),
        "vmmap {args:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn hostile() -> Fixture {
    Fixture::start_named_with("hostile", &ARGS)
}

#[test]
fn a_hostile_process_is_shown_escaped_in_every_text_view() {
    let f = hostile();
    let pid = f.pid.to_string();
    let file = format!("{:#x}", f.addr("file"));
    let all = [
        SHOWN_ARGS.as_slice(),
        &[SHOWN_COMM, SHOWN_FILE, SHOWN_THREAD],
    ]
    .concat();

    let out = run_ok(&[&pid]);
    assert_shows(
        "vmmap PID",
        &out,
        &[SHOWN_ARGS.as_slice(), &[SHOWN_FILE]].concat(),
    );
    let out = run_ok(&[&pid, "-c", "all"]);
    assert_shows("vmmap PID -c all", &out, &[SHOWN_FILE, SHOWN_THREAD]);
    let out = run_ok(&[&pid, "-a", &file]);
    assert_shows("vmmap PID -a", &out, &[SHOWN_FILE]);
    let out = run_ok(&["ps"]);
    assert_shows(
        "vmmap ps",
        &out,
        &[SHOWN_ARGS.as_slice(), &[SHOWN_COMM]].concat(),
    );
    // OpenMetrics labels carry the name escaped, then quoted as the
    // format requires.
    let out = run_ok(&["metrics", &pid]);
    assert!(
        String::from_utf8_lossy(&out).contains(&format!(
            "comm=\"\\\"{}\\\"\"",
            SHOWN_COMM.replace('\\', "\\\\")
        )),
        "vmmap metrics: the hostile comm is not shown escaped:\n{}",
        String::from_utf8_lossy(&out)
    );
    let out = run_ok(&["explain", &pid, &file]);
    assert_shows("vmmap explain PID ADDR", &out, &[SHOWN_FILE]);
    let out = run_ok(&["find", &pid, "VMMAP-HOSTILE-MEM"]);
    assert_shows("vmmap find", &out, &[SHOWN_FILE]);
    let out = run_ok(&["find", &pid, "--regex", "VMMAP-HOSTILE-MEM.{0,12}"]);
    assert_shows(
        "vmmap find --regex",
        &out,
        &[r"VMMAP-HOSTILE-MEM\x09TAB\x1b[2J"],
    );
    let out = run_ok(&["strings", &pid, "--region", &file]);
    assert_shows("vmmap strings", &out, &[r#""VMMAP-HOSTILE-MEM\tTAB""#]);

    // The same report written to files and read back.
    let dir = TempDir::new("hostile");
    let txt = dir.path().join("x.txt");
    let txt = txt.to_str().expect("utf-8");
    run_ok(&[&pid, "-c", "all", "-o", txt]);
    let saved = std::fs::read(txt).expect("read x.txt");
    assert_clean("x.txt", &saved);
    assert_shows("x.txt", &saved, &all[..all.len() - 2]);
    assert_shows("x.txt", &saved, &[SHOWN_FILE, SHOWN_THREAD]);
    let native = dir.path().join("x.vmmap");
    let native = native.to_str().expect("utf-8");
    run_ok(&[&pid, "-o", native]);
    let out = run_ok(&["open", native, "-c", "all"]);
    assert_shows("vmmap open x.vmmap", &out, &all[..all.len() - 2]);
    assert_shows("vmmap open x.vmmap", &out, &[SHOWN_FILE, SHOWN_THREAD]);
    run_ok(&["timeline", native]);
    let mmp = dir.path().join("x.mmp");
    let mmp = mmp.to_str().expect("utf-8");
    run_ok(&["convert", native, mmp]);
    // XML 1.0 cannot hold control characters: the .mmp writer puts
    // U+FFFD in their place.
    let out = run_ok(&["open", mmp]);
    assert_shows("vmmap open x.mmp", &out, &["\u{fffd}]0;PWN\u{fffd}x"]);
}

#[test]
fn json_keeps_the_real_characters() {
    let f = hostile();
    // The JSON escapes every control character (C1 and bidi controls as
    // \u escapes too): it is as safe on a terminal as the text.
    let snap: Value =
        serde_json::from_slice(&run_ok(&[&f.pid.to_string(), "--json"])).expect("JSON");
    let p = &snap["process"];
    let cmdline: Vec<&str> = p["cmdline"]
        .as_array()
        .expect("cmdline")
        .iter()
        .map(|a| a.as_str().expect("arg"))
        .collect();
    assert_eq!(cmdline[2..], ARGS);
    let threads = p["threads"].as_array().expect("threads");
    assert_eq!(threads[0]["name"], COMM);
    assert!(threads.iter().any(|t| t["name"] == THREAD), "{threads:?}");
    let r = region_at(&snap, f.addr("file"));
    // The kernel escapes only the newline of a path in maps.
    let want = FILE.replace('\n', "\\012");
    assert!(
        r["path"]
            .as_str()
            .expect("path")
            .ends_with(&format!("/{want}")),
        "{}",
        r["path"]
    );
    // A name that is not UTF-8 is read lossily, as docs/output-formats.md
    // says: U+FFFD in place of each invalid byte.
    let bad = region_at(&snap, f.addr("bad"));
    assert!(
        bad["path"]
            .as_str()
            .expect("path")
            .ends_with("/bad\u{fffd}\u{fffd}name"),
        "{}",
        bad["path"]
    );
    // CSV has no escapes: the path is a quoted field holding the real
    // characters (RFC 4180).
    let csv = vmmap(&[&f.pid.to_string(), "--csv"]);
    assert!(csv.status.success());
    let rows = parse_csv(&String::from_utf8(csv.stdout).expect("utf-8"));
    let path_col = rows[0]
        .iter()
        .position(|h| h == "path")
        .expect("path column");
    assert!(
        rows.iter().any(|r| r
            .get(path_col)
            .is_some_and(|p| p.ends_with(&format!("/{want}")))),
        "no row with the hostile path"
    );
}

/// Rows of RFC 4180 CSV: quoted fields may hold commas, doubled quotes,
/// CR and LF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => panic!("a CR outside quotes in CSV:\n{text}"),
            (false, c) => field.push(c),
        }
    }
    rows
}

#[test]
fn the_list_of_processes_that_share_a_hostile_name_is_escaped() {
    let a = hostile();
    let b = hostile();
    let o = run(&[COMM]);
    assert_eq!(
        o.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_shows(
        "ambiguous name",
        &o.stderr,
        &[&a.pid.to_string(), &b.pid.to_string()],
    );
    assert_shows("ambiguous name", &o.stderr, &SHOWN_ARGS);
    // Every other error that quotes a name or a path.
    let o = run(&[&format!("no{COMM}such")]);
    assert_eq!(o.status.code(), Some(3));
    let o = run(&["open", &format!("/nonexistent/{FILE}.vmmap")]);
    assert_ne!(o.status.code(), Some(0));
    assert_shows(
        "open a missing file",
        &o.stderr,
        &[r"map\x1b]0;T\x07\r\nFORGED"],
    );
}

/// A `.mmp` file is wholly chosen by whoever wrote it.
fn crafted_mmp(dir: &Path, name: &str, hostile_regions: bool) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root>\n  <Snapshot Process=\"&#27;]0;MMP&#7;&#13;&#10;FORGED\" Pid=\"77\">\n    <Region Address=\"4096000\" Size=\"8192\" Commit=\"8192\" PrivateBytes=\"8192\" PrivateWS=\"8192\" ShareableWS=\"0\" SharedWS=\"0\" Protection=\"4\" Storage=\"131072\" UseType=\"4\" Details=\"plain\"/>\n",
    );
    if hostile_regions {
        xml.push_str("    <Region Address=\"8192000\" Size=\"4096\" Commit=\"4096\" PrivateBytes=\"0\" PrivateWS=\"0\" ShareableWS=\"4096\" SharedWS=\"4096\" Protection=\"2\" Storage=\"262144\" UseType=\"3\" Details=\"C:\\evil&#27;[2J&#13;&#10;FORGED&#x9b;&#x202e;\"/>\n");
        xml.push_str("    <Region Address=\"12288000\" Size=\"4096\" Commit=\"4096\" PrivateBytes=\"4096\" PrivateWS=\"4096\" ShareableWS=\"0\" SharedWS=\"0\" Protection=\"4\" Storage=\"131072\" UseType=\"4\" Details=\"cr&#13;only\"/>\n");
    }
    xml.push_str("  </Snapshot>\n</root>\n");
    let p = dir.join(name);
    std::fs::write(&p, xml).expect("write the .mmp");
    p.to_str().expect("utf-8").to_string()
}

#[test]
fn a_crafted_mmp_file_is_shown_escaped() {
    let dir = TempDir::new("hostile-mmp");
    let before = crafted_mmp(dir.path(), "before.mmp", false);
    let after = crafted_mmp(dir.path(), "after.mmp", true);
    let name = r"\x1b]0;MMP\x07\r\nFORGED";
    let details = r"C:\\evil\x1b[2J\r\nFORGED\u{9b}\u{202e}";
    let out = run_ok(&["open", &after, "-c", "all"]);
    assert_shows("vmmap open crafted.mmp", &out, &[name, details]);
    let out = run_ok(&["diff", &before, &after]);
    assert_shows("vmmap diff of crafted .mmp files", &out, &[details]);
    let out = run_ok(&["diff", &before, &after, "--json"]);
    let v: Value = serde_json::from_slice(&out).expect("diff JSON");
    assert!(v.to_string().contains("FORGED"), "{v}");
    let csv = vmmap(&["diff", &before, &after, "--csv"]);
    let rows = parse_csv(&String::from_utf8(csv.stdout).expect("utf-8"));
    assert!(
        rows.iter().any(
            |r| r.last().map(String::as_str) == Some("C:\\evil\x1b[2J\r\nFORGED\u{9b}\u{202e}")
        ),
        "the diff CSV lost the details: {rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.last().map(String::as_str) == Some("cr\ronly")),
        "the diff CSV lost the details: {rows:?}"
    );
    let txt = dir.path().join("crafted.txt");
    let txt = txt.to_str().expect("utf-8");
    run_ok(&["convert", &after, txt]);
    let saved = std::fs::read(txt).expect("read");
    assert_clean("convert crafted.mmp crafted.txt", &saved);
    assert_shows("convert crafted.mmp crafted.txt", &saved, &[name, details]);
    // JSON has the real characters.
    let json: Value = serde_json::from_slice(&run_ok(&["open", &after, "--json"])).expect("json");
    assert_eq!(json["process"]["name"], "\x1b]0;MMP\x07\r\nFORGED");
    assert_eq!(
        json["regions"][1]["details"],
        "C:\\evil\x1b[2J\r\nFORGED\u{9b}\u{202e}"
    );
}

/// A traced program's symbols come from its own binary: its source file's
/// name (in the debug info) and its own name are the author's choice.
#[test]
fn trace_views_show_hostile_symbols_escaped() {
    use crate::trace::{build, fixture, on_file, run_traced};
    let dir = TempDir::new("hostile-trace");
    let src = dir.path().join("ev\x1b]0;T\x07il\r\nFORGED.c");
    std::fs::copy(fixture("calls.c"), &src).expect("copy calls.c");
    let prog = build(
        "calls\x1b[2J",
        &["cc", "-O0", "-g", src.to_str().expect("utf-8")],
    );
    let (o, file) = run_traced(&[], &prog, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean("vmmap run's stderr", &o.stderr);
    let shown = r"ev\x1b]0;T\x07il\r\nFORGED.c";
    let f = file.to_str().expect("utf-8");
    for args in [
        &["trace", f][..],
        &["trace", f, "calltree", "--lines"],
        &["trace", f, "calltree", "--bottom-up", "--lines"],
        &["trace", f, "leaks"],
        &["trace", f, "regions", "--stacks"],
    ] {
        let out = run_ok(args);
        if args.len() > 2 {
            assert_shows(&format!("vmmap {args:?}"), &out, &[shown]);
        }
    }
    let out = on_file("trace", &file, &["calltree", "--lines", "--json"]);
    assert_clean("calltree --json", &out);
    assert!(
        String::from_utf8_lossy(&out).contains(r"ev\u001b]0;T\u0007il\r\nFORGED.c"),
        "the JSON has the real file name"
    );
}

/// On a terminal clap colours its messages and would quote a bad argument
/// as it is; an argument may be a file name someone else chose
/// (`vmmap open *`). Run under `script`, so that standard error is a
/// terminal.
#[test]
fn a_bad_argument_is_not_echoed_raw_to_a_terminal() {
    let hostile = "\x1b]0;pwned\x07\r\nFORGED";
    let o = std::process::Command::new(require_tool("script", "util-linux"))
        .args(["-qec"])
        .arg(format!("{VMMAP} ps '{hostile}'"))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script(1) (util-linux) to give vmmap a terminal");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(r#"unexpected argument '"\x1b]0;pwned\x07\r\nFORGED"' found"#),
        "{out}"
    );
    assert!(
        !out.contains('\x1b') && !out.contains('\x07'),
        "raw escape sequences on the terminal: {out:?}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("FORGED")),
        "a forged line: {out:?}"
    );
}
