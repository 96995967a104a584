//! Starting a program under the tracing agent (`vmmap run`, and the
//! interactive view's Launch tab): finding the program and the agent,
//! refusing what LD_PRELOAD cannot trace, and spawning it with the agent's
//! environment and a trace file that the launcher and the agent both append
//! to.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vmmap_core::format::Writer;

/// What to start and how.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The program file (see [`find_program`]).
    pub program: PathBuf,
    /// `argv[0]` as the user typed it.
    pub argv0: OsString,
    /// The other arguments.
    pub args: Vec<OsString>,
    /// Working directory (None: the launcher's).
    pub cwd: Option<PathBuf>,
    /// The trace file, created (truncated) here.
    pub output: PathBuf,
    /// The agent library; None records snapshots only.
    pub agent: Option<PathBuf>,
    /// Frame-pointer stacks instead of `.eh_frame` unwinding.
    pub frame_pointers: bool,
    /// Trace children made by fork into files of their own.
    pub follow_forks: bool,
    /// Send the program's stdin, stdout and stderr to /dev/null (when the
    /// launcher owns the terminal, as the interactive view does).
    pub quiet_stdio: bool,
    /// What the launcher was started with that Rust's runtime and std's
    /// spawn change, put back in the program.
    pub inherited: Inherited,
    /// Load the agent even when vmmap runs under seccomp, whose filters
    /// the program inherits and nothing can read (docs/tracing.md,
    /// "Seccomp"); without it the agent stays out then.
    pub seccomp_unchecked: bool,
}

/// What the launcher itself was started with, as the program would have
/// found it without vmmap: Rust's runtime changes it in the launcher
/// before `main`, and std's spawn again in the child; the child puts it
/// back right before exec. The default is what std's spawn gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inherited {
    /// Standard descriptors that were closed (bit `fd`): the runtime
    /// filled them with /dev/null.
    pub closed_stdio: u8,
    /// SIGPIPE was ignored: the runtime ignores it, std's spawn sets the
    /// default action.
    pub sigpipe_ignored: bool,
    /// Signals that were blocked (bit `n - 1` for signal `n`): std's
    /// spawn unblocks them all.
    pub blocked: u64,
}

/// What this process was started with, once its binary has said
/// ([`Inherited::record`]).
static AT_START: std::sync::OnceLock<Inherited> = std::sync::OnceLock::new();

impl Inherited {
    /// Records what this process was started with: its binary notes it
    /// before Rust's runtime changes it (vmmap's `inherited` module), and
    /// every launch (the CLI's, the interactive view's) hands it on.
    pub fn record(i: Inherited) {
        let _ = AT_START.set(i);
    }

    /// What this process was started with, as recorded (the default, what
    /// std's spawn gives, if nothing was).
    pub fn of_this_process() -> Inherited {
        AT_START.get().copied().unwrap_or_default()
    }

    /// Puts it back in the calling process (a forked child before exec):
    /// only system calls, async-signal-safe.
    ///
    /// # Safety
    /// Closes descriptors 0 to 2 where they were closed: nothing in the
    /// calling process may still use them.
    pub unsafe fn restore(&self) {
        // SAFETY: system calls on plain values; the caller vouches for
        // the descriptors.
        unsafe {
            for fd in 0..3 {
                if self.closed_stdio & 1 << fd != 0 {
                    libc::close(fd);
                }
            }
            if self.sigpipe_ignored {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            if self.blocked != 0 {
                let mut set: libc::sigset_t = core::mem::zeroed();
                libc::sigemptyset(&mut set);
                for s in 1..=64 {
                    if self.blocked & 1 << (s - 1) != 0 {
                        libc::sigaddset(&mut set, s);
                    }
                }
                libc::pthread_sigmask(libc::SIG_SETMASK, &set, core::ptr::null_mut());
            }
        }
    }
}

/// Why [`start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The trace file could not be created or written.
    #[error("{0}")]
    Output(std::io::Error),
    /// The program could not be started.
    #[error("{0}")]
    Spawn(std::io::Error),
}

/// Finds PROGRAM as the shell would: a path if it has a slash, else the
/// first executable of that name on $PATH.
pub fn find_program(name: &OsString) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).map(|d| d.join(p)).find(|c| {
            c.is_file()
                && c.metadata()
                    .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Why LD_PRELOAD would not work on this program, if it would not.
pub fn untraceable(program: &Path) -> Option<String> {
    let meta = program.metadata().ok()?;
    // SAFETY: getuid and getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if let Some(why) = secure_mode(
        meta.permissions().mode(),
        (meta.uid(), meta.gid()),
        (uid, gid),
    ) {
        return Some(format!(
            "{} is {why}: the loader runs it in secure mode and ignores LD_PRELOAD",
            program.display()
        ));
    }
    // For root, file capabilities add nothing: no secure mode.
    if uid != 0 && has_capabilities(program) {
        return Some(format!(
            "{} has file capabilities: the loader runs it in secure mode and ignores LD_PRELOAD",
            program.display()
        ));
    }
    let facts = program_facts(program)?;
    if facts.interp.is_none() {
        return Some(format!(
            "{} is statically linked: there is no dynamic loader to preload the agent",
            program.display()
        ));
    }
    if let Some(san) = facts.sanitizer {
        return Some(format!(
            "{} is built with {}, whose runtime must come first among the program's libraries and serves its allocations itself: the agent cannot be loaded before it (the program would stop at start with \"runtime does not come first\")",
            program.display(),
            san.name()
        ));
    }
    if facts.defines_malloc {
        return Some(format!(
            "{} defines its own malloc (a statically linked allocator): its allocations would never reach the agent",
            program.display()
        ));
    }
    None
}

/// Why `output` cannot be a traced run's file, if it cannot: the agent
/// appends to it by name beside the launcher, which reads it back while
/// the program runs and after; only a regular file allows that. (From a
/// FIFO, the launcher took what the FIFO's reader should have had, and
/// at the end waited for ever.)
pub fn unfit_trace_file(output: &Path) -> Option<String> {
    std::fs::metadata(output).is_ok_and(|m| !m.is_file()).then(|| {
        format!(
            "{} is not a regular file (a FIFO or a device): the traced program and vmmap both write a traced run's file, and vmmap reads it back, which only a regular file allows",
            output.display()
        )
    })
}

/// Why an exec of a file of this `mode` and `owner` (uid, gid) by a
/// process of these real ids runs in the loader's secure mode, where it
/// ignores LD_PRELOAD: the kernel's rule is that the effective ids after
/// the exec differ from the real ones. So a set-user-ID program owned by
/// the user running it (root's `su`, `sudo`, `passwd` for root) loads
/// the agent, and a set-group-ID one (the group bit with group execute:
/// alone, it means mandatory locking) of another group does not.
fn secure_mode(mode: u32, owner: (u32, u32), real: (u32, u32)) -> Option<&'static str> {
    if mode & 0o4000 != 0 && owner.0 != real.0 {
        return Some("set-user-ID to another user");
    }
    if mode & 0o2010 == 0o2010 && owner.1 != real.1 {
        return Some("set-group-ID to another group");
    }
    None
}

/// Why the launcher must not keep tracing the program with ptrace to its
/// exit, if it must not: a program built with AddressSanitizer or
/// LeakSanitizer checks for leaks at exit by stopping every thread with
/// ptrace, which fails when the process has a tracer already ("LeakSanitizer
/// has encountered a fatal error", exit 1 instead of 0). Unless the
/// environment turns the check off (`detect_leaks=0` in `ASAN_OPTIONS` or
/// `LSAN_OPTIONS`), the run then takes no snapshot at exit.
pub fn leak_check_at_exit(program: &Path) -> Option<String> {
    let san = program_facts(program)?.sanitizer?;
    if !san.checks_leaks() {
        return None;
    }
    let off = |var: &str| {
        std::env::var(var).is_ok_and(|v| {
            v.split([':', ',', ' '])
                .any(|o| matches!(o, "detect_leaks=0" | "detect_leaks=false"))
        })
    };
    if off("LSAN_OPTIONS") || (san == vmmap_core::elf::Sanitizer::Address && off("ASAN_OPTIONS")) {
        return None;
    }
    Some(format!(
        "{} is built with {}, which checks for leaks at exit with ptrace and fails in a traced process: no snapshot at exit (ASAN_OPTIONS=detect_leaks=0 keeps it)",
        program.display(),
        san.name()
    ))
}

/// The program's [`ProgramFacts`](vmmap_core::elf::ProgramFacts), read
/// in the parts that tell them: read whole, Chromium's 300 MB executable
/// took a third of a second and as much memory, for each of
/// [`untraceable`] and [`leak_check_at_exit`].
fn program_facts(program: &Path) -> Option<vmmap_core::elf::ProgramFacts> {
    let f = File::open(program).ok()?;
    let mut read = vmmap_core::collect::file_reader(&f);
    vmmap_core::elf::program_facts_from(&mut read)
}

fn has_capabilities(program: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(program.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: valid C strings; a null buffer with size 0 asks for the size.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n > 0
}

/// The agent library: `given`, $VMMAP_AGENT, next to the running binary,
/// or in ../lib/vmmap/ from it (an installed layout). The error says where
/// it looked and how to build it.
pub fn find_agent(given: Option<&Path>) -> Result<PathBuf, String> {
    const NAME: &str = "libvmmap_agent.so";
    let candidates: Vec<PathBuf> = if let Some(g) = given {
        vec![g.to_path_buf()]
    } else if let Some(e) = std::env::var_os("VMMAP_AGENT") {
        vec![PathBuf::from(e)]
    } else {
        let exe = std::env::current_exe().unwrap_or_default();
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut v = vec![dir.join(NAME), dir.join("../lib/vmmap").join(NAME)];
        // Test binaries live in target/*/deps.
        if dir.ends_with("deps") {
            v.push(dir.join("..").join(NAME));
        }
        v
    };
    let mut tried = Vec::new();
    for c in candidates {
        if c.is_file() {
            return c
                .canonicalize()
                .map_err(|e| format!("{}: {e}", c.display()));
        }
        tried.push(c.display().to_string());
    }
    Err(format!(
        "the tracing agent {NAME} was not found (looked at {}); build it with `cargo build --release -p vmmap-agent`, or point --agent or $VMMAP_AGENT at it",
        tried.join(", ")
    ))
}

/// `PROGRAM.YYYYMMDD-HHMMSS.vmmap` in the current directory, not taken.
pub fn default_output(program: &Path) -> PathBuf {
    let stem = program
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    // SAFETY: time and localtime_r with valid pointers.
    let stamp = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    };
    let mut p = PathBuf::from(format!("{stem}.{stamp}.vmmap"));
    let mut n = 2;
    while p.exists() {
        p = PathBuf::from(format!("{stem}.{stamp}-{n}.vmmap"));
        n += 1;
    }
    p
}

/// Why a program could not be started, and what to do, for the usual
/// causes of [`LaunchError::Spawn`]; `None` when the system's own message
/// says it best.
pub fn spawn_advice(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error() {
        Some(libc::EACCES) => Some(
            "permission denied: not executable, or on a noexec mount (chmod +x it, or run it through its interpreter)",
        ),
        Some(libc::ENOEXEC) => {
            Some("not a program this machine runs (no #! line, or built for another architecture)")
        }
        _ => None,
    }
}

/// The program's environment under the agent: the launcher's own, in its
/// order, with the agent first in `LD_PRELOAD` (in that variable's place,
/// or at the end when the user has none) and the agent's settings at the
/// end. The agent takes its part out again at start-up (unless children
/// are followed), so the program sees the environment it would have had:
/// `std::process::Command` would sort every variable once one is set.
fn agent_env(l: &Launch, agent: &Path, trace: &Path, files: Option<&str>) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let kv = |k: &std::ffi::OsStr, v: &std::ffi::OsStr| {
        let mut s = k.to_os_string();
        s.push("=");
        s.push(v);
        s
    };
    let mut env = Vec::new();
    let mut preloaded = false;
    for (k, v) in std::env::vars_os() {
        if k.as_bytes().starts_with(b"VMMAP_TRACE_") {
            continue;
        }
        if k == "LD_PRELOAD" {
            let mut p = agent.as_os_str().to_os_string();
            p.push(":");
            p.push(&v);
            env.push(kv(&k, &p));
            preloaded = true;
            continue;
        }
        env.push(kv(&k, &v));
    }
    if !preloaded {
        env.push(kv("LD_PRELOAD".as_ref(), agent.as_os_str()));
    }
    env.push(kv("VMMAP_TRACE_FILE".as_ref(), trace.as_os_str()));
    env.push(kv(
        "VMMAP_TRACE_LAUNCHER".as_ref(),
        std::process::id().to_string().as_ref(),
    ));
    env.push(kv(
        "VMMAP_TRACE_UNWIND".as_ref(),
        if l.frame_pointers { "fp" } else { "dwarf" }.as_ref(),
    ));
    if let Some(name) = files {
        env.push(kv(vmmap_wire::files::ENV.as_ref(), name.as_ref()));
    }
    if l.follow_forks {
        env.push(kv("VMMAP_TRACE_FOLLOW_FORKS".as_ref(), "1".as_ref()));
        // A followed process in a pid namespace of its own names its file
        // by the namespace too (pids repeat across namespaces).
        if let Ok(m) = std::fs::metadata("/proc/self/ns/pid") {
            use std::os::unix::fs::MetadataExt;
            env.push(kv(
                "VMMAP_TRACE_PIDNS".as_ref(),
                m.ino().to_string().as_ref(),
            ));
        }
    }
    env
}

/// The C strings of an `execve` call, made before the fork: the child
/// only calls `execve` with them.
pub(crate) struct ExecArgs {
    _strings: Vec<std::ffi::CString>,
    path: *const libc::c_char,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl ExecArgs {
    /// Replaces the process's image; returns only on failure. Only
    /// async-signal-safe calls: it runs in the forked child.
    pub(crate) fn exec(&self) -> std::io::Error {
        // SAFETY: NULL-terminated arrays of C strings owned by self.
        unsafe { libc::execve(self.path, self.argv.as_ptr(), self.envp.as_ptr()) };
        std::io::Error::last_os_error()
    }
}

// SAFETY: the pointers point into `_strings`, owned alongside and never
// changed; the child reads them once.
unsafe impl Send for ExecArgs {}
// SAFETY: as above: read-only.
unsafe impl Sync for ExecArgs {}

/// The `execve` of the program with exactly `env`, in that order,
/// prepared before the fork.
fn exec_args(l: &Launch, env: &[OsString]) -> std::io::Result<ExecArgs> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |s: &std::ffi::OsStr| std::ffi::CString::new(s.as_bytes()).map_err(std::io::Error::other);
    let mut strings = vec![c(l.program.as_os_str())?, c(&l.argv0)?];
    for a in &l.args {
        strings.push(c(a)?);
    }
    let nargs = strings.len() - 1;
    for e in env {
        strings.push(c(e)?);
    }
    let ptr = |s: &std::ffi::CString| s.as_ptr();
    let mut argv: Vec<_> = strings[1..=nargs].iter().map(ptr).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<_> = strings[nargs + 1..].iter().map(ptr).collect();
    envp.push(std::ptr::null());
    Ok(ExecArgs {
        path: strings[0].as_ptr(),
        _strings: strings,
        argv,
        envp,
    })
}

/// The trace file, created with its header, before the program starts.
pub(crate) struct Output {
    pub(crate) writer: Writer<File>,
    /// The same file open for reading: vmmap reads its recording back
    /// through this, never by its name, which the program or another
    /// user may have pointed elsewhere since (a FIFO there held `vmmap
    /// run` for ever; a device acts on being opened).
    pub(crate) reader: File,
    /// Its resolved name, given to the agent.
    pub(crate) path: PathBuf,
    /// A regular file (the only kind removed again).
    pub(crate) regular: bool,
    /// Its device and inode.
    pub(crate) identity: (u64, u64),
}

impl Output {
    /// Nothing ran: leave no header-only file behind (only a regular
    /// file, never a device or a FIFO).
    pub(crate) fn discard(self) {
        drop(self.writer);
        if self.regular {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub(crate) fn create_output(l: &Launch) -> Result<Output, LaunchError> {
    // The usual reason a program cannot start, checked before the output
    // file is created or an old one truncated.
    let c = std::ffi::CString::new(l.program.as_os_str().as_encoded_bytes())
        .map_err(|e| LaunchError::Spawn(std::io::Error::other(e)))?;
    // SAFETY: a NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(LaunchError::Spawn(std::io::Error::last_os_error()));
    }
    // Opened as every output is (vmmap_core::output), then reopened through
    // the descriptor with O_APPEND; the agent gets the resolved name.
    let (file, reader, abs) = vmmap_core::output::create(&l.output)
        .and_then(|f| {
            let fd = vmmap_core::regular::by_fd(&f);
            Ok((
                OpenOptions::new().append(true).open(&fd)?,
                File::open(&fd)?,
                std::fs::read_link(&fd)?,
            ))
        })
        .map_err(LaunchError::Output)?;
    let meta = file.metadata().map_err(LaunchError::Output)?;
    let writer = Writer::new(file).map_err(LaunchError::Output)?;
    Ok(Output {
        writer,
        reader,
        path: abs,
        regular: meta.is_file(),
        identity: (meta.dev(), meta.ino()),
    })
}

/// The command that starts the program with the agent's environment,
/// writing to the trace file `abs`, and the `execve` its child must end
/// in: the caller's `pre_exec` runs it (after anything else the child must
/// do first), so that the program gets exactly that environment, in that
/// order, and a file without a `#!` line fails with ENOEXEC as it would
/// without vmmap (std's own exec would run it through /bin/sh).
pub(crate) fn command(
    l: &Launch,
    abs: &Path,
    files: Option<&str>,
) -> std::io::Result<(Command, ExecArgs)> {
    let mut cmd = Command::new(&l.program);
    cmd.arg0(&l.argv0).args(&l.args);
    if let Some(dir) = &l.cwd {
        cmd.current_dir(dir);
    }
    if l.quiet_stdio {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    let env = match &l.agent {
        Some(agent) => agent_env(l, agent, abs, files),
        None => std::env::vars_os()
            .map(|(k, v)| {
                let mut s = k;
                s.push("=");
                s.push(v);
                s
            })
            .collect(),
    };
    let exec = exec_args(l, &env)?;
    Ok((cmd, exec))
}

#[cfg(test)]
mod tests {
    use super::{secure_mode, unfit_trace_file};
    use std::path::Path;

    #[test]
    fn only_a_regular_file_or_a_new_name_holds_a_traced_run() {
        assert!(unfit_trace_file(Path::new("/dev/null")).is_some());
        assert!(unfit_trace_file(Path::new("/nonexistent/run.vmmap")).is_none());
        let f = std::env::temp_dir().join(format!("unfit-{}.vmmap", std::process::id()));
        std::fs::write(&f, b"").unwrap();
        assert!(unfit_trace_file(&f).is_none());
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn secure_mode_is_a_change_of_effective_ids() {
        let (root, user) = ((0, 0), (1000, 1000));
        // su, passwd: set-user-ID root.
        assert_eq!(secure_mode(0o104755, (0, 0), root), None);
        assert!(secure_mode(0o104755, (0, 0), user).is_some());
        // chage: set-group-ID shadow.
        assert!(secure_mode(0o102755, (0, 42), root).is_some());
        assert_eq!(secure_mode(0o102755, (0, 42), (0, 42)), None);
        // The group bit without group execute is mandatory locking.
        assert_eq!(secure_mode(0o102745, (0, 42), root), None);
        assert_eq!(secure_mode(0o100755, (0, 0), user), None);
    }
}
