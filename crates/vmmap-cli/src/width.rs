//! The width text output fits: a terminal's (so that `vmmap PID`, `ps`
//! and the trace views read on an 80-column screen as `pmap` and `ps`
//! do), or none when writing to a file or a pipe, where nothing may be cut.

use std::io::{self, IsTerminal, Write};

/// The width to fit: `None` unless standard output is a terminal;
/// `COLUMNS` overrides the terminal's own width (as for `ps` and `ls`).
pub(crate) fn terminal_width() -> Option<usize> {
    if !io::stdout().is_terminal() {
        return None;
    }
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(c);
    }
    // By hand rather than through a crate: one ioctl, and the crates that
    // wrap it (crossterm, terminal_size) would add a dependency to the
    // binary for these few lines.
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer given, which
    // points to a live, writable `winsize` on this stack.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// The width to fit unless `wide` asks for everything.
pub(crate) fn fit_width(wide: bool) -> Option<usize> {
    if wide {
        None
    } else {
        terminal_width()
    }
}

/// A writer that cuts each line to a width, ending a cut line with `…`
/// (the views whose long lines are stack frames and paths, whose start
/// says most); with no width, it passes everything through.
pub(crate) struct FitLines<W: Write> {
    inner: W,
    width: Option<usize>,
    line: Vec<u8>,
}

impl<W: Write> FitLines<W> {
    pub(crate) fn new(inner: W, width: Option<usize>) -> Self {
        FitLines {
            inner,
            width,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        if let Some(w) = self.width {
            let text = String::from_utf8_lossy(&self.line);
            let cut = vmmap_render::text::cut_end(&text, w);
            self.inner.write_all(cut.as_bytes())?;
        }
        self.line.clear();
        Ok(())
    }
}

impl<W: Write> Write for FitLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.width.is_none() {
            return self.inner.write(buf);
        }
        let mut rest = buf;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..nl]);
            self.emit()?;
            self.inner.write_all(b"\n")?;
            rest = &rest[nl + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_only_with_a_width() {
        let mut out = FitLines::new(Vec::new(), Some(5));
        out.write_all(b"abcdefgh\nab\nxyz").unwrap();
        out.flush().unwrap();
        assert_eq!(
            String::from_utf8(out.inner).unwrap(),
            "abcd\u{2026}\nab\nxyz"
        );
        let mut out = FitLines::new(Vec::new(), None);
        out.write_all(b"abcdefgh\n").unwrap();
        assert_eq!(out.inner, b"abcdefgh\n");
    }
}
