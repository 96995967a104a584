//! The picker's Launch tab: a form that starts a program under the tracing
//! agent ([`vmmap_trace::launch`]), and the shell-like splitting of
//! its Arguments field.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use vmmap_trace::launch::{self, Launch};

/// A field of the form, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The program: a path, or a name looked up on $PATH.
    Program,
    /// Its arguments, split like a shell would (see [`split_args`]).
    Arguments,
    /// Where it runs.
    Cwd,
    /// The trace file (empty: [`launch::default_output`]).
    Output,
    /// Record snapshots only, without the agent.
    SnapshotOnly,
}

impl Field {
    /// All, in display order.
    pub const ALL: [Field; 5] = [
        Field::Program,
        Field::Arguments,
        Field::Cwd,
        Field::Output,
        Field::SnapshotOnly,
    ];

    fn label(self) -> &'static str {
        match self {
            Field::Program => "Program",
            Field::Arguments => "Arguments",
            Field::Cwd => "Working directory",
            Field::Output => "Output file",
            Field::SnapshotOnly => "Snapshot only",
        }
    }
}

/// The Launch tab's state.
#[derive(Clone, Debug)]
pub struct LaunchForm {
    /// The Program field.
    pub program: String,
    /// The Arguments field.
    pub args: String,
    /// The Working directory field (empty: vmmap's).
    pub cwd: String,
    /// The Output file field (empty: the default name).
    pub output: String,
    /// Snapshots only, no agent.
    pub snapshot_only: bool,
    /// The field being edited.
    pub field: Field,
    /// Why the last Enter did not launch.
    pub error: Option<String>,
}

impl Default for LaunchForm {
    fn default() -> Self {
        LaunchForm {
            program: String::new(),
            args: String::new(),
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            output: String::new(),
            snapshot_only: false,
            field: Field::Program,
            error: None,
        }
    }
}

/// Splits `text` into arguments as a shell would, without expansions:
/// whitespace separates; `'...'` is taken literally; inside `"..."` a
/// backslash escapes `"` and `\`; outside quotes a backslash escapes the
/// next character. `''` and `""` make an empty argument.
pub fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    // Whether an argument has started (so that '' counts).
    let mut started = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            '\'' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("a \" quote is not closed".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                started = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("a \\ ends the arguments: it escapes nothing".into()),
                }
            }
            c => {
                started = true;
                cur.push(c);
            }
        }
    }
    if started {
        out.push(cur);
    }
    Ok(out)
}

impl LaunchForm {
    /// The text of a text field (None for the toggle).
    pub fn text_mut(&mut self, f: Field) -> Option<&mut String> {
        match f {
            Field::Program => Some(&mut self.program),
            Field::Arguments => Some(&mut self.args),
            Field::Cwd => Some(&mut self.cwd),
            Field::Output => Some(&mut self.output),
            Field::SnapshotOnly => None,
        }
    }

    /// Moves to the next (or previous) field, wrapping.
    pub fn move_field(&mut self, back: bool) {
        let n = Field::ALL.len();
        let i = Field::ALL
            .iter()
            .position(|f| *f == self.field)
            .unwrap_or(0);
        self.field = Field::ALL[(i + if back { n - 1 } else { 1 }) % n];
    }

    /// Checks the form and resolves what to start: the program (on $PATH
    /// if it has no slash), its arguments, the directory, the agent
    /// (refusing programs LD_PRELOAD cannot trace) and the output file.
    /// The error is for the form.
    pub fn prepare(&self) -> Result<Launch, String> {
        let name = self.program.trim();
        if name.is_empty() {
            return Err("Type the program to start (a path, or a name on $PATH)".into());
        }
        let argv0 = OsString::from(name);
        let program = launch::find_program(&argv0)
            .ok_or_else(|| format!("{name}: no such program (not a file, nor on $PATH)"))?;
        let args = split_args(&self.args).map_err(|e| format!("Arguments: {e}"))?;
        let cwd = match self.cwd.trim() {
            "" => None,
            d if Path::new(d).is_dir() => Some(PathBuf::from(d)),
            d => return Err(format!("Working directory: {d} is not a directory")),
        };
        let agent = if self.snapshot_only {
            None
        } else {
            if let Some(why) = launch::untraceable(&program) {
                return Err(format!(
                    "Cannot trace: {why}. Turn on \"Snapshot only\" (Space on that line) to record its snapshots without the agent"
                ));
            }
            Some(launch::find_agent(None)?)
        };
        let output = match self.output.trim() {
            "" => launch::default_output(&program),
            o => PathBuf::from(o),
        };
        if let Some(why) = agent
            .as_ref()
            .and_then(|_| launch::unfit_trace_file(&output))
        {
            return Err(format!(
                "Output: {why}. Give a file name, or turn on \"Snapshot only\""
            ));
        }
        Ok(Launch {
            program,
            argv0,
            args: args.into_iter().map(OsString::from).collect(),
            cwd,
            output,
            agent,
            frame_pointers: false,
            follow_forks: false,
            quiet_stdio: true,
            inherited: vmmap_trace::launch::Inherited::of_this_process(),
            seccomp_unchecked: false,
        })
    }

    /// Draws the form in `area` (inside the picker's frame).
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect) {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let dim = Style::default().fg(Color::DarkGray);
        let mut lines = vec![
            Line::styled("Launch and trace a new process", bold),
            Line::raw(""),
        ];
        for field in Field::ALL {
            let on = field == self.field;
            let label_style = if on {
                bold.add_modifier(Modifier::REVERSED)
            } else {
                bold
            };
            let mut spans = vec![Span::styled(format!("{:<18}", field.label()), label_style)];
            spans.push(Span::raw(" "));
            let (value, hint) = match field {
                Field::Program => (&self.program, "a path, or a name on $PATH"),
                Field::Arguments => (&self.args, "split on spaces; '...' and \"...\" quote"),
                Field::Cwd => (&self.cwd, "vmmap's working directory"),
                Field::Output => (
                    &self.output,
                    "PROGRAM.YYYYMMDD-HHMMSS.vmmap in vmmap's working directory",
                ),
                Field::SnapshotOnly => {
                    let mark = if self.snapshot_only { "[x]" } else { "[ ]" };
                    spans.push(Span::raw(mark));
                    spans.push(Span::styled(
                        "  no agent: the process's memory every second, not its allocations",
                        dim,
                    ));
                    lines.push(Line::from(spans));
                    continue;
                }
            };
            if value.is_empty() && !on {
                spans.push(Span::styled(format!("({hint})"), dim));
            } else {
                spans.push(Span::raw(value.clone()));
            }
            if on {
                spans.push(Span::styled("▏", Style::default().fg(Color::Gray)));
                if value.is_empty() {
                    spans.push(Span::styled(format!(" ({hint})"), dim));
                }
            }
            lines.push(Line::from(spans));
        }
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "Enter starts the program with the tracing agent preloaded (LD_PRELOAD), its output sent to /dev/null, and opens its live view; \
             a snapshot goes to the trace file every second until it exits. Quitting vmmap leaves it running (the agent keeps recording).",
        ));
        if let Some(e) = &self.error {
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                e.clone(),
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        split_args(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(ok("  a  b\tc "), ["a", "b", "c"]);
        assert!(ok("").is_empty());
        assert!(ok("   ").is_empty());
    }

    #[test]
    fn quotes_keep_spaces_and_join_with_neighbours() {
        assert_eq!(ok("'a b' \"c d\""), ["a b", "c d"]);
        assert_eq!(ok("x'a b'y"), ["xa by"]);
        assert_eq!(ok("--name=\"two words\""), ["--name=two words"]);
        assert_eq!(ok("'it\"s'"), ["it\"s"]);
        assert_eq!(ok("\"it's\""), ["it's"]);
    }

    #[test]
    fn empty_quotes_are_an_empty_argument() {
        assert_eq!(ok("a '' b \"\""), ["a", "", "b", ""]);
    }

    #[test]
    fn backslashes() {
        assert_eq!(ok(r"a\ b"), ["a b"]);
        assert_eq!(ok(r#""a\"b\\c\d""#), [r#"a"b\c\d"#]);
        assert_eq!(ok(r"'a\b'"), [r"a\b"]);
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        assert!(split_args("'abc").unwrap_err().contains('\''));
        assert!(split_args("\"abc").unwrap_err().contains('"'));
        assert!(split_args("\"abc\\").is_err());
        assert!(split_args("abc\\").is_err());
    }

    #[test]
    fn fields_wrap_around() {
        let mut f = LaunchForm::default();
        assert_eq!(f.field, Field::Program);
        f.move_field(true);
        assert_eq!(f.field, Field::SnapshotOnly);
        f.move_field(false);
        f.move_field(false);
        assert_eq!(f.field, Field::Arguments);
    }

    #[test]
    fn prepare_reports_what_is_wrong() {
        let mut f = LaunchForm::default();
        assert!(f.prepare().unwrap_err().contains("Type the program"));
        f.program = "/nonexistent/vmmap-no-such-program".into();
        assert!(f.prepare().unwrap_err().contains("no such program"));
        f.program = "/bin/sh".into();
        f.args = "'open".into();
        assert!(f.prepare().unwrap_err().starts_with("Arguments:"));
        f.args = "-c 'exit 3'".into();
        f.cwd = "/nonexistent/dir".into();
        assert!(f.prepare().unwrap_err().starts_with("Working directory:"));
        f.cwd = "/".into();
        f.snapshot_only = true;
        f.output = "/tmp/x.vmmap".into();
        let l = f.prepare().expect("snapshot only needs no agent");
        assert_eq!(l.args, [OsString::from("-c"), OsString::from("exit 3")]);
        assert_eq!(l.cwd.as_deref(), Some(Path::new("/")));
        assert!(l.agent.is_none() && l.quiet_stdio);
        assert_eq!(l.output, Path::new("/tmp/x.vmmap"));
    }
}
