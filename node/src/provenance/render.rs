//! Lineage for people and tools: an indented tree, Mermaid, Graphviz DOT,
//! JSON, and SVG (see `svg`). Every format shows the same nodes and edges.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::provenance::lineage::{
    ArtifactNode, Direction, EdgeKind, Lineage, LineageNode, RunNode,
};
use crate::provenance::{RunStatus, svg};

/// How `render` writes a lineage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An indented tree.
    #[default]
    Text,
    Mermaid,
    Dot,
    Svg,
    Json,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "tree" => Ok(Format::Text),
            "mermaid" | "mmd" => Ok(Format::Mermaid),
            "dot" | "graphviz" => Ok(Format::Dot),
            "svg" => Ok(Format::Svg),
            "json" => Ok(Format::Json),
            _ => Err(Error::InvalidArgument(format!(
                "unknown lineage format {s:?}: use text, mermaid, dot, svg or json"
            ))),
        }
    }
}

impl Lineage {
    /// The lineage written in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text(self),
            Format::Mermaid => mermaid(self),
            Format::Dot => dot(self),
            Format::Svg => svg::svg(self),
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
        }
    }
}

/// "1.2 s", "340 ms", "2 min 5 s".
pub(crate) fn duration(run: &RunNode) -> Option<String> {
    let ms = run.finished_at? - run.started_at;
    Some(if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    })
}

pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The node a text line or a box shows first: the key, else the uid.
fn run_title(r: &RunNode) -> String {
    format!("{} v{}", r.transform, r.version)
}

/// For each node, the nodes shown beneath it in the tree, in node order.
fn children(l: &Lineage) -> HashMap<&str, Vec<&str>> {
    let position: HashMap<&str, usize> = l
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.uid(), i))
        .collect();
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &l.edges {
        // Upstream, a node's children are where its data came from.
        let (parent, child) = match l.direction {
            Direction::Upstream => (e.to.as_str(), e.from.as_str()),
            Direction::Downstream => (e.from.as_str(), e.to.as_str()),
        };
        out.entry(parent).or_default().push(child);
    }
    for v in out.values_mut() {
        v.sort_by_key(|uid| position.get(uid).copied().unwrap_or(usize::MAX));
    }
    out
}

fn artifact_line(a: &ArtifactNode) -> String {
    let mut line = format!("{}  {}  {}", a.label(), a.uid, size(a.size));
    if a.trashed {
        line.push_str("  (trashed)");
    }
    line
}

fn run_line(r: &RunNode, direction: Direction) -> String {
    let verb = match direction {
        Direction::Upstream => "made by",
        Direction::Downstream => "read by",
    };
    let mut line = format!(
        "{verb} {} ({}) · run {} · {} · {}",
        run_title(r),
        r.transform_kind.as_str(),
        r.uid,
        r.status.as_str(),
        crate::time::short(r.started_at)
    );
    if let Some(d) = duration(r) {
        line.push_str(&format!(" · {d}"));
    }
    line
}

/// The indented tree: from the root, each node's sources (upstream) or
/// products (downstream) beneath it; a node met again is not expanded twice.
struct Tree<'a> {
    l: &'a Lineage,
    nodes: HashMap<&'a str, &'a LineageNode>,
    children: HashMap<&'a str, Vec<&'a str>>,
    seen: HashSet<&'a str>,
    out: String,
}

impl<'a> Tree<'a> {
    fn walk(&mut self, uid: &'a str, prefix: &str, connector: &str) {
        let Some(node) = self.nodes.get(uid).copied() else {
            return;
        };
        let mut line = match node {
            LineageNode::Artifact(a) => artifact_line(a),
            LineageNode::Run(r) => run_line(r, self.l.direction),
        };
        let first = self.seen.insert(uid);
        let kids = self.children.get(uid).cloned().unwrap_or_default();
        if !first && !kids.is_empty() {
            line.push_str("  (shown above)");
        }
        if let LineageNode::Artifact(a) = node
            && a.truncated
        {
            let more = match self.l.direction {
                Direction::Upstream => "more upstream",
                Direction::Downstream => "more downstream",
            };
            line.push_str(&format!(
                "  … {more} (--depth {} shows it)",
                self.l.depth + 1
            ));
        }
        self.out.push_str(connector);
        self.out.push_str(&line);
        self.out.push('\n');
        if !first {
            return;
        }
        for (i, kid) in kids.iter().enumerate() {
            let last = i + 1 == kids.len();
            let connector = format!("{prefix}{}", if last { "└── " } else { "├── " });
            let next = format!("{prefix}{}", if last { "    " } else { "│   " });
            self.walk(kid, &next, &connector);
        }
    }
}

fn text(l: &Lineage) -> String {
    let mut tree = Tree {
        l,
        nodes: l.nodes.iter().map(|n| (n.uid(), n)).collect(),
        children: children(l),
        seen: HashSet::new(),
        out: String::new(),
    };
    tree.walk(&l.root, "", "");
    let mut out = tree.out;
    if l.edges.is_empty() {
        let truncated = l.artifacts().any(|a| a.truncated);
        out.push_str(match (l.direction, truncated) {
            (_, true) => "(depth 0: only the artifact itself)\n",
            (Direction::Upstream, false) => {
                "(no recorded provenance: no tracked run produced it; `labmesh run -- <command>` records runs)\n"
            }
            (Direction::Downstream, false) => "(no tracked run has read it)\n",
        });
    }
    out
}

/// A node id that Mermaid and DOT accept: `a_<uid>` or `r_<uid>` (uids are base62).
pub(crate) fn node_id(n: &LineageNode) -> String {
    match n {
        LineageNode::Artifact(a) => format!("a_{}", a.uid),
        LineageNode::Run(r) => format!("r_{}", r.uid),
    }
}

fn mermaid_text(s: &str) -> String {
    s.replace('&', "#amp;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

fn mermaid(l: &Lineage) -> String {
    let ids: HashMap<&str, String> = l.nodes.iter().map(|n| (n.uid(), node_id(n))).collect();
    let mut out = String::from("flowchart LR\n");
    for n in &l.nodes {
        let id = &ids[n.uid()];
        match n {
            LineageNode::Artifact(a) => {
                let class = if a.root { "root" } else { "artifact" };
                out.push_str(&format!(
                    "    {id}[\"{}<br/>{} · {}\"]:::{class}\n",
                    mermaid_text(a.label()),
                    &a.uid[..8.min(a.uid.len())],
                    size(a.size)
                ));
            }
            LineageNode::Run(r) => {
                let mut second = r.status.as_str().to_string();
                if let Some(d) = duration(r) {
                    second.push_str(&format!(" · {d}"));
                }
                out.push_str(&format!(
                    "    {id}([\"{}<br/>{second}\"]):::{}\n",
                    mermaid_text(&run_title(r)),
                    r.status.as_str()
                ));
            }
        }
    }
    for e in &l.edges {
        out.push_str(&format!(
            "    {} --> {}\n",
            ids[e.from.as_str()],
            ids[e.to.as_str()]
        ));
    }
    out.push_str(
        "    classDef artifact fill:#f6f8fa,stroke:#57606a\n\
         \x20   classDef root fill:#fff8c5,stroke:#9a6700,stroke-width:3px\n\
         \x20   classDef completed fill:#dafbe1,stroke:#1a7f37\n\
         \x20   classDef errored fill:#ffebe9,stroke:#cf222e\n\
         \x20   classDef killed fill:#fff1e5,stroke:#bc4c00\n\
         \x20   classDef running fill:#ddf4ff,stroke:#0969da\n",
    );
    out
}

fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Fill and stroke of a run's status (shared with the SVG).
pub(crate) fn status_colors(status: RunStatus) -> (&'static str, &'static str) {
    match status {
        RunStatus::Completed => ("#dafbe1", "#1a7f37"),
        RunStatus::Errored => ("#ffebe9", "#cf222e"),
        RunStatus::Killed => ("#fff1e5", "#bc4c00"),
        RunStatus::Running => ("#ddf4ff", "#0969da"),
    }
}

fn dot(l: &Lineage) -> String {
    let ids: HashMap<&str, String> = l.nodes.iter().map(|n| (n.uid(), node_id(n))).collect();
    let mut out = String::from(
        "digraph lineage {\n    rankdir=LR;\n    node [fontname=\"Helvetica\", fontsize=11];\n    \
         edge [color=\"#57606a\", arrowsize=0.7];\n",
    );
    for n in &l.nodes {
        let id = &ids[n.uid()];
        match n {
            LineageNode::Artifact(a) => {
                let (fill, pen) = if a.root {
                    ("#fff8c5", "penwidth=2.5, ")
                } else {
                    ("#f6f8fa", "")
                };
                out.push_str(&format!(
                    "    \"{id}\" [shape=box, style=filled, fillcolor=\"{fill}\", {pen}label=\"{}\\n{} · {}\"];\n",
                    dot_text(a.label()),
                    &a.uid[..8.min(a.uid.len())],
                    size(a.size)
                ));
            }
            LineageNode::Run(r) => {
                let (fill, stroke) = status_colors(r.status);
                out.push_str(&format!(
                    "    \"{id}\" [shape=box, style=\"rounded,filled\", fillcolor=\"{fill}\", color=\"{stroke}\", label=\"{}\\n{}\"];\n",
                    dot_text(&run_title(r)),
                    r.status.as_str()
                ));
            }
        }
    }
    for e in &l.edges {
        let style = match e.kind {
            EdgeKind::Input => "",
            EdgeKind::Output => " [color=\"#24292f\"]",
        };
        out.push_str(&format!(
            "    \"{}\" -> \"{}\"{style};\n",
            ids[e.from.as_str()],
            ids[e.to.as_str()]
        ));
    }
    out.push_str("}\n");
    out
}
