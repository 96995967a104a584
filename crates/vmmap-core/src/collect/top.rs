//! Samples for `vmmap top`: every process's cheap figures, read as often
//! as once a second. Per process and sample it reads `stat` (which process
//! this is: start time, kernel thread) and `status` (private, working set,
//! swap, namespace PID), the counters the kernel keeps, as `ps` does; what
//! does not change (user, command line, container) is read once per
//! process and kept. PSS only when asked ([`Sampler::pss`]): it takes
//! `smaps_rollup`, a walk of every page table of the process, which on a
//! host of large processes costs ten times the rest (`bench/top.sh`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::privilege::user_name;
use super::procdir::ProcDir;
use crate::container::{self, Container};
use crate::error::Result;
use crate::proc::{cmdline, rollup, smaps::Field, stat, status};
use crate::top::{Figures, Proc};

/// Which processes a sampler reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Select {
    /// Every process with an address space.
    #[default]
    All,
    /// Those whose cgroup (v2 path, as `/proc/PID/cgroup` writes it) is
    /// this one or below it.
    Cgroup(String),
    /// Those of the containers [`Container::matches`] selects by this name.
    Container(String),
}

impl Select {
    /// A selection by cgroup: `PATH` as `/proc/PID/cgroup` writes it, or
    /// under the cgroup v2 mount point (`/sys/fs/cgroup/PATH`).
    pub fn cgroup(path: &str) -> Select {
        // The v2 hierarchy is mounted there, or at `unified` below it on a
        // hybrid host.
        let p = path
            .strip_prefix("/sys/fs/cgroup/unified")
            .or_else(|| path.strip_prefix("/sys/fs/cgroup"))
            .unwrap_or(path);
        let p = p.trim_end_matches('/');
        Select::Cgroup(if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        })
    }

    fn takes(&self, cgroup: Option<&str>, container: Option<&Container>) -> bool {
        match self {
            Select::All => true,
            Select::Cgroup(want) => cgroup.is_some_and(|c| {
                want == "/"
                    || c == want
                    || c.strip_prefix(want.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            }),
            Select::Container(name) => container.is_some_and(|c| c.matches(name)),
        }
    }
}

/// The origin of [`Proc::at`], one for the whole program, so that samples
/// of different samplers (the command line's first, the UI's next) can be
/// compared.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// What is read once per process.
#[derive(Clone, Debug)]
struct Fixed {
    user: String,
    cmdline: String,
    cgroup: Option<String>,
    container: Option<Container>,
}

/// Takes samples, keeping what does not change between them.
#[derive(Debug)]
pub struct Sampler {
    root: PathBuf,
    select: Select,
    pss: bool,
    fixed: HashMap<(u32, u64), Fixed>,
    users: HashMap<u32, String>,
}

impl Sampler {
    /// A sampler of the processes of `root` (`/proc`) that `select` takes.
    pub fn new(root: &Path, select: Select) -> Sampler {
        Sampler {
            root: root.to_path_buf(),
            select,
            pss: false,
            fixed: HashMap::new(),
            users: HashMap::new(),
        }
    }

    /// Reads PSS too, from smaps_rollup (a page-table walk per process).
    pub fn pss(mut self, yes: bool) -> Sampler {
        self.pss = yes;
        self
    }

    /// Whether it reads PSS.
    pub fn reads_pss(&self) -> bool {
        self.pss
    }

    /// Which processes it reads.
    pub fn select(&self) -> &Select {
        &self.select
    }

    /// One sample: the selected processes, by PID. A process that exits
    /// while it is read is left out; one whose smaps_rollup cannot be read
    /// (another user's, without privilege) has no PSS.
    pub fn sample(&mut self) -> Result<Vec<Proc>> {
        let pids = super::processes::pids(&self.root)?;
        let mut out = Vec::new();
        let mut fixed = HashMap::with_capacity(self.fixed.len());
        for pid in pids {
            if let Some((p, f)) = self.one(pid) {
                fixed.insert((pid, p.start_time), f);
                out.push(p);
            }
        }
        self.fixed = fixed;
        Ok(out)
    }

    fn one(&mut self, pid: u32) -> Option<(Proc, Fixed)> {
        let dir = ProcDir::open(&self.root, pid).ok()?;
        let st = stat::parse(&dir.read("stat").ok()?).ok()?;
        if st.is_kernel_thread() {
            return None;
        }
        let key = (pid, st.start_time);
        let mut f = match self.fixed.get(&key) {
            Some(f) => f.clone(),
            None => {
                let cg = dir.read("cgroup").unwrap_or_default();
                Fixed {
                    user: String::new(),
                    cmdline: cmdline::parse(&dir.read("cmdline").unwrap_or_default()).join(" "),
                    cgroup: container::unified_path(&cg),
                    container: container::from_cgroup(&cg),
                }
            }
        };
        // A cgroup selection reads the cgroup each time: a process may be
        // moved in or out while top runs.
        if self.select != Select::All && self.fixed.contains_key(&key) {
            let cg = dir.read("cgroup").unwrap_or_default();
            f.cgroup = container::unified_path(&cg);
            f.container = container::from_cgroup(&cg);
        }
        if !self.select.takes(f.cgroup.as_deref(), f.container.as_ref()) {
            return None;
        }
        let s = status::parse(&dir.read("status").ok()?).ok()?;
        let at = origin().elapsed();
        // A zombie has no VmRSS.
        let ws = s.bytes("VmRSS")?;
        let swap = s.bytes("VmSwap").unwrap_or(0);
        let pss = if self.pss {
            dir.read("smaps_rollup")
                .ok()
                .and_then(|b| rollup::parse(&b).ok().flatten())
                .and_then(|r| r.get(Field::Pss))
        } else {
            None
        };
        if f.user.is_empty() {
            let uid = s.uids().map_or(0, |u| u[0]);
            f.user = self
                .users
                .entry(uid)
                .or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string()))
                .clone();
        }
        let p = Proc {
            pid,
            start_time: st.start_time,
            ns_pid: s.ns_pid(),
            user: f.user.clone(),
            name: s.name().unwrap_or(&st.comm).to_string(),
            cmdline: f.cmdline.clone(),
            container: f.container.clone(),
            figures: Figures {
                private: s.bytes("RssAnon").unwrap_or(0) + swap,
                ws,
                pss,
                swap,
            },
            at,
        };
        Some((p, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_selection_is_by_path_component() {
        let s = Select::cgroup("/sys/fs/cgroup/system.slice/");
        assert_eq!(s, Select::Cgroup("/system.slice".into()));
        assert!(s.takes(Some("/system.slice"), None));
        assert!(s.takes(Some("/system.slice/x.service"), None));
        assert!(!s.takes(Some("/system.slicer"), None));
        assert!(!s.takes(None, None));
        assert_eq!(Select::cgroup("a/b"), Select::Cgroup("/a/b".into()));
        assert_eq!(
            Select::cgroup("/sys/fs/cgroup/unified/x.scope"),
            Select::Cgroup("/x.scope".into())
        );
        assert!(Select::cgroup("/").takes(Some("/init.scope"), None));
    }

    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        let mut s = Sampler::new(Path::new("/proc"), Select::All);
        let procs = s.sample().unwrap();
        let p = procs.iter().find(|p| p.pid == me).expect("this process");
        assert!(p.figures.ws > 0);
        assert!(p.figures.pss.is_none(), "PSS only when asked");
        let mut s = Sampler::new(Path::new("/proc"), Select::All).pss(true);
        let procs = s.sample().unwrap();
        let p = procs.iter().find(|p| p.pid == me).expect("this process");
        assert!(p.figures.pss.is_some());
        assert!(!p.user.is_empty());
        // The second sample keeps what does not change.
        let again = s.sample().unwrap();
        let q = again.iter().find(|p| p.pid == me).unwrap();
        assert_eq!((q.start_time, &q.cmdline), (p.start_time, &p.cmdline));
        assert!(q.at > p.at);
    }
}
