//! Who links to whom: a ring per scope, plus random links, plus a link to
//! the owner for a subscriber that would otherwise meet no writer.

use std::collections::{BTreeMap, BTreeSet};

use labmesh_sync::ScopeId;
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

use crate::world::SimNode;

/// A ring per scope over its subscribers, plus `degree` random links per
/// node. A subscriber whose peers for a scope are all read-only also links
/// to the owner (node 0), as a real subscriber knows the node it subscribed
/// from: readers relay signed batches but not documents (those are
/// unsigned), so history they hold only as documents (from a snapshot or a
/// repair) could never reach it otherwise.
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
    for scope in scopes {
        for a in (1..n).filter(|&a| nodes[a].scopes.contains(scope)) {
            let meets_a_writer = (0..n).any(|b| {
                b != a
                    && nodes[b].writer
                    && nodes[b].scopes.contains(scope)
                    && edges.contains(&(a.min(b), a.max(b)))
            });
            if !meets_a_writer {
                edges.insert((0, a));
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
