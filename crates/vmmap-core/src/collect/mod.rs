//! Collection: reads one process's `/proc` files once each, classifies the
//! mappings and returns a [`Snapshot`]. Also the cheap process listing
//! behind `vmmap ps` and lookup by name.
//!
//! The proc root is a parameter so that a captured copy of `/proc/PID`
//! (for a bug report, or a test of an old kernel's format) reads exactly
//! like the live one.

mod inspector;
pub mod pages;
pub(crate) mod privilege;
mod procdir;
mod processes;
pub mod reclaim;
pub mod sections;
mod threads;
pub mod top;
mod written;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use privilege::who;
pub use procdir::ProcDir;
pub use processes::{find_by_name, list_processes, Access, ProcessEntry};
pub use sections::file_reader;
pub use written::{clear_soft_dirty, soft_dirty_bytes};

use crate::classify::{self, Context};
use crate::elf;
use crate::error::{Error, Result};
use crate::model::{KernelInfo, ProcessInfo, Region, Snapshot, ThreadInfo};
use crate::proc::smaps::{Field, SmapsParser};
use crate::proc::{cmdline, rollup, stat, status};

/// How to take a snapshot.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Where `/proc` is (a captured tree works too).
    pub(crate) proc_root: PathBuf,
    /// Whether to interrupt running threads with ptrace for their stack
    /// pointers (only those whose stack was not found without stopping
    /// them).
    pub(crate) ptrace: bool,
    /// The time all ptrace interrupts of one snapshot may take together;
    /// the threads not reached by then are reported, not waited for.
    pub(crate) ptrace_budget: Duration,
    /// Threads known from elsewhere (a traced run's trace), added when
    /// the kernel no longer lists them, or lists them without a stack
    /// found (dying): at the exit of a program, the other threads go
    /// before the address space does.
    pub known_threads: Vec<ThreadInfo>,
    /// Whether to read target memory (glibc arena headers, thread TCBs).
    pub(crate) read_memory: bool,
    /// Whether to read `smaps_rollup`. Off when the output shows no
    /// rollup figure (the text views): the kernel walks every page table
    /// of the process again to produce it, a seventh of the cost of smaps.
    pub(crate) rollup: bool,
}

/// The default [`Options::ptrace_budget`] in milliseconds: a few scheduler
/// ticks, enough for dozens of running threads to stop and resume, short
/// enough for a metrics scrape of every process.
pub const DEFAULT_PTRACE_BUDGET_MS: u64 = 100;
/// [`DEFAULT_PTRACE_BUDGET_MS`] as a duration.
pub(crate) const DEFAULT_PTRACE_BUDGET: Duration = Duration::from_millis(DEFAULT_PTRACE_BUDGET_MS);

impl Default for Options {
    fn default() -> Self {
        Options {
            proc_root: PathBuf::from("/proc"),
            ptrace: true,
            ptrace_budget: DEFAULT_PTRACE_BUDGET,
            known_threads: Vec::new(),
            read_memory: true,
            rollup: true,
        }
    }
}

impl Options {
    /// Sets the proc root.
    pub fn proc_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.proc_root = root.into();
        self
    }
    /// Allows or forbids ptrace.
    pub fn ptrace(mut self, yes: bool) -> Self {
        self.ptrace = yes;
        self
    }
    /// Sets the time all ptrace interrupts of one snapshot may take.
    pub fn ptrace_budget(mut self, budget: Duration) -> Self {
        self.ptrace_budget = budget;
        self
    }
    /// Allows or forbids reading target memory.
    pub fn read_memory(mut self, yes: bool) -> Self {
        self.read_memory = yes;
        self
    }
    /// Reads `smaps_rollup` or not (then [`Snapshot::rollup`] is `None`
    /// and [`KernelInfo::rollup_unread`] says whether the kernel has it).
    pub fn rollup(mut self, yes: bool) -> Self {
        self.rollup = yes;
        self
    }
}

/// Fields every kernel since 2.6.26 prints; without `Size` and `Rss` there
/// is nothing to show.
const REQUIRED: [Field; 2] = [Field::Size, Field::Rss];

/// Takes a snapshot of process `pid`.
pub fn snapshot(pid: u32, opts: &Options) -> Result<Snapshot> {
    let dir = ProcDir::open(&opts.proc_root, pid)?;
    let st = stat::parse(&dir.read("stat")?).map_err(|e| Error::Parse {
        path: dir.path("stat"),
        source: e,
    })?;
    if st.is_kernel_thread() {
        return Err(Error::KernelThread { pid, name: st.comm });
    }
    if st.state == 'Z' {
        return Err(Error::Zombie {
            pid,
            parent: st.ppid,
        });
    }
    if st.state == 'X' {
        return Err(Error::ProcessExited { pid });
    }
    let status = status::parse(&dir.read("status")?).map_err(|e| Error::Parse {
        path: dir.path("status"),
        source: e,
    })?;
    let cmdline = cmdline::parse(&dir.read("cmdline").unwrap_or_default());
    let exe = std::fs::read_link(dir.path("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let elf = read_head(&dir.path("exe")).and_then(|b| elf::parse(&b).ok());
    let uid = status.uids().map_or(0, |u| u[0]);

    let mut threads = threads::threads(&dir, 3)?;

    let SmapsRead {
        regions,
        present,
        rollup,
    } = read_smaps(&dir, opts.rollup)?;
    // The snapshot's time is its map's: what follows (stack pointers that
    // may wait on ptrace, classification's memory reads) changes no region,
    // and a trace's events after this cannot have made one of them.
    let taken_at_unix_ns = now_ns();
    if regions.is_empty() {
        // Only a process without an address space prints an empty smaps:
        // by now it must have exited (kernel threads were caught above).
        return Err(Error::ProcessExited { pid });
    }
    for f in REQUIRED {
        if present & (1 << f as u32) == 0 {
            return Err(Error::Unsupported {
                what: format!("the {} field in /proc/PID/smaps", f.kernel_name()),
                hint: "vmmap needs Linux 2.6.26 or later".into(),
            });
        }
    }
    let missing_fields: Vec<String> = Field::PER_VMA
        .iter()
        .filter(|f| present & (1 << **f as u32) == 0)
        .map(|f| f.kernel_name().to_string())
        .collect();
    let rollup = match rollup {
        Some(b) => rollup::parse(&b).map_err(|e| Error::Parse {
            path: dir.path("smaps_rollup"),
            source: e,
        })?,
        None => None,
    };
    // Not read: whether it is there at all (a look-up, no page walk).
    let rollup_unread = !opts.rollup && dir.path("smaps_rollup").exists();
    // The PID may have been reused while we read: same start time, same
    // process.
    match dir.read("stat").ok().and_then(|b| stat::parse(&b).ok()) {
        Some(s) if s.start_time == st.start_time && s.state != 'Z' => {}
        _ => return Err(Error::ProcessExited { pid }),
    }

    let page_size = page_size();
    let kernel = KernelInfo {
        // uname(2) says what the live /proc/sys/kernel/osrelease says (the
        // caller's UTS namespace), without opening a file.
        release: if dir.is_live() {
            uname_release()
        } else {
            read_sys(&opts.proc_root, "sys/kernel/osrelease").unwrap_or_else(uname_release)
        },
        page_size,
        mmap_min_addr: read_sys(&opts.proc_root, "sys/vm/mmap_min_addr")
            .and_then(|s| s.parse().ok())
            .unwrap_or(65536),
        user_address_limit: user_address_limit(elf.as_ref(), &regions, page_size),
        missing_fields,
        rollup_unread,
    };

    let pointer_width = match elf.as_ref().map(|e| e.class) {
        Some(32) => 4,
        _ => 8,
    };
    let mut inspector = inspector::LiveInspector::new(&dir, opts.read_memory);
    let mut warnings = Vec::new();
    // What the trace knows first (the snapshot at exit): a thread still
    // listed while it dies has no stack pointer of its own, and is then
    // neither searched for nor reported as not placed.
    for k in &opts.known_threads {
        match threads.iter_mut().find(|t| t.tid == k.tid) {
            Some(t) if t.stack_pointer.is_none() => {
                t.stack_pointer = k.stack_pointer;
                t.stack_pointer_source = k.stack_pointer_source;
            }
            Some(_) => {}
            None => threads.push(k.clone()),
        }
    }
    threads::find_running_stacks(
        &dir,
        opts,
        &regions,
        &mut threads,
        pointer_width,
        &mut inspector,
        &mut warnings,
    );

    let process = ProcessInfo {
        pid,
        name: status
            .name()
            .map_or_else(|| st.comm.clone(), str::to_string),
        cmdline,
        exe,
        uid,
        user: privilege::user_name(uid),
        elf,
        start_time_ticks: st.start_time,
        threads,
        ns_pid: status.ns_pid(),
        container: crate::container::from_cgroup(&dir.read("cgroup").unwrap_or_default()),
    };
    let ctx = Context {
        pid,
        pointer_width: process.pointer_width(),
        page_size,
        threads: &process.threads,
    };
    let (regions, mut class_warnings) = classify::classify_regions(regions, &ctx, &mut inspector);
    warnings.append(&mut class_warnings);
    Ok(Snapshot {
        process,
        taken_at_unix_ns,
        kernel,
        regions,
        rollup,
        status,
        warnings,
        sharing: None,
    })
}

/// The process totals alone, from `smaps_rollup` and `status`: what
/// `vmmap watch` records between full snapshots (about a seventh of the
/// cost of smaps at 60,000 mappings, and no per-region work).
pub fn sample(pid: u32, opts: &Options) -> Result<crate::format::Sample> {
    let dir = ProcDir::open(&opts.proc_root, pid)?;
    let text = dir
        .read_optional("smaps_rollup")?
        .ok_or_else(|| Error::Unsupported {
            what: "/proc/PID/smaps_rollup".into(),
            hint:
                "totals-only samples need Linux 4.14 or later; use full snapshots (--full-every 1)"
                    .into(),
        })?;
    let rollup = rollup::parse(&text)
        .map_err(|e| Error::Parse {
            path: dir.path("smaps_rollup"),
            source: e,
        })?
        .ok_or(Error::ProcessExited { pid })?;
    let status = status::parse(&dir.read("status")?).map_err(|e| Error::Parse {
        path: dir.path("status"),
        source: e,
    })?;
    Ok(crate::format::Sample {
        taken_at_unix_ns: now_ns(),
        rollup,
        page_table_bytes: status.bytes("VmPTE"),
    })
}

/// A fingerprint of the process's mappings (a hash of `/proc/PID/maps`):
/// when it has not changed, neither has the region list, and a recorder
/// can take a totals-only sample instead of a full snapshot.
pub fn maps_fingerprint(pid: u32, opts: &Options) -> Result<u32> {
    let dir = ProcDir::open(&opts.proc_root, pid)?;
    let text = dir.read("maps")?;
    if text.is_empty() {
        return Err(Error::ProcessExited { pid });
    }
    Ok(crc32fast::hash(&text))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What one pass over smaps gives: the VMAs as untyped regions, and the
/// smaps_rollup read while the kernel was producing them (when asked for).
struct SmapsRead {
    regions: Vec<Region>,
    present: u32,
    rollup: Option<Vec<u8>>,
}

/// Bytes handed from the reading thread to the parser at a time: each
/// hand-over can wake a sleeping thread (a futex call and a context switch
/// on each side), so they are few (170 for the 44 MB of 60,000 mappings).
const CHUNK: usize = 1 << 18;
/// Filled chunks waiting for the parser at most.
const QUEUED: usize = 4;
/// Bytes of smaps read before a reading thread is started: the smaps of
/// about 3,000 mappings fit, and are parsed without one. Starting and
/// joining the thread, its fresh chunk buffers and the hand-overs cost
/// about what the parse it hides costs at 2 to 3 MiB of text (the kernel
/// writes smaps about six times slower than it is parsed): at 882 mappings
/// (632 KiB), reading all of it here took 10% less wall time and 5% less
/// CPU than handing all but the first 256 KiB to a thread; at 5,500
/// (4 MiB) the thread was ahead.
const INLINE: usize = 1 << 21;
/// The buffer a small smaps is read through, a few of the kernel's
/// one-page reads at a time, and parsed as it comes: its pages are touched
/// again and again, where a buffer holding all of [`INLINE`] took a fresh
/// page (a page fault) for every 4 KiB of text, 45 faults for 280 mappings.
const STREAM: usize = 1 << 14;

/// Reads smaps on a second thread while this one parses it and reads
/// smaps_rollup: the kernel's work of generating smaps (about 3 µs per VMA)
/// is the floor of a snapshot, and the parse, the rollup and the
/// conversion hide behind it on the other core. The text (44 MB for 60,000
/// mappings) is never held whole: [`CHUNK`]-byte chunks are recycled. A small
/// smaps (at most [`INLINE`] bytes) is read and parsed on this thread,
/// [`STREAM`] bytes at a time.
fn read_smaps(dir: &ProcDir, with_rollup: bool) -> Result<SmapsRead> {
    let mut tries = 1;
    loop {
        match read_smaps_once(dir, with_rollup) {
            Ok(r) => return Ok(r),
            // Printed while the process changed it ([`SmapsParser::torn`]).
            Err((_, true)) if tries < TORN_TRIES => tries += 1,
            Err((e, _)) => return Err(e),
        }
    }
}

/// Reads of a smaps torn by the process's own changes before giving up: a
/// retry reads it whole again (a few milliseconds), and a process busy
/// remapping is rarely caught mid-change twice in a row.
const TORN_TRIES: u32 = 4;

/// One read of smaps ([`read_smaps`]); on failure, whether the text was
/// torn by a change of the process's mappings while it was printed.
fn read_smaps_once(
    dir: &ProcDir,
    with_rollup: bool,
) -> std::result::Result<SmapsRead, (Error, bool)> {
    let plain = |e: Error| (e, false);
    let read_rollup = || {
        if with_rollup {
            dir.read_optional("smaps_rollup")
        } else {
            Ok(None)
        }
    };
    let path = dir.path("smaps");
    let mut f = match dir.open_file("smaps") {
        Err(Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && dir.alive() =>
        {
            return Err(plain(Error::Unsupported {
                what: "/proc/PID/smaps".into(),
                hint: "the kernel was built without CONFIG_PROC_PAGE_MONITOR; vmmap needs it"
                    .into(),
            }))
        }
        r => r.map_err(plain)?,
    };
    let mut regions = Vec::new();
    let mut present = 0u32;
    let mut sink = |m: crate::proc::smaps::Mapping| {
        present |= m.fields.present;
        regions.push(Region::from_mapping(m));
    };
    let mut parser = SmapsParser::new();
    let mut parse_error = None;
    let mut eof = false;
    {
        let mut small = vec![0u8; STREAM];
        let mut read = 0;
        while !eof && read < INLINE {
            let len;
            (len, eof) = fill(&mut f, &mut small).map_err(|e| plain(dir.error(path.clone(), e)))?;
            read += len;
            if parse_error.is_none() {
                parse_error = parser.feed_with(&small[..len], &mut sink).err();
            }
        }
    }
    let (parse_error, rollup) = if eof {
        (parse_error, read_rollup())
    } else {
        std::thread::scope(|scope| {
            let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(QUEUED);
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let reader = scope.spawn(move || -> std::io::Result<()> {
                let mut f = f;
                loop {
                    let mut buf = empty_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                    let (len, _) = fill(&mut f, &mut buf)?;
                    if len == 0 || full_tx.send((buf, len)).is_err() {
                        return Ok(());
                    }
                }
            });
            let rollup = read_rollup();
            let mut parse_error = parse_error;
            for (buf, len) in full_rx {
                if parse_error.is_none() {
                    if let Err(e) = parser.feed_with(&buf[..len], &mut sink) {
                        parse_error = Some(e);
                    }
                }
                let _ = empty_tx.send(buf);
            }
            reader
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("smaps reader thread panicked")))
                .map_err(|e| dir.error(path.clone(), e))?;
            Ok::<_, Error>((parse_error, rollup))
        })
        .map_err(plain)?
    };
    if let Some(e) = parse_error {
        return Err((Error::Parse { path, source: e }, parser.torn()));
    }
    // The last line is a figure line: a header there is not torn.
    parser.finish_with(&mut sink).map_err(|e| {
        plain(Error::Parse {
            path: path.clone(),
            source: e,
        })
    })?;
    Ok(SmapsRead {
        regions,
        present,
        rollup: rollup.map_err(plain)?,
    })
}

/// Reads from `f` into `buf` until it is full to within a page (seq_file
/// returns about one page per read()) or the file ends; returns the length
/// read and whether the file ended.
fn fill(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<(usize, bool)> {
    let mut len = 0;
    while len + 4096 <= buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => return Ok((len, true)),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((len, false))
}

fn read_head(path: &Path) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    buf.truncate(n);
    Some(buf)
}

fn read_sys(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel))
        .ok()
        .map(|s| s.trim().to_string())
}

fn uname_release() -> String {
    // SAFETY: utsname is plain data; uname fills it in.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates `release` within the array.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The base page size.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// One past the highest user address, from the architecture and, where
/// the kernel can use larger address spaces on request (x86-64 5-level
/// paging, arm64 52-bit), from where the mappings actually are.
fn user_address_limit(elf: Option<&elf::ElfInfo>, maps: &[Region], page: u64) -> u64 {
    // The vsyscall page sits in the kernel half and bounds nothing.
    let top = maps
        .iter()
        .filter(|m| m.start < 1 << 63)
        .map(|m| m.end)
        .max()
        .unwrap_or(0);
    let base = match elf.map(|e| (e.class, e.machine)) {
        Some((32, _)) => 1u64 << 32,
        Some((_, 183)) => 1 << 48,
        _ => (1 << 47) - page,
    };
    if top <= base {
        base
    } else if top <= 1 << 52 {
        1 << 52
    } else {
        (1 << 56) - page
    }
}
