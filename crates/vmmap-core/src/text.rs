//! Untrusted text made safe to show: process names, command lines, thread
//! names, mapped paths, symbol names and strings found in memory are all
//! chosen by whoever runs (or built) the process being looked at, and may
//! hold ESC, CR, LF and other control characters. Written raw to a terminal
//! they retitle the window, clear the screen, set the clipboard (OSC 52)
//! or forge lines of the report. Every front end shows such text through
//! [`Escaped`] (or [`escape`]); JSON and CSV keep the real characters,
//! escaped by their own syntax.
//!
//! # Notation
//!
//! Text that needs no escaping is shown exactly as it is. Otherwise the
//! whole string is shown in double quotes, with these escapes inside:
//!
//! | shown | stands for |
//! |---|---|
//! | `\\` and `\"` | a backslash, a double quote |
//! | `\t`, `\n`, `\r` | tab, line feed, carriage return |
//! | `\xHH` | any other C0 control or DEL (`\x1b` is ESC), or one byte of invalid UTF-8 (then `HH` ≥ 80) |
//! | `\u{HHHH}` | a C1 control (U+0080–U+009F), a bidirectional mark, embedding, override or isolate (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), or a line or paragraph separator (U+2028, U+2029) |
//!
//! A string that would look quoted (it starts and ends with `"`) is quoted
//! as well, so the notation is unambiguous and nothing is lost: a value
//! shown in quotes is always the escaped form, anything else is verbatim.
//! Quoting only when needed (GNU `ls --quoting-style=c-maybe`) rather than
//! escaping every backslash (`ls -b`) keeps everyday text unchanged: the
//! backslashes of Windows paths in a `.mmp` file, or of strings found in
//! memory, are not doubled. `ps`'s `?` replacement was not chosen because
//! it loses what the bytes were. Bidirectional controls are escaped
//! because they make a terminal show characters in another order than
//! they are, which forges what is read as surely as a control character.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether a character must not reach a terminal as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `s` is shown quoted and escaped rather than as it is.
pub fn needs_quoting(s: &str) -> bool {
    s.chars().any(is_unsafe) || looks_quoted(s)
}

fn looks_quoted(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('"') && s.ends_with('"')
}

/// `s` as it may be shown: itself if it is safe, else quoted and escaped
/// (see the [module](self) documentation).
pub fn escape(s: &str) -> Cow<'_, str> {
    if needs_quoting(s) {
        let mut out = String::with_capacity(s.len() + 8);
        let _ = quote(&mut out, s);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// Bytes that may not be UTF-8 (a matched pattern, a raw name), shown as
/// [`escape`] shows text: invalid bytes as `\xHH`, which quotes the whole.
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => escape(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            out.push('"');
            for chunk in b.utf8_chunks() {
                let _ = escape_inner(&mut out, chunk.valid());
                for byte in chunk.invalid() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            out.push('"');
            Cow::Owned(out)
        }
    }
}

/// [`escape`] of every line of a multi-line message, the line breaks kept:
/// for messages whose lines are vmmap's own but may quote untrusted text.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.split('\n').any(needs_quoting) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

/// A command line: each argument [`escape`]d on its own, joined by spaces,
/// so that an argument holding a space still reads as one when it has to
/// be quoted.
pub fn escape_args<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| escape(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    escape_inner(out, s)?;
    out.write_char('"')
}

fn escape_inner(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '"' => out.write_str("\\\"")?,
            '\t' => out.write_str("\\t")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            c if c.is_ascii() && is_unsafe(c) => write!(out, "\\x{:02x}", u32::from(c))?,
            c if is_unsafe(c) => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Shows untrusted text with [`escape`]'s notation; width, alignment and
/// precision (`{:<16}`) apply to the shown form.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() && f.precision().is_none() {
            if needs_quoting(self.0) {
                quote(f, self.0)
            } else {
                f.write_str(self.0)
            }
        } else {
            f.pad(&escape(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_is_unchanged() {
        for s in [
            "",
            "/usr/lib/libc.so.6",
            "C:\\Windows\\System32\\ntdll.dll",
            "café ünïcode 日本",
            "\"half",
            "\"",
            "[anon:x] (deleted)",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s:?}");
        }
    }

    #[test]
    fn controls_are_escaped_and_quoted() {
        assert_eq!(
            escape("a\x1b]0;pwned\x07\r\nFORGED\t\x7f"),
            "\"a\\x1b]0;pwned\\x07\\r\\nFORGED\\t\\x7f\""
        );
        assert_eq!(escape("x\u{9b}31m\u{202e}y"), "\"x\\u{9b}31m\\u{202e}y\"");
        assert_eq!(escape("\u{2028}"), "\"\\u{2028}\"");
        // Inside quotes a backslash and a quote are escaped too.
        assert_eq!(escape("C:\\a\"\x1b"), "\"C:\\\\a\\\"\\x1b\"");
    }

    #[test]
    fn text_that_looks_quoted_is_quoted() {
        assert_eq!(escape("\"a\\x1b\""), "\"\\\"a\\\\x1b\\\"\"");
        assert_eq!(escape("\"\""), "\"\\\"\\\"\"");
    }

    #[test]
    fn invalid_utf8_shows_each_byte() {
        assert_eq!(escape_bytes(b"ok"), "ok");
        assert_eq!(escape_bytes(b"a\xff\xc3b\x1b"), "\"a\\xff\\xc3b\\x1b\"");
        assert_eq!(escape_bytes("é\u{9b}".as_bytes()), "\"é\\u{9b}\"");
    }

    #[test]
    fn each_argument_is_escaped_on_its_own() {
        assert_eq!(escape_args(&["ls", "-l"]), "ls -l");
        assert_eq!(escape_args(&["a b", "c\x1b"]), "a b \"c\\x1b\"");
        assert_eq!(escape_args::<&str>(&[]), "");
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert_eq!(escape_lines("a\nb"), "a\nb");
        assert_eq!(escape_lines("x\n  1 a\x1bb\ny"), "x\n\"  1 a\\x1bb\"\ny");
    }

    #[test]
    fn display_pads_the_shown_form() {
        assert_eq!(format!("[{:<8}]", Escaped("ab")), "[ab      ]");
        assert_eq!(format!("[{:<8}]", Escaped("a\x1b")), "[\"a\\x1b\" ]");
        assert_eq!(format!("{}", Escaped("a\nb")), "\"a\\nb\"");
        assert!(!format!("{:>30}", Escaped("\x1b\r\n\x07\u{85}"))
            .chars()
            .any(is_unsafe));
    }
}
