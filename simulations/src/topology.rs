//! Who links to whom: a ring per scope, plus random links.

use std::collections::{BTreeMap, BTreeSet};

use labmesh_sync::ScopeId;
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

use crate::world::SimNode;

/// A ring per scope over its subscribers, plus `degree` random links per node.
pub(crate) fn topology(
    nodes: &[SimNode],
    scopes: &[ScopeId],
    degree: usize,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<BTreeMap<usize, Vec<ScopeId>>> {
    let n = nodes.len();
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for scope in scopes {
        let subs: Vec<usize> = (0..n)
            .filter(|&i| nodes[i].scopes.contains(scope))
            .collect();
        for w in 0..subs.len() {
            let (a, b) = (subs[w], subs[(w + 1) % subs.len()]);
            if a != b {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    for a in 0..n {
        for _ in 0..degree {
            let b = rng.random_range(0..n);
            if a != b {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    let mut links = vec![BTreeMap::new(); n];
    for (a, b) in edges {
        let shared: Vec<ScopeId> = nodes[a]
            .scopes
            .iter()
            .filter(|s| nodes[b].scopes.contains(s))
            .cloned()
            .collect();
        if shared.is_empty() {
            continue;
        }
        links[a].insert(b, shared.clone());
        links[b].insert(a, shared);
    }
    links
}
