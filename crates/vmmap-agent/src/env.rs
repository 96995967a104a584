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

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use core::ffi::{c_char, c_void};

/// The agent's variables, in the order the launcher set them.
const OURS: [&str; 4] = [
    "VMMAP_TRACE_FILE",
    "VMMAP_TRACE_LAUNCHER",
    "VMMAP_TRACE_UNWIND",
    "VMMAP_TRACE_FOLLOW_FORKS",
];

/// What was taken out, to put back for an exec of the traced process.
struct Saved {
    /// The agent's own `LD_PRELOAD` entry (empty: it was not there).
    agent: Vec<u8>,
    /// `NAME=value` of each agent variable.
    vars: Vec<CString>,
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
    if std::env::var_os("VMMAP_TRACE_FILE").is_none()
        || std::env::var_os("VMMAP_TRACE_FOLLOW_FORKS").is_some_and(|v| v == "1")
    {
        return;
    }
    let mut vars = Vec::new();
    for name in OURS {
        let c = CString::new(name).unwrap_or_default();
        if let Some(v) = std::env::var_os(name) {
            let mut kv = name.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            vars.extend(CString::new(kv).ok());
        }
        // SAFETY: a C string; single-threaded (constructor). unsetenv
        // compacts environ in place, keeping the others' order.
        unsafe { libc::unsetenv(c.as_ptr()) };
    }
    let me = own_path();
    let mut agent = Vec::new();
    if let Some(pre) = std::env::var_os("LD_PRELOAD") {
        let b = pre.as_bytes();
        if !me.is_empty() && b == me.as_slice() {
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
    let _ = SAVED.set(Saved { agent, vars });
}

/// An environment for `execve`: the array and the one string it needs
/// (the agent's `LD_PRELOAD`) in a mapping of its own, the other strings
/// the caller's or [`SAVED`]'s. Made without malloc: exec may be called
/// from a signal handler that interrupted the allocator.
pub struct ExecEnv {
    mem: *mut u8,
    len: usize,
}

impl ExecEnv {
    /// The NULL-terminated array to pass to `execve`.
    pub fn as_ptr(&self) -> *const *const c_char {
        self.mem as *const *const c_char
    }
}

impl Drop for ExecEnv {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unused once the exec failed.
        unsafe { libc::syscall(libc::SYS_munmap, self.mem, self.len) };
    }
}

/// `envp` with the agent's variables put back, for an exec of the traced
/// process; None when nothing was taken out (children are followed, or
/// vmmap did not start this program) or this process is not traced.
///
/// # Safety
/// `envp` is null or a NULL-terminated array of C strings.
pub unsafe fn for_exec(envp: *const *const c_char) -> Option<ExecEnv> {
    let saved = SAVED.get()?;
    if !crate::tracing() {
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
    let (mut n, mut user) = (0, None);
    while let Some(kv) = entries(n) {
        if user.is_none() {
            user = kv.strip_prefix(PRELOAD);
        }
        n += 1;
    }
    let agent = !saved.agent.is_empty();
    // LD_PRELOAD=AGENT[:USER'S]\0
    let preload_len = PRELOAD.len() + saved.agent.len() + user.map_or(0, |u| 1 + u.len()) + 1;
    let slots = n + 2 + saved.vars.len();
    let len = slots * core::mem::size_of::<*const c_char>() + preload_len;
    let mem = crate::sys::map_anon(len);
    if mem.is_null() {
        return None;
    }
    let env = ExecEnv { mem, len };
    // SAFETY: the mapping holds `slots` pointers, then the string.
    unsafe {
        let ptrs = mem as *mut *const c_char;
        let text = mem.add(slots * core::mem::size_of::<*const c_char>());
        let mut w = text;
        for part in [PRELOAD, &saved.agent[..]] {
            core::ptr::copy_nonoverlapping(part.as_ptr(), w, part.len());
            w = w.add(part.len());
        }
        if let Some(u) = user {
            *w = b':';
            core::ptr::copy_nonoverlapping(u.as_ptr(), w.add(1), u.len());
        }
        // The rest is zero (a fresh mapping): the string ends there.
        let mut k = 0;
        let mut placed = false;
        for i in 0..n {
            let e = *envp.add(i);
            let kv = CStr::from_ptr(e).to_bytes();
            if kv.starts_with(b"VMMAP_TRACE_") {
                continue;
            }
            if agent && kv.starts_with(PRELOAD) {
                if placed {
                    continue;
                }
                placed = true;
                *ptrs.add(k) = text as *const c_char;
            } else {
                *ptrs.add(k) = e;
            }
            k += 1;
        }
        if agent && !placed {
            *ptrs.add(k) = text as *const c_char;
            k += 1;
        }
        for v in &saved.vars {
            *ptrs.add(k) = v.as_ptr();
            k += 1;
        }
        *ptrs.add(k) = core::ptr::null();
    }
    Some(env)
}

/// The process's current environment, for the exec calls that take none.
pub fn current() -> *const *const c_char {
    // SAFETY: reading the environ pointer (set by libc, never null after
    // start-up; an empty environment is an array holding only NULL).
    unsafe { libc::environ as *const *const c_char }
}
