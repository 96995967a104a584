//! Which CPU the writer thread compresses on.
//!
//! Left to the scheduler, the writer wakes where it last ran: with every
//! CPU busy with the program's threads, it took its time from the same one
//! thread on every pass (`typical_mix`: 93% of the writer's CPU on one of
//! the two), and a program whose threads share the work evenly waits for
//! that thread, the writer's whole time later. Moved before each
//! compression to the CPU that was idle longest since the last pass, and
//! among CPUs equally busy to the one it used least recently, it lands on
//! an idle CPU when there is one and otherwise spreads its time over all of
//! them. It is held there only while it compresses. Only CPUs the
//! process was allowed at start are used; a process allowed one CPU is
//! left alone.

/// The writer's choice of CPU, from the idle times in `/proc/stat`.
pub struct Placement {
    /// CPUs allowed at start.
    allowed: Vec<usize>,
    /// Idle ticks of each allowed CPU at the last choice (None before it).
    last_idle: Option<Vec<u64>>,
    /// When each allowed CPU was last chosen (choice count).
    used: Vec<u64>,
    choices: u64,
}

impl Placement {
    /// For the CPUs in `allowed`; None if there is nothing to choose.
    pub fn new(allowed: Vec<usize>) -> Option<Placement> {
        (allowed.len() > 1).then(|| Placement {
            used: vec![0; allowed.len()],
            allowed,
            last_idle: None,
            choices: 0,
        })
    }

    /// Runs `work` on the CPU [`Placement::choose`] picks from
    /// `/proc/stat`, then lets this thread run anywhere it was allowed
    /// again: pinned only while it compresses, it can still be moved off
    /// a CPU that something else takes over between passes.
    pub fn run<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let cpu = std::fs::read("/proc/stat")
            .ok()
            .and_then(|stat| self.choose(&stat));
        let Some(cpu) = cpu else {
            return work();
        };
        run_on(&[cpu]);
        let done = work();
        run_on(&self.allowed);
        done
    }

    /// The CPU to run on next, given `/proc/stat` as read now; None on the
    /// first call (nothing to compare with yet) or if the file has no
    /// line for an allowed CPU.
    pub fn choose(&mut self, stat: &[u8]) -> Option<usize> {
        let table = idle_ticks(stat);
        let now = self
            .allowed
            .iter()
            .map(|&cpu| table.get(cpu).copied().flatten())
            .collect::<Option<Vec<u64>>>()?;
        let last = self.last_idle.replace(now.clone())?;
        let idle: Vec<u64> = now
            .iter()
            .zip(&last)
            .map(|(n, l)| n.saturating_sub(*l))
            .collect();
        let most = idle.iter().copied().max().unwrap_or(0);
        // Within a tick (USER_HZ, 10 ms) of the idlest counts as as idle:
        // the counters are that coarse.
        let pick = (0..self.allowed.len())
            .filter(|&i| idle[i] + 1 >= most)
            .min_by_key(|&i| self.used[i])?;
        self.choices += 1;
        self.used[pick] = self.choices;
        Some(self.allowed[pick])
    }
}

/// Idle plus iowait ticks of each CPU in `/proc/stat` (`cpuN user nice
/// system idle iowait …`), by CPU number (None where there is no line).
pub fn idle_ticks(stat: &[u8]) -> Vec<Option<u64>> {
    let mut table = Vec::new();
    let Ok(text) = std::str::from_utf8(stat) else {
        return table;
    };
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(cpu) = fields
            .next()
            .and_then(|n| n.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < libc::CPU_SETSIZE as usize)
        else {
            continue;
        };
        let mut fields = fields.skip(3);
        let Some(idle) = fields.next().and_then(|f| f.parse::<u64>().ok()) else {
            continue;
        };
        let iowait = fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        if table.len() <= cpu {
            table.resize(cpu + 1, None);
        }
        table[cpu] = Some(idle + iowait);
    }
    table
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call writes at
    // most its size.
    let set = unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        if libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        set
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: cpu is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Moves this thread to `cpus` (a failure, say a cpuset that changed,
/// leaves it where it is).
fn run_on(cpus: &[usize]) {
    // SAFETY: as in `allowed_cpus`; every cpu is below CPU_SETSIZE (they
    // came from such a set).
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(idle: &[u64]) -> Vec<u8> {
        let mut s = String::from("cpu  100 0 50 9999 3 0 1 0 0 0\n");
        for (i, v) in idle.iter().enumerate() {
            s += &format!("cpu{i} 10 0 5 {v} 2 0 1 0 0 0\n");
        }
        s += "intr 12345\nctxt 99\n";
        s.into_bytes()
    }

    #[test]
    fn idle_ticks_are_idle_plus_iowait_of_that_cpu() {
        assert_eq!(idle_ticks(&stat(&[100, 250])), [Some(102), Some(252)]);
        assert_eq!(
            idle_ticks(b"cpu0 1 2 3\ncpu2 1 2 3 4\n"),
            [None, None, Some(4)]
        );
        assert!(idle_ticks(b"\xff").is_empty());
    }

    #[test]
    fn an_idle_cpu_is_chosen_and_busy_ones_take_turns() {
        let mut p = Placement::new(vec![0, 1, 2]).unwrap();
        assert_eq!(p.choose(&stat(&[0, 0, 0])), None);
        // CPU 2 was idle for 5 ticks, the others not at all.
        assert_eq!(p.choose(&stat(&[0, 0, 5])), Some(2));
        assert_eq!(p.choose(&stat(&[0, 0, 10])), Some(2));
        // All busy: each in turn, least recently used first.
        let turns: Vec<_> = (0..4)
            .map(|_| p.choose(&stat(&[0, 0, 10])).unwrap())
            .collect();
        assert_eq!(turns, [0, 1, 2, 0]);
        // Within a tick counts as equally idle.
        assert_eq!(p.choose(&stat(&[1, 0, 10])), Some(1));
    }

    #[test]
    fn one_cpu_or_an_unreadable_file_changes_nothing() {
        assert!(Placement::new(vec![3]).is_none());
        let mut p = Placement::new(vec![0, 7]).unwrap();
        assert_eq!(p.choose(&stat(&[0, 0])), None);
        assert_eq!(p.choose(&stat(&[0, 0])), None);
    }
}
