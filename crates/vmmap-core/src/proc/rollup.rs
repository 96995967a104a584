//! Sans-IO parser for `/proc/PID/smaps_rollup` (Linux 4.14+): the sums of
//! every smaps figure, computed by the kernel in one walk, plus the
//! rollup-only `Pss_Anon`, `Pss_File` and `Pss_Shmem`.

use super::smaps::{self, SmapsFields};
use super::ParseError;

/// Parses smaps_rollup text. An empty file (the process has no address
/// space, or exited) gives `Ok(None)`.
pub fn parse(text: &[u8]) -> Result<Option<SmapsFields>, ParseError> {
    let maps = smaps::parse(text).map_err(|mut e| {
        e.file = "smaps_rollup";
        e
    })?;
    match maps.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.fields)),
        _ => Err(ParseError::new(
            "smaps_rollup",
            0,
            "more than one [rollup] record",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::smaps::Field;

    #[test]
    fn parses_rollup_only_fields() {
        let t = "55b505f18000-7ffcccbb7000 ---p 00000000 00:00 0                          [rollup]\nRss:                1748 kB\nPss:                 773 kB\nPss_Anon:            112 kB\nPss_File:            661 kB\nPss_Shmem:             0 kB\n";
        let f = parse(t.as_bytes()).unwrap().unwrap();
        assert_eq!(f.get(Field::Rss), Some(1748 * 1024));
        assert_eq!(f.get(Field::PssFile), Some(661 * 1024));
        assert_eq!(f.get(Field::Swap), None);
        assert_eq!(parse(b"").unwrap(), None);
    }
}
