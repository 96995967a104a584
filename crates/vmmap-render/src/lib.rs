/*!
Pictures and documents of what `vmmap-core` computes, kept out of the core
so that it holds the model and the computations only:

- [`text`]: the text report of a snapshot (header, Summary and Details
  tables), as `vmmap PID` prints it.
- [`diff`]: the text, JSON and CSV renderings of a comparison of two
  snapshots (`vmmap_core::diff` computes it).
- [`layout`]: the fragmentation map (regions and gaps on a compressed
  axis) and its SVG picture, rasterised to PNG with resvg.
- [`report`]: the single-file HTML report (bar graphs, Summary, Details,
  timeline, diff, fragmentation map, flame graph) with its data inline.

See `docs/architecture.md`.
*/

#![warn(missing_docs)]

pub mod diff;
pub mod layout;
pub mod report;
pub mod text;
