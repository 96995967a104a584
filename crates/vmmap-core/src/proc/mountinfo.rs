//! Sans-IO parser for `/proc/PID/mountinfo`, used to learn the filesystem
//! type behind a mapping's device number (tmpfs files mapped shared are
//! Shareable memory, not Mapped Files).

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Mount point, as escaped by the kernel.
    pub mount_point: String,
    /// Filesystem type (`ext4`, `tmpfs`, …).
    pub fs_type: String,
}

/// Parses every well-formed line; malformed lines are skipped because a
/// wrong filesystem type only weakens one piece of evidence.
pub fn parse(text: &[u8]) -> Vec<Mount> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|&x| x == "-") else {
            continue;
        };
        let (Some(dev), Some(mp), Some(fs)) = (f.get(2), f.get(4), f.get(sep + 1)) else {
            continue;
        };
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        out.push(Mount {
            major,
            minor,
            mount_point: mp.to_string(),
            fs_type: fs.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_fs_type() {
        let m = super::parse(b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n29 1 0:26 / /dev/shm rw shared:4 - tmpfs tmpfs rw\nbad line\n");
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[1].major, m[1].minor, m[1].fs_type.as_str()),
            (0, 26, "tmpfs")
        );
    }
}
