//! What the program sees of the tracer in its environment: nothing.
//!
//! The launcher passes the agent's settings in `VMMAP_TRACE_*` variables
//! and puts the agent first in `LD_PRELOAD`. Left there, every program
//! the traced one starts would inherit them (and print them: `vmmap run --
//! env`; perl copies them into its %ENV). Unless children are followed
//! (`--follow-forks`, where they need them to be traced), the agent takes
//! them out of `environ` at start-up, restoring the user's own
//! `LD_PRELOAD`, and puts them back only into the environment of an
//! `exec` of the traced process itself, whose new image continues the
//! trace (and takes them out again).
//!
//! With `--follow-forks` the variables stay in `environ`, and every exec
//! and `posix_spawn` gets them put back into the environment it is given:
//! a program that starts a child with an environment of its own (`execve`
//! with an explicit `envp`, as after `vfork`; `posix_spawn` with one)
//! would otherwise start it untraced.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use core::ffi::{c_char, c_void};

/// The agent's variables, in the order the launcher set them.
const OURS: [&str; 6] = [
    "VMMAP_TRACE_FILE",
    "VMMAP_TRACE_LAUNCHER",
    "VMMAP_TRACE_UNWIND",
    "VMMAP_TRACE_FOLLOW_FORKS",
    "VMMAP_TRACE_PIDNS",
    vmmap_wire::files::ENV,
];

/// What was taken out (or, following children, left in), to put back
/// for an exec.
struct Saved {
    /// The agent's own `LD_PRELOAD` entry (empty: it was not there).
    agent: Vec<u8>,
    /// `NAME=value` of each agent variable.
    vars: Vec<CString>,
    /// Children are followed: the variables were left in `environ`, and
    /// every child gets them.
    follow: bool,
}

static SAVED: OnceLock<Saved> = OnceLock::new();

/// The path the loader knows this library by (as LD_PRELOAD named it).
fn own_path() -> Vec<u8> {
    // SAFETY: dladdr only reads the loader's tables; info is an
    // out-parameter, and dli_fname a C string the loader keeps.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(own_path as *const c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return Vec::new();
        }
        CStr::from_ptr(info.dli_fname).to_bytes().to_vec()
    }
}

/// Takes the agent's variables and its `LD_PRELOAD` entry out of
/// `environ` (see the module's documentation). Runs in the agent's
/// constructor, before the program's code.
pub fn scrub() {
    if std::env::var_os("VMMAP_TRACE_FILE").is_none() {
        return;
    }
    let follow = std::env::var_os("VMMAP_TRACE_FOLLOW_FORKS").is_some_and(|v| v == "1");
    let mut vars = Vec::new();
    for name in OURS {
        let c = CString::new(name).unwrap_or_default();
        if let Some(v) = std::env::var_os(name) {
            let mut kv = name.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            vars.extend(CString::new(kv).ok());
        }
        if !follow {
            // SAFETY: a C string; single-threaded (constructor). unsetenv
            // compacts environ in place, keeping the others' order.
            unsafe { libc::unsetenv(c.as_ptr()) };
        }
    }
    let me = own_path();
    let mut agent = Vec::new();
    if let Some(pre) = std::env::var_os("LD_PRELOAD") {
        let b = pre.as_bytes();
        let ours =
            !me.is_empty() && b.starts_with(&me) && matches!(b.get(me.len()), None | Some(&b':'));
        if follow {
            // Left as it is; only remembered.
            if ours {
                agent = me;
            }
        } else if !me.is_empty() && b == me.as_slice() {
            // The launcher added the variable: the user had none.
            // SAFETY: as above.
            unsafe { libc::unsetenv(c"LD_PRELOAD".as_ptr()) };
            agent = me;
        } else if !me.is_empty() && b.starts_with(&me) && b.get(me.len()) == Some(&b':') {
            // The user's own value after the agent's entry (maybe empty).
            if let Ok(rest) = CString::new(&b[me.len() + 1..]) {
                // SAFETY: C strings; replacing keeps the variable's place.
                unsafe { libc::setenv(c"LD_PRELOAD".as_ptr(), rest.as_ptr(), 1) };
                agent = me;
            }
        }
    }
    let _ = SAVED.set(Saved {
        agent,
        vars,
        follow,
    });
}

/// An environment for `execve`: the array and the one string it needs
/// (the agent's `LD_PRELOAD`) in a mapping of its own, or in the caller's
/// [`Scratch`] in a `vfork` child, the other strings the caller's or
/// [`SAVED`]'s. Made without malloc: exec may be called from a signal
/// handler that interrupted the allocator.
pub struct ExecEnv {
    mem: *mut u8,
    /// Length of the mapping; 0 when `mem` is the caller's scratch.
    len: usize,
}

/// Room on the caller's stack for the environment of an exec in a `vfork`
/// child. Such a child shares the parent's memory until it execs: a
/// mapping made there would stay in the parent, one per child, never
/// freed; the child's stack frame goes with the exec.
#[repr(C, align(8))]
pub struct Scratch([u8; SCRATCH]);

/// Bytes of [`Scratch`]: the pointers of about 900 variables, or 500 and
/// a long `LD_PRELOAD`. An environment larger than that is left as it is
/// (the child is not traced).
const SCRATCH: usize = 8192;

impl Scratch {
    /// Zeroed room (the string built in it ends at the first zero).
    pub fn new() -> Scratch {
        Scratch([0; SCRATCH])
    }
}

impl ExecEnv {
    /// The NULL-terminated array to pass to `execve`.
    pub fn as_ptr(&self) -> *const *const c_char {
        self.mem as *const *const c_char
    }
}

impl Drop for ExecEnv {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: our own mapping, unused once the exec failed.
            unsafe { libc::syscall(libc::SYS_munmap, self.mem, self.len) };
        }
    }
}

/// `envp` with the agent's variables put back, for an exec of the traced
/// process, or with `--follow-forks` for any exec or spawn while this
/// process is traced (in a `vfork` child too, built in `scratch`); None
/// when it needs nothing (it holds them already, vmmap did not start this
/// program, or this process is not traced).
///
/// # Safety
/// `envp` is null or a NULL-terminated array of C strings.
pub unsafe fn for_exec(envp: *const *const c_char, scratch: &mut Scratch) -> Option<ExecEnv> {
    let saved = SAVED.get()?;
    let wanted = if saved.follow {
        crate::following()
    } else {
        crate::tracing()
    };
    if !wanted {
        return None;
    }
    let entries = |i: usize| -> Option<&[u8]> {
        if envp.is_null() {
            return None;
        }
        // SAFETY: per the contract, entries up to the NULL are readable.
        let e = unsafe { *envp.add(i) };
        // SAFETY: a C string, per the contract.
        (!e.is_null()).then(|| unsafe { CStr::from_ptr(e) }.to_bytes())
    };
    const PRELOAD: &[u8] = b"LD_PRELOAD=";
    let agent = !saved.agent.is_empty();
    let me = &saved.agent[..];
    let (mut n, mut user) = (0, None);
    // Following children, the environment may hold the agent's entries
    // already (it is `environ`, or a copy of it).
    let mut present = 0;
    while let Some(kv) = entries(n) {
        if user.is_none() {
            user = kv.strip_prefix(PRELOAD);
        }
        present += saved.vars.iter().filter(|v| v.as_bytes() == kv).count();
        n += 1;
    }
    // The user's part of LD_PRELOAD, without the agent's entry.
    let (preloaded, user) = match user.map(|u| (u, u.strip_prefix(me))) {
        Some((_, Some([]))) if agent => (true, None),
        Some((_, Some([b':', rest @ ..]))) if agent => (true, Some(rest)),
        Some((u, _)) => (!agent, Some(u)),
        None => (!agent, None),
    };
    // The new image's loader reads the agent as the user the process is
    // now: after the program gave up root, a library under root's home
    // cannot be read, and the loader would say so on the program's stderr
    // ("cannot be preloaded ... ignored"). Then the exec goes without the
    // agent (and, following children, without its variables).
    let readable = agent && agent_readable(me);
    if !readable && !saved.follow {
        return None;
    }
    if !readable && present == 0 && !(agent && preloaded) {
        return None;
    }
    if readable && saved.follow && preloaded && present == saved.vars.len() {
        return None;
    }
    // LD_PRELOAD=AGENT[:USER'S]\0, or without the agent LD_PRELOAD=USER'S\0
    // (none at all when the user had none).
    let (head, user_sep): (&[u8], bool) = if readable { (me, true) } else { (&[], false) };
    let preload_len =
        PRELOAD.len() + head.len() + user.map_or(0, |u| usize::from(user_sep) + u.len()) + 1;
    let vars: &[CString] = if readable { &saved.vars } else { &[] };
    let keep_preload = readable || user.is_some();
    let slots = n + 2 + vars.len();
    let len = slots * core::mem::size_of::<*const c_char>() + preload_len;
    let env = if crate::same_process() {
        let mem = crate::sys::map_anon(len);
        if mem.is_null() {
            return None;
        }
        ExecEnv { mem, len }
    } else if len <= SCRATCH {
        ExecEnv {
            mem: scratch.0.as_mut_ptr(),
            len: 0,
        }
    } else {
        return None;
    };
    let mem = env.mem;
    // SAFETY: the memory (mapping or scratch) holds `slots` pointers,
    // then the string.
    unsafe {
        let ptrs = mem as *mut *const c_char;
        let text = mem.add(slots * core::mem::size_of::<*const c_char>());
        let mut w = text;
        for part in [PRELOAD, head] {
            core::ptr::copy_nonoverlapping(part.as_ptr(), w, part.len());
            w = w.add(part.len());
        }
        if let Some(u) = user {
            if user_sep {
                *w = b':';
                w = w.add(1);
            }
            core::ptr::copy_nonoverlapping(u.as_ptr(), w, u.len());
        }
        // The rest is zero (a fresh mapping, or zeroed scratch): the
        // string ends there.
        let mut k = 0;
        let mut placed = false;
        for i in 0..n {
            let e = *envp.add(i);
            let kv = CStr::from_ptr(e).to_bytes();
            if kv.starts_with(b"VMMAP_TRACE_") {
                continue;
            }
            if agent && kv.starts_with(PRELOAD) {
                if placed || !keep_preload {
                    continue;
                }
                placed = true;
                *ptrs.add(k) = text as *const c_char;
            } else {
                *ptrs.add(k) = e;
            }
            k += 1;
        }
        if readable && !placed {
            *ptrs.add(k) = text as *const c_char;
            k += 1;
        }
        for v in vars {
            *ptrs.add(k) = v.as_ptr();
            k += 1;
        }
        *ptrs.add(k) = core::ptr::null();
    }
    Some(env)
}

/// Whether the new image's loader will be able to read the agent's file:
/// `faccessat` without `AT_EACCESS` checks as the real user, and without
/// capabilities unless that user is root, which is what an exec leaves a
/// process that gave up root (its effective ids are its real ones, and a
/// capability kept across the change of user goes with the exec).
fn agent_readable(path: &[u8]) -> bool {
    // A path on the stack: this runs where malloc may not (an exec from
    // a signal handler, a vfork child).
    let mut buf = [0u8; 4096];
    if path.is_empty() || path.len() >= buf.len() {
        return false;
    }
    buf[..path.len()].copy_from_slice(path);
    // SAFETY: a NUL-terminated path (the rest of buf is zero).
    let r = unsafe {
        libc::syscall(
            libc::SYS_faccessat,
            libc::AT_FDCWD,
            buf.as_ptr(),
            libc::R_OK,
        )
    };
    // A seccomp filter that answers the call with an error: as before the
    // check, the agent goes with the exec.
    r == 0 || matches!(crate::errno(), libc::ENOSYS | libc::EPERM)
}

/// The process's current environment, for the exec calls that take none.
pub fn current() -> *const *const c_char {
    // SAFETY: reading the environ pointer (set by libc, never null after
    // start-up; an empty environment is an array holding only NULL).
    unsafe { libc::environ as *const *const c_char }
}
