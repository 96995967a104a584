//! The interactive view end to end: the real binary in a real terminal
//! (tmux), driven by keys and read back from the screen.
//!
//! Each test runs its own tmux server (`tmux -L NAME`, no config file) with
//! one fixed-size pane running `vmmap` under `sh`, which prints
//! `EXITED-<status>` and the tty mode when vmmap ends, so a crash shows on
//! the screen and the restored terminal can be checked. HOME and
//! XDG_CONFIG_HOME point at a temporary directory: the user's settings
//! never leak in. Every wait polls the screen (every 50 ms, up to 10 s).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::*;

const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
const POLL: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(10);

/// A tmux server of our own with one pane running vmmap; killed on drop,
/// with everything the pane started.
pub(crate) struct Tmux {
    socket: String,
    socket_path: String,
    server_pid: Option<u32>,
    pane_pid: Option<u32>,
    _home: TempDir,
}

impl Tmux {
    /// Starts `vmmap ARGS` in a new pane.
    pub(crate) fn start(args: &[&str]) -> Tmux {
        Tmux::start_env(args, &[])
    }

    /// Starts `vmmap ARGS` in a new pane with more environment variables.
    fn start_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Tmux {
        Tmux::launch(args, env, "")
    }

    /// Starts `vmmap ARGS` with `TERM` set in the pane itself (tmux gives
    /// its panes a TERM of its own, whatever the server's is).
    fn start_with_term(args: &[&str], term: &str) -> Tmux {
        Tmux::launch(args, &[], &format!("TERM='{term}' "))
    }

    /// Starts `vmmap ARGS`, `prefix` (variable assignments) before it on
    /// the pane's command line.
    pub(crate) fn launch(args: &[&str], env: &[(&str, &std::ffi::OsStr)], prefix: &str) -> Tmux {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let home = TempDir::new("tui-home");
        let socket = format!(
            "vmmap-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        // $0 is vmmap, "$@" its arguments. After vmmap: its exit status,
        // whether the tty is still raw, then time to look at the screen.
        let script = format!(
            r#"{prefix}"$0" "$@"; st=$?
if stty -a | grep -qE -- '(^| )-(icanon|echo)( |$)'; then tty=raw; else tty=cooked; fi
echo "EXITED-$st TTY-$tty"
exec sleep 60"#
        );
        let mut cmd = Command::new(require_tool("tmux", "tmux"));
        cmd.args([
            "-f",
            "/dev/null",
            "-L",
            &socket,
            "new-session",
            "-d",
            "-s",
            "t",
        ])
        .args(["-x", &WIDTH.to_string(), "-y", &HEIGHT.to_string()])
        .args(["sh", "-c", &script, VMMAP])
        .args(args)
        // The server, and so the pane, inherits this environment.
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("TMUX")
        .envs(env.iter().copied())
        // Files vmmap saves (Ctrl+S, w) land in the temporary home.
        .current_dir(home.path());
        let mut t = Tmux {
            socket,
            socket_path: String::new(),
            server_pid: None,
            pane_pid: None,
            _home: home,
        };
        let out = cmd.output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.socket_path = t.display("#{socket_path}");
        t.server_pid = t.display("#{pid}").parse().ok();
        t.pane_pid = t.display("#{pane_pid}").parse().ok();
        assert_eq!(
            t.display("#{window_width}x#{window_height}"),
            format!("{WIDTH}x{HEIGHT}")
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let out = Command::new(require_tool("tmux", "tmux"))
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A tmux format (`#{...}`) evaluated for the pane.
    fn display(&self, format: &str) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "t", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The text on the screen now.
    pub(crate) fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys by tmux name (`Enter`, `Tab`, `F5`, `Down`, ...).
    pub(crate) fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Polls the screen until `ok` holds on two polls in a row that show
    /// the same screen (a capture can catch a frame half written); returns
    /// that screen, or fails with the last one after the timeout.
    pub(crate) fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        let mut last_ok: Option<String> = None;
        loop {
            let s = self.screen();
            if ok(&s) {
                if last_ok.as_deref() == Some(s.as_str()) {
                    return s;
                }
                last_ok = Some(s);
                std::thread::sleep(POLL);
                continue;
            }
            last_ok = None;
            if t0.elapsed() > TIMEOUT {
                panic!("timed out after {TIMEOUT:?} waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls until the screen shows `text`.
    pub(crate) fn wait_for(&self, text: &str) -> String {
        self.wait(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits for the main view of `pid` (its header line).
    fn wait_main_view(&self, pid: u32) -> String {
        let head = format!("{pid} (");
        self.wait(&format!("the main view of {pid}"), |s| {
            s.lines()
                .next()
                .is_some_and(|l| l.trim_start().starts_with(&head))
                && s.lines().any(|l| l.starts_with("Address"))
        })
    }

    /// The pid of the vmmap process in the pane.
    fn vmmap_pid(&self) -> u32 {
        let sh = self.pane_pid.expect("pane pid");
        descendants(sh)
            .into_iter()
            .find(|&p| comm(p).as_deref() == Some("vmmap"))
            .expect("vmmap runs in the pane")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // vmmap first, by SIGTERM while its terminal is still there: once
        // the pty is gone crossterm 0.28 spins reading EOF forever
        // (crossterm-rs/crossterm#793), and SIGHUP cannot stop it.
        let pane: Vec<u32> = self.pane_pid.map_or_else(Vec::new, |p| {
            std::iter::once(p).chain(descendants(p)).collect()
        });
        let vmmap: Vec<u32> = pane
            .iter()
            .copied()
            .filter(|&p| comm(p).as_deref() == Some("vmmap"))
            .collect();
        kill_quietly(&vmmap, "TERM");
        wait_gone(&vmmap, Duration::from_secs(2));
        let _ = Command::new(require_tool("tmux", "tmux"))
            .args(["-L", &self.socket, "kill-server"])
            .output();
        // Everything this test started is gone before the next test that
        // wants a quiet system runs.
        let all: Vec<u32> = pane.iter().copied().chain(self.server_pid).collect();
        if !wait_gone(&all, Duration::from_secs(2)) {
            kill_quietly(&all, "KILL");
            wait_gone(&all, Duration::from_secs(2));
        }
        if !self.socket_path.is_empty() {
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
}

/// Sends a signal to those of `pids` still alive; never fails (for Drop).
fn kill_quietly(pids: &[u32], sig: &str) {
    let alive: Vec<String> = pids
        .iter()
        .filter(|&&p| alive(p))
        .map(|p| p.to_string())
        .collect();
    if !alive.is_empty() {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .args(&alive)
            .output();
    }
}

/// Waits until none of `pids` is alive; says whether that happened.
fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if !pids.iter().any(|&p| alive(p)) {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stat_fields(pid: u32) -> Option<(String, char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

fn comm(pid: u32) -> Option<String> {
    stat_fields(pid).map(|f| f.0)
}

fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.1 != 'Z' && f.1 != 'X')
}

/// Every process below `pid`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some((_, _, ppid)) = stat_fields(p) {
                    all.push((p, ppid));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for &(c, pp) in &all {
            if pp == p && !out.contains(&c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// One row of the Details table as drawn: the fold mark (`+`, `-`, or
/// blank; sub-blocks are indented further), the address, the type, and
/// the whole line.
struct DetailsRow<'a> {
    mark: char,
    sub: bool,
    addr: u64,
    typ: String,
    line: &'a str,
}

/// The memory types as the tables name them.
const TYPES: [&str; 9] = [
    "Image",
    "Mapped File",
    "Shareable",
    "Heap",
    "Managed Heap",
    "Stack",
    "Private Data",
    "Page Table",
    "Free",
];

/// The Details rows on a main-view screen: the lines between the header
/// (`Address ...`) and the status line. The columns are found from the
/// header, so that a change of widths does not matter.
fn details_rows(screen: &str) -> Vec<DetailsRow<'_>> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(head) = lines.iter().position(|l| l.starts_with("Address")) else {
        return Vec::new();
    };
    let Some(type_col) = lines[head]
        .find("Type")
        .map(|b| lines[head][..b].chars().count())
    else {
        return Vec::new();
    };
    lines[head + 1..]
        .iter()
        .filter_map(|&line| {
            let first: String = line.chars().take(type_col).collect();
            let addr =
                u64::from_str_radix(first.trim_start_matches(['+', '-', ' ']).trim(), 16).ok()?;
            let rest: String = line.chars().skip(type_col).collect();
            let typ = TYPES
                .iter()
                .find(|t| {
                    rest.starts_with(*t) && !rest[t.len()..].starts_with(char::is_alphanumeric)
                })
                .map_or_else(|| rest.trim().to_string(), |t| t.to_string());
            Some(DetailsRow {
                mark: first.chars().next().unwrap_or(' '),
                sub: first.starts_with("    "),
                addr,
                typ,
                line,
            })
        })
        .collect()
}

/// The type names of the Summary rows, in order (Total excluded).
fn summary_types(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(head) = lines.iter().position(|l| l.starts_with("Type")) else {
        return Vec::new();
    };
    lines[head + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with("Total") && !l.trim().is_empty())
        // Each row: a colour key of two cells and a space, then the name.
        .map(|l| {
            l.chars()
                .skip(3)
                .take(13)
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

/// A short process name nothing else on the machine has.
fn unique_name(tag: &str) -> String {
    let name = format!("{tag}{}", std::process::id());
    assert!(name.len() <= 15, "{name} would be cut in comm");
    name
}

#[test]
fn picker_opens_a_process_typed_by_name() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let dir = TempDir::new("tui-picker");
    let name = unique_name("vmpick");
    let fx = Fixture::start_as(&name, dir.path());
    let t = Tmux::start(&[]);
    t.wait("the picker's process list", |s| {
        s.contains("select a process") && !s.contains("(0 of 0)")
    });
    t.type_text(&name);
    let pid = fx.pid.to_string();
    // All typed, and one row left: the fixture's.
    t.wait(&format!("{name} as the only row"), |s| {
        s.contains(&format!("Filter: {name}"))
            && s.contains("select a process (1 of ")
            && s.lines().any(|l| {
                let mut w = l.trim_matches(|c| c == '│' || c == ' ').split_whitespace();
                w.next() == Some(pid.as_str()) && l.contains(&name)
            })
    });
    t.keys(&["Enter"]);
    let s = t.wait_main_view(fx.pid);
    let head = s.lines().next().unwrap();
    assert!(
        head.trim_start()
            .starts_with(&format!("{} ({name})", fx.pid)),
        "{head}"
    );
}

#[test]
fn stack_type_shows_exactly_the_thread_stacks() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    let s = t.wait_main_view(fx.pid);
    let types = summary_types(&s);
    let downs = types
        .iter()
        .position(|n| n == "Stack")
        .unwrap_or_else(|| panic!("no Stack row in the Summary {types:?}:\n{s}"));
    t.keys(&["Tab", "Home"]);
    for _ in 0..downs {
        t.keys(&["Down"]);
    }
    let expected: Vec<String> = ["stk256", "stk512", "stk1024", "userstk", "spinner"]
        .iter()
        .map(|n| format!("Thread {} ({n})", fx.tid(n)))
        .chain(std::iter::once(format!(
            "Thread {} (fixture-target)",
            fx.pid
        )))
        .collect();
    let s = t.wait("the Details of the Stack type only", |s| {
        let rows = details_rows(s);
        rows.len() == expected.len() && rows.iter().all(|r| r.typ == "Stack")
    });
    let rows = details_rows(&s);
    for label in &expected {
        let n = rows
            .iter()
            .filter(|r| r.line.trim_end().ends_with(label.as_str()))
            .count();
        assert_eq!(n, 1, "{label:?} should be in one row:\n{s}");
    }
    assert!(rows.iter().all(|r| !r.sub), "groups stay folded:\n{s}");
}

#[test]
fn enter_expands_the_executable_into_its_segments() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    let s = t.wait_main_view(fx.pid);
    // The executable: the last image that starts at or below its .bss.
    let bss = fx.addr("bss");
    let exe_row = |s: &str| {
        details_rows(s)
            .into_iter()
            .filter(|r| r.typ == "Image" && !r.sub && r.addr <= bss)
            .max_by_key(|r| r.addr)
            .map(|r| (r.addr, r.mark))
    };
    let (exe, mark) = exe_row(&s).unwrap_or_else(|| panic!("no executable row:\n{s}"));
    assert_eq!(mark, '+', "the executable is a folded group:\n{s}");
    assert!(
        !s.contains(".bss (anonymous)"),
        "nothing expanded yet:\n{s}"
    );

    t.keys(&["/"]);
    t.wait_for("Find: ");
    t.type_text("/fixture-target");
    t.keys(&["Enter"]);
    t.wait_for("Found \"/fixture-target\"");
    t.keys(&["Enter"]);
    let s = t.wait("the executable's sub-blocks", |s| {
        exe_row(s).is_some_and(|r| r == (exe, '-'))
    });
    let rows = details_rows(&s);
    let at = rows.iter().position(|r| r.addr == exe && !r.sub).unwrap();
    let subs: Vec<&DetailsRow<'_>> = rows[at + 1..].iter().take_while(|r| r.sub).collect();
    assert!(subs.iter().all(|r| r.typ == "Image"), "{s}");
    assert_eq!(subs.first().map(|r| r.addr), Some(exe), "{s}");
    for label in ["code (r-x)", ".bss (anonymous)"] {
        assert!(
            subs.iter().any(|r| r.line.trim_end().ends_with(label)),
            "no {label:?} sub-block under the executable:\n{s}"
        );
    }
}

#[test]
fn f5_shows_a_region_mapped_since() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let mut fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    let s = t.wait_main_view(fx.pid);
    let has = |s: &str, addr: u64| details_rows(s).iter().any(|r| r.addr == addr);
    let slot8 = fx.addr("ustack");
    let slot9 = 0x3000_9000_0000;
    assert!(has(&s, slot8), "its neighbour is on the screen:\n{s}");
    assert!(!has(&s, slot9), "not mapped yet:\n{s}");

    signal(fx.pid, libc_sig::SIGUSR1);
    let line = fx.next_line(TIMEOUT);
    assert_eq!(line.trim(), "MAPPED slot9=0x300090000000");
    t.keys(&["F5"]);
    let s = t.wait("the new region after F5", |s| {
        has(s, slot9) && s.contains("Snapshot 2 of the history")
    });
    let rows = details_rows(&s);
    let r = rows.iter().find(|r| r.addr == slot9).unwrap();
    assert_eq!(r.typ, "Private Data", "{s}");
    assert!(r.line.contains(" 512K "), "512K mapped: {}", r.line);
}

/// The terminal state vmmap must leave behind: the normal screen, no
/// mouse reporting, a visible cursor, and a cooked tty.
fn assert_restored(t: &Tmux, how: &str) {
    let s = t.wait(&format!("the shell after {how}"), |s| s.contains("EXITED-"));
    assert!(
        s.contains("TTY-cooked"),
        "the tty is still raw after {how}:\n{s}"
    );
    assert_eq!(t.display("#{alternate_on}"), "0", "alternate screen");
    assert_eq!(t.display("#{mouse_any_flag}"), "0", "mouse reporting");
    assert_eq!(t.display("#{cursor_flag}"), "1", "cursor shown");
}

#[test]
fn q_quits_and_restores_the_terminal() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    assert_eq!(
        t.display("#{alternate_on}"),
        "1",
        "vmmap draws on the alternate screen"
    );
    t.keys(&["q"]);
    assert_restored(&t, "q");
    assert!(t.screen().contains("EXITED-0 "), "{}", t.screen());
}

#[test]
fn sigterm_restores_the_terminal() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    assert_eq!(t.display("#{alternate_on}"), "1");
    signal(t.vmmap_pid(), libc_sig::SIGTERM);
    assert_restored(&t, "SIGTERM");
}

/// F5 keeps a history: after the fixture changes known regions, `d` shows
/// exactly those changes, `[` steps back, and Ctrl+S saves both snapshots
/// to a file that `vmmap timeline` reads.
#[test]
fn history_diff_and_save() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let mut fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    signal(fx.pid, libc_sig::SIGUSR2);
    assert_eq!(fx.next_line(TIMEOUT).trim(), "CHANGED");
    t.keys(&["F5"]);
    t.wait_for("Snapshot 2 of the history");
    t.keys(&["d"]);
    let s = t.wait_for("Changes from snapshot 1 to 2");
    for (mark, addr) in [
        ("-", "300010000000"),
        ("~", "300030000000"),
        ("<", "300060000000"),
        (">", "300070000000"),
    ] {
        assert!(
            s.lines().any(|l| l.contains(&format!("{mark} {addr}-"))),
            "{mark} {addr} missing:\n{s}"
        );
    }
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(100));
    t.keys(&["["]);
    t.wait_for("Snapshot 1 of 2");
    t.keys(&["C-s"]);
    let s = t.wait_for("Saved 2 snapshot(s) to ");
    let line = s
        .lines()
        .find(|l| l.contains("Saved 2 snapshot(s) to "))
        .unwrap();
    let path = line
        .split(" to ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .trim();
    let csv = vmmap_ok(&["timeline", path, "--csv"]);
    assert_eq!(csv.lines().count(), 3, "header and two snapshots:\n{csv}");
}

/// `t` on a recording opened with `-i`, without colour: the timeline
/// places its four snapshots by their times (0, 1, 2 and 20 s), so the
/// 18 s pause is a gap; it has a time axis in seconds, a key that says
/// what a cell is worth, the cursor on the selected snapshot and its
/// figures, and bars drawn in each type's character.
#[test]
fn timeline_of_a_recording_places_snapshots_by_time() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let home = TempDir::new("tui-timeline");
    let one = home.path().join("one.vmmap");
    vmmap_ok(&[&fx.pid.to_string(), "-o", one.to_str().unwrap()]);
    drop(fx);
    let snap = vmmap_core::format::load_file(&one)
        .unwrap()
        .snapshots
        .remove(0);
    let rec = home.path().join("rec.vmmap");
    let mut w = vmmap_core::format::Writer::new(std::fs::File::create(&rec).unwrap()).unwrap();
    for secs in [0, 1, 2, 20] {
        let mut s = snap.clone();
        s.taken_at_unix_ns += secs * 1_000_000_000;
        w.append(&s).unwrap();
    }
    w.finish().unwrap();
    let no_colour = std::ffi::OsStr::new("1");
    let t = Tmux::start_env(
        &["open", rec.to_str().unwrap(), "-i"],
        &[("NO_COLOR", no_colour)],
    );
    t.wait_for("Address");
    t.keys(&["t"]);
    let s = t.wait_for("1 cell = ");
    let lines: Vec<Vec<char>> = s.lines().map(|l| l.chars().collect()).collect();
    let title = lines
        .iter()
        .position(|l| {
            l.iter()
                .collect::<String>()
                .contains("Working set over 4 snapshot(s)")
        })
        .unwrap_or_else(|| panic!("no timeline:\n{s}"));
    let axis = lines
        .iter()
        .position(|l| l.contains(&'└') && l.contains(&'▲'))
        .unwrap_or_else(|| panic!("no time axis with a cursor:\n{s}"));
    let left = lines[axis].iter().position(|&c| c == '└').unwrap() + 1;
    let right = lines[axis].iter().rposition(|&c| c == '│').unwrap() - 1;
    // The columns holding a bar: a type's character on the row above the
    // axis.
    let glyphs = "█▓▒░#=+:";
    let bars: Vec<usize> = (left..=right)
        .filter(|&x| glyphs.contains(lines[axis - 1][x]))
        .collect();
    assert_eq!(bars.first(), Some(&left), "the first at the left:\n{s}");
    assert_eq!(bars.last(), Some(&right), "the last at the right:\n{s}");
    let gap = bars.windows(2).map(|p| p[1] - p[0]).max().unwrap();
    let room = right - left;
    assert!(
        gap * 100 > room * 80 && gap * 100 < room * 95,
        "the 18 s of 20 s pause spans {gap} of {room} columns:\n{s}"
    );
    assert!(title + 2 < axis, "{s}");
    let labels: String = lines[axis + 1].iter().collect();
    assert!(
        labels
            .trim_matches(|c| c == '│' || c == ' ')
            .starts_with("0 ")
            && labels.contains("+10s"),
        "time axis {labels:?}:\n{s}"
    );
    assert!(
        s.contains("snapshot "),
        "the selected snapshot's figures:\n{s}"
    );
}

#[test]
fn goto_address_then_strings_of_the_region() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    let file = fx.addr("file_utf16");
    t.keys(&["g"]);
    t.wait_for("Go to address: ");
    t.type_text(&format!("{file:x}"));
    t.keys(&["Enter"]);
    t.wait_for(&format!(
        "{file:#x}: Mapped File 0x310000000000-0x310000002000 +0x10c8 r--p"
    ));
    t.keys(&["C-t"]);
    let s = t.wait_for("Strings in Mapped File 0x310000000000-0x310000002000");
    let line = |addr: u64, enc: &str, text: &str| format!("{addr:#014x}  {enc:<12}  {text}");
    assert!(
        s.contains(&line(
            fx.addr("file_ascii"),
            "ascii",
            "VMMAP-FILE-ASCII-d00d"
        )),
        "{s}"
    );
    assert!(
        s.contains(&line(file, "utf16le", "VMMAP-FILE-UTF16-d00d")),
        "{s}"
    );
    t.keys(&["/"]);
    t.wait_for("Filter: ");
    t.type_text("utf16-d00d");
    t.keys(&["Enter"]);
    let s = t.wait_for("— 1 of 2 shown");
    assert!(!s.contains("VMMAP-FILE-ASCII"), "{s}");
    // Enter goes to the string's address in the Details.
    t.keys(&["Enter"]);
    t.wait_for(&format!("{file:#x}: Mapped File 0x310000000000-"));

    // F searches the whole memory; a regex across a page boundary.
    t.keys(&["F"]);
    t.wait_for("Search memory for: ");
    t.type_text("re:VMMAP-SPAN-[0-9]+-END");
    t.keys(&["Enter"]);
    let s = t.wait_for("Matches of \"re:VMMAP-SPAN-[0-9]+-END\" in memory — 1 of 1 shown");
    assert!(
        s.contains(&line(
            fx.addr("span"),
            "Private Data",
            "VMMAP-SPAN-0123456789-END"
        )),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for(&format!(
        "{:#x}: Private Data 0x310010000000-",
        fx.addr("span")
    ));
}

/// The view's memory search and Strings read only what is resident: the
/// fixture's untouched mappings stay untouched, to the page.
#[test]
fn search_and_strings_in_the_view_never_change_the_target() {
    use crate::memory::{assert_memory_unchanged, memory_use, skipped_figure};
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start_static("untouched");
    fx.stop();
    let before = memory_use(fx.pid);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    t.keys(&["F"]);
    t.wait_for("Search memory for: ");
    t.type_text("VMMAP-RESIDENT-MARKER");
    t.keys(&["Enter"]);
    let s = t.wait_for("Matches of \"VMMAP-RESIDENT-MARKER\" in memory");
    let line = |addr: u64, tag: &str, text: &str| format!("{addr:#014x}  {tag:<12}  {text}");
    assert!(
        s.contains(&line(
            fx.addr("marker"),
            "Private Data",
            "VMMAP-RESIDENT-MARKER"
        )),
        "{s}"
    );
    assert!(skipped_figure(&s) >= (64 + 16 + 16) << 20, "{s}");
    t.keys(&["Escape"]);
    t.wait_main_view(fx.pid);
    // The strings of the untouched memfd mapping: none, and it says why.
    let memfd = fx.addr("memfd");
    t.keys(&["g"]);
    t.wait_for("Go to address: ");
    t.type_text(&format!("{memfd:x}"));
    t.keys(&["Enter"]);
    t.wait_for(&format!("{memfd:#x}: "));
    t.keys(&["C-t"]);
    let s = t.wait_for(&format!("Strings in Shareable {memfd:#x}-"));
    assert!(!s.contains("VMMAP-MEMFD-UNTOUCHED"), "{s}");
    assert_eq!(skipped_figure(&s), 16 << 20, "{s}");
    t.keys(&["Escape"]);
    drop(t);
    assert_memory_unchanged(
        &before,
        &memory_use(fx.pid),
        "the view's search and Strings",
    );
}

#[test]
fn w_empties_the_working_set_after_asking() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start_named("memtext");
    let pid = fx.pid.to_string();
    let file = fx.addr("file_ascii") - 100;
    let rss = || {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
        let head = format!("{file:x}-");
        let block: Vec<&str> = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&head))
            .take_while(|l| !l.starts_with("VmFlags"))
            .collect();
        kb_field(&block.join("\n"), "Rss")
    };
    assert_eq!(rss(), 8192);
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    t.keys(&["W"]);
    t.wait_for(&format!("Empty the working set of {pid}"));
    t.keys(&["n"]);
    t.wait_for("Working set left alone");
    assert_eq!(rss(), 8192, "n leaves it alone");
    t.keys(&["W"]);
    t.wait_for(&format!("Empty the working set of {pid}"));
    t.keys(&["y"]);
    let s = t.wait_for("After Empty Working Set: working set ");
    assert_eq!(rss(), 0, "the data file's clean pages were paged out");
    // The Mapped File row (the 8K data file, and the 12K mapping of the
    // short file, never touched) has no working set left.
    let row = s
        .lines()
        .find(|l| l.contains("Mapped File "))
        .unwrap_or_else(|| panic!("no Mapped File row:\n{s}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3..], ["20K", "20K", "2", "12K"], "{row}");
}

/// The pid of the first process below vmmap named `name`, waiting for it.
fn child_named(t: &Tmux, name: &str) -> u32 {
    let vm = t.vmmap_pid();
    let t0 = Instant::now();
    loop {
        if let Some(p) = descendants(vm)
            .into_iter()
            .find(|&p| comm(p).as_deref() == Some(name))
        {
            return p;
        }
        assert!(t0.elapsed() < TIMEOUT, "no {name} started below vmmap");
        std::thread::sleep(POLL);
    }
}

/// Types a program and its arguments in the picker's Launch tab and
/// presses Enter.
fn launch_from_picker(t: &Tmux, program: &str, args: &str) {
    launch_from_picker_into(t, program, args, None);
}

/// [`launch_from_picker`], with the trace file `output` when given.
fn launch_from_picker_into(t: &Tmux, program: &str, args: &str, output: Option<&str>) {
    t.wait("the picker's process list", |s| {
        s.contains("select a process") && !s.contains("(0 of 0)")
    });
    t.keys(&["F2"]);
    t.wait_for("Launch and trace a new process");
    t.type_text(program);
    t.keys(&["Tab"]);
    t.type_text(args);
    let typed = format!(" {args}▏");
    t.wait("the arguments typed", |s| {
        s.lines()
            .any(|l| l.contains("Arguments") && l.contains(&typed))
    });
    if let Some(output) = output {
        t.keys(&["Tab", "Tab"]);
        t.type_text(output);
        let typed = format!(" {output}▏");
        t.wait("the output file typed", |s| {
            s.lines()
                .any(|l| l.contains("Output file") && l.contains(&typed))
        });
    }
    t.keys(&["Enter"]);
}

/// A launched program that puts a FIFO under its trace's name: T still
/// analyses the recording, which the view reads through the descriptor
/// the UI holds. By the name, the analysis waited on the FIFO for ever
/// (and a device there would have been opened).
#[test]
fn the_trace_view_reads_a_launched_recording_whatever_its_name_became() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let agent = crate::trace::agent();
    let dir = TempDir::new("launch-fifo");
    let out = dir.path().join("t.vmmap");
    let script = dir.path().join("swap.sh");
    let q = format!("'{}'", out.display());
    std::fs::write(&script, format!("rm {q}; mkfifo {q}; sleep 0.5\n")).unwrap();
    let t = Tmux::start_env(&[], &[("VMMAP_AGENT", agent.as_os_str())]);
    launch_from_picker_into(
        &t,
        "/bin/sh",
        script.to_str().unwrap(),
        Some(out.to_str().unwrap()),
    );
    t.wait_for("exited with status 0");
    t.keys(&["T"]);
    let s = t.wait_for(" operations: ");
    assert!(s.contains("Trace t.vmmap"), "{s}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&out).unwrap().file_type().is_fifo());
}

/// The Launch tab starts a program under the agent, shows its live view,
/// and when it exits says where the trace is; the file holds its
/// operations and the program was reaped.
#[test]
fn launch_tab_traces_a_new_process() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let agent = crate::trace::agent();
    let t = Tmux::start_env(&[], &[("VMMAP_AGENT", agent.as_os_str())]);
    launch_from_picker(&t, "/bin/sleep", "3");
    let pid = child_named(&t, "sleep");
    let s = t.wait_main_view(pid);
    assert!(
        s.contains(&format!("Tracing /bin/sleep (pid {pid}) into ")),
        "{s}"
    );
    let s = t.wait_for(&format!(
        "traced /bin/sleep (pid {pid}) exited with status 0; trace written to "
    ));
    let line = s.lines().find(|l| l.contains("trace written to ")).unwrap();
    let file = line
        .split("trace written to ")
        .nth(1)
        .and_then(|r| r.split(" (").next())
        .unwrap()
        .trim()
        .to_string();
    assert!(std::path::Path::new(&file).is_file(), "{file} missing");
    assert!(stat_fields(pid).is_none(), "{pid} was not reaped");
    // T analyses the session's file: its thread started, and it is named.
    t.keys(&["T"]);
    let name = std::path::Path::new(&file)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let s = t.wait_for(" operations: ");
    assert!(s.contains(&format!("Trace {name}")), "{s}");
    t.keys(&["3"]);
    t.wait_for("thread-start");
    let out = vmmap_ok(&["trace", &file, "summary", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ops: u64 = v["calls"]
        .as_object()
        .expect("calls")
        .values()
        .filter_map(|n| n.as_u64())
        .sum();
    assert!(ops > 0, "no operations recorded:\n{out}");
    assert_eq!(v["images"][0]["pid"], pid, "{out}");
    assert_eq!(v["images"][0]["ended"], true, "{out}");
    let text = vmmap_ok(&["trace", &file]);
    assert!(text.contains("operations recorded"), "{text}");
    // At least one snapshot of its memory went to the file too.
    let tl = vmmap_ok(&["timeline", &file, "--csv"]);
    assert!(tl.lines().count() >= 2, "no snapshot in {file}:\n{tl}");
}

/// A program launched from the picker inherits what vmmap was started
/// with, as `vmmap run`'s does: here SIGPIPE ignored, which std's spawn
/// had set back to its default action.
#[test]
fn a_launched_program_keeps_sigpipe_ignored() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let agent = crate::trace::agent();
    let dir = TempDir::new("launch-sigpipe");
    let out = dir.path().join("sigign");
    let script = dir.path().join("sigign.sh");
    std::fs::write(
        &script,
        format!("grep SigIgn /proc/$$/status > {}\n", out.display()),
    )
    .unwrap();
    let t = Tmux::launch(&[], &[("VMMAP_AGENT", agent.as_os_str())], "trap '' PIPE; ");
    launch_from_picker(&t, "/bin/sh", script.to_str().unwrap());
    t.wait_for("exited with status 0; trace written to ");
    let line = std::fs::read_to_string(&out).unwrap();
    let mask = line
        .trim()
        .strip_prefix("SigIgn:")
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert_ne!(mask & 1 << (libc::SIGPIPE - 1), 0, "{line}");
}

/// Quitting vmmap while a traced program runs leaves it running and says
/// so; the file is finished and loads.
#[test]
fn quitting_leaves_a_traced_program_running() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let agent = crate::trace::agent();
    let t = Tmux::start_env(&[], &[("VMMAP_AGENT", agent.as_os_str())]);
    launch_from_picker(&t, "sleep", "30");
    let pid = child_named(&t, "sleep");
    t.wait_main_view(pid);
    t.keys(&["q"]);
    let s = t.wait("vmmap to exit", |s| s.contains("EXITED-"));
    let running = alive(pid);
    kill_quietly(&[pid], "KILL");
    assert!(s.contains("EXITED-0"), "{s}");
    // The message wraps at the pane's width.
    let line = s.replace('\n', "");
    assert!(
        line.contains(&format!("traced sleep (pid {pid}) is still running")),
        "{s}"
    );
    assert!(running, "the traced program was stopped with vmmap");
    let file = line
        .split("`vmmap trace ")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .expect("the file is named")
        .trim()
        .to_string();
    let out = vmmap_ok(&["trace", &file, "summary", "--json"]);
    assert!(out.contains("\"calls\""), "{out}");
}

#[test]
fn shared_with_key_lists_the_child_and_picker_combines_marked_processes() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start_named("sharing");
    let child = &fx.info["child"];
    let file = fx.addr("file");
    let root = std::fs::File::open("/proc/kpagecount").is_ok();

    // H on the data file's region: the forked child maps 24 of its pages.
    let t = Tmux::start(&["-i", &fx.pid.to_string()]);
    t.wait_main_view(fx.pid);
    t.keys(&["g"]);
    t.wait_for("Go to address: ");
    t.type_text(&format!("{file:x}"));
    t.keys(&["Enter"]);
    t.wait_for(&format!("{file:#x}: Mapped File"));
    t.keys(&["H"]);
    if root {
        let s = t.wait_for("Processes mapping the same pages");
        let line = s
            .lines()
            .find(|l| l.contains(&format!(" {child} ")))
            .unwrap_or_else(|| panic!("no line for the child {child}:\n{s}"));
        assert!(
            line.contains("24 page(s)") && line.contains("shared.dat"),
            "{line}"
        );
        // Esc closes the overlay (wait for it: tmux would read Esc and the
        // next key sent at once as Alt+key).
        t.keys(&["Escape"]);
        t.wait("the overlay to close", |s| {
            !s.contains("Processes mapping the same pages")
        });
    } else {
        t.wait_for("permission denied");
    }

    // Ctrl+P back to the picker; filter to the fixture, mark parent and
    // child with Insert, Enter combines them.
    t.keys(&["C-p"]);
    t.wait_for("select a process");
    t.type_text(&own_filter(fx.pid));
    t.wait_for("select a process (2 of");
    t.keys(&["IC", "Down", "IC"]);
    t.wait_for("Enter:combine the 2 marked");
    t.keys(&["Enter"]);
    // The combined view: the bars of the sum, the Summary by type, a row
    // per process.
    let s = t.wait_for("Combined: 2 processes");
    assert!(s.contains("shared pages counted once"), "{s}");
    assert!(s.lines().any(|l| l.starts_with("Committed ")), "{s}");
    assert!(s.lines().any(|l| l.contains("Mapped File")), "{s}");
    let pids = [fx.pid.to_string(), child.to_string()];
    for p in &pids {
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with(&format!("{p} "))),
            "a row for {p}:\n{s}"
        );
    }
    // Enter opens the selected process's main view; Esc comes back.
    t.keys(&["Enter"]);
    t.wait("the main view of one of them", |s| {
        let head = s.lines().next().unwrap_or("").trim_start();
        pids.iter().any(|p| head.starts_with(&format!("{p} (")))
            && s.lines().any(|l| l.starts_with("Address"))
    });
    t.keys(&["Escape"]);
    t.wait_for("Combined: 2 processes");
}

/// A traced run's snapshot: once its owners are known, the Summary's
/// Total is the program's alone, as `vmmap open` gives it, and the
/// agent's regions are on a `vmmap agent` line under it.
#[test]
fn a_traced_snapshot_shows_the_agent_apart_from_the_program() {
    require_tool("tmux", "tmux");
    let src = crate::trace::fixture("brief.c");
    let prog = crate::trace::build(
        "brief",
        &[
            "cc",
            "-O1",
            "-g",
            "-Wall",
            "-pthread",
            src.to_str().unwrap(),
        ],
    );
    let (o, file) = crate::trace::run_traced(&[], &prog, &["exit", "0"]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8(crate::trace::on_file("open", &file, &["--summary"])).unwrap();
    let first_figure = |l: &str| {
        l.split_whitespace()
            .nth(
                l.split_whitespace()
                    .position(|w| w == "Total" || w == "agent")
                    .unwrap()
                    + 1,
            )
            .map(str::to_string)
    };
    let want_total = first_figure(text.lines().find(|l| l.starts_with("Total ")).unwrap());
    let want_agent = first_figure(
        text.lines()
            .find(|l| l.starts_with("vmmap agent "))
            .unwrap(),
    );
    let _busy = starting_processes();
    let t = Tmux::start(&["open", file.to_str().unwrap(), "-i"]);
    // The Owner column says "vmmap agent" too: the Summary's line.
    let s = t.wait("the vmmap agent line", |s| {
        s.lines().any(|l| l.trim_start().starts_with("vmmap agent"))
    });
    let lines: Vec<&str> = s.lines().collect();
    let agent = lines
        .iter()
        .position(|l| l.trim_start().starts_with("vmmap agent"))
        .unwrap();
    let total = lines[agent - 1];
    assert!(total.trim_start().starts_with("Total"), "{s}");
    assert_eq!(first_figure(total), want_total, "{s}\n{text}");
    assert_eq!(first_figure(lines[agent]), want_agent, "{s}\n{text}");
}

/// The timeline (`t`) of a traced run's file shows the program's working
/// set without the agent's, as the Summary's Total gives it.
#[test]
fn the_timeline_of_a_traced_run_leaves_the_agent_out() {
    require_tool("tmux", "tmux");
    let src = crate::trace::fixture("brief.c");
    let prog = crate::trace::build(
        "brief",
        &[
            "cc",
            "-O1",
            "-g",
            "-Wall",
            "-pthread",
            src.to_str().unwrap(),
        ],
    );
    let (o, file) = crate::trace::run_traced(&[], &prog, &["exit", "0"]);
    assert!(o.status.success(), "{o:?}");
    let snap: serde_json::Value =
        serde_json::from_slice(&crate::trace::on_file("open", &file, &["--json"])).unwrap();
    let total = |s: &serde_json::Value, t: &str| {
        s["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == t)
            .unwrap()["total_ws"]
            .as_u64()
            .unwrap()
    };
    let want = total(&snap, "total");
    assert!(snap["agent"]["total_ws"].as_u64().unwrap() > 0, "{snap}");
    let _busy = starting_processes();
    let t = Tmux::start(&["open", file.to_str().unwrap(), "-i"]);
    t.wait_for("Total");
    // Units in bytes (human, KiB, bytes), then the timeline; the last
    // snapshot is selected.
    t.keys(&["u", "u", "t"]);
    let s = t.wait_for("working set ");
    let label = s
        .lines()
        .find_map(|l| l.split("working set ").nth(1))
        .unwrap();
    let shown: u64 = label
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("{label:?}: {e}\n{s}"));
    assert_eq!(shown, want, "{s}");
}

/// `T` on a file written by `vmmap run` opens the Trace view: the call
/// tree (analysed in the background) shows the fixture's functions with
/// their exact calls, the Leaks and History tabs theirs; Esc goes back.
#[test]
fn t_shows_the_call_tree_of_a_traced_run() {
    require_tool("tmux", "tmux");
    let src = crate::trace::fixture("calls.c");
    let linger = crate::trace::fixture("linger.c");
    let prog = crate::trace::build(
        "calls-linger",
        &[
            "cc",
            "-O0",
            "-g",
            src.to_str().unwrap(),
            linger.to_str().unwrap(),
        ],
    );
    let (o, file) = crate::trace::run_traced(&["-i", "100ms"], &prog, &[]);
    assert!(o.status.success(), "{o:?}");
    let _busy = starting_processes();
    let t = Tmux::start(&["open", file.to_str().unwrap(), "-i"]);
    t.wait("the main view", |s| {
        s.lines().any(|l| l.starts_with("Address"))
    });
    t.keys(&["T"]);
    // The heaviest path is open: main -> churn -> make_big (10 calls of
    // 3,000 bytes), and main's own make_big (one of 5,000).
    let s = t.wait_for("make_big");
    assert!(s.contains("1 Call tree"), "{s}");
    assert!(s.contains("in 14 calls"), "{s}");
    let churn = s
        .lines()
        .find(|l| l.contains("churn"))
        .unwrap_or_else(|| panic!("no churn:\n{s}"));
    assert_eq!(churn.split_whitespace().nth(1), Some("10"), "{s}");
    t.keys(&["2"]);
    let s = t.wait_for("never freed, from 3 call stacks");
    assert!(s.contains("make_small"), "{s}");
    t.keys(&["3"]);
    let s = t.wait_for("operations, in time order");
    assert_eq!(
        s.lines()
            .filter(|l| l.split_whitespace().nth(2) == Some("calloc"))
            .count(),
        11,
        "{s}"
    );
    // The block main keeps (calloc of 5,000 bytes): its address leads to
    // the heap region, whose allocations are all 14 blocks.
    let kept = s
        .lines()
        .rfind(|l| l.split_whitespace().nth(2) == Some("calloc"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or_else(|| panic!("no calloc address:\n{s}"))
        .to_string();
    t.keys(&["Escape"]);
    t.wait("the main view again", |s| {
        !s.contains("Call tree") && s.lines().any(|l| l.starts_with("Address"))
    });
    t.keys(&["g"]);
    t.wait_for("Go to address:");
    t.type_text(kept.trim_start_matches("0x"));
    t.keys(&["Enter"]);
    t.wait_for(&format!("{kept}: Heap "));
    t.keys(&["T"]);
    let s = t.wait_for("14 blocks allocated inside it");
    assert!(s.contains("4 Allocations of the region"), "{s}");
    assert!(s.contains("3 still live"), "{s}");
}

/// A small tmpfs mounted for one test, unmounted on drop.
/// `w` (save as) writes like every `-o`: a device in place, a full one
/// reported, a replaced file keeping its owner and mode, and a save that
/// fails for lack of space leaving the old file whole.
#[test]
fn save_as_writes_devices_in_place_and_keeps_owner_and_mode() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    let home = t._home.path().to_path_buf();
    for (name, minor) in [("null.txt", "3"), ("full.txt", "7")] {
        let st = Command::new("mknod")
            .arg(home.join(name))
            .args(["c", "1", minor])
            .status()
            .expect("run mknod");
        assert!(st.success());
    }
    let theirs = home.join("theirs.json");
    std::fs::write(&theirs, "old\n").unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
    let save = |name: &str| {
        t.keys(&["w"]);
        t.wait_for("Save as: vmmap-");
        t.keys(&["BSpace"; 40]);
        t.type_text(name);
        t.keys(&["Enter"]);
    };
    save("null.txt");
    t.wait_for("Saved to null.txt");
    save("full.txt");
    t.wait_for("Cannot save full.txt: No space left on device");
    for (name, minor) in [("null.txt", 3), ("full.txt", 7)] {
        let m = std::fs::symlink_metadata(home.join(name)).unwrap();
        assert!(
            m.file_type().is_char_device() && m.rdev() == libc::makedev(1, minor),
            "{name} was replaced"
        );
    }
    save("theirs.json");
    t.wait_for("Saved to theirs.json");
    let m = std::fs::metadata(&theirs).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    assert!(std::fs::read_to_string(&theirs)
        .unwrap()
        .contains("\"schema\""));

    // A file system too small for the snapshot: the save fails and the
    // old file is still there, whole.
    let small = crate::util::SmallFs::mount(home.join("small"), "16k");
    let kept = small.0.join("kept.json");
    std::fs::write(&kept, "old\n").unwrap();
    save("small/kept.json");
    t.wait_for("Cannot save small/kept.json: No space left on device");
    assert!(
        std::fs::read(&kept).unwrap() == b"old\n",
        "the old file was overwritten by half a snapshot"
    );
    let names: Vec<_> = std::fs::read_dir(&small.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["kept.json"], "a temporary was left behind");
}

/// Sorting by Size from the bottom of the Details: the view goes back to
/// the top, where the largest region now is (the one `vmmap PID --sort
/// size` prints first), and the row count says so.
#[test]
fn sorting_shows_the_largest_row_at_the_top() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let text = vmmap_ok(&[&pid, "--sort", "size"]);
    let largest = text
        .lines()
        .skip_while(|l| !l.starts_with("Address"))
        .nth(1)
        .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
        .expect("a first Details row");
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    // An 80x24 terminal, where the Details show a few rows of many.
    t.tmux(&["resize-window", "-t", "t", "-x", "80", "-y", "24"]);
    t.wait_for("rows 1-");
    t.keys(&["End"]);
    t.wait("the Details scrolled to their end", |s| {
        details_rows(s).first().is_some_and(|r| r.addr != largest) && !s.contains("rows 1-")
    });
    // s steps through the sort keys: Address, Type, then Size.
    for _ in 0..2 {
        t.keys(&["s"]);
    }
    let s = t.wait("sorted by Size", |s| s.contains("\u{25bc}Size"));
    let rows = details_rows(&s);
    assert_eq!(
        rows.first().map(|r| r.addr),
        Some(largest),
        "the largest region {largest:x} is the first row:\n{s}"
    );
    assert!(s.contains("rows 1-"), "the row count shows the top:\n{s}");
}

/// The picker's filter takes spaces (a name, then its command line's
/// argument) and Ctrl+U empties it.
#[test]
fn picker_filter_with_a_space_then_ctrl_u() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let dir = TempDir::new("tui-space");
    let name = unique_name("vmspace");
    let fx = Fixture::start_as(&name, dir.path());
    let t = Tmux::start(&[]);
    t.wait("the picker's process list", |s| {
        s.contains("select a process") && !s.contains("(0 of 0)")
    });
    // The fixture runs as `DIR/NAME TMPDIR`: a space then a slash.
    let filter = format!("{name} /");
    t.type_text(&filter);
    let pid = fx.pid.to_string();
    let s = t.wait(&format!("the filter {filter:?} with one row"), |s| {
        s.contains(&format!("Filter: {filter}")) && s.contains("select a process (1 of ")
    });
    assert!(
        s.lines().any(|l| l.contains(&pid) && l.contains(&name)),
        "{s}"
    );
    t.keys(&["C-u"]);
    t.wait("the filter cleared, every process listed again", |s| {
        s.contains("Filter: \u{258f}") && !s.contains("select a process (1 of ")
    });
}

/// A saved file opened with `-i` says so in the header: its name, which
/// snapshot, when it was taken; not a collection time, as if it were live.
#[test]
fn a_saved_file_opened_with_i_shows_its_name_and_time() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let dir = TempDir::new("tui-file");
    let file = dir.path().join("saved-for-the-header.vmmap");
    vmmap_ok(&[&fx.pid.to_string(), "-o", file.to_str().unwrap()]);
    let t = Tmux::start(&["open", "-i", file.to_str().unwrap()]);
    let s = t.wait_main_view(fx.pid);
    let head = s.lines().next().unwrap();
    assert!(
        head.contains("saved-for-the-header.vmmap (snapshot 1 of 1), taken 20"),
        "{head}"
    );
    assert!(!head.contains(" ms "), "no collection time: {head}");
}

/// Without colour (`NO_COLOR`, `--color never`) the bars and the
/// Summary's key fill each type with its own character; with colour, a
/// terminal that does not say it takes 24-bit colour (no `COLORTERM`)
/// gets none: tmux shows what vmmap sent. (tmux sets the pane's TERM
/// itself, so `TERM=dumb` is left to the unit test of the detection.)
#[test]
fn colour_follows_the_terminal_and_degrades_to_characters() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let no_color = std::ffi::OsStr::new("1");
    for (args, env) in [
        (vec!["-i", pid.as_str()], vec![("NO_COLOR", no_color)]),
        (vec!["--color", "never", "-i", pid.as_str()], vec![]),
    ] {
        let t = Tmux::start_env(&args, &env);
        let s = t.wait_main_view(fx.pid);
        for key in ["\u{2591}\u{2591} Heap", "== Stack", "++ Private Data"] {
            assert!(s.contains(key), "{args:?} {env:?}: the key {key:?}:\n{s}");
        }
        let bar = s.lines().find(|l| l.starts_with("Committed")).unwrap();
        assert!(
            bar.contains("++++"),
            "the bar is drawn in characters: {bar}"
        );
        let coloured = t.tmux(&["capture-pane", "-p", "-e", "-t", "t"]);
        let coloured = String::from_utf8_lossy(&coloured.stdout);
        assert!(!coloured.contains("38;2;"), "no 24-bit colour:\n{coloured}");
    }
    // Colour on, COLORTERM unset: 256 or 16 colours, never 24-bit.
    let t = Tmux::start_env(&["-i", &pid], &[("COLORTERM", std::ffi::OsStr::new(""))]);
    t.wait_main_view(fx.pid);
    let out = t.tmux(&["capture-pane", "-p", "-e", "-t", "t"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("\u{1b}["), "colours are drawn:\n{s}");
    assert!(
        !s.contains("38;2;") && !s.contains("48;2;"),
        "not 24-bit:\n{s}"
    );
}

/// What the picker can filter by to list a fixture and its children alone:
/// the name of its directory, on their command line and on no other
/// test's (the tests run at the same time).
fn own_filter(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let dir = cmdline
        .split(|&b| b == 0)
        .nth(1)
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .expect("the fixture's directory argument");
    std::path::Path::new(&dir)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The SGR parameters of `screen` (a `capture-pane -e`) that set a
/// colour: foreground or background, 16, 256 or 24-bit. Resets to the
/// default colour (39, 49) and attributes (bold, reverse...) are not.
fn colour_codes(screen: &str) -> Vec<String> {
    let mut found = Vec::new();
    for seq in screen.split("\u{1b}[").skip(1) {
        let Some(end) = seq.find(|c: char| c.is_ascii_alphabetic()) else {
            continue;
        };
        if !seq[end..].starts_with('m') {
            continue;
        }
        let params: Vec<u32> = seq[..end]
            .split(';')
            .filter_map(|p| p.parse().ok())
            .collect();
        if params
            .iter()
            .any(|&p| matches!(p, 30..=38 | 40..=48 | 90..=97 | 100..=107))
        {
            found.push(seq[..end].to_string());
        }
    }
    found
}

/// The bar graphs and the Summary's key of a screen without colour: each
/// bar holds two types or more, each in its own character, and each type
/// of the key has its own.
fn assert_bars_in_characters(what: &str, s: &str) {
    let glyphs = "\u{2588}\u{2593}\u{2592}\u{2591}#=+:";
    let bar = s
        .lines()
        .find(|l| l.starts_with("Committed "))
        .unwrap_or_else(|| panic!("{what}: no Committed bar:\n{s}"));
    let kinds: std::collections::BTreeSet<char> =
        bar.chars().filter(|c| glyphs.contains(*c)).collect();
    assert!(kinds.len() >= 2, "{what}: the bar in characters: {bar}");
    let mut keys = std::collections::BTreeMap::new();
    for name in ["Image", "Heap", "Stack", "Private Data", "Mapped File"] {
        let line = s.lines().find(|l| {
            let mut c = l.chars();
            matches!((c.next(), c.next(), c.next()), (Some(a), Some(b), Some(' ')) if a == b && glyphs.contains(a))
                && l[l.char_indices().nth(3).map_or(0, |(i, _)| i)..].starts_with(name)
        });
        let line = line.unwrap_or_else(|| panic!("{what}: no key for {name}:\n{s}"));
        keys.insert(line.chars().next().unwrap(), name);
    }
    assert_eq!(keys.len(), 5, "{what}: a character per type: {keys:?}");
}

/// `TERM=dumb` and `NO_COLOR=1` through the real binary: the picker, the
/// combined view of two marked processes and the main view of one of them
/// draw the bars and the Summary's key in each type's own character, and
/// nothing vmmap sends sets a colour (tmux's `capture-pane -e` shows
/// every attribute of the screen).
#[test]
fn without_colour_the_bars_are_characters_and_no_colour_is_sent() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let fx = Fixture::start_named("sharing");
    let child = fx.info["child"].to_string();
    let filter = own_filter(fx.pid);
    for how in ["TERM=dumb", "NO_COLOR=1"] {
        let t = if how == "TERM=dumb" {
            Tmux::start_with_term(&[], "dumb")
        } else {
            Tmux::start_env(&[], &[("NO_COLOR", std::ffi::OsStr::new("1"))])
        };
        let coloured = |what: &str| {
            let out = t.tmux(&["capture-pane", "-p", "-e", "-t", "t"]);
            let screen = String::from_utf8_lossy(&out.stdout).into_owned();
            let codes = colour_codes(&screen);
            assert!(
                codes.is_empty(),
                "{how}, {what}: colours sent: {codes:?}\n{screen}"
            );
        };
        t.type_text(&filter);
        t.wait_for("select a process (2 of");
        coloured("the picker");
        t.keys(&["IC", "Down", "IC"]);
        t.wait_for("Enter:combine the 2 marked");
        t.keys(&["Enter"]);
        let s = t.wait_for("Combined: 2 processes");
        assert!(s.contains(&format!(" {child} ")), "{how}: {s}");
        assert_bars_in_characters(&format!("{how}, the combined view"), &s);
        coloured("the combined view");
        t.keys(&["Enter"]);
        let s = t.wait("a main view", |s| {
            s.lines().any(|l| l.starts_with("Address"))
        });
        assert_bars_in_characters(&format!("{how}, the main view"), &s);
        coloured("the main view");
    }
}

/// The picker's list refreshes itself: a process started after it opened
/// appears without a key.
#[test]
fn the_picker_lists_a_new_process_by_itself() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    let dir = TempDir::new("tui-refresh");
    let name = unique_name("vmnew");
    let t = Tmux::start(&[]);
    t.wait("the picker's process list", |s| {
        s.contains("select a process") && !s.contains("(0 of 0)")
    });
    t.type_text(&name);
    t.wait_for(&format!("Filter: {name}"));
    t.wait_for("select a process (0 of ");
    let fx = Fixture::start_as(&name, dir.path());
    let pid = fx.pid.to_string();
    t.wait(&format!("{name} listed without a key"), |s| {
        s.contains("select a process (1 of ")
            && s.lines().any(|l| l.contains(&pid) && l.contains(&name))
    });
}

/// The value under `column` in the row of `pid` of a `vmmap top` screen.
fn top_cell(screen: &str, pid: u32, column: &str) -> Option<String> {
    let head = screen.lines().find(|l| l.contains(" NAME "))?;
    // Headers are right-aligned over their figures: the cell ends where
    // the header does.
    let at = head.find(column)?;
    let end = head[..at].chars().count() + column.chars().count();
    let row = screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))?;
    let cells: Vec<char> = row.chars().collect();
    let from = end.saturating_sub(10).min(cells.len());
    let to = end.min(cells.len());
    Some(
        cells[from..to]
            .iter()
            .collect::<String>()
            .trim()
            .to_string(),
    )
}

/// `+512K`, `-1.5M`, in bytes.
fn human_bytes(s: &str) -> Option<f64> {
    let s = s.trim_start_matches('+');
    let (n, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let k = match unit {
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n.parse::<f64>().ok()? * k)
}

#[test]
fn top_shows_the_fastest_grower_first_and_its_keys_work() {
    use crate::top::Grower;
    let fast = Grower::start("growtuifast", 128, &[]);
    let slow = Grower::start("growtuislow", 16, &[]);
    let t = Tmux::start(&["top", "-d", "1s"]);
    t.wait_for("vmmap top");
    t.wait_for("+PRIVATE");
    // Filter as a user does: `/`, the text, Enter.
    t.keys(&["/"]);
    t.wait_for("Filter:");
    t.type_text("growtui");
    t.keys(&["Enter"]);
    let first_rows = |s: &str| -> Vec<u32> {
        s.lines()
            .skip_while(|l| !l.contains(" NAME "))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .take(2)
            .collect()
    };
    let s = t.wait("the fast grower first, growing", |s| {
        first_rows(s) == [fast.pid, slow.pid]
            && top_cell(s, fast.pid, "+PRIVATE").is_some_and(|c| c.starts_with('+'))
            && s.contains("filter “growtui”")
    });
    // Over the last interval, as the legend says it was: the rate, to the
    // precision of the figure shown (three digits; the exact figure is
    // tested through --json).
    let interval: f64 = s
        .split("+ growth in the last ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no interval in the legend:\n{s}"));
    let grown = human_bytes(&top_cell(&s, fast.pid, "+PRIVATE").unwrap())
        .unwrap_or_else(|| panic!("a size under +PRIVATE:\n{s}"));
    // The legend gives the interval to a tenth of a second: up to 0.05 s
    // of growth either way on top of the 6% the rounding and the
    // grower's own timing take.
    let want = fast.rate as f64 * interval;
    let slack = fast.rate as f64 * 0.05;
    assert!(
        (grown - want).abs() <= (want * 0.06 + slack).max(2.0 * 4096.0),
        "grows {} a second over {interval}s, shown {grown}:\n{s}",
        fast.rate
    );
    assert!(s.contains("Sort: +PRIVATE ▼"), "{s}");
    // Sorting: > steps to the next column, the header says which.
    t.keys(&[">"]);
    t.wait_for("Sort: ΣPRIVATE ▼");
    t.keys(&["<"]);
    t.wait_for("Sort: +PRIVATE ▼");
    // Pause.
    t.keys(&["Space"]);
    t.wait_for("PAUSED");
    t.keys(&["p"]);
    t.wait("resumed", |s| !s.contains("PAUSED"));
    // Enter opens the first row in the main view; Ctrl+P comes back.
    t.keys(&["Home", "Enter"]);
    t.wait_main_view(fast.pid);
    t.keys(&["C-p"]);
    t.wait_for("vmmap top");
    // Help lists top's keys.
    t.keys(&["?"]);
    t.wait_for("< / >, F6");
    t.keys(&["Escape"]);
    t.wait("the help closed", |s| !s.contains("Help —"));
    t.keys(&["q"]);
    t.wait_for("EXITED-0 TTY-cooked");
}

#[test]
fn map_draws_arena_tails_in_lower_case() {
    require_tool("tmux", "tmux");
    let _busy = starting_processes();
    // Two threads' arenas: Heap regions committed at their start and
    // PROT_NONE (reserved) up to 64 MiB.
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let text = vmmap_ok(&["map", &pid]);
    let reserved = text
        .lines()
        .find_map(|l| l.strip_prefix("Reserved:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a Reserved figure")
        .to_string();
    let t = Tmux::start(&["-i", &pid]);
    t.wait_main_view(fx.pid);
    t.keys(&["m"]);
    let s = t.wait("the fragmentation map", |s| {
        s.contains("Fragmentation map of")
    });
    // The grid: lines of type letters and dots only.
    let grid: String = s
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && l.trim_end()
                    .chars()
                    .all(|c| c == '·' || "IFSHMTPGifshmtpg".contains(c))
        })
        .collect();
    assert!(grid.contains('H'), "committed heap drawn: {s}");
    assert!(
        grid.contains('h'),
        "reserved arena tails in lower case: {s}"
    );
    // Its header says how much is reserved, as `vmmap map` does.
    let head = s
        .lines()
        .find(|l| l.contains("Fragmentation map of"))
        .unwrap();
    assert!(head.contains(&format!(", {reserved} reserved")), "{head}");
}

/// The operations the Trace view's totals line counts, if it shows them.
fn trace_operations(screen: &str) -> Option<u64> {
    screen.lines().find_map(|l| {
        l.trim_start()
            .split_once(" operations: ")
            .and_then(|(n, _)| n.parse().ok())
    })
}

#[test]
fn a_attaches_to_the_process_on_screen_and_a_again_detaches() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    require_tool("tmux", "tmux");
    // The agent is loaded from beside vmmap: build it first.
    crate::trace::agent();
    let bin = compile("attach_loop");
    // About 25 s of rounds: the same program untraced, beside it, says
    // what the traced one must print.
    let start = || {
        Command::new(&bin)
            .arg("2000")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fixture")
    };
    let mut untraced = start();
    let mut traced = start();
    let mut out = BufReader::new(traced.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: u32 = line
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("fixture said {line:?}"));
    let t = Tmux::start(&["-i", &pid.to_string()]);
    t.wait_main_view(pid);
    t.keys(&["a"]);
    // The Trace view opens once the agent runs, with its allocations.
    let attached = format!("Attached to {pid} (");
    let s = t.wait("the Trace view of the attached process", |s| {
        s.contains(&attached)
            && s.contains("make_entry")
            && trace_operations(s).is_some_and(|n| n > 0)
    });
    assert!(s.contains(" Trace "), "{s}");
    let file = std::fs::read_dir(t._home.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "vmmap"))
        .expect("the trace file, in the working directory");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(s.contains(&name), "the screen names the file: {s}");
    // It fills as events come: the view is analysed again.
    let first = trace_operations(&s).unwrap();
    t.wait("more operations in the Trace view", |s| {
        trace_operations(s).is_some_and(|n| n > first) && s.contains(&attached)
    });
    // a again detaches; the program runs on.
    t.keys(&["a"]);
    t.wait_for("detached, the process runs on unhooked");
    assert!(alive(pid), "the program ended at the detach");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let st = traced.wait().unwrap();
    assert!(st.success(), "the traced program ended with {st:?}");
    let mut expected = String::new();
    untraced
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut expected)
        .unwrap();
    untraced.wait().unwrap();
    let expected = expected.split_once('\n').map_or("", |(_, r)| r);
    assert!(rest.contains("checksum "), "{rest}");
    assert_eq!(rest, expected, "the output differs from an untraced run's");
    // The file is complete and holds the allocations of the window.
    let sum = crate::trace::summary(&file);
    assert!(sum["allocations"].as_u64().unwrap() > 0, "{sum}");
    assert_eq!(sum["images"][0]["ended"], true, "no END record: {sum}");
}

#[test]
fn a_on_a_process_that_cannot_be_attached_to_says_why_and_leaves_it_alone() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    require_tool("tmux", "tmux");
    crate::trace::agent();
    // Static: no loader to load the agent with.
    let bin = compile_static("attach_loop");
    let mut child = Command::new(&bin)
        .arg("300")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: u32 = line
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("fixture said {line:?}"));
    let t = Tmux::start(&["-i", &pid.to_string()]);
    t.wait_main_view(pid);
    t.keys(&["a"]);
    let s = t.wait_for(&format!("Cannot attach to {pid} ("));
    assert!(s.contains("is statically linked"), "{s}");
    assert!(!s.contains(" Trace "), "no Trace view opens: {s}");
    // No file is left behind, and the program runs to its end.
    let left: Vec<_> = std::fs::read_dir(t._home.path())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "vmmap"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("checksum "), "{rest}");
}

#[test]
fn quitting_while_attached_detaches_and_the_program_runs_on() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    require_tool("tmux", "tmux");
    crate::trace::agent();
    let bin = compile("attach_loop");
    let mut child = Command::new(&bin)
        .arg("1500")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: u32 = line
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("fixture said {line:?}"));
    let threads = || std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    let t = Tmux::start(&["-i", &pid.to_string()]);
    t.wait_main_view(pid);
    t.keys(&["a"]);
    let attached = format!("Attached to {pid} (");
    t.wait("the Trace view of the attached process", |s| {
        s.contains(&attached) && s.contains(" Trace ")
    });
    // The agent's writer runs beside the program's one thread.
    assert!(threads() > 1, "no writer thread while attached");
    // q closes the Trace view, q again quits.
    t.keys(&["q"]);
    t.wait_main_view(pid);
    t.keys(&["q"]);
    // vmmap says on its way out that it detached.
    let s = t.wait_for("EXITED-0");
    assert!(s.contains("detached, the process runs on unhooked"), "{s}");
    assert!(alive(pid), "the program ended with vmmap");
    // The writer said it finished just before it returns.
    let t0 = Instant::now();
    while threads() > 1 && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(POLL);
    }
    assert_eq!(
        threads(),
        1,
        "the agent's writer still runs after the detach"
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("checksum "), "{rest}");
}
