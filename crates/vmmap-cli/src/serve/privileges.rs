//! Dropping root: after binding, a server started as root becomes another
//! user keeping only `CAP_SYS_PTRACE`, which is all that reading other
//! users' `/proc/PID/smaps` needs. Done before any thread exists: the
//! capability calls act on the calling thread only.

use std::collections::HashSet;
use std::io;

use caps::{CapSet, Capability};

use crate::{exit, Failure};

/// A user to run as.
pub(crate) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

fn usage(message: String) -> Failure {
    Failure {
        code: exit::USAGE,
        message,
    }
}

fn other(message: String) -> Failure {
    Failure {
        code: exit::OTHER,
        message,
    }
}

/// Looks up `name` in the password database; refuses unless running as
/// root (only root can switch users).
pub(crate) fn account(name: &str) -> Result<Account, Failure> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(usage(format!(
            "--user {name} needs vmmap to start as root (it binds, then drops to that user); without root, leave --user out"
        )));
    }
    if name.contains('\0') {
        return Err(usage("--user: a NUL byte in the name".into()));
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(pw)) => Ok(Account {
            name: name.to_string(),
            uid: pw.uid.as_raw(),
            gid: pw.gid.as_raw(),
        }),
        Ok(None) => Err(usage(format!(
            "--user {name}: no such user in the password database"
        ))),
        Err(e) => Err(other(format!(
            "--user {name}: reading the password database: {e}"
        ))),
    }
}

/// The gid of group `name`.
pub(crate) fn group(name: &str) -> Result<u32, Failure> {
    if name.contains('\0') {
        return Err(usage("--socket-group: a NUL byte".into()));
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(gr)) => Ok(gr.gid.as_raw()),
        Ok(None) => Err(usage(format!("--socket-group {name}: no such group"))),
        Err(e) => Err(other(format!(
            "--socket-group {name}: reading the group database: {e}"
        ))),
    }
}

/// Becomes `acct` with only `CAP_SYS_PTRACE` (permitted and effective; the
/// bounding set too, and no new privileges through exec), then checks that
/// root cannot be regained.
pub(crate) fn drop_to(acct: &Account) -> Result<(), Failure> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        other(format!("dropping privileges to {}: {what}: {e}", acct.name))
    };
    let keep: HashSet<Capability> = [Capability::CAP_SYS_PTRACE].into_iter().collect();
    // While still root: empty the bounding set but for CAP_SYS_PTRACE (it
    // needs CAP_SETPCAP, which goes with root).
    let bounding = caps::read(None, CapSet::Bounding).map_err(|e| fail("reading caps", &e))?;
    for cap in bounding.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|e| fail("bounding set", &e))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| fail("ambient set", &e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| fail("inheritable set", &e))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_KEEPCAPS", &io::Error::last_os_error()));
    }
    // SAFETY: setgroups with size 0 reads no list.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(fail("setgroups", &io::Error::last_os_error()));
    }
    let (uid, gid) = (acct.uid, acct.gid);
    // SAFETY: plain integer arguments; glibc applies them to every thread.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(fail("setresgid", &io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(fail("setresuid", &io::Error::last_os_error()));
    }
    // KEEPCAPS kept the permitted set through setuid; narrow it and make
    // CAP_SYS_PTRACE effective again (setuid cleared the effective set).
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| fail("permitted set", &e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| fail("effective set", &e))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_KEEPCAPS", &io::Error::last_os_error()));
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_NO_NEW_PRIVS", &io::Error::last_os_error()));
    }
    verify(acct, &keep)
}

/// Fails unless the drop holds: every id is the user's, the capabilities
/// are exactly `keep`, and neither root's uid nor gid can be taken back.
fn verify(acct: &Account, keep: &HashSet<Capability>) -> Result<(), Failure> {
    let bad = |what: String| {
        other(format!(
            "dropping privileges to {}: {what}; refusing to serve",
            acct.name
        ))
    };
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three pointers are to live locals.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    if [r, e, s] != [acct.uid; 3] {
        return Err(bad(format!("uids are {r}/{e}/{s}")));
    }
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    if [r, e, s] != [acct.gid; 3] {
        return Err(bad(format!("gids are {r}/{e}/{s}")));
    }
    for set in [CapSet::Permitted, CapSet::Effective] {
        let have = caps::read(None, set).map_err(|e| bad(e.to_string()))?;
        if have != *keep {
            return Err(bad(format!("{set:?} capabilities are {have:?}")));
        }
    }
    if acct.uid != 0 {
        // SAFETY: plain integer arguments. Must fail: if it succeeds, root
        // is back and the process must not go on.
        if unsafe { libc::setuid(0) } == 0 {
            return Err(bad("setuid(0) succeeded".into()));
        }
    }
    if acct.gid != 0 {
        // SAFETY: as above.
        if unsafe { libc::setgid(0) } == 0 {
            return Err(bad("setgid(0) succeeded".into()));
        }
    }
    Ok(())
}

/// `name (uid N, gid M)` for messages.
pub(crate) fn describe(acct: &Account) -> String {
    format!("{} (uid {}, gid {})", acct.name, acct.uid, acct.gid)
}
