//! `vmmap top`: which processes' memory grows, now. Sans-IO: samples of
//! every process's cheap figures come in ([`crate::collect::top`] takes
//! them), rows with their growth over the last interval and since the
//! first sample come out ([`Tracker`]), sorted by any [`Column`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::container::Container;

/// The figures `top` follows, as the kernel keeps them per process, and
/// PSS when asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Private bytes: `RssAnon + VmSwap` from status, as `vmmap ps` counts.
    pub private: u64,
    /// Working set: `VmRSS`.
    pub ws: u64,
    /// Proportional set size from smaps_rollup; `None` when not asked for
    /// (it costs a page-table walk) or unreadable.
    pub pss: Option<u64>,
    /// Swapped out: `VmSwap`.
    pub swap: u64,
}

/// One of the four figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Private bytes.
    Private,
    /// Working set.
    Ws,
    /// Proportional set size.
    Pss,
    /// Swap.
    Swap,
}

impl Metric {
    /// All four, in the order of the columns.
    pub const ALL: [Metric; 4] = [Metric::Private, Metric::Ws, Metric::Pss, Metric::Swap];

    /// The column header.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Private => "PRIVATE",
            Metric::Ws => "WS",
            Metric::Pss => "PSS",
            Metric::Swap => "SWAP",
        }
    }

    /// This figure of `f`; `None` for PSS when it was not read.
    pub fn of(self, f: &Figures) -> Option<u64> {
        match self {
            Metric::Private => Some(f.private),
            Metric::Ws => Some(f.ws),
            Metric::Pss => f.pss,
            Metric::Swap => Some(f.swap),
        }
    }
}

/// One process in one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proc {
    /// PID as `/proc` names it.
    pub pid: u32,
    /// Start time in clock ticks since boot: with the PID, which process
    /// this is (a PID may be reused between two samples).
    pub start_time: u64,
    /// The PID in its own PID namespace, when that differs (a container).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ns_pid: Option<u32>,
    /// User name.
    pub user: String,
    /// Command name.
    pub name: String,
    /// Arguments joined by spaces.
    pub cmdline: String,
    /// The container or pod, from its cgroup path.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container: Option<Container>,
    /// The figures.
    pub figures: Figures,
    /// When the figures were read, from an origin fixed for the program
    /// (the first sample's time): each process's own time, so that a rate is right
    /// however long the walk over every process takes.
    #[serde(skip)]
    pub at: Duration,
}

impl Proc {
    /// Whether the `/` filter `text` selects it: a case-insensitive part of
    /// its name, command line, user, container, or its PID.
    pub fn matches(&self, text: &str) -> bool {
        let t = text.trim().to_lowercase();
        if t.is_empty() {
            return true;
        }
        let has = |s: &str| s.to_lowercase().contains(&t);
        has(&self.name)
            || has(&self.cmdline)
            || has(&self.user)
            || self.pid.to_string() == t
            || self.container.as_ref().is_some_and(|c| has(&c.label()))
    }
}

/// Signed growth of the four figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Private bytes.
    pub private: i64,
    /// Working set.
    pub ws: i64,
    /// PSS, when both samples have it.
    pub pss: Option<i64>,
    /// Swap.
    pub swap: i64,
}

impl Growth {
    fn between(a: &Figures, b: &Figures) -> Growth {
        let d = |x: u64, y: u64| {
            (y as i128 - x as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
        };
        Growth {
            private: d(a.private, b.private),
            ws: d(a.ws, b.ws),
            pss: a.pss.zip(b.pss).map(|(x, y)| d(x, y)),
            swap: d(a.swap, b.swap),
        }
    }

    /// The growth of one figure.
    pub fn of(&self, m: Metric) -> Option<i64> {
        match m {
            Metric::Private => Some(self.private),
            Metric::Ws => Some(self.ws),
            Metric::Pss => self.pss,
            Metric::Swap => Some(self.swap),
        }
    }

    fn per_second(&self, secs: f64) -> Growth {
        let r = |v: i64| (v as f64 / secs).round() as i64;
        Growth {
            private: r(self.private),
            ws: r(self.ws),
            pss: self.pss.map(r),
            swap: r(self.swap),
        }
    }
}

/// One row of `top`: a process, its figures and their growth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The process and its figures now.
    #[serde(flatten)]
    pub proc: Proc,
    /// Growth since the sample before (zero for a process first seen now).
    pub growth: Growth,
    /// That growth per second, over this process's own interval between
    /// its two reads; `None` for a process first seen now.
    pub per_second: Option<Growth>,
    /// Growth since the process was first seen (the first sample, or its
    /// start if it started later).
    pub since_start: Growth,
    /// Seconds between this process's two reads (0 when first seen).
    pub interval: f64,
}

/// What rows are sorted by: a figure, its growth over the last interval or
/// since the start, the PID or the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// PID.
    Pid,
    /// Command name.
    Name,
    /// A figure now.
    Value(Metric),
    /// A figure's growth over the last interval.
    Growth(Metric),
    /// A figure's growth since the start.
    SinceStart(Metric),
}

impl Column {
    /// The columns in the order `<` and `>` step through them (and of a
    /// table's figure columns): each figure, then its growth, then since
    /// the start.
    pub const ORDER: [Column; 14] = [
        Column::Pid,
        Column::Name,
        Column::Value(Metric::Private),
        Column::Growth(Metric::Private),
        Column::SinceStart(Metric::Private),
        Column::Value(Metric::Ws),
        Column::Growth(Metric::Ws),
        Column::SinceStart(Metric::Ws),
        Column::Value(Metric::Pss),
        Column::Growth(Metric::Pss),
        Column::SinceStart(Metric::Pss),
        Column::Value(Metric::Swap),
        Column::Growth(Metric::Swap),
        Column::SinceStart(Metric::Swap),
    ];

    /// The figure the column shows or grows, if any.
    pub fn metric(self) -> Option<Metric> {
        match self {
            Column::Pid | Column::Name => None,
            Column::Value(m) | Column::Growth(m) | Column::SinceStart(m) => Some(m),
        }
    }

    /// The default: private bytes grown over the last interval, the most
    /// direct answer to "what is growing now".
    pub const DEFAULT: Column = Column::Growth(Metric::Private);

    /// The name `--sort` takes and the header shows: `private`,
    /// `private-growth` (`growth` alone is private's), `private-total`.
    pub fn key(self) -> String {
        match self {
            Column::Pid => "pid".into(),
            Column::Name => "name".into(),
            Column::Value(m) => m.name().to_lowercase(),
            Column::Growth(m) => format!("{}-growth", m.name().to_lowercase()),
            Column::SinceStart(m) => format!("{}-total", m.name().to_lowercase()),
        }
    }

    /// Parses [`Column::key`]; `growth` and `total` are private's.
    pub fn parse(s: &str) -> Option<Column> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "growth" => return Some(Column::Growth(Metric::Private)),
            "total" => return Some(Column::SinceStart(Metric::Private)),
            _ => {}
        }
        Column::ORDER.into_iter().find(|c| c.key() == s)
    }

    /// The next (or previous) column of [`Column::ORDER`].
    pub fn step(self, back: bool) -> Column {
        let n = Column::ORDER.len();
        let i = Column::ORDER.iter().position(|c| *c == self).unwrap_or(0);
        Column::ORDER[(i + if back { n - 1 } else { 1 }) % n]
    }

    /// The header of the column: `PRIVATE`, `+PRIVATE` (over the last
    /// interval), `ΣPRIVATE` (since the start).
    pub fn label(self) -> String {
        match self {
            Column::Pid => "PID".into(),
            Column::Name => "NAME".into(),
            Column::Value(m) => m.name().into(),
            Column::Growth(m) => format!("+{}", m.name()),
            Column::SinceStart(m) => format!("Σ{}", m.name()),
        }
    }

    /// The row's figure in this column, as every table shows and sorts
    /// it: `None` for the PID and the name, and for a figure that was not
    /// read (PSS unless asked for).
    pub fn amount(self, r: &Row) -> Option<Amount> {
        match self {
            Column::Pid | Column::Name => None,
            Column::Value(m) => m.of(&r.proc.figures).map(Amount::Size),
            Column::Growth(m) => r.growth.of(m).map(Amount::Change),
            Column::SinceStart(m) => r.since_start.of(m).map(Amount::Change),
        }
    }

    fn value(self, r: &Row) -> Option<i128> {
        self.amount(r).map(|a| match a {
            Amount::Size(v) => i128::from(v),
            Amount::Change(v) => i128::from(v),
        })
    }
}

/// What a figure column holds for a row ([`Column::amount`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// A size now.
    Size(u64),
    /// A signed change: over the last interval or since the start.
    Change(i64),
}

/// A column of a `top` table, as `vmmap top --once` prints it and the
/// live view draws it: the process's identity, or one of the figures a
/// [`Column`] names. One definition, so that both tables head, align and
/// give way alike; how wide each is stays with the front end (a terminal
/// line with fitted text cells, or a screen of fixed cells).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// PID.
    Pid,
    /// The PID in the process's own namespace.
    NsPid,
    /// User name.
    User,
    /// Command name.
    Name,
    /// A figure, its growth, or its growth since the start.
    Figure(Column),
    /// The container or pod.
    Container,
    /// The command line, which takes what is left of the line.
    Command,
}

impl Field {
    /// The header: `PID`, `PRIVATE`, `+PRIVATE`...
    pub fn header(self) -> String {
        match self {
            Field::Pid => "PID".into(),
            Field::NsPid => "NSPID".into(),
            Field::User => "USER".into(),
            Field::Name => "NAME".into(),
            Field::Figure(c) => c.label(),
            Field::Container => "CONTAINER".into(),
            Field::Command => "COMMAND".into(),
        }
    }

    /// Whether the cells are right-aligned (numbers).
    pub fn right(self) -> bool {
        matches!(self, Field::Pid | Field::NsPid | Field::Figure(_))
    }

    /// The sort column the field shows, if rows can be sorted by it.
    pub fn sort(self) -> Option<Column> {
        match self {
            Field::Pid => Some(Column::Pid),
            Field::Name => Some(Column::Name),
            Field::Figure(c) => Some(c),
            _ => None,
        }
    }

    /// The order of the fields across the line: the identity, the figures
    /// in [`Column::ORDER`], then the container and the command line.
    pub fn position(self) -> usize {
        match self {
            Field::Pid => 0,
            Field::NsPid => 1,
            Field::User => 2,
            Field::Name => 3,
            Field::Figure(f) => 4 + Column::ORDER.iter().position(|o| *o == f).unwrap_or(0),
            Field::Container => 100,
            Field::Command => 101,
        }
    }

    /// The fields in the order they give way when the line is narrow: the
    /// identity and Private's first, then WS's, the container and the
    /// command line, then the other figures; the growth since the start
    /// (with `since_start`, for a view that outlives two samples) follows
    /// each of Private's and, for the others, comes after every figure.
    /// The namespace PID and the container are there when some process
    /// has one, PSS's columns when PSS was read.
    pub fn by_importance(ns: bool, containers: bool, pss: bool, since_start: bool) -> Vec<Field> {
        use Metric::*;
        let fig = |c: Column| Field::Figure(c);
        let mut v = vec![
            Field::Pid,
            Field::Name,
            fig(Column::Value(Private)),
            fig(Column::Growth(Private)),
            fig(Column::SinceStart(Private)),
            fig(Column::Value(Ws)),
            fig(Column::Growth(Ws)),
            Field::Container,
            Field::Command,
            Field::NsPid,
            fig(Column::Value(Pss)),
            fig(Column::Growth(Pss)),
            fig(Column::Value(Swap)),
            fig(Column::Growth(Swap)),
            fig(Column::SinceStart(Ws)),
            fig(Column::SinceStart(Pss)),
            fig(Column::SinceStart(Swap)),
            Field::User,
        ];
        v.retain(|f| match f {
            Field::NsPid => ns,
            Field::Container => containers,
            Field::Figure(Column::SinceStart(_)) if !since_start => false,
            Field::Figure(c) => pss || c.metric() != Some(Pss),
            _ => true,
        });
        v
    }
}

/// Sorts rows by `col`, flipped by `reverse`: figures and growth largest
/// first, the PID and the name ascending; ties by PID. A figure that is
/// unknown sorts last.
pub fn sort(rows: &mut [Row], col: Column, reverse: bool) {
    rows.sort_by(|a, b| {
        let o = match col {
            Column::Pid => Ordering::Equal,
            Column::Name => a.proc.name.cmp(&b.proc.name),
            _ => match (col.value(a), col.value(b)) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        let o = o.then(a.proc.pid.cmp(&b.proc.pid));
        if reverse {
            o.reverse()
        } else {
            o
        }
    });
}

/// What a [`Tracker`] remembers of a process: its figures when first seen
/// and at the last sample, with that sample's time.
#[derive(Clone, Copy, Debug)]
struct Seen {
    first: Figures,
    last: Figures,
    at: Duration,
}

/// Follows processes across samples, by PID and start time, so that a
/// reused PID starts afresh.
#[derive(Debug, Default)]
pub struct Tracker {
    seen: HashMap<(u32, u64), Seen>,
    samples: u64,
}

impl Tracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// How many samples it has taken in.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Takes in a sample: rows for its processes, in the sample's order.
    /// Processes no longer in the sample are forgotten.
    pub fn update(&mut self, procs: Vec<Proc>) -> Vec<Row> {
        self.samples += 1;
        let mut next = HashMap::with_capacity(procs.len());
        let rows = procs
            .into_iter()
            .map(|p| {
                let key = (p.pid, p.start_time);
                let (row, seen) = match self.seen.get(&key) {
                    Some(s) => {
                        let growth = Growth::between(&s.last, &p.figures);
                        let secs = p.at.saturating_sub(s.at).as_secs_f64();
                        let row = Row {
                            growth,
                            per_second: (secs > 0.0).then(|| growth.per_second(secs)),
                            since_start: Growth::between(&s.first, &p.figures),
                            interval: secs,
                            proc: p,
                        };
                        let seen = Seen {
                            first: s.first,
                            last: row.proc.figures,
                            at: row.proc.at,
                        };
                        (row, seen)
                    }
                    None => {
                        let seen = Seen {
                            first: p.figures,
                            last: p.figures,
                            at: p.at,
                        };
                        let row = Row {
                            growth: Growth::default(),
                            per_second: None,
                            since_start: Growth::default(),
                            interval: 0.0,
                            proc: p,
                        };
                        (row, seen)
                    }
                };
                next.insert(key, seen);
                row
            })
            .collect();
        self.seen = next;
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, start: u64, private: u64, at_ms: u64) -> Proc {
        Proc {
            pid,
            start_time: start,
            ns_pid: None,
            user: "root".into(),
            name: format!("p{pid}"),
            cmdline: format!("/bin/p{pid} --flag"),
            container: None,
            figures: Figures {
                private,
                ws: private * 2,
                pss: Some(private + 1),
                swap: 0,
            },
            at: Duration::from_millis(at_ms),
        }
    }

    #[test]
    fn growth_over_the_interval_and_since_the_start() {
        let mut t = Tracker::new();
        let first = t.update(vec![proc(1, 10, 1000, 0), proc(2, 20, 5000, 5)]);
        assert!(first
            .iter()
            .all(|r| r.per_second.is_none() && r.growth == Growth::default()));
        t.update(vec![proc(1, 10, 3000, 1000), proc(2, 20, 4000, 1005)]);
        let rows = t.update(vec![proc(1, 10, 4000, 2000), proc(2, 20, 4000, 2505)]);
        assert_eq!(rows[0].growth.private, 1000);
        assert_eq!(rows[0].since_start.private, 3000);
        assert_eq!(rows[0].since_start.ws, 6000);
        assert_eq!(rows[0].per_second.unwrap().private, 1000);
        assert_eq!(rows[0].growth.pss, Some(1000));
        // Its own interval (1.5 s), not the sample's.
        assert_eq!(rows[1].interval, 1.5);
        assert_eq!(rows[1].since_start.private, -1000);
        assert_eq!(t.samples(), 3);
    }

    #[test]
    fn a_reused_pid_starts_afresh_and_gone_processes_are_forgotten() {
        let mut t = Tracker::new();
        t.update(vec![proc(1, 10, 1000, 0), proc(2, 20, 1000, 0)]);
        let rows = t.update(vec![proc(1, 11, 9000, 1000)]);
        assert_eq!(rows[0].growth, Growth::default());
        assert_eq!(rows[0].per_second, None);
        assert_eq!(t.seen.len(), 1);
    }

    #[test]
    fn sorting_by_growth_puts_the_fastest_first_and_unknowns_last() {
        let mut t = Tracker::new();
        t.update(vec![
            proc(1, 1, 100, 0),
            proc(2, 2, 100, 0),
            proc(3, 3, 100, 0),
        ]);
        let mut next = vec![
            proc(1, 1, 200, 1000),
            proc(2, 2, 900, 1000),
            proc(3, 3, 50, 1000),
        ];
        next[0].figures.pss = None;
        let mut rows = t.update(next);
        sort(&mut rows, Column::DEFAULT, false);
        let pids = |rows: &[Row]| rows.iter().map(|r| r.proc.pid).collect::<Vec<_>>();
        assert_eq!(pids(&rows), [2, 1, 3]);
        sort(&mut rows, Column::DEFAULT, true);
        assert_eq!(pids(&rows), [3, 1, 2]);
        sort(&mut rows, Column::Value(Metric::Pss), false);
        assert_eq!(pids(&rows), [2, 3, 1]);
        sort(&mut rows, Column::Pid, false);
        assert_eq!(pids(&rows), [1, 2, 3]);
        sort(&mut rows, Column::Name, true);
        assert_eq!(pids(&rows), [3, 2, 1]);
    }

    #[test]
    fn column_keys_round_trip_and_step() {
        for c in Column::ORDER {
            assert_eq!(Column::parse(&c.key()), Some(c));
        }
        assert_eq!(Column::parse("GROWTH"), Some(Column::DEFAULT));
        assert_eq!(Column::parse("bogus"), None);
        assert_eq!(Column::Pid.step(true), Column::SinceStart(Metric::Swap));
        assert_eq!(
            Column::DEFAULT.step(false),
            Column::SinceStart(Metric::Private)
        );
    }

    #[test]
    fn the_filter_matches_name_command_user_pid_and_container() {
        let mut p = proc(42, 1, 0, 0);
        assert!(p.matches("P42"));
        assert!(p.matches("--flag"));
        assert!(p.matches("42"));
        assert!(!p.matches("43"));
        assert!(p.matches(""));
        p.container = crate::container::from_path("/machine.slice/machine-web.scope");
        assert!(p.matches("nspawn:w"));
    }

    #[test]
    fn fields_give_way_by_importance_and_sit_in_screen_order() {
        let two_samples = Field::by_importance(false, false, false, false);
        assert_eq!(
            two_samples[..5],
            [
                Field::Pid,
                Field::Name,
                Field::Figure(Column::Value(Metric::Private)),
                Field::Figure(Column::Growth(Metric::Private)),
                Field::Figure(Column::Value(Metric::Ws)),
            ]
        );
        assert!(!two_samples.iter().any(|f| matches!(
            f,
            Field::NsPid | Field::Container | Field::Figure(Column::SinceStart(_))
        ) || f.sort().and_then(Column::metric)
            == Some(Metric::Pss)));
        let live = Field::by_importance(true, true, true, true);
        assert_eq!(live.len(), 18);
        let mut on_screen = live.clone();
        on_screen.sort_by_key(|f| f.position());
        assert_eq!(
            on_screen[..4],
            [Field::Pid, Field::NsPid, Field::User, Field::Name]
        );
        assert_eq!(on_screen[17], Field::Command);
        assert_eq!(
            Field::Figure(Column::SinceStart(Metric::Ws)).header(),
            "ΣWS"
        );
        assert!(Field::Figure(Column::DEFAULT).right() && !Field::Name.right());
    }
}
