//! The type colours as the terminal can show them: 24-bit, the 256-colour
//! cube, the 16 ANSI colours, or none (`NO_COLOR`, `--color never`,
//! `TERM=dumb`), where each type has its own fill character instead, so
//! the bars and the Summary's key still tell the types apart.
//!
//! The colours themselves are the library's
//! ([`vmmap_core::palette`], which the SVG map and the HTML report use
//! too); this module only fits them to the terminal.

use std::sync::OnceLock;

use ratatui::style::Color;
use vmmap_core::model::MemoryType;

/// What `--color` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColourChoice {
    /// From the environment: `NO_COLOR`, `TERM`, `COLORTERM`.
    #[default]
    Auto,
    /// Colours even where the environment says none (the depth still
    /// follows `TERM` and `COLORTERM`).
    Always,
    /// No colours.
    Never,
}

/// How many colours the terminal shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Depth {
    /// None: types are told apart by their fill characters.
    Off,
    /// The 16 ANSI colours (`TERM=linux`, `xterm`, ...).
    Ansi16,
    /// The 256-colour palette (`TERM=*-256color`).
    Ansi256,
    /// 24-bit colour (`COLORTERM=truecolor` or `24bit`).
    #[default]
    TrueColour,
}

impl Depth {
    /// The depth `choice` and the environment (`var` reads a variable)
    /// give: no colour with `NO_COLOR` set and not empty
    /// (<https://no-color.org>) or `TERM=dumb`, unless `--color always`;
    /// 24-bit with `COLORTERM=truecolor|24bit`; 256 with a `TERM` ending
    /// in `256color`; else 16.
    pub fn detect(choice: ColourChoice, var: impl Fn(&str) -> Option<String>) -> Depth {
        let term = var("TERM").unwrap_or_default();
        let off = match choice {
            ColourChoice::Never => true,
            ColourChoice::Always => false,
            ColourChoice::Auto => var("NO_COLOR").is_some_and(|v| !v.is_empty()) || term == "dumb",
        };
        if off {
            return Depth::Off;
        }
        let colorterm = var("COLORTERM").unwrap_or_default().to_ascii_lowercase();
        if colorterm == "truecolor" || colorterm == "24bit" {
            Depth::TrueColour
        } else if term.ends_with("256color") {
            Depth::Ansi256
        } else {
            Depth::Ansi16
        }
    }
}

static CHOICE: OnceLock<ColourChoice> = OnceLock::new();

/// Records `--color` for the UI started next (set once, before it runs).
pub fn choose(c: ColourChoice) {
    let _ = CHOICE.set(c);
}

/// What `--color` asked for (Auto when not given).
pub fn choice() -> ColourChoice {
    CHOICE.get().copied().unwrap_or_default()
}

/// The default colour of a type among the 16 ANSI colours, chosen by hand
/// so that Heap and Managed Heap are red and blue, never red and green.
fn default_ansi16(t: MemoryType) -> Color {
    match t {
        MemoryType::Image => Color::Magenta,
        MemoryType::MappedFile => Color::LightCyan,
        MemoryType::Shareable => Color::Green,
        MemoryType::Heap => Color::Red,
        MemoryType::ManagedHeap => Color::Blue,
        MemoryType::Stack => Color::LightYellow,
        MemoryType::PrivateData => Color::Yellow,
        MemoryType::PageTable => Color::DarkGray,
        MemoryType::Free => Color::Gray,
    }
}

/// The character a type's cells are filled with when there is no colour
/// (the bars, the timeline, the Summary's key): each type its own, from
/// solid to sparse, so that neighbours in a bar stay apart.
pub fn glyph(t: MemoryType) -> char {
    match t {
        MemoryType::Image => '█',
        MemoryType::MappedFile => '▓',
        MemoryType::Shareable => '▒',
        MemoryType::Heap => '░',
        MemoryType::ManagedHeap => '#',
        MemoryType::Stack => '=',
        MemoryType::PrivateData => '+',
        MemoryType::PageTable => ':',
        MemoryType::Free => '.',
    }
}

/// `c` (a type's configured colour) as a terminal of `depth` shows it:
/// 24-bit as it is; RGB to the nearest of the 256 or of the 16 colours
/// (the type's own 16-colour choice when `c` is the default); nothing
/// when off.
pub fn at_depth(c: Color, t: MemoryType, depth: Depth) -> Color {
    match (depth, c) {
        (Depth::Off, _) => Color::Reset,
        (Depth::TrueColour, c) => c,
        (Depth::Ansi256, Color::Rgb(r, g, b)) => Color::Indexed(nearest_256(r, g, b)),
        (Depth::Ansi16, Color::Rgb(r, g, b)) => {
            if vmmap_core::palette::rgb(t).parse::<Color>().ok() == Some(c) {
                default_ansi16(t)
            } else {
                nearest_16(r, g, b)
            }
        }
        (_, c) => c,
    }
}

/// The nearest colour of xterm's 256: the 6×6×6 cube or the grey ramp.
fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let level = |v: u8| {
        (0..6)
            .min_by_key(|&i| (i32::from(LEVELS[i]) - i32::from(v)).abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = (16 + 36 * ri + 6 * gi + bi) as u8;
    let cube_rgb = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let avg = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let grey_i = ((avg.saturating_sub(8)) / 10).min(23) as u8;
    let grey_v = 8 + 10 * grey_i;
    if dist((r, g, b), (grey_v, grey_v, grey_v)) < dist((r, g, b), cube_rgb) {
        232 + grey_i
    } else {
        cube
    }
}

/// The nearest of the 16 ANSI colours (at xterm's default values).
fn nearest_16(r: u8, g: u8, b: u8) -> Color {
    const ANSI: [(Color, (u8, u8, u8)); 16] = [
        (Color::Black, (0, 0, 0)),
        (Color::Red, (205, 0, 0)),
        (Color::Green, (0, 205, 0)),
        (Color::Yellow, (205, 205, 0)),
        (Color::Blue, (0, 0, 238)),
        (Color::Magenta, (205, 0, 205)),
        (Color::Cyan, (0, 205, 205)),
        (Color::Gray, (229, 229, 229)),
        (Color::DarkGray, (127, 127, 127)),
        (Color::LightRed, (255, 0, 0)),
        (Color::LightGreen, (0, 255, 0)),
        (Color::LightYellow, (255, 255, 0)),
        (Color::LightBlue, (92, 92, 255)),
        (Color::LightMagenta, (255, 0, 255)),
        (Color::LightCyan, (0, 255, 255)),
        (Color::White, (255, 255, 255)),
    ];
    ANSI.iter()
        .min_by_key(|(_, rgb)| dist((r, g, b), *rgb))
        .map_or(Color::Reset, |(c, _)| *c)
}

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    d(a.0, b.0).pow(2) + d(a.1, b.1).pow(2) + d(a.2, b.2).pow(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn depth_from_the_environment() {
        let auto = ColourChoice::Auto;
        assert_eq!(
            Depth::detect(auto, env(&[("TERM", "linux")])),
            Depth::Ansi16
        );
        assert_eq!(
            Depth::detect(auto, env(&[("TERM", "xterm-256color")])),
            Depth::Ansi256
        );
        assert_eq!(
            Depth::detect(auto, env(&[("TERM", "xterm"), ("COLORTERM", "truecolor")])),
            Depth::TrueColour
        );
        assert_eq!(Depth::detect(auto, env(&[("TERM", "dumb")])), Depth::Off);
        let no_color = [("TERM", "xterm-256color"), ("NO_COLOR", "1")];
        assert_eq!(Depth::detect(auto, env(&no_color)), Depth::Off);
        assert_eq!(
            Depth::detect(ColourChoice::Always, env(&no_color)),
            Depth::Ansi256
        );
        assert_eq!(Depth::detect(auto, env(&[("NO_COLOR", "")])), Depth::Ansi16);
        assert_eq!(
            Depth::detect(ColourChoice::Never, env(&[("COLORTERM", "24bit")])),
            Depth::Off
        );
    }

    #[test]
    fn every_type_has_its_own_glyph_and_colour_at_every_depth() {
        for depth in [Depth::Ansi16, Depth::Ansi256, Depth::TrueColour] {
            let colours: Vec<Color> = MemoryType::ALL
                .iter()
                .map(|&t| at_depth(vmmap_core::palette::rgb(t).parse().unwrap(), t, depth))
                .collect();
            for (i, a) in colours.iter().enumerate() {
                assert!(!colours[..i].contains(a), "{depth:?}: {a:?} twice");
            }
        }
        let glyphs: std::collections::HashSet<char> =
            MemoryType::ALL.iter().map(|&t| glyph(t)).collect();
        assert_eq!(glyphs.len(), MemoryType::ALL.len());
        assert_eq!(nearest_256(0xd5, 0x5e, 0x00), 166);
        assert_eq!(nearest_256(0x5f, 0x5f, 0x5f), 59);
    }
}
