//! One palette: the terminal UI, the SVG (and PNG) fragmentation map and
//! the HTML report all draw each memory type in the colour
//! `vmmap_core::palette` gives it.

use std::path::Path;

use ratatui::style::Color;
use vmmap_core::model::{MemoryType, Snapshot};
use vmmap_core::palette::rgb;
use vmmap_render::layout::Layout;
use vmmap_render::report::{write_html, ReportInput};
use vmmap_tui::palette::Depth;
use vmmap_tui::Settings;

fn target() -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn the_ui_the_map_and_the_report_take_their_colours_from_one_palette() {
    let snap = target();
    // The UI, on a 24-bit terminal with the default settings.
    let ui = Settings {
        depth: Depth::TrueColour,
        ..Settings::default()
    };
    for t in MemoryType::ALL {
        assert_eq!(ui.colour(t), rgb(t).parse::<Color>().unwrap(), "UI: {t:?}");
    }
    // The SVG map: each type's legend swatch, and the free gaps' style.
    let svg = Layout::of(&snap).to_svg(&snap);
    for t in MemoryType::ALL {
        match t {
            MemoryType::PageTable => {} // not in the address space
            MemoryType::Free => assert!(
                svg.contains(&format!("rect.f{{fill:{};", rgb(t))),
                "SVG: free gaps"
            ),
            _ => assert!(
                svg.lines()
                    .any(|l| l.contains(&format!("fill=\"{}\"", rgb(t)))
                        && l.contains(&format!(">{}</text>", t.name()))),
                "SVG: {t:?}'s legend"
            ),
        }
    }
    // The report: the type table its script paints with.
    let mut html = Vec::new();
    write_html(
        &ReportInput {
            snapshots: std::slice::from_ref(&snap),
            samples: &[],
            call_tree: None,
            agent: &[],
            source: "target.json",
        },
        &mut html,
    )
    .unwrap();
    let html = String::from_utf8(html).unwrap();
    let data = html
        .split("<script type=\"application/json\" id=\"vmmap-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("the report embeds its data");
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    let types = data["types"].as_array().unwrap();
    assert_eq!(types.len(), MemoryType::ALL.len());
    for (t, row) in MemoryType::ALL.iter().zip(types) {
        assert_eq!(row["id"], t.id());
        assert_eq!(row["colour"], rgb(*t), "report: {t:?}");
    }
}
