//! Command-line definitions (clap derive): the argument shapes and the
//! parsers of their values (enums, times, modes), so that a bad value is
//! clap's usage error. `main.rs` dispatches each command to its module,
//! which checks what depends on more than one argument.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
EXAMPLES:
  vmmap                         interactive: pick a process, browse its map
  vmmap -i $$                   interactive view of the shell you are typing in
  vmmap $$                      print the shell's map, as pmap does
  vmmap firefox -s              Summary only, for the one process named firefox
  vmmap 1234 -t heap,stack      Details of the heaps and stacks only
  vmmap 1234 --sort private     largest private regions first
  vmmap 1234 -c all             every column, the Linux ones too
  vmmap 1234 -o snap.json       JSON (schema vmmap.snapshot v1), by extension
  vmmap 1234 -o snap.vmmap      the native format; `vmmap open snap.vmmap` shows it
  vmmap open app.mmp            a Sysinternals VMMap file; `vmmap convert app.mmp a.json`
  vmmap 1234 -a 0x7ffd0000      which region holds an address, and its neighbours
  vmmap strings 1234 --min 8    text in the process's memory (may show secrets)
  vmmap find 1234 -E 'id=[0-9]+'  search its memory (text, --regex or --hex bytes)
  vmmap map 1234 -o map.svg     the fragmentation map, as a picture
  vmmap 1234 --empty-working-set   page it out, then watch its working set come back
  vmmap ps --sort ws            processes by working set
  vmmap top                     which processes' memory grows, live (--once for scripts)
  vmmap explain 'shareable ws'  what a column means, from kernel fields
  vmmap explain 1234 0xc000010000  why the region at that address has its type
  vmmap completions bash        shell completions (bash, zsh, fish, ...)
  vmmap manpage | man -l -      the man page

EXIT STATUS:
  0 success (also when the reader of the output goes away)
  1 other error           2 bad usage
  3 no such process       4 permission denied
  5 process exited while being read
  6 kernel thread (no address space)
  7 kernel lacks a needed /proc file or field
  8 name matches several processes
  9 unexpected /proc content
 10 cannot write the output
 11 not a vmmap or VMMap .mmp file (or a malformed one), a newer
    format or a trace format no release wrote, or no complete snapshot in it
 12 the program cannot be traced (static, setuid, own malloc, no agent)

Figures reconcile with the kernel: per-region sums equal /proc/PID/smaps_rollup.
`vmmap explain` prints every definition.";

/// VMMap for Linux: how a process uses its address space, by memory type.
///
/// Shows what Sysinternals VMMap shows (Image, Mapped File, Shareable, Heap,
/// Managed Heap, Stack, Private Data, Page Table, Free; Size, Committed,
/// Private and working-set figures) for a Linux process, plus the Linux
/// figures VMMap lacks (PSS, Swap, Dirty, THP, maximum protection...).
#[derive(Debug, Parser)]
#[command(name = "vmmap", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub snapshot: SnapshotArgs,

    /// Read a captured /proc tree instead of the live one (for bug reports
    /// and offline analysis).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/proc",
        hide_default_value = true
    )]
    pub proc_root: PathBuf,

    /// Colours in the interactive view: `auto` (none with NO_COLOR set or
    /// TERM=dumb; 24-bit with COLORTERM=truecolor, 256 with a
    /// TERM=*-256color, else 16), `always` or `never` (types are then
    /// told apart by fill characters).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        hide_default_value = true
    )]
    pub color: ColorWhen,
}

/// `vmmap [PID|NAME]... [OPTIONS]` parsed without building the
/// subcommands' argument definitions, which took a tenth of the start of
/// the binary (clap builds every subcommand's arguments before parsing).
/// `None` whenever that parse could differ from [`Cli`]'s: an argument
/// names a subcommand, or it fails (help, version and usage errors then
/// come from the full parse, word for word).
pub fn parse_snapshot() -> Option<Cli> {
    parse_snapshot_from(std::env::args_os().collect())
}

/// [`parse_snapshot`] of these arguments (the program's name first).
fn parse_snapshot_from(args: Vec<std::ffi::OsString>) -> Option<Cli> {
    use clap::{value_parser, Arg, FromArgMatches};
    let names_a_command = |a: &std::ffi::OsString| {
        a.to_str()
            .is_none_or(|a| a == "help" || <Command as Subcommand>::has_subcommand(a))
    };
    if args.iter().skip(1).any(names_a_command) {
        return None;
    }
    // The global arguments of `Cli`, with the same ids, parsers and
    // defaults (their help is the full parse's business).
    let cmd = clap::Command::new("vmmap")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("proc_root")
                .long("proc-root")
                .value_parser(value_parser!(PathBuf))
                .default_value("/proc"),
        )
        .arg(
            Arg::new("color")
                .long("color")
                .value_parser(value_parser!(ColorWhen))
                .default_value("auto"),
        );
    let m = <SnapshotArgs as Args>::augment_args(cmd)
        .try_get_matches_from(args)
        .ok()?;
    Some(Cli {
        command: None,
        snapshot: SnapshotArgs::from_arg_matches(&m).ok()?,
        proc_root: m.get_one::<PathBuf>("proc_root")?.clone(),
        color: *m.get_one::<ColorWhen>("color")?,
    })
}

/// When to use colours (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List processes with private bytes, working set and architecture.
    ///
    /// Reads only /proc/PID/status, cmdline and cgroup (as cheap as ps), so
    /// it is fast with thousands of processes. Private = RssAnon + VmSwap,
    /// WS = VmRSS. A process in a container shows its PID in the
    /// container's PID namespace (NSPID) and the container (CONTAINER).
    Ps(PsArgs),
    /// Which processes' memory grows, now: every process (or those of a
    /// cgroup or a container) with Private, WS, Swap (and PSS with --pss)
    /// and their growth over the last interval (+) and since vmmap started
    /// (Σ), fastest growing first, refreshed every --delay.
    ///
    /// Reads per process and refresh only stat and status, the counters ps
    /// reads, so a refresh costs less than `ps` does; --pss adds
    /// smaps_rollup, a walk of every page table.
    /// Keys: < > or F6 sort column, r reverse, / filter, Space or p
    /// pause, F5 refresh now, Enter opens the process's map, q quits.
    #[command(
        after_help = "EXAMPLES:\n  vmmap top                          the live view\n  vmmap top --once                   two samples a second apart, as a table\n  vmmap top --once --json -d 5s      the same over 5 seconds, as JSON\n  vmmap top --container 3f2b         the processes of one container\n  vmmap top --cgroup /system.slice   those of a cgroup and below it"
    )]
    Top(TopArgs),
    /// Record snapshots of a process over time into a .vmmap file.
    ///
    /// Every interval vmmap reads /proc/PID/maps (cheap) and compares it
    /// with the last full snapshot: if the mappings changed, or every Nth
    /// interval (--full-every), it records a full snapshot; otherwise only
    /// the totals from smaps_rollup and VmPTE. Ctrl+C (or SIGTERM) ends the
    /// file cleanly; so does the process exiting.
    Watch(WatchArgs),
    /// Print the totals of every snapshot and sample in a recording.
    Timeline(TimelineArgs),
    /// Compare two snapshots: by type (every column's delta) and by region
    /// (new, removed, grown, shrunk, moved, protection changed).
    ///
    /// A and B are each a .vmmap file (its last snapshot), FILE:N (its Nth
    /// snapshot), or a live PID or name. One file alone compares its first
    /// and last snapshots; one live process alone is snapshotted now and
    /// again after --after.
    Diff(DiffArgs),
    /// Show a saved file as a live process is shown: the native format
    /// (`-o FILE.vmmap`) or a Sysinternals VMMap `.mmp` file (told apart by
    /// their content, not the extension).
    Open(OpenArgs),
    /// Start a program with the tracing agent preloaded: every allocation
    /// and mapping call is recorded with its call stack, and the process's
    /// map is snapshotted at start, every --interval and at exit, all into
    /// one .vmmap file.
    ///
    /// The agent (libvmmap_agent.so) interposes the malloc family, mmap,
    /// munmap, mremap, mprotect, madvise, brk/sbrk, pthread_create,
    /// dlopen/dlclose, fork and exec. Children made by fork are not traced
    /// unless --follow-forks; a program that execs another keeps being
    /// traced in the same file. vmmap ends as the program did: its exit status, or its signal.
    ///
    /// Static binaries, setuid/setgid or file-capability programs and
    /// programs that define their own malloc cannot be traced through
    /// LD_PRELOAD: vmmap refuses them and --snapshot-only records the
    /// snapshots alone.
    #[command(
        after_help = "EXAMPLES:\n  vmmap run -- ./server --port 8080\n  vmmap run -o build.vmmap --interval 500ms -- make -j2\n  vmmap run --snapshot-only -- ./static-binary\n  vmmap trace build.vmmap             what the run recorded"
    )]
    Run(RunArgs),
    /// Trace a running process from now on: every allocation and mapping
    /// call with its stack, and its map at attach, every --interval and at
    /// detach, into one .vmmap file (the format of `vmmap run`).
    ///
    /// One thread of the process is stopped for a few milliseconds while
    /// it loads the agent (no debugger is used); the agent hooks the
    /// program's calls by rewriting their relocation slots. vmmap detaches
    /// on Ctrl+C, after --duration, or when the process exits; killed,
    /// the agent notices within two seconds and removes its hooks by
    /// itself. The process keeps running as it was. Blocks allocated
    /// before the attach are unknown: their frees are counted apart.
    ///
    /// A process under seccomp has its filters read and run first on
    /// every system call the attach would make in it: one that a filter
    /// would kill (or trap) refuses the attach, naming the call, before
    /// anything runs in the process. If the process puts itself under
    /// such a filter later, the agent detaches first.
    #[command(
        after_help = "EXAMPLES:\n  vmmap attach 1234 --duration 30s\n  vmmap attach 1234 -o server.vmmap      (Ctrl+C detaches)\n  vmmap trace server.vmmap calltree"
    )]
    Attach(AttachArgs),
    /// Show what a traced run (`vmmap run`) recorded: totals, or every
    /// operation in time order.
    Trace(TraceArgs),
    /// Convert a saved file to another format, chosen by OUT's extension:
    /// .vmmap, .mmp, .json, .csv or .txt.
    ///
    /// IN is a .vmmap or VMMap .mmp file (JSON and CSV are export formats
    /// and cannot be read back). .vmmap and .mmp outputs get every
    /// snapshot of IN (or the one --snapshot picks; a recording's
    /// totals-only samples are not converted); the others get the last
    /// one. docs/mmp.md says what does not survive a conversion to or from
    /// .mmp.
    Convert(ConvertArgs),
    /// Print the text strings in a process's memory, with their address
    /// and the type of their region.
    ///
    /// This reads the process's memory, which may hold passwords, keys and
    /// tokens: the output can contain them. Needs ptrace access to the
    /// process (same user and a dumpable process, or CAP_SYS_PTRACE).
    /// Unreadable mappings, device (I/O, PFN) mappings, the kernel's vvar
    /// pages and untouched anonymous memory are skipped.
    Strings(StringsArgs),
    /// Search a process's memory for text, a regular expression or bytes,
    /// printing each match's address, region and type.
    ///
    /// The pattern is literal text by default (its UTF-8 bytes); --regex
    /// makes it a regular expression (Rust regex syntax, over bytes), and
    /// --hex gives bytes instead. Matches that cross a page or read-chunk
    /// boundary are found; a regex match longer than 4096 bytes that crosses
    /// a 1 MiB chunk boundary is reported cut there. Memory is read 1 MiB
    /// at a time, whatever the size of the process; on a terminal a
    /// progress line shows on standard error. Like `strings`, this reads
    /// the process's memory, secrets included.
    Find(FindArgs),
    /// The fragmentation map: the whole address space, regions and free
    /// gaps, on a compressed axis, with the gap count and the largest free
    /// block.
    ///
    /// Without -o it prints the figures and every region and gap with its
    /// place on the axis; `-o FILE.svg` draws it (coloured by type, a
    /// tooltip per region); --json gives the layout as data. The axis gives
    /// each region and gap 16 units per doubling of its size, so a 4 KiB
    /// page stays visible beside a 100 TiB gap (docs/memory-tools.md).
    Map(MapArgs),
    /// Write a single-file HTML report: bar graphs, Summary, Details, the
    /// timeline and a diff of any two snapshots (for a recording), and the
    /// fragmentation map.
    ///
    /// TARGET is a .vmmap recording or VMMap .mmp file (every snapshot and
    /// sample in it), or a live PID or process name (snapshotted now). The
    /// file opens in any browser and loads nothing from the network
    /// (docs/report.md).
    #[command(
        after_help = "EXAMPLES:\n  vmmap report 1234 -o report.html\n  vmmap report recording.vmmap -o recording.html"
    )]
    Report(ReportArgs),
    /// Show or reset the terminal UI's settings (colours, columns, units).
    Config {
        /// `show` (default), `path`, or `reset` to restore the defaults.
        #[arg(value_enum, default_value = "show")]
        action: ConfigAction,
    },
    /// Print the definition of a memory type or column (all without an
    /// argument), or with a process and an address, why the region holding
    /// that address has its type: the rules that fired, their evidence and
    /// confidence.
    Explain {
        /// A type (heap, "mapped file", ...) or a column (pss, "total ws",
        /// ...); with ADDRESS, the process (a PID or a name).
        topic: Option<String>,
        /// An address in the process (hex, `0x` optional).
        address: Option<String>,
    },
    /// Print OpenMetrics text (Prometheus) of processes: per type, Size,
    /// Committed, Private, working set, PSS and Swap in bytes.
    ///
    /// For node_exporter's textfile collector: `vmmap metrics --all -o
    /// /var/lib/node_exporter/vmmap.prom` (written to a temporary file and
    /// renamed, so the collector never reads half a file). Processes that
    /// exit or cannot be read are counted in
    /// vmmap_scrape_skipped_processes, never an error.
    /// docs/metrics-export.md lists the metric names.
    Metrics(MetricsArgs),
    /// Serve the metrics over HTTP at /metrics for Prometheus to scrape,
    /// collecting on demand, one scrape at a time, within --budget-ms.
    Serve(ServeArgs),
    /// Print a shell completion script to standard output.
    ///
    /// bash: `vmmap completions bash > ~/.local/share/bash-completion/completions/vmmap`;
    /// zsh: `vmmap completions zsh > ~/.zfunc/_vmmap` (with ~/.zfunc in
    /// fpath); fish: `vmmap completions fish > ~/.config/fish/completions/vmmap.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output, or with --dir write
    /// vmmap.1 and one page per subcommand (vmmap-ps.1, ...) into DIR.
    ///
    /// `vmmap manpage | man -l -` shows it without installing it.
    Manpage {
        /// Write every page into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Which processes `metrics` and `serve` collect, and how.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Processes: PIDs or names (a name matching several processes
    /// selects them all).
    #[arg(value_name = "PID|NAME", required_unless_present = "all")]
    pub targets: Vec<String>,

    /// Every process vmmap may read, largest working set first (processes
    /// of other users count as skipped `permission` without root).
    #[arg(long, conflicts_with = "targets")]
    pub all: bool,

    /// Collect at most N processes; the rest (with --all, the smallest by
    /// working set) count as skipped `limit`. Bounds the label
    /// cardinality: each process is 6 metrics x 8 types.
    #[arg(long, default_value = "100", value_name = "N")]
    pub max_processes: usize,

    /// Answer after at most this many milliseconds with what was read;
    /// the rest count as skipped `budget` and vmmap_scrape_truncated is 1
    /// (serve: 5000 by default; metrics: no limit).
    #[arg(long, value_name = "MS")]
    pub budget_ms: Option<u64>,

    /// Accepted and ignored: metrics and serve never stop a thread with
    /// ptrace (a running thread's stack may count as Private Data).
    #[arg(long)]
    pub no_ptrace: bool,

    /// Never read the targets' memory.
    #[arg(long)]
    pub no_read_memory: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Write to FILE (atomically: a temporary file renamed into place,
    /// owner and mode kept; a device or FIFO written in place) instead of
    /// standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port; the address
    /// is printed on standard error), or unix:PATH for a unix socket.
    /// Anyone who can connect reads the figures of every process the
    /// server can read (docs/metrics-export.md).
    #[arg(
        long,
        default_value = "127.0.0.1:9897",
        value_name = "ADDR:PORT|unix:PATH"
    )]
    pub listen: String,

    /// File mode of the unix socket (octal): who may connect.
    #[arg(long, default_value = "0660", value_name = "MODE", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// Group of the unix socket (default: the group of the user starting
    /// vmmap).
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Prometheus exporter web configuration (YAML, as exporter-toolkit's
    /// --web.config.file): tls_server_config (cert_file, key_file) and
    /// basic_auth_users (user: bcrypt hash).
    #[arg(long, value_name = "FILE")]
    pub web_config: Option<PathBuf>,

    /// When started as root: after binding, run as this user, keeping only
    /// CAP_SYS_PTRACE (what reading other users' smaps needs).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Args)]
pub struct StringsArgs {
    /// The process: a PID, or a name that matches exactly one process.
    #[arg(value_name = "PID|NAME")]
    pub target: String,

    /// Shortest string reported, in characters.
    #[arg(short = 'n', long, default_value = "4", value_name = "N")]
    pub min: usize,

    /// ascii (7-bit only, as strings), utf8 (ASCII and multi-byte UTF-8),
    /// utf16le (as strings -el, at any alignment) or all (utf8 and
    /// utf16le).
    #[arg(
        short,
        long,
        value_enum,
        ignore_case = true,
        default_value = "all",
        value_name = "ENCODING"
    )]
    pub encoding: Encoding,

    /// Only the region holding this address (hex), as in the Details.
    #[arg(long, value_name = "ADDR")]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// The process: a PID, or a name that matches exactly one process.
    #[arg(value_name = "PID|NAME")]
    pub target: String,

    /// What to look for: text (default) or, with --regex, a regular
    /// expression.
    #[arg(value_name = "PATTERN", required_unless_present = "hex")]
    pub pattern: Option<String>,

    /// PATTERN is a regular expression (`(?-u)` for raw bytes: `\xff`).
    #[arg(short = 'E', long)]
    pub regex: bool,

    /// Look for these bytes instead: hex pairs, spaces optional
    /// ("de ad be ef").
    #[arg(short = 'x', long, value_name = "BYTES", conflicts_with_all = ["pattern", "regex"])]
    pub hex: Option<String>,

    /// Ignore ASCII and Unicode case (text and regex).
    #[arg(short, long, conflicts_with = "hex")]
    pub ignore_case: bool,

    /// Only the region holding this address (hex).
    #[arg(long, value_name = "ADDR")]
    pub region: Option<String>,

    /// Print only the number of matches.
    #[arg(short, long)]
    pub count: bool,

    /// Stop after N matches.
    #[arg(short, long, value_name = "N")]
    pub max: Option<u64>,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    /// The process: a PID, or a name that matches exactly one process.
    #[arg(value_name = "PID|NAME")]
    pub target: String,

    /// Write the picture to FILE (.svg or .png; `-`: SVG on standard output).
    #[arg(short, long, value_name = "FILE", conflicts_with = "json")]
    pub output: Option<PathBuf>,

    /// Print the layout as JSON (schema vmmap.layout, version 1).
    #[arg(long)]
    pub json: bool,

    /// Exact byte counts instead of K/M/G.
    #[arg(long)]
    pub bytes: bool,

    /// Also the allocator fragmentation of each glibc heap (brk heap and
    /// arenas): in-use and free chunks against resident memory, and
    /// macOS's %FRAG. Reads the heaps' memory (ptrace access needed).
    #[arg(long, conflicts_with = "output")]
    pub heaps: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Sort by pid, user, name, private, ws or arch.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value = "pid",
        value_name = "COLUMN"
    )]
    pub sort: PsSort,
    /// Only the processes of a container or pod: a prefix of its id or pod
    /// UID, or its name as shown (docker:3f2b..., nspawn:web).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Reverse the order.
    #[arg(short, long)]
    pub reverse: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exact byte counts instead of K/M/G.
    #[arg(long)]
    pub bytes: bool,
    /// Do not cut COMMAND at the terminal's width (output to a file or a
    /// pipe is never cut).
    #[arg(short, long)]
    pub wide: bool,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes (and between the two samples of --once).
    #[arg(short, long, default_value = "1s", value_name = "TIME", value_parser = parse_delay)]
    pub delay: Duration,
    /// Only the processes of this cgroup and below it (as /proc/PID/cgroup
    /// writes it, or under /sys/fs/cgroup).
    #[arg(long, value_name = "PATH", conflicts_with = "container")]
    pub cgroup: Option<String>,
    /// Only the processes of a container or pod: a prefix of its id or pod
    /// UID, or its name as shown (docker:3f2b..., nspawn:web).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Only the processes whose name, command line, user, container or PID
    /// holds this text (what `/` filters by in the live view).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Sort column: growth (private's, the default), private, ws, pss,
    /// swap, a figure's growth (ws-growth...) or growth since the start
    /// (private-total...), pid, name.
    #[arg(long, default_value = "growth", value_name = "COLUMN", value_parser = parse_top_column)]
    pub sort: vmmap_core::top::Column,
    /// Reverse the order.
    #[arg(short, long)]
    pub reverse: bool,
    /// Print one table, from two samples --delay apart, and exit (for
    /// scripts).
    #[arg(long)]
    pub once: bool,
    /// Print JSON (schema vmmap.top v1) instead of a table; implies --once.
    #[arg(long)]
    pub json: bool,
    /// Print a table (or a JSON document, one per line) after each of N
    /// refreshes, then exit, as `top -b -n N` does; --once is -n 1.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: Option<u32>,
    /// Exact byte counts instead of K/M/G.
    #[arg(long)]
    pub bytes: bool,
    /// Read PSS too (from smaps_rollup): a walk of every process's page
    /// tables, which on a host of large processes makes a refresh cost
    /// about ten times what it does without.
    #[arg(long)]
    pub pss: bool,
    /// With --once or -n on a terminal, print every column and COMMAND
    /// whole instead of fitting the terminal's width (output to a file or
    /// a pipe is never cut).
    #[arg(short, long)]
    pub wide: bool,
}

/// A `top --sort` column ([`vmmap_core::top::Column::parse`]).
pub fn parse_top_column(s: &str) -> Result<vmmap_core::top::Column, String> {
    vmmap_core::top::Column::parse(s).ok_or_else(|| {
        let keys: Vec<String> = vmmap_core::top::Column::ORDER
            .iter()
            .map(|c| c.key())
            .collect();
        format!("not a column; one of growth, {}", keys.join(", "))
    })
}

/// A refresh delay: a time of at least 10 ms, so that a typo (`0`) does
/// not make a loop that reads every process without pause.
pub fn parse_delay(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err("at least 10ms".into());
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The process: a PID, or a name (command name, argv[0] or executable
    /// file name) that matches exactly one process.
    #[arg(value_name = "PID|NAME")]
    pub target: Option<String>,

    /// More processes (PIDs or names): with them vmmap prints a combined
    /// Summary, pages mapped by several of the processes counted once,
    /// and each process's own totals (docs/sharing.md).
    #[arg(value_name = "PID|NAME", conflicts_with_all = ["interactive", "address"])]
    pub more: Vec<String>,

    /// With the process: also its descendants, combined as with several
    /// PIDs.
    #[arg(long, conflicts_with_all = ["interactive", "address"])]
    pub children: bool,

    /// The processes of a cgroup (a directory with cgroup.procs, absolute
    /// or relative to /sys/fs/cgroup), combined as with several PIDs.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["interactive", "address"])]
    pub cgroup: Option<PathBuf>,

    /// How Shareable and Shared WS are computed: `fast` from smaps
    /// (default); `exact` from the page tables, page by page (pagemap);
    /// `kpagecount` like exact but each shared page's mapcount read from
    /// /proc/kpagecount (root). docs/sharing.md gives the cost.
    #[arg(long, value_enum, value_name = "HOW", default_value = "fast")]
    pub sharing: SharingMode,

    /// Expand each image into its ELF sections (.text, .rodata, .data,
    /// .bss, ...) with per-section resident and private figures from
    /// pagemap.
    #[arg(long)]
    pub sections: bool,

    /// With --address: list the other processes that map the same physical
    /// pages as the region there, with page counts (root only).
    #[arg(long, requires = "address")]
    pub shared_with: bool,

    /// The process, by PID (when its name could be mistaken for a command).
    #[arg(short, long, conflicts_with_all = ["target", "name"])]
    pub pid: Option<u32>,

    /// The process, by name (when it is called `ps` or `explain`).
    #[arg(short, long, conflicts_with = "target")]
    pub name: Option<String>,

    /// Open the interactive view (the process picker without a PID or
    /// name). `vmmap` alone on a terminal does the same.
    ///
    /// In the picker, Insert or Ctrl+T marks processes and Enter opens
    /// their combined view: the bars and the Summary of their sum and a
    /// row per process, which Enter opens (Esc comes back). `?` lists
    /// every key.
    #[arg(short, long)]
    pub interactive: bool,

    #[command(flatten)]
    pub display: DisplayArgs,

    #[command(flatten)]
    pub read: ReadArgs,

    /// Show the region that holds this address (hex, `0x` optional): its
    /// type, protection, path, figures and the offset within it, with the
    /// regions before and after it (or the free gap it falls in).
    #[arg(short, long, value_name = "ADDR", conflicts_with = "interactive")]
    pub address: Option<String>,

    /// Empty the process's working set (VMMap's Empty Working Set): page
    /// out every mapping the kernel allows with process_madvise
    /// MADV_PAGEOUT, then print the working set (Rss) once a second for
    /// --samples seconds as it comes back. Clean file pages are dropped;
    /// anonymous pages go to swap (and stay without swap). Needs
    /// CAP_SYS_NICE and Linux 5.10+. This slows the process down while it
    /// faults its pages back in.
    #[arg(long, conflicts_with_all = ["interactive", "address"])]
    pub empty_working_set: bool,

    /// With --empty-working-set: `madvise` pages out this process's own
    /// mappings (process_madvise, the default); `cgroup` writes to its cgroup
    /// v2 memory.reclaim (Linux 5.19+), which reclaims from every process in
    /// that cgroup and its page cache.
    #[arg(
        long,
        value_name = "METHOD",
        value_enum,
        default_value = "madvise",
        requires = "empty_working_set"
    )]
    pub reclaim: Reclaim,

    /// With --empty-working-set: how many one-second samples to print
    /// after paging out.
    #[arg(
        long,
        value_name = "N",
        default_value = "5",
        requires = "empty_working_set"
    )]
    pub samples: u32,
}

/// `vmmap config` actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigAction {
    Show,
    Path,
    Reset,
}

/// `vmmap strings --encoding`: the spellings `strings(1)` users type are
/// accepted too (`utf-8`, `utf16`, `unicode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    Ascii,
    #[value(alias = "utf-8")]
    Utf8,
    #[value(
        alias = "utf-16le",
        alias = "utf16",
        alias = "utf-16",
        alias = "unicode"
    )]
    Utf16le,
    All,
}

impl Encoding {
    /// The lanes the scanner runs.
    pub fn encodings(self) -> vmmap_core::memory::strings::Encodings {
        use vmmap_core::memory::strings::Encodings;
        let none = Encodings {
            utf8: false,
            ascii_only: false,
            utf16le: false,
        };
        match self {
            Encoding::Ascii => Encodings {
                utf8: true,
                ascii_only: true,
                ..none
            },
            Encoding::Utf8 => Encodings { utf8: true, ..none },
            Encoding::Utf16le => Encodings {
                utf16le: true,
                ..none
            },
            Encoding::All => Encodings::ALL,
        }
    }
}

/// `vmmap ps --sort`: a column, by its header or its JSON field name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PsSort {
    Pid,
    User,
    Name,
    #[value(alias = "private_bytes")]
    Private,
    #[value(alias = "working_set", alias = "rss")]
    Ws,
    #[value(alias = "architecture")]
    Arch,
}

/// `--empty-working-set --reclaim`: how the memory is taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Reclaim {
    // (No doc comments on the values: the option's help says what each
    // does, and clap would list them a second time.)
    Madvise,
    Cgroup,
}

/// `vmmap run --unwind`: how the agent captures call stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Unwind {
    Dwarf,
    Fp,
}

/// `vmmap trace --metric`: the figure that ranks the call tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceMetric {
    Allocated,
    Count,
    Live,
    Peak,
    Temporary,
}

impl TraceMetric {
    /// The name as typed, which the trace crate's `Metric::parse` reads.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceMetric::Allocated => "allocated",
            TraceMetric::Count => "count",
            TraceMetric::Live => "live",
            TraceMetric::Peak => "peak",
            TraceMetric::Temporary => "temporary",
        }
    }
}

/// `vmmap trace FILE VIEW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceView {
    Summary,
    History,
    Regions,
    Calltree,
    Leaks,
    Allocations,
    Heap,
    Folded,
    Flamegraph,
    Pprof,
    Speedscope,
}

impl TraceView {
    /// The name on the command line, as messages and file names use it.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceView::Summary => "summary",
            TraceView::History => "history",
            TraceView::Regions => "regions",
            TraceView::Calltree => "calltree",
            TraceView::Leaks => "leaks",
            TraceView::Allocations => "allocations",
            TraceView::Heap => "heap",
            TraceView::Folded => "folded",
            TraceView::Flamegraph => "flamegraph",
            TraceView::Pprof => "pprof",
            TraceView::Speedscope => "speedscope",
        }
    }
}

impl std::fmt::Display for TraceView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How Shareable and Shared WS are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SharingMode {
    /// From smaps fields: as cheap as the snapshot itself.
    Fast,
    /// From pagemap page by page (bits 56, 61, 62, 63).
    Exact,
    /// As exact, Shared WS from kpagecount (root only).
    Kpagecount,
}

/// How a live process is read, for `vmmap PID` and `vmmap watch`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Never stop a running thread with ptrace to find its stack. Stacks
    /// of running threads are first found by their glibc thread control
    /// block, which stops nothing; without it a stack is typed by shape
    /// alone, or shows as Private Data.
    #[arg(long)]
    pub no_ptrace: bool,

    /// At most this long in all, per snapshot, for the ptrace interrupts of
    /// running threads whose stacks were not found otherwise (0: none);
    /// threads not reached by then are named in a warning, never waited for.
    #[arg(long, value_name = "MS", default_value_t = vmmap_core::collect::DEFAULT_PTRACE_BUDGET_MS)]
    pub ptrace_budget_ms: u64,

    /// Never read the target's memory (glibc arena headers are then
    /// recognised by layout alone, thread stacks by their shape).
    #[arg(long)]
    pub no_read_memory: bool,
}

impl ReadArgs {
    /// The collection options these ask for, reading `proc_root`.
    pub fn options(&self, proc_root: &std::path::Path) -> vmmap_core::collect::Options {
        vmmap_core::collect::Options::default()
            .proc_root(proc_root)
            .ptrace(!self.no_ptrace)
            .ptrace_budget(Duration::from_millis(self.ptrace_budget_ms))
            .read_memory(!self.no_read_memory)
    }
}

/// How a snapshot is shown, live or loaded from a file.
#[derive(Debug, Args)]
pub struct DisplayArgs {
    /// Print the Summary only, not the Details.
    #[arg(short, long)]
    pub summary: bool,

    /// Show free address-space gaps in the Details (and their row in JSON/CSV).
    #[arg(short, long)]
    pub free: bool,

    /// Show only regions of these types in the Details (comma-separated:
    /// image, mapped_file, shareable, heap, managed_heap, stack,
    /// private_data, free).
    #[arg(short, long, value_name = "TYPES", value_delimiter = ',')]
    pub r#type: Vec<String>,

    /// Sort the Details by a column (any figure, or address, type, details,
    /// protection). Figures sort largest first.
    #[arg(long, value_name = "COLUMN", default_value = "address")]
    pub sort: String,

    /// Reverse the sort order.
    #[arg(short, long)]
    pub reverse: bool,

    /// Columns to show: `vmmap` (VMMap's own), `linux` (PSS, Swap, Dirty,
    /// ...), `all`, or a comma-separated list of column names.
    #[arg(short, long, value_name = "COLUMNS", default_value = "default")]
    pub columns: String,

    /// Show sub-blocks (image segments, stack guards) folded into their
    /// region.
    #[arg(long)]
    pub no_sub_blocks: bool,

    /// Exact byte counts instead of K/M/G.
    #[arg(long)]
    pub bytes: bool,

    /// Every column and whole lines on a terminal too. By default the text
    /// fits the terminal's width (`COLUMNS` overrides it): figure columns
    /// give way by importance, paths keep their file name. Output to a
    /// file or a pipe is never cut.
    #[arg(short, long)]
    pub wide: bool,

    /// Print JSON (schema `vmmap.snapshot`, version 1; see docs/output-formats.md).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print CSV: one row per region and sub-block (with --summary, per type).
    #[arg(long)]
    pub csv: bool,

    /// Write to FILE instead of standard output; the format follows the
    /// extension (.vmmap native, .mmp VMMap's XML, .json, .csv, .txt)
    /// unless --json or --csv is given; `-` for standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A .vmmap or .mmp file, or a live PID or process name.
    pub target: String,

    /// The report to write (.html; `-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// A file saved with `-o FILE.vmmap` (the native format,
    /// docs/format.md), or a VMMap .mmp file (docs/mmp.md).
    pub file: PathBuf,

    /// Which snapshot of the file, from 1 (default: the last).
    #[arg(long, value_name = "N")]
    pub snapshot: Option<usize>,

    /// Open it in the interactive view.
    #[arg(short, long)]
    pub interactive: bool,

    /// On a traced run's file, leave out the Owner column (who made each
    /// region), which costs a read of the whole trace.
    #[arg(long)]
    pub no_owners: bool,

    #[command(flatten)]
    pub display: DisplayArgs,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The input: a .vmmap or .mmp file.
    #[arg(value_name = "IN")]
    pub input: PathBuf,

    /// The output; its extension picks the format.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// Convert only this snapshot of IN, from 1.
    #[arg(long, value_name = "N")]
    pub snapshot: Option<usize>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The process: a PID, or a name that matches exactly one process.
    #[arg(value_name = "PID|NAME")]
    pub target: String,

    /// Time between records: 500ms, 1s, 2m, … (a bare number is seconds).
    #[arg(long, default_value = "1s", value_name = "TIME", value_parser = parse_duration)]
    pub interval: Duration,

    /// Stop after N records.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub count: Option<u64>,

    /// Stop after this long (500ms, 30s, 5m, 1h).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Take a full snapshot at least every N records even if the mappings
    /// did not change (1: always full).
    #[arg(long, default_value = "10", value_name = "N")]
    pub full_every: u64,

    /// The recording (native format; `vmmap open`, `vmmap timeline` read it;
    /// `-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// A recording made by `vmmap watch` (or any .vmmap file).
    pub file: PathBuf,

    /// Print CSV (one row per record).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,

    /// Print JSON (schema vmmap.timeline, version 1).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier snapshot: FILE, FILE:N, PID or NAME.
    pub a: String,

    /// The later snapshot: FILE, FILE:N, PID or NAME.
    pub b: Option<String>,

    /// With one live process: how long to wait between the two snapshots.
    #[arg(long, default_value = "5s", value_name = "TIME", value_parser = parse_duration)]
    pub after: Duration,

    /// With one live process: also report which regions had pages written
    /// in between, from the kernel's soft-dirty bits. This clears the
    /// process's soft-dirty bits (echo 4 > /proc/PID/clear_refs), which
    /// costs it one extra page fault per page it then writes, and resets
    /// what any other soft-dirty user (CRIU) tracks.
    #[arg(long)]
    pub written: bool,

    /// Print JSON (schema vmmap.diff, version 1).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print CSV: a row per type, then a row per region change.
    #[arg(long)]
    pub csv: bool,

    /// Exact byte counts instead of K/M/G.
    #[arg(long)]
    pub bytes: bool,

    /// Write to FILE (.json, .csv or .txt) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The process to attach to.
    #[arg(value_name = "PID")]
    pub pid: i32,

    /// The trace file (default: NAME.PID.YYYYMMDD-HHMMSS.vmmap here).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Detach after this long (default: on Ctrl+C or when the process
    /// exits).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Time between snapshots of the process's map (0 for none). One is
    /// also taken at attach and one at detach.
    #[arg(short, long, default_value = "1s", value_name = "TIME", value_parser = parse_duration)]
    pub interval: Duration,

    /// How call stacks are captured (as `vmmap run --unwind`).
    #[arg(long, value_enum, default_value = "dwarf")]
    pub unwind: Unwind,

    /// The agent library (default: $VMMAP_AGENT, or libvmmap_agent.so next
    /// to the vmmap binary or in ../lib/vmmap/).
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The trace file (default: PROGRAM.YYYYMMDD-HHMMSS.vmmap here).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Time between snapshots of the process's map during the run (500ms,
    /// 1s, 2m; 0 for none). One is also taken right after the program
    /// starts and one at its exit, whatever this is.
    #[arg(short, long, default_value = "1s", value_name = "TIME", value_parser = parse_duration)]
    pub interval: Duration,

    /// How call stacks are captured: `dwarf` (from .eh_frame; right for any
    /// code) or `fp` (frame pointers; faster, but only right when the
    /// program and its libraries all keep frame pointers).
    #[arg(long, value_enum, default_value = "dwarf")]
    pub unwind: Unwind,

    /// Also trace children made by fork, each into FILE-STEM.PID.vmmap.
    #[arg(long)]
    pub follow_forks: bool,

    /// Do not preload the agent: record the interval snapshots only.
    #[arg(long)]
    pub snapshot_only: bool,

    /// Load the agent even when vmmap itself runs under seccomp (a
    /// container's or a service's filter), which the program inherits and
    /// no filtered process can read: then vmmap cannot tell whether the
    /// filter would kill the program at a call of the agent's, and by
    /// default leaves the agent out (snapshots only). Right where the
    /// filter answers refused calls with an error, as Docker's default
    /// profile does; fatal for the program where it kills them.
    #[arg(long, conflicts_with = "snapshot_only")]
    pub seccomp_unchecked: bool,

    /// Take no snapshot at exit, so that the program is not traced with
    /// ptrace while it runs (a debugger can attach to it; run as a user
    /// other than root, a set-user-ID program it execs in place keeps its
    /// privileges). The snapshot right after exec is still taken.
    #[arg(long)]
    pub no_exit_snapshot: bool,

    /// The agent library (default: $VMMAP_AGENT, or libvmmap_agent.so next
    /// to the vmmap binary or in ../lib/vmmap/).
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,

    /// Run the program in this directory.
    #[arg(short = 'C', long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Print no summary at the end.
    #[arg(short, long)]
    pub quiet: bool,

    /// Once the program has ended, tie every free to the block it frees,
    /// in the file: later call trees, leak lists and exports of the file
    /// take about half the time. It costs one more pass over the trace
    /// while you wait (about 0.15 s of CPU per million operations), which
    /// is why it is not the default.
    #[arg(long)]
    pub resolve_frees: bool,

    /// The program and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A file written by `vmmap run`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// What to show:
    /// `summary` (operation counts, bytes, peak, what is still allocated);
    /// `history` (every operation in time order);
    /// `regions` (every mapping of the last recorded map with the call that
    /// made it; glibc's internal mappings tied to the allocation behind them);
    /// `calltree` (bytes, calls, live and peak bytes and temporary
    /// allocations per function, callers first, or allocation sites first
    /// with --bottom-up);
    /// `leaks` (blocks never freed, grouped by call stack);
    /// `allocations` (with --region: the blocks inside one region and the
    /// stacks that made them);
    /// `heap` (per region at the last recorded snapshot: live bytes,
    /// malloc overhead, free space, resident and untouched pages);
    /// `folded`, `flamegraph`, `pprof`, `speedscope` (exports for other
    /// tools; -o chooses the file).
    #[arg(value_enum, default_value = "summary")]
    pub view: TraceView,

    /// The figure that ranks the call tree and weighs exports: allocated
    /// (bytes requested), count (calls), live (bytes not freed), peak
    /// (bytes live at the heap's peak) or temporary.
    #[arg(long, value_name = "FIGURE", value_enum)]
    pub metric: Option<TraceMetric>,

    /// Call tree: allocation sites at the top, their callers below.
    #[arg(long)]
    pub bottom_up: bool,

    /// Call tree and exports: one entry per source line, not per function.
    #[arg(long)]
    pub lines: bool,

    /// Call tree: levels to show (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub depth: usize,

    /// Call tree: hide entries below this share of the total (percent).
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub min_percent: f64,

    /// Leaks and allocations: call stacks to list (0: all).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,

    /// Allocations: the region holding this address (hex), from the last
    /// map the agent recorded.
    #[arg(long, value_name = "ADDR")]
    pub region: Option<String>,

    /// Analyse the run up to this many seconds after it started (live
    /// bytes and leaks as of then; for regions, the map recorded by then).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub at: Option<f64>,

    /// A directory to look for symbols in (debug files by build id under
    /// .build-id/, or files of the module's name); repeatable. Also
    /// $VMMAP_SYMBOL_PATH (colon-separated). /usr/lib/debug is always used.
    #[arg(long = "symbols", value_name = "DIR")]
    pub symbol_dirs: Vec<PathBuf>,

    /// Do not store resolved symbols in the trace file (by default they
    /// are appended to it, so the next analysis needs no debug files).
    #[arg(long)]
    pub no_symbol_cache: bool,

    /// Exports: the file to write (default: FILE's name with the
    /// export's extension; `-` for standard output).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// History: only these operations (comma-separated: malloc, free,
    /// mmap, ...).
    #[arg(long, value_name = "OPS", value_delimiter = ',')]
    pub op: Vec<String>,

    /// History: only operations at or after this many seconds (from the
    /// first operation).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub from: Option<f64>,

    /// History: only operations before this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub to: Option<f64>,

    /// History: only this thread.
    #[arg(long, value_name = "TID")]
    pub tid: Option<i32>,

    /// History: only operations on memory holding this address (hex): the
    /// allocation that covers it and its free, the mapping calls on its
    /// range. With --stacks, who allocated it.
    #[arg(short, long, value_name = "ADDR")]
    pub address: Option<String>,

    /// History and regions: print each call stack (raw return addresses).
    #[arg(long)]
    pub stacks: bool,

    /// Print JSON (the history as one object per line, with stacks).
    #[arg(long)]
    pub json: bool,

    /// Whole lines on a terminal too (by default the text views cut lines
    /// at the terminal's width, `COLUMNS` overriding it; output to a file
    /// or a pipe is never cut).
    #[arg(long)]
    pub wide: bool,
}

/// A span of time on the command line: a bare number of seconds (`2`,
/// `0.3`), or what jiff parses as a `SignedDuration`: its friendly format
/// (`500ms`, `1.5s`, `2m`, `1h`, `1h 30m`, `2 minutes`) or ISO 8601
/// (`PT5M`). Negative spans are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let wrong = || "not a time such as 500ms, 1.5s, 2m or 1h".to_string();
    let seconds = match s.parse::<f64>() {
        // `f64` also takes `inf` and `NaN`: not times.
        Ok(n) if n.is_finite() && n >= 0.0 => {
            return Duration::try_from_secs_f64(n).map_err(|_| wrong())
        }
        Ok(_) => return Err(wrong()),
        Err(_) => s.parse::<jiff::SignedDuration>().map_err(|_| wrong())?,
    };
    Duration::try_from(seconds).map_err(|_| wrong())
}

/// Parses a `--socket-mode` such as `0660`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 0660"))
}

/// [`parse_duration`], in seconds (the trace's time options).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    parse_duration(s).map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s| parse_duration(s).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2"), Duration::from_secs(2));
        assert_eq!(ok("0.3"), Duration::from_millis(300));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("2min"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("PT5M"), Duration::from_secs(300));
        for bad in ["-1s", "-1", "inf", "NaN", "soon", "", "1 parsec"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_seconds("300ms"), Ok(0.3));
    }
}

#[cfg(test)]
mod snapshot_parse {
    use clap::Parser;

    use super::{parse_snapshot_from, Cli};

    /// The parse without subcommands gives what the full one gives, and
    /// leaves to it what it cannot parse alike.
    #[test]
    fn the_snapshot_parse_agrees_with_the_full_one() {
        let same = [
            "vmmap 1234",
            "vmmap firefox -s",
            "vmmap 1234 -t heap,stack --sort private -r",
            "vmmap 1234 -c all --bytes --wide",
            "vmmap 1234 --json -o /tmp/x.json",
            "vmmap --proc-root /tmp/p 12 --color never",
            "vmmap 1 2 3 --children",
            "vmmap 1234 -a 0x7ffd0000",
            "vmmap 1234 --sharing exact --no-ptrace --ptrace-budget-ms 5",
            "vmmap -p 1234 -i",
            "vmmap",
        ];
        for line in same {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let full = Cli::try_parse_from(&args).expect(line);
            let fast = parse_snapshot_from(args).expect(line);
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line}");
        }
        let full_only = [
            "vmmap ps",
            "vmmap --proc-root /tmp/p top",
            "vmmap help",
            "vmmap --help",
            "vmmap 1234 -h",
            "vmmap --version",
            "vmmap 1234 --no-such-option",
            "vmmap 1234 -i -a 0x1000",
            "vmmap 1234 --color sometimes",
        ];
        for line in full_only {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            assert!(parse_snapshot_from(args).is_none(), "{line}");
        }
    }
}
