//! The fragmentation map: the whole user address space as a sequence of
//! regions and free gaps on a compressed axis, with the fragmentation
//! figures (gap count, free bytes, largest free block), and its SVG
//! rendering. Pure: a snapshot in, data or text out.
//!
//! # The axis
//!
//! A 47-bit address space is 128 TiB; a 4 KiB page drawn to scale would
//! be a 30-billionth of it. So every region and every gap gets a length
//! that grows with the logarithm of its size, in integer *units*:
//!
//! ```text
//! units(size) = 16 · (1 + k) + 16 · (pages − 2^k) / 2^k,   pages = ⌈size / page⌉, k = ⌊log2 pages⌋
//! ```
//!
//! that is 16 units per doubling, interpolated linearly within a doubling:
//! one page is 16 units, two pages 32, 1 GiB (2^18 pages) 304, the 128 TiB
//! of an empty 47-bit space 576. Order is kept; a region is never shorter
//! than a page's 16 units, so the smallest one stays visible; sizes compare
//! on a log scale (twice as long is 65,536 times as big at most, never
//! less than twice as big). Integer arithmetic only, so the picture is the
//! same on every machine.

use std::fmt::Display;
use std::io;

use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::Writer;

use serde::Serialize;

use vmmap_core::model::{MemoryType, Region, Snapshot};
/// The type colours, the UI's and the report's too.
use vmmap_core::palette::rgb as colour;
use vmmap_core::summary::{free_blocks, FreeBlock};
use vmmap_core::xml::{line, text};

/// Units per doubling of size (and for one page).
pub(crate) const UNITS_PER_DOUBLING: u64 = 16;

/// One stretch of the axis: a top-level region or a free gap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// First address.
    #[serde(serialize_with = "vmmap_core::hex::serialize")]
    pub start: u64,
    /// One past the last.
    #[serde(serialize_with = "vmmap_core::hex::serialize")]
    pub end: u64,
    /// The region's type, `Free` for a gap.
    #[serde(rename = "type")]
    pub memory_type: MemoryType,
    /// PROT_NONE: address space reserved, nothing usable. A region whose
    /// VMAs are partly PROT_NONE (an arena's tail, a Java heap beyond its
    /// committed part) is cut into segments, one per run of either kind.
    pub reserved: bool,
    /// Index of the region in `Snapshot::regions` (None for a gap); the
    /// same for every segment of one region.
    pub region: Option<usize>,
    /// Where it starts on the axis, in units.
    pub pos: u64,
    /// Its length on the axis, in units.
    pub units: u64,
}

fn hex_block<S: serde::Serializer>(v: &Option<FreeBlock>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match v {
        None => s.serialize_none(),
        Some(b) => {
            let mut st = s.serialize_struct("FreeBlock", 3)?;
            st.serialize_field("start", &vmmap_core::hex::Hex(b.start))?;
            st.serialize_field("end", &vmmap_core::hex::Hex(b.end))?;
            st.serialize_field("size", &b.size())?;
            st.end()
        }
    }
}

/// The whole map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Regions and gaps in address order, covering the user address space
    /// from `vm.mmap_min_addr` to its top (and any region outside it, such
    /// as the vsyscall page, at its place).
    pub segments: Vec<Segment>,
    /// The axis length in units.
    pub total_units: u64,
    /// Number of free gaps.
    pub gap_count: usize,
    /// Free bytes in all gaps.
    pub free_bytes: u64,
    /// The largest free gap (hex `start` and `end` in JSON).
    #[serde(serialize_with = "hex_block")]
    pub largest_free: Option<FreeBlock>,
    /// Bytes of PROT_NONE VMAs (reserved, unusable until mprotect), in
    /// whole regions or in parts of one: the Summary's Size minus its
    /// Committed.
    pub reserved_bytes: u64,
    /// Number of regions (a region cut into segments counts once).
    pub region_count: usize,
}

/// The length on the axis of `size` bytes (see the module docs).
pub(crate) fn units(size: u64, page_size: u64) -> u64 {
    let page = page_size.max(1);
    let pages = size.div_ceil(page).max(1);
    let k = u64::from(pages.ilog2());
    let base = 1u64 << k;
    UNITS_PER_DOUBLING * (1 + k)
        + u64::try_from(
            u128::from(UNITS_PER_DOUBLING) * u128::from(pages - base) / u128::from(base),
        )
        .unwrap_or(0)
}

impl Layout {
    /// Lays out `snap`.
    pub fn of(snap: &Snapshot) -> Layout {
        let page = snap.kernel.page_size;
        let gaps = free_blocks(snap);
        let mut segments = Vec::with_capacity(snap.regions.len() + gaps.len());
        let mut g = gaps.iter().peekable();
        for (i, r) in snap.regions.iter().enumerate() {
            while let Some(f) = g.next_if(|f| f.start < r.start) {
                segments.push(gap(f));
            }
            // One segment per run of VMAs that are all reserved or all
            // accessible: an arena or a Java heap is one region whose
            // PROT_NONE tail must still be drawn as reserved.
            let vmas = r.vmas();
            let mut k = 0;
            while k < vmas.len() {
                let reserved = vmas[k].perms.none();
                let run = vmas[k..]
                    .iter()
                    .take_while(|v| v.perms.none() == reserved)
                    .count();
                let start = if k == 0 { r.start } else { vmas[k].start };
                k += run;
                let end = vmas.get(k).map_or(r.end, |v| v.start);
                segments.push(Segment {
                    start,
                    end,
                    memory_type: r.memory_type,
                    reserved,
                    region: Some(i),
                    pos: 0,
                    units: 0,
                });
            }
        }
        for f in g {
            segments.push(gap(f));
        }
        let mut pos = 0;
        for s in &mut segments {
            s.pos = pos;
            s.units = units(s.end - s.start, page);
            pos += s.units;
        }
        Layout {
            total_units: pos,
            gap_count: gaps.len(),
            free_bytes: gaps.iter().map(FreeBlock::size).sum(),
            largest_free: gaps
                .iter()
                .copied()
                .max_by(|a, b| a.size().cmp(&b.size()).then(b.start.cmp(&a.start))),
            // Size minus Committed over every region: the bytes of
            // PROT_NONE VMAs, whole regions or parts of one.
            reserved_bytes: snap
                .vmas()
                .filter(|v| v.perms.none())
                .map(Region::size)
                .sum(),
            region_count: snap.regions.len(),
            segments,
        }
    }

    /// The segment shown in each of `n` equal cells of the axis: the
    /// region that covers most of the cell, or a gap only when no region
    /// touches it (so that a region smaller than a cell still shows).
    pub fn cells(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        if n == 0 || self.segments.is_empty() {
            return out;
        }
        let total = u128::from(self.total_units.max(1));
        let n128 = n as u128;
        let mut first = 0;
        for c in 0..n128 {
            // The cell covers [lo, hi) in units scaled by n.
            let lo = c * total;
            let hi = (c + 1) * total;
            while first + 1 < self.segments.len()
                && u128::from(self.segments[first].pos + self.segments[first].units) * n128 <= lo
            {
                first += 1;
            }
            let mut best: Option<(bool, u128, usize)> = None;
            let mut i = first;
            while i < self.segments.len() && u128::from(self.segments[i].pos) * n128 < hi {
                let s = &self.segments[i];
                let a = (u128::from(s.pos) * n128).max(lo);
                let b = (u128::from(s.pos + s.units) * n128).min(hi);
                let key = (s.region.is_some(), b.saturating_sub(a), i);
                if best.is_none_or(|(r, o, _)| (key.0, key.1) > (r, o)) {
                    best = Some(key);
                }
                i += 1;
            }
            out.push(best.map_or(first, |(_, _, i)| i));
        }
        out
    }

    /// The same picture as a PNG (the SVG rasterised with resvg; labels
    /// use the system's fonts, and are left out where it has none).
    pub fn to_png(&self, snap: &Snapshot) -> Result<Vec<u8>, String> {
        use resvg::{tiny_skia, usvg};
        let svg = self.to_svg(snap);
        let mut opt = usvg::Options::default();
        let db = opt.fontdb_mut();
        db.load_system_fonts();
        // The SVG asks for the generic `monospace` and `sans-serif`, which
        // fontdb maps to Windows fonts: point them at what is installed.
        let family = |db: &resvg::usvg::fontdb::Database, mono: bool| {
            db.faces()
                .find(|f| f.monospaced == mono)
                .and_then(|f| f.families.first().map(|n| n.0.clone()))
        };
        if let Some(f) = family(db, true) {
            db.set_monospace_family(f);
        }
        if let Some(f) = family(db, false) {
            db.set_sans_serif_family(f);
        }
        let tree = usvg::Tree::from_str(&svg, &opt).map_err(|e| format!("SVG: {e}"))?;
        let size = tree.size().to_int_size();
        let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
            .ok_or_else(|| format!("a {}x{} picture is too large", size.width(), size.height()))?;
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
        pixmap.encode_png().map_err(|e| format!("PNG: {e}"))
    }

    /// The SVG picture: the axis wrapped into rows, a rectangle per
    /// segment (a tooltip with its addresses, type, size and Details), the
    /// start address of each row, the figures and a legend. Deterministic:
    /// the same snapshot gives the same bytes.
    pub fn to_svg(&self, snap: &Snapshot) -> String {
        let mut x = Writer::new(Vec::new());
        // Writing into a Vec cannot fail.
        let _ = self.write_svg(snap, &mut x);
        // Every piece written is a `&str`: the bytes are UTF-8.
        String::from_utf8_lossy(&x.into_inner()).into_owned()
    }

    /// [`Layout::to_svg`], element by element through quick-xml's writer.
    fn write_svg<W: io::Write>(&self, snap: &Snapshot, x: &mut Writer<W>) -> io::Result<()> {
        const WIDTH: u64 = 1100;
        const LEFT: u64 = 130;
        const ROW_W: u64 = WIDTH - LEFT - 10;
        const ROW_H: u64 = 22;
        const ROW_GAP: u64 = 6;
        const TOP: u64 = 70;
        let rows = self.total_units.div_ceil(ROW_W).max(1);
        let legend_y = TOP + rows * (ROW_H + ROW_GAP) + 10;
        let height = legend_y + 40;
        let view_box = format!("0 0 {WIDTH} {height}");
        let svg = element(
            "svg",
            &[
                ("xmlns", &"http://www.w3.org/2000/svg"),
                ("width", &WIDTH),
                ("height", &height),
                ("viewBox", &view_box),
            ],
        );
        line(x, 0, [Event::Start(svg)])?;
        line(
            x,
            0,
            [
                Event::Start(BytesStart::new("style")),
                text(&format!(
                    "text{{font-family:monospace;font-size:12px;fill:#222}}rect.f{{fill:{};stroke:#90a4ae;stroke-width:0.5}}rect.r{{fill-opacity:0.35}}",
                    colour(MemoryType::Free)
                )),
                Event::End(BytesEnd::new("style")),
            ],
        )?;
        let label = |x: &mut Writer<W>, attrs: &Attrs<'_>, s: &str| line(x, 0, labelled(attrs, s));
        label(
            x,
            &[
                ("x", &10),
                ("y", &20),
                ("style", &"font-size:15px;font-weight:bold"),
            ],
            &format!(
                "Fragmentation map of {} ({})",
                snap.process.pid, snap.process.name
            ),
        )?;
        let largest = self.largest_free.map_or_else(
            || "none".to_string(),
            |f| {
                format!(
                    "{} at {:#x}-{:#x}",
                    vmmap_core::units::size(f.size(), false),
                    f.start,
                    f.end
                )
            },
        );
        label(
            x,
            &[("x", &10), ("y", &40)],
            &format!(
                "{} regions, {} free gaps, {} free, largest free block {largest}, {} reserved (PROT_NONE)",
                self.region_count,
                self.gap_count,
                figure(self.free_bytes),
                figure(self.reserved_bytes),
            ),
        )?;
        label(
            x,
            &[("x", &10), ("y", &56)],
            &format!(
                "Compressed axis: each region and gap is 16 units per doubling of its size (a page is 16), 1 unit = 1 px; rows wrap at {ROW_W} px."
            ),
        )?;
        let mut row_labelled = vec![false; rows as usize];
        for seg in &self.segments {
            let mut p = seg.pos;
            let end = seg.pos + seg.units;
            while p < end {
                let row = p / ROW_W;
                let x0 = p % ROW_W;
                let w = (end - p).min(ROW_W - x0);
                let y = TOP + row * (ROW_H + ROW_GAP);
                if let Some(l) = row_labelled.get_mut(row as usize) {
                    if !*l {
                        *l = true;
                        label(
                            x,
                            &[("x", &10), ("y", &(y + 15))],
                            &format!("{:#014x}", seg.start),
                        )?;
                    }
                }
                let title = self.title(snap, seg);
                let at: [(&str, &dyn Display); 4] = [
                    ("x", &(LEFT + x0)),
                    ("y", &y),
                    ("width", &w),
                    ("height", &ROW_H),
                ];
                let fill = colour(seg.memory_type);
                let (class, paint): (&Attrs<'_>, &Attrs<'_>) = match (seg.region, seg.reserved) {
                    (None, _) => (&[("class", &"f")], &[]),
                    (Some(_), reserved) => (
                        if reserved { &[("class", &"r")] } else { &[] },
                        &[
                            ("fill", &fill),
                            ("stroke", &"#37474f"),
                            ("stroke-width", &"0.5"),
                        ],
                    ),
                };
                let rect = element("rect", &[class, &at, paint].concat());
                line(
                    x,
                    0,
                    [
                        Event::Start(rect),
                        Event::Start(BytesStart::new("title")),
                        text(&title),
                        Event::End(BytesEnd::new("title")),
                        Event::End(BytesEnd::new("rect")),
                    ],
                )?;
                p += w;
            }
        }
        let mut lx = 10;
        let swatch = |x: &mut Writer<W>, paint: &Attrs<'_>, lx: u64, name: &str| {
            let at: [(&str, &dyn Display); 4] = [
                ("x", &lx),
                ("y", &legend_y),
                ("width", &14),
                ("height", &14),
            ];
            let mut events = vec![Event::Empty(element("rect", &[paint, &at].concat()))];
            events.extend(labelled(
                &[("x", &(lx + 18)), ("y", &(legend_y + 12))],
                name,
            ));
            line(x, 0, events)
        };
        for t in MemoryType::ALL {
            if t == MemoryType::PageTable {
                continue;
            }
            let fill = colour(t);
            let paint: [(&str, &dyn Display); 1] = if t == MemoryType::Free {
                [("class", &"f")]
            } else {
                [("fill", &fill)]
            };
            swatch(x, &paint, lx, t.name())?;
            lx += 30 + 8 * t.name().len() as u64;
        }
        swatch(
            x,
            &[("class", &"r"), ("fill", &colour(MemoryType::PrivateData))],
            lx,
            "reserved (PROT_NONE)",
        )?;
        line(x, 0, [Event::End(BytesEnd::new("svg"))])
    }

    /// The tooltip text of a segment, raw (escaped where it is written).
    pub fn title(&self, snap: &Snapshot, seg: &Segment) -> String {
        let size = vmmap_core::units::size(seg.end - seg.start, false);
        match seg.region.and_then(|i| snap.regions.get(i)) {
            Some(r) => format!(
                "{:#x}-{:#x} {} {size} {}{}",
                seg.start,
                seg.end,
                r.memory_type.name(),
                r.perms.as_str(),
                if r.details.is_empty() {
                    String::new()
                } else {
                    format!(" {}", r.details)
                }
            ),
            None => format!("{:#x}-{:#x} Free {size}", seg.start, seg.end),
        }
    }
}

/// A header figure: never blank, `0` for nothing (`units::size` leaves
/// zero blank, as table cells do).
pub fn figure(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        vmmap_core::units::size(v, false)
    }
}

fn gap(f: &FreeBlock) -> Segment {
    Segment {
        start: f.start,
        end: f.end,
        memory_type: MemoryType::Free,
        reserved: false,
        region: None,
        pos: 0,
        units: 0,
    }
}

/// Attributes in the order written: names and values.
type Attrs<'a> = [(&'a str, &'a dyn Display)];

/// An element's start tag with its attributes, in order. The values are
/// numbers and fixed words: quick-xml's own escaping is all they need.
fn element<'a>(name: &'a str, attrs: &Attrs<'_>) -> BytesStart<'a> {
    let mut e = BytesStart::new(name);
    for (k, v) in attrs {
        e.push_attribute((*k, v.to_string().as_str()));
    }
    e
}

/// A `<text>` element holding `s`.
fn labelled(attrs: &Attrs<'_>, s: &str) -> [Event<'static>; 3] {
    [
        Event::Start(element("text", attrs).into_owned()),
        text(s).into_owned(),
        Event::End(BytesEnd::new("text")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmmap_core::model::Region;
    use vmmap_core::proc::smaps::Mapping;

    const K: u64 = 1024;

    fn region(start: u64, len: u64, perms: &[u8; 4], t: MemoryType, details: &str) -> Region {
        let mut r = Region::from_mapping(Mapping {
            start,
            end: start + len,
            perms: *perms,
            ..Mapping::default()
        });
        r.memory_type = t;
        r.details = details.into();
        r
    }

    /// The memtext fixture's pattern, alone in a small address space:
    /// 4K, hole 12K, 64K, hole 1M, 8K reserved, hole 4K, 16K shared.
    fn pattern() -> Snapshot {
        let base = 0x3200_0000_0000;
        let mut s = Snapshot::from_regions(
            42,
            0,
            vec![
                region(base, 4 * K, b"rw-p", MemoryType::PrivateData, ""),
                region(
                    base + 16 * K,
                    64 * K,
                    b"rw-p",
                    MemoryType::Heap,
                    "Heap ID: 1",
                ),
                region(base + 1104 * K, 8 * K, b"---p", MemoryType::PrivateData, ""),
                region(
                    base + 1116 * K,
                    16 * K,
                    b"rw-s",
                    MemoryType::Shareable,
                    "<shared & anon>",
                ),
            ],
        );
        s.process.name = "pattern".into();
        s.kernel.mmap_min_addr = base;
        s.kernel.user_address_limit = base + 4 * 1024 * K;
        s
    }

    #[test]
    fn units_grow_with_the_log_of_the_size() {
        assert_eq!(units(1, 4096), 16);
        assert_eq!(units(4096, 4096), 16);
        assert_eq!(units(8192, 4096), 32);
        assert_eq!(units(12288, 4096), 40);
        assert_eq!(units(16384, 4096), 48);
        assert_eq!(units(1 << 30, 4096), 304);
        assert_eq!(units(1 << 47, 4096), 576);
        assert_eq!(units(u64::MAX, 4096), 16 * 53);
        for s in (1..2000).map(|i| i * 4096) {
            assert!(units(s + 4096, 4096) >= units(s, 4096));
        }
    }

    #[test]
    fn gaps_and_largest_free_block_exactly() {
        let l = Layout::of(&pattern());
        let base = 0x3200_0000_0000u64;
        let gaps: Vec<(u64, u64)> = l
            .segments
            .iter()
            .filter(|s| s.region.is_none())
            .map(|s| (s.start - base, s.end - s.start))
            .collect();
        assert_eq!(
            gaps,
            vec![
                (4 * K, 12 * K),
                (80 * K, 1024 * K),
                (1112 * K, 4 * K),
                (1132 * K, 4096 * K - 1132 * K)
            ]
        );
        assert_eq!(l.gap_count, 4);
        assert_eq!(l.free_bytes, 4096 * K - 92 * K);
        assert_eq!(
            l.largest_free,
            Some(FreeBlock {
                start: base + 1132 * K,
                end: base + 4096 * K
            })
        );
        assert_eq!(l.reserved_bytes, 8 * K);
        let kinds: Vec<(MemoryType, bool, u64)> = l
            .segments
            .iter()
            .map(|s| (s.memory_type, s.reserved, s.units))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (MemoryType::PrivateData, false, 16),
                (MemoryType::Free, false, 40),
                (MemoryType::Heap, false, 80),
                (MemoryType::Free, false, 144),
                (MemoryType::PrivateData, true, 32),
                (MemoryType::Free, false, 16),
                (MemoryType::Shareable, false, 48),
                (MemoryType::Free, false, 16 * 10 + 16 * (741 - 512) / 512),
            ]
        );
        assert_eq!(l.total_units, kinds.iter().map(|k| k.2).sum::<u64>());
    }

    #[test]
    fn a_partly_reserved_region_is_cut_where_its_reservation_starts() {
        let base = 0x3200_0000_0000u64;
        let mut heap = region(base, 64 * K, b"rw-p", MemoryType::Heap, "");
        heap.sub_blocks = vec![
            region(base, 16 * K, b"rw-p", MemoryType::Heap, ""),
            region(base + 16 * K, 48 * K, b"---p", MemoryType::Heap, ""),
        ];
        let mut snap = Snapshot::from_regions(1, 0, vec![heap]);
        snap.kernel.mmap_min_addr = base;
        snap.kernel.user_address_limit = base + 64 * K;
        let l = Layout::of(&snap);
        let segs: Vec<(u64, u64, bool, Option<usize>)> = l
            .segments
            .iter()
            .map(|s| (s.start - base, s.end - base, s.reserved, s.region))
            .collect();
        assert_eq!(
            segs,
            vec![(0, 16 * K, false, Some(0)), (16 * K, 64 * K, true, Some(0))]
        );
        assert_eq!((l.reserved_bytes, l.region_count), (48 * K, 1));
        assert!(l.to_svg(&snap).contains(", 48K reserved (PROT_NONE)"));
    }

    #[test]
    fn cells_keep_small_regions_visible() {
        let l = Layout::of(&pattern());
        // Fewer cells than segments' worth: every region still gets one.
        let cells = l.cells(8);
        for (i, s) in l.segments.iter().enumerate() {
            if s.region.is_some() {
                assert!(cells.contains(&i), "region {i} lost in {cells:?}");
            }
        }
        // Many cells: in order, each segment's share about its length.
        let cells = l.cells(l.total_units as usize);
        assert_eq!(cells.len(), l.total_units as usize);
        assert!(cells.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(cells.iter().filter(|&&c| c == 0).count(), 16);
        assert!(l.cells(0).is_empty());
    }

    #[test]
    fn svg_rows_wrap_and_split_segments() {
        // 40 regions of 64 pages with one-page gaps: 40 * (112 + 16) units
        // and a final gap, several 960-unit rows.
        let regions = (0..40u64)
            .map(|i| {
                region(
                    0x10_0000 + i * 65 * 4096,
                    64 * 4096,
                    b"rw-p",
                    MemoryType::Heap,
                    "",
                )
            })
            .collect();
        let mut snap = Snapshot::from_regions(1, 0, regions);
        snap.kernel.mmap_min_addr = 0x10_0000;
        snap.kernel.user_address_limit = 0x10_0000 + 40 * 65 * 4096;
        let l = Layout::of(&snap);
        let svg = l.to_svg(&snap);
        let widths: u64 = svg
            .lines()
            .filter(|line| line.starts_with("<rect") && line.contains("<title>"))
            .map(|line| {
                let w = line.split("width=\"").nth(1).unwrap();
                w[..w.find('"').unwrap()].parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(widths, l.total_units, "every unit drawn once");
        let rows = l.total_units.div_ceil(960);
        assert!(rows >= 5);
        assert_eq!(
            svg.lines()
                .filter(|line| line.starts_with("<text x=\"10\" y=") && line.contains(">0x"))
                .count() as u64,
            rows,
            "each row is labelled with its first address"
        );
        // A segment that crosses a row end is drawn as two rectangles with
        // the same tooltip.
        let crossing = l
            .segments
            .iter()
            .find(|s| s.pos / 960 != (s.pos + s.units - 1) / 960)
            .expect("a segment crosses a row end");
        let title = l.title(&snap, crossing);
        assert_eq!(svg.matches(&format!("<title>{title}</title>")).count(), 2);
    }

    #[test]
    fn png_draws_the_same_picture() {
        use resvg::tiny_skia::Pixmap;
        let snap = pattern();
        let l = Layout::of(&snap);
        let png = l.to_png(&snap).unwrap();
        let pix = Pixmap::decode_png(&png).unwrap();
        let svg = l.to_svg(&snap);
        let attr = |name: &str| -> u32 {
            let at = svg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        assert_eq!((pix.width(), pix.height()), (attr("width"), attr("height")));
        // Every type in the snapshot is painted in its colour; Stack, which
        // it lacks, appears only as the legend's swatch.
        let count = |t: MemoryType| {
            let c = colour(t);
            let rgb = |i: usize| u8::from_str_radix(&c[i..i + 2], 16).unwrap();
            pix.pixels()
                .iter()
                .filter(|p| (p.red(), p.green(), p.blue()) == (rgb(1), rgb(3), rgb(5)))
                .count()
        };
        let legend = count(MemoryType::Stack);
        assert!(legend > 0);
        for t in [
            MemoryType::Heap,
            MemoryType::PrivateData,
            MemoryType::Shareable,
        ] {
            assert!(count(t) > legend, "{t:?} is not drawn");
        }
    }

    #[test]
    fn svg_snapshot() {
        let snap = pattern();
        let svg = Layout::of(&snap).to_svg(&snap);
        assert!(svg.contains("&lt;shared &amp; anon&gt;"));
        insta::assert_snapshot!(svg);
    }
}
