//! Shell completions and the man page, generated from the clap definitions.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::{require_tool, vmmap, vmmap_ok, TempDir};

/// Every subcommand, as the user types it.
const SUBCOMMANDS: [&str; 21] = [
    "ps",
    "top",
    "run",
    "attach",
    "trace",
    "strings",
    "find",
    "map",
    "report",
    "watch",
    "timeline",
    "diff",
    "open",
    "convert",
    "config",
    "explain",
    "metrics",
    "serve",
    "completions",
    "manpage",
    "help",
];

/// Runs `tool args` with `input` on its standard input.
fn pipe(tool: impl AsRef<std::path::Path>, args: &[&str], input: &str) -> std::process::Output {
    let tool = tool.as_ref();
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn bash_completion_offers_every_subcommand_and_parses() {
    let script = vmmap_ok(&["completions", "bash"]);
    assert!(script.contains("complete -F _vmmap"), "{script}");
    // The subcommand words bash offers after `vmmap `.
    let first = script
        .lines()
        .find(|l| l.trim_start().starts_with("opts=") && l.contains("ps"))
        .expect("an opts= line with the subcommands");
    for sub in SUBCOMMANDS {
        assert!(
            first.split_whitespace().any(|w| w.trim_matches('"') == sub),
            "{sub} missing from {first}"
        );
    }
    // Options of a subcommand are completed too.
    assert!(script.contains("--full-every"), "watch's options");
    let o = pipe("bash", &["-n"], &script);
    assert!(
        o.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn zsh_and_fish_completions_name_the_subcommands() {
    let zsh = vmmap_ok(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef vmmap"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    let fish = vmmap_ok(&["completions", "fish"]);
    for sub in SUBCOMMANDS {
        assert!(zsh.contains(&format!("'{sub}:")), "zsh lacks {sub}");
        assert!(fish.contains(&format!("-a \"{sub}\"")), "fish lacks {sub}");
    }
    let o = vmmap(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "an unknown shell is bad usage");
}

#[test]
fn man_page_is_valid_roff_with_every_subcommand() {
    let page = vmmap_ok(&["manpage"]);
    assert!(
        page.contains(".TH vmmap 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    for sub in SUBCOMMANDS.iter().filter(|s| **s != "help") {
        assert!(
            page.contains(&format!("vmmap\\-{sub}(1)")),
            "the page lacks vmmap-{sub}(1)"
        );
    }
    // The EXIT STATUS list of --help is in the page.
    assert!(page.contains("name matches several processes"));
    let groff = require_tool("groff", "groff-base");
    let man = require_tool("man", "man-db");
    // groff with every warning on: the page has no roff mistakes.
    let o = pipe(&groff, &["-man", "-Tutf8", "-ww", "-z"], &page);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "groff warnings");
    let o = pipe(
        "env",
        &["MANWIDTH=100", man.to_str().unwrap(), "-l", "-"],
        &page,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Bold and underline are overstrikes ("X\bX"): keep the last character.
    let mut shown = String::new();
    for c in String::from_utf8_lossy(&o.stdout).chars() {
        if c == '\u{8}' {
            shown.pop();
        } else {
            shown.push(c);
        }
    }
    assert!(shown.contains("SUBCOMMANDS"), "{shown}");
    assert!(shown.contains("EXIT STATUS"), "{shown}");
}

#[test]
fn man_pages_for_each_subcommand_go_into_a_directory() {
    let dir = TempDir::new("man");
    let d = dir.path().to_str().expect("utf-8 path");
    vmmap_ok(&["manpage", "--dir", d]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = SUBCOMMANDS
        .iter()
        .filter(|s| **s != "help")
        .map(|s| format!("vmmap-{s}.1"))
        .chain(["vmmap.1".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want);
    let watch = std::fs::read_to_string(dir.path().join("vmmap-watch.1")).expect("read");
    assert!(watch.contains(".TH vmmap-watch 1"));
    assert!(watch.contains("full\\-every"));
    let o = vmmap(&["manpage", "--dir", "/nonexistent/dir"]);
    assert_eq!(o.status.code(), Some(10), "cannot write the output");
}
