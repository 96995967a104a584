//! Where a program counts its own threads. Some programs must have one
//! thread at certain moments, and look: CPython 3.12 and later read
//! `/proc/self/stat` right after `os.fork()` and warn on stderr when
//! there is more than one; Chromium's zygote checks that
//! `/proc/self/task` has three links (`.`, `..` and its thread) and stops
//! with SIGTRAP when not. Under the agent they counted its writer. Before
//! a `fork` (the hook is in `hooks.rs`) and before a look at the task
//! directory (the `stat` calls, `statx` and `opendir` below) from the
//! program's only thread, the writer steps out ([`writer::step_out`]) and
//! comes back a little later. A count by other means (`Threads:` in
//! `/proc/self/status`, `getdents` on a directory opened with `open`)
//! still sees it.

#[cfg(not(test))]
use core::ffi::{c_char, c_int, CStr};

#[cfg(not(test))]
use crate::writer;

/// Steps the writer out when this process is traced, the caller is the
/// program (not the agent) and the writer is in; when it is out already,
/// it stays out a while longer: a check that reads the task directory
/// after opening it must not see it come back at the `malloc` between.
#[cfg(not(test))]
pub(crate) fn step_out() {
    if !crate::tracing() || crate::agent_own() {
        return;
    }
    if writer::away() {
        writer::stay_out();
    } else {
        writer::step_out(2000);
    }
}

/// Whether `path` names a task directory: `task` (relative to a process's
/// directory in /proc), or a path that ends in `self/task` or
/// `NUMBER/task`, trailing slashes allowed. A look at another process's
/// task directory steps the writer out for nothing, which costs a pass of
/// the writer and nothing else.
pub(crate) fn names_task_dir(path: &[u8]) -> bool {
    let mut p = path;
    while let [rest @ .., b'/'] = p {
        p = rest;
    }
    if p == b"task" {
        return true;
    }
    let Some(parent) = p.strip_suffix(b"/task") else {
        return false;
    };
    let name = parent.rsplit(|&b| b == b'/').next().unwrap_or(parent);
    name == b"self" || (!name.is_empty() && name.iter().all(u8::is_ascii_digit))
}

/// Steps the writer out before a `stat` call on a task directory.
#[cfg(not(test))]
fn before_stat(path: *const c_char) {
    if path.is_null() {
        return;
    }
    // SAFETY: the caller's C string, as the call itself reads it.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    // The name first: `step_out` asks the kernel for the process id.
    if names_task_dir(bytes) {
        step_out();
    }
}

/// Defines an exported `stat`-family hook that steps the writer out for
/// a task directory, then calls the next definition (the C library's, or
/// another preloaded library's, such as fakeroot's). Where there is none
/// (a C library before 2.33 exports these names only as wrappers linked
/// into each program), it makes the system call the C library makes on
/// x86-64, `newfstatat(dirfd, path, buf, flags)`, whose `struct stat` is
/// the C library's.
#[cfg(not(test))]
macro_rules! stat_hook {
    ($name:ident, $slot:ident, ($($arg:ident: $ty:ty),*),
     newfstatat($dirfd:expr, $path:ident, $buf:ident, $flags:expr)) => {
        /// # Safety
        #[doc = concat!("As C `", stringify!($name), "`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            type F = unsafe extern "C" fn($($ty),*) -> c_int;
            before_stat($path);
            match real!($slot, stringify!($name), F) {
                // SAFETY: forwarding.
                Some(next) => unsafe { next($($arg),*) },
                None => newfstatat($dirfd, $path, $buf.cast(), $flags),
            }
        }
    };
}

/// `newfstatat` as the C library makes it: -1 and `errno` on failure
/// (which `raw_syscall` sets).
#[cfg(not(test))]
fn newfstatat(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int {
    let args = [dirfd as _, path as _, buf as _, flags as _, 0, 0];
    // SAFETY: the caller's arguments, as the call it made passes them.
    unsafe { crate::hooks::raw_syscall(libc::SYS_newfstatat, args) as c_int }
}

#[cfg(not(test))]
stat_hook!(stat, STAT, (path: *const c_char, buf: *mut libc::stat),
    newfstatat(libc::AT_FDCWD, path, buf, 0));
#[cfg(not(test))]
stat_hook!(stat64, STAT64, (path: *const c_char, buf: *mut libc::stat64),
    newfstatat(libc::AT_FDCWD, path, buf, 0));
#[cfg(not(test))]
stat_hook!(lstat, LSTAT, (path: *const c_char, buf: *mut libc::stat),
    newfstatat(libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW));
#[cfg(not(test))]
stat_hook!(lstat64, LSTAT64, (path: *const c_char, buf: *mut libc::stat64),
    newfstatat(libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW));
#[cfg(not(test))]
stat_hook!(fstatat, FSTATAT,
    (dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int),
    newfstatat(dirfd, path, buf, flags));
#[cfg(not(test))]
stat_hook!(fstatat64, FSTATAT64,
    (dirfd: c_int, path: *const c_char, buf: *mut libc::stat64, flags: c_int),
    newfstatat(dirfd, path, buf, flags));

/// # Safety
/// As C `statx`.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn statx(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: libc::c_uint,
    buf: *mut libc::statx,
) -> c_int {
    type F =
        unsafe extern "C" fn(c_int, *const c_char, c_int, libc::c_uint, *mut libc::statx) -> c_int;
    before_stat(path);
    if let Some(next) = real!(STATX, "statx", F) {
        // SAFETY: forwarding.
        return unsafe { next(dirfd, path, flags, mask, buf) };
    }
    let args = [dirfd as _, path as _, flags as _, mask as _, buf as _, 0];
    // SAFETY: the caller's arguments, as the call it made passes them;
    // raw_syscall gives -1 and sets errno on failure.
    unsafe { crate::hooks::raw_syscall(libc::SYS_statx, args) as c_int }
}

/// # Safety
/// As C `opendir`: the entries of a task directory are its threads.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut libc::DIR {
    type F = unsafe extern "C" fn(*const c_char) -> *mut libc::DIR;
    let Some(next) = real!(OPENDIR, "opendir", F) else {
        crate::set_errno(libc::ENOSYS);
        return core::ptr::null_mut();
    };
    before_stat(path);
    // SAFETY: forwarding.
    unsafe { next(path) }
}

#[cfg(test)]
mod tests {
    use super::names_task_dir;

    #[test]
    fn the_task_directories_are_told_from_other_paths() {
        for yes in [
            &b"task"[..],
            b"task/",
            b"self/task/",
            b"/proc/self/task",
            b"/proc/self/task//",
            b"/proc/4242/task",
            b"4242/task",
        ] {
            assert!(names_task_dir(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b""[..],
            b"/",
            b"/task",
            b"/home/me/task",
            b"/proc/self/task/4242",
            b"/proc/self/taskx",
            b"/proc/self/stat",
            b"mytask",
        ] {
            assert!(!names_task_dir(no), "{}", String::from_utf8_lossy(no));
        }
    }
}
