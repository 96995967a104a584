//! The process list and lookup by name. Only cheap, world-readable sources
//! are read (`status`, `cmdline`, `stat`, `cgroup`): listing every process this way
//! costs about what `ps` does, where full smaps would cost 16 times more.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::privilege::user_name;
use super::procdir::ProcDir;
use super::read_head;
use crate::container::{self, Container};
use crate::elf;
use crate::error::{Error, Result};
use crate::proc::{cmdline, stat, status};

/// Whether vmmap can inspect a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Access {
    /// Its smaps can be opened.
    Ok,
    /// The kernel refused, with the reason.
    Denied(String),
}

/// One row of `vmmap ps`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessEntry {
    /// PID.
    pub pid: u32,
    /// Real uid.
    pub(crate) uid: u32,
    /// User name.
    pub user: String,
    /// Command name.
    pub name: String,
    /// Arguments joined by spaces.
    pub cmdline: String,
    /// Private bytes: `RssAnon + VmSwap` from status, the process-wide
    /// equivalent of the per-region Private column.
    pub private_bytes: Option<u64>,
    /// Working set: `VmRSS`.
    pub working_set: Option<u64>,
    /// Architecture from the executable's ELF header, when readable.
    pub arch: Option<String>,
    /// Whether a snapshot is possible.
    pub access: Access,
    /// The PID in its own PID namespace, when that differs (a container).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ns_pid: Option<u32>,
    /// The container or pod, from its cgroup path.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container: Option<Container>,
}

/// Lists user processes (kernel threads have no address space and are
/// left out), sorted by PID.
pub fn list_processes(root: &Path) -> Result<Vec<ProcessEntry>> {
    let mut out = Vec::new();
    let pids = pids(root)?;
    let mut users = std::collections::HashMap::new();
    for pid in pids {
        // A process may exit at any point here; it is then simply left out.
        let Ok(dir) = ProcDir::open(root, pid) else {
            continue;
        };
        let Some(st) = dir.read("status").ok().and_then(|b| status::parse(&b).ok()) else {
            continue;
        };
        let Some(rss) = st.bytes("VmRSS") else {
            continue;
        }; // kernel thread or zombie
        let uid = st.uids().map_or(0, |u| u[0]);
        let user = users
            .entry(uid)
            .or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string()))
            .clone();
        let access = match dir
            .open_file("smaps_rollup")
            .or_else(|_| dir.open_file("smaps"))
        {
            Ok(_) => Access::Ok,
            Err(Error::PermissionDenied { hint, .. }) => Access::Denied(hint),
            Err(_) => continue,
        };
        let arch = read_head(&dir.path("exe"))
            .and_then(|b| elf::parse(&b).ok())
            .map(|e| e.arch());
        let private = st
            .bytes("RssAnon")
            .map(|a| a + st.bytes("VmSwap").unwrap_or(0));
        out.push(ProcessEntry {
            pid,
            uid,
            user,
            name: st.name().unwrap_or("?").to_string(),
            cmdline: cmdline::parse(&dir.read("cmdline").unwrap_or_default()).join(" "),
            private_bytes: private,
            working_set: Some(rss),
            arch,
            access,
            ns_pid: st.ns_pid(),
            container: container::from_cgroup(&dir.read("cgroup").unwrap_or_default()),
        });
    }
    Ok(out)
}

/// The PIDs under a proc root, in order (its other entries are not
/// processes).
pub(crate) fn pids(root: &Path) -> Result<Vec<u32>> {
    let rd = std::fs::read_dir(root).map_err(|e| Error::Io {
        path: root.to_path_buf(),
        source: e,
    })?;
    let mut pids: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Finds the process called `name`: its command name, the file name of its
/// first argument, or of its executable. Exactly one must match.
pub fn find_by_name(root: &Path, name: &str) -> Result<u32> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u32;
    let rd = std::fs::read_dir(root).map_err(|e| Error::Io {
        path: root.to_path_buf(),
        source: e,
    })?;
    let mut matches = Vec::new();
    // Kernel threads and zombies have no address space: never a match, but
    // named when nothing else matches, so the error says why.
    let mut kernel_thread = None;
    let mut zombie = None;
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    for pid in rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        if pid == me {
            continue;
        }
        let Ok(dir) = ProcDir::open(root, pid) else {
            continue;
        };
        let Some(s) = dir.read("stat").ok().and_then(|b| stat::parse(&b).ok()) else {
            continue;
        };
        if s.is_kernel_thread() {
            if s.comm == name {
                kernel_thread.get_or_insert((pid, s.comm));
            }
            continue;
        }
        if s.state == 'Z' {
            if s.comm == name {
                zombie.get_or_insert((pid, s.ppid));
            }
            continue;
        }
        let args = cmdline::parse(&dir.read("cmdline").unwrap_or_default());
        let exe = std::fs::read_link(dir.path("exe"))
            .ok()
            .map(|p| base(&p.to_string_lossy()));
        let hit = s.comm == name
            || args.first().is_some_and(|a| base(a) == name)
            || exe
                .as_deref()
                .is_some_and(|e| e == name || e.strip_suffix(" (deleted)") == Some(name));
        if hit {
            let shown = if args.is_empty() {
                s.comm.clone()
            } else {
                args.join(" ")
            };
            matches.push((pid, shown));
        }
    }
    matches.sort();
    match matches.len() {
        0 => Err(match (kernel_thread, zombie) {
            (Some((pid, name)), _) => Error::KernelThread { pid, name },
            (None, Some((pid, parent))) => Error::Zombie { pid, parent },
            (None, None) => Error::NoProcessNamed {
                name: name.to_string(),
            },
        }),
        1 => Ok(matches[0].0),
        _ => Err(Error::AmbiguousName {
            name: name.to_string(),
            matches,
        }),
    }
}
