//! A layered drawing of a small directed graph, left to right (Sugiyama's
//! method), for the SVG lineage: pure geometry, no SVG.
//!
//! 1. Layers: upstream graphs converge on the root, so each node sits as
//!    far right as its longest path to the root allows (an input next to
//!    the run that read it); downstream graphs diverge, so each node sits
//!    right after its longest path from the root.
//! 2. An edge that spans several layers gets a dummy node in each layer it
//!    crosses, so it is routed through the gaps between boxes instead of
//!    behind them.
//! 3. Order within layers: barycenter sweeps, down and up, keeping the
//!    order with the fewest crossings (counted exactly, by inversions).
//! 4. Vertical positions: each node moves towards the mean of its
//!    neighbours (long edges pull hardest, so they run straight), placed
//!    in order with minimum gaps by isotonic regression (pool adjacent
//!    violators) — the closest positions that keep the order and the gaps.

use crate::provenance::lineage::Direction;

/// Horizontal gap between layers.
pub const H_GAP: f64 = 64.0;
/// Vertical gap between boxes of a layer.
const V_GAP: f64 = 18.0;
/// Vertical gap next to a dummy (an edge passing through).
const DUMMY_GAP: f64 = 10.0;
/// Width of a layer that holds only passing edges.
const DUMMY_COLUMN: f64 = 24.0;
const ORDER_SWEEPS: usize = 12;
const PLACE_PASSES: usize = 8;

/// Where everything went. Coordinates start at (0, 0).
#[derive(Clone, Debug)]
pub struct Placed {
    /// Top-left corner of each node's box.
    pub boxes: Vec<(f64, f64)>,
    /// For each edge, its points: the start (right side of the source),
    /// then an (entry, exit) pair per layer it passes through, then the
    /// end (left side of the target). Between consecutive pairs the edge
    /// curves; inside a pair it is straight.
    pub routes: Vec<Vec<(f64, f64)>>,
    pub width: f64,
    pub height: f64,
    /// Edge crossings left in the drawing.
    pub crossings: usize,
}

/// The layer of each node (see the module doc).
pub fn layers(n: usize, edges: &[(usize, usize)], direction: Direction) -> Vec<usize> {
    // Walk from the side the graph grows from: sources for downstream
    // graphs, sinks (the root) for upstream ones.
    let from_sinks = direction == Direction::Upstream;
    let mut forward = vec![Vec::new(); n];
    for &(u, v) in edges {
        if from_sinks {
            forward[v].push(u);
        } else {
            forward[u].push(v);
        }
    }
    let mut indegree = vec![0usize; n];
    for next in &forward {
        for &v in next {
            indegree[v] += 1;
        }
    }
    let mut level = vec![0usize; n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    let mut head = 0;
    while head < queue.len() {
        let u = queue[head];
        head += 1;
        for &v in &forward[u] {
            level[v] = level[v].max(level[u] + 1);
            indegree[v] -= 1;
            if indegree[v] == 0 {
                queue.push(v);
            }
        }
    }
    // (A cycle cannot be recorded, but a damaged database could hold one:
    // its nodes keep the levels reached so far.)
    let top = level.iter().copied().max().unwrap_or(0);
    if from_sinks {
        level.iter().map(|l| top - l).collect()
    } else {
        level
    }
}

/// Lays out nodes of the given (width, height) joined by `edges`.
pub fn layout(sizes: &[(f64, f64)], edges: &[(usize, usize)], direction: Direction) -> Placed {
    let n = sizes.len();
    let rank = layers(n, edges, direction);

    // Dummy nodes: one per layer a long edge passes through.
    let mut layer_of = rank.clone();
    let mut chains = Vec::with_capacity(edges.len());
    for &(u, v) in edges {
        let mut chain = vec![u];
        for l in rank[u] + 1..rank[v].max(rank[u] + 1) {
            chain.push(layer_of.len());
            layer_of.push(l);
        }
        chain.push(v);
        chains.push(chain);
    }
    let total = layer_of.len();
    let is_dummy = |v: usize| v >= n;
    // Segments between adjacent layers only (a damaged, cyclic graph may
    // have others: they are drawn, not laid out).
    let mut preds = vec![Vec::new(); total];
    let mut succs = vec![Vec::new(); total];
    for chain in &chains {
        for w in chain.windows(2) {
            if layer_of[w[1]] == layer_of[w[0]] + 1 {
                succs[w[0]].push(w[1]);
                preds[w[1]].push(w[0]);
            }
        }
    }
    let n_layers = layer_of.iter().copied().max().map_or(0, |m| m + 1);
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
    for (v, &l) in layer_of.iter().enumerate() {
        order[l].push(v);
    }
    let crossings = minimise_crossings(&mut order, &preds, &succs, total);

    // Columns.
    let col_width: Vec<f64> = order
        .iter()
        .map(|layer| {
            let w = layer
                .iter()
                .filter(|&&v| !is_dummy(v))
                .map(|&v| sizes[v].0)
                .fold(0.0, f64::max);
            if w > 0.0 { w } else { DUMMY_COLUMN }
        })
        .collect();
    let mut col_x = Vec::with_capacity(n_layers);
    let mut x = 0.0;
    for w in &col_width {
        col_x.push(x);
        x += w + H_GAP;
    }
    let width = (x - H_GAP).max(0.0);

    // Rows.
    let height_of = |v: usize| if is_dummy(v) { 0.0 } else { sizes[v].1 };
    let center = place_vertically(&order, &preds, &succs, &height_of, &is_dummy);
    let top = (0..total)
        .map(|v| center[v] - height_of(v) / 2.0)
        .fold(f64::INFINITY, f64::min);
    let top = if top.is_finite() { top } else { 0.0 };
    let bottom = (0..total)
        .map(|v| center[v] + height_of(v) / 2.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let height = if bottom.is_finite() {
        bottom - top
    } else {
        0.0
    };
    let y = |v: usize| center[v] - top;

    let boxes: Vec<(f64, f64)> = (0..n)
        .map(|v| {
            let l = layer_of[v];
            (
                col_x[l] + (col_width[l] - sizes[v].0) / 2.0,
                y(v) - sizes[v].1 / 2.0,
            )
        })
        .collect();

    // Ports: edges leave and enter a box spread over its middle, in the
    // order of where they go, so they do not pile up on one point.
    let mut out_port = vec![0.0; chains.len()];
    let mut in_port = vec![0.0; chains.len()];
    let mut leaving: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut entering: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (e, chain) in chains.iter().enumerate() {
        leaving[chain[0]].push(e);
        entering[chain[chain.len() - 1]].push(e);
    }
    let spread =
        |edges: &mut Vec<usize>, towards: &dyn Fn(usize) -> f64, v: usize, out: &mut [f64]| {
            edges.sort_by(|&a, &b| towards(a).total_cmp(&towards(b)));
            let m = edges.len();
            let step = if m > 1 {
                (sizes[v].1 * 0.5 / (m - 1) as f64).min(7.0)
            } else {
                0.0
            };
            for (k, &e) in edges.iter().enumerate() {
                out[e] = (k as f64 - (m as f64 - 1.0) / 2.0) * step;
            }
        };
    for v in 0..n {
        let next_y = |e: usize| y(chains[e][1]);
        spread(&mut leaving[v], &next_y, v, &mut out_port);
        let prev_y = |e: usize| y(chains[e][chains[e].len() - 2]);
        spread(&mut entering[v], &prev_y, v, &mut in_port);
    }
    let routes = chains
        .iter()
        .enumerate()
        .map(|(e, chain)| {
            let (u, v) = (chain[0], chain[chain.len() - 1]);
            let mut points = vec![(boxes[u].0 + sizes[u].0, y(u) + out_port[e])];
            for &d in &chain[1..chain.len() - 1] {
                let l = layer_of[d];
                points.push((col_x[l], y(d)));
                points.push((col_x[l] + col_width[l], y(d)));
            }
            points.push((boxes[v].0, y(v) + in_port[e]));
            points
        })
        .collect();
    Placed {
        boxes,
        routes,
        width,
        height,
        crossings,
    }
}

/// Orders each layer to reduce crossings; returns the crossings left.
fn minimise_crossings(
    order: &mut [Vec<usize>],
    preds: &[Vec<usize>],
    succs: &[Vec<usize>],
    total: usize,
) -> usize {
    let mut pos = vec![0usize; total];
    let index = |order: &[Vec<usize>], pos: &mut [usize]| {
        for layer in order {
            for (i, &v) in layer.iter().enumerate() {
                pos[v] = i;
            }
        }
    };
    index(order, &mut pos);
    let mut best = order.to_vec();
    let mut best_crossings = count_crossings(order, succs, &pos);
    for sweep in 0..ORDER_SWEEPS {
        let down = sweep % 2 == 0;
        let layers: Vec<usize> = if down {
            (1..order.len()).collect()
        } else {
            (0..order.len().saturating_sub(1)).rev().collect()
        };
        for r in layers {
            let neighbours = if down { preds } else { succs };
            let key: Vec<(f64, usize, usize)> = order[r]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let k = if ns.is_empty() {
                        pos[v] as f64
                    } else {
                        ns.iter().map(|&u| pos[u] as f64).sum::<f64>() / ns.len() as f64
                    };
                    (k, pos[v], v)
                })
                .collect();
            let mut key = key;
            key.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order[r] = key.into_iter().map(|(_, _, v)| v).collect();
            for (i, &v) in order[r].iter().enumerate() {
                pos[v] = i;
            }
        }
        let c = count_crossings(order, succs, &pos);
        if c < best_crossings {
            best_crossings = c;
            best = order.to_vec();
        }
        if best_crossings == 0 {
            break;
        }
    }
    order.clone_from_slice(&best);
    best_crossings
}

/// Crossings between every pair of adjacent layers: the inversions of the
/// targets' positions when edges are sorted by their sources' (a Fenwick
/// tree counts them in O(E log V)).
fn count_crossings(order: &[Vec<usize>], succs: &[Vec<usize>], pos: &[usize]) -> usize {
    let mut total = 0;
    for r in 0..order.len().saturating_sub(1) {
        let mut targets: Vec<(usize, usize)> = order[r]
            .iter()
            .flat_map(|&u| succs[u].iter().map(move |&v| (pos[u], pos[v])))
            .collect();
        targets.sort_unstable();
        let width = order[r + 1].len();
        let mut tree = vec![0usize; width + 1];
        for (seen, &(_, p)) in targets.iter().enumerate() {
            // How many earlier edges end below p (strictly after it)?
            let mut not_after = 0;
            let mut i = p + 1;
            while i > 0 {
                not_after += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen - not_after;
            let mut i = p + 1;
            while i <= width {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// Vertical centers of every node (see step 4 of the module doc).
fn place_vertically(
    order: &[Vec<usize>],
    preds: &[Vec<usize>],
    succs: &[Vec<usize>],
    height_of: &dyn Fn(usize) -> f64,
    is_dummy: &dyn Fn(usize) -> bool,
) -> Vec<f64> {
    let total = preds.len();
    let gap = |a: usize, b: usize| {
        let g = if is_dummy(a) || is_dummy(b) {
            DUMMY_GAP
        } else {
            V_GAP
        };
        height_of(a) / 2.0 + height_of(b) / 2.0 + g
    };
    let mut center = vec![0.0; total];
    for layer in order {
        let mut at = 0.0;
        for (i, &v) in layer.iter().enumerate() {
            if i > 0 {
                at += gap(layer[i - 1], v);
            }
            center[v] = at;
        }
    }
    // Long edges (dummy to dummy) pull hardest, so they run straight.
    let pull = |a: usize, b: usize| if is_dummy(a) && is_dummy(b) { 8.0 } else { 1.0 };
    for pass in 0..PLACE_PASSES {
        let down = pass % 2 == 0;
        let layers: Vec<usize> = if down {
            (0..order.len()).collect()
        } else {
            (0..order.len()).rev().collect()
        };
        for r in layers {
            let layer = &order[r];
            let wanted: Vec<(f64, f64)> = layer
                .iter()
                .map(|&v| {
                    // The last passes look both ways, to settle.
                    let near: Vec<usize> = match (down, pass + 2 >= PLACE_PASSES) {
                        (_, true) => preds[v].iter().chain(&succs[v]).copied().collect(),
                        (true, false) => preds[v].clone(),
                        (false, false) => succs[v].clone(),
                    };
                    if near.is_empty() {
                        return (center[v], 0.5);
                    }
                    let (sum, weight) = near.iter().fold((0.0, 0.0), |(s, w), &u| {
                        let p = pull(u, v);
                        (s + p * center[u], w + p)
                    });
                    (sum / weight, weight)
                })
                .collect();
            let mut offsets = Vec::with_capacity(layer.len());
            let mut acc = 0.0;
            for (i, &v) in layer.iter().enumerate() {
                if i > 0 {
                    acc += gap(layer[i - 1], v);
                }
                offsets.push(acc);
            }
            // Positions q = center - offset must not decrease: isotonic fit.
            let targets: Vec<(f64, f64)> = wanted
                .iter()
                .zip(&offsets)
                .map(|(&(want, w), off)| (want - off, w))
                .collect();
            for ((&v, q), off) in layer.iter().zip(isotonic(&targets)).zip(&offsets) {
                center[v] = q + off;
            }
        }
    }
    center
}

/// The non-decreasing sequence closest to `targets` (value, weight) in
/// weighted least squares: pool adjacent violators.
fn isotonic(targets: &[(f64, f64)]) -> Vec<f64> {
    // Blocks of (weighted sum, weight, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(targets.len());
    for &(t, w) in targets {
        blocks.push((t * w, w, 1));
        while blocks.len() > 1 {
            let (s2, w2, n2) = blocks[blocks.len() - 1];
            let (s1, w1, n1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, w1 + w2, n1 + n2);
        }
    }
    blocks
        .into_iter()
        .flat_map(|(s, w, n)| std::iter::repeat_n(s / w, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_layers_put_inputs_next_to_their_reader() {
        // 0 -> 1 -> 2 (root); 3 -> 1 is a second input of run 1.
        // A long input 4 -> 2 joins at the end: it sits just left of 2.
        let edges = [(0, 1), (1, 2), (3, 1), (4, 2)];
        let rank = layers(5, &edges, Direction::Upstream);
        assert_eq!(rank, vec![0, 1, 2, 0, 1]);
        let rank = layers(5, &edges, Direction::Downstream);
        assert_eq!(rank, vec![0, 1, 2, 0, 0]);
    }

    #[test]
    fn isotonic_fit_pools_violators() {
        let fit = isotonic(&[(1.0, 1.0), (3.0, 1.0), (2.0, 1.0), (4.0, 1.0)]);
        assert_eq!(fit, vec![1.0, 2.5, 2.5, 4.0]);
    }

    #[test]
    fn crossings_are_counted_exactly() {
        // Two layers, edges 0->3 and 1->2 cross once.
        let order = vec![vec![0, 1], vec![2, 3]];
        let succs = vec![vec![3], vec![2], vec![], vec![]];
        let pos = vec![0, 1, 0, 1];
        assert_eq!(count_crossings(&order, &succs, &pos), 1);
    }

    /// Whether the segment from `a` to `b` passes through the box at
    /// (x, y, w, h), sampled along its length.
    fn passes_through(a: (f64, f64), b: (f64, f64), bx: (f64, f64, f64, f64)) -> bool {
        (1..20).any(|k| {
            let t = k as f64 / 20.0;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            x > bx.0 + 1.0 && x < bx.0 + bx.2 - 1.0 && y > bx.1 + 1.0 && y < bx.1 + bx.3 - 1.0
        })
    }

    #[test]
    fn long_edges_pass_between_boxes_not_behind_them() {
        // A chain 0 -> 1 -> 2 -> 3 -> 4 and a long edge 0 -> 4 (x.txt read
        // first and again by the report), plus side inputs that crowd the
        // middle layers.
        let sizes = vec![(120.0, 46.0); 8];
        let edges = [
            (0, 1),
            (1, 2),
            (2, 3),
            (3, 4),
            (0, 4),
            (5, 2),
            (6, 3),
            (7, 3),
        ];
        let placed = layout(&sizes, &edges, Direction::Upstream);
        assert_eq!(placed.crossings, 0);
        let long = &placed.routes[4];
        assert_eq!(
            long.len(),
            2 + 2 * 3,
            "routed through 3 dummy points: {long:?}"
        );
        for (v, &(x, y)) in placed.boxes.iter().enumerate() {
            if v == 0 || v == 4 {
                continue;
            }
            let bx = (x, y, sizes[v].0, sizes[v].1);
            // Inside a column the edge is straight: it must not cross a box.
            for pair in long[1..long.len() - 1].chunks(2) {
                assert!(!passes_through(pair[0], pair[1], bx), "behind node {v}");
            }
        }
        // No two boxes overlap.
        for a in 0..sizes.len() {
            for b in a + 1..sizes.len() {
                let (pa, pb) = (placed.boxes[a], placed.boxes[b]);
                let apart = pa.0 + sizes[a].0 <= pb.0
                    || pb.0 + sizes[b].0 <= pa.0
                    || pa.1 + sizes[a].1 <= pb.1
                    || pb.1 + sizes[b].1 <= pa.1;
                assert!(apart, "{a} and {b} overlap");
            }
        }
    }
}
