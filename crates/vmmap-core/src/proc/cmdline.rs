//! Sans-IO parser for `/proc/PID/cmdline`: NUL-separated arguments.

/// The arguments; empty for a kernel thread or a zombie.
pub fn parse(bytes: &[u8]) -> Vec<String> {
    let b = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_on_nul() {
        assert_eq!(super::parse(b"ls\0-l\0a b\0"), ["ls", "-l", "a b"]);
        assert!(super::parse(b"").is_empty());
    }
}
