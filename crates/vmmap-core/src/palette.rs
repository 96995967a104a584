//! The colour of each memory type: one definition for every picture of
//! the project (the terminal UI's bars and keys, the SVG and PNG
//! fragmentation map, the HTML report), so that Heap is the same colour
//! wherever a user meets it. The front ends only adapt it to their medium
//! (the UI to a 256- or 16-colour terminal, or to fill characters without
//! colour).
//!
//! The palette is Okabe and Ito's (2008), made for the common
//! colour-vision deficiencies, with a dark grey for page tables and a
//! light blue-grey for free address space, which is background rather
//! than memory. Simulated with Machado, Oliveira and Fernandes's (2009)
//! matrices at full severity (the test
//! `the_palette_survives_colour_blindness` below), its closest pair of
//! types is 16.1 ΔE (CIE76) apart under tritanopia, 17.0 under
//! deuteranopia, 20.7 under protanopia, and Heap and Managed Heap over 90
//! under all three: VMMap's red and green, which this replaces, fall to
//! 21.8 under deuteranopia, and its closest pair (Shareable, Page Table)
//! to 5.7.

use crate::model::MemoryType;

/// The colour of a type, `#rrggbb`.
pub fn rgb(t: MemoryType) -> &'static str {
    match t {
        MemoryType::Image => "#cc79a7",       // reddish purple
        MemoryType::MappedFile => "#56b4e9",  // sky blue
        MemoryType::Shareable => "#009e73",   // bluish green
        MemoryType::Heap => "#d55e00",        // vermillion
        MemoryType::ManagedHeap => "#0072b2", // blue
        MemoryType::Stack => "#e69f00",       // orange
        MemoryType::PrivateData => "#f0e442", // yellow
        MemoryType::PageTable => "#5f5f5f",   // dark grey
        MemoryType::Free => "#b0bec5",        // blue-grey, light
    }
}

/// [`rgb`] as its three channels.
pub fn channels(t: MemoryType) -> (u8, u8, u8) {
    let hex = rgb(t);
    // The table above is all `#rrggbb`: the test below reads every entry.
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    (c(1), c(3), c(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CIELAB (D65) of an sRGB colour seen through `m` (a simulation
    /// matrix on linear RGB; identity for normal vision).
    fn lab(rgb: (u8, u8, u8), m: &[[f64; 3]; 3]) -> [f64; 3] {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let v = [lin(rgb.0), lin(rgb.1), lin(rgb.2)];
        let s: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| m[i][j] * v[j]).sum::<f64>().clamp(0.0, 1.0))
            .collect();
        let x = (0.4124 * s[0] + 0.3576 * s[1] + 0.1805 * s[2]) / 0.95047;
        let y = 0.2126 * s[0] + 0.7152 * s[1] + 0.0722 * s[2];
        let z = (0.0193 * s[0] + 0.1192 * s[1] + 0.9505 * s[2]) / 1.08883;
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        [
            116.0 * f(y) - 16.0,
            500.0 * (f(x) - f(y)),
            200.0 * (f(y) - f(z)),
        ]
    }

    #[test]
    fn every_entry_is_rrggbb_and_distinct() {
        for (i, &t) in MemoryType::ALL.iter().enumerate() {
            let c = rgb(t);
            assert!(
                c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()),
                "{t:?}: {c}"
            );
            let hex = format!(
                "#{:02x}{:02x}{:02x}",
                channels(t).0,
                channels(t).1,
                channels(t).2
            );
            assert_eq!(hex, c);
            assert!(
                !MemoryType::ALL[..i].iter().any(|&u| rgb(u) == c),
                "{t:?}: {c} twice"
            );
        }
    }

    /// The palette through Machado et al.'s (2009) severity-1.0
    /// simulations of protanopia, deuteranopia and tritanopia: every two
    /// types of the bars stay at least 15 ΔE (CIE76) apart, Heap and
    /// Managed Heap at least 80.
    #[test]
    fn the_palette_survives_colour_blindness() {
        const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        const SIMULATIONS: [(&str, [[f64; 3]; 3]); 4] = [
            ("normal", IDENTITY),
            (
                "protanopia",
                [
                    [0.152286, 1.052583, -0.204868],
                    [0.114503, 0.786281, 0.099216],
                    [-0.003882, -0.048116, 1.051998],
                ],
            ),
            (
                "deuteranopia",
                [
                    [0.367322, 0.860646, -0.227968],
                    [0.280085, 0.672501, 0.047413],
                    [-0.011820, 0.042940, 0.968881],
                ],
            ),
            (
                "tritanopia",
                [
                    [1.255528, -0.076749, -0.178779],
                    [-0.078411, 0.930809, 0.147602],
                    [0.004733, 0.691367, 0.303900],
                ],
            ),
        ];
        let types: Vec<MemoryType> = MemoryType::ALL
            .into_iter()
            .filter(|&t| t != MemoryType::Free)
            .collect();
        for (name, m) in &SIMULATIONS {
            let d = |a: MemoryType, b: MemoryType| {
                let (x, y) = (lab(channels(a), m), lab(channels(b), m));
                ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt()
            };
            for (i, &a) in types.iter().enumerate() {
                for &b in &types[i + 1..] {
                    assert!(
                        d(a, b) >= 15.0,
                        "{name}: {a:?} and {b:?} {:.1} apart",
                        d(a, b)
                    );
                }
            }
            let heaps = d(MemoryType::Heap, MemoryType::ManagedHeap);
            assert!(heaps >= 80.0, "{name}: the heaps {heaps:.1} apart");
        }
    }
}
