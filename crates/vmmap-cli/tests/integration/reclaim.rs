//! `vmmap PID --empty-working-set` on the memtext fixture: the pages of its
//! data file mapping leave its working set, and come back when it reads
//! them again.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// Rss of the mapping that starts at `start`, from /proc/PID/smaps.
fn rss_of(pid: u32, start: u64) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let head = format!("{start:x}-");
    let block: String = smaps
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .take_while(|l| !l.starts_with("VmFlags"))
        .collect::<Vec<_>>()
        .join("\n");
    kb_field(&block, "Rss")
}

#[test]
fn empty_working_set_pages_out_and_the_pages_come_back() {
    let mut fx = Fixture::start_named("memtext");
    let file = fx.addr("file_ascii") - 100;
    assert_eq!(rss_of(fx.pid, file), 8192, "both pages were read");
    let out = vmmap_ok(&[&fx.pid.to_string(), "--empty-working-set", "--samples", "0"]);
    assert!(out.contains("Paged out "), "{out}");
    assert_eq!(
        rss_of(fx.pid, file),
        0,
        "clean file pages are dropped:\n{out}"
    );
    signal(fx.pid, libc_sig::SIGUSR1);
    assert_eq!(fx.next_line(Duration::from_secs(10)).trim(), "TOUCHED");
    assert_eq!(rss_of(fx.pid, file), 8192, "read again, resident again");
}

#[test]
fn empty_working_set_without_cap_sys_nice_is_refused_clearly() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "run the tests as root: this one drops CAP_SYS_NICE alone (CI runs them as root)"
    );
    let fx = Fixture::start_named("memtext");
    let _g = starting_processes();
    let o = Command::new(require_tool("setpriv", "util-linux"))
        .args([
            "--bounding-set=-sys_nice",
            "--inh-caps=-sys_nice",
            VMMAP,
            &fx.pid.to_string(),
            "--empty-working-set",
            "--samples",
            "0",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("CAP_SYS_NICE"),
        "{err}"
    );
    let file = fx.addr("file_ascii") - 100;
    assert_eq!(rss_of(fx.pid, file), 8192, "nothing was paged out");
}

/// `--reclaim cgroup` writes the fixture's cgroup v2 `memory.reclaim`.
/// Where the kernel or the mount lacks it (this machine binds the memory
/// controller to cgroup v1), it must be refused with exit code 7 and the
/// reason; where it exists, the file pages leave the working set.
#[test]
fn empty_working_set_by_cgroup_reclaims_or_says_why_not() {
    let fx = Fixture::start_named("memtext");
    let file = fx.addr("file_ascii") - 100;
    let _g = starting_processes();
    let o = Command::new(VMMAP)
        .args([
            &fx.pid.to_string(),
            "--empty-working-set",
            "--reclaim",
            "cgroup",
            "--samples",
            "0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let cgroup_file = std::fs::read_to_string(format!("/proc/{}/cgroup", fx.pid)).unwrap();
    let v2 = cgroup_file
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .and_then(|rel| {
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            mounts
                .lines()
                .filter(|l| l.contains(" - cgroup2 "))
                .map(|l| l.split(' ').nth(4).unwrap().to_string())
                .map(|m| format!("{m}/{}", rel.trim_start_matches('/')))
                .find(|d| std::path::Path::new(&format!("{d}/memory.reclaim")).exists())
        });
    match v2 {
        None => {
            assert_eq!(o.status.code(), Some(7), "{err}");
            assert!(
                err.contains("memory.reclaim") && err.contains("use --reclaim madvise"),
                "{err}"
            );
        }
        Some(dir) => {
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "{err}");
            assert!(
                out.contains(&format!("Reclaimed from cgroup {dir}")),
                "{out}"
            );
            assert_eq!(
                rss_of(fx.pid, file),
                0,
                "clean file pages are reclaimed:\n{out}"
            );
        }
    }
}
