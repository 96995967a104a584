//! Call trees: the cost of every call stack folded into a tree of
//! symbolised frames, top-down (callers first, as a flame graph draws it)
//! or bottom-up (allocation sites first, "who calls malloc most").

use std::collections::HashMap;

use super::decode::TraceInfo;
use super::summary::StackCost;
use super::symbols::{Frame, Symbols};

/// Which figure ranks and prunes a tree (and weighs an export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Bytes requested.
    Allocated,
    /// Allocation calls.
    Count,
    /// Bytes still live at the end (or the chosen time).
    Live,
    /// Bytes live at the heap's peak.
    Peak,
    /// Temporary allocations.
    Temporary,
    /// Blocks still live (leaks, when the program exited).
    LiveBlocks,
}

/// The stacks (by id) with a figure above zero, largest first (ties by
/// id): the leaks and allocations lists.
pub fn ranked_stacks(costs: &[StackCost], m: Metric) -> Vec<(usize, StackCost)> {
    let mut v: Vec<(usize, StackCost)> = costs
        .iter()
        .enumerate()
        .filter(|(_, c)| m.of(c) > 0)
        .map(|(i, c)| (i, *c))
        .collect();
    v.sort_by(|x, y| m.of(&y.1).cmp(&m.of(&x.1)).then(x.0.cmp(&y.0)));
    v
}

impl Metric {
    /// The figure of a cost.
    pub fn of(self, c: &StackCost) -> u64 {
        match self {
            Metric::Allocated => c.bytes,
            Metric::Count => c.allocations,
            Metric::Live => c.live_bytes,
            Metric::Peak => c.peak_bytes,
            Metric::Temporary => c.temporary,
            Metric::LiveBlocks => c.live_blocks,
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "allocated" | "bytes" => Metric::Allocated,
            "count" | "calls" => Metric::Count,
            "live" | "leaked" => Metric::Live,
            "peak" => Metric::Peak,
            "temporary" => Metric::Temporary,
            "live-blocks" => Metric::LiveBlocks,
            _ => return None,
        })
    }

    /// The unit of the figure: bytes or a count.
    pub(crate) fn is_bytes(self) -> bool {
        matches!(self, Metric::Allocated | Metric::Live | Metric::Peak)
    }
}

/// One node: a frame reached by one path of callers (top-down) or callees
/// (bottom-up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The frame (function, and its line when the tree is by line).
    pub frame: Frame,
    /// Everything allocated through this node.
    pub total: StackCost,
    /// What this node allocated itself (top-down: calls to the allocator
    /// made right here; bottom-up: equals `total` at the roots).
    pub own: StackCost,
    /// Child nodes, by index.
    pub children: Vec<usize>,
}

/// A call tree. Node 0 is the root, holding the grand total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallTree {
    /// All nodes; children refer to them by index.
    pub nodes: Vec<Node>,
}

/// How to build a tree.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeOptions {
    /// Allocation sites at the roots, callers below.
    pub bottom_up: bool,
    /// One node per line of a function rather than per function.
    pub lines: bool,
}

/// The symbolised frames of a stack, innermost first.
pub fn stack_frames<'a>(
    info: &TraceInfo,
    syms: &'a Symbols,
    image: u32,
    stack: u32,
) -> Vec<&'a Frame> {
    let Some(s) = info.stacks.get(stack as usize) else {
        return Vec::new();
    };
    s.frames
        .iter()
        .flat_map(|a| syms.frames(image, *a))
        .collect()
}

/// The return addresses every costed stack needs resolved.
pub(crate) fn addresses(info: &TraceInfo, costs: &[StackCost], images: &[u32]) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = Vec::new();
    for (id, c) in costs.iter().enumerate() {
        if *c == StackCost::default() {
            continue;
        }
        let image = images.get(id).copied().unwrap_or(0);
        if let Some(s) = info.stacks.get(id) {
            v.extend(s.frames.iter().map(|a| (image, *a)));
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

impl CallTree {
    /// Folds the costs of every stack (indexed by stack id, with the
    /// process image each belongs to) into a tree.
    pub fn build(
        info: &TraceInfo,
        syms: &Symbols,
        costs: &[StackCost],
        images: &[u32],
        opts: TreeOptions,
    ) -> CallTree {
        let root = Node {
            frame: Frame {
                function: "[all]".into(),
                file: None,
                line: None,
                inlined: false,
            },
            total: StackCost::default(),
            own: StackCost::default(),
            children: Vec::new(),
        };
        let mut t = CallTree { nodes: vec![root] };
        let mut index: HashMap<(usize, Frame), usize> = HashMap::new();
        for (id, c) in costs.iter().enumerate() {
            if *c == StackCost::default() {
                continue;
            }
            let image = images.get(id).copied().unwrap_or(0);
            let mut frames = stack_frames(info, syms, image, id as u32);
            if !opts.bottom_up {
                frames.reverse();
            }
            t.nodes[0].total.add(c);
            let mut at = 0;
            for f in frames {
                let key = if opts.lines {
                    f.clone()
                } else {
                    Frame {
                        function: f.function.clone(),
                        file: f.file.clone(),
                        line: None,
                        inlined: f.inlined,
                    }
                };
                let next = match index.get(&(at, key.clone())) {
                    Some(&n) => n,
                    None => {
                        let n = t.nodes.len();
                        t.nodes.push(Node {
                            frame: key.clone(),
                            total: StackCost::default(),
                            own: StackCost::default(),
                            children: Vec::new(),
                        });
                        t.nodes[at].children.push(n);
                        index.insert((at, key), n);
                        n
                    }
                };
                t.nodes[next].total.add(c);
                at = next;
            }
            t.nodes[at].own.add(c);
        }
        t
    }

    /// Sorts every node's children by `metric`, largest first (ties by
    /// name, so output is stable).
    pub fn sort(&mut self, metric: Metric) {
        let keys: Vec<(u64, String)> = self
            .nodes
            .iter()
            .map(|n| (metric.of(&n.total), n.frame.function.clone()))
            .collect();
        for n in &mut self.nodes {
            n.children.sort_by(|a, b| {
                keys[*b]
                    .0
                    .cmp(&keys[*a].0)
                    .then(keys[*a].1.cmp(&keys[*b].1))
            });
        }
    }

    /// The total of the functions named `name` at the top of the tree's
    /// paths, summed over every node with that name that has no ancestor
    /// of the same name (so recursion is not counted twice).
    #[cfg(test)]
    pub(crate) fn function_total(&self, name: &str) -> StackCost {
        let mut sum = StackCost::default();
        let mut stack = vec![0usize];
        while let Some(n) = stack.pop() {
            for &c in &self.nodes[n].children {
                if self.nodes[c].frame.function == name {
                    sum.add(&self.nodes[c].total);
                } else {
                    stack.push(c);
                }
            }
        }
        sum
    }

    /// Paths from the root, outermost first, with the own cost of each
    /// path's last node: the folded-stacks form flame graphs read.
    pub fn folded(&self, lines: bool) -> Vec<(Vec<String>, StackCost)> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, Vec<String>)> = vec![(0, Vec::new())];
        while let Some((n, path)) = stack.pop() {
            let node = &self.nodes[n];
            if n != 0 && node.own != StackCost::default() {
                out.push((path.clone(), node.own));
            }
            for &c in node.children.iter().rev() {
                let mut p = path.clone();
                p.push(self.nodes[c].frame.label(lines));
                stack.push((c, p));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{ModuleInfo, StackInfo};
    use crate::symbols::{CachedModule, SymbolOptions};

    fn frame(name: &str, line: u32) -> Vec<Frame> {
        vec![Frame {
            function: name.into(),
            file: Some("/src/a.c".into()),
            line: Some(line),
            inlined: false,
        }]
    }

    /// main -> work -> leaf (stack 1) and main -> leaf (stack 2), with
    /// symbols from a cache so no file is read.
    fn setup() -> (TraceInfo, Symbols) {
        let info = TraceInfo {
            modules: vec![(
                0,
                0,
                vec![ModuleInfo {
                    base: 0,
                    path: "/bin/app".into(),
                    build_id: vec![0xab, 0xcd],
                    segments: vec![(0, 0x10000, 0, 5)],
                }],
            )],
            stacks: vec![
                StackInfo {
                    frames: vec![],
                    truncated: false,
                },
                StackInfo {
                    frames: vec![0x301, 0x201, 0x101],
                    truncated: false,
                },
                StackInfo {
                    frames: vec![0x311, 0x111],
                    truncated: false,
                },
            ],
            ..TraceInfo::default()
        };
        let mut syms = Symbols::from_cache([CachedModule {
            key: "abcd".into(),
            entries: vec![
                (0x100, frame("main", 10)),
                (0x110, frame("main", 11)),
                (0x200, frame("work", 20)),
                (0x300, frame("leaf", 30)),
                (0x310, frame("leaf", 31)),
            ],
        }]);
        let addrs = addresses(&info, &costs(), &[0, 0, 0]);
        syms.resolve(&info, &addrs, &SymbolOptions::default());
        (info, syms)
    }

    fn costs() -> Vec<StackCost> {
        vec![
            StackCost::default(),
            StackCost {
                allocations: 3,
                bytes: 300,
                live_blocks: 1,
                live_bytes: 100,
                ..StackCost::default()
            },
            StackCost {
                allocations: 1,
                bytes: 50,
                ..StackCost::default()
            },
        ]
    }

    #[test]
    fn top_down_sums_callers_and_keeps_own_costs_at_the_leaves() {
        let (info, syms) = setup();
        let mut t = CallTree::build(&info, &syms, &costs(), &[0, 0, 0], TreeOptions::default());
        t.sort(Metric::Allocated);
        assert_eq!(t.nodes[0].total.bytes, 350);
        let main = t.nodes[0].children[0];
        assert_eq!(t.nodes[main].frame.function, "main");
        assert_eq!(t.nodes[main].total.bytes, 350);
        let kids: Vec<_> = t.nodes[main]
            .children
            .iter()
            .map(|&c| (t.nodes[c].frame.function.as_str(), t.nodes[c].total.bytes))
            .collect();
        assert_eq!(kids, vec![("work", 300), ("leaf", 50)]);
        assert_eq!(t.function_total("leaf").bytes, 350);
        assert_eq!(t.function_total("work").live_bytes, 100);
        let folded = t.folded(false);
        assert_eq!(
            folded
                .iter()
                .map(|(p, c)| (p.join(";"), c.bytes))
                .collect::<Vec<_>>(),
            vec![
                ("main;work;leaf".to_string(), 300),
                ("main;leaf".to_string(), 50)
            ]
        );
    }

    #[test]
    fn bottom_up_starts_at_allocation_sites_and_lines_split_nodes() {
        let (info, syms) = setup();
        let opts = TreeOptions {
            bottom_up: true,
            lines: true,
        };
        let mut t = CallTree::build(&info, &syms, &costs(), &[0, 0, 0], opts);
        t.sort(Metric::Allocated);
        let roots: Vec<_> = t.nodes[0]
            .children
            .iter()
            .map(|&c| t.nodes[c].frame.label(true))
            .collect();
        assert_eq!(roots, vec!["leaf (src/a.c:30)", "leaf (src/a.c:31)"]);
    }
}
