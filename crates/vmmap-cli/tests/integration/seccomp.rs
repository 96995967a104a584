//! Seccomp: a process whose filter would kill it at a call an attach
//! makes is refused before anything runs in it; one whose filter lets
//! those calls through is attached and runs on as it would have; a
//! program that puts itself under seccomp, traced by `vmmap run` or
//! attached to, is left by the agent first (docs/tracing.md, "Seccomp").

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmmap_trace::attach::seccomp::NEEDED;

use crate::attach::{attach, check_window, ready, tmp, wait_attached, Workers};
use crate::trace::history;
use crate::util::{compile, output_within, require_tool, VMMAP};

/// The fixture's own calls once its filter is in (`own[]` in
/// tests/fixtures/seccomp_workers.c): a filter that kills one of these
/// would kill the fixture itself.
const OWN: &[i64] = &[
    libc::SYS_write,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_restart_syscall,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_poll,
];

fn start(args: &[String]) -> Workers {
    start_with(args, &[])
}

/// [`start`] with environment variables (SECCOMP_HOLD, SECCOMP_LATE: see
/// the fixture).
fn start_with(args: &[String], env: &[(&str, &str)]) -> Workers {
    crate::trace::agent();
    let mut child = Command::new(compile("seccomp_workers"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let (out, pid) = ready(&mut child);
    Workers { child, out, pid }
}

fn args(iterations: &str, mode: &str, rest: &[String]) -> Vec<String> {
    let mut a = vec![iterations.to_string(), mode.to_string()];
    a.extend_from_slice(rest);
    a
}

/// Starts the fixture held (SECCOMP_HOLD: alive until its stdin ends,
/// however loaded the machine), attaches for a second, then lets it end.
/// vmmap's output and the fixture's checksum line.
fn attach_held(fixture: &[String], file: &str) -> (std::process::Output, String) {
    let mut w = start_with(fixture, &[("SECCOMP_HOLD", "1")]);
    let o = attach(w.pid, &tmp(file), &["--duration", "1s"]);
    drop(w.child.stdin.take());
    (o, w.finish())
}

/// Every call vmmap says an attach needs, the ways around included.
fn needed() -> Vec<String> {
    NEEDED
        .iter()
        .flat_map(|n| std::iter::successors(Some(n), |n| n.or))
        .map(|n| n.call.nr.to_string())
        .collect()
}

#[test]
fn a_filter_that_allows_only_the_calls_of_an_attach_is_attached_and_left_as_it_was() {
    // The fixture's filter kills every call but its own and NEEDED's: a
    // call missing from NEEDED kills the fixture, and fails this test.
    // The untraced run goes side by side.
    let only = args("1200000", "only", &needed());
    let plain = start(&only);
    // Held until its stdin ends, so that it is there for both attaches
    // however loaded the machine is.
    let mut w = start_with(&only, &[("SECCOMP_HOLD", "1")]);
    let file = tmp("attach-seccomp-only.vmmap");
    let o = attach(w.pid, &file, &["--duration", "1s", "--interval", "300ms"]);
    assert!(
        o.status.success(),
        "vmmap attach failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Again, and vmmap killed while attached: the agent unhooks and ends
    // its thread by itself, with the same calls.
    let said = tmp("attach-seccomp-killed.err");
    let mut v = Command::new(VMMAP)
        .args(["attach", &w.pid.to_string(), "-o"])
        .arg(tmp("attach-seccomp-killed.vmmap"))
        .stderr(std::fs::File::create(&said).unwrap())
        .spawn()
        .unwrap();
    let start_at = Instant::now();
    let tasks = || std::fs::read_dir(format!("/proc/{}/task", w.pid)).map_or(0, |d| d.count());
    loop {
        let status = std::fs::read_to_string(format!("/proc/{}/status", w.pid)).unwrap();
        if tasks() > 5 && status.contains("TracerPid:\t0\n") {
            break;
        }
        assert!(
            start_at.elapsed() < Duration::from_secs(30),
            "not attached within 30 s: {}",
            std::fs::read_to_string(&said).unwrap_or_default()
        );
        if let Some(st) = w.child.try_wait().unwrap() {
            panic!("the fixture ended with {st:?} before the second attach");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    v.kill().unwrap();
    v.wait().unwrap();
    while tasks() > 5 {
        assert!(
            start_at.elapsed() < Duration::from_secs(60),
            "the agent's thread still runs after vmmap died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // finish() asserts a clean exit: no SIGSYS.
    drop(w.child.stdin.take());
    assert_eq!(
        w.finish(),
        plain.finish(),
        "the checksum differs from the untraced run's"
    );
    // The first attach's file (read last: a debug build takes a while).
    let counts = check_window(&history(&file));
    assert_eq!(counts.len(), 4, "allocations of the 4 workers: {counts:?}");
    assert!(counts.values().all(|&n| n > 100), "{counts:?}");
}

#[test]
fn a_filtered_process_that_cannot_see_the_agent_gets_it_from_memory() {
    // A container's case: another mount namespace, and a filter that
    // allows what an attach needs (memfd_create among it) and no more.
    let unshare = require_tool("unshare", "util-linux");
    let agent = crate::trace::agent();
    let dir = agent.parent().unwrap().display().to_string();
    let only = args("1200000", "only", &needed());
    let plain = start(&only);
    let mut child = Command::new(unshare)
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs none {dir} && exec {} {}",
            compile("seccomp_workers").display(),
            only.join(" ")
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, pid) = ready(&mut child);
    let w = Workers { child, out, pid };
    let file = tmp("attach-seccomp-memfd.vmmap");
    let o = attach(w.pid, &file, &["--duration", "1s"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        maps.contains("/memfd:libvmmap_agent.so"),
        "not loaded from memory: {maps}"
    );
    assert_eq!(check_window(&history(&file)).len(), 4);
    assert_eq!(w.finish(), plain.finish());
}

#[test]
fn a_filter_that_would_kill_at_a_call_of_the_attach_refuses_it_and_names_the_call() {
    let plain = start(&args("3000", "only", &[])).finish();
    let mut tried = 0;
    for n in NEEDED
        .iter()
        .filter(|n| !n.from_memory && !n.launched && !OWN.contains(&n.call.nr))
    {
        let (o, checksum) = attach_held(
            &args("3000", "kill", &[n.call.nr.to_string()]),
            "attach-seccomp-kill.vmmap",
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(12), "{}: {o:?}", n.call.shown);
        // Named by the call (the first of its number that the attach makes).
        let name = n.call.shown.split('(').next().unwrap();
        assert!(
            err.contains("seccomp filter that would kill the process")
                && err.contains(&format!(" at {name}")),
            "{}: {err}",
            n.call.shown
        );
        assert_eq!(checksum, plain, "{}", n.call.shown);
        tried += 1;
    }
    assert!(tried >= 15, "only {tried} calls tried");
    // An error code where glibc has another way (clone3 -> clone) is no
    // refusal; the same code where it has none is.
    let clone3 = |errno: i32, file| {
        let fixture = args(
            "3000",
            "errno",
            &[libc::SYS_clone3.to_string(), errno.to_string()],
        );
        attach_held(&fixture, file).0
    };
    let o = clone3(libc::ENOSYS, "attach-seccomp-enosys.vmmap");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = clone3(libc::EPERM, "attach-seccomp-eperm.vmmap");
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("would fail with error 1"));
}

#[test]
fn strict_mode_is_refused() {
    let mut w = start(&["strict".to_string()]);
    let o = attach(
        w.pid,
        &tmp("attach-seccomp-strict.vmmap"),
        &["--duration", "1s"],
    );
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("strict mode"));
    // Alive: the end of its input ends it.
    drop(w.child.stdin.take());
    assert_eq!(w.finish(), "checksum 0");
}

#[test]
fn without_cap_sys_admin_a_filtered_process_is_refused() {
    crate::trace::agent();
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let mut child = Command::new("setpriv")
        .args(nobody)
        .arg(compile("seccomp_workers"))
        .args(args("3000", "kill", &[libc::SYS_kexec_load.to_string()]))
        .env("SECCOMP_HOLD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, pid) = ready(&mut child);
    let mut w = Workers { child, out, pid };
    let mut cmd = Command::new("setpriv");
    cmd.args(nobody)
        .args([VMMAP, "attach"])
        .arg(pid.to_string())
        .args([
            "-o",
            "/tmp/vmmap-attach-seccomp-nobody.vmmap",
            "--duration",
            "1s",
        ]);
    let o = output_within(&mut cmd, 30);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("CAP_SYS_ADMIN"),
        "{o:?}"
    );
    drop(w.child.stdin.take());
    w.finish();
}

#[test]
fn a_program_that_filters_itself_under_vmmap_run_runs_as_without_it() {
    // An allow-list of the program's own calls: any call of the agent's
    // after it would kill the program (it did: exit 159, SIGSYS).
    let bin = compile("seccomp_workers");
    crate::trace::agent();
    let plain = Command::new(&bin)
        .args(["100000", "only"])
        .output()
        .unwrap();
    assert!(plain.status.success(), "{plain:?}");
    let file = tmp("run-seccomp.vmmap");
    let traced = Command::new(VMMAP)
        .args(["run", "-i", "200ms", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .args(["100000", "only"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&traced.stderr);
    assert_eq!(traced.status.code(), plain.status.code(), "{err}");
    // The same output but the pid in "ready PID".
    let tail = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(tail(&traced), tail(&plain));
    assert!(err.contains("put itself under seccomp"), "{err}");
    // The file holds what came before the filter, and the snapshots.
    let s = crate::trace::summary(&file);
    assert!(s["calls"]["pthread_create"].as_u64() == Some(4), "{s}");
    assert_eq!(s["images"][0]["seccomp_stop"], true, "{s}");
    // A filter that lets every call of the agent's through (it kills
    // kexec_load only): the agent goes on, the workers' calls after it
    // are in the trace.
    let file = tmp("run-seccomp-permissive.vmmap");
    let args = [
        "20000".to_string(),
        "kill".into(),
        libc::SYS_kexec_load.to_string(),
    ];
    let plain = Command::new(&bin).args(&args).output().unwrap();
    let traced = Command::new(VMMAP)
        .args(["run", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .args(&args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&traced.stderr);
    assert_eq!(traced.status.code(), plain.status.code(), "{err}");
    assert_eq!(tail(&traced), tail(&plain));
    assert!(!err.contains("put itself under seccomp"), "{err}");
    let counts = check_window(&history(&file));
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(counts.values().all(|&n| n == 20_000), "{counts:?}");
    assert_eq!(
        crate::trace::summary(&file)["images"][0]["seccomp_stop"],
        false
    );
    // Strict mode, through prctl: read, write and exit only after it.
    let strict = Command::new(VMMAP)
        .args(["run", "-q", "-o"])
        .arg(tmp("run-seccomp-strict.vmmap"))
        .arg("--")
        .arg(&bin)
        .arg("strict")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(strict.status.success(), "{strict:?}");
    assert!(String::from_utf8_lossy(&strict.stdout).ends_with("checksum 0\n"));
}

#[test]
fn a_program_that_filters_itself_while_attached_is_left_first() {
    // The fixture installs its filter (its own calls only) on SIGUSR1,
    // sent once the attach is complete.
    let late = |pid: i32| {
        // SAFETY: kill with a pid of our own fixture.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    };
    let only = args("600000", "only", &[]);
    let plain = start_with(&only, &[("SECCOMP_LATE", "1")]);
    late(plain.pid);
    let w = start_with(&only, &[("SECCOMP_LATE", "1")]);
    // No --duration: the agent's own detach ends the recording.
    let file = tmp("attach-seccomp-late.vmmap");
    let said = tmp("attach-seccomp-late.err");
    let mut v = Command::new(VMMAP)
        .args(["attach", &w.pid.to_string(), "-o"])
        .arg(&file)
        .stderr(std::fs::File::create(&said).unwrap())
        .spawn()
        .unwrap();
    wait_attached(w.pid);
    let since = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    late(w.pid);
    let st = loop {
        if let Some(st) = v.try_wait().unwrap() {
            break st;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "vmmap attach did not end after the program filtered itself"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&said).unwrap();
    assert!(st.success(), "{err}");
    assert!(err.contains("put itself under seccomp"), "{err}");
    assert_eq!(w.finish(), plain.finish());
    assert_eq!(check_window(&history(&file)).len(), 4);
}

/// vmmap itself under a filter (a sandbox or a service started it): the
/// program inherits it and no filtered process can read it, so `vmmap
/// run` leaves the agent out unless asked (here the filter killed the
/// program at the agent's close_range, exit 159), and `vmmap attach`
/// refuses.
#[test]
fn under_a_filter_of_its_own_vmmap_leaves_the_agent_out_unless_asked() {
    crate::trace::agent();
    let wrap = compile("seccomp_exec");
    let bin = compile("seccomp_workers");
    let work = args("3000", "kill", &[libc::SYS_kexec_load.to_string()]);
    let plain = Command::new(&bin).args(&work).output().unwrap();
    let under = |nr: i64, extra: &[&str], file: &std::path::Path| {
        Command::new(&wrap)
            .arg(nr.to_string())
            .args([VMMAP, "run", "-o"])
            .arg(file)
            .args(extra)
            .arg("--")
            .arg(&bin)
            .args(&work)
            .output()
            .unwrap()
    };
    let o = under(libc::SYS_close_range, &[], &tmp("inherited-seccomp.vmmap"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), plain.status.code(), "{err}");
    assert_eq!(o.stdout.len(), plain.stdout.len(), "{err}");
    assert!(err.contains("the agent is not loaded"), "{err}");
    // Asked for, on a filter that kills only kexec_load: traced.
    let file = tmp("inherited-seccomp-unchecked.vmmap");
    let o = under(libc::SYS_kexec_load, &["--seccomp-unchecked"], &file);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), plain.status.code(), "{err}");
    assert!(err.contains("loaded as asked"), "{err}");
    assert_eq!(check_window(&history(&file)).len(), 4);
    // Attach from under a filter, to a process with one.
    let mut w = start_with(
        &args("3000", "kill", &[libc::SYS_kexec_load.to_string()]),
        &[("SECCOMP_HOLD", "1")],
    );
    let o = Command::new(&wrap)
        .arg(libc::SYS_kexec_load.to_string())
        .args([
            VMMAP,
            "attach",
            &w.pid.to_string(),
            "--duration",
            "1s",
            "-o",
        ])
        .arg(tmp("attach-from-seccomp.vmmap"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("vmmap itself runs under one"));
    drop(w.child.stdin.take());
    w.finish();
}
