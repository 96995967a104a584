//! The process picker: every user process with its private bytes, working
//! set and architecture; type to filter, sort by any column. A second tab
//! launches a new program under the tracing agent ([`crate::launch_form`]).

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;
use vmmap_core::collect::{Access, ProcessEntry};
use vmmap_core::text::escape;

use crate::launch_form::LaunchForm;
use crate::list::{ListCursor, TableSort};
use crate::settings::Units;

/// The picker's tabs (F2 switches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickerTab {
    /// The running processes.
    Processes,
    /// Launch and trace a new process.
    Launch,
}

/// A picker column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickColumn {
    /// PID.
    Pid,
    /// User name.
    User,
    /// Command name.
    Name,
    /// Private bytes.
    Private,
    /// Working set.
    Ws,
    /// Architecture.
    Arch,
    /// The command line (what the filter matches beyond the name).
    Command,
}

impl PickColumn {
    /// All, in display order.
    pub const ALL: [PickColumn; 7] = [
        PickColumn::Pid,
        PickColumn::User,
        PickColumn::Name,
        PickColumn::Private,
        PickColumn::Ws,
        PickColumn::Arch,
        PickColumn::Command,
    ];

    fn header(self) -> &'static str {
        match self {
            PickColumn::Pid => "PID",
            PickColumn::User => "User",
            PickColumn::Name => "Name",
            PickColumn::Private => "Private",
            PickColumn::Ws => "Working Set",
            PickColumn::Arch => "Architecture",
            PickColumn::Command => "Command line",
        }
    }

    /// The column's width: its cells, and its header with the sort arrow.
    /// The command line takes what the others leave ([`COMMAND_MIN`] at
    /// least).
    fn width(self) -> u16 {
        match self {
            PickColumn::Pid => 8,
            PickColumn::User => 10,
            PickColumn::Name => 16,
            PickColumn::Private => 10,
            PickColumn::Ws => 13,
            PickColumn::Arch => 16,
            PickColumn::Command => COMMAND_MIN,
        }
    }
}

/// The fewest columns the command line is shown in.
const COMMAND_MIN: u16 = 12;

impl PickColumn {}

/// Picker view state.
pub struct Picker {
    /// Every process, as last listed.
    pub all: Vec<ProcessEntry>,
    /// The filter typed so far.
    pub filter: String,
    /// Sort column and direction.
    pub sort: TableSort<PickColumn>,
    /// Indices into `all` that pass the filter, sorted.
    pub rows: Vec<usize>,
    /// The selection in `rows` and the first row drawn.
    pub cursor: ListCursor,
    /// Where the header row was drawn (for mouse clicks).
    pub header_area: Rect,
    /// Where the body rows were drawn.
    pub body_area: Rect,
    /// The list failed to load.
    pub error: Option<String>,
    /// The columns drawn last time (narrow windows drop some).
    pub shown: Vec<PickColumn>,
    /// The tab shown.
    pub tab: PickerTab,
    /// The Launch tab's form.
    pub launch: LaunchForm,
    /// PIDs marked with Space for a combined view, in marking order.
    pub marked: Vec<u32>,
}

impl Default for Picker {
    fn default() -> Self {
        Picker {
            all: Vec::new(),
            filter: String::new(),
            sort: TableSort::new(PickColumn::Private),
            rows: Vec::new(),
            cursor: ListCursor::default(),
            header_area: Rect::default(),
            body_area: Rect::default(),
            error: None,
            shown: PickColumn::ALL.to_vec(),
            tab: PickerTab::Processes,
            launch: LaunchForm::default(),
            marked: Vec::new(),
        }
    }
}

impl Picker {
    /// New process list: keeps the selected PID when it is still there.
    pub fn set(&mut self, list: Vec<ProcessEntry>) {
        let keep = self.selected_pid();
        self.all = list;
        self.error = None;
        self.refilter(keep);
    }

    /// The selected process.
    pub fn selected_pid(&self) -> Option<u32> {
        self.rows
            .get(self.cursor.selected)
            .map(|&i| self.all[i].pid)
    }

    /// The selected entry.
    pub fn selected_entry(&self) -> Option<&ProcessEntry> {
        self.rows.get(self.cursor.selected).map(|&i| &self.all[i])
    }

    /// Applies the filter and sort, keeping `keep` selected if visible.
    pub fn refilter(&mut self, keep: Option<u32>) {
        let f = self.filter.to_lowercase();
        let mut rows: Vec<usize> = (0..self.all.len())
            .filter(|&i| {
                let p = &self.all[i];
                f.is_empty()
                    || p.name.to_lowercase().contains(&f)
                    || p.cmdline.to_lowercase().contains(&f)
                    || p.pid.to_string().starts_with(&f)
                    || p.user.to_lowercase().contains(&f)
                    || p.container
                        .as_ref()
                        .is_some_and(|c| c.label().to_lowercase().contains(&f))
            })
            .collect();
        let all = &self.all;
        let key_num = |i: &usize, c: PickColumn| match c {
            PickColumn::Private => all[*i].private_bytes.unwrap_or(0),
            PickColumn::Ws => all[*i].working_set.unwrap_or(0),
            _ => u64::from(all[*i].pid),
        };
        // Ties by PID, so that the order is the same at every refresh.
        let pid = |a: &usize, b: &usize| all[*a].pid.cmp(&all[*b].pid);
        match self.sort.column {
            PickColumn::Pid => rows.sort_by_key(|i| all[*i].pid),
            PickColumn::User => {
                rows.sort_by(|a, b| all[*a].user.cmp(&all[*b].user).then(pid(a, b)))
            }
            PickColumn::Name => {
                rows.sort_by_cached_key(|&i| (all[i].name.to_lowercase(), all[i].pid))
            }
            PickColumn::Command => {
                rows.sort_by(|a, b| all[*a].cmdline.cmp(&all[*b].cmdline).then(pid(a, b)))
            }
            PickColumn::Arch => {
                rows.sort_by(|a, b| all[*a].arch.cmp(&all[*b].arch).then(pid(a, b)))
            }
            c @ (PickColumn::Private | PickColumn::Ws) => {
                rows.sort_by(|a, b| key_num(b, c).cmp(&key_num(a, c)).then(pid(a, b)))
            }
        }
        if self.sort.reverse {
            rows.reverse();
        }
        self.rows = rows;
        self.cursor.selected = keep
            .and_then(|pid| self.rows.iter().position(|&i| self.all[i].pid == pid))
            .unwrap_or(0);
    }

    /// Marks the selected process for a combined view, or unmarks it.
    pub fn toggle_mark(&mut self) {
        if let Some(pid) = self.selected_pid() {
            match self.marked.iter().position(|&p| p == pid) {
                Some(i) => {
                    self.marked.remove(i);
                }
                None => self.marked.push(pid),
            }
        }
    }

    /// Sorts by a column; the same column again reverses.
    pub fn sort_by(&mut self, c: PickColumn) {
        self.sort.choose(c);
        self.refilter(self.selected_pid());
    }

    /// The column under screen column `x` of the header.
    pub fn column_at(&self, x: u16) -> Option<PickColumn> {
        let mut left = self.header_area.x;
        for &c in &self.shown {
            if x >= left && x < left + c.width() + 1 {
                return Some(c);
            }
            left += c.width() + 1;
        }
        None
    }

    /// Switches between the Processes and Launch tabs.
    pub fn toggle_tab(&mut self) {
        self.tab = match self.tab {
            PickerTab::Processes => PickerTab::Launch,
            PickerTab::Launch => PickerTab::Processes,
        };
    }

    /// The tab names for the title, the shown one marked.
    fn tabs(&self) -> Vec<Span<'static>> {
        let on = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        let (p, l) = match self.tab {
            PickerTab::Processes => (on, Style::default()),
            PickerTab::Launch => (Style::default(), on),
        };
        let name = |n: &str, on: bool| {
            if on {
                format!("[{n}]")
            } else {
                format!(" {n} ")
            }
        };
        vec![
            Span::raw(" "),
            Span::styled(name("Processes", self.tab == PickerTab::Processes), p),
            Span::raw(" "),
            Span::styled(name("Launch", self.tab == PickerTab::Launch), l),
            Span::raw(" (F2)  "),
        ]
    }

    /// Draws the picker.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect, units: Units) {
        let mut title = self.tabs();
        if self.tab == PickerTab::Launch {
            title.push(Span::raw("vmmap: launch and trace a program "));
            let block = Block::default()
                .borders(Borders::ALL)
                .title(Line::from(title));
            let inner = block.inner(area);
            f.render_widget(block, area);
            self.launch.draw(f, inner);
            return;
        }
        // Where the list is scrolled to, when it does not fit: the rows
        // the body below will hold (the same layout as below).
        let denied_rows = self
            .all
            .iter()
            .any(|p| matches!(p.access, Access::Denied(_)));
        let body_h = Block::default()
            .borders(Borders::ALL)
            .inner(area)
            .height
            .saturating_sub(2 + u16::from(denied_rows || self.error.is_some()) * 2)
            as usize;
        self.cursor.scroll_into_view(body_h);
        let position = if self.rows.len() > body_h && body_h > 0 {
            let (first, last) = self.cursor.rows_on_screen(body_h, self.rows.len());
            format!(", rows {first}-{last}")
        } else {
            String::new()
        };
        // A narrow window keeps the counts, not the words.
        let label = if area.width < 80 {
            "processes"
        } else {
            "vmmap: select a process"
        };
        title.push(Span::raw(format!(
            "{label} ({} of {}{position}) ",
            self.rows.len(),
            self.all.len()
        )));
        if !self.marked.is_empty() {
            let hidden = self
                .marked
                .iter()
                .filter(|&&pid| !self.rows.iter().any(|&i| self.all[i].pid == pid))
                .count();
            // What Enter does is the status line's to say.
            let hidden = if hidden > 0 {
                format!(" ({hidden} hidden)")
            } else {
                String::new()
            };
            title.push(Span::styled(
                format!("{} marked{hidden} ", self.marked.len()),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        }
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(title));
        let inner = block.inner(area);
        f.render_widget(block, area);
        if inner.height < 3 {
            return;
        }
        let filter_line = Line::from(vec![
            Span::styled("Filter: ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(self.filter.clone()),
            Span::styled("▏", Style::default().fg(Color::Gray)),
        ]);
        f.render_widget(Paragraph::new(filter_line), Rect { height: 1, ..inner });
        let denied = self
            .all
            .iter()
            .filter(|p| matches!(p.access, Access::Denied(_)))
            .count();
        let footer_h = u16::from(denied > 0 || self.error.is_some()) * 2;
        let table_area = Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1 + footer_h),
            ..inner
        };
        self.header_area = Rect {
            height: 1,
            ..table_area
        };
        self.body_area = Rect {
            y: table_area.y + 1,
            height: table_area.height.saturating_sub(1),
            ..table_area
        };
        let height = self.body_area.height as usize;
        self.cursor.scroll_into_view(height);
        // Drop the architecture, then the user, then the command line when
        // the window is narrow, rather than squeezing every column; never
        // the column sorted by, so that its arrow stays in sight.
        let mut shown: Vec<PickColumn> = PickColumn::ALL.to_vec();
        for drop in [PickColumn::Arch, PickColumn::User, PickColumn::Command] {
            if shown.iter().map(|c| c.width() + 1).sum::<u16>() > table_area.width
                && drop != self.sort.column
            {
                shown.retain(|c| *c != drop);
            }
        }
        self.shown = shown.clone();
        let header = Row::new(shown.iter().map(|&c| match self.sort.mark(c) {
            "" => c.header().to_string(),
            mark => format!("{} {mark}", c.header()),
        }))
        .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let rows = self.cursor.on_screen(&self.rows, height).map(|(k, &i)| {
            let p = &self.all[i];
            let size = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), |v| units.format(v));
            let arch = match &p.access {
                Access::Denied(_) => "(no access)".to_string(),
                Access::Ok => p.arch.clone().unwrap_or_else(|| "?".into()),
            };
            let mut style = Style::default();
            if matches!(p.access, Access::Denied(_)) {
                style = style.fg(Color::DarkGray);
            }
            if k == self.cursor.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(shown.iter().map(|c| match c {
                PickColumn::Pid if self.marked.contains(&p.pid) => format!("*{:>6}", p.pid),
                PickColumn::Pid => format!("{:>7}", p.pid),
                PickColumn::User => escape(&p.user).into_owned(),
                // A container's process: its container, and its PID
                // inside, after the name.
                PickColumn::Name => {
                    let inside: Vec<String> = p
                        .container
                        .iter()
                        .map(|c| escape(&c.label()).into_owned())
                        .chain(p.ns_pid.map(|n| format!("pid {n}")))
                        .collect();
                    if inside.is_empty() {
                        escape(&p.name).into_owned()
                    } else {
                        format!("{} [{}]", escape(&p.name), inside.join(" "))
                    }
                }
                PickColumn::Private => format!("{:>10}", size(p.private_bytes)),
                PickColumn::Ws => format!("{:>10}", size(p.working_set)),
                PickColumn::Arch => arch.clone(),
                PickColumn::Command => escape(&p.cmdline).into_owned(),
            }))
            .style(style)
        });
        let widths: Vec<Constraint> = shown
            .iter()
            .map(|&c| match c {
                PickColumn::Command => Constraint::Min(COMMAND_MIN),
                c => Constraint::Length(c.width()),
            })
            .collect();
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            table_area,
        );
        if footer_h > 0 {
            let text = if let Some(e) = &self.error {
                format!("Cannot list processes: {e}")
            } else {
                let reason = self
                    .selected_entry()
                    .and_then(|p| match &p.access {
                        Access::Denied(r) => Some(r.clone()),
                        Access::Ok => None,
                    })
                    .unwrap_or_else(|| {
                        "run vmmap as their owner, as root, or with CAP_SYS_PTRACE to inspect them"
                            .to_string()
                    });
                format!("{denied} process(es) marked (no access): {reason}")
            };
            let area = Rect {
                y: inner.y + inner.height - footer_h,
                height: footer_h,
                ..inner
            };
            f.render_widget(
                Paragraph::new(text)
                    .style(Style::default().fg(Color::Yellow))
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                area,
            );
        }
    }
}
