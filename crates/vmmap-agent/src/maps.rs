//! The four fields the agent needs from `/proc/self/maps` (range, inode,
//! path). Written here rather than taken from `vmmap_core::proc::smaps`:
//! that parser builds the full typed model with serde and validation,
//! which would pull the analysis crate into every traced program, while
//! this reads a line without allocating.

/// One line: `start-end perms offset dev inode [path]`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    pub start: u64,
    pub end: u64,
    pub inode: u64,
    /// Empty for an anonymous mapping; `[heap]`, `[stack]`… for the
    /// kernel's named ones.
    pub path: &'a [u8],
}

impl Line<'_> {
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// The lines of `maps` that have the expected shape (the kernel writes no
/// other; a line that does not parse is skipped rather than trusted).
pub(crate) fn lines(maps: &[u8]) -> impl Iterator<Item = Line<'_>> {
    maps.split(|&b| b == b'\n').filter_map(line)
}

fn line(l: &[u8]) -> Option<Line<'_>> {
    let hex = |b: &[u8]| u64::from_str_radix(core::str::from_utf8(b).ok()?, 16).ok();
    let mut f = l.splitn(6, |&b| b == b' ');
    let range = f.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    let (_perms, _offset, _dev) = (f.next()?, f.next()?, f.next()?);
    let inode = core::str::from_utf8(f.next()?).ok()?.parse().ok()?;
    let path = f.next().unwrap_or_default().trim_ascii_start();
    (start < end).then_some(Line {
        start,
        end,
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_anonymous_named_and_file_mappings() {
        let maps =
            b"55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n\
7f3b2c000000-7f3b2c021000 rw-p 00000000 00:00 0 \n\
7f3b2e400000-7f3b2e428000 r--p 00000000 fd:01 1319 /usr/lib/x86_64-linux-gnu/libc.so.6\n";
        let got: Vec<_> = lines(maps).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            Line {
                start: 0x55d0_c0a0_0000,
                end: 0x55d0_c0a2_1000,
                inode: 0,
                path: b"[heap]"
            }
        );
        assert_eq!(
            (got[1].inode, got[1].path, got[1].size()),
            (0, &b""[..], 0x21000)
        );
        assert_eq!(
            (got[2].inode, got[2].path),
            (1319, &b"/usr/lib/x86_64-linux-gnu/libc.so.6"[..])
        );
    }

    #[test]
    fn a_path_with_spaces_is_kept_whole() {
        let l = line(b"1000-2000 r--p 00000000 fd:01 7     /tmp/a b  c").unwrap();
        assert_eq!(l.path, b"/tmp/a b  c");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for bad in [
            &b""[..],
            b"zz-2000 r--p 0 0:0 0",
            b"1000 r--p 0 0:0 0",
            b"2000-1000 r--p 0 0:0 0",
            b"1000-2000 r--p 0 0:0",
            b"1000-2000 r--p 0 0:0 x",
        ] {
            assert_eq!(line(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
