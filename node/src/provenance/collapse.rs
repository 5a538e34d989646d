//! Which boxes the SVG draws: the lineage, except that a node with many
//! small branches on one side (a run reading 25 raw files that nothing
//! else touches) keeps the first few and gathers the rest into one "+N
//! more" box. A branch is small when the nodes reached through it, not
//! passing the node itself, are at most [`BRANCH_MAX`] and do not include
//! the root; branches that share a node are never gathered.

use std::collections::{HashMap, HashSet};

use crate::provenance::RunStatus;
use crate::provenance::lineage::{EdgeKind, Lineage, LineageNode};

/// A node with more small branches than this on one side shows this many
/// minus one, and a "+N more" box.
const FAN_LIMIT: usize = 8;
/// A branch is small when it has at most this many nodes.
const BRANCH_MAX: usize = 3;

/// A box of the picture: a lineage node, or several collapsed into one.
pub(crate) enum Shown {
    Node(usize),
    More {
        /// The collapsed lineage nodes.
        hidden: Vec<usize>,
        /// Whether they feed the node they hang off (else they come from it).
        into: bool,
    },
}

/// The boxes and edges to draw: the lineage, with the excess small
/// branches of crowded nodes collapsed (see the module doc).
pub(crate) struct Picture {
    pub shown: Vec<Shown>,
    /// (from, to) indices into `shown`, the kind, and the writing run's status.
    pub edges: Vec<(usize, usize, EdgeKind, Option<RunStatus>)>,
}

pub(crate) fn picture(l: &Lineage) -> Picture {
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
    let root = index.get(l.root.as_str()).copied();
    let mut preds = vec![Vec::new(); n];
    let mut succs = vec![Vec::new(); n];
    for &(u, v, _) in &edges {
        succs[u].push(v);
        preds[v].push(u);
    }
    // The part of the graph reached from `w` without passing `v`, if small.
    let branch = |v: usize, w: usize, hidden: &[bool]| -> Option<Vec<usize>> {
        let mut seen = vec![w];
        let mut next = 0;
        while next < seen.len() {
            let x = seen[next];
            next += 1;
            for &y in preds[x].iter().chain(&succs[x]) {
                if y == v || seen.contains(&y) {
                    continue;
                }
                if Some(y) == root || hidden[y] || seen.len() >= BRANCH_MAX {
                    return None;
                }
                seen.push(y);
            }
        }
        Some(seen)
    };
    let mut hidden = vec![false; n];
    let mut more: Vec<(usize, Vec<usize>, bool)> = Vec::new();
    for v in 0..n {
        if hidden[v] {
            continue;
        }
        for into in [true, false] {
            let side = if into { &preds[v] } else { &succs[v] };
            let mut side: Vec<usize> = side.iter().copied().filter(|&w| !hidden[w]).collect();
            side.sort_unstable();
            side.dedup();
            // Branches that share a node (a diamond) are not small ones.
            let mut claimed = HashSet::new();
            let branches: Vec<Vec<usize>> = side
                .iter()
                .filter(|&&w| Some(w) != root)
                .filter_map(|&w| branch(v, w, &hidden))
                .filter(|b| b.iter().all(|x| claimed.insert(*x)))
                .collect();
            if branches.len() <= FAN_LIMIT {
                continue;
            }
            let collapsed: Vec<usize> = branches[FAN_LIMIT - 1..].concat();
            for &x in &collapsed {
                hidden[x] = true;
            }
            more.push((v, collapsed, into));
        }
    }
    let mut shown: Vec<Shown> = Vec::with_capacity(n);
    let mut at = vec![usize::MAX; n];
    for v in (0..n).filter(|&v| !hidden[v]) {
        at[v] = shown.len();
        shown.push(Shown::Node(v));
    }
    let status = |v: usize| match &l.nodes[v] {
        LineageNode::Run(r) => Some(r.status),
        LineageNode::Artifact(_) => None,
    };
    let mut out: Vec<(usize, usize, EdgeKind, Option<RunStatus>)> = edges
        .iter()
        .filter(|&&(u, v, _)| !hidden[u] && !hidden[v])
        .map(|&(u, v, kind)| (at[u], at[v], kind, status(u)))
        .collect();
    for (v, collapsed, into) in more {
        let m = shown.len();
        shown.push(Shown::More {
            hidden: collapsed,
            into,
        });
        let is_run = matches!(l.nodes[v], LineageNode::Run(_));
        out.push(match (into, is_run) {
            (true, true) => (m, at[v], EdgeKind::Input, None),
            (true, false) => (m, at[v], EdgeKind::Output, None),
            (false, true) => (at[v], m, EdgeKind::Output, status(v)),
            (false, false) => (at[v], m, EdgeKind::Input, None),
        });
    }
    Picture { shown, edges: out }
}
