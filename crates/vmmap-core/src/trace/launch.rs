//! Starting a program under the tracing agent (`vmmap run`, and the
//! interactive view's Launch tab): finding the program and the agent,
//! refusing what LD_PRELOAD cannot trace, and spawning it with the agent's
//! environment and a trace file that the launcher and the agent both append
//! to.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::format::Writer;

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
    let mode = meta.permissions().mode();
    if mode & 0o6000 != 0 {
        return Some(format!(
            "{} is set-user-ID or set-group-ID: the loader ignores LD_PRELOAD for it",
            program.display()
        ));
    }
    if has_capabilities(program) {
        return Some(format!(
            "{} has file capabilities: the loader runs it in secure mode and ignores LD_PRELOAD",
            program.display()
        ));
    }
    let bytes = std::fs::read(program).ok()?;
    let facts = crate::elf::program_facts(&bytes)?;
    if facts.interp.is_none() {
        return Some(format!(
            "{} is statically linked: there is no dynamic loader to preload the agent",
            program.display()
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

/// Creates the trace file (header written) and starts the program with
/// the agent's environment. The returned writer appends the launcher's
/// snapshots; the agent appends its own chunks to the same file (both
/// open it with O_APPEND, so whole writes never interleave).
/// [`crate::trace::supervise::start`] does the same and also records the
/// program's map at start and at exit.
pub fn start(l: &Launch) -> Result<(Child, Writer<File>), LaunchError> {
    let out = create_output(l)?;
    match command(l, &out.path).spawn() {
        Ok(child) => Ok((child, out.writer)),
        Err(e) => {
            out.discard();
            Err(LaunchError::Spawn(e))
        }
    }
}

/// The trace file, created with its header, before the program starts.
pub(crate) struct Output {
    pub(crate) writer: Writer<File>,
    /// Its resolved name, given to the agent.
    pub(crate) path: PathBuf,
    /// A regular file (the only kind removed again).
    pub(crate) regular: bool,
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
    // Opened as every output is (crate::output), then reopened through
    // the descriptor with O_APPEND; the agent gets the resolved name.
    let (file, abs) = crate::output::create(&l.output)
        .and_then(|f| {
            let fd = std::path::PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
            Ok((
                OpenOptions::new().append(true).open(&fd)?,
                std::fs::read_link(&fd)?,
            ))
        })
        .map_err(LaunchError::Output)?;
    let regular = file.metadata().map_err(LaunchError::Output)?.is_file();
    let writer = Writer::new(file).map_err(LaunchError::Output)?;
    Ok(Output {
        writer,
        path: abs,
        regular,
    })
}

/// The command that starts the program with the agent's environment,
/// writing to the trace file `abs`.
pub(crate) fn command(l: &Launch, abs: &Path) -> Command {
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
    if let Some(agent) = &l.agent {
        let mut preload = agent.as_os_str().to_os_string();
        if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            preload.push(":");
            preload.push(old);
        }
        cmd.env("LD_PRELOAD", preload)
            .env("VMMAP_TRACE_FILE", abs)
            .env("VMMAP_TRACE_LAUNCHER", std::process::id().to_string())
            .env(
                "VMMAP_TRACE_UNWIND",
                if l.frame_pointers { "fp" } else { "dwarf" },
            );
        if l.follow_forks {
            cmd.env("VMMAP_TRACE_FOLLOW_FORKS", "1");
        } else {
            cmd.env_remove("VMMAP_TRACE_FOLLOW_FORKS");
        }
    }
    cmd
}
