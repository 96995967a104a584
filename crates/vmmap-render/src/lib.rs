/*!
Pictures and documents of what `vmmap-core` computes, kept out of the core
so that it holds the model and the computations only:

- [`layout`]: the fragmentation map (regions and gaps on a compressed
  axis) and its SVG picture, rasterised to PNG with resvg.
- [`report`]: the single-file HTML report (bar graphs, Summary, Details,
  timeline, diff, fragmentation map, flame graph) with its data inline.

See `docs/architecture.md`.
*/

#![warn(missing_docs)]

pub mod layout;
pub mod report;
