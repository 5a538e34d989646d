//! A lineage as an SVG picture, laid out here (no Graphviz needed; the
//! geometry is in `layout`).
//!
//! Data flows left to right. Artifacts are boxes (the one asked about is
//! yellow), runs are pills coloured by status, reads are grey arrows and
//! writes are arrows in the colour of the run. A legend names the
//! colours shown. A node with many small branches (a run reading 25 raw
//! files, each read by nothing else) shows the first few and one
//! "+N more" box whose tooltip lists the rest, so a big fan-in stays a
//! picture instead of a tall column of boxes.

use std::collections::HashSet;
use std::fmt::Write;

use crate::provenance::RunStatus;
use crate::provenance::collapse::{Picture, Shown, picture};
use crate::provenance::layout::{self, Placed};
use crate::provenance::lineage::{Direction, EdgeKind, Lineage, LineageNode};
use crate::provenance::render::{duration, size, status_colors};

const NODE_H: f64 = 46.0;
const MARGIN: f64 = 24.0;
/// Title, subtitle and legend.
const HEADER: f64 = 66.0;
const MAX_LABEL: usize = 40;
/// Names listed in a "+N more" box's tooltip.
const MORE_LISTED: usize = 40;

/// Edges into a node with more than this many incoming ones meet at a
/// junction left of it and arrive as one arrow, instead of a pile of
/// arrowheads.
const JOIN_FROM: usize = 3;
/// How far left of the box the junction is.
const JOIN_LENGTH: f64 = 16.0;

const INPUT_COLOR: &str = "#8c959f";
const MORE_COLOR: &str = "#57606a";

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

/// What a box says: a bold first line, a grey second one, a tooltip.
struct Label {
    first: String,
    second: String,
    title: String,
    width: f64,
}

impl Label {
    fn new(first: String, second: String, title: String) -> Label {
        let chars = |s: &str| s.chars().count() as f64;
        let width = (chars(&first) * 7.4).max(chars(&second) * 6.2) + 30.0;
        Label {
            first,
            second,
            title,
            width: width.max(110.0),
        }
    }
}

fn label(n: &LineageNode, depth_limit: u32) -> Label {
    match n {
        LineageNode::Artifact(a) => {
            let mut title = format!("{}\nartifact {}\n{}", a.label(), a.uid, size(a.size));
            if a.trashed {
                title.push_str("\n(in the trash)");
            }
            if a.truncated {
                title.push_str(&format!("\nmore lineage beyond depth {depth_limit}"));
            }
            Label::new(
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
            Label::new(
                clip(&format!("{} v{}", r.transform, r.version)),
                second,
                title,
            )
        }
    }
}

fn more_label(l: &Lineage, hidden: &[usize], into: bool) -> Label {
    let artifacts = hidden
        .iter()
        .filter(|&&v| matches!(l.nodes[v], LineageNode::Artifact(_)))
        .count();
    let runs = hidden.len() - artifacts;
    let branches = hidden.len();
    let noun = match (artifacts, runs, into) {
        (_, 0, true) => "inputs",
        (_, 0, false) => "outputs",
        (0, _, _) => "runs",
        _ => "nodes",
    };
    let mut parts = Vec::new();
    if artifacts > 0 {
        parts.push(format!("{artifacts} artifact(s)"));
    }
    if runs > 0 {
        parts.push(format!("{runs} run(s)"));
    }
    let mut names: Vec<String> = hidden
        .iter()
        .take(MORE_LISTED)
        .map(|&v| match &l.nodes[v] {
            LineageNode::Artifact(a) => a.label().to_string(),
            LineageNode::Run(r) => format!("run {} ({} v{})", r.uid, r.transform, r.version),
        })
        .collect();
    if hidden.len() > MORE_LISTED {
        names.push(format!("… and {} more", hidden.len() - MORE_LISTED));
    }
    Label::new(
        format!("+{branches} more {noun}"),
        parts.join(", "),
        format!(
            "{} more, not drawn one by one:\n{}\n(`labmesh lineage … --format text` lists them all)",
            branches,
            names.join("\n")
        ),
    )
}

fn marker_of(kind: EdgeKind, status: Option<RunStatus>) -> &'static str {
    match (kind, status) {
        (EdgeKind::Output, Some(s)) => s.as_str(),
        (EdgeKind::Output, None) => "more",
        (EdgeKind::Input, _) => "input",
    }
}

fn color_of(marker: &str) -> &'static str {
    match marker {
        "completed" => status_colors(RunStatus::Completed).1,
        "errored" => status_colors(RunStatus::Errored).1,
        "killed" => status_colors(RunStatus::Killed).1,
        "running" => status_colors(RunStatus::Running).1,
        "more" => MORE_COLOR,
        _ => INPUT_COLOR,
    }
}

/// An edge's route as an SVG path: curves between layers, straight
/// through the layers it passes.
fn path_data(route: &[(f64, f64)], dx: f64, dy: f64) -> String {
    let p = |(x, y): (f64, f64)| (x + dx, y + dy);
    let mut points: Vec<(f64, f64)> = route.iter().copied().map(p).collect();
    if let Some(last) = points.last_mut() {
        last.0 -= 2.0; // room for the arrowhead
    }
    let mut d = format!("M{:.1},{:.1}", points[0].0, points[0].1);
    for (i, pair) in points.windows(2).enumerate() {
        let ((x1, y1), (x2, y2)) = (pair[0], pair[1]);
        if i % 2 == 1 {
            let _ = write!(d, " L{x2:.1},{y2:.1}");
        } else {
            let c = ((x2 - x1) / 2.0).max(12.0);
            let _ = write!(
                d,
                " C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                x1 + c,
                x2 - c
            );
        }
    }
    d
}

pub(crate) fn svg(l: &Lineage) -> String {
    let pic = picture(l);
    let labels: Vec<Label> = pic
        .shown
        .iter()
        .map(|s| match s {
            Shown::Node(v) => label(&l.nodes[*v], l.depth),
            Shown::More { hidden, into } => more_label(l, hidden, *into),
        })
        .collect();
    let sizes: Vec<(f64, f64)> = labels.iter().map(|lab| (lab.width, NODE_H)).collect();
    let pairs: Vec<(usize, usize)> = pic.edges.iter().map(|&(u, v, _, _)| (u, v)).collect();
    let placed = layout::layout(&sizes, &pairs, l.direction);

    let root_label = match l.node(&l.root) {
        Some(LineageNode::Artifact(a)) => a.label().to_string(),
        _ => l.root.clone(),
    };
    let legend = legend(l, &pic);
    let legend_width: f64 = legend.iter().map(|(_, w)| w).sum();
    let title_width = (clip(&root_label).chars().count() + 11) as f64 * 8.5;
    let width = (placed.width + 2.0 * MARGIN)
        .max(legend_width + 2.0 * MARGIN)
        .max(title_width + 2.0 * MARGIN)
        .max(360.0);
    let height = HEADER + 2.0 * MARGIN + placed.height;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        out,
        "<title>Lineage of {} ({}, depth {})</title>",
        escape(&root_label),
        direction_word(l.direction),
        l.depth
    );
    out.push_str("<defs>\n");
    for name in ["input", "completed", "errored", "killed", "running", "more"] {
        let _ = writeln!(
            out,
            r#"<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            color_of(name)
        );
    }
    out.push_str("</defs>\n");
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{MARGIN}" y="{:.0}" font-size="15" font-weight="600" fill="#1f2328">Lineage of {}</text>
<text x="{MARGIN}" y="{:.0}" font-size="11" fill="#57606a">{} · depth {} · {} artifact(s), {} run(s)</text>"##,
        MARGIN,
        escape(&clip(&root_label)),
        MARGIN + 15.0,
        direction_word(l.direction),
        l.depth,
        l.artifacts().count(),
        l.runs().count(),
    );
    draw_legend(&mut out, &legend, MARGIN, MARGIN + 30.0);

    let (dx, dy) = (MARGIN, HEADER + MARGIN);
    let _ = writeln!(
        out,
        r#"<g class="edges" fill="none" stroke-width="1.4" data-crossings="{}">"#,
        placed.crossings
    );
    let mut incoming = vec![0usize; pic.shown.len()];
    for &(_, v, _, _) in &pic.edges {
        incoming[v] += 1;
    }
    let mut joins: Vec<(usize, &'static str)> = Vec::new();
    for (&(_, v, kind, status), route) in pic.edges.iter().zip(&placed.routes) {
        let marker = marker_of(kind, status);
        let class = match kind {
            EdgeKind::Input => "input",
            EdgeKind::Output => "output",
        };
        let (d, arrow) = if incoming[v] > JOIN_FROM {
            let mut route = route.clone();
            let (x, y) = placed.boxes[v];
            if let Some(last) = route.last_mut() {
                *last = (x - JOIN_LENGTH + 2.0, y + NODE_H / 2.0);
            }
            if !joins.iter().any(|&(j, _)| j == v) {
                joins.push((v, marker));
            }
            (path_data(&route, dx, dy), String::new())
        } else {
            (
                path_data(route, dx, dy),
                format!(r#" marker-end="url(#arrow-{marker})""#),
            )
        };
        let _ = writeln!(
            out,
            r#"<path class="edge {class}" d="{d}" stroke="{}"{arrow}/>"#,
            color_of(marker),
        );
    }
    for (v, marker) in joins {
        let (x, y) = (
            placed.boxes[v].0 + dx,
            placed.boxes[v].1 + dy + NODE_H / 2.0,
        );
        let _ = writeln!(
            out,
            r#"<path class="join" d="M{:.1},{y:.1} L{:.1},{y:.1}" stroke="{}" marker-end="url(#arrow-{marker})"/>"#,
            x - JOIN_LENGTH,
            x - 2.0,
            color_of(marker),
        );
    }
    out.push_str("</g>\n");
    for (i, s) in pic.shown.iter().enumerate() {
        draw_node(&mut out, l, s, &labels[i], &placed, i, dx, dy);
    }
    out.push_str("</svg>\n");
    out
}

#[allow(clippy::too_many_arguments)]
fn draw_node(
    out: &mut String,
    l: &Lineage,
    shown: &Shown,
    lab: &Label,
    placed: &Placed,
    i: usize,
    dx: f64,
    dy: f64,
) {
    let (x, y) = (placed.boxes[i].0 + dx, placed.boxes[i].1 + dy);
    let (id, kind, fill, stroke, stroke_width, radius, dash, opacity, second_color) = match shown {
        Shown::Node(v) => {
            let node = &l.nodes[*v];
            let id = crate::provenance::render::node_id(node);
            match node {
                LineageNode::Artifact(a) => {
                    let (fill, stroke, sw) = if a.root {
                        ("#fff8c5", "#9a6700", 2.5)
                    } else {
                        ("#f6f8fa", "#57606a", 1.2)
                    };
                    let dash = if a.truncated { "5,3" } else { "none" };
                    let opacity = if a.trashed { 0.55 } else { 1.0 };
                    (
                        id, "artifact", fill, stroke, sw, 4.0, dash, opacity, "#57606a",
                    )
                }
                LineageNode::Run(r) => {
                    let (fill, stroke) = status_colors(r.status);
                    (
                        id,
                        "run",
                        fill,
                        stroke,
                        1.4,
                        NODE_H / 2.0,
                        "none",
                        1.0,
                        stroke,
                    )
                }
            }
        }
        Shown::More { .. } => (
            format!("more_{i}"),
            "more",
            "#ffffff",
            MORE_COLOR,
            1.2,
            4.0,
            "3,3",
            1.0,
            "#57606a",
        ),
    };
    let cx = x + lab.width / 2.0;
    let _ = writeln!(
        out,
        r##"<g class="node {kind}" id="{id}" opacity="{opacity}"><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{NODE_H}" rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}" stroke-dasharray="{dash}"/><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="12.5" font-weight="600" fill="#1f2328">{}</text><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10.5" fill="{second_color}">{}</text></g>"##,
        escape(&lab.title),
        lab.width,
        y + 19.0,
        escape(&lab.first),
        y + 35.0,
        escape(&lab.second),
    );
}

/// One legend entry: what it shows, and its width.
enum Swatch {
    /// A box: fill, stroke, corner radius, dash.
    Shape(&'static str, &'static str, f64, &'static str, &'static str),
    /// An arrow in a colour.
    Arrow(&'static str, &'static str),
}

/// The entries for what this picture shows: artifacts, the root, each run
/// status present, reads and writes, collapsed boxes.
fn legend(l: &Lineage, pic: &Picture) -> Vec<(Swatch, f64)> {
    let mut entries = vec![
        Swatch::Shape("#fff8c5", "#9a6700", 2.0, "none", "this artifact"),
        Swatch::Shape("#f6f8fa", "#57606a", 2.0, "none", "artifact"),
    ];
    let statuses: HashSet<RunStatus> = l.runs().map(|r| r.status).collect();
    for s in [
        RunStatus::Completed,
        RunStatus::Errored,
        RunStatus::Killed,
        RunStatus::Running,
    ] {
        if statuses.contains(&s) {
            let (fill, stroke) = status_colors(s);
            entries.push(Swatch::Shape(fill, stroke, 6.0, "none", s.as_str()));
        }
    }
    if l.artifacts().any(|a| a.truncated) {
        entries.push(Swatch::Shape(
            "#f6f8fa",
            "#57606a",
            2.0,
            "4,2",
            "more beyond depth",
        ));
    }
    if pic.shown.iter().any(|s| matches!(s, Shown::More { .. })) {
        entries.push(Swatch::Shape(
            "#ffffff",
            MORE_COLOR,
            2.0,
            "3,3",
            "several, collapsed",
        ));
    }
    if !l.edges.is_empty() {
        entries.push(Swatch::Arrow(INPUT_COLOR, "read by"));
        entries.push(Swatch::Arrow(
            status_colors(RunStatus::Completed).1,
            "wrote",
        ));
    }
    entries
        .into_iter()
        .map(|e| {
            let text = match &e {
                Swatch::Shape(.., t) | Swatch::Arrow(_, t) => t,
            };
            let w = 30.0 + text.chars().count() as f64 * 6.0 + 14.0;
            (e, w)
        })
        .collect()
}

fn draw_legend(out: &mut String, entries: &[(Swatch, f64)], x0: f64, y0: f64) {
    out.push_str("<g class=\"legend\" font-size=\"10.5\" fill=\"#57606a\">\n");
    let mut x = x0;
    for (entry, w) in entries {
        match entry {
            Swatch::Shape(fill, stroke, rx, dash, text) => {
                let _ = writeln!(
                    out,
                    r#"<rect x="{x:.1}" y="{y0:.1}" width="22" height="12" rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-dasharray="{dash}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                    x + 27.0,
                    y0 + 10.0,
                    escape(text)
                );
            }
            Swatch::Arrow(color, text) => {
                let _ = writeln!(
                    out,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.6"/><polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                    y0 + 6.0,
                    x + 17.0,
                    y0 + 6.0,
                    x + 16.0,
                    y0 + 2.5,
                    x + 22.0,
                    y0 + 6.0,
                    x + 16.0,
                    y0 + 9.5,
                    x + 27.0,
                    y0 + 10.0,
                    escape(text)
                );
            }
        }
        x += w;
    }
    out.push_str("</g>\n");
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
    fn escaping_keeps_the_xml_well_formed() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(clip(&"x".repeat(50)).chars().count(), MAX_LABEL);
    }

    #[test]
    fn routes_curve_between_layers_and_run_straight_through_them() {
        let d = path_data(
            &[(0.0, 0.0), (100.0, 10.0), (124.0, 10.0), (200.0, 0.0)],
            0.0,
            0.0,
        );
        assert!(d.starts_with("M0.0,0.0 C"), "{d}");
        assert!(d.contains(" L124.0,10.0 C"), "{d}");
        assert!(d.ends_with(" 198.0,0.0"), "{d}");
    }
}
