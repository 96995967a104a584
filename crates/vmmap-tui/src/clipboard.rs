//! Copying: OSC 52 puts text on the terminal's clipboard, across ssh and
//! tmux, with no X or Wayland client; where the terminal ignores it, the
//! text can be saved to a file instead.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;

/// Terminals cap OSC 52 payloads (xterm: 100,000 bytes of base64 by
/// default); larger copies go to a file.
pub const OSC52_LIMIT: usize = 74_000;

/// Writes `text` to the clipboard with OSC 52 (inside tmux, wrapped in
/// its passthrough sequence). Fails if the text is too large.
pub fn osc52(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    if text.len() > OSC52_LIMIT {
        return Err(std::io::Error::other(format!(
            "{} bytes is more than a terminal clipboard takes",
            text.len()
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
    let seq = format!("\x1b]52;c;{b64}\x07");
    if std::env::var_os("TMUX").is_some() {
        write!(out, "\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b"))?;
    } else {
        out.write_all(seq.as_bytes())?;
    }
    out.flush()
}

/// Saves `text` to `vmmap-PID-SECONDS.txt` in the current directory, or in
/// the temporary directory if that is not writable.
pub fn save(text: &str, pid: u32) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("vmmap-{pid}-{secs}.txt");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let write =
        |p: &std::path::Path| vmmap_core::output::write(p, |w| w.write_all(text.as_bytes()));
    match write(&cwd.join(&name)) {
        Ok(()) => Ok(cwd.join(name)),
        Err(_) => {
            let p = std::env::temp_dir().join(name);
            write(&p)?;
            Ok(p)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn osc52_sequence() {
        let mut out = Vec::new();
        if std::env::var_os("TMUX").is_none() {
            super::osc52(&mut out, "0x7f00").unwrap();
            assert_eq!(out, b"\x1b]52;c;MHg3ZjAw\x07");
        }
        assert!(super::osc52(&mut out, &"x".repeat(super::OSC52_LIMIT + 1)).is_err());
    }
}
