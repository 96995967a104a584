//! Settings that persist between runs: type colours, visible columns and
//! units, in `$XDG_CONFIG_HOME/vmmap/config.toml` (default
//! `~/.config/vmmap/config.toml`). A missing or unreadable file means
//! defaults; a corrupt one is reported and left alone, never overwritten
//! silently.
//!
//! The path comes from the environment, which `sudo -E` (and older
//! sudoers that kept `HOME`) leaves pointing into the invoking user's
//! home. So the file is read only if it is a regular file of a sane size
//! (a FIFO there held the UI at its start, a link to `/dev/zero` filled
//! memory), and it is changed only where neither it nor the directories
//! above it belong to another user (root left root-owned directories in
//! that home, and followed a link put in place of the file).

use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ratatui::style::Color;
use serde::{Deserialize, Serialize};
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;

/// How sizes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// `4K`, `1.2M`, … (binary).
    #[default]
    Human,
    /// Whole KiB, as VMMap shows.
    Kib,
    /// Exact bytes.
    Bytes,
}

impl Units {
    /// The next choice, for the units key.
    pub fn next(self) -> Units {
        match self {
            Units::Human => Units::Kib,
            Units::Kib => Units::Bytes,
            Units::Bytes => Units::Human,
        }
    }

    /// Name shown in the status line.
    pub fn name(self) -> &'static str {
        match self {
            Units::Human => "human",
            Units::Kib => "KiB",
            Units::Bytes => "bytes",
        }
    }

    /// Formats a size; zero is blank, as in VMMap.
    pub fn format(self, v: u64) -> String {
        match self {
            Units::Human => vmmap_core::units::size(v, false),
            Units::Bytes => vmmap_core::units::size(v, true),
            Units::Kib if v == 0 => String::new(),
            Units::Kib => format!("{} K", v.div_ceil(1024)),
        }
    }
}

/// Everything that persists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Units for sizes.
    pub units: Units,
    /// Summary and Details columns, in order (ids from `vmmap explain`).
    pub columns: Vec<String>,
    /// Colour of each memory type, by type id: a name (`red`,
    /// `lightblue`, …) or `#rrggbb`.
    pub colours: std::collections::BTreeMap<String, String>,
    /// How many colours the terminal shows (from `--color` and the
    /// environment at start; not saved).
    #[serde(skip)]
    pub depth: crate::palette::Depth,
}

impl Default for Settings {
    fn default() -> Self {
        let columns = Column::default_set().map(|c| c.id().to_string()).collect();
        let colours = MemoryType::ALL
            .iter()
            .map(|&t| (t.id().to_string(), default_colour_name(t).to_string()))
            .collect();
        Settings {
            units: Units::Human,
            columns,
            colours,
            depth: crate::palette::Depth::default(),
        }
    }
}

/// The default palette, the one of every picture of the project
/// ([`vmmap_core::palette`]): safe for the common colour-vision
/// deficiencies.
fn default_colour_name(t: MemoryType) -> &'static str {
    vmmap_core::palette::rgb(t)
}

impl Settings {
    /// Where the file lives.
    pub fn path() -> Option<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
        };
        Some(base.join("vmmap").join("config.toml"))
    }

    /// Loads the settings; a missing file gives defaults, a bad one gives
    /// defaults and the reason (shown in the status line).
    pub fn load() -> (Settings, Option<String>) {
        let Some(path) = Settings::path() else {
            return (Settings::default(), None);
        };
        match read(&path) {
            Ok(text) => match toml::from_str::<Settings>(&text) {
                Ok(s) => (s, None),
                Err(e) => (
                    Settings::default(),
                    Some(format!(
                        "{} is not valid ({}); using defaults",
                        path.display(),
                        e.message()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Settings::default(), None),
            Err(e) => (
                Settings::default(),
                Some(format!(
                    "cannot read {}: {e}; using defaults",
                    path.display()
                )),
            ),
        }
    }

    /// Saves the settings, creating the directory.
    pub fn save(&self) -> std::io::Result<PathBuf> {
        let path = Settings::path()
            .ok_or_else(|| std::io::Error::other("neither XDG_CONFIG_HOME nor HOME is set"))?;
        ours(&path)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
        vmmap_core::output::write(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
        Ok(path)
    }

    /// Removes the file, so the next start uses defaults (VMMap's
    /// "Restoring Defaults"). Returns the path removed, if there was one.
    pub fn reset() -> std::io::Result<Option<PathBuf>> {
        let Some(path) = Settings::path() else {
            return Ok(None);
        };
        ours(&path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(Some(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The visible columns; unknown names are skipped, and an empty list
    /// falls back to the defaults.
    pub fn visible_columns(&self) -> Vec<Column> {
        let cols: Vec<Column> = self
            .columns
            .iter()
            .filter_map(|c| Column::parse(c))
            .collect();
        if cols.is_empty() {
            Settings::default().visible_columns()
        } else {
            cols
        }
    }

    /// The colour of a type, as the terminal's [`Self::depth`] shows it
    /// (`Reset` with no colour: use [`Self::glyph`]).
    pub fn colour(&self, t: MemoryType) -> Color {
        let c = self
            .colours
            .get(t.id())
            .and_then(|c| c.parse::<Color>().ok())
            .unwrap_or_else(|| default_colour_name(t).parse().unwrap_or(Color::Gray));
        crate::palette::at_depth(c, t, self.depth)
    }

    /// The character a type's cells are filled with when the terminal
    /// shows no colour; `None` when it does.
    pub fn glyph(&self, t: MemoryType) -> Option<char> {
        (self.depth == crate::palette::Depth::Off).then(|| crate::palette::glyph(t))
    }

    /// Whether colours are shown.
    pub fn coloured(&self) -> bool {
        self.depth != crate::palette::Depth::Off
    }
}

/// The most a settings file may hold: every column and colour named takes
/// about 1 KB.
const MAX_BYTES: u64 = 64 << 10;

/// The text of the settings file, if it is a regular file of at most
/// [`MAX_BYTES`]; anything else is refused without waiting or filling
/// memory.
fn read(path: &Path) -> io::Result<String> {
    let f = vmmap_core::regular::open(path)?;
    let mut text = String::new();
    f.take(MAX_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} KiB", MAX_BYTES >> 10),
        ));
    }
    Ok(text)
}

/// Refuses to change the settings at `path` when it, its directory or the
/// one above (or, where those do not exist yet, the nearest directory
/// that does) belongs to a user other than this one and root.
fn ours(path: &Path) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for (level, p) in path.ancestors().enumerate() {
        let meta = match std::fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.uid() != me && meta.uid() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to {}, and vmmap runs as {}: it does not change another user's files \
                     (HOME or XDG_CONFIG_HOME points into their home, as `sudo -E` leaves it; \
                     run vmmap as them, or set XDG_CONFIG_HOME to a directory of yours)",
                    p.display(),
                    vmmap_core::collect::who(meta.uid()),
                    vmmap_core::collect::who(me)
                ),
            ));
        }
        // The file, its directory and the configuration directory; higher
        // only until one exists.
        if level >= 2 {
            break;
        }
    }
    Ok(())
}

/// The settings as TOML text.
pub fn to_toml(s: &Settings) -> String {
    toml::to_string_pretty(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let s = Settings::default();
        let text = toml::to_string_pretty(&s).unwrap();
        assert_eq!(toml::from_str::<Settings>(&text).unwrap(), s);
        assert_eq!(s.visible_columns().len(), 13);
        assert_ne!(s.colour(MemoryType::Heap), s.colour(MemoryType::Stack));
        let partial: Settings = toml::from_str("units = \"bytes\"").unwrap();
        assert_eq!(partial.units, Units::Bytes);
        assert_eq!(partial.columns, s.columns, "missing keys take defaults");
    }

    #[test]
    fn units() {
        assert_eq!(Units::Kib.format(4097), "5 K");
        assert_eq!(Units::Human.format(0), "");
        assert_eq!(Units::Bytes.format(4096), "4096");
    }
}
