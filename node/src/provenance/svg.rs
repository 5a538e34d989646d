//! A lineage as an SVG picture, laid out here (no Graphviz needed).
//!
//! Data flows left to right. Layers: upstream graphs converge on the root,
//! so each node sits as far right as its longest path to the root allows
//! (inputs next to the run that read them); downstream graphs diverge, so
//! each node sits right after its longest path from the root. Within a
//! layer, nodes are ordered by the barycenter of their neighbours, sweeping
//! both ways a few times, which untangles most crossings. Artifacts are
//! boxes, runs are pills coloured by status, edges are Bézier curves.

use std::collections::HashMap;
use std::fmt::Write;

use crate::provenance::RunStatus;
use crate::provenance::lineage::{Direction, EdgeKind, Lineage, LineageNode};
use crate::provenance::render::{duration, size, status_colors};

const NODE_H: f64 = 46.0;
const V_GAP: f64 = 18.0;
const H_GAP: f64 = 76.0;
const MARGIN: f64 = 24.0;
const HEADER: f64 = 40.0;
const MAX_LABEL: usize = 40;
const SWEEPS: usize = 4;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        return s.to_string();
    }
    // Keep the end of long keys: the file name is what people recognise.
    let tail: String = s
        .chars()
        .rev()
        .take(MAX_LABEL - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// What a node's box says: a bold first line, a grey second one, a tooltip.
struct Label {
    first: String,
    second: String,
    title: String,
    width: f64,
}

fn label(n: &LineageNode, depth_limit: u32) -> Label {
    let (first, second, title) = match n {
        LineageNode::Artifact(a) => {
            let mut title = format!("{}\nartifact {}\n{}", a.label(), a.uid, size(a.size));
            if a.trashed {
                title.push_str("\n(in the trash)");
            }
            if a.truncated {
                title.push_str(&format!("\nmore lineage beyond depth {depth_limit}"));
            }
            (
                clip(a.label()),
                format!("{} · {}", &a.uid[..8.min(a.uid.len())], size(a.size)),
                title,
            )
        }
        LineageNode::Run(r) => {
            let mut second = r.status.as_str().to_string();
            if let Some(d) = duration(r) {
                second.push_str(&format!(" · {d}"));
            }
            let title = format!(
                "{} v{} ({})\nrun {}\n{}, started {}",
                r.transform,
                r.version,
                r.transform_kind.as_str(),
                r.uid,
                second,
                crate::time::rfc3339(r.started_at)
            );
            (
                clip(&format!("{} v{}", r.transform, r.version)),
                second,
                title,
            )
        }
    };
    let chars = |s: &str| s.chars().count() as f64;
    let width = (chars(&first) * 7.4).max(chars(&second) * 6.2) + 30.0;
    Label {
        first,
        second,
        title,
        width: width.max(110.0),
    }
}

/// The layer of each node (see the module doc).
fn layers(n: usize, edges: &[(usize, usize)], direction: Direction) -> Vec<usize> {
    // Walk from the side the graph grows from: sources for downstream
    // graphs, sinks (the root) for upstream ones.
    let (from_sinks, forward): (bool, Vec<Vec<usize>>) = {
        let mut adj = vec![Vec::new(); n];
        let from_sinks = direction == Direction::Upstream;
        for &(u, v) in edges {
            if from_sinks {
                adj[v].push(u);
            } else {
                adj[u].push(v);
            }
        }
        (from_sinks, adj)
    };
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

/// Orders each layer by the mean position of neighbours in other layers.
fn order(layers: &mut [Vec<usize>], edges: &[(usize, usize)], n: usize) {
    let mut preds = vec![Vec::new(); n];
    let mut succs = vec![Vec::new(); n];
    for &(u, v) in edges {
        succs[u].push(v);
        preds[v].push(u);
    }
    let mut pos = vec![0f64; n];
    let place = |layers: &[Vec<usize>], pos: &mut [f64]| {
        for layer in layers {
            for (i, &v) in layer.iter().enumerate() {
                pos[v] = i as f64;
            }
        }
    };
    place(layers, &mut pos);
    for _ in 0..SWEEPS {
        for (r, neighbours) in (1..layers.len()).map(|r| (r, &preds)).chain(
            (0..layers.len().saturating_sub(1))
                .rev()
                .map(|r| (r, &succs)),
        ) {
            let key: HashMap<usize, f64> = layers[r]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let k = if ns.is_empty() {
                        pos[v]
                    } else {
                        ns.iter().map(|&u| pos[u]).sum::<f64>() / ns.len() as f64
                    };
                    (v, k)
                })
                .collect();
            layers[r].sort_by(|a, b| key[a].total_cmp(&key[b]));
            for (i, &v) in layers[r].iter().enumerate() {
                pos[v] = i as f64;
            }
        }
    }
}

pub(crate) fn svg(l: &Lineage) -> String {
    let n = l.nodes.len();
    let index: HashMap<&str, usize> = l
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.uid(), i))
        .collect();
    let edges: Vec<(usize, usize, EdgeKind)> = l
        .edges
        .iter()
        .filter_map(|e| {
            Some((
                *index.get(e.from.as_str())?,
                *index.get(e.to.as_str())?,
                e.kind,
            ))
        })
        .collect();
    let pairs: Vec<(usize, usize)> = edges.iter().map(|&(u, v, _)| (u, v)).collect();
    let rank = layers(n, &pairs, l.direction);
    let n_layers = rank.iter().copied().max().map_or(0, |m| m + 1);
    let mut grouped: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
    for (v, &r) in rank.iter().enumerate() {
        grouped[r].push(v);
    }
    order(&mut grouped, &pairs, n);

    let labels: Vec<Label> = l.nodes.iter().map(|node| label(node, l.depth)).collect();
    let col_width: Vec<f64> = grouped
        .iter()
        .map(|layer| layer.iter().map(|&v| labels[v].width).fold(0.0, f64::max))
        .collect();
    let mut col_x = Vec::with_capacity(n_layers);
    let mut x = MARGIN;
    for w in &col_width {
        col_x.push(x);
        x += w + H_GAP;
    }
    let stack = |len: usize| len as f64 * NODE_H + len.saturating_sub(1) as f64 * V_GAP;
    let tallest = grouped.iter().map(|g| stack(g.len())).fold(0.0, f64::max);
    let mut at = vec![(0f64, 0f64); n]; // top-left corner of each box
    for (r, layer) in grouped.iter().enumerate() {
        let top = HEADER + MARGIN + (tallest - stack(layer.len())) / 2.0;
        for (i, &v) in layer.iter().enumerate() {
            let left = col_x[r] + (col_width[r] - labels[v].width) / 2.0;
            at[v] = (left, top + i as f64 * (NODE_H + V_GAP));
        }
    }
    let width = (x - H_GAP + MARGIN).max(360.0);
    let height = HEADER + 2.0 * MARGIN + tallest;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">"#
    );
    let root_label = match l.node(&l.root) {
        Some(LineageNode::Artifact(a)) => a.label().to_string(),
        _ => l.root.clone(),
    };
    let runs = l.runs().count();
    let artifacts = l.artifacts().count();
    let _ = writeln!(
        out,
        "<title>Lineage of {} ({}, depth {})</title>",
        escape(&root_label),
        direction_word(l.direction),
        l.depth
    );
    out.push_str("<defs>\n");
    let colors = [
        ("input", "#8c959f"),
        ("completed", status_colors(RunStatus::Completed).1),
        ("errored", status_colors(RunStatus::Errored).1),
        ("killed", status_colors(RunStatus::Killed).1),
        ("running", status_colors(RunStatus::Running).1),
    ];
    for (name, color) in colors {
        let _ = writeln!(
            out,
            r#"<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>"#
        );
    }
    out.push_str("</defs>\n");
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{MARGIN}" y="{:.0}" font-size="15" font-weight="600" fill="#1f2328">Lineage of {}</text>
<text x="{MARGIN}" y="{:.0}" font-size="11" fill="#57606a">{} · depth {} · {artifacts} artifact(s), {runs} run(s)</text>"##,
        MARGIN,
        escape(&clip(&root_label)),
        MARGIN + 15.0,
        direction_word(l.direction),
        l.depth,
    );

    out.push_str("<g class=\"edges\" fill=\"none\" stroke-width=\"1.4\">\n");
    for &(u, v, kind) in &edges {
        let (x1, y1) = (at[u].0 + labels[u].width, at[u].1 + NODE_H / 2.0);
        let (x2, y2) = (at[v].0 - 2.0, at[v].1 + NODE_H / 2.0);
        let dx = ((x2 - x1) / 2.0).max(24.0);
        let (class, marker) = match (kind, &l.nodes[u]) {
            (EdgeKind::Output, LineageNode::Run(r)) => ("output", r.status.as_str()),
            _ => ("input", "input"),
        };
        let color = colors
            .iter()
            .find(|(name, _)| *name == marker)
            .map_or("#8c959f", |(_, c)| c);
        let _ = writeln!(
            out,
            r#"<path class="edge {class}" d="M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}" stroke="{color}" marker-end="url(#arrow-{marker})"/>"#,
            x1 + dx,
            x2 - dx,
        );
    }
    out.push_str("</g>\n");

    for (v, node) in l.nodes.iter().enumerate() {
        let (x, y) = at[v];
        let lab = &labels[v];
        let (kind, fill, stroke, stroke_width, radius, dash, opacity) = match node {
            LineageNode::Artifact(a) => {
                let (fill, stroke, sw) = if a.root {
                    ("#fff8c5", "#9a6700", 2.5)
                } else {
                    ("#f6f8fa", "#57606a", 1.2)
                };
                let dash = if a.truncated { "5,3" } else { "none" };
                let opacity = if a.trashed { 0.55 } else { 1.0 };
                ("artifact", fill, stroke, sw, 4.0, dash, opacity)
            }
            LineageNode::Run(r) => {
                let (fill, stroke) = status_colors(r.status);
                ("run", fill, stroke, 1.4, NODE_H / 2.0, "none", 1.0)
            }
        };
        let second_color = match node {
            LineageNode::Run(r) => status_colors(r.status).1,
            LineageNode::Artifact(_) => "#57606a",
        };
        let cx = x + lab.width / 2.0;
        let _ = writeln!(
            out,
            r##"<g class="node {kind}" id="{}" opacity="{opacity}"><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{NODE_H}" rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}" stroke-dasharray="{dash}"/><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="12.5" font-weight="600" fill="#1f2328">{}</text><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10.5" fill="{second_color}">{}</text></g>"##,
            crate::provenance::render::node_id(node),
            escape(&lab.title),
            lab.width,
            y + 19.0,
            escape(&lab.first),
            y + 35.0,
            escape(&lab.second),
        );
    }
    out.push_str("</svg>\n");
    out
}

fn direction_word(d: Direction) -> &'static str {
    match d {
        Direction::Upstream => "upstream",
        Direction::Downstream => "downstream",
    }
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
    fn escaping_keeps_the_xml_well_formed() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(clip(&"x".repeat(50)).chars().count(), MAX_LABEL);
    }
}
