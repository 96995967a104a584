//! Text output on a terminal fits its width, and nothing is cut when the
//! output goes to a pipe: `vmmap PID`, `-s`, `ps` and the trace views run
//! in a pseudo-terminal (`script`) with `COLUMNS=80`, then piped.

use std::process::Command;

use crate::trace::{build, fixture, run_traced};
use crate::util::*;

/// A long argument, so that `ps` has a COMMAND to cut.
const LONG_ARG: &str =
    "a-long-argument-that-no-terminal-line-of-eighty-columns-can-hold-whole-0123456789";

/// `vmmap ARGS` run in a pseudo-terminal with `COLUMNS`; its lines
/// without the terminal's carriage returns.
fn on_terminal(args: &[&str], columns: &str) -> Vec<String> {
    let script = require_tool("script", "bsdutils");
    let cmd = std::iter::once(VMMAP)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let o = output_within(
        Command::new(script)
            .args(["-qec", &cmd, "/dev/null"])
            .env("COLUMNS", columns),
        120,
    );
    let text = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    assert!(o.status.success(), "{cmd}: {text}");
    text.lines().map(str::to_string).collect()
}

fn widest(lines: &[String]) -> usize {
    lines.iter().map(|l| l.chars().count()).max().unwrap_or(0)
}

fn assert_fits(what: &str, lines: &[String], width: usize) {
    assert!(!lines.is_empty(), "{what}: no output");
    for l in lines {
        assert!(
            l.chars().count() <= width,
            "{what}: a line of {} columns:\n{l}",
            l.chars().count()
        );
    }
}

#[test]
fn snapshot_text_fits_80_columns_on_a_terminal_and_is_whole_when_piped() {
    let f = Fixture::start(false);
    let pid = f.pid.to_string();
    for args in [vec![pid.as_str()], vec![pid.as_str(), "-s"]] {
        let lines = on_terminal(&args, "80");
        assert_fits(&format!("vmmap {args:?}"), &lines, 80);
        // The identifying columns and the most telling figures stay.
        let text = lines.join("\n");
        for col in ["Type", "Size", "Private", "Total WS"] {
            assert!(text.contains(col), "{args:?} keeps {col}:\n{text}");
        }
        let piped = vmmap_ok(&args);
        assert!(
            widest(&piped.lines().map(str::to_string).collect::<Vec<_>>()) > 80,
            "piped output is not cut"
        );
        assert!(
            piped.contains("Shareable WS"),
            "piped output has every column"
        );
    }
    // Details keep a path's file name, cut from its start.
    let lines = on_terminal(&[&pid], "80");
    let exe = f_exe_name(&f);
    assert!(
        lines.iter().any(|l| l.contains(&exe)),
        "the executable's file name {exe} is shown:\n{}",
        lines.join("\n")
    );
    // --wide: everything, as piped.
    let wide = on_terminal(&[&pid, "--wide"], "80");
    assert!(widest(&wide) > 80);
}

fn f_exe_name(f: &Fixture) -> String {
    std::fs::read_link(format!("/proc/{}/exe", f.pid))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn ps_cuts_command_at_the_terminal_width_and_not_in_a_pipe() {
    let f = Fixture::start_named_with("target", &[LONG_ARG]);
    let lines = on_terminal(&["ps"], "80");
    assert_fits("vmmap ps", &lines, 80);
    let row = lines
        .iter()
        .find(|l| l.trim_start().starts_with(&format!("{} ", f.pid)))
        .unwrap_or_else(|| panic!("pid {} listed:\n{}", f.pid, lines.join("\n")));
    assert!(
        row.ends_with('\u{2026}'),
        "COMMAND cut with an ellipsis: {row}"
    );
    let piped = vmmap_ok(&["ps"]);
    assert!(piped.contains(LONG_ARG), "piped COMMAND is whole");
    let wide = on_terminal(&["ps", "--wide"], "80");
    assert!(wide.iter().any(|l| l.contains(LONG_ARG)));
}

/// `top --once` on a terminal: the columns that fit 80 (PID, NAME,
/// Private and its growth first), COMMAND cut at the edge; piped, or with
/// `--wide`, every column and the whole command line.
#[test]
fn top_once_fits_the_terminal_and_is_whole_when_piped() {
    let f = Fixture::start_named_with("target", &[LONG_ARG]);
    let args = ["top", "--once", "--delay", "0.1s", "--filter", LONG_ARG];
    let lines = on_terminal(&args, "80");
    assert_fits("vmmap top --once", &lines, 80);
    let text = lines.join("\n");
    for col in ["PID", "NAME", "PRIVATE", "+PRIVATE", "WS", "+WS"] {
        assert!(text.contains(col), "keeps {col}:\n{text}");
    }
    let row = lines
        .iter()
        .find(|l| l.trim_start().starts_with(&format!("{} ", f.pid)))
        .unwrap_or_else(|| panic!("pid {} listed:\n{text}", f.pid));
    assert!(
        row.ends_with('\u{2026}'),
        "COMMAND cut with an ellipsis: {row}"
    );
    let piped = vmmap_ok(&args);
    assert!(piped.contains(LONG_ARG), "piped COMMAND is whole:\n{piped}");
    assert!(piped.contains("USER") && piped.contains("+SWAP"), "{piped}");
    let wide: Vec<&str> = args.iter().copied().chain(["--wide"]).collect();
    let wide = on_terminal(&wide, "80");
    assert!(
        wide.iter().any(|l| l.contains(LONG_ARG)),
        "--wide: {}",
        wide.join("\n")
    );
    // A narrow terminal keeps the identity and Private.
    let narrow = on_terminal(&args, "40");
    assert_fits("vmmap top --once at 40 columns", &narrow, 40);
    assert!(narrow.join("\n").contains("PRIVATE"));
}

#[test]
fn trace_views_fit_80_columns_on_a_terminal() {
    let src = fixture("views.c");
    let prog = build("views", &["cc", "-O0", "-g", src.to_str().unwrap()]);
    let (o, file) = run_traced(&[], &prog, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = file.to_str().unwrap();
    for view in ["summary", "calltree", "leaks", "heap", "regions"] {
        let lines = on_terminal(&["trace", file, view], "80");
        assert_fits(&format!("trace {view}"), &lines, 80);
    }
    let piped = vmmap_ok(&["trace", file, "regions"]);
    assert!(
        piped.lines().any(|l| l.chars().count() > 80),
        "piped regions are whole"
    );
}

/// The other text views of live processes: several processes combined, an
/// address's region, a diff over time.
#[test]
fn combined_address_and_diff_fit_80_columns_on_a_terminal() {
    let f = Fixture::start(false);
    let g = Fixture::start(false);
    let (pid, other) = (f.pid.to_string(), g.pid.to_string());
    let addr = format!("{:#x}", f.addr("data"));
    for args in [
        vec![pid.as_str(), other.as_str()],
        vec![pid.as_str(), "-a", addr.as_str()],
        vec!["diff", pid.as_str(), "--after", "0.1s"],
    ] {
        let lines = on_terminal(&args, "80");
        assert_fits(&format!("vmmap {args:?}"), &lines, 80);
    }
    let piped = vmmap_ok(&[&pid, &other]);
    assert!(
        piped.lines().any(|l| l.chars().count() > 80),
        "piped, the combined report is whole"
    );
}
