//! The text report of a snapshot: header, Summary table and Details
//! table, as `pmap` prints for scripts and quick looks.

use std::io::{self, Write};

use vmmap_core::export::{OwnerView, Owners};
use vmmap_core::figures::{Column, Figures};
use vmmap_core::model::{MemoryType, Region, Snapshot};
use vmmap_core::summary::{free_blocks, FreeBlock, Summary};
use vmmap_core::text::{escape, Escaped};

use vmmap_core::units::push_size;

/// How the Details table is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// By start address.
    Address,
    /// By memory type, then address.
    Type,
    /// By the Details text, then address.
    Details,
    /// By protection, then address.
    Protection,
    /// By a column, largest first, then address.
    Figure(Column),
}

impl SortKey {
    /// The key a `--sort` word names (a few synonyms, or a column id).
    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s.to_ascii_lowercase().as_str() {
            "address" | "addr" | "start" => SortKey::Address,
            "type" => SortKey::Type,
            "details" | "path" => SortKey::Details,
            "protection" | "prot" | "perms" => SortKey::Protection,
            _ => SortKey::Figure(Column::parse(s)?),
        })
    }
}

/// What to print and how.
pub struct TextOptions {
    /// The Summary table only.
    pub summary_only: bool,
    /// Show free blocks (rows of the Summary and Details).
    pub free: bool,
    /// The Details rows of these types only (all when empty).
    pub types: Vec<MemoryType>,
    /// The order of the Details rows.
    pub sort: SortKey,
    /// Reverse that order.
    pub reverse: bool,
    /// The figure columns, in order.
    pub columns: Vec<Column>,
    /// Show each region's sub-blocks (and their parts).
    pub sub_blocks: bool,
    /// Exact bytes rather than `1.2M`.
    pub exact: bool,
    /// The width to fit (a terminal's), or `None` for every column and
    /// whole lines (a file or a pipe, where nothing may be cut).
    pub width: Option<usize>,
}

/// The Owner column of a traced run's snapshot: who made each region.
/// The trace crate computes the owners; this crate reads them through
/// core's [`Owners`] trait, so that it need not depend on it.
#[derive(Clone, Copy)]
pub struct OwnerColumn<'a> {
    /// Seconds into the traced run at which the snapshot was taken.
    pub seconds: f64,
    /// The owner of each region and sub-block of the snapshot.
    pub owners: &'a dyn Owners,
}

/// Writes the whole report; the Details have an Owner column when
/// `owners` (of this snapshot of a traced run) are given.
pub fn write_text_owned<W: Write>(
    snap: &Snapshot,
    summary: &Summary,
    o: &TextOptions,
    owners: Option<OwnerColumn<'_>>,
    w: &mut W,
) -> io::Result<()> {
    let mut head = Vec::new();
    write_header(snap, &mut head)?;
    if let Some(ow) = owners {
        writeln!(
            head,
            "Owners:        as of {:.2} s into the traced run (who made each region; for a heap, who holds most of it)",
            ow.seconds
        )?;
    }
    match o.width {
        None => w.write_all(&head)?,
        Some(width) => {
            for line in String::from_utf8_lossy(&head).lines() {
                writeln!(w, "{}", cut_end(line, width))?;
            }
        }
    }
    writeln!(w)?;
    write_summary(summary, o, w)?;
    if !o.summary_only {
        writeln!(w)?;
        write_details(snap, summary, o, owners, w)?;
    }
    Ok(())
}

fn write_header<W: Write>(snap: &Snapshot, w: &mut W) -> io::Result<()> {
    let p = &snap.process;
    writeln!(w, "Process:       {} ({})", p.pid, Escaped(&p.name))?;
    let cmd = if p.cmdline.is_empty() {
        "(none)".to_string()
    } else {
        // Each argument on its own, so that one holding a space still
        // reads as one when it has to be quoted.
        p.cmdline
            .iter()
            .map(|a| escape(a))
            .collect::<Vec<_>>()
            .join(" ")
    };
    writeln!(w, "Command line:  {cmd}")?;
    if let Some(exe) = &p.exe {
        writeln!(w, "Executable:    {}", Escaped(exe))?;
    }
    match &p.user {
        Some(u) => writeln!(w, "User:          {} (uid {})", Escaped(u), p.uid)?,
        None => writeln!(w, "User:          uid {}", p.uid)?,
    }
    writeln!(w, "Architecture:  {}", p.arch())?;
    if let Some(c) = &p.container {
        let ns = p
            .ns_pid
            .map_or_else(String::new, |n| format!(" (PID {n} inside)"));
        writeln!(w, "Container:     {}{ns}", Escaped(&c.label()))?;
    } else if let Some(n) = p.ns_pid {
        writeln!(w, "PID namespace: PID {n} inside")?;
    }
    writeln!(
        w,
        "Kernel:        {} (page size {})",
        Escaped(&snap.kernel.release),
        vmmap_core::units::size(snap.kernel.page_size, false)
    )?;
    writeln!(w, "Threads:       {}", p.threads.len())?;
    writeln!(
        w,
        "Taken:         {}",
        utc(snap.taken_at_unix_ns / 1_000_000_000)
    )?;
    if !snap.kernel.missing_fields.is_empty() {
        writeln!(
            w,
            "Note:          this kernel does not print {} (figures that need them read n/a)",
            escape(&snap.kernel.missing_fields.join(", "))
        )?;
    }
    if snap.rollup.is_none()
        && !snap.kernel.rollup_unread
        && snap.kernel.release != vmmap_core::mmp::IMPORTED_KERNEL
    {
        writeln!(
            w,
            "Note:          no smaps_rollup on this kernel (before 4.14); totals are sums of smaps"
        )?;
    }
    if let Some(m) = &snap.sharing {
        writeln!(w, "Sharing:       {}", m.describe())?;
    }
    for warning in &snap.warnings {
        writeln!(w, "Warning:       {}", Escaped(warning))?;
    }
    Ok(())
}

fn num_width(c: Column, exact: bool) -> usize {
    c.header().len().max(if exact { 13 } else { 6 })
}

fn push_figure(line: &mut String, f: &Figures, c: Column, exact: bool) {
    let width = num_width(c, exact);
    // The cell is formatted on the stack, then appended after its padding:
    // right-aligning it in place (rotating the padding to its front) cost
    // a library call per cell, a tenth of the Details table.
    let mut cell = Cell::default();
    match f.get(c) {
        None => cell.push("n/a"),
        Some(v) if c.is_count() => {
            if v != 0 {
                cell.push(itoa::Buffer::new().format(v));
            }
        }
        Some(v) => push_size(&mut cell, v, exact),
    }
    if cell.len < width {
        const SPACES: &str = "                                ";
        line.push_str(&SPACES[..(width - cell.len).min(SPACES.len())]);
    }
    line.push_str(cell.as_str());
}

/// One figure's text, on the stack: the longest is a `u64` in bytes (20
/// digits).
#[derive(Default)]
struct Cell {
    buf: [u8; 32],
    len: usize,
}

impl Cell {
    /// Appends `s`; what does not fit is dropped (no figure is that long).
    fn push(&mut self, s: &str) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + s.len()) {
            dst.copy_from_slice(s.as_bytes());
            self.len += s.len();
        }
    }

    fn as_str(&self) -> &str {
        // Not checked again: a check of every cell was 3% of the
        // instructions of a 60,000-region snapshot.
        // SAFETY: `push` appends only whole `&str`s, so the first `len`
        // bytes are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.buf[..self.len]) }
    }
}

impl std::fmt::Write for Cell {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s);
        Ok(())
    }
}

fn write_summary<W: Write>(summary: &Summary, o: &TextOptions, w: &mut W) -> io::Result<()> {
    let cols = match o.width {
        None => o.columns.clone(),
        Some(width) => fit_columns(
            &o.columns,
            |c| summary.total.figures.get(c) != Some(0),
            width.saturating_sub(13),
            o.exact,
        ),
    };
    let mut line = String::with_capacity(256);
    line.push_str(&format!("{:<13}", "Type"));
    for &c in &cols {
        line.push_str(&format!(
            "  {:>width$}",
            c.header(),
            width = num_width(c, o.exact)
        ));
    }
    writeln!(w, "{}", line.trim_end())?;
    let rows = summary.rows.iter().filter(|r| {
        let t = r.memory_type.unwrap_or(MemoryType::Free);
        (t != MemoryType::Free || o.free) && r.figures.value(Column::Size) != 0
    });
    // The tracing agent's memory comes after the program's Total, in no
    // row of it.
    let agent = summary.agent.iter().map(|r| (r, "vmmap agent"));
    let program = rows.map(|r| (r, r.memory_type.map_or("Total", MemoryType::name)));
    for (r, name) in program
        .chain(std::iter::once((&summary.total, "Total")))
        .chain(agent)
    {
        line.clear();
        line.push_str(&format!("{name:<13}"));
        for &c in &cols {
            line.push_str("  ");
            push_figure(&mut line, &r.figures, c, o.exact);
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

enum Row<'a> {
    /// A region and its index in the snapshot. Its figures are computed
    /// when the row is written (or sorted by one): carried in every row,
    /// they made the list of 60,000 rows five times as large, each page of
    /// it a fault.
    Region(&'a Region, usize),
    Free(FreeBlock),
}

impl Row<'_> {
    fn start(&self) -> u64 {
        match self {
            Row::Region(r, ..) => r.start,
            Row::Free(f) => f.start,
        }
    }
    fn memory_type(&self) -> MemoryType {
        match self {
            Row::Region(r, ..) => r.memory_type,
            Row::Free(_) => MemoryType::Free,
        }
    }
    fn figure(&self, c: Column) -> u64 {
        match self {
            Row::Region(r, _) => Figures::of_region(r).value(c),
            Row::Free(f) if c == Column::Size => f.size(),
            Row::Free(_) => 0,
        }
    }
}

fn write_details<W: Write>(
    snap: &Snapshot,
    summary: &Summary,
    o: &TextOptions,
    owners: Option<OwnerColumn<'_>>,
    w: &mut W,
) -> io::Result<()> {
    let wanted = |t: MemoryType| o.types.is_empty() || o.types.contains(&t);
    let mut rows: Vec<Row<'_>> = snap
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| wanted(r.memory_type))
        .map(|(i, r)| Row::Region(r, i))
        .collect();
    if o.free || o.types.contains(&MemoryType::Free) {
        rows.extend(free_blocks(snap).into_iter().map(Row::Free));
    }
    let by_address = |a: &Row<'_>, b: &Row<'_>| a.start().cmp(&b.start());
    match o.sort {
        SortKey::Address => rows.sort_by(by_address),
        SortKey::Type => rows.sort_by(|a, b| {
            a.memory_type()
                .cmp(&b.memory_type())
                .then_with(|| by_address(a, b))
        }),
        SortKey::Details => {
            rows.sort_by(|a, b| details(a).cmp(details(b)).then_with(|| by_address(a, b)))
        }
        SortKey::Protection => {
            rows.sort_by(|a, b| perms(a).cmp(perms(b)).then_with(|| by_address(a, b)))
        }
        SortKey::Figure(c) => {
            rows.sort_by_cached_key(|r| (std::cmp::Reverse(r.figure(c)), r.start()))
        }
    }
    if o.reverse {
        rows.reverse();
    }
    let all: Vec<Column> = o
        .columns
        .iter()
        .copied()
        .filter(|c| !c.summary_only())
        .collect();
    let addr_w = snap
        .regions
        .iter()
        .map(|r| hex_len(r.end))
        .max()
        .unwrap_or(12)
        .max(12);
    // Fitting a width: the address, type and protection always; the
    // figures by importance while Details keep DETAILS_MIN columns; the
    // Max protection column only if there is room left after them.
    let fixed = addr_w + 2 + 2 + 12 + 2 + 4 + 2;
    let (cols, show_max, details_w) = match o.width {
        None => (all, true, None),
        Some(width) => {
            let total = &summary.total.figures;
            let budget = width.saturating_sub(fixed + DETAILS_MIN);
            let cols = fit_columns(&all, |c| total.get(c) != Some(0), budget, o.exact);
            let used = fixed
                + cols
                    .iter()
                    .map(|&c| 2 + num_width(c, o.exact))
                    .sum::<usize>();
            let show_max = used + 6 + DETAILS_MIN <= width;
            let used = used + if show_max { 6 } else { 0 };
            (
                cols,
                show_max,
                Some(width.saturating_sub(used).max(DETAILS_MIN)),
            )
        }
    };
    let mut line = String::with_capacity(512);
    line.push_str(&format!(
        "{:<aw$}  {:<12}",
        "Address",
        "Type",
        aw = addr_w + 2
    ));
    for &c in &cols {
        line.push_str(&format!(
            "  {:>width$}",
            c.header(),
            width = num_width(c, o.exact)
        ));
    }
    // The Owner column is as wide as its longest cell (on a terminal, at
    // most half of what the Details have, which it shares).
    let owner_w = owners.map(|ow| {
        let ow = ow.owners;
        snap.regions
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                std::iter::once(ow.region(i))
                    .chain((0..r.sub_blocks.len()).map(move |j| ow.sub_block(i, j)))
            })
            .flatten()
            .map(|c| escape(c.text).chars().count())
            .max()
            .unwrap_or(0)
            .max(5)
    });
    let (owner_w, details_w) = match (owner_w, details_w) {
        (Some(ow), Some(dw)) => {
            let ow = ow.min((dw / 2).max(5));
            (
                Some(ow),
                Some(dw.saturating_sub(ow + 2).max(DETAILS_MIN / 2)),
            )
        }
        other => other,
    };
    let fit = Fit {
        show_max,
        details: details_w,
        width: o.width,
    };
    line.push_str(if show_max {
        "  Prot  Max   "
    } else {
        "  Prot  "
    });
    if let Some(ow) = owner_w {
        line.push_str(&format!("{:<ow$}  ", "Owner"));
    }
    line.push_str("Details");
    writeln!(w, "{}", fit.line(&line))?;
    fn owner<'a>(cell: Option<OwnerView<'a>>, width: Option<usize>) -> Option<(&'a str, usize)> {
        width.map(|w| (cell.map_or("", |c| c.text), w))
    }
    for row in &rows {
        match row {
            Row::Region(r, i) => {
                let cell = owner(owners.and_then(|ow| ow.owners.region(*i)), owner_w);
                let f = Figures::of_region(r);
                region_line(&mut line, r, &f, &cols, addr_w, 0, o.exact, cell, &fit);
                w.write_all(fit.line(&line).as_bytes())?;
                if o.sub_blocks && !r.sub_blocks.is_empty() {
                    for (j, s) in r.sub_blocks.iter().enumerate() {
                        let cell = owner(owners.and_then(|ow| ow.owners.sub_block(*i, j)), owner_w);
                        let f = Figures::of_vma(s);
                        region_line(&mut line, s, &f, &cols, addr_w, 2, o.exact, cell, &fit);
                        w.write_all(fit.line(&line).as_bytes())?;
                        for p in &s.parts {
                            part_line(&mut line, p, addr_w);
                            w.write_all(fit.line(&line).as_bytes())?;
                        }
                    }
                }
                for s in &r.sections {
                    section_line(&mut line, s, addr_w, o.exact);
                    w.write_all(fit.line(&line).as_bytes())?;
                }
            }
            Row::Free(fb) => {
                line.clear();
                push_hex(&mut line, fb.start, addr_w + 2);
                line.push_str("  Free        ");
                for &c in &cols {
                    line.push_str("  ");
                    let mut fig = Figures::default();
                    fig.set(Column::Size, fb.size());
                    push_figure(&mut line, &fig, c, o.exact);
                }
                line.push('\n');
                w.write_all(fit.line(&line).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// The fewest columns the Details text keeps on a terminal.
const DETAILS_MIN: usize = 16;

/// Figure columns in the order they give way when a terminal is too
/// narrow: the last goes first. Size and the two figures VMMap's bars
/// show (Private, Total WS) stay longest; Committed counts address space
/// more than memory, so it goes before them.
const IMPORTANCE: [Column; 13] = [
    Column::Size,
    Column::Private,
    Column::TotalWs,
    Column::Committed,
    Column::Pss,
    Column::PrivateWs,
    Column::Swap,
    Column::ShareableWs,
    Column::SharedWs,
    Column::Dirty,
    Column::LockedWs,
    Column::Largest,
    Column::Blocks,
];

/// The columns of `wanted` that fit in `budget` characters (each takes
/// two of separation and its cell), chosen by [`IMPORTANCE`] and shown in
/// `wanted`'s order; columns `useful` rejects (zero in every row) take no
/// room.
fn fit_columns(
    wanted: &[Column],
    useful: impl Fn(Column) -> bool,
    budget: usize,
    exact: bool,
) -> Vec<Column> {
    choose_columns(wanted, useful, budget, |c| 2 + num_width(c, exact))
}

/// The columns of `wanted` that fit in `budget` characters when column
/// `c` takes `room(c)` of them (its cell and separation): the most
/// important first ([`IMPORTANCE`], then `wanted`'s order), shown in
/// `wanted`'s order. Columns `useful` rejects (zero in every row) take no
/// room. The text report and the interactive view both choose so.
pub fn choose_columns(
    wanted: &[Column],
    useful: impl Fn(Column) -> bool,
    budget: usize,
    room: impl Fn(Column) -> usize,
) -> Vec<Column> {
    let rank = |c: Column| {
        IMPORTANCE
            .iter()
            .position(|&i| i == c)
            .unwrap_or(IMPORTANCE.len() + wanted.iter().position(|&w| w == c).unwrap_or(0))
    };
    let mut by_rank: Vec<Column> = wanted.iter().copied().filter(|&c| useful(c)).collect();
    by_rank.sort_by_key(|&c| rank(c));
    let mut left = budget;
    let mut kept = Vec::new();
    for c in by_rank {
        let need = room(c);
        if need <= left {
            left -= need;
            kept.push(c);
        }
    }
    wanted
        .iter()
        .copied()
        .filter(|c| kept.contains(c))
        .collect()
}

/// How the Details lines fit a terminal: whether the Max column is shown,
/// the width of the Details text, the whole line's width.
struct Fit {
    show_max: bool,
    details: Option<usize>,
    width: Option<usize>,
}

impl Fit {
    /// A finished line (with or without its newline) cut to the width.
    fn line<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        let Some(width) = self.width else {
            return line.into();
        };
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        match cut_end(body, width) {
            std::borrow::Cow::Borrowed(_) => line.into(),
            std::borrow::Cow::Owned(mut s) => {
                s.push_str(nl);
                s.into()
            }
        }
    }
}

/// The display width of a text (wide characters count two).
pub fn text_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` cut to `width` display columns, ending in `…` when cut.
pub fn cut_end(s: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if text_width(s) <= width {
        return s.into();
    }
    let mut out = String::with_capacity(width + 3);
    let mut used = 0;
    for ch in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(ch);
    }
    if width > 0 {
        out.push('\u{2026}');
    }
    out.into()
}

/// `s` cut to `width` display columns from its start, beginning with `…`
/// when cut: a path keeps its file name and the directories nearest it.
pub fn cut_start(s: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if text_width(s) <= width {
        return s.into();
    }
    let mut used = 0;
    let mut from = s.len();
    for (i, ch) in s.char_indices().rev() {
        let w = unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        from = i;
    }
    if width == 0 {
        return "".into();
    }
    format!("\u{2026}{}", &s[from..]).into()
}

/// A Details text cut to `width`: a path from its start (its file name
/// matters most), anything else (a thread's name, a heap's) from its end.
pub fn cut_details(s: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if !s.starts_with('/') {
        return cut_end(s, width);
    }
    match cut_start(s, width) {
        // Begin at a directory, not inside a name, when one is left.
        std::borrow::Cow::Owned(cut) => match cut['\u{2026}'.len_utf8()..].find('/') {
            Some(i) if cut.len() > i + 4 => {
                format!("\u{2026}{}", &cut['\u{2026}'.len_utf8() + i..]).into()
            }
            _ => cut.into(),
        },
        whole => whole,
    }
}

/// An Owner cell cut to `width` without ending inside its parenthesis
/// (`malloc (arena.c:12)` becomes `malloc …` rather than `malloc (are…`).
pub fn cut_owner(s: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if text_width(s) <= width {
        return s.into();
    }
    match s.find(" (") {
        Some(p) if text_width(&s[..p]) + 2 <= width => format!("{} \u{2026}", &s[..p]).into(),
        _ => cut_end(s, width),
    }
}

fn details<'a>(r: &'a Row<'_>) -> &'a str {
    match r {
        Row::Region(r, ..) => &r.details,
        Row::Free(_) => "",
    }
}

fn perms<'a>(r: &'a Row<'_>) -> &'a str {
    match r {
        Row::Region(r, ..) => r.perms.as_str(),
        Row::Free(_) => "",
    }
}

fn hex_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).div_ceil(4).max(1)
}

fn push_hex(line: &mut String, v: u64, width: usize) {
    use std::fmt::Write as _;
    let _ = write!(line, "{v:<width$x}");
}

/// One row; `owner` is the Owner cell and the column's width, when the
/// snapshot is of a traced run.
#[allow(clippy::too_many_arguments)]
fn region_line(
    line: &mut String,
    r: &Region,
    f: &Figures,
    cols: &[Column],
    addr_w: usize,
    indent: usize,
    exact: bool,
    owner: Option<(&str, usize)>,
    fit: &Fit,
) {
    line.clear();
    line.push_str(&"  "[..indent]);
    push_hex(line, r.start, addr_w + 2 - indent);
    line.push_str("  ");
    let name = r.memory_type.name();
    line.push_str(name);
    line.push_str(&"            "[..12usize.saturating_sub(name.len())]);
    for &c in cols {
        line.push_str("  ");
        push_figure(line, f, c, exact);
    }
    line.push_str("  ");
    line.push_str(r.perms.as_str());
    line.push_str("  ");
    if fit.show_max {
        match r.max_protection() {
            Some(m) => line.push_str(std::str::from_utf8(&m).unwrap_or("????")),
            None => line.push_str("    "),
        }
        line.push_str("  ");
    }
    if let Some((text, width)) = owner {
        use std::fmt::Write as _;
        let text = escape(text);
        let text = match fit.details {
            Some(_) => cut_owner(&text, width),
            None => text,
        };
        let pad = width.saturating_sub(text.chars().count());
        let _ = write!(line, "{text}{:pad$}  ", "");
    }
    let details = escape(&r.details);
    match fit.details {
        Some(dw) => line.push_str(&cut_details(&details, dw)),
        None => line.push_str(&details),
    }
    line.push('\n');
}

/// A named range inside a sub-block (a goroutine stack): a derived row,
/// marked `·`, with its size only (the kernel accounts for whole VMAs).
fn part_line(line: &mut String, p: &vmmap_core::model::Part, addr_w: usize) {
    line.clear();
    line.push_str("    ");
    push_hex(line, p.start, addr_w);
    line.push_str("  \u{b7} size ");
    line.push_str(&vmmap_core::units::size(p.end - p.start, false));
    line.push_str("  ");
    line.push_str(&escape(&p.details));
    line.push('\n');
}

/// One ELF section of an image (`--sections`): a derived row, marked `§`,
/// with its own figures from the page tables.
fn section_line(
    line: &mut String,
    s: &vmmap_core::sharing::SectionFigures,
    addr_w: usize,
    exact: bool,
) {
    line.clear();
    line.push_str("  ");
    push_hex(line, s.start, addr_w);
    line.push_str("  \u{a7} ");
    line.push_str(&format!("{:<20}", Escaped(&s.name)));
    for (label, v) in [
        ("size", s.end - s.start),
        ("resident", s.resident),
        ("private", s.private),
        ("shareable", s.shareable),
        ("shared", s.shared),
    ] {
        line.push_str("  ");
        line.push_str(label);
        line.push(' ');
        if exact || v == 0 {
            line.push_str(&v.to_string());
        } else {
            line.push_str(&vmmap_core::units::size(v, false));
        }
    }
    if s.boundary_pages > 0 {
        line.push_str(&format!(
            "  ({} page(s) shared with a neighbouring section)",
            s.boundary_pages
        ));
    }
    line.push('\n');
}

/// `YYYY-MM-DD HH:MM:SS UTC` from Unix seconds (civil-from-days).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuts_keep_what_matters_and_fit() {
        use super::{cut_details, cut_end, cut_owner, text_width};
        let path = "/root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/x.so";
        assert_eq!(
            cut_details(path, 30),
            "\u{2026}/python3.11/lib-dynload/x.so"
        );
        assert_eq!(cut_details("Thread 42 (worker)", 10), "Thread 42\u{2026}");
        assert_eq!(
            cut_owner("malloc (arena.c:12) +3 live", 12),
            "malloc \u{2026}"
        );
        assert_eq!(cut_owner("malloc (arena.c:12)", 7), "malloc\u{2026}");
        assert_eq!(cut_end("short", 10), "short");
        for w in 0..40 {
            assert!(text_width(&cut_details(path, w)) <= w.max(1));
            assert!(text_width(&cut_owner("malloc (arena.c:12) x", w)) <= w.max(1));
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_795_564_800), "2026-11-25 00:00:00 UTC");
    }
}
