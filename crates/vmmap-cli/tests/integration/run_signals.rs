//! `vmmap run` outlives its program to close the file, but never changes
//! what the program receives: Ctrl+C in a terminal reaches the program
//! (one process group) and is not sent again; a signal sent to vmmap alone
//! is passed on as it came; a signal the program would have started with
//! ignored stays ignored.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::trace::{agent, build, fixture, tmp};
use crate::tui::Tmux;

fn signals() -> PathBuf {
    let src = fixture("signals.c");
    build("signals", &["cc", "-O1", "-Wall", src.to_str().unwrap()])
}

/// `vmmap run -q -o TMP/NAME.vmmap -- signals MODE`, not started.
fn traced(name: &str, mode: &str) -> Command {
    let out = tmp().join(format!("{name}.vmmap"));
    let _ = std::fs::remove_file(&out);
    let mut c = crate::trace::run_command(&out, &signals());
    c.arg(mode);
    c
}

/// The lines the program printed for the signals it received ("got
/// NAME"; the terminal echoes `^C` before the first).
fn got_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter_map(|l| l.find("got ").map(|i| &l[i..]))
        .collect()
}

/// An interactive python takes Ctrl+C as KeyboardInterrupt and goes on;
/// vmmap sent SIGTERM on top of the terminal's SIGINT and the run ended
/// with 143.
#[test]
fn ctrl_c_in_a_terminal_reaches_the_program_once() {
    let prog = signals();
    let out = tmp().join("ctrl-c.vmmap");
    let _ = std::fs::remove_file(&out);
    // The pane's shell takes Ctrl+C too (it is in the foreground group):
    // a trap keeps it alive to say how vmmap ended, and is reset to the
    // default action in vmmap by the exec.
    let t = Tmux::launch(
        &[
            "run",
            "-q",
            "--agent",
            agent().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--",
            prog.to_str().unwrap(),
            "wait",
        ],
        &[],
        "trap true INT; ",
    );
    t.wait_for("ready");
    t.keys(&["C-c"]);
    let screen = t.wait_for("EXITED-");
    assert_eq!(got_lines(&screen), ["got INT"], "{screen}");
    assert!(screen.contains("EXITED-11 "), "{screen}");
}

/// `kill -INT VMMAP` and `kill -TERM VMMAP` reach the program as sent,
/// once each.
#[test]
fn a_signal_sent_to_vmmap_is_passed_on_as_it_came() {
    for (sig, name) in [(libc::SIGINT, "INT"), (libc::SIGTERM, "TERM")] {
        let mut child = traced(&format!("sent-{name}"), "wait")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start vmmap run");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        // SAFETY: signalling our own child, vmmap.
        unsafe { libc::kill(child.id() as i32, sig) };
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        let st = child.wait().unwrap();
        assert_eq!(rest, [format!("got {name}")], "SIG{name}");
        assert_eq!(st.code(), Some(11), "SIG{name}: {st:?}");
    }
}

/// The signals a program is started with ignored (`nohup`, a script's
/// background job) are ignored in it under `vmmap run` too: a handler of
/// vmmap's would have been reset to the default action at the program's
/// exec, and SIGINT would then have killed it.
#[test]
fn ignored_signals_stay_ignored_in_the_program() {
    let prog = signals();
    let ignoring = |cmd: &mut Command| {
        // SAFETY: signal() in the child before exec, async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
                    libc::signal(sig, libc::SIG_IGN);
                }
                Ok(())
            });
        }
    };
    let mut plain = Command::new(&prog);
    plain.arg("ignored");
    ignoring(&mut plain);
    let plain = plain.output().unwrap();
    let mut traced = traced("ignored", "ignored");
    ignoring(&mut traced);
    let traced = traced.output().unwrap();
    assert!(traced.status.success(), "{traced:?}");
    let plain = String::from_utf8_lossy(&plain.stdout);
    // SIGINT, SIGQUIT and SIGHUP: bits 1, 2 and 0.
    let mask = plain
        .trim()
        .strip_prefix("SigIgn:")
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
    assert_eq!(mask.map(|m| m & 7), Some(7), "{plain}");
    assert_eq!(String::from_utf8_lossy(&traced.stdout), plain);
}
